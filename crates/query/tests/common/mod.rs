//! A small builder of synthetic event sequences for query tests.
#![allow(dead_code)]

use tomo_event::*;
use tomo_store::Graph;

/// Start of synthetic recordings (2023-11-14T22:13:20Z).
pub const T0: u64 = 1_700_000_000_000_000_000;
/// Time between consecutive synthetic events (10 µs).
pub const STEP: u64 = 10_000;

pub struct Rec {
    pub evs: Vec<Event>,
    pub t: u64,
}

impl Default for Rec {
    fn default() -> Self {
        Rec::new()
    }
}

impl Rec {
    pub fn new() -> Rec {
        Rec {
            evs: Vec::new(),
            t: T0,
        }
    }
    /// The time the next event will get.
    pub fn next_ts(&self) -> u64 {
        if self.evs.is_empty() {
            self.t
        } else {
            self.t + STEP
        }
    }
    pub fn push_as(&mut self, pr: ProcRef, op: Op, ret: i64) -> u64 {
        if !self.evs.is_empty() {
            self.t += STEP;
        }
        self.evs.push(Event {
            host: Id128([1; 16]),
            boot: Id128([2; 16]),
            seq: self.evs.len() as u64,
            ts_ns: self.t,
            proc: pr,
            cred: Cred {
                uid: 1000,
                gid: 1000,
                euid: 1000,
                egid: 1000,
            },
            op,
            ret,
        });
        self.t
    }
    pub fn push(&mut self, pid: u32, op: Op) -> u64 {
        self.push_as(proc_ref(pid), op, 0)
    }
    pub fn observed(&mut self, pid: u32, exe: &str, argv: &[&str]) -> u64 {
        self.push(
            pid,
            Op::Observed {
                exe: Some(exe.into()),
                argv: argv.iter().map(|s| s.to_string()).collect(),
                cwd: Some("/w".into()),
            },
        )
    }
    pub fn spawn(&mut self, parent: u32, child: u32) -> u64 {
        self.push_as(
            proc_ref(parent),
            Op::Spawn {
                call: Call::clone,
                kind: SpawnKind::Process,
                child: proc_ref(child),
                flags: 0,
            },
            child as i64,
        )
    }
    pub fn exec(&mut self, pid: u32, exe: &str, argv: &[&str]) -> u64 {
        self.push(
            pid,
            Op::Exec {
                call: Call::execve,
                exe: file(exe),
                argv: argv.iter().map(|s| s.to_string()).collect(),
                env: None,
                cwd: None,
            },
        )
    }
    pub fn load(&mut self, pid: u32, lib: &str) -> u64 {
        use tomo_event::mm::*;
        self.push_as(
            proc_ref(pid),
            Op::Mmap {
                call: Call::mmap,
                fd: 3,
                obj: file(lib),
                offset: 0,
                len: 4096,
                prot: PROT_READ | PROT_EXEC,
                flags: MAP_PRIVATE,
            },
            0x7f00_0000,
        )
    }
    pub fn read(&mut self, pid: u32, obj: ObjRef, n: u64) -> u64 {
        self.push_as(proc_ref(pid), io(Dir::Read, obj, n), n as i64)
    }
    pub fn write(&mut self, pid: u32, obj: ObjRef, n: u64) -> u64 {
        self.push_as(proc_ref(pid), io(Dir::Write, obj, n), n as i64)
    }
    pub fn create(&mut self, pid: u32, path: &str) -> u64 {
        self.push_as(
            proc_ref(pid),
            Op::Open {
                call: Call::openat,
                fd: 4,
                obj: file(path),
                flags: 0o1101,
                mode: 0o644,
                created: true,
            },
            4,
        )
    }
    pub fn exit(&mut self, pid: u32, code: i32) -> u64 {
        self.push(
            pid,
            Op::Exit {
                call: Call::exit_group,
                code,
                signal: None,
            },
        )
    }
    pub fn graph(&self) -> Graph {
        tomo_ingest::build(self.evs.iter())
    }
}

pub fn proc_ref(pid: u32) -> ProcRef {
    ProcRef {
        pid,
        tid: pid,
        ppid: 1,
        start_ticks: pid as u64 * 7,
    }
}

/// A regular file whose inode is derived from its path.
pub fn file(path: &str) -> ObjRef {
    let ino = path.bytes().fold(1469598103934665603u64, |h, b| {
        (h ^ b as u64).wrapping_mul(1099511628211)
    }) % 1_000_000;
    ObjRef {
        kind: ObjKind::File,
        dev: 8,
        ino,
        path: Some(path.into()),
    }
}

pub fn pipe(ino: u64) -> ObjRef {
    ObjRef {
        kind: ObjKind::Pipe,
        dev: 12,
        ino,
        path: None,
    }
}

pub fn io(dir: Dir, obj: ObjRef, count: u64) -> Op {
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

/// `sh -c 'tar cf - /d | gzip > /w/out.tgz'`:
/// sh(10) spawns tar(11) and gzip(12); tar reads /d/a and /d/b and writes a
/// pipe; gzip reads the pipe and writes /w/out.tgz. Both load libc; gzip
/// also libz.
pub fn pipeline() -> Rec {
    let mut r = Rec::new();
    r.observed(
        10,
        "/bin/sh",
        &["sh", "-c", "tar cf - /d | gzip > /w/out.tgz"],
    );
    r.push(
        10,
        Op::Pipe {
            call: Call::pipe2,
            read_fd: 3,
            write_fd: 4,
            obj: pipe(77),
        },
    );
    r.spawn(10, 11);
    r.spawn(10, 12);
    r.exec(11, "/usr/bin/tar", &["tar", "cf", "-", "/d"]);
    r.load(11, "/lib/x86_64-linux-gnu/libc.so.6");
    r.exec(12, "/usr/bin/gzip", &["gzip"]);
    r.load(12, "/lib/x86_64-linux-gnu/libc.so.6");
    r.load(12, "/lib/x86_64-linux-gnu/libz.so.1");
    r.read(11, file("/d/a"), 5);
    r.read(11, file("/d/b"), 7);
    r.write(11, pipe(77), 512);
    r.read(12, pipe(77), 512);
    r.create(12, "/w/out.tgz");
    r.write(12, file("/w/out.tgz"), 40);
    r.exit(11, 0);
    r.exit(12, 0);
    r.exit(10, 0);
    r
}
