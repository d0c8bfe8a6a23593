//! Ingest rules on hand-written event sequences.

use std::net::{IpAddr, Ipv4Addr};
use tomo_event::*;
use tomo_ingest::build;
use tomo_store::{EdgeKind, EntityKind, Graph};

struct Rec {
    evs: Vec<Event>,
    t: u64,
}

impl Rec {
    fn new() -> Rec {
        Rec {
            evs: Vec::new(),
            t: 1_000,
        }
    }
    fn push(&mut self, pid: u32, op: Op, ret: i64) {
        self.t += 10;
        self.evs.push(Event {
            host: Id128([1; 16]),
            boot: Id128([2; 16]),
            seq: self.evs.len() as u64,
            ts_ns: self.t,
            proc: ProcRef {
                pid,
                tid: pid,
                ppid: 1,
                start_ticks: pid as u64 * 7,
            },
            cred: Cred::default(),
            op,
            ret,
        });
    }
    fn graph(&self) -> Graph {
        build(self.evs.iter())
    }
}

fn file(ino: u64, path: &str) -> ObjRef {
    ObjRef {
        kind: ObjKind::File,
        dev: 8,
        ino,
        path: Some(path.into()),
    }
}
fn pipe(ino: u64) -> ObjRef {
    ObjRef {
        kind: ObjKind::Pipe,
        dev: 12,
        ino,
        path: None,
    }
}
fn child(pid: u32) -> ProcRef {
    ProcRef {
        pid,
        tid: pid,
        ppid: 0,
        start_ticks: pid as u64 * 7,
    }
}
fn io(dir: Dir, obj: ObjRef, count: u64) -> Op {
    Op::Io {
        call: if dir == Dir::Read {
            Call::read
        } else {
            Call::write
        },
        dir,
        fd: 3,
        obj,
        offset: Some(0),
        count,
        sock: None,
    }
}
fn exec(path: &str) -> Op {
    Op::Exec {
        call: Call::execve,
        exe: file(900 + path.len() as u64, path),
        argv: vec![path.into()],
        env: None,
        cwd: None,
    }
}

/// (src label, kind, dst label) triples, versions collapsed.
fn triples(g: &Graph) -> Vec<(String, &'static str, String)> {
    let mut v: Vec<_> = g
        .edges
        .iter()
        .filter(|e| e.kind != EdgeKind::Version)
        .map(|e| {
            (
                g.nodes[e.src as usize].label.to_string(),
                e.kind.as_str(),
                g.nodes[e.dst as usize].label.to_string(),
            )
        })
        .collect();
    v.sort();
    v.dedup();
    v
}

#[test]
fn shell_pipeline_lineage_edges() {
    let mut r = Rec::new();
    r.push(
        10,
        Op::Pipe {
            call: Call::pipe2,
            read_fd: 3,
            write_fd: 4,
            obj: pipe(77),
        },
        0,
    );
    r.push(
        10,
        Op::Spawn {
            call: Call::clone,
            kind: SpawnKind::Process,
            child: child(11),
            flags: 0,
        },
        11,
    );
    r.push(
        10,
        Op::Spawn {
            call: Call::clone,
            kind: SpawnKind::Process,
            child: child(12),
            flags: 0,
        },
        12,
    );
    r.push(11, exec("/usr/bin/tar"), 0);
    r.push(12, exec("/usr/bin/gzip"), 0);
    r.push(11, io(Dir::Read, file(1, "/d/a"), 5), 5);
    r.push(11, io(Dir::Write, pipe(77), 512), 512);
    r.push(12, io(Dir::Read, pipe(77), 512), 512);
    r.push(
        12,
        Op::Open {
            call: Call::openat,
            fd: 1,
            obj: file(2, "/out.tgz"),
            flags: 0o1101,
            mode: 0o644,
            created: true,
        },
        1,
    );
    r.push(12, io(Dir::Write, file(2, "/out.tgz"), 40), 40);
    let g = r.graph();
    assert!(g.is_acyclic());
    let t = triples(&g);
    for want in [
        ("/d/a", "read", "tar"),
        ("tar", "write", "pipe:[77]"),
        ("pipe:[77]", "read", "gzip"),
        ("gzip", "write", "/out.tgz"),
        ("/usr/bin/gzip", "load", "gzip"),
    ] {
        assert!(
            t.iter()
                .any(|(a, k, b)| (a.as_str(), *k, b.as_str()) == want),
            "missing {want:?} in {t:#?}"
        );
    }
    // Forked children that exec right away keep a single version.
    let tar = g.by_pid(11)[0];
    assert_eq!(g.entities[tar as usize].versions.len(), 1);
    assert_eq!(g.entities[tar as usize].kind, EntityKind::Process);
}

