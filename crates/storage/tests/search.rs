//! The search index, retrieval, favourites and recommendations against real PostgreSQL.
//!
//! Every test gets a fresh database on the server named by `CLUBPULSE_TEST_DATABASE_URL`
//! (pgvector and unaccent available), migrated with the crate's migrator. Embeddings here are
//! hand-made 384-dimension vectors, so that which facility is nearest is known exactly; texts
//! are written the way the search crate renders facilities.

#![allow(clippy::unwrap_used)]

use chrono::{DateTime, Utc};
use clubpulse_storage::{
    StorageError,
    search::{self, IndexedText, SearchFilters, VectorHit},
    testing,
};
use serde_json::json;
use sqlx::{Connection as _, PgConnection, PgPool};
use uuid::Uuid;

const DIMENSIONS: usize = 384;

/// A database of its own for one test; dropped by [`TestDb::finish`] when the test passes.
struct TestDb {
    pool: PgPool,
    name: String,
    admin_url: String,
}

impl TestDb {
    async fn new() -> Self {
        let admin_url = std::env::var(testing::TEST_DATABASE_URL).unwrap();
        let url = testing::fresh_database().await;
        let name = url.rsplit_once('/').unwrap().1.to_owned();
        let pool = PgPool::connect(&url).await.unwrap();
        Self {
            pool,
            name,
            admin_url,
        }
    }

    async fn finish(self) {
        self.pool.close().await;
        let mut admin = PgConnection::connect(&self.admin_url).await.unwrap();
        sqlx::query(&format!("DROP DATABASE {} WITH (FORCE)", self.name))
            .execute(&mut admin)
            .await
            .unwrap();
    }

    async fn club(&self, name: &str) -> Uuid {
        let id = Uuid::now_v7();
        sqlx::query("INSERT INTO clubs (id, name, timezone) VALUES ($1, $2, 'Europe/Madrid')")
            .bind(id)
            .bind(name)
            .execute(&self.pool)
            .await
            .unwrap();
        id
    }

    async fn facility(&self, club: Uuid, name: &str, sport: &str) -> Uuid {
        let id = Uuid::now_v7();
        sqlx::query(
            "INSERT INTO facilities (id, club_id, name, sport, description, specifications,
                                     opening_hours)
             VALUES ($1, $2, $3, $4, 'A facility.', $5, '{}')",
        )
        .bind(id)
        .bind(club)
        .bind(name)
        .bind(sport)
        .bind(json!({"covered": false}))
        .execute(&self.pool)
        .await
        .unwrap();
        id
    }

    async fn updated_at(&self, facility: Uuid) -> DateTime<Utc> {
        sqlx::query_scalar("SELECT updated_at FROM facilities WHERE id = $1")
            .bind(facility)
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }

    /// Indexes a facility with the given text parts and embedding.
    async fn index(&self, facility: Uuid, sport: &str, details: &str, embedding: &[f32]) {
        let name: String = sqlx::query_scalar("SELECT name FROM facilities WHERE id = $1")
            .bind(facility)
            .fetch_one(&self.pool)
            .await
            .unwrap();
        let text = format!("{name}. {sport}. {details}");
        let parts = IndexedText {
            text: &text,
            name: &name,
            sport,
            details,
        };
        let seen = self.updated_at(facility).await;
        let stored = search::store_index(&self.pool, facility, seen, &parts, embedding)
            .await
            .unwrap();
        assert!(stored, "indexing {name}");
    }

    async fn retire(&self, facility: Uuid) {
        sqlx::query("UPDATE facilities SET retired_at = now() WHERE id = $1")
            .bind(facility)
            .execute(&self.pool)
            .await
            .unwrap();
    }

    async fn user(&self) -> Uuid {
        let id = Uuid::now_v7();
        sqlx::query(
            "INSERT INTO users (id, email, name, password_hash) VALUES ($1, $2, 'Member', 'x')",
        )
        .bind(id)
        .bind(format!("{}@example.test", id.simple()))
        .execute(&self.pool)
        .await
        .unwrap();
        id
    }

    /// A booking of `facility` by `user` in the given status, `days` days from now.
    async fn booking(&self, user: Uuid, facility: Uuid, status: &str, days: i32) {
        sqlx::query(
            "INSERT INTO bookings (id, facility_id, user_id, status, during, blocks, hold_expires_at,
                                   price_cents, currency)
             VALUES ($1, $2, $3, $4,
                     tstzrange(now() + make_interval(days => $5),
                               now() + make_interval(days => $5, hours => 1)),
                     tstzrange(now() + make_interval(days => $5),
                               now() + make_interval(days => $5, hours => 1)),
                     now(), 0, 'EUR')",
        )
        .bind(Uuid::now_v7())
        .bind(facility)
        .bind(user)
        .bind(status)
        .bind(days)
        .execute(&self.pool)
        .await
        .unwrap();
    }
}

