//! `tomo-bench capture`: what system-wide capture costs (issue #3).
//!
//! The same two workloads as `tomo-bench record` (a syscall-heavy micro
//! program, and a build: by default `make -j2` of the real Lua 5.4 sources)
//! are timed natively and with each capture running: Tomo's eBPF agent,
//! auditd with rules for the same system calls, a bpftrace script that prints
//! one JSON line per event (the DTrace-style capture CADETS used), and the
//! ptrace recorder. The system-wide captures run as daemons next to the
//! workload, so the added wall time of the workload is the cost a production
//! host would pay; their own CPU is reported too.
//!
//! A second phase drives a paced generator at rising event rates under the
//! eBPF agent and reports the highest rate it kept with zero loss.

use super::{
    find_tomo, human_bytes, machine, median_f, median_u, need_tool, pct, remove_any, run_once,
    size_of, tail, workloads, Mode, Prepared, Run, Scratch,
};
use anyhow::{bail, Context, Result};
use clap::ValueEnum;
use serde_json::{json, Value};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use workloads::MicroParams;

/// The calls every capture is asked for: the ones Tomo's audit converter
/// maps (the same list as the real-auditd test), so no capture does more
/// work than another. Names as auditctl knows them.
const AUDIT_SYSCALLS: &str = "clone,clone3,fork,vfork,execve,execveat,exit_group,kill,tgkill,\
open,openat,openat2,creat,rename,renameat,renameat2,link,linkat,symlink,symlinkat,\
unlink,unlinkat,rmdir,mkdir,mkdirat,truncate,ftruncate,chmod,fchmodat,chown,fchownat,chdir,\
close,dup,dup2,dup3,fcntl,pipe,pipe2,lseek,mmap,read,pread,readv,write,pwrite,writev,\
sendfile,splice,copy_file_range,socket,socketpair,bind,listen,connect,accept,accept4";

const LUA_URL: &str = "http://deb.debian.org/debian/pool/main/l/lua5.4/lua5.4_5.4.4.orig.tar.gz";
const LUA_SHA256: &str = "164c7849653b80ae67bec4b7473b884bf5cc8d2dca05653475ec2ed27b9ebf61";
const LUA_DIR: &str = "lua-5.4.4";

#[derive(clap::Args)]
pub struct CaptureArgs {
    /// Timed repetitions of every (workload, mode) pair.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    reps: u32,
    /// Modes to run; native is always included, it is the baseline.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "native,ebpf,auditd,bpftrace,ptrace"
    )]
    modes: Vec<CMode>,
    /// Workloads to run.
    #[arg(long, value_delimiter = ',', default_value = "micro,build")]
    workloads: Vec<CWorkload>,
    /// The build: `lua` (make -j of the Lua 5.4.4 sources, fetched once from
    /// Debian's archive into ~/.cache/tomo-bench and checked by SHA-256), or
    /// `synthetic` (the generated project of `tomo-bench record`).
    #[arg(long, value_enum, default_value = "lua")]
    build: BuildSrc,
    /// Parallel jobs of the build.
    #[arg(long, default_value_t = 2)]
    jobs: u32,
    /// The tomo binary (default: target/release/tomo).
    #[arg(long)]
    tomo: Option<PathBuf>,
    /// Where to create the scratch directory (default: the system temp dir).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Keep the scratch directory (recordings, audit log, bpftrace output).
    #[arg(long)]
    keep: bool,
    /// Micro workload: file iterations.
    #[arg(long, default_value_t = 50_000)]
    iters: u64,
    /// Micro workload: sequential child processes.
    #[arg(long, default_value_t = 4)]
    procs: u64,
    /// Micro workload: fork+exec of `true` at the end.
    #[arg(long, default_value_t = 20)]
    execs: u64,
    /// Rate phase: target event rates (events/s) to try in order, under the
    /// eBPF agent; it stops at the first rate with loss. Empty: skip.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "50000,100000,200000,400000,800000"
    )]
    rates: Vec<u64>,
    /// Skip the rate phase.
    #[arg(long)]
    no_rate: bool,
    /// Rate phase: seconds each rate is sustained.
    #[arg(long, default_value_t = 10.0)]
    rate_secs: f64,
    /// Before each run, wait up to this many seconds for an idle machine.
    #[arg(long, default_value_t = 120)]
    wait_idle: u64,
    /// Re-run a disturbed run this many times at most.
    #[arg(long, default_value_t = 2)]
    retries: u32,
    /// Print the results as JSON on stdout instead of the tables.
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, ValueEnum)]
enum CMode {
    Native,
    Ebpf,
    Auditd,
    Bpftrace,
    Ptrace,
}

impl CMode {
    fn name(self) -> &'static str {
        match self {
            CMode::Native => "native",
            CMode::Ebpf => "ebpf",
            CMode::Auditd => "auditd",
            CMode::Bpftrace => "bpftrace",
            CMode::Ptrace => "ptrace",
        }
    }
    fn label(self) -> &'static str {
        match self {
            CMode::Native => "native",
            CMode::Ebpf => "tomo agent (eBPF)",
            CMode::Auditd => "auditd",
            CMode::Bpftrace => "bpftrace JSON",
            CMode::Ptrace => "tomo record (ptrace)",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, ValueEnum)]
enum CWorkload {
    Micro,
    Build,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, ValueEnum)]
enum BuildSrc {
    Lua,
    Synthetic,
}

/// What a capture reported about one run.
#[derive(Default, Clone)]
struct Captured {
    events: Option<u64>,
    lost: Option<u64>,
    bytes: Option<u64>,
    /// CPU seconds of the capture's own processes (and kernel threads, for
    /// audit) during the timed window.
    daemon_cpu: f64,
}

struct CRun {
    run: Run,
    cap: Captured,
}

