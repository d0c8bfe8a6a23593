//! Exports and SPARQL on real recordings (issue #5): every program of the
//! syscall coverage suite and a shell pipeline are recorded with `tomo
//! record`, exported in every format with `tomo export`, and loaded by the
//! reference tools (the `prov` package and rdflib for PROV-JSON, PROV-N and
//! Turtle; Graphviz for DOT; networkx for GraphML; a Neo4j-import-rules
//! check for the CSV). The seed's first SPARQL query runs on a recorded
//! editing session and must name the editor processes `tomo ps` reports.

mod common;

use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The checking scripts shared with the export crate's tests.
fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../export/tests")
        .join(name)
}

/// Run a checking script; its last output line is JSON. A missing Python
/// package fails the test (exit status 3 from the scripts).
fn python(name: &str, args: &[&str]) -> Value {
    let o = run(
        Command::new("python3").arg(script(name)).args(args),
        std::time::Duration::from_secs(600),
    );
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_ne!(
        exit_code(&o.status),
        3,
        "a Python package is missing ({}): pip install prov rdflib networkx (CI installs them)",
        stdout.trim()
    );
    assert!(
        o.status.success(),
        "{name} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_str(stdout.lines().last().unwrap_or(""))
        .unwrap_or_else(|e| panic!("{name}: bad output ({e}): {stdout}"))
}

/// What the coverage tests set up, for every program at once: each program
/// finds the files it expects (see `coverage.rs`).
fn coverage_setup(w: &Work) {
    w.write("trunc.txt", "old contents");
    w.write("existing.txt", "x");
    w.write("ro.txt", "ro");
    w.write("wo.txt", "wo");
    w.write("in.txt", vec![b'r'; 8192]);
    w.write("out.txt", "");
    w.write("other.txt", "");
    w.write("src.txt", vec![b's'; 4096]);
    for d in ["dst1.txt", "dst2.txt", "dst3.txt"] {
        w.write(d, "");
    }
    for f in ["lib.bin", "data.bin", "ro.bin", "cow.bin"] {
        w.write(f, vec![7u8; 8192]);
    }
    for (f, c) in [("a.txt", "a\n"), ("e.txt", "e"), ("f.txt", "f")] {
        w.write(f, c);
    }
    for (f, c) in [("t1.txt", "1"), ("t2.txt", "2"), ("m.txt", "m")] {
        w.write(f, c);
    }
    std::os::unix::fs::symlink("m.txt", w.dir.join("ln")).expect("symlink");
    w.mkdir("sub");
    w.mkdir("sub2");
}

/// Recordings of every coverage program and of a pipeline, each in its own
/// directory: (name, work dir, recording path).
fn recordings() -> Vec<(String, Work, String)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(c_dir()).unwrap() {
        let p = entry.unwrap().path();
        let name = p.file_stem().unwrap().to_string_lossy().to_string();
        if p.extension() != Some(std::ffi::OsStr::new("c"))
            || name.starts_with("oracle")
            || name == "exec_target"
        {
            continue;
        }
        let w = Work::new();
        coverage_setup(&w);
        let bin = w.compile(&name);
        let mut argv = vec![bin, w.d()];
        if name == "proc_exec" {
            w.compile("exec_target");
            argv.push("execve".into());
        }
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        // Exit statuses are the coverage tests' business; any recording
        // must export.
        let r = w.record_any(&argv);
        out.push((name, w, r.path));
    }
    let w = Work::new();
    w.write("input/a.txt", "alpha\n");
    w.write("input/b.txt", "bravo\n");
    let r = w.record(&[
        "sh",
        "-c",
        "tar c input | gzip > out.tgz; cat out.tgz | wc -c > n",
    ]);
    out.push(("pipeline".into(), w, r.path));
    out
}

