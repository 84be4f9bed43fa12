//! OpenAI's legacy completions API (`POST /v1/completions`): the request fields the gateway
//! relies on. Everything else in the body is forwarded untouched.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::openai::FieldError;

/// The fields of a `POST /v1/completions` body that the gateway reads.
#[derive(Debug, Deserialize)]
pub struct CompletionRequest<'a> {
    /// The model or alias the client asked for.
    #[serde(borrow)]
    pub model: Cow<'a, str>,
    /// A string, an array of strings, an array of token ids, or an array of such arrays.
    #[serde(default, borrow)]
    pub prompt: Option<&'a RawValue>,
    /// Whether the answer streams as server-sent events.
    #[serde(default)]
    pub stream: Option<bool>,
    /// Most tokens to generate (the legacy API has no `max_completion_tokens`).
    #[serde(default)]
    pub max_tokens: Option<u32>,
    /// Completions per prompt.
    #[serde(default)]
    pub n: Option<u32>,
}

impl CompletionRequest<'_> {
    /// Checks what serde's types cannot: a non-empty model and a prompt of an allowed shape.
    pub fn validate(&self) -> Result<(), FieldError> {
        let fail = |param: &str, message: &str| FieldError {
            param: param.to_owned(),
            message: message.to_owned(),
        };
        if self.model.is_empty() {
            return Err(fail("model", "`model` must not be empty"));
        }
        let Some(prompt) = self.prompt else {
            return Err(fail("prompt", "`prompt` is required"));
        };
        if !matches!(prompt.get().as_bytes().first(), Some(b'"' | b'[')) {
            return Err(fail(
                "prompt",
                "`prompt` must be a string, an array of strings, an array of token ids, or an \
                 array of token-id arrays",
            ));
        }
        if self.n == Some(0) {
            return Err(fail("n", "`n` must be at least 1"));
        }
        Ok(())
    }

    /// Whether the client asked for a stream.
    pub fn is_stream(&self) -> bool {
        self.stream.unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(body: &str) -> Result<(), FieldError> {
        serde_json::from_str::<CompletionRequest<'_>>(body)
            .map_err(|e| FieldError {
                param: String::new(),
                message: e.to_string(),
            })?
            .validate()
    }

    #[test]
    fn prompts_of_every_documented_shape_pass() {
        for prompt in [r#""hi""#, r#"["a","b"]"#, "[1,2,3]", "[[1],[2]]"] {
            let body = format!(r#"{{"model":"m","prompt":{prompt}}}"#);
            assert!(check(&body).is_ok(), "{body}");
        }
    }

    #[test]
    fn missing_or_malformed_fields_name_the_field() {
        assert_eq!(check(r#"{"model":"m"}"#).unwrap_err().param, "prompt");
        assert_eq!(
            check(r#"{"model":"m","prompt":3}"#).unwrap_err().param,
            "prompt"
        );
        assert_eq!(
            check(r#"{"model":"","prompt":"x"}"#).unwrap_err().param,
            "model"
        );
        assert_eq!(
            check(r#"{"model":"m","prompt":"x","n":0}"#)
                .unwrap_err()
                .param,
            "n"
        );
        assert!(check(r#"{"model":"m","prompt":"x","stream":"yes"}"#).is_err());
    }
}
