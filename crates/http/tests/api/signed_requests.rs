//! Signed API requests: a key made with `require_signature` works only with a fresh, valid,
//! first-seen `ClubPulse-Signature`; every refusal has its code and changes nothing.
//!
//! The signatures here are computed from the documented canonical string with the HMAC crates
//! directly, not with the server's own functions, so the test holds the server to the contract.

use clubpulse_domain::Role;
use hmac::{Hmac, Mac};
use reqwest::Method;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::helpers::{OwnRedis, Setup, TestApp, TestUser, assert_problem};

/// `t=<t>,v1=<hex HMAC-SHA256>` over `t`, the method, the path, the query and the body's SHA-256,
/// joined by `\n`, as the OpenAPI document describes it.
pub fn signature(secret: &str, t: i64, method: &Method, target: &str, body: &[u8]) -> String {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let canonical = format!(
        "{t}\n{method}\n{path}\n{query}\n{}",
        hex::encode(Sha256::digest(body))
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(canonical.as_bytes());
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Sends `body` (JSON when given) to `target` with the key and, when given, the signature header.
async fn send(
    app: &TestApp,
    key: &str,
    method: Method,
    target: &str,
    body: Option<&[u8]>,
    signature: Option<&str>,
) -> reqwest::Response {
    let mut req = app
        .client
        .request(method, app.url(target))
        .header("x-api-key", key);
    if let Some(body) = body {
        req = req
            .header("content-type", "application/json")
            .body(body.to_vec());
    }
    if let Some(signature) = signature {
        req = req.header("clubpulse-signature", signature);
    }
    req.send().await.unwrap()
}

/// A signed key with both scopes, as the API answered its creation.
async fn signed_key(app: &TestApp, admin: &TestUser) -> Value {
    let response = app
        .post(
            "/api/v1/admin/api-keys",
            json!({"name": "Booking kiosk", "scopes": ["read", "write"], "require_signature": true}),
            Some(&admin.token),
        )
        .await;
    assert_eq!(response.status(), 201);
    response.json().await.unwrap()
}

fn secrets(key: &Value) -> (String, String) {
    (
        key["secret"].as_str().unwrap().to_owned(),
        key["signing_secret"]
            .as_str()
            .expect("a signing secret")
            .to_owned(),
    )
}

/// `POST /api/v1/facilities` with `body`, signed now with `signing`.
async fn create_facility_signed(
    app: &TestApp,
    key: &str,
    signing: &str,
    body: &[u8],
) -> reqwest::Response {
    let path = "/api/v1/facilities";
    let signed = signature(signing, now(), &Method::POST, path, body);
    send(app, key, Method::POST, path, Some(body), Some(&signed)).await
}

fn facility_body(club: &Value, name: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({"club_id": club["id"], "name": name, "sport": "padel"})).unwrap()
}

#[tokio::test]
async fn a_signed_key_accepts_signed_get_and_post_requests() {
    let app = TestApp::spawn().await;
    let admin = app.user(Role::Admin).await;
    let club = app.club(&admin).await;
    let key = signed_key(&app, &admin).await;
    let (secret, signing) = secrets(&key);
    assert!(signing.starts_with("cps_"));
    assert_eq!(key["require_signature"], true);

    let listed: Vec<Value> = app
        .get("/api/v1/admin/api-keys", Some(&admin.token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed[0]["require_signature"], true);
    assert!(listed[0].get("signing_secret").is_none(), "never listed");

    let target = format!(
        "/api/v1/facilities?club_id={}&limit=5",
        club["id"].as_str().unwrap()
    );
    let signed = signature(&signing, now(), &Method::GET, &target, b"");
    let response = send(&app, &secret, Method::GET, &target, None, Some(&signed)).await;
    assert_eq!(response.status(), 200);

    let body = facility_body(&club, "Pista firmada");
    let response = create_facility_signed(&app, &secret, &signing, &body).await;
    assert_eq!(
        response.status(),
        201,
        "the handler read the body after the check"
    );
    let made: Value = response.json().await.unwrap();
    assert_eq!(made["name"], "Pista firmada");
}

#[tokio::test]
async fn signed_key_refusals_have_stable_codes_and_change_nothing() {
    let app = TestApp::spawn().await;
    let admin = app.user(Role::Admin).await;
    let club = app.club(&admin).await;
    let key = signed_key(&app, &admin).await;
    let (secret, signing) = secrets(&key);
    let path = "/api/v1/facilities";
    let body = facility_body(&club, "Pista 1");
    let post = Method::POST;
    let t = now();

    let cases: Vec<(Option<String>, Vec<u8>, &str, &str)> = vec![
        (None, body.clone(), path, "signature_required"),
        (
            Some("t=1,v1=zz".into()),
            body.clone(),
            path,
            "signature_malformed",
        ),
        (
            Some("v1=".to_owned() + &"a".repeat(64)),
            body.clone(),
            path,
            "signature_malformed",
        ),
        (
            Some(format!("t={t}")),
            body.clone(),
            path,
            "signature_malformed",
        ),
        (
            Some(signature(&signing, t - 301, &post, path, &body)),
            body.clone(),
            path,
            "signature_expired",
        ),
        (
            Some(signature(&signing, t + 301, &post, path, &body)),
            body.clone(),
            path,
            "signature_expired",
        ),
        (
            Some(signature("cps_not-the-secret", t, &post, path, &body)),
            body.clone(),
            path,
            "signature_invalid",
        ),
        // Signed over another body, path or query than the one sent.
        (
            Some(signature(
                &signing,
                t,
                &post,
                path,
                &facility_body(&club, "Pista 2"),
            )),
            body.clone(),
            path,
            "signature_invalid",
        ),
        (
            Some(signature(&signing, t, &post, "/api/v1/classes", &body)),
            body.clone(),
            path,
            "signature_invalid",
        ),
        (
            Some(signature(&signing, t, &post, path, &body)),
            body.clone(),
            "/api/v1/facilities?dry_run=1",
            "signature_invalid",
        ),
        (
            Some(signature(&signing, t, &Method::PUT, path, &body)),
            body.clone(),
            path,
            "signature_invalid",
        ),
    ];
    for (header, sent, target, code) in cases {
        let response = send(
            &app,
            &secret,
            post.clone(),
            target,
            Some(&sent),
            header.as_deref(),
        )
        .await;
        assert_problem(response, 401, code).await;
    }
    assert_eq!(app.count("facilities").await, 0, "nothing was made");

    let signed = signature(&signing, now(), &post, path, &body);
    let first = send(
        &app,
        &secret,
        post.clone(),
        path,
        Some(&body),
        Some(&signed),
    )
    .await;
    assert_eq!(first.status(), 201);
    let replayed = send(
        &app,
        &secret,
        post.clone(),
        path,
        Some(&body),
        Some(&signed),
    )
    .await;
    assert_problem(replayed, 401, "signature_replayed").await;
    assert_eq!(app.count("facilities").await, 1, "the replay made nothing");

    // The key itself is still checked first: a wrong key is not a signature problem.
    let forged = format!("{}_nope", key["prefix"].as_str().unwrap());
    assert_problem(
        send(&app, &forged, post, path, Some(&body), Some(&signed)).await,
        401,
        "unauthenticated",
    )
    .await;
}

#[tokio::test]
async fn an_unsigned_key_keeps_working_unsigned() {
    let app = TestApp::spawn().await;
    let admin = app.user(Role::Admin).await;
    let response = app
        .post(
            "/api/v1/admin/api-keys",
            json!({"name": "Plain", "scopes": ["read"]}),
            Some(&admin.token),
        )
        .await;
    assert_eq!(response.status(), 201);
    let key: Value = response.json().await.unwrap();
    assert_eq!(key["require_signature"], false);
    assert!(key.get("signing_secret").is_none());
    let secret = key["secret"].as_str().unwrap();

    let plain = send(&app, secret, Method::GET, "/api/v1/me", None, None).await;
    assert_eq!(plain.status(), 200);
    // A signature header on a key that does not sign is ignored, whatever it holds.
    let ignored = send(
        &app,
        secret,
        Method::GET,
        "/api/v1/me",
        None,
        Some("garbage"),
    )
    .await;
    assert_eq!(ignored.status(), 200);
}

#[tokio::test]
async fn a_rotated_signing_secret_keeps_the_old_one_valid_for_its_grace() {
    let app = TestApp::spawn().await;
    let admin = app.user(Role::Admin).await;
    let key = signed_key(&app, &admin).await;
    let (secret, old) = secrets(&key);
    let id = key["id"].as_str().unwrap();
    let me = |signing: &str| signature(signing, now(), &Method::GET, "/api/v1/me", b"");

    let rotated = app
        .post(
            &format!("/api/v1/admin/api-keys/{id}/signing-secret"),
            json!({"grace_seconds": 2}),
            Some(&admin.token),
        )
        .await;
    assert_eq!(rotated.status(), 201);
    let rotated: Value = rotated.json().await.unwrap();
    let new = rotated["signing_secret"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    assert!(rotated["previous_signing_secret_expires_at"].is_string());

    for signing in [&old, &new] {
        let response = send(
            &app,
            &secret,
            Method::GET,
            "/api/v1/me",
            None,
            Some(&me(signing)),
        )
        .await;
        assert_eq!(response.status(), 200, "both secrets sign during the grace");
    }
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    assert_problem(
        send(
            &app,
            &secret,
            Method::GET,
            "/api/v1/me",
            None,
            Some(&me(&old)),
        )
        .await,
        401,
        "signature_invalid",
    )
    .await;
    assert_eq!(
        send(
            &app,
            &secret,
            Method::GET,
            "/api/v1/me",
            None,
            Some(&me(&new))
        )
        .await
        .status(),
        200
    );

    // Rotating the key itself keeps the requirement, with a signing secret of the new key's own.
    let replaced: Value = app
        .post(
            &format!("/api/v1/admin/api-keys/{id}/rotate"),
            json!({"grace_seconds": 0}),
            Some(&admin.token),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(replaced["require_signature"], true);
    let (replaced_secret, replaced_signing) = secrets(&replaced);
    assert_ne!(replaced_signing, new);
    assert_problem(
        send(
            &app,
            &replaced_secret,
            Method::GET,
            "/api/v1/me",
            None,
            None,
        )
        .await,
        401,
        "signature_required",
    )
    .await;
    let response = send(
        &app,
        &replaced_secret,
        Method::GET,
        "/api/v1/me",
        None,
        Some(&me(&replaced_signing)),
    )
    .await;
    assert_eq!(response.status(), 200);

    // A key that does not sign has no secret to rotate.
    let plain: Value = app
        .post(
            "/api/v1/admin/api-keys",
            json!({"name": "Plain", "scopes": ["read"]}),
            Some(&admin.token),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_problem(
        app.post(
            &format!(
                "/api/v1/admin/api-keys/{}/signing-secret",
                plain["id"].as_str().unwrap()
            ),
            json!({}),
            Some(&admin.token),
        )
        .await,
        409,
        "signature_not_required",
    )
    .await;
}

#[tokio::test]
async fn signed_requests_are_accepted_once_on_the_in_process_backend_too() {
    let app = TestApp::spawn_in_process().await;
    let admin = app.user(Role::Admin).await;
    let key = signed_key(&app, &admin).await;
    let (secret, signing) = secrets(&key);
    let signed = signature(&signing, now(), &Method::GET, "/api/v1/me", b"");

    let first = send(
        &app,
        &secret,
        Method::GET,
        "/api/v1/me",
        None,
        Some(&signed),
    )
    .await;
    assert_eq!(first.status(), 200);
    assert_problem(
        send(
            &app,
            &secret,
            Method::GET,
            "/api/v1/me",
            None,
            Some(&signed),
        )
        .await,
        401,
        "signature_replayed",
    )
    .await;
}

#[tokio::test]
async fn a_signed_request_is_refused_with_503_while_the_nonce_store_is_down() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let redis = OwnRedis::start(port).await;
    let app = TestApp::spawn_with(Setup {
        redis_url: Some(format!("redis://127.0.0.1:{port}")),
        ..Setup::default()
    })
    .await;
    let admin = app.user(Role::Admin).await;
    let club = app.club(&admin).await;
    let key = signed_key(&app, &admin).await;
    let (secret, signing) = secrets(&key);
    redis.stop();

    let body = facility_body(&club, "Pista sin memoria");
    let response = create_facility_signed(&app, &secret, &signing, &body).await;

    let problem = assert_problem(response, 503, "signature_nonces_unavailable").await;
    assert!(
        !problem.to_string().contains("redis"),
        "nothing internal leaks: {problem}"
    );
    assert_eq!(
        app.count("facilities").await,
        0,
        "a signature that cannot be remembered is never accepted"
    );
}
