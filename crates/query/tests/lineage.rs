//! `why`, `impact` and `path` on graphs built from hand-written events.

mod common;

use common::*;
use std::collections::HashSet;
use tomo_query::*;
use tomo_store::{EdgeKind, EntityId, EntityKind, Flow, Graph};
use uuid::Uuid;

fn ent(g: &Graph, target: &str) -> EntityId {
    resolve(g, target, &ResolveOptions::default())
        .unwrap_or_else(|e| panic!("{target}: {e}"))
        .entity
}

/// Names (first path, or process label) of every entity in a tree.
fn names(g: &Graph, t: &Tree) -> HashSet<String> {
    t.nodes
        .iter()
        .map(|tn| entity_path(g, tn.node).to_string())
        .chain(
            t.nodes
                .iter()
                .map(|tn| g.nodes[tn.node as usize].label.to_string()),
        )
        .collect()
}

/// Along every root-to-leaf chain, time must not run the wrong way: going
/// backwards (`why`) each edge starts no later than the last event of the
/// edge that led to it; forwards (`impact`) each edge ends no earlier than
/// the start of the edge that led to it.
fn assert_time_respecting(g: &Graph, t: &Tree) {
    for (i, parent) in t.nodes.iter().enumerate() {
        for &c in &parent.children {
            let child = &t.nodes[c];
            let x = &g.edges[child.via.expect("child has an edge") as usize];
            if let Some(pe) = parent.via {
                let p = &g.edges[pe as usize];
                match t.direction {
                    Direction::Why => assert!(
                        x.ts_ns <= p.last_ns,
                        "tree node {c} (edge at {}) under {i} (edge at {}) goes back in time",
                        x.ts_ns,
                        p.last_ns
                    ),
                    Direction::Impact => assert!(
                        x.last_ns >= p.ts_ns,
                        "tree node {c} under {i} goes back in time"
                    ),
                }
            }
            if let (Some(at), None) = (t.at, parent.via) {
                match t.direction {
                    Direction::Why => assert!(x.ts_ns <= at),
                    Direction::Impact => assert!(x.last_ns >= at),
                }
            }
        }
    }
}

fn text(g: &Graph, t: &Tree) -> String {
    let mut out = Vec::new();
    t.write_text(
        g,
        &TextOptions {
            origin_ns: origin_ns(g),
            ..TextOptions::default()
        },
        &mut out,
    )
    .unwrap();
    String::from_utf8(out).unwrap()
}

#[test]
fn why_of_pipeline_output_reaches_the_inputs_through_the_pipe() {
    let g = pipeline().graph();
    let out = ent(&g, "/w/out.tgz");
    let t = why(&g, out, &LineageOptions::default());
    assert!(!t.capped);
    let n = names(&g, &t);
    for want in [
        "/w/out.tgz",
        "gzip",
        "pipe:[77]",
        "tar",
        "/d/a",
        "/d/b",
        "sh",
        "/usr/bin/gzip",
    ] {
        assert!(n.contains(want), "why /w/out.tgz lacks {want}: {n:?}");
    }
    assert_time_respecting(&g, &t);
    // The pipe is reached from gzip by a read, tar from the pipe by a write.
    let pipe = t
        .nodes
        .iter()
        .find(|tn| entity_path(&g, tn.node) == "pipe:[77]")
        .unwrap();
    assert_eq!(g.edges[pipe.via.unwrap() as usize].kind, EdgeKind::Read);
    assert_eq!(pipe.children.len(), 1);
    let tar = &t.nodes[pipe.children[0]];
    assert_eq!(&*g.nodes[tar.node as usize].label, "tar");
    assert_eq!(g.edges[tar.via.unwrap() as usize].bytes, 512);

    let s = text(&g, &t);
    assert!(
        s.starts_with("/w/out.tgz  (times from 2023-11-14T22:13:20Z)\n"),
        "{s}"
    );
    assert!(s.contains("read 512 B  pipe:[77]"), "{s}");
    assert!(s.contains("read 5 B  /d/a"), "{s}");
    assert!(s.contains("tar[pid 11] tar cf - /d"), "{s}");
    // Libraries with no lineage of their own fold into one line.
    assert!(
        s.contains("loaded 2 libraries (libc.so.6, libz.so.1)"),
        "{s}"
    );
    assert!(s.contains("+0.120ms"), "relative times are shown: {s}");

    let v: serde_json::Value = serde_json::from_str(&t.to_json_string(&g)).unwrap();
    assert_eq!(v["direction"], "why");
    assert_eq!(v["target"]["label"], "/w/out.tgz");
    assert_eq!(v["target"]["kind"], "file");
    assert!(v["root"]["via"].is_null());
    let kids = v["root"]["children"].as_array().unwrap();
    assert!(kids
        .iter()
        .all(|c| c["node"]["pid"] == 12 && c["via"]["kind"] == "write" && c["seen"].is_boolean()));
    assert_eq!(kids[0]["node"]["argv"], serde_json::json!(["gzip"]));
}

