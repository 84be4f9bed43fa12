//! Reading and validating Gemini request bodies the way Google's front end does.
//!
//! Google's API is protobuf behind JSON: an unknown field anywhere is a 400 (`Invalid JSON
//! payload received. Unknown name "x" at 'generation_config': Cannot find field.`), enums are
//! closed, and semantic checks answer `* GenerateContentRequest.<path>: <reason>`. A gateway
//! that translates into this format is only as good as what the real API accepts, so the mock
//! checks the same things: field names at every level, roles, part kinds, base64 payloads,
//! function declarations and their schemas, tool config, generation config ranges, and that
//! every function call turn is answered by as many function responses.

use serde_json::{Map, Value};

use crate::knobs::Knobs;
use crate::text;

type Obj = Map<String, Value>;

/// Top-level fields of `GenerateContentRequest` (`mock` is the mock's own knob object).
const REQUEST_FIELDS: [&str; 10] = [
    "contents",
    "tools",
    "toolConfig",
    "safetySettings",
    "systemInstruction",
    "generationConfig",
    "cachedContent",
    "model",
    "labels",
    "mock",
];

const PART_FIELDS: [&str; 11] = [
    "text",
    "inlineData",
    "fileData",
    "functionCall",
    "functionResponse",
    "executableCode",
    "codeExecutionResult",
    "thought",
    "thoughtSignature",
    "videoMetadata",
    "partMetadata",
];

const GENERATION_FIELDS: [&str; 19] = [
    "stopSequences",
    "responseMimeType",
    "responseSchema",
    "responseJsonSchema",
    "responseModalities",
    "candidateCount",
    "maxOutputTokens",
    "temperature",
    "topP",
    "topK",
    "seed",
    "presencePenalty",
    "frequencyPenalty",
    "responseLogprobs",
    "logprobs",
    "enableEnhancedCivicAnswers",
    "speechConfig",
    "thinkingConfig",
    "mediaResolution",
];

const SCHEMA_FIELDS: [&str; 22] = [
    "type",
    "format",
    "title",
    "description",
    "nullable",
    "enum",
    "maxItems",
    "minItems",
    "properties",
    "required",
    "minProperties",
    "maxProperties",
    "minLength",
    "maxLength",
    "pattern",
    "example",
    "anyOf",
    "propertyOrdering",
    "default",
    "items",
    "minimum",
    "maximum",
];

/// How the model may call functions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Mode {
    Auto,
    Any,
    None,
}

/// A declared function.
pub(super) struct Declaration {
    pub(super) name: String,
    /// `parameters` (Gemini's schema) or `parametersJsonSchema`.
    pub(super) schema: Option<Value>,
}

/// A validated `generateContent` request, reduced to what the reply needs.
pub(super) struct Generate {
    pub(super) knobs: Knobs,
    pub(super) declarations: Vec<Declaration>,
    pub(super) mode: Mode,
    pub(super) allowed: Vec<String>,
    pub(super) candidates: u32,
    pub(super) max_output_tokens: Option<u64>,
    pub(super) stop_sequences: Vec<String>,
    pub(super) json: bool,
    pub(super) response_schema: Option<Value>,
    pub(super) include_thoughts: bool,
    pub(super) thinking: bool,
    pub(super) cached: bool,
    /// Estimated prompt tokens.
    pub(super) prompt_tokens: u64,
    /// Whether the conversation ends with function responses (the model then answers in text
    /// unless told to call again).
    pub(super) answering_tool_results: bool,
    pub(super) seed: u64,
}

/// An embedding request (one of a batch, or the single one).
pub(super) struct Embed {
    pub(super) text: String,
    pub(super) dimensions: Option<u64>,
}

fn unknown(name: &str, at: &str) -> String {
    if at.is_empty() {
        format!("Invalid JSON payload received. Unknown name \"{name}\": Cannot find field.")
    } else {
        format!(
            "Invalid JSON payload received. Unknown name \"{name}\" at '{at}': Cannot find field."
        )
    }
}

