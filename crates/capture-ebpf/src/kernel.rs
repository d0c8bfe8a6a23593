//! The kernel-facing half: load the committed CO-RE object with aya, fill
//! the per-call table, attach the tracepoints, and hand out ring-buffer
//! records. The only `unsafe` of the crate lives here (poll, clock_gettime).

use crate::spec;
use crate::AgentError;
use aya::maps::{Array, MapData, PerCpuArray, RingBuf};
use aya::programs::{BtfTracePoint, FEntry};
use aya::{Btf, Ebpf, EbpfLoader};
use std::os::fd::AsRawFd;

/// The compiled program (bpf/tomo.bpf.o, rebuilt by bpf/build.sh).
static OBJECT: &[u8] = aya::include_bytes_aligned!("../bpf/tomo.bpf.o");

/// (program, tracepoint) pairs, attached in this order: the lifecycle
/// tracepoints first so no process created after the syscall hooks start
/// is missed.
const PROGRAMS: &[(&str, &str)] = &[
    ("tomo_fork", "sched_process_fork"),
    ("tomo_exec", "sched_process_exec"),
    ("tomo_exit", "sched_process_exit"),
    ("tomo_sys_exit", "sys_exit"),
    ("tomo_sys_enter", "sys_enter"),
];

/// (program, kernel function): fentry hooks that name the object an
/// unlink/rmdir/rename acts on. Optional: without them (no fentry support)
/// those objects are named by path only, and the agent says so.
const FENTRIES: &[(&str, &str)] = &[
    ("tomo_vfs_unlink", "vfs_unlink"),
    ("tomo_vfs_rmdir", "vfs_rmdir"),
    ("tomo_vfs_rename", "vfs_rename"),
];

pub struct Kernel {
    // Keeps the programs attached (links are dropped with it).
    _bpf: Ebpf,
    ring: RingBuf<MapData>,
    drops: PerCpuArray<MapData, u64>,
    /// Optional hooks that could not be attached, with the reason.
    pub degraded: Vec<String>,
}

fn load_err(what: &str, e: impl std::fmt::Display) -> AgentError {
    // A verifier rejection carries the whole verifier log: keep its end,
    // which says what was wrong.
    let msg = e.to_string();
    let lines: Vec<&str> = msg.lines().collect();
    let msg = if lines.len() > 30 {
        format!("{} […] {}", lines[0], lines[lines.len() - 25..].join("\n"))
    } else {
        msg
    };
    AgentError::Load(format!("{what}: {msg}"))
}

impl Kernel {
    /// `target_netns`: the inode of the only network namespace whose tasks
    /// are recorded, 0 for all.
    pub fn load(agent_tgid: u32, target_netns: u32) -> Result<Kernel, AgentError> {
        let btf = Btf::from_sys_fs().map_err(|e| load_err("reading /sys/kernel/btf/vmlinux", e))?;
        let mut bpf = EbpfLoader::new()
            .btf(Some(&btf))
            .override_global("agent_tgid", &agent_tgid, true)
            .override_global("target_netns", &target_netns, true)
            .load(OBJECT)
            .map_err(|e| load_err("loading the BPF object", e))?;
        {
            let map = bpf
                .map_mut("specs")
                .ok_or_else(|| load_err("specs", "map missing"))?;
            let mut specs: Array<&mut MapData, [u8; 16]> =
                Array::try_from(map).map_err(|e| load_err("specs", e))?;
            for nr in tomo_capture_ptrace::traced_numbers() {
                let Some(call) = tomo_capture_ptrace::call_of(nr) else {
                    continue;
                };
                if let (Some(sp), Ok(n)) = (spec::spec_of(call), u32::try_from(nr)) {
                    if n < 512 {
                        specs
                            .set(n, sp.bytes(), 0)
                            .map_err(|e| load_err("filling specs", e))?;
                    }
                }
            }
        }
        for (name, tp) in PROGRAMS {
            let prog: &mut BtfTracePoint = bpf
                .program_mut(name)
                .ok_or_else(|| load_err(name, "program missing"))?
                .try_into()
                .map_err(|e| load_err(name, e))?;
            let t0 = std::time::Instant::now();
            prog.load(tp, &btf).map_err(|e| load_err(name, e))?;
            let t1 = std::time::Instant::now();
            prog.attach().map_err(|e| load_err(name, e))?;
            tracing::debug!(
                program = name,
                load_ms = (t1 - t0).as_millis() as u64,
                attach_ms = t1.elapsed().as_millis() as u64,
                "attached"
            );
        }
        let mut degraded = Vec::new();
        for (name, func) in FENTRIES {
            let res = (|| -> Result<(), String> {
                let prog: &mut FEntry = bpf
                    .program_mut(name)
                    .ok_or("program missing")?
                    .try_into()
                    .map_err(|e: aya::programs::ProgramError| e.to_string())?;
                prog.load(func, &btf).map_err(|e| e.to_string())?;
                prog.attach().map_err(|e| e.to_string())?;
                Ok(())
            })();
            if let Err(e) = res {
                let first = e.lines().next().unwrap_or_default();
                let first = first.split(". Verifier output").next().unwrap_or(first);
                degraded.push(format!(
                    "fentry/{func} not attached ({first}): the object it removes or renames is the one last seen opened or created under that name"
                ));
            }
        }
        let ring = RingBuf::try_from(
            bpf.take_map("events")
                .ok_or_else(|| load_err("events", "map missing"))?,
        )
        .map_err(|e| load_err("events", e))?;
        let drops = PerCpuArray::try_from(
            bpf.take_map("drops")
                .ok_or_else(|| load_err("drops", "map missing"))?,
        )
        .map_err(|e| load_err("drops", e))?;
        Ok(Kernel {
            _bpf: bpf,
            ring,
            drops,
            degraded,
        })
    }

    /// Pass every available record to `f`; returns how many there were.
    pub fn drain(&mut self, f: &mut dyn FnMut(&[u8])) -> usize {
        let mut n = 0;
        while let Some(item) = self.ring.next() {
            f(&item);
            n += 1;
        }
        n
    }

    /// Wait up to `ms` for the ring buffer to have data.
    pub fn wait(&self, ms: i32) {
        let mut pfd = libc::pollfd {
            fd: self.ring.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, the count says so; the fd is owned by self.ring.
        unsafe {
            libc::poll(&mut pfd, 1, ms);
        }
    }

    /// Records the kernel side could not put into the ring buffer, so far.
    pub fn drops(&self) -> u64 {
        self.drops.get(&0, 0).map(|v| v.iter().sum()).unwrap_or(0)
    }
}

/// `CLOCK_REALTIME - CLOCK_BOOTTIME` now, in ns: turns the program's
/// boot-time stamps into wall-clock time.
pub fn boot_to_wall_offset() -> i128 {
    let get = |clock| {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: ts is a valid, writable timespec.
        unsafe {
            libc::clock_gettime(clock, &mut ts);
        }
        ts.tv_sec as i128 * 1_000_000_000 + ts.tv_nsec as i128
    };
    get(libc::CLOCK_REALTIME) - get(libc::CLOCK_BOOTTIME)
}
