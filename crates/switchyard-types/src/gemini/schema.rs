//! JSON Schema (as OpenAI tools and `response_format` carry it) → Gemini's `Schema`, the
//! OpenAPI 3.0 subset that `functionDeclarations[].parameters` and
//! `generationConfig.responseSchema` take.
//!
//! The subset is what every Gemini model, on AI Studio and Vertex AI alike, accepts, which is
//! why the translator uses it rather than the newer raw JSON Schema fields
//! (`parametersJsonSchema`, `responseJsonSchema`) that only recent models read. Converting
//! means:
//!
//! - `type` becomes Gemini's upper-case enum (`STRING`, `NUMBER`, `INTEGER`, `BOOLEAN`,
//!   `ARRAY`, `OBJECT`); a `null` alternative (in a type list, `anyOf`/`oneOf`, or `enum`)
//!   becomes `nullable: true`; a list of several other types becomes `anyOf`. A missing `type`
//!   is inferred from `properties` (object), `items` (array) or `enum`/`const` (string).
//! - `$ref` to `#/$defs/...` or `#/definitions/...` is inlined (Gemini has no references);
//!   `oneOf` is read as `anyOf`; an `allOf` of one schema is merged into its parent; `const` is
//!   a one-value `enum`; numeric `enum` values become strings, as Gemini's enums are strings.
//! - Kept as they are: `description`, `title`, `nullable`, `properties`, `required`, `items`,
//!   `enum`, `minItems`, `maxItems`, `minLength`, `maxLength`, `pattern`, `minimum`,
//!   `maximum`, `minProperties`, `maxProperties`, `example`, `default`, `propertyOrdering`,
//!   and `format` where Gemini knows it (`date-time` and `enum` for strings, `float`/`double`,
//!   `int32`/`int64` for numbers).
//! - Dropped, as annotations or validation-only constraints Gemini has no keyword for:
//!   `additionalProperties: false|true`, `$schema`, `$id`, `$comment`, `examples`,
//!   `exclusiveMinimum`, `exclusiveMaximum`, `multipleOf`, `uniqueItems`, `readOnly`,
//!   `writeOnly`, `deprecated`, other `format`s, and keywords this module does not know.
//! - Rejected, naming the schema path, because dropping them would change which values are
//!   valid in ways the model would notice: `not`, `if`/`then`/`else`, `patternProperties`,
//!   `dependentSchemas`, `dependentRequired`, `prefixItems`, `contains`, `propertyNames`,
//!   `allOf` of several schemas, recursive or external `$ref`s, boolean schemas, an untyped
//!   schema, an array without `items`, and a nested object without `properties` (a free-form
//!   map, which Gemini's subset cannot describe).

use serde_json::{Map, Value};

use super::{Obj, Res, TranslateError};

/// How deep schemas (and inlined references) are followed before the schema is rejected.
const MAX_DEPTH: usize = 32;

/// Keywords whose meaning Gemini cannot express and whose loss would change what is valid.
const REJECTED: [&str; 10] = [
    "not",
    "if",
    "then",
    "else",
    "patternProperties",
    "dependentSchemas",
    "dependentRequired",
    "prefixItems",
    "contains",
    "propertyNames",
];

/// Converts `schema` (a JSON Schema object) into Gemini's `Schema`. `path` names the schema in
/// the client's request, for errors (e.g. `tools[0].function.parameters`).
pub fn to_gemini(schema: &Value, path: &str) -> Res<Value> {
    let root = schema
        .as_object()
        .ok_or_else(|| TranslateError::field(path, "a schema must be a JSON object"))?;
    let mut defs = Obj::new();
    for key in ["$defs", "definitions"] {
        if let Some(Value::Object(d)) = root.get(key) {
            for (name, s) in d {
                defs.insert(format!("#/{key}/{name}"), s.clone());
            }
        }
    }
    let mut cx = Converter {
        defs,
        refs: Vec::new(),
    };
    cx.convert(root, path, 0, true)
}

