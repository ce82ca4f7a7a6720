//! `/v1/players`: create, list, read, merge-patch and delete players.
//!
//! Longer than most modules (about 480 lines before its tests) because the five handlers of
//! one resource stay together with what only they share: ETags and preconditions, the
//! idempotency key, the audit context and log line, the listing's query parsing; a third of it
//! is the handlers' OpenAPI annotations.

use actix_web::{HttpRequest, HttpResponse, http::header, web};
use aws_lc_rs::digest;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::extract::{self, EntityTags, JSON, MERGE_PATCH_JSON};
use super::merge_patch;
use crate::{
    auth::Principal,
    domain::{Country, FieldError, NewPlayer, Player, PlayerInput, Position, player_json},
    error::{ApiError, Problem},
    store::{
        AuditAction, AuditContext, Changes, Created, Cursor, CursorError, Filters, Idempotency,
        ListQuery, PlayerStore, Sort, StoreError,
    },
};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/v1/players")
            .route(web::get().to(list_players))
            .route(web::post().to(create_player))
            .default_service(web::to(super::unrouted)),
    )
    .service(
        web::resource("/v1/players/{id}")
            .route(web::get().to(get_player))
            .route(web::patch().to(update_player))
            .route(web::delete().to(delete_player))
            .default_service(web::to(super::unrouted)),
    );
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => ApiError::NotFound,
            StoreError::ClubNumberTaken => ApiError::ClubNumberTaken,
            StoreError::VersionMismatch => ApiError::PreconditionFailed,
            StoreError::IdempotencyKeyReused => ApiError::IdempotencyKeyReused,
            StoreError::Unavailable(e) => {
                // The cause is for operators (the log line has the request id); the client
                // learns only that it may retry.
                tracing::warn!(error = %format!("{e:#}"), "database unavailable");
                ApiError::Unavailable
            }
            StoreError::Other(e) => ApiError::Internal(e),
        }
    }
}

fn today() -> chrono::NaiveDate {
    chrono::Utc::now().date_naive()
}

/// Validates a JSON document as a player (shape, then rules).
fn parse_player(doc: &Value) -> Result<NewPlayer, ApiError> {
    let input = PlayerInput::from_json(doc).map_err(ApiError::Validation)?;
    NewPlayer::parse(&input, today()).map_err(ApiError::Validation)
}

fn with_etag(mut builder: actix_web::HttpResponseBuilder, player: &Player) -> HttpResponse {
    builder
        .insert_header((header::ETAG, player.etag()))
        .json(player)
}

/// Who is changing what, for the audit record the store writes with the change.
fn audit_context(req: &HttpRequest, principal: &Principal) -> AuditContext {
    AuditContext {
        actor: principal.actor(),
        request_id: crate::telemetry::current_request_id(),
        trace_id: crate::telemetry::trace_id_from_request(req.headers()),
        client_request_id: crate::telemetry::current_client_request_id(),
    }
}

/// The `audit` log line of a committed change: names of the changed fields, never values.
fn log_audit(action: AuditAction, player_id: uuid::Uuid, ctx: &AuditContext, changes: &Changes) {
    tracing::info!(
        event = "audit",
        action = action.as_str(),
        player_id = %player_id,
        actor_kind = ctx.actor.kind.as_str(),
        actor_id = %ctx.actor.id,
        fields = %changes.field_names().join(","),
        "audit"
    );
}

const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;

fn idempotency(req: &HttpRequest, doc: &Value) -> Result<Option<Idempotency>, ApiError> {
    let Some(raw) = req.headers().get("idempotency-key") else {
        return Ok(None);
    };
    let key = raw
        .to_str()
        .ok()
        .filter(|k| {
            (1..=MAX_IDEMPOTENCY_KEY_LEN).contains(&k.len())
                && k.bytes().all(|b| (0x21..=0x7e).contains(&b))
        })
        .ok_or_else(|| ApiError::BadRequest {
            code: "invalid_idempotency_key",
            detail: "Idempotency-Key must be 1-255 visible ASCII characters".into(),
        })?;
    // serde_json's maps are ordered by key, so equal documents hash equally whatever the
    // member order or white space of the request.
    let canonical = serde_json::to_vec(doc).map_err(anyhow::Error::from)?;
    let hash = digest::digest(&digest::SHA256, &canonical);
    let request_hash = hash.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    Ok(Some(Idempotency {
        key: key.to_owned(),
        request_hash,
    }))
}

