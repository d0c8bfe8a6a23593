//! Which system calls stop the tracee, and the seccomp-bpf program that says
//! so. Everything else runs at full speed: the filter is the main reason the
//! recorder costs less than `strace -f`, which stops on every call.

use tomo_event::Call;

#[cfg(target_arch = "x86_64")]
pub const AUDIT_ARCH: u32 = 0xC000_003E; // AUDIT_ARCH_X86_64
#[cfg(target_arch = "aarch64")]
pub const AUDIT_ARCH: u32 = 0xC000_00B7; // AUDIT_ARCH_AARCH64

/// The recorder's name for a native syscall number, for the calls it traces.
#[allow(non_upper_case_globals)] // libc names syscall numbers in lower case
pub fn call_of(nr: i64) -> Option<Call> {
    use libc::*;
    #[cfg(target_arch = "x86_64")]
    {
        let legacy = match nr {
            SYS_fork => Some(Call::fork),
            SYS_vfork => Some(Call::vfork),
            SYS_open => Some(Call::open),
            SYS_creat => Some(Call::creat),
            SYS_dup2 => Some(Call::dup2),
            SYS_pipe => Some(Call::pipe),
            SYS_rename => Some(Call::rename),
            SYS_link => Some(Call::link),
            SYS_symlink => Some(Call::symlink),
            SYS_unlink => Some(Call::unlink),
            SYS_rmdir => Some(Call::rmdir),
            SYS_mkdir => Some(Call::mkdir),
            SYS_mknod => Some(Call::mknod),
            SYS_chmod => Some(Call::chmod),
            SYS_chown => Some(Call::chown),
            SYS_lchown => Some(Call::lchown),
            _ => None,
        };
        if legacy.is_some() {
            return legacy;
        }
    }
    Some(match nr {
        SYS_exit => Call::exit,
        SYS_exit_group => Call::exit_group,
        SYS_clone => Call::clone,
        SYS_clone3 => Call::clone3,
        SYS_execve => Call::execve,
        SYS_execveat => Call::execveat,
        SYS_kill => Call::kill,
        SYS_tkill => Call::tkill,
        SYS_tgkill => Call::tgkill,
        SYS_openat => Call::openat,
        SYS_openat2 => Call::openat2,
        SYS_close => Call::close,
        SYS_close_range => Call::close_range,
        SYS_read => Call::read,
        SYS_pread64 => Call::pread64,
        SYS_readv => Call::readv,
        SYS_preadv => Call::preadv,
        SYS_preadv2 => Call::preadv2,
        SYS_write => Call::write,
        SYS_pwrite64 => Call::pwrite64,
        SYS_writev => Call::writev,
        SYS_pwritev => Call::pwritev,
        SYS_pwritev2 => Call::pwritev2,
        SYS_sendfile => Call::sendfile,
        SYS_splice => Call::splice,
        SYS_tee => Call::tee,
        SYS_copy_file_range => Call::copy_file_range,
        SYS_mmap => Call::mmap,
        SYS_lseek => Call::lseek,
        SYS_dup => Call::dup,
        SYS_dup3 => Call::dup3,
        SYS_fcntl => Call::fcntl,
        SYS_pipe2 => Call::pipe2,
        SYS_renameat => Call::renameat,
        SYS_renameat2 => Call::renameat2,
        SYS_linkat => Call::linkat,
        SYS_symlinkat => Call::symlinkat,
        SYS_unlinkat => Call::unlinkat,
        SYS_mkdirat => Call::mkdirat,
        SYS_mknodat => Call::mknodat,
        SYS_truncate => Call::truncate,
        SYS_ftruncate => Call::ftruncate,
        SYS_fchmod => Call::fchmod,
        SYS_fchmodat => Call::fchmodat,
        SYS_fchown => Call::fchown,
        SYS_fchownat => Call::fchownat,
        SYS_setuid => Call::setuid,
        SYS_setreuid => Call::setreuid,
        SYS_setresuid => Call::setresuid,
        SYS_setgid => Call::setgid,
        SYS_setregid => Call::setregid,
        SYS_setresgid => Call::setresgid,
        SYS_chdir => Call::chdir,
        SYS_fchdir => Call::fchdir,
        SYS_socket => Call::socket,
        SYS_socketpair => Call::socketpair,
        SYS_bind => Call::bind,
        SYS_listen => Call::listen,
        SYS_connect => Call::connect,
        SYS_accept => Call::accept,
        SYS_accept4 => Call::accept4,
        SYS_sendto => Call::sendto,
        SYS_recvfrom => Call::recvfrom,
        SYS_sendmsg => Call::sendmsg,
        SYS_recvmsg => Call::recvmsg,
        SYS_sendmmsg => Call::sendmmsg,
        SYS_recvmmsg => Call::recvmmsg,
        _ => return None,
    })
}

/// Every native syscall number the recorder wants to see.
pub fn traced_numbers() -> Vec<i64> {
    (0..1024).filter(|&nr| call_of(nr).is_some()).collect()
}

