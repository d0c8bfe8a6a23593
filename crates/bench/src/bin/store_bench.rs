//! `store_bench`: the persistent store (issue #4) on a synthetic,
//! heavy-tailed workload. For each size it writes a recording, then
//! measures, on one core: building the store from the recording (read log +
//! ingest + write store), the ingest alone, the store's bytes per event, the
//! time to open it, and bounded-depth backward-lineage latency over random
//! targets.
//!
//! Workload: long-lived daemons (Zipf-popular: the busiest has most of the
//! edges) serving connections from many network peers, writing logs and
//! reading data files; a stream of short processes (fork, exec a Zipf-chosen
//! binary, map the shared libraries everyone maps, read configs, write
//! outputs, sometimes through a pipe to a sibling) spawned by a shell.
//!
//! `--recording FILE` measures real recordings (`tomo record` output)
//! instead of synthetic ones. `--compare sqlite,duckdb,networkx` then asks
//! the same question of what a user would otherwise use: the ingested graph
//! is exported (nodes and edges as CSV), `store_compare.py` loads it into
//! SQLite, DuckDB and a NetworkX graph and runs the same bounded-depth
//! backward lineage (recursive CTE / BFS) on the same targets, checking
//! that every answer has the node set Tomo's `why` gives.

use anyhow::{bail, Context, Result};
use clap::Parser;
use std::io::{BufWriter, Write};
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;
use tomo_event::*;
use tomo_ingest::index::{self, BadStore};
use tomo_log::{RecordingMeta, Writer, WriterOptions};
use tomo_store::GraphRead;

#[derive(Parser)]
#[command(about = "Store benchmark: ingest rate, bytes/event, lineage latency (issue #4)")]
struct Args {
    /// Synthetic workload sizes in events, comma-separated (default
    /// 1000000,10000000 unless --recording is given).
    #[arg(long, value_delimiter = ',')]
    events: Vec<u64>,
    /// A real recording to measure (repeatable); it is only read: its store
    /// is written into --dir.
    #[arg(long)]
    recording: Vec<PathBuf>,
    /// Where to write the recordings and stores.
    #[arg(long, default_value = "/tmp/tomo-store-bench")]
    dir: PathBuf,
    /// Number of random lineage targets.
    #[arg(long, default_value_t = 1000)]
    targets: usize,
    /// Depth bounds of the lineage queries, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "3,5")]
    depth: Vec<usize>,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Keep the recordings and stores.
    #[arg(long)]
    keep: bool,
    /// Print the results as JSON.
    #[arg(long)]
    json: bool,
    /// Also load the same graph into these and ask them the same lineage
    /// question: comma-separated, of sqlite, duckdb, networkx.
    #[arg(long, value_delimiter = ',')]
    compare: Vec<String>,
    /// Depth of the compared lineage question.
    #[arg(long, default_value_t = 3)]
    compare_depth: usize,
    /// Compare whole node sets (not only their sizes) on this many targets.
    #[arg(long, default_value_t = 50)]
    check_sets: usize,
    /// Seconds each compared system may spend on its lineage queries; the
    /// targets not reached are reported (0: no limit).
    #[arg(long, default_value_t = 1800)]
    compare_budget_s: u64,
    /// Memory the whole run may use (MiB): NetworkX's load is abandoned,
    /// and reported, when this process and it together would exceed it.
    #[arg(long, default_value_t = 8192)]
    max_rss_mib: u64,
    /// Measure only what needs no whole graph in memory besides the index
    /// build: size, and lineage on the store read in place (skips the
    /// breakdown, the whole-store open and the in-memory queries; for
    /// stores whose graph fits in memory only once, e.g. 100 M events).
    #[arg(long)]
    in_place_only: bool,
    /// Reuse a synthetic recording left in --dir by an earlier run with
    /// --keep (same size and seed) instead of generating it again; with
    /// --in-place-only, also its store if it is up to date.
    #[arg(long)]
    reuse: bool,
}

const SYSTEMS: [&str; 3] = ["sqlite", "duckdb", "networkx"];

/// What one run measures: a synthetic recording of `n` events, or a real one.
enum Input {
    Synthetic(u64),
    Recording(PathBuf),
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, pct: u64) -> bool {
        self.below(100) < pct
    }
    /// Heavy-tailed index in 0..n (log-uniform, Zipf-like with s ~ 1).
    fn zipf(&mut self, n: u64) -> u64 {
        let u = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        ((n as f64).powf(u) as u64).saturating_sub(1).min(n - 1)
    }
}

const N_FILES: u64 = 200_000;
const N_BINS: u64 = 300;
const N_LIBS: u64 = 60;
const N_PEERS: u64 = 20_000;
const N_DAEMONS: u32 = 24;

fn file_obj(path: String, ino: u64) -> ObjRef {
    ObjRef {
        kind: ObjKind::File,
        dev: 2049,
        ino,
        path: Some(path),
    }
}

struct Conn {
    obj: ObjRef,
    sock: SockInfo,
}

struct Daemon {
    pr: ProcRef,
    conns: Vec<Conn>,
    log: ObjRef,
}

struct Short {
    pr: ProcRef,
    /// Remaining actions before exit.
    left: u32,
    pipe_out: Option<ObjRef>,
    pipe_in: Option<ObjRef>,
}

struct Gen {
    rng: Rng,
    t: u64,
    seq: u64,
    next_pid: u32,
    next_ino: u64,
    shell: ProcRef,
    daemons: Vec<Daemon>,
    shorts: Vec<Short>,
}

impl Gen {
    fn new(seed: u64) -> Gen {
        Gen {
            rng: Rng(seed | 1),
            t: 1_700_000_000_000_000_000,
            seq: 0,
            next_pid: 100,
            next_ino: 10_000_000,
            shell: ProcRef {
                pid: 50,
                tid: 50,
                ppid: 1,
                start_ticks: 500,
            },
            daemons: Vec::new(),
            shorts: Vec::new(),
        }
    }

