//! `GET /v1/me`: who the caller is, as the server sees it (never the token).

use actix_web::{HttpResponse, get, web};

use crate::auth::Principal;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(me);
}

/// Kind, subject, name/email, groups, scopes and the derived permissions. Any authenticated
/// caller may ask, including one without permissions (that is when it is most useful).
#[get("/v1/me")]
async fn me(principal: Principal) -> HttpResponse {
    HttpResponse::Ok().json(&principal)
}
