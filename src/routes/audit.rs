//! `GET /v1/admin/audit`: the audit trail of player changes, newest first, a page at a time.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::players::{DEFAULT_LIMIT, MAX_LIMIT};
use crate::{
    auth::Principal,
    domain::FieldError,
    error::ApiError,
    store::{AuditCursor, AuditFilters, AuditQuery, AuditRecord, CursorError, PlayerStore},
};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/v1/admin/audit")
            .route(web::get().to(list_audit))
            .default_service(web::to(super::unrouted)),
    );
}

/// Query parameters of the audit listing.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// Only changes of this player.
    player_id: Option<String>,
    /// Only changes by this user `sub` or service client id.
    actor_id: Option<String>,
    /// RFC 3339; records at or after this instant.
    from: Option<String>,
    /// RFC 3339; records before this instant.
    to: Option<String>,
    /// Page size, 1-200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// A page of audit records, newest first.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct AuditPageBody {
    pub items: Vec<AuditRecord>,
    /// Pass as `cursor` to get the next (older) page; `null` on the last page.
    pub next_cursor: Option<String>,
}

const MAX_ACTOR_ID_LEN: usize = 255;

fn parse_time(
    field: &str,
    raw: Option<&str>,
    errors: &mut Vec<FieldError>,
) -> Option<DateTime<Utc>> {
    let raw = raw?;
    match DateTime::parse_from_rfc3339(raw) {
        Ok(t) => Some(t.with_timezone(&Utc)),
        Err(_) => {
            errors.push(FieldError::new(
                field,
                "invalid_time",
                "must be an RFC 3339 date-time, e.g. 2026-05-01T12:00:00Z",
            ));
            None
        }
    }
}

impl AuditParams {
    fn into_query(self) -> Result<AuditQuery, ApiError> {
        let mut errors = Vec::new();
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            errors.push(FieldError::new("limit", "out_of_range", "must be 1-200"));
        }
        let player_id = self.player_id.as_deref().and_then(|raw| {
            // The hyphenated form only, as the document's `format: uuid` says.
            let parsed = Some(raw)
                .filter(|r| r.len() == 36)
                .and_then(|r| uuid::Uuid::parse_str(r).ok());
            if parsed.is_none() {
                errors.push(FieldError::new("player_id", "invalid_id", "must be a UUID"));
            }
            parsed
        });
        let actor_id = self.actor_id.as_deref().map(str::trim).and_then(|a| {
            if a.is_empty() || a.chars().count() > MAX_ACTOR_ID_LEN {
                errors.push(FieldError::new(
                    "actor_id",
                    "invalid_filter",
                    "must be 1-255 characters",
                ));
                None
            } else {
                Some(a.to_owned())
            }
        });
        let from = parse_time("from", self.from.as_deref(), &mut errors);
        let to = parse_time("to", self.to.as_deref(), &mut errors);
        if let (Some(from), Some(to)) = (from, to)
            && from > to
        {
            errors.push(FieldError::new(
                "to",
                "invalid_range",
                "must not precede from",
            ));
        }
        if !errors.is_empty() {
            return Err(ApiError::Validation(errors));
        }
        let filters = AuditFilters {
            player_id,
            actor_id,
            // Both backends keep microseconds; finer input would not round-trip in a cursor.
            from: from.map(truncate_micros),
            to: to.map(truncate_micros),
        };
        let after = match self.cursor.as_deref() {
            None => None,
            Some(c) => {
                Some(
                    AuditCursor::decode(c, &filters).map_err(|e| ApiError::BadRequest {
                        code: "invalid_cursor",
                        detail: match e {
                            CursorError::Malformed => "the cursor is not valid".into(),
                            CursorError::Mismatch => "the cursor belongs to other filters".into(),
                        },
                    })?,
                )
            }
        };
        Ok(AuditQuery {
            filters,
            limit,
            after,
        })
    }
}

fn truncate_micros(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(t.timestamp_micros()).unwrap_or(t)
}

/// The audit trail: every create, update and delete of a player, newest first. Requires
/// `admin`.
#[utoipa::path(
    get,
    path = "/v1/admin/audit",
    tag = "audit",
    params(AuditParams),
    responses(
        (status = 200, description = "A page of audit records, newest first", body = AuditPageBody),
        (status = 400, description = "`invalid_query` (unknown or malformed parameter) or `invalid_cursor`", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthenticated` or `invalid_token`", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden` (needs admin)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed` (limit, player_id, actor_id, from or to invalid)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 500, description = "`internal`", body = crate::error::Problem, content_type = "application/problem+json"),
    ),
    security(("alb" = []), ("bearer" = []))
)]
#[tracing::instrument(name = "handler.list_audit", skip_all)]
pub async fn list_audit(
    _admin: Principal,
    params: web::Query<AuditParams>,
    store: web::Data<dyn PlayerStore>,
) -> Result<HttpResponse, ApiError> {
    let query = params.into_inner().into_query()?;
    let page = store.list_audit(&query).await?;
    Ok(HttpResponse::Ok().json(AuditPageBody {
        items: page.items,
        next_cursor: page.next.map(|c| c.encode()),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(from: Option<&str>, to: Option<&str>) -> AuditParams {
        AuditParams {
            player_id: None,
            actor_id: None,
            from: from.map(str::to_owned),
            to: to.map(str::to_owned),
            limit: None,
            cursor: None,
        }
    }

    #[test]
    fn times_are_rfc3339_and_ordered() {
        let q = params(Some("2026-05-01T12:00:00+02:00"), None)
            .into_query()
            .unwrap();
        assert_eq!(
            q.filters.from.unwrap().to_rfc3339(),
            "2026-05-01T10:00:00+00:00"
        );
        assert!(matches!(
            params(Some("yesterday"), None).into_query(),
            Err(ApiError::Validation(_))
        ));
        assert!(matches!(
            params(Some("2026-05-02T00:00:00Z"), Some("2026-05-01T00:00:00Z")).into_query(),
            Err(ApiError::Validation(_))
        ));
    }
}
