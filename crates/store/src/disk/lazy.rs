//! Reading a store in place: [`Lazy`] answers [`GraphRead`] by decoding only
//! the chunks a query touches, so a store larger than the memory a process
//! may use still answers.
//!
//! Opening reads the headers, the chunk directories and META (a few bytes
//! per chunk). A query's accesses decode whole chunks (read with `pread`,
//! checksummed, decompressed), kept in small caches of a fixed number of
//! chunks per section; what the query is handed (entities, nodes, edges,
//! adjacency lists, name lookups) is kept until the reader is dropped, so
//! memory grows with the answer, not with the store. Damage found while
//! answering does not panic: the reader records the first error
//! ([`Lazy::error`]) and answers placeholders, and the caller discards the
//! answer.
//!
//! The edges into a version are stored with it; the edges out of a version
//! are not indexed, so [`GraphRead::out_edges`] scans every NODE chunk
//! (forward queries belong on the in-memory graph).

use super::chunk::{Ctx, EntChunk, LEnt, Label, NodeChunk};
use super::{
    corrupt, inflate, io, read_meta, sections, sizes_of, MetaRec, Section, Sizes, Src, StoreError,
    ENTS, NAME, NODE, STRS,
};
use crate::{Edge, EdgeId, EdgeKind, Entity, EntityId, EntityKind, GraphRead, Node, NodeId};
use elsa::FrozenMap;
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use uuid::Uuid;

/// How much a [`Lazy`] may keep of the chunks it decoded.
#[derive(Clone, Copy, Debug)]
pub struct LazyOptions {
    /// Bytes of decoded chunks kept for reuse (a few MiB per NODE chunk
    /// of 4096 versions and their edges): more makes a large answer
    /// decode each chunk once. What a query is handed is kept besides.
    pub cache_bytes: usize,
}

/// The smallest and largest cache of [`LazyOptions::default`].
const MIN_CACHE: u64 = 256 << 20;
const MAX_CACHE: u64 = 4 << 30;

impl Default for LazyOptions {
    /// An eighth of the machine's memory (at least 256 MiB, at most 4 GiB),
    /// or less when this process is limited: a quarter of its address space
    /// limit or of its cgroup's `memory.max`. A large answer touches most
    /// of the store; with 256 MiB a 10 M-event store's answers decoded each
    /// NODE chunk three times over as the cache evicted it.
    fn default() -> LazyOptions {
        let machine = machine_memory()
            .map_or(MIN_CACHE, |m| m / 8)
            .clamp(MIN_CACHE, MAX_CACHE);
        let cache = match memory_limit() {
            Some(l) => (l / 4).min(machine),
            None => machine,
        };
        LazyOptions {
            cache_bytes: cache.min(usize::MAX as u64) as usize,
        }
    }
}

/// Physical memory (`MemTotal`), if known.
fn machine_memory() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/meminfo").ok()?;
    let l = s.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = l.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The memory this process may use, if limited: the soft address space
/// limit (`ulimit -v`) or the `memory.max` of its cgroup (v2), the smaller.
pub fn memory_limit() -> Option<u64> {
    let mut lim: Option<u64> = None;
    let mut take = |v: u64| lim = Some(lim.map_or(v, |l| l.min(v)));
    if let Ok(s) = std::fs::read_to_string("/proc/self/limits") {
        for l in s.lines().filter(|l| l.starts_with("Max address space")) {
            if let Some(v) = l.split_whitespace().nth(3).and_then(|v| v.parse().ok()) {
                take(v);
            }
        }
    }
    if let Ok(s) = std::fs::read_to_string("/proc/self/cgroup") {
        for l in s.lines() {
            // cgroup v2 ("0::/path"), or v1's memory controller.
            let file = if let Some(rel) = l.strip_prefix("0::") {
                format!("/sys/fs/cgroup{}/memory.max", rel.trim_end())
            } else if let Some((_, rel)) = l.split_once(":memory:") {
                format!(
                    "/sys/fs/cgroup/memory{}/memory.limit_in_bytes",
                    rel.trim_end()
                )
            } else {
                continue;
            };
            if let Some(v) = std::fs::read_to_string(file)
                .ok()
                .and_then(|v| v.trim().parse().ok())
            {
                take(v);
            }
        }
    }
    lim
}