/// Create a player.
#[utoipa::path(
    post,
    path = "/v1/players",
    tag = "players",
    request_body(content = PlayerInput, content_type = "application/json"),
    params(
        ("Idempotency-Key" = Option<String>, Header, max_length = 255,
         description = "Retrying with the same key and body within 24 h returns the original response and creates nothing."),
    ),
    responses(
        (status = 201, description = "Created; `Location` and `ETag` headers are set. A replay also sets `Idempotent-Replayed: true`.", body = Player,
         headers(("Location" = String), ("ETag" = String))),
        (status = 400, description = "`malformed_json` or `invalid_idempotency_key`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthenticated` or `invalid_token`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden` (needs players:write) or `csrf_rejected`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`club_number_taken` or `idempotency_key_reused`", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "`payload_too_large` (over 64 KiB)", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "`unsupported_media_type`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed`, with `errors`", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "`internal`", body = Problem, content_type = "application/problem+json"),
    ),
    security(("alb" = []), ("bearer" = []))
)]
#[tracing::instrument(name = "handler.create_player", skip_all)]
pub async fn create_player(
    req: HttpRequest,
    principal: Principal,
    payload: web::Payload,
    store: web::Data<dyn PlayerStore>,
) -> Result<HttpResponse, ApiError> {
    let doc = extract::json_body(&req, payload, &[JSON]).await?;
    let idem = idempotency(&req, &doc)?;
    let player = parse_player(&doc)?;
    let ctx = audit_context(&req, &principal);
    let (player, replayed) = match store.create(&player, &ctx, idem.as_ref()).await? {
        Created::New(p) => {
            let changes = Changes::between(None, Some(&p));
            log_audit(AuditAction::Create, p.id, &ctx, &changes);
            (p, false)
        }
        Created::Replayed(p) => (p, true),
    };
    let mut builder = HttpResponse::Created();
    builder.insert_header((header::LOCATION, format!("/v1/players/{}", player.id)));
    if replayed {
        builder.insert_header(("idempotent-replayed", "true"));
    }
    Ok(with_etag(builder, &player))
}

/// Query parameters of the listing.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Page size, 1-200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Exact club name.
    team: Option<String>,
    /// FIFA code, any case.
    country: Option<String>,
    position: Option<Position>,
    /// Case-insensitive substring of the name.
    name: Option<String>,
    /// `name`, `date_of_birth` or `created_at` (default), `-` prefix for descending.
    #[param(pattern = "^-?(name|date_of_birth|created_at)$")]
    sort: Option<String>,
}

/// A page of players.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PlayerPage {
    pub items: Vec<Player>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 200;

impl ListParams {
    fn into_query(self) -> Result<ListQuery, ApiError> {
        let mut errors = Vec::new();
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            errors.push(FieldError::new("limit", "out_of_range", "must be 1-200"));
        }
        let sort = match self.sort.as_deref() {
            None => Sort::default(),
            Some(s) => Sort::parse(s).unwrap_or_else(|| {
                errors.push(FieldError::new(
                    "sort",
                    "invalid_sort",
                    "must be name, date_of_birth or created_at, optionally prefixed with -",
                ));
                Sort::default()
            }),
        };
        let country = self.country.as_deref().and_then(|c| {
            let parsed = Country::parse(c);
            if parsed.is_none() {
                errors.push(FieldError::new(
                    "country",
                    "invalid_country",
                    "unknown FIFA code",
                ));
            }
            parsed.map(|c| c.code().to_owned())
        });
        let name_contains = self.name.as_deref().map(str::trim).and_then(|n| {
            if n.is_empty() || n.chars().count() > 100 {
                errors.push(FieldError::new(
                    "name",
                    "invalid_filter",
                    "must be 1-100 characters",
                ));
                None
            } else {
                Some(n.to_lowercase())
            }
        });
        if !errors.is_empty() {
            return Err(ApiError::Validation(errors));
        }
        let filters = Filters {
            team: self.team.map(|t| t.trim().to_owned()),
            country,
            position: self.position,
            name_contains,
        };
        let after = match self.cursor.as_deref() {
            None => None,
            Some(c) => {
                Some(
                    Cursor::decode(c, sort, &filters).map_err(|e| ApiError::BadRequest {
                        code: "invalid_cursor",
                        detail: match e {
                            CursorError::Malformed => "the cursor is not valid".into(),
                            CursorError::Mismatch => {
                                "the cursor belongs to another sort or filter".into()
                            }
                        },
                    })?,
                )
            }
        };
        Ok(ListQuery {
            filters,
            sort,
            limit,
            after,
        })
    }
}

