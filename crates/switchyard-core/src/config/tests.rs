use std::collections::HashMap;

use super::*;

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn load(text: &str, pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
    from_yaml(text, &env(pairs))
}

fn err(text: &str) -> String {
    load(text, &[]).unwrap_err().to_string()
}

const FULL: &str = r#"
server:
  listen: "0.0.0.0:8080"
  max_body_size: 2MiB
  log_format: json
  shutdown_timeout: 5s
  timeouts:
    connect: 2s
    first_byte: 250ms
auth:
  master_key: ${MASTER}
  virtual_keys:
    - name: team-a
      key: ${TEAM_A_KEY}
    - name: team-b
      key_sha256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
providers:
  openai:
    type: openai
    api_key: ${OPENAI_API_KEY}
    headers:
      OpenAI-Organization: org-123
  azure-eu:
    type: azure
    base_url: https://example-eu.openai.azure.com/
    api_key: ${AZURE_KEY:-fallback-key}
    api_version: "2024-10-21"
models:
  chat:
    deployments:
      - provider: openai
        model: gpt-4o-mini
        weight: 3
      - provider: azure-eu
        model: my-gpt4o-deployment
"#;

#[test]
fn full_config_validates() {
    let cfg = load(
        FULL,
        &[
            ("MASTER", "master-secret-1"),
            ("TEAM_A_KEY", "sk-team-a-123"),
            ("OPENAI_API_KEY", "sk-upstream"),
        ],
    )
    .unwrap();
    assert_eq!(cfg.server.listen.to_string(), "0.0.0.0:8080");
    assert_eq!(cfg.server.max_body_size, 2 * 1024 * 1024);
    assert_eq!(cfg.server.log_format, LogFormat::Json);
    assert_eq!(cfg.server.timeouts.first_byte, Duration::from_millis(250));
    assert_eq!(cfg.server.timeouts.stream_idle, Duration::from_secs(300));
    assert_eq!(cfg.auth.virtual_keys.len(), 2);
    let openai = &cfg.providers["openai"];
    assert_eq!(
        openai.endpoint,
        Endpoint::Url("https://api.openai.com/v1".into())
    );
    assert_eq!(openai.api_key.as_ref().unwrap().expose(), "sk-upstream");
    let azure = &cfg.providers["azure-eu"];
    assert_eq!(
        azure.endpoint,
        Endpoint::Url("https://example-eu.openai.azure.com".into())
    );
    assert_eq!(azure.api_key.as_ref().unwrap().expose(), "fallback-key");
    let chat = &cfg.models["chat"];
    assert_eq!(chat.deployments[0].weight, 3);
    assert_eq!(&*chat.deployments[1].model, "my-gpt4o-deployment");
    // Secrets never show in debug output.
    let dbg = format!("{cfg:?}");
    for secret in ["master-secret-1", "sk-team-a-123", "sk-upstream", "org-123"] {
        assert!(!dbg.contains(secret), "{secret} leaked into {dbg}");
    }
}

#[test]
fn empty_file_is_the_plain_default() {
    let cfg = load("# nothing here\n", &[]).unwrap();
    assert_eq!(cfg.server.listen.to_string(), "127.0.0.1:4000");
    assert!(cfg.providers.is_empty());
    assert!(!cfg.auth.enabled());
}

#[test]
fn unknown_keys_are_errors_with_a_line() {
    let e = err("server:\n  listen: \"127.0.0.1:1\"\n  listne: x\n");
    assert!(e.contains("unknown field `listne`"), "{e}");
    assert!(e.contains("line 3"), "{e}");
    let e = err("providers:\n  a:\n    type: openai\n    apikey: x\n");
    assert!(
        e.contains("providers.a") && e.contains("apikey") && e.contains("line 4"),
        "{e}"
    );
}

#[test]
fn type_and_syntax_errors_name_the_key_and_line() {
    let e = err("server:\n  timeouts:\n    connect: 5\n");
    assert!(
        e.contains("server.timeouts.connect") && e.contains("line 3"),
        "{e}"
    );
    let e = err("server:\n  timeouts:\n    connect: 5 seconds\n");
    assert!(
        e.contains("unknown duration unit") && e.contains("line 3"),
        "{e}"
    );
    let e = err("providers:\n  a:\n    type: antropic\n");
    assert!(
        e.contains("unknown variant `antropic`") && e.contains("line 3"),
        "{e}"
    );
    let e = err("server: [\n");
    assert!(e.contains("line"), "{e}");
}

#[test]
fn missing_env_var_is_named_without_values() {
    let e = load(
        "auth:\n  master_key: ${NOPE_NOT_SET}\n",
        &[("OTHER", "secret-value")],
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("NOPE_NOT_SET") && e.contains("line 2") && e.contains("auth.master_key"),
        "{e}"
    );
}

#[test]
fn semantic_errors_name_key_and_line() {
    let text = "providers:\n  openai:\n    type: openai\nmodels:\n  chat:\n    deployments:\n      - provider: openai\n        model: a\n      - provider: opnai\n        model: b\n";
    let e = err(text);
    assert!(
        e.contains("`models.chat.deployments[1].provider` (line 9)"),
        "{e}"
    );
    assert!(e.contains("configured providers: openai"), "{e}");
}

