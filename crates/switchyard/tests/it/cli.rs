//! The binary: `check`, `version`, the embedded default with env-detected providers, JSON logs.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use http::Method;
use parking_lot::Mutex;

use crate::harness::*;

pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_switchyard"));
    // The gateway keeps its request log next to the working directory by default: give each
    // process its own, never the source tree.
    let cwd = std::env::temp_dir().join(format!(
        "switchyard-it-cwd-{}-{}",
        std::process::id(),
        free_port()
    ));
    std::fs::create_dir_all(&cwd).unwrap();
    c.current_dir(cwd);
    for var in [
        "SWITCHYARD_CONFIG",
        "SWITCHYARD_MASTER_KEY",
        "SWITCHYARD_LOG",
        "SWITCHYARD_LOG_FORMAT",
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "GROQ_API_KEY",
        "MISTRAL_API_KEY",
        "DEEPSEEK_API_KEY",
        "TOGETHER_API_KEY",
        "FIREWORKS_API_KEY",
        "OPENROUTER_API_KEY",
        "XAI_API_KEY",
        "VLLM_API_KEY",
        "AZURE_OPENAI_API_KEY",
        "AZURE_OPENAI_ENDPOINT",
        "OLLAMA_HOST",
    ] {
        c.env_remove(var);
    }
    c
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn write_temp(name: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "switchyard-it-{}-{}",
        std::process::id(),
        free_port()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::File::create(&path)
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    path
}

/// A gateway child process whose stdout lines are collected.
pub struct Proc {
    pub child: Child,
    pub url: String,
    pub lines: Arc<Mutex<Vec<String>>>,
}

impl Proc {
    pub async fn spawn(mut cmd: Command, port: u16) -> Self {
        cmd.stdout(Stdio::piped()).stderr(Stdio::inherit());
        let mut child = cmd.spawn().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stdout = child.stdout.take().unwrap();
        let sink = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                sink.lock().push(line);
            }
        });
        let url = format!("http://127.0.0.1:{port}");
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Self { child, url, lines };
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("gateway exited early: {status}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("gateway did not start listening");
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(ok.success());
    }

    pub async fn wait_exit(&mut self, within: Duration) -> std::process::ExitStatus {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "gateway did not exit within {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn version_and_help() {
    let out = bin().arg("version").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("switchyard "));
    let out = bin().arg("help").output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("switchyard check --config FILE"));
    let out = bin().arg("frobnicate").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn check_accepts_a_valid_config_without_printing_secrets() {
    let path = write_temp(
        "ok.yaml",
        "auth:\n  master_key: ${MY_MASTER}\nproviders:\n  openai:\n    type: openai\n    api_key: ${MY_OPENAI}\n    headers:\n      X-Secret-Header: hdr-secret-value\nmodels:\n  chat:\n    deployments:\n      - provider: openai\n        model: gpt-4o-mini\n",
    );
    let out = bin()
        .args(["check", "--config"])
        .arg(&path)
        .env("MY_MASTER", "master-secret-value")
        .env("MY_OPENAI", "sk-openai-secret-value")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains("is valid") && stdout.contains("chat -> openai/gpt-4o-mini"),
        "{stdout}"
    );
    for secret in [
        "master-secret-value",
        "sk-openai-secret-value",
        "hdr-secret-value",
    ] {
        assert!(
            !stdout.contains(secret) && !stderr.contains(secret),
            "{secret} leaked"
        );
    }
}

