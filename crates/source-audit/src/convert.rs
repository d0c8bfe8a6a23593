//! One assembled audit event (SYSCALL + its PATH, EXECVE, CWD, SOCKADDR, …
//! records) → at most one normalized [`Op`], mirroring what the ptrace
//! recorder reports for the same call (`crates/capture-ptrace/src/calls.rs`).
//!
//! Audit names objects only where the kernel looked a path up (PATH
//! records). Calls on descriptors (read, write, mmap, …) carry just the
//! number in `a0`, so a model of each process's descriptor table is kept
//! here, fed by the calls that create, copy and close descriptors; a call
//! on a descriptor the model never saw created is dropped and counted,
//! never attributed to a guessed object.

use crate::record::Record;
use crate::syscalls;
use crate::Stats;
use std::cell::RefCell;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Component, Path, PathBuf};
use std::rc::Rc;
use tomo_event::{
    Call, Cred, Dir, Event, Id128, ObjKind, ObjRef, Op, ProcRef, SockAddr, SockInfo, SpawnKind,
};

/// The records of one event (one serial), as collected by the assembler.
#[derive(Debug, Default)]
pub struct Assembled {
    pub ts_ns: u64,
    pub serial: u64,
    pub syscall: Option<Record>,
    pub execve: Vec<Record>,
    pub paths: Vec<Record>,
    pub cwd: Option<Record>,
    pub sockaddr: Option<Record>,
    pub proctitle: Option<Record>,
    pub fd_pair: Option<Record>,
    pub obj_pids: Vec<Record>,
    pub mmap: Option<Record>,
    pub openat2: Option<Record>,
}

/// What one event became.
pub struct Converted {
    /// Synthesized before the event: the first sighting of a process.
    pub observed: Option<Event>,
    pub main: Event,
    /// A `clone3` whose flags audit cannot show: the child pid, so the
    /// caller can decide later whether it was a thread.
    pub clone3_child: Option<u32>,
}

const O_WRONLY: u32 = 0o1;
const O_CREAT: u32 = 0o100;
const O_TRUNC: u32 = 0o1000;
const O_APPEND: u32 = 0o2000;
const O_CLOEXEC: u64 = 0o2000000;
const O_TMPFILE: u32 = 0o20200000;
const AT_FDCWD: i32 = -100;
const AT_REMOVEDIR: u64 = 0x200;
const CLONE_VM: u64 = 0x100;
const CLONE_VFORK: u64 = 0x4000;
const CLONE_THREAD: u64 = 0x10000;
const SIGCHLD: u64 = 17;
const EBADF: i64 = 9;
const EINPROGRESS: i64 = 115;
const MAP_ANONYMOUS: u64 = 0x20;
const F_DUPFD: u64 = 0;
const F_SETFD: u64 = 2;
const F_DUPFD_CLOEXEC: u64 = 1030;
const FD_CLOEXEC: u64 = 1;
const CLOSE_RANGE_CLOEXEC: u64 = 4;

/// An open file description, shared by dup'ed and inherited descriptors
/// exactly as in the kernel, so offsets stay right across `sh` redirections.
#[derive(Clone, Debug)]
struct Ofd {
    obj: ObjRef,
    pos: u64,
    append: bool,
    rd: u64,
    wr: u64,
    sock: Option<SockInfo>,
}

impl Ofd {
    fn new(obj: ObjRef) -> Ofd {
        Ofd {
            obj,
            pos: 0,
            append: false,
            rd: 0,
            wr: 0,
            sock: None,
        }
    }
}

#[derive(Clone)]
struct Fd {
    ofd: Rc<RefCell<Ofd>>,
    cloexec: bool,
}

type FdTable = HashMap<i32, Fd>;

/// State of one host's boot: the processes seen and their descriptors.
#[derive(Default)]
struct Boot {
    procs: HashMap<u32, FdTable>,
}

/// Bound on the processes whose descriptor tables are kept per boot: a
/// process that ends without an audited `exit_group` (killed by a signal)
/// would otherwise keep its table forever in a days-long log.
const MAX_PROCS: usize = 200_000;

#[derive(Default)]
pub struct Converter {
    boots: HashMap<(Id128, Id128), Boot>,
}

/// A synthetic inode for pipes and sockets, whose real inodes audit never
/// reports: unique per event and end, on device 0 (which no real
/// filesystem uses), so the ingest still tells every pipe from every other.
fn synth(kind: ObjKind, serial: u64, end: u64) -> ObjRef {
    ObjRef {
        kind,
        dev: 0,
        ino: serial.wrapping_mul(2).wrapping_add(end),
        path: None,
    }
}

fn named_unknown(path: &str) -> ObjRef {
    ObjRef {
        kind: ObjKind::Unknown,
        dev: 0,
        ino: 0,
        path: Some(path.to_string()),
    }
}

pub fn kind_of(mode: u32) -> ObjKind {
    match mode & 0o170000 {
        0o100000 => ObjKind::File,
        0o040000 => ObjKind::Dir,
        0o120000 => ObjKind::Symlink,
        0o010000 => ObjKind::Pipe,
        0o140000 => ObjKind::Socket,
        0o020000 => ObjKind::CharDev,
        0o060000 => ObjKind::BlockDev,
        _ => ObjKind::Unknown,
    }
}

/// `fd:01` (hex major:minor, as audit prints `MAJOR(dev):MINOR(dev)`) →
/// the `st_dev` that `stat` reports (glibc's `makedev` encoding).
pub fn parse_dev(s: &str) -> Option<u64> {
    let (ma, mi) = s.split_once(':')?;
    let ma = u64::from_str_radix(ma, 16).ok()?;
    let mi = u64::from_str_radix(mi, 16).ok()?;
    Some(
        ((ma & 0xffff_f000) << 32)
            | ((ma & 0x0000_0fff) << 8)
            | ((mi & 0xffff_ff00) << 12)
            | (mi & 0x0000_00ff),
    )
}

