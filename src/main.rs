use std::process::ExitCode;

use clap::Parser;
use players_api::{
    app,
    cli::{Cli, Command, DevArgs},
    telemetry,
};

#[actix_web::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Serve(settings)) => app::serve(*settings).await,
        Some(Command::Migrate(args)) => app::migrate(args).await,
        Some(Command::Dev(args)) => app::dev(args).await,
        Some(Command::VerifyAlbHeader(args)) => return players_api::auth::cli::run(args).await,
        Some(Command::Token(args)) => players_api::local_alb::token_cmd::run(args).await,
        Some(Command::Healthcheck(args)) => return app::healthcheck(&args),
        Some(Command::Openapi) => app::print_openapi(),
        None => app::dev(DevArgs::parse_default()).await,
    };
    // The last log lines are still in the buffer in front of stdout.
    telemetry::line_buffer::flush_stdout();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line naming what failed and why (the cause chain), never a secret value.
            eprintln!("players-api: {e:#}");
            ExitCode::FAILURE
        }
    }
}
