//! `GET /v1/models` and `GET /v1/models/{id}` in Anthropic's shape.
//!
//! Anthropic's listing is cursor-paginated (`limit`, `after_id`, `before_id`, answered with
//! `has_more`, `first_id` and `last_id`), newest model first; the mock pages through a fixed
//! list so that gateways which follow the cursors can be tested.

use serde::Serialize;

/// Default page size, as the API documents it.
const DEFAULT_LIMIT: usize = 20;
/// Largest page the API allows.
const MAX_LIMIT: usize = 1000;

/// The listed models, newest first: id, display name, release instant.
const MODELS: [(&str, &str, &str); 3] = [
    (
        "claude-mock-opus-4",
        "Claude Mock Opus 4",
        "2025-05-22T00:00:00Z",
    ),
    (
        "claude-mock-sonnet-4",
        "Claude Mock Sonnet 4",
        "2025-05-22T00:00:00Z",
    ),
    (
        "claude-mock-haiku-3-5",
        "Claude Mock Haiku 3.5",
        "2024-10-22T00:00:00Z",
    ),
];

/// Release instant reported for models the mock does not list.
const UNLISTED_CREATED_AT: &str = "2025-01-01T00:00:00Z";

#[derive(Serialize)]
pub(super) struct Model<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    id: &'a str,
    display_name: String,
    created_at: &'static str,
}

#[derive(Serialize)]
struct ModelList<'a> {
    data: Vec<Model<'a>>,
    has_more: bool,
    first_id: Option<&'a str>,
    last_id: Option<&'a str>,
}

fn listed(entry: &(&'static str, &'static str, &'static str)) -> Model<'static> {
    Model {
        kind: "model",
        id: entry.0,
        display_name: entry.1.to_owned(),
        created_at: entry.2,
    }
}

/// The model object for `id`: a listed model, or one described from its id (any id exists
/// except those starting with `missing`, which lets tests provoke a 404).
pub(super) fn lookup(id: &str) -> Option<Model<'_>> {
    if id.starts_with("missing") {
        return None;
    }
    if let Some(entry) = MODELS.iter().find(|m| m.0 == id) {
        return Some(listed(entry));
    }
    // `claude-foo-4` reads as "Claude Foo 4".
    let display_name = id
        .split('-')
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut chars = w.chars();
            chars.next().map_or_else(String::new, |c| {
                c.to_uppercase().chain(chars).collect::<String>()
            })
        })
        .collect::<Vec<_>>()
        .join(" ");
    Some(Model {
        kind: "model",
        id,
        display_name,
        created_at: UNLISTED_CREATED_AT,
    })
}

/// The model list page for a query string; `Err` carries the 400 message.
pub(super) fn list(query: Option<&str>) -> Result<Vec<u8>, String> {
    let mut limit = DEFAULT_LIMIT;
    let mut after = None;
    let mut before = None;
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "limit" => {
                let n: i64 = value
                    .parse()
                    .map_err(|_| "limit: Input should be a valid integer".to_owned())?;
                if n < 1 {
                    return Err("limit: Input should be greater than or equal to 1".to_owned());
                }
                limit = usize::try_from(n).unwrap_or(usize::MAX);
                if limit > MAX_LIMIT {
                    return Err(format!(
                        "limit: Input should be less than or equal to {MAX_LIMIT}"
                    ));
                }
            }
            "after_id" => after = Some(value),
            "before_id" => before = Some(value),
            _ => {}
        }
    }
    let position = |id: &str| MODELS.iter().position(|m| m.0 == id);
    // `after_id` pages forward from a model, `before_id` backward to it.
    let (start, end) = match (after, before) {
        (Some(id), _) => {
            let from = position(id).map_or(MODELS.len(), |i| i + 1);
            (from, from.saturating_add(limit).min(MODELS.len()))
        }
        (None, Some(id)) => {
            let to = position(id).unwrap_or(0);
            (to.saturating_sub(limit), to)
        }
        (None, None) => (0, limit.min(MODELS.len())),
    };
    let page = MODELS.get(start..end).unwrap_or_default();
    let has_more = if before.is_some() && after.is_none() {
        start > 0
    } else {
        end < MODELS.len()
    };
    let list = ModelList {
        data: page.iter().map(listed).collect(),
        has_more,
        first_id: page.first().map(|m| m.0),
        last_id: page.last().map(|m| m.0),
    };
    Ok(serde_json::to_vec(&list).unwrap_or_else(|_| b"{}".to_vec()))
}
