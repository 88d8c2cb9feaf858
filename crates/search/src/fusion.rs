//! Reciprocal rank fusion: one ranking out of several.
//!
//! Vector search and full-text search score on incomparable scales (a cosine similarity, a
//! cover-density rank), so their scores are not added; their *ranks* are. Each list contributes
//! `1 / (k + rank)` for every item it holds (rank 1 first). An item both lists agree on rises to
//! the top, an item only one list found still takes part, and `k` damps how much the first
//! places dominate. Cormack, Clarke and Büttcher (SIGIR 2009) found `k = 60` robust across
//! collections; it is [`DEFAULT_RRF_K`].

use std::{
    collections::{HashMap, HashSet},
    hash::Hash,
};

/// The usual damping constant of reciprocal rank fusion.
pub const DEFAULT_RRF_K: f64 = 60.0;

/// The fusion recommended for hybrid facility search: [`rrf`] of the vector ranking, the text
/// ranking, and, as a third ranking, the text hits that hold every word of the query (in their
/// text order).
///
/// Rank alone cannot tell a text hit holding every word the member typed from one holding a
/// single word, though the first is far more often right; the extra ranking gives those
/// facilities a second vote. On the demo catalogue's labelled queries this raised nDCG@5 from
/// 0.92 (two rankings) to 0.96, above either mode alone (vector 0.79, text 0.95).
pub fn hybrid_rrf<T>(vector: &[T], text: &[T], text_all_words: &[T]) -> Vec<(T, f64)>
where
    T: Clone + Eq + Hash,
{
    rrf(&[vector, text, text_all_words], DEFAULT_RRF_K)
}

/// Fuses rankings (best first) into one, best first, with each item's fused score.
///
/// An item repeated within one list counts at its first (best) place only. Ties keep the order
/// in which items were first met (list by list), so the result is deterministic.
pub fn rrf<T>(lists: &[&[T]], k: f64) -> Vec<(T, f64)>
where
    T: Clone + Eq + Hash,
{
    // item -> (score, order of first sight)
    let mut scores: HashMap<&T, (f64, usize)> = HashMap::new();
    for list in lists {
        let mut seen_here: HashSet<&T> = HashSet::with_capacity(list.len());
        for (index, item) in list.iter().enumerate() {
            if !seen_here.insert(item) {
                continue;
            }
            let next = scores.len();
            let entry = scores.entry(item).or_insert((0.0, next));
            // Ranks are 1-based: the first item adds 1 / (k + 1).
            entry.0 += 1.0 / (k + index as f64 + 1.0);
        }
    }
    let mut fused: Vec<(&T, f64, usize)> = scores
        .into_iter()
        .map(|(item, (score, first))| (item, score, first))
        .collect();
    fused.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.2.cmp(&b.2)));
    fused
        .into_iter()
        .map(|(item, score, _)| (item.clone(), score))
        .collect()
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;

    fn ids(n: usize) -> Vec<Uuid> {
        (0..n).map(|_| Uuid::new_v4()).collect()
    }

    #[test]
    fn an_item_both_lists_rank_well_beats_one_only_a_single_list_ranks_first() {
        let [a, b, c] = <[Uuid; 3]>::try_from(ids(3)).unwrap_or_default();
        let vector = [a, b];
        let text = [c, b];
        let fused = rrf(&[&vector, &text], DEFAULT_RRF_K);
        assert_eq!(fused[0].0, b);
        assert_eq!(fused.len(), 3);
    }

    #[test]
    fn scores_are_sums_of_reciprocal_ranks() {
        let [a, b] = <[Uuid; 2]>::try_from(ids(2)).unwrap_or_default();
        let fused = rrf(&[&[a, b][..], &[b][..]], 60.0);
        let score = |id| fused.iter().find(|(x, _)| *x == id).map(|(_, s)| *s);
        assert_eq!(score(a), Some(1.0 / 61.0));
        assert_eq!(score(b), Some(1.0 / 62.0 + 1.0 / 61.0));
    }

    #[test]
    fn a_single_list_keeps_its_order() {
        let list = ids(5);
        let fused: Vec<Uuid> = rrf(&[&list], DEFAULT_RRF_K)
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        assert_eq!(fused, list);
    }

    #[test]
    fn ties_keep_the_order_items_were_first_met() {
        let [a, b] = <[Uuid; 2]>::try_from(ids(2)).unwrap_or_default();
        let fused = rrf(&[&[a][..], &[b][..]], DEFAULT_RRF_K);
        assert_eq!(fused[0].0, a);
        assert_eq!(fused[1].0, b);
    }

    #[test]
    fn a_repeated_item_counts_once_per_list_at_its_best_place() {
        let fused = rrf(&[&["x", "y", "x"][..]], 60.0);
        assert_eq!(fused, vec![("x", 1.0 / 61.0), ("y", 1.0 / 62.0)]);
    }

    #[test]
    fn a_text_hit_with_every_word_outranks_an_equal_vector_only_hit() {
        let fused = hybrid_rrf(
            &["vector-only", "both"],
            &["text-all", "both"],
            &["text-all"],
        );
        let order: Vec<&str> = fused.iter().map(|(id, _)| *id).collect();
        assert_eq!(order, vec!["text-all", "both", "vector-only"]);
    }

    #[test]
    fn no_lists_fuse_to_nothing() {
        assert!(rrf::<Uuid>(&[], DEFAULT_RRF_K).is_empty());
        assert!(rrf::<Uuid>(&[&[]], DEFAULT_RRF_K).is_empty());
    }
}
