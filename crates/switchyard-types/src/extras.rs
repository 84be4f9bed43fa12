//! Provider-specific extras: options with no OpenAI equivalent, carried to the provider instead
//! of being dropped.
//!
//! A translating adapter can only map what both formats know. Anthropic's `top_k` or
//! `thinking`, Gemini's `safetySettings` or `cachedContent`, Bedrock's
//! `additionalModelRequestFields` or `guardrailConfig` have no place in an OpenAI request, so
//! clients put them under one documented field:
//!
//! ```json
//! {"model": "smart", "messages": [...],
//!  "provider_options": {"anthropic": {"top_k": 5}, "gemini": {"safetySettings": [...]}}}
//! ```
//!
//! The entry named after the target's provider type is applied to the translated upstream body
//! as an RFC 7386 JSON merge patch (objects merge member by member, `null` removes a member,
//! anything else replaces), so it can both add fields and adjust translated ones. Entries for
//! other provider types are ignored, which lets one request carry options for every deployment
//! an alias may route to; `provider_options` itself never reaches a provider.

use serde_json::{Map, Value};

use crate::anthropic::TranslateError;

/// The request member that carries provider-specific extras.
pub const PROVIDER_OPTIONS: &str = "provider_options";

/// The provider types `provider_options` may name (Vertex AI speaks Gemini's format, so it
/// reads the `gemini` entry; Azure OpenAI reads `openai`).
pub const PROVIDER_TYPES: [&str; 4] = ["openai", "anthropic", "gemini", "bedrock"];

/// Takes `provider_options` out of a client request and returns the entry for
/// `provider_type`, after checking the whole field's shape so that a typo fails on every
/// route, not only on the deployment it was meant for.
pub fn take(
    req: &mut Map<String, Value>,
    provider_type: &str,
) -> Result<Option<Value>, TranslateError> {
    let Some(options) = req.remove(PROVIDER_OPTIONS) else {
        return Ok(None);
    };
    let Value::Object(entries) = options else {
        return Err(TranslateError::field(
            PROVIDER_OPTIONS,
            "must be an object keyed by provider type, e.g. {\"anthropic\": {\"top_k\": 5}}",
        ));
    };
    let mut mine = None;
    for (kind, entry) in entries {
        if !PROVIDER_TYPES.contains(&kind.as_str()) {
            return Err(TranslateError::field(
                format!("{PROVIDER_OPTIONS}.{kind}"),
                format!(
                    "unknown provider type `{kind}`; expected one of: {}",
                    PROVIDER_TYPES.join(", ")
                ),
            ));
        }
        if !entry.is_object() {
            return Err(TranslateError::field(
                format!("{PROVIDER_OPTIONS}.{kind}"),
                "must be an object of fields for that provider's request body",
            ));
        }
        if kind == provider_type {
            mine = Some(entry);
        }
    }
    Ok(mine)
}

/// The client's body for an upstream that speaks the client's own format: `model` replaced
/// and every other byte kept, unless the body carries `provider_options`, which is then
/// removed and its `provider_type` entry merged in (the body is re-serialised only then).
///
/// `Ok(None)` means `doc` is not an object with a `model` member, which the pipeline's parse
/// stage has already ruled out.
pub fn passthrough_body(
    doc: &[u8],
    model: &str,
    provider_type: &str,
) -> Result<Option<Vec<u8>>, TranslateError> {
    let Some([model_span, options_span]) =
        crate::json::top_level_values(doc, ["model", PROVIDER_OPTIONS])
    else {
        return Ok(None);
    };
    let Some(model_span) = model_span else {
        return Ok(None);
    };
    if options_span.is_none() {
        return Ok(Some(crate::json::splice_string(doc, model_span, model)));
    }
    let Ok(Value::Object(mut req)) = serde_json::from_slice::<Value>(doc) else {
        return Ok(None);
    };
    let mine = take(&mut req, provider_type)?;
    let stream = req.get("stream").cloned();
    let mut out = Value::Object(req);
    if let Some(patch) = mine {
        merge_patch(&mut out, &patch);
    }
    // The deployment's model and the client's choice to stream stand.
    out["model"] = model.into();
    if let Some(map) = out.as_object_mut() {
        match stream {
            Some(s) => map.insert("stream".into(), s),
            None => map.remove("stream"),
        };
    }
    serde_json::to_vec(&out)
        .map(Some)
        .map_err(|e| TranslateError::body(format!("cannot encode the request: {e}")))
}

