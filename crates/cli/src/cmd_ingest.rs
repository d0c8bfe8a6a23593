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
    /// DARPA Transparent Computing CDM records, JSON encoding (CDM 18/19/20).
    Cdm,
    /// `strace -f -tt -yy` (or -ttt, -T) output.
    Strace,
}

#[derive(Args)]
pub struct IngestArgs {
    /// Format of the input files.
    #[arg(long, value_enum)]
    pub(crate) format: Format,
    /// The input files. Rotated audit logs (audit.log.2, audit.log.1,
    /// audit.log) may be given in any order: they are sorted by their first
    /// timestamp. CDM files are read in the order given.
    #[arg(required = true, value_name = "FILE")]
    pub(crate) files: Vec<PathBuf>,
    /// Where to write the recording.
    #[arg(short, long)]
    pub(crate) output: PathBuf,
    /// Read the files in the order given instead of by first timestamp.
    #[arg(long)]
    pub(crate) keep_order: bool,
    /// Host id (UUID) for every event. Default: derived from each record's
    /// node= name, or this machine's id for records without one.
    #[arg(long)]
    pub(crate) host: Option<String>,
    /// strace -t/-tt output: the local date of its first line
    /// (YYYY-MM-DD). Default: from the file's modification time.
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub(crate) date: Option<String>,
    /// Print the summary (with the first warnings) as JSON on stdout.
    #[arg(long)]
    pub(crate) json: bool,
    /// No progress bar.
    #[arg(long, short)]
    pub(crate) quiet: bool,
}

/// Warnings printed in full; the rest are only counted.
const SHOWN_WARNINGS: usize = 20;

pub fn run(a: IngestArgs) -> Result<i32> {
    match a.format {
        Format::Audit => run_audit(a),
        Format::Cdm => run_cdm(a),
        Format::Strace => run_strace(a),
    }
}

/// The progress bar over `total` input bytes (hidden with --quiet/--json).
pub(crate) fn progress_bar(a: &IngestArgs, total: u64) -> indicatif::ProgressBar {
    if a.quiet || a.json {
        return indicatif::ProgressBar::hidden();
    }
    let b = indicatif::ProgressBar::new(total);
    b.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} {bytes}/{total_bytes} {wide_bar} {eta} {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    b
}

pub(crate) fn total_bytes(files: &[PathBuf]) -> Result<u64> {
    files
        .iter()
        .map(|f| {
            std::fs::metadata(f)
                .map(|m| m.len())
                .with_context(|| format!("cannot read {}", f.display()))
        })
        .sum()
}

pub(crate) fn host_arg(a: &IngestArgs) -> Result<Option<Id128>> {
    a.host
        .as_deref()
        .map(|h| Id128::parse(h).with_context(|| format!("--host {h:?} is not a UUID")))
        .transpose()
}

fn run_cdm(a: IngestArgs) -> Result<i32> {
    use tomo_source_cdm as cdm;
    let local = tomo_capture_ptrace::local_ids().ok();
    let opts = cdm::Options {
        default_host: local.map(|(h, _)| h).unwrap_or_default(),
        host_override: host_arg(&a)?,
    };
    let total = total_bytes(&a.files)?;
    // Two passes over the input (definitions, then events): the bar counts both.
    let bar = progress_bar(&a, 2 * total);
    bar.set_message("pass 1/2: definitions");
    let started = std::time::Instant::now();
    let mut imp = cdm::Importer::new(opts);
    cdm::define_files(&mut imp, &a.files, &mut |n| bar.inc(n))?;
    let pass1 = started.elapsed().as_secs_f64();
    let (host, boot) = imp.header_ids();
    let meta = RecordingMeta {
        host,
        boot,
        source: "cdm".into(),
        command: Vec::new(),
        cut_from: None,
        host_name: None,
    };
    let mut writer = Writer::create(&a.output, meta, WriterOptions::default())
        .with_context(|| format!("cannot create recording {}", a.output.display()))?;
    bar.set_message("pass 2/2: events");
    let res = cdm::event_files(&mut imp, &a.files, &mut |n| bar.inc(n), &mut |ev| {
        writer.append(&ev).map_err(std::io::Error::other)
    });
    bar.finish_and_clear();
    let summary = writer
        .finish()
        .with_context(|| format!("cannot finish recording {}", a.output.display()))?;
    if let Err(e) = res {
        let _ = std::fs::remove_file(&a.output);
        return Err(e.into());
    }
    let secs = started.elapsed().as_secs_f64();
    let stats = imp.stats();
    let warnings = imp.warnings();
    let cdm_events: u64 = stats.events.values().sum();
    if a.json {
        let j = serde_json::json!({
            "output": a.output,
            "events": stats.events_out,
            "blocks": summary.blocks,
            "bytes": summary.bytes,
            "seconds": secs,
            "definitions_seconds": pass1,
            "stats": stats,
            "warnings": warnings.iter().take(100).map(|w| w.to_string()).collect::<Vec<_>>(),
        });
        println!("{j}");
    } else {
        print_warnings(warnings, stats.warnings);
        let records: Vec<String> = stats
            .records
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        eprintln!(
            "tomo: {} lines ({}), {} bad lines → {} events in {} ({}) in {:.1} s ({:.1} s for the definitions; {:.0} CDM events/s)",
            stats.lines,
            records.join(", "),
            stats.bad_lines,
            stats.events_out,
            a.output.display(),
            crate::cmd_record::human_bytes(summary.bytes),
            secs,
            pass1,
            cdm_events as f64 / secs.max(1e-9),
        );
        let mapped: u64 = stats.mapped.values().sum();
        let skipped: Vec<String> = stats
            .skipped
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        eprintln!(
            "tomo: CDM events: {mapped} mapped, {} skipped{}{}",
            cdm_events - mapped,
            if skipped.is_empty() { "" } else { ": " },
            skipped.join(", ")
        );
        let m = &stats.mapping;
        if m.undefined_subjects + m.undefined_objects + m.unfit > 0 {
            eprintln!(
                "tomo: {} events with an undefined subject (skipped), {} references to undefined objects (kept, kind unknown), {} events that did not fit their type (skipped)",
                m.undefined_subjects, m.undefined_objects, m.unfit
            );
        }
    }
    Ok(if stats.bad_lines > 0 { 1 } else { 0 })
}

