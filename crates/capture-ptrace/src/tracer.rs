//! The tracing loop: one thread that waits for stops of any tracee, keeps
//! a model of every traced process (its threads, credentials and descriptor
//! table), and turns each finished system call into one normalized event.
//!
//! A traced call costs two stops: the seccomp stop at entry (arguments that
//! live in the tracee's memory are copied then, before the call can change
//! them) and the syscall-exit stop (the result). Fork, clone and exec finish
//! at their `PTRACE_EVENT_*` stop instead, which saves the exit stop.

use crate::calls::{self, Ofd, Pending};
use crate::procfs;
use crate::sys::{self, Stop, SyscallInfo};
use crate::{Exit, RecordError, RecordOptions};
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::io;
use std::rc::Rc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use tomo_event::{Call, Cred, Event, Op, ProcRef, SpawnKind};

pub type FdTable = HashMap<i32, Rc<RefCell<Ofd>>>;

pub struct Proc {
    pub ppid: u32,
    pub start_ticks: u64,
    pub cred: Cred,
    /// Shared between processes created with CLONE_FILES (and by threads).
    pub fds: Rc<RefCell<FdTable>>,
    /// Working directory, cached: relative paths are common and a
    /// `/proc/PID/cwd` lookup per call would cost more than the stop.
    /// Cleared by chdir/fchdir.
    pub cwd: RefCell<Option<String>>,
    /// Opened at the first descriptor the tracer borrows from the process.
    pub pidfd: RefCell<Option<Rc<std::os::fd::OwnedFd>>>,
}

struct Thread {
    tgid: i32,
    pending: Option<Pending>,
    /// Created by a fork event and not yet seen in its first stop.
    awaiting_start: bool,
}

/// Wall-clock timestamps that never go backwards within a recording.
struct Clock {
    base_ns: u64,
    start: Instant,
}

impl Clock {
    fn new() -> Clock {
        let base_ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        Clock {
            base_ns,
            start: Instant::now(),
        }
    }
    fn now(&self) -> u64 {
        self.base_ns + self.start.elapsed().as_nanos() as u64
    }
}

pub struct Tracer<'a> {
    opts: &'a RecordOptions,
    sink: &'a mut dyn FnMut(Event) -> io::Result<()>,
    seq: u64,
    clock: Clock,
    threads: HashMap<i32, Thread>,
    pub procs: HashMap<i32, Proc>,
    /// Children whose first stop arrived before their parent's fork event.
    early: HashSet<i32>,
    root: i32,
    root_exit: Option<Exit>,
    sink_error: Option<io::Error>,
    /// Threads inside a write to a pipe or socket (entered, exit not yet seen).
    inflight: HashMap<i32, calls::IpcKey>,
    known: RefCell<HashMap<String, (u64, u64)>>,
    /// Writes resumed without their exit stop, by thread (see `calls::Deferred`).
    deferred: HashMap<i32, calls::Deferred>,
    /// Content bytes the budget still allows.
    content_left: u64,
}

const CLONE_VM: u64 = 0x100;
const CLONE_FILES: u64 = 0x400;
const CLONE_VFORK: u64 = 0x4000;
const CLONE_THREAD: u64 = 0x10000;

const PTRACE_EVENT_FORK: i32 = 1;
const PTRACE_EVENT_VFORK: i32 = 2;
const PTRACE_EVENT_CLONE: i32 = 3;
const PTRACE_EVENT_EXEC: i32 = 4;
const PTRACE_EVENT_SECCOMP: i32 = 7;
const PTRACE_EVENT_STOP: i32 = 128;