fn bad(path: &str, reason: &str) -> String {
    format!("* GenerateContentRequest.{path}: {reason}\n")
}

fn check_fields(o: &Obj, allowed: &[&str], at: &str) -> Result<(), String> {
    match o.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(unknown(k, at)),
        None => Ok(()),
    }
}

/// Parses the body as a JSON object.
pub(super) fn parse(body: &[u8]) -> Result<Obj, String> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(o)) => Ok(o),
        Ok(_) => Err("Invalid JSON payload received. Expected an object.".to_owned()),
        Err(e) => Err(format!(
            "Invalid JSON payload received. Unexpected token.\n{e}"
        )),
    }
}

/// The `"mock"` knob object of a body, overridden by the `x-mock-knobs` header.
pub(super) fn knobs(o: &Obj, headers: &http::HeaderMap) -> Result<Knobs, String> {
    let body = match o.get("mock") {
        None => None,
        Some(v) => Some(serde_json::from_value(v.clone()).map_err(|e| format!("mock: {e}"))?),
    };
    Knobs::resolve(headers, body)
}

fn is_base64(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+/=-_".contains(&b))
}

/// Validates a `generateContent` / `streamGenerateContent` body.
pub(super) fn generate(o: Obj, knobs: Knobs, model: &str) -> Result<Generate, String> {
    check_fields(&o, &REQUEST_FIELDS, "")?;
    let contents = match o.get("contents") {
        Some(Value::Array(c)) if !c.is_empty() => c,
        Some(Value::Array(_)) | None => {
            return Err(bad("contents", "contents is not specified"));
        }
        Some(_) => return Err("Invalid JSON payload received. Unknown name \"contents\": Proto field is not repeating, cannot start list.".to_owned()),
    };
    let mut prompt_chars = 0usize;
    let mut seed_text = String::new();
    // Function calls of the previous model turn, waiting for their responses.
    let mut pending_calls: Option<(usize, usize)> = None;
    let mut last_role = "";
    let mut last_has_responses = false;
    let gemini3 = model.contains("gemini-3");
    for (i, c) in contents.iter().enumerate() {
        let at = format!("contents[{i}]");
        let c = c.as_object().ok_or_else(|| bad(&at, "must be an object"))?;
        check_fields(c, &["role", "parts"], "contents[0]")?;
        let role = match c.get("role") {
            None => "user",
            Some(Value::String(r)) if r == "user" || r == "model" => r.as_str(),
            Some(_) => {
                return Err("Please use a valid role: user, model.".to_owned());
            }
        };
        let parts = match c.get("parts") {
            Some(Value::Array(p)) if !p.is_empty() => p,
            _ => {
                return Err(bad(
                    &format!("{at}.parts"),
                    "contents.parts must not be empty.",
                ))
            }
        };
        let mut calls = 0usize;
        let mut responses = 0usize;
        for (j, p) in parts.iter().enumerate() {
            let pat = format!("{at}.parts[{j}]");
            let p = p
                .as_object()
                .ok_or_else(|| bad(&pat, "must be an object"))?;
            check_fields(p, &PART_FIELDS, "contents[0].parts[0]")?;
            let data: Vec<&String> = p
                .keys()
                .filter(|k| {
                    !matches!(
                        k.as_str(),
                        "thought" | "thoughtSignature" | "videoMetadata" | "partMetadata"
                    )
                })
                .collect();
            if data.len() != 1 {
                return Err(bad(
                    &format!("{pat}.data"),
                    "required oneof field 'data' must have one initialized field",
                ));
            }
            if let Some(sig) = p.get("thoughtSignature") {
                if !sig.as_str().is_some_and(is_base64) {
                    return Err(format!(
                        "Invalid value at '{pat}.thought_signature' (TYPE_BYTES), Base64 decoding failed"
                    ));
                }
            }
            match data[0].as_str() {
                "text" => {
                    let t = p["text"]
                        .as_str()
                        .ok_or_else(|| bad(&format!("{pat}.text"), "must be a string"))?;
                    if t.is_empty() {
                        return Err("Unable to submit request because it has an empty text parameter. Add a value to the parameter and try again.".to_owned());
                    }
                    prompt_chars += t.len();
                    seed_text.push_str(t);
                }
                "inlineData" => {
                    let d = p["inlineData"]
                        .as_object()
                        .ok_or_else(|| bad(&pat, "inlineData must be an object"))?;
                    check_fields(d, &["mimeType", "data"], "contents[0].parts[0].inline_data")?;
                    if !d
                        .get("mimeType")
                        .and_then(Value::as_str)
                        .is_some_and(|m| m.contains('/'))
                    {
                        return Err(bad(
                            &format!("{pat}.inline_data.mime_type"),
                            "a valid mime type is required",
                        ));
                    }
                    if !d.get("data").and_then(Value::as_str).is_some_and(is_base64) {
                        return Err(format!("Invalid value at '{pat}.inline_data.data' (TYPE_BYTES), Base64 decoding failed"));
                    }
                    prompt_chars += 1032;
                }
                "fileData" => {
                    let d = p["fileData"]
                        .as_object()
                        .ok_or_else(|| bad(&pat, "fileData must be an object"))?;
                    check_fields(
                        d,
                        &["mimeType", "fileUri"],
                        "contents[0].parts[0].file_data",
                    )?;
                    if d.get("fileUri")
                        .and_then(Value::as_str)
                        .is_none_or(str::is_empty)
                    {
                        return Err(bad(
                            &format!("{pat}.file_data.file_uri"),
                            "file_uri is required",
                        ));
                    }
                    if d.get("mimeType").and_then(Value::as_str).is_none() {
                        return Err(bad(
                            &format!("{pat}.file_data.mime_type"),
                            "mime_type is required",
                        ));
                    }
                    prompt_chars += 1032;
                }
                "functionCall" => {
                    if role != "model" {
                        return Err(bad(&pat, "function calls must be in a model turn"));
                    }
                    let f = p["functionCall"]
                        .as_object()
                        .ok_or_else(|| bad(&pat, "functionCall must be an object"))?;
                    check_fields(
                        f,
                        &["id", "name", "args"],
                        "contents[0].parts[0].function_call",
                    )?;
                    if f.get("name")
                        .and_then(Value::as_str)
                        .is_none_or(str::is_empty)
                    {
                        return Err(bad(
                            &format!("{pat}.function_call.name"),
                            "Name cannot be empty.",
                        ));
                    }
                    if f.get("args").is_some_and(|a| !a.is_object()) {
                        return Err(format!("Invalid value at '{pat}.function_call.args' (type.googleapis.com/google.protobuf.Struct)"));
                    }
                    if gemini3 && calls == 0 && !p.contains_key("thoughtSignature") {
                        return Err(format!("Function call is missing a thought_signature in functionCall parts. This is required for tools to work correctly, and missing thought_signature may lead to degraded model performance. Additional data, function call `default_api:{}` , position {}. Please refer to https://ai.google.dev/gemini-api/docs/thought-signatures for more details.", f["name"].as_str().unwrap_or(""), j + 1));
                    }
                    calls += 1;
                    prompt_chars += f.get("args").map_or(2, |a| a.to_string().len());
                }
                "functionResponse" => {
                    let f = p["functionResponse"]
                        .as_object()
                        .ok_or_else(|| bad(&pat, "functionResponse must be an object"))?;
                    check_fields(
                        f,
                        &[
                            "id",
                            "name",
                            "response",
                            "parts",
                            "willContinue",
                            "scheduling",
                        ],
                        "contents[0].parts[0].function_response",
                    )?;
                    if f.get("name")
                        .and_then(Value::as_str)
                        .is_none_or(str::is_empty)
                    {
                        return Err(bad(
                            &format!("{pat}.function_response.name"),
                            "Name cannot be empty.",
                        ));
                    }
                    if !f.get("response").is_some_and(Value::is_object) {
                        return Err(bad(
                            &format!("{pat}.function_response.response"),
                            "response must be a JSON object",
                        ));
                    }
                    responses += 1;
                    prompt_chars += f["response"].to_string().len();
                }
                _ => {}
            }
        }
        if let Some((turn, expected)) = pending_calls.take() {
            if role != "user" || responses != expected {
                return Err(format!("Please ensure that the number of function response parts is equal to the number of function call parts of the function call turn (contents[{turn}])."));
            }
        } else if responses > 0 {
            return Err("Please ensure that function response turn comes immediately after a function call turn.".to_owned());
        }
        if calls > 0 {
            pending_calls = Some((i, calls));
        }
        last_role = role;
        last_has_responses = responses > 0;
    }

    let mut system_chars = 0;
    if let Some(s) = o.get("systemInstruction") {
        let s = s
            .as_object()
            .ok_or_else(|| bad("system_instruction", "must be an object"))?;
        check_fields(s, &["role", "parts"], "system_instruction")?;
        for (j, p) in s
            .get("parts")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            match p.get("text").and_then(Value::as_str) {
                Some(t) => {
                    system_chars += t.len();
                    seed_text.push_str(t);
                }
                None => {
                    return Err(bad(
                        &format!("system_instruction.parts[{j}]"),
                        "only text parts are allowed in a system instruction",
                    ))
                }
            }
        }
    }

    let (declarations, mode, allowed) = tools(&o)?;
    let g = generation(&o)?;

    let candidates = g.candidate_count;
    let prompt_tokens =
        text::estimate_tokens(prompt_chars + system_chars) + 4 * contents.len() as u64;
    Ok(Generate {
        seed: text::fnv1a(seed_text.as_bytes()),
        knobs,
        declarations,
        mode,
        allowed,
        candidates,
        max_output_tokens: g.max_output_tokens,
        stop_sequences: g.stop_sequences,
        json: g.json,
        response_schema: g.response_schema,
        include_thoughts: g.include_thoughts,
        thinking: g.thinking,
        cached: o.contains_key("cachedContent"),
        prompt_tokens,
        answering_tool_results: last_role == "user" && last_has_responses,
    })
}

