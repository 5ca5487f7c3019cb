//! Raw JSON in a request target: `curl -g '.../events/ws?filters={"label":["a"]}'` and Go
//! clients send `"` (and perhaps `<`, `>`, `` ` ``) unencoded, which Docker Engine accepts
//! but the `http` crate's URI parser (used by hyper) refuses, so hyper answered `400` with an
//! empty body before the router saw the request.
//!
//! [`RawTarget`] sits between the connection and hyper and percent-encodes those bytes in
//! the request target of every request on the connection (`"` → `%22`). The signature stays
//! valid: the router verifies over the canonical query, which decodes both forms alike
//! (protocol.md §1), and the query extractor decodes `%22` back to `"`.
//!
//! To find every request line on a keep-alive connection it follows the message framing:
//! the head up to its blank line, then `Content-Length` bytes of body. After a head it
//! cannot follow (`Transfer-Encoding`, an `Upgrade` to a websocket, a bad or repeated
//! `Content-Length`) it passes every later byte through unchanged. It keeps no more than
//! [`HEADER_PREFIX`] bytes of a header line and expands at most one read at a time, so its
//! buffers are bounded.

use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Bytes read from the connection at a time (the output is at most three times this).
const READ_CHUNK: usize = 4 * 1024;
/// Bytes of a header line kept to recognise `Content-Length`, `Transfer-Encoding` and
/// `Upgrade` (longer lines of those headers make the wrapper pass the rest through).
const HEADER_PREFIX: usize = 128;

/// Whether `b` in a request target must be percent-encoded for the `http` crate to accept
/// it. Other bytes, `%` included, are left as sent, so an encoded target is unchanged.
fn needs_encoding(b: u8) -> bool {
    matches!(b, b'"' | b'<' | b'>' | b'`') || b >= 0x80
}

/// Where the fixer is in the byte stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Before or in the method (blank lines before a request are passed on as they are).
    Method,
    /// In the request target.
    Target,
    /// After the target, up to the end of the request line.
    Version,
    /// In the header lines.
    Headers,
    /// In a body of this many more bytes.
    Body(u64),
    /// Everything from here on is passed through.
    Through,
}

/// The request-target rewriter as a pure state machine over the bytes of a connection.
#[derive(Debug)]
struct Fixer {
    state: State,
    /// The start of the current header line (at most [`HEADER_PREFIX`] bytes).
    line: Vec<u8>,
    /// The current header line is longer than what `line` holds.
    line_truncated: bool,
    /// The `Content-Length` of the current head, if any.
    content_length: Option<u64>,
    /// The current head cannot be followed past its end.
    give_up: bool,
}

impl Fixer {
    fn new() -> Self {
        Self {
            state: State::Method,
            line: Vec::with_capacity(HEADER_PREFIX),
            line_truncated: false,
            content_length: None,
            give_up: false,
        }
    }

    /// Appends `input`, rewritten, to `out`.
    fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) {
        let mut i = 0;
        while i < input.len() {
            match self.state {
                State::Through => {
                    out.extend_from_slice(&input[i..]);
                    return;
                }
                State::Body(left) => {
                    let take = usize::try_from(left)
                        .unwrap_or(usize::MAX)
                        .min(input.len() - i);
                    out.extend_from_slice(&input[i..i + take]);
                    i += take;
                    let left = left - take as u64;
                    self.state = if left == 0 {
                        State::Method
                    } else {
                        State::Body(left)
                    };
                }
                State::Method => {
                    let b = input[i];
                    out.push(b);
                    i += 1;
                    if b == b' ' {
                        self.state = State::Target;
                    }
                }
                State::Target => {
                    let b = input[i];
                    i += 1;
                    if needs_encoding(b) {
                        out.push(b'%');
                        out.extend_from_slice(hex_upper(b).as_slice());
                        continue;
                    }
                    out.push(b);
                    match b {
                        b' ' | b'\r' => self.state = State::Version,
                        b'\n' => self.start_headers(),
                        _ => {}
                    }
                }
                State::Version => {
                    let b = input[i];
                    out.push(b);
                    i += 1;
                    if b == b'\n' {
                        self.start_headers();
                    }
                }
                State::Headers => {
                    let b = input[i];
                    out.push(b);
                    i += 1;
                    if b == b'\n' {
                        self.end_header_line();
                    } else if self.line.len() < HEADER_PREFIX {
                        self.line.push(b);
                    } else {
                        self.line_truncated = true;
                    }
                }
            }
        }
    }

    fn start_headers(&mut self) {
        self.state = State::Headers;
        self.line.clear();
        self.line_truncated = false;
        self.content_length = None;
        self.give_up = false;
    }

    fn end_header_line(&mut self) {
        let line = self.line.strip_suffix(b"\r").unwrap_or(&self.line);
        if line.is_empty() && !self.line_truncated {
            // The end of the head: where does the next request start?
            self.state = match (self.give_up, self.content_length) {
                (true, _) => State::Through,
                (false, None | Some(0)) => State::Method,
                (false, Some(n)) => State::Body(n),
            };
            return;
        }
        if let Some(colon) = line.iter().position(|b| *b == b':') {
            let name = line[..colon].trim_ascii();
            let value = line[colon + 1..].trim_ascii();
            if name.eq_ignore_ascii_case(b"content-length") {
                let parsed = std::str::from_utf8(value)
                    .ok()
                    .filter(|_| !self.line_truncated)
                    .and_then(|v| v.parse::<u64>().ok());
                match (parsed, self.content_length) {
                    (Some(n), None) => self.content_length = Some(n),
                    _ => self.give_up = true,
                }
            } else if name.eq_ignore_ascii_case(b"transfer-encoding")
                || name.eq_ignore_ascii_case(b"upgrade")
            {
                self.give_up = true;
            }
        }
        self.line.clear();
        self.line_truncated = false;
    }
}

