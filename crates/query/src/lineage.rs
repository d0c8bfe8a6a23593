//! `why` (backward lineage) and `impact` (forward): the DAG around a node,
//! rendered as a tree.
//!
//! The tree is built breadth-first so that every graph node is expanded at
//! the shallowest place it occurs; other occurrences are kept as leaves with
//! `seen: true`. Version chains are folded into the node that represents the
//! entity (see the crate documentation for why this stays time-correct).

use crate::view::{
    describe, edge_phrase, entity_path, fmt_rel, is_library_name, json, rfc3339, NodeView,
    TextOptions, ViaView,
};
use std::collections::{HashMap, VecDeque};
use std::io::{self, Write};
use tomo_store::{EdgeId, EdgeKind, EntityId, GraphRead, NodeId};

/// Default bound on the number of tree nodes of one answer.
pub const DEFAULT_MAX_NODES: usize = 10_000;

/// Indentation stops growing past this depth (very deep chains exist: a
/// process that alternately reads and writes one file).
const MAX_INDENT: usize = 32;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Backward: what flowed into the target.
    Why,
    /// Forward: what the target flowed into.
    Impact,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Why => "why",
            Direction::Impact => "impact",
        }
    }
}

#[derive(Clone, Debug)]
pub struct LineageOptions {
    /// Levels of edges to follow (`None`: unlimited, bounded by `max_nodes`).
    pub depth: Option<usize>,
    /// Time of interest: selects the version current then and, at the root,
    /// keeps only the edges before it (`why`) or after it (`impact`).
    pub at: Option<u64>,
    /// Bound on the number of tree nodes.
    pub max_nodes: usize,
}

impl Default for LineageOptions {
    fn default() -> LineageOptions {
        LineageOptions {
            depth: None,
            at: None,
            max_nodes: DEFAULT_MAX_NODES,
        }
    }
}

/// One node of the answer tree.
#[derive(Clone, Debug)]
pub struct TreeNode {
    /// The graph node (version) reached.
    pub node: NodeId,
    /// The edge from the parent tree node (`None` at the root).
    pub via: Option<EdgeId>,
    /// Already expanded elsewhere in the tree; no children here.
    pub seen: bool,
    /// For a `seen` node: the index of the tree node where it is expanded.
    pub full: Option<usize>,
    /// Other versions of the same entity folded into this node (older ones
    /// for `why`, newer ones for `impact`), nearest first.
    pub folded: Vec<NodeId>,
    /// Indexes of the children in [`Tree::nodes`], ordered by edge time.
    pub children: Vec<usize>,
    /// Child edges not followed (depth limit or node cap).
    pub more: usize,
    /// Distance from the root in edges.
    pub depth: usize,
}

impl TreeNode {
    fn new(node: NodeId, via: Option<EdgeId>, depth: usize) -> TreeNode {
        TreeNode {
            node,
            via,
            seen: false,
            full: None,
            folded: Vec::new(),
            children: Vec::new(),
            more: 0,
            depth,
        }
    }
}

/// The answer of `why`/`impact`. `nodes[0]` is the root.
#[derive(Clone, Debug)]
pub struct Tree {
    pub direction: Direction,
    pub at: Option<u64>,
    pub depth: Option<usize>,
    pub nodes: Vec<TreeNode>,
    /// The node cap was reached: the answer is incomplete.
    pub capped: bool,
    /// Remarks for the user.
    pub notes: Vec<String>,
}

/// The version a query starts from: the one current at `at`, else the
/// latest (`why`) or the earliest (`impact`).
pub fn pick_version<G: GraphRead + ?Sized>(
    g: &G,
    e: EntityId,
    at: Option<u64>,
    dir: Direction,
) -> NodeId {
    let ent = &g.entity(e);
    match (at, dir) {
        (Some(t), _) => g.version_at(e, t),
        (None, Direction::Why) => ent.current(),
        (None, Direction::Impact) => ent.versions[0],
    }
}

