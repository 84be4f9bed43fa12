//! Unit tests of the statistics, the stream check, the parsers and the report: everything
//! that needs no network (the generators are exercised in `standin`).

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use super::load::{
    percentile, schedule_offset, scheduled_count, ErrorCounts, LatencyStats, StreamCheck,
};
use super::procs::{
    gateway_config, nginx_config, parse_mock_line, schedstat_run_ns, stat_cpu_ticks,
    status_field_kb, thread_cpu_seconds,
};
use super::*;

#[test]
fn nearest_rank_percentiles() {
    let sorted: Vec<u32> = (1..=100).collect();
    assert_eq!(percentile(&sorted, 50.0), 50);
    assert_eq!(percentile(&sorted, 90.0), 90);
    assert_eq!(percentile(&sorted, 99.0), 99);
    assert_eq!(percentile(&sorted, 100.0), 100);
    assert_eq!(percentile(&sorted, 0.0), 1);
    // Few samples: p99 is the largest, never an interpolation below it.
    let few = [10, 20, 30];
    assert_eq!(percentile(&few, 50.0), 20);
    assert_eq!(percentile(&few, 99.0), 30);
    assert_eq!(percentile(&[7], 99.0), 7);
    assert_eq!(percentile(&[], 50.0), 0);
}

#[test]
fn latency_stats_sort_and_summarise() {
    let mut samples = vec![900, 100, 500, 300, 700, 200, 800, 400, 1000, 600];
    let s = LatencyStats::from_samples(&mut samples).unwrap();
    assert_eq!(
        s,
        LatencyStats {
            count: 10,
            p50_us: 500,
            p90_us: 900,
            p99_us: 1000,
            max_us: 1000,
        }
    );
    assert_eq!(samples[0], 100);
    assert!(LatencyStats::from_samples(&mut []).is_none());
}

#[test]
fn open_loop_schedule_is_exact() {
    assert_eq!(scheduled_count(1000, Duration::from_secs(10)), 10_000);
    assert_eq!(scheduled_count(1000, Duration::from_millis(500)), 500);
    assert_eq!(scheduled_count(3, Duration::from_secs(1)), 3);
    assert_eq!(scheduled_count(3, Duration::from_millis(999)), 2);
    assert_eq!(schedule_offset(0, 3), Duration::ZERO);
    assert_eq!(schedule_offset(1, 3), Duration::from_nanos(333_333_333));
    assert_eq!(schedule_offset(3, 3), Duration::from_secs(1));
    // No drift: request 10 000 at 1000/s is due at exactly 10 s.
    assert_eq!(schedule_offset(10_000, 1000), Duration::from_secs(10));
    // Every request scheduled within the run is due before it ends.
    let n = scheduled_count(7, Duration::from_secs(2));
    assert!(schedule_offset(n - 1, 7) < Duration::from_secs(2));
}

#[test]
fn stream_check_finds_first_event_across_chunks() {
    let mut c = StreamCheck::default();
    assert!(!c.feed(b": comment\n\n"));
    assert!(!c.feed(b"da"));
    assert!(
        c.feed(b"ta: {\"a\":1}\n\n"),
        "a field split over chunks counts"
    );
    assert!(
        !c.feed(b"data: {\"b\":2}\n\n"),
        "only the first event counts"
    );
    assert!(!c.ended_with_done());
    c.feed(b"data: [DO");
    c.feed(b"NE]\n\n");
    assert!(c.ended_with_done());
}

#[test]
fn stream_check_wants_done_last() {
    let mut c = StreamCheck::default();
    assert!(c.feed(b"data: [DONE]\n\ndata: {\"usage\":{}}\n\n"));
    assert!(!c.ended_with_done(), "[DONE] must be the last event");

    let mut c = StreamCheck::default();
    let long = format!(
        "data: {{\"x\":\"{}\"}}\n\ndata: [DONE]\r\n\r\n",
        "y".repeat(500)
    );
    assert!(c.feed(long.as_bytes()));
    assert!(c.ended_with_done());

    let mut c = StreamCheck::default();
    assert!(!c.feed(b"event: ping\n\n"));
    assert!(!c.ended_with_done());
}

