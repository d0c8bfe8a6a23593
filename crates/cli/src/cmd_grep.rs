//! `tomo grep`: which processes read or wrote a string, in which file,
//! socket or pipe, when — over the bytes `tomo record --content` kept.
//!
//! Exit codes like grep's: 0 found, 1 not found, 2 error.

use crate::{load, timearg};
use anyhow::{Context, Result};
use clap::Args;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use tomo_log::Reader;
use tomo_query::{fmt_rel, origin_ns, ContentMatch, ContentPattern, ContentScanner};

#[derive(Args)]
pub struct GrepArgs {
    /// The recording (made with `tomo record --content`).
    recording: PathBuf,
    /// What to look for: a regular expression (Rust regex syntax, on bytes;
    /// `(?i)` ignores case), or a plain string with -F.
    pattern: String,
    /// The pattern is a plain string, not a regular expression.
    #[arg(short = 'F', long)]
    fixed_strings: bool,
    /// Print the matches as a JSON array.
    #[arg(long)]
    json: bool,
    /// Show UUIDs of processes and objects.
    #[arg(long)]
    uuids: bool,
}

pub fn run(a: GrepArgs) -> Result<i32> {
    let pattern = if a.fixed_strings {
        ContentPattern::fixed(&a.pattern)
    } else {
        ContentPattern::regex(&a.pattern)
    }?;
    let graph = load::graph(&a.recording)?;
    let reader = Reader::open(&a.recording)
        .with_context(|| format!("cannot open {}", a.recording.display()))?;
    let mut scanner = ContentScanner::new(pattern);
    let mut matches: Vec<ContentMatch> = Vec::new();
    let mut damaged = false;
    for item in reader {
        match item {
            Ok(ev) => scanner.scan(&graph, &ev, &mut matches),
            Err(e) => {
                eprintln!("tomo: warning: {e}; searched the events before it");
                damaged = true;
                break;
            }
        }
    }
    if scanner.content_events == 0 {
        eprintln!(
            "tomo: {} holds no content (record with `tomo record --content`)",
            a.recording.display()
        );
    }
    let out = std::io::stdout();
    let mut out = BufWriter::new(out.lock());
    if a.json {
        serde_json::to_writer(&mut out, &matches)?;
        writeln!(out)?;
    } else {
        let origin = origin_ns(&graph);
        for m in &matches {
            let who = match (&m.exe, a.uuids, &m.process) {
                (Some(exe), true, Some(u)) => format!("{}[{}] {u}", basename(exe), m.pid),
                (Some(exe), _, _) => format!("{}[{}]", basename(exe), m.pid),
                (None, _, _) => format!("pid {}", m.pid),
            };
            let what = match (a.uuids, &m.object) {
                (true, Some(u)) => format!("{} {u}", m.object_name),
                _ => m.object_name.clone(),
            };
            let at = m.offset.map(|o| format!(" @{o}")).unwrap_or_default();
            writeln!(
                out,
                "{}  {:<5}  {}  {}{}{}  \"{}\"",
                fmt_rel(m.ts_ns, origin),
                m.dir,
                who,
                what,
                at,
                if m.spans_calls {
                    " (across 2 calls)"
                } else {
                    ""
                },
                m.context
            )?;
        }
        if !matches.is_empty() {
            writeln!(
                out,
                "{} matches in {} bytes of content; times from {}",
                matches.len(),
                scanner.content_bytes,
                timearg::rfc3339(origin)
            )?;
        }
    }
    out.flush()?;
    Ok(if damaged {
        2
    } else if matches.is_empty() {
        1
    } else {
        0
    })
}

fn basename(p: &str) -> &str {
    p.rsplit('/').find(|s| !s.is_empty()).unwrap_or(p)
}
