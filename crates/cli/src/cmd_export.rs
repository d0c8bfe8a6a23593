//! `tomo export`: the whole graph as W3C PROV (JSON, PROV-N, PROV-O
//! Turtle), Graphviz DOT or SVG, GraphML or Neo4j import CSV. Also used by
//! `why`/`impact`/`path --export` for the subgraph of an answer.

use crate::load;
use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use serde::Serialize;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;
use tomo_export::{ExportOptions, ExportStats, Format, ProgramClasses, Selection};
use tomo_store::Graph;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// W3C PROV-JSON.
    ProvJson,
    /// W3C PROV-N.
    ProvN,
    /// W3C PROV-O in Turtle (the view `tomo sparql` queries).
    #[value(alias = "ttl", alias = "prov-o")]
    Turtle,
    /// Graphviz DOT (render with `dot -Tsvg`).
    Dot,
    /// SVG laid out by Graphviz `dot` (must be installed).
    Svg,
    /// GraphML (networkx, Gephi, yEd, igraph).
    #[value(name = "graphml")]
    GraphMl,
    /// CSV for `neo4j-admin database import full`: -o names a directory.
    Neo4j,
}

impl From<ExportFormat> for Format {
    fn from(f: ExportFormat) -> Format {
        match f {
            ExportFormat::ProvJson => Format::ProvJson,
            ExportFormat::ProvN => Format::ProvN,
            ExportFormat::Turtle => Format::Turtle,
            ExportFormat::Dot => Format::Dot,
            ExportFormat::Svg => Format::Svg,
            ExportFormat::GraphMl => Format::GraphMl,
            ExportFormat::Neo4j => Format::Neo4j,
        }
    }
}

/// Options of the PROV views, shared by `export`, `--export` and `sparql`.
#[derive(Args, Clone, Debug, Default)]
pub struct ViewArgs {
    /// Program classes: a file of `CLASS: PROGRAM ...` lines; the programs
    /// it names take its classes instead of the built-in ones (README).
    #[arg(long, value_name = "FILE")]
    pub classes: Option<PathBuf>,
    /// Data derivations (`wasDerivedFrom` what the writing process version
    /// had read): at most the N most recent sources; 0: no bound.
    #[arg(long, value_name = "N", default_value_t = tomo_export::DEFAULT_MAX_DERIVATIONS)]
    pub max_derivations: usize,
}

impl ViewArgs {
    pub fn options(&self) -> Result<ExportOptions<'static>> {
        let classes = match &self.classes {
            None => ProgramClasses::default(),
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .with_context(|| format!("cannot read the class file {}", p.display()))?;
                ProgramClasses::with_overrides(&text)
                    .with_context(|| format!("bad class file {}", p.display()))?
            }
        };
        Ok(ExportOptions {
            classes,
            max_derivations: self.max_derivations,
            progress: None,
        })
    }
}

#[derive(Args)]
pub struct ExportArgs {
    /// The recording.
    recording: PathBuf,
    /// Output format.
    #[arg(long, value_enum)]
    format: ExportFormat,
    /// Output file (default: standard output); a directory for neo4j.
    #[arg(short, long)]
    output: Option<PathBuf>,
    #[command(flatten)]
    view: ViewArgs,
    /// Print a JSON summary (counts, bytes, seconds) on standard output.
    #[arg(long, requires = "output")]
    json: bool,
    /// No progress bar.
    #[arg(short, long)]
    quiet: bool,
}

pub fn run(a: ExportArgs) -> Result<i32> {
    let g = load::graph(&a.recording)?;
    let opts = a.view.options()?;
    let summary = write_export(
        &g,
        &Selection::all(),
        a.format,
        opts,
        a.output.as_deref(),
        !a.quiet,
    )?;
    if a.json {
        println!("{}", serde_json::to_string(&summary)?);
    }
    Ok(0)
}

/// What `tomo export --json` prints.
#[derive(Serialize)]
pub(crate) struct Summary {
    format: String,
    output: Option<PathBuf>,
    #[serde(flatten)]
    stats: ExportStats,
    bytes: u64,
    seconds: f64,
}

fn progress_bar(show: bool) -> indicatif::ProgressBar {
    if !show {
        return indicatif::ProgressBar::hidden();
    }
    let b = indicatif::ProgressBar::new(0);
    b.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} exporting [{bar:30}] {percent}% ({human_pos}/{human_len} node and edge visits) {elapsed}, eta {eta}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    b
}

