//! A guard between a connection (TCP, or TLS over TCP) and hyper that reads every request head before hyper does.
//!
//! hyper answers a head it cannot take (a URI over its fixed 64 KiB, a head over its read
//! buffer, more than 100 headers, bytes it cannot parse) with a bare status line and no body,
//! and no hook changes that. The guard holds each head back until it is complete, checks it
//! against this node's limits, which are below hyper's, and only then hands it on; body bytes
//! pass through as they arrive, framed by `Content-Length` or chunked encoding so the guard
//! knows where the next head starts. A head over a limit is never shown to hyper: the guard
//! records a [`Refusal`] and ends the stream hyper reads, hyper finishes the requests before
//! it, and [`crate::serve`] answers the refusal as JSON.
//!
//! With a header timeout ([`HeadGuard::with_header_timeout`]) a head must also be complete
//! within the timeout of its first byte. A head that is late is refused with 408 the same way,
//! so a client that trickles a head (slowloris) holds its connection no longer than the timeout.
//! A connection that sends nothing is idle, not late: client pools open connections ahead of
//! use, and a 408 on one would race with its first request (the idle timeout closes it).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::Context;
use std::task::Poll;
use std::task::ready;
use std::time::Duration;

use axum::http::StatusCode;
use tokio::io::AsyncRead;
use tokio::io::AsyncWrite;
use tokio::io::ReadBuf;
use tokio::time::Sleep;

/// The heads a guard lets through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
// Each field is a maximum, and says so like the settings it comes from.
#[allow(clippy::struct_field_names)]
pub struct HeadLimits {
    /// The longest request target (path and query), in bytes.
    pub max_uri: usize,
    /// The longest head (request line and headers), in bytes.
    pub max_head: usize,
    /// The most header fields (hyper's own bound is 100).
    pub max_headers: usize,
}

/// A head the guard refused: the status and message to answer with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The HTTP status.
    pub status: StatusCode,
    /// The message of the `{"error": ...}` body.
    pub message: String,
}

/// Where the guard is in the byte stream of a connection.
#[derive(Debug)]
enum Framing {
    /// Reading a head, held back in `head` until complete.
    Head,
    /// Passing this many more bytes of a body with a `Content-Length`.
    Body(u64),
    /// Passing a chunked body.
    Chunked(Chunk),
    /// No more checks on this connection (a chunked body the guard cannot follow: hyper refuses
    /// it itself and closes the connection, so no later head arrives).
    Through,
}

/// Where the guard is in a chunked body.
#[derive(Debug)]
enum Chunk {
    /// The chunk-size line so far.
    Size(Vec<u8>),
    /// This many more bytes of chunk data.
    Data(u64),
    /// The line end after chunk data.
    DataEnd,
    /// A trailer line so far; an empty one ends the body.
    Trailer(Vec<u8>),
}

/// The longest chunk-size or trailer line the guard follows.
const MAX_CHUNK_LINE: usize = 4096;

/// A stream whose request heads are checked before hyper reads them (see the module docs).
pub struct HeadGuard<S> {
    stream: S,
    framer: Framer,
    /// How much of the framer's `ready` bytes hyper has read.
    ready_at: usize,
    scratch: Vec<u8>,
    eof: bool,
    /// The header timeout, if any.
    header_timeout: Option<Duration>,
    /// When the head being read is late (armed at its first byte).
    head_deadline: Option<Pin<Box<Sleep>>>,
}

impl<S> HeadGuard<S> {
    /// Guard `stream` with `limits`.
    pub fn new(stream: S, limits: HeadLimits) -> Self {
        Self {
            stream,
            framer: Framer::new(limits),
            ready_at: 0,
            scratch: vec![0; 16 << 10],
            eof: false,
            header_timeout: None,
            head_deadline: None,
        }
    }

    /// Refuse a head that is not complete `timeout` after its first byte with 408.
    #[must_use]
    pub fn with_header_timeout(mut self, timeout: Duration) -> Self {
        self.header_timeout = Some(timeout);
        self
    }

    /// After the framer took bytes: disarm the deadline once the awaited head is complete, arm
    /// it at the first byte of the next one, and refuse if it has passed.
    fn track_head(&mut self, heads_before: u64) {
        let Some(timeout) = self.header_timeout else {
            return;
        };
        let framer = &self.framer;
        if framer.heads > heads_before {
            self.head_deadline = None;
        }
        if matches!(framer.framing, Framing::Head) && !framer.head.is_empty() && self.head_deadline.is_none()
        {
            self.head_deadline = Some(Box::pin(tokio::time::sleep(timeout)));
        }
        if self.head_deadline.as_ref().is_some_and(|d| d.is_elapsed()) {
            self.time_out(timeout);
        }
    }

