//! `cargo xtask bench`: the gateway's overhead, measured against the mock provider with
//! nginx as a reference proxy, in one run on one machine.
//!
//! Why one run: latency on a shared two-core machine moves with whatever else the machine is
//! doing, so numbers taken on different days (or in different processes) are not comparable.
//! Here the mock is measured directly, through the gateway and through nginx one right after
//! the other, and the report gives the differences.
//!
//! The flow: build (unless `--no-build`), start the mock, the gateway and nginx (each a
//! [`procs::Proc`] that is killed when dropped, on every exit path), pre-flight each target
//! with one request of each kind, run each scenario against each target in turn, then render
//! the report as Markdown (stdout and `bench-out/latest.md`) and JSON (`bench-out/latest.json`).

mod load;
mod procs;
#[cfg(test)]
mod standin;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use http::Uri;
use serde::Serialize;

use load::{ErrorCounts, HttpClient, Job, LatencyStats, Phase, Samples};
use procs::{Proc, RssSampler, TempDir};

/// The benchmark's settings, from the command line.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Options {
    /// Open-loop request rate, per second.
    pub(crate) rate: u32,
    /// Measured time per run.
    pub(crate) duration: Duration,
    /// Unrecorded time before each run's measured phase: fills connection pools and lets the
    /// processes reach their steady state.
    pub(crate) warmup: Duration,
    /// Closed-loop workers.
    pub(crate) concurrency: usize,
    /// Whether to build the release binaries first.
    pub(crate) build: bool,
    /// Whether `--quick` shortened the runs (recorded in the report).
    pub(crate) quick: bool,
    /// Each scenario's measured time is split into this many rounds that cycle through the
    /// targets (direct, gateway, nginx, direct, ...), so a burst of noise on the shared machine
    /// lands on every target alike instead of on whichever ran at that moment.
    pub(crate) rounds: u32,
    /// Pairs of [`LOG_SLICE`] slices in which the gateways with and without the request log
    /// alternate, to measure what the log costs (see [`measure_request_log`]).
    pub(crate) log_pairs: u32,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            rate: 1000,
            duration: Duration::from_secs(10),
            warmup: Duration::from_secs(2),
            concurrency: 64,
            build: true,
            quick: false,
            rounds: 5,
            log_pairs: 30,
        }
    }
}

/// What the gateway must achieve. The thresholds live here so the report and the code agree.
const MAX_ADDED_P99_US: i64 = 1_000;
const MIN_THROUGHPUT_VS_NGINX: f64 = 0.80;
/// Issue 7: logging every request may add under 5% to p99 latency...
const MAX_REQUEST_LOG_P99_INCREASE: f64 = 0.05;
/// ...and under 10% to the gateway's CPU, at the fixed rate.
const MAX_REQUEST_LOG_CPU_INCREASE: f64 = 0.10;
/// 50 MB in bytes (decimal megabytes, the stricter reading of "MB").
const MAX_PEAK_RSS_BYTES: u64 = 50_000_000;

/// One slice of the request log comparison: short, so that the shared machine's slow swings
/// in speed (other tenants, frequency) fall on both gateways alike.
const LOG_SLICE: Duration = Duration::from_secs(1);

/// Pause between runs so one run's stragglers and closing connections are not billed to
/// the next.
const SETTLE: Duration = Duration::from_millis(250);

/// One of the three ways the mock is reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Target {
    /// The mock itself: the baseline.
    Direct,
    /// Switchyard in front of the mock: what is being measured.
    Gateway,
    /// The same gateway with its request log switched off: the difference is what logging
    /// every request costs.
    GatewayNoLog,
    /// nginx in front of the mock: what a tuned generic reverse proxy costs, for scale.
    Nginx,
}

impl Target {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Target::Direct => "direct",
            Target::Gateway => "gateway",
            Target::GatewayNoLog => "gateway-nolog",
            Target::Nginx => "nginx",
        }
    }

    /// The table label, saying what the client talks to.
    fn label(self) -> &'static str {
        match self {
            Target::Direct => "direct (mock)",
            Target::Gateway => "gateway → mock",
            Target::GatewayNoLog => "gateway, request log off → mock",
            Target::Nginx => "nginx → mock",
        }
    }

    /// The gateway routes its `bench` alias to the mock's model; the others pass the model
    /// name through untouched, so they must name the mock's model themselves.
    fn model(self) -> &'static str {
        match self {
            Target::Gateway | Target::GatewayNoLog => "bench",
            Target::Direct | Target::Nginx => "mock-gpt",
        }
    }
}

/// The chat completion request every scenario sends. Streams ask for usage, as most real
/// clients do, which makes the upstream add a final usage event the gateway must relay.
pub(crate) fn chat_body(model: &str, stream: bool) -> Bytes {
    let stream = if stream {
        r#","stream":true,"stream_options":{"include_usage":true}"#
    } else {
        ""
    };
    Bytes::from(format!(
        r#"{{"model":"{model}","messages":[{{"role":"user","content":"Say hello in five words."}}]{stream}}}"#
    ))
}

/// The scenarios, run in this order, each against every target before the next starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scenario {
    /// a. Open loop at the fixed rate, non-streaming.
    Fixed,
    /// b. Open loop at the fixed rate, streaming.
    Stream,
    /// c. Closed loop at the fixed concurrency, non-streaming.
    Throughput,
}

impl Scenario {
    const ALL: [Scenario; 3] = [Scenario::Fixed, Scenario::Stream, Scenario::Throughput];

    fn describe(self, opts: &Options) -> String {
        match self {
            Scenario::Fixed => format!("fixed rate {} req/s, non-streaming", opts.rate),
            Scenario::Stream => format!("fixed rate {} req/s, streaming", opts.rate),
            Scenario::Throughput => format!("closed loop, {} workers", opts.concurrency),
        }
    }
}

/// One scenario's result against one target.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct RunResult {
    /// Successful requests recorded in the measured phase.
    pub(crate) ok: usize,
    pub(crate) errors: ErrorCounts,
    /// Time to the end of the response (the whole stream, for streams).
    pub(crate) latency: Option<LatencyStats>,
    /// Time to the first `data:` event (streams only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) ttft: Option<LatencyStats>,
    /// Successful requests per second (closed loop only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) throughput_rps: Option<f64>,
    /// The proxy's CPU time (user + system) per successful request, in µs (proxies only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) cpu_us_per_req: Option<f64>,
    /// That CPU time by thread name, in µs per successful request (fixed-rate runs of the
    /// gateways only): where the request log's cost lands.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) cpu_by_thread: Option<BTreeMap<String, f64>>,
    /// CPU µs per successful request in each slice, in order (request log comparison only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) cpu_per_slice: Vec<f64>,
}

impl RunResult {
    pub(crate) fn from_samples(mut s: Samples, measured: Duration, closed_loop: bool) -> Self {
        let ok = s.total_us.len();
        let secs = measured.as_secs_f64();
        Self {
            ok,
            latency: LatencyStats::from_samples(&mut s.total_us),
            ttft: LatencyStats::from_samples(&mut s.ttft_us),
            throughput_rps: (closed_loop && secs > 0.0).then(|| ok as f64 / secs),
            cpu_us_per_req: None,
            cpu_by_thread: None,
            cpu_per_slice: Vec::new(),
            errors: s.errors,
        }
    }
}

