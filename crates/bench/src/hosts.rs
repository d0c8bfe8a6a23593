//! `tomo-bench hosts`: many simulated hosts feeding one collector (issue #6).
//!
//! N threads play N hosts. Each writes synthetic events ([`crate::synth`])
//! into its own spool with `tomo_log::Writer` (a rotating recording named
//! like the agent names it), and a `tomo_ship::Shipper` ships that spool to
//! a Kafka-protocol broker (tansu), as `tomo agent --ship` does. One
//! collector, the release `tomo collect` binary in its own process, gathers
//! them into replicas and keeps the collection's graph store up to date
//! (`--index-every`), so its memory and CPU can be measured on their own.
//!
//! For each target rate of a ramp, generation is paced at that total rate
//! for a fixed time; then the benchmark waits until every replica is as long
//! as its spool recording (the replica is byte-identical when complete) and
//! calls the time since the end of generation the collector's lag. Then it
//! stops the collector (SIGTERM: it commits, brings the store up to date
//! and prints its counters), verifies every spool recording and its replica
//! (checksums, chain, same chain head and event count) and compares the
//! store's event count with what was generated. A rate
//! is *sustained* when nothing is lost or duplicated, the store holds every
//! event, the lag stays within `--max-lag` (at the end, and during the run:
//! the bytes of the spools not yet in the replicas, sampled every 100 ms,
//! as seconds of generated data) and the generators reached the rate. The
//! ramp stops at the first rate that is not sustained.

use super::{find_tomo, human_bytes, machine, tail, Scratch};
use crate::synth::HostGen;
use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::fs;
use std::io::Read;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};
use tomo_event::Id128;
use tomo_kafka::KafkaUrl;
use tomo_log::{RecordingMeta, WriteSummary, Writer, WriterOptions};
use tomo_ship::{ShipOptions, ShipStats, Shipper};

/// CADETS' engagement rates (records/s over 2-3 hosts), for comparison.
const CADETS: (f64, f64) = (1_250.0, 1_700.0);

#[derive(clap::Args)]
pub struct HostsArgs {
    /// Simulated hosts (threads), each with its own spool and shipper.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=250))]
    hosts: u32,
    /// Target total event rates (events/s over all hosts), tried in order;
    /// the ramp stops at the first one that is not sustained.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "2000,5000,10000,20000,50000,100000,200000"
    )]
    rates: Vec<u64>,
    /// Seconds of generation at each rate.
    #[arg(long, default_value_t = 20.0)]
    secs: f64,
    /// A rate is sustained only if the collector has everything within this
    /// many seconds after generation ends, and is never further behind
    /// during the run.
    #[arg(long, default_value_t = 5.0)]
    max_lag: f64,
    /// Give up waiting for the collection this many seconds after generation
    /// ends (what is missing then counts as lost).
    #[arg(long, default_value_t = 120.0)]
    wait: f64,
    /// The collector's `--index-every` (seconds): it keeps the graph store up
    /// to date while collecting, as a deployment would.
    #[arg(long, default_value_t = 5.0)]
    index_every: f64,
    /// The collector's `--idle-exit` (seconds): only a safety net, since
    /// the benchmark stops the collector (SIGTERM: final sync, commit and
    /// index) as soon as the collection is complete.
    #[arg(long, default_value_t = 60.0)]
    idle_exit: f64,
    /// Partitions of each step's topic.
    #[arg(long, default_value_t = 4)]
    partitions: i32,
    /// Kill the collector (and fail the rate) if its RSS goes above this (MiB).
    #[arg(long, default_value_t = 4096)]
    max_rss_mib: u64,
    /// Go on with the next rates after one that is not sustained.
    #[arg(long)]
    keep_going: bool,
    /// The tomo binary (default: target/release/tomo).
    #[arg(long)]
    tomo: Option<PathBuf>,
    /// The tansu broker binary (default: $TOMO_TANSU or /opt/tomo-tools/bin/tansu).
    #[arg(long)]
    tansu: Option<PathBuf>,
    /// Use this running broker (HOST:PORT) instead of starting tansu.
    #[arg(long, value_name = "HOST:PORT")]
    broker: Option<String>,
    /// Where to create the scratch directory (default: the system temp dir).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Keep the scratch directory (spools, collections, broker log).
    #[arg(long)]
    keep: bool,
    /// Print the results as JSON on stdout instead of the table.
    #[arg(long)]
    json: bool,
    /// Also write the JSON results to this file (with the table on stdout).
    #[arg(long, value_name = "FILE")]
    json_out: Option<PathBuf>,
}

/// A tansu broker started for the benchmark.
struct Broker {
    child: Child,
    addr: String,
    log: PathBuf,
}

