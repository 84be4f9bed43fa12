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