    fn ev(&mut self, pr: ProcRef, op: Op, ret: i64, out: &mut dyn FnMut(Event)) {
        self.t += 1_000 + self.rng.below(20_000);
        out(Event {
            host: Id128([7; 16]),
            boot: Id128([9; 16]),
            seq: self.seq,
            ts_ns: self.t,
            proc: pr,
            cred: Cred::default(),
            op,
            ret,
        });
        self.seq += 1;
    }

    fn new_pid(&mut self, ppid: u32) -> ProcRef {
        self.next_pid += 1;
        ProcRef {
            pid: self.next_pid,
            tid: self.next_pid,
            ppid,
            start_ticks: self.next_pid as u64 * 3,
        }
    }

    fn shared_file(&mut self) -> ObjRef {
        let i = self.rng.zipf(N_FILES);
        file_obj(format!("/srv/data/{i}.dat"), 1_000 + i)
    }

    fn start(&mut self, out: &mut dyn FnMut(Event)) {
        let sh = self.shell;
        self.ev(
            sh,
            Op::Observed {
                exe: Some("/bin/bash".into()),
                argv: vec!["bash".into()],
                cwd: Some("/root".into()),
            },
            0,
            out,
        );
        for d in 0..N_DAEMONS {
            let pr = ProcRef {
                pid: 10 + d,
                tid: 10 + d,
                ppid: 1,
                start_ticks: 100 + d as u64,
            };
            self.ev(
                pr,
                Op::Observed {
                    exe: Some(format!("/usr/sbin/daemon{d}")),
                    argv: vec![format!("daemon{d}"), "-f".into()],
                    cwd: Some("/".into()),
                },
                0,
                out,
            );
            self.daemons.push(Daemon {
                pr,
                conns: Vec::new(),
                log: file_obj(format!("/var/log/daemon{d}.log"), 500 + d as u64),
            });
        }
    }

    fn step(&mut self, out: &mut dyn FnMut(Event)) {
        if self.rng.chance(55) {
            self.daemon_step(out)
        } else {
            self.short_step(out)
        }
    }

    fn daemon_step(&mut self, out: &mut dyn FnMut(Event)) {
        let d = self.rng.zipf(N_DAEMONS as u64) as usize;
        let pr = self.daemons[d].pr;
        let r = self.rng.below(100);
        if r < 4 || self.daemons[d].conns.is_empty() {
            // A new connection from a (heavy-tailed) peer.
            let peer = self.rng.zipf(N_PEERS);
            let ino = self.next_ino;
            self.next_ino += 1;
            let sock = SockInfo {
                domain: 2,
                sock_type: 1,
                protocol: 6,
                local: Some(SockAddr::Inet {
                    ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
                    port: 443 + d as u16,
                }),
                peer: Some(SockAddr::Inet {
                    ip: IpAddr::V4(Ipv4Addr::from(0x0b00_0000u32 + peer as u32)),
                    port: 40_000 + (ino % 20_000) as u16,
                }),
            };
            let obj = ObjRef {
                kind: ObjKind::Socket,
                dev: 8,
                ino,
                path: None,
            };
            let listen = ObjRef {
                kind: ObjKind::Socket,
                dev: 8,
                ino: 900 + d as u64,
                path: None,
            };
            self.ev(
                pr,
                Op::Accept {
                    call: Call::accept4,
                    fd: 3,
                    new_fd: 5,
                    listen_obj: listen,
                    obj: obj.clone(),
                    sock: sock.clone(),
                },
                5,
                out,
            );
            let conns = &mut self.daemons[d].conns;
            conns.push(Conn { obj, sock });
            if conns.len() > 16 {
                conns.remove(0);
            }
            return;
        }
        let n = self.daemons[d].conns.len() as u64;
        let c = (n - 1 - self.rng.zipf(n)) as usize;
        let count = 64 + self.rng.below(4000);
        let (obj, sock, dir, call) = {
            let conn = &self.daemons[d].conns[c];
            if r < 45 {
                (
                    conn.obj.clone(),
                    Some(conn.sock.clone()),
                    Dir::Read,
                    Call::recvfrom,
                )
            } else if r < 75 {
                (
                    conn.obj.clone(),
                    Some(conn.sock.clone()),
                    Dir::Write,
                    Call::sendto,
                )
            } else if r < 90 {
                (self.daemons[d].log.clone(), None, Dir::Write, Call::write)
            } else {
                (self.shared_file(), None, Dir::Read, Call::pread64)
            }
        };
        self.ev(
            pr,
            Op::Io {
                call,
                dir,
                fd: 5,
                obj,
                offset: if sock.is_some() { None } else { Some(0) },
                count,
                sock,
            },
            count as i64,
            out,
        );
    }

