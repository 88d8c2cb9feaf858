//! What the process-level tests share: the test environment, free ports, signals, waiting for a
//! server, local times in Madrid, logging in.

#![allow(dead_code)] // Each test binary uses its own part of it.

use serde_json::{Value, json};

/// A variable `scripts/test` sets for the tests.
pub fn env(name: &str) -> String {
    std::env::var(name)
        .unwrap_or_else(|_| panic!("{name} is not set: run the tests through scripts/test"))
}

/// A loopback port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Logs in and returns the whole answer (`token`, `user`, …).
pub async fn login(client: &reqwest::Client, base: &str, email: &str, password: &str) -> Value {
    client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Logs in and returns the session token.
pub async fn token(client: &reqwest::Client, base: &str, email: &str, password: &str) -> String {
    let body = login(client, base, email, password).await;
    body["token"].as_str().unwrap().to_owned()
}

/// Sends `signal` to a child process.
pub fn signal(child: &std::process::Child, signal: nix::sys::signal::Signal) {
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap());
    nix::sys::signal::kill(pid, signal).unwrap();
}

/// Waits until `GET {base}/health` answers 200, for at most `wait`.
pub async fn wait_healthy(base: &str, wait: std::time::Duration) {
    let deadline = tokio::time::Instant::now() + wait;
    while !matches!(reqwest::get(format!("{base}/health")).await, Ok(r) if r.status() == 200) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "serve never answered"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// An RFC 3339 instant `days` days from now, at `hour`:00 in Madrid.
pub fn madrid(days: i64, hour: u32) -> String {
    use chrono::TimeZone as _;
    let tz = chrono_tz::Europe::Madrid;
    let date = chrono::Utc::now().with_timezone(&tz).date_naive() + chrono::Duration::days(days);
    tz.from_local_datetime(&date.and_hms_opt(hour, 0, 0).unwrap())
        .earliest()
        .unwrap()
        .to_rfc3339()
}
