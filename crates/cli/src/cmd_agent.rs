//! `tomo agent`: system-wide capture (root) into the durable log, until
//! Ctrl-C / SIGTERM (or `--duration`).

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tomo_capture_audit::AuditAgent;
use tomo_capture_ebpf::{Agent, Stats, NOT_CAPTURED};
use tomo_capture_ptrace::{host_id_of_name, local_ids};
use tomo_event::Id128;
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
    /// eBPF: record only the tasks in this network namespace
    /// (`/run/netns/NAME`, as `ip netns add` makes, or `/proc/PID/ns/net`).
    /// One agent per namespace records one simulated host of a shared
    /// kernel; a process entering it (`ip netns exec`) is recorded from
    /// its first event there.
    #[arg(long, value_name = "PATH")]
    netns: Option<PathBuf>,
    /// Record as the host NAME: the host id of the recording and of every
    /// event is the UUIDv5 of NAME in the DNS namespace (`uuidgen --sha1
    /// --namespace @dns --name NAME`) instead of /etc/machine-id; the boot
    /// id stays this machine's.
    #[arg(long, value_name = "NAME", value_parser = parse_host_name)]
    host_name: Option<String>,
    /// Ship to a Kafka-protocol broker: kafka://BROKER[,BROKER...]/TOPIC
    /// (kafkas:// for TLS). OUTPUT is then a spool directory: each run
    /// records into a new recording in it (rotated at 64M unless
    /// --rotate-bytes), and its sealed blocks are shipped as they are
    /// written, resuming after the last block the broker acknowledged
    /// (also for recordings of earlier runs left unshipped).
    #[arg(long, value_name = "URL")]
    ship: Option<tomo_kafka::KafkaUrl>,
    #[command(flatten)]
    ship_opts: crate::cmd_ship::ShipArgs,
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

pub(crate) fn parse_host_name(s: &str) -> Result<String, String> {
    if s.trim().is_empty() {
        return Err("a host name cannot be empty".into());
    }
    Ok(s.to_string())
}

