//! Property-style round trips: random OpenAI requests go to Gemini and are read back, random
//! Gemini answers come to OpenAI and are read back, and in both directions the meaning
//! (messages, tool calls and results, tools, parameters, text, usage) must survive. Random
//! bytes and mutated documents must never make a translator panic.
//!
//! The generator is a small seeded PRNG, so every failure names a seed that reproduces it.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::request::chat_to_gemini;
use super::response::gemini_to_chat_response;
use super::stream::GeminiToChatStream;
use crate::test_rng::Rng;

/// Words and texts for generated requests, awkward characters included.
trait Words {
    fn word(&mut self) -> String;
    fn text(&mut self) -> String;
}

impl Words for Rng {
    fn word(&mut self) -> String {
        const WORDS: [&str; 12] = [
            "river",
            "bridge",
            "quiet",
            "ünïcode",
            "emoji 🚀",
            "tab\there",
            "line\nbreak",
            "quote\"d",
            "back\\slash",
            "plain",
            "x",
            "   spaced  ",
        ];
        WORDS[self.below(WORDS.len() as u64) as usize].to_owned()
    }
    fn text(&mut self) -> String {
        let n = 1 + self.below(4);
        (0..n).map(|_| self.word()).collect::<Vec<_>>().join(" ")
    }
}

const TOOL_NAMES: [&str; 3] = ["get_weather", "lookup", "now"];

fn random_args(rng: &mut Rng) -> Value {
    let mut o = Map::new();
    for key in ["city", "days", "exact", "tags"] {
        if rng.chance(50) {
            let v = match key {
                "city" => json!(rng.text()),
                "days" => json!(rng.below(10)),
                "exact" => json!(rng.chance(50)),
                _ => json!([rng.word(), rng.word()]),
            };
            o.insert(key.to_owned(), v);
        }
    }
    Value::Object(o)
}

fn random_tool(name: &str, rng: &mut Rng) -> Value {
    let mut f = json!({"name": name});
    if rng.chance(60) {
        f["description"] = json!(rng.text());
    }
    if name != "now" {
        f["parameters"] = json!({"type": "object", "properties": {
            "city": {"type": "string", "description": "a city"},
            "days": {"type": "integer"},
            "exact": {"type": "boolean"},
            "tags": {"type": "array", "items": {"type": "string"}}
        }, "required": ["city"]});
    }
    json!({"type": "function", "function": f})
}

