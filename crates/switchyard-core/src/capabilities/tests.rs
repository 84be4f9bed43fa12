use serde_json::json;

use super::*;

fn chat_body(extra: Value) -> Vec<u8> {
    let mut req = json!({"model": "a", "messages": [{"role": "user", "content": "hi"}]});
    if let (Some(r), Value::Object(e)) = (req.as_object_mut(), extra) {
        r.extend(e);
    }
    serde_json::to_vec(&req).unwrap()
}

fn run(caps: &Capabilities, op: Operation, needs: Needs, body: &[u8]) -> Result<(), String> {
    check(caps, op, &needs, body, &|| "The model `a`".to_owned()).map_err(|e| match e {
        GatewayError::Unsupported { param, code, .. } => format!("{param}/{code}"),
        other => format!("unexpected {other:?}"),
    })
}

#[test]
fn builtin_lookup_takes_the_longest_prefix_and_strips_decorations() {
    assert_eq!(
        builtin("gpt-4o-mini-2024-07-18").unwrap().max_output,
        Some(16_384)
    );
    assert_eq!(
        builtin("gpt-4.1-nano").unwrap().context_window,
        Some(1_047_576)
    );
    assert_eq!(builtin("o1-mini").unwrap().tools, Some(false));
    assert_eq!(builtin("o1-2024-12-17").unwrap().tools, Some(true));
    assert_eq!(
        builtin("models/gemini-2.5-flash").unwrap().max_output,
        Some(65_536)
    );
    let bedrock = builtin("us.anthropic.claude-3-5-haiku-20241022-v1:0").unwrap();
    assert_eq!(bedrock.max_output, Some(8_192));
    assert_eq!(
        builtin("amazon.nova-micro-v1:0").unwrap().vision,
        Some(false)
    );
    assert_eq!(
        builtin("claude-sonnet-4-5-20250929")
            .unwrap()
            .context_window,
        None
    );
    assert_eq!(
        builtin("GPT-4O").unwrap().tools,
        Some(true),
        "case-insensitive"
    );
    assert_eq!(builtin("my-finetune"), None);
    assert_eq!(builtin("llama3.1:8b"), None);
}

#[test]
fn config_entries_overlay_builtins_most_specific_first() {
    let mut o = HashMap::new();
    o.insert(
        "gpt-4o".to_owned(),
        Capabilities {
            tools: Some(false),
            ..Default::default()
        },
    );
    o.insert(
        "local/gpt-4o".to_owned(),
        Capabilities {
            max_output: Some(1_000),
            ..Default::default()
        },
    );
    let table = CapabilityTable::new(o);
    let openai = table.get("openai", "gpt-4o");
    assert_eq!(
        (openai.tools, openai.max_output),
        (Some(false), Some(16_384))
    );
    let local = table.get("local", "gpt-4o");
    assert_eq!((local.tools, local.max_output), (Some(true), Some(1_000)));
    assert_eq!(table.get("x", "unknown-model"), Capabilities::default());
}

#[test]
fn an_unknown_model_is_never_refused() {
    let body = chat_body(json!({"tools": [], "response_format": {"type": "json_schema"}}));
    let needs = Needs {
        stream: true,
        tools: true,
        max_output: Some((1_000_000, "max_tokens")),
    };
    assert_eq!(
        run(
            &Capabilities::default(),
            Operation::ChatCompletions,
            needs,
            &body
        ),
        Ok(())
    );
}

#[test]
fn refuses_what_the_record_says_is_missing_naming_the_field() {
    let no = Capabilities {
        tools: Some(false),
        vision: Some(false),
        json_schema: Some(false),
        streaming: Some(false),
        max_output: Some(100),
        context_window: None,
    };
    let chat = Operation::ChatCompletions;
    let plain = chat_body(json!({}));
    let stream = Needs {
        stream: true,
        ..Default::default()
    };
    assert_eq!(
        run(&no, chat, stream, &plain),
        Err("stream/unsupported_capability".into())
    );
    let tools = Needs {
        tools: true,
        ..Default::default()
    };
    assert_eq!(
        run(&no, chat, tools, &plain),
        Err("tools/unsupported_capability".into())
    );
    let long = Needs {
        max_output: Some((101, "max_completion_tokens")),
        ..Default::default()
    };
    assert_eq!(
        run(&no, chat, long, &plain),
        Err("max_completion_tokens/invalid_value".into())
    );
    let exact = Needs {
        max_output: Some((100, "max_tokens")),
        ..Default::default()
    };
    assert_eq!(run(&no, chat, exact, &plain), Ok(()));

    let image = serde_json::to_vec(&json!({"model": "a", "messages": [
        {"role": "user", "content": "hi"},
        {"role": "user", "content": [
            {"type": "text", "text": "what is this"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
        ]}
    ]}))
    .unwrap();
    assert_eq!(
        run(&no, chat, Needs::default(), &image),
        Err("messages[1].content[1]/unsupported_capability".into())
    );
    let schema = chat_body(json!({"response_format": {"type": "json_schema", "json_schema": {}}}));
    assert_eq!(
        run(&no, chat, Needs::default(), &schema),
        Err("response_format/unsupported_capability".into())
    );
    let json_object = chat_body(json!({"response_format": {"type": "json_object"}}));
    assert_eq!(run(&no, chat, Needs::default(), &json_object), Ok(()));

    let anthropic_image = serde_json::to_vec(&json!({"model": "a", "max_tokens": 5, "messages": [
        {"role": "user", "content": [{"type": "image", "source": {"type": "url", "url": "u"}}]}
    ]}))
    .unwrap();
    assert_eq!(
        run(&no, Operation::Messages, Needs::default(), &anthropic_image),
        Err("messages[0].content[0]/unsupported_capability".into())
    );
}

#[test]
fn context_window_refuses_only_prompts_that_certainly_do_not_fit() {
    let small = Capabilities {
        context_window: Some(1_000),
        ..Default::default()
    };
    let chat = Operation::ChatCompletions;
    // 4,000 bytes of text: at least 500 tokens by the lower bound, likely about 1,000.
    let text = "word ".repeat(800);
    let body =
        serde_json::to_vec(&json!({"model": "a", "messages": [{"role": "user", "content": text}]}))
            .unwrap();
    assert_eq!(run(&small, chat, Needs::default(), &body), Ok(()));
    let needs = Needs {
        max_output: Some((600, "max_tokens")),
        ..Default::default()
    };
    assert_eq!(
        run(&small, chat, needs, &body),
        Err("messages/context_length_exceeded".into())
    );
    // A big image does not count as prompt text.
    let image = format!("data:image/png;base64,{}", "A".repeat(100_000));
    let body = serde_json::to_vec(
        &json!({"model": "a", "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": image}}
        ]}]}),
    )
    .unwrap();
    assert_eq!(run(&small, chat, Needs::default(), &body), Ok(()));
    // Anthropic's system prompt counts.
    let body = serde_json::to_vec(
        &json!({"model": "a", "max_tokens": 10, "system": "s".repeat(9_000),
        "messages": [{"role": "user", "content": "hi"}]}),
    )
    .unwrap();
    assert_eq!(
        run(&small, Operation::Messages, Needs::default(), &body),
        Err("messages/context_length_exceeded".into())
    );
}

#[test]
fn embeddings_are_not_checked() {
    let no = Capabilities {
        streaming: Some(false),
        ..Default::default()
    };
    let needs = Needs {
        stream: true,
        ..Default::default()
    };
    assert_eq!(run(&no, Operation::Embeddings, needs, b"{}"), Ok(()));
}
