//! Writing an answer as Google writes it.
//!
//! Whole responses are pretty-printed with two-space indentation, as Google's front end sends
//! them. Streamed `alt=sse` events are one line each, `data: <json>\r\n\r\n`, the JSON in
//! Google's compact style (`": "` after keys, nothing after commas). Without `alt=sse` a stream
//! is one JSON array sent in pieces: `[` then each pretty-printed response, separated by
//! `\n,\r\n`, then `]`. Field order follows Google's responses: `candidates`
//! (`content` (`parts`, `role`), `finishReason`, `index`, `safetyRatings`), `promptFeedback`,
//! `usageMetadata`, `modelVersion`, `responseId`.

use serde::Serialize;
use serde_json::Value;

use super::reply::{Answer, Candidate, Part};
use crate::sse::EventBuf;

/// Words per streamed text piece; Gemini streams a few tokens per event.
const WORDS_PER_EVENT: usize = 4;

/// serde_json's compact output with a space after each key's colon, as Google writes events.
struct GoogleCompact;

impl serde_json::ser::Formatter for GoogleCompact {
    fn begin_object_value<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
    ) -> std::io::Result<()> {
        writer.write_all(b": ")
    }
}

/// `value` in Google's compact event style.
pub(super) fn compact<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    let mut ser = serde_json::Serializer::with_formatter(&mut out, GoogleCompact);
    // Our types serialize infallibly; an empty object keeps the body valid regardless.
    if value.serialize(&mut ser).is_err() {
        return b"{}".to_vec();
    }
    out
}

/// `value` pretty-printed, as Google sends whole responses.
pub(super) fn pretty<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec_pretty(value).unwrap_or_else(|_| b"{}".to_vec())
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ResponseOut<'a> {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    candidates: Vec<CandidateOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    prompt_feedback: Option<PromptFeedbackOut>,
    usage_metadata: UsageOut,
    model_version: &'a str,
    response_id: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CandidateOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<ContentOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    finish_reason: Option<&'static str>,
    index: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    safety_ratings: Option<Vec<RatingOut>>,
}

#[derive(Serialize)]
struct ContentOut<'a> {
    parts: Vec<PartOut<'a>>,
    role: &'static str,
}

#[derive(Serialize)]
#[serde(untagged)]
enum PartOut<'a> {
    Text {
        text: &'a str,
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        thought: bool,
    },
    Call {
        #[serde(rename = "functionCall")]
        function_call: CallOut<'a>,
        #[serde(rename = "thoughtSignature", skip_serializing_if = "Option::is_none")]
        thought_signature: Option<&'a str>,
    },
}

#[derive(Serialize)]
struct CallOut<'a> {
    name: &'a str,
    args: &'a Value,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PromptFeedbackOut {
    block_reason: &'static str,
    safety_ratings: Vec<RatingOut>,
}

#[derive(Serialize)]
struct RatingOut {
    category: &'static str,
    probability: &'static str,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    blocked: bool,
}

#[derive(Serialize, Clone, Copy)]
#[serde(rename_all = "camelCase")]
struct UsageOut {
    prompt_token_count: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    candidates_token_count: Option<u64>,
    total_token_count: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    cached_content_token_count: Option<u64>,
    prompt_tokens_details: [ModalityOut; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    thoughts_token_count: Option<u64>,
}

#[derive(Serialize, Clone, Copy)]
#[serde(rename_all = "camelCase")]
struct ModalityOut {
    modality: &'static str,
    token_count: u64,
}

const CATEGORIES: [&str; 4] = [
    "HARM_CATEGORY_SEXUALLY_EXPLICIT",
    "HARM_CATEGORY_HATE_SPEECH",
    "HARM_CATEGORY_HARASSMENT",
    "HARM_CATEGORY_DANGEROUS_CONTENT",
];

/// Ratings with `blocked` set on the category at fault.
fn ratings(blocked: &'static str) -> Vec<RatingOut> {
    CATEGORIES
        .iter()
        .map(|c| RatingOut {
            category: c,
            probability: if *c == blocked { "HIGH" } else { "NEGLIGIBLE" },
            blocked: *c == blocked,
        })
        .collect()
}

fn final_usage(answer: &Answer) -> UsageOut {
    UsageOut {
        prompt_token_count: answer.prompt_tokens,
        // Google leaves the count out when nothing was generated.
        candidates_token_count: Some(answer.candidates_tokens()).filter(|n| *n > 0),
        total_token_count: answer.total_tokens(),
        cached_content_token_count: answer.cached_tokens,
        prompt_tokens_details: [ModalityOut {
            modality: "TEXT",
            token_count: answer.prompt_tokens,
        }],
        thoughts_token_count: answer.thought_tokens(),
    }
}

/// The prompt-only usage early stream events carry.
fn partial_usage(answer: &Answer) -> UsageOut {
    UsageOut {
        candidates_token_count: None,
        total_token_count: answer.prompt_tokens,
        thoughts_token_count: None,
        ..final_usage(answer)
    }
}

fn part_out(part: &Part) -> PartOut<'_> {
    match part {
        Part::Text { text, thought } => PartOut::Text {
            text,
            thought: *thought,
        },
        Part::Call {
            name,
            args,
            signature,
        } => PartOut::Call {
            function_call: CallOut { name, args },
            thought_signature: signature.as_deref(),
        },
    }
}

fn candidate_out<'a>(
    index: usize,
    c: &'a Candidate,
    parts: Vec<PartOut<'a>>,
    finished: bool,
) -> CandidateOut<'a> {
    CandidateOut {
        content: (!parts.is_empty()).then_some(ContentOut {
            parts,
            role: "model",
        }),
        finish_reason: finished.then_some(c.finish_reason),
        index: u32::try_from(index).unwrap_or(u32::MAX),
        safety_ratings: if finished {
            c.blocked_category.map(ratings)
        } else {
            None
        },
    }
}

