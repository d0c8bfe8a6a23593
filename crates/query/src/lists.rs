//! Listings: `ps`, `files`, `timeline`, `graph`.

use crate::view::{
    clean, edge_phrase, end_ns, entity_path, exe_argv, fmt_argv, fmt_bytes, fmt_dur, fmt_rel, json,
    object_name, rfc3339, EdgeView, NodeRef, NodeView, TextOptions,
};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::io::{self, Write};
use tomo_store::{EdgeId, EdgeKind, EntityId, EntityKind, ExecInfo, Graph, NodeId};
use uuid::Uuid;

/// Data moved between one process and one object.
#[derive(Serialize, Debug, Clone)]
pub struct IoRow<'a> {
    pub kind: &'static str,
    pub path: &'a str,
    pub uuid: &'a Uuid,
    pub bytes: u64,
    pub calls: u64,
}

/// A file mapped by a process.
#[derive(Serialize, Debug, Clone)]
pub struct MapRow<'a> {
    pub path: &'a str,
    pub uuid: &'a Uuid,
    pub exec: bool,
    pub shared_write: bool,
}

/// A row of `tomo ps --json`.
#[derive(Serialize, Debug, Clone)]
pub struct PsRow<'a> {
    pub uuid: &'a Uuid,
    pub pid: u32,
    pub ppid: u32,
    pub parent: Option<&'a Uuid>,
    pub exe: Option<&'a str>,
    pub argv: &'a [String],
    pub start_ns: u64,
    pub end_ns: Option<u64>,
    pub exit_code: Option<i32>,
    /// Extra: the signal that ended the process.
    pub exit_signal: Option<i32>,
    /// Extra: real uid.
    pub uid: u32,
    pub execs: &'a [ExecInfo],
    pub reads: Vec<IoRow<'a>>,
    pub writes: Vec<IoRow<'a>>,
    pub maps: Vec<MapRow<'a>>,
    #[serde(skip)]
    pub entity: EntityId,
    #[serde(skip)]
    pub parent_entity: Option<EntityId>,
}

/// A process or byte count touching an object (`files`).
#[derive(Serialize, Debug, Clone)]
pub struct PeerRow<'a> {
    pub pid: u32,
    pub uuid: &'a Uuid,
    pub bytes: u64,
    #[serde(skip)]
    pub entity: EntityId,
}

/// A row of `tomo files --json`.
#[derive(Serialize, Debug, Clone)]
pub struct FileRow<'a> {
    pub uuid: &'a Uuid,
    pub kind: &'static str,
    pub path: &'a str,
    pub paths: &'a [String],
    pub readers: Vec<PeerRow<'a>>,
    pub writers: Vec<PeerRow<'a>>,
    pub loaders: Vec<PeerRow<'a>>,
    #[serde(skip)]
    pub entity: EntityId,
}

/// Rows keyed by entity, in first-seen order.
struct Keyed<T> {
    rows: Vec<T>,
    index: HashMap<EntityId, usize>,
}

impl<T> Default for Keyed<T> {
    fn default() -> Self {
        Keyed {
            rows: Vec::new(),
            index: HashMap::new(),
        }
    }
}

impl<T> Keyed<T> {
    fn entry(&mut self, e: EntityId, make: impl FnOnce() -> T) -> &mut T {
        let i = *self.index.entry(e).or_insert_with(|| {
            self.rows.push(make());
            self.rows.len() - 1
        });
        &mut self.rows[i]
    }
}

fn name_of(g: &Graph, e: EntityId) -> &str {
    entity_path(g, g.entities[e as usize].versions[0])
}

fn is_mmap(call: &str) -> bool {
    call == "mmap"
}

