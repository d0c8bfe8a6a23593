//! `tomo ingest`: import logs of another capture source into a recording.

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use std::path::PathBuf;
use tomo_event::Id128;
use tomo_log::{RecordingMeta, Writer, WriterOptions};
use tomo_source_audit::{Options, Parser};

#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    /// Linux audit logs as auditd writes them (raw or ENRICHED).
    Audit,
}

#[derive(Args)]
pub struct IngestArgs {
    /// Format of the input files.
    #[arg(long, value_enum)]
    format: Format,
    /// The log files. Rotated files (audit.log.2, audit.log.1, audit.log)
    /// may be given in any order: they are sorted by their first timestamp.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Where to write the recording.
    #[arg(short, long)]
    output: PathBuf,
    /// Read the files in the order given instead of by first timestamp.
    #[arg(long)]
    keep_order: bool,
    /// Host id (UUID) for every event. Default: derived from each record's
    /// node= name, or this machine's id for records without one.
    #[arg(long)]
    host: Option<String>,
    /// Print the summary (with the first warnings) as JSON on stdout.
    #[arg(long)]
    json: bool,
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
}

/// Warnings printed in full; the rest are only counted.
const SHOWN_WARNINGS: usize = 20;

pub fn run(a: IngestArgs) -> Result<i32> {
    let Format::Audit = a.format;
    let host_override = a
        .host
        .as_deref()
        .map(|h| Id128::parse(h).with_context(|| format!("--host {h:?} is not a UUID")))
        .transpose()?;
    let local = tomo_capture_ptrace::local_ids().ok();
    let opts = Options {
        default_host: local.map(|(h, _)| h).unwrap_or_default(),
        host_override,
    };
    let total: u64 = a
        .files
        .iter()
        .map(|f| {
            std::fs::metadata(f)
                .map(|m| m.len())
                .with_context(|| format!("cannot read {}", f.display()))
        })
        .sum::<Result<u64>>()?;
    let bar = if a.quiet || a.json {
        indicatif::ProgressBar::hidden()
    } else {
        let b = indicatif::ProgressBar::new(total);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} {bytes}/{total_bytes} {wide_bar} {eta} {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b
    };
    let mut parser = Parser::new(opts.clone());
    // The header is written before the first event: take its ids from the
    // first record of the first file.
    let (host, boot) = tomo_source_audit::header_ids(&a.files, a.keep_order, &opts)?
        .unwrap_or((host_override.unwrap_or(opts.default_host), Id128::default()));
    let meta = RecordingMeta {
        host,
        boot,
        source: "audit".into(),
        command: Vec::new(),
        cut_from: None,
    };
    let mut writer = Writer::create(&a.output, meta, WriterOptions::default())
        .with_context(|| format!("cannot create recording {}", a.output.display()))?;
    let mut events = 0u64;
    let res = tomo_source_audit::read_files(
        &mut parser,
        &a.files,
        a.keep_order,
        &mut |n| bar.inc(n),
        &mut |ev| {
            events += 1;
            writer.append(&ev).map_err(std::io::Error::other)
        },
    );
    bar.finish_and_clear();
    let summary = writer
        .finish()
        .with_context(|| format!("cannot finish recording {}", a.output.display()))?;
    if let Err(e) = res {
        // An input that cannot be read at all leaves no half recording behind.
        let _ = std::fs::remove_file(&a.output);
        return Err(e.into());
    }
    let stats = parser.stats();
    let warnings = parser.warnings();
    if a.json {
        let j = serde_json::json!({
            "output": a.output,
            "events": events,
            "blocks": summary.blocks,
            "bytes": summary.bytes,
            "stats": stats,
            "warnings": warnings.iter().take(100).map(|w| w.to_string()).collect::<Vec<_>>(),
        });
        println!("{j}");
    } else {
        for w in warnings.iter().take(SHOWN_WARNINGS) {
            eprintln!("tomo: warning: {w}");
        }
        if stats.warnings as usize > SHOWN_WARNINGS {
            eprintln!(
                "tomo: … and {} more warnings",
                stats.warnings as usize - SHOWN_WARNINGS
            );
        }
        eprintln!(
            "tomo: {} lines, {} audit events ({} incomplete), {} bad lines → {} events in {} ({})",
            stats.lines,
            stats.events,
            stats.incomplete_events,
            stats.bad_lines,
            events,
            a.output.display(),
            crate::cmd_record::human_bytes(summary.bytes)
        );
        let skipped = stats.unmapped_syscalls + stats.unsupported_arch + stats.untracked_fd;
        if skipped > 0 {
            eprintln!(
                "tomo: skipped {} unmapped calls, {} of other architectures, {} on descriptors never seen opened",
                stats.unmapped_syscalls, stats.unsupported_arch, stats.untracked_fd
            );
        }
    }
    // Like `tomo events` on damage: the output is usable, but say so.
    Ok(if stats.bad_lines > 0 || stats.late_records > 0 {
        1
    } else {
        0
    })
}
