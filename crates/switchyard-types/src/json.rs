//! Byte-exact editing of top-level JSON object members.
//!
//! Re-serialising a parsed document would reorder keys, change number formatting and drop
//! whitespace. Clients and providers sometimes depend on none of that, but "byte-faithful apart
//! from the model name" is a promise we can keep cheaply: scan the document once, find the byte
//! span of one member's value, and splice.
//!
//! The scanner assumes its input is valid JSON (callers validate first with `serde_json`); on
//! input that is not, it returns `None` rather than guessing.

use std::ops::Range;

/// Finds the byte range of the value of the top-level member `key` of a JSON object.
///
/// Returns `None` when the document is not an object or has no such member. When the key occurs
/// more than once, the last occurrence wins, as it does for `serde_json` and most parsers.
pub fn top_level_value(doc: &[u8], key: &str) -> Option<Range<usize>> {
    let [span] = top_level_values(doc, [key])?;
    span
}

/// Finds the value spans of several top-level members in one pass over the document (each
/// lookup otherwise walks the whole document, because a later duplicate wins).
///
/// Returns `None` when the document is not a well-formed object.
pub fn top_level_values<const N: usize>(
    doc: &[u8],
    keys: [&str; N],
) -> Option<[Option<Range<usize>>; N]> {
    let mut found: [Option<Range<usize>>; N] = std::array::from_fn(|_| None);
    let mut i = skip_ws(doc, 0);
    if doc.get(i) != Some(&b'{') {
        return None;
    }
    i += 1;
    loop {
        i = skip_ws(doc, i);
        match doc.get(i)? {
            b'}' => return Some(found),
            b',' => {
                i += 1;
                continue;
            }
            b'"' => {}
            _ => return None,
        }
        let key_start = i;
        let key_end = skip_string(doc, i)?;
        i = skip_ws(doc, key_end);
        if doc.get(i) != Some(&b':') {
            return None;
        }
        i = skip_ws(doc, i + 1);
        let value_start = i;
        let value_end = skip_value(doc, i)?;
        for (slot, key) in found.iter_mut().zip(keys) {
            if key_matches(&doc[key_start..key_end], key) {
                *slot = Some(value_start..value_end);
            }
        }
        i = value_end;
    }
}

/// Returns a copy of `doc` with the bytes in `span` replaced by the JSON string `value`.
pub fn splice_string(doc: &[u8], span: Range<usize>, value: &str) -> Vec<u8> {
    let encoded = encode_string(value);
    let mut out = Vec::with_capacity(doc.len() - span.len() + encoded.len());
    out.extend_from_slice(&doc[..span.start]);
    out.extend_from_slice(encoded.as_bytes());
    out.extend_from_slice(&doc[span.end..]);
    out
}

/// Returns a copy of `doc` whose top-level member `key` has the JSON string `value`, keeping
/// every other byte as it was. Returns `None` when `doc` is not an object or lacks the member.
pub fn replace_top_level_string(doc: &[u8], key: &str, value: &str) -> Option<Vec<u8>> {
    let span = top_level_value(doc, key)?;
    Some(splice_string(doc, span, value))
}

/// Encodes `s` as a JSON string literal, quotes included.
pub fn encode_string(s: &str) -> String {
    // Serialising a &str into a String cannot fail; fall back to an empty literal defensively.
    serde_json::to_string(s).unwrap_or_else(|_| String::from("\"\""))
}

fn key_matches(raw: &[u8], key: &str) -> bool {
    let inner = &raw[1..raw.len() - 1];
    if !inner.contains(&b'\\') {
        return inner == key.as_bytes();
    }
    serde_json::from_slice::<String>(raw).is_ok_and(|k| k == key)
}

fn skip_ws(doc: &[u8], mut i: usize) -> usize {
    while let Some(b' ' | b'\t' | b'\n' | b'\r') = doc.get(i) {
        i += 1;
    }
    i
}

/// `doc[i]` is an opening quote; returns the index just past the closing quote.
fn skip_string(doc: &[u8], i: usize) -> Option<usize> {
    let mut j = i + 1;
    loop {
        // Jump straight to the next quote or backslash; string bodies are most of a document.
        j += doc
            .get(j..)?
            .iter()
            .position(|&b| b == b'"' || b == b'\\')?;
        if doc[j] == b'"' {
            return Some(j + 1);
        }
        j += 2;
    }
}

/// Returns the index just past the value starting at `doc[i]`.
fn skip_value(doc: &[u8], i: usize) -> Option<usize> {
    match doc.get(i)? {
        b'"' => skip_string(doc, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut j = i;
            loop {
                match doc.get(j)? {
                    b'"' => {
                        j = skip_string(doc, j)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
        }
        _ => {
            let mut j = i;
            while let Some(&b) = doc.get(j) {
                if matches!(b, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r') {
                    break;
                }
                j += 1;
            }
            (j > i).then_some(j)
        }
    }
}

#[cfg(test)]
mod tests;
