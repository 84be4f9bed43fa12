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

// === routing policies ===

mod policies {
    use std::collections::HashMap;
    use std::sync::Arc;
    use std::time::Duration;

    use http::HeaderMap;

    use super::super::estimate::Features;
    use super::super::policy::Label;
    use super::super::stats::InFlight;
    use super::super::*;
    use crate::attribution::Attribution;
    use crate::capabilities::CapabilityTable;
    use crate::config::from_yaml;
    use crate::providers::Operation;
    use crate::resilience::reset::QuotaReading;
    use crate::resilience::{Health, ResilienceConfig};

    const PROVIDERS: &str = "providers:\n  a:\n    type: openai\n    base_url: http://127.0.0.1:1/v1\n  b:\n    type: openai\n    base_url: http://127.0.0.1:2/v1\n  c:\n    type: openai\n    base_url: http://127.0.0.1:3/v1\n";

    /// A router over `models` (YAML under `models:`), seeded for repeatable draws.
    pub(crate) fn router(models: &str) -> Router {
        let cfg = from_yaml(&format!("{PROVIDERS}models:\n{models}"), &HashMap::new())
            .unwrap_or_else(|e| panic!("{e}"));
        Router::new(cfg.models, cfg.providers, cfg.server.timeouts)
            .with_capabilities(CapabilityTable::new(cfg.capabilities))
            .with_routing(cfg.routing)
            .with_seed(7)
    }

    fn three(strategy: &str, extra: &str) -> String {
        format!(
            "  x:\n    deployments:\n      - {{provider: a, model: gpt-4o}}\n      - {{provider: b, model: gpt-4o-mini}}\n      - {{provider: c, model: claude-3-haiku}}\n    routing:\n      strategy: {strategy}\n{extra}"
        )
    }

    struct Req {
        features: Features,
        attribution: Attribution,
        key: &'static str,
        headers: HeaderMap,
    }

    impl Req {
        fn new() -> Self {
            Self {
                features: Features {
                    prompt_tokens: 1000,
                    max_tokens: Some(500),
                    ..Features::default()
                },
                attribution: Attribution::default(),
                key: "anonymous",
                headers: HeaderMap::new(),
            }
        }
        fn view<'a>(&'a self, model: &'a str) -> RouteRequest<'a> {
            RouteRequest {
                model,
                op: Operation::ChatCompletions,
                features: &self.features,
                attribution: &self.attribution,
                key: self.key,
                headers: &self.headers,
            }
        }
    }

    fn decide(r: &Router, h: &Health, req: &Req, model: &str) -> Decision {
        let view = req.view(model);
        let step = match r.select(&view) {
            Selection::Resolved(s) => s,
            Selection::Classify(c) => r.classified(&c, Label::Simple, "test"),
        };
        r.plan(&view, &step, h, true).unwrap()
    }

    fn order(d: &Decision) -> Vec<String> {
        d.route
            .candidates
            .iter()
            .map(|c| format!("{}/{}", c.provider.name, c.model))
            .collect()
    }

    fn first(d: &Decision) -> String {
        order(d).remove(0)
    }

    fn health() -> Health {
        Health::new(ResilienceConfig::default())
    }

    fn stats(h: &Health, dep: &str) -> Arc<crate::resilience::DeploymentHealth> {
        let (p, m) = dep.split_once('/').unwrap();
        h.get(&Arc::from(p), &Arc::from(m))
    }

    #[test]
    fn priority_keeps_config_order_with_standbys_last() {
        let r = router("  x:\n    deployments:\n      - {provider: c, model: m0, weight: 0}\n      - {provider: a, model: m1, weight: 1}\n      - {provider: b, model: m2, weight: 9}\n    routing:\n      strategy: priority\n");
        let h = health();
        for _ in 0..20 {
            let d = decide(&r, &h, &Req::new(), "x");
            assert_eq!(order(&d), ["a/m1", "b/m2", "c/m0"]);
            assert_eq!(&*d.label, "alias:priority");
        }
    }

    #[test]
    fn round_robin_takes_turns() {
        let r = router(&three("round_robin", ""));
        let h = health();
        let firsts: Vec<String> = (0..6)
            .map(|_| first(&decide(&r, &h, &Req::new(), "x")))
            .collect();
        assert_eq!(
            firsts,
            [
                "a/gpt-4o",
                "b/gpt-4o-mini",
                "c/claude-3-haiku",
                "a/gpt-4o",
                "b/gpt-4o-mini",
                "c/claude-3-haiku"
            ]
        );
    }