#[test]
fn impact_of_an_input_reaches_the_output_only() {
    let g = pipeline().graph();
    let t = impact(&g, ent(&g, "/d/a"), &LineageOptions::default());
    let n = names(&g, &t);
    for want in ["tar", "pipe:[77]", "gzip", "/w/out.tgz"] {
        assert!(n.contains(want), "impact /d/a lacks {want}: {n:?}");
    }
    for not in ["/d/b", "sh", "/usr/bin/tar"] {
        assert!(
            !n.contains(not),
            "impact /d/a must not contain {not}: {n:?}"
        );
    }
    assert_time_respecting(&g, &t);
    // An output affects nothing.
    let t = impact(&g, ent(&g, "/w/out.tgz"), &LineageOptions::default());
    assert_eq!(t.nodes.len(), 1);
    assert!(
        t.notes.iter().any(|n| n.contains("affected nothing")),
        "{:?}",
        t.notes
    );
}

/// p reads /in, writes /f and /g, reads /f back (read after write: a new
/// version of p), reads /secret, writes /f again (a new version of /f).
fn read_after_write() -> (Rec, [u64; 7]) {
    let mut r = Rec::new();
    let t0 = r.observed(20, "/usr/bin/p", &["p"]);
    let t1 = r.read(20, file("/in"), 10);
    let t2 = r.write(20, file("/f"), 10);
    let t3 = r.write(20, file("/g"), 3);
    let t4 = r.read(20, file("/f"), 10);
    let t5 = r.read(20, file("/secret"), 4);
    let t6 = r.write(20, file("/f"), 14);
    (r, [t0, t1, t2, t3, t4, t5, t6])
}

