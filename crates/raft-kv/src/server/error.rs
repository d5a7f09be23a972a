//! One error type for the client API, HTTP and gRPC alike. What went wrong (the
//! [`ErrorKind`]) decides the HTTP status, the gRPC code and whether a client may send the
//! request again, so neither protocol reads a message to learn what happened.

use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::response::Response;
use serde_json::json;
use tonic::Code;

use raft_store::kv::KvResponse;

use crate::auth::AuthError;
use crate::limits::LimitError;

/// Which API a request came in on: where a follower forwards it, and which operations a
/// message names. Everything else about a refusal is the same on both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// The HTTP (JSON) API.
    Http,
    /// The gRPC API.
    Grpc,
}

/// What kind of failure an [`ApiError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request is malformed (400, `INVALID_ARGUMENT`).
    BadRequest,
    /// No token, or one the node does not know (401, `UNAUTHENTICATED`).
    Unauthenticated,
    /// The caller may not do this: a read token's write, a join with another node's
    /// certificate (403, `PERMISSION_DENIED`).
    Forbidden,
    /// The key, node or route does not exist (404, `NOT_FOUND`).
    NotFound,
    /// The change conflicts with the cluster's state, e.g. a membership change that would lose
    /// the quorum (409, `FAILED_PRECONDITION`).
    Conflict,
    /// The request is over a size limit (413, `RESOURCE_EXHAUSTED`).
    TooLarge,
    /// Refused before anything was proposed to raft: the request surely had no effect, and may
    /// be sent again, to this node or another (503 with `"retry": true`, `UNAVAILABLE`).
    NotSent,
    /// Raft failed after the request may have been proposed: the outcome is unknown (503,
    /// `UNKNOWN`).
    Unknown,
    /// Forwarding to the leader failed after the request was sent: the outcome is unknown
    /// (502, `UNKNOWN`).
    ForwardFailed,
    /// A failure of this node (500, `INTERNAL`).
    Internal,
}