/// Decoded chunks of one section, kept within a byte budget; the least
/// recently used goes first.
struct Cache<T> {
    budget: usize,
    used: usize,
    tick: u64,
    items: HashMap<usize, (Rc<T>, usize, u64)>,
}

impl<T> Cache<T> {
    fn new(budget: usize) -> Cache<T> {
        Cache {
            budget,
            used: 0,
            tick: 0,
            items: HashMap::new(),
        }
    }

    fn get(&mut self, k: usize) -> Option<Rc<T>> {
        self.tick += 1;
        let it = self.items.get_mut(&k)?;
        it.2 = self.tick;
        Some(it.0.clone())
    }

    fn put(&mut self, k: usize, v: Rc<T>, bytes: usize) {
        while self.used + bytes > self.budget && !self.items.is_empty() {
            let old = self
                .items
                .iter()
                .min_by_key(|(_, it)| it.2)
                .map(|(k, _)| *k)
                .unwrap_or_default();
            if let Some(it) = self.items.remove(&old) {
                self.used -= it.1;
            }
        }
        self.tick += 1;
        self.used += bytes;
        if let Some(it) = self.items.insert(k, (v, bytes, self.tick)) {
            self.used -= it.1;
        }
    }
}

fn node_bytes(c: &NodeChunk) -> usize {
    c.nodes.capacity() * std::mem::size_of::<super::chunk::LNode>()
        + c.edges.capacity() * std::mem::size_of::<super::chunk::LEdge>()
}

fn ent_bytes(c: &EntChunk) -> usize {
    c.ents
        .iter()
        .map(|e| {
            std::mem::size_of::<LEnt>()
                + 4 * (e.names.capacity() + e.versions.capacity())
                + e.process.as_ref().map_or(0, |p| {
                    256 + 4 * p.argv.capacity()
                        + p.execs
                            .iter()
                            .map(|x| 48 + 4 * x.argv.capacity())
                            .sum::<usize>()
                })
        })
        .sum()
}

fn str_bytes(c: &[String]) -> usize {
    c.iter().map(|s| 24 + s.capacity()).sum()
}

/// Hashing of the reader's maps.
type H = foldhash::fast::RandomState;

/// The edges into one version: ids (increasing) and edges.
struct InList {
    ids: Vec<EdgeId>,
    edges: Vec<Edge>,
}

/// A store read in place. See the module documentation.
pub struct Lazy {
    path: PathBuf,
    file: Source,
    secs: Vec<Section>,
    meta: MetaRec,
    ctx: Ctx,
    sizes: Sizes,
    ents_c: RefCell<Cache<EntChunk>>,
    node_c: RefCell<Cache<NodeChunk>>,
    strs_c: RefCell<Cache<Vec<String>>>,
    entities: FrozenMap<EntityId, Box<Entity>, H>,
    nodes: FrozenMap<NodeId, Box<Node>, H>,
    edges: FrozenMap<EdgeId, Box<Edge>, H>,
    in_adj: FrozenMap<NodeId, Vec<EdgeId>, H>,
    out_adj: FrozenMap<NodeId, Vec<EdgeId>, H>,
    names: FrozenMap<String, Vec<EntityId>, H>,
    pids: FrozenMap<u32, Vec<EntityId>, H>,
    error: RefCell<Option<StoreError>>,
    chunks_read: Cell<u64>,
    placeholder_entity: Entity,
    placeholder_node: Node,
    placeholder_edge: Edge,
}

impl Lazy {
    /// Opens the store at `path` for reading in place: checks the headers,
    /// the directories and META; the rest is read as queries need it.
    pub fn open(path: &Path, opts: LazyOptions) -> Result<Lazy, StoreError> {
        let file = File::open(path).map_err(io(path))?;
        Lazy::with_source(path, Source::File(file), opts)
    }

