//! The provenance graph: entities with stable UUIDs, their versions (the
//! nodes), and data-flow edges between versions.
//!
//! Invariants the ingest maintains and the queries rely on:
//! - An entity is identified by a UUID that is never reused (see
//!   `tomo-ingest` for how UUIDs are derived). Paths are names, not identities.
//! - The graph is a DAG. Every edge goes into the *current* version of its
//!   destination, and a version that already has an outgoing edge never gains
//!   an incoming one: a new version is created instead. Hence all incoming
//!   edges of a version happen before all its outgoing edges, which makes any
//!   traversal time-respecting without filtering.
//!
//! This in-memory form is rebuilt from the durable log, or loaded from the
//! persistent store (`disk`, an index over the log); it is
//! hand-written because adjacency by version and the versioning rule are the
//! product's core and general graph crates model neither. Queries read a
//! graph through [`GraphRead`], which both this in-memory [`Graph`] and the
//! store read in place ([`disk::Lazy`], decoding only what a query touches)
//! implement.

pub mod call;
pub mod disk;
pub mod ident;

pub use call::CallName;

use serde::Serialize;
use std::sync::Arc;

/// The graph's lookup maps, hashed with foldhash (randomly seeded, fast).
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
use uuid::Uuid;

pub type NodeId = u32;
pub type EntityId = u32;
pub type EdgeId = u32;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EntityKind {
    Process,
    File,
    Dir,
    Symlink,
    Pipe,
    Socket,
    Device,
    Anon,
    Unknown,
}

impl EntityKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EntityKind::Process => "process",
            EntityKind::File => "file",
            EntityKind::Dir => "dir",
            EntityKind::Symlink => "symlink",
            EntityKind::Pipe => "pipe",
            EntityKind::Socket => "socket",
            EntityKind::Device => "device",
            EntityKind::Anon => "anon",
            EntityKind::Unknown => "unknown",
        }
    }

    /// Objects that hold data (PVM "stores") versus channels and actors.
    pub fn is_object(self) -> bool {
        self != EntityKind::Process
    }
}

/// One program image a process ran.
#[derive(Clone, Debug, Serialize)]
pub struct ExecInfo {
    pub exe: String,
    pub argv: Vec<String>,
    pub ts_ns: u64,
}

/// What is known about a process entity.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ProcessInfo {
    pub pid: u32,
    pub ppid: u32,
    pub start_ticks: u64,
    pub parent: Option<EntityId>,
    pub start_ns: u64,
    pub end_ns: Option<u64>,
    pub exit_code: Option<i32>,
    pub exit_signal: Option<i32>,
    pub uid: u32,
    pub euid: u32,
    pub execs: Vec<ExecInfo>,
    /// Exe and argv known without an exec (inherited from the parent at
    /// fork, or from an `Observed` event).
    pub exe: Option<String>,
    pub argv: Vec<String>,
    pub cwd: Option<String>,
}

#[derive(Clone, Debug)]
pub struct Entity {
    pub uuid: Uuid,
    pub kind: EntityKind,
    /// Names the entity was reached by, in first-seen order (paths, or
    /// socket addresses).
    pub names: Vec<String>,
    /// Versions, oldest first.
    pub versions: Vec<NodeId>,
    /// `(dev, ino)` as the kernel reported them, for objects.
    pub dev_ino: Option<(u64, u64)>,
    pub process: Option<Box<ProcessInfo>>,
    /// First time the entity appeared in the recording.
    pub first_ns: u64,
}

impl Entity {
    pub fn current(&self) -> NodeId {
        *self
            .versions
            .last()
            .expect("an entity always has a version")
    }
}

