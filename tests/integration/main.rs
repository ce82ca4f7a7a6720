//! Every Rust integration test, in one test binary: one link of the dependency tree instead of
//! one per file, which is most of the build on a 2-core machine. Each module is one suite;
//! `support` is what they share (databases, the application, identities, AWS stand-ins,
//! child processes). Run one suite with `cargo nextest run -E 'test(/^api::/)'`.

mod support;

mod alb_forgery;
mod alb_parser_props;
mod api;
mod audit;
mod bearer_tokens;
mod db_roles;
mod dev_e2e;
mod faults;
mod identity_routes;
mod local_alb;
mod oidc_provider_journeys;
mod openapi;
mod permission_matrix;
mod pool_health;
mod production_shape;
mod runtime_e2e;
mod schema_drift;
mod secrets;
mod store_contract;
mod verify_alb_cli;
