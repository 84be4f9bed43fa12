//! Who and what a request is for: team, end user and free-form tags.
//!
//! Routing rules match on it, the request log line carries it, and cost accounting groups spend
//! by it. It is gathered once per request from:
//! - the virtual key's `team:` in the config (a key belongs to at most one team);
//! - the end user: the `x-switchyard-user` header, else the body's `user` (OpenAI) or
//!   `metadata.user_id` (Anthropic);
//! - tags: the body's `metadata` object (OpenAI chat completions: string values) and the
//!   `x-switchyard-tags: feature=search,experiment=b` header (the header wins on a repeated key).
//!
//! Tags are validated so they are safe as log fields and grouping keys: a key is 1 to 64 of
//! `A-Z a-z 0-9 _ - . :`, a value 1 to 64 of those plus `/ @ +`, and there are at most 16. A bad
//! tag is a 400 that names it; it is never silently dropped, because a misspelt tag would
//! otherwise vanish from every report.

use std::ops::Range;
use std::sync::Arc;

use http::{HeaderMap, HeaderName};

use crate::error::GatewayError;
use crate::providers::Operation;

/// Header naming the end user; wins over the body's `user`.
pub const USER_HEADER: &str = "x-switchyard-user";
/// Header carrying `key=value` tags separated by commas.
pub const TAGS_HEADER: &str = "x-switchyard-tags";
static USER: HeaderName = HeaderName::from_static(USER_HEADER);
static TAGS: HeaderName = HeaderName::from_static(TAGS_HEADER);
/// Most tags a request may carry.
pub const MAX_TAGS: usize = 16;
/// Longest tag key or value.
pub const MAX_TAG_LEN: usize = 64;
/// Longest user id.
pub const MAX_USER_LEN: usize = 256;

/// Who and what a request is for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attribution {
    /// The calling virtual key's team.
    pub team: Option<Arc<str>>,
    /// The end user, as the client named them.
    pub user: Option<Arc<str>>,
    /// Tags, sorted by key, each key once.
    pub tags: Vec<(Arc<str>, Arc<str>)>,
}

impl Attribution {
    /// Gathers the attribution of a request from its key's team, headers and body.
    pub fn resolve(
        team: Option<Arc<str>>,
        op: Operation,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Self, GatewayError> {
        // One scan of the body finds both members.
        let [metadata, user] = switchyard_types::json::top_level_values(body, ["metadata", "user"])
            .unwrap_or_default();
        Self::resolve_at(team, op, headers, body, [metadata, user])
    }

    /// [`Attribution::resolve`] with the spans of the body's top-level `metadata` and `user`
    /// already found, by a scan of the body that also looked for other members (the parse
    /// stage's, for a chat completion).
    pub fn resolve_at(
        team: Option<Arc<str>>,
        op: Operation,
        headers: &HeaderMap,
        body: &[u8],
        [metadata, user]: [Option<Range<usize>>; 2],
    ) -> Result<Self, GatewayError> {
        let mut tags: Vec<(Arc<str>, Arc<str>)> = Vec::new();
        let mut body_user: Option<String> = None;
        if let Some(m) = metadata
            .filter(|_| op != Operation::Embeddings)
            .and_then(|span| body.get(span))
        {
            read_metadata(op, m, &mut tags, &mut body_user)?;
        }
        if let Some(u) = user
            .filter(|_| op != Operation::Messages)
            .and_then(|span| body.get(span))
        {
            if let Ok(Some(u)) = serde_json::from_slice::<Option<String>>(u) {
                body_user = Some(u);
            }
        }
        if let Some(v) = headers.get(&TAGS) {
            let text = v
                .to_str()
                .map_err(|_| bad(TAGS_HEADER, "is not ASCII text"))?;
            for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                let (k, v) = pair.split_once('=').ok_or_else(|| {
                    bad(
                        TAGS_HEADER,
                        &format!("has `{}` without `=`; write `key=value` pairs", clip(pair)),
                    )
                })?;
                push_tag(&mut tags, k.trim(), v.trim(), TAGS_HEADER)?;
            }
        }
        let user = match headers.get(&USER) {
            Some(v) => Some(
                v.to_str()
                    .map_err(|_| bad(USER_HEADER, "is not ASCII text"))?
                    .trim()
                    .to_owned(),
            ),
            None => body_user,
        };
        let user = match user.filter(|u| !u.is_empty()) {
            Some(u) if u.len() > MAX_USER_LEN || u.chars().any(char::is_control) => {
                return Err(bad(
                    "user",
                    &format!(
                        "must be at most {MAX_USER_LEN} characters without control characters"
                    ),
                ));
            }
            Some(u) => Some(Arc::from(u)),
            None => None,
        };
        tags.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(Self { team, user, tags })
    }

    /// The value of tag `key`, if the request carries it.
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags
            .iter()
            .find(|(k, _)| &**k == key)
            .map(|(_, v)| &**v)
    }

    /// `k=v,k=v` for the log line, or `None` without tags.
    pub fn tags_summary(&self) -> Option<String> {
        if self.tags.is_empty() {
            return None;
        }
        let parts: Vec<String> = self.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
        Some(parts.join(","))
    }
}

/// Reads the body's `metadata`: OpenAI's string map becomes tags; Anthropic's only defined
/// member, `user_id`, names the user.
fn read_metadata(
    op: Operation,
    raw: &[u8],
    tags: &mut Vec<(Arc<str>, Arc<str>)>,
    user: &mut Option<String>,
) -> Result<(), GatewayError> {
    let Ok(map) = serde_json::from_slice::<Option<serde_json::Map<String, serde_json::Value>>>(raw)
    else {
        return Err(bad("metadata", "must be an object"));
    };
    for (k, v) in map.into_iter().flatten() {
        if op == Operation::Messages {
            if k == "user_id" {
                *user = v.as_str().map(str::to_owned);
            }
            continue;
        }
        let serde_json::Value::String(v) = v else {
            return Err(bad(
                &format!("metadata.{}", clip(&k)),
                "must be a string (metadata values are tags)",
            ));
        };
        push_tag(tags, &k, &v, &format!("metadata.{}", clip(&k)))?;
    }
    Ok(())
}

