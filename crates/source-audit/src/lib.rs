//! Linux audit logs as normalized Tomo events.
//!
//! Reads what auditd writes to `/var/log/audit/audit.log` (raw or
//! `log_format = ENRICHED`, with or without `node=`, also kernel-log lines
//! `audit: type=1300 audit(…)`) and turns every audited system call into
//! the same [`tomo_event::Event`] the ptrace recorder produces for it, so
//! every query works unchanged.
//!
//! Stages, all streaming:
//! 1. [`record::parse_line`]: one line → a record (header, `key=value`
//!    fields, hex-encoded strings decoded on use, the ENRICHED section).
//! 2. Assembly: records are grouped by `(node, serial)` until the event's
//!    `PROCTITLE` (the kernel's last record of a syscall event; auditd
//!    drops the `EOE` that follows it) or `EOE`; events that get neither
//!    (cut logs, other writers) are completed once the log is 1000 serials
//!    further on, 20 000 records later, or at the end of input.
//! 3. Ordering: completed events are released in serial order (the kernel
//!    assigns serials when it logs a call, i.e. in exit order, the order in
//!    which data flowed). A serial that drops far back starts a new boot.
//! 4. Conversion ([`convert`]): one event → at most one [`Op`], with a
//!    model of every process's descriptor table to name the objects of
//!    descriptor calls. A `fork`/`clone` logged after its child's first
//!    calls (vfork: the parent returns only once the child has exec'd) is
//!    moved in front of them.
//!
//! `seq` is `2 × serial + 1`, so `seq / 2` is always the audit serial to
//! look up with `ausearch -a`; the even value `2 × serial` is used by an
//! event synthesized in front of the one with that serial (an `Observed`
//! for a process seen for the first time, or a moved spawn).
//!
//! Limits (see the README section "Importing Linux audit logs"): audit
//! logs only four arguments and no descriptor objects, no inode numbers of
//! pipes and sockets (synthetic ones are used, on device 0), no thread ids,
//! no process start times (`start_ticks` is 0), and only the calls its rules
//! select.

pub mod convert;
pub mod record;
pub mod syscalls;

use convert::{Assembled, Converted, Converter};
use record::{Line, RType, Record};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::fmt;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use tomo_event::{Event, Id128, Op, ProcRef, SpawnKind};
use uuid::Uuid;

/// Namespace of the host and boot ids this source derives.
const NS: Uuid = Uuid::from_u128(0x3a0d_5c4e_71b2_4f0e_9c61_2d8e_4b7a_90f3);
/// An event still missing its EOE is completed once the log is this many
/// serials further on…
const FLUSH_SERIALS: u64 = 1000;
/// …or this many records later.
const FLUSH_RECORDS: u64 = 20_000;
/// Completed events wait this many serials for a smaller one to complete.
const REORDER_SERIALS: u64 = 1000;
const MAX_READY: usize = 10_000;
/// Events kept back so that a spawn logged late can be moved in front of
/// its child's first events.
const OUT_WINDOW: usize = 8192;
/// A serial this far below the largest seen so far means a reboot.
const BOOT_SERIAL_DROP: u64 = 1000;
const MAX_WARNINGS: usize = 1000;
/// Live: an event still missing records is completed after this many
/// ticks (5 s at the agent's 200 ms): when its backlog is full the kernel
/// makes a process wait between the records of one event, so a gap in
/// serials or records says nothing there, only time does.
const LIVE_PENDING_TICKS: usize = 25;
/// Live: at most this many events missing records are kept (each thread
/// has at most one event in progress; the rest lost records); the oldest
/// are completed first.
const LIVE_MAX_PENDING: usize = 20_000;
/// Longer lines are not audit records (the kernel caps a record at ~9 KB).
pub const MAX_LINE: usize = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: compressed file; decompress it first (e.g. gunzip -k)", path.display())]
    Compressed { path: PathBuf },
    #[error("writing the events failed: {0}")]
    Sink(#[source] std::io::Error),
}

/// A line that could not be used, and where it is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Warning {
    pub file: String,
    pub line: u64,
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.message)
    }
}

