//! players-api: a player-management REST API for football clubs.

pub mod app;
pub mod auth;
pub mod cli;
pub mod config;
pub mod domain;
pub mod error;
pub mod local_alb;
pub mod routes;
pub mod secrets;
pub mod shutdown;
pub mod startup;
pub mod store;
pub mod telemetry;
