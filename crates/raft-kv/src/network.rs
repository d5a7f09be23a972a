//! Raft traffic between nodes over HTTP: the openraft network (client side) and the wire
//! format shared with the server side in [`crate::server`].
//!
//! Append-entries and vote requests are one `POST` each with a bincode body, answered with a
//! bincode `Result` (openraft's own error travels back as a remote error). A snapshot is one
//! `POST` whose body is streamed from the snapshot file in 1 MiB chunks after a short header
//! (the leader's vote and the snapshot meta); the receiver writes the chunks into a file in its
//! snapshot directory as they arrive and installs it when the body ends, so neither side holds
//! the snapshot in memory.
//!
//! openraft bounds a batch of entries by their count only (`max_payload_entries`), so an
//! append-entries message could be any size. This client bounds it by bytes: a message over
//! [`Limits::max_append_bytes`](crate::limits::Limits::max_append_bytes) is sent as its longest
//! prefix that fits and answered to openraft as a partial success, so openraft sends the rest
//! next (openraft 0.10.0-alpha.37 has no `PayloadTooLarge` error; a partial success is its way).
//! The raft endpoint reads a little more than that bound, so every entry reaches every follower.
//!
//! With TLS, every RPC goes over `https://` and presents the node's certificate, which the
//! receiving raft port requires (see [`crate::tls`]).

use std::future::Future;
use std::io::Read;
use std::io::Seek;
use std::time::Duration;

use bytes::Bytes;
use openraft::entry::RaftEntry;
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
use openraft::type_config::alias::LogIdOf;
use openraft::type_config::alias::SnapshotMetaOf;
use openraft::type_config::alias::SnapshotOf;
use openraft::type_config::alias::VoteOf;
use raft_store::Bincode;
use raft_store::Codec as _;
use raft_store::kv::SnapshotFile;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::raft_guard;
use crate::tls::ClientTls;
use crate::types::NodeInfo;
use crate::types::TypeConfig;

/// The size of one chunk of a streamed snapshot.
pub const SNAPSHOT_CHUNK: usize = 1 << 20;

/// The slowest a follower is expected to take an append-entries request (receive, decode, write
/// and sync it), and so the time it is given on top of openraft's time-out, which is a fraction
/// of the heartbeat interval and far too short for megabytes: a batch that always timed out
/// would be sent again and again and the follower would never catch up. Generous on purpose:
/// waiting longer for a follower that is gone costs nothing, the others are replicated to on
/// their own streams and the heartbeats on another connection.
const APPEND_BYTES_PER_SEC: u64 = 1 << 20;

/// Encode a raft message for the wire: the store's own codec, so a log entry travels in the
/// encoding it is stored in.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    Bincode::encode_into(value, &mut out).map_err(|e| e.to_string())?;
    Ok(out)
}

/// Decode a raft message from the wire (all of `bytes`; trailing bytes are an error). The
/// codec's decode limit grows with the input, so every message [`encode`] writes decodes.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    Bincode::decode(bytes).map_err(|e| e.to_string())
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
    max_append_bytes: usize,
    /// Without TLS, one client (and connection pool) for every target.
    client: reqwest::Client,
    /// With TLS, a client per target is built from this, one that accepts only the target's
    /// own certificate.
    tls: Option<ClientTls>,
    scheme: &'static str,
}

fn raft_client_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .tcp_nodelay(true)
        .connect_timeout(Duration::from_secs(2))
        .pool_idle_timeout(Duration::from_secs(30))
}

impl HttpNetwork {
    /// The network of node `id`, sending append-entries messages of at most
    /// `max_append_bytes` (a batch that would be larger is sent in parts; one entry larger
    /// than that alone), over TLS with `tls` if given: then each target must present a
    /// certificate that names it.
    pub fn new(id: u64, max_append_bytes: usize, tls: Option<&ClientTls>) -> Result<Self, crate::Error> {
        let client = |builder: reqwest::ClientBuilder| {
            builder
                .build()
                .map_err(|e| crate::Error::setup("the raft client", e))
        };
        // Built once here so that a configuration that cannot work fails the start, not
        // every connection later.
        if let Some(tls) = tls {
            client(tls.reqwest_to_node(raft_client_builder(), id)?)?;
        }
        Ok(Self {
            id,
            max_append_bytes,
            client: client(raft_client_builder())?,
            tls: tls.cloned(),
            scheme: if tls.is_some() { "https" } else { "http" },
        })
    }