/// A unit vector along `axis`.
fn axis(axis: usize) -> Vec<f32> {
    blend(&[(axis, 1.0)])
}

/// A unit vector mixing axes with the given weights.
fn blend(parts: &[(usize, f32)]) -> Vec<f32> {
    let mut v = vec![0.0; DIMENSIONS];
    for &(axis, weight) in parts {
        v[axis] += weight;
    }
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter().map(|x| x / norm).collect()
}

/// A unit vector `weight` along axis 0 plus pseudo-random noise in every dimension (seeded, so
/// reproducible): like real embeddings, spread out rather than on a few axes.
fn noisy(weight: f32, seed: usize) -> Vec<f32> {
    let mut state = (seed as u64)
        .wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(1);
    let mut v: Vec<f32> = (0..DIMENSIONS)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect();
    v[0] += weight;
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter().map(|x| x / norm).collect()
}

fn sorted(mut ids: Vec<Uuid>) -> Vec<Uuid> {
    ids.sort();
    ids
}

fn ids(hits: &[VectorHit]) -> Vec<Uuid> {
    hits.iter().map(|h| h.facility_id).collect()
}

fn no_filters() -> SearchFilters {
    SearchFilters::default()
}

#[tokio::test]
async fn the_nearest_facilities_come_first_with_their_cosine_similarity() {
    let db = TestDb::new().await;
    let club = db.club("Retiro").await;
    let exact = db.facility(club, "Exact", "tennis").await;
    let close = db.facility(club, "Close", "tennis").await;
    let far = db.facility(club, "Far", "tennis").await;
    db.index(exact, "tennis", "x", &axis(0)).await;
    db.index(close, "tennis", "x", &blend(&[(0, 1.0), (1, 1.0)]))
        .await;
    db.index(far, "tennis", "x", &axis(2)).await;
    let mut conn = db.pool.acquire().await.unwrap();

    let hits = search::vector_top_k(&mut conn, &axis(0), 2, &no_filters())
        .await
        .unwrap();

    assert_eq!(ids(&hits), vec![exact, close]);
    assert!((hits[0].similarity - 1.0).abs() < 1e-6);
    assert!((hits[1].similarity - std::f64::consts::FRAC_1_SQRT_2).abs() < 1e-6);
    drop(conn);
    db.finish().await;
}

