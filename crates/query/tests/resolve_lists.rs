//! Target resolution (and its errors) and the listings `ps`, `files`,
//! `timeline`, on graphs built from hand-written events.

mod common;

use common::*;
use tomo_event::*;
use tomo_query::*;
use tomo_store::Graph;

fn res(g: &Graph, t: &str) -> Result<Resolved, QueryError> {
    resolve(g, t, &ResolveOptions::default())
}

fn label(g: &Graph, r: &Resolved) -> String {
    g.nodes[g.entities[r.entity as usize].current() as usize]
        .label
        .to_string()
}

#[test]
fn targets_resolve_by_path_pid_uuid_suffix_and_object_name() {
    let mut r = pipeline();
    let sock = ObjRef {
        kind: ObjKind::Socket,
        dev: 9,
        ino: 4242,
        path: None,
    };
    r.write(12, sock, 3);
    let g = r.graph();
    assert_eq!(label(&g, &res(&g, "/w/out.tgz").unwrap()), "/w/out.tgz");
    let by_suffix = res(&g, "out.tgz").unwrap();
    assert_eq!(
        (label(&g, &by_suffix).as_str(), by_suffix.matched),
        ("/w/out.tgz", "suffix")
    );
    let cwd = ResolveOptions {
        cwd: Some("/w/sub".into()),
        ..ResolveOptions::default()
    };
    assert_eq!(resolve(&g, "../out.tgz", &cwd).unwrap().matched, "path");
    assert_eq!(label(&g, &res(&g, "12").unwrap()), "gzip");
    assert_eq!(label(&g, &res(&g, "pipe:[77]").unwrap()), "pipe:[77]");
    assert_eq!(
        label(&g, &res(&g, "socket:[4242]").unwrap()),
        "socket:[4242]"
    );
    let gzip = res(&g, "12").unwrap().entity;
    let uuid = g.entities[gzip as usize].uuid.to_string();
    assert_eq!(res(&g, &uuid).unwrap().entity, gzip);
    assert_eq!(
        res(&g, &uuid[..13]).unwrap().entity,
        gzip,
        "a UUID prefix is enough"
    );
}

#[test]
fn unknown_targets_suggest_near_matches() {
    let g = pipeline().graph();
    let e = res(&g, "/w/out.tg").unwrap_err();
    assert_eq!(e.exit_code(), 1);
    match &e {
        QueryError::NotFound { suggestions, .. } => assert_eq!(suggestions[0], "/w/out.tgz"),
        other => panic!("{other:?}"),
    }
    assert!(e.to_string().contains("closest known: /w/out.tgz"), "{e}");
    let e = res(&g, "99").unwrap_err();
    assert!(
        e.to_string().contains("pid 12"),
        "unknown pids list known ones: {e}"
    );
    let e = res(&g, "gzpi").unwrap_err();
    assert!(e.to_string().contains("gzip"), "{e}");
    assert!(matches!(res(&g, "  "), Err(QueryError::Invalid(_))));
}

