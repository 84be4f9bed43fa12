//! Translation cost (issue 3's target: under 50 µs per non-streaming request and per 100
//! streamed chunks). Run with `cargo bench -p switchyard-types --bench translate`.
//!
//! Inputs are built here rather than read from fixtures so that their size is explicit: a
//! realistic agent turn (system prompt, a few turns, a tool round trip, two tool definitions)
//! and a 100-event stream.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::json;
use switchyard_types::anthropic::request::{chat_to_messages, messages_to_chat};
use switchyard_types::anthropic::response::{chat_to_messages_response, messages_to_chat_response};
use switchyard_types::anthropic::stream::{ChatToMessagesStream, MessagesToChatStream};
use switchyard_types::bedrock::eventstream::{decode, encode, Header, HeaderValue, Message};
use switchyard_types::bedrock::request::chat_to_converse;
use switchyard_types::bedrock::response::converse_to_chat_response;
use switchyard_types::bedrock::stream::ConverseToChatStream;
use switchyard_types::gemini::request::chat_to_gemini;
use switchyard_types::gemini::response::gemini_to_chat_response;
use switchyard_types::gemini::stream::GeminiToChatStream;
use switchyard_types::openai::{read_reply, ReadReply};

fn chat_request() -> Vec<u8> {
    let tool = |name: &str| {
        json!({"type": "function", "function": {"name": name, "description": "Looks things up.",
            "parameters": {"type": "object", "properties": {"q": {"type": "string"},
            "limit": {"type": "integer"}}, "required": ["q"]}}})
    };
    serde_json::to_vec(&json!({
        "model": "smart",
        "messages": [
            {"role": "system", "content": "You are a careful assistant. ".repeat(20)},
            {"role": "user", "content": "Find the three most recent invoices for ACME."},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function",
                "function": {"name": "search", "arguments": "{\"q\":\"ACME invoices\",\"limit\":3}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "[{\"id\":1},{\"id\":2},{\"id\":3}]"},
            {"role": "assistant", "content": "I found three invoices: 1, 2 and 3."},
            {"role": "user", "content": [{"type": "text", "text": "Summarise invoice 2 in one line."}]}
        ],
        "tools": [tool("search"), tool("fetch")],
        "temperature": 0.3, "max_tokens": 512, "stream": false, "user": "u-1"
    }))
    .unwrap()
}

fn messages_request() -> Vec<u8> {
    serde_json::to_vec(&json!({
        "model": "smart", "max_tokens": 512, "system": "You are a careful assistant. ".repeat(20),
        "messages": [
            {"role": "user", "content": "Find the three most recent invoices for ACME."},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "search",
                "input": {"q": "ACME invoices", "limit": 3}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1",
                "content": "[{\"id\":1},{\"id\":2},{\"id\":3}]"}]},
            {"role": "user", "content": "Summarise invoice 2 in one line."}
        ],
        "tools": [{"name": "search", "description": "Looks things up.", "input_schema":
            {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}}]
    }))
    .unwrap()
}

fn anthropic_message() -> Vec<u8> {
    serde_json::to_vec(&json!({
        "id": "msg_01", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
        "content": [
            {"type": "text", "text": "Invoice 2 is a March order of 40 widgets. ".repeat(4)},
            {"type": "tool_use", "id": "toolu_2", "name": "fetch", "input": {"q": "invoice 2"}}
        ],
        "stop_reason": "tool_use", "stop_sequence": null,
        "usage": {"input_tokens": 812, "output_tokens": 64, "cache_read_input_tokens": 600,
            "cache_creation_input_tokens": 0}
    }))
    .unwrap()
}

fn chat_completion() -> Vec<u8> {
    serde_json::to_vec(&json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o",
        "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant",
            "content": "Invoice 2 is a March order of 40 widgets. ".repeat(4),
            "tool_calls": [{"id": "call_2", "type": "function",
                "function": {"name": "fetch", "arguments": "{\"q\":\"invoice 2\"}"}}]}}],
        "usage": {"prompt_tokens": 812, "completion_tokens": 64, "total_tokens": 876}
    }))
    .unwrap()
}

