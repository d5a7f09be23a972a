//! The TLS connections of the gRPC server: each handshake on its own, bounded.

use std::future::Future;
use std::pin::Pin;

use crate::tls::GrpcTlsStream;

/// Accept TLS connections on `listener` for the gRPC server: each handshake runs on its own,
/// bounded by [`crate::tls::HANDSHAKE_TIMEOUT`]; a failed one is logged and dropped.
pub fn tls_incoming(
    listener: tokio::net::TcpListener,
    tracker: std::sync::Arc<crate::conn_limits::Tracker>,
    acceptor: tokio_rustls::TlsAcceptor,
) -> impl futures::Stream<Item = Result<GrpcTlsStream, std::io::Error>> {
    use futures::StreamExt as _;
    type Handshake = Pin<Box<dyn Future<Output = Option<GrpcTlsStream>> + Send>>;
    let pending = futures::stream::FuturesUnordered::<Handshake>::new();
    futures::stream::unfold(
        (listener, tracker, acceptor, pending),
        |(listener, tracker, acceptor, mut pending)| async move {
            loop {
                tokio::select! {
                    // The tracker admits the connection (and backs off on accept errors).
                    (tcp, conn) = tracker.accept(&listener) => {
                        let acceptor = acceptor.clone();
                        pending.push(Box::pin(async move {
                            let handshake = crate::tls::accept(&acceptor, tcp, "gRPC", &conn);
                            tokio::select! {
                                done = handshake => done.map(|(tls, _)| GrpcTlsStream::new(tls, conn)),
                                () = conn.closed() => None,
                            }
                        }));
                    }
                    Some(done) = pending.next(), if !pending.is_empty() => {
                        if let Some(stream) = done {
                            return Some((Ok(stream), (listener, tracker, acceptor, pending)));
                        }
                    }
                }
            }
        },
    )
}
