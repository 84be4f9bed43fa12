//! What the mock answers to a validated `generateContent` request: candidates, finish reasons
//! and usage, a pure function of the request and the knobs (ids aside), so the streamed and
//! whole forms of one request carry the same content.

use serde_json::{Map, Value};

use super::request::{Generate, Mode};
use crate::text;

/// Most function calls one candidate carries.
const MAX_CALLS: u32 = 16;
/// Most words one candidate carries.
const MAX_WORDS: u32 = 1 << 20;
/// Keeps each candidate's text different.
const CANDIDATE_SEED: u64 = 0x6361_6e64_6964_6174;
/// Keeps the thought text's seed apart from the answer's.
const THOUGHT_SEED: u64 = 0x7468_6f75_6768_7473;

/// One part of a generated candidate.
pub(super) enum Part {
    Text {
        text: String,
        thought: bool,
    },
    Call {
        name: String,
        args: Value,
        signature: Option<String>,
    },
}

/// A generated candidate.
pub(super) struct Candidate {
    pub(super) parts: Vec<Part>,
    pub(super) finish_reason: &'static str,
    /// Set when a filter stopped the candidate.
    pub(super) blocked_category: Option<&'static str>,
    pub(super) output_tokens: u64,
    pub(super) thought_tokens: u64,
    /// Whether the text is the echo, which streams as one piece.
    pub(super) echo: bool,
}

/// The generated answer.
pub(super) struct Answer {
    pub(super) candidates: Vec<Candidate>,
    /// Set when the prompt itself was refused (no candidates then).
    pub(super) prompt_blocked: bool,
    pub(super) prompt_tokens: u64,
    pub(super) cached_tokens: Option<u64>,
}

impl Answer {
    /// Tokens of all candidates' answers.
    pub(super) fn candidates_tokens(&self) -> u64 {
        self.candidates.iter().map(|c| c.output_tokens).sum()
    }

    /// Thinking tokens of all candidates, when any.
    pub(super) fn thought_tokens(&self) -> Option<u64> {
        let t: u64 = self.candidates.iter().map(|c| c.thought_tokens).sum();
        (t > 0).then_some(t)
    }

    /// Everything billed.
    pub(super) fn total_tokens(&self) -> u64 {
        self.prompt_tokens + self.candidates_tokens() + self.thought_tokens().unwrap_or(0)
    }
}

/// Generates the answer for `req` on `model`; `echo` is the request description when the echo
/// knob is on.
pub(super) fn generate(req: &Generate, model: &str, echo: Option<String>) -> Answer {
    let cached_tokens = req
        .knobs
        .cache_read_tokens
        .or(req.cached.then_some(req.prompt_tokens / 2));
    if req.knobs.prompt_blocked.unwrap_or(false) {
        return Answer {
            candidates: Vec::new(),
            prompt_blocked: true,
            prompt_tokens: req.prompt_tokens,
            cached_tokens,
        };
    }
    let candidates = (0..req.candidates)
        .map(|i| candidate(req, model, i, echo.as_deref()))
        .collect();
    Answer {
        candidates,
        prompt_blocked: false,
        prompt_tokens: req.prompt_tokens,
        cached_tokens,
    }
}

