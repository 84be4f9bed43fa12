//! The built-in detectors: a regex finds candidates, code then checks what a regex cannot
//! (checksums, number ranges, what touches the candidate on either side).
//!
//! A guardrail that fires on ordinary text is worse than none: operators switch it off. So
//! every detector is conservative. A candidate that is part of a longer run of digits, letters
//! or dotted/dashed numbers is refused, and after a refusal the search resumes one character
//! further on, so a refused candidate cannot hide a genuine match that starts inside it.

use std::ops::{ControlFlow, Range};
use std::sync::LazyLock;

use regex::Regex;

/// One built-in detector, named in a guardrail's `detect:` list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Detector {
    /// `local@domain.tld`.
    Email,
    /// International (`+` and 7–15 digits) or North-American phone numbers.
    Phone,
    /// Card numbers of 13–19 digits passing the Luhn check.
    CreditCard,
    /// US social security numbers (`ddd-dd-dddd`, invalid ranges excluded).
    UsSsn,
    /// Dotted-quad IPv4 addresses.
    Ipv4,
    /// International bank account numbers passing the mod-97 check.
    Iban,
}

impl Detector {
    /// Every detector, in the order the config error message lists them.
    pub const ALL: [Detector; 6] = [
        Self::Email,
        Self::Phone,
        Self::CreditCard,
        Self::UsSsn,
        Self::Ipv4,
        Self::Iban,
    ];

    /// The name used in the config file.
    pub fn name(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Phone => "phone",
            Self::CreditCard => "credit_card",
            Self::UsSsn => "us_ssn",
            Self::Ipv4 => "ipv4",
            Self::Iban => "iban",
        }
    }

    /// Parses a config name (exact spelling, as the error message lists them).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.name() == name)
    }

    /// The label in `[REDACTED:<LABEL>]`: tells the model what kind of value was there, so
    /// the answer still makes sense, without the value.
    pub fn label(self) -> &'static str {
        match self {
            Self::Email => "EMAIL",
            Self::Phone => "PHONE",
            Self::CreditCard => "CREDIT_CARD",
            Self::UsSsn => "US_SSN",
            Self::Ipv4 => "IPV4",
            Self::Iban => "IBAN",
        }
    }

    /// What a block message says was found, without quoting it (the client sent it, but error
    /// bodies end up in logs and screenshots).
    pub fn what(self) -> &'static str {
        match self {
            Self::Email => "an email address",
            Self::Phone => "a phone number",
            Self::CreditCard => "a credit card number",
            Self::UsSsn => "a US social security number",
            Self::Ipv4 => "an IPv4 address",
            Self::Iban => "an IBAN",
        }
    }

    /// Calls `f` with the byte range of each match in `text`, in order; stops when `f` breaks.
    /// Matches of one detector never overlap.
    pub(crate) fn find_each(
        self,
        text: &str,
        f: &mut dyn FnMut(Range<usize>) -> ControlFlow<()>,
    ) -> ControlFlow<()> {
        // Cheap byte checks first: most strings have no `@`, and many no digit at all, and
        // then no regex runs.
        let bytes = text.as_bytes();
        let worth_a_look = match self {
            Self::Email => bytes.contains(&b'@'),
            Self::Phone | Self::CreditCard => bytes.iter().any(u8::is_ascii_digit),
            Self::UsSsn => bytes.contains(&b'-'),
            Self::Ipv4 => bytes.contains(&b'.'),
            Self::Iban => bytes.iter().any(u8::is_ascii_uppercase),
        };
        if !worth_a_look {
            return ControlFlow::Continue(());
        }
        match self {
            Self::Email => candidates(&EMAIL, text, email_ok, f),
            Self::Phone => candidates(&PHONE, text, phone_ok, f),
            Self::CreditCard => card_candidates(text, f),
            Self::UsSsn => candidates(&US_SSN, text, ssn_ok, f),
            Self::Ipv4 => candidates(&IPV4, text, ipv4_ok, f),
            Self::Iban => candidates(&IBAN, text, iban_ok, f),
        }
    }

    /// Whether the detector's candidate regex compiled (it always does; a test keeps it so).
    #[cfg(test)]
    pub(crate) fn compiles(self) -> bool {
        let re = match self {
            Self::Email => &EMAIL,
            Self::Phone => &PHONE,
            Self::CreditCard => &CARD,
            Self::UsSsn => &US_SSN,
            Self::Ipv4 => &IPV4,
            Self::Iban => &IBAN,
        };
        re.is_some()
    }
}

