//! Tomo's system-wide recorder: a CO-RE eBPF program (`bpf/tomo.bpf.c`,
//! committed compiled as `bpf/tomo.bpf.o` so that building Tomo needs no
//! clang) loaded with aya, reporting every provenance-relevant system call
//! of every process as a normalized [`tomo_event::Event`], the same ops the
//! ptrace recorder produces for the same calls.
//!
//! * Hooks: BTF tracepoints `sys_enter`/`sys_exit` (filtered in the kernel
//!   by a per-syscall table, [`spec`]), and `sched_process_fork/exec/exit`
//!   for the process lifecycle. No tracefs needed.
//! * In-kernel filtering: the agent's own process, calls the table does not
//!   name, anonymous mmaps, `fcntl` other than `F_DUPFD*`, and I/O on
//!   anonymous inodes (eventfd, epoll, timerfd, …). With
//!   [`Options::netns`], also every task outside that network namespace
//!   (one agent per namespace: one simulated host per agent).
//! * Identity is resolved in the kernel (device, inode, mode, file position,
//!   socket addresses from the `struct file`); paths of opened files,
//!   executables and working directories are walked in the kernel
//!   (dentries, across mounts); user-supplied paths are made absolute in
//!   user space against the directory the kernel reported.
//! * Loss is counted, never silent: every record the ring buffer could not
//!   take increments a per-CPU counter ([`Stats::kernel_drops`]).
//!
//! Requires root (CAP_BPF + CAP_PERFMON) and a kernel with BTF
//! (`/sys/kernel/btf/vmlinux`); x86-64 only (syscall numbers, registers).

mod convert;
mod kernel;
mod netns;
mod order;
mod record;
pub mod spec;

use std::io;
use tomo_event::{Event, Id128};

pub use netns::netns_inode;
pub use spec::NOT_CAPTURED;

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("cannot start the eBPF agent ({0}); it needs root (CAP_BPF, CAP_PERFMON) and a kernel with BTF at /sys/kernel/btf/vmlinux")]
    Load(String),
    #[error("the recording sink failed: {0}")]
    Sink(#[source] io::Error),
    #[error("--netns {0}")]
    NetNs(String),
}

/// Counters of a running agent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Ring-buffer records read.
    pub records: u64,
    /// Events passed to the sink.
    pub events: u64,
    /// Records the kernel could not put into the ring buffer (lost).
    pub kernel_drops: u64,
    /// Records that did not parse (program/loader mismatch).
    pub bad_records: u64,
    /// Events held back for causal order and released by timeout instead.
    pub late: u64,
}

/// What one agent records.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// Only tasks in the network namespace with this inode number
    /// ([`netns_inode`]); `None`: every task. Checked per task at every
    /// hook, so a process entering the namespace (`setns`, then `exec`) is
    /// recorded from its first event there, introduced by an `Observed`
    /// like a process that was running before the start; one leaving it
    /// is not recorded any more (its exit neither).
    pub netns: Option<u32>,
}

/// A loaded and attached agent. Dropping it detaches the programs.
pub struct Agent {
    kernel: kernel::Kernel,
    conv: convert::Converter,
    order: order::Order,
    stats: Stats,
}

impl Agent {
    /// Load and attach the program. Events of the calling process are not
    /// captured (the agent would otherwise record its own log writes).
    /// `host` and `boot` go into every event.
    pub fn start(host: Id128, boot: Id128, opts: Options) -> Result<Agent, AgentError> {
        let kernel = kernel::Kernel::load(std::process::id(), opts.netns.unwrap_or(0))?;
        Ok(Agent {
            kernel,
            conv: convert::Converter::new(host, boot, kernel::boot_to_wall_offset()),
            order: order::Order::default(),
            stats: Stats::default(),
        })
    }

    /// Wait up to `timeout_ms` for records, convert everything available and
    /// pass the events, in causal order, to `sink`.
    pub fn poll(
        &mut self,
        timeout_ms: i32,
        sink: &mut dyn FnMut(Event) -> io::Result<()>,
    ) -> Result<(), AgentError> {
        self.kernel.wait(timeout_ms);
        self.pump(sink, false)
    }

    fn pump(
        &mut self,
        sink: &mut dyn FnMut(Event) -> io::Result<()>,
        force: bool,
    ) -> Result<(), AgentError> {
        let Agent {
            kernel,
            conv,
            order,
            stats,
        } = self;
        let mut err = None;
        let mut counted = |ev: Event| {
            stats.events += 1;
            sink(ev)
        };
        let n = kernel.drain(&mut |raw| {
            if err.is_some() {
                return;
            }
            let out = conv.record(raw);
            if let Some(pid) = out.born {
                order.expect_spawn(pid);
            }
            for ev in out.events {
                if let Err(e) = order.push(ev, &mut counted) {
                    err = Some(e);
                    return;
                }
            }
        });
        stats.records += n as u64;
        if let Some(e) = err {
            return Err(AgentError::Sink(e));
        }
        order.drain(&mut counted, force).map_err(AgentError::Sink)?;
        stats.bad_records = conv.bad_records;
        stats.late = order.late;
        stats.kernel_drops = kernel.drops();
        Ok(())
    }

    /// Read what is left in the ring buffer and release every held event.
    pub fn finish(
        mut self,
        sink: &mut dyn FnMut(Event) -> io::Result<()>,
    ) -> Result<Stats, AgentError> {
        self.pump(sink, false)?;
        self.pump(sink, true)?;
        Ok(self.stats)
    }

    /// Optional parts that could not be enabled on this kernel, each with
    /// what is missing as a result (empty when everything is on).
    pub fn degraded(&self) -> &[String] {
        &self.kernel.degraded
    }

    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Sizes of the per-thread, per-process and per-open-file state, and
    /// events held back (for the bounded-memory check).
    pub fn state_sizes(&self) -> [usize; 4] {
        let (a, b, c) = self.conv.state_sizes();
        [a, b, c, self.order.len()]
    }
}
