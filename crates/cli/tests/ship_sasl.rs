//! `tomo ship` and `tomo collect` through SASL/SCRAM against a real broker
//! (tansu): the right password ships and collects a recording block for
//! block; a wrong one is refused, the spool keeps everything and says so.

mod common;
#[path = "../../kafka/tests/common/mod.rs"]
mod tansu;

use common::*;
use std::process::Command;
use std::time::Duration;

#[test]
fn ship_and_collect_with_scram() {
    let w = Work::new();
    w.mkdir("spool");
    w.write("in.txt", "some input\n");
    let rec = w.p("spool/run.tomo");
    tomo_ok(&[
        "record",
        "-o",
        &rec,
        "--",
        "sh",
        "-c",
        &format!("cat {} > {}", w.p("in.txt"), w.p("out.txt")),
    ]);

    let mut broker = tansu::Tansu::start();
    let tcp = format!("tcp://{}", broker.addr());
    broker.tool(&[
        "user",
        "create",
        "--broker",
        &tcp,
        "--mechanism",
        "scram256",
        "alice",
        "s3cret",
    ]);
    broker.set_extra(&["--authentication"]);
    broker.restart();
    let url = broker.url("tomo-sasl");
    w.write("good", "s3cret\n");
    w.write("bad", "wrong\n");
    let sasl = |pw: &str| {
        vec![
            "--sasl-user".to_string(),
            "alice".into(),
            "--sasl-mechanism".into(),
            "SCRAM-SHA-256".into(),
            "--sasl-password-file".into(),
            w.p(pw),
        ]
    };

    // A wrong password: refused within the drain timeout, nothing marked shipped.
    let o = run(
        Command::new(tomo_bin())
            .args(["ship", &w.p("spool"), "--to", &url, "--drain-timeout", "3"])
            .args(sasl("bad")),
        Duration::from_secs(120),
    );
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("not everything was shipped"), "{err}");

    // The right one.
    let o = run(
        Command::new(tomo_bin())
            .args(["ship", &w.p("spool"), "--to", &url, "--json"])
            .args(sasl("good")),
        Duration::from_secs(120),
    );
    assert!(
        o.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&o.stderr),
        broker.log()
    );
    let st: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(st["recordings_done"], 1, "{st}");
    let coll = w.p("coll");
    let o = run(
        Command::new(tomo_bin())
            .args([
                "collect",
                "--from",
                &url,
                "-o",
                &coll,
                "--idle-exit",
                "2",
                "--json",
            ])
            .args(sasl("good")),
        Duration::from_secs(120),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let st: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(st["finished_recordings"], 1, "{st}");
    let src = tomo_json(&["verify", &rec, "--json"]);
    let rid = src["recording_id"].as_str().unwrap();
    let hosts: Vec<_> = std::fs::read_dir(w.p("coll/hosts"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(hosts.len(), 1);
    let rep = tomo_json(&["verify", hosts[0].join(rid).to_str().unwrap(), "--json"]);
    assert_eq!(rep["chain_head"], src["chain_head"]);
    assert_eq!(rep["events"], src["events"]);
    assert_eq!(rep["finished"], true);
    // The collection answers like the recording.
    let a = tomo_ok(&["why", &rec, "out.txt"]);
    let b = tomo_ok(&["why", &coll, "out.txt"]);
    assert_eq!(a, b);
}
