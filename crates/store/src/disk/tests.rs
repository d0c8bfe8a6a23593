use super::*;
use crate::{ExecInfo, Flow, GraphRead};
use uuid::Uuid;

fn sample() -> Graph {
    let mut g = Graph::new();
    let host = [7u8; 16];
    let boot = [9u8; 16];
    let pu = crate::ident::process_uuid(&host, &boot, 42, 420, 5);
    let p = g.declare(pu, EntityKind::Process, 5, "sh");
    g.process_mut(p).unwrap().execs.push(ExecInfo {
        exe: "/bin/sh".into(),
        argv: vec!["sh".into(), "-c".into()],
        ts_ns: 6,
    });
    g.index_pid(p, 42);
    g.process_mut(p).unwrap().pid = 42;
    g.process_mut(p).unwrap().start_ticks = 420;
    for i in 0..20u64 {
        // Half of the files have a recomputable UUID.
        let u = if i % 2 == 0 {
            crate::ident::object_uuid(&host, None, 8, 100 + i, 0)
        } else {
            Uuid::from_u128(100 + i as u128)
        };
        let f = g.declare(u, EntityKind::File, 7, "/f");
        g.entities[f as usize].dev_ino = Some((8, 100 + i));
        g.name(f, &format!("/f/{i}"));
        let fl = |kind, ts| Flow {
            kind,
            ts_ns: ts,
            bytes: 3,
            offset: Some(1),
            call: "read",
        };
        g.flow(f, p, fl(EdgeKind::Read, 10 + i));
        g.flow(p, f, fl(EdgeKind::Write, 11 + i));
    }
    g.new_version(p, 40, Some("ls".into()), EdgeKind::Exec, "execve");
    g
}

fn extra() -> Extra {
    Extra {
        uuid_roots: vec![([7u8; 16], [9u8; 16])],
        ..Extra::default()
    }
}

/// Everything a graph reader can say about every id, as text.
fn dump<G: GraphRead + ?Sized>(g: &G) -> String {
    let mut s = String::new();
    for e in 0..g.entity_count() as u32 {
        s += &format!("{:?}\n", g.entity(e));
    }
    for n in 0..g.node_count() as u32 {
        s += &format!("{:?} in {:?}\n", g.node(n), g.in_edges(n));
        s += &format!("out {:?}\n", g.out_edges(n));
    }
    for e in 0..g.edge_count() as u32 {
        s += &format!("{:?}\n", g.edge(e));
    }
    s += &format!("{}\n", g.origin_ns());
    s
}

#[test]
fn round_trip_in_memory_and_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("s.idx");
    let g = sample();
    let sizes = write(&p, &g, &extra()).unwrap();
    let o = open(&p).unwrap();
    assert_eq!(o.sizes, sizes);
    assert_eq!(dump(&o.graph), dump(&g));
    assert_eq!(o.graph.by_pid(42), g.by_pid(42));
    assert_eq!(o.extra.uuid_roots, extra().uuid_roots);
    let l = Lazy::open(&p, LazyOptions::default()).unwrap();
    assert_eq!(dump(&l), dump(&g));
    assert_eq!(l.by_pid(42), g.by_pid(42));
    assert_eq!(l.by_name("/f/3"), g.by_name("/f/3"));
    assert!(l.by_name("/nope").is_empty());
    let u = g.entities[4].uuid;
    assert_eq!(GraphRead::by_uuid(&l, &u), Some(4));
    assert_eq!(
        l.uuid_prefix(&u.to_string()[..8]),
        g.uuid_prefix(&u.to_string()[..8])
    );
    assert_eq!(l.processes_labelled("ls"), vec![0]);
    assert_eq!(l.processes_labelled("sh"), vec![0]);
    assert_eq!(l.process_labels(), g.process_labels());
    assert_eq!(l.process_pids(), vec![42]);
    let mut a = Vec::new();
    l.for_each_name(&mut |n| a.push(n.to_string()));
    let mut b = Vec::new();
    g.for_each_name(&mut |n| b.push(n.to_string()));
    a.sort();
    b.sort();
    assert_eq!(a, b);
    assert!(l.error().is_none());
}

#[test]
fn uuids_are_recomputed_not_stored() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("s.idx");
    let g = sample();
    let with = write(&p, &g, &extra()).unwrap();
    let without = write(&p, &g, &Extra::default()).unwrap();
    let ents = |s: &Sizes| s.sections.iter().find(|x| x.0 == "ENTS").unwrap().2;
    // 11 of the 21 entities recomputed: 16 bytes each not stored.
    assert_eq!(ents(&without) - ents(&with), 11 * 16 - 10);
}

