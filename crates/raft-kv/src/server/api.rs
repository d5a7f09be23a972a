//! The client API's key routes, and what every client API request passes first: the token
//! check, the body limit and the key's decoding (see the [module docs](super)).

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::body::Bytes;
use axum::extract::FromRequest;
use axum::extract::FromRequestParts;
use axum::extract::Query;
use axum::extract::Request;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::http::Method;
use axum::http::Uri;
use axum::http::header::AUTHORIZATION;
use axum::http::header::WWW_AUTHENTICATE;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::IntoResponse;
use axum::response::Response;
use axum::routing::get;
use axum::routing::post;
use raft_store::kv::KvRequest;
use raft_store::kv::KvResponse;
use serde::Deserialize;
use serde_json::json;

use super::Api;
use super::ApiError;
use super::ErrorKind;
use super::NodeState;
use super::Shared;
use super::forward::forward;
use super::forward::hops;
use super::forward::route;
use super::forward::to_leader;
use super::members::join;
use super::members::leave;
use super::ops::Proposed;
use super::ops::linearize;
use super::ops::propose;
use super::ops::read_local;
use super::status::health;
use super::status::metrics;
use super::status::openapi;
use super::status::status;
use crate::auth::AuthError;
use crate::auth::Role;
use crate::json_errors::json_errors;
use crate::limits::LimitError;

/// The router of the client API.
pub fn api_router(state: Shared) -> Router {
    Router::new()
        .route(
            "/key",
            post(put_many).get(get_key).put(update_key).delete(delete_key),
        )
        // `/key/` itself, so an empty key is named as such rather than as an unknown route.
        .route("/key/", get(get_key).put(update_key).delete(delete_key))
        .route("/key/{*key}", get(get_key).put(update_key).delete(delete_key))
        .route("/join", post(join))
        .route("/leave", post(leave))
        .route("/status", get(status))
        .route("/metrics", get(metrics))
        .fallback(|method: Method, uri: Uri| async move {
            let path = uri.path();
            let shown = if path.len() > 200 { "(a long path)" } else { path };
            ApiError::not_found(format!("no route {method} {shown}"))
        })
        .layer(axum::middleware::from_fn_with_state(state.clone(), authorize))
        // A probe and the API's contract need no token: a load balancer or supervisor asks
        // `/health` without one, and the contract holds no data.
        .merge(
            Router::new()
                .route("/health", get(health))
                .route("/openapi.json", get(openapi)),
        )
        .layer(axum::middleware::from_fn(json_errors))
        .with_state(state)
}

/// The role a caller's token proved: a request extension once [`authorize`] let it through
/// (absent when the API has no tokens).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller(pub Role);

/// The role a request needs: reading (`GET`, `HEAD`, `OPTIONS`) or changing anything (every other
/// method).
pub fn needed_role(method: &Method) -> Role {
    // OPTIONS changes nothing either (and no route serves it: it gets 405, not 403).
    if *method == Method::GET || *method == Method::HEAD || *method == Method::OPTIONS {
        Role::Read
    } else {
        Role::Write
    }
}

/// An auth failure as an HTTP answer: [`ApiError`]'s, with a `WWW-Authenticate` challenge on
/// a 401.
fn auth_refusal(e: AuthError) -> Response {
    let error = ApiError::from(e);
    let challenge = error.kind == ErrorKind::Unauthenticated;
    let mut response = error.into_response();
    if challenge {
        response.headers_mut().insert(
            WWW_AUTHENTICATE,
            axum::http::HeaderValue::from_static("Bearer realm=\"raft-kv\""),
        );
    }
    response
}

/// With an auth file, let a request through only with a token of the role it needs.
async fn authorize(State(s): State<Shared>, mut request: Request, next: Next) -> Response {
    let Some(auth) = &s.auth else {
        return next.run(request).await;
    };
    let header = request
        .headers()
        .get(AUTHORIZATION)
        .map(axum::http::HeaderValue::as_bytes);
    match auth.check(header, needed_role(request.method())) {
        Ok(role) => {
            request.extensions_mut().insert(Caller(role));
            next.run(request).await
        }
        Err(e) => auth_refusal(e),
    }
}

/// Parse a request body that must be one JSON object. serde would also take an array for a
/// struct (`[5]` as `{"id": 5}`): a body that is not an object is refused, naming what it is.
pub(super) fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8], what: &str) -> Result<T, ApiError> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        let found = match first {
            None => "an empty body",
            Some(b'[') => "an array",
            Some(b'"') => "a string",
            Some(_) => "not an object",
        };
        return Err(ApiError::bad_request(format!(
            "{what}: the body is {found}, not a JSON object"
        )));
    }
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("{what}: {e}")))
}

/// The pairs of `POST /key`: a JSON object whose keys are unique. serde's map would keep the
/// last of two equal keys and drop the other value without a word.
struct UniquePairs(BTreeMap<String, JsonValue>);