    fn time_out(&mut self, timeout: Duration) {
        self.head_deadline = None;
        if self.framer.refusal.is_none() {
            self.framer.refuse(
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "the request head was not complete within {} (header_timeout)",
                    crate::conn_limits::Timeout(timeout)
                ),
            );
        }
    }

    /// The refused head, if any, and the stream to answer it on.
    pub fn into_parts(self) -> (S, Option<Refusal>) {
        (self.stream, self.framer.refusal)
    }
}

/// The framing of a connection's incoming bytes: which are checked and may go to hyper.
struct Framer {
    limits: HeadLimits,
    framing: Framing,
    /// The head being read, not yet handed on.
    head: Vec<u8>,
    /// Bytes checked and not yet read by hyper.
    ready: Vec<u8>,
    refusal: Option<Refusal>,
    /// How many heads were complete so far.
    heads: u64,
}

impl Framer {
    fn new(limits: HeadLimits) -> Self {
        Self {
            limits,
            framing: Framing::Head,
            head: Vec::new(),
            ready: Vec::new(),
            refusal: None,
            heads: 0,
        }
    }

    fn refuse(&mut self, status: StatusCode, message: String) {
        self.refusal = Some(Refusal { status, message });
        self.head = Vec::new();
    }

    /// Run the framing over bytes read from the client, moving what is checked to `ready`.
    fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() && self.refusal.is_none() {
            match &mut self.framing {
                Framing::Through => {
                    self.ready.extend_from_slice(data);
                    return;
                }
                Framing::Body(left) => {
                    let n = usize::try_from(*left).unwrap_or(usize::MAX).min(data.len());
                    self.ready.extend_from_slice(&data[..n]);
                    *left -= n as u64;
                    if *left == 0 {
                        self.framing = Framing::Head;
                    }
                    data = &data[n..];
                }
                Framing::Chunked(chunk) => {
                    let (used, next) = chunk_step(chunk, data);
                    self.ready.extend_from_slice(&data[..used]);
                    data = &data[used..];
                    if let Some(next) = next {
                        self.framing = next;
                    }
                }
                Framing::Head => {
                    let before = self.head.len();
                    self.head.extend_from_slice(data);
                    match self.check_head() {
                        HeadCheck::Partial => return,
                        HeadCheck::Refused(status, message) => {
                            self.refuse(status, message);
                            return;
                        }
                        HeadCheck::Complete(len, next) => {
                            // `data` continues after the head: the bytes of it already held
                            // before this call are not in `data`.
                            let used = len - before;
                            self.ready.extend_from_slice(&self.head[..len]);
                            self.head.clear();
                            self.heads += 1;
                            self.framing = next;
                            data = &data[used..];
                        }
                    }
                }
            }
        }
    }

    /// Check the head held so far.
    fn check_head(&self) -> HeadCheck {
        let limits = self.limits;
        let mut headers = vec![httparse::EMPTY_HEADER; limits.max_headers];
        let mut request = httparse::Request::new(&mut headers);
        let parsed = request.parse(&self.head);
        let line_end = self.head.iter().position(|&b| b == b'\n');
        // The request line: method, target and version; a target over the limit is 414 even
        // while the line is still arriving.
        let target_len = request.path.map_or_else(
            || line_end.map_or(self.head.len(), |end| end).saturating_sub(16),
            str::len,
        );
        if target_len > limits.max_uri {
            return HeadCheck::Refused(
                StatusCode::URI_TOO_LONG,
                format!(
                    "the request target is over the limit of {} bytes (a key of max_key_bytes, percent-encoded)",
                    limits.max_uri
                ),
            );
        }
        let too_large = || {
            HeadCheck::Refused(
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                format!(
                    "the request head is over the limit of {} bytes or {} header fields",
                    limits.max_head, limits.max_headers
                ),
            )
        };
        match parsed {
            Ok(httparse::Status::Partial) if self.head.len() > limits.max_head => too_large(),
            Ok(httparse::Status::Partial) => HeadCheck::Partial,
            Ok(httparse::Status::Complete(len)) if len > limits.max_head => too_large(),
            Ok(httparse::Status::Complete(len)) => match body_framing(request.headers) {
                Ok(next) => HeadCheck::Complete(len, next),
                Err(message) => HeadCheck::Refused(StatusCode::BAD_REQUEST, message),
            },
            Err(httparse::Error::TooManyHeaders) => too_large(),
            Err(e) => HeadCheck::Refused(StatusCode::BAD_REQUEST, format!("a malformed request head: {e}")),
        }
    }
}

/// What the head held so far is.
enum HeadCheck {
    Partial,
    Complete(usize, Framing),
    Refused(StatusCode, String),
}

