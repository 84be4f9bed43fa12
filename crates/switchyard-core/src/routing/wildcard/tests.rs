use std::collections::HashMap;

use super::super::Router;
use crate::config::from_yaml;
use crate::error::GatewayError;

fn router(wildcards: &str) -> Router {
    let cfg = from_yaml(
        &format!(
            "providers:\n  oai:\n    type: openai\n    base_url: http://127.0.0.1:1/v1\n  claude:\n    type: anthropic\n    base_url: http://127.0.0.1:2/v1\n  rest:\n    type: openai\n    base_url: http://127.0.0.1:3/v1\nmodels:\n  claude-alias:\n    deployments:\n      - {{provider: oai, model: aliased}}\n{wildcards}"
        ),
        &HashMap::new(),
    )
    .unwrap();
    Router::new(cfg.models, cfg.providers, cfg.server.timeouts).with_wildcards(cfg.wildcards)
}

const ALL: &str = "wildcards:\n  - {pattern: \"*\", provider: rest}\n  - {pattern: \"openai/*\", provider: oai}\n  - {pattern: \"claude-*\", provider: claude}\n";

fn served(r: &Router, model: &str) -> (String, String, &'static str) {
    let route = r.route(model).unwrap();
    let d = &route.candidates[0];
    (d.provider.name.to_string(), d.model.to_string(), route.rule)
}

#[test]
fn slash_patterns_forward_the_capture_and_prefix_patterns_the_whole_name() {
    let r = router(ALL);
    assert_eq!(
        served(&r, "openai/gpt-4o"),
        ("oai".into(), "gpt-4o".into(), "wildcard")
    );
    assert_eq!(
        served(&r, "claude-sonnet-4-5"),
        ("claude".into(), "claude-sonnet-4-5".into(), "wildcard")
    );
    assert_eq!(
        served(&r, "llama-3"),
        ("rest".into(), "llama-3".into(), "wildcard")
    );
}

#[test]
fn aliases_and_provider_names_win_over_patterns() {
    let r = router(ALL);
    assert_eq!(
        served(&r, "claude-alias"),
        ("oai".into(), "aliased".into(), "alias")
    );
    assert_eq!(
        served(&r, "claude/claude-3"),
        ("claude".into(), "claude-3".into(), "provider-prefix")
    );
}

#[test]
fn the_most_specific_pattern_wins_whatever_the_order() {
    // `*` is listed first but is the least specific.
    let r = router(ALL);
    assert_eq!(served(&r, "claude-x").0, "claude");
    // An explicit `forward` overrides the default of each shape.
    let r = router(
        "wildcards:\n  - {pattern: \"team/*\", provider: oai, forward: name}\n  - {pattern: \"gpt-*\", provider: oai, forward: capture}\n",
    );
    assert_eq!(served(&r, "team/gpt-4o").1, "team/gpt-4o");
    assert_eq!(served(&r, "gpt-4o").1, "4o");
}

#[test]
fn an_empty_capture_does_not_match() {
    let r = router("wildcards:\n  - {pattern: \"openai/*\", provider: oai}\n");
    assert!(matches!(
        r.route("openai/"),
        Err(GatewayError::ModelNotFound { .. })
    ));
    assert!(matches!(
        r.route("other"),
        Err(GatewayError::ModelNotFound { .. })
    ));
    assert_eq!(r.wildcard_routes().len(), 1);
}

#[test]
fn bad_patterns_are_config_errors_naming_the_key() {
    for (yaml, needle) in [
        (
            "wildcards:\n  - {pattern: \"a*b*\", provider: oai}\n",
            "wildcards[0].pattern",
        ),
        (
            "wildcards:\n  - {pattern: \"nostar\", provider: oai}\n",
            "wildcards[0].pattern",
        ),
        (
            "wildcards:\n  - {pattern: \"x-*\", provider: nope}\n",
            "wildcards[0].provider",
        ),
        (
            "wildcards:\n  - {pattern: \"x-*\", provider: oai, forward: all}\n",
            "wildcards[0].forward",
        ),
    ] {
        let err = from_yaml(
            &format!(
                "providers:\n  oai:\n    type: openai\n    base_url: http://127.0.0.1:1/v1\n{yaml}"
            ),
            &HashMap::new(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains(needle), "{err}");
    }
}
