//! The strace importer on hand-made traces: what each call becomes, and the
//! ordering and identity rules (held vfork children, renames, threads).

use std::path::Path;
use tomo_event::{Call, Dir, Event, ObjKind, Op, SpawnKind};
use tomo_source_strace::{parse_text, Options};

fn import(text: &str) -> (Vec<Event>, tomo_source_strace::Importer) {
    parse_text(
        "t.txt",
        text.as_bytes(),
        Options {
            day_start_ns: Some(0),
            ..Default::default()
        },
    )
}

fn seed(name: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus/strace_parser")
        .join(name);
    std::fs::read_to_string(p).unwrap()
}

#[test]
fn vfork_child_waits_for_its_spawn_and_objects_follow() {
    let (evs, imp) = import(&seed("unfinished-vfork"));
    assert!(imp.warnings().is_empty(), "{:?}", imp.warnings());
    let pos =
        |f: &dyn Fn(&Event) -> bool| evs.iter().position(f).unwrap_or_else(|| panic!("{evs:#?}"));
    let spawn = pos(
        &|e| matches!(&e.op, Op::Spawn { kind: SpawnKind::Vfork, child, .. } if child.pid == 101),
    );
    let child_exec = pos(&|e| e.proc.pid == 101 && matches!(e.op, Op::Exec { .. }));
    let child_dup = pos(&|e| e.proc.pid == 101 && matches!(e.op, Op::Dup { .. }));
    assert!(
        spawn < child_dup && child_dup < child_exec,
        "the vfork child's calls come after its spawn"
    );
    // The inherited pipe: the child writes it, the parent reads it.
    let w = &evs[pos(&|e| {
        e.proc.pid == 101
            && matches!(
                e.op,
                Op::Io {
                    dir: Dir::Write,
                    ..
                }
            )
    })];
    let r = &evs[pos(&|e| e.proc.pid == 100 && matches!(e.op, Op::Io { dir: Dir::Read, .. }))];
    let (
        Op::Io {
            obj: wo,
            offset: woff,
            ..
        },
        Op::Io {
            obj: ro,
            offset: roff,
            count,
            ..
        },
    ) = (&w.op, &r.op)
    else {
        panic!()
    };
    assert_eq!((wo.kind, wo.ino), (ObjKind::Pipe, 77));
    assert_eq!(wo, ro);
    assert_eq!((*woff, *roff, *count), (Some(0), Some(0), 3));
    // O_EXCL: created. The rename keeps the identity, with the new name.
    let open = &evs[pos(&|e| matches!(&e.op, Op::Open { created: true, .. }))];
    let Op::Open { obj: created, .. } = &open.op else {
        panic!()
    };
    let ren = &evs[pos(&|e| matches!(e.op, Op::Rename { .. }))];
    let Op::Rename {
        obj,
        old_path,
        new_path,
        ..
    } = &ren.op
    else {
        panic!()
    };
    assert_eq!(
        (old_path.as_str(), new_path.as_str()),
        ("/w/out", "/w/final")
    );
    assert_eq!(obj.ino, created.ino);
    // The thread reads the renamed file at an explicit offset.
    let spawn_t = &evs[pos(
        &|e| matches!(&e.op, Op::Spawn { kind: SpawnKind::Thread, child, .. } if child.tid == 102),
    )];
    assert_eq!(spawn_t.proc.pid, 100);
    let pread = &evs[pos(&|e| {
        e.proc.tid == 102
            && matches!(
                e.op,
                Op::Io {
                    call: Call::pread64,
                    ..
                }
            )
    })];
    assert_eq!(pread.proc.pid, 100);
    let Op::Io { obj, offset, .. } = &pread.op else {
        panic!()
    };
    assert_eq!(
        (obj.ino, obj.path.as_deref(), *offset),
        (created.ino, Some("/w/final"), Some(1))
    );
    // Failed calls are kept as failures; the end is a signal.
    let kill = &evs[pos(&|e| matches!(e.op, Op::Kill { .. }))];
    assert_eq!(kill.ret, -3);
    let end = evs.last().unwrap();
    assert!(
        matches!(
            end.op,
            Op::Exit {
                signal: Some(9),
                ..
            }
        ) && end.proc.pid == 100
    );
    // Time of day, on the given day.
    assert_eq!(evs[0].ts_ns, 10 * 3600 * 1_000_000_000 + 1_000);
    let g = tomo_ingest::build(evs.iter());
    assert!(g.is_acyclic());
    assert_eq!(g.by_name("/w/final").len(), 1);
    assert_eq!(g.by_name("/w/out"), g.by_name("/w/final"));
}

