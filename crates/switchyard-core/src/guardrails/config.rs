//! `guardrails:` as written ([`RawGuardrail`]) and validated ([`GuardrailsConfig`]).
//!
//! Validation compiles every pattern, so the request path never meets a regex that does not
//! compile and [`super::Guardrails::new`] cannot fail.

use std::collections::hash_map::{Entry, HashMap};
use std::sync::Arc;

use regex::{Regex, RegexBuilder};
use serde::Deserialize;

use super::detect::Detector;
use super::Stage;

/// Largest compiled size of one pattern. Patterns are run on every request a rule applies
/// to; this keeps a pathological one (`\w{1000}{1000}`) a config error rather than a
/// start-up stall or a memory spike.
pub const PATTERN_SIZE_LIMIT: usize = 1 << 20;

/// Longest guardrail name: names go into log lines, metrics labels and error bodies.
pub const MAX_NAME_LEN: usize = 64;

/// What a rule does when it matches.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Refuse the request (or withhold the answer). The default: a rule someone forgot to
    /// set an action on should not let data through.
    #[default]
    Block,
    /// Replace each match with `[REDACTED:<LABEL>]` and carry on.
    Redact,
}

/// Which side of the exchange a rule checks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum On {
    /// The client's request (the default: what leaves for a provider).
    #[default]
    Input,
    /// The provider's answer.
    Output,
    /// Both.
    Both,
}

impl On {
    /// Whether a rule with this setting runs at `stage`.
    pub fn covers(self, stage: Stage) -> bool {
        matches!(
            (self, stage),
            (Self::Both, _) | (Self::Input, Stage::Input) | (Self::Output, Stage::Output)
        )
    }
}

/// One entry of `guardrails:` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGuardrail {
    /// Unique name, reported when the rule fires.
    pub name: Option<String>,
    /// Built-in detectors by name.
    #[serde(default)]
    pub detect: Vec<String>,
    /// Regular expressions (Rust `regex` syntax).
    #[serde(default)]
    pub patterns: Vec<String>,
    /// `block` (default) or `redact`.
    pub action: Option<Action>,
    /// `input` (default), `output` or `both`.
    pub on: Option<On>,
    /// Client model names or aliases the rule applies to; absent means every model.
    pub models: Option<Vec<String>>,
}

/// A validated rule. Holds compiled patterns so that building the engine cannot fail.
#[derive(Debug, Clone)]
pub struct RuleConfig {
    /// Unique name.
    pub name: Arc<str>,
    /// Built-in detectors, in the order written.
    pub detect: Vec<Detector>,
    /// Compiled patterns, in the order written.
    pub patterns: Vec<Regex>,
    /// What a match does.
    pub action: Action,
    /// Which side is checked.
    pub on: On,
    /// Models the rule is limited to; `None` for every model.
    pub models: Option<Vec<String>>,
}

/// The validated `guardrails:` list, in config order (which decides which block rule is
/// reported when several match).
#[derive(Debug, Clone, Default)]
pub struct GuardrailsConfig {
    /// The rules, in config order.
    pub rules: Vec<RuleConfig>,
}

impl GuardrailsConfig {
    /// Validates the raw list. On failure returns every problem found, each as a path
    /// relative to the list (`[2].patterns[0]`) and a one-line message, so one run of
    /// `switchyard check` shows them all.
    pub fn from_raw(raw: &[RawGuardrail]) -> Result<Self, Vec<(String, String)>> {
        let mut problems: Vec<(String, String)> = Vec::new();
        let mut rules = Vec::with_capacity(raw.len());
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for (i, r) in raw.iter().enumerate() {
            let mut problem = |path: String, message: String| problems.push((path, message));
            let name = match r.name.as_deref() {
                None => {
                    problem(
                        format!("[{i}].name"),
                        "missing: every guardrail needs a name".into(),
                    );
                    None
                }
                Some(n) if !valid_name(n) => {
                    problem(
                        format!("[{i}].name"),
                        format!("{n:?} is not a valid name: use 1 to {MAX_NAME_LEN} of A-Z a-z 0-9 _ . -"),
                    );
                    None
                }
                Some(n) => match seen.entry(n) {
                    Entry::Occupied(first) => {
                        problem(
                            format!("[{i}].name"),
                            format!("duplicate name `{n}` (first used at [{}])", first.get()),
                        );
                        None
                    }
                    Entry::Vacant(slot) => {
                        slot.insert(i);
                        Some(n)
                    }
                },
            };

            let mut detect = Vec::with_capacity(r.detect.len());
            for (k, d) in r.detect.iter().enumerate() {
                match Detector::from_name(d) {
                    Some(d) => detect.push(d),
                    None => {
                        let known: Vec<&str> = Detector::ALL.iter().map(|d| d.name()).collect();
                        problem(
                            format!("[{i}].detect[{k}]"),
                            format!("unknown detector {d:?}; known: {}", known.join(", ")),
                        );
                    }
                }
            }

            let mut patterns = Vec::with_capacity(r.patterns.len());
            for (k, p) in r.patterns.iter().enumerate() {
                match compile(p) {
                    Ok(re) => patterns.push(re),
                    Err(message) => problem(format!("[{i}].patterns[{k}]"), message),
                }
            }

            if r.detect.is_empty() && r.patterns.is_empty() {
                problem(
                    format!("[{i}]"),
                    "needs `detect` or `patterns`: a guardrail without either matches nothing"
                        .into(),
                );
            }

            if let Some(models) = &r.models {
                if models.is_empty() {
                    problem(
                        format!("[{i}].models"),
                        "is empty, so the guardrail applies to no model; leave `models` out \
                         to apply it to every model"
                            .into(),
                    );
                }
                for (k, m) in models.iter().enumerate() {
                    if m.trim().is_empty() {
                        problem(format!("[{i}].models[{k}]"), "must not be empty".into());
                    }
                }
            }

            if let Some(name) = name {
                rules.push(RuleConfig {
                    name: Arc::from(name),
                    detect,
                    patterns,
                    action: r.action.unwrap_or_default(),
                    on: r.on.unwrap_or_default(),
                    models: r.models.clone(),
                });
            }
        }
        if problems.is_empty() {
            Ok(Self { rules })
        } else {
            Err(problems)
        }
    }
}

/// Names end up in log lines and error bodies: a small alphabet keeps them safe there.
fn valid_name(name: &str) -> bool {
    (1..=MAX_NAME_LEN).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// Compiles one pattern, or says in one line why it cannot be used.
fn compile(pattern: &str) -> Result<Regex, String> {
    let re = RegexBuilder::new(pattern)
        .size_limit(PATTERN_SIZE_LIMIT)
        .build()
        .map_err(|e| match e {
            regex::Error::CompiledTooBig(limit) => {
                format!("is too large once compiled (limit {limit} bytes); simplify it")
            }
            // The syntax error's text draws a caret under the pattern over several lines;
            // its last line says what is wrong.
            other => {
                let text = other.to_string();
                let why = text
                    .lines()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or_default()
                    .trim();
                let why = why.strip_prefix("error: ").unwrap_or(why);
                format!("does not compile: {why}")
            }
        })?;
    // Every text contains the empty string: such a pattern would fire on every request.
    if re.is_match("") {
        return Err("matches the empty string, so it would match every text".into());
    }
    Ok(re)
}
