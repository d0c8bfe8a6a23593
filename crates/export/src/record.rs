//! The PROV records of (a selection of) a graph, produced once and written
//! by the PROV-JSON, PROV-N and PROV-O (Turtle, SPARQL view) writers, so the
//! three always say exactly the same thing.
//!
//! Records come in PROV-JSON's section order: entities (object versions),
//! activities (process versions), agents (uids), then the relations —
//! `used`, `wasGeneratedBy`, `wasInformedBy`, `wasDerivedFrom` (one per
//! graph edge, by the kinds of its ends), the data derivations, and one
//! `wasAssociatedWith` per activity.
//!
//! Data derivations make "derivation follows data" explicit, in PROV's own
//! terms: an activity that used Y and then generated X derived X from Y.
//! For every process version P and every object version X it wrote, X
//! `wasDerivedFrom` each object version Y that P read, with `prov:activity`
//! P. Under the versioning rule a process version's reads all come before
//! its writes and end at the first read after a write, so these are exactly
//! the reads since the process's previous write; what it read before that
//! reaches X through the process's version chain (`wasInformedBy`), and an
//! object rewritten by its reader (an editor) is also a `prov:Revision` of
//! the version it read. A per-version rule keeps the count proportional to
//! the graph: following the whole chain would give every write of a
//! long-lived daemon every connection it ever read. Loads are code, not
//! data, and so are the reads of a file the process loaded (the loader
//! reads a library's headers and maps its data segment). A version that
//! read more than `max_derivations` objects derives its writes from the
//! most recent ones only; `ExportStats::derivations_capped` counts them.

use crate::classes::local_name;
use crate::{ExportOptions, ExportStats, Selection};
use std::borrow::Cow;
use std::collections::{BTreeSet, HashSet};
use std::io;
use tomo_store::{EdgeKind, EntityKind, Graph, NodeId, ProcessInfo};

/// The namespaces of the PROV views.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ns {
    Prov,
    Rdf,
    Rdfs,
    Xsd,
    Tomo,
    TomoProg,
}

/// The namespace of the `tomoprog:` prefix (one class per program).
pub const TOMOPROG_NS: &str = "urn:tomoprog:";

impl Ns {
    pub fn prefix(self) -> &'static str {
        match self {
            Ns::Prov => "prov",
            Ns::Rdf => "rdf",
            Ns::Rdfs => "rdfs",
            Ns::Xsd => "xsd",
            Ns::Tomo => "tomo",
            Ns::TomoProg => "tomoprog",
        }
    }

    pub fn iri(self) -> &'static str {
        match self {
            Ns::Prov => "http://www.w3.org/ns/prov#",
            Ns::Rdf => "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
            Ns::Rdfs => "http://www.w3.org/2000/01/rdf-schema#",
            Ns::Xsd => "http://www.w3.org/2001/XMLSchema#",
            Ns::Tomo => crate::TOMO_NS,
            Ns::TomoProg => TOMOPROG_NS,
        }
    }

    pub const ALL: [Ns; 6] = [Ns::Prov, Ns::Rdf, Ns::Rdfs, Ns::Xsd, Ns::Tomo, Ns::TomoProg];
}

/// An attribute value.
#[derive(Clone, Debug, PartialEq)]
pub enum Val<'a> {
    Str(Cow<'a, str>),
    Int(i64),
    /// xsd:dateTime, nanoseconds since the epoch.
    Time(u64),
    /// A qualified name (`prov:type` values).
    QName(Ns, Cow<'a, str>),
}

/// The record types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Entity,
    Activity,
    Agent,
    Used,
    Generation,
    Communication,
    Derivation,
    Association,
}

impl Kind {
    /// The PROV-JSON section / PROV-N keyword.
    pub fn keyword(self) -> &'static str {
        match self {
            Kind::Entity => "entity",
            Kind::Activity => "activity",
            Kind::Agent => "agent",
            Kind::Used => "used",
            Kind::Generation => "wasGeneratedBy",
            Kind::Communication => "wasInformedBy",
            Kind::Derivation => "wasDerivedFrom",
            Kind::Association => "wasAssociatedWith",
        }
    }
}

