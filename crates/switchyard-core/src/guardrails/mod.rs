//! Request and response guardrails: find personal data or configured patterns in the text of
//! a request or an answer, and block the exchange or redact the matches.
//!
//! This module is the engine only, with no HTTP: the pipeline calls
//! [`Guardrails::check_request`] before routing and [`Guardrails::check_response`] on a
//! non-streaming answer, and turns the [`Verdict`] into a refusal or a rewritten body.
//!
//! Two promises shape it. Redaction rewrites only the string values that matched: the rest
//! of the document is the client's (or provider's) bytes, as everywhere else in the gateway
//! (`walk` finds the spans, this module splices). And a request no rule applies to costs a
//! loop over the rules, nothing more: no parse, no allocation.

use std::borrow::Cow;
use std::ops::{ControlFlow, Range};
use std::sync::Arc;

use bytes::Bytes;

use crate::providers::Operation;

mod config;
mod detect;
mod walk;

pub use config::{
    Action, GuardrailsConfig, On, RawGuardrail, RuleConfig, MAX_NAME_LEN, PATTERN_SIZE_LIMIT,
};
pub use detect::Detector;

/// Which side of the exchange is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stage {
    /// The client's request, before it is sent upstream.
    Input,
    /// The provider's answer, before it is relayed.
    Output,
}

impl Stage {
    /// `input` or `output`, for error bodies and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Input => "input",
            Self::Output => "output",
        }
    }
}

/// The outcome of a check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing matched (or no rule applies).
    Pass,
    /// Redact rules matched; `body` is the rewritten JSON document.
    Redacted {
        /// The original document with only the matching string values replaced.
        body: Bytes,
        /// The redact rules that matched, in config order, each once.
        rules: Vec<Arc<str>>,
    },
    /// A block rule matched.
    Blocked {
        /// The first matching block rule in config order.
        rule: Arc<str>,
        /// What was found, without quoting it ("an email address"): the error body tells the
        /// client why without echoing the data back into logs.
        what: &'static str,
        /// The side that was checked.
        stage: Stage,
    },
}

/// What found a match: a detector, or one of the rule's patterns.
#[derive(Clone, Copy)]
enum Source {
    Detector(Detector),
    Pattern,
}

impl Source {
    fn label(self) -> &'static str {
        match self {
            Self::Detector(d) => d.label(),
            Self::Pattern => "PATTERN",
        }
    }

    fn what(self) -> &'static str {
        match self {
            Self::Detector(d) => d.what(),
            Self::Pattern => "a blocked pattern",
        }
    }
}

impl RuleConfig {
    fn applies(&self, stage: Stage, model: &str) -> bool {
        self.on.covers(stage)
            && self
                .models
                .as_ref()
                .is_none_or(|models| models.iter().any(|m| m == model))
    }

    /// Calls `f` with each non-empty match of the rule's detectors, then of its patterns.
    fn find_each(
        &self,
        text: &str,
        f: &mut dyn FnMut(Range<usize>, Source) -> ControlFlow<()>,
    ) -> ControlFlow<()> {
        for &d in &self.detect {
            d.find_each(text, &mut |r| f(r, Source::Detector(d)))?;
        }
        for re in &self.patterns {
            for m in re.find_iter(text) {
                // An empty match redacts nothing and proves nothing.
                if !m.is_empty() {
                    f(m.range(), Source::Pattern)?;
                }
            }
        }
        ControlFlow::Continue(())
    }
}

/// The guardrail engine, built once from validated config and shared by every request.
#[derive(Debug, Clone, Default)]
pub struct Guardrails {
    rules: Box<[RuleConfig]>,
}

impl Guardrails {
    /// Builds the engine. Cannot fail: the config holds compiled patterns.
    pub fn new(cfg: &GuardrailsConfig) -> Self {
        Self {
            rules: cfg.rules.clone().into_boxed_slice(),
        }
    }

