//! The real auditd, with Tomo's rules, while a shell workload runs: its log
//! must parse into the lineage the workload implies.
//!
//! Needs root and auditd (`apt-get install auditd`; .ci/run installs it).
//! It fails, never skips silently, when either is missing; set
//! `TOMO_SKIP_AUDITD=1` to skip it on purpose. The rules only match the
//! workload (`-F auid=`, a login uid set in the workload's shell), and are
//! removed, auditd stopped and the kernel's enabled flag restored when the
//! test ends, even by a panic. Like every test that uses the kernel's audit
//! state (crates/cli/tests/audit_agent.rs), it holds an exclusive flock on
//! `/run/tomo-audit-tests.lock` while it runs.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tomo_event::Op;
use tomo_store::Graph;

const AUID: &str = "424242";
const SYSCALLS: &str = "clone,clone3,fork,vfork,execve,execveat,exit_group,kill,tgkill,\
open,openat,openat2,creat,rename,renameat,renameat2,link,linkat,symlink,symlinkat,\
unlink,unlinkat,rmdir,mkdir,mkdirat,truncate,ftruncate,chmod,fchmodat,chown,fchownat,chdir,\
close,dup,dup2,dup3,fcntl,pipe,pipe2,lseek,mmap,read,pread,readv,write,pwrite,writev,\
sendfile,splice,copy_file_range,socket,socketpair,bind,listen,connect,accept,accept4";

fn rule(op: &str) -> Vec<String> {
    [
        op,
        "always,exit",
        "-F",
        "arch=b64",
        "-S",
        SYSCALLS,
        "-F",
        &format!("auid={AUID}"),
        "-k",
        "tomo-test",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// Serializes the tests of all test binaries that use the kernel's one
/// audit daemon slot and rule list; held until dropped.
struct AuditLock {
    _file: std::fs::File,
}

fn lock() -> AuditLock {
    use std::os::fd::AsRawFd;
    let path = "/run/tomo-audit-tests.lock";
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .unwrap_or_else(|e| panic!("cannot open {path}: {e}"));
    // SAFETY: flock on a descriptor this File owns; no memory is involved.
    let r = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) };
    assert_eq!(r, 0, "flock {path}: {}", std::io::Error::last_os_error());
    AuditLock { _file: f }
}

fn auditctl(args: &[String]) -> std::process::Output {
    Command::new("auditctl")
        .args(args)
        .output()
        .expect("running auditctl")
}

fn status(key: &str) -> Option<i64> {
    let out = auditctl(&["-s".into()]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key} ")))
        .and_then(|v| v.trim().parse().ok())
}

/// Undo everything on the way out, panics included.
struct Cleanup {
    daemon: Option<Child>,
    rule: bool,
    enabled: i64,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if self.rule {
            auditctl(&rule("-d"));
        }
        if let Some(d) = &mut self.daemon {
            let _ = Command::new("kill").arg(d.id().to_string()).status();
            let _ = d.wait();
        }
        auditctl(&["-e".into(), self.enabled.to_string()]);
    }
}

fn require_tools() {
    if std::env::var_os("TOMO_SKIP_AUDITD").is_some() {
        return;
    }
    for tool in ["auditd", "auditctl"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            found,
            "{tool} not found: install auditd (apt-get install auditd), or set TOMO_SKIP_AUDITD=1 to skip this test"
        );
    }
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|v| v.split_whitespace().nth(1))
        .unwrap_or("?");
    assert_eq!(
        uid, "0",
        "running auditd needs root (effective uid is {uid}); set TOMO_SKIP_AUDITD=1 to skip this test"
    );
}

fn write_conf(conf: &Path, log: &Path, plugins: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let text = format!(
        "local_events = yes\nwrite_logs = yes\nlog_file = {}\nlog_format = ENRICHED\n\
flush = INCREMENTAL_ASYNC\nfreq = 20\nmax_log_file = 50\nnum_logs = 2\npriority_boost = 0\n\
name_format = HOSTNAME\nmax_log_file_action = ROTATE\nspace_left = 2\nspace_left_action = IGNORE\n\
admin_space_left = 1\nadmin_space_left_action = IGNORE\ndisk_full_action = IGNORE\n\
disk_error_action = IGNORE\nplugin_dir = {}\nq_depth = 2000\noverflow_action = IGNORE\n\
end_of_event_timeout = 2\n",
        log.display(),
        plugins.display()
    );
    std::fs::create_dir_all(conf).unwrap();
    std::fs::set_permissions(conf, std::fs::Permissions::from_mode(0o700)).unwrap();
    let f = conf.join("auditd.conf");
    std::fs::write(&f, text).unwrap();
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
}

