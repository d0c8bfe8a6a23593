//! Audit events through the durable log and the graph ingest: `cat a > b`
//! must give the same lineage as the ptrace recorder would.

mod common;

use common::*;
use tomo_log::{RecordingMeta, Writer, WriterOptions};
use tomo_store::{EdgeKind, Graph};

const CAT: &str = include_str!("data/cat_redirect.log");

fn entity(g: &Graph, name: &str) -> u32 {
    *g.by_name(name)
        .first()
        .unwrap_or_else(|| panic!("no entity named {name}"))
}

/// Edges of `kind` between any version of `src` and any version of `dst`.
fn edges(g: &Graph, src: u32, dst: u32, kind: EdgeKind) -> Vec<&tomo_store::Edge> {
    g.edges
        .iter()
        .filter(|e| {
            e.kind == kind
                && g.nodes[e.src as usize].entity == src
                && g.nodes[e.dst as usize].entity == dst
        })
        .collect()
}

#[test]
fn cat_redirect_through_log_and_ingest() {
    let (evs, p) = parse(CAT);
    assert!(p.warnings().is_empty());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("host.tomo");
    let (host, boot) = p.first_ids().unwrap();
    let meta = RecordingMeta {
        host,
        boot,
        source: "audit".into(),
        command: Vec::new(),
        cut_from: None,
        host_name: None,
    };
    let mut w = Writer::create(&path, meta, WriterOptions::default()).unwrap();
    for e in &evs {
        w.append(e).unwrap();
    }
    w.finish().unwrap();
    let (meta, back, damage) = tomo_log::read_all(&path).unwrap();
    assert!(damage.is_none());
    assert_eq!(meta.source, "audit");
    assert_eq!(back, evs);
    let report = tomo_log::verify(&path).unwrap();
    assert_eq!(report.seq_regressions, 0);

    let g = tomo_ingest::build(back.iter());
    assert!(g.is_acyclic());
    let a = entity(&g, "/tmp/w/a");
    let b = entity(&g, "/tmp/w/b");
    let cat_bin = entity(&g, "/usr/bin/cat");
    let cat = g.by_pid(1001)[0];
    let bash = g.by_pid(1000)[0];
    let info = g.entities[cat as usize].process.as_ref().unwrap();
    assert_eq!(info.execs.last().unwrap().exe, "/usr/bin/cat");
    assert_eq!(info.execs.last().unwrap().argv, ["cat", "a"]);
    assert_eq!(info.exit_code, Some(0));
    assert_eq!(info.parent, Some(bash));
    let n = g.entities[cat as usize].current();
    assert_eq!(&*g.nodes[n as usize].label, "cat");
    let bash_n = g.entities[bash as usize].current();
    assert_eq!(&*g.nodes[bash_n as usize].label, "bash");

    assert_eq!(edges(&g, bash, cat, EdgeKind::Spawn).len(), 1);
    assert_eq!(edges(&g, cat_bin, cat, EdgeKind::Load).len(), 1);
    let reads = edges(&g, a, cat, EdgeKind::Read);
    assert_eq!(reads.iter().map(|e| e.bytes).sum::<u64>(), 6);
    let writes = edges(&g, cat, b, EdgeKind::Write);
    // The truncating create (0 bytes) by the shell's child, then cat's 6 bytes.
    assert_eq!(writes.iter().map(|e| e.bytes).sum::<u64>(), 6);
    // Lineage: b's last version reaches a through cat.
    let b_last = g.entities[b as usize].current();
    let mut seen = std::collections::HashSet::new();
    let mut todo = vec![b_last];
    while let Some(n) = todo.pop() {
        if seen.insert(n) {
            todo.extend(g.in_edges(n).iter().map(|&e| g.edges[e as usize].src));
        }
    }
    assert!(
        seen.iter().any(|&n| g.nodes[n as usize].entity == a),
        "why(b) must reach a"
    );
}

#[test]
fn pipeline_through_a_pipe() {
    // sh -c 'cat in | wc -c > out', reduced to its data-carrying calls.
    let text = log(&[
        ev(1, 10, 22, 0, ["7ffc", "0", "0", "0"]).aux("FD_PAIR", "fd0=3 fd1=4"),
        ev(2, 10, 56, 11, ["1200011", "0", "0", "0"]),
        ev(3, 10, 56, 12, ["1200011", "0", "0", "0"]),
        ev(4, 11, 33, 1, ["4", "1", "0", "0"]).ppid(10),
        ev(5, 11, 59, 0, ["1", "2", "3", "4"])
            .ppid(10)
            .exe("cat", "/usr/bin/cat")
            .cwd("/w")
            .aux("EXECVE", "argc=2 a0=\"cat\" a1=\"in\"")
            .path(0, "\"/usr/bin/cat\"", 777, "0100755", "NORMAL"),
        ev(6, 11, 257, 5, ["ffffff9c", "1", "0", "0"])
            .ppid(10)
            .exe("cat", "/usr/bin/cat")
            .cwd("/w")
            .path(0, "\"in\"", 41, "0100644", "NORMAL"),
        ev(7, 11, 0, 3, ["5", "1", "1000", "0"])
            .ppid(10)
            .exe("cat", "/usr/bin/cat"),
        ev(8, 11, 1, 3, ["1", "1", "3", "0"])
            .ppid(10)
            .exe("cat", "/usr/bin/cat"),
        ev(9, 12, 33, 0, ["3", "0", "0", "0"]).ppid(10),
        ev(10, 12, 257, 1, ["ffffff9c", "1", "241", "1b6"])
            .ppid(10)
            .cwd("/w")
            .path(0, "\"/w\"", 40, "040755", "PARENT")
            .path(1, "\"out\"", 42, "0100644", "CREATE"),
        ev(11, 12, 59, 0, ["1", "2", "3", "4"])
            .ppid(10)
            .exe("wc", "/usr/bin/wc")
            .cwd("/w")
            .aux("EXECVE", "argc=2 a0=\"wc\" a1=\"-c\"")
            .path(0, "\"/usr/bin/wc\"", 778, "0100755", "NORMAL"),
        ev(12, 12, 0, 3, ["0", "1", "1000", "0"])
            .ppid(10)
            .exe("wc", "/usr/bin/wc"),
        ev(13, 12, 1, 2, ["1", "1", "2", "0"])
            .ppid(10)
            .exe("wc", "/usr/bin/wc"),
    ]);
    let (evs, p) = parse(&text);
    assert!(p.warnings().is_empty(), "{:?}", p.warnings());
    assert_eq!(p.stats().untracked_fd, 0);
    let g = tomo_ingest::build(evs.iter());
    let input = entity(&g, "/w/in");
    let out = entity(&g, "/w/out");
    let cat = g.by_pid(11)[0];
    let wc = g.by_pid(12)[0];
    assert_eq!(edges(&g, input, cat, EdgeKind::Read).len(), 1);
    let pipe = g
        .edges
        .iter()
        .find(|e| e.kind == EdgeKind::Write && g.nodes[e.src as usize].entity == cat)
        .map(|e| g.nodes[e.dst as usize].entity)
        .unwrap();
    assert_eq!(edges(&g, pipe, wc, EdgeKind::Read).len(), 1);
    assert_eq!(
        edges(&g, wc, out, EdgeKind::Write)
            .iter()
            .map(|e| e.bytes)
            .sum::<u64>(),
        2
    );
}