/// Everything measured for one target.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct TargetResult {
    pub(crate) target: Target,
    /// Why the target was not measured, or stopped being measured.
    pub(crate) skipped: Option<String>,
    pub(crate) fixed: Option<RunResult>,
    pub(crate) stream: Option<RunResult>,
    pub(crate) throughput: Option<RunResult>,
    /// The two gateways only: the request log comparison's slices at the fixed rate,
    /// non-streaming, pooled ([`measure_request_log`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) log_slices: Option<RunResult>,
}

impl TargetResult {
    pub(crate) fn new(target: Target) -> Self {
        Self {
            target,
            skipped: None,
            fixed: None,
            stream: None,
            throughput: None,
            log_slices: None,
        }
    }

    fn skipped(target: Target, reason: String) -> Self {
        Self {
            skipped: Some(reason),
            ..Self::new(target)
        }
    }

    fn slot(&mut self, scenario: Scenario) -> &mut Option<RunResult> {
        match scenario {
            Scenario::Fixed => &mut self.fixed,
            Scenario::Stream => &mut self.stream,
            Scenario::Throughput => &mut self.throughput,
        }
    }
}

/// The gateway's memory, in kB as `/proc` reports them (kibibytes).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub(crate) struct Memory {
    /// `VmHWM`: the kernel's own peak resident set, read just before the gateway is stopped.
    pub(crate) vm_hwm_kb: Option<u64>,
    /// The largest `VmRSS` seen sampling every 100 ms: a cross-check that should not
    /// exceed `VmHWM`.
    pub(crate) max_sampled_rss_kb: Option<u64>,
    /// `VmRSS` once the gateway answered `/health`, before any load.
    pub(crate) startup_rss_kb: Option<u64>,
}

impl Memory {
    /// The peak to judge: the kernel's high-water mark, else the sampled maximum.
    pub(crate) fn peak_kb(&self) -> Option<u64> {
        self.vm_hwm_kb.or(self.max_sampled_rss_kb)
    }
}

/// Latency a proxy adds over the direct path, in microseconds (negative when the proxied
/// percentile happened to be lower, which is noise).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub(crate) struct Added {
    pub(crate) fixed_p50_us: Option<i64>,
    pub(crate) fixed_p99_us: Option<i64>,
    pub(crate) ttft_p50_us: Option<i64>,
    pub(crate) ttft_p99_us: Option<i64>,
    pub(crate) stream_p50_us: Option<i64>,
    pub(crate) stream_p99_us: Option<i64>,
}

impl Added {
    pub(crate) fn between(proxy: &TargetResult, direct: &TargetResult) -> Self {
        fn stats(run: &Option<RunResult>, ttft: bool) -> Option<LatencyStats> {
            let run = run.as_ref()?;
            if ttft {
                run.ttft
            } else {
                run.latency
            }
        }
        let diff = |a: Option<LatencyStats>, b: Option<LatencyStats>, p99: bool| {
            let (a, b) = (a?, b?);
            let (x, y) = if p99 {
                (a.p99_us, b.p99_us)
            } else {
                (a.p50_us, b.p50_us)
            };
            Some(i64::from(x) - i64::from(y))
        };
        let fixed = (stats(&proxy.fixed, false), stats(&direct.fixed, false));
        let ttft = (stats(&proxy.stream, true), stats(&direct.stream, true));
        let full = (stats(&proxy.stream, false), stats(&direct.stream, false));
        Self {
            fixed_p50_us: diff(fixed.0, fixed.1, false),
            fixed_p99_us: diff(fixed.0, fixed.1, true),
            ttft_p50_us: diff(ttft.0, ttft.1, false),
            ttft_p99_us: diff(ttft.0, ttft.1, true),
            stream_p50_us: diff(full.0, full.1, false),
            stream_p99_us: diff(full.0, full.1, true),
        }
    }
}

/// The gateway set against the direct path and against nginx.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub(crate) struct Comparison {
    /// Gateway minus direct.
    pub(crate) gateway_added: Added,
    /// nginx minus direct, for scale.
    pub(crate) nginx_added: Added,
    pub(crate) throughput_gateway_over_direct: Option<f64>,
    pub(crate) throughput_gateway_over_nginx: Option<f64>,
    pub(crate) throughput_nginx_over_direct: Option<f64>,
    /// The request log comparison's p99 with the log on over the same with it off, minus one.
    pub(crate) request_log_p99_increase: Option<f64>,
    /// The request log comparison's CPU per request with the log on over off, minus one.
    pub(crate) request_log_cpu_increase: Option<f64>,
}

impl Comparison {
    pub(crate) fn from_targets(targets: &[TargetResult]) -> Self {
        let find = |t: Target| targets.iter().find(|r| r.target == t);
        let (direct, gateway, nginx) = (
            find(Target::Direct),
            find(Target::Gateway),
            find(Target::Nginx),
        );
        let rps = |r: Option<&TargetResult>| r?.throughput.as_ref()?.throughput_rps;
        let nolog = find(Target::GatewayNoLog);
        let p99 = |r: Option<&TargetResult>| {
            Some(f64::from(r?.log_slices.as_ref()?.latency.as_ref()?.p99_us))
        };
        let cpu = |r: Option<&TargetResult>| r?.log_slices.as_ref()?.cpu_us_per_req;
        let ratio = |a: Option<f64>, b: Option<f64>| {
            let (a, b) = (a?, b?);
            (b > 0.0).then(|| a / b)
        };
        let added = |proxy: Option<&TargetResult>| match (proxy, direct) {
            (Some(p), Some(d)) => Added::between(p, d),
            _ => Added::default(),
        };
        Self {
            gateway_added: added(gateway),
            nginx_added: added(nginx),
            throughput_gateway_over_direct: ratio(rps(gateway), rps(direct)),
            throughput_gateway_over_nginx: ratio(rps(gateway), rps(nginx)),
            throughput_nginx_over_direct: ratio(rps(nginx), rps(direct)),
            request_log_p99_increase: ratio(p99(gateway), p99(nolog)).map(|r| r - 1.0),
            request_log_cpu_increase: ratio(cpu(gateway), cpu(nolog)).map(|r| r - 1.0),
        }
    }
}

/// Whether a goal was met.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub(crate) enum Verdict {
    Pass,
    Fail,
    /// The number could not be measured in this run (e.g. nginx is not installed).
    NotMeasured,
}

impl Verdict {
    fn show(self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Fail => "FAIL",
            Verdict::NotMeasured => "n/a",
        }
    }
}

/// One of the gateway's performance goals and how this run did against it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct Goal {
    pub(crate) name: String,
    pub(crate) measured: String,
    pub(crate) threshold: String,
    pub(crate) verdict: Verdict,
    /// Why the verdict is not simply the comparison (errors, missing data).
    pub(crate) note: Option<String>,
}