    /// [`Lazy::open`] on bytes in memory (tests, fuzzing); `path` names
    /// them in errors.
    pub fn open_bytes(path: &Path, bytes: Vec<u8>, opts: LazyOptions) -> Result<Lazy, StoreError> {
        Lazy::with_source(path, Source::Mem(bytes), opts)
    }

    fn with_source(path: &Path, file: Source, opts: LazyOptions) -> Result<Lazy, StoreError> {
        let secs = sections(path, &file)?;
        let meta = read_meta(path, &file, &secs)?;
        let ctx = Ctx::new(path, &meta)?;
        let strs = &secs[STRS];
        let mut cache: HashMap<usize, Vec<String>> = HashMap::new();
        let ctx = ctx.with_calls_from(path, secs[super::META].offset, |id| {
            let ci = strs
                .chunk_of(id as u64)
                .ok_or_else(|| corrupt(path, strs.offset, format!("string {id} missing")))?;
            let c = match cache.entry(ci) {
                std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert(load_strs(path, &file, strs, ci)?)
                }
            };
            Ok(c[(id as u64 - strs.first[ci]) as usize].clone())
        })?;
        let sizes = sizes_of(file.size(), &secs);
        Ok(Lazy {
            path: path.to_path_buf(),
            file,
            secs,
            meta,
            ctx,
            sizes,
            // Most of the work is in NODE chunks; strings are small.
            ents_c: RefCell::new(Cache::new(opts.cache_bytes / 4)),
            node_c: RefCell::new(Cache::new(opts.cache_bytes / 2)),
            strs_c: RefCell::new(Cache::new(opts.cache_bytes / 4)),
            entities: FrozenMap::default(),
            nodes: FrozenMap::default(),
            edges: FrozenMap::default(),
            in_adj: FrozenMap::default(),
            out_adj: FrozenMap::default(),
            names: FrozenMap::default(),
            pids: FrozenMap::default(),
            error: RefCell::new(None),
            chunks_read: Cell::new(0),
            placeholder_entity: Entity {
                uuid: Uuid::nil(),
                kind: EntityKind::Unknown,
                names: Vec::new(),
                versions: vec![0],
                dev_ino: None,
                process: None,
                first_ns: 0,
            },
            placeholder_node: Node {
                entity: 0,
                version: 0,
                created_ns: 0,
                label: Arc::from(""),
            },
            placeholder_edge: Edge {
                src: 0,
                dst: 0,
                kind: EdgeKind::Version,
                ts_ns: 0,
                last_ns: 0,
                bytes: 0,
                offset: None,
                call: crate::CallName::new("version"),
                events: 1,
            },
        })
    }

    /// The first damage found while answering, if any: the answers given
    /// since are not to be trusted.
    pub fn error(&self) -> Option<String> {
        self.error.borrow().as_ref().map(|e| e.to_string())
    }

    /// Takes the first damage found while answering.
    pub fn take_error(&self) -> Option<StoreError> {
        self.error.borrow_mut().take()
    }

    /// Section sizes, as [`super::open`] reports them.
    pub fn sizes(&self) -> &Sizes {
        &self.sizes
    }

    /// The summary kept in META.
    pub fn meta(&self) -> &super::Meta {
        &self.meta.meta
    }

    /// Events applied by the ingest (as `Graph::events_applied`).
    pub fn events_applied(&self) -> u64 {
        self.meta.applied
    }

    /// Chunks decoded so far (a measure of the work done).
    pub fn chunks_read(&self) -> u64 {
        self.chunks_read.get()
    }

    fn fail(&self, e: StoreError) {
        let mut err = self.error.borrow_mut();
        if err.is_none() {
            *err = Some(e);
        }
    }

    fn bug(&self, what: String) {
        self.fail(corrupt(&self.path, 0, what));
    }

    fn inflate(&self, sec: usize, ci: usize) -> Option<Vec<u8>> {
        self.chunks_read.set(self.chunks_read.get() + 1);
        match inflate(&self.path, &self.file, &self.secs[sec], ci) {
            Ok(r) => Some(r),
            Err(e) => {
                self.fail(e);
                None
            }
        }
    }

    fn ents_chunk(&self, ci: usize) -> Option<Rc<EntChunk>> {
        if let Some(c) = self.ents_c.borrow_mut().get(ci) {
            return Some(c);
        }
        let c = Rc::new(self.decode_ents(ci)?);
        self.ents_c.borrow_mut().put(ci, c.clone(), ent_bytes(&c));
        Some(c)
    }

    fn decode_ents(&self, ci: usize) -> Option<EntChunk> {
        let raw = self.inflate(ENTS, ci)?;
        let s = &self.secs[ENTS];
        match self.ctx.decode_ents(&raw, s.first[ci], s.chunks[ci].items) {
            Ok(c) => Some(c),
            Err(e) => {
                self.fail(corrupt(&self.path, s.chunks[ci].off, e));
                None
            }
        }
    }

    fn node_chunk(&self, ci: usize) -> Option<Rc<NodeChunk>> {
        if let Some(c) = self.node_c.borrow_mut().get(ci) {
            return Some(c);
        }
        let c = Rc::new(self.decode_nodes(ci)?);
        self.node_c.borrow_mut().put(ci, c.clone(), node_bytes(&c));
        Some(c)
    }

    fn decode_nodes(&self, ci: usize) -> Option<NodeChunk> {
        let raw = self.inflate(NODE, ci)?;
        let s = &self.secs[NODE];
        match self.ctx.decode_nodes(&raw, s.first[ci], s.chunks[ci].items) {
            Ok(c) => Some(c),
            Err(e) => {
                self.fail(corrupt(&self.path, s.chunks[ci].off, e));
                None
            }
        }
    }

    fn strs_chunk(&self, ci: usize) -> Option<Rc<Vec<String>>> {
        if let Some(c) = self.strs_c.borrow_mut().get(ci) {
            return Some(c);
        }
        self.chunks_read.set(self.chunks_read.get() + 1);
        match load_strs(&self.path, &self.file, &self.secs[STRS], ci) {
            Ok(v) => {
                let c = Rc::new(v);
                self.strs_c.borrow_mut().put(ci, c.clone(), str_bytes(&c));
                Some(c)
            }
            Err(e) => {
                self.fail(e);
                None
            }
        }
    }

    /// The string with id `id`.
    fn string(&self, id: u32) -> String {
        let s = &self.secs[STRS];
        let Some(ci) = s.chunk_of(id as u64) else {
            self.bug(format!("string {id} out of range"));
            return String::new();
        };
        match self.strs_chunk(ci) {
            Some(c) => c
                .get((id as u64 - s.first[ci]) as usize)
                .cloned()
                .unwrap_or_default(),
            None => String::new(),
        }
    }

    /// The strings with these ids, reading each STRS chunk once.
    fn strings_of(&self, ids: impl IntoIterator<Item = u32>) -> BTreeMap<u32, String> {
        let mut out: BTreeMap<u32, String> = ids.into_iter().map(|i| (i, String::new())).collect();
        let s = &self.secs[STRS];
        let mut cur: Option<(usize, Rc<Vec<String>>)> = None;
        for (&id, v) in out.iter_mut() {
            let Some(ci) = s.chunk_of(id as u64) else {
                continue;
            };
            if cur.as_ref().is_none_or(|c| c.0 != ci) {
                match self.strs_chunk(ci) {
                    Some(c) => cur = Some((ci, c)),
                    None => return out,
                }
            }
            if let Some((_, c)) = &cur {
                *v = c
                    .get((id as u64 - s.first[ci]) as usize)
                    .cloned()
                    .unwrap_or_default();
            }
        }
        out
    }

    /// The id of string `name`, if the store has it (binary search over the
    /// sorted table: the directory keys, then a few chunks).
    fn find_string(&self, name: &str) -> Option<u32> {
        let s = &self.secs[STRS];
        let key = super::chunk::str_key(name);
        // The last chunk whose first string is <= name.
        let (mut lo, mut hi) = (0usize, s.chunks.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            let k = s.chunks[mid].key;
            let le = match k.cmp(&key) {
                std::cmp::Ordering::Less => true,
                std::cmp::Ordering::Greater => false,
                std::cmp::Ordering::Equal => {
                    let c = self.strs_chunk(mid)?;
                    c.first().is_some_and(|f| f.as_str() <= name)
                }
            };
            if le {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        let ci = lo.checked_sub(1)?;
        let c = self.strs_chunk(ci)?;
        let i = c.binary_search_by(|x| x.as_str().cmp(name)).ok()?;
        Some((s.first[ci] + i as u64) as u32)
    }

    /// The decoded form of entity `e`.
    fn lent(&self, e: EntityId) -> Option<(Rc<EntChunk>, usize)> {
        let s = &self.secs[ENTS];
        let Some(ci) = s.chunk_of(e as u64) else {
            self.bug(format!("entity {e} out of range"));
            return None;
        };
        let c = self.ents_chunk(ci)?;
        Some((c, (e as u64 - s.first[ci]) as usize))
    }

    fn build_entity(&self, le: &LEnt) -> Entity {
        le.to_entity(self.ctx.uuid(le), le.versions.clone(), |i| self.string(i))
    }

    /// Node `n` as decoded, with its chunk.
    fn lnode(&self, n: NodeId) -> Option<(Rc<NodeChunk>, usize)> {
        let s = &self.secs[NODE];
        let Some(ci) = s.chunk_of(n as u64) else {
            self.bug(format!("node {n} out of range"));
            return None;
        };
        let c = self.node_chunk(ci)?;
        Some((c, (n as u64 - s.first[ci]) as usize))
    }

    /// The rank of node `n` among the versions of `e`.
    fn rank(&self, e: EntityId, n: NodeId) -> Option<usize> {
        let r = self.entity(e).versions.binary_search(&n).ok();
        if r.is_none() {
            self.fail(corrupt(
                &self.path,
                self.secs[ENTS].offset,
                format!("node {n} is not a version of entity {e}"),
            ));
        }
        r
    }

    /// Edge `e`, if it was handed out.
    fn pinned_edge(&self, e: EdgeId) -> Option<&Edge> {
        self.edges.get(&e)
    }

    /// The edges into node `n`, decoded.
    fn load_in_edges(&self, n: NodeId) -> Option<InList> {
        let (c, j) = self.lnode(n)?;
        let ln = &c.nodes[j];
        let mut list = InList {
            ids: Vec::with_capacity(ln.edges.len() + 1),
            edges: Vec::with_capacity(ln.edges.len() + 1),
        };
        if let Some(sym) = ln.creating {
            let rank = self.rank(ln.entity, n)?;
            if rank == 0 {
                self.bug(format!("node {n}: first version with a creating edge"));
                return None;
            }
            let prev = self.entity(ln.entity).versions[rank - 1];
            let (kind, call) = self.ctx.sym(sym);
            list.ids.push(ln.base as EdgeId);
            list.edges
                .push(super::creating_edge(prev, n, kind, call, ln.created_ns));
        }
        for le in &c.edges[ln.edges.clone()] {
            let (kind, call) = self.ctx.sym(le.sym);
            list.ids.push(le.id);
            list.edges.push(Edge {
                src: le.src,
                dst: n,
                kind,
                ts_ns: le.ts_ns,
                last_ns: le.last_ns,
                bytes: le.bytes,
                offset: le.offset,
                call,
                events: le.events,
            });
        }
        Some(list)
    }

    /// Every NODE chunk in turn (not cached: a scan must not evict what a
    /// query is using).
    fn scan_nodes(&self, f: &mut dyn FnMut(u64, &NodeChunk)) {
        let s = &self.secs[NODE];
        for ci in 0..s.chunks.len() {
            let Some(c) = self.decode_nodes(ci) else {
                return;
            };
            f(s.first[ci], &c);
        }
    }

    /// Every ENTS chunk in turn (not cached).
    fn scan_ents(&self, f: &mut dyn FnMut(u64, &EntChunk)) {
        let s = &self.secs[ENTS];
        for ci in 0..s.chunks.len() {
            let Some(c) = self.decode_ents(ci) else {
                return;
            };
            f(s.first[ci], &c);
        }
    }

    /// Finds edge `id` by scanning (edges are found through adjacency;
    /// this is the fallback for an id obtained otherwise).
    fn find_edge(&self, id: EdgeId) -> bool {
        let mut found: Option<NodeId> = None;
        self.scan_nodes(&mut |first, c| {
            if found.is_some() {
                return;
            }
            for (j, ln) in c.nodes.iter().enumerate() {
                let hit = (ln.creating.is_some() && ln.base == id as u64)
                    || c.edges[ln.edges.clone()].iter().any(|e| e.id == id);
                if hit {
                    found = Some((first + j as u64) as NodeId);
                    return;
                }
            }
        });
        match found {
            Some(n) => {
                self.in_edges(n);
                self.edges.get(&id).is_some()
            }
            None => false,
        }
    }
}

/// Where a [`Lazy`] reads: a file (`pread`) or bytes in memory.
enum Source {
    File(File),
    Mem(Vec<u8>),
}

impl Src for Source {
    fn size(&self) -> u64 {
        match self {
            Source::File(f) => f.size(),
            Source::Mem(b) => b.len() as u64,
        }
    }
    fn read(&self, off: u64, len: usize) -> std::io::Result<std::borrow::Cow<'_, [u8]>> {
        match self {
            Source::File(f) => f.read(off, len),
            Source::Mem(b) => b[..].read(off, len),
        }
    }
}

