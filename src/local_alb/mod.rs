//! A local stand-in for the AWS Application Load Balancer's OIDC login, for development.
//!
//! It runs on its own port in front of the API and plays every part the API trusts in
//! production, so the API runs with its NORMAL verification configured to trust it (there is no
//! bypass anywhere):
//! - a login page where a developer picks a dev user and groups, and a session cookie named like
//!   the ALB's (`AWSELBAuthSessionCookie-0`) — [`login`];
//! - a reverse proxy that strips client-sent `x-amzn-oidc-*` headers and adds ALB-format ones for
//!   logged-in sessions — [`proxy`], with tokens minted by [`signing`];
//! - the ALB public-key endpoint (`GET {key_endpoint}/{kid}`, PEM SPKI) — [`signing`];
//! - a Cognito-like issuer with a JWKS and a `client_credentials` token endpoint — [`issuer`];
//! - the `players-api token` command that fetches a bearer token from it — [`token_cmd`].
//!
//! Keys are generated at start and live only in memory; nothing here logs a token, cookie or
//! secret.
//!
//! Routes on the stand-in's port (everything else is proxied to the API):
//!
//! | path | what |
//! | --- | --- |
//! | `GET /` | who is logged in, links |
//! | `GET/POST /login` | the login page (dev users, optional group override) |
//! | `GET /local-logout` | the IdP logout page the API's `/logout` redirects to (public) |
//! | `GET /alb-keys/{kid}` | the ALB public key, PEM SPKI |
//! | `GET /issuer/.well-known/jwks.json` | the local issuer's JWKS |
//! | `POST /issuer/oauth2/token` | `client_credentials` grant |
//!
//! How the API trusts it — [`LocalAlb::api_env`] gives these, through the normal settings:
//!
//! | variable | value |
//! | --- | --- |
//! | `ALB_SIGNER_ARNS` | [`DEV_SIGNER_ARN`] |
//! | `ALB_KEY_ENDPOINT` | `{base}/alb-keys` |
//! | `ALB_ISSUER` / `BEARER_ISSUER` | `{base}/issuer` |
//! | `ALB_CLIENT_ID` | `local-browser` |
//! | `ALB_GROUPS_SOURCE` | `accesstoken` (groups travel in the access token, as with Cognito) |
//! | `BEARER_CLIENT_IDS` | `local-browser,local-service` |
//! | `AUTH_LOGOUT_URL` | `{base}/local-logout` |
//! | `AUTH_PUBLIC_ORIGINS` | `http://127.0.0.1:{port},http://localhost:{port}` |

pub mod issuer;
pub mod login;
pub mod proxy;
pub mod signing;
pub mod token_cmd;

use std::time::Duration;

use actix_web::{App, HttpServer, dev::ServerHandle, web};
use secrecy::SecretString;

pub use signing::{AlbSigner, UserClaims};
pub use token_cmd::TokenArgs;

/// The local ALB's port in development (the API itself listens on 8080).
pub const DEFAULT_PORT: u16 = 8081;
/// The dev signer ARN, in the shape of a real ALB ARN (`local-1` is no AWS region).
pub const DEV_SIGNER_ARN: &str = "arn:aws:elasticloadbalancing:local-1:000000000000:loadbalancer/app/players-local/0123456789abcdef";
/// The IdP app client the "ALB" logs browser users in with (the header's `client`).
pub const DEFAULT_BROWSER_CLIENT_ID: &str = "local-browser";
pub const DEFAULT_SERVICE_CLIENT_ID: &str = "local-service";
pub const DEFAULT_SERVICE_CLIENT_SECRET: &str = "local-secret";
/// Where the local issuer lives under the base URL (`{base}/issuer`).
pub const ISSUER_PATH: &str = "/issuer";
/// Where the ALB public keys are served (`{base}/alb-keys/{kid}`).
pub const KEY_ENDPOINT_PATH: &str = "/alb-keys";
/// The IdP logout page the API's `/logout` redirects to. It must not require login.
pub const LOGOUT_PATH: &str = "/local-logout";
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

/// The default dev users: one per default group of the contract.
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

