//! Serving a router over HTTP/1 with every request head checked by a [`HeadGuard`], so a head
//! over a limit is answered with a JSON `{"error": ...}` body instead of hyper's bare status.

use std::time::Duration;

use axum::Router;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use serde_json::json;
use tokio::io::AsyncReadExt;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::net::TcpStream;

use crate::head_guard::HeadGuard;
use crate::head_guard::HeadLimits;
use crate::head_guard::Refusal;

/// After a refusal, how much more of the request is read and dropped, and for how long, so the
/// client has sent it all when the connection closes: closing with unread bytes makes the kernel
/// reset the connection, and the client may then lose the answer.
const DRAIN_BYTES: usize = 64 << 20;
/// How long a refused connection is drained at most.
const DRAIN_TIME: Duration = Duration::from_secs(5);

/// Accept connections on `listener` and serve `router` on each, until the task is dropped.
pub async fn serve(listener: TcpListener, router: Router, limits: HeadLimits) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors or a connection reset while queued: wait a little
                // rather than spin, the listener itself is fine.
                eprintln!("raft-kv: accepting a connection: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(connection(stream, router.clone(), limits));
    }
}

/// Serve one connection; answer a refused head once hyper has answered everything before it.
async fn connection(stream: TcpStream, router: Router, limits: HeadLimits) {
    let guard = HeadGuard::new(stream, limits);
    let served = hyper::server::conn::http1::Builder::new()
        // The guard only hands on complete heads within its limits, so hyper's buffer never
        // fills with one; its other refusals are unreachable too.
        .max_buf_size(limits.max_head.saturating_add(64 << 10))
        .max_headers(limits.max_headers)
        // The guard ends the stream hyper reads at a refused head, perhaps while hyper still
        // answers a request before it: that answer must still be written.
        .half_close(true)
        .serve_connection(TokioIo::new(guard), TowerToHyperService::new(router))
        .without_shutdown()
        .await;
    let Ok(parts) = served else {
        // The client went away, or sent what hyper refuses after the guard let it through
        // (hyper answered that itself); nothing more to say on this connection.
        return;
    };
    let (mut stream, refusal) = parts.io.into_inner().into_parts();
    if let Some(refusal) = refusal {
        answer(&mut stream, &refusal).await;
    }
    let _ = stream.shutdown().await;
}

/// Write `refusal` as a JSON answer, then read what the client still sends (see [`DRAIN_BYTES`]).
async fn answer(stream: &mut TcpStream, refusal: &Refusal) {
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
    let _ = tokio::time::timeout(DRAIN_TIME, drain).await;
}
