//! Pipeline test (issue #2): record `sh -c 'tar c input | gzip > out.tgz'`
//! and ask `tomo why run.tomo out.tgz`. The answer must name gzip, tar, sh
//! and every input file, in causal order: along every branch of the
//! lineage tree an ancestor's edge is no later than its descendant's, and
//! tar's reads of the inputs happen before gzip's write to out.tgz.

mod common;

use common::*;
use serde_json::Value;
use std::process::Command;

const INPUTS: &[(&str, &str)] = &[
    ("input/a.txt", "alpha\n"),
    ("input/b.txt", "bravo bravo\n"),
    ("input/sub/c.txt", "charlie\n"),
];

/// Every tree node of a `why --json` answer with its parent's via time.
struct Flat {
    kind: String,
    label: String,
    argv0: String,
    via_kind: Option<String>,
    via_ts: Option<u64>,
    /// Label and via time of the parent tree node (the descendant).
    parent: Option<(String, Option<u64>)>,
}

fn flatten(t: &Value, parent: Option<(String, Option<u64>)>, out: &mut Vec<Flat>) {
    let node = &t["node"];
    let via = &t["via"];
    let f = Flat {
        kind: node["kind"].as_str().unwrap_or("").to_string(),
        label: node["label"].as_str().unwrap_or("").to_string(),
        argv0: node["argv"][0].as_str().unwrap_or("").to_string(),
        via_kind: via["kind"].as_str().map(str::to_string),
        via_ts: via["ts_ns"].as_u64(),
        parent,
    };
    let me = (f.label.clone(), f.via_ts);
    out.push(f);
    for c in t["children"].as_array().into_iter().flatten() {
        flatten(c, Some(me.clone()), out);
    }
}

#[test]
fn why_out_tgz_names_the_pipeline_in_causal_order() {
    let w = Work::new();
    for (p, s) in INPUTS {
        w.write(p, s);
    }
    let rec = w.record(&["sh", "-c", "tar c input | gzip > out.tgz"]);
    // The recorded pipeline really ran.
    let o = run(
        Command::new("tar")
            .current_dir(&w.dir)
            .args(["tzf", "out.tgz"]),
        TIMEOUT,
    );
    assert!(o.status.success(), "out.tgz is not a valid archive");

    let why = run(
        Command::new(tomo_bin())
            .current_dir(&w.dir)
            .args(["why", &rec.path, "out.tgz", "--json"]),
        TIMEOUT,
    );
    assert!(
        why.status.success(),
        "`tomo why run.tomo out.tgz --json` failed: {}",
        String::from_utf8_lossy(&why.stderr)
    );
    let v: Value = serde_json::from_slice(&why.stdout).expect("why --json prints JSON");
    assert_eq!(
        v["target"]["label"],
        Value::String(w.p("out.tgz")),
        "target: {}",
        v["target"]
    );
    let mut flat = Vec::new();
    flatten(&v["root"], None, &mut flat);
    let dump = || -> String {
        flat.iter()
            .map(|f| {
                format!(
                    "  {} {:?} via {:?}@{:?} <- parent {:?}\n",
                    f.kind, f.label, f.via_kind, f.via_ts, f.parent
                )
            })
            .collect()
    };
    let has = |kind: &str, label: &str| flat.iter().any(|f| f.kind == kind && f.label == label);
    // A process is named by its label (the basename of its exe) or by its
    // argv[0]: `sh` is a symlink to dash on Debian.
    for p in ["gzip", "tar", "sh"] {
        assert!(
            flat.iter()
                .any(|f| f.kind == "process" && (f.label == p || f.argv0 == p)),
            "`why out.tgz` does not name {p}\n{}",
            dump()
        );
    }
    for (p, _) in INPUTS {
        assert!(
            has("file", &w.p(p)),
            "`why out.tgz` does not name input file {p}\n{}",
            dump()
        );
    }

    // Causal order along every branch: an ancestor's edge is no later than
    // the edge of the node it flowed into.
    for f in &flat {
        if let (Some(t), Some((pl, Some(pt)))) = (f.via_ts, &f.parent) {
            assert!(
                t <= *pt,
                "{} {:?} (edge at {t}) is an ancestor of {pl:?} (edge at {pt}) but later\n{}",
                f.kind,
                f.label,
                dump()
            );
        }
    }
    // tar read every input before gzip wrote out.tgz.
    let gzip_write = flat
        .iter()
        .filter(|f| {
            f.kind == "process" && f.label == "gzip" && f.via_kind.as_deref() == Some("write")
        })
        .filter(|f| f.parent.as_ref().is_some_and(|(l, _)| *l == w.p("out.tgz")))
        .filter_map(|f| f.via_ts)
        .min()
        .unwrap_or_else(|| panic!("no gzip -write-> out.tgz edge in the answer\n{}", dump()));
    for (p, _) in INPUTS {
        let read = flat
            .iter()
            .filter(|f| f.label == w.p(p) && f.via_kind.as_deref() == Some("read"))
            .filter(|f| f.parent.as_ref().is_some_and(|(l, _)| l == "tar"))
            .filter_map(|f| f.via_ts)
            .min()
            .unwrap_or_else(|| panic!("no {p} -read-> tar edge in the answer\n{}", dump()));
        assert!(
            read <= gzip_write,
            "tar read {p} at {read}, after gzip wrote out.tgz at {gzip_write}\n{}",
            dump()
        );
    }

    // The text form names them too.
    let text = run(
        Command::new(tomo_bin())
            .current_dir(&w.dir)
            .args(["why", &rec.path, "out.tgz"]),
        TIMEOUT,
    );
    assert!(text.status.success(), "`tomo why run.tomo out.tgz` failed");
    let text = String::from_utf8_lossy(&text.stdout);
    for word in ["gzip", "tar", "sh -c", "out.tgz", "a.txt", "b.txt", "c.txt"] {
        assert!(
            text.contains(word),
            "the text answer does not mention {word}:\n{text}"
        );
    }
    for (p, _) in INPUTS {
        assert!(
            text.contains(&w.p(p)) || text.contains(p),
            "the text answer does not name {p}:\n{text}"
        );
    }
}