#[test]
fn proc_status_fields() {
    let status =
        "Name:\tswitchyard\nVmPeak:\t  123456 kB\nVmHWM:\t   20480 kB\nVmRSS:\t   18000 kB\n";
    assert_eq!(status_field_kb(status, "VmHWM"), Some(20_480));
    assert_eq!(status_field_kb(status, "VmRSS"), Some(18_000));
    assert_eq!(status_field_kb(status, "VmSwap"), None);
    // A key is matched whole, not as a prefix of another.
    assert_eq!(status_field_kb("VmRSSx: 1 kB\n", "VmRSS"), None);
}

#[test]
fn mock_readiness_line() {
    assert_eq!(
        parse_mock_line("switchyard-mock listening on http://127.0.0.1:40123"),
        Some(SocketAddr::from(([127, 0, 0, 1], 40123)))
    );
    assert_eq!(
        parse_mock_line("switchyard-mock listening on http://127.0.0.1:8080/\r"),
        Some(SocketAddr::from(([127, 0, 0, 1], 8080)))
    );
    assert_eq!(parse_mock_line("starting up"), None);
    assert_eq!(parse_mock_line("listening on http://nowhere"), None);
}

#[test]
fn gateway_and_nginx_configs() {
    let mock = SocketAddr::from(([127, 0, 0, 1], 9001));
    let yaml = gateway_config(4555, mock, Path::new("/tmp/x"), true);
    assert!(
        yaml.contains("sqlite: \"/tmp/x/gateway-4555.db\""),
        "{yaml}"
    );
    let off = gateway_config(4556, mock, Path::new("/tmp/x"), false);
    assert!(off.contains("request_log:\n  enabled: false\n"), "{off}");
    assert!(yaml.contains("listen: \"127.0.0.1:4555\""));
    assert!(yaml.contains("base_url: \"http://127.0.0.1:9001/v1\""));
    assert!(yaml
        .contains("  bench:\n    deployments:\n      - provider: mock\n        model: mock-gpt\n"));

    let conf = nginx_config(Path::new("/tmp/x"), 4556, mock);
    for needle in [
        "worker_processes auto;",
        "pid /tmp/x/nginx.pid;",
        "access_log off;",
        "server 127.0.0.1:9001;",
        "keepalive 64;",
        "listen 127.0.0.1:4556;",
        "proxy_http_version 1.1;",
        "proxy_set_header Connection \"\";",
        "proxy_buffering off;",
    ] {
        assert!(conf.contains(needle), "missing {needle}");
    }
    assert!(!conf.contains("daemon"), "daemon off is passed with -g");
}

#[test]
fn chat_bodies() {
    let plain: serde_json::Value = serde_json::from_slice(&chat_body("bench", false)).unwrap();
    assert_eq!(plain["model"], "bench");
    assert_eq!(plain["messages"][0]["content"], "Say hello in five words.");
    assert!(plain.get("stream").is_none());
    let stream: serde_json::Value = serde_json::from_slice(&chat_body("mock-gpt", true)).unwrap();
    assert_eq!(stream["stream"], true);
    assert_eq!(stream["stream_options"]["include_usage"], true);
    assert_eq!(Target::Gateway.model(), "bench");
    assert_eq!(Target::Nginx.model(), "mock-gpt");
}

#[test]
fn dates_and_units() {
    assert_eq!(utc_date_time(0), "1970-01-01 00:00:00 UTC");
    assert_eq!(utc_date_time(1_709_210_096), "2024-02-29 12:34:56 UTC");
    assert_eq!(utc_date_time(4_102_444_799), "2099-12-31 23:59:59 UTC");
    assert_eq!(ms(0), "0.000");
    assert_eq!(ms(1_500), "1.500");
    assert_eq!(ms(123), "0.123");
    assert_eq!(delta_ms(0), "+0.000");
    assert_eq!(delta_ms(1_234), "+1.234");
    assert_eq!(delta_ms(-12), "-0.012");
    assert_eq!(percent(0.8), "80.0%");
    assert_eq!(mb(48_828), "50.0 MB");
    assert_eq!(mb(20_480), "21.0 MB");
}

#[test]
fn cpu_model_from_cpuinfo() {
    let info = "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) CPU @ 2.20GHz\nprocessor\t: 1\n";
    assert_eq!(
        cpu_model(info).as_deref(),
        Some("Intel(R) Xeon(R) CPU @ 2.20GHz")
    );
    assert_eq!(cpu_model("processor : 0\n"), None);
}

