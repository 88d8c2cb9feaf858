//! Walking the chain: intact, or the first broken seq and what was done to it.
//!
//! Rows are read in seq order, a page at a time. Row `n` is sound when its seq is the one expected,
//! its `prev_hash` is the hash of row `n − 1` and its own hash matches its contents. At the first
//! row that is not, the kind of damage is told apart by where the broken link points:
//!
//! - a seq missing from the sequence: **deleted**;
//! - a row whose contents no longer match its hash, while the next row still links to it:
//!   **edited** (also when a row was edited and its own hash recomputed: the next row's link,
//!   which points at the old hash, gives it away);
//! - a row whose `prev_hash` is the hash of a *later* row: **reordered**;
//! - a row whose `prev_hash` skips back over earlier rows, or a row nothing links to: those rows
//!   were **inserted**.
//!
//! Deleting the newest rows leaves a shorter chain that is sound by itself; the anchors catch it.
//! Every flush records its final seq and hash in `audit_anchor`, so the newest anchor must be the
//! chain's head, and every anchor must still match its row.
//!
//! The whole walk reads one snapshot (a read-only repeatable-read transaction): flushers keep
//! appending while a live system is verified, and a flush committed between the walk and the
//! anchor check would otherwise look like the newest rows had been deleted.

use crate::{
    AuditError,
    chain::{self, ChainedEvent, GENESIS, Hash},
    row::{self, COLUMNS},
    to_hash,
};
use sqlx::{PgConnection, PgPool};

/// Rows read per query.
const PAGE: i64 = 5_000;

/// What is wrong at the first broken seq.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Damage {
    Edited,
    Deleted,
    Reordered,
    Inserted,
}

impl Damage {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Edited => "edited",
            Self::Deleted => "deleted",
            Self::Reordered => "reordered",
            Self::Inserted => "inserted",
        }
    }
}

/// The first place where the chain does not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Break {
    pub seq: i64,
    pub damage: Damage,
    /// A sentence for the operator.
    pub detail: String,
}

/// The outcome of a walk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Intact {
        rows: u64,
        /// The newest seq and hash, to keep elsewhere and pass back as an expected head.
        head: Option<(i64, Hash)>,
    },
    Broken(Break),
}

/// A head recorded outside the database by an operator, e.g. from an earlier verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpectedHead {
    pub seq: i64,
    pub hash: Hash,
}

impl std::str::FromStr for ExpectedHead {
    type Err = String;

    /// `SEQ:HEX`, as printed by a successful verify.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (seq, hash) = s
            .split_once(':')
            .ok_or_else(|| "expected SEQ:HASH".to_owned())?;
        let seq = seq.parse().map_err(|_| format!("{seq:?} is not a seq"))?;
        let bytes = hex::decode(hash).map_err(|_| "the hash is not hexadecimal".to_owned())?;
        let hash = to_hash(&bytes).map_err(|err| err.to_string())?;
        Ok(Self { seq, hash })
    }
}

fn is_self_consistent(row: &ChainedEvent) -> bool {
    chain::digest(row.seq, &row.event, &row.prev_hash) == row.hash
}

/// Walks the whole chain and checks the anchors (and `expected`, when given).
pub async fn verify(pool: &PgPool, expected: Option<ExpectedHead>) -> Result<Verdict, AuditError> {
    let mut tx = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await?;
    let verdict = walk(&mut tx, expected).await?;
    tx.rollback().await?;
    Ok(verdict)
}

async fn walk(
    db: &mut PgConnection,
    expected: Option<ExpectedHead>,
) -> Result<Verdict, AuditError> {
    let mut previous: Option<(i64, Hash)> = None;
    let mut rows = 0u64;
    loop {
        let after = previous.map_or(0, |(seq, _)| seq);
        let page: Vec<row::RawRow> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2"
        ))
        .bind(after)
        .bind(PAGE)
        .fetch_all(&mut *db)
        .await?;
        if page.is_empty() {
            break;
        }
        for raw in page {
            let row = row::decode(raw)?;
            let (expected_seq, expected_prev) =
                previous.map_or((1, GENESIS), |(seq, hash)| (seq + 1, hash));
            if row.seq != expected_seq
                || row.prev_hash != expected_prev
                || !is_self_consistent(&row)
            {
                return Ok(Verdict::Broken(
                    diagnose(db, &row, expected_seq, expected_prev).await?,
                ));
            }
            previous = Some((row.seq, row.hash));
            rows += 1;
        }
    }
    if let Some(broken) = check_anchors(db, previous).await? {
        return Ok(Verdict::Broken(broken));
    }
    if let Some(expected) = expected
        && let Some(broken) = check_expected(db, expected).await?
    {
        return Ok(Verdict::Broken(broken));
    }
    Ok(Verdict::Intact {
        rows,
        head: previous,
    })
}

