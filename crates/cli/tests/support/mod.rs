//! What the process-level tests share: the test environment, free ports, logging in.

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
