//! The embedder against the real model (all-MiniLM-L6-v2).
//!
//! The model folder comes from `CLUBPULSE_MODEL_DIR`, or else `var/models/all-MiniLM-L6-v2` at
//! the workspace root. A missing model fails these tests rather than skipping them: a silently
//! skipped test proves nothing.

#![allow(clippy::unwrap_used)]

use std::{
    path::{Path, PathBuf},
    sync::OnceLock,
};

use clubpulse_search::{EmbedError, Embedder, EmbeddingOptions, EmbeddingService};

fn model_dir() -> PathBuf {
    std::env::var_os("CLUBPULSE_MODEL_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../var/models/all-MiniLM-L6-v2"),
        PathBuf::from,
    )
}

/// Loaded once: every test shares the ~90 MB of weights.
fn embedder() -> &'static Embedder {
    static EMBEDDER: OnceLock<Embedder> = OnceLock::new();
    EMBEDDER.get_or_init(|| {
        let dir = model_dir();
        Embedder::load(&dir).unwrap_or_else(|e| {
            panic!(
                "load the model from {} (set CLUBPULSE_MODEL_DIR): {e}",
                dir.display()
            )
        })
    })
}

fn embed_one(text: &str) -> Vec<f32> {
    embedder().embed(&[text]).unwrap().remove(0)
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn max_difference(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn the_model_has_384_dimensions() {
    assert_eq!(embedder().dimensions(), 384);
    assert_eq!(embed_one("covered padel court").len(), 384);
}

#[test]
fn embeddings_have_unit_length() {
    for text in ["indoor pool", "canchas para jugar bajo la lluvia", "", "a"] {
        let v = embed_one(text);
        let norm = dot(&v, &v).sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "{text:?}: norm {norm}");
    }
}

#[test]
fn similarities_match_the_sentence_transformers_reference() {
    // The published all-MiniLM-L6-v2 scores of the sentence-transformers STS example.
    let pairs = [
        (
            "The new movie is awesome",
            "The new movie is so great",
            0.8939,
        ),
        (
            "The cat sits outside",
            "The dog plays in the garden",
            0.2838,
        ),
        ("A man is playing guitar", "A woman watches TV", -0.0327),
    ];
    for (a, b, expected) in pairs {
        let similarity = dot(&embed_one(a), &embed_one(b));
        assert!(
            (similarity - expected).abs() < 5e-4,
            "{a:?} / {b:?}: {similarity}, expected {expected}"
        );
    }
}

#[test]
fn similar_sentences_are_closer_than_unrelated_ones() {
    let query = embed_one("indoor swimming pool");
    let similar = embed_one("A heated pool inside the building with six lanes.");
    let unrelated = embed_one("Outdoor clay tennis court with floodlights.");
    assert!(dot(&query, &similar) > dot(&query, &unrelated) + 0.1);

    let query = embed_one("tennis court with lights for night games");
    let similar = embed_one("Floodlit hard court, open for evening matches.");
    let unrelated = embed_one("Weights room with machines and free weights.");
    assert!(dot(&query, &similar) > dot(&query, &unrelated) + 0.1);
}

#[test]
fn a_text_embeds_the_same_alone_and_in_a_batch() {
    let texts = [
        "pádel techado",
        "Piscina climatizada de 25 metros con seis calles, abierta todo el año.",
        "tenis noche",
        "Rooftop five-a-side pitch with floodlights and netting all around.",
    ];
    let batch = embedder().embed(&texts).unwrap();
    assert_eq!(batch.len(), texts.len());
    for (text, batched) in texts.iter().zip(&batch) {
        let alone = embed_one(text);
        assert!(
            max_difference(&alone, batched) < 1e-4,
            "{text:?} differs by {}",
            max_difference(&alone, batched)
        );
    }
}

#[test]
fn padding_does_not_change_a_short_text() {
    let short = "squash";
    let long = "A long description that forces a lot of padding onto the short text in the same \
                batch: glass-backed squash court with a hardwood floor and good ventilation, \
                the gallery seats a dozen spectators, bookings of thirty minutes.";
    let alone = embed_one(short);
    // Sorting by length puts the short text first; make it share a batch with the long one.
    let padded = embedder().embed(&[long, short]).unwrap().remove(1);
    assert!(max_difference(&alone, &padded) < 1e-4);
}

#[test]
fn texts_longer_than_the_token_limit_are_truncated_not_refused() {
    let long = "court ".repeat(2_000);
    let v = embed_one(&long);
    assert_eq!(v.len(), 384);
    assert!(v.iter().all(|x| x.is_finite()));
}

#[test]
fn embedding_nothing_gives_nothing() {
    assert!(embedder().embed(&[]).unwrap().is_empty());
}

#[test]
fn a_missing_folder_is_named_in_the_error() {
    let err = Embedder::load(Path::new("no/such/model")).unwrap_err();
    assert!(matches!(err, EmbedError::NoModelDir { .. }));
    assert!(err.to_string().contains("no/such/model"), "{err}");
}

#[test]
fn a_folder_without_weights_names_the_missing_file() {
    let dir = std::env::temp_dir().join(format!("clubpulse-model-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(model_dir().join("config.json"), dir.join("config.json")).unwrap();
    std::fs::copy(
        model_dir().join("tokenizer.json"),
        dir.join("tokenizer.json"),
    )
    .unwrap();
    let err = Embedder::load(&dir).unwrap_err();
    std::fs::remove_dir_all(&dir).ok();
    assert!(
        matches!(
            err,
            EmbedError::MissingFile {
                file: "model.safetensors",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("model.safetensors"));
}

#[test]
fn an_unreadable_config_is_reported_with_its_path() {
    let dir = std::env::temp_dir().join(format!("clubpulse-model-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for file in ["config.json", "tokenizer.json", "model.safetensors"] {
        std::fs::write(dir.join(file), b"{ not json").unwrap();
    }
    let err = Embedder::load(&dir).unwrap_err();
    std::fs::remove_dir_all(&dir).ok();
    assert!(matches!(err, EmbedError::InvalidFile { .. }), "{err}");
    assert!(err.to_string().contains("config.json"), "{err}");
}

#[tokio::test]
async fn the_service_caches_a_query_under_its_normalised_form() {
    let service = EmbeddingService::load(model_dir(), EmbeddingOptions::default())
        .await
        .unwrap();
    let first = service.embed_query("Pádel   techado").await.unwrap();
    let second = service.embed_query("  pádel techado ").await.unwrap();
    assert!(
        std::sync::Arc::ptr_eq(&first, &second),
        "the second came from the cache"
    );
    let direct = embed_one("pádel techado");
    assert!(max_difference(&first, &direct) < 1e-4);
}

#[tokio::test]
async fn the_service_embeds_documents_in_order() {
    let service = EmbeddingService::new(
        Embedder::load(&model_dir()).unwrap(),
        EmbeddingOptions {
            max_concurrent: 1,
            cache_capacity: 0,
        },
    );
    let texts = vec!["indoor pool".to_owned(), "clay tennis court".to_owned()];
    let vectors = service.embed_documents(texts.clone()).await.unwrap();
    for (text, vector) in texts.iter().zip(&vectors) {
        assert!(max_difference(&embed_one(text), vector) < 1e-4);
    }
    assert!(
        service
            .embed_documents(Vec::new())
            .await
            .unwrap()
            .is_empty()
    );
}