/// List players, a page at a time.
#[utoipa::path(
    get,
    path = "/v1/players",
    tag = "players",
    params(ListParams),
    responses(
        (status = 200, description = "A page of players", body = PlayerPage),
        (status = 400, description = "`invalid_query` (unknown or malformed parameter) or `invalid_cursor`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthenticated` or `invalid_token`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden` (needs players:read)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed` (limit, sort, country or name out of range)", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "`internal`", body = Problem, content_type = "application/problem+json"),
    ),
    security(("alb" = []), ("bearer" = []))
)]
#[tracing::instrument(name = "handler.list_players", skip_all)]
pub async fn list_players(
    _principal: Principal,
    params: web::Query<ListParams>,
    store: web::Data<dyn PlayerStore>,
) -> Result<HttpResponse, ApiError> {
    let query = params.into_inner().into_query()?;
    let page = store.list(&query).await?;
    let next_cursor = page.next.map(|c| c.encode());
    // `PlayerPage`'s JSON, written by hand for speed (see `player_json`).
    Ok(HttpResponse::Ok()
        .content_type(header::ContentType::json())
        .body(player_json::page(&page.items, next_cursor.as_deref())))
}

/// Read one player.
#[utoipa::path(
    get,
    path = "/v1/players/{id}",
    tag = "players",
    params(
        ("id" = uuid::Uuid, Path, description = "Player id"),
        ("If-None-Match" = Option<String>, Header, description = "An ETag; 304 if it is current"),
    ),
    responses(
        (status = 200, description = "The player; `ETag` header set", body = Player, headers(("ETag" = String))),
        (status = 304, description = "Not modified (If-None-Match matched)"),
        (status = 401, description = "`unauthenticated` or `invalid_token`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden` (needs players:read)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found` (also for an id that is not a UUID)", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "`internal`", body = Problem, content_type = "application/problem+json"),
    ),
    security(("alb" = []), ("bearer" = []))
)]
#[tracing::instrument(name = "handler.get_player", skip_all)]
pub async fn get_player(
    req: HttpRequest,
    _principal: Principal,
    id: web::Path<String>,
    store: web::Data<dyn PlayerStore>,
) -> Result<HttpResponse, ApiError> {
    let id = extract::path_id(&id)?;
    let if_none_match = EntityTags::from_header(req.headers(), header::IF_NONE_MATCH)?;
    let player = store.get(id).await?;
    let etag = player.etag();
    if if_none_match.is_some_and(|tags| tags.matches_weak(&etag)) {
        return Ok(HttpResponse::NotModified()
            .insert_header((header::ETAG, etag))
            .finish());
    }
    Ok(with_etag(HttpResponse::Ok(), &player))
}

/// How often a PATCH without If-Match re-reads and re-applies after a concurrent change.
const PATCH_ATTEMPTS: usize = 3;

