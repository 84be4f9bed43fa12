use super::*;

fn chat(body: &str) -> Result<(), String> {
    let req: ChatCompletionRequest<'_> = serde_json::from_str(body).map_err(|e| e.to_string())?;
    req.validate().map_err(|e| e.param)
}

#[test]
fn accepts_unknown_roles_fields_and_content_parts() {
    chat(r#"{"model":"m","messages":[{"role":"developer","content":"x"},{"role":"user","content":[{"type":"text","text":"hi"}]},{"role":"assistant","content":null,"tool_calls":[]}],"new_param":{"a":1}}"#).unwrap();
}

#[test]
fn rejects_bad_shapes_with_the_field_path() {
    assert_eq!(
        chat(r#"{"model":"m","messages":[]}"#),
        Err("messages".into())
    );
    assert_eq!(
        chat(r#"{"model":"m","messages":[{"role":"user","content":5}]}"#),
        Err("messages[0].content".into())
    );
    assert_eq!(
        chat(r#"{"model":"","messages":[{"role":"user"}]}"#),
        Err("model".into())
    );
    assert_eq!(
        chat(r#"{"model":"m","messages":[{"role":"user"}],"n":0}"#),
        Err("n".into())
    );
    assert_eq!(
        chat(r#"{"model":"m","messages":[{"role":"user"}],"tools":[{"type":"function"}]}"#),
        Err("tools[0].function".into())
    );
    assert!(chat(r#"{"model":"m","messages":[{"role":3}]}"#)
        .unwrap_err()
        .contains("invalid type"));
    assert!(
        chat(r#"{"model":"m","messages":[{"role":"user"}],"stream":"yes"}"#)
            .unwrap_err()
            .contains("invalid type")
    );
    assert!(chat(r#"{"messages":[{"role":"user"}]}"#)
        .unwrap_err()
        .contains("missing field `model`"));
}

#[test]
fn embeddings_input_shapes() {
    let ok = |b: &str| {
        serde_json::from_str::<EmbeddingsRequest<'_>>(b)
            .unwrap()
            .validate()
    };
    assert!(ok(r#"{"model":"e","input":"x"}"#).is_ok());
    assert!(ok(r#"{"model":"e","input":["a","b"]}"#).is_ok());
    assert!(ok(r#"{"model":"e","input":[[1,2],[3]]}"#).is_ok());
    assert_eq!(
        ok(r#"{"model":"e","input":[ ]}"#).unwrap_err().param,
        "input"
    );
    assert_eq!(ok(r#"{"model":"e","input":7}"#).unwrap_err().param, "input");
}

#[test]
fn error_body_detection() {
    assert!(is_error_body(
        br#"{"error":{"message":"bad","type":"x","param":null,"code":null}}"#
    ));
    assert!(!is_error_body(b"<html>502</html>"));
    assert!(!is_error_body(br#"{"error":"flat string"}"#));
}

#[test]
fn usage_extraction() {
    let doc = br#"{"id":"x","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7,"prompt_tokens_details":{"cached_tokens":2}}}"#;
    assert_eq!(
        usage_of(doc),
        Some(Usage {
            prompt_tokens: 3,
            completion_tokens: 4,
            total_tokens: 7,
            cached_tokens: 2,
            cache_write_tokens: 0,
        })
    );
    assert_eq!(usage_of(br#"{"usage":null}"#), None);
    assert_eq!(usage_of(br#"{"choices":[]}"#), None);
}

#[test]
fn read_reply_validates_finds_the_model_and_usage_and_tells_errors_apart() {
    let doc = br#"{"id":"x","model":"gpt-4o","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}"#;
    let ReadReply::Object { model, usage } = read_reply(doc) else {
        panic!("an object");
    };
    assert_eq!(&doc[model.unwrap()], br#""gpt-4o""#);
    assert_eq!(usage.map(|u| u.total_tokens), Some(5));
    assert_eq!(
        read_reply(br#"{"choices":[],"usage":null}"#),
        ReadReply::Object {
            model: None,
            usage: None
        }
    );
    assert_eq!(
        read_reply(br#"{"error":{"message":"slow down","type":"rate_limit"}}"#),
        ReadReply::Error
    );
    // An `error` member without OpenAI's shape is an ordinary object.
    assert!(matches!(
        read_reply(br#"{"error":"no","model":"m"}"#),
        ReadReply::Object { model: Some(_), .. }
    ));
    assert_eq!(read_reply(br#"[1,2]"#), ReadReply::NotObject);
    assert_eq!(read_reply(br#"{"model":"m","#), ReadReply::NotJson);
    assert_eq!(read_reply(br#"{"model":"m"} x"#), ReadReply::NotJson);
}