fn prompt_feedback(answer: &Answer) -> Option<PromptFeedbackOut> {
    answer.prompt_blocked.then(|| PromptFeedbackOut {
        block_reason: "SAFETY",
        safety_ratings: ratings("HARM_CATEGORY_HATE_SPEECH"),
    })
}

/// The whole `GenerateContentResponse`, pretty-printed.
pub(super) fn whole(answer: &Answer, model: &str, response_id: &str) -> Vec<u8> {
    let candidates = answer
        .candidates
        .iter()
        .enumerate()
        .map(|(i, c)| candidate_out(i, c, c.parts.iter().map(part_out).collect(), true))
        .collect();
    pretty(&ResponseOut {
        candidates,
        prompt_feedback: prompt_feedback(answer),
        usage_metadata: final_usage(answer),
        model_version: model,
        response_id,
    })
}

/// A truncated response, for the `malformed` knob.
pub(super) fn broken() -> Vec<u8> {
    b"{\n  \"candidates\": [\n    {\n      \"content\": {\n        \"parts\": [\n          {\n            \"text\": \"trunc".to_vec()
}

/// The pieces one candidate streams: text split every few words (pieces keep their trailing
/// space, so they join back into the text), function calls whole.
fn pieces(c: &Candidate) -> Vec<Vec<PartOut<'_>>> {
    let mut out: Vec<Vec<PartOut<'_>>> = Vec::new();
    let mut calls = Vec::new();
    for part in &c.parts {
        match part {
            Part::Text { text, thought } if !c.echo => {
                let mut start = 0;
                let mut words = 0;
                for (i, ch) in text.char_indices() {
                    if ch == ' ' {
                        words += 1;
                        if words == WORDS_PER_EVENT {
                            out.push(vec![PartOut::Text {
                                text: &text[start..=i],
                                thought: *thought,
                            }]);
                            start = i + 1;
                            words = 0;
                        }
                    }
                }
                if start < text.len() {
                    out.push(vec![PartOut::Text {
                        text: &text[start..],
                        thought: *thought,
                    }]);
                }
            }
            Part::Text { .. } => out.push(vec![part_out(part)]),
            Part::Call { .. } => calls.push(part_out(part)),
        }
    }
    if !calls.is_empty() {
        out.push(calls);
    }
    out
}

/// How a stream is framed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Framing {
    /// `alt=sse`: `data: <compact json>\r\n\r\n` per event.
    Sse,
    /// No `alt`: one JSON array, element by element.
    JsonArray,
}

/// Renders the stream: per round, one event with each unfinished candidate's next piece, the
/// last piece of a candidate carrying its `finishReason`; usage grows to the final counts on
/// the last event. With `malformed`, a broken event follows the first one.
pub(super) fn stream(
    answer: &Answer,
    model: &str,
    response_id: &str,
    framing: Framing,
    malformed: bool,
) -> EventBuf {
    let all: Vec<Vec<Vec<PartOut<'_>>>> = answer.candidates.iter().map(pieces).collect();
    let rounds = all.iter().map(|p| p.len().max(1)).max().unwrap_or(1);
    let mut events = Vec::with_capacity(rounds);
    if answer.prompt_blocked {
        events.push(ResponseOut {
            candidates: Vec::new(),
            prompt_feedback: prompt_feedback(answer),
            usage_metadata: final_usage(answer),
            model_version: model,
            response_id,
        });
    } else {
        let mut all = all;
        for round in 0..rounds {
            let mut candidates = Vec::new();
            for (i, (c, pieces)) in answer.candidates.iter().zip(all.iter_mut()).enumerate() {
                let len = pieces.len().max(1);
                if round >= len {
                    continue;
                }
                let parts = if round < pieces.len() {
                    std::mem::take(&mut pieces[round])
                } else {
                    Vec::new()
                };
                candidates.push(candidate_out(i, c, parts, round + 1 == len));
            }
            let last = round + 1 == rounds;
            events.push(ResponseOut {
                candidates,
                prompt_feedback: None,
                usage_metadata: if last {
                    final_usage(answer)
                } else {
                    partial_usage(answer)
                },
                model_version: model,
                response_id,
            });
        }
    }
    let mut out = EventBuf::with_capacity(events.len() + 2, 256);
    let n = events.len();
    for (i, event) in events.iter().enumerate() {
        let buf = out.buf();
        match framing {
            Framing::Sse => {
                buf.extend_from_slice(b"data: ");
                buf.extend_from_slice(&compact(event));
                buf.extend_from_slice(b"\r\n\r\n");
            }
            Framing::JsonArray => {
                buf.extend_from_slice(if i == 0 { b"[" } else { b"\n,\r\n" });
                buf.extend_from_slice(&pretty(event));
                if i + 1 == n {
                    buf.extend_from_slice(b"\n]");
                }
            }
        }
        out.end_event();
        if i == 0 && malformed {
            let buf = out.buf();
            buf.extend_from_slice(b"data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"unterminated\r\n\r\n");
            out.end_event();
        }
    }
    out
}

/// The error event Google sends when a stream fails after its 200.
pub(super) fn push_error_event(out: &mut EventBuf, body: &Value) {
    let buf = out.buf();
    buf.extend_from_slice(b"data: ");
    buf.extend_from_slice(&compact(body));
    buf.extend_from_slice(b"\r\n\r\n");
    out.end_event();
}
