//! What the numbers were measured on: a benchmark result without its machine
//! and its load conditions cannot be compared with anything.

use serde_json::{json, Value};
use std::fs;
use std::path::Path;
use std::process::Command;

pub struct Machine {
    pub cpu: String,
    pub logical_cpus: usize,
    pub mem_gib: f64,
    pub kernel: String,
    pub fs: String,
    pub tools: Vec<(String, String)>,
}

impl Machine {
    pub fn probe(work_dir: &Path, tomo: Option<&Path>) -> Machine {
        let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|l| {
                l.strip_prefix("model name")
                    .and_then(|r| r.split_once(':'))
                    .map(|(_, v)| v.trim().to_owned())
            })
            .unwrap_or_else(|| "unknown CPU".into());
        let logical_cpus = cpuinfo
            .lines()
            .filter(|l| l.starts_with("processor"))
            .count()
            .max(
                std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(1),
            );
        let mem_gib = fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| {
                m.lines()
                    .find_map(|l| l.strip_prefix("MemTotal:"))
                    .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
            })
            .map(|kib| kib / (1024.0 * 1024.0))
            .unwrap_or(0.0);
        let kernel = first_line("uname", &["-srm"]).unwrap_or_else(|| {
            fs::read_to_string("/proc/sys/kernel/osrelease")
                .map(|s| s.trim().to_owned())
                .unwrap_or_default()
        });
        let fs = mount_of(work_dir).unwrap_or_else(|| "?".into());
        let mut tools = vec![
            (
                "gcc".to_owned(),
                first_line("gcc", &["--version"]).unwrap_or_default(),
            ),
            (
                "make".to_owned(),
                first_line("make", &["--version"]).unwrap_or_default(),
            ),
            (
                "strace".to_owned(),
                first_line("strace", &["-V"]).unwrap_or_default(),
            ),
        ];
        if let Some(t) = tomo {
            let v = first_line(&t.to_string_lossy(), &["--version"]).unwrap_or_default();
            // The version number does not change while the recorder is being
            // optimized; the build time of the binary tells the runs apart.
            let built = first_line(
                "date",
                &["-u", "-r", &t.to_string_lossy(), "+%Y-%m-%dT%H:%M:%SZ"],
            )
            .unwrap_or_default();
            tools.push((
                "tomo".to_owned(),
                format!("{v} ({}, built {built})", t.display()),
            ));
            // Which source the numbers belong to, when run from the workspace.
            let ws = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
            if let Some(head) = first_line("git", &["-C", ws, "rev-parse", "--short", "HEAD"]) {
                let dirty = first_line(
                    "git",
                    &["-C", ws, "status", "--porcelain", "--untracked-files=no"],
                )
                .is_some();
                let note = if dirty { " + uncommitted changes" } else { "" };
                tools.push(("source".to_owned(), format!("git {head}{note}")));
            }
        }
        Machine {
            cpu,
            logical_cpus,
            mem_gib,
            kernel,
            fs,
            tools,
        }
    }

    pub fn one_line(&self) -> String {
        format!(
            "{}, {} logical CPUs, {:.1} GiB RAM, {}",
            self.cpu, self.logical_cpus, self.mem_gib, self.kernel
        )
    }

    pub fn json(&self) -> Value {
        json!({
            "cpu": self.cpu, "logical_cpus": self.logical_cpus, "mem_gib": self.mem_gib,
            "kernel": self.kernel, "work_dir_fs": self.fs,
            "tools": self.tools.iter().map(|(k, v)| (k.clone(), Value::from(v.clone()))).collect::<serde_json::Map<_, _>>(),
        })
    }
}

/// "fstype on mountpoint" of the mount holding `dir` (the longest mount-point
/// prefix in /proc/self/mounts); `stat -f` cannot tell ext4 from ext2.
fn mount_of(dir: &Path) -> Option<String> {
    let dir = dir.canonicalize().ok()?;
    let mounts = fs::read_to_string("/proc/self/mounts").ok()?;
    mounts
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (dev, mp, ty) = (f.next()?, f.next()?, f.next()?);
            dir.starts_with(mp)
                .then(|| (mp.len(), format!("{ty} on {mp} ({dev})")))
        })
        .max_by_key(|(n, _)| *n)
        .map(|(_, s)| s)
}

fn first_line(cmd: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(cmd).args(args).output().ok()?;
    let s = String::from_utf8_lossy(&out.stdout);
    let l = s.lines().next()?.trim();
    (!l.is_empty()).then(|| l.to_owned())
}

/// The 1-minute load average.
pub fn loadavg() -> f64 {
    fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN)
}

/// Whether some rustc is running: on this shared machine a compile next to a
/// timed run makes that run's number meaningless, so each run says if it saw one.
pub fn rustc_running() -> bool {
    let Ok(rd) = fs::read_dir("/proc") else {
        return false;
    };
    rd.flatten().any(|e| {
        e.file_name()
            .to_string_lossy()
            .bytes()
            .all(|b| b.is_ascii_digit())
            && fs::read_to_string(e.path().join("comm")).is_ok_and(|c| c.trim() == "rustc")
    })
}

/// Busy CPU seconds of the whole machine so far (all cores; from /proc/stat,
/// in USER_HZ ticks, which are 1/100 s on every Linux build that matters).
/// Iowait counts as idle: a disk wait uses no CPU that a timed run could need.
pub fn busy_cpu_secs() -> f64 {
    let Ok(s) = fs::read_to_string("/proc/stat") else {
        return 0.0;
    };
    let Some(line) = s.lines().next() else {
        return 0.0;
    };
    let v: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    if v.len() < 5 {
        return 0.0;
    }
    // user nice system idle iowait irq softirq steal ...; guest time is
    // already inside user, so stop at steal.
    let total: f64 = v.iter().take(8).sum();
    (total - v[3] - v[4]) / 100.0
}

/// Blocks until the machine looks idle (no rustc, under 15% of one core busy
/// over a second) or `max_wait_s` passes; returns the seconds waited.
pub fn wait_idle(max_wait_s: f64) -> f64 {
    let t0 = std::time::Instant::now();
    let mut said = false;
    loop {
        let b0 = busy_cpu_secs();
        std::thread::sleep(std::time::Duration::from_secs(1));
        let busy = busy_cpu_secs() - b0;
        if busy < 0.15 && !rustc_running() {
            return t0.elapsed().as_secs_f64();
        }
        if t0.elapsed().as_secs_f64() >= max_wait_s {
            eprintln!("tomo-bench: machine still busy after {max_wait_s:.0} s of waiting; measuring anyway");
            return t0.elapsed().as_secs_f64();
        }
        if !said {
            eprintln!("tomo-bench: machine busy ({busy:.2} CPU s/s, rustc: {}); waiting for it to calm down", rustc_running());
            said = true;
        }
        std::thread::sleep(std::time::Duration::from_secs(2));
    }
}
