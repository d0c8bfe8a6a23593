//! Content search (`tomo grep`): which processes read or wrote which bytes,
//! in which object, when — over the bytes that content capture kept
//! (`Op::Content`, `tomo record --content`).
//!
//! A stream (one process reading or writing one object in one direction)
//! arrives in calls, and a string can be cut between two of them: each
//! stream keeps the last bytes of its last call (`overlap`), and when the
//! next call continues exactly where that one ended (its offset is the
//! previous offset plus the previous byte count, or the stream has no
//! offsets), the two are searched together. A match lying wholly in the
//! kept tail was reported with the call before, so only matches that end
//! in the new bytes are reported. A call whose bytes were capped (a long
//! write beyond `--content=SIZE`) breaks the continuity.
//!
//! Entities are resolved through the graph the recording ingests into: the
//! process by pid and start time (else the last process with that pid
//! started by then), the object by its name and `(dev, ino)` (else by
//! name), so the answer carries the same UUIDs as every other query.

use crate::QueryError;
use serde::Serialize;
use std::collections::HashMap;
use tomo_event::{Dir, Event, ObjKind, ObjRef, Op, ProcRef};
use tomo_store::{EntityId, Graph, NodeId};

/// For a regular expression, how many bytes of a stream's previous call
/// are searched again with the next one (a fixed string needs only its
/// length minus one).
pub const DEFAULT_REGEX_OVERLAP: usize = 4096;
/// Streams whose tails are kept at once; beyond, the oldest tails are
/// dropped (a match across that boundary is then missed).
const MAX_STREAMS: usize = 1 << 16;
/// Bytes of context shown around a match.
const CONTEXT: usize = 24;

/// What to look for.
#[derive(Clone, Debug)]
pub struct ContentPattern {
    re: regex::bytes::Regex,
    overlap: usize,
    text: String,
}

impl ContentPattern {
    /// A literal string (`--fixed-strings`).
    pub fn fixed(s: &str) -> Result<ContentPattern, QueryError> {
        if s.is_empty() {
            return Err(QueryError::Invalid("the pattern is empty".into()));
        }
        let re = regex::bytes::Regex::new(&regex::escape(s))
            .map_err(|e| QueryError::Invalid(format!("pattern {s:?}: {e}")))?;
        Ok(ContentPattern {
            re,
            overlap: s.len() - 1,
            text: s.to_string(),
        })
    }

    /// A regular expression (Rust `regex` syntax, on bytes: `.` matches
    /// any byte that is not a newline, `(?i)` ignores case).
    pub fn regex(s: &str) -> Result<ContentPattern, QueryError> {
        let re = regex::bytes::Regex::new(s)
            .map_err(|e| QueryError::Invalid(format!("pattern {s:?}: {e}")))?;
        if re.is_match(b"") {
            return Err(QueryError::Invalid(format!(
                "pattern {s:?} matches the empty string (everywhere)"
            )));
        }
        Ok(ContentPattern {
            re,
            overlap: DEFAULT_REGEX_OVERLAP,
            text: s.to_string(),
        })
    }

