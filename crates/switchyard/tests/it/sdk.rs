//! The official OpenAI SDKs (Python and Node) and Anthropic's Python SDK against the gateway.
//!
//! The SDKs are installed by `.ci/run` (`pip install openai anthropic`, `npm ci` in
//! `tests/sdk/node`).
//! Without them a test prints why it skipped; with `CI=true` it fails instead, so CI cannot pass
//! without exercising them.

use std::path::PathBuf;
use std::process::Command;

use crate::harness::*;

pub const KEY: &str = "sk-sdk-test-0123456789";

pub fn sdk_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/sdk")
}

pub fn skip_or_fail(why: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
        panic!("SDK test cannot run in CI: {why}");
    }
    eprintln!("skipped: {why}");
}

async fn gateway() -> Gateway {
    let mock = keyed_mock().await;
    let mut cfg = config_for(&mock);
    cfg.push_str(&format!("auth:\n  master_key: {KEY}\n"));
    Gateway::start(&cfg).await
}

pub async fn run(mut cmd: Command) {
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "SDK script failed:\n{stdout}\n{stderr}"
    );
}

#[tokio::test]
async fn openai_python_sdk() {
    let probe = Command::new("python3")
        .args(["-c", "import openai"])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        return skip_or_fail(
            "python3 with the `openai` package is not installed (pip install openai)",
        );
    }
    let gw = gateway().await;
    let mut cmd = Command::new("python3");
    cmd.arg(sdk_dir().join("openai_python.py"))
        .arg(format!("{}/v1", gw.url))
        .arg(KEY);
    run(cmd).await;
}

#[tokio::test]
async fn openai_node_sdk() {
    let node_dir = sdk_dir().join("node");
    if !node_dir.join("node_modules/openai").exists() {
        return skip_or_fail("the `openai` npm package is not installed (npm ci in crates/switchyard/tests/sdk/node)");
    }
    let gw = gateway().await;
    let mut cmd = Command::new("node");
    cmd.arg(node_dir.join("openai_node.mjs"))
        .arg(format!("{}/v1", gw.url))
        .arg(KEY);
    run(cmd).await;
}

/// Runs `openai_provider.py` against `alias` on a gateway started from `cfg` (which must set
/// `auth.master_key` to [`KEY`]); `provider` is the configured name that must answer. Each
/// provider type's tests call this, so every adapter is driven by the official OpenAI SDK,
/// streaming and tools included.
pub async fn openai_sdk_against(cfg: &str, alias: &str, provider: &str) {
    let probe = Command::new("python3")
        .args(["-c", "import openai"])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        return skip_or_fail(
            "python3 with the `openai` package is not installed (pip install openai)",
        );
    }
    let gw = Gateway::start(cfg).await;
    let mut cmd = Command::new("python3");
    cmd.arg(sdk_dir().join("openai_provider.py"))
        .arg(format!("{}/v1", gw.url))
        .arg(KEY)
        .arg(alias)
        .arg(provider);
    run(cmd).await;
}

/// The usual config plus an Anthropic provider `claude` (the mock's Anthropic face) behind
/// the alias `smart`, with the SDK key as master key.
pub fn config_with_claude(mock: &str) -> String {
    format!(
        "{}  smart:\n    deployments:\n      - provider: claude\n        model: claude-sonnet-4-5\n\
         auth:\n  master_key: {KEY}\n",
        config_for(mock).replace(
            "models:\n",
            &format!(
                "  claude:\n    type: anthropic\n    base_url: \"{mock}/v1\"\n    api_key: ${{UPSTREAM_KEY}}\nmodels:\n"
            ),
        )
    )
}

#[tokio::test]
async fn openai_python_sdk_against_anthropic() {
    let mock = keyed_mock().await;
    openai_sdk_against(&config_with_claude(&mock), "smart", "claude").await;
}

#[tokio::test]
async fn anthropic_python_sdk() {
    let probe = Command::new("python3")
        .args(["-c", "import anthropic"])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        return skip_or_fail(
            "python3 with the `anthropic` package is not installed (pip install anthropic)",
        );
    }
    let mock = keyed_mock().await;
    let gw = Gateway::start(&config_with_claude(&mock)).await;
    let mut cmd = Command::new("python3");
    cmd.arg(sdk_dir().join("anthropic_python.py"))
        .arg(&gw.url)
        .arg(KEY);
    run(cmd).await;
}