#[test]
fn ambiguous_targets_explain_how_to_choose() {
    // "gzip" is both a process and the suffix of /usr/bin/gzip.
    let g = pipeline().graph();
    let e = res(&g, "gzip").unwrap_err();
    let s = e.to_string();
    assert!(matches!(e, QueryError::Ambiguous { .. }));
    assert!(s.contains("give a full path, a pid or a UUID"), "{s}");
    assert!(
        s.contains("/usr/bin/gzip") && s.contains("gzip[pid 12]"),
        "{s}"
    );

    // A reused pid: two processes, told apart by UUID.
    let mut r = Rec::new();
    r.push_as(
        ProcRef {
            pid: 50,
            tid: 50,
            ppid: 1,
            start_ticks: 1,
        },
        io(Dir::Write, file("/a"), 1),
        1,
    );
    r.push_as(
        ProcRef {
            pid: 50,
            tid: 50,
            ppid: 1,
            start_ticks: 2,
        },
        io(Dir::Write, file("/b"), 1),
        1,
    );
    let g = r.graph();
    let e = res(&g, "50").unwrap_err();
    match &e {
        QueryError::Ambiguous {
            candidates, hint, ..
        } => {
            assert_eq!(candidates.len(), 2);
            assert!(hint.contains("give a UUID"), "{hint}");
            let uuid = candidates[1].split_whitespace().next().unwrap();
            assert_eq!(res(&g, uuid).unwrap().entity, g.by_pid(50)[1]);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_path_reused_by_a_new_file_resolves_by_time() {
    let mut r = Rec::new();
    r.observed(60, "/bin/x", &["x"]);
    let old = ObjRef {
        kind: ObjKind::File,
        dev: 8,
        ino: 1,
        path: Some("/r".into()),
    };
    let new = ObjRef {
        kind: ObjKind::File,
        dev: 8,
        ino: 2,
        path: Some("/r".into()),
    };
    let t1 = r.write(60, old.clone(), 1);
    r.push(
        60,
        Op::Unlink {
            call: Call::unlink,
            path: "/r".into(),
            obj: old,
            dir: false,
        },
    );
    let t3 = r.write(60, new, 1);
    let g = r.graph();
    // `why` wants the latest object of that name, `impact` the earliest.
    let latest = resolve(
        &g,
        "/r",
        &ResolveOptions {
            prefer_latest: true,
            ..ResolveOptions::default()
        },
    )
    .unwrap();
    assert_eq!(g.entities[latest.entity as usize].dev_ino, Some((8, 2)));
    assert_eq!(
        g.entities[res(&g, "/r").unwrap().entity as usize].dev_ino,
        Some((8, 1))
    );
    assert!(
        latest
            .notes
            .iter()
            .any(|n| n.contains("2 different objects")),
        "{:?}",
        latest.notes
    );
    let at = |t| {
        resolve(
            &g,
            "/r",
            &ResolveOptions {
                at: Some(t),
                ..ResolveOptions::default()
            },
        )
        .unwrap()
        .entity
    };
    assert_eq!(g.entities[at(t1) as usize].dev_ino, Some((8, 1)));
    assert_eq!(g.entities[at(t3) as usize].dev_ino, Some((8, 2)));
}

#[test]
fn ps_lists_processes_with_their_io() {
    let g = pipeline().graph();
    let rows = ps_rows(&g);
    assert_eq!(rows.iter().map(|r| r.pid).collect::<Vec<_>>(), [10, 11, 12]);
    let tar = &rows[1];
    assert_eq!(tar.parent, Some(rows[0].uuid));
    assert_eq!(tar.exe, Some("/usr/bin/tar"));
    assert_eq!(tar.exit_code, Some(0));
    let reads: Vec<(&str, u64)> = tar.reads.iter().map(|r| (r.path, r.bytes)).collect();
    assert_eq!(reads, [("/d/a", 5), ("/d/b", 7)]);
    assert_eq!(tar.writes[0].path, "pipe:[77]");
    let gzip = &rows[2];
    assert!(gzip
        .maps
        .iter()
        .any(|m| m.path.ends_with("libz.so.1") && m.exec));

    let mut out = Vec::new();
    write_ps_json(&g, &mut out).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let keys = [
        "uuid",
        "pid",
        "ppid",
        "parent",
        "exe",
        "argv",
        "start_ns",
        "end_ns",
        "exit_code",
        "execs",
        "reads",
        "writes",
        "maps",
    ];
    for row in v.as_array().unwrap() {
        for k in keys {
            assert!(row.get(k).is_some(), "ps --json row lacks {k}: {row}");
        }
    }
    assert_eq!(v[2]["writes"][0]["path"], "/w/out.tgz");
    assert_eq!(v[2]["writes"][0]["bytes"], 40);
    assert_eq!(
        v[2]["writes"][0]["calls"], 2,
        "the creating open and the write"
    );
    assert!(v[0]["parent"].is_null());

    let mut out = Vec::new();
    write_ps_text(
        &g,
        &TextOptions {
            origin_ns: origin_ns(&g),
            ..TextOptions::default()
        },
        &mut out,
    )
    .unwrap();
    let s = String::from_utf8(out).unwrap();
    assert!(s.lines().next().unwrap().starts_with("PID"), "{s}");
    assert!(
        s.contains("├─ 11") && s.contains("└─ 12"),
        "tree of processes: {s}"
    );
}

#[test]
fn files_lists_objects_with_readers_and_writers() {
    let g = pipeline().graph();
    let rows = files_rows(&g);
    let out = rows.iter().find(|r| r.path == "/w/out.tgz").unwrap();
    assert_eq!(
        out.writers
            .iter()
            .map(|p| (p.pid, p.bytes))
            .collect::<Vec<_>>(),
        [(12, 40)]
    );
    assert!(out.readers.is_empty());
    let pipe = rows.iter().find(|r| r.path == "pipe:[77]").unwrap();
    assert_eq!(pipe.kind, "pipe");
    assert_eq!((pipe.readers[0].pid, pipe.writers[0].pid), (12, 11));
    let libc = rows.iter().find(|r| r.path.ends_with("libc.so.6")).unwrap();
    assert_eq!(libc.loaders.len(), 2);

    let mut buf = Vec::new();
    write_files_json(&g, &mut buf).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&buf).unwrap();
    for row in v.as_array().unwrap() {
        for k in [
            "uuid", "kind", "path", "paths", "readers", "writers", "loaders",
        ] {
            assert!(row.get(k).is_some(), "files --json row lacks {k}: {row}");
        }
    }
    let mut buf = Vec::new();
    write_files_text(&g, &TextOptions::default(), &mut buf).unwrap();
    let s = String::from_utf8(buf).unwrap();
    let line = s.lines().find(|l| l.starts_with("/w/out.tgz")).unwrap();
    assert!(line.contains("40 B") && line.contains("gzip[12]"), "{line}");
}

#[test]
fn timeline_is_in_time_order_and_windowed() {
    let r = pipeline();
    let g = r.graph();
    let all = timeline_edges(&g, None, None);
    let ts: Vec<u64> = all.iter().map(|&e| g.edges[e as usize].ts_ns).collect();
    assert!(ts.windows(2).all(|w| w[0] <= w[1]));
    assert_eq!(all.len(), 13);
    // [from, to): the tar reads at T0+9 and T0+10 steps.
    let (from, to) = (T0 + 9 * STEP, T0 + 11 * STEP);
    let win = timeline_edges(&g, Some(from), Some(to));
    assert_eq!(win.len(), 2);
    assert!(win
        .iter()
        .all(|&e| (from..to).contains(&g.edges[e as usize].ts_ns)));

    let mut buf = Vec::new();
    write_timeline_json(&g, &win, &mut buf).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&buf).unwrap();
    assert_eq!(v[0]["kind"], "read");
    assert_eq!(v[0]["src"]["label"], "/d/a");
    assert_eq!(v[0]["dst"]["pid"], 11);
    assert_eq!(v[1]["bytes"], 7);
    let mut buf = Vec::new();
    write_timeline_text(
        &g,
        &win,
        &TextOptions {
            origin_ns: origin_ns(&g),
            ..TextOptions::default()
        },
        &mut buf,
    )
    .unwrap();
    let s = String::from_utf8(buf).unwrap();
    assert_eq!(s.lines().count(), 3, "{s}");
    assert!(
        s.contains("+0.090ms") && s.contains("tar[11]") && s.contains("/d/a  5 B"),
        "{s}"
    );
}