#[test]
fn failed_calls_make_no_flows_or_nodes() {
    let mut r = Rec::new();
    r.push(
        10,
        Op::Open {
            call: Call::openat,
            fd: -1,
            obj: ObjRef {
                kind: ObjKind::Unknown,
                dev: 0,
                ino: 0,
                path: Some("/nope".into()),
            },
            flags: 0,
            mode: 0,
            created: false,
        },
        -2,
    );
    r.push(10, io(Dir::Read, file(5, "/x"), 0), -9);
    let g = r.graph();
    assert!(g.edges.is_empty());
    assert_eq!(g.entities.len(), 1, "only the process itself");
}

#[test]
fn reused_inode_after_creation_is_a_new_entity() {
    let mut r = Rec::new();
    r.push(
        10,
        Op::Open {
            call: Call::openat,
            fd: 3,
            obj: file(5, "/a"),
            flags: 0o101,
            mode: 0o644,
            created: true,
        },
        3,
    );
    r.push(
        10,
        Op::Unlink {
            call: Call::unlink,
            path: "/a".into(),
            obj: file(5, "/a"),
            dir: false,
        },
        0,
    );
    r.push(
        10,
        Op::Open {
            call: Call::openat,
            fd: 3,
            obj: file(5, "/b"),
            flags: 0o101,
            mode: 0o644,
            created: true,
        },
        3,
    );
    let g = r.graph();
    let a = g.by_name("/a");
    let b = g.by_name("/b");
    assert_eq!(a.len(), 1);
    assert_eq!(b.len(), 1);
    assert_ne!(
        g.entities[a[0] as usize].uuid,
        g.entities[b[0] as usize].uuid
    );
}

#[test]
fn rename_keeps_identity_and_adds_name() {
    let mut r = Rec::new();
    r.push(10, io(Dir::Write, file(5, "/a"), 3), 3);
    r.push(
        10,
        Op::Rename {
            call: Call::rename,
            old_path: "/a".into(),
            new_path: "/b".into(),
            obj: file(5, "/a"),
            replaced: None,
        },
        0,
    );
    let g = r.graph();
    assert_eq!(g.by_name("/a"), g.by_name("/b"));
}

#[test]
fn pid_reuse_gives_a_new_process() {
    let mut r = Rec::new();
    r.push(10, io(Dir::Write, file(5, "/a"), 3), 3);
    r.evs.push(Event {
        proc: ProcRef {
            start_ticks: 999,
            ..r.evs[0].proc
        },
        ts_ns: 99_999,
        ..r.evs[0].clone()
    });
    let g = r.graph();
    assert_eq!(g.by_pid(10).len(), 2);
}

#[test]
fn connected_tcp_ends_carry_data_between_processes() {
    let mut r = Rec::new();
    let a = |port| SockAddr::Inet {
        ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        port,
    };
    let sock = |ino| ObjRef {
        kind: ObjKind::Socket,
        dev: 9,
        ino,
        path: None,
    };
    let info = |l, p| SockInfo {
        domain: 2,
        sock_type: 1,
        protocol: 6,
        local: Some(a(l)),
        peer: Some(a(p)),
    };
    r.push(
        20,
        Op::Accept {
            call: Call::accept4,
            fd: 3,
            new_fd: 4,
            listen_obj: sock(1),
            obj: sock(2),
            sock: info(80, 5555),
        },
        4,
    );
    r.push(
        21,
        Op::Connect {
            call: Call::connect,
            fd: 3,
            obj: sock(3),
            sock: info(5555, 80),
        },
        0,
    );
    r.push(20, io(Dir::Read, file(50, "/srv/page"), 100), 100);
    r.push(
        20,
        Op::Io {
            call: Call::sendto,
            dir: Dir::Write,
            fd: 4,
            obj: sock(2),
            offset: Some(0),
            count: 100,
            sock: None,
        },
        100,
    );
    r.push(
        21,
        Op::Io {
            call: Call::recvfrom,
            dir: Dir::Read,
            fd: 3,
            obj: sock(3),
            offset: Some(0),
            count: 100,
            sock: None,
        },
        100,
    );
    r.push(21, io(Dir::Write, file(51, "/tmp/page"), 100), 100);
    let g = r.graph();
    assert!(g.is_acyclic());
    // Backward from /tmp/page we must reach /srv/page through both sockets.
    let target = g.entities[g.by_name("/tmp/page")[0] as usize].current();
    let mut stack = vec![target];
    let mut seen = std::collections::HashSet::new();
    while let Some(n) = stack.pop() {
        if !seen.insert(n) {
            continue;
        }
        for &e in g.in_edges(n) {
            stack.push(g.edges[e as usize].src);
        }
    }
    let src = g.entities[g.by_name("/srv/page")[0] as usize].versions[0];
    assert!(
        seen.contains(&src),
        "lineage of /tmp/page must reach /srv/page"
    );
}

