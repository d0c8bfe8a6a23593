//! The persistent store answers exactly like a replay of the log: same
//! graph, same listings, same lineage, including after incremental updates;
//! a damaged store is an error naming the file and offset, never a panic.

mod common;

use common::*;
use std::path::Path;
use tomo_event::*;
use tomo_ingest::index::{self, BadStore};
use tomo_log::{RecordingMeta, Writer, WriterOptions};
use tomo_query::{LineageOptions, DEFAULT_MAX_NODES};
use tomo_store::{disk, Graph, GraphRead};

/// Every answer the CLI can give, as one string.
fn dump(g: &Graph) -> String {
    let mut w: Vec<u8> = Vec::new();
    tomo_query::write_graph_json(g, &mut w).unwrap();
    tomo_query::write_ps_json(g, &mut w).unwrap();
    tomo_query::write_files_json(g, &mut w).unwrap();
    let edges = tomo_query::timeline_edges(g, None, None);
    tomo_query::write_timeline_json(g, &edges, &mut w).unwrap();
    let opts = LineageOptions {
        depth: None,
        at: None,
        max_nodes: DEFAULT_MAX_NODES / 10,
    };
    // Lineage of (a spread of at most 40) entities, paths to a few.
    let n = g.entities.len() as u32;
    let step = (n / 40).max(1);
    for e in (0..n).step_by(step as usize) {
        tomo_query::why(g, e, &opts).write_json(g, &mut w).unwrap();
        tomo_query::impact(g, e, &opts)
            .write_json(g, &mut w)
            .unwrap();
        if e % (step * 4) == 0 {
            if let Ok(p) = tomo_query::paths(g, 0, e, 2) {
                tomo_query::write_paths_json(g, &p, &mut w).unwrap();
            }
        }
    }
    for name in ["/w/out.tgz", "out.tgz", "/d/a", "pipe:[77]", "11", "/f/3"] {
        let r = tomo_query::resolve(g, name, &tomo_query::ResolveOptions::default());
        w.extend_from_slice(format!("{:?}", r.map(|r| (r.entity, r.notes))).as_bytes());
    }
    String::from_utf8(w).unwrap()
}

fn write_log(path: &Path, evs: &[Event], block_bytes: usize) -> Writer {
    let opts = WriterOptions {
        block_bytes,
        ..WriterOptions::default()
    };
    let mut w = Writer::create(path, RecordingMeta::default(), opts).unwrap();
    for ev in evs {
        w.append(ev).unwrap();
    }
    w
}

/// A deterministic pseudo-random workload: processes spawn, exec, read and
/// write shared files and pipes, rename, exit.
fn random_workload(n: usize, seed: u64) -> Rec {
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
        match rnd(10) {
            0 => {
                r.spawn(p, next_pid);
                r.exec(next_pid, &format!("/bin/p{}", rnd(5)), &["p", "x"]);
                live.push(next_pid);
                next_pid += 1;
            }
            1 if live.len() > 1 && p != 1 => {
                r.exit(p, rnd(3) as i32);
                live.retain(|&q| q != p);
            }
            2 => {
                r.load(p, "/lib/libc.so.6");
            }
            3 | 4 => {
                r.read(p, file(&format!("/f/{}", rnd(20))), 1 + rnd(100));
            }
            5 | 6 => {
                r.write(p, file(&format!("/f/{}", rnd(20))), 1 + rnd(100));
            }
            7 => {
                r.write(p, pipe(500 + rnd(3)), 10);
            }
            8 => {
                r.read(p, pipe(500 + rnd(3)), 10);
            }
            _ => {
                let k = rnd(20);
                r.push(
                    p,
                    Op::Rename {
                        call: Call::rename,
                        old_path: format!("/f/{k}"),
                        new_path: format!("/f/{}", rnd(20)),
                        obj: file(&format!("/f/{k}")),
                        replaced: None,
                    },
                );
            }
        }
    }
    r
}

fn scenarios() -> Vec<(&'static str, Rec)> {
    vec![
        ("pipeline", pipeline()),
        ("random-300", random_workload(300, 7)),
        ("random-1500", random_workload(1500, 99)),
    ]
}

