//! JSON views of nodes and edges (the shapes of `docs/CONTRACTS.md`) and the
//! human formatting shared by every text output.

use serde::Serialize;
use std::fmt::Write as _;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use tomo_store::{EdgeId, EdgeKind, EntityKind, Graph, GraphRead, NodeId};
use uuid::Uuid;

/// The node object of `tomo graph --json` (and of every answer that names a
/// node). Processes carry `pid`, `exe` and `argv` at that version; objects
/// carry them as `null`.
#[derive(Serialize, Debug)]
pub struct NodeView<'a> {
    pub id: NodeId,
    pub uuid: &'a Uuid,
    pub kind: &'static str,
    pub version: u32,
    pub label: &'a str,
    pub names: &'a [String],
    pub pid: Option<u32>,
    pub exe: Option<&'a str>,
    pub argv: Option<&'a [String]>,
    /// Extra: when this version came into being.
    pub created_ns: u64,
}

impl<'a> NodeView<'a> {
    pub fn new<G: GraphRead + ?Sized>(g: &'a G, n: NodeId) -> NodeView<'a> {
        let node = &g.node(n);
        let ent = g.entity_of(n);
        let (pid, exe, argv) = match (ent.process.as_deref(), exe_argv(g, n)) {
            (Some(info), Some((exe, argv))) => (Some(info.pid), exe, Some(argv)),
            _ => (None, None, None),
        };
        NodeView {
            id: n,
            uuid: &ent.uuid,
            kind: ent.kind.as_str(),
            version: node.version,
            label: &node.label,
            names: &ent.names,
            pid,
            exe,
            argv,
            created_ns: node.created_ns,
        }
    }
}

/// A short reference to a node (timeline rows).
#[derive(Serialize, Debug)]
pub struct NodeRef<'a> {
    pub id: NodeId,
    pub uuid: &'a Uuid,
    pub kind: &'static str,
    pub version: u32,
    pub label: &'a str,
    pub pid: Option<u32>,
}

impl<'a> NodeRef<'a> {
    pub fn new<G: GraphRead + ?Sized>(g: &'a G, n: NodeId) -> NodeRef<'a> {
        let node = &g.node(n);
        let ent = g.entity_of(n);
        NodeRef {
            id: n,
            uuid: &ent.uuid,
            kind: ent.kind.as_str(),
            version: node.version,
            label: &node.label,
            pid: ent.process.as_deref().map(|p| p.pid),
        }
    }
}

/// An edge of `tomo graph --json`.
#[derive(Serialize, Debug)]
pub struct EdgeView {
    pub src: NodeId,
    pub dst: NodeId,
    pub kind: &'static str,
    pub ts_ns: u64,
    pub bytes: u64,
    pub offset: Option<u64>,
    pub call: &'static str,
    /// Extra: time of the last event merged into the edge.
    pub last_ns: u64,
    /// Extra: number of events merged into the edge.
    pub events: u32,
}

impl EdgeView {
    pub fn new<G: GraphRead + ?Sized>(g: &G, e: EdgeId) -> EdgeView {
        let x = &g.edge(e);
        EdgeView {
            src: x.src,
            dst: x.dst,
            kind: x.kind.as_str(),
            ts_ns: x.ts_ns,
            bytes: x.bytes,
            offset: x.offset,
            call: x.call.as_str(),
            last_ns: x.last_ns,
            events: x.events,
        }
    }
}

/// The `via` object of lineage trees and paths: the contract fields
/// (`kind`, `ts_ns`, `bytes`, `call`) plus the edge's identity and extent.
#[derive(Serialize, Debug)]
pub struct ViaView {
    pub kind: &'static str,
    pub ts_ns: u64,
    pub bytes: u64,
    pub call: &'static str,
    pub time: String,
    pub last_ns: u64,
    pub events: u32,
    pub offset: Option<u64>,
    pub edge: EdgeId,
    pub src: NodeId,
    pub dst: NodeId,
}

impl ViaView {
    pub fn new<G: GraphRead + ?Sized>(g: &G, e: EdgeId) -> ViaView {
        let x = &g.edge(e);
        ViaView {
            kind: x.kind.as_str(),
            ts_ns: x.ts_ns,
            bytes: x.bytes,
            call: x.call.as_str(),
            time: rfc3339(x.ts_ns),
            last_ns: x.last_ns,
            events: x.events,
            offset: x.offset,
            edge: e,
            src: x.src,
            dst: x.dst,
        }
    }
}

/// Exe and argv of a process node at its version: the last program image
/// started before the next version of the process began (or the image it
/// inherited at fork when it never exec'd). `None` for objects.
pub fn exe_argv<G: GraphRead + ?Sized>(g: &G, n: NodeId) -> Option<(Option<&str>, &[String])> {
    let ent = g.entity_of(n);
    let info = ent.process.as_deref()?;
    let node = &g.node(n);
    let pos = ent
        .versions
        .iter()
        .position(|&v| v == n)
        .unwrap_or(node.version as usize);
    let next = ent.versions.get(pos + 1).map(|&v| g.node(v).created_ns);
    match info.execs.iter().rev().find(|x| match next {
        Some(t) => x.ts_ns < t,
        None => true,
    }) {
        Some(x) => Some((Some(x.exe.as_str()), x.argv.as_slice())),
        None => Some((info.exe.as_deref(), info.argv.as_slice())),
    }
}

/// The first event of the recording: the earliest time anything appeared.
/// Relative times (`+12.345ms`) are measured from here.
pub fn origin_ns<G: GraphRead + ?Sized>(g: &G) -> u64 {
    g.origin_ns()
}

/// The last known time of the recording.
pub fn end_ns(g: &Graph) -> u64 {
    let edges = g.edges.iter().map(|e| e.last_ns).max().unwrap_or(0);
    let nodes = g.nodes.iter().map(|n| n.created_ns).max().unwrap_or(0);
    let procs = g
        .entities
        .iter()
        .filter_map(|e| e.process.as_deref().and_then(|p| p.end_ns))
        .max()
        .unwrap_or(0);
    edges.max(nodes).max(procs)
}

/// RFC3339 with nanoseconds, UTC (`2026-11-23T10:00:00.123456789Z`).
pub fn rfc3339(ns: u64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(ns as i128)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| ns.to_string())
}