/// One row per process, in start order.
pub fn ps_rows(g: &Graph) -> Vec<PsRow<'_>> {
    #[derive(Default)]
    struct Acc<'a> {
        reads: Keyed<IoRow<'a>>,
        writes: Keyed<IoRow<'a>>,
        maps: Keyed<MapRow<'a>>,
    }
    let mut acc: HashMap<EntityId, Acc> = HashMap::new();
    for x in &g.edges {
        let (se, de) = (
            g.nodes[x.src as usize].entity,
            g.nodes[x.dst as usize].entity,
        );
        let (sk, dk) = (g.entities[se as usize].kind, g.entities[de as usize].kind);
        let io = |obj: EntityId| {
            let o = &g.entities[obj as usize];
            move || IoRow {
                kind: o.kind.as_str(),
                path: name_of(g, obj),
                uuid: &o.uuid,
                bytes: 0,
                calls: 0,
            }
        };
        let map = |obj: EntityId| {
            let o = &g.entities[obj as usize];
            move || MapRow {
                path: name_of(g, obj),
                uuid: &o.uuid,
                exec: false,
                shared_write: false,
            }
        };
        match x.kind {
            EdgeKind::Read if dk == EntityKind::Process && sk.is_object() => {
                let a = acc.entry(de).or_default();
                if is_mmap(x.call.as_str()) {
                    a.maps.entry(se, map(se));
                } else {
                    let r = a.reads.entry(se, io(se));
                    r.bytes += x.bytes;
                    r.calls += u64::from(x.events);
                }
            }
            EdgeKind::Load if dk == EntityKind::Process && sk.is_object() => {
                acc.entry(de).or_default().maps.entry(se, map(se)).exec = true;
            }
            EdgeKind::Write if sk == EntityKind::Process && dk.is_object() => {
                let a = acc.entry(se).or_default();
                if is_mmap(x.call.as_str()) {
                    a.maps.entry(de, map(de)).shared_write = true;
                } else {
                    let r = a.writes.entry(de, io(de));
                    r.bytes += x.bytes;
                    r.calls += u64::from(x.events);
                }
            }
            _ => {}
        }
    }
    let mut rows: Vec<PsRow> = Vec::new();
    for (e, ent) in g.entities.iter().enumerate() {
        let Some(info) = ent.process.as_deref() else {
            continue;
        };
        let e = e as EntityId;
        let a = acc.remove(&e).unwrap_or_default();
        let (exe, argv) = match info.execs.last() {
            Some(x) => (Some(x.exe.as_str()), x.argv.as_slice()),
            None => (info.exe.as_deref(), info.argv.as_slice()),
        };
        rows.push(PsRow {
            uuid: &ent.uuid,
            pid: info.pid,
            ppid: info.ppid,
            parent: info.parent.map(|p| &g.entities[p as usize].uuid),
            exe,
            argv,
            start_ns: info.start_ns,
            end_ns: info.end_ns,
            exit_code: info.exit_code,
            exit_signal: info.exit_signal,
            uid: info.uid,
            execs: &info.execs,
            reads: a.reads.rows,
            writes: a.writes.rows,
            maps: a.maps.rows,
            entity: e,
            parent_entity: info.parent,
        });
    }
    rows.sort_by_key(|r| (r.start_ns, r.pid, r.entity));
    rows
}

/// `tomo ps --json`: a JSON array, one process per line.
pub fn write_ps_json<W: Write + ?Sized>(g: &Graph, w: &mut W) -> io::Result<()> {
    write_array(w, ps_rows(g).iter())
}

fn write_array<'r, W: Write + ?Sized, T: Serialize + 'r>(
    w: &mut W,
    rows: impl Iterator<Item = &'r T>,
) -> io::Result<()> {
    w.write_all(b"[")?;
    for (i, r) in rows.enumerate() {
        w.write_all(if i == 0 { b"\n" } else { b",\n" })?;
        json(w, r)?;
    }
    w.write_all(b"\n]\n")
}