impl ErrorKind {
    /// The HTTP status of this kind.
    pub fn http_status(self) -> StatusCode {
        match self {
            ErrorKind::BadRequest => StatusCode::BAD_REQUEST,
            ErrorKind::Unauthenticated => StatusCode::UNAUTHORIZED,
            ErrorKind::Forbidden => StatusCode::FORBIDDEN,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::Conflict => StatusCode::CONFLICT,
            ErrorKind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorKind::NotSent | ErrorKind::Unknown => StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::ForwardFailed => StatusCode::BAD_GATEWAY,
            ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The gRPC code of this kind. `UNAVAILABLE` only when nothing happened, so a client
    /// that fails over on it never sends a write twice.
    pub fn grpc_code(self) -> Code {
        match self {
            ErrorKind::BadRequest => Code::InvalidArgument,
            ErrorKind::Unauthenticated => Code::Unauthenticated,
            ErrorKind::Forbidden => Code::PermissionDenied,
            ErrorKind::NotFound => Code::NotFound,
            ErrorKind::Conflict => Code::FailedPrecondition,
            ErrorKind::TooLarge => Code::ResourceExhausted,
            ErrorKind::NotSent => Code::Unavailable,
            ErrorKind::Unknown | ErrorKind::ForwardFailed => Code::Unknown,
            ErrorKind::Internal => Code::Internal,
        }
    }

    /// Whether a client may send the request again: it surely had no effect.
    pub fn retry(self) -> bool {
        self == ErrorKind::NotSent
    }
}

/// An error of the client API: its kind and a message for people, sent over HTTP as
/// `{"error": message}` (with `"retry": true` when [`ErrorKind::retry`]) and over gRPC as a
/// status of the kind's code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    /// What kind of failure.
    pub kind: ErrorKind,
    /// What went wrong, for people.
    pub message: String,
}

impl ApiError {
    /// An error of `kind` saying `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// [`ErrorKind::BadRequest`].
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::BadRequest, message)
    }

    /// [`ErrorKind::Forbidden`].
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Forbidden, message)
    }

    /// [`ErrorKind::NotFound`].
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }

    /// [`ErrorKind::Conflict`].
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Conflict, message)
    }

    /// [`ErrorKind::NotSent`]; the message says so first.
    pub fn not_sent(message: impl std::fmt::Display) -> Self {
        Self::new(ErrorKind::NotSent, format!("not accepted: {message}"))
    }

    /// [`ErrorKind::Unknown`].
    pub fn unknown(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unknown, message)
    }

    /// [`ErrorKind::Internal`].
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }

    /// No leader is known to forward to ([`ErrorKind::NotSent`]).
    pub fn no_leader() -> Self {
        Self::not_sent("no leader is known yet; retry shortly")
    }

    /// A forwarded request that already made `hop` hops ([`ErrorKind::NotSent`]): leadership is
    /// moving, and another hop could go round.
    pub fn too_many_hops(hop: u32) -> Self {
        Self::not_sent(format!(
            "not forwarded again after {hop} hops: leadership is moving; retry shortly"
        ))
    }

    /// The leader (at `http`, its HTTP address) has no gRPC address to forward a gRPC call to
    /// ([`ErrorKind::NotSent`]).
    pub fn leader_without_grpc(http: &str) -> Self {
        Self::not_sent(format!("the leader ({http}) serves no gRPC; use its HTTP API"))
    }

    /// Nothing reached the leader at `addr` ([`ErrorKind::NotSent`]): the request surely had
    /// no effect.
    pub fn leader_unreachable(addr: &str, cause: impl std::fmt::Display) -> Self {
        Self::not_sent(format!("the leader at {addr} cannot be reached: {cause}"))
    }

    /// Forwarding to the leader at `addr` failed after the request was sent
    /// ([`ErrorKind::ForwardFailed`]): the outcome is unknown.
    pub fn forward_failed(addr: &str, cause: impl std::fmt::Display) -> Self {
        Self::new(
            ErrorKind::ForwardFailed,
            format!("forwarding to the leader at {addr}: {cause}; the outcome is unknown"),
        )
    }

    /// The leader's answer to a forwarded request could not be read
    /// ([`ErrorKind::ForwardFailed`]): the outcome is unknown.
    pub fn forward_answer_lost(cause: impl std::fmt::Display) -> Self {
        Self::new(
            ErrorKind::ForwardFailed,
            format!("reading the leader's answer: {cause}; the outcome is unknown"),
        )
    }

    /// A read of `key`, which does not exist ([`ErrorKind::NotFound`]).
    pub fn key_not_found(key: &str) -> Self {
        Self::not_found(format!("key {key:?} not found"))
    }

    /// An update of `key`, which does not exist ([`ErrorKind::NotFound`]); the message names
    /// the operations of `api` that update and that set.
    pub fn update_of_missing_key(key: &str, api: Api) -> Self {
        let (update, set) = match api {
            Api::Http => ("PUT", "POST /key"),
            Api::Grpc => ("UpdateEntries", "SaveEntries"),
        };
        Self::not_found(format!(
            "key {key:?} not found; {update} only updates an existing key ({set} sets one)"
        ))
    }

    /// A state machine response other than the one the request asks for. The state machine
    /// refuses a value its engine cannot store (the request is committed, applied as a no-op):
    /// that is [`ErrorKind::TooLarge`], its reason the message; raft-kv's own size limits keep
    /// such a request out before that. Anything else is [`ErrorKind::Internal`].
    pub fn unexpected(response: KvResponse) -> Self {
        match response {
            KvResponse::Refused { reason } => Self::new(ErrorKind::TooLarge, reason),
            other => Self::internal(format!("unexpected response {other:?}")),
        }
    }

    /// The gRPC status of this error. A refusal carries [`RETRY_METADATA`], so a follower that
    /// forwarded the call can tell the leader's refusal from its own transport failure.
    pub fn into_status(self) -> tonic::Status {
        let mut status = tonic::Status::new(self.kind.grpc_code(), self.message);
        if self.kind.retry() {
            status.metadata_mut().insert(
                RETRY_METADATA,
                tonic::metadata::AsciiMetadataValue::from_static("true"),
            );
        }
        status
    }
}

