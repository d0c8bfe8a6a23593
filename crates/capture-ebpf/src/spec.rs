//! What the BPF program captures for each traced call: one row per syscall
//! number, written into the program's `specs` array before it is attached.
//! Argument positions are 1-based (0 = none), as the C side expects.

use tomo_event::Call;

pub const F_SKIP_NOFD0: u8 = 1;
pub const F_SKIP_ANON: u8 = 2;
pub const F_FCNTL_DUP: u8 = 4;
pub const F_MSGHDR: u8 = 8;
pub const F_RFD_PATH: u8 = 16;
pub const F_FD0_PATH: u8 = 32;
pub const F_CWD_AFTER: u8 = 64;
pub const F_VICTIM: u8 = 128;
/// `extra`: report the open file's reference count at entry (close).
pub const X_REFS: u8 = 1;
/// `extra`: per-message lengths and names of sendmmsg/recvmmsg.
pub const X_MMSG: u8 = 2;
/// `entry`: the call needs state from its entry (fork family: the clone
/// flags; exec and exit: which call; rename/unlink: the victim inodes;
/// transfers: offsets before the call). Others are read at exit only.
pub const E_ENTRY: u8 = 1;
/// `entry`: close is reported at entry when its descriptor is open.
pub const E_CLOSE: u8 = 2;

/// Mirror of `struct spec` in tomo.bpf.c (16 bytes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Spec {
    pub str_: [u8; 2],
    pub dir: [u8; 2],
    pub fd: [u8; 2],
    pub sa: u8,
    pub salen: u8,
    pub pair: u8,
    pub u64at: [u8; 2],
    pub flags: u8,
    pub extra: u8,
    /// E_* flags: what must be captured at the call's entry.
    pub entry: u8,
}

impl Spec {
    pub fn bytes(&self) -> [u8; 16] {
        [
            1,
            self.str_[0],
            self.str_[1],
            self.dir[0],
            self.dir[1],
            self.fd[0],
            self.fd[1],
            self.sa,
            self.salen,
            self.pair,
            self.u64at[0],
            self.u64at[1],
            self.flags,
            self.extra,
            self.entry,
            0,
        ]
    }
}

fn s() -> Spec {
    Spec::default()
}

/// The capture spec of `call`, or `None` when the agent does not trace it
/// (see [`NOT_CAPTURED`]).
pub fn spec_of(call: Call) -> Option<Spec> {
    use Call::*;
    let mut sp = spec_fields(call)?;
    if matches!(
        call,
        fork | vfork
            | clone
            | clone3
            | execve
            | execveat
            | exit
            | close
            | rename
            | renameat
            | renameat2
            | unlink
            | unlinkat
            | rmdir
            | sendfile
            | splice
            | tee
            | copy_file_range
    ) {
        sp.entry |= E_ENTRY;
    }
    if call == close {
        sp.entry |= E_CLOSE;
    }
    Some(sp)
}

