//! A hand-written reader for the common shapes of OpenAI's `usage` object.
//!
//! Every upstream answer and every stream event with a `usage` member goes through
//! [`super::usage_in`]. Reading a typical usage object (OpenAI's, with its two detail objects)
//! with serde's derive cost about 4,600 instructions (callgrind), some 5% of the whole request
//! path, most of it in serde's generic field and value machinery. This reader takes, in turn:
//!
//! - `null`, which streams send in every chunk but the last: one comparison;
//! - OpenAI's own layout, byte for byte but for the counts ([`openai_layout`]): the fixed parts
//!   are compared whole, about 500 instructions in all;
//! - anything else, by a general walk over the bytes ([`walk`]): any member order, whitespace
//!   and extra members, about a third of serde's cost.
//!
//! It is not a second definition of the format: serde's result stays the reference. The reader
//! decides only inputs it fully understands (`null`, or an object whose keys are plain ASCII,
//! whose counters are plain integers that fit a `u64`, whose other values are well-formed JSON
//! by the crate's scanner ([`crate::json`]), each known key at most once) and answers "not
//! sure" to anything else:
//! escapes in keys, numbers serde refuses, arrays in place of the object, duplicate keys, any
//! syntax error. The caller then asks serde, so exotic inputs get serde's answer by
//! construction. Whatever the reader accepts, serde accepts with the same result; the converse
//! need not hold, since the rest goes to serde.

use super::Usage;

/// Reads a usage value (surrounding whitespace allowed): `Some(None)` for `null`,
/// `Some(Some(usage))` for an object, `None` when the caller must ask serde.
pub(super) fn read(bytes: &[u8]) -> Option<Option<Usage>> {
    // Streams that include usage send `"usage":null` in every chunk but the last.
    if bytes == b"null" {
        return Some(None);
    }
    match openai_layout(bytes) {
        Some(usage) => Some(Some(usage)),
        None => walk(bytes),
    }
}

/// The general walk: any layout, whitespace and member order, within what the module
/// documentation lists. Kept out of line so that `null` and OpenAI's layout do not pay for
/// setting up its larger frame.
#[inline(never)]
fn walk(bytes: &[u8]) -> Option<Option<Usage>> {
    let mut cur = Cursor { bytes, pos: 0 };
    let usage = match cur.token()? {
        b'n' => {
            cur.literal(b"ull")?;
            None
        }
        b'{' => Some(cur.usage()?),
        _ => return None,
    };
    // Nothing but whitespace may follow.
    cur.token().is_none().then_some(usage)
}

/// The length of the shortest object in OpenAI's layout (see [`openai_layout`]).
const OPENAI_LAYOUT_MIN_LEN: usize = 249;

/// Reads a usage object written exactly as OpenAI's API writes it today, byte for byte but for
/// the counts: the fixed parts are compared whole and only the digits are read. This is the
/// shape of nearly every answer from OpenAI, read at about a ninth of serde's cost; any other
/// byte (another member, whitespace, another order) leaves the object to the general walk.
fn openai_layout(bytes: &[u8]) -> Option<Usage> {
    // The shortest object in this layout, every count one digit, is 249 bytes. Shorter ones go
    // straight to the general walk instead of being compared member by member first.
    if bytes.len() < OPENAI_LAYOUT_MIN_LEN {
        return None;
    }
    let mut cur = Cursor { bytes, pos: 0 };
    let mut usage = Usage::default();
    cur.fixed(b"{\"prompt_tokens\":")?;
    usage.prompt_tokens = cur.count()?;
    cur.fixed(b",\"completion_tokens\":")?;
    usage.completion_tokens = cur.count()?;
    cur.fixed(b",\"total_tokens\":")?;
    usage.total_tokens = cur.count()?;
    cur.fixed(b",\"prompt_tokens_details\":")?;
    cur.fixed(b"{\"cached_tokens\":")?;
    usage.cached_tokens = cur.count()?;
    // The other counts are read only to check that they are counts, as serde's skipping does.
    cur.fixed(b",\"audio_tokens\":")?;
    cur.count()?;
    cur.fixed(b"},\"completion_tokens_details\":")?;
    cur.fixed(b"{\"reasoning_tokens\":")?;
    cur.count()?;
    cur.fixed(b",\"audio_tokens\":")?;
    cur.count()?;
    cur.fixed(b",\"accepted_prediction_tokens\":")?;
    cur.count()?;
    cur.fixed(b",\"rejected_prediction_tokens\":")?;
    cur.count()?;
    cur.fixed(b"}}")?;
    (cur.pos == bytes.len()).then_some(usage)
}