/// Judges the run against the goals. A run in which the gateway returned errors fails the
/// goal it was measured for: errors are kept out of the percentiles, so without this a
/// gateway that failed fast could look faster.
pub(crate) fn judge(
    opts: &Options,
    targets: &[TargetResult],
    cmp: &Comparison,
    memory: &Memory,
) -> Vec<Goal> {
    let gateway = targets.iter().find(|r| r.target == Target::Gateway);
    let gateway_errors = |s: Scenario| -> Option<u64> {
        let r = gateway?;
        let run = match s {
            Scenario::Fixed => r.fixed.as_ref(),
            Scenario::Stream => r.stream.as_ref(),
            Scenario::Throughput => r.throughput.as_ref(),
        }?;
        Some(run.errors.total())
    };
    let added_goal = |name: String, added: Option<i64>, s: Scenario| {
        let errors = gateway_errors(s).unwrap_or(0);
        let (verdict, note) = match added {
            None => (
                Verdict::NotMeasured,
                Some(String::from("gateway or direct not measured")),
            ),
            Some(_) if errors > 0 => (Verdict::Fail, Some(format!("gateway had {errors} errors"))),
            Some(us) if us < MAX_ADDED_P99_US => (Verdict::Pass, None),
            Some(_) => (Verdict::Fail, None),
        };
        Goal {
            name,
            measured: added.map_or_else(|| String::from("-"), |us| format!("{} ms", delta_ms(us))),
            threshold: format!("< {} ms", MAX_ADDED_P99_US / 1000),
            verdict,
            note,
        }
    };

    let mut goals = vec![
        added_goal(
            format!("Added p99 latency, non-streaming, {} req/s", opts.rate),
            cmp.gateway_added.fixed_p99_us,
            Scenario::Fixed,
        ),
        added_goal(
            format!("Added p99 TTFT, streaming, {} req/s", opts.rate),
            cmp.gateway_added.ttft_p99_us,
            Scenario::Stream,
        ),
    ];

    let ratio = cmp.throughput_gateway_over_nginx;
    let errors = gateway_errors(Scenario::Throughput).unwrap_or(0);
    let nginx_missing = targets
        .iter()
        .find(|r| r.target == Target::Nginx)
        .and_then(|r| r.skipped.clone());
    let (verdict, note) = match ratio {
        None => (
            Verdict::NotMeasured,
            Some(nginx_missing.map_or_else(
                || String::from("gateway or nginx throughput not measured"),
                |why| format!("nginx not measured: {}", first_line(&why)),
            )),
        ),
        Some(_) if errors > 0 => (Verdict::Fail, Some(format!("gateway had {errors} errors"))),
        Some(r) if r >= MIN_THROUGHPUT_VS_NGINX => (Verdict::Pass, None),
        Some(_) => (Verdict::Fail, None),
    };
    goals.push(Goal {
        name: format!(
            "Gateway throughput vs nginx, concurrency {}",
            opts.concurrency
        ),
        measured: ratio.map_or_else(|| String::from("-"), percent),
        threshold: format!(">= {}", percent(MIN_THROUGHPUT_VS_NGINX)),
        verdict,
        note,
    });

    let peak = memory.peak_kb();
    let (verdict, note) = match peak {
        None => (
            Verdict::NotMeasured,
            Some(String::from("gateway not measured")),
        ),
        Some(kb) if kb.saturating_mul(1024) < MAX_PEAK_RSS_BYTES => (Verdict::Pass, None),
        Some(_) => (Verdict::Fail, None),
    };
    let note = note.or_else(|| {
        (memory.vm_hwm_kb.is_none() && peak.is_some())
            .then(|| String::from("VmHWM unavailable; sampled VmRSS used"))
    });
    goals.push(Goal {
        name: String::from("Gateway peak RSS (VmHWM)"),
        measured: peak.map_or_else(|| String::from("-"), mb),
        threshold: format!("< {} MB", MAX_PEAK_RSS_BYTES / 1_000_000),
        verdict,
        note,
    });
    for (name, increase, max) in [
        (
            format!(
                "Request log on vs off: p99 latency, non-streaming, {} req/s",
                opts.rate
            ),
            cmp.request_log_p99_increase,
            MAX_REQUEST_LOG_P99_INCREASE,
        ),
        (
            format!(
                "Request log on vs off: gateway CPU per request, {} req/s",
                opts.rate
            ),
            cmp.request_log_cpu_increase,
            MAX_REQUEST_LOG_CPU_INCREASE,
        ),
    ] {
        let (verdict, note) = match increase {
            None => (
                Verdict::NotMeasured,
                Some(String::from("a gateway was not measured")),
            ),
            Some(i) if i < max => (Verdict::Pass, None),
            Some(_) => (Verdict::Fail, None),
        };
        goals.push(Goal {
            name,
            measured: increase.map_or_else(|| String::from("-"), |i| format!("{:+.1}%", i * 100.0)),
            threshold: format!("< +{:.0}%", max * 100.0),
            verdict,
            note,
        });
    }

    goals
}

/// Where and on what the run happened.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct Machine {
    /// CPUs available to this process, as `nproc` counts them.
    pub(crate) nproc: usize,
    pub(crate) cpu_model: String,
}

/// The run's settings, as recorded in the report.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct Settings {
    pub(crate) rate: u32,
    pub(crate) concurrency: usize,
    pub(crate) duration_s: f64,
    pub(crate) warmup_s: f64,
    pub(crate) rounds: u32,
    pub(crate) quick: bool,
    pub(crate) nginx_worker_processes: &'static str,
}

impl Settings {
    fn new(opts: &Options) -> Self {
        Self {
            rate: opts.rate,
            concurrency: opts.concurrency,
            duration_s: opts.duration.as_secs_f64(),
            warmup_s: opts.warmup.as_secs_f64(),
            rounds: opts.rounds.max(1),
            quick: opts.quick,
            nginx_worker_processes: procs::NGINX_WORKERS,
        }
    }
}

/// The whole report; rendered as Markdown and serialised as JSON.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct Report {
    pub(crate) date_utc: String,
    /// `git rev-parse --short HEAD`, with `-dirty` when tracked files have changes.
    pub(crate) commit: Option<String>,
    pub(crate) machine: Machine,
    pub(crate) settings: Settings,
    pub(crate) nginx_version: Option<String>,
    pub(crate) targets: Vec<TargetResult>,
    pub(crate) gateway_memory: Memory,
    pub(crate) comparison: Comparison,
    pub(crate) goals: Vec<Goal>,
}

impl Report {
    pub(crate) fn target(&self, t: Target) -> Option<&TargetResult> {
        self.targets.iter().find(|r| r.target == t)
    }
}

