//! Hand-written audit.log excerpts (raw and ENRICHED) for every record type
//! the importer reads, and the events they must become.

mod common;

use common::*;
use std::net::IpAddr;
use tomo_event::{Call, Dir, ObjKind, Op, SockAddr, SpawnKind};
use tomo_source_audit::{node_host, parse_text, read_files, Options, Parser};

const CAT: &str = include_str!("data/cat_redirect.log");

#[test]
fn cat_redirect_raw() {
    let (evs, p) = parse(CAT);
    assert!(p.warnings().is_empty(), "{:?}", p.warnings());
    assert_seq_increasing(&evs);
    let st = p.stats();
    assert_eq!(st.events, 11);
    assert_eq!(st.other_records, 1, "DAEMON_START is skipped");
    assert_eq!(st.incomplete_events, 0);
    // bash (never seen before) gets an Observed with its proctitle.
    match &evs[0].op {
        Op::Observed { exe, argv, .. } => {
            assert_eq!(exe.as_deref(), Some("/usr/bin/bash"));
            assert_eq!(argv, &vec!["-bash".to_string()]);
        }
        o => panic!("expected Observed, got {o:?}"),
    }
    assert_eq!(evs[0].seq, 200);
    assert_eq!(evs[1].seq, 201);
    assert_eq!(evs[1].ts_ns, 1_700_000_000_100_000_000);
    assert_eq!(evs[1].cred.uid, 1000);
    let ops = ops(&evs);
    match ops[0] {
        Op::Spawn {
            call: Call::clone,
            kind: SpawnKind::Process,
            child,
            flags,
        } => {
            assert_eq!((child.pid, child.ppid, child.start_ticks), (1001, 1000, 0));
            assert_eq!(*flags, 0x1200011);
        }
        o => panic!("{o:?}"),
    }
    match ops[1] {
        Op::Open {
            call: Call::openat,
            fd: 3,
            obj,
            flags,
            mode,
            created: true,
        } => {
            assert_eq!(obj.path.as_deref(), Some("/tmp/w/b"));
            assert_eq!((obj.kind, obj.dev, obj.ino), (ObjKind::File, 0xfd01, 5002));
            assert_eq!((*flags, *mode), (0o1101, 0o666));
        }
        o => panic!("{o:?}"),
    }
    assert!(
        matches!(ops[2], Op::Dup { call: Call::dup2, old_fd: 3, new_fd: 1, obj } if obj.ino == 5002)
    );
    assert!(matches!(ops[3], Op::Close { fd: 3, obj, .. } if obj.ino == 5002));
    match ops[4] {
        Op::Exec { exe, argv, cwd, .. } => {
            assert_eq!(exe.path.as_deref(), Some("/usr/bin/cat"));
            assert_eq!(exe.ino, 777);
            assert_eq!(argv, &vec!["cat".to_string(), "a".to_string()]);
            assert_eq!(cwd.as_deref(), Some("/tmp/w"));
        }
        o => panic!("{o:?}"),
    }
    assert!(
        matches!(ops[5], Op::Open { created: false, obj, .. } if obj.path.as_deref() == Some("/tmp/w/a"))
    );
    match (ops[6], ops[7], ops[8]) {
        (
            Op::Io {
                dir: Dir::Read,
                obj: r,
                offset: Some(0),
                count: 6,
                ..
            },
            Op::Io {
                dir: Dir::Write,
                fd: 1,
                obj: w,
                offset: Some(0),
                count: 6,
                ..
            },
            Op::Io {
                dir: Dir::Read,
                offset: Some(6),
                count: 0,
                ..
            },
        ) => {
            assert_eq!(r.ino, 5001);
            assert_eq!(w.ino, 5002, "fd 1 was dup2'ed from b before exec");
        }
        o => panic!("{o:?}"),
    }
    assert!(matches!(
        ops[10],
        Op::Exit {
            call: Call::exit_group,
            code: 0,
            signal: None
        }
    ));
    assert_eq!(evs.last().unwrap().ret, 0);
}

/// auditd does not write EOE: PROCTITLE (the kernel's last record of an
/// event) completes it.
#[test]
fn events_without_eoe() {
    let no_eoe: String = CAT
        .lines()
        .filter(|l| !l.starts_with("type=EOE"))
        .map(|l| format!("{l}\n"))
        .collect();
    let (a, _) = parse(CAT);
    let (b, p) = parse(&no_eoe);
    assert_eq!(a, b);
    assert_eq!(p.stats().incomplete_events, 0);
}