fn load_strs(
    path: &Path,
    file: &Source,
    s: &Section,
    ci: usize,
) -> Result<Vec<String>, StoreError> {
    let raw = inflate(path, file, s, ci)?;
    super::chunk::decode_strs(&raw, s.chunks[ci].items, None)
        .map_err(|e| corrupt(path, s.chunks[ci].off, e))
}

impl GraphRead for Lazy {
    fn entity_count(&self) -> usize {
        self.meta.counts.entities as usize
    }

    fn node_count(&self) -> usize {
        self.meta.counts.nodes as usize
    }

    fn edge_count(&self) -> usize {
        self.meta.counts.edges as usize
    }

    fn entity(&self, e: EntityId) -> &Entity {
        if let Some(x) = self.entities.get(&e) {
            return x;
        }
        match self.lent(e) {
            Some((c, j)) => {
                let ent = self.build_entity(&c.ents[j]);
                self.entities.insert(e, Box::new(ent))
            }
            None => &self.placeholder_entity,
        }
    }

    fn node(&self, n: NodeId) -> &Node {
        if let Some(x) = self.nodes.get(&n) {
            return x;
        }
        let Some((c, j)) = self.lnode(n) else {
            return &self.placeholder_node;
        };
        let ln = c.nodes[j].clone();
        drop(c);
        let Some(rank) = self.rank(ln.entity, n) else {
            return &self.placeholder_node;
        };
        let label = match ln.label {
            Label::Id(id) => Arc::from(self.string(id)),
            Label::SameAsFirst if rank > 0 => {
                let first = self.entity(ln.entity).versions[0];
                self.node(first).label.clone()
            }
            Label::SameAsFirst => {
                self.bug(format!("node {n}: label refers to itself"));
                return &self.placeholder_node;
            }
        };
        self.nodes.insert(
            n,
            Box::new(Node {
                entity: ln.entity,
                version: rank as u32,
                created_ns: ln.created_ns,
                label,
            }),
        )
    }