// ---- Report fixtures -------------------------------------------------------------------

fn stats(p50: u32, p99: u32) -> Option<LatencyStats> {
    Some(LatencyStats {
        count: 1000,
        p50_us: p50,
        p90_us: (p50 + p99) / 2,
        p99_us: p99,
        max_us: p99 * 2,
    })
}

fn run(p50: u32, p99: u32) -> Option<RunResult> {
    Some(RunResult {
        ok: 10_000,
        errors: ErrorCounts::default(),
        latency: stats(p50, p99),
        ttft: None,
        throughput_rps: None,
        cpu_us_per_req: None,
        cpu_by_thread: None,
        cpu_per_slice: Vec::new(),
    })
}

fn target(t: Target, fixed: (u32, u32), ttft: (u32, u32), rps: f64) -> TargetResult {
    TargetResult {
        target: t,
        skipped: None,
        fixed: run(fixed.0, fixed.1),
        stream: run(ttft.0 + 300, ttft.1 + 600).map(|r| RunResult {
            ttft: stats(ttft.0, ttft.1),
            ..r
        }),
        throughput: run(fixed.0 * 10, fixed.1 * 10).map(|r| RunResult {
            throughput_rps: Some(rps),
            ..r
        }),
        log_slices: None,
    }
}

fn three_targets() -> Vec<TargetResult> {
    vec![
        target(Target::Direct, (200, 600), (250, 700), 20_000.0),
        target(Target::Gateway, (350, 1_300), (400, 1_500), 9_000.0),
        target(Target::Nginx, (300, 1_000), (330, 1_100), 10_000.0),
    ]
}

fn memory(hwm_kb: u64) -> Memory {
    Memory {
        vm_hwm_kb: Some(hwm_kb),
        max_sampled_rss_kb: Some(hwm_kb - 100),
        startup_rss_kb: Some(8_000),
    }
}

fn report(targets: Vec<TargetResult>, memory: Memory) -> Report {
    let opts = Options::default();
    let comparison = Comparison::from_targets(&targets);
    let goals = judge(&opts, &targets, &comparison, &memory);
    Report {
        date_utc: utc_date_time(1_709_210_096),
        commit: Some(String::from("abc1234-dirty")),
        machine: Machine {
            nproc: 2,
            cpu_model: String::from("Test CPU | 2 GHz"),
        },
        settings: Settings::new(&opts),
        nginx_version: Some(String::from("nginx/1.22.1")),
        targets,
        gateway_memory: memory,
        comparison,
        goals,
    }
}

#[test]
fn comparison_subtracts_direct() {
    let c = Comparison::from_targets(&three_targets());
    assert_eq!(c.gateway_added.fixed_p50_us, Some(150));
    assert_eq!(c.gateway_added.fixed_p99_us, Some(700));
    assert_eq!(c.gateway_added.ttft_p50_us, Some(150));
    assert_eq!(c.gateway_added.ttft_p99_us, Some(800));
    assert_eq!(c.gateway_added.stream_p99_us, Some(800));
    assert_eq!(c.nginx_added.fixed_p99_us, Some(400));
    assert_eq!(c.throughput_gateway_over_direct, Some(0.45));
    assert_eq!(c.throughput_gateway_over_nginx, Some(0.9));
    assert_eq!(c.throughput_nginx_over_direct, Some(0.5));
}

#[test]
fn goals_pass_and_fail_at_their_thresholds() {
    let r = report(three_targets(), memory(20_000));
    let verdicts: Vec<Verdict> = r.goals.iter().map(|g| g.verdict).collect();
    assert_eq!(verdicts[..4], [Verdict::Pass; 4]);
    // Without the log-off gateway, the request log goals are not measured.
    assert_eq!(verdicts[4..], [Verdict::NotMeasured; 2]);
    assert_eq!(r.goals[0].measured, "+0.700 ms");
    assert_eq!(r.goals[2].measured, "90.0%");
    assert_eq!(r.goals[2].threshold, ">= 80.0%");
    assert_eq!(r.goals[3].threshold, "< 50 MB");

    // Exactly 1 ms added, 80% throughput and 50 MB are at the limits: latency and memory
    // are strict bounds, throughput is inclusive.
    let mut t = three_targets();
    t[1].fixed = run(350, 1_600);
    t[1].throughput.as_mut().unwrap().throughput_rps = Some(8_000.0);
    let r = report(t, memory(48_829));
    let verdicts: Vec<Verdict> = r.goals.iter().map(|g| g.verdict).collect();
    assert_eq!(
        verdicts[..4],
        [Verdict::Fail, Verdict::Pass, Verdict::Pass, Verdict::Fail]
    );
    let r = report(three_targets(), memory(48_828));
    assert_eq!(r.goals[3].verdict, Verdict::Pass);
}