/// Change some fields of a player (JSON merge patch, RFC 7396).
#[utoipa::path(
    patch,
    path = "/v1/players/{id}",
    tag = "players",
    params(
        ("id" = uuid::Uuid, Path, description = "Player id"),
        ("If-Match" = Option<String>, Header, description = "The ETag last seen; 412 if the player changed since"),
    ),
    request_body(content = Object, content_type = "application/merge-patch+json",
        description = "A merge patch of `PlayerInput` members (`null` removes an optional number). `application/json` is accepted too. `id`, `version` and timestamps are not patchable."),
    responses(
        (status = 200, description = "The updated player; `ETag` header set", body = Player, headers(("ETag" = String))),
        (status = 400, description = "`malformed_json`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthenticated` or `invalid_token`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden` (needs players:write) or `csrf_rejected`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`club_number_taken`", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "`precondition_failed` (stale If-Match)", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "`payload_too_large`", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "`unsupported_media_type`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed`, with `errors` (including `read_only` and `unknown_field`)", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "`internal`", body = Problem, content_type = "application/problem+json"),
    ),
    security(("alb" = []), ("bearer" = []))
)]
#[tracing::instrument(name = "handler.update_player", skip_all)]
pub async fn update_player(
    req: HttpRequest,
    principal: Principal,
    id: web::Path<String>,
    payload: web::Payload,
    store: web::Data<dyn PlayerStore>,
) -> Result<HttpResponse, ApiError> {
    let id = extract::path_id(&id)?;
    let patch = extract::json_body(&req, payload, &[MERGE_PATCH_JSON, JSON]).await?;
    let Value::Object(members) = &patch else {
        return Err(ApiError::Validation(vec![FieldError::new(
            "",
            "not_an_object",
            "a player patch must be a JSON object",
        )]));
    };
    // Checked on the patch itself: a member set to null is removed by the merge, so an
    // unknown one would otherwise vanish unnoticed.
    let refused = PlayerInput::member_errors(members);
    if !refused.is_empty() {
        return Err(ApiError::Validation(refused));
    }
    let if_match = EntityTags::from_header(req.headers(), header::IF_MATCH)?;
    let ctx = audit_context(&req, &principal);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let current = store.get(id).await?;
        if if_match
            .as_ref()
            .is_some_and(|tags| !tags.matches_strong(&current.etag()))
        {
            return Err(ApiError::PreconditionFailed);
        }
        let original = serde_json::to_value(current.to_input()).map_err(anyhow::Error::from)?;
        let mut doc = original.clone();
        merge_patch::apply(&mut doc, &patch);
        let player = parse_player(&doc)?;
        // A patch that changes nothing (the same values once validated and normalised) gets the
        // player as it is: no new version, no audit record, the same ETag.
        if parse_player(&original).is_ok_and(|unchanged| unchanged == player) {
            return Ok(with_etag(HttpResponse::Ok(), &current));
        }
        match store.update(id, &player, Some(current.version), &ctx).await {
            Ok(updated) => {
                // The store replaced exactly `current` (its version matched).
                let changes = Changes::between(Some(&current), Some(&updated));
                log_audit(AuditAction::Update, id, &ctx, &changes);
                return Ok(with_etag(HttpResponse::Ok(), &updated));
            }
            // Changed between our read and write: with If-Match that is the client's stale
            // precondition; without, re-apply the patch to the new version.
            Err(StoreError::VersionMismatch) if if_match.is_none() && attempt < PATCH_ATTEMPTS => {
                continue;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Delete a player.
#[utoipa::path(
    delete,
    path = "/v1/players/{id}",
    tag = "players",
    params(
        ("id" = uuid::Uuid, Path, description = "Player id"),
        ("If-Match" = Option<String>, Header, description = "The ETag last seen; 412 if the player changed since"),
    ),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "`unauthenticated` or `invalid_token`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden` (needs players:delete) or `csrf_rejected`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "`precondition_failed` (stale If-Match)", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "`internal`", body = Problem, content_type = "application/problem+json"),
    ),
    security(("alb" = []), ("bearer" = []))
)]
#[tracing::instrument(name = "handler.delete_player", skip_all)]
pub async fn delete_player(
    req: HttpRequest,
    principal: Principal,
    id: web::Path<String>,
    store: web::Data<dyn PlayerStore>,
) -> Result<HttpResponse, ApiError> {
    let id = extract::path_id(&id)?;
    let expected_version = match EntityTags::from_header(req.headers(), header::IF_MATCH)? {
        None => None,
        Some(tags) => {
            let current = store.get(id).await?;
            if !tags.matches_strong(&current.etag()) {
                return Err(ApiError::PreconditionFailed);
            }
            Some(current.version)
        }
    };
    let ctx = audit_context(&req, &principal);
    let deleted = store.delete(id, expected_version, &ctx).await?;
    log_audit(
        AuditAction::Delete,
        id,
        &ctx,
        &Changes::between(Some(&deleted), None),
    );
    Ok(HttpResponse::NoContent().finish())
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::domain::{Actor, ActorKind, PlayerList};

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_hand_written_page_is_the_derived_json() {
        let created = chrono::Utc::now();
        let player = |name: &str, team: &str, numbers: (Option<i32>, Option<i32>)| Player {
            id: uuid::Uuid::now_v7(),
            name: name.into(),
            date_of_birth: chrono::NaiveDate::from_ymd_opt(1999, 1, 9).unwrap(),
            country: "ENG".into(),
            team: team.into(),
            position: Position::Midfielder,
            club_number: numbers.0,
            national_team_number: numbers.1,
            version: 12,
            created_at: created,
            updated_at: created + chrono::Duration::nanoseconds(1_500),
            created_by: "user:9f1c\"x".into(),
            updated_by: "service:reporting".into(),
        };
        let items = vec![
            player("Kylian Mbappé", "Real Madrid", (Some(10), None)),
            player(
                "Zoë \"Q\" O'Neil \\ tab\t\u{1}\u{7f}",
                "Team\n<b>&</b> 🏆",
                (None, Some(99)),
            ),
            player("", "", (None, None)),
        ];
        for (items, next_cursor) in [
            (items.clone(), Some("eyJrIjoiYSJ9".to_owned())),
            (items, None),
            (vec![], None),
        ] {
            let list: PlayerList = items.iter().map(Player::borrowed).collect();
            let ours = player_json::page(&list, next_cursor.as_deref());
            let derived = serde_json::to_vec(&PlayerPage { items, next_cursor }).unwrap();
            assert_eq!(
                String::from_utf8(ours).unwrap(),
                String::from_utf8(derived).unwrap()
            );
        }
    }

    #[test]
    fn the_audit_line_names_fields_but_carries_no_values() {
        let out = Captured::default();
        let writer = out.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_writer(move || writer.clone())
            .finish();
        let now = chrono::Utc::now();
        let before = Player {
            id: uuid::Uuid::now_v7(),
            name: "Secret Name".into(),
            date_of_birth: chrono::NaiveDate::from_ymd_opt(2000, 1, 2).unwrap(),
            country: "ENG".into(),
            team: "Old Team".into(),
            position: Position::Defender,
            club_number: Some(4),
            national_team_number: None,
            version: 1,
            created_at: now,
            updated_at: now,
            created_by: "user:x".into(),
            updated_by: "user:x".into(),
        };
        let mut after = before.clone();
        after.team = "New Team".into();
        after.club_number = Some(5);
        let ctx = AuditContext {
            actor: Actor {
                kind: ActorKind::Service,
                id: "client-1".into(),
            },
            request_id: "r-1".into(),
            trace_id: None,
            client_request_id: None,
        };
        tracing::subscriber::with_default(subscriber, || {
            log_audit(
                AuditAction::Update,
                before.id,
                &ctx,
                &Changes::between(Some(&before), Some(&after)),
            );
        });
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        let line: Value = serde_json::from_str(text.trim()).unwrap();
        let fields = &line["fields"];
        assert_eq!(fields["event"], "audit");
        assert_eq!(fields["action"], "update");
        assert_eq!(fields["player_id"], before.id.to_string());
        assert_eq!(fields["actor_kind"], "service");
        assert_eq!(fields["actor_id"], "client-1");
        assert_eq!(fields["fields"], "club_number,team");
        for value in ["Old Team", "New Team", "Secret Name"] {
            assert!(!text.contains(value), "{text}");
        }
    }
}
