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
    /// Runs background jobs and chains audit events until SIGTERM or Ctrl-C (beside `serve` with
    /// `CLUBPULSE_WORKER=off`, or as extra capacity).
    Worker,
    /// Operates the job queue.
    Jobs {
        #[command(subcommand)]
        command: JobsCommand,
    },
    /// Checks the audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Operates the caches.
    Cache {
        #[command(subcommand)]
        command: CacheCommand,
    },
    /// Maintains the search index.
    Search {
        #[command(subcommand)]
        command: SearchCommand,
    },
    /// Loads data.
    Seed {
        /// The demo data set: three clubs, about fifty facilities, an admin, staff and members.
        #[arg(long, required = true)]
        demo: bool,
    },
}

#[derive(Debug, Subcommand)]
enum JobsCommand {
    /// The dead-letter queue: jobs that used up their attempts.
    Dead {
        #[command(subcommand)]
        command: DeadCommand,
    },
}

#[derive(Debug, Subcommand)]
enum DeadCommand {
    /// Prints dead jobs, one JSON object per line, most recent first.
    List {
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Queues dead jobs again with fresh attempts: one by id, or all of them.
    Retry {
        #[arg(long, conflicts_with = "id", required_unless_present = "id")]
        all: bool,
        id: Option<uuid::Uuid>,
    },
    /// Deletes every dead job.
    Purge,
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Walks the hash chain: exit status 0 when intact, 1 naming the first broken seq otherwise.
    Verify {
        /// A head printed by an earlier verify (`SEQ:HASH`), kept outside the database: it must
        /// still be in the chain.
        #[arg(long, value_name = "SEQ:HASH")]
        expect_head: Option<clubpulse_audit::ExpectedHead>,
    },
}

#[derive(Debug, Subcommand)]
enum CacheCommand {
    /// Empties the caches of every running instance (through PostgreSQL) and the availability
    /// cache in Redis.
    Clear {
        /// Only entries whose key starts with this (`facility:`, `facility:<id>`,
        /// `availability:`, `query_embedding:`); every cache when absent.
        #[arg(long, default_value = "")]
        prefix: String,
    },
}

#[derive(Debug, Subcommand)]
enum SearchCommand {
    /// Embeds and indexes every live facility again (after changing the model, say), with a
    /// progress bar.
    Reindex {
        /// Only facilities never indexed or changed since.
        #[arg(long)]
        missing: bool,
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
            Command::Worker => commands::worker(config).await,
            Command::Cache {
                command: CacheCommand::Clear { prefix },
            } => commands::cache_clear(config, &prefix).await,
            Command::Search {
                command: SearchCommand::Reindex { missing },
            } => commands::search_reindex(config, missing).await,
            Command::Jobs {
                command: JobsCommand::Dead { command },
            } => {
                let action = match command {
                    DeadCommand::List { limit } => commands::DeadAction::List { limit },
                    DeadCommand::Retry { id, .. } => {
                        commands::DeadAction::Retry(id.map(clubpulse_jobs::JobId))
                    }
                    DeadCommand::Purge => commands::DeadAction::Purge,
                };
                commands::dead_jobs(config, action).await
            }
            Command::Audit {
                command: AuditCommand::Verify { expect_head },
            } => commands::audit_verify(config, expect_head).await,
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