#[test]
fn gateway_errors_fail_the_goal() {
    let mut t = three_targets();
    t[1].stream.as_mut().unwrap().errors.status = 3;
    let r = report(t, memory(20_000));
    assert_eq!(r.goals[1].verdict, Verdict::Fail);
    assert_eq!(r.goals[1].note.as_deref(), Some("gateway had 3 errors"));
    assert_eq!(r.goals[0].verdict, Verdict::Pass);
}

#[test]
fn missing_targets_are_not_measured() {
    let mut t = three_targets();
    t[2] = TargetResult::skipped(Target::Nginx, String::from("no nginx binary\nmore"));
    let r = report(t, memory(20_000));
    assert_eq!(r.goals[2].verdict, Verdict::NotMeasured);
    assert_eq!(
        r.goals[2].note.as_deref(),
        Some("nginx not measured: no nginx binary")
    );
    assert_eq!(r.goals[0].verdict, Verdict::Pass);

    let t = vec![
        three_targets().swap_remove(0),
        TargetResult::skipped(Target::Gateway, String::from("binary missing")),
    ];
    let r = report(t, Memory::default());
    assert!(r.goals.iter().all(|g| g.verdict == Verdict::NotMeasured));
}

#[test]
fn markdown_report_has_every_section() {
    let md = render_markdown(&report(three_targets(), memory(20_000)));
    for needle in [
        "# Switchyard load benchmark",
        "| Date | 2024-02-29 12:34:56 UTC |",
        "| Commit | `abc1234-dirty` |",
        "| Machine | 2 CPUs (`nproc`), Test CPU / 2 GHz;",
        "| Fixed rate | 1000 req/s open loop,",
        "| Concurrency | 64 closed-loop workers |",
        "| Duration | 10 s measured per scenario and target, in 5 interleaved rounds",
        "nginx/1.22.1, `worker_processes auto` (the gateway's runtime also uses every core)",
        "| Added p99 latency, non-streaming, 1000 req/s | +0.700 ms | < 1 ms | **PASS** |",
        "| Added p99 TTFT, streaming, 1000 req/s | +0.800 ms | < 1 ms | **PASS** |",
        "| Gateway throughput vs nginx, concurrency 64 | 90.0% | >= 80.0% | **PASS** |",
        "| Gateway peak RSS (VmHWM) | 20.5 MB | < 50 MB | **PASS** |",
        "## a. Fixed rate, non-streaming (1000 req/s)",
        "| direct (mock) | 10000 | 0 | 0.200 | 0.400 | 0.600 | 1.200 |",
        "| gateway → mock | 10000 | 0 | 0.350 | 0.825 | 1.300 | 2.600 |",
        "Added by the gateway: p50 **+0.150 ms**, p99 **+0.700 ms**.",
        "Added by nginx: p50 **+0.100 ms**, p99 **+0.400 ms**.",
        "## b. Fixed rate, streaming (1000 req/s, `include_usage`)",
        "| direct (mock) | 10000 | 0 | 0.250 | 0.700 | 0.550 | 1.300 |",
        "TTFT added by the gateway: p50 **+0.150 ms**, p99 **+0.800 ms**.",
        "## c. Max throughput, closed loop (64 workers)",
        "| gateway → mock | 9000 | 10000 | 0 | 3.500 | 13.000 |",
        "gateway / direct **45.0%**, gateway / nginx **90.0%**, nginx / direct 50.0%.",
        "| 20.5 MB | 20.4 MB | 8.2 MB |",
    ] {
        assert!(md.contains(needle), "missing {needle:?} in:\n{md}");
    }
    assert!(!md.contains("## Problems"), "no problems to list:\n{md}");
    // Every table row has as many cells as its header.
    for line in md.lines().filter(|l| l.starts_with("| direct")) {
        assert_eq!(line.matches('|').count() - 1, line.split('|').count() - 2);
    }
}

