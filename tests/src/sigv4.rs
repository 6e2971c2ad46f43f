//! S3's check of a presigned URL, for the AWS family: the emulator does not verify presigned
//! signatures, so the tests judge a request here as S3 would — signature and expiry.
//!
//! [`check`] takes the request a client would send (method, URL, headers), strips the
//! URL's signature, signs the rest again with the test credentials at the URL's own signing
//! time and expiry — with the `aws-sigv4` crate, the signer the SDK itself uses, set as the
//! SDK sets it for S3 presigning (query-string signature, unsigned payload, no double
//! encoding or path normalisation) — over the headers the URL says it signed, with the
//! values the request carries, and compares the two signatures. A URL signed for another
//! key, method, length or content type, one whose query was changed, and one past its
//! expiry are refused, as S3 refuses them.

use std::time::{Duration, SystemTime};

use aws_sdk_s3::config::Credentials;
use aws_sigv4::http_request::{
    PercentEncodingMode, SignableBody, SignableRequest, SignatureLocation, SigningSettings,
    UriPathNormalizationMode, sign,
};
use aws_sigv4::sign::v4;

/// The credentials the tests run with (`scripts/test` exports them for the SDK).
pub const ACCESS_KEY: &str = "testing";
pub const SECRET_KEY: &str = "testing";

/// Why S3 would refuse a presigned request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The signature does not match the request (403 `SignatureDoesNotMatch`).
    #[error("the signature does not match the request")]
    BadSignature,
    /// Signed correctly, but later than its expiry (403 "Request has expired").
    #[error("the request has expired")]
    Expired,
    /// Not a SigV4 presigned URL (a parameter missing or malformed).
    #[error("not a presigned SigV4 URL: {0}")]
    Malformed(String),
}

/// What a valid presigned URL says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presigned {
    pub signed_at: SystemTime,
    pub expires_in: Duration,
    /// The signed header names, lower-case, as the URL lists them.
    pub signed_headers: Vec<String>,
}

/// The URL's signing parameters.
struct Params {
    region: String,
    signed_at: SystemTime,
    expires_in: Duration,
    signed_headers: Vec<String>,
    signature: String,
    /// The URL without its `X-Amz-*` parameters: what was signed.
    unsigned_url: String,
}

fn malformed(what: impl std::fmt::Display) -> Refusal {
    Refusal::Malformed(what.to_string())
}

fn params(url: &str) -> Result<Params, Refusal> {
    let parsed = reqwest::Url::parse(url).map_err(malformed)?;
    let query: std::collections::HashMap<String, String> =
        parsed.query_pairs().into_owned().collect();
    let get = |name: &str| {
        query
            .get(name)
            .cloned()
            .ok_or_else(|| malformed(format!("no {name}")))
    };
    if get("X-Amz-Algorithm")? != "AWS4-HMAC-SHA256" {
        return Err(malformed("not AWS4-HMAC-SHA256"));
    }
    let credential = get("X-Amz-Credential")?;
    let scope: Vec<&str> = credential.split('/').collect();
    let [key, day, region, "s3", "aws4_request"] = scope[..] else {
        return Err(malformed(format!("credential scope {credential}")));
    };
    if key != ACCESS_KEY {
        return Err(Refusal::BadSignature);
    }
    let date = get("X-Amz-Date")?;
    let at = chrono::NaiveDateTime::parse_from_str(&date, "%Y%m%dT%H%M%SZ").map_err(malformed)?;
    if !date.starts_with(day) {
        return Err(malformed("the scope's day is not the signing day"));
    }
    let expires: u64 = get("X-Amz-Expires")?.parse().map_err(malformed)?;
    // The query as sent, less the signer's parameters, which signing adds back.
    let kept: Vec<&str> = parsed
        .query()
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty() && !p.starts_with("X-Amz-"))
        .collect();
    let mut unsigned = parsed.clone();
    unsigned.set_query((!kept.is_empty()).then(|| kept.join("&")).as_deref());
    Ok(Params {
        region: region.to_owned(),
        signed_at: SystemTime::from(at.and_utc()),
        expires_in: Duration::from_secs(expires),
        signed_headers: get("X-Amz-SignedHeaders")?
            .split(';')
            .map(str::to_owned)
            .collect(),
        signature: get("X-Amz-Signature")?,
        unsigned_url: unsigned.to_string(),
    })
}

/// Judge `method url`, sent at `now` with `headers` (name, value; `host` comes from the
/// URL), as S3 judges a presigned request.
pub fn check(
    method: &str,
    url: &str,
    headers: &[(String, String)],
    now: SystemTime,
) -> Result<Presigned, Refusal> {
    let p = params(url)?;
    // The headers the URL signed, with the values this request carries; one it lacks makes
    // the signature fail, as it does at S3.
    let mut sent = Vec::new();
    for name in p.signed_headers.iter().filter(|h| *h != "host") {
        let value = headers
            .iter()
            .find(|(h, _)| h.eq_ignore_ascii_case(name))
            .ok_or(Refusal::BadSignature)?;
        sent.push((name.as_str(), value.1.as_str()));
    }
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(p.expires_in);
    settings.percent_encoding_mode = PercentEncodingMode::Single;
    settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    let identity = Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "tests").into();
    let signing = v4::SigningParams::builder()
        .identity(&identity)
        .region(&p.region)
        .name("s3")
        .time(p.signed_at)
        .settings(settings)
        .build()
        .map_err(malformed)?
        .into();
    let request = SignableRequest::new(
        method,
        p.unsigned_url.as_str(),
        sent.into_iter(),
        SignableBody::UnsignedPayload,
    )
    .map_err(malformed)?;
    let (instructions, signature) = sign(request, &signing).map_err(malformed)?.into_parts();
    let signed_headers = instructions
        .params()
        .iter()
        .find(|(k, _)| *k == "X-Amz-SignedHeaders")
        .map(|(_, v)| v.to_string());
    if signature != p.signature || signed_headers != Some(p.signed_headers.join(";")) {
        return Err(Refusal::BadSignature);
    }
    if now > p.signed_at + p.expires_in {
        return Err(Refusal::Expired);
    }
    Ok(Presigned {
        signed_at: p.signed_at,
        expires_in: p.expires_in,
        signed_headers: p.signed_headers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Real URLs from the SDK are checked against the emulator in contract.rs; here, what
    /// needs no signer: a URL that is no SigV4 presigned URL, or signed with other keys.
    #[test]
    fn urls_without_sigv4_parameters_are_malformed() {
        let now = SystemTime::now();
        for url in [
            "http://127.0.0.1:1/bucket/key",
            "http://127.0.0.1:1/bucket/key?X-Amz-Algorithm=AWS4-HMAC-SHA1",
            "not a url",
        ] {
            assert!(
                matches!(check("GET", url, &[], now), Err(Refusal::Malformed(_))),
                "{url}"
            );
        }
        let other_key = "http://h/b/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=\
                         AKID%2F20240101%2Fus-east-1%2Fs3%2Faws4_request";
        assert_eq!(
            check("GET", other_key, &[], now),
            Err(Refusal::BadSignature)
        );
    }
}