pub(crate) fn print_warnings(warnings: &[impl std::fmt::Display], total: u64) {
    for w in warnings.iter().take(SHOWN_WARNINGS) {
        eprintln!("tomo: warning: {w}");
    }
    if total as usize > SHOWN_WARNINGS {
        eprintln!(
            "tomo: … and {} more warnings",
            total as usize - SHOWN_WARNINGS
        );
    }
}

fn run_audit(a: IngestArgs) -> Result<i32> {
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
        host_name: None,
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

fn run_strace(a: IngestArgs) -> Result<i32> {
    use tomo_source_strace as st;
    let host = match host_arg(&a)? {
        Some(h) => h,
        None => tomo_capture_ptrace::local_ids()
            .map(|(h, _)| h)
            .unwrap_or_default(),
    };
    // -t/-tt stamps are local times of day: the date and zone come from
    // --date or the file's modification time. (Asked before any thread runs:
    // the zone lookup refuses to run in a multi-threaded process.)
    let offset = time::UtcOffset::current_local_offset().unwrap_or(time::UtcOffset::UTC);
    let utc_offset_s = offset.whole_seconds() as i64;
    let day_start_ns = match &a.date {
        Some(d) => {
            let fmt = time::macros::format_description!("[year]-[month]-[day]");
            let date = time::Date::parse(d, &fmt)
                .with_context(|| format!("--date {d:?} is not YYYY-MM-DD"))?;
            let t = date.midnight().assume_offset(offset).unix_timestamp_nanos();
            Some(u64::try_from(t).context("--date before 1970")?)
        }
        None => None,
    };
    let reference_ns = a
        .files
        .first()
        .and_then(|f| std::fs::metadata(f).ok())
        .and_then(|m| m.modified().ok())
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos() as u64);
    let opts = st::Options {
        host,
        day_start_ns,
        reference_ns,
        utc_offset_s,
    };
    let total = total_bytes(&a.files)?;
    let bar = progress_bar(&a, total);
    let mut imp = st::Importer::new(opts);
    // The header names the host and boot of the first event, which the
    // importer derives from the trace's first time stamp: open the
    // recording at the first event.
    let mut writer: Option<Writer> = None;
    let mut open_error = None;
    let output = a.output.clone();
    let res = st::read_files(&mut imp, &a.files, &mut |n| bar.inc(n), &mut |ev| {
        if writer.is_none() {
            let meta = RecordingMeta {
                host: ev.host,
                boot: ev.boot,
                source: "strace".into(),
                command: Vec::new(),
                cut_from: None,
                host_name: None,
            };
            match Writer::create(&output, meta, WriterOptions::default()) {
                Ok(w) => writer = Some(w),
                Err(e) => {
                    let e = std::io::Error::other(e.to_string());
                    open_error = Some(e.to_string());
                    return Err(e);
                }
            }
        }
        let w = writer.as_mut().expect("opened above");
        w.append(&ev).map_err(std::io::Error::other)
    });
    bar.finish_and_clear();
    if let Some(e) = open_error {
        anyhow::bail!("cannot create recording {}: {e}", a.output.display());
    }
    let writer = match writer {
        Some(w) => w,
        None => {
            // No event at all: still leave a valid (empty) recording.
            let meta = RecordingMeta {
                host,
                boot: Id128::default(),
                source: "strace".into(),
                command: Vec::new(),
                cut_from: None,
                host_name: None,
            };
            Writer::create(&a.output, meta, WriterOptions::default())
                .with_context(|| format!("cannot create recording {}", a.output.display()))?
        }
    };
    let summary = writer
        .finish()
        .with_context(|| format!("cannot finish recording {}", a.output.display()))?;
    if let Err(e) = res {
        let _ = std::fs::remove_file(&a.output);
        return Err(e.into());
    }
    let stats = imp.stats();
    let warnings = imp.warnings();
    if a.json {
        let j = serde_json::json!({
            "output": a.output,
            "events": stats.events_out,
            "blocks": summary.blocks,
            "bytes": summary.bytes,
            "stats": stats,
            "warnings": warnings.iter().take(100).map(|w| w.to_string()).collect::<Vec<_>>(),
        });
        println!("{j}");
    } else {
        print_warnings(warnings, stats.warnings);
        let m = &stats.mapping;
        eprintln!(
            "tomo: {} lines, {} calls ({} joined from unfinished/resumed halves), {} bad lines → {} events in {} ({})",
            stats.lines,
            stats.calls,
            stats.joined,
            stats.bad_lines,
            stats.events_out,
            a.output.display(),
            crate::cmd_record::human_bytes(summary.bytes)
        );
        eprintln!(
            "tomo: {} processes ({} without a spawn in the trace), {} threads; {} calls mapped, {} of calls Tomo does not map, {} on descriptors never seen (use strace -yy)",
            m.processes, m.roots, m.threads, m.mapped, m.unmapped, m.unknown_fd
        );
    }
    Ok(if stats.bad_lines > 0 { 1 } else { 0 })
}
