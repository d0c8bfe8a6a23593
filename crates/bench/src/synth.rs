//! Synthetic but realistic events of one host, for `tomo-bench hosts`.
//!
//! Each host runs an interactive shell that starts short commands (a
//! compiler-like tool reading sources and writing an object file, `curl`
//! fetching from another host or from outside and saving the answer), and a
//! web server that accepts connections, reads requests, serves files and
//! appends to its access log. Files, binaries and peers are chosen with a
//! heavy-tailed (log-uniform, Zipf-like) popularity. Every event has the
//! host's id and boot, a sequence number that goes up by one and a
//! wall-clock timestamp that never goes down, as an agent's events have.

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{SystemTime, UNIX_EPOCH};
use tomo_event::{
    Call, Cred, Dir, Event, Id128, ObjKind, ObjRef, Op, ProcRef, SockAddr, SockInfo, SpawnKind,
};

const N_SOURCES: u64 = 20_000;
const N_PAGES: u64 = 5_000;
const N_TOOLS: u64 = 200;
const N_LIBS: u64 = 40;
const N_CLIENTS: u64 = 50_000;
const AF_INET: u16 = 2;
const SOCK_STREAM: u16 = 1;
const IPPROTO_TCP: u16 = 6;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, pct: u64) -> bool {
        self.below(100) < pct
    }
    /// Heavy-tailed index in 0..n (log-uniform, Zipf-like with s ~ 1).
    fn zipf(&mut self, n: u64) -> u64 {
        let u = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        ((n as f64).powf(u) as u64).saturating_sub(1).min(n - 1)
    }
}

/// The address of simulated host `k`.
pub fn host_ip(k: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 77, (k / 250) as u8, (k % 250 + 1) as u8)
}

fn file(path: String, ino: u64) -> ObjRef {
    ObjRef {
        kind: ObjKind::File,
        dev: 0x803,
        ino,
        path: Some(path),
    }
}

fn inet(ip: Ipv4Addr, port: u16) -> Option<SockAddr> {
    Some(SockAddr::Inet {
        ip: IpAddr::V4(ip),
        port,
    })
}

/// One host's event source.
pub struct HostGen {
    host: Id128,
    boot: Id128,
    k: usize,
    hosts: usize,
    rng: Rng,
    seq: u64,
    last_ts: u64,
    next_pid: u32,
    next_ino: u64,
    next_port: u16,
    shell: ProcRef,
    server: ProcRef,
    listen: ObjRef,
    access_log: ObjRef,
    access_off: u64,
    pending: VecDeque<Event>,
}

impl HostGen {
    /// Host `k` of `hosts`.
    pub fn new(host: Id128, boot: Id128, k: usize, hosts: usize, seed: u64) -> HostGen {
        let mut g = HostGen {
            host,
            boot,
            k,
            hosts,
            rng: Rng(seed | 1),
            seq: 0,
            last_ts: 0,
            next_pid: 2_000,
            next_ino: 5_000_000,
            next_port: 32_768,
            shell: ProcRef {
                pid: 1_234,
                tid: 1_234,
                ppid: 1_200,
                start_ticks: 90_000,
            },
            server: ProcRef {
                pid: 812,
                tid: 812,
                ppid: 1,
                start_ticks: 1_500,
            },
            listen: ObjRef {
                kind: ObjKind::Socket,
                dev: 8,
                ino: 40_000,
                path: None,
            },
            access_log: file("/var/log/nginx/access.log".into(), 700_001),
            access_off: 0,
            pending: VecDeque::new(),
        };
        // What an agent says first: the processes that were already there.
        let (sh, srv) = (g.shell, g.server);
        g.push(
            sh,
            1000,
            Op::Observed {
                exe: Some("/usr/bin/bash".into()),
                argv: vec!["-bash".into()],
                cwd: Some("/home/dev/project".into()),
            },
            0,
        );
        g.push(
            srv,
            33,
            Op::Observed {
                exe: Some("/usr/sbin/nginx".into()),
                argv: vec!["nginx: worker process".into()],
                cwd: Some("/".into()),
            },
            0,
        );
        g
    }

    /// The next event.
    pub fn next_event(&mut self) -> Event {
        loop {
            if let Some(ev) = self.pending.pop_front() {
                return ev;
            }
            let r = self.rng.below(100);
            if r < 45 {
                self.command();
            } else if r < 85 {
                self.web_request();
            } else {
                self.download();
            }
        }
    }

    fn now_ns(&mut self) -> u64 {
        let t = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        self.last_ts = t.max(self.last_ts + 1);
        self.last_ts
    }

    fn push(&mut self, proc: ProcRef, uid: u32, op: Op, ret: i64) {
        let ts_ns = self.now_ns();
        self.pending.push_back(Event {
            host: self.host,
            boot: self.boot,
            seq: self.seq,
            ts_ns,
            proc,
            cred: Cred {
                uid,
                gid: uid,
                euid: uid,
                egid: uid,
            },
            op,
            ret,
        });
        self.seq += 1;
    }

    fn ino(&mut self) -> u64 {
        self.next_ino += 1;
        self.next_ino
    }