    fn client_for(&self, target: u64) -> Result<reqwest::Client, NoClient> {
        let Some(tls) = &self.tls else {
            return Ok(self.client.clone());
        };
        tls.reqwest_to_node(raft_client_builder(), target)
            .map_err(|e| NoClient::Tls(Box::new(e)))?
            .build()
            .map_err(|source| NoClient::Build { target, source })
    }
}

/// Why no raft client to a target could be built (with TLS, each target has its own).
#[derive(Debug, thiserror::Error)]
enum NoClient {
    /// The node's TLS settings do not make a client for the target.
    #[error(transparent)]
    Tls(Box<crate::Error>),
    /// reqwest could not build the client.
    #[error("the raft client for node {target}: {source}")]
    Build {
        target: u64,
        #[source]
        source: reqwest::Error,
    },
}

impl RaftNetworkFactory<TypeConfig> for HttpNetwork {
    type Network = HttpConnection;

    async fn new_client(&mut self, target: u64, node: &NodeInfo) -> Self::Network {
        let client = self.client_for(target);
        if let Err(e) = &client {
            tracing::warn!(target: "raft_kv::network", to = target, error = %e, "no raft connection");
        }
        HttpConnection {
            id: self.id,
            max_append_bytes: self.max_append_bytes,
            client,
            target,
            base: format!("{}://{}", self.scheme, node.raft),
        }
    }
}

/// Sends raft RPCs to one node.
pub struct HttpConnection {
    id: u64,
    max_append_bytes: usize,
    /// The client, or why none could be built (every RPC then fails as unreachable).
    client: Result<reqwest::Client, NoClient>,
    target: u64,
    base: String,
}

/// How a request failed before an answer came back.
enum SendError<'a> {
    /// The target could not be connected to: reqwest's error says why.
    Unreachable(reqwest::Error),
    /// There is no client to send with.
    NoClient(&'a NoClient),
    Timeout,
    /// The request or its answer failed on the way: reqwest's error says how.
    Transport(reqwest::Error),
    /// The answer is not one: an error status of the endpoint, or a body that does not decode.
    Network(String),
    /// The target's raft guard refused the message (403: the sender is not a member there;
    /// 400: a value out of range): reported as unreachable, so openraft backs off instead of
    /// sending it again at once, and logged, since it will not pass by itself.
    Refused(String),
}

impl HttpConnection {
    async fn post<Resp: DeserializeOwned>(
        &self,
        path: &str,
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<Resp, SendError<'_>> {
        let client = self.client.as_ref().map_err(SendError::NoClient)?;
        let response = client
            .post(format!("{}{path}", self.base))
            .timeout(timeout)
            .body(body)
            .send()
            .await
            .map_err(classify)?;
        read_answer(response).await
    }

    fn rpc_error<E: std::error::Error>(
        &self,
        e: &SendError<'_>,
        timeout: Duration,
        action: RPCTypes,
    ) -> RPCError<TypeConfig, E> {
        match e {
            SendError::Unreachable(e) => RPCError::Unreachable(Unreachable::new(e)),
            SendError::Transport(e) => RPCError::Network(NetworkError::new(e)),
            SendError::NoClient(e) => RPCError::Unreachable(Unreachable::new(*e)),
            SendError::Refused(m) => RPCError::Unreachable(Unreachable::from_string(m)),
            SendError::Timeout => RPCError::Timeout(Timeout {
                action,
                id: self.id,
                target: self.target,
                timeout,
            }),
            SendError::Network(m) => RPCError::Network(NetworkError::from_string(m)),
        }
    }
}

