//! Oracle test (issue #2): Tomo against strace, an independent tool.
//!
//! Each workload runs twice from the same starting state, in the same
//! directory path (rebuilt identically in between): once under
//! `strace -f -yy` and once under `tomo record`. Both runs are reduced to
//! run-independent facts and compared:
//!
//! 1. **Executed programs**: the set of binaries of successful `execve` /
//!    `execveat` calls (strace: the path argument of calls that returned 0;
//!    Tomo: the source of every `load` edge whose call is execve/execveat),
//!    each canonicalized with `realpath`.
//! 2. **Files read and written per process.** A process is keyed by the exe
//!    and argv of its last successful exec (or, if it never exec'd, the ones
//!    it inherited from its parent at fork); several processes with the same
//!    key (the forked workers) are compared as a multiset. For each process:
//!    - *read* = a successful (`ret >= 0`, 0 bytes included) `read`,
//!      `pread64`, `readv`, `preadv`, `preadv2` on a descriptor of the file;
//!      the source of a successful `sendfile`, `splice`, `copy_file_range`;
//!      or a successful `mmap` of the file with `PROT_READ` and without
//!      `PROT_EXEC` (an executable mapping is a code load, not counted).
//!      Tomo: `read` edges from a `file` node with one of these calls.
//!    - *written* = a successful `write`, `pwrite64`, `writev`, `pwritev`,
//!      `pwritev2` on a descriptor of the file; the destination of a
//!      successful `sendfile`, `splice`, `copy_file_range`; `truncate` /
//!      `ftruncate`; or an `mmap` with `MAP_SHARED` and `PROT_WRITE`.
//!      Tomo: `write` edges to a `file` node with one of these calls.
//!      (Writes implied by `open` with `O_CREAT`/`O_TRUNC` are left out on
//!      both sides: strace cannot tell whether an `O_CREAT` open created
//!      the file.)
//!    - Only regular files count: Tomo nodes of kind `file`; on the strace
//!      side, descriptors whose `-yy` annotation is an absolute path that
//!      is a regular file after the run (or no longer exists: a deleted
//!      temporary file). Paths under `/proc/` and `/sys/` are left out on
//!      both sides (per-process pseudo files).
//!    - Paths are canonicalized with `realpath` when they still exist, and
//!      gcc's random temporary names (`ccXXXXXX.ext`, in a `TMPDIR` inside
//!      the workload directory) are replaced by a fixed name, in paths and
//!      in argv.
//!
//! The strace output is parsed here, by hand, without any Tomo code.

mod common;
mod oracle_facts;

use common::*;
use oracle_facts::*;
use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::process::Command;

const STRACE: &str = "/usr/bin/strace";

fn require_tools() {
    for t in [
        STRACE,
        "/usr/bin/gcc",
        "/usr/bin/make",
        "/usr/bin/tar",
        "/usr/bin/gzip",
    ] {
        assert!(
            Path::new(t).exists(),
            "{t} is required by the oracle test (CI installs it)"
        );
    }
}

