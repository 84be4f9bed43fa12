use super::*;

/// A stand-in tokenizer for the structure tests: one token per whitespace-separated word.
fn words(s: &str) -> usize {
    s.split_whitespace().count()
}

fn chat_count(body: &str) -> u64 {
    segments(Operation::ChatCompletions, body.as_bytes())
        .unwrap()
        .count(words)
}

#[test]
fn model_names_map_to_their_encoding() {
    use Encoding::{Cl100kBase as Cl, O200kBase as O};
    for (model, want) in [
        ("gpt-4o", Some(O)),
        ("gpt-4o-mini", Some(O)),
        ("gpt-4o-mini-2024-07-18", Some(O)),
        ("GPT-4o", Some(O)),
        ("openai/gpt-4o", Some(O)),
        ("openrouter/openai/gpt-4.1-mini", Some(O)),
        ("chatgpt-4o-latest", Some(O)),
        ("gpt-4.1", Some(O)),
        ("gpt-4.1-nano-2025-04-14", Some(O)),
        ("gpt-4.5-preview", Some(O)),
        ("gpt-5", Some(O)),
        ("gpt-5-mini", Some(O)),
        ("gpt-5.1", Some(O)),
        ("gpt-5.1-codex", Some(O)),
        ("o1", Some(O)),
        ("o1-mini", Some(O)),
        ("o3-pro-2025-06-10", Some(O)),
        ("o4-mini", Some(O)),
        ("gpt-oss-120b", Some(O)),
        ("openai.gpt-oss-20b-1:0", Some(O)),
        ("accounts/fireworks/models/gpt-oss-20b", Some(O)),
        ("ft:gpt-4o-mini-2024-07-18:acme::abc123", Some(O)),
        ("ft:gpt-4o-mini:acme:x", Some(O)),
        ("gpt-4", Some(Cl)),
        ("gpt-4-0613", Some(Cl)),
        ("gpt-4-turbo-2024-04-09", Some(Cl)),
        ("gpt-4-32k", Some(Cl)),
        ("gpt-3.5-turbo", Some(Cl)),
        ("gpt-3.5-turbo-instruct", Some(Cl)),
        ("gpt-35-turbo", Some(Cl)),
        ("ft:gpt-3.5-turbo-0125:acme::x", Some(Cl)),
        ("text-embedding-3-small", Some(Cl)),
        ("text-embedding-3-large", Some(Cl)),
        ("text-embedding-ada-002", Some(Cl)),
        ("davinci-002", Some(Cl)),
        // Not OpenAI's, or not a family member: the estimate.
        ("claude-sonnet-4-5", None),
        ("anthropic.claude-3-5-haiku-20241022-v1:0", None),
        ("gemini-2.5-flash", None),
        ("models/gemini-2.5-pro", None),
        ("mistral-large-latest", None),
        ("llama-3.3-70b-versatile", None),
        ("deepseek-chat", None),
        ("mock-gpt", None),
        ("gpt-40", None),
        ("o1x", None),
        ("o5", None),
        ("gpt-4.2", None),
        ("text-davinci-003", None),
        ("", None),
    ] {
        assert_eq!(encoding_for_model(model), want, "{model}");
    }
}

#[test]
fn chat_counts_openai_framing() {
    // 3 per message + role + content, 3 to prime the reply.
    let body = r#"{"model":"m","messages":[
        {"role":"system","content":"You are terse"},
        {"role":"user","content":"Hi there"}]}"#;
    assert_eq!(chat_count(body), 3 + 1 + 3 + 3 + 1 + 2 + 3);
    // A name costs its text and one token more.
    let body = r#"{"messages":[{"role":"user","name":"alice","content":"Hi"}]}"#;
    assert_eq!(chat_count(body), 3 + 1 + (1 + 1) + 1 + 3);
}