/// Decode a `struct sockaddr_*` as the kernel lays it out (audit's
/// `saddr=` is its bytes in hex; the family is in host order, and audit
/// logs come from little-endian machines in practice).
pub fn parse_sockaddr(b: &[u8]) -> Option<SockAddr> {
    if b.len() < 2 {
        return None;
    }
    let family = u16::from_le_bytes([b[0], b[1]]);
    Some(match family {
        2 if b.len() >= 8 => SockAddr::Inet {
            ip: IpAddr::V4(Ipv4Addr::new(b[4], b[5], b[6], b[7])),
            port: u16::from_be_bytes([b[2], b[3]]),
        },
        10 if b.len() >= 24 => {
            let mut a = [0u8; 16];
            a.copy_from_slice(&b[8..24]);
            SockAddr::Inet {
                ip: IpAddr::V6(Ipv6Addr::from(a)),
                port: u16::from_be_bytes([b[2], b[3]]),
            }
        }
        1 => {
            let p = &b[2..];
            if p.is_empty() {
                SockAddr::Unnamed
            } else if p[0] == 0 {
                SockAddr::Unix {
                    path: String::from_utf8_lossy(&p[1..]).into_owned(),
                    abstract_ns: true,
                }
            } else {
                let end = p.iter().position(|&c| c == 0).unwrap_or(p.len());
                SockAddr::Unix {
                    path: String::from_utf8_lossy(&p[..end]).into_owned(),
                    abstract_ns: false,
                }
            }
        }
        _ => SockAddr::Other { family },
    })
}

/// The absolute, lexically normalized form of `path` against `base`, as the
/// ptrace recorder names paths (symlinks are not resolved: this is the
/// name the process used).
fn join_path(base: Option<&str>, path: &str) -> String {
    let full = if path.starts_with('/') {
        PathBuf::from(path)
    } else {
        match base {
            Some(b) => Path::new(b).join(path),
            // No directory to resolve against: keep the relative name.
            None => return path.to_string(),
        }
    };
    let mut out = PathBuf::from("/");
    for c in full.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(s) => out.push(s),
            _ => {}
        }
    }
    out.to_string_lossy().into_owned()
}

/// One PATH record, decoded.
#[derive(Clone, Debug)]
struct Item {
    name: Option<String>,
    ino: Option<u64>,
    dev: Option<u64>,
    mode: Option<u32>,
    nametype: String,
}

impl Item {
    fn of(r: &Record) -> (u64, Item) {
        let nametype = r
            .text("nametype")
            .or_else(|| r.text("objtype"))
            .unwrap_or_default();
        (
            r.dec("item").unwrap_or(u64::MAX as i64) as u64,
            Item {
                name: r.text("name"),
                ino: r.dec("inode").map(|i| i as u64),
                dev: r.get("dev").and_then(|v| parse_dev(v.raw())),
                mode: r
                    .get("mode")
                    .and_then(|v| u32::from_str_radix(v.raw(), 8).ok()),
                nametype,
            },
        )
    }

    fn is(&self, t: &str) -> bool {
        self.nametype == t
    }

    /// The object at `path`: what the kernel reported, or only its name
    /// when the record carries no inode (a name that did not resolve).
    fn obj(&self, path: &str) -> ObjRef {
        match (self.ino, self.dev) {
            (Some(ino), Some(dev)) => ObjRef {
                kind: self.mode.map(kind_of).unwrap_or(ObjKind::Unknown),
                dev,
                ino,
                path: Some(path.to_string()),
            },
            _ => named_unknown(path),
        }
    }
}

/// The SYSCALL record's facts.
struct Sc<'a> {
    r: &'a Record,
    serial: u64,
    a: [u64; 4],
    ret: i64,
    ok: bool,
    pid: u32,
    cwd: Option<String>,
}

impl Converter {
    pub fn new() -> Converter {
        Converter::default()
    }

    /// Forget everything about one boot of one host (it has ended).
    pub fn end_boot(&mut self, host: Id128, boot: Id128) {
        self.boots.remove(&(host, boot));
    }

    pub fn convert(
        &mut self,
        host: Id128,
        boot: Id128,
        ev: &Assembled,
        stats: &mut Stats,
    ) -> Result<Option<Converted>, String> {
        let Some(r) = &ev.syscall else {
            stats.events_without_syscall += 1;
            return Ok(None);
        };
        let name: &str = match r.enriched("SYSCALL").map(|v| v.raw()) {
            Some(n) if !n.is_empty() && !n.bytes().all(|b| b.is_ascii_digit()) => n,
            _ => {
                let arch = r.hex("arch");
                let nr = r.dec("syscall");
                match (arch, nr) {
                    (Some(syscalls::ARCH_X86_64), Some(nr)) => {
                        match syscalls::x86_64_name(nr as u64) {
                            Some(n) => n,
                            None => {
                                stats.unmapped_syscalls += 1;
                                return Ok(None);
                            }
                        }
                    }
                    (Some(_), Some(_)) => {
                        stats.unsupported_arch += 1;
                        return Ok(None);
                    }
                    _ => return Err("SYSCALL record without arch= and syscall=".into()),
                }
            }
        };
        let pid = r
            .dec("pid")
            .ok_or("SYSCALL record without pid=")?
            .clamp(0, u32::MAX as i64) as u32;
        let ppid = r.dec("ppid").unwrap_or(0).clamp(0, u32::MAX as i64) as u32;
        let id = |k: &str| r.dec(k).unwrap_or(0) as u32;
        let cred = Cred {
            uid: id("uid"),
            gid: id("gid"),
            euid: id("euid"),
            egid: id("egid"),
        };
        let ret = match r.dec("exit") {
            Some(x) => x,
            // exit_group never returns: audit logs it without success/exit.
            None if r.text("success").as_deref() == Some("no") => -1,
            None => 0,
        };
        let sc = Sc {
            r,
            serial: ev.serial,
            a: [
                r.hex("a0").unwrap_or(0),
                r.hex("a1").unwrap_or(0),
                r.hex("a2").unwrap_or(0),
                r.hex("a3").unwrap_or(0),
            ],
            ret,
            ok: ret >= 0,
            pid,
            cwd: ev.cwd.as_ref().and_then(|c| c.text("cwd")),
        };
        let key = (host, boot);
        let b = self.boots.entry(key).or_default();
        // First sighting of this process in this boot: it either inherited
        // its parent's descriptors (when the parent is known: the child of a
        // fork that was logged after the child's first calls) or existed
        // before the log began.
        let first_sight = !b.procs.contains_key(&pid);
        if first_sight {
            if b.procs.len() >= MAX_PROCS {
                b.procs.clear();
                stats.state_resets += 1;
            }
            let inherited = b.procs.get(&ppid).map(copy_table).unwrap_or_default();
            b.procs.insert(pid, inherited);
        }
        let call = match syscalls::call_of(name) {
            Some(c) => c,
            None => {
                if syscalls::returns_untracked_fd(name) && sc.ok {
                    if let Some(t) = b.procs.get_mut(&pid) {
                        t.remove(&(ret as i32));
                    }
                } else {
                    stats.unmapped_syscalls += 1;
                }
                return Ok(None);
            }
        };
        let proc = ProcRef {
            pid,
            tid: pid,
            ppid,
            start_ticks: 0,
        };
        let mut clone3_child = None;
        let op = self.op(key, call, &sc, ev, &mut clone3_child, stats);
        let Some(op) = op else { return Ok(None) };
        let mk = |op: Op, seq: u64, ret: i64| Event {
            host,
            boot,
            seq,
            ts_ns: ev.ts_ns,
            proc,
            cred,
            op,
            ret,
        };
        let is_exec = matches!(op, Op::Exec { .. }) && sc.ok;
        // A process whose first event is a successful exec is fully named by
        // it; anyone else gets an `Observed` with what the record says.
        let observed = (first_sight && !is_exec).then(|| {
            let argv = ev
                .proctitle
                .as_ref()
                .and_then(|p| p.get("proctitle"))
                .and_then(|v| v.bytes())
                .map(|b| {
                    b.split(|&c| c == 0)
                        .filter(|s| !s.is_empty())
                        .map(|s| String::from_utf8_lossy(s).into_owned())
                        .collect()
                })
                .unwrap_or_default();
            mk(
                Op::Observed {
                    exe: r.text("exe"),
                    argv,
                    cwd: sc.cwd.clone(),
                },
                ev.serial * 2,
                0,
            )
        });
        if matches!(op, Op::Exit { .. }) {
            if let Some(b) = self.boots.get_mut(&key) {
                b.procs.remove(&pid);
            }
        }
        Ok(Some(Converted {
            observed,
            main: mk(op, ev.serial * 2 + 1, ret),
            clone3_child,
        }))
    }

