//! `players-api verify-alb-header`: verify a captured `x-amzn-oidc-data` value with the same
//! code as the server. Reads the header from stdin; prints the verified header and claims as
//! JSON (exit 0) or the failed check (exit 1).

use std::{io::Write, path::PathBuf, process::ExitCode};

use super::alb::{AlbKey, AlbVerifier, AlbVerifierConfig, SignerArn, unix_now};

#[derive(Clone, Debug, clap::Args)]
pub struct VerifyAlbHeaderArgs {
    /// ALB ARN allowed to sign (repeatable).
    #[arg(long = "signer", required = true)]
    pub signers: Vec<String>,
    /// Expected `iss`.
    #[arg(long)]
    pub issuer: Option<String>,
    /// Expected `client`.
    #[arg(long)]
    pub client_id: Option<String>,
    /// PEM public key to verify with (instead of fetching by kid).
    #[arg(long, conflicts_with = "key_endpoint")]
    pub public_key: Option<PathBuf>,
    /// Key endpoint (default: derived from the signer ARN's region).
    #[arg(long)]
    pub key_endpoint: Option<String>,
    /// Judge expiry at this instant (seconds since the epoch) instead of now.
    #[arg(long)]
    pub at: Option<i64>,
    /// Allowed clock skew after `exp`, in seconds.
    #[arg(long, default_value_t = 60)]
    pub skew_secs: u64,
}

/// Runs the command on the process's stdin/stdout/stderr.
pub async fn run(args: VerifyAlbHeaderArgs) -> ExitCode {
    let mut input = String::new();
    if let Err(e) = std::io::Read::read_to_string(&mut std::io::stdin().lock(), &mut input) {
        eprintln!("error: reading stdin: {e}");
        return ExitCode::from(2);
    }
    let code = run_with(args, &input, &mut std::io::stdout(), &mut std::io::stderr()).await;
    ExitCode::from(code)
}

/// The testable core: returns the exit code (0 verified, 1 rejected, 2 usage error).
pub async fn run_with(
    args: VerifyAlbHeaderArgs,
    input: &str,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> u8 {
    // Accept a bare value or a pasted `x-amzn-oidc-data: <value>` line.
    let raw = input.trim();
    let raw = raw
        .split_once(':')
        .filter(|(name, _)| name.trim().eq_ignore_ascii_case("x-amzn-oidc-data"))
        .map_or(raw, |(_, v)| v.trim());

    let signers = match args
        .signers
        .iter()
        .map(|s| SignerArn::parse(s))
        .collect::<Result<Vec<_>, _>>()
    {
        Ok(s) => s,
        Err(e) => {
            let _ = writeln!(err, "error: --signer: {e}");
            return 2;
        }
    };
    let mut config = AlbVerifierConfig::new(signers);
    config.issuer = args.issuer;
    config.client_id = args.client_id;
    config.key_endpoint = args.key_endpoint;
    config.exp_skew = std::time::Duration::from_secs(args.skew_secs);
    let verifier = match &args.public_key {
        Some(path) => {
            let pem = match std::fs::read_to_string(path) {
                Ok(p) => p,
                Err(e) => {
                    let _ = writeln!(err, "error: --public-key {}: {e}", path.display());
                    return 2;
                }
            };
            match AlbKey::from_pem(&pem) {
                Ok(key) => AlbVerifier::with_static_key(config, key),
                Err(_) => {
                    let _ = writeln!(
                        err,
                        "error: --public-key {}: not a P-256 public key PEM",
                        path.display()
                    );
                    return 2;
                }
            }
        }
        None => AlbVerifier::new(config),
    };
    let verifier = match verifier {
        Ok(v) => v,
        Err(e) => {
            let _ = writeln!(err, "error: {e}");
            return 2;
        }
    };
    let at = args.at.unwrap_or_else(unix_now);
    match verifier.verify_uncached(raw, at).await {
        Ok(claims) => {
            let doc = serde_json::json!({ "header": claims.header, "claims": claims.claims });
            let _ = writeln!(
                out,
                "{}",
                serde_json::to_string_pretty(&doc).unwrap_or_default()
            );
            0
        }
        Err(e) => {
            let _ = writeln!(out, "INVALID: {} ({e})", e.reason());
            1
        }
    }
}
