//! Byte-exact editing of top-level JSON object members.
//!
//! Re-serialising a parsed document would reorder keys, change number formatting and drop
//! whitespace. Clients and providers sometimes depend on none of that, but "byte-faithful apart
//! from the model name" is a promise we can keep cheaply: scan the document once, find the byte
//! span of one member's value, and splice.
//!
//! The scanner ([`scan`]) validates as it goes, so one pass both checks an upstream body and
//! finds the members to edit; on input that is not JSON it says so rather than guessing.

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
/// Returns `None` when the document is not well-formed JSON or not an object.
pub fn top_level_values<const N: usize>(
    doc: &[u8],
    keys: [&str; N],
) -> Option<[Option<Range<usize>>; N]> {
    match scan(doc, keys) {
        Scan::Object(found) => Some(found),
        Scan::NotJson | Scan::NotObject => None,
    }
}

/// What [`scan`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scan<const N: usize> {
    /// The bytes are not one well-formed JSON value.
    NotJson,
    /// Well-formed JSON, but not an object (an array, a string, a number...).
    NotObject,
    /// A well-formed object, with the value span of each requested top-level member (the last
    /// one when a key repeats).
    Object([Option<Range<usize>>; N]),
}

/// Whether `doc` is exactly one well-formed JSON value (surrounding whitespace allowed).
pub fn is_valid(doc: &[u8]) -> bool {
    !matches!(scan(doc, []), Scan::NotJson)
}

/// Validates `doc` as JSON and finds the spans of the top-level members `keys`, in one pass.
///
/// Upstream bodies must be checked before they are relayed as a success, and then scanned for
/// `model` and `usage`: doing both at once halves the work on every response and every stream
/// event. The grammar is RFC 8259's, as strict as `serde_json` on the same bytes: escapes must
/// be known (`\uXXXX` needs four hex digits), control characters in strings, leading zeros,
/// bare `.5`, trailing commas and trailing bytes are refused. Like `serde_json`, string bytes
/// are not checked for valid UTF-8 (they are relayed, not decoded). Nesting deeper than
/// [`MAX_DEPTH`] counts as not JSON, so the scan needs no allocation.
pub fn scan<const N: usize>(doc: &[u8], keys: [&str; N]) -> Scan<N> {
    let mut found: [Option<Range<usize>>; N] = std::array::from_fn(|_| None);
    match Scanner::new(doc, 0).run(&keys, &mut found) {
        Some((true, end)) if end == doc.len() => Scan::Object(found),
        Some((false, end)) if end == doc.len() => Scan::NotObject,
        _ => Scan::NotJson,
    }
}

/// Where the one JSON value starting at `start` (after any whitespace) ends, whitespace after
/// it included; `None` when the bytes there are not a well-formed value by [`scan`]'s grammar
/// (or nest deeper than [`MAX_DEPTH`]). For readers that pick a few members out of an object
/// and step over the rest with the same grammar as the scan.
pub fn value_end(doc: &[u8], start: usize) -> Option<usize> {
    Scanner::new(doc, start)
        .run(&[], &mut [])
        .map(|(_, end)| end)
}

/// Where the string literal whose opening quote is at `start` ends (just past its closing
/// quote), by [`scan`]'s grammar; `None` when it is not a well-formed string. For readers that
/// walk a document themselves and need the exact span of a string.
pub fn string_end(doc: &[u8], start: usize) -> Option<usize> {
    if doc.get(start) != Some(&b'"') {
        return None;
    }
    let mut s = Scanner::new(doc, start);
    s.string()?;
    Some(s.i)
}

/// The deepest nesting [`scan`] accepts (`serde_json` refuses typed input nested past 128).
pub const MAX_DEPTH: usize = 1024;

/// A bit per open container: set for an object, clear for an array.
struct Stack {
    bits: [u64; MAX_DEPTH / 64],
    depth: usize,
}

impl Stack {
    fn push(&mut self, object: bool) -> Option<()> {
        let (word, bit) = (self.depth / 64, self.depth % 64);
        let w = self.bits.get_mut(word)?;
        if object {
            *w |= 1 << bit;
        } else {
            *w &= !(1 << bit);
        }
        self.depth += 1;
        Some(())
    }