#[test]
fn read_after_write_versions_and_lineage_never_goes_back_in_time() {
    let (r, t) = read_after_write();
    let g = r.graph();
    assert!(g.is_acyclic());
    let (p, f) = (ent(&g, "20"), ent(&g, "/f"));
    assert_eq!(
        g.entities[p as usize].versions.len(),
        2,
        "the read-back starts a new version of p"
    );
    assert_eq!(
        g.entities[f as usize].versions.len(),
        2,
        "the second write starts a new version of /f"
    );

    // /f as first written: /in, but not /secret (read later).
    for at in [t[2], t[3], t[4], t[5]] {
        let tree = why(
            &g,
            f,
            &LineageOptions {
                at: Some(at),
                ..LineageOptions::default()
            },
        );
        let n = names(&g, &tree);
        assert!(n.contains("/in"), "at {at}: {n:?}");
        assert!(
            !n.contains("/secret"),
            "why /f at {at} must not include the later read of /secret: {n:?}"
        );
        assert_eq!(tree.root().node, g.entities[f as usize].versions[0]);
        assert_time_respecting(&g, &tree);
    }
    // /f at the end: both; /f v0 appears only as the folded earlier version.
    let tree = why(&g, f, &LineageOptions::default());
    let n = names(&g, &tree);
    assert!(n.contains("/in") && n.contains("/secret"), "{n:?}");
    assert_eq!(tree.root().folded, vec![g.entities[f as usize].versions[0]]);
    assert_time_respecting(&g, &tree);
    // /g was written before /secret was read: never derived from it.
    let tree = why(&g, ent(&g, "/g"), &LineageOptions::default());
    let n = names(&g, &tree);
    assert!(n.contains("/in") && !n.contains("/secret"), "{n:?}");

    // Forward: /secret affects the second /f only; /in reaches /g and both /f.
    let tree = impact(&g, ent(&g, "/secret"), &LineageOptions::default());
    let f1 = g.entities[f as usize].versions[1];
    assert!(tree.nodes.iter().any(|tn| tn.node == f1));
    assert!(!tree
        .nodes
        .iter()
        .any(|tn| g.nodes[tn.node as usize].entity == ent(&g, "/g")));
    assert_time_respecting(&g, &tree);
    // Impact of /in after the second write: nothing it flowed into later.
    let tree = impact(
        &g,
        ent(&g, "/in"),
        &LineageOptions {
            at: Some(t[6] + 1),
            ..LineageOptions::default()
        },
    );
    assert_eq!(tree.nodes.len(), 1, "{}", text(&g, &tree));

    // Paths: /in -> /g exists; /secret -> /g does not (it would go back in time).
    let ps = paths(&g, ent(&g, "/in"), ent(&g, "/g"), 3).unwrap();
    assert_eq!(ps.paths.len(), 1);
    assert_eq!(ps.paths[0].hops(&g), 2);
    match paths(&g, ent(&g, "/secret"), ent(&g, "/g"), 3) {
        Err(e @ QueryError::NoPath { .. }) => {
            assert_eq!(e.exit_code(), 1);
            assert!(e.to_string().contains("no causal path"), "{e}");
        }
        other => panic!("expected NoPath, got {other:?}"),
    }
    // The second /f is reachable from /secret, in 2 hops.
    let ps = paths(&g, ent(&g, "/secret"), f, 3).unwrap();
    assert_eq!(ps.paths[0].hops(&g), 2);
    let _ = t[0];
}

#[test]
fn at_before_the_target_existed_says_so() {
    let (r, t) = read_after_write();
    let g = r.graph();
    let tree = why(
        &g,
        ent(&g, "/g"),
        &LineageOptions {
            at: Some(t[1]),
            ..LineageOptions::default()
        },
    );
    assert_eq!(tree.nodes.len(), 1);
    assert!(
        tree.notes.iter().any(|n| n.contains("did not exist yet")),
        "{:?}",
        tree.notes
    );
}

#[test]
fn depth_limits_the_tree_and_says_what_was_left_out() {
    let g = pipeline().graph();
    let out = ent(&g, "/w/out.tgz");
    let full = why(&g, out, &LineageOptions::default());
    let max = full.nodes.iter().map(|n| n.depth).max().unwrap();
    assert_eq!(max, 4, "out.tgz <- gzip <- pipe <- tar <- /d/a");
    for d in 0..=4 {
        let t = why(
            &g,
            out,
            &LineageOptions {
                depth: Some(d),
                ..LineageOptions::default()
            },
        );
        assert!(t.nodes.iter().all(|n| n.depth <= d), "depth {d}");
        assert_eq!(
            t.nodes.iter().any(|n| n.more > 0),
            d < 4,
            "depth {d}: unexplored edges are counted"
        );
        let s = text(&g, &t);
        assert_eq!(s.contains("more (beyond --depth)"), d < 4, "{s}");
        assert_eq!(names(&g, &t).contains("/d/a"), d >= 4);
        assert_eq!(names(&g, &t).contains("pipe:[77]"), d >= 2);
    }
    // The node cap is reported as such.
    let t = why(
        &g,
        out,
        &LineageOptions {
            max_nodes: 3,
            ..LineageOptions::default()
        },
    );
    assert!(t.capped && t.nodes.len() == 3);
    assert!(text(&g, &t).contains("node cap reached"));
}