#[test]
fn markdown_report_lists_problems() {
    let mut t = three_targets();
    t[1].fixed.as_mut().unwrap().errors = ErrorCounts {
        status: 2,
        transport: 1,
        first: Some(String::from("HTTP 502 Bad Gateway: {\"error\":\n\"x|y\"}")),
        ..ErrorCounts::default()
    };
    t[2] = TargetResult::skipped(
        Target::Nginx,
        String::from("could not start nginx\nlog tail"),
    );
    let md = render_markdown(&report(t, memory(60_000)));
    assert!(
        md.contains("| Gateway peak RSS (VmHWM) | 61.4 MB | < 50 MB | **FAIL** |"),
        "{md}"
    );
    assert!(md.contains("| Added p99 latency, non-streaming, 1000 req/s | +0.700 ms | < 1 ms | **FAIL** (gateway had 3 errors) |"), "{md}");
    assert!(
        md.contains("| nginx → mock | not measured | | | | | |"),
        "{md}"
    );
    assert!(
        md.contains("| nginx | skipped: could not start nginx |"),
        "{md}"
    );
    assert!(md.contains("## Problems"));
    assert!(md.contains("- **nginx** not (fully) measured: could not start nginx"));
    assert!(md.contains(
        "- **gateway**, a. fixed rate: 3 errors (status 2, transport 1, timeout 0, bad stream 0, not sent 0); first: HTTP 502 Bad Gateway: {\"error\": \"x/y\"}"
    ), "{md}");
    assert!(md.contains("gateway / nginx **n/a**"));
}

#[test]
fn json_report_round_trips_the_numbers() {
    let r = report(three_targets(), memory(20_000));
    let v: serde_json::Value = serde_json::to_value(&r).unwrap();
    assert_eq!(v["settings"]["rate"], 1000);
    assert_eq!(v["settings"]["nginx_worker_processes"], "auto");
    assert_eq!(v["targets"][1]["target"], "gateway");
    assert_eq!(v["targets"][1]["fixed"]["latency"]["p99_us"], 1300);
    assert!(v["targets"][1]["fixed"].get("ttft").is_none());
    assert_eq!(v["targets"][1]["stream"]["ttft"]["p99_us"], 1500);
    assert_eq!(v["targets"][1]["throughput"]["throughput_rps"], 9000.0);
    assert_eq!(v["comparison"]["gateway_added"]["fixed_p99_us"], 700);
    assert_eq!(v["goals"][0]["verdict"], "PASS");
    assert_eq!(v["gateway_memory"]["vm_hwm_kb"], 20_000);
}

#[test]
fn run_result_from_samples() {
    let s = load::Samples {
        total_us: vec![300, 100, 200],
        ..load::Samples::default()
    };
    let r = RunResult::from_samples(s, Duration::from_millis(1500), true);
    assert_eq!(r.ok, 3);
    assert_eq!(r.throughput_rps, Some(2.0));
    assert_eq!(r.latency.unwrap().p50_us, 200);
    assert!(r.ttft.is_none());
    let r = RunResult::from_samples(load::Samples::default(), Duration::from_secs(1), false);
    assert_eq!(r.ok, 0);
    assert!(r.latency.is_none() && r.throughput_rps.is_none());
}

