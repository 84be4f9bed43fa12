//! AWS Signature Version 4, written against AWS's published algorithm.
//!
//! Every Bedrock request is signed: a canonical form of the request (method, path, query,
//! the signed headers, the payload's SHA-256) is hashed into a "string to sign", which is
//! signed with a key derived from the secret by an HMAC-SHA256 chain over the date, region,
//! service and `aws4_request`. The result goes into the `Authorization` header.
//!
//! Everything here is a pure function of its inputs, the time included, so it is checked
//! against AWS's own worked examples and test-suite vectors (see `tests` below). Secrets and
//! signatures never reach `Debug` output: [`Credentials`] redacts the secret and the session
//! token, and the headers this module adds that carry either are marked sensitive.
//!
//! Paths: for every service but S3, AWS canonicalises the path *as sent*, URI-encoding each
//! byte again (so a Bedrock model id `anthropic.claude-v2:1`, sent as `anthropic.claude-v2%3A1`,
//! appears as `anthropic.claude-v2%253A1` in the canonical request). Paths are not normalised
//! (no `.`/`..` removal): the gateway builds its own paths and never produces those.

use std::collections::BTreeMap;

use hmac::{Hmac, Mac};
use http::header::{HeaderValue, AUTHORIZATION, HOST};
use http::{HeaderMap, HeaderName};
use sha2::{Digest, Sha256};

use crate::config::Secret;

/// The algorithm name that starts the string to sign and the `Authorization` header.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// The request date, in ISO 8601 basic format (`20150830T123600Z`).
pub static X_AMZ_DATE: HeaderName = HeaderName::from_static("x-amz-date");
/// The session token of temporary credentials.
pub static X_AMZ_SECURITY_TOKEN: HeaderName = HeaderName::from_static("x-amz-security-token");
/// The payload's hex SHA-256, sent (and signed) so the service can check the body.
pub static X_AMZ_CONTENT_SHA256: HeaderName = HeaderName::from_static("x-amz-content-sha256");

type HmacSha256 = Hmac<Sha256>;

/// An AWS access key pair, with the session token of temporary credentials (its `Debug`
/// shows only the access key id).
pub use crate::config::AwsCredentials as Credentials;

/// What a request is signed for: region and service name (`bedrock` for Bedrock runtime).
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    /// AWS region, e.g. `us-east-1`.
    pub region: &'a str,
    /// Signing name of the service.
    pub service: &'a str,
}

/// Why a request could not be signed. Carries no secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    /// The URI has no authority and no `Host` header was given.
    #[error("the request has no host to sign")]
    NoHost,
    /// A computed header value (date, token, authorization) is not a valid header value.
    #[error("`{0}` cannot be sent as an HTTP header value")]
    BadHeader(&'static str),
}