/// Backward lineage of entity `e`.
pub fn why<G: GraphRead + ?Sized>(g: &G, e: EntityId, opts: &LineageOptions) -> Tree {
    lineage(
        g,
        pick_version(g, e, opts.at, Direction::Why),
        Direction::Why,
        opts,
    )
}

/// Forward impact of entity `e`.
pub fn impact<G: GraphRead + ?Sized>(g: &G, e: EntityId, opts: &LineageOptions) -> Tree {
    lineage(
        g,
        pick_version(g, e, opts.at, Direction::Impact),
        Direction::Impact,
        opts,
    )
}

/// The lineage tree of graph node `start` in direction `dir`.
pub fn lineage<G: GraphRead + ?Sized>(
    g: &G,
    start: NodeId,
    dir: Direction,
    opts: &LineageOptions,
) -> Tree {
    let max_nodes = opts.max_nodes.max(1);
    let mut tree = Tree {
        direction: dir,
        at: opts.at,
        depth: opts.depth,
        nodes: Vec::new(),
        capped: false,
        notes: Vec::new(),
    };
    let mut owner: HashMap<NodeId, usize> = HashMap::new();
    let mut root = TreeNode::new(start, None, 0);
    claim(g, dir, start, 0, &mut owner, &mut root.folded);
    tree.nodes.push(root);
    let mut queue = VecDeque::from([0usize]);
    let mut edges = Vec::new();
    while let Some(t) = queue.pop_front() {
        collect(
            g,
            dir,
            &tree.nodes[t],
            bound(g, dir, &tree.nodes[t], opts.at),
            &mut edges,
        );
        if edges.is_empty() {
            continue;
        }
        if opts.depth.is_some_and(|d| tree.nodes[t].depth >= d) {
            tree.nodes[t].more = edges.len();
            continue;
        }
        let depth = tree.nodes[t].depth + 1;
        for (i, &e) in edges.iter().enumerate() {
            if tree.nodes.len() >= max_nodes {
                tree.capped = true;
                tree.nodes[t].more = edges.len() - i;
                break;
            }
            let x = &g.edge(e);
            let other = match dir {
                Direction::Why => x.src,
                Direction::Impact => x.dst,
            };
            let idx = tree.nodes.len();
            let mut tn = TreeNode::new(other, Some(e), depth);
            match owner.get(&other) {
                Some(&o) => {
                    tn.seen = true;
                    tn.full = Some(o);
                }
                None => {
                    claim(g, dir, other, idx, &mut owner, &mut tn.folded);
                    queue.push_back(idx);
                }
            }
            tree.nodes.push(tn);
            tree.nodes[t].children.push(idx);
        }
    }
    if tree.capped {
        tree.notes.push(format!(
            "the answer was cut at {max_nodes} nodes; narrow it with --depth or --at (or export it)"
        ));
    }
    if tree.nodes.len() == 1 {
        let name = entity_path(g, start);
        let created = g.node(start).created_ns;
        if let Some(at) = opts.at.filter(|&at| dir == Direction::Why && created > at) {
            let origin = crate::view::origin_ns(g);
            tree.notes.push(format!(
                "{name} did not exist yet at {} (first seen at {})",
                fmt_rel(at, origin),
                fmt_rel(created, origin)
            ));
        }
        tree.notes.push(match dir {
            Direction::Why => format!("nothing recorded flowed into {name} (at that version)"),
            Direction::Impact => {
                format!("{name} affected nothing that was recorded (from that version on)")
            }
        });
    }
    tree
}

/// Mark `v` and the rest of its version chain (backwards for `why`,
/// forwards for `impact`) as expanded at tree node `idx`.
fn claim<G: GraphRead + ?Sized>(
    g: &G,
    dir: Direction,
    v: NodeId,
    idx: usize,
    owner: &mut HashMap<NodeId, usize>,
    folded: &mut Vec<NodeId>,
) {
    owner.insert(v, idx);
    let mut cur = v;
    loop {
        // A version's creating edge is its first in-edge (the store pushes
        // it with the node), so the chain is walked in O(1) per step; a
        // scan of the in- or out-edges cost a daemon's whole fan-in here.
        let next = match dir {
            Direction::Why => version_edge(g, cur).map(|x| x.src),
            Direction::Impact => {
                let n = &g.node(cur);
                g.entity(n.entity)
                    .versions
                    .get(n.version as usize + 1)
                    .copied()
                    .filter(|&nx| version_edge(g, nx).is_some_and(|x| x.src == cur))
            }
        };
        match next {
            Some(n) if !owner.contains_key(&n) => {
                owner.insert(n, idx);
                folded.push(n);
                cur = n;
            }
            _ => break,
        }
    }
}

