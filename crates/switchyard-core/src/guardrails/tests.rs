use std::ops::ControlFlow;
use std::sync::Arc;

use serde_json::Value;

use super::detect::{iban_checksum_ok, luhn_ok};
use super::*;

// ---------------------------------------------------------------------------------------------
// Helpers

/// The substrings `d` finds in `text`, in order.
fn found(d: Detector, text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let _ = d.find_each(text, &mut |r| {
        out.push(&text[r]);
        ControlFlow::Continue(())
    });
    out
}

/// Checks every row of a detector's table and reports all failing rows at once.
fn check_detector(d: Detector, cases: &[(&str, &[&str])]) {
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|&(text, want)| {
            let got = found(d, text);
            (got != want).then(|| format!("{text:?}: want {want:?}, got {got:?}"))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{}:\n{}",
        d.name(),
        failures.join("\n")
    );
}

fn raw(yaml: &str) -> Vec<RawGuardrail> {
    serde_yaml_ng::from_str(yaml).expect("guardrails YAML")
}

fn engine(yaml: &str) -> Guardrails {
    let cfg = GuardrailsConfig::from_raw(&raw(yaml)).expect("valid guardrails");
    Guardrails::new(&cfg)
}

fn blocked(rule: &str, what: &'static str, stage: Stage) -> Verdict {
    Verdict::Blocked {
        rule: Arc::from(rule),
        what,
        stage,
    }
}

fn redacted(body: &str, rules: &[&str]) -> Verdict {
    Verdict::Redacted {
        body: Bytes::from(body.to_owned()),
        rules: rules.iter().map(|r| Arc::from(*r)).collect(),
    }
}

/// `s` with the one occurrence of `from` replaced by `to` (fails when `from` is not there
/// exactly once, so an expectation cannot silently go stale).
fn replace_once(s: &str, from: &str, to: &str) -> String {
    assert_eq!(s.matches(from).count(), 1, "{from:?} must occur once");
    s.replacen(from, to, 1)
}

/// Asserts a redaction and that the body still parses.
fn assert_redacted(got: Verdict, want_body: &str, rules: &[&str]) {
    if let Verdict::Redacted { body, .. } = &got {
        assert!(
            serde_json::from_slice::<Value>(body).is_ok(),
            "not JSON: {}",
            String::from_utf8_lossy(body)
        );
    }
    assert_eq!(got, redacted(want_body, rules));
}

const REDACT_PII: &str = "
- name: pii
  detect: [email, phone, credit_card, us_ssn, ipv4, iban]
  action: redact
  on: both
";

const BLOCK_PII: &str = "
- name: pii
  detect: [email, phone, credit_card, us_ssn, ipv4, iban]
  on: both
";

// ---------------------------------------------------------------------------------------------
// Detectors

#[test]
fn every_detector_compiles_and_round_trips_its_name() {
    for d in Detector::ALL {
        assert!(d.compiles(), "{} does not compile", d.name());
        assert_eq!(Detector::from_name(d.name()), Some(d));
    }
    assert_eq!(Detector::from_name("Email"), None);
}

#[test]
fn email() {
    check_detector(
        Detector::Email,
        &[
            (
                "mail jane.doe+tag@example.co.uk now",
                &["jane.doe+tag@example.co.uk"],
            ),
            ("a@b.io", &["a@b.io"]),
            ("Write to ops@example.com.", &["ops@example.com"]),
            (
                "x_y@sub.domain.org, z@q.dev",
                &["x_y@sub.domain.org", "z@q.dev"],
            ),
            ("<bob@example.com>", &["bob@example.com"]),
            ("no at sign here", &[]),
            ("user@localhost", &[]),
            ("foo@bar", &[]),
            ("@handle on social media", &[]),
            ("icon@2x.png and logo@3x.webp", &[]),
            ("x@-bad.com", &[]),
            ("a@b.comx1", &[]),
            ("josé@example.com", &[]),
        ],
    );
}

