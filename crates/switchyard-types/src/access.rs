//! Reading a client's JSON with paths, so every translation error names the field.
//!
//! Shared by every request translator: the accessors treat JSON `null` as absent and report a
//! wrong type or a missing member under the client's own field path.

use serde_json::{Map, Value};

use crate::anthropic::TranslateError;

pub(crate) type Obj = Map<String, Value>;
pub(crate) type Res<T> = Result<T, TranslateError>;

pub(crate) fn parse_object(body: &[u8]) -> Res<Obj> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(o)) => Ok(o),
        Ok(_) => Err(TranslateError::body(
            "the request body must be a JSON object",
        )),
        Err(e) => Err(TranslateError::body(format!(
            "the request body is not valid JSON: {e}"
        ))),
    }
}

pub(crate) fn to_bytes(v: &Value) -> Res<Vec<u8>> {
    serde_json::to_vec(v)
        .map_err(|e| TranslateError::body(format!("cannot serialise the translated request: {e}")))
}

pub(crate) fn to_string(v: &Value) -> Res<String> {
    serde_json::to_string(v)
        .map_err(|e| TranslateError::body(format!("cannot serialise a tool input: {e}")))
}

pub(crate) fn join(base: &str, key: &str) -> String {
    if base.is_empty() {
        key.to_owned()
    } else {
        format!("{base}.{key}")
    }
}

pub(crate) fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| s.get(prefix.len()..))
        .flatten()
}

pub(crate) fn wrong_type(path: &str, expected: &str) -> TranslateError {
    TranslateError::field(path, format!("`{path}` must be {expected}"))
}

pub(crate) fn missing(path: &str) -> TranslateError {
    TranslateError::field(path, format!("`{path}` is required"))
}

pub(crate) fn unsupported_part(path: &str, kind: &str, hint: &str) -> TranslateError {
    TranslateError::field(
        join(path, "type"),
        format!("unsupported content type `{kind}`: {hint}"),
    )
}

/// The member `key` of `o`, with JSON null read as absent.
pub(crate) fn member<'a>(o: &'a Obj, key: &str) -> Option<&'a Value> {
    o.get(key).filter(|v| !v.is_null())
}

pub(crate) fn as_object<'a>(v: &'a Value, path: &str) -> Res<&'a Obj> {
    v.as_object().ok_or_else(|| wrong_type(path, "an object"))
}

/// A content part as an object, with its `type`.
pub(crate) fn part_type<'a>(v: &'a Value, path: &str) -> Res<(&'a Obj, &'a str)> {
    let o = as_object(v, path)?;
    Ok((o, req_str(o, path, "type")?))
}

pub(crate) fn opt_str<'a>(o: &'a Obj, base: &str, key: &str) -> Res<Option<&'a str>> {
    match member(o, key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(wrong_type(&join(base, key), "a string")),
    }
}

pub(crate) fn req_str<'a>(o: &'a Obj, base: &str, key: &str) -> Res<&'a str> {
    opt_str(o, base, key)?.ok_or_else(|| missing(&join(base, key)))
}

pub(crate) fn opt_bool(o: &Obj, base: &str, key: &str) -> Res<Option<bool>> {
    match member(o, key) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(wrong_type(&join(base, key), "a boolean")),
    }
}

pub(crate) fn opt_u64(o: &Obj, base: &str, key: &str) -> Res<Option<u64>> {
    match member(o, key) {
        None => Ok(None),
        Some(v) => v
            .as_u64()
            .map(Some)
            .ok_or_else(|| wrong_type(&join(base, key), "a non-negative integer")),
    }
}

pub(crate) fn opt_i64(o: &Obj, base: &str, key: &str) -> Res<Option<i64>> {
    match member(o, key) {
        None => Ok(None),
        Some(v) => v
            .as_i64()
            .map(Some)
            .ok_or_else(|| wrong_type(&join(base, key), "an integer")),
    }
}

pub(crate) fn opt_number<'a>(
    o: &'a Obj,
    base: &str,
    key: &str,
) -> Res<Option<&'a serde_json::Number>> {
    match member(o, key) {
        None => Ok(None),
        Some(Value::Number(n)) => Ok(Some(n)),
        Some(_) => Err(wrong_type(&join(base, key), "a number")),
    }
}

pub(crate) fn opt_array<'a>(o: &'a Obj, base: &str, key: &str) -> Res<Option<&'a Vec<Value>>> {
    match member(o, key) {
        None => Ok(None),
        Some(Value::Array(a)) => Ok(Some(a)),
        Some(_) => Err(wrong_type(&join(base, key), "an array")),
    }
}

pub(crate) fn req_array<'a>(o: &'a Obj, base: &str, key: &str) -> Res<&'a Vec<Value>> {
    opt_array(o, base, key)?.ok_or_else(|| missing(&join(base, key)))
}

pub(crate) fn opt_object<'a>(o: &'a Obj, base: &str, key: &str) -> Res<Option<&'a Obj>> {
    match member(o, key) {
        None => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m)),
        Some(_) => Err(wrong_type(&join(base, key), "an object")),
    }
}

pub(crate) fn req_object<'a>(o: &'a Obj, base: &str, key: &str) -> Res<&'a Obj> {
    opt_object(o, base, key)?.ok_or_else(|| missing(&join(base, key)))
}
