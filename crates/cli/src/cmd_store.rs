//! `tomo index` (build or update the persistent store of a recording) and
//! `tomo stats` (counts, sizes, bytes per event, time span).

use crate::load;
use anyhow::{bail, Context, Result};
use clap::Args;
use serde::Serialize;
use std::path::{Path, PathBuf};
use tomo_ingest::index::{self, BadStore};
use tomo_store::{EdgeKind, EntityKind, Graph};

#[derive(Args)]
pub struct IndexArgs {
    /// The recording (file or segment directory).
    recording: PathBuf,
    /// The store to build or update (default: RECORDING.idx).
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// No progress display.
    #[arg(short, long)]
    quiet: bool,
}

#[derive(Args)]
pub struct StatsArgs {
    /// The recording (its store RECORDING.idx is used when present).
    recording: PathBuf,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub fn index(a: IndexArgs) -> Result<i32> {
    let out = a
        .output
        .clone()
        .unwrap_or_else(|| index::default_path(&a.recording));
    let bar = if a.quiet {
        indicatif::ProgressBar::hidden()
    } else {
        let b = indicatif::ProgressBar::new_spinner();
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} indexing: {human_pos} events ({per_sec}) {elapsed}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        b
    };
    let t = std::time::Instant::now();
    let mut last = 0u64;
    let (g, rep) = index::update(&a.recording, &out, BadStore::Rebuild, &mut |n| {
        if n >= last + 65_536 {
            bar.set_position(n);
            last = n;
        }
    })
    .with_context(|| format!("cannot index {}", a.recording.display()))?;
    // The process ends right after this command: freeing the graph's
    // millions of small allocations one by one cost a tenth of an index
    // (10 M events: about 3 s of 33), for memory the exit returns anyway.
    std::mem::forget(g);
    bar.finish_and_clear();
    if let Some(r) = &rep.rebuilt {
        eprintln!("tomo: note: rebuilding the store from the start: {r}");
    }
    if let Some(d) = &rep.damage {
        eprintln!("tomo: warning: {d}; the store covers the events before it");
    }
    if let Some(e) = rep.write_error {
        return Err(e).with_context(|| format!("cannot write the store {}", out.display()));
    }
    let secs = t.elapsed().as_secs_f64();
    match &rep.written {
        None => eprintln!(
            "tomo: {} is up to date ({} events)",
            out.display(),
            rep.meta.events
        ),
        Some(s) => eprintln!(
            "tomo: {}: {} events ({} new) in {:.2}s, {} bytes ({:.1} bytes/event)",
            out.display(),
            rep.meta.events,
            rep.events_added,
            secs,
            s.total,
            s.total as f64 / rep.meta.events.max(1) as f64
        ),
    }
    Ok(0)
}

#[derive(Serialize)]
struct Stats {
    recording: PathBuf,
    store: Option<PathBuf>,
    events: u64,
    entities: usize,
    processes: usize,
    files: usize,
    dirs: usize,
    sockets: usize,
    pipes: usize,
    other_objects: usize,
    nodes: usize,
    /// Nodes beyond each entity's first version.
    versions: usize,
    edges: usize,
    /// Events merged into flow edges (read/write/load/flow) and those edges:
    /// the reduction the ingest applies (CPR-style merging).
    flow_events: u64,
    flow_edges: usize,
    log_bytes: u64,
    store_bytes: Option<u64>,
    log_bytes_per_event: f64,
    store_bytes_per_event: Option<f64>,
    first_ns: Option<u64>,
    last_ns: Option<u64>,
    span_s: f64,
}

fn log_size(p: &Path) -> Result<u64> {
    let md = std::fs::metadata(p).with_context(|| format!("{}", p.display()))?;
    if !md.is_dir() {
        return Ok(md.len());
    }
    let mut n = 0;
    for e in std::fs::read_dir(p).with_context(|| format!("{}", p.display()))? {
        let e = e?;
        if e.file_name().to_string_lossy().ends_with(".tseg") {
            n += e.metadata()?.len();
        }
    }
    Ok(n)
}