/// Whether a parameters schema declares no parameters at all (`{}`, or an object schema
/// without properties), in which case the function declaration leaves `parameters` out:
/// Gemini rejects an `OBJECT` without properties.
pub fn declares_no_parameters(schema: &Value) -> bool {
    match schema.as_object() {
        None => false,
        Some(o) => {
            let is_object = match o.get("type") {
                None => true,
                Some(Value::String(t)) => t == "object",
                Some(_) => false,
            };
            is_object
                && o.get("properties")
                    .is_none_or(|p| p.as_object().is_some_and(Map::is_empty))
                && !o.contains_key("$ref")
                && !o.contains_key("anyOf")
                && !o.contains_key("oneOf")
                && !o.contains_key("allOf")
        }
    }
}

struct Converter {
    /// `#/$defs/Name` → schema.
    defs: Obj,
    /// References being inlined, to catch recursion.
    refs: Vec<String>,
}

fn reject(path: &str, message: impl Into<String>) -> TranslateError {
    TranslateError::field(path, message.into())
}

impl Converter {
    fn convert(&mut self, node: &Obj, path: &str, depth: usize, root: bool) -> Res<Value> {
        if depth > MAX_DEPTH {
            return Err(reject(
                path,
                format!("the schema nests deeper than {MAX_DEPTH} levels"),
            ));
        }
        for key in REJECTED {
            if node.contains_key(key) {
                return Err(reject(
                    &format!("{path}.{key}"),
                    format!(
                        "the JSON Schema keyword `{key}` cannot be expressed in a Gemini schema"
                    ),
                ));
            }
        }

        // References and single-schema `allOf` are merged into the node first.
        if let Some(r) = node.get("$ref") {
            let r = r
                .as_str()
                .ok_or_else(|| reject(&format!("{path}.$ref"), "`$ref` must be a string"))?;
            let target = match self.defs.get(r) {
                Some(Value::Object(t)) => t.clone(),
                _ => {
                    return Err(reject(
                        &format!("{path}.$ref"),
                        format!(
                            "`{r}` is not a local `#/$defs/...` reference; Gemini schemas cannot \
                             refer to other documents"
                        ),
                    ))
                }
            };
            if self.refs.iter().any(|seen| seen == r) {
                return Err(reject(
                    &format!("{path}.$ref"),
                    format!("`{r}` is recursive; Gemini schemas cannot describe recursive types"),
                ));
            }
            self.refs.push(r.to_owned());
            let mut merged = target;
            for (k, v) in node {
                if k != "$ref" {
                    merged.insert(k.clone(), v.clone());
                }
            }
            let out = self.convert(&merged, path, depth + 1, root);
            self.refs.pop();
            return out;
        }
        if let Some(all) = node.get("allOf") {
            let all = all
                .as_array()
                .ok_or_else(|| reject(&format!("{path}.allOf"), "`allOf` must be an array"))?;
            let [only] = all.as_slice() else {
                return Err(reject(
                    &format!("{path}.allOf"),
                    "`allOf` of several schemas cannot be expressed in a Gemini schema",
                ));
            };
            let only = only.as_object().ok_or_else(|| {
                reject(
                    &format!("{path}.allOf[0]"),
                    "a schema must be a JSON object",
                )
            })?;
            let mut merged = only.clone();
            for (k, v) in node {
                if k != "allOf" {
                    merged.insert(k.clone(), v.clone());
                }
            }
            return self.convert(&merged, path, depth + 1, root);
        }

        let mut out = Obj::new();
        let mut nullable = node.get("nullable") == Some(&Value::Bool(true));

        // Alternatives.
        let alternatives = match (node.get("anyOf"), node.get("oneOf")) {
            (Some(a), _) => Some(("anyOf", a)),
            (None, Some(a)) => Some(("oneOf", a)),
            (None, None) => None,
        };
        if let Some((key, list)) = alternatives {
            let ap = format!("{path}.{key}");
            let list = list
                .as_array()
                .ok_or_else(|| reject(&ap, format!("`{key}` must be an array")))?;
            let mut converted = Vec::with_capacity(list.len());
            for (i, alt) in list.iter().enumerate() {
                let alt_path = format!("{ap}[{i}]");
                let alt = alt
                    .as_object()
                    .ok_or_else(|| reject(&alt_path, "a schema must be a JSON object"))?;
                if alt.get("type") == Some(&Value::String("null".into())) && alt.len() == 1 {
                    nullable = true;
                    continue;
                }
                converted.push(self.convert(alt, &alt_path, depth + 1, false)?);
            }
            let mut base = match converted.len() {
                0 => return Err(reject(&ap, "an `anyOf` of only `null` has no Gemini type")),
                1 => match converted.pop() {
                    Some(Value::Object(o)) => o,
                    _ => Obj::new(),
                },
                _ => {
                    let mut o = Obj::new();
                    o.insert("anyOf".into(), Value::Array(converted));
                    o
                }
            };
            copy_annotations(node, &mut base);
            if nullable {
                base.insert("nullable".into(), true.into());
            }
            return Ok(Value::Object(base));
        }

        // Types.
        let mut types: Vec<&str> = match node.get("type") {
            None => Vec::new(),
            Some(Value::String(t)) => vec![t.as_str()],
            Some(Value::Array(ts)) => {
                let mut v = Vec::with_capacity(ts.len());
                for t in ts {
                    v.push(t.as_str().ok_or_else(|| {
                        reject(
                            &format!("{path}.type"),
                            "`type` must be a string or strings",
                        )
                    })?);
                }
                v
            }
            Some(_) => {
                return Err(reject(
                    &format!("{path}.type"),
                    "`type` must be a string or an array of strings",
                ))
            }
        };
        if types.contains(&"null") {
            nullable = true;
            types.retain(|t| *t != "null");
        }
        if types.len() > 1 {
            let mut alts = Vec::with_capacity(types.len());
            for t in &types {
                let mut single = node.clone();
                single.insert("type".into(), Value::String((*t).to_owned()));
                single.remove("nullable");
                alts.push(self.convert(&single, path, depth + 1, false)?);
            }
            let mut o = Obj::new();
            o.insert("anyOf".into(), Value::Array(alts));
            copy_annotations(node, &mut o);
            if nullable {
                o.insert("nullable".into(), true.into());
            }
            return Ok(Value::Object(o));
        }

        // Enumerations (a `const` is a one-value enum).
        let mut enum_values = None;
        if let Some(c) = node.get("const") {
            enum_values = Some((vec![c.clone()], format!("{path}.const")));
        } else if let Some(e) = node.get("enum") {
            let e = e
                .as_array()
                .ok_or_else(|| reject(&format!("{path}.enum"), "`enum` must be an array"))?;
            enum_values = Some((e.clone(), format!("{path}.enum")));
        }
        let mut enum_out = Vec::new();
        let mut enum_kind = None;
        if let Some((values, ep)) = &enum_values {
            for v in values {
                match v {
                    Value::Null => nullable = true,
                    Value::String(s) => {
                        enum_kind.get_or_insert("string");
                        enum_out.push(Value::String(s.clone()));
                    }
                    Value::Number(n) => {
                        enum_kind.get_or_insert(if n.is_f64() { "number" } else { "integer" });
                        enum_out.push(Value::String(n.to_string()));
                    }
                    _ => {
                        return Err(reject(
                            ep,
                            "only string and number values can be enumerated in a Gemini schema",
                        ))
                    }
                }
            }
        }

        let ty = match types.first() {
            Some(t) => *t,
            None if node.contains_key("properties") => "object",
            None if node.contains_key("items") => "array",
            None if enum_kind.is_some() => enum_kind.unwrap_or("string"),
            None => {
                return Err(reject(
                    path,
                    "the schema has no `type`; Gemini schemas need one (string, number, \
                     integer, boolean, array or object)",
                ))
            }
        };
        let gemini_type = match ty {
            "string" => "STRING",
            "number" => "NUMBER",
            "integer" => "INTEGER",
            "boolean" => "BOOLEAN",
            "array" => "ARRAY",
            "object" => "OBJECT",
            other => {
                return Err(reject(
                    &format!("{path}.type"),
                    format!("the type `{other}` cannot be expressed in a Gemini schema"),
                ))
            }
        };
        out.insert("type".into(), gemini_type.into());
        if let Some(f) = node.get("format").and_then(Value::as_str) {
            let known = match gemini_type {
                "STRING" => matches!(f, "date-time" | "enum"),
                "NUMBER" => matches!(f, "float" | "double"),
                "INTEGER" => matches!(f, "int32" | "int64"),
                _ => false,
            };
            if known {
                out.insert("format".into(), f.into());
            }
        }
        copy_annotations(node, &mut out);
        if !enum_out.is_empty() {
            out.insert("enum".into(), Value::Array(enum_out));
        }
        for key in [
            "minItems",
            "maxItems",
            "minLength",
            "maxLength",
            "pattern",
            "minimum",
            "maximum",
            "minProperties",
            "maxProperties",
            "propertyOrdering",
        ] {
            if let Some(v) = node.get(key) {
                out.insert(key.into(), v.clone());
            }
        }

        match gemini_type {
            "OBJECT" => {
                let props = match node.get("properties") {
                    None => Obj::new(),
                    Some(Value::Object(p)) => p.clone(),
                    Some(_) => {
                        return Err(reject(
                            &format!("{path}.properties"),
                            "`properties` must be an object",
                        ))
                    }
                };
                if props.is_empty() && !root {
                    return Err(reject(
                        path,
                        "an object without `properties` (a free-form map) cannot be expressed \
                         in a Gemini schema; declare its properties",
                    ));
                }
                let mut converted = Obj::new();
                for (name, prop) in &props {
                    let pp = format!("{path}.properties.{name}");
                    let prop = prop
                        .as_object()
                        .ok_or_else(|| reject(&pp, "a schema must be a JSON object"))?;
                    converted.insert(name.clone(), self.convert(prop, &pp, depth + 1, false)?);
                }
                if !converted.is_empty() {
                    out.insert("properties".into(), Value::Object(converted));
                }
                if let Some(req) = node.get("required") {
                    if !req.as_array().is_some_and(Vec::is_empty) {
                        out.insert("required".into(), req.clone());
                    }
                }
                if let Some(Value::Object(_)) = node.get("additionalProperties") {
                    if props.is_empty() {
                        return Err(reject(
                            &format!("{path}.additionalProperties"),
                            "a map schema cannot be expressed in a Gemini schema",
                        ));
                    }
                }
            }
            "ARRAY" => {
                let ip = format!("{path}.items");
                let items = match node.get("items") {
                    Some(Value::Object(i)) => i,
                    Some(_) => return Err(reject(&ip, "`items` must be a single schema object")),
                    None => {
                        return Err(reject(
                            path,
                            "an array schema needs `items` to be expressed in a Gemini schema",
                        ))
                    }
                };
                out.insert("items".into(), self.convert(items, &ip, depth + 1, false)?);
            }
            _ => {}
        }
        if nullable {
            out.insert("nullable".into(), true.into());
        }
        Ok(Value::Object(out))
    }
}

/// Copies the keywords that describe rather than constrain.
fn copy_annotations(from: &Obj, to: &mut Obj) {
    for key in ["title", "description", "example", "default"] {
        if let Some(v) = from.get(key) {
            to.insert(key.into(), v.clone());
        }
    }
}

#[cfg(test)]
mod tests;