/// Runs the benchmark: builds, measures, reports. Fails (after writing the report) if the
/// gateway could not be measured, so a broken gateway cannot pass as a skipped one.
pub(crate) fn run(opts: &Options) -> Result<()> {
    let root = workspace_root()?;
    if opts.build {
        build(&root)?;
    }
    let bins = Binaries::locate(&root)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    let measured = runtime.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("installing the SIGTERM handler")?;
        // Dropping `measure` drops the process guards, which stop the children: an
        // interrupted run (Ctrl-C, or a CI job's SIGTERM) leaves nothing behind.
        tokio::select! {
            m = measure(opts, &bins) => m,
            _ = tokio::signal::ctrl_c() => bail!("interrupted (SIGINT)"),
            _ = term.recv() => bail!("terminated (SIGTERM)"),
        }
    })?;
    drop(runtime);

    let comparison = Comparison::from_targets(&measured.targets);
    let goals = judge(opts, &measured.targets, &comparison, &measured.memory);
    let report = Report {
        date_utc: utc_date_time(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
        ),
        commit: git_commit(&root),
        machine: machine(),
        settings: Settings::new(opts),
        nginx_version: measured.nginx_version,
        targets: measured.targets,
        gateway_memory: measured.memory,
        comparison,
        goals,
    };

    let markdown = render_markdown(&report);
    let json = serde_json::to_string_pretty(&report).context("serialising the report")?;
    let out = root.join("bench-out");
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let (md_path, json_path) = (out.join("latest.md"), out.join("latest.json"));
    std::fs::write(&md_path, &markdown)
        .with_context(|| format!("writing {}", md_path.display()))?;
    std::fs::write(&json_path, json + "\n")
        .with_context(|| format!("writing {}", json_path.display()))?;
    print!("{markdown}");
    eprintln!(
        "bench: report written to {} and {}",
        md_path.display(),
        json_path.display()
    );

    if let Some(why) = report
        .target(Target::Gateway)
        .and_then(|g| g.skipped.as_ref())
    {
        bail!("the gateway was not (fully) measured: {why}");
    }
    Ok(())
}

/// The workspace root: xtask lives in `<root>/crates/xtask`.
fn workspace_root() -> Result<PathBuf> {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .map(Path::to_path_buf)
        .context("xtask's manifest directory has no grandparent")
}

/// Cargo's target directory, honouring `CARGO_TARGET_DIR` as cargo does (relative to the
/// current directory).
fn target_dir(root: &Path) -> Result<PathBuf> {
    match std::env::var_os("CARGO_TARGET_DIR").filter(|v| !v.is_empty()) {
        Some(dir) => Ok(std::env::current_dir()?.join(dir)),
        None => Ok(root.join("target")),
    }
}

fn build(root: &Path) -> Result<()> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    eprintln!("bench: cargo build --release -p switchyard -p switchyard-mock");
    // `--manifest-path` instead of a working directory, so a relative `CARGO_TARGET_DIR`
    // resolves the same way here as in `target_dir`. Cargo's stdout goes to stderr to keep
    // stdout for the report.
    let status = Command::new(cargo)
        .args([
            "build",
            "--release",
            "-p",
            "switchyard",
            "-p",
            "switchyard-mock",
        ])
        .arg("--manifest-path")
        .arg(root.join("Cargo.toml"))
        .stdin(Stdio::null())
        .stdout(Stdio::from(std::io::stderr()))
        .status()
        .context("running cargo build")?;
    if !status.success() {
        bail!(
            "cargo build --release -p switchyard -p switchyard-mock failed ({status}); \
             fix the build, or pass --no-build to benchmark the binaries already built"
        );
    }
    Ok(())
}

/// The two release binaries under test.
struct Binaries {
    gateway: PathBuf,
    mock: PathBuf,
}

impl Binaries {
    fn locate(root: &Path) -> Result<Self> {
        let release = target_dir(root)?.join("release");
        Ok(Self {
            gateway: release.join("switchyard"),
            mock: release.join("switchyard-mock"),
        })
    }
}

/// What `measure` hands back for the report.
struct Measured {
    targets: Vec<TargetResult>,
    memory: Memory,
    nginx_version: Option<String>,
}

/// A target that is up and being measured.
struct Live {
    target: Target,
    /// Non-streaming and streaming requests; both share the target's own connection pool.
    plain: Arc<Job>,
    stream: Arc<Job>,
    /// The proxy's process (`None` for the direct target: the mock is owned by `measure`).
    proc: Option<Proc>,
    result: TargetResult,
}

impl Live {
    fn new(
        target: Target,
        addr: SocketAddr,
        client: HttpClient,
        proc: Option<Proc>,
    ) -> Result<Self> {
        let uri: Uri = format!("http://{addr}/v1/chat/completions").parse()?;
        let job = |stream: bool| {
            Arc::new(Job {
                client: client.clone(),
                uri: uri.clone(),
                body: chat_body(target.model(), stream),
                stream,
            })
        };
        Ok(Self {
            target,
            plain: job(false),
            stream: job(true),
            proc,
            result: TargetResult::new(target),
        })
    }

    /// One request of each kind; the reason for the first failure, if any.
    async fn preflight(&self) -> Result<(), String> {
        load::probe(&self.plain)
            .await
            .map_err(|e| format!("non-streaming pre-flight request failed: {e}"))?;
        load::probe(&self.stream)
            .await
            .map_err(|e| format!("streaming pre-flight request failed: {e}"))
    }

    /// Why the target's process is gone, if it is.
    fn died(&mut self) -> Option<String> {
        let proc = self.proc.as_mut()?;
        let status = proc.exited()?;
        Some(format!(
            "{} exited during the benchmark ({status}); its output:\n{}",
            self.target.name(),
            proc.log_tail()
        ))
    }
}