/// Signs a request in place: adds `x-amz-date`, `x-amz-security-token` (with temporary
/// credentials), `host` (when missing) and `Authorization`.
///
/// Every header already in `headers` is signed (except `authorization`, `user-agent` and
/// `expect`, which intermediaries may change), so whatever the caller wants covered, such as
/// `content-type` and `x-amz-content-sha256`, must be in the map before the call. The
/// `payload_hash` is the hex SHA-256 of the body ([`hex_sha256`]). `unix_secs` is the signing
/// time; AWS rejects signatures more than five minutes off its clock.
pub fn sign(
    method: &str,
    uri: &http::Uri,
    headers: &mut HeaderMap,
    payload_hash: &str,
    creds: &Credentials,
    scope: Scope<'_>,
    unix_secs: u64,
) -> Result<(), SignError> {
    let amz_date = amz_date(unix_secs);
    headers.insert(
        X_AMZ_DATE.clone(),
        HeaderValue::from_str(&amz_date).map_err(|_| SignError::BadHeader("x-amz-date"))?,
    );
    if let Some(token) = &creds.session_token {
        let mut value = HeaderValue::from_str(token.expose())
            .map_err(|_| SignError::BadHeader("x-amz-security-token"))?;
        value.set_sensitive(true);
        headers.insert(X_AMZ_SECURITY_TOKEN.clone(), value);
    }
    if !headers.contains_key(HOST) {
        let host = host_header(uri).ok_or(SignError::NoHost)?;
        headers.insert(
            HOST,
            HeaderValue::from_str(&host).map_err(|_| SignError::NoHost)?,
        );
    }
    headers.remove(AUTHORIZATION);

    let (canonical, signed_headers) = canonical_request(
        method,
        uri.path(),
        uri.query().unwrap_or(""),
        headers,
        payload_hash,
    );
    let to_sign = string_to_sign(&amz_date, scope, &canonical);
    let key = signing_key(&creds.secret_access_key, &amz_date[..8], scope);
    let signature = hex(&hmac(&key, to_sign.as_bytes()));
    let authorization = format!(
        "{ALGORITHM} Credential={}/{}, SignedHeaders={signed_headers}, Signature={signature}",
        creds.access_key_id,
        credential_scope(&amz_date[..8], scope),
    );
    let mut value =
        HeaderValue::from_str(&authorization).map_err(|_| SignError::BadHeader("authorization"))?;
    value.set_sensitive(true);
    headers.insert(AUTHORIZATION, value);
    Ok(())
}

/// The `Host` header value for a URI, as the HTTP client sends it: the port only when it is
/// given and not the scheme's default.
pub fn host_header(uri: &http::Uri) -> Option<String> {
    let authority = uri.authority()?;
    let default_port = if uri.scheme_str() == Some("https") {
        443
    } else {
        80
    };
    Some(match authority.port_u16() {
        Some(p) if p != default_port => format!("{}:{p}", authority.host()),
        _ => authority.host().to_owned(),
    })
}

/// Headers never signed: proxies and clients may rewrite them.
const UNSIGNED: [&str; 3] = ["authorization", "user-agent", "expect"];

/// The canonical request and its signed-headers list (`host;x-amz-date`).
pub fn canonical_request(
    method: &str,
    path: &str,
    query: &str,
    headers: &HeaderMap,
    payload_hash: &str,
) -> (Vec<u8>, String) {
    let mut by_name: BTreeMap<&str, Vec<u8>> = BTreeMap::new();
    for (name, value) in headers {
        let name = name.as_str();
        if UNSIGNED.contains(&name) {
            continue;
        }
        let slot = by_name.entry(name).or_default();
        if !slot.is_empty() {
            slot.push(b',');
        }
        push_trimmed(slot, value.as_bytes());
    }
    let signed_headers = by_name.keys().copied().collect::<Vec<_>>().join(";");

    let mut out = Vec::with_capacity(256 + path.len() + query.len());
    out.extend_from_slice(method.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(canonical_uri(path).as_bytes());
    out.push(b'\n');
    out.extend_from_slice(canonical_query(query).as_bytes());
    out.push(b'\n');
    for (name, value) in &by_name {
        out.extend_from_slice(name.as_bytes());
        out.push(b':');
        out.extend_from_slice(value);
        out.push(b'\n');
    }
    out.push(b'\n');
    out.extend_from_slice(signed_headers.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(payload_hash.as_bytes());
    (out, signed_headers)
}

/// Appends a header value with leading and trailing spaces removed and runs of spaces inside
/// collapsed to one, as the canonical form requires.
fn push_trimmed(out: &mut Vec<u8>, value: &[u8]) {
    let is_space = |b: &u8| *b == b' ' || *b == b'\t';
    let start = value
        .iter()
        .position(|b| !is_space(b))
        .unwrap_or(value.len());
    let end = value
        .iter()
        .rposition(|b| !is_space(b))
        .map_or(start, |i| i + 1);
    let mut last_space = false;
    for b in value.get(start..end).unwrap_or_default() {
        if is_space(b) {
            if !last_space {
                out.push(b' ');
            }
            last_space = true;
        } else {
            out.push(*b);
            last_space = false;
        }
    }
}

/// The canonical URI: the path as sent, every byte but unreserved characters and `/`
/// percent-encoded (again, for a path already percent-encoded); `/` for an empty path.
pub fn canonical_uri(path: &str) -> String {
    if path.is_empty() {
        return "/".to_owned();
    }
    let mut out = String::with_capacity(path.len() + 8);
    for b in path.bytes() {
        if b == b'/' {
            out.push('/');
        } else {
            push_encoded(&mut out, b);
        }
    }
    out
}

/// The canonical query: parameters decoded, re-encoded strictly, and sorted by name then value.
pub fn canonical_query(query: &str) -> String {
    let mut params: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (
                uri_encode(&percent_decode(k)),
                uri_encode(&percent_decode(v)),
            )
        })
        .collect();
    params.sort();
    let mut out = String::with_capacity(query.len() + 8);
    for (i, (k, v)) in params.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
    out
}

