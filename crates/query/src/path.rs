//! `path A B`: the causal paths from A to B, shortest first.
//!
//! A path starts at any version of A and ends at the first version of B it
//! reaches; `version` edges cost nothing (they are the entity persisting),
//! every other edge costs one hop. Paths never re-enter A. The K shortest are
//! found with Yen's algorithm over a 0-1 BFS; parallel edges (same endpoints
//! and kind) count as one, and paths that look the same at the level of
//! entities (same entities, same kinds of edges, only other times) are shown
//! once, the earliest-found.

use crate::view::{describe, edge_phrase, fmt_rel, json, NodeView, TextOptions, ViaView};
use crate::QueryError;
use std::collections::{HashMap, HashSet, VecDeque};
use std::io::{self, Write};
use tomo_store::{EdgeId, EdgeKind, EntityId, Graph, NodeId};

/// How many paths `tomo path` shows.
pub const DEFAULT_K: usize = 3;

/// A path: its first node and its edges in order (including `version` edges).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CausalPath {
    pub start: NodeId,
    pub edges: Vec<EdgeId>,
}

impl CausalPath {
    /// The edges that are not `version` edges.
    pub fn visible<'a>(&'a self, g: &'a Graph) -> impl Iterator<Item = EdgeId> + 'a {
        self.edges
            .iter()
            .copied()
            .filter(move |&e| g.edges[e as usize].kind != EdgeKind::Version)
    }

    /// Number of hops (visible edges).
    pub fn hops(&self, g: &Graph) -> usize {
        self.visible(g).count()
    }

    /// Every node on the path, versions included.
    pub fn nodes<'a>(&'a self, g: &'a Graph) -> impl Iterator<Item = NodeId> + 'a {
        std::iter::once(self.start).chain(self.edges.iter().map(move |&e| g.edges[e as usize].dst))
    }

    fn signature(&self, g: &Graph) -> Vec<(EntityId, EdgeKind)> {
        let mut sig = vec![(g.nodes[self.start as usize].entity, EdgeKind::Version)];
        sig.extend(self.visible(g).map(|e| {
            let x = &g.edges[e as usize];
            (g.nodes[x.dst as usize].entity, x.kind)
        }));
        sig
    }
}

/// The answer of `path`.
#[derive(Clone, Debug)]
pub struct Paths {
    pub from: EntityId,
    pub to: EntityId,
    /// Shortest first.
    pub paths: Vec<CausalPath>,
}

type Key = (NodeId, NodeId, EdgeKind);

fn key(g: &Graph, e: EdgeId) -> Key {
    let x = &g.edges[e as usize];
    (x.src, x.dst, x.kind)
}

struct Search<'g> {
    g: &'g Graph,
    from: EntityId,
    to: EntityId,
}

impl Search<'_> {
    /// 0-1 BFS from `starts` to any version of `to`, avoiding `banned` edges
    /// and never entering a version of `from`. Each start comes with the time
    /// data arrived there (0 for A itself): an edge is only followed if it is
    /// still flowing at or after the arrival time of its source, so a path
    /// never runs backwards in time even when a source delivered timestamps
    /// out of order (the store's versioning already guarantees it when they
    /// are in order). `version` edges keep the arrival time: they are the
    /// entity persisting. Returns (hops, start, edges).
    fn shortest(
        &self,
        starts: &[(NodeId, u64)],
        banned: &HashSet<Key>,
    ) -> Option<(usize, NodeId, Vec<EdgeId>)> {
        let g = self.g;
        let mut dist: HashMap<NodeId, usize> = HashMap::new();
        let mut arrive: HashMap<NodeId, u64> = HashMap::new();
        let mut pred: HashMap<NodeId, EdgeId> = HashMap::new();
        let mut dq = VecDeque::new();
        for &(s, t) in starts {
            dist.insert(s, 0);
            arrive.insert(s, t);
            dq.push_back((s, 0usize));
        }
        while let Some((n, d)) = dq.pop_front() {
            if dist.get(&n).is_some_and(|&best| best < d) {
                continue;
            }
            if g.nodes[n as usize].entity == self.to {
                let mut edges = Vec::new();
                let mut cur = n;
                while let Some(&e) = pred.get(&cur) {
                    edges.push(e);
                    cur = g.edges[e as usize].src;
                }
                edges.reverse();
                return Some((d, cur, edges));
            }
            let at = arrive.get(&n).copied().unwrap_or(0);
            for &e in g.out_edges(n) {
                let x = &g.edges[e as usize];
                if g.nodes[x.dst as usize].entity == self.from
                    || banned.contains(&(x.src, x.dst, x.kind))
                {
                    continue;
                }
                let version = x.kind == EdgeKind::Version;
                if !version && x.last_ns < at {
                    continue;
                }
                let w = usize::from(!version);
                let nd = d + w;
                let better = match dist.get(&x.dst) {
                    Some(&old) => nd < old,
                    None => true,
                };
                if better {
                    dist.insert(x.dst, nd);
                    arrive.insert(x.dst, if version { at } else { x.ts_ns });
                    pred.insert(x.dst, e);
                    if w == 0 {
                        dq.push_front((x.dst, nd));
                    } else {
                        dq.push_back((x.dst, nd));
                    }
                }
            }
        }
        None
    }
}

