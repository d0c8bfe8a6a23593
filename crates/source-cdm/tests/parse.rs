//! CDM import on hand-written records that follow the public schema
//! (TCCDMDatum.avdl, CDM 18/19/20): every record type and every mapped event
//! type, definitions after their use, malformed lines, identities.

mod common;

use common::{u, Cdm};
use serde_json::json;
use std::collections::BTreeSet;
use tomo_event::{Call, Dir, Event, ObjKind, Op, SpawnKind};
use tomo_source_cdm::{object_dev_ino, parse_text, subject_ticks, Options, MAPPED_EVENT_TYPES};
use tomo_store::{EdgeKind, EntityKind, Graph};

const T0: i64 = 1_523_627_790_000_000_000;

fn uid(n: u64) -> u128 {
    tomo_source_cdm::record::parse_uuid(&u(n)).unwrap()
}

fn definitions(c: &mut Cdm) {
    c.host();
    c.principal(10, "1000", "1000");
    c.principal(11, "0", "0");
    c.subject(100, "SUBJECT_PROCESS", 500, None, 10, Some("bash"), "bash");
    c.subject(
        101,
        "SUBJECT_PROCESS",
        501,
        Some(100),
        10,
        Some("cat /etc/passwd"),
        "cat",
    );
    c.subject(102, "SUBJECT_THREAD", 502, Some(101), 10, None, "cat");
    c.subject(
        103,
        "SUBJECT_PROCESS",
        503,
        Some(100),
        10,
        Some("curl example.com"),
        "curl",
    );
    // pid 500 again: a reused pid is another process.
    c.subject(
        104,
        "SUBJECT_PROCESS",
        500,
        None,
        10,
        Some("sshd -D"),
        "sshd",
    );
    c.subject(
        105,
        "SUBJECT_PROCESS",
        505,
        Some(100),
        10,
        Some("sleep 100"),
        "sleep",
    );
    c.subject(106, "SUBJECT_THREAD", 506, Some(101), 10, None, "cat");
    c.file(200, "FILE_OBJECT_FILE", Some("/etc/passwd"));
    c.file(201, "FILE_OBJECT_FILE", Some("/tmp/out.txt"));
    c.file(202, "FILE_OBJECT_DIR", Some("/tmp/dir"));
    c.file(203, "FILE_OBJECT_FILE", Some("/usr/bin/cat"));
    c.file(204, "FILE_OBJECT_FILE", Some("/lib/libc.so.6"));
    c.file(205, "FILE_OBJECT_LINK", Some("/tmp/link"));
    c.file(206, "FILE_OBJECT_CHAR", Some("/dev/null"));
    c.file(207, "FILE_OBJECT_UNIX_SOCKET", Some("/tmp/sock"));
    // Path-less, as some performers write them: the events name it.
    c.file(208, "FILE_OBJECT_FILE", None);
    c.netflow(300, ("10.0.0.5", 40000), ("93.184.216.34", 80), 6);
    c.netflow(301, ("10.0.0.5", 22), ("10.0.0.9", 51000), 6);
    c.netflow(302, ("10.0.0.5", 5353), ("224.0.0.251", 5353), 17);
    c.pipe(400);
    c.srcsink(600);
    c.memory(700);
    c.time_marker(T0);
    if c.ver >= 19 {
        c.ipc_socketpair(410);
    }
}

