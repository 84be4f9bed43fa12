//! Google's Gemini API (`generateContent`, `streamGenerateContent`, `embedContent`,
//! `batchEmbedContents`) and its translation to and from OpenAI's chat completions and
//! embeddings.
//!
//! Gemini speaks one format through two front doors: Google AI Studio
//! (`generativelanguage.googleapis.com`, API key) and Vertex AI (`aiplatform.googleapis.com`,
//! OAuth bearer token). The bodies are the same; only URLs and credentials differ, and those
//! belong to the adapter. OpenAI's chat format is the hub: an OpenAI client reaches Gemini
//! through [`request::chat_to_gemini`] and comes back through [`response`] / [`stream`]; an
//! Anthropic client is composed on top (Messages → chat → Gemini and back) by the adapter.
//!
//! What Gemini can express is kept (system instructions, images, audio and files, tools and
//! forced tool choice, JSON schemas, sampling, stop sequences, candidate count, seed, penalties,
//! thinking budgets, cached-token and thought-token counts, safety blocks with their
//! categories); what it cannot is rejected with a [`TranslateError`] naming the field in the
//! client's request, never dropped silently when it would change the answer.

pub use crate::anthropic::TranslateError;

pub mod request;
pub mod response;
pub mod schema;
pub mod stream;

#[cfg(test)]
mod roundtrip;

/// Thought signature sent on a replayed function call that carries none. Gemini 3 models refuse
/// a conversation whose function calls lack the signature they were generated with; OpenAI
/// clients usually drop it (it lives in `extra_content`, which few clients keep), so the
/// translator sends the value Google documents for history that did not come from the model
/// itself, which tells the API to skip the check.
pub const SKIP_THOUGHT_SIGNATURE: &str = "skip_thought_signature_validator";

/// OpenAI's `finish_reason` for a Gemini `finishReason`, given whether the candidate made tool
/// calls (Gemini finishes a function-calling turn with `STOP`).
pub fn finish_reason(gemini: &str, has_tool_calls: bool) -> &'static str {
    match gemini {
        "MAX_TOKENS" => "length",
        r if is_content_filter(r) => "content_filter",
        _ if has_tool_calls => "tool_calls",
        // STOP, OTHER, LANGUAGE, MALFORMED_FUNCTION_CALL and reasons added later.
        _ => "stop",
    }
}

/// Whether a `finishReason` (or a prompt's `blockReason`) means Google's filters stopped the
/// answer, which OpenAI reports as `content_filter`.
pub fn is_content_filter(reason: &str) -> bool {
    matches!(
        reason,
        "SAFETY"
            | "RECITATION"
            | "BLOCKLIST"
            | "PROHIBITED_CONTENT"
            | "SPII"
            | "IMAGE_SAFETY"
            | "IMAGE_PROHIBITED_CONTENT"
            | "IMAGE_RECITATION"
            | "OTHER_PROHIBITED"
    )
}

/// Whether OpenAI's `finish_reason` says all there is to say about a Gemini reason; when it does
/// not, the choice also carries `native_finish_reason` (see [`response`]).
pub(crate) fn finish_reason_is_lossless(gemini: &str) -> bool {
    matches!(gemini, "STOP" | "MAX_TOKENS" | "FINISH_REASON_UNSPECIFIED")
}

// ---------------------------------------------------------------------------------------------
// JSON access with paths (the client's field names in errors)
// ---------------------------------------------------------------------------------------------

pub(crate) use crate::access::*;

/// Standard base64 (RFC 4648, padded), for OpenAI's `encoding_format: "base64"` embeddings.
pub(crate) fn base64(input: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b0 = chunk.first().copied().unwrap_or(0);
        let b1 = chunk.get(1).copied().unwrap_or(0);
        let b2 = chunk.get(2).copied().unwrap_or(0);
        let n = (u32::from(b0) << 16) | (u32::from(b1) << 8) | u32::from(b2);
        let sextet = |shift: u32| char::from(TABLE[((n >> shift) & 0x3f) as usize]);
        out.push(sextet(18));
        out.push(sextet(12));
        out.push(if chunk.len() > 1 { sextet(6) } else { '=' });
        out.push(if chunk.len() > 2 { sextet(0) } else { '=' });
    }
    out
}

/// FNV-1a, for tool call ids that are stable for one response (stream or not) yet differ
/// between responses.
pub(crate) fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in *part {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        // Separator, so ("ab", "c") and ("a", "bc") differ.
        h ^= 0xff;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The OpenAI tool call id for Gemini's function call number `position` (counted over the
/// whole candidate) of candidate `candidate`: Gemini's own `id` when it sent one, else
/// `call_` and 24 hex digits derived from `nonce` (unique per request, chosen by the caller),
/// the response id and the position. The non-streamed and streamed translations of one
/// response give the same ids.
pub(crate) fn call_id(
    gemini_id: Option<&str>,
    nonce: &str,
    response_id: &str,
    candidate: u32,
    position: usize,
) -> String {
    if let Some(id) = gemini_id.filter(|id| !id.is_empty()) {
        return id.to_owned();
    }
    let c = candidate.to_le_bytes();
    let p = (position as u64).to_le_bytes();
    let a = fnv1a(&[nonce.as_bytes(), response_id.as_bytes(), &c, &p]);
    let b = fnv1a(&[&p, &c, response_id.as_bytes(), nonce.as_bytes()]);
    format!("call_{a:016x}{:08x}", b >> 32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finish_reasons_map_to_openai() {
        assert_eq!(finish_reason("STOP", false), "stop");
        assert_eq!(finish_reason("STOP", true), "tool_calls");
        assert_eq!(finish_reason("MAX_TOKENS", true), "length");
        for r in [
            "SAFETY",
            "RECITATION",
            "BLOCKLIST",
            "PROHIBITED_CONTENT",
            "SPII",
        ] {
            assert_eq!(finish_reason(r, false), "content_filter");
            assert!(!finish_reason_is_lossless(r));
        }
        assert_eq!(finish_reason("MALFORMED_FUNCTION_CALL", false), "stop");
        assert_eq!(finish_reason("SOMETHING_NEW", false), "stop");
    }

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        let cases = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (input, want) in cases {
            assert_eq!(base64(input.as_bytes()), want);
        }
    }

    #[test]
    fn call_ids_are_stable_per_response_and_distinct_otherwise() {
        let a = call_id(None, "n1", "resp", 0, 0);
        assert_eq!(a, call_id(None, "n1", "resp", 0, 0));
        assert!(a.starts_with("call_") && a.len() == 29, "{a}");
        assert_ne!(a, call_id(None, "n2", "resp", 0, 0));
        assert_ne!(a, call_id(None, "n1", "resp", 0, 1));
        assert_ne!(a, call_id(None, "n1", "resp", 1, 0));
        assert_eq!(call_id(Some("g-7"), "n1", "resp", 0, 0), "g-7");
    }
}