/// A UNIX stream connection whose accept is reported before the client's
/// connect (the ptrace recorder sees the two processes' exit stops in either
/// order) still pairs the two ends: data written by the client flows into
/// the server's socket.
#[test]
fn unix_accept_before_connect_still_pairs_the_ends() {
    let path = "/run/app.sock".to_string();
    let unix = || SockAddr::Unix {
        path: path.clone(),
        abstract_ns: false,
    };
    let sock = |ino| ObjRef {
        kind: ObjKind::Socket,
        dev: 9,
        ino,
        path: None,
    };
    let info = |local: Option<SockAddr>, peer: Option<SockAddr>| SockInfo {
        domain: 1,
        sock_type: 1,
        protocol: 0,
        local,
        peer,
    };
    for accept_first in [true, false] {
        let mut r = Rec::new();
        let accept = Op::Accept {
            call: Call::accept4,
            fd: 3,
            new_fd: 4,
            listen_obj: sock(1),
            obj: sock(2),
            sock: info(Some(unix()), Some(SockAddr::Unnamed)),
        };
        let connect = Op::Connect {
            call: Call::connect,
            fd: 3,
            obj: sock(3),
            sock: info(Some(SockAddr::Unnamed), Some(unix())),
        };
        if accept_first {
            r.push(20, accept, 4);
            r.push(21, connect, 0);
        } else {
            r.push(21, connect, 0);
            r.push(20, accept, 4);
        }
        r.push(21, io(Dir::Write, sock(3), 5), 5);
        r.push(20, io(Dir::Read, sock(2), 5), 5);
        let g = r.graph();
        let flows: Vec<_> = triples(&g).into_iter().filter(|t| t.1 == "flow").collect();
        assert_eq!(
            flows,
            vec![("socket:[3]".to_string(), "flow", "socket:[2]".to_string())],
            "accept first: {accept_first}"
        );
    }
}

/// A datagram from a socket that was bound implicitly by its first send
/// (local 0.0.0.0:PORT) arrives from 127.0.0.1:PORT: the receiver's data
/// still comes from that socket.
#[test]
fn udp_from_wildcard_bound_sender_flows() {
    let a = |ip: [u8; 4], port| SockAddr::Inet {
        ip: IpAddr::V4(Ipv4Addr::from(ip)),
        port,
    };
    let sock = |ino| ObjRef {
        kind: ObjKind::Socket,
        dev: 9,
        ino,
        path: None,
    };
    let info = |l, p| SockInfo {
        domain: 2,
        sock_type: 2,
        protocol: 17,
        local: Some(l),
        peer: Some(p),
    };
    let mut r = Rec::new();
    r.push(
        21,
        Op::Io {
            call: Call::sendto,
            dir: Dir::Write,
            fd: 4,
            obj: sock(3),
            offset: Some(0),
            count: 5,
            sock: Some(info(a([0, 0, 0, 0], 4000), a([127, 0, 0, 1], 53))),
        },
        5,
    );
    r.push(
        20,
        Op::Io {
            call: Call::recvfrom,
            dir: Dir::Read,
            fd: 3,
            obj: sock(2),
            offset: Some(0),
            count: 5,
            sock: Some(info(a([127, 0, 0, 1], 53), a([127, 0, 0, 1], 4000))),
        },
        5,
    );
    let g = r.graph();
    let flows: Vec<_> = triples(&g).into_iter().filter(|t| t.1 == "flow").collect();
    assert_eq!(
        flows,
        vec![("socket:[3]".to_string(), "flow", "socket:[2]".to_string())]
    );
}
