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

/// A small seeded generator (xorshift), so the differential tests are reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Documents that exercise every part of the grammar, each valid.
const SEEDS: &[&str] = &[
    r#"{"id":"chatcmpl-1","object":"chat.completion","created":1700000000,"model":"gpt-4o","choices":[{"index":0,"message":{"role":"assistant","content":"Hello \"there\"\n\u00e9\ud83d\ude00 \/ \\ \b\f\r\t"},"finish_reason":"stop","logprobs":null}],"usage":{"prompt_tokens":12,"completion_tokens":5,"total_tokens":17,"prompt_tokens_details":{"cached_tokens":0}},"system_fingerprint":null}"#,
    r#"[1,-2.5,3e10,4E-2,0.0,-0,1.5e+3,true,false,null,"",{},[],[[{}]],{"a":{"b":[{"c":"d"}]}}]"#,
    " {\n\t\"model\" : \"m\" , \"usage\" : { } , \"model\" : \"n\" } \r\n",
    r#""just a string with a \u0041 escape""#,
    "  -12.75e-3 ",
    r#"{"a":[],"b":{},"c":[{}],"d":"x","e":0}"#,
];

/// Bytes a mutation inserts or writes: structure, literals, digits, escapes, control characters.
const ALPHABET: &[u8] = b"{}[]\",:\\ \t\n\r0129.-+eEtrufalsn/bu\x01\x1fAz";

fn serde_accepts(doc: &[u8]) -> bool {
    serde_json::from_slice::<serde::de::IgnoredAny>(doc).is_ok()
}

#[test]
fn validation_agrees_with_serde_json_on_seeds_and_mutations() {
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let mut checked = 0;
    for seed in SEEDS {
        assert!(is_valid(seed.as_bytes()), "{seed}");
        assert!(serde_accepts(seed.as_bytes()), "{seed}");
        for _ in 0..4_000 {
            let mut doc = seed.as_bytes().to_vec();
            for _ in 0..=rng.below(3) {
                let at = rng.below(doc.len() + 1);
                let byte = ALPHABET[rng.below(ALPHABET.len())];
                match rng.below(3) {
                    0 if at < doc.len() => {
                        doc.remove(at);
                    }
                    1 if at < doc.len() => doc[at] = byte,
                    _ => doc.insert(at, byte),
                }
            }
            assert_eq!(
                is_valid(&doc),
                serde_accepts(&doc),
                "disagreement on {:?}",
                String::from_utf8_lossy(&doc)
            );
            checked += 1;
        }
    }
    assert_eq!(checked, SEEDS.len() * 4_000);
}

#[test]
fn every_prefix_and_suffix_of_a_valid_document_agrees_with_serde_json() {
    for seed in SEEDS {
        let b = seed.as_bytes();
        for cut in 0..=b.len() {
            for part in [&b[..cut], &b[cut..]] {
                assert_eq!(is_valid(part), serde_accepts(part), "{part:?}");
            }
        }
    }
}

#[test]
fn member_spans_match_serde_json_values() {
    let mut rng = Rng(0x0dd_ba11);
    for seed in SEEDS {
        let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(seed)
        else {
            assert!(matches!(scan(seed.as_bytes(), ["model"]), Scan::NotObject));
            continue;
        };
        let keys: Vec<&String> = map.keys().collect();
        for _ in 0..20 {
            let key = keys[rng.below(keys.len())].as_str();
            let Scan::Object([span, missing]) = scan(seed.as_bytes(), [key, "no-such-key"]) else {
                panic!("{seed} is an object");
            };
            assert_eq!(missing, None);
            let span = span.expect("present key");
            let value: serde_json::Value = serde_json::from_slice(&seed.as_bytes()[span]).unwrap();
            assert_eq!(&value, &map[key], "{key} in {seed}");
        }
    }
}

#[test]
fn scan_tells_non_json_from_non_objects() {
    assert_eq!(scan(b"[1]", ["a"]), Scan::NotObject);
    assert_eq!(scan(b"\"s\"", ["a"]), Scan::NotObject);
    assert_eq!(scan(b"{\"a\":1", ["a"]), Scan::NotJson);
    assert_eq!(scan(b"{\"a\":1}}", ["a"]), Scan::NotJson);
    assert_eq!(scan(b"", ["a"]), Scan::NotJson);
    assert_eq!(scan(b"{\"a\":1}", ["a"]), Scan::Object([Some(5..6)]));
    let deep = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
    assert_eq!(scan(deep.as_bytes(), []), Scan::NotObject);
    let deeper = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
    assert_eq!(scan(deeper.as_bytes(), []), Scan::NotJson);
}

#[test]
fn string_runs_stop_at_the_first_special_byte_at_any_offset() {
    // Every special byte at every position of a 24-byte run, with other special bytes after
    // it (a borrow in the eight-byte test must not hide or misplace the first one).
    for special in [b'"', b'\\', 0x00, 0x1f, 0x0a] {
        for at in 0..24 {
            let mut doc = vec![b'a'; 24];
            doc[at] = special;
            for later in doc.iter_mut().skip(at + 1).step_by(3) {
                *later = 0x01;
            }
            assert_eq!(plain_run_end(&doc, 0), at, "byte {special:#x} at {at}");
            assert_eq!(plain_run_end(&doc, at.min(5)), at);
        }
    }
    assert_eq!(plain_run_end(&[b'a'; 20], 0), 20);
    // Bytes at and just above the thresholds are plain.
    assert_eq!(plain_run_end(b" !#[]^\x7f\x80\xff\xe9zzzzzzzzz", 0), 19);
}