/// URI-encodes every byte except the unreserved characters `A-Z a-z 0-9 - _ . ~`, with
/// upper-case hex digits, as SigV4 requires (a Bedrock model id's `:` becomes `%3A`).
pub fn uri_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + 8);
    for &b in bytes {
        push_encoded(&mut out, b);
    }
    out
}

fn push_encoded(out: &mut String, b: u8) {
    if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
        out.push(char::from(b));
    } else {
        const HEX: &[u8; 16] = b"0123456789ABCDEF";
        out.push('%');
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
}

fn percent_decode(s: &str) -> Vec<u8> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                let v = hex(h).unwrap_or(0) * 16 + hex(l).unwrap_or(0);
                out.push(u8::try_from(v).unwrap_or(0));
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

/// `<yyyymmdd>/<region>/<service>/aws4_request`.
pub fn credential_scope(date: &str, scope: Scope<'_>) -> String {
    format!("{date}/{}/{}/aws4_request", scope.region, scope.service)
}

/// The string to sign: algorithm, request date, credential scope and the canonical request's
/// hex SHA-256, one per line.
pub fn string_to_sign(amz_date: &str, scope: Scope<'_>, canonical_request: &[u8]) -> String {
    format!(
        "{ALGORITHM}\n{amz_date}\n{}\n{}",
        credential_scope(amz_date.get(..8).unwrap_or(amz_date), scope),
        hex_sha256(canonical_request)
    )
}

/// The signing key: `HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service),
/// "aws4_request")`. It is key material, so it is returned as bytes and never printed.
pub fn signing_key(secret: &Secret, date: &str, scope: Scope<'_>) -> [u8; 32] {
    let k_secret = format!("AWS4{}", secret.expose());
    let k_date = hmac(k_secret.as_bytes(), date.as_bytes());
    let k_region = hmac(&k_date, scope.region.as_bytes());
    let k_service = hmac(&k_region, scope.service.as_bytes());
    hmac(&k_service, b"aws4_request")
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length, so this cannot fail; a zero key is unreachable.
    match HmacSha256::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(data);
            mac.finalize().into_bytes().into()
        }
        Err(_) => [0; 32],
    }
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
    out
}

/// Hex SHA-256 of `data`, the form the payload hash and the canonical request hash take.
pub fn hex_sha256(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

/// `unix_secs` as ISO 8601 basic UTC time, `YYYYMMDDTHHMMSSZ`.
pub fn amz_date(unix_secs: u64) -> String {
    let days = i64::try_from(unix_secs / 86_400).unwrap_or(0);
    let secs = unix_secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        secs / 3600,
        (secs % 3600) / 60,
        secs % 60
    )
}

/// Gregorian date of a day count since 1970-01-01 (Howard Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    (
        y,
        u32::try_from(m).unwrap_or(1),
        u32::try_from(d).unwrap_or(1),
    )
}

#[cfg(test)]
mod tests;