/// A random OpenAI chat request whose tool results always answer earlier calls.
fn random_request(rng: &mut Rng) -> Value {
    let mut messages = Vec::new();
    if rng.chance(60) {
        messages.push(json!({"role": "system", "content": rng.text()}));
    }
    let mut call_no = 0;
    let turns = 1 + rng.below(5);
    for _ in 0..turns {
        // A user message.
        let mut parts = vec![json!({"type": "text", "text": rng.text()})];
        if rng.chance(25) {
            parts.push(json!({"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}));
        }
        if rng.chance(50) && parts.len() == 1 {
            messages.push(json!({"role": "user", "content": parts[0]["text"]}));
        } else {
            messages.push(json!({"role": "user", "content": parts}));
        }
        // An assistant answer, maybe with tool calls and their results.
        if rng.chance(70) {
            let mut m = json!({"role": "assistant", "content": null});
            if rng.chance(60) {
                m["content"] = json!(rng.text());
            }
            let calls = if rng.chance(50) { rng.below(3) } else { 0 };
            let mut ids = Vec::new();
            if calls > 0 {
                let mut tc = Vec::new();
                for _ in 0..calls {
                    call_no += 1;
                    let id = format!("call_{call_no}");
                    let name = TOOL_NAMES[rng.below(3) as usize];
                    let args = random_args(rng);
                    tc.push(json!({"id": id, "type": "function",
                        "function": {"name": name, "arguments": args.to_string()}}));
                    ids.push(id);
                }
                m["tool_calls"] = Value::Array(tc);
            }
            if m["content"].is_null() && ids.is_empty() {
                m["content"] = json!(rng.text());
            }
            messages.push(m);
            for id in ids {
                let content = if rng.chance(50) {
                    json!({"result": rng.text(), "n": rng.below(100)}).to_string()
                } else {
                    rng.text()
                };
                messages.push(json!({"role": "tool", "tool_call_id": id, "content": content}));
            }
        }
    }
    let mut req = json!({"model": "g", "messages": messages});
    if rng.chance(50) {
        let tools: Vec<Value> = TOOL_NAMES.iter().map(|n| random_tool(n, rng)).collect();
        req["tools"] = Value::Array(tools);
        match rng.below(5) {
            0 => req["tool_choice"] = json!("auto"),
            1 => req["tool_choice"] = json!("required"),
            2 => req["tool_choice"] = json!("none"),
            3 => req["tool_choice"] = json!({"type": "function", "function": {"name": "lookup"}}),
            _ => {}
        }
    }
    let params: [(&str, Value); 8] = [
        ("temperature", json!(rng.below(20) as f64 / 10.0)),
        ("top_p", json!(rng.below(10) as f64 / 10.0)),
        ("max_tokens", json!(1 + rng.below(4000))),
        ("seed", json!(rng.below(1000))),
        ("n", json!(1 + rng.below(3))),
        ("presence_penalty", json!(rng.below(10) as f64 / 10.0)),
        ("frequency_penalty", json!(rng.below(10) as f64 / 10.0)),
        ("stop", json!([rng.word(), rng.word()])),
    ];
    for (k, v) in params {
        if rng.chance(40) {
            req[k] = v;
        }
    }
    req
}

#[derive(Debug, Clone, PartialEq)]
enum Item {
    Text(String),
    Image(String),
    Call(String, Value),
    Result(String, Value),
}

/// What a conversation means, independent of either wire format.
#[derive(Debug, PartialEq)]
struct Meaning {
    system: Vec<String>,
    turns: Vec<(&'static str, Vec<Item>)>,
    tools: Vec<(String, Option<String>, Vec<String>)>,
    choice: Option<String>,
    params: BTreeMap<&'static str, Value>,
}

fn push_turn(turns: &mut Vec<(&'static str, Vec<Item>)>, role: &'static str, items: Vec<Item>) {
    if items.is_empty() {
        return;
    }
    match turns.last_mut() {
        Some((r, v)) if *r == role => v.extend(items),
        _ => turns.push((role, items)),
    }
}

/// Tool results first within each user turn, as Gemini wants them.
fn results_first(turns: &mut [(&'static str, Vec<Item>)]) {
    for (_, items) in turns.iter_mut() {
        let (mut results, rest): (Vec<Item>, Vec<Item>) = std::mem::take(items)
            .into_iter()
            .partition(|i| matches!(i, Item::Result(..)));
        results.extend(rest);
        *items = results;
    }
}

fn openai_meaning(req: &Value) -> Meaning {
    let mut system = Vec::new();
    let mut turns = Vec::new();
    let mut names: BTreeMap<String, String> = BTreeMap::new();
    for m in req["messages"].as_array().unwrap() {
        match m["role"].as_str().unwrap() {
            "system" => system.push(m["content"].as_str().unwrap().to_owned()),
            "user" => {
                let items = match &m["content"] {
                    Value::String(s) => vec![Item::Text(s.clone())],
                    Value::Array(parts) => parts
                        .iter()
                        .map(|p| match p["type"].as_str().unwrap() {
                            "text" => Item::Text(p["text"].as_str().unwrap().to_owned()),
                            _ => Item::Image(p["image_url"]["url"].as_str().unwrap().to_owned()),
                        })
                        .collect(),
                    _ => Vec::new(),
                };
                push_turn(&mut turns, "user", items);
            }
            "assistant" => {
                let mut items = Vec::new();
                if let Some(t) = m["content"].as_str() {
                    items.push(Item::Text(t.to_owned()));
                }
                for c in m["tool_calls"].as_array().into_iter().flatten() {
                    let name = c["function"]["name"].as_str().unwrap().to_owned();
                    names.insert(c["id"].as_str().unwrap().to_owned(), name.clone());
                    let args: Value =
                        serde_json::from_str(c["function"]["arguments"].as_str().unwrap()).unwrap();
                    items.push(Item::Call(name, args));
                }
                push_turn(&mut turns, "model", items);
            }
            "tool" => {
                let name = names[m["tool_call_id"].as_str().unwrap()].clone();
                let text = m["content"].as_str().unwrap();
                let response = match serde_json::from_str::<Value>(text) {
                    Ok(v @ Value::Object(_)) => v,
                    _ => json!({"output": text}),
                };
                push_turn(&mut turns, "user", vec![Item::Result(name, response)]);
            }
            other => panic!("unexpected role {other}"),
        }
    }
    results_first(&mut turns);
    let tools = req["tools"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| {
            let f = &t["function"];
            let params = f["parameters"]["properties"]
                .as_object()
                .map(|p| p.keys().cloned().collect())
                .unwrap_or_default();
            (
                f["name"].as_str().unwrap().to_owned(),
                f["description"].as_str().map(str::to_owned),
                params,
            )
        })
        .collect::<Vec<_>>();
    let choice = if tools.is_empty() {
        None
    } else {
        match &req["tool_choice"] {
            Value::String(s) => Some(s.clone()),
            Value::Object(o) => Some(format!("fn:{}", o["function"]["name"].as_str().unwrap())),
            _ => None,
        }
    };
    let mut params = BTreeMap::new();
    for k in [
        "temperature",
        "top_p",
        "max_tokens",
        "seed",
        "presence_penalty",
        "frequency_penalty",
        "stop",
    ] {
        if let Some(v) = req.get(k) {
            params.insert(k, v.clone());
        }
    }
    if let Some(n) = req.get("n").filter(|n| n.as_u64() != Some(1)) {
        params.insert("n", n.clone());
    }
    Meaning {
        system,
        turns,
        tools,
        choice,
        params,
    }
}

fn gemini_meaning(body: &Value) -> Meaning {
    let system = body["systemInstruction"]["parts"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| p["text"].as_str().unwrap().to_owned())
        .collect();
    let mut turns = Vec::new();
    for c in body["contents"].as_array().unwrap() {
        let role = match c["role"].as_str().unwrap() {
            "user" => "user",
            "model" => "model",
            other => panic!("bad role {other}"),
        };
        let items = c["parts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                if let Some(t) = p["text"].as_str() {
                    Item::Text(t.to_owned())
                } else if let Some(d) = p.get("inlineData") {
                    Item::Image(format!(
                        "data:{};base64,{}",
                        d["mimeType"].as_str().unwrap(),
                        d["data"].as_str().unwrap()
                    ))
                } else if let Some(f) = p.get("functionCall") {
                    Item::Call(f["name"].as_str().unwrap().to_owned(), f["args"].clone())
                } else if let Some(f) = p.get("functionResponse") {
                    Item::Result(
                        f["name"].as_str().unwrap().to_owned(),
                        f["response"].clone(),
                    )
                } else {
                    panic!("unexpected part {p}")
                }
            })
            .collect();
        turns.push((role, items));
    }
    let tools = body["tools"][0]["functionDeclarations"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| {
            let params = d["parameters"]["properties"]
                .as_object()
                .map(|p| p.keys().cloned().collect())
                .unwrap_or_default();
            (
                d["name"].as_str().unwrap().to_owned(),
                d["description"].as_str().map(str::to_owned),
                params,
            )
        })
        .collect::<Vec<_>>();
    let config = &body["toolConfig"]["functionCallingConfig"];
    let choice = match config["mode"].as_str() {
        None => None,
        Some("AUTO") => Some("auto".to_owned()),
        Some("NONE") => Some("none".to_owned()),
        Some("ANY") => match config["allowedFunctionNames"].as_array() {
            Some(names) => Some(format!("fn:{}", names[0].as_str().unwrap())),
            None => Some("required".to_owned()),
        },
        Some(other) => panic!("bad mode {other}"),
    };
    let g = &body["generationConfig"];
    let mut params = BTreeMap::new();
    for (from, to) in [
        ("temperature", "temperature"),
        ("topP", "top_p"),
        ("maxOutputTokens", "max_tokens"),
        ("seed", "seed"),
        ("presencePenalty", "presence_penalty"),
        ("frequencyPenalty", "frequency_penalty"),
        ("stopSequences", "stop"),
        ("candidateCount", "n"),
    ] {
        if let Some(v) = g.get(from) {
            params.insert(to, v.clone());
        }
    }
    Meaning {
        system,
        turns,
        tools,
        choice,
        params,
    }
}

#[test]
fn openai_requests_keep_their_meaning_through_gemini() {
    for seed in 0..500 {
        let mut rng = Rng(seed);
        let req = random_request(&mut rng);
        let t = chat_to_gemini(&serde_json::to_vec(&req).unwrap())
            .unwrap_or_else(|e| panic!("seed {seed}: {e}\n{req}"));
        let body: Value = serde_json::from_slice(&t.body).unwrap();
        assert_eq!(
            gemini_meaning(&body),
            openai_meaning(&req),
            "seed {seed}\nrequest: {req}\ngemini: {body}"
        );
        assert_eq!(u64::from(t.candidates), req["n"].as_u64().unwrap_or(1));
    }
}

/// What one candidate says: its text, its function calls, its finish reason.
type Truth = (String, Vec<(String, Value)>, &'static str);

/// A random Gemini answer: text pieces and function calls per candidate, with a finish reason.
fn random_answer(rng: &mut Rng) -> (Vec<Truth>, Value) {
    let n = 1 + rng.below(2);
    let mut truth = Vec::new();
    let mut candidates = Vec::new();
    for i in 0..n {
        let mut parts = Vec::new();
        let mut text = String::new();
        for _ in 0..rng.below(4) {
            let piece = rng.text();
            text.push_str(&piece);
            parts.push(json!({ "text": piece }));
        }
        let mut calls = Vec::new();
        for _ in 0..rng.below(3) {
            let name = TOOL_NAMES[rng.below(3) as usize].to_owned();
            let args = random_args(rng);
            parts.push(json!({"functionCall": {"name": name, "args": args}}));
            calls.push((name, args));
        }
        let reason = ["STOP", "MAX_TOKENS", "SAFETY", "OTHER"][rng.below(4) as usize];
        candidates.push(json!({
            "content": {"parts": parts, "role": "model"},
            "finishReason": reason,
            "index": i
        }));
        truth.push((text, calls, reason));
    }
    let usage = json!({
        "promptTokenCount": rng.below(1000),
        "candidatesTokenCount": rng.below(1000),
        "thoughtsTokenCount": rng.below(100),
        "cachedContentTokenCount": rng.below(10)
    });
    let resp = json!({"candidates": candidates, "usageMetadata": usage, "responseId": "rid"});
    (truth, resp)
}

fn expected_finish(reason: &str, has_calls: bool) -> &'static str {
    super::finish_reason(reason, has_calls)
}

#[test]
fn gemini_answers_keep_their_meaning_in_openai_form_streamed_or_not() {
    for seed in 0..300 {
        let mut rng = Rng(seed ^ 0xabcd);
        let (truth, resp) = random_answer(&mut rng);
        let (body, usage) =
            gemini_to_chat_response(&serde_json::to_vec(&resp).unwrap(), "m", 1, "n").unwrap();
        let v: Value = serde_json::from_slice(&body).unwrap();
        let um = &resp["usageMetadata"];
        let num = |k: &str| um[k].as_u64().unwrap();
        assert_eq!(usage.prompt_tokens, num("promptTokenCount"), "seed {seed}");
        assert_eq!(
            usage.completion_tokens,
            num("candidatesTokenCount") + num("thoughtsTokenCount")
        );
        assert_eq!(usage.cached_tokens, num("cachedContentTokenCount"));

        // Stream the same answer one part per event, the finish reason on the last one.
        let mut events = Vec::new();
        for (i, cand) in resp["candidates"].as_array().unwrap().iter().enumerate() {
            let parts = cand["content"]["parts"].as_array().unwrap();
            for p in parts {
                events.push(json!({"candidates": [{"content": {"parts": [p], "role": "model"}, "index": i}], "responseId": "rid"}));
            }
            events.push(json!({"candidates": [{"content": {"parts": [], "role": "model"}, "finishReason": cand["finishReason"], "index": i}],
                "usageMetadata": resp["usageMetadata"], "responseId": "rid"}));
        }
        let mut s = GeminiToChatStream::new("m", 1, true, truth.len() as u32, "n");
        let mut chunks = Vec::new();
        let mut done = false;
        for e in &events {
            let mut out = Vec::new();
            let step = s.push(&serde_json::to_vec(e).unwrap(), &mut out).unwrap();
            chunks.extend(
                out.iter()
                    .map(|c| serde_json::from_slice::<Value>(c).unwrap()),
            );
            done = step == super::stream::StreamStep::Done;
        }
        assert!(done, "seed {seed}: stream did not finish");
        assert_eq!(s.usage(), Some(usage));

        for (i, (text, calls, reason)) in truth.iter().enumerate() {
            let choice = &v["choices"][i];
            let filtered = super::is_content_filter(reason);
            let whole_text = choice["message"]["content"].as_str().unwrap_or("");
            assert_eq!(whole_text, text, "seed {seed}");
            let whole_calls: Vec<(String, Value)> = choice["message"]["tool_calls"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| {
                    (
                        c["function"]["name"].as_str().unwrap().to_owned(),
                        serde_json::from_str(c["function"]["arguments"].as_str().unwrap()).unwrap(),
                    )
                })
                .collect();
            assert_eq!(&whole_calls, calls, "seed {seed}");
            assert_eq!(
                choice["finish_reason"],
                expected_finish(reason, !calls.is_empty())
            );
            if filtered && text.is_empty() && calls.is_empty() {
                assert!(choice["message"]["refusal"].is_string());
            }

            // The stream says the same.
            let mine = chunks.iter().filter(|c| c["choices"][0]["index"] == i);
            let mut streamed_text = String::new();
            let mut streamed_calls: Vec<(String, String)> = Vec::new();
            let mut finish = None;
            for c in mine {
                let d = &c["choices"][0]["delta"];
                streamed_text.push_str(d["content"].as_str().unwrap_or(""));
                for tc in d["tool_calls"].as_array().into_iter().flatten() {
                    let k = tc["index"].as_u64().unwrap() as usize;
                    if streamed_calls.len() <= k {
                        streamed_calls.push(Default::default());
                    }
                    if let Some(n) = tc["function"]["name"].as_str() {
                        streamed_calls[k].0 = n.to_owned();
                    }
                    streamed_calls[k]
                        .1
                        .push_str(tc["function"]["arguments"].as_str().unwrap());
                }
                if let Some(f) = c["choices"][0]["finish_reason"].as_str() {
                    finish = Some(f.to_owned());
                }
            }
            assert_eq!(&streamed_text, text, "seed {seed}");
            let streamed_calls: Vec<(String, Value)> = streamed_calls
                .into_iter()
                .map(|(n, a)| (n, serde_json::from_str(&a).unwrap()))
                .collect();
            assert_eq!(&streamed_calls, calls, "seed {seed}");
            assert_eq!(
                finish.as_deref(),
                Some(expected_finish(reason, !calls.is_empty()))
            );
        }
    }
}

#[test]
fn arbitrary_bytes_never_panic() {
    let seeds: Vec<Vec<u8>> = vec![
        serde_json::to_vec(&random_answer(&mut Rng(1)).1).unwrap(),
        serde_json::to_vec(&random_request(&mut Rng(2))).unwrap(),
        br#"{"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "message": "x", "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1e308s"}]}}"#.to_vec(),
        br#"{"promptFeedback": {"blockReason": "SAFETY", "safetyRatings": 5}}"#.to_vec(),
    ];
    let mut rng = Rng(99);
    for seed in &seeds {
        for _ in 0..400 {
            let mut doc = seed.clone();
            for _ in 0..1 + rng.below(4) {
                if doc.is_empty() {
                    break;
                }
                let at = rng.below(doc.len() as u64) as usize;
                match rng.below(3) {
                    0 => doc[at] = rng.below(256) as u8,
                    1 => {
                        doc.remove(at);
                    }
                    _ => doc.truncate(at),
                }
            }
            let _ = gemini_to_chat_response(&doc, "m", 0, "n");
            let _ = super::response::gemini_to_embeddings_response(&doc, "m", true);
            let _ = super::response::parse_error(&doc);
            let _ = chat_to_gemini(&doc);
            let _ = super::request::embeddings_to_gemini(&doc, "m", true);
            let mut s = GeminiToChatStream::new("m", 0, true, 2, "n");
            let _ = s.push(&doc, &mut Vec::new());
        }
    }
}