/// `b` as two upper-case hex digits.
fn hex_upper(b: u8) -> [u8; 2] {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    [DIGITS[usize::from(b >> 4)], DIGITS[usize::from(b & 0x0f)]]
}

/// A connection whose request targets are made acceptable to hyper (see the module docs).
pub(crate) struct RawTarget<I> {
    inner: I,
    fixer: Fixer,
    /// Rewritten bytes not yet handed to hyper, from `pos`.
    out: Vec<u8>,
    pos: usize,
    /// Where raw bytes are read into.
    scratch: Box<[u8; READ_CHUNK]>,
}

impl<I> RawTarget<I> {
    pub(crate) fn new(inner: I) -> Self {
        Self {
            inner,
            fixer: Fixer::new(),
            out: Vec::new(),
            pos: 0,
            scratch: Box::new([0; READ_CHUNK]),
        }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for RawTarget<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if this.pos == this.out.len() {
            if this.fixer.state == State::Through {
                // Nothing left to rewrite on this connection (a websocket, say).
                return Pin::new(&mut this.inner).poll_read(cx, buf);
            }
            let mut raw = ReadBuf::new(&mut this.scratch[..]);
            match Pin::new(&mut this.inner).poll_read(cx, &mut raw) {
                Poll::Ready(Ok(())) => {}
                other => return other,
            }
            if raw.filled().is_empty() {
                return Poll::Ready(Ok(()));
            }
            this.out.clear();
            this.pos = 0;
            this.fixer.feed(raw.filled(), &mut this.out);
            if this.fixer.state == State::Through && this.out.capacity() > 3 * READ_CHUNK {
                this.out.shrink_to(3 * READ_CHUNK);
            }
        }
        let n = buf.remaining().min(this.out.len() - this.pos);
        buf.put_slice(&this.out[this.pos..this.pos + n]);
        this.pos += n;
        Poll::Ready(Ok(()))
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for RawTarget<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `input` in pieces of `step` bytes.
    fn fix(input: &[u8], step: usize) -> Vec<u8> {
        let mut fixer = Fixer::new();
        let mut out = Vec::new();
        for piece in input.chunks(step) {
            fixer.feed(piece, &mut out);
        }
        out
    }

    #[test]
    fn raw_json_in_targets_is_encoded_in_every_request() {
        let input = b"GET /events/ws?filters={\"label\":[\"a<b\"]} HTTP/1.1\r\nHost: x\r\n\r\n\
            POST /x?q=\"1\" HTTP/1.1\r\nContent-Length: 5\r\n\r\n\"\"\"\"\"\
            GET /y?z=\"\" HTTP/1.1\r\n\r\n";
        let expected =
            b"GET /events/ws?filters={%22label%22:[%22a%3Cb%22]} HTTP/1.1\r\nHost: x\r\n\r\n\
            POST /x?q=%221%22 HTTP/1.1\r\nContent-Length: 5\r\n\r\n\"\"\"\"\"\
            GET /y?z=%22%22 HTTP/1.1\r\n\r\n";
        for step in [1, 2, 7, input.len()] {
            assert_eq!(fix(input, step), expected.to_vec(), "step {step}");
        }
    }

    #[test]
    fn encoded_targets_and_bodies_are_unchanged() {
        let input = b"GET /containers/json?filters=%7B%22a%22%7D&all=1 HTTP/1.1\r\n\r\n";
        assert_eq!(fix(input, 3), input.to_vec());
    }

    #[test]
    fn unfollowable_heads_pass_the_rest_through() {
        for head in [
            "Upgrade: websocket\r\nConnection: Upgrade",
            "Transfer-Encoding: chunked",
            "Content-Length: 1\r\nContent-Length: 2",
            "Content-Length: lots",
        ] {
            let input = format!("GET /a HTTP/1.1\r\n{head}\r\n\r\nGET /\"b\" HTTP/1.1\r\n\r\n");
            assert_eq!(
                fix(input.as_bytes(), 5),
                input.as_bytes().to_vec(),
                "{head}"
            );
        }
    }

    #[test]
    fn long_header_lines_are_not_kept() {
        let long = "x".repeat(10_000);
        let input = format!("GET /a HTTP/1.1\r\nCookie: {long}\r\n\r\nGET /\"b\" HTTP/1.1\r\n\r\n");
        let mut fixer = Fixer::new();
        let mut out = Vec::new();
        fixer.feed(input.as_bytes(), &mut out);
        assert!(fixer.line.capacity() <= 2 * HEADER_PREFIX);
        assert!(
            String::from_utf8(out)
                .unwrap()
                .ends_with("GET /%22b%22 HTTP/1.1\r\n\r\n")
        );
    }
}
