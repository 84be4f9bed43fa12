use super::*;

#[test]
fn stop_reasons_round_trip_where_both_sides_have_them() {
    for (anthropic, openai) in [
        ("end_turn", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
    ] {
        assert_eq!(finish_reason(anthropic), openai);
        assert_eq!(stop_reason(openai), anthropic);
    }
    assert_eq!(finish_reason("stop_sequence"), "stop");
    assert_eq!(finish_reason("something_new"), "stop");
}

#[test]
fn error_types_follow_status() {
    assert_eq!(error_type_for_status(400), "invalid_request_error");
    assert_eq!(error_type_for_status(429), "rate_limit_error");
    assert_eq!(error_type_for_status(529), "overloaded_error");
    assert_eq!(error_type_for_status(500), "api_error");
}

#[test]
fn messages_view_checks_types_not_values() {
    let ok =
        br#"{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"hi"}],"future":1}"#;
    let req: MessagesRequest<'_> = serde_json::from_slice(ok).unwrap();
    assert!(req.validate().is_ok());
    assert_eq!(req.stream, None);

    let missing = br#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#;
    assert!(serde_json::from_slice::<MessagesRequest<'_>>(missing).is_err());

    let bad = br#"{"model":"m","max_tokens":5,"messages":[{"role":"user","content":3}]}"#;
    let req: MessagesRequest<'_> = serde_json::from_slice(bad).unwrap();
    assert_eq!(req.validate().unwrap_err().param, "messages.0.content");

    let empty = br#"{"model":"m","max_tokens":5,"messages":[]}"#;
    let req: MessagesRequest<'_> = serde_json::from_slice(empty).unwrap();
    assert_eq!(req.validate().unwrap_err().param, "messages");
}