/// The gRPC metadata (trailer) of a call refused before anything was proposed.
pub const RETRY_METADATA: &str = "x-raft-kv-retry";

impl From<ApiError> for tonic::Status {
    fn from(e: ApiError) -> Self {
        e.into_status()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.kind.http_status();
        if status.is_server_error() {
            tracing::warn!(target: "raft_kv::api", status = status.as_u16(), error = %self.message, "request failed");
        } else {
            tracing::info!(target: "raft_kv::api", status = status.as_u16(), error = %self.message, "request refused");
        }
        let body = if self.kind.retry() {
            json!({ "error": self.message, "retry": true })
        } else {
            json!({ "error": self.message })
        };
        (status, axum::Json(body)).into_response()
    }
}

impl From<AuthError> for ApiError {
    /// A known token of too low a role is [`ErrorKind::Forbidden`]; no token or an unknown one
    /// is [`ErrorKind::Unauthenticated`].
    fn from(e: AuthError) -> Self {
        let kind = match e {
            AuthError::Forbidden { .. } => ErrorKind::Forbidden,
            AuthError::Missing | AuthError::Unknown => ErrorKind::Unauthenticated,
        };
        ApiError::new(kind, e.to_string())
    }
}

impl From<LimitError> for ApiError {
    fn from(e: LimitError) -> Self {
        let kind = if e.is_size() {
            ErrorKind::TooLarge
        } else {
            ErrorKind::BadRequest
        };
        ApiError::new(kind, e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_maps_to_a_matching_http_status_and_grpc_code() {
        use ErrorKind::*;
        for (kind, http, code) in [
            (BadRequest, 400, Code::InvalidArgument),
            (Unauthenticated, 401, Code::Unauthenticated),
            (Forbidden, 403, Code::PermissionDenied),
            (NotFound, 404, Code::NotFound),
            (Conflict, 409, Code::FailedPrecondition),
            (TooLarge, 413, Code::ResourceExhausted),
            (NotSent, 503, Code::Unavailable),
            (Unknown, 503, Code::Unknown),
            (ForwardFailed, 502, Code::Unknown),
            (Internal, 500, Code::Internal),
        ] {
            assert_eq!(kind.http_status().as_u16(), http, "{kind:?}");
            assert_eq!(kind.grpc_code(), code, "{kind:?}");
            assert_eq!(kind.retry(), kind == NotSent, "{kind:?}");
        }
    }

    #[test]
    fn only_a_refusal_carries_the_retry_mark_in_both_protocols() {
        let refused = ApiError::not_sent("no leader").into_status();
        assert_eq!(refused.code(), Code::Unavailable);
        assert_eq!(
            refused.metadata().get(RETRY_METADATA).map(|v| v.to_str().ok()),
            Some(Some("true"))
        );
        let unknown = ApiError::unknown("write failed").into_status();
        assert!(unknown.metadata().get(RETRY_METADATA).is_none());
    }

    /// The HTTP status, JSON body and gRPC status an error renders to.
    fn rendered(e: &ApiError) -> (u16, serde_json::Value, tonic::Status) {
        let response = e.clone().into_response();
        let http = response.status().as_u16();
        let bytes = futures::executor::block_on(axum::body::to_bytes(response.into_body(), usize::MAX))
            .expect("the body of an error");
        let body = serde_json::from_slice(&bytes).expect("a JSON body");
        (http, body, e.clone().into_status())
    }

    #[test]
    fn each_refusal_renders_one_message_to_http_and_grpc_with_matching_codes() {
        use crate::auth::Role;
        let refusals = [
            (ApiError::from(AuthError::Missing), 401, Code::Unauthenticated),
            (ApiError::from(AuthError::Unknown), 401, Code::Unauthenticated),
            (
                ApiError::from(AuthError::Forbidden {
                    has: Role::Read,
                    need: Role::Write,
                }),
                403,
                Code::PermissionDenied,
            ),
            (ApiError::from(LimitError::EmptyKey), 400, Code::InvalidArgument),
            (
                ApiError::from(LimitError::KeyTooLong { len: 9, limit: 8 }),
                400,
                Code::InvalidArgument,
            ),
            (
                ApiError::from(LimitError::RequestTooLarge { size: 9, limit: 8 }),
                413,
                Code::ResourceExhausted,
            ),
            (
                ApiError::from(LimitError::BodyTooLarge {
                    body_limit: 16,
                    limit: 8,
                }),
                413,
                Code::ResourceExhausted,
            ),
            (
                ApiError::unexpected(KvResponse::Refused {
                    reason: "a value too large for this engine".into(),
                }),
                413,
                Code::ResourceExhausted,
            ),
            (
                ApiError::unexpected(KvResponse::Delete { previous: None }),
                500,
                Code::Internal,
            ),
            (ApiError::no_leader(), 503, Code::Unavailable),
            (ApiError::too_many_hops(3), 503, Code::Unavailable),
            (
                ApiError::leader_without_grpc("127.0.0.1:1"),
                503,
                Code::Unavailable,
            ),
            (
                ApiError::leader_unreachable("127.0.0.1:1", "connection refused"),
                503,
                Code::Unavailable,
            ),
            (
                ApiError::forward_failed("127.0.0.1:1", "reset"),
                502,
                Code::Unknown,
            ),
            (ApiError::forward_answer_lost("reset"), 502, Code::Unknown),
            (ApiError::key_not_found("k"), 404, Code::NotFound),
            (
                ApiError::update_of_missing_key("k", Api::Http),
                404,
                Code::NotFound,
            ),
            (ApiError::unknown("write failed"), 503, Code::Unknown),
        ];
        for (error, http, code) in refusals {
            let (status, body, grpc) = rendered(&error);
            assert_eq!((status, grpc.code()), (http, code), "{error:?}");
            assert_eq!(body["error"].as_str(), Some(grpc.message()), "{error:?}: {body}");
            assert_eq!(grpc.message(), error.message, "{error:?}");
            let retry = code == Code::Unavailable;
            assert_eq!(
                body.get("retry").and_then(serde_json::Value::as_bool),
                retry.then_some(true),
                "{error:?}"
            );
            assert_eq!(grpc.metadata().get(RETRY_METADATA).is_some(), retry, "{error:?}");
        }
    }

    #[test]
    fn the_refusals_keep_their_messages() {
        assert_eq!(
            ApiError::from(LimitError::EmptyKey).message,
            "a key must not be empty"
        );
        assert_eq!(
            ApiError::unexpected(KvResponse::Refused {
                reason: "no room".into()
            })
            .message,
            "no room"
        );
        assert_eq!(
            ApiError::update_of_missing_key("k", Api::Http).message,
            "key \"k\" not found; PUT only updates an existing key (POST /key sets one)"
        );
        assert_eq!(
            ApiError::update_of_missing_key("k", Api::Grpc).message,
            "key \"k\" not found; UpdateEntries only updates an existing key (SaveEntries sets one)"
        );
        assert_eq!(
            ApiError::too_many_hops(3).message,
            "not accepted: not forwarded again after 3 hops: leadership is moving; retry shortly"
        );
        assert_eq!(
            ApiError::forward_failed("h:1", "reset").message,
            "forwarding to the leader at h:1: reset; the outcome is unknown"
        );
    }
}
