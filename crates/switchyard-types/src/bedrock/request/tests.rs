use serde_json::json;

use super::*;

fn translate(req: Value) -> ChatToConverse {
    chat_to_converse(&serde_json::to_vec(&req).unwrap())
        .unwrap_or_else(|e| panic!("translation failed: {e}"))
}

fn body(req: Value) -> Value {
    serde_json::from_slice(&translate(req).body).unwrap()
}

fn error(req: Value) -> TranslateError {
    match chat_to_converse(&serde_json::to_vec(&req).unwrap()) {
        Ok(t) => panic!(
            "expected an error, got {}",
            String::from_utf8_lossy(&t.body)
        ),
        Err(e) => e,
    }
}

#[test]
fn golden_full_request() {
    let req = json!({
        "model": "smart",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": [
                {"type": "text", "text": "What is in this picture?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "high"}},
                {"type": "file", "file": {"filename": "Q3 report.pdf", "file_data": "data:application/pdf;base64,JVBERi0="}}
            ]},
            {"role": "assistant", "content": "Let me look.", "tool_calls": [
                {"id": "tooluse_abc", "type": "function", "function": {"name": "lookup", "arguments": "{\"q\":\"cats\"}"}}
            ]},
            {"role": "tool", "tool_call_id": "tooluse_abc", "content": "Cats are mammals."},
            {"role": "developer", "content": [{"type": "text", "text": "Cite sources."}]},
            {"role": "user", "content": "Thanks, summarise."}
        ],
        "max_completion_tokens": 512,
        "temperature": 0.3,
        "top_p": 0.9,
        "stop": ["END"],
        "seed": 7,
        "user": "u-1",
        "tools": [{"type": "function", "function": {"name": "lookup", "description": "Search.", "parameters": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}}}],
        "tool_choice": "auto",
        "stream": true,
        "stream_options": {"include_usage": true}
    });
    let t = translate(req);
    assert!(t.stream && t.include_usage && !t.json_tool);
    let got: Value = serde_json::from_slice(&t.body).unwrap();
    assert_eq!(
        got,
        json!({
            "messages": [
                {"role": "user", "content": [
                    {"text": "What is in this picture?"},
                    {"image": {"format": "png", "source": {"bytes": "iVBORw0KGgo="}}},
                    {"document": {"format": "pdf", "name": "Q3 report", "source": {"bytes": "JVBERi0="}}}
                ]},
                {"role": "assistant", "content": [
                    {"text": "Let me look."},
                    {"toolUse": {"toolUseId": "tooluse_abc", "name": "lookup", "input": {"q": "cats"}}}
                ]},
                {"role": "user", "content": [
                    {"toolResult": {"toolUseId": "tooluse_abc", "content": [{"text": "Cats are mammals."}]}},
                    {"text": "Thanks, summarise."}
                ]}
            ],
            "system": [{"text": "Be brief."}, {"text": "Cite sources."}],
            "inferenceConfig": {"maxTokens": 512, "temperature": 0.3, "topP": 0.9, "stopSequences": ["END"]},
            "toolConfig": {
                "tools": [{"toolSpec": {"name": "lookup", "description": "Search.", "inputSchema": {"json": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}}}}],
                "toolChoice": {"auto": {}}
            }
        })
    );
}

#[test]
fn minimal_request_has_no_optional_sections() {
    let got = body(json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}));
    assert_eq!(
        got,
        json!({"messages": [{"role": "user", "content": [{"text": "hi"}]}]})
    );
    let t = translate(json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}));
    assert!(!t.stream && !t.include_usage);
}

#[test]
fn tool_choices_map_to_converse() {
    let tools = json!([{"type": "function", "function": {"name": "f"}}]);
    let choice = |c: Value| {
        body(
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "tools": tools, "tool_choice": c}),
        )
    };
    assert_eq!(
        choice(json!("required"))["toolConfig"]["toolChoice"],
        json!({"any": {}})
    );
    assert_eq!(
        choice(json!({"type": "function", "function": {"name": "f"}}))["toolConfig"]["toolChoice"],
        json!({"tool": {"name": "f"}})
    );
    // A tool without parameters gets an empty object schema.
    assert_eq!(
        choice(json!("auto"))["toolConfig"]["tools"][0]["toolSpec"]["inputSchema"],
        json!({"json": {"type": "object", "properties": {}}})
    );
    // `none`: tools are not declared, so they cannot be called.
    assert!(choice(json!("none")).get("toolConfig").is_none());
    // ... unless the conversation needs them declared.
    let e = error(
        json!({"model": "m", "tools": tools, "tool_choice": "none", "messages": [
            {"role": "user", "content": "x"},
            {"role": "assistant", "tool_calls": [{"id": "1", "type": "function", "function": {"name": "f", "arguments": ""}}]},
            {"role": "tool", "tool_call_id": "1", "content": "r"}
        ]}),
    );
    assert_eq!(e.param.as_deref(), Some("tool_choice"));
    // No choice given: no toolChoice, Bedrock's default (auto) applies.
    let got =
        body(json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "tools": tools}));
    assert!(got["toolConfig"].get("toolChoice").is_none());
}

