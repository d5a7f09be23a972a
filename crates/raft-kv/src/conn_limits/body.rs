//! A request body with the body timeout: the longest a handler waits for its next bytes.

use std::future::Future;
use std::pin::Pin;
use std::task::Context;
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use http_body::Body;
use http_body::Frame;
use http_body::SizeHint;
use tokio::time::Sleep;

use super::Conn;
use super::Timeout;

/// The error type of the bodies handlers read.
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A body whose reader waits at most `timeout` for each next frame. Only time spent waiting
/// for the client counts: the clock starts when the reader asks and finds nothing, so a
/// handler that is slow between reads (writing a snapshot chunk to disk) is never cut.
pub struct TimedBody<B> {
    inner: B,
    timeout: Duration,
    waiting: Option<Pin<Box<Sleep>>>,
    /// The connection to close when the body stalls (HTTP/1, whose framing is then lost);
    /// `None` fails only this request (an HTTP/2 stream).
    close: Option<Conn>,
    timed_out: bool,
}

impl<B> TimedBody<B> {
    /// `inner` with the body timeout `timeout`; a stall closes `close` if given.
    pub fn new(inner: B, timeout: Duration, close: Option<Conn>) -> Self {
        Self {
            inner,
            timeout,
            waiting: None,
            close,
            timed_out: false,
        }
    }
}

impl<B> Body for TimedBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if this.timed_out {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                this.waiting = None;
                Poll::Ready(frame.map(|f| f.map_err(Into::into)))
            }
            Poll::Pending => {
                let timeout = this.timeout;
                let waiting = this
                    .waiting
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                if waiting.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                this.timed_out = true;
                let message = format!(
                    "no bytes of the request body for {} (body_timeout)",
                    Timeout(timeout)
                );
                if let Some(conn) = &this.close {
                    conn.close(format_args!("{message}"));
                }
                Poll::Ready(Some(Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    message,
                )
                .into())))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.timed_out || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