/// Applies `patch` to `target` as an RFC 7386 JSON merge patch.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(target) = target {
        for (key, value) in patch {
            if value.is_null() {
                target.remove(key);
            } else {
                merge_patch(target.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn takes_the_entry_for_the_target_and_removes_the_field() {
        let mut req = obj(json!({
            "model": "m",
            "provider_options": {"anthropic": {"top_k": 5}, "gemini": {"x": 1}}
        }));
        let mine = take(&mut req, "anthropic");
        assert_eq!(mine, Ok(Some(json!({"top_k": 5}))));
        assert!(!req.contains_key(PROVIDER_OPTIONS));
        let mut req = obj(json!({"provider_options": {"gemini": {"x": 1}}}));
        assert_eq!(take(&mut req, "bedrock"), Ok(None));
        assert_eq!(take(&mut obj(json!({})), "openai"), Ok(None));
    }

    #[test]
    fn rejects_bad_shapes_naming_the_field() {
        let bad = [
            (json!({"provider_options": [1]}), "provider_options"),
            (
                json!({"provider_options": {"antropic": {}}}),
                "provider_options.antropic",
            ),
            (
                json!({"provider_options": {"gemini": 3}}),
                "provider_options.gemini",
            ),
        ];
        for (req, param) in bad {
            let err = take(&mut obj(req), "anthropic").err();
            assert_eq!(err.and_then(|e| e.param).as_deref(), Some(param));
        }
    }

    #[test]
    fn passthrough_keeps_bytes_unless_options_are_present() {
        let doc = br#"{"model" : "alias",  "x": 1.50}"#;
        let out = passthrough_body(doc, "up", "openai").unwrap().unwrap();
        assert_eq!(out, br#"{"model" : "up",  "x": 1.50}"#);
        let doc = br#"{"model":"alias","stream":true,"provider_options":{"openai":{"service_tier":"flex","stream":false,"model":"z"},"anthropic":{"top_k":1}}}"#;
        let out: Value =
            serde_json::from_slice(&passthrough_body(doc, "up", "openai").unwrap().unwrap())
                .unwrap();
        assert_eq!(
            out,
            json!({"model": "up", "stream": true, "service_tier": "flex"})
        );
        let doc = br#"{"model":"alias","provider_options":{"openai":{"stream":true}}}"#;
        let out: Value =
            serde_json::from_slice(&passthrough_body(doc, "up", "openai").unwrap().unwrap())
                .unwrap();
        assert_eq!(
            out,
            json!({"model": "up"}),
            "streaming is the client's choice, not an option"
        );
        let bad = br#"{"model":"alias","provider_options":{"opneai":{}}}"#;
        assert!(passthrough_body(bad, "up", "openai").is_err());
        assert_eq!(passthrough_body(b"[1]", "up", "openai"), Ok(None));
    }

    #[test]
    fn merge_patch_follows_rfc_7386() {
        let mut target = json!({"a": "b", "c": {"d": "e", "f": "g"}, "keep": [1]});
        merge_patch(
            &mut target,
            &json!({"a": "z", "c": {"f": null, "h": 1}, "new": {"x": null, "y": 2}}),
        );
        assert_eq!(
            target,
            json!({"a": "z", "c": {"d": "e", "h": 1}, "keep": [1], "new": {"y": 2}})
        );
        let mut scalar = json!({"a": 1});
        merge_patch(&mut scalar, &json!([1, 2]));
        assert_eq!(scalar, json!([1, 2]));
    }
}
