//! Splitting a JSON array that arrives in chunks into its elements, so a container list can
//! be decoded one container at a time while the body is still arriving: memory holds one
//! chunk and one element, never the whole body nor a `Vec` of every container. Both list
//! calls use it: the Hyper.sh client's (`Client::list_containers_into`, feature `client`)
//! and the Docker source's (`hypersh-docker`), so it lives here, outside the client.
//!
//! The splitter only tracks strings (and their escapes) and bracket depth to find the commas
//! between top-level elements; each element is then decoded (and so validated) by
//! [`Container::from_list_element`](crate::Container::from_list_element), which gives
//! serde's result.
//! Two bounds in bytes: one element ([`ArraySplitter::new`]) and the whole list
//! ([`ArraySplitter::max_bytes`]).
//!
//! ```
//! use hypersh_watch::Container;
//! use hypersh_watch::list::{ArraySplitter, SplitError};
//!
//! #[derive(Debug)]
//! enum ListError {
//!     Split(SplitError),
//!     Decode(serde_json::Error),
//! }
//! impl From<SplitError> for ListError {
//!     fn from(e: SplitError) -> Self {
//!         Self::Split(e)
//!     }
//! }
//!
//! let mut splitter = ArraySplitter::new(1024 * 1024).max_bytes(64 * 1024 * 1024);
//! let mut names = Vec::new();
//! for chunk in [&br#"[{"Id":"a","Names":["/web"]},{"Id""#[..], br#":"b"}]"#] {
//!     splitter.feed(chunk, |element| {
//!         let c = Container::from_list_element(element).map_err(ListError::Decode)?;
//!         names.push(c.id().to_owned());
//!         Ok::<_, ListError>(())
//!     })?;
//! }
//! splitter.finish()?;
//! assert_eq!(names, ["a", "b"]);
//! # Ok::<(), ListError>(())
//! ```

mod skip;

use skip::{BLOCK, Inside, Skip};

/// Where the splitter is in the body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Place {
    /// Before the opening `[`.
    Before,
    /// Inside the array.
    Inside,
    /// After the closing `]`.
    After,
}

/// The bytes that change the state inside an element, outside its strings.
static BRACKETS_AND_QUOTE: [bool; 256] = {
    let mut table = [false; 256];
    table[b'"' as usize] = true;
    table[b'{' as usize] = true;
    table[b'}' as usize] = true;
    table[b'[' as usize] = true;
    table[b']' as usize] = true;
    table
};

/// Why a list body is refused before its elements are decoded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SplitError {
    /// The body is not one JSON array (what is wrong is said).
    #[error("the list is not a JSON array: {reason}")]
    Malformed {
        /// What is wrong: `the list is not a JSON array`, `a list element is missing`, ...
        reason: &'static str,
    },
    /// One element is larger than the splitter's `max_element`.
    #[error("a list element is larger than {limit} bytes")]
    ElementTooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// The whole body is larger than the splitter's [`max_bytes`](ArraySplitter::max_bytes).
    #[error("the list is larger than {limit} bytes")]
    ListTooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
}

/// Finds the top-level elements of a JSON array fed in chunks, within two bounds in bytes:
/// one element, and the whole body.
#[derive(Debug)]
pub struct ArraySplitter {
    /// The start of an element that earlier chunks began and did not complete (empty
    /// between elements: an element never starts with a blank).
    buf: Vec<u8>,
    place: Place,
    /// Open brackets and braces inside the current element.
    depth: usize,
    in_string: bool,
    escaped: bool,
    /// A comma was read: another element must follow before `]`.
    want_element: bool,
    /// The largest element accepted, in bytes.
    max_element: usize,
    /// The largest body accepted, in bytes.
    max_bytes: usize,
    /// Bytes fed so far.
    fed: usize,
    /// Skip the inside of elements a block at a time ([`skip`]); off only in the tests
    /// that check it against the byte-by-byte machine.
    fast: bool,
}

