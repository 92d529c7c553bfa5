//! fal's webhook signatures (fal-protocol.md §2.2), for both sides: the relay verifies what fal
//! sends, and the fake fal server signs what it sends the same way.
//!
//! fal signs `request_id \n user_id \n timestamp \n hex(sha256(raw body))` with Ed25519 and
//! publishes the public keys as a JWKS. There is no key id: a signature is valid when any
//! published key verifies it.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signature, Signer, SigningKey};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub use ed25519_dalek::VerifyingKey;

pub const REQUEST_ID_HEADER: &str = "X-Fal-Webhook-Request-Id";
pub const USER_ID_HEADER: &str = "X-Fal-Webhook-User-Id";
pub const TIMESTAMP_HEADER: &str = "X-Fal-Webhook-Timestamp";
pub const SIGNATURE_HEADER: &str = "X-Fal-Webhook-Signature";

/// How far a webhook's timestamp may lie from the receiver's clock, either way, in seconds.
pub const MAX_CLOCK_SKEW_SECS: u64 = 300;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    #[error("the webhook has no {0} header")]
    MissingHeader(&'static str),
    #[error("the webhook timestamp {0:?} is not a whole number of seconds since 1970")]
    BadTimestamp(String),
    #[error(
        "the webhook was signed at {timestamp} but the clock here reads {now}; more than {MAX_CLOCK_SKEW_SECS} s apart means a replayed webhook or a wrong clock"
    )]
    StaleTimestamp { timestamp: i64, now: i64 },
    #[error("the webhook signature is not hexadecimal")]
    SignatureNotHex,
    #[error("the webhook signature is {0} bytes long, but Ed25519 signatures are 64")]
    SignatureLength(usize),
    #[error("there are no public keys to check the webhook signature against")]
    NoKeys,
    #[error("the webhook signature matches none of the {0} public keys fal publishes")]
    SignatureMismatch(usize),
    #[error("the key set is not a JSON object with a \"keys\" array: {0}")]
    JwksFormat(String),
    #[error("the key set holds an Ed25519 key whose \"x\" is not a 32-byte base64url value")]
    JwksBadKey,
    #[error("the key set holds no Ed25519 keys")]
    JwksNoEd25519Keys,
}

/// The message fal signs: the three header values and the lowercase hex SHA-256 of the raw body,
/// joined by newlines. The header values are used exactly as received.
pub fn signing_message(request_id: &str, user_id: &str, timestamp: &str, body: &[u8]) -> Vec<u8> {
    let body_hash = hex::encode(Sha256::digest(body));
    format!("{request_id}\n{user_id}\n{timestamp}\n{body_hash}").into_bytes()
}

/// The four signature header values of one webhook request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHeaders {
    pub request_id: String,
    pub user_id: String,
    pub timestamp: String,
    pub signature: String,
}

impl SignedHeaders {
    /// The headers as (name, value) pairs, ready to add to a request.
    pub fn pairs(&self) -> [(&'static str, &str); 4] {
        [
            (REQUEST_ID_HEADER, &self.request_id),
            (USER_ID_HEADER, &self.user_id),
            (TIMESTAMP_HEADER, &self.timestamp),
            (SIGNATURE_HEADER, &self.signature),
        ]
    }
}

/// Signs webhooks the way fal does; used by the fake fal server.
pub struct WebhookSigner {
    key: SigningKey,
}

impl std::fmt::Debug for WebhookSigner {
    // The private key stays out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSigner")
            .field(
                "public_key",
                &hex::encode(self.key.verifying_key().as_bytes()),
            )
            .finish()
    }
}

impl WebhookSigner {
    /// A signer with a fresh random key pair.
    pub fn generate() -> Self {
        Self {
            key: SigningKey::generate(&mut rand::rngs::OsRng),
        }
    }

    pub fn verifying_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    pub fn sign(
        &self,
        request_id: &str,
        user_id: &str,
        timestamp_secs: i64,
        body: &[u8],
    ) -> SignedHeaders {
        let timestamp = timestamp_secs.to_string();
        let message = signing_message(request_id, user_id, &timestamp, body);
        let signature = self.key.sign(&message);
        SignedHeaders {
            request_id: request_id.to_owned(),
            user_id: user_id.to_owned(),
            timestamp,
            signature: hex::encode(signature.to_bytes()),
        }
    }

    /// The public key as a JWKS document, the shape fal serves at `/.well-known/jwks.json`.
    pub fn jwks(&self) -> Value {
        let x = URL_SAFE_NO_PAD.encode(self.key.verifying_key().as_bytes());
        json!({ "keys": [{ "kty": "OKP", "crv": "Ed25519", "x": x }] })
    }
}