/// Raw chunk payloads of a valid store, and garbage written into them with
/// valid checksums: the decoders must reject or accept, never panic or
/// allocate wildly, in memory or in place.
#[test]
fn garbage_inside_checksummed_chunks_never_panics() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("s.idx");
    let g = sample();
    write(&p, &g, &extra()).unwrap();
    let bytes = std::fs::read(&p).unwrap();
    let secs = sections(&p, &bytes[..]).unwrap();
    // (section, raw chunks with items and keys)
    let raws: Vec<Vec<(Vec<u8>, u32, u64)>> = secs
        .iter()
        .map(|s| {
            (0..s.chunks.len())
                .map(|i| {
                    let c = &s.chunks[i];
                    (inflate(&p, &bytes[..], s, i).unwrap(), c.items, c.key)
                })
                .collect()
        })
        .collect();
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for round in 0..2000 {
        let mut r = raws.clone();
        let s = (rnd() % 5) as usize;
        let c = (rnd() as usize) % r[s].len();
        let chunk = &mut r[s][c].0;
        if chunk.is_empty() {
            continue;
        }
        for _ in 0..1 + round % 4 {
            let i = (rnd() as usize) % chunk.len();
            match rnd() % 3 {
                0 => chunk[i] = rnd() as u8,
                1 => chunk[i] = 0xff,
                _ => chunk.truncate(i),
            }
            if chunk.is_empty() {
                break;
            }
        }
        let outs: Vec<SecOut> = r
            .iter()
            .zip(TAGS)
            .map(|(cs, tag)| {
                let mut o = SecOut::new(tag);
                for (raw, items, key) in cs {
                    o.push(raw, *items, *key).unwrap();
                }
                o
            })
            .collect();
        write_file(&p, &outs, false).unwrap();
        if let Err(e) = open(&p) {
            assert!(e.to_string().contains("s.idx"), "{e}");
        }
        if let Ok(l) = Lazy::open(&p, LazyOptions::default()) {
            let _ = dump(&l);
            let _ = l.by_name("/f/3");
            let _ = l.processes_labelled("sh");
            let _ = l.process_labels();
            if let Some(e) = l.error() {
                assert!(e.contains("s.idx"), "{e}");
            }
        }
    }
}

/// A version with far more incoming edges than a chunk's edge budget (a
/// daemon reading from every client before writing): the chunk holding
/// it is cut right after it, its neighbours go to other chunks, and both
/// readers answer as the graph does. (At 100 M synthetic events, such
/// versions once made one chunk too large for the reader to accept.)
#[test]
fn a_version_with_many_incoming_edges_gets_a_chunk_of_its_own() {
    let mut g = Graph::new();
    let d = g.declare(Uuid::from_u128(1), EntityKind::Process, 1, "daemon");
    let mut files = Vec::new();
    for i in 0..10u64 {
        files.push(g.declare(Uuid::from_u128(10 + i as u128), EntityKind::File, 2, "/f"));
    }
    let read = |ts| Flow {
        kind: EdgeKind::Read,
        ts_ns: ts,
        bytes: 1,
        offset: None,
        call: "recv",
    };
    // 300 clients, each a socket the daemon reads from: 300 edges into
    // the daemon's first version, which never writes.
    for i in 0..300u64 {
        let s = g.declare(
            Uuid::from_u128(1000 + i as u128),
            EntityKind::Socket,
            3 + i,
            "sock",
        );
        g.flow(s, d, read(3 + i));
    }
    for (i, &f) in files.iter().enumerate() {
        g.flow(f, d, read(400 + i as u64));
    }
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("s.idx");
    write_with(&p, &g, &Extra::default(), 7).unwrap();
    let o = open(&p).unwrap();
    assert_eq!(dump(&o.graph), dump(&g));
    let l = Lazy::open(&p, LazyOptions::default()).unwrap();
    assert_eq!(dump(&l), dump(&g));
    assert!(l.error().is_none());
    // 311 versions: by count alone 45 chunks of 7; the daemon's version
    // (node 0, with 310 in-edges, over the budget of 28) ends the first
    // chunk by itself, so node 1 is in the next chunk, with node 2.
    let l = Lazy::open(&p, LazyOptions::default()).unwrap();
    assert_eq!(l.in_edges(0).len(), 310);
    let after0 = l.chunks_read();
    assert_eq!(l.in_edges(1).len(), 0);
    assert_eq!(
        l.chunks_read(),
        after0 + 1,
        "node 1 is not in node 0's chunk"
    );
    let _ = l.in_edges(2);
    assert_eq!(l.chunks_read(), after0 + 1, "nodes 1 and 2 share a chunk");
}
