use serde_json::{json, Value};

use super::*;

const MODEL: &str = "claude-upstream";

fn to_messages(req: &Value) -> Result<(Value, ChatToMessages), TranslateError> {
    let out = chat_to_messages(&serde_json::to_vec(req).unwrap(), MODEL)?;
    let body = serde_json::from_slice(&out.body).unwrap();
    Ok((body, out))
}

fn to_chat(req: &Value) -> Result<(Value, MessagesToChat), TranslateError> {
    let out = messages_to_chat(&serde_json::to_vec(req).unwrap(), "gpt-upstream")?;
    let body = serde_json::from_slice(&out.body).unwrap();
    Ok((body, out))
}

/// A chat request with `messages` and extra top-level fields.
fn chat(messages: Value, extra: Value) -> Value {
    let mut req = json!({"model": "alias", "messages": messages});
    merge(&mut req, extra);
    req
}

/// The expected Anthropic body: model, `messages`, the default cap, and extra fields.
fn anthropic(messages: Value, extra: Value) -> Value {
    let mut body = json!({"model": MODEL, "messages": messages, "max_tokens": DEFAULT_MAX_TOKENS});
    merge(&mut body, extra);
    body
}

/// An Anthropic request with `messages` and extra top-level fields.
fn messages(messages: Value, extra: Value) -> Value {
    let mut req = json!({"model": "alias", "max_tokens": 100, "messages": messages});
    merge(&mut req, extra);
    req
}

/// The expected OpenAI body: model, `messages`, `max_tokens: 100`, and extra fields.
fn openai(messages: Value, extra: Value) -> Value {
    let mut body = json!({"model": "gpt-upstream", "messages": messages, "max_tokens": 100});
    merge(&mut body, extra);
    body
}

/// Sets each member of `extra` on `into`; a null removes the member.
fn merge(into: &mut Value, extra: Value) {
    let (Value::Object(into), Value::Object(extra)) = (into, extra) else {
        panic!("merge takes objects");
    };
    for (k, v) in extra {
        if v.is_null() {
            into.remove(&k);
        } else {
            into.insert(k, v);
        }
    }
}

fn user(text: &str) -> Value {
    json!({"role": "user", "content": text})
}

const PNG: &str = "iVBORw0KGgo=";
const PDF: &str = "JVBERi0xLjQ=";

