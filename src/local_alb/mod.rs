//! A local stand-in for the AWS Application Load Balancer's OIDC login, for development.
//! (This file is about 530 lines: `start` wires every part below in one place, and `LocalAlb`
//! answers what the API and the tests need to know about the running stand-in.)
//!
//! It runs on its own port in front of the API and plays every part the API trusts in
//! production, so the API runs with its NORMAL verification configured to trust it (there is no
//! bypass anywhere):
//! - the listener's `authenticate-oidc` action, against any OpenID Connect provider: the redirect
//!   with `state` and `nonce` bound to the browser, the callback at `/oauth2/idpresponse`, the code
//!   exchange with the client secret, the userinfo call, the session in `AWSELBAuthSessionCookie-N`
//!   shards — [`oidc`], [`session`];
//! - a reverse proxy that strips client-sent `x-amzn-oidc-*` headers and adds ALB-format ones for
//!   logged-in sessions — [`proxy`], with `x-amzn-oidc-data` signed by [`signing`];
//! - the ALB public-key endpoint (`GET {key_endpoint}/{kid}`, PEM SPKI) — [`signing`];
//! - unless pointed at another provider, a built-in Cognito-shaped OpenID Connect provider with a
//!   login page for dev users and a `client_credentials` token endpoint — [`issuer`];
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
//! | `GET /login?next=…` | starts the login towards `next` |
//! | `GET /oauth2/idpresponse` | the callback of the authorisation-code flow |
//! | `GET /logged-out` | where the IdP's logout returns to (public) |
//! | `GET /alb-keys/{kid}` | the ALB public key, PEM SPKI |
//! | `/issuer/…` | the built-in provider (see [`issuer`]), when no other is configured |
//!
//! How the API trusts it — [`LocalAlb::api_env`] gives these, through the normal settings, in
//! the client layout of `cloudformation/service.yaml`: one issuer, the browser client in
//! `ALB_CLIENT_ID` and only machine clients in `BEARER_CLIENT_IDS`, groups from the access token
//! (`ALB_GROUPS_SOURCE` left at its default):
//!
//! | variable | value |
//! | --- | --- |
//! | `ALB_SIGNER_ARNS` | [`DEV_SIGNER_ARN`] |
//! | `ALB_KEY_ENDPOINT` | `{base}/alb-keys` |
//! | `ALB_ISSUER` / `BEARER_ISSUER` | the IdP's issuer (built-in: `{base}/issuer`) |
//! | `BEARER_JWKS_URL` | the IdP's `jwks_uri` |
//! | `ALB_CLIENT_ID` | the browser client (built-in: `local-browser`) |
//! | `BEARER_CLIENT_IDS` | the built-in provider's service clients (`local-service`) |
//! | `AUTH_LOGOUT_URL` | the IdP's logout, returning to `{base}/logged-out` |
//! | `AUTH_PUBLIC_ORIGINS` | `http://127.0.0.1:{port},http://localhost:{port}` |
//! | `AUTH_SESSION_COOKIE_NAME` | the session cookie name |

mod config;
pub mod issuer;
pub mod login;
pub mod oidc;
pub mod proxy;
pub mod session;
pub mod signing;
pub mod token_cmd;

use std::time::Duration;

use actix_web::{App, HttpServer, dev::ServerHandle, web};
use secrecy::SecretString;

pub use config::*;
pub use oidc::{OnUnauthenticated, ProviderMetadata};
pub use signing::{AlbSigner, UserClaims};
pub use token_cmd::TokenArgs;

/// Settings the handlers share (built once at start).
#[derive(Debug)]
pub(crate) struct Settings {
    pub port: u16,
    pub base_url: String,
    /// The origins a browser reaches this stand-in under (callbacks go back to the one used).
    pub origins: Vec<String>,
    pub upstream: url::Url,
    pub cookie_name: String,
    pub landing_path: String,
    pub public_paths: Vec<String>,
    pub on_unauthenticated: OnUnauthenticated,
    pub alb_token_ttl_secs: i64,
    pub session_ttl_secs: i64,
    pub max_body_bytes: usize,
}