/// How the body after a request head is framed (RFC 9112, section 6.3). Anything ambiguous is
/// refused: the guard and hyper must agree on where the next head starts.
fn body_framing(headers: &[httparse::Header<'_>]) -> Result<Framing, String> {
    let mut length: Option<u64> = None;
    let mut chunked = None;
    for header in headers {
        if header.name.eq_ignore_ascii_case("content-length") {
            let value = std::str::from_utf8(header.value)
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .ok_or("an invalid Content-Length")?;
            if length.is_some_and(|l| l != value) {
                return Err("two different Content-Length values".into());
            }
            length = Some(value);
        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
            let last = std::str::from_utf8(header.value)
                .ok()
                .and_then(|v| v.rsplit(',').next())
                .map(str::trim)
                .unwrap_or_default();
            chunked = Some(last.eq_ignore_ascii_case("chunked"));
        }
    }
    match (chunked, length) {
        (Some(_), Some(_)) => Err("both Transfer-Encoding and Content-Length".into()),
        (Some(true), None) => Ok(Framing::Chunked(Chunk::Size(Vec::new()))),
        (Some(false), None) => Err("a Transfer-Encoding that does not end in chunked".into()),
        (None, Some(0) | None) => Ok(Framing::Head),
        (None, Some(n)) => Ok(Framing::Body(n)),
    }
}

/// Follow a chunked body over `data`: how many bytes were passed, and the framing to switch to
/// when the body ended or cannot be followed.
fn chunk_step(chunk: &mut Chunk, data: &[u8]) -> (usize, Option<Framing>) {
    match chunk {
        Chunk::Data(left) => {
            let n = usize::try_from(*left).unwrap_or(usize::MAX).min(data.len());
            *left -= n as u64;
            if *left == 0 {
                *chunk = Chunk::DataEnd;
            }
            (n, None)
        }
        Chunk::DataEnd => match data.iter().position(|&b| b == b'\n') {
            Some(at) => {
                *chunk = Chunk::Size(Vec::new());
                (at + 1, None)
            }
            None => (data.len(), None),
        },
        Chunk::Size(_) | Chunk::Trailer(_) => {
            let trailer = matches!(chunk, Chunk::Trailer(_));
            let (Chunk::Size(line) | Chunk::Trailer(line)) = chunk else {
                return (0, Some(Framing::Through));
            };
            let (used, done) = match data.iter().position(|&b| b == b'\n') {
                Some(at) => (at + 1, true),
                None => (data.len(), false),
            };
            line.extend_from_slice(&data[..used]);
            if line.len() > MAX_CHUNK_LINE {
                return (used, Some(Framing::Through));
            }
            if !done {
                return (used, None);
            }
            let text = line.strip_suffix(b"\n").unwrap_or(line);
            let text = text.strip_suffix(b"\r").unwrap_or(text);
            let next = if trailer {
                if text.is_empty() {
                    return (used, Some(Framing::Head));
                }
                Chunk::Trailer(Vec::new())
            } else {
                let digits = text
                    .split(|&b| b == b';' || b == b' ' || b == b'\t')
                    .next()
                    .unwrap_or_default();
                match std::str::from_utf8(digits)
                    .ok()
                    .and_then(|d| u64::from_str_radix(d, 16).ok())
                {
                    Some(0) => Chunk::Trailer(Vec::new()),
                    Some(size) => Chunk::Data(size),
                    None => return (used, Some(Framing::Through)),
                }
            };
            *chunk = next;
            (used, None)
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for HeadGuard<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            let framer = &mut this.framer;
            if this.ready_at < framer.ready.len() {
                let n = (framer.ready.len() - this.ready_at).min(buf.remaining());
                buf.put_slice(&framer.ready[this.ready_at..this.ready_at + n]);
                this.ready_at += n;
                if this.ready_at == framer.ready.len() {
                    framer.ready.clear();
                    this.ready_at = 0;
                }
                return Poll::Ready(Ok(()));
            }
            // A refused head ends what hyper reads: it finishes the requests before it and stops.
            if framer.refusal.is_some() || this.eof {
                return Poll::Ready(Ok(()));
            }
            // Body bytes of a known length go straight into hyper's buffer, not through `ready`.
            if let Framing::Body(left) | Framing::Chunked(Chunk::Data(left)) = &mut framer.framing {
                let want = usize::try_from(*left).unwrap_or(usize::MAX).min(buf.remaining());
                let mut direct = ReadBuf::new(buf.initialize_unfilled_to(want));
                ready!(Pin::new(&mut this.stream).poll_read(cx, &mut direct))?;
                let n = direct.filled().len();
                buf.advance(n);
                if n == 0 {
                    this.eof = true;
                    return Poll::Ready(Ok(()));
                }
                *left -= n as u64;
                if *left == 0 {
                    framer.framing = match framer.framing {
                        Framing::Chunked(_) => Framing::Chunked(Chunk::DataEnd),
                        _ => Framing::Head,
                    };
                }
                return Poll::Ready(Ok(()));
            }
            let mut read = ReadBuf::new(&mut this.scratch);
            match Pin::new(&mut this.stream).poll_read(cx, &mut read) {
                Poll::Ready(result) => result?,
                Poll::Pending => {
                    // Nothing more from the client for now: refuse a head that is late.
                    if let Some(deadline) = &mut this.head_deadline
                        && deadline.as_mut().poll(cx).is_ready()
                        && let Some(timeout) = this.header_timeout
                    {
                        this.time_out(timeout);
                        continue;
                    }
                    return Poll::Pending;
                }
            }
            let filled = read.filled();
            if filled.is_empty() {
                // The client closed: hand on a partial head as it is, for hyper to name.
                this.eof = true;
                let head = std::mem::take(&mut framer.head);
                framer.ready.extend_from_slice(&head);
            } else {
                let heads = framer.heads;
                framer.feed(filled);
                this.track_head(heads);
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for HeadGuard<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: HeadLimits = HeadLimits {
        max_uri: 64,
        max_head: 256,
        max_headers: 4,
    };

    /// Feed `input` in pieces of `step` bytes: what was handed on, and the refusal if any.
    fn run(input: &[u8], step: usize) -> (Vec<u8>, Option<Refusal>) {
        let mut framer = Framer::new(LIMITS);
        let mut out = Vec::new();
        for piece in input.chunks(step) {
            framer.feed(piece);
            out.append(&mut framer.ready);
        }
        (out, framer.refusal)
    }

    #[test]
    fn pipelined_requests_pass_unchanged_in_any_pieces() {
        let input: &[u8] = b"GET /key/a HTTP/1.1\r\nhost: x\r\n\r\n\
            POST /key HTTP/1.1\r\ncontent-length: 5\r\n\r\nhello\
            POST /key HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n0\r\nt: 1\r\n\r\n\
            DELETE /key/b HTTP/1.1\r\n\r\n";
        for step in [1, 2, 7, input.len()] {
            let (out, refusal) = run(input, step);
            assert_eq!(refusal, None, "step {step}");
            assert_eq!(out, input, "step {step}");
        }
    }

    #[test]
    fn a_body_that_looks_like_a_head_is_not_checked() {
        let body = format!("GET /{} HTTP/1.1\r\n\r\n", "x".repeat(200));
        let input = format!(
            "POST /key HTTP/1.1\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        let (out, refusal) = run(input.as_bytes(), 3);
        assert_eq!((out.as_slice(), refusal), (input.as_bytes(), None));
    }

    #[test]
    fn heads_over_a_limit_are_refused_before_any_byte_of_them_passes() {
        let first = b"GET /a HTTP/1.1\r\n\r\n".to_vec();
        let cases: Vec<(Vec<u8>, StatusCode)> = vec![
            (
                format!("GET /{} HTTP/1.1\r\n\r\n", "u".repeat(100)).into_bytes(),
                StatusCode::URI_TOO_LONG,
            ),
            // The request line has not ended yet, and is already too long.
            (
                format!("GET /{}", "u".repeat(300)).into_bytes(),
                StatusCode::URI_TOO_LONG,
            ),
            (
                format!("GET / HTTP/1.1\r\nbig: {}\r\n\r\n", "h".repeat(300)).into_bytes(),
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ),
            (
                b"GET / HTTP/1.1\r\na: 1\r\nb: 1\r\nc: 1\r\nd: 1\r\ne: 1\r\n\r\n".to_vec(),
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ),
            (
                b"POST / HTTP/1.1\r\ncontent-length: 1\r\ntransfer-encoding: chunked\r\n\r\n".to_vec(),
                StatusCode::BAD_REQUEST,
            ),
            (
                b"POST / HTTP/1.1\r\ncontent-length: x\r\n\r\n".to_vec(),
                StatusCode::BAD_REQUEST,
            ),
            (b"G\x01T / HTTP/1.1\r\n\r\n".to_vec(), StatusCode::BAD_REQUEST),
        ];
        for (bad, status) in cases {
            let mut input = first.clone();
            input.extend_from_slice(&bad);
            for step in [1, 5, input.len()] {
                let (out, refusal) = run(&input, step);
                assert_eq!(out, first, "{bad:?} step {step}");
                let refusal = refusal.unwrap_or_else(|| panic!("{bad:?} step {step}: not refused"));
                assert_eq!(refusal.status, status, "{bad:?}: {}", refusal.message);
            }
        }
    }

    #[test]
    fn a_chunked_body_the_guard_cannot_follow_passes_through() {
        let input: &[u8] =
            b"POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\nzz\r\nGET /x HTTP/1.1\r\n\r\n";
        let (out, refusal) = run(input, 4);
        assert_eq!((out.as_slice(), refusal), (input, None));
    }
}