fn tools(o: &Obj) -> Result<(Vec<Declaration>, Mode, Vec<String>), String> {
    let mut declarations = Vec::new();
    for (i, t) in o
        .get("tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let t = t
            .as_object()
            .ok_or_else(|| bad(&format!("tools[{i}]"), "must be an object"))?;
        check_fields(
            t,
            &[
                "functionDeclarations",
                "googleSearch",
                "googleSearchRetrieval",
                "codeExecution",
                "urlContext",
                "retrieval",
                "computerUse",
            ],
            "tools[0]",
        )?;
        for (j, d) in t
            .get("functionDeclarations")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let at = format!("tools[{i}].function_declarations[{j}]");
            let d = d.as_object().ok_or_else(|| bad(&at, "must be an object"))?;
            check_fields(
                d,
                &[
                    "name",
                    "description",
                    "parameters",
                    "parametersJsonSchema",
                    "response",
                    "responseJsonSchema",
                    "behavior",
                ],
                "tools[0].function_declarations[0]",
            )?;
            let name = d.get("name").and_then(Value::as_str).unwrap_or("");
            let valid = !name.is_empty()
                && name.len() <= 64
                && name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_.:-".contains(c));
            if !valid {
                return Err(bad(&format!("{at}.name"), "Invalid function name. Must start with a letter or an underscore. Must be alphameric (a-z, A-Z, 0-9), underscores (_), dots (.), colons (:) or dashes (-), with a maximum length of 64."));
            }
            if d.contains_key("parameters") && d.contains_key("parametersJsonSchema") {
                return Err(bad(
                    &at,
                    "parameters and parameters_json_schema are mutually exclusive",
                ));
            }
            let schema = match (d.get("parameters"), d.get("parametersJsonSchema")) {
                (Some(p), _) => {
                    check_schema(p, &format!("{at}.parameters"))?;
                    Some(p.clone())
                }
                (None, Some(p)) => Some(p.clone()),
                (None, None) => None,
            };
            declarations.push(Declaration {
                name: name.to_owned(),
                schema,
            });
        }
    }
    let mut mode = Mode::Auto;
    let mut allowed = Vec::new();
    if let Some(tc) = o.get("toolConfig") {
        let tc = tc
            .as_object()
            .ok_or_else(|| bad("tool_config", "must be an object"))?;
        check_fields(
            tc,
            &["functionCallingConfig", "retrievalConfig"],
            "tool_config",
        )?;
        if let Some(f) = tc.get("functionCallingConfig").and_then(Value::as_object) {
            check_fields(
                f,
                &["mode", "allowedFunctionNames"],
                "tool_config.function_calling_config",
            )?;
            mode = match f.get("mode").and_then(Value::as_str) {
                None | Some("AUTO" | "MODE_UNSPECIFIED" | "VALIDATED") => Mode::Auto,
                Some("ANY") => Mode::Any,
                Some("NONE") => Mode::None,
                Some(other) => return Err(format!("Invalid value at 'tool_config.function_calling_config.mode' (type.googleapis.com/google.ai.generativelanguage.v1beta.FunctionCallingConfig.Mode), \"{other}\"")),
            };
            if let Some(names) = f.get("allowedFunctionNames").and_then(Value::as_array) {
                if mode != Mode::Any {
                    return Err(bad(
                        "tool_config.function_calling_config.allowed_function_names",
                        "allowed_function_names should only be set when the Mode is ANY.",
                    ));
                }
                for n in names {
                    let n = n.as_str().unwrap_or("");
                    if !declarations.iter().any(|d| d.name == n) {
                        return Err(bad(
                            "tool_config.function_calling_config.allowed_function_names",
                            &format!("function name {n} is not declared"),
                        ));
                    }
                    allowed.push(n.to_owned());
                }
            }
        }
    }
    Ok((declarations, mode, allowed))
}

