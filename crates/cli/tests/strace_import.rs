//! `tomo ingest --format strace` against `tomo record` (issue #5): the same
//! workload runs once under `strace -f -tt -yy` and once under `tomo record`,
//! from the same starting state in the same directory path, and the two
//! recordings must answer alike:
//!
//! 1. the oracle's facts (`oracle_facts`): programs executed, and the
//!    regular files each process read and wrote;
//! 2. `ps`: the process tree (exe, argv and parent of every process);
//! 3. `why` of the workload's output: the files of the workload directory
//!    and the programs its lineage reaches.
//!
//! Known differences, by design (strace shows less than the recorder):
//! files have no inode identity (the importer keys them by path), processes
//! no start time and no credentials, and descriptors inherited from before
//! the trace have no known position (offsets `None` until an lseek). None
//! of them changes the answers compared here.

mod common;
mod oracle_facts;

use common::*;
use oracle_facts::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

const STRACE: &str = "/usr/bin/strace";

/// `ps --json` reduced to run-independent facts: per process, its exe and
/// argv, and its parent's.
fn ps_facts(ps: &Value) -> Vec<(Key, Option<Key>)> {
    let rows = ps.as_array().expect("ps rows");
    let key_of = |r: &Value| -> Key {
        let argv: Vec<String> = r["argv"]
            .as_array()
            .map(|v| {
                v.iter()
                    .map(|x| x.as_str().unwrap_or("").to_string())
                    .collect()
            })
            .unwrap_or_default();
        key(r["exe"].as_str().unwrap_or(""), &argv)
    };
    let mut out: Vec<(Key, Option<Key>)> = rows
        .iter()
        .map(|r| {
            let parent = r["parent"].as_str().and_then(|p| {
                rows.iter()
                    .find(|x| x["uuid"].as_str() == Some(p))
                    .map(key_of)
            });
            (key_of(r), parent)
        })
        .collect();
    out.sort();
    out
}

/// Every node of a `why --json` tree: files under `dir` (canonical paths)
/// and processes (canonical exe).
fn why_facts(v: &Value, dir: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let dir = dir.to_string_lossy().into_owned();
    fn walk(n: &Value, dir: &str, out: &mut BTreeSet<String>) {
        let node = &n["node"];
        match node["kind"].as_str().unwrap_or("") {
            "process" => {
                out.insert(format!(
                    "process {}",
                    canon(node["exe"].as_str().unwrap_or(""))
                ));
            }
            "file" => {
                let p = node["label"].as_str().unwrap_or("");
                if p.starts_with(dir) {
                    out.insert(format!("file {}", normalize_temp(p)));
                }
            }
            _ => {}
        }
        for c in n["children"].as_array().into_iter().flatten() {
            walk(c, dir, out);
        }
    }
    walk(&v["root"], &dir, &mut out);
    out
}

fn compare(wl: Workload, output: &str) {
    for t in [
        STRACE,
        "/usr/bin/gcc",
        "/usr/bin/make",
        "/usr/bin/tar",
        "/usr/bin/gzip",
    ] {
        assert!(Path::new(t).exists(), "{t} is required (CI installs it)");
    }
    let root_tmp = tempfile::Builder::new()
        .prefix("tomo-strace-import-")
        .tempdir()
        .expect("tempdir");
    let root = root_tmp.path().canonicalize().expect("canonicalize");
    let trace = root.join("strace.txt");
    let imported = root.join("strace.tomo");
    let recorded = root.join("record.tomo");

    // 1. strace, every call, as a user would run it (plus -s/-v so that
    //    argv is complete: argv is part of a process's key here).
    let dir = fresh_dir(&root, &wl);
    let mut cmd = Command::new(STRACE);
    cmd.args(["-f", "-tt", "-yy", "-s", "65535", "-v", "-o"])
        .arg(&trace)
        .arg("--")
        .args(&wl.argv);
    prepare_env(&mut cmd, &dir);
    let o = run(&mut cmd, TIMEOUT);
    assert!(
        o.status.success(),
        "{}: strace run failed: {}",
        wl.name,
        String::from_utf8_lossy(&o.stderr)
    );
    let tr = trace.to_str().unwrap();
    let im = imported.to_str().unwrap();
    let summary = tomo_json(&["ingest", "--format", "strace", tr, "-o", im, "--json"]);
    let stats = &summary["stats"];
    assert_eq!(stats["bad_lines"], 0, "{}: {summary:#}", wl.name);
    assert!(stats["calls"].as_u64().unwrap() > 100, "{summary:#}");
    let s_facts = tomo_facts(&tomo_json(&["graph", im, "--json"]));
    let s_ps = ps_facts(&tomo_json(&["ps", im, "--json"]));
    let s_why = why_facts(
        &tomo_json(&["why", im, &dir.join(output).to_string_lossy(), "--json"]),
        &dir,
    );

    // 2. tomo record, same path, rebuilt from scratch.
    let dir = fresh_dir(&root, &wl);
    let mut cmd = Command::new(tomo_bin());
    cmd.arg("record")
        .arg("-o")
        .arg(&recorded)
        .arg("--")
        .args(&wl.argv);
    prepare_env(&mut cmd, &dir);
    let o = run(&mut cmd, TIMEOUT);
    assert!(
        o.status.success(),
        "{}: tomo record failed: {}",
        wl.name,
        String::from_utf8_lossy(&o.stderr)
    );
    let rc = recorded.to_str().unwrap();
    let r_facts = tomo_facts(&tomo_json(&["graph", rc, "--json"]));
    let r_ps = ps_facts(&tomo_json(&["ps", rc, "--json"]));
    let r_why = why_facts(
        &tomo_json(&["why", rc, &dir.join(output).to_string_lossy(), "--json"]),
        &dir,
    );

    eprintln!(
        "{}: facts of the strace import:\n{}",
        wl.name,
        describe(&s_facts)
    );
    assert_set_eq(
        &format!("{}: executed programs (strace import vs record)", wl.name),
        &s_facts.executed,
        &r_facts.executed,
    );
    assert_eq!(
        s_facts.procs,
        r_facts.procs,
        "{}: per-process files read/written differ\nstrace import:\n{}\nrecord:\n{}",
        wl.name,
        describe(&s_facts),
        describe(&r_facts)
    );
    assert_eq!(s_ps, r_ps, "{}: process trees differ", wl.name);
    assert!(s_why.len() > 2, "{}: {s_why:?}", wl.name);
    assert_set_eq(&format!("{}: why {output}", wl.name), &s_why, &r_why);
}