impl ArraySplitter {
    /// A splitter that refuses elements larger than `max_element` bytes (and no limit on
    /// the whole body until [`max_bytes`](Self::max_bytes) sets one).
    #[must_use]
    pub fn new(max_element: usize) -> Self {
        Self {
            max_element,
            max_bytes: usize::MAX,
            fed: 0,
            buf: Vec::new(),
            place: Place::Before,
            depth: 0,
            in_string: false,
            escaped: false,
            want_element: false,
            fast: true,
        }
    }

    /// Refuses a body larger than `bytes` in all.
    #[must_use]
    pub fn max_bytes(mut self, bytes: usize) -> Self {
        self.max_bytes = bytes;
        self
    }

    /// Scans `chunk` and calls `element` with each top-level element completed by it (its
    /// bytes, surrounding blanks excluded).
    ///
    /// # Errors
    /// A [`SplitError`] when the body is not an array (or has something after it), or passes
    /// a bound; else the first error `element` returns. After an error the splitter is
    /// of no further use.
    pub fn feed<E: From<SplitError>>(
        &mut self,
        chunk: &[u8],
        mut element: impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        self.fed = self.fed.saturating_add(chunk.len());
        if self.fed > self.max_bytes {
            return Err(SplitError::ListTooLarge {
                limit: self.max_bytes,
            }
            .into());
        }
        let malformed = |reason| E::from(SplitError::Malformed { reason });
        let too_large = || {
            E::from(SplitError::ElementTooLarge {
                limit: self.max_element,
            })
        };
        // The chunk is scanned where it is: only the start of an element that it does not
        // complete is copied (into `buf`), not every byte.
        // An element began in an earlier chunk and goes on from `chunk[0]`.
        let mut pending = !self.buf.is_empty();
        // Start, in `chunk`, of an element that began in it.
        let mut start: Option<usize> = None;
        let mut i = 0;
        // Bytes before this are left to the state machine (a block with an escape).
        let mut plain_until = 0;
        while i < chunk.len() {
            if self.fast
                && self.depth > 0
                && !self.escaped
                && i >= plain_until
                && let Some(block) = chunk[i..].first_chunk::<BLOCK>()
            {
                // PERFORMANCE: the inside of an element, a block at a time (`skip`).
                let at = Inside {
                    depth: self.depth,
                    in_string: self.in_string,
                };
                match skip::skip_block(block, at) {
                    Skip::Whole(after) => {
                        self.depth = after.depth;
                        self.in_string = after.in_string;
                        i += BLOCK;
                        continue;
                    }
                    Skip::Until(n) => {
                        // Outside strings, at depth 1: the machine reads the bracket.
                        self.depth = 1;
                        self.in_string = false;
                        i += n;
                        plain_until = i + 1;
                    }
                    Skip::Escape => plain_until = i + BLOCK,
                }
            }
            if self.depth > 0 && !self.in_string {
                // Within an element's brackets only quotes and brackets matter: skip the
                // rest (keys' colons, commas, numbers, blanks) without the state machine.
                match chunk[i..]
                    .iter()
                    .position(|&b| BRACKETS_AND_QUOTE[usize::from(b)])
                {
                    Some(n) => i += n,
                    None => break,
                }
            }
            let b = chunk[i];
            if self.in_string {
                if self.escaped {
                    self.escaped = false;
                } else if b == b'\\' {
                    self.escaped = true;
                } else if b == b'"' {
                    self.in_string = false;
                } else {
                    // Most of a list is inside strings (ids, names, labels): jump to the
                    // next quote or backslash.
                    i = memchr::memchr2(b'"', b'\\', &chunk[i..]).map_or(chunk.len(), |n| i + n);
                    continue;
                }
                i += 1;
                continue;
            }
            let blank = matches!(b, b' ' | b'\t' | b'\n' | b'\r');
            let reading = pending || start.is_some();
            match self.place {
                Place::Before if blank => {}
                Place::Before if b == b'[' => self.place = Place::Inside,
                Place::Before => return Err(malformed("the list is not a JSON array")),
                Place::Inside if self.depth == 0 && (b == b',' || b == b']') => {
                    if pending {
                        if self.buf.len() + i > self.max_element {
                            return Err(too_large());
                        }
                        self.buf.extend_from_slice(&chunk[..i]);
                        element(&self.buf)?;
                        self.buf.clear();
                        pending = false;
                        self.want_element = false;
                    } else if let Some(s) = start.take() {
                        if i - s > self.max_element {
                            return Err(too_large());
                        }
                        element(&chunk[s..i])?;
                        self.want_element = false;
                    } else if b == b',' || self.want_element {
                        return Err(malformed("a list element is missing"));
                    }
                    if b == b',' {
                        self.want_element = true;
                    } else {
                        self.place = Place::After;
                    }
                }
                Place::Inside if blank && !reading => {}
                Place::Inside => {
                    if !reading {
                        start = Some(i);
                    }
                    match b {
                        b'"' => self.in_string = true,
                        b'{' | b'[' => self.depth += 1,
                        b'}' | b']' => {
                            self.depth = self
                                .depth
                                .checked_sub(1)
                                .ok_or_else(|| malformed("unbalanced brackets in the list"))?;
                        }
                        _ => {}
                    }
                }
                Place::After if blank => {}
                Place::After => return Err(malformed("trailing characters after the list")),
            }
            i += 1;
        }
        // Keep the start of the element being read.
        if pending {
            self.buf.extend_from_slice(chunk);
        } else if let Some(s) = start {
            self.buf.extend_from_slice(&chunk[s..]);
        }
        if self.buf.len() > self.max_element {
            return Err(too_large());
        }
        Ok(())
    }

