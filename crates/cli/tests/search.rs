//! Natural-language search end to end through the real binary: `clubpulse seed --demo` indexes the
//! demo catalogue with the real model, `clubpulse serve` answers the labelled query set
//! (`crates/search/tests/queries.toml`), and the ranking quality is measured as nDCG@5 per mode.
//! Then the rest of the search surface on the same server: odd input, availability filtering,
//! similar facilities, favourites and recommendations.

#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

use std::{
    collections::HashMap,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::Duration,
};

use clubpulse_search::eval::{QuerySet, ndcg_at};
use serde_json::{Value, json};
use uuid::Uuid;

mod support;

const BIN: &str = env!("CARGO_BIN_EXE_clubpulse");
const CLUBS: [&str; 3] = [
    "Club Deportivo Retiro",
    "Club Atlético Palermo",
    "Brooklyn Racquet & Swim Club",
];

fn model_dir() -> PathBuf {
    std::env::var_os("CLUBPULSE_MODEL_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../var/models/all-MiniLM-L6-v2"),
        PathBuf::from,
    )
}

fn clubpulse(database_url: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env_remove("REDIS_URL")
        .env_remove("CLUBPULSE_CONFIG")
        .env("DATABASE_URL", database_url)
        .env("CLUBPULSE_MODEL_DIR", model_dir())
        .env("CLUBPULSE_LOG", "warn");
    cmd
}