/// Neither EOE nor PROCTITLE: events are completed by the serial gap or at
/// the end of input, and lose only the process titles.
#[test]
fn incomplete_events() {
    let bare: String = CAT
        .lines()
        .filter(|l| !l.starts_with("type=EOE") && !l.starts_with("type=PROCTITLE"))
        .map(|l| format!("{l}\n"))
        .collect();
    let (a, _) = parse(CAT);
    let (b, p) = parse(&bare);
    assert!(p.warnings().is_empty(), "{:?}", p.warnings());
    assert_eq!(ops(&a), ops(&b));
    assert_eq!(p.stats().incomplete_events, 11);
    // A far later serial completes what is pending, before the end of input.
    let mut text = bare.clone();
    text.push_str(&log(&[ev(5000, 77, 231, 0, ["0", "0", "0", "0"])]));
    let (c, p) = parse(&text);
    assert_eq!(ops(&c)[..ops(&a).len()], ops(&a)[..]);
    assert_eq!(p.stats().incomplete_events, 11);
}

/// A log cut in the middle of an event still yields what it has.
#[test]
fn truncated_log() {
    let cut = &CAT[..CAT.find("type=PATH msg=audit(1700000000.103:105)").unwrap()];
    let (evs, p) = parse(cut);
    assert!(p.warnings().is_empty());
    // The open of `a` lost its PATH record: it names no object, but is reported.
    match ops(&evs).last().unwrap() {
        Op::Open { obj, .. } => assert_eq!(obj.ino, 0),
        o => panic!("{o:?}"),
    }
}

/// Records of concurrent events interleave in the file (several CPUs).
#[test]
fn interleaved_events() {
    let lines: Vec<&str> = CAT.lines().collect();
    let of = |serial: &str| -> Vec<&str> {
        lines
            .iter()
            .copied()
            .filter(|l| l.contains(&format!(":{serial}):")))
            .collect()
    };
    let (x, y) = (of("101"), of("104"));
    let mut mixed: Vec<&str> = Vec::new();
    for i in 0..x.len().max(y.len()) {
        // 104 first: completion order must not matter either.
        mixed.extend(y.get(i).copied());
        mixed.extend(x.get(i).copied());
    }
    let mut text = String::new();
    let mut placed = false;
    for l in &lines {
        if l.contains(":101):") {
            if std::mem::replace(&mut placed, true) {
                continue;
            }
            for m in &mixed {
                text.push_str(m);
                text.push('\n');
            }
        } else if !l.contains(":104):") {
            text.push_str(l);
            text.push('\n');
        }
    }
    let (a, _) = parse(CAT);
    let (b, p) = parse(&text);
    assert!(p.warnings().is_empty(), "{:?}", p.warnings());
    assert_eq!(a, b);
}

/// ENRICHED format with node= prefixes: names win over numbers (here the
/// numbers are of i386, which has no built-in table).
#[test]
fn enriched_and_node_prefix() {
    let mut text = String::new();
    for l in CAT.lines() {
        let mut l = format!("node=web1 {l}");
        if l.contains("type=SYSCALL") {
            let nr: u32 = l
                .split("syscall=")
                .nth(1)
                .unwrap()
                .split(' ')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            let name = tomo_source_audit::syscalls::x86_64_name(nr as u64).unwrap();
            l = l
                .replace("arch=c000003e", "arch=40000003")
                .replace(&format!("syscall={nr} "), "syscall=9999 ");
            l.push_str(&format!(
                "\x1dARCH=i386 SYSCALL={name} AUID=\"alice\" UID=\"alice\" GID=\"alice\" EUID=\"alice\" SUID=\"alice\" FSUID=\"alice\" EGID=\"alice\" SGID=\"alice\" FSGID=\"alice\""
            ));
        } else if l.contains("type=PATH") {
            l.push_str("\x1dOUID=\"alice\" OGID=\"alice\"");
        }
        text.push_str(&l);
        text.push('\n');
    }
    let (raw, _) = parse(CAT);
    let (enr, p) = parse(&text);
    assert!(p.warnings().is_empty(), "{:?}", p.warnings());
    assert_eq!(raw.len(), enr.len());
    for (a, b) in raw.iter().zip(&enr) {
        assert_eq!(a.op, b.op);
        assert_eq!(a.seq, b.seq);
        assert_eq!(b.host, node_host("web1"));
    }
    // Without the names, i386 numbers are not guessed.
    let stripped: String = text
        .lines()
        .map(|l| format!("{}\n", l.split('\x1d').next().unwrap()))
        .collect();
    let (evs, p) = parse(&stripped);
    assert!(ops(&evs).is_empty());
    assert_eq!(p.stats().unsupported_arch, 11);
}

