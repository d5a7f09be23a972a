//! A gRPC client of a cluster that fails over between its nodes.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering;
use std::time::Duration;
use std::time::Instant;

use tonic::Code;
use tonic::Request;
use tonic::Response;
use tonic::Status;
use tonic::metadata::AsciiMetadataValue;
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::transport::Endpoint;

use super::AUTHORIZATION;
use super::proto::key_value_client::KeyValueClient;
use crate::tls::ClientTls;

type CallFuture<'a, T> = Pin<Box<dyn Future<Output = Result<Response<T>, Status>> + Send + 'a>>;

/// A gRPC client of several nodes that fails over between them: a node that cannot be reached
/// or answers UNAVAILABLE (nothing happened) is followed by the next one until the deadline;
/// any other answer, UNKNOWN included, is returned as it is.
pub struct GrpcClient {
    nodes: Vec<String>,
    next: AtomicUsize,
    timeout: Duration,
    deadline: Duration,
    token: BearerToken,
    tls: Option<ClientTls>,
}

/// Adds `authorization: Bearer <token>` to every call, if there is a token.
#[derive(Clone, Default)]
pub struct BearerToken(Option<AsciiMetadataValue>);

impl Interceptor for BearerToken {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(token) = &self.0 {
            request.metadata_mut().insert(AUTHORIZATION, token.clone());
        }
        Ok(request)
    }
}

/// The channel of a [`GrpcClient`] call: its token added to every request.
pub type ClientChannel = InterceptedService<Channel, BearerToken>;

impl GrpcClient {
    /// A client of the gRPC addresses `nodes`.
    pub fn new(nodes: Vec<String>, timeout: Duration, deadline: Duration) -> Self {
        Self {
            nodes,
            next: AtomicUsize::new(0),
            timeout,
            deadline,
            token: BearerToken::default(),
            tls: None,
        }
    }

    /// Send `token` as a bearer token with every call.
    pub fn with_token(mut self, token: &str) -> Result<Self, Status> {
        let value = format!("Bearer {token}")
            .parse()
            .map_err(|_| Status::invalid_argument("the token is not printable ASCII"))?;
        self.token = BearerToken(Some(value));
        Ok(self)
    }

    /// Speak TLS with `tls` to every node.
    #[must_use]
    pub fn with_tls(mut self, tls: ClientTls) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Run `call` against the nodes in turn until one accepts it.
    pub async fn call<T, F>(&self, mut call: F) -> Result<T, Status>
    where
        F: for<'a> FnMut(&'a mut KeyValueClient<ClientChannel>) -> CallFuture<'a, T>,
    {
        let start = Instant::now();
        let mut attempt = 0usize;
        let mut last = Status::unavailable("no nodes given");
        loop {
            let at = self.next.load(Ordering::Relaxed) % self.nodes.len().max(1);
            let Some(node) = self.nodes.get(at) else {
                return Err(last);
            };
            let endpoint = Endpoint::from_shared(format!("http://{node}"))
                .map_err(|e| Status::invalid_argument(format!("node address {node}: {e}")))?
                .connect_timeout(Duration::from_secs(1))
                .timeout(self.timeout);
            let connected = match &self.tls {
                Some(tls) => tls.grpc_channel(endpoint).await,
                None => endpoint.connect().await,
            };
            match connected {
                Ok(channel) => {
                    // Values come back whatever their size: the server bounded what it stored.
                    let mut client = KeyValueClient::with_interceptor(channel, self.token.clone())
                        .max_decoding_message_size(usize::MAX);
                    match call(&mut client).await {
                        Ok(response) => return Ok(response.into_inner()),
                        Err(s) if s.code() == Code::Unavailable => {
                            last = Status::unavailable(format!("{node}: {}", s.message()));
                        }
                        Err(s) => return Err(s),
                    }
                }
                Err(e) => last = Status::unavailable(format!("{node}: {e}")),
            }
            attempt += 1;
            self.next.store(at + 1, Ordering::Relaxed);
            if start.elapsed() >= self.deadline {
                return Err(last);
            }
            if attempt.is_multiple_of(self.nodes.len()) {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}