/// A running local ALB. Everything the API needs to trust it comes from here; see
/// [`LocalAlb::api_env`].
pub struct LocalAlb {
    port: u16,
    base_url: String,
    signer: std::sync::Arc<AlbSigner>,
    provider: ProviderMetadata,
    built_in: bool,
    browser_client_id: String,
    service_client_ids: Vec<String>,
    scope: String,
    logout_url: String,
    cookie_name: String,
    handle: ServerHandle,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl std::fmt::Debug for LocalAlb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalAlb")
            .field("base_url", &self.base_url)
            .field("signer_arn", &self.signer.signer_arn())
            .field("issuer", &self.provider.issuer)
            .finish_non_exhaustive()
    }
}

fn with_query(url: &str, pairs: &[(&str, &str)]) -> anyhow::Result<String> {
    let mut url = url::Url::parse(url)?;
    {
        let mut q = url.query_pairs_mut();
        for (k, v) in pairs {
            q.append_pair(k, v);
        }
    }
    Ok(url.into())
}

/// Binds 127.0.0.1:`cfg.port`, generates the keys, finds the IdP (the built-in one, or another
/// through its discovery document) and starts serving.
pub async fn start(cfg: LocalAlbConfig) -> anyhow::Result<LocalAlb> {
    use anyhow::Context;

    let upstream = url::Url::parse(&cfg.upstream).context("parsing the upstream API URL")?;
    anyhow::ensure!(
        matches!(upstream.scheme(), "http" | "https"),
        "the upstream URL must be http(s)"
    );
    let listener = std::net::TcpListener::bind(("127.0.0.1", cfg.port))
        .with_context(|| format!("binding the local ALB to 127.0.0.1:{}", cfg.port))?;
    let port = listener
        .local_addr()
        .context("reading the bound address")?
        .port();
    let base_url = format!("http://127.0.0.1:{port}");
    let origins = vec![base_url.clone(), format!("http://localhost:{port}")];
    let logged_out = format!("{base_url}{LOGGED_OUT_PATH}");

    // The IdP: the built-in provider, or another one found through its discovery document.
    let (provider, client_id, client_secret, issuer, logout_url) = match &cfg.idp {
        None => {
            anyhow::ensure!(
                !cfg.users.is_empty(),
                "the local ALB needs at least one dev user"
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
            // A fresh secret per start: only this process's relying party needs it.
            let secret = SecretString::from(signing::random_hex(32)?);
            let issuer =
                issuer::Issuer::generate(format!("{base_url}{ISSUER_PATH}"), cfg.clients.clone())?
                    .with_login(
                        issuer::BrowserClient {
                            client_id: cfg.browser_client_id.clone(),
                            secret: secret.clone(),
                            redirect_uris: origins
                                .iter()
                                .map(|o| format!("{o}{CALLBACK_PATH}"))
                                .collect(),
                            logout_uris: origins
                                .iter()
                                .map(|o| format!("{o}{LOGGED_OUT_PATH}"))
                                .collect(),
                        },
                        cfg.users.clone(),
                        group_choices,
                    );
            let provider: ProviderMetadata = serde_json::from_value(issuer.discovery())
                .context("the built-in provider's discovery document")?;
            let logout_url = with_query(
                &issuer.endpoint("/logout"),
                &[
                    ("client_id", &cfg.browser_client_id),
                    ("logout_uri", &logged_out),
                ],
            )?;
            (
                provider,
                cfg.browser_client_id.clone(),
                secret,
                Some(web::Data::new(issuer)),
                logout_url,
            )
        }
        Some(idp) => {
            let provider = oidc::discover(&oidc::idp_client()?, &idp.issuer)
                .await
                .with_context(|| format!("finding the OpenID Connect provider {}", idp.issuer))?;
            let logout_url = match (&idp.logout_url, &provider.end_session_endpoint) {
                (Some(url), _) => url.clone(),
                (None, Some(end_session)) => with_query(
                    end_session,
                    &[
                        ("client_id", &idp.client_id),
                        ("post_logout_redirect_uri", &logged_out),
                    ],
                )?,
                (None, None) => logged_out.clone(),
            };
            (
                provider,
                idp.client_id.clone(),
                idp.client_secret.clone(),
                None,
                logout_url,
            )
        }
    };
    let built_in = issuer.is_some();
    let default_scope = if built_in {
        BUILT_IN_SCOPE
    } else {
        DEFAULT_SCOPE
    };
    let scope = cfg
        .scope
        .clone()
        .unwrap_or_else(|| default_scope.to_owned());

    // The ALB's `iss` and `client` are the IdP's issuer and the browser client.
    let signer = std::sync::Arc::new(AlbSigner::generate(
        &cfg.signer_arn,
        &provider.issuer,
        &client_id,
    )?);
    let rp = web::Data::new(oidc::Rp::new(
        provider.clone(),
        client_id.clone(),
        client_secret,
        scope.clone(),
        cfg.extra_params.clone(),
    )?);
    let sealer = web::Data::new(session::CookieSealer::generate()?);
    let client = web::Data::new(
        reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(120))
            .build()
            .context("building the proxy's HTTP client")?,
    );
    let settings = web::Data::new(Settings {
        port,
        base_url: base_url.clone(),
        origins,
        upstream,
        cookie_name: cfg.cookie_name.clone(),
        landing_path: cfg.landing_path.clone(),
        public_paths: cfg.public_paths.clone(),
        on_unauthenticated: cfg.on_unauthenticated,
        alb_token_ttl_secs: cfg.alb_token_ttl.as_secs().max(1) as i64,
        session_ttl_secs: cfg.session_ttl.as_secs() as i64,
        max_body_bytes: cfg.max_body_bytes,
    });
    let signer_data = web::Data::from(signer.clone());
    let max_body = cfg.max_body_bytes;

    let server = HttpServer::new(move || {
        let mut app = App::new()
            .app_data(web::PayloadConfig::new(max_body))
            .app_data(settings.clone())
            .app_data(signer_data.clone())
            .app_data(sealer.clone())
            .app_data(rp.clone())
            .app_data(client.clone());
        if let Some(issuer) = &issuer {
            app = app.app_data(issuer.clone());
        }
        app.configure(|c| configure(c, built_in))
    })
    .workers(cfg.workers.max(1))
    .disable_signals()
    .shutdown_timeout(5)
    .listen(listener)
    .context("listening on the local ALB socket")?
    .run();
    let handle = server.handle();
    let task = tokio::spawn(server);

    tracing::info!(%base_url, upstream = %cfg.upstream, issuer = %provider.issuer, "local ALB started");
    Ok(LocalAlb {
        port,
        base_url,
        signer,
        provider,
        built_in,
        browser_client_id: client_id,
        service_client_ids: if built_in {
            cfg.clients.iter().map(|c| c.client_id.clone()).collect()
        } else {
            Vec::new()
        },
        scope,
        logout_url,
        cookie_name: cfg.cookie_name,
        handle,
        task,
    })
}