#[tokio::test]
async fn a_filtered_vector_search_still_returns_k_results_through_the_hnsw_index() {
    let db = TestDb::new().await;
    let big = db.club("Big club").await;
    let small = db.club("Small club").await;
    // 300 facilities of one club nearer the probe (axis 0) than any of the other club's five,
    // so an index walk that stopped after ef_search candidates would find none of the five.
    for i in 0..300 {
        let id = db.facility(big, &format!("Big {i}"), "tennis").await;
        db.index(id, "tennis", "x", &noisy(12.0, i)).await;
    }
    let mut wanted = Vec::new();
    for i in 0..5 {
        let id = db.facility(small, &format!("Small {i}"), "padel").await;
        db.index(id, "padel", "x", &noisy(2.0, 1000 + i)).await;
        wanted.push(id);
    }
    let mut conn = db.pool.acquire().await.unwrap();
    // Make the planner walk the HNSW index even on a table this small, as it does on a large
    // one: no sequential scan, and no btree index that could find the club's rows directly.
    for statement in [
        "SET enable_seqscan = off",
        "DROP INDEX facilities_listing_idx, facilities_club_name_key",
    ] {
        sqlx::query(statement).execute(&mut *conn).await.unwrap();
    }

    let filters = SearchFilters {
        club_id: Some(small),
        ..SearchFilters::default()
    };
    let hits = search::vector_top_k(&mut conn, &axis(0), 5, &filters)
        .await
        .unwrap();
    assert_eq!(sorted(ids(&hits)), sorted(wanted.clone()));

    let by_sport = SearchFilters {
        sport: Some("padel".to_owned()),
        ..SearchFilters::default()
    };
    let hits = search::vector_top_k(&mut conn, &axis(0), 3, &by_sport)
        .await
        .unwrap();
    assert_eq!(hits.len(), 3);
    assert!(hits.iter().all(|h| wanted.contains(&h.facility_id)));
    drop(conn);
    db.finish().await;
}

#[tokio::test]
async fn text_search_ignores_accents_and_stems_spanish_and_english() {
    let db = TestDb::new().await;
    let club = db.club("Palermo").await;
    let padel = db.facility(club, "Pádel Techado 1", "padel").await;
    let pool = db.facility(club, "Indoor Lap Pool", "swimming").await;
    db.index(
        padel,
        "pádel, padel, paddle tennis",
        "Techada, cubierta, bajo techo, para jugar bajo la lluvia, covered, roofed.",
        &axis(0),
    )
    .await;
    db.index(
        pool,
        "natación, piscina, swimming pool",
        "Climatizada, agua caliente, heated. Interior, indoor.",
        &axis(1),
    )
    .await;

    let hits = search::text_top_k(&db.pool, "padel techado", 10, &no_filters())
        .await
        .unwrap();
    assert_eq!(hits[0].facility_id, padel);
    assert!(hits[0].all_words);
    assert_eq!(hits[0].matched_words, vec!["padel", "techado"]);

    // Plural Spanish and an accent the text does not have.
    let hits = search::text_top_k(&db.pool, "piscinas climatizadas", 10, &no_filters())
        .await
        .unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].facility_id, pool);

    // English stemming: "pools" finds "pool", "heating" finds "heated".
    let hits = search::text_top_k(&db.pool, "heating pools", 10, &no_filters())
        .await
        .unwrap();
    assert_eq!(hits[0].facility_id, pool);
    assert!(hits[0].all_words);
    db.finish().await;
}

#[tokio::test]
async fn facilities_with_every_word_come_before_those_with_some_most_words_first() {
    let db = TestDb::new().await;
    let club = db.club("Retiro").await;
    let all = db.facility(club, "Pista 1", "tennis").await;
    let two = db.facility(club, "Pista 2", "tennis").await;
    let one = db.facility(club, "Pista 3", "tennis").await;
    let none = db.facility(club, "Pista 4", "tennis").await;
    db.index(all, "tenis", "Techada, con luces y vestuarios.", &axis(0))
        .await;
    db.index(two, "tenis", "Techada, con luces.", &axis(0))
        .await;
    // "Tenis" in the name weighs more than the details, but one word is still one word.
    db.index(one, "tenis tenis tenis", "Solo de día.", &axis(0))
        .await;
    db.index(none, "squash", "Suelo de madera.", &axis(0)).await;

    let hits = search::text_top_k(
        &db.pool,
        "tenis techada con luces y vestuarios",
        10,
        &no_filters(),
    )
    .await
    .unwrap();

    let order: Vec<Uuid> = hits.iter().map(|h| h.facility_id).collect();
    assert_eq!(order, vec![all, two, one]);
    assert!(hits[0].all_words && !hits[1].all_words);
    // "con" and "y" are stop words: they are neither required nor reported.
    assert_eq!(
        hits[0].matched_words,
        vec!["tenis", "techada", "luces", "vestuarios"]
    );
    assert_eq!(hits[2].matched_words, vec!["tenis"]);
    db.finish().await;
}

