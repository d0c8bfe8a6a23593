//! `tomo-bench`: measures what recording costs (issue #2), system-wide
//! capture (issue #3) and collecting many hosts (issue #6).
//!
//! `tomo-bench record` times two workloads natively, under `strace -f`, and
//! under `tomo record`, in the same run with the modes interleaved, so the
//! three numbers share the machine's state and can be compared.

mod capture;
mod hosts;
mod machine;
mod synth;
mod workloads;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;
use workloads::MicroParams;

#[derive(Parser)]
#[command(name = "tomo-bench", about = "Benchmarks for Tomo")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Capture overhead: native vs `strace -f` vs `tomo record` (issue #2).
    Record(RecordArgs),
    /// System-wide capture overhead and loss: native vs the eBPF agent vs
    /// auditd vs a bpftrace JSON script vs `tomo record` (issue #3).
    Capture(capture::CaptureArgs),
    /// Long run of the eBPF agent (rotating) under process/file churn,
    /// sampling its memory (issue #3: days-long, bounded memory).
    Soak(capture::SoakArgs),
    /// Many simulated hosts (synthetic agents: spool + shipper each) feeding
    /// one `tomo collect` through a Kafka-protocol broker, at rising rates:
    /// the highest rate collected without loss, and the collector's memory
    /// (issue #6).
    Hosts(hosts::HostsArgs),
}

#[derive(clap::Args)]
struct RecordArgs {
    /// Timed repetitions of every (workload, mode) pair.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    reps: u32,
    /// Modes to run; native is always included, it is the baseline.
    #[arg(long, value_delimiter = ',', default_value = "native,strace,tomo")]
    modes: Vec<Mode>,
    /// Workloads to run.
    #[arg(long, value_delimiter = ',', default_value = "micro,build")]
    workloads: Vec<Workload>,
    /// The tomo binary (default: target/release/tomo next to this program or in the workspace).
    #[arg(long)]
    tomo: Option<PathBuf>,
    /// Where to create the scratch directory (default: the system temp dir).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Keep the scratch directory (workload sources, last recordings) for inspection.
    #[arg(long)]
    keep: bool,
    /// Micro workload: file iterations. The default keeps a strace run (about
    /// 7 traced syscalls per iteration) within tens of seconds even on VMs
    /// where a ptrace stop costs ~50 us.
    #[arg(long, default_value_t = 50_000)]
    iters: u64,
    /// Micro workload: sequential child processes the iterations are split over.
    #[arg(long, default_value_t = 4)]
    procs: u64,
    /// Micro workload: fork+exec of `true` at the end.
    #[arg(long, default_value_t = 20)]
    execs: u64,
    /// Build workload: number of C modules (plus main.c).
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..1000))]
    files: u32,
    /// Before each run, wait up to this many seconds for the machine to be
    /// idle (no rustc, <15% of a core busy); 0 disables. On a shared box this
    /// is the difference between a measurement and noise.
    #[arg(long, default_value_t = 120)]
    wait_idle: u64,
    /// Re-run a timed run this many times at most when other load disturbed it.
    #[arg(long, default_value_t = 3)]
    retries: u32,
    /// Print the results as JSON on stdout instead of the table.
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, ValueEnum)]
enum Mode {
    Native,
    Strace,
    Tomo,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, ValueEnum)]
enum Workload {
    Micro,
    Build,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Native => "native",
            Mode::Strace => "strace",
            Mode::Tomo => "tomo",
        }
    }
}

impl Workload {
    fn name(self) -> &'static str {
        match self {
            Workload::Micro => "micro",
            Workload::Build => "build",
        }
    }
}

/// One timed run.
struct Run {
    secs: f64,
    /// tomo: events recorded (from `tomo record --json`).
    events: Option<u64>,
    /// tomo: recording bytes; strace: output bytes.
    bytes: Option<u64>,
    /// strace: lines written, about one per syscall or signal seen.
    lines: Option<u64>,
    rustc_seen: bool,
    /// CPU seconds the rest of the machine used during the run (machine busy
    /// time minus our own process tree): other users' load, but also kernel
    /// threads doing our writeback, so small values are normal.
    foreign_cpu: f64,
    /// CPU seconds (user, system) of the whole process tree of the run.
    cpu: (f64, f64),
}