    fn spawn(&mut self) -> ProcRef {
        self.next_pid = if self.next_pid >= 4_000_000 {
            2_000
        } else {
            self.next_pid + 1
        };
        let child = ProcRef {
            pid: self.next_pid,
            tid: self.next_pid,
            ppid: self.shell.pid,
            start_ticks: self.shell.start_ticks + self.seq,
        };
        let sh = self.shell;
        self.push(
            sh,
            1000,
            Op::Spawn {
                call: Call::clone,
                kind: SpawnKind::Process,
                child,
                flags: 0x0120_0011,
            },
            child.pid as i64,
        );
        child
    }

    fn exec(&mut self, p: ProcRef, exe: &str, ino: u64, argv: Vec<String>) {
        self.push(
            p,
            1000,
            Op::Exec {
                call: Call::execve,
                exe: file(exe.into(), ino),
                argv,
                env: None,
                cwd: Some("/home/dev/project".into()),
            },
            0,
        );
        for k in 0..1 + self.rng.below(3) {
            let l = if k == 0 { 0 } else { 1 + self.rng.zipf(N_LIBS) };
            self.push(
                p,
                1000,
                Op::Mmap {
                    call: Call::mmap,
                    fd: 3,
                    obj: file(
                        format!("/usr/lib/x86_64-linux-gnu/lib{l}.so.6"),
                        300_000 + l,
                    ),
                    offset: 0,
                    len: 1 << 21,
                    prot: (libc::PROT_READ | libc::PROT_EXEC) as u32,
                    flags: libc::MAP_PRIVATE as u32,
                },
                0x7f3a_0000_0000,
            );
        }
    }

    fn exit(&mut self, p: ProcRef) {
        self.push(
            p,
            1000,
            Op::Exit {
                call: Call::exit_group,
                code: 0,
                signal: None,
            },
            0,
        );
    }

    fn open(&mut self, p: ProcRef, uid: u32, fd: i32, obj: &ObjRef, created: bool) {
        let flags = if created { 0o1101 } else { 0o400000 };
        self.push(
            p,
            uid,
            Op::Open {
                call: Call::openat,
                fd,
                obj: obj.clone(),
                flags,
                mode: if created { 0o644 } else { 0 },
                created,
            },
            fd as i64,
        );
    }

    fn close(&mut self, p: ProcRef, uid: u32, fd: i32, obj: &ObjRef) {
        self.push(
            p,
            uid,
            Op::Close {
                call: Call::close,
                fd,
                obj: obj.clone(),
            },
            0,
        );
    }

    #[allow(clippy::too_many_arguments)]
    fn io(
        &mut self,
        p: ProcRef,
        uid: u32,
        call: Call,
        dir: Dir,
        fd: i32,
        obj: &ObjRef,
        offset: u64,
        count: u64,
        sock: Option<&SockInfo>,
    ) {
        self.push(
            p,
            uid,
            Op::Io {
                call,
                dir,
                fd,
                obj: obj.clone(),
                offset: Some(offset),
                count,
                sock: sock.cloned(),
            },
            count as i64,
        );
    }

    /// A compiler-like tool: reads a few sources, writes an object file.
    fn command(&mut self) {
        let p = self.spawn();
        let t = self.rng.zipf(N_TOOLS);
        let src = self.rng.zipf(N_SOURCES);
        self.exec(
            p,
            &format!("/usr/bin/tool{t}"),
            200_000 + t,
            vec![
                format!("tool{t}"),
                "-c".into(),
                format!("src/mod{src}.c"),
                "-o".into(),
                format!("build/mod{src}.o"),
            ],
        );
        for i in 0..1 + self.rng.below(3) {
            let s = if i == 0 {
                src
            } else {
                self.rng.zipf(N_SOURCES)
            };
            let f = file(format!("/home/dev/project/src/mod{s}.c"), 1_000_000 + s);
            self.open(p, 1000, 3, &f, false);
            let mut off = 0;
            for _ in 0..1 + self.rng.below(4) {
                let n = 512 + self.rng.below(8192);
                self.io(p, 1000, Call::read, Dir::Read, 3, &f, off, n, None);
                off += n;
            }
            self.close(p, 1000, 3, &f);
        }
        if self.rng.chance(60) {
            let ino = self.ino();
            let out = file(format!("/home/dev/project/build/mod{src}.o"), ino);
            self.open(p, 1000, 4, &out, true);
            let mut off = 0;
            for _ in 0..1 + self.rng.below(3) {
                let n = 1024 + self.rng.below(16_384);
                self.io(p, 1000, Call::write, Dir::Write, 4, &out, off, n, None);
                off += n;
            }
            self.close(p, 1000, 4, &out);
        }
        self.exit(p);
    }