    fn table(&mut self, key: (Id128, Id128), pid: u32) -> &mut FdTable {
        self.boots
            .entry(key)
            .or_default()
            .procs
            .entry(pid)
            .or_default()
    }

    fn fd(&mut self, key: (Id128, Id128), pid: u32, fd: i32) -> Option<Rc<RefCell<Ofd>>> {
        self.table(key, pid).get(&fd).map(|f| Rc::clone(&f.ofd))
    }

    fn install(&mut self, key: (Id128, Id128), pid: u32, fd: i32, ofd: Ofd, cloexec: bool) {
        self.table(key, pid).insert(
            fd,
            Fd {
                ofd: Rc::new(RefCell::new(ofd)),
                cloexec,
            },
        );
    }

    /// A socket descriptor the model never saw created (inherited, or the
    /// `socket` call was not audited): it is certainly a socket, so give it
    /// a synthetic identity once and keep it.
    fn socket_fd(&mut self, key: (Id128, Id128), sc: &Sc, fd: i32) -> Rc<RefCell<Ofd>> {
        if let Some(o) = self.fd(key, sc.pid, fd) {
            return o;
        }
        let o = Rc::new(RefCell::new(Ofd::new(synth(ObjKind::Socket, sc.serial, 0))));
        self.table(key, sc.pid).insert(
            fd,
            Fd {
                ofd: Rc::clone(&o),
                cloexec: false,
            },
        );
        o
    }

    /// Resolve a PATH name against the directory a `*at` call used.
    fn resolve(
        &mut self,
        key: (Id128, Id128),
        sc: &Sc,
        name: Option<&str>,
        dirfd: Option<u64>,
    ) -> String {
        let name = name.unwrap_or("");
        if name.starts_with('/') {
            return join_path(None, name);
        }
        let dirfd = dirfd.map(|d| d as u32 as i32).unwrap_or(AT_FDCWD);
        let base = if dirfd == AT_FDCWD {
            sc.cwd.clone()
        } else {
            self.fd(key, sc.pid, dirfd)
                .and_then(|o| o.borrow().obj.path.clone())
        };
        join_path(base.as_deref(), name)
    }