/// The Ed25519 keys of a JWKS document. Keys of other types are skipped; `x` is accepted with or
/// without `=` padding (fal's live key set has been seen padded).
pub fn parse_jwks(document: &[u8]) -> Result<Vec<VerifyingKey>, WebhookError> {
    let document: Value = serde_json::from_slice(document)
        .map_err(|error| WebhookError::JwksFormat(error.to_string()))?;
    let keys = document
        .get("keys")
        .and_then(Value::as_array)
        .ok_or_else(|| WebhookError::JwksFormat("no \"keys\" array".to_owned()))?;
    let keys = keys
        .iter()
        .filter(|key| key["kty"] == "OKP" && key["crv"] == "Ed25519")
        .map(|key| {
            let x = key["x"].as_str().ok_or(WebhookError::JwksBadKey)?;
            let bytes = URL_SAFE_NO_PAD
                .decode(x.trim_end_matches('='))
                .map_err(|_| WebhookError::JwksBadKey)?;
            let bytes: [u8; 32] = bytes.try_into().map_err(|_| WebhookError::JwksBadKey)?;
            VerifyingKey::from_bytes(&bytes).map_err(|_| WebhookError::JwksBadKey)
        })
        .collect::<Result<Vec<_>, _>>()?;
    if keys.is_empty() {
        return Err(WebhookError::JwksNoEd25519Keys);
    }
    Ok(keys)
}

/// What a verified webhook's headers say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedWebhook {
    pub request_id: String,
    pub user_id: String,
    pub timestamp: i64,
}