/// audit.log.2, .1 and audit.log given in any order read like one file.
#[test]
fn rotated_files_in_any_order() {
    let dir = tempfile::tempdir().unwrap();
    let lines: Vec<&str> = CAT.lines().collect();
    let parts = [&lines[..12], &lines[12..25], &lines[25..]];
    let names = ["audit.log.2", "audit.log.1", "audit.log"];
    for (n, part) in names.iter().zip(parts) {
        std::fs::write(dir.path().join(n), part.join("\n") + "\n").unwrap();
    }
    let paths: Vec<_> = ["audit.log", "audit.log.2", "audit.log.1"]
        .iter()
        .map(|n| dir.path().join(n))
        .collect();
    let mut p = Parser::new(opts());
    let mut evs = Vec::new();
    read_files(&mut p, &paths, false, &mut |_| {}, &mut |e| {
        evs.push(e);
        Ok(())
    })
    .unwrap();
    assert!(p.warnings().is_empty(), "{:?}", p.warnings());
    let (one, _) = parse(CAT);
    assert_eq!(evs, one);
    let sorted = tomo_source_audit::order_files(&paths).unwrap();
    assert_eq!(sorted[0].file_name().unwrap(), "audit.log.2");
    assert_eq!(sorted[2].file_name().unwrap(), "audit.log");
}

/// Untrusted strings are hex when they contain spaces or control bytes;
/// long EXECVE arguments are split into aN[i] pieces.
#[test]
fn hex_fields_and_split_arguments() {
    let text = log(&[
        ev(10, 50, 59, 0, ["1", "2", "3", "4"])
            .exe("sh", "/usr/bin/dash")
            .aux(
                "EXECVE",
                "argc=3 a0=\"sh\" a1=2D63 a2_len=13 a2[0]=\"echo \" a2[1]=6869207468657265",
            )
            .aux("CWD", "cwd=2F746D702F6D7920646972")
            .path(0, "2F62696E2F7368", 90, "0100755", "NORMAL"),
        ev(11, 50, 257, 3, ["ffffff9c", "2", "0", "0"])
            .exe("sh", "/usr/bin/dash")
            .aux("CWD", "cwd=2F746D702F6D7920646972")
            .path(0, "6D792066696C65", 91, "0100644", "NORMAL"),
    ]);
    // PROCTITLE in hex, with NULs between the arguments.
    let text = text.replacen(
        "proctitle=\"sh\"\ntype=EOE msg=audit(1700000100.500:11)",
        "proctitle=7368002D63006563686F2068692074686572650074727565\ntype=EOE msg=audit(1700000100.500:11)",
        1,
    );
    let (evs, p) = parse(&text);
    assert!(p.warnings().is_empty(), "{:?}", p.warnings());
    match &evs[0].op {
        Op::Exec { exe, argv, cwd, .. } => {
            // exe= names the binary that runs (a symlink's target).
            assert_eq!(exe.path.as_deref(), Some("/usr/bin/dash"));
            assert_eq!(exe.ino, 90);
            assert_eq!(argv, &["sh", "-c", "echo hi there"]);
            assert_eq!(cwd.as_deref(), Some("/tmp/my dir"));
        }
        o => panic!("{o:?}"),
    }
    match &evs[1].op {
        Op::Open { obj, .. } => assert_eq!(obj.path.as_deref(), Some("/tmp/my dir/my file")),
        o => panic!("{o:?}"),
    }
    let _ = p;
}