#[test]
fn out_of_order_timestamps_do_not_let_lineage_run_backwards() {
    // Built directly on the store: p writes /f at t=5, but an event stamped
    // t=10 (a racing thread recorded late) says p read /x. Structurally /x
    // flows into p before the write; in time it came after.
    let mut g = Graph::new();
    let p = g.declare(Uuid::from_u128(1), EntityKind::Process, 0, "p");
    let x = g.declare(Uuid::from_u128(2), EntityKind::File, 0, "/x");
    let y = g.declare(Uuid::from_u128(3), EntityKind::File, 0, "/y");
    let f = g.declare(Uuid::from_u128(4), EntityKind::File, 0, "/f");
    let flow = |kind, ts| Flow {
        kind,
        ts_ns: ts,
        bytes: 1,
        offset: None,
        call: "read",
    };
    g.flow(y, p, flow(EdgeKind::Read, 3));
    g.flow(x, p, flow(EdgeKind::Read, 10));
    g.flow(p, f, flow(EdgeKind::Write, 5));
    let t = why(&g, f, &LineageOptions::default());
    let reached: HashSet<EntityId> = t
        .nodes
        .iter()
        .map(|tn| g.nodes[tn.node as usize].entity)
        .collect();
    assert!(reached.contains(&y));
    assert!(
        !reached.contains(&x),
        "a read stamped after the write is not its cause"
    );
    let t = impact(&g, x, &LineageOptions::default());
    assert!(
        t.nodes
            .iter()
            .all(|tn| g.nodes[tn.node as usize].entity != f),
        "the write at 5 cannot carry data read at 10"
    );
    assert!(
        matches!(paths(&g, x, f, 3), Err(QueryError::NoPath { .. })),
        "no path back in time"
    );
    assert_eq!(paths(&g, y, f, 3).unwrap().paths.len(), 1);
}

#[test]
fn json_tree_is_written_for_deep_chains_without_recursion() {
    // A process alternately reading and writing one file: a deep chain.
    let mut r = Rec::new();
    r.observed(30, "/bin/loop", &["loop"]);
    for _ in 0..3000 {
        r.read(30, file("/acc"), 1);
        r.write(30, file("/acc"), 1);
    }
    let g = r.graph();
    let t = why(&g, ent(&g, "/acc"), &LineageOptions::default());
    let v: serde_json::Value = serde_json::from_str(&t.to_json_string(&g)).expect("valid JSON");
    assert_eq!(v["target"]["label"], "/acc");
    assert!(!text(&g, &t).is_empty());
}

#[test]
fn path_lists_the_hops_with_their_times() {
    let g = pipeline().graph();
    let p = paths(&g, ent(&g, "/d/a"), ent(&g, "/w/out.tgz"), 3).unwrap();
    assert!(!p.paths.is_empty());
    let first = &p.paths[0];
    assert_eq!(first.hops(&g), 4);
    let labels: Vec<&str> = first
        .nodes(&g)
        .map(|n| g.nodes[n as usize].label.as_ref())
        .collect();
    assert_eq!(labels, ["/d/a", "tar", "pipe:[77]", "gzip", "/w/out.tgz"]);
    let times: Vec<u64> = first
        .visible(&g)
        .map(|e| g.edges[e as usize].ts_ns)
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");

    let mut out = Vec::new();
    write_paths_text(
        &g,
        &p,
        &TextOptions {
            origin_ns: origin_ns(&g),
            ..TextOptions::default()
        },
        &mut out,
    )
    .unwrap();
    let s = String::from_utf8(out).unwrap();
    assert!(s.starts_with("path 1 (4 hops):"), "{s}");
    assert!(s.contains("read 512 B") && s.contains("/w/out.tgz"), "{s}");

    let mut out = Vec::new();
    write_paths_json(&g, &p, &mut out).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["from"]["label"], "/d/a");
    assert_eq!(v["to"]["label"], "/w/out.tgz");
    let steps = v["paths"][0]["steps"].as_array().unwrap();
    assert_eq!(v["paths"][0]["hops"], 4);
    assert_eq!(steps.len(), 5);
    assert!(steps[0]["via"].is_null());
    assert_eq!(steps[1]["via"]["kind"], "read");
    assert_eq!(steps[4]["node"]["label"], "/w/out.tgz");

    // Backwards there is no path; from an entity to itself is a usage error.
    assert!(matches!(
        paths(&g, ent(&g, "/w/out.tgz"), ent(&g, "/d/a"), 3),
        Err(QueryError::NoPath { .. })
    ));
    let a = ent(&g, "/d/a");
    assert!(matches!(paths(&g, a, a, 3), Err(QueryError::Invalid(_))));
}

