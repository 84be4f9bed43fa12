//! `switchyard requests` and `switchyard stats`: the request log read straight from the store
//! the config names, printed as a table, CSV or JSON.

use std::io::Write;

use anyhow::Context;
use serde_json::Value;
use switchyard_core::config::{self, env, Config};
use switchyard_core::reqlog::query::{self, Query};
use switchyard_core::store::Store;

/// Output formats.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Table,
    Csv,
    Json,
}

/// Columns printed for a request list (JSON prints every field).
const REQUEST_COLUMNS: [&str; 13] = [
    "started_at",
    "request_id",
    "key_name",
    "alias",
    "deployment",
    "status",
    "outcome",
    "error_kind",
    "latency_ms",
    "ttft_ms",
    "prompt_tokens",
    "completion_tokens",
    "cost_usd",
];

/// Columns after the group-by dimensions in stats output.
const STATS_COLUMNS: [&str; 11] = [
    "count",
    "errors",
    "error_rate",
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
    "cost_usd",
    "cost_unknown",
    "p50_ms",
    "p95_ms",
    "p99_ms",
];

pub(crate) struct Args {
    pub(crate) config: Option<String>,
    pub(crate) format: Format,
    pub(crate) positional: Vec<String>,
    pub(crate) params: Vec<(String, String)>,
}

pub(crate) fn parse_args(args: &[String]) -> anyhow::Result<Args> {
    let mut out = Args {
        config: None,
        format: Format::Table,
        positional: Vec::new(),
        params: Vec::new(),
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let Some(flag) = a.strip_prefix("--") else {
            out.positional.push(a.clone());
            continue;
        };
        let (name, inline) = match flag.split_once('=') {
            Some((n, v)) => (n.to_owned(), Some(v.to_owned())),
            None => (flag.to_owned(), None),
        };
        let value = match inline {
            Some(v) => v,
            None => it
                .next()
                .cloned()
                .with_context(|| format!("--{name} needs a value"))?,
        };
        match name.as_str() {
            "config" => out.config = Some(value),
            "format" => {
                out.format = match value.as_str() {
                    "table" => Format::Table,
                    "csv" => Format::Csv,
                    "json" => Format::Json,
                    other => anyhow::bail!("--format `{other}`: use table, csv or json"),
                }
            }
            _ => out.params.push((name.replace('-', "_"), value)),
        }
    }
    Ok(out)
}

pub(crate) fn load(path: Option<String>) -> anyhow::Result<Config> {
    let path = path.or_else(|| {
        std::env::var(env::ENV_CONFIG)
            .ok()
            .filter(|p| !p.is_empty())
    });
    match path {
        Some(p) => config::load_file(&p, &env::ProcessEnv)
            .map_err(|e| anyhow::anyhow!("invalid config `{p}`:\n{e}")),
        None => Ok(config::embedded_default(&env::ProcessEnv)),
    }
}

pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

pub(crate) async fn open(cfg: &Config) -> anyhow::Result<Store> {
    Store::open(&cfg.store)
        .await
        .with_context(|| format!("cannot open the store ({})", cfg.store.describe()))
}

fn parse_query(params: &[(String, String)]) -> anyhow::Result<Query> {
    Query::parse(
        params.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        switchyard_core::store::unix_millis(),
    )
    .map_err(|e| anyhow::anyhow!("{}", e.replace('`', "")))
}

/// `switchyard requests [FILTERS]` or `switchyard requests show ID`.
pub fn requests(args: &[String], out: &mut impl Write) -> anyhow::Result<()> {
    let a = parse_args(args)?;
    let cfg = load(a.config)?;
    let rt = runtime()?;
    match a.positional.as_slice() {
        [] => {
            let q = parse_query(&a.params)?;
            let (data, next) = rt.block_on(async {
                let store = open(&cfg).await?;
                query::list(&store, &q).await.map_err(anyhow::Error::from)
            })?;
            match a.format {
                Format::Json => {
                    let doc = serde_json::json!({"data": data, "next_cursor": next});
                    writeln!(out, "{}", serde_json::to_string_pretty(&doc)?)?;
                }
                f => {
                    print_rows(out, f, &REQUEST_COLUMNS, &data)?;
                    if let (Some(next), Format::Table) = (next, f) {
                        writeln!(out, "(more: --cursor {next})")?;
                    }
                }
            }
        }
        [cmd, id] if cmd == "show" => {
            anyhow::ensure!(a.params.is_empty(), "`requests show` takes no filters");
            let found = rt.block_on(async {
                let store = open(&cfg).await?;
                query::get(&store, id).await.map_err(anyhow::Error::from)
            })?;
            let Some(r) = found else {
                anyhow::bail!("no request `{id}` in the request log");
            };
            match a.format {
                Format::Json => writeln!(out, "{}", serde_json::to_string_pretty(&r)?)?,
                _ => {
                    if let Value::Object(o) = &r {
                        let width = o.keys().map(String::len).max().unwrap_or(0);
                        for (k, v) in o {
                            writeln!(out, "{k:width$}  {}", cell(v))?;
                        }
                    }
                }
            }
        }
        other => anyhow::bail!(
            "unexpected arguments {other:?}; use `switchyard requests [--since 24h ...]` or \
             `switchyard requests show ID`"
        ),
    }
    Ok(())
}