    fn edge(&self, e: EdgeId) -> &Edge {
        if let Some(x) = self.pinned_edge(e) {
            return x;
        }
        if (e as u64) < self.meta.counts.edges && self.find_edge(e) {
            if let Some(x) = self.pinned_edge(e) {
                return x;
            }
        }
        self.bug(format!("edge {e} not found"));
        &self.placeholder_edge
    }

    fn in_edges(&self, n: NodeId) -> &[EdgeId] {
        if let Some(x) = self.in_adj.get(&n) {
            return x;
        }
        match self.load_in_edges(n) {
            Some(l) => {
                for (&id, e) in l.ids.iter().zip(l.edges) {
                    if self.edges.get(&id).is_none() {
                        self.edges.insert(id, Box::new(e));
                    }
                }
                self.in_adj.insert(n, l.ids)
            }
            None => &[],
        }
    }

    fn out_edges(&self, n: NodeId) -> &[EdgeId] {
        if let Some(x) = self.out_adj.get(&n) {
            return x;
        }
        if n as u64 >= self.meta.counts.nodes {
            self.bug(format!("node {n} out of range"));
            return &[];
        }
        // The next version's creating edge, and every stored edge from n.
        let ent = self.node(n).entity;
        let next = self.entity(ent).versions.iter().copied().find(|&v| v > n);
        let mut hits: Vec<NodeId> = next.into_iter().collect();
        self.scan_nodes(&mut |first, c| {
            for (j, ln) in c.nodes.iter().enumerate() {
                if c.edges[ln.edges.clone()].iter().any(|e| e.src == n) {
                    hits.push((first + j as u64) as NodeId);
                }
            }
        });
        let mut out = Vec::new();
        for d in hits {
            for &e in self.in_edges(d) {
                if self.edge(e).src == n {
                    out.push(e);
                }
            }
        }
        out.sort_unstable();
        out.dedup();
        self.out_adj.insert(n, out)
    }

