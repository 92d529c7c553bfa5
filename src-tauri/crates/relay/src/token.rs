//! The relay token that trusted senders and the app present as `Authorization: Bearer <token>`.

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use sha2::{Digest, Sha256};

/// Holds only the token's SHA-256, so the token itself cannot end up in a log or a dump.
/// Comparing digests also takes the same time whatever the length of a guess.
pub struct BearerToken {
    digest: [u8; 32],
}

impl BearerToken {
    pub fn new(token: &str) -> Self {
        Self {
            digest: Sha256::digest(token.as_bytes()).into(),
        }
    }

    /// Whether the request carries `Authorization: Bearer <this token>`.
    pub fn authorizes(&self, headers: &HeaderMap) -> bool {
        let Some(presented) = presented(headers) else {
            return false;
        };
        let presented: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        // Every byte is compared, whichever differ, so the time taken tells nothing.
        let difference = presented
            .iter()
            .zip(&self.digest)
            .fold(0u8, |difference, (a, b)| difference | (a ^ b));
        difference == 0
    }
}

/// Whether the request tries bearer authentication at all.
pub fn is_presented(headers: &HeaderMap) -> bool {
    presented(headers).is_some()
}

fn presented(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_authorization(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, value.parse().unwrap());
        headers
    }

    #[test]
    fn only_the_exact_token_authorizes() {
        let token = BearerToken::new("s3cret-token-value");
        assert!(token.authorizes(&with_authorization("Bearer s3cret-token-value")));
        assert!(token.authorizes(&with_authorization("bearer s3cret-token-value")));
        for wrong in [
            "Bearer s3cret-token-valu",
            "Bearer s3cret-token-value2",
            "Bearer ",
            "Basic s3cret-token-value",
            "s3cret-token-value",
        ] {
            assert!(!token.authorizes(&with_authorization(wrong)), "{wrong}");
        }
        assert!(!token.authorizes(&HeaderMap::new()));
    }
}