#[derive(Clone, Debug)]
pub struct Node {
    pub entity: EntityId,
    pub version: u32,
    pub created_ns: u64,
    /// Process: basename of the program at this version. Object: its name
    /// at creation of the version. Shared: a new version usually keeps its
    /// predecessor's label, and millions of versions each owning a copy
    /// were a tenth of the ingest's memory.
    pub label: Arc<str>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EdgeKind {
    /// object -> process: data read (read family, recv, private mmap).
    Read,
    /// process -> object: data written (write family, send, O_TRUNC, creation, truncate, shared mmap).
    Write,
    /// file -> process: code loaded (execve binary, PROT_EXEC mmap).
    Load,
    /// parent -> child at fork/vfork/clone.
    Spawn,
    /// process version before execve -> after.
    Exec,
    /// previous version -> next version of one entity.
    Version,
    /// socket end -> connected socket end in the same recording.
    Flow,
    /// process -> object: metadata changes and namespace operations.
    Rename,
    Link,
    Symlink,
    Unlink,
    Mkdir,
    Mknod,
    Chmod,
    Chown,
    /// process -> process: a signal was delivered.
    Signal,
}

impl EdgeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EdgeKind::Read => "read",
            EdgeKind::Write => "write",
            EdgeKind::Load => "load",
            EdgeKind::Spawn => "spawn",
            EdgeKind::Exec => "exec",
            EdgeKind::Version => "version",
            EdgeKind::Flow => "flow",
            EdgeKind::Rename => "rename",
            EdgeKind::Link => "link",
            EdgeKind::Symlink => "symlink",
            EdgeKind::Unlink => "unlink",
            EdgeKind::Mkdir => "mkdir",
            EdgeKind::Mknod => "mknod",
            EdgeKind::Chmod => "chmod",
            EdgeKind::Chown => "chown",
            EdgeKind::Signal => "signal",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Edge {
    pub src: NodeId,
    pub dst: NodeId,
    pub kind: EdgeKind,
    /// Time of the first event merged into this edge.
    pub ts_ns: u64,
    /// Time of the last event merged into this edge.
    pub last_ns: u64,
    /// Bytes moved, summed over merged events.
    pub bytes: u64,
    /// Offset of the first event (file offset or stream offset).
    pub offset: Option<u64>,
    /// The call of the first event (e.g. "read", "sendfile").
    pub call: CallName,
    /// Number of events merged into this edge.
    pub events: u32,
}

/// Parameters of a new flow, before it is placed between two versions.
#[derive(Clone, Debug)]
pub struct Flow {
    pub kind: EdgeKind,
    pub ts_ns: u64,
    pub bytes: u64,
    pub offset: Option<u64>,
    pub call: &'static str,
}

/// Where a version's incoming or outgoing edge ids are: a slice of one of
/// the frozen arenas, or (`start == LIVE`) the growing list its entity keeps
/// for its current version.
#[derive(Clone, Copy, Debug)]
struct Span {
    start: u32,
    len: u32,
}

const LIVE: u32 = u32::MAX;

impl Span {
    const LIVE: Span = Span {
        start: LIVE,
        len: 0,
    };
}

/// Adjacency lists. Edges only ever leave or enter the *current* version of
/// an entity (the versioning rule), so a version's lists stop growing when
/// its successor is created: they are then appended to one arena per
/// direction and the entity's two growable lists are reused for the new
/// version. This costs 16 bytes per version instead of two `Vec`s (48
/// bytes and two allocations, plus their slack), which at 100 M events was
/// the difference between fitting in memory or not.
#[derive(Debug, Default)]
struct Adjacency {
    ins: Vec<Span>,
    outs: Vec<Span>,
    in_arena: Vec<EdgeId>,
    out_arena: Vec<EdgeId>,
    /// Per entity: the edges into and out of its current version.
    live_in: Vec<Vec<EdgeId>>,
    live_out: Vec<Vec<EdgeId>>,
}

impl Adjacency {
    fn add_node(&mut self) {
        self.ins.push(Span::LIVE);
        self.outs.push(Span::LIVE);
    }

    fn add_entity(&mut self) {
        self.live_in.push(Vec::new());
        self.live_out.push(Vec::new());
    }

