//! Checking a request's SigV4 `Authorization` the way Bedrock does, from the server's side.
//!
//! Every request must carry a well-formed `AWS4-HMAC-SHA256` authorization for the `bedrock`
//! service: a credential scope `<key id>/<yyyymmdd>/<region>/bedrock/aws4_request` whose date
//! matches `x-amz-date` (itself within 15 minutes of the mock's clock), a sorted
//! `SignedHeaders` list that includes `host` and `x-amz-date` and names only headers that were
//! sent, and a 64-digit hex signature. For the mock's published test key
//! ([`super::BEDROCK_ACCESS_KEY_ID`]) the signature itself is recomputed from the request as
//! received and must match; other key ids have no secret the mock could know, so only their
//! structure is checked. This is the receiving side of the algorithm, written independently of
//! the gateway's signer (which builds a request; this reads one).

use hmac::{Hmac, Mac};
use http::request::Parts;
use sha2::{Digest, Sha256};

use super::{BEDROCK_ACCESS_KEY_ID, BEDROCK_SECRET_ACCESS_KEY};

/// Why a request is refused: the exception name and Bedrock's message for it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub(crate) exception: &'static str,
    pub(crate) message: String,
}

fn refuse(exception: &'static str, message: impl Into<String>) -> Refusal {
    Refusal {
        exception,
        message: message.into(),
    }
}

/// Largest clock difference accepted between `x-amz-date` and the mock's clock.
const MAX_SKEW_SECS: u64 = 15 * 60;

/// Checks the authorization of a request with body `body`, at `now` (Unix seconds).
pub(crate) fn check(parts: &Parts, body: &[u8], now: u64) -> Result<(), Refusal> {
    let Some(auth) = parts.headers.get(http::header::AUTHORIZATION) else {
        return Err(refuse(
            "MissingAuthenticationTokenException",
            "Missing Authentication Token",
        ));
    };
    let auth = auth.to_str().map_err(|_| {
        refuse(
            "IncompleteSignatureException",
            "Invalid Authorization header",
        )
    })?;
    let Some(fields) = auth.strip_prefix("AWS4-HMAC-SHA256 ") else {
        return Err(refuse(
            "IncompleteSignatureException",
            "Authorization header requires the AWS4-HMAC-SHA256 algorithm",
        ));
    };
    let mut credential = None;
    let mut signed_headers = None;
    let mut signature = None;
    for field in fields.split(',').map(str::trim) {
        match field.split_once('=') {
            Some(("Credential", v)) => credential = Some(v),
            Some(("SignedHeaders", v)) => signed_headers = Some(v),
            Some(("Signature", v)) => signature = Some(v),
            _ => {}
        }
    }
    let (Some(credential), Some(signed_headers), Some(signature)) =
        (credential, signed_headers, signature)
    else {
        return Err(refuse(
            "IncompleteSignatureException",
            "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' \
             parameters",
        ));
    };

    let scope: Vec<&str> = credential.split('/').collect();
    let [key_id, date, region, service, terminator] = scope[..] else {
        return Err(refuse(
            "IncompleteSignatureException",
            format!("Credential must have the form <key>/<date>/<region>/<service>/aws4_request, got {credential}"),
        ));
    };
    if key_id.is_empty()
        || date.len() != 8
        || !date.bytes().all(|b| b.is_ascii_digit())
        || region.is_empty()
        || terminator != "aws4_request"
    {
        return Err(refuse(
            "IncompleteSignatureException",
            format!("Credential scope is malformed: {credential}"),
        ));
    }
    if service != "bedrock" {
        return Err(refuse(
            "InvalidSignatureException",
            format!("Credential should be scoped to correct service: 'bedrock'. (got '{service}')"),
        ));
    }
    let names: Vec<&str> = signed_headers.split(';').collect();
    let sorted = names.windows(2).all(|w| w[0] < w[1]);
    let lower = names
        .iter()
        .all(|n| !n.is_empty() && !n.bytes().any(|b| b.is_ascii_uppercase()));
    if !sorted || !lower || !names.contains(&"host") || !names.contains(&"x-amz-date") {
        return Err(refuse(
            "InvalidSignatureException",
            "SignedHeaders must be lower-case, sorted, and include host and x-amz-date",
        ));
    }
    if let Some(missing) = names.iter().find(|n| !parts.headers.contains_key(**n)) {
        return Err(refuse(
            "InvalidSignatureException",
            format!("The signed header '{missing}' is not in the request"),
        ));
    }
    if signature.len() != 64
        || !signature
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    {
        return Err(refuse(
            "IncompleteSignatureException",
            "Signature must be 64 lower-case hex digits",
        ));
    }

    let amz_date = parts
        .headers
        .get("x-amz-date")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let Some(signed_at) = parse_amz_date(amz_date) else {
        return Err(refuse(
            "IncompleteSignatureException",
            format!("x-amz-date must be an ISO 8601 basic UTC time such as 20150830T123600Z, got '{amz_date}'"),
        ));
    };
    if !amz_date.starts_with(date) {
        return Err(refuse(
            "InvalidSignatureException",
            format!("Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{date}' != '{}'", &amz_date[..8]),
        ));
    }
    if signed_at.abs_diff(now) > MAX_SKEW_SECS {
        return Err(refuse(
            "InvalidSignatureException",
            format!("Signature expired: {amz_date} is too far from the server's time"),
        ));
    }

    if key_id != BEDROCK_ACCESS_KEY_ID {
        return Ok(());
    }
    let payload_hash = hex(&Sha256::digest(body));
    if let Some(sent) = parts.headers.get("x-amz-content-sha256") {
        if sent.as_bytes() != payload_hash.as_bytes() {
            return Err(refuse(
                "InvalidSignatureException",
                "The provided 'x-amz-content-sha256' header does not match what was computed.",
            ));
        }
    }
    let canonical = canonical_request(parts, &names, &payload_hash);
    let scope = format!("{date}/{region}/{service}/aws4_request");
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex(&Sha256::digest(canonical.as_bytes()))
    );
    let mut key = hmac(format!("AWS4{BEDROCK_SECRET_ACCESS_KEY}").as_bytes(), date);
    for part in [region, service, "aws4_request"] {
        key = hmac(&key, part);
    }
    let expected = hex(&hmac(&key, &to_sign));
    if expected != signature {
        return Err(refuse(
            "InvalidSignatureException",
            "The request signature we calculated does not match the signature you provided. \
             Check your AWS Secret Access Key and signing method. Consult the service \
             documentation for details.",
        ));
    }
    Ok(())
}

