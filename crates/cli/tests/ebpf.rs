//! The eBPF agent (issue #3): `tomo agent --source ebpf` captures the whole
//! host as root. One agent session runs the pipeline workload and a set of
//! the coverage programs natively; the recording must answer `why out.tgz`
//! like `tomo record` does, give each coverage program the same flow
//! triples as its ptrace recording, and report its lost-record counter (0
//! in these light workloads).
//!
//! Needs root and a kernel with BTF; CI runs as root, so these tests do not
//! skip. The committed BPF object must match its source (checked by
//! rebuilding it with clang when clang and bpftool are installed, as in CI).

mod common;
mod oracle_facts;

use common::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;

/// Agents capture the whole host: run one session at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// Flow triples in `scope`, with the work directory written as `$D`.
/// Every pipe and socket is in a scope, so on a system-wide recording the
/// pipe-to-pipe and socket-to-socket flows of other processes would be
/// too: only triples with a process or file end are compared.
fn triples(g: &Graph, w: &Work, scope: &Scope) -> BTreeSet<String> {
    let ipc = |e: &str| e == "pipe" || e == "socket";
    g.flow_triples(scope)
        .into_iter()
        .filter(|(a, _, b)| !(ipc(a) && ipc(b)))
        .map(|(a, k, b)| format!("{a} {k} {b}").replace(&w.d(), "$D"))
        .collect()
}

/// Data edges (read/write) on files of the scope with their call, byte
/// count and offset: the details the triples do not show.
fn file_io(g: &Graph, w: &Work, scope: &Scope) -> BTreeSet<String> {
    let file = |e: &str| e.starts_with("file:");
    g.edges
        .iter()
        .filter(|e| e.kind == "read" || e.kind == "write")
        .filter(|e| scope.contains(g.node(e.src)) && scope.contains(g.node(e.dst)))
        .map(|e| (g.triple(e), e))
        .filter(|((a, _, b), _)| file(a) || file(b))
        .map(|((a, k, b), e)| {
            format!(
                "{a} {k} {b} call={:?} bytes={:?} offset={:?}",
                e.call, e.bytes, e.offset
            )
            .replace(&w.d(), "$D")
        })
        .collect()
}

/// A coverage program run under both recorders.
struct Prog {
    name: &'static str,
    args: &'static [&'static str],
    /// Exit status it must have (natively and recorded).
    code: i32,
    /// Process names of its graph scope.
    procs: &'static [&'static str],
    /// The files its directory starts with (as in tests/coverage.rs).
    setup: fn(&Work),
}

const fn prog(name: &'static str, setup: fn(&Work)) -> Prog {
    Prog {
        name,
        args: &[],
        code: 0,
        procs: &[],
        setup,
    }
}

fn coverage_programs() -> Vec<Prog> {
    let exec = |variant: &'static [&'static str]| Prog {
        args: variant,
        procs: &["proc_exec", "exec_target"],
        ..prog("proc_exec", |w| drop(w.compile("exec_target")))
    };
    vec![
        prog("proc_fork", |_| {}),
        prog("proc_thread", |_| {}),
        exec(&["execve"]),
        exec(&["execveat"]),
        exec(&["execveat_empty"]),
        Prog {
            code: 7,
            ..prog("proc_exit", |_| {})
        },
        prog("proc_kill", |_| {}),
        prog("proc_setid", |_| {}),
        prog("fs_open", |w| {
            w.write("trunc.txt", "old contents");
            w.write("existing.txt", "x");
        }),
        prog("fs_fail", |w| {
            w.write("ro.txt", "ro");
            w.write("wo.txt", "wo");
        }),
        prog("fs_read", |w| w.write("in.txt", vec![b'r'; 8192])),
        prog("fs_write", |w| w.write("out.txt", "")),
        prog("fs_xfer", |w| {
            w.write("src.txt", vec![b's'; 4096]);
            for d in ["dst1.txt", "dst2.txt", "dst3.txt"] {
                w.write(d, "");
            }
        }),
        prog("fs_mmap", |w| {
            for f in ["lib.bin", "data.bin", "ro.bin", "cow.bin"] {
                w.write(f, vec![7u8; 8192]);
            }
        }),
        prog("fs_dup", |w| {
            w.write("out.txt", "");
            w.write("other.txt", "");
        }),
        prog("fs_rename", |w| {
            w.write("a.txt", "a");
            w.write("e.txt", "e");
            w.write("f.txt", "f");
        }),
        prog("fs_link", |w| w.write("a.txt", "a\n")),
        prog("fs_ns", |_| {}),
        prog("fs_meta", |w| {
            w.write("t1.txt", "1");
            w.write("t2.txt", "2");
            w.write("m.txt", "m");
            std::os::unix::fs::symlink("m.txt", w.dir.join("ln")).expect("symlink");
        }),
        prog("fs_chdir", |w| {
            w.mkdir("sub");
            w.mkdir("sub2");
        }),
        prog("ipc_pipe", |_| {}),
        prog("net_pair", |_| {}),
        prog("net_tcp", |_| {}),
        prog("net_udp", |_| {}),
        prog("net_unix", |_| {}),
    ]
}