fn spec_fields(call: Call) -> Option<Spec> {
    use Call::*;
    let path = |a: u8| Spec {
        str_: [a, 0],
        ..s()
    };
    let at = |d: u8, a: u8| Spec {
        str_: [a, 0],
        dir: [d, 0],
        ..s()
    };
    let fd0 = |a: u8, flags: u8| Spec {
        fd: [a, 0],
        flags,
        ..s()
    };
    Some(match call {
        fork | vfork | clone | exit | kill | tkill | tgkill | setuid | setreuid | setresuid
        | setgid | setregid | setresgid => s(),
        clone3 => Spec {
            u64at: [1, 0],
            ..s()
        },
        execve => path(1),
        execveat => at(1, 2),
        open | creat => Spec {
            flags: F_RFD_PATH,
            ..path(1)
        },
        openat => Spec {
            flags: F_RFD_PATH,
            ..at(1, 2)
        },
        openat2 => Spec {
            flags: F_RFD_PATH,
            u64at: [3, 0],
            ..at(1, 2)
        },
        close => Spec {
            extra: X_REFS,
            ..fd0(1, 0)
        },
        read | readv | write | writev | pread64 | pwrite64 | preadv | pwritev | preadv2
        | pwritev2 => fd0(1, F_SKIP_ANON),
        sendfile => Spec {
            fd: [2, 1],
            u64at: [3, 0],
            flags: F_SKIP_ANON,
            ..s()
        },
        splice | copy_file_range => Spec {
            fd: [1, 3],
            u64at: [2, 4],
            flags: F_SKIP_ANON,
            ..s()
        },
        tee => Spec {
            fd: [1, 2],
            flags: F_SKIP_ANON,
            ..s()
        },
        mmap => fd0(5, F_SKIP_NOFD0),
        dup | dup2 | dup3 => fd0(1, 0),
        fcntl => fd0(1, F_FCNTL_DUP),
        pipe | pipe2 => Spec { pair: 1, ..s() },
        rename => Spec {
            str_: [1, 2],
            flags: F_VICTIM,
            ..s()
        },
        link => Spec {
            str_: [1, 2],
            ..s()
        },
        renameat | renameat2 => Spec {
            str_: [2, 4],
            dir: [1, 3],
            flags: F_VICTIM,
            ..s()
        },
        linkat => Spec {
            str_: [2, 4],
            dir: [1, 3],
            ..s()
        },
        symlink => Spec {
            str_: [1, 2],
            ..s()
        },
        symlinkat => Spec {
            str_: [1, 3],
            dir: [0, 2],
            ..s()
        },
        unlink | rmdir => Spec {
            flags: F_VICTIM,
            ..path(1)
        },
        unlinkat => Spec {
            flags: F_VICTIM,
            ..at(1, 2)
        },
        mkdir | mknod | truncate | chmod | chown | lchown => path(1),
        mkdirat | mknodat | fchmodat | fchownat => at(1, 2),
        ftruncate | fchmod | fchown => fd0(1, 0),
        chdir => Spec {
            flags: F_CWD_AFTER,
            ..path(1)
        },
        fchdir => fd0(1, F_CWD_AFTER | F_FD0_PATH),
        socket => Spec {
            flags: F_RFD_PATH,
            ..s()
        },
        socketpair => Spec { pair: 4, ..s() },
        bind | connect => Spec {
            fd: [1, 0],
            sa: 2,
            salen: 3,
            ..s()
        },
        listen => fd0(1, 0),
        accept | accept4 => Spec {
            fd: [1, 0],
            flags: F_RFD_PATH,
            ..s()
        },
        sendto => Spec {
            fd: [1, 0],
            sa: 5,
            salen: 6,
            flags: F_SKIP_ANON,
            ..s()
        },
        // The peer address is filled in by the call; its length is behind a
        // pointer, so read the largest sockaddr and let the family decide.
        recvfrom => Spec {
            fd: [1, 0],
            sa: 5,
            flags: F_SKIP_ANON,
            ..s()
        },
        sendmsg | recvmsg => Spec {
            fd: [1, 0],
            sa: 2,
            flags: F_SKIP_ANON | F_MSGHDR,
            ..s()
        },
        sendmmsg | recvmmsg => Spec {
            fd: [1, 0],
            flags: F_SKIP_ANON,
            extra: X_MMSG,
            ..s()
        },
        _ => return None,
    })
}

/// Calls the ptrace recorder reports that this agent does not capture yet.
pub const NOT_CAPTURED: &[(&str, &str)] = &[
    (
        "sendmmsg, recvmmsg",
        "only the first 16 messages of one call get an event each (the rest are not reported)",
    ),
    (
        "close_range",
        "not traced: no Close event per descriptor (closes make no graph edges)",
    ),
    (
        "lseek",
        "not traced (not needed: offsets are read from the kernel's struct file)",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    /// No silent gaps: every call the ptrace recorder traces is either
    /// captured here or listed in NOT_CAPTURED.
    #[test]
    fn every_traced_call_is_captured_or_listed() {
        for nr in tomo_capture_ptrace::traced_numbers() {
            let call = tomo_capture_ptrace::call_of(nr).expect("traced call");
            let name = format!("{call:?}");
            let listed = NOT_CAPTURED
                .iter()
                .any(|(calls, _)| calls.split(", ").any(|c| c == name));
            // exit_group's outcome (the process's end) comes from the
            // sched_process_exit tracepoint, not from the syscall.
            let lifecycle = call == Call::exit_group;
            assert!(
                spec_of(call).is_some() || listed || lifecycle,
                "{name} (nr {nr}) is neither captured nor listed in NOT_CAPTURED"
            );
            assert!(nr < 512, "{name}: the BPF table has 512 rows");
        }
    }
}
