//! `GET /v1/admin/routes`: every route with its method and required permission, generated
//! from `crate::routes::ROUTES`, the table the `Principal` extractor enforces.

use actix_web::{HttpResponse, get, web};

use crate::auth::Principal;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(routes);
}

/// Every route with its method and required permission (`null`: public, or any
/// authenticated caller when `public` is false). Requires `admin`.
#[utoipa::path(
    get,
    path = "/v1/admin/routes",
    tag = "identity",
    responses(
        (status = 200, description = "`[{method, path, permission, public}]`, the table the server enforces"),
        (status = 401, description = "`unauthenticated` or `invalid_token`", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden` (needs admin)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 500, description = "`internal`", body = crate::error::Problem, content_type = "application/problem+json"),
    ),
    security(("alb" = []), ("bearer" = []))
)]
#[get("/v1/admin/routes")]
pub async fn routes(_admin: Principal) -> HttpResponse {
    HttpResponse::Ok().json(super::ROUTES)
}