/// When data that followed `edges` arrived at their end (0: not moved yet).
fn arrival(g: &Graph, edges: &[EdgeId]) -> u64 {
    edges
        .iter()
        .rev()
        .map(|&e| &g.edges[e as usize])
        .find(|x| x.kind != EdgeKind::Version)
        .map_or(0, |x| x.ts_ns)
}

/// Up to `k` causal paths from entity `from` to entity `to`, shortest first.
pub fn paths(g: &Graph, from: EntityId, to: EntityId, k: usize) -> Result<Paths, QueryError> {
    let name = |e: EntityId| describe(g, g.entities[e as usize].current(), &TextOptions::default());
    if from == to {
        return Err(QueryError::Invalid(format!(
            "A and B are the same entity ({})",
            name(from)
        )));
    }
    let s = Search { g, from, to };
    let starts = &g.entities[from as usize].versions;
    let no_path = || QueryError::NoPath {
        from: name(from),
        to: name(to),
    };
    let all: Vec<(NodeId, u64)> = starts.iter().map(|&n| (n, 0)).collect();
    let (cost, start, edges) = s.shortest(&all, &HashSet::new()).ok_or_else(no_path)?;
    let mut found: Vec<(usize, CausalPath)> = vec![(cost, CausalPath { start, edges })];
    let mut cands: Vec<(usize, CausalPath)> = Vec::new();
    // Yen's loop; it may find entity-level duplicates, hence a few more rounds than k.
    let budget = k.saturating_mul(5) + 10;
    let mut shown = distinct(g, &found, k);
    while shown < k && found.len() < budget {
        let prev = found.last().expect("non-empty").1.clone();
        // Spur at the virtual source: other start versions.
        let used: HashSet<NodeId> = found.iter().map(|(_, p)| p.start).collect();
        let others: Vec<(NodeId, u64)> = starts
            .iter()
            .copied()
            .filter(|n| !used.contains(n))
            .map(|n| (n, 0))
            .collect();
        if !others.is_empty() {
            if let Some((c, st, es)) = s.shortest(&others, &HashSet::new()) {
                push_candidate(
                    &mut cands,
                    &found,
                    c,
                    CausalPath {
                        start: st,
                        edges: es,
                    },
                );
            }
        }
        // Spur at each node of the previous path but the last.
        let mut root_cost = 0;
        for j in 0..prev.edges.len() {
            let spur = if j == 0 {
                prev.start
            } else {
                g.edges[prev.edges[j - 1] as usize].dst
            };
            if j > 0 && g.edges[prev.edges[j - 1] as usize].kind != EdgeKind::Version {
                root_cost += 1;
            }
            let root = &prev.edges[..j];
            let banned: HashSet<Key> = found
                .iter()
                .filter(|(_, p)| {
                    p.start == prev.start && p.edges.len() > j && p.edges[..j] == *root
                })
                .map(|(_, p)| key(g, p.edges[j]))
                .collect();
            if let Some((c, _, es)) = s.shortest(&[(spur, arrival(g, root))], &banned) {
                let mut edges = root.to_vec();
                edges.extend(es);
                push_candidate(
                    &mut cands,
                    &found,
                    root_cost + c,
                    CausalPath {
                        start: prev.start,
                        edges,
                    },
                );
            }
        }
        if cands.is_empty() {
            break;
        }
        let best = (0..cands.len())
            .min_by_key(|&i| {
                (
                    cands[i].0,
                    cands[i].1.edges.len(),
                    cands[i].1.start,
                    cands[i].1.edges.clone(),
                )
            })
            .expect("non-empty");
        found.push(cands.swap_remove(best));
        shown = distinct(g, &found, k);
    }
    let mut seen = HashSet::new();
    let paths = found
        .into_iter()
        .map(|(_, p)| p)
        .filter(|p| seen.insert(p.signature(g)))
        .take(k)
        .collect();
    Ok(Paths { from, to, paths })
}