struct Server {
    child: Child,
    base: String,
    client: reqwest::Client,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    async fn start(database_url: &str) -> Self {
        let port = support::free_port();
        let child = clubpulse(database_url, &["serve"])
            .env("CLUBPULSE_ADDR", format!("127.0.0.1:{port}"))
            .env("CLUBPULSE_RATE_LIMITS", "off")
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let server = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            client: reqwest::Client::new(),
        };
        for _ in 0..300 {
            if let Ok(r) = server.client.get(server.url("/ready")).send().await
                && r.status() == 200
            {
                return server;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the server did not become ready");
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn get(&self, path: &str, token: Option<&str>) -> reqwest::Response {
        let mut request = self.client.get(self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.unwrap()
    }

    async fn search(&self, query: &[(&str, &str)]) -> reqwest::Response {
        self.client
            .get(self.url("/api/v1/search/facilities"))
            .query(query)
            .send()
            .await
            .unwrap()
    }

    async fn token(&self, email: &str, password: &str) -> String {
        support::token(&self.client, &self.base, email, password).await
    }
}

/// Club id → index in the demo catalogue.
async fn club_indexes(server: &Server) -> HashMap<String, usize> {
    let clubs: Value = server
        .get("/api/v1/clubs", None)
        .await
        .json()
        .await
        .unwrap();
    clubs
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let index = CLUBS
                .iter()
                .position(|name| c["name"] == *name)
                .expect("a demo club");
            (c["id"].as_str().unwrap().to_owned(), index)
        })
        .collect()
}

#[tokio::test]
async fn demo_search_ranks_well_in_spanish_and_english_and_the_search_surface_holds() {
    let database_url = clubpulse_storage::testing::fresh_database().await;
    let seeded = clubpulse(&database_url, &["seed", "--demo"])
        .output()
        .unwrap();
    assert!(
        seeded.status.success(),
        "{}",
        String::from_utf8_lossy(&seeded.stderr)
    );
    assert!(
        String::from_utf8_lossy(&seeded.stdout).contains("search index: 53 facilities indexed")
    );
    let server = Server::start(&database_url).await;
    let clubs = club_indexes(&server).await;

    let set = QuerySet::from_toml(
        &std::fs::read_to_string(
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../search/tests/queries.toml"),
        )
        .unwrap(),
    )
    .unwrap();
    assert!(set.queries.len() >= 30);
    let mut totals: HashMap<&str, f64> = HashMap::new();
    let mut report = String::new();
    for query in &set.queries {
        let grades = query.grades();
        let mut line = format!("{:<45}", query.text);
        for mode in ["hybrid", "vector", "text"] {
            let response = server
                .search(&[("q", &query.text), ("mode", mode), ("limit", "5")])
                .await;
            assert_eq!(response.status(), 200, "{} ({mode})", query.text);
            let answer: Value = response.json().await.unwrap();
            let ranked: Vec<(usize, String)> = answer["results"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| {
                    let club = clubs[r["facility"]["club_id"].as_str().unwrap()];
                    (club, r["facility"]["name"].as_str().unwrap().to_owned())
                })
                .collect();
            let score = ndcg_at(5, &ranked, &grades).unwrap_or(0.0);
            *totals.entry(mode).or_default() += score;
            line.push_str(&format!(" {mode} {score:.2}"));
        }
        report.push_str(&line);
        report.push('\n');
    }
    let n = set.queries.len() as f64;
    let (hybrid, vector, text) = (
        totals["hybrid"] / n,
        totals["vector"] / n,
        totals["text"] / n,
    );
    println!(
        "{report}nDCG@5 over {n} queries: hybrid {hybrid:.3}, vector {vector:.3}, text {text:.3}"
    );
    assert!(hybrid >= 0.8, "hybrid nDCG@5 {hybrid:.3}\n{report}");
    assert!(hybrid >= vector, "hybrid {hybrid:.3} < vector {vector:.3}");
    assert!(hybrid >= text, "hybrid {hybrid:.3} < text {text:.3}");

    // Every result says why it came up.
    let answer: Value = server
        .search(&[("q", "pádel techado")])
        .await
        .json()
        .await
        .unwrap();
    let first = &answer["results"][0];
    assert_eq!(answer["mode"], "hybrid");
    assert_eq!(first["facility"]["sport"], "padel", "{answer}");
    assert!(first["matched"]["similarity"].as_f64().unwrap() > 0.3);
    assert!(
        first["matched"]["words"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w == "pádel" || w == "techado"),
        "{first}"
    );

    odd_input_is_refused_or_answered_never_failed(&server).await;
    filters_narrow_the_results(&server).await;
    suggestions_follow_similarity_and_favourites(&server).await;
}

async fn odd_input_is_refused_or_answered_never_failed(server: &Server) {
    let long = "pista ".repeat(60);
    for (query, expected) in [
        (vec![("q", "")], 422),
        (vec![("q", "   ")], 422),
        (vec![("q", long.as_str())], 422),
        (vec![("q", "tenis"), ("limit", "0")], 422),
        (vec![("q", "tenis"), ("limit", "51")], 422),
        (vec![("q", "tenis"), ("mode", "psychic")], 400),
        (vec![("q", "tenis"), ("sport", "Not A Sport!")], 422),
        (
            vec![("q", "tenis"), ("free_from", "2030-01-01T10:00:00Z")],
            422,
        ),
        (
            vec![
                ("q", "tenis"),
                ("free_from", "2030-01-02T10:00:00Z"),
                ("free_to", "2030-01-01T10:00:00Z"),
            ],
            422,
        ),
        (vec![("q", "tenis"), ("club_id", "nope")], 400),
    ] {
        let response = server.search(&query).await;
        assert_eq!(response.status(), expected, "{query:?}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
    }
    for odd in [
        "🎾🎾🎾",
        "\u{202e}sinet",
        "ñ̃̃̃ ü ß ǅ",
        "tenis\u{0}noche",
        "'; DROP TABLE facilities; --",
        "!!!???",
        "a",
        "的 网球场",
        "&|!():*<->",
    ] {
        let response = server.search(&[("q", odd)]).await;
        assert_eq!(response.status(), 200, "{odd:?}");
        let answer: Value = response.json().await.unwrap();
        assert!(answer["results"].as_array().unwrap().len() <= 10);
    }
}

async fn filters_narrow_the_results(server: &Server) {
    let tennis: Value = server
        .search(&[
            ("q", "pista para jugar"),
            ("sport", "tennis"),
            ("limit", "50"),
        ])
        .await
        .json()
        .await
        .unwrap();
    let results = tennis["results"].as_array().unwrap();
    assert!(!results.is_empty());
    assert!(results.iter().all(|r| r["facility"]["sport"] == "tennis"));

    // A window in the coming days: every facility is free somewhere in it. One long past: none.
    let from = chrono::Utc::now() + chrono::Duration::days(2);
    let to = from + chrono::Duration::days(1);
    let free: Value = server
        .search(&[
            ("q", "tenis"),
            ("free_from", &from.to_rfc3339()),
            ("free_to", &to.to_rfc3339()),
        ])
        .await
        .json()
        .await
        .unwrap();
    assert!(!free["results"].as_array().unwrap().is_empty(), "{free}");
    let past: Value = server
        .search(&[
            ("q", "tenis"),
            ("free_from", "2020-01-01T00:00:00Z"),
            ("free_to", "2020-01-02T00:00:00Z"),
        ])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(past["results"], json!([]), "the past has no free slot");
}

async fn suggestions_follow_similarity_and_favourites(server: &Server) {
    let pool: Value = server
        .search(&[("q", "indoor pool"), ("limit", "1")])
        .await
        .json()
        .await
        .unwrap();
    let pool_id = pool["results"][0]["facility"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(pool["results"][0]["facility"]["sport"], "swimming");
    let similar: Value = server
        .get(
            &format!("/api/v1/facilities/{pool_id}/similar?limit=3"),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    let similar = similar.as_array().unwrap();
    assert_eq!(similar.len(), 3);
    assert!(
        similar
            .iter()
            .all(|s| s["facility"]["id"] != pool_id.as_str())
    );
    assert_eq!(similar[0]["facility"]["sport"], "swimming", "{similar:?}");
    let unknown = server
        .get(
            &format!("/api/v1/facilities/{}/similar", Uuid::new_v4()),
            None,
        )
        .await;
    assert_eq!(unknown.status(), 404);

    let ana = server.token("ana@clubpulse.test", "member-demo-2026").await;
    let none: Value = server
        .get("/api/v1/me/recommendations", Some(&ana))
        .await
        .json()
        .await
        .unwrap();
    let favourite = |method: reqwest::Method, id: &str| {
        server
            .client
            .request(method, server.url(&format!("/api/v1/me/favorites/{id}")))
            .bearer_auth(&ana)
            .send()
    };
    assert_eq!(
        favourite(reqwest::Method::PUT, &pool_id)
            .await
            .unwrap()
            .status(),
        204
    );
    assert_eq!(
        favourite(reqwest::Method::PUT, &pool_id)
            .await
            .unwrap()
            .status(),
        204,
        "again is fine"
    );
    assert_eq!(
        favourite(reqwest::Method::PUT, &Uuid::new_v4().to_string())
            .await
            .unwrap()
            .status(),
        404
    );
    let favorites: Value = server
        .get("/api/v1/me/favorites", Some(&ana))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(favorites.as_array().unwrap().len(), 1);
    let recommended: Value = server
        .get("/api/v1/me/recommendations?limit=5", Some(&ana))
        .await
        .json()
        .await
        .unwrap();
    let recommended = recommended.as_array().unwrap();
    assert!(
        none.as_array().unwrap().is_empty() || !recommended.is_empty(),
        "a favourite gives something to go on"
    );
    assert!(!recommended.is_empty());
    assert!(
        recommended
            .iter()
            .all(|r| r["facility"]["id"] != pool_id.as_str())
    );
    assert_eq!(
        recommended[0]["facility"]["sport"], "swimming",
        "{recommended:?}"
    );
    assert_eq!(
        favourite(reqwest::Method::DELETE, &pool_id)
            .await
            .unwrap()
            .status(),
        204
    );
    assert_eq!(
        favourite(reqwest::Method::DELETE, &pool_id)
            .await
            .unwrap()
            .status(),
        404
    );
    let anonymous = server.get("/api/v1/me/favorites", None).await;
    assert_eq!(anonymous.status(), 401);
}
