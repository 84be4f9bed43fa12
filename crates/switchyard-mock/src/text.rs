//! Deterministic fake text, hashing, ids and token estimates.
//!
//! Everything here is cheap and allocation-light on purpose: the mock sits under a load
//! benchmark, so producing a reply must cost far less than the gateway work being measured.
//! Output is a pure function of a seed so that tests can rely on it being stable.

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// FNV-1a over bytes. We use our own hash rather than `DefaultHasher` because std does not
/// promise a stable algorithm across releases, and fake text must not change under tests.
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// SplitMix64: a tiny, well-mixed generator; good enough for fake words and vectors.
#[derive(Clone, Debug)]
pub(crate) struct Rng(u64);

impl Rng {
    /// Seeds the generator; any value (including zero) is fine.
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// Returns the next pseudo-random value.
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix(self.0)
    }

    /// Returns a value in `0..n` (`n` must be non-zero; zero yields zero).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        // Truncation is fine: `n` is tiny and the bias is irrelevant for fake data.
        (self.next_u64() % n as u64) as usize
    }

    /// Returns a float uniformly spread over `[-1, 1)`.
    pub(crate) fn unit_f32(&mut self) -> f32 {
        // Top 24 bits give an exactly representable f32 in [0, 1).
        let x = (self.next_u64() >> 40) as f32 / (1u32 << 24) as f32;
        x * 2.0 - 1.0
    }
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

// === ids ===

/// A process-wide, lock-free source of unpredictable ids: a random per-process key mixed with
/// a counter. One relaxed atomic add per id keeps it cheap under concurrency.
fn next_random() -> u64 {
    static KEY: OnceLock<u64> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let key = *KEY.get_or_init(|| {
        // `RandomState` is keyed from OS randomness; mixing in the clock covers platforms
        // where that is weak.
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0),
        );
        h.finish()
    });
    mix(key
        ^ COUNTER
            .fetch_add(1, Ordering::Relaxed)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

const ALNUM: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// Returns `prefix` followed by `len` random alphanumeric characters, the shape OpenAI uses
/// for completion and tool-call ids.
pub(crate) fn random_id(prefix: &str, len: usize) -> String {
    let mut out = String::with_capacity(prefix.len() + len);
    out.push_str(prefix);
    let mut bits = 0u64;
    for i in 0..len {
        // 62^10 < 2^64, so one random word yields ten characters.
        if i % 10 == 0 {
            bits = next_random();
        }
        out.push(char::from(ALNUM[(bits % 62) as usize]));
        bits /= 62;
    }
    out
}

/// Returns `prefix` followed by 32 random lower-case hex digits (OpenAI's `x-request-id`).
pub(crate) fn random_hex_id(prefix: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(prefix.len() + 32);
    out.push_str(prefix);
    // Writing to a String cannot fail.
    let _ = write!(out, "{:016x}{:016x}", next_random(), next_random());
    out
}

// === fake text ===

const DETERMINERS: &[&str] = &["the", "a", "this", "every", "our", "that", "each", "one"];
const ADJECTIVES: &[&str] = &[
    "quiet", "bright", "small", "careful", "early", "modern", "simple", "steady", "warm", "clear",
    "busy", "gentle", "quick", "patient", "open", "narrow", "honest", "useful",
];
const NOUNS: &[&str] = &[
    "river", "engineer", "garden", "report", "station", "teacher", "window", "market", "letter",
    "bridge", "team", "morning", "question", "village", "library", "signal", "plan", "journey",
    "city", "answer", "harbour", "project", "kitchen", "student",
];
const VERBS: &[&str] = &[
    "finds",
    "builds",
    "follows",
    "reaches",
    "shapes",
    "explains",
    "carries",
    "watches",
    "improves",
    "reviews",
    "opens",
    "supports",
    "measures",
    "describes",
    "crosses",
    "prepares",
];
const PREPOSITIONS: &[&str] = &[
    "near", "after", "beyond", "within", "across", "before", "beside", "through", "under",
];

/// Default reply length range when the request does not pick one: 12 to 20 words.
pub(crate) fn default_word_count(seed: u64) -> u32 {
    12 + (mix(seed) % 9) as u32
}

/// Produces `words` words of plausible English (capitalised sentences ending in full stops),
/// a pure function of `seed`. Words are separated by single spaces, so splitting on spaces
/// yields exactly `words` pieces; streaming relies on that.
pub(crate) fn fake_text(seed: u64, words: u32) -> String {
    let mut rng = Rng::new(seed);
    let mut out = String::with_capacity(words as usize * 8);
    let mut emitted = 0u32;
    while emitted < words {
        // A small grammar reads far more naturally than uniformly random words.
        let mut sentence: [&str; 9] = [""; 9];
        let mut n = 0;
        let mut push = |w: &'static str| {
            sentence[n] = w;
            n += 1;
        };
        push(pick(&mut rng, DETERMINERS));
        if rng.below(2) == 0 {
            push(pick(&mut rng, ADJECTIVES));
        }
        push(pick(&mut rng, NOUNS));
        push(pick(&mut rng, VERBS));
        push(pick(&mut rng, DETERMINERS));
        push(pick(&mut rng, NOUNS));
        if rng.below(2) == 0 {
            push(pick(&mut rng, PREPOSITIONS));
            push(pick(&mut rng, DETERMINERS));
            push(pick(&mut rng, NOUNS));
        }
        for (i, w) in sentence[..n].iter().enumerate() {
            if emitted == words {
                break;
            }
            if emitted > 0 {
                out.push(' ');
            }
            if i == 0 {
                let mut chars = w.chars();
                if let Some(first) = chars.next() {
                    out.extend(first.to_uppercase());
                    out.push_str(chars.as_str());
                }
            } else {
                out.push_str(w);
            }
            emitted += 1;
            if i + 1 == n || emitted == words {
                out.push('.');
            }
        }
    }
    out
}