impl HttpConnection {
    /// One request, one answer: the answer is the remote raft's `Result`, its error fatal.
    /// The time-out is openraft's, plus the time to move `body` at [`APPEND_BYTES_PER_SEC`].
    async fn unary<Resp: DeserializeOwned>(
        &self,
        path: &str,
        body: Vec<u8>,
        option: &RPCOption,
        action: RPCTypes,
    ) -> Result<Resp, RPCError<TypeConfig>> {
        let timeout = option.soft_ttl()
            + Duration::from_millis((body.len() as u64).saturating_mul(1000) / APPEND_BYTES_PER_SEC);
        let answer: Result<Resp, RaftError<TypeConfig>> = self
            .post(path, body, timeout)
            .await
            .map_err(|e| self.rpc_error(&e, timeout, action))?;
        answer.map_err(|e| self.remote_fatal(&e))
    }

    /// Encode `rpc`, or the part of it that fits.
    fn encode_rpc<Req: Serialize>(rpc: &Req) -> Result<Vec<u8>, RPCError<TypeConfig>> {
        encode(rpc).map_err(|e| RPCError::Network(NetworkError::from_string(format!("encoding: {e}"))))
    }

    /// An answer carrying a term or index that openraft's arithmetic could overflow on (see
    /// [`raft_guard`]): dropped as a network error rather than adopted.
    fn out_of_range(&self, answer: &str) -> NetworkError<TypeConfig> {
        let message = format!(
            "node {} answered with a term or index at or above {}: {answer}",
            self.target,
            raft_guard::MAX_VALUE
        );
        tracing::warn!(target: "raft_kv::network", to = self.target, "{message}");
        NetworkError::from_string(message)
    }

    fn check_vote_answer(
        &self,
        answer: VoteResponse<TypeConfig>,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        let last_ok = answer
            .last_log_id
            .as_ref()
            .is_none_or(|l| l.index < raft_guard::MAX_VALUE && l.leader_id.term < raft_guard::MAX_VALUE);
        if raft_guard::answer_term_in_range(&answer.vote) && last_ok {
            Ok(answer)
        } else {
            Err(RPCError::Network(self.out_of_range(&format!("{answer:?}"))))
        }
    }

    /// The target answered with a fatal error of its raft (it is shutting down or its storage
    /// failed): as good as unreachable, so openraft backs off and retries later.
    fn remote_fatal(&self, e: &RaftError<TypeConfig>) -> RPCError<TypeConfig> {
        RPCError::Unreachable(Unreachable::from_string(format!("node {}: {e}", self.target)))
    }
}

fn classify<'a>(e: reqwest::Error) -> SendError<'a> {
    if e.is_timeout() {
        SendError::Timeout
    } else if e.is_connect() {
        SendError::Unreachable(e)
    } else {
        SendError::Transport(e)
    }
}

async fn read_answer<'a, Resp: DeserializeOwned>(response: reqwest::Response) -> Result<Resp, SendError<'a>> {
    let status = response.status();
    let url = response.url().clone();
    let body = response.bytes().await.map_err(classify)?;
    if status == reqwest::StatusCode::FORBIDDEN || status == reqwest::StatusCode::BAD_REQUEST {
        let why = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_string))
            .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
        let message = format!("{url} refused the message (HTTP {status}): {why}");
        tracing::warn!(target: "raft_kv::network", "{message}");
        return Err(SendError::Refused(message));
    }
    if !status.is_success() {
        return Err(SendError::Network(format!(
            "HTTP {status}: {}",
            String::from_utf8_lossy(&body)
        )));
    }
    decode(&body).map_err(|e| SendError::Network(format!("undecodable answer: {e}")))
}