#[test]
fn check_names_the_bad_key_and_line() {
    let cases = [
        ("server:\n  listen: \"127.0.0.1:4000\"\n  bogus: 1\n", &["bogus", "line 3"][..]),
        ("providers:\n  p:\n    type: openai\nmodels:\n  m:\n    deployments:\n      - provider: q\n        model: x\n", &["models.m.deployments[0].provider", "line 7", "unknown provider `q`"][..]),
        ("server:\n  timeouts:\n    total: forever\n", &["server.timeouts.total", "line 3"][..]),
        ("providers:\n  p:\n    type: openai\n    api_key: ${SURELY_UNSET_VAR_1}\n", &["SURELY_UNSET_VAR_1", "line 4"][..]),
    ];
    for (text, needles) in cases {
        let path = write_temp("bad.yaml", text);
        let out = bin()
            .args(["check", "--config"])
            .arg(&path)
            .env("OTHER_SECRET", "do-not-print")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{text}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        for n in needles {
            assert!(stderr.contains(n), "missing {n:?} in: {stderr}");
        }
        assert!(!stderr.contains("do-not-print"));
    }
    let out = bin()
        .args(["check", "--config", "/nonexistent/switchyard.yaml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read config file"));
}

#[tokio::test]
async fn embedded_default_serves_demo_and_env_providers_with_json_logs() {
    let mock = keyed_mock().await;
    let port = free_port();
    let mut cmd = bin();
    cmd.args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env("OPENAI_API_KEY", UPSTREAM_KEY)
        .env("OPENAI_BASE_URL", format!("{mock}/v1"))
        .env("SWITCHYARD_LOG_FORMAT", "json");
    let gw = Proc::spawn(cmd, port).await;

    // The built-in mock behind `demo`, no network and no config.
    let r = send(
        Method::POST,
        &format!("{}/v1/chat/completions", gw.url),
        &[("x-request-id", "it-req-42")],
        chat_body("demo", ""),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["model"], "demo");
    let r = post(
        &format!("{}/v1/embeddings", gw.url),
        r#"{"model":"demo-embed","input":"hello"}"#,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    // OPENAI_API_KEY + OPENAI_BASE_URL added the `openai` provider.
    let r = post(
        &format!("{}/v1/chat/completions", gw.url),
        &chat_body("openai/mock-gpt", ""),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-switchyard-provider"), Some("openai"));
    let r = get(&format!("{}/v1/models", gw.url), &[]).await;
    let ids: Vec<String> = r.json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect();
    assert!(ids.contains(&"demo".to_owned()));

    // A client that gives up mid-request is still logged, as cancelled.
    let slow = tokio::spawn({
        let url = format!("{}/v1/chat/completions", gw.url);
        async move {
            let body = chat_body("openai/mock-gpt", r#""mock":{"latency_ms":3000}"#);
            let _ = tokio::time::timeout(
                Duration::from_millis(300),
                send(
                    Method::POST,
                    &url,
                    &[("x-request-id", "it-req-cancel")],
                    body,
                ),
            )
            .await;
        }
    });
    slow.await.unwrap();

    // JSON log lines carry the request id and never a secret.
    let mut found = false;
    for _ in 0..50 {
        let lines = gw.lines.lock().clone();
        for l in &lines {
            assert!(!l.contains(UPSTREAM_KEY), "secret in log: {l}");
            let v: serde_json::Value =
                serde_json::from_str(l).unwrap_or_else(|_| panic!("not a JSON log line: {l}"));
            if v["request_id"] == "it-req-42" && v["status"] == 200 {
                assert_eq!(v["provider"], "mock");
                assert_eq!(v["model"], "demo");
                found = true;
            }
        }
        let cancelled = lines.iter().any(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap_or_default();
            v["request_id"] == "it-req-cancel"
                && v["outcome"] == "client_cancelled"
                && v["status"] == 499
        });
        if found && cancelled {
            break;
        }
        found = false;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        found,
        "no request log line with the request id: {:?}",
        gw.lines.lock()
    );
}

#[tokio::test]
async fn serve_refuses_a_public_address_without_keys() {
    let out = bin()
        .args(["serve", "--listen", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("without any API key"));
}

#[test]
fn the_example_config_is_valid() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/switchyard.yaml");
    let out = bin()
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for provider in [
        "openai",
        "azure-eu",
        "groq",
        "mistral",
        "deepseek",
        "together",
        "fireworks",
        "openrouter",
        "xai",
        "vllm",
        "ollama",
    ] {
        assert!(
            stdout.contains(&format!("  {provider} (")),
            "{provider} missing from {stdout}"
        );
    }
}
