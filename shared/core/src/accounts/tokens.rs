//! Access tokens (JWT, HS256) and refresh tokens (opaque, stored hashed).

use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::Role;

pub const ISSUER: &str = "synth";
pub const AUDIENCE: &str = "synth-api";

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: String,
    pub role: Role,
    /// The session (refresh-token family) the token was issued in.
    pub sid: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
    pub iss: String,
    pub aud: String,
}

/// Issues and checks access tokens with the platform's secret.
#[derive(Clone)]
pub struct TokenIssuer {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl_seconds: i64,
}

impl TokenIssuer {
    pub fn new(secret: &str, ttl_minutes: u64) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iat", "sub", "iss", "aud"]);
        validation.leeway = 0;
        Self {
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            decoding: DecodingKey::from_secret(secret.as_bytes()),
            validation,
            ttl_seconds: (ttl_minutes as i64).saturating_mul(60),
        }
    }

    /// Lifetime of an access token in seconds.
    pub fn ttl_seconds(&self) -> i64 {
        self.ttl_seconds
    }

    /// A signed access token for a user in a session.
    pub fn issue(&self, user_id: &str, role: Role, session_id: &str) -> String {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            sub: user_id.into(),
            role,
            sid: session_id.into(),
            iat: now,
            exp: now + self.ttl_seconds,
            jti: uuid::Uuid::new_v4().to_string(),
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .expect("HS256 signing succeeds")
    }

    /// The claims of a valid token: right algorithm, signature, issuer, audience, unexpired.
    pub fn verify(&self, token: &str) -> Option<Claims> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .ok()
            .map(|d| d.claims)
    }
}

/// A fresh refresh token for a user: `{user_id}.{random}`; only its hash is stored.
pub fn new_refresh_token(user_id: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!(
        "{user_id}.{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// Split a refresh token into its user id and the hash under which it is stored.
pub fn parse_refresh_token(token: &str) -> Option<(String, String)> {
    let (user, secret) = token.split_once('.')?;
    if user.is_empty() || secret.len() < 40 {
        return None;
    }
    Some((user.to_owned(), sha256_hex(secret)))
}

pub fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_and_refuse_tampering() {
        let t = TokenIssuer::new("a-secret-of-at-least-thirty-two-bytes!!", 30);
        let token = t.issue("u1", Role::Admin, "s1");
        let c = t.verify(&token).unwrap();
        assert_eq!(
            (c.sub.as_str(), c.role, c.sid.as_str()),
            ("u1", Role::Admin, "s1")
        );
        assert_eq!(c.exp - c.iat, 1800);
        let other = TokenIssuer::new("another-secret-of-at-least-thirty-two-b", 30);
        assert!(other.verify(&token).is_none(), "bad signature");
        let expired = TokenIssuer {
            ttl_seconds: -10,
            ..t.clone()
        }
        .issue("u1", Role::User, "s1");
        assert!(t.verify(&expired).is_none(), "expired");
        // alg: none
        let parts: Vec<_> = token.split('.').collect();
        let none_header = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(r#"{"alg":"none","typ":"JWT"}"#);
        assert!(t.verify(&format!("{none_header}.{}.", parts[1])).is_none());
    }

    #[test]
    fn refresh_tokens_parse_to_user_and_hash() {
        let tok = new_refresh_token("u1");
        let (user, hash) = parse_refresh_token(&tok).unwrap();
        assert_eq!(user, "u1");
        assert_eq!(hash.len(), 64);
        assert!(parse_refresh_token("garbage").is_none());
    }
}