#[test]
fn chat_counts_parts_images_tool_calls_and_definitions() {
    let body = r#"{"messages":[
        {"role":"user","content":[
            {"type":"text","text":"what is this"},
            {"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA","detail":"low"}},
            {"type":"image_url","image_url":{"url":"https://x/y.png"}}]},
        {"role":"assistant","content":null,"tool_calls":[
            {"id":"c1","type":"function","function":{"name":"look","arguments":"{\"deep\": true}"}}]},
        {"role":"tool","tool_call_id":"c1","content":"a cat"}],
        "tools":[{"type":"function","function":{"name":"look"}}]}"#;
    let s = segments(Operation::ChatCompletions, body.as_bytes()).unwrap();
    let expect_fixed = 3 + 3 * 3 + IMAGE_TOKENS_LOW + IMAGE_TOKENS;
    assert_eq!(s.fixed(), expect_fixed);
    // user, "what is this" (3), assistant, look, {"deep": true} (2), tool, "a cat" (2), the
    // tools' JSON (1 word: no whitespace in it).
    assert_eq!(s.count(words), expect_fixed + 1 + 3 + 1 + 1 + 2 + 1 + 2 + 1);
}

#[test]
fn escaped_text_is_counted_unescaped() {
    let body = r#"{"messages":[{"role":"user","content":"a\nb \u00e9"}]}"#;
    let s = segments(Operation::ChatCompletions, body.as_bytes()).unwrap();
    assert_eq!(s.text_bytes(), "user".len() + "a\nb é".len());
}