    #[test]
    fn least_inflight_prefers_the_idlest() {
        let r = router(&three("least_inflight", ""));
        let h = health();
        let _a = [
            InFlight::begin(stats(&h, "a/gpt-4o")),
            InFlight::begin(stats(&h, "a/gpt-4o")),
        ];
        let b = InFlight::begin(stats(&h, "b/gpt-4o-mini"));
        let _c = InFlight::begin(stats(&h, "c/claude-3-haiku"));
        let _c2 = InFlight::begin(stats(&h, "c/claude-3-haiku"));
        for _ in 0..10 {
            assert_eq!(first(&decide(&r, &h, &Req::new(), "x")), "b/gpt-4o-mini");
        }
        drop(b);
        let _b = [
            InFlight::begin(stats(&h, "b/gpt-4o-mini")),
            InFlight::begin(stats(&h, "b/gpt-4o-mini")),
            InFlight::begin(stats(&h, "b/gpt-4o-mini")),
        ];
        // Now a and c tie at two: either may lead, never b.
        for _ in 0..10 {
            assert_ne!(first(&decide(&r, &h, &Req::new(), "x")), "b/gpt-4o-mini");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn latency_uses_two_random_choices_over_decaying_estimates() {
        let r = router(&three("latency", ""));
        let h = health();
        let now = tokio::time::Instant::now();
        stats(&h, "a/gpt-4o")
            .stats
            .record_latency(Duration::from_millis(900), now);
        stats(&h, "b/gpt-4o-mini")
            .stats
            .record_latency(Duration::from_millis(100), now);
        stats(&h, "c/claude-3-haiku")
            .stats
            .record_latency(Duration::from_millis(400), now);
        let mut firsts: HashMap<String, u32> = HashMap::new();
        for _ in 0..300 {
            let d = decide(&r, &h, &Req::new(), "x");
            *firsts.entry(first(&d)).or_default() += 1;
            // Failover order after the pick is by estimate.
            let rest = &order(&d)[1..];
            let pos = |n: &str| rest.iter().position(|x| x == n);
            if let (Some(b), Some(a)) = (pos("b/gpt-4o-mini"), pos("a/gpt-4o")) {
                assert!(b < a);
            }
        }
        // The slowest is never first: it loses every pair it is drawn into.
        assert_eq!(firsts.get("a/gpt-4o"), None, "{firsts:?}");
        // The fastest wins every pair it is in (two pairs of three): about two thirds.
        let b = f64::from(firsts["b/gpt-4o-mini"]) / 300.0;
        assert!((0.55..0.80).contains(&b), "{firsts:?}");
        // In-flight load counts: ten requests at b make its cost 100 × 11 > 400.
        let _load: Vec<_> = (0..10)
            .map(|_| InFlight::begin(stats(&h, "b/gpt-4o-mini")))
            .collect();
        for _ in 0..50 {
            assert_ne!(first(&decide(&r, &h, &Req::new(), "x")), "b/gpt-4o-mini");
        }
        // Estimates decay while a deployment is idle, so a slow one is tried again later.
        let before = stats(&h, "a/gpt-4o")
            .stats
            .snapshot(tokio::time::Instant::now())
            .latency_ms
            .unwrap();
        tokio::time::advance(Duration::from_secs(120)).await;
        let after = stats(&h, "a/gpt-4o")
            .stats
            .snapshot(tokio::time::Instant::now())
            .latency_ms
            .unwrap();
        assert!(after < before / 5.0, "{before} → {after}");
    }

    #[tokio::test(start_paused = true)]
    async fn moving_averages_weigh_samples_by_elapsed_time() {
        let mut d = super::super::stats::Decaying::default();
        let t0 = tokio::time::Instant::now();
        assert_eq!(d.read(t0), None);
        d.update(100.0, t0);
        assert_eq!(d.read(t0), Some(100.0));
        // A sample in the same instant still moves it by the minimum weight.
        d.update(200.0, t0);
        assert!((d.read(t0).unwrap() - 105.0).abs() < 1e-9);
        // A sample long after replaces it almost entirely.
        tokio::time::advance(Duration::from_secs(100)).await;
        let t1 = tokio::time::Instant::now();
        d.update(300.0, t1);
        assert!((d.read(t1).unwrap() - 300.0).abs() < 1.0);
    }

    #[test]
    fn cheapest_orders_by_estimated_cost_and_puts_unknown_prices_last() {
        let r = router("  x:\n    deployments:\n      - {provider: a, model: gpt-4o}\n      - {provider: b, model: house-model}\n      - {provider: c, model: claude-3-haiku}\n      - {provider: a, model: gpt-4o-mini}\n    routing:\n      strategy: cheapest\n");
        let h = health();
        let d = decide(&r, &h, &Req::new(), "x");
        assert_eq!(
            order(&d),
            [
                "a/gpt-4o-mini",
                "c/claude-3-haiku",
                "a/gpt-4o",
                "b/house-model"
            ]
        );
        // 1000 in, 500 out at 0.15 / 0.60 per million.
        let mini = d
            .candidates
            .iter()
            .find(|c| &*c.deployment.model == "gpt-4o-mini")
            .unwrap();
        assert!((mini.estimated_cost.unwrap() - (1000.0 * 0.15 + 500.0 * 0.6) / 1e6).abs() < 1e-12);
        // A config price overrides the table.
        let r = router("  x:\n    deployments:\n      - {provider: a, model: gpt-4o, price: {input: 0.01, output: 0.01}}\n      - {provider: a, model: gpt-4o-mini}\n    routing:\n      strategy: cheapest\n");
        assert_eq!(first(&decide(&r, &h, &Req::new(), "x")), "a/gpt-4o");
    }

    #[tokio::test(start_paused = true)]
    async fn quota_steers_away_before_a_deployment_runs_out_and_back_after_its_reset() {
        let r = router("  x:\n    deployments:\n      - {provider: a, model: m1}\n      - {provider: b, model: m2, weight: 0}\n    routing:\n      strategy: quota\n");
        let r2 = router("  x:\n    deployments:\n      - {provider: a, model: m1}\n      - {provider: b, model: m2}\n    routing:\n      strategy: quota\n");
        let h = health();
        let now = tokio::time::Instant::now();
        let reading = |left: u64| QuotaReading {
            limit_requests: Some(10),
            remaining_requests: Some(left),
            reset_requests: Some(Duration::from_secs(5)),
            ..QuotaReading::default()
        };
        let a = stats(&h, "a/m1");
        a.stats.set_quota(reading(2), now);
        // Room to spare: both stay in the weighted rotation.
        let firsts: std::collections::HashSet<String> = (0..40)
            .map(|_| first(&decide(&r2, &h, &Req::new(), "x")))
            .collect();
        assert_eq!(firsts.len(), 2, "{firsts:?}");
        // One request left but one in flight: effectively none.
        a.stats.set_quota(reading(1), now);
        let inflight = InFlight::begin(Arc::clone(&a));
        for _ in 0..20 {
            assert_eq!(first(&decide(&r2, &h, &Req::new(), "x")), "b/m2");
        }
        drop(inflight);
        assert_eq!(first(&decide(&r, &h, &Req::new(), "x")), "a/m1");
        a.stats.set_quota(reading(0), now);
        let d = decide(&r, &h, &Req::new(), "x");
        assert_eq!(
            order(&d),
            ["b/m2", "a/m1"],
            "even a standby goes before an exhausted one"
        );
        for _ in 0..20 {
            assert_eq!(order(&decide(&r2, &h, &Req::new(), "x")), ["b/m2", "a/m1"]);
        }
        // After the reported reset the window has refilled.
        tokio::time::advance(Duration::from_secs(6)).await;
        let mut saw_a = false;
        for _ in 0..20 {
            saw_a |= first(&decide(&r2, &h, &Req::new(), "x")) == "a/m1";
        }
        assert!(saw_a);
        // A token budget smaller than the request's estimate is low too.
        a.stats.set_quota(
            QuotaReading {
                remaining_tokens: Some(1200),
                ..QuotaReading::default()
            },
            tokio::time::Instant::now(),
        );
        for _ in 0..20 {
            assert_eq!(
                first(&decide(&r2, &h, &Req::new(), "x")),
                "b/m2",
                "needs ~1500 tokens"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn scored_weighs_cost_latency_errors_and_quality_and_never_picks_a_violator() {
        let models = three(
            "scored",
            "      weights: {cost: 1, latency: 1, errors: 4, quality: 0}\n      constraints: {max_cost: 0.005, latency_budget: 2s}\n",
        );
        let r = router(&models);
        let h = health();
        let now = tokio::time::Instant::now();
        for (dep, ms) in [
            ("a/gpt-4o", 500),
            ("b/gpt-4o-mini", 600),
            ("c/claude-3-haiku", 700),
        ] {
            for _ in 0..30 {
                let s = stats(&h, dep);
                s.latency.record(Duration::from_millis(ms));
                s.stats.record_latency(Duration::from_millis(ms), now);
            }
        }
        // gpt-4o: 1000×2.5 + 500×10 = 0.0075 USD > max_cost: never chosen.
        let d = decide(&r, &h, &Req::new(), "x");
        assert_eq!(order(&d), ["b/gpt-4o-mini", "c/claude-3-haiku"]);
        let a = d
            .candidates
            .iter()
            .find(|c| &*c.deployment.model == "gpt-4o")
            .unwrap();
        assert!(!a.eligible);
        let failed: Vec<_> = a
            .checks
            .iter()
            .filter(|c| !c.passed)
            .map(|c| c.name)
            .collect();
        assert_eq!(failed, ["max_cost"]);
        assert!(d.candidates[0].score.unwrap().total < d.candidates[1].score.unwrap().total);
        // Errors at the cheapest push it behind.
        for _ in 0..40 {
            stats(&h, "b/gpt-4o-mini").stats.record_outcome(false, now);
        }
        assert_eq!(first(&decide(&r, &h, &Req::new(), "x")), "c/claude-3-haiku");
        // A latency budget excludes a slow deployment.
        for _ in 0..300 {
            stats(&h, "c/claude-3-haiku")
                .latency
                .record(Duration::from_millis(2500));
        }
        let d = decide(&r, &h, &Req::new(), "x");
        assert_eq!(order(&d), ["b/gpt-4o-mini"]);
        // When nothing is left, the request is refused with every deployment's reason.
        for _ in 0..300 {
            stats(&h, "b/gpt-4o-mini")
                .latency
                .record(Duration::from_millis(2500));
        }
        let err = decide(&r, &h, &Req::new(), "x").into_route().unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("max_cost") && msg.contains("latency_budget"),
            "{msg}"
        );
        assert_eq!(err.status(), http::StatusCode::BAD_REQUEST);
    }

    #[test]
    fn scored_prefers_quality_when_weighted_and_respects_required_capabilities() {
        let r = router("  x:\n    deployments:\n      - {provider: a, model: gpt-3.5-turbo, quality: 1}\n      - {provider: b, model: gpt-4o, quality: 5}\n    routing:\n      strategy: scored\n      weights: {cost: 0.1, latency: 0, errors: 0, quality: 5}\n");
        let h = health();
        assert_eq!(first(&decide(&r, &h, &Req::new(), "x")), "b/gpt-4o");
        // gpt-3.5-turbo has no vision; an image request never goes there.
        let r = router("  x:\n    deployments:\n      - {provider: a, model: gpt-3.5-turbo}\n      - {provider: b, model: gpt-4o}\n    routing:\n      strategy: cheapest\n");
        let mut req = Req::new();
        assert_eq!(first(&decide(&r, &h, &req, "x")), "a/gpt-3.5-turbo");
        req.features.has_images = true;
        assert_eq!(order(&decide(&r, &h, &req, "x")), ["b/gpt-4o"]);
        // Context window (16k) against the estimate plus max_tokens.
        req.features.has_images = false;
        req.features.prompt_tokens = 16_000;
        assert_eq!(order(&decide(&r, &h, &req, "x")), ["b/gpt-4o"]);
        // Capabilities the alias always requires.
        let r = router("  x:\n    deployments:\n      - {provider: a, model: o1-mini}\n      - {provider: b, model: gpt-4o}\n    routing:\n      strategy: priority\n      constraints: {capabilities: [tools]}\n");
        assert_eq!(order(&decide(&r, &h, &Req::new(), "x")), ["b/gpt-4o"]);
    }

    #[test]
    fn rules_match_on_attribution_headers_and_features_first_match_wins() {
        let r = router("  big:\n    deployments: [{provider: a, model: gpt-4o}]\n  x:\n    deployments:\n      - {provider: a, model: m1}\n      - {provider: b, model: m2}\n    routing:\n      rules:\n        - name: research\n          when: {team: [research], tags: {tier: gold}}\n          alias: big\n        - name: tools-on-b\n          when: {has_tools: true, prompt_tokens: {min: 10}}\n          deployments: [b/m2]\n        - name: hdr\n          when: {headers: {x-route: fast}, max_tokens: {max: 100}}\n          alias: big\n");
        let h = health();
        let mut req = Req::new();
        assert_eq!(&*decide(&r, &h, &req, "x").label, "alias:weighted");
        req.attribution.team = Some(Arc::from("research"));
        assert_eq!(
            &*decide(&r, &h, &req, "x").label,
            "alias:weighted",
            "the tag is missing"
        );
        req.attribution.tags = vec![(Arc::from("tier"), Arc::from("gold"))];
        let d = decide(&r, &h, &req, "x");
        assert_eq!(&*d.label, "rule:research>alias");
        assert_eq!(order(&d), ["a/gpt-4o"]);
        let mut req = Req::new();
        req.features.has_tools = true;
        let d = decide(&r, &h, &req, "x");
        assert_eq!(order(&d), ["b/m2"]);
        assert_eq!(&*d.label, "rule:tools-on-b>alias:weighted");
        let mut req = Req::new();
        req.headers
            .insert("x-route", http::HeaderValue::from_static("fast"));
        assert_eq!(
            &*decide(&r, &h, &req, "x").label,
            "alias:weighted",
            "max_tokens 500 > 100"
        );
        req.features.max_tokens = Some(50);
        assert_eq!(&*decide(&r, &h, &req, "x").label, "rule:hdr>alias");
    }

    #[test]
    fn splits_are_sticky_per_user_and_follow_the_percentages() {
        let r = router("  old:\n    deployments: [{provider: a, model: m1}]\n  new:\n    deployments: [{provider: b, model: m2}]\n  x:\n    routing:\n      rules:\n        - name: migrate\n          split:\n            - {alias: old, percent: 80}\n            - {alias: new, percent: 20}\n");
        let h = health();
        let mut new = 0;
        for i in 0..2000 {
            let mut req = Req::new();
            req.attribution.user = Some(Arc::from(format!("user-{i}")));
            let d1 = decide(&r, &h, &req, "x");
            let d2 = decide(&r, &h, &req, "x");
            assert_eq!(d1.alias, d2.alias, "sticky");
            if d1.alias == "new" {
                new += 1;
                assert_eq!(&*d1.label, "split:migrate=new>alias");
            }
        }
        let share = f64::from(new) / 2000.0;
        assert!((0.17..0.23).contains(&share), "{share}");
    }

    #[test]
    fn classifier_labels_pick_aliases() {
        let r = router("  cheap:\n    deployments: [{provider: a, model: m1}]\n  smart:\n    deployments: [{provider: b, model: m2}]\n  auto:\n    routing:\n      classifier:\n        labels: {simple: cheap, complex: smart}\n        default: complex\n");
        let req = Req::new();
        let Selection::Classify(c) = r.select(&req.view("auto")) else {
            panic!("expected a classifier")
        };
        assert_eq!(r.classified(&c, Label::Simple, "heuristic").alias, "cheap");
        // `code` is not mapped: the default label's alias serves.
        let step = r.classified(&c, Label::Code, "heuristic");
        assert_eq!(step.alias, "smart");
        assert_eq!(step.reason.as_deref(), Some("classifier:complex/heuristic"));
        let f = Features::default();
        let body = |t: &str| {
            serde_json::to_vec(&serde_json::json!({"messages":[{"role":"user","content":t}]}))
                .unwrap()
        };
        assert_eq!(
            Router::heuristic_label(&c, &body("What is the capital of France?"), &f),
            Label::Simple
        );
        assert_eq!(
            Router::heuristic_label(
                &c,
                &body("Fix this Python function:\n```\ndef f(x): return x+\n```"),
                &f
            ),
            Label::Code
        );
        assert_eq!(
            Router::heuristic_label(&c, &body("Compare the trade-offs of these two database designs and explain why one scales better, step by step."), &f),
            Label::Complex
        );
        assert_eq!(
            Router::heuristic_label(&c, &body("I trust you. Say hi."), &f),
            Label::Simple
        );
        let long = Features {
            prompt_tokens: 5000,
            ..Features::default()
        };
        assert_eq!(
            Router::heuristic_label(&c, &body("hi"), &long),
            Label::Complex
        );
    }

    #[test]
    fn judge_answers_and_cache() {
        use super::super::classify::{read_answer, JudgeCache};
        assert_eq!(read_answer("Code."), Some(Label::Code));
        assert_eq!(read_answer("  simple"), Some(Label::Simple));
        assert_eq!(
            read_answer("This is complex, not code"),
            Some(Label::Complex)
        );
        assert_eq!(read_answer("simpler"), None);
        let cache = JudgeCache::new(2);
        cache.put("a", Label::Code);
        cache.put("b", Label::Simple);
        cache.put("c", Label::Complex);
        assert_eq!(cache.len(), 2);
        assert_eq!(cache.get("a"), None, "the oldest went first");
        assert_eq!(cache.get("c"), Some(Label::Complex));
    }

    fn config_error(models: &str) -> String {
        match from_yaml(&format!("{PROVIDERS}models:\n{models}"), &HashMap::new()) {
            Ok(_) => panic!("accepted:\n{models}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn bad_routing_config_names_the_key() {
        let e = config_error(
            "  x:\n    deployments: [{provider: a, model: m}]\n    routing: {strategy: fastest}\n",
        );
        assert!(
            e.contains("models.x.routing.strategy") && e.contains("unknown variant"),
            "{e}"
        );
        let e = config_error("  y:\n    deployments: [{provider: a, model: m}]\n  x:\n    routing:\n      rules:\n        - name: s\n          split: [{alias: y, percent: 60}, {alias: y, percent: 30}]\n");
        assert!(
            e.contains("models.x.routing.rules[0].split") && e.contains("add up to 100"),
            "{e}"
        );
        let e = config_error("  x:\n    deployments: [{provider: a, model: m}]\n    routing:\n      rules: [{name: r, alias: nope}]\n");
        assert!(
            e.contains("models.x.routing.rules[0].alias") && e.contains("unknown alias `nope`"),
            "{e}"
        );
        let e = config_error("  x:\n    deployments: [{provider: a, model: m}]\n    routing:\n      rules: [{name: r, deployments: [b/m]}]\n");
        assert!(
            e.contains("rules[0].deployments[0]") && e.contains("not a deployment of `x`"),
            "{e}"
        );
        let e = config_error("  x:\n    deployments: [{provider: a, model: m, price: {input: 1, output: 2}}]\n  y:\n    deployments: [{provider: a, model: m, price: {input: 1, output: 3}}]\n");
        assert!(
            e.contains("models.y.deployments[0].price") && e.contains("different price"),
            "{e}"
        );
        let e = config_error("  x:\n    routing: {strategy: latency}\n");
        assert!(
            e.contains("models.x.deployments") && e.contains("at least one deployment"),
            "{e}"
        );
        let e = config_error("  x:\n    deployments: [{provider: a, model: m, quality: 9}]\n");
        assert!(e.contains("models.x.deployments[0].quality"), "{e}");
        let e = config_error("  x:\n    deployments: [{provider: a, model: m}]\n    routing:\n      strategy: priority\n      weights: {cost: 1}\n");
        assert!(e.contains("only the `scored` strategy"), "{e}");
        let e = config_error("  j:\n    deployments: [{provider: a, model: m}]\n  x:\n    routing:\n      classifier:\n        labels: {simple: j, hard: j}\n        default: code\n        judge: {model: x}\n");
        assert!(
            e.contains("labels.hard")
                && e.contains("classifier.default")
                && e.contains("judge.model"),
            "{e}"
        );
        let e = config_error("  x:\n    deployments: [{provider: a, model: m}]\n    routing:\n      constraints: {capabilities: [telepathy], max_cost: -1}\n");
        assert!(
            e.contains("capabilities[0]") && e.contains("max_cost"),
            "{e}"
        );
    }
}