#[derive(Clone, Debug)]
pub struct LocalAlbConfig {
    /// Port on 127.0.0.1; 0 picks a free one (tests).
    pub port: u16,
    /// The API's base URL, e.g. `http://127.0.0.1:8080`.
    pub upstream: String,
    pub users: Vec<DevUser>,
    pub clients: Vec<DevClient>,
    /// Groups offered as checkboxes on the login page, besides the users' own.
    pub extra_groups: Vec<String>,
    pub browser_client_id: String,
    pub signer_arn: String,
    /// Session cookie name without the shard suffix (`AWSELBAuthSessionCookie`).
    pub cookie_name: String,
    /// Where the login page sends the user when no other page was asked for.
    pub landing_path: String,
    /// Paths proxied without login and without identity headers (exact match).
    pub public_paths: Vec<String>,
    /// Also put `cognito:groups` into `x-amzn-oidc-data` (Cognito's userinfo does not).
    pub groups_in_userinfo: bool,
    /// Lifetime of each minted `x-amzn-oidc-data`.
    pub alb_token_ttl: Duration,
    /// How long a login lasts.
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
            users: default_users(),
            clients: default_clients(),
            extra_groups: Vec::new(),
            browser_client_id: DEFAULT_BROWSER_CLIENT_ID.to_owned(),
            signer_arn: DEV_SIGNER_ARN.to_owned(),
            cookie_name: "AWSELBAuthSessionCookie".to_owned(),
            landing_path: "/docs".to_owned(),
            public_paths: ["/health", "/ready", "/logout"].map(str::to_owned).to_vec(),
            groups_in_userinfo: false,
            alb_token_ttl: Duration::from_secs(120),
            session_ttl: Duration::from_secs(8 * 3600),
            max_body_bytes: 16 * 1024 * 1024,
            workers: 1,
        }
    }
}

/// Settings the handlers share (built once at start).
#[derive(Debug)]
pub(crate) struct Settings {
    pub port: u16,
    pub upstream: url::Url,
    pub users: Vec<DevUser>,
    pub group_choices: Vec<String>,
    pub browser_client_id: String,
    pub landing_path: String,
    pub public_paths: Vec<String>,
    pub groups_in_userinfo: bool,
    pub alb_token_ttl_secs: i64,
    pub max_body_bytes: usize,
}

/// A running local ALB. Everything the API needs to trust it comes from here; see
/// [`LocalAlb::api_env`].
pub struct LocalAlb {
    port: u16,
    base_url: String,
    signer: std::sync::Arc<AlbSigner>,
    issuer_url: String,
    browser_client_id: String,
    client_ids: Vec<String>,
    cookie_name: String,
    groups_in_userinfo: bool,
    handle: ServerHandle,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl std::fmt::Debug for LocalAlb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalAlb")
            .field("base_url", &self.base_url)
            .field("signer_arn", &self.signer.signer_arn())
            .field("issuer_url", &self.issuer_url)
            .finish_non_exhaustive()
    }
}