#[test]
fn json_schema_response_format_is_a_forced_tool() {
    let schema = json!({"type": "object", "properties": {"name": {"type": "string"}}});
    let t = translate(
        json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "p", "schema": schema}}}),
    );
    assert!(t.json_tool);
    let got: Value = serde_json::from_slice(&t.body).unwrap();
    assert_eq!(
        got["toolConfig"]["tools"][0]["toolSpec"]["name"],
        JSON_TOOL_NAME
    );
    assert_eq!(
        got["toolConfig"]["tools"][0]["toolSpec"]["inputSchema"]["json"],
        schema
    );
    assert_eq!(
        got["toolConfig"]["toolChoice"],
        json!({"tool": {"name": JSON_TOOL_NAME}})
    );

    // With the client's own tools and `auto`, some tool must be called.
    let t = translate(
        json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
        "tools": [{"type": "function", "function": {"name": "f"}}],
        "response_format": {"type": "json_object"}}),
    );
    let got: Value = serde_json::from_slice(&t.body).unwrap();
    assert!(t.json_tool);
    assert_eq!(got["toolConfig"]["toolChoice"], json!({"any": {}}));
    assert_eq!(got["toolConfig"]["tools"].as_array().unwrap().len(), 2);

    // A forced client tool wins: no JSON tool.
    let t = translate(
        json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
        "tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": "required",
        "response_format": {"type": "json_object"}}),
    );
    assert!(!t.json_tool);

    // The reserved name cannot be a client tool.
    let e = error(
        json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
        "tools": [{"type": "function", "function": {"name": JSON_TOOL_NAME}}],
        "response_format": {"type": "json_object"}}),
    );
    assert_eq!(e.param.as_deref(), Some("tools[0].function.name"));
    // `text` asks for nothing.
    assert!(
        !translate(
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
        "response_format": {"type": "text"}})
        )
        .json_tool
    );
}

#[test]
fn provider_options_are_merged_into_the_converse_body() {
    let got = body(json!({
        "model": "m",
        "messages": [{"role": "user", "content": "x"}],
        "max_tokens": 10,
        "provider_options": {
            "bedrock": {
                "additionalModelRequestFields": {"top_k": 40},
                "guardrailConfig": {"guardrailIdentifier": "gr-1", "guardrailVersion": "1"},
                "performanceConfig": {"latency": "optimized"},
                "inferenceConfig": {"maxTokens": 99}
            },
            "anthropic": {"top_k": 1}
        }
    }));
    assert_eq!(got["additionalModelRequestFields"], json!({"top_k": 40}));
    assert_eq!(got["guardrailConfig"]["guardrailIdentifier"], "gr-1");
    assert_eq!(got["performanceConfig"], json!({"latency": "optimized"}));
    assert_eq!(got["inferenceConfig"]["maxTokens"], 99);
    assert!(got.get("provider_options").is_none());
    let e = error(
        json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
        "provider_options": {"bedrok": {}}}),
    );
    assert_eq!(e.param.as_deref(), Some("provider_options.bedrok"));
}