    fn by_uuid(&self, u: &Uuid) -> Option<EntityId> {
        let mut found = None;
        self.scan_ents(&mut |first, c| {
            if found.is_none() {
                if let Some(j) = c.ents.iter().position(|le| self.ctx.uuid(le) == *u) {
                    found = Some((first + j as u64) as EntityId);
                }
            }
        });
        found
    }

    fn by_name(&self, name: &str) -> &[EntityId] {
        if let Some(x) = self.names.get(name) {
            return x;
        }
        let list = (|| {
            let id = self.find_string(name)?;
            let s = &self.secs[NAME];
            // The last chunk whose first name id is <= id.
            let ci = s
                .chunks
                .partition_point(|c| c.key <= id as u64)
                .checked_sub(1)?;
            let raw = self.inflate(NAME, ci)?;
            let loc = &s.chunks[ci];
            let names = match self.ctx.decode_names(&raw, loc.items, loc.key) {
                Ok(n) => n,
                Err(e) => {
                    self.fail(corrupt(&self.path, loc.off, e));
                    return None;
                }
            };
            names.into_iter().find(|(k, _)| *k == id).map(|(_, v)| v)
        })();
        self.names
            .insert(name.to_string(), list.unwrap_or_default())
    }

    fn by_pid(&self, pid: u32) -> &[EntityId] {
        if let Some(x) = self.pids.get(&pid) {
            return x;
        }
        let mut v = Vec::new();
        self.scan_ents(&mut |first, c| {
            for (j, le) in c.ents.iter().enumerate() {
                if le.process.as_ref().is_some_and(|p| p.pid == pid) {
                    v.push((first + j as u64) as EntityId);
                }
            }
        });
        self.pids.insert(pid, v)
    }

