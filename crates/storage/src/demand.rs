//! Unmet demand: holds refused because the time was taken, and searches that found nothing.
//!
//! Both are append-only logs written after the fact, outside the transaction of the request they
//! describe (a refused hold's transaction has already rolled back). Callers treat a failure to
//! record as a warning, never as the request's error.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::PgExecutor;
use uuid::Uuid;

use crate::Result;

/// The longest stored search query, in characters.
pub const MAX_QUERY_CHARS: usize = 100;

/// A search query as demand is counted: trimmed, lower-cased, inner runs of whitespace made one
/// space, cut to [`MAX_QUERY_CHARS`]. `None` when nothing is left.
pub fn normalise_query(raw: &str) -> Option<String> {
    let words: Vec<&str> = raw.split_whitespace().collect();
    let joined = words.join(" ").to_lowercase();
    let cut: String = joined.chars().take(MAX_QUERY_CHARS).collect();
    let cut = cut.trim_end().to_owned();
    (!cut.is_empty()).then_some(cut)
}

/// A hold refused because the time was taken: the facility, its club, the wanted range, and the
/// local date and hour of the wanted start in the club's time zone.
#[derive(Debug, Clone, Copy)]
pub struct Conflict {
    pub facility_id: Uuid,
    pub club_id: Uuid,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub local_date: NaiveDate,
    pub local_hour: u8,
}

/// Records a refused hold.
pub async fn record_conflict(db: impl PgExecutor<'_>, conflict: &Conflict) -> Result<()> {
    sqlx::query(
        "INSERT INTO demand_conflicts (facility_id, club_id, requested_start, requested_end,
                                       local_date, local_hour)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(conflict.facility_id)
    .bind(conflict.club_id)
    .bind(conflict.start)
    .bind(conflict.end)
    .bind(conflict.local_date)
    .bind(i16::from(conflict.local_hour))
    .execute(db)
    .await?;
    Ok(())
}

/// Records a search that found nothing; `query` is normalised here ([`normalise_query`]), and a
/// query with nothing left records nothing.
pub async fn record_empty_search(
    db: impl PgExecutor<'_>,
    query: &str,
    club_id: Option<Uuid>,
) -> Result<()> {
    let Some(query) = normalise_query(query) else {
        return Ok(());
    };
    sqlx::query("INSERT INTO demand_searches (query, club_id) VALUES ($1, $2)")
        .bind(query)
        .bind(club_id)
        .execute(db)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_counted_in_one_form() {
        assert_eq!(
            normalise_query("  Pádel   TECHADO\t "),
            Some("pádel techado".to_owned())
        );
        assert_eq!(normalise_query(" \n "), None);
        let long = "x".repeat(300);
        assert_eq!(normalise_query(&long).map(|q| q.chars().count()), Some(100));
    }
}