pub fn stats(a: StatsArgs) -> Result<i32> {
    if !a.recording.exists() {
        bail!("{}: no such recording", a.recording.display());
    }
    let g: Graph = load::graph(&a.recording)?;
    let collection = tomo_ingest::collection::is_collection(&a.recording);
    let idx = if collection {
        a.recording.join(tomo_ingest::collection::STORE)
    } else {
        index::default_path(&a.recording)
    };
    let store_bytes = std::fs::metadata(&idx).ok().map(|m| m.len());
    let log_bytes = if collection {
        // Every host's replicas.
        let mut n = 0;
        for rel in tomo_ingest::collection::recordings(&a.recording)? {
            n += log_size(&a.recording.join(rel))?;
        }
        n
    } else {
        log_size(&a.recording)?
    };
    let count = |k: EntityKind| g.entities.iter().filter(|e| e.kind == k).count();
    let flows = g.edges.iter().filter(|e| {
        matches!(
            e.kind,
            EdgeKind::Read | EdgeKind::Write | EdgeKind::Load | EdgeKind::Flow
        )
    });
    let (flow_edges, flow_events) =
        flows.fold((0usize, 0u64), |(n, s), e| (n + 1, s + e.events as u64));
    let first_ns = (!g.entities.is_empty()).then(|| tomo_query::origin_ns(&g));
    let last_ns = first_ns.map(|_| tomo_query::end_ns(&g));
    let events = g.events_applied;
    let per = |b: u64| b as f64 / events.max(1) as f64;
    let processes = count(EntityKind::Process);
    let files = count(EntityKind::File);
    let dirs = count(EntityKind::Dir);
    let sockets = count(EntityKind::Socket);
    let pipes = count(EntityKind::Pipe);
    let s = Stats {
        recording: a.recording.clone(),
        store: store_bytes.map(|_| idx.clone()),
        events,
        entities: g.entities.len(),
        processes,
        files,
        dirs,
        sockets,
        pipes,
        other_objects: g.entities.len() - processes - files - dirs - sockets - pipes,
        nodes: g.nodes.len(),
        versions: g.nodes.len() - g.entities.len(),
        edges: g.edges.len(),
        flow_events,
        flow_edges,
        log_bytes,
        store_bytes,
        log_bytes_per_event: per(log_bytes),
        store_bytes_per_event: store_bytes.map(per),
        first_ns,
        last_ns,
        span_s: match (first_ns, last_ns) {
            (Some(f), Some(l)) => l.saturating_sub(f) as f64 / 1e9,
            _ => 0.0,
        },
    };
    if a.json {
        println!("{}", serde_json::to_string_pretty(&s)?);
        return Ok(0);
    }
    println!("recording   {}", s.recording.display());
    println!("events      {}", s.events);
    println!(
        "entities    {} ({} processes, {} files, {} dirs, {} sockets, {} pipes, {} other)",
        s.entities, s.processes, s.files, s.dirs, s.sockets, s.pipes, s.other_objects
    );
    println!(
        "graph       {} nodes ({} new versions), {} edges",
        s.nodes, s.versions, s.edges
    );
    println!(
        "reduction   {} flow events in {} flow edges ({:.2}x)",
        s.flow_events,
        s.flow_edges,
        s.flow_events as f64 / s.flow_edges.max(1) as f64
    );
    println!(
        "log         {} bytes ({:.1} bytes/event)",
        s.log_bytes, s.log_bytes_per_event
    );
    match (s.store_bytes, s.store_bytes_per_event) {
        (Some(b), Some(p)) => println!(
            "store       {} bytes ({:.1} bytes/event) in {}",
            b,
            p,
            idx.display()
        ),
        _ => println!("store       none (build one with `tomo index`)"),
    }
    println!("time span   {:.3} s", s.span_s);
    Ok(0)
}