/// `tomo ps`: the process tree as an aligned table.
pub fn write_ps_text<W: Write + ?Sized>(
    g: &Graph,
    opts: &TextOptions,
    w: &mut W,
) -> io::Result<()> {
    let rows = ps_rows(g);
    let pos: HashMap<EntityId, usize> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| (r.entity, i))
        .collect();
    let mut kids: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    let mut roots = Vec::new();
    for (i, r) in rows.iter().enumerate() {
        match r.parent_entity.and_then(|p| pos.get(&p)) {
            Some(&p) if p != i => kids.entry(p).or_default().push(i),
            _ => roots.push(i),
        }
    }
    // Depth-first order with tree prefixes (iterative: fork chains can be long).
    let mut lines: Vec<(String, usize)> = Vec::with_capacity(rows.len());
    let mut stack: Vec<(usize, String, String)> = roots
        .iter()
        .rev()
        .map(|&r| (r, String::new(), String::new()))
        .collect();
    while let Some((i, lead, cont)) = stack.pop() {
        lines.push((format!("{lead}{}", rows[i].pid), i));
        if let Some(ch) = kids.get(&i) {
            let deep = cont.chars().count() > 3 * 16;
            for (k, &c) in ch.iter().enumerate().rev() {
                let last = k + 1 == ch.len();
                let (l, n) = if deep {
                    (format!("{cont}+"), cont.clone())
                } else if last {
                    (format!("{cont}└─ "), format!("{cont}   "))
                } else {
                    (format!("{cont}├─ "), format!("{cont}│  "))
                };
                stack.push((c, l, n));
            }
        }
    }
    let cells: Vec<[String; 6]> = lines
        .iter()
        .map(|(pid, i)| {
            let r = &rows[*i];
            let dur = r
                .end_ns
                .map(|e| fmt_dur(e.saturating_sub(r.start_ns)))
                .unwrap_or_else(|| "-".into());
            let exit = match (r.exit_code, r.exit_signal) {
                (Some(c), _) => c.to_string(),
                (None, Some(s)) => format!("sig {s}"),
                _ => "-".into(),
            };
            [
                pid.clone(),
                fmt_rel(r.start_ns, opts.origin_ns),
                dur,
                exit,
                clean(r.exe.unwrap_or("?")).into_owned(),
                fmt_argv(r.argv, 100),
            ]
        })
        .collect();
    let head = ["PID", "START", "DURATION", "EXIT", "EXE", "ARGV"];
    write_table(
        w,
        &head,
        &cells,
        &[false, true, true, true, false, false],
        48,
    )
}

/// Aligned columns; `right[i]` right-aligns column i. The last column is
/// never padded; columns wider than `cap` do not widen the others.
fn write_table<W: Write + ?Sized, const N: usize>(
    w: &mut W,
    head: &[&str; N],
    rows: &[[String; N]],
    right: &[bool; N],
    cap: usize,
) -> io::Result<()> {
    let mut width = [0usize; N];
    for (i, h) in head.iter().enumerate() {
        width[i] = h.chars().count();
    }
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            let n = c.chars().count();
            if n <= cap {
                width[i] = width[i].max(n);
            }
        }
    }
    let mut line = |cells: &[&str]| -> io::Result<()> {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == N {
                s.push_str(c);
                break;
            }
            let pad = width[i].saturating_sub(c.chars().count());
            if right[i] {
                s.push_str(&" ".repeat(pad));
                s.push_str(c);
            } else {
                s.push_str(c);
                s.push_str(&" ".repeat(pad));
            }
            s.push_str("  ");
        }
        writeln!(w, "{}", s.trim_end())
    };
    line(&head.iter().copied().collect::<Vec<_>>())?;
    for r in rows {
        line(&r.iter().map(|s| s.as_str()).collect::<Vec<_>>())?;
    }
    Ok(())
}