const FORMATS: [(&str, &str); 7] = [
    ("prov-json", "prov.json"),
    ("prov-n", "provn"),
    ("turtle", "ttl"),
    ("dot", "dot"),
    ("svg", "svg"),
    ("graphml", "graphml"),
    ("neo4j", "neo4j"),
];

#[test]
fn every_export_of_real_recordings_loads_in_the_reference_tools() {
    let recs = recordings();
    assert!(recs.len() >= 20, "only {} recordings", recs.len());
    let mut prov_jobs = String::new();
    let mut graphml = Vec::new();
    let mut neo4j = Vec::new();
    let mut summaries = Vec::new();
    for (name, w, rec) in &recs {
        let mut sum = serde_json::Map::new();
        for (format, ext) in FORMATS {
            let out = w.p(&format!("export.{ext}"));
            let s = tomo_json(&["export", rec, "--format", format, "-o", &out, "--json"]);
            assert_eq!(s["format"], format, "{name}: {s}");
            assert!(s["bytes"].as_u64().unwrap() > 0, "{name}: {s}");
            sum.insert(format.into(), s);
        }
        let p = |ext: &str| w.p(&format!("export.{ext}"));
        prov_jobs.push_str(&format!("{} {} {}\n", p("prov.json"), p("provn"), p("ttl")));
        graphml.push(p("graphml"));
        neo4j.push(format!("{}/nodes.csv", p("neo4j")));
        neo4j.push(format!("{}/relationships.csv", p("neo4j")));

        // DOT renders with Graphviz, one SVG node per graph node; the svg
        // export is that rendering.
        let st = &sum["dot"];
        let nodes = st["entities"].as_u64().unwrap() + st["activities"].as_u64().unwrap();
        let o = run(
            Command::new("dot").args(["-Tsvg", &p("dot")]),
            std::time::Duration::from_secs(120),
        );
        assert!(o.status.success(), "{name}: dot failed: {o:?}");
        let svg = String::from_utf8_lossy(&o.stdout);
        assert_eq!(
            svg.matches("class=\"node\"").count() as u64,
            nodes,
            "{name}"
        );
        let ours = std::fs::read_to_string(p("svg")).unwrap();
        assert_eq!(
            ours.matches("class=\"node\"").count() as u64,
            nodes,
            "{name}"
        );
        assert_eq!(
            ours.matches("class=\"edge\"").count() as u64,
            st["relations"].as_u64().unwrap(),
            "{name}"
        );
        summaries.push((name.clone(), sum));
    }

    // PROV: prov loads all three formats to one document; rdflib agrees.
    let list = recs[0].1.p("prov-jobs.txt");
    std::fs::write(&list, &prov_jobs).unwrap();
    let checks = python("check_prov.py", &["--batch", &list]);
    let checks = checks.as_array().unwrap();
    assert_eq!(checks.len(), recs.len());
    for ((name, sum), c) in summaries.iter().zip(checks) {
        let s = &sum["prov-json"];
        for f in ["prov-n", "turtle"] {
            for k in ["entities", "activities", "relations", "derivations"] {
                assert_eq!(
                    sum[f][k], s[k],
                    "{name}: {f} wrote other counts than prov-json"
                );
            }
        }
        let acts = s["activities"].as_u64().unwrap();
        assert_eq!(c["counts"]["entities"], s["entities"], "{name}: {c}");
        assert_eq!(c["counts"]["activities"], acts, "{name}: {c}");
        assert_eq!(c["counts"]["associations"], acts, "{name}: {c}");
        assert_eq!(
            c["counts"]["relations"].as_u64().unwrap(),
            s["relations"].as_u64().unwrap() + s["derivations"].as_u64().unwrap() + acts,
            "{name}: {c}"
        );
        assert_eq!(c["provn"]["equal"], true, "{name}: PROV-N differs: {c}");
        assert_eq!(c["turtle"]["equal"], true, "{name}: PROV-O differs: {c}");
        for k in [
            "entities",
            "activities",
            "agents",
            "used",
            "generations",
            "derivations",
        ] {
            assert_eq!(
                c["turtle"]["rdflib"][k], c["counts"][k],
                "{name}: rdflib {k}: {c}"
            );
        }
    }

    // GraphML reads with networkx with the graph's counts.
    let refs: Vec<&str> = graphml.iter().map(String::as_str).collect();
    let gm = python("check_graphml.py", &refs);
    for ((name, sum), c) in summaries.iter().zip(gm.as_array().unwrap()) {
        let s = &sum["graphml"];
        let nodes = s["entities"].as_u64().unwrap() + s["activities"].as_u64().unwrap();
        assert_eq!(c["nodes"], nodes, "{name}: {c}");
        assert_eq!(c["edges"], s["relations"], "{name}: {c}");
        assert_eq!(c["processes"], s["activities"], "{name}: {c}");
    }

    // Neo4j CSV: consistent columns, ids and types.
    let refs: Vec<&str> = neo4j.iter().map(String::as_str).collect();
    let nj = python("check_neo4j.py", &refs);
    for ((name, sum), c) in summaries.iter().zip(nj.as_array().unwrap()) {
        let s = &sum["neo4j"];
        assert_eq!(c["problems"], serde_json::json!([]), "{name}: {c}");
        assert_eq!(
            c["nodes"].as_u64().unwrap(),
            s["entities"].as_u64().unwrap() + s["activities"].as_u64().unwrap(),
            "{name}"
        );
        assert_eq!(c["relationships"], s["relations"], "{name}");
    }
}

