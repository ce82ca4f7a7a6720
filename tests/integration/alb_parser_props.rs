//! Property tests: the ALB header parser and the whole verifier never panic on arbitrary input.

use players_api::auth::alb::{AlbKey, AlbVerifier, AlbVerifierConfig, SignerArn, token::parse};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn parser_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let _ = parse(&bytes, 16 * 1024);
    }

    #[test]
    fn parser_never_panics_on_jwt_shaped_input(s in "[A-Za-z0-9_=.+/-]{0,600}") {
        let _ = parse(s.as_bytes(), 16 * 1024);
    }

    #[test]
    fn verifier_never_panics(h in "[A-Za-z0-9_=-]{0,200}", p in "[A-Za-z0-9_=-]{0,200}", s in "[A-Za-z0-9_=-]{0,120}") {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let cfg = AlbVerifierConfig::new(vec![SignerArn::parse(
            "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/p/1",
        ).unwrap()]);
        let pem = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEEVs/o5+uQbTjL3chynL4wXgUg2R9\nq9UU8I5mEovUf86QZ7kOBIjJwqnzD1omageEHWwHdBO6B+dFabmdT9POxg==\n-----END PUBLIC KEY-----\n";
        let v = AlbVerifier::with_static_key(cfg, AlbKey::from_pem(pem).unwrap()).unwrap();
        let raw = format!("{h}.{p}.{s}");
        let _ = rt.block_on(v.verify_uncached(&raw, 0));
    }
}
