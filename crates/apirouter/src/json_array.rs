//! A JSON array body written as it is sent: the list answer is serialised a slice at a
//! time while the server sends it, so a client decodes the first containers while the
//! router writes the rest, and the router never holds the whole body (a list of 100k
//! containers is about 50 MB of JSON). An array that fits in one chunk (a fetch by id)
//! goes out whole, with its length: a chunked body would cost each fetch a write and a
//! read more.

use axum::body::Body;
use bytes::Bytes;
use futures_util::StreamExt;

/// About how many bytes of JSON one chunk of the body holds.
const CHUNK_BYTES: usize = 64 * 1024;

/// An array element that writes its own JSON.
pub(crate) trait WriteJson {
    /// Appends this element's JSON to `out`.
    ///
    /// # Errors
    /// When the element cannot be written (the array then ends with the error).
    fn write_json(&self, out: &mut Vec<u8>) -> Result<(), serde_json::Error>;
}

/// An element written by serde (`serde_json::to_writer`).
#[cfg(test)]
pub(crate) struct Serde<T>(pub(crate) T);

#[cfg(test)]
impl<T: serde::Serialize> WriteJson for Serde<T> {
    fn write_json(&self, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
        serde_json::to_writer(out, &self.0)
    }
}

/// The chunks of a JSON array of `items`, in order; together they are exactly the
/// elements' JSON, comma-separated, in brackets (what `serde_json::to_vec` makes of the
/// whole sequence when each element writes what serde would).
pub(crate) fn chunks<I>(items: I) -> Chunks<I::IntoIter>
where
    I: IntoIterator,
    I::Item: WriteJson,
{
    Chunks {
        items: items.into_iter(),
        opened: false,
        written: 0,
        closed: false,
    }
}

/// The body of a JSON array of `items`: one buffer when the array fits in one chunk
/// (with its length, in one write), else streamed chunk by chunk.
pub(crate) fn body<I>(items: I) -> Result<Body, serde_json::Error>
where
    I: IntoIterator,
    I::IntoIter: Send + 'static,
    I::Item: WriteJson,
{
    let mut chunks = chunks(items);
    let first = chunks.next().unwrap_or_else(|| Ok(Bytes::new()))?;
    if chunks.closed {
        return Ok(Body::from(first));
    }
    let rest = futures_util::stream::iter(chunks);
    Ok(Body::from_stream(
        futures_util::stream::once(async { Ok(first) }).chain(rest),
    ))
}

/// See [`chunks`]. An item that fails to serialise ends the array with that error.
pub(crate) struct Chunks<I> {
    items: I,
    /// `[` is written.
    opened: bool,
    /// Items written so far.
    written: usize,
    /// `]` is written (or an error returned): nothing follows.
    closed: bool,
}

impl<I> Iterator for Chunks<I>
where
    I: Iterator,
    I::Item: WriteJson,
{
    type Item = Result<Bytes, serde_json::Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.closed {
            return None;
        }
        let mut buf = Vec::with_capacity(CHUNK_BYTES + CHUNK_BYTES / 4);
        if !self.opened {
            buf.push(b'[');
            self.opened = true;
        }
        while buf.len() < CHUNK_BYTES {
            let Some(item) = self.items.next() else {
                buf.push(b']');
                self.closed = true;
                break;
            };
            if self.written > 0 {
                buf.push(b',');
            }
            if let Err(e) = item.write_json(&mut buf) {
                self.closed = true;
                return Some(Err(e));
            }
            self.written += 1;
        }
        Some(Ok(Bytes::from(buf)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn joined(items: Vec<serde_json::Value>) -> (usize, Vec<u8>) {
        let mut out = Vec::new();
        let mut n = 0;
        for chunk in chunks(items.into_iter().map(Serde)) {
            out.extend_from_slice(&chunk.unwrap());
            n += 1;
        }
        (n, out)
    }

    #[test]
    fn the_chunks_make_the_same_json_as_the_whole() {
        for len in [0, 1, 2, 5_000] {
            let items: Vec<serde_json::Value> = (0..len)
                .map(|i| serde_json::json!({"Id": format!("{i:064}"), "Names": [format!("/c{i}")]}))
                .collect();
            let whole = serde_json::to_vec(&items).unwrap();
            let (n, out) = joined(items);
            assert_eq!(out, whole, "{len} items");
            if len == 5_000 {
                assert!(n > 1, "a long array is sent in several chunks");
            }
        }
    }

    #[test]
    fn a_short_array_is_one_sized_body_and_a_long_one_is_streamed() {
        use axum::body::HttpBody;
        let item = |i: usize| serde_json::json!({"Id": format!("{i:064}")});
        let short = body((0..3).map(item).map(Serde)).unwrap();
        let whole = serde_json::to_vec(&(0..3).map(item).collect::<Vec<_>>()).unwrap();
        assert_eq!(short.size_hint().exact(), Some(whole.len() as u64));
        let long = body((0..5_000).map(item).map(Serde)).unwrap();
        assert_eq!(long.size_hint().exact(), None);
        assert_eq!(
            body(Vec::<Serde<u8>>::new()).unwrap().size_hint().exact(),
            Some(2),
            "[]"
        );
    }

    #[test]
    fn a_failing_item_ends_the_array_with_its_error() {
        struct Fails;
        impl serde::Serialize for Fails {
            fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
                Err(serde::ser::Error::custom("no"))
            }
        }
        let mut it = chunks([Serde(Fails)]);
        assert!(matches!(it.next(), Some(Err(_))));
        assert!(it.next().is_none());
    }
}