/// Starts everything, runs every scenario against every target, and stops everything.
async fn measure(opts: &Options, bins: &Binaries) -> Result<Measured> {
    if !bins.mock.is_file() {
        bail!(
            "the mock binary {} does not exist; build it with \
             `cargo build --release -p switchyard-mock` (or run without --no-build)",
            bins.mock.display()
        );
    }
    let tmp = TempDir::new()?;
    let (mut mock, mock_addr) = procs::start_mock(&bins.mock, tmp.path()).await?;
    eprintln!("bench: mock listening on {mock_addr}");

    let mut live = Vec::new();
    let mut skipped = Vec::new();
    live.push(Live::new(
        Target::Direct,
        mock_addr,
        load::http_client(),
        None,
    )?);

    for (target, request_log) in [(Target::Gateway, true), (Target::GatewayNoLog, false)] {
        let client = load::http_client();
        match procs::start_gateway(&bins.gateway, tmp.path(), mock_addr, &client, request_log).await
        {
            Ok((proc, addr)) => {
                eprintln!("bench: {} listening on {addr}", target.name());
                live.push(Live::new(target, addr, client, Some(proc))?);
            }
            Err(e) => {
                let why = format!("could not start {}: {e:#}", bins.gateway.display());
                eprintln!("bench: {} skipped: {why}", target.name());
                skipped.push(TargetResult::skipped(target, why));
            }
        }
    }

    let mut nginx_version = None;
    match procs::find_nginx() {
        None => {
            let why = String::from(
                "no nginx binary at /usr/sbin/nginx or on PATH \
                 (install the nginx-light or nginx package for the reference)",
            );
            eprintln!("bench: nginx comparison skipped: {why}");
            skipped.push(TargetResult::skipped(Target::Nginx, why));
        }
        Some(bin) => {
            nginx_version = nginx_version_of(&bin);
            let client = load::http_client();
            match procs::start_nginx(&bin, tmp.path(), mock_addr, &client).await {
                Ok((proc, addr)) => {
                    eprintln!("bench: nginx listening on {addr}");
                    live.push(Live::new(Target::Nginx, addr, client, Some(proc))?);
                }
                Err(e) => {
                    let why = format!("could not start {}: {e:#}", bin.display());
                    eprintln!("bench: nginx comparison skipped: {why}");
                    skipped.push(TargetResult::skipped(Target::Nginx, why));
                }
            }
        }
    }

    // Pre-flight: one clear message beats a run full of identical errors.
    let mut ready = Vec::new();
    for target in live {
        match target.preflight().await {
            Ok(()) => ready.push(target),
            Err(why) if target.target == Target::Direct => {
                bail!(
                    "the mock does not answer correctly: {why}; its log:\n{}",
                    mock.log_tail()
                )
            }
            Err(why) => {
                eprintln!("bench: {} skipped: {why}", target.target.name());
                skipped.push(TargetResult::skipped(target.target, why));
            }
        }
    }
    let mut live = ready;

    let gateway_pid = live
        .iter()
        .find(|l| l.target == Target::Gateway)
        .and_then(|l| l.proc.as_ref())
        .map(Proc::pid);
    let mut memory = Memory {
        startup_rss_kb: gateway_pid.and_then(|pid| procs::proc_status_kb(pid, "VmRSS")),
        ..Memory::default()
    };
    let sampler = gateway_pid.map(RssSampler::start);

    let rounds = opts.rounds.max(1);
    let per_round = opts.duration / rounds;
    let measured = per_round * rounds;
    let total_runs = Scenario::ALL.len() * live.len() * rounds as usize;
    let mut run_no = 0;
    for scenario in Scenario::ALL {
        let mut merged: Vec<Option<load::Samples>> = live.iter().map(|_| None).collect();
        // CPU seconds each proxy spent in this scenario's measured rounds (warm-up included,
        // the same share for every target).
        let mut cpu: Vec<Option<f64>> = live.iter().map(|_| None).collect();
        let mut threads: Vec<BTreeMap<String, f64>> =
            live.iter().map(|_| BTreeMap::new()).collect();
        for round in 0..rounds {
            // The first round warms each target up fully; later rounds only refill the pool.
            let phase = Phase {
                warmup: if round == 0 {
                    opts.warmup
                } else {
                    opts.warmup.min(ROUND_WARMUP)
                },
                measure: per_round,
            };
            for (((slot, cpu), threads), target) in merged
                .iter_mut()
                .zip(cpu.iter_mut())
                .zip(threads.iter_mut())
                .zip(live.iter_mut())
            {
                if target.result.skipped.is_some() {
                    continue;
                }
                let pid = target.proc.as_ref().map(Proc::pid);
                let cpu_before = pid.and_then(procs::cpu_seconds);
                let by_thread = pid
                    .filter(|_| {
                        scenario == Scenario::Fixed
                            && matches!(target.target, Target::Gateway | Target::GatewayNoLog)
                    })
                    .and_then(procs::thread_cpu_seconds);
                run_no += 1;
                eprintln!(
                    "bench: [{run_no}/{total_runs}] {} via {}, round {}/{rounds} ({:.1} s + {:.1} s warm-up)",
                    scenario.describe(opts),
                    target.target.name(),
                    round + 1,
                    phase.measure.as_secs_f64(),
                    phase.warmup.as_secs_f64(),
                );
                let samples = match scenario {
                    Scenario::Fixed => {
                        load::open_loop(Arc::clone(&target.plain), opts.rate, phase).await
                    }
                    Scenario::Stream => {
                        load::open_loop(Arc::clone(&target.stream), opts.rate, phase).await
                    }
                    Scenario::Throughput => {
                        load::closed_loop(Arc::clone(&target.plain), opts.concurrency, phase).await
                    }
                };
                if let (Some(before), Some(after)) = (cpu_before, pid.and_then(procs::cpu_seconds))
                {
                    *cpu = Some(cpu.unwrap_or(0.0) + (after - before));
                }
                if let (Some(before), Some(after)) =
                    (by_thread, pid.and_then(procs::thread_cpu_seconds))
                {
                    add_thread_cpu(threads, &before, after);
                }
                match slot {
                    Some(all) => all.absorb(samples),
                    None => *slot = Some(samples),
                }
                if let Some(status) = mock.exited() {
                    bail!(
                        "the mock exited during the benchmark ({status}); its log:\n{}",
                        mock.log_tail()
                    );
                }
                if let Some(why) = target.died() {
                    eprintln!("bench: {}", first_line(&why));
                    target.result.skipped = Some(why);
                }
                tokio::time::sleep(SETTLE).await;
            }
        }
        for (((samples, cpu), threads), target) in merged
            .into_iter()
            .zip(cpu)
            .zip(threads)
            .zip(live.iter_mut())
        {
            let Some(samples) = samples else { continue };
            let mut result =
                RunResult::from_samples(samples, measured, scenario == Scenario::Throughput);
            result.cpu_us_per_req = cpu
                .filter(|_| result.ok > 0)
                .map(|secs| secs * 1e6 / result.ok as f64);
            if result.ok > 0 && !threads.is_empty() {
                let per_req = |secs: f64| secs * 1e6 / result.ok as f64;
                result.cpu_by_thread =
                    Some(threads.into_iter().map(|(n, s)| (n, per_req(s))).collect());
            }
            eprintln!(
                "bench:     {} via {}: {}",
                scenario_name(scenario),
                target.target.name(),
                summary_line(&result)
            );
            *target.result.slot(scenario) = Some(result);
        }
        // Right after scenario a, at the same rate: the log's cost in that steady state. After
        // the throughput scenario instead, a --quick run's first slice cost the logging
        // gateway half as much again as its next one.
        if scenario == Scenario::Fixed {
            measure_request_log(opts, &mut live).await;
        }
    }

    if let Some(pid) = gateway_pid {
        memory.vm_hwm_kb = procs::proc_status_kb(pid, "VmHWM");
    }
    memory.max_sampled_rss_kb = sampler.and_then(RssSampler::finish);

    // Consuming `live` stops the proxies; then the mock stops and the scratch files go,
    // in that order, so no proxy outlives its upstream.
    let mut targets: Vec<TargetResult> = live.into_iter().map(|l| l.result).collect();
    drop(mock);
    drop(tmp);
    targets.extend(skipped);
    targets.sort_by_key(|r| r.target as u8);
    Ok(Measured {
        targets,
        memory,
        nginx_version,
    })
}