impl<'de> Deserialize<'de> for UniquePairs {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Pairs;
        impl<'de> serde::de::Visitor<'de> for Pairs {
            type Value = UniquePairs;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object of keys and values")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<UniquePairs, A::Error> {
                let mut pairs = BTreeMap::new();
                while let Some((key, value)) = map.next_entry::<String, JsonValue>()? {
                    if pairs.contains_key(&key) {
                        let shown: String = key.chars().take(100).collect();
                        return Err(serde::de::Error::custom(format!(
                            "the key {shown:?} is given twice"
                        )));
                    }
                    pairs.insert(key, value);
                }
                Ok(UniquePairs(pairs))
            }
        }
        deserializer.deserialize_map(Pairs)
    }
}

/// A request body of the client API, read up to [`Limits::api_body_bytes`]; a larger one is
/// refused with 413 naming the limit.
pub struct ApiBody(pub Bytes);

/// How much of a body over the limit is still read (and dropped) before the refusal: answering
/// while the client still sends makes the kernel reset the connection, and the client may lose
/// the answer. Past this much, the connection is closed regardless.
const DRAIN_BYTES: usize = 64 << 20;

impl FromRequest<Shared> for ApiBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &Shared) -> Result<Self, ApiError> {
        use http_body_util::BodyExt as _;
        let limit = state.limits.api_body_bytes();
        let mut body = request.into_body();
        let mut kept = Vec::new();
        let mut seen = 0usize;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| ApiError::bad_request(format!("reading the request body: {e}")))?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            seen = seen.saturating_add(data.len());
            if seen <= limit {
                kept.extend_from_slice(&data);
            } else if seen > DRAIN_BYTES {
                break;
            } else {
                kept = Vec::new();
            }
        }
        if seen > limit {
            return Err(ApiError::from(LimitError::BodyTooLarge {
                body_limit: limit,
                limit: state.limits.max_request_bytes,
            }));
        }
        Ok(ApiBody(Bytes::from(kept)))
    }
}

/// The query of a key's routes.
#[derive(Deserialize)]
struct KeyQuery {
    /// The key, for `/key?key=...`.
    key: Option<String>,
    /// Read this node's state machine without asking the leader.
    #[serde(default)]
    stale: bool,
}

/// The key a request addresses (from the path or the query, see the module docs), checked
/// against the key limit, and the request's `stale` flag.
pub struct KeyTarget {
    /// The key, decoded.
    pub key: String,
    /// Whether a stale read was asked for.
    pub stale: bool,
}

impl FromRequestParts<Shared> for KeyTarget {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Shared) -> Result<Self, ApiError> {
        let Query(query) = Query::<KeyQuery>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::bad_request(format!("the query: {}", e.body_text())))?;
        let key = match (parts.uri.path().strip_prefix("/key/"), query.key) {
            (Some(_), Some(_)) => {
                return Err(ApiError::bad_request(
                    "a key in the path and another in the query",
                ));
            }
            (Some(encoded), None) => percent_encoding::percent_decode_str(encoded)
                .decode_utf8()
                .map_err(|e| {
                    ApiError::bad_request(format!("the key in the path is not UTF-8 once decoded: {e}"))
                })?
                .into_owned(),
            // The query's own decoding replaced bytes that are not UTF-8 by U+FFFD, which
            // would alias such a key to another: decode it again, strictly.
            (None, Some(_)) => query_key(parts.uri.query().unwrap_or(""))?,
            (None, None) => return Err(ApiError::bad_request("no key: use /key/{key} or /key?key={key}")),
        };
        state.limits.check_key(&key)?;
        Ok(KeyTarget {
            key,
            stale: query.stale,
        })
    }
}

/// The `key` of a form-encoded query, decoded strictly: bytes that are not UTF-8 once
/// decoded are refused, not replaced.
fn query_key(query: &str) -> Result<String, ApiError> {
    let decode = |part: &str| {
        let spaced = part.replace('+', " ");
        percent_encoding::percent_decode_str(&spaced)
            .decode_utf8()
            .map(std::borrow::Cow::into_owned)
    };
    let mut found = None;
    for pair in query.split('&') {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        if decode(name).as_deref() != Ok("key") {
            continue;
        }
        if found.is_some() {
            return Err(ApiError::bad_request("the query names `key` twice"));
        }
        let key = decode(value).map_err(|e| {
            ApiError::bad_request(format!("the key in the query is not UTF-8 once decoded: {e}"))
        })?;
        found = Some(key);
    }
    found.ok_or_else(|| ApiError::bad_request("no key: use /key/{key} or /key?key={key}"))
}

