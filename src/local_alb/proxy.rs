//! The reverse proxy: what the ALB does between the browser and the API.
//!
//! - `Authorization: Bearer …` requests pass straight through (the ALB's http-header rule for
//!   service clients), with no identity headers;
//! - public paths (`/health`, `/logout`, …) pass through without login and without identity;
//! - everything else needs a session; without one the `OnUnauthenticatedRequest` setting decides:
//!   `authenticate` starts the IdP login ([`super::oidc`]), `deny` answers 401, `allow` forwards
//!   without identity. With a session, `x-amzn-oidc-data` (ES256 over the IdP's userinfo
//!   response, minted per request with a short expiry), `x-amzn-oidc-identity` (`sub`) and
//!   `x-amzn-oidc-accesstoken` (the IdP's access token, as issued) are added.
//!
//! Client-sent `x-amzn-oidc-*` headers are always dropped first: like the real ALB, only this
//! proxy decides what they contain.

use std::net::IpAddr;

use actix_web::{
    HttpRequest, HttpResponse,
    http::{StatusCode, header},
    web,
};

use super::{
    Settings,
    login::now,
    oidc::{OnUnauthenticated, Rp},
    session::CookieSealer,
    signing::{AlbSigner, random_hex},
};

/// Hop-by-hop headers (RFC 9110 §7.6.1) never cross a proxy; `host` is rewritten by nobody but
/// kept, as the ALB keeps it.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

const OIDC_PREFIX: &str = "x-amzn-oidc-";
pub const OIDC_DATA: &str = "x-amzn-oidc-data";
pub const OIDC_IDENTITY: &str = "x-amzn-oidc-identity";
pub const OIDC_ACCESS_TOKEN: &str = "x-amzn-oidc-accesstoken";
pub const TRACE_ID: &str = "x-amzn-trace-id";

/// What the proxy adds for a logged-in session.
struct Identity {
    data: String,
    sub: String,
    access: String,
}

fn is_bearer(req: &HttpRequest) -> bool {
    req.headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.as_bytes().get(..7))
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case(b"bearer "))
}

/// `Root=1-<8 hex epoch seconds>-<24 hex random>`: the X-Ray form the ALB adds.
fn new_trace_id() -> anyhow::Result<String> {
    Ok(format!("Root=1-{:08x}-{}", now(), random_hex(12)?))
}

fn bad_gateway(msg: &'static str) -> HttpResponse {
    HttpResponse::BadGateway()
        .insert_header((header::CONTENT_TYPE, "text/plain; charset=utf-8"))
        .body(msg)
}

/// Every request that is not one of the local ALB's own pages.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn forward(
    req: HttpRequest,
    body: web::Bytes,
    settings: web::Data<Settings>,
    sealer: web::Data<CookieSealer>,
    signer: web::Data<AlbSigner>,
    rp: web::Data<Rp>,
    client: web::Data<reqwest::Client>,
) -> HttpResponse {
    let public = settings.public_paths.iter().any(|p| p == req.path());
    let now = now();
    let session = if is_bearer(&req) || public {
        None
    } else {
        match sealer.session(&req, &settings.cookie_name, now) {
            Some(session) => Some(session),
            None => match settings.on_unauthenticated {
                OnUnauthenticated::Authenticate => {
                    let target = req.uri().path_and_query().map_or("/", |pq| pq.as_str());
                    return rp.start_login(&req, &settings, &sealer, target);
                }
                OnUnauthenticated::Deny => {
                    return HttpResponse::Unauthorized()
                        .insert_header((header::CONTENT_TYPE, "text/plain; charset=utf-8"))
                        .body("401 Authorization Required\n");
                }
                OnUnauthenticated::Allow => None,
            },
        }
    };
    let identity = match session {
        None => None,
        Some(s) => match signer.mint_userinfo(&s.userinfo, now + settings.alb_token_ttl_secs) {
            Ok(data) => Some(Identity {
                data,
                sub: s.sub,
                access: s.access_token,
            }),
            Err(e) => {
                tracing::error!(error = ?e, "local ALB: minting x-amzn-oidc-data failed");
                return HttpResponse::InternalServerError().finish();
            }
        },
    };

    let headers = match upstream_headers(&req, &settings, identity.as_ref()) {
        Ok(h) => h,
        Err(e) => {
            tracing::error!(error = ?e, "local ALB: building upstream headers failed");
            return HttpResponse::InternalServerError().finish();
        }
    };
    let path_and_query = req.uri().path_and_query().map_or("/", |pq| pq.as_str());
    let url = format!(
        "{}{}",
        settings.upstream.as_str().trim_end_matches('/'),
        path_and_query
    );
    let Ok(method) = reqwest::Method::from_bytes(req.method().as_str().as_bytes()) else {
        return HttpResponse::MethodNotAllowed().finish();
    };
    let mut upstream_req = client.request(method, &url).headers(headers);
    if !body.is_empty() {
        upstream_req = upstream_req.body(body);
    }
    let upstream_resp = match upstream_req.send().await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e.without_url(), "local ALB: upstream request failed");
            return bad_gateway("local ALB: the API is not reachable\n");
        }
    };
    relay(upstream_resp, settings.max_body_bytes).await
}