fn events(c: &mut Cdm) {
    let e = json!({});
    let t = |i: i64| T0 + i * 1000;
    c.ev(1, "EVENT_FORK", 100, Some(101), t(1));
    c.event(
        2,
        "EVENT_EXECUTE",
        101,
        501,
        Some(203),
        Some("/usr/bin/cat"),
        None,
        None,
        t(2),
        None,
        json!({"cmdLine": "cat /etc/passwd"}),
    );
    c.ev(3, "EVENT_LOADLIBRARY", 101, Some(204), t(3));
    c.event(
        4,
        "EVENT_OPEN",
        101,
        501,
        Some(200),
        Some("/etc/passwd"),
        None,
        None,
        t(4),
        None,
        json!({"flags": "O_RDONLY", "fd": "3"}),
    );
    c.event(
        5,
        "EVENT_READ",
        101,
        501,
        Some(200),
        None,
        None,
        None,
        t(5),
        Some(1024),
        e.clone(),
    );
    c.ev(6, "EVENT_CLOSE", 101, Some(200), t(6));
    c.event(
        7,
        "EVENT_CREATE_OBJECT",
        101,
        501,
        Some(201),
        Some("/tmp/out.txt"),
        None,
        None,
        t(7),
        None,
        e.clone(),
    );
    c.event(
        8,
        "EVENT_WRITE",
        101,
        501,
        Some(201),
        None,
        None,
        None,
        t(8),
        Some(1024),
        e.clone(),
    );
    c.ev(9, "EVENT_CLONE", 101, Some(102), t(9));
    c.event(
        10,
        "EVENT_WRITE",
        102,
        502,
        Some(206),
        None,
        None,
        None,
        t(10),
        Some(5),
        e.clone(),
    );
    c.ev(11, "EVENT_CREATE_THREAD", 101, Some(106), t(11));
    c.ev(12, "EVENT_CREATE_OBJECT", 101, Some(400), t(12));
    c.event(
        13,
        "EVENT_WRITE",
        101,
        501,
        Some(400),
        None,
        None,
        None,
        t(13),
        Some(10),
        e.clone(),
    );
    // 103 acts with no EVENT_FORK naming it: spawned from its parentSubject.
    c.event(
        14,
        "EVENT_READ",
        103,
        503,
        Some(400),
        None,
        None,
        None,
        t(14),
        Some(10),
        e.clone(),
    );
    c.ev(15, "EVENT_CONNECT", 103, Some(300), t(15));
    c.event(
        16,
        "EVENT_SENDTO",
        103,
        503,
        Some(300),
        None,
        None,
        None,
        t(16),
        Some(100),
        e.clone(),
    );
    c.event(
        17,
        "EVENT_RECVFROM",
        103,
        503,
        Some(300),
        None,
        None,
        None,
        t(17),
        Some(2000),
        e.clone(),
    );
    c.ev(18, "EVENT_BIND", 104, Some(302), t(18));
    c.event(
        19,
        "EVENT_SENDMSG",
        104,
        500,
        Some(302),
        None,
        None,
        None,
        t(19),
        Some(40),
        e.clone(),
    );
    c.event(
        20,
        "EVENT_RECVMSG",
        104,
        500,
        Some(302),
        None,
        None,
        None,
        t(20),
        Some(40),
        e.clone(),
    );
    c.ev(21, "EVENT_ACCEPT", 104, Some(301), t(21));
    c.event(
        22,
        "EVENT_READ",
        104,
        500,
        Some(301),
        None,
        None,
        None,
        t(22),
        Some(300),
        e.clone(),
    );
    c.event(
        23,
        "EVENT_MMAP",
        104,
        500,
        Some(201),
        None,
        None,
        None,
        t(23),
        Some(4096),
        json!({"prot": "PROT_READ|PROT_WRITE", "flags": "MAP_SHARED"}),
    );
    c.event(
        24,
        "EVENT_RENAME",
        101,
        501,
        Some(201),
        Some("/tmp/out.txt"),
        Some(208),
        Some("/tmp/renamed.txt"),
        t(24),
        None,
        e.clone(),
    );
    c.event(
        25,
        "EVENT_LINK",
        101,
        501,
        Some(201),
        Some("/tmp/renamed.txt"),
        Some(205),
        Some("/tmp/link"),
        t(25),
        None,
        e.clone(),
    );
    c.event(
        26,
        "EVENT_MODIFY_FILE_ATTRIBUTES",
        101,
        501,
        Some(201),
        None,
        None,
        None,
        t(26),
        None,
        json!({"mode": "644"}),
    );
    c.event(
        27,
        "EVENT_TRUNCATE",
        101,
        501,
        Some(201),
        None,
        None,
        None,
        t(27),
        Some(10),
        e.clone(),
    );
    c.ev(28, "EVENT_CREATE_OBJECT", 101, Some(202), t(28));
    c.event(
        29,
        "EVENT_UNLINK",
        101,
        501,
        Some(202),
        Some("/tmp/dir"),
        None,
        None,
        t(29),
        None,
        e.clone(),
    );
    c.ev(30, "EVENT_DUP", 101, Some(200), t(30));
    c.ev(31, "EVENT_CHANGE_PRINCIPAL", 104, Some(11), t(31));
    c.event(
        32,
        "EVENT_SIGNAL",
        104,
        500,
        Some(101),
        None,
        None,
        None,
        t(32),
        None,
        json!({"signal": "9"}),
    );
    c.event(
        33,
        "EVENT_READ",
        101,
        501,
        Some(600),
        None,
        None,
        None,
        t(33),
        Some(8),
        e.clone(),
    );
    c.event(
        34,
        "EVENT_WRITE",
        101,
        501,
        Some(207),
        None,
        None,
        None,
        t(34),
        Some(3),
        e.clone(),
    );
    c.ev(35, "EVENT_FCNTL", 101, None, t(35));
    c.ev(36, "EVENT_LSEEK", 101, Some(200), t(36));
    c.ev(37, "EVENT_MPROTECT", 101, Some(700), t(37));
    // Never defined: kept as an object of unknown kind, named by the event.
    c.event(
        38,
        "EVENT_READ",
        101,
        501,
        Some(999),
        Some("/tmp/ghost"),
        None,
        None,
        t(38),
        Some(1),
        e.clone(),
    );
    if c.ver >= 19 {
        c.ev(39, "EVENT_CREATE_OBJECT", 101, Some(410), t(39));
    }
    c.event(
        40,
        "EVENT_EXIT",
        101,
        501,
        None,
        None,
        None,
        None,
        t(40),
        None,
        json!({"exit_code": "0"}),
    );
}