fn candidate(req: &Generate, model: &str, index: u32, echo: Option<&str>) -> Candidate {
    let seed = req
        .seed
        .wrapping_add(u64::from(index).wrapping_mul(CANDIDATE_SEED));
    let mut parts = Vec::new();
    let mut thought_tokens = 0;
    if req.thinking {
        let words = text::default_word_count(seed ^ THOUGHT_SEED);
        thought_tokens = u64::from(words);
        if req.include_thoughts {
            parts.push(Part::Text {
                text: text::fake_text(seed ^ THOUGHT_SEED, words),
                thought: true,
            });
        }
    }
    if req.knobs.safety_block.unwrap_or(false) {
        return Candidate {
            parts: Vec::new(),
            finish_reason: "SAFETY",
            blocked_category: Some("HARM_CATEGORY_DANGEROUS_CONTENT"),
            output_tokens: 0,
            thought_tokens,
            echo: false,
        };
    }
    if let Some(echo) = echo {
        let tokens = text::estimate_tokens(echo.len());
        parts.push(Part::Text {
            text: echo.to_owned(),
            thought: false,
        });
        return Candidate {
            parts,
            finish_reason: "STOP",
            blocked_category: None,
            output_tokens: tokens,
            thought_tokens,
            echo: true,
        };
    }

    let calls = call_count(req);
    if calls > 0 {
        let pool: Vec<&super::request::Declaration> = if req.allowed.is_empty() {
            req.declarations.iter().collect()
        } else {
            req.declarations
                .iter()
                .filter(|d| req.allowed.contains(&d.name))
                .collect()
        };
        let mut output_tokens = 0;
        for i in 0..calls as usize {
            let call_seed = seed.wrapping_add((i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
            let (name, args) = match pool.get(i % pool.len().max(1)) {
                Some(d) => (
                    d.name.clone(),
                    fake_object(d.schema.as_ref().unwrap_or(&Value::Null), call_seed),
                ),
                None => ("mock_tool".to_owned(), Value::Object(Map::new())),
            };
            output_tokens += text::estimate_tokens(args.to_string().len()) + 4;
            // Gemini 3 signs the first function call of a response.
            let signature = (i == 0 && model.contains("gemini-3")).then(|| signature(call_seed));
            parts.push(Part::Call {
                name,
                args,
                signature,
            });
        }
        return Candidate {
            parts,
            finish_reason: "STOP",
            blocked_category: None,
            output_tokens,
            thought_tokens,
            echo: false,
        };
    }

    let mut finish_reason = "STOP";
    let mut text = if req.json {
        let schema = req.response_schema.as_ref().unwrap_or(&Value::Null);
        let v = if schema.is_null() {
            let mut o = Map::new();
            o.insert("answer".into(), Value::from(text::fake_word(seed)));
            Value::Object(o)
        } else {
            fake_value(schema, seed, 0)
        };
        serde_json::to_string(&v).unwrap_or_else(|_| "{}".to_owned())
    } else {
        let words = req
            .knobs
            .words
            .unwrap_or_else(|| text::default_word_count(seed))
            .min(MAX_WORDS);
        let mut text = text::fake_text(seed, words);
        if let Some(cap) = req.max_output_tokens {
            let cap = usize::try_from(cap).unwrap_or(usize::MAX);
            if (words as usize) > cap {
                let cut = text
                    .match_indices(' ')
                    .nth(cap.saturating_sub(1))
                    .map_or(text.len(), |(i, _)| i);
                text.truncate(cut);
                finish_reason = "MAX_TOKENS";
            }
        }
        text
    };
    let first_stop = req
        .stop_sequences
        .iter()
        .filter(|s| !s.is_empty())
        .filter_map(|s| text.find(s.as_str()))
        .min();
    if let Some(at) = first_stop {
        text.truncate(at);
        finish_reason = "STOP";
    }
    let output_tokens = if req.json {
        text::estimate_tokens(text.len())
    } else {
        text.split(' ').filter(|w| !w.is_empty()).count() as u64
    };
    if !text.is_empty() {
        parts.push(Part::Text {
            text,
            thought: false,
        });
    }
    Candidate {
        parts,
        finish_reason,
        blocked_category: None,
        output_tokens,
        thought_tokens,
        echo: false,
    }
}

/// How many function calls to make: forced by mode `ANY` or by the `tool_call` /
/// `parallel_tool_calls` knobs, never with mode `NONE` or without declarations. A model that
/// has just been given function results answers in text unless forced.
fn call_count(req: &Generate) -> u32 {
    if req.mode == Mode::None || req.declarations.is_empty() {
        return 0;
    }
    let parallel = req.knobs.parallel_tool_calls.unwrap_or(0);
    let knob = req.knobs.tool_call() || parallel > 0;
    let forced = req.mode == Mode::Any;
    if !forced && (!knob || req.answering_tool_results) {
        return 0;
    }
    parallel.clamp(1, MAX_CALLS)
}

/// A fake thought signature: opaque base64, as the real one is.
fn signature(seed: u64) -> String {
    let mut rng = text::Rng::new(seed);
    let bytes: Vec<u8> = (0..6).flat_map(|_| rng.next_u64().to_le_bytes()).collect();
    text::base64(&bytes)
}

/// An object of arguments for a function whose parameters are `schema` (Gemini's schema or
/// a JSON Schema); anything but an object schema gives `{}`.
fn fake_object(schema: &Value, seed: u64) -> Value {
    match fake_value(schema, seed, 0) {
        Value::Object(o) => Value::Object(o),
        _ => Value::Object(Map::new()),
    }
}

/// A value that satisfies `schema` (types in Gemini's upper case or JSON Schema's lower case).
pub(super) fn fake_value(schema: &Value, seed: u64, depth: usize) -> Value {
    if depth > 8 {
        return Value::Null;
    }
    if let Some(first) = schema.get("enum").and_then(|e| e.get(0)) {
        return first.clone();
    }
    if let Some(first) = schema.get("anyOf").and_then(|e| e.get(0)) {
        return fake_value(first, seed, depth + 1);
    }
    let ty = schema
        .get("type")
        .and_then(Value::as_str)
        .map(str::to_ascii_uppercase)
        .unwrap_or_else(|| {
            if schema.get("properties").is_some() {
                "OBJECT".to_owned()
            } else {
                "STRING".to_owned()
            }
        });
    match ty.as_str() {
        "OBJECT" => {
            let mut out = Map::new();
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                for (i, (name, prop)) in props.iter().enumerate() {
                    let s = seed.wrapping_add(text::fnv1a(name.as_bytes())) ^ i as u64;
                    out.insert(name.clone(), fake_value(prop, s, depth + 1));
                }
            }
            Value::Object(out)
        }
        "ARRAY" => {
            let items = schema.get("items").unwrap_or(&Value::Null);
            let n = schema
                .get("minItems")
                .and_then(|m| m.as_u64().or_else(|| m.as_str()?.parse().ok()))
                .unwrap_or(1)
                .clamp(1, 3);
            Value::Array(
                (0..n)
                    .map(|i| fake_value(items, seed.wrapping_add(i), depth + 1))
                    .collect(),
            )
        }
        "INTEGER" => {
            let lo = schema
                .get("minimum")
                .and_then(Value::as_f64)
                .unwrap_or(f64::MIN);
            let hi = schema
                .get("maximum")
                .and_then(Value::as_f64)
                .unwrap_or(f64::MAX);
            // Saturating cast of a bounded, finite value.
            Value::from(42f64.max(lo.ceil()).min(hi.floor().max(lo.ceil())) as i64)
        }
        "NUMBER" => {
            let lo = schema
                .get("minimum")
                .and_then(Value::as_f64)
                .unwrap_or(f64::MIN);
            let hi = schema
                .get("maximum")
                .and_then(Value::as_f64)
                .unwrap_or(f64::MAX);
            Value::from(2.5f64.max(lo).min(hi.max(lo)))
        }
        "BOOLEAN" => Value::Bool(true),
        "NULL" => Value::Null,
        _ => match schema.get("format").and_then(Value::as_str) {
            Some("date-time") => Value::from("2025-01-15T09:30:00Z"),
            _ => Value::from(text::fake_word(seed)),
        },
    }
}