#[test]
fn other_operations_have_their_segments() {
    let count = |op, body: &str| segments(op, body.as_bytes()).map(|s| s.count(words));
    // Embeddings and completions: the text, or the token ids themselves; no framing.
    assert_eq!(
        count(Operation::Embeddings, r#"{"input":"one two"}"#),
        Some(2)
    );
    assert_eq!(
        count(Operation::Embeddings, r#"{"input":["one two","three"]}"#),
        Some(3)
    );
    assert_eq!(
        count(Operation::Embeddings, r#"{"input":[[1,2,3],[4]]}"#),
        Some(4)
    );
    assert_eq!(
        count(Operation::Completions, r#"{"prompt":[5,6,7]}"#),
        Some(3)
    );
    assert_eq!(count(Operation::Completions, r#"{"model":"m"}"#), Some(0));
    // Anthropic Messages, counted as the chat it becomes.
    assert_eq!(
        count(
            Operation::Messages,
            r#"{"system":"be brief","messages":[{"role":"user","content":[{"type":"text","text":"hi you"}]}]}"#
        ),
        Some(3 + (3 + 1 + 2) + (3 + 1 + 2))
    );
    // The Responses API: instructions, a string input, message items, function calls.
    assert_eq!(
        count(
            Operation::Responses,
            r#"{"instructions":"be brief","input":"hi you"}"#
        ),
        Some(3 + (3 + 1 + 2) + (3 + 1 + 2))
    );
    assert_eq!(
        count(
            Operation::Responses,
            r#"{"input":[{"role":"user","content":[{"type":"input_text","text":"hi"}]},
                {"type":"function_call","name":"f","arguments":"{}"},
                {"type":"function_call_output","call_id":"c","output":"done now"}]}"#
        ),
        Some(3 + (3 + 1 + 1) + 2 + 2)
    );
    assert_eq!(count(Operation::Passthrough, "{}"), None);
    // A body of the wrong shape keeps the estimate.
    assert_eq!(count(Operation::ChatCompletions, r#"{"messages":3}"#), None);
}

#[test]
fn close_windows_are_the_undecided_ones() {
    // With the estimate within a factor of two of the truth, a window between half and double
    // what the request needs cannot be decided on the estimate.
    let f = |prompt_tokens, max_tokens| Features {
        prompt_tokens,
        max_tokens,
        ..Features::default()
    };
    assert!(close(1000, &f(1000, None)));
    assert!(close(1000, &f(600, Some(100))));
    assert!(close(1000, &f(1800, Some(100))));
    assert!(!close(1000, &f(400, Some(100))));
    assert!(!close(1000, &f(2000, Some(100))));
    assert!(!close(1000, &f(10, Some(2000))));
}

#[cfg(feature = "tokenizer")]
mod real {
    use super::*;

    async fn counter(enc: Encoding) -> &'static bpe::Bpe {
        let b = bpe::get(enc).await.unwrap();
        assert!(bpe::is_loaded(enc));
        b
    }

    /// Known counts, from OpenAI's tiktoken: "hello world" is [15339, 1917] in cl100k_base and
    /// [24912, 2375] in o200k_base; "tiktoken is great!" and "antidisestablishmentarianism"
    /// are OpenAI's cookbook examples (6 tokens each in both), as is "お誕生日おめでとう" (9
    /// tokens in cl100k_base, 8 in o200k_base, whose larger vocabulary covers more scripts).
    #[tokio::test]
    async fn known_strings_have_known_counts() {
        let cl = counter(Encoding::Cl100kBase).await;
        let o = counter(Encoding::O200kBase).await;
        for (text, in_cl, in_o) in [
            ("hello world", 2, 2),
            ("tiktoken is great!", 6, 6),
            ("antidisestablishmentarianism", 6, 6),
            ("お誕生日おめでとう", 9, 8),
            ("Ünïcödé façade — naïve café", 13, 10),
            ("Привет, мир!", 7, 5),
            ("🎉👩\u{200d}💻", 10, 7),
            ("2 + 2 = 4", 7, 7),
            ("What's the weather in Paris?", 7, 6),
            ("fn main() {\n    println!(\"Hello, world!\");\n}\n", 12, 12),
            // A special token's spelling in a prompt is ordinary text.
            ("<|endoftext|>", 7, 7),
            ("", 0, 0),
        ] {
            assert_eq!(cl.count(text), in_cl, "cl100k_base: {text:?}");
            assert_eq!(o.count(text), in_o, "o200k_base: {text:?}");
        }
    }

    /// "The quick brown fox jumps over the lazy dog." is 10 tokens in both encodings, and each
    /// repetition after the first is still 10 (" The" takes its space along); the trailing
    /// space is one more. 45,000 bytes: counted on the blocking pool, not inline.
    #[tokio::test]
    async fn long_text_is_counted_off_the_runtime() {
        let text = "The quick brown fox jumps over the lazy dog. ".repeat(1000);
        assert!(text.len() > INLINE_BYTES);
        let body = serde_json::json!({"model": "m", "input": text}).to_string();
        for enc in [Encoding::Cl100kBase, Encoding::O200kBase] {
            assert_eq!(
                count(enc, Operation::Embeddings, body.as_bytes()).await,
                Some(10_001)
            );
        }
        let chat = serde_json::json!({"messages": [{"role": "user", "content": text}]});
        assert_eq!(
            count(
                Encoding::O200kBase,
                Operation::ChatCompletions,
                chat.to_string().as_bytes()
            )
            .await,
            Some(3 + 1 + 10_001 + 3)
        );
    }

    #[tokio::test]
    async fn prompts_over_the_bound_keep_the_estimate() {
        let text = "a ".repeat(MAX_EXACT_BYTES / 2 + 1);
        let body = serde_json::json!({"input": text}).to_string();
        assert_eq!(
            count(Encoding::Cl100kBase, Operation::Embeddings, body.as_bytes()).await,
            None
        );
    }

    /// OpenAI's usage for this conversation is 19 prompt tokens (gpt-3.5-turbo, gpt-4,
    /// gpt-4o): 3 + "system" (1) + "You are a helpful assistant." (6), 3 + "user" (1) +
    /// "Hello!" (2), and 3 to prime the reply.
    #[tokio::test]
    async fn chat_prompt_matches_openai_usage() {
        let body = r#"{"model":"gpt-4o","messages":[
            {"role":"system","content":"You are a helpful assistant."},
            {"role":"user","content":"Hello!"}]}"#;
        for enc in [Encoding::Cl100kBase, Encoding::O200kBase] {
            assert_eq!(
                count(enc, Operation::ChatCompletions, body.as_bytes()).await,
                Some(19)
            );
        }
        // With a name: "alice" is one token, plus one for the name.
        let body = r#"{"messages":[{"role":"user","name":"alice","content":"Hello!"}]}"#;
        assert_eq!(
            count(
                Encoding::O200kBase,
                Operation::ChatCompletions,
                body.as_bytes()
            )
            .await,
            Some(3 + 1 + 1 + 1 + 2 + 3)
        );
    }

    /// Many requests waiting for the first load all get the encoder, and it is built once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_first_uses_share_one_load() {
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                tokio::spawn(async {
                    bpe::get(Encoding::Cl100kBase)
                        .await
                        .map(|b| b as *const _ as usize)
                })
            })
            .collect();
        let mut seen = std::collections::HashSet::new();
        for t in tasks {
            seen.insert(t.await.unwrap().unwrap());
        }
        assert_eq!(seen.len(), 1);
    }
}