fn import(text: &str) -> (Vec<Event>, tomo_source_cdm::Importer) {
    parse_text("test.json", text.as_bytes(), Options::default())
}

fn ops_of<'a>(evs: &'a [Event], name: &str) -> Vec<&'a Event> {
    evs.iter()
        .filter(|e| format!("{:?}", e.op).starts_with(&format!("{name} ")))
        .collect()
}

fn entity_named(g: &Graph, name: &str) -> u32 {
    let ids = g.by_name(name);
    assert_eq!(ids.len(), 1, "{name}: {ids:?}");
    ids[0]
}

fn process_named(g: &Graph, argv0: &str) -> Vec<u32> {
    (0..g.entities.len() as u32)
        .filter(|&e| {
            g.entities[e as usize]
                .process
                .as_ref()
                .is_some_and(|p| p.argv.first().map(String::as_str) == Some(argv0))
        })
        .collect()
}

/// Does an edge of `kind` go from entity `a` to entity `b`?
fn edge(g: &Graph, a: u32, kind: EdgeKind, b: u32) -> bool {
    g.edges.iter().any(|e| {
        e.kind == kind && g.nodes[e.src as usize].entity == a && g.nodes[e.dst as usize].entity == b
    })
}

fn check_workload(ver: u32, defs_last: bool) {
    let mut c = Cdm::new(ver);
    if defs_last {
        events(&mut c);
        definitions(&mut c);
    } else {
        definitions(&mut c);
        events(&mut c);
    }
    let (evs, imp) = import(&c.text());
    let st = imp.stats();
    assert!(imp.warnings().is_empty(), "CDM{ver}: {:?}", imp.warnings());
    assert_eq!(st.bad_lines, 0);
    // Every record type, counted.
    for (ty, n) in [
        ("Host", 1),
        ("Principal", 2),
        ("Subject", 7),
        ("FileObject", 9),
        ("NetFlowObject", 3),
        ("SrcSinkObject", 1),
        ("MemoryObject", 1),
        ("TimeMarker", 1),
    ] {
        assert_eq!(
            st.records.get(ty),
            Some(&n),
            "CDM{ver} {ty}: {:?}",
            st.records
        );
    }
    let pipe_ty = if ver == 18 {
        "UnnamedPipeObject"
    } else {
        "IpcObject"
    };
    assert_eq!(
        st.records.get(pipe_ty),
        Some(&if ver == 18 { 1 } else { 2 }),
        "{:?}",
        st.records
    );
    // Every mapped event type was mapped; the others counted as skipped.
    for t in MAPPED_EVENT_TYPES {
        assert!(
            st.mapped.get(*t).is_some_and(|&n| n >= 1),
            "CDM{ver}: {t} not mapped: {st:#?}"
        );
    }
    for t in ["EVENT_FCNTL", "EVENT_LSEEK", "EVENT_MPROTECT"] {
        assert_eq!(st.skipped.get(t), Some(&1), "CDM{ver} {t}");
    }
    assert_eq!(st.mapping.undefined_subjects, 0);
    assert_eq!(st.mapping.undefined_objects, 1);
    assert_eq!(st.mapping.synthesized_spawns, 2, "103 acted, 105 idle");
    assert_eq!(st.mapping.idle_subjects, 1);
    assert_eq!(st.events_out, evs.len() as u64);
    assert_eq!(*st.versions.keys().next().unwrap(), ver.to_string());

    // seq strictly increasing.
    assert!(evs.windows(2).all(|w| w[0].seq < w[1].seq));
    // The host is the CDM hostId.
    let host = tomo_event::Id128::parse(common::HOST).unwrap();
    assert!(evs.iter().all(|e| e.host == host));

    // Shapes of the operations.
    let fork = ops_of(&evs, "Spawn");
    assert!(fork.iter().any(|e| matches!(&e.op,
        Op::Spawn { call: Call::fork, kind: SpawnKind::Process, child, .. }
            if child.pid == 501 && e.proc.pid == 500 && child.ppid == 500)));
    assert!(fork.iter().any(|e| matches!(&e.op,
        Op::Spawn { kind: SpawnKind::Thread, child, .. } if child.pid == 501 && child.tid == 502)));
    assert!(fork.iter().any(|e| matches!(&e.op,
        Op::Spawn { kind: SpawnKind::Thread, child, .. } if child.tid == 506)));
    let exec = ops_of(&evs, "Exec");
    assert!(matches!(&exec[0].op, Op::Exec { exe, argv, .. }
        if exe.path.as_deref() == Some("/usr/bin/cat") && argv == &["cat", "/etc/passwd"]
            && exe.kind == ObjKind::File));
    let thread_write = evs
        .iter()
        .find(|e| matches!(&e.op, Op::Io { obj, .. } if obj.path.as_deref() == Some("/dev/null")))
        .expect("thread write");
    assert_eq!((thread_write.proc.pid, thread_write.proc.tid), (501, 502));
    assert!(matches!(
        thread_write.op,
        Op::Io {
            dir: Dir::Write,
            count: 5,
            ..
        }
    ));
    let opened = ops_of(&evs, "Open");
    assert!(opened.iter().any(|e| matches!(&e.op,
        Op::Open { fd: 3, flags: 0, created: false, obj, .. } if obj.path.as_deref() == Some("/etc/passwd"))));
    assert!(opened.iter().any(|e| matches!(&e.op,
        Op::Open { created: true, obj, .. } if obj.path.as_deref() == Some("/tmp/out.txt"))));
    assert_eq!(ops_of(&evs, "Pipe").len(), 1);
    assert_eq!(ops_of(&evs, "Mkdir").len(), 1);
    assert_eq!(ops_of(&evs, "Socket").len(), usize::from(ver >= 19));
    let mmaps = ops_of(&evs, "Mmap");
    assert!(mmaps
        .iter()
        .any(|e| matches!(e.op, Op::Mmap { prot: 5, .. })));
    assert!(mmaps.iter().any(|e| matches!(
        e.op,
        Op::Mmap {
            prot: 3,
            flags: 1,
            ..
        }
    )));
    let io_sock = evs
        .iter()
        .find(|e| {
            matches!(
                &e.op,
                Op::Io {
                    call: Call::sendto,
                    ..
                }
            )
        })
        .unwrap();
    let Op::Io { sock: Some(s), .. } = &io_sock.op else {
        panic!("{io_sock:?}")
    };
    assert_eq!((s.domain, s.sock_type, s.protocol), (2, 1, 6));
    assert_eq!(
        s.peer,
        Some(tomo_event::SockAddr::Inet {
            ip: "93.184.216.34".parse().unwrap(),
            port: 80
        })
    );
    assert!(
        matches!(&ops_of(&evs, "Kill")[0].op, Op::Kill { signal: 9, target, .. } if target.pid == 501)
    );
    assert!(matches!(
        &ops_of(&evs, "SetId")[0].op,
        Op::SetId { ids: [0, _, _], .. }
    ));
    // After the change of principal, the process runs as root.
    let after = evs
        .iter()
        .find(|e| matches!(&e.op, Op::Kill { .. }))
        .unwrap();
    assert_eq!(after.cred.uid, 0);
    let renamed = &ops_of(&evs, "Rename")[0];
    assert!(matches!(&renamed.op, Op::Rename { old_path, new_path, .. }
        if old_path == "/tmp/out.txt" && new_path == "/tmp/renamed.txt"));

    // Identities: the CDM UUID, carried losslessly.
    let passwd = evs
        .iter()
        .find_map(|e| match &e.op {
            Op::Io { obj, .. } if obj.path.as_deref() == Some("/etc/passwd") => Some(obj.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!((passwd.dev, passwd.ino), object_dev_ino(uid(200)));
    let by_101 = evs.iter().find(|e| e.proc.pid == 501).unwrap();
    assert_eq!(by_101.proc.start_ticks, subject_ticks(uid(101)));

    // The graph.
    let g = tomo_ingest::build(evs.iter());
    assert!(g.is_acyclic());
    let cat = process_named(&g, "cat");
    assert_eq!(cat.len(), 1, "one cat process");
    let cat = cat[0];
    let passwd = entity_named(&g, "/etc/passwd");
    let out = entity_named(&g, "/tmp/out.txt");
    assert_eq!(g.entities[out as usize].kind, EntityKind::File);
    assert!(g.entities[out as usize]
        .names
        .contains(&"/tmp/renamed.txt".to_string()));
    assert!(g.entities[out as usize]
        .names
        .contains(&"/tmp/link".to_string()));
    assert!(edge(&g, passwd, EdgeKind::Read, cat));
    assert!(edge(&g, cat, EdgeKind::Write, out));
    assert!(edge(
        &g,
        entity_named(&g, "/usr/bin/cat"),
        EdgeKind::Load,
        cat
    ));
    assert!(edge(
        &g,
        entity_named(&g, "/lib/libc.so.6"),
        EdgeKind::Load,
        cat
    ));
    let bash = process_named(&g, "bash")[0];
    assert!(edge(&g, bash, EdgeKind::Spawn, cat));
    // 103 (curl) spawned from its parentSubject, 105 (sleep) listed though idle.
    let curl = process_named(&g, "curl")[0];
    assert!(edge(&g, bash, EdgeKind::Spawn, curl));
    let sleep = process_named(&g, "sleep")[0];
    assert_eq!(
        g.entities[sleep as usize].process.as_ref().unwrap().parent,
        Some(bash)
    );
    // The pipe carries cat's bytes to curl.
    let pipes: Vec<u32> = (0..g.entities.len() as u32)
        .filter(|&e| g.entities[e as usize].kind == EntityKind::Pipe)
        .collect();
    assert_eq!(pipes.len(), 1);
    assert!(edge(&g, cat, EdgeKind::Write, pipes[0]) && edge(&g, pipes[0], EdgeKind::Read, curl));
    // pid 500 is two processes (bash and sshd).
    assert_eq!(g.by_pid(500).len(), 2);
    // The undefined object is one entity of unknown kind.
    assert_eq!(
        g.entities[entity_named(&g, "/tmp/ghost") as usize].kind,
        EntityKind::Unknown
    );
    // sshd's mmap (shared, writable) reads and writes the file.
    let sshd = process_named(&g, "sshd")[0];
    assert!(edge(&g, sshd, EdgeKind::Write, out) && edge(&g, out, EdgeKind::Read, sshd));
}

#[test]
fn cdm18_every_record_and_event_type() {
    check_workload(18, false);
}

#[test]
fn cdm19_every_record_and_event_type() {
    check_workload(19, false);
}

#[test]
fn cdm20_every_record_and_event_type() {
    check_workload(20, false);
}

/// Definitions after the events that use them: two passes resolve them.
#[test]
fn definitions_after_their_use() {
    for ver in [18, 20] {
        check_workload(ver, true);
        let mut a = Cdm::new(ver);
        definitions(&mut a);
        events(&mut a);
        let mut b = Cdm::new(ver);
        events(&mut b);
        definitions(&mut b);
        let (ea, _) = import(&a.text());
        let (eb, _) = import(&b.text());
        let strip = |v: Vec<Event>| -> Vec<String> {
            v.into_iter()
                .map(|e| format!("{:?} {:?} {:?} {}", e.proc, e.cred, e.op, e.ret))
                .collect()
        };
        assert_eq!(strip(ea), strip(eb), "CDM{ver}");
    }
}

#[test]
fn malformed_records_are_reported_by_line_and_skipped() {
    let mut c = Cdm::new(18);
    definitions(&mut c);
    let first_bad = c.lines.len() + 1;
    c.raw("this is not json");
    c.raw(r#"{"datum":{"com.bbn.tc.schema.avro.cdm18.Event":{"uuid":"00000000-0000-4000-8000-000000000001","type":"EVENT_READ""#);
    c.raw(r#"{"CDMVersion":"18"}"#);
    c.raw(r#"{"datum":{"com.bbn.tc.schema.avro.cdm18.Subject":{"uuid":"00000000-0000-4000-8000-000000000777","type":"SUBJECT_PROCESS","cid":"abc"}}}"#);
    c.raw(r#"{"datum":{"com.bbn.tc.schema.avro.cdm18.FileObject":{"type":"FILE_OBJECT_FILE"}}}"#);
    c.raw(r#"{"datum":{"com.bbn.tc.schema.avro.cdm18.Event":{"uuid":"00000000-0000-4000-8000-000000000002","subject":null,"type":"EVENT_READ","timestampNanos":1}}}"#);
    c.raw(r#"{"datum":{"com.bbn.tc.schema.avro.cdm18.Event":{"uuid":"00000000-0000-4000-8000-000000000003","subject":"00000000-0000-4000-8000-000000000065","timestampNanos":1}}}"#);
    c.raw(r#"{"datum":{"com.bbn.tc.schema.avro.cdm18.Event":{"uuid":"00000000-0000-4000-8000-000000000004","type":"EVENT_READ","subject":"00000000-0000-4000-8000-0000000FFFFF","predicateObject":"00000000-0000-4000-8000-0000000000C8","timestampNanos":1}}}"#);
    c.raw(r#"{"datum":{"com.bbn.tc.schema.avro.cdm18.Event":{"uuid":"zz","type":"EVENT_READ"}}}"#);
    c.raw("");
    c.raw(r#"{"datum":{"com.bbn.tc.schema.avro.cdm18.Subject":{},"x":{}}}"#);
    events(&mut c);
    let (evs, imp) = import(&c.text());
    let w: Vec<(u64, &str)> = imp
        .warnings()
        .iter()
        .map(|w| (w.line, w.message.as_str()))
        .collect();
    let l = |k: usize| (first_bad + k) as u64;
    let expect_at = |k: usize, needle: &str| {
        assert!(
            w.iter()
                .any(|(line, m)| *line == l(k) && m.contains(needle)),
            "no warning {needle:?} at line {}: {w:#?}",
            l(k)
        );
    };
    expect_at(0, "expected");
    expect_at(1, "EOF");
    expect_at(2, "missing field `datum`");
    expect_at(3, "invalid type");
    expect_at(4, "without a uuid");
    expect_at(5, "without a subject");
    expect_at(6, "event without a type");
    expect_at(7, "is not defined anywhere");
    expect_at(8, "not a UUID");
    expect_at(10, "more than one record");
    assert_eq!(imp.warnings().len(), 10, "{w:#?}");
    assert!(imp.warnings().iter().all(|w| w.file == "test.json"));
    let st = imp.stats();
    assert_eq!(st.bad_lines, 7, "{st:#?}");
    assert_eq!(st.mapping.undefined_subjects, 1);
    // Everything after the bad lines still came through.
    for t in MAPPED_EVENT_TYPES
        .iter()
        .filter(|t| **t != "EVENT_CREATE_OBJECT")
    {
        assert!(st.mapped.contains_key(*t), "{t}");
    }
    assert!(!ops_of(&evs, "Exit").is_empty());
    // The warning text names file and line.
    assert_eq!(
        imp.warnings()[0].to_string(),
        format!("test.json:{}: {}", l(0), imp.warnings()[0].message)
    );
}

#[test]
fn idle_and_unknown_subjects_and_pid_reuse() {
    let mut c = Cdm::new(19);
    c.principal(10, "1000", "1000");
    c.subject(100, "SUBJECT_PROCESS", 42, None, 10, None, "a");
    c.subject(101, "SUBJECT_PROCESS", 42, None, 10, None, "b");
    c.file(200, "FILE_OBJECT_FILE", Some("/x"));
    // a, b, a again: pid 42 is reused and alternates; still two processes.
    c.event(
        1,
        "EVENT_WRITE",
        100,
        42,
        Some(200),
        None,
        None,
        None,
        T0,
        Some(1),
        json!({}),
    );
    c.event(
        2,
        "EVENT_READ",
        101,
        42,
        Some(200),
        None,
        None,
        None,
        T0 + 1,
        Some(1),
        json!({}),
    );
    c.event(
        3,
        "EVENT_WRITE",
        100,
        42,
        Some(200),
        None,
        None,
        None,
        T0 + 2,
        Some(1),
        json!({}),
    );
    let (evs, imp) = import(&c.text());
    assert!(imp.warnings().is_empty(), "{:?}", imp.warnings());
    let g = tomo_ingest::build(evs.iter());
    let procs = g.by_pid(42);
    assert_eq!(procs.len(), 2);
    let names: BTreeSet<String> = procs
        .iter()
        .map(|&p| {
            g.entities[p as usize]
                .process
                .as_ref()
                .unwrap()
                .argv
                .join(" ")
        })
        .collect();
    assert_eq!(names, BTreeSet::from(["a".to_string(), "b".to_string()]));
    let a = procs
        .iter()
        .copied()
        .find(|&p| g.entities[p as usize].process.as_ref().unwrap().argv == ["a"])
        .unwrap();
    let writes = g
        .edges
        .iter()
        .filter(|e| e.kind == EdgeKind::Write && g.nodes[e.src as usize].entity == a)
        .count();
    assert_eq!(writes, 2, "both writes of a belong to one process");
    // …whose facts are those of its first sighting (its Subject start time).
    assert_eq!(
        g.entities[a as usize].process.as_ref().unwrap().start_ns,
        1_523_627_788_000_000_000
    );
}

/// Avro's own JSON encoder writes `fixed` UUIDs as 16 one-byte characters;
/// some writers leave unions unwrapped. Both are read.
#[test]
fn raw_fixed_uuids_and_bare_unions() {
    let fixed = |n: u8| -> String {
        let mut s = String::new();
        for _ in 0..15 {
            s.push('\u{0}');
        }
        s.push(n as char);
        serde_json::to_string(&s).unwrap()
    };
    let text = format!(
        concat!(
            r#"{{"datum":{{"com.bbn.tc.schema.avro.cdm18.Subject":{{"uuid":{s},"type":"SUBJECT_PROCESS","cid":7,"cmdLine":"vi a.txt","properties":{{"name":"vi"}}}}}}}}"#,
            "\n",
            r#"{{"datum":{{"com.bbn.tc.schema.avro.cdm18.FileObject":{{"uuid":{f},"baseObject":{{"properties":{{"path":"/a.txt"}}}},"type":"FILE_OBJECT_FILE"}}}}}}"#,
            "\n",
            r#"{{"datum":{{"com.bbn.tc.schema.avro.cdm18.Event":{{"uuid":{e},"type":"EVENT_WRITE","subject":{s},"predicateObject":{f},"timestampNanos":5,"size":3}}}}}}"#,
            "\n"
        ),
        s = fixed(1),
        f = fixed(2),
        e = fixed(3)
    );
    let (evs, imp) = import(&text);
    assert!(imp.warnings().is_empty(), "{:?}", imp.warnings());
    let w = evs
        .iter()
        .find(|e| matches!(e.op, Op::Io { .. }))
        .expect("write");
    assert!(
        matches!(&w.op, Op::Io { dir: Dir::Write, count: 3, obj, .. }
        if obj.path.as_deref() == Some("/a.txt") && (obj.dev, obj.ino) == (0, 2))
    );
    assert_eq!(w.proc.pid, 7);
}

/// Writes the fuzz seeds (`fuzz/corpus/cdm_parser`) from the workloads
/// above: `TOMO_WRITE_SEEDS=1 cargo test -p tomo-source-cdm --test parse write_fuzz_seeds -- --ignored`.
#[test]
#[ignore]
fn write_fuzz_seeds() {
    if std::env::var_os("TOMO_WRITE_SEEDS").is_none() {
        return;
    }
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/cdm_parser");
    std::fs::create_dir_all(&dir).unwrap();
    for (name, ver, defs_last) in [("cdm18-all", 18, false), ("cdm20-defs-last", 20, true)] {
        let mut c = Cdm::new(ver);
        if defs_last {
            events(&mut c);
            definitions(&mut c);
        } else {
            definitions(&mut c);
            events(&mut c);
        }
        std::fs::write(dir.join(name), c.text()).unwrap();
    }
    let mut c = Cdm::new(18);
    c.subject(100, "SUBJECT_PROCESS", 500, None, 10, Some("bash"), "bash");
    c.raw("not json");
    c.raw(r#"{"datum":{"com.bbn.tc.schema.avro.cdm18.Event":{"uuid":"00000000-0000-4000-8000-000000000001","type":"EVENT_READ""#);
    c.raw(r#"{"datum":{"com.bbn.tc.schema.avro.cdm18.Subject":{"uuid":"zz","cid":"x"}}}"#);
    c.ev(1, "EVENT_READ", 100, Some(5), T0);
    c.ev(2, "EVENT_FORK", 100, Some(100), T0);
    std::fs::write(dir.join("malformed"), c.text()).unwrap();
}
