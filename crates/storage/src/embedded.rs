//! The embedded default: a private PostgreSQL cluster run from the machine's server binaries.
//!
//! With no `DATABASE_URL`, the service keeps a cluster in `<data dir>/postgres`, creates it on first
//! run (`initdb`), starts it as a child process and stops it on shutdown. The cluster listens on a
//! Unix socket only (in `<data dir>/postgres-socket`, mode 0700), never on TCP, so local trust
//! authentication reaches only the service's own user and root.
//!
//! PostgreSQL refuses to run as root. When the service runs as root, the cluster's files belong to
//! the `postgres` system user and the server process runs as that user; the service (root) can still
//! use the socket.

use std::{
    io::Read as _,
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    process::Stdio,
    time::{Duration, Instant},
};

use nix::{
    sys::signal::{Signal, kill},
    unistd::{Gid, Pid, Uid, User},
};
use sqlx::{Connection as _, PgConnection, postgres::PgConnectOptions};
use tokio::process::{Child, Command};

/// What can go wrong running the embedded cluster; every message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    #[error(
        "PostgreSQL server binaries not found in {0} (no `postgres`/`initdb` there). \
         Run `scripts/setup` to install PostgreSQL 15 with pgvector, set CLUBPULSE_PG_BIN_DIR to \
         their directory, or set DATABASE_URL to use an existing server"
    )]
    MissingBinaries(PathBuf),
    #[error(
        "running as root, but there is no `postgres` system user to run the embedded database as; \
         run `scripts/setup` (it installs PostgreSQL, which creates the user) or set DATABASE_URL"
    )]
    NoPostgresUser,
    #[error("{0} was made by PostgreSQL {1}, but the binaries in use are another version")]
    VersionMismatch(PathBuf, String),
    #[error(
        "the embedded database's socket path {0} is too long for a Unix socket; use a shorter CLUBPULSE_DATA_DIR"
    )]
    SocketPathTooLong(PathBuf),
    #[error("{action} failed: {detail}")]
    Command { action: String, detail: String },
    #[error("the embedded PostgreSQL did not become ready within {0:?}; its log is {1}")]
    NotReady(Duration, PathBuf),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> EmbeddedError {
    let context = context.into();
    move |source| EmbeddedError::Io { context, source }
}

/// The user the server runs as: the `postgres` system user when we are root, ourselves otherwise.
#[derive(Debug, Clone, Copy)]
struct RunAs {
    switch_to: Option<(Uid, Gid)>,
}

impl RunAs {
    fn detect() -> Result<Self, EmbeddedError> {
        if !Uid::effective().is_root() {
            return Ok(Self { switch_to: None });
        }
        let user = User::from_name("postgres")
            .ok()
            .flatten()
            .ok_or(EmbeddedError::NoPostgresUser)?;
        Ok(Self {
            switch_to: Some((user.uid, user.gid)),
        })
    }

    fn command(self, program: &Path) -> Command {
        let mut cmd = Command::new(program);
        if let Some((uid, gid)) = self.switch_to {
            cmd.uid(uid.as_raw()).gid(gid.as_raw());
        }
        cmd
    }

    /// Makes `dir` exist, belong to the server's user and be private to it.
    fn own_dir(self, dir: &Path) -> Result<(), EmbeddedError> {
        std::fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
        if let Some((uid, gid)) = self.switch_to {
            std::os::unix::fs::chown(dir, Some(uid.as_raw()), Some(gid.as_raw()))
                .map_err(io(format!("giving {} to the postgres user", dir.display())))?;
        }
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(io(format!("restricting {}", dir.display())))
    }
}

/// A running embedded cluster.
#[derive(Debug)]
pub struct EmbeddedPostgres {
    pgdata: PathBuf,
    socket_dir: PathBuf,
    log_path: PathBuf,
    /// The server process when we started it.
    child: Option<Child>,
    /// The postmaster's pid, when this process is responsible for stopping it.
    owned_pid: Option<i32>,
}

const READY_TIMEOUT: Duration = Duration::from_secs(60);
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
const DATABASE: &str = "clubpulse";

