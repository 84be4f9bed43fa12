//! The processes under test: spawning the mock, the gateway and nginx, waiting until each
//! is ready, killing them on every exit path, and reading their memory use.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use http::{Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use tokio::time::Instant;

use super::load::HttpClient;

/// A child process that is killed and reaped when dropped, so no run (failed, interrupted
/// or successful) leaves a mock, gateway or nginx behind holding a port.
pub(crate) struct Proc {
    name: &'static str,
    child: Child,
    /// Stop with SIGTERM first. nginx needs it: SIGKILL on its master would orphan the
    /// workers, while SIGTERM makes the master stop them before exiting.
    graceful: bool,
    log: Option<PathBuf>,
}

impl Proc {
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The exit status if the process has already exited.
    pub(crate) fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// The last lines of the process's log, for error messages.
    pub(crate) fn log_tail(&self) -> String {
        self.log.as_deref().map(log_tail).unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.exited().is_some() {
            return;
        }
        if self.graceful {
            let _ = Command::new("kill")
                .args(["-TERM", &self.pid().to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            for _ in 0..150 {
                if self.exited().is_some() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            eprintln!("bench: {} ignored SIGTERM; killing it", self.name);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A scratch directory for configs and logs, removed when dropped.
pub(crate) struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub(crate) fn new() -> Result<Self> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path =
            std::env::temp_dir().join(format!("switchyard-bench-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(Self { path })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Finds a free local port by binding port 0 and letting it go. Another process could take
/// it in between, but on a machine running only this benchmark that does not happen.
pub(crate) fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("binding an ephemeral port")?;
    Ok(listener.local_addr()?.port())
}

/// Parses the mock's readiness line, `switchyard-mock listening on http://IP:PORT`.
pub(crate) fn parse_mock_line(line: &str) -> Option<SocketAddr> {
    let (_, rest) = line.split_once("listening on http://")?;
    rest.trim().trim_end_matches('/').parse().ok()
}

fn log_file(dir: &Path, name: &str) -> Result<(PathBuf, File)> {
    let path = dir.join(name);
    let file = File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    Ok((path, file))
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(20)..].join("\n");
    if tail.is_empty() {
        String::from("(log empty)")
    } else {
        tail
    }
}

/// Starts `switchyard-mock` on an ephemeral port and returns it with its address, which it
/// announces on stdout.
pub(crate) async fn start_mock(bin: &Path, dir: &Path) -> Result<(Proc, SocketAddr)> {
    let (log, stderr) = log_file(dir, "mock.log")?;
    let mut child = Command::new(bin)
        .args(["--listen", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    let stdout = child.stdout.take();
    let mut proc = Proc {
        name: "switchyard-mock",
        child,
        graceful: false,
        log: Some(log),
    };
    let stdout = stdout.context("the mock's stdout was not captured")?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    // The thread keeps draining stdout after the line, so the mock can never block on a
    // full pipe; it ends when the mock exits.
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(addr) = parse_mock_line(&line) {
                if let Some(tx) = tx.take() {
                    let _ = tx.send(addr);
                }
            }
        }
    });
    match tokio::time::timeout(Duration::from_secs(15), rx).await {
        Ok(Ok(addr)) => Ok((proc, addr)),
        _ => {
            let status = proc
                .exited()
                .map_or_else(|| String::from("still running"), |s| s.to_string());
            bail!(
                "switchyard-mock did not print `switchyard-mock listening on http://IP:PORT` \
                 within 15 s ({status}); its log:\n{}",
                proc.log_tail()
            )
        }
    }
}

/// The gateway config for the benchmark: one alias, `bench`, served by one deployment on
/// the mock, so every request takes the plain proxy path. The request log is on (its
/// default) with a SQLite file under `dir`, or off when `request_log` is false: the two
/// gateways show what logging costs.
pub(crate) fn gateway_config(port: u16, mock: SocketAddr, dir: &Path, request_log: bool) -> String {
    let log = if request_log {
        format!(
            "store:\n  sqlite: \"{}\"\nrequest_log:\n  spill_dir: \"{}\"\n",
            dir.join(format!("gateway-{port}.db")).display(),
            dir.join(format!("gateway-{port}-spill")).display()
        )
    } else {
        String::from("request_log:\n  enabled: false\n")
    };
    format!(
        "server:\n  listen: \"127.0.0.1:{port}\"\n  log_level: warn\n\
         providers:\n  mock:\n    type: openai\n    base_url: \"http://{mock}/v1\"\n\
         models:\n  bench:\n    deployments:\n      - provider: mock\n        model: mock-gpt\n{log}"
    )
}

/// Starts `switchyard serve` against the mock and waits until `/health` answers 200.
pub(crate) async fn start_gateway(
    bin: &Path,
    dir: &Path,
    mock: SocketAddr,
    client: &HttpClient,
    request_log: bool,
) -> Result<(Proc, SocketAddr)> {
    if !bin.exists() {
        bail!("{} does not exist", bin.display());
    }
    let port = free_port()?;
    let config = dir.join(format!("gateway-{port}.yaml"));
    std::fs::write(&config, gateway_config(port, mock, dir, request_log))
        .with_context(|| format!("writing {}", config.display()))?;
    let (log, out) = log_file(dir, &format!("gateway-{port}.log"))?;
    let err = out.try_clone()?;
    let child = Command::new(bin)
        .arg("serve")
        .arg("--config")
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    let mut proc = Proc {
        name: "switchyard",
        child,
        graceful: false,
        log: Some(log),
    };
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let health: Uri = format!("http://{addr}/health").parse()?;
    wait_ready(&mut proc, client, &health, Duration::from_secs(30)).await?;
    Ok((proc, addr))
}

/// Finds nginx where Debian installs it, then on `PATH`.
pub(crate) fn find_nginx() -> Option<PathBuf> {
    let sbin = PathBuf::from("/usr/sbin/nginx");
    if sbin.is_file() {
        return Some(sbin);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("nginx"))
        .find(|p| p.is_file())
}

/// How many nginx workers the reference proxy runs; see `nginx_config`.
pub(crate) const NGINX_WORKERS: &str = "auto";

/// A minimal reverse proxy config, tuned the way one would tune nginx in front of an LLM
/// API: upstream keep-alive (HTTP/1.1 with the `Connection` header cleared) and no response
/// buffering, so SSE events pass through as they come.
///
/// `worker_processes auto` (one worker per core, as a default install does) because the
/// gateway runs a multi-threaded runtime that also uses every core; one worker would
/// handicap the reference the gateway is compared against.
pub(crate) fn nginx_config(dir: &Path, port: u16, mock: SocketAddr) -> String {
    let d = dir.display();
    format!(
        "worker_processes {NGINX_WORKERS};
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{
    worker_connections 4096;
}}
http {{
    access_log off;
    client_body_temp_path {d}/client_body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    upstream mock {{
        server {mock};
        keepalive 64;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://mock;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
            proxy_buffering off;
        }}
    }}
}}
"
    )
}

/// Starts nginx in the foreground as a reverse proxy to the mock and waits until a request
/// through it reaches the mock.
pub(crate) async fn start_nginx(
    bin: &Path,
    dir: &Path,
    mock: SocketAddr,
    client: &HttpClient,
) -> Result<(Proc, SocketAddr)> {
    let dir = dir.join("nginx");
    std::fs::create_dir_all(&dir)?;
    let port = free_port()?;
    let conf = dir.join("nginx.conf");
    std::fs::write(&conf, nginx_config(&dir, port, mock))
        .with_context(|| format!("writing {}", conf.display()))?;
    let (log, out) = log_file(&dir, "stderr.log")?;
    let err = out.try_clone()?;
    let mut prefix = dir.clone().into_os_string();
    prefix.push("/");
    let child = Command::new(bin)
        .arg("-p")
        .arg(&prefix)
        .arg("-e")
        .arg(dir.join("error.log"))
        .arg("-c")
        .arg(&conf)
        // In the foreground, so the guard's pid is the master and stopping it stops all.
        .args(["-g", "daemon off;"])
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    let mut proc = Proc {
        name: "nginx",
        child,
        graceful: true,
        log: Some(log),
    };
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let models: Uri = format!("http://{addr}/v1/models").parse()?;
    if let Err(e) = wait_ready(&mut proc, client, &models, Duration::from_secs(10)).await {
        let errors = log_tail(&dir.join("error.log"));
        return Err(e.context(format!("nginx error.log:\n{errors}")));
    }
    Ok((proc, addr))
}

/// Polls `GET uri` every 100 ms until it answers 200, the process exits, or `limit` passes.
async fn wait_ready(
    proc: &mut Proc,
    client: &HttpClient,
    uri: &Uri,
    limit: Duration,
) -> Result<()> {
    let deadline = Instant::now() + limit;
    let mut last = String::from("no attempt");
    while Instant::now() < deadline {
        if let Some(status) = proc.exited() {
            bail!(
                "{} exited during startup ({status}); its output:\n{}",
                proc.name,
                proc.log_tail()
            );
        }
        let req = Request::get(uri.clone()).body(Full::new(Bytes::new()))?;
        match tokio::time::timeout(Duration::from_secs(1), client.request(req)).await {
            Ok(Ok(resp)) => {
                let status = resp.status();
                let _ = resp.into_body().collect().await;
                if status == StatusCode::OK {
                    return Ok(());
                }
                last = format!("GET {uri} answered {status}");
            }
            Ok(Err(e)) => last = format!("GET {uri}: {e}"),
            Err(_) => last = format!("GET {uri}: no answer within 1 s"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!(
        "{} was not ready within {limit:?} (last: {last}); its output:\n{}",
        proc.name,
        proc.log_tail()
    )
}

/// Reads one `kB` field (`VmHWM`, `VmRSS`) of `/proc/<pid>/status`.
pub(crate) fn proc_status_kb(pid: u32, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status_field_kb(&text, key)
}

/// CPU time (user + system) the process used so far, in seconds, from `/proc/<pid>/stat`.
pub(crate) fn cpu_seconds(pid: u32) -> Option<f64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat_cpu_ticks(&text).map(|ticks| ticks as f64 / CLOCK_TICKS_PER_SECOND)
}

/// CPU seconds each thread of `pid` ran, summed by thread name (`switchyard-work`,
/// `switchyard-sqli`, `tokio-rt-worker`, ...), from the scheduler's nanosecond counts
/// (`/proc/PID/task/TID/schedstat`). It shows where a process's CPU goes, e.g. how much of
/// the request log's cost is its writer's and SQLite's threads and how much the request
/// workers'. The request log comparison also sums it for the gateway's total: nanoseconds
/// where the process total counts 10 ms ticks. A thread that exits between two readings takes
/// its time with it; the gateway's threads (workers, SQLite's, the runtime's) live as long as
/// it does.
pub(crate) fn thread_cpu_seconds(pid: u32) -> Option<BTreeMap<String, f64>> {
    let mut by_name = BTreeMap::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))
        .ok()?
        .flatten()
    {
        let dir = task.path();
        let (Ok(name), Ok(stat)) = (
            std::fs::read_to_string(dir.join("comm")),
            std::fs::read_to_string(dir.join("schedstat")),
        ) else {
            continue;
        };
        if let Some(ns) = schedstat_run_ns(&stat) {
            *by_name.entry(name.trim().to_owned()).or_insert(0.0) += ns as f64 / 1e9;
        }
    }
    (!by_name.is_empty()).then_some(by_name)
}

/// The time on the CPU, in ns: the first field of a `schedstat` line.
pub(crate) fn schedstat_run_ns(line: &str) -> Option<u64> {
    line.split_whitespace().next()?.parse().ok()
}

/// `USER_HZ`: the unit of `/proc/<pid>/stat` times; 100 on every Linux the bench targets.
const CLOCK_TICKS_PER_SECOND: f64 = 100.0;

/// `utime + stime` (fields 14 and 15) of a `/proc/<pid>/stat` line. The command name (field 2)
/// may hold spaces and parentheses, so fields are counted after its last `)`.
pub(crate) fn stat_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// Parses a line such as `VmHWM:     12345 kB` out of a `/proc/<pid>/status` text.
pub(crate) fn status_field_kb(status: &str, key: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(key)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// Samples a process's `VmRSS` every 100 ms on its own thread and keeps the maximum: a
/// cross-check of the kernel's `VmHWM`, which it should never exceed.
pub(crate) struct RssSampler {
    stop: Arc<AtomicBool>,
    max_kb: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

impl RssSampler {
    pub(crate) fn start(pid: u32) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let max_kb = Arc::new(AtomicU64::new(0));
        let thread = {
            let stop = Arc::clone(&stop);
            let max_kb = Arc::clone(&max_kb);
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if let Some(kb) = proc_status_kb(pid, "VmRSS") {
                        max_kb.fetch_max(kb, Ordering::Relaxed);
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            })
        };
        Self {
            stop,
            max_kb,
            thread: Some(thread),
        }
    }

    /// Stops sampling and returns the largest `VmRSS` seen, if any sample succeeded.
    pub(crate) fn finish(mut self) -> Option<u64> {
        self.stop_thread();
        Some(self.max_kb.load(Ordering::Relaxed)).filter(|&kb| kb > 0)
    }

    fn stop_thread(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for RssSampler {
    fn drop(&mut self) {
        self.stop_thread();
    }
}