impl Run {
    /// A rustc next to the run, or others using over 10% of a core.
    fn disturbed(&self) -> bool {
        self.rustc_seen || self.foreign_cpu > 0.10 * self.secs
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let r = match cli.cmd {
        Cmd::Record(a) => record(a),
        Cmd::Capture(a) => capture::run(a),
        Cmd::Soak(a) => capture::soak(a),
        Cmd::Hosts(a) => hosts::run(a),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tomo-bench: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn record(mut a: RecordArgs) -> Result<()> {
    // Native first and always: every other number is "added over native".
    let mut modes = vec![Mode::Native];
    for m in &a.modes {
        if !modes.contains(m) {
            modes.push(*m);
        }
    }
    let mut wls: Vec<Workload> = Vec::new();
    for w in &a.workloads {
        if !wls.contains(w) {
            wls.push(*w);
        }
    }
    a.workloads = wls;
    if a.workloads.is_empty() {
        bail!("--workloads is empty");
    }

    need_tool(
        "gcc",
        &["--version"],
        "the workloads are compiled with gcc (apt-get install gcc)",
    )?;
    if a.workloads.contains(&Workload::Build) {
        need_tool(
            "make",
            &["--version"],
            "the build workload runs make (apt-get install make)",
        )?;
    }
    if modes.contains(&Mode::Strace) {
        need_tool("strace", &["-V"], "strace is the baseline to compare with (apt-get install strace), or leave it out with --modes native,tomo")?;
    }
    let tomo = if modes.contains(&Mode::Tomo) {
        Some(find_tomo(a.tomo.as_deref())?)
    } else {
        None
    };

    let base = a.dir.clone().unwrap_or_else(std::env::temp_dir);
    let work = Scratch::create(&base, a.keep)?;
    let dir = work.path.clone();

    // Fail before the long runs if a tracer cannot work here (ptrace denied by
    // Yama or a container, or a recorder that is not built yet).
    if modes.contains(&Mode::Strace) {
        let out = Command::new("strace")
            .arg("-f")
            .arg("-o")
            .arg(dir.join("probe.strace"))
            .arg("true")
            .output()
            .context("running strace")?;
        if !out.status.success() {
            bail!(
                "`strace -f true` fails here (is ptrace allowed?):\n{}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
    }
    if let Some(t) = &tomo {
        let out = Command::new(t)
            .arg("record")
            .arg("-o")
            .arg(dir.join("probe.tomo"))
            .arg("--")
            .arg("true")
            .output()
            .with_context(|| format!("running {}", t.display()))?;
        if !out.status.success() {
            bail!(
                "`{} record -- true` fails, so the tomo mode cannot be measured (leave it out with --modes native,strace):\n{}",
                t.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
    }

    let micro_params = MicroParams {
        iters: a.iters,
        procs: a.procs,
        execs: a.execs,
    };
    let mut prepared: Vec<(Workload, Prepared)> = Vec::new();
    for w in &a.workloads {
        let p = match w {
            Workload::Micro => Prepared::Argv(workloads::prepare_micro(&dir, micro_params)?),
            Workload::Build => Prepared::Make {
                dir: workloads::prepare_build(&dir, a.files)?,
                jobs: 1,
                target: None,
            },
        };
        prepared.push((*w, p));
    }

    let machine = machine::Machine::probe(&dir, tomo.as_deref());
    let load_start = machine::loadavg();
    let rustc_at_start = machine::rustc_running();
    if rustc_at_start {
        eprintln!(
            "tomo-bench: warning: a rustc is running; numbers taken on a loaded machine are noise"
        );
    }

    // Warm-up (untimed, native): page cache, gcc's binaries and headers, the
    // micro program's first file creations all belong to no mode in particular.
    for (w, p) in &prepared {
        eprintln!("[warm-up] {}", w.name());
        run_once(p, Mode::Native, &dir, tomo.as_deref())
            .with_context(|| format!("warm-up of the {} workload failed", w.name()))?;
    }

    // results[w][m] = runs
    let mut results: Vec<Vec<Vec<Run>>> = prepared
        .iter()
        .map(|_| modes.iter().map(|_| Vec::new()).collect())
        .collect();
    let total = a.reps as usize * prepared.len() * modes.len();
    let mut n = 0;
    for rep in 0..a.reps as usize {
        for (wi, (w, p)) in prepared.iter().enumerate() {
            // Rotate the mode order every repetition so slow drifts of the
            // machine (thermal, page cache, a neighbour) spread over all modes.
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
                    let r = run_once(p, m, &dir, tomo.as_deref()).with_context(|| {
                        format!("{} workload under {} failed", w.name(), m.name())
                    })?;
                    let mut extra = String::new();
                    if let Some(e) = r.events {
                        extra += &format!(", {e} events");
                    }
                    if let Some(b) = r.bytes {
                        extra += &format!(", {}", human_bytes(b));
                    }
                    extra += &format!(", others used {:.2} CPU s", r.foreign_cpu);
                    if r.disturbed() {
                        extra += ", WARNING: machine busy during this run";
                    }
                    eprintln!(
                        "[{n:>3}/{total}] rep {}/{} {:<5} {:<6} {:>8.3} s{extra}",
                        rep + 1,
                        a.reps,
                        w.name(),
                        m.name(),
                        r.secs
                    );
                    // A run that shared the machine measures the neighbour,
                    // not the recorder: do it again, a bounded number of times.
                    if !r.disturbed() || attempt > a.retries {
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
    let load_end = machine::loadavg();
    let foreign_total: f64 = results
        .iter()
        .flatten()
        .flatten()
        .map(|r| r.foreign_cpu)
        .sum();
    let loaded_runs = results
        .iter()
        .flatten()
        .flatten()
        .filter(|r| r.disturbed())
        .count();

    let describe = |w: Workload| {
        match w {
        Workload::Micro => micro_params.describe(),
        Workload::Build => format!(
            "`make -j1` from clean of a generated C project: {} modules + main.c sharing one header, gcc -O2, one link",
            a.files
        ),
    }
    };

    let mut wl_json = Vec::new();
    let mut table = Vec::new();
    for (wi, (w, _)) in prepared.iter().enumerate() {
        let stats: Vec<Stats> = results[wi].iter().map(|runs| Stats::of(runs)).collect();
        let native = &stats[0];
        let mut modes_json = serde_json::Map::new();
        for (mi, m) in modes.iter().enumerate() {
            let s = &stats[mi];
            modes_json.insert(
                m.name().into(),
                json!({
                    "runs_s": results[wi][mi].iter().map(|r| r.secs).collect::<Vec<_>>(),
                    "runs_foreign_cpu_s": results[wi][mi].iter().map(|r| r.foreign_cpu).collect::<Vec<_>>(),
                    "cpu_user_s_median": s.user, "cpu_sys_s_median": s.sys,
                    "median_s": s.median, "min_s": s.min,
                    "added_median_s": s.median - native.median, "added_min_s": s.min - native.min,
                    "overhead_pct_median": pct(s.median, native.median),
                    "events_median": s.events, "bytes_median": s.bytes, "strace_lines_median": s.lines,
                }),
            );
        }
        let added = |m: Mode| {
            modes
                .iter()
                .position(|x| *x == m)
                .map(|i| (stats[i].median - native.median, stats[i].min - native.min))
        };
        let ratio = match (added(Mode::Tomo), added(Mode::Strace)) {
            (Some(t), Some(s)) => Some((t.0 / s.0, t.1 / s.1)),
            _ => None,
        };
        wl_json.push(json!({
            "workload": w.name(), "description": describe(*w), "modes": modes_json,
            "ratio_tomo_added_over_strace_added_median": ratio.map(|r| r.0),
            "ratio_tomo_added_over_strace_added_min": ratio.map(|r| r.1),
        }));
        table.push((*w, stats, ratio));
    }

    if a.json {
        let j = json!({
            "benchmark": "capture overhead (issue #2)",
            "reps": a.reps,
            "machine": machine.json(),
            "load": { "loadavg_1m_start": load_start, "loadavg_1m_end": load_end,
                      "rustc_running_at_start": rustc_at_start, "runs_disturbed": loaded_runs, "foreign_cpu_s_total": foreign_total,
                      "runs": total },
            "workloads": wl_json,
        });
        println!("{}", serde_json::to_string_pretty(&j)?);
        return Ok(());
    }

    println!("Machine: {}", machine.one_line());
    println!("Scratch dir: {} ({})", dir.display(), machine.fs);
    for (k, v) in &machine.tools {
        println!("{k}: {v}");
    }
    println!(
        "Load: 1-min loadavg {load_start:.2} at start, {load_end:.2} at end; {loaded_runs} of {total} runs disturbed (a rustc, or others above 10% of a core); others used {foreign_total:.1} CPU s in all timed runs"
    );
    println!(
        "Repetitions: {} per workload and mode, modes interleaved; median (min) wall seconds",
        a.reps
    );
    println!();
    for (w, _) in &prepared {
        println!("{}: {}", w.name(), describe(*w));
    }
    println!();
    let has = |m: Mode| modes.iter().position(|x| *x == m);
    print!("| workload | native s |");
    let (si, ti) = (has(Mode::Strace), has(Mode::Tomo));
    if si.is_some() {
        print!(" strace -f s |");
    }
    if ti.is_some() {
        print!(" tomo record s |");
    }
    if si.is_some() && ti.is_some() {
        print!(" tomo added / strace added |");
    }
    println!();
    println!(
        "|---|---:|{}",
        "---:|".repeat(
            si.iter().count() + ti.iter().count() + usize::from(si.is_some() && ti.is_some())
        )
    );
    for (w, stats, ratio) in &table {
        let nat = &stats[0];
        print!("| {} | {:.3} ({:.3}) |", w.name(), nat.median, nat.min);
        for i in [si, ti].into_iter().flatten() {
            let s = &stats[i];
            print!(
                " {:.3} ({:.3}) {:+.0}% |",
                s.median,
                s.min,
                pct(s.median, nat.median)
            );
        }
        if let Some((rm, rmin)) = ratio {
            let verdict = if *rm <= 0.5 {
                "meets goal <= 0.5"
            } else {
                "ABOVE goal 0.5"
            };
            print!(" {rm:.2} (min-based {rmin:.2}), {verdict} |");
        }
        println!();
    }
    println!();
    for (w, stats, _) in &table {
        let nat = &stats[0];
        let cpu: Vec<String> = modes
            .iter()
            .zip(stats)
            .map(|(m, s)| format!("{} {:.2} user + {:.2} sys", m.name(), s.user, s.sys))
            .collect();
        println!(
            "{}: CPU s of the whole process tree (median): {}",
            w.name(),
            cpu.join("; ")
        );
        if let Some(i) = ti {
            let s = &stats[i];
            if let (Some(ev), Some(b)) = (s.events, s.bytes) {
                let added_us = (s.median - nat.median) * 1e6;
                println!(
                    "{}: tomo recorded {ev} events into {} ({:.1} bytes/event), {:.2} us added per event",
                    w.name(),
                    human_bytes(b),
                    b as f64 / ev.max(1) as f64,
                    added_us / ev.max(1) as f64
                );
            }
        }
        if let Some(i) = si {
            let s = &stats[i];
            if let (Some(l), Some(b)) = (s.lines, s.bytes) {
                let added_us = (s.median - nat.median) * 1e6;
                println!(
                    "{}: strace wrote {l} lines ({}), {:.2} us added per line",
                    w.name(),
                    human_bytes(b),
                    added_us / l.max(1) as f64
                );
            }
        }
    }
    // A rustc at start is harmless when the runs waited it out and none was
    // disturbed, so only disturbed runs earn the warning.
    if loaded_runs > 0 {
        println!("\nWARNING: some runs shared the machine with other load; rerun on an idle machine before trusting these numbers.");
    }
    Ok(())
}

enum Prepared {
    /// A program and its arguments.
    Argv(Vec<String>),
    /// A make project directory: cleaned (untimed) before each timed
    /// `make -jJOBS [TARGET]`.
    Make {
        dir: PathBuf,
        jobs: u32,
        target: Option<String>,
    },
}

fn run_once(p: &Prepared, mode: Mode, dir: &Path, tomo: Option<&Path>) -> Result<Run> {
    let argv: Vec<String> = match p {
        Prepared::Argv(v) => v.clone(),
        Prepared::Make {
            dir: proj,
            jobs,
            target,
        } => {
            let out = Command::new("make")
                .arg("-C")
                .arg(proj)
                .arg("clean")
                .output()
                .context("running make clean")?;
            if !out.status.success() {
                bail!(
                    "make clean failed:\n{}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            let mut v = vec![
                "make".into(),
                "-C".into(),
                workloads::path_str(proj)?,
                format!("-j{jobs}"),
            ];
            v.extend(target.iter().cloned());
            v
        }
    };
    let strace_out = dir.join("run.strace");
    let tomo_out = dir.join("run.tomo");
    // Each run starts without the previous run's output, so no mode pays for
    // truncating or skipping over an old file.
    remove_any(&strace_out)?;
    remove_any(&tomo_out)?;
    let mut cmd = match mode {
        Mode::Native => {
            let mut c = Command::new(&argv[0]);
            c.args(&argv[1..]);
            c
        }
        Mode::Strace => {
            let mut c = Command::new("strace");
            c.arg("-f").arg("-o").arg(&strace_out).args(&argv);
            c
        }
        Mode::Tomo => {
            let t = tomo.context("tomo mode without a tomo binary")?;
            let mut c = Command::new(t);
            c.arg("record")
                .arg("--json")
                .arg("-o")
                .arg(&tomo_out)
                .arg("--")
                .args(&argv);
            c
        }
    };
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let rustc_before = machine::rustc_running();
    let cpu0 = children_cpu();
    let busy0 = machine::busy_cpu_secs();
    let t0 = Instant::now();
    let out = cmd
        .output()
        .with_context(|| format!("cannot start {:?}", cmd.get_program()))?;
    let secs = t0.elapsed().as_secs_f64();
    let cpu1 = children_cpu();
    let busy1 = machine::busy_cpu_secs();
    let rustc_seen = rustc_before || machine::rustc_running();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        bail!(
            "{} exited with {}:\n{}",
            mode.name(),
            out.status,
            tail(&stderr, 20)
        );
    }
    let mut r = Run {
        secs,
        events: None,
        bytes: None,
        lines: None,
        rustc_seen,
        foreign_cpu: ((busy1 - busy0) - (cpu1.0 - cpu0.0) - (cpu1.1 - cpu0.1)).max(0.0),
        cpu: (cpu1.0 - cpu0.0, cpu1.1 - cpu0.1),
    };
    match mode {
        Mode::Native => {}
        Mode::Strace => {
            r.bytes = Some(size_of(&strace_out)?);
            r.lines = Some(count_lines(&strace_out)?);
        }
        Mode::Tomo => {
            r.bytes = Some(size_of(&tomo_out)?);
            // `tomo record --json` ends with a one-line JSON summary on stderr;
            // the recorded command's own stderr comes before it.
            r.events = stderr.lines().rev().find_map(|l| {
                serde_json::from_str::<Value>(l)
                    .ok()?
                    .get("events")?
                    .as_u64()
            });
            if r.events.is_none() {
                eprintln!(
                    "tomo-bench: warning: no event count in tomo's output:\n{}",
                    tail(&stderr, 5)
                );
            }
        }
    }
    Ok(r)
}

struct Stats {
    median: f64,
    min: f64,
    events: Option<u64>,
    bytes: Option<u64>,
    lines: Option<u64>,
    user: f64,
    sys: f64,
}

impl Stats {
    fn of(runs: &[Run]) -> Stats {
        let secs: Vec<f64> = runs.iter().map(|r| r.secs).collect();
        Stats {
            median: median_f(&secs),
            min: secs.iter().copied().fold(f64::INFINITY, f64::min),
            events: median_u(runs.iter().filter_map(|r| r.events).collect()),
            bytes: median_u(runs.iter().filter_map(|r| r.bytes).collect()),
            lines: median_u(runs.iter().filter_map(|r| r.lines).collect()),
            user: median_f(&runs.iter().map(|r| r.cpu.0).collect::<Vec<_>>()),
            sys: median_f(&runs.iter().map(|r| r.cpu.1).collect::<Vec<_>>()),
        }
    }
}

/// User and system CPU seconds of all reaped descendants so far. Every
/// process of a run is reaped by the time `output()` returns (tracees by
/// their parents, the tracer or top command by us), so the difference over
/// a run is the CPU the run cost: it shows whether added wall time is spent
/// in the kernel (ptrace stops, context switches) or in the tracer itself.
fn children_cpu() -> (f64, f64) {
    // SAFETY: getrusage only writes into the zeroed struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) } != 0 {
        return (0.0, 0.0);
    }
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    (t(ru.ru_utime), t(ru.ru_stime))
}

fn median_f(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn median_u(mut v: Vec<u64>) -> Option<u64> {
    v.sort_unstable();
    v.get(v.len().wrapping_sub(1) / 2).copied()
}

fn pct(x: f64, base: f64) -> f64 {
    (x - base) / base * 100.0
}

fn need_tool(name: &str, args: &[&str], why: &str) -> Result<()> {
    match Command::new(name)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(_) => Ok(()),
        Err(e) => bail!("`{name}` is needed but cannot be run ({e}): {why}"),
    }
}

/// Finds the release tomo binary; builds it when it is missing and we are in
/// the workspace, because a debug build would make the recorder look slow.
fn find_tomo(given: Option<&Path>) -> Result<PathBuf> {
    if let Some(p) = given {
        if !p.is_file() {
            bail!("--tomo {}: no such file", p.display());
        }
        return Ok(p.to_path_buf());
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut candidates = Vec::new();
    // Next to this program: `cargo run --release -p tomo-bench` puts both in
    // the same target/release, wherever CARGO_TARGET_DIR points.
    if let Ok(exe) = std::env::current_exe() {
        if let Some(d) = exe.parent() {
            if d.file_name().is_some_and(|n| n == "release") {
                candidates.push(d.join("tomo"));
            }
        }
    }
    if let Some(t) = std::env::var_os("CARGO_TARGET_DIR") {
        candidates.push(PathBuf::from(t).join("release/tomo"));
    }
    candidates.push(workspace.join("target/release/tomo"));
    if let Some(p) = candidates.iter().find(|p| p.is_file()) {
        return Ok(p.canonicalize().unwrap_or_else(|_| p.clone()));
    }
    if !workspace.join("Cargo.toml").is_file() {
        bail!("no release tomo binary found; build it with `cargo build --release` or pass --tomo PATH");
    }
    eprintln!(
        "tomo-bench: no release tomo binary found; running `cargo build --release -p tomo` first"
    );
    let st = Command::new("cargo")
        .args(["build", "--release", "-p", "tomo"])
        .current_dir(&workspace)
        .status()
        .context("running cargo build --release -p tomo")?;
    if !st.success() {
        bail!("`cargo build --release -p tomo` failed; build it yourself or pass --tomo PATH");
    }
    candidates
        .into_iter()
        .find(|p| p.is_file())
        .context("cargo built tomo but it is not where expected; pass --tomo PATH")
}

/// The scratch directory; removed on drop unless --keep.
struct Scratch {
    path: PathBuf,
    keep: bool,
}

impl Scratch {
    fn create(base: &Path, keep: bool) -> Result<Scratch> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path = base.join(format!("tomo-bench-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path)
            .with_context(|| format!("creating scratch dir {}", path.display()))?;
        Ok(Scratch { path, keep })
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if self.keep {
            eprintln!("tomo-bench: kept {}", self.path.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

fn remove_any(p: &Path) -> Result<()> {
    let r = if p.is_dir() {
        std::fs::remove_dir_all(p)
    } else {
        std::fs::remove_file(p)
    };
    match r {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("removing {}", p.display()))
        }
        _ => Ok(()),
    }
}

/// Bytes of a file, or of a directory of segments (a rotated recording).
fn size_of(p: &Path) -> Result<u64> {
    let md = std::fs::metadata(p).with_context(|| format!("no output at {}", p.display()))?;
    if !md.is_dir() {
        return Ok(md.len());
    }
    let mut total = 0;
    for e in std::fs::read_dir(p)? {
        total += e?.metadata()?.len();
    }
    Ok(total)
}

fn count_lines(p: &Path) -> Result<u64> {
    use std::io::Read;
    let mut f = std::fs::File::open(p).with_context(|| format!("opening {}", p.display()))?;
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    loop {
        let k = f.read(&mut buf)?;
        if k == 0 {
            return Ok(n);
        }
        n += buf[..k].iter().filter(|&&b| b == b'\n').count() as u64;
    }
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn human_bytes(b: u64) -> String {
    const U: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = b as f64;
    let mut i = 0;
    while v >= 1024.0 && i < U.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", U[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median_f(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median_f(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median_f(&[]).is_nan());
        assert_eq!(median_u(vec![5, 1, 3]), Some(3));
        assert_eq!(median_u(vec![]), None);
    }

    #[test]
    fn build_project_is_makeable_text() {
        let dir = std::env::temp_dir().join(format!("tomo-bench-test-{}", std::process::id()));
        let proj = workloads::prepare_build(&dir, 3).unwrap();
        let mk = std::fs::read_to_string(proj.join("Makefile")).unwrap();
        // make insists on tabs before recipe lines.
        assert!(mk.contains("\n\t$(CC) $(CFLAGS) -c -o $@ $<\n"));
        assert!(mk.contains("mod02.o"));
        assert!(proj.join("mod02.c").is_file() && proj.join("main.c").is_file());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