/// What the request log costs: the gateways with and without it take turns at the fixed rate
/// (non-streaming) in [`LOG_SLICE`] slices, in the order on, off, off, on, on, off, ..., for
/// `opts.log_pairs` slices each.
///
/// The scenarios' rounds give each target seconds at a time; on a shared machine whose speed
/// swings by several percent from one second to the next, the CPU per request of two such
/// rounds differed by more than the log costs. Short alternating slices put both gateways
/// under the same swings, so the difference left is the log's. CPU comes from the scheduler's
/// nanosecond run time of every thread of the gateway, read around each slice (the process
/// total of `/proc/PID/stat` counts in 10 ms ticks, coarse for a slice).
async fn measure_request_log(opts: &Options, live: &mut [Live]) {
    let find = |t: Target| {
        live.iter()
            .position(|l| l.target == t && l.result.skipped.is_none() && l.proc.is_some())
    };
    let (Some(on), Some(off)) = (find(Target::Gateway), find(Target::GatewayNoLog)) else {
        return;
    };
    if opts.log_pairs == 0 {
        return;
    }
    // Both pools filled and both gateways warm before the first slice counts.
    for i in [on, off] {
        let warm = Phase {
            warmup: opts.warmup,
            measure: Duration::ZERO,
        };
        load::open_loop(Arc::clone(&live[i].plain), opts.rate, warm).await;
    }
    let mut merged: [Option<Samples>; 2] = [None, None];
    let mut threads: [BTreeMap<String, f64>; 2] = [BTreeMap::new(), BTreeMap::new()];
    let mut slices: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    let total = opts.log_pairs * 2;
    for pair in 0..opts.log_pairs {
        let order = if pair % 2 == 0 { [0, 1] } else { [1, 0] };
        for side in order {
            let target = &mut live[[on, off][side]];
            let Some(pid) = target.proc.as_ref().map(Proc::pid) else {
                return;
            };
            eprintln!(
                "bench: [request log {}/{total}] {} req/s via {}",
                pair * 2 + 1 + u32::from(order[1] == side),
                opts.rate,
                target.target.name()
            );
            let before = procs::thread_cpu_seconds(pid);
            let phase = Phase {
                warmup: Duration::ZERO,
                measure: LOG_SLICE,
            };
            let samples = load::open_loop(Arc::clone(&target.plain), opts.rate, phase).await;
            let after = procs::thread_cpu_seconds(pid);
            let ok = samples.total_us.len();
            if let (Some(before), Some(after)) = (before, after) {
                let spent = add_thread_cpu(&mut threads[side], &before, after);
                if ok > 0 {
                    slices[side].push(spent * 1e6 / ok as f64);
                }
            }
            match &mut merged[side] {
                Some(all) => all.absorb(samples),
                slot => *slot = Some(samples),
            }
            if let Some(why) = target.died() {
                eprintln!("bench: {}", first_line(&why));
                target.result.skipped = Some(why);
                return;
            }
        }
    }
    let measured = LOG_SLICE * opts.log_pairs;
    for (side, ((samples, threads), slices)) in
        merged.into_iter().zip(threads).zip(slices).enumerate()
    {
        let Some(samples) = samples else { continue };
        let mut result = RunResult::from_samples(samples, measured, false);
        if result.ok > 0 && !threads.is_empty() {
            let per_req = |secs: f64| secs * 1e6 / result.ok as f64;
            result.cpu_us_per_req = Some(per_req(threads.values().sum()));
            result.cpu_by_thread =
                Some(threads.into_iter().map(|(n, s)| (n, per_req(s))).collect());
        }
        result.cpu_per_slice = slices;
        let target = &mut live[[on, off][side]];
        eprintln!(
            "bench:     request log slices via {}: {}",
            target.target.name(),
            summary_line(&result)
        );
        target.result.log_slices = Some(result);
    }
}

/// Adds to `into` the CPU seconds each thread name spent between two readings of
/// [`procs::thread_cpu_seconds`]; returns their sum.
fn add_thread_cpu(
    into: &mut BTreeMap<String, f64>,
    before: &BTreeMap<String, f64>,
    after: BTreeMap<String, f64>,
) -> f64 {
    let mut total = 0.0;
    for (name, secs) in after {
        let spent = (secs - before.get(&name).copied().unwrap_or(0.0)).max(0.0);
        total += spent;
        *into.entry(name).or_insert(0.0) += spent;
    }
    total
}

/// Warm-up before rounds after the first: enough to refill a connection pool.
const ROUND_WARMUP: Duration = Duration::from_millis(300);

fn scenario_name(s: Scenario) -> &'static str {
    match s {
        Scenario::Fixed => "fixed rate",
        Scenario::Stream => "fixed rate, streaming",
        Scenario::Throughput => "throughput",
    }
}

/// One progress line for stderr.
/// Section d: the request log comparison's slices, and the scenario a rounds for reference.
fn render_request_log(r: &Report, out: &mut String) -> std::fmt::Result {
    let gateways = || {
        r.targets
            .iter()
            .filter(|t| matches!(t.target, Target::Gateway | Target::GatewayNoLog))
    };
    let pairs = gateways()
        .filter_map(|t| t.log_slices.as_ref())
        .map(|s| s.cpu_per_slice.len())
        .min()
        .unwrap_or(0);
    writeln!(
        out,
        "\n## d. Request log on vs off ({} req/s, non-streaming)\n",
        r.settings.rate
    )?;
    writeln!(
        out,
        "Two gateways, identical but for `request_log.enabled`, take turns in {pairs} slices of \
         {} s each (on, off, off, on, on, off, ...), so that the shared machine's swings in \
         speed fall on both alike. CPU is the scheduler's run time of all the gateway's \
         threads over the slices, per successful request. The goals above come from this \
         table.\n",
        LOG_SLICE.as_secs_f64()
    )?;
    writeln!(
        out,
        "| Target | OK | Errors | p50 | p99 | CPU µs / request |\n|---|---:|---:|---:|---:|---:|"
    )?;
    let dash = || String::from("-");
    for t in gateways() {
        let run = t.log_slices.as_ref();
        let l = run.and_then(|r| r.latency);
        writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            t.target.label(),
            run.map_or_else(dash, |r| r.ok.to_string()),
            run.map_or_else(dash, |r| r.errors.total().to_string()),
            l.map_or_else(dash, |l| ms(l.p50_us)),
            l.map_or_else(dash, |l| ms(l.p99_us)),
            run.and_then(|r| r.cpu_us_per_req)
                .map_or_else(dash, |c| format!("{c:.1}")),
        )?;
    }
    let slices = |t: Target| {
        r.target(t)
            .and_then(|t| t.log_slices.as_ref())
            .map(|s| s.cpu_per_slice.as_slice())
    };
    if let (Some(on), Some(off)) = (slices(Target::Gateway), slices(Target::GatewayNoLog)) {
        let mut ratios: Vec<f64> = on
            .iter()
            .zip(off)
            .filter(|(_, b)| **b > 0.0)
            .map(|(a, b)| a / b - 1.0)
            .collect();
        ratios.sort_by(f64::total_cmp);
        if let (Some(lo), Some(hi)) = (ratios.first(), ratios.last()) {
            let mid = ratios[ratios.len() / 2];
            writeln!(
                out,
                "\nCPU per request, log on vs off, slice pair by slice pair: lowest {:+.1}%, \
                 median {:+.1}%, highest {:+.1}%.",
                lo * 100.0,
                mid * 100.0,
                hi * 100.0
            )?;
        }
    }
    writeln!(
        out,
        "\nThe same CPU by thread (µs per request; threads that share a name summed):\n"
    )?;
    for t in gateways() {
        let Some(threads) = t.log_slices.as_ref().and_then(|r| r.cpu_by_thread.as_ref()) else {
            continue;
        };
        let parts: Vec<String> = threads
            .iter()
            .filter(|(_, us)| **us >= 0.05)
            .map(|(name, us)| format!("`{name}` {us:.1}"))
            .collect();
        writeln!(out, "- {}: {}", t.target.label(), parts.join(", "))?;
    }
    // The rounds of scenario a, as measured before the slices existed: seconds per target,
    // process CPU in 10 ms ticks, warm-up included.
    let fixed = |t: Target| r.target(t).and_then(|t| t.fixed.as_ref());
    if let (Some(on), Some(off)) = (fixed(Target::Gateway), fixed(Target::GatewayNoLog)) {
        let pct = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) if b > 0.0 => format!("{:+.1}%", (a / b - 1.0) * 100.0),
            _ => dash(),
        };
        let p99 = |run: &RunResult| run.latency.map(|l| f64::from(l.p99_us));
        writeln!(
            out,
            "\nFor reference, scenario a's rounds ({} s per target at a time; process CPU, \
             warm-up included): CPU {} / {} µs per request ({}), p99 {}.",
            r.settings.duration_s / f64::from(r.settings.rounds),
            on.cpu_us_per_req.map_or_else(dash, |c| format!("{c:.0}")),
            off.cpu_us_per_req.map_or_else(dash, |c| format!("{c:.0}")),
            pct(on.cpu_us_per_req, off.cpu_us_per_req),
            pct(p99(on), p99(off)),
        )?;
    }
    Ok(())
}

