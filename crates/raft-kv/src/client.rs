//! An HTTP client of the raft-kv API that knows several nodes and fails over between them.
//!
//! A request goes to the node that answered last. When that node cannot be reached, or answers
//! that the request was not accepted (no leader yet: `"retry": true`), the client tries the
//! next node, until its deadline. Anything else that leaves the outcome open (a time-out, a
//! connection lost after sending, a failed forward) is returned as [`ClientError::Unknown`]
//! and never retried: sending a write twice could apply it twice.
//!
//! [`KvClient::with_token`] sends a bearer token with every request, [`KvClient::with_tls`]
//! speaks `https://` trusting the cluster's CA.

use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering;
use std::time::Duration;
use std::time::Instant;

use serde_json::Value;
use serde_json::json;

use crate::server::JsonValue;
/// The client side of a cluster's TLS: the CA to trust (and a certificate to present).
pub use crate::tls::ClientTls;

/// What a key's bytes are percent-encoded as in a URL: everything but the unreserved
/// characters of RFC 3986, so no byte of a key is read as URL syntax (`/`, `?`, `#`, `%`, `+`).
const KEY_BYTES: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The request target that addresses `key`: `/key/` and the key percent-encoded, except for
/// the keys `.` and `..`, which URL normalization would remove from a path (encoded or not), so
/// they go in the query: `/key?key=..`.
pub fn key_target(key: &str) -> String {
    let encoded = percent_encoding::utf8_percent_encode(key, KEY_BYTES);
    if key == "." || key == ".." {
        format!("/key?key={encoded}")
    } else {
        format!("/key/{encoded}")
    }
}

/// What a request ended with, other than success.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The cluster answered with an error: the request had no effect.
    #[error("HTTP {status}: {message}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The error message of the body.
        message: String,
    },
    /// The request may or may not have taken effect.
    #[error("outcome unknown: {0}")]
    Unknown(String),
    /// No node accepted the request before the deadline; it had no effect.
    #[error("no node accepted the request: {0}")]
    Unavailable(String),
}

/// A client of a raft-kv cluster.
pub struct KvClient {
    nodes: Vec<String>,
    http: reqwest::Client,
    next: AtomicUsize,
    timeout: Duration,
    deadline: Duration,
    scheme: &'static str,
    token: Option<String>,
}

fn http_client(timeout: Duration, tls: Option<&ClientTls>) -> Result<reqwest::Client, reqwest::Error> {
    let builder = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(Duration::from_secs(1))
        .tcp_nodelay(true);
    match tls {
        Some(tls) => tls.reqwest(builder),
        None => builder,
    }
    .build()
}

impl KvClient {
    /// A client of the nodes at `nodes` (`host:port` of their HTTP API), each request bounded
    /// by `timeout`, retries of unaccepted requests by `deadline` in all.
    pub fn new(nodes: Vec<String>, timeout: Duration, deadline: Duration) -> Self {
        Self {
            nodes,
            http: http_client(timeout, None).unwrap_or_default(),
            next: AtomicUsize::new(0),
            timeout,
            deadline,
            scheme: "http",
            token: None,
        }
    }

    /// Send `token` as `Authorization: Bearer <token>` with every request.
    #[must_use]
    pub fn with_token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Speak `https://` with `tls` (the cluster CA, and a certificate to present if it has one).
    pub fn with_tls(mut self, tls: &ClientTls) -> Result<Self, crate::Error> {
        self.http =
            http_client(self.timeout, Some(tls)).map_err(|e| crate::Error::setup("the HTTPS client", e))?;
        self.scheme = "https";
        Ok(self)
    }