/// `switchyard stats --by alias,model --since 24h [--bucket hour]`.
pub fn stats(args: &[String], out: &mut impl Write) -> anyhow::Result<()> {
    let g = grouped(args, &STATS_COLUMNS)?;
    if g.format == Format::Json {
        writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({"data": g.data}))?
        )?;
        return Ok(());
    }
    print_rows(out, g.format, &g.cols(), &g.data)
}

/// The aggregates `stats` and `spend` print: the query's groups read from the store, and
/// the columns to show (group-by dimensions, the time bucket, then `tail`).
struct Grouped {
    format: Format,
    names: Vec<String>,
    tail: &'static [&'static str],
    data: Vec<Value>,
}

impl Grouped {
    fn cols(&self) -> Vec<&str> {
        self.names
            .iter()
            .map(String::as_str)
            .chain(self.tail.iter().copied())
            .collect()
    }
}

fn grouped(args: &[String], tail: &'static [&'static str]) -> anyhow::Result<Grouped> {
    let a = parse_args(args)?;
    anyhow::ensure!(
        a.positional.is_empty(),
        "unexpected arguments {:?}",
        a.positional
    );
    let cfg = load(a.config)?;
    let q = parse_query(&a.params)?;
    let rt = runtime()?;
    let data = rt.block_on(async {
        let store = open(&cfg).await?;
        query::stats(&store, &q).await.map_err(anyhow::Error::from)
    })?;
    let mut names: Vec<String> = q.by.iter().map(|d| q.dim_name(*d)).collect();
    if q.bucket.is_some() {
        names.push("bucket".to_owned());
    }
    Ok(Grouped {
        format: a.format,
        names,
        tail,
        data,
    })
}

/// Columns after the group-by dimensions in spend output.
const SPEND_COLUMNS: [&str; 6] = [
    "count",
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
    "cost_usd",
    "cost_unknown",
];

/// `switchyard spend --by team,tag:feature,day --since 7d`: cost grouped by any combination
/// of tag (`tag:<key>` for one key), team, key, user, alias, provider, model and day/hour.
pub fn spend(args: &[String], out: &mut impl Write) -> anyhow::Result<()> {
    let g = grouped(args, &SPEND_COLUMNS)?;
    let cols = g.cols();
    if g.format == Format::Json {
        let total: i64 = g.data.iter().filter_map(|r| r["cost_nanos"].as_i64()).sum();
        let rows: Vec<Value> = g
            .data
            .iter()
            .map(|r| {
                Value::Object(
                    cols.iter()
                        .map(|c| ((*c).to_owned(), r.get(*c).cloned().unwrap_or(Value::Null)))
                        .collect(),
                )
            })
            .collect();
        writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({"total_cost_usd": total as f64 / 1e9, "data": rows})
            )?
        )?;
        return Ok(());
    }
    print_rows(out, g.format, &cols, &g.data)
}

/// A value as one table or CSV cell.
fn cell(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Number(n) => match n.as_f64() {
            Some(f) if !n.is_i64() && !n.is_u64() => {
                let s = format!("{f:.3}");
                s.trim_end_matches('0').trim_end_matches('.').to_owned()
            }
            _ => n.to_string(),
        },
        other => other.to_string(),
    }
}

fn csv_escape(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

fn print_rows(
    out: &mut impl Write,
    f: Format,
    cols: &[&str],
    rows: &[Value],
) -> anyhow::Result<()> {
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| cols.iter().map(|c| cell(&r[*c])).collect())
        .collect();
    if f == Format::Csv {
        writeln!(out, "{}", cols.join(","))?;
        for row in &cells {
            let line: Vec<String> = row.iter().map(|c| csv_escape(c)).collect();
            writeln!(out, "{}", line.join(","))?;
        }
        return Ok(());
    }
    let widths: Vec<usize> = cols
        .iter()
        .enumerate()
        .map(|(i, c)| {
            cells
                .iter()
                .map(|r| r[i].chars().count())
                .max()
                .unwrap_or(0)
                .max(c.len())
        })
        .collect();
    let line = |vals: Vec<&str>| -> String {
        vals.iter()
            .zip(&widths)
            .map(|(v, w)| format!("{v:w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    writeln!(out, "{}", line(cols.to_vec()))?;
    for row in &cells {
        writeln!(out, "{}", line(row.iter().map(String::as_str).collect()))?;
    }
    if cells.is_empty() {
        writeln!(out, "(no requests)")?;
    }
    Ok(())
}
