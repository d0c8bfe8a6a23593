//! System call names and numbers. A raw log only says `arch=c000003e
//! syscall=257`; the ENRICHED form adds `SYSCALL=openat`, which is preferred
//! because it also works for other architectures and 32-bit processes.

use tomo_event::Call;

/// `AUDIT_ARCH_X86_64`: the only architecture whose numbers are built in.
pub const ARCH_X86_64: u64 = 0xc000_003e;

/// The x86_64 numbers of the calls this source understands. Written out
/// (rather than `libc::SYS_*`) so that the parser reads x86_64 logs on any
/// build host; a test checks them against `libc` on x86_64.
pub const X86_64: &[(u64, &str)] = &[
    (0, "read"),
    (1, "write"),
    (2, "open"),
    (3, "close"),
    (8, "lseek"),
    (9, "mmap"),
    (17, "pread64"),
    (18, "pwrite64"),
    (19, "readv"),
    (20, "writev"),
    (22, "pipe"),
    (32, "dup"),
    (33, "dup2"),
    (40, "sendfile"),
    (41, "socket"),
    (42, "connect"),
    (43, "accept"),
    (44, "sendto"),
    (45, "recvfrom"),
    (46, "sendmsg"),
    (47, "recvmsg"),
    (49, "bind"),
    (50, "listen"),
    (53, "socketpair"),
    (56, "clone"),
    (57, "fork"),
    (58, "vfork"),
    (59, "execve"),
    (60, "exit"),
    (62, "kill"),
    (72, "fcntl"),
    (76, "truncate"),
    (77, "ftruncate"),
    (80, "chdir"),
    (81, "fchdir"),
    (82, "rename"),
    (83, "mkdir"),
    (84, "rmdir"),
    (85, "creat"),
    (86, "link"),
    (87, "unlink"),
    (88, "symlink"),
    (90, "chmod"),
    (91, "fchmod"),
    (92, "chown"),
    (93, "fchown"),
    (94, "lchown"),
    (105, "setuid"),
    (106, "setgid"),
    (113, "setreuid"),
    (114, "setregid"),
    (117, "setresuid"),
    (119, "setresgid"),
    (133, "mknod"),
    (200, "tkill"),
    (213, "epoll_create"),
    (231, "exit_group"),
    (234, "tgkill"),
    (253, "inotify_init"),
    (257, "openat"),
    (258, "mkdirat"),
    (259, "mknodat"),
    (260, "fchownat"),
    (263, "unlinkat"),
    (264, "renameat"),
    (265, "linkat"),
    (266, "symlinkat"),
    (268, "fchmodat"),
    (275, "splice"),
    (276, "tee"),
    (282, "signalfd"),
    (283, "timerfd_create"),
    (284, "eventfd"),
    (288, "accept4"),
    (289, "signalfd4"),
    (290, "eventfd2"),
    (291, "epoll_create1"),
    (292, "dup3"),
    (293, "pipe2"),
    (294, "inotify_init1"),
    (295, "preadv"),
    (296, "pwritev"),
    (298, "perf_event_open"),
    (299, "recvmmsg"),
    (300, "fanotify_init"),
    (304, "open_by_handle_at"),
    (307, "sendmmsg"),
    (316, "renameat2"),
    (319, "memfd_create"),
    (322, "execveat"),
    (323, "userfaultfd"),
    (326, "copy_file_range"),
    (327, "preadv2"),
    (328, "pwritev2"),
    (434, "pidfd_open"),
    (435, "clone3"),
    (436, "close_range"),
    (437, "openat2"),
    (438, "pidfd_getfd"),
    (452, "fchmodat2"),
];

pub fn x86_64_name(nr: u64) -> Option<&'static str> {
    X86_64
        .binary_search_by_key(&nr, |&(n, _)| n)
        .ok()
        .map(|i| X86_64[i].1)
}

/// Calls that return a new descriptor this source cannot resolve (anonymous
/// inodes, handles): a stale mapping of that number must be forgotten.
pub fn returns_untracked_fd(name: &str) -> bool {
    matches!(
        name,
        "epoll_create"
            | "epoll_create1"
            | "inotify_init"
            | "inotify_init1"
            | "signalfd"
            | "signalfd4"
            | "timerfd_create"
            | "eventfd"
            | "eventfd2"
            | "perf_event_open"
            | "fanotify_init"
            | "open_by_handle_at"
            | "memfd_create"
            | "userfaultfd"
            | "pidfd_open"
            | "pidfd_getfd"
    )
}

