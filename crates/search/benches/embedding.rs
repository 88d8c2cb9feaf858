//! Embedding latency with the real model: one search query, a batch of 32 queries, and one
//! rendered facility (indexing: about 230 tokens, so far slower than a query).
//!
//! The model folder comes from `CLUBPULSE_MODEL_DIR`, or else `var/models/all-MiniLM-L6-v2` at
//! the workspace root. Run with `cargo bench -p clubpulse-search`.

#![allow(clippy::unwrap_used)]

use std::{
    hint::black_box,
    path::{Path, PathBuf},
    time::Duration,
};

use clubpulse_search::{Embedder, SearchDocument};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::json;

fn model_dir() -> PathBuf {
    std::env::var_os("CLUBPULSE_MODEL_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../var/models/all-MiniLM-L6-v2"),
        PathBuf::from,
    )
}

/// 32 short search queries, in both languages.
const QUERIES: [&str; 32] = [
    "canchas para jugar bajo la lluvia",
    "tenis noche",
    "indoor pool",
    "pádel techado",
    "cancha de fútbol 5 con césped sintético",
    "covered tennis court",
    "pista de tenis de tierra batida",
    "clay court",
    "piscina climatizada",
    "lap pool with lanes for training",
    "squash con duchas",
    "gimnasio con pesas",
    "yoga studio",
    "rocódromo para escalar",
    "baloncesto bajo techo",
    "outdoor basketball court with lights",
    "voleibol de playa",
    "badminton",
    "ping pong",
    "hockey sobre césped",
    "fútbol 7 con vestuarios",
    "five-a-side pitch with floodlights",
    "natural grass football pitch",
    "indoor padel court",
    "padel with racket rental",
    "pádel al aire libre",
    "where can I play when it is raining",
    "tenis con cafetería",
    "sala con aire acondicionado",
    "rooftop",
    "beach volleyball at night",
    "multi-sport court for summer camps",
];

/// A facility rendered as it is indexed.
fn document() -> String {
    SearchDocument::render(
        "Pista de Tenis 3 (Cubierta)",
        "tennis",
        "Pista de resina bajo una cubierta metálica y con buena iluminación, así que se juega \
         igual con lluvia que con sol. Covered hard court, playable in any weather.",
        &json!({
            "covered": true, "indoor": false, "lighting": true, "surface": "hard",
            "capacity": 4, "amenities": ["changing_rooms", "showers", "lockers"]
        }),
    )
    .text()
}

fn embedding(c: &mut Criterion) {
    let dir = model_dir();
    let embedder = Embedder::load(&dir).unwrap_or_else(|e| {
        panic!(
            "load the model from {} (set CLUBPULSE_MODEL_DIR): {e}",
            dir.display()
        )
    });
    let document = document();

    let mut group = c.benchmark_group("embedding");
    group.measurement_time(Duration::from_secs(10));
    group.throughput(Throughput::Elements(1));
    group.bench_function("one query", |b| {
        b.iter(|| embedder.embed(black_box(&[QUERIES[0]])).unwrap());
    });
    group.throughput(Throughput::Elements(32));
    group.bench_function("batch of 32 queries", |b| {
        b.iter(|| embedder.embed(black_box(&QUERIES)).unwrap());
    });
    group.throughput(Throughput::Elements(1));
    group.bench_function("one facility document", |b| {
        b.iter(|| embedder.embed(black_box(&[document.as_str()])).unwrap());
    });
    group.finish();
}

criterion_group!(benches, embedding);
criterion_main!(benches);
