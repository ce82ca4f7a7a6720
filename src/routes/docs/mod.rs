//! The OpenAPI 3.1 document, generated from the handlers' annotations, and the interactive
//! docs (Swagger UI, its assets vendored into the binary: nothing is fetched at build time
//! or from a CDN at run time).

mod contract;

use std::sync::OnceLock;

use actix_web::{HttpResponse, web};
use serde_json::Value;
use utoipa::{
    Modify, OpenApi,
    openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme},
};
use utoipa_swagger_ui::SwaggerUi;

use super::{admin, app, audit, health, logout, me, players};
use crate::{
    domain::{ActorKind, FieldError, Player, PlayerInput, Position},
    error::Problem,
    store::{AuditAction, AuditRecord},
};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "players-api",
        description = "Players of football clubs: create, read, list, update, delete. \
            Browser users authenticate through the ALB (`x-amzn-oidc-data`), services with a \
            client-credentials bearer token. Errors are RFC 9457 problem documents.",
    ),
    paths(
        players::create_player,
        players::list_players,
        players::get_player,
        players::update_player,
        players::delete_player,
        app::countries,
        health::health,
        health::ready,
        openapi_json,
        me::me,
        admin::routes,
        audit::list_audit,
        logout::logout,
    ),
    components(schemas(
        Player,
        PlayerInput,
        Position,
        Problem,
        FieldError,
        players::PlayerPage,
        app::CountryEntry,
        me::Me,
        audit::AuditPageBody,
        AuditRecord,
        ActorKind,
        AuditAction,
    )),
    modifiers(&SecuritySchemes),
    tags(
        (name = "players", description = "Player management"),
        (name = "operations", description = "Health, readiness and this document"),
        (name = "identity", description = "Who am I, the route table, logout"),
        (name = "audit", description = "The audit trail of player changes (admin)"),
    )
)]
pub struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "alb",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "x-amzn-oidc-data",
                "ES256 JWT signed by the AWS Application Load Balancer after its OIDC login; \
                 set by the ALB, never by clients.",
            ))),
        );
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "OAuth 2.0 client-credentials access token from the identity provider",
                    ))
                    .build(),
            ),
        );
    }
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/openapi.json", web::get().to(openapi_json))
        .service(
            SwaggerUi::new("/docs/{_:.*}")
                .config(utoipa_swagger_ui::Config::from("/openapi.json").try_it_out_enabled(true)),
        )
        .route(
            "/docs",
            web::get().to(|| async {
                HttpResponse::PermanentRedirect()
                    .insert_header(("location", "/docs/"))
                    .finish()
            }),
        );
}

/// The served document: the annotations' document with what they cannot say added
/// (`contract`). Built once.
pub fn document() -> &'static Value {
    static DOCUMENT: OnceLock<Value> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        let mut doc = serde_json::to_value(ApiDoc::openapi()).expect("the document serialises");
        contract::apply(&mut doc);
        doc
    })
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json")))]
pub async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok().json(document())
}