    fn short_step(&mut self, out: &mut dyn FnMut(Event)) {
        if self.shorts.len() < 8 {
            return self.spawn_short(out);
        }
        let i = self.rng.below(self.shorts.len() as u64) as usize;
        if self.shorts[i].left == 0 {
            let s = self.shorts.swap_remove(i);
            self.ev(
                s.pr,
                Op::Exit {
                    call: Call::exit_group,
                    code: 0,
                    signal: None,
                },
                0,
                out,
            );
            return;
        }
        self.shorts[i].left -= 1;
        let pr = self.shorts[i].pr;
        let r = self.rng.below(100);
        let count = 1 + self.rng.below(8192);
        let (dir, obj) = if r < 45 {
            (Dir::Read, self.shared_file())
        } else if r < 55 && self.shorts[i].pipe_in.is_some() {
            (
                Dir::Read,
                self.shorts[i]
                    .pipe_in
                    .clone()
                    .unwrap_or_else(ObjRef::unknown),
            )
        } else if r < 65 && self.shorts[i].pipe_out.is_some() {
            (
                Dir::Write,
                self.shorts[i]
                    .pipe_out
                    .clone()
                    .unwrap_or_else(ObjRef::unknown),
            )
        } else if r < 85 {
            (Dir::Write, self.shared_file())
        } else {
            // A new output file.
            let ino = self.next_ino;
            self.next_ino += 1;
            let f = file_obj(format!("/tmp/out/{ino}"), ino);
            self.ev(
                pr,
                Op::Open {
                    call: Call::openat,
                    fd: 4,
                    obj: f.clone(),
                    flags: 0o1101,
                    mode: 0o644,
                    created: true,
                },
                4,
                out,
            );
            (Dir::Write, f)
        };
        self.ev(
            pr,
            Op::Io {
                call: if dir == Dir::Read {
                    Call::read
                } else {
                    Call::write
                },
                dir,
                fd: 4,
                obj,
                offset: Some(0),
                count,
                sock: None,
            },
            count as i64,
            out,
        );
    }

    fn spawn_short(&mut self, out: &mut dyn FnMut(Event)) {
        let sh = self.shell;
        let pr = self.new_pid(sh.pid);
        self.ev(
            sh,
            Op::Spawn {
                call: Call::clone,
                kind: SpawnKind::Process,
                child: pr,
                flags: 0,
            },
            pr.pid as i64,
            out,
        );
        let b = self.rng.zipf(N_BINS);
        self.ev(
            pr,
            Op::Exec {
                call: Call::execve,
                exe: file_obj(format!("/usr/bin/tool{b}"), 100_000 + b),
                argv: vec![format!("tool{b}"), format!("--job={}", pr.pid)],
                env: None,
                cwd: None,
            },
            0,
            out,
        );
        // Shared libraries: libc always, then a few popular ones.
        let nlibs = 1 + self.rng.below(4);
        for k in 0..nlibs {
            let l = if k == 0 { 0 } else { self.rng.zipf(N_LIBS) };
            self.ev(
                pr,
                Op::Mmap {
                    call: Call::mmap,
                    fd: 3,
                    obj: file_obj(format!("/usr/lib/lib{l}.so"), 200_000 + l),
                    offset: 0,
                    len: 1 << 20,
                    prot: mm::PROT_READ | mm::PROT_EXEC,
                    flags: mm::MAP_PRIVATE,
                },
                0x7f00_0000,
                out,
            );
        }
        // Sometimes piped from the previous short process.
        let mut pipe_in = None;
        if self.rng.chance(20) {
            if let Some(prev) = self.shorts.last_mut() {
                let ino = self.next_ino;
                self.next_ino += 1;
                let p = ObjRef {
                    kind: ObjKind::Pipe,
                    dev: 13,
                    ino,
                    path: None,
                };
                prev.pipe_out = Some(p.clone());
                pipe_in = Some(p);
            }
        }
        let left = 2 + self.rng.zipf(200) as u32;
        self.shorts.push(Short {
            pr,
            left,
            pipe_out: None,
            pipe_in,
        });
    }
}

/// Writes a recording of `n` events; returns (bytes, seconds).
fn generate(path: &Path, n: u64, seed: u64) -> Result<(u64, f64)> {
    let t = Instant::now();
    let mut w = Writer::create(
        path,
        RecordingMeta {
            source: "synthetic".into(),
            ..Default::default()
        },
        WriterOptions {
            sync_interval: None,
            ..WriterOptions::default()
        },
    )?;
    let mut g = Gen::new(seed);
    let mut err = None;
    let mut emitted = 0u64;
    {
        let mut sink = |ev: Event| {
            if err.is_none() && emitted < n {
                if let Err(e) = w.append(&ev) {
                    err = Some(e);
                }
                emitted += 1;
            }
        };
        g.start(&mut sink);
        while g.seq < n {
            g.step(&mut sink);
        }
    }
    if let Some(e) = err {
        return Err(e.into());
    }
    w.finish()?;
    Ok((std::fs::metadata(path)?.len(), t.elapsed().as_secs_f64()))
}