#[test]
fn chat_to_messages_cases() {
    let weather_tool = json!({"type": "function", "function": {
        "name": "weather", "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}});
    let weather_anthropic = json!({"name": "weather", "description": "Weather for a city",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}});
    let json_tool = |schema: Value, description: &str| json!({"name": JSON_TOOL_NAME, "description": description, "input_schema": schema});
    let default_json_description =
        "Give your final answer by calling this tool: its input is the JSON response to the user.";
    let hi = json!([user("hi")]);
    let hi_out = json!([{"role": "user", "content": "hi"}]);

    let cases: Vec<(&str, Value, Value)> = vec![
        (
            "system and developer messages anywhere become the system text, in order",
            chat(
                json!([
                    {"role": "system", "content": "Be brief."},
                    user("hi"),
                    {"role": "developer", "content": [{"type": "text", "text": "Use French."}]},
                    {"role": "assistant", "content": "Salut"},
                    user("more"),
                ]),
                json!({}),
            ),
            anthropic(
                json!([
                    {"role": "user", "content": "hi"},
                    {"role": "assistant", "content": "Salut"},
                    {"role": "user", "content": "more"},
                ]),
                json!({"system": [
                    {"type": "text", "text": "Be brief."},
                    {"type": "text", "text": "Use French."},
                ]}),
            ),
        ),
        (
            "one system message is a plain string",
            chat(
                json!([{"role": "system", "content": "S"}, user("hi")]),
                json!({}),
            ),
            anthropic(hi_out.clone(), json!({"system": "S"})),
        ),
        (
            "consecutive messages of one role are merged; empty text is skipped",
            chat(
                json!([
                    user("a"),
                    {"role": "user", "content": [{"type": "text", "text": "b"}, {"type": "text", "text": ""}]},
                    {"role": "assistant", "content": ""},
                    {"role": "user", "content": "c", "name": "bob"},
                ]),
                json!({}),
            ),
            anthropic(
                json!([{"role": "user", "content": [
                    {"type": "text", "text": "a"},
                    {"type": "text", "text": "b"},
                    {"type": "text", "text": "c"},
                ]}]),
                json!({}),
            ),
        ),
        (
            "images (data URL and http URL) and PDF files",
            chat(
                json!([{"role": "user", "content": [
                    {"type": "text", "text": "Compare"},
                    {"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{PNG}"), "detail": "high"}},
                    {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
                    {"type": "file", "file": {"filename": "report.pdf", "file_data": format!("data:application/pdf;base64,{PDF}")}},
                ]}]),
                json!({}),
            ),
            anthropic(
                json!([{"role": "user", "content": [
                    {"type": "text", "text": "Compare"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
                    {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
                    {"type": "document", "title": "report.pdf", "source": {"type": "base64", "media_type": "application/pdf", "data": PDF}},
                ]}]),
                json!({}),
            ),
        ),
        (
            "tool calls become tool_use after the text; parallel results share one user turn",
            chat(
                json!([
                    user("Weather in Paris and Oslo?"),
                    {"role": "assistant", "content": "Checking.", "tool_calls": [
                        {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Paris\"}"}},
                        {"id": "call_2", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Oslo\"}"}},
                    ]},
                    {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
                    {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "9C"}]},
                    user("And tomorrow?"),
                ]),
                json!({}),
            ),
            anthropic(
                json!([
                    {"role": "user", "content": "Weather in Paris and Oslo?"},
                    {"role": "assistant", "content": [
                        {"type": "text", "text": "Checking."},
                        {"type": "tool_use", "id": "call_1", "name": "weather", "input": {"city": "Paris"}},
                        {"type": "tool_use", "id": "call_2", "name": "weather", "input": {"city": "Oslo"}},
                    ]},
                    {"role": "user", "content": [
                        {"type": "tool_result", "tool_use_id": "call_1", "content": "18C"},
                        {"type": "tool_result", "tool_use_id": "call_2", "content": [{"type": "text", "text": "9C"}]},
                        {"type": "text", "text": "And tomorrow?"},
                    ]},
                ]),
                json!({}),
            ),
        ),
        (
            "tool results go before user text merged into the same turn; empty arguments are {}",
            chat(
                json!([
                    user("Now?"),
                    {"role": "assistant", "content": null, "tool_calls": [
                        {"id": "call_9", "type": "function", "function": {"name": "clock", "arguments": ""}},
                    ]},
                    user("hurry"),
                    {"role": "tool", "tool_call_id": "call_9", "content": "noon"},
                ]),
                json!({}),
            ),
            anthropic(
                json!([
                    {"role": "user", "content": "Now?"},
                    {"role": "assistant", "content": [
                        {"type": "tool_use", "id": "call_9", "name": "clock", "input": {}},
                    ]},
                    {"role": "user", "content": [
                        {"type": "tool_result", "tool_use_id": "call_9", "content": "noon"},
                        {"type": "text", "text": "hurry"},
                    ]},
                ]),
                json!({}),
            ),
        ),
        (
            "assistant refusals are text",
            chat(
                json!([
                    user("x"),
                    {"role": "assistant", "content": null, "refusal": "I can't."},
                    user("y"),
                    {"role": "assistant", "content": [{"type": "refusal", "refusal": "No."}]},
                ]),
                json!({}),
            ),
            anthropic(
                json!([
                    {"role": "user", "content": "x"},
                    {"role": "assistant", "content": "I can't."},
                    {"role": "user", "content": "y"},
                    {"role": "assistant", "content": "No."},
                ]),
                json!({}),
            ),
        ),
        (
            "max_completion_tokens wins over max_tokens",
            chat(
                hi.clone(),
                json!({"max_completion_tokens": 300, "max_tokens": 200}),
            ),
            anthropic(hi_out.clone(), json!({"max_tokens": 300})),
        ),
        (
            "max_tokens alone",
            chat(hi.clone(), json!({"max_tokens": 200})),
            anthropic(hi_out.clone(), json!({"max_tokens": 200})),
        ),
        (
            "sampling, stop string, stream, user",
            chat(
                hi.clone(),
                json!({"temperature": 0.3, "top_p": 0.9, "stop": "END", "stream": true, "user": "u-1"}),
            ),
            anthropic(
                hi_out.clone(),
                json!({"temperature": 0.3, "top_p": 0.9, "stop_sequences": ["END"], "stream": true,
                       "metadata": {"user_id": "u-1"}}),
            ),
        ),
        (
            "temperature above 1 is clamped; stop array; safety_identifier as user id",
            chat(
                hi.clone(),
                json!({"temperature": 1.7, "stop": ["a", "b"], "stream": false, "safety_identifier": "h-2"}),
            ),
            anthropic(
                hi_out.clone(),
                json!({"temperature": 1, "stop_sequences": ["a", "b"], "metadata": {"user_id": "h-2"}}),
            ),
        ),
        (
            "hints without an Anthropic equivalent are dropped",
            chat(
                hi.clone(),
                json!({"seed": 7, "presence_penalty": 0.5, "frequency_penalty": 0.5,
                       "logit_bias": {"50256": -100}, "service_tier": "auto", "store": true,
                       "metadata": {"k": "v"}, "stream_options": {"include_usage": true},
                       "prediction": {"type": "content", "content": "x"}, "n": 1, "logprobs": false,
                       "modalities": ["text"], "verbosity": "low", "prompt_cache_key": "k",
                       "stop": [], "future_param": {"x": 1}}),
            ),
            anthropic(hi_out.clone(), json!({})),
        ),
        (
            "function tools; a tool without parameters gets an empty object schema",
            chat(
                hi.clone(),
                json!({"tools": [weather_tool, {"type": "function", "function": {"name": "clock", "strict": true}}],
                       "tool_choice": "auto"}),
            ),
            anthropic(
                hi_out.clone(),
                json!({"tools": [weather_anthropic,
                                 {"name": "clock", "input_schema": {"type": "object", "properties": {}}}],
                       "tool_choice": {"type": "auto"}}),
            ),
        ),
        (
            "tool_choice none",
            chat(
                hi.clone(),
                json!({"tools": [weather_tool], "tool_choice": "none"}),
            ),
            anthropic(
                hi_out.clone(),
                json!({"tools": [weather_anthropic], "tool_choice": {"type": "none"}}),
            ),
        ),
        (
            "tool_choice required is any; parallel_tool_calls false disables parallel use",
            chat(
                hi.clone(),
                json!({"tools": [weather_tool], "tool_choice": "required", "parallel_tool_calls": false}),
            ),
            anthropic(
                hi_out.clone(),
                json!({"tools": [weather_anthropic],
                       "tool_choice": {"type": "any", "disable_parallel_tool_use": true}}),
            ),
        ),
        (
            "a named function is a tool choice",
            chat(
                hi.clone(),
                json!({"tools": [weather_tool], "tool_choice": {"type": "function", "function": {"name": "weather"}}}),
            ),
            anthropic(
                hi_out.clone(),
                json!({"tools": [weather_anthropic], "tool_choice": {"type": "tool", "name": "weather"}}),
            ),
        ),
        (
            "parallel_tool_calls false without a tool choice is auto",
            chat(
                hi.clone(),
                json!({"tools": [weather_tool], "parallel_tool_calls": false}),
            ),
            anthropic(
                hi_out.clone(),
                json!({"tools": [weather_anthropic],
                       "tool_choice": {"type": "auto", "disable_parallel_tool_use": true}}),
            ),
        ),
        (
            "tool options without tools are dropped",
            chat(
                hi.clone(),
                json!({"tools": [], "tool_choice": "auto", "parallel_tool_calls": true}),
            ),
            anthropic(hi_out.clone(), json!({})),
        ),
        (
            "json_schema becomes a forced tool",
            chat(
                hi.clone(),
                json!({"response_format": {"type": "json_schema", "json_schema": {
                    "name": "answer", "description": "The answer", "strict": true,
                    "schema": {"type": "object", "properties": {"a": {"type": "integer"}}}}}}),
            ),
            anthropic(
                hi_out.clone(),
                json!({"tools": [json_tool(json!({"type": "object", "properties": {"a": {"type": "integer"}}}), "The answer")],
                       "tool_choice": {"type": "tool", "name": JSON_TOOL_NAME}}),
            ),
        ),
        (
            "json_object is a forced tool taking any object",
            chat(
                hi.clone(),
                json!({"response_format": {"type": "json_object"}}),
            ),
            anthropic(
                hi_out.clone(),
                json!({"tools": [json_tool(json!({"type": "object"}), default_json_description)],
                       "tool_choice": {"type": "tool", "name": JSON_TOOL_NAME}}),
            ),
        ),
        (
            "response_format text adds nothing",
            chat(hi.clone(), json!({"response_format": {"type": "text"}})),
            anthropic(hi_out.clone(), json!({})),
        ),
        (
            "json output with the client's tools: some tool must be called",
            chat(
                hi.clone(),
                json!({"tools": [weather_tool], "response_format": {"type": "json_object"}}),
            ),
            anthropic(
                hi_out.clone(),
                json!({"tools": [weather_anthropic, json_tool(json!({"type": "object"}), default_json_description)],
                       "tool_choice": {"type": "any"}}),
            ),
        ),
        (
            "json output with tool_choice none forces the JSON tool",
            chat(
                hi.clone(),
                json!({"tools": [weather_tool], "tool_choice": "none", "response_format": {"type": "json_object"}}),
            ),
            anthropic(
                hi_out.clone(),
                json!({"tools": [weather_anthropic, json_tool(json!({"type": "object"}), default_json_description)],
                       "tool_choice": {"type": "tool", "name": JSON_TOOL_NAME}}),
            ),
        ),
        (
            "a forced client tool makes the JSON tool unnecessary",
            chat(
                hi.clone(),
                json!({"tools": [weather_tool], "tool_choice": "required", "response_format": {"type": "json_object"}}),
            ),
            anthropic(
                hi_out.clone(),
                json!({"tools": [weather_anthropic], "tool_choice": {"type": "any"}}),
            ),
        ),
        (
            "reasoning effort: budget on top of the default cap; temperature and low top_p dropped",
            chat(
                hi.clone(),
                json!({"reasoning_effort": "medium", "temperature": 0.2, "top_p": 0.5}),
            ),
            anthropic(
                hi_out.clone(),
                json!({"thinking": {"type": "enabled", "budget_tokens": 4096}, "max_tokens": 4096 + DEFAULT_MAX_TOKENS}),
            ),
        ),
        (
            "reasoning effort: a small cap is raised above the budget; top_p 0.95 and up kept",
            chat(
                hi.clone(),
                json!({"reasoning_effort": "high", "max_completion_tokens": 2000, "top_p": 0.97}),
            ),
            anthropic(
                hi_out.clone(),
                json!({"thinking": {"type": "enabled", "budget_tokens": 16384}, "max_tokens": 16384 + 1024,
                       "top_p": 0.97}),
            ),
        ),
        (
            "reasoning effort: a large cap is kept",
            chat(
                hi.clone(),
                json!({"reasoning_effort": "minimal", "max_tokens": 50000}),
            ),
            anthropic(
                hi_out.clone(),
                json!({"thinking": {"type": "enabled", "budget_tokens": 1024}, "max_tokens": 50000}),
            ),
        ),
        (
            "reasoning effort none",
            chat(
                hi.clone(),
                json!({"reasoning_effort": "none", "temperature": 0.5}),
            ),
            anthropic(hi_out.clone(), json!({"temperature": 0.5})),
        ),
        (
            "no thinking when tool use is forced",
            chat(
                hi.clone(),
                json!({"reasoning_effort": "low", "tools": [weather_tool], "tool_choice": "required", "temperature": 0.5}),
            ),
            anthropic(
                hi_out.clone(),
                json!({"tools": [weather_anthropic], "tool_choice": {"type": "any"}, "temperature": 0.5}),
            ),
        ),
        (
            "no thinking when the conversation ends with tool results",
            chat(
                json!([
                    user("time?"),
                    {"role": "assistant", "tool_calls": [{"id": "c", "type": "function", "function": {"name": "clock", "arguments": "{}"}}]},
                    {"role": "tool", "tool_call_id": "c", "content": "noon"},
                ]),
                json!({"reasoning_effort": "low"}),
            ),
            anthropic(
                json!([
                    {"role": "user", "content": "time?"},
                    {"role": "assistant", "content": [{"type": "tool_use", "id": "c", "name": "clock", "input": {}}]},
                    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "c", "content": "noon"}]},
                ]),
                json!({}),
            ),
        ),
        (
            "no thinking with an assistant prefill",
            chat(
                json!([user("JSON please"), {"role": "assistant", "content": "{"}]),
                json!({"reasoning_effort": "high"}),
            ),
            anthropic(
                json!([{"role": "user", "content": "JSON please"}, {"role": "assistant", "content": "{"}]),
                json!({}),
            ),
        ),
    ];

    for (name, input, expected) in cases {
        match to_messages(&input) {
            Ok((body, _)) => assert_eq!(body, expected, "case: {name}"),
            Err(e) => panic!("case {name}: unexpected error {e}"),
        }
    }
}