#[test]
fn phone() {
    check_detector(
        Detector::Phone,
        &[
            ("+1 415 555 2671", &["+1 415 555 2671"]),
            ("call +44 20 7946 0958 today", &["+44 20 7946 0958"]),
            ("+1 (415) 555-2671", &["+1 (415) 555-2671"]),
            ("+49 (0) 30 123456", &["+49 (0) 30 123456"]),
            ("+4930123456.", &["+4930123456"]),
            ("(415) 555-2671", &["(415) 555-2671"]),
            ("(415)555-2671", &["(415)555-2671"]),
            ("415-555-2671", &["415-555-2671"]),
            ("415.555.2671", &["415.555.2671"]),
            ("1-800-555-0199", &["1-800-555-0199"]),
            (
                "a: 415-555-2671, b: 212.555.0100",
                &["415-555-2671", "212.555.0100"],
            ),
            // Not phones.
            ("2024-01-15", &[]),
            ("2024-01-15T10:20:30Z", &[]),
            ("4155552671", &[]),
            ("version 1.2.3 and 10.20.30", &[]),
            ("415-555.2671", &[]),
            ("12415-555-2671", &[]),
            ("415-555-2671-99", &[]),
            ("415-555-26710", &[]),
            ("115-555-2671", &[]),
            ("+12345", &[]),
            ("+123456789012345678", &[]),
            ("x+14155552671", &[]),
            ("1+4155552671", &[]),
            ("+14155552671abc", &[]),
            ("ab/+14155552671=", &[]),
            ("iVBORw0KGgo+14155552671AAAA", &[]),
            ("UTC+05:30", &[]),
        ],
    );
}

#[test]
fn credit_card() {
    check_detector(
        Detector::CreditCard,
        &[
            ("4111 1111 1111 1111", &["4111 1111 1111 1111"]),
            ("card: 4111-1111-1111-1111.", &["4111-1111-1111-1111"]),
            ("4111111111111111", &["4111111111111111"]),
            ("5555 5555 5555 4444", &["5555 5555 5555 4444"]),
            ("6011111111111117", &["6011111111111117"]),
            ("amex 378282246310005", &["378282246310005"]),
            ("amex 3782 822463 10005", &["3782 822463 10005"]),
            ("diners 3056 930902 5904", &["3056 930902 5904"]),
            ("visa13 4222222222222", &["4222222222222"]),
            ("4111 1111 1111 1111 12/27", &["4111 1111 1111 1111"]),
            ("4111111111111111 123", &["4111111111111111"]),
            ("12 4111 1111 1111 1111", &["4111 1111 1111 1111"]),
            // Luhn failures.
            ("4111 1111 1111 1112", &[]),
            ("4111111111111112", &[]),
            // Inside longer runs of digits or letters.
            ("04111111111111111", &[]),
            ("x4111111111111111", &[]),
            ("4111111111111111abc", &[]),
            // Layouts cards are not printed in, mixed separators, other leading digits.
            ("4111 1111-1111 1111", &[]),
            ("41 11 11 11 11 11 11 11", &[]),
            ("4111  1111  1111  1111", &[]),
            ("0000000000000000", &[]),
            ("1705312345678 ms", &[]),
        ],
    );
}

#[test]
fn us_ssn() {
    check_detector(
        Detector::UsSsn,
        &[
            ("123-45-6789", &["123-45-6789"]),
            ("SSN:123-45-6789.", &["123-45-6789"]),
            (
                "ssn 078-05-1120 and 219-09-9999",
                &["078-05-1120", "219-09-9999"],
            ),
            ("000-12-3456", &[]),
            ("666-12-3456", &[]),
            ("912-34-5678", &[]),
            ("123-00-4567", &[]),
            ("123-45-0000", &[]),
            ("1123-45-6789", &[]),
            ("123-45-67890", &[]),
            ("555-123-45-6789", &[]),
            ("123-45-6789-1", &[]),
            ("123 45 6789", &[]),
            ("a123-45-6789", &[]),
        ],
    );
}

#[test]
fn ipv4() {
    check_detector(
        Detector::Ipv4,
        &[
            ("192.168.1.10", &["192.168.1.10"]),
            ("host 10.0.0.1.", &["10.0.0.1"]),
            ("at 10.0.0.1:8080", &["10.0.0.1"]),
            (
                "0.0.0.0 and 255.255.255.255",
                &["0.0.0.0", "255.255.255.255"],
            ),
            ("(8.8.8.8)", &["8.8.8.8"]),
            ("256.1.1.1", &[]),
            ("1.2.3.400", &[]),
            ("1.2.3.4.5", &[]),
            ("v1.2.3.4", &[]),
            ("01.02.03.04", &[]),
            ("192.168.1", &[]),
            ("1.2.3.4567", &[]),
            ("5-1.2.3.4", &[]),
        ],
    );
}

