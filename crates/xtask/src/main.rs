//! `cargo xtask`: project automation that needs more than a shell one-liner. Today that is
//! `bench`, the load benchmark that measures the gateway's overhead against the mock provider,
//! with nginx as a reference proxy, in one run on one machine.
//!
//! Arguments are parsed by hand: there are four flags, and a CLI framework would be the
//! largest dependency of the crate.

// Printing the benchmark report (and the usage text) to stdout is this tool's job.
#![allow(clippy::print_stdout)]

mod bench;

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};

const USAGE: &str = "\
cargo xtask: Switchyard project automation

USAGE:
    cargo xtask bench [--rate N] [--duration SECS] [--concurrency N] [--rounds N] [--no-build] [--quick]
    cargo xtask help

bench   Build the gateway and the mock in release mode, then measure, in one run, the mock
        directly, the gateway in front of it and nginx in front of it (when installed):
        fixed-rate latency (non-streaming and streaming) and closed-loop throughput, the
        gateway's peak memory, and what its request log costs (the gateway with and without
        it alternating in 1 s slices at the fixed rate, 30 each; --quick: 2). Prints a
        Markdown report and writes it to bench-out/latest.md and bench-out/latest.json.

        --rate N          open-loop request rate, req/s            (default 1000)
        --duration SECS   measured seconds per run                 (default 10)
        --concurrency N   closed-loop workers                      (default 64)
        --rounds N        interleaved rounds per scenario, cycling through the targets
                          so machine noise hits all of them alike   (default 5; --quick: 1)
        --no-build        use the binaries already in target/release
                          (the benchmark itself always runs as a release build,
                          so the load generator costs the shared cores little)
        --quick           2 s runs after a 0.5 s warm-up (default warm-up: 2 s);
                          an explicit --duration still wins
";

/// What the command line asks for.
#[derive(Debug, PartialEq)]
enum Cmd {
    Help,
    Bench(bench::Options),
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cmd = match parse(&args) {
        Ok(cmd) => cmd,
        Err(e) => return report(Err(e)),
    };
    match cmd {
        Cmd::Help => {
            print!("{USAGE}");
            ExitCode::SUCCESS
        }
        Cmd::Bench(_) if cfg!(debug_assertions) && std::env::var_os(REEXEC_GUARD).is_none() => {
            rerun_optimised(&args)
        }
        Cmd::Bench(opts) => report(bench::run(&opts)),
    }
}

fn report(result: Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Set on the optimised re-run, so it can never re-run itself again.
const REEXEC_GUARD: &str = "SWITCHYARD_XTASK_OPTIMISED";

/// Re-runs this command from an optimised build of xtask.
///
/// `cargo xtask` builds the dev profile, but the load generator shares two cores with the
/// processes it measures: an unoptimised hyper and tokio would spend several times the CPU
/// per request, taking it from the mock and the gateway and inflating every latency. The
/// workspace's profiles are not xtask's to change, so the bench hands itself to
/// `cargo run --release` instead (a no-op build once it is cached).
fn rerun_optimised(args: &[String]) -> ExitCode {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
    eprintln!("bench: re-running from an optimised build (cargo run --release -p xtask)");
    let status = std::process::Command::new(cargo)
        .args([
            "run",
            "--quiet",
            "--release",
            "--package",
            "xtask",
            "--manifest-path",
        ])
        .arg(manifest)
        .arg("--")
        .args(args)
        .env(REEXEC_GUARD, "1")
        .status();
    match status {
        Ok(s) => s
            .code()
            .and_then(|c| u8::try_from(c).ok())
            .map_or(ExitCode::FAILURE, ExitCode::from),
        Err(e) => report(Err(
            anyhow::Error::new(e).context("running cargo run --release")
        )),
    }
}

fn parse(args: &[String]) -> Result<Cmd> {
    let Some((cmd, rest)) = args.split_first() else {
        return Ok(Cmd::Help);
    };
    match cmd.as_str() {
        "help" | "--help" | "-h" => Ok(Cmd::Help),
        "bench" => parse_bench(rest).map(Cmd::Bench),
        other => bail!("unknown command `{other}`\n\n{USAGE}"),
    }
}

/// Parses the `bench` flags, as `--flag value` or `--flag=value`.
fn parse_bench(args: &[String]) -> Result<bench::Options> {
    let mut opts = bench::Options::default();
    let mut duration = None;
    let mut quick = false;
    let mut rounds = None;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) => (f, Some(v.to_owned())),
            None => (arg.as_str(), None),
        };
        let mut value = || -> Result<String> {
            match inline.clone() {
                Some(v) => Ok(v),
                None => it
                    .next()
                    .cloned()
                    .with_context(|| format!("{flag} needs a value")),
            }
        };
        match flag {
            "--rate" => opts.rate = parse_in_range(flag, &value()?, 1, 100_000)?,
            "--concurrency" => {
                let n: u32 = parse_in_range(flag, &value()?, 1, 4096)?;
                opts.concurrency = usize::try_from(n)?;
            }
            "--duration" => duration = Some(parse_secs(flag, &value()?)?),
            "--rounds" => rounds = Some(parse_in_range(flag, &value()?, 1, 100)?),
            "--no-build" if inline.is_none() => opts.build = false,
            "--quick" if inline.is_none() => quick = true,
            "--help" | "-h" => bail!("{USAGE}"),
            _ => bail!("unknown bench argument `{arg}`\n\n{USAGE}"),
        }
    }
    if quick {
        opts.quick = true;
        opts.duration = Duration::from_secs(2);
        opts.warmup = Duration::from_millis(500);
        opts.rounds = 1;
        opts.log_pairs = 2;
    }
    if let Some(r) = rounds {
        opts.rounds = r;
    }
    if let Some(d) = duration {
        opts.duration = d;
    }
    Ok(opts)
}

