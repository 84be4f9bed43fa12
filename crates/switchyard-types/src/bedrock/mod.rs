//! AWS Bedrock's Converse API and its translation to and from OpenAI's chat completions.
//!
//! Bedrock fronts many model families (Anthropic, Meta, Mistral, Amazon Nova, Cohere, ...)
//! behind one request shape, the Converse API (`POST /model/{modelId}/converse`) and its
//! streaming twin ConverseStream (`/converse-stream`), whose answer is not server-sent events
//! but AWS's binary eventstream ([`eventstream`]). OpenAI's chat format stays the hub:
//! [`request`] turns an OpenAI chat request into a Converse request, [`response`] and
//! [`stream`] turn Converse answers back into chat completions and chunks. An Anthropic client
//! reaches Bedrock by composing these with `crate::anthropic`'s OpenAI translations.
//!
//! As with Anthropic, translation keeps what Converse can express (tools and their ids,
//! images, documents, stop sequences, cache token counts, reasoning text) and fails with a
//! [`TranslateError`](crate::anthropic::TranslateError) naming the field for what it cannot, instead of dropping it.

use crate::openai::{ErrorBody, ErrorObject};

pub mod eventstream;
pub mod request;
pub mod response;
pub mod stream;

/// OpenAI's `finish_reason` for a Converse `stopReason`.
///
/// `end_turn` and `stop_sequence` → `stop`; `max_tokens` and `model_context_window_exceeded`
/// → `length`; `tool_use` → `tool_calls`; `guardrail_intervened` and `content_filtered` →
/// `content_filter`; anything new → `stop`.
pub fn finish_reason(stop_reason: &str) -> &'static str {
    match stop_reason {
        "max_tokens" | "model_context_window_exceeded" => "length",
        "tool_use" => "tool_calls",
        "guardrail_intervened" | "content_filtered" => "content_filter",
        _ => "stop",
    }
}

/// The exception name in Bedrock's canonical spelling (`ThrottlingException`) from either the
/// `x-amzn-ErrorType` header (`ThrottlingException:http://internal.amazon.com/...`), a JSON
/// `__type` (`com.amazon.coral.service#ThrottlingException`) or an eventstream
/// `:exception-type` (`throttlingException`).
pub fn exception_name(raw: &str) -> String {
    let raw = raw.split(':').next().unwrap_or(raw);
    let raw = raw.rsplit('#').next().unwrap_or(raw).trim();
    let mut chars = raw.chars();
    match chars.next() {
        Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
        None => String::new(),
    }
}

/// Whether a Bedrock error message says the prompt does not fit the model (`Input is too long
/// for requested model.`, `too many input tokens`, Anthropic's `prompt is too long`, ...).
pub fn is_context_length_message(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    [
        "input is too long",
        "too many input tokens",
        "prompt is too long",
        "context length",
        "context window",
        "maximum context",
        "exceeds the maximum number of tokens",
    ]
    .iter()
    .any(|cue| m.contains(cue))
}

/// OpenAI's error body for a Bedrock exception (`exception` in any spelling
/// [`exception_name`] reads) and its message.
///
/// `type` follows the class of failure (`rate_limit_error` for throttling and quotas,
/// `overloaded_error` for an unavailable service or a model not ready, `invalid_request_error`
/// for validation, `authentication_error`/`permission_error`, `not_found_error`,
/// `timeout_error`, else `api_error`); `code` is `rate_limit_exceeded` for throttling,
/// `context_length_exceeded` for a validation error about the prompt's length, and otherwise
/// the exception name, so nothing Bedrock said is lost.
pub fn error_to_openai(exception: &str, message: &str) -> ErrorBody {
    let name = exception_name(exception);
    let (kind, code) = match name.as_str() {
        "ThrottlingException" | "ServiceQuotaExceededException" => {
            ("rate_limit_error", "rate_limit_exceeded".to_owned())
        }
        "ServiceUnavailableException" | "ModelNotReadyException" => {
            ("overloaded_error", name.clone())
        }
        "ValidationException" if is_context_length_message(message) => (
            "invalid_request_error",
            "context_length_exceeded".to_owned(),
        ),
        "ValidationException" => ("invalid_request_error", name.clone()),
        "AccessDeniedException" => ("permission_error", name.clone()),
        "UnrecognizedClientException"
        | "InvalidSignatureException"
        | "IncompleteSignatureException"
        | "ExpiredTokenException"
        | "MissingAuthenticationTokenException" => ("authentication_error", name.clone()),
        "ResourceNotFoundException" => ("not_found_error", name.clone()),
        "ModelTimeoutException" => ("timeout_error", name.clone()),
        "" => ("api_error", "api_error".to_owned()),
        _ => ("api_error", name.clone()),
    };
    let message = if message.is_empty() {
        format!(
            "Bedrock returned {}",
            if name.is_empty() { "an error" } else { &name }
        )
    } else {
        message.to_owned()
    };
    ErrorBody {
        error: ErrorObject {
            message,
            kind: kind.to_owned(),
            param: None,
            code: Some(code),
        },
    }
}

