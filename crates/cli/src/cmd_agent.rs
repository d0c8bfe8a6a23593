//! `tomo agent`: system-wide capture (root) into the durable log, until
//! Ctrl-C / SIGTERM (or `--duration`).

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tomo_capture_ebpf::{Agent, Stats, NOT_CAPTURED};
use tomo_capture_ptrace::local_ids;
use tomo_log::{RecordingMeta, Writer, WriterOptions};

#[derive(Clone, Copy, ValueEnum)]
pub enum Source {
    /// A CO-RE eBPF program (syscall and scheduler tracepoints).
    Ebpf,
    /// The kernel audit netlink socket (not built yet).
    Audit,
}

#[derive(Args)]
pub struct AgentArgs {
    /// Kernel source of the events.
    #[arg(long, value_enum, default_value = "ebpf")]
    source: Source,
    /// Where to write the recording.
    #[arg(short, long, default_value = "host.tomo")]
    output: PathBuf,
    /// Rotate: the output becomes a directory of segments of about this
    /// many bytes (suffixes K, M, G: powers of 1024).
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes)]
    rotate_bytes: Option<u64>,
    /// Stop after this many seconds (default: run until Ctrl-C or SIGTERM).
    #[arg(long, value_name = "SECS")]
    duration: Option<f64>,
    /// Report counters (events, lost records) every SECS seconds on stderr; 0: only at exit.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    stats_every: f64,
    /// Create this file once the probes are attached (for scripts and tests).
    #[arg(long, value_name = "FILE")]
    ready_file: Option<PathBuf>,
    /// Print the final summary as JSON on stderr.
    #[arg(long)]
    json: bool,
}

fn parse_bytes(s: &str) -> Result<u64, String> {
    let (num, mult) = match s.trim().char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let m = match c.to_ascii_uppercase() {
                'K' => 1u64 << 10,
                'M' => 1 << 20,
                'G' => 1 << 30,
                _ => return Err(format!("unknown size suffix {c:?} (use K, M or G)")),
            };
            (&s.trim()[..i], m)
        }
        _ => (s.trim(), 1),
    };
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a size (e.g. 1000000, 64M, 1G)"))?;
    n.checked_mul(mult)
        .filter(|&b| b > 0)
        .ok_or_else(|| format!("{s:?}: size out of range"))
}

fn report(s: &Stats, elapsed: Duration) -> String {
    format!(
        "{} events from {} kernel records in {:.1}s; lost records: {}{}",
        s.events,
        s.records,
        elapsed.as_secs_f64(),
        s.kernel_drops,
        if s.late > 0 {
            format!("; {} events released late (cause never seen)", s.late)
        } else {
            String::new()
        }
    )
}

pub fn run(a: AgentArgs) -> Result<i32> {
    if let Source::Audit = a.source {
        bail!("`tomo agent --source audit` is not built yet; use --source ebpf, or `tomo ingest --format audit` on auditd's logs");
    }
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .context("installing signal handlers")?;
    }
    let (host, boot) = local_ids()?;
    let meta = RecordingMeta {
        host,
        boot,
        source: "ebpf".into(),
        command: Vec::new(),
        cut_from: None,
    };
    let opts = WriterOptions {
        rotate_bytes: a.rotate_bytes,
        ..WriterOptions::default()
    };
    let mut agent = Agent::start(host, boot)?;
    let mut writer = Writer::create(&a.output, meta, opts)
        .with_context(|| format!("cannot create recording {}", a.output.display()))?;
    // No silent gaps: say which calls this source does not report (yet).
    for (calls, why) in NOT_CAPTURED {
        eprintln!("tomo: agent: not captured: {calls}: {why}");
    }
    for what in agent.degraded() {
        eprintln!("tomo: agent: degraded: {what}");
    }
    if let Some(p) = &a.ready_file {
        std::fs::write(p, b"").with_context(|| format!("cannot create {}", p.display()))?;
    }
    eprintln!(
        "tomo: agent: capturing system-wide into {} (Ctrl-C to stop)",
        a.output.display()
    );
    let start = Instant::now();
    let mut last_report = Instant::now();
    let mut sink = |ev| writer.append(&ev).map_err(std::io::Error::other);
    while !stop.load(Ordering::Relaxed)
        && a.duration.is_none_or(|d| start.elapsed().as_secs_f64() < d)
    {
        agent.poll(100, &mut sink)?;
        if a.stats_every > 0.0 && last_report.elapsed().as_secs_f64() >= a.stats_every {
            last_report = Instant::now();
            let st = agent.state_sizes();
            eprintln!(
                "tomo: agent: {}; state: {} threads, {} processes, {} files/names, {} held",
                report(&agent.stats(), start.elapsed()),
                st[0],
                st[1],
                st[2],
                st[3]
            );
        }
    }
    // Per-thread strings, processes, open files + names, held events:
    // bounded, and shown so that a long run can be checked.
    let state = agent.state_sizes();
    let stats = agent.finish(&mut sink)?;
    writer
        .finish()
        .with_context(|| format!("cannot finish recording {}", a.output.display()))?;
    if a.json {
        let j = serde_json::json!({
            "output": a.output, "events": stats.events, "records": stats.records,
            "lost_records": stats.kernel_drops, "late_events": stats.late,
            "bad_records": stats.bad_records, "seconds": start.elapsed().as_secs_f64(),
            "state": {"threads": state[0], "processes": state[1], "files": state[2], "held": state[3]},
        });
        eprintln!("{j}");
    } else {
        eprintln!(
            "tomo: agent: stopped: {} into {}",
            report(&stats, start.elapsed()),
            a.output.display()
        );
    }
    if stats.kernel_drops > 0 {
        eprintln!(
            "tomo: agent: WARNING: {} kernel records were lost (ring buffer full); the recording has gaps",
            stats.kernel_drops
        );
    }
    Ok(0)
}