    #[allow(clippy::too_many_lines)]
    fn op(
        &mut self,
        key: (Id128, Id128),
        call: Call,
        sc: &Sc,
        ev: &Assembled,
        clone3_child: &mut Option<u32>,
        stats: &mut Stats,
    ) -> Option<Op> {
        let a = sc.a;
        let ok = sc.ok;
        let ret = sc.ret;
        let pid = sc.pid;
        let mut items: Vec<(u64, Item)> = ev.paths.iter().map(Item::of).collect();
        items.sort_by_key(|(i, _)| *i);
        let items: Vec<Item> = items.into_iter().map(|(_, it)| it).collect();
        // The object of a path call: the item that is not the parent directory.
        let target = |want: &[&str]| -> Option<Item> {
            items
                .iter()
                .rev()
                .find(|it| want.iter().any(|w| it.is(w)))
                .or_else(|| items.iter().rev().find(|it| !it.is("PARENT")))
                .cloned()
        };
        let fd0 = a[0] as u32 as i32;
        Some(match call {
            Call::fork | Call::vfork | Call::clone | Call::clone3 => {
                let flags = match call {
                    Call::fork => SIGCHLD,
                    Call::vfork => CLONE_VM | CLONE_VFORK | SIGCHLD,
                    Call::clone => a[0],
                    // clone3's flags live in a struct audit does not copy.
                    _ => 0,
                };
                let kind = if call == Call::vfork || flags & CLONE_VFORK != 0 {
                    SpawnKind::Vfork
                } else if flags & CLONE_THREAD != 0 {
                    SpawnKind::Thread
                } else {
                    SpawnKind::Process
                };
                let child = if !ok {
                    ProcRef::default()
                } else if kind == SpawnKind::Thread {
                    ProcRef {
                        pid,
                        tid: ret as u32,
                        ppid: sc.r.dec("ppid").unwrap_or(0) as u32,
                        start_ticks: 0,
                    }
                } else {
                    let c = ret as u32;
                    let b = self.boots.entry(key).or_default();
                    if !b.procs.contains_key(&c) {
                        let t = b.procs.get(&pid).map(copy_table).unwrap_or_default();
                        b.procs.insert(c, t);
                    }
                    if call == Call::clone3 {
                        *clone3_child = Some(c);
                    }
                    ProcRef {
                        pid: c,
                        tid: c,
                        ppid: pid,
                        start_ticks: 0,
                    }
                };
                Op::Spawn {
                    call,
                    kind,
                    child,
                    flags,
                }
            }
            Call::execve | Call::execveat => {
                let argv = execve_argv(&ev.execve);
                if ok {
                    let exe_path = sc.r.text("exe");
                    let dirfd = (call == Call::execveat).then_some(a[0]);
                    let resolved: Vec<String> = items
                        .iter()
                        .map(|it| self.resolve(key, sc, it.name.as_deref(), dirfd))
                        .collect();
                    // The binary that runs is `exe=` (for a script, its
                    // interpreter, as /proc/PID/exe says to ptrace). Take the
                    // PATH item that names it; else item 0 (the file execve
                    // was given, whose inode is the symlink's target).
                    let pick = exe_path
                        .as_deref()
                        .and_then(|e| {
                            resolved.iter().position(|p| p == e).or_else(|| {
                                let base = e.rsplit('/').next().unwrap_or(e);
                                (1..items.len()).find(|&i| {
                                    resolved[i].rsplit('/').next() == Some(base)
                                        && resolved[0].rsplit('/').next() != Some(base)
                                })
                            })
                        })
                        .unwrap_or(0);
                    let path = exe_path
                        .clone()
                        .or_else(|| resolved.get(pick).cloned())
                        .unwrap_or_default();
                    let exe = match items.get(pick) {
                        Some(it) => it.obj(&path),
                        None => named_unknown(&path),
                    };
                    // exec keeps descriptors without close-on-exec.
                    self.table(key, pid).retain(|_, f| !f.cloexec);
                    Op::Exec {
                        call,
                        exe,
                        argv,
                        env: None,
                        cwd: sc.cwd.clone(),
                    }
                } else {
                    let dirfd = (call == Call::execveat).then_some(a[0]);
                    let path = self.resolve(
                        key,
                        sc,
                        items.first().and_then(|i| i.name.as_deref()),
                        dirfd,
                    );
                    Op::Exec {
                        call,
                        exe: named_unknown(&path),
                        argv,
                        env: None,
                        cwd: sc.cwd.clone(),
                    }
                }
            }
            Call::exit_group => Op::Exit {
                call,
                code: a[0] as u32 as i32,
                signal: None,
            },
            // exit(2) ends one thread, but audit names threads by their
            // process id: reporting it would end the whole process.
            Call::exit => return None,
            Call::kill | Call::tkill | Call::tgkill => {
                let (target_tid, sig) = match call {
                    Call::tgkill => (a[1] as u32 as i32, a[2] as i32),
                    _ => (a[0] as u32 as i32, a[1] as i32),
                };
                if target_tid <= 0 {
                    // Process-group and broadcast signals name no single process.
                    return None;
                }
                let opid = ev
                    .obj_pids
                    .first()
                    .and_then(|o| o.dec("opid"))
                    .map(|p| p as u32);
                let tgid = match call {
                    Call::tgkill => a[0] as u32,
                    Call::tkill => opid.unwrap_or(target_tid as u32),
                    _ => target_tid as u32,
                };
                Op::Kill {
                    call,
                    target: ProcRef {
                        pid: tgid,
                        tid: target_tid as u32,
                        ppid: 0,
                        start_ticks: 0,
                    },
                    signal: sig,
                }
            }
            Call::open | Call::openat | Call::openat2 | Call::creat => {
                let (flags, mode, dirfd) = match call {
                    Call::open => (a[1] as u32, a[2] as u32, None),
                    Call::creat => (O_CREAT | O_TRUNC | O_WRONLY, a[1] as u32, None),
                    Call::openat => (a[2] as u32, a[3] as u32, Some(a[0])),
                    _ => {
                        let o = ev.openat2.as_ref();
                        let oct = |k: &str| {
                            o.and_then(|r| r.get(k))
                                .and_then(|v| u64::from_str_radix(v.raw(), 8).ok())
                                .unwrap_or(0) as u32
                        };
                        (oct("oflag"), oct("mode"), Some(a[0]))
                    }
                };
                let it = target(&["CREATE", "NORMAL"]);
                let path =
                    self.resolve(key, sc, it.as_ref().and_then(|i| i.name.as_deref()), dirfd);
                if ok {
                    let fd = ret as i32;
                    let obj = it
                        .as_ref()
                        .map(|i| i.obj(&path))
                        .unwrap_or_else(|| named_unknown(&path));
                    let created = obj.kind == ObjKind::File
                        && (flags & O_TMPFILE == O_TMPFILE
                            || it.as_ref().is_some_and(|i| i.is("CREATE")));
                    let mut o = Ofd::new(obj.clone());
                    o.append = flags & O_APPEND != 0;
                    self.install(key, pid, fd, o, flags as u64 & O_CLOEXEC != 0);
                    Op::Open {
                        call,
                        fd,
                        obj,
                        flags,
                        mode,
                        created,
                    }
                } else {
                    Op::Open {
                        call,
                        fd: -1,
                        obj: named_unknown(&path),
                        flags,
                        mode,
                        created: false,
                    }
                }
            }
            Call::close => {
                let t = self.table(key, pid);
                let obj = if ret != -EBADF {
                    t.remove(&fd0)
                } else {
                    t.get(&fd0).cloned()
                }
                .map(|f| f.ofd.borrow().obj.clone())
                .unwrap_or_else(ObjRef::unknown);
                Op::Close { call, fd: fd0, obj }
            }
            Call::close_range => {
                if ok {
                    let (lo, hi) = (a[0] as u32, a[1] as u32);
                    let t = self.table(key, pid);
                    if a[2] & CLOSE_RANGE_CLOEXEC != 0 {
                        for (fd, f) in t.iter_mut() {
                            if (lo..=hi).contains(&(*fd as u32)) {
                                f.cloexec = true;
                            }
                        }
                    } else {
                        t.retain(|&fd, _| !(lo..=hi).contains(&(fd as u32)));
                    }
                }
                return None;
            }
            Call::read
            | Call::readv
            | Call::pread64
            | Call::preadv
            | Call::preadv2
            | Call::write
            | Call::writev
            | Call::pwrite64
            | Call::pwritev
            | Call::pwritev2
            | Call::recvfrom
            | Call::recvmsg
            | Call::recvmmsg
            | Call::sendto
            | Call::sendmsg
            | Call::sendmmsg => {
                let dir = match call {
                    Call::read
                    | Call::readv
                    | Call::pread64
                    | Call::preadv
                    | Call::preadv2
                    | Call::recvfrom
                    | Call::recvmsg
                    | Call::recvmmsg => Dir::Read,
                    _ => Dir::Write,
                };
                let explicit = match call {
                    Call::pread64 | Call::pwrite64 | Call::preadv | Call::pwritev => Some(a[3]),
                    Call::preadv2 | Call::pwritev2 if a[3] as i64 != -1 => Some(a[3]),
                    _ => None,
                };
                let Some(o) = self.fd(key, pid, fd0) else {
                    stats.untracked_fd += 1;
                    return None;
                };
                // *mmsg calls return a message count, not bytes.
                let count = if !ok || matches!(call, Call::sendmmsg | Call::recvmmsg) {
                    0
                } else {
                    ret as u64
                };
                let offset = advance(&o, explicit, dir, count);
                let ob = o.borrow();
                if ob.obj.kind == ObjKind::Anon {
                    return None;
                }
                let addr = sockaddr(ev);
                let sock = ob.sock.clone().map(|mut s| {
                    if let Some(a) = addr {
                        s.peer = Some(a);
                    }
                    s
                });
                Op::Io {
                    call,
                    dir,
                    fd: fd0,
                    obj: ob.obj.clone(),
                    offset,
                    count,
                    sock,
                }
            }
            Call::sendfile | Call::splice | Call::tee | Call::copy_file_range => {
                let (src_fd, dst_fd, off_in_ptr, off_out_ptr) = match call {
                    Call::sendfile => (a[1], a[0], a[2], 0),
                    Call::tee => (a[0], a[1], 0, 0),
                    _ => (a[0], a[2], a[1], a[3]),
                };
                let (src_fd, dst_fd) = (src_fd as u32 as i32, dst_fd as u32 as i32);
                let (Some(src), Some(dst)) = (self.fd(key, pid, src_fd), self.fd(key, pid, dst_fd))
                else {
                    stats.untracked_fd += 1;
                    return None;
                };
                let count = if ok { ret as u64 } else { 0 };
                // An offset passed by pointer is not in the log: unknown.
                let src_offset = if off_in_ptr != 0 {
                    None
                } else if call == Call::tee {
                    advance(&src, None, Dir::Read, 0)
                } else {
                    advance(&src, None, Dir::Read, count)
                };
                let dst_offset = if off_out_ptr != 0 {
                    None
                } else {
                    advance(&dst, None, Dir::Write, count)
                };
                let (src, dst) = (src.borrow().obj.clone(), dst.borrow().obj.clone());
                if src.kind == ObjKind::Anon || dst.kind == ObjKind::Anon {
                    return None;
                }
                Op::Transfer {
                    call,
                    src_fd,
                    src,
                    src_offset,
                    dst_fd,
                    dst,
                    dst_offset,
                    count,
                }
            }
            Call::mmap => {
                // The descriptor (a4) is beyond the four arguments audit logs;
                // the MMAP record has it for file mappings.
                let m = ev.mmap.as_ref()?;
                if a[3] & MAP_ANONYMOUS != 0 {
                    return None;
                }
                let fd = m.dec("fd")? as i32;
                let Some(o) = self.fd(key, pid, fd) else {
                    stats.untracked_fd += 1;
                    return None;
                };
                let obj = o.borrow().obj.clone();
                if obj.kind == ObjKind::Anon {
                    return None;
                }
                Op::Mmap {
                    call,
                    fd,
                    obj,
                    // a5 is not logged either.
                    offset: 0,
                    len: a[1],
                    prot: a[2] as u32,
                    flags: a[3] as u32,
                }
            }
            Call::lseek => {
                if ok {
                    if let Some(o) = self.fd(key, pid, fd0) {
                        o.borrow_mut().pos = ret as u64;
                    }
                }
                return None;
            }
            Call::dup | Call::dup2 | Call::dup3 | Call::fcntl => {
                let cloexec = match call {
                    Call::dup3 => a[2] & O_CLOEXEC != 0,
                    Call::fcntl => match a[1] {
                        F_DUPFD => false,
                        F_DUPFD_CLOEXEC => true,
                        F_SETFD => {
                            if ok {
                                if let Some(f) = self.table(key, pid).get_mut(&fd0) {
                                    f.cloexec = a[2] & FD_CLOEXEC != 0;
                                }
                            }
                            return None;
                        }
                        _ => return None,
                    },
                    _ => false,
                };
                let new_fd = if ok { ret as i32 } else { -1 };
                let src = self.fd(key, pid, fd0);
                if ok && new_fd != fd0 {
                    let t = self.table(key, pid);
                    match &src {
                        Some(o) => {
                            t.insert(
                                new_fd,
                                Fd {
                                    ofd: Rc::clone(o),
                                    cloexec,
                                },
                            );
                        }
                        // Whatever new_fd was, it is now a copy of something unknown.
                        None => {
                            t.remove(&new_fd);
                        }
                    }
                }
                Op::Dup {
                    call,
                    old_fd: fd0,
                    new_fd,
                    obj: src
                        .map(|o| o.borrow().obj.clone())
                        .unwrap_or_else(ObjRef::unknown),
                }
            }
            Call::pipe | Call::pipe2 => {
                let fds = fd_pair(ev);
                match (ok, fds) {
                    (true, Some([r, w])) => {
                        let obj = synth(ObjKind::Pipe, sc.serial, 0);
                        let cloexec = call == Call::pipe2 && a[1] & O_CLOEXEC != 0;
                        let shared = Rc::new(RefCell::new(Ofd::new(obj.clone())));
                        let t = self.table(key, pid);
                        // Both ends share the inode but not the offsets.
                        t.insert(
                            r,
                            Fd {
                                ofd: Rc::clone(&shared),
                                cloexec,
                            },
                        );
                        t.insert(
                            w,
                            Fd {
                                ofd: Rc::new(RefCell::new(Ofd::new(obj.clone()))),
                                cloexec,
                            },
                        );
                        Op::Pipe {
                            call,
                            read_fd: r,
                            write_fd: w,
                            obj,
                        }
                    }
                    (true, None) => {
                        stats.missing_records += 1;
                        return None;
                    }
                    _ => Op::Pipe {
                        call,
                        read_fd: -1,
                        write_fd: -1,
                        obj: ObjRef::unknown(),
                    },
                }
            }
            Call::socketpair => {
                let sock = SockInfo {
                    domain: a[0] as u16,
                    sock_type: (a[1] & 0xf) as u16,
                    protocol: a[2] as u16,
                    local: Some(SockAddr::Unnamed),
                    peer: Some(SockAddr::Unnamed),
                };
                match (ok, fd_pair(ev)) {
                    (true, Some(fds)) => {
                        let objs = [
                            synth(ObjKind::Socket, sc.serial, 0),
                            synth(ObjKind::Socket, sc.serial, 1),
                        ];
                        for i in 0..2 {
                            let mut o = Ofd::new(objs[i].clone());
                            o.sock = Some(sock.clone());
                            self.install(key, pid, fds[i], o, a[1] & O_CLOEXEC != 0);
                        }
                        Op::SocketPair {
                            call,
                            fds,
                            objs,
                            sock,
                        }
                    }
                    (true, None) => {
                        stats.missing_records += 1;
                        return None;
                    }
                    _ => Op::SocketPair {
                        call,
                        fds: [-1, -1],
                        objs: [ObjRef::unknown(), ObjRef::unknown()],
                        sock,
                    },
                }
            }
            Call::socket => {
                let sock = SockInfo {
                    domain: a[0] as u16,
                    sock_type: (a[1] & 0xf) as u16,
                    protocol: a[2] as u16,
                    local: None,
                    peer: None,
                };
                if ok {
                    let obj = synth(ObjKind::Socket, sc.serial, 0);
                    let mut o = Ofd::new(obj.clone());
                    o.sock = Some(sock.clone());
                    self.install(key, pid, ret as i32, o, a[1] & O_CLOEXEC != 0);
                    Op::Socket {
                        call,
                        fd: ret as i32,
                        obj,
                        sock,
                    }
                } else {
                    Op::Socket {
                        call,
                        fd: -1,
                        obj: ObjRef::unknown(),
                        sock,
                    }
                }
            }
            Call::bind => {
                let addr = sockaddr(ev).unwrap_or(SockAddr::Unnamed);
                let o = self.socket_fd(key, sc, fd0);
                if ok {
                    let mut ob = o.borrow_mut();
                    let family = family_of(&addr);
                    let s = ob.sock.get_or_insert_with(|| bare_sock(family));
                    s.local = Some(addr.clone());
                }
                let obj = o.borrow().obj.clone();
                Op::Bind {
                    call,
                    fd: fd0,
                    obj,
                    addr,
                }
            }
            Call::listen => {
                let o = self.socket_fd(key, sc, fd0);
                let obj = o.borrow().obj.clone();
                Op::Listen {
                    call,
                    fd: fd0,
                    obj,
                    backlog: a[1] as i32,
                }
            }
            Call::connect => {
                let addr = sockaddr(ev);
                let o = self.socket_fd(key, sc, fd0);
                let family = addr.as_ref().map(family_of).unwrap_or(0);
                // A non-blocking connect under way has its peer already.
                if ok || ret == -EINPROGRESS {
                    let mut ob = o.borrow_mut();
                    let s = ob.sock.get_or_insert_with(|| bare_sock(family));
                    if addr.is_some() {
                        s.peer = addr.clone();
                    }
                }
                let ob = o.borrow();
                let mut sock = ob.sock.clone().unwrap_or_else(|| bare_sock(family));
                if addr.is_some() {
                    sock.peer = addr;
                }
                Op::Connect {
                    call,
                    fd: fd0,
                    obj: ob.obj.clone(),
                    sock,
                }
            }
            Call::accept | Call::accept4 => {
                let l = self.socket_fd(key, sc, fd0);
                let listen_obj = l.borrow().obj.clone();
                let lsock = l.borrow().sock.clone();
                let peer = sockaddr(ev);
                let family = peer.as_ref().map(family_of).unwrap_or(0);
                let mut sock = lsock.unwrap_or_else(|| bare_sock(family));
                sock.peer = peer;
                if ok {
                    let new_fd = ret as i32;
                    let obj = synth(ObjKind::Socket, sc.serial, 1);
                    let mut o = Ofd::new(obj.clone());
                    o.sock = Some(sock.clone());
                    let cloexec = call == Call::accept4 && a[3] & O_CLOEXEC != 0;
                    self.install(key, pid, new_fd, o, cloexec);
                    Op::Accept {
                        call,
                        fd: fd0,
                        new_fd,
                        listen_obj,
                        obj,
                        sock,
                    }
                } else {
                    Op::Accept {
                        call,
                        fd: fd0,
                        new_fd: -1,
                        listen_obj,
                        obj: ObjRef::unknown(),
                        sock,
                    }
                }
            }
            Call::rename | Call::renameat | Call::renameat2 => {
                let (d_old, d_new) = match call {
                    Call::rename => (None, None),
                    _ => (Some(a[0]), Some(a[2])),
                };
                // Parents first, then the old name (DELETE), then the new
                // name: CREATE, or DELETE of the file it replaced.
                let mut named = items.iter().filter(|i| !i.is("PARENT"));
                let old = named.next().cloned();
                let new = named.next().cloned();
                let old_path =
                    self.resolve(key, sc, old.as_ref().and_then(|i| i.name.as_deref()), d_old);
                let new_path =
                    self.resolve(key, sc, new.as_ref().and_then(|i| i.name.as_deref()), d_new);
                let obj = match (&old, ok) {
                    (Some(i), true) => i.obj(&old_path),
                    _ => named_unknown(&old_path),
                };
                let replaced = match (&new, ok) {
                    (Some(n), true)
                        if n.is("DELETE")
                            && n.ino.is_some()
                            && n.ino != old.as_ref().and_then(|o| o.ino) =>
                    {
                        Some(n.obj(&new_path))
                    }
                    _ => None,
                };
                Op::Rename {
                    call,
                    old_path,
                    new_path,
                    obj,
                    replaced,
                }
            }
            Call::link | Call::linkat => {
                let (d_old, d_new) = match call {
                    Call::link => (None, None),
                    _ => (Some(a[0]), Some(a[2])),
                };
                let old = items.iter().find(|i| i.is("NORMAL")).cloned();
                let new = items.iter().find(|i| i.is("CREATE")).cloned();
                let target =
                    self.resolve(key, sc, old.as_ref().and_then(|i| i.name.as_deref()), d_old);
                let new_path =
                    self.resolve(key, sc, new.as_ref().and_then(|i| i.name.as_deref()), d_new);
                let obj = match (&new, &old, ok) {
                    (Some(n), _, true) if n.ino.is_some() => n.obj(&new_path),
                    (_, Some(o), true) => o.obj(&new_path),
                    _ => named_unknown(&new_path),
                };
                Op::Link {
                    call,
                    target,
                    new_path,
                    obj,
                    symbolic: false,
                }
            }
            Call::symlink | Call::symlinkat => {
                let dirfd = (call == Call::symlinkat).then_some(a[1]);
                // The link's text is only a name to the kernel: it shows up
                // as an item of unknown type.
                let target = items
                    .iter()
                    .find(|i| i.is("UNKNOWN"))
                    .and_then(|i| i.name.clone())
                    .unwrap_or_default();
                let new = target_item(&items, "CREATE");
                let new_path =
                    self.resolve(key, sc, new.as_ref().and_then(|i| i.name.as_deref()), dirfd);
                let obj = match (&new, ok) {
                    (Some(n), true) => n.obj(&new_path),
                    _ => named_unknown(&new_path),
                };
                Op::Link {
                    call,
                    target,
                    new_path,
                    obj,
                    symbolic: true,
                }
            }
            Call::unlink | Call::rmdir | Call::unlinkat => {
                let dirfd = (call == Call::unlinkat).then_some(a[0]);
                let it = target(&["DELETE"]);
                let path =
                    self.resolve(key, sc, it.as_ref().and_then(|i| i.name.as_deref()), dirfd);
                let obj = match (&it, ok) {
                    (Some(i), true) => i.obj(&path),
                    _ => named_unknown(&path),
                };
                Op::Unlink {
                    call,
                    path,
                    obj,
                    dir: call == Call::rmdir
                        || (call == Call::unlinkat && a[2] & AT_REMOVEDIR != 0),
                }
            }
            Call::mkdir | Call::mkdirat | Call::mknod | Call::mknodat => {
                let at = matches!(call, Call::mkdirat | Call::mknodat);
                let dirfd = at.then_some(a[0]);
                let it = target(&["CREATE"]);
                let path =
                    self.resolve(key, sc, it.as_ref().and_then(|i| i.name.as_deref()), dirfd);
                let obj = match (&it, ok) {
                    (Some(i), true) => i.obj(&path),
                    _ => named_unknown(&path),
                };
                let (mode, rdev) = if at { (a[2], a[3]) } else { (a[1], a[2]) };
                if matches!(call, Call::mkdir | Call::mkdirat) {
                    Op::Mkdir {
                        call,
                        path,
                        obj,
                        mode: mode as u32,
                    }
                } else {
                    Op::Mknod {
                        call,
                        path,
                        obj,
                        mode: mode as u32,
                        rdev,
                    }
                }
            }
            Call::truncate
            | Call::chmod
            | Call::fchmodat
            | Call::chown
            | Call::lchown
            | Call::fchownat
            | Call::chdir => {
                let dirfd = matches!(call, Call::fchmodat | Call::fchownat).then_some(a[0]);
                let it = target(&["NORMAL"]);
                let path =
                    self.resolve(key, sc, it.as_ref().and_then(|i| i.name.as_deref()), dirfd);
                let obj = it
                    .as_ref()
                    .map(|i| i.obj(&path))
                    .unwrap_or_else(|| named_unknown(&path));
                match call {
                    Call::truncate => Op::Truncate {
                        call,
                        fd: None,
                        obj,
                        length: a[1],
                    },
                    Call::chmod => Op::Chmod {
                        call,
                        fd: None,
                        obj,
                        mode: a[1] as u32,
                    },
                    Call::fchmodat => Op::Chmod {
                        call,
                        fd: None,
                        obj,
                        mode: a[2] as u32,
                    },
                    Call::chown | Call::lchown => Op::Chown {
                        call,
                        fd: None,
                        obj,
                        uid: a[1] as u32,
                        gid: a[2] as u32,
                    },
                    Call::fchownat => Op::Chown {
                        call,
                        fd: None,
                        obj,
                        uid: a[2] as u32,
                        gid: a[3] as u32,
                    },
                    _ => Op::Chdir { call, path, obj },
                }
            }
            Call::ftruncate | Call::fchmod | Call::fchown | Call::fchdir => {
                // The model's object, else the item audit logs for some
                // descriptor calls (fchmod, fchown: audit_file()).
                let obj = match self.fd(key, pid, fd0) {
                    Some(o) => o.borrow().obj.clone(),
                    None => match items.iter().find(|i| i.ino.is_some()) {
                        Some(i) => {
                            let mut o = i.obj("");
                            o.path = i.name.clone().filter(|n| n.starts_with('/'));
                            o
                        }
                        None => {
                            stats.untracked_fd += 1;
                            return None;
                        }
                    },
                };
                match call {
                    Call::ftruncate => Op::Truncate {
                        call,
                        fd: Some(fd0),
                        obj,
                        length: a[1],
                    },
                    Call::fchmod => Op::Chmod {
                        call,
                        fd: Some(fd0),
                        obj,
                        mode: a[1] as u32,
                    },
                    Call::fchown => Op::Chown {
                        call,
                        fd: Some(fd0),
                        obj,
                        uid: a[1] as u32,
                        gid: a[2] as u32,
                    },
                    _ => Op::Chdir {
                        call,
                        path: obj.path.clone().unwrap_or_default(),
                        obj,
                    },
                }
            }
            Call::setuid | Call::setgid => Op::SetId {
                call,
                ids: [a[0] as u32, u32::MAX, u32::MAX],
            },
            Call::setreuid | Call::setregid => Op::SetId {
                call,
                ids: [a[0] as u32, a[1] as u32, u32::MAX],
            },
            Call::setresuid | Call::setresgid => Op::SetId {
                call,
                ids: [a[0] as u32, a[1] as u32, a[2] as u32],
            },
            Call::observed | Call::other(_) => return None,
        })
    }
}