/// Encode an append-entries request of at most `max` bytes: the whole request if it fits,
/// otherwise the longest prefix of its entries that does (at least one entry, whatever its size,
/// so the log always moves on), with the log id of the last entry sent.
pub fn fit_append(
    rpc: AppendEntriesRequest<TypeConfig>,
    max: usize,
) -> Result<(Vec<u8>, Option<LogIdOf<TypeConfig>>), String> {
    let body = encode(&rpc)?;
    if body.len() <= max || rpc.entries.len() <= 1 {
        return Ok((body, None));
    }
    // The codec writes a list as its length and then each element as it encodes alone, so a
    // prefix costs the request without its entries plus the entries kept (its length prefix is
    // no longer than the whole list's).
    let mut sizes = Vec::with_capacity(rpc.entries.len());
    let mut scratch = Vec::new();
    for entry in &rpc.entries {
        scratch.clear();
        Bincode::encode_into(entry, &mut scratch).map_err(|e| e.to_string())?;
        sizes.push(scratch.len());
    }
    let mut total = body.len().saturating_sub(sizes.iter().sum());
    let mut keep = 0;
    for size in sizes {
        if keep > 0 && total + size > max {
            break;
        }
        total += size;
        keep += 1;
    }
    let mut rpc = rpc;
    rpc.entries.truncate(keep);
    let last = rpc.entries.last().map(RaftEntry::log_id);
    Ok((encode(&rpc)?, last))
}

impl RaftNetworkV2<TypeConfig> for HttpConnection {
    type SnapshotData = SnapshotFile;

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<TypeConfig>, RPCError<TypeConfig>> {
        let (body, cut) = fit_append(rpc, self.max_append_bytes)
            .map_err(|e| RPCError::Network(NetworkError::from_string(format!("encoding: {e}"))))?;
        let answer: AppendEntriesResponse<TypeConfig> = self
            .unary("/raft/append", body, &option, RPCTypes::AppendEntries)
            .await?;
        let in_range = match &answer {
            AppendEntriesResponse::HigherVote(vote) => raft_guard::answer_term_in_range(vote),
            AppendEntriesResponse::PartialSuccess(Some(log_id)) => {
                log_id.index < raft_guard::MAX_VALUE && log_id.leader_id.term < raft_guard::MAX_VALUE
            }
            _ => true,
        };
        if !in_range {
            return Err(RPCError::Network(self.out_of_range(&format!("{answer:?}"))));
        }
        // Only a prefix went: openraft sends the rest next (in alpha.37 this partial success is
        // how a network bounds a batch; its entry count alone has no byte bound).
        Ok(match (answer, cut) {
            (AppendEntriesResponse::Success, Some(last)) => AppendEntriesResponse::PartialSuccess(Some(last)),
            (answer, _) => answer,
        })
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        let answer: VoteResponse<TypeConfig> = self
            .unary("/raft/vote", Self::encode_rpc(&rpc)?, &option, RPCTypes::Vote)
            .await?;
        self.check_vote_answer(answer)
    }

    async fn pre_vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        let answer: VoteResponse<TypeConfig> = self
            .unary("/raft/pre-vote", Self::encode_rpc(&rpc)?, &option, RPCTypes::Vote)
            .await?;
        self.check_vote_answer(answer)
    }

    async fn full_snapshot(
        &mut self,
        vote: VoteOf<TypeConfig>,
        snapshot: SnapshotOf<TypeConfig, SnapshotFile>,
        cancel: impl Future<Output = ReplicationClosed> + openraft::OptionalSend + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        let client = match &self.client {
            Ok(client) => client.clone(),
            Err(e) => return Err(StreamingError::Unreachable(Unreachable::new(e))),
        };
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
        let send = client
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
            Err(e) => Err(classify(e)),
        }
        .map_err(|e| match e {
            SendError::Unreachable(e) => StreamingError::Unreachable(Unreachable::new(&e)),
            SendError::Transport(e) => StreamingError::Network(NetworkError::new(&e)),
            SendError::NoClient(e) => StreamingError::Unreachable(Unreachable::new(e)),
            SendError::Refused(m) => StreamingError::Unreachable(Unreachable::from_string(m)),
            SendError::Timeout => StreamingError::Timeout(Timeout {
                action: RPCTypes::InstallSnapshot,
                id: self.id,
                target,
                timeout,
            }),
            SendError::Network(m) => StreamingError::Network(NetworkError::from_string(m)),
        })?;
        let answer = answer.map_err(|e| {
            StreamingError::Network(NetworkError::from_string(format!(
                "node {target} refused the snapshot: {e}"
            )))
        })?;
        if !raft_guard::answer_term_in_range(&answer.vote) {
            return Err(StreamingError::Network(self.out_of_range(&format!("{answer:?}"))));
        }
        Ok(answer)
    }
}

