use std::collections::{BTreeMap, HashMap};

use super::*;
use crate::config::from_yaml;

fn router() -> Router {
    let cfg = from_yaml(
        "providers:\n  a:\n    type: openai\n    base_url: http://127.0.0.1:1/v1\n  b:\n    type: openai\n    base_url: http://127.0.0.1:2/v1\nmodels:\n  split:\n    deployments:\n      - {provider: a, model: m1, weight: 3}\n      - {provider: b, model: m2, weight: 1}\n      - {provider: b, model: off, weight: 0}\n  one/with-slash:\n    deployments:\n      - {provider: a, model: x}\n",
        &HashMap::new(),
    )
    .unwrap();
    Router::new(cfg.models, cfg.providers, cfg.server.timeouts)
}

#[test]
fn weighted_split_follows_weights_and_keeps_fallbacks() {
    let r = router();
    let mut firsts: BTreeMap<String, u32> = BTreeMap::new();
    for _ in 0..4000 {
        let route = r.route("split").unwrap();
        assert_eq!(route.candidates.len(), 3);
        assert_eq!(&*route.candidates[2].model, "off");
        *firsts
            .entry(route.candidates[0].model.to_string())
            .or_default() += 1;
    }
    let m1 = f64::from(firsts["m1"]) / 4000.0;
    assert!((0.70..0.80).contains(&m1), "m1 share {m1}");
    assert!(!firsts.contains_key("off"));
}

#[test]
fn aliases_win_over_provider_prefix() {
    let r = router();
    assert_eq!(r.route("one/with-slash").unwrap().rule, "alias");
    let direct = r.route("b/some-model").unwrap();
    assert_eq!(direct.rule, "provider-prefix");
    assert_eq!(&*direct.candidates[0].model, "some-model");
    assert_eq!(&*direct.candidates[0].provider.name, "b");
}

#[test]
fn unknown_models_list_the_aliases() {
    let r = router();
    match r.route("nope").unwrap_err() {
        GatewayError::ModelNotFound { model, available } => {
            assert_eq!(model, "nope");
            assert_eq!(
                available,
                vec!["one/with-slash".to_owned(), "split".to_owned()]
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(r.route("c/model").is_err());
    assert!(r.route("a/").is_err());
}