fn max_rss_mib() -> f64 {
    // SAFETY: getrusage only writes into the struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer to a rusage struct.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    ru.ru_maxrss as f64 / 1024.0
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

/// Bytes of a recording: its file, or the segments of an agent's directory.
fn log_size(p: &Path) -> Result<u64> {
    let md = std::fs::metadata(p).with_context(|| p.display().to_string())?;
    if !md.is_dir() {
        return Ok(md.len());
    }
    let mut n = 0;
    for e in std::fs::read_dir(p).with_context(|| p.display().to_string())? {
        let e = e?;
        if e.file_name().to_string_lossy().ends_with(".tseg") {
            n += e.metadata()?.len();
        }
    }
    Ok(n)
}

fn run(a: &Args, input: &Input) -> Result<serde_json::Value> {
    std::fs::create_dir_all(&a.dir).with_context(|| a.dir.display().to_string())?;
    let (name, log, idx, gen_s) = match input {
        Input::Synthetic(n) => {
            let log = a.dir.join(format!("synthetic-{n}.tomo"));
            let idx = index::default_path(&log);
            if !(a.reuse && a.in_place_only) {
                let _ = std::fs::remove_file(&idx);
            }
            let gen_s = if a.reuse && log.exists() {
                eprintln!("store_bench: reusing {}", log.display());
                0.0
            } else {
                eprintln!("store_bench: generating {n} events into {}", log.display());
                generate(&log, *n, a.seed)?.1
            };
            (format!("synthetic-{n}"), log, idx, gen_s)
        }
        Input::Recording(p) => {
            let stem = p
                .file_name()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "recording".into());
            // The recording is only read; its store goes into --dir.
            let idx = a.dir.join(format!("{stem}.idx"));
            let _ = std::fs::remove_file(&idx);
            (stem, p.clone(), idx, 0.0)
        }
    };
    let log_bytes = log_size(&log)?;

    // An up-to-date store of an earlier --keep run: measure it in place
    // without building it again (at 100 M events the build takes 20 GB).
    if let (true, true, Input::Synthetic(n)) = (a.reuse, a.in_place_only, input) {
        if idx.exists() && index::is_current(&log, &idx).unwrap_or(false) {
            eprintln!(
                "store_bench: reusing the up-to-date store {}",
                idx.display()
            );
            let l = tomo_store::disk::Lazy::open(&idx, Default::default())?;
            let counts = (l.entity_count(), l.node_count(), l.edge_count());
            drop(l);
            return in_place_only(
                a,
                InPlaceRun {
                    name,
                    n: *n,
                    log_bytes,
                    idx: &idx,
                    log: &log,
                    input,
                    gen_s,
                    build_s: f64::NAN,
                    counts,
                    flows: (0, 0),
                },
            );
        }
    }

    // 1. Build the store from the recording: what `tomo index` does.
    eprintln!("store_bench: indexing {}", log.display());
    let t = Instant::now();
    let (g, rep) = index::update(&log, &idx, BadStore::Rebuild, &mut |_| {})
        .with_context(|| log.display().to_string())?;
    let build_s = t.elapsed().as_secs_f64();
    if let Some(e) = rep.write_error {
        return Err(e.into());
    }
    if let Some(d) = &rep.damage {
        eprintln!(
            "store_bench: {}: damaged log, measuring the intact part: {d:?}",
            log.display()
        );
    }
    let n = match input {
        Input::Synthetic(n) => *n,
        Input::Recording(_) => rep.events_before + rep.events_added,
    };
    if n == 0 {
        bail!("{}: no events", log.display());
    }
    let store_bytes = std::fs::metadata(&idx)?.len();
    let (entities, nodes, edges) = (g.entities.len(), g.nodes.len(), g.edges.len());
    // Reduction ratio: flow events per flow edge (the unreduced graph has
    // one edge per flow event; tests/reduction.rs shows the answers agree).
    let (flow_events, flow_edges) = g
        .edges
        .iter()
        .filter(|e| {
            use tomo_store::EdgeKind::*;
            matches!(e.kind, Read | Write | Load | Flow)
        })
        .fold((0u64, 0u64), |(ev, ed), e| (ev + e.events as u64, ed + 1));
    // Freed by the allocator piece by piece: minutes at 100 M events, and
    // the process needs the memory, not the time.
    drop(g);
    if a.in_place_only {
        return in_place_only(
            a,
            InPlaceRun {
                name,
                n,
                log_bytes,
                idx: &idx,
                log: &log,
                input,
                gen_s,
                build_s,
                counts: (entities, nodes, edges),
                flows: (flow_events, flow_edges),
            },
        );
    }

    // 2. Breakdown: reading (decompress + decode) alone, then ingest alone.
    let t = Instant::now();
    let mut read_n = 0u64;
    for ev in tomo_log::Reader::open(&log)? {
        ev?;
        read_n += 1;
    }
    let read_s = t.elapsed().as_secs_f64();
    let mut ing = tomo_ingest::Ingest::new();
    let mut apply_s = 0.0;
    let mut batch = Vec::with_capacity(1 << 16);
    let mut r = tomo_log::Reader::open(&log)?;
    loop {
        batch.clear();
        for ev in r.by_ref().take(1 << 16) {
            batch.push(ev?);
        }
        if batch.is_empty() {
            break;
        }
        let t = Instant::now();
        for ev in &batch {
            ing.apply(ev);
        }
        apply_s += t.elapsed().as_secs_f64();
    }
    let t = Instant::now();
    let state = ing.save_state();
    let g = ing.into_graph();
    let tmp = a.dir.join("write-only.idx");
    tomo_store::disk::write(
        &tmp,
        &g,
        &tomo_store::disk::Extra {
            ingest_state: state,
            ..Default::default()
        },
    )?;
    let write_s = t.elapsed().as_secs_f64();
    let _ = std::fs::remove_file(&tmp);
    drop(g);

    // 3. Open the store and ask backward-lineage questions.
    let t = Instant::now();
    let opened = tomo_store::disk::open(&idx)?;
    let open_s = t.elapsed().as_secs_f64();
    let sections = sections_json(&opened.sizes);
    let g = opened.graph;
    if g.entities.is_empty() {
        bail!("{}: the graph has no entities", log.display());
    }
    let targets = pick_targets(a, &g);
    let mut lineage = Vec::new();
    for &depth in &a.depth {
        let opts = cli_why(depth);
        // The same targets for every depth.
        let mut lat = Vec::with_capacity(targets.len());
        let mut tree_nodes = 0usize;
        for &e in &targets {
            let t = Instant::now();
            let tree = tomo_query::why(&g, e, &opts);
            lat.push(t.elapsed().as_secs_f64() * 1e3);
            tree_nodes += tree.graph_nodes().count();
        }
        lat.sort_by(|a, b| a.total_cmp(b));
        // The same questions on the store read in place, as `tomo why`
        // asks them: a fresh reader per target (open + why + JSON answer).
        let InPlace {
            lat_ms: lazy,
            nodes: lazy_nodes,
            chunks,
            ..
        } = why_in_place(&idx, &targets, &opts)?;
        if lazy_nodes != tree_nodes {
            bail!("the store read in place answered {lazy_nodes} nodes, in memory {tree_nodes}");
        }
        lineage.push(serde_json::json!({
            "depth": depth,
            "targets": targets.len(),
            "p50_ms": pct(&lat, 0.5),
            "p99_ms": pct(&lat, 0.99),
            "max_ms": pct(&lat, 1.0),
            "mean_tree_nodes": tree_nodes as f64 / targets.len().max(1) as f64,
            "in_place_p50_ms": pct(&lazy, 0.5),
            "in_place_p99_ms": pct(&lazy, 0.99),
            "in_place_mean_chunks": chunks as f64 / targets.len().max(1) as f64,
        }));
    }
    let rss = max_rss_mib();
    let per = |b: u64| b as f64 / n as f64;
    let mut report = serde_json::json!({
        "input": name,
        "events": n,
        "read_events": read_n,
        "entities": entities, "nodes": nodes, "edges": edges,
        "flow_events": flow_events, "flow_edges": flow_edges,
        "reduction_ratio": flow_events as f64 / flow_edges.max(1) as f64,
        "generate_s": gen_s,
        "log_bytes": log_bytes, "log_bytes_per_event": per(log_bytes),
        "store_bytes": store_bytes, "store_bytes_per_event": per(store_bytes),
        "index_build_s": build_s, "index_build_events_per_s": n as f64 / build_s,
        "read_only_s": read_s, "read_only_events_per_s": n as f64 / read_s,
        "ingest_only_s": apply_s, "ingest_only_events_per_s": n as f64 / apply_s,
        "store_write_s": write_s,
        "open_s": open_s,
        "lineage": lineage,
        "max_rss_mib": rss,
        "sections": sections,
    });

    // 4. The same question asked of SQLite, DuckDB and NetworkX.
    if !a.compare.is_empty() {
        let dir = a.dir.join(format!("compare-{name}"));
        let tomo = compare_prepare(a, &g, &targets, &dir)?;
        drop(g);
        report["compare"] = compare_run(a, n, &report, tomo, &dir)?;
        if !a.keep {
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
    if !a.keep {
        if let Input::Synthetic(_) = input {
            let _ = std::fs::remove_file(&log);
        }
        let _ = std::fs::remove_file(&idx);
    }
    Ok(report)
}

/// The lineage targets: entities chosen uniformly (seeded), the same for
/// every depth and every compared system.
fn pick_targets(a: &Args, g: &tomo_store::Graph) -> Vec<u32> {
    pick_targets_of(a, g.entities.len())
}

fn pick_targets_of(a: &Args, entities: usize) -> Vec<u32> {
    let mut rng = Rng(a.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    (0..a.targets)
        .map(|_| rng.below(entities as u64) as u32)
        .collect()
}

/// `why --depth D` as the CLI asks it (with its default node cap).
fn cli_why(depth: usize) -> tomo_query::LineageOptions {
    tomo_query::LineageOptions {
        depth: Some(depth),
        at: None,
        max_nodes: tomo_query::DEFAULT_MAX_NODES,
    }
}

/// The store's sections as JSON: tag, stored and raw bytes.
fn sections_json(sizes: &tomo_store::disk::Sizes) -> Vec<serde_json::Value> {
    sizes
        .sections
        .iter()
        .map(|(tag, stored, raw)| serde_json::json!({"section": tag, "bytes": stored, "raw_bytes": raw}))
        .collect()
}

/// `why` on the store read in place, as `tomo why` asks it: a fresh
/// reader per target (open + why + JSON answer).
struct InPlace {
    /// Latencies (ms), sorted.
    lat_ms: Vec<f64>,
    /// Graph nodes in all answers (folded versions included).
    nodes: usize,
    chunks: u64,
    /// Answers cut by the node cap.
    capped: usize,
}

fn why_in_place(idx: &Path, targets: &[u32], opts: &tomo_query::LineageOptions) -> Result<InPlace> {
    let mut r = InPlace {
        lat_ms: Vec::with_capacity(targets.len()),
        nodes: 0,
        chunks: 0,
        capped: 0,
    };
    for &e in targets {
        let t = Instant::now();
        let l = tomo_store::disk::Lazy::open(idx, Default::default())?;
        let tree = tomo_query::why(&l, e, opts);
        tree.write_json(&l, &mut std::io::sink())?;
        r.lat_ms.push(t.elapsed().as_secs_f64() * 1e3);
        r.nodes += tree.graph_nodes().count();
        r.capped += tree.capped as usize;
        r.chunks += l.chunks_read();
        if let Some(err) = l.error() {
            bail!("{err}");
        }
    }
    r.lat_ms.sort_by(|a, b| a.total_cmp(b));
    Ok(r)
}

/// What the index build of an `--in-place-only` run measured.
struct InPlaceRun<'a> {
    name: String,
    n: u64,
    log_bytes: u64,
    idx: &'a Path,
    log: &'a Path,
    input: &'a Input,
    gen_s: f64,
    build_s: f64,
    counts: (usize, usize, usize),
    flows: (u64, u64),
}

/// `--in-place-only`: size and lineage on the store read in place (what
/// `tomo why` does on an up-to-date store), with the CLI's node cap and,
/// for the answer sizes, without it.
fn in_place_only(a: &Args, r: InPlaceRun) -> Result<serde_json::Value> {
    let n = r.n;
    let store_bytes = std::fs::metadata(r.idx)?.len();
    let probe = tomo_store::disk::Lazy::open(r.idx, Default::default())?;
    let targets = pick_targets_of(a, probe.entity_count());
    let sections = sections_json(probe.sizes());
    drop(probe);
    let mut lineage = Vec::new();
    for &depth in &a.depth {
        let opts = cli_why(depth);
        eprintln!(
            "store_bench: why --depth {depth} in place on {} targets",
            targets.len()
        );
        let InPlace {
            lat_ms: lazy,
            nodes,
            chunks,
            capped,
        } = why_in_place(r.idx, &targets, &opts)?;
        let k = targets.len().max(1) as f64;
        lineage.push(serde_json::json!({
            "depth": depth,
            "targets": targets.len(),
            "in_place_p50_ms": pct(&lazy, 0.5),
            "in_place_p99_ms": pct(&lazy, 0.99),
            "in_place_max_ms": pct(&lazy, 1.0),
            "in_place_mean_chunks": chunks as f64 / k,
            "mean_tree_nodes": nodes as f64 / k,
            "capped_answers": capped,
        }));
    }
    let per = |b: u64| b as f64 / n as f64;
    let (entities, nodes, edges) = r.counts;
    let (flow_events, flow_edges) = r.flows;
    let report = serde_json::json!({
        "input": r.name,
        "events": n,
        "in_place_only": true,
        "entities": entities, "nodes": nodes, "edges": edges,
        "flow_events": flow_events, "flow_edges": flow_edges,
        "reduction_ratio": flow_events as f64 / flow_edges.max(1) as f64,
        "generate_s": r.gen_s,
        "log_bytes": r.log_bytes, "log_bytes_per_event": per(r.log_bytes),
        "store_bytes": store_bytes, "store_bytes_per_event": per(store_bytes),
        "index_build_s": r.build_s, "index_build_events_per_s": n as f64 / r.build_s,
        "lineage": lineage,
        "max_rss_mib": max_rss_mib(),
        "sections": sections,
    });
    if !a.keep {
        if let Input::Synthetic(_) = r.input {
            let _ = std::fs::remove_file(r.log);
        }
        let _ = std::fs::remove_file(r.idx);
    }
    Ok(report)
}

/// Tomo's side of the comparison, measured before the graph is dropped.
struct TomoAnswers {
    /// Latency of each uncapped `why` (ms), in target order.
    lat_ms: Vec<f64>,
    mean_nodes: f64,
    export_s: f64,
    export_bytes: u64,
}

/// Answers the compared question with Tomo (`why --depth D`, without the
/// node cap, since the other systems return whole answers), and writes
/// what the other systems load and check against:
/// - `nodes.csv`: `id,entity,version`, one graph node (entity version) a line;
/// - `edges.csv`: `src,dst,ts,last,kind`, one graph edge a line, data
///   flowing src → dst, `ts`/`last` the times of its first and last event
///   (merged repeats), `kind` as `EdgeKind::as_str` (`version` links two
///   versions of one entity);
/// - `targets.csv`: `entity,node,answer_nodes`: the start node (the
///   entity's latest version) and the size of Tomo's answer (distinct
///   graph nodes, folded versions included);
/// - `sets.txt`: Tomo's whole answer for the first `--check-sets` targets,
///   one line of node ids each.
fn compare_prepare(
    a: &Args,
    g: &tomo_store::Graph,
    targets: &[u32],
    dir: &Path,
) -> Result<TomoAnswers> {
    std::fs::create_dir_all(dir).with_context(|| dir.display().to_string())?;
    let create = |f: &str| -> Result<BufWriter<std::fs::File>> {
        let p = dir.join(f);
        Ok(BufWriter::with_capacity(
            1 << 20,
            std::fs::File::create(&p).with_context(|| p.display().to_string())?,
        ))
    };
    eprintln!(
        "store_bench: Tomo why --depth {} without the node cap on {} targets",
        a.compare_depth,
        targets.len()
    );
    let opts = tomo_query::LineageOptions {
        depth: Some(a.compare_depth),
        at: None,
        max_nodes: usize::MAX,
    };
    let mut tw = create("targets.csv")?;
    let mut sw = create("sets.txt")?;
    writeln!(tw, "entity,node,answer_nodes")?;
    let mut lat_ms = Vec::with_capacity(targets.len());
    let mut total = 0usize;
    for (i, &e) in targets.iter().enumerate() {
        let t = Instant::now();
        let tree = tomo_query::why(g, e, &opts);
        lat_ms.push(t.elapsed().as_secs_f64() * 1e3);
        let mut set: Vec<u32> = tree.graph_nodes().collect();
        set.sort_unstable();
        set.dedup();
        total += set.len();
        writeln!(tw, "{e},{},{}", tree.root().node, set.len())?;
        if i < a.check_sets {
            let line: Vec<String> = set.iter().map(|n| n.to_string()).collect();
            writeln!(sw, "{}", line.join(" "))?;
        }
    }
    tw.flush()?;
    sw.flush()?;

    eprintln!(
        "store_bench: exporting {} nodes and {} edges to {}",
        g.nodes.len(),
        g.edges.len(),
        dir.display()
    );
    let t = Instant::now();
    let mut nw = create("nodes.csv")?;
    writeln!(nw, "id,entity,version")?;
    for (i, n) in g.nodes.iter().enumerate() {
        writeln!(nw, "{i},{},{}", n.entity, n.version)?;
    }
    nw.flush()?;
    let mut ew = create("edges.csv")?;
    writeln!(ew, "src,dst,ts,last,kind")?;
    for e in &g.edges {
        writeln!(
            ew,
            "{},{},{},{},{}",
            e.src,
            e.dst,
            e.ts_ns,
            e.last_ns,
            e.kind.as_str()
        )?;
    }
    ew.flush()?;
    let export_s = t.elapsed().as_secs_f64();
    let export_bytes = ["nodes.csv", "edges.csv"]
        .iter()
        .map(|f| std::fs::metadata(dir.join(f)).map(|m| m.len()).unwrap_or(0))
        .sum();
    Ok(TomoAnswers {
        lat_ms,
        mean_nodes: total as f64 / targets.len().max(1) as f64,
        export_s,
        export_bytes,
    })
}

/// This process's resident memory now (MiB), from /proc.
fn rss_now_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Runs `store_compare.py` on the exported graph and sets each system's
/// figures next to Tomo's: `*_over_tomo` is the system's figure divided by
/// Tomo's (for the ingest rate above 1 means faster than Tomo; for bytes
/// and latency above 1 means Tomo is smaller or faster).
fn compare_run(
    a: &Args,
    n: u64,
    report: &serde_json::Value,
    tomo: TomoAnswers,
    dir: &Path,
) -> Result<serde_json::Value> {
    let mut lat = tomo.lat_ms.clone();
    lat.sort_by(|a, b| a.total_cmp(b));
    let (tp50, tp99) = (pct(&lat, 0.5), pct(&lat, 0.99));
    let f = |k: &str| report[k].as_f64().unwrap_or(0.0);
    let (tomo_rate, tomo_bpe) = (f("index_build_events_per_s"), f("store_bytes_per_event"));
    // Whatever this process still holds counts against the memory limit.
    let rss_mib = rss_now_mib();
    // Python checks its own size only now and then: leave it a margin.
    let py_limit = (a.max_rss_mib as f64 * 0.95 - rss_mib).max(256.0);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("store_compare.py");
    eprintln!(
        "store_bench: {} {} (this process holds {rss_mib:.0} MiB; Python may use {py_limit:.0} MiB)",
        script.display(),
        a.compare.join(",")
    );
    let out = Command::new("python3")
        .arg(&script)
        .arg("--dir")
        .arg(dir)
        .arg("--systems")
        .arg(a.compare.join(","))
        .arg("--depth")
        .arg(a.compare_depth.to_string())
        .arg("--events")
        .arg(n.to_string())
        .arg("--check-sets")
        .arg(a.check_sets.to_string())
        .arg("--budget-s")
        .arg(a.compare_budget_s.to_string())
        .arg("--max-rss-mib")
        .arg(format!("{py_limit:.0}"))
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .context("cannot run python3")?;
    if !out.status.success() {
        bail!("{} failed ({})", script.display(), out.status);
    }
    let mut py: serde_json::Value = serde_json::from_slice(&out.stdout)
        .with_context(|| format!("{}: output is not JSON", script.display()))?;
    let ratio = |x: f64, y: f64| if y > 0.0 { x / y } else { f64::NAN };
    if let Some(systems) = py["systems"].as_object_mut() {
        for (_, s) in systems.iter_mut() {
            let (load_s, bytes) = (s["load_s"].as_f64(), s["bytes"].as_f64());
            let (p50, p99) = (s["p50_ms"].as_f64(), s["p99_ms"].as_f64());
            let mut r = serde_json::Map::new();
            if let Some(load_s) = load_s {
                let rate = n as f64 / load_s;
                s["events_per_s"] = rate.into();
                r.insert("events_per_s".into(), ratio(rate, tomo_rate).into());
            }
            if let Some(b) = bytes {
                let bpe = b / n as f64;
                s["bytes_per_event"] = bpe.into();
                r.insert("bytes_per_event".into(), ratio(bpe, tomo_bpe).into());
            }
            // A system that ran out of its budget answered the first
            // `queries` targets: compare with Tomo on those same targets.
            let q = s["queries"].as_u64().unwrap_or(0) as usize;
            let (tp50, tp99) = if q > 0 && q < tomo.lat_ms.len() {
                let mut same = tomo.lat_ms[..q].to_vec();
                same.sort_by(|a, b| a.total_cmp(b));
                s["tomo_same_targets"] = serde_json::json!({
                    "targets": q, "p50_ms": pct(&same, 0.5), "p99_ms": pct(&same, 0.99),
                });
                (pct(&same, 0.5), pct(&same, 0.99))
            } else {
                (tp50, tp99)
            };
            if let Some(p) = p50 {
                r.insert("p50".into(), ratio(p, tp50).into());
            }
            if let Some(p) = p99 {
                r.insert("p99".into(), ratio(p, tp99).into());
            }
            s["over_tomo"] = r.into();
        }
    }
    Ok(serde_json::json!({
        "depth": a.compare_depth,
        "targets": tomo.lat_ms.len(),
        "tomo": {
            "load_s": f("index_build_s"),
            "events_per_s": tomo_rate,
            "ingest_only_events_per_s": f("ingest_only_events_per_s"),
            "bytes_per_event": tomo_bpe,
            "p50_ms": tp50, "p99_ms": tp99, "max_ms": pct(&lat, 1.0),
            "mean_answer_nodes": tomo.mean_nodes,
        },
        "export_s": tomo.export_s,
        "export_bytes": tomo.export_bytes,
        "rss_mib_before_python": rss_mib,
        "python": py,
    }))
}

fn print_compare(c: &serde_json::Value, order: &[String]) {
    let t = &c["tomo"];
    let g = |v: &serde_json::Value, k: &str| v[k].as_f64().unwrap_or(f64::NAN);
    println!(
        "compare: why --depth {} without the node cap over {} targets (mean {:.0} graph nodes per answer); graph exported in {:.2} s ({} bytes of CSV)",
        c["depth"],
        c["targets"],
        g(t, "mean_answer_nodes"),
        g(c, "export_s"),
        c["export_bytes"]
    );
    println!(
        "  {:<9} {:>9} {:>22} {:>20} {:>20} {:>20}  answers",
        "system",
        "load s",
        "events/s (x Tomo)",
        "bytes/ev (x Tomo)",
        "p50 ms (x Tomo)",
        "p99 ms (x Tomo)"
    );
    println!(
        "  {:<9} {:>9} {:>22.0} {:>20.2} {:>20.3} {:>20.3}  (index build; ingest alone {:.0} events/s)",
        "tomo",
        format!("{:.2}", g(t, "load_s")),
        g(t, "events_per_s"),
        g(t, "bytes_per_event"),
        g(t, "p50_ms"),
        g(t, "p99_ms"),
        g(t, "ingest_only_events_per_s"),
    );
    for (name, s) in order
        .iter()
        .filter_map(|n| Some((n, c["python"]["systems"].get(n)?)))
    {
        if let Some(err) = s["error"].as_str() {
            println!("  {name:<9} not measured: {err}");
            continue;
        }
        let r = &s["over_tomo"];
        let cell = |v: f64, x: f64, prec: usize| format!("{v:.prec$} ({x:.2}x)");
        println!(
            "  {:<9} {:>9.2} {:>22} {:>20} {:>20} {:>20}  {}/{} done, {} size and {}/{} set mismatches",
            name,
            g(s, "load_s"),
            cell(g(s, "events_per_s"), g(r, "events_per_s"), 0),
            cell(g(s, "bytes_per_event"), g(r, "bytes_per_event"), 2),
            cell(g(s, "p50_ms"), g(r, "p50"), 3),
            cell(g(s, "p99_ms"), g(r, "p99"), 3),
            s["queries"],
            c["targets"],
            s["size_mismatches"],
            s["set_mismatches"],
            s["sets_checked"],
        );
        if let Some(note) = s["note"].as_str() {
            println!("  {name:<9} note: {note}");
        }
        let same = &s["tomo_same_targets"];
        if !same.is_null() {
            println!(
                "  {name:<9} latency ratios against Tomo on the same {} targets (p50 {:.3} ms, p99 {:.3} ms)",
                same["targets"],
                g(same, "p50_ms"),
                g(same, "p99_ms")
            );
        }
    }
}

fn main() -> Result<()> {
    let mut a = Args::parse();
    for s in &a.compare {
        if !SYSTEMS.contains(&s.as_str()) {
            bail!(
                "--compare: unknown system {s:?} (known: {})",
                SYSTEMS.join(", ")
            );
        }
    }
    if a.targets == 0 {
        bail!("--targets must be at least 1");
    }
    if a.events.is_empty() && a.recording.is_empty() {
        a.events = vec![1_000_000, 10_000_000];
    }
    let inputs: Vec<Input> = a
        .events
        .iter()
        .map(|&n| Input::Synthetic(n))
        .chain(a.recording.iter().cloned().map(Input::Recording))
        .collect();
    let mut all = Vec::new();
    for input in &inputs {
        let r = run(&a, input)?;
        let n = r["events"].as_u64().unwrap_or(0).max(1);
        if !a.json {
            let f = |k: &str| r[k].as_f64().unwrap_or(0.0);
            match input {
                Input::Synthetic(n) => println!("== {} events (synthetic, seed {}) ==", n, a.seed),
                Input::Recording(p) => println!("== {} ({} events) ==", p.display(), n),
            }
            println!(
                "graph: {} entities, {} nodes, {} edges",
                r["entities"], r["nodes"], r["edges"]
            );
            println!(
                "reduction: {} flow events in {} flow edges = {:.2}x",
                r["flow_events"],
                r["flow_edges"],
                f("reduction_ratio")
            );
            println!(
                "index build (read log + ingest + write store): {:.2} s = {:.0} events/s",
                f("index_build_s"),
                f("index_build_events_per_s")
            );
            let in_place_only = r["in_place_only"].as_bool() == Some(true);
            if !in_place_only {
                println!(
                    "  of which: read+decode log {:.0} events/s, ingest alone {:.0} events/s, store write {:.2} s",
                    f("read_only_events_per_s"),
                    f("ingest_only_events_per_s"),
                    f("store_write_s")
                );
            }
            println!(
                "size: store {} bytes = {:.2} bytes/event (log {:.2} bytes/event)",
                r["store_bytes"],
                f("store_bytes_per_event"),
                f("log_bytes_per_event")
            );
            if !in_place_only {
                println!("open store: {:.3} s", f("open_s"));
            }
            for l in r["lineage"].as_array().into_iter().flatten() {
                let g = |k: &str| l[k].as_f64().unwrap_or(0.0);
                if in_place_only {
                    println!(
                        "why --depth {} over {} random targets, store read in place (open + why + JSON, node cap {}): p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms (mean {:.1} tree nodes, {} answers capped, {:.1} chunks decoded)",
                        l["depth"], l["targets"], tomo_query::DEFAULT_MAX_NODES, g("in_place_p50_ms"), g("in_place_p99_ms"), g("in_place_max_ms"), g("mean_tree_nodes"), l["capped_answers"], g("in_place_mean_chunks")
                    );
                    continue;
                }
                println!(
                    "why --depth {} over {} random targets: p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms (mean {:.1} tree nodes)",
                    l["depth"], l["targets"], g("p50_ms"), g("p99_ms"), g("max_ms"), g("mean_tree_nodes")
                );
                println!(
                    "  on the store read in place (open + why + JSON): p50 {:.3} ms, p99 {:.3} ms (mean {:.1} chunks decoded)",
                    g("in_place_p50_ms"), g("in_place_p99_ms"), g("in_place_mean_chunks")
                );
            }
            let secs: Vec<String> = r["sections"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|s| {
                    format!(
                        "{} {:.2}",
                        s["section"].as_str().unwrap_or("?"),
                        s["bytes"].as_f64().unwrap_or(0.0) / n as f64
                    )
                })
                .collect();
            println!("store bytes/event by section: {}", secs.join(", "));
            println!("peak RSS so far: {:.0} MiB", f("max_rss_mib"));
            if !r["compare"].is_null() {
                print_compare(&r["compare"], &a.compare);
            }
        }
        all.push(r);
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&all)?);
    }
    Ok(())
}
