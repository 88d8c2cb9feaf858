//! Configuration at the process level: a bad setting stops `clubpulse` before it starts anything,
//! with exit status 2 and a message that names the variable at fault.

#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

use std::process::Command;

use clubpulse_config::VARS;

const BIN: &str = env!("CARGO_BIN_EXE_clubpulse");

#[test]
fn each_invalid_variable_stops_serve_with_status_2_naming_that_variable() {
    let mut tried = 0;
    for var in VARS {
        let Some(bad) = var.rejects else { continue };
        let out = Command::new(BIN)
            .arg("serve")
            // Nothing else set: whatever the error names, only this variable can have caused it.
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env(var.name, bad)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{}={bad}: {stderr}", var.name);
        let rest = stderr
            .strip_prefix("clubpulse: ")
            .and_then(|s| s.strip_prefix(var.name));
        assert!(
            rest.is_some_and(|r| r.starts_with('=') || r.starts_with(' ')),
            "{}={bad} was reported as: {stderr}",
            var.name
        );
        tried += 1;
    }
    assert!(tried >= 35, "only {tried} variables were tried");
}

#[test]
fn a_bad_setting_in_the_file_is_named_by_its_variable_too() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("clubpulse.toml");
    std::fs::write(&file, "[booking]\nmax_active_holds = 0\n").unwrap();
    let out = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&file)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.starts_with("clubpulse: CLUBPULSE_MAX_ACTIVE_HOLDS is invalid"),
        "{stderr}"
    );
}
