//! One error type for the client API, HTTP and gRPC alike. What went wrong (the
//! [`ErrorKind`]) decides the HTTP status, the gRPC code and whether a client may send the
//! request again, so neither protocol reads a message to learn what happened.

use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::response::Response;
use serde_json::json;
use tonic::Code;

use crate::limits::LimitError;

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
}