/// The `Version` edge that created node `n`, if `n` was made by one.
fn version_edge<G: GraphRead + ?Sized>(g: &G, n: NodeId) -> Option<&tomo_store::Edge> {
    let &e = g.in_edges(n).first()?;
    let x = &g.edge(e);
    (x.kind == EdgeKind::Version && x.dst == n).then_some(x)
}

/// The time limit on the edges followed from a tree node: at the root,
/// `--at`; below it, the edge that led there (`why` follows only edges that
/// began no later than that edge's last event; `impact` only edges whose last
/// event is no earlier than its first). The store's versioning already makes
/// every walk time-respecting when events arrive in time order; this bound
/// keeps answers honest when a source delivers timestamps slightly out of
/// order (threads racing to be recorded), where the structure alone would
/// let lineage run backwards in time.
fn bound<G: GraphRead + ?Sized>(
    g: &G,
    dir: Direction,
    tn: &TreeNode,
    at: Option<u64>,
) -> Option<u64> {
    match tn.via {
        None => at,
        Some(e) => {
            let x = &g.edge(e);
            Some(match dir {
                Direction::Why => x.last_ns,
                Direction::Impact => x.ts_ns,
            })
        }
    }
}

/// The edges to follow from a tree node, in time order: for `why` those
/// that started at or before `at`, for `impact` those still flowing at or
/// after it.
fn collect<G: GraphRead + ?Sized>(
    g: &G,
    dir: Direction,
    tn: &TreeNode,
    at: Option<u64>,
    out: &mut Vec<EdgeId>,
) {
    out.clear();
    let mut keyed: Vec<(u64, EdgeId)> = Vec::new();
    for v in std::iter::once(tn.node).chain(tn.folded.iter().copied()) {
        let list = match dir {
            Direction::Why => g.in_edges(v),
            Direction::Impact => g.out_edges(v),
        };
        for &e in list {
            let x = g.edge(e);
            if x.kind == EdgeKind::Version {
                continue;
            }
            if let Some(at) = at {
                let outside = match dir {
                    Direction::Why => x.ts_ns > at,
                    Direction::Impact => x.last_ns < at,
                };
                if outside {
                    continue;
                }
            }
            keyed.push((x.ts_ns, e));
        }
    }
    keyed.sort_unstable();
    out.extend(keyed.into_iter().map(|(_, e)| e));
}

/// A line of the text rendering under one tree node.
enum Item {
    Child(usize),
    Libs {
        ts: u64,
        names: Vec<String>,
        entities: Vec<EntityId>,
    },
    More(usize),
}

impl Tree {
    pub fn root(&self) -> &TreeNode {
        &self.nodes[0]
    }

    /// Every graph node of the answer (including folded versions), for
    /// exporting it. May contain duplicates.
    pub fn graph_nodes(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.nodes
            .iter()
            .flat_map(|t| std::iter::once(t.node).chain(t.folded.iter().copied()))
    }

