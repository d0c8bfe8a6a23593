//! Everything that talks to the kernel directly: starting the traced child,
//! installing the seccomp filter, reading a stopped tracee's syscall and
//! memory, and borrowing a tracee's socket to ask for its addresses. This is
//! the only module of the crate with `unsafe`.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// `struct ptrace_syscall_info` (linux/ptrace.h), with the union laid out as
/// its largest member (the seccomp one) so the kernel never writes past it.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct RawSyscallInfo {
    op: u8,
    _pad: [u8; 3],
    arch: u32,
    instruction_pointer: u64,
    stack_pointer: u64,
    // entry/seccomp: nr, args[6], ret_data; exit: rval (i64), is_error (u8).
    u: [u64; 8],
}

const PTRACE_SYSCALL_INFO_ENTRY: u8 = 1;
const PTRACE_SYSCALL_INFO_EXIT: u8 = 2;
const PTRACE_SYSCALL_INFO_SECCOMP: u8 = 3;

/// What a stopped tracee is doing, from `PTRACE_GET_SYSCALL_INFO`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyscallInfo {
    /// At syscall entry (a seccomp stop or a syscall-entry stop).
    Entry { nr: i64, args: [u64; 6] },
    /// At syscall exit, with the raw return value.
    Exit { ret: i64 },
    /// Not in a syscall stop.
    None,
}

/// Read the syscall state of a tracee that is in a ptrace stop.
pub fn syscall_info(tid: i32) -> io::Result<SyscallInfo> {
    let mut info = RawSyscallInfo::default();
    // SAFETY: the kernel writes at most `size_of::<RawSyscallInfo>()` bytes
    // into `info`, which lives for the whole call.
    let r = unsafe {
        libc::ptrace(
            libc::PTRACE_GET_SYSCALL_INFO,
            tid,
            std::mem::size_of::<RawSyscallInfo>(),
            &mut info as *mut RawSyscallInfo,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(match info.op {
        PTRACE_SYSCALL_INFO_ENTRY | PTRACE_SYSCALL_INFO_SECCOMP => SyscallInfo::Entry {
            nr: info.u[0] as i64,
            args: [
                info.u[1], info.u[2], info.u[3], info.u[4], info.u[5], info.u[6],
            ],
        },
        PTRACE_SYSCALL_INFO_EXIT => SyscallInfo::Exit {
            ret: info.u[0] as i64,
        },
        _ => SyscallInfo::None,
    })
}

/// `PTRACE_LISTEN`: leave a tracee in group-stop (job control keeps working)
/// while still being told when it continues. nix 0.29 has no wrapper.
pub fn ptrace_listen(tid: i32) -> io::Result<()> {
    // SAFETY: PTRACE_LISTEN takes no pointers; a bad tid is reported as ESRCH.
    let r = unsafe { libc::ptrace(libc::PTRACE_LISTEN, tid, 0usize, 0usize) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Copy `buf.len()` bytes of the tracee's memory at `addr` into `buf`;
/// returns how many bytes could be read (short at an unmapped page).
pub fn read_mem(pid: i32, addr: u64, buf: &mut [u8]) -> usize {
    if addr == 0 || buf.is_empty() {
        return 0;
    }
    let local = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let remote = libc::iovec {
        iov_base: addr as *mut libc::c_void,
        iov_len: buf.len(),
    };
    // SAFETY: `local` describes `buf`, which we own mutably for the call; the
    // remote range is only read by the kernel, which checks it.
    let n = unsafe { libc::process_vm_readv(pid, &local, 1, &remote, 1, 0) };
    if n < 0 {
        0
    } else {
        n as usize
    }
}

/// Borrow the tracee's descriptor `fd` (pidfd_getfd, Linux 5.6) so that the
/// recorder can ask the socket for its own addresses. The tracer holds the
/// ptrace attach permission this needs.
pub fn dup_from(pid: i32, fd: i32) -> io::Result<OwnedFd> {
    // SAFETY: plain syscalls with integer arguments; the returned descriptors
    // are new and owned here.
    unsafe {
        let pidfd = libc::syscall(libc::SYS_pidfd_open, pid, 0);
        if pidfd < 0 {
            return Err(io::Error::last_os_error());
        }
        let pidfd = OwnedFd::from_raw_fd(pidfd as i32);
        let fd = libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), fd, 0);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(OwnedFd::from_raw_fd(fd as i32))
    }
}

/// A pidfd for `pid` (Linux 5.3), to borrow several of its descriptors.
pub fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: integer arguments only; the new descriptor is owned here.
    let r = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this descriptor to us.
    Ok(unsafe { OwnedFd::from_raw_fd(r as i32) })
}

/// Borrow descriptor `fd` of the process behind `pidfd`.
pub fn getfd(pidfd: &OwnedFd, fd: i32) -> io::Result<OwnedFd> {
    // SAFETY: integer arguments only; the new descriptor is owned here.
    let r = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), fd, 0) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this descriptor to us.
    Ok(unsafe { OwnedFd::from_raw_fd(r as i32) })
}