/// Binds 127.0.0.1:`cfg.port`, generates the keys and starts serving.
pub async fn start(cfg: LocalAlbConfig) -> anyhow::Result<LocalAlb> {
    use anyhow::Context;

    let upstream = url::Url::parse(&cfg.upstream).context("parsing the upstream API URL")?;
    anyhow::ensure!(
        matches!(upstream.scheme(), "http" | "https"),
        "the upstream URL must be http(s)"
    );
    anyhow::ensure!(
        !cfg.users.is_empty(),
        "the local ALB needs at least one dev user"
    );
    let listener = std::net::TcpListener::bind(("127.0.0.1", cfg.port))
        .with_context(|| format!("binding the local ALB to 127.0.0.1:{}", cfg.port))?;
    let port = listener
        .local_addr()
        .context("reading the bound address")?
        .port();
    let base_url = format!("http://127.0.0.1:{port}");
    let issuer_url = format!("{base_url}{ISSUER_PATH}");

    // The ALB's `iss` is the IdP's issuer: here the local issuer.
    let signer = std::sync::Arc::new(AlbSigner::generate(
        &cfg.signer_arn,
        &issuer_url,
        &cfg.browser_client_id,
    )?);
    let issuer = web::Data::new(issuer::Issuer::generate(
        issuer_url.clone(),
        cfg.clients.clone(),
    )?);
    let sessions = web::Data::new(login::Sessions::new(
        &cfg.cookie_name,
        cfg.session_ttl.as_secs() as i64,
    ));
    let client = web::Data::new(
        reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(120))
            .build()
            .context("building the proxy's HTTP client")?,
    );

    let mut group_choices: Vec<String> = Vec::new();
    for g in cfg
        .users
        .iter()
        .flat_map(|u| u.groups.iter())
        .chain(&cfg.extra_groups)
    {
        if !group_choices.contains(g) {
            group_choices.push(g.clone());
        }
    }
    let settings = web::Data::new(Settings {
        port,
        upstream,
        users: cfg.users.clone(),
        group_choices,
        browser_client_id: cfg.browser_client_id.clone(),
        landing_path: cfg.landing_path.clone(),
        public_paths: cfg.public_paths.clone(),
        groups_in_userinfo: cfg.groups_in_userinfo,
        alb_token_ttl_secs: cfg.alb_token_ttl.as_secs().max(1) as i64,
        max_body_bytes: cfg.max_body_bytes,
    });
    let signer_data = web::Data::from(signer.clone());
    let max_body = cfg.max_body_bytes;

    let server = HttpServer::new(move || {
        App::new()
            .app_data(web::PayloadConfig::new(max_body))
            .app_data(settings.clone())
            .app_data(signer_data.clone())
            .app_data(issuer.clone())
            .app_data(sessions.clone())
            .app_data(client.clone())
            .configure(configure)
    })
    .workers(cfg.workers.max(1))
    .disable_signals()
    .shutdown_timeout(5)
    .listen(listener)
    .context("listening on the local ALB socket")?
    .run();
    let handle = server.handle();
    let task = tokio::spawn(server);

    let mut client_ids = vec![cfg.browser_client_id.clone()];
    client_ids.extend(cfg.clients.iter().map(|c| c.client_id.clone()));
    tracing::info!(%base_url, upstream = %cfg.upstream, "local ALB started");
    Ok(LocalAlb {
        port,
        base_url,
        signer,
        issuer_url,
        browser_client_id: cfg.browser_client_id,
        client_ids,
        cookie_name: cfg.cookie_name,
        groups_in_userinfo: cfg.groups_in_userinfo,
        handle,
        task,
    })
}

/// The local ALB's own routes; everything else goes to the proxy.
fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(login::landing))
        .route(LOGIN_PATH, web::get().to(login::login_page))
        .route(LOGIN_PATH, web::post().to(login::login_submit))
        .route(LOGOUT_PATH, web::get().to(login::local_logout))
        .route(
            &format!("{KEY_ENDPOINT_PATH}/{{kid}}"),
            web::get().to(signing::public_key),
        )
        .route(
            &format!("{ISSUER_PATH}/.well-known/jwks.json"),
            web::get().to(issuer::jwks),
        )
        .route(
            &format!("{ISSUER_PATH}/oauth2/token"),
            web::post().to(issuer::token),
        )
        .default_service(web::to(proxy::forward));
}

