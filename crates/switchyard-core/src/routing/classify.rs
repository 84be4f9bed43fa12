//! Prompt classification for classifier routing: a zero-cost heuristic, the pieces of the
//! LLM-as-judge call (its request body and how its answer is read), and the judge's cache.
//!
//! The judge itself is called by the pipeline (`pipeline/route.rs`), through the gateway's own
//! serving path, because it is an upstream request like any other.

use std::collections::{HashMap, VecDeque};

use parking_lot::Mutex;

use super::estimate::Features;
use super::policy::Label;

/// Most prompt bytes looked at (by the heuristic and sent to the judge).
pub const MAX_PROMPT_BYTES: usize = 4000;

/// Words and marks that suggest source code.
const CODE_SIGNALS: &[&str] = &[
    "```",
    "def ",
    "fn ",
    "function ",
    "class ",
    "#include",
    "import ",
    "select ",
    "=>",
    "console.log",
    "traceback",
    "stack trace",
    "error[e",
    "compile",
    "regex",
    "python",
    "javascript",
    "typescript",
    "rust",
    "golang",
    "java",
    "sql",
    "bash",
    "refactor",
    "debug",
    "unit test",
    "segfault",
    "npm ",
    "cargo ",
    "();",
    "};",
];

/// Words that suggest multi-step or analytical work.
const COMPLEX_SIGNALS: &[&str] = &[
    "step by step",
    "analyze",
    "analyse",
    "compare",
    "explain why",
    "prove",
    "derive",
    "design",
    "trade-off",
    "tradeoff",
    "evaluate",
    "strategy",
    "architecture",
    "in detail",
    "pros and cons",
    "plan for",
    "reason about",
    "critique",
    "summarize the following",
    "essay",
];

/// Labels a prompt by counting signals (single words match whole words): `code` on a code fence or two code signals; `complex`
/// for a long prompt (at least `complex_tokens` estimated tokens), tools offered, two analytic
/// signals (or one in a prompt over 300 bytes), or three or more questions; else `simple`.
pub fn heuristic(text: &str, features: &Features, complex_tokens: u64) -> Label {
    let lower = text.to_ascii_lowercase();
    let words: std::collections::HashSet<&str> = lower
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    // Single words match whole words only ("rust" is not in "trust"); phrases and marks match
    // anywhere.
    let hit = |s: &str| {
        if s.bytes().all(|b| b.is_ascii_alphabetic()) {
            words.contains(s)
        } else {
            lower.contains(s)
        }
    };
    let count = |signals: &[&str]| signals.iter().filter(|s| hit(s)).count();
    let code = count(CODE_SIGNALS);
    if lower.contains("```") || code >= 2 {
        return Label::Code;
    }
    let analytic = count(COMPLEX_SIGNALS);
    let questions = lower.matches('?').count();
    if features.prompt_tokens >= complex_tokens
        || features.has_tools
        || analytic >= 2
        || (analytic == 1 && text.len() > 300)
        || questions >= 3
    {
        return Label::Complex;
    }
    Label::Simple
}

/// The system prompt of the judge.
const JUDGE_INSTRUCTIONS: &str = "You route requests to language models. Classify the user's \
    request as exactly one word: simple (a short factual or conversational request), complex \
    (multi-step reasoning, analysis, long documents or planning) or code (writing, reading or \
    debugging source code). Answer with the one word only.";

/// The OpenAI chat request sent to the judge alias for `text`.
pub fn judge_body(alias: &str, text: &str) -> Vec<u8> {
    let body = serde_json::json!({
        "model": alias,
        "messages": [
            {"role": "system", "content": JUDGE_INSTRUCTIONS},
            {"role": "user", "content": text},
        ],
        "max_tokens": 4,
        "temperature": 0,
    });
    serde_json::to_vec(&body).unwrap_or_default()
}

/// The label in a judge's answer: the first label word in it (case-insensitive, whole word).
pub fn read_answer(answer: &str) -> Option<Label> {
    let lower = answer.to_ascii_lowercase();
    lower
        .split(|c: char| !c.is_ascii_alphabetic())
        .find_map(Label::parse)
}

/// The judge's recent labels by prompt hash: a repeated prompt is not judged (or paid for)
/// twice. First in, first out once full.
#[derive(Debug)]
pub struct JudgeCache {
    capacity: usize,
    inner: Mutex<(HashMap<u64, Label>, VecDeque<u64>)>,
}

impl JudgeCache {
    /// A cache of `capacity` labels (0 disables it).
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            inner: Mutex::new((HashMap::new(), VecDeque::new())),
        }
    }

    /// The label remembered for `prompt`.
    pub fn get(&self, prompt: &str) -> Option<Label> {
        self.inner.lock().0.get(&hash(prompt)).copied()
    }

    /// Remembers `label` for `prompt`.
    pub fn put(&self, prompt: &str, label: Label) {
        if self.capacity == 0 {
            return;
        }
        let h = hash(prompt);
        let mut g = self.inner.lock();
        let (map, order) = &mut *g;
        if map.insert(h, label).is_none() {
            order.push_back(h);
            while order.len() > self.capacity {
                if let Some(old) = order.pop_front() {
                    map.remove(&old);
                }
            }
        }
    }

    /// Labels held.
    pub fn len(&self) -> usize {
        self.inner.lock().0.len()
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// FNV-1a, 64 bits: stable across processes and restarts (unlike std's keyed hasher), which
/// sticky splits rely on.
pub fn hash(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}
