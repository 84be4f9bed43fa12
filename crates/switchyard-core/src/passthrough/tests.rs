use std::collections::HashMap;

use super::*;
use crate::config::from_yaml;

fn table(yaml: &str) -> Table {
    let cfg = from_yaml(yaml, &HashMap::new()).unwrap();
    Table::new(
        &cfg.passthrough,
        &cfg.model_delete,
        &cfg.providers,
        Some("http://mock"),
    )
    .unwrap()
}

const PROVIDERS: &str = "providers:\n  openai:\n    type: openai\n    base_url: https://oai.example/v1\n    api_key: sk-1234567890\n  az:\n    type: azure\n    base_url: https://res.openai.azure.com\n    api_key: az-key\n  claude:\n    type: anthropic\n    base_url: https://claude.example/v1\n";

#[test]
fn prefixes_match_at_segment_boundaries_with_or_without_v1() {
    let t = table(PROVIDERS);
    assert_eq!(t.find("/v1/files").unwrap().prefix, "/v1/files");
    assert_eq!(t.find("/files/file-1/content").unwrap().prefix, "/v1/files");
    assert!(t.find("/v1/filesystem").is_none());
    assert!(t.find("/v1/unknown").is_none());
    // The only Anthropic provider takes Anthropic's endpoints by default.
    assert_eq!(
        &*t.find("/v1/messages/count_tokens")
            .unwrap()
            .upstream
            .provider,
        "claude"
    );
    assert!(t.anthropic_models().is_some());
}

#[test]
fn explicit_routes_replace_the_defaults_and_the_longest_prefix_wins() {
    let t = table(&format!(
        "{PROVIDERS}passthrough:\n  - {{prefix: /v1/files, provider: openai}}\n  - {{prefix: /v1/files/special, provider: claude}}\n"
    ));
    assert_eq!(
        &*t.find("/v1/files/special/x").unwrap().upstream.provider,
        "claude"
    );
    assert_eq!(
        &*t.find("/v1/files/other").unwrap().upstream.provider,
        "openai"
    );
    assert!(t.find("/v1/batches").is_none());
    assert!(t.anthropic_models().is_none());
}

#[test]
fn urls_follow_each_provider_type() {
    let t = table(&format!(
        "{PROVIDERS}passthrough:\n  - {{prefix: /v1/files, provider: az}}\n  - {{prefix: /v1/images, provider: az}}\n  - {{prefix: /v1/batches, provider: openai}}\n"
    ));
    let files = t.find("/v1/files").unwrap();
    assert_eq!(
        files
            .upstream
            .url("/files/f1", Some("limit=2"))
            .unwrap()
            .to_string(),
        "https://res.openai.azure.com/openai/files/f1?limit=2&api-version=2024-10-21"
    );
    assert_eq!(
        files
            .upstream
            .url("/files", Some("api-version=preview"))
            .unwrap()
            .to_string(),
        "https://res.openai.azure.com/openai/files?api-version=preview"
    );
    let images = t.find("/v1/images").unwrap();
    let err = images
        .upstream
        .url("/images/generations", None)
        .unwrap_err();
    assert!(err.to_string().contains("per deployment"), "{err}");
    assert!(err.to_string().contains("`az`"), "{err}");
    let batches = t.find("/v1/batches").unwrap();
    assert_eq!(
        batches
            .upstream
            .url("/batches/b1/cancel", None)
            .unwrap()
            .to_string(),
        "https://oai.example/v1/batches/b1/cancel"
    );
    // Credentials are the provider's, marked sensitive.
    let auth = batches.upstream.headers.get(AUTHORIZATION).unwrap();
    assert!(auth.is_sensitive());
    assert!(files.upstream.headers.get("api-key").is_some());
}

#[test]
fn bad_passthrough_config_names_the_key() {
    for (entry, needle) in [
        ("{prefix: files, provider: openai}", "passthrough[0].prefix"),
        (
            "{prefix: /v1/chat/completions, provider: openai}",
            "own pipeline",
        ),
        (
            "{prefix: /v1/models, provider: openai}",
            "gateway's own model list",
        ),
        (
            "{prefix: /v1/files, provider: nope}",
            "passthrough[0].provider",
        ),
        (
            "{prefix: /v1/files, provider: openai, max_body_size: 0}",
            "max_body_size",
        ),
    ] {
        let err = from_yaml(
            &format!("{PROVIDERS}passthrough:\n  - {entry}\n"),
            &HashMap::new(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains(needle), "{entry}: {err}");
    }
    let err = from_yaml(
        "providers:\n  g:\n    type: gemini\n    api_key: k\npassthrough:\n  - {prefix: /v1/files, provider: g}\n",
        &HashMap::new(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("type `gemini`"), "{err}");
    let err = from_yaml(
        "providers:\n  c:\n    type: anthropic\n    allow_model_delete: true\n",
        &HashMap::new(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("providers.c.allow_model_delete"), "{err}");
}

#[test]
fn two_openai_providers_without_one_named_openai_get_no_default() {
    let t = table("providers:\n  a:\n    type: openai\n    base_url: http://a/v1\n  b:\n    type: openai\n    base_url: http://b/v1\n");
    assert!(t.find("/v1/files").is_none());
}