/// Counters of one import.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    pub lines: u64,
    /// Records of the types events are made of.
    pub records: u64,
    /// Records of other types (user-space messages, AVC, daemon, …): skipped.
    pub other_records: u64,
    /// Lines that are not audit records or are malformed (see the warnings).
    pub bad_lines: u64,
    /// Events assembled (one per serial).
    pub events: u64,
    /// Events completed without their PROCTITLE or EOE record (by a serial
    /// gap, distance, or the end of input).
    pub incomplete_events: u64,
    /// Records that arrived after their event was complete (dropped).
    pub late_records: u64,
    /// Events without a SYSCALL record (nothing to report).
    pub events_without_syscall: u64,
    /// System calls this source does not map to an operation.
    pub unmapped_syscalls: u64,
    /// Calls of an architecture without built-in numbers and no ENRICHED name.
    pub unsupported_arch: u64,
    /// Calls on descriptors the model never saw created (dropped, not guessed).
    pub untracked_fd: u64,
    /// pipe/socketpair events without their FD_PAIR record.
    pub missing_records: u64,
    /// Spawns moved in front of their child's first events.
    pub relocated_spawns: u64,
    /// Events whose serial was below one already written (renumbered).
    pub out_of_order: u64,
    /// Times the descriptor model was reset to bound its memory.
    pub state_resets: u64,
    pub boots: u64,
    pub hosts: u64,
    /// Normalized events produced.
    pub events_out: u64,
    /// Warnings in total (only the first 1000 are kept).
    pub warnings: u64,
}

/// How to name the machine(s) the log comes from.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Host of records without `node=` (typically this machine's id).
    pub default_host: Id128,
    /// Use this host for every record, whatever `node=` says.
    pub host_override: Option<Id128>,
}

/// The host id for a `node=` name: stable across imports.
pub fn node_host(name: &str) -> Id128 {
    Id128(*Uuid::new_v5(&NS, format!("audit-node:{name}").as_bytes()).as_bytes())
}

/// Audit logs carry no boot id: one is derived from the host and the first
/// timestamp seen in that boot, so the files of one boot imported together
/// agree on it.
fn boot_id(host: Id128, first_ts_ns: u64) -> Id128 {
    let mut name = b"audit-boot".to_vec();
    name.extend_from_slice(&host.0);
    name.extend_from_slice(&(first_ts_ns / 1_000_000_000).to_le_bytes());
    Id128(*Uuid::new_v5(&NS, &name).as_bytes())
}

struct Pending {
    ev: Assembled,
    arrival: u64,
    file: usize,
    line: u64,
}

struct BootState {
    id: Id128,
    max_serial: u64,
    max_ts: u64,
}

/// One `node=` (or the unnamed local one).
struct Stream {
    host: Id128,
    boot: Option<BootState>,
    pending: HashMap<u64, Pending>,
    ready: BTreeMap<u64, Pending>,
    done: HashSet<u64>,
    done_order: VecDeque<u64>,
    max_completed: u64,
}

/// One slot of the output window: an event, and what goes in front of it.
struct Slot {
    pre: Option<Event>,
    main: Event,
    /// A `clone3` not yet known to have made a process.
    clone3_child: Option<u32>,
}

type PidKey = (Id128, Id128, u32);

#[derive(Default)]
struct OutBuf {
    slots: VecDeque<Slot>,
    base: u64,
    by_pid: HashMap<PidKey, VecDeque<u64>>,
    unresolved: HashMap<PidKey, u64>,
    last_seq: HashMap<(Id128, Id128), u64>,
}

/// The streaming importer. Feed it lines in log order with
/// [`Parser::feed_line`], then call [`Parser::finish`].
pub struct Parser {
    opts: Options,
    stats: Stats,
    warnings: Vec<Warning>,
    files: Vec<String>,
    streams: HashMap<Option<String>, Stream>,
    conv: Converter,
    out: OutBuf,
    records_seen: u64,
    hosts: HashSet<Id128>,
    first: Option<(Id128, Id128)>,
    /// The boot of every record, when the source knows it (live capture).
    live_boot: Option<Id128>,
    /// Input index and record count of [`Parser::feed_record`].
    live_input: Option<usize>,
    live_records: u64,
    /// Where the last [`Parser::tick`]s were: records seen, next slot id.
    tick_marks: VecDeque<(u64, u64)>,
}

impl Parser {
    pub fn new(opts: Options) -> Parser {
        Parser {
            opts,
            stats: Stats::default(),
            warnings: Vec::new(),
            files: Vec::new(),
            streams: HashMap::new(),
            conv: Converter::new(),
            out: OutBuf::default(),
            records_seen: 0,
            hosts: HashSet::new(),
            first: None,
            live_boot: None,
            live_input: None,
            live_records: 0,
            tick_marks: VecDeque::new(),
        }
    }