impl<'a> Tracer<'a> {
    pub fn new(
        opts: &'a RecordOptions,
        sink: &'a mut dyn FnMut(Event) -> io::Result<()>,
    ) -> Tracer<'a> {
        Tracer {
            opts,
            sink,
            seq: 0,
            clock: Clock::new(),
            threads: HashMap::new(),
            procs: HashMap::new(),
            early: HashSet::new(),
            root: 0,
            root_exit: None,
            sink_error: None,
            inflight: HashMap::new(),
            known: RefCell::new(HashMap::new()),
            deferred: HashMap::new(),
            content_left: opts.content.map(|c| c.budget).unwrap_or(0),
        }
    }

    pub fn keep_env(&self) -> bool {
        self.opts.keep_env
    }

    /// Whether content capture is on (it needs every read and write's exit
    /// stop, with the tracee still stopped).
    pub fn capturing_content(&self) -> bool {
        self.opts.content.is_some()
    }

    /// How many bytes of this call's content may be kept.
    pub fn content_allowance(&self) -> usize {
        match self.opts.content {
            Some(c) => (c.per_call as u64).min(self.content_left) as usize,
            None => 0,
        }
    }

    pub fn content_spent(&mut self, n: usize) {
        self.content_left = self.content_left.saturating_sub(n as u64);
    }

    /// Adopt the freshly forked (and seized) command and say so in the log.
    pub fn adopt_root(&mut self, pid: i32, argv: Vec<String>) {
        self.root = pid;
        let (ppid, start_ticks) = procfs::stat_ids(pid).unwrap_or((std::process::id(), 0));
        let cred = procfs::cred(pid).unwrap_or_default();
        self.procs.insert(
            pid,
            Proc {
                ppid,
                start_ticks,
                cred,
                fds: Rc::new(RefCell::new(HashMap::new())),
                cwd: RefCell::new(None),
                pidfd: RefCell::new(None),
            },
        );
        self.threads.insert(
            pid,
            Thread {
                tgid: pid,
                pending: None,
                awaiting_start: false,
            },
        );
        let cwd = procfs::cwd(pid);
        self.emit(
            pid,
            Op::Observed {
                exe: None,
                argv,
                cwd,
            },
            0,
        );
    }

    pub fn proc_ref(&self, tid: i32) -> ProcRef {
        let tgid = self.threads.get(&tid).map(|t| t.tgid).unwrap_or(tid);
        match self.procs.get(&tgid) {
            Some(p) => ProcRef {
                pid: tgid as u32,
                tid: tid as u32,
                ppid: p.ppid,
                start_ticks: p.start_ticks,
            },
            None => ProcRef {
                pid: tgid as u32,
                tid: tid as u32,
                ppid: 0,
                start_ticks: 0,
            },
        }
    }

    pub fn tgid_of(&self, tid: i32) -> i32 {
        self.threads.get(&tid).map(|t| t.tgid).unwrap_or(tid)
    }

    /// The descriptor table of the process `tid` belongs to.
    pub fn fds(&self, tid: i32) -> Option<Rc<RefCell<FdTable>>> {
        self.procs
            .get(&self.tgid_of(tid))
            .map(|p| Rc::clone(&p.fds))
    }

    pub fn emit(&mut self, tid: i32, op: Op, ret: i64) {
        if self.sink_error.is_some() {
            return;
        }
        let proc = self.proc_ref(tid);
        let cred = self
            .procs
            .get(&(proc.pid as i32))
            .map(|p| p.cred)
            .unwrap_or_default();
        let ev = Event {
            host: self.opts.host,
            boot: self.opts.boot,
            seq: self.seq,
            ts_ns: self.clock.now(),
            proc,
            cred,
            op,
            ret,
        };
        self.seq += 1;
        if let Err(e) = (self.sink)(ev) {
            self.sink_error = Some(e);
        }
    }

    /// The inode a path had when a tracee last opened it (see `calls.rs`,
    /// open with O_CREAT).
    pub fn known_inode(&self, path: &str) -> Option<(u64, u64)> {
        self.known.borrow().get(path).copied()
    }

    pub fn remember_inode(&self, path: &str, k: (u64, u64)) {
        let mut m = self.known.borrow_mut();
        // Bounded memory for recordings that open millions of paths: a
        // forgotten path only costs a stat at its next O_CREAT open.
        if m.len() >= 65_536 {
            m.clear();
        }
        m.insert(path.to_string(), k);
    }

    pub fn forget_inode(&self, path: &str) {
        self.known.borrow_mut().remove(path);
    }

    /// The pidfd of `tid`'s process (opened once, kept until it exits).
    pub fn pidfd(&self, tid: i32) -> Option<Rc<std::os::fd::OwnedFd>> {
        let p = self.procs.get(&self.tgid_of(tid))?;
        if let Some(fd) = p.pidfd.borrow().as_ref() {
            return Some(Rc::clone(fd));
        }
        let fd = Rc::new(sys::pidfd_open(tid).ok()?);
        p.pidfd.replace(Some(Rc::clone(&fd)));
        Some(fd)
    }

    /// The working directory of `tid`'s process, from the cache.
    pub fn cwd(&self, tid: i32) -> Option<String> {
        let Some(p) = self.procs.get(&self.tgid_of(tid)) else {
            return procfs::cwd(tid);
        };
        if let Some(c) = p.cwd.borrow().as_ref() {
            return Some(c.clone());
        }
        let c = procfs::cwd(tid);
        p.cwd.replace(c.clone());
        c
    }

    pub fn forget_cwd(&self, tid: i32) {
        if let Some(p) = self.procs.get(&self.tgid_of(tid)) {
            p.cwd.replace(None);
        }
    }

    pub fn refresh_cred(&mut self, tid: i32) {
        let tgid = self.tgid_of(tid);
        if let (Some(c), Some(p)) = (procfs::cred(tid), self.procs.get_mut(&tgid)) {
            p.cred = c;
        }
    }

    pub fn known_start_ticks(&self, pid: i32) -> Option<(u32, u64)> {
        self.procs.get(&pid).map(|p| (p.ppid, p.start_ticks))
    }

    /// Run until every tracee is gone.
    pub fn run(mut self) -> Result<Exit, RecordError> {
        let mut killed = false;
        while let Some((tid, stop)) = sys::wait_any().map_err(RecordError::Wait)? {
            if self.sink_error.is_some() && !killed {
                // The log cannot take more events: stop the command rather
                // than let it run unrecorded.
                for t in self.threads.keys() {
                    sys::kill_task(*t);
                }
                killed = true;
            }
            self.handle(tid, stop);
        }
        if let Some(e) = self.sink_error {
            return Err(RecordError::Sink(e));
        }
        self.root_exit.ok_or(RecordError::NoExitStatus)
    }

    /// True when `tid` is the only thread of its process (so nothing else
    /// can use its descriptors while it runs).
    pub fn alone_in_process(&self, tid: i32) -> bool {
        let tgid = self.tgid_of(tid);
        self.threads.len() < 256 && self.threads.values().filter(|t| t.tgid == tgid).count() == 1
    }

    /// Settle `tid`'s deferred write, if any, from its descriptor's position.
    fn reconcile(&mut self, tid: i32) {
        if let Some(d) = self.deferred.remove(&tid) {
            let pos = calls::deferred_pos(&d);
            calls::finish_deferred(self, tid, d, pos);
        }
    }

    /// Before a file's data is read, log the deferred writes into it (as
    /// `settle_writers` does for pipes): take the writer's next stop if it
    /// comes within ~2 ms, else settle from the position if the write is
    /// visibly complete.
    fn settle_file(&mut self, reader: i32, inode: (u64, u64)) {
        let writers: Vec<i32> = self
            .deferred
            .iter()
            .filter(|(&w, d)| w != reader && d.inode() == inode)
            .map(|(&w, _)| w)
            .collect();
        for w in writers {
            for attempt in 0..200 {
                if !self.deferred.contains_key(&w) {
                    break;
                }
                match sys::wait_tid_nohang(w) {
                    Ok(Some(stop)) => self.handle(w, stop),
                    Ok(None) if attempt < 199 => {
                        std::thread::sleep(std::time::Duration::from_micros(10))
                    }
                    _ => break,
                }
            }
            if self.deferred.get(&w).is_some_and(calls::deferred_complete) {
                self.reconcile(w);
            }
        }
    }

    fn handle(&mut self, tid: i32, stop: Stop) {
        if !self.deferred.is_empty() && !matches!(stop, Stop::Exited(_) | Stop::Signaled(_)) {
            self.reconcile(tid);
        }
        match stop {
            Stop::Exited(code) => self.on_exit(tid, Exit::Code(code)),
            Stop::Signaled(sig) => self.on_exit(tid, Exit::Signal(sig)),
            Stop::Event(PTRACE_EVENT_SECCOMP, _) => self.on_entry(tid),
            Stop::Syscall => self.on_syscall_exit(tid),
            Stop::Event(ev @ (PTRACE_EVENT_FORK | PTRACE_EVENT_VFORK | PTRACE_EVENT_CLONE), _) => {
                self.on_spawn(tid, ev);
                let _ = sys::cont(tid, 0);
            }
            Stop::Event(PTRACE_EVENT_EXEC, _) => {
                self.on_exec(tid);
                let _ = sys::cont(tid, 0);
            }
            Stop::Event(PTRACE_EVENT_STOP, sig) => {
                match self.threads.get_mut(&tid) {
                    None => {
                        // A new child, stopped before its parent's fork
                        // event told us what it is: hold it until then.
                        self.early.insert(tid);
                    }
                    Some(t) if t.awaiting_start => {
                        t.awaiting_start = false;
                        let _ = sys::cont(tid, 0);
                    }
                    Some(_) => {
                        if matches!(
                            sig,
                            libc::SIGSTOP | libc::SIGTSTP | libc::SIGTTIN | libc::SIGTTOU
                        ) {
                            // Group-stop: stay stopped (job control) but keep
                            // being told when it continues.
                            let _ = sys::ptrace_listen(tid);
                        } else {
                            let _ = sys::cont(tid, 0);
                        }
                    }
                }
            }
            Stop::Event(_, _) => {
                let _ = sys::cont(tid, 0);
            }
            Stop::Signal(sig) => {
                // Deliver the signal the tracee was going to get.
                let _ = sys::cont(tid, sig);
            }
            Stop::Other => {}
        }
    }

    fn on_entry(&mut self, tid: i32) {
        let info = sys::syscall_info(tid);
        let Ok(SyscallInfo::Entry { nr, args }) = info else {
            let _ = sys::cont(tid, 0);
            return;
        };
        let Some(call) = crate::filter::call_of(nr) else {
            let _ = sys::cont(tid, 0);
            return;
        };
        let pending = calls::capture_entry(self, tid, call, args);
        if let Some(key) = calls::ipc_target(self, tid, &pending) {
            self.inflight.insert(tid, key);
        }
        if let Some(d) = calls::deferrable(self, tid, &pending) {
            self.deferred.insert(tid, d);
            let _ = sys::cont(tid, 0);
            return;
        }
        if calls::finishes_at_entry(self, tid, &pending) {
            // Outcome known already: skip the exit stop (half the cost), and
            // let the tracee run while the event is logged.
            let _ = sys::cont(tid, 0);
            calls::finish_at_entry(self, tid, &pending);
            return;
        }
        if let Some(t) = self.threads.get_mut(&tid) {
            t.pending = Some(pending);
        } else {
            // A thread we never saw created (cannot happen with the fork
            // options set, but be safe): adopt it into its process.
            let tgid = read_tgid(tid).unwrap_or(tid);
            self.threads.insert(
                tid,
                Thread {
                    tgid,
                    pending: Some(pending),
                    awaiting_start: false,
                },
            );
        }
        if sys::to_exit(tid).is_err() {
            // Gone (SIGKILL): its exit will be reported by wait.
        }
    }

    fn on_syscall_exit(&mut self, tid: i32) {
        let pending = self.threads.get_mut(&tid).and_then(|t| t.pending.take());
        let ret = match sys::syscall_info(tid) {
            Ok(SyscallInfo::Exit { ret }) => Some(ret),
            _ => None,
        };
        self.inflight.remove(&tid);
        if let (Some(p), Some(ret)) = (pending, ret) {
            // The kernel restarts these calls (after a signal handler or
            // transparently); the restarted call stops at entry again.
            if !matches!(ret, -512 | -513 | -514 | -516) {
                // Calls whose event needs nothing more from the tracee let
                // it run while the event is built and logged: the tracer's
                // work then overlaps the tracee's instead of adding to it.
                let resumed =
                    !calls::needs_tracee_at_exit(self, tid, &p) && sys::cont(tid, 0).is_ok();
                if ret > 0 {
                    if let Some(src) = calls::ipc_source(self, tid, &p) {
                        self.settle_writers(tid, src);
                    }
                }
                if !self.deferred.is_empty() {
                    // Reads of a file settle its pending writes, writes its
                    // pending reads: the log keeps the kernel's order.
                    let file = calls::file_source(self, tid, &p)
                        .or_else(|| calls::file_target(self, tid, &p));
                    if let Some(inode) = file {
                        self.settle_file(tid, inode);
                    }
                }
                calls::finish(self, tid, p, ret);
                if resumed {
                    return;
                }
            }
        }
        let _ = sys::cont(tid, 0);
    }

    /// Before a read from a pipe or socket is logged, log the writes that
    /// fed it. Both tracees may be waiting in their exit stops and `wait`
    /// reports them in any order; the log must not show data arriving
    /// before it was sent. So fetch the exit stop of every tracee that is
    /// inside a write to the same pipe (to any socket: the recorder does not
    /// know which socket is whose peer) and finish it first. A writer still
    /// blocked in a large write (pipe full) cannot be waited for without
    /// stalling its reader; after ~2 ms it is left for later.
    fn settle_writers(&mut self, reader: i32, src: calls::IpcKey) {
        let writers: Vec<i32> = self
            .inflight
            .iter()
            .filter(|(&w, k)| w != reader && k.feeds(&src))
            .map(|(&w, _)| w)
            .collect();
        for w in writers {
            for attempt in 0..200 {
                if !self.inflight.contains_key(&w) {
                    break;
                }
                match sys::wait_tid_nohang(w) {
                    Ok(Some(stop)) => self.handle(w, stop),
                    Ok(None) if attempt < 199 => {
                        std::thread::sleep(std::time::Duration::from_micros(10))
                    }
                    _ => break,
                }
            }
        }
    }

    fn on_spawn(&mut self, tid: i32, event: i32) {
        let Ok(new) = sys::event_msg(tid) else { return };
        let new = new as i32;
        let pending = self.threads.get_mut(&tid).and_then(|t| t.pending.take());
        let (call, flags) = match &pending {
            Some(p) => (p.call, p.clone_flags),
            None => (Call::clone, 0),
        };
        let kind = match event {
            PTRACE_EVENT_VFORK => SpawnKind::Vfork,
            PTRACE_EVENT_FORK => SpawnKind::Process,
            _ if flags & CLONE_THREAD != 0 => SpawnKind::Thread,
            _ if flags & CLONE_VFORK != 0 => SpawnKind::Vfork,
            _ => SpawnKind::Process,
        };
        let parent_tgid = self.tgid_of(tid);
        let child = if kind == SpawnKind::Thread {
            self.threads.insert(
                new,
                Thread {
                    tgid: parent_tgid,
                    pending: None,
                    awaiting_start: true,
                },
            );
            let pr = self.proc_ref(tid);
            ProcRef {
                pid: parent_tgid as u32,
                tid: new as u32,
                ppid: pr.ppid,
                start_ticks: pr.start_ticks,
            }
        } else {
            let (ppid, start_ticks) = procfs::stat_ids(new).unwrap_or((parent_tgid as u32, 0));
            const CLONE_FS: u64 = 0x200;
            // With CLONE_FS the two would share one cwd: do not trust a copy.
            let cwd = match self.procs.get(&parent_tgid) {
                Some(p) if flags & CLONE_FS == 0 => p.cwd.borrow().clone(),
                _ => None,
            };
            let (cred, fds) = match self.procs.get(&parent_tgid) {
                Some(p) => {
                    let fds = if flags & CLONE_FILES != 0 {
                        Rc::clone(&p.fds)
                    } else {
                        // fork: the child's table is a copy whose entries share
                        // the open file descriptions (and so their offsets).
                        Rc::new(RefCell::new(p.fds.borrow().clone()))
                    };
                    (p.cred, fds)
                }
                None => (
                    procfs::cred(new).unwrap_or_default(),
                    Rc::new(RefCell::new(HashMap::new())),
                ),
            };
            self.procs.insert(
                new,
                Proc {
                    ppid,
                    start_ticks,
                    cred,
                    fds,
                    cwd: RefCell::new(cwd),
                    pidfd: RefCell::new(None),
                },
            );
            self.threads.insert(
                new,
                Thread {
                    tgid: new,
                    pending: None,
                    awaiting_start: true,
                },
            );
            ProcRef {
                pid: new as u32,
                tid: new as u32,
                ppid,
                start_ticks,
            }
        };
        let _ = CLONE_VM;
        self.emit(
            tid,
            Op::Spawn {
                call,
                kind,
                child,
                flags,
            },
            new as i64,
        );
        if self.early.remove(&new) {
            if let Some(t) = self.threads.get_mut(&new) {
                t.awaiting_start = false;
            }
            let _ = sys::cont(new, 0);
        }
    }

    fn on_exec(&mut self, tid: i32) {
        // A non-leader thread that execs takes over the leader's tid.
        let former = sys::event_msg(tid).map(|v| v as i32).unwrap_or(tid);
        let mut pending = None;
        if former != tid {
            if let Some(t) = self.threads.remove(&former) {
                pending = t.pending;
            }
        }
        let tgid = self.tgid_of(tid);
        if pending.is_none() {
            pending = self.threads.get_mut(&tid).and_then(|t| t.pending.take());
        }
        // Every other thread of the group is gone now.
        self.threads.retain(|&t, th| th.tgid != tgid || t == tid);
        self.threads.entry(tid).or_insert(Thread {
            tgid,
            pending: None,
            awaiting_start: false,
        });
        if let Some(p) = self.procs.get_mut(&tgid) {
            // execve unshares the descriptor table and closes O_CLOEXEC
            // descriptors: keep only the ones that still point where they did.
            let old = p.fds.borrow().clone();
            let kept: FdTable = old
                .into_iter()
                .filter(|(fd, ofd)| {
                    let o = &ofd.borrow().obj;
                    procfs::fd_obj(tid, *fd).is_some_and(|now| now.dev == o.dev && now.ino == o.ino)
                })
                .collect();
            p.fds = Rc::new(RefCell::new(kept));
        }
        self.refresh_cred(tid);
        calls::finish_exec(self, tid, pending);
    }

    fn on_exit(&mut self, tid: i32, how: Exit) {
        self.early.remove(&tid);
        self.inflight.remove(&tid);
        if let Some(d) = self.deferred.remove(&tid) {
            // Ended before its next stop: the mirror still knows the position.
            let pos = calls::deferred_pos(&d);
            calls::finish_deferred(self, tid, d, pos);
        }
        let Some(t) = self.threads.remove(&tid) else {
            return;
        };
        if tid != t.tgid {
            // A thread's own exit(2) was logged at its entry.
            return;
        }
        let (code, signal) = match how {
            Exit::Code(c) => (c, None),
            Exit::Signal(s) => (0, Some(s)),
        };
        self.emit(
            tid,
            Op::Exit {
                call: Call::exit_group,
                code,
                signal,
            },
            0,
        );
        self.procs.remove(&tid);
        if tid == self.root {
            self.root_exit = Some(how);
        }
    }
}

fn read_tgid(tid: i32) -> Option<i32> {
    let s = std::fs::read_to_string(format!("/proc/{tid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("Tgid:"))
        .and_then(|v| v.trim().parse().ok())
}