    /// Search this many bytes of a stream's previous call again with its
    /// next one (a match longer than this, cut between calls, is missed).
    pub fn with_overlap(mut self, n: usize) -> ContentPattern {
        self.overlap = n;
        self
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// One occurrence of the pattern in the bytes a process read or wrote.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ContentMatch {
    /// When the call that completed the match happened.
    pub ts_ns: u64,
    /// Its event's sequence number (`tomo events`).
    pub seq: u64,
    /// `"read"` (object → process) or `"write"` (process → object).
    pub dir: &'static str,
    pub call: String,
    pub pid: u32,
    pub tid: u32,
    /// The process entity's UUID (as in `tomo ps`), when the graph has it.
    pub process: Option<String>,
    /// The version of that process current at `ts_ns` (as in `tomo graph`).
    pub process_version: Option<u32>,
    /// The same as a graph node, for callers that walk the graph (the
    /// SPARQL view's `tomo:hasText`).
    #[serde(skip)]
    pub process_node: Option<NodeId>,
    /// Its program at that time.
    pub exe: Option<String>,
    /// The object entity's UUID (as in `tomo files`), when the graph has it.
    pub object: Option<String>,
    /// `file`, `pipe`, `socket`, …
    pub object_kind: &'static str,
    /// Its path, or `pipe:[ino]` / `socket:[ino]`.
    pub object_name: String,
    /// Where the match starts in the object: the file offset, or for pipes
    /// and sockets the byte count of the stream before it. `None` when the
    /// source did not know the call's offset.
    pub offset: Option<u64>,
    /// Length of the match in bytes.
    pub len: usize,
    /// The match began in the previous call of the same stream.
    pub spans_calls: bool,
    /// The match with some bytes around it, non-printable bytes escaped.
    pub context: String,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct StreamKey {
    pid: u32,
    start_ticks: u64,
    kind: u8,
    dev: u64,
    ino: u64,
    write: bool,
}

struct Tail {
    bytes: Vec<u8>,
    /// Offset just after the tail's last byte (`None`: no offsets).
    end: Option<u64>,
    age: u64,
}

/// The search as a stream: feed events in recording order with
/// [`ContentScanner::scan`].
pub struct ContentScanner {
    pattern: ContentPattern,
    tails: HashMap<StreamKey, Tail>,
    clock: u64,
    /// Content events seen (0 after a scan means the recording has none).
    pub content_events: u64,
    /// Content bytes searched.
    pub content_bytes: u64,
}

fn kind_str(k: ObjKind) -> &'static str {
    match k {
        ObjKind::File => "file",
        ObjKind::Dir => "dir",
        ObjKind::Symlink => "symlink",
        ObjKind::Pipe => "pipe",
        ObjKind::Socket => "socket",
        ObjKind::CharDev | ObjKind::BlockDev => "device",
        ObjKind::Anon => "anon",
        ObjKind::Unknown => "unknown",
    }
}

/// The name the ingest gives an object (its path, else `pipe:[ino]`…).
fn object_label(o: &ObjRef) -> String {
    match (&o.path, o.kind) {
        (Some(p), _) => p.clone(),
        (None, ObjKind::Pipe) => format!("pipe:[{}]", o.ino),
        (None, ObjKind::Socket) => format!("socket:[{}]", o.ino),
        (None, k) => format!("{}:[{}]", kind_str(k), o.ino),
    }
}

/// The process entity of `p` at `ts`: the one with its pid and start time,
/// else the last one with its pid that had started by then.
fn process_entity(g: &Graph, p: &ProcRef, ts: u64) -> Option<EntityId> {
    let cands = g.by_pid(p.pid);
    let info = |e: EntityId| g.entities[e as usize].process.as_deref();
    cands
        .iter()
        .copied()
        .find(|&e| info(e).is_some_and(|i| p.start_ticks != 0 && i.start_ticks == p.start_ticks))
        .or_else(|| {
            cands
                .iter()
                .copied()
                .filter(|&e| info(e).is_some_and(|i| i.start_ns <= ts))
                .max_by_key(|&e| info(e).map(|i| i.start_ns))
        })
        .or_else(|| cands.first().copied())
}

/// The object entity `o` named at `ts`: among the entities with its name,
/// the newest one with its `(dev, ino)` that existed by then.
fn object_entity(g: &Graph, o: &ObjRef, name: &str, ts: u64) -> Option<EntityId> {
    let cands = g.by_name(name);
    let ent = |e: EntityId| &g.entities[e as usize];
    cands
        .iter()
        .copied()
        .filter(|&e| ent(e).dev_ino == Some((o.dev, o.ino)) && ent(e).first_ns <= ts)
        .max_by_key(|&e| ent(e).first_ns)
        .or_else(|| {
            cands
                .iter()
                .copied()
                .find(|&e| ent(e).dev_ino == Some((o.dev, o.ino)))
        })
        .or_else(|| cands.last().copied())
}

fn exe_at(g: &Graph, e: EntityId, ts: u64) -> Option<String> {
    let info = g.entities[e as usize].process.as_deref()?;
    info.execs
        .iter()
        .rfind(|x| x.ts_ns <= ts)
        .map(|x| x.exe.clone())
        .or_else(|| info.exe.clone())
}

impl ContentScanner {
    pub fn new(pattern: ContentPattern) -> ContentScanner {
        ContentScanner {
            pattern,
            tails: HashMap::new(),
            clock: 0,
            content_events: 0,
            content_bytes: 0,
        }
    }