async fn diagnose(
    db: &mut PgConnection,
    row: &ChainedEvent,
    expected_seq: i64,
    expected_prev: Hash,
) -> Result<Break, AuditError> {
    if row.seq != expected_seq {
        return Ok(Break {
            seq: expected_seq,
            damage: Damage::Deleted,
            detail: if row.seq == expected_seq + 1 {
                format!("seq {expected_seq} is missing")
            } else {
                format!("seqs {expected_seq} to {} are missing", row.seq - 1)
            },
        });
    }
    if row.prev_hash == expected_prev {
        // It links to its predecessor, so its own contents (or hash) changed, unless the row after
        // it skips it, which makes it a row that was never part of the chain.
        let next: Option<(Vec<u8>,)> =
            sqlx::query_as("SELECT prev_hash FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT 1")
                .bind(row.seq)
                .fetch_optional(&mut *db)
                .await?;
        if next.is_some_and(|(prev,)| prev == expected_prev) {
            return Ok(Break {
                seq: row.seq,
                damage: Damage::Inserted,
                detail: format!(
                    "seq {} is not part of the chain: the row after it follows seq {}",
                    row.seq,
                    row.seq - 1
                ),
            });
        }
        return Ok(Break {
            seq: row.seq,
            damage: Damage::Edited,
            detail: format!("seq {} no longer matches its hash", row.seq),
        });
    }
    let linked: Option<(i64,)> = sqlx::query_as("SELECT seq FROM audit_log WHERE hash = $1")
        .bind(row.prev_hash.to_vec())
        .fetch_optional(&mut *db)
        .await?;
    Ok(match linked {
        Some((target,)) if target > row.seq => Break {
            seq: row.seq,
            damage: Damage::Reordered,
            detail: format!(
                "seq {} follows seq {target} in the chain, which comes after it",
                row.seq
            ),
        },
        Some((target,)) => Break {
            seq: target + 1,
            damage: Damage::Inserted,
            detail: format!(
                "seq {} follows seq {target}: the rows between were inserted",
                row.seq
            ),
        },
        // Nothing carries the hash this row says came before it: its predecessor was edited and
        // its hash recomputed to hide the edit (or this row's link itself was edited).
        None if is_self_consistent(row) => Break {
            seq: row.seq - 1,
            damage: Damage::Edited,
            detail: format!(
                "seq {} was changed: seq {} recorded a different hash for it",
                row.seq - 1,
                row.seq
            ),
        },
        None => Break {
            seq: row.seq,
            damage: Damage::Edited,
            detail: format!("seq {} no longer matches its hash", row.seq),
        },
    })
}

async fn check_anchors(
    db: &mut PgConnection,
    head: Option<(i64, Hash)>,
) -> Result<Option<Break>, AuditError> {
    let newest: Option<(i64,)> =
        sqlx::query_as("SELECT seq FROM audit_anchor ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&mut *db)
            .await?;
    let head_seq = head.map_or(0, |(seq, _)| seq);
    if let Some((anchored,)) = newest {
        if anchored > head_seq {
            return Ok(Some(Break {
                seq: head_seq + 1,
                damage: Damage::Deleted,
                detail: format!(
                    "the chain ends at seq {head_seq} but was anchored at seq {anchored}: the newest rows were deleted"
                ),
            }));
        }
        if anchored < head_seq {
            return Ok(Some(Break {
                seq: anchored + 1,
                damage: Damage::Inserted,
                detail: format!(
                    "rows after the newest anchor (seq {anchored}) were added outside the flusher"
                ),
            }));
        }
    } else if head_seq > 0 {
        return Ok(Some(Break {
            seq: 1,
            damage: Damage::Inserted,
            detail: "the chain has rows but no anchor: they were added outside the flusher"
                .to_owned(),
        }));
    }
    let mismatch: Option<(i64,)> = sqlx::query_as(
        "SELECT a.seq FROM audit_anchor a LEFT JOIN audit_log l USING (seq)
         WHERE l.hash IS DISTINCT FROM a.hash ORDER BY a.seq LIMIT 1",
    )
    .fetch_optional(&mut *db)
    .await?;
    Ok(mismatch.map(|(seq,)| Break {
        seq,
        damage: Damage::Edited,
        detail: format!(
            "seq {seq} does not carry the hash anchored for it: the chain was rewritten from there"
        ),
    }))
}

async fn check_expected(
    db: &mut PgConnection,
    expected: ExpectedHead,
) -> Result<Option<Break>, AuditError> {
    let found: Option<(Vec<u8>,)> = sqlx::query_as("SELECT hash FROM audit_log WHERE seq = $1")
        .bind(expected.seq)
        .fetch_optional(&mut *db)
        .await?;
    Ok(match found {
        None => Some(Break {
            seq: expected.seq,
            damage: Damage::Deleted,
            detail: format!("the expected head seq {} is not in the chain", expected.seq),
        }),
        Some((hash,)) if hash != expected.hash => Some(Break {
            seq: expected.seq,
            damage: Damage::Edited,
            detail: format!(
                "seq {} does not carry the expected head hash: the chain was rewritten",
                expected.seq
            ),
        }),
        Some(_) => None,
    })
}