impl LocalAlb {
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:<port>`: the URL to open in a browser.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    pub fn login_url(&self) -> String {
        format!("{}{LOGIN_PATH}", self.base_url)
    }

    /// The signer ARN to allow-list (`ALB_SIGNER_ARNS`).
    pub fn signer_arn(&self) -> &str {
        self.signer.signer_arn()
    }

    /// The `kid` of the current ALB signing key.
    pub fn alb_kid(&self) -> &str {
        self.signer.kid()
    }

    /// The ALB key endpoint (`ALB_KEY_ENDPOINT`): keys at `GET {endpoint}/{kid}`.
    pub fn key_endpoint(&self) -> String {
        format!("{}{KEY_ENDPOINT_PATH}", self.base_url)
    }

    /// The `iss` in `x-amzn-oidc-data` (`ALB_ISSUER`): the local issuer, as with Cognito.
    pub fn alb_issuer(&self) -> &str {
        &self.issuer_url
    }

    /// The `client` in `x-amzn-oidc-data` (`ALB_CLIENT_ID`).
    pub fn alb_client_id(&self) -> &str {
        &self.browser_client_id
    }

    /// The local issuer (`BEARER_ISSUER`).
    pub fn issuer_url(&self) -> &str {
        &self.issuer_url
    }

    pub fn jwks_url(&self) -> String {
        format!("{}/.well-known/jwks.json", self.issuer_url)
    }

    pub fn token_url(&self) -> String {
        format!("{}/oauth2/token", self.issuer_url)
    }

    /// Every client id whose tokens the API should accept (`BEARER_CLIENT_IDS`): the browser
    /// client (its access tokens arrive as `x-amzn-oidc-accesstoken`) and the service clients.
    pub fn client_ids(&self) -> &[String] {
        &self.client_ids
    }

    /// The IdP logout page (`AUTH_LOGOUT_URL`).
    pub fn logout_url(&self) -> String {
        format!("{}{LOGOUT_PATH}", self.base_url)
    }

    /// The session cookie name without shard suffix (`AUTH_SESSION_COOKIE_NAME`).
    pub fn cookie_name(&self) -> &str {
        &self.cookie_name
    }

    /// Origins a browser uses to reach the API through this stand-in (`AUTH_PUBLIC_ORIGINS`).
    pub fn public_origins(&self) -> Vec<String> {
        vec![
            self.base_url.clone(),
            format!("http://localhost:{}", self.port),
        ]
    }

    /// The API's identity configuration that trusts this stand-in, as the environment
    /// variables of the contract (`players-api serve` reads the same names).
    pub fn api_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("ALB_SIGNER_ARNS", self.signer_arn().to_owned()),
            ("ALB_ISSUER", self.alb_issuer().to_owned()),
            ("ALB_CLIENT_ID", self.alb_client_id().to_owned()),
            ("ALB_KEY_ENDPOINT", self.key_endpoint()),
            (
                "ALB_GROUPS_SOURCE",
                if self.groups_in_userinfo {
                    "both"
                } else {
                    "accesstoken"
                }
                .to_owned(),
            ),
            ("BEARER_ISSUER", self.issuer_url.clone()),
            ("BEARER_JWKS_URL", self.jwks_url()),
            ("BEARER_CLIENT_IDS", self.client_ids.join(",")),
            ("AUTH_LOGOUT_URL", self.logout_url()),
            ("AUTH_PUBLIC_ORIGINS", self.public_origins().join(",")),
            ("AUTH_SESSION_COOKIE_NAME", self.cookie_name.clone()),
        ]
    }

    /// What a developer needs to know, for printing at start-up (never a key or secret).
    pub fn banner(&self) -> String {
        format!(
            "local ALB: open {base}/ (log in at {login}, log out at {base}/logout)\n\
             service clients {clients}: TOKEN=$(players-api token --issuer {issuer} --scope players/read)\n\
             then: curl -H \"Authorization: Bearer $TOKEN\" {base}/v1/players",
            base = self.base_url,
            login = self.login_url(),
            clients = self.client_ids[1..].join(", "),
            issuer = self.issuer_url,
        )
    }

    /// Mints an `x-amzn-oidc-data` value with this stand-in's key (for tests of the API).
    pub fn mint_user_claims(&self, claims: &UserClaims, exp: i64) -> anyhow::Result<String> {
        self.signer.mint(claims, exp)
    }

    /// Stops accepting connections and waits for in-flight requests to finish.
    pub async fn stop(self) {
        self.handle.stop(true).await;
        let _ = self.task.await;
    }

    /// Serves until [`LocalAlb::stop`] is called through a clone of the handle, or the server
    /// fails.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.task.await??;
        Ok(())
    }

    /// A handle that can stop the server from elsewhere (e.g. a Ctrl-C handler).
    pub fn server_handle(&self) -> ServerHandle {
        self.handle.clone()
    }
}
