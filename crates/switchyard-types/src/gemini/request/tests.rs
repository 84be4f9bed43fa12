use serde_json::{json, Value};

use super::*;

fn translate(req: Value) -> (Value, ChatToGemini) {
    let t = chat_to_gemini(&serde_json::to_vec(&req).unwrap())
        .unwrap_or_else(|e| panic!("translation failed: {e}"));
    (serde_json::from_slice(&t.body).unwrap(), t)
}

/// Asserts the translation of `req` is exactly `want`.
fn check(req: Value, want: Value) {
    let (got, _) = translate(req);
    assert_eq!(got, want, "\n got: {got}\nwant: {want}");
}

/// Asserts `req` is rejected, naming `param`.
fn rejects(req: Value, param: &str) -> String {
    let e =
        chat_to_gemini(&serde_json::to_vec(&req).unwrap()).expect_err("translation should fail");
    assert_eq!(e.param.as_deref(), Some(param), "{e}");
    e.message
}

fn base(extra: Value) -> Value {
    let mut req = json!({"model": "g", "messages": [{"role": "user", "content": "Hi"}]});
    if let (Some(r), Some(e)) = (req.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            r.insert(k.clone(), v.clone());
        }
    }
    req
}

#[test]
fn minimal_request() {
    check(
        base(json!({})),
        json!({"contents": [{"role": "user", "parts": [{"text": "Hi"}]}]}),
    );
}

#[test]
fn system_messages_become_the_system_instruction_and_turns_alternate() {
    check(
        json!({"model": "g", "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello!"},
            {"role": "developer", "content": [{"type": "text", "text": "No emoji."}]},
            {"role": "user", "content": [{"type": "text", "text": "Again"}, {"type": "text", "text": ""}]},
            {"role": "user", "content": "and again"}
        ]}),
        json!({
            "systemInstruction": {"parts": [{"text": "Be brief."}, {"text": "No emoji."}]},
            "contents": [
                {"role": "user", "parts": [{"text": "Hi"}]},
                {"role": "model", "parts": [{"text": "Hello!"}]},
                {"role": "user", "parts": [{"text": "Again"}, {"text": "and again"}]}
            ]
        }),
    );
}

#[test]
fn generation_config_carries_sampling_and_limits() {
    let (got, t) = translate(base(json!({
        "max_tokens": 100, "max_completion_tokens": 50, "temperature": 0.7, "top_p": 0.9,
        "stop": "END", "n": 2, "seed": 42, "presence_penalty": 0.5, "frequency_penalty": -0.5,
        "reasoning_effort": "low", "user": "u-1", "parallel_tool_calls": false,
        "logit_bias": {"50256": -100}, "store": true, "metadata": {"a": "b"},
        "stream": true, "stream_options": {"include_usage": true}
    })));
    assert_eq!(
        got["generationConfig"],
        json!({
            "candidateCount": 2, "maxOutputTokens": 50, "temperature": 0.7, "topP": 0.9,
            "stopSequences": ["END"], "seed": 42, "presencePenalty": 0.5,
            "frequencyPenalty": -0.5, "thinkingConfig": {"thinkingBudget": 1024}
        })
    );
    assert!(t.stream && t.include_usage);
    assert_eq!(t.candidates, 2);
    // Hints without an equivalent do not reach Gemini.
    let text = got.to_string();
    for gone in ["u-1", "50256", "metadata", "store", "stream"] {
        assert!(!text.contains(gone), "{gone} leaked: {text}");
    }
    // max_tokens alone, and a list of stop sequences.
    let (got, t) = translate(base(json!({"max_tokens": 7, "stop": ["a", "b"], "n": 1})));
    assert_eq!(
        got["generationConfig"],
        json!({"maxOutputTokens": 7, "stopSequences": ["a", "b"]})
    );
    assert_eq!(t.candidates, 1);
    assert!(!t.stream);
}

