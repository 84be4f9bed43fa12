//! Finds the string values a guardrail reads, as byte spans of the original document.
//!
//! Spans, not a parsed tree: a redaction splices new string literals into the original bytes,
//! so key order, whitespace, number spelling and unknown fields stay exactly as they were. The
//! walk is one pass with no allocation (the container stack is a fixed bit set, as in
//! `switchyard_types::json`), and it checks the grammar as it goes: a body that is not JSON is
//! reported as such rather than half-read.
//!
//! What is read is chosen per API by key, never by position: a [`Selection`] names the
//! top-level members to enter and, below them, the keys whose string values are text. Keys
//! holding identifiers, URLs or base64 (`id`, `url`, `data`, `image_url`...) are never read,
//! so a phone detector cannot fire inside an image.

use std::ops::{ControlFlow, Range};

use super::Stage;
use crate::providers::Operation;

/// How a key below a selected member is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A string value is text; so is each string element of an array value. Objects below
    /// are walked by the same table.
    Text,
    /// Every string anywhere below is text (a tool call's `input` object, whose shape the
    /// gateway does not know).
    All,
}

/// A top-level member to enter.
#[derive(Debug)]
pub(crate) struct Entry {
    key: &'static str,
    /// Whether the member's own value (a string, or the strings of an array) is text.
    text: bool,
    /// The keys below it whose values are text.
    keys: &'static [(&'static str, Kind)],
}

/// What to read in one API's request or response body.
#[derive(Debug)]
pub(crate) struct Selection {
    top: &'static [Entry],
}

use Kind::{All, Text};

const CHAT_IN: Selection = Selection {
    top: &[Entry {
        key: "messages",
        text: false,
        keys: &[
            ("content", Text),
            ("text", Text),
            ("arguments", Text),
            ("refusal", Text),
        ],
    }],
};

const MESSAGES_IN: Selection = Selection {
    top: &[
        Entry {
            key: "system",
            text: true,
            keys: &[("text", Text)],
        },
        Entry {
            key: "messages",
            text: false,
            keys: &[("content", Text), ("text", Text), ("input", All)],
        },
    ],
};

const COMPLETIONS_IN: Selection = Selection {
    top: &[Entry {
        key: "prompt",
        text: true,
        keys: &[],
    }],
};

const EMBEDDINGS_IN: Selection = Selection {
    top: &[Entry {
        key: "input",
        text: true,
        keys: &[],
    }],
};

const RESPONSES_IN: Selection = Selection {
    top: &[
        Entry {
            key: "instructions",
            text: true,
            keys: &[],
        },
        Entry {
            key: "input",
            text: true,
            keys: &[
                ("content", Text),
                ("text", Text),
                ("output", Text),
                ("arguments", Text),
            ],
        },
    ],
};

const CHAT_OUT: Selection = Selection {
    top: &[Entry {
        key: "choices",
        text: false,
        keys: &[("content", Text), ("refusal", Text), ("arguments", Text)],
    }],
};

const COMPLETIONS_OUT: Selection = Selection {
    top: &[Entry {
        key: "choices",
        text: false,
        keys: &[("text", Text)],
    }],
};

const MESSAGES_OUT: Selection = Selection {
    top: &[Entry {
        key: "content",
        text: false,
        keys: &[("text", Text), ("input", All)],
    }],
};

const RESPONSES_OUT: Selection = Selection {
    top: &[Entry {
        key: "output",
        text: false,
        keys: &[("text", Text), ("arguments", Text)],
    }],
};

/// The selection for an API at a stage; `None` where guardrails read nothing (embedding
/// vectors, and the operations that are not model calls).
pub(crate) fn selection(stage: Stage, op: Operation) -> Option<&'static Selection> {
    let sel = match (stage, op) {
        (Stage::Input, Operation::ChatCompletions) => &CHAT_IN,
        (Stage::Input, Operation::Messages) => &MESSAGES_IN,
        (Stage::Input, Operation::Completions) => &COMPLETIONS_IN,
        (Stage::Input, Operation::Embeddings) => &EMBEDDINGS_IN,
        (Stage::Input, Operation::Responses) => &RESPONSES_IN,
        (Stage::Output, Operation::ChatCompletions) => &CHAT_OUT,
        (Stage::Output, Operation::Completions) => &COMPLETIONS_OUT,
        (Stage::Output, Operation::Messages) => &MESSAGES_OUT,
        (Stage::Output, Operation::Responses) => &RESPONSES_OUT,
        _ => return None,
    };
    Some(sel)
}

/// Deepest nesting walked; deeper documents count as not JSON (the scanner in
/// `switchyard_types::json` has the same bound).
const MAX_DEPTH: usize = 1024;

/// One bit per open container.
struct Bits([u64; MAX_DEPTH / 64]);

impl Bits {
    fn set(&mut self, i: usize, on: bool) {
        if let Some(w) = self.0.get_mut(i / 64) {
            if on {
                *w |= 1 << (i % 64);
            } else {
                *w &= !(1 << (i % 64));
            }
        }
    }

    fn get(&self, i: usize) -> bool {
        self.0.get(i / 64).is_some_and(|w| w & (1 << (i % 64)) != 0)
    }
}

/// How the next value is read.
#[derive(Clone, Copy)]
struct Ctx {
    /// A string here is text (and so are the string elements of an array here).
    text: bool,
    /// Everything below this value is text.
    all: bool,
}

const SKIP: Ctx = Ctx {
    text: false,
    all: false,
};

