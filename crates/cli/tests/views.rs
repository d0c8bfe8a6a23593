//! The question and export commands end to end: a recording is written from
//! hand-written events with `tomo_log::Writer` (no recorder needed), then the
//! `tomo` binary answers `why`, `impact`, `path`, `ps`, `files`, `timeline`,
//! `export`, `events`, `cut` and `verify`, in text and `--json`.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use tomo_event::*;
use tomo_log::{RecordingMeta, Writer, WriterOptions};

const T0: u64 = 1_700_000_000_000_000_000;
const STEP: u64 = 10_000;

fn proc_ref(pid: u32) -> ProcRef {
    ProcRef {
        pid,
        tid: pid,
        ppid: 1,
        start_ticks: pid as u64 * 7,
    }
}

fn file(path: &str, ino: u64) -> ObjRef {
    ObjRef {
        kind: ObjKind::File,
        dev: 8,
        ino,
        path: Some(path.into()),
    }
}

fn pipe() -> ObjRef {
    ObjRef {
        kind: ObjKind::Pipe,
        dev: 12,
        ino: 77,
        path: None,
    }
}

fn io(dir: Dir, obj: ObjRef, count: u64) -> Op {
    Op::Io {
        call: if dir == Dir::Read {
            Call::read
        } else {
            Call::write
        },
        dir,
        fd: 3,
        obj,
        offset: Some(0),
        count,
        sock: None,
    }
}

fn exec(path: &str, ino: u64, argv: &[&str]) -> Op {
    Op::Exec {
        call: Call::execve,
        exe: file(path, ino),
        argv: argv.iter().map(|s| s.to_string()).collect(),
        env: None,
        cwd: None,
    }
}

/// `sh -c 'tar cf - /d | gzip > /w/out.tgz'`, one event every 10 µs from T0:
/// event i happens at T0 + i*STEP.
fn events() -> Vec<Event> {
    let spawn = |c| Op::Spawn {
        call: Call::clone,
        kind: SpawnKind::Process,
        child: proc_ref(c),
        flags: 0,
    };
    let ops: Vec<(u32, Op, i64)> = vec![
        (
            10,
            Op::Observed {
                exe: Some("/bin/sh".into()),
                argv: vec![
                    "sh".into(),
                    "-c".into(),
                    "tar cf - /d | gzip > /w/out.tgz".into(),
                ],
                cwd: Some("/w".into()),
            },
            0,
        ),
        (
            10,
            Op::Pipe {
                call: Call::pipe2,
                read_fd: 3,
                write_fd: 4,
                obj: pipe(),
            },
            0,
        ),
        (10, spawn(11), 11),
        (10, spawn(12), 12),
        (11, exec("/usr/bin/tar", 100, &["tar", "cf", "-", "/d"]), 0),
        (12, exec("/usr/bin/gzip", 101, &["gzip"]), 0),
        (11, io(Dir::Read, file("/d/a", 1), 5), 5),
        (11, io(Dir::Read, file("/d/b", 2), 7), 7),
        (11, io(Dir::Write, pipe(), 512), 512),
        (12, io(Dir::Read, pipe(), 512), 512),
        (
            12,
            Op::Open {
                call: Call::openat,
                fd: 1,
                obj: file("/w/out.tgz", 3),
                flags: 0o1101,
                mode: 0o644,
                created: true,
            },
            1,
        ),
        (12, io(Dir::Write, file("/w/out.tgz", 3), 40), 40),
        (
            11,
            Op::Exit {
                call: Call::exit_group,
                code: 0,
                signal: None,
            },
            0,
        ),
        (
            12,
            Op::Exit {
                call: Call::exit_group,
                code: 0,
                signal: None,
            },
            0,
        ),
        (
            10,
            Op::Exit {
                call: Call::exit_group,
                code: 0,
                signal: None,
            },
            0,
        ),
    ];
    ops.into_iter()
        .enumerate()
        .map(|(i, (pid, op, ret))| Event {
            host: Id128([1; 16]),
            boot: Id128([2; 16]),
            seq: i as u64,
            ts_ns: T0 + i as u64 * STEP,
            proc: proc_ref(pid),
            cred: Cred {
                uid: 1000,
                gid: 1000,
                euid: 1000,
                egid: 1000,
            },
            op,
            ret,
        })
        .collect()
}