#[test]
fn malformed_lines_are_reported_with_file_and_line() {
    let mut lines: Vec<String> = CAT.lines().map(String::from).collect();
    lines.insert(2, "this is not an audit record".into());
    lines.insert(
        5,
        "type=PATH msg=audit(1700000000.101:101): item=0 name=\"unterminated".into(),
    );
    lines.insert(
        7,
        "type=SYSCALL msg=audit(yesterday:5): arch=c000003e".into(),
    );
    lines.insert(9, "type=CWD msg=audit(1700000000.101:101): novalue".into());
    let text = lines.join("\n") + "\n";
    let (evs, p) = parse(&text);
    let w: Vec<String> = p.warnings().iter().map(|w| w.to_string()).collect();
    assert_eq!(p.stats().bad_lines, 4, "{w:?}");
    assert!(
        w[0].starts_with("audit.log:3: not an audit record"),
        "{w:?}"
    );
    assert!(
        w[1].starts_with("audit.log:6: unterminated quoted value of name"),
        "{w:?}"
    );
    assert!(w[2].starts_with("audit.log:8: bad event stamp"), "{w:?}");
    assert!(w[3].starts_with("audit.log:10: field without '='"), "{w:?}");
    // Parsing went on: every event is still there.
    let (good, _) = parse(CAT);
    assert_eq!(ops(&evs), ops(&good));
    // Binary junk and NULs neither panic nor stop the parser.
    let junk = [b"\x00\xff\xfe type=SYSCALL\n".as_slice(), CAT.as_bytes()].concat();
    let (evs, p) = parse_text("junk.log", &junk, opts());
    assert_eq!(p.stats().bad_lines, 1);
    assert_eq!(ops(&evs), ops(&good));
}

#[test]
fn failed_calls_are_reported_without_objects() {
    let text = log(&[ev(20, 60, 257, -2, ["ffffff9c", "1", "0", "0"])
        .cwd("/home/u")
        .path(0, "\"missing.txt\"", 0, "0", "UNKNOWN")]);
    // A name that did not resolve has no inode= in its PATH record.
    let text = text.replace(" inode=0 dev=fd:01 mode=0", "");
    let (evs, _) = parse(&text);
    let e = evs.last().unwrap();
    assert_eq!(e.ret, -2);
    match &e.op {
        Op::Open { fd: -1, obj, .. } => {
            assert_eq!(obj.kind, ObjKind::Unknown);
            assert_eq!(obj.path.as_deref(), Some("/home/u/missing.txt"));
        }
        o => panic!("{o:?}"),
    }
}

#[test]
fn pipes_with_fd_pair() {
    let text = log(&[
        ev(30, 500, 293, 0, ["7ffc", "80000", "0", "0"]).aux("FD_PAIR", "fd0=3 fd1=4"),
        ev(31, 500, 56, 501, ["1200011", "0", "0", "0"]),
        ev(32, 501, 1, 10, ["4", "55aa", "a", "0"]).ppid(500),
        ev(33, 500, 0, 10, ["3", "55aa", "1000", "0"]),
    ]);
    let (evs, p) = parse(&text);
    assert!(p.warnings().is_empty(), "{:?}", p.warnings());
    let ops = ops(&evs);
    let pipe = match ops[0] {
        Op::Pipe {
            call: Call::pipe2,
            read_fd: 3,
            write_fd: 4,
            obj,
        } => obj.clone(),
        o => panic!("{o:?}"),
    };
    assert_eq!((pipe.kind, pipe.dev), (ObjKind::Pipe, 0));
    match (ops[2], ops[3]) {
        (
            Op::Io {
                dir: Dir::Write,
                obj: w,
                offset: Some(0),
                ..
            },
            Op::Io {
                dir: Dir::Read,
                obj: r,
                offset: Some(0),
                count: 10,
                ..
            },
        ) => {
            assert_eq!(w, &pipe, "the child inherited the pipe");
            assert_eq!(r, &pipe);
        }
        o => panic!("{o:?}"),
    }
}

fn hexs(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02X}")).collect()
}