/// 100 Anthropic stream events: start, one text block of 96 deltas, its stop, message delta
/// and stop (`ping`s are not counted).
fn anthropic_events() -> Vec<Vec<u8>> {
    let mut ev = vec![
        json!({"type": "message_start", "message": {"id": "msg_1", "type": "message",
            "role": "assistant", "model": "claude-sonnet-4-5", "content": [], "stop_reason": null,
            "stop_sequence": null, "usage": {"input_tokens": 25, "output_tokens": 1}}}),
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
    ];
    for i in 0..95 {
        ev.push(json!({"type": "content_block_delta", "index": 0,
            "delta": {"type": "text_delta", "text": format!("word{i} ")}}));
    }
    ev.push(json!({"type": "content_block_stop", "index": 0}));
    ev.push(
        json!({"type": "message_delta", "delta": {"stop_reason": "end_turn",
        "stop_sequence": null}, "usage": {"output_tokens": 96}}),
    );
    ev.push(json!({"type": "message_stop"}));
    ev.iter().map(|e| serde_json::to_vec(e).unwrap()).collect()
}

/// 100 OpenAI chunk payloads: role, 97 content deltas, finish, `[DONE]`.
fn openai_chunks() -> Vec<Vec<u8>> {
    let chunk = |delta: serde_json::Value, finish: serde_json::Value| {
        serde_json::to_vec(
            &json!({"id": "chatcmpl-1", "object": "chat.completion.chunk",
            "created": 1, "model": "gpt-4o", "choices": [{"index": 0, "delta": delta,
            "finish_reason": finish}]}),
        )
        .unwrap()
    };
    let mut out = vec![chunk(
        json!({"role": "assistant", "content": ""}),
        json!(null),
    )];
    for i in 0..97 {
        out.push(chunk(json!({"content": format!("word{i} ")}), json!(null)));
    }
    out.push(chunk(json!({}), json!("stop")));
    out.push(b"[DONE]".to_vec());
    out
}

fn converse_response() -> Vec<u8> {
    serde_json::to_vec(&json!({
        "output": {"message": {"role": "assistant", "content": [
            {"text": "Invoice 2 is a March order of 40 widgets. ".repeat(4)},
            {"toolUse": {"toolUseId": "tooluse_2", "name": "fetch", "input": {"q": "invoice 2"}}}
        ]}},
        "stopReason": "tool_use",
        "usage": {"inputTokens": 812, "outputTokens": 64, "totalTokens": 876},
        "metrics": {"latencyMs": 420}
    }))
    .unwrap()
}

/// 100 ConverseStream messages as eventstream bytes: start, 96 text deltas, block stop,
/// message stop and metadata.
fn converse_stream() -> Vec<Vec<u8>> {
    let mut events = vec![("messageStart", json!({"role": "assistant"}))];
    for i in 0..96 {
        events.push((
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"text": format!("word{i} ")}}),
        ));
    }
    events.push(("contentBlockStop", json!({"contentBlockIndex": 0})));
    events.push(("messageStop", json!({"stopReason": "end_turn"})));
    events.push((
        "metadata",
        json!({"usage": {"inputTokens": 25, "outputTokens": 96, "totalTokens": 121},
            "metrics": {"latencyMs": 900}}),
    ));
    events
        .iter()
        .map(|(kind, payload)| {
            let payload = serde_json::to_vec(payload).unwrap();
            let headers = vec![
                Header {
                    name: ":event-type",
                    value: HeaderValue::String(kind),
                },
                Header {
                    name: ":content-type",
                    value: HeaderValue::String("application/json"),
                },
                Header {
                    name: ":message-type",
                    value: HeaderValue::String("event"),
                },
            ];
            encode(&Message {
                headers,
                payload: &payload,
            })
            .unwrap()
        })
        .collect()
}

fn gemini_response() -> Vec<u8> {
    serde_json::to_vec(&json!({
        "candidates": [{"content": {"role": "model", "parts": [
            {"text": "Invoice 2 is a March order of 40 widgets. ".repeat(4)},
            {"functionCall": {"name": "fetch", "args": {"q": "invoice 2"}}}
        ]}, "finishReason": "STOP", "index": 0}],
        "usageMetadata": {"promptTokenCount": 812, "candidatesTokenCount": 64,
            "totalTokenCount": 876},
        "modelVersion": "gemini-2.5-flash", "responseId": "resp-1"
    }))
    .unwrap()
}

