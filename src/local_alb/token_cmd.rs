//! `players-api token`: fetch a client-credentials bearer token from the local issuer and print
//! it, for `curl -H "Authorization: Bearer $(cargo run -q -- token --scope players/read)"`.

use std::time::Duration;

use anyhow::Context;
use secrecy::{ExposeSecret, SecretString};

use super::{DEFAULT_PORT, DEFAULT_SERVICE_CLIENT_ID, DEFAULT_SERVICE_CLIENT_SECRET, ISSUER_PATH};

fn default_issuer() -> String {
    format!("http://127.0.0.1:{DEFAULT_PORT}{ISSUER_PATH}")
}

#[derive(Clone, Debug, clap::Args)]
pub struct TokenArgs {
    /// The service client id.
    #[arg(long, default_value = DEFAULT_SERVICE_CLIENT_ID)]
    pub client: String,
    /// The client secret (the local dev default unless given).
    #[arg(long, default_value = DEFAULT_SERVICE_CLIENT_SECRET, hide_default_value = true)]
    pub secret: SecretString,
    /// Space-separated scopes, e.g. "players/read players/write"; all allowed ones if omitted.
    #[arg(long)]
    pub scope: Option<String>,
    /// The local issuer URL (its token endpoint is `{issuer}/oauth2/token`).
    #[arg(long, default_value_t = default_issuer())]
    pub issuer: String,
}

/// Prints just the access token on stdout.
pub async fn run(args: TokenArgs) -> anyhow::Result<()> {
    let token = fetch_token(&args).await?;
    println!("{}", token.expose_secret());
    Ok(())
}

/// Asks the issuer's token endpoint for a client-credentials token.
pub async fn fetch_token(args: &TokenArgs) -> anyhow::Result<SecretString> {
    let url = format!("{}/oauth2/token", args.issuer.trim_end_matches('/'));
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    form.append_pair("grant_type", "client_credentials");
    if let Some(scope) = args.scope.as_deref().filter(|s| !s.trim().is_empty()) {
        form.append_pair("scope", scope);
    }
    let client = reqwest::Client::builder()
        .no_proxy()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(15))
        .build()
        .context("building the HTTP client")?;
    let resp = client
        .post(&url)
        .basic_auth(&args.client, Some(args.secret.expose_secret()))
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(form.finish())
        .send()
        .await
        .with_context(|| format!("asking {url} for a token (is `players-api dev` running?)"))?;
    let status = resp.status();
    let body: serde_json::Value = resp
        .json()
        .await
        .with_context(|| format!("reading the token response from {url}"))?;
    if !status.is_success() {
        // OAuth error bodies carry no secret: show them.
        anyhow::bail!(
            "the issuer refused: {status} {} {}",
            body["error"].as_str().unwrap_or("?"),
            body["error_description"].as_str().unwrap_or("")
        );
    }
    let token = body["access_token"]
        .as_str()
        .context("the token response has no access_token")?;
    Ok(SecretString::from(token))
}
