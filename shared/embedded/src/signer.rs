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

/// What a signed URL allows: one method on one object until `expires` (Unix seconds); for
/// a PUT, the content type the upload must carry and its exact length in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignedRequest<'a> {
    pub method: &'a str,
    pub key: &'a str,
    pub expires: i64,
    /// Empty for a GET.
    pub content_type: &'a str,
    /// `None` for a GET.
    pub content_length: Option<u64>,
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

    fn mac(&self, req: &SignedRequest<'_>) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes any key length");
        // Length-prefixed fields: no two different requests share a message.
        mac.update(b"v2");
        let length = req
            .content_length
            .map(|n| n.to_string())
            .unwrap_or_default();
        for field in [
            req.method.as_bytes(),
            req.key.as_bytes(),
            req.expires.to_string().as_bytes(),
            req.content_type.as_bytes(),
            length.as_bytes(),
        ] {
            mac.update(&(field.len() as u64).to_be_bytes());
            mac.update(field);
        }
        mac
    }

    /// The hex signature of a request.
    pub fn sign(&self, req: &SignedRequest<'_>) -> String {
        hex::encode(self.mac(req).finalize().into_bytes())
    }

    /// Check a signature in constant time, then its expiry against `now`.
    pub fn verify(
        &self,
        req: &SignedRequest<'_>,
        signature: &str,
        now: DateTime<Utc>,
    ) -> Result<(), SignatureError> {
        let sig = hex::decode(signature).map_err(|_| SignatureError::Invalid)?;
        self.mac(req)
            .verify_slice(&sig)
            .map_err(|_| SignatureError::Invalid)?;
        if now.timestamp() > req.expires {
            return Err(SignatureError::Expired);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_tampering_wrong_method_other_keys_lengths_and_expiry() {
        let s = UrlSigner::new("secret");
        let now = Utc::now();
        let req = SignedRequest {
            method: "PUT",
            key: "a/b.csv",
            expires: now.timestamp() + 60,
            content_type: "text/csv",
            content_length: Some(150),
        };
        let sig = s.sign(&req);
        assert_eq!(s.verify(&req, &sig, now), Ok(()));
        let bad = Err(SignatureError::Invalid);
        let changed = [
            SignedRequest {
                method: "GET",
                ..req
            },
            SignedRequest {
                key: "a/c.csv",
                ..req
            },
            SignedRequest {
                expires: req.expires + 1,
                ..req
            },
            SignedRequest {
                content_type: "text/html",
                ..req
            },
            SignedRequest {
                content_length: Some(151),
                ..req
            },
            SignedRequest {
                content_length: None,
                ..req
            },
        ];
        for other in changed {
            assert_eq!(s.verify(&other, &sig, now), bad, "{other:?}");
        }
        assert_eq!(s.verify(&req, "zz", now), bad);
        let mut flipped = sig.clone().into_bytes();
        flipped[0] = if flipped[0] == b'0' { b'1' } else { b'0' };
        let flipped = String::from_utf8(flipped).unwrap();
        assert_eq!(s.verify(&req, &flipped, now), bad);
        let other = UrlSigner::new("other secret");
        assert_eq!(other.verify(&req, &sig, now), bad);
        let later = now + chrono::Duration::seconds(61);
        assert_eq!(s.verify(&req, &sig, later), Err(SignatureError::Expired));
    }

    #[test]
    fn the_url_key_is_derived_for_this_purpose_only() {
        let s = UrlSigner::new("secret");
        let mut m = HmacSha256::new_from_slice(b"secret").unwrap();
        m.update(b"synth-object-urls");
        assert_eq!(&s.key[..], &m.finalize().into_bytes()[..]);
    }
}