#[test]
fn several_paths_are_distinct() {
    // /src reaches /dst directly through p and through a copy /mid made by q.
    let mut r = Rec::new();
    r.observed(40, "/bin/p", &["p"]);
    r.observed(41, "/bin/q", &["q"]);
    r.read(41, file("/src"), 1);
    r.write(41, file("/mid"), 1);
    r.read(40, file("/src"), 1);
    r.read(40, file("/mid"), 1);
    r.write(40, file("/dst"), 2);
    let g = r.graph();
    let p = paths(&g, ent(&g, "/src"), ent(&g, "/dst"), 3).unwrap();
    assert_eq!(p.paths.len(), 2, "{:?}", p.paths);
    assert_eq!(p.paths[0].hops(&g), 2);
    assert_eq!(p.paths[1].hops(&g), 4);
    let p = paths(&g, ent(&g, "/src"), ent(&g, "/dst"), 1).unwrap();
    assert_eq!(p.paths.len(), 1);
}

#[test]
fn lineage_crosses_a_local_tcp_connection_and_sockets_are_targets() {
    use std::net::{IpAddr, Ipv4Addr};
    use tomo_event::*;
    let a = |port| SockAddr::Inet {
        ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        port,
    };
    let sock = |ino| ObjRef {
        kind: ObjKind::Socket,
        dev: 9,
        ino,
        path: None,
    };
    let info = |l, p| SockInfo {
        domain: 2,
        sock_type: 1,
        protocol: 6,
        local: Some(a(l)),
        peer: Some(a(p)),
    };
    let mut r = Rec::new();
    r.observed(70, "/usr/bin/server", &["server"]);
    r.observed(71, "/usr/bin/curl", &["curl"]);
    r.push(
        70,
        Op::Accept {
            call: Call::accept4,
            fd: 3,
            new_fd: 4,
            listen_obj: sock(1),
            obj: sock(2),
            sock: info(80, 5555),
        },
    );
    r.push(
        71,
        Op::Connect {
            call: Call::connect,
            fd: 3,
            obj: sock(3),
            sock: info(5555, 80),
        },
    );
    r.read(70, file("/srv/page"), 100);
    r.push_as(
        proc_ref(70),
        Op::Io {
            call: Call::sendto,
            dir: Dir::Write,
            fd: 4,
            obj: sock(2),
            offset: Some(0),
            count: 100,
            sock: None,
        },
        100,
    );
    r.push_as(
        proc_ref(71),
        Op::Io {
            call: Call::recvfrom,
            dir: Dir::Read,
            fd: 3,
            obj: sock(3),
            offset: Some(0),
            count: 100,
            sock: None,
        },
        100,
    );
    r.write(71, file("/tmp/page"), 100);
    let g = r.graph();
    let t = why(&g, ent(&g, "/tmp/page"), &LineageOptions::default());
    let n = names(&g, &t);
    for want in ["curl", "socket:[3]", "socket:[2]", "server", "/srv/page"] {
        assert!(n.contains(want), "why /tmp/page lacks {want}: {n:?}");
    }
    assert!(t.nodes.iter().any(|tn| tn
        .via
        .is_some_and(|e| g.edges[e as usize].kind == EdgeKind::Flow)));
    assert_time_respecting(&g, &t);
    let s = text(&g, &t);
    assert!(s.contains("flow 100 B  socket:[2]"), "{s}");
    // The server's socket as a target: its impact reaches the client's file.
    let t = impact(&g, ent(&g, "socket:[2]"), &LineageOptions::default());
    assert!(names(&g, &t).contains("/tmp/page"));
    let p = paths(&g, ent(&g, "/srv/page"), ent(&g, "/tmp/page"), 1).unwrap();
    assert_eq!(
        p.paths[0].hops(&g),
        5,
        "page -> server -> sock 2 -> sock 3 -> curl -> page"
    );
}