struct Walker<'a> {
    doc: &'a [u8],
    sel: &'static Selection,
    i: usize,
    /// Open containers.
    depth: usize,
    /// Per open container: an object (set) or an array.
    objects: Bits,
    /// Per open container: its own value was text (its string elements are).
    texts: Bits,
    /// The key table of the top-level member being walked, when it is selected.
    keys: Option<&'static [(&'static str, Kind)]>,
    /// The depth of the container below which everything is text; 0 when none.
    all_from: usize,
}

/// Calls `f` with the span (quotes included) of each selected string value, in document
/// order, until `f` breaks.
///
/// Returns `None` when `doc` is not one well-formed JSON value. Like `serde_json`, string
/// bytes are not checked for UTF-8.
pub(crate) fn strings(
    doc: &[u8],
    sel: &'static Selection,
    f: &mut dyn FnMut(Range<usize>) -> ControlFlow<()>,
) -> Option<()> {
    let mut w = Walker {
        doc,
        sel,
        i: 0,
        depth: 0,
        objects: Bits([0; MAX_DEPTH / 64]),
        texts: Bits([0; MAX_DEPTH / 64]),
        keys: None,
        all_from: 0,
    };
    let mut ctx = SKIP;
    // Once `f` has seen enough, the rest is still walked (without calls) so that a verdict
    // is never given on a document that is not JSON.
    let mut done = false;
    'value: loop {
        w.ws();
        match *w.doc.get(w.i)? {
            open @ (b'{' | b'[') => {
                w.i += 1;
                let object = open == b'{';
                if w.depth == MAX_DEPTH {
                    return None;
                }
                w.objects.set(w.depth, object);
                w.texts.set(w.depth, ctx.text);
                w.depth += 1;
                if ctx.all && w.all_from == 0 {
                    w.all_from = w.depth;
                }
                w.ws();
                let close = if object { b'}' } else { b']' };
                if w.doc.get(w.i) == Some(&close) {
                    w.i += 1;
                    w.pop();
                } else {
                    ctx = if object { w.member()? } else { w.element() };
                    continue 'value;
                }
            }
            b'"' => {
                let start = w.i;
                w.string()?;
                if ctx.text && !done && f(start..w.i).is_break() {
                    done = true;
                }
            }
            b't' | b'f' | b'n' | b'-' | b'0'..=b'9' => w.scalar()?,
            _ => return None,
        }
        // A value is complete: a comma, closers, or the end of the document follow.
        loop {
            w.ws();
            if w.depth == 0 {
                return (w.i == w.doc.len()).then_some(());
            }
            let object = w.objects.get(w.depth - 1);
            match (*w.doc.get(w.i)?, object) {
                (b',', true) => {
                    w.i += 1;
                    ctx = w.member()?;
                    continue 'value;
                }
                (b',', false) => {
                    w.i += 1;
                    ctx = w.element();
                    continue 'value;
                }
                (b'}', true) | (b']', false) => {
                    w.i += 1;
                    w.pop();
                }
                _ => return None,
            }
        }
    }
}

impl Walker<'_> {
    fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.doc.get(self.i) {
            self.i += 1;
        }
    }

    fn pop(&mut self) {
        if self.all_from == self.depth {
            self.all_from = 0;
        }
        self.depth -= 1;
    }

    /// Reads `"key" :` and says how the member's value is read.
    fn member(&mut self) -> Option<Ctx> {
        self.ws();
        if self.doc.get(self.i) != Some(&b'"') {
            return None;
        }
        let start = self.i;
        self.string()?;
        let key = start..self.i;
        self.ws();
        if self.doc.get(self.i) != Some(&b':') {
            return None;
        }
        self.i += 1;
        if self.depth == 1 {
            // A member of the root object: entered only when the selection names it.
            let entry = self
                .sel
                .top
                .iter()
                .find(|e| self.key_is(key.clone(), e.key));
            self.keys = entry.map(|e| e.keys);
            return Some(Ctx {
                text: entry.is_some_and(|e| e.text),
                all: false,
            });
        }
        let Some(keys) = self.keys else {
            return Some(SKIP);
        };
        if self.all_from != 0 {
            return Some(Ctx {
                text: true,
                all: false,
            });
        }
        Some(
            match keys.iter().find(|(k, _)| self.key_is(key.clone(), k)) {
                Some((_, Text)) => Ctx {
                    text: true,
                    all: false,
                },
                Some((_, All)) => Ctx {
                    text: true,
                    all: true,
                },
                None => SKIP,
            },
        )
    }

    /// How an array element is read: as text when the array itself was.
    fn element(&self) -> Ctx {
        Ctx {
            text: self.all_from != 0 || self.texts.get(self.depth - 1),
            all: false,
        }
    }

    /// Whether the key literal at `span` (quotes included) spells `name`.
    fn key_is(&self, span: Range<usize>, name: &str) -> bool {
        let raw = &self.doc[span];
        let inner = &raw[1..raw.len() - 1];
        if inner == name.as_bytes() {
            return true;
        }
        // An escaped key (`"cont\u0065nt"`) is longer than what it spells; decode it rather
        // than let it slip past.
        inner.len() > name.len()
            && inner.contains(&b'\\')
            && switchyard_types::json::string_value(raw).is_some_and(|k| k == name)
    }

    /// Steps over a string literal starting at the opening quote (the scanner's grammar).
    fn string(&mut self) -> Option<()> {
        self.i = switchyard_types::json::string_end(self.doc, self.i)?;
        Some(())
    }

    /// Steps over a number or a literal (`true`, `false`, `null`), by the scanner's grammar.
    fn scalar(&mut self) -> Option<()> {
        self.i = switchyard_types::json::value_end(self.doc, self.i)?;
        Some(())
    }
}