#[test]
fn sockets_keep_their_identity_and_pair_up() {
    let (evs, imp) = import(&seed("sockets-ttt-T"));
    assert!(imp.warnings().is_empty(), "{:?}", imp.warnings());
    // The client socket is inode 310016 from socket() to its last send,
    // although its decoration turned into addresses after connect.
    let sends: Vec<&Event> = evs
        .iter()
        .filter(|e| matches!(&e.op, Op::Io { call: Call::sendto, obj, .. } if obj.ino == 310016))
        .collect();
    assert_eq!(sends.len(), 1, "{evs:#?}");
    let Op::Io { sock: Some(s), .. } = &sends[0].op else {
        panic!()
    };
    assert!(s.local.is_some() && s.peer.is_some());
    let g = tomo_ingest::build(evs.iter());
    // The two ends of the local TCP connection are paired: data flows.
    let flows = g
        .edges
        .iter()
        .filter(|e| e.kind == tomo_store::EdgeKind::Flow)
        .count();
    assert!(flows >= 2, "tcp and unix connections carry data: {flows}");
}

#[test]
fn exec_drops_cloexec_descriptors_and_unlink_makes_new_identities() {
    let text = "\
1 1700000000.000001 openat(AT_FDCWD</w>, \"a\", O_RDONLY|O_CLOEXEC) = 3</w/a>
1 1700000000.000002 openat(AT_FDCWD</w>, \"b\", O_RDONLY) = 4</w/b>
1 1700000000.000003 execve(\"/bin/x\", [\"x\"], 0x1 /* 0 vars */) = 0
1 1700000000.000004 read(3, \"q\", 1) = 1
1 1700000000.000005 read(4, \"q\", 1) = 1
1 1700000000.000006 unlinkat(AT_FDCWD</w>, \"b\", 0) = 0
1 1700000000.000007 openat(AT_FDCWD</w>, \"b\", O_WRONLY|O_CREAT|O_TRUNC, 0644) = 5</w/b>
1 1700000000.000008 lseek(4</w/b (deleted)>, 100, SEEK_SET) = 100
1 1700000000.000009 read(4</w/b (deleted)>, \"q\", 1) = 1
";
    let (evs, imp) = import(text);
    assert!(imp.warnings().is_empty(), "{:?}", imp.warnings());
    let st = imp.stats();
    // fd 3 was O_CLOEXEC: gone after exec, and no -yy here to name it.
    assert_eq!(st.mapping.unknown_fd, 1);
    let reads: Vec<&Op> = evs
        .iter()
        .map(|e| &e.op)
        .filter(|o| matches!(o, Op::Io { .. }))
        .collect();
    assert_eq!(reads.len(), 2);
    let old_b = match reads[0] {
        Op::Io { obj, offset, .. } => {
            assert_eq!(*offset, Some(0));
            obj.ino
        }
        _ => unreachable!(),
    };
    let new_b = evs
        .iter()
        .find_map(|e| match &e.op {
            Op::Open { obj, created, .. } if obj.path.as_deref() == Some("/w/b") && *created => {
                Some(obj.ino)
            }
            _ => None,
        })
        .expect("created b");
    assert_ne!(
        old_b, new_b,
        "a file created after an unlink is a new entity"
    );
    // The deleted file read through its old descriptor is still the old one.
    match reads[1] {
        Op::Io { obj, offset, .. } => assert_eq!((obj.ino, *offset), (old_b, Some(100))),
        _ => unreachable!(),
    }
}