/// The host and boot ids to record under: the machine's, or for
/// `--host-name NAME` the UUIDv5 of NAME with the machine's boot id.
pub(crate) fn host_ids(host_name: Option<&str>) -> Result<(Id128, Id128)> {
    let (host, boot) = local_ids()?;
    Ok((host_name.map_or(host, host_id_of_name), boot))
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
    match a.source {
        Source::Ebpf => {
            if a.take_over || a.remove_rules {
                bail!("--take-over and --remove-rules are options of --source audit");
            }
        }
        Source::Audit => {
            if a.netns.is_some() {
                bail!("--netns is an option of --source ebpf (audit rules cannot select a network namespace)");
            }
        }
    }
    if a.remove_rules {
        return remove_rules();
    }
    let stop = crate::cmd_ship::stop_flag()?;
    if let Source::Audit = a.source {
        return run_audit(a, &stop);
    }
    let netns = a
        .netns
        .as_deref()
        .map(tomo_capture_ebpf::netns_inode)
        .transpose()?;
    let (host, boot) = host_ids(a.host_name.as_deref())?;
    let meta = RecordingMeta {
        host,
        boot,
        source: "ebpf".into(),
        command: Vec::new(),
        cut_from: None,
        host_name: a.host_name.clone(),
    };
    let opts = WriterOptions {
        rotate_bytes: a.rotate_bytes,
        ..WriterOptions::default()
    };
    let mut agent = Agent::start(host, boot, tomo_capture_ebpf::Options { netns })?;
    let (output, opts) = spool_output(&a, opts)?;
    let mut writer = Writer::create(&output, meta, opts)
        .with_context(|| format!("cannot create recording {}", output.display()))?;
    let shipper = start_shipping(&a)?;
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
    let scope = match (&a.netns, netns) {
        (Some(p), Some(ino)) => format!("network namespace {} (net:[{ino}])", p.display()),
        _ => "system-wide".into(),
    };
    eprintln!(
        "tomo: agent: capturing {scope} as host {} into {} (Ctrl-C to stop)",
        host_label(host, a.host_name.as_deref()),
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
        .with_context(|| format!("cannot finish recording {}", output.display()))?;
    finish_shipping(&a, shipper);
    if a.json {
        let j = serde_json::json!({
            "output": a.output, "host": host.to_string(), "host_name": a.host_name,
            "netns": netns, "events": stats.events, "records": stats.records,
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

/// With --ship, the recording of this run: a new rotated recording in the
/// spool directory, named by its start time so that the spool ships in order.
fn spool_output(a: &AgentArgs, opts: WriterOptions) -> Result<(PathBuf, WriterOptions)> {
    if a.ship.is_none() {
        return Ok((a.output.clone(), opts));
    }
    if a.output.is_file() {
        bail!(
            "--ship needs OUTPUT to be a spool directory, and {} is a file",
            a.output.display()
        );
    }
    std::fs::create_dir_all(&a.output)
        .with_context(|| format!("cannot create the spool {}", a.output.display()))?;
    let name = tomo_ship::new_recording_name();
    let opts = WriterOptions {
        rotate_bytes: Some(opts.rotate_bytes.unwrap_or(64 << 20)),
        ..opts
    };
    Ok((a.output.join(name), opts))
}

fn start_shipping(a: &AgentArgs) -> Result<Option<tomo_ship::Shipper>> {
    let Some(url) = &a.ship else {
        return Ok(None);
    };
    let s = tomo_ship::Shipper::spawn(&a.output, a.ship_opts.options(url.clone())?)
        .with_context(|| format!("cannot ship the spool {}", a.output.display()))?;
    eprintln!("tomo: agent: shipping {} to {url}", a.output.display());
    Ok(Some(s))
}

/// Ships what is left (the recording is finished), within --drain-timeout.
fn finish_shipping(a: &AgentArgs, s: Option<tomo_ship::Shipper>) {
    let Some(s) = s else { return };
    let (st, res) = s.finish(Duration::from_secs_f64(a.ship_opts.drain_timeout.max(0.0)));
    for w in &st.warnings {
        eprintln!("tomo: agent: ship: warning: {w}");
    }
    match (res, &st.last_error) {
        (Err(e), _) => eprintln!("tomo: agent: ship: error: {e}; the spool keeps everything, ship it with `tomo ship`"),
        (Ok(()), Some(e)) => eprintln!(
            "tomo: agent: ship: WARNING: the broker did not take everything in time ({e}); the rest stays in {} and is shipped by the next run or `tomo ship`",
            a.output.display()
        ),
        (Ok(()), None) => eprintln!(
            "tomo: agent: shipped {} blocks ({} events, {} bytes, {} retries)",
            st.blocks, st.events, st.bytes, st.retries
        ),
    }
}

fn host_label(host: Id128, name: Option<&str>) -> String {
    match name {
        Some(n) => format!("{n} ({host})"),
        None => host.to_string(),
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
    let (host, boot) = host_ids(a.host_name.as_deref())?;
    let meta = RecordingMeta {
        host,
        boot,
        source: "audit-netlink".into(),
        command: Vec::new(),
        cut_from: None,
        host_name: a.host_name.clone(),
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
    let (output, opts) = spool_output(&a, opts)?;
    let mut writer = Writer::create(&output, meta, opts)
        .with_context(|| format!("cannot create recording {}", output.display()))?;
    let shipper = start_shipping(&a)?;
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
        "tomo: agent: capturing system-wide (audit) as host {} into {} (Ctrl-C to stop)",
        host_label(host, a.host_name.as_deref()),
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
        .with_context(|| format!("cannot finish recording {}", output.display()))?;
    finish_shipping(&a, shipper);
    let p = &stats.parse;
    if a.json {
        let j = serde_json::json!({
            "output": a.output, "source": "audit", "host": host.to_string(),
            "host_name": a.host_name, "events": stats.events,
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