    /// Closes the innermost container; `None` unless it is an object (`object`) or an array.
    fn pop(&mut self, object: bool) -> Option<()> {
        let top = self.depth.checked_sub(1)?;
        let is_object = self.bits.get(top / 64)? & (1 << (top % 64)) != 0;
        (is_object == object).then(|| self.depth = top)
    }

    fn in_object(&self) -> bool {
        self.depth
            .checked_sub(1)
            .and_then(|top| self.bits.get(top / 64).map(|w| w & (1 << (top % 64)) != 0))
            .unwrap_or(false)
    }
}

struct Scanner<'a> {
    doc: &'a [u8],
    i: usize,
    stack: Stack,
}

impl<'a> Scanner<'a> {
    fn new(doc: &'a [u8], start: usize) -> Self {
        Self {
            doc,
            i: start,
            stack: Stack {
                bits: [0; MAX_DEPTH / 64],
                depth: 0,
            },
        }
    }

    fn peek(&self) -> Option<u8> {
        self.doc.get(self.i).copied()
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.i += 1;
        }
    }

    /// Walks one value from the current position: whether it is an object, and where it ends
    /// (whitespace after it included); `None`: not JSON.
    fn run<const N: usize>(
        mut self,
        keys: &[&str; N],
        found: &mut [Option<Range<usize>>; N],
    ) -> Option<(bool, usize)> {
        self.ws();
        let is_object = self.peek()? == b'{';
        // The top-level member whose value is being read: (key span, value start).
        let mut member: Option<(Range<usize>, usize)> = None;
        loop {
            // A value starts here.
            self.ws();
            match self.peek()? {
                b'{' => {
                    self.stack.push(true)?;
                    self.i += 1;
                    self.ws();
                    if self.peek()? == b'}' {
                        self.i += 1;
                        self.stack.pop(true)?;
                    } else {
                        member = self.key(member)?;
                        continue;
                    }
                }
                b'[' => {
                    self.stack.push(false)?;
                    self.i += 1;
                    self.ws();
                    if self.peek()? == b']' {
                        self.i += 1;
                        self.stack.pop(false)?;
                    } else {
                        continue;
                    }
                }
                b'"' => self.string()?,
                b't' => self.literal(b"true")?,
                b'f' => self.literal(b"false")?,
                b'n' => self.literal(b"null")?,
                b'-' | b'0'..=b'9' => self.number()?,
                _ => return None,
            }
            // A value ended at `self.i`: close containers, or move to the next element.
            loop {
                if self.stack.depth == 1 && self.stack.in_object() {
                    if let Some((key, start)) = member.take() {
                        record(self.doc, keys, found, &key, start..self.i);
                    }
                }
                self.ws();
                if self.stack.depth == 0 {
                    return Some((is_object, self.i));
                }
                let object = self.stack.in_object();
                match (self.peek()?, object) {
                    (b',', true) => {
                        self.i += 1;
                        self.ws();
                        member = self.key(member)?;
                        break;
                    }
                    (b',', false) => {
                        self.i += 1;
                        break;
                    }
                    (b'}', true) => {
                        self.i += 1;
                        self.stack.pop(true)?;
                    }
                    (b']', false) => {
                        self.i += 1;
                        self.stack.pop(false)?;
                    }
                    _ => return None,
                }
            }
        }
    }

    /// Reads `"key" :` inside an object. For the top-level object, remembers the key span and
    /// where its value starts.
    fn key(
        &mut self,
        member: Option<(Range<usize>, usize)>,
    ) -> Option<Option<(Range<usize>, usize)>> {
        if self.peek()? != b'"' {
            return None;
        }
        let key_start = self.i;
        self.string()?;
        let key = key_start..self.i;
        self.ws();
        if self.peek()? != b':' {
            return None;
        }
        self.i += 1;
        self.ws();
        Some(if self.stack.depth == 1 {
            Some((key, self.i))
        } else {
            member
        })
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        let end = self.i + word.len();
        (self.doc.get(self.i..end)? == word).then(|| self.i = end)
    }

    fn digits(&mut self) -> usize {
        let start = self.i;
        while let Some(b'0'..=b'9') = self.peek() {
            self.i += 1;
        }
        self.i - start
    }

    fn number(&mut self) -> Option<()> {
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        match self.peek()? {
            b'0' => self.i += 1,
            b'1'..=b'9' => {
                self.digits();
            }
            _ => return None,
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            if self.digits() == 0 {
                return None;
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.i += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.i += 1;
            }
            if self.digits() == 0 {
                return None;
            }
        }
        Some(())
    }

    /// `doc[i]` is an opening quote; moves past the closing one.
    fn string(&mut self) -> Option<()> {
        self.i += 1;
        loop {
            self.i = plain_run_end(self.doc, self.i);
            match self.peek()? {
                b'"' => {
                    self.i += 1;
                    return Some(());
                }
                b'\\' => {
                    self.i += 1;
                    match self.peek()? {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => self.i += 1,
                        b'u' => {
                            let hex = self.doc.get(self.i + 1..self.i + 5)?;
                            if !hex.iter().all(u8::is_ascii_hexdigit) {
                                return None;
                            }
                            self.i += 5;
                        }
                        _ => return None,
                    }
                }
                // A control character.
                _ => return None,
            }
        }
    }
}