#[test]
fn iban() {
    check_detector(
        Detector::Iban,
        &[
            (
                "DE89 3704 0044 0532 0130 00",
                &["DE89 3704 0044 0532 0130 00"],
            ),
            ("DE89370400440532013000", &["DE89370400440532013000"]),
            (
                "pay GB82 WEST 1234 5698 7654 32.",
                &["GB82 WEST 1234 5698 7654 32"],
            ),
            ("GB82WEST12345698765432", &["GB82WEST12345698765432"]),
            (
                "FR1420041010050500013M02606",
                &["FR1420041010050500013M02606"],
            ),
            ("NL91ABNA0417164300", &["NL91ABNA0417164300"]),
            // mod-97 failures.
            ("DE89 3704 0044 0532 0130 01", &[]),
            ("DE88370400440532013000", &[]),
            // Glued to letters, lower case, too short.
            ("XDE89370400440532013000", &[]),
            ("de89370400440532013000", &[]),
            ("DE89 3704", &[]),
        ],
    );
}

#[test]
fn checksums() {
    for (digits, ok) in [
        ("4111111111111111", true),
        ("4111111111111112", false),
        ("79927398713", true),
        ("79927398710", false),
        ("0", true),
        ("12a4", false),
    ] {
        assert_eq!(luhn_ok(digits.as_bytes()), ok, "luhn {digits}");
    }
    for (iban, ok) in [
        ("DE89370400440532013000", true),
        ("GB82WEST12345698765432", true),
        ("gb82west12345698765432", true),
        ("GB82WEST12345698765433", false),
        ("GB82-WEST12345698765432", false),
    ] {
        assert_eq!(iban_checksum_ok(iban.bytes()), ok, "mod-97 {iban}");
    }
}

// ---------------------------------------------------------------------------------------------
// Config

#[test]
fn from_raw_reports_every_problem_with_its_path() {
    let yaml = r"
- detect: [emal]
- name: ok
  patterns: ['(unclosed']
- name: ok
- name: 'bad name!'
  detect: [email]
  models: []
- name: x
  patterns: ['a*']
- name: y
  detect: [email]
  models: [demo, '']
- name: big
  patterns: ['\w{5000}']
- name: fine
  detect: [email]
";
    let problems = GuardrailsConfig::from_raw(&raw(yaml)).expect_err("invalid");
    let want: Vec<(String, String)> = [
        ("[0].name", "missing: every guardrail needs a name"),
        (
            "[0].detect[0]",
            "unknown detector \"emal\"; known: email, phone, credit_card, us_ssn, ipv4, iban",
        ),
        ("[1].patterns[0]", "does not compile: unclosed group"),
        ("[2].name", "duplicate name `ok` (first used at [1])"),
        (
            "[2]",
            "needs `detect` or `patterns`: a guardrail without either matches nothing",
        ),
        (
            "[3].name",
            "\"bad name!\" is not a valid name: use 1 to 64 of A-Z a-z 0-9 _ . -",
        ),
        (
            "[3].models",
            "is empty, so the guardrail applies to no model; leave `models` out to apply it \
             to every model",
        ),
        (
            "[4].patterns[0]",
            "matches the empty string, so it would match every text",
        ),
        ("[5].models[1]", "must not be empty"),
        (
            "[6].patterns[0]",
            "is too large once compiled (limit 1048576 bytes); simplify it",
        ),
    ]
    .into_iter()
    .map(|(p, m)| (p.to_owned(), m.to_owned()))
    .collect();
    assert_eq!(problems, want);
}

#[test]
fn from_raw_accepts_a_valid_list_with_defaults() {
    let yaml = r"
- name: no-pii
  detect: [email, iban]
  patterns: ['(?i)project\s+nightingale']
  action: redact
  on: both
  models: [demo, gpt-4o]
- name: a.B_9-z
  patterns: [secret]
";
    let cfg = GuardrailsConfig::from_raw(&raw(yaml)).expect("valid");
    assert_eq!(cfg.rules.len(), 2);
    let (a, b) = (&cfg.rules[0], &cfg.rules[1]);
    assert_eq!(&*a.name, "no-pii");
    assert_eq!(a.detect, [Detector::Email, Detector::Iban]);
    assert_eq!(a.patterns.len(), 1);
    assert_eq!(a.patterns[0].as_str(), r"(?i)project\s+nightingale");
    assert_eq!(a.action, Action::Redact);
    assert_eq!(a.on, On::Both);
    assert_eq!(
        a.models.as_deref(),
        Some(&["demo".to_owned(), "gpt-4o".to_owned()][..])
    );
    assert_eq!(&*b.name, "a.B_9-z");
    assert_eq!(
        (b.action, b.on, b.models.clone()),
        (Action::Block, On::Input, None)
    );
}