pub type Key = (Ns, &'static str);

/// One PROV record. Identifiers are local names in the `tomo:` namespace;
/// relation ids are blank-node labels (`e12`: graph edge 12, `d3`: data
/// derivation 3, `a7`: association of node 7).
#[derive(Debug)]
pub struct Rec<'a> {
    pub kind: Kind,
    pub id: String,
    /// Relations: the first two formal arguments, in PROV-N order (used:
    /// activity, entity; wasGeneratedBy: entity, activity; wasInformedBy:
    /// informed, informant; wasDerivedFrom: generated, used;
    /// wasAssociatedWith: activity, agent).
    pub a: String,
    pub b: String,
    /// wasDerivedFrom: the activity (data derivations); empty if none.
    pub via: String,
    /// Activities: start; used / wasGeneratedBy: the time.
    pub time: Option<u64>,
    /// Activities: end.
    pub end: Option<u64>,
    pub attrs: Vec<(Key, Val<'a>)>,
}

impl<'a> Rec<'a> {
    fn new() -> Rec<'a> {
        Rec {
            kind: Kind::Entity,
            id: String::new(),
            a: String::new(),
            b: String::new(),
            via: String::new(),
            time: None,
            end: None,
            attrs: Vec::new(),
        }
    }

    fn reset(&mut self, kind: Kind) {
        self.kind = kind;
        self.id.clear();
        self.a.clear();
        self.b.clear();
        self.via.clear();
        self.time = None;
        self.end = None;
        self.attrs.clear();
    }

    fn attr(&mut self, ns: Ns, k: &'static str, v: Val<'a>) {
        self.attrs.push(((ns, k), v));
    }
}

/// The local id of node `n`: `<uuid>_v<version>`.
pub fn node_id(g: &Graph, n: NodeId, out: &mut String) {
    use std::fmt::Write;
    let node = &g.nodes[n as usize];
    let _ = write!(
        out,
        "{}_v{}",
        g.entities[node.entity as usize].uuid, node.version
    );
}

fn is_process(g: &Graph, n: NodeId) -> bool {
    g.entity_of(n).kind == EntityKind::Process
}

/// Reports progress in units of graph items visited.
pub(crate) struct Ticker<'a> {
    done: u64,
    total: u64,
    next: u64,
    reported: u64,
    cb: Option<&'a (dyn Fn(u64, u64) + Sync)>,
}

const TICK_EVERY: u64 = 1 << 16;

impl<'a> Ticker<'a> {
    pub fn new(total: u64, cb: Option<&'a (dyn Fn(u64, u64) + Sync)>) -> Ticker<'a> {
        if let Some(f) = cb {
            f(0, total);
        }
        Ticker {
            done: 0,
            total,
            next: TICK_EVERY,
            reported: 0,
            cb,
        }
    }

    fn report(&mut self) {
        let at = self.done.min(self.total);
        if at != self.reported {
            self.reported = at;
            if let Some(f) = self.cb {
                f(at, self.total);
            }
        }
    }

    #[inline]
    pub fn tick(&mut self) {
        self.done += 1;
        if self.done >= self.next {
            self.next = self.done + TICK_EVERY;
            self.report();
        }
    }

    /// Jump to `at` (the end of a pass that ticked less than it counted).
    pub fn reach(&mut self, at: u64) {
        if at > self.done {
            self.done = at;
            self.report();
        }
    }

    pub fn finish(&mut self) {
        self.done = self.total;
        self.report();
    }
}

/// The start and end of process version `n`, with the program and argv it
/// ran at that version.
pub(crate) struct ActivityFacts<'g> {
    pub start: u64,
    pub end: Option<u64>,
    pub last: bool,
    pub exe: Option<&'g str>,
    pub argv: &'g [String],
}

static NO_INFO: std::sync::LazyLock<ProcessInfo> = std::sync::LazyLock::new(ProcessInfo::default);

pub(crate) fn activity_facts(g: &Graph, n: NodeId) -> (ActivityFacts<'_>, &ProcessInfo) {
    let node = &g.nodes[n as usize];
    let ent = &g.entities[node.entity as usize];
    let info: &ProcessInfo = ent.process.as_deref().unwrap_or(&NO_INFO);
    // A node's version number is its index in the entity's version list;
    // searching the list instead is quadratic in a daemon's versions.
    let pos = match ent.versions.get(node.version as usize) {
        Some(&v) if v == n => node.version as usize,
        _ => ent.versions.iter().position(|&v| v == n).unwrap_or(0),
    };
    let next = ent
        .versions
        .get(pos + 1)
        .map(|&v| g.nodes[v as usize].created_ns);
    let start = if pos == 0 {
        info.start_ns.min(node.created_ns)
    } else {
        node.created_ns
    };
    let end = next.or(info.end_ns).map(|e| e.max(start));
    let exec = info.execs.iter().rev().find(|x| match next {
        Some(t) => x.ts_ns < t,
        None => true,
    });
    let (exe, argv) = match exec {
        Some(x) => (Some(x.exe.as_str()), x.argv.as_slice()),
        None => (info.exe.as_deref(), info.argv.as_slice()),
    };
    (
        ActivityFacts {
            start,
            end,
            last: next.is_none(),
            exe,
            argv,
        },
        info,
    )
}