/// Write the recording with small blocks (several blocks, so that damage
/// has a place to be).
fn record(dir: &Path) -> PathBuf {
    let path = dir.join("run.tomo");
    let meta = RecordingMeta {
        host: Id128([1; 16]),
        boot: Id128([2; 16]),
        source: "test".into(),
        command: vec!["sh".into()],
        cut_from: None,
        host_name: None,
    };
    let opts = WriterOptions {
        block_bytes: 256,
        sync_interval: None,
        ..WriterOptions::default()
    };
    let mut w = Writer::create(&path, meta, opts).unwrap();
    for ev in events() {
        w.append(&ev).unwrap();
    }
    w.finish().unwrap();
    path
}

struct Run {
    code: i32,
    out: String,
    err: String,
}

fn tomo(args: &[&str]) -> Run {
    let o: Output = Command::new(env!("CARGO_BIN_EXE_tomo"))
        .args(args)
        .output()
        .expect("run tomo");
    let r = Run {
        code: o.status.code().unwrap_or(-1),
        out: String::from_utf8_lossy(&o.stdout).into_owned(),
        err: String::from_utf8_lossy(&o.stderr).into_owned(),
    };
    assert!(
        !r.err.contains("panicked"),
        "tomo {args:?} panicked: {}",
        r.err
    );
    r
}

/// Run, expect exit 0, return stdout.
fn ok(args: &[&str]) -> String {
    let r = tomo(args);
    assert_eq!(r.code, 0, "tomo {args:?} failed:\n{}\n{}", r.out, r.err);
    r.out
}

fn json(args: &[&str]) -> Value {
    let out = ok(args);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("tomo {args:?}: not JSON ({e}):\n{out}"))
}

fn setup() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let rec = record(dir.path()).to_str().unwrap().to_string();
    (dir, rec)
}

/// Labels of every node of a `why`/`impact --json` tree.
fn tree_labels(v: &Value, out: &mut Vec<String>) {
    out.push(v["node"]["label"].as_str().unwrap().to_string());
    for c in v["children"].as_array().unwrap() {
        tree_labels(c, out);
    }
}

#[test]
fn why_answers_in_text_and_json() {
    let (_d, rec) = setup();
    let s = ok(&["why", &rec, "/w/out.tgz"]);
    assert!(
        s.starts_with("/w/out.tgz  (times from 2023-11-14T22:13:20Z)"),
        "{s}"
    );
    for want in [
        "gzip[pid 12] gzip",
        "read 512 B  pipe:[77]",
        "wrote 512 B  tar[pid 11] tar cf - /d",
        "read 5 B  /d/a",
        "read 7 B  /d/b",
        "+0.090ms",
    ] {
        assert!(s.contains(want), "why lacks {want:?}:\n{s}");
    }
    // A suffix and a pid work as targets too.
    assert_eq!(ok(&["why", &rec, "out.tgz"]), s);
    assert!(ok(&["why", &rec, "12"]).starts_with("gzip[pid 12] gzip"));

    let v = json(&["why", &rec, "/w/out.tgz", "--json"]);
    assert_eq!(v["target"]["label"], "/w/out.tgz");
    assert_eq!(v["target"]["kind"], "file");
    assert!(v["root"]["via"].is_null());
    let mut labels = Vec::new();
    tree_labels(&v["root"], &mut labels);
    for want in ["gzip", "pipe:[77]", "tar", "/d/a", "/d/b", "sh"] {
        assert!(labels.iter().any(|l| l == want), "{want} not in {labels:?}");
    }
    let first = &v["root"]["children"][0];
    assert_eq!(first["via"]["kind"], "write");
    assert_eq!(first["seen"], false);
    assert_eq!(first["node"]["pid"], 12);
}