fn pick(rng: &mut Rng, list: &[&'static str]) -> &'static str {
    list.get(rng.below(list.len())).copied().unwrap_or("word")
}

/// Picks one fake word; used to fill string arguments of fake tool calls.
pub(crate) fn fake_word(seed: u64) -> &'static str {
    pick(&mut Rng::new(seed), NOUNS)
}

/// Estimated tokens for `chars` characters of text: about four characters per token, the
/// rule of thumb OpenAI documents for English. Never zero for non-empty text.
pub(crate) fn estimate_tokens(chars: usize) -> u64 {
    chars.div_ceil(4) as u64
}

// === JSON writing ===

/// Appends `s` as a JSON string literal. Hand-written so the SSE writer can build events
/// straight into one buffer without a fallible serializer in the loop.
pub(crate) fn push_json_str(buf: &mut Vec<u8>, s: &str) {
    buf.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => b"",
            _ => continue,
        };
        buf.extend_from_slice(&bytes[start..i]);
        if esc.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            buf.extend_from_slice(b"\\u00");
            buf.push(HEX[usize::from(b >> 4)]);
            buf.push(HEX[usize::from(b & 0xf)]);
        } else {
            buf.extend_from_slice(esc);
        }
        start = i + 1;
    }
    buf.extend_from_slice(&bytes[start..]);
    buf.push(b'"');
}

/// Standard base64 (RFC 4648, with padding). OpenAI's `encoding_format: "base64"` is the only
/// user, and it is small enough not to warrant a dependency.
pub(crate) fn base64(input: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b0 = chunk.first().copied().unwrap_or(0);
        let b1 = chunk.get(1).copied().unwrap_or(0);
        let b2 = chunk.get(2).copied().unwrap_or(0);
        let n = (u32::from(b0) << 16) | (u32::from(b1) << 8) | u32::from(b2);
        let sextet = |shift: u32| char::from(TABLE[((n >> shift) & 0x3f) as usize]);
        out.push(sextet(18));
        out.push(sextet(12));
        out.push(if chunk.len() > 1 { sextet(6) } else { '=' });
        out.push(if chunk.len() > 2 { sextet(0) } else { '=' });
    }
    out
}
