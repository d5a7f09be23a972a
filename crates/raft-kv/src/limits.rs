//! The sizes a node accepts, and the checks every API runs before anything is proposed.
//!
//! One number bounds a client request: [`Limits::max_request_bytes`], measured on the request as
//! it is logged (the bincode encoding of its [`KvRequest`]), so the HTTP and gRPC APIs agree
//! whatever their own framing costs. A key has its own bound, [`Limits::max_key_bytes`]. The raft
//! network between nodes sends append-entries messages of at most
//! [`Limits::max_append_bytes`], which always holds one request at the client limit, and the
//! raft endpoint accepts a little more than that, so every entry the log holds can reach every
//! follower.

use std::fmt;

use raft_store::Backend;
use raft_store::Codec as _;
use raft_store::kv::KvRequest;

use crate::head_guard::HeadLimits;

/// The default bound of a client request: 1 MiB, near etcd's 1.5 MiB. A log entry is held in
/// memory several times over (the request, the pending tail, each follower's batch), so megabyte
/// entries keep a node's memory and a follower's catch-up predictable; larger objects belong in
/// a blob store with their key here.
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 1 << 20;
/// The default bound of a key's UTF-8 bytes.
pub const DEFAULT_MAX_KEY_BYTES: usize = 4096;
/// The default bound of one append-entries message between nodes.
pub const DEFAULT_MAX_APPEND_BYTES: usize = 16 << 20;
/// The longest key [`Limits::max_key_bytes`] may be set to: a key travels percent-encoded in a
/// URL (three bytes per byte at worst), and a URL must stay below hyper's fixed 64 KiB.
pub const MAX_KEY_BYTES_CEILING: usize = 16 << 10;
/// What a message of [`Limits::max_append_bytes`] holds besides one request: the vote, log ids,
/// the entry's own header. Generous, so a single entry at the client limit always fits.
const APPEND_OVERHEAD: usize = 64 << 10;
/// LMDB refuses keys over 511 bytes (its compile-time `MDB_MAXKEYSIZE`), and the state machine
/// stores a key behind an 8-byte generation prefix: a longer key would fail in apply, on every
/// node, after it was committed.
const LMDB_MAX_KEY_BYTES: usize = 511 - 8;

/// The size bounds of a node (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
// The fields are named as their settings are (`--max-request-bytes`, ...).
#[allow(clippy::struct_field_names)]
pub struct Limits {
    /// The largest client request, in bytes of its encoded [`KvRequest`].
    pub max_request_bytes: usize,
    /// The longest key, in UTF-8 bytes.
    pub max_key_bytes: usize,
    /// The largest append-entries message this node sends to a follower.
    pub max_append_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
            max_key_bytes: DEFAULT_MAX_KEY_BYTES,
            max_append_bytes: DEFAULT_MAX_APPEND_BYTES,
        }
    }
}

/// Why a client request was refused before it was proposed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LimitError {
    /// The key is the empty string.
    #[error("a key must not be empty")]
    EmptyKey,
    /// The key is longer than the limit.
    #[error("a key of {len} bytes is over the limit of {limit} bytes (max_key_bytes)")]
    KeyTooLong {
        /// The key's length in bytes.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// The encoded request is larger than the limit.
    #[error("a request of {size} bytes is over the limit of {limit} bytes (max_request_bytes)")]
    RequestTooLarge {
        /// The size of the encoded request.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The request, as sent (a JSON body, a protobuf message), is larger than the API reads at all.
    #[error(
        "a request over {body_limit} bytes as sent is refused unread: it is over the limit of {limit} bytes (max_request_bytes)"
    )]
    BodyTooLarge {
        /// What the API reads at most.
        body_limit: usize,
        /// The request limit.
        limit: usize,
    },
    /// The request could not be encoded (so it could not be logged either).
    #[error("the request cannot be encoded: {0}")]
    Unencodable(#[source] raft_store::CodecError),
}