/// One row per object entity, by path.
pub fn files_rows(g: &Graph) -> Vec<FileRow<'_>> {
    #[derive(Default)]
    struct Acc<'a> {
        readers: Keyed<PeerRow<'a>>,
        writers: Keyed<PeerRow<'a>>,
        loaders: Keyed<PeerRow<'a>>,
    }
    let mut acc: HashMap<EntityId, Acc> = HashMap::new();
    let peer = |p: EntityId| {
        let ent = &g.entities[p as usize];
        move || PeerRow {
            pid: ent.process.as_deref().map_or(0, |i| i.pid),
            uuid: &ent.uuid,
            bytes: 0,
            entity: p,
        }
    };
    for x in &g.edges {
        let (se, de) = (
            g.nodes[x.src as usize].entity,
            g.nodes[x.dst as usize].entity,
        );
        let (sk, dk) = (g.entities[se as usize].kind, g.entities[de as usize].kind);
        match x.kind {
            EdgeKind::Read if dk == EntityKind::Process && sk.is_object() => {
                acc.entry(se).or_default().readers.entry(de, peer(de)).bytes += x.bytes;
            }
            EdgeKind::Load if dk == EntityKind::Process && sk.is_object() => {
                acc.entry(se).or_default().loaders.entry(de, peer(de)).bytes += x.bytes;
            }
            EdgeKind::Write if sk == EntityKind::Process && dk.is_object() => {
                acc.entry(de).or_default().writers.entry(se, peer(se)).bytes += x.bytes;
            }
            _ => {}
        }
    }
    let mut rows: Vec<FileRow> = Vec::new();
    for (e, ent) in g.entities.iter().enumerate() {
        if !ent.kind.is_object() {
            continue;
        }
        let e = e as EntityId;
        let a = acc.remove(&e).unwrap_or_default();
        rows.push(FileRow {
            uuid: &ent.uuid,
            kind: ent.kind.as_str(),
            path: name_of(g, e),
            paths: &ent.names,
            readers: a.readers.rows,
            writers: a.writers.rows,
            loaders: a.loaders.rows,
            entity: e,
        });
    }
    rows.sort_by(|a, b| {
        (a.path, g.entities[a.entity as usize].first_ns)
            .cmp(&(b.path, g.entities[b.entity as usize].first_ns))
    });
    rows
}

/// `tomo files --json`: a JSON array, one object per line.
pub fn write_files_json<W: Write + ?Sized>(g: &Graph, w: &mut W) -> io::Result<()> {
    write_array(w, files_rows(g).iter())
}

/// `tomo files`: path, kind, bytes written and read, writers, readers (and loaders).
pub fn write_files_text<W: Write + ?Sized>(
    g: &Graph,
    _opts: &TextOptions,
    w: &mut W,
) -> io::Result<()> {
    let rows = files_rows(g);
    let who = |list: &[PeerRow], extra: &[PeerRow]| -> String {
        let mut names: Vec<String> = Vec::new();
        for p in list.iter().chain(extra) {
            let ent = &g.entities[p.entity as usize];
            let n = format!(
                "{}[{}]",
                clean(&g.nodes[ent.current() as usize].label),
                p.pid
            );
            if !names.contains(&n) {
                names.push(n);
            }
        }
        if names.len() > 4 {
            let more = names.len() - 3;
            names.truncate(3);
            names.push(format!("+{more}"));
        }
        if names.is_empty() {
            "-".into()
        } else {
            names.join(",")
        }
    };
    let cells: Vec<[String; 6]> = rows
        .iter()
        .map(|r| {
            let paths = if r.paths.len() > 1 {
                format!(" (+{} names)", r.paths.len() - 1)
            } else {
                String::new()
            };
            [
                format!("{}{paths}", clean(r.path)),
                r.kind.to_string(),
                fmt_bytes(r.writers.iter().map(|p| p.bytes).sum()),
                fmt_bytes(r.readers.iter().map(|p| p.bytes).sum()),
                who(&r.writers, &[]),
                who(&r.readers, &r.loaders),
            ]
        })
        .collect();
    let head = [
        "PATH",
        "KIND",
        "WRITTEN",
        "READ",
        "WRITTEN BY",
        "READ/LOADED BY",
    ];
    write_table(
        w,
        &head,
        &cells,
        &[false, false, true, true, false, false],
        60,
    )
}

/// The edges of the timeline in time order (no `version` edges: they are
/// bookkeeping, not events), with `ts_ns` in `[from, to)`.
pub fn timeline_edges(g: &Graph, from: Option<u64>, to: Option<u64>) -> Vec<EdgeId> {
    let mut v: Vec<EdgeId> = (0..g.edges.len() as EdgeId)
        .filter(|&e| {
            let x = &g.edges[e as usize];
            x.kind != EdgeKind::Version && within(x.ts_ns, from, to)
        })
        .collect();
    v.sort_by_key(|&e| (g.edges[e as usize].ts_ns, e));
    v
}