/// The file position of a descriptor (`lseek(fd, 0, SEEK_CUR)`).
pub fn tell(fd: &OwnedFd) -> Option<u64> {
    // SAFETY: lseek on a descriptor we own; no memory is passed.
    let r = unsafe { libc::lseek(fd.as_raw_fd(), 0, libc::SEEK_CUR) };
    (r >= 0).then_some(r as u64)
}

/// The size of the file behind a descriptor.
pub fn size(fd: &OwnedFd) -> Option<u64> {
    let f = std::mem::ManuallyDrop::new(
        // SAFETY: borrowed for the duration of the call only; ManuallyDrop
        // keeps the File from closing the descriptor the OwnedFd owns.
        unsafe { std::fs::File::from_raw_fd(fd.as_raw_fd()) },
    );
    f.metadata().ok().map(|m| m.len())
}

/// Raw socket-level facts of a borrowed socket: (domain, type, protocol,
/// local address bytes, peer address bytes).
pub struct RawSockFacts {
    pub domain: i32,
    pub sock_type: i32,
    pub protocol: i32,
    pub local: Option<Vec<u8>>,
    pub peer: Option<Vec<u8>>,
}

pub fn sock_facts(fd: &OwnedFd) -> RawSockFacts {
    let raw = fd.as_raw_fd();
    let opt = |name: libc::c_int| -> i32 {
        let mut v: libc::c_int = -1;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: `v` and `len` are valid for writes of the sizes given.
        let r = unsafe {
            libc::getsockopt(
                raw,
                libc::SOL_SOCKET,
                name,
                (&mut v as *mut libc::c_int).cast(),
                &mut len,
            )
        };
        if r < 0 {
            -1
        } else {
            v
        }
    };
    let name = |peer: bool| -> Option<Vec<u8>> {
        let mut buf = [0u8; std::mem::size_of::<libc::sockaddr_storage>()];
        let mut len = buf.len() as libc::socklen_t;
        // SAFETY: `buf` has room for any socket address, `len` says so.
        let r = unsafe {
            if peer {
                libc::getpeername(raw, buf.as_mut_ptr().cast(), &mut len)
            } else {
                libc::getsockname(raw, buf.as_mut_ptr().cast(), &mut len)
            }
        };
        (r == 0).then(|| buf[..(len as usize).min(buf.len())].to_vec())
    };
    RawSockFacts {
        domain: opt(libc::SO_DOMAIN),
        sock_type: opt(libc::SO_TYPE),
        protocol: opt(libc::SO_PROTOCOL),
        local: name(false),
        peer: name(true),
    }
}

/// Everything the child needs after `fork`, prepared beforehand so that the
/// child only makes async-signal-safe system calls.
pub struct ChildSetup {
    pub program: CString,
    pub argv: Vec<CString>,
    pub filter: Vec<libc::sock_filter>,
    /// Read end of the "you are being traced now" pipe.
    go_read: OwnedFd,
    go_write: OwnedFd,
}