/// A candidate regex, compiled on first use. The patterns are constants, so `None` (a pattern
/// that does not compile) would be a bug caught by the tests, never a config problem.
type Lazy = LazyLock<Option<Regex>>;

fn compile(pattern: &str) -> Option<Regex> {
    Regex::new(pattern).ok()
}

// ASCII classes only: `\d` and `\w` would also take other scripts' digits and letters.
static EMAIL: Lazy = LazyLock::new(|| {
    compile(r"[A-Za-z0-9_%+-]+(?:\.[A-Za-z0-9_%+-]+)*@(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,24}")
});
// International first, then the North-American shapes. One regex, so a number that fits
// both (`+1 (555) 123-4567`) is one match. Each North-American alternative keeps a single
// separator throughout, which one character class could not say.
static PHONE: Lazy = LazyLock::new(|| {
    compile(concat!(
        r"\+[0-9](?:[ .()-]{0,2}[0-9]){6,14}",
        r"|(?:1-)?[2-9][0-9]{2}-[0-9]{3}-[0-9]{4}",
        r"|(?:1\.)?[2-9][0-9]{2}\.[0-9]{3}\.[0-9]{4}",
        r"|(?:1 )?\([2-9][0-9]{2}\) ?[0-9]{3}[ .-][0-9]{4}",
    ))
});
static CARD: Lazy = LazyLock::new(|| compile(r"[0-9](?:[ -]?[0-9]){12,18}"));
static US_SSN: Lazy = LazyLock::new(|| compile(r"[0-9]{3}-[0-9]{2}-[0-9]{4}"));
static IPV4: Lazy = LazyLock::new(|| compile(r"[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}"));
static IBAN: Lazy = LazyLock::new(|| {
    compile(r"[A-Z]{2}[0-9]{2}(?:[A-Z0-9]{11,30}|(?: [A-Z0-9]{4}){2,7}(?: [A-Z0-9]{1,4})?)")
});

/// Runs `re` over `text`, passing each candidate `ok` accepts to `f`. A refused candidate
/// resumes the search one character after its start rather than after its end.
fn candidates(
    re: &Lazy,
    text: &str,
    ok: fn(&str, Range<usize>) -> bool,
    f: &mut dyn FnMut(Range<usize>) -> ControlFlow<()>,
) -> ControlFlow<()> {
    let Some(re) = re.as_ref() else {
        return ControlFlow::Continue(());
    };
    let mut at = 0;
    while let Some(m) = re.find_at(text, at) {
        if ok(text, m.range()) {
            f(m.range())?;
            at = m.end();
        } else {
            at = next_boundary(text, m.start());
        }
    }
    ControlFlow::Continue(())
}

/// The char boundary after the character starting at `i`.
fn next_boundary(text: &str, i: usize) -> usize {
    text[i..]
        .chars()
        .next()
        .map_or(text.len(), |c| i + c.len_utf8())
}

fn before(text: &str, at: usize) -> Option<char> {
    text[..at].chars().next_back()
}

fn after(text: &str, at: usize) -> Option<char> {
    text[at..].chars().next()
}

/// The character two before `at`, when the one before is ASCII (a separator).
fn before2(text: &str, at: usize) -> Option<char> {
    at.checked_sub(1).and_then(|i| before(text, i))
}

fn after2(text: &str, at: usize) -> Option<char> {
    after(text, at + 1)
}

fn is_word(c: Option<char>) -> bool {
    c.is_some_and(|c| c.is_alphanumeric() || c == '_')
}