/// The request headers for the API: the client's minus hop-by-hop, minus any `x-amzn-oidc-*`,
/// plus what the ALB adds.
fn upstream_headers(
    req: &HttpRequest,
    settings: &Settings,
    identity: Option<&Identity>,
) -> anyhow::Result<reqwest::header::HeaderMap> {
    use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

    let connection_listed: Vec<String> = req
        .headers()
        .get_all(header::CONNECTION)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .collect();
    let mut out = HeaderMap::new();
    for (name, value) in req.headers() {
        let n = name.as_str();
        if HOP_BY_HOP.contains(&n)
            || connection_listed.iter().any(|c| c == n)
            || n.starts_with(OIDC_PREFIX)
            || n == "content-length"
            || n == "x-forwarded-proto"
            || n == "x-forwarded-port"
            || n == "x-forwarded-for"
            || n == TRACE_ID
        {
            continue;
        }
        out.append(
            HeaderName::from_bytes(n.as_bytes())?,
            HeaderValue::from_bytes(value.as_bytes())?,
        );
    }

    // Like the ALB: append the peer to an existing X-Forwarded-For.
    let peer = req
        .peer_addr()
        .map_or(IpAddr::from([127, 0, 0, 1]), |a| a.ip());
    let xff = match req
        .headers()
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
    {
        Some(prior) if !prior.trim().is_empty() => format!("{prior}, {peer}"),
        _ => peer.to_string(),
    };
    out.insert("x-forwarded-for", HeaderValue::from_str(&xff)?);
    out.insert("x-forwarded-proto", HeaderValue::from_static("http"));
    out.insert("x-forwarded-port", HeaderValue::from(settings.port));

    // Keep a well-formed incoming trace header (the ALB keeps the Root), otherwise start one.
    let trace = req
        .headers()
        .get(TRACE_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.starts_with("Root=1-") && v.len() <= 256)
        .map(str::to_owned);
    let trace = match trace {
        Some(t) => t,
        None => new_trace_id()?,
    };
    out.insert(TRACE_ID, HeaderValue::from_str(&trace)?);

    if let Some(id) = identity {
        out.insert(OIDC_DATA, HeaderValue::from_str(&id.data)?);
        out.insert(OIDC_IDENTITY, HeaderValue::from_str(&id.sub)?);
        out.insert(OIDC_ACCESS_TOKEN, HeaderValue::from_str(&id.access)?);
    }
    Ok(out)
}

/// Copies the API's response back, minus hop-by-hop headers, buffering at most `cap` bytes.
async fn relay(mut resp: reqwest::Response, cap: usize) -> HttpResponse {
    use actix_web::http::header::{HeaderName, HeaderValue};

    let Ok(status) = StatusCode::from_u16(resp.status().as_u16()) else {
        return bad_gateway("local ALB: invalid status from the API\n");
    };
    let mut builder = HttpResponse::build(status);
    for (name, value) in resp.headers() {
        let n = name.as_str();
        if HOP_BY_HOP.contains(&n) || n == "content-length" {
            continue;
        }
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(n.as_bytes()),
            HeaderValue::from_bytes(value.as_bytes()),
        ) {
            builder.append_header((name, value));
        }
    }
    let mut body = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > cap {
                    return bad_gateway("local ALB: response from the API too large\n");
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            Err(e) => {
                tracing::warn!(error = %e.without_url(), "local ALB: reading the API's response failed");
                return bad_gateway("local ALB: the API's response broke off\n");
            }
        }
    }
    builder.body(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_id_has_the_xray_form() {
        let t = new_trace_id().unwrap();
        let rest = t.strip_prefix("Root=1-").unwrap();
        let (epoch, random) = rest.split_once('-').unwrap();
        assert_eq!(epoch.len(), 8);
        assert_eq!(random.len(), 24);
        assert!(
            epoch
                .chars()
                .chain(random.chars())
                .all(|c| c.is_ascii_hexdigit())
        );
        assert!(!t.contains("Self="));
    }

    #[test]
    fn bearer_detection_is_case_insensitive_on_the_scheme() {
        let req = actix_web::test::TestRequest::default()
            .insert_header((header::AUTHORIZATION, "bearer abc"))
            .to_http_request();
        assert!(is_bearer(&req));
        let req = actix_web::test::TestRequest::default()
            .insert_header((header::AUTHORIZATION, "Basic abc"))
            .to_http_request();
        assert!(!is_bearer(&req));
        assert!(!is_bearer(
            &actix_web::test::TestRequest::default().to_http_request()
        ));
    }
}