#[test]
fn non_loopback_without_keys_is_refused() {
    let e = err("server:\n  listen: \"0.0.0.0:4000\"\n");
    assert!(e.contains("server.listen") && e.contains("line 2"), "{e}");
    load(
        "server:\n  listen: \"0.0.0.0:4000\"\nauth:\n  allow_unauthenticated: true\n",
        &[],
    )
    .unwrap();
}

#[test]
fn virtual_key_needs_exactly_one_form() {
    let e = err("auth:\n  virtual_keys:\n    - name: a\n");
    assert!(
        e.contains("auth.virtual_keys[0]") && e.contains("line 3"),
        "{e}"
    );
    let e = err("auth:\n  virtual_keys:\n    - name: a\n      key_sha256: abc\n");
    assert!(e.contains("64 hexadecimal"), "{e}");
}

#[test]
fn several_problems_are_all_reported() {
    let e = err("server:\n  listen: nowhere\nproviders:\n  x:\n    type: azure\n");
    assert!(
        e.contains("server.listen") && e.contains("providers.x.base_url"),
        "{e}"
    );
}

#[test]
fn embedded_default_detects_providers_from_env() {
    let cfg = embedded_default(&env(&[
        ("OPENAI_API_KEY", "sk-1"),
        ("OPENAI_BASE_URL", "http://127.0.0.1:9/v1/"),
        ("GROQ_API_KEY", "gsk-1"),
        ("AZURE_OPENAI_API_KEY", "az"),
        ("AZURE_OPENAI_ENDPOINT", "https://r.openai.azure.com"),
        ("OLLAMA_HOST", "0.0.0.0:11434"),
        ("VLLM_BASE_URL", "http://10.0.0.5:8000/v1"),
        ("SWITCHYARD_MASTER_KEY", "sk-master-123"),
    ]));
    assert_eq!(
        cfg.providers["openai"].endpoint,
        Endpoint::Url("http://127.0.0.1:9/v1".into())
    );
    assert_eq!(
        cfg.providers["groq"].endpoint,
        Endpoint::Url("https://api.groq.com/openai/v1".into())
    );
    assert_eq!(
        cfg.providers["azure"].kind,
        ProviderKind::Azure {
            api_version: "2024-10-21".into()
        }
    );
    assert_eq!(
        cfg.providers["ollama"].endpoint,
        Endpoint::Url("http://127.0.0.1:11434/v1".into())
    );
    assert_eq!(cfg.providers["mock"].endpoint, Endpoint::EmbeddedMock);
    assert!(cfg.models.contains_key("demo"));
    assert!(cfg.auth.enabled());
    assert!(!cfg.providers.contains_key("mistral"));
    assert!(cfg.providers["vllm"].api_key.is_none());
    assert_eq!(
        cfg.providers["vllm"].endpoint,
        Endpoint::Url("http://10.0.0.5:8000/v1".into())
    );
}

#[test]
fn units_parse() {
    use super::units::*;
    assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
    assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
    assert!(parse_duration("10").unwrap_err().contains("no unit"));
    assert_eq!(parse_size("4MiB").unwrap(), 4 << 20);
    assert_eq!(parse_size("1000").unwrap(), 1000);
    assert!(parse_size("3 bananas").is_err());
}

#[test]
fn env_expansion_rules() {
    let vars = env(&[("A", "1"), ("EMPTY", "")]);
    assert_eq!(raw::expand("x${A}y${B:-d}", &vars).unwrap(), "x1yd");
    assert!(raw::expand("${EMPTY}", &vars).is_err());
    assert!(raw::expand("${A", &vars).is_err());
    assert!(raw::expand("${1A}", &vars).is_err());
}