/// The `message` of a Bedrock error body (`{"message": "..."}`, also spelled `Message`), or
/// the body's text when it is not JSON (trimmed, at most 1000 characters).
pub fn error_message(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Body {
        #[serde(default, alias = "Message")]
        message: Option<String>,
    }
    if let Ok(Body { message: Some(m) }) = serde_json::from_slice::<Body>(body) {
        return m;
    }
    let text = String::from_utf8_lossy(body);
    text.trim().chars().take(1000).collect()
}

/// The `__type` of a JSON error body, which some Bedrock errors carry instead of (or with)
/// the `x-amzn-ErrorType` header.
pub fn error_type_in_body(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Body {
        #[serde(rename = "__type", default)]
        kind: Option<String>,
    }
    serde_json::from_slice::<Body>(body).ok()?.kind
}

/// Converse image formats for the media types OpenAI clients send in data URLs.
pub(crate) fn image_format(mime: &str) -> Option<&'static str> {
    match mime {
        "image/png" => Some("png"),
        "image/jpeg" | "image/jpg" => Some("jpeg"),
        "image/gif" => Some("gif"),
        "image/webp" => Some("webp"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exception_names_in_every_spelling() {
        for raw in [
            "ThrottlingException",
            "throttlingException",
            "ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/",
            "com.amazon.coral.service#ThrottlingException",
        ] {
            assert_eq!(exception_name(raw), "ThrottlingException", "{raw}");
        }
    }

    #[test]
    fn errors_become_openai_bodies_that_keep_the_exception() {
        let e = error_to_openai("ThrottlingException", "Too many requests").error;
        assert_eq!(
            (e.kind.as_str(), e.code.as_deref()),
            ("rate_limit_error", Some("rate_limit_exceeded"))
        );
        let e = error_to_openai(
            "ValidationException",
            "Input is too long for requested model.",
        )
        .error;
        assert_eq!(e.code.as_deref(), Some("context_length_exceeded"));
        let e = error_to_openai("validationException", "bad").error;
        assert_eq!(
            (e.kind.as_str(), e.code.as_deref()),
            ("invalid_request_error", Some("ValidationException"))
        );
        let e = error_to_openai("modelStreamErrorException", "").error;
        assert_eq!(e.kind, "api_error");
        assert_eq!(e.message, "Bedrock returned ModelStreamErrorException");
        assert_eq!(
            error_to_openai("ModelNotReadyException", "x").error.kind,
            "overloaded_error"
        );
    }

    #[test]
    fn error_messages_and_types_from_bodies() {
        assert_eq!(error_message(br#"{"message":"m"}"#), "m");
        assert_eq!(error_message(br#"{"Message":"M"}"#), "M");
        assert_eq!(error_message(b"  <html>x</html> "), "<html>x</html>");
        assert_eq!(
            error_type_in_body(br#"{"__type":"a#ValidationException","message":"x"}"#).as_deref(),
            Some("a#ValidationException")
        );
        assert_eq!(finish_reason("guardrail_intervened"), "content_filter");
        assert_eq!(finish_reason("stop_sequence"), "stop");
        assert_eq!(finish_reason("max_tokens"), "length");
    }
}