    /// For a live source (the audit netlink socket), which knows its boot:
    /// every record gets this boot id instead of one derived from the host
    /// and the first timestamp. A serial far below the others is then not
    /// a reboot: a record delayed by the kernel (which makes a process wait
    /// between the records of one event while its backlog is full) is
    /// still added to its event, and only the 32-bit serial counter
    /// wrapping around starts afresh (keeping the descriptor model).
    /// Events missing records are completed by [`Parser::tick`] after
    /// `LIVE_PENDING_TICKS` ticks, or, past `LIVE_MAX_PENDING` of them,
    /// oldest first.
    pub fn set_live(&mut self, boot: Id128) {
        self.live_boot = Some(boot);
    }

    /// One record as the kernel sends it on the audit netlink socket: the
    /// message type is the record type (1300 SYSCALL, 1302 PATH, …), the
    /// payload its text `audit(SECS.MS:SERIAL): key=value …`. It goes
    /// through the same parser as a log line (as `type=1300 msg=audit(…`);
    /// warnings name the input `netlink` and the message's number.
    pub fn feed_record(&mut self, rtype: u16, payload: &str, out: &mut Vec<Event>) {
        let file = match self.live_input {
            Some(f) => f,
            None => {
                let f = self.add_file("netlink");
                self.live_input = Some(f);
                f
            }
        };
        self.live_records += 1;
        let payload = payload.trim_end_matches(['\0', '\n']);
        let line = format!("type={rtype} msg={payload}");
        self.feed_line(file, self.live_records, &line, out);
    }

    /// For a live source, called periodically (every 100–500 ms): bounds
    /// how long events are held back when records stop coming. Completed
    /// events that were already held at the previous call are let go
    /// (converted in serial order, and the window kept for late spawns
    /// written out), so none waits more than two periods. Events still
    /// missing their last record are completed (and counted in
    /// [`Stats::incomplete_events`]) once they have waited
    /// `LIVE_PENDING_TICKS` periods ([`Parser::set_live`]; one period
    /// otherwise). Memory stays bounded however long the capture runs.
    pub fn tick(&mut self, out: &mut Vec<Event>) {
        let keep = if self.live_boot.is_some() {
            LIVE_PENDING_TICKS
        } else {
            1
        };
        if let Some(&(rec_mark, slot_mark)) = self.tick_marks.back() {
            let pending_mark = (self.tick_marks.len() >= keep)
                .then(|| self.tick_marks[self.tick_marks.len() - keep].0);
            let mut nodes: Vec<Option<String>> = self.streams.keys().cloned().collect();
            nodes.sort();
            for node in &nodes {
                if let Some(pm) = pending_mark {
                    let s = self.stream(node);
                    let mut old: Vec<u64> = s
                        .pending
                        .iter()
                        .filter(|(_, p)| p.arrival <= pm)
                        .map(|(&serial, _)| serial)
                        .collect();
                    old.sort_unstable();
                    for serial in old {
                        self.complete(node, serial, true, out);
                    }
                }
                // Completed events in serial order, up to the last one that
                // has waited a whole period.
                let s = self.stream(node);
                let upto = s
                    .ready
                    .iter()
                    .filter(|(_, p)| p.arrival <= rec_mark)
                    .map(|(&serial, _)| serial)
                    .next_back();
                if let Some(upto) = upto {
                    self.release_upto(node, upto, out);
                }
            }
            while self.out.base < slot_mark && !self.out.slots.is_empty() {
                self.release_front(out);
            }
        }
        self.tick_marks.push_back((
            self.records_seen,
            self.out.base + self.out.slots.len() as u64,
        ));
        while self.tick_marks.len() > keep {
            self.tick_marks.pop_front();
        }
    }

