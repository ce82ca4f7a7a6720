//! Test support for the `authenticate-oidc` flow: a "browser" (HTTP client with a cookie jar
//! that does not follow redirects by itself, so every hop can be looked at), a small HTML form
//! reader, and logins at the built-in provider and at the provider's own login page.
#![allow(dead_code)]

use std::sync::Arc;

use reqwest::{StatusCode, cookie::CookieStore, header};

pub struct Browser {
    pub http: reqwest::Client,
    pub jar: Arc<reqwest::cookie::Jar>,
}

/// `application/x-www-form-urlencoded` of `pairs`.
pub fn form_body<K: AsRef<str>, V: AsRef<str>>(pairs: &[(K, V)]) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k.as_ref(), v.as_ref());
    }
    s.finish()
}

/// One response, read.
#[derive(Clone, Debug)]
pub struct Page {
    pub url: url::Url,
    pub status: StatusCode,
    pub location: Option<url::Url>,
    pub set_cookies: Vec<String>,
    pub body: String,
}

impl Page {
    pub fn is_redirect(&self) -> bool {
        self.status.is_redirection()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("{} is not JSON ({e}): {}", self.url, self.body))
    }

    /// The `Set-Cookie` for `name`, if any.
    pub fn set_cookie(&self, name: &str) -> Option<&str> {
        self.set_cookies
            .iter()
            .find(|c| c.starts_with(&format!("{name}=")))
            .map(String::as_str)
    }
}

impl Default for Browser {
    fn default() -> Self {
        Self::new()
    }
}

impl Browser {
    pub fn new() -> Browser {
        let jar = Arc::new(reqwest::cookie::Jar::default());
        let http = reqwest::Client::builder()
            .no_proxy()
            .cookie_provider(jar.clone())
            .redirect(reqwest::redirect::Policy::none())
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .unwrap();
        Browser { http, jar }
    }

    /// The `Cookie` header this browser sends to `url`.
    pub fn cookie_header(&self, url: &str) -> String {
        self.jar
            .cookies(&url.parse().unwrap())
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    }

    pub async fn read(&self, url: url::Url, resp: reqwest::Response) -> Page {
        let status = resp.status();
        let location = resp
            .headers()
            .get(header::LOCATION)
            .map(|l| url.join(l.to_str().unwrap()).unwrap());
        let set_cookies = resp
            .headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        let body = resp.text().await.unwrap_or_default();
        Page {
            url,
            status,
            location,
            set_cookies,
            body,
        }
    }

    pub async fn get(&self, url: &str) -> Page {
        let url: url::Url = url.parse().unwrap();
        let resp = self
            .http
            .get(url.clone())
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {url}: {e}"));
        self.read(url, resp).await
    }

    pub async fn post_form(&self, url: &str, form: &[(String, String)], origin: &str) -> Page {
        let url: url::Url = url.parse().unwrap();
        let resp = self
            .http
            .post(url.clone())
            .header(header::ORIGIN, origin)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(form_body(form))
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {url}: {e}"));
        self.read(url, resp).await
    }

    /// Follows redirects from `page` until a page that is not a redirect; returns every hop.
    pub async fn follow(&self, page: Page) -> Vec<Page> {
        let mut hops = vec![page];
        for _ in 0..20 {
            let last = hops.last().unwrap();
            let Some(next) = last.location.clone().filter(|_| last.is_redirect()) else {
                return hops;
            };
            hops.push(self.get(next.as_str()).await);
        }
        panic!(
            "redirect loop: {:?}",
            hops.iter().map(|p| p.url.as_str()).collect::<Vec<_>>()
        );
    }

    /// GET `url` and follow the redirects.
    pub async fn visit(&self, url: &str) -> Vec<Page> {
        let first = self.get(url).await;
        self.follow(first).await
    }

    /// Submits the form of `page` (its first `<form>`), with `fields` set over the form's own
    /// inputs; follows the redirects.
    pub async fn submit(&self, page: &Page, fields: &[(&str, &str)]) -> Vec<Page> {
        let form = Form::parse(&page.body)
            .unwrap_or_else(|| panic!("no form on {}: {}", page.url, page.body));
        let action = page.url.join(&form.action).unwrap();
        let mut values = form.inputs.clone();
        for (k, v) in fields {
            values.retain(|(name, _)| name != k);
            values.push(((*k).to_owned(), (*v).to_owned()));
        }
        let origin = page.url.origin().ascii_serialization();
        let first = self.post_form(action.as_str(), &values, &origin).await;
        self.follow(first).await
    }
}

/// The first `<form>` of a page: its action and every named `<input>` of the page with its
/// value (inputs outside the form but tied to it with `form=` are included; checkboxes and
/// radios only when checked, except that none of them is included here: tests set those).
#[derive(Clone, Debug)]
pub struct Form {
    pub action: String,
    pub inputs: Vec<(String, String)>,
}

fn attr(tag: &str, name: &str) -> Option<String> {
    let needle = format!(" {name}=\"");
    let start = tag.find(&needle)? + needle.len();
    let end = tag[start..].find('"')? + start;
    Some(unescape(&tag[start..end]))
}

pub fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

impl Form {
    pub fn parse(html: &str) -> Option<Form> {
        let start = html.find("<form")?;
        let tag_end = html[start..].find('>')? + start;
        let action = attr(&html[start..=tag_end], "action").unwrap_or_default();
        let mut inputs = Vec::new();
        let mut rest = html;
        while let Some(i) = rest.find("<input") {
            let end = rest[i..].find('>').map_or(rest.len(), |e| e + i);
            let tag = &rest[i..=end.min(rest.len() - 1)];
            let kind = attr(tag, "type").unwrap_or_else(|| "text".into());
            if let Some(name) = attr(tag, "name")
                && kind != "checkbox"
                && kind != "radio"
            {
                inputs.push((name, attr(tag, "value").unwrap_or_default()));
            }
            rest = &rest[end.min(rest.len())..];
        }
        Some(Form { action, inputs })
    }
}

/// Logs a browser in at the built-in provider of a local ALB, starting at `start` (a page of
/// the ALB). `form` is the login form's user part (`user=admin&override_groups=1&group=…`).
/// Returns every hop, from the first redirect to the page landed on.
pub async fn login_built_in(browser: &Browser, start: &str, form: &str) -> Vec<Page> {
    let mut hops = browser.visit(start).await;
    let login_page = hops.pop().unwrap();
    assert_eq!(
        login_page.status,
        StatusCode::OK,
        "{}: {}",
        login_page.url,
        login_page.body
    );
    assert!(
        login_page.url.path().ends_with("/oauth2/authorize"),
        "{}",
        login_page.url
    );
    let parsed = Form::parse(&login_page.body).expect("the login form");
    let mut values = parsed.inputs.clone();
    values.extend(
        url::form_urlencoded::parse(form.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())),
    );
    let action = login_page.url.join(&parsed.action).unwrap();
    let origin = login_page.url.origin().ascii_serialization();
    let posted = browser.post_form(action.as_str(), &values, &origin).await;
    hops.push(login_page);
    hops.extend(browser.follow(posted).await);
    hops
}