#[test]
fn names_are_limited_to_64_characters() {
    let ok = format!("- name: {}\n  detect: [email]\n", "n".repeat(64));
    assert!(GuardrailsConfig::from_raw(&raw(&ok)).is_ok());
    let long = format!("- name: {}\n  detect: [email]\n", "n".repeat(65));
    let problems = GuardrailsConfig::from_raw(&raw(&long)).expect_err("too long");
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].0, "[0].name");
}

#[test]
fn raw_refuses_unknown_fields_and_values() {
    for yaml in [
        "- name: a\n  detekt: [email]\n",
        "- name: a\n  detect: [email]\n  action: blok\n",
        "- name: a\n  detect: [email]\n  on: request\n",
    ] {
        assert!(
            serde_yaml_ng::from_str::<Vec<RawGuardrail>>(yaml).is_err(),
            "{yaml}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Verdicts and rule selection

#[test]
fn stage_names() {
    assert_eq!(Stage::Input.as_str(), "input");
    assert_eq!(Stage::Output.as_str(), "output");
}

#[test]
fn empty_engine_passes_everything() {
    let g = Guardrails::new(&GuardrailsConfig::default());
    assert!(g.is_empty());
    assert!(!g.applies(Stage::Output, "demo"));
    let body = br#"{"messages":[{"role":"user","content":"bob@example.com"}]}"#;
    assert_eq!(
        g.check_request(Operation::ChatCompletions, "demo", body),
        Verdict::Pass
    );
    assert!(!engine(BLOCK_PII).is_empty());
}

fn chat(contents: &[&str]) -> Vec<u8> {
    let messages: Vec<Value> = contents
        .iter()
        .map(|c| serde_json::json!({"role": "user", "content": c}))
        .collect();
    serde_json::to_vec(&serde_json::json!({"model": "demo", "messages": messages})).expect("json")
}

#[test]
fn block_wins_over_redact() {
    let g = engine(
        "
- name: mask
  detect: [email]
  action: redact
- name: stop
  detect: [phone]
",
    );
    let op = Operation::ChatCompletions;
    let both = chat(&["bob@example.com", "call 415-555-2671"]);
    assert_eq!(
        g.check_request(op, "demo", &both),
        blocked("stop", "a phone number", Stage::Input)
    );
    // Redact matches in the same string as the block do not change that.
    let same = chat(&["bob@example.com or 415-555-2671"]);
    assert_eq!(
        g.check_request(op, "demo", &same),
        blocked("stop", "a phone number", Stage::Input)
    );
    let only_email = chat(&["bob@example.com"]);
    let want = String::from_utf8(only_email.clone())
        .expect("utf8")
        .replace("bob@example.com", "[REDACTED:EMAIL]");
    assert_redacted(g.check_request(op, "demo", &only_email), &want, &["mask"]);
    assert_eq!(
        g.check_request(op, "demo", &chat(&["nothing here"])),
        Verdict::Pass
    );
}

#[test]
fn first_block_rule_in_config_order_wins() {
    let pattern_first = engine(
        r"
- name: codename
  patterns: ['(?i)project\s+nightingale']
- name: mail
  detect: [email]
",
    );
    let mail_first = engine(
        r"
- name: mail
  detect: [email]
- name: codename
  patterns: ['(?i)project\s+nightingale']
",
    );
    // The email comes first in the document, the pattern later.
    let body = chat(&["bob@example.com", "about PROJECT  Nightingale"]);
    let op = Operation::ChatCompletions;
    assert_eq!(
        pattern_first.check_request(op, "demo", &body),
        blocked("codename", "a blocked pattern", Stage::Input)
    );
    assert_eq!(
        mail_first.check_request(op, "demo", &body),
        blocked("mail", "an email address", Stage::Input)
    );
}

#[test]
fn blocked_says_which_detector_found_it() {
    let g = engine(BLOCK_PII);
    let op = Operation::ChatCompletions;
    for (text, what) in [
        ("bob@example.com", "an email address"),
        ("+44 20 7946 0958", "a phone number"),
        ("4111 1111 1111 1111", "a credit card number"),
        ("123-45-6789", "a US social security number"),
        ("10.0.0.1", "an IPv4 address"),
        ("DE89 3704 0044 0532 0130 00", "an IBAN"),
    ] {
        assert_eq!(
            g.check_request(op, "demo", &chat(&[text])),
            blocked("pii", what, Stage::Input),
            "{text}"
        );
    }
}

#[test]
fn redact_rules_listed_once_in_config_order() {
    let g = engine(
        "
- name: ip
  detect: [ipv4]
  action: redact
- name: mail
  detect: [email]
  action: redact
- name: card
  detect: [credit_card]
  action: redact
",
    );
    let body = chat(&["bob@example.com", "10.0.0.1 and carol@example.com"]);
    let want = String::from_utf8(body.clone())
        .expect("utf8")
        .replace("bob@example.com", "[REDACTED:EMAIL]")
        .replace("carol@example.com", "[REDACTED:EMAIL]")
        .replace("10.0.0.1", "[REDACTED:IPV4]");
    assert_redacted(
        g.check_request(Operation::ChatCompletions, "demo", &body),
        &want,
        &["ip", "mail"],
    );
}

#[test]
fn overlapping_matches_become_one_redaction() {
    let g = engine(
        r"
- name: mail
  detect: [email]
  action: redact
- name: domain
  patterns: ['example\.com']
  action: redact
",
    );
    let body = chat(&["to bob@example.com and example.com"]);
    let want = replace_once(
        &String::from_utf8(body.clone()).expect("utf8"),
        "to bob@example.com and example.com",
        "to [REDACTED:EMAIL] and [REDACTED:PATTERN]",
    );
    assert_redacted(
        g.check_request(Operation::ChatCompletions, "demo", &body),
        &want,
        &["mail", "domain"],
    );
}

#[test]
fn models_filter() {
    let g = engine(
        "
- name: pii
  detect: [email]
  on: both
  models: [demo, gpt-4o]
",
    );
    let body = chat(&["bob@example.com"]);
    let op = Operation::ChatCompletions;
    for model in ["demo", "gpt-4o"] {
        assert_eq!(
            g.check_request(op, model, &body),
            blocked("pii", "an email address", Stage::Input),
            "{model}"
        );
        assert!(g.applies(Stage::Output, model));
    }
    for model in ["other", "gpt-4o-mini", "Demo", ""] {
        assert_eq!(g.check_request(op, model, &body), Verdict::Pass, "{model}");
        assert!(!g.applies(Stage::Output, model));
    }
}

const CHAT_ANSWER: &str = r#"{"id":"chatcmpl-1","choices":[{"index":0,"message":{"role":"assistant","content":"Mail bob@example.com"},"finish_reason":"stop"}]}"#;

#[test]
fn on_selects_the_side() {
    let op = Operation::ChatCompletions;
    let request = chat(&["bob@example.com"]);
    let answer = CHAT_ANSWER.as_bytes();

    let input = engine("- {name: in, detect: [email]}");
    assert!(!input.applies(Stage::Output, "demo"));
    assert_eq!(
        input.check_request(op, "demo", &request),
        blocked("in", "an email address", Stage::Input)
    );
    assert_eq!(input.check_response(op, "demo", answer), Verdict::Pass);

    let output = engine("- {name: out, detect: [email], on: output}");
    assert!(output.applies(Stage::Output, "demo"));
    assert_eq!(output.check_request(op, "demo", &request), Verdict::Pass);
    assert_eq!(
        output.check_response(op, "demo", answer),
        blocked("out", "an email address", Stage::Output)
    );

    let both = engine("- {name: both, detect: [email], on: both}");
    assert!(both.applies(Stage::Output, "demo"));
    assert_eq!(
        both.check_request(op, "demo", &request),
        blocked("both", "an email address", Stage::Input)
    );
    assert_eq!(
        both.check_response(op, "demo", answer),
        blocked("both", "an email address", Stage::Output)
    );
}

// ---------------------------------------------------------------------------------------------
// Byte preservation

#[test]
fn redaction_keeps_every_other_byte() {
    let original = r#"{ "model" : "demo",
  "messages": [
    {"role":"system","content":"caf\u00e9 \"ok\" \/ untouched"},
    {"role":"user", "x-extra": {"n": 1.50e3, "k": [true,null,-0.0]},
     "content":"caf\u00e9 \"q\" write bob@example.com\n"}
  ],
  "temperature": 0.70, "zz_unknown": {"content": "carol@example.com"}
}
"#;
    let g = engine(REDACT_PII);
    let got = g.check_request(Operation::ChatCompletions, "demo", original.as_bytes());
    let want = replace_once(
        original,
        r#""caf\u00e9 \"q\" write bob@example.com\n""#,
        r#""café \"q\" write [REDACTED:EMAIL]\n""#,
    );
    let Verdict::Redacted { body, .. } = &got else {
        panic!("not redacted: {got:?}");
    };
    // The same document as JSON, with one value changed...
    let mut expected: Value = serde_json::from_str(original).expect("json");
    expected["messages"][1]["content"] = Value::from("café \"q\" write [REDACTED:EMAIL]\n");
    assert_eq!(
        serde_json::from_slice::<Value>(body).expect("json"),
        expected
    );
    // ...and the same bytes everywhere else.
    assert_redacted(got, &want, &["pii"]);
}

#[test]
fn escaped_text_is_decoded_before_detection() {
    // `\u0040` is `@`: the detector sees the decoded text.
    let original = r#"{"messages":[{"role":"user","content":"bob\u0040example.com"}]}"#;
    let want = r#"{"messages":[{"role":"user","content":"[REDACTED:EMAIL]"}]}"#;
    assert_redacted(
        engine(REDACT_PII).check_request(Operation::ChatCompletions, "demo", original.as_bytes()),
        want,
        &["pii"],
    );
}

#[test]
fn escaped_and_repeated_keys_are_read() {
    let g = engine(BLOCK_PII);
    let op = Operation::ChatCompletions;
    let want = blocked("pii", "an email address", Stage::Input);
    for body in [
        r#"{"messages":[{"role":"user","cont\u0065nt":"bob@example.com"}]}"#,
        r#"{"messages":[{"role":"user","content":"bob@example.com","content":"hi"}]}"#,
        r#"{"messages":[],"messages":[{"role":"user","content":"bob@example.com"}]}"#,
    ] {
        assert_eq!(g.check_request(op, "demo", body.as_bytes()), want, "{body}");
    }
}

#[test]
fn not_json_passes() {
    let op = Operation::ChatCompletions;
    for g in [engine(REDACT_PII), engine(BLOCK_PII)] {
        for body in [
            r#"{"messages":[{"role":"user","content":"bob@example.com"}]"#,
            r#"{"messages":[{"role":"user","content":"bob@example.com"}]} x"#,
            r#"{"messages":[{"role":"user","content":"bob@example.com"}],}"#,
            r#"{"messages":[{"role":"user","content":"bob@example.com"}],"n":01}"#,
            r#"{"messages":[{"role":"user","content":"bob@example.com\q"}]}"#,
            r#"["bob@example.com"]"#,
            "",
        ] {
            assert_eq!(
                g.check_request(op, "demo", body.as_bytes()),
                Verdict::Pass,
                "{body}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// What is read, per API

#[test]
fn chat_input_reads_text_parts_and_tool_calls_only() {
    let original = r#"{"model":"demo","messages":[
{"role":"user","name":"bob@example.com","content":[
  {"type":"text","text":"my ssn is 123-45-6789"},
  {"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo+14155552671/415-555-2671==","detail":"low"}},
  {"type":"input_audio","input_audio":{"data":"UklGRiQAAABXQVZF+14155552671","format":"wav"}},
  {"type":"file","file":{"file_data":"data:application/pdf;base64,415-555-2671","filename":"10.0.0.1.pdf"}}]},
{"role":"assistant","content":null,"refusal":"no, bob@example.com","tool_calls":[
  {"id":"415-555-2671","type":"function","function":{"name":"notify","arguments":"{\"to\":\"carol@example.com\"}"}}]},
{"role":"tool","tool_call_id":"10.0.0.1","content":"done 10.0.0.1"}]}"#;
    let mut want = replace_once(
        original,
        r#""my ssn is 123-45-6789""#,
        r#""my ssn is [REDACTED:US_SSN]""#,
    );
    want = replace_once(
        &want,
        r#""no, bob@example.com""#,
        r#""no, [REDACTED:EMAIL]""#,
    );
    want = replace_once(
        &want,
        r#""{\"to\":\"carol@example.com\"}""#,
        r#""{\"to\":\"[REDACTED:EMAIL]\"}""#,
    );
    want = replace_once(&want, r#""done 10.0.0.1""#, r#""done [REDACTED:IPV4]""#);
    let g = engine(REDACT_PII);
    assert_redacted(
        g.check_request(Operation::ChatCompletions, "demo", original.as_bytes()),
        &want,
        &["pii"],
    );
}

#[test]
fn base64_image_data_is_not_read() {
    let body = r#"{"model":"demo","messages":[{"role":"user","content":[
{"type":"text","text":"what is in this picture?"},
{"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA+14155552671/415-555-2671 123-45-6789 4111111111111111=="}}]}]}"#;
    let g = engine(BLOCK_PII);
    assert_eq!(
        g.check_request(Operation::ChatCompletions, "demo", body.as_bytes()),
        Verdict::Pass
    );
}