#[test]
fn request_log_goals_compare_the_two_gateways_slices() {
    let mut t = three_targets();
    let with_slices = |target: Target, p99: u32, cpu: f64, slices: &[f64]| {
        let mut r = target_result(target, p99);
        // Scenario a's rounds say something else: the goals must not read them.
        r.fixed.as_mut().unwrap().cpu_us_per_req = Some(cpu * 2.0);
        r.log_slices = run(250, p99).map(|s| RunResult {
            cpu_us_per_req: Some(cpu),
            cpu_per_slice: slices.to_vec(),
            ..s
        });
        r
    };
    t[1] = with_slices(Target::Gateway, 1_040, 108.0, &[105.0, 120.0, 99.0]);
    t.push(with_slices(
        Target::GatewayNoLog,
        1_000,
        100.0,
        &[100.0, 100.0, 100.0],
    ));
    t[3].fixed.as_mut().unwrap().cpu_us_per_req = Some(100.0);
    let r = report(t.clone(), memory(20_000));
    assert_eq!(r.goals[4].measured, "+4.0%");
    assert_eq!(r.goals[4].verdict, Verdict::Pass);
    assert_eq!(r.goals[5].measured, "+8.0%");
    assert_eq!(r.goals[5].verdict, Verdict::Pass);
    let md = render_markdown(&r);
    assert!(
        md.contains("| gateway, request log off → mock | 10000 | 0 | 0.250 | 1.000 | 100.0 |"),
        "{md}"
    );
    assert!(md.contains("take turns in 3 slices of 1 s each"), "{md}");
    assert!(
        md.contains("lowest -1.0%, median +5.0%, highest +20.0%."),
        "{md}"
    );
    // Scenario a's figures are shown for reference only.
    assert!(
        md.contains("CPU 216 / 100 µs per request (+116.0%), p99 +4.0%."),
        "{md}"
    );
    // The breakdown by thread, where there is one; tiny shares are left out.
    t[1].log_slices.as_mut().unwrap().cpu_by_thread = Some(
        [
            ("switchyard-work", 100.0),
            ("switchyard-sqli", 2.04),
            ("tokio-rt-worker", 0.01),
        ]
        .into_iter()
        .map(|(n, us)| (n.to_owned(), us))
        .collect(),
    );
    let md = render_markdown(&report(t.clone(), memory(20_000)));
    assert!(
        md.contains("- gateway → mock: `switchyard-sqli` 2.0, `switchyard-work` 100.0\n"),
        "{md}"
    );
    assert!(!md.contains("request log off → mock: `"), "{md}");
    t[1] = with_slices(Target::Gateway, 1_060, 111.0, &[111.0]);
    let r = report(t.clone(), memory(20_000));
    assert_eq!(r.goals[4].verdict, Verdict::Fail);
    assert_eq!(r.goals[5].verdict, Verdict::Fail);
    // Without the slices (e.g. a gateway died before them), the goals are not measured.
    t[1].log_slices = None;
    let r = report(t, memory(20_000));
    assert_eq!(r.goals[5].verdict, Verdict::NotMeasured);
}

fn target_result(t: Target, p99: u32) -> TargetResult {
    target(t, (250, p99), (300, p99), 9_000.0)
}

#[test]
fn cpu_ticks_from_proc_stat() {
    // The command name may contain spaces and parentheses; fields count after the last `)`.
    let stat = "4242 (switch (y) ard) S 1 4242 4242 0 -1 4194560 1100 0 0 0 731 129 0 0 20 0 3 0";
    assert_eq!(stat_cpu_ticks(stat), Some(860));
    assert_eq!(stat_cpu_ticks("garbage"), None);
}

#[test]
fn thread_cpu_from_schedstat() {
    assert_eq!(schedstat_run_ns("123456789 2000 17\n"), Some(123_456_789));
    assert_eq!(schedstat_run_ns(""), None);
    // This test's own process: its threads are listed by name, each with some run time.
    let threads = thread_cpu_seconds(std::process::id()).expect("/proc/self/task");
    assert!(!threads.is_empty());
    assert!(threads.values().all(|s| *s >= 0.0), "{threads:?}");
    assert!(threads.values().any(|s| *s > 0.0), "{threads:?}");
}

#[test]
fn thread_cpu_is_added_per_name_between_two_readings() {
    let map = |pairs: &[(&str, f64)]| -> BTreeMap<String, f64> {
        pairs.iter().map(|(n, s)| ((*n).to_owned(), *s)).collect()
    };
    let mut into = map(&[("switchyard-work", 1.0)]);
    // A thread new since the first reading counts from zero; one whose count went down (an
    // exited thread's name reused) counts nothing rather than less than nothing.
    let before = map(&[("switchyard-work", 2.0), ("tokio-rt-worker", 0.5)]);
    let after = map(&[
        ("switchyard-work", 2.25),
        ("switchyard-sqli", 0.5),
        ("tokio-rt-worker", 0.25),
    ]);
    assert_eq!(add_thread_cpu(&mut into, &before, after), 0.75);
    assert_eq!(
        into,
        map(&[
            ("switchyard-work", 1.25),
            ("switchyard-sqli", 0.5),
            ("tokio-rt-worker", 0.0),
        ])
    );
}
