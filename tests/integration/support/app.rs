//! The application in-process: served on 127.0.0.1 port 0 with a test authenticator
//! (`x-test-role`), problem+json assertions, valid request bodies.

use std::{net::TcpListener, sync::Arc, time::Duration};

use actix_web::HttpRequest;
use players_api::{
    auth::{AuthError, Authenticator, Permission, PermissionSet, Principal, PrincipalKind},
    shutdown::ShutdownFlag,
    startup::{AppState, Application},
    store::PlayerStore,
};
use serde_json::{Value, json};

/// Test double for the identity layer: `x-test-role: admin | editor | viewer | nobody`.
/// It exists only in tests; the binary has no such path.
pub struct TestAuthenticator;

#[async_trait::async_trait(?Send)]
impl Authenticator for TestAuthenticator {
    async fn authenticate(&self, req: &HttpRequest) -> Result<Principal, AuthError> {
        let role = req
            .headers()
            .get("x-test-role")
            .and_then(|v| v.to_str().ok())
            .ok_or(AuthError::Missing)?;
        use Permission::*;
        let permissions: PermissionSet = match role {
            "admin" => PermissionSet::all(),
            "editor" => [PlayersRead, PlayersWrite, PlayersDelete]
                .into_iter()
                .collect(),
            "viewer" => [PlayersRead].into_iter().collect(),
            "nobody" => PermissionSet::empty(),
            _ => {
                return Err(AuthError::InvalidToken {
                    scheme: players_api::auth::Scheme::Bearer,
                    reason: "unknown test role".into(),
                });
            }
        };
        Ok(Principal {
            kind: PrincipalKind::User,
            subject: format!("test-{role}"),
            name: None,
            email: None,
            groups: vec![],
            scopes: vec![],
            permissions,
        })
    }
}

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub shutdown: ShutdownFlag,
}

impl TestApp {
    /// Serves `store` on 127.0.0.1, port 0, with the test authenticator.
    pub async fn spawn(store: Arc<dyn PlayerStore>) -> TestApp {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let shutdown = ShutdownFlag::default();
        let app = Application::build(
            listener,
            AppState {
                store,
                authenticator: Arc::new(TestAuthenticator),
                logout: Default::default(),
                ready_timeout: Duration::from_millis(500),
                shutdown: shutdown.clone(),
                http: Default::default(),
            },
        )
        .expect("build app");
        let base = format!("http://127.0.0.1:{}", app.port());
        tokio::spawn(app.run_until_stopped());
        TestApp {
            base,
            client: reqwest::Client::new(),
            shutdown,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A request as `role`.
    pub fn as_role(
        &self,
        role: &str,
        method: reqwest::Method,
        path: &str,
    ) -> reqwest::RequestBuilder {
        self.client
            .request(method, self.url(path))
            .header("x-test-role", role)
    }

    pub fn admin(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.as_role("admin", method, path)
    }

    /// Creates a player and returns its JSON.
    pub async fn create(&self, body: &Value) -> Value {
        let res = self
            .admin(reqwest::Method::POST, "/v1/players")
            .json(body)
            .send()
            .await
            .expect("POST");
        assert_eq!(res.status(), 201, "{:?}", res.text().await);
        res.json().await.expect("json")
    }
}

/// A valid player body; `n` makes names and club numbers distinct.
pub fn player_body(n: usize) -> Value {
    json!({
        "name": format!("Player {n:04}"),
        "date_of_birth": "1995-06-15",
        "country": "eng",
        "team": format!("Team {}", n / 90),
        "position": "midfielder",
        "club_number": (n % 90) + 1,
    })
}

/// Asserts a problem+json response and returns its body.
pub async fn assert_problem(res: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(res.status().as_u16(), status, "status");
    let content_type = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    assert_eq!(content_type, "application/problem+json");
    let header_id = res
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .expect("x-request-id header");
    let body: Value = res.json().await.expect("problem body");
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["status"], status, "{body}");
    assert_eq!(body["request_id"], header_id.as_str(), "{body}");
    assert_eq!(
        body["type"],
        format!("https://players-api.dev/problems/{code}").as_str()
    );
    assert!(
        body["title"].is_string() && body["detail"].is_string(),
        "{body}"
    );
    body
}

/// Sending a request in a test: the `send().await.unwrap()` and status-then-body chains, in one
/// call that says what was expected when it fails.
pub trait Exchange {
    /// The response; panics when the request could not be sent.
    async fn exchange(self) -> reqwest::Response;
    /// The JSON body of a response that must have `status`; panics with the body otherwise.
    async fn json_with(self, status: u16) -> Value;
}

impl Exchange for reqwest::RequestBuilder {
    async fn exchange(self) -> reqwest::Response {
        self.send().await.expect("the request could not be sent")
    }

    async fn json_with(self, status: u16) -> Value {
        let res = self.exchange().await;
        let got = res.status().as_u16();
        let text = res.text().await.expect("response body");
        assert_eq!(got, status, "unexpected status; body: {text}");
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
    }
}
