//! [`Utf8Frame`]: a frame's bytes, known to be UTF-8, shared without a copy.

use bytes::Bytes;

/// The bytes of one text frame, checked to be UTF-8 when it was made: reading it as a
/// `&str` costs nothing (a websocket text frame, already checked by the websocket, is
/// not checked again), and cloning it shares the bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Utf8Frame(Bytes);

impl Utf8Frame {
    /// The frame as text.
    pub(crate) fn as_str(&self) -> &str {
        // PERFORMANCE: the one unchecked step of the decoder. The plain version is
        // `std::str::from_utf8(&self.0)`, which would check the frame again on every read.
        #[allow(unsafe_code)]
        // SAFETY: every constructor checks the bytes (`TryFrom<Bytes>` with
        // `<[u8]>::is_ascii`, ASCII being UTF-8, else `std::str::from_utf8`) or takes
        // them from a type that did (`From<Utf8Bytes>`,
        // `From<&'static str>`), and the bytes are never changed afterwards.
        unsafe {
            std::str::from_utf8_unchecked(&self.0)
        }
    }

    /// The frame's bytes.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// The bytes are not UTF-8.
#[derive(Debug)]
pub(crate) struct NotUtf8;

impl TryFrom<Bytes> for Utf8Frame {
    type Error = NotUtf8;

    fn try_from(bytes: Bytes) -> Result<Self, NotUtf8> {
        // PERFORMANCE: event lines are ASCII but for a name or a label now and then, and
        // checking for ASCII takes a quarter of a full UTF-8 check.
        if bytes.is_ascii() {
            return Ok(Self(bytes));
        }
        match std::str::from_utf8(&bytes) {
            Ok(_) => Ok(Self(bytes)),
            Err(_) => Err(NotUtf8),
        }
    }
}

#[cfg(feature = "client")]
impl From<tokio_tungstenite::tungstenite::Utf8Bytes> for Utf8Frame {
    /// A websocket text frame: tungstenite checked it, so it is not checked again.
    fn from(text: tokio_tungstenite::tungstenite::Utf8Bytes) -> Self {
        Self(Bytes::from(text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_utf8_becomes_a_frame() {
        let frame = Utf8Frame::try_from(Bytes::from_static("caf\u{e9}".as_bytes())).unwrap();
        assert_eq!(frame.as_str(), "caf\u{e9}");
        assert_eq!(frame.as_bytes(), "caf\u{e9}".as_bytes());
        assert!(Utf8Frame::try_from(Bytes::from_static(b"\xff")).is_err());
        // Past the ASCII check: a long ASCII text with one bad byte anywhere is refused.
        for at in 0..70 {
            let mut bytes = vec![b'a'; 70];
            bytes[at] = 0xc3;
            assert!(Utf8Frame::try_from(Bytes::from(bytes)).is_err(), "{at}");
        }
    }

    #[cfg(feature = "client")]
    #[test]
    fn a_websocket_text_frame_is_taken_as_it_is() {
        let text = tokio_tungstenite::tungstenite::Utf8Bytes::from_static("{\"id\":\"a\"}");
        assert_eq!(Utf8Frame::from(text).as_str(), "{\"id\":\"a\"}");
    }
}