    /// Checks that the array was closed.
    ///
    /// # Errors
    /// [`SplitError::Malformed`] when the body ended inside the array (or before it).
    pub fn finish(&self) -> Result<(), SplitError> {
        if self.place == Place::After {
            Ok(())
        } else {
            Err(SplitError::Malformed {
                reason: "the list ends before its array does",
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Splits `body` fed in chunks of `size` bytes.
    fn split(body: &str, size: usize) -> Result<Vec<String>, SplitError> {
        split_with(body, size, true)
    }

    /// [`split`], with the block skip on or off.
    fn split_with(body: &str, size: usize, fast: bool) -> Result<Vec<String>, SplitError> {
        let mut splitter = ArraySplitter::new(usize::MAX);
        splitter.fast = fast;
        let mut out = Vec::new();
        for chunk in body.as_bytes().chunks(size.max(1)) {
            splitter.feed(chunk, |e| {
                out.push(String::from_utf8_lossy(e).trim().to_owned());
                Ok::<_, SplitError>(())
            })?;
        }
        splitter.finish()?;
        Ok(out)
    }

    #[test]
    fn elements_are_found_whatever_the_chunking() {
        let body = r#" [ {"Id":"a","Names":["/x,]"],"L":{"k":"}\"]"}} , {"Id":"b"},3,"s,"]  "#;
        let want = [
            r#"{"Id":"a","Names":["/x,]"],"L":{"k":"}\"]"}}"#,
            r#"{"Id":"b"}"#,
            "3",
            r#""s,""#,
        ];
        for size in [1, 2, 3, 7, 64, 1000] {
            assert_eq!(split(body, size).unwrap(), want, "chunks of {size}");
        }
        assert!(split("[]", 1).unwrap().is_empty());
        assert!(split(" [ \n ] ", 2).unwrap().is_empty());
    }

    proptest::proptest! {
        /// Whatever the strings hold (quotes, backslashes, brackets, commas) and however
        /// the body is cut, each element comes out whole.
        #[test]
        fn any_array_of_objects_splits_into_its_elements(
            texts in proptest::collection::vec(".*", 0..8),
            size in 1usize..40,
        ) {
            let items: Vec<serde_json::Value> = texts
                .iter()
                .map(|t| serde_json::json!({"Id": t, "Names": [t, "],\\\""], "N": t.len()}))
                .collect();
            let body = serde_json::to_string(&items).unwrap();
            let got: Vec<serde_json::Value> = split(&body, size)
                .unwrap()
                .iter()
                .map(|e| serde_json::from_str(e).unwrap())
                .collect();
            proptest::prop_assert_eq!(got, items);
        }
    }

    /// Texts that stress the block skip: escapes, quotes and brackets in strings, long
    /// strings across blocks.
    fn tricky_text() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::strategy::Strategy as _;
        proptest::prop_oneof![
            ".*",
            "[a-z\\\\\"\\[\\]{},]{0,150}",
            proptest::collection::vec(
                proptest::sample::select(vec!["\\", "\"", "{", "]", "a", "é"]),
                0..80
            )
            .prop_map(|v| v.concat()),
        ]
    }

    proptest::proptest! {
        /// The block skip finds the same elements as the byte-by-byte machine, for
        /// nested objects and arrays of any strings, cut anywhere.
        #[test]
        fn the_block_skip_splits_as_the_byte_machine(
            texts in proptest::collection::vec(tricky_text(), 0..12),
            size in 1usize..300,
        ) {
            let items: Vec<serde_json::Value> = texts
                .iter()
                .map(|t| serde_json::json!({
                    "Id": t,
                    "Labels": {t.as_str(): [t, {"x": t}], "b": []},
                    "Ports": [{"IP": t}, [], [[{}]]],
                }))
                .collect();
            let body = serde_json::to_string(&items).unwrap();
            let fast = split_with(&body, size, true);
            proptest::prop_assert_eq!(&fast, &split_with(&body, size, false));
            let got: Vec<serde_json::Value> = fast
                .unwrap()
                .iter()
                .map(|e| serde_json::from_str(e).unwrap())
                .collect();
            proptest::prop_assert_eq!(got, items);
        }

        /// Broken bodies (cut, bytes changed) give the same elements, then the same error.
        #[test]
        fn on_damaged_bodies_the_block_skip_errs_as_the_byte_machine(
            texts in proptest::collection::vec(tricky_text(), 1..6),
            cut in 0usize..2000,
            flips in proptest::collection::vec((0usize..2000, proptest::sample::select(&b"\"{}[],\\ a"[..])), 0..4),
            size in 1usize..200,
        ) {
            let items: Vec<serde_json::Value> = texts
                .iter()
                .map(|t| serde_json::json!({"Id": t, "L": {"k": [t, t]}}))
                .collect();
            let mut body = serde_json::to_vec(&items).unwrap();
            body.truncate(cut.max(1).min(body.len()));
            for (at, b) in flips {
                let at = at % body.len();
                body[at] = b;
            }
            let run = |fast: bool| {
                let mut splitter = ArraySplitter::new(usize::MAX);
                splitter.fast = fast;
                let mut out = Vec::new();
                let mut ended = Ok(());
                for chunk in body.chunks(size) {
                    ended = splitter.feed(chunk, |e| {
                        out.push(e.to_vec());
                        Ok::<_, SplitError>(())
                    });
                    if ended.is_err() {
                        break;
                    }
                }
                (out, ended.and_then(|()| splitter.finish()))
            };
            proptest::prop_assert_eq!(run(true), run(false));
        }
    }

    #[test]
    fn what_is_not_one_array_is_an_error() {
        for bad in [
            "{}", "null", "[1,]", "[,1]", "[1", "", "[1] x", "[1}]", "[1,,2]",
        ] {
            assert!(split(bad, 2).is_err(), "{bad:?}");
        }
    }

    /// Feeds one chunk, ignoring elements.
    fn feed(splitter: &mut ArraySplitter, chunk: &[u8]) -> Result<(), SplitError> {
        splitter.feed(chunk, |_| Ok::<_, SplitError>(()))
    }

    #[test]
    fn an_element_over_the_limit_is_an_error_that_names_the_limit() {
        let mut splitter = ArraySplitter::new(100);
        feed(&mut splitter, br#"[{"Id":""#).unwrap();
        let err = (0..10)
            .find_map(|_| feed(&mut splitter, &[b'a'; 40]).err())
            .expect("refused");
        assert_eq!(err, SplitError::ElementTooLarge { limit: 100 });
        assert_eq!(err.to_string(), "a list element is larger than 100 bytes");
        assert!(splitter.buf.len() <= 140, "the buffer stays near the limit");
    }

    #[test]
    fn an_element_over_the_limit_within_one_chunk_is_refused_too() {
        let big = format!(r#"[{{"Id":"{}"}},{{"Id":"b"}}]"#, "a".repeat(200));
        let mut splitter = ArraySplitter::new(100);
        let mut seen = 0;
        let err = splitter
            .feed(big.as_bytes(), |_| {
                seen += 1;
                Ok::<_, SplitError>(())
            })
            .unwrap_err();
        assert_eq!(err, SplitError::ElementTooLarge { limit: 100 });
        assert_eq!(seen, 0, "the large element was not handed out");
        // Exactly at the limit is accepted.
        let exact = format!(r#"[{{"Id":"{}"}}]"#, "a".repeat(100 - 9));
        let mut splitter = ArraySplitter::new(100);
        feed(&mut splitter, exact.as_bytes()).unwrap();
        splitter.finish().unwrap();
    }

    #[test]
    fn a_body_over_the_list_limit_is_refused_before_it_is_scanned() {
        let mut splitter = ArraySplitter::new(usize::MAX).max_bytes(10);
        feed(&mut splitter, b"[1,2,").unwrap();
        feed(&mut splitter, b"3,4,").unwrap();
        let err = feed(&mut splitter, b"5]").unwrap_err();
        assert_eq!(err, SplitError::ListTooLarge { limit: 10 });
        assert_eq!(err.to_string(), "the list is larger than 10 bytes");
        let mut splitter = ArraySplitter::new(usize::MAX).max_bytes(10);
        feed(&mut splitter, b"[1,2,3,4]\n").unwrap();
        splitter.finish().unwrap();
    }

    #[test]
    fn the_callback_error_is_returned_as_it_is() {
        #[derive(Debug, PartialEq)]
        enum Mine {
            Split(SplitError),
            Stop,
        }
        impl From<SplitError> for Mine {
            fn from(e: SplitError) -> Self {
                Self::Split(e)
            }
        }
        let mut splitter = ArraySplitter::new(usize::MAX);
        assert_eq!(
            splitter.feed(b"[1,2]", |_| Err(Mine::Stop)),
            Err(Mine::Stop)
        );
        let mut splitter = ArraySplitter::new(usize::MAX);
        assert!(matches!(
            splitter.feed(b"{}", |_| Ok(())),
            Err(Mine::Split(SplitError::Malformed { .. }))
        ));
    }

    #[test]
    fn the_buffer_holds_one_element_at_most() {
        let mut splitter = ArraySplitter::new(usize::MAX);
        let mut seen = 0;
        splitter
            .feed(b"[{\"Id\":\"a\"},{\"Id\":", |_| {
                seen += 1;
                Ok::<_, SplitError>(())
            })
            .unwrap();
        assert_eq!(seen, 1);
        assert_eq!(splitter.buf, b"{\"Id\":");
        feed(&mut splitter, b"\"b\"}]").unwrap();
        assert!(splitter.buf.is_empty());
        splitter.finish().unwrap();
    }
}
