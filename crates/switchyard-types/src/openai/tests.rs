use super::*;
use crate::test_rng::Rng;

fn chat(body: &str) -> Result<(), String> {
    let req: ChatCompletionRequest<'_> = serde_json::from_str(body).map_err(|e| e.to_string())?;
    req.validate().map_err(|e| e.param)
}

#[test]
fn accepts_unknown_roles_fields_and_content_parts() {
    chat(r#"{"model":"m","messages":[{"role":"developer","content":"x"},{"role":"user","content":[{"type":"text","text":"hi"}]},{"role":"assistant","content":null,"tool_calls":[]}],"new_param":{"a":1}}"#).unwrap();
}

#[test]
fn rejects_bad_shapes_with_the_field_path() {
    assert_eq!(
        chat(r#"{"model":"m","messages":[]}"#),
        Err("messages".into())
    );
    assert_eq!(
        chat(r#"{"model":"m","messages":[{"role":"user","content":5}]}"#),
        Err("messages[0].content".into())
    );
    assert_eq!(
        chat(r#"{"model":"","messages":[{"role":"user"}]}"#),
        Err("model".into())
    );
    assert_eq!(
        chat(r#"{"model":"m","messages":[{"role":"user"}],"n":0}"#),
        Err("n".into())
    );
    assert_eq!(
        chat(r#"{"model":"m","messages":[{"role":"user"}],"tools":[{"type":"function"}]}"#),
        Err("tools[0].function".into())
    );
    assert!(chat(r#"{"model":"m","messages":[{"role":3}]}"#)
        .unwrap_err()
        .contains("invalid type"));
    assert!(
        chat(r#"{"model":"m","messages":[{"role":"user"}],"stream":"yes"}"#)
            .unwrap_err()
            .contains("invalid type")
    );
    assert!(chat(r#"{"messages":[{"role":"user"}]}"#)
        .unwrap_err()
        .contains("missing field `model`"));
}

#[test]
fn embeddings_input_shapes() {
    let ok = |b: &str| {
        serde_json::from_str::<EmbeddingsRequest<'_>>(b)
            .unwrap()
            .validate()
    };
    assert!(ok(r#"{"model":"e","input":"x"}"#).is_ok());
    assert!(ok(r#"{"model":"e","input":["a","b"]}"#).is_ok());
    assert!(ok(r#"{"model":"e","input":[[1,2],[3]]}"#).is_ok());
    assert_eq!(
        ok(r#"{"model":"e","input":[ ]}"#).unwrap_err().param,
        "input"
    );
    assert_eq!(ok(r#"{"model":"e","input":7}"#).unwrap_err().param, "input");
}

#[test]
fn error_body_detection() {
    assert!(is_error_body(
        br#"{"error":{"message":"bad","type":"x","param":null,"code":null}}"#
    ));
    assert!(!is_error_body(b"<html>502</html>"));
    assert!(!is_error_body(br#"{"error":"flat string"}"#));
}

#[test]
fn usage_extraction() {
    let doc = br#"{"id":"x","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7,"prompt_tokens_details":{"cached_tokens":2}}}"#;
    assert_eq!(
        usage_of(doc),
        Some(Usage {
            prompt_tokens: 3,
            completion_tokens: 4,
            total_tokens: 7,
            cached_tokens: 2,
            cache_write_tokens: 0,
        })
    );
    assert_eq!(usage_of(br#"{"usage":null}"#), None);
    assert_eq!(usage_of(br#"{"choices":[]}"#), None);
}

#[test]
fn read_reply_validates_finds_the_model_and_usage_and_tells_errors_apart() {
    let doc = br#"{"id":"x","model":"gpt-4o","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}"#;
    let ReadReply::Object { model, usage } = read_reply(doc) else {
        panic!("an object");
    };
    assert_eq!(&doc[model.unwrap()], br#""gpt-4o""#);
    assert_eq!(usage.map(|u| u.total_tokens), Some(5));
    assert_eq!(
        read_reply(br#"{"choices":[],"usage":null}"#),
        ReadReply::Object {
            model: None,
            usage: None
        }
    );
    assert_eq!(
        read_reply(br#"{"error":{"message":"slow down","type":"rate_limit"}}"#),
        ReadReply::Error
    );
    // An `error` member without OpenAI's shape is an ordinary object.
    assert!(matches!(
        read_reply(br#"{"error":"no","model":"m"}"#),
        ReadReply::Object { model: Some(_), .. }
    ));
    assert_eq!(read_reply(br#"[1,2]"#), ReadReply::NotObject);
    assert_eq!(read_reply(br#"{"model":"m","#), ReadReply::NotJson);
    assert_eq!(read_reply(br#"{"model":"m"} x"#), ReadReply::NotJson);
}

/// Reads `input` both ways, asserts they agree, and returns the answer.
fn usage_both(input: &[u8]) -> Option<Usage> {
    let read = usage_in(input, 0..input.len());
    assert_eq!(
        read,
        usage_serde(input),
        "{:?}",
        String::from_utf8_lossy(input)
    );
    read
}

fn counts(prompt: u64, completion: u64, total: u64, cached: u64) -> Option<Usage> {
    Some(Usage {
        prompt_tokens: prompt,
        completion_tokens: completion,
        total_tokens: total,
        cached_tokens: cached,
        cache_write_tokens: 0,
    })
}

const TYPICAL_USAGE: &str = r#"{"prompt_tokens":13,"completion_tokens":13,"total_tokens":26,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}"#;

#[test]
fn usage_reads_like_serde_on_tricky_inputs() {
    let zero = counts(0, 0, 0, 0);
    let max = u64::MAX;
    let deep = |n: usize| format!(r#"{{"x":{}{}}}"#, "[".repeat(n), "]".repeat(n));
    let cases: Vec<(Vec<u8>, Option<Usage>)> = vec![
        // The common shapes, and null.
        (TYPICAL_USAGE.into(), counts(13, 13, 26, 0)),
        (
            br#"{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7,"prompt_tokens_details":{"cached_tokens":2}}"#.into(),
            counts(3, 4, 7, 2),
        ),
        (b"null".into(), None),
        (b" \n\tnull\r ".into(), None),
        (b"nul".into(), None),
        (b"nulll".into(), None),
        (b"{}".into(), zero),
        (b" { } ".into(), zero),
        (b"".into(), None),
        (b"  ".into(), None),
        // Whitespace wherever JSON allows it; a form feed is not JSON whitespace.
        (
            b" {\n \"prompt_tokens\" :\t1 ,\r\n \"prompt_tokens_details\" : { \"cached_tokens\" : 2 } , \"x\" : [ 1 , { } ] } \n".into(),
            counts(1, 0, 0, 2),
        ),
        (b"{\x0c}".into(), None),
        // Counters: plain integers that fit a u64, nothing else.
        (br#"{"prompt_tokens":0}"#.into(), zero),
        (br#"{"total_tokens":18446744073709551615}"#.into(), counts(0, 0, max, 0)),
        (br#"{"total_tokens":18446744073709551616}"#.into(), None),
        (br#"{"total_tokens":99999999999999999999999}"#.into(), None),
        (br#"{"prompt_tokens":-0}"#.into(), None),
        (br#"{"prompt_tokens":-1}"#.into(), None),
        (br#"{"prompt_tokens":13.0}"#.into(), None),
        (br#"{"prompt_tokens":1e3}"#.into(), None),
        (br#"{"prompt_tokens":1E2}"#.into(), None),
        (br#"{"prompt_tokens":013}"#.into(), None),
        (br#"{"prompt_tokens":00}"#.into(), None),
        (br#"{"prompt_tokens":+1}"#.into(), None),
        (br#"{"prompt_tokens":"13"}"#.into(), None),
        (br#"{"prompt_tokens":null}"#.into(), None),
        (br#"{"prompt_tokens":true}"#.into(), None),
        (br#"{"prompt_tokens":[13]}"#.into(), None),
        (br#"{"prompt_tokens":{}}"#.into(), None),
        // A known key twice is an error for serde's derive, whatever the values.
        (br#"{"prompt_tokens":1,"prompt_tokens":1}"#.into(), None),
        (br#"{"total_tokens":1,"x":0,"total_tokens":2}"#.into(), None),
        (
            br#"{"prompt_tokens_details":null,"prompt_tokens_details":null}"#.into(),
            None,
        ),
        // Keys: escapes are decoded, then compared; keys must be UTF-8; case matters.
        (br#"{"prompt\u005ftokens":7}"#.into(), counts(7, 0, 0, 0)),
        (br#"{"prompt\u005ftokens":7,"prompt_tokens":7}"#.into(), None),
        (br#"{"\u0078":1}"#.into(), zero),
        (br#"{"\ud800":1}"#.into(), None),
        (br#"{"\q":1}"#.into(), None),
        ("{\"\u{e9}\":1}".into(), zero),
        (b"{\"\xff\":1}".into(), None),
        (b"{\"a\tb\":1}".into(), None),
        (br#"{"Prompt_tokens":1,"prompt_tokens ":2}"#.into(), zero),
        (br#"{"cached_tokens":5}"#.into(), zero),
        // Unknown members are skipped, but must still be well-formed.
        (
            br#"{"x":[1,{"y":[true,false,null,-1.5e-3,0,"s\"\\\/\b\f\n\r\t\u00e9"]}],"z":{}}"#.into(),
            zero,
        ),
        (br#"{"cost":0.00012,"is_byok":false}"#.into(), zero),
        (br#"{"x":"\ud800"}"#.into(), zero),
        (b"{\"x\":\"\xff\xfe\"}".into(), zero),
        (b"{\"x\":\"a\tb\"}".into(), None),
        (br#"{"x":"\q"}"#.into(), None),
        (br#"{"x":"\u12"}"#.into(), None),
        (br#"{"x":"\u12G4"}"#.into(), None),
        (br#"{"x":"open}"#.into(), None),
        (br#"{"x":01}"#.into(), None),
        (br#"{"x":1.}"#.into(), None),
        (br#"{"x":.5}"#.into(), None),
        (br#"{"x":-}"#.into(), None),
        (br#"{"x":1e}"#.into(), None),
        (br#"{"x":1e+}"#.into(), None),
        (br#"{"x":+1}"#.into(), None),
        (br#"{"x":1.5.3}"#.into(), None),
        (br#"{"x":tru}"#.into(), None),
        (br#"{"x":nulls}"#.into(), None),
        (br#"{"x":[1,]}"#.into(), None),
        (br#"{"x":[1 2]}"#.into(), None),
        (br#"{"x":{"a":1,}}"#.into(), None),
        (br#"{"x":{"a" 1}}"#.into(), None),
        (br#"{"x":{1:1}}"#.into(), None),
        (br#"{"x":[}"#.into(), None),
        (br#"{"x":{]}"#.into(), None),
        (br#"{"x":}"#.into(), None),
        // Nesting past the reader's depth goes to serde, which ignores values at any depth.
        (deep(63).into(), zero),
        (deep(64).into(), zero),
        (deep(65).into(), zero),
        (deep(300).into(), zero),
        // prompt_tokens_details: null, or an object whose cached_tokens is null or a u64.
        (br#"{"prompt_tokens_details":null}"#.into(), zero),
        (br#"{"prompt_tokens_details":{}}"#.into(), zero),
        (br#"{"prompt_tokens_details":{"cached_tokens":null}}"#.into(), zero),
        (
            br#"{"prompt_tokens_details":{"audio_tokens":9,"cached_tokens":5}}"#.into(),
            counts(0, 0, 0, 5),
        ),
        (
            br#"{"prompt_tokens_details":{"cached_tokens":1,"cached_tokens":2}}"#.into(),
            None,
        ),
        (
            br#"{"prompt_tokens_details":{"cached_tokens":null,"cached_tokens":null}}"#.into(),
            None,
        ),
        (br#"{"prompt_tokens_details":{"cached_tokens":-1}}"#.into(), None),
        (br#"{"prompt_tokens_details":{"cached_tokens":1.0}}"#.into(), None),
        (br#"{"prompt_tokens_details":{"cached_tokens":"1"}}"#.into(), None),
        (br#"{"prompt_tokens_details":{"cached_tokens":false}}"#.into(), None),
        (br#"{"prompt_tokens_details":7}"#.into(), None),
        (br#"{"prompt_tokens_details":"x"}"#.into(), None),
        (br#"{"prompt_tokens_details":true}"#.into(), None),
        // serde_json reads a struct from an array too, field by field: not an object is not
        // always None.
        (br#"{"prompt_tokens_details":[7]}"#.into(), counts(0, 0, 0, 7)),
        (b"[]".into(), zero),
        (b"[1,2,3]".into(), counts(1, 2, 3, 0)),
        (br#"[1,2,3,{"cached_tokens":4}]"#.into(), counts(1, 2, 3, 4)),
        (b"[1,2,3,null,5]".into(), None),
        (br#""usage""#.into(), None),
        (b"13".into(), None),
        (b"true".into(), None),
        // Broken objects and trailing bytes.
        (br#"{"prompt_tokens":1} x"#.into(), None),
        (br#"{"prompt_tokens":1}}"#.into(), None),
        (br#"{"prompt_tokens":1,}"#.into(), None),
        (br#"{"prompt_tokens" 1}"#.into(), None),
        (br#"{"prompt_tokens":1 "total_tokens":2}"#.into(), None),
        (br#"{prompt_tokens:1}"#.into(), None),
        (br#"{'prompt_tokens':1}"#.into(), None),
        (br#"{"prompt_tokens":1"#.into(), None),
        (br#"{"prompt_tokens""#.into(), None),
    ];
    for (input, expected) in &cases {
        assert_eq!(
            usage_both(input),
            *expected,
            "{:?}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn usage_common_shapes_are_read_without_serde() {
    let decided = |s: &str| usage_reader::read(s.as_bytes());
    // OpenAI's layout, down to its shortest (every count one digit).
    let zeros = TYPICAL_USAGE.replace("13", "0").replace("26", "0");
    assert_eq!(zeros.len(), 249);
    assert_eq!(decided(&zeros), Some(counts(0, 0, 0, 0)));
    assert_eq!(decided(TYPICAL_USAGE), Some(counts(13, 13, 26, 0)));
    let max = TYPICAL_USAGE
        .replace("13", "18446744073709551615")
        .replace("26", "18446744073709551615");
    assert_eq!(decided(&max), Some(counts(u64::MAX, u64::MAX, u64::MAX, 0)));
    // The general walk: another order, whitespace, other members.
    assert_eq!(
        decided(
            r#"{"prompt_tokens":812,"completion_tokens":64,"total_tokens":876,"cost":0.0012,"prompt_tokens_details":null}"#
        ),
        Some(counts(812, 64, 876, 0))
    );
    assert_eq!(
        decided(&TYPICAL_USAGE.replace(':', ": ").replace(',', ", ")),
        Some(counts(13, 13, 26, 0))
    );
    assert_eq!(
        decided(&TYPICAL_USAGE.replace("}}", r#"},"x":[]}"#)),
        Some(counts(13, 13, 26, 0))
    );
    assert_eq!(decided("null"), Some(None));
    assert_eq!(decided(" null "), Some(None));
    // What the reader leaves to serde.
    assert_eq!(decided(r#"{"prompt\u005ftokens":7}"#), None);
    assert_eq!(decided(r#"{"prompt_tokens":1e3}"#), None);
    assert_eq!(decided(r#"{"prompt_tokens":1,"prompt_tokens":1}"#), None);
    assert_eq!(
        decided(&TYPICAL_USAGE.replace("13", "18446744073709551616")),
        None
    );
    assert_eq!(decided("[1,2,3]"), None);
}

#[test]
fn usage_reads_like_serde_under_every_one_byte_edit() {
    // Each byte of a few documents deleted, or replaced by or preceded with each byte that
    // matters to JSON's grammar or to the reader.
    let seeds = [
        TYPICAL_USAGE,
        r#" { "prompt_tokens" : 1 , "prompt_tokens_details" : null , "x" : [ -1.5e+3 , "a\u0041\n" , true , false , null , { } , [ ] ] } "#,
        r#"{"total_tokens":18446744073709551615,"prompt_tokens_details":{"cached_tokens":null}}"#,
        "null",
    ];
    let zeros = TYPICAL_USAGE.replace("13", "0").replace("26", "0");
    let seeds = seeds.iter().copied().chain([zeros.as_str()]);
    let bytes = b"{}[]\":,\\ \n-+.0159eEuntrlsfa_\x01\x7f\xc3\xff";
    let mut checked = 0;
    for seed in seeds {
        let seed = seed.as_bytes();
        for at in 0..=seed.len() {
            let (head, tail) = seed.split_at(at);
            if let Some((_, rest)) = tail.split_first() {
                usage_both(&[head, rest].concat());
            }
            for &b in bytes {
                usage_both(&[head, &[b], tail].concat());
                if let Some((_, rest)) = tail.split_first() {
                    usage_both(&[head, &[b], rest].concat());
                }
                checked += 2;
            }
        }
    }
    assert!(checked > 10_000);
}

const GEN_KEYS: &[&str] = &[
    r#""prompt_tokens""#,
    r#""completion_tokens""#,
    r#""total_tokens""#,
    r#""prompt_tokens_details""#,
    r#""cached_tokens""#,
    r#""completion_tokens_details""#,
    r#""audio_tokens""#,
    r#""reasoning_tokens""#,
    r#""rejected_prediction_tokens""#,
    r#""x""#,
    r#""""#,
    r#""prompt\u005ftokens""#,
    r#""total_tokens ""#,
    r#""\u00e9""#,
    "\"\u{e9}\"",
];

const GEN_SCALARS: &[&str] = &[
    "0",
    "7",
    "13",
    "18446744073709551615",
    "18446744073709551616",
    "-0",
    "-1",
    "13.0",
    "1e3",
    "1E2",
    "2.5e-3",
    "013",
    "\"13\"",
    "\"a\\\"b\\u00e9\"",
    "\"\\ud800\"",
    "\"\\x\"",
    "null",
    "true",
    "false",
    "[]",
    "{}",
];

const GEN_SPACE: &[&str] = &["", "", "", " ", "\n\t", "\r\n  "];

/// A random value of depth at most `depth`: mostly well-formed, sometimes not.
fn gen_value(rng: &mut Rng, depth: u32, out: &mut String) {
    match rng.index(if depth == 0 { 1 } else { 4 }) {
        0 => out.push_str(rng.pick(GEN_SCALARS)),
        1 => {
            out.push('[');
            for i in 0..rng.index(4) {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(rng.pick(GEN_SPACE));
                gen_value(rng, depth - 1, out);
                out.push_str(rng.pick(GEN_SPACE));
            }
            out.push(']');
        }
        _ => gen_object(rng, depth - 1, out),
    }
}

fn gen_object(rng: &mut Rng, depth: u32, out: &mut String) {
    out.push('{');
    out.push_str(rng.pick(GEN_SPACE));
    for i in 0..rng.index(6) {
        if i > 0 {
            out.push(',');
            out.push_str(rng.pick(GEN_SPACE));
        }
        out.push_str(rng.pick(GEN_KEYS));
        out.push_str(rng.pick(GEN_SPACE));
        out.push(':');
        out.push_str(rng.pick(GEN_SPACE));
        gen_value(rng, depth, out);
        out.push_str(rng.pick(GEN_SPACE));
    }
    out.push('}');
}

#[test]
fn usage_reads_like_serde_on_generated_objects() {
    let mut rng = Rng(0x5717_c4a2_d00d_f00d);
    let (mut by_reader, mut cases) = (0, 0);
    for _ in 0..30_000 {
        let mut doc = String::new();
        doc.push_str(rng.pick(GEN_SPACE));
        match rng.index(20) {
            0 => doc.push_str("null"),
            1 => gen_value(&mut rng, 3, &mut doc),
            _ => gen_object(&mut rng, 3, &mut doc),
        }
        doc.push_str(rng.pick(GEN_SPACE));
        let mut doc = doc.into_bytes();
        // Now and then a random byte is dropped or overwritten.
        if rng.index(8) == 0 && !doc.is_empty() {
            let at = rng.index(doc.len());
            if rng.index(2) == 0 {
                doc.remove(at);
            } else {
                let bytes = b"{}[]\",:\\ -.0e";
                doc[at] = bytes[rng.index(bytes.len())];
            }
        }
        usage_both(&doc);
        cases += 1;
        if usage_reader::read(&doc).is_some() {
            by_reader += 1;
        }
    }
    // Both paths are exercised: the reader's own answers and serde's.
    assert!(by_reader > cases / 10, "{by_reader} of {cases}");
    assert!(by_reader < cases * 9 / 10, "{by_reader} of {cases}");
}