const F_DUPFD: u32 = 0;
const F_DUPFD_CLOEXEC: u32 = 1030;
const MAP_ANONYMOUS: u32 = 0x20;

// Offsets into `struct seccomp_data` (little-endian: the low word of an
// argument comes first).
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
const fn off_arg_lo(i: u32) -> u32 {
    16 + 8 * i
}

fn stmt(code: u32, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    }
}
fn jump(code: u32, k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    }
}

/// Build the filter. Layout:
///
/// ```text
///     ld arch; jeq AUDIT_ARCH ? next : final ALLOW (other ABIs run untraced)
///     ld nr
///     jeq mmap  -> MMAP    (only file-backed mappings stop)
///     jeq fcntl -> FCNTL   (only F_DUPFD* stop)
///     jeq n_i   -> TRACE   for every other traced call
///     ret ALLOW
///  TRACE: ret TRACE
///  MMAP:  ld flags; jset MAP_ANONYMOUS -> allow; ld fd; jeq -1 -> allow; ret TRACE; allow: ret ALLOW
///  FCNTL: ld cmd; jeq F_DUPFD -> TRACE; jeq F_DUPFD_CLOEXEC -> TRACE; ret ALLOW
/// ```
pub fn program() -> Vec<libc::sock_filter> {
    use libc::{BPF_ABS, BPF_JEQ, BPF_JMP, BPF_JSET, BPF_K, BPF_LD, BPF_RET, BPF_W};
    let ret_allow = libc::SECCOMP_RET_ALLOW;
    let ret_trace = libc::SECCOMP_RET_TRACE;
    let plain: Vec<u32> = traced_numbers()
        .into_iter()
        .filter(|&n| n != libc::SYS_mmap && n != libc::SYS_fcntl)
        .map(|n| n as u32)
        .collect();
    // Jump offsets are u8: the list must stay short (it is ~80 entries).
    assert!(plain.len() < 200, "seccomp filter too long for 8-bit jumps");

    let mut p = Vec::new();
    p.push(stmt(BPF_LD | BPF_W | BPF_ABS, OFF_ARCH));
    // jf skips the whole body to a final ALLOW placed right after it; filled below.
    let arch_jump = p.len();
    p.push(jump(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH, 0, 0));
    p.push(stmt(BPF_LD | BPF_W | BPF_ABS, OFF_NR));
    // Index layout after the two special jumps and the list:
    let n = plain.len();
    let first_list = p.len() + 2;
    let allow_at = first_list + n;
    let trace_at = allow_at + 1;
    let mmap_at = trace_at + 1;
    let mmap_len = 6;
    let fcntl_at = mmap_at + mmap_len;
    let rel = |from: usize, to: usize| -> u8 {
        u8::try_from(to - from - 1).expect("seccomp jump fits in u8")
    };
    let here = p.len();
    p.push(jump(
        BPF_JMP | BPF_JEQ | BPF_K,
        libc::SYS_mmap as u32,
        rel(here, mmap_at),
        0,
    ));
    let here = p.len();
    p.push(jump(
        BPF_JMP | BPF_JEQ | BPF_K,
        libc::SYS_fcntl as u32,
        rel(here, fcntl_at),
        0,
    ));
    for nr in plain {
        let here = p.len();
        p.push(jump(BPF_JMP | BPF_JEQ | BPF_K, nr, rel(here, trace_at), 0));
    }
    debug_assert_eq!(p.len(), allow_at);
    p.push(stmt(BPF_RET | BPF_K, ret_allow));
    p.push(stmt(BPF_RET | BPF_K, ret_trace));
    debug_assert_eq!(p.len(), mmap_at);
    p.push(stmt(BPF_LD | BPF_W | BPF_ABS, off_arg_lo(3)));
    p.push(jump(BPF_JMP | BPF_JSET | BPF_K, MAP_ANONYMOUS, 3, 0));
    p.push(stmt(BPF_LD | BPF_W | BPF_ABS, off_arg_lo(4)));
    p.push(jump(BPF_JMP | BPF_JEQ | BPF_K, u32::MAX, 1, 0));
    p.push(stmt(BPF_RET | BPF_K, ret_trace));
    p.push(stmt(BPF_RET | BPF_K, ret_allow));
    debug_assert_eq!(p.len(), fcntl_at);
    p.push(stmt(BPF_LD | BPF_W | BPF_ABS, off_arg_lo(1)));
    p.push(jump(BPF_JMP | BPF_JEQ | BPF_K, F_DUPFD, 2, 0));
    p.push(jump(BPF_JMP | BPF_JEQ | BPF_K, F_DUPFD_CLOEXEC, 1, 0));
    p.push(stmt(BPF_RET | BPF_K, ret_allow));
    p.push(stmt(BPF_RET | BPF_K, ret_trace));
    // BPF jumps only go forward, so the non-native ABI check gets its own ALLOW.
    let end_allow = p.len();
    p.push(stmt(BPF_RET | BPF_K, ret_allow));
    p[arch_jump].jf = rel(arch_jump, end_allow);
    p
}
