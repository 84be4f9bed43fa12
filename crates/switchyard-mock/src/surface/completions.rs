//! OpenAI's legacy completions API, `POST /v1/completions` (and Azure's deployment route):
//! a `text_completion` object, or a stream of `text_completion` chunks ending in `[DONE]`.
//!
//! As in the API, `prompt` may be a string, an array of strings, an array of token ids or an
//! array of such arrays; every prompt gets `n` choices, indexed prompt-major. `max_tokens`
//! defaults to 16, as OpenAI's does, and a cut answer finishes with `length`. `echo: true`
//! prepends the prompt text to each choice.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::response::Response;
use http::{header, HeaderValue, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::knobs::Knobs;
use crate::openai::{
    delayed, invalid_request, json_response, knob_override, parse_error, read_request, to_json,
    unix_secs, FINGERPRINT, SSE_CONTENT_TYPE,
};
use crate::sse::{Ending, EventBuf};
use crate::text::{self, push_json_str};
use crate::{Accounting, Shared};

/// OpenAI's default `max_tokens` for the legacy API.
const DEFAULT_MAX_TOKENS: u32 = 16;
/// Most prompts × `n` choices one request may ask for.
const MAX_CHOICES: usize = 128;

#[derive(Deserialize)]
struct CompletionRequest {
    model: Option<String>,
    prompt: Option<Value>,
    max_tokens: Option<u32>,
    n: Option<u32>,
    stream: Option<bool>,
    stream_options: Option<StreamOptions>,
    echo: Option<bool>,
    mock: Option<Knobs>,
}

#[derive(Deserialize)]
struct StreamOptions {
    include_usage: Option<bool>,
}

pub(super) async fn completions(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    common(&shared, None, req).await
}

pub(super) async fn azure_completions(
    State(shared): State<Arc<Shared>>,
    Path(deployment): Path<String>,
    req: Request,
) -> Response {
    common(&shared, Some(deployment), req).await
}

async fn common(shared: &Shared, deployment: Option<String>, req: Request) -> Response {
    let (parts, body) = match read_request(shared, req).await {
        Ok(read) => read,
        Err(resp) => return resp,
    };
    let req: CompletionRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return parse_error(&e),
    };
    let knobs = match Knobs::resolve(&parts.headers, req.mock.clone()) {
        Ok(k) => k,
        Err(msg) => return invalid_request(&msg, Some("mock"), None),
    };
    let latency = knobs.latency(&shared.cfg);
    let model = req.model.clone().or(deployment);
    if let Some(resp) = knob_override(&knobs, model.as_deref().unwrap_or("")) {
        return delayed(resp, latency).await;
    }
    let resp = answer(shared, &knobs, model, &req);
    delayed(resp, latency).await
}

/// The prompts as text (token-id prompts become a placeholder of their length).
fn prompts(prompt: &Value) -> Option<Vec<String>> {
    let one = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Array(ids) if ids.iter().all(Value::is_u64) => {
            Some(format!("<{} tokens>", ids.len()))
        }
        _ => None,
    };
    match prompt {
        Value::String(s) => Some(vec![s.clone()]),
        Value::Array(items) if !items.is_empty() && items.iter().all(Value::is_u64) => {
            one(prompt).map(|p| vec![p])
        }
        Value::Array(items) if !items.is_empty() => items.iter().map(one).collect(),
        _ => None,
    }
}

struct Choice {
    text: String,
    finish: &'static str,
    tokens: u64,
}