/// `+12.345ms`, `+1.234s`, `+2m03.456s` from `origin`.
pub fn fmt_rel(ts: u64, origin: u64) -> String {
    if ts < origin {
        return format!("-{}", fmt_dur(origin - ts));
    }
    format!("+{}", fmt_dur(ts - origin))
}

/// A duration: `0.012ms`, `12.345ms`, `1.234s`, `2m03.456s`.
pub fn fmt_dur(ns: u64) -> String {
    if ns < 1_000_000_000 {
        format!("{:.3}ms", ns as f64 / 1e6)
    } else if ns < 60_000_000_000 {
        format!("{:.3}s", ns as f64 / 1e9)
    } else {
        let s = ns as f64 / 1e9;
        let m = (s / 60.0).floor();
        format!("{}m{:06.3}s", m as u64, s - m * 60.0)
    }
}

/// `0 B`, `512 B`, `1.2 KiB`, `3.4 MiB`.
pub fn fmt_bytes(b: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if b < 1024 {
        return format!("{b} B");
    }
    let mut v = b as f64 / 1024.0;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    format!("{v:.1} {}", UNITS[u])
}

/// Escape control characters so that names cannot garble a terminal.
pub fn clean(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(|c| c.is_control()) {
        return s.into();
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.into()
}

/// Shell-like rendering of an argv, cut at about `max` characters.
pub fn fmt_argv(argv: &[String], max: usize) -> String {
    let mut out = String::new();
    for (i, a) in argv.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let plain = !a.is_empty()
            && a.chars().all(|c| {
                c.is_ascii_alphanumeric()
                    || "-_./=:,+%@^".contains(c)
                    || (!c.is_ascii() && !c.is_control())
            });
        if plain {
            out.push_str(a);
        } else {
            out.push('\'');
            out.push_str(&clean(a).replace('\'', "'\\''"));
            out.push('\'');
        }
        if out.chars().count() > max {
            break;
        }
    }
    if out.chars().count() > max {
        let cut: String = out.chars().take(max.saturating_sub(1)).collect();
        return cut + "…";
    }
    out
}

/// Options of the text renderings.
#[derive(Clone, Debug, Default)]
pub struct TextOptions {
    /// Relative times are measured from here (see [`origin_ns`]).
    pub origin_ns: u64,
    /// Show UUIDs.
    pub uuids: bool,
    /// Do not fold libraries.
    pub all: bool,
}

/// One-line human description of a node: `gzip[pid 12] gzip -9 -c v1`,
/// `/out.tgz`, `pipe:[77]`, `socket 127.0.0.1:8080`.
pub fn describe<G: GraphRead + ?Sized>(g: &G, n: NodeId, opts: &TextOptions) -> String {
    let node = &g.node(n);
    let ent = g.entity_of(n);
    let mut s = match ent.process.as_deref() {
        Some(info) => {
            let mut s = format!("{}[pid {}]", clean(&node.label), info.pid);
            if let Some((_, argv)) = exe_argv(g, n) {
                if !argv.is_empty() {
                    s.push(' ');
                    s.push_str(&fmt_argv(argv, 60));
                }
            }
            s
        }
        None => object_name(g, n),
    };
    if node.version > 0 {
        let _ = write!(s, " v{}", node.version);
    }
    if opts.uuids {
        let _ = write!(s, " {{{}}}", ent.uuid);
    }
    s
}