fn is_digit(c: Option<char>) -> bool {
    c.is_some_and(|c| c.is_ascii_digit())
}

/// Not glued to a word on either side, nor to a number continuing past a `.` or `-` (a longer
/// dotted or dashed number: a version, a date, an account number).
fn dashed_ok(text: &str, r: Range<usize>) -> bool {
    let (b, a) = (before(text, r.start), after(text, r.end));
    let glued_before =
        is_word(b) || matches!(b, Some('.' | '-')) && is_digit(before2(text, r.start));
    let glued_after = is_word(a) || matches!(a, Some('.' | '-')) && is_digit(after2(text, r.end));
    !glued_before && !glued_after
}

fn email_ok(text: &str, r: Range<usize>) -> bool {
    let b = before(text, r.start);
    let a = after(text, r.end);
    if is_word(b) || matches!(b, Some('%' | '+' | '-')) || is_word(a) || a == Some('-') {
        return false;
    }
    let s = &text[r];
    let Some((_, domain)) = s.rsplit_once('@') else {
        return false;
    };
    if domain
        .split('.')
        .any(|label| label.starts_with('-') || label.ends_with('-'))
    {
        return false;
    }
    // `icon@2x.png` is a file name, not an address.
    let tld = domain.rsplit('.').next().unwrap_or_default();
    !["png", "jpg", "jpeg", "gif", "svg", "webp"]
        .iter()
        .any(|ext| tld.eq_ignore_ascii_case(ext))
}

fn phone_ok(text: &str, r: Range<usize>) -> bool {
    if text.as_bytes()[r.start] == b'+' {
        intl_phone_ok(text, r)
    } else {
        // A `+` right before belongs to an international number refused above.
        before(text, r.start) != Some('+') && dashed_ok(text, r)
    }
}

fn intl_phone_ok(text: &str, r: Range<usize>) -> bool {
    // Base64 is made of letters, digits, `+`, `/` and `=`: a `+` inside it is not a phone.
    let edge = |c: Option<char>| is_word(c) || matches!(c, Some('+' | '/' | '='));
    let (b, a) = (before(text, r.start), after(text, r.end));
    if edge(b) || edge(a) {
        return false;
    }
    // The regex stops after 15 digits; more digits behind a separator make a longer run.
    let rest = &text[r.end..];
    let sep_len = rest
        .bytes()
        .take(2)
        .take_while(|b| matches!(b, b' ' | b'.' | b'(' | b')' | b'-'))
        .count();
    !rest.as_bytes().get(sep_len).is_some_and(u8::is_ascii_digit)
}

fn ssn_ok(text: &str, r: Range<usize>) -> bool {
    if !dashed_ok(text, r.clone()) {
        return false;
    }
    let s = text[r].as_bytes();
    let (area, group, serial) = (&s[0..3], &s[4..6], &s[7..11]);
    area != b"000" && area != b"666" && area[0] != b'9' && group != b"00" && serial != b"0000"
}

fn ipv4_ok(text: &str, r: Range<usize>) -> bool {
    if !dashed_ok(text, r.clone()) {
        return false;
    }
    // Leading zeros are refused: `01.02.03.04` is more likely a date or a code than an
    // address, and some tools read such octets as octal anyway.
    text[r].split('.').all(|octet| {
        (octet.len() == 1 || !octet.starts_with('0'))
            && octet.parse::<u16>().is_ok_and(|n| n <= 255)
    })
}

fn iban_ok(text: &str, r: Range<usize>) -> bool {
    if is_word(before(text, r.start)) || is_word(after(text, r.end)) {
        return false;
    }
    let compact = text[r].bytes().filter(|b| *b != b' ');
    let len = compact.clone().count();
    (15..=34).contains(&len) && iban_checksum_ok(compact)
}