/// The local ALB's own routes (and the built-in provider's); everything else, `/` included,
/// goes to the proxy, as behind a real ALB: a browser opening the site lands on the web app.
fn configure(cfg: &mut web::ServiceConfig, built_in: bool) {
    cfg.route(LOGIN_PATH, web::get().to(login::login))
        .route(CALLBACK_PATH, web::get().to(oidc::idpresponse))
        .route(LOGGED_OUT_PATH, web::get().to(login::logged_out))
        .route(
            &format!("{KEY_ENDPOINT_PATH}/{{kid}}"),
            web::get().to(signing::public_key),
        );
    if built_in {
        cfg.route(
            &format!("{ISSUER_PATH}/.well-known/openid-configuration"),
            web::get().to(issuer::discovery),
        )
        .route(
            &format!("{ISSUER_PATH}/.well-known/jwks.json"),
            web::get().to(issuer::jwks),
        )
        .route(
            &format!("{ISSUER_PATH}/oauth2/authorize"),
            web::get().to(issuer::authorize),
        )
        .route(
            &format!("{ISSUER_PATH}/login"),
            web::post().to(issuer::login_submit),
        )
        .route(
            &format!("{ISSUER_PATH}/oauth2/token"),
            web::post().to(issuer::token),
        )
        .route(
            &format!("{ISSUER_PATH}/oauth2/userInfo"),
            web::get().to(issuer::userinfo),
        )
        .route(
            &format!("{ISSUER_PATH}/logout"),
            web::get().to(issuer::logout),
        );
    }
    cfg.default_service(web::to(proxy::forward));
}