    /// Freeze the lists of `n`, the current version of `e`, which is being
    /// superseded.
    fn freeze(&mut self, n: NodeId, e: EntityId) {
        let (li, lo) = (
            &mut self.live_in[e as usize],
            &mut self.live_out[e as usize],
        );
        self.ins[n as usize] = Span {
            start: self.in_arena.len() as u32,
            len: li.len() as u32,
        };
        self.in_arena.append(li);
        self.outs[n as usize] = Span {
            start: self.out_arena.len() as u32,
            len: lo.len() as u32,
        };
        self.out_arena.append(lo);
    }

    fn ins(&self, n: NodeId, e: EntityId) -> &[EdgeId] {
        Self::list(
            self.ins[n as usize],
            &self.in_arena,
            &self.live_in[e as usize],
        )
    }

    fn outs(&self, n: NodeId, e: EntityId) -> &[EdgeId] {
        Self::list(
            self.outs[n as usize],
            &self.out_arena,
            &self.live_out[e as usize],
        )
    }

    fn list<'a>(s: Span, arena: &'a [EdgeId], live: &'a [EdgeId]) -> &'a [EdgeId] {
        if s.start == LIVE {
            live
        } else {
            &arena[s.start as usize..(s.start + s.len) as usize]
        }
    }

    /// Build all lists from the edges (in id order, so each list is in
    /// creation order): frozen arenas for every version but the current
    /// ones, whose lists become the live lists of their entities.
    fn rebuild(nodes: &[Node], entities: &[Entity], edges: &[Edge]) -> Adjacency {
        let n = nodes.len();
        let mut live = vec![false; n];
        for ent in entities {
            if let Some(&c) = ent.versions.last() {
                live[c as usize] = true;
            }
        }
        let side = |key: &dyn Fn(&Edge) -> NodeId| -> (Vec<Span>, Vec<EdgeId>) {
            let mut count = vec![0u32; n];
            for e in edges {
                let k = key(e) as usize;
                if !live[k] {
                    count[k] += 1;
                }
            }
            let mut spans = Vec::with_capacity(n);
            let mut at = 0u32;
            for (i, &c) in count.iter().enumerate() {
                if live[i] {
                    spans.push(Span::LIVE);
                } else {
                    spans.push(Span { start: at, len: 0 });
                    at += c;
                }
            }
            let mut arena = vec![0; at as usize];
            for (id, e) in edges.iter().enumerate() {
                let k = key(e) as usize;
                if !live[k] {
                    let s = &mut spans[k];
                    arena[(s.start + s.len) as usize] = id as EdgeId;
                    s.len += 1;
                }
            }
            (spans, arena)
        };
        let (ins, in_arena) = side(&|e| e.dst);
        let (outs, out_arena) = side(&|e| e.src);
        let mut live_in = vec![Vec::new(); entities.len()];
        let mut live_out = vec![Vec::new(); entities.len()];
        for (id, e) in edges.iter().enumerate() {
            if live[e.dst as usize] {
                live_in[nodes[e.dst as usize].entity as usize].push(id as EdgeId);
            }
            if live[e.src as usize] {
                live_out[nodes[e.src as usize].entity as usize].push(id as EdgeId);
            }
        }
        Adjacency {
            ins,
            outs,
            in_arena,
            out_arena,
            live_in,
            live_out,
        }
    }
}

#[derive(Debug, Default)]
pub struct Graph {
    pub entities: Vec<Entity>,
    pub nodes: Vec<Node>,
    pub edges: Vec<Edge>,
    adj: Adjacency,
    by_uuid: HashMap<Uuid, EntityId>,
    by_name: HashMap<String, Vec<EntityId>>,
    by_pid: HashMap<u32, Vec<EntityId>>,
    /// Events that were applied (for stats).
    pub events_applied: u64,
    /// Keep one edge per flow event instead of merging repeats (the
    /// reduction's equivalence test and its ratio need the unreduced graph).
    keep_every_flow: bool,
}

impl Graph {
    pub fn new() -> Graph {
        Graph::default()
    }

