//! Deterministic generator of a realistic event mix, shared by the tests and
//! the throughput example.
#![allow(dead_code)]

use tomo_event::*;

/// xorshift64*: tiny, deterministic, good enough for test data.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

pub const HOST: Id128 = Id128([0x11; 16]);
pub const BOOT: Id128 = Id128([0x22; 16]);

/// Produces events with strictly increasing `seq` and non-decreasing `ts_ns`,
/// shaped like a build recorded by the ptrace source: mostly reads and
/// writes of files, opens/closes, library mmaps, some pipes and sockets, and
/// occasional process creation.
pub struct Gen {
    rng: Rng,
    pub seq: u64,
    pub ts: u64,
    paths: Vec<String>,
    libs: Vec<String>,
}

impl Gen {
    pub fn new(seed: u64) -> Gen {
        let mut paths = Vec::new();
        for i in 0..300 {
            paths.push(match i % 5 {
                0 => format!("/home/dev/project/src/module_{i}/mod.rs"),
                1 => format!("/home/dev/project/target/debug/deps/libcrate_{i}-3f2a9c1b7d.rlib"),
                2 => format!("/usr/include/x86_64-linux-gnu/sys/header_{i}.h"),
                3 => format!("/tmp/cc{i:06}.o"),
                _ => format!("/etc/conf_{i}.d/settings.conf"),
            });
        }
        let libs = [
            "libc.so.6",
            "libm.so.6",
            "libgcc_s.so.1",
            "libz.so.1",
            "libstdc++.so.6",
            "ld-linux-x86-64.so.2",
        ]
        .iter()
        .map(|l| format!("/usr/lib/x86_64-linux-gnu/{l}"))
        .collect();
        Gen {
            rng: Rng::new(seed),
            seq: 0,
            ts: 1_700_000_000_000_000_000,
            paths,
            libs,
        }
    }

    fn file(&mut self) -> ObjRef {
        let i = self.rng.below(self.paths.len() as u64) as usize;
        ObjRef {
            kind: ObjKind::File,
            dev: 2049,
            ino: 100_000 + i as u64,
            path: Some(self.paths[i].clone()),
        }
    }