fn within(t: u64, from: Option<u64>, to: Option<u64>) -> bool {
    let after = match from {
        Some(f) => f <= t,
        None => true,
    };
    let before = match to {
        Some(b) => t < b,
        None => true,
    };
    after && before
}

#[derive(Serialize)]
struct TimelineRow<'a> {
    ts_ns: u64,
    time: String,
    kind: &'static str,
    call: &'static str,
    bytes: u64,
    offset: Option<u64>,
    events: u32,
    last_ns: u64,
    edge: EdgeId,
    src: NodeRef<'a>,
    dst: NodeRef<'a>,
}

/// `tomo timeline --json`: an array of
/// `{"ts_ns","time","kind","call","bytes","offset","events","last_ns","edge","src":REF,"dst":REF}`
/// where REF is `{"id","uuid","kind","version","label","pid"}`.
pub fn write_timeline_json<W: Write + ?Sized>(
    g: &Graph,
    edges: &[EdgeId],
    w: &mut W,
) -> io::Result<()> {
    w.write_all(b"[")?;
    for (i, &e) in edges.iter().enumerate() {
        let x = &g.edges[e as usize];
        w.write_all(if i == 0 { b"\n" } else { b",\n" })?;
        json(
            w,
            &TimelineRow {
                ts_ns: x.ts_ns,
                time: rfc3339(x.ts_ns),
                kind: x.kind.as_str(),
                call: x.call.as_str(),
                bytes: x.bytes,
                offset: x.offset,
                events: x.events,
                last_ns: x.last_ns,
                edge: e,
                src: NodeRef::new(g, x.src),
                dst: NodeRef::new(g, x.dst),
            },
        )?;
    }
    w.write_all(b"\n]\n")
}

fn short_proc(g: &Graph, n: NodeId) -> String {
    let ent = g.entity_of(n);
    match ent.process.as_deref() {
        Some(p) => format!("{}[{}]", clean(&g.nodes[n as usize].label), p.pid),
        None => object_name(g, n),
    }
}

/// `tomo timeline`: time, process, action, object, bytes; one line per edge.
pub fn write_timeline_text<W: Write + ?Sized>(
    g: &Graph,
    edges: &[EdgeId],
    opts: &TextOptions,
    w: &mut W,
) -> io::Result<()> {
    writeln!(
        w,
        "{:>12}  {:<24}  {:<10}  OBJECT  BYTES",
        "TIME", "PROCESS", "ACTION"
    )?;
    for &e in edges {
        let x = &g.edges[e as usize];
        let sk = g.entity_of(x.src).kind;
        let dk = g.entity_of(x.dst).kind;
        let (actor, object) = match (sk, dk) {
            (EntityKind::Process, _) => (short_proc(g, x.src), x.dst),
            (_, EntityKind::Process) => (short_proc(g, x.dst), x.src),
            _ => ("(kernel)".to_string(), x.dst),
        };
        let mut obj = match g.entity_of(object).process.as_deref() {
            Some(_) => {
                let argv = exe_argv(g, object)
                    .map(|(_, a)| fmt_argv(a, 50))
                    .unwrap_or_default();
                format!("{} {argv}", short_proc(g, object))
            }
            None => object_name(g, object),
        };
        if sk.is_object() && dk.is_object() {
            // A flow between two objects (socket ends): no process acts.
            obj = format!("{} -> {}", object_name(g, x.src), obj);
        }
        let action = edge_phrase(g, e);
        let verb = action.split(' ').next().unwrap_or("");
        let bytes = match x.kind {
            EdgeKind::Read | EdgeKind::Write | EdgeKind::Flow => fmt_bytes(x.bytes),
            _ => String::new(),
        };
        let call = if action.ends_with(')') {
            format!(" ({})", x.call)
        } else {
            String::new()
        };
        let line = format!(
            "{:>12}  {:<24}  {:<10}  {obj}  {bytes}{call}",
            fmt_rel(x.ts_ns, opts.origin_ns),
            actor,
            verb
        );
        writeln!(w, "{}", line.trim_end())?;
    }
    Ok(())
}

