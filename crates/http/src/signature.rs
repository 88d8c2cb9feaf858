//! Signed API requests: an API key created with `require_signature` is accepted only on requests
//! that prove, with the key's signing secret, that they were made by its holder just now, and that
//! they were not seen before.
//!
//! # The signature
//!
//! The header is `ClubPulse-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>`: comma-separated
//! `name=value` items (spaces around an item are ignored), `t` and `v1` exactly once each, `t` in
//! decimal digits, `v1` 64 hex digits; items of other names are ignored, room for a later scheme.
//! `v1` is the HMAC-SHA256, keyed with the UTF-8 bytes of the signing secret (`cps_...`), of the
//! canonical string: five fields joined by `\n` (one line feed, no trailing one):
//!
//! ```text
//! <t>
//! <method, as sent: GET>
//! <path, as sent, percent-encoding untouched: /api/v1/bookings>
//! <query, as sent, without the `?`; empty when there is none: status=held&limit=5>
//! <lower-case hex SHA-256 of the body as sent; of no bytes when there is none>
//! ```
//!
//! A request is refused with 401 and a stable code, changing nothing, when its signature is
//! missing (`signature_required`), unreadable (`signature_malformed`), made with no valid secret
//! of the key or over other bytes (`signature_invalid`), timestamped more than
//! [`WINDOW_SECONDS`] before or after the server's clock (`signature_expired`), or seen already
//! (`signature_replayed`): each signature is remembered in the shared state for as long as its
//! timestamp is acceptable, so it is accepted once across every instance. If that store is
//! unreachable the answer is 503 `signature_nonces_unavailable`: a signature that cannot be
//! remembered is never accepted.
//!
//! Verifying needs the body, so [`verify`] reads it (within the server's body limit: over it is 413
//! `payload_too_large`, as for any body) and hands the same bytes on to the handler.
//!
//! # Secrets and rotation
//!
//! An HMAC is checked by computing it again, which needs the secret itself: the key's signing
//! secret is stored as issued (a hash of it would not do), shown once when it is made and never
//! listed. Rotating it (`POST /api/v1/admin/api-keys/{id}/signing-secret`) issues a new one and
//! keeps the previous one valid for a grace period; during it a signature made with either is
//! accepted.

use axum::{
    body::{Body, Bytes},
    extract::{FromRequest, OriginalUri, Request, State},
    http::{HeaderMap, Method, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
};
use chrono::Utc;
use clubpulse_state::{SessionToken, TokenPurpose};
use clubpulse_storage::api_keys::ApiKey;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::{ApiError, AppState, error::StatePart};

/// The request header carrying the signature.
pub const SIGNATURE_HEADER: &str = "clubpulse-signature";

/// How far a signature's timestamp may be from the server's clock, either side, in seconds.
pub const WINDOW_SECONDS: i64 = 300;

/// What [`verify`] found out about the request's API key, for the extractor that resolves it.
#[derive(Debug, Clone)]
pub(crate) struct KnownKey {
    /// The live key the request presented.
    pub key: ApiKey,
    /// Whether the request carried a valid, fresh, first-seen signature of that key.
    pub signed: bool,
}

/// A signature header, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    pub timestamp: i64,
    pub mac: [u8; 32],
}

/// Reads a `ClubPulse-Signature` value; `None` when it is not of the documented form.
pub fn parse(value: &str) -> Option<Signature> {
    let (mut timestamp, mut mac) = (None, None);
    for item in value.split(',') {
        let (name, value) = item.trim().split_once('=')?;
        match name {
            "t" => {
                let digits = !value.is_empty()
                    && value.len() <= 12
                    && value.bytes().all(|b| b.is_ascii_digit());
                if timestamp.is_some() || !digits {
                    return None;
                }
                timestamp = Some(value.parse().ok()?);
            }
            "v1" => {
                let mut bytes = [0u8; 32];
                if mac.is_some() || hex::decode_to_slice(value, &mut bytes).is_err() {
                    return None;
                }
                mac = Some(bytes);
            }
            _ => {}
        }
    }
    Some(Signature {
        timestamp: timestamp?,
        mac: mac?,
    })
}

/// The string a signature is made over; see the module documentation.
pub fn canonical(timestamp: i64, method: &Method, path: &str, query: &str, body: &[u8]) -> String {
    let body_hash = hex::encode(Sha256::digest(body));
    format!("{timestamp}\n{method}\n{path}\n{query}\n{body_hash}")
}

/// The `v1` value for `canonical` made with `secret`: what a client computes.
pub fn sign(secret: &str, canonical: &str) -> String {
    hex::encode(mac(secret, canonical).finalize().into_bytes())
}

fn mac(secret: &str, canonical: &str) -> Hmac<Sha256> {
    // HMAC takes a key of any length.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(canonical.as_bytes());
    mac
}

fn refused(code: &'static str, detail: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, code, detail)
}

/// Middleware: checks the signature of a request whose API key requires one, and tells the
/// extractor (through [`KnownKey`]) what it found. Requests without an API key, with an unknown
/// one (the extractor refuses those) or with a key that does not sign pass untouched.
pub async fn verify(State(app): State<AppState>, req: Request, next: Next) -> Response {
    let Some(presented) = crate::extract::api_key(req.headers()) else {
        return next.run(req).await;
    };
    match check(&app, &presented, req).await {
        Ok(req) => next.run(req).await,
        Err(err) => err.into_response(),
    }
}