/// Node ids (`<uuid>_v<n>`) of a DOT export.
fn dot_nodes(dot: &str) -> std::collections::BTreeSet<String> {
    dot.lines()
        .filter(|l| l.contains("[shape="))
        .filter_map(|l| l.trim().split('"').nth(1).map(str::to_string))
        .collect()
}

#[test]
fn why_impact_and_path_export_their_answer() {
    let w = Work::new();
    w.write("input/a.txt", "alpha\n");
    w.write("input/b.txt", "bravo\n");
    w.write("unrelated.txt", "x\n");
    let r = w.record(&[
        "sh",
        "-c",
        "tar c input | gzip > out.tgz; cat unrelated.txt > copy.txt",
    ]);
    let all = tomo_json(&[
        "export",
        &r.path,
        "--format",
        "prov-json",
        "-o",
        &w.p("all.json"),
        "--json",
    ]);

    // why: the answer's subgraph, in PROV and DOT, holds out.tgz and the
    // inputs and not the unrelated copy.
    let out = w.p("why.json");
    let o = tomo(&[
        "why",
        &r.path,
        "out.tgz",
        "--export",
        "prov-json",
        "-o",
        &out,
    ]);
    assert!(o.status.success(), "{o:?}");
    let v: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let labels: Vec<&str> = v["entity"]
        .as_object()
        .unwrap()
        .values()
        .map(|e| e["prov:label"].as_str().unwrap())
        .collect();
    assert!(labels.contains(&w.p("out.tgz").as_str()), "{labels:?}");
    assert!(labels.contains(&w.p("input/a.txt").as_str()), "{labels:?}");
    assert!(
        !labels.iter().any(|l| l.ends_with("copy.txt")),
        "{labels:?}"
    );
    assert!(v["entity"].as_object().unwrap().len() < all["entities"].as_u64().unwrap() as usize);
    let c = python("check_prov.py", &[&out]);
    assert_eq!(
        c["counts"]["entities"],
        v["entity"].as_object().unwrap().len()
    );

    // impact of an input reaches out.tgz; as Turtle.
    let ttl = tomo_ok(&["impact", &r.path, "input/a.txt", "--export", "turtle"]);
    assert!(
        ttl.contains(&format!("rdfs:label \"{}\"", w.p("out.tgz"))),
        "{ttl}"
    );
    assert!(!ttl.contains("copy.txt"));

    // path: the DOT holds exactly the nodes of the paths `path --json` shows.
    let dot = tomo_ok(&["path", &r.path, "input/a.txt", "out.tgz", "--export", "dot"]);
    let pj = tomo_json(&["path", &r.path, "input/a.txt", "out.tgz", "--json"]);
    let mut want = std::collections::BTreeSet::new();
    for p in pj["paths"].as_array().unwrap() {
        for step in p["steps"].as_array().unwrap() {
            let n = &step["node"];
            want.insert(format!(
                "{}_v{}",
                n["uuid"].as_str().unwrap(),
                n["version"].as_u64().unwrap()
            ));
        }
    }
    let got = dot_nodes(&dot);
    assert!(want.len() >= 3, "{pj}");
    assert!(
        want.is_subset(&got),
        "path nodes {want:?} not all in the export {got:?}"
    );
    assert!(got.len() < all["entities"].as_u64().unwrap() as usize);

    // SVG needs Graphviz; without it the error says what to install.
    let empty = w.p("no-bin");
    std::fs::create_dir_all(&empty).unwrap();
    let o = run(
        Command::new(tomo_bin()).env("PATH", &empty).args([
            "export",
            &r.path,
            "--format",
            "svg",
            "-o",
            &w.p("x.svg"),
        ]),
        TIMEOUT,
    );
    assert_eq!(exit_code(&o.status), 2);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("apt install graphviz"), "{err}");
    assert!(
        !Path::new(&w.p("x.svg")).exists(),
        "no partial file is left"
    );

    // neo4j needs a directory.
    let o = tomo(&["export", &r.path, "--format", "neo4j"]);
    assert_eq!(exit_code(&o.status), 2);
    assert!(String::from_utf8_lossy(&o.stderr).contains("-o DIR"));
}