impl LimitError {
    /// Whether the request was refused for its size (413 / `RESOURCE_EXHAUSTED`) rather than for
    /// its content (400 / `INVALID_ARGUMENT`).
    pub fn is_size(&self) -> bool {
        match self {
            LimitError::RequestTooLarge { .. } | LimitError::BodyTooLarge { .. } => true,
            LimitError::EmptyKey | LimitError::KeyTooLong { .. } | LimitError::Unencodable(_) => false,
        }
    }
}

/// A setting that contradicts another or the backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidLimits(String);

impl fmt::Display for InvalidLimits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Limits {
    /// The limits from the settings given (`None`: the default), checked against each other and
    /// against what `backend` can store. On LMDB the default key limit is LMDB's own bound.
    pub fn resolve(
        max_request_bytes: Option<usize>,
        max_key_bytes: Option<usize>,
        max_append_bytes: Option<usize>,
        backend: Backend,
    ) -> Result<Limits, InvalidLimits> {
        // By name, not by variant: the variant exists only when raft-store's `lmdb` feature is
        // on, which another crate of the same build may turn on without raft-kv's own.
        let backend_keys = (backend.name() == "lmdb").then_some(LMDB_MAX_KEY_BYTES);
        let max_key_bytes = max_key_bytes.unwrap_or_else(|| {
            backend_keys
                .unwrap_or(DEFAULT_MAX_KEY_BYTES)
                .min(DEFAULT_MAX_KEY_BYTES)
        });
        let max_request_bytes = max_request_bytes.unwrap_or(DEFAULT_MAX_REQUEST_BYTES);
        let limits = Limits {
            max_request_bytes,
            max_key_bytes,
            max_append_bytes: max_append_bytes
                .unwrap_or_else(|| DEFAULT_MAX_APPEND_BYTES.max(max_request_bytes + APPEND_OVERHEAD)),
        };
        if limits.max_key_bytes == 0 || limits.max_key_bytes > MAX_KEY_BYTES_CEILING {
            return Err(InvalidLimits(format!(
                "--max-key-bytes {}: must be between 1 and {MAX_KEY_BYTES_CEILING}",
                limits.max_key_bytes
            )));
        }
        if let Some(most) = backend_keys.filter(|&most| limits.max_key_bytes > most) {
            return Err(InvalidLimits(format!(
                "--max-key-bytes {}: the {} backend stores keys of at most {most} bytes",
                limits.max_key_bytes,
                backend.name()
            )));
        }
        if limits.max_request_bytes < limits.max_key_bytes + 64 {
            return Err(InvalidLimits(format!(
                "--max-request-bytes {}: must hold a request with the longest key (at least {})",
                limits.max_request_bytes,
                limits.max_key_bytes + 64
            )));
        }
        if limits.max_append_bytes < limits.max_request_bytes + APPEND_OVERHEAD {
            return Err(InvalidLimits(format!(
                "--max-append-bytes {}: must hold one request of --max-request-bytes {} and its \
                 entry (at least {})",
                limits.max_append_bytes,
                limits.max_request_bytes,
                limits.max_request_bytes + APPEND_OVERHEAD
            )));
        }
        Ok(limits)
    }

    /// The largest HTTP body the client API reads. JSON escapes and base64 make a body larger
    /// than the request it carries (a control character takes six bytes, base64 four per three),
    /// so the body may be six times the request limit; the request is then measured exactly.
    pub fn api_body_bytes(&self) -> usize {
        self.max_request_bytes.saturating_mul(6).saturating_add(64 << 10)
    }

    /// The largest body the raft endpoint reads: what a leader with these limits sends, plus
    /// room for one entry written before the limits were lowered (a log keeps what it has).
    pub fn raft_body_bytes(&self) -> usize {
        self.max_append_bytes
            .saturating_add(self.max_request_bytes)
            .saturating_add(APPEND_OVERHEAD)
    }

    /// The largest gRPC message the API decodes: the request limit plus protobuf's framing (a
    /// few bytes of tags and lengths); the request is then measured exactly.
    pub fn grpc_message_bytes(&self) -> usize {
        self.max_request_bytes.saturating_add(1 << 10)
    }