    /// The nodes this client knows.
    pub fn nodes(&self) -> &[String] {
        &self.nodes
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<(u16, Value), ClientError> {
        let start = Instant::now();
        let mut last = String::from("no nodes given");
        let mut attempt = 0usize;
        loop {
            let at = self.next.load(Ordering::Relaxed) % self.nodes.len().max(1);
            let Some(node) = self.nodes.get(at) else {
                return Err(ClientError::Unavailable(last));
            };
            let mut request = self
                .http
                .request(method.clone(), format!("{}://{node}{path}", self.scheme));
            if let Some(token) = &self.token {
                request = request.bearer_auth(token);
            }
            if let Some(body) = &body {
                request = request.json(body);
            }
            let outcome: Result<(), String> = match request.send().await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    match response.bytes().await {
                        Ok(bytes) => {
                            let value: Value = serde_json::from_slice(&bytes)
                                .unwrap_or_else(|_| json!({ "error": String::from_utf8_lossy(&bytes) }));
                            if value.get("retry").and_then(Value::as_bool) == Some(true) {
                                Err(format!("{node}: {}", value["error"]))
                            } else {
                                return Ok((status, value));
                            }
                        }
                        Err(e) => {
                            return Err(ClientError::Unknown(format!("{node}: reading the answer: {e}")));
                        }
                    }
                }
                Err(e) if e.is_connect() => Err(format!("{node}: {e}")),
                Err(e) => return Err(ClientError::Unknown(format!("{node}: {e}"))),
            };
            if let Err(why) = outcome {
                last = why;
                attempt += 1;
                self.next.store(at + 1, Ordering::Relaxed);
                if start.elapsed() >= self.deadline {
                    return Err(ClientError::Unavailable(last));
                }
                // Once round every node, then wait a little before the next round.
                if attempt.is_multiple_of(self.nodes.len()) {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }

    async fn ok(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<(u16, Value), ClientError> {
        let (status, value) = self.send(method, path, body).await?;
        match status {
            200..=299 | 404 => Ok((status, value)),
            502 => Err(ClientError::Unknown(
                value["error"].as_str().unwrap_or_default().to_string(),
            )),
            _ => Err(ClientError::Refused {
                status,
                message: value["error"].as_str().unwrap_or_default().to_string(),
            }),
        }
    }

    fn refused_404(value: &Value) -> ClientError {
        ClientError::Refused {
            status: 404,
            message: value["error"].as_str().unwrap_or_default().to_string(),
        }
    }

    /// Set every pair in one log entry; returns the entry's log index.
    pub async fn put(&self, pairs: &[(&str, &str)]) -> Result<u64, ClientError> {
        let bytes: Vec<(&str, &[u8])> = pairs.iter().map(|(k, v)| (*k, v.as_bytes())).collect();
        self.put_bytes(&bytes).await
    }

    /// Set every pair (values any bytes) in one log entry; returns the entry's log index.
    pub async fn put_bytes(&self, pairs: &[(&str, &[u8])]) -> Result<u64, ClientError> {
        let body: serde_json::Map<String, Value> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), json!(JsonValue(v.to_vec()))))
            .collect();
        let (status, value) = self
            .ok(reqwest::Method::POST, "/key", Some(Value::Object(body)))
            .await?;
        if status == 404 {
            return Err(Self::refused_404(&value));
        }
        value["index"]
            .as_u64()
            .ok_or_else(|| ClientError::Unknown(format!("an answer without an index: {value}")))
    }

    /// Read `key`: linearizable, or `stale` from whichever node answers.
    pub async fn get(&self, key: &str, stale: bool) -> Result<Option<Vec<u8>>, ClientError> {
        let target = key_target(key);
        let path = match (stale, target.contains('?')) {
            (false, _) => target,
            (true, false) => format!("{target}?stale=true"),
            (true, true) => format!("{target}&stale=true"),
        };
        let (status, value) = self.ok(reqwest::Method::GET, &path, None).await?;
        if status == 404 {
            return Ok(None);
        }
        serde_json::from_value::<JsonValue>(value["value"].clone())
            .map(|v| Some(v.0))
            .map_err(|e| ClientError::Unknown(format!("an answer without a value ({e}): {value}")))
    }

    /// Read `key` as text (see [`get`](Self::get)); bytes that are not UTF-8 are an error.
    pub async fn get_text(&self, key: &str, stale: bool) -> Result<Option<String>, ClientError> {
        self.get(key, stale)
            .await?
            .map(|v| {
                String::from_utf8(v).map_err(|_| ClientError::Refused {
                    status: 200,
                    message: format!("the value of {key:?} is not UTF-8 text"),
                })
            })
            .transpose()
    }

    /// Delete `key`; returns whether it existed.
    pub async fn delete(&self, key: &str) -> Result<bool, ClientError> {
        let (_, value) = self.ok(reqwest::Method::DELETE, &key_target(key), None).await?;
        Ok(value["existed"].as_bool().unwrap_or(false))
    }

    /// Update `key` only if it exists; returns whether it did.
    pub async fn update(&self, key: &str, value: &str) -> Result<bool, ClientError> {
        let (status, _) = self
            .ok(
                reqwest::Method::PUT,
                &key_target(key),
                Some(json!({ "value": value })),
            )
            .await?;
        Ok(status != 404)
    }

    /// `GET /status` of the node the client talks to.
    pub async fn status(&self) -> Result<Value, ClientError> {
        Ok(self.ok(reqwest::Method::GET, "/status", None).await?.1)
    }

    /// Ask the cluster to add a node.
    pub async fn join(&self, id: u64, raft: &str, http: &str, grpc: &str) -> Result<Value, ClientError> {
        let (status, value) = self
            .ok(
                reqwest::Method::POST,
                "/join",
                Some(json!({ "id": id, "raft": raft, "http": http, "grpc": grpc })),
            )
            .await?;
        if status == 404 {
            return Err(Self::refused_404(&value));
        }
        Ok(value)
    }

    /// Ask the cluster to remove a node.
    pub async fn leave(&self, id: u64) -> Result<Value, ClientError> {
        let (status, value) = self
            .ok(reqwest::Method::POST, "/leave", Some(json!({ "id": id })))
            .await?;
        if status == 404 {
            return Err(Self::refused_404(&value));
        }
        Ok(value)
    }
}
