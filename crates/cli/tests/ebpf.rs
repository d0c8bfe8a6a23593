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

/// A network namespace of one test (`ip netns add`), with a name unique to
/// this run; deleted on drop.
struct NetNs {
    name: String,
}

impl NetNs {
    fn new(tag: &str) -> NetNs {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let name = format!("tomo-t-{tag}-{}-{nanos:x}", std::process::id());
        let o = run(Command::new("ip").args(["netns", "add", &name]), TIMEOUT);
        assert!(o.status.success(), "ip netns add {name}: {o:?}");
        NetNs { name }
    }

    fn path(&self) -> String {
        format!("/run/netns/{}", self.name)
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "delete", &self.name])
            .status();
    }
}

/// A 16-byte id as events and metadata carry it (a JSON array of bytes),
/// written as a UUID.
fn id_str(v: &Value) -> String {
    let b: Vec<u8> = v
        .as_array()
        .unwrap_or_else(|| panic!("not an id: {v}"))
        .iter()
        .map(|x| x.as_u64().expect("id byte") as u8)
        .collect();
    assert_eq!(b.len(), 16, "not an id: {v}");
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Many hosts on one kernel (issue #6): one agent per network namespace,
/// each with `--netns` and `--host-name`, records its own namespace's
/// workload (entered with `ip netns exec`, i.e. setns then exec), none of
/// the other namespace's and nothing of the root namespace's; each
/// recording and each of its events carries the UUIDv5 (DNS namespace) of
/// its host name and the machine's boot id.
#[test]
fn one_agent_per_network_namespace_records_only_its_host() {
    // UUIDv5 in the DNS namespace: python3 -c 'import uuid;
    // print(uuid.uuid5(uuid.NAMESPACE_DNS, "tomo-test-host-a"))'.
    const HOSTS: [(&str, &str); 2] = [
        ("tomo-test-host-a", "c6e77a19-173c-57ff-9493-eb087c89d0d8"),
        ("tomo-test-host-b", "a935558e-7e16-5d72-9936-fc2278e9aca2"),
    ];
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let nss = [NetNs::new("a"), NetNs::new("b")];
    let sessions = [Work::new(), Work::new()];
    let dirs = [Work::new(), Work::new()];
    let root_dir = Work::new();
    let agents: Vec<AgentRun> = (0..2)
        .map(|i| {
            AgentRun::start(
                "ebpf",
                &sessions[i],
                &["--netns", &nss[i].path(), "--host-name", HOSTS[i].0],
            )
        })
        .collect();
    // Each host writes its own marker file and copies it with cat (a
    // fork and an exec inside the namespace); a process of the root
    // namespace does the same meanwhile.
    let marker = |tag: &str| format!("tomo-netns-{tag}.txt");
    let copy = |tag: &str| format!("tomo-netns-{tag}-copy.txt");
    let script = |w: &Work, tag: &str| {
        format!(
            "echo host-{tag} > {m} && cat {m} > {c}",
            m = w.p(&marker(tag)),
            c = w.p(&copy(tag))
        )
    };
    for (i, tag) in ["a", "b"].into_iter().enumerate() {
        let o = run(
            Command::new("ip")
                .args(["netns", "exec", &nss[i].name, "sh", "-c"])
                .arg(script(&dirs[i], tag)),
            TIMEOUT,
        );
        assert!(o.status.success(), "host {tag}'s workload: {o:?}");
    }
    let o = run(
        Command::new("sh").args(["-c", &script(&root_dir, "root")]),
        TIMEOUT,
    );
    assert!(o.status.success(), "root namespace workload: {o:?}");
    let summaries: Vec<Value> = agents.into_iter().map(AgentRun::stop).collect();

    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .expect("boot_id")
        .trim()
        .to_string();
    let mut report = String::new();
    for (i, tag) in ["a", "b"].into_iter().enumerate() {
        let (name, want_host) = HOSTS[i];
        let s = &summaries[i];
        assert_eq!(s["lost_records"].as_u64(), Some(0), "{s}");
        assert_eq!(s["host"].as_str(), Some(want_host), "{s}");
        assert_eq!(s["host_name"].as_str(), Some(name), "{s}");
        let rec = sessions[i].p("host.tomo");
        let v = tomo_json(&["verify", &rec, "--json"]);
        assert_eq!(id_str(&v["meta"]["host"]), want_host, "{v}");
        assert_eq!(v["meta"]["host_name"].as_str(), Some(name), "{v}");
        assert_eq!(id_str(&v["meta"]["boot"]), boot, "{v}");
        assert!(
            tomo_ok(&["verify", &rec]).contains(&format!("{want_host} ({name})")),
            "tomo verify shows the host and its name"
        );

        let text = tomo_ok(&["events", &rec, "--json"]);
        let events: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("event JSON"))
            .collect();
        assert!(!events.is_empty(), "host {tag}: no events");
        let hosts: BTreeSet<String> = events.iter().map(|e| id_str(&e["host"])).collect();
        let boots: BTreeSet<String> = events.iter().map(|e| id_str(&e["boot"])).collect();
        assert_eq!(hosts, BTreeSet::from([want_host.to_string()]), "host {tag}");
        assert_eq!(boots, BTreeSet::from([boot.clone()]), "host {tag}");

        // Its own workload: the copy comes from the marker through cat.
        let why = tomo_json(&["why", &rec, &dirs[i].p(&copy(tag)), "--json"]);
        let mut got = BTreeSet::new();
        labels(&why["root"], &mut got);
        for want in ["cat".to_string(), dirs[i].p(&marker(tag))] {
            if !got.contains(&want) {
                report.push_str(&format!(
                    "host {tag}: why {} does not name {want}; it names {got:?}\n",
                    copy(tag)
                ));
            }
        }
        // Nothing of the other host's, nor of the root namespace's.
        let other = ["b", "a"][i];
        for (what, w, t) in [
            ("the other host's", &dirs[1 - i], other),
            ("the root namespace's", &root_dir, "root"),
        ] {
            for needle in [w.d(), marker(t), format!("host-{t}")] {
                if let Some(l) = text.lines().find(|l| l.contains(&needle)) {
                    report.push_str(&format!(
                        "host {tag}: the recording holds {what} workload ({needle}): {l}\n"
                    ));
                }
            }
        }
    }
    assert_ne!(summaries[0]["host"], summaries[1]["host"]);
    assert!(report.is_empty(), "{report}");
}

/// `--netns` names a network namespace, or the agent says why not before
/// it loads anything; the audit source has no such filter.
#[test]
fn netns_must_be_a_network_namespace() {
    let w = Work::new();
    let out = w.p("x.tomo");
    for (path, why) in [
        ("/proc/self/ns/mnt", "not a network namespace"),
        ("/proc/self/status", "not a namespace"),
        ("/nonexistent/tomo-netns", "No such file"),
    ] {
        let o = tomo(&["agent", "--netns", path, "-o", &out, "--duration", "0"]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            !o.status.success() && err.contains(path) && err.contains(why),
            "--netns {path}: {o:?}"
        );
    }
    let o = tomo(&[
        "agent",
        "--source",
        "audit",
        "--netns",
        "/proc/self/ns/net",
        "-o",
        &out,
    ]);
    assert!(
        !o.status.success() && String::from_utf8_lossy(&o.stderr).contains("--source ebpf"),
        "{o:?}"
    );
    assert!(!Path::new(&out).exists());
}