/// Checks a Gemini `Schema` (the OpenAPI subset) as Google does.
pub(super) fn check_schema(s: &Value, at: &str) -> Result<(), String> {
    check_schema_at(s, at, 0)
}

fn check_schema_at(s: &Value, at: &str, depth: usize) -> Result<(), String> {
    if depth > 64 {
        return Err(bad(at, "schema is nested too deeply"));
    }
    let o = s
        .as_object()
        .ok_or_else(|| bad(at, "schema must be an object"))?;
    check_fields(o, &SCHEMA_FIELDS, at)?;
    let ty = o
        .get("type")
        .and_then(Value::as_str)
        .map(str::to_ascii_uppercase);
    if let Some(t) = &ty {
        if ![
            "STRING",
            "NUMBER",
            "INTEGER",
            "BOOLEAN",
            "ARRAY",
            "OBJECT",
            "NULL",
            "TYPE_UNSPECIFIED",
        ]
        .contains(&t.as_str())
        {
            return Err(format!("Invalid value at '{at}.type' (type.googleapis.com/google.ai.generativelanguage.v1beta.Type), \"{t}\""));
        }
    } else if !o.contains_key("anyOf") {
        return Err(bad(&format!("{at}.type"), "must be specified"));
    }
    if let Some(e) = o.get("enum") {
        if !e.as_array().is_some_and(|v| v.iter().all(Value::is_string)) {
            return Err(format!(
                "Invalid value at '{at}.enum': enum values must be strings"
            ));
        }
    }
    match ty.as_deref() {
        Some("OBJECT") => {
            let props = o.get("properties").and_then(Value::as_object);
            if props.is_none_or(Map::is_empty) {
                return Err(bad(
                    &format!("{at}.properties"),
                    "should be non-empty for OBJECT type",
                ));
            }
            for (name, p) in props.into_iter().flatten() {
                check_schema_at(p, &format!("{at}.properties[{name}].value"), depth + 1)?;
            }
            for r in o
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let r = r.as_str().unwrap_or("");
                if !props.is_some_and(|p| p.contains_key(r)) {
                    return Err(bad(
                        &format!("{at}.required"),
                        &format!("property is not defined: {r}"),
                    ));
                }
            }
        }
        Some("ARRAY") => match o.get("items") {
            Some(i) => check_schema_at(i, &format!("{at}.items"), depth + 1)?,
            None => return Err(bad(&format!("{at}.items"), "missing field")),
        },
        _ => {}
    }
    for (k, alt) in o
        .get("anyOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        check_schema_at(alt, &format!("{at}.any_of[{k}]"), depth + 1)?;
    }
    Ok(())
}

