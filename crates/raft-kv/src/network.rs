//! Raft traffic between nodes over HTTP: the openraft network (client side) and the wire
//! format shared with the server side in [`crate::server`].
//!
//! Append-entries and vote requests are one `POST` each with a bincode body, answered with a
//! bincode `Result` (openraft's own error travels back as a remote error). A snapshot is one
//! `POST` whose body is streamed from the snapshot file in 1 MiB chunks after a short header
//! (the leader's vote and the snapshot meta); the receiver writes the chunks into a file in its
//! snapshot directory as they arrive and installs it when the body ends, so neither side holds
//! the snapshot in memory.

use std::future::Future;
use std::io::Read;
use std::io::Seek;
use std::time::Duration;

use bytes::Bytes;
use openraft::error::NetworkError;
use openraft::error::RPCError;
use openraft::error::RaftError;
use openraft::error::ReplicationClosed;
use openraft::error::StreamingError;
use openraft::error::Timeout;
use openraft::error::Unreachable;
use openraft::network::RPCOption;
use openraft::network::RPCTypes;
use openraft::network::RaftNetworkFactory;
use openraft::network::v2::RaftNetworkV2;
use openraft::raft::AppendEntriesRequest;
use openraft::raft::AppendEntriesResponse;
use openraft::raft::SnapshotResponse;
use openraft::raft::VoteRequest;
use openraft::raft::VoteResponse;
use openraft::type_config::alias::SnapshotMetaOf;
use openraft::type_config::alias::SnapshotOf;
use openraft::type_config::alias::VoteOf;
use raft_store::kv::SnapshotFile;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::types::NodeInfo;
use crate::types::TypeConfig;

/// The size of one chunk of a streamed snapshot.
pub const SNAPSHOT_CHUNK: usize = 1 << 20;

/// Encode a raft message for the wire.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, String> {
    bincode::serde::encode_to_vec(value, bincode::config::standard()).map_err(|e| e.to_string())
}

/// Decode a raft message from the wire.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    let (value, used) =
        bincode::serde::decode_from_slice(bytes, bincode::config::standard().with_limit::<{ 1 << 30 }>())
            .map_err(|e| e.to_string())?;
    if used != bytes.len() {
        return Err(format!(
            "{} bytes left over after the message",
            bytes.len() - used
        ));
    }
    Ok(value)
}

/// The header in front of a streamed snapshot: the leader's vote and the snapshot's meta.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
#[serde(bound = "")]
pub struct SnapshotHeader {
    /// The vote of the leader sending the snapshot.
    pub vote: VoteOf<TypeConfig>,
    /// What the snapshot holds.
    pub meta: SnapshotMetaOf<TypeConfig>,
}

/// Creates one [`HttpConnection`] per target node.
#[derive(Clone)]
pub struct HttpNetwork {
    id: u64,
    client: reqwest::Client,
}

impl HttpNetwork {
    /// The network of node `id`, sharing one HTTP client (and its connection pool).
    pub fn new(id: u64) -> Self {
        Self {
            id,
            client: reqwest::Client::builder()
                .tcp_nodelay(true)
                .connect_timeout(Duration::from_secs(2))
                .pool_idle_timeout(Duration::from_secs(30))
                .build()
                .unwrap_or_default(),
        }
    }
}

impl RaftNetworkFactory<TypeConfig> for HttpNetwork {
    type Network = HttpConnection;

    async fn new_client(&mut self, target: u64, node: &NodeInfo) -> Self::Network {
        HttpConnection {
            id: self.id,
            client: self.client.clone(),
            target,
            base: format!("http://{}", node.raft),
        }
    }
}

/// Sends raft RPCs to one node.
pub struct HttpConnection {
    id: u64,
    client: reqwest::Client,
    target: u64,
    base: String,
}

/// How a request failed before an answer came back.
enum SendError {
    Unreachable(String),
    Timeout,
    Network(String),
}

impl HttpConnection {
    async fn post<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        path: &str,
        request: &Req,
        timeout: Duration,
    ) -> Result<Resp, SendError> {
        let body = encode(request).map_err(SendError::Network)?;
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .timeout(timeout)
            .body(body)
            .send()
            .await
            .map_err(|e| classify(&e))?;
        read_answer(response).await
    }

    fn rpc_error<E: std::error::Error>(
        &self,
        e: &SendError,
        timeout: Duration,
        action: RPCTypes,
    ) -> RPCError<TypeConfig, E> {
        match e {
            SendError::Unreachable(m) => RPCError::Unreachable(Unreachable::from_string(m.clone())),
            SendError::Timeout => RPCError::Timeout(Timeout {
                action,
                id: self.id,
                target: self.target,
                timeout,
            }),
            SendError::Network(m) => RPCError::Network(NetworkError::from_string(m.clone())),
        }
    }
}

