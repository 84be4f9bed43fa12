use super::*;

fn obs<'a>(alias: &'a str, provider: &'a str, model: &'a str) -> Observation<'a> {
    Observation {
        alias: Some(alias),
        provider: Some(provider),
        model: Some(model),
        outcome: "completed",
        error_kind: None,
        usage: None,
        cost_usd: None,
        latency_s: 0.2,
        ttft_s: None,
        cache: None,
        guardrails: &[],
    }
}

fn registry() -> RequestMetrics {
    RequestMetrics::new(["demo"], [("mock", "gpt-4o-mini")])
}

fn rendered(m: &RequestMetrics) -> String {
    let mut out = String::new();
    m.render(&mut out);
    out
}

fn value(text: &str, series: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ').map(str::to_owned))
}

#[test]
fn labels_outside_the_config_are_counted_as_other() {
    let m = registry();
    m.observe(&obs("demo", "mock", "gpt-4o-mini"));
    m.observe(&obs("user-typed-anything", "mock", "some-wildcard-model"));
    m.observe(&obs("another-made-up-name", "nope", "x"));
    let text = rendered(&m);
    let known = r#"switchyard_requests_total{alias="demo",provider="mock",model="gpt-4o-mini",outcome="completed"}"#;
    assert_eq!(value(&text, known).as_deref(), Some("1"));
    let other = r#"switchyard_requests_total{alias="other",provider="mock",model="other",outcome="completed"}"#;
    assert_eq!(value(&text, other).as_deref(), Some("1"));
    let all_other = r#"switchyard_requests_total{alias="other",provider="other",model="other",outcome="completed"}"#;
    assert_eq!(value(&text, all_other).as_deref(), Some("1"));
    assert!(!text.contains("user-typed-anything"));
    assert!(!text.contains("some-wildcard-model"));
}

#[test]
fn failures_before_routing_have_no_provider() {
    let m = registry();
    m.observe(&Observation {
        provider: None,
        model: None,
        outcome: "failed",
        error_kind: Some("invalid_request"),
        ..obs("demo", "", "")
    });
    let text = rendered(&m);
    let s =
        r#"switchyard_requests_total{alias="demo",provider="none",model="none",outcome="failed"}"#;
    assert_eq!(value(&text, s).as_deref(), Some("1"));
    let e = r#"switchyard_request_errors_total{alias="demo",kind="invalid_request"}"#;
    assert_eq!(value(&text, e).as_deref(), Some("1"));
}

#[test]
fn histograms_are_cumulative_and_sum_in_seconds() {
    let m = registry();
    for latency in [0.003, 0.2, 0.2, 45.0, 500.0] {
        m.observe(&Observation {
            latency_s: latency,
            ttft_s: Some(latency / 2.0),
            ..obs("demo", "mock", "gpt-4o-mini")
        });
    }
    let text = rendered(&m);
    let l = r#"alias="demo",provider="mock",model="gpt-4o-mini""#;
    let bucket = |le: &str| {
        value(
            &text,
            &format!("switchyard_request_duration_seconds_bucket{{{l},le=\"{le}\"}}"),
        )
    };
    assert_eq!(bucket("0.005").as_deref(), Some("1"));
    assert_eq!(bucket("0.25").as_deref(), Some("3"));
    assert_eq!(bucket("60").as_deref(), Some("4"));
    assert_eq!(bucket("120").as_deref(), Some("4"));
    assert_eq!(bucket("+Inf").as_deref(), Some("5"));
    let count = value(
        &text,
        &format!("switchyard_request_duration_seconds_count{{{l}}}"),
    );
    assert_eq!(count.as_deref(), Some("5"));
    let sum: f64 = value(
        &text,
        &format!("switchyard_request_duration_seconds_sum{{{l}}}"),
    )
    .and_then(|v| v.parse().ok())
    .unwrap_or_default();
    assert!((sum - 545.403).abs() < 1e-3, "{sum}");
    let ttft = value(
        &text,
        &format!("switchyard_time_to_first_token_seconds_count{{{l}}}"),
    );
    assert_eq!(ttft.as_deref(), Some("5"));
}