    /// Turn the merging of repeated flows (see [`Graph::flow`]) off or on
    /// for the flows added from now on.
    pub fn set_reduction(&mut self, on: bool) {
        self.keep_every_flow = !on;
    }

    /// Create an entity with its first version, or return the existing one.
    pub fn declare(&mut self, uuid: Uuid, kind: EntityKind, ts_ns: u64, label: &str) -> EntityId {
        if let Some(&e) = self.by_uuid.get(&uuid) {
            return e;
        }
        let eid = self.entities.len() as EntityId;
        let nid = self.push_node(eid, 0, ts_ns, Arc::from(label));
        self.adj.add_entity();
        self.entities.push(Entity {
            uuid,
            kind,
            names: Vec::new(),
            versions: vec![nid],
            dev_ino: None,
            process: if kind == EntityKind::Process {
                Some(Box::default())
            } else {
                None
            },
            first_ns: ts_ns,
        });
        self.by_uuid.insert(uuid, eid);
        eid
    }

    fn push_node(
        &mut self,
        entity: EntityId,
        version: u32,
        created_ns: u64,
        label: Arc<str>,
    ) -> NodeId {
        let nid = self.nodes.len() as NodeId;
        self.nodes.push(Node {
            entity,
            version,
            created_ns,
            label,
        });
        self.adj.add_node();
        nid
    }

    /// Attach a name (path, address) to an entity; a name can belong to
    /// several entities over time.
    pub fn name(&mut self, e: EntityId, name: &str) {
        let ent = &mut self.entities[e as usize];
        if ent.names.iter().any(|n| n == name) {
            return;
        }
        ent.names.push(name.to_string());
        let list = self.by_name.entry(name.to_string()).or_default();
        if !list.contains(&e) {
            list.push(e);
        }
    }

    pub fn index_pid(&mut self, e: EntityId, pid: u32) {
        let list = self.by_pid.entry(pid).or_default();
        if !list.contains(&e) {
            list.push(e);
        }
    }

    /// Start a new version of `e` (PVM versioning), linked from the previous
    /// one by a `Version` edge (or `kind`, e.g. `Exec`).
    pub fn new_version(
        &mut self,
        e: EntityId,
        ts_ns: u64,
        label: Option<String>,
        kind: EdgeKind,
        call: &'static str,
    ) -> NodeId {
        let prev = self.entities[e as usize].current();
        let label = match label {
            Some(l) if *l != *self.nodes[prev as usize].label => Arc::from(l),
            _ => self.nodes[prev as usize].label.clone(),
        };
        let version = self.nodes[prev as usize].version + 1;
        let nid = self.push_node(e, version, ts_ns, label);
        // The creating edge is prev's last out-edge and nid's first in-edge;
        // prev's lists are complete once it is there.
        let id = self.edges.len() as EdgeId;
        self.edges.push(Edge {
            src: prev,
            dst: nid,
            kind,
            ts_ns,
            last_ns: ts_ns,
            bytes: 0,
            offset: None,
            call: CallName::new(call),
            events: 1,
        });
        self.adj.live_out[e as usize].push(id);
        self.adj.freeze(prev, e);
        self.entities[e as usize].versions.push(nid);
        self.adj.live_in[e as usize].push(id);
        nid
    }