fn target_item(items: &[Item], t: &str) -> Option<Item> {
    items.iter().rev().find(|i| i.is(t)).cloned()
}

fn copy_table(t: &FdTable) -> FdTable {
    // fork: a copy of the table whose entries share the open file
    // descriptions (and so their offsets).
    t.clone()
}

fn bare_sock(domain: u16) -> SockInfo {
    SockInfo {
        domain,
        sock_type: 0,
        protocol: 0,
        local: None,
        peer: None,
    }
}

fn family_of(a: &SockAddr) -> u16 {
    match a {
        SockAddr::Inet {
            ip: IpAddr::V4(_), ..
        } => 2,
        SockAddr::Inet { .. } => 10,
        SockAddr::Unix { .. } | SockAddr::Unnamed => 1,
        SockAddr::Other { family } => *family,
    }
}

fn sockaddr(ev: &Assembled) -> Option<SockAddr> {
    ev.sockaddr
        .as_ref()?
        .get("saddr")?
        .bytes()
        .and_then(|b| parse_sockaddr(&b))
}

fn fd_pair(ev: &Assembled) -> Option<[i32; 2]> {
    let r = ev.fd_pair.as_ref()?;
    Some([r.dec("fd0")? as i32, r.dec("fd1")? as i32])
}

/// argv from the EXECVE record(s): `argc=N a0=… a1_len=… a1[0]=… a1[1]=…`.
/// Long argument lists span several records of the same event.
fn execve_argv(recs: &[Record]) -> Vec<String> {
    let mut argc = 0usize;
    let mut whole: HashMap<usize, Vec<u8>> = HashMap::new();
    let mut parts: HashMap<usize, Vec<(usize, Vec<u8>)>> = HashMap::new();
    for r in recs {
        for (k, v) in &r.fields {
            if k == "argc" {
                argc = v.raw().parse().unwrap_or(0);
                continue;
            }
            let Some(rest) = k.strip_prefix('a') else {
                continue;
            };
            let bytes = || match v {
                crate::record::Value::Quoted(s) => s.as_bytes().to_vec(),
                crate::record::Value::Bare(s) => {
                    crate::record::hex_decode(s).unwrap_or_else(|| s.as_bytes().to_vec())
                }
            };
            if let Some((n, idx)) = rest.split_once('[') {
                if let (Ok(n), Ok(i)) = (n.parse(), idx.trim_end_matches(']').parse()) {
                    parts.entry(n).or_default().push((i, bytes()));
                }
            } else if let Ok(n) = rest.parse::<usize>() {
                whole.insert(n, bytes());
            }
        }
    }
    // A hostile argc must not allocate without bound: at most what is there.
    let n = argc
        .max(
            whole
                .keys()
                .chain(parts.keys())
                .map(|k| k.saturating_add(1))
                .max()
                .unwrap_or(0),
        )
        .min(whole.len() + parts.len());
    (0..n)
        .map(|i| {
            let b = match (whole.remove(&i), parts.remove(&i)) {
                (Some(b), _) => b,
                (None, Some(mut p)) => {
                    p.sort_by_key(|(i, _)| *i);
                    p.into_iter().flat_map(|(_, b)| b).collect()
                }
                (None, None) => Vec::new(),
            };
            String::from_utf8_lossy(&b).into_owned()
        })
        .collect()
}

