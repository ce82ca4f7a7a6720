//! Request parsing shared by the route modules: the caller (`Principal`), bodies (content
//! type, size cap, JSON syntax), conditional headers, path ids. Every failure is an
//! `ApiError`, so it renders as problem+json.

use std::rc::Rc;

use actix_web::{
    FromRequest, HttpMessage, HttpRequest,
    dev::Payload,
    http::header::{self, HeaderMap},
    web,
};
use futures_util::{StreamExt, future::LocalBoxFuture};
use serde_json::Value;
use uuid::Uuid;

use super::route_spec;
use crate::{
    auth::{AuthError, Authenticator, Permission, Principal},
    config::HttpSettings,
    error::ApiError,
    telemetry::metrics,
};

/// Extracting a `Principal` authenticates the request and enforces the permission that the
/// route table (`routes::ROUTES`) names for the matched route, so a handler that takes a
/// `Principal` can only run for a caller allowed on it. A route missing from the table is
/// refused (fail closed).
impl FromRequest for Principal {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            if let Some(principal) = req.extensions().get::<Rc<Principal>>() {
                return Ok(Principal::clone(principal));
            }
            let authenticator = req
                .app_data::<web::Data<dyn Authenticator>>()
                .cloned()
                .ok_or_else(|| ApiError::internal_msg("no authenticator registered"))?;
            let principal = authenticator.authenticate(&req).await.map_err(refused)?;
            principal.record_in_span();
            let route = route_spec(&req).filter(|r| !r.public).ok_or_else(|| {
                tracing::error!(
                    route = req.match_pattern().as_deref().unwrap_or("?"),
                    "route requires a principal but is missing from the route table"
                );
                ApiError::Forbidden {
                    permission: Permission::Admin,
                }
            })?;
            if let Some(required) = route.permission {
                principal.require(required)?;
            }
            req.extensions_mut().insert(Rc::new(principal.clone()));
            Ok(principal)
        })
    }
}

/// A refused credential: the precise reason goes to the log and the auth-failure metric, the
/// client gets only the stable code.
fn refused(e: AuthError) -> ApiError {
    match &e {
        AuthError::Missing => {}
        AuthError::InvalidToken { scheme, reason } => {
            tracing::warn!(event = "auth_failure", scheme = ?scheme, reason = %reason, "credential rejected");
            metrics::record_auth_failure(reason);
        }
        AuthError::CsrfRejected { reason } => {
            tracing::warn!(event = "auth_failure", reason = %reason, "cross-site request refused");
            metrics::record_auth_failure("csrf_rejected");
        }
    }
    ApiError::from(e)
}

/// Request bodies above this size are refused with 413.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

pub const JSON: &str = "application/json";
pub const MERGE_PATCH_JSON: &str = "application/merge-patch+json";

/// Checks the content type against `accepted`, reads at most `MAX_BODY_BYTES` and parses the
/// body as JSON (syntax only; the caller validates the shape).
pub async fn json_body(
    req: &HttpRequest,
    mut payload: web::Payload,
    accepted: &[&str],
) -> Result<Value, ApiError> {
    let essence = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
    if !essence.is_some_and(|e| accepted.contains(&e.as_str())) {
        return Err(ApiError::UnsupportedMediaType);
    }
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES) {
        return Err(ApiError::PayloadTooLarge);
    }
    let body_timeout = req.app_data::<web::Data<HttpSettings>>().map_or_else(
        || HttpSettings::default().body_timeout(),
        |s| s.body_timeout(),
    );
    let read = async {
        let mut body = web::BytesMut::new();
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(|e| ApiError::BadRequest {
                code: "invalid_body",
                detail: format!("could not read the request body: {e}"),
            })?;
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(ApiError::PayloadTooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    };
    // A client that trickles its body cannot hold the request open indefinitely.
    let body = tokio::time::timeout(body_timeout, read)
        .await
        .map_err(|_| ApiError::RequestTimeout)??;
    serde_json::from_slice(&body).map_err(|e| ApiError::MalformedJson(e.to_string()))
}

/// A player id from the path; anything that is not a UUID names no player (404).
pub fn path_id(raw: &str) -> Result<Uuid, ApiError> {
    Some(raw)
        .filter(|r| r.len() == 36)
        .and_then(|r| Uuid::parse_str(r).ok())
        .ok_or(ApiError::NotFound)
}