/// Checks a webhook request against fal's public keys.
///
/// `header` looks up a request header by the names above and must match names
/// case-insensitively, as HTTP does (`http::HeaderMap::get` already does). `body` is the raw
/// request body, before any JSON parsing: the signature covers its exact bytes. `now_secs` is the
/// receiver's clock in Unix seconds.
pub fn verify(
    header: impl Fn(&str) -> Option<String>,
    body: &[u8],
    now_secs: i64,
    keys: &[VerifyingKey],
) -> Result<VerifiedWebhook, WebhookError> {
    let required = |name: &'static str| header(name).ok_or(WebhookError::MissingHeader(name));
    let request_id = required(REQUEST_ID_HEADER)?;
    let user_id = required(USER_ID_HEADER)?;
    let timestamp_text = required(TIMESTAMP_HEADER)?;
    let signature_hex = required(SIGNATURE_HEADER)?;

    let timestamp: i64 = timestamp_text
        .parse()
        .map_err(|_| WebhookError::BadTimestamp(timestamp_text.clone()))?;
    if now_secs.abs_diff(timestamp) > MAX_CLOCK_SKEW_SECS {
        return Err(WebhookError::StaleTimestamp {
            timestamp,
            now: now_secs,
        });
    }

    let signature = hex::decode(&signature_hex).map_err(|_| WebhookError::SignatureNotHex)?;
    let signature: [u8; 64] = signature
        .try_into()
        .map_err(|bytes: Vec<u8>| WebhookError::SignatureLength(bytes.len()))?;
    let signature = Signature::from_bytes(&signature);

    if keys.is_empty() {
        return Err(WebhookError::NoKeys);
    }
    let message = signing_message(&request_id, &user_id, &timestamp_text, body);
    if !keys
        .iter()
        .any(|key| key.verify_strict(&message, &signature).is_ok())
    {
        return Err(WebhookError::SignatureMismatch(keys.len()));
    }
    Ok(VerifiedWebhook {
        request_id,
        user_id,
        timestamp,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_780_000_000;
    const BODY: &[u8] = br#"{"request_id":"r-1","status":"OK","payload":{}}"#;

    fn lookup(headers: &SignedHeaders) -> impl Fn(&str) -> Option<String> + '_ {
        |name| {
            headers
                .pairs()
                .iter()
                .find(|(known, _)| known.eq_ignore_ascii_case(name))
                .map(|(_, value)| value.to_string())
        }
    }

    fn keys_of(signer: &WebhookSigner) -> Vec<VerifyingKey> {
        parse_jwks(signer.jwks().to_string().as_bytes()).unwrap()
    }

    #[test]
    fn message_is_the_headers_and_the_body_hash_on_separate_lines() {
        let message = signing_message("req", "user", "1700000000", b"");
        assert_eq!(
            String::from_utf8(message).unwrap(),
            // SHA-256 of no bytes, in lowercase hex.
            "req\nuser\n1700000000\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn a_signed_webhook_verifies_against_the_published_key_set() {
        let signer = WebhookSigner::generate();
        let headers = signer.sign("r-1", "user-1", NOW, BODY);
        let verified = verify(lookup(&headers), BODY, NOW + 10, &keys_of(&signer)).unwrap();
        assert_eq!(
            verified,
            VerifiedWebhook {
                request_id: "r-1".into(),
                user_id: "user-1".into(),
                timestamp: NOW,
            }
        );
    }

    #[test]
    fn a_tampered_body_is_rejected() {
        let signer = WebhookSigner::generate();
        let headers = signer.sign("r-1", "user-1", NOW, BODY);
        let tampered = br#"{"request_id":"r-2","status":"OK","payload":{}}"#;
        assert_eq!(
            verify(lookup(&headers), tampered, NOW, &keys_of(&signer)),
            Err(WebhookError::SignatureMismatch(1))
        );
    }

    #[test]
    fn a_signature_by_another_key_is_rejected() {
        let headers = WebhookSigner::generate().sign("r-1", "user-1", NOW, BODY);
        let other = WebhookSigner::generate();
        assert_eq!(
            verify(lookup(&headers), BODY, NOW, &keys_of(&other)),
            Err(WebhookError::SignatureMismatch(1))
        );
    }

    #[test]
    fn every_missing_header_is_named() {
        let signer = WebhookSigner::generate();
        let headers = signer.sign("r-1", "user-1", NOW, BODY);
        for missing in [
            REQUEST_ID_HEADER,
            USER_ID_HEADER,
            TIMESTAMP_HEADER,
            SIGNATURE_HEADER,
        ] {
            let without = |name: &str| {
                if name == missing {
                    None
                } else {
                    lookup(&headers)(name)
                }
            };
            assert_eq!(
                verify(without, BODY, NOW, &keys_of(&signer)),
                Err(WebhookError::MissingHeader(missing))
            );
        }
    }

    #[test]
    fn timestamps_more_than_five_minutes_away_are_rejected_either_way() {
        let signer = WebhookSigner::generate();
        let keys = keys_of(&signer);
        let headers = signer.sign("r-1", "user-1", NOW, BODY);
        for now in [NOW + 301, NOW - 301] {
            assert_eq!(
                verify(lookup(&headers), BODY, now, &keys),
                Err(WebhookError::StaleTimestamp {
                    timestamp: NOW,
                    now
                })
            );
        }
        for now in [NOW + 300, NOW - 300] {
            assert!(verify(lookup(&headers), BODY, now, &keys).is_ok());
        }
    }

    #[test]
    fn malformed_timestamps_and_signatures_are_told_apart() {
        let signer = WebhookSigner::generate();
        let keys = keys_of(&signer);
        let good = signer.sign("r-1", "user-1", NOW, BODY);

        let bad_timestamp = SignedHeaders {
            timestamp: "2026-06-01T00:00:00Z".into(),
            ..good.clone()
        };
        assert_eq!(
            verify(lookup(&bad_timestamp), BODY, NOW, &keys),
            Err(WebhookError::BadTimestamp("2026-06-01T00:00:00Z".into()))
        );

        let not_hex = SignedHeaders {
            signature: "zz".repeat(64),
            ..good.clone()
        };
        assert_eq!(
            verify(lookup(&not_hex), BODY, NOW, &keys),
            Err(WebhookError::SignatureNotHex)
        );

        let short = SignedHeaders {
            signature: good.signature[..64].to_owned(),
            ..good.clone()
        };
        assert_eq!(
            verify(lookup(&short), BODY, NOW, &keys),
            Err(WebhookError::SignatureLength(32))
        );

        assert_eq!(
            verify(lookup(&good), BODY, NOW, &[]),
            Err(WebhookError::NoKeys)
        );
    }

    #[test]
    fn padded_keys_are_accepted() {
        let signer = WebhookSigner::generate();
        let x = signer.jwks()["keys"][0]["x"].as_str().unwrap().to_owned();
        // 32 bytes encode to 43 base64 characters, so standard padding adds one '='.
        let padded = json!({ "keys": [{ "kty": "OKP", "crv": "Ed25519", "x": format!("{x}=") }] });
        let keys = parse_jwks(padded.to_string().as_bytes()).unwrap();
        assert_eq!(keys, vec![signer.verifying_key()]);
    }

    #[test]
    fn any_key_of_the_set_may_verify() {
        let retired = WebhookSigner::generate();
        let current = WebhookSigner::generate();
        let jwks = json!({ "keys": [
            { "kty": "RSA", "n": "AQAB", "e": "AQAB" },
            retired.jwks()["keys"][0],
            current.jwks()["keys"][0],
        ] });
        let keys = parse_jwks(jwks.to_string().as_bytes()).unwrap();
        assert_eq!(keys.len(), 2, "the RSA key is skipped");

        let headers = current.sign("r-1", "user-1", NOW, BODY);
        assert!(verify(lookup(&headers), BODY, NOW, &keys).is_ok());
    }

    #[test]
    fn key_sets_without_usable_keys_are_rejected() {
        assert!(matches!(
            parse_jwks(b"not json"),
            Err(WebhookError::JwksFormat(_))
        ));
        assert!(matches!(
            parse_jwks(br#"{"no_keys":[]}"#),
            Err(WebhookError::JwksFormat(_))
        ));
        assert_eq!(
            parse_jwks(br#"{"keys":[{"kty":"RSA"}]}"#),
            Err(WebhookError::JwksNoEd25519Keys)
        );
        assert_eq!(
            parse_jwks(br#"{"keys":[{"kty":"OKP","crv":"Ed25519","x":"c2hvcnQ"}]}"#),
            Err(WebhookError::JwksBadKey)
        );
    }
}
