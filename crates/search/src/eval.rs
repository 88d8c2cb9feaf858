//! Measuring retrieval quality: nDCG and the labelled query set.
//!
//! A labelled query set grades facilities 0–3 for each query (3: exactly what was asked for; 2:
//! a good answer missing one wish; 1: related, a fallback; 0 or unlisted: not an answer). Graded
//! judgements suit facility search, where "a covered court" and "a covered padel court" are
//! both better answers to "pádel techado" than an outdoor one, but not equally good.
//!
//! Facilities are named by club index and facility name, as in the demo catalogue, so a set
//! survives re-seeding (which draws new ids).

use std::{
    collections::{HashMap, HashSet},
    hash::Hash,
};

use serde::Deserialize;

/// Normalised discounted cumulative gain of the first `k` results.
///
/// Gain is `2^grade − 1` (a grade-3 answer is worth seven grade-1 ones), discounted by
/// `log2(position + 1)`, and divided by the gain of the ideal ordering of `graded`. Items absent
/// from `graded` have grade 0; an item repeated in `ranked` gains only at its first place.
/// `None` when `k` is 0 or no item is relevant (the ideal gain is zero, so nDCG is undefined).
pub fn ndcg_at<K>(k: usize, ranked: &[K], graded: &HashMap<K, u8>) -> Option<f64>
where
    K: Eq + Hash,
{
    let mut ideal: Vec<u8> = graded.values().copied().filter(|&g| g > 0).collect();
    ideal.sort_unstable_by(|a, b| b.cmp(a));
    let idcg: f64 = ideal
        .iter()
        .take(k)
        .enumerate()
        .map(|(i, &g)| discounted(i, g))
        .sum();
    if idcg <= 0.0 {
        return None;
    }
    let mut seen = HashSet::new();
    let dcg: f64 = ranked
        .iter()
        .take(k)
        .enumerate()
        .filter(|(_, item)| seen.insert(*item))
        .map(|(i, item)| discounted(i, graded.get(item).copied().unwrap_or(0)))
        .sum();
    Some(dcg / idcg)
}

/// The gain of `grade` at 0-based `position`.
fn discounted(position: usize, grade: u8) -> f64 {
    let gain = 2f64.powi(i32::from(grade)) - 1.0;
    gain / (position as f64 + 2.0).log2()
}

/// The highest grade a judgement may give.
pub const MAX_GRADE: u8 = 3;

/// A set of search queries with graded relevance over the demo catalogue.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuerySet {
    /// The queries.
    #[serde(rename = "query")]
    pub queries: Vec<LabelledQuery>,
}

/// One query and its judgements.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelledQuery {
    /// What the member types.
    pub text: String,
    /// `es` or `en`: the language the query is written in.
    pub language: String,
    /// The facilities with a grade above 0 (every other facility is graded 0).
    pub relevant: Vec<Judgement>,
}

/// How well one facility answers a query.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Judgement {
    /// The club's index in the demo catalogue.
    pub club: usize,
    /// The facility's name within its club.
    pub facility: String,
    /// 1 to [`MAX_GRADE`].
    pub grade: u8,
}

/// A query set file that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("invalid query set: {0}")]
pub struct QuerySetError(String);

impl QuerySet {
    /// Parses and checks a query set in TOML (`[[query]]` tables with `text`, `language` and
    /// `relevant = [{ club, facility, grade }, …]`).
    ///
    /// Refused: an empty or repeated query text, a language other than `es` or `en`, a query
    /// with no relevant facility (nDCG would be undefined), a grade outside 1–3, or a facility
    /// judged twice for one query.
    pub fn from_toml(text: &str) -> Result<Self, QuerySetError> {
        let set: QuerySet = toml::from_str(text).map_err(|e| QuerySetError(e.to_string()))?;
        let mut texts = HashSet::new();
        for query in &set.queries {
            let name = &query.text;
            if name.trim().is_empty() {
                return Err(QuerySetError("a query has an empty text".to_owned()));
            }
            if !texts.insert(name.as_str()) {
                return Err(QuerySetError(format!("{name:?} appears twice")));
            }
            if !["es", "en"].contains(&query.language.as_str()) {
                return Err(QuerySetError(format!(
                    "{name:?}: language {:?} is neither es nor en",
                    query.language
                )));
            }
            if query.relevant.is_empty() {
                return Err(QuerySetError(format!("{name:?} has no relevant facility")));
            }
            let mut judged = HashSet::new();
            for j in &query.relevant {
                if !(1..=MAX_GRADE).contains(&j.grade) {
                    return Err(QuerySetError(format!(
                        "{name:?}: grade {} for {:?} is outside 1–{MAX_GRADE}",
                        j.grade, j.facility
                    )));
                }
                if !judged.insert((j.club, j.facility.as_str())) {
                    return Err(QuerySetError(format!(
                        "{name:?}: {:?} of club {} is judged twice",
                        j.facility, j.club
                    )));
                }
            }
        }
        Ok(set)
    }
}