    /// Every edge of the answer.
    pub fn graph_edges(&self) -> impl Iterator<Item = EdgeId> + '_ {
        self.nodes.iter().filter_map(|t| t.via)
    }

    /// The JSON answer: `{"direction","target":NODE,"at_ns","truncated","notes",
    /// "root":{"node":NODE,"via":null,"children":[{"node","via","seen","children"}]}}`.
    /// Written iteratively: trees can be deeper than the stack allows recursion.
    pub fn write_json<G: GraphRead + ?Sized, W: Write + ?Sized>(
        &self,
        g: &G,
        w: &mut W,
    ) -> io::Result<()> {
        let root = &self.nodes[0];
        w.write_all(b"{\"direction\":")?;
        json(w, self.direction.as_str())?;
        w.write_all(b",\"target\":")?;
        json(w, &NodeView::new(g, root.node))?;
        w.write_all(b",\"at_ns\":")?;
        json(w, &self.at)?;
        w.write_all(b",\"truncated\":")?;
        json(w, &self.capped)?;
        w.write_all(b",\"notes\":")?;
        json(w, &self.notes)?;
        w.write_all(b",\"root\":")?;
        self.open_json(g, 0, w)?;
        let mut stack: Vec<(usize, usize)> = vec![(0, 0)];
        while let Some(&(t, i)) = stack.last() {
            let children = &self.nodes[t].children;
            if i < children.len() {
                if i > 0 {
                    w.write_all(b",")?;
                }
                let top = stack.len() - 1;
                stack[top].1 += 1;
                self.open_json(g, children[i], w)?;
                stack.push((children[i], 0));
            } else {
                w.write_all(b"]}")?;
                stack.pop();
            }
        }
        w.write_all(b"}")
    }

    fn open_json<G: GraphRead + ?Sized, W: Write + ?Sized>(
        &self,
        g: &G,
        t: usize,
        w: &mut W,
    ) -> io::Result<()> {
        let tn = &self.nodes[t];
        w.write_all(b"{\"node\":")?;
        json(w, &NodeView::new(g, tn.node))?;
        w.write_all(b",\"via\":")?;
        match tn.via {
            Some(e) => json(w, &ViaView::new(g, e))?,
            None => w.write_all(b"null")?,
        }
        if t != 0 {
            w.write_all(b",\"seen\":")?;
            json(w, &tn.seen)?;
        }
        if !tn.folded.is_empty() {
            w.write_all(b",\"folded\":")?;
            json(w, &tn.folded)?;
        }
        if tn.more > 0 {
            w.write_all(b",\"more\":")?;
            json(w, &tn.more)?;
        }
        w.write_all(b",\"children\":[")
    }

    /// The JSON answer as a string.
    pub fn to_json_string<G: GraphRead + ?Sized>(&self, g: &G) -> String {
        let mut buf = Vec::new();
        self.write_json(g, &mut buf).expect("writing to memory");
        String::from_utf8(buf).expect("serde_json writes UTF-8")
    }

    /// The readable tree: one line per node with the relative time of the
    /// edge, the edge, and the node. Leaf libraries are folded into one line
    /// per parent unless `opts.all`.
    pub fn write_text<G: GraphRead + ?Sized, W: Write + ?Sized>(
        &self,
        g: &G,
        opts: &TextOptions,
        w: &mut W,
    ) -> io::Result<()> {
        let root = &self.nodes[0];
        write!(w, "{}", describe(g, root.node, opts))?;
        // Every time below is relative; say once what it is relative to.
        match self.at {
            Some(at) => writeln!(
                w,
                "  (at {}; times from {})",
                fmt_rel(at, opts.origin_ns),
                rfc3339(opts.origin_ns)
            )?,
            None => writeln!(w, "  (times from {})", rfc3339(opts.origin_ns))?,
        }
        struct Frame {
            items: Vec<Item>,
            pos: usize,
            prefix: String,
            depth: usize,
        }
        let mut printed = vec![false; self.nodes.len()];
        printed[0] = true;
        let mut stack = vec![Frame {
            items: self.items(g, 0, opts),
            pos: 0,
            prefix: String::new(),
            depth: 1,
        }];
        while let Some(f) = stack.last_mut() {
            if f.pos >= f.items.len() {
                stack.pop();
                continue;
            }
            let i = f.pos;
            f.pos += 1;
            let last = f.pos == f.items.len();
            let (depth, conn) = (f.depth, if last { "└─ " } else { "├─ " });
            let marker = if depth > MAX_INDENT {
                format!("[{depth}] ")
            } else {
                String::new()
            };
            let mut push = None;
            match &f.items[i] {
                Item::Child(c) => {
                    let c = *c;
                    let tn = &self.nodes[c];
                    let e = tn.via.expect("children have an edge");
                    write!(
                        w,
                        "{}{conn}{marker}{}  {}  {}",
                        f.prefix,
                        fmt_rel(g.edge(e).ts_ns, opts.origin_ns),
                        edge_phrase(g, e),
                        describe(g, tn.node, opts)
                    )?;
                    if tn.seen {
                        let above = tn.full.is_some_and(|o| printed[o]);
                        write!(w, "  ({})", if above { "seen above" } else { "see below" })?;
                    }
                    writeln!(w)?;
                    printed[c] = true;
                    if !tn.seen && (!tn.children.is_empty() || tn.more > 0) {
                        let mut prefix = f.prefix.clone();
                        if depth < MAX_INDENT {
                            prefix.push_str(if last { "   " } else { "│  " });
                        }
                        push = Some(Frame {
                            items: self.items(g, c, opts),
                            pos: 0,
                            prefix,
                            depth: depth + 1,
                        });
                    }
                }
                Item::Libs {
                    ts,
                    names,
                    entities,
                } => {
                    let n = entities.len();
                    let mut shown: Vec<&str> = names.iter().take(3).map(|s| s.as_str()).collect();
                    if n > 3 {
                        shown.push("…");
                    }
                    writeln!(
                        w,
                        "{}{conn}{marker}{}  loaded {n} librar{} ({})",
                        f.prefix,
                        fmt_rel(*ts, opts.origin_ns),
                        if n == 1 { "y" } else { "ies" },
                        shown.join(", ")
                    )?;
                }
                Item::More(n) => {
                    let why = if self.depth.is_some_and(|d| depth > d) {
                        "beyond --depth"
                    } else {
                        "node cap reached"
                    };
                    writeln!(w, "{}{conn}{marker}… {n} more ({why})", f.prefix)?;
                }
            }
            if let Some(fr) = push {
                stack.push(fr);
            }
        }
        Ok(())
    }

    fn items<G: GraphRead + ?Sized>(&self, g: &G, t: usize, opts: &TextOptions) -> Vec<Item> {
        let tn = &self.nodes[t];
        let mut out = Vec::with_capacity(tn.children.len() + 1);
        let mut libs: Option<usize> = None;
        for &c in &tn.children {
            if opts.all || !self.foldable(g, c) {
                out.push(Item::Child(c));
                continue;
            }
            let node = self.nodes[c].node;
            let ent = g.node(node).entity;
            let path = entity_path(g, node);
            let name = crate::view::clean(path.rsplit('/').next().unwrap_or(path)).into_owned();
            match libs {
                Some(i) => {
                    if let Item::Libs {
                        names, entities, ..
                    } = &mut out[i]
                    {
                        if !entities.contains(&ent) {
                            entities.push(ent);
                            names.push(name);
                        }
                    }
                }
                None => {
                    let ts = g.edge(self.nodes[c].via.expect("child edge")).ts_ns;
                    libs = Some(out.len());
                    out.push(Item::Libs {
                        ts,
                        names: vec![name],
                        entities: vec![ent],
                    });
                }
            }
        }
        if tn.more > 0 {
            out.push(Item::More(tn.more));
        }
        out
    }

    /// A library read or loaded by a process, with no lineage of its own
    /// in the recording: folded in text output.
    fn foldable<G: GraphRead + ?Sized>(&self, g: &G, c: usize) -> bool {
        if self.direction != Direction::Why {
            return false;
        }
        let tn = &self.nodes[c];
        let Some(e) = tn.via else { return false };
        if !matches!(g.edge(e).kind, EdgeKind::Load | EdgeKind::Read) {
            return false;
        }
        let ent = g.entity_of(tn.node);
        if !ent.kind.is_object()
            || !(is_library_name(&g.node(tn.node).label)
                || ent.names.iter().any(|n| is_library_name(n)))
        {
            return false;
        }
        let full = if tn.seen {
            tn.full.map(|f| &self.nodes[f])
        } else {
            Some(tn)
        };
        full.is_some_and(|f| f.children.is_empty() && f.more == 0)
    }
}