#[test]
fn store_answers_equal_replay_answers() {
    let dir = tempfile::tempdir().unwrap();
    for (name, rec) in scenarios() {
        let log = dir.path().join(format!("{name}.tomo"));
        write_log(&log, &rec.evs, 4096).finish().unwrap();
        let replay = tomo_ingest::build(rec.evs.iter());
        let idx = index::default_path(&log);
        let (g, rep) = index::update(&log, &idx, BadStore::Fail, &mut |_| {}).unwrap();
        assert_eq!(rep.events_added, rec.evs.len() as u64, "{name}");
        assert!(rep.written.is_some());
        let opened = disk::open(&idx).unwrap();
        // Every UUID is recomputed from the roots, none stored: 16 bytes
        // per entity less than a store written without roots (which costs
        // a recipe byte, and a generation byte per object, back).
        let raw_ents = |s: &disk::Sizes| s.sections.iter().find(|x| x.0 == "ENTS").unwrap().2;
        let other = dir.path().join("no-roots.idx");
        let no_roots = disk::Extra {
            uuid_roots: Vec::new(),
            ..opened.extra.clone()
        };
        let without = disk::write(&other, &opened.graph, &no_roots).unwrap();
        let n = opened.graph.entities.len() as u64;
        assert!(
            raw_ents(&without) >= raw_ents(&opened.sizes) + 14 * n,
            "{name}: UUIDs not recomputed ({} vs {} bytes for {n} entities)",
            raw_ents(&without),
            raw_ents(&opened.sizes)
        );
        let opened = opened.graph;
        let want = dump(&replay);
        assert_eq!(dump(&g), want, "{name}: graph returned by the update");
        assert_eq!(dump(&opened), want, "{name}: graph opened from the store");
        assert!(opened.is_acyclic());
        // Up to date: nothing read, nothing written.
        let (g2, rep) = index::update(&log, &idx, BadStore::Fail, &mut |_| {}).unwrap();
        assert_eq!(rep.events_added, 0);
        assert!(rep.written.is_none());
        assert_eq!(dump(&g2), want, "{name}: reopened");
    }
}

/// `why` and target resolution on any graph reader, as one string: what
/// `tomo why` prints, in JSON and as text, for a spread of entities and
/// names, at several depths and times.
fn why_dump<G: tomo_store::GraphRead + ?Sized>(g: &G, names: &[&str]) -> String {
    let mut w: Vec<u8> = Vec::new();
    let n = g.entity_count() as u32;
    let origin = tomo_query::origin_ns(g);
    let topts = tomo_query::TextOptions {
        origin_ns: origin,
        uuids: true,
        all: false,
    };
    let step = (n / 40).max(1);
    for e in (0..n).step_by(step as usize) {
        for (depth, at) in [(None, None), (Some(2), Some(origin + 40 * STEP))] {
            let opts = LineageOptions {
                depth,
                at,
                max_nodes: 500,
            };
            let t = tomo_query::why(g, e, &opts);
            t.write_json(g, &mut w).unwrap();
            t.write_text(g, &topts, &mut w).unwrap();
        }
    }
    for name in names {
        let ropts = tomo_query::ResolveOptions {
            cwd: Some("/w".into()),
            at: None,
            prefer_latest: true,
        };
        let r = tomo_query::resolve(g, name, &ropts);
        w.extend_from_slice(
            format!("{name}: {:?}\n", r.map(|r| (r.entity, r.matched, r.notes))).as_bytes(),
        );
    }
    String::from_utf8(w).unwrap()
}

#[test]
fn the_store_read_in_place_answers_why_like_the_graph() {
    let dir = tempfile::tempdir().unwrap();
    for (name, rec) in scenarios() {
        let log = dir.path().join(format!("{name}.tomo"));
        write_log(&log, &rec.evs, 4096).finish().unwrap();
        let idx = index::default_path(&log);
        index::update(&log, &idx, BadStore::Fail, &mut |_| {}).unwrap();
        assert!(index::is_current(&log, &idx).unwrap());
        let replay = tomo_ingest::build(rec.evs.iter());
        let mut names: Vec<String> = Vec::new();
        replay.for_each_name(&mut |n| names.push(n.to_string()));
        names.sort();
        names.truncate(30);
        let mut names: Vec<&str> = names.iter().map(|s| s.as_str()).collect();
        // Suffixes, process names, pids, UUIDs and prefixes, misses.
        let u = replay.entities[1].uuid.to_string();
        names.extend([
            "out.tgz",
            "gzip",
            "p1",
            "sh",
            "11",
            "99999",
            "nope",
            "f/3",
            &u,
            &u[..8],
        ]);
        let want = why_dump(&replay, &names);
        let (g, _) = index::update(&log, &idx, BadStore::Fail, &mut |_| {}).unwrap();
        let extra = disk::open(&idx).unwrap().extra;
        // Chunks of 4096 (one per section here), then of 7 items: every
        // delta restarts at chunk boundaries, in memory and in place.
        for per_chunk in [4096, 7] {
            disk::write_with(&idx, &g, &extra, per_chunk).unwrap();
            assert_eq!(
                dump(&disk::open(&idx).unwrap().graph),
                dump(&replay),
                "{name}"
            );
            // Small caches: chunks are evicted and decoded again.
            for opts in [
                disk::LazyOptions::default(),
                disk::LazyOptions { cache_bytes: 0 },
            ] {
                let lazy = disk::Lazy::open(&idx, opts).unwrap();
                assert_eq!(why_dump(&lazy, &names), want, "{name} {per_chunk}");
                assert!(lazy.error().is_none(), "{name}: {:?}", lazy.error());
            }
        }
    }
}

