//! The hash chain: a canonical encoding of one row and the SHA-256 link to the row before it.
//!
//! `hash(n) = SHA-256(prev_hash(n) ‖ canonical(n))`, with `prev_hash(1)` all zeros and
//! `prev_hash(n) = hash(n − 1)`. The canonical encoding is a JSON array with a version tag, the
//! seq and every stored field in a fixed order; object keys inside `details` are sorted and there is
//! no insignificant whitespace, so the encoding does not depend on how PostgreSQL's `jsonb` or any
//! JSON library orders keys.

use chrono::SecondsFormat;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::AuditEvent;

/// A SHA-256 digest.
pub type Hash = [u8; 32];

/// The `prev_hash` of the first row.
pub const GENESIS: Hash = [0; 32];

/// The version tag inside every encoding: a change of encoding would start a new tag, never
/// reinterpret old rows.
const VERSION: &str = "clubpulse.audit.v1";

/// An event with its place in the chain.
#[derive(Debug, Clone, PartialEq)]
pub struct ChainedEvent {
    pub seq: i64,
    pub event: AuditEvent,
    pub prev_hash: Hash,
    pub hash: Hash,
}

/// Links `event` after a row whose hash is `prev_hash`, at `seq`.
pub fn link(seq: i64, event: AuditEvent, prev_hash: Hash) -> ChainedEvent {
    let hash = digest(seq, &event, &prev_hash);
    ChainedEvent {
        seq,
        event,
        prev_hash,
        hash,
    }
}

/// The hash a row with these contents must carry.
pub fn digest(seq: i64, event: &AuditEvent, prev_hash: &Hash) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update(prev_hash);
    hasher.update(canonical_encoding(seq, event).as_bytes());
    hasher.finalize().into()
}

/// The exact bytes hashed for one row (after its predecessor's hash).
pub fn canonical_encoding(seq: i64, event: &AuditEvent) -> String {
    let fields = Value::Array(vec![
        Value::from(VERSION),
        Value::from(seq),
        Value::from(event.id.to_string()),
        Value::from(
            event
                .occurred_at
                .to_rfc3339_opts(SecondsFormat::Micros, true),
        ),
        event
            .actor_id
            .map_or(Value::Null, |id| Value::from(id.to_string())),
        Value::from(event.action.as_str()),
        event.target.as_deref().map_or(Value::Null, Value::from),
        event.ip.as_deref().map_or(Value::Null, Value::from),
        Value::Object(event.details.clone()),
    ]);
    let mut out = String::with_capacity(256);
    write_canonical(&fields, &mut out);
    out
}

/// JSON with object keys in byte order and no whitespace. Scalars use serde_json's own (stable)
/// rendering.
fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::from(key.as_str()).to_string());
                out.push(':');
                write_canonical(item, out);
            }
            out.push('}');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event() -> AuditEvent {
        AuditEvent::new("auth.login.failed")
            .detail("reason", "bad_credentials")
            .detail("attempt", 3)
            .ip("192.0.2.7")
    }

    #[test]
    fn the_encoding_does_not_depend_on_key_order() {
        let mut a = event();
        let mut b = a.clone();
        a.details = json!({"z": 1, "a": {"y": true, "b": "x"}})
            .as_object()
            .cloned()
            .unwrap_or_default();
        b.details = json!({"a": {"b": "x", "y": true}, "z": 1})
            .as_object()
            .cloned()
            .unwrap_or_default();
        assert_eq!(canonical_encoding(7, &a), canonical_encoding(7, &b));
        assert!(canonical_encoding(7, &a).contains(r#"{"a":{"b":"x","y":true},"z":1}"#));
    }

    #[test]
    fn every_field_and_the_predecessor_change_the_hash() {
        let base = event();
        let h = digest(1, &base, &GENESIS);
        assert_ne!(h, digest(2, &base, &GENESIS), "seq");
        assert_ne!(h, digest(1, &base, &[1; 32]), "prev_hash");
        let mut other = base.clone();
        other.action = "auth.login.succeeded".into();
        assert_ne!(h, digest(1, &other, &GENESIS), "action");
        let mut other = base.clone();
        other.ip = None;
        assert_ne!(h, digest(1, &other, &GENESIS), "ip");
        let mut other = base.clone();
        other.details.insert("attempt".into(), 4.into());
        assert_ne!(h, digest(1, &other, &GENESIS), "details");
        let mut other = base.clone();
        other.occurred_at += chrono::Duration::microseconds(1);
        assert_ne!(h, digest(1, &other, &GENESIS), "time");
        assert_eq!(h, digest(1, &base.clone(), &GENESIS), "deterministic");
    }

    #[test]
    fn a_missing_field_differs_from_an_empty_one() {
        let mut a = event();
        a.target = None;
        let mut b = a.clone();
        b.target = Some(String::new());
        assert_ne!(digest(1, &a, &GENESIS), digest(1, &b, &GENESIS));
    }
}
