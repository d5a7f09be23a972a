//! The gRPC listener's connections: an accept stream for tonic's `serve_with_incoming` that
//! applies the cap, and a tower layer that marks calls in progress and times their bodies.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Context;
use std::task::Poll;

use axum::http;
use futures::Stream;
use http_body_util::BodyExt as _;
use tokio::io::AsyncRead;
use tokio::io::AsyncWrite;
use tokio::io::ReadBuf;
use tokio::net::TcpListener;
use tokio::net::TcpStream;

use super::Conn;
use super::TimedBody;
use super::Tracker;

/// An admitted gRPC connection, plain TCP or TLS (`S`): reads and writes fail once its
/// listener closes it (evicted or idle), which ends the HTTP/2 connection and releases its
/// socket.
pub struct GrpcIo<S = TcpStream> {
    stream: S,
    conn: Conn,
}

/// What tonic puts in every request's extensions for a [`GrpcIo`] connection: the connection,
/// so [`busy_layer`] can mark its calls.
#[derive(Clone)]
pub struct GrpcConn(pub Conn);

impl tonic::transport::server::Connected for GrpcIo<TcpStream> {
    type ConnectInfo = GrpcConn;

    fn connect_info(&self) -> GrpcConn {
        GrpcConn(self.conn.clone())
    }
}

/// The connections `listener` admits under `tracker`, for `serve_with_incoming`.
pub fn incoming(listener: TcpListener, tracker: Arc<Tracker>) -> impl Stream<Item = io::Result<GrpcIo>> {
    futures::stream::unfold((listener, tracker), |(listener, tracker)| async move {
        let (stream, conn) = tracker.accept(&listener).await;
        Some((Ok(GrpcIo { stream, conn }), (listener, tracker)))
    })
}

impl<S> GrpcIo<S> {
    /// `stream`, admitted under the connection limits as `conn`.
    pub fn new(stream: S, conn: Conn) -> Self {
        Self { stream, conn }
    }

    /// The stream it wraps.
    pub fn get_ref(&self) -> &S {
        &self.stream
    }

    /// Its place under the listener's connection limits.
    pub fn conn(&self) -> &Conn {
        &self.conn
    }

    fn check(&self, cx: &mut Context<'_>) -> io::Result<()> {
        match self.conn.poll_closed(cx) {
            Poll::Ready(()) => Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "closed by the connection limits",
            )),
            Poll::Pending => Ok(()),
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for GrpcIo<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.check(cx)?;
        Pin::new(&mut this.stream).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for GrpcIo<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.check(cx)?;
        Pin::new(&mut this.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.check(cx)?;
        Pin::new(&mut this.stream).poll_write_vectored(cx, bufs)
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

/// The tower layer of the gRPC server: each call marks its connection busy until it is
/// answered, and its request body gets the body timeout (a stall fails the call with
/// `DEADLINE_EXCEEDED`; the connection serves on).
pub fn busy_layer() -> BusyLayer {
    BusyLayer
}

/// See [`busy_layer`].
#[derive(Debug, Clone, Copy)]
pub struct BusyLayer;

impl<S> tower::Layer<S> for BusyLayer {
    type Service = BusyService<S>;

    fn layer(&self, inner: S) -> BusyService<S> {
        BusyService { inner }
    }
}

/// See [`busy_layer`].
#[derive(Debug, Clone)]
pub struct BusyService<S> {
    inner: S,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, R> tower::Service<http::Request<tonic::body::Body>> for BusyService<S>
where
    S: tower::Service<http::Request<tonic::body::Body>, Response = R>,
    S::Future: Send + 'static,
{
    type Response = R;
    type Error = S::Error;
    type Future = BoxFuture<Result<R, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        let conn = request
            .extensions()
            .get::<GrpcConn>()
            .map(|c| c.0.clone())
            .or_else(|| {
                request
                    .extensions()
                    .get::<crate::tls::GrpcPeer>()
                    .and_then(|p| p.1.clone())
            });
        let Some(conn) = conn else {
            // Not served through `incoming` (a test's own server): nothing to track.
            return Box::pin(self.inner.call(request));
        };
        let busy = conn.busy();
        let timeout = conn.limits().body_timeout;
        let request = request.map(|body| {
            tonic::body::Body::new(TimedBody::new(body, timeout, None).map_err(|e| {
                match e.downcast::<tonic::Status>() {
                    Ok(status) => *status,
                    Err(e) => tonic::Status::deadline_exceeded(e.to_string()),
                }
            }))
        });
        let call = self.inner.call(request);
        Box::pin(async move {
            let _busy = busy;
            call.await
        })
    }
}