#[test]
fn why_depth_and_at_limit_the_answer() {
    let (_d, rec) = setup();
    let s = ok(&["why", &rec, "/w/out.tgz", "--depth", "1"]);
    assert!(
        s.contains("gzip[pid 12]") && !s.contains("/d/a") && s.contains("more (beyond --depth)"),
        "{s}"
    );
    let v = json(&["why", &rec, "/w/out.tgz", "--depth", "2", "--json"]);
    let mut labels = Vec::new();
    tree_labels(&v["root"], &mut labels);
    assert!(
        labels.contains(&"pipe:[77]".to_string()) && !labels.contains(&"tar".to_string()),
        "{labels:?}"
    );

    // gzip as it was between tar's write into the pipe (event 8, +0.080ms)
    // and its own read from it (event 9, +0.090ms): lineage at a time only
    // uses what happened before that time.
    let v = json(&["why", &rec, "12", "--at", "+0.085ms", "--json"]);
    assert_eq!(v["at_ns"], T0 + 85_000);
    let mut labels = Vec::new();
    tree_labels(&v["root"], &mut labels);
    assert!(
        !labels.contains(&"pipe:[77]".to_string()),
        "gzip read the pipe at +0.090ms, after --at: {labels:?}"
    );
    assert!(labels.contains(&"sh".to_string()), "{labels:?}");
    let v = json(&["why", &rec, "12", "--at", "+0.095ms", "--json"]);
    let mut labels = Vec::new();
    tree_labels(&v["root"], &mut labels);
    assert!(
        labels.contains(&"pipe:[77]".to_string()) && labels.contains(&"/d/a".to_string()),
        "{labels:?}"
    );
    // Absolute times work the same.
    let abs = (T0 + 85_000).to_string();
    assert_eq!(
        json(&["why", &rec, "12", "--at", &abs, "--json"]),
        json(&["why", &rec, "12", "--at", "+0.085ms", "--json"])
    );
    let r = tomo(&["why", &rec, "12", "--at", "yesterday"]);
    assert_eq!(r.code, 2);
    assert!(r.err.contains("RFC3339"), "{}", r.err);
}

#[test]
fn impact_follows_data_forward() {
    let (_d, rec) = setup();
    let s = ok(&["impact", &rec, "/d/a"]);
    for want in [
        "read 5 B  tar[pid 11]",
        "wrote 512 B  pipe:[77]",
        "read 512 B  gzip[pid 12]",
        "/w/out.tgz",
    ] {
        assert!(s.contains(want), "impact lacks {want:?}:\n{s}");
    }
    assert!(!s.contains("/d/b"), "{s}");
    let v = json(&["impact", &rec, "/d/a", "--json"]);
    assert_eq!(v["direction"], "impact");
    let mut labels = Vec::new();
    tree_labels(&v["root"], &mut labels);
    assert!(labels.contains(&"/w/out.tgz".to_string()), "{labels:?}");
}

#[test]
fn unknown_and_ambiguous_targets_are_explained() {
    let (_d, rec) = setup();
    let r = tomo(&["why", &rec, "/w/out.tg"]);
    assert_eq!(r.code, 1);
    assert!(r.out.is_empty());
    assert!(
        r.err.contains("not in the recording") && r.err.contains("closest known: /w/out.tgz"),
        "{}",
        r.err
    );
    let r = tomo(&["why", &rec, "4711"]);
    assert_eq!(r.code, 1);
    assert!(r.err.contains("pid 12"), "{}", r.err);
    let r = tomo(&["impact", &rec, "gzip"]);
    assert_eq!(r.code, 1);
    assert!(
        r.err.contains("ambiguous")
            && r.err.contains("/usr/bin/gzip")
            && r.err.contains("give a full path, a pid or a UUID"),
        "{}",
        r.err
    );
    let r = tomo(&["why", "/nonexistent/run.tomo", "x"]);
    assert_eq!(r.code, 2);
    assert!(r.err.contains("/nonexistent/run.tomo"), "{}", r.err);
}

