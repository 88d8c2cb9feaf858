//! Search scenarios: query latency through the API (with and without the query-embedding cache)
//! and the recall of the HNSW index against an exact scan, straight on PostgreSQL.

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

use anyhow::Context as _;
use sqlx::{Connection as _, PgConnection};

use crate::Request;

/// What members type: Spanish and English, short and long.
pub const QUERIES: &[&str] = &[
    "canchas para jugar bajo la lluvia",
    "tenis noche",
    "indoor pool",
    "pádel techado",
    "cancha de fútbol 5 con césped sintético",
    "squash court",
    "piscina climatizada",
    "basketball gym with air conditioning",
    "pista de tenis de tierra batida",
    "outdoor padel with lights",
    "sala de yoga",
    "court for badminton",
    "futbol 7 iluminado",
    "heated lap pool for training",
    "pista cubierta para jugar en invierno",
    "beach volleyball",
];

/// A path per request: each client starts at its own query; with `unique`, every request adds a
/// number, so no query embedding comes from the cache.
pub struct QueryPaths {
    start: usize,
    unique: bool,
    next: AtomicU64,
}

impl QueryPaths {
    pub fn path(&self) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let index = (self.start + usize::try_from(n).unwrap_or(0)) % QUERIES.len();
        let query = if self.unique {
            format!("{} {n}", QUERIES[index])
        } else {
            QUERIES[index].to_owned()
        };
        let encoded: String = query
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    char::from(b).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect();
        format!("/api/v1/search/facilities?q={encoded}")
    }
}

/// One request per client, cycling through [`QUERIES`].
pub fn requests(clients: usize, unique: bool) -> Vec<Request> {
    (0..clients)
        .map(|i| Request {
            method: reqwest::Method::GET,
            path: String::new(),
            token: None,
            body: None,
            sequence: None,
            queries: Some(Arc::new(QueryPaths {
                start: i,
                unique,
                next: AtomicU64::new(0),
            })),
        })
        .collect()
}

/// Recall@10 of the application's vector search (HNSW, as configured per query) against an exact
/// scan, over `samples` query vectors: midpoints of random pairs of stored facility embeddings, so
/// that no query coincides with an indexed vector.
pub async fn recall(database_url: &str, samples: usize) -> anyhow::Result<f64> {
    let mut conn = PgConnection::connect(database_url)
        .await
        .context("connecting to PostgreSQL")?;
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT a.search_embedding::text, b.search_embedding::text
         FROM (SELECT search_embedding, row_number() OVER (ORDER BY random()) AS n
               FROM facilities WHERE search_embedding IS NOT NULL AND retired_at IS NULL) a
         JOIN (SELECT search_embedding, row_number() OVER (ORDER BY random()) AS n
               FROM facilities WHERE search_embedding IS NOT NULL AND retired_at IS NULL) b
           USING (n)
         LIMIT $1",
    )
    .bind(i64::try_from(samples).unwrap_or(200))
    .fetch_all(&mut conn)
    .await?;
    anyhow::ensure!(!rows.is_empty(), "no indexed facilities");
    let mut total = 0.0;
    for (a, b) in &rows {
        let (a, b) = (parse(a)?, parse(b)?);
        let mut query: Vec<f32> = a.iter().zip(&b).map(|(x, y)| x + y).collect();
        let norm = query
            .iter()
            .map(|x| x * x)
            .sum::<f32>()
            .sqrt()
            .max(f32::EPSILON);
        query.iter_mut().for_each(|x| *x /= norm);
        let approximate: Vec<uuid::Uuid> = clubpulse_storage::search::vector_top_k(
            &mut conn,
            &query,
            10,
            &clubpulse_storage::search::SearchFilters::default(),
        )
        .await?
        .into_iter()
        .map(|hit| hit.facility_id)
        .collect();
        let literal = format!(
            "[{}]",
            query
                .iter()
                .map(f32::to_string)
                .collect::<Vec<_>>()
                .join(",")
        );
        let mut tx = conn.begin().await?;
        // No index: the planner must compare the query with every row.
        sqlx::query("SET LOCAL enable_indexscan = off")
            .execute(&mut *tx)
            .await?;
        let exact: Vec<uuid::Uuid> = sqlx::query_scalar(
            "SELECT id FROM facilities WHERE retired_at IS NULL AND search_embedding IS NOT NULL
             ORDER BY search_embedding <=> $1::vector LIMIT 10",
        )
        .bind(literal)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let found = exact.iter().filter(|id| approximate.contains(id)).count();
        total += found as f64 / exact.len().max(1) as f64;
    }
    Ok(total / rows.len() as f64)
}

fn parse(vector: &str) -> anyhow::Result<Vec<f32>> {
    vector
        .trim_matches(['[', ']'])
        .split(',')
        .map(|x| x.trim().parse::<f32>().context("a vector component"))
        .collect()
}