impl ChildSetup {
    pub fn new(
        program: CString,
        argv: Vec<CString>,
        filter: Vec<libc::sock_filter>,
    ) -> io::Result<ChildSetup> {
        let mut fds = [0i32; 2];
        // SAFETY: `fds` has room for the two descriptors pipe2 writes.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: pipe2 just created both descriptors; nobody else owns them.
        let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        Ok(ChildSetup {
            program,
            argv,
            filter,
            go_read: r,
            go_write: w,
        })
    }
}

/// Fork the command. The child waits until the parent has attached with
/// `PTRACE_SEIZE` (the parent calls [`release_child`]), then forbids itself
/// new privileges, installs the seccomp filter and execs; if anything fails
/// it prints why and exits 127 like a shell would.
pub fn fork_child(setup: &ChildSetup) -> io::Result<i32> {
    let mut argv_ptrs: Vec<*const libc::c_char> = setup.argv.iter().map(|a| a.as_ptr()).collect();
    argv_ptrs.push(std::ptr::null());
    let prog = libc::sock_fprog {
        len: setup.filter.len() as u16,
        filter: setup.filter.as_ptr() as *mut libc::sock_filter,
    };
    let go_read = setup.go_read.as_raw_fd();
    let go_write = setup.go_write.as_raw_fd();
    // SAFETY: between fork and exec the child only calls async-signal-safe
    // functions (close, read, prctl, syscall, execv, write, _exit) on data
    // prepared before the fork; it never returns into Rust code.
    unsafe {
        let pid = libc::fork();
        if pid < 0 {
            return Err(io::Error::last_os_error());
        }
        if pid > 0 {
            return Ok(pid);
        }
        libc::close(go_write);
        let mut b = [0u8; 1];
        // Block until the parent says it is attached; EOF means it gave up.
        if libc::read(go_read, b.as_mut_ptr().cast(), 1) != 1 {
            libc::_exit(127);
        }
        libc::close(go_read);
        fn die(what: &[u8]) -> ! {
            // SAFETY: write and _exit are async-signal-safe; errno is read
            // through the libc accessor.
            unsafe {
                let e = *libc::__errno_location();
                libc::write(2, b"tomo: cannot start command: ".as_ptr().cast(), 28);
                libc::write(2, what.as_ptr().cast(), what.len());
                let msg = libc::strerror(e);
                libc::write(2, b": ".as_ptr().cast(), 2);
                libc::write(2, msg.cast(), libc::strlen(msg));
                libc::write(2, b"\n".as_ptr().cast(), 1);
                libc::_exit(if e == libc::ENOENT { 127 } else { 126 });
            }
        }
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
            die(b"prctl(PR_SET_NO_NEW_PRIVS)");
        }
        if libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            0,
            &prog as *const libc::sock_fprog,
        ) != 0
        {
            die(b"seccomp(SECCOMP_SET_MODE_FILTER)");
        }
        libc::execv(setup.program.as_ptr(), argv_ptrs.as_ptr());
        die(setup.program.as_bytes());
    }
}

/// Tell the forked child that it is traced and may go on.
pub fn release_child(setup: ChildSetup) -> io::Result<()> {
    let ChildSetup {
        go_read, go_write, ..
    } = setup;
    drop(go_read);
    // SAFETY: writes one byte from a live stack buffer to a descriptor we own.
    let n = unsafe { libc::write(go_write.as_raw_fd(), b"g".as_ptr().cast(), 1) };
    if n != 1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// How a tracee changed state, decoded from a `waitpid` status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    Exited(i32),
    Signaled(i32),
    /// Syscall stop (`PTRACE_O_TRACESYSGOOD`).
    Syscall,
    /// `PTRACE_EVENT_*` stop, with the stop signal.
    Event(i32, i32),
    /// Signal-delivery stop.
    Signal(i32),
    Other,
}