    fn origin_ns(&self) -> u64 {
        self.meta.origin_ns
    }

    fn for_each_name(&self, f: &mut dyn FnMut(&str)) {
        let s = &self.secs[NAME];
        for ci in 0..s.chunks.len() {
            let Some(raw) = self.inflate(NAME, ci) else {
                return;
            };
            let loc = &s.chunks[ci];
            let names = match self.ctx.decode_names(&raw, loc.items, loc.key) {
                Ok(n) => n,
                Err(e) => {
                    self.fail(corrupt(&self.path, loc.off, e));
                    return;
                }
            };
            for (_, name) in self.strings_of(names.into_iter().map(|(k, _)| k)) {
                f(&name);
            }
        }
    }

    fn uuid_prefix(&self, prefix: &str) -> Vec<EntityId> {
        let mut v = Vec::new();
        self.scan_ents(&mut |first, c| {
            for (j, le) in c.ents.iter().enumerate() {
                if self
                    .ctx
                    .uuid(le)
                    .hyphenated()
                    .to_string()
                    .starts_with(prefix)
                {
                    v.push((first + j as u64) as EntityId);
                }
            }
        });
        v
    }

    fn processes_labelled(&self, label: &str) -> Vec<EntityId> {
        let Some(id) = self.find_string(label) else {
            return Vec::new();
        };
        // Whether each entity is a process, in id order.
        let mut procs: Vec<bool> = Vec::new();
        self.scan_ents(&mut |_, c| {
            procs.extend(c.ents.iter().map(|le| le.kind == EntityKind::Process));
        });
        // A version labelled "as the first version" adds no label.
        let mut v = Vec::new();
        self.scan_nodes(&mut |_, c| {
            for ln in &c.nodes {
                if ln.label == Label::Id(id) && procs.get(ln.entity as usize) == Some(&true) {
                    v.push(ln.entity);
                }
            }
        });
        v.sort_unstable();
        v.dedup();
        v
    }

