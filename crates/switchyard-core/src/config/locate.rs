//! Finds the line of a key path in a YAML text, for errors found after parsing.
//!
//! The YAML parser reports lines for syntax, type and unknown-key errors, but not for semantic
//! ones such as "this deployment names a provider that does not exist". This walks the block
//! structure by indentation, which covers the way config files are written; an item of a flow
//! sequence (`[a, b]`) is reported at its key's line, and for a flow mapping (`{a: 1}`) it
//! gives up and the error is reported with its key path only.

/// One step of a key path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    /// A mapping key.
    Key(String),
    /// A sequence index.
    Index(usize),
}

struct Line<'a> {
    no: usize,
    indent: usize,
    dash: Option<usize>,
    text: &'a str,
}

fn lines(text: &str) -> Vec<Line<'_>> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let trimmed = raw.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with("---") {
            continue;
        }
        let indent = raw.len() - trimmed.len();
        if let Some(rest) =
            trimmed
                .strip_prefix("- ")
                .or(if trimmed == "-" { Some("") } else { None })
        {
            let inner = rest.trim_start();
            let text_indent = indent + (trimmed.len() - inner.len());
            out.push(Line {
                no: i + 1,
                indent: text_indent,
                dash: Some(indent),
                text: inner,
            });
        } else {
            out.push(Line {
                no: i + 1,
                indent,
                dash: None,
                text: trimmed,
            });
        }
    }
    out
}

fn is_key(text: &str, key: &str) -> bool {
    [
        format!("{key}:"),
        format!("\"{key}\":"),
        format!("'{key}':"),
    ]
    .iter()
    .any(|p| {
        text.strip_prefix(p.as_str())
            .is_some_and(|r| r.is_empty() || r.starts_with([' ', '\t']))
    })
}

/// Returns the 1-based line where `path` is written, if it can be found.
pub fn locate(text: &str, path: &[Seg]) -> Option<usize> {
    let all = lines(text);
    let mut range: &[Line<'_>] = &all;
    let mut found: Option<usize> = None;
    for seg in path {
        match seg {
            Seg::Key(k) => {
                let level = range.iter().map(|l| l.indent).min()?;
                let pos = range
                    .iter()
                    .position(|l| l.indent == level && is_key(l.text, k))?;
                let line = &range[pos];
                found = Some(line.no);
                let rest = &range[pos + 1..];
                let end = rest
                    .iter()
                    .position(|l| l.indent <= line.indent)
                    .unwrap_or(rest.len());
                range = &rest[..end];
            }
            Seg::Index(n) => {
                // Nothing below the key: a flow sequence (`[a, b]`) on the key's own line.
                if range.is_empty() {
                    return found;
                }
                let level = range.iter().filter_map(|l| l.dash).min()?;
                let starts: Vec<usize> = range
                    .iter()
                    .enumerate()
                    .filter(|(_, l)| l.dash == Some(level))
                    .map(|(i, _)| i)
                    .collect();
                let start = *starts.get(*n)?;
                let end = starts.get(n + 1).copied().unwrap_or(range.len());
                found = Some(range[start].no);
                range = &range[start..end];
            }
        }
    }
    found
}