impl EmbeddedPostgres {
    /// Creates the cluster under `root` if needed and starts it, or connects to the one already
    /// running there. A running cluster is stopped by [`stop`](Self::stop) only if `adopt_running`.
    pub async fn start(
        root: &Path,
        bin_dir: &Path,
        adopt_running: bool,
    ) -> Result<Self, EmbeddedError> {
        let postgres = bin_dir.join("postgres");
        let initdb = bin_dir.join("initdb");
        if !postgres.is_file() || !initdb.is_file() {
            return Err(EmbeddedError::MissingBinaries(bin_dir.to_owned()));
        }
        let run_as = RunAs::detect()?;
        std::fs::create_dir_all(root).map_err(io(format!("creating {}", root.display())))?;
        let root = root
            .canonicalize()
            .map_err(io(format!("resolving {}", root.display())))?;
        if run_as.switch_to.is_some() {
            // The postgres user must be able to walk into the data directory.
            let mode = std::fs::metadata(&root)
                .map_err(io(format!("reading {}", root.display())))?
                .permissions()
                .mode();
            if mode & 0o001 == 0 {
                std::fs::set_permissions(&root, std::fs::Permissions::from_mode(mode | 0o711))
                    .map_err(io(format!(
                        "opening {} to the postgres user",
                        root.display()
                    )))?;
            }
        }
        let pgdata = root.join("postgres");
        let socket_dir = root.join("postgres-socket");
        let log_path = root.join("postgres.log");
        if socket_dir.join(".s.PGSQL.5432").as_os_str().len() > 100 {
            return Err(EmbeddedError::SocketPathTooLong(socket_dir));
        }
        run_as.own_dir(&pgdata)?;
        run_as.own_dir(&socket_dir)?;

        if !pgdata.join("PG_VERSION").exists() {
            tracing::info!(path = %pgdata.display(), "creating the embedded PostgreSQL cluster");
            let out = run_as
                .command(&initdb)
                .args([
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "--no-locale",
                    "-E",
                    "UTF8",
                    "-D",
                ])
                .arg(&pgdata)
                .current_dir(&pgdata)
                .output()
                .await
                .map_err(io("running initdb"))?;
            if !out.status.success() {
                return Err(EmbeddedError::Command {
                    action: "initdb".into(),
                    detail: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
                });
            }
        }
        check_version(&pgdata, bin_dir).await?;

        let mut this = Self {
            pgdata: pgdata.clone(),
            socket_dir: socket_dir.clone(),
            log_path: log_path.clone(),
            child: None,
            owned_pid: None,
        };
        if let Some(pid) = running_postmaster(&pgdata) {
            tracing::info!(pid, "the embedded PostgreSQL is already running; using it");
            this.owned_pid = adopt_running.then_some(pid);
        } else {
            let log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log_path)
                .map_err(io(format!("opening {}", log_path.display())))?;
            let log_err = log.try_clone().map_err(io("duplicating the log handle"))?;
            let child = run_as
                .command(&postgres)
                .arg("-D")
                .arg(&pgdata)
                .arg("-k")
                .arg(&socket_dir)
                .args([
                    "-c",
                    "listen_addresses=",
                    "-c",
                    "unix_socket_permissions=0700",
                ])
                .current_dir(&pgdata)
                // Its own process group: a Ctrl-C at the terminal reaches the service, which then
                // stops the database in order, instead of reaching both at once.
                .process_group(0)
                .stdin(Stdio::null())
                .stdout(Stdio::from(log))
                .stderr(Stdio::from(log_err))
                .kill_on_drop(false)
                .spawn()
                .map_err(io("starting postgres"))?;
            this.owned_pid = child.id().and_then(|id| i32::try_from(id).ok());
            this.child = Some(child);
        }
        this.wait_ready().await?;
        this.create_database().await?;
        Ok(this)
    }

    /// Connection options for `database` over the cluster's socket.
    pub fn connect_options(&self, database: &str) -> PgConnectOptions {
        PgConnectOptions::new()
            .socket(&self.socket_dir)
            .port(5432)
            .username("postgres")
            .database(database)
    }

    pub fn data_dir(&self) -> &Path {
        &self.pgdata
    }

    async fn wait_ready(&mut self) -> Result<(), EmbeddedError> {
        let started = Instant::now();
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                return Err(EmbeddedError::Command {
                    action: "postgres".into(),
                    detail: format!("exited with {status}: {}", log_tail(&self.log_path)),
                });
            }
            if PgConnection::connect_with(&self.connect_options("postgres"))
                .await
                .is_ok()
            {
                return Ok(());
            }
            if started.elapsed() > READY_TIMEOUT {
                return Err(EmbeddedError::NotReady(
                    READY_TIMEOUT,
                    self.log_path.clone(),
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn create_database(&self) -> Result<(), EmbeddedError> {
        let failed = |e: sqlx::Error| EmbeddedError::Command {
            action: format!("creating the {DATABASE} database"),
            detail: e.to_string(),
        };
        let mut conn = PgConnection::connect_with(&self.connect_options("postgres"))
            .await
            .map_err(failed)?;
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
                .bind(DATABASE)
                .fetch_one(&mut conn)
                .await
                .map_err(failed)?;
        if !exists {
            sqlx::query(&format!("CREATE DATABASE {DATABASE}"))
                .execute(&mut conn)
                .await
                .map_err(failed)?;
        }
        conn.close().await.map_err(failed)
    }

    /// Stops the cluster if this process owns it: a fast shutdown (SIGINT: sessions end, data is
    /// checkpointed), then an immediate one if it has not finished within 30 seconds.
    pub async fn stop(mut self) {
        let Some(pid) = self.owned_pid.take() else {
            return;
        };
        tracing::info!(pid, "stopping the embedded PostgreSQL");
        let pid = Pid::from_raw(pid);
        if kill(pid, Signal::SIGINT).is_err() {
            return;
        }
        let stopped = match self.child.as_mut() {
            Some(child) => tokio::time::timeout(STOP_TIMEOUT, child.wait())
                .await
                .is_ok(),
            None => wait_gone(pid, STOP_TIMEOUT).await,
        };
        if !stopped {
            tracing::warn!("the embedded PostgreSQL did not stop in time; stopping it immediately");
            let _ = kill(pid, Signal::SIGQUIT);
            match self.child.as_mut() {
                Some(child) => {
                    let _ = tokio::time::timeout(STOP_TIMEOUT, child.wait()).await;
                }
                None => {
                    wait_gone(pid, STOP_TIMEOUT).await;
                }
            }
        }
    }
}

/// The pid in `postmaster.pid` when that process is alive.
fn running_postmaster(pgdata: &Path) -> Option<i32> {
    let text = std::fs::read_to_string(pgdata.join("postmaster.pid")).ok()?;
    let pid: i32 = text.lines().next()?.trim().parse().ok()?;
    kill(Pid::from_raw(pid), None).is_ok().then_some(pid)
}

async fn wait_gone(pid: Pid, timeout: Duration) -> bool {
    let started = Instant::now();
    while kill(pid, None).is_ok() {
        if started.elapsed() > timeout {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    true
}

async fn check_version(pgdata: &Path, bin_dir: &Path) -> Result<(), EmbeddedError> {
    let data_version = std::fs::read_to_string(pgdata.join("PG_VERSION"))
        .map_err(io("reading PG_VERSION"))?
        .trim()
        .to_owned();
    let out = Command::new(bin_dir.join("postgres"))
        .arg("--version")
        .output()
        .await
        .map_err(io("running postgres --version"))?;
    let binary_version = String::from_utf8_lossy(&out.stdout);
    let major = binary_version
        .split_whitespace()
        .last()
        .and_then(|v| v.split('.').next())
        .unwrap_or_default();
    if major != data_version {
        return Err(EmbeddedError::VersionMismatch(
            pgdata.to_owned(),
            data_version,
        ));
    }
    Ok(())
}

fn log_tail(path: &Path) -> String {
    let mut text = String::new();
    if let Ok(mut file) = std::fs::File::open(path) {
        let _ = file.read_to_string(&mut text);
    }
    let lines: Vec<&str> = text.lines().rev().take(5).collect();
    lines.into_iter().rev().collect::<Vec<_>>().join(" | ")
}