/// Write through raft once the request passed the limits; a follower forwards the original
/// request to the leader.
async fn write(
    s: &NodeState,
    request: KvRequest,
    method: Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Result<(u64, KvResponse), Response>, ApiError> {
    s.limits.check_request(&request)?;
    match propose(s, request).await? {
        Proposed::Applied(index, response) => Ok(Ok((index, response))),
        Proposed::NotLeader(leader) => {
            let to = to_leader(Api::Http, leader.as_ref(), hops(headers))?;
            Ok(Err(forward(s, &to, method, uri, headers, body).await?))
        }
    }
}

async fn put_many(
    State(s): State<Shared>,
    uri: Uri,
    headers: HeaderMap,
    ApiBody(body): ApiBody,
) -> Result<Response, ApiError> {
    let UniquePairs(pairs) = parse_json(
        &body,
        "POST /key wants a JSON object of string keys and values (strings, or {\"base64\": ...} for bytes)",
    )?;
    if pairs.is_empty() {
        return Err(ApiError::bad_request("POST /key: the object has no keys"));
    }
    let keys: Vec<String> = pairs.keys().cloned().collect();
    let request = KvRequest::SetMany {
        pairs: pairs.into_iter().map(|(k, v)| (k, v.0)).collect(),
    };
    match write(&s, request, Method::POST, &uri, &headers, body).await? {
        Ok((index, KvResponse::SetMany { previous })) => {
            let previous: BTreeMap<String, Option<JsonValue>> = keys
                .into_iter()
                .zip(previous.into_iter().map(|p| p.map(JsonValue)))
                .collect();
            Ok(axum::Json(json!({ "index": index, "previous": previous })).into_response())
        }
        Ok((_, other)) => Err(ApiError::unexpected(other)),
        Err(forwarded) => Ok(forwarded),
    }
}

/// A value in JSON: a string when the bytes are UTF-8, `{"base64": "..."}` otherwise (and
/// either form accepted in requests), so any bytes round-trip through the JSON API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonValue(pub Vec<u8>);

impl serde::Serialize for JsonValue {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use base64::Engine as _;
        use serde::ser::SerializeMap;
        if let Ok(text) = std::str::from_utf8(&self.0) {
            serializer.serialize_str(text)
        } else {
            let mut map = serializer.serialize_map(Some(1))?;
            map.serialize_entry(
                "base64",
                &base64::engine::general_purpose::STANDARD.encode(&self.0),
            )?;
            map.end()
        }
    }
}

impl<'de> Deserialize<'de> for JsonValue {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use base64::Engine as _;
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Form {
            Text(String),
            Bytes { base64: String },
        }
        match Form::deserialize(deserializer)
            .map_err(|_| serde::de::Error::custom("a value must be a string or {\"base64\": string}"))?
        {
            Form::Text(text) => Ok(JsonValue(text.into_bytes())),
            Form::Bytes { base64 } => base64::engine::general_purpose::STANDARD
                .decode(base64.as_bytes())
                .map(JsonValue)
                .map_err(|e| serde::de::Error::custom(format!("invalid base64: {e}"))),
        }
    }
}

async fn get_key(
    State(s): State<Shared>,
    KeyTarget { key, stale }: KeyTarget,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if stale {
        s.counters.stale_reads.fetch_add(1, Ordering::Relaxed);
    } else if let Some(to) = route(
        Api::Http,
        linearize(&s).await?.as_ref().map(Option::as_ref),
        hops(&headers),
    )? {
        return forward(&s, &to, Method::GET, &uri, &headers, Bytes::new()).await;
    }
    let value = read_local(&s, &key)?;
    match value {
        Some(value) => Ok(axum::Json(json!({ "key": key, "value": JsonValue(value) })).into_response()),
        None => Err(ApiError::key_not_found(&key)),
    }
}

/// The body of `PUT /key/{k}`.
#[derive(Deserialize)]
struct UpdateBody {
    value: JsonValue,
}

async fn update_key(
    State(s): State<Shared>,
    KeyTarget { key, .. }: KeyTarget,
    uri: Uri,
    headers: HeaderMap,
    ApiBody(body): ApiBody,
) -> Result<Response, ApiError> {
    let UpdateBody { value } = parse_json(&body, "PUT /key/{k} wants {\"value\": string}")?;
    let request = KvRequest::UpdateIfExists {
        key: key.clone(),
        value: value.0,
    };
    match write(&s, request, Method::PUT, &uri, &headers, body).await? {
        Ok((
            index,
            KvResponse::UpdateIfExists {
                previous: Some(previous),
            },
        )) => Ok(axum::Json(json!({ "index": index, "previous": JsonValue(previous) })).into_response()),
        Ok((_, KvResponse::UpdateIfExists { previous: None })) => {
            Err(ApiError::update_of_missing_key(&key, Api::Http))
        }
        Ok((_, other)) => Err(ApiError::unexpected(other)),
        Err(forwarded) => Ok(forwarded),
    }
}

async fn delete_key(
    State(s): State<Shared>,
    KeyTarget { key, .. }: KeyTarget,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let request = KvRequest::Delete { key };
    match write(&s, request, Method::DELETE, &uri, &headers, Bytes::new()).await? {
        Ok((index, KvResponse::Delete { previous })) => Ok(axum::Json(
            json!({ "index": index, "existed": previous.is_some(), "previous": previous.map(JsonValue) }),
        )
        .into_response()),
        Ok((_, other)) => Err(ApiError::unexpected(other)),
        Err(forwarded) => Ok(forwarded),
    }
}