fn answer(
    shared: &Shared,
    knobs: &Knobs,
    model: Option<String>,
    req: &CompletionRequest,
) -> Response {
    let Some(model) = model else {
        return invalid_request("You must provide a model parameter.", Some("model"), None);
    };
    let Some(prompt) = req.prompt.as_ref() else {
        return invalid_request(
            "Missing required parameter: 'prompt'.",
            Some("prompt"),
            None,
        );
    };
    let Some(prompts) = prompts(prompt) else {
        return invalid_request(
            "Invalid 'prompt': expected a string, an array of strings, an array of tokens, or \
             an array of token arrays.",
            Some("prompt"),
            None,
        );
    };
    let n = req.n.unwrap_or(1) as usize;
    if n == 0 || prompts.len() * n > MAX_CHOICES {
        return invalid_request(
            &format!("Invalid 'n': prompts × n must be between 1 and {MAX_CHOICES}."),
            Some("n"),
            None,
        );
    }
    let limit = req.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS);
    let mut choices = Vec::with_capacity(prompts.len() * n);
    let mut prompt_tokens = 0;
    for p in &prompts {
        prompt_tokens += text::estimate_tokens(p.len());
        for i in 0..n {
            let seed = text::fnv1a(p.as_bytes()).wrapping_add(i as u64);
            let wanted = knobs
                .words
                .unwrap_or_else(|| text::default_word_count(seed));
            let (words, finish) = if wanted > limit {
                (limit, "length")
            } else {
                (wanted, "stop")
            };
            let mut out = String::new();
            if req.echo == Some(true) {
                out.push_str(p);
            }
            // A completion continues the prompt, so it starts with a space.
            if words > 0 {
                out.push(' ');
                out.push_str(&text::fake_text(seed, words));
            }
            choices.push(Choice {
                text: out,
                finish,
                tokens: u64::from(words),
            });
        }
    }
    let completion_tokens: u64 = choices.iter().map(|c| c.tokens).sum();
    let usage = Usage {
        prompt_tokens,
        completion_tokens,
        total_tokens: prompt_tokens + completion_tokens,
    };
    let id = text::random_id("cmpl-", 29);
    let created = unix_secs();
    let mut resp = if req.stream == Some(true) {
        let include_usage = req
            .stream_options
            .as_ref()
            .and_then(|o| o.include_usage)
            .unwrap_or(false);
        let events = render_stream(
            &id,
            created,
            &model,
            &choices,
            include_usage.then_some(&usage),
        );
        let (keep, ending) = match knobs.disconnect_after_chunks {
            Some(k) => (Some(k as usize), Ending::Abort),
            None => (None, Ending::Finish),
        };
        let body = events.into_body(knobs.chunk_delay(&shared.cfg), keep, ending);
        let mut resp = Response::new(Body::new(body));
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(SSE_CONTENT_TYPE),
        );
        resp
    } else {
        let body = TextCompletion {
            id: &id,
            object: "text_completion",
            created,
            model: &model,
            system_fingerprint: FINGERPRINT,
            choices: choices
                .iter()
                .enumerate()
                .map(|(index, c)| ChoiceOut {
                    text: &c.text,
                    index,
                    logprobs: (),
                    finish_reason: Some(c.finish),
                })
                .collect(),
            usage: Some(&usage),
        };
        json_response(StatusCode::OK, to_json(&body))
    };
    resp.extensions_mut().insert(Accounting {
        tokens: usage.total_tokens,
        ..Accounting::default()
    });
    resp
}

#[derive(Serialize)]
struct TextCompletion<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    system_fingerprint: &'static str,
    choices: Vec<ChoiceOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<&'a Usage>,
}

#[derive(Serialize)]
struct ChoiceOut<'a> {
    text: &'a str,
    index: usize,
    logprobs: (),
    finish_reason: Option<&'static str>,
}

#[derive(Serialize)]
struct Usage {
    prompt_tokens: u64,
    completion_tokens: u64,
    total_tokens: u64,
}

/// One chunk per word of each choice (choices interleaved), the last piece of each carrying
/// its `finish_reason`; then, when asked for, a chunk with empty `choices` and the usage; then
/// `[DONE]`.
fn render_stream(
    id: &str,
    created: u64,
    model: &str,
    choices: &[Choice],
    usage: Option<&Usage>,
) -> EventBuf {
    let pieces: Vec<Vec<&str>> = choices
        .iter()
        .map(|c| {
            let mut v: Vec<&str> = c.text.split_inclusive(' ').collect();
            if v.is_empty() {
                v.push("");
            }
            v
        })
        .collect();
    let rounds = pieces.iter().map(Vec::len).max().unwrap_or(0);
    let mut out = EventBuf::with_capacity(rounds * choices.len() + 2, 200);
    let mut head = Vec::with_capacity(160);
    head.extend_from_slice(b"data: {\"id\":");
    push_json_str(&mut head, id);
    head.extend_from_slice(b",\"object\":\"text_completion\",\"created\":");
    head.extend_from_slice(created.to_string().as_bytes());
    head.extend_from_slice(b",\"model\":");
    push_json_str(&mut head, model);
    head.extend_from_slice(b",\"system_fingerprint\":\"");
    head.extend_from_slice(FINGERPRINT.as_bytes());
    head.extend_from_slice(b"\",\"choices\":[");
    for round in 0..rounds {
        for (index, list) in pieces.iter().enumerate() {
            let Some(piece) = list.get(round) else {
                continue;
            };
            let last = round + 1 == list.len();
            let buf = out.buf();
            buf.extend_from_slice(&head);
            buf.extend_from_slice(b"{\"text\":");
            push_json_str(buf, piece);
            buf.extend_from_slice(b",\"index\":");
            buf.extend_from_slice(index.to_string().as_bytes());
            buf.extend_from_slice(b",\"logprobs\":null,\"finish_reason\":");
            match (last, choices.get(index)) {
                (true, Some(c)) => push_json_str(buf, c.finish),
                _ => buf.extend_from_slice(b"null"),
            }
            buf.extend_from_slice(b"}]}\n\n");
            out.end_event();
        }
    }
    if let Some(usage) = usage {
        let buf = out.buf();
        buf.extend_from_slice(&head);
        buf.extend_from_slice(b"],\"usage\":");
        buf.extend_from_slice(&to_json(usage));
        buf.extend_from_slice(b"}\n\n");
        out.end_event();
    }
    out.buf().extend_from_slice(b"data: [DONE]\n\n");
    out.end_event();
    out
}
