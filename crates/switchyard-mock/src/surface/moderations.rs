//! OpenAI's moderations, `POST /v1/moderations`: one result per input with every category,
//! its score and (for the omni model) the input types each category was judged on.
//!
//! Scores are a pure function of the text; an input containing a category's trigger word
//! (`attack` for violence, `hate` for hate, ...) is flagged for it, so tests can steer the
//! verdict.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::response::Response;
use http::StatusCode;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::openai::{invalid_request, json_response, parse_error, read_request, to_json};
use crate::{text, Shared};

/// Every category of the current models, with the word that flags it in the mock.
const CATEGORIES: [(&str, &str); 13] = [
    ("harassment", "harass"),
    ("harassment/threatening", "threaten"),
    ("hate", "hate"),
    ("hate/threatening", "exterminate"),
    ("illicit", "illicit"),
    ("illicit/violent", "weapon"),
    ("self-harm", "self-harm"),
    ("self-harm/intent", "want to hurt myself"),
    ("self-harm/instructions", "how to hurt myself"),
    ("sexual", "explicit"),
    ("sexual/minors", "minor"),
    ("violence", "attack"),
    ("violence/graphic", "gore"),
];
/// Categories the omni model judges on images too.
const IMAGE_CATEGORIES: [&str; 6] = [
    "self-harm",
    "self-harm/intent",
    "self-harm/instructions",
    "sexual",
    "violence",
    "violence/graphic",
];

#[derive(Deserialize)]
struct ModerationRequest {
    input: Option<Value>,
    model: Option<String>,
}

pub(super) async fn moderate(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let (_, body) = match read_request(&shared, req).await {
        Ok(read) => read,
        Err(resp) => return resp,
    };
    let req: ModerationRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return parse_error(&e),
    };
    // (text, has an image) per input.
    let inputs: Vec<(String, bool)> = match &req.input {
        Some(Value::String(s)) => vec![(s.clone(), false)],
        Some(Value::Array(items)) if items.iter().all(Value::is_string) && !items.is_empty() => {
            items
                .iter()
                .map(|i| (i.as_str().unwrap_or_default().to_owned(), false))
                .collect()
        }
        // Multi-modal input: one result for all parts together.
        Some(Value::Array(parts)) if !parts.is_empty() => {
            let text: Vec<&str> = parts.iter().filter_map(|p| p["text"].as_str()).collect();
            let image = parts.iter().any(|p| p["type"] == "image_url");
            vec![(text.join(" "), image)]
        }
        _ => {
            return invalid_request(
                "Invalid 'input': expected a string, an array of strings, or an array of \
                 multi-modal inputs.",
                Some("input"),
                None,
            )
        }
    };
    let model = req.model.as_deref().unwrap_or("omni-moderation-latest");
    let omni = model.starts_with("omni");
    let results: Vec<Value> = inputs
        .iter()
        .map(|(input, image)| result(input, *image, omni))
        .collect();
    let body = json!({
        "id": text::random_id("modr-", 24),
        "model": if model.ends_with("latest") { format!("{model}-mock") } else { model.to_owned() },
        "results": results,
    });
    json_response(StatusCode::OK, to_json(&body))
}

fn result(input: &str, image: bool, omni: bool) -> Value {
    let lower = input.to_lowercase();
    let mut categories = Map::new();
    let mut scores = Map::new();
    let mut applied = Map::new();
    let mut flagged = false;
    for (i, (name, trigger)) in CATEGORIES.iter().enumerate() {
        let hit = lower.contains(trigger);
        flagged |= hit;
        let base = (text::fnv1a(lower.as_bytes()).wrapping_add(i as u64) % 1000) as f64 / 1e6;
        let score = if hit { 0.9 + base * 10.0 } else { base };
        categories.insert((*name).to_owned(), Value::Bool(hit));
        scores.insert((*name).to_owned(), json!(score));
        let mut types = vec!["text"];
        if image && IMAGE_CATEGORIES.contains(name) {
            types.push("image");
        }
        applied.insert((*name).to_owned(), json!(types));
    }
    let mut out = json!({
        "flagged": flagged,
        "categories": categories,
        "category_scores": scores,
    });
    if omni {
        out["category_applied_input_types"] = Value::Object(applied);
    }
    out
}