#[test]
fn what_bedrock_cannot_do_is_rejected_naming_the_field() {
    let base = |extra: Value| {
        let mut req = json!({"model": "m", "messages": [{"role": "user", "content": "x"}]});
        for (k, v) in extra.as_object().unwrap() {
            req[k] = v.clone();
        }
        req
    };
    for (extra, param) in [
        (json!({"n": 2}), "n"),
        (json!({"logprobs": true}), "logprobs"),
        (json!({"top_logprobs": 3}), "top_logprobs"),
        (json!({"modalities": ["text", "audio"]}), "modalities"),
        (json!({"audio": {"voice": "x"}}), "audio"),
        (json!({"functions": []}), "functions"),
        (json!({"web_search_options": {}}), "web_search_options"),
        (json!({"max_tokens": 0}), "max_tokens"),
        (json!({"stop": [1]}), "stop[0]"),
        (
            json!({"tools": [{"type": "custom", "custom": {}}]}),
            "tools[0].type",
        ),
        (
            json!({"tool_choice": {"type": "allowed_tools"}}),
            "tool_choice.type",
        ),
    ] {
        let e = error(base(extra.clone()));
        assert_eq!(e.param.as_deref(), Some(param), "{extra}: {e}");
    }
    let url = error(
        json!({"model": "m", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]}]}),
    );
    assert_eq!(
        url.param.as_deref(),
        Some("messages[0].content[0].image_url.url")
    );
    assert!(url.message.contains("cannot fetch"), "{url}");
    let svg = error(
        json!({"model": "m", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "data:image/svg+xml;base64,PHN2Zz4="}}]}]}),
    );
    assert!(svg.message.contains("image/svg+xml"), "{svg}");
    let audio = error(
        json!({"model": "m", "messages": [{"role": "user", "content": [
        {"type": "input_audio", "input_audio": {"data": "", "format": "wav"}}]}]}),
    );
    assert_eq!(audio.param.as_deref(), Some("messages[0].content[0]"));
    let file_id = error(
        json!({"model": "m", "messages": [{"role": "user", "content": [
        {"type": "file", "file": {"file_id": "file-1"}}]}]}),
    );
    assert_eq!(
        file_id.param.as_deref(),
        Some("messages[0].content[0].file.file_id")
    );
    let role = error(json!({"model": "m", "messages": [{"role": "nobody", "content": "x"}]}));
    assert_eq!(role.param.as_deref(), Some("messages[0].role"));
    let args = error(
        json!({"model": "m", "messages": [{"role": "assistant", "tool_calls": [
        {"id": "1", "type": "function", "function": {"name": "f", "arguments": "[1]"}}]}]}),
    );
    assert_eq!(
        args.param.as_deref(),
        Some("messages[0].tool_calls[0].function.arguments")
    );
    let empty = error(json!({"model": "m", "messages": [{"role": "system", "content": "s"}]}));
    assert_eq!(empty.param.as_deref(), Some("messages"));
    assert!(chat_to_converse(b"[1]").is_err());
    assert!(chat_to_converse(b"{").is_err());
}

#[test]
fn hints_without_an_equivalent_are_dropped() {
    let got = body(
        json!({"model": "m", "messages": [{"role": "user", "content": "x", "name": "bob"}],
        "seed": 1, "presence_penalty": 0.1, "frequency_penalty": 0.1, "logit_bias": {}, "user": "u",
        "parallel_tool_calls": false, "reasoning_effort": "low", "store": true, "metadata": {"a": "b"}}),
    );
    assert_eq!(
        got,
        json!({"messages": [{"role": "user", "content": [{"text": "x"}]}]})
    );
}

