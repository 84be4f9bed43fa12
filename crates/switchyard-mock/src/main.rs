//! `switchyard-mock`: the mock provider as a standalone process, for load benchmarks and
//! manual poking. Harnesses learn the port from the single line printed after binding.

#![forbid(unsafe_code)]

use std::io::Write as _;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use switchyard_mock::MockConfig;

const USAGE: &str = "\
usage: switchyard-mock [--listen ADDR] [--latency-ms N] [--chunk-delay-ms N] [--api-key KEY]

A mock LLM provider speaking OpenAI's (and Azure OpenAI's) chat completions,
embeddings and models APIs, Anthropic's Messages, token counting and models
APIs, AWS Bedrock's Converse and ConverseStream (SigV4-signed; signatures made
with the published test key AKIDMOCKSWITCHYARD01 are verified), and Google's Gemini
API (AI Studio and Vertex AI paths), with latency and fault knobs.

Per-request knobs: a \"mock\" object in the body, or the same JSON in an x-mock-knobs
header (latency_ms, chunk_delay_ms, words, status, retry_after, malformed,
disconnect_after_chunks, stall_after_chunks, tool_call, echo, ...). Scripted faults:
x-mock-schedule: 503,ok,429/7,slow=2000,drop=5 gives the n-th request with that header
value the n-th step (cycling).

options:
  --listen ADDR         address to bind (default 127.0.0.1:0, an ephemeral port)
  --latency-ms N        delay before response headers, in milliseconds (default 0)
  --chunk-delay-ms N    delay between streamed chunks, in milliseconds (default 0)
  --api-key KEY         require this key: as a bearer token or Azure api-key header
                        on OpenAI routes, as the x-api-key header on Anthropic routes,
                        as x-goog-api-key (or ?key=) on Gemini AI Studio routes and as
                        a bearer token on Vertex AI routes
  -h, --help            print this help

After binding, prints one line `switchyard-mock listening on http://IP:PORT`.";

/// Parsed command line.
struct Args {
    listen: SocketAddr,
    cfg: MockConfig,
}

/// What the command line asked for.
enum Command {
    Run(Args),
    Help,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Command, String> {
    let mut listen = SocketAddr::from(([127, 0, 0, 1], 0));
    let mut cfg = MockConfig::default();
    while let Some(arg) = args.next() {
        // Accept both `--flag value` and `--flag=value`.
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => {
                (flag.to_owned(), Some(value.to_owned()))
            }
            _ => (arg, None),
        };
        if flag == "-h" || flag == "--help" {
            return Ok(Command::Help);
        }
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--listen" => {
                let v = value()?;
                listen = v.parse().map_err(|e| format!("--listen {v:?}: {e}"))?;
            }
            "--latency-ms" => cfg.latency = Duration::from_millis(parse_ms(&flag, &value()?)?),
            "--chunk-delay-ms" => {
                cfg.chunk_delay = Duration::from_millis(parse_ms(&flag, &value()?)?);
            }
            "--api-key" => cfg.api_key = Some(value()?),
            _ => return Err(format!("unknown argument {flag:?}")),
        }
    }
    Ok(Command::Run(Args { listen, cfg }))
}

fn parse_ms(flag: &str, v: &str) -> Result<u64, String> {
    v.parse().map_err(|e| format!("{flag} {v:?}: {e}"))
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(Command::Run(args)) => args,
        Ok(Command::Help) => {
            let mut out = std::io::stdout().lock();
            return match writeln!(out, "{USAGE}").and_then(|()| out.flush()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(_) => ExitCode::FAILURE,
            };
        }
        Err(msg) => {
            eprintln!("switchyard-mock: {msg}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let listener = match tokio::net::TcpListener::bind(args.listen).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("switchyard-mock: cannot bind {}: {e}", args.listen);
            return ExitCode::FAILURE;
        }
    };
    let announced = listener.local_addr().and_then(|addr| {
        let mut out = std::io::stdout().lock();
        writeln!(out, "switchyard-mock listening on http://{addr}")?;
        out.flush()
    });
    if let Err(e) = announced {
        eprintln!("switchyard-mock: cannot announce the address: {e}");
        return ExitCode::FAILURE;
    }
    tokio::select! {
        served = switchyard_mock::serve(listener, args.cfg) => match served {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("switchyard-mock: serve failed: {e}");
                ExitCode::FAILURE
            }
        },
        // Open streams (stalled ones especially) must not delay exit, so stop at once.
        () = shutdown_signal() => ExitCode::SUCCESS,
    }
}

/// Resolves on ctrl-c or, on Unix, SIGTERM.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