#[tokio::test]
async fn text_search_honours_filters_and_finds_nothing_for_no_words() {
    let db = TestDb::new().await;
    let retiro = db.club("Retiro").await;
    let palermo = db.club("Palermo").await;
    let a = db.facility(retiro, "Tenis A", "tennis").await;
    let b = db.facility(palermo, "Tenis B", "tennis").await;
    let c = db.facility(palermo, "Pádel C", "padel").await;
    for id in [a, b, c] {
        db.index(id, "tenis pádel", "cubierta", &axis(0)).await;
    }

    let in_palermo = SearchFilters {
        club_id: Some(palermo),
        ..SearchFilters::default()
    };
    let hits = search::text_top_k(&db.pool, "cubierta", 10, &in_palermo)
        .await
        .unwrap();
    let found: Vec<Uuid> = hits.iter().map(|h| h.facility_id).collect();
    assert_eq!(sorted(found), sorted(vec![b, c]));

    let padel_in_palermo = SearchFilters {
        club_id: Some(palermo),
        sport: Some("padel".to_owned()),
    };
    let hits = search::text_top_k(&db.pool, "cubierta", 10, &padel_in_palermo)
        .await
        .unwrap();
    assert_eq!(
        hits.iter().map(|h| h.facility_id).collect::<Vec<_>>(),
        vec![c]
    );

    for nothing in ["", "   ", "de la the", "¿?"] {
        let hits = search::text_top_k(&db.pool, nothing, 10, &no_filters())
            .await
            .unwrap();
        assert!(hits.is_empty(), "{nothing:?} found {hits:?}");
    }
    db.finish().await;
}

#[tokio::test]
async fn retired_facilities_never_appear() {
    let db = TestDb::new().await;
    let club = db.club("Retiro").await;
    let live = db.facility(club, "Live court", "tennis").await;
    let retired = db.facility(club, "Retired court", "tennis").await;
    db.index(live, "tenis", "cubierta", &blend(&[(0, 1.0), (1, 0.2)]))
        .await;
    db.index(retired, "tenis", "cubierta", &axis(0)).await;
    let member = db.user().await;
    search::add_favorite(&db.pool, member, retired)
        .await
        .unwrap();
    db.booking(member, retired, "confirmed", -3).await;
    db.retire(retired).await;
    let mut conn = db.pool.acquire().await.unwrap();

    let vector = search::vector_top_k(&mut conn, &axis(0), 10, &no_filters())
        .await
        .unwrap();
    assert_eq!(ids(&vector), vec![live]);
    let text = search::text_top_k(&mut *conn, "cubierta", 10, &no_filters())
        .await
        .unwrap();
    assert_eq!(text.len(), 1);
    assert_eq!(text[0].facility_id, live);
    // Similar to the retired one: the live one, never the retired one itself.
    let similar = search::similar_to(&mut conn, retired, 10).await.unwrap();
    assert_eq!(ids(&similar), vec![live]);
    let similar = search::similar_to(&mut conn, live, 10).await.unwrap();
    assert!(similar.is_empty());
    // The retired favourite is not listed, but still says what the member likes.
    assert!(
        search::list_favorites(&mut *conn, member)
            .await
            .unwrap()
            .is_empty()
    );
    let recommended = search::recommendation_candidates(&mut conn, member, 10)
        .await
        .unwrap();
    assert_eq!(ids(&recommended), vec![live]);
    let err = search::add_favorite(&mut *conn, member, retired)
        .await
        .unwrap_err();
    assert!(
        matches!(err, StorageError::MissingReference("facility")),
        "{err}"
    );
    assert!(
        search::facilities_to_index(&mut *conn, false, None, 100)
            .await
            .unwrap()
            .iter()
            .all(|c| c.id != retired)
    );
    drop(conn);
    db.finish().await;
}

