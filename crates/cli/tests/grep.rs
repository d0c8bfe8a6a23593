//! Content capture and `tomo grep` (issue #5, item 4) on real recordings:
//! a program writes "Llamas are lame" into a file, others read it (in
//! pieces, with readv) or read something else, and a string is sent over a
//! socket; `tomo grep` must name exactly the processes and objects that
//! carried the string, with times and offsets.

mod common;

use common::*;
use serde_json::Value;
use std::collections::BTreeSet;

fn grep(rec: &str, args: &[&str]) -> (i32, Value) {
    let mut a = vec!["grep", rec];
    a.extend_from_slice(args);
    a.push("--json");
    let o = tomo(&a);
    let code = exit_code(&o.status);
    let v = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "tomo grep {args:?}: {e}\n{}",
            String::from_utf8_lossy(&o.stderr)
        )
    });
    (code, v)
}

fn record_content(w: &Work, script: &str, extra: &[&str]) -> String {
    let rec = w.p("rec.tomo");
    let mut args = vec!["record", "-o", &rec];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--", "sh", "-c", script]);
    let o = run(
        std::process::Command::new(tomo_bin())
            .current_dir(&w.dir)
            .args(&args),
        TIMEOUT,
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    rec
}

/// (dir, program basename, object name) of every match.
fn who(v: &Value) -> BTreeSet<(String, String, String)> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let exe = m["exe"].as_str().unwrap_or("?");
            (
                m["dir"].as_str().unwrap().to_string(),
                exe.rsplit('/').next().unwrap().to_string(),
                m["object_name"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn grep_names_the_writer_and_the_readers_of_a_string() {
    let w = Work::new();
    let llama = w.compile("llama");
    w.write("other.txt", "nothing to see here\n");
    let script = format!(
        "{llama} write llama.txt && {llama} read llama.txt && {llama} readv llama.txt && {llama} read other.txt"
    );
    let rec = record_content(&w, &script, &["--content"]);
    let (code, m) = grep(&rec, &["Llamas are lame"]);
    assert_eq!(code, 0, "{m:#}");
    let file = w.p("llama.txt");
    let want: BTreeSet<(String, String, String)> = [
        ("write".to_string(), "llama".to_string(), file.clone()),
        ("read".to_string(), "llama".to_string(), file.clone()),
    ]
    .into_iter()
    .collect();
    assert_eq!(who(&m), want, "{m:#}");
    let ms = m.as_array().unwrap();
    assert_eq!(ms.len(), 3, "one write, two reads: {m:#}");
    // The writer wrote the string in two calls, the first reader read it 7
    // bytes at a time: both matches span calls, at offset 0 of the file.
    for x in ms {
        assert_eq!(x["offset"], 0, "{x:#}");
        assert_eq!(x["len"], 15);
        assert_eq!(x["object_kind"], "file");
    }
    assert!(
        ms.iter().filter(|x| x["spans_calls"] == true).count() >= 2,
        "{m:#}"
    );
    // Three distinct processes, the reader of other.txt not among them;
    // their UUIDs are those of `tomo ps`, the file's those of `tomo files`.
    let procs: BTreeSet<&str> = ms.iter().map(|x| x["process"].as_str().unwrap()).collect();
    assert_eq!(procs.len(), 3);
    let ps = tomo_json(&["ps", &rec, "--json"]);
    let other_reader = ps
        .as_array()
        .unwrap()
        .iter()
        .find(|p| {
            p["argv"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a == "other.txt")
        })
        .expect("the reader of other.txt");
    assert!(!procs.contains(other_reader["uuid"].as_str().unwrap()));
    for u in &procs {
        assert!(
            ps.as_array().unwrap().iter().any(|p| p["uuid"] == *u),
            "{u}"
        );
    }
    let files = tomo_json(&["files", &rec, "--json"]);
    let f = files
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"].as_str() == Some(file.as_str()))
        .unwrap();
    assert!(ms.iter().all(|x| x["object"] == f["uuid"]));
    // Times are in the order things happened.
    let ts: Vec<u64> = ms.iter().map(|x| x["ts_ns"].as_u64().unwrap()).collect();
    assert!(ts.windows(2).all(|p| p[0] <= p[1]));

    // A string nobody moved: exit 1, no matches.
    let (code, none) = grep(&rec, &["-F", "Alpacas"]);
    assert_eq!((code, none.as_array().unwrap().len()), (1, 0));
    // A regular expression; and the text output names the same things.
    let (code, re) = grep(&rec, &["(?i)llamas\\s+ARE"]);
    assert_eq!((code, re.as_array().unwrap().len()), (0, 3));
    let text = tomo_ok(&["grep", &rec, "-F", "Llamas are lame"]);
    assert!(
        text.contains("write  llama[") && text.contains(&file),
        "{text}"
    );
    assert_eq!(
        text.lines().filter(|l| l.contains("read ")).count(),
        2,
        "{text}"
    );
    // Content adds no structure: the graph is that of the same events without it.
    let g = tomo_json(&["graph", &rec, "--json"]);
    assert!(g["nodes"].as_array().unwrap().len() > 3);
}

#[test]
fn grep_follows_sockets_and_respects_the_caps() {
    let w = Work::new();
    let llama = w.compile("llama");
    let rec = record_content(&w, &format!("{llama} send"), &["--content=8"]);
    // Only the first 8 bytes of each call are kept: "Llamas a".
    let (code, m) = grep(&rec, &["-F", "Llamas are lame"]);
    assert_eq!((code, m.as_array().unwrap().len()), (1, 0), "{m:#}");
    let (code, m) = grep(&rec, &["-F", "Llamas"]);
    assert_eq!(code, 0);
    let got: BTreeSet<(String, String)> = m
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["dir"].as_str().unwrap().to_string(),
                x["object_kind"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("read".to_string(), "socket".to_string()),
            ("write".to_string(), "socket".to_string())
        ]
        .into_iter()
        .collect(),
        "{m:#}"
    );
    // The whole budget: 4 bytes in all, then nothing more is kept.
    let rec = record_content(
        &w,
        &format!("{llama} send"),
        &["--content", "--content-budget", "4"],
    );
    let (code, _) = grep(&rec, &["-F", "Llamas"]);
    assert_eq!(code, 1);
    // Without --content there is nothing to search, and grep says so.
    let rec = record_content(&w, &format!("{llama} send"), &[]);
    let o = tomo(&["grep", &rec, "Llamas"]);
    assert_eq!(exit_code(&o.status), 1);
    assert!(String::from_utf8_lossy(&o.stderr).contains("holds no content"));
}