impl LocalAlb {
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:<port>`: the URL to open in a browser.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// A page that starts the login.
    pub fn login_url(&self) -> String {
        format!("{}{LOGIN_PATH}", self.base_url)
    }

    /// The callback to register at the IdP.
    pub fn callback_url(&self) -> String {
        format!("{}{CALLBACK_PATH}", self.base_url)
    }

    /// Whether browser users log in at the built-in provider.
    pub fn is_built_in(&self) -> bool {
        self.built_in
    }

    /// The IdP's endpoints.
    pub fn provider(&self) -> &ProviderMetadata {
        &self.provider
    }

    /// The scope of the authorisation request.
    pub fn scope(&self) -> &str {
        &self.scope
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

    /// The `iss` in `x-amzn-oidc-data` (`ALB_ISSUER`): the IdP's issuer, as with Cognito.
    pub fn alb_issuer(&self) -> &str {
        &self.provider.issuer
    }

    /// The `client` in `x-amzn-oidc-data` (`ALB_CLIENT_ID`): the browser client.
    pub fn alb_client_id(&self) -> &str {
        &self.browser_client_id
    }

    /// The IdP's issuer (`BEARER_ISSUER`).
    pub fn issuer_url(&self) -> &str {
        &self.provider.issuer
    }

    pub fn jwks_url(&self) -> String {
        self.provider.jwks_uri.clone()
    }

    pub fn token_url(&self) -> String {
        self.provider.token_endpoint.clone()
    }

    /// The built-in provider's service clients (`BEARER_CLIENT_IDS`); never the browser client,
    /// whose access tokens arrive as `x-amzn-oidc-accesstoken` and are checked against
    /// `ALB_CLIENT_ID` instead. Empty with another provider.
    pub fn client_ids(&self) -> &[String] {
        &self.service_client_ids
    }

    /// The IdP logout (`AUTH_LOGOUT_URL`), returning to `{base}/logged-out`.
    pub fn logout_url(&self) -> String {
        self.logout_url.clone()
    }

    /// The public page the IdP logout returns to.
    pub fn logged_out_url(&self) -> String {
        format!("{}{LOGGED_OUT_PATH}", self.base_url)
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
    /// variables `players-api serve` reads. With another
    /// provider, `BEARER_CLIENT_IDS` (the machine clients) is the caller's to add.
    pub fn api_env(&self) -> Vec<(&'static str, String)> {
        let mut env = vec![
            ("ALB_SIGNER_ARNS", self.signer_arn().to_owned()),
            ("ALB_ISSUER", self.alb_issuer().to_owned()),
            ("ALB_CLIENT_ID", self.alb_client_id().to_owned()),
            ("ALB_KEY_ENDPOINT", self.key_endpoint()),
            ("BEARER_ISSUER", self.issuer_url().to_owned()),
            ("BEARER_JWKS_URL", self.jwks_url()),
        ];
        if !self.service_client_ids.is_empty() {
            env.push(("BEARER_CLIENT_IDS", self.service_client_ids.join(",")));
        }
        env.extend([
            ("AUTH_LOGOUT_URL", self.logout_url()),
            ("AUTH_PUBLIC_ORIGINS", self.public_origins().join(",")),
            ("AUTH_SESSION_COOKIE_NAME", self.cookie_name.clone()),
        ]);
        env
    }

    /// What a developer needs to know, for printing at start-up (never a key or secret).
    pub fn banner(&self) -> String {
        let mut out = format!(
            "local ALB: open {base}/ (log in at {login}, log out at {base}/logout)\n\
             identity provider: {issuer} (client {client}, callback {callback})",
            base = self.base_url,
            login = self.login_url(),
            issuer = self.provider.issuer,
            client = self.browser_client_id,
            callback = self.callback_url(),
        );
        if self.built_in {
            out.push_str(&format!(
                "\nservice clients {clients}: TOKEN=$(players-api token --issuer {issuer} --scope players/read)\n\
                 then: curl -H \"Authorization: Bearer $TOKEN\" {base}/v1/players",
                clients = self.service_client_ids.join(", "),
                issuer = self.provider.issuer,
                base = self.base_url,
            ));
        }
        out
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
