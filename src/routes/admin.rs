//! `GET /v1/admin/routes`: every route with its method and required permission, generated
//! from `crate::routes::ROUTES`, the table the `Principal` extractor enforces.

use actix_web::{HttpResponse, get, web};

use crate::auth::Principal;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(routes);
}

#[get("/v1/admin/routes")]
async fn routes(_admin: Principal) -> HttpResponse {
    HttpResponse::Ok().json(super::ROUTES)
}
