//! `tomo ingest --format cdm` end to end: two files (definitions in the
//! second one used by events of the first), a malformed line reported as
//! `file:line`, the JSON summary, and queries on the result.

mod common;

use common::*;

const NS: &str = "com.bbn.tc.schema.avro.cdm18";

fn u(n: u32) -> String {
    format!("00000000-0000-4000-8000-{n:012X}")
}

fn line(ty: &str, body: &str) -> String {
    format!("{{\"datum\":{{\"{NS}.{ty}\":{body}}},\"CDMVersion\":\"18\",\"source\":\"SOURCE_LINUX_SYSCALL_TRACE\"}}\n")
}

fn event(id: u32, ty: &str, subject: u32, obj: Option<u32>, ts: u64, size: Option<u64>) -> String {
    let obj = obj
        .map(|o| format!("{{\"{NS}.UUID\":\"{}\"}}", u(o)))
        .unwrap_or_else(|| "null".into());
    let size = size
        .map(|s| format!("{{\"long\":{s}}}"))
        .unwrap_or_else(|| "null".into());
    line(
        "Event",
        &format!(
            "{{\"uuid\":\"{}\",\"sequence\":{{\"long\":{id}}},\"type\":\"{ty}\",\"threadId\":{{\"int\":7}},\"hostId\":\"{}\",\"subject\":{{\"{NS}.UUID\":\"{}\"}},\"predicateObject\":{obj},\"predicateObjectPath\":null,\"predicateObject2\":null,\"predicateObject2Path\":null,\"timestampNanos\":{ts},\"name\":null,\"parameters\":null,\"location\":null,\"size\":{size},\"programPoint\":null,\"properties\":{{\"map\":{{}}}}}}",
            u(id),
            u(9),
            u(subject)
        ),
    )
}

fn file(id: u32, path: &str) -> String {
    line(
        "FileObject",
        &format!(
            "{{\"uuid\":\"{}\",\"baseObject\":{{\"hostId\":\"{}\",\"permission\":null,\"epoch\":{{\"int\":0}},\"properties\":{{\"map\":{{\"path\":\"{path}\"}}}}}},\"type\":\"FILE_OBJECT_FILE\",\"fileDescriptor\":null,\"localPrincipal\":null,\"size\":null,\"peInfo\":null,\"hashes\":null}}",
            u(id),
            u(9)
        ),
    )
}

fn subject(id: u32, cid: u32, parent: Option<u32>, cmd: &str) -> String {
    let parent = parent
        .map(|p| format!("{{\"{NS}.UUID\":\"{}\"}}", u(p)))
        .unwrap_or_else(|| "null".into());
    line(
        "Subject",
        &format!(
            "{{\"uuid\":\"{}\",\"type\":\"SUBJECT_PROCESS\",\"cid\":{cid},\"parentSubject\":{parent},\"hostId\":\"{}\",\"localPrincipal\":\"{}\",\"startTimestampNanos\":1,\"unitId\":null,\"iteration\":null,\"count\":null,\"cmdLine\":{{\"string\":\"{cmd}\"}},\"privilegeLevel\":null,\"importedLibraries\":null,\"exportedLibraries\":null,\"properties\":{{\"map\":{{}}}}}}",
            u(id),
            u(9),
            u(8)
        ),
    )
}

#[test]
fn cdm_ingest_two_files_bad_line_json_and_queries() {
    let w = Work::new();
    let t = 1_700_000_000_000_000_000u64;
    // File 1: the events (and one bad line); file 2: the definitions.
    let mut events = String::new();
    events += &event(100, "EVENT_FORK", 1, Some(2), t, None);
    events += &event(101, "EVENT_READ", 2, Some(10), t + 1000, Some(100));
    events += "{\"datum\": this is broken\n";
    events += &event(102, "EVENT_WRITE", 2, Some(11), t + 2000, Some(50));
    events += &event(103, "EVENT_FCNTL", 2, None, t + 3000, None);
    let mut defs = String::new();
    defs += &subject(1, 100, None, "bash");
    defs += &subject(2, 101, Some(1), "sort data.txt");
    defs += &file(10, "/srv/data.txt");
    defs += &file(11, "/srv/sorted.txt");
    w.write("events.json", &events);
    w.write("defs.json", &defs);
    let (ev, de, rec) = (w.p("events.json"), w.p("defs.json"), w.p("tc.tomo"));
    let o = tomo(&["ingest", "--format", "cdm", &ev, &de, "-o", &rec]);
    assert_eq!(
        exit_code(&o.status),
        1,
        "a bad line makes the exit status 1"
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(&format!("{ev}:3: ")), "{err}");
    assert!(err.contains("EVENT_FCNTL 1"), "{err}");
    let o = tomo(&["ingest", "--format", "cdm", &ev, &de, "-o", &rec, "--json"]);
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let st = &j["stats"];
    assert_eq!(st["bad_lines"], 1, "{j:#}");
    assert_eq!(st["records"]["Subject"], 2);
    assert_eq!(st["records"]["FileObject"], 2);
    assert_eq!(st["records"]["Event"], 4);
    assert_eq!(st["mapped"]["EVENT_READ"], 1);
    assert_eq!(st["skipped"]["EVENT_FCNTL"], 1);
    assert!(j["warnings"][0]
        .as_str()
        .unwrap()
        .starts_with(&format!("{ev}:3: ")));
    // The queries see what the CDM said.
    let why = tomo_ok(&["why", &rec, "/srv/sorted.txt"]);
    assert!(
        why.contains("/srv/data.txt") && why.contains("sort"),
        "{why}"
    );
    let ps = tomo_json(&["ps", &rec, "--json"]);
    let sort = ps
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["pid"] == 101)
        .expect("sort");
    assert_eq!(sort["argv"], serde_json::json!(["sort", "data.txt"]));
    let bash = ps
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["pid"] == 100)
        .unwrap();
    assert_eq!(sort["parent"], bash["uuid"]);
}