#[test]
fn gemini_and_vertex_providers() {
    let cfg = load(
        r#"
providers:
  studio:
    type: gemini
    api_key: ${GEMINI_API_KEY}
  vertex-url:
    type: vertex
    base_url: https://europe-west4-aiplatform.googleapis.com/v1/projects/p1/locations/europe-west4/publishers/google/
    api_key: ya29.token
  vertex-derived:
    type: vertex
    project: my-project-42
    location: us-central1
  vertex-global:
    type: vertex
    project: my-project-42
    location: global
"#,
        &[("GEMINI_API_KEY", "AIza-1")],
    )
    .unwrap();
    let p = &cfg.providers;
    assert_eq!(p["studio"].kind, ProviderKind::Gemini);
    assert_eq!(
        p["studio"].endpoint,
        Endpoint::Url("https://generativelanguage.googleapis.com/v1beta".into())
    );
    assert_eq!(p["vertex-url"].kind, ProviderKind::Vertex);
    assert_eq!(
        p["vertex-url"].endpoint,
        Endpoint::Url(
            "https://europe-west4-aiplatform.googleapis.com/v1/projects/p1/locations/europe-west4/publishers/google".into()
        )
    );
    assert_eq!(
        p["vertex-derived"].endpoint,
        Endpoint::Url(
            "https://us-central1-aiplatform.googleapis.com/v1/projects/my-project-42/locations/us-central1/publishers/google".into()
        )
    );
    assert_eq!(
        p["vertex-global"].endpoint,
        Endpoint::Url(
            "https://aiplatform.googleapis.com/v1/projects/my-project-42/locations/global/publishers/google".into()
        )
    );

    // Problems name the key at fault.
    for (yaml, key, words) in [
        ("providers:\n  v:\n    type: vertex\n", "providers.v.base_url", "project"),
        (
            "providers:\n  v:\n    type: vertex\n    project: Bad_Project\n    location: us-central1\n",
            "providers.v.project",
            "project id",
        ),
        (
            "providers:\n  v:\n    type: vertex\n    project: good-project\n    location: \"us central\"\n",
            "providers.v.location",
            "location",
        ),
        (
            "providers:\n  v:\n    type: vertex\n    project: good-project\n    location: us-east1\n    base_url: https://x/v1\n",
            "providers.v.base_url",
            "not both",
        ),
        (
            "providers:\n  g:\n    type: gemini\n    project: good-project\n",
            "providers.g.project",
            "only Vertex",
        ),
        (
            "providers:\n  g:\n    type: gemini\n    api_version: v1\n",
            "providers.g.api_version",
            "api_version",
        ),
    ] {
        let e = err(yaml);
        assert!(e.contains(key) && e.contains(words), "{yaml}\n{e}");
    }
    // Unknown keys stay errors.
    let e = err("providers:\n  g:\n    type: gemini\n    region: x\n");
    assert!(e.contains("region"), "{e}");
}

#[test]
fn embedded_default_adds_gemini_from_its_key_and_the_gemini_demo() {
    let cfg = embedded_default(&env(&[("GEMINI_API_KEY", "AIza-g")]));
    assert_eq!(cfg.providers["gemini"].kind, ProviderKind::Gemini);
    assert_eq!(
        cfg.providers["gemini"]
            .api_key
            .as_ref()
            .map(|k| k.expose().to_owned()),
        Some("AIza-g".to_owned())
    );
    let cfg = embedded_default(&env(&[
        ("GEMINI_API_KEY", "AIza-g"),
        ("GOOGLE_API_KEY", "AIza-o"),
    ]));
    assert_eq!(
        cfg.providers["gemini"]
            .api_key
            .as_ref()
            .map(|k| k.expose().to_owned()),
        Some("AIza-o".to_owned())
    );
    let cfg = embedded_default(&env(&[]));
    assert!(!cfg.providers.contains_key("gemini"));
    assert_eq!(
        cfg.providers["mock-gemini"].endpoint,
        Endpoint::EmbeddedMock
    );
    assert_eq!(cfg.providers["mock-gemini"].kind, ProviderKind::Gemini);
    assert_eq!(
        &*cfg.models["demo-gemini"].deployments[0].provider.name,
        "mock-gemini"
    );
}

#[test]
fn otlp_export_is_off_by_default_and_validated_when_set() {
    assert!(load("", &[]).unwrap().telemetry.otlp.is_none());
    let c = load(
        "telemetry:\n  otlp:\n    endpoint: http://127.0.0.1:4318/\n    headers: {authorization: \"Bearer ${T}\"}\n",
        &[("T", "tok")],
    )
    .unwrap();
    let o = c.telemetry.otlp.unwrap();
    assert_eq!(o.traces_url.to_string(), "http://127.0.0.1:4318/v1/traces");
    assert_eq!(o.service_name, "switchyard");
    assert!(o.headers[0].1.is_sensitive());
    assert!(!format!("{o:?}").contains("tok"), "{o:?}");
    let e = err("telemetry:\n  otlp:\n    endpoint: \"ftp://x\"\n");
    assert!(e.contains("telemetry.otlp.endpoint"), "{e}");
    let e = err("telemetry:\n  otlp:\n    endpoint: http://x\n    sample: 1\n");
    assert!(e.contains("sample"), "{e}");
}

#[test]
fn cache_and_guardrail_problems_name_their_key_and_line() {
    let text = "cache:\n  enabled: true\n  ttl: 0s\n  models: [demo, '']\nguardrails:\n  - name: pii\n    detect: [email]\n  - name: bad\n    patterns: ['ok', '(unclosed']\n  - name: pii\n    detect: [emial]\n";
    let e = err(text);
    for want in [
        "`cache.ttl` (line 3)",
        "`cache.models[1]` (line 4)",
        "`guardrails[1].patterns[1]` (line 9)",
        "`guardrails[2].name` (line 10)",
        "`guardrails[2].detect[0]` (line 11)",
    ] {
        assert!(e.contains(want), "{want}: {e}");
    }
    // Unknown keys are errors here too.
    let e = err("guardrails:\n  - name: x\n    detect: [email]\n    acton: block\n");
    assert!(e.contains("acton"), "{e}");
    let ok = load(
        "cache:\n  enabled: true\nguardrails:\n  - name: pii\n    detect: [email, phone]\n    action: redact\n",
        &[],
    )
    .unwrap();
    assert!(ok.cache.enabled);
    assert_eq!(ok.guardrails.rules.len(), 1);
}