/// A stand-in for vi: `vi FILE TEXT` loads FILE if it exists, "edits" for
/// 30 ms, and writes TEXT to it. Statically linked, so its only file
/// activity is FILE.
const EDITOR_C: &str = r#"
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: vi FILE TEXT\n"); return 2; }
    char buf[4096];
    int fd = open(argv[1], O_RDONLY);
    if (fd >= 0) { while (read(fd, buf, sizeof buf) > 0) {} close(fd); }
    struct timespec ts = {0, 30 * 1000 * 1000};
    nanosleep(&ts, NULL);
    fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) { perror(argv[1]); return 1; }
    size_t n = strlen(argv[2]);
    if (write(fd, argv[2], n) != (ssize_t)n || write(fd, "\n", 1) != 1) { perror("write"); return 1; }
    return close(fd) != 0;
}
"#;

/// The seconds of an xsd:dateTime ("2026-11-23T13:25:43.674835975Z" →
/// "43.674835975Z").
fn secs_of(dt: &str) -> String {
    dt.rsplit(':').next().unwrap().to_string()
}

/// The seconds of `ns` since the epoch as [`secs_of`] shows them.
fn frac(ns: u64) -> String {
    let s = format!("{:02}.{:09}", ns / 1_000_000_000 % 60, ns % 1_000_000_000);
    s.trim_end_matches('0').trim_end_matches('.').to_string() + "Z"
}

/// Seed 000's first query, on the archive of the recorded session.
fn query_1(archive: &str, start: &str, end: &str) -> String {
    format!(
        r#"SELECT (MIN(?startTime) AS ?s) (MAX(?endTime) AS ?e) WHERE {{
  ?tar rdfs:label "{archive}" .
  ?tar prov:wasDerivedFrom ?file .
  ?file rdfs:label ?name . FILTER regex(?name, "txt")
  ?file prov:wasGeneratedBy ?activity .
  ?activity a tomo:Editor .
  ?activity {start} ?startTime .
  ?activity {end} ?endTime .
}}"#
    )
}