#[test]
fn chat_to_messages_flags() {
    let (_, out) = to_messages(&chat(
        json!([user("hi")]),
        json!({"stream": true, "stream_options": {"include_usage": true},
               "response_format": {"type": "json_object"}}),
    ))
    .unwrap();
    assert!(out.stream && out.include_usage && out.json_tool);

    let (_, out) = to_messages(&chat(json!([user("hi")]), json!({}))).unwrap();
    assert!(!out.stream && !out.include_usage && !out.json_tool);

    // A forced client tool means no JSON tool call to turn back into text.
    let (_, out) = to_messages(&chat(
        json!([user("hi")]),
        json!({"tools": [{"type": "function", "function": {"name": "f"}}],
               "tool_choice": "required", "response_format": {"type": "json_object"}}),
    ))
    .unwrap();
    assert!(!out.json_tool);
}

#[test]
fn chat_to_messages_errors() {
    let hi = json!([user("hi")]);
    let call = |args: &str| {
        json!([user("q"), {"role": "assistant", "tool_calls": [
            {"id": "c", "type": "function", "function": {"name": "f", "arguments": args}}]}])
    };
    let image = |url: &str| json!([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]}]);
    let cases: Vec<(Value, &str)> = vec![
        (json!({"model": "m"}), "messages"),
        (json!({"model": "m", "messages": {}}), "messages"),
        (chat(json!([]), json!({})), "messages"),
        (
            chat(
                json!([{"role": "system", "content": "only rules"}]),
                json!({}),
            ),
            "messages",
        ),
        (chat(json!(["hi"]), json!({})), "messages[0]"),
        (
            chat(json!([{"content": "hi"}]), json!({})),
            "messages[0].role",
        ),
        (
            chat(json!([{"role": 3, "content": "hi"}]), json!({})),
            "messages[0].role",
        ),
        (
            chat(json!([{"role": "robot", "content": "hi"}]), json!({})),
            "messages[0].role",
        ),
        (
            chat(
                json!([{"role": "function", "name": "f", "content": "1"}]),
                json!({}),
            ),
            "messages[0].role",
        ),
        (
            chat(json!([{"role": "user", "content": 5}]), json!({})),
            "messages[0].content",
        ),
        (
            chat(
                json!([{"role": "user", "content": [{"type": "video"}]}]),
                json!({}),
            ),
            "messages[0].content[0].type",
        ),
        (
            chat(
                json!([{"role": "user", "content": [{"type": "text", "text": "a"}, "b"]}]),
                json!({}),
            ),
            "messages[0].content[1]",
        ),
        (
            chat(
                json!([{"role": "user", "content": [{"type": "text"}]}]),
                json!({}),
            ),
            "messages[0].content[0].text",
        ),
        (
            chat(
                json!([{"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "x", "format": "wav"}}]}]),
                json!({}),
            ),
            "messages[0].content[0]",
        ),
        (
            chat(image("ftp://example.com/a.png"), json!({})),
            "messages[0].content[0].image_url.url",
        ),
        (
            chat(image("data:image/svg+xml;base64,PHN2Zz4="), json!({})),
            "messages[0].content[0].image_url.url",
        ),
        (
            chat(image("data:image/png,rawbytes"), json!({})),
            "messages[0].content[0].image_url.url",
        ),
        (
            chat(
                json!([{"role": "user", "content": [{"type": "image_url"}]}]),
                json!({}),
            ),
            "messages[0].content[0].image_url",
        ),
        (
            chat(
                json!([{"role": "user", "content": [{"type": "file", "file": {"file_id": "file-1"}}]}]),
                json!({}),
            ),
            "messages[0].content[0].file.file_id",
        ),
        (
            chat(
                json!([{"role": "user", "content": [{"type": "file", "file": {"file_data": "data:text/plain;base64,aGk="}}]}]),
                json!({}),
            ),
            "messages[0].content[0].file.file_data",
        ),
        (
            chat(
                json!([{"role": "system", "content": [{"type": "image_url", "image_url": {"url": "https://x"}}]}, user("hi")]),
                json!({}),
            ),
            "messages[0].content[0].type",
        ),
        (
            chat(
                json!([user("q"), {"role": "assistant", "content": [{"type": "image_url"}]}]),
                json!({}),
            ),
            "messages[1].content[0].type",
        ),
        (
            chat(call("{not json"), json!({})),
            "messages[1].tool_calls[0].function.arguments",
        ),
        (
            chat(call("[1,2]"), json!({})),
            "messages[1].tool_calls[0].function.arguments",
        ),
        (
            chat(
                json!([user("q"), {"role": "assistant", "tool_calls": [{"id": "c", "type": "custom", "custom": {"name": "f", "input": "x"}}]}]),
                json!({}),
            ),
            "messages[1].tool_calls[0].type",
        ),
        (
            chat(
                json!([user("q"), {"role": "assistant", "tool_calls": [{"type": "function", "function": {"name": "f"}}]}]),
                json!({}),
            ),
            "messages[1].tool_calls[0].id",
        ),
        (
            chat(
                json!([user("q"), {"role": "assistant", "tool_calls": {}}]),
                json!({}),
            ),
            "messages[1].tool_calls",
        ),
        (
            chat(
                json!([user("q"), {"role": "assistant", "function_call": {"name": "f", "arguments": "{}"}}]),
                json!({}),
            ),
            "messages[1].function_call",
        ),
        (
            chat(
                json!([user("q"), {"role": "assistant", "audio": {"id": "audio_1"}}]),
                json!({}),
            ),
            "messages[1].audio",
        ),
        (
            chat(
                json!([user("q"), {"role": "tool", "content": "x"}]),
                json!({}),
            ),
            "messages[1].tool_call_id",
        ),
        (chat(hi.clone(), json!({"n": 2})), "n"),
        (chat(hi.clone(), json!({"logprobs": true})), "logprobs"),
        (chat(hi.clone(), json!({"top_logprobs": 3})), "top_logprobs"),
        (
            chat(hi.clone(), json!({"modalities": ["text", "audio"]})),
            "modalities",
        ),
        (
            chat(
                hi.clone(),
                json!({"audio": {"voice": "alloy", "format": "wav"}}),
            ),
            "audio",
        ),
        (
            chat(hi.clone(), json!({"functions": [{"name": "f"}]})),
            "functions",
        ),
        (
            chat(hi.clone(), json!({"function_call": "auto"})),
            "function_call",
        ),
        (
            chat(hi.clone(), json!({"web_search_options": {}})),
            "web_search_options",
        ),
        (
            chat(
                hi.clone(),
                json!({"tools": [{"type": "custom", "custom": {"name": "x"}}]}),
            ),
            "tools[0].type",
        ),
        (
            chat(hi.clone(), json!({"tools": [{"type": "function"}]})),
            "tools[0].function",
        ),
        (
            chat(
                hi.clone(),
                json!({"tools": [{"type": "function", "function": {}}]}),
            ),
            "tools[0].function.name",
        ),
        (
            chat(
                hi.clone(),
                json!({"tools": [{"type": "function", "function": {"name": "f", "parameters": "x"}}]}),
            ),
            "tools[0].function.parameters",
        ),
        (
            chat(hi.clone(), json!({"tool_choice": "sometimes"})),
            "tool_choice",
        ),
        (
            chat(
                hi.clone(),
                json!({"tool_choice": {"type": "allowed_tools", "allowed_tools": {}}}),
            ),
            "tool_choice.type",
        ),
        (
            chat(hi.clone(), json!({"tool_choice": {"type": "function"}})),
            "tool_choice.function",
        ),
        (
            chat(hi.clone(), json!({"parallel_tool_calls": "no"})),
            "parallel_tool_calls",
        ),
        (
            chat(hi.clone(), json!({"response_format": {"type": "xml"}})),
            "response_format.type",
        ),
        (
            chat(
                hi.clone(),
                json!({"response_format": {"type": "json_schema"}}),
            ),
            "response_format.json_schema",
        ),
        (
            chat(hi.clone(), json!({"response_format": "json"})),
            "response_format",
        ),
        (
            chat(
                hi.clone(),
                json!({"response_format": {"type": "json_object"},
                                    "tools": [{"type": "function", "function": {"name": JSON_TOOL_NAME}}]}),
            ),
            "tools[0].function.name",
        ),
        (
            chat(hi.clone(), json!({"reasoning_effort": "max"})),
            "reasoning_effort",
        ),
        (
            chat(hi.clone(), json!({"temperature": "hot"})),
            "temperature",
        ),
        (chat(hi.clone(), json!({"stop": [1]})), "stop[0]"),
        (chat(hi.clone(), json!({"stop": 1})), "stop"),
        (chat(hi.clone(), json!({"max_tokens": -1})), "max_tokens"),
        (chat(hi.clone(), json!({"max_tokens": 1.5})), "max_tokens"),
        (
            chat(hi.clone(), json!({"max_completion_tokens": 0})),
            "max_completion_tokens",
        ),
        (chat(hi.clone(), json!({"stream": "yes"})), "stream"),
        (
            chat(hi.clone(), json!({"stream_options": {"include_usage": 1}})),
            "stream_options.include_usage",
        ),
        (chat(hi.clone(), json!({"user": 42})), "user"),
    ];
    for (input, param) in cases {
        match to_messages(&input) {
            Ok((body, _)) => panic!("expected an error at {param}, got {body}"),
            Err(e) => {
                assert_eq!(e.param.as_deref(), Some(param), "{e} for {input}");
                assert!(!e.message.is_empty());
            }
        }
    }
    for body in [&b"not json"[..], b"[]", b"\"x\"", b"{\"messages\": [", b""] {
        let e = chat_to_messages(body, MODEL).unwrap_err();
        assert_eq!(e.param, None, "{e}");
    }
}

#[test]
fn messages_to_chat_cases() {
    let hi = json!([user("hi")]);
    let hi_out = json!([{"role": "user", "content": "hi"}]);
    let weather = json!({"name": "weather", "description": "Weather for a city", "cache_control": {"type": "ephemeral"},
                         "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}});
    let weather_out = json!({"type": "function", "function": {"name": "weather", "description": "Weather for a city",
                             "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}});

    let cases: Vec<(&str, Value, Value)> = vec![
        (
            "system string and plain messages",
            messages(
                json!([user("hi"), {"role": "assistant", "content": "hello"}, user("bye")]),
                json!({"system": "Be brief."}),
            ),
            openai(
                json!([
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": "hi"},
                    {"role": "assistant", "content": "hello"},
                    {"role": "user", "content": "bye"},
                ]),
                json!({}),
            ),
        ),
        (
            "system blocks become text parts; cache_control is dropped",
            messages(
                hi.clone(),
                json!({"system": [{"type": "text", "text": "A", "cache_control": {"type": "ephemeral"}},
                                  {"type": "text", "text": "B"}]}),
            ),
            openai(
                json!([
                    {"role": "system", "content": [{"type": "text", "text": "A"}, {"type": "text", "text": "B"}]},
                    {"role": "user", "content": "hi"},
                ]),
                json!({}),
            ),
        ),
        (
            "images and PDF documents",
            messages(
                json!([{"role": "user", "content": [
                    {"type": "text", "text": "Compare"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
                    {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
                    {"type": "document", "title": "report.pdf", "source": {"type": "base64", "media_type": "application/pdf", "data": PDF}},
                    {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": PDF}},
                ]}]),
                json!({}),
            ),
            openai(
                json!([{"role": "user", "content": [
                    {"type": "text", "text": "Compare"},
                    {"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{PNG}")}},
                    {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
                    {"type": "file", "file": {"filename": "report.pdf", "file_data": format!("data:application/pdf;base64,{PDF}")}},
                    {"type": "file", "file": {"filename": "document.pdf", "file_data": format!("data:application/pdf;base64,{PDF}")}},
                ]}]),
                json!({}),
            ),
        ),
        (
            "tool use and results; thinking blocks dropped; results before the user's text",
            messages(
                json!([
                    user("Weather in Paris and Oslo?"),
                    {"role": "assistant", "content": [
                        {"type": "thinking", "thinking": "Two calls.", "signature": "sig"},
                        {"type": "text", "text": "Checking "},
                        {"type": "text", "text": "both.", "citations": null},
                        {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Paris"}},
                        {"type": "tool_use", "id": "toolu_2", "name": "weather", "input": {"city": "Oslo"}},
                    ]},
                    {"role": "user", "content": [
                        {"type": "text", "text": "Also tomorrow?"},
                        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"},
                        {"type": "tool_result", "tool_use_id": "toolu_2", "is_error": true,
                         "content": [{"type": "text", "text": "timeout"}, {"type": "text", "text": "retry later"}]},
                    ]},
                ]),
                json!({}),
            ),
            openai(
                json!([
                    {"role": "user", "content": "Weather in Paris and Oslo?"},
                    {"role": "assistant", "content": "Checking both.", "tool_calls": [
                        {"id": "toolu_1", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Paris\"}"}},
                        {"id": "toolu_2", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Oslo\"}"}},
                    ]},
                    {"role": "tool", "tool_call_id": "toolu_1", "content": "18C"},
                    {"role": "tool", "tool_call_id": "toolu_2", "content": "Error: timeout\nretry later"},
                    {"role": "user", "content": "Also tomorrow?"},
                ]),
                json!({}),
            ),
        ),
        (
            "tool calls without text have null content; a thinking-only message is dropped",
            messages(
                json!([
                    user("a"),
                    {"role": "assistant", "content": [{"type": "redacted_thinking", "data": "xx"}]},
                    user("time?"),
                    {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "clock", "input": {}}]},
                    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t"}]},
                ]),
                json!({}),
            ),
            openai(
                json!([
                    {"role": "user", "content": "a"},
                    {"role": "user", "content": "time?"},
                    {"role": "assistant", "content": null, "tool_calls": [
                        {"id": "t", "type": "function", "function": {"name": "clock", "arguments": "{}"}},
                    ]},
                    {"role": "tool", "tool_call_id": "t", "content": ""},
                ]),
                json!({}),
            ),
        ),
        (
            "sampling, stop sequences, user, stream; top_k, thinking, service_tier dropped",
            messages(
                hi.clone(),
                json!({"temperature": 0.4, "top_p": 0.9, "top_k": 40, "stop_sequences": ["END"],
                       "metadata": {"user_id": "u-1"}, "stream": true, "service_tier": "auto",
                       "thinking": {"type": "enabled", "budget_tokens": 2048}, "future": 1}),
            ),
            openai(
                hi_out.clone(),
                json!({"temperature": 0.4, "top_p": 0.9, "stop": ["END"], "user": "u-1", "stream": true,
                       "stream_options": {"include_usage": true}}),
            ),
        ),
        (
            "tools and tool_choice auto",
            messages(
                hi.clone(),
                json!({"tools": [weather, {"type": "custom", "name": "clock", "input_schema": {"type": "object"}}],
                       "tool_choice": {"type": "auto"}}),
            ),
            openai(
                hi_out.clone(),
                json!({"tools": [weather_out, {"type": "function", "function": {"name": "clock", "parameters": {"type": "object"}}}],
                       "tool_choice": "auto"}),
            ),
        ),
        (
            "tool_choice any with parallel use disabled",
            messages(
                hi.clone(),
                json!({"tools": [weather], "tool_choice": {"type": "any", "disable_parallel_tool_use": true}}),
            ),
            openai(
                hi_out.clone(),
                json!({"tools": [weather_out], "tool_choice": "required", "parallel_tool_calls": false}),
            ),
        ),
        (
            "tool_choice tool",
            messages(
                hi.clone(),
                json!({"tools": [weather], "tool_choice": {"type": "tool", "name": "weather"}}),
            ),
            openai(
                hi_out.clone(),
                json!({"tools": [weather_out], "tool_choice": {"type": "function", "function": {"name": "weather"}}}),
            ),
        ),
        (
            "tool_choice none",
            messages(
                hi.clone(),
                json!({"tools": [weather], "tool_choice": {"type": "none"}}),
            ),
            openai(
                hi_out.clone(),
                json!({"tools": [weather_out], "tool_choice": "none"}),
            ),
        ),
        (
            "tool_choice without tools is dropped",
            messages(hi.clone(), json!({"tool_choice": {"type": "auto"}})),
            openai(hi_out.clone(), json!({})),
        ),
        (
            "structured output format",
            messages(
                hi.clone(),
                json!({"output_config": {"format": {"type": "json_schema", "schema": {"type": "object"}}, "effort": "low"}}),
            ),
            openai(
                hi_out.clone(),
                json!({"response_format": {"type": "json_schema", "json_schema": {"name": "response", "schema": {"type": "object"}}}}),
            ),
        ),
    ];

    for (name, input, expected) in cases {
        match to_chat(&input) {
            Ok((body, _)) => assert_eq!(body, expected, "case: {name}"),
            Err(e) => panic!("case {name}: unexpected error {e}"),
        }
    }
    let (_, out) = to_chat(&messages(json!([user("hi")]), json!({"stream": true}))).unwrap();
    assert!(out.stream);
    let (_, out) = to_chat(&messages(json!([user("hi")]), json!({}))).unwrap();
    assert!(!out.stream);
}

#[test]
fn messages_to_chat_errors() {
    let hi = json!([user("hi")]);
    let user_blocks = |blocks: Value| json!([{"role": "user", "content": blocks}]);
    let cases: Vec<(Value, &str)> = vec![
        (json!({"model": "m", "max_tokens": 1}), "messages"),
        (messages(json!([]), json!({})), "messages"),
        (messages(json!([1]), json!({})), "messages[0]"),
        (
            messages(json!([{"role": "system", "content": "x"}]), json!({})),
            "messages[0].role",
        ),
        (
            messages(
                json!([user("q"), {"role": "assistant", "content": "{"}]),
                json!({}),
            ),
            "messages[1]",
        ),
        (
            messages(json!([{"role": "user", "content": 3}]), json!({})),
            "messages[0].content",
        ),
        (
            messages(json!([{"role": "user"}]), json!({})),
            "messages[0].content",
        ),
        (
            messages(
                user_blocks(json!([{"type": "image", "source": {"type": "file", "file_id": "f"}}])),
                json!({}),
            ),
            "messages[0].content[0].source.type",
        ),
        (
            messages(
                user_blocks(json!([{"type": "image", "source": {"type": "base64", "data": "x"}}])),
                json!({}),
            ),
            "messages[0].content[0].source.media_type",
        ),
        (
            messages(
                user_blocks(
                    json!([{"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "x"}}]),
                ),
                json!({}),
            ),
            "messages[0].content[0].source",
        ),
        (
            messages(
                user_blocks(json!([{"type": "tool_result", "tool_use_id": "t",
                "content": [{"type": "image", "source": {"type": "url", "url": "https://x"}}]}])),
                json!({}),
            ),
            "messages[0].content[0].content[0].type",
        ),
        (
            messages(
                user_blocks(json!([{"type": "tool_result", "content": "x"}])),
                json!({}),
            ),
            "messages[0].content[0].tool_use_id",
        ),
        (
            messages(
                user_blocks(
                    json!([{"type": "search_result", "source": "s", "title": "t", "content": []}]),
                ),
                json!({}),
            ),
            "messages[0].content[0].type",
        ),
        (
            messages(user_blocks(json!([{"text": "no type"}])), json!({})),
            "messages[0].content[0].type",
        ),
        (
            messages(
                json!([user("q"), {"role": "assistant", "content": [{"type": "server_tool_use", "id": "s", "name": "web_search", "input": {}}]}, user("r")]),
                json!({}),
            ),
            "messages[1].content[0].type",
        ),
        (
            messages(
                json!([user("q"), {"role": "assistant", "content": [{"type": "tool_use", "name": "f", "input": {}}]}, user("r")]),
                json!({}),
            ),
            "messages[1].content[0].id",
        ),
        (
            messages(
                hi.clone(),
                json!({"tools": [{"type": "web_search_20250305", "name": "web_search"}]}),
            ),
            "tools[0].type",
        ),
        (
            messages(hi.clone(), json!({"tools": [{"input_schema": {}}]})),
            "tools[0].name",
        ),
        (messages(hi.clone(), json!({"tools": {}})), "tools"),
        (
            messages(
                hi.clone(),
                json!({"mcp_servers": [{"type": "url", "url": "https://x", "name": "m"}]}),
            ),
            "mcp_servers",
        ),
        (
            messages(hi.clone(), json!({"container": "container_1"})),
            "container",
        ),
        (
            messages(hi.clone(), json!({"tool_choice": {"type": "maybe"}})),
            "tool_choice.type",
        ),
        (
            messages(hi.clone(), json!({"tool_choice": {"type": "tool"}})),
            "tool_choice.name",
        ),
        (
            messages(hi.clone(), json!({"system": [{"type": "image"}]})),
            "system[0].type",
        ),
        (messages(hi.clone(), json!({"system": 1})), "system"),
        (
            messages(hi.clone(), json!({"stop_sequences": [1]})),
            "stop_sequences[0]",
        ),
        (
            messages(hi.clone(), json!({"metadata": {"user_id": 5}})),
            "metadata.user_id",
        ),
        (
            messages(hi.clone(), json!({"max_tokens": "many"})),
            "max_tokens",
        ),
        (
            messages(hi.clone(), json!({"temperature": []})),
            "temperature",
        ),
        (
            messages(hi.clone(), json!({"output_format": {"type": "xml"}})),
            "output_format.type",
        ),
        (
            messages(
                hi.clone(),
                json!({"output_config": {"format": {"type": "json_schema"}}}),
            ),
            "output_config.format.schema",
        ),
    ];
    for (input, param) in cases {
        match to_chat(&input) {
            Ok((body, _)) => panic!("expected an error at {param}, got {body}"),
            Err(e) => {
                assert_eq!(e.param.as_deref(), Some(param), "{e} for {input}");
                assert!(!e.message.is_empty());
            }
        }
    }
    for body in [&b"nope"[..], b"[1]", b"null", b"{\"messages\": [{", b""] {
        let e = messages_to_chat(body, "gpt").unwrap_err();
        assert_eq!(e.param, None, "{e}");
    }
}

#[test]
fn openai_round_trip_keeps_the_conversation() {
    let original_messages = json!([
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [
            {"type": "text", "text": "What is in this picture, and the weather there?"},
            {"type": "image_url", "image_url": {"url": format!("data:image/jpeg;base64,{PNG}")}},
            {"type": "image_url", "image_url": {"url": "https://example.com/b.png"}},
        ]},
        {"role": "assistant", "content": "A harbour. Checking.", "tool_calls": [
            {"id": "call_a", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Bergen\",\"days\":2}"}},
            {"id": "call_b", "type": "function", "function": {"name": "tide", "arguments": "{}"}},
        ]},
        {"role": "tool", "tool_call_id": "call_a", "content": "Rain"},
        {"role": "tool", "tool_call_id": "call_b", "content": "High at 14:00"},
        {"role": "assistant", "content": "Rainy, high tide at 14:00."},
        {"role": "user", "content": "Thanks"},
    ]);
    let tools = json!([{"type": "function", "function": {"name": "weather", "description": "Weather",
                        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]);
    let original = chat(
        original_messages.clone(),
        json!({"stop": ["END", "STOP"], "user": "u-7", "max_tokens": 500, "temperature": 0.5,
               "tools": tools, "tool_choice": "auto"}),
    );
    let (anthropic_body, _) = to_messages(&original).unwrap();
    let (back, _) = to_chat(&anthropic_body).unwrap();
    assert_eq!(
        back,
        json!({"model": "gpt-upstream", "messages": original_messages, "stop": ["END", "STOP"], "user": "u-7",
               "max_tokens": 500, "temperature": 0.5, "tools": tools, "tool_choice": "auto"})
    );
}

#[test]
fn anthropic_round_trip_keeps_the_conversation() {
    let original_messages = json!([
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": [
            {"type": "text", "text": "Checking."},
            {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Oslo"}},
        ]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": "9C"},
            {"type": "text", "text": "And?"},
        ]},
    ]);
    let original = messages(
        original_messages.clone(),
        json!({"system": "Be brief.", "stop_sequences": ["END"], "metadata": {"user_id": "u"},
               "tools": [{"name": "weather", "input_schema": {"type": "object"}}],
               "tool_choice": {"type": "any", "disable_parallel_tool_use": true}}),
    );
    let (chat_body, _) = to_chat(&original).unwrap();
    let (back, _) = to_messages(&chat_body).unwrap();
    assert_eq!(
        back,
        json!({"model": MODEL, "max_tokens": 100, "messages": original_messages, "system": "Be brief.",
               "stop_sequences": ["END"], "metadata": {"user_id": "u"},
               "tools": [{"name": "weather", "input_schema": {"type": "object"}}],
               "tool_choice": {"type": "any", "disable_parallel_tool_use": true}})
    );
}

/// Every path in `v`, as JSON pointers.
fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
    match v {
        Value::Object(o) => {
            for (k, child) in o {
                pointers(child, format!("{at}/{k}"), out);
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                pointers(child, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
    out.push(at);
}

/// Replaces every value of `doc` in turn by values of odd types, and cuts the document short at
/// every byte: translation must answer with a result, never panic.
fn never_panics(doc: &Value, translate: fn(&[u8]) -> bool) {
    let odd = [
        json!(null),
        json!(true),
        json!(-1),
        json!(1.5),
        json!(1e300),
        json!(18446744073709551615u64),
        json!(""),
        json!("data:"),
        json!("data:image/png;base64"),
        json!([]),
        json!([null]),
        json!({}),
        json!({"type": "text"}),
    ];
    let mut paths = Vec::new();
    pointers(doc, String::new(), &mut paths);
    let mut translated = 0;
    for path in &paths {
        for value in &odd {
            let mut mutated = doc.clone();
            if let Some(slot) = mutated.pointer_mut(path) {
                *slot = value.clone();
            }
            translated += usize::from(translate(&serde_json::to_vec(&mutated).unwrap()));
        }
    }
    assert!(translated > 0);
    let bytes = serde_json::to_vec(doc).unwrap();
    for end in 0..bytes.len() {
        assert!(!translate(&bytes[..end]), "a truncated document translated");
    }
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(!translate(deep.as_bytes()));
    assert!(!translate(&[0xff, 0xfe, b'{']));
}

#[test]
fn chat_to_messages_never_panics() {
    let doc = chat(
        json!([
            {"role": "system", "content": [{"type": "text", "text": "S"}]},
            {"role": "user", "content": [
                {"type": "text", "text": "t"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}},
                {"type": "file", "file": {"filename": "f.pdf", "file_data": "data:application/pdf;base64,AA=="}},
            ]},
            {"role": "assistant", "content": "c", "refusal": null, "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{\"a\":1}"}},
            ]},
            {"role": "tool", "tool_call_id": "c1", "content": [{"type": "text", "text": "r"}]},
        ]),
        json!({"max_tokens": 10, "temperature": 1.5, "top_p": 0.99, "stop": ["x"], "stream": true,
               "stream_options": {"include_usage": true}, "user": "u",
               "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
               "tool_choice": {"type": "function", "function": {"name": "f"}}, "parallel_tool_calls": false,
               "response_format": {"type": "json_schema", "json_schema": {"name": "n", "schema": {}}},
               "reasoning_effort": "high", "n": 1}),
    );
    never_panics(&doc, |b| chat_to_messages(b, MODEL).is_ok());
}

#[test]
fn messages_to_chat_never_panics() {
    let doc = messages(
        json!([
            {"role": "user", "content": [
                {"type": "text", "text": "t"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AA=="}},
                {"type": "document", "title": "d", "source": {"type": "base64", "media_type": "application/pdf", "data": "AA=="}},
            ]},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "x", "signature": "s"},
                {"type": "text", "text": "c"},
                {"type": "tool_use", "id": "t1", "name": "f", "input": {"a": 1}},
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "t1", "is_error": true, "content": [{"type": "text", "text": "r"}]},
            ]},
        ]),
        json!({"system": [{"type": "text", "text": "S"}], "temperature": 0.5, "top_p": 0.9,
               "stop_sequences": ["x"], "stream": true, "metadata": {"user_id": "u"},
               "tools": [{"name": "f", "input_schema": {"type": "object"}}],
               "tool_choice": {"type": "tool", "name": "f", "disable_parallel_tool_use": true},
               "output_config": {"format": {"type": "json_schema", "schema": {}}}}),
    );
    never_panics(&doc, |b| messages_to_chat(b, "gpt").is_ok());
}

#[test]
fn provider_options_for_anthropic_reach_the_body() {
    let req = chat(
        json!([user("hi")]),
        json!({
            "temperature": 0.5,
            "provider_options": {
                "anthropic": {"top_k": 5, "temperature": null, "model": "sneaky", "stream": true},
                "gemini": {"safetySettings": []}
            }
        }),
    );
    let (body, out) = to_messages(&req).unwrap();
    let want = anthropic(json!([user("hi")]), json!({"top_k": 5, "stream": false}));
    assert_eq!(
        body, want,
        "merged as a patch; model and stream stay the gateway's"
    );
    assert!(!out.stream);
}

#[test]
fn provider_options_with_an_unknown_type_are_rejected() {
    let req = chat(
        json!([user("hi")]),
        json!({"provider_options": {"anthropik": {"top_k": 5}}}),
    );
    let err = to_messages(&req).unwrap_err();
    assert_eq!(err.param.as_deref(), Some("provider_options.anthropik"));
}

#[test]
fn provider_options_for_openai_reach_the_translated_chat_body() {
    let req = messages(
        json!([user("hi")]),
        json!({"provider_options": {"openai": {"service_tier": "flex"}, "anthropic": {"top_k": 1}}}),
    );
    let (body, _) = to_chat(&req).unwrap();
    assert_eq!(body["service_tier"], "flex");
    assert!(
        body.get("top_k").is_none() && body.get("provider_options").is_none(),
        "{body}"
    );
}