    /// Events held back (incomplete, waiting for order, in the spawn
    /// window): what a live source's memory holds.
    pub fn held(&self) -> usize {
        self.streams
            .values()
            .map(|s| s.pending.len() + s.ready.len())
            .sum::<usize>()
            + self.out.slots.len()
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The first warnings (at most 1000; [`Stats::warnings`] counts all).
    pub fn warnings(&self) -> &[Warning] {
        &self.warnings
    }

    /// Host and boot of the first event, for the recording's header.
    pub fn first_ids(&self) -> Option<(Id128, Id128)> {
        self.first
    }

    /// Register an input name; returns its index for [`Parser::feed_line`].
    pub fn add_file(&mut self, name: &str) -> usize {
        self.files.push(name.to_string());
        self.files.len() - 1
    }

    fn warn(&mut self, file: usize, line: u64, message: String) {
        self.stats.warnings += 1;
        if self.warnings.len() < MAX_WARNINGS {
            self.warnings.push(Warning {
                file: self.files.get(file).cloned().unwrap_or_default(),
                line,
                message,
            });
        }
    }

    /// A line that could not even be read as text of sane length.
    pub fn bad_line(&mut self, file: usize, line: u64, message: String) {
        self.stats.lines += 1;
        self.stats.bad_lines += 1;
        self.warn(file, line, message);
    }

    /// Parse one line (`line_no` counts from 1); finished events are
    /// appended to `out`.
    pub fn feed_line(&mut self, file: usize, line_no: u64, line: &str, out: &mut Vec<Event>) {
        self.stats.lines += 1;
        match record::parse_line(line) {
            Err(m) => {
                self.stats.bad_lines += 1;
                self.warn(file, line_no, m);
            }
            Ok(Line::Skip { other_type }) => {
                if other_type {
                    self.stats.other_records += 1;
                }
            }
            Ok(Line::Record(r)) => {
                self.stats.records += 1;
                self.records_seen += 1;
                self.add_record(r, file, line_no, out);
            }
        }
    }

    fn stream(&mut self, node: &Option<String>) -> &mut Stream {
        if !self.streams.contains_key(node) {
            let host = self.opts.host_override.unwrap_or_else(|| match node {
                Some(n) => node_host(n),
                None => self.opts.default_host,
            });
            if self.hosts.insert(host) {
                self.stats.hosts += 1;
            }
            self.streams.insert(
                node.clone(),
                Stream {
                    host,
                    boot: None,
                    pending: HashMap::new(),
                    ready: BTreeMap::new(),
                    done: HashSet::new(),
                    done_order: VecDeque::new(),
                    max_completed: 0,
                },
            );
        }
        self.streams.get_mut(node).expect("inserted above")
    }

    fn add_record(&mut self, r: Record, file: usize, line: u64, out: &mut Vec<Event>) {
        let node = r.node.clone();
        let live = self.live_boot.is_some();
        let s = self.stream(&node);
        let host = s.host;
        let new_boot = match &s.boot {
            None => true,
            Some(_) if live => false,
            Some(b) => {
                r.serial.saturating_add(BOOT_SERIAL_DROP) < b.max_serial
                    || (r.serial < b.max_serial
                        && r.ts_ns > b.max_ts.saturating_add(60_000_000_000))
            }
        };
        let wrapped = live
            && s.boot
                .as_ref()
                .is_some_and(|b| r.serial.saturating_add(1 << 31) < b.max_serial);
        let had_boot = s.boot.is_some();
        if wrapped {
            // The kernel's serial counter went round: finish the old round,
            // keep the processes and their descriptors.
            self.flush_stream(&node, out);
            self.release_all(out);
            let s = self.stream(&node);
            s.done.clear();
            s.done_order.clear();
            s.max_completed = 0;
            if let Some(b) = s.boot.as_mut() {
                b.max_serial = r.serial;
            }
        }
        if new_boot {
            if had_boot {
                self.flush_stream(&node, out);
                self.release_all(out);
                let s = self.stream(&node);
                if let Some(b) = s.boot.take() {
                    self.conv.end_boot(host, b.id);
                }
            }
            self.stats.boots += 1;
            let id = self.live_boot.unwrap_or_else(|| boot_id(host, r.ts_ns));
            let s = self.stream(&node);
            s.boot = Some(BootState {
                id,
                max_serial: r.serial,
                max_ts: r.ts_ns,
            });
            s.done.clear();
            s.done_order.clear();
            s.max_completed = 0;
        }
        let s = self.stream(&node);
        let b = s.boot.as_mut().expect("boot set above");
        b.max_serial = b.max_serial.max(r.serial);
        b.max_ts = b.max_ts.max(r.ts_ns);
        let serial = r.serial;
        if s.done.contains(&serial) {
            if r.rtype == RType::Eoe {
                // The event was already completed by its PROCTITLE.
                return;
            }
            self.stats.late_records += 1;
            self.warn(
                file,
                line,
                format!("record for event {serial}, which was already complete (duplicate or late record): dropped"),
            );
            return;
        }
        let arrival = self.records_seen;
        let s = self.stream(&node);
        let p = s.pending.entry(serial).or_insert_with(|| Pending {
            ev: Assembled {
                ts_ns: r.ts_ns,
                serial,
                ..Default::default()
            },
            arrival,
            file,
            line,
        });
        let ev = &mut p.ev;
        let mut dup = false;
        // The kernel sends PROCTITLE last, just before EOE, and auditd does
        // not write EOE at all: either one completes the event.
        let last = matches!(r.rtype, RType::Eoe | RType::Proctitle);
        let put = |slot: &mut Option<Record>, r: Record, dup: &mut bool| {
            if slot.is_some() {
                *dup = true;
            } else {
                *slot = Some(r);
            }
        };
        match r.rtype {
            RType::Syscall => put(&mut ev.syscall, r, &mut dup),
            RType::Execve => ev.execve.push(r),
            RType::Path => ev.paths.push(r),
            RType::Cwd => put(&mut ev.cwd, r, &mut dup),
            RType::Sockaddr => put(&mut ev.sockaddr, r, &mut dup),
            RType::Proctitle => put(&mut ev.proctitle, r, &mut dup),
            RType::FdPair => put(&mut ev.fd_pair, r, &mut dup),
            RType::ObjPid => ev.obj_pids.push(r),
            RType::Mmap => put(&mut ev.mmap, r, &mut dup),
            RType::Openat2 => put(&mut ev.openat2, r, &mut dup),
            RType::Eoe => {}
        }
        if dup {
            self.warn(
                file,
                line,
                format!("second record of the same type in event {serial}: ignored"),
            );
        }
        if last {
            self.complete(&node, serial, false, out);
        }
        let periodic = self.records_seen & 255 == 0;
        if periodic || self.stream(&node).pending.len() > 64 {
            self.flush_stale(&node, out);
        }
    }

    /// Complete events that will not get their EOE any more.
    fn flush_stale(&mut self, node: &Option<String>, out: &mut Vec<Event>) {
        if self.live_boot.is_some() {
            // Live, records of one event may be far apart; time (`tick`)
            // completes events, and this cap bounds them.
            let s = self.stream(node);
            if s.pending.len() <= LIVE_MAX_PENDING {
                return;
            }
            let mut by_age: Vec<(u64, u64)> =
                s.pending.iter().map(|(&sr, p)| (p.arrival, sr)).collect();
            by_age.sort_unstable();
            let excess = s.pending.len() - LIVE_MAX_PENDING * 3 / 4;
            let mut old: Vec<u64> = by_age.iter().take(excess).map(|&(_, sr)| sr).collect();
            old.sort_unstable();
            for serial in old {
                self.complete(node, serial, true, out);
            }
            return;
        }
        let seen = self.records_seen;
        let s = self.stream(node);
        let max = s.boot.as_ref().map(|b| b.max_serial).unwrap_or(0);
        let mut stale: Vec<u64> = s
            .pending
            .iter()
            .filter(|(&serial, p)| {
                serial.saturating_add(FLUSH_SERIALS) < max
                    || p.arrival.saturating_add(FLUSH_RECORDS) < seen
            })
            .map(|(&s, _)| s)
            .collect();
        stale.sort_unstable();
        for serial in stale {
            self.complete(node, serial, true, out);
        }
    }

    fn complete(
        &mut self,
        node: &Option<String>,
        serial: u64,
        incomplete: bool,
        out: &mut Vec<Event>,
    ) {
        let s = self.stream(node);
        let Some(p) = s.pending.remove(&serial) else {
            return;
        };
        s.done.insert(serial);
        s.done_order.push_back(serial);
        if s.done_order.len() > 100_000 {
            if let Some(old) = s.done_order.pop_front() {
                s.done.remove(&old);
            }
        }
        s.max_completed = s.max_completed.max(serial);
        s.ready.insert(serial, p);
        self.stats.events += 1;
        if incomplete {
            self.stats.incomplete_events += 1;
        }
        self.release_ready(node, false, out);
    }

    /// Convert completed events in serial order, once no smaller serial is
    /// likely to complete any more (or all of them, with `all`).
    fn release_ready(&mut self, node: &Option<String>, all: bool, out: &mut Vec<Event>) {
        loop {
            let s = self.stream(node);
            let Some((&first, _)) = s.ready.first_key_value() else {
                break;
            };
            if !all
                && first.saturating_add(REORDER_SERIALS) > s.max_completed
                && s.ready.len() <= MAX_READY
            {
                break;
            }
            let p = s.ready.remove(&first).expect("first key");
            self.convert_one(node, first, p, out);
        }
    }

    fn convert_one(
        &mut self,
        node: &Option<String>,
        serial: u64,
        p: Pending,
        out: &mut Vec<Event>,
    ) {
        let s = self.stream(node);
        let host = s.host;
        let boot = s.boot.as_ref().map(|b| b.id).unwrap_or_default();
        match self.conv.convert(host, boot, &p.ev, &mut self.stats) {
            Ok(Some(c)) => self.push_out(c, out),
            Ok(None) => {}
            Err(m) => self.warn(p.file, p.line, format!("event {serial}: {m}")),
        }
    }

    /// Convert the completed events with serials up to `upto`, in order.
    fn release_upto(&mut self, node: &Option<String>, upto: u64, out: &mut Vec<Event>) {
        loop {
            let s = self.stream(node);
            match s.ready.first_key_value() {
                Some((&first, _)) if first <= upto => {}
                _ => break,
            }
            let Some((first, p)) = s.ready.pop_first() else {
                break;
            };
            self.convert_one(node, first, p, out);
        }
    }

    fn flush_stream(&mut self, node: &Option<String>, out: &mut Vec<Event>) {
        let s = self.stream(node);
        let mut serials: Vec<u64> = s.pending.keys().copied().collect();
        serials.sort_unstable();
        for serial in serials {
            self.complete(node, serial, true, out);
        }
        self.release_ready(node, true, out);
    }

    /// End of input: everything still held back is finished and written.
    pub fn finish(&mut self, out: &mut Vec<Event>) {
        let mut nodes: Vec<Option<String>> = self.streams.keys().cloned().collect();
        nodes.sort();
        for n in nodes {
            self.flush_stream(&n, out);
        }
        self.release_all(out);
    }

    fn push_out(&mut self, c: Converted, out: &mut Vec<Event>) {
        let Converted {
            observed,
            mut main,
            clone3_child,
        } = c;
        let (h, b) = (main.host, main.boot);
        if let Op::Spawn { kind, child, .. } = &main.op {
            if main.ok() && *kind != SpawnKind::Thread {
                if let Some(id) = self.first_of_child(h, b, child.pid, main.ts_ns) {
                    // The child acted before its parent's fork returned
                    // (vfork, or a child quicker than its parent): the spawn
                    // goes in front of the child's first event, in the slot
                    // reserved for a synthesized event.
                    let slot = &mut self.out.slots[(id - self.out.base) as usize];
                    main.seq = slot.main.seq - 1;
                    slot.pre = Some(main);
                    self.stats.relocated_spawns += 1;
                    if let Some(o) = observed {
                        self.push_slot(o, None, out);
                    }
                    return;
                }
            }
        }
        // The clone3 that made this process, if still undecided, made a process.
        self.out.unresolved.remove(&(h, b, main.proc.pid));
        let id = self.out.base + self.out.slots.len() as u64;
        if let Some(c) = clone3_child {
            self.out.unresolved.insert((h, b, c), id);
        }
        self.out
            .by_pid
            .entry((h, b, main.proc.pid))
            .or_default()
            .push_back(id);
        self.out.slots.push_back(Slot {
            pre: observed,
            main,
            clone3_child,
        });
        while self.out.slots.len() > OUT_WINDOW {
            self.release_front(out);
        }
    }

    /// A synthesized event with no event of its own behind it.
    fn push_slot(&mut self, ev: Event, clone3_child: Option<u32>, out: &mut Vec<Event>) {
        let id = self.out.base + self.out.slots.len() as u64;
        self.out
            .by_pid
            .entry((ev.host, ev.boot, ev.proc.pid))
            .or_default()
            .push_back(id);
        self.out.slots.push_back(Slot {
            pre: None,
            main: ev,
            clone3_child,
        });
        while self.out.slots.len() > OUT_WINDOW {
            self.release_front(out);
        }
    }

    /// The slot of the child's first event still in the window, among those
    /// that began no earlier than the spawn (an older process with the same
    /// pid is not this child).
    fn first_of_child(&self, h: Id128, b: Id128, child: u32, ts: u64) -> Option<u64> {
        let ids = self.out.by_pid.get(&(h, b, child))?;
        let mut found = None;
        for &id in ids.iter().rev() {
            let slot = &self.out.slots[(id - self.out.base) as usize];
            if slot.main.ts_ns < ts {
                break;
            }
            if matches!(slot.main.op, Op::Exit { .. }) && found.is_some() {
                break;
            }
            if slot.main.seq & 1 == 0 {
                // A synthesized event has no reserved slot in front of it.
                break;
            }
            found = Some(id);
        }
        found
    }

    fn release_all(&mut self, out: &mut Vec<Event>) {
        while !self.out.slots.is_empty() {
            self.release_front(out);
        }
    }

    fn release_front(&mut self, out: &mut Vec<Event>) {
        let Some(mut slot) = self.out.slots.pop_front() else {
            return;
        };
        let id = self.out.base;
        self.out.base += 1;
        let key = (slot.main.host, slot.main.boot, slot.main.proc.pid);
        if let Some(q) = self.out.by_pid.get_mut(&key) {
            if q.front() == Some(&id) {
                q.pop_front();
            }
            if q.is_empty() {
                self.out.by_pid.remove(&key);
            }
        }
        if let Some(c) = slot.clone3_child {
            let ck = (slot.main.host, slot.main.boot, c);
            if self.out.unresolved.get(&ck) == Some(&id) {
                // No call of the new task ever appeared under its own pid:
                // it was a thread (pthread_create uses clone3).
                self.out.unresolved.remove(&ck);
                if let Op::Spawn { kind, child, .. } = &mut slot.main.op {
                    *kind = SpawnKind::Thread;
                    *child = ProcRef {
                        pid: slot.main.proc.pid,
                        tid: c,
                        ppid: slot.main.proc.ppid,
                        start_ticks: 0,
                    };
                }
            }
        }
        for ev in slot.pre.into_iter().chain(Some(slot.main)) {
            self.emit(ev, out);
        }
    }

    fn emit(&mut self, mut ev: Event, out: &mut Vec<Event>) {
        let last = self.out.last_seq.entry((ev.host, ev.boot)).or_insert(0);
        if *last != 0 && ev.seq <= *last {
            // Kept strictly increasing, as the schema requires.
            ev.seq = *last + 1;
            self.stats.out_of_order += 1;
        }
        *last = ev.seq;
        if self.first.is_none() {
            self.first = Some((ev.host, ev.boot));
        }
        self.stats.events_out += 1;
        out.push(ev);
    }
}

/// The first timestamp in a file (from the first lines that have one).
pub fn first_timestamp(path: &Path) -> Result<Option<u64>, AuditError> {
    let io = |source| AuditError::Io {
        path: path.to_path_buf(),
        source,
    };
    let f = std::fs::File::open(path).map_err(io)?;
    let mut r = BufReader::new(f);
    let mut buf = Vec::new();
    for _ in 0..1000 {
        buf.clear();
        let n = (&mut r)
            .take(MAX_LINE as u64)
            .read_until(b'\n', &mut buf)
            .map_err(io)?;
        if n == 0 {
            break;
        }
        let line = String::from_utf8_lossy(&buf);
        if let Ok(Line::Record(rec)) = record::parse_line(&line) {
            return Ok(Some(rec.ts_ns));
        }
        if let Some(i) = line.find("audit(") {
            let rest = &line[i..];
            let end = rest.find(')').map(|e| e + 1).unwrap_or(rest.len());
            if let Ok((ts, _)) = record::parse_stamp(&rest[..end]) {
                return Ok(Some(ts));
            }
        }
    }
    Ok(None)
}

/// Rotated logs (`audit.log.3`, `.2`, `.1`, `audit.log`) in time order: by
/// their first timestamp, whatever order they were named in. Files without
/// any timestamp keep their relative order, at the end.
pub fn order_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, AuditError> {
    let mut keyed = Vec::with_capacity(paths.len());
    for (i, p) in paths.iter().enumerate() {
        keyed.push((first_timestamp(p)?.unwrap_or(u64::MAX), i, p.clone()));
    }
    keyed.sort();
    Ok(keyed.into_iter().map(|(_, _, p)| p).collect())
}

/// Host and boot of the first record of the (ordered) files, for a
/// recording's header, which is written before the first event is known.
pub fn header_ids(
    paths: &[PathBuf],
    keep_order: bool,
    opts: &Options,
) -> Result<Option<(Id128, Id128)>, AuditError> {
    let paths = if keep_order {
        paths.to_vec()
    } else {
        order_files(paths)?
    };
    for path in &paths {
        let io = |source| AuditError::Io {
            path: path.clone(),
            source,
        };
        let mut r = BufReader::new(std::fs::File::open(path).map_err(io)?);
        let mut buf = Vec::new();
        for _ in 0..1000 {
            buf.clear();
            let n = (&mut r)
                .take(MAX_LINE as u64)
                .read_until(b'\n', &mut buf)
                .map_err(io)?;
            if n == 0 {
                break;
            }
            if let Ok(Line::Record(rec)) = record::parse_line(&String::from_utf8_lossy(&buf)) {
                let host = opts.host_override.unwrap_or_else(|| match &rec.node {
                    Some(n) => node_host(n),
                    None => opts.default_host,
                });
                return Ok(Some((host, boot_id(host, rec.ts_ns))));
            }
        }
    }
    Ok(None)
}

/// Feed one input through `parser`, passing finished events to `sink` and
/// the number of bytes read to `progress`.
pub fn read_input(
    parser: &mut Parser,
    name: &str,
    input: impl Read,
    progress: &mut dyn FnMut(u64),
    sink: &mut dyn FnMut(Event) -> std::io::Result<()>,
) -> Result<(), AuditError> {
    let path = PathBuf::from(name);
    let io = |source| AuditError::Io {
        path: path.clone(),
        source,
    };
    let file = parser.add_file(name);
    let mut r = BufReader::with_capacity(256 << 10, input);
    if r.fill_buf().map_err(io)?.starts_with(&[0x1f, 0x8b]) {
        return Err(AuditError::Compressed { path });
    }
    let mut buf = Vec::new();
    let mut out = Vec::new();
    let mut line_no = 0u64;
    loop {
        buf.clear();
        let n = (&mut r)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut buf)
            .map_err(io)?;
        if n == 0 {
            break;
        }
        line_no += 1;
        progress(n as u64);
        if buf.len() > MAX_LINE && buf.last() != Some(&b'\n') {
            // Skip the rest of the monster line.
            loop {
                buf.clear();
                let m = (&mut r)
                    .take(MAX_LINE as u64)
                    .read_until(b'\n', &mut buf)
                    .map_err(io)?;
                progress(m as u64);
                if m == 0 || buf.last() == Some(&b'\n') {
                    break;
                }
            }
            parser.bad_line(file, line_no, format!("line longer than {MAX_LINE} bytes"));
            continue;
        }
        parser.feed_line(file, line_no, &String::from_utf8_lossy(&buf), &mut out);
        for ev in out.drain(..) {
            sink(ev).map_err(AuditError::Sink)?;
        }
    }
    Ok(())
}