#[test]
fn turns_alternate_and_tool_results_lead_their_turn() {
    let got = body(json!({"model": "m", "messages": [
        {"role": "user", "content": "a"},
        {"role": "user", "content": "b"},
        {"role": "assistant", "content": null, "tool_calls": [
            {"id": "t1", "type": "function", "function": {"name": "f", "arguments": ""}},
            {"id": "t2", "type": "function", "function": {"name": "g", "arguments": "{}"}}
        ]},
        {"role": "tool", "tool_call_id": "t1", "content": [{"type": "text", "text": "one"}]},
        {"role": "user", "content": "and?"},
        {"role": "tool", "tool_call_id": "t2", "content": ""},
        {"role": "assistant", "content": [{"type": "refusal", "refusal": "no"}]}
    ]}));
    let messages = got["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 4);
    assert_eq!(
        messages[0]["content"],
        json!([{"text": "a"}, {"text": "b"}])
    );
    assert_eq!(messages[1]["content"][0]["toolUse"]["input"], json!({}));
    assert_eq!(
        messages[2]["content"],
        json!([
            {"toolResult": {"toolUseId": "t1", "content": [{"text": "one"}]}},
            {"toolResult": {"toolUseId": "t2", "content": []}},
            {"text": "and?"}
        ])
    );
    assert_eq!(messages[3]["content"], json!([{"text": "no"}]));
}

#[test]
fn document_names_follow_bedrocks_rules() {
    assert_eq!(document_name("Q3 report.pdf"), "Q3 report");
    assert_eq!(document_name("a_b.c  d.PDF"), "a-b-c d");
    assert_eq!(document_name("(draft) [v2]"), "(draft) [v2]");
    assert_eq!(document_name("   "), "");
    let got = body(
        json!({"model": "m", "messages": [{"role": "user", "content": [
        {"type": "file", "file": {"file_data": "data:application/pdf;base64,QQ=="}}]}]}),
    );
    assert_eq!(
        got["messages"][0]["content"][0]["document"]["name"],
        "document 1"
    );
}

// === property: OpenAI → Converse keeps the conversation's meaning ===

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// What a conversation says, in neither format: system text, then turns of
/// (role, items) where an item is text, a call (id, name, arguments) or a result (id, text).
#[derive(Debug, PartialEq)]
enum Item {
    Text(String),
    Call(String, String, Value),
    Result(String, String),
}

/// Reads a Converse body back into items, merging nothing: the test compares after the
/// expected merging.
fn converse_items(body: &Value) -> (Vec<String>, Vec<(String, Vec<Item>)>) {
    let system = body["system"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|b| b["text"].as_str().unwrap().to_owned())
        .collect();
    let turns = body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let items = m["content"]
                .as_array()
                .unwrap()
                .iter()
                .map(|b| {
                    if let Some(t) = b["text"].as_str() {
                        Item::Text(t.to_owned())
                    } else if let Some(u) = b.get("toolUse") {
                        Item::Call(
                            u["toolUseId"].as_str().unwrap().to_owned(),
                            u["name"].as_str().unwrap().to_owned(),
                            u["input"].clone(),
                        )
                    } else {
                        let r = &b["toolResult"];
                        Item::Result(
                            r["toolUseId"].as_str().unwrap().to_owned(),
                            r["content"][0]["text"].as_str().unwrap_or("").to_owned(),
                        )
                    }
                })
                .collect();
            (m["role"].as_str().unwrap().to_owned(), items)
        })
        .collect();
    (system, turns)
}

#[test]
fn random_conversations_keep_their_meaning() {
    let mut rng = Rng(0x1234_5678_9abc_def1);
    for round in 0..300 {
        let mut messages = Vec::new();
        let mut system = Vec::new();
        // Expected turns after merging: (role, items), tool results first in user turns.
        let mut expected: Vec<(String, Vec<Item>)> = Vec::new();
        let push = |role: &str, item: Item, expected: &mut Vec<(String, Vec<Item>)>| match expected
            .last_mut()
        {
            Some((r, items)) if r == role => items.push(item),
            _ => expected.push((role.to_owned(), vec![item])),
        };
        let mut pending_calls: Vec<String> = Vec::new();
        for i in 0..1 + rng.below(8) {
            let text = format!("m{round}-{i} \"quoted\" é");
            match rng.below(5) {
                0 => {
                    messages.push(json!({"role": "system", "content": text}));
                    system.push(text);
                }
                1 => {
                    messages.push(json!({"role": "user", "content": text}));
                    push("user", Item::Text(text), &mut expected);
                }
                2 => {
                    let id = format!("call_{round}_{i}");
                    let args = json!({"n": rng.below(10), "s": text});
                    messages.push(json!({"role": "assistant", "content": text, "tool_calls": [
                        {"id": id, "type": "function", "function": {"name": "f", "arguments": args.to_string()}}]}));
                    push("assistant", Item::Text(text), &mut expected);
                    push(
                        "assistant",
                        Item::Call(id.clone(), "f".into(), args),
                        &mut expected,
                    );
                    pending_calls.push(id);
                }
                3 => {
                    if let Some(id) = pending_calls.pop() {
                        messages.push(json!({"role": "tool", "tool_call_id": id, "content": text}));
                        push("user", Item::Result(id, text), &mut expected);
                    }
                }
                _ => {
                    messages.push(
                        json!({"role": "assistant", "content": [{"type": "text", "text": text}]}),
                    );
                    push("assistant", Item::Text(text), &mut expected);
                }
            }
        }
        if expected.is_empty() {
            continue;
        }
        for (role, items) in &mut expected {
            if role == "user" {
                items.sort_by_key(|i| !matches!(i, Item::Result(..)));
            }
        }
        let req = json!({"model": "m", "messages": messages,
            "tools": [{"type": "function", "function": {"name": "f"}}]});
        let got = body(req);
        let (got_system, got_turns) = converse_items(&got);
        assert_eq!(got_system, system, "round {round}");
        assert_eq!(got_turns, expected, "round {round}");
    }
}
