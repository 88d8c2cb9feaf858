//! The labelled query set (`tests/queries.toml`) is well formed and covers what search promises.

#![allow(clippy::unwrap_used)]

use clubpulse_search::eval::{QuerySet, ndcg_at};

fn query_set() -> QuerySet {
    QuerySet::from_toml(include_str!("queries.toml")).unwrap()
}

#[test]
fn the_query_set_has_at_least_36_queries_in_both_languages() {
    let set = query_set();
    assert!(set.queries.len() >= 36, "{} queries", set.queries.len());
    for language in ["es", "en"] {
        let n = set
            .queries
            .iter()
            .filter(|q| q.language == language)
            .count();
        assert!(n >= 12, "only {n} queries in {language}");
    }
}

#[test]
fn the_query_set_includes_the_promised_queries() {
    let set = query_set();
    for text in [
        "canchas para jugar bajo la lluvia",
        "tenis noche",
        "indoor pool",
        "pádel techado",
        "cancha de fútbol 5 con césped sintético",
    ] {
        assert!(
            set.queries.iter().any(|q| q.text == text),
            "{text:?} is missing"
        );
    }
}

#[test]
fn judgements_name_demo_clubs_and_every_query_has_a_perfect_answer() {
    for query in query_set().queries {
        assert!(query.relevant.iter().all(|j| j.club < 3), "{}", query.text);
        assert!(
            query.relevant.iter().any(|j| j.grade == 3),
            "{}",
            query.text
        );
        // Ranking the judged facilities by grade is ideal.
        let mut ideal: Vec<(usize, String)> = query
            .relevant
            .iter()
            .map(|j| (j.club, j.facility.clone()))
            .collect();
        let grades = query.grades();
        ideal.sort_by_key(|key| std::cmp::Reverse(grades[key]));
        let ndcg = ndcg_at(5, &ideal, &grades).unwrap();
        assert!((ndcg - 1.0).abs() < 1e-12, "{}", query.text);
    }
}
