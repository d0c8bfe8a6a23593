//! Syscall coverage suite (issue #2): one small C program per system-call
//! family (`tests/c/*.c`, statically linked so that the only files a program
//! touches are its own), recorded with `tomo record` and checked for the
//! exact nodes and edges it must produce, and for the details (offsets, byte
//! counts, addresses, return values) of the events.
//!
//! Every program is first run natively in an identical directory and must
//! exit with the expected status there: a failure of that step is a broken
//! test program, not a Tomo bug.
//!
//! Graph expectations are triples `SRC KIND DST` over the data/control-flow
//! edge kinds (`read write load spawn exec flow`), restricted to the
//! program's processes, the files under the test directory, pipes and
//! sockets (see `common::assert_flows`). Metadata edges (rename, link, chmod,
//! …) are checked by entity.

mod common;

use common::*;
use serde_json::Value;
use std::collections::BTreeSet;

/// The triple of the program binary being loaded by its execve.
fn load(name: &str) -> String {
    format!("file:$D/{name} load process:{name}")
}

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// `(call, path, offset, count)` of the successful `Io` events in `dir`
/// ("Read"/"Write") on file objects, in recording order.
fn file_io(events: &[Value], dir: &str) -> Vec<(String, String, Option<u64>, u64)> {
    ok_ops(events, "Io")
        .into_iter()
        .filter(|(_, b)| b["dir"] == dir && b["obj"]["kind"] == "File")
        .map(|(e, b)| {
            (
                ev_call(e),
                obj_path(&b["obj"]).unwrap_or("").to_string(),
                b["offset"].as_u64(),
                b["count"].as_u64().expect("Io.count"),
            )
        })
        .collect()
}

/// The uuid of the process entity that wrote `path` (exactly one).
fn writer_of(g: &Graph, path: &str) -> String {
    let f = g.uuid_of("file", path);
    let ws: BTreeSet<String> = g
        .edges
        .iter()
        .filter(|e| e.kind == "write" && g.node(e.dst).uuid == f)
        .map(|e| g.node(e.src).uuid.clone())
        .collect();
    assert_eq!(
        ws.len(),
        1,
        "expected exactly one writer of {path}, found {ws:?}\n{}",
        g.dump()
    );
    ws.into_iter().next().unwrap()
}

/// Total bytes over edges of `kind` from entity `src` to entity `dst`.
fn bytes(g: &Graph, src: &str, kind: &str, dst: &str) -> u64 {
    g.uuid_edges(src, kind, dst)
        .iter()
        .map(|e| e.bytes.unwrap_or(0))
        .sum()
}

/// Edge calls of `kind` from `src` to `dst` (entities).
fn edge_calls(g: &Graph, src: &str, kind: &str, dst: &str) -> BTreeSet<String> {
    g.uuid_edges(src, kind, dst)
        .iter()
        .map(|e| e.call.clone().unwrap_or_default())
        .collect()
}

fn set(v: &[&str]) -> BTreeSet<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// The one process entity labelled `name` that has no incoming spawn edge.
fn root_proc(g: &Graph, name: &str) -> String {
    let roots: Vec<String> = g
        .proc_uuids(name)
        .into_iter()
        .filter(|u| {
            !g.edges
                .iter()
                .any(|e| e.kind == "spawn" && g.node(e.dst).uuid == *u)
        })
        .collect();
    assert_eq!(
        roots.len(),
        1,
        "expected one root {name} process, found {roots:?}\n{}",
        g.dump()
    );
    roots[0].clone()
}

// ───────────────────────────── processes ─────────────────────────────