/// The offset a transfer started at, with the model's offsets moved past it.
fn advance(o: &Rc<RefCell<Ofd>>, explicit: Option<u64>, dir: Dir, count: u64) -> Option<u64> {
    if let Some(off) = explicit {
        return Some(off);
    }
    let mut ob = o.borrow_mut();
    match ob.obj.kind {
        ObjKind::File | ObjKind::BlockDev => {
            if dir == Dir::Write && ob.append {
                // The file's size is not in the log: where an append lands is unknown.
                return None;
            }
            let start = ob.pos;
            ob.pos = start.saturating_add(count);
            Some(start)
        }
        ObjKind::Pipe | ObjKind::Socket => {
            let cur = if dir == Dir::Read {
                &mut ob.rd
            } else {
                &mut ob.wr
            };
            let start = *cur;
            *cur = start.saturating_add(count);
            Some(start)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devs_and_sockaddrs() {
        assert_eq!(parse_dev("fd:01"), Some(0xfd01));
        assert_eq!(parse_dev("103:02"), Some((0x103 << 8) | 2));
        assert_eq!(parse_dev("x"), None);
        assert_eq!(
            parse_sockaddr(&[2, 0, 0, 80, 127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]),
            Some(SockAddr::Inet {
                ip: "127.0.0.1".parse().unwrap(),
                port: 80
            })
        );
        assert_eq!(
            parse_sockaddr(b"\x01\x00/run/x\x00\x00"),
            Some(SockAddr::Unix {
                path: "/run/x".into(),
                abstract_ns: false
            })
        );
        assert_eq!(join_path(Some("/a/b"), "../c/./d"), "/a/c/d");
        assert_eq!(join_path(None, "rel"), "rel");
    }
}