#[test]
fn images_audio_and_files_become_inline_or_file_data() {
    check(
        json!({"model": "g", "messages": [{"role": "user", "content": [
            {"type": "text", "text": "What are these?"},
            {"type": "image_url", "image_url": {"url": "data:image/PNG;base64,iVBORw0KGgo=", "detail": "high"}},
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.JPG?sig=abc#x"}},
            {"type": "image_url", "image_url": "gs://bucket/dog.webp"},
            {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
            {"type": "file", "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBERi0="}}
        ]}]}),
        json!({"contents": [{"role": "user", "parts": [
            {"text": "What are these?"},
            {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
            {"fileData": {"mimeType": "image/jpeg", "fileUri": "https://example.com/cat.JPG?sig=abc#x"}},
            {"fileData": {"mimeType": "image/webp", "fileUri": "gs://bucket/dog.webp"}},
            {"inlineData": {"mimeType": "audio/wav", "data": "UklGRg=="}},
            {"inlineData": {"mimeType": "application/pdf", "data": "JVBERi0="}}
        ]}]}),
    );
}

#[test]
fn unusable_images_and_files_are_rejected_naming_the_part() {
    let msg = rejects(
        json!({"model": "g", "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "https://example.com/image?id=3"}}
        ]}]}),
        "messages[0].content[0].image_url.url",
    );
    assert!(msg.contains("data URL"), "{msg}");
    rejects(
        json!({"model": "g", "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "data:image/png,notbase64"}}
        ]}]}),
        "messages[0].content[0].image_url.url",
    );
    rejects(
        json!({"model": "g", "messages": [{"role": "user", "content": [
            {"type": "file", "file": {"file_id": "file-123"}}
        ]}]}),
        "messages[0].content[0].file.file_id",
    );
    rejects(
        json!({"model": "g", "messages": [{"role": "user", "content": [
            {"type": "video", "video": {}}
        ]}]}),
        "messages[0].content[0].type",
    );
}

#[test]
fn tools_and_tool_choice_become_function_declarations_and_calling_config() {
    let weather = json!({"type": "function", "function": {
        "name": "get_weather", "description": "Weather for a city.", "strict": true,
        "parameters": {"type": "object", "properties": {
            "city": {"type": "string", "description": "City name"},
            "unit": {"type": ["string", "null"], "enum": ["c", "f", null]}
        }, "required": ["city"], "additionalProperties": false}
    }});
    let now = json!({"type": "function", "function": {"name": "now", "parameters": {"type": "object", "properties": {}}}});
    let declarations = json!([
        {"name": "get_weather", "description": "Weather for a city.", "parameters": {
            "type": "OBJECT",
            "properties": {
                "city": {"type": "STRING", "description": "City name"},
                "unit": {"type": "STRING", "enum": ["c", "f"], "nullable": true}
            },
            "required": ["city"]
        }},
        {"name": "now"}
    ]);
    let cases = [
        (json!(null), None),
        (json!("auto"), Some(json!({"mode": "AUTO"}))),
        (json!("none"), Some(json!({"mode": "NONE"}))),
        (json!("required"), Some(json!({"mode": "ANY"}))),
        (
            json!({"type": "function", "function": {"name": "now"}}),
            Some(json!({"mode": "ANY", "allowedFunctionNames": ["now"]})),
        ),
    ];
    for (choice, config) in cases {
        let (got, _) = translate(base(
            json!({"tools": [weather, now], "tool_choice": choice}),
        ));
        assert_eq!(
            got["tools"],
            json!([{ "functionDeclarations": declarations }])
        );
        match config {
            Some(c) => assert_eq!(got["toolConfig"], json!({ "functionCallingConfig": c })),
            None => assert!(got.get("toolConfig").is_none(), "{got}"),
        }
    }
    // allowed_tools narrows the declarations.
    let (got, _) = translate(base(json!({"tools": [weather, now], "tool_choice": {
        "type": "allowed_tools",
        "allowed_tools": {"mode": "required", "tools": [{"type": "function", "function": {"name": "now"}}]}
    }})));
    assert_eq!(
        got["tools"],
        json!([{"functionDeclarations": [{"name": "now"}]}])
    );
    assert_eq!(got["toolConfig"]["functionCallingConfig"]["mode"], "ANY");
    // Tool choice without tools says nothing.
    let (got, _) = translate(base(json!({"tool_choice": "required"})));
    assert!(got.get("toolConfig").is_none());
}