    /// Record that data flowed from entity `src` to entity `dst`. Places the
    /// edge between their current versions, versioning `dst` first if its
    /// current version already has outgoing edges (keeps the graph acyclic
    /// and time-correct). Consecutive identical flows between the same two
    /// versions are merged into one edge (a causality-preserving reduction:
    /// nothing else can have interleaved, or a version would have been cut).
    pub fn flow(&mut self, src: EntityId, dst: EntityId, f: Flow) -> Option<EdgeId> {
        if src == dst {
            return None;
        }
        let call = CallName::new(f.call);
        let s = self.entities[src as usize].current();
        let mut d = self.entities[dst as usize].current();
        if !self.adj.live_out[dst as usize].is_empty() {
            d = self.new_version(dst, f.ts_ns, None, EdgeKind::Version, "version");
        }
        if let Some(&last) = self.adj.live_in[dst as usize]
            .last()
            .filter(|_| !self.keep_every_flow)
        {
            let e = &mut self.edges[last as usize];
            if e.src == s && e.kind == f.kind && e.call == call {
                e.bytes += f.bytes;
                e.last_ns = f.ts_ns;
                e.events = e.events.saturating_add(1);
                return Some(last);
            }
        }
        Some(self.push_edge(
            Edge {
                src: s,
                dst: d,
                kind: f.kind,
                ts_ns: f.ts_ns,
                last_ns: f.ts_ns,
                bytes: f.bytes,
                offset: f.offset,
                call,
                events: 1,
            },
            src,
            dst,
        ))
    }

    /// Add an edge between the *current* versions (the only ones edges may
    /// leave or enter) of entities `se` and `de`.
    fn push_edge(&mut self, e: Edge, se: EntityId, de: EntityId) -> EdgeId {
        let id = self.edges.len() as EdgeId;
        debug_assert_eq!(self.entities[se as usize].current(), e.src);
        debug_assert_eq!(self.entities[de as usize].current(), e.dst);
        self.adj.live_out[se as usize].push(id);
        self.adj.live_in[de as usize].push(id);
        self.edges.push(e);
        id
    }

    /// Rebuild the adjacency lists from `edges` (after building the
    /// entities, nodes and edges directly, as the store's loader does).
    pub fn rebuild_adjacency(&mut self) {
        self.adj = Adjacency::rebuild(&self.nodes, &self.entities, &self.edges);
    }

    pub fn out_edges(&self, n: NodeId) -> &[EdgeId] {
        self.adj.outs(n, self.nodes[n as usize].entity)
    }

    pub fn in_edges(&self, n: NodeId) -> &[EdgeId] {
        self.adj.ins(n, self.nodes[n as usize].entity)
    }

    pub fn entity_of(&self, n: NodeId) -> &Entity {
        &self.entities[self.nodes[n as usize].entity as usize]
    }

    pub fn by_uuid(&self, u: &Uuid) -> Option<EntityId> {
        self.by_uuid.get(u).copied()
    }

    pub fn by_name(&self, name: &str) -> &[EntityId] {
        self.by_name.get(name).map(|v| v.as_slice()).unwrap_or(&[])
    }

    pub fn by_pid(&self, pid: u32) -> &[EntityId] {
        self.by_pid.get(&pid).map(|v| v.as_slice()).unwrap_or(&[])
    }

    /// Names known for lookups, for "did you mean" messages.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.by_name.keys().map(|s| s.as_str())
    }

    /// The version of `e` that was current at `ts_ns` (the last one created
    /// at or before it), or the first version if all are later.
    pub fn version_at(&self, e: EntityId, ts_ns: u64) -> NodeId {
        let vs = &self.entities[e as usize].versions;
        let i = vs.partition_point(|&n| self.nodes[n as usize].created_ns <= ts_ns);
        vs[i.saturating_sub(1)]
    }

    pub fn process_mut(&mut self, e: EntityId) -> Option<&mut ProcessInfo> {
        self.entities[e as usize].process.as_deref_mut()
    }

