//! Signed, expiring object URLs: the embedded stand-in for S3 presigned requests.

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Why a signed URL was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The signature does not match what was signed (tampered, wrong method, other key).
    #[error("invalid signature")]
    Invalid,
    /// The signature is genuine but its expiry has passed.
    #[error("the signed URL has expired")]
    Expired,
}

/// Signs and checks object URLs with a key derived from the platform secret.
///
/// The key is `HMAC-SHA256(SECRET_KEY, "synth-object-urls")`, so a URL signature can never
/// be replayed as (or reveal anything about) a JWT signed with the same secret.
#[derive(Clone)]
pub struct UrlSigner {
    key: [u8; 32],
}

impl std::fmt::Debug for UrlSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UrlSigner(<redacted>)")
    }
}

impl UrlSigner {
    /// A signer keyed for object URLs by `secret_key`.
    pub fn new(secret_key: &str) -> Self {
        let mut mac =
            HmacSha256::new_from_slice(secret_key.as_bytes()).expect("HMAC takes any key length");
        mac.update(b"synth-object-urls");
        Self {
            key: mac.finalize().into_bytes().into(),
        }
    }

    fn mac(&self, method: &str, key: &str, expires: i64, content_type: &str) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes any key length");
        // Length-prefixed fields: no two different requests share a message.
        mac.update(b"v1");
        for field in [
            method.as_bytes(),
            key.as_bytes(),
            expires.to_string().as_bytes(),
            content_type.as_bytes(),
        ] {
            mac.update(&(field.len() as u64).to_be_bytes());
            mac.update(field);
        }
        mac
    }

    /// The hex signature of a request: `method` (GET or PUT), object `key`, expiry in Unix
    /// seconds and, for PUT, the content type the upload must carry (empty for GET).
    pub fn sign(&self, method: &str, key: &str, expires: i64, content_type: &str) -> String {
        hex::encode(
            self.mac(method, key, expires, content_type)
                .finalize()
                .into_bytes(),
        )
    }

    /// Check a signature in constant time, then its expiry against `now`.
    pub fn verify(
        &self,
        method: &str,
        key: &str,
        expires: i64,
        content_type: &str,
        signature: &str,
        now: DateTime<Utc>,
    ) -> Result<(), SignatureError> {
        let sig = hex::decode(signature).map_err(|_| SignatureError::Invalid)?;
        self.mac(method, key, expires, content_type)
            .verify_slice(&sig)
            .map_err(|_| SignatureError::Invalid)?;
        if now.timestamp() > expires {
            return Err(SignatureError::Expired);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_tampering_wrong_method_other_keys_and_expiry() {
        let s = UrlSigner::new("secret");
        let now = Utc::now();
        let exp = now.timestamp() + 60;
        let sig = s.sign("PUT", "a/b.csv", exp, "text/csv");
        assert_eq!(
            s.verify("PUT", "a/b.csv", exp, "text/csv", &sig, now),
            Ok(())
        );
        let bad = Err(SignatureError::Invalid);
        assert_eq!(s.verify("GET", "a/b.csv", exp, "text/csv", &sig, now), bad);
        assert_eq!(s.verify("PUT", "a/c.csv", exp, "text/csv", &sig, now), bad);
        assert_eq!(
            s.verify("PUT", "a/b.csv", exp + 1, "text/csv", &sig, now),
            bad
        );
        assert_eq!(s.verify("PUT", "a/b.csv", exp, "text/html", &sig, now), bad);
        assert_eq!(s.verify("PUT", "a/b.csv", exp, "text/csv", "zz", now), bad);
        let mut flipped = sig.clone().into_bytes();
        flipped[0] = if flipped[0] == b'0' { b'1' } else { b'0' };
        let flipped = String::from_utf8(flipped).unwrap();
        assert_eq!(
            s.verify("PUT", "a/b.csv", exp, "text/csv", &flipped, now),
            bad
        );
        let other = UrlSigner::new("other secret");
        assert_eq!(
            other.verify("PUT", "a/b.csv", exp, "text/csv", &sig, now),
            bad
        );
        let later = now + chrono::Duration::seconds(61);
        assert_eq!(
            s.verify("PUT", "a/b.csv", exp, "text/csv", &sig, later),
            Err(SignatureError::Expired)
        );
    }

    #[test]
    fn the_url_key_is_derived_for_this_purpose_only() {
        let s = UrlSigner::new("secret");
        let mut m = HmacSha256::new_from_slice(b"secret").unwrap();
        m.update(b"synth-object-urls");
        assert_eq!(&s.key[..], &m.finalize().into_bytes()[..]);
    }
}