async fn check(app: &AppState, presented: &str, mut req: Request) -> Result<Request, ApiError> {
    let Some(key) = crate::extract::live_key(app, presented).await? else {
        return Ok(req);
    };
    if !key.require_signature {
        req.extensions_mut().insert(KnownKey { key, signed: false });
        return Ok(req);
    }
    let signature = read_header(req.headers())?;
    let uri = req
        .extensions()
        .get::<OriginalUri>()
        .map_or_else(|| req.uri().clone(), |original| original.0.clone());
    let method = req.method().clone();
    // The parts are kept to rebuild the request around the same bytes; the probe carries them
    // too, so the limit set by the body-limit layer applies as it does to a handler's extractor.
    let (parts, body) = req.into_parts();
    let probe = Request::from_parts(parts.clone(), body);
    let body = Bytes::from_request(probe, app)
        .await
        .map_err(crate::extract::unreadable_body)?;
    let now = Utc::now();
    let text = canonical(
        signature.timestamp,
        &method,
        uri.path(),
        uri.query().unwrap_or(""),
        &body,
    );
    let valid = key
        .signing_secrets(now)
        .into_iter()
        .any(|secret| mac(secret, &text).verify_slice(&signature.mac).is_ok());
    if !valid {
        return Err(refused(
            "signature_invalid",
            "the signature does not match the request and the key's signing secret",
        ));
    }
    let age = now.timestamp() - signature.timestamp;
    if age.abs() > WINDOW_SECONDS {
        return Err(refused(
            "signature_expired",
            "the signature's timestamp is more than 300 seconds from the server's clock",
        ));
    }
    // Remembered for as long as the timestamp stays acceptable, and a second more.
    let ttl = std::time::Duration::from_secs((WINDOW_SECONDS - age + 1).unsigned_abs());
    let nonce =
        SessionToken::from_client(&format!("{}:{}", key.id, hex::encode(signature.mac))).hash();
    let first = app
        .state
        .tokens
        .first_sighting(TokenPurpose::SignatureNonce, &nonce, ttl)
        .await
        .map_err(|err| ApiError::state(StatePart::SignatureNonces, err))?;
    if !first {
        return Err(refused(
            "signature_replayed",
            "this signature was used already; sign every request anew",
        ));
    }
    let mut req = Request::from_parts(parts, Body::from(body));
    req.extensions_mut().insert(KnownKey { key, signed: true });
    Ok(req)
}

fn read_header(headers: &HeaderMap) -> Result<Signature, ApiError> {
    let mut values = headers.get_all(SIGNATURE_HEADER).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        let missing = headers.get(SIGNATURE_HEADER).is_none();
        return Err(if missing {
            refused(
                "signature_required",
                "this API key requires signed requests: send ClubPulse-Signature",
            )
        } else {
            malformed()
        });
    };
    value.to_str().ok().and_then(parse).ok_or_else(malformed)
}

fn malformed() -> ApiError {
    refused(
        "signature_malformed",
        "ClubPulse-Signature must be one header of the form t=<unix seconds>,v1=<64 hex digits>",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn a_signature_header_is_read_in_any_order_with_unknown_items_ignored() {
        let read = parse(&format!("t=1700000000,v1={MAC}")).unwrap();
        assert_eq!(read.timestamp, 1_700_000_000);
        assert_eq!(hex::encode(read.mac), MAC);
        assert_eq!(
            parse(&format!(" v1={} , v0=zz, t=5 ", MAC.to_uppercase())),
            Some(Signature {
                timestamp: 5,
                mac: read.mac
            })
        );
    }

    #[test]
    fn malformed_signature_headers_are_refused() {
        for bad in [
            String::new(),
            "t=1700000000".to_owned(),
            format!("v1={MAC}"),
            format!("t=-5,v1={MAC}"),
            format!("t=+5,v1={MAC}"),
            format!("t=,v1={MAC}"),
            format!("t=1e9,v1={MAC}"),
            format!("t=9999999999999,v1={MAC}"),
            format!("t=1,v1={}", &MAC[..62]),
            format!("t=1,v1={MAC}00"),
            format!("t=1,v1={}zz", &MAC[..62]),
            format!("t=1,t=2,v1={MAC}"),
            format!("t=1,v1={MAC},v1={MAC}"),
            format!("t=1;v1={MAC}"),
            "garbage".to_owned(),
        ] {
            assert_eq!(parse(&bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_canonical_string_is_five_lines_with_the_timestamp_first() {
        let text = canonical(
            1_700_000_000,
            &Method::POST,
            "/api/v1/bookings",
            "a=1&b=%20",
            b"{}",
        );
        assert_eq!(
            text,
            "1700000000\nPOST\n/api/v1/bookings\na=1&b=%20\n\
             44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
        let empty = canonical(1, &Method::GET, "/x", "", b"");
        assert!(
            empty.ends_with(
                "\n/x\n\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
            )
        );
    }

    #[test]
    fn a_signature_is_the_hmac_sha256_of_the_canonical_string() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        assert_eq!(
            sign("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
