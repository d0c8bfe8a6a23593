//! Tomo's live Linux-audit source: `tomo agent --source audit`.
//!
//! The agent becomes the audit daemon itself (no auditd): it registers its
//! pid with the kernel on a `NETLINK_AUDIT` socket (`AUDIT_SET` with
//! `AUDIT_STATUS_PID`), enables auditing, raises the backlog limit, and
//! installs one syscall rule (`-a always,exit -F arch=b64 -S … -F
//! pid!=<agent> -k tomo-agent`) for the calls that `tomo-source-audit`
//! maps ([`tomo_source_audit::syscalls::X86_64`]). Each record the kernel
//! then sends (one datagram: type = record type, payload = its text) goes
//! through the same parser, grouper and converter as `tomo ingest --format
//! audit` ([`Parser::feed_record`]), so the events are the ones an import
//! of auditd's log would give.
//!
//! * **Own calls** are excluded in the kernel (`pid!=` field on the rule):
//!   filtering them in user space would still make the kernel format,
//!   queue and send a record for every read of the socket and every write
//!   of the recording — a feedback loop costing as much as the load itself.
//! * **Loss is never silent**: the kernel counts every record it drops
//!   (`struct audit_status.lost`: backlog full after `backlog_wait_time`);
//!   the agent reads the counter at start, every second, and at the end,
//!   and reports the increase while it ran ([`Stats::lost`]).
//! * **Bounded**: the parser is ticked every 200 ms ([`Parser::tick`]):
//!   events still missing records after one tick are completed and
//!   counted as incomplete; nothing waits more than two ticks.
//! * **Undone on exit**: [`AuditAgent::finish`] (and `Drop`, on error paths
//!   and panics) removes exactly the rule it added, restores the enabled
//!   flag and backlog limit it found, and unregisters. What it found is
//!   also kept in [`STATE_FILE`], so that after a `kill -9`
//!   [`remove_rules`] (`tomo agent --source audit --remove-rules`) can
//!   undo it, and the next agent restores the original state.
//!
//! Needs root (`CAP_AUDIT_CONTROL`) in the initial user and pid namespaces.

mod netlink;
mod proto;

use netlink::{Recv, Socket, NLMSG_DONE, NLMSG_ERROR, NLMSG_NOOP, NLM_F_ACK};
use proto::{Rule, Status, AUDIT_ADD_RULE, AUDIT_DEL_RULE, AUDIT_REPLACE, AUDIT_SET};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tomo_event::{Event, Id128};
use tomo_source_audit::record::RType;
use tomo_source_audit::{syscalls, Options as ParseOptions, Parser, Warning};

/// The key (`-k`) of the agent's rule: how it and `--remove-rules` find it.
pub const RULE_KEY: &str = "tomo-agent";
/// What the agent found (enabled flag, backlog limit) and its pid, so that
/// it can be restored after a `kill -9`.
pub const STATE_FILE: &str = "/run/tomo-audit-agent.state";
/// The kernel's default backlog (64 records) overflows within a
/// millisecond under load; this holds about a second of a busy host.
pub const DEFAULT_BACKLOG_LIMIT: u32 = 16384;
/// Socket receive buffer asked for: bursts wait here rather than in the
/// kernel's backlog.
const RCVBUF: usize = 32 << 20;
const TICK: Duration = Duration::from_millis(200);
const STATUS_EVERY: Duration = Duration::from_secs(1);
/// Datagrams read per [`AuditAgent::poll`] before returning to the caller.
const BATCH: usize = 8192;

/// What this source does not report, printed at start.
pub const NOT_CAPTURED: &[(&str, &str)] = &[
    (
        "processes running since before audit was first enabled in this boot",
        "the kernel gives them no audit context (their children started later are audited); boot with audit=1 to audit every process",
    ),
    (
        "32-bit (compat) calls",
        "the rule is for arch=b64",
    ),
    (
        "thread ids, process start times, objects of inherited descriptors",
        "audit logs the thread group and descriptor numbers; see README, \"Importing Linux audit logs\"",
    ),
];

