//! strace output as normalized Tomo events.
//!
//! Reads what `strace -f -tt -yy -o FILE cmd` writes (also `-ttt`, `-t`,
//! `-r`, `-T`, and the `[pid N]` prefixes of output to stderr) and turns
//! each traced call into the [`tomo_event::Event`] the ptrace recorder
//! produces for it, so every query works on an strace log from a machine
//! where Tomo never ran.
//!
//! Streaming, one pass:
//! 1. [`line::split`]: pid, timestamp and body of a line; halves of calls
//!    that blocked (`<unfinished ...>` / `<... name resumed>`) are joined
//!    per thread, and the call is handled where it finished.
//! 2. A process's lines that come before the `clone`/`fork`/`vfork` that
//!    made it has returned (strace prints a vfork child's exec before its
//!    parent's vfork returns) are held until the spawn is seen, then
//!    replayed with the child's inherited descriptor table; a process whose
//!    spawn never comes (attached with `-p`) is adopted as a root after
//!    10 000 lines or at the end.
//! 3. [`convert::Model`]: processes, threads and descriptor tables, and the
//!    mapping of each call. See there for identities: strace shows no
//!    inodes for files, so files are identified by path (renames and
//!    unlinks followed).
//!
//! Lines that cannot be parsed are reported as `file:line: reason` and
//! skipped. Without `-yy`, calls on descriptors the model never saw opened
//! are skipped and counted.

pub mod convert;
pub mod line;

use convert::{MapStats, Model};
use line::{Body, Stamp};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use tomo_event::{Event, Id128};
use uuid::Uuid;

pub const MAX_LINE: usize = 4 << 20;
const MAX_WARNINGS: usize = 1000;
/// Lines of a process not yet spawned are held this long.
const HOLD_LINES: u64 = 10_000;
const NS: Uuid = Uuid::from_u128(0x7b2d_94e1_3c6a_4f08_b1d5_0e9a_62c4_f317);
const DAY_NS: u64 = 86_400 * 1_000_000_000;

#[derive(Debug, thiserror::Error)]
pub enum StraceError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: compressed file; decompress it first", path.display())]
    Compressed { path: PathBuf },
    #[error("writing the events failed: {0}")]
    Sink(#[source] std::io::Error),
}

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

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    pub lines: u64,
    /// Lines that are not strace output (see the warnings).
    pub bad_lines: u64,
    /// Calls (a joined unfinished/resumed pair counts once).
    pub calls: u64,
    /// Unfinished calls joined with their resumed half.
    pub joined: u64,
    /// Halves whose other half never came.
    pub unpaired: u64,
    /// Calls by name, and how many became events.
    pub by_call: BTreeMap<String, u64>,
    pub mapping: MapStats,
    /// Lines held until their process's spawn was seen.
    pub held: u64,
    pub events_out: u64,
    pub warnings: u64,
}

/// Where the events come from and how to read time-of-day stamps.
#[derive(Clone, Debug, Default)]
pub struct Options {
    pub host: Id128,
    /// `-t`/`-tt` print the local time of day only: the epoch time of the
    /// local midnight of the trace's first day. `None`: the first line
    /// that needs it sets it from `reference_ns`.
    pub day_start_ns: Option<u64>,
    /// A time at or shortly after the end of the trace (the file's
    /// modification time), for finding the day; `utc_offset_s` is the
    /// local zone's offset.
    pub reference_ns: Option<u64>,
    pub utc_offset_s: i64,
}

enum Held {
    Call {
        ts: u64,
        text: String,
        line: u64,
        file: usize,
    },
    Exit {
        ts: u64,
        code: i32,
        signal: Option<i32>,
    },
}

pub struct Importer {
    opts: Options,
    model: Option<Model>,
    stats: Stats,
    warnings: Vec<Warning>,
    files: Vec<String>,
    /// First halves of blocked calls, by thread.
    unfinished: HashMap<u32, (String, u64, u64)>,
    held: HashMap<u32, VecDeque<Held>>,
    held_since: HashMap<u32, u64>,
    line_index: u64,
    day_start: Option<u64>,
    last_tod: u64,
    last_ts: u64,
    first: Option<(Id128, Id128)>,
}

