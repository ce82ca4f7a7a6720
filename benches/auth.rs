//! Identity hot-path benchmarks. `cargo bench --bench auth` (add `-- --quick` for a short run).
//!
//! - `alb/cold_verify`: full verification of a header not seen before (a distinct signature
//!   every iteration), the key already cached — what a request pays on a result-cache miss.
//! - `alb/cache_hit`: the verified-result cache lookup for a header seen before.
//! - `bearer/rs256_verify`: a bearer token, JWKS cached.
//! - `raw/*`: one ES256 verification with each backend, no JWT work, for comparison.

mod bench_support;

use std::hint::black_box;

use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED, ParsedPublicKey, UnparsedPublicKey};
use criterion::{Criterion, criterion_group, criterion_main};
use p256::ecdsa::{
    Signature, VerifyingKey,
    signature::{Signer, Verifier},
};

fn benches(c: &mut Criterion) {
    let s = bench_support::setup();
    let now = bench_support::auth_support::now();

    let tokens = bench_support::alb_tokens(&s.key, 4096);
    let mut i = 0usize;
    c.bench_function("alb/cold_verify", |b| {
        b.iter(|| {
            i = (i + 1) % tokens.len();
            let t = &tokens[i];
            black_box(
                s.rt.block_on(s.alb.verify_uncached(black_box(t), now))
                    .unwrap(),
            );
        })
    });

    // Breakdown of the cold path: parsing alone, and verification with a fixed key (no key cache).
    c.bench_function("alb/parse_only", |b| {
        b.iter(|| {
            i = (i + 1) % tokens.len();
            black_box(
                players_api::auth::alb::token::parse(black_box(tokens[i].as_bytes()), 16 * 1024)
                    .unwrap(),
            );
        })
    });
    let static_key = players_api::auth::alb::AlbVerifier::with_static_key(
        {
            let mut c = players_api::auth::alb::AlbVerifierConfig::new(vec![
                players_api::auth::alb::SignerArn::parse(bench_support::auth_support::ARN).unwrap(),
            ]);
            c.issuer = Some(bench_support::auth_support::ISSUER.into());
            c.client_id = Some(bench_support::auth_support::CLIENT.into());
            c
        },
        players_api::auth::alb::AlbKey::from_pem(&s.key.public_pem()).unwrap(),
    )
    .unwrap();
    c.bench_function("alb/cold_verify_static_key", |b| {
        b.iter(|| {
            i = (i + 1) % tokens.len();
            black_box(
                s.rt.block_on(static_key.verify_uncached(black_box(&tokens[i]), now))
                    .unwrap(),
            );
        })
    });

    let hot = s.key.token();
    s.rt.block_on(s.alb.verify(&hot)).unwrap();
    c.bench_function("alb/cache_hit", |b| {
        b.iter(|| black_box(s.alb.cached(black_box(&hot), now).unwrap()))
    });
    c.bench_function("alb/cache_hit_via_verify", |b| {
        b.iter(|| {
            black_box(
                s.rt.block_on(s.alb.verify_at(black_box(&hot), now))
                    .unwrap(),
            )
        })
    });

    let bearer_tokens: Vec<String> = (0..256)
        .map(|_| {
            s.issuer
                .sign_rs256(&s.issuer.access_claims("svc", "players/read players/write"))
        })
        .collect();
    let mut j = 0usize;
    c.bench_function("bearer/rs256_verify", |b| {
        b.iter(|| {
            j = (j + 1) % bearer_tokens.len();
            black_box(
                s.rt.block_on(s.bearer.verify(black_box(&bearer_tokens[j])))
                    .unwrap(),
            );
        })
    });

    // Raw ES256 verification, same message and key for every backend.
    let msg = tokens[0].rsplit_once('.').unwrap().0.as_bytes().to_vec();
    let sig: Signature = s.key.sk.sign(&msg);
    let sig_bytes = sig.to_bytes();
    let vk: VerifyingKey = *s.key.sk.verifying_key();
    let sec1 = p256::PublicKey::from(&vk).to_sec1_bytes();
    let parsed = ParsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &sec1).unwrap();
    let unparsed = UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, sec1.to_vec());
    c.bench_function("raw/aws_lc_rs_parsed", |b| {
        b.iter(|| {
            parsed
                .verify_sig(black_box(&msg), black_box(&sig_bytes))
                .unwrap()
        })
    });
    c.bench_function("raw/aws_lc_rs_unparsed", |b| {
        b.iter(|| {
            unparsed
                .verify(black_box(&msg), black_box(&sig_bytes))
                .unwrap()
        })
    });
    c.bench_function("raw/p256", |b| {
        b.iter(|| vk.verify(black_box(&msg), black_box(&sig)).unwrap())
    });
}

criterion_group!(auth, benches);
criterion_main!(auth);