#[test]
fn fork_vfork_clone_clone3_make_processes() {
    let (w, rec) = case("proc_fork", &|_| {}, &[], 0);
    let g = rec.graph();
    let scope = Scope::new(&w, &["proc_fork"]);
    assert_flows(
        g,
        &w,
        &scope,
        &[
            &load("proc_fork"),
            "process:proc_fork spawn process:proc_fork",
            "process:proc_fork write file:$D/fork_child.txt",
            "process:proc_fork write file:$D/vfork_child.txt",
            "process:proc_fork write file:$D/clone_child.txt",
            "process:proc_fork write file:$D/clone3_child.txt",
            "process:proc_fork write file:$D/parent.txt",
        ],
        &[],
    );
    let procs = g.proc_uuids("proc_fork");
    assert_eq!(
        procs.len(),
        5,
        "one parent and four children expected\n{}",
        g.dump()
    );
    let root = root_proc(g, "proc_fork");
    assert_eq!(writer_of(g, &w.p("parent.txt")), root);
    let mut children = BTreeSet::new();
    for f in [
        "fork_child.txt",
        "vfork_child.txt",
        "clone_child.txt",
        "clone3_child.txt",
    ] {
        let c = writer_of(g, &w.p(f));
        assert_ne!(c, root, "{f} must be written by a child, not by the parent");
        assert!(
            !g.uuid_edges(&root, "spawn", &c).is_empty(),
            "no spawn edge parent -> writer of {f}\n{}",
            g.dump()
        );
        children.insert(c);
    }
    assert_eq!(children.len(), 4, "each child file has its own process");

    let evs = rec.events();
    let spawns: Vec<(String, String)> = ok_ops(&evs, "Spawn")
        .into_iter()
        .map(|(e, b)| (ev_call(e), b["kind"].as_str().unwrap_or("").to_string()))
        .collect();
    let want: Vec<(String, String)> = [
        ("fork", "Process"),
        ("vfork", "Vfork"),
        ("clone", "Process"),
        ("clone3", "Process"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(
        spawns,
        want,
        "Spawn events (call, kind)\n{}",
        fmt_events(&evs)
    );

    // The fork child exited with 3, everybody else with 0.
    let fork_child = ok_ops(&evs, "Spawn")[0].1["child"]["pid"]
        .as_u64()
        .expect("child pid");
    for p in rec.ps() {
        let want = if p["pid"].as_u64() == Some(fork_child) {
            3
        } else {
            0
        };
        assert_eq!(
            p["exit_code"].as_i64(),
            Some(want),
            "exit code in `tomo ps --json`: {p}"
        );
    }
}

#[test]
fn threads_do_not_make_processes() {
    let (w, rec) = case("proc_thread", &|_| {}, &[], 0);
    let g = rec.graph();
    assert_flows(
        g,
        &w,
        &Scope::new(&w, &["proc_thread"]),
        &[
            &load("proc_thread"),
            "process:proc_thread write file:$D/thread.txt",
            "process:proc_thread write file:$D/main.txt",
        ],
        &[],
    );
    assert_eq!(
        g.proc_uuids("proc_thread").len(),
        1,
        "a thread is not a process\n{}",
        g.dump()
    );
    let evs = rec.events();
    let kinds: Vec<&str> = ok_ops(&evs, "Spawn")
        .iter()
        .map(|(_, b)| b["kind"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        kinds,
        ["Thread"],
        "one thread creation expected\n{}",
        fmt_events(&evs)
    );
    let w_thread: Vec<&Value> = ok_ops(&evs, "Open")
        .into_iter()
        .filter(|(_, b)| obj_path(&b["obj"]) == Some(&w.p("thread.txt")))
        .map(|(e, _)| e)
        .collect();
    assert_eq!(w_thread.len(), 1);
    assert_ne!(
        ev_pid(w_thread[0]),
        ev_tid(w_thread[0]),
        "thread.txt is opened by the thread (tid != pid)"
    );
}

fn exec_case(variant: &str, call: &str) {
    let (w, rec) = case(
        "proc_exec",
        &|w| drop(w.compile("exec_target")),
        &[variant],
        0,
    );
    let g = rec.graph();
    assert_flows(
        g,
        &w,
        &Scope::new(&w, &["proc_exec", "exec_target"]),
        &[
            &load("proc_exec"),
            "process:proc_exec exec process:exec_target",
            &load("exec_target"),
            "process:exec_target write file:$D/target.txt",
        ],
        &[],
    );
    assert_eq!(
        g.proc_uuids("proc_exec"),
        g.proc_uuids("exec_target"),
        "exec keeps the process entity"
    );
    assert_eq!(g.proc_uuids("proc_exec").len(), 1);
    let evs = rec.events();
    let execs: Vec<(String, String, Vec<String>)> = ok_ops(&evs, "Exec")
        .into_iter()
        .map(|(e, b)| {
            (
                ev_call(e),
                obj_path(&b["exe"]).unwrap_or("").to_string(),
                str_vec(&b["argv"]),
            )
        })
        .collect();
    assert_eq!(
        execs,
        vec![
            (
                "execve".to_string(),
                w.p("proc_exec"),
                vec![w.p("proc_exec"), w.d(), variant.to_string()]
            ),
            (
                call.to_string(),
                w.p("exec_target"),
                strs(&["exec_target", &w.d(), "a1", "a 2"])
            ),
        ],
        "Exec events (call, exe, argv)\n{}",
        fmt_events(&evs)
    );
    let ps = rec.ps();
    assert_eq!(ps.len(), 1, "{ps:?}");
    let last = ps[0]["execs"]
        .as_array()
        .and_then(|a| a.last())
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(
        last["exe"],
        Value::String(w.p("exec_target")),
        "ps execs: {}",
        ps[0]
    );
    assert_eq!(
        str_vec(&last["argv"]),
        strs(&["exec_target", &w.d(), "a1", "a 2"])
    );
}

fn str_vec(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|x| x.as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn execve_with_argv() {
    exec_case("execve", "execve");
}

#[test]
fn execveat_dirfd_relative() {
    exec_case("execveat", "execveat");
}

#[test]
fn execveat_empty_path() {
    exec_case("execveat_empty", "execveat");
}

#[test]
fn exit_and_exit_group() {
    let (w, rec) = case("proc_exit", &|_| {}, &[], 7);
    assert_flows(
        rec.graph(),
        &w,
        &Scope::new(&w, &["proc_exit"]),
        &[&load("proc_exit")],
        &[],
    );
    let evs = rec.events();
    let exits: Vec<(String, bool, i64)> = ops(&evs, "Exit")
        .into_iter()
        .map(|(e, b)| {
            (
                ev_call(e),
                ev_pid(e) == ev_tid(e),
                b["code"].as_i64().unwrap_or(-1),
            )
        })
        .collect();
    assert_eq!(
        exits,
        vec![
            ("exit".to_string(), false, 0),
            ("exit_group".to_string(), true, 7)
        ],
        "Exit events (call, by the main thread, code)\n{}",
        fmt_events(&evs)
    );
    let ps = rec.ps();
    assert_eq!(ps.len(), 1);
    assert_eq!(ps[0]["exit_code"].as_i64(), Some(7), "{}", ps[0]);
}

#[test]
fn kill_tgkill() {
    let (w, rec) = case("proc_kill", &|_| {}, &[], 0);
    let g = rec.graph();
    assert_flows(
        g,
        &w,
        &Scope::new(&w, &["proc_kill"]),
        &[
            &load("proc_kill"),
            "process:proc_kill spawn process:proc_kill",
            "pipe read process:proc_kill",
        ],
        &[],
    );
    let evs = rec.events();
    let root_pid = ev_pid(&evs[0]);
    let child = ok_ops(&evs, "Spawn")[0].1["child"]["pid"]
        .as_u64()
        .expect("child pid");
    let kills: Vec<(String, u64, i64)> = ok_ops(&evs, "Kill")
        .into_iter()
        .map(|(e, b)| {
            (
                ev_call(e),
                b["target"]["pid"].as_u64().unwrap_or(0),
                b["signal"].as_i64().unwrap_or(-1),
            )
        })
        .collect();
    assert_eq!(
        kills,
        vec![
            ("kill".to_string(), child, 15),
            ("tgkill".to_string(), root_pid, 10),
            ("kill".to_string(), root_pid, 0)
        ],
        "Kill events (call, target pid, signal)\n{}",
        fmt_events(&evs)
    );
    let root = root_proc(g, "proc_kill");
    let kid: Vec<String> = g
        .proc_uuids("proc_kill")
        .into_iter()
        .filter(|u| *u != root)
        .collect();
    assert_eq!(kid.len(), 1);
    assert_eq!(
        g.uuid_edges(&root, "signal", &kid[0]).len(),
        1,
        "one signal edge parent -> child\n{}",
        g.dump()
    );
    for p in rec.ps() {
        if p["pid"].as_u64() == Some(child) {
            assert!(
                p["exit_code"].is_null(),
                "a process killed by a signal has no exit code: {p}"
            );
        } else {
            assert_eq!(p["exit_code"].as_i64(), Some(0), "{p}");
        }
    }
}

#[test]
fn exit_status_passthrough() {
    let w = Work::new();
    for (script, want) in [
        ("exit 7", 7),
        ("exit 0", 0),
        ("kill -KILL $$", 128 + 9),
        ("kill -TERM $$", 128 + 15),
    ] {
        let r = w.record_to("exit.tomo", &["sh", "-c", script]);
        assert_eq!(
            exit_code(&r.status),
            want,
            "`tomo record -- sh -c '{script}'`\nstderr:\n{}",
            r.stderr
        );
    }
}

// ───────────────────────────── files ─────────────────────────────

#[test]
fn open_openat_openat2_creat() {
    let setup = |w: &Work| {
        w.write("trunc.txt", "old contents");
        w.write("existing.txt", "x");
    };
    let (w, rec) = case("fs_open", &setup, &[], 0);
    let g = rec.graph();
    assert_flows(
        g,
        &w,
        &Scope::new(&w, &["fs_open"]),
        &[
            &load("fs_open"),
            "process:fs_open write file:$D/creat.txt",
            "process:fs_open write file:$D/trunc.txt",
            "process:fs_open write file:$D/openat.txt",
            "process:fs_open write file:$D/openat2.txt",
        ],
        &["file:$D/existing.txt"],
    );
    let evs = rec.events();
    let opens: Vec<(String, String, bool)> = ok_ops(&evs, "Open")
        .into_iter()
        .filter(|(_, b)| b["obj"]["kind"] == "File")
        .map(|(e, b)| {
            let p = obj_path(&b["obj"])
                .unwrap_or("")
                .strip_prefix(&format!("{}/", w.d()))
                .unwrap_or("?")
                .to_string();
            (ev_call(e), p, b["created"].as_bool().unwrap_or(false))
        })
        .collect();
    let want: Vec<(String, String, bool)> = [
        ("creat", "creat.txt", true),
        ("open", "trunc.txt", false),
        ("openat", "openat.txt", true),
        ("openat2", "openat2.txt", true),
        ("open", "existing.txt", false),
        ("open", "existing.txt", false),
        ("openat", "existing.txt", false),
    ]
    .iter()
    .map(|(c, p, k)| (c.to_string(), p.to_string(), *k))
    .collect();
    assert_eq!(
        opens,
        want,
        "Open events of files (call, name, created)\n{}",
        fmt_events(&evs)
    );
    let dirs: Vec<&str> = ok_ops(&evs, "Open")
        .into_iter()
        .filter(|(_, b)| b["obj"]["kind"] == "Dir")
        .filter_map(|(_, b)| obj_path(&b["obj"]))
        .collect();
    assert_eq!(dirs, [w.d().as_str()], "the directory opened for openat");
    for (e, b) in ok_ops(&evs, "Close") {
        assert!(
            b["obj"]["kind"] != "Unknown",
            "close of an unresolved descriptor: {e}"
        );
    }
    assert_eq!(
        ok_ops(&evs, "Close").len(),
        8,
        "8 closes\n{}",
        fmt_events(&evs)
    );
}

#[test]
fn failed_calls_are_recorded_without_flows() {
    let setup = |w: &Work| {
        w.write("ro.txt", "ro");
        w.write("wo.txt", "wo");
    };
    let (w, rec) = case("fs_fail", &setup, &[], 0);
    let g = rec.graph();
    assert_flows(
        g,
        &w,
        &Scope::new(&w, &["fs_fail"]),
        &[&load("fs_fail")],
        &["file:$D/ro.txt", "file:$D/wo.txt", "socket"],
    );
    for n in &g.nodes {
        for bad in ["missing.txt", "missing2.txt", "missing_prog"] {
            assert!(!n.has_path(&w.p(bad)), "a failed call made node {n:?}");
        }
    }
    for f in ["ro.txt", "wo.txt"] {
        let u = g.uuid_of("file", &w.p(f));
        let touching: Vec<&Edge> = g
            .edges
            .iter()
            .filter(|e| g.node(e.src).uuid == u || g.node(e.dst).uuid == u)
            .collect();
        assert!(
            touching.is_empty(),
            "failed calls on {f} made edges {touching:?}"
        );
    }
    let evs = rec.events();
    let failed: Vec<(String, i64)> = evs
        .iter()
        .filter(|e| !ok(e))
        .map(|e| (ev_call(e), ev_ret(e)))
        .collect();
    let want: Vec<(String, i64)> = [
        ("openat", -2),
        ("openat", -17),
        ("read", -9),
        ("write", -9),
        ("rename", -2),
        ("unlink", -2),
        ("mkdir", -17),
        ("truncate", -2),
        ("chmod", -2),
        ("execve", -2),
        ("connect", -111),
    ]
    .iter()
    .map(|(c, r)| (c.to_string(), *r))
    .collect();
    assert_eq!(
        failed,
        want,
        "failed events (call, ret = -errno)\n{}",
        fmt_events(&evs)
    );
}

#[test]
fn read_family_offsets_and_counts() {
    let (w, rec) = case("fs_read", &|w| w.write("in.txt", vec![b'r'; 8192]), &[], 0);
    let g = rec.graph();
    assert_flows(
        g,
        &w,
        &Scope::new(&w, &["fs_read"]),
        &[&load("fs_read"), "file:$D/in.txt read process:fs_read"],
        &[],
    );
    let evs = rec.events();
    let p = w.p("in.txt");
    let want: Vec<(String, String, Option<u64>, u64)> = [
        ("read", 0, 5),
        ("read", 100, 10),
        ("pread64", 1000, 20),
        ("readv", 110, 7),
        ("preadv", 2000, 8),
        ("preadv2", 3000, 16),
        ("read", 8192, 0),
    ]
    .iter()
    .map(|(c, o, n)| (c.to_string(), p.clone(), Some(*o), *n))
    .collect();
    assert_eq!(
        file_io(&evs, "Read"),
        want,
        "read events (call, path, offset, count)\n{}",
        fmt_events(&evs)
    );
    assert!(file_io(&evs, "Write").is_empty());
    let f = g.uuid_of("file", &p);
    let proc_ = root_proc(g, "fs_read");
    assert_eq!(
        bytes(g, &f, "read", &proc_),
        66,
        "bytes on the read edges\n{}",
        g.dump()
    );
    assert_eq!(
        edge_calls(g, &f, "read", &proc_),
        set(&["read", "pread64", "readv", "preadv", "preadv2"])
    );
    // `tomo ps --json` and `tomo files --json` agree.
    let ps = rec.ps();
    assert_eq!(ps.len(), 1);
    let rs = ps[0]["reads"].as_array().expect("ps reads");
    assert_eq!(rs.len(), 1, "{}", ps[0]);
    assert_eq!(
        (
            rs[0]["path"].as_str(),
            rs[0]["bytes"].as_u64(),
            rs[0]["calls"].as_u64()
        ),
        (Some(p.as_str()), Some(66), Some(7)),
        "ps reads: {}",
        ps[0]
    );
    let files = rec.files();
    let inf = files
        .iter()
        .find(|f| f["path"] == Value::String(p.clone()))
        .expect("in.txt in `tomo files`");
    let readers: Vec<(u64, u64)> = inf["readers"]
        .as_array()
        .expect("readers")
        .iter()
        .map(|x| {
            (
                x["pid"].as_u64().unwrap_or(0),
                x["bytes"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(
        readers,
        vec![(ps[0]["pid"].as_u64().unwrap_or(1), 66)],
        "files readers: {inf}"
    );
}

#[test]
fn write_family_offsets_and_counts() {
    let (w, rec) = case("fs_write", &|w| w.write("out.txt", ""), &[], 0);
    let g = rec.graph();
    assert_flows(
        g,
        &w,
        &Scope::new(&w, &["fs_write"]),
        &[&load("fs_write"), "process:fs_write write file:$D/out.txt"],
        &[],
    );
    let evs = rec.events();
    let p = w.p("out.txt");
    let want: Vec<(String, String, Option<u64>, u64)> = [
        ("write", 0, 5),
        ("pwrite64", 4096, 10),
        ("writev", 5, 7),
        ("pwritev", 8192, 8),
        ("pwritev2", 100, 16),
        ("write", 12, 1),
    ]
    .iter()
    .map(|(c, o, n)| (c.to_string(), p.clone(), Some(*o), *n))
    .collect();
    assert_eq!(
        file_io(&evs, "Write"),
        want,
        "write events (call, path, offset, count)\n{}",
        fmt_events(&evs)
    );
    let f = g.uuid_of("file", &p);
    let proc_ = root_proc(g, "fs_write");
    assert_eq!(
        bytes(g, &proc_, "write", &f),
        47,
        "bytes on the write edges\n{}",
        g.dump()
    );
    assert_eq!(
        edge_calls(g, &proc_, "write", &f),
        set(&["write", "pwrite64", "writev", "pwritev", "pwritev2"])
    );
    // `tomo ps --json` and `tomo files --json` agree.
    let ps = rec.ps();
    assert_eq!(ps.len(), 1);
    let ws = ps[0]["writes"].as_array().expect("ps writes");
    assert_eq!(ws.len(), 1, "{}", ps[0]);
    assert_eq!(
        (
            ws[0]["path"].as_str(),
            ws[0]["bytes"].as_u64(),
            ws[0]["calls"].as_u64()
        ),
        (Some(p.as_str()), Some(47), Some(6)),
        "ps writes: {}",
        ps[0]
    );
    let files = rec.files();
    let out = files
        .iter()
        .find(|f| f["path"] == Value::String(p.clone()))
        .expect("out.txt in `tomo files`");
    let writers: Vec<(u64, u64)> = out["writers"]
        .as_array()
        .expect("writers")
        .iter()
        .map(|x| {
            (
                x["pid"].as_u64().unwrap_or(0),
                x["bytes"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(
        writers,
        vec![(ps[0]["pid"].as_u64().unwrap_or(1), 47)],
        "files writers: {out}"
    );
}

#[test]
fn sendfile_splice_tee_copy_file_range() {
    let setup = |w: &Work| {
        w.write("src.txt", vec![b's'; 4096]);
        for d in ["dst1.txt", "dst2.txt", "dst3.txt"] {
            w.write(d, "");
        }
    };
    let (w, rec) = case("fs_xfer", &setup, &[], 0);
    let g = rec.graph();
    assert_flows(
        g,
        &w,
        &Scope::new(&w, &["fs_xfer"]),
        &[
            &load("fs_xfer"),
            "file:$D/src.txt read process:fs_xfer",
            "process:fs_xfer write file:$D/dst1.txt",
            "process:fs_xfer write file:$D/dst2.txt",
            "process:fs_xfer write file:$D/dst3.txt",
            "process:fs_xfer write pipe",
            "pipe read process:fs_xfer",
        ],
        &[],
    );
    let evs = rec.events();
    // (call, src, src offset for files, dst, dst offset for files, count)
    type T = (String, String, Option<u64>, String, Option<u64>, u64);
    let name = |o: &Value| -> (String, bool) {
        if o["kind"] == "File" {
            (obj_path(o).unwrap_or("?").to_string(), true)
        } else {
            (o["kind"].as_str().unwrap_or("?").to_string(), false)
        }
    };
    let got: Vec<T> = ok_ops(&evs, "Transfer")
        .into_iter()
        .map(|(e, b)| {
            let (s, sf) = name(&b["src"]);
            let (d, df) = name(&b["dst"]);
            (
                ev_call(e),
                s,
                if sf { b["src_offset"].as_u64() } else { None },
                d,
                if df { b["dst_offset"].as_u64() } else { None },
                b["count"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    let (src, d1, d2, d3) = (
        w.p("src.txt"),
        w.p("dst1.txt"),
        w.p("dst2.txt"),
        w.p("dst3.txt"),
    );
    let pipe = "Pipe".to_string();
    let want: Vec<T> = vec![
        ("sendfile".into(), src.clone(), Some(0), d1, Some(0), 100),
        (
            "splice".into(),
            src.clone(),
            Some(200),
            pipe.clone(),
            None,
            50,
        ),
        ("tee".into(), pipe.clone(), None, pipe.clone(), None, 50),
        ("splice".into(), pipe, None, d2, Some(0), 50),
        ("copy_file_range".into(), src, Some(10), d3, Some(20), 30),
    ];
    assert_eq!(got, want, "Transfer events\n{}", fmt_events(&evs));
    // tee copies between two different pipes; the first splice fills the one tee reads.
    let t = ok_ops(&evs, "Transfer");
    assert_ne!(t[2].1["src"]["ino"], t[2].1["dst"]["ino"], "tee: two pipes");
    assert_eq!(
        t[1].1["dst"]["ino"], t[2].1["src"]["ino"],
        "splice fills the pipe tee reads"
    );
    assert_eq!(
        t[3].1["src"]["ino"], t[2].1["src"]["ino"],
        "the second splice drains that pipe"
    );
    let reads: Vec<(String, String, u64)> = ok_ops(&evs, "Io")
        .into_iter()
        .map(|(e, b)| {
            (
                ev_call(e),
                b["obj"]["kind"].as_str().unwrap_or("").to_string(),
                b["count"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(
        reads,
        vec![("read".to_string(), "Pipe".to_string(), 50)],
        "the read of tee's copy"
    );
    assert_eq!(
        t[2].1["dst"]["ino"],
        ok_ops(&evs, "Io")[0].1["obj"]["ino"],
        "read from tee's destination"
    );
    let s = g.uuid_of("file", &w.p("src.txt"));
    assert!(g.reaches_causally(&s, &g.uuid_of("file", &w.p("dst2.txt")), &["read", "write"]));
}

#[test]
fn mmap_of_files() {
    let setup = |w: &Work| {
        for f in ["lib.bin", "data.bin", "ro.bin", "cow.bin"] {
            w.write(f, vec![7u8; 8192]);
        }
    };
    let (w, rec) = case("fs_mmap", &setup, &[], 0);
    let g = rec.graph();
    assert_flows(
        g,
        &w,
        &Scope::new(&w, &["fs_mmap"]),
        &[
            &load("fs_mmap"),
            "file:$D/lib.bin load process:fs_mmap",
            "file:$D/data.bin read process:fs_mmap",
            "process:fs_mmap write file:$D/data.bin",
            "file:$D/ro.bin read process:fs_mmap",
            "file:$D/cow.bin read process:fs_mmap",
        ],
        &[],
    );
    let evs = rec.events();
    let got: Vec<(String, u64, u64, u64, u64)> = ok_ops(&evs, "Mmap")
        .into_iter()
        .filter(|(_, b)| b["obj"]["kind"] == "File")
        .map(|(_, b)| {
            (
                obj_path(&b["obj"]).unwrap_or("?").to_string(),
                b["prot"].as_u64().unwrap_or(0),
                b["flags"].as_u64().unwrap_or(0) & 3,
                b["len"].as_u64().unwrap_or(0),
                b["offset"].as_u64().unwrap_or(99),
            )
        })
        .collect();
    let want = vec![
        (w.p("lib.bin"), 5, 2, 8192, 0),
        (w.p("data.bin"), 3, 1, 8192, 0),
        (w.p("ro.bin"), 1, 2, 8192, 0),
        (w.p("cow.bin"), 3, 2, 8192, 0),
    ];
    assert_eq!(
        got,
        want,
        "Mmap events (path, prot, MAP_SHARED/PRIVATE, len, offset)\n{}",
        fmt_events(&evs)
    );
    // `tomo ps --json` lists the mappings.
    let ps = rec.ps();
    let maps: Vec<(String, bool, bool)> = ps[0]["maps"]
        .as_array()
        .expect("ps maps")
        .iter()
        .filter(|m| m["path"] != Value::String(w.p("fs_mmap")))
        .map(|m| {
            (
                m["path"].as_str().unwrap_or("?").to_string(),
                m["exec"].as_bool().unwrap_or(false),
                m["shared_write"].as_bool().unwrap_or(false),
            )
        })
        .collect();
    let mut maps = maps;
    maps.sort();
    assert_eq!(
        maps,
        vec![
            (w.p("cow.bin"), false, false),
            (w.p("data.bin"), false, true),
            (w.p("lib.bin"), true, false),
            (w.p("ro.bin"), false, false),
        ],
        "`tomo ps --json` maps: {}",
        ps[0]
    );
}

#[test]
fn dup_family_writes_land_on_the_right_file() {
    let setup = |w: &Work| {
        w.write("out.txt", "");
        w.write("other.txt", "");
    };
    let (w, rec) = case("fs_dup", &setup, &[], 0);
    let g = rec.graph();
    assert_flows(
        g,
        &w,
        &Scope::new(&w, &["fs_dup"]),
        &[&load("fs_dup"), "process:fs_dup write file:$D/out.txt"],
        &["file:$D/other.txt"],
    );
    let evs = rec.events();
    let out = w.p("out.txt");
    let want: Vec<(String, String, Option<u64>, u64)> = [
        (0, 1),
        (1, 2),
        (3, 3),
        (6, 4),
        (10, 5),
        (15, 6),
        (21, 7),
        (28, 8),
    ]
    .iter()
    .map(|(o, n)| ("write".to_string(), out.clone(), Some(*o), *n))
    .collect();
    assert_eq!(
        file_io(&evs, "Write"),
        want,
        "every write lands on out.txt\n{}",
        fmt_events(&evs)
    );
    let dups: Vec<(String, String)> = ok_ops(&evs, "Dup")
        .into_iter()
        .map(|(e, b)| (ev_call(e), obj_path(&b["obj"]).unwrap_or("?").to_string()))
        .collect();
    let want: Vec<(String, String)> = ["dup", "dup2", "dup3", "fcntl", "fcntl", "dup2"]
        .iter()
        .map(|c| (c.to_string(), out.clone()))
        .collect();
    assert_eq!(
        dups,
        want,
        "Dup events (call, object)\n{}",
        fmt_events(&evs)
    );
    let fds: Vec<i64> = ok_ops(&evs, "Dup")
        .iter()
        .map(|(_, b)| b["new_fd"].as_i64().unwrap_or(-1))
        .collect();
    assert_eq!(&fds[1..3], &[50, 60]);
    assert!(
        fds[3] >= 70 && fds[4] >= 80,
        "F_DUPFD / F_DUPFD_CLOEXEC minimum fds: {fds:?}"
    );
    let f = g.uuid_of("file", &out);
    assert_eq!(bytes(g, &root_proc(g, "fs_dup"), "write", &f), 36);
}

#[test]
fn pipe_pipe2_parent_to_child() {
    let (w, rec) = case("ipc_pipe", &|_| {}, &[], 0);
    let g = rec.graph();
    assert_flows(
        g,
        &w,
        &Scope::new(&w, &["ipc_pipe"]),
        &[
            &load("ipc_pipe"),
            "process:ipc_pipe spawn process:ipc_pipe",
            "process:ipc_pipe write pipe",
            "pipe read process:ipc_pipe",
            "process:ipc_pipe write file:$D/child.txt",
            "process:ipc_pipe write file:$D/parent.txt",
        ],
        &[],
    );
    let evs = rec.events();
    let pipes: Vec<(String, u64)> = ok_ops(&evs, "Pipe")
        .into_iter()
        .map(|(e, b)| (ev_call(e), b["obj"]["ino"].as_u64().unwrap_or(0)))
        .collect();
    assert_eq!(
        pipes.iter().map(|p| p.0.as_str()).collect::<Vec<_>>(),
        ["pipe", "pipe2"],
        "{}",
        fmt_events(&evs)
    );
    let a = g.uuid_of("pipe", &format!("pipe:[{}]", pipes[0].1));
    let b = g.uuid_of("pipe", &format!("pipe:[{}]", pipes[1].1));
    let parent = writer_of(g, &w.p("parent.txt"));
    let child = writer_of(g, &w.p("child.txt"));
    assert_ne!(parent, child);
    assert_eq!(
        bytes(g, &parent, "write", &a),
        5,
        "parent -> pipe a\n{}",
        g.dump()
    );
    assert_eq!(
        bytes(g, &a, "read", &child),
        5,
        "pipe a -> child\n{}",
        g.dump()
    );
    assert_eq!(
        bytes(g, &child, "write", &b),
        5,
        "child -> pipe b\n{}",
        g.dump()
    );
    assert_eq!(
        bytes(g, &b, "read", &parent),
        5,
        "pipe b -> parent\n{}",
        g.dump()
    );
    assert!(g.reaches_causally(
        &parent,
        &g.uuid_of("file", &w.p("child.txt")),
        &["read", "write"]
    ));
    assert!(g.reaches_causally(
        &child,
        &g.uuid_of("file", &w.p("parent.txt")),
        &["read", "write"]
    ));
}

#[test]
fn rename_renameat_renameat2() {
    let setup = |w: &Work| {
        w.write("a.txt", "a");
        w.write("e.txt", "e");
        w.write("f.txt", "f");
    };
    let (w, rec) = case("fs_rename", &setup, &[], 0);
    let g = rec.graph();
    assert_flows(
        g,
        &w,
        &Scope::new(&w, &["fs_rename"]),
        &[&load("fs_rename"), "process:fs_rename write file:$D/a.txt"],
        &["file:$D/e.txt", "file:$D/f.txt"],
    );
    let p = root_proc(g, "fs_rename");
    let a = g.uuid_of("file", &w.p("a.txt"));
    let names = g.all_names(&a);
    for n in ["a.txt", "b.txt", "c.txt", "d.txt"] {
        assert!(
            names.contains(&w.p(n)),
            "the renamed file is known as {n}: {names:?}"
        );
    }
    assert_eq!(
        edge_calls(g, &p, "rename", &a),
        set(&["rename", "renameat", "renameat2"]),
        "{}",
        g.dump()
    );
    assert_eq!(
        bytes(g, &p, "write", &a),
        3,
        "the write to d.txt lands on the renamed entity"
    );
    let e = g.uuid_of("file", &w.p("e.txt"));
    assert!(g.all_names(&e).contains(&w.p("f.txt")));
    let fs = g.uuids_by_path("file", &w.p("f.txt"));
    assert_eq!(
        fs.len(),
        2,
        "old f.txt and renamed e.txt: {fs:?}\n{}",
        g.dump()
    );
    let old_f = fs.iter().find(|u| **u != e).unwrap();
    assert_eq!(
        g.uuid_edges(&p, "unlink", old_f).len(),
        1,
        "rename over f.txt unlinks the old one\n{}",
        g.dump()
    );
    let evs = rec.events();
    let got: Vec<(String, String, String, bool)> = ok_ops(&evs, "Rename")
        .into_iter()
        .map(|(e, b)| {
            (
                ev_call(e),
                b["old_path"].as_str().unwrap_or("").to_string(),
                b["new_path"].as_str().unwrap_or("").to_string(),
                !b["replaced"].is_null(),
            )
        })
        .collect();
    let want: Vec<(String, String, String, bool)> = [
        ("rename", "a.txt", "b.txt", false),
        ("renameat", "b.txt", "c.txt", false),
        ("renameat2", "c.txt", "d.txt", false),
        ("rename", "e.txt", "f.txt", true),
    ]
    .iter()
    .map(|(c, o, n, r)| (c.to_string(), w.p(o), w.p(n), *r))
    .collect();
    assert_eq!(
        got,
        want,
        "Rename events (call, old, new, replaced)\n{}",
        fmt_events(&evs)
    );
}

#[test]
fn link_linkat_symlink_symlinkat() {
    let (w, rec) = case("fs_link", &|w| w.write("a.txt", "a\n"), &[], 0);
    let g = rec.graph();
    let p = root_proc(g, "fs_link");
    let a = g.uuid_of("file", &w.p("a.txt"));
    for n in ["b.txt", "c.txt"] {
        assert_eq!(g.uuid_of("file", &w.p(n)), a, "{n} is a hard link of a.txt");
    }
    let a_node = g.nodes.iter().find(|n| n.uuid == a).unwrap();
    let want = [
        load("fs_link"),
        format!("process:fs_link write {}", Graph::endpoint(a_node)),
    ];
    let want: Vec<&str> = want.iter().map(String::as_str).collect();
    assert_flows(
        g,
        &w,
        &Scope::new(&w, &["fs_link"]),
        &want,
        &["symlink:$D/s1", "symlink:$D/s2"],
    );
    assert_eq!(
        edge_calls(g, &p, "link", &a),
        set(&["link", "linkat"]),
        "{}",
        g.dump()
    );
    assert_eq!(
        bytes(g, &p, "write", &a),
        5,
        "writes through b.txt and s2 land on a.txt's inode"
    );
    for (s, call) in [("s1", "symlink"), ("s2", "symlinkat")] {
        let u = g.uuid_of("symlink", &w.p(s));
        assert_eq!(
            edge_calls(g, &p, "symlink", &u),
            set(&[call]),
            "{}",
            g.dump()
        );
    }
    let evs = rec.events();
    let got: Vec<(String, String, String, bool)> = ok_ops(&evs, "Link")
        .into_iter()
        .map(|(e, b)| {
            let t = b["target"].as_str().unwrap_or("");
            let t = t.rsplit('/').next().unwrap_or(t).to_string();
            (
                ev_call(e),
                t,
                b["new_path"].as_str().unwrap_or("").to_string(),
                b["symbolic"].as_bool().unwrap_or(false),
            )
        })
        .collect();
    let want: Vec<(String, String, String, bool)> = [
        ("link", "b.txt", false),
        ("linkat", "c.txt", false),
        ("symlink", "s1", true),
        ("symlinkat", "s2", true),
    ]
    .iter()
    .map(|(c, n, s)| (c.to_string(), "a.txt".to_string(), w.p(n), *s))
    .collect();
    assert_eq!(
        got,
        want,
        "Link events (call, target basename, new path, symbolic)\n{}",
        fmt_events(&evs)
    );
    let sym_targets: Vec<&str> = ok_ops(&evs, "Link")
        .iter()
        .filter(|(_, b)| b["symbolic"] == true)
        .filter_map(|(_, b)| b["target"].as_str())
        .collect();
    assert_eq!(
        sym_targets,
        ["a.txt", "a.txt"],
        "a symlink's target is its literal contents"
    );
}

#[test]
fn mkdir_mknod_unlink_rmdir() {
    let (w, rec) = case("fs_ns", &|_| {}, &[], 0);
    let g = rec.graph();
    assert_flows(
        g,
        &w,
        &Scope::new(&w, &["fs_ns"]),
        &[&load("fs_ns")],
        &[
            "dir:$D/d1",
            "dir:$D/d2",
            "file:$D/f1",
            "pipe",
            "file:$D/f2",
            "unknown:$D/f2",
        ],
    );
    let p = root_proc(g, "fs_ns");
    let d1: Vec<String> = g.uuids_by_path("dir", &w.p("d1")).into_iter().collect();
    assert_eq!(
        d1.len(),
        2,
        "rmdir + mkdir makes a new directory entity\n{}",
        g.dump()
    );
    let (old, new): (Vec<&String>, Vec<&String>) = d1
        .iter()
        .partition(|u| !g.uuid_edges(&p, "unlink", u).is_empty());
    assert_eq!(
        (old.len(), new.len()),
        (1, 1),
        "exactly one d1 was removed\n{}",
        g.dump()
    );
    assert_eq!(edge_calls(g, &p, "mkdir", old[0]), set(&["mkdir"]));
    assert_eq!(edge_calls(g, &p, "unlink", old[0]), set(&["rmdir"]));
    assert_eq!(edge_calls(g, &p, "mkdir", new[0]), set(&["mkdir"]));
    let d2 = g.uuid_of("dir", &w.p("d2"));
    assert_eq!(edge_calls(g, &p, "mkdir", &d2), set(&["mkdirat"]));
    assert_eq!(edge_calls(g, &p, "unlink", &d2), set(&["unlinkat"]));
    let f1 = g.uuid_of("file", &w.p("f1"));
    assert_eq!(edge_calls(g, &p, "mknod", &f1), set(&["mknod"]));
    assert_eq!(edge_calls(g, &p, "unlink", &f1), set(&["unlink"]));
    let f2 = g.uuid_of("", &w.p("f2"));
    assert_eq!(edge_calls(g, &p, "mknod", &f2), set(&["mknodat"]));
    assert_eq!(edge_calls(g, &p, "unlink", &f2), set(&["unlinkat"]));

    let evs = rec.events();
    let rel = |b: &Value| {
        b["path"]
            .as_str()
            .unwrap_or("")
            .strip_prefix(&format!("{}/", w.d()))
            .unwrap_or("?")
            .to_string()
    };
    let mk: Vec<(String, String, u64)> = ok_ops(&evs, "Mkdir")
        .into_iter()
        .map(|(e, b)| (ev_call(e), rel(b), b["mode"].as_u64().unwrap_or(0) & 0o7777))
        .collect();
    assert_eq!(
        mk,
        vec![
            ("mkdir".into(), "d1".into(), 0o755),
            ("mkdirat".into(), "d2".into(), 0o700),
            ("mkdir".into(), "d1".into(), 0o750)
        ],
        "Mkdir events\n{}",
        fmt_events(&evs)
    );
    let mn: Vec<(String, String, u64)> = ok_ops(&evs, "Mknod")
        .into_iter()
        .map(|(e, b)| {
            (
                ev_call(e),
                rel(b),
                b["mode"].as_u64().unwrap_or(0) & 0o170000,
            )
        })
        .collect();
    assert_eq!(
        mn,
        vec![
            ("mknod".into(), "f1".into(), 0o100000),
            ("mknodat".into(), "f2".into(), 0o010000)
        ],
        "Mknod events"
    );
    let un: Vec<(String, String, bool)> = ok_ops(&evs, "Unlink")
        .into_iter()
        .map(|(e, b)| (ev_call(e), rel(b), b["dir"].as_bool().unwrap_or(false)))
        .collect();
    assert_eq!(
        un,
        vec![
            ("unlink".into(), "f1".into(), false),
            ("unlinkat".into(), "f2".into(), false),
            ("unlinkat".into(), "d2".into(), true),
            ("rmdir".into(), "d1".into(), true),
        ],
        "Unlink events\n{}",
        fmt_events(&evs)
    );
}

#[test]
fn truncate_chmod_chown() {
    let setup = |w: &Work| {
        w.write("t1.txt", "1");
        w.write("t2.txt", "2");
        w.write("m.txt", "m");
        std::os::unix::fs::symlink("m.txt", w.dir.join("ln")).expect("symlink");
    };
    let (w, rec) = case("fs_meta", &setup, &[], 0);
    let g = rec.graph();
    assert_flows(
        g,
        &w,
        &Scope::new(&w, &["fs_meta"]),
        &[
            &load("fs_meta"),
            "process:fs_meta write file:$D/t1.txt",
            "process:fs_meta write file:$D/t2.txt",
        ],
        &["file:$D/m.txt", "symlink:$D/ln"],
    );
    let p = root_proc(g, "fs_meta");
    for (f, call, len) in [("t1.txt", "truncate", 10), ("t2.txt", "ftruncate", 20)] {
        let u = g.uuid_of("file", &w.p(f));
        let es = g.uuid_edges(&p, "write", &u);
        assert_eq!(es.len(), 1, "{}", g.dump());
        assert_eq!(
            (es[0].call.as_deref(), es[0].offset),
            (Some(call), Some(len)),
            "{f}: truncate edge"
        );
    }
    let m = g.uuid_of("file", &w.p("m.txt"));
    assert_eq!(
        edge_calls(g, &p, "chmod", &m),
        set(&["chmod", "fchmod", "fchmodat"]),
        "{}",
        g.dump()
    );
    assert_eq!(
        edge_calls(g, &p, "chown", &m),
        set(&["chown", "fchown", "fchownat"]),
        "{}",
        g.dump()
    );
    let ln = g.uuid_of("symlink", &w.p("ln"));
    assert_eq!(
        edge_calls(g, &p, "chown", &ln),
        set(&["lchown"]),
        "lchown changes the link itself\n{}",
        g.dump()
    );

    let evs = rec.events();
    let tr: Vec<(String, String, bool, u64)> = ok_ops(&evs, "Truncate")
        .into_iter()
        .map(|(e, b)| {
            (
                ev_call(e),
                obj_path(&b["obj"]).unwrap_or("?").to_string(),
                !b["fd"].is_null(),
                b["length"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(
        tr,
        vec![
            ("truncate".into(), w.p("t1.txt"), false, 10),
            ("ftruncate".into(), w.p("t2.txt"), true, 20)
        ],
        "Truncate events (call, path, by fd, length)\n{}",
        fmt_events(&evs)
    );
    let ch: Vec<(String, String, u64)> = ok_ops(&evs, "Chmod")
        .into_iter()
        .map(|(e, b)| {
            (
                ev_call(e),
                obj_path(&b["obj"]).unwrap_or("?").to_string(),
                b["mode"].as_u64().unwrap_or(0) & 0o7777,
            )
        })
        .collect();
    let mp = w.p("m.txt");
    assert_eq!(
        ch,
        vec![
            ("chmod".into(), mp.clone(), 0o600),
            ("fchmod".into(), mp.clone(), 0o640),
            ("fchmodat".into(), mp.clone(), 0o604)
        ],
        "Chmod events\n{}",
        fmt_events(&evs)
    );
    let (uid, gid) = ids();
    let co: Vec<(String, String, String, u64, u64)> = ok_ops(&evs, "Chown")
        .into_iter()
        .map(|(e, b)| {
            (
                ev_call(e),
                obj_path(&b["obj"]).unwrap_or("?").to_string(),
                b["obj"]["kind"].as_str().unwrap_or("?").to_string(),
                b["uid"].as_u64().unwrap_or(9),
                b["gid"].as_u64().unwrap_or(9),
            )
        })
        .collect();
    let f = |c: &str, p: &str, k: &str| (c.to_string(), p.to_string(), k.to_string(), uid, gid);
    assert_eq!(
        co,
        vec![
            f("chown", &mp, "File"),
            f("fchown", &mp, "File"),
            f("fchownat", &mp, "File"),
            f("lchown", &w.p("ln"), "Symlink")
        ],
        "Chown events (call, path, kind, uid, gid)\n{}",
        fmt_events(&evs)
    );
}

/// Real uid and gid of the test process (from /proc/self/status).
fn ids() -> (u64, u64) {
    let s = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let field = |k: &str| -> u64 {
        s.lines()
            .find_map(|l| l.strip_prefix(k))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {k} in /proc/self/status"))
    };
    (field("Uid:"), field("Gid:"))
}

#[test]
fn setuid_family() {
    let (w, rec) = case("proc_setid", &|_| {}, &[], 0);
    assert_flows(
        rec.graph(),
        &w,
        &Scope::new(&w, &["proc_setid"]),
        &[&load("proc_setid")],
        &[],
    );
    let (uid, gid) = ids();
    let other = if uid == 0 { 65534 } else { uid };
    let m = u32::MAX as u64;
    let evs = rec.events();
    let got: Vec<(String, Vec<u64>)> = ok_ops(&evs, "SetId")
        .into_iter()
        .map(|(e, b)| {
            (
                ev_call(e),
                b["ids"]
                    .as_array()
                    .map(|a| a.iter().filter_map(Value::as_u64).collect())
                    .unwrap_or_default(),
            )
        })
        .collect();
    let calls: Vec<&str> = got.iter().map(|(c, _)| c.as_str()).collect();
    assert_eq!(
        calls,
        [
            "setresuid",
            "setresuid",
            "setuid",
            "setreuid",
            "setgid",
            "setregid",
            "setresgid"
        ],
        "SetId events\n{}",
        fmt_events(&evs)
    );
    assert_eq!(got[0].1, vec![m, other, m], "setresuid(-1, {other}, -1)");
    assert_eq!(got[1].1, vec![m, uid, m]);
    assert_eq!(got[2].1.first(), Some(&uid));
    assert_eq!(&got[3].1[..2], &[m, m]);
    assert_eq!(got[4].1.first(), Some(&gid));
    assert_eq!(&got[5].1[..2], &[m, m]);
    assert_eq!(got[6].1, vec![m, m, m]);
    // The credentials of later events follow the changes.
    let cred = |name: &str| -> (u64, u64) {
        let e = evs
            .iter()
            .find(|e| {
                ev_call(e) == "openat" && op_of(e).1["obj"]["path"].as_str() == Some(&w.p(name))
            })
            .unwrap_or_else(|| panic!("no failed openat of {name}\n{}", fmt_events(&evs)));
        (
            e["cred"]["uid"].as_u64().unwrap_or(9),
            e["cred"]["euid"].as_u64().unwrap_or(9),
        )
    };
    assert_eq!(
        cred("missing1"),
        (uid, other),
        "euid after setresuid(-1, {other}, -1)"
    );
    assert_eq!(cred("missing2"), (uid, uid), "euid restored");
}

#[test]
fn chdir_fchdir_relative_paths() {
    let setup = |w: &Work| {
        w.mkdir("sub");
        w.mkdir("sub2");
    };
    let (w, rec) = case("fs_chdir", &setup, &[], 0);
    let g = rec.graph();
    assert_flows(
        g,
        &w,
        &Scope::new(&w, &["fs_chdir"]),
        &[
            &load("fs_chdir"),
            "process:fs_chdir spawn process:fs_chdir",
            "process:fs_chdir write file:$D/sub/rel.txt",
            "process:fs_chdir write file:$D/sub2/rel2.txt",
            "process:fs_chdir write file:$D/up.txt",
            "process:fs_chdir write file:$D/child.txt",
        ],
        &["dir:$D/sub", "dir:$D/sub2"],
    );
    assert_ne!(
        writer_of(g, &w.p("child.txt")),
        root_proc(g, "fs_chdir"),
        "the child inherits the cwd"
    );
    let evs = rec.events();
    let got: Vec<(String, String)> = ok_ops(&evs, "Chdir")
        .into_iter()
        .map(|(e, b)| (ev_call(e), b["path"].as_str().unwrap_or("").to_string()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("chdir".into(), w.p("sub")),
            ("fchdir".into(), w.p("sub2")),
            ("chdir".into(), w.d())
        ],
        "Chdir events (absolute paths)\n{}",
        fmt_events(&evs)
    );
}

// ───────────────────────────── sockets ─────────────────────────────

/// Checks shared by the client/server programs: the server (root process)
/// writes server.txt with what it received, the client (its child) writes
/// client.txt; data must flow client -> socket -> socket -> server and back.
fn check_client_server(w: &Work, rec: &Recording, name: &str, extra: &[&str]) -> (String, String) {
    let g = rec.graph();
    let mut want: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    want.extend([
        load(name),
        format!("process:{name} spawn process:{name}"),
        format!("process:{name} write socket"),
        "socket flow socket".to_string(),
        format!("socket read process:{name}"),
        format!("process:{name} write file:$D/server.txt"),
        format!("process:{name} write file:$D/client.txt"),
    ]);
    let want: Vec<&str> = want.iter().map(String::as_str).collect();
    assert_flows(g, w, &Scope::new(w, &[name]), &want, &[]);
    let server = root_proc(g, name);
    assert_eq!(writer_of(g, &w.p("server.txt")), server);
    let client = writer_of(g, &w.p("client.txt"));
    assert_ne!(client, server);
    let kinds = ["write", "flow", "read"];
    assert!(
        g.reaches_causally(&client, &g.uuid_of("file", &w.p("server.txt")), &kinds),
        "no causal path client -> socket -> socket -> server -> server.txt\n{}",
        g.dump()
    );
    assert!(
        g.reaches_causally(&server, &g.uuid_of("file", &w.p("client.txt")), &kinds),
        "no causal path server -> socket -> socket -> client -> client.txt\n{}",
        g.dump()
    );
    (server, client)
}

/// `(actor is server, call, dir, count, peer)` of socket Io events.
fn sock_io(evs: &[Value], server_pid: u64) -> Vec<(bool, String, String, u64, Value)> {
    ok_ops(evs, "Io")
        .into_iter()
        .filter(|(_, b)| b["obj"]["kind"] == "Socket")
        .map(|(e, b)| {
            (
                ev_pid(e) == server_pid,
                ev_call(e),
                b["dir"].as_str().unwrap_or("").to_string(),
                b["count"].as_u64().unwrap_or(0),
                b["sock"]["peer"].clone(),
            )
        })
        .collect()
}

/// Sum the counts of consecutive events with the same (actor, call, dir,
/// peer): a source may report a sendmmsg/recvmmsg per message or per call.
fn merge_io(v: Vec<(bool, String, String, u64, Value)>) -> Vec<(bool, String, String, u64, Value)> {
    let mut out: Vec<(bool, String, String, u64, Value)> = Vec::new();
    for x in v {
        match out.last_mut() {
            Some(l)
                if l.0 == x.0
                    && l.1 == x.1
                    && l.2 == x.2
                    && l.4 == x.4
                    && x.1.ends_with("mmsg") =>
            {
                l.3 += x.3
            }
            _ => out.push(x),
        }
    }
    out
}

#[test]
fn tcp_loopback() {
    let (w, rec) = case("net_tcp", &|_| {}, &[], 0);
    // The client prints the ports on stdout (a pipe to the test).
    check_client_server(&w, &rec, "net_tcp", &["process:net_tcp write pipe"]);
    let (sport, cport) = (
        printed_num(&rec.stdout, "server"),
        printed_num(&rec.stdout, "client"),
    );
    let (saddr, caddr) = (inet("127.0.0.1", sport), inet("127.0.0.1", cport));
    let evs = rec.events();
    let spid = ev_pid(&evs[0]);
    let sock = |v: &str| -> Vec<(bool, Value)> {
        ok_ops(&evs, v)
            .into_iter()
            .map(|(e, b)| (ev_pid(e) == spid, b.clone()))
            .collect()
    };
    let socks = sock("Socket");
    assert_eq!(socks.len(), 2, "two socket() calls\n{}", fmt_events(&evs));
    for (_, b) in &socks {
        assert_eq!(
            (
                b["sock"]["domain"].as_u64(),
                b["sock"]["sock_type"].as_u64()
            ),
            (Some(2), Some(1)),
            "AF_INET stream"
        );
    }
    let binds = sock("Bind");
    assert_eq!(binds.len(), 1);
    assert!(binds[0].0);
    assert_eq!(binds[0].1["addr"]["Inet"]["ip"], "127.0.0.1");
    let listens = sock("Listen");
    assert_eq!(
        (listens.len(), listens[0].1["backlog"].as_i64()),
        (1, Some(4))
    );
    let conns = sock("Connect");
    assert_eq!(conns.len(), 1);
    assert!(!conns[0].0, "the client connects");
    assert_eq!(
        conns[0].1["sock"]["peer"],
        saddr,
        "connect's peer\n{}",
        fmt_events(&evs)
    );
    assert_eq!(
        conns[0].1["sock"]["local"], caddr,
        "connect's local address"
    );
    let acc: Vec<(&Value, &Value)> = ok_ops(&evs, "Accept");
    assert_eq!(acc.len(), 1);
    assert_eq!(ev_call(acc[0].0), "accept");
    assert_eq!(
        acc[0].1["sock"]["local"], saddr,
        "accepted socket's local address"
    );
    assert_eq!(acc[0].1["sock"]["peer"], caddr, "accepted socket's peer");
    let io = merge_io(sock_io(&evs, spid));
    let want: Vec<(bool, String, String, u64, Value)> = vec![
        (false, "sendto".into(), "Write".into(), 5, saddr.clone()),
        (false, "sendmsg".into(), "Write".into(), 5, saddr.clone()),
        (true, "recvfrom".into(), "Read".into(), 5, caddr.clone()),
        (true, "recvmsg".into(), "Read".into(), 5, caddr.clone()),
        (true, "sendmmsg".into(), "Write".into(), 5, caddr.clone()),
        (false, "recvmmsg".into(), "Read".into(), 5, saddr.clone()),
    ];
    let sorted = |mut v: Vec<(bool, String, String, u64, Value)>| {
        v.sort_by_key(|x| format!("{x:?}"));
        v
    };
    // Client and server run concurrently: compare per actor, in order.
    for side in [false, true] {
        let g: Vec<_> = io.iter().filter(|x| x.0 == side).cloned().collect();
        let wv: Vec<_> = want.iter().filter(|x| x.0 == side).cloned().collect();
        assert_eq!(
            sorted(g),
            sorted(wv),
            "socket Io (server?, call, dir, bytes, peer)\n{}",
            fmt_events(&evs)
        );
    }
}

#[test]
fn udp_loopback() {
    let (w, rec) = case("net_udp", &|_| {}, &[], 0);
    check_client_server(&w, &rec, "net_udp", &["process:net_udp write pipe"]);
    let (sport, cport) = (
        printed_num(&rec.stdout, "server"),
        printed_num(&rec.stdout, "client"),
    );
    let (saddr, caddr) = (inet("127.0.0.1", sport), inet("127.0.0.1", cport));
    let evs = rec.events();
    let spid = ev_pid(&evs[0]);
    let io = merge_io(sock_io(&evs, spid));
    let client: Vec<_> = io
        .iter()
        .filter(|x| !x.0)
        .map(|x| (x.1.clone(), x.2.clone(), x.3, x.4.clone()))
        .collect();
    let server: Vec<_> = io
        .iter()
        .filter(|x| x.0)
        .map(|x| (x.1.clone(), x.2.clone(), x.3, x.4.clone()))
        .collect();
    assert_eq!(
        client,
        vec![
            ("sendto".to_string(), "Write".to_string(), 5, saddr.clone()),
            ("sendmsg".into(), "Write".into(), 5, saddr.clone()),
            ("sendmmsg".into(), "Write".into(), 4, saddr.clone()),
            ("recvfrom".into(), "Read".into(), 5, saddr.clone()),
        ],
        "client socket Io (call, dir, bytes, peer)\n{}",
        fmt_events(&evs)
    );
    assert_eq!(
        server,
        vec![
            ("recvfrom".to_string(), "Read".to_string(), 5, caddr.clone()),
            ("recvmsg".into(), "Read".into(), 5, caddr.clone()),
            ("recvmmsg".into(), "Read".into(), 4, caddr.clone()),
            ("sendto".into(), "Write".into(), 5, caddr.clone()),
        ],
        "server socket Io (call, dir, bytes, peer)\n{}",
        fmt_events(&evs)
    );
    // The client's socket is bound implicitly by its first sendto (to
    // 0.0.0.0:PORT, as getsockname says): its local address must be known
    // from then on.
    let first_send = ok_ops(&evs, "Io")
        .into_iter()
        .find(|(e, _)| ev_pid(e) != spid)
        .expect("client Io");
    assert!(
        first_send.1["sock"]["local"] == inet("0.0.0.0", cport)
            || first_send.1["sock"]["local"] == caddr,
        "local address after autobind: {}",
        first_send.0
    );
    let conn = ok_ops(&evs, "Connect");
    assert_eq!(conn.len(), 1);
    assert_eq!(conn[0].1["sock"]["peer"], saddr);
    assert_eq!(
        conn[0].1["sock"]["sock_type"].as_u64(),
        Some(2),
        "SOCK_DGRAM"
    );
}

#[test]
fn unix_stream() {
    let (w, rec) = case("net_unix", &|_| {}, &[], 0);
    check_client_server(&w, &rec, "net_unix", &[]);
    let path = w.p("sock");
    let evs = rec.events();
    let spid = ev_pid(&evs[0]);
    let binds = ok_ops(&evs, "Bind");
    assert_eq!(binds.len(), 1);
    assert_eq!(
        binds[0].1["addr"],
        unix_addr(&path),
        "bind address\n{}",
        fmt_events(&evs)
    );
    let conns = ok_ops(&evs, "Connect");
    assert_eq!(conns.len(), 1);
    assert_eq!(
        conns[0].1["sock"]["peer"],
        unix_addr(&path),
        "connect's peer\n{}",
        fmt_events(&evs)
    );
    let acc = ok_ops(&evs, "Accept");
    assert_eq!(acc.len(), 1);
    assert_eq!(ev_call(acc[0].0), "accept4");
    assert_eq!(
        acc[0].1["sock"]["local"],
        unix_addr(&path),
        "accepted socket's local address"
    );
    let io = sock_io(&evs, spid);
    let calls = |server: bool| -> Vec<(String, String, u64)> {
        io.iter()
            .filter(|x| x.0 == server)
            .map(|x| (x.1.clone(), x.2.clone(), x.3))
            .collect()
    };
    assert_eq!(
        calls(false),
        vec![
            ("sendmsg".to_string(), "Write".to_string(), 5),
            ("write".into(), "Write".into(), 5),
            ("recvfrom".into(), "Read".into(), 5)
        ],
        "client socket Io\n{}",
        fmt_events(&evs)
    );
    assert_eq!(
        calls(true),
        vec![
            ("recvmsg".to_string(), "Read".to_string(), 5),
            ("read".into(), "Read".into(), 5),
            ("sendto".into(), "Write".into(), 5)
        ],
        "server socket Io\n{}",
        fmt_events(&evs)
    );
}

#[test]
fn socketpair_parent_to_child() {
    let (w, rec) = case("net_pair", &|_| {}, &[], 0);
    let g = rec.graph();
    assert_flows(
        g,
        &w,
        &Scope::new(&w, &["net_pair"]),
        &[
            &load("net_pair"),
            "process:net_pair spawn process:net_pair",
            "process:net_pair write socket",
            "socket flow socket",
            "socket read process:net_pair",
            "process:net_pair write file:$D/pair.txt",
        ],
        &[],
    );
    let evs = rec.events();
    let sp = ok_ops(&evs, "SocketPair");
    assert_eq!(sp.len(), 1, "{}", fmt_events(&evs));
    let inos: Vec<u64> = sp[0].1["objs"]
        .as_array()
        .expect("objs")
        .iter()
        .filter_map(|o| o["ino"].as_u64())
        .collect();
    assert_eq!(inos.len(), 2);
    assert_ne!(inos[0], inos[1], "two ends");
    let a = g.uuid_of("socket", &format!("socket:[{}]", inos[0]));
    let b = g.uuid_of("socket", &format!("socket:[{}]", inos[1]));
    assert_eq!(
        bytes(g, &a, "flow", &b),
        4,
        "4 bytes flow from sv[0] to sv[1]\n{}",
        g.dump()
    );
    let root = root_proc(g, "net_pair");
    assert!(g.reaches_causally(
        &root,
        &g.uuid_of("file", &w.p("pair.txt")),
        &["write", "flow", "read"]
    ));
}
