use serde_json::{json, Value};

use super::*;

fn check(schema: Value, want: Value) {
    let got = to_gemini(&schema, "s").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(got, want, "\n got: {got}\nwant: {want}");
}

fn rejects(schema: Value, path: &str) {
    let e = to_gemini(&schema, "s").expect_err("should be rejected");
    assert_eq!(e.param.as_deref(), Some(path), "{e}");
}

#[test]
fn types_become_gemini_types() {
    check(
        json!({"type": "object", "title": "T", "description": "d", "properties": {
            "s": {"type": "string", "format": "date-time", "minLength": 1, "maxLength": 9, "pattern": "^a"},
            "e": {"type": "string", "format": "email"},
            "n": {"type": "number", "format": "double", "minimum": 0, "maximum": 1},
            "i": {"type": "integer", "format": "int64", "exclusiveMinimum": 0, "multipleOf": 2},
            "b": {"type": "boolean", "default": true},
            "a": {"type": "array", "items": {"type": "string"}, "minItems": 1, "uniqueItems": true},
            "o": {"type": "object", "properties": {"x": {"type": "integer"}}, "required": []}
        }, "required": ["s"], "additionalProperties": false, "$schema": "x", "examples": [{}]}),
        json!({"type": "OBJECT", "title": "T", "description": "d", "properties": {
            "s": {"type": "STRING", "format": "date-time", "minLength": 1, "maxLength": 9, "pattern": "^a"},
            "e": {"type": "STRING"},
            "n": {"type": "NUMBER", "format": "double", "minimum": 0, "maximum": 1},
            "i": {"type": "INTEGER", "format": "int64"},
            "b": {"type": "BOOLEAN", "default": true},
            "a": {"type": "ARRAY", "items": {"type": "STRING"}, "minItems": 1},
            "o": {"type": "OBJECT", "properties": {"x": {"type": "INTEGER"}}}
        }, "required": ["s"]}),
    );
}

#[test]
fn null_alternatives_become_nullable() {
    check(
        json!({"anyOf": [{"type": "string"}, {"type": "null"}], "description": "maybe"}),
        json!({"type": "STRING", "nullable": true, "description": "maybe"}),
    );
    check(
        json!({"type": ["integer", "null"]}),
        json!({"type": "INTEGER", "nullable": true}),
    );
    check(
        json!({"type": ["integer", "string"]}),
        json!({"anyOf": [{"type": "INTEGER"}, {"type": "STRING"}]}),
    );
    check(
        json!({"oneOf": [{"type": "integer"}, {"type": "string"}]}),
        json!({"anyOf": [{"type": "INTEGER"}, {"type": "STRING"}]}),
    );
    check(
        json!({"enum": ["a", "b", null]}),
        json!({"type": "STRING", "enum": ["a", "b"], "nullable": true}),
    );
    check(
        json!({"type": "integer", "enum": [1, 2]}),
        json!({"type": "INTEGER", "enum": ["1", "2"]}),
    );
    check(
        json!({"const": "only"}),
        json!({"type": "STRING", "enum": ["only"]}),
    );
}

#[test]
fn references_are_inlined_and_single_all_of_merged() {
    check(
        json!({
            "type": "object",
            "properties": {
                "home": {"$ref": "#/$defs/Address", "description": "where they live"},
                "work": {"allOf": [{"$ref": "#/definitions/Address"}]}
            },
            "$defs": {"Address": {"type": "object", "properties": {"city": {"type": "string"}}}},
            "definitions": {"Address": {"type": "object", "properties": {"city": {"type": "string"}}}}
        }),
        json!({"type": "OBJECT", "properties": {
            "home": {"type": "OBJECT", "properties": {"city": {"type": "STRING"}}, "description": "where they live"},
            "work": {"type": "OBJECT", "properties": {"city": {"type": "STRING"}}}
        }}),
    );
}

#[test]
fn inexpressible_schemas_are_rejected_at_their_path() {
    rejects(
        json!({"type": "object", "properties": {"a": {"not": {}}}}),
        "s.properties.a.not",
    );
    rejects(
        json!({"type": "object", "properties": {"a": {"allOf": [{"type": "string"}, {"minLength": 1}]}}}),
        "s.properties.a.allOf",
    );
    rejects(
        json!({"type": "object", "properties": {"n": {"$ref": "#/$defs/Node"}},
               "$defs": {"Node": {"type": "object", "properties": {"next": {"$ref": "#/$defs/Node"}}}}}),
        "s.properties.n.properties.next.$ref",
    );
    rejects(
        json!({"type": "object", "properties": {"r": {"$ref": "https://x/schema.json"}}}),
        "s.properties.r.$ref",
    );
    rejects(
        json!({"type": "object", "properties": {"m": {"type": "object"}}}),
        "s.properties.m",
    );
    rejects(
        json!({"type": "object", "properties": {"m": {"type": "object", "additionalProperties": {"type": "string"}}}}),
        "s.properties.m",
    );
    rejects(
        json!({"type": "object", "properties": {"l": {"type": "array"}}}),
        "s.properties.l",
    );
    rejects(
        json!({"type": "object", "properties": {"u": {"description": "anything"}}}),
        "s.properties.u",
    );
    rejects(
        json!({"type": "object", "properties": {"t": {"prefixItems": []}}}),
        "s.properties.t.prefixItems",
    );
    rejects(json!({"enum": [true]}), "s.enum");
    rejects(json!(true), "s");
}

#[test]
fn empty_parameter_schemas_declare_nothing() {
    assert!(declares_no_parameters(&json!({})));
    assert!(declares_no_parameters(&json!({"type": "object"})));
    assert!(declares_no_parameters(
        &json!({"type": "object", "properties": {}})
    ));
    assert!(!declares_no_parameters(
        &json!({"type": "object", "properties": {"a": {"type": "string"}}})
    ));
    assert!(!declares_no_parameters(&json!({"$ref": "#/$defs/A"})));
    assert!(!declares_no_parameters(&json!({"type": "string"})));
}

#[test]
fn hostile_depth_is_bounded() {
    let mut schema = json!({"type": "string"});
    for _ in 0..100 {
        schema = json!({"type": "object", "properties": {"x": schema}});
    }
    let e = to_gemini(&schema, "s").unwrap_err();
    assert!(e.message.contains("deeper"), "{e}");
}
