//! The webhook signature scheme: `t=<unix seconds>,v1=<hex>` where the hex is the HMAC-SHA256 of
//! `"{t}.{raw body}"` under a shared secret.
//!
//! Verification follows Stripe's rules: the header may carry several `v1` signatures (one per
//! secret during a rotation) and any of them may match any of the secrets; other schemes (`v0`) are
//! ignored; a timestamp further than the tolerance from now is refused, so a captured request cannot
//! be replayed later; signatures are compared in constant time.

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// How far a signature's timestamp may be from now: Stripe's default tolerance.
pub const TOLERANCE_SECONDS: i64 = 300;

/// Why a signature was refused. The variants are for logs and tests; a caller answers all of them
/// alike, so a forger learns nothing about which part was wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the request carries no signature")]
    Missing,
    #[error("the signature header is not `t=<unix seconds>,v1=<hex>`")]
    Malformed,
    #[error("the signature's timestamp is outside the tolerance")]
    Stale,
    #[error("no signature matches any secret")]
    Mismatch,
}

/// The hex HMAC-SHA256 of `"{timestamp}.{body}"` under `secret`.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    hex::encode(mac(secret, timestamp, body).finalize().into_bytes())
}

/// A complete header value: `t=<timestamp>,v1=<signature>`.
pub fn header(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    format!("t={timestamp},v1={}", sign(secret, timestamp, body))
}

/// Verifies `header` over the raw `body` against every secret, at `now` (unix seconds), with a
/// timestamp tolerance of `tolerance` seconds either side. Returns the signed timestamp.
pub fn verify<S: AsRef<[u8]>>(
    header: Option<&str>,
    body: &[u8],
    secrets: &[S],
    now: i64,
    tolerance: i64,
) -> Result<i64, SignatureError> {
    let header = header
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .ok_or(SignatureError::Missing)?;
    let mut timestamp = None;
    let mut candidates = Vec::new();
    for part in header.split(',') {
        let Some((key, value)) = part.trim().split_once('=') else {
            return Err(SignatureError::Malformed);
        };
        match key {
            "t" => {
                let t = value
                    .parse::<i64>()
                    .map_err(|_| SignatureError::Malformed)?;
                if timestamp.replace(t).is_some() {
                    return Err(SignatureError::Malformed);
                }
            }
            // A malformed v1 cannot match; it does not spoil the others.
            "v1" => {
                if let Ok(bytes) = hex::decode(value) {
                    candidates.push(bytes);
                }
            }
            // Other schemes (Stripe's test-mode v0) are not trusted.
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::Malformed)?;
    if candidates.is_empty() {
        return Err(SignatureError::Malformed);
    }
    if now.abs_diff(timestamp) > tolerance.unsigned_abs() {
        return Err(SignatureError::Stale);
    }
    let matched = secrets.iter().any(|secret| {
        candidates.iter().any(|candidate| {
            // verify_slice compares in constant time.
            mac(secret.as_ref(), timestamp, body)
                .verify_slice(candidate)
                .is_ok()
        })
    });
    if matched {
        Ok(timestamp)
    } else {
        Err(SignatureError::Mismatch)
    }
}

fn mac(secret: &[u8], timestamp: i64, body: &[u8]) -> HmacSha256 {
    // HMAC takes a key of any length; new_from_slice cannot fail for it.
    let mut mac = <HmacSha256 as Mac>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of every length"));
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_764_590_400;
    const BODY: &[u8] = br#"{"id":"evt_1","type":"payment_intent.succeeded"}"#;

    #[test]
    fn a_signature_made_with_the_secret_verifies() {
        let h = header(b"whsec_a", NOW, BODY);
        assert_eq!(verify(Some(&h), BODY, &["whsec_a"], NOW, 300), Ok(NOW));
    }

    #[test]
    fn it_matches_an_independently_computed_vector() {
        // HMAC-SHA256 under "secret" of "1.{}", computed with Python's hmac module.
        assert_eq!(
            sign(b"secret", 1, b"{}"),
            "1122767b193110cfec322b6f199b599edbf608ed087f2d27afb0b97d99523908"
        );
    }

    #[test]
    fn any_secret_of_a_rotation_and_any_v1_may_match() {
        let old = sign(b"whsec_old", NOW, BODY);
        let new = sign(b"whsec_new", NOW, BODY);
        let both = format!("t={NOW},v1={new},v1={old}");
        assert_eq!(verify(Some(&both), BODY, &["whsec_old"], NOW, 300), Ok(NOW));
        let only_old = format!("t={NOW},v1={old}");
        assert_eq!(
            verify(Some(&only_old), BODY, &["whsec_new", "whsec_old"], NOW, 300),
            Ok(NOW)
        );
    }

    #[test]
    fn a_changed_body_or_an_unknown_secret_is_a_mismatch() {
        let h = header(b"whsec_a", NOW, BODY);
        assert_eq!(
            verify(Some(&h), b"{}", &["whsec_a"], NOW, 300),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(Some(&h), BODY, &["whsec_b"], NOW, 300),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn a_timestamp_outside_the_tolerance_is_stale_either_way() {
        let h = header(b"whsec_a", NOW - 301, BODY);
        assert_eq!(
            verify(Some(&h), BODY, &["whsec_a"], NOW, 300),
            Err(SignatureError::Stale)
        );
        let future = header(b"whsec_a", NOW + 301, BODY);
        assert_eq!(
            verify(Some(&future), BODY, &["whsec_a"], NOW, 300),
            Err(SignatureError::Stale)
        );
        let edge = header(b"whsec_a", NOW - 300, BODY);
        assert_eq!(
            verify(Some(&edge), BODY, &["whsec_a"], NOW, 300),
            Ok(NOW - 300)
        );
    }

    #[test]
    fn only_v1_is_trusted() {
        let v0 = format!("t={NOW},v0={}", sign(b"whsec_a", NOW, BODY));
        assert_eq!(
            verify(Some(&v0), BODY, &["whsec_a"], NOW, 300),
            Err(SignatureError::Malformed)
        );
    }

    #[test]
    fn missing_and_malformed_headers_are_told_apart() {
        assert_eq!(
            verify(None, BODY, &["whsec_a"], NOW, 300),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            verify(Some("  "), BODY, &["whsec_a"], NOW, 300),
            Err(SignatureError::Missing)
        );
        for bad in [
            "garbage",
            "t=abc,v1=00",
            "v1=00",
            &format!("t={NOW}"),
            &format!("t={NOW},t={NOW},v1=00"),
        ] {
            assert_eq!(
                verify(Some(bad), BODY, &["whsec_a"], NOW, 300),
                Err(SignatureError::Malformed),
                "{bad}"
            );
        }
    }
}
