//! Tomo's unprivileged recorder: runs a command under `ptrace` with a
//! seccomp-bpf filter, follows its whole process tree, and reports every
//! provenance-relevant system call as a normalized [`tomo_event::Event`].
//!
//! * Only the calls in [`filter`] stop the tracee; the rest run at full
//!   speed (file-backed `mmap` and `fcntl(F_DUPFD*)` are filtered on their
//!   arguments in the kernel too).
//! * Each event carries resolved identities (device, inode, kind, path) of
//!   every descriptor it names, from a model of open file descriptions that
//!   follows dup/fork/exec like the kernel does, so reads and writes cost no
//!   extra lookups.
//! * Failed calls are reported with their negative return value and the
//!   path or descriptor they named; they never look like data flows.
//!
//! Limits: 32-bit (compat) system calls of a 64-bit kernel are not traced;
//! io_uring and descriptor passing through memory-mapped rings are not seen.

mod calls;
mod filter;
mod procfs;
mod sys;
mod tracer;

use std::ffi::{CString, OsString};
use std::io;
use std::os::unix::ffi::OsStrExt;
use tomo_event::{Event, Id128};

pub use calls::parse_sockaddr;
pub use filter::{call_of, traced_numbers};

/// How the recorder should behave.
#[derive(Clone, Debug)]
pub struct RecordOptions {
    /// Keep each exec's environment (it may contain secrets, so off by default).
    pub keep_env: bool,
    /// Machine and boot the events are stamped with.
    pub host: Id128,
    pub boot: Id128,
    /// Keep the bytes of reads and writes (`Op::Content` events); off by default.
    pub content: Option<ContentOptions>,
}

/// Content capture: the bytes each successful read/write/send/recv moved,
/// copied from the tracee's buffer at the call's exit stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ContentOptions {
    /// At most this many bytes per call (the first ones).
    pub per_call: usize,
    /// At most this many bytes in all; once spent, calls are recorded
    /// without content (the CLI reports it).
    pub budget: u64,
}

impl Default for ContentOptions {
    fn default() -> Self {
        ContentOptions {
            per_call: 64 << 10,
            budget: 1 << 30,
        }
    }
}

/// How the recorded command ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
}

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("empty command")]
    EmptyCommand,
    #[error("{0}: command not found (searched PATH)")]
    NotFound(String),
    #[error("command argument contains a NUL byte: {0:?}")]
    NulInArgument(OsString),
    #[error("cannot start the command: {0}")]
    Spawn(#[source] io::Error),
    #[error("cannot trace the command (ptrace PTRACE_SEIZE failed: {0}); is ptrace forbidden here (kernel.yama.ptrace_scope = 3, a seccomp policy of the container)?")]
    Attach(#[source] io::Error),
    #[error("waiting for the traced processes failed: {0}")]
    Wait(#[source] io::Error),
    #[error("the recording sink failed: {0}")]
    Sink(#[source] io::Error),
    #[error("the command's exit status was never reported")]
    NoExitStatus,
    #[error("cannot read {path}: {source}")]
    Ids {
        path: &'static str,
        #[source]
        source: io::Error,
    },
}

/// This machine's id (`/etc/machine-id`, or a hash of the host name when
/// there is none) and the current boot id.
pub fn local_ids() -> Result<(Id128, Id128), RecordError> {
    let boot_path = "/proc/sys/kernel/random/boot_id";
    let boot = std::fs::read_to_string(boot_path).map_err(|source| RecordError::Ids {
        path: boot_path,
        source,
    })?;
    let boot = Id128::parse(&boot).ok_or(RecordError::Ids {
        path: boot_path,
        source: io::Error::new(io::ErrorKind::InvalidData, "not a UUID"),
    })?;
    let host = ["/etc/machine-id", "/var/lib/dbus/machine-id"]
        .iter()
        .find_map(|p| {
            std::fs::read_to_string(p)
                .ok()
                .and_then(|s| Id128::parse(&s))
        })
        .unwrap_or_else(|| {
            // No machine id (minimal containers): derive a stable one from the name.
            let name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
            let mut h = [0u8; 16];
            let mut x: u64 = 0xcbf2_9ce4_8422_2325;
            for (i, b) in name
                .trim()
                .bytes()
                .chain(std::iter::repeat_n(0, 16))
                .take(name.len().max(16))
                .enumerate()
            {
                x = (x ^ b as u64).wrapping_mul(0x100_0000_01b3);
                h[i % 16] ^= (x >> 24) as u8;
            }
            Id128(h)
        });
    Ok((host, boot))
}

/// The host id of a simulated host named `name` (`--host-name`), used in
/// place of the machine id so that several agents on one machine (one per
/// network namespace) look like several hosts: the version-5 UUID of the
/// name in the standard DNS namespace, so anyone can derive it again
/// (`uuidgen --sha1 --namespace @dns --name NAME`, or Python's
/// `uuid.uuid5(uuid.NAMESPACE_DNS, NAME)`).
pub fn host_id_of_name(name: &str) -> Id128 {
    Id128(*uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_DNS, name.as_bytes()).as_bytes())
}

/// Run `argv` (looked up in `PATH` like a shell does) under the recorder and
/// pass every event to `sink`, in order. Returns when the command and every
/// process it started are gone. If `sink` fails, the traced processes are
/// killed (nothing may run unrecorded) and the error is returned.
pub fn record(
    argv: &[OsString],
    opts: &RecordOptions,
    sink: &mut dyn FnMut(Event) -> io::Result<()>,
) -> Result<Exit, RecordError> {
    if argv.is_empty() {
        return Err(RecordError::EmptyCommand);
    }
    // Search PATH here rather than with execvp in the child, so that the
    // recording does not start with a failed exec per PATH entry.
    let program = resolve_program(&argv[0])?;
    let program = CString::new(program.as_os_str().as_bytes())
        .map_err(|_| RecordError::NulInArgument(argv[0].clone()))?;
    let cargv = argv
        .iter()
        .map(|a| CString::new(a.as_bytes()).map_err(|_| RecordError::NulInArgument(a.clone())))
        .collect::<Result<Vec<_>, _>>()?;
    let setup =
        sys::ChildSetup::new(program, cargv, filter::program()).map_err(RecordError::Spawn)?;
    let pid = sys::fork_child(&setup).map_err(RecordError::Spawn)?;
    if let Err(e) = sys::seize(pid) {
        sys::kill_task(pid);
        // Reap it so it does not linger as a zombie.
        let _ = sys::wait_any();
        return Err(RecordError::Attach(e));
    }
    let mut tracer = tracer::Tracer::new(opts, sink);
    tracer.adopt_root(
        pid,
        argv.iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect(),
    );
    sys::release_child(setup).map_err(RecordError::Spawn)?;
    tracer.run()
}

fn resolve_program(name: &OsString) -> Result<std::path::PathBuf, RecordError> {
    use std::os::unix::fs::PermissionsExt;
    let p = std::path::Path::new(name);
    if name.as_bytes().contains(&b'/') {
        return Ok(p.to_path_buf());
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .map(|dir| dir.join(p))
        .find(|c| {
            std::fs::metadata(c).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
        .ok_or_else(|| RecordError::NotFound(name.to_string_lossy().into_owned()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn host_id_of_name_is_uuid5_dns() {
        // python3 -c 'import uuid; print(uuid.uuid5(uuid.NAMESPACE_DNS, "hostA"))'
        assert_eq!(
            super::host_id_of_name("hostA").to_string(),
            "3dc2c4bb-836a-5f48-8716-ea0c9a036244"
        );
    }
}
