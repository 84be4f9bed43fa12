use super::*;

fn replaced(doc: &str, v: &str) -> Option<String> {
    replace_top_level_string(doc.as_bytes(), "model", v).map(|b| String::from_utf8(b).unwrap())
}

#[test]
fn splices_only_the_model_value() {
    let doc = "{\n  \"id\": \"x\",\n  \"model\": \"gpt-4o-2024-08-06\",\n  \"n\": 1.50e3\n}";
    assert_eq!(
        replaced(doc, "demo").unwrap(),
        "{\n  \"id\": \"x\",\n  \"model\": \"demo\",\n  \"n\": 1.50e3\n}"
    );
}

#[test]
fn ignores_nested_keys_and_strings_that_look_like_keys() {
    let doc = r#"{"messages":[{"model":"inner","content":"\"model\": \"no\" {["}],"model":"m","x":{"model":1}}"#;
    let out = replaced(doc, "alias").unwrap();
    assert_eq!(
        out,
        r#"{"messages":[{"model":"inner","content":"\"model\": \"no\" {["}],"model":"alias","x":{"model":1}}"#
    );
}

#[test]
fn escapes_the_new_value() {
    assert_eq!(
        replaced(r#"{"model":"a"}"#, "q\"x").unwrap(),
        r#"{"model":"q\"x"}"#
    );
}

#[test]
fn matches_escaped_keys() {
    assert_eq!(
        replaced(r#"{"mod\u0065l":"a"}"#, "b").unwrap(),
        r#"{"mod\u0065l":"b"}"#
    );
}

#[test]
fn last_duplicate_wins() {
    let doc = r#"{"model":"a","model":"b"}"#;
    assert_eq!(top_level_value(doc.as_bytes(), "model"), Some(21..24));
}

#[test]
fn non_objects_and_missing_keys_give_none() {
    assert_eq!(replaced("[1,2]", "x"), None);
    assert_eq!(replaced(r#"{"a":1}"#, "x"), None);
    assert_eq!(replaced("", "x"), None);
    assert_eq!(replaced(r#"{"model":"#, "x"), None);
    assert_eq!(replaced(r#"{"model" "a"}"#, "x"), None);
}

#[test]
fn scalar_values_and_whitespace() {
    let doc = " { \"a\" : true , \"model\" : null , \"b\" : -1 } ";
    assert_eq!(
        &doc[top_level_value(doc.as_bytes(), "model").unwrap()],
        "null"
    );
    assert_eq!(&doc[top_level_value(doc.as_bytes(), "b").unwrap()], "-1");
}

#[test]
fn never_panics_on_arbitrary_prefixes() {
    let doc = r#"{"a":[1,{"b":"c\\\""}],"model":"m","z":{"y":[true,false,null]}}"#;
    for end in 0..=doc.len() {
        let _ = top_level_value(&doc.as_bytes()[..end], "model");
        let _ = top_level_value(&doc.as_bytes()[end..], "model");
    }
}
