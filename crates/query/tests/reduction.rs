//! The causality-preserving reduction (repeated flows between the same two
//! versions merged into one edge, CPR-style) must not change any lineage
//! answer: every `why` and `impact`, at every depth and time, reaches the
//! same versions in the reduced and the unreduced graph.

mod common;

use common::*;
use std::collections::{BTreeMap, BTreeSet};
use tomo_query::{impact, why, LineageOptions, Tree};
use tomo_store::{EdgeKind, Graph};

/// A workload made of bursts: a process reads a file in many small reads,
/// writes its output in many small writes, talks through a pipe in chunks,
/// with interleavings that must cut a burst (another input in between, a
/// read after a write).
fn bursty(n: usize, seed: u64) -> Rec {
    let mut x = seed;
    let mut rnd = move |m: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % m
    };
    let mut r = Rec::new();
    r.observed(1, "/sbin/init", &["init"]);
    let mut live = vec![1u32];
    let mut next_pid = 2u32;
    for _ in 0..n {
        let p = live[rnd(live.len() as u64) as usize];
        let burst = 1 + rnd(6);
        match rnd(9) {
            0 => {
                r.spawn(p, next_pid);
                r.exec(next_pid, &format!("/bin/p{}", rnd(4)), &["p"]);
                live.push(next_pid);
                next_pid += 1;
            }
            1 if live.len() > 2 && p != 1 => {
                r.exit(p, 0);
                live.retain(|&q| q != p);
            }
            2 | 3 => {
                let f = file(&format!("/in/{}", rnd(8)));
                for _ in 0..burst {
                    r.read(p, f.clone(), 1 + rnd(4096));
                }
            }
            4 | 5 => {
                let f = file(&format!("/out/{}", rnd(8)));
                for _ in 0..burst {
                    r.write(p, f.clone(), 1 + rnd(4096));
                }
            }
            6 => {
                // Interleaved: read A, read B, read A: the second read of A
                // must stay a separate edge (B came in between).
                let a = file(&format!("/in/{}", rnd(8)));
                let b = file(&format!("/in/{}", rnd(8)));
                r.read(p, a.clone(), 10);
                r.read(p, b, 10);
                r.read(p, a, 10);
            }
            7 => {
                for _ in 0..burst {
                    r.write(p, pipe(900 + rnd(2)), 512);
                }
            }
            _ => {
                for _ in 0..burst {
                    r.read(p, pipe(900 + rnd(2)), 512);
                }
            }
        }
    }
    r
}

/// The versions an answer reaches, and the graph links (version to
/// version) it followed. Which tree node shows a version is presentation
/// (versions of one entity fold into the first one reached), not lineage.
fn reached(g: &Graph, t: &Tree) -> (BTreeSet<u32>, BTreeSet<(u32, u32)>) {
    let mut nodes = BTreeSet::new();
    let mut links = BTreeSet::new();
    for tn in &t.nodes {
        nodes.insert(tn.node);
        nodes.extend(tn.folded.iter().copied());
        if let Some(e) = tn.via {
            let e = &g.edges[e as usize];
            links.insert((e.src, e.dst));
        }
    }
    (nodes, links)
}

fn assert_equivalent(evs: &[tomo_event::Event], what: &str) -> (usize, usize) {
    let red = tomo_ingest::build(evs.iter());
    let full = tomo_ingest::build_unreduced(evs.iter());
    // Versioning does not depend on merging: the same nodes, in order.
    assert_eq!(red.nodes.len(), full.nodes.len(), "{what}: node counts");
    for (a, b) in red.nodes.iter().zip(&full.nodes) {
        assert_eq!(
            (a.entity, a.version, a.created_ns),
            (b.entity, b.version, b.created_ns),
            "{what}"
        );
    }
    // Every merged edge stands for a run of unreduced edges between the
    // same versions: same pairs, bytes, event counts and time span.
    type Key = (u32, u32, u8);
    let sum = |g: &Graph| {
        let mut m: BTreeMap<Key, (u64, u64, u64, u64)> = BTreeMap::new();
        for e in &g.edges {
            let v = m
                .entry((e.src, e.dst, e.kind as u8))
                .or_insert((0, 0, u64::MAX, 0));
            v.0 += e.bytes;
            v.1 += e.events as u64;
            v.2 = v.2.min(e.ts_ns);
            v.3 = v.3.max(e.last_ns);
        }
        m
    };
    assert_eq!(sum(&red), sum(&full), "{what}: merged edges differ");

    // Every lineage question, both ways, unbounded and bounded, now and at
    // a spread of past times.
    let times: Vec<Option<u64>> = std::iter::once(None)
        .chain(evs.iter().step_by(evs.len() / 7 + 1).map(|e| Some(e.ts_ns)))
        .collect();
    let mut asked = 0;
    for e in 0..red.entities.len() as u32 {
        for depth in [None, Some(1), Some(3)] {
            for &at in &times {
                let o = LineageOptions {
                    depth,
                    at,
                    max_nodes: usize::MAX,
                };
                for (name, f) in [("why", why as fn(_, _, _) -> Tree), ("impact", impact)] {
                    let (a, b) = (f(&red, e, &o), f(&full, e, &o));
                    assert_eq!(
                        reached(&red, &a),
                        reached(&full, &b),
                        "{what}: {name} of entity {e} (depth {depth:?}, at {at:?}) differs"
                    );
                    asked += 1;
                }
            }
        }
    }
    assert!(asked > 0);
    (full.edges.len(), red.edges.len())
}

#[test]
fn reduction_keeps_every_lineage_answer_of_bursty_workloads() {
    for seed in [1, 7, 42] {
        let r = bursty(400, seed);
        let (full, red) = assert_equivalent(&r.evs, &format!("bursty seed {seed}"));
        // Not vacuous: the workload has runs to merge.
        assert!(
            (full as f64) / (red as f64) > 1.3,
            "seed {seed}: only {full} -> {red} edges"
        );
    }
}

#[test]
fn reduction_keeps_every_lineage_answer_of_the_pipeline() {
    let (full, red) = assert_equivalent(&pipeline().evs, "pipeline");
    assert!(full >= red);
}

#[test]
fn interleaved_flows_are_not_merged() {
    let mut r = Rec::new();
    r.observed(5, "/bin/cat", &["cat"]);
    let (a, b) = (file("/a"), file("/b"));
    r.read(5, a.clone(), 1);
    r.read(5, a.clone(), 1);
    r.read(5, b, 1);
    r.read(5, a, 1);
    let g = tomo_ingest::build(r.evs.iter());
    let reads: Vec<u32> = g
        .edges
        .iter()
        .filter(|e| e.kind == EdgeKind::Read)
        .map(|e| e.events)
        .collect();
    // a (2 merged), b, a again: the last read of a is after b's data
    // arrived, so it stays its own edge.
    assert_eq!(reads, vec![2, 1, 1]);
}
