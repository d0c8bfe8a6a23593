//! What the oracle tests compare, shared by `oracle.rs` (Tomo against an
//! independent strace parser) and `strace_import.rs` (Tomo's own strace
//! importer against `tomo record`): the workloads, and the reduction of a
//! `tomo graph --json` to run-independent facts. See `oracle.rs` for what
//! the facts are.
#![allow(dead_code)]

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::process::Command;

pub const READ_CALLS: &[&str] = &["read", "pread64", "readv", "preadv", "preadv2"];
pub const WRITE_CALLS: &[&str] = &["write", "pwrite64", "writev", "pwritev", "pwritev2"];
pub const COPY_CALLS: &[&str] = &["sendfile", "splice", "copy_file_range"];

/// (realpath of exe, argv)
pub type Key = (String, Vec<String>);
/// Files read and written by one process.
pub type Access = (BTreeSet<String>, BTreeSet<String>);

#[derive(Debug, PartialEq, Eq, Default)]
pub struct Facts {
    pub executed: BTreeSet<String>,
    /// Per key, the sorted accesses of every process with that key.
    pub procs: BTreeMap<Key, Vec<Access>>,
}

/// A workload: how to populate its directory, and its command line.
pub struct Workload {
    pub name: &'static str,
    pub setup: Box<dyn Fn(&Path)>,
    pub argv: Vec<String>,
}

/// The environment both runs share.
pub fn prepare_env(cmd: &mut Command, dir: &Path) {
    cmd.current_dir(dir)
        .env("LC_ALL", "C")
        .env("TMPDIR", dir.join("tmp"))
        .env_remove("MAKEFLAGS")
        .env_remove("MFLAGS")
        .env_remove("MAKELEVEL")
        .env_remove("CARGO_MAKEFLAGS");
}

pub fn fresh_dir(root: &Path, wl: &Workload) -> std::path::PathBuf {
    let dir = root.join("w");
    if dir.exists() {
        std::fs::remove_dir_all(&dir).expect("remove workload dir");
    }
    std::fs::create_dir_all(dir.join("tmp")).expect("mkdir workload dir");
    (wl.setup)(&dir);
    dir
}

/// A readable listing of facts (shown with `--nocapture`).
pub fn describe(f: &Facts) -> String {
    let mut s = format!("  executed: {:?}\n", f.executed);
    for (k, v) in &f.procs {
        s.push_str(&format!("  {} {:?}\n", k.0, k.1));
        for (r, w) in v {
            s.push_str(&format!("      read {r:?}\n      wrote {w:?}\n"));
        }
    }
    s
}

// ───────────────────────────── normalization ─────────────────────────────