fn push_tag(
    tags: &mut Vec<(Arc<str>, Arc<str>)>,
    key: &str,
    value: &str,
    param: &str,
) -> Result<(), GatewayError> {
    let key_ok = |c: char| c.is_ascii_alphanumeric() || "_-.:".contains(c);
    let value_ok = |c: char| key_ok(c) || "/@+".contains(c);
    if key.is_empty() || key.len() > MAX_TAG_LEN || !key.chars().all(key_ok) {
        return Err(bad(
            param,
            &format!(
                "has the tag key `{}`: keys are 1 to {MAX_TAG_LEN} of A-Z a-z 0-9 _ - . :",
                clip(key)
            ),
        ));
    }
    if value.is_empty() || value.len() > MAX_TAG_LEN || !value.chars().all(value_ok) {
        return Err(bad(
            param,
            &format!(
                "has the value `{}` for tag `{key}`: values are 1 to {MAX_TAG_LEN} of \
                 A-Z a-z 0-9 _ - . : / @ +",
                clip(value)
            ),
        ));
    }
    let (key, value): (Arc<str>, Arc<str>) = (Arc::from(key), Arc::from(value));
    if let Some(slot) = tags.iter_mut().find(|(k, _)| *k == key) {
        slot.1 = value;
    } else if tags.len() == MAX_TAGS {
        return Err(bad(
            param,
            &format!("brings the tag count over {MAX_TAGS} (tag `{key}`)"),
        ));
    } else {
        tags.push((key, value));
    }
    Ok(())
}

/// A client-supplied string cut to a printable length for an error message.
fn clip(s: &str) -> String {
    let cut: String = s
        .chars()
        .take(80)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if cut.len() < s.len() {
        format!("{cut}...")
    } else {
        cut
    }
}

fn bad(param: &str, what: &str) -> GatewayError {
    GatewayError::InvalidField {
        param: param.to_owned(),
        message: format!("`{param}` {what}."),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, http::HeaderValue::from_static(v));
        }
        h
    }

    fn resolve(h: &HeaderMap, body: &str) -> Result<Attribution, GatewayError> {
        Attribution::resolve(
            Some(Arc::from("research")),
            Operation::ChatCompletions,
            h,
            body.as_bytes(),
        )
    }

    #[test]
    fn gathers_team_user_and_tags_from_key_body_and_headers() {
        let a = resolve(
            &headers(&[("x-switchyard-tags", "feature=search, experiment=b")]),
            r#"{"model":"m","user":"u-1","metadata":{"experiment":"a","tier":"gold"},"messages":[]}"#,
        )
        .unwrap();
        assert_eq!(a.team.as_deref(), Some("research"));
        assert_eq!(a.user.as_deref(), Some("u-1"));
        assert_eq!(a.tag("experiment"), Some("b"), "the header wins");
        assert_eq!(
            a.tags_summary().as_deref(),
            Some("experiment=b,feature=search,tier=gold")
        );
        let h = resolve(
            &headers(&[("x-switchyard-user", "alice")]),
            r#"{"user":"u-1"}"#,
        )
        .unwrap();
        assert_eq!(h.user.as_deref(), Some("alice"));
    }

    #[test]
    fn anthropic_metadata_names_the_user() {
        let a = Attribution::resolve(
            None,
            Operation::Messages,
            &HeaderMap::new(),
            br#"{"metadata":{"user_id":"bob"},"model":"m"}"#,
        )
        .unwrap();
        assert_eq!(a.user.as_deref(), Some("bob"));
        assert!(a.tags.is_empty());
    }

    #[test]
    fn bad_tags_are_400s_naming_the_tag() {
        let cases = [
            ("x-switchyard-tags", "feature", "without `=`"),
            ("x-switchyard-tags", "fea ture=x", "`fea ture`"),
            ("x-switchyard-tags", "k=a b", "`a b`"),
            ("x-switchyard-tags", "k=", "tag `k`"),
        ];
        for (name, value, want) in cases {
            let mut h = HeaderMap::new();
            h.insert(name, http::HeaderValue::from_str(value).unwrap());
            match resolve(&h, "{}").unwrap_err() {
                GatewayError::InvalidField { param, message } => {
                    assert_eq!(param, name);
                    assert!(message.contains(want), "{message}");
                }
                other => panic!("{other:?}"),
            }
        }
        let long = format!("k={}", "v".repeat(65));
        let mut h = HeaderMap::new();
        h.insert(
            "x-switchyard-tags",
            http::HeaderValue::from_str(&long).unwrap(),
        );
        assert!(resolve(&h, "{}").is_err());
        let many: Vec<String> = (0..17).map(|i| format!("k{i}=v")).collect();
        let mut h = HeaderMap::new();
        h.insert(
            "x-switchyard-tags",
            http::HeaderValue::from_str(&many.join(",")).unwrap(),
        );
        let err = resolve(&h, "{}").unwrap_err().to_string();
        assert!(err.contains("over 16") && err.contains("k16"), "{err}");
        match resolve(&HeaderMap::new(), r#"{"metadata":{"n":3}}"#).unwrap_err() {
            GatewayError::InvalidField { param, .. } => assert_eq!(param, "metadata.n"),
            other => panic!("{other:?}"),
        }
    }
}
