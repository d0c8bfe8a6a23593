//! `tomo agent`: system-wide capture (root) into the durable log, until
//! Ctrl-C / SIGTERM (or `--duration`).

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tomo_capture_audit::AuditAgent;
use tomo_capture_ebpf::{Agent, Stats, NOT_CAPTURED};
use tomo_capture_ptrace::local_ids;
use tomo_log::{RecordingMeta, Writer, WriterOptions};

#[derive(Clone, Copy, ValueEnum)]
pub enum Source {
    /// A CO-RE eBPF program (syscall and scheduler tracepoints).
    Ebpf,
    /// The kernel's audit netlink socket: the agent is the audit daemon
    /// (no auditd), with its own syscall rule, removed on exit.
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
    /// Audit: if another audit daemon (auditd) holds the kernel's audit
    /// socket, stop it (SIGTERM) instead of refusing to start. It is not
    /// restarted on exit.
    #[arg(long)]
    take_over: bool,
    /// Audit: the kernel's backlog limit while capturing (records queued
    /// for the agent; the larger of this and the current limit is used,
    /// and the old one restored on exit).
    #[arg(long, value_name = "RECORDS", default_value_t = tomo_capture_audit::DEFAULT_BACKLOG_LIMIT)]
    backlog_limit: u32,
    /// Audit: only clean up after an agent that was killed (kill -9): remove
    /// its `tomo-agent` rules, its registration as the audit daemon, and
    /// put back the enabled flag and backlog limit it found. Then exit.
    #[arg(long)]
    remove_rules: bool,
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
    if let Source::Ebpf = a.source {
        if a.take_over || a.remove_rules {
            bail!("--take-over and --remove-rules are options of --source audit");
        }
    }
    if a.remove_rules {
        return remove_rules();
    }
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .context("installing signal handlers")?;
    }
    if let Source::Audit = a.source {
        return run_audit(a, &stop);
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
    let mut idle = IdleFlush::new();
    while !stop.load(Ordering::Relaxed)
        && a.duration.is_none_or(|d| start.elapsed().as_secs_f64() < d)
    {
        agent.poll(100, &mut |ev| {
            writer.append(&ev).map_err(std::io::Error::other)
        })?;
        idle.check(&mut writer)?;
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
    let stats = agent.finish(&mut |ev| writer.append(&ev).map_err(std::io::Error::other))?;
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

/// A quiet host appends nothing for a while: seal the open block anyway, so
/// that what was captured is on disk within ~200 ms, like under load.
struct IdleFlush {
    last: Instant,
}

impl IdleFlush {
    fn new() -> IdleFlush {
        IdleFlush {
            last: Instant::now(),
        }
    }

    fn check(&mut self, w: &mut Writer) -> Result<()> {
        if self.last.elapsed() >= Duration::from_millis(200) {
            self.last = Instant::now();
            if w.summary().pending_events > 0 {
                w.flush().context("cannot write the recording")?;
            }
        }
        Ok(())
    }
}

fn audit_report(s: &tomo_capture_audit::Stats, elapsed: Duration) -> String {
    format!(
        "{} events from {} audit records in {:.1}s; lost records (kernel): {}; backlog {} (max {}) of {}; incomplete events: {}",
        s.events,
        s.records,
        elapsed.as_secs_f64(),
        s.lost,
        s.backlog,
        s.backlog_max,
        s.backlog_limit,
        s.parse.incomplete_events
    )
}

/// Warnings shown in full; the rest are only counted.
const SHOWN_WARNINGS: usize = 20;

fn run_audit(a: AgentArgs, stop: &AtomicBool) -> Result<i32> {
    let (host, boot) = local_ids()?;
    let meta = RecordingMeta {
        host,
        boot,
        source: "audit-netlink".into(),
        command: Vec::new(),
        cut_from: None,
    };
    let opts = WriterOptions {
        rotate_bytes: a.rotate_bytes,
        ..WriterOptions::default()
    };
    let mut agent = AuditAgent::start(
        host,
        boot,
        tomo_capture_audit::Options {
            take_over: a.take_over,
            backlog_limit: a.backlog_limit,
        },
    )?;
    // An error from here on drops the agent, which removes its rule and
    // restores the audit state it found.
    let mut writer = Writer::create(&a.output, meta, opts)
        .with_context(|| format!("cannot create recording {}", a.output.display()))?;
    for n in agent.notes() {
        eprintln!("tomo: agent: {n}");
    }
    for (what, why) in tomo_capture_audit::NOT_CAPTURED {
        eprintln!("tomo: agent: not captured: {what}: {why}");
    }
    let st = agent.stats();
    eprintln!(
        "tomo: agent: audit: kernel lost counter {} (since boot), backlog limit {}, socket buffer {} KiB; rule key {:?} (removed on exit)",
        st.lost_at_start,
        st.backlog_limit,
        st.rcvbuf >> 10,
        tomo_capture_audit::RULE_KEY
    );
    if let Some(p) = &a.ready_file {
        std::fs::write(p, b"").with_context(|| format!("cannot create {}", p.display()))?;
    }
    eprintln!(
        "tomo: agent: capturing system-wide (audit) into {} (Ctrl-C to stop)",
        a.output.display()
    );
    let start = Instant::now();
    let mut last_report = Instant::now();
    let mut idle = IdleFlush::new();
    let mut shown = 0usize;
    let mut show_warnings = |agent: &AuditAgent| {
        for w in agent
            .warnings()
            .iter()
            .skip(shown)
            .take(SHOWN_WARNINGS.saturating_sub(shown))
        {
            eprintln!("tomo: agent: warning: {w}");
        }
        shown = agent.warnings().len().min(SHOWN_WARNINGS);
    };
    while !stop.load(Ordering::Relaxed)
        && a.duration.is_none_or(|d| start.elapsed().as_secs_f64() < d)
    {
        agent.poll(100, &mut |ev| {
            writer.append(&ev).map_err(std::io::Error::other)
        })?;
        idle.check(&mut writer)?;
        if a.stats_every > 0.0 && last_report.elapsed().as_secs_f64() >= a.stats_every {
            last_report = Instant::now();
            show_warnings(&agent);
            eprintln!(
                "tomo: agent: {}; held: {}",
                audit_report(&agent.stats(), start.elapsed()),
                agent.held()
            );
        }
    }
    show_warnings(&agent);
    let held = agent.held();
    let stats = agent.finish(&mut |ev| writer.append(&ev).map_err(std::io::Error::other))?;
    writer
        .finish()
        .with_context(|| format!("cannot finish recording {}", a.output.display()))?;
    let p = &stats.parse;
    if a.json {
        let j = serde_json::json!({
            "output": a.output, "source": "audit", "events": stats.events,
            "records": stats.records, "messages": stats.messages,
            "other_records": stats.other_records, "bad_messages": stats.bad_messages,
            "lost_records": stats.lost, "kernel_lost_at_start": stats.lost_at_start,
            "backlog_max": stats.backlog_max, "backlog_limit": stats.backlog_limit,
            "backlog_wait": stats.backlog_wait,
            "incomplete_events": p.incomplete_events, "warnings": p.warnings,
            "seconds": start.elapsed().as_secs_f64(), "held_before_exit": held,
            "parse": p,
        });
        eprintln!("{j}");
    } else {
        eprintln!(
            "tomo: agent: stopped: {} into {}",
            audit_report(&stats, start.elapsed()),
            a.output.display()
        );
        let skipped = p.unmapped_syscalls + p.unsupported_arch + p.untracked_fd;
        if skipped > 0 {
            eprintln!(
                "tomo: agent: skipped {} unmapped calls, {} of other architectures, {} on descriptors never seen opened",
                p.unmapped_syscalls, p.unsupported_arch, p.untracked_fd
            );
        }
    }
    if stats.lost > 0 {
        eprintln!(
            "tomo: agent: WARNING: the kernel dropped {} audit records while the agent ran (backlog full; try a larger --backlog-limit); the recording has gaps",
            stats.lost
        );
    }
    Ok(0)
}

fn remove_rules() -> Result<i32> {
    let c = tomo_capture_audit::remove_rules()?;
    eprintln!(
        "tomo: agent: removed {} {} rule(s)",
        c.removed,
        tomo_capture_audit::RULE_KEY
    );
    if let Some(pid) = c.unregistered {
        eprintln!("tomo: agent: unregistered the dead audit daemon (pid {pid})");
    }
    if let Some(s) = c.restored {
        eprintln!(
            "tomo: agent: restored what agent pid {} had found: enabled={}, backlog_limit={}",
            s.pid, s.enabled, s.backlog_limit
        );
    }
    for pid in &c.kept {
        eprintln!(
            "tomo: agent: kept the rule of the running agent pid {pid} (stop it to remove it)"
        );
    }
    Ok(0)
}