fn record<const N: usize>(
    doc: &[u8],
    keys: &[&str; N],
    found: &mut [Option<Range<usize>>; N],
    key: &Range<usize>,
    value: Range<usize>,
) {
    let raw = &doc[key.clone()];
    for (slot, k) in found.iter_mut().zip(keys) {
        if key_matches(raw, k) {
            *slot = Some(value.clone());
        }
    }
}

/// The index of the first byte at or after `i` that ends a run of plain string bytes: a quote,
/// a backslash or a control character (or `doc.len()`). Eight bytes at a time: string bodies
/// are most of an LLM response.
fn plain_run_end(doc: &[u8], i: usize) -> usize {
    string_stop(doc, i, false)
}

/// [`plain_run_end`], stopping also at the first non-ASCII byte when `ascii` is set (a reader
/// that compares names byte for byte leaves any other name to serde, which checks UTF-8).
pub(crate) fn string_stop(doc: &[u8], mut i: usize, ascii: bool) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let extra = if ascii { HIGH } else { 0 };
    let has_zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
    while let Some(chunk) = doc.get(i..).and_then(<[u8]>::first_chunk::<8>) {
        let v = u64::from_le_bytes(*chunk);
        // Bytes below 0x20, or equal to '"' or '\\'. A borrow can flag a byte above a real hit
        // (little-endian: a later byte), never one below it, so the lowest flag is exact.
        let special = (v.wrapping_sub(ONES * 0x20) & !v & HIGH)
            | has_zero(v ^ (ONES * u64::from(b'"')))
            | has_zero(v ^ (ONES * u64::from(b'\\')))
            | (v & extra);
        if special != 0 {
            return i + (special.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while let Some(&b) = doc.get(i) {
        if b == b'"' || b == b'\\' || b < 0x20 || (ascii && !b.is_ascii()) {
            break;
        }
        i += 1;
    }
    i
}

/// The text of a JSON string literal (`raw` includes the quotes), borrowed when it has no
/// escapes; `None` when `raw` is not a string.
pub fn string_value(raw: &[u8]) -> Option<std::borrow::Cow<'_, str>> {
    let inner = raw.strip_prefix(b"\"")?.strip_suffix(b"\"")?;
    if inner.contains(&b'\\') {
        return serde_json::from_slice::<String>(raw).ok().map(Into::into);
    }
    std::str::from_utf8(inner).ok().map(Into::into)
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

#[inline]
fn key_matches(raw: &[u8], key: &str) -> bool {
    let inner = &raw[1..raw.len() - 1];
    // Escapes only make the raw key longer than the text it stands for.
    match inner.len().cmp(&key.len()) {
        std::cmp::Ordering::Less => false,
        std::cmp::Ordering::Equal => inner == key.as_bytes(),
        std::cmp::Ordering::Greater => {
            inner.contains(&b'\\') && serde_json::from_slice::<String>(raw).is_ok_and(|k| k == key)
        }
    }
}

#[cfg(test)]
mod tests;
