//! players-api: a player-management REST API for football clubs.

pub mod auth;
pub mod error;
pub mod local_alb;
pub mod routes;
pub mod telemetry;