    /// Check the DAG invariant; used by tests and `tomo stats --check`.
    pub fn is_acyclic(&self) -> bool {
        // Kahn's algorithm over nodes.
        let mut indeg: Vec<u32> = (0..self.nodes.len() as NodeId)
            .map(|n| self.in_edges(n).len() as u32)
            .collect();
        let mut stack: Vec<NodeId> = (0..self.nodes.len() as NodeId)
            .filter(|&n| indeg[n as usize] == 0)
            .collect();
        let mut seen = 0usize;
        while let Some(n) = stack.pop() {
            seen += 1;
            for &e in self.out_edges(n) {
                let d = self.edges[e as usize].dst as usize;
                indeg[d] -= 1;
                if indeg[d] == 0 {
                    stack.push(d as NodeId);
                }
            }
        }
        seen == self.nodes.len()
    }
}

/// Read access to a provenance graph, whether it is all in memory
/// ([`Graph`]) or read from a store as needed ([`disk::Lazy`]). Ids are those
/// of the graph; asking for an id out of range is a bug of the caller (the
/// in-memory graph panics; a store reader answers a placeholder and records
/// an error, see [`disk::Lazy::error`]).
pub trait GraphRead {
    fn entity_count(&self) -> usize;
    fn node_count(&self) -> usize;
    fn edge_count(&self) -> usize;
    fn entity(&self, e: EntityId) -> &Entity;
    fn node(&self, n: NodeId) -> &Node;
    fn edge(&self, e: EdgeId) -> &Edge;
    /// Edges into `n`, in creation (time) order.
    fn in_edges(&self, n: NodeId) -> &[EdgeId];
    /// Edges out of `n`, in creation (time) order.
    fn out_edges(&self, n: NodeId) -> &[EdgeId];
    fn by_uuid(&self, u: &Uuid) -> Option<EntityId>;
    /// Entities a name denoted, in the order they got it.
    fn by_name(&self, name: &str) -> &[EntityId];
    /// Process entities that had `pid`, in the order they were seen.
    fn by_pid(&self, pid: u32) -> &[EntityId];
    /// The earliest time any entity appeared (relative times count from it).
    fn origin_ns(&self) -> u64;
    /// Every name known for lookups, in no particular order.
    fn for_each_name(&self, f: &mut dyn FnMut(&str));
    /// Entities whose UUID, hyphenated in lower case, starts with `prefix`,
    /// in id order.
    fn uuid_prefix(&self, prefix: &str) -> Vec<EntityId>;
    /// Process entities one of whose versions has this label, in id order.
    fn processes_labelled(&self, label: &str) -> Vec<EntityId>;
    /// The pid of every process entity, in id order.
    fn process_pids(&self) -> Vec<u32>;
    /// The labels of the processes' current versions, sorted, once each.
    fn process_labels(&self) -> Vec<String>;

    fn entity_of(&self, n: NodeId) -> &Entity {
        self.entity(self.node(n).entity)
    }

    /// The version of `e` that was current at `ts_ns` (the last one created
    /// at or before it), or the first version if all are later.
    fn version_at(&self, e: EntityId, ts_ns: u64) -> NodeId {
        let vs = &self.entity(e).versions;
        let i = vs.partition_point(|&n| self.node(n).created_ns <= ts_ns);
        vs[i.saturating_sub(1)]
    }
}

