//! Query commands: `why`, `impact`, `path`, `ps`, `files`, `timeline`, `graph`.
//!
//! Exit codes: 0 found, 1 target not found (or ambiguous) / no path,
//! 2 any other error (returned as `Err`, printed by `main`).

use crate::cmd_export::{self, ExportFormat, ViewArgs};
use crate::{load, timearg};
use anyhow::Result;
use clap::Args;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use tomo_export::Selection;
use tomo_query::{
    origin_ns, resolve, Direction, LineageOptions, QueryError, ResolveOptions, TextOptions,
    DEFAULT_K, DEFAULT_MAX_NODES,
};
use tomo_store::GraphRead;

#[derive(Args)]
pub struct LineageArgs {
    /// The recording.
    recording: PathBuf,
    /// A path (absolute, relative, or a suffix like out.tgz), a pid, a UUID,
    /// or a name like pipe:[123], socket:[456], 127.0.0.1:8080.
    target: String,
    /// Follow at most N levels of edges.
    #[arg(long, value_name = "N")]
    depth: Option<usize>,
    /// The target as it was at TIME: RFC3339, ns since the epoch, or +1.5s /
    /// +200ms from the start of the recording.
    #[arg(long, value_name = "TIME")]
    at: Option<String>,
    /// Print the answer as JSON.
    #[arg(long)]
    json: bool,
    /// Show every library instead of folding them into one line.
    #[arg(long)]
    all: bool,
    /// Show UUIDs.
    #[arg(long)]
    uuids: bool,
    /// Export the answer's subgraph instead of printing it.
    #[arg(long, value_enum, value_name = "FORMAT")]
    export: Option<ExportFormat>,
    /// File for --export (default: standard output; a directory for neo4j).
    #[arg(short, long, requires = "export")]
    output: Option<PathBuf>,
    #[command(flatten)]
    view: ViewArgs,
    /// Bound on the size of the answer (tree nodes).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_NODES)]
    max_nodes: usize,
}

#[derive(Args)]
pub struct PathArgs {
    /// The recording.
    recording: PathBuf,
    /// Where data came from (path, pid, UUID or name).
    a: String,
    /// Where it went.
    b: String,
    /// Print the answer as JSON.
    #[arg(long)]
    json: bool,
    /// Show UUIDs.
    #[arg(long)]
    uuids: bool,
    /// How many distinct paths to show, shortest first.
    #[arg(short = 'k', long, default_value_t = DEFAULT_K)]
    paths: usize,
    /// Export the subgraph of the paths instead of printing them.
    #[arg(long, value_enum, value_name = "FORMAT")]
    export: Option<ExportFormat>,
    /// File for --export (default: standard output; a directory for neo4j).
    #[arg(short, long, requires = "export")]
    output: Option<PathBuf>,
    #[command(flatten)]
    view: ViewArgs,
}