    /// Whether there are no rules at all (the pipeline can skip the stage).
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Whether any rule checks `stage` for `model`: the request is then checked (and its
    /// record says `passed` when nothing fired); for answers, a complete one must be held
    /// before it is relayed.
    pub fn applies(&self, stage: Stage, model: &str) -> bool {
        self.rules.iter().any(|r| r.applies(stage, model))
    }

    /// Checks a request body of `op` sent for the client model name `model`.
    pub fn check_request(&self, op: Operation, model: &str, body: &[u8]) -> Verdict {
        self.check(Stage::Input, op, model, body)
    }

    /// Checks a non-streaming answer body of `op` for the client model name `model`.
    pub fn check_response(&self, op: Operation, model: &str, body: &[u8]) -> Verdict {
        self.check(Stage::Output, op, model, body)
    }

    fn check(&self, stage: Stage, op: Operation, model: &str, body: &[u8]) -> Verdict {
        // The block rule that wins if it matches: finding it ends the walk early.
        let mut first_block = None;
        let mut any = false;
        for (i, r) in self.rules.iter().enumerate() {
            if r.applies(stage, model) {
                any = true;
                if r.action == Action::Block && first_block.is_none() {
                    first_block = Some(i);
                }
            }
        }
        if !any {
            return Verdict::Pass;
        }
        let Some(sel) = walk::selection(stage, op) else {
            return Verdict::Pass;
        };

        let mut scan = Scan::default();
        let walked = walk::strings(body, sel, &mut |span| {
            let text = decode(&body[span.clone()]);
            self.scan_text(stage, model, &text, &mut scan);
            if !scan.hits.is_empty() {
                let redacted = redact(&text, &mut scan.hits);
                scan.edits
                    .push((span, switchyard_types::json::encode_string(&redacted)));
            }
            match (scan.block, first_block) {
                (Some((b, _)), Some(first)) if b == first => ControlFlow::Break(()),
                _ => ControlFlow::Continue(()),
            }
        });
        if walked.is_none() {
            return Verdict::Pass;
        }
        if let Some((i, what)) = scan.block {
            return Verdict::Blocked {
                rule: Arc::clone(&self.rules[i].name),
                what,
                stage,
            };
        }
        if scan.edits.is_empty() {
            return Verdict::Pass;
        }
        scan.matched.sort_unstable();
        scan.matched.dedup();
        Verdict::Redacted {
            body: splice(body, &scan.edits),
            rules: scan
                .matched
                .iter()
                .map(|&i| Arc::clone(&self.rules[i].name))
                .collect(),
        }
    }

    /// Runs the applicable rules over one string's text. Block rules are tried only while
    /// they could still change the verdict (an earlier one in config order than the block
    /// found so far); redact rules only while nothing is blocked.
    fn scan_text(&self, stage: Stage, model: &str, text: &str, scan: &mut Scan) {
        for (i, rule) in self.rules.iter().enumerate() {
            if !rule.applies(stage, model) {
                continue;
            }
            match rule.action {
                Action::Block => {
                    if scan.block.is_some_and(|(b, _)| b <= i) {
                        continue;
                    }
                    let mut what = None;
                    let _ = rule.find_each(text, &mut |_, source| {
                        what = Some(source.what());
                        ControlFlow::Break(())
                    });
                    if let Some(what) = what {
                        scan.block = Some((i, what));
                        scan.hits.clear();
                        scan.edits.clear();
                    }
                }
                Action::Redact => {
                    if scan.block.is_some() {
                        continue;
                    }
                    let before = scan.hits.len();
                    let hits = &mut scan.hits;
                    let _ = rule.find_each(text, &mut |range, source| {
                        hits.push((range, source.label()));
                        ControlFlow::Continue(())
                    });
                    if scan.hits.len() > before {
                        scan.matched.push(i);
                    }
                }
            }
        }
    }
}

/// What a walk has found so far. Its vectors allocate only once something matched.
#[derive(Default)]
struct Scan {
    /// The best block so far: rule index and what it found.
    block: Option<(usize, &'static str)>,
    /// The current string's redact matches and their labels.
    hits: Vec<(Range<usize>, &'static str)>,
    /// Per rewritten string: its span in the document and the new literal.
    edits: Vec<(Range<usize>, String)>,
    /// Indices of the redact rules that matched (repeats removed at the end).
    matched: Vec<usize>,
}

/// The text of a string literal (quotes included). Bytes that are not UTF-8 are read as
/// U+FFFD rather than skipped, so they cannot hide a match.
fn decode(raw: &[u8]) -> Cow<'_, str> {
    switchyard_types::json::string_value(raw).unwrap_or_else(|| {
        let inner = raw.get(1..raw.len().saturating_sub(1)).unwrap_or_default();
        String::from_utf8_lossy(inner)
    })
}

/// `text` with every hit replaced by `[REDACTED:<LABEL>]`. Overlapping hits (two rules, or
/// two detectors, on the same characters) become one, labelled by the one starting first.
fn redact(text: &str, hits: &mut Vec<(Range<usize>, &'static str)>) -> String {
    hits.sort_unstable_by(|a, b| a.0.start.cmp(&b.0.start).then(b.0.end.cmp(&a.0.end)));
    let mut out = String::with_capacity(text.len() + 16 * hits.len());
    let mut at = 0;
    for (range, label) in hits.drain(..) {
        if range.start < at {
            at = at.max(range.end);
            continue;
        }
        out.push_str(&text[at..range.start]);
        out.push_str("[REDACTED:");
        out.push_str(label);
        out.push(']');
        at = range.end;
    }
    out.push_str(&text[at..]);
    out
}

/// The document with each span replaced by its new literal (spans in order, disjoint).
fn splice(doc: &[u8], edits: &[(Range<usize>, String)]) -> Bytes {
    let grown: usize = edits.iter().map(|(_, s)| s.len()).sum();
    let mut out = Vec::with_capacity(doc.len() + grown);
    let mut at = 0;
    for (span, literal) in edits {
        out.extend_from_slice(&doc[at..span.start]);
        out.extend_from_slice(literal.as_bytes());
        at = span.end;
    }
    out.extend_from_slice(&doc[at..]);
    Bytes::from(out)
}

#[cfg(test)]
mod tests;