impl Importer {
    pub fn new(opts: Options) -> Importer {
        Importer {
            day_start: opts.day_start_ns,
            opts,
            model: None,
            stats: Stats::default(),
            warnings: Vec::new(),
            files: Vec::new(),
            unfinished: HashMap::new(),
            held: HashMap::new(),
            held_since: HashMap::new(),
            line_index: 0,
            last_tod: 0,
            last_ts: 0,
            first: None,
        }
    }

    pub fn stats(&self) -> Stats {
        let mut s = self.stats.clone();
        if let Some(m) = &self.model {
            s.mapping = m.stats.clone();
        }
        s
    }

    pub fn warnings(&self) -> &[Warning] {
        &self.warnings
    }

    pub fn add_file(&mut self, name: &str) -> usize {
        self.files.push(name.to_string());
        self.files.len() - 1
    }

    /// Host and boot of the events (after the first one).
    pub fn ids(&self) -> Option<(Id128, Id128)> {
        self.first
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

    pub fn bad_line(&mut self, file: usize, line: u64, message: String) {
        self.stats.lines += 1;
        self.stats.bad_lines += 1;
        self.warn(file, line, message);
    }

    fn timestamp(&mut self, stamp: Stamp) -> u64 {
        let ts = match stamp {
            Stamp::Epoch(ns) => ns,
            Stamp::Relative(d) => self.last_ts + d,
            Stamp::None => self.last_ts,
            Stamp::TimeOfDay(tod) => {
                let day = match self.day_start {
                    Some(d) => d,
                    None => {
                        let off = self.opts.utc_offset_s * 1_000_000_000;
                        let d = match self.opts.reference_ns {
                            Some(r) => {
                                let local = r as i64 + off;
                                let mut day = local - local.rem_euclid(DAY_NS as i64);
                                // Started before midnight, ended after.
                                if tod as i64 > local - day + 60_000_000_000 {
                                    day -= DAY_NS as i64;
                                }
                                (day - off).max(0) as u64
                            }
                            None => 0,
                        };
                        self.day_start = Some(d);
                        d
                    }
                };
                // Midnight passed during the trace.
                if tod + DAY_NS / 2 < self.last_tod {
                    self.day_start = Some(day + DAY_NS);
                }
                self.last_tod = tod;
                self.day_start.unwrap_or(day) + tod
            }
        };
        self.last_ts = ts;
        ts
    }

    fn model(&mut self, ts: u64) -> &mut Model {
        if self.model.is_none() {
            // No boot id in strace output: one per host and trace start.
            let mut name = b"strace-boot".to_vec();
            name.extend_from_slice(&self.opts.host.0);
            name.extend_from_slice(&(ts / 1_000_000_000).to_le_bytes());
            let boot = Id128(*Uuid::new_v5(&NS, &name).as_bytes());
            self.first = Some((self.opts.host, boot));
            self.model = Some(Model::new(self.opts.host, boot));
        }
        self.model.as_mut().expect("set above")
    }

    /// One line (`line_no` from 1).
    pub fn feed_line(&mut self, file: usize, line_no: u64, text: &str, out: &mut Vec<Event>) {
        self.stats.lines += 1;
        self.line_index += 1;
        if text.trim().is_empty() {
            return;
        }
        let Some(l) = line::split(text) else {
            self.stats.bad_lines += 1;
            self.warn(file, line_no, "not a line of strace output".into());
            return;
        };
        let ts = self.timestamp(l.stamp);
        // Without -f there is no pid column: one process.
        let tid = l.pid.unwrap_or(1);
        match l.body {
            Body::Other => {}
            Body::Exited(code) => self.exit(tid, ts, code, None, out),
            Body::Killed(sig) => self.exit(tid, ts, 0, Some(sig), out),
            Body::Call {
                text,
                unfinished: true,
            } => {
                if self
                    .unfinished
                    .insert(tid, (text.to_string(), line_no, ts))
                    .is_some()
                {
                    self.stats.unpaired += 1;
                }
            }
            Body::Call { text, .. } => {
                let text = text.to_string();
                self.call(file, line_no, tid, ts, text, out);
            }
            Body::Resumed { name, rest } => {
                let Some((head, _, _)) = self.unfinished.remove(&tid) else {
                    self.stats.unpaired += 1;
                    self.warn(
                        file,
                        line_no,
                        format!("{name} resumed without its unfinished half: skipped"),
                    );
                    return;
                };
                if !head.starts_with(name) {
                    self.stats.unpaired += 1;
                    self.warn(
                        file,
                        line_no,
                        format!("{name} resumed, but the unfinished call was {head:?}: skipped"),
                    );
                    return;
                }
                self.stats.joined += 1;
                // The halves overlap at the cut: "read(3, " + "\"x\"…".
                let joined = if head.ends_with(',') && !rest.starts_with([',', ')']) {
                    format!("{head} {rest}")
                } else {
                    format!("{head}{rest}")
                };
                self.call(file, line_no, tid, ts, joined, out);
            }
        }
        self.release_stale(out);
    }

    fn exit(&mut self, tid: u32, ts: u64, code: i32, signal: Option<i32>, out: &mut Vec<Event>) {
        self.unfinished.remove(&tid);
        if self.model.as_ref().is_some_and(|m| m.knows(tid)) {
            self.model(ts).exit(tid, ts, code, signal, out);
        } else if self.held.contains_key(&tid) {
            self.hold(tid, Held::Exit { ts, code, signal });
        }
    }

    fn hold(&mut self, tid: u32, h: Held) {
        self.stats.held += 1;
        self.held_since.entry(tid).or_insert(self.line_index);
        self.held.entry(tid).or_default().push_back(h);
    }

    fn call(
        &mut self,
        file: usize,
        line_no: u64,
        tid: u32,
        ts: u64,
        text: String,
        out: &mut Vec<Event>,
    ) {
        let first_ever = self.model.is_none();
        let known = self.model.as_ref().is_some_and(|m| m.knows(tid));
        if !known {
            if first_ever {
                // The first process of the trace: the traced command.
                self.model(ts).root(tid, ts, out);
            } else {
                self.hold(
                    tid,
                    Held::Call {
                        ts,
                        text,
                        line: line_no,
                        file,
                    },
                );
                return;
            }
        }
        self.run_call(file, line_no, tid, ts, &text, out);
    }

    fn run_call(
        &mut self,
        file: usize,
        line_no: u64,
        tid: u32,
        ts: u64,
        text: &str,
        out: &mut Vec<Event>,
    ) {
        let Some(sc) = line::parse_call(text) else {
            self.stats.bad_lines += 1;
            self.warn(
                file,
                line_no,
                format!("cannot parse the call {:?}", truncate(text, 80)),
            );
            return;
        };
        self.stats.calls += 1;
        match self.stats.by_call.get_mut(&sc.name) {
            Some(n) => *n += 1,
            None => {
                self.stats.by_call.insert(sc.name.clone(), 1);
            }
        }
        let before = out.len();
        self.model(ts).call(tid, ts, &sc, out);
        // A spawn makes its child known: replay what it did meanwhile.
        let children: Vec<u32> = out[before..]
            .iter()
            .filter_map(|e| match &e.op {
                tomo_event::Op::Spawn { child, .. } if e.ok() => Some(child.tid),
                _ => None,
            })
            .collect();
        for c in children {
            self.replay(c, out);
        }
    }

    fn replay(&mut self, tid: u32, out: &mut Vec<Event>) {
        self.held_since.remove(&tid);
        let Some(q) = self.held.remove(&tid) else {
            return;
        };
        for h in q {
            match h {
                Held::Call {
                    ts,
                    text,
                    line,
                    file,
                } => {
                    if !self.model.as_ref().is_some_and(|m| m.knows(tid)) {
                        // Exited (and its pid reused) while held.
                        self.model(ts).root(tid, ts, out);
                    }
                    self.run_call(file, line, tid, ts, &text, out);
                }
                Held::Exit { ts, code, signal } => self.model(ts).exit(tid, ts, code, signal, out),
            }
        }
    }

    /// Processes held for too long never get a spawn: adopt them.
    fn release_stale(&mut self, out: &mut Vec<Event>) {
        if self.held_since.is_empty() || !self.line_index.is_multiple_of(256) {
            return;
        }
        let now = self.line_index;
        let mut stale: Vec<(u64, u32)> = self
            .held_since
            .iter()
            .filter(|(_, &since)| since + HOLD_LINES < now)
            .map(|(&t, &s)| (s, t))
            .collect();
        stale.sort_unstable();
        for (_, tid) in stale {
            self.adopt(tid, out);
        }
    }

    fn adopt(&mut self, tid: u32, out: &mut Vec<Event>) {
        let ts = match self.held.get(&tid).and_then(|q| q.front()) {
            Some(Held::Call { ts, .. }) | Some(Held::Exit { ts, .. }) => *ts,
            None => self.last_ts,
        };
        if !self.model.as_ref().is_some_and(|m| m.knows(tid)) {
            self.model(ts).root(tid, ts, out);
        }
        self.replay(tid, out);
    }

    /// End of input.
    pub fn finish(&mut self, out: &mut Vec<Event>) {
        let mut rest: Vec<(u64, u32)> = self.held_since.iter().map(|(&t, &s)| (s, t)).collect();
        rest.sort_unstable();
        for (_, tid) in rest {
            self.adopt(tid, out);
        }
        self.stats.unpaired += self.unfinished.len() as u64;
        self.unfinished.clear();
    }
}

fn truncate(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// Feed one input; events go to `sink` as they are finished.
pub fn read_input(
    imp: &mut Importer,
    name: &str,
    input: impl Read,
    progress: &mut dyn FnMut(u64),
    sink: &mut dyn FnMut(Event) -> std::io::Result<()>,
) -> Result<(), StraceError> {
    let path = PathBuf::from(name);
    let io = |source| StraceError::Io {
        path: path.clone(),
        source,
    };
    let file = imp.add_file(name);
    let mut r = BufReader::with_capacity(1 << 20, input);
    let head = r.fill_buf().map_err(io)?;
    if head.starts_with(&[0x1f, 0x8b]) || head.starts_with(b"\x28\xb5\x2f\xfd") {
        return Err(StraceError::Compressed { path });
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
            imp.bad_line(file, line_no, format!("line longer than {MAX_LINE} bytes"));
            continue;
        }
        // strace escapes what is not printable, but file names it prints
        // as they are: keep whatever bytes come.
        let text = String::from_utf8_lossy(&buf);
        imp.feed_line(file, line_no, text.trim_end_matches(['\n', '\r']), &mut out);
        imp.stats.events_out += out.len() as u64;
        for ev in out.drain(..) {
            sink(ev).map_err(StraceError::Sink)?;
        }
    }
    Ok(())
}

pub fn read_files(
    imp: &mut Importer,
    paths: &[PathBuf],
    progress: &mut dyn FnMut(u64),
    sink: &mut dyn FnMut(Event) -> std::io::Result<()>,
) -> Result<(), StraceError> {
    for p in paths {
        let f = std::fs::File::open(p).map_err(|source| StraceError::Io {
            path: p.clone(),
            source,
        })?;
        read_input(imp, &p.display().to_string(), f, progress, sink)?;
    }
    let mut out = Vec::new();
    imp.finish(&mut out);
    imp.stats.events_out += out.len() as u64;
    for ev in out {
        sink(ev).map_err(StraceError::Sink)?;
    }
    Ok(())
}

/// Import a whole trace held in memory (tests, fuzzing).
pub fn parse_text(name: &str, text: &[u8], opts: Options) -> (Vec<Event>, Importer) {
    let mut imp = Importer::new(opts);
    let mut events = Vec::new();
    let res = read_input(&mut imp, name, text, &mut |_| {}, &mut |e| {
        events.push(e);
        Ok(())
    });
    if let Err(e) = res {
        imp.bad_line(0, 0, e.to_string());
    }
    let mut out = Vec::new();
    imp.finish(&mut out);
    imp.stats.events_out += out.len() as u64;
    events.extend(out);
    (events, imp)
}