#[derive(Args)]
pub struct ListArgs {
    /// The recording.
    recording: PathBuf,
    /// Print JSON (the shapes of docs/CONTRACTS.md).
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct TimelineArgs {
    /// The recording.
    recording: PathBuf,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    /// Start (inclusive): RFC3339, ns since the epoch, or +1.5s from the start.
    #[arg(long, value_name = "TIME")]
    from: Option<String>,
    /// End (exclusive), same forms.
    #[arg(long, value_name = "TIME")]
    to: Option<String>,
}

/// Write to standard output through a buffer; a closed pipe (`| head`) is a
/// normal way to stop reading.
fn emit(f: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> Result<()> {
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    f(&mut out)
        .and_then(|_| out.flush())
        .or_else(cmd_export::ignore_broken_pipe)?;
    Ok(())
}

/// Exit 1 with the message for "not found" errors; others are errors (2).
fn not_found(e: QueryError) -> Result<i32> {
    not_found_to(e, &mut io::stderr())
}

/// [`not_found`], the message written to `err`.
fn not_found_to(e: QueryError, err: &mut dyn Write) -> Result<i32> {
    match e.exit_code() {
        1 => {
            writeln!(err, "tomo: {e}")?;
            Ok(1)
        }
        _ => Err(e.into()),
    }
}

fn parse_time<G: GraphRead + ?Sized>(s: Option<&str>, g: &G) -> Result<Option<u64>> {
    s.map(|s| timearg::parse(s, origin_ns(g))).transpose()
}

pub fn why(a: LineageArgs) -> Result<i32> {
    lineage(a, Direction::Why)
}

pub fn impact(a: LineageArgs) -> Result<i32> {
    lineage(a, Direction::Impact)
}

fn lineage(a: LineageArgs, dir: Direction) -> Result<i32> {
    // Backward lineage reads an up-to-date store in place: only the
    // versions it visits are decoded (the edges into a version are stored
    // with it; the edges out of one are not indexed, so `impact` loads the
    // graph). The answer is buffered until the reader has found no damage.
    if dir == Direction::Why && a.export.is_none() {
        if let Some(store) = load::in_place(&a.recording) {
            let (mut out, mut err) = (Vec::new(), Vec::new());
            let code = answer(&store, &a, dir, &mut out, &mut err)?;
            match store.take_error() {
                None => {
                    emit(|w| w.write_all(&out))?;
                    io::stderr().write_all(&err)?;
                    return Ok(code);
                }
                Some(e) => eprintln!(
                    "tomo: warning: {e}; loading the recording instead (rebuild the store with `tomo index {}`)",
                    a.recording.display()
                ),
            }
        }
    }
    let g = load::graph(&a.recording)?;
    if a.export.is_none() {
        let (mut out, mut err) = (io::stdout().lock(), io::stderr());
        let mut out = BufWriter::new(&mut out);
        let code = answer(&g, &a, dir, &mut out, &mut err);
        out.flush().or_else(cmd_export::ignore_broken_pipe)?;
        return code;
    }
    let at = parse_time(a.at.as_deref(), &g)?;
    let ropts = ResolveOptions {
        cwd: std::env::current_dir().ok(),
        at,
        prefer_latest: dir == Direction::Why,
    };
    let r = match resolve(&g, &a.target, &ropts) {
        Ok(r) => r,
        Err(e) => return not_found(e),
    };
    let opts = LineageOptions {
        depth: a.depth,
        at,
        max_nodes: a.max_nodes,
    };
    let mut tree = match dir {
        Direction::Why => tomo_query::why(&g, r.entity, &opts),
        Direction::Impact => tomo_query::impact(&g, r.entity, &opts),
    };
    tree.notes.splice(0..0, r.notes);
    if let Some(format) = a.export {
        let sel = Selection::nodes(&g, tree.graph_nodes());
        cmd_export::write_export(
            &g,
            &sel,
            format,
            a.view.options()?,
            a.output.as_deref(),
            false,
        )?;
        for n in &tree.notes {
            eprintln!("tomo: note: {n}");
        }
    }
    Ok(0)
}

/// `why`/`impact` on `g` (in memory or read in place), the answer written
/// to `out` and the notes to `err`. Returns the exit code.
fn answer<G: GraphRead + ?Sized>(
    g: &G,
    a: &LineageArgs,
    dir: Direction,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<i32> {
    let at = parse_time(a.at.as_deref(), g)?;
    let ropts = ResolveOptions {
        cwd: std::env::current_dir().ok(),
        at,
        prefer_latest: dir == Direction::Why,
    };
    let r = match resolve(g, &a.target, &ropts) {
        Ok(r) => r,
        Err(e) => return not_found_to(e, err),
    };
    let opts = LineageOptions {
        depth: a.depth,
        at,
        max_nodes: a.max_nodes,
    };
    let mut tree = match dir {
        Direction::Why => tomo_query::why(g, r.entity, &opts),
        Direction::Impact => tomo_query::impact(g, r.entity, &opts),
    };
    tree.notes.splice(0..0, r.notes);
    let res = if a.json {
        tree.write_json(g, out).and_then(|_| writeln!(out))
    } else {
        let topts = TextOptions {
            origin_ns: origin_ns(g),
            uuids: a.uuids,
            all: a.all,
        };
        tree.write_text(g, &topts, out)
    };
    res.or_else(cmd_export::ignore_broken_pipe)?;
    if !a.json {
        for n in &tree.notes {
            writeln!(err, "tomo: note: {n}")?;
        }
    }
    Ok(0)
}

pub fn path(a: PathArgs) -> Result<i32> {
    let g = load::graph(&a.recording)?;
    let cwd = std::env::current_dir().ok();
    let from = ResolveOptions {
        cwd: cwd.clone(),
        at: None,
        prefer_latest: false,
    };
    let to = ResolveOptions {
        cwd,
        at: None,
        prefer_latest: true,
    };
    let (ra, rb) = match (resolve(&g, &a.a, &from), resolve(&g, &a.b, &to)) {
        (Ok(ra), Ok(rb)) => (ra, rb),
        (Err(e), _) | (_, Err(e)) => return not_found(e),
    };
    for n in ra.notes.iter().chain(&rb.notes) {
        eprintln!("tomo: note: {n}");
    }
    let paths = match tomo_query::paths(&g, ra.entity, rb.entity, a.paths.max(1)) {
        Ok(p) => p,
        Err(e) => return not_found(e),
    };
    if let Some(format) = a.export {
        let nodes = paths.paths.iter().flat_map(|p| {
            std::iter::once(p.start).chain(p.edges.iter().flat_map(|&e| {
                let x = &g.edges[e as usize];
                [x.src, x.dst]
            }))
        });
        let sel = Selection::nodes(&g, nodes);
        cmd_export::write_export(
            &g,
            &sel,
            format,
            a.view.options()?,
            a.output.as_deref(),
            false,
        )?;
        return Ok(0);
    }
    if a.json {
        emit(|w| {
            tomo_query::write_paths_json(&g, &paths, w)?;
            writeln!(w)
        })?;
    } else {
        let topts = TextOptions {
            origin_ns: origin_ns(&g),
            uuids: a.uuids,
            all: false,
        };
        emit(|w| tomo_query::write_paths_text(&g, &paths, &topts, w))?;
    }
    Ok(0)
}

pub fn ps(a: ListArgs) -> Result<i32> {
    let g = load::graph(&a.recording)?;
    let topts = TextOptions {
        origin_ns: origin_ns(&g),
        ..TextOptions::default()
    };
    emit(|w| {
        if a.json {
            tomo_query::write_ps_json(&g, w)
        } else {
            tomo_query::write_ps_text(&g, &topts, w)
        }
    })?;
    Ok(0)
}

pub fn files(a: ListArgs) -> Result<i32> {
    let g = load::graph(&a.recording)?;
    let topts = TextOptions {
        origin_ns: origin_ns(&g),
        ..TextOptions::default()
    };
    emit(|w| {
        if a.json {
            tomo_query::write_files_json(&g, w)
        } else {
            tomo_query::write_files_text(&g, &topts, w)
        }
    })?;
    Ok(0)
}

pub fn timeline(a: TimelineArgs) -> Result<i32> {
    let g = load::graph(&a.recording)?;
    let from = parse_time(a.from.as_deref(), &g)?;
    let to = parse_time(a.to.as_deref(), &g)?;
    if let (Some(f), Some(t)) = (from, to) {
        anyhow::ensure!(f < t, "empty window: --from must be before --to");
    }
    let edges = tomo_query::timeline_edges(&g, from, to);
    let topts = TextOptions {
        origin_ns: origin_ns(&g),
        ..TextOptions::default()
    };
    emit(|w| {
        if a.json {
            tomo_query::write_timeline_json(&g, &edges, w)
        } else {
            tomo_query::write_timeline_text(&g, &edges, &topts, w)
        }
    })?;
    Ok(0)
}

pub fn graph(a: ListArgs) -> Result<i32> {
    let g = load::graph(&a.recording)?;
    emit(|w| {
        if a.json {
            tomo_query::write_graph_json(&g, w)
        } else {
            tomo_query::write_graph_text(&g, w)
        }
    })?;
    Ok(0)
}