const INPUTS: &[(&str, &str)] = &[
    ("input/a.txt", "alpha\n"),
    ("input/b.txt", "bravo bravo\n"),
    ("input/sub/c.txt", "charlie\n"),
];

fn labels(t: &Value, out: &mut BTreeSet<String>) {
    // A process is named by its binary (`sh` is dash here) and its argv[0].
    for l in [&t["node"]["label"], &t["node"]["argv"][0]] {
        if let Some(l) = l.as_str() {
            out.insert(l.to_string());
        }
    }
    for c in t["children"].as_array().into_iter().flatten() {
        labels(c, out);
    }
}

#[test]
fn agent_matches_ptrace_system_wide() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // The ptrace recordings come first: the agent must not see them.
    let mut cases = Vec::new();
    for p in coverage_programs() {
        let procs: Vec<&str> = if p.procs.is_empty() {
            vec![p.name]
        } else {
            p.procs.to_vec()
        };
        let (pw, prec) = case(p.name, &p.setup, p.args, p.code);
        let scope = Scope::new(&pw, &procs);
        let want = (
            triples(prec.graph(), &pw, &scope),
            file_io(prec.graph(), &pw, &scope),
        );
        assert!(
            !want.0.is_empty(),
            "{}: the ptrace recording has no flows",
            p.name
        );
        let w = Work::new();
        (p.setup)(&w);
        let bin = w.compile(p.name);
        cases.push((p, procs, w, bin, want));
    }
    let pipe_w = Work::new();
    for (p, s) in INPUTS {
        pipe_w.write(p, s);
    }

    let session = Work::new();
    let agent = AgentRun::start("ebpf", &session, &[]);
    let o = run(
        Command::new("sh")
            .current_dir(&pipe_w.dir)
            .args(["-c", "tar c input | gzip > out.tgz"]),
        TIMEOUT,
    );
    assert!(o.status.success(), "the pipeline failed natively");
    for (p, _, w, bin, _) in &cases {
        let o = run(
            Command::new(bin)
                .current_dir(&w.dir)
                .arg(w.d())
                .args(p.args),
            TIMEOUT,
        );
        assert_eq!(exit_code(&o.status), p.code, "{}: {o:?}", p.name);
    }
    let summary = agent.stop();
    let host = session.p("host.tomo");

    // Loss is reported, and there is none in these light workloads.
    assert_eq!(
        summary["lost_records"].as_u64(),
        Some(0),
        "lost-record counter: {summary}"
    );
    assert!(
        summary["events"].as_u64().unwrap_or(0) > 0,
        "no events: {summary}"
    );

    // why out.tgz: gzip, tar, sh and every input file.
    let why = tomo_json(&["why", &host, &pipe_w.p("out.tgz"), "--json"]);
    let mut got = BTreeSet::new();
    labels(&why["root"], &mut got);
    let mut missing = Vec::new();
    for want in ["gzip", "tar", "sh"] {
        if !got.iter().any(|l| l == want) {
            missing.push(want.to_string());
        }
    }
    for (p, _) in INPUTS {
        let p = pipe_w.p(p);
        if !got.contains(&p) {
            missing.push(p);
        }
    }

    // Same flow triples as the ptrace recording, program by program.
    let g = Graph::from_json(&tomo_json(&["graph", &host, "--json"]));
    let mut report = String::new();
    if !missing.is_empty() {
        report.push_str(&format!(
            "why out.tgz misses {missing:?}; it names {got:?}\n"
        ));
    }
    for (p, procs, w, _, (want, want_io)) in &cases {
        let scope = Scope::new(w, procs);
        let have = triples(&g, w, &scope);
        if &have != want {
            report.push_str(&format!(
                "{} {:?}: triples differ from the ptrace recording\n  missing: {:?}\n  extra:   {:?}\n",
                p.name,
                p.args,
                want.difference(&have).collect::<Vec<_>>(),
                have.difference(want).collect::<Vec<_>>()
            ));
        }
        let have_io = file_io(&g, w, &scope);
        if &have_io != want_io {
            report.push_str(&format!(
                "{} {:?}: file I/O (call, bytes, offset) differs from the ptrace recording\n  missing: {:#?}\n  extra:   {:#?}\n",
                p.name,
                p.args,
                want_io.difference(&have_io).collect::<Vec<_>>(),
                have_io.difference(want_io).collect::<Vec<_>>()
            ));
        }
    }
    assert!(report.is_empty(), "{report}");
}