/// A member name, as far as the reader tells them apart.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Name {
    PromptTokens,
    CompletionTokens,
    TotalTokens,
    PromptTokensDetails,
    CachedTokens,
    Other,
}

impl Name {
    /// The bit this name sets among the usage object's fields read so far (serde's derive
    /// refuses a field that comes twice); 0 for names the usage object does not read.
    fn field_bit(self) -> u8 {
        match self {
            Self::PromptTokens => 1,
            Self::CompletionTokens => 2,
            Self::TotalTokens => 4,
            Self::PromptTokensDetails => 8,
            Self::CachedTokens | Self::Other => 0,
        }
    }
}

/// Recognises, at the start of `rest`, a member header `"name":` written compactly for one of
/// the names OpenAI writes in usage objects, and says how many bytes it is. Comparing a header
/// whole is a few word compares, where reading it byte by byte (scan the name for quotes,
/// escapes and control bytes, find it among the names, then the colon) is several times that.
fn known_member(rest: &[u8]) -> Option<(Name, usize)> {
    // A constant length makes the comparison a few word compares, not a call to memcmp.
    fn is<const N: usize>(rest: &[u8], header: &[u8; N], name: Name) -> Option<(Name, usize)> {
        (rest.first_chunk::<N>() == Some(header)).then_some((name, N))
    }
    match rest.get(1)? {
        b'p' => is(rest, b"\"prompt_tokens\":", Name::PromptTokens).or_else(|| {
            is(
                rest,
                b"\"prompt_tokens_details\":",
                Name::PromptTokensDetails,
            )
        }),
        b'c' => is(rest, b"\"completion_tokens\":", Name::CompletionTokens)
            .or_else(|| is(rest, b"\"cached_tokens\":", Name::CachedTokens))
            .or_else(|| is(rest, b"\"completion_tokens_details\":", Name::Other)),
        b't' => is(rest, b"\"total_tokens\":", Name::TotalTokens),
        b'a' => is(rest, b"\"audio_tokens\":", Name::Other)
            .or_else(|| is(rest, b"\"accepted_prediction_tokens\":", Name::Other)),
        b'r' => is(rest, b"\"reasoning_tokens\":", Name::Other)
            .or_else(|| is(rest, b"\"rejected_prediction_tokens\":", Name::Other)),
        _ => None,
    }
}