/// Wait for any tracee (`__WALL`: threads too). `Ok(None)` when none is left.
pub fn wait_any() -> io::Result<Option<(i32, Stop)>> {
    // Poll briefly before sleeping: traced programs often stop again within
    // microseconds, and on a VM waking a sleeping tracer costs more than the
    // stop itself (measured: ~25% less wall time on a syscall-heavy loop).
    // Bounded (~50-100 us of polling), so a quiet tracee costs little.
    // TOMO_SPIN=N overrides the number of polls (0 disables) for measuring.
    static SPIN: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    let spin = *SPIN.get_or_init(|| {
        std::env::var("TOMO_SPIN")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(100)
    });
    let mut tries = 0u32;
    loop {
        let mut status: libc::c_int = 0;
        let flags = if tries < spin {
            libc::__WALL | libc::WNOHANG
        } else {
            libc::__WALL
        };
        tries += 1;
        // SAFETY: `status` is a valid out-pointer for the call.
        let pid = unsafe { libc::waitpid(-1, &mut status, flags) };
        if pid == 0 {
            std::hint::spin_loop();
            continue;
        }
        if pid < 0 {
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::ECHILD) => return Ok(None),
                _ => return Err(e),
            }
        }
        let stop = decode_status(status);
        return Ok(Some((pid, stop)));
    }
}

/// Non-blocking wait for one tracee: `Ok(None)` if it has nothing to report.
pub fn wait_tid_nohang(tid: i32) -> io::Result<Option<Stop>> {
    let mut status: libc::c_int = 0;
    // SAFETY: `status` is a valid out-pointer for the call.
    let pid = unsafe { libc::waitpid(tid, &mut status, libc::__WALL | libc::WNOHANG) };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    if pid == 0 {
        return Ok(None);
    }
    Ok(Some(decode_status(status)))
}

fn decode_status(status: libc::c_int) -> Stop {
    if libc::WIFEXITED(status) {
        Stop::Exited(libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        Stop::Signaled(libc::WTERMSIG(status))
    } else if libc::WIFSTOPPED(status) {
        let sig = libc::WSTOPSIG(status);
        let event = (status >> 16) & 0xff;
        if sig == (libc::SIGTRAP | 0x80) {
            Stop::Syscall
        } else if event != 0 {
            Stop::Event(event, sig)
        } else {
            Stop::Signal(sig)
        }
    } else {
        Stop::Other
    }
}

fn ptrace_simple(
    req: libc::c_uint,
    tid: i32,
    addr: usize,
    data: usize,
) -> io::Result<libc::c_long> {
    // SAFETY: only requests whose `addr`/`data` are integers (or, for
    // GETEVENTMSG, checked by the caller) go through here.
    let r = unsafe { libc::ptrace(req, tid, addr, data) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(r)
}

pub const OPTIONS: usize = (libc::PTRACE_O_TRACESECCOMP
    | libc::PTRACE_O_TRACESYSGOOD
    | libc::PTRACE_O_TRACEFORK
    | libc::PTRACE_O_TRACEVFORK
    | libc::PTRACE_O_TRACECLONE
    | libc::PTRACE_O_TRACEEXEC
    | libc::PTRACE_O_EXITKILL) as usize;

pub fn seize(pid: i32) -> io::Result<()> {
    ptrace_simple(libc::PTRACE_SEIZE, pid, 0, OPTIONS).map(|_| ())
}

/// Resume to the next seccomp/event stop.
pub fn cont(tid: i32, sig: i32) -> io::Result<()> {
    ptrace_simple(libc::PTRACE_CONT, tid, 0, sig as usize).map(|_| ())
}

/// Resume and stop again at the syscall's exit.
pub fn to_exit(tid: i32) -> io::Result<()> {
    ptrace_simple(libc::PTRACE_SYSCALL, tid, 0, 0).map(|_| ())
}

/// The event message of the last `PTRACE_EVENT_*` stop (new tid, former tid).
pub fn event_msg(tid: i32) -> io::Result<u64> {
    let mut v: libc::c_ulong = 0;
    // SAFETY: the kernel writes one unsigned long into `v`.
    let r = unsafe {
        libc::ptrace(
            libc::PTRACE_GETEVENTMSG,
            tid,
            0usize,
            &mut v as *mut libc::c_ulong,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(v as u64)
}

pub fn kill_task(tid: i32) {
    // SAFETY: sending a signal has no memory effects; failures (already gone) are fine.
    unsafe {
        libc::kill(tid, libc::SIGKILL);
    }
}
