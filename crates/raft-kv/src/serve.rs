//! Serving a router over HTTP/1 with every request head checked by a [`HeadGuard`], so a head
//! over a limit is answered with a JSON `{"error": ...}` body instead of hyper's bare status;
//! over TLS when the listener has it (see [`crate::tls`]). Connections are admitted, timed and
//! closed by a [`Tracker`] (see [`crate::conn_limits`]).

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::io::AsyncRead;
use tokio::io::AsyncReadExt;
use tokio::io::AsyncWrite;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt as _;

use crate::conn_limits::Conn;
use crate::conn_limits::TimedBody;
use crate::conn_limits::Tracker;
use crate::head_guard::HeadGuard;
use crate::head_guard::HeadLimits;
use crate::head_guard::Refusal;
use crate::tls::TlsSession;

/// After a refusal, how much more of the request is read and dropped, and for how long, so the
/// client has sent it all when the connection closes: closing with unread bytes makes the kernel
/// reset the connection, and the client may then lose the answer.
const DRAIN_BYTES: usize = 64 << 20;
/// How long a refused connection is drained at most.
const DRAIN_TIME: Duration = Duration::from_secs(5);
/// How long a connection whose head timed out is drained: a slowloris client may trickle on
/// for ever, and its socket is what the timeout gives back.
const TIMEOUT_DRAIN_TIME: Duration = Duration::from_secs(1);

/// TLS of a listener: the acceptor, and the port's name for log lines.
#[derive(Clone)]
pub struct ListenerTls {
    /// Finishes the handshake of an accepted connection.
    pub acceptor: TlsAcceptor,
    /// The port's name (`raft`, `HTTP`) in log lines.
    pub port: &'static str,
}

/// Accept the connections `tracker` admits on `listener` and serve `router` on each (over TLS
/// if `tls` is given), until the task is dropped.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: HeadLimits,
    tracker: Arc<Tracker>,
    tls: Option<ListenerTls>,
) {
    loop {
        // The tracker backs off on accept errors (out of files) and never returns one.
        let (stream, conn) = tracker.accept(&listener).await;
        tokio::spawn(handle(stream, conn, router.clone(), limits, tls.clone()));
    }
}

/// One accepted connection: the TLS handshake first, a step of its own bounded by
/// [`crate::tls::HANDSHAKE_TIMEOUT`] (and closed with the connection when its tracker closes
/// it), then HTTP on the plain or the TLS stream.
async fn handle(stream: TcpStream, conn: Conn, router: Router, limits: HeadLimits, tls: Option<ListenerTls>) {
    match tls {
        None => connection(stream, None, conn, router, limits).await,
        Some(tls) => {
            let handshake = crate::tls::accept(&tls.acceptor, stream, tls.port, &conn);
            let accepted = tokio::select! {
                accepted = handshake => accepted,
                () = conn.closed() => return,
            };
            let Some((stream, peer)) = accepted else {
                return;
            };
            connection(stream, Some(TlsSession(peer)), conn, router, limits).await;
        }
    }
}

/// Serve one connection; answer a refused head once hyper has answered everything before it.
/// The connection closes at once when its tracker closes it (evicted, idle, a stalled body).
/// Over TLS every request carries the [`TlsSession`] and the [`crate::tls::PeerNode`] the client
/// certificate names, if any, as extensions.
async fn connection<S>(stream: S, tls: Option<TlsSession>, conn: Conn, router: Router, limits: HeadLimits)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let guard = HeadGuard::new(stream, limits).with_header_timeout(conn.limits().header_timeout);
    let body_timeout = conn.limits().body_timeout;
    let tracked = conn.clone();
    // Each request marks the connection busy until it is answered, and its body gets the body
    // timeout (a stall closes the connection: its framing is lost).
    let service = hyper::service::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
        let busy = tracked.busy();
        let mut request = request.map(|body| TimedBody::new(body, body_timeout, Some(tracked.clone())));
        if let Some(session) = tls {
            request.extensions_mut().insert(session);
            if let Some(peer) = session.0 {
                request.extensions_mut().insert(peer);
            }
        }
        let router = router.clone();
        async move {
            let _busy = busy;
            router.oneshot(request).await
        }
    });
    let served = hyper::server::conn::http1::Builder::new()
        // The guard only hands on complete heads within its limits, so hyper's buffer never
        // fills with one; its other refusals are unreachable too.
        .max_buf_size(limits.max_head.saturating_add(64 << 10))
        .max_headers(limits.max_headers)
        // The guard ends the stream hyper reads at a refused head, perhaps while hyper still
        // answers a request before it: that answer must still be written.
        .half_close(true)
        .serve_connection(TokioIo::new(guard), service)
        .without_shutdown();
    let served = tokio::select! {
        served = served => served,
        // Dropping hyper's connection closes the socket.
        () = conn.closed() => return,
    };
    let Ok(parts) = served else {
        // The client went away, or sent what hyper refuses after the guard let it through
        // (hyper answered that itself); nothing more to say on this connection.
        return;
    };
    let (mut stream, refusal) = parts.io.into_inner().into_parts();
    if let Some(refusal) = refusal {
        let drain = if refusal.status == StatusCode::REQUEST_TIMEOUT {
            conn.log(format_args!("{}", refusal.message));
            TIMEOUT_DRAIN_TIME
        } else {
            DRAIN_TIME
        };
        answer(&mut stream, &refusal, drain).await;
    }
    let _ = stream.shutdown().await;
}

/// Write `refusal` as a JSON answer, then read what the client still sends (see [`DRAIN_BYTES`]).
async fn answer<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S, refusal: &Refusal, drain_time: Duration) {
    let body = json!({ "error": refusal.message }).to_string();
    let head = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        refusal.status.as_u16(),
        refusal.status.canonical_reason().unwrap_or("Error"),
        body.len()
    );
    if stream.write_all(head.as_bytes()).await.is_err() || stream.write_all(body.as_bytes()).await.is_err() {
        return;
    }
    let _ = stream.flush().await;
    let _ = stream.shutdown().await;
    let drain = async {
        let mut buf = vec![0u8; 64 << 10];
        let mut left = DRAIN_BYTES;
        while left > 0 {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
    };
    let _ = tokio::time::timeout(drain_time, drain).await;
}
