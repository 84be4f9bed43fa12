//! `switchyard keys`: virtual keys managed straight in the store the config names (running
//! gateways pick changes up within `keys.refresh`). A key is printed once, by `create` and
//! `rotate`; nothing else ever shows it.

use std::io::Write;

use anyhow::Context;
use switchyard_core::keys::{KeyFields, KeyRecord, KeyStore, DEFAULT_ROTATION_GRACE};

use crate::logcmd::{load, open, parse_args, runtime, Format};

/// Columns of `keys list`.
const COLUMNS: [&str; 8] = [
    "id",
    "name",
    "team",
    "user",
    "rpm",
    "tpm",
    "expires_at",
    "revoked_at",
];

fn fields(params: &[(String, String)], name: Option<String>) -> anyhow::Result<KeyFields> {
    let mut f = KeyFields {
        name,
        ..Default::default()
    };
    let num = |k: &str, v: &str| -> anyhow::Result<u64> {
        v.parse()
            .with_context(|| format!("--{k} `{v}` is not a whole number"))
    };
    for (k, v) in params {
        match k.as_str() {
            "team" => f.team = Some(Some(v.clone())),
            "user" => f.user = Some(Some(v.clone())),
            "alias" | "aliases" => {
                f.allowed_aliases = Some(Some(v.split(',').map(str::to_owned).collect()));
            }
            "rpm" => f.rpm = Some(Some(num(k, v)?)),
            "tpm" => f.tpm = Some(Some(num(k, v)?)),
            "budget" => {
                f.budget_usd =
                    Some(Some(v.parse().with_context(|| {
                        format!("--budget `{v}` is not a number")
                    })?));
            }
            "budget_period" => f.budget_period = Some(Some(v.clone())),
            "expires_in" => f.expires_in = Some(v.clone()),
            "tag" => {
                let (tk, tv) = v
                    .split_once('=')
                    .with_context(|| format!("--tag `{v}`: write key=value"))?;
                f.tags
                    .get_or_insert_with(Default::default)
                    .insert(tk.to_owned(), tv.to_owned());
            }
            other => anyhow::bail!("unknown option --{}", other.replace('_', "-")),
        }
    }
    Ok(f)
}

fn print_one(out: &mut impl Write, rec: &KeyRecord, key: Option<&str>) -> anyhow::Result<()> {
    let mut v = serde_json::to_value(rec)?;
    if let (Some(o), Some(k)) = (v.as_object_mut(), key) {
        o.insert("key".into(), k.into());
    }
    writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
    if key.is_some() {
        writeln!(
            out,
            "# Store the key now: it is not kept and cannot be shown again."
        )?;
    }
    Ok(())
}

fn cell(rec: &KeyRecord, col: &str) -> String {
    let opt = |v: Option<String>| v.unwrap_or_default();
    match col {
        "id" => rec.id.clone(),
        "name" => rec.name.clone(),
        "team" => opt(rec.team.clone()),
        "user" => opt(rec.user.clone()),
        "rpm" => opt(rec.rpm.map(|v| v.to_string())),
        "tpm" => opt(rec.tpm.map(|v| v.to_string())),
        "expires_at" => opt(rec.expires_at.map(|v| v.to_string())),
        "revoked_at" => opt(rec.revoked_at.map(|v| v.to_string())),
        _ => String::new(),
    }
}

/// `switchyard keys create|list|show|update|rotate|revoke ...`
pub fn keys(args: &[String], out: &mut impl Write) -> anyhow::Result<()> {
    let a = parse_args(args)?;
    let cfg = load(a.config)?;
    let rt = runtime()?;
    let ks = KeyStore::new(rt.block_on(open(&cfg))?);
    let mut params = a.params;
    let grace = match params.iter().position(|(k, _)| k == "grace") {
        Some(i) => {
            let (_, v) = params.remove(i);
            switchyard_core::config::units::parse_duration(&v)
                .map_err(|e| anyhow::anyhow!("--grace: {e}"))?
        }
        None => DEFAULT_ROTATION_GRACE,
    };
    let pos: Vec<&str> = a.positional.iter().map(String::as_str).collect();
    match pos.as_slice() {
        ["create", name] => {
            let f = fields(&params, Some((*name).to_owned()))?;
            let (rec, key) = rt.block_on(ks.create(f))?;
            print_one(out, &rec, Some(&key))
        }
        ["list"] => {
            let list = rt.block_on(ks.list())?;
            match a.format {
                Format::Json => {
                    writeln!(out, "{}", serde_json::to_string_pretty(&list)?)?;
                }
                Format::Csv | Format::Table => {
                    let sep = if a.format == Format::Csv { "," } else { "\t" };
                    writeln!(out, "{}", COLUMNS.join(sep))?;
                    for rec in &list {
                        let row: Vec<String> = COLUMNS.iter().map(|c| cell(rec, c)).collect();
                        writeln!(out, "{}", row.join(sep))?;
                    }
                }
            }
            Ok(())
        }
        ["show", id] => print_one(out, &rt.block_on(ks.get(id))?, None),
        ["update", id] => {
            let f = fields(&params, None)?;
            print_one(out, &rt.block_on(ks.update(id, f))?, None)
        }
        ["rotate", id] => {
            let (rec, key) = rt.block_on(ks.rotate(id, grace))?;
            print_one(out, &rec, Some(&key))
        }
        ["revoke", id] => print_one(out, &rt.block_on(ks.revoke(id))?, None),
        _ => anyhow::bail!(
            "usage: switchyard keys create NAME | list | show ID | update ID | rotate ID \
             [--grace 1h] | revoke ID  [--config FILE]"
        ),
    }
}