impl LabelledQuery {
    /// The judgements keyed by `(club index, facility name)`, as [`ndcg_at`] takes them.
    pub fn grades(&self) -> HashMap<(usize, String), u8> {
        self.relevant
            .iter()
            .map(|j| ((j.club, j.facility.clone()), j.grade))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grades(pairs: &[(&'static str, u8)]) -> HashMap<&'static str, u8> {
        pairs.iter().copied().collect()
    }

    fn close(a: Option<f64>, b: f64) -> bool {
        a.is_some_and(|a| (a - b).abs() < 1e-12)
    }

    #[test]
    fn the_ideal_ordering_scores_one() {
        let g = grades(&[("a", 3), ("b", 2), ("c", 1)]);
        assert!(close(ndcg_at(5, &["a", "b", "c", "x"], &g), 1.0));
    }

    #[test]
    fn no_relevant_result_in_the_first_k_scores_zero() {
        let g = grades(&[("a", 3)]);
        assert!(close(ndcg_at(2, &["x", "y", "a"], &g), 0.0));
    }

    #[test]
    fn a_swapped_pair_costs_what_the_formula_says() {
        let g = grades(&[("a", 3), ("b", 1)]);
        // DCG = 1/log2(2) + 7/log2(3); IDCG = 7/log2(2) + 1/log2(3).
        let expected = (1.0 + 7.0 / 3f64.log2()) / (7.0 + 1.0 / 3f64.log2());
        assert!(close(ndcg_at(5, &["b", "a"], &g), expected));
    }

    #[test]
    fn only_the_first_k_results_count_on_both_sides() {
        let g = grades(&[("a", 1), ("b", 3)]);
        // Ideal top 1 is b (gain 7); the ranking's top 1 is a (gain 1).
        assert!(close(ndcg_at(1, &["a", "b"], &g), 1.0 / 7.0));
    }

    #[test]
    fn a_repeated_result_gains_only_once() {
        let g = grades(&[("a", 3), ("b", 3)]);
        let once = ndcg_at(3, &["a", "x", "b"], &g);
        let twice = ndcg_at(3, &["a", "a", "b"], &g);
        // The repeat is worth nothing, like any irrelevant result in its place.
        assert_eq!(once, twice);
        assert!(twice < ndcg_at(3, &["a", "b"], &g));
    }

    #[test]
    fn without_relevant_items_ndcg_is_undefined() {
        assert_eq!(ndcg_at(5, &["a"], &grades(&[("a", 0)])), None);
        assert_eq!(ndcg_at(0, &["a"], &grades(&[("a", 3)])), None);
    }

    #[test]
    fn a_query_set_parses_and_keys_grades_by_club_and_name() {
        let set = QuerySet::from_toml(
            r#"
            [[query]]
            text = "tenis noche"
            language = "es"
            relevant = [{ club = 0, facility = "Pista de Tenis 1", grade = 3 }]
            "#,
        );
        let set = set.ok().unwrap_or(QuerySet {
            queries: Vec::new(),
        });
        assert_eq!(set.queries.len(), 1);
        assert_eq!(
            set.queries[0]
                .grades()
                .get(&(0, "Pista de Tenis 1".to_owned())),
            Some(&3)
        );
    }

    #[test]
    fn a_query_set_refuses_grades_out_of_range_and_double_judgements() {
        let bad_grade = r#"
            [[query]]
            text = "q"
            language = "en"
            relevant = [{ club = 0, facility = "A", grade = 4 }]
        "#;
        assert!(QuerySet::from_toml(bad_grade).is_err());
        let twice = r#"
            [[query]]
            text = "q"
            language = "en"
            relevant = [{ club = 0, facility = "A", grade = 1 }, { club = 0, facility = "A", grade = 2 }]
        "#;
        assert!(QuerySet::from_toml(twice).is_err());
        let no_relevant = r#"
            [[query]]
            text = "q"
            language = "en"
            relevant = []
        "#;
        assert!(QuerySet::from_toml(no_relevant).is_err());
    }
}
