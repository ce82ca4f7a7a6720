//! `players-api verify-alb-header` (its `run_with` core): valid and invalid headers, `--at`.

use crate::support::identity::*;
use clap::Parser;
use players_api::auth::cli::{VerifyAlbHeaderArgs, run_with};
use serde_json::json;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: VerifyAlbHeaderArgs,
}

async fn run(argv: &[&str], input: &str) -> (u8, String, String) {
    let mut full = vec!["verify-alb-header"];
    full.extend_from_slice(argv);
    let args = Cli::try_parse_from(full).unwrap().args;
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = run_with(args, input, &mut out, &mut err).await;
    (
        code,
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
    )
}

#[tokio::test]
async fn verifies_a_captured_header_at_a_given_instant() {
    let key = AlbKeyPair::generate();
    let dir = tempfile::tempdir().unwrap();
    let pem = dir.path().join("key.pem");
    std::fs::write(&pem, key.public_pem()).unwrap();
    let pem = pem.to_str().unwrap();
    // A header captured an hour ago: expired now, valid at --at.
    let exp = now() - 3600;
    let mut h = key.header();
    h["exp"] = json!(exp);
    let token = key.sign(&h, &key.claims(exp), true);
    let at = (exp - 30).to_string();
    let base = [
        "--signer",
        ARN,
        "--issuer",
        ISSUER,
        "--client-id",
        CLIENT,
        "--public-key",
        pem,
    ];

    let mut argv = base.to_vec();
    argv.extend(["--at", &at]);
    let (code, out, _) = run(&argv, &format!("{token}\n")).await;
    assert_eq!(code, 0, "{out}");
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["claims"]["sub"], "user-123");
    assert_eq!(doc["header"]["signer"], ARN);

    // A pasted "x-amzn-oidc-data: ..." line works too.
    let (code, _, _) = run(&argv, &format!("x-amzn-oidc-data: {token}")).await;
    assert_eq!(code, 0);

    // Judged now it is expired.
    let (code, out, _) = run(&base, &token).await;
    assert_eq!(code, 1);
    assert!(out.starts_with("INVALID: expired"), "{out}");

    // Tampered, and a signer not allowed.
    let (code, out, _) = run(&argv, &token.replacen('.', ".x", 1)).await;
    assert_eq!(code, 1);
    assert!(out.starts_with("INVALID:"), "{out}");
    let other = ["--signer", OTHER_ARN, "--public-key", pem, "--at", &at];
    let (code, out, _) = run(&other, &token).await;
    assert_eq!(
        (code, out.starts_with("INVALID: signer_not_allowed")),
        (1, true),
        "{out}"
    );
}

#[tokio::test]
async fn fetches_the_key_from_an_endpoint() {
    let key = AlbKeyPair::generate();
    let server = TestServer::start().await;
    server.set(
        &format!("/{}", key.kid),
        Reply::Ok(key.public_pem().into_bytes()),
    );
    let (code, out, _) = run(
        &["--signer", ARN, "--key-endpoint", &server.base],
        &key.token(),
    )
    .await;
    assert_eq!(code, 0, "{out}");
    let (code, out, _) = run(
        &["--signer", ARN, "--key-endpoint", &server.base],
        &AlbKeyPair::generate().token(),
    )
    .await;
    assert_eq!(
        (code, out.starts_with("INVALID: key_fetch_status")),
        (1, true),
        "{out}"
    );
}

#[tokio::test]
async fn usage_errors_exit_2() {
    let (code, _, err) = run(&["--signer", "not-an-arn"], "x").await;
    assert_eq!(code, 2);
    assert!(err.contains("--signer"));
}