/// The schema's name of a call, by its kernel name.
pub fn call_of(name: &str) -> Option<Call> {
    match name {
        // fchmodat2 (Linux 6.6) is fchmodat with working flags.
        "fchmodat2" => Some(Call::fchmodat),
        // The audit userspace's names (ENRICHED SYSCALL=) for 17 and 18.
        "pread" => Some(Call::pread64),
        "pwrite" => Some(Call::pwrite64),
        _ => Call::from_name(name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_and_named() {
        assert!(X86_64.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(call_of("pread"), Some(Call::pread64));
        assert_eq!(call_of("pwrite"), Some(Call::pwrite64));
        for &(_, name) in X86_64 {
            assert!(
                call_of(name).is_some() || returns_untracked_fd(name),
                "{name} is in the table but maps to nothing"
            );
        }
    }

    /// The written-out numbers are the kernel's (checked where libc has them).
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn numbers_match_libc() {
        use libc::*;
        let expect: &[(c_long, &str)] = &[
            (SYS_read, "read"),
            (SYS_write, "write"),
            (SYS_open, "open"),
            (SYS_close, "close"),
            (SYS_lseek, "lseek"),
            (SYS_mmap, "mmap"),
            (SYS_pread64, "pread64"),
            (SYS_pwrite64, "pwrite64"),
            (SYS_readv, "readv"),
            (SYS_writev, "writev"),
            (SYS_pipe, "pipe"),
            (SYS_dup, "dup"),
            (SYS_dup2, "dup2"),
            (SYS_sendfile, "sendfile"),
            (SYS_socket, "socket"),
            (SYS_connect, "connect"),
            (SYS_accept, "accept"),
            (SYS_sendto, "sendto"),
            (SYS_recvfrom, "recvfrom"),
            (SYS_sendmsg, "sendmsg"),
            (SYS_recvmsg, "recvmsg"),
            (SYS_bind, "bind"),
            (SYS_listen, "listen"),
            (SYS_socketpair, "socketpair"),
            (SYS_clone, "clone"),
            (SYS_fork, "fork"),
            (SYS_vfork, "vfork"),
            (SYS_execve, "execve"),
            (SYS_exit, "exit"),
            (SYS_kill, "kill"),
            (SYS_fcntl, "fcntl"),
            (SYS_truncate, "truncate"),
            (SYS_ftruncate, "ftruncate"),
            (SYS_chdir, "chdir"),
            (SYS_fchdir, "fchdir"),
            (SYS_rename, "rename"),
            (SYS_mkdir, "mkdir"),
            (SYS_rmdir, "rmdir"),
            (SYS_creat, "creat"),
            (SYS_link, "link"),
            (SYS_unlink, "unlink"),
            (SYS_symlink, "symlink"),
            (SYS_chmod, "chmod"),
            (SYS_fchmod, "fchmod"),
            (SYS_chown, "chown"),
            (SYS_fchown, "fchown"),
            (SYS_lchown, "lchown"),
            (SYS_setuid, "setuid"),
            (SYS_setgid, "setgid"),
            (SYS_setreuid, "setreuid"),
            (SYS_setregid, "setregid"),
            (SYS_setresuid, "setresuid"),
            (SYS_setresgid, "setresgid"),
            (SYS_mknod, "mknod"),
            (SYS_tkill, "tkill"),
            (SYS_epoll_create, "epoll_create"),
            (SYS_exit_group, "exit_group"),
            (SYS_tgkill, "tgkill"),
            (SYS_inotify_init, "inotify_init"),
            (SYS_openat, "openat"),
            (SYS_mkdirat, "mkdirat"),
            (SYS_mknodat, "mknodat"),
            (SYS_fchownat, "fchownat"),
            (SYS_unlinkat, "unlinkat"),
            (SYS_renameat, "renameat"),
            (SYS_linkat, "linkat"),
            (SYS_symlinkat, "symlinkat"),
            (SYS_fchmodat, "fchmodat"),
            (SYS_splice, "splice"),
            (SYS_tee, "tee"),
            (SYS_signalfd, "signalfd"),
            (SYS_timerfd_create, "timerfd_create"),
            (SYS_eventfd, "eventfd"),
            (SYS_accept4, "accept4"),
            (SYS_signalfd4, "signalfd4"),
            (SYS_eventfd2, "eventfd2"),
            (SYS_epoll_create1, "epoll_create1"),
            (SYS_dup3, "dup3"),
            (SYS_pipe2, "pipe2"),
            (SYS_inotify_init1, "inotify_init1"),
            (SYS_preadv, "preadv"),
            (SYS_pwritev, "pwritev"),
            (SYS_perf_event_open, "perf_event_open"),
            (SYS_recvmmsg, "recvmmsg"),
            (SYS_fanotify_init, "fanotify_init"),
            (SYS_open_by_handle_at, "open_by_handle_at"),
            (SYS_sendmmsg, "sendmmsg"),
            (SYS_renameat2, "renameat2"),
            (SYS_memfd_create, "memfd_create"),
            (SYS_execveat, "execveat"),
            (SYS_userfaultfd, "userfaultfd"),
            (SYS_copy_file_range, "copy_file_range"),
            (SYS_preadv2, "preadv2"),
            (SYS_pwritev2, "pwritev2"),
            (SYS_pidfd_open, "pidfd_open"),
            (SYS_clone3, "clone3"),
            (SYS_close_range, "close_range"),
            (SYS_openat2, "openat2"),
            (SYS_pidfd_getfd, "pidfd_getfd"),
            (SYS_fchmodat2, "fchmodat2"),
        ];
        assert_eq!(expect.len(), X86_64.len());
        for &(nr, name) in expect {
            assert_eq!(x86_64_name(nr as u64), Some(name), "SYS_{name} = {nr}");
        }
    }
}