fn summary_line(r: &RunResult) -> String {
    let mut line = format!("ok {} errors {}", r.ok, r.errors.total());
    if let Some(rps) = r.throughput_rps {
        let _ = write!(line, ", {rps:.0} req/s");
    }
    if let Some(t) = r.ttft {
        let _ = write!(line, ", TTFT p50 {} p99 {} ms", ms(t.p50_us), ms(t.p99_us));
    }
    if let Some(l) = r.latency {
        let _ = write!(line, ", p50 {} p99 {} ms", ms(l.p50_us), ms(l.p99_us));
    }
    if let Some(first) = &r.errors.first {
        let _ = write!(line, "; first error: {}", one_line(first, 200));
    }
    line
}

fn nginx_version_of(bin: &Path) -> Option<String> {
    // `nginx -v` prints `nginx version: nginx/1.22.1` on stderr.
    let out = Command::new(bin)
        .arg("-v")
        .stdin(Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stderr);
    let line = text.lines().next()?.trim();
    Some(
        line.strip_prefix("nginx version: ")
            .unwrap_or(line)
            .to_owned(),
    )
}

fn git_commit(root: &Path) -> Option<String> {
    let git = |args: &[&str]| {
        Command::new("git")
            .arg("-C")
            .arg(root)
            .args(args)
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    let head = git(&["rev-parse", "--short", "HEAD"]).filter(|h| !h.is_empty())?;
    let dirty =
        git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    Some(if dirty { format!("{head}-dirty") } else { head })
}

fn machine() -> Machine {
    let nproc = Command::new("nproc")
        .stdin(Stdio::null())
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .or_else(|| std::thread::available_parallelism().ok().map(usize::from))
        .unwrap_or(0);
    let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| cpu_model(&text))
        .unwrap_or_else(|| String::from("unknown"));
    Machine { nproc, cpu_model }
}

/// The first `model name` of a `/proc/cpuinfo` text (x86; some ARM kernels omit it).
pub(crate) fn cpu_model(cpuinfo: &str) -> Option<String> {
    cpuinfo.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        (key.trim() == "model name").then(|| value.trim().to_owned())
    })
}