#[test]
fn tool_calls_and_results_keep_names_and_signatures() {
    check(
        json!({"model": "g", "messages": [
            {"role": "user", "content": "Weather in Paris and Rome?"},
            {"role": "assistant", "content": "Let me check.", "tool_calls": [
                {"id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"},
                 "extra_content": {"google": {"thought_signature": "c2lnbmF0dXJl"}}},
                {"id": "call_b", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Rome\"}"}}
            ]},
            {"role": "tool", "tool_call_id": "call_a", "content": "{\"temp_c\": 21}"},
            {"role": "tool", "tool_call_id": "call_b", "content": [{"type": "text", "text": "sunny"}]},
            {"role": "user", "content": "Thanks"},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_c", "type": "function", "function": {"name": "now", "arguments": ""}}
            ]},
            {"role": "tool", "tool_call_id": "call_c", "content": "12:00"}
        ]}),
        json!({"contents": [
            {"role": "user", "parts": [{"text": "Weather in Paris and Rome?"}]},
            {"role": "model", "parts": [
                {"text": "Let me check."},
                {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": "c2lnbmF0dXJl"},
                {"functionCall": {"name": "get_weather", "args": {"city": "Rome"}}}
            ]},
            {"role": "user", "parts": [
                {"functionResponse": {"name": "get_weather", "response": {"temp_c": 21}}},
                {"functionResponse": {"name": "get_weather", "response": {"output": "sunny"}}},
                {"text": "Thanks"}
            ]},
            {"role": "model", "parts": [
                {"functionCall": {"name": "now", "args": {}}, "thoughtSignature": SKIP_THOUGHT_SIGNATURE}
            ]},
            {"role": "user", "parts": [
                {"functionResponse": {"name": "now", "response": {"output": "12:00"}}}
            ]}
        ]}),
    );
}