/// `entity-tag *( OWS "," OWS entity-tag )`, each tag `[W/]"etagc*"` with etagc any visible
/// ASCII but `"` (so a tag may hold a comma); `None` for anything else.
fn entity_tags(raw: &str) -> Option<Vec<String>> {
    let ows = |s: &str| s.trim_start_matches([' ', '\t']).to_owned();
    let mut rest = raw.to_owned();
    let mut tags = Vec::new();
    loop {
        let weak = rest.starts_with("W/");
        let opaque = rest.strip_prefix("W/").unwrap_or(&rest).strip_prefix('"')?;
        let end = opaque.find('"')?;
        let etagc = &opaque[..end];
        if !etagc
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x7e).contains(&b))
        {
            return None;
        }
        tags.push(format!("{}\"{etagc}\"", if weak { "W/" } else { "" }));
        let after = ows(&opaque[end + 1..]);
        if after.is_empty() {
            return Some(tags);
        }
        rest = ows(after.strip_prefix(',')?);
    }
}

/// The entity tags of an `If-Match` or `If-None-Match` header.
#[derive(Debug, PartialEq, Eq)]
pub enum EntityTags {
    Any,
    List(Vec<String>),
}

impl EntityTags {
    /// The JSON Schema `pattern` of what `from_header` accepts (RFC 9110 §8.8.3, §13.1.1):
    /// `*`, or a comma-separated list of entity tags, each optionally weak.
    /// An empty value carries no condition, like an absent header.
    pub const PATTERN: &str = r#"^(?:|\*|(?:W/)?"[!#-~]*"(?:[ \t]*,[ \t]*(?:W/)?"[!#-~]*")*)$"#;

    /// The header's tags; `Ok(None)` when it is absent, 400 `invalid_entity_tag` when it is not
    /// `*` or a list of entity tags.
    pub fn from_header(
        headers: &HeaderMap,
        name: header::HeaderName,
    ) -> Result<Option<EntityTags>, ApiError> {
        let Some(value) = headers.get(&name) else {
            return Ok(None);
        };
        let invalid = || ApiError::BadRequest {
            code: "invalid_entity_tag",
            detail: format!("{name} must be * or a comma-separated list of entity tags (\"3\")"),
        };
        let raw = value.to_str().map_err(|_| invalid())?.trim();
        match raw {
            // An empty field carries no condition.
            "" => Ok(None),
            "*" => Ok(Some(EntityTags::Any)),
            _ => entity_tags(raw)
                .map(|tags| Some(EntityTags::List(tags)))
                .ok_or_else(invalid),
        }
    }

    /// Strong comparison (If-Match).
    pub fn matches_strong(&self, etag: &str) -> bool {
        match self {
            EntityTags::Any => true,
            EntityTags::List(tags) => tags.iter().any(|t| t == etag),
        }
    }

    /// Weak comparison (If-None-Match): `W/"3"` matches `"3"`.
    pub fn matches_weak(&self, etag: &str) -> bool {
        match self {
            EntityTags::Any => true,
            EntityTags::List(tags) => tags
                .iter()
                .any(|t| t.strip_prefix("W/").unwrap_or(t) == etag),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::{HeaderValue, IF_MATCH};

    fn tags(v: &str) -> EntityTags {
        let mut h = HeaderMap::new();
        h.insert(IF_MATCH, HeaderValue::from_str(v).unwrap());
        EntityTags::from_header(&h, IF_MATCH).unwrap().unwrap()
    }

    #[test]
    fn entity_tags() {
        assert!(tags("*").matches_strong("\"1\""));
        assert!(tags("\"1\", \"2\"").matches_strong("\"2\""));
        assert!(!tags("\"1\"").matches_strong("\"2\""));
        assert!(
            !tags("W/\"2\"").matches_strong("\"2\""),
            "If-Match compares strongly"
        );
        assert!(tags("W/\"2\"").matches_weak("\"2\""));
    }

    #[test]
    fn malformed_entity_tags_are_refused() {
        assert!(
            tags("\"a,b\" ,\t\"c\"").matches_strong("\"a,b\""),
            "a tag may hold a comma"
        );
        for raw in [
            "1",
            "\"1",
            "\"1\",",
            "\"a\"b\"",
            "w/\"1\"",
            "**",
            "\"1\" \"2\"",
        ] {
            let mut h = HeaderMap::new();
            h.insert(IF_MATCH, HeaderValue::from_str(raw).unwrap());
            assert!(
                matches!(
                    EntityTags::from_header(&h, IF_MATCH),
                    Err(ApiError::BadRequest {
                        code: "invalid_entity_tag",
                        ..
                    })
                ),
                "{raw:?}"
            );
        }
        assert_eq!(
            EntityTags::from_header(&HeaderMap::new(), IF_MATCH).unwrap(),
            None
        );
        let mut empty = HeaderMap::new();
        empty.insert(IF_MATCH, HeaderValue::from_static(""));
        assert_eq!(EntityTags::from_header(&empty, IF_MATCH).unwrap(), None);
    }

    #[test]
    fn path_ids_that_are_not_uuids_are_not_found() {
        assert!(matches!(path_id("nope"), Err(ApiError::NotFound)));
        assert!(path_id("0190c8a5-1234-7abc-8def-0123456789ab").is_ok());
    }
}