impl HttpConnection {
    /// One request, one answer: the answer is the remote raft's `Result`, its error fatal.
    async fn unary<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        path: &str,
        rpc: &Req,
        option: &RPCOption,
        action: RPCTypes,
    ) -> Result<Resp, RPCError<TypeConfig>> {
        let timeout = option.soft_ttl();
        let answer: Result<Resp, RaftError<TypeConfig>> = self
            .post(path, rpc, timeout)
            .await
            .map_err(|e| self.rpc_error(&e, timeout, action))?;
        answer.map_err(|e| self.remote_fatal(&e))
    }

    /// The target answered with a fatal error of its raft (it is shutting down or its storage
    /// failed): as good as unreachable, so openraft backs off and retries later.
    fn remote_fatal(&self, e: &RaftError<TypeConfig>) -> RPCError<TypeConfig> {
        RPCError::Unreachable(Unreachable::from_string(format!("node {}: {e}", self.target)))
    }
}

fn classify(e: &reqwest::Error) -> SendError {
    if e.is_timeout() {
        SendError::Timeout
    } else if e.is_connect() {
        SendError::Unreachable(e.to_string())
    } else {
        SendError::Network(e.to_string())
    }
}

async fn read_answer<Resp: DeserializeOwned>(response: reqwest::Response) -> Result<Resp, SendError> {
    let status = response.status();
    let body = response.bytes().await.map_err(|e| classify(&e))?;
    if !status.is_success() {
        return Err(SendError::Network(format!(
            "HTTP {status}: {}",
            String::from_utf8_lossy(&body)
        )));
    }
    decode(&body).map_err(|e| SendError::Network(format!("undecodable answer: {e}")))
}

impl RaftNetworkV2<TypeConfig> for HttpConnection {
    type SnapshotData = SnapshotFile;

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.unary("/raft/append", &rpc, &option, RPCTypes::AppendEntries)
            .await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.unary("/raft/vote", &rpc, &option, RPCTypes::Vote).await
    }

    async fn pre_vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.unary("/raft/pre-vote", &rpc, &option, RPCTypes::Vote).await
    }

    async fn full_snapshot(
        &mut self,
        vote: VoteOf<TypeConfig>,
        snapshot: SnapshotOf<TypeConfig, SnapshotFile>,
        cancel: impl Future<Output = ReplicationClosed> + openraft::OptionalSend + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        let header = encode(&SnapshotHeader {
            vote,
            meta: snapshot.meta.clone(),
        })
        .map_err(|e| StreamingError::Network(NetworkError::from_string(e)))?;
        let mut file = snapshot.snapshot;
        let size = file
            .len()
            .map_err(|e| StreamingError::Network(NetworkError::new(&e)))?;
        // The body: header length, header, then the file read in chunks on a blocking thread.
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
        let mut first = (header.len() as u32).to_be_bytes().to_vec();
        first.extend_from_slice(&header);
        tokio::task::spawn_blocking(move || {
            if tx.blocking_send(Ok(Bytes::from(first))).is_err() {
                return;
            }
            if let Err(e) = file.rewind() {
                let _ = tx.blocking_send(Err(e));
                return;
            }
            loop {
                let mut chunk = vec![0u8; SNAPSHOT_CHUNK];
                match file.read(&mut chunk) {
                    Ok(0) => return,
                    Ok(n) => {
                        chunk.truncate(n);
                        if tx.blocking_send(Ok(Bytes::from(chunk))).is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        let _ = tx.blocking_send(Err(e));
                        return;
                    }
                }
            }
        });
        let stream =
            futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) });
        // A snapshot may be large: allow the soft TTL plus a second per 8 MiB.
        let timeout = option.soft_ttl() + Duration::from_secs(size / (8 << 20));
        let send = self
            .client
            .post(format!("{}/raft/snapshot", self.base))
            .timeout(timeout)
            .body(reqwest::Body::wrap_stream(stream))
            .send();
        let response = tokio::select! {
            closed = cancel => return Err(StreamingError::Closed(closed)),
            r = send => r,
        };
        let target = self.target;
        let answer: Result<SnapshotResponse<TypeConfig>, RaftError<TypeConfig>> = match response {
            Ok(r) => read_answer(r).await,
            Err(e) => Err(classify(&e)),
        }
        .map_err(|e| match e {
            SendError::Unreachable(m) => StreamingError::Unreachable(Unreachable::from_string(m)),
            SendError::Timeout => StreamingError::Timeout(Timeout {
                action: RPCTypes::InstallSnapshot,
                id: self.id,
                target,
                timeout,
            }),
            SendError::Network(m) => StreamingError::Network(NetworkError::from_string(m)),
        })?;
        answer.map_err(|e| {
            StreamingError::Network(NetworkError::from_string(format!(
                "node {target} refused the snapshot: {e}"
            )))
        })
    }
}