#[test]
fn strace_import_matches_record_tar_gzip() {
    compare(tar_gzip_workload(), "out.tgz");
}

#[test]
fn strace_import_matches_record_make() {
    compare(make_workload(), "prog");
}

/// The shapes strace writes besides the common one: `-ttt -T`, `[pid N]`
/// prefixes (output to stderr), and a trace without -f.
#[test]
fn strace_import_other_formats() {
    let w = Work::new();
    w.write("in.txt", "hello\n");
    let d = w.d();
    for flags in [&["-f", "-ttt", "-T", "-yy"][..], &["-tt", "-yy"][..]] {
        let trace = format!("{d}/t.txt");
        let mut cmd = Command::new(STRACE);
        cmd.args(flags)
            .args(["-o", &trace, "--", "sh", "-c", "cat in.txt > out.txt"])
            .current_dir(&d);
        let o = run(&mut cmd, TIMEOUT);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let rec = format!("{d}/t.tomo");
        let s = tomo_json(&["ingest", "--format", "strace", &trace, "-o", &rec, "--json"]);
        assert_eq!(s["stats"]["bad_lines"], 0, "{flags:?}: {s:#}");
        let files = tomo_json(&["files", &rec, "--json"]);
        let out = files
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["path"].as_str() == Some(&format!("{d}/out.txt")))
            .unwrap_or_else(|| panic!("{flags:?}: out.txt not in {files:#}"));
        assert!(
            !out["writers"].as_array().unwrap().is_empty(),
            "{flags:?}: {out:#}"
        );
    }
    // [pid N] prefixes, as strace writes to stderr with -f.
    let text = "[pid  10] 1700000000.000001 openat(AT_FDCWD</w>, \"a\", O_RDONLY) = 3</w/a>\n\
                [pid  10] 1700000000.000002 read(3</w/a>, \"x\", 10) = 1\n\
                [pid  10] 1700000000.000003 +++ exited with 0 +++\n";
    let trace = format!("{d}/p.txt");
    std::fs::write(&trace, text).unwrap();
    let rec = format!("{d}/p.tomo");
    let s = tomo_json(&["ingest", "--format", "strace", &trace, "-o", &rec, "--json"]);
    assert_eq!(s["stats"]["bad_lines"], 0, "{s:#}");
    let ps = tomo_json(&["ps", &rec, "--json"]);
    assert_eq!(ps[0]["pid"], 10);
    assert_eq!(ps[0]["reads"][0]["path"], "/w/a");
}

#[test]
fn strace_import_reports_bad_lines() {
    let w = Work::new();
    let d = w.d();
    let text = "1 1700000000.000001 openat(AT_FDCWD</w>, \"a\", O_RDONLY) = 3</w/a>\n\
                garbage line\n\
                1 1700000000.000002 read(3</w/a>, \"x\"\n\
                1 1700000000.000003 read(3</w/a>, \"x\", 10) = 1\n";
    let trace = format!("{d}/bad.txt");
    std::fs::write(&trace, text).unwrap();
    let rec = format!("{d}/bad.tomo");
    let o = tomo(&["ingest", "--format", "strace", &trace, "-o", &rec]);
    assert_eq!(exit_code(&o.status), 1);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(&format!("{trace}:2: cannot parse the call")),
        "{err}"
    );
    assert!(
        err.contains(&format!("{trace}:3: cannot parse the call")),
        "{err}"
    );
    let ps = tomo_json(&["ps", &rec, "--json"]);
    assert_eq!(ps[0]["reads"][0]["bytes"], 1, "{ps:#}");
}