/// `tomo graph --json`: `{"nodes":[NODE..],"edges":[EDGE..]}`, streamed.
pub fn write_graph_json<W: Write + ?Sized>(g: &Graph, w: &mut W) -> io::Result<()> {
    w.write_all(b"{\"nodes\":[")?;
    for n in 0..g.nodes.len() as NodeId {
        w.write_all(if n == 0 { b"\n" } else { b",\n" })?;
        json(w, &NodeView::new(g, n))?;
    }
    w.write_all(b"\n],\"edges\":[")?;
    for e in 0..g.edges.len() as EdgeId {
        w.write_all(if e == 0 { b"\n" } else { b",\n" })?;
        json(w, &EdgeView::new(g, e))?;
    }
    w.write_all(b"\n]}\n")
}

/// Counts for `tomo graph` without `--json`.
#[derive(Serialize, Debug, Clone)]
pub struct GraphSummary {
    pub events: u64,
    pub entities: usize,
    pub entities_by_kind: BTreeMap<&'static str, usize>,
    pub nodes: usize,
    pub nodes_by_kind: BTreeMap<&'static str, usize>,
    pub edges: usize,
    pub edges_by_kind: BTreeMap<&'static str, usize>,
    pub bytes_by_kind: BTreeMap<&'static str, u64>,
    pub first_ns: u64,
    pub last_ns: u64,
}

pub fn graph_summary(g: &Graph) -> GraphSummary {
    let mut s = GraphSummary {
        events: g.events_applied,
        entities: g.entities.len(),
        entities_by_kind: BTreeMap::new(),
        nodes: g.nodes.len(),
        nodes_by_kind: BTreeMap::new(),
        edges: g.edges.len(),
        edges_by_kind: BTreeMap::new(),
        bytes_by_kind: BTreeMap::new(),
        first_ns: crate::view::origin_ns(g),
        last_ns: end_ns(g),
    };
    for ent in &g.entities {
        *s.entities_by_kind.entry(ent.kind.as_str()).or_default() += 1;
        *s.nodes_by_kind.entry(ent.kind.as_str()).or_default() += ent.versions.len();
    }
    for x in &g.edges {
        *s.edges_by_kind.entry(x.kind.as_str()).or_default() += 1;
        *s.bytes_by_kind.entry(x.kind.as_str()).or_default() += x.bytes;
    }
    s
}

/// `tomo graph`: a summary, counts by kind.
pub fn write_graph_text<W: Write + ?Sized>(g: &Graph, w: &mut W) -> io::Result<()> {
    let s = graph_summary(g);
    let list = |m: &BTreeMap<&'static str, usize>| {
        let mut v: Vec<_> = m.iter().collect();
        v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        v.iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    writeln!(
        w,
        "events:   {} over {} ({} .. {})",
        s.events,
        fmt_dur(s.last_ns.saturating_sub(s.first_ns)),
        rfc3339(s.first_ns),
        rfc3339(s.last_ns)
    )?;
    writeln!(
        w,
        "entities: {} ({})",
        s.entities,
        list(&s.entities_by_kind)
    )?;
    writeln!(
        w,
        "nodes:    {} versions ({})",
        s.nodes,
        list(&s.nodes_by_kind)
    )?;
    writeln!(w, "edges:    {} ({})", s.edges, list(&s.edges_by_kind))?;
    let moved: Vec<String> = ["read", "write", "flow"]
        .iter()
        .filter_map(|k| {
            s.bytes_by_kind
                .get(k)
                .map(|b| format!("{k} {}", fmt_bytes(*b)))
        })
        .collect();
    if !moved.is_empty() {
        writeln!(w, "bytes:    {}", moved.join(", "))?;
    }
    writeln!(
        w,
        "acyclic:  {}",
        if g.is_acyclic() {
            "yes"
        } else {
            "NO (graph invariant broken)"
        }
    )
}
