//! Splitting a JSON array that arrives in chunks into its elements, so a list response can
//! be decoded one container at a time while the body is still arriving (see
//! [`Client::list_containers_into`](crate::Client::list_containers_into)): memory holds one
//! chunk and one element, never the whole body nor a `Vec` of every container.
//!
//! The splitter only tracks strings (and their escapes) and bracket depth to find the commas
//! between top-level elements; each element is then decoded (and so validated) by serde.

use serde::de::Error as _;

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

/// Finds the top-level elements of a JSON array fed in chunks.
#[derive(Debug)]
pub(crate) struct ArraySplitter {
    /// Bytes not yet handed out: the element being read (from index 0 when it has begun).
    buf: Vec<u8>,
    /// Whether `buf[0]` starts an element.
    started: bool,
    place: Place,
    /// Open brackets and braces inside the current element.
    depth: usize,
    in_string: bool,
    escaped: bool,
    /// A comma was read: another element must follow before `]`.
    want_element: bool,
    /// The largest element accepted, in bytes.
    max_element: usize,
}

impl ArraySplitter {
    /// A splitter that refuses elements larger than `max_element` bytes.
    pub(crate) fn new(max_element: usize) -> Self {
        Self {
            max_element,
            buf: Vec::new(),
            started: false,
            place: Place::Before,
            depth: 0,
            in_string: false,
            escaped: false,
            want_element: false,
        }
    }

    /// Scans `chunk` and calls `element` with each top-level element completed by it.
    ///
    /// # Errors
    /// A JSON error when the body is not an array (or has something after it), or the first
    /// error `element` returns.
    pub(crate) fn feed(
        &mut self,
        chunk: &[u8],
        mut element: impl FnMut(&[u8]) -> Result<(), serde_json::Error>,
    ) -> Result<(), serde_json::Error> {
        let mut i = self.buf.len();
        self.buf.extend_from_slice(chunk);
        // Start of the element being read, in `buf`.
        let mut start = self.started.then_some(0);
        while i < self.buf.len() {
            let b = self.buf[i];
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
                    i = memchr::memchr2(b'"', b'\\', &self.buf[i..])
                        .map_or(self.buf.len(), |n| i + n);
                    continue;
                }
                i += 1;
                continue;
            }
            let blank = matches!(b, b' ' | b'\t' | b'\n' | b'\r');
            match self.place {
                Place::Before if blank => {}
                Place::Before if b == b'[' => self.place = Place::Inside,
                Place::Before => {
                    return Err(serde_json::Error::custom("the list is not a JSON array"));
                }
                Place::Inside if self.depth == 0 && (b == b',' || b == b']') => {
                    match start.take() {
                        Some(s) => {
                            element(&self.buf[s..i])?;
                            self.want_element = false;
                        }
                        None if b == b']' && !self.want_element => {}
                        None => return Err(serde_json::Error::custom("a list element is missing")),
                    }
                    if b == b',' {
                        self.want_element = true;
                    } else {
                        self.place = Place::After;
                    }
                }
                Place::Inside if blank && start.is_none() => {}
                Place::Inside => {
                    if start.is_none() {
                        start = Some(i);
                    }
                    match b {
                        b'"' => self.in_string = true,
                        b'{' | b'[' => self.depth += 1,
                        b'}' | b']' => {
                            self.depth = self.depth.checked_sub(1).ok_or_else(|| {
                                serde_json::Error::custom("unbalanced brackets in the list")
                            })?;
                        }
                        _ => {}
                    }
                }
                Place::After if blank => {}
                Place::After => {
                    return Err(serde_json::Error::custom(
                        "trailing characters after the list",
                    ));
                }
            }
            i += 1;
        }
        // Keep only the element being read.
        let keep = start.unwrap_or(self.buf.len());
        self.buf.drain(..keep);
        self.started = start.is_some();
        if self.buf.len() > self.max_element {
            return Err(serde_json::Error::custom(format_args!(
                "a list element is larger than {} bytes (ClientConfig::max_frame_size)",
                self.max_element
            )));
        }
        Ok(())
    }

    /// Checks that the array was closed.
    ///
    /// # Errors
    /// A JSON error when the body ended inside the array (or before it).
    pub(crate) fn finish(&self) -> Result<(), serde_json::Error> {
        if self.place == Place::After {
            Ok(())
        } else {
            Err(serde_json::Error::custom(
                "the list ends before its array does",
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Splits `body` fed in chunks of `size` bytes.
    fn split(body: &str, size: usize) -> Result<Vec<String>, serde_json::Error> {
        let mut splitter = ArraySplitter::new(usize::MAX);
        let mut out = Vec::new();
        for chunk in body.as_bytes().chunks(size.max(1)) {
            splitter.feed(chunk, |e| {
                out.push(String::from_utf8_lossy(e).trim().to_owned());
                Ok(())
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

    #[test]
    fn what_is_not_one_array_is_an_error() {
        for bad in [
            "{}", "null", "[1,]", "[,1]", "[1", "", "[1] x", "[1}]", "[1,,2]",
        ] {
            assert!(split(bad, 2).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn an_element_over_the_limit_is_an_error_that_names_the_setting() {
        let mut splitter = ArraySplitter::new(100);
        splitter.feed(br#"[{"Id":""#, |_| Ok(())).unwrap();
        let err = (0..10)
            .find_map(|_| splitter.feed(&[b'a'; 40], |_| Ok(())).err())
            .expect("refused");
        assert!(err.to_string().contains("max_frame_size"), "{err}");
        assert!(splitter.buf.len() <= 140, "the buffer stays near the limit");
    }

    #[test]
    fn the_buffer_holds_one_element_at_most() {
        let mut splitter = ArraySplitter::new(usize::MAX);
        let mut seen = 0;
        splitter
            .feed(b"[{\"Id\":\"a\"},{\"Id\":", |_| {
                seen += 1;
                Ok(())
            })
            .unwrap();
        assert_eq!(seen, 1);
        assert_eq!(splitter.buf, b"{\"Id\":");
        splitter.feed(b"\"b\"}]", |_| Ok(())).unwrap();
        assert!(splitter.buf.is_empty());
        splitter.finish().unwrap();
    }
}