struct GenerationConfig {
    candidate_count: u32,
    max_output_tokens: Option<u64>,
    stop_sequences: Vec<String>,
    json: bool,
    response_schema: Option<Value>,
    include_thoughts: bool,
    thinking: bool,
}

fn generation(o: &Obj) -> Result<GenerationConfig, String> {
    let mut out = GenerationConfig {
        candidate_count: 1,
        max_output_tokens: None,
        stop_sequences: Vec::new(),
        json: false,
        response_schema: None,
        include_thoughts: false,
        thinking: false,
    };
    let Some(g) = o.get("generationConfig") else {
        return Ok(out);
    };
    let g = g
        .as_object()
        .ok_or_else(|| bad("generation_config", "must be an object"))?;
    check_fields(g, &GENERATION_FIELDS, "generation_config")?;
    let number = |k: &str| g.get(k).and_then(Value::as_f64);
    if let Some(n) = g.get("candidateCount") {
        let n = n.as_u64().filter(|n| (1..=8).contains(n)).ok_or_else(|| {
            bad(
                "generation_config.candidate_count",
                "candidate_count must be between 1 and 8",
            )
        })?;
        out.candidate_count = u32::try_from(n).unwrap_or(1);
    }
    if let Some(m) = g.get("maxOutputTokens") {
        out.max_output_tokens = Some(m.as_u64().filter(|m| *m >= 1).ok_or_else(|| {
            bad(
                "generation_config.max_output_tokens",
                "max_output_tokens must be positive",
            )
        })?);
    }
    if number("temperature").is_some_and(|t| !(0.0..=2.0).contains(&t)) {
        return Err(bad(
            "generation_config.temperature",
            "temperature must be between 0 and 2",
        ));
    }
    if number("topP").is_some_and(|t| !(0.0..=1.0).contains(&t)) {
        return Err(bad(
            "generation_config.top_p",
            "top_p must be between 0 and 1",
        ));
    }
    for k in ["presencePenalty", "frequencyPenalty"] {
        if g.contains_key(k) && number(k).is_none() {
            return Err(format!(
                "Invalid value at 'generation_config.{k}' (TYPE_FLOAT)"
            ));
        }
    }
    if let Some(stops) = g.get("stopSequences") {
        let stops = stops
            .as_array()
            .ok_or_else(|| bad("generation_config.stop_sequences", "must be a list"))?;
        if stops.len() > 5 {
            return Err(bad(
                "generation_config.stop_sequences",
                "The maximum number of stop sequences is 5.",
            ));
        }
        out.stop_sequences = stops
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect();
    }
    match g.get("responseMimeType").and_then(Value::as_str) {
        None | Some("text/plain") => {}
        Some("application/json" | "text/x.enum") => out.json = true,
        Some(other) => return Err(bad("generation_config.response_mime_type", &format!("allowed mimetypes are `text/plain`, `application/json`, `application/xml`, `application/yaml` and `text/x.enum`; got {other}"))),
    }
    if let Some(schema) = g.get("responseSchema") {
        if !out.json {
            return Err(bad(
                "generation_config.response_schema",
                "only supported with response_mime_type `application/json` or `text/x.enum`",
            ));
        }
        check_schema(schema, "generation_config.response_schema")?;
        out.response_schema = Some(schema.clone());
    } else if let Some(schema) = g.get("responseJsonSchema") {
        out.response_schema = Some(schema.clone());
    }
    if let Some(t) = g.get("thinkingConfig") {
        let t = t
            .as_object()
            .ok_or_else(|| bad("generation_config.thinking_config", "must be an object"))?;
        check_fields(
            t,
            &["thinkingBudget", "includeThoughts", "thinkingLevel"],
            "generation_config.thinking_config",
        )?;
        out.include_thoughts = t.get("includeThoughts") == Some(&Value::Bool(true));
        out.thinking = out.include_thoughts
            || t.get("thinkingBudget")
                .and_then(Value::as_i64)
                .is_some_and(|b| b != 0)
            || t.contains_key("thinkingLevel");
    }
    Ok(out)
}