impl Broker {
    fn start(tansu: &Path, dir: &Path) -> Result<Broker> {
        // A free port: bind, read it, release it.
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let log = dir.join("tansu.log");
        let out = fs::File::create(&log)?;
        let child = Command::new(tansu)
            .args(["broker", "--listener-url"])
            .arg(format!("tcp://0.0.0.0:{port}"))
            .arg("--advertised-listener-url")
            .arg(format!("tcp://127.0.0.1:{port}"))
            .arg("--storage-engine")
            // tansu drops the first '/' of the URL's path (sqlite:///tmp/x
            // opens tmp/x in its working directory), hence four.
            .arg(format!("sqlite:///{}", dir.join("tansu.db").display()))
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .with_context(|| format!("cannot start {}", tansu.display()))?;
        let mut b = Broker {
            child,
            addr: format!("127.0.0.1:{port}"),
            log,
        };
        let t0 = Instant::now();
        while TcpStream::connect(&b.addr).is_err() {
            if let Some(st) = b.child.try_wait()? {
                bail!(
                    "tansu exited with {st}:\n{}",
                    tail(&fs::read_to_string(&b.log).unwrap_or_default(), 20)
                );
            }
            if t0.elapsed() > Duration::from_secs(30) {
                bail!("tansu did not listen on {} within 30 s", b.addr);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(b)
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the host threads tell the monitor while they run.
struct Shared {
    /// Per host: its spool recording and where its replica will be.
    recs: Mutex<Vec<Option<(PathBuf, PathBuf)>>>,
    generated: Vec<AtomicU64>,
    /// Hosts whose writer finished, and when the last one did.
    finished: AtomicUsize,
    gen_end: Mutex<Option<Instant>>,
}

/// One host's results.
struct HostOut {
    name: String,
    rec: PathBuf,
    replica: PathBuf,
    summary: WriteSummary,
    /// Generation: wall seconds, and the most it fell behind its pace (s).
    gen_secs: f64,
    max_behind_s: f64,
    ship: ShipStats,
    ship_error: Option<String>,
    /// When its shipper had everything acknowledged.
    shipped_at: Instant,
}

/// The spool recording name `tomo agent --ship` uses: start time, then pid.
fn spool_name() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}.{:09}Z-{}",
        now.year(),
        now.month() as u8,
        now.day(),
        now.hour(),
        now.minute(),
        now.second(),
        now.nanosecond(),
        std::process::id()
    )
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Host id of a simulated host: the UUIDv5 of its name, as `--host-name` does.
fn host_id(name: &str) -> Id128 {
    Id128(*uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_DNS, name.as_bytes()).as_bytes())
}

struct HostPlan {
    k: usize,
    n: usize,
    spool: PathBuf,
    collection: PathBuf,
    url: KafkaUrl,
    partitions: i32,
    rate: f64,
    secs: f64,
    boot: Id128,
}

fn host_thread(p: HostPlan, shared: Arc<Shared>, start: Arc<Barrier>) -> Result<HostOut> {
    let name = format!("bench-host-{}", p.k);
    let host = host_id(&name);
    let setup = (|| -> Result<(Writer, Shipper, PathBuf, PathBuf)> {
        fs::create_dir_all(&p.spool)?;
        let rec = p.spool.join(spool_name());
        let meta = RecordingMeta {
            host,
            boot: p.boot,
            source: "synthetic".into(),
            command: Vec::new(),
            cut_from: None,
            host_name: Some(name.clone()),
        };
        // The agent's writer settings with --ship (rotation at 64 MiB).
        let opts = WriterOptions {
            rotate_bytes: Some(64 << 20),
            ..WriterOptions::default()
        };
        let w = Writer::create(&rec, meta, opts)
            .with_context(|| format!("creating {}", rec.display()))?;
        let replica = p
            .collection
            .join("hosts")
            .join(hex(&host.0))
            .join(w.summary().recording_id);
        let mut so = ShipOptions::new(p.url.clone());
        so.create_partitions = p.partitions;
        so.client_id = name.clone();
        let s = Shipper::spawn(&p.spool, so)
            .with_context(|| format!("shipping {}", p.spool.display()))?;
        Ok((w, s, rec, replica))
    })();
    if let Ok((_, _, rec, replica)) = &setup {
        shared.recs.lock().expect("lock")[p.k] = Some((rec.clone(), replica.clone()));
    }
    // Every host starts at once (and a failed setup must not leave the
    // others waiting).
    start.wait();
    let (mut w, shipper, rec, replica) = setup?;
    let mut g = HostGen::new(host, p.boot, p.k, p.n, 0x9e37_79b9 + p.k as u64 * 7919);
    let dur = Duration::from_secs_f64(p.secs);
    let t0 = Instant::now();
    let mut produced = 0u64;
    let mut max_behind = 0f64;
    loop {
        let el = t0.elapsed();
        if el >= dur {
            break;
        }
        let due = (p.rate * el.as_secs_f64()) as u64;
        if due > produced {
            max_behind = max_behind.max((due - produced) as f64 / p.rate);
            let n = (due - produced).min(2048);
            for _ in 0..n {
                w.append(&g.next_event())
                    .with_context(|| format!("writing {}", rec.display()))?;
            }
            produced += n;
            shared.generated[p.k].store(produced, Ordering::Relaxed);
        } else {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    let summary = w
        .finish()
        .with_context(|| format!("finishing {}", rec.display()))?;
    let gen_secs = t0.elapsed().as_secs_f64();
    {
        let mut e = shared.gen_end.lock().expect("lock");
        *e = Some(Instant::now());
        shared.finished.fetch_add(1, Ordering::SeqCst);
    }
    let (ship, res) = shipper.finish(Duration::from_secs(60));
    Ok(HostOut {
        name,
        rec,
        replica,
        summary,
        gen_secs,
        max_behind_s: max_behind,
        ship,
        ship_error: res.err().map(|e| e.to_string()),
        shipped_at: Instant::now(),
    })
}

/// Bytes of the files in a directory (0 if it does not exist yet).
fn dir_bytes(p: &Path) -> u64 {
    let Ok(rd) = fs::read_dir(p) else {
        return 0;
    };
    rd.flatten()
        .filter_map(|e| e.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum()
}

/// A /proc/PID/status field in KiB.
fn status_kib(pid: i32, field: &str) -> Option<u64> {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// utime + stime of a live process, seconds.
fn proc_cpu(pid: i32) -> f64 {
    let Ok(s) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    let Some(rest) = s.rsplit_once(')').map(|x| x.1) else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let t = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (t(11) + t(12)) / 100.0
}

/// Our own CPU seconds (every thread: generators, writers, shippers).
fn self_cpu() -> f64 {
    // SAFETY: getrusage only writes into the zeroed struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
        return 0.0;
    }
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

fn tv(t: libc::timeval) -> f64 {
    t.tv_sec as f64 + t.tv_usec as f64 / 1e6
}

/// The collector process, reaped with wait4 for its exact CPU and peak RSS.
struct Collector {
    child: Child,
    pid: i32,
    /// Exit status, user + system CPU seconds, ru_maxrss (KiB).
    done: Option<(i32, f64, f64, u64)>,
    peak_rss_kib: u64,
    rss_samples: Vec<(f64, u64)>,
}

impl Collector {
    /// Reaps the collector if it has exited; `true` when it has.
    fn poll(&mut self) -> bool {
        if self.done.is_some() {
            return true;
        }
        if let Some(k) = status_kib(self.pid, "VmHWM:") {
            self.peak_rss_kib = self.peak_rss_kib.max(k);
        }
        let mut st = 0;
        // SAFETY: wait4 writes the status and the rusage we pass.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        let r = unsafe { libc::wait4(self.pid, &mut st, libc::WNOHANG, &mut ru) };
        if r == self.pid {
            self.done = Some((
                st,
                tv(ru.ru_utime),
                tv(ru.ru_stime),
                ru.ru_maxrss.max(0) as u64,
            ));
            return true;
        }
        false
    }

    /// One RSS sample of the collector; kills it, once, when it
    /// is above `max_mib`, and says so in `failures`.
    fn watch_rss(
        &mut self,
        t0: Instant,
        max_mib: u64,
        killed: &mut bool,
        failures: &mut Vec<String>,
    ) {
        let Some(k) = status_kib(self.pid, "VmRSS:") else {
            return;
        };
        self.rss_samples.push((t0.elapsed().as_secs_f64(), k));
        if k > max_mib * 1024 && !*killed {
            failures.push(format!(
                "collector RSS {} above --max-rss-mib {}: killed",
                human_bytes(k * 1024),
                max_mib
            ));
            self.signal(libc::SIGKILL);
            *killed = true;
        }
    }

    fn signal(&self, sig: i32) {
        if self.done.is_none() {
            // SAFETY: plain kill(2) of our own unreaped child.
            unsafe { libc::kill(self.pid, sig) };
        }
    }
}

/// The result of one rate.
struct Step {
    j: Value,
    ok: bool,
}

pub fn run(a: HostsArgs) -> Result<()> {
    if a.rates.is_empty() {
        bail!("--rates is empty");
    }
    if a.secs <= 0.0 {
        bail!("--secs must be positive");
    }
    let tomo = find_tomo(a.tomo.as_deref())?;
    let base = a.dir.clone().unwrap_or_else(std::env::temp_dir);
    let work = Scratch::create(&base, a.keep)?;
    let dir = work.path.clone();
    let tansu_path = a
        .tansu
        .clone()
        .or_else(|| std::env::var_os("TOMO_TANSU").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("/opt/tomo-tools/bin/tansu"));
    let (broker, addr) = match &a.broker {
        Some(b) => (None, b.clone()),
        None => {
            if !tansu_path.is_file() {
                bail!(
                    "no tansu broker at {} (`cargo install tansu --locked --features libsql --root /opt/tomo-tools`, or --tansu PATH, or --broker HOST:PORT)",
                    tansu_path.display()
                );
            }
            let b = Broker::start(&tansu_path, &dir)?;
            let addr = b.addr.clone();
            (Some(b), addr)
        }
    };
    let machine = machine::Machine::probe(&dir, Some(&tomo));
    let tansu_version = broker.as_ref().map(|_| {
        Command::new(&tansu_path)
            .arg("--version")
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default()
    });
    let load_start = machine::loadavg();
    let t_start = time::OffsetDateTime::now_utc();
    let boot = Id128(*uuid::Uuid::new_v4().as_bytes());

    let mut steps: Vec<Step> = Vec::new();
    for &rate in &a.rates {
        eprintln!(
            "[hosts] {} ev/s over {} hosts for {} s",
            rate, a.hosts, a.secs
        );
        let s = step(&a, &tomo, &dir, &addr, broker.as_ref(), rate, boot)
            .with_context(|| format!("the step at {rate} events/s failed"))?;
        eprintln!(
            "[hosts] {} ev/s: {}",
            rate,
            s.j["verdict"].as_str().unwrap_or("?")
        );
        let ok = s.ok;
        steps.push(s);
        if !ok && !a.keep_going {
            break;
        }
    }
    let load_end = machine::loadavg();
    let best = steps
        .iter()
        .filter(|s| s.ok)
        .filter_map(|s| s.j["achieved_events_per_s"].as_f64())
        .fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x))));
    let best_target = steps
        .iter()
        .filter(|s| s.ok)
        .filter_map(|s| s.j["target_events_per_s"].as_u64())
        .max();
    let when = format!(
        "{:04}-{:02}-{:02} {:02}:{:02} UTC",
        t_start.year(),
        t_start.month() as u8,
        t_start.day(),
        t_start.hour(),
        t_start.minute()
    );

    let j = json!({
            "benchmark": "many hosts feeding one collector (issue #6)",
            "started": when,
            "hosts": a.hosts, "secs_per_rate": a.secs, "max_lag_s": a.max_lag,
            "collector_index_every_s": a.index_every, "collector_idle_exit_s": a.idle_exit,
            "partitions": a.partitions,
            "broker": match &tansu_version { Some(v) => format!("{v} ({}), sqlite storage", tansu_path.display()), None => format!("external {addr}") },
            "machine": machine.json(),
            "load": { "loadavg_1m_start": load_start, "loadavg_1m_end": load_end },
            "steps": steps.iter().map(|s| s.j.clone()).collect::<Vec<_>>(),
            "highest_sustained_target_events_per_s": best_target,
            "highest_sustained_achieved_events_per_s": best,
            "cadets_records_per_s": [CADETS.0, CADETS.1],
            "times_cadets_max": best.map(|b| b / CADETS.1),
    });
    if let Some(p) = &a.json_out {
        fs::write(p, serde_json::to_string_pretty(&j)? + "\n")
            .with_context(|| format!("writing {}", p.display()))?;
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&j)?);
        return Ok(());
    }

    println!("Machine: {}", machine.one_line());
    println!("Scratch dir: {} ({})", dir.display(), machine.fs);
    for (k, v) in &machine.tools {
        if k == "tomo" || k == "source" {
            println!("{k}: {v}");
        }
    }
    match &tansu_version {
        Some(v) => println!(
            "broker: {v} ({}), sqlite storage, on this machine",
            tansu_path.display()
        ),
        None => println!("broker: external, {addr}"),
    }
    println!("Started {when}; 1-min loadavg {load_start:.2} at start, {load_end:.2} at end");
    println!(
        "{} simulated hosts (threads: paced generator + tomo_log::Writer + tomo_ship::Shipper each), {} s per rate; \
         one `tomo collect --index-every {} --idle-exit {}` process; sustained = nothing lost or duplicated, \
         store complete, lag and peak backlog <= {} s, generators at >= 95% of the rate",
        a.hosts, a.secs, a.index_every, a.idle_exit, a.max_lag
    );
    println!();
    println!("| target ev/s | achieved ev/s | events | in replicas | in store | lag s | peak backlog s | collector peak RSS | collector CPU s | broker peak RSS | agents CPU s | retries | wire B/event | others' CPU s | result |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
    for s in &steps {
        let j = &s.j;
        let f = |k: &str| j[k].as_f64().unwrap_or(f64::NAN);
        let u = |k: &str| j[k].as_u64().unwrap_or(0);
        let mib = |k: &str| human_bytes(u(k) * 1024);
        let lag = j["lag_s"]
            .as_f64()
            .map_or_else(|| "incomplete".to_owned(), |l| format!("{l:.2}"));
        println!(
            "| {} | {:.0} | {} | {} | {} | {} | {:.2} | {} | {:.1} | {} | {:.1} | {} | {:.1} | {:.1} | {} |",
            u("target_events_per_s"),
            f("achieved_events_per_s"),
            u("events_generated"),
            u("events_in_replicas"),
            u("events_in_store"),
            lag,
            f("peak_backlog_s"),
            mib("collector_peak_rss_kib"),
            f("collector_cpu_user_s") + f("collector_cpu_sys_s"),
            mib("broker_peak_rss_kib"),
            f("agents_cpu_s"),
            u("shipper_retries"),
            f("wire_bytes_per_event"),
            f("foreign_cpu_s"),
            j["verdict"].as_str().unwrap_or("?"),
        );
    }
    println!();
    for s in &steps {
        let j = &s.j;
        println!(
            "{} ev/s: spool {:.1} B/event, store {:.1} B/event; shipped {} blocks in {} s after generation; collector: {} store updates, {} duplicates dropped, {} rebalances, {} reconnects, {:.1} us CPU/event; stop (final sync + store update) {:.1} s; generators fell behind by at most {:.2} s; load {:.2} -> {:.2}{}",
            j["target_events_per_s"],
            j["spool_bytes_per_event"].as_f64().unwrap_or(f64::NAN),
            j["store_bytes_per_event"].as_f64().unwrap_or(f64::NAN),
            j["blocks_shipped"],
            j["ship_done_after_s"].as_f64().map_or("?".into(), |v| format!("{v:.2}")),
            j["collector"]["store_updates"],
            j["collector"]["duplicates"],
            j["collector"]["rebalances"],
            j["collector"]["reconnects"],
            j["collector_cpu_us_per_event"].as_f64().unwrap_or(f64::NAN),
            j["collector_stop_s"].as_f64().unwrap_or(f64::NAN),
            j["generator_max_behind_s"].as_f64().unwrap_or(f64::NAN),
            j["loadavg_1m_start"].as_f64().unwrap_or(f64::NAN),
            j["loadavg_1m_end"].as_f64().unwrap_or(f64::NAN),
            if j["rustc_seen"].as_bool() == Some(true) { "; a rustc was running" } else { "" },
        );
        if let Some(w) = j["peak_backlog_s_per_window"].as_array() {
            let v: Vec<String> = w
                .iter()
                .map(|x| format!("{:.2}", x.as_f64().unwrap_or(f64::NAN)))
                .collect();
            println!(
                "    worst backlog (s of generated data) in each {:.0} s window: {}",
                j["backlog_window_s"].as_f64().unwrap_or(f64::NAN),
                v.join(" ")
            );
        }
        if let Some(p) = j["collector"]["problems"].as_array() {
            for x in p.iter().take(5) {
                println!("    collector problem: {}", x.as_str().unwrap_or("?"));
            }
        }
        if let Some(p) = j["failures"].as_array() {
            for x in p {
                println!("    not sustained: {}", x.as_str().unwrap_or("?"));
            }
        }
    }
    println!();
    match best {
        Some(b) => println!(
            "Highest sustained rate: {} ev/s target ({b:.0} ev/s achieved) over {} hosts = {:.0}x CADETS' {:.0}-{:.0} records/s",
            best_target.unwrap_or(0),
            a.hosts,
            b / CADETS.1,
            CADETS.0,
            CADETS.1
        ),
        None => println!("No rate was sustained."),
    }
    drop(broker);
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn step(
    a: &HostsArgs,
    tomo: &Path,
    dir: &Path,
    addr: &str,
    broker: Option<&Broker>,
    rate: u64,
    boot: Id128,
) -> Result<Step> {
    let n = a.hosts as usize;
    let sdir = dir.join(format!("rate-{rate}"));
    if sdir.exists() {
        fs::remove_dir_all(&sdir)?;
    }
    fs::create_dir_all(&sdir)?;
    let topic = format!("tomo-bench-{}-{rate}", std::process::id());
    let url: KafkaUrl = format!("kafka://{addr}/{topic}")
        .parse()
        .context("broker address")?;
    let collection = sdir.join("collection");

    let load0 = machine::loadavg();
    let rustc0 = machine::rustc_running();
    let busy0 = machine::busy_cpu_secs();
    let self0 = self_cpu();
    let broker_cpu0 = broker.map_or(0.0, |b| proc_cpu(b.pid()));
    let t_step = Instant::now();

    let col_log = sdir.join("collect.log");
    let mut child = Command::new(tomo)
        .arg("collect")
        .arg("--from")
        .arg(url.to_string())
        .arg("-o")
        .arg(&collection)
        .arg("--group")
        .arg(&topic)
        .arg("--index-every")
        .arg(a.index_every.to_string())
        .arg("--idle-exit")
        .arg(a.idle_exit.to_string())
        .arg("--json")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(fs::File::create(&col_log)?)
        .spawn()
        .with_context(|| format!("cannot start {} collect", tomo.display()))?;
    let stdout = child.stdout.take();
    let mut col = Collector {
        pid: child.id() as i32,
        child,
        done: None,
        peak_rss_kib: 0,
        rss_samples: Vec::new(),
    };
    // The collector joins its group while the hosts start.
    std::thread::sleep(Duration::from_millis(500));

    let shared = Arc::new(Shared {
        recs: Mutex::new(vec![None; n]),
        generated: (0..n).map(|_| AtomicU64::new(0)).collect(),
        finished: AtomicUsize::new(0),
        gen_end: Mutex::new(None),
    });
    let start = Arc::new(Barrier::new(n + 1));
    let mut threads = Vec::new();
    for k in 0..n {
        let plan = HostPlan {
            k,
            n,
            spool: sdir.join(format!("spool-{k}")),
            collection: collection.clone(),
            url: url.clone(),
            partitions: a.partitions,
            rate: rate as f64 / n as f64,
            secs: a.secs,
            boot,
        };
        let (sh, st) = (Arc::clone(&shared), Arc::clone(&start));
        threads.push(
            std::thread::Builder::new()
                .name(format!("host-{k}"))
                .spawn(move || host_thread(plan, sh, st))?,
        );
    }
    start.wait();
    let t_gen = Instant::now();

    // Watch: replica sizes against spool sizes, the collector's memory.
    let mut peak_backlog = 0u64;
    // The worst backlog in each tenth of the generation time: does it grow?
    let window = (a.secs / 10.0).max(1.0);
    let mut backlog_windows: Vec<u64> = Vec::new();
    let mut broker_peak_kib = 0u64;
    let mut complete_at: Option<Instant> = None;
    let mut failures: Vec<String> = Vec::new();
    let mut killed = false;
    loop {
        std::thread::sleep(Duration::from_millis(100));
        let exited = col.poll();
        col.watch_rss(t_gen, a.max_rss_mib, &mut killed, &mut failures);
        if let Some(b) = broker {
            if let Some(k) = status_kib(b.pid(), "VmHWM:") {
                broker_peak_kib = broker_peak_kib.max(k);
            }
        }
        let recs = shared.recs.lock().expect("lock").clone();
        let all_gen = shared.finished.load(Ordering::SeqCst) == n;
        let (mut spool_b, mut rep_b, mut known) = (0u64, 0u64, 0usize);
        for (rec, rep) in recs.iter().flatten() {
            spool_b += dir_bytes(rec);
            rep_b += dir_bytes(rep);
            known += 1;
        }
        let backlog = spool_b.saturating_sub(rep_b);
        peak_backlog = peak_backlog.max(backlog);
        let w = (t_gen.elapsed().as_secs_f64() / window) as usize;
        if backlog_windows.len() <= w {
            backlog_windows.resize(w + 1, 0);
        }
        backlog_windows[w] = backlog_windows[w].max(backlog);
        if all_gen && known == n && spool_b == rep_b {
            // Sizes equal once the trailer (the recording's end) arrived.
            let each_equal = recs
                .iter()
                .flatten()
                .all(|(r, p)| dir_bytes(r) == dir_bytes(p));
            if each_equal {
                complete_at = Some(Instant::now());
                break;
            }
        }
        if exited {
            failures.push("the collector exited before it had everything".into());
            break;
        }
        if all_gen {
            let end = shared
                .gen_end
                .lock()
                .expect("lock")
                .unwrap_or_else(Instant::now);
            if end.elapsed().as_secs_f64() > a.wait {
                failures.push(format!(
                    "the collection was still incomplete {} s after generation",
                    a.wait
                ));
                break;
            }
        }
        if threads.iter().all(|t| t.is_finished()) && !all_gen {
            break; // a host failed; its error is reported below
        }
    }
    let mut hosts = Vec::new();
    let mut host_err = None;
    for t in threads {
        match t.join() {
            Ok(Ok(h)) => hosts.push(h),
            Ok(Err(e)) => host_err = host_err.or(Some(e)),
            Err(_) => host_err = host_err.or(Some(anyhow::anyhow!("a host thread panicked"))),
        }
    }
    if let Some(e) = host_err {
        // Leave no collector behind.
        col.signal(libc::SIGKILL);
        while !col.poll() {
            std::thread::sleep(Duration::from_millis(20));
        }
        return Err(e);
    }
    let gen_end = shared
        .gen_end
        .lock()
        .expect("lock")
        .context("no host finished")?;
    let lag = complete_at.map(|c| c.saturating_duration_since(gen_end).as_secs_f64());
    let ship_done = hosts.iter().map(|h| h.shipped_at).max().expect("hosts");
    let ship_done_after = ship_done.saturating_duration_since(gen_end).as_secs_f64();

    // Stop the collector: it syncs, commits, brings the store up to date
    // and prints its counters.
    col.signal(libc::SIGTERM);
    let term_at = Instant::now();
    let wait_until = term_at + Duration::from_secs(600);
    let mut killed_late = false;
    while !col.poll() {
        if let Some(b) = broker {
            if let Some(k) = status_kib(b.pid(), "VmHWM:") {
                broker_peak_kib = broker_peak_kib.max(k);
            }
        }
        col.watch_rss(t_gen, a.max_rss_mib, &mut killed, &mut failures);
        if Instant::now() > wait_until && !killed_late {
            failures.push("the collector did not exit within 600 s of SIGTERM: killed".into());
            col.signal(libc::SIGKILL);
            killed_late = true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let exit_at = Instant::now();
    let (status, cu, cs, maxrss) = col.done.expect("reaped");
    let mut out = String::new();
    if let Some(mut so) = stdout {
        let _ = so.read_to_string(&mut out);
    }
    drop(col.child);
    let cj: Value = out
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or(Value::Null);
    if cj.is_null() {
        failures.push(format!(
            "no JSON from the collector (exit status {status}): {}",
            tail(&fs::read_to_string(&col_log).unwrap_or_default(), 5)
        ));
    } else if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
        failures.push(format!("the collector exited with status {status}"));
    }

    let busy = machine::busy_cpu_secs() - busy0;
    let agents_cpu = self_cpu() - self0;
    let broker_cpu = broker.map_or(0.0, |b| proc_cpu(b.pid())) - broker_cpu0;
    let foreign = (busy - agents_cpu - broker_cpu - cu - cs).max(0.0);
    let load1 = machine::loadavg();
    let rustc_seen = rustc0 || machine::rustc_running();
    let step_wall = t_step.elapsed().as_secs_f64();

    // No loss, no duplicate: each spool recording has a replica with the
    // same chain head and event count, and nothing else is in the collection.
    let mut generated = 0u64;
    let mut in_replicas = 0u64;
    let mut host_j = Vec::new();
    for h in &hosts {
        generated += h.summary.events;
        let vs =
            tomo_log::verify(&h.rec).with_context(|| format!("verifying {}", h.rec.display()))?;
        let vr = if h.replica.exists() {
            Some(tomo_log::verify(&h.replica)?)
        } else {
            None
        };
        let same = vr.as_ref().is_some_and(|r| {
            r.ok()
                && vs.ok()
                && r.chain_head == vs.chain_head
                && r.events == vs.events
                && r.recording_id == vs.recording_id
        });
        if let Some(r) = &vr {
            in_replicas += r.events;
        }
        if !same {
            failures.push(format!(
                "{}: replica {} does not match its spool recording (spool {} events, head {}; replica {})",
                h.name,
                h.replica.display(),
                vs.events,
                vs.chain_head,
                vr.as_ref().map_or("missing".to_owned(), |r| format!(
                    "{} events, head {}, finished {}, damage {:?}",
                    r.events, r.chain_head, r.finished, r.damage.as_ref().map(|d| d.to_string())
                ))
            ));
        }
        if let Some(e) = &h.ship_error {
            failures.push(format!("{}: shipping: {e}", h.name));
        }
        host_j.push(json!({
            "name": h.name, "events": h.summary.events, "spool_bytes": h.summary.bytes,
            "recording": h.rec, "replica": h.replica, "chain_head": vs.chain_head,
            "replica_matches": same, "generation_s": h.gen_secs,
            "max_behind_s": h.max_behind_s, "ship": h.ship,
        }));
    }
    let replicas = tomo_ingest::collection::recordings(&collection)
        .map(|v| v.len())
        .unwrap_or(0);
    if replicas != n {
        failures.push(format!(
            "{replicas} replicas in the collection for {n} spool recordings"
        ));
    }
    let c_events = cj["events"].as_u64();
    let in_store = cj["store_events"].as_u64().unwrap_or(0);
    if !cj.is_null() {
        if c_events != Some(generated) {
            failures.push(format!(
                "the collector added {} events, {generated} were generated",
                c_events.unwrap_or(0)
            ));
        }
        if in_store != generated {
            failures.push(format!(
                "the store holds {in_store} events, {generated} were generated"
            ));
        }
        let bad =
            cj["bad_records"].as_u64().unwrap_or(0) + cj["refused_blocks"].as_u64().unwrap_or(0);
        if bad > 0 {
            failures.push(format!("the collector refused {bad} records or blocks"));
        }
    }
    let achieved = generated as f64 / a.secs;
    if achieved < 0.95 * rate as f64 {
        failures.push(format!(
            "the generators reached only {achieved:.0} events/s (machine too busy to generate {rate})"
        ));
    }
    let ship_bytes: u64 = hosts.iter().map(|h| h.ship.bytes).sum();
    let ship_events: u64 = hosts.iter().map(|h| h.ship.events).sum();
    let spool_bytes: u64 = hosts.iter().map(|h| h.summary.bytes).sum();
    let retries: u64 = hosts.iter().map(|h| h.ship.retries).sum();
    let blocks: u64 = hosts.iter().map(|h| h.ship.blocks).sum();
    // The backlog during the run, as seconds of generated data: how far
    // behind the collector was at its worst.
    let byte_rate = spool_bytes as f64 / a.secs;
    let backlog_s = peak_backlog as f64 / byte_rate.max(1.0);
    match lag {
        Some(l) if l > a.max_lag => failures.push(format!(
            "lag {l:.2} s above {} s: the collector does not keep up",
            a.max_lag
        )),
        _ => {}
    }
    if backlog_s > a.max_lag {
        failures.push(format!(
            "the collector was {backlog_s:.2} s behind during the run (above {} s)",
            a.max_lag
        ));
    }
    let store_bytes = fs::metadata(collection.join(tomo_ingest::collection::STORE))
        .map(|m| m.len())
        .unwrap_or(0);
    // What the collector does after SIGTERM is mostly its last store update.
    let final_index = exit_at.saturating_duration_since(term_at).as_secs_f64();
    let peak = maxrss.max(col.peak_rss_kib);
    let ok = failures.is_empty();
    let verdict = if ok {
        "sustained".to_owned()
    } else {
        format!("NOT sustained ({} reasons)", failures.len())
    };
    let j = json!({
        "target_events_per_s": rate,
        "achieved_events_per_s": achieved,
        "events_generated": generated,
        "events_in_replicas": in_replicas,
        "events_in_store": in_store,
        "events_lost": generated.saturating_sub(in_replicas),
        "lag_s": lag,
        "ship_done_after_s": ship_done_after,
        "peak_backlog_bytes": peak_backlog,
        "peak_backlog_s": backlog_s,
        "backlog_window_s": window,
        "peak_backlog_s_per_window": backlog_windows
            .iter()
            .map(|b| (*b as f64 / byte_rate.max(1.0) * 100.0).round() / 100.0)
            .collect::<Vec<_>>(),
        "collector_stop_s": final_index,
        "collector_peak_rss_kib": peak,
        "collector_rss_samples_kib": thin(&col.rss_samples, 60),
        "collector_cpu_user_s": cu, "collector_cpu_sys_s": cs,
        "collector_cpu_us_per_event": (cu + cs) * 1e6 / generated.max(1) as f64,
        "collector": cj,
        "broker_peak_rss_kib": broker_peak_kib,
        "broker_cpu_s": broker_cpu,
        "agents_cpu_s": agents_cpu,
        "shipper_retries": retries,
        "blocks_shipped": blocks,
        "wire_bytes_per_event": ship_bytes as f64 / ship_events.max(1) as f64,
        "spool_bytes_per_event": spool_bytes as f64 / generated.max(1) as f64,
        "store_bytes": store_bytes,
        "store_bytes_per_event": store_bytes as f64 / generated.max(1) as f64,
        "generator_max_behind_s": hosts.iter().map(|h| h.max_behind_s).fold(0.0, f64::max),
        "hosts": host_j,
        "step_wall_s": step_wall,
        "machine_busy_cpu_s": busy,
        "foreign_cpu_s": foreign,
        "loadavg_1m_start": load0, "loadavg_1m_end": load1,
        "rustc_seen": rustc_seen,
        "failures": failures,
        "verdict": verdict,
    });
    if !a.keep {
        let _ = fs::remove_dir_all(&sdir);
    }
    Ok(Step { j, ok })
}

/// At most `n` evenly spaced samples, each [seconds, KiB].
fn thin(v: &[(f64, u64)], n: usize) -> Vec<Value> {
    let step = v.len().div_ceil(n.max(1)).max(1);
    v.iter()
        .step_by(step)
        .map(|(t, k)| json!([(t * 10.0).round() / 10.0, k]))
        .collect()
}