#[tokio::test]
async fn similar_facilities_exclude_the_facility_itself_and_come_nearest_first() {
    let db = TestDb::new().await;
    let club = db.club("Retiro").await;
    let probe = db.facility(club, "Probe", "padel").await;
    let near = db.facility(club, "Near", "padel").await;
    let nearer = db.facility(club, "Nearer", "padel").await;
    let unindexed = db.facility(club, "Unindexed", "padel").await;
    db.index(probe, "padel", "x", &axis(0)).await;
    db.index(near, "padel", "x", &blend(&[(0, 1.0), (1, 1.0)]))
        .await;
    db.index(nearer, "padel", "x", &blend(&[(0, 2.0), (1, 1.0)]))
        .await;
    let mut conn = db.pool.acquire().await.unwrap();

    let similar = search::similar_to(&mut conn, probe, 10).await.unwrap();
    assert_eq!(ids(&similar), vec![nearer, near]);
    assert!(similar[0].similarity > similar[1].similarity);
    assert!(
        search::similar_to(&mut conn, unindexed, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        search::similar_to(&mut conn, Uuid::now_v7(), 10)
            .await
            .unwrap()
            .is_empty()
    );
    drop(conn);
    db.finish().await;
}

#[tokio::test]
async fn indexing_skips_a_version_that_changed_and_lists_stale_facilities_again() {
    let db = TestDb::new().await;
    let club = db.club("Retiro").await;
    let a = db.facility(club, "A", "tennis").await;
    let b = db.facility(club, "B", "tennis").await;

    let due = search::facilities_to_index(&db.pool, true, None, 10)
        .await
        .unwrap();
    assert_eq!(
        due.iter().map(|c| c.id).collect::<Vec<_>>(),
        sorted(vec![a, b])
    );
    let first = due.iter().find(|c| c.id == a).unwrap();
    assert_eq!(first.name, "A");
    assert_eq!(first.specifications, json!({"covered": false}));

    db.index(a, "tenis", "x", &axis(0)).await;
    let due = search::facilities_to_index(&db.pool, true, None, 10)
        .await
        .unwrap();
    assert_eq!(due.iter().map(|c| c.id).collect::<Vec<_>>(), vec![b]);

    // B is edited between rendering and storing: the stale rendering is dropped.
    let seen = db.updated_at(b).await;
    sqlx::query(
        "UPDATE facilities SET name = 'B2', updated_at = now() + interval '1 second' WHERE id = $1",
    )
    .bind(b)
    .execute(&db.pool)
    .await
    .unwrap();
    let parts = IndexedText {
        text: "B. tenis. x",
        name: "B",
        sport: "tenis",
        details: "x",
    };
    let stored = search::store_index(&db.pool, b, seen, &parts, &axis(1))
        .await
        .unwrap();
    assert!(!stored);

    // An edit after indexing makes A due again.
    sqlx::query("UPDATE facilities SET updated_at = now() + interval '1 second' WHERE id = $1")
        .bind(a)
        .execute(&db.pool)
        .await
        .unwrap();
    let due = search::facilities_to_index(&db.pool, true, None, 10)
        .await
        .unwrap();
    assert_eq!(
        due.iter().map(|c| c.id).collect::<Vec<_>>(),
        sorted(vec![a, b])
    );
    db.finish().await;
}

#[tokio::test]
async fn a_full_reindex_pages_through_every_live_facility_by_id() {
    let db = TestDb::new().await;
    let club = db.club("Retiro").await;
    let mut all = Vec::new();
    for i in 0..5 {
        let id = db.facility(club, &format!("F{i}"), "tennis").await;
        db.index(id, "tenis", "x", &axis(i)).await;
        all.push(id);
    }
    assert!(
        search::facilities_to_index(&db.pool, true, None, 10)
            .await
            .unwrap()
            .is_empty()
    );

    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = search::facilities_to_index(&db.pool, false, after, 2)
            .await
            .unwrap();
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        seen.extend(page.iter().map(|c| c.id));
    }
    assert_eq!(seen, sorted(all));
    db.finish().await;
}