fn push_candidate(
    cands: &mut Vec<(usize, CausalPath)>,
    found: &[(usize, CausalPath)],
    cost: usize,
    p: CausalPath,
) {
    if !found.iter().any(|(_, q)| *q == p) && !cands.iter().any(|(_, q)| *q == p) {
        cands.push((cost, p));
    }
}

fn distinct(g: &Graph, found: &[(usize, CausalPath)], k: usize) -> usize {
    let mut seen = HashSet::new();
    found
        .iter()
        .filter(|(_, p)| seen.insert(p.signature(g)))
        .take(k)
        .count()
}

/// `{"from":NODE,"to":NODE,"paths":[{"hops":n,"steps":[{"node":NODE,"via":null},{"node":NODE,"via":VIA}]}]}`
pub fn write_paths_json<W: Write + ?Sized>(g: &Graph, p: &Paths, w: &mut W) -> io::Result<()> {
    let from = p
        .paths
        .first()
        .map(|x| x.start)
        .unwrap_or(g.entities[p.from as usize].versions[0]);
    let to = p
        .paths
        .first()
        .and_then(|x| x.edges.last().map(|&e| g.edges[e as usize].dst))
        .unwrap_or(g.entities[p.to as usize].current());
    w.write_all(b"{\"from\":")?;
    json(w, &NodeView::new(g, from))?;
    w.write_all(b",\"to\":")?;
    json(w, &NodeView::new(g, to))?;
    w.write_all(b",\"paths\":[")?;
    for (i, path) in p.paths.iter().enumerate() {
        if i > 0 {
            w.write_all(b",")?;
        }
        write!(w, "{{\"hops\":{},\"steps\":[{{\"node\":", path.hops(g))?;
        json(w, &NodeView::new(g, path.start))?;
        w.write_all(b",\"via\":null}")?;
        for e in path.visible(g) {
            w.write_all(b",{\"node\":")?;
            json(w, &NodeView::new(g, g.edges[e as usize].dst))?;
            w.write_all(b",\"via\":")?;
            json(w, &ViaView::new(g, e))?;
            w.write_all(b"}")?;
        }
        w.write_all(b"]}")?;
    }
    w.write_all(b"]}")
}

/// One block per path: the start, then one line per hop with its time.
pub fn write_paths_text<W: Write + ?Sized>(
    g: &Graph,
    p: &Paths,
    opts: &TextOptions,
    w: &mut W,
) -> io::Result<()> {
    for (i, path) in p.paths.iter().enumerate() {
        if i > 0 {
            writeln!(w)?;
        }
        let hops = path.hops(g);
        writeln!(
            w,
            "path {} ({hops} hop{}):",
            i + 1,
            if hops == 1 { "" } else { "s" }
        )?;
        let lines: Vec<(String, String, String)> = path
            .visible(g)
            .map(|e| {
                let x = &g.edges[e as usize];
                (
                    fmt_rel(x.ts_ns, opts.origin_ns),
                    edge_phrase(g, e),
                    describe(g, x.dst, opts),
                )
            })
            .collect();
        let tw = lines.iter().map(|l| l.0.chars().count()).max().unwrap_or(0);
        let pw = lines.iter().map(|l| l.1.chars().count()).max().unwrap_or(0);
        writeln!(
            w,
            "  {:tw$}  {:pw$}  {}",
            "",
            "",
            describe(g, path.start, opts)
        )?;
        for (t, ph, d) in lines {
            writeln!(w, "  {t:>tw$}  {ph:pw$}  {d}")?;
        }
    }
    Ok(())
}