#[test]
fn path_shows_how_data_got_from_a_to_b() {
    let (_d, rec) = setup();
    let s = ok(&["path", &rec, "/d/b", "/w/out.tgz"]);
    assert!(s.starts_with("path 1 (4 hops):"), "{s}");
    let lines: Vec<&str> = s.lines().collect();
    assert!(lines[1].trim_start().starts_with("/d/b"), "{s}");
    assert!(
        lines[2].contains("+0.070ms")
            && lines[2].contains("read 7 B")
            && lines[2].contains("tar[pid 11]"),
        "{s}"
    );
    assert!(lines[5].contains("/w/out.tgz"), "{s}");
    let v = json(&["path", &rec, "/d/b", "/w/out.tgz", "--json"]);
    assert_eq!(v["paths"][0]["hops"], 4);
    let labels: Vec<&str> = v["paths"][0]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["node"]["label"].as_str().unwrap())
        .collect();
    assert_eq!(labels, ["/d/b", "tar", "pipe:[77]", "gzip", "/w/out.tgz"]);
    let r = tomo(&["path", &rec, "/w/out.tgz", "/d/b"]);
    assert_eq!(r.code, 1);
    assert!(r.err.contains("no causal path"), "{}", r.err);
}

#[test]
fn ps_files_timeline_list_what_happened() {
    let (_d, rec) = setup();
    let s = ok(&["ps", &rec]);
    assert!(s.starts_with("PID"), "{s}");
    assert!(
        s.contains("├─ 11") && s.contains("/usr/bin/tar") && s.contains("└─ 12"),
        "{s}"
    );
    let v = json(&["ps", &rec, "--json"]);
    let rows = v.as_array().unwrap();
    assert_eq!(
        rows.iter()
            .map(|r| r["pid"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        [10, 11, 12]
    );
    assert_eq!(rows[1]["parent"], rows[0]["uuid"]);
    assert_eq!(rows[1]["reads"][0]["path"], "/d/a");
    assert_eq!(rows[1]["reads"][0]["bytes"], 5);
    assert_eq!(rows[2]["exit_code"], 0);

    let s = ok(&["files", &rec]);
    let line = s
        .lines()
        .find(|l| l.starts_with("/w/out.tgz"))
        .unwrap_or_else(|| panic!("{s}"));
    assert!(line.contains("40 B") && line.contains("gzip[12]"), "{line}");
    let v = json(&["files", &rec, "--json"]);
    let out = v
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["path"] == "/w/out.tgz")
        .unwrap();
    assert_eq!(out["writers"][0]["pid"], 12);
    assert_eq!(out["writers"][0]["bytes"], 40);
    assert_eq!(out["kind"], "file");

    let s = ok(&["timeline", &rec]);
    assert_eq!(
        s.lines().count(),
        1 + 10,
        "header and one line per edge:\n{s}"
    );
    assert!(
        s.contains("tar[11]") && s.contains("read") && s.contains("/d/a  5 B"),
        "{s}"
    );
    let v = json(&[
        "timeline", &rec, "--json", "--from", "+0.060ms", "--to", "+0.080ms",
    ]);
    let rows = v.as_array().unwrap();
    assert_eq!(rows.len(), 2, "{v}");
    assert_eq!(rows[0]["src"]["label"], "/d/a");
    assert_eq!(rows[1]["src"]["label"], "/d/b");
    let r = tomo(&["timeline", &rec, "--from", "+1s", "--to", "+0s"]);
    assert_eq!(r.code, 2);
}

#[test]
fn export_writes_prov_json_and_dot() {
    let (d, rec) = setup();
    let out = d.path().join("run.prov.json");
    let r = tomo(&[
        "export",
        &rec,
        "--format",
        "prov-json",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(
        r.err
            .contains("6 object versions, 3 process versions, 10 relations"),
        "{}",
        r.err
    );
    let v: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(v["entity"].as_object().unwrap().len(), 6);
    assert_eq!(v["activity"].as_object().unwrap().len(), 3);
    let dot = ok(&["export", &rec, "--format", "dot"]);
    assert!(
        dot.starts_with("digraph tomo {") && dot.trim_end().ends_with('}'),
        "{dot}"
    );
    assert_eq!(dot.matches(" -> ").count(), 10, "{dot}");
    // The subgraph of an answer.
    let dot = ok(&["why", &rec, "/d/a", "--export", "dot"]);
    assert!(dot.starts_with("digraph tomo {"));
    let r = tomo(&["export", &rec, "--format", "pdf"]);
    assert_eq!(r.code, 2);
}

#[test]
fn events_cut_and_verify_work_on_the_log() {
    let (d, rec) = setup();
    let s = ok(&["events", &rec]);
    assert_eq!(s.lines().count(), 15);
    let lines: Vec<Value> = ok(&["events", &rec, "--json"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 15);
    assert_eq!(lines[6]["seq"], 6);
    assert_eq!(lines[6]["ts_ns"], T0 + 6 * STEP);

    // [from, to) keeps exactly events 4..=8.
    let cut = d.path().join("cut.tomo");
    let from = (T0 + 4 * STEP).to_string();
    let r = tomo(&[
        "cut",
        &rec,
        "--from",
        &from,
        "--to",
        "+0.090ms",
        "-o",
        cut.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(r.code, 0, "{}", r.err);
    let summary: Value = serde_json::from_str(&r.out).unwrap();
    assert_eq!(summary["events"], 5);
    let seqs: Vec<u64> = ok(&["events", cut.to_str().unwrap(), "--json"])
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["seq"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(seqs, [4, 5, 6, 7, 8]);
    // The cut is still a meaningful recording: tar read /d/a in it.
    assert!(ok(&["why", cut.to_str().unwrap(), "11"]).contains("/d/a"));

    let good = ok(&["verify", &rec]);
    assert!(good.contains("events      15"), "{good}");
    // Truncate in the middle of the last block: damage at that block's offset.
    let mut reader = tomo_log::Reader::open(Path::new(&rec)).unwrap();
    let mut blocks = Vec::new();
    while let Some(b) = reader.next_block() {
        blocks.push(b.unwrap());
    }
    assert!(blocks.len() >= 3, "small blocks: {}", blocks.len());
    let last = blocks.last().unwrap();
    let bytes = std::fs::read(&rec).unwrap();
    let cut_at = last.offset as usize + 40;
    let bad = d.path().join("truncated.tomo");
    std::fs::write(&bad, &bytes[..cut_at]).unwrap();
    let r = tomo(&["verify", bad.to_str().unwrap()]);
    assert_eq!(r.code, 1, "{}\n{}", r.out, r.err);
    assert!(
        r.out.contains(&format!("byte offset {}", last.offset)),
        "verify must name the offset {}:\n{}",
        last.offset,
        r.out
    );
    let r = tomo(&["verify", bad.to_str().unwrap(), "--json"]);
    assert_eq!(r.code, 1);
    let v: Value = serde_json::from_str(&r.out).unwrap();
    assert_eq!(v["damage"]["offset"], last.offset);
    // Queries still answer from the intact part, with a warning.
    let r = tomo(&["ps", bad.to_str().unwrap()]);
    assert_eq!(r.code, 0);
    assert!(
        r.err.contains("warning") && r.err.contains(&last.offset.to_string()),
        "{}",
        r.err
    );
}