    /// The longest request target (path and query) the HTTP API reads: a key of the limit
    /// percent-encoded, three bytes per byte, and room for the route and the query.
    pub fn max_uri_bytes(&self) -> usize {
        self.max_key_bytes * 3 + 1024
    }

    /// The request heads the HTTP servers read: a target of [`max_uri_bytes`](Self::max_uri_bytes),
    /// 64 KiB of header fields and at most 100 of them (hyper's own bound).
    pub fn head_limits(&self) -> HeadLimits {
        HeadLimits {
            max_uri: self.max_uri_bytes(),
            max_head: self.max_uri_bytes() + (64 << 10),
            max_headers: 100,
        }
    }

    /// Check a key.
    pub fn check_key(&self, key: &str) -> Result<(), LimitError> {
        if key.is_empty() {
            return Err(LimitError::EmptyKey);
        }
        if key.len() > self.max_key_bytes {
            return Err(LimitError::KeyTooLong {
                len: key.len(),
                limit: self.max_key_bytes,
            });
        }
        Ok(())
    }

    /// Check a request: its keys, then its size as it will be logged.
    pub fn check_request(&self, request: &KvRequest) -> Result<(), LimitError> {
        match request {
            KvRequest::Set { key, .. }
            | KvRequest::Delete { key }
            | KvRequest::UpdateIfExists { key, .. } => {
                self.check_key(key)?;
            }
            KvRequest::SetMany { pairs } => {
                for (key, _) in pairs {
                    self.check_key(key)?;
                }
            }
        }
        let mut encoded = Vec::new();
        raft_store::Bincode::encode_into(request, &mut encoded).map_err(LimitError::Unencodable)?;
        if encoded.len() > self.max_request_bytes {
            return Err(LimitError::RequestTooLarge {
                size: encoded.len(),
                limit: self.max_request_bytes,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_is_measured_as_logged() {
        let limits = Limits::default();
        let fits = KvRequest::Set {
            key: "k".into(),
            value: vec![7; DEFAULT_MAX_REQUEST_BYTES - 16],
        };
        assert_eq!(limits.check_request(&fits), Ok(()));
        let over = KvRequest::Set {
            key: "k".into(),
            value: vec![7; DEFAULT_MAX_REQUEST_BYTES],
        };
        let err = limits.check_request(&over).unwrap_err();
        assert!(err.is_size(), "{err}");
        assert!(err.to_string().contains("limit of 1048576 bytes"), "{err}");
    }

    #[test]
    fn keys_are_checked_in_every_request() {
        let limits = Limits::default();
        let long = "k".repeat(DEFAULT_MAX_KEY_BYTES + 1);
        for request in [
            KvRequest::Delete { key: String::new() },
            KvRequest::Delete { key: long.clone() },
            KvRequest::SetMany {
                pairs: vec![("a".into(), vec![]), (long, vec![])],
            },
        ] {
            let err = limits.check_request(&request).unwrap_err();
            assert!(!err.is_size(), "{err}");
        }
        assert_eq!(limits.check_key(&"k".repeat(DEFAULT_MAX_KEY_BYTES)), Ok(()));
    }

    #[cfg(feature = "lmdb")]
    #[test]
    fn lmdb_keys_are_bounded_by_lmdb() {
        let lmdb = Limits::resolve(None, None, None, Backend::Lmdb).unwrap();
        assert_eq!(lmdb.max_key_bytes, LMDB_MAX_KEY_BYTES);
        let err = Limits::resolve(None, Some(4096), None, Backend::Lmdb).unwrap_err();
        assert!(err.to_string().contains("lmdb"), "{err}");
    }

    #[test]
    fn settings_that_contradict_are_named() {
        let err = Limits::resolve(Some(1 << 20), None, Some(1 << 20), Backend::Redb).unwrap_err();
        assert!(err.to_string().contains("--max-append-bytes"), "{err}");
        let big = Limits::resolve(Some(32 << 20), None, None, Backend::Redb).unwrap();
        assert!(big.max_append_bytes >= (32 << 20) + APPEND_OVERHEAD, "{big:?}");
        assert!(Limits::resolve(None, Some(0), None, Backend::Redb).is_err());
    }
}