#[test]
fn seed_queries_name_the_editors_and_the_processes_that_held_the_string() {
    let w = Work::new();
    w.write("editor.c", EDITOR_C);
    let o = run(
        Command::new("cc")
            .args(["-static", "-O1", "-Wall", "-Werror", "-o"])
            .arg(w.p("vi"))
            .arg(w.p("editor.c")),
        TIMEOUT,
    );
    assert!(
        o.status.success(),
        "cc: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    // Four editor sessions on text files at different times (a.txt twice:
    // tar archives the second), a copy (not an editor), an edited
    // non-text file, then the archive.
    let session = "./vi a.txt 'first draft'; sleep 0.1; \
                   ./vi b.txt 'Llamas are lame'; sleep 0.1; \
                   ./vi c.txt camels; sleep 0.1; \
                   ./vi a.txt 'second draft'; \
                   cp b.txt d.txt; ./vi notes.md 'Llamas are lame'; \
                   tar cf archive.tar a.txt b.txt c.txt d.txt notes.md";
    // With content capture, as the seed's second query needs the data.
    let path = w.p("session.tomo");
    let o = run(
        Command::new(tomo_bin()).current_dir(&w.dir).args([
            "record",
            "--content",
            "-o",
            &path,
            "--",
            "sh",
            "-c",
            session,
        ]),
        TIMEOUT,
    );
    assert!(o.status.success(), "tomo record: {o:?}");
    struct R {
        path: String,
    }
    let r = R { path };

    // The editors `tomo ps` reports, by file and order.
    let ps = tomo_json(&["ps", &r.path, "--json"]);
    let ps = ps.as_array().unwrap();
    let eds: Vec<(String, u64, u64)> = ps
        .iter()
        .filter(|p| p["exe"].as_str() == Some(w.p("vi").as_str()))
        .map(|p| {
            (
                p["argv"][1].as_str().unwrap().to_string(),
                p["start_ns"].as_u64().unwrap(),
                p["end_ns"].as_u64().unwrap(),
            )
        })
        .collect();
    let files: Vec<&str> = eds.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(
        files,
        ["a.txt", "b.txt", "c.txt", "a.txt", "notes.md"],
        "{eds:?}"
    );
    // tar read b.txt (editor 2), c.txt (3), a.txt as editor 4 left it.
    let want_start = eds[1..4].iter().map(|e| e.1).min().unwrap();
    let want_end = eds[1..4].iter().map(|e| e.2).max().unwrap();
    assert!(
        want_start > eds[0].1,
        "the first a.txt session does not count"
    );

    let archive = w.p("archive.tar");
    let ints = tomo_json(&[
        "sparql",
        &r.path,
        &query_1(&archive, "tomo:startNs", "tomo:endNs"),
        "--json",
    ]);
    let b = &ints["results"]["bindings"][0];
    assert_eq!(
        (b["s"]["value"].as_str(), b["e"]["value"].as_str()),
        (
            Some(want_start.to_string().as_str()),
            Some(want_end.to_string().as_str())
        ),
        "{ints}"
    );
    // The same with the seed's own properties (xsd:dateTime).
    let times = tomo_json(&[
        "sparql",
        &r.path,
        &query_1(&archive, "prov:startedAtTime", "prov:endedAtTime"),
        "--format",
        "json",
    ]);
    let b = &times["results"]["bindings"][0];
    assert_eq!(
        b["s"]["datatype"],
        "http://www.w3.org/2001/XMLSchema#dateTime"
    );
    assert_eq!(
        secs_of(b["s"]["value"].as_str().unwrap()),
        frac(want_start),
        "{times}"
    );
    assert_eq!(
        secs_of(b["e"]["value"].as_str().unwrap()),
        frac(want_end),
        "{times}"
    );

    // The lean view answers the same.
    let lean = tomo_json(&[
        "sparql",
        &r.path,
        &query_1(&archive, "tomo:startNs", "tomo:endNs"),
        "--json",
        "--lean",
    ]);
    assert_eq!(lean, ints);

    // The table form for people, and a query from a file.
    w.write("q.rq", query_1(&archive, "tomo:startNs", "tomo:endNs"));
    let table = tomo_ok(&["sparql", &r.path, "--file", &w.p("q.rq")]);
    assert_eq!(
        table,
        format!(
            "s{}e\n{want_start}  {want_end}\n",
            " ".repeat(want_start.to_string().len() + 1)
        )
    );

    // Seed 000's second query: the processes whose data held the string,
    // with the earliest start of each. The string was written by the vi of
    // b.txt and of notes.md, and read by tar (b.txt, d.txt, notes.md); cp
    // may copy inside the kernel (copy_file_range: no bytes to capture).
    let q2 = r#"SELECT (MIN(?st) AS ?min) ?vi WHERE {
        ?vi tomo:hasText "Llamas are lame" .
        ?vi prov:startedAtTime ?st
    } GROUP BY ?vi"#;
    let a = tomo_json(&["sparql", &r.path, "--text", "Llamas are lame", q2, "--json"]);
    let rows = a["results"]["bindings"].as_array().unwrap();
    let who = tomo_json(&[
        "sparql",
        &r.path,
        "--text",
        "Llamas are lame",
        "SELECT DISTINCT ?pid ?prog WHERE { ?a tomo:hasText \"Llamas are lame\" ; tomo:pid ?pid ; tomo:program ?prog }",
        "--json",
    ]);
    let who: std::collections::BTreeMap<u64, String> = who["results"]["bindings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["pid"]["value"].as_str().unwrap().parse().unwrap(),
                b["prog"]["value"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let pid_of = |file: &str| {
        ps.iter()
            .find(|p| p["exe"].as_str() == Some(w.p("vi").as_str()) && p["argv"][1] == file)
            .unwrap()["pid"]
            .as_u64()
            .unwrap()
    };
    let tar = ps.iter().find(|p| p["argv"][0] == "tar").unwrap()["pid"]
        .as_u64()
        .unwrap();
    for (pid, prog) in [
        (pid_of("b.txt"), "vi"),
        (pid_of("notes.md"), "vi"),
        (tar, "tar"),
    ] {
        assert_eq!(who.get(&pid).map(String::as_str), Some(prog), "{who:?}");
    }
    for f in ["a.txt", "c.txt"] {
        assert!(
            !who.contains_key(&pid_of(f)),
            "the vi of {f} never had it: {who:?}"
        );
    }
    assert!(
        who.values()
            .all(|p| ["vi", "tar", "cp"].contains(&p.as_str())),
        "{who:?}"
    );
    assert!(rows.len() >= 3, "{a}");
    // The earliest ?min is the start of the vi that wrote b.txt.
    let mins: Vec<&str> = rows
        .iter()
        .map(|b| b["min"]["value"].as_str().unwrap())
        .collect();
    let first = mins.iter().min().unwrap();
    assert_eq!(secs_of(first), frac(eds[1].1), "{a}");

    // On a recording without content, --text says so and matches nothing.
    w.write("plain.sh", "cat b.txt > e.txt\n");
    let plain = w.record_to("plain.tomo", &["sh", "plain.sh"]);
    let o = tomo(&[
        "sparql",
        &plain.path,
        "SELECT ?vi WHERE { ?vi tomo:hasText \"Llamas are lame\" }",
        "--text",
        "Llamas are lame",
    ]);
    assert!(o.status.success(), "{o:?}");
    assert_eq!(String::from_utf8_lossy(&o.stdout), "vi\n");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("no captured content"),
        "{o:?}"
    );

    // Errors: a syntax error is exit status 2 with the position.
    let o = tomo(&["sparql", &r.path, "SELECT * WHERE { ?x ?y }"]);
    assert_eq!(exit_code(&o.status), 2);
    assert!(String::from_utf8_lossy(&o.stderr).contains("SPARQL syntax error"));
}