/// 100 `streamGenerateContent` events: 99 text pieces and a last one with the finish reason
/// and usage.
fn gemini_events() -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = (0..99)
        .map(|i| {
            serde_json::to_vec(&json!({"candidates": [{"content": {"role": "model",
                "parts": [{"text": format!("word{i} ")}]}, "index": 0}],
                "modelVersion": "gemini-2.5-flash", "responseId": "resp-1"}))
            .unwrap()
        })
        .collect();
    out.push(
        serde_json::to_vec(&json!({"candidates": [{"content": {"role": "model",
            "parts": [{"text": "end"}]}, "finishReason": "STOP", "index": 0}],
            "usageMetadata": {"promptTokenCount": 25, "candidatesTokenCount": 100,
            "totalTokenCount": 125}, "modelVersion": "gemini-2.5-flash", "responseId": "resp-1"}))
        .unwrap(),
    );
    out
}

fn requests(c: &mut Criterion) {
    let chat = chat_request();
    c.bench_function("request/openai->anthropic", |b| {
        b.iter(|| chat_to_messages(black_box(&chat), "claude-sonnet-4-5").unwrap())
    });
    let messages = messages_request();
    c.bench_function("request/anthropic->openai", |b| {
        b.iter(|| messages_to_chat(black_box(&messages), "gpt-4o").unwrap())
    });
    c.bench_function("request/openai->gemini", |b| {
        b.iter(|| chat_to_gemini(black_box(&chat)).unwrap())
    });
    c.bench_function("request/openai->bedrock", |b| {
        b.iter(|| chat_to_converse(black_box(&chat)).unwrap())
    });
}

fn responses(c: &mut Criterion) {
    let msg = anthropic_message();
    c.bench_function("response/anthropic->openai", |b| {
        b.iter(|| messages_to_chat_response(black_box(&msg), "smart", 1, false).unwrap())
    });
    let converse = converse_response();
    c.bench_function("response/bedrock->openai", |b| {
        b.iter(|| converse_to_chat_response(black_box(&converse), "id", "smart", 1, false).unwrap())
    });
    let gemini = gemini_response();
    c.bench_function("response/gemini->openai", |b| {
        b.iter(|| gemini_to_chat_response(black_box(&gemini), "smart", 1, "n").unwrap())
    });
    let completion = chat_completion();
    c.bench_function("response/openai->anthropic", |b| {
        b.iter(|| chat_to_messages_response(black_box(&completion), "smart").unwrap())
    });
}

fn streams(c: &mut Criterion) {
    let events = anthropic_events();
    c.bench_function("stream100/anthropic->openai", |b| {
        b.iter(|| {
            let mut s = MessagesToChatStream::new("smart", 1, true, false);
            let mut out = Vec::new();
            for e in &events {
                s.push(black_box(e), &mut out).unwrap();
            }
            out
        })
    });
    let chunks = openai_chunks();
    // The baseline: what the gateway does to each chunk when nothing is translated (OpenAI to
    // OpenAI: the model renamed, usage read). Translation costs are on top of nothing else,
    // but this says how they compare with the work every stream already pays.
    c.bench_function("stream100/openai->openai (pass-through)", |b| {
        b.iter(|| {
            let mut n = 0;
            for e in &chunks {
                if let ReadReply::Object {
                    model: Some(span), ..
                } = read_reply(black_box(e))
                {
                    n += switchyard_types::json::splice_string(e, span, "smart").len();
                }
            }
            n
        })
    });
    c.bench_function("stream100/openai->anthropic", |b| {
        b.iter(|| {
            let mut s = ChatToMessagesStream::new("smart");
            let mut out = Vec::new();
            for e in &chunks {
                s.push(black_box(e), &mut out).unwrap();
            }
            out
        })
    });
}

fn gemini_stream(c: &mut Criterion) {
    let events = gemini_events();
    c.bench_function("stream100/gemini->openai", |b| {
        b.iter(|| {
            let mut s = GeminiToChatStream::new("smart", 1, true, 1, "n");
            let mut out = Vec::new();
            for e in &events {
                s.push(black_box(e), &mut out).unwrap();
            }
            out
        })
    });
}

fn bedrock_stream(c: &mut Criterion) {
    let frames = converse_stream();
    // Decoding (both CRCs) is part of the cost: the relay hands the adapter raw messages.
    c.bench_function("stream100/bedrock->openai", |b| {
        b.iter(|| {
            let mut s = ConverseToChatStream::new("id", "smart", 1, true, false);
            let mut out = Vec::new();
            for f in &frames {
                let msg = decode(black_box(f)).unwrap();
                s.push(&msg, &mut out).unwrap();
            }
            out
        })
    });
}

criterion_group!(
    benches,
    requests,
    responses,
    streams,
    gemini_stream,
    bedrock_stream
);
criterion_main!(benches);
