//! The persistent store (issue #4) on real recordings: the coverage suite's
//! programs and a shell pipeline, recorded with `tomo record`. Every query
//! answers the same from the store (`tomo index`) as from a replay; a stale
//! store is brought up to date; a damaged one makes the query replay and
//! say so, with the file and byte offset.

mod common;

use common::*;
use serde_json::Value;

/// Every answer the queries give on `rec`, in JSON, as one string.
fn answers(rec: &str) -> String {
    let mut out = String::new();
    for cmd in ["graph", "ps", "files", "timeline"] {
        out += &tomo_ok(&[cmd, rec, "--json"]);
    }
    let files: Value = tomo_json(&["files", rec, "--json"]);
    let ps: Value = tomo_json(&["ps", rec, "--json"]);
    let first_pid = ps
        .as_array()
        .and_then(|a| a.first())
        .and_then(|p| p["pid"].as_u64())
        .map(|p| p.to_string());
    let mut names: Vec<String> = files
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| {
            f["path"]
                .as_str()
                .or(f["name"].as_str())
                .map(str::to_string)
        })
        .collect();
    names.truncate(25);
    for n in &names {
        for q in ["why", "impact"] {
            let o = tomo(&[q, rec, n, "--json"]);
            out += &format!("{q} {n} -> {:?}\n", o.status.code());
            out += &String::from_utf8_lossy(&o.stdout);
        }
        if let Some(p) = &first_pid {
            let o = tomo(&["path", rec, p, n, "--json"]);
            out += &format!("path {p} {n} -> {:?}\n", o.status.code());
            out += &String::from_utf8_lossy(&o.stdout);
        }
    }
    out
}

fn check_same(w: &Work, rec: &str, what: &str) {
    let idx = format!("{rec}.idx");
    let _ = std::fs::remove_file(&idx);
    let replay = answers(rec);
    let o = tomo(&["index", rec, "--quiet"]);
    assert!(o.status.success(), "{what}: tomo index failed: {o:?}");
    assert!(std::path::Path::new(&idx).exists());
    let stored = answers(rec);
    assert!(
        replay == stored,
        "{what}: answers differ between replay and store ({})",
        w.d()
    );
}

#[test]
fn store_answers_equal_replay_on_coverage_programs() {
    let w = Work::new();
    let mut n = 0;
    for entry in std::fs::read_dir(c_dir()).unwrap() {
        let p = entry.unwrap().path();
        let name = p.file_stem().unwrap().to_string_lossy().to_string();
        if p.extension() != Some(std::ffi::OsStr::new("c")) || name.starts_with("oracle") {
            continue;
        }
        let bin = w.compile(&name);
        let r = w.record_to(&format!("{name}.tomo"), &[&bin]);
        check_same(&w, &r.path, &name);
        n += 1;
    }
    assert!(n >= 10, "only {n} programs");
}

#[test]
fn store_answers_equal_replay_on_a_pipeline_and_damage_falls_back() {
    let w = Work::new();
    w.write("input/a.txt", "alpha\n");
    w.write("input/b.txt", "bravo\n");
    let r = w.record(&[
        "sh",
        "-c",
        "tar c input | gzip > out.tgz; cat out.tgz | wc -c > n",
    ]);
    check_same(&w, &r.path, "pipeline");

    // stats counts what the graph holds, from the store.
    let s = tomo_json(&["stats", &r.path, "--json"]);
    assert!(s["events"].as_u64().unwrap() > 10);
    assert!(s["store_bytes"].as_u64().unwrap() > 0);
    assert!(s["processes"].as_u64().unwrap() >= 4);

    // A damaged store: the query replays and says how to rebuild.
    let idx = format!("{}.idx", r.path);
    let want = tomo_ok(&["why", &r.path, "out.tgz", "--json"]);
    let mut b = std::fs::read(&idx).unwrap();
    let mid = b.len() / 2;
    b[mid] ^= 0x40;
    std::fs::write(&idx, &b).unwrap();
    let o = tomo(&["why", &r.path, "out.tgz", "--json"]);
    assert!(o.status.success());
    assert_eq!(String::from_utf8_lossy(&o.stdout), want);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("byte offset") && err.contains(".idx") && err.contains("tomo index"),
        "{err}"
    );
    // `tomo index` rebuilds it.
    let o = tomo(&["index", &r.path, "--quiet"]);
    assert!(o.status.success(), "{o:?}");
    assert!(String::from_utf8_lossy(&o.stderr).contains("rebuilding"));
    let o = tomo(&["why", &r.path, "out.tgz", "--json"]);
    assert_eq!(String::from_utf8_lossy(&o.stdout), want);
    assert!(
        o.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}
