//! The embedded default, end to end through the real binary: no `DATABASE_URL`, no `REDIS_URL`.
//! `clubpulse` creates and runs its own PostgreSQL cluster under `CLUBPULSE_DATA_DIR` and leaves no
//! database process behind when it stops.

#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

use std::{
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    time::{Duration, Instant},
};

use nix::{
    sys::signal::{Signal, kill},
    unistd::Pid,
};
use serde_json::Value;

mod support;

use support::free_port;

const BIN: &str = env!("CARGO_BIN_EXE_clubpulse");

/// A data directory the `postgres` user can reach (the test may run as root).
fn data_dir() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let dir = tmp.path().join("var");
    (tmp, dir)
}

fn clubpulse(data_dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env_remove("DATABASE_URL")
        .env_remove("REDIS_URL")
        .env_remove("CLUBPULSE_CONFIG")
        .env("CLUBPULSE_DATA_DIR", data_dir)
        .env("CLUBPULSE_LOG", "warn")
        // Search has its own end-to-end tests; these are about the database's life cycle.
        .env("CLUBPULSE_SEARCH", "off");
    cmd
}

fn run(data_dir: &Path, args: &[&str]) -> Output {
    let out = clubpulse(data_dir, args).output().unwrap();
    assert!(
        out.status.success(),
        "clubpulse {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Processes whose command line mentions `needle` (the cluster's data directory).
fn processes_mentioning(needle: &Path) -> Vec<i32> {
    let needle = needle.to_string_lossy().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|cmd| {
                    String::from_utf8_lossy(&cmd)
                        .replace('\0', " ")
                        .contains(&needle)
                })
                .unwrap_or(false)
        })
        .collect()
}

struct Server {
    child: Child,
    base: String,
}

impl Server {
    async fn start(data_dir: &Path) -> Self {
        let port = free_port();
        let child = clubpulse(data_dir, &["serve"])
            .env("CLUBPULSE_ADDR", format!("127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let server = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        let started = Instant::now();
        loop {
            if let Ok(response) = reqwest::get(format!("{}/ready", server.base)).await
                && response.status() == 200
            {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "serve did not become ready"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        server
    }

    fn signal(&self, signal: Signal) {
        kill(Pid::from_raw(self.child.id() as i32), signal).unwrap();
    }

    /// Waits for the process to exit, at most 30 seconds.
    fn wait(mut self) -> std::process::ExitStatus {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "serve did not stop"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

#[tokio::test]
async fn the_embedded_default_seeds_serves_and_stops_without_leaving_postgres_behind() {
    let (_tmp, dir) = data_dir();

    let seeded = run(&dir, &["seed", "--demo"]);
    let stdout = String::from_utf8_lossy(&seeded.stdout);
    assert!(stdout.contains("3 clubs"), "{stdout}");
    assert!(
        stdout.contains("admin@clubpulse.test"),
        "the admin's credentials are printed: {stdout}"
    );
    let again = run(&dir, &["seed", "--demo"]);
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("(0 new)"),
        "seeding twice adds nothing"
    );
    run(
        &dir,
        &[
            "user",
            "create",
            "--email",
            "boss@example.com",
            "--password",
            "boss-password",
            "--role",
            "admin",
        ],
    );
    assert!(
        processes_mentioning(&dir).is_empty(),
        "one-off commands stop the cluster they started"
    );

    let server = Server::start(&dir).await;
    let ready: Value = reqwest::get(format!("{}/ready", server.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["database"]["backend"], "embedded-postgres");
    assert_eq!(ready["state"]["backend"], "in-process");
    let client = reqwest::Client::new();
    let login = support::login(&client, &server.base, "boss@example.com", "boss-password").await;
    assert_eq!(login["user"]["role"], "admin");
    let facilities: Vec<Value> =
        reqwest::get(format!("{}/api/v1/facilities?limit=200", server.base))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    assert!(
        (45..=60).contains(&facilities.len()),
        "about fifty demo facilities, got {}",
        facilities.len()
    );
    assert!(
        !processes_mentioning(&dir).is_empty(),
        "the cluster runs while serving"
    );

    // Every facility's context was cached at start; `cache clear`, run beside the server on the
    // same embedded cluster, empties it in the server.
    let cached = || async {
        let text = reqwest::get(format!("{}/metrics", server.base))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(r#"clubpulse_cache_entries{cache="facility"} "#))
            .map_or(0.0, |v| v.parse::<f64>().unwrap())
    };
    #[allow(clippy::cast_precision_loss)] // about fifty
    let warmed = facilities.len() as f64;
    assert_eq!(cached().await, warmed, "warmed at start");
    let cleared = run(&dir, &["cache", "clear", "--prefix", "facility:"]);
    assert!(
        String::from_utf8_lossy(&cleared.stdout).contains("facility:"),
        "{}",
        String::from_utf8_lossy(&cleared.stdout)
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while cached().await > 0.0 {
        assert!(
            Instant::now() < deadline,
            "the server's cache was not emptied"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let week = reqwest::get(format!(
        "{}/api/v1/facilities/{}/availability",
        server.base,
        facilities[0]["id"].as_str().unwrap()
    ))
    .await
    .unwrap();
    assert_eq!(week.status(), 200);
    assert_eq!(cached().await, 1.0, "loaded again on use");

    server.signal(Signal::SIGTERM);
    let status = server.wait();

    assert_eq!(status.code(), Some(0));
    assert!(
        processes_mentioning(&dir).is_empty(),
        "a database process was left behind"
    );
    assert!(!dir.join("postgres/postmaster.pid").exists());
}

#[tokio::test]
async fn ctrl_c_stops_the_server_and_its_database_too() {
    let (_tmp, dir) = data_dir();
    let server = Server::start(&dir).await;

    server.signal(Signal::SIGINT);

    assert_eq!(server.wait().code(), Some(0));
    assert!(processes_mentioning(&dir).is_empty());
}

#[tokio::test]
async fn a_server_killed_outright_leaves_a_cluster_the_next_one_takes_over_and_stops() {
    let (_tmp, dir) = data_dir();
    let first = Server::start(&dir).await;
    first.signal(Signal::SIGKILL);
    first.wait();
    assert!(
        !processes_mentioning(&dir).is_empty(),
        "SIGKILL cannot stop the database"
    );

    let second = Server::start(&dir).await;
    second.signal(Signal::SIGTERM);

    assert_eq!(second.wait().code(), Some(0));
    assert!(processes_mentioning(&dir).is_empty());
}

#[test]
fn missing_postgres_binaries_are_a_clear_error_naming_the_setup_command() {
    let (_tmp, dir) = data_dir();

    let out = clubpulse(&dir, &["serve"])
        .env("CLUBPULSE_PG_BIN_DIR", "/nonexistent/postgresql/bin")
        .output()
        .unwrap();

    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("scripts/setup"), "{stderr}");
    assert!(stderr.contains("/nonexistent/postgresql/bin"), "{stderr}");
}

#[test]
fn a_bad_setting_is_named_and_exits_with_status_2() {
    let (_tmp, dir) = data_dir();

    let out = clubpulse(&dir, &["serve"])
        .env("CLUBPULSE_ADDR", "nowhere")
        .output()
        .unwrap();

    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("CLUBPULSE_ADDR"));
}