fn parse_in_range(flag: &str, value: &str, min: u32, max: u32) -> Result<u32> {
    let n: u32 = value
        .parse()
        .with_context(|| format!("{flag}: `{value}` is not a whole number"))?;
    if !(min..=max).contains(&n) {
        bail!("{flag}: {n} is outside {min}..={max}");
    }
    Ok(n)
}

/// Seconds, fractions allowed, bounded to an hour so a typo cannot start a day-long run.
fn parse_secs(flag: &str, value: &str) -> Result<Duration> {
    let secs: f64 = value
        .parse()
        .with_context(|| format!("{flag}: `{value}` is not a number of seconds"))?;
    if !(secs.is_finite() && secs > 0.0 && secs <= 3600.0) {
        bail!("{flag}: {value} is outside (0, 3600] seconds");
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn no_command_and_help_print_usage() {
        assert_eq!(parse(&[]).unwrap(), Cmd::Help);
        assert_eq!(parse(&args("help")).unwrap(), Cmd::Help);
        assert!(parse(&args("frobnicate")).is_err());
    }

    #[test]
    fn bench_defaults() {
        let Cmd::Bench(o) = parse(&args("bench")).unwrap() else {
            panic!("not bench")
        };
        assert_eq!(o, bench::Options::default());
        assert_eq!(o.rate, 1000);
        assert_eq!(o.concurrency, 64);
        assert_eq!(o.duration, Duration::from_secs(10));
        assert_eq!(o.warmup, Duration::from_secs(2));
        assert_eq!(o.log_pairs, 30);
        assert!(o.build);
    }

    #[test]
    fn bench_flags_both_spellings() {
        let Cmd::Bench(o) = parse(&args(
            "bench --rate 250 --duration=1.5 --concurrency=8 --no-build",
        ))
        .unwrap() else {
            panic!("not bench")
        };
        assert_eq!(o.rate, 250);
        assert_eq!(o.duration, Duration::from_millis(1500));
        assert_eq!(o.concurrency, 8);
        assert!(!o.build);
        assert!(!o.quick);
    }

    #[test]
    fn quick_shortens_but_explicit_duration_wins() {
        let Cmd::Bench(o) = parse(&args("bench --quick")).unwrap() else {
            panic!("not bench")
        };
        assert_eq!(o.duration, Duration::from_secs(2));
        assert_eq!(o.warmup, Duration::from_millis(500));
        assert_eq!(o.log_pairs, 2);
        let Cmd::Bench(o) = parse(&args("bench --duration 5 --quick")).unwrap() else {
            panic!("not bench")
        };
        assert_eq!(o.duration, Duration::from_secs(5));
        assert_eq!(o.warmup, Duration::from_millis(500));
    }

    #[test]
    fn bad_values_are_rejected() {
        for bad in [
            "bench --rate",
            "bench --rate 0",
            "bench --rate x",
            "bench --duration -1",
            "bench --duration nan",
            "bench --concurrency 100000",
            "bench --no-build=1",
            "bench --bogus",
        ] {
            assert!(parse(&args(bad)).is_err(), "{bad}");
        }
    }
}
