//! What the local ALB is configured with: its paths and built-in identities (dev users and
//! service clients), an external provider, and `LocalAlbConfig` with its defaults.

use std::time::Duration;

use secrecy::SecretString;

use super::OnUnauthenticated;

/// The local ALB's port in development (the API itself listens on 8080).
pub const DEFAULT_PORT: u16 = 8081;
/// The dev signer ARN, in the shape of a real ALB ARN (`local-1` is no AWS region).
pub const DEV_SIGNER_ARN: &str = "arn:aws:elasticloadbalancing:local-1:000000000000:loadbalancer/app/players-local/0123456789abcdef";
/// The built-in provider's app client the "ALB" logs browser users in with (the header's
/// `client`).
pub const DEFAULT_BROWSER_CLIENT_ID: &str = "local-browser";
pub const DEFAULT_SERVICE_CLIENT_ID: &str = "local-service";
pub const DEFAULT_SERVICE_CLIENT_SECRET: &str = "local-secret";
/// The scope the built-in provider is asked for: the one `service.yaml` gives the Cognito action.
pub const BUILT_IN_SCOPE: &str = "openid email";
/// The ALB action's default scope.
pub const DEFAULT_SCOPE: &str = "openid";
/// Where the built-in provider lives under the base URL (`{base}/issuer`).
pub const ISSUER_PATH: &str = "/issuer";
/// Where the ALB public keys are served (`{base}/alb-keys/{kid}`).
pub const KEY_ENDPOINT_PATH: &str = "/alb-keys";
/// The callback the IdP sends the browser to (register `http://localhost:8081/oauth2/idpresponse`).
pub const CALLBACK_PATH: &str = "/oauth2/idpresponse";
/// Where the IdP's logout returns to. It must not require login.
pub const LOGGED_OUT_PATH: &str = "/logged-out";
pub const LOGIN_PATH: &str = "/login";

/// A user one can log in as on the local login page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DevUser {
    pub username: String,
    /// Stable, so `created_by` stays readable across restarts.
    pub sub: String,
    pub email: String,
    pub name: String,
    /// The user's default groups (the login page can override them).
    pub groups: Vec<String>,
}

impl DevUser {
    pub fn new(username: &str, sub: &str, name: &str, groups: &[&str]) -> Self {
        DevUser {
            username: username.to_owned(),
            sub: sub.to_owned(),
            email: format!("{username}@players.local"),
            name: name.to_owned(),
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        }
    }
}

/// A service client of the local issuer (client-credentials grant).
#[derive(Clone, Debug)]
pub struct DevClient {
    pub client_id: String,
    pub secret: SecretString,
    /// The scopes this client may request.
    pub scopes: Vec<String>,
}

/// The default dev users: one per default group of the permission policy.
pub fn default_users() -> Vec<DevUser> {
    vec![
        DevUser::new(
            "admin",
            "a0000000-0000-4000-8000-000000000001",
            "Ada Admin",
            &["players-admin"],
        ),
        DevUser::new(
            "editor",
            "a0000000-0000-4000-8000-000000000002",
            "Eddie Editor",
            &["players-editor"],
        ),
        DevUser::new(
            "viewer",
            "a0000000-0000-4000-8000-000000000003",
            "Vera Viewer",
            &["players-viewer"],
        ),
    ]
}

/// The default service client: `local-service` / `local-secret`, allowed every players scope.
pub fn default_clients() -> Vec<DevClient> {
    vec![DevClient {
        client_id: DEFAULT_SERVICE_CLIENT_ID.to_owned(),
        secret: SecretString::from(DEFAULT_SERVICE_CLIENT_SECRET),
        scopes: [
            "players/read",
            "players/write",
            "players/delete",
            "players/admin",
        ]
        .into_iter()
        .map(str::to_owned)
        .collect(),
    }]
}

/// An OpenID Connect provider to log browser users in with, instead of the built-in one: the
/// knobs of the ALB's `authenticate-oidc` action.
#[derive(Clone, Debug)]
pub struct ExternalIdp {
    /// The issuer; its endpoints come from `{issuer}/.well-known/openid-configuration`.
    pub issuer: String,
    pub client_id: String,
    pub client_secret: SecretString,
    /// Where the API's `/logout` sends the browser (Cognito:
    /// `https://<domain>/logout?client_id=…&logout_uri=…`); default: the discovery document's
    /// `end_session_endpoint` with `client_id` and `post_logout_redirect_uri={base}/logged-out`.
    pub logout_url: Option<String>,
}

#[derive(Clone, Debug)]
pub struct LocalAlbConfig {
    /// Port on 127.0.0.1; 0 picks a free one (tests).
    pub port: u16,
    /// The API's base URL, e.g. `http://127.0.0.1:8080`.
    pub upstream: String,
    /// `None`: the built-in provider with the users and clients below.
    pub idp: Option<ExternalIdp>,
    /// The `scope` of the authorisation request; `None`: [`BUILT_IN_SCOPE`] for the built-in
    /// provider, [`DEFAULT_SCOPE`] for another.
    pub scope: Option<String>,
    /// Extra authorisation-request parameters (`AuthenticationRequestExtraParams`).
    pub extra_params: Vec<(String, String)>,
    pub on_unauthenticated: OnUnauthenticated,
    pub users: Vec<DevUser>,
    pub clients: Vec<DevClient>,
    /// Groups offered as checkboxes on the login page, besides the users' own.
    pub extra_groups: Vec<String>,
    pub browser_client_id: String,
    pub signer_arn: String,
    /// Session cookie name without the shard suffix (`AWSELBAuthSessionCookie`).
    pub cookie_name: String,
    /// Where the login goes when no other page was asked for.
    pub landing_path: String,
    /// Paths proxied without login and without identity headers (exact match).
    pub public_paths: Vec<String>,
    /// Lifetime of each minted `x-amzn-oidc-data`.
    pub alb_token_ttl: Duration,
    /// How long a login lasts at most (`SessionTimeout`); it also ends when the access token
    /// it forwards expires.
    pub session_ttl: Duration,
    /// Request and response bodies above this are refused (413 / 502).
    pub max_body_bytes: usize,
    pub workers: usize,
}

impl Default for LocalAlbConfig {
    fn default() -> Self {
        LocalAlbConfig {
            port: DEFAULT_PORT,
            upstream: "http://127.0.0.1:8080".to_owned(),
            idp: None,
            scope: None,
            extra_params: Vec::new(),
            on_unauthenticated: OnUnauthenticated::Authenticate,
            users: default_users(),
            clients: default_clients(),
            extra_groups: Vec::new(),
            browser_client_id: DEFAULT_BROWSER_CLIENT_ID.to_owned(),
            signer_arn: DEV_SIGNER_ARN.to_owned(),
            cookie_name: "AWSELBAuthSessionCookie".to_owned(),
            landing_path: "/".to_owned(),
            public_paths: ["/health", "/ready", "/logout"].map(str::to_owned).to_vec(),
            alb_token_ttl: Duration::from_secs(120),
            session_ttl: Duration::from_secs(8 * 3600),
            max_body_bytes: 16 * 1024 * 1024,
            workers: 1,
        }
    }
}