#[test]
fn real_auditd_workload() {
    if std::env::var_os("TOMO_SKIP_AUDITD").is_some() {
        eprintln!("real_auditd_workload: skipped because TOMO_SKIP_AUDITD is set");
        return;
    }
    require_tools();
    let _lock = lock();
    let running = status("pid").unwrap_or(0);
    assert_eq!(
        running, 0,
        "another audit daemon (pid {running}) owns the kernel's audit socket; stop it first"
    );
    let tmp = tempfile::tempdir().unwrap();
    let (conf, logdir, plugins, work) = (
        tmp.path().join("conf"),
        tmp.path().join("log"),
        tmp.path().join("plugins"),
        tmp.path().join("work"),
    );
    for d in [&logdir, &plugins, &work] {
        std::fs::create_dir_all(d).unwrap();
    }
    let log = logdir.join("audit.log");
    write_conf(&conf, &log, &plugins);

    let mut cleanup = Cleanup {
        daemon: None,
        rule: false,
        enabled: status("enabled").unwrap_or(0),
    };
    let daemon = Command::new("auditd")
        .arg("-n")
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting auditd");
    let pid = daemon.id() as i64;
    cleanup.daemon = Some(daemon);
    let t0 = Instant::now();
    while status("pid") != Some(pid) {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "auditd did not register with the kernel within 10 s (is audit available here?)"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = auditctl(&rule("-a"));
    assert!(
        out.status.success(),
        "auditctl -a failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    cleanup.rule = true;

    // The workload: its shell takes a login uid, which the rule matches.
    let script =
        "printf hello > a; cat a > b; cat b | tr a-z A-Z > c; mv c d; ln -s d e; mkdir sub; rm b";
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "echo {AUID} > /proc/self/loginuid && exec sh -c '{script}'"
        ))
        .current_dir(&work)
        .spawn()
        .unwrap();
    let top = child.id();
    let st = child.wait().unwrap();
    assert!(st.success(), "workload failed: {st}");
    // auditd writes asynchronously: wait for the workload's last call (its
    // shell's exit_group) to be in the log before stopping it.
    let t0 = Instant::now();
    let done = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text
            .lines()
            .any(|l| l.contains(" syscall=231 ") && l.contains(&format!(" pid={top} ")))
        {
            break true;
        }
        if t0.elapsed() > Duration::from_secs(10) {
            break false;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    drop(cleanup); // rules off, auditd stopped, audit flag restored
    assert!(done, "the workload's exit never reached {}", log.display());

    let text = std::fs::read(&log).unwrap();
    if let Some(keep) = std::env::var_os("TOMO_KEEP_AUDIT_LOG") {
        // For looking at what the real auditd wrote.
        std::fs::write(keep, &text).unwrap();
    }
    let (events, p) = tomo_source_audit::parse_text(
        &log.display().to_string(),
        &text,
        tomo_source_audit::Options::default(),
    );
    let stats = p.stats().clone();
    eprintln!("{stats:?}");
    assert!(p.warnings().is_empty(), "{:?}", p.warnings());
    assert_eq!(stats.bad_lines, 0);
    assert!(stats.events > 20, "{stats:?}");
    let w = work.display().to_string();
    let has = |f: &dyn Fn(&Op) -> bool| events.iter().any(|e| e.ok() && f(&e.op));
    assert!(
        has(&|o| matches!(o, Op::Exec { exe, argv, .. }
            if exe.path.as_deref().is_some_and(|p| p.ends_with("/cat")) && argv == &["cat", "a"])),
        "no exec of cat a"
    );
    assert!(has(&|o| matches!(o, Op::Rename { old_path, new_path, .. }
        if *old_path == format!("{w}/c") && *new_path == format!("{w}/d"))));
    assert!(has(
        &|o| matches!(o, Op::Link { symbolic: true, new_path, .. } if *new_path == format!("{w}/e"))
    ));
    assert!(has(
        &|o| matches!(o, Op::Mkdir { path, .. } if *path == format!("{w}/sub"))
    ));
    assert!(has(
        &|o| matches!(o, Op::Unlink { path, .. } if *path == format!("{w}/b"))
    ));

    // Lineage: d (tr's output, renamed) comes from a through b, cat and the pipe.
    let g = tomo_ingest::build(events.iter());
    assert!(g.is_acyclic());
    let d = entity(&g, &format!("{w}/d"));
    let a = entity(&g, &format!("{w}/a"));
    assert!(
        reaches_back(&g, d, a),
        "why(d) must reach a; stats {stats:?}"
    );
}

fn entity(g: &Graph, name: &str) -> u32 {
    *g.by_name(name)
        .first()
        .unwrap_or_else(|| panic!("no entity named {name}"))
}

fn reaches_back(g: &Graph, from: u32, to: u32) -> bool {
    let mut seen = std::collections::HashSet::new();
    let mut todo = vec![g.entities[from as usize].current()];
    while let Some(n) = todo.pop() {
        if g.nodes[n as usize].entity == to {
            return true;
        }
        if seen.insert(n) {
            todo.extend(g.in_edges(n).iter().map(|&e| g.edges[e as usize].src));
        }
    }
    false
}