#[cfg(test)]
mod tests {
    use openraft::type_config::alias::EntryOf;
    use raft_store::kv::KvRequest;

    use super::*;

    #[test]
    fn an_unreachable_target_keeps_reqwest_s_error() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        // A port that was free a moment ago: nothing listens there.
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port");
        let sent = runtime.block_on(
            reqwest::Client::new()
                .post(format!("http://{addr}/raft/vote"))
                .send(),
        );
        let e = sent.expect_err("nothing listens");
        let SendError::Unreachable(kept) = classify(e) else {
            panic!("a refused connection is unreachable");
        };
        assert!(kept.is_connect(), "{kept:?}");
        // openraft gets it as an error, not only its text.
        let connection = HttpConnection {
            id: 1,
            max_append_bytes: 1 << 20,
            client: Ok(reqwest::Client::new()),
            target: 2,
            base: format!("http://{addr}"),
        };
        let rpc: RPCError<TypeConfig> = connection.rpc_error(
            &SendError::Unreachable(kept),
            Duration::from_secs(1),
            RPCTypes::Vote,
        );
        assert!(matches!(rpc, RPCError::Unreachable(_)), "{rpc:?}");
    }

    fn request(sizes: &[usize]) -> AppendEntriesRequest<TypeConfig> {
        let log_id = |index| {
            LogIdOf::<TypeConfig>::new(
                openraft::impls::leader_id_adv::LeaderId { term: 1, node_id: 1 },
                index,
            )
        };
        AppendEntriesRequest {
            vote: VoteOf::<TypeConfig>::new_committed(1, 1),
            prev_log_id: Some(log_id(9)),
            entries: sizes
                .iter()
                .zip(10..)
                .map(|(&size, index)| {
                    EntryOf::<TypeConfig>::new_normal(
                        log_id(index),
                        KvRequest::Set {
                            key: format!("k{index}"),
                            value: vec![1; size],
                        },
                    )
                })
                .collect(),
            leader_commit: None,
        }
    }

    #[test]
    fn a_batch_over_the_bound_is_cut_to_the_longest_prefix_that_fits() {
        let max = 4 << 20;
        let (body, cut) = fit_append(request(&[1 << 20; 20]), max).unwrap();
        assert!(body.len() <= max, "{}", body.len());
        let sent: AppendEntriesRequest<TypeConfig> = decode(&body).unwrap();
        assert_eq!(sent.entries.len(), 3);
        assert_eq!(cut, sent.entries.last().map(RaftEntry::log_id));
        assert_eq!(cut.map(|l| l.index), Some(12));
    }

    #[test]
    fn a_batch_that_fits_and_a_lone_large_entry_go_whole() {
        let (body, cut) = fit_append(request(&[100; 300]), 1 << 20).unwrap();
        assert_eq!(
            (
                decode::<AppendEntriesRequest<TypeConfig>>(&body)
                    .unwrap()
                    .entries
                    .len(),
                cut
            ),
            (300, None)
        );
        let (body, cut) = fit_append(request(&[2 << 20]), 1 << 20).unwrap();
        assert_eq!(
            (
                decode::<AppendEntriesRequest<TypeConfig>>(&body)
                    .unwrap()
                    .entries
                    .len(),
                cut
            ),
            (1, None)
        );
        // A large first entry still goes alone, so the log always moves on.
        let (body, cut) = fit_append(request(&[2 << 20, 10]), 1 << 20).unwrap();
        assert_eq!(
            decode::<AppendEntriesRequest<TypeConfig>>(&body)
                .unwrap()
                .entries
                .len(),
            1
        );
        assert_eq!(cut.map(|l| l.index), Some(10));
    }
}