/// Import whole files: ordered by [`order_files`] unless `keep_order`.
pub fn read_files(
    parser: &mut Parser,
    paths: &[PathBuf],
    keep_order: bool,
    progress: &mut dyn FnMut(u64),
    sink: &mut dyn FnMut(Event) -> std::io::Result<()>,
) -> Result<(), AuditError> {
    let paths = if keep_order {
        paths.to_vec()
    } else {
        order_files(paths)?
    };
    for p in &paths {
        let f = std::fs::File::open(p).map_err(|source| AuditError::Io {
            path: p.clone(),
            source,
        })?;
        read_input(parser, &p.display().to_string(), f, progress, sink)?;
    }
    let mut out = Vec::new();
    parser.finish(&mut out);
    for ev in out {
        sink(ev).map_err(AuditError::Sink)?;
    }
    Ok(())
}

/// Parse a whole log held in memory (tests, fuzzing): the events and the
/// parser (for its stats and warnings).
pub fn parse_text(name: &str, text: &[u8], opts: Options) -> (Vec<Event>, Parser) {
    let mut p = Parser::new(opts);
    let mut events = Vec::new();
    let res = read_input(&mut p, name, text, &mut |_| {}, &mut |e| {
        events.push(e);
        Ok(())
    });
    if let Err(e) = res {
        p.bad_line(0, 0, e.to_string());
    }
    let mut out = Vec::new();
    p.finish(&mut out);
    events.extend(out);
    (events, p)
}
