//! Cross-site request forgery: the ALB session is a cookie, so a browser sends it along with
//! any request another site makes it send. An unsafe request authenticated by the ALB is
//! served only when it is same-origin: its `Origin` is one of `AUTH_PUBLIC_ORIGINS`, or it
//! has no `Origin` and says `Sec-Fetch-Site: same-origin`. Bearer requests are exempt (no
//! ambient credential).

use actix_web::{HttpRequest, http::Method};

use super::AuthError;

/// Normalised origin (`scheme://host[:port]`, lower case, no trailing slash), or `None`.
pub fn normalise_origin(o: &str) -> Option<String> {
    let url = url::Url::parse(o.trim()).ok()?;
    if !matches!(url.scheme(), "http" | "https")
        || url.host_str().is_none()
        || url.path() != "/" && !url.path().is_empty()
    {
        return None;
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return None;
    }
    Some(url.origin().ascii_serialization())
}

/// `Ok` for a safe method or a same-origin request; otherwise `csrf_rejected` with the reason.
/// `public_origins` are normalised.
pub fn check_same_origin(req: &HttpRequest, public_origins: &[String]) -> Result<(), AuthError> {
    if matches!(
        *req.method(),
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    ) {
        return Ok(());
    }
    let headers = req.headers();
    if let Some(origin) = headers.get("origin") {
        let ok = origin
            .to_str()
            .ok()
            .and_then(normalise_origin)
            .is_some_and(|o| public_origins.contains(&o));
        return if ok {
            Ok(())
        } else {
            Err(AuthError::CsrfRejected {
                reason: "origin_not_allowed".into(),
            })
        };
    }
    match headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        Some("same-origin") => Ok(()),
        Some(_) => Err(AuthError::CsrfRejected {
            reason: "cross_site".into(),
        }),
        None => Err(AuthError::CsrfRejected {
            reason: "no_origin".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_normalised() {
        assert_eq!(
            normalise_origin("https://Players.Example.com/").as_deref(),
            Some("https://players.example.com")
        );
        assert_eq!(
            normalise_origin("http://localhost:8081").as_deref(),
            Some("http://localhost:8081")
        );
        assert_eq!(normalise_origin("https://x.com/path"), None);
        assert_eq!(normalise_origin("null"), None);
    }
}