    /// The web server answers a client.
    fn web_request(&mut self) {
        let srv = self.server;
        let c = self.rng.zipf(N_CLIENTS);
        let sock = SockInfo {
            domain: AF_INET,
            sock_type: SOCK_STREAM,
            protocol: IPPROTO_TCP,
            local: inet(host_ip(self.k), 80),
            peer: inet(
                Ipv4Addr::from(0xc633_6400u32 + c as u32),
                32_768 + (self.seq % 28_000) as u16,
            ),
        };
        let ino = self.ino();
        let conn = ObjRef {
            kind: ObjKind::Socket,
            dev: 8,
            ino,
            path: None,
        };
        let listen = self.listen.clone();
        self.push(
            srv,
            33,
            Op::Accept {
                call: Call::accept4,
                fd: 6,
                new_fd: 12,
                listen_obj: listen,
                obj: conn.clone(),
                sock: sock.clone(),
            },
            12,
        );
        let req = 200 + self.rng.below(600);
        self.io(
            srv,
            33,
            Call::recvfrom,
            Dir::Read,
            12,
            &conn,
            0,
            req,
            Some(&sock),
        );
        let pg = self.rng.zipf(N_PAGES);
        let page = file(format!("/var/www/html/page{pg}.html"), 600_000 + pg);
        self.open(srv, 33, 13, &page, false);
        let size = 1_000 + self.rng.below(60_000);
        self.io(srv, 33, Call::read, Dir::Read, 13, &page, 0, size, None);
        self.close(srv, 33, 13, &page);
        let mut off = 0;
        for _ in 0..1 + size / 32_768 {
            let n = (size - off).min(32_768);
            self.io(
                srv,
                33,
                Call::sendto,
                Dir::Write,
                12,
                &conn,
                off,
                n,
                Some(&sock),
            );
            off += n;
        }
        let line = 90 + self.rng.below(60);
        let log = self.access_log.clone();
        let at = self.access_off;
        self.io(srv, 33, Call::write, Dir::Write, 5, &log, at, line, None);
        self.access_off += line;
        self.close(srv, 33, 12, &conn);
    }

    /// `curl` fetches from another simulated host's web server (or from
    /// outside) and saves the answer.
    fn download(&mut self) {
        let p = self.spawn();
        let (peer, name) = if self.hosts > 1 && self.rng.chance(70) {
            let other = (self.k + 1 + self.rng.below(self.hosts as u64 - 1) as usize) % self.hosts;
            (host_ip(other), format!("host{other}"))
        } else {
            (Ipv4Addr::new(93, 184, 216, 34), "example.org".into())
        };
        let pg = self.rng.zipf(N_PAGES);
        self.exec(
            p,
            "/usr/bin/curl",
            200_999,
            vec![
                "curl".into(),
                "-sO".into(),
                format!("http://{name}/page{pg}.html"),
            ],
        );
        self.next_port = if self.next_port >= 60_999 {
            32_768
        } else {
            self.next_port + 1
        };
        let sock = SockInfo {
            domain: AF_INET,
            sock_type: SOCK_STREAM,
            protocol: IPPROTO_TCP,
            local: inet(host_ip(self.k), self.next_port),
            peer: inet(peer, 80),
        };
        let ino = self.ino();
        let s = ObjRef {
            kind: ObjKind::Socket,
            dev: 8,
            ino,
            path: None,
        };
        self.push(
            p,
            1000,
            Op::Socket {
                call: Call::socket,
                fd: 5,
                obj: s.clone(),
                sock: SockInfo {
                    local: None,
                    peer: None,
                    ..sock.clone()
                },
            },
            5,
        );
        self.push(
            p,
            1000,
            Op::Connect {
                call: Call::connect,
                fd: 5,
                obj: s.clone(),
                sock: sock.clone(),
            },
            0,
        );
        let req = 80 + self.rng.below(100);
        self.io(
            p,
            1000,
            Call::sendto,
            Dir::Write,
            5,
            &s,
            0,
            req,
            Some(&sock),
        );
        let ino = self.ino();
        let out = file(format!("/home/dev/project/page{pg}.html"), ino);
        self.open(p, 1000, 6, &out, true);
        let size = 1_000 + self.rng.below(60_000);
        let mut off = 0;
        while off < size {
            let n = (size - off).min(16_384);
            self.io(
                p,
                1000,
                Call::recvfrom,
                Dir::Read,
                5,
                &s,
                off,
                n,
                Some(&sock),
            );
            self.io(p, 1000, Call::write, Dir::Write, 6, &out, off, n, None);
            off += n;
        }
        self.close(p, 1000, 6, &out);
        self.close(p, 1000, 5, &s);
        self.exit(p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seq_and_time_go_up() {
        let mut g = HostGen::new(Id128([1; 16]), Id128([2; 16]), 0, 3, 7);
        let mut last: Option<Event> = None;
        let mut kinds = std::collections::BTreeSet::new();
        for _ in 0..20_000 {
            let e = g.next_event();
            if let Some(l) = &last {
                assert_eq!(e.seq, l.seq + 1);
                assert!(e.ts_ns > l.ts_ns);
            }
            kinds.insert(e.op.call().name());
            last = Some(e);
        }
        for k in [
            "clone",
            "execve",
            "exit_group",
            "openat",
            "read",
            "write",
            "close",
            "connect",
            "sendto",
            "recvfrom",
            "accept4",
        ] {
            assert!(kinds.contains(k), "no {k} event");
        }
    }
}