    /// Search one event (anything but `Op::Content` is ignored); matches
    /// are appended to `out`.
    pub fn scan(&mut self, g: &Graph, ev: &Event, out: &mut Vec<ContentMatch>) {
        let Op::Content {
            call,
            dir,
            obj,
            offset,
            total,
            data,
            ..
        } = &ev.op
        else {
            return;
        };
        self.content_events += 1;
        self.content_bytes += data.len() as u64;
        self.clock += 1;
        let key = StreamKey {
            pid: ev.proc.pid,
            start_ticks: ev.proc.start_ticks,
            kind: obj.kind as u8,
            dev: obj.dev,
            ino: obj.ino,
            write: *dir == Dir::Write,
        };
        let prev = self.tails.remove(&key);
        let continues = prev.as_ref().is_some_and(|t| t.end == *offset);
        let (buf, tail_len) = match prev {
            Some(t) if continues => {
                let mut b = t.bytes;
                let n = b.len();
                b.extend_from_slice(data);
                (b, n)
            }
            _ => (data.clone(), 0),
        };
        let base = offset.map(|o| o.saturating_sub(tail_len as u64));
        let mut resolved: Option<(Option<EntityId>, Option<EntityId>, String)> = None;
        for m in self.pattern.re.find_iter(&buf) {
            if m.end() <= tail_len {
                continue;
            }
            let (p, o, name) = resolved.get_or_insert_with(|| {
                let name = object_label(obj);
                (
                    process_entity(g, &ev.proc, ev.ts_ns),
                    object_entity(g, obj, &name, ev.ts_ns),
                    name,
                )
            });
            let lo = m.start().saturating_sub(CONTEXT);
            let hi = (m.end() + CONTEXT).min(buf.len());
            out.push(ContentMatch {
                ts_ns: ev.ts_ns,
                seq: ev.seq,
                dir: if *dir == Dir::Read { "read" } else { "write" },
                call: format!("{call:?}"),
                pid: ev.proc.pid,
                tid: ev.proc.tid,
                process: p.map(|e| g.entities[e as usize].uuid.to_string()),
                process_version: p.map(|e| g.nodes[g.version_at(e, ev.ts_ns) as usize].version),
                process_node: p.map(|e| g.version_at(e, ev.ts_ns)),
                exe: p.and_then(|e| exe_at(g, e, ev.ts_ns)),
                object: o.map(|e| g.entities[e as usize].uuid.to_string()),
                object_kind: kind_str(obj.kind),
                object_name: name.clone(),
                offset: base.map(|b| b + m.start() as u64),
                len: m.len(),
                spans_calls: m.start() < tail_len,
                context: buf[lo..hi].escape_ascii().to_string(),
            });
        }
        let keep = self.pattern.overlap.min(buf.len());
        if keep > 0 {
            if self.tails.len() >= MAX_STREAMS {
                // Forget the oldest half: bounded memory on huge recordings.
                let mut ages: Vec<u64> = self.tails.values().map(|t| t.age).collect();
                ages.sort_unstable();
                let cut = ages[ages.len() / 2];
                self.tails.retain(|_, t| t.age > cut);
            }
            let captured_all = data.len() as u64 == *total;
            self.tails.insert(
                key,
                Tail {
                    bytes: buf[buf.len() - keep..].to_vec(),
                    // A capped call does not continue into the next one.
                    end: if captured_all {
                        offset.map(|o| o + total)
                    } else {
                        Some(u64::MAX)
                    },
                    age: self.clock,
                },
            );
        }
    }
}

/// Every occurrence of `pattern` in the content of `events` (recording
/// order), with its process and object resolved in `graph` (the graph of
/// the same recording). This is the search behind `tomo grep`.
pub fn content_matches<'a>(
    graph: &Graph,
    events: impl IntoIterator<Item = &'a Event>,
    pattern: &ContentPattern,
) -> Vec<ContentMatch> {
    let mut s = ContentScanner::new(pattern.clone());
    let mut out = Vec::new();
    for ev in events {
        s.scan(graph, ev, &mut out);
    }
    out
}
