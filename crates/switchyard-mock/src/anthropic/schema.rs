//! Fake tool inputs that satisfy a tool's JSON Schema.
//!
//! A gateway test that forces a tool call usually goes on to parse the call's input and feed
//! it to code that expects the declared shape, so the input must validate against the schema
//! rather than merely be an object: every declared property gets a plausible value of its
//! type, honouring `enum`, `const`, `default`, numeric bounds, string formats and lengths, and
//! nested objects and arrays. Values are a pure function of the schema and a seed.

use serde_json::{Map, Value};

use crate::text;

/// How deep nested schemas are followed; deeper levels become `null`. Keeps a hostile or
/// recursive schema from costing more than a little work.
const MAX_DEPTH: usize = 8;
/// Most items generated for an array, whatever `minItems` says.
const MAX_ITEMS: u64 = 3;
/// Longest generated string, whatever `minLength` says.
const MAX_STRING: u64 = 256;

/// An input object for a tool whose `input_schema` is `schema` (any JSON; a schema that is not
/// an object schema still yields an object, as tool inputs always are).
pub(super) fn fake_input(schema: &Value, seed: u64) -> Value {
    match value_for(schema, seed, 0) {
        Value::Object(map) => Value::Object(map),
        _ => Value::Object(Map::new()),
    }
}

fn value_for(schema: &Value, seed: u64, depth: usize) -> Value {
    if depth > MAX_DEPTH {
        return Value::Null;
    }
    if let Some(v) = schema.get("const") {
        return v.clone();
    }
    if let Some(first) = schema.get("enum").and_then(|e| e.get(0)) {
        return first.clone();
    }
    if let Some(v) = schema.get("default") {
        return v.clone();
    }
    for key in ["anyOf", "oneOf", "allOf"] {
        if let Some(first) = schema.get(key).and_then(|list| list.get(0)) {
            return value_for(first, seed, depth + 1);
        }
    }
    let declared = match schema.get("type") {
        Some(Value::String(t)) => Some(t.as_str()),
        // `["string", "null"]`: the first non-null type.
        Some(Value::Array(types)) => types
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .or(Some("null")),
        _ => None,
    };
    let ty = declared.unwrap_or_else(|| {
        if schema.get("properties").is_some() {
            "object"
        } else if schema.get("items").is_some() {
            "array"
        } else {
            "string"
        }
    });
    match ty {
        "object" => object_for(schema, seed, depth),
        "array" => {
            let items = schema.get("items").unwrap_or(&Value::Null);
            let n = schema
                .get("minItems")
                .and_then(Value::as_u64)
                .unwrap_or(1)
                .clamp(1, MAX_ITEMS);
            Value::Array(
                (0..n)
                    .map(|i| value_for(items, seed.wrapping_add(i.wrapping_mul(31)), depth + 1))
                    .collect(),
            )
        }
        "integer" => {
            let (lo, hi) = bounds(schema);
            let v = 42f64.max(lo.ceil()).min(hi.floor());
            // Saturating cast; bounds come from finite JSON numbers.
            Value::from(v as i64)
        }
        "number" => {
            let (lo, hi) = bounds(schema);
            Value::from(2.5f64.max(lo).min(hi))
        }
        "boolean" => Value::Bool(true),
        "null" => Value::Null,
        _ => Value::String(string_for(schema, seed)),
    }
}

fn object_for(schema: &Value, seed: u64, depth: usize) -> Value {
    let mut out = Map::new();
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        for (i, (name, prop)) in props.iter().enumerate() {
            let prop_seed = seed.wrapping_add(text::fnv1a(name.as_bytes())) ^ i as u64;
            out.insert(name.clone(), value_for(prop, prop_seed, depth + 1));
        }
    }
    // Required names the schema forgot to declare still get a value.
    if let Some(required) = schema.get("required").and_then(Value::as_array) {
        for name in required.iter().filter_map(Value::as_str) {
            if !out.contains_key(name) {
                let word = text::fake_word(seed.wrapping_add(text::fnv1a(name.as_bytes())));
                out.insert(name.to_owned(), Value::from(word));
            }
        }
    }
    Value::Object(out)
}

/// Inclusive numeric bounds from `minimum`/`maximum` and their exclusive forms (integers step
/// one inside an exclusive bound, numbers a tenth).
fn bounds(schema: &Value) -> (f64, f64) {
    let num = |key: &str| schema.get(key).and_then(Value::as_f64);
    let step = if schema.get("type").and_then(Value::as_str) == Some("integer") {
        1.0
    } else {
        0.1
    };
    let lo = num("minimum")
        .or_else(|| num("exclusiveMinimum").map(|v| v + step))
        .unwrap_or(f64::MIN);
    let hi = num("maximum")
        .or_else(|| num("exclusiveMaximum").map(|v| v - step))
        .unwrap_or(f64::MAX);
    // A contradictory schema (min above max) gets its minimum.
    (lo, hi.max(lo))
}

fn string_for(schema: &Value, seed: u64) -> String {
    let word = text::fake_word(seed);
    let mut s = match schema.get("format").and_then(Value::as_str) {
        Some("date-time") => "2025-01-15T09:30:00Z".to_owned(),
        Some("date") => "2025-01-15".to_owned(),
        Some("time") => "09:30:00".to_owned(),
        Some("email") => format!("{word}@example.com"),
        Some("uri" | "url") => format!("https://example.com/{word}"),
        Some("uuid") => format!("6f1c2b9e-3d4a-4e8f-9a7b-{:012x}", seed & 0xffff_ffff_ffff),
        Some("ipv4") => "192.0.2.10".to_owned(),
        _ => word.to_owned(),
    };
    let min = schema
        .get("minLength")
        .and_then(Value::as_u64)
        .unwrap_or(0)
        .min(MAX_STRING);
    // Our words are ASCII, so byte lengths are character lengths.
    while (s.len() as u64) < min {
        s.push(' ');
        s.push_str(word);
    }
    if let Some(max) = schema.get("maxLength").and_then(Value::as_u64) {
        s.truncate(usize::try_from(max).unwrap_or(usize::MAX).min(s.len()));
    }
    s
}