#[derive(Debug, thiserror::Error)]
pub enum AuditAgentError {
    // The io::Error is part of the message (with a hint after it), not a
    // `source`: `{:#}` would print it twice.
    #[error("cannot {what}: {error}{}", hint(error))]
    Kernel {
        what: &'static str,
        error: io::Error,
    },
    #[error("another audit daemon holds the kernel's audit socket: pid {pid} ({comm}). Stop it first (`systemctl stop auditd`, or `service auditd stop`), or pass --take-over to have the agent stop it (it is not restarted afterwards)")]
    Busy { pid: u32, comm: String },
    #[error("--take-over: the audit daemon pid {pid} ({comm}) did not let go of the audit socket within 10 s of SIGTERM")]
    TakeOver { pid: u32, comm: String },
    #[error("the audit configuration is locked (enabled=2, `auditctl -e 2`): it cannot change until the next boot")]
    Locked,
    #[error("{}: {error}", path.display())]
    State { path: PathBuf, error: io::Error },
    #[error("writing the events failed: {0}")]
    Sink(io::Error),
}

fn hint(e: &io::Error) -> &'static str {
    match e.raw_os_error() {
        Some(libc::EPERM) | Some(libc::EACCES) => {
            " (the audit agent needs root: CAP_AUDIT_CONTROL, in the initial user and pid namespaces)"
        }
        Some(libc::EPROTONOSUPPORT) => " (this kernel was built without audit support)",
        _ => "",
    }
}

fn kernel(what: &'static str) -> impl FnOnce(io::Error) -> AuditAgentError {
    move |error| AuditAgentError::Kernel { what, error }
}

#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Stop (SIGTERM) an audit daemon that holds the audit socket.
    pub take_over: bool,
    /// Backlog limit while running (the larger of this and the current one).
    pub backlog_limit: u32,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            take_over: false,
            backlog_limit: DEFAULT_BACKLOG_LIMIT,
        }
    }
}

/// Counters of a running agent.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    /// Netlink datagrams received.
    pub messages: u64,
    /// Records of the types events are made of, given to the parser.
    pub records: u64,
    /// Records of other types (user-space messages, AVC, config changes).
    pub other_records: u64,
    /// Datagrams too long for the buffer, or not from the kernel: dropped.
    pub bad_messages: u64,
    /// Events passed to the sink.
    pub events: u64,
    /// Records the kernel dropped while the agent ran (increase of its
    /// `lost` counter).
    pub lost: u64,
    /// The kernel's `lost` counter (since boot) when the agent started.
    pub lost_at_start: u32,
    /// Records waiting in the kernel at the last look, and the most seen.
    pub backlog: u32,
    pub backlog_max: u32,
    pub backlog_limit: u32,
    /// Time audited processes waited for a full backlog (the kernel's
    /// `backlog_wait_time_actual`, in its units), increase while running.
    pub backlog_wait: u64,
    /// Receive buffer the kernel granted the socket.
    pub rcvbuf: usize,
    /// The parser's counters (incomplete events, untracked descriptors, …).
    pub parse: tomo_source_audit::Stats,
}

/// What the agent found, to put back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Saved {
    pub pid: u32,
    pub enabled: u32,
    pub backlog_limit: u32,
}

impl Saved {
    fn parse(text: &str) -> Option<Saved> {
        let get = |k: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(k)?.strip_prefix('='))
                .and_then(|v| v.trim().parse::<u32>().ok())
        };
        Some(Saved {
            pid: get("pid")?,
            enabled: get("enabled")?,
            backlog_limit: get("backlog_limit")?,
        })
    }

    fn text(&self) -> String {
        format!(
            "# tomo agent --source audit: the audit state to restore (tomo agent --source audit --remove-rules)\npid={}\nenabled={}\nbacklog_limit={}\n",
            self.pid, self.enabled, self.backlog_limit
        )
    }
}

fn read_state(path: &Path) -> Option<Saved> {
    Saved::parse(&std::fs::read_to_string(path).ok()?)
}

fn alive(pid: u32) -> bool {
    pid != 0 && Path::new(&format!("/proc/{pid}")).exists()
}

fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "exited".into())
}

/// A rule of a tomo agent that is still running (and holds the audit pid).
fn running_agent(rule_pid: u32, daemon: u32) -> bool {
    rule_pid == daemon && alive(rule_pid) && comm(rule_pid) == "tomo"
}

/// The calls the rule selects: every x86_64 call the parser maps.
fn rule_syscalls() -> Vec<u64> {
    syscalls::X86_64.iter().map(|&(nr, _)| nr).collect()
}