fn run_oracle(wl: Workload) {
    require_tools();
    let root_tmp = tempfile::Builder::new()
        .prefix("tomo-oracle-")
        .tempdir()
        .expect("tempdir");
    let root = root_tmp.path().canonicalize().expect("canonicalize");
    let trace = root.join("strace.txt");
    let rec = root.join("run.tomo");

    // 1. strace.
    let dir = fresh_dir(&root, &wl);
    let mut cmd = Command::new(STRACE);
    cmd.args(["-f", "-qq", "-v", "-s", "65535", "-yy", "-o"]).arg(&trace).args([
        "-e",
        "trace=%process,read,pread64,readv,preadv,preadv2,write,pwrite64,writev,pwritev,pwritev2,\
         sendfile,splice,copy_file_range,mmap,truncate,ftruncate",
        "--",
    ]);
    cmd.args(&wl.argv);
    prepare_env(&mut cmd, &dir);
    let o = run(&mut cmd, TIMEOUT);
    assert!(
        o.status.success(),
        "{}: the workload failed under strace: {}\n{}",
        wl.name,
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    let text = std::fs::read_to_string(&trace).expect("read strace output");
    let want = strace_facts(&text, &dir);

    // 2. tomo record, in the same path, rebuilt from scratch.
    let dir = fresh_dir(&root, &wl);
    let mut cmd = Command::new(tomo_bin());
    cmd.arg("record")
        .arg("-o")
        .arg(&rec)
        .arg("--")
        .args(&wl.argv);
    prepare_env(&mut cmd, &dir);
    let o = run(&mut cmd, TIMEOUT);
    assert!(
        o.status.success(),
        "{}: the workload failed under tomo record: {}\n{}",
        wl.name,
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    let rec_s = rec.to_str().expect("utf-8 path");
    let got = tomo_facts(&tomo_json(&["graph", rec_s, "--json"]));

    assert!(
        !want.executed.is_empty() && !want.procs.is_empty(),
        "strace saw nothing:\n{text}"
    );
    eprintln!("{}: strace facts:\n{}", wl.name, describe(&want));
    assert_set_eq(
        &format!("{}: executed programs (tomo vs strace)", wl.name),
        &got.executed,
        &want.executed,
    );
    let mut report = String::new();
    let keys: BTreeSet<&Key> = got.procs.keys().chain(want.procs.keys()).collect();
    for k in keys {
        let (g, w) = (got.procs.get(k), want.procs.get(k));
        if g == w {
            continue;
        }
        report.push_str(&format!("process {} {:?}:\n", k.0, k.1));
        match (g, w) {
            (None, _) => report.push_str("    only seen by strace\n"),
            (_, None) => report.push_str("    only seen by tomo\n"),
            (Some(g), Some(w)) if g.len() != w.len() => report.push_str(&format!(
                "    {} processes in tomo, {} in strace\n",
                g.len(),
                w.len()
            )),
            (Some(g), Some(w)) => {
                for (i, (ga, wa)) in g.iter().zip(w).enumerate() {
                    for (what, gs, ws) in [("read", &ga.0, &wa.0), ("written", &ga.1, &wa.1)] {
                        for x in ws.difference(gs) {
                            report.push_str(&format!("    [{i}] {what}: missing in tomo: {x}\n"));
                        }
                        for x in gs.difference(ws) {
                            report.push_str(&format!("    [{i}] {what}: only in tomo:    {x}\n"));
                        }
                    }
                }
            }
        }
    }
    assert!(
        report.is_empty(),
        "{}: per-process file sets differ (tomo vs strace)\n{report}",
        wl.name
    );
}

// ───────────────────────────── strace side ─────────────────────────────

/// One strace call line: pid, name, top-level arguments, return value text.
struct Call {
    pid: u32,
    name: String,
    args: Vec<String>,
    ret: String,
}

impl Call {
    fn ok(&self) -> bool {
        let r = self.ret.split_whitespace().next().unwrap_or("?");
        !r.starts_with('-') && r != "?"
    }
    fn ret_num(&self) -> Option<i64> {
        self.ret.split_whitespace().next()?.parse().ok()
    }
}

/// Split `name(args) = ret` into its parts, respecting strings, brackets and
/// `-yy` annotations (`3</path>`, `5<TCP:[a->b]>`).
fn parse_call(pid: u32, s: &str) -> Option<Call> {
    let open = s.find('(')?;
    let name = s[..open].trim().to_string();
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return None;
    }
    let b = s.as_bytes();
    let mut stack: Vec<u8> = vec![b'('];
    let mut args = Vec::new();
    let mut cur = String::new();
    let mut i = open + 1;
    let mut in_str = false;
    while i < b.len() {
        let c = b[i];
        if in_str {
            cur.push(c as char);
            if c == b'\\' && i + 1 < b.len() {
                cur.push(b[i + 1] as char);
                i += 2;
                continue;
            }
            if c == b'"' {
                in_str = false;
            }
            i += 1;
            continue;
        }
        match c {
            b'"' => in_str = true,
            b'(' | b'[' | b'{' => stack.push(c),
            b'<' if i > 0 && b[i - 1].is_ascii_digit() => stack.push(c),
            b')' | b']' | b'}' | b'>' => {
                let want = match c {
                    b')' => b'(',
                    b']' => b'[',
                    b'}' => b'{',
                    _ => b'<',
                };
                if stack.last() == Some(&want) {
                    stack.pop();
                    if stack.is_empty() {
                        let t = cur.trim();
                        if !t.is_empty() {
                            args.push(t.to_string());
                        }
                        let rest = s[i + 1..].trim_start();
                        let ret = rest.strip_prefix('=')?.trim().to_string();
                        return Some(Call {
                            pid,
                            name,
                            args,
                            ret,
                        });
                    }
                }
            }
            b',' if stack.len() == 1 => {
                args.push(cur.trim().to_string());
                cur.clear();
                i += 1;
                continue;
            }
            _ => {}
        }
        cur.push(c as char);
        i += 1;
    }
    None
}

/// Decode a strace string literal (`"..."`, C escapes).
fn unquote(s: &str) -> String {
    let s = s.trim().trim_end_matches("...");
    let inner = s
        .strip_prefix('"')
        .and_then(|x| x.strip_suffix('"'))
        .unwrap_or(s);
    let b = inner.as_bytes();
    let mut out: Vec<u8> = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' || i + 1 >= b.len() {
            out.push(b[i]);
            i += 1;
            continue;
        }
        i += 1;
        match b[i] {
            b'n' => out.push(b'\n'),
            b't' => out.push(b'\t'),
            b'r' => out.push(b'\r'),
            b'v' => out.push(0x0b),
            b'f' => out.push(0x0c),
            b'x' => {
                let h = std::str::from_utf8(&b[i + 1..(i + 3).min(b.len())]).unwrap_or("0");
                out.push(u8::from_str_radix(h, 16).unwrap_or(b'?'));
                i += 2;
            }
            d if d.is_ascii_digit() => {
                let mut n = 0u32;
                let mut k = 0;
                while k < 3 && i < b.len() && b[i].is_ascii_digit() {
                    n = n * 8 + (b[i] - b'0') as u32;
                    i += 1;
                    k += 1;
                }
                out.push(n as u8);
                continue;
            }
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The path of a `-yy` descriptor annotation `N</path>`, if it is one.
fn fd_path(arg: &str) -> Option<String> {
    let open = arg.find('<')?;
    if !arg[..open].chars().all(|c| c.is_ascii_digit()) || open == 0 {
        return None;
    }
    let inner = arg[open + 1..].strip_suffix('>')?;
    let inner = inner.strip_suffix(" (deleted)").unwrap_or(inner);
    inner.starts_with('/').then(|| inner.to_string())
}

/// Split a strace array `["a", "b"]` into decoded strings.
fn str_array(s: &str) -> Vec<String> {
    let Some(c) = parse_call(
        0,
        &format!(
            "x({}) = 0",
            s.trim().trim_start_matches('[').trim_end_matches(']')
        ),
    ) else {
        return Vec::new();
    };
    c.args
        .iter()
        .filter(|a| !a.is_empty())
        .map(|a| unquote(a))
        .collect()
}

struct SProc {
    tgid: u32,
    key: Option<(String, Vec<String>)>,
}

fn strace_facts(text: &str, dir: &Path) -> Facts {
    // Join `<unfinished ...>` / `<... resumed>` halves, keep file order.
    let mut pending: HashMap<u32, String> = HashMap::new();
    let mut calls: Vec<Call> = Vec::new();
    for line in text.lines() {
        let Some((pid, rest)) = line.split_once(' ') else {
            continue;
        };
        let Ok(pid) = pid.parse::<u32>() else {
            continue;
        };
        let rest = rest.trim_start();
        if rest.starts_with("+++") || rest.starts_with("---") {
            continue;
        }
        let full = if let Some(r) = rest.strip_prefix("<... ") {
            let Some(i) = r.find(" resumed>") else {
                continue;
            };
            let Some(head) = pending.remove(&pid) else {
                continue;
            };
            format!("{head}{}", &r[i + " resumed>".len()..])
        } else if let Some(head) = rest.strip_suffix("<unfinished ...>") {
            pending.insert(pid, head.trim_end().to_string());
            continue;
        } else {
            rest.to_string()
        };
        if let Some(c) = parse_call(pid, &full) {
            calls.push(c);
        }
    }
    assert!(
        !calls.is_empty(),
        "no system calls parsed from the strace output:\n{text}"
    );
    let root = calls[0].pid;
    let mut procs: HashMap<u32, SProc> = HashMap::new();
    procs.insert(
        root,
        SProc {
            tgid: root,
            key: None,
        },
    );
    let mut order: Vec<u32> = vec![root];
    let mut executed = BTreeSet::new();
    let mut acc: HashMap<u32, Access> = HashMap::new();
    let regular = |p: &str| -> bool {
        if pseudo(p) {
            return false;
        }
        match std::fs::metadata(p) {
            Ok(m) => m.is_file(),
            Err(_) => true, // gone: a deleted temporary file
        }
    };
    let resolve = |p: &str| -> String {
        if p.starts_with('/') {
            p.to_string()
        } else {
            dir.join(p).to_string_lossy().into_owned()
        }
    };
    for c in &calls {
        let tgid = procs.get(&c.pid).map(|p| p.tgid).unwrap_or(c.pid);
        if !c.ok() {
            continue;
        }
        match c.name.as_str() {
            "fork" | "vfork" | "clone" | "clone3" => {
                let Some(child) = c.ret_num() else { continue };
                let child = child as u32;
                let thread = c.args.iter().any(|a| a.contains("CLONE_THREAD"));
                let parent_key = procs.get(&tgid).and_then(|p| p.key.clone());
                let entry = procs.entry(child).or_insert(SProc {
                    tgid: child,
                    key: None,
                });
                if thread {
                    entry.tgid = tgid;
                } else {
                    // The child may have exec'd already (its lines can come
                    // first); only fill in what it inherits.
                    if entry.key.is_none() {
                        entry.key = parent_key;
                    }
                    if !order.contains(&child) {
                        order.push(child);
                    }
                }
            }
            "execve" | "execveat" => {
                let (path_i, argv_i) = if c.name == "execve" { (0, 1) } else { (1, 2) };
                let exe = resolve(&unquote(&c.args[path_i]));
                let argv = str_array(&c.args[argv_i]);
                executed.insert(canon(&exe));
                let p = procs.entry(tgid).or_insert(SProc { tgid, key: None });
                p.key = Some((exe, argv));
                if !order.contains(&tgid) {
                    order.push(tgid);
                }
            }
            n if READ_CALLS.contains(&n) || WRITE_CALLS.contains(&n) => {
                if let Some(p) = c
                    .args
                    .first()
                    .and_then(|a| fd_path(a))
                    .filter(|p| regular(p))
                {
                    let a = acc.entry(tgid).or_default();
                    if READ_CALLS.contains(&n) {
                        &mut a.0
                    } else {
                        &mut a.1
                    }
                    .insert(canon(&p));
                }
            }
            "sendfile" | "splice" | "copy_file_range" => {
                let (src, dst) = if c.name == "sendfile" { (1, 0) } else { (0, 2) };
                let a = acc.entry(tgid).or_default();
                if let Some(p) = c
                    .args
                    .get(src)
                    .and_then(|x| fd_path(x))
                    .filter(|p| regular(p))
                {
                    a.0.insert(canon(&p));
                }
                if let Some(p) = c
                    .args
                    .get(dst)
                    .and_then(|x| fd_path(x))
                    .filter(|p| regular(p))
                {
                    a.1.insert(canon(&p));
                }
            }
            "mmap" => {
                let Some(p) = c
                    .args
                    .get(4)
                    .and_then(|x| fd_path(x))
                    .filter(|p| regular(p))
                else {
                    continue;
                };
                let prot = &c.args[2];
                let a = acc.entry(tgid).or_default();
                if prot.contains("PROT_READ") && !prot.contains("PROT_EXEC") {
                    a.0.insert(canon(&p));
                }
                if prot.contains("PROT_WRITE") && c.args[3].contains("MAP_SHARED") {
                    a.1.insert(canon(&p));
                }
            }
            "ftruncate" => {
                if let Some(p) = c
                    .args
                    .first()
                    .and_then(|a| fd_path(a))
                    .filter(|p| regular(p))
                {
                    acc.entry(tgid).or_default().1.insert(canon(&p));
                }
            }
            "truncate" => {
                let p = resolve(&unquote(&c.args[0]));
                if regular(&p) {
                    acc.entry(tgid).or_default().1.insert(canon(&p));
                }
            }
            _ => {}
        }
    }
    let per = order
        .iter()
        .filter(|pid| procs[pid].tgid == **pid)
        .map(|pid| {
            let (exe, argv) = procs[pid].key.clone().unwrap_or_default();
            (key(&exe, &argv), acc.remove(pid).unwrap_or_default())
        })
        .collect();
    finish(executed, per)
}

// ───────────────────────────── workloads ─────────────────────────────

#[test]
fn strace_parser_self_check() {
    let c = parse_call(7, r#"read(3</tmp/a b.txt>, "x\"y\n", 4096) = 4"#).expect("parse");
    assert_eq!((c.pid, c.name.as_str(), c.ret.as_str()), (7, "read", "4"));
    assert_eq!(fd_path(&c.args[0]).as_deref(), Some("/tmp/a b.txt"));
    assert_eq!(unquote(&c.args[1]), "x\"y\n");
    let c = parse_call(1, "write(5<TCP:[127.0.0.1:1->127.0.0.1:2]>, \"a\", 1) = 1").expect("parse");
    assert_eq!(c.args.len(), 3);
    assert_eq!(fd_path(&c.args[0]), None);
    let c = parse_call(
        1,
        r#"execve("/bin/x", ["x", "a,b", "\303\251"], ["A=1"]) = 0"#,
    )
    .expect("parse");
    assert_eq!(str_array(&c.args[1]), ["x", "a,b", "é"]);
    let c = parse_call(1, "vfork()              = 12").expect("parse");
    assert_eq!(c.ret_num(), Some(12));
    let c = parse_call(
        1,
        "openat(AT_FDCWD, \"/x\", O_RDONLY) = -1 ENOENT (No such file or directory)",
    )
    .unwrap();
    assert!(!c.ok());
    assert_eq!(normalize_temp("/w/tmp/ccAb12Cd.res"), "/w/tmp/ccXXXXXX.res");
    assert_eq!(
        normalize_temp("-plugin-opt=-fresolution=/w/tmp/ccAb12Cd.res"),
        "-plugin-opt=-fresolution=/w/tmp/ccXXXXXX.res"
    );
    assert_eq!(normalize_temp("/w/ccache.c"), "/w/ccache.c");
}

#[test]
fn oracle_make_build() {
    run_oracle(make_workload());
}

#[test]
fn oracle_tar_gzip_pipeline() {
    run_oracle(tar_gzip_workload());
}

#[test]
fn oracle_forked_workers() {
    require_tools();
    // The program is compiled once, outside both runs.
    let bin_dir = Work::new();
    let bin = bin_dir.compile_dynamic("oracle_workers");
    run_oracle(Workload {
        name: "forked workers",
        setup: Box::new(|d: &Path| std::fs::write(d.join("in.txt"), "input\n").expect("write")),
        // "." as the program's directory: it runs in the workload directory.
        argv: vec![bin, ".".into()],
    });
}