/// ISO 13616: move the first four characters to the end, read letters as 10–35, and the
/// number must leave 1 modulo 97. Computed digit by digit so no big integer is needed.
pub(crate) fn iban_checksum_ok(chars: impl Iterator<Item = u8> + Clone) -> bool {
    let rearranged = chars.clone().skip(4).chain(chars.take(4));
    let mut rem: u32 = 0;
    for c in rearranged {
        rem = match c {
            b'0'..=b'9' => (rem * 10 + u32::from(c - b'0')) % 97,
            b'A'..=b'Z' => (rem * 100 + u32::from(c - b'A') + 10) % 97,
            b'a'..=b'z' => (rem * 100 + u32::from(c - b'a') + 10) % 97,
            _ => return false,
        };
    }
    rem == 1
}

/// The Luhn check digit test over ASCII digits (the rightmost is the check digit).
pub(crate) fn luhn_ok(digits: &[u8]) -> bool {
    let mut sum = 0u32;
    for (i, d) in digits.iter().rev().enumerate() {
        let mut v = u32::from(d.wrapping_sub(b'0'));
        if v > 9 {
            return false;
        }
        if i % 2 == 1 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    sum.is_multiple_of(10)
}

/// Group layouts a card number is printed in: 4-4-4-4 (most networks), 4-4-4-4-3 (19
/// digits), 4-6-5 (American Express), 4-6-4 (Diners Club).
const CARD_LAYOUTS: [&[usize]; 4] = [&[4, 4, 4, 4], &[4, 4, 4, 4, 3], &[4, 6, 5], &[4, 6, 4]];

/// Card numbers need their own candidate loop: the regex takes up to 19 digits, so a card
/// followed by more grouped digits (`4111 1111 1111 1111 12/27`) comes as one candidate, and
/// the card is a leading run of its groups.
fn card_candidates(
    text: &str,
    f: &mut dyn FnMut(Range<usize>) -> ControlFlow<()>,
) -> ControlFlow<()> {
    let Some(re) = CARD.as_ref() else {
        return ControlFlow::Continue(());
    };
    let mut at = 0;
    while let Some(m) = re.find_at(text, at) {
        match card_in(text, m.range()) {
            Some(end) => {
                f(m.start()..end)?;
                at = end;
            }
            None => at = next_boundary(text, m.start()),
        }
    }
    ControlFlow::Continue(())
}

/// Where the card number starting the candidate `r` ends, if there is one.
fn card_in(text: &str, r: Range<usize>) -> Option<usize> {
    if is_word(before(text, r.start)) {
        return None;
    }
    let s = &text.as_bytes()[r.clone()];
    // Group lengths and the separator between groups (the regex allows at most one between
    // two digits). Only the leading groups sharing the first separator are considered.
    let mut groups: [usize; 19] = [0; 19];
    let mut n = 1;
    let mut sep = None;
    for &b in s {
        if b.is_ascii_digit() {
            groups[n - 1] += 1;
        } else if sep.is_none_or(|s| s == b) {
            sep = Some(b);
            n += 1;
        } else {
            break;
        }
    }
    let groups = &groups[..n];
    // Longest candidate first; each prefix ends at a group boundary.
    for k in (1..=n).rev() {
        let prefix = &groups[..k];
        let digits: usize = prefix.iter().sum();
        let laid_out = if k == 1 {
            (13..=19).contains(&digits)
        } else {
            CARD_LAYOUTS.contains(&prefix)
        };
        if !laid_out {
            continue;
        }
        let len = digits + k - 1;
        let end = r.start + len;
        // A prefix is followed by a separator; the whole run must not go on into a word.
        if is_word(after(text, end)) {
            continue;
        }
        let mut buf = [0u8; 19];
        let mut i = 0;
        for &b in s[..len].iter().filter(|b| b.is_ascii_digit()) {
            buf[i] = b;
            i += 1;
        }
        let number = &buf[..i];
        // Issuers' numbers start with 2 to 6 (Mastercard's 2-series, Amex/Diners/JCB, Visa,
        // Mastercard, Discover/UnionPay); this also keeps millisecond timestamps out.
        if (b'2'..=b'6').contains(&number[0]) && luhn_ok(number) {
            return Some(end);
        }
    }
    None
}
