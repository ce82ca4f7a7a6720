//! One error type for the whole API, rendered as RFC 9457 `application/problem+json`.
//!
//! Every client-facing failure has a stable machine `code` and carries the request id.
//! Internal errors are logged with their full cause chain and shown only as a generic 500.

use actix_web::{
    HttpResponse, ResponseError,
    http::{StatusCode, header},
};
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::{AuthError, Forbidden, Permission, Scheme};
use crate::domain::FieldError;

/// The problem document (RFC 9457) every error response carries.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the problem type: `https://players-api.dev/problems/<code>`.
    #[serde(rename = "type")]
    pub type_: String,
    pub title: &'static str,
    pub status: u16,
    pub detail: String,
    /// Stable machine-readable code; clients switch on this.
    pub code: &'static str,
    /// The request id, also sent as the `x-request-id` response header.
    pub request_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldError>>,
}

pub const PROBLEM_JSON: &str = "application/problem+json";
const PROBLEM_BASE: &str = "https://players-api.dev/problems/";

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("malformed request body: {0}")]
    MalformedJson(String),
    #[error("invalid request: {detail}")]
    BadRequest { code: &'static str, detail: String },
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    #[error("not found")]
    NotFound,
    #[error("no such route")]
    NoRoute,
    #[error("club number already taken in this team")]
    ClubNumberTaken,
    #[error("idempotency key reused with a different request")]
    IdempotencyKeyReused,
    #[error("precondition failed")]
    PreconditionFailed,
    #[error("unsupported media type")]
    UnsupportedMediaType,
    #[error("payload too large")]
    PayloadTooLarge,
    /// The client did not send the whole body within HTTP_BODY_TIMEOUT_SECS.
    #[error("request body timeout")]
    RequestTimeout,
    /// The path exists with other methods; `allow` lists them (the `Allow` header).
    #[error("method not allowed")]
    MethodNotAllowed { allow: String },
    #[error("authentication required")]
    Unauthenticated,
    #[error("invalid token")]
    InvalidToken { scheme: Scheme },
    #[error("missing permission {permission}")]
    Forbidden { permission: Permission },
    #[error("cross-site request refused")]
    CsrfRejected,
    #[error("service unavailable")]
    Unavailable,
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    pub fn internal_msg(msg: &'static str) -> Self {
        ApiError::Internal(anyhow::anyhow!(msg))
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::MalformedJson(_) => "malformed_json",
            ApiError::BadRequest { code, .. } => code,
            ApiError::Validation(_) => "validation_failed",
            ApiError::NotFound => "not_found",
            ApiError::NoRoute => "route_not_found",
            ApiError::ClubNumberTaken => "club_number_taken",
            ApiError::IdempotencyKeyReused => "idempotency_key_reused",
            ApiError::PreconditionFailed => "precondition_failed",
            ApiError::UnsupportedMediaType => "unsupported_media_type",
            ApiError::PayloadTooLarge => "payload_too_large",
            ApiError::RequestTimeout => "request_timeout",
            ApiError::MethodNotAllowed { .. } => "method_not_allowed",
            ApiError::Unauthenticated => "unauthenticated",
            ApiError::InvalidToken { .. } => "invalid_token",
            ApiError::Forbidden { .. } => "forbidden",
            ApiError::CsrfRejected => "csrf_rejected",
            ApiError::Unavailable => "not_ready",
            ApiError::Internal(_) => "internal",
        }
    }

    fn title(&self) -> &'static str {
        match self {
            ApiError::MalformedJson(_) => "Malformed JSON body",
            ApiError::BadRequest { .. } => "Invalid request",
            ApiError::Validation(_) => "Validation failed",
            ApiError::NotFound | ApiError::NoRoute => "Not found",
            ApiError::ClubNumberTaken => "Club number taken",
            ApiError::IdempotencyKeyReused => "Idempotency key reused",
            ApiError::PreconditionFailed => "Precondition failed",
            ApiError::UnsupportedMediaType => "Unsupported media type",
            ApiError::PayloadTooLarge => "Payload too large",
            ApiError::RequestTimeout => "Request timeout",
            ApiError::MethodNotAllowed { .. } => "Method not allowed",
            ApiError::Unauthenticated => "Authentication required",
            ApiError::InvalidToken { .. } => "Invalid token",
            ApiError::Forbidden { .. } => "Forbidden",
            ApiError::CsrfRejected => "Cross-site request refused",
            ApiError::Unavailable => "Service unavailable",
            ApiError::Internal(_) => "Internal server error",
        }
    }

    fn detail(&self) -> String {
        match self {
            ApiError::MalformedJson(d) => d.clone(),
            ApiError::BadRequest { detail, .. } => detail.clone(),
            ApiError::Validation(errors) => {
                format!("{} field(s) failed validation", errors.len())
            }
            ApiError::NotFound => "no such resource".into(),
            ApiError::NoRoute => "no route matches this path".into(),
            ApiError::ClubNumberTaken => {
                "another player of this team already wears this club number".into()
            }
            ApiError::IdempotencyKeyReused => {
                "this Idempotency-Key was already used with a different request body".into()
            }
            ApiError::PreconditionFailed => {
                "the resource has changed since the ETag given in If-Match".into()
            }
            ApiError::UnsupportedMediaType => {
                "send application/json (or application/merge-patch+json for PATCH)".into()
            }
            ApiError::PayloadTooLarge => "request body exceeds 64 KiB".into(),
            ApiError::RequestTimeout => "the request body did not arrive in time".into(),
            ApiError::MethodNotAllowed { .. } => {
                "this method is not allowed on this resource".into()
            }
            ApiError::Unauthenticated => "log in, or send a bearer token".into(),
            ApiError::InvalidToken { .. } => "the credential could not be verified".into(),
            ApiError::Forbidden { permission } => format!("requires permission {permission}"),
            ApiError::CsrfRejected => {
                "unsafe requests from a browser session must be same-origin".into()
            }
            ApiError::Unavailable => "a dependency is not reachable".into(),
            ApiError::Internal(_) => "an internal error occurred; quote the request id".into(),
        }
    }

    pub fn problem(&self) -> Problem {
        let code = self.code();
        Problem {
            type_: format!("{PROBLEM_BASE}{code}"),
            title: self.title(),
            status: self.status_code().as_u16(),
            detail: self.detail(),
            code,
            request_id: crate::telemetry::current_request_id(),
            errors: match self {
                ApiError::Validation(errors) => Some(errors.clone()),
                _ => None,
            },
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::MalformedJson(_) | ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::NotFound | ApiError::NoRoute => StatusCode::NOT_FOUND,
            ApiError::ClubNumberTaken | ApiError::IdempotencyKeyReused => StatusCode::CONFLICT,
            ApiError::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Unauthenticated | ApiError::InvalidToken { .. } => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden { .. } | ApiError::CsrfRejected => StatusCode::FORBIDDEN,
            ApiError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let ApiError::Internal(e) = self {
            // `{:?}` of anyhow prints the whole cause chain; it goes to the log only.
            tracing::error!(error = ?e, "internal error");
        }
        let mut builder = HttpResponse::build(self.status_code());
        builder.insert_header((header::CONTENT_TYPE, PROBLEM_JSON));
        match self {
            ApiError::InvalidToken {
                scheme: Scheme::Bearer,
            } => {
                builder
                    .insert_header((header::WWW_AUTHENTICATE, r#"Bearer error="invalid_token""#));
            }
            ApiError::Unauthenticated => {
                builder.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
            }
            ApiError::MethodNotAllowed { allow } => {
                builder.insert_header((header::ALLOW, allow.as_str()));
            }
            _ => {}
        }
        builder.json(self.problem())
    }
}

/// The client-facing side of a refused credential: a stable code only. The precise reason is
/// for operators; the `Principal` extractor logs and counts it (`routes::extract`).
impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Missing => ApiError::Unauthenticated,
            AuthError::InvalidToken { scheme, .. } => ApiError::InvalidToken { scheme },
            AuthError::CsrfRejected { .. } => ApiError::CsrfRejected,
        }
    }
}

impl From<Forbidden> for ApiError {
    fn from(Forbidden { permission }: Forbidden) -> Self {
        ApiError::Forbidden { permission }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_errors_hide_their_cause() {
        let err = ApiError::Internal(anyhow::anyhow!("select * from secret_table failed"));
        let problem = err.problem();
        assert_eq!(problem.status, 500);
        assert_eq!(problem.code, "internal");
        assert!(!problem.detail.contains("secret_table"));
    }

    #[test]
    fn bearer_failures_carry_www_authenticate() {
        let resp = ApiError::InvalidToken {
            scheme: Scheme::Bearer,
        }
        .error_response();
        assert_eq!(resp.status(), 401);
        assert_eq!(
            resp.headers().get(header::WWW_AUTHENTICATE).unwrap(),
            r#"Bearer error="invalid_token""#
        );
        assert_eq!(
            resp.headers().get(header::CONTENT_TYPE).unwrap(),
            PROBLEM_JSON
        );
    }
}