/// Validates an `embedContent` body (or one request of a batch). `batch_model` is the model
/// the batch URL names, which every request must repeat.
pub(super) fn embed(o: &Obj, at: &str, batch_model: Option<&str>) -> Result<Embed, String> {
    check_fields(
        o,
        &[
            "model",
            "content",
            "taskType",
            "title",
            "outputDimensionality",
            "autoTruncate",
            "mock",
        ],
        at,
    )?;
    if let Some(want) = batch_model {
        let model = o.get("model").and_then(Value::as_str).unwrap_or("");
        if model != want {
            return Err(format!("* BatchEmbedContentsRequest.{at}.model: Model names should match the model in the request URL ({want}); got `{model}`.\n"));
        }
    }
    let content = o
        .get("content")
        .and_then(Value::as_object)
        .ok_or_else(|| "* EmbedContentRequest.content: content is not specified\n".to_owned())?;
    check_fields(content, &["role", "parts"], &format!("{at}content"))?;
    let mut text = String::new();
    for p in content
        .get("parts")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        match p.get("text").and_then(Value::as_str) {
            Some(t) => text.push_str(t),
            None => {
                return Err(
                    "* EmbedContentRequest.content.parts: only text parts can be embedded\n"
                        .to_owned(),
                )
            }
        }
    }
    if text.is_empty() {
        return Err("* EmbedContentRequest.content: content must not be empty\n".to_owned());
    }
    if let Some(t) = o.get("taskType").and_then(Value::as_str) {
        const TASKS: [&str; 9] = [
            "TASK_TYPE_UNSPECIFIED",
            "RETRIEVAL_QUERY",
            "RETRIEVAL_DOCUMENT",
            "SEMANTIC_SIMILARITY",
            "CLASSIFICATION",
            "CLUSTERING",
            "QUESTION_ANSWERING",
            "FACT_VERIFICATION",
            "CODE_RETRIEVAL_QUERY",
        ];
        if !TASKS.contains(&t) {
            return Err(format!("Invalid value at 'task_type' (type.googleapis.com/google.ai.generativelanguage.v1beta.TaskType), \"{t}\""));
        }
    }
    let dimensions = match o.get("outputDimensionality") {
        None => None,
        Some(d) => Some(
            d.as_u64()
                .filter(|d| (1..=3072).contains(d))
                .ok_or_else(|| {
                    "* EmbedContentRequest.output_dimensionality: must be between 1 and 3072\n"
                        .to_owned()
                })?,
        ),
    };
    Ok(Embed { text, dimensions })
}