/// gcc's temporary names: `cc` + 6 random alphanumerics (+ extension).
pub fn normalize_temp(s: &str) -> String {
    s.split('/')
        .map(|seg| {
            // The segment may carry a prefix like "-fresolution=".
            let (pre, name) = match seg.rfind('=') {
                Some(i) => (&seg[..=i], &seg[i + 1..]),
                None => ("", seg),
            };
            let (stem, ext) = match name.find('.') {
                Some(i) => (&name[..i], &name[i..]),
                None => (name, ""),
            };
            if stem.len() == 8
                && stem.starts_with("cc")
                && stem[2..].chars().all(|c| c.is_ascii_alphanumeric())
            {
                format!("{pre}ccXXXXXX{ext}")
            } else {
                seg.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

pub fn canon(p: &str) -> String {
    let c = std::fs::canonicalize(p)
        .map(|c| c.to_string_lossy().into_owned())
        .unwrap_or_else(|_| p.to_string());
    normalize_temp(&c)
}

pub fn pseudo(p: &str) -> bool {
    p.starts_with("/proc/") || p.starts_with("/sys/")
}

pub fn key(exe: &str, argv: &[String]) -> Key {
    (canon(exe), argv.iter().map(|a| normalize_temp(a)).collect())
}

pub fn finish(executed: BTreeSet<String>, per: Vec<(Key, Access)>) -> Facts {
    let mut procs: BTreeMap<Key, Vec<Access>> = BTreeMap::new();
    for (k, a) in per {
        procs.entry(k).or_default().push(a);
    }
    for v in procs.values_mut() {
        v.sort();
    }
    Facts { executed, procs }
}

// ───────────────────────────── tomo side ─────────────────────────────

pub fn tomo_facts(graph: &Value) -> Facts {
    let nodes = graph["nodes"].as_array().expect("nodes");
    let by_id: HashMap<u64, &Value> = nodes
        .iter()
        .map(|n| (n["id"].as_u64().expect("id"), n))
        .collect();
    let kind = |n: &Value| n["kind"].as_str().unwrap_or("").to_string();
    // The latest version of each process entity names it.
    let mut last: HashMap<String, &Value> = HashMap::new();
    for n in nodes.iter().filter(|n| kind(n) == "process") {
        let u = n["uuid"].as_str().expect("uuid").to_string();
        let newer = last
            .get(&u)
            .is_none_or(|o| o["version"].as_u64() < n["version"].as_u64());
        if newer {
            last.insert(u, n);
        }
    }
    let mut acc: HashMap<String, Access> = last
        .keys()
        .map(|u| (u.clone(), Access::default()))
        .collect();
    let mut executed = BTreeSet::new();
    let path = |n: &Value| -> String { n["label"].as_str().unwrap_or("").to_string() };
    for e in graph["edges"].as_array().expect("edges") {
        let (s, d) = (
            by_id[&e["src"].as_u64().unwrap()],
            by_id[&e["dst"].as_u64().unwrap()],
        );
        let call = e["call"].as_str().unwrap_or("");
        match e["kind"].as_str().unwrap_or("") {
            "load" if call == "execve" || call == "execveat" => {
                executed.insert(canon(&path(s)));
            }
            "read"
                if kind(s) == "file"
                    && kind(d) == "process"
                    && (READ_CALLS.contains(&call)
                        || COPY_CALLS.contains(&call)
                        || call == "mmap")
                    && !pseudo(&path(s)) =>
            {
                let u = d["uuid"].as_str().unwrap().to_string();
                acc.entry(u).or_default().0.insert(canon(&path(s)));
            }
            "write" if kind(d) == "file" && kind(s) == "process" => {
                let ok = WRITE_CALLS.contains(&call)
                    || COPY_CALLS.contains(&call)
                    || ["mmap", "truncate", "ftruncate"].contains(&call);
                if ok && !pseudo(&path(d)) {
                    let u = s["uuid"].as_str().unwrap().to_string();
                    acc.entry(u).or_default().1.insert(canon(&path(d)));
                }
            }
            _ => {}
        }
    }
    let per = acc
        .into_iter()
        .map(|(u, a)| {
            let n = last[&u];
            let argv: Vec<String> = n["argv"]
                .as_array()
                .map(|v| {
                    v.iter()
                        .map(|x| x.as_str().unwrap_or("").to_string())
                        .collect()
                })
                .unwrap_or_default();
            (key(n["exe"].as_str().unwrap_or(""), &argv), a)
        })
        .collect();
    finish(executed, per)
}

// ───────────────────────────── workloads ─────────────────────────────

/// `make -s` of a small C project (3 objects, one link).
pub fn make_workload() -> Workload {
    Workload {
        name: "make",
        setup: Box::new(|d: &Path| {
            let w = |n: &str, s: &str| std::fs::write(d.join(n), s).expect("write");
            w(
                "util.h",
                "#ifndef UTIL_H\n#define UTIL_H\nint twice(int x);\nint square(int x);\n#endif\n",
            );
            w(
                "util.c",
                "#include \"util.h\"\nint twice(int x) { return 2 * x; }\n",
            );
            w(
                "square.c",
                "#include \"util.h\"\nint square(int x) { return x * x; }\n",
            );
            w(
            "main.c",
            "#include <stdio.h>\n#include \"util.h\"\nint main(void) { printf(\"%d\\n\", twice(square(3))); return 0; }\n",
        );
            w(
            "Makefile",
            "CC = gcc\nCFLAGS = -O1 -pipe\nOBJS = main.o util.o square.o\n\nprog: $(OBJS)\n\t$(CC) $(CFLAGS) -o prog $(OBJS)\n\n%.o: %.c util.h\n\t$(CC) $(CFLAGS) -c $<\n",
        );
        }),
        argv: vec!["make".into(), "-s".into()],
    }
}

/// `sh -c 'tar c input | gzip > out.tgz'`.
pub fn tar_gzip_workload() -> Workload {
    Workload {
        name: "tar | gzip",
        setup: Box::new(|d: &Path| {
            for (n, s) in [
                ("input/a.txt", "alpha\n"),
                ("input/b.txt", "bravo\n"),
                ("input/sub/c.txt", "charlie\n"),
            ] {
                let p = d.join(n);
                std::fs::create_dir_all(p.parent().unwrap()).expect("mkdir");
                std::fs::write(p, s).expect("write");
            }
        }),
        argv: vec![
            "sh".into(),
            "-c".into(),
            "tar c input | gzip > out.tgz".into(),
        ],
    }
}