#[test]
fn tool_results_need_their_call() {
    let msg = rejects(
        json!({"model": "g", "messages": [
            {"role": "user", "content": "x"},
            {"role": "tool", "tool_call_id": "call_zzz", "content": "1"}
        ]}),
        "messages[1].tool_call_id",
    );
    assert!(msg.contains("call_zzz"), "{msg}");
    // A legacy `name` on the tool message is enough.
    let (got, _) = translate(json!({"model": "g", "messages": [
        {"role": "user", "content": "x"},
        {"role": "tool", "tool_call_id": "call_zzz", "name": "f", "content": "1"}
    ]}));
    assert_eq!(
        got["contents"][0]["parts"][0]["functionResponse"]["name"],
        "f"
    );
    rejects(
        json!({"model": "g", "messages": [
            {"role": "assistant", "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "[1]"}}]}
        ]}),
        "messages[0].tool_calls[0].function.arguments",
    );
}

#[test]
fn response_format_becomes_json_mode_with_a_schema() {
    let (got, _) = translate(base(
        json!({"response_format": {"type": "json_schema", "json_schema": {
            "name": "person", "strict": true,
            "schema": {"type": "object", "properties": {
                "name": {"type": "string"},
                "age": {"type": "integer", "minimum": 0},
                "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 3}
            }, "required": ["name", "age"], "additionalProperties": false}
        }}}),
    ));
    assert_eq!(
        got["generationConfig"],
        json!({
            "responseMimeType": "application/json",
            "responseSchema": {"type": "OBJECT", "properties": {
                "name": {"type": "STRING"},
                "age": {"type": "INTEGER", "minimum": 0},
                "tags": {"type": "ARRAY", "items": {"type": "STRING"}, "maxItems": 3}
            }, "required": ["name", "age"]}
        })
    );
    let (got, _) = translate(base(json!({"response_format": {"type": "json_object"}})));
    assert_eq!(
        got["generationConfig"],
        json!({"responseMimeType": "application/json"})
    );
    let (got, _) = translate(base(json!({"response_format": {"type": "text"}})));
    assert!(got.get("generationConfig").is_none());
    rejects(
        base(
            json!({"response_format": {"type": "json_schema", "json_schema": {"name": "x",
            "schema": {"type": "object", "properties": {"a": {"not": {"type": "string"}}}}}}}),
        ),
        "response_format.json_schema.schema.properties.a.not",
    );
}

#[test]
fn provider_options_are_merged_into_the_body() {
    let (got, _) = translate(base(json!({
        "temperature": 0.2,
        "provider_options": {
            "gemini": {
                "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}],
                "cachedContent": "cachedContents/abc",
                "generationConfig": {"topK": 40, "thinkingConfig": {"includeThoughts": true}}
            },
            "anthropic": {"top_k": 5}
        }
    })));
    assert_eq!(got["cachedContent"], "cachedContents/abc");
    assert_eq!(got["safetySettings"][0]["threshold"], "BLOCK_NONE");
    assert_eq!(
        got["generationConfig"],
        json!({"temperature": 0.2, "topK": 40, "thinkingConfig": {"includeThoughts": true}})
    );
    assert!(!got.to_string().contains("top_k"));
    rejects(
        base(json!({"provider_options": {"gemini": []}})),
        "provider_options.gemini",
    );
}

#[test]
fn what_gemini_cannot_do_is_rejected_naming_the_field() {
    for (extra, param) in [
        (json!({"logprobs": true}), "logprobs"),
        (json!({"top_logprobs": 3}), "top_logprobs"),
        (json!({"modalities": ["text", "audio"]}), "modalities"),
        (json!({"audio": {"voice": "x"}}), "audio"),
        (json!({"functions": []}), "functions"),
        (json!({"function_call": "auto"}), "function_call"),
        (json!({"web_search_options": {}}), "web_search_options"),
        (json!({"n": 0}), "n"),
        (json!({"max_tokens": 0}), "max_tokens"),
        (json!({"reasoning_effort": "extreme"}), "reasoning_effort"),
        (json!({"stop": [1]}), "stop[0]"),
        (
            json!({"tool_choice": "sometimes", "tools": [{"type": "function", "function": {"name": "f"}}]}),
            "tool_choice",
        ),
        (
            json!({"tools": [{"type": "custom", "custom": {"name": "f"}}]}),
            "tools[0].type",
        ),
        (
            json!({"response_format": {"type": "xml"}}),
            "response_format.type",
        ),
    ] {
        rejects(base(extra), param);
    }
    rejects(
        json!({"model": "g", "messages": [{"role": "nobody", "content": "x"}]}),
        "messages[0].role",
    );
    rejects(
        json!({"model": "g", "messages": [{"role": "function", "name": "f", "content": "x"}]}),
        "messages[0].role",
    );
    rejects(
        json!({"model": "g", "messages": [{"role": "system", "content": "only a system prompt"}]}),
        "messages",
    );
    rejects(json!({"model": "g", "messages": []}), "messages");
    let e = chat_to_gemini(b"[1]").unwrap_err();
    assert_eq!(e.param, None);
}

#[test]
fn embeddings_use_one_or_batch_requests() {
    let t = embeddings_to_gemini(
        br#"{"model":"e","input":"hello","dimensions":256,"user":"u"}"#,
        "text-embedding-004",
        true,
    )
    .unwrap();
    assert_eq!(t.method, EmbedMethod::Single);
    assert!(!t.base64);
    let body: Value = serde_json::from_slice(&t.body).unwrap();
    assert_eq!(
        body,
        json!({"content": {"parts": [{"text": "hello"}]}, "outputDimensionality": 256})
    );

    let t = embeddings_to_gemini(
        br#"{"model":"e","input":["a","b"],"encoding_format":"base64",
            "provider_options":{"gemini":{"taskType":"RETRIEVAL_DOCUMENT"}}}"#,
        "text-embedding-004",
        true,
    )
    .unwrap();
    assert_eq!(t.method, EmbedMethod::Batch);
    assert!(t.base64);
    let body: Value = serde_json::from_slice(&t.body).unwrap();
    assert_eq!(
        body,
        json!({"requests": [
            {"model": "models/text-embedding-004", "content": {"parts": [{"text": "a"}]}, "taskType": "RETRIEVAL_DOCUMENT"},
            {"model": "models/text-embedding-004", "content": {"parts": [{"text": "b"}]}, "taskType": "RETRIEVAL_DOCUMENT"}
        ]})
    );
    // One input in an array is still a single call; several are refused where there is no
    // batch method.
    let t = embeddings_to_gemini(br#"{"model":"e","input":["a"]}"#, "m", false).unwrap();
    assert_eq!(t.method, EmbedMethod::Single);
    let e = embeddings_to_gemini(br#"{"model":"e","input":["a","b"]}"#, "m", false).unwrap_err();
    assert_eq!(e.param.as_deref(), Some("input"));
    for (body, param) in [
        (&br#"{"model":"e","input":[1,2,3]}"#[..], "input[0]"),
        (br#"{"model":"e","input":[[1,2]]}"#, "input[0]"),
        (br#"{"model":"e","input":[]}"#, "input"),
        (br#"{"model":"e"}"#, "input"),
        (
            br#"{"model":"e","input":"x","encoding_format":"int8"}"#,
            "encoding_format",
        ),
    ] {
        let e = embeddings_to_gemini(body, "m", true).unwrap_err();
        assert_eq!(e.param.as_deref(), Some(param), "{e}");
    }
    assert_eq!(model_resource("tunedModels/abc"), "tunedModels/abc");
}

#[test]
fn image_types_come_from_the_extension() {
    for (url, mime) in [
        ("https://x/a.png", Some("image/png")),
        ("https://x/a.jpeg?x=1", Some("image/jpeg")),
        ("https://x/dir.png/file", None),
        ("https://x/a", None),
        ("https://x/a.svg", None),
        ("gs://b/a.HEIC", Some("image/heic")),
    ] {
        assert_eq!(image_mime_for_url(url), mime, "{url}");
    }
}