#[test]
fn messages_input_reads_system_blocks_and_tool_use_input() {
    let original = r#"{"model":"claude","system":[{"type":"text","text":"Operator: ops@example.com","cache_control":{"type":"ephemeral"}}],
"metadata":{"user_id":"bob@example.com"},
"messages":[
 {"role":"user","content":[
   {"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBORw0KGgo415-555-2671"}},
   {"type":"text","text":"call 415-555-2671"}]},
 {"role":"assistant","content":[{"type":"tool_use","id":"toolu_1","name":"send","input":{"to":["bob@example.com"],"meta":{"note":"cc 415-555-2671","n":3}}}]},
 {"role":"user","content":[
   {"type":"tool_result","tool_use_id":"toolu_1","content":"sent to bob@example.com"},
   {"type":"tool_result","tool_use_id":"toolu_2","content":[{"type":"text","text":"ip 10.0.0.1"}]}]},
 {"role":"user","content":"plain DE89370400440532013000"}]}"#;
    let mut want = original.to_owned();
    for (from, to) in [
        (
            r#""Operator: ops@example.com""#,
            r#""Operator: [REDACTED:EMAIL]""#,
        ),
        (r#""call 415-555-2671""#, r#""call [REDACTED:PHONE]""#),
        (r#"["bob@example.com"]"#, r#"["[REDACTED:EMAIL]"]"#),
        (r#""cc 415-555-2671""#, r#""cc [REDACTED:PHONE]""#),
        (
            r#""sent to bob@example.com""#,
            r#""sent to [REDACTED:EMAIL]""#,
        ),
        (r#""ip 10.0.0.1""#, r#""ip [REDACTED:IPV4]""#),
        (
            r#""plain DE89370400440532013000""#,
            r#""plain [REDACTED:IBAN]""#,
        ),
    ] {
        want = replace_once(&want, from, to);
    }
    assert_redacted(
        engine(REDACT_PII).check_request(Operation::Messages, "claude", original.as_bytes()),
        &want,
        &["pii"],
    );
    // A plain-string system prompt is read too.
    let system = br#"{"system":"ops@example.com","messages":[]}"#;
    assert_eq!(
        engine(BLOCK_PII).check_request(Operation::Messages, "claude", system),
        blocked("pii", "an email address", Stage::Input)
    );
}

#[test]
fn completions_and_embeddings_read_prompts_not_tokens() {
    let g = engine(REDACT_PII);
    let original = r#"{"model":"demo","prompt":["hello","mail bob@example.com"],"max_tokens":5,"user":"carol@example.com"}"#;
    let want = replace_once(original, "mail bob@example.com", "mail [REDACTED:EMAIL]");
    assert_redacted(
        g.check_request(Operation::Completions, "demo", original.as_bytes()),
        &want,
        &["pii"],
    );
    let single = r#"{"model":"demo","prompt":"mail bob@example.com"}"#;
    assert_redacted(
        g.check_request(Operation::Completions, "demo", single.as_bytes()),
        &single.replace("bob@example.com", "[REDACTED:EMAIL]"),
        &["pii"],
    );

    let b = engine(BLOCK_PII);
    for (op, body) in [
        (
            Operation::Completions,
            r#"{"prompt":[[415,555,2671],[4111111111111111]]}"#,
        ),
        (Operation::Completions, r#"{"prompt":[415,555,2671]}"#),
        (Operation::Embeddings, r#"{"input":[[4155552671,1]]}"#),
        (Operation::Embeddings, r#"{"input":[4111111111111111]}"#),
    ] {
        assert_eq!(
            b.check_request(op, "demo", body.as_bytes()),
            Verdict::Pass,
            "{body}"
        );
    }
    for body in [
        r#"{"input":["a","bob@example.com"]}"#,
        r#"{"input":"bob@example.com"}"#,
    ] {
        assert_eq!(
            b.check_request(Operation::Embeddings, "demo", body.as_bytes()),
            blocked("pii", "an email address", Stage::Input),
            "{body}"
        );
    }
}

#[test]
fn responses_input_reads_instructions_and_items() {
    let original = r#"{"model":"demo","instructions":"Reply to ops@example.com","input":[
 {"role":"user","content":[{"type":"input_text","text":"I am bob@example.com"},{"type":"input_image","image_url":"data:image/png;base64,AAAA415-555-2671"}]},
 {"type":"function_call","call_id":"415-555-2671","name":"lookup","arguments":"{\"phone\":\"415-555-2671\"}"},
 {"type":"function_call_output","call_id":"call_1","output":"owner: carol@example.com"},
 {"role":"user","content":"plain 10.0.0.1"}],"metadata":{"k":"10.0.0.2"}}"#;
    let mut want = original.to_owned();
    for (from, to) in [
        (
            r#""Reply to ops@example.com""#,
            r#""Reply to [REDACTED:EMAIL]""#,
        ),
        (r#""I am bob@example.com""#, r#""I am [REDACTED:EMAIL]""#),
        (
            r#""{\"phone\":\"415-555-2671\"}""#,
            r#""{\"phone\":\"[REDACTED:PHONE]\"}""#,
        ),
        (
            r#""owner: carol@example.com""#,
            r#""owner: [REDACTED:EMAIL]""#,
        ),
        (r#""plain 10.0.0.1""#, r#""plain [REDACTED:IPV4]""#),
    ] {
        want = replace_once(&want, from, to);
    }
    assert_redacted(
        engine(REDACT_PII).check_request(Operation::Responses, "demo", original.as_bytes()),
        &want,
        &["pii"],
    );
    let plain = br#"{"model":"demo","input":"mail bob@example.com"}"#;
    assert_eq!(
        engine(BLOCK_PII).check_request(Operation::Responses, "demo", plain),
        blocked("pii", "an email address", Stage::Input)
    );
}

/// An answer body and the (old, new) literals a redaction must change in it.
type AnswerCase<'a> = (Operation, &'a str, &'a [(&'a str, &'a str)]);

#[test]
fn outputs_read_the_answer_text() {
    let g = engine(REDACT_PII);
    let cases: [AnswerCase; 4] = [
        (
            Operation::ChatCompletions,
            r#"{"id":"bob@example.com","choices":[{"index":0,"message":{"role":"assistant","content":"Mail bob@example.com","refusal":"not 10.0.0.1","tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{\"ip\":\"10.0.0.1\"}"}}]},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":1}}"#,
            &[
                (r#""Mail bob@example.com""#, r#""Mail [REDACTED:EMAIL]""#),
                (r#""not 10.0.0.1""#, r#""not [REDACTED:IPV4]""#),
                (
                    r#""{\"ip\":\"10.0.0.1\"}""#,
                    r#""{\"ip\":\"[REDACTED:IPV4]\"}""#,
                ),
            ],
        ),
        (
            Operation::Completions,
            r#"{"id":"cmpl-1","choices":[{"text":"call 415-555-2671","index":0,"logprobs":null}]}"#,
            &[(r#""call 415-555-2671""#, r#""call [REDACTED:PHONE]""#)],
        ),
        (
            Operation::Messages,
            r#"{"id":"msg_1","type":"message","role":"assistant","content":[{"type":"text","text":"Mail bob@example.com"},{"type":"tool_use","id":"toolu_1","name":"send","input":{"to":"carol@example.com"}}],"stop_reason":"end_turn"}"#,
            &[
                (r#""Mail bob@example.com""#, r#""Mail [REDACTED:EMAIL]""#),
                (r#""carol@example.com""#, r#""[REDACTED:EMAIL]""#),
            ],
        ),
        (
            Operation::Responses,
            r#"{"id":"resp_1","object":"response","instructions":"ops@example.com","output":[{"type":"message","id":"msg_1","role":"assistant","content":[{"type":"output_text","text":"Mail bob@example.com","annotations":[]}]},{"type":"function_call","id":"fc_1","call_id":"call_1","name":"send","arguments":"{\"to\":\"carol@example.com\"}"}]}"#,
            &[
                (r#""Mail bob@example.com""#, r#""Mail [REDACTED:EMAIL]""#),
                (
                    r#""{\"to\":\"carol@example.com\"}""#,
                    r#""{\"to\":\"[REDACTED:EMAIL]\"}""#,
                ),
            ],
        ),
    ];
    for (op, original, edits) in cases {
        let mut want = original.to_owned();
        for (from, to) in edits {
            want = replace_once(&want, from, to);
        }
        assert_redacted(
            g.check_response(op, "demo", original.as_bytes()),
            &want,
            &["pii"],
        );
    }
    let embeddings = br#"{"data":[{"embedding":[0.1]}],"model":"bob@example.com"}"#;
    assert_eq!(
        g.check_response(Operation::Embeddings, "demo", embeddings),
        Verdict::Pass
    );
}

#[test]
fn other_operations_pass() {
    let g = engine(BLOCK_PII);
    let body = chat(&["bob@example.com"]);
    for op in [
        Operation::Passthrough,
        Operation::ResponsesResource,
        Operation::ChatCompletionsResource,
    ] {
        assert_eq!(g.check_request(op, "demo", &body), Verdict::Pass);
        assert_eq!(g.check_response(op, "demo", &body), Verdict::Pass);
    }
}