/// The canonical request as the server rebuilds it: the received path re-encoded (services
/// other than S3 encode the path twice), the query sorted, the signed headers' values trimmed.
pub(super) fn canonical_request(parts: &Parts, names: &[&str], payload_hash: &str) -> String {
    let path = parts
        .uri
        .path()
        .split('/')
        .map(encode)
        .collect::<Vec<_>>()
        .join("/");
    let mut query: Vec<String> = parts
        .uri
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            format!("{}={}", encode(k), encode(v))
        })
        .collect();
    query.sort();
    let mut headers = String::new();
    for name in names {
        let values: Vec<String> = parts
            .headers
            .get_all(*name)
            .iter()
            .map(|v| {
                String::from_utf8_lossy(v.as_bytes())
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        headers.push_str(&format!("{name}:{}\n", values.join(",")));
    }
    format!(
        "{}\n{}\n{}\n{headers}\n{}\n{payload_hash}",
        parts.method,
        if path.is_empty() {
            "/".to_owned()
        } else {
            path
        },
        query.join("&"),
        names.join(";")
    )
}

/// Percent-encodes everything but unreserved characters, upper-case hex.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

pub(super) fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(data.as_bytes());
            mac.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    }
}

pub(super) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Unix seconds of an `x-amz-date` (`YYYYMMDDTHHMMSSZ`).
pub(crate) fn parse_amz_date(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u64> { s.get(r)?.parse().ok() };
    let (y, m, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (hh, mm, ss) = (num(9..11)?, num(11..13)?, num(13..15)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    // Days from the civil date (Howard Hinnant's days_from_civil), for years from 1970.
    let y = if m <= 2 { y.checked_sub(1)? } else { y };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = (era * 146_097 + doe).checked_sub(719_468)?;
    Some(days * 86_400 + hh * 3600 + mm * 60 + ss)
}