/// A position in the bytes. Every method returns `None` on anything it does not accept, which
/// [`read`] turns into "ask serde".
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let byte = self.peek()?;
        self.pos += 1;
        Some(byte)
    }

    /// The next byte that is not whitespace (JSON's four bytes, the ones serde_json skips),
    /// consumed. Every value and every structural byte is read this way, so whitespace is
    /// allowed wherever JSON allows it and costs one test where there is none.
    fn token(&mut self) -> Option<u8> {
        loop {
            let byte = self.next()?;
            if !matches!(byte, b' ' | b'\n' | b'\r' | b'\t') {
                return Some(byte);
            }
        }
    }

    /// Consumes the next token if it is `byte`.
    fn eat_token(&mut self, byte: u8) -> bool {
        let start = self.pos;
        let found = self.token() == Some(byte);
        if !found {
            self.pos = start;
        }
        found
    }

    /// Exactly the bytes `fixed` (a constant length makes the comparison a few word compares).
    #[inline(always)]
    fn fixed<const N: usize>(&mut self, fixed: &[u8; N]) -> Option<()> {
        if self.bytes.get(self.pos..)?.first_chunk::<N>()? != fixed {
            return None;
        }
        self.pos += N;
        Some(())
    }

    /// The rest of `null`, `true` or `false`, after its first byte.
    fn literal(&mut self, rest: &[u8]) -> Option<()> {
        let end = self.pos.checked_add(rest.len())?;
        if self.bytes.get(self.pos..end)? != rest {
            return None;
        }
        self.pos = end;
        Some(())
    }

    /// A member's name and colon, from the name's opening quote.
    ///
    /// Only names in plain ASCII are read here, because their bytes are then the string serde
    /// compares with field names. Escapes (`"prompt\u005ftokens"` is `prompt_tokens`), other
    /// bytes (serde checks that keys are UTF-8) and control characters go to serde.
    #[inline(always)]
    fn member_name(&mut self) -> Option<Name> {
        if let Some((name, len)) = known_member(self.bytes.get(self.pos..)?) {
            self.pos += len;
            return Some(name);
        }
        if self.next()? != b'"' {
            return None;
        }
        let start = self.pos;
        self.pos = crate::json::string_stop(self.bytes, start, true);
        let name = match self.bytes.get(start..self.pos)? {
            b"prompt_tokens" => Name::PromptTokens,
            b"completion_tokens" => Name::CompletionTokens,
            b"total_tokens" => Name::TotalTokens,
            b"prompt_tokens_details" => Name::PromptTokensDetails,
            b"cached_tokens" => Name::CachedTokens,
            _ => Name::Other,
        };
        if self.next()? != b'"' || self.token()? != b':' {
            return None;
        }
        Some(name)
    }

    /// Skips whitespace.
    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.peek() {
            self.pos += 1;
        }
    }

    /// The members of an object whose `{` has been consumed, up to and including its `}`.
    /// `member` is called after each name's colon and must consume the value.
    fn members(&mut self, mut member: impl FnMut(&mut Self, Name) -> Option<()>) -> Option<()> {
        if self.eat_token(b'}') {
            return Some(());
        }
        loop {
            self.skip_ws();
            let name = self.member_name()?;
            member(self, name)?;
            match self.token()? {
                b',' => {}
                b'}' => return Some(()),
                _ => return None,
            }
        }
    }

    /// The usage object's members, after its `{`.
    fn usage(&mut self) -> Option<Usage> {
        let mut usage = Usage::default();
        let mut seen = 0;
        self.members(|cur, name| {
            match name {
                Name::PromptTokens => usage.prompt_tokens = cur.counter()?,
                Name::CompletionTokens => usage.completion_tokens = cur.counter()?,
                Name::TotalTokens => usage.total_tokens = cur.counter()?,
                Name::PromptTokensDetails => usage.cached_tokens = cur.details()?,
                Name::CachedTokens | Name::Other => return cur.skip_value(),
            }
            if seen & name.field_bit() != 0 {
                return None;
            }
            seen |= name.field_bit();
            Some(())
        })?;
        Some(usage)
    }

    /// `prompt_tokens_details`: `null` or an object; its `cached_tokens` (absent or `null`
    /// meaning 0) is the cached-token count. Arrays, which serde would read as a struct too, go
    /// to serde.
    fn details(&mut self) -> Option<u64> {
        match self.token()? {
            b'n' => {
                self.literal(b"ull")?;
                Some(0)
            }
            b'{' => {
                let mut cached = None;
                self.members(|cur, name| {
                    if name != Name::CachedTokens {
                        return cur.skip_value();
                    }
                    if cached.is_some() {
                        return None;
                    }
                    cached = Some(if cur.eat_token(b'n') {
                        cur.literal(b"ull")?;
                        0
                    } else {
                        cur.counter()?
                    });
                    Some(())
                })?;
                Some(cached.unwrap_or(0))
            }
            _ => None,
        }
    }

    /// A token count, after any whitespace: see [`Cursor::count`].
    fn counter(&mut self) -> Option<u64> {
        self.skip_ws();
        self.count()
    }

    /// A token count: digits without a leading zero, sign, fraction or exponent, that fit a
    /// `u64`. serde_json reads `-0`, `1.0`, `1e3` and integers past `u64::MAX` as other number
    /// kinds and refuses them for a `u64`; they go to serde, which says so.
    #[inline(always)]
    fn count(&mut self) -> Option<u64> {
        let digit = |byte: u8| Some(byte.wrapping_sub(b'0')).filter(|d| *d <= 9);
        let mut value = u64::from(digit(self.next()?)?);
        // A leading zero stands alone.
        if value != 0 {
            while let Some(d) = self.peek().and_then(digit) {
                value = value.checked_mul(10)?.checked_add(u64::from(d))?;
                self.pos += 1;
            }
        }
        match self.peek() {
            Some(b'0'..=b'9' | b'.' | b'e' | b'E') => None,
            _ => Some(value),
        }
    }

    /// Skips a value the usage type does not read, by the JSON scanner's grammar (as strict as
    /// serde_json's on a value it ignores), so that nothing serde would refuse is read here.
    fn skip_value(&mut self) -> Option<()> {
        self.pos = crate::json::value_end(self.bytes, self.pos)?;
        Some(())
    }
}