#[tokio::test]
async fn an_embedding_of_the_wrong_size_is_refused() {
    let db = TestDb::new().await;
    let club = db.club("Retiro").await;
    let a = db.facility(club, "A", "tennis").await;
    let seen = db.updated_at(a).await;
    let parts = IndexedText {
        text: "A",
        name: "A",
        sport: "tenis",
        details: "",
    };
    let err = search::store_index(&db.pool, a, seen, &parts, &[0.5, 0.5])
        .await
        .unwrap_err();
    assert!(matches!(err, StorageError::Database(_)), "{err}");
    let err = search::store_index(&db.pool, a, seen, &parts, &vec![f32::NAN; DIMENSIONS])
        .await
        .unwrap_err();
    assert!(matches!(err, StorageError::Database(_)), "{err}");
    db.finish().await;
}

#[tokio::test]
async fn favourites_are_idempotent_removable_and_listed_newest_first() {
    let db = TestDb::new().await;
    let club = db.club("Retiro").await;
    let a = db.facility(club, "A", "tennis").await;
    let b = db.facility(club, "B", "padel").await;
    let member = db.user().await;

    assert!(search::add_favorite(&db.pool, member, a).await.unwrap());
    assert!(!search::add_favorite(&db.pool, member, a).await.unwrap());
    assert!(search::add_favorite(&db.pool, member, b).await.unwrap());
    let listed: Vec<Uuid> = search::list_favorites(&db.pool, member)
        .await
        .unwrap()
        .iter()
        .map(|f| f.facility_id)
        .collect();
    assert_eq!(listed, vec![b, a]);

    assert!(search::remove_favorite(&db.pool, member, a).await.unwrap());
    assert!(!search::remove_favorite(&db.pool, member, a).await.unwrap());
    let listed = search::list_favorites(&db.pool, member).await.unwrap();
    assert_eq!(listed.len(), 1);

    let err = search::add_favorite(&db.pool, Uuid::now_v7(), a)
        .await
        .unwrap_err();
    assert!(
        matches!(err, StorageError::MissingReference("user")),
        "{err}"
    );
    let err = search::add_favorite(&db.pool, member, Uuid::now_v7())
        .await
        .unwrap_err();
    assert!(
        matches!(err, StorageError::MissingReference("facility")),
        "{err}"
    );
    db.finish().await;
}

#[tokio::test]
async fn recommendations_are_nearest_the_centroid_of_favourites_and_confirmed_bookings() {
    let db = TestDb::new().await;
    let club = db.club("Retiro").await;
    let favourite = db.facility(club, "Favourite", "tennis").await;
    let booked = db.facility(club, "Booked", "tennis").await;
    let cancelled = db.facility(club, "Cancelled", "padel").await;
    let between = db.facility(club, "Between", "tennis").await;
    let elsewhere = db.facility(club, "Elsewhere", "squash").await;
    db.index(favourite, "tenis", "x", &axis(0)).await;
    db.index(booked, "tenis", "x", &axis(1)).await;
    db.index(cancelled, "padel", "x", &axis(2)).await;
    db.index(between, "tenis", "x", &blend(&[(0, 1.0), (1, 1.0)]))
        .await;
    db.index(elsewhere, "squash", "x", &blend(&[(0, 1.0), (3, 2.0)]))
        .await;
    let member = db.user().await;
    let newcomer = db.user().await;
    search::add_favorite(&db.pool, member, favourite)
        .await
        .unwrap();
    db.booking(member, booked, "confirmed", -7).await;
    // A cancelled booking is no sign of taste, and does not hide the facility.
    db.booking(member, cancelled, "cancelled", -1).await;
    let mut conn = db.pool.acquire().await.unwrap();

    let recommended = search::recommendation_candidates(&mut conn, member, 10)
        .await
        .unwrap();

    // The centroid of axes 0 and 1 is exactly "between".
    assert_eq!(ids(&recommended), vec![between, elsewhere, cancelled]);
    assert!((recommended[0].similarity - 1.0).abs() < 1e-6);
    assert!(
        search::recommendation_candidates(&mut conn, newcomer, 10)
            .await
            .unwrap()
            .is_empty()
    );
    drop(conn);
    db.finish().await;
}