/// Call `f` with every record of `sel`, in section order.
pub(crate) fn for_each<'g>(
    g: &'g Graph,
    sel: &Selection,
    opts: &ExportOptions,
    f: &mut dyn FnMut(&Rec<'g>) -> io::Result<()>,
) -> io::Result<ExportStats> {
    let (n_nodes, n_edges) = (g.nodes.len() as u64, g.edges.len() as u64);
    let mut tk = Ticker::new(4 * n_nodes + 4 * n_edges, opts.progress);
    let mut st = ExportStats::default();
    let mut r = Rec::new();

    // Entities: object versions.
    for n in 0..g.nodes.len() as NodeId {
        tk.tick();
        if !sel.contains(n) || is_process(g, n) {
            continue;
        }
        let node = &g.nodes[n as usize];
        let ent = &g.entities[node.entity as usize];
        r.reset(Kind::Entity);
        node_id(g, n, &mut r.id);
        r.attr(Ns::Prov, "label", Val::Str(Cow::Borrowed(&node.label)));
        r.attr(Ns::Tomo, "uuid", Val::Str(Cow::Owned(ent.uuid.to_string())));
        r.attr(Ns::Tomo, "kind", Val::Str(Cow::Borrowed(ent.kind.as_str())));
        r.attr(Ns::Tomo, "version", Val::Int(node.version.into()));
        if let Some(p) = ent.names.first() {
            r.attr(Ns::Tomo, "path", Val::Str(Cow::Borrowed(p)));
        }
        r.attr(Ns::Tomo, "created", Val::Time(node.created_ns));
        f(&r)?;
        st.entities += 1;
    }

    // Activities: process versions.
    let mut uids = BTreeSet::new();
    for n in 0..g.nodes.len() as NodeId {
        tk.tick();
        if !sel.contains(n) || !is_process(g, n) {
            continue;
        }
        let node = &g.nodes[n as usize];
        let ent = &g.entities[node.entity as usize];
        let (a, info) = activity_facts(g, n);
        uids.insert(info.uid);
        r.reset(Kind::Activity);
        node_id(g, n, &mut r.id);
        r.time = Some(a.start);
        r.end = a.end;
        r.attr(Ns::Prov, "label", Val::Str(Cow::Borrowed(&node.label)));
        r.attr(
            Ns::Prov,
            "type",
            Val::QName(Ns::TomoProg, Cow::Owned(local_name(&node.label))),
        );
        for c in opts.classes.of(&node.label) {
            r.attr(
                Ns::Prov,
                "type",
                Val::QName(Ns::Tomo, Cow::Owned(c.clone())),
            );
        }
        r.attr(Ns::Tomo, "program", Val::Str(Cow::Borrowed(&node.label)));
        r.attr(Ns::Tomo, "uuid", Val::Str(Cow::Owned(ent.uuid.to_string())));
        r.attr(Ns::Tomo, "version", Val::Int(node.version.into()));
        r.attr(Ns::Tomo, "startNs", Val::Int(ns_int(a.start)));
        if let Some(e) = a.end {
            r.attr(Ns::Tomo, "endNs", Val::Int(ns_int(e)));
        }
        r.attr(Ns::Tomo, "pid", Val::Int(info.pid.into()));
        r.attr(Ns::Tomo, "ppid", Val::Int(info.ppid.into()));
        r.attr(Ns::Tomo, "uid", Val::Int(info.uid.into()));
        if let Some(exe) = a.exe {
            r.attr(Ns::Tomo, "exe", Val::Str(Cow::Borrowed(exe)));
        }
        // JSON-encoded so that order and empty arguments survive.
        r.attr(
            Ns::Tomo,
            "argv",
            Val::Str(Cow::Owned(
                serde_json::to_string(a.argv).unwrap_or_default(),
            )),
        );
        if a.last {
            if let Some(c) = info.exit_code {
                r.attr(Ns::Tomo, "exitCode", Val::Int(c.into()));
            }
            if let Some(s) = info.exit_signal {
                r.attr(Ns::Tomo, "exitSignal", Val::Int(s.into()));
            }
        }
        f(&r)?;
        st.activities += 1;
    }

    // Agents: users.
    for uid in &uids {
        r.reset(Kind::Agent);
        r.id.push_str(&format!("uid{uid}"));
        r.attr(
            Ns::Prov,
            "label",
            Val::Str(Cow::Owned(format!("uid {uid}"))),
        );
        r.attr(Ns::Tomo, "uid", Val::Int((*uid).into()));
        f(&r)?;
        st.agents += 1;
    }

    // One relation per graph edge, grouped by type.
    let passes: [(Kind, bool, bool); 4] = [
        (Kind::Used, false, true),
        (Kind::Generation, true, false),
        (Kind::Communication, true, true),
        (Kind::Derivation, false, false),
    ];
    for (kind, src_proc, dst_proc) in passes {
        for (e, x) in g.edges.iter().enumerate() {
            tk.tick();
            if !sel.contains(x.src) || !sel.contains(x.dst) {
                continue;
            }
            if is_process(g, x.src) != src_proc || is_process(g, x.dst) != dst_proc {
                continue;
            }
            r.reset(kind);
            r.id.push_str(&format!("e{e}"));
            // PROV-N puts the influencee first, and edges point from the
            // influencer: (dst, src) for all four relations.
            node_id(g, x.dst, &mut r.a);
            node_id(g, x.src, &mut r.b);
            match kind {
                Kind::Used | Kind::Generation => r.time = Some(x.ts_ns),
                _ => {
                    if kind == Kind::Derivation && x.kind == EdgeKind::Version {
                        r.attr(
                            Ns::Prov,
                            "type",
                            Val::QName(Ns::Prov, Cow::Borrowed("Revision")),
                        );
                    }
                    r.attr(Ns::Tomo, "time", Val::Time(x.ts_ns));
                }
            }
            r.attr(Ns::Tomo, "edge", Val::Str(Cow::Borrowed(x.kind.as_str())));
            r.attr(Ns::Tomo, "call", Val::Str(Cow::Borrowed(x.call.as_str())));
            r.attr(Ns::Tomo, "bytes", Val::Int(ns_int(x.bytes)));
            r.attr(Ns::Tomo, "events", Val::Int(x.events.into()));
            if let Some(o) = x.offset {
                r.attr(Ns::Tomo, "offset", Val::Int(ns_int(o)));
            }
            f(&r)?;
            st.relations += 1;
        }
    }
    let after_edges = 2 * n_nodes + 4 * n_edges;
    tk.reach(after_edges);

    // Data derivations, one process entity at a time (what it loaded is
    // known from its earlier versions too).
    let mut reads: Vec<NodeId> = Vec::new();
    let mut seen: HashSet<NodeId> = HashSet::new();
    let mut written: HashSet<NodeId> = HashSet::new();
    let mut loaded: HashSet<u32> = HashSet::new();
    let mut k = 0u64;
    for ent in &g.entities {
        if ent.kind != EntityKind::Process || !ent.versions.iter().any(|&v| sel.contains(v)) {
            continue;
        }
        loaded.clear();
        for &p in &ent.versions {
            tk.tick();
            for &e in g.in_edges(p) {
                let x = &g.edges[e as usize];
                if x.kind == EdgeKind::Load {
                    loaded.insert(g.nodes[x.src as usize].entity);
                }
            }
            if !sel.contains(p) {
                continue;
            }
            reads.clear();
            seen.clear();
            for &e in g.in_edges(p) {
                let x = &g.edges[e as usize];
                // The loader reads a library's headers and maps its data
                // segment: reads of a file the process loaded are code too.
                let code = loaded.contains(&g.nodes[x.src as usize].entity);
                if x.kind == EdgeKind::Read
                    && !code
                    && !is_process(g, x.src)
                    && sel.contains(x.src)
                    && seen.insert(x.src)
                {
                    reads.push(x.src);
                }
            }
            if reads.is_empty() {
                continue;
            }
            // In-edges are in time order: the most recent reads are last.
            let from = if opts.max_derivations > 0 && reads.len() > opts.max_derivations {
                reads.len() - opts.max_derivations
            } else {
                0
            };
            written.clear();
            for &e in g.out_edges(p) {
                let x = &g.edges[e as usize];
                if x.kind != EdgeKind::Write
                    || is_process(g, x.dst)
                    || !sel.contains(x.dst)
                    || !written.insert(x.dst)
                {
                    continue;
                }
                if from > 0 {
                    st.derivations_capped += 1;
                }
                for &y in &reads[from..] {
                    r.reset(Kind::Derivation);
                    r.id.push_str(&format!("d{k}"));
                    k += 1;
                    node_id(g, x.dst, &mut r.a);
                    node_id(g, y, &mut r.b);
                    node_id(g, p, &mut r.via);
                    r.attr(Ns::Tomo, "edge", Val::Str(Cow::Borrowed("data")));
                    r.attr(Ns::Tomo, "time", Val::Time(x.ts_ns));
                    f(&r)?;
                    st.derivations += 1;
                }
            }
        }
    }
    tk.reach(after_edges + n_nodes);

    // Every activity is associated with its user.
    for n in 0..g.nodes.len() as NodeId {
        tk.tick();
        if !sel.contains(n) || !is_process(g, n) {
            continue;
        }
        let uid = g.entity_of(n).process.as_deref().map_or(0, |p| p.uid);
        r.reset(Kind::Association);
        r.id.push_str(&format!("a{n}"));
        node_id(g, n, &mut r.a);
        r.b.push_str(&format!("uid{uid}"));
        f(&r)?;
    }
    tk.finish();
    Ok(st)
}

/// Counts and times as xsd integers (they fit until the year 2262).
fn ns_int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}
