//! players-api: a player-management REST API for football clubs.

pub mod auth;
pub mod error;
pub mod routes;
pub mod secrets;
pub mod shutdown;
pub mod telemetry;