#[test]
fn sockets_with_sockaddr() {
    let unix = format!("saddr=0100{}00", hexs("/run/app.sock"));
    let text = log(&[
        ev(40, 300, 41, 3, ["1", "80001", "0", "0"]),
        ev(41, 300, 49, 0, ["3", "7ffc", "10", "0"]).aux("SOCKADDR", &unix),
        ev(42, 300, 50, 0, ["3", "5", "0", "0"]),
        ev(43, 400, 41, 3, ["1", "1", "0", "0"]),
        ev(44, 400, 42, 0, ["3", "7ffc", "10", "0"]).aux("SOCKADDR", &unix),
        ev(45, 300, 288, 4, ["3", "0", "0", "80000"]).aux("SOCKADDR", "saddr=0100"),
        ev(46, 400, 1, 5, ["3", "55aa", "5", "0"]),
        ev(47, 300, 0, 5, ["4", "55aa", "100", "0"]),
        ev(48, 600, 41, 3, ["a", "2", "0", "0"]),
        ev(49, 600, 42, -115, ["3", "7ffc", "1c", "0"]).aux(
            "SOCKADDR",
            "saddr=0A0001BB000000000000000000000000000000000000000100000000",
        ),
        ev(50, 600, 44, 4, ["3", "55aa", "4", "0"])
            .aux("SOCKADDR", "saddr=02001F907F0000010000000000000000"),
    ]);
    let (evs, p) = parse(&text);
    assert!(p.warnings().is_empty(), "{:?}", p.warnings());
    let ops = ops(&evs);
    let srv = SockAddr::Unix {
        path: "/run/app.sock".into(),
        abstract_ns: false,
    };
    assert!(matches!(ops[1], Op::Bind { fd: 3, addr, .. } if *addr == srv));
    assert!(matches!(ops[2], Op::Listen { backlog: 5, .. }));
    assert!(matches!(ops[4], Op::Connect { sock, .. } if sock.peer.as_ref() == Some(&srv)));
    let accepted = match ops[5] {
        Op::Accept {
            new_fd: 4,
            obj,
            sock,
            listen_obj,
            ..
        } => {
            assert_eq!(sock.local.as_ref(), Some(&srv), "from the listener's bind");
            assert_eq!(sock.peer, Some(SockAddr::Unnamed));
            assert_eq!(listen_obj.kind, ObjKind::Socket);
            obj.clone()
        }
        o => panic!("{o:?}"),
    };
    assert!(matches!(ops[7], Op::Io { dir: Dir::Read, obj, count: 5, .. } if *obj == accepted));
    match ops[9] {
        Op::Connect { sock, .. } => assert_eq!(
            sock.peer,
            Some(SockAddr::Inet {
                ip: "::1".parse::<IpAddr>().unwrap(),
                port: 443
            })
        ),
        o => panic!("{o:?}"),
    }
    match ops[10] {
        Op::Io {
            call: Call::sendto,
            sock: Some(s),
            ..
        } => assert_eq!(
            s.peer,
            Some(SockAddr::Inet {
                ip: "127.0.0.1".parse().unwrap(),
                port: 8080
            })
        ),
        o => panic!("{o:?}"),
    }
}

/// vfork: the parent's call returns (and is logged) only after the child
/// has exec'd. The spawn must still come first.
#[test]
fn late_spawn_moves_before_its_child() {
    let text = log(&[
        ev(60, 701, 59, 0, ["1", "2", "3", "4"])
            .ppid(700)
            .ts("1700000100.501")
            .exe("ls", "/usr/bin/ls")
            .aux("EXECVE", "argc=1 a0=\"ls\"")
            .path(0, "\"/usr/bin/ls\"", 95, "0100755", "NORMAL"),
        ev(61, 700, 58, 701, ["0", "0", "0", "0"]).exe("make", "/usr/bin/make"),
        ev(62, 701, 231, 0, ["0", "0", "0", "0"])
            .ppid(700)
            .exe("ls", "/usr/bin/ls"),
    ]);
    let (evs, p) = parse(&text);
    assert_eq!(p.stats().relocated_spawns, 1);
    assert_seq_increasing(&evs);
    let ops = ops(&evs);
    assert!(
        matches!(ops[0], Op::Spawn { call: Call::vfork, kind: SpawnKind::Vfork, child, .. } if child.pid == 701),
        "{ops:?}"
    );
    assert!(matches!(ops[1], Op::Exec { .. }));
    assert_eq!(evs[0].seq, 120, "the slot in front of serial 60");
    let g = tomo_ingest::build(evs.iter());
    let ls = g.by_pid(701)[0];
    let info = g.entities[ls as usize].process.as_ref().unwrap();
    assert_eq!(info.ppid, 700);
    assert!(info.parent.is_some());
    let n = g.entities[ls as usize].current();
    assert_eq!(&*g.nodes[n as usize].label, "ls");
}