    fn process_pids(&self) -> Vec<u32> {
        let mut v = Vec::new();
        self.scan_ents(&mut |_, c| {
            v.extend(
                c.ents
                    .iter()
                    .filter_map(|le| le.process.as_ref().map(|p| p.pid)),
            );
        });
        v
    }

    fn process_labels(&self) -> Vec<String> {
        // Current versions of the processes, then their labels (a label
        // "as the first version" is looked up at the first version).
        let mut want: BTreeMap<NodeId, NodeId> = BTreeMap::new();
        self.scan_ents(&mut |_, c| {
            for le in &c.ents {
                if le.kind == EntityKind::Process {
                    if let (Some(&cur), Some(&v0)) = (le.versions.last(), le.versions.first()) {
                        want.insert(cur, v0);
                    }
                }
            }
        });
        let mut ids: Vec<u32> = Vec::new();
        let mut firsts: BTreeMap<NodeId, ()> = BTreeMap::new();
        let labels_of = |nodes: &mut dyn Iterator<Item = NodeId>,
                         f: &mut dyn FnMut(NodeId, Label)| {
            let s = &self.secs[NODE];
            let mut cur: Option<(usize, Rc<NodeChunk>)> = None;
            for n in nodes {
                let Some(ci) = s.chunk_of(n as u64) else {
                    continue;
                };
                if cur.as_ref().is_none_or(|c| c.0 != ci) {
                    match self.decode_nodes(ci) {
                        Some(c) => cur = Some((ci, Rc::new(c))),
                        None => return,
                    }
                }
                if let Some((_, c)) = &cur {
                    f(n, c.nodes[(n as u64 - s.first[ci]) as usize].label);
                }
            }
        };
        labels_of(&mut want.keys().copied(), &mut |n, l| match l {
            Label::Id(i) => ids.push(i),
            Label::SameAsFirst => {
                firsts.insert(want[&n], ());
            }
        });
        labels_of(&mut firsts.keys().copied(), &mut |_, l| {
            if let Label::Id(i) = l {
                ids.push(i)
            }
        });
        let mut v: Vec<String> = self.strings_of(ids).into_values().collect();
        v.sort_unstable();
        v.dedup();
        v
    }
}