/// `YYYY-MM-DD HH:MM:SS UTC` for a Unix time, without a date library: walking years and
/// months from 1970 is a few dozen steps.
pub(crate) fn utc_date_time(unix_secs: u64) -> String {
    let leap = |y: u64| (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let mut days = unix_secs / 86_400;
    let secs = unix_secs % 86_400;
    let mut year = 1970;
    loop {
        let len = if leap(year) { 366 } else { 365 };
        if days < len {
            break;
        }
        days -= len;
        year += 1;
    }
    let feb = if leap(year) { 29 } else { 28 };
    let mut month = 1;
    for len in [31, feb, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31] {
        if days < len {
            break;
        }
        days -= len;
        month += 1;
    }
    format!(
        "{year:04}-{month:02}-{:02} {:02}:{:02}:{:02} UTC",
        days + 1,
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// Microseconds as milliseconds with three decimals.
pub(crate) fn ms(us: u32) -> String {
    format!("{:.3}", f64::from(us) / 1000.0)
}

/// A signed difference in microseconds as milliseconds, always with its sign.
pub(crate) fn delta_ms(us: i64) -> String {
    let sign = if us < 0 { '-' } else { '+' };
    let abs = us.unsigned_abs();
    format!("{sign}{}.{:03}", abs / 1000, abs % 1000)
}

pub(crate) fn percent(ratio: f64) -> String {
    format!("{:.1}%", ratio * 100.0)
}

/// Kibibytes (as `/proc` reports them) in decimal megabytes.
pub(crate) fn mb(kb: u64) -> String {
    format!("{:.1} MB", kb as f64 * 1024.0 / 1e6)
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

/// Text made safe for one Markdown table cell or list item: one line, no pipes, bounded.
fn one_line(s: &str, max_chars: usize) -> String {
    let flat: String = s
        .chars()
        .map(|c| match c {
            '\n' | '\r' | '\t' => ' ',
            '|' => '/',
            c => c,
        })
        .collect();
    if flat.chars().count() > max_chars {
        let cut: String = flat.chars().take(max_chars).collect();
        format!("{cut}…")
    } else {
        flat
    }
}

/// Renders the report as Markdown.
pub(crate) fn render_markdown(r: &Report) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = write_markdown(&mut out, r);
    out
}

fn write_markdown(out: &mut String, r: &Report) -> std::fmt::Result {
    let s = &r.settings;
    writeln!(out, "# Switchyard load benchmark\n")?;
    writeln!(out, "| | |\n|---|---|")?;
    writeln!(out, "| Date | {} |", r.date_utc)?;
    if let Some(c) = &r.commit {
        writeln!(out, "| Commit | `{c}` |")?;
    }
    writeln!(
        out,
        "| Machine | {} CPUs (`nproc`), {}; mock, gateway, nginx and the load generator share them |",
        r.machine.nproc,
        one_line(&r.machine.cpu_model, 100)
    )?;
    writeln!(
        out,
        "| Fixed rate | {} req/s open loop, 1 ms tick, latency from each request's scheduled send time |",
        s.rate
    )?;
    writeln!(
        out,
        "| Concurrency | {} closed-loop workers |",
        s.concurrency
    )?;
    writeln!(
        out,
        "| Duration | {} s measured per scenario and target, in {} interleaved rounds (direct, gateway, nginx, repeat), after {} s unrecorded warm-up{} |",
        s.duration_s,
        s.rounds,
        s.warmup_s,
        if s.quick { " (`--quick`)" } else { "" }
    )?;
    let nginx = match (r.target(Target::Nginx).and_then(|t| t.skipped.as_ref()), &r.nginx_version) {
        (Some(why), _) => format!("skipped: {}", one_line(first_line(why), 200)),
        (None, v) => format!(
            "{}, `worker_processes {}` (the gateway's runtime also uses every core), upstream keep-alive, no buffering",
            v.as_deref().unwrap_or("nginx"),
            s.nginx_worker_processes
        ),
    };
    writeln!(out, "| nginx | {nginx} |")?;

    writeln!(out, "\n## Goals\n")?;
    writeln!(
        out,
        "| Goal | Measured | Target | Result |\n|---|---:|---|---|"
    )?;
    for g in &r.goals {
        let note = g
            .note
            .as_deref()
            .map(|n| format!(" ({})", one_line(n, 120)))
            .unwrap_or_default();
        writeln!(
            out,
            "| {} | {} | {} | **{}**{note} |",
            g.name,
            g.measured,
            g.threshold,
            g.verdict.show()
        )?;
    }

    let gw = &r.comparison.gateway_added;
    let ng = &r.comparison.nginx_added;

    writeln!(
        out,
        "\n## a. Fixed rate, non-streaming ({} req/s)\n",
        s.rate
    )?;
    writeln!(
        out,
        "Latency in ms from each request's scheduled send time. It includes up to one 1 ms \
         tick of send delay, the same on every path, so it cancels in the differences.\n"
    )?;
    writeln!(
        out,
        "| Target | OK | Errors | p50 | p90 | p99 | max |\n|---|---:|---:|---:|---:|---:|---:|"
    )?;
    for t in &r.targets {
        match (&t.fixed, &t.skipped) {
            (Some(run), _) => {
                let l = run.latency;
                let cell = |f: fn(&LatencyStats) -> u32| {
                    l.as_ref().map_or_else(|| String::from("-"), |l| ms(f(l)))
                };
                writeln!(
                    out,
                    "| {} | {} | {} | {} | {} | {} | {} |",
                    t.target.label(),
                    run.ok,
                    run.errors.total(),
                    cell(|l| l.p50_us),
                    cell(|l| l.p90_us),
                    cell(|l| l.p99_us),
                    cell(|l| l.max_us),
                )?;
            }
            (None, _) => writeln!(out, "| {} | not measured | | | | | |", t.target.label())?,
        }
    }
    write_added(
        out,
        "Added by the gateway",
        gw.fixed_p50_us,
        gw.fixed_p99_us,
    )?;
    write_added(out, "Added by nginx", ng.fixed_p50_us, ng.fixed_p99_us)?;

    writeln!(
        out,
        "\n## b. Fixed rate, streaming ({} req/s, `include_usage`)\n",
        s.rate
    )?;
    writeln!(
        out,
        "TTFT: to the first body bytes holding `data:`; full: to the end of the stream, which \
         must end with `data: [DONE]`. In ms from the scheduled send time.\n"
    )?;
    writeln!(
        out,
        "| Target | OK | Errors | TTFT p50 | TTFT p99 | Full p50 | Full p99 |\n|---|---:|---:|---:|---:|---:|---:|"
    )?;
    for t in &r.targets {
        match &t.stream {
            Some(run) => {
                let pick = |s: Option<LatencyStats>, p99: bool| {
                    s.map_or_else(
                        || String::from("-"),
                        |s| ms(if p99 { s.p99_us } else { s.p50_us }),
                    )
                };
                writeln!(
                    out,
                    "| {} | {} | {} | {} | {} | {} | {} |",
                    t.target.label(),
                    run.ok,
                    run.errors.total(),
                    pick(run.ttft, false),
                    pick(run.ttft, true),
                    pick(run.latency, false),
                    pick(run.latency, true),
                )?;
            }
            None => writeln!(out, "| {} | not measured | | | | | |", t.target.label())?,
        }
    }
    write_added(
        out,
        "TTFT added by the gateway",
        gw.ttft_p50_us,
        gw.ttft_p99_us,
    )?;
    write_added(
        out,
        "Full stream added by the gateway",
        gw.stream_p50_us,
        gw.stream_p99_us,
    )?;
    write_added(out, "TTFT added by nginx", ng.ttft_p50_us, ng.ttft_p99_us)?;

    writeln!(
        out,
        "\n## c. Max throughput, closed loop ({} workers)\n",
        s.concurrency
    )?;
    writeln!(
        out,
        "| Target | req/s | OK | Errors | p50 | p99 |\n|---|---:|---:|---:|---:|---:|"
    )?;
    for t in &r.targets {
        match &t.throughput {
            Some(run) => {
                let l = run.latency;
                writeln!(
                    out,
                    "| {} | {} | {} | {} | {} | {} |",
                    t.target.label(),
                    run.throughput_rps
                        .map_or_else(|| String::from("-"), |v| format!("{v:.0}")),
                    run.ok,
                    run.errors.total(),
                    l.map_or_else(|| String::from("-"), |l| ms(l.p50_us)),
                    l.map_or_else(|| String::from("-"), |l| ms(l.p99_us)),
                )?;
            }
            None => writeln!(out, "| {} | not measured | | | | |", t.target.label())?,
        }
    }
    let c = &r.comparison;
    let show = |v: Option<f64>| v.map_or_else(|| String::from("n/a"), percent);
    writeln!(
        out,
        "\nThroughput ratios: gateway / direct **{}**, gateway / nginx **{}**, nginx / direct {}.",
        show(c.throughput_gateway_over_direct),
        show(c.throughput_gateway_over_nginx),
        show(c.throughput_nginx_over_direct),
    )?;

    render_request_log(r, out)?;

    writeln!(out, "\n## Gateway memory\n")?;
    let m = &r.gateway_memory;
    let kb = |v: Option<u64>| v.map_or_else(|| String::from("-"), mb);
    writeln!(
        out,
        "| Peak RSS (`VmHWM`) | Max sampled `VmRSS` (every 100 ms) | `VmRSS` after startup |\n|---:|---:|---:|"
    )?;
    writeln!(
        out,
        "| {} | {} | {} |",
        kb(m.vm_hwm_kb),
        kb(m.max_sampled_rss_kb),
        kb(m.startup_rss_kb)
    )?;

    write_problems(out, r)
}

fn write_added(
    out: &mut String,
    what: &str,
    p50: Option<i64>,
    p99: Option<i64>,
) -> std::fmt::Result {
    if p50.is_none() && p99.is_none() {
        return Ok(());
    }
    let show = |v: Option<i64>| v.map_or_else(|| String::from("n/a"), delta_ms);
    writeln!(
        out,
        "\n{what}: p50 **{} ms**, p99 **{} ms**.",
        show(p50),
        show(p99)
    )
}

/// Lists skipped targets and errors, so a failing run says why.
fn write_problems(out: &mut String, r: &Report) -> std::fmt::Result {
    let mut lines = Vec::new();
    for t in &r.targets {
        if let Some(why) = &t.skipped {
            lines.push(format!(
                "- **{}** not (fully) measured: {}",
                t.target.name(),
                one_line(first_line(why), 300)
            ));
        }
        let runs = [
            ("a. fixed rate", &t.fixed),
            ("b. streaming", &t.stream),
            ("c. throughput", &t.throughput),
        ];
        for (name, run) in runs {
            let Some(run) = run else { continue };
            let e = &run.errors;
            if e.total() == 0 {
                continue;
            }
            lines.push(format!(
                "- **{}**, {name}: {} errors (status {}, transport {}, timeout {}, bad stream {}, not sent {}); first: {}",
                t.target.name(),
                e.total(),
                e.status,
                e.transport,
                e.timeout,
                e.bad_stream,
                e.not_sent,
                e.first.as_deref().map_or_else(|| String::from("-"), |f| one_line(f, 300)),
            ));
        }
    }
    if lines.is_empty() {
        return Ok(());
    }
    writeln!(out, "\n## Problems\n")?;
    for line in lines {
        writeln!(out, "{line}")?;
    }
    Ok(())
}
