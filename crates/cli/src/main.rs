//! `clubpulse`: the one binary. A thin shell over the library crates: it reads configuration, opens
//! the database (starting the embedded one when `DATABASE_URL` is unset), and runs a subcommand.

mod commands;
mod demo_data;

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "clubpulse",
    version,
    about = "Club Pulse: bookings for sports clubs"
)]
struct Cli {
    /// A TOML configuration file (also `CLUBPULSE_CONFIG`); the environment overrides it.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Applies migrations and serves the API until SIGTERM or Ctrl-C.
    Serve,
    /// Applies pending database migrations and exits.
    Migrate,
    /// Manages accounts.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Loads data.
    Seed {
        /// The demo data set: three clubs, about fifty facilities, an admin, staff and members.
        #[arg(long, required = true)]
        demo: bool,
    },
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Creates an account, or updates the role, name and password of an existing one.
    Create {
        #[arg(long)]
        email: String,
        #[arg(long)]
        password: String,
        #[arg(long, default_value = "member", value_parser = ["member", "staff", "admin"])]
        role: String,
        /// Display name (defaults to the part of the e-mail before the @).
        #[arg(long)]
        name: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match clubpulse_config::Config::load(cli.config) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("clubpulse: {err}");
            return ExitCode::from(2);
        }
    };
    commands::init_tracing(&config.log);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("clubpulse: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve => commands::serve(config).await,
            Command::Migrate => commands::migrate(config).await,
            Command::User {
                command:
                    UserCommand::Create {
                        email,
                        password,
                        role,
                        name,
                    },
            } => commands::create_user(config, &email, password, &role, name).await,
            Command::Seed { demo: _ } => commands::seed_demo(config).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = format!("{err:#}"), "clubpulse failed");
            eprintln!("clubpulse: {err:#}");
            ExitCode::FAILURE
        }
    }
}