/// An object's name with its kind when the name does not say it:
/// `/d/a`, `pipe:[77]`, `socket 127.0.0.1:8080`, `dir /d`.
pub fn object_name<G: GraphRead + ?Sized>(g: &G, n: NodeId) -> String {
    let node = &g.node(n);
    let ent = g.entity_of(n);
    let label = clean(&node.label);
    let kind = ent.kind.as_str();
    match ent.kind {
        EntityKind::File => label.into_owned(),
        _ if label.starts_with(kind) && label[kind.len()..].starts_with(':') => label.into_owned(),
        _ => format!("{kind} {label}"),
    }
}

/// The main name of an entity: its first path or address, else its label.
pub fn entity_path<G: GraphRead + ?Sized>(g: &G, n: NodeId) -> &str {
    let ent = g.entity_of(n);
    ent.names
        .first()
        .map(|s| s.as_str())
        .unwrap_or(&g.node(n).label)
}

/// The verb phrase of an edge: `read 1.2 KiB`, `wrote 0 B (openat)`,
/// `loaded`, `spawned`, `exec`.
pub fn edge_phrase<G: GraphRead + ?Sized>(g: &G, e: EdgeId) -> String {
    let x = &g.edge(e);
    let plain_read = ["read", "pread64", "readv", "preadv", "preadv2"];
    let plain_write = ["write", "pwrite64", "writev", "pwritev", "pwritev2"];
    let with_call = |verb: &str, plain: &[&str]| {
        if plain.contains(&x.call.as_str()) {
            format!("{verb} {}", fmt_bytes(x.bytes))
        } else {
            format!("{verb} {} ({})", fmt_bytes(x.bytes), x.call)
        }
    };
    match x.kind {
        EdgeKind::Read => with_call("read", &plain_read),
        EdgeKind::Write => with_call("wrote", &plain_write),
        EdgeKind::Load => "loaded".into(),
        EdgeKind::Spawn => "spawned".into(),
        EdgeKind::Exec => "exec".into(),
        EdgeKind::Version => "version".into(),
        EdgeKind::Flow => format!("flow {}", fmt_bytes(x.bytes)),
        EdgeKind::Rename => "renamed".into(),
        EdgeKind::Link => "linked".into(),
        EdgeKind::Symlink => "symlinked".into(),
        EdgeKind::Unlink => "unlinked".into(),
        EdgeKind::Mkdir => "mkdir".into(),
        EdgeKind::Mknod => "mknod".into(),
        EdgeKind::Chmod => "chmod".into(),
        EdgeKind::Chown => "chown".into(),
        EdgeKind::Signal => "signalled".into(),
    }
}

/// Shared libraries and the loader's cache: `libc.so.6`, `libfoo.so`,
/// `ld-linux-x86-64.so.2`, `/etc/ld.so.cache`.
pub fn is_library_name(name: &str) -> bool {
    let base = name.rsplit('/').next().unwrap_or(name);
    if base == "ld.so.cache" || base == "ld.so.preload" {
        return true;
    }
    base.match_indices(".so").any(|(i, _)| {
        let rest = &base[i + 3..];
        rest.is_empty()
            || (rest.starts_with('.') && rest[1..].chars().all(|c| c.is_ascii_digit() || c == '.'))
    })
}

/// Write JSON with serde_json into an io::Write, mapping its errors.
pub(crate) fn json<W: std::io::Write + ?Sized, T: Serialize + ?Sized>(
    w: &mut W,
    v: &T,
) -> std::io::Result<()> {
    serde_json::to_writer(w, v).map_err(std::io::Error::other)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(fmt_bytes(0), "0 B");
        assert_eq!(fmt_bytes(1023), "1023 B");
        assert_eq!(fmt_bytes(1229), "1.2 KiB");
        assert_eq!(fmt_bytes(3 * 1024 * 1024 + 400_000), "3.4 MiB");
        assert_eq!(fmt_rel(12_345_678, 0), "+12.346ms");
        assert_eq!(fmt_rel(1_500_000_000, 0), "+1.500s");
        assert_eq!(fmt_rel(123_456_000_000, 0), "+2m03.456s");
        assert_eq!(
            fmt_argv(&["sh".into(), "-c".into(), "a | b".into()], 60),
            "sh -c 'a | b'"
        );
        assert!(fmt_argv(&["x".repeat(100)], 10).ends_with('…'));
        assert_eq!(clean("a\nb"), "a\\nb");
        assert!(is_library_name("/lib/x86_64-linux-gnu/libc.so.6"));
        assert!(is_library_name("/lib64/ld-linux-x86-64.so.2"));
        assert!(is_library_name("/usr/lib/libfoo.so"));
        assert!(is_library_name("/etc/ld.so.cache"));
        assert!(!is_library_name("/home/u/notes.sop"));
        assert!(!is_library_name("/usr/bin/gzip"));
        assert_eq!(rfc3339(1_000_000_000), "1970-01-01T00:00:01Z");
    }
}