pub fn run(mut a: CaptureArgs) -> Result<()> {
    if a.no_rate {
        a.rates.clear();
    }
    let mut modes = vec![CMode::Native];
    for m in &a.modes {
        if !modes.contains(m) {
            modes.push(*m);
        }
    }
    let mut wls: Vec<CWorkload> = Vec::new();
    for w in &a.workloads {
        if !wls.contains(w) {
            wls.push(*w);
        }
    }
    if wls.is_empty() && a.rates.is_empty() {
        bail!("nothing to do: --workloads and --rates are both empty");
    }
    if !is_root() {
        bail!("system-wide capture needs root (eBPF, audit, bpftrace); run tomo-bench capture as root");
    }
    need_tool("gcc", &["--version"], "workloads are compiled with gcc")?;
    need_tool("make", &["--version"], "the build workload runs make")?;
    if modes.contains(&CMode::Auditd) {
        need_tool("auditctl", &["-v"], "the auditd mode needs auditd and auditctl (apt-get install auditd), or leave it out with --modes")?;
        let pid = audit_status("pid").unwrap_or(0);
        if pid != 0 {
            bail!("an audit daemon (pid {pid}) already owns the kernel's audit socket; stop it first (service auditd stop), or leave auditd out with --modes");
        }
    }
    if modes.contains(&CMode::Bpftrace) {
        need_tool(
            "bpftrace",
            &["--version"],
            "the bpftrace mode needs bpftrace (apt-get install bpftrace), or leave it out with --modes",
        )?;
        ensure_tracefs()?;
    }
    let needs_tomo = modes
        .iter()
        .any(|m| matches!(m, CMode::Ebpf | CMode::Ptrace))
        || !a.rates.is_empty();
    let tomo = if needs_tomo {
        Some(find_tomo(a.tomo.as_deref())?)
    } else {
        None
    };

    let base = a.dir.clone().unwrap_or_else(std::env::temp_dir);
    let work = Scratch::create(&base, a.keep)?;
    let dir = work.path.clone();

    let micro = MicroParams {
        iters: a.iters,
        procs: a.procs,
        execs: a.execs,
    };
    let mut prepared: Vec<(CWorkload, Prepared, String)> = Vec::new();
    for w in &wls {
        match w {
            CWorkload::Micro => prepared.push((
                *w,
                Prepared::Argv(workloads::prepare_micro(&dir, micro)?),
                micro.describe(),
            )),
            CWorkload::Build => {
                let (p, d) = match a.build {
                    BuildSrc::Lua => {
                        let src = prepare_lua(&dir)?;
                        (
                            Prepared::Make {
                                dir: src,
                                jobs: a.jobs,
                                target: Some("linux".into()),
                            },
                            format!(
                                "`make -j{} linux` from clean of Lua 5.4.4 (src/, 33 C files, lua + luac + liblua.a, gcc -O2)",
                                a.jobs
                            ),
                        )
                    }
                    BuildSrc::Synthetic => (
                        Prepared::Make {
                            dir: workloads::prepare_build(&dir, 30)?,
                            jobs: a.jobs,
                            target: None,
                        },
                        format!(
                            "`make -j{}` from clean of a generated C project (30 modules + main.c)",
                            a.jobs
                        ),
                    ),
                };
                prepared.push((*w, p, d));
            }
        }
    }

    let machine = machine::Machine::probe(&dir, tomo.as_deref());
    let load_start = machine::loadavg();
    for (w, p, _) in &prepared {
        eprintln!("[warm-up] {}", wname(*w));
        run_once(p, Mode::Native, &dir, None)
            .with_context(|| format!("warm-up of the {} workload failed", wname(*w)))?;
    }

    let mut results: Vec<Vec<Vec<CRun>>> = prepared
        .iter()
        .map(|_| modes.iter().map(|_| Vec::new()).collect())
        .collect();
    let total = a.reps as usize * prepared.len() * modes.len();
    let mut n = 0;
    for rep in 0..a.reps as usize {
        for (wi, (w, p, _)) in prepared.iter().enumerate() {
            for k in 0..modes.len() {
                let mi = (k + rep) % modes.len();
                let m = modes[mi];
                n += 1;
                let mut attempt = 0;
                let r = loop {
                    attempt += 1;
                    if a.wait_idle > 0 {
                        machine::wait_idle(a.wait_idle as f64);
                    }
                    let r = one(p, m, &dir, tomo.as_deref()).with_context(|| {
                        format!("{} workload under {} failed", wname(*w), m.name())
                    })?;
                    let mut extra = String::new();
                    if let Some(e) = r.cap.events {
                        extra += &format!(", {e} events");
                    }
                    if let Some(l) = r.cap.lost {
                        extra += &format!(", {l} lost");
                    }
                    if let Some(b) = r.cap.bytes {
                        extra += &format!(", {}", human_bytes(b));
                    }
                    if r.cap.daemon_cpu > 0.0 {
                        extra += &format!(", capture CPU {:.2} s", r.cap.daemon_cpu);
                    }
                    extra += &format!(", others {:.2} CPU s", r.run.foreign_cpu);
                    if r.run.disturbed() {
                        extra += ", WARNING: machine busy during this run";
                    }
                    eprintln!(
                        "[{n:>3}/{total}] rep {}/{} {:<5} {:<8} {:>8.3} s{extra}",
                        rep + 1,
                        a.reps,
                        wname(*w),
                        m.name(),
                        r.run.secs
                    );
                    if !r.run.disturbed() || attempt > a.retries {
                        break r;
                    }
                    eprintln!(
                        "      (retrying: attempt {} of {})",
                        attempt + 1,
                        a.retries + 1
                    );
                };
                results[wi][mi].push(r);
            }
        }
    }

    let rate = if a.rates.is_empty() {
        None
    } else {
        let t = tomo.as_deref().context("the rate phase needs tomo")?;
        Some(rate_phase(&dir, t, &a.rates, a.rate_secs, a.wait_idle)?)
    };
    let load_end = machine::loadavg();
    let disturbed = results
        .iter()
        .flatten()
        .flatten()
        .filter(|r| r.run.disturbed())
        .count();

    // Summaries.
    let mut wl_json = Vec::new();
    let mut tables = String::new();
    for (wi, (w, _, desc)) in prepared.iter().enumerate() {
        let med = |mi: usize| {
            median_f(
                &results[wi][mi]
                    .iter()
                    .map(|r| r.run.secs)
                    .collect::<Vec<_>>(),
            )
        };
        let native = med(0);
        let added = |m: CMode| modes.iter().position(|x| *x == m).map(|i| med(i) - native);
        let mut mj = serde_json::Map::new();
        tables += &format!("\n{}: {desc}\n\n", wname(*w));
        tables += "| mode | median s | added | events | lost | capture CPU s | output |\n|---|---|---|---|---|---|---|\n";
        for (mi, m) in modes.iter().enumerate() {
            let runs = &results[wi][mi];
            let s = med(mi);
            let events = median_u(runs.iter().filter_map(|r| r.cap.events).collect());
            let lost = runs.iter().filter_map(|r| r.cap.lost).max();
            let bytes = median_u(runs.iter().filter_map(|r| r.cap.bytes).collect());
            let dcpu = median_f(&runs.iter().map(|r| r.cap.daemon_cpu).collect::<Vec<_>>());
            mj.insert(
                m.name().into(),
                json!({
                    "runs_s": runs.iter().map(|r| r.run.secs).collect::<Vec<_>>(),
                    "median_s": s, "added_s": s - native, "overhead_pct": pct(s, native),
                    "events_median": events, "lost_max": lost, "output_bytes_median": bytes,
                    "capture_cpu_s_median": dcpu,
                    "workload_cpu_user_s_median": median_f(&runs.iter().map(|r| r.run.cpu.0).collect::<Vec<_>>()),
                    "workload_cpu_sys_s_median": median_f(&runs.iter().map(|r| r.run.cpu.1).collect::<Vec<_>>()),
                }),
            );
            tables += &format!(
                "| {} | {:.3} | {} | {} | {} | {} | {} |\n",
                m.label(),
                s,
                if *m == CMode::Native {
                    "—".to_string()
                } else {
                    format!("{:+.1} %", pct(s, native))
                },
                events.map_or("—".into(), |e| e.to_string()),
                lost.map_or("—".into(), |e| e.to_string()),
                if *m == CMode::Native {
                    "—".into()
                } else {
                    format!("{dcpu:.2}")
                },
                bytes.map_or("—".into(), human_bytes),
            );
        }
        let ratio = |x: CMode, y: CMode| match (added(x), added(y)) {
            (Some(a), Some(b)) if b > 0.0 => Some(a / b),
            _ => None,
        };
        let ebpf_pct = added(CMode::Ebpf).map(|x| x / native * 100.0);
        let r_auditd = ratio(CMode::Ebpf, CMode::Auditd);
        let r_bpftrace = ratio(CMode::Ebpf, CMode::Bpftrace);
        let r_ptrace = ratio(CMode::Ebpf, CMode::Ptrace);
        tables += "\n";
        if let Some(p) = ebpf_pct {
            tables += &format!("eBPF agent added time: {p:+.1} % of native");
            if *w == CWorkload::Build {
                tables += &format!(
                    " (goal ≤ 5 %: {})",
                    if p <= 5.0 { "met" } else { "NOT met" }
                );
            }
            tables += "\n";
        }
        if let Some(r) = r_auditd {
            tables += &format!(
                "eBPF agent added / auditd added: {r:.2} (goal < 0.33: {})\n",
                if r < 1.0 / 3.0 { "met" } else { "NOT met" }
            );
        }
        if let Some(r) = r_bpftrace {
            tables += &format!("eBPF agent added / bpftrace added: {r:.2}\n");
        }
        if let Some(r) = r_ptrace {
            tables += &format!("eBPF agent added / ptrace recorder added: {r:.2}\n");
        }
        wl_json.push(json!({
            "workload": wname(*w), "description": desc, "modes": mj,
            "ebpf_overhead_pct": ebpf_pct,
            "ratio_ebpf_added_over_auditd_added": r_auditd,
            "ratio_ebpf_added_over_bpftrace_added": r_bpftrace,
            "ratio_ebpf_added_over_ptrace_added": r_ptrace,
        }));
    }

    if a.json {
        let j = json!({
            "benchmark": "system-wide capture overhead and loss (issue #3)",
            "reps": a.reps, "machine": machine.json(),
            "load": {"loadavg_1m_start": load_start, "loadavg_1m_end": load_end, "runs_disturbed": disturbed, "runs": total},
            "workloads": wl_json,
            "rate": rate.as_ref().map(|r| r.json()),
        });
        println!("{}", serde_json::to_string_pretty(&j)?);
        return Ok(());
    }
    println!("Machine: {}", machine.one_line());
    for (k, v) in &machine.tools {
        println!("{k}: {v}");
    }
    println!(
        "Load: 1-min loadavg {load_start:.2} at start, {load_end:.2} at end; {disturbed} of {total} runs disturbed"
    );
    println!(
        "Repetitions: {} per workload and mode, modes interleaved; median wall seconds of the workload while the capture runs",
        a.reps
    );
    print!("{tables}");
    if let Some(r) = &rate {
        println!();
        print!("{}", r.table());
    }
    Ok(())
}