/// clone3 hides its flags: a child that never acts under its own pid was a thread.
#[test]
fn clone3_threads_and_processes() {
    let text = log(&[
        ev(70, 800, 435, 801, ["7ffc", "58", "0", "0"]),
        ev(71, 800, 1, 3, ["1", "55aa", "3", "0"]),
        ev(72, 810, 435, 811, ["7ffc", "58", "0", "0"]),
        ev(73, 811, 59, 0, ["1", "2", "3", "4"])
            .ppid(810)
            .aux("EXECVE", "argc=1 a0=\"true\"")
            .path(0, "\"/usr/bin/true\"", 96, "0100755", "NORMAL")
            .exe("true", "/usr/bin/true"),
    ]);
    let (evs, _) = parse(&text);
    let spawns: Vec<_> = evs
        .iter()
        .filter_map(|e| match &e.op {
            Op::Spawn { kind, child, .. } => Some((e.proc.pid, *kind, child.pid, child.tid)),
            _ => None,
        })
        .collect();
    assert_eq!(
        spawns,
        vec![
            (800, SpawnKind::Thread, 800, 801),
            (810, SpawnKind::Process, 811, 811)
        ]
    );
}

#[test]
fn renames_links_unlinks_dirs_modes_and_signals() {
    let text = log(&[
        // rename("a", "b") over an existing b.
        ev(80, 900, 82, 0, ["1", "2", "0", "0"])
            .cwd("/d")
            .path(0, "\"/d\"", 10, "040755", "PARENT")
            .path(1, "\"/d\"", 10, "040755", "PARENT")
            .path(2, "\"a\"", 11, "0100644", "DELETE")
            .path(3, "\"b\"", 12, "0100644", "DELETE"),
        // renameat2(AT_FDCWD, "b", AT_FDCWD, "c") to a fresh name.
        ev(81, 900, 316, 0, ["ffffff9c", "1", "ffffff9c", "2"])
            .cwd("/d")
            .path(0, "\"/d\"", 10, "040755", "PARENT")
            .path(1, "\"/d\"", 10, "040755", "PARENT")
            .path(2, "\"b\"", 11, "0100644", "DELETE")
            .path(3, "\"c\"", 11, "0100644", "CREATE"),
        ev(82, 900, 86, 0, ["1", "2", "0", "0"])
            .cwd("/d")
            .path(0, "\"c\"", 11, "0100644", "NORMAL")
            .path(1, "\"/d\"", 10, "040755", "PARENT")
            .path(2, "\"h\"", 11, "0100644", "CREATE"),
        ev(83, 900, 88, 0, ["1", "2", "0", "0"])
            .cwd("/d")
            .path(0, "\"c\"", 0, "0", "UNKNOWN")
            .path(1, "\"/d\"", 10, "040755", "PARENT")
            .path(2, "\"s\"", 13, "0120777", "CREATE"),
        ev(84, 900, 263, 0, ["ffffff9c", "1", "0", "0"])
            .cwd("/d")
            .path(0, "\"/d\"", 10, "040755", "PARENT")
            .path(1, "\"h\"", 11, "0100644", "DELETE"),
        ev(85, 900, 83, 0, ["1", "1ed", "0", "0"])
            .cwd("/d")
            .path(0, "\"/d\"", 10, "040755", "PARENT")
            .path(1, "\"sub\"", 14, "040755", "CREATE"),
        ev(86, 900, 90, 0, ["1", "1a4", "0", "0"])
            .cwd("/d")
            .path(0, "\"c\"", 11, "0100644", "NORMAL"),
        ev(87, 900, 62, 0, ["3e8", "f", "0", "0"]).aux(
            "OBJ_PID",
            "opid=1000 oauid=1000 ouid=1000 oses=3 obj=unconfined ocomm=\"sleep\"",
        ),
        ev(88, 900, 62, 0, ["fffffc18", "f", "0", "0"]),
    ]);
    let text = text.replace(" inode=0 dev=fd:01 mode=0", "");
    let (evs, p) = parse(&text);
    assert!(p.warnings().is_empty(), "{:?}", p.warnings());
    let ops = ops(&evs);
    match ops[0] {
        Op::Rename {
            old_path,
            new_path,
            obj,
            replaced,
            ..
        } => {
            assert_eq!((old_path.as_str(), new_path.as_str()), ("/d/a", "/d/b"));
            assert_eq!(obj.ino, 11);
            assert_eq!(replaced.as_ref().map(|r| r.ino), Some(12));
        }
        o => panic!("{o:?}"),
    }
    assert!(
        matches!(ops[1], Op::Rename { call: Call::renameat2, new_path, replaced: None, .. } if new_path == "/d/c")
    );
    assert!(
        matches!(ops[2], Op::Link { symbolic: false, target, new_path, obj, .. }
        if target == "/d/c" && new_path == "/d/h" && obj.ino == 11)
    );
    assert!(
        matches!(ops[3], Op::Link { symbolic: true, target, new_path, obj, .. }
        if target == "c" && new_path == "/d/s" && obj.kind == ObjKind::Symlink)
    );
    assert!(
        matches!(ops[4], Op::Unlink { path, obj, dir: false, .. } if path == "/d/h" && obj.ino == 11)
    );
    assert!(
        matches!(ops[5], Op::Mkdir { path, obj, mode: 0o755, .. } if path == "/d/sub" && obj.kind == ObjKind::Dir)
    );
    assert!(matches!(ops[6], Op::Chmod { fd: None, obj, mode: 0o644, .. } if obj.ino == 11));
    assert!(matches!(ops[7], Op::Kill { target, signal: 15, .. } if target.pid == 1000));
    // kill(-1000, …) names a process group: no single target, no event.
    assert_eq!(ops.len(), 8);
}