#[test]
fn incremental_updates_equal_a_full_replay() {
    let dir = tempfile::tempdir().unwrap();
    let rec = random_workload(1500, 1234);
    let log = dir.path().join("grow.tomo");
    let idx = index::default_path(&log);
    let n = rec.evs.len();
    // A recording that grows while being indexed: index after each part.
    let mut w = write_log(&log, &rec.evs[..n / 3], 2048);
    w.flush().unwrap();
    let (_, r1) = index::update(&log, &idx, BadStore::Fail, &mut |_| {}).unwrap();
    assert_eq!(r1.events_added, (n / 3) as u64);
    for ev in &rec.evs[n / 3..2 * n / 3] {
        w.append(ev).unwrap();
    }
    w.flush().unwrap();
    let (_, r2) = index::update(&log, &idx, BadStore::Fail, &mut |_| {}).unwrap();
    assert_eq!(r2.events_before, (n / 3) as u64);
    assert_eq!(r2.events_added, (2 * n / 3 - n / 3) as u64);
    assert!(r2.rebuilt.is_none());
    for ev in &rec.evs[2 * n / 3..] {
        w.append(ev).unwrap();
    }
    w.finish().unwrap();
    let (g, r3) = index::update(&log, &idx, BadStore::Fail, &mut |_| {}).unwrap();
    assert_eq!(r3.events_before + r3.events_added, n as u64);
    assert!(r3.rebuilt.is_none());
    let replay = tomo_ingest::build(rec.evs.iter());
    assert_eq!(dump(&g), dump(&replay));
    assert_eq!(dump(&disk::open(&idx).unwrap().graph), dump(&replay));
}

#[test]
fn a_replaced_recording_makes_the_store_rebuild() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("r.tomo");
    let idx = index::default_path(&log);
    write_log(&log, &pipeline().evs, 4096).finish().unwrap();
    index::update(&log, &idx, BadStore::Fail, &mut |_| {}).unwrap();
    let other = random_workload(200, 5);
    write_log(&log, &other.evs, 4096).finish().unwrap();
    let (g, rep) = index::update(&log, &idx, BadStore::Fail, &mut |_| {}).unwrap();
    assert!(rep.rebuilt.is_some(), "{rep:?}");
    assert_eq!(dump(&g), dump(&tomo_ingest::build(other.evs.iter())));
}

#[test]
fn damaged_stores_are_errors_with_file_and_offset_never_panics() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("d.tomo");
    let idx = index::default_path(&log);
    let rec = random_workload(500, 3);
    write_log(&log, &rec.evs, 4096).finish().unwrap();
    index::update(&log, &idx, BadStore::Fail, &mut |_| {}).unwrap();
    let good = std::fs::read(&idx).unwrap();
    let bad = dir.path().join("bad.idx");
    // Every byte of the file header and of each section header (no field
    // or padding may escape the checks), and a stride through the bodies.
    let mut offsets: Vec<usize> = (0..32).collect();
    let mut pos = 32;
    for (_, stored, _) in &disk::open(&idx).unwrap().sizes.sections {
        offsets.extend(pos..pos + 32);
        pos += *stored as usize;
    }
    assert_eq!(pos, good.len(), "section sizes add up to the file");
    offsets.extend((0..good.len()).step_by((good.len() / 300).max(1)));
    for i in offsets {
        let mut b = good.clone();
        b[i] ^= 0x5a;
        std::fs::write(&bad, &b).unwrap();
        let e = disk::open(&bad).err().expect("a flipped byte is detected");
        let msg = e.to_string();
        assert!(msg.contains("bad.idx"), "{msg}");
        assert!(
            msg.contains("byte offset")
                || msg.contains("not a Tomo store")
                || msg.contains("unsupported"),
            "{msg}"
        );
        // Truncations too.
        std::fs::write(&bad, &good[..i]).unwrap();
        assert!(disk::open(&bad).is_err());
    }
    // The update refuses (queries then replay) or rebuilds, as asked.
    let mut b = good.clone();
    let n = b.len();
    b[n / 2] ^= 1;
    std::fs::write(&idx, &b).unwrap();
    assert!(index::update(&log, &idx, BadStore::Fail, &mut |_| {}).is_err());
    let (g, rep) = index::update(&log, &idx, BadStore::Rebuild, &mut |_| {}).unwrap();
    assert!(rep.rebuilt.unwrap().contains("byte offset"));
    assert_eq!(dump(&g), dump(&tomo_ingest::build(rec.evs.iter())));
}