/// Delete the `tomo-agent` rules whose agent is gone; returns how many,
/// and the pids of the running agents whose rules were kept.
fn delete_stale_rules(ctl: &mut Socket, daemon: u32) -> Result<(usize, Vec<u32>), AuditAgentError> {
    let rules = proto::list_rules(ctl).map_err(kernel("list the audit rules"))?;
    let (mut removed, mut kept) = (0, Vec::new());
    for (bytes, rule) in rules {
        let Some(rule) = rule else { continue };
        if rule.key().as_deref() != Some(RULE_KEY) {
            continue;
        }
        let pid = rule.excluded_pid().unwrap_or(0);
        if running_agent(pid, daemon) {
            kept.push(pid);
            continue;
        }
        proto::request(ctl, AUDIT_DEL_RULE, &bytes).map_err(kernel("delete a stale audit rule"))?;
        removed += 1;
    }
    Ok((removed, kept))
}

/// A live audit capture. Dropping it without [`AuditAgent::finish`] still
/// removes its rule and restores the kernel's audit state.
pub struct AuditAgent {
    ctl: Socket,
    ev: Socket,
    parser: Parser,
    rule: Option<Rule>,
    saved: Saved,
    changed: bool,
    registered: bool,
    state_path: Option<PathBuf>,
    stats: Stats,
    last_lost: u32,
    last_wait: u32,
    buf: Vec<u8>,
    out: Vec<Event>,
    last_tick: Instant,
    last_status: Instant,
    notes: Vec<String>,
}