#[test]
fn serial_reset_is_a_new_boot() {
    let text = log(&[
        ev(90000, 10, 231, 0, ["0", "0", "0", "0"]).ts("1700000000.000"),
        ev(12, 10, 231, 0, ["0", "0", "0", "0"]).ts("1700009000.000"),
    ]);
    let (evs, p) = parse(&text);
    assert_eq!(p.stats().boots, 2);
    let boots: std::collections::HashSet<_> = evs.iter().map(|e| e.boot).collect();
    assert_eq!(boots.len(), 2);
}

#[test]
fn host_override_and_kernel_log_form() {
    let text = "Nov 14 22:13:20 h kernel: audit: type=1300 audit(1700000000.000:5): arch=c000003e syscall=231 a0=0 a1=0 a2=0 a3=0 items=0 ppid=1 pid=2 auid=0 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=(none) ses=1 comm=\"x\" exe=\"/x\" key=(null)\n";
    let host = tomo_event::Id128([9; 16]);
    let (evs, p) = parse_text(
        "k.log",
        text.as_bytes(),
        Options {
            default_host: HOST,
            host_override: Some(host),
        },
    );
    assert!(p.warnings().is_empty(), "{:?}", p.warnings());
    assert_eq!(evs.len(), 2);
    assert!(evs.iter().all(|e| e.host == host));
}

/// openat2's flags come from its OPENAT2 record (written by older auditd as
/// UNKNOWN[1337]); mmap's descriptor from the MMAP record.
#[test]
fn openat2_and_mmap_records() {
    let text = log(&[
        ev(100, 70, 437, 3, ["ffffff9c", "7ffc", "7ffd", "18"])
            .cwd("/w")
            .aux("UNKNOWN[1337]", "oflag=0100101 mode=0644 resolve=0x0")
            .path(0, "\"/w\"", 40, "040755", "PARENT")
            .path(1, "\"f\"", 41, "0100644", "CREATE"),
        ev(101, 70, 9, 0x7f00_0000_0000, ["0", "1000", "3", "1"]).aux("MMAP", "fd=3 flags=0x1"),
        ev(102, 70, 9, 0x7f00_0000_1000, ["0", "1000", "3", "22"]),
    ]);
    let (evs, p) = parse(&text);
    assert!(p.warnings().is_empty(), "{:?}", p.warnings());
    let ops = ops(&evs);
    assert!(
        matches!(ops[0], Op::Open { call: Call::openat2, flags: 0o100101, mode: 0o644, created: true, obj, .. }
            if obj.path.as_deref() == Some("/w/f")),
        "{:?}",
        ops[0]
    );
    assert!(
        matches!(ops[1], Op::Mmap { fd: 3, obj, len: 0x1000, prot: 3, flags: 1, .. } if obj.ino == 41),
        "{:?}",
        ops[1]
    );
    // An anonymous mapping is no flow.
    assert_eq!(ops.len(), 2);
}
