use std::collections::HashMap;

use switchyard_types::openai::Usage;

use super::*;

fn usage(prompt: u64, completion: u64, cached: u64, written: u64) -> Usage {
    Usage {
        prompt_tokens: prompt,
        completion_tokens: completion,
        total_tokens: prompt + completion,
        cached_tokens: cached,
        cache_write_tokens: written,
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-12
}

#[test]
fn builtin_prices_match_by_longest_prefix_across_provider_spellings() {
    let (mini, _) = builtin("gpt-4o-mini-2024-07-18").unwrap();
    assert!(close(mini.input, 0.15) && close(mini.output, 0.60));
    let (big, note) = builtin("gpt-4o-2024-08-06").unwrap();
    assert!(close(big.input, 2.50));
    assert!(note.contains("openai.com"), "{note}");
    let (bedrock, _) = builtin("us.anthropic.claude-3-5-haiku-20241022-v1:0").unwrap();
    assert!(close(bedrock.input, 0.80));
    assert!(builtin("models/gemini-2.5-flash").is_some());
    assert!(builtin("my-finetune").is_none());
}

#[test]
fn every_builtin_entry_has_a_dated_source_and_sane_numbers() {
    for e in table::TABLE {
        assert!(
            e.source.contains("20") || e.source.contains("mock"),
            "{}: {}",
            e.prefix,
            e.source
        );
        let p = e.price;
        for v in [p.input, p.output, p.cached_input, p.cache_write] {
            assert!(v.is_finite() && v >= 0.0, "{}", e.prefix);
        }
        assert!(p.cached_input <= p.input, "{}", e.prefix);
    }
}

#[test]
fn cost_bills_cached_and_cache_write_tokens_at_their_own_price() {
    let p = Price {
        input: 3.0,
        output: 15.0,
        cached_input: 0.3,
        cache_write: 3.75,
    };
    // 1000 prompt tokens of which 600 cached and 100 written: 300 plain.
    let usd = p.cost_of(&usage(1000, 200, 600, 100));
    let want = (300.0 * 3.0 + 600.0 * 0.3 + 100.0 * 3.75 + 200.0 * 15.0) / 1e6;
    assert!(close(usd, want), "{usd} vs {want}");
    // Inconsistent counts from a provider never go negative.
    assert!(p.cost_of(&usage(10, 0, 50, 0)) >= 0.0);
}

#[test]
fn config_overrides_win_and_unknown_prices_are_none_never_free() {
    let cfg = crate::config::from_yaml(
        "providers:\n  p:\n    type: openai\n    base_url: http://127.0.0.1:1/v1\nmodels:\n  a:\n    deployments:\n      - {provider: p, model: gpt-4o}\n      - {provider: p, model: house-model}\n",
        &HashMap::new(),
    )
    .unwrap();
    let deps = cfg.models["a"].deployments.clone();
    let mut overrides = HashMap::new();
    overrides.insert("p/gpt-4o".to_owned(), Price::flat(1.0, 2.0));
    let pricing = Pricing::new(overrides);
    let c = pricing
        .cost(&deps[0], &usage(1_000_000, 1_000_000, 0, 0))
        .unwrap();
    assert!(close(c.usd, 3.0));
    assert_eq!(c.source, PriceSource::Config);
    assert!(pricing.cost(&deps[1], &usage(10, 10, 0, 0)).is_none());
    assert_eq!(pricing.unpriced(&deps), vec!["p/house-model".to_owned()]);
    let builtin_only = Pricing::default();
    assert!(matches!(
        builtin_only.price(&deps[0]).unwrap().1,
        PriceSource::Builtin(_)
    ));
}

/// Prices looked up ahead (the config's models) are the ones looked up as requests come, and
/// a model left out is still priced; config overrides still win.
#[test]
fn primed_prices_are_the_looked_up_ones() {
    let models = [
        "gpt-4o-mini",
        "claude-sonnet-4-5",
        "mock-gpt",
        "gemini-2.5-flash",
    ];
    let mut primed = Pricing::new(HashMap::new());
    primed.prime(models[..3].iter().copied());
    let plain = Pricing::new(HashMap::new());
    for m in models {
        assert_eq!(
            format!("{:?}", primed.price_of("p", m)),
            format!("{:?}", plain.price_of("p", m)),
            "{m}"
        );
    }
    assert!(primed.price_of("p", "gpt-4o-mini").is_some());
    let mut overridden = Pricing::new(HashMap::from([(
        "p/gpt-4o-mini".to_owned(),
        Price::flat(1.0, 2.0),
    )]));
    overridden.prime(["gpt-4o-mini"]);
    assert!(matches!(
        overridden.price_of("p", "gpt-4o-mini"),
        Some((_, PriceSource::Config))
    ));
}