impl AuditAgent {
    /// Register as the audit daemon, enable auditing and install the rule.
    pub fn start(host: Id128, boot: Id128, opts: Options) -> Result<AuditAgent, AuditAgentError> {
        let me = std::process::id();
        let mut ctl = Socket::open().map_err(kernel("open the audit netlink socket"))?;
        let st = proto::get_status(&mut ctl).map_err(kernel("read the audit status"))?;
        if st.enabled == 2 {
            return Err(AuditAgentError::Locked);
        }
        let mut notes = Vec::new();
        if st.pid != 0 && st.pid != me && alive(st.pid) {
            let c = comm(st.pid);
            if !opts.take_over {
                return Err(AuditAgentError::Busy {
                    pid: st.pid,
                    comm: c,
                });
            }
            netlink::terminate(st.pid).map_err(kernel("stop the audit daemon (--take-over)"))?;
            let t0 = Instant::now();
            loop {
                let now = proto::get_status(&mut ctl).map_err(kernel("read the audit status"))?;
                if now.pid == 0 || !alive(now.pid) {
                    break;
                }
                if t0.elapsed() > Duration::from_secs(10) {
                    return Err(AuditAgentError::TakeOver {
                        pid: st.pid,
                        comm: c,
                    });
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            notes.push(format!(
                "--take-over: stopped the audit daemon pid {} ({c}); it is not restarted on exit",
                st.pid
            ));
        }
        // What to restore: what a previous agent killed with -9 found, if
        // it left its state behind; else what is there now.
        let st = proto::get_status(&mut ctl).map_err(kernel("read the audit status"))?;
        let state_path = PathBuf::from(STATE_FILE);
        let saved = match read_state(&state_path) {
            Some(s) if s.pid != me && !alive(s.pid) => {
                notes.push(format!(
                    "the previous agent (pid {}) did not exit cleanly; restoring on exit what it found (enabled={}, backlog_limit={})",
                    s.pid, s.enabled, s.backlog_limit
                ));
                Saved { pid: me, ..s }
            }
            _ => Saved {
                pid: me,
                enabled: st.enabled,
                backlog_limit: st.backlog_limit,
            },
        };
        std::fs::write(&state_path, saved.text()).map_err(|error| AuditAgentError::State {
            path: state_path.clone(),
            error,
        })?;
        let ev = match Socket::open() {
            Ok(s) => s,
            Err(e) => {
                let _ = std::fs::remove_file(&state_path);
                return Err(kernel("open the audit netlink socket")(e));
            }
        };
        let mut parser = Parser::new(ParseOptions {
            default_host: host,
            host_override: None,
        });
        parser.set_live(boot);
        // From here on, Drop undoes whatever was done.
        let mut a = AuditAgent {
            ctl,
            ev,
            parser,
            rule: None,
            saved,
            changed: false,
            registered: false,
            state_path: Some(state_path),
            stats: Stats::default(),
            last_lost: 0,
            last_wait: 0,
            buf: vec![0u8; 1 << 16],
            out: Vec::new(),
            last_tick: Instant::now(),
            last_status: Instant::now(),
            notes,
        };
        let (removed, _) = delete_stale_rules(&mut a.ctl, st.pid)?;
        if removed > 0 {
            a.notes.push(format!(
                "removed {removed} stale {RULE_KEY} rule(s) of an agent that did not exit cleanly"
            ));
        }
        a.stats.rcvbuf = a.ev.set_rcvbuf(RCVBUF).unwrap_or(0);
        a.register(me)?;
        let limit = opts.backlog_limit.max(a.saved.backlog_limit);
        a.changed = true;
        proto::set_status(
            &mut a.ctl,
            Status {
                mask: proto::STATUS_ENABLED | proto::STATUS_BACKLOG_LIMIT,
                enabled: 1,
                backlog_limit: limit,
                ..Status::default()
            },
        )
        .map_err(kernel("enable auditing"))?;
        let rule = Rule::exit_always(syscalls::ARCH_X86_64 as u32, &rule_syscalls(), me, RULE_KEY);
        proto::request(&mut a.ctl, AUDIT_ADD_RULE, &rule.to_bytes())
            .map_err(kernel("add the audit rule"))?;
        a.rule = Some(rule);
        let st = proto::get_status(&mut a.ctl).map_err(kernel("read the audit status"))?;
        a.stats.lost_at_start = st.lost;
        a.last_lost = st.lost;
        a.last_wait = st.backlog_wait_time_actual;
        a.note_status(st);
        Ok(a)
    }

    /// `AUDIT_SET` of our pid, from the socket that is to receive the
    /// records (the kernel sends them to the port that registered).
    fn register(&mut self, me: u32) -> Result<(), AuditAgentError> {
        let seq = self
            .ev
            .send(
                AUDIT_SET,
                NLM_F_ACK,
                &Status {
                    mask: proto::STATUS_PID,
                    pid: me,
                    ..Status::default()
                }
                .to_bytes(),
            )
            .map_err(kernel("register as the audit daemon"))?;
        let t0 = Instant::now();
        loop {
            if t0.elapsed() > Duration::from_secs(5) {
                return Err(kernel("register as the audit daemon")(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "no answer from the kernel",
                )));
            }
            if !self.ev.wait(100).map_err(kernel("read the audit socket"))? {
                continue;
            }
            let n = match self.ev.recv(&mut self.buf, false) {
                Ok(Recv::Msg(n)) => n,
                Ok(_) => continue,
                Err(e) => return Err(kernel("read the audit socket")(e)),
            };
            let is_ack = netlink::messages(&self.buf[..n])
                .first()
                .filter(|m| m.0 == NLMSG_ERROR && m.2 == seq)
                .map(|m| {
                    m.3.get(..4)
                        .map(|x| i32::from_ne_bytes([x[0], x[1], x[2], x[3]]))
                        .unwrap_or(0)
                });
            match is_ack {
                Some(0) => {
                    self.registered = true;
                    return Ok(());
                }
                Some(code) if -code == libc::EEXIST => {
                    let pid = proto::get_status(&mut self.ctl).map(|s| s.pid).unwrap_or(0);
                    return Err(AuditAgentError::Busy {
                        pid,
                        comm: comm(pid),
                    });
                }
                Some(code) => {
                    return Err(kernel("register as the audit daemon")(
                        io::Error::from_raw_os_error(-code),
                    ))
                }
                // A record that came first (held by the kernel while no
                // daemon was registered).
                None => self.datagram(n),
            }
        }
    }

    /// Things worth telling the user about the start (take-over, cleanup).
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    fn note_status(&mut self, st: Status) {
        self.stats.lost += st.lost.wrapping_sub(self.last_lost) as u64;
        self.last_lost = st.lost;
        self.stats.backlog_wait += st.backlog_wait_time_actual.wrapping_sub(self.last_wait) as u64;
        self.last_wait = st.backlog_wait_time_actual;
        self.stats.backlog = st.backlog;
        self.stats.backlog_max = self.stats.backlog_max.max(st.backlog);
        self.stats.backlog_limit = st.backlog_limit;
    }

    /// Read the kernel's counters (lost, backlog) now.
    pub fn refresh(&mut self) -> Result<(), AuditAgentError> {
        let st = proto::get_status(&mut self.ctl).map_err(kernel("read the audit status"))?;
        self.note_status(st);
        self.last_status = Instant::now();
        Ok(())
    }

    /// One datagram from the kernel.
    fn datagram(&mut self, n: usize) {
        self.stats.messages += 1;
        let Some((ty, payload)) = netlink::record(&self.buf[..n]) else {
            self.stats.bad_messages += 1;
            return;
        };
        match ty {
            NLMSG_NOOP | NLMSG_ERROR | NLMSG_DONE | AUDIT_REPLACE => {}
            t if RType::from_number(t as u32).is_some() => {
                self.stats.records += 1;
                let text = String::from_utf8_lossy(payload);
                self.parser.feed_record(t, &text, &mut self.out);
            }
            _ => self.stats.other_records += 1,
        }
    }

    /// Read every datagram waiting (at most a batch).
    fn drain(&mut self) -> Result<usize, AuditAgentError> {
        for i in 0..BATCH {
            match self.ev.recv(&mut self.buf, false) {
                Ok(Recv::Empty) => return Ok(i),
                Ok(Recv::Bad) => {
                    self.stats.messages += 1;
                    self.stats.bad_messages += 1;
                }
                Ok(Recv::Msg(n)) => self.datagram(n),
                // The socket's buffer overflowed: the kernel counts what it
                // could not deliver in `lost`.
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {}
                Err(e) => return Err(kernel("read the audit socket")(e)),
            }
        }
        Ok(BATCH)
    }

    fn emit(
        &mut self,
        sink: &mut dyn FnMut(Event) -> io::Result<()>,
    ) -> Result<(), AuditAgentError> {
        for ev in self.out.drain(..) {
            self.stats.events += 1;
            sink(ev).map_err(AuditAgentError::Sink)?;
        }
        Ok(())
    }

    /// Wait up to `timeout_ms` for records, and pass the events completed
    /// so far to `sink`.
    pub fn poll(
        &mut self,
        timeout_ms: i32,
        sink: &mut dyn FnMut(Event) -> io::Result<()>,
    ) -> Result<(), AuditAgentError> {
        let wait = timeout_ms.min(TICK.as_millis() as i32);
        if self
            .ev
            .wait(wait)
            .map_err(kernel("wait on the audit socket"))?
        {
            self.drain()?;
        }
        if self.last_tick.elapsed() >= TICK {
            self.last_tick = Instant::now();
            self.parser.tick(&mut self.out);
        }
        if self.last_status.elapsed() >= STATUS_EVERY {
            self.refresh()?;
        }
        self.emit(sink)
    }

    /// Counters so far (kernel counters as of the last second).
    pub fn stats(&self) -> Stats {
        let mut s = self.stats.clone();
        s.parse = self.parser.stats().clone();
        s
    }

    /// Events held back in the parser (order, incomplete, spawn window).
    pub fn held(&self) -> usize {
        self.parser.held()
    }

    /// The parser's first warnings (malformed records).
    pub fn warnings(&self) -> &[Warning] {
        self.parser.warnings()
    }

    /// Remove the rule, read what the kernel still holds, write out every
    /// event, and restore the audit state found at start.
    pub fn finish(
        mut self,
        sink: &mut dyn FnMut(Event) -> io::Result<()>,
    ) -> Result<Stats, AuditAgentError> {
        if let Some(rule) = self.rule.take() {
            proto::request(&mut self.ctl, AUDIT_DEL_RULE, &rule.to_bytes())
                .map_err(kernel("delete the audit rule"))?;
        }
        // Records of calls that ended before the rule went are queued in the
        // kernel or in the socket: read until both are empty.
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(5) {
            let more = self
                .ev
                .wait(50)
                .map_err(kernel("wait on the audit socket"))?;
            if more {
                self.drain()?;
                self.emit(sink)?;
                continue;
            }
            let st = proto::get_status(&mut self.ctl).map_err(kernel("read the audit status"))?;
            self.note_status(st);
            if st.backlog == 0 {
                break;
            }
        }
        self.parser.finish(&mut self.out);
        self.emit(sink)?;
        self.refresh()?;
        self.restore()?;
        Ok(self.stats())
    }

    /// Undo what `start` did, in reverse; every step is tried.
    fn restore(&mut self) -> Result<(), AuditAgentError> {
        let mut first = None;
        let mut keep = |r: Result<(), AuditAgentError>| {
            if let Err(e) = r {
                first.get_or_insert(e);
            }
        };
        if let Some(rule) = self.rule.take() {
            keep(
                proto::request(&mut self.ctl, AUDIT_DEL_RULE, &rule.to_bytes())
                    .map_err(kernel("delete the audit rule")),
            );
        }
        if std::mem::take(&mut self.changed) {
            keep(
                proto::set_status(
                    &mut self.ctl,
                    Status {
                        mask: proto::STATUS_ENABLED | proto::STATUS_BACKLOG_LIMIT,
                        enabled: self.saved.enabled,
                        backlog_limit: self.saved.backlog_limit,
                        ..Status::default()
                    },
                )
                .map_err(kernel("restore the audit enabled flag and backlog limit")),
            );
        }
        if std::mem::take(&mut self.registered) {
            keep(
                proto::set_status(
                    &mut self.ctl,
                    Status {
                        mask: proto::STATUS_PID,
                        pid: 0,
                        ..Status::default()
                    },
                )
                .map_err(kernel("unregister as the audit daemon")),
            );
        }
        if first.is_none() {
            if let Some(p) = self.state_path.take() {
                let _ = std::fs::remove_file(p);
            }
        }
        first.map_or(Ok(()), Err)
    }
}

impl Drop for AuditAgent {
    fn drop(&mut self) {
        if let Err(e) = self.restore() {
            eprintln!(
                "tomo: agent: cleaning up the audit state failed: {e}; run `tomo agent --source audit --remove-rules`"
            );
        }
    }
}

/// What [`remove_rules`] did.
#[derive(Clone, Debug, Default)]
pub struct Cleanup {
    /// `tomo-agent` rules deleted.
    pub removed: usize,
    /// Pids of running agents whose rules were left alone.
    pub kept: Vec<u32>,
    /// The state a killed agent found, put back.
    pub restored: Option<Saved>,
    /// A dead agent still registered as the audit daemon, unregistered.
    pub unregistered: Option<u32>,
}

/// `tomo agent --source audit --remove-rules`: undo what an agent that was
/// killed (`kill -9`, power loss of the process) left in the kernel: its
/// rules, its registration, and the enabled flag and backlog limit it had
/// changed (from [`STATE_FILE`]). Rules of a running agent are kept.
pub fn remove_rules() -> Result<Cleanup, AuditAgentError> {
    let mut ctl = Socket::open().map_err(kernel("open the audit netlink socket"))?;
    let st = proto::get_status(&mut ctl).map_err(kernel("read the audit status"))?;
    let (removed, kept) = delete_stale_rules(&mut ctl, st.pid)?;
    let mut c = Cleanup {
        removed,
        kept,
        ..Cleanup::default()
    };
    let daemon_alive = st.pid != 0 && alive(st.pid);
    if st.pid != 0 && !daemon_alive {
        // The kernel checks the registered port before accepting this, and
        // forgets it when it is gone.
        proto::set_status(
            &mut ctl,
            Status {
                mask: proto::STATUS_PID,
                pid: 0,
                ..Status::default()
            },
        )
        .map_err(kernel("unregister the dead audit daemon"))?;
        c.unregistered = Some(st.pid);
    }
    let path = Path::new(STATE_FILE);
    if let Some(s) = read_state(path) {
        if !alive(s.pid) {
            if !daemon_alive && st.enabled != 2 {
                proto::set_status(
                    &mut ctl,
                    Status {
                        mask: proto::STATUS_ENABLED | proto::STATUS_BACKLOG_LIMIT,
                        enabled: s.enabled,
                        backlog_limit: s.backlog_limit,
                        ..Status::default()
                    },
                )
                .map_err(kernel("restore the audit enabled flag and backlog limit"))?;
                c.restored = Some(s);
            }
            std::fs::remove_file(path).map_err(|error| AuditAgentError::State {
                path: path.to_path_buf(),
                error,
            })?;
        }
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_file_round_trip() {
        let s = Saved {
            pid: 12,
            enabled: 0,
            backlog_limit: 64,
        };
        assert_eq!(Saved::parse(&s.text()), Some(s));
        assert_eq!(Saved::parse("pid=1\nenabled=x\n"), None);
        assert_eq!(Saved::parse(""), None);
    }

    #[test]
    fn the_rule_selects_every_mapped_call() {
        let r = Rule::exit_always(syscalls::ARCH_X86_64 as u32, &rule_syscalls(), 7, RULE_KEY);
        let got: Vec<u64> = r.syscalls().collect();
        let want: Vec<u64> = syscalls::X86_64.iter().map(|&(n, _)| n).collect();
        assert_eq!(got, want);
        assert!(want.contains(&257) && want.contains(&0) && want.contains(&59));
    }
}