/// The committed object is what the committed source compiles to: the
/// hash recorded by build.sh matches, and (with clang and bpftool
/// installed, as in CI) the source still compiles.
#[test]
fn committed_bpf_object_is_current() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../capture-ebpf/bpf");
    // sha256sum of the concatenation, computed by the shell to match build.sh.
    let o = run(
        Command::new("sh")
            .current_dir(&dir)
            .args(["-c", "cat tomo.bpf.c build.sh | sha256sum | cut -d' ' -f1"]),
        TIMEOUT,
    );
    assert!(o.status.success());
    let now = String::from_utf8_lossy(&o.stdout).trim().to_string();
    let recorded = std::fs::read_to_string(dir.join("tomo.bpf.src.sha256"))
        .expect("tomo.bpf.src.sha256")
        .trim()
        .to_string();
    assert_eq!(
        now, recorded,
        "bpf/tomo.bpf.o is stale: run crates/capture-ebpf/bpf/build.sh and commit the object"
    );
    let have = |b: &str| {
        Command::new("sh")
            .args(["-c", &format!("command -v {b}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if have("clang") && have("bpftool") {
        let tmp = Work::new();
        let out = tmp.p("tomo.bpf.o");
        let o = run(Command::new(dir.join("build.sh")).arg(&out), TIMEOUT);
        assert!(
            o.status.success(),
            "tomo.bpf.c no longer compiles:\n{}",
            String::from_utf8_lossy(&o.stderr)
        );
    } else {
        eprintln!("clang/bpftool not installed: compiled-source check skipped (CI installs them)");
    }
}

/// The oracle workloads (a make build with gcc, `tar c | gzip`, forked
/// workers) run natively while the agent captures the host: for every
/// process of the workload, the programs executed and the files each read
/// and wrote equal what `tomo record` of the same workload in the same
/// directory gives (which `oracle.rs` checks against `strace -f`).
/// System-wide, the recording also holds other processes; the comparison
/// takes the workload's processes by their (program, argv) keys.
#[test]
fn agent_matches_the_oracle_workloads_system_wide() {
    let bin_dir = Work::new();
    let workers = bin_dir.compile_dynamic("oracle_workers");
    let workloads = vec![
        oracle_facts::make_workload(),
        oracle_facts::tar_gzip_workload(),
        oracle_facts::Workload {
            name: "forked workers",
            setup: Box::new(|d: &Path| std::fs::write(d.join("in.txt"), "input\n").expect("write")),
            argv: vec![workers, ".".into()],
        },
    ];
    let root_tmp = tempfile::Builder::new()
        .prefix("tomo-ebpf-oracle-")
        .tempdir()
        .expect("tempdir");
    let root = root_tmp.path().canonicalize().expect("canonicalize");
    let mut report = String::new();
    for wl in workloads {
        // 1. tomo record.
        let rec = root.join("run.tomo");
        let dir = oracle_facts::fresh_dir(&root, &wl);
        let mut cmd = Command::new(tomo_bin());
        cmd.arg("record")
            .arg("-o")
            .arg(&rec)
            .arg("--")
            .args(&wl.argv);
        oracle_facts::prepare_env(&mut cmd, &dir);
        let o = run(&mut cmd, TIMEOUT);
        assert!(o.status.success(), "{}: tomo record failed: {o:?}", wl.name);
        let want =
            oracle_facts::tomo_facts(&tomo_json(&["graph", rec.to_str().unwrap(), "--json"]));
        assert!(!want.procs.is_empty(), "{}: nothing recorded", wl.name);

        // 2. The same workload, natively, in the same (fresh) directory,
        // under the system-wide agent.
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let session = Work::new();
        let dir = oracle_facts::fresh_dir(&root, &wl);
        let agent = AgentRun::start("ebpf", &session, &[]);
        let mut cmd = Command::new(&wl.argv[0]);
        cmd.args(&wl.argv[1..]);
        oracle_facts::prepare_env(&mut cmd, &dir);
        let o = run(&mut cmd, TIMEOUT);
        assert!(
            o.status.success(),
            "{}: the workload failed: {o:?}",
            wl.name
        );
        let summary = agent.stop();
        assert_eq!(summary["lost_records"].as_u64(), Some(0), "{summary}");
        let host = session.p("host.tomo");
        let got = oracle_facts::tomo_facts(&tomo_json(&["graph", &host, "--json"]));

        let missing: Vec<_> = want.executed.difference(&got.executed).collect();
        if !missing.is_empty() {
            report.push_str(&format!(
                "{}: programs executed under tomo record but not seen by the agent: {missing:?}\n",
                wl.name
            ));
        }
        for (k, accesses) in &want.procs {
            match got.procs.get(k) {
                Some(g) if g == accesses => {}
                other => report.push_str(&format!(
                    "{}: {k:?}\n  tomo record: {accesses:?}\n  agent:       {other:?}\n",
                    wl.name
                )),
            }
        }
    }
    assert!(report.is_empty(), "{report}");
}