    pub fn next_event(&mut self) -> Event {
        let r = &mut self.rng;
        self.ts += 200 + r.below(20_000);
        let pid = 1000 + r.below(40) as u32;
        let proc = ProcRef {
            pid,
            tid: pid + (r.below(4) == 0) as u32,
            ppid: 999,
            start_ticks: 5000 + pid as u64,
        };
        let cred = Cred {
            uid: 1000,
            gid: 1000,
            euid: 1000,
            egid: 1000,
        };
        let dice = self.rng.below(100);
        let fd = 3 + self.rng.below(20) as i32;
        let (op, ret) = match dice {
            0..=44 => {
                let obj = self.file();
                let count = self.rng.below(65536);
                let dir = if self.rng.below(3) == 0 {
                    Dir::Write
                } else {
                    Dir::Read
                };
                let call = if dir == Dir::Read {
                    Call::read
                } else {
                    Call::write
                };
                (
                    Op::Io {
                        call,
                        dir,
                        fd,
                        obj,
                        offset: Some(self.rng.below(1 << 20)),
                        count,
                        sock: None,
                    },
                    count as i64,
                )
            }
            45..=56 => {
                let obj = self.file();
                let created = self.rng.below(10) == 0;
                (
                    Op::Open {
                        call: Call::openat,
                        fd,
                        obj,
                        flags: 0o100000,
                        mode: 0o644,
                        created,
                    },
                    fd as i64,
                )
            }
            57..=68 => (
                Op::Close {
                    call: Call::close,
                    fd,
                    obj: self.file(),
                },
                0,
            ),
            69..=76 => {
                let i = self.rng.below(self.libs.len() as u64) as usize;
                let obj = ObjRef {
                    kind: ObjKind::File,
                    dev: 2049,
                    ino: 7000 + i as u64,
                    path: Some(self.libs[i].clone()),
                };
                (
                    Op::Mmap {
                        call: Call::mmap,
                        fd,
                        obj,
                        offset: 0,
                        len: 1 << 21,
                        prot: 5,
                        flags: 2,
                    },
                    0x7f00_0000_0000,
                )
            }
            77..=84 => {
                let obj = ObjRef {
                    kind: ObjKind::Pipe,
                    dev: 13,
                    ino: 40_000 + self.rng.below(50),
                    path: None,
                };
                let count = self.rng.below(4096);
                (
                    Op::Io {
                        call: Call::write,
                        dir: Dir::Write,
                        fd,
                        obj,
                        offset: Some(self.rng.below(1 << 16)),
                        count,
                        sock: None,
                    },
                    count as i64,
                )
            }
            85..=88 => {
                let obj = ObjRef {
                    kind: ObjKind::Socket,
                    dev: 8,
                    ino: 90_000 + self.rng.below(10),
                    path: None,
                };
                let sock = SockInfo {
                    domain: 2,
                    sock_type: 1,
                    protocol: 6,
                    local: Some(SockAddr::Inet {
                        ip: "127.0.0.1".parse().unwrap(),
                        port: 40000,
                    }),
                    peer: Some(SockAddr::Inet {
                        ip: "127.0.0.1".parse().unwrap(),
                        port: 8080,
                    }),
                };
                let count = self.rng.below(1500);
                (
                    Op::Io {
                        call: Call::recvfrom,
                        dir: Dir::Read,
                        fd,
                        obj,
                        offset: None,
                        count,
                        sock: Some(sock),
                    },
                    count as i64,
                )
            }
            89..=91 => {
                let child = ProcRef {
                    pid: pid + 100,
                    tid: pid + 100,
                    ppid: pid,
                    start_ticks: self.ts / 10_000_000,
                };
                (
                    Op::Spawn {
                        call: Call::clone,
                        kind: SpawnKind::Process,
                        child,
                        flags: 0x1200011,
                    },
                    (pid + 100) as i64,
                )
            }
            92..=93 => {
                let exe = ObjRef {
                    kind: ObjKind::File,
                    dev: 2049,
                    ino: 555,
                    path: Some("/usr/bin/cc".into()),
                };
                let argv = vec![
                    "cc".into(),
                    "-c".into(),
                    "-O2".into(),
                    format!("src/file{}.c", self.seq % 97),
                    "-o".into(),
                    format!("/tmp/cc{:06}.o", self.seq % 97),
                ];
                (
                    Op::Exec {
                        call: Call::execve,
                        exe,
                        argv,
                        env: None,
                        cwd: Some("/home/dev/project".into()),
                    },
                    0,
                )
            }
            94..=95 => (
                Op::Exit {
                    call: Call::exit_group,
                    code: 0,
                    signal: None,
                },
                0,
            ),
            96..=97 => {
                let obj = self.file();
                (
                    Op::Rename {
                        call: Call::rename,
                        old_path: format!("/tmp/cc{:06}.tmp", self.seq % 1000),
                        new_path: obj.path.clone().unwrap(),
                        obj,
                        replaced: None,
                    },
                    0,
                )
            }
            _ => {
                let obj = self.file();
                (
                    Op::Unlink {
                        call: Call::unlinkat,
                        path: obj.path.clone().unwrap(),
                        obj,
                        dir: false,
                    },
                    0,
                )
            }
        };
        let ev = Event {
            host: HOST,
            boot: BOOT,
            seq: self.seq,
            ts_ns: self.ts,
            proc,
            cred,
            op,
            ret,
        };
        self.seq += 1;
        ev
    }

    pub fn take(&mut self, n: usize) -> Vec<Event> {
        (0..n).map(|_| self.next_event()).collect()
    }
}

pub fn meta() -> tomo_log::RecordingMeta {
    tomo_log::RecordingMeta {
        host: HOST,
        boot: BOOT,
        source: "test".into(),
        command: vec!["make".into(), "-j2".into()],
        cut_from: None,
        host_name: None,
    }
}