fn wname(w: CWorkload) -> &'static str {
    match w {
        CWorkload::Micro => "micro",
        CWorkload::Build => "build",
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// One timed run of `p` under `m`, the capture started before and stopped
/// after the timed window.
fn one(p: &Prepared, m: CMode, dir: &Path, tomo: Option<&Path>) -> Result<CRun> {
    let mut daemon = match m {
        CMode::Native | CMode::Ptrace => None,
        CMode::Ebpf => Some(Daemon::ebpf(dir, tomo.context("no tomo")?)?),
        CMode::Auditd => Some(Daemon::auditd(dir)?),
        CMode::Bpftrace => Some(Daemon::bpftrace(dir)?),
    };
    let cpu0 = daemon.as_ref().map_or(0.0, |d| d.cpu());
    let mut run = match m {
        CMode::Ptrace => run_once(p, Mode::Tomo, dir, tomo)?,
        _ => run_once(p, Mode::Native, dir, None)?,
    };
    let mut cap = Captured::default();
    if let Some(d) = daemon.as_mut() {
        cap.daemon_cpu = (d.cpu() - cpu0).max(0.0);
        // The capture's CPU is part of the cost we measure, not a neighbour.
        run.foreign_cpu = (run.foreign_cpu - cap.daemon_cpu).max(0.0);
    }
    if let Some(d) = daemon {
        let c = d.stop()?;
        cap.events = c.events;
        cap.lost = c.lost;
        cap.bytes = c.bytes;
    } else if m == CMode::Ptrace {
        cap.events = run.events;
        cap.bytes = run.bytes;
        cap.lost = Some(0);
    }
    Ok(CRun { run, cap })
}

/// A system-wide capture running next to the workload. Dropping it without
/// `stop` still tears it down (rules removed, processes killed).
struct Daemon {
    kind: CMode,
    child: Option<Child>,
    out: PathBuf,
    err: PathBuf,
    /// Extra pids whose CPU counts as the capture's (kauditd).
    extra_pids: Vec<i32>,
    audit: Option<AuditState>,
}

struct AuditState {
    enabled: i64,
    backlog_limit: i64,
    lost0: i64,
    rule: Option<Vec<String>>,
}

impl Daemon {
    fn ebpf(dir: &Path, tomo: &Path) -> Result<Daemon> {
        Daemon::ebpf_with(dir, tomo, &[])
    }

    fn ebpf_with(dir: &Path, tomo: &Path, extra: &[String]) -> Result<Daemon> {
        let out = dir.join("agent.tomo");
        let err = dir.join("agent.err");
        let ready = dir.join("agent.ready");
        remove_any(&out)?;
        remove_any(&ready)?;
        let child = Command::new(tomo)
            .args([
                "agent",
                "--source",
                "ebpf",
                "--stats-every",
                "0",
                "--json",
                "-o",
            ])
            .arg(&out)
            .arg("--ready-file")
            .arg(&ready)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&err)?)
            .spawn()
            .with_context(|| format!("starting {} agent", tomo.display()))?;
        let mut d = Daemon {
            kind: CMode::Ebpf,
            child: Some(child),
            out,
            err,
            extra_pids: Vec::new(),
            audit: None,
        };
        d.wait_for(|| ready.exists(), "the eBPF agent to attach")?;
        Ok(d)
    }

    fn auditd(dir: &Path) -> Result<Daemon> {
        let conf = dir.join("auditd-conf");
        let logdir = dir.join("auditd-log");
        let plugins = dir.join("auditd-plugins");
        for d in [&logdir, &plugins] {
            fs::create_dir_all(d)?;
        }
        let log = logdir.join("audit.log");
        remove_any(&log)?;
        write_auditd_conf(&conf, &log, &plugins)?;
        let enabled = audit_status("enabled").unwrap_or(0);
        let backlog_limit = audit_status("backlog_limit").unwrap_or(64);
        let lost0 = audit_status("lost").unwrap_or(0);
        let err = dir.join("auditd.err");
        let child = Command::new("auditd")
            .arg("-n")
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&err)?)
            .spawn()
            .context("starting auditd")?;
        let pid = child.id() as i64;
        let mut d = Daemon {
            kind: CMode::Auditd,
            child: Some(child),
            out: log,
            err,
            extra_pids: kernel_thread_pids("kauditd"),
            audit: Some(AuditState {
                enabled,
                backlog_limit,
                lost0,
                rule: None,
            }),
        };
        d.wait_for(
            || audit_status("pid") == Some(pid),
            "auditd to register with the kernel",
        )?;
        // The backlog auditd's own rules would set (Debian's audit.rules: -b 8192).
        auditctl(&["-b".into(), "8192".into()])?;
        let rule: Vec<String> = [
            "always,exit",
            "-F",
            "arch=b64",
            "-S",
            AUDIT_SYSCALLS,
            "-F",
            &format!("pid!={pid}"),
            "-k",
            "tomo-bench",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let mut add = vec!["-a".to_string()];
        add.extend(rule.iter().cloned());
        auditctl(&add)?;
        if let Some(s) = d.audit.as_mut() {
            s.rule = Some(rule);
        }
        Ok(d)
    }

    fn bpftrace(dir: &Path) -> Result<Daemon> {
        let script = dir.join("capture.bt");
        let out = dir.join("bpftrace.jsonl");
        let err = dir.join("bpftrace.err");
        remove_any(&out)?;
        fs::write(&script, bpftrace_script()?)?;
        let child = Command::new("bpftrace")
            .arg("-B")
            .arg("full")
            .arg("-o")
            .arg(&out)
            .arg(&script)
            .arg(std::process::id().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&err)?)
            .spawn()
            .context("starting bpftrace")?;
        let mut d = Daemon {
            kind: CMode::Bpftrace,
            child: Some(child),
            out: out.clone(),
            err,
            extra_pids: Vec::new(),
            audit: None,
        };
        // BEGIN prints one line once every probe is attached.
        d.wait_for(
            || fs::metadata(&out).is_ok_and(|m| m.len() > 0),
            "bpftrace to compile and attach its probes",
        )?;
        Ok(d)
    }

    fn wait_for(&mut self, mut cond: impl FnMut() -> bool, what: &str) -> Result<()> {
        let t0 = Instant::now();
        while !cond() {
            if let Some(c) = self.child.as_mut() {
                if let Some(st) = c.try_wait()? {
                    self.child = None;
                    bail!(
                        "waiting for {what}: it exited with {st}:\n{}",
                        tail(&fs::read_to_string(&self.err).unwrap_or_default(), 15)
                    );
                }
            }
            if t0.elapsed() > Duration::from_secs(60) {
                bail!(
                    "waiting for {what}: not ready after 60 s:\n{}",
                    tail(&fs::read_to_string(&self.err).unwrap_or_default(), 15)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// CPU seconds used so far by the capture's processes.
    fn cpu(&self) -> f64 {
        let mut pids = self.extra_pids.clone();
        if let Some(c) = &self.child {
            pids.push(c.id() as i32);
        }
        pids.iter().map(|p| proc_cpu(*p)).sum()
    }

    fn stop(mut self) -> Result<Captured> {
        let mut c = Captured::default();
        if let Some(s) = self.audit.as_mut() {
            // Rules off first so the daemon's last writes are not audited.
            if let Some(rule) = s.rule.take() {
                let mut del = vec!["-d".to_string()];
                del.extend(rule);
                auditctl(&del)?;
            }
            c.lost = audit_status("lost").map(|l| (l - s.lost0).max(0) as u64);
        }
        if let Some(mut child) = self.child.take() {
            // auditd shuts down (flushing its log) on SIGTERM; the agent and
            // bpftrace print their summaries on SIGINT.
            let sig = if self.kind == CMode::Auditd {
                libc::SIGTERM
            } else {
                libc::SIGINT
            };
            // SAFETY: kill(2) with a pid we spawned and have not reaped yet.
            unsafe { libc::kill(child.id() as i32, sig) };
            let t0 = Instant::now();
            loop {
                if child.try_wait()?.is_some() {
                    break;
                }
                if t0.elapsed() > Duration::from_secs(120) {
                    let _ = child.kill();
                    let _ = child.wait();
                    bail!("{} did not stop within 120 s of SIGINT", self.kind.name());
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let err = fs::read_to_string(&self.err).unwrap_or_default();
        match self.kind {
            CMode::Ebpf => {
                let j = err
                    .lines()
                    .rev()
                    .find_map(|l| serde_json::from_str::<Value>(l).ok())
                    .with_context(|| {
                        format!("no JSON summary from the agent:\n{}", tail(&err, 10))
                    })?;
                c.events = j.get("events").and_then(Value::as_u64);
                c.lost = j.get("lost_records").and_then(Value::as_u64);
                c.bytes = Some(size_of(&self.out)?);
            }
            CMode::Auditd => {
                let text = fs::read(&self.out).unwrap_or_default();
                c.events = Some(count_prefixed(&text, b"type=SYSCALL "));
                c.bytes = Some(text.len() as u64);
            }
            CMode::Bpftrace => {
                let text = fs::read(&self.out).unwrap_or_default();
                // Event lines only: not the BEGIN line ({"ready":1}) nor
                // bpftrace's "Attaching N probes" banner.
                c.events = Some(count_prefixed(&text, b"{\"ts\""));
                c.bytes = Some(text.len() as u64);
                // bpftrace warns "Lost N events" when its perf buffers overflow.
                let lost: u64 = err
                    .lines()
                    .filter_map(|l| {
                        let i = l.find("Lost ")?;
                        l[i + 5..].split_whitespace().next()?.parse::<u64>().ok()
                    })
                    .sum();
                c.lost = Some(lost);
            }
            _ => {}
        }
        Ok(c)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(s) = self.audit.as_mut() {
            if let Some(rule) = s.rule.take() {
                let mut del = vec!["-d".to_string()];
                del.extend(rule);
                let _ = auditctl(&del);
            }
        }
        if let Some(mut c) = self.child.take() {
            // SAFETY: kill(2) with a pid we spawned and have not reaped yet.
            unsafe { libc::kill(c.id() as i32, libc::SIGINT) };
            let t0 = Instant::now();
            while t0.elapsed() < Duration::from_secs(10) {
                if c.try_wait().ok().flatten().is_some() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        if let Some(s) = &self.audit {
            let _ = auditctl(&["-b".into(), s.backlog_limit.to_string()]);
            let _ = auditctl(&["-e".into(), s.enabled.to_string()]);
        }
    }
}

fn count_prefixed(text: &[u8], prefix: &[u8]) -> u64 {
    text.split(|b| *b == b'\n')
        .filter(|l| l.starts_with(prefix))
        .count() as u64
}

fn auditctl(args: &[String]) -> Result<()> {
    let out = Command::new("auditctl")
        .args(args)
        .output()
        .context("running auditctl")?;
    if !out.status.success() {
        bail!(
            "auditctl {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

fn audit_status(key: &str) -> Option<i64> {
    let out = Command::new("auditctl").arg("-s").output().ok()?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key} ")))
        .and_then(|v| v.trim().parse().ok())
}

fn write_auditd_conf(conf: &Path, log: &Path, plugins: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    // Debian's defaults where they matter for cost (RAW format is what most
    // hosts write; INCREMENTAL_ASYNC flushing every 50 records), with space
    // actions off so a full disk cannot stop the benchmark host.
    let text = format!(
        "local_events = yes\nwrite_logs = yes\nlog_file = {}\nlog_format = RAW\n\
flush = INCREMENTAL_ASYNC\nfreq = 50\nmax_log_file = 1000\nnum_logs = 2\npriority_boost = 4\n\
name_format = NONE\nmax_log_file_action = ROTATE\nspace_left = 2\nspace_left_action = IGNORE\n\
admin_space_left = 1\nadmin_space_left_action = IGNORE\ndisk_full_action = IGNORE\n\
disk_error_action = IGNORE\nplugin_dir = {}\nq_depth = 2000\noverflow_action = IGNORE\n\
end_of_event_timeout = 2\n",
        log.display(),
        plugins.display()
    );
    fs::create_dir_all(conf)?;
    fs::set_permissions(conf, fs::Permissions::from_mode(0o700))?;
    let f = conf.join("auditd.conf");
    fs::write(&f, text).with_context(|| format!("writing {}", f.display()))?;
    fs::set_permissions(&f, fs::Permissions::from_mode(0o600))?;
    Ok(())
}

/// Pids of kernel threads with this name (e.g. kauditd, which formats and
/// queues audit records: part of audit's cost).
fn kernel_thread_pids(comm: &str) -> Vec<i32> {
    let Ok(rd) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == comm)
        })
        .collect()
}

/// utime + stime of a process (all its threads), in seconds.
fn proc_cpu(pid: i32) -> f64 {
    let Ok(s) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // The command name may contain spaces: fields start after the last ')'.
    let Some(rest) = s.rsplit_once(')').map(|x| x.1) else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest[0] is field 3 (state); utime and stime are fields 14 and 15.
    let t = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (t(11) + t(12)) / 100.0
}

fn ensure_tracefs() -> Result<()> {
    if Path::new("/sys/kernel/tracing/events/syscalls").is_dir() {
        return Ok(());
    }
    let st = Command::new("mount")
        .args(["-t", "tracefs", "nodev", "/sys/kernel/tracing"])
        .status()
        .context("running mount")?;
    if !st.success() || !Path::new("/sys/kernel/tracing/events/syscalls").is_dir() {
        bail!("bpftrace needs tracefs with syscall tracepoints at /sys/kernel/tracing (mount -t tracefs nodev /sys/kernel/tracing failed)");
    }
    eprintln!("tomo-bench: mounted tracefs at /sys/kernel/tracing for bpftrace");
    Ok(())
}

/// A bpftrace program in the style of CADETS' DTrace capture: one JSON line
/// per system call of the audited set, with time, process, call, return
/// value, and the path or descriptor argument where the call has one. Paths
/// and descriptors are saved at entry and printed at exit, as DTrace scripts
/// do with thread-local variables.
fn bpftrace_script() -> Result<String> {
    let names: Vec<String> = AUDIT_SYSCALLS
        .split(',')
        .map(|n| match n {
            "pread" => "pread64".to_string(),
            "pwrite" => "pwrite64".to_string(),
            n => n.to_string(),
        })
        .filter(|n| {
            Path::new(&format!("/sys/kernel/tracing/events/syscalls/sys_exit_{n}")).is_dir()
        })
        .collect();
    if names.is_empty() {
        bail!("no syscall tracepoints under /sys/kernel/tracing/events/syscalls");
    }
    let arg_of = |n: &str, field: &str| -> bool {
        fs::read_to_string(format!(
            "/sys/kernel/tracing/events/syscalls/sys_enter_{n}/format"
        ))
        .is_ok_and(|f| f.contains(&format!(" {field};")))
    };
    let mut s = String::from("BEGIN { printf(\"{\\\"ready\\\":1}\\n\"); }\n");
    let path_field = |n: &str| {
        ["filename", "pathname", "oldname"].into_iter().find(|f| {
            arg_of(n, &format!("const char * {f}")) || arg_of(n, &format!("const char *{f}"))
        })
    };
    let (mut with_path, mut with_fd, mut plain) = (Vec::new(), Vec::new(), Vec::new());
    for n in &names {
        if let Some(f) = path_field(n) {
            s += &format!(
                "tracepoint:syscalls:sys_enter_{n} /pid != $1 && comm != \"bpftrace\"/ {{ @path[tid] = str(args->{f}); }}\n"
            );
            with_path.push(n.clone());
        } else if arg_of(n, "unsigned int fd")
            || arg_of(n, "int fd")
            || arg_of(n, "unsigned long fd")
        {
            s += &format!(
                "tracepoint:syscalls:sys_enter_{n} /pid != $1 && comm != \"bpftrace\"/ {{ @fd[tid] = (int64)args->fd; }}\n"
            );
            with_fd.push(n.clone());
        } else {
            plain.push(n.clone());
        }
    }
    let probes = |v: &[String]| {
        v.iter()
            .map(|n| format!("tracepoint:syscalls:sys_exit_{n}"))
            .collect::<Vec<_>>()
            .join(",\n")
    };
    let head = "printf(\"{\\\"ts\\\":%llu,\\\"pid\\\":%d,\\\"tid\\\":%d,\\\"uid\\\":%d,\\\"comm\\\":\\\"%s\\\",\\\"call\\\":\\\"%s\\\",\\\"ret\\\":%d";
    let common = "nsecs, pid, tid, uid, comm, probe, args->ret";
    if !with_path.is_empty() {
        s += &format!(
            "{} /pid != $1 && comm != \"bpftrace\"/ {{ {head},\\\"path\\\":\\\"%s\\\"}}\\n\", {common}, @path[tid]); delete(@path[tid]); }}\n",
            probes(&with_path)
        );
    }
    if !with_fd.is_empty() {
        s += &format!(
            "{} /pid != $1 && comm != \"bpftrace\"/ {{ {head},\\\"fd\\\":%d}}\\n\", {common}, @fd[tid]); delete(@fd[tid]); }}\n",
            probes(&with_fd)
        );
    }
    if !plain.is_empty() {
        s += &format!(
            "{} /pid != $1 && comm != \"bpftrace\"/ {{ {head}}}\\n\", {common}); }}\n",
            probes(&plain)
        );
    }
    Ok(s)
}

/// Unpacks the Lua sources into `dir` (downloading the tarball into the cache
/// once) and returns its `src` directory.
fn prepare_lua(dir: &Path) -> Result<PathBuf> {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from("/tmp"))
        .join("tomo-bench");
    fs::create_dir_all(&cache).with_context(|| format!("creating {}", cache.display()))?;
    let tgz = cache.join("lua5.4_5.4.4.orig.tar.gz");
    if !tgz.exists() || sha256(&tgz)? != LUA_SHA256 {
        eprintln!("tomo-bench: fetching {LUA_URL}");
        let part = cache.join("lua.part");
        let st = Command::new("curl")
            .args(["-sSfL", "-o"])
            .arg(&part)
            .arg(LUA_URL)
            .status()
            .context("running curl (apt-get install curl), or use --build synthetic")?;
        if !st.success() {
            bail!("could not download {LUA_URL}; use --build synthetic on a machine without the Debian archive");
        }
        let got = sha256(&part)?;
        if got != LUA_SHA256 {
            bail!("{LUA_URL}: SHA-256 {got}, expected {LUA_SHA256}");
        }
        fs::rename(&part, &tgz)?;
    }
    let st = Command::new("tar")
        .arg("xzf")
        .arg(&tgz)
        .arg("-C")
        .arg(dir)
        .status()
        .context("running tar")?;
    if !st.success() {
        bail!("tar could not unpack {}", tgz.display());
    }
    Ok(dir.join(LUA_DIR).join("src"))
}

fn sha256(p: &Path) -> Result<String> {
    let out = Command::new("sha256sum")
        .arg(p)
        .output()
        .context("running sha256sum")?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string())
}

/// A paced event generator: RATE pread(2) calls of one byte per second, in
/// 1 ms slices, for SECS seconds. Each call is one event for every capture.
const RATEGEN_C: &str = r#"
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }
int main(int argc, char **argv) {
    if (argc != 4) { fprintf(stderr, "usage: rategen FILE RATE SECS\n"); return 1; }
    int fd = open(argv[1], O_RDONLY);
    if (fd < 0) { perror("open"); return 2; }
    double rate = atof(argv[2]), secs = atof(argv[3]);
    long total = (long)(rate * secs), done = 0;
    char c;
    double t0 = now();
    while (done < total) {
        /* Catch up to where the clock says we should be, then sleep a slice. */
        long due = (long)((now() - t0) * rate) + (long)(rate / 1000) + 1;
        if (due > total) due = total;
        while (done < due) { if (pread(fd, &c, 1, 0) != 1) { perror("pread"); return 3; } done++; }
        double ahead = (double)done / rate - (now() - t0);
        if (ahead > 0) { struct timespec s = { 0, (long)(ahead * 1e9) }; nanosleep(&s, 0); }
    }
    double el = now() - t0;
    printf("%ld %.6f\n", done, el);
    return 0;
}
"#;

struct RateStep {
    target: u64,
    calls: u64,
    secs: f64,
    events: u64,
    lost: u64,
    agent_cpu: f64,
}

impl RateStep {
    fn achieved(&self) -> f64 {
        self.calls as f64 / self.secs
    }
    fn held(&self) -> bool {
        self.achieved() >= 0.99 * self.target as f64
    }
}

struct RateResult {
    steps: Vec<RateStep>,
    secs: f64,
}

impl RateResult {
    /// The highest target rate that was held (within 1 %: the pacing loop
    /// sleeps in slices) with every call recorded and nothing dropped.
    fn best(&self) -> Option<&RateStep> {
        self.steps
            .iter()
            .filter(|s| s.lost == 0 && s.events >= s.calls && s.held())
            .max_by_key(|s| s.target)
    }
    fn json(&self) -> Value {
        json!({
            "seconds_per_rate": self.secs,
            "steps": self.steps.iter().map(|s| json!({
                "target_per_s": s.target, "calls": s.calls, "achieved_per_s": s.calls as f64 / s.secs,
                "generator_reads_recorded": s.events, "lost_records": s.lost, "agent_cpu_s": s.agent_cpu,
            })).collect::<Vec<_>>(),
            "highest_zero_loss_target_per_s": self.best().map(|s| s.target),
            "highest_zero_loss_achieved_per_s": self.best().map(|s| s.achieved()),
        })
    }
    fn table(&self) -> String {
        let mut t = format!(
            "Rate phase: eBPF agent running system-wide, a paced generator making one-byte pread(2) calls for {:.0} s per rate\n\n\
             | target ev/s | achieved ev/s | calls | recorded | lost | agent CPU s |\n|---|---|---|---|---|---|\n",
            self.secs
        );
        for s in &self.steps {
            t += &format!(
                "| {} | {:.0} | {} | {} | {} | {:.2} |\n",
                s.target,
                s.calls as f64 / s.secs,
                s.calls,
                s.events,
                s.lost,
                s.agent_cpu
            );
        }
        match self.best() {
            Some(b) => {
                t += &format!(
                    "\nHighest sustained rate with zero loss: {} events/s (achieved {:.0}/s; goal 100 000: {})\n",
                    b.target,
                    b.achieved(),
                    if b.target >= 100_000 { "met" } else { "NOT met" }
                )
            }
            None => t += "\nNo rate was kept without loss.\n",
        }
        t
    }
}

fn rate_phase(dir: &Path, tomo: &Path, rates: &[u64], secs: f64, wait: u64) -> Result<RateResult> {
    let src = dir.join("rategen.c");
    let exe = dir.join("rategen");
    fs::write(&src, RATEGEN_C)?;
    let out = Command::new("gcc")
        .arg("-O2")
        .arg("-o")
        .arg(&exe)
        .arg(&src)
        .output()
        .context("compiling the rate generator")?;
    if !out.status.success() {
        bail!("gcc: {}", String::from_utf8_lossy(&out.stderr));
    }
    let data = dir.join("rategen.data");
    fs::write(&data, b"x")?;
    let mut steps = Vec::new();
    for &r in rates {
        if wait > 0 {
            machine::wait_idle(wait as f64);
        }
        let d = Daemon::ebpf(dir, tomo)?;
        let c0 = d.cpu();
        let child = Command::new(&exe)
            .arg(&data)
            .arg(r.to_string())
            .arg(secs.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("running the rate generator")?;
        let gen_pid = child.id();
        let out = child.wait_with_output()?;
        let agent_cpu = d.cpu() - c0;
        if !out.status.success() {
            bail!("rate generator: {}", String::from_utf8_lossy(&out.stderr));
        }
        let s = String::from_utf8_lossy(&out.stdout);
        let mut it = s.split_whitespace();
        let calls: u64 = it
            .next()
            .and_then(|v| v.parse().ok())
            .context("generator output")?;
        let el: f64 = it
            .next()
            .and_then(|v| v.parse().ok())
            .context("generator output")?;
        let cap = d.stop()?;
        let step = RateStep {
            target: r,
            calls,
            secs: el,
            events: generator_reads(&dir.join("agent.tomo"), gen_pid)?,
            lost: cap.lost.unwrap_or(0),
            agent_cpu,
        };
        eprintln!(
            "[rate] target {r}/s: achieved {:.0}/s, {} calls, {} recorded, {} lost, agent CPU {:.2} s",
            calls as f64 / el,
            calls,
            step.events,
            step.lost,
            agent_cpu
        );
        let stop = step.lost > 0 || (calls as f64 / el) < 0.9 * r as f64;
        steps.push(step);
        if stop {
            break;
        }
    }
    Ok(RateResult { steps, secs })
}

/// The generator's pread calls found in the agent's recording: the loss
/// check counts the events themselves, not only the kernel's drop counter.
fn generator_reads(rec: &Path, pid: u32) -> Result<u64> {
    let reader = tomo_log::Reader::open(rec)
        .with_context(|| format!("opening the agent's recording {}", rec.display()))?;
    let mut n = 0;
    for ev in reader {
        let ev = ev.with_context(|| format!("reading {}", rec.display()))?;
        if ev.proc.pid == pid && matches!(ev.op, tomo_event::Op::Io { .. }) {
            n += 1;
        }
    }
    Ok(n)
}

#[derive(clap::Args)]
pub struct SoakArgs {
    /// How long to run.
    #[arg(long, default_value_t = 600.0)]
    secs: f64,
    /// The agent rotates its recording at this size (passed to --rotate-bytes).
    #[arg(long, default_value = "64M")]
    rotate: String,
    /// Sample the agent's memory every this many seconds.
    #[arg(long, default_value_t = 10.0)]
    every: f64,
    /// The tomo binary (default: target/release/tomo).
    #[arg(long)]
    tomo: Option<PathBuf>,
    /// Where to create the scratch directory (default: the system temp dir).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

/// Churn: every iteration is a new process (fork) that creates a file
/// under a name never used before, writes and reads it, renames it,
/// unlinks it, and sends a line through a pipe to its parent. New pids,
/// new inodes, new names without end: what fills an agent's tables on a
/// long-running host if nothing evicts them.
const CHURN_C: &str = r#"
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: churn DIR SECS\n"); return 1; }
    double secs = atof(argv[2]);
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    long n = 0;
    char buf[256], path[4096], path2[4096];
    memset(buf, 'y', sizeof buf);
    for (;;) {
        clock_gettime(CLOCK_MONOTONIC, &t);
        if ((t.tv_sec - t0.tv_sec) + (t.tv_nsec - t0.tv_nsec) / 1e9 >= secs) break;
        int p[2];
        if (pipe(p)) { perror("pipe"); return 2; }
        pid_t pid = fork();
        if (pid < 0) { perror("fork"); return 2; }
        if (pid == 0) {
            close(p[0]);
            snprintf(path, sizeof path, "%s/f%ld", argv[1], n);
            snprintf(path2, sizeof path2, "%s/g%ld", argv[1], n);
            int fd = open(path, O_CREAT | O_WRONLY, 0644);
            if (fd < 0) _exit(3);
            if (write(fd, buf, sizeof buf) < 0) _exit(3);
            close(fd);
            fd = open(path, O_RDONLY);
            if (fd < 0 || read(fd, buf, sizeof buf) < 0) _exit(3);
            close(fd);
            if (rename(path, path2) || unlink(path2)) _exit(3);
            if (write(p[1], buf, 16) < 0) _exit(3);
            _exit(0);
        }
        close(p[1]);
        while (read(p[0], buf, sizeof buf) > 0) {}
        close(p[0]);
        int st;
        waitpid(pid, &st, 0);
        n++;
    }
    printf("%ld\n", n);
    return 0;
}
"#;

fn rss_kib(pid: u32) -> Option<u64> {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// Runs the eBPF agent with rotation for a long time under churn and
/// samples its memory: the evidence that it can run for days.
pub fn soak(a: SoakArgs) -> Result<()> {
    if !is_root() {
        bail!("the eBPF agent needs root; run tomo-bench soak as root");
    }
    let tomo = find_tomo(a.tomo.as_deref())?;
    let base = a.dir.clone().unwrap_or_else(std::env::temp_dir);
    let work = Scratch::create(&base, false)?;
    let dir = work.path.clone();
    let src = dir.join("churn.c");
    let exe = dir.join("churn");
    fs::write(&src, CHURN_C)?;
    let out = Command::new("gcc")
        .arg("-O2")
        .arg("-o")
        .arg(&exe)
        .arg(&src)
        .output()
        .context("compiling the churn program")?;
    if !out.status.success() {
        bail!("gcc: {}", String::from_utf8_lossy(&out.stderr));
    }
    let data = dir.join("churn-data");
    fs::create_dir_all(&data)?;
    let d = Daemon::ebpf_with(
        &dir,
        &tomo,
        &["--rotate-bytes".to_string(), a.rotate.clone()],
    )?;
    let agent_pid = d
        .child
        .as_ref()
        .map(|c| c.id())
        .context("agent not running")?;
    let mut churn = Command::new(&exe)
        .arg(&data)
        .arg(a.secs.to_string())
        .stdout(Stdio::piped())
        .spawn()
        .context("starting the churn program")?;
    let t0 = Instant::now();
    let mut samples: Vec<(f64, u64)> = Vec::new();
    loop {
        if let Some(k) = rss_kib(agent_pid) {
            samples.push((t0.elapsed().as_secs_f64(), k));
            eprintln!(
                "[soak] {:>6.0} s: agent RSS {} MiB",
                t0.elapsed().as_secs_f64(),
                k / 1024
            );
        }
        if churn.try_wait()?.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_secs_f64(a.every.max(0.5)));
    }
    let mut s = String::new();
    if let Some(mut o) = churn.stdout.take() {
        use std::io::Read;
        o.read_to_string(&mut s)?;
    }
    let iterations: u64 = s.trim().parse().unwrap_or(0);
    let secs = t0.elapsed().as_secs_f64();
    let cap = d.stop()?;
    let segments = fs::read_dir(dir.join("agent.tomo"))
        .map(|r| r.count())
        .unwrap_or(1);
    // The agent's recording, summed over its segments (stop() measured it).
    let bytes = cap.bytes.unwrap_or(0);
    // Memory after warm-up (first quarter) versus the end.
    let warm = samples
        .iter()
        .filter(|(t, _)| *t >= secs / 4.0)
        .map(|s| s.1)
        .next()
        .unwrap_or(0);
    let end = samples.last().map_or(0, |s| s.1);
    let max = samples.iter().map(|s| s.1).max().unwrap_or(0);
    if a.json {
        let j = json!({
            "seconds": secs, "churn_processes": iterations,
            "agent_events": cap.events, "lost_records": cap.lost,
            "segments": segments, "recording_bytes": bytes,
            "rss_kib_after_warmup": warm, "rss_kib_end": end, "rss_kib_max": max,
            "samples": samples,
        });
        println!("{}", serde_json::to_string_pretty(&j)?);
    } else {
        println!(
            "soak: {secs:.0} s, {iterations} short processes (each: new file, write, read, rename, unlink, pipe), {} events, {} lost",
            cap.events.unwrap_or(0),
            cap.lost.unwrap_or(0)
        );
        println!(
            "recording: {} in {segments} rotated segments",
            human_bytes(bytes)
        );
        println!(
            "agent RSS: {} MiB after warm-up, {} MiB at the end, {} MiB max",
            warm / 1024,
            end / 1024,
            max / 1024
        );
    }
    Ok(())
}
