//! Body policies: what of a request's and response's bodies the log keeps.
//!
//! `redacted` keeps the body's shape and removes what most often leaks personal data or
//! credentials. For JSON bodies only string values are rewritten (keys and numbers such as
//! `max_tokens` stay), so the result is still JSON. In text it replaces:
//! - e-mail addresses (`local@domain.tld`) with `[EMAIL]`;
//! - credential-like tokens with `[SECRET]`: words of letters, digits, `_` and `-` of at least
//!   16 characters starting with a known key prefix (`sk-`, `sk_`, `pk_`, `rk_`, `ghp_`, `gho_`,
//!   `github_pat_`, `glpat-`, `xoxb-`, `xoxp-`, `AKIA`, `ASIA`, `AIza`), and any such word of at
//!   least 32 characters mixing letters and digits (API keys, tokens, hashes, UUIDs);
//! - digit runs of 6 or more digits, possibly grouped by single spaces, dashes or dots (card,
//!   phone, account and ID numbers) with `[NUMBER]`.
//!
//! It is a safety net, not a guarantee: names, addresses and secrets of other shapes pass.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

/// What the log keeps of the bodies of an alias's requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BodyPolicy {
    /// Nothing (the default).
    #[default]
    None,
    /// The bodies as they were (up to `request_log.max_body_size`).
    Full,
    /// The bodies with e-mails, credential-like tokens and long numbers replaced.
    Redacted,
    /// The first N bytes of each body.
    Truncate(usize),
}

impl BodyPolicy {
    /// Whether any body is kept.
    pub fn keeps(self) -> bool {
        self != Self::None
    }

    /// The most bytes kept of a body under this policy and the global cap.
    pub fn limit(self, cap: usize) -> usize {
        match self {
            Self::None => 0,
            Self::Truncate(n) => n.min(cap),
            Self::Full | Self::Redacted => cap,
        }
    }

    /// A short name for the record (`truncate:N` for truncation).
    pub fn name(self) -> Cow<'static, str> {
        match self {
            Self::None => "none".into(),
            Self::Full => "full".into(),
            Self::Redacted => "redacted".into(),
            Self::Truncate(n) => format!("truncate:{n}").into(),
        }
    }

    /// Applies the policy to a body; returns the kept text and whether it was cut.
    pub fn apply(self, body: &[u8], cap: usize) -> (Option<String>, bool) {
        if !self.keeps() {
            return (None, false);
        }
        let limit = self.limit(cap);
        let text = String::from_utf8_lossy(body);
        let text = if self == Self::Redacted {
            redact_body(&text)
        } else {
            text.into_owned()
        };
        let (kept, cut) = truncate_utf8(&text, limit);
        (Some(kept.to_owned()), cut)
    }
}

/// The longest prefix of `s` of at most `limit` bytes that ends on a character boundary.
pub fn truncate_utf8(s: &str, limit: usize) -> (&str, bool) {
    if s.len() <= limit {
        return (s, false);
    }
    let mut end = limit;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    (&s[..end], true)
}

/// Redacts a body: string values only when it is JSON, the whole text otherwise.
pub fn redact_body(text: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(mut v) => {
            redact_json(&mut v);
            serde_json::to_string(&v).unwrap_or_else(|_| redact_text(text))
        }
        Err(_) => redact_text(text),
    }
}

fn redact_json(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::String(s) => {
            let r = redact_text(s);
            if r != *s {
                *s = r;
            }
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(redact_json),
        serde_json::Value::Object(o) => o.values_mut().for_each(redact_json),
        _ => {}
    }
}

const SECRET_PREFIXES: [&str; 13] = [
    "sk-",
    "sk_",
    "pk_",
    "rk_",
    "ghp_",
    "gho_",
    "github_pat_",
    "glpat-",
    "xoxb-",
    "xoxp-",
    "AKIA",
    "ASIA",
    "AIza",
];

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

fn is_local(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'%' | b'+' | b'-')
}

fn is_domain(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'.' || b == b'-'
}

/// Redacts e-mails, credential-like tokens and long numbers in plain text (see the module doc).
pub fn redact_text(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    let mut copied = 0;
    while i < b.len() {
        let local_start = i == 0 || !is_local(b[i - 1]);
        // Digits glued to a word (`sonnet-20241022`, `v_123456`) are part of a name.
        let word_start =
            i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'-' || b[i - 1] == b'_');
        let found = if local_start && is_local(b[i]) {
            email_at(b, i).map(|end| (end, "[EMAIL]"))
        } else {
            None
        };
        let found = found.or_else(|| {
            word_start
                .then(|| number_at(b, i))
                .flatten()
                .map(|end| (end, "[NUMBER]"))
        });
        if let Some((end, mark)) = found {
            out.push_str(&s[copied..i]);
            out.push_str(mark);
            i = end;
            copied = end;
            continue;
        }
        if is_word(b[i]) && (i == 0 || !is_word(b[i - 1])) {
            let mut end = i;
            while end < b.len() && is_word(b[end]) {
                end += 1;
            }
            if is_secret(&s[i..end]) {
                out.push_str(&s[copied..i]);
                out.push_str("[SECRET]");
                copied = end;
                i = end;
                continue;
            }
        }
        i += 1;
    }
    out.push_str(&s[copied..]);
    out
}

/// The end of an e-mail address starting at `i`, if one does.
fn email_at(b: &[u8], i: usize) -> Option<usize> {
    let mut at = i;
    while at < b.len() && is_local(b[at]) {
        at += 1;
    }
    if at == i || b.get(at) != Some(&b'@') {
        return None;
    }
    let mut end = at + 1;
    while end < b.len() && is_domain(b[end]) {
        end += 1;
    }
    // A sentence may end right after the address.
    while end > at + 1 && b[end - 1] == b'.' {
        end -= 1;
    }
    let domain = &b[at + 1..end];
    let dot = domain.iter().rposition(|c| *c == b'.')?;
    let tld = &domain[dot + 1..];
    (dot > 0 && tld.len() >= 2 && tld.iter().all(u8::is_ascii_alphabetic)).then_some(end)
}

/// The end of a run of at least 6 digits starting at `i` (groups joined by one space, dash or
/// dot), if one does.
fn number_at(b: &[u8], i: usize) -> Option<usize> {
    if !b[i].is_ascii_digit() {
        return None;
    }
    let (mut j, mut digits, mut end) = (i, 0, i);
    while j < b.len() {
        if b[j].is_ascii_digit() {
            digits += 1;
            j += 1;
            end = j;
        } else if matches!(b[j], b' ' | b'-' | b'.') && b.get(j + 1).is_some_and(u8::is_ascii_digit)
        {
            j += 1;
        } else {
            break;
        }
    }
    // `123456abc` is a word, not a number.
    let clean_end = end == b.len() || !b[end].is_ascii_alphabetic();
    (digits >= 6 && clean_end).then_some(end)
}

fn is_secret(word: &str) -> bool {
    if word.len() >= 16 && SECRET_PREFIXES.iter().any(|p| word.starts_with(p)) {
        return true;
    }
    word.len() >= 32
        && word.bytes().any(|c| c.is_ascii_digit())
        && word.bytes().any(|c| c.is_ascii_alphabetic())
}