/// `path` with `.tmp<pid>` added to its name, in the same directory.
fn temp_name(path: &Path) -> PathBuf {
    path.with_file_name(format!(
        ".{}.tmp{}",
        path.file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "export".into()),
        std::process::id()
    ))
}

/// Write `path` whole through a temporary file renamed into place.
fn write_file<T>(path: &Path, f: impl FnOnce(File) -> Result<T>) -> Result<T> {
    let tmp = temp_name(path);
    let file = File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    let res = f(file).and_then(|s| {
        std::fs::rename(&tmp, path)
            .map(|_| s)
            .map_err(anyhow::Error::from)
    });
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res.with_context(|| format!("cannot write {}", path.display()))
}

/// Export `sel` of `g` to `output` (a file, written whole then renamed into
/// place; a directory for neo4j) or to standard output.
pub(crate) fn write_export(
    g: &Graph,
    sel: &Selection,
    format: ExportFormat,
    opts: ExportOptions<'_>,
    output: Option<&Path>,
    show_progress: bool,
) -> Result<Summary> {
    let t = Instant::now();
    let bar = progress_bar(show_progress);
    let tick = |done: u64, total: u64| {
        bar.set_length(total);
        bar.set_position(done);
    };
    let opts = ExportOptions {
        progress: Some(&tick),
        ..opts
    };
    let mut bytes = 0u64;
    let stats = match (format, output) {
        (ExportFormat::Neo4j, None) => bail!(tomo_export::ExportError::Neo4jNeedsDirectory),
        (ExportFormat::Neo4j, Some(dir)) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create the directory {}", dir.display()))?;
            let (np, rp) = (
                dir.join(tomo_export::NEO4J_NODES),
                dir.join(tomo_export::NEO4J_RELATIONSHIPS),
            );
            let stats = write_file(&np, |nodes| {
                write_file(&rp, |rels| {
                    Ok(tomo_export::write_neo4j(g, sel, &opts, nodes, rels)?)
                })
            })?;
            bar.finish_and_clear();
            for p in [&np, &rp] {
                bytes += std::fs::metadata(p).map_or(0, |m| m.len());
            }
            eprintln!(
                "tomo: wrote {} and {} ({} nodes, {} relationships); import with\n  neo4j-admin database import full --nodes={} --relationships={} neo4j",
                np.display(),
                rp.display(),
                stats.entities + stats.activities,
                stats.relations,
                np.display(),
                rp.display()
            );
            stats
        }
        (_, Some(path)) => {
            let stats = write_file(path, |file| {
                Ok(tomo_export::export(g, sel, format.into(), &opts, file)?)
            })?;
            bar.finish_and_clear();
            bytes = std::fs::metadata(path).map_or(0, |m| m.len());
            let derived = if stats.derivations > 0 {
                format!(", {} data derivations", stats.derivations)
            } else {
                String::new()
            };
            eprintln!(
                "tomo: wrote {} ({} object versions, {} process versions, {} relations{derived})",
                path.display(),
                stats.entities,
                stats.activities,
                stats.relations,
            );
            stats
        }
        (_, None) => {
            let stdout = io::stdout();
            let stats = match tomo_export::export(g, sel, format.into(), &opts, stdout.lock()) {
                Ok(s) => s,
                Err(tomo_export::ExportError::Io(e)) if e.kind() == io::ErrorKind::BrokenPipe => {
                    ExportStats::default()
                }
                Err(e) => return Err(e.into()),
            };
            bar.finish_and_clear();
            io::stdout().flush().or_else(ignore_broken_pipe)?;
            stats
        }
    };
    if stats.derivations_capped > 0 {
        eprintln!(
            "tomo: note: {} written versions come from process versions that read more than {} objects; they derive from the most recent only (--max-derivations)",
            stats.derivations_capped, opts.max_derivations
        );
    }
    Ok(Summary {
        format: format
            .to_possible_value()
            .map_or_else(String::new, |v| v.get_name().to_string()),
        output: output.map(Path::to_path_buf),
        stats,
        bytes,
        seconds: t.elapsed().as_secs_f64(),
    })
}

pub(crate) fn ignore_broken_pipe(e: io::Error) -> io::Result<()> {
    if e.kind() == io::ErrorKind::BrokenPipe {
        Ok(())
    } else {
        Err(e)
    }
}