#[test]
fn tokens_and_cost_add_up_and_unknown_prices_are_counted_apart() {
    let m = registry();
    let usage = Usage {
        prompt_tokens: 100,
        completion_tokens: 20,
        total_tokens: 120,
        cached_tokens: 40,
        cache_write_tokens: 0,
    };
    m.observe(&Observation {
        usage: Some(usage),
        cost_usd: Some(0.001_25),
        ..obs("demo", "mock", "gpt-4o-mini")
    });
    m.observe(&Observation {
        usage: Some(usage),
        cost_usd: Some(0.000_75),
        ..obs("demo", "mock", "gpt-4o-mini")
    });
    m.observe(&Observation {
        usage: Some(usage),
        cost_usd: None,
        ..obs("demo", "mock", "gpt-4o-mini")
    });
    let text = rendered(&m);
    let l = r#"alias="demo",provider="mock",model="gpt-4o-mini""#;
    let tokens = |t: &str| {
        value(
            &text,
            &format!("switchyard_tokens_total{{{l},type=\"{t}\"}}"),
        )
    };
    assert_eq!(tokens("prompt").as_deref(), Some("300"));
    assert_eq!(tokens("completion").as_deref(), Some("60"));
    assert_eq!(tokens("cached").as_deref(), Some("120"));
    assert_eq!(
        value(&text, &format!("switchyard_cost_usd_total{{{l}}}")).as_deref(),
        Some("0.002")
    );
    assert_eq!(
        value(&text, &format!("switchyard_cost_unknown_total{{{l}}}")).as_deref(),
        Some("1")
    );
}

#[test]
fn reload_changes_which_names_are_labels() {
    let m = registry();
    m.set_known(["new-alias"], [("mock", "m2")]);
    m.observe(&obs("demo", "mock", "m2"));
    m.observe(&obs("new-alias", "mock", "m2"));
    let text = rendered(&m);
    assert!(text.contains(r#"alias="other",provider="mock",model="m2""#));
    assert!(text.contains(r#"alias="new-alias",provider="mock",model="m2""#));
}

#[test]
fn cache_results_and_guardrail_triggers_are_counted_by_bounded_labels() {
    let m = registry();
    let pii: Arc<str> = Arc::from("no-pii");
    let fired = [
        (Arc::clone(&pii), "redact", "input"),
        (Arc::from("secrets"), "block", "output"),
    ];
    m.observe(&Observation {
        cache: Some("hit"),
        guardrails: &fired[..1],
        ..obs("demo", "mock", "gpt-4o-mini")
    });
    m.observe(&Observation {
        cache: Some("hit"),
        ..obs("demo", "mock", "gpt-4o-mini")
    });
    m.observe(&Observation {
        cache: Some("miss"),
        guardrails: &fired,
        ..obs("user-typed-anything", "mock", "gpt-4o-mini")
    });
    m.observe(&obs("demo", "mock", "gpt-4o-mini"));
    let text = rendered(&m);
    let cache = |alias: &str, result: &str| {
        value(
            &text,
            &format!("switchyard_cache_requests_total{{alias=\"{alias}\",result=\"{result}\"}}"),
        )
    };
    assert_eq!(cache("demo", "hit").as_deref(), Some("2"));
    assert_eq!(cache("demo", "miss"), None);
    // An unknown alias is `other`, as everywhere.
    assert_eq!(cache("other", "miss").as_deref(), Some("1"));
    let g = |rule: &str, action: &str, stage: &str| {
        value(
            &text,
            &format!(
                "switchyard_guardrail_triggers_total{{rule=\"{rule}\",action=\"{action}\",stage=\"{stage}\"}}"
            ),
        )
    };
    assert_eq!(g("no-pii", "redact", "input").as_deref(), Some("2"));
    assert_eq!(g("secrets", "block", "output").as_deref(), Some("1"));
    assert!(!text.contains("user-typed-anything"));
}