impl GraphRead for Graph {
    fn entity_count(&self) -> usize {
        self.entities.len()
    }
    fn node_count(&self) -> usize {
        self.nodes.len()
    }
    fn edge_count(&self) -> usize {
        self.edges.len()
    }
    fn entity(&self, e: EntityId) -> &Entity {
        &self.entities[e as usize]
    }
    fn node(&self, n: NodeId) -> &Node {
        &self.nodes[n as usize]
    }
    fn edge(&self, e: EdgeId) -> &Edge {
        &self.edges[e as usize]
    }
    fn in_edges(&self, n: NodeId) -> &[EdgeId] {
        Graph::in_edges(self, n)
    }
    fn out_edges(&self, n: NodeId) -> &[EdgeId] {
        Graph::out_edges(self, n)
    }
    fn by_uuid(&self, u: &Uuid) -> Option<EntityId> {
        Graph::by_uuid(self, u)
    }
    fn by_name(&self, name: &str) -> &[EntityId] {
        Graph::by_name(self, name)
    }
    fn by_pid(&self, pid: u32) -> &[EntityId] {
        Graph::by_pid(self, pid)
    }
    fn origin_ns(&self) -> u64 {
        self.entities.iter().map(|e| e.first_ns).min().unwrap_or(0)
    }
    fn for_each_name(&self, f: &mut dyn FnMut(&str)) {
        for n in self.by_name.keys() {
            f(n);
        }
    }
    fn uuid_prefix(&self, prefix: &str) -> Vec<EntityId> {
        (0..self.entities.len() as EntityId)
            .filter(|&e| {
                self.entities[e as usize]
                    .uuid
                    .hyphenated()
                    .to_string()
                    .starts_with(prefix)
            })
            .collect()
    }
    fn processes_labelled(&self, label: &str) -> Vec<EntityId> {
        (0..self.entities.len() as EntityId)
            .filter(|&e| {
                let ent = &self.entities[e as usize];
                ent.kind == EntityKind::Process
                    && ent
                        .versions
                        .iter()
                        .any(|&v| *self.nodes[v as usize].label == *label)
            })
            .collect()
    }
    fn process_pids(&self) -> Vec<u32> {
        self.entities
            .iter()
            .filter_map(|e| e.process.as_deref().map(|p| p.pid))
            .collect()
    }
    fn process_labels(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .entities
            .iter()
            .filter(|e| e.kind == EntityKind::Process)
            .map(|e| self.nodes[e.current() as usize].label.to_string())
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }
    fn entity_of(&self, n: NodeId) -> &Entity {
        Graph::entity_of(self, n)
    }
    fn version_at(&self, e: EntityId, ts_ns: u64) -> NodeId {
        Graph::version_at(self, e, ts_ns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flow(kind: EdgeKind, ts: u64) -> Flow {
        Flow {
            kind,
            ts_ns: ts,
            bytes: 1,
            offset: None,
            call: "t",
        }
    }

    #[test]
    fn read_after_write_versions_the_reader_and_stays_acyclic() {
        let mut g = Graph::new();
        let p = g.declare(Uuid::from_u128(1), EntityKind::Process, 0, "p");
        let f = g.declare(Uuid::from_u128(2), EntityKind::File, 0, "/f");
        let x = g.declare(Uuid::from_u128(3), EntityKind::File, 0, "/x");
        g.flow(x, p, flow(EdgeKind::Read, 1));
        g.flow(p, f, flow(EdgeKind::Write, 2));
        // Reading f back into p must not create a cycle p -> f -> p.
        g.flow(f, p, flow(EdgeKind::Read, 3));
        assert_eq!(g.entities[p as usize].versions.len(), 2);
        assert!(g.is_acyclic());
        // The first version of f depends on x only, not on the later read.
        let f0 = g.entities[f as usize].versions[0];
        let writer = g.edges[g.in_edges(f0)[0] as usize].src;
        assert_eq!(writer, g.entities[p as usize].versions[0]);
        assert_eq!(g.version_at(p, 2), g.entities[p as usize].versions[0]);
        assert_eq!(g.version_at(p, 3), g.entities[p as usize].versions[1]);
    }

    #[test]
    fn consecutive_flows_merge() {
        let mut g = Graph::new();
        let p = g.declare(Uuid::from_u128(1), EntityKind::Process, 0, "p");
        let f = g.declare(Uuid::from_u128(2), EntityKind::File, 0, "/f");
        for t in 0..10 {
            g.flow(p, f, flow(EdgeKind::Write, t));
        }
        assert_eq!(g.edges.len(), 1);
        assert_eq!(g.edges[0].bytes, 10);
        assert_eq!(g.edges[0].events, 10);
        assert_eq!(g.edges[0].last_ns, 9);
    }
}
