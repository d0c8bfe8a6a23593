//! `tomo export`: the whole graph as W3C PROV-JSON or Graphviz DOT. Also
//! used by `why`/`impact --export` for the subgraph of an answer.

use crate::load;
use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use tomo_export::{ExportStats, Format, Selection};
use tomo_store::Graph;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// W3C PROV-JSON.
    ProvJson,
    /// Graphviz DOT (render with `dot -Tsvg`).
    Dot,
}

impl From<ExportFormat> for Format {
    fn from(f: ExportFormat) -> Format {
        match f {
            ExportFormat::ProvJson => Format::ProvJson,
            ExportFormat::Dot => Format::Dot,
        }
    }
}

#[derive(Args)]
pub struct ExportArgs {
    /// The recording.
    recording: PathBuf,
    /// Output format.
    #[arg(long, value_enum)]
    format: ExportFormat,
    /// Output file (default: standard output).
    #[arg(short, long)]
    output: Option<PathBuf>,
}

pub fn run(a: ExportArgs) -> Result<i32> {
    let g = load::graph(&a.recording)?;
    write_export(&g, &Selection::all(), a.format, a.output.as_deref())?;
    Ok(0)
}

/// Export `sel` of `g` to `output` (a file, written whole then renamed into
/// place) or to standard output.
pub(crate) fn write_export(
    g: &Graph,
    sel: &Selection,
    format: ExportFormat,
    output: Option<&Path>,
) -> Result<()> {
    match output {
        Some(path) => {
            let tmp = path.with_file_name(format!(
                ".{}.tmp{}",
                path.file_name()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "export".into()),
                std::process::id()
            ));
            let file =
                File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
            let res = tomo_export::export(g, sel, format.into(), file)
                .map_err(anyhow::Error::from)
                .and_then(|s| {
                    std::fs::rename(&tmp, path)
                        .map(|_| s)
                        .map_err(anyhow::Error::from)
                });
            let stats: ExportStats = match res {
                Ok(s) => s,
                Err(e) => {
                    let _ = std::fs::remove_file(&tmp);
                    return Err(e.context(format!("cannot write {}", path.display())));
                }
            };
            eprintln!(
                "tomo: wrote {} ({} object versions, {} process versions, {} relations)",
                path.display(),
                stats.entities,
                stats.activities,
                stats.relations
            );
            Ok(())
        }
        None => {
            let stdout = io::stdout();
            match tomo_export::export(g, sel, format.into(), stdout.lock()) {
                Ok(_) => Ok(()),
                Err(tomo_export::ExportError::Io(e)) if e.kind() == io::ErrorKind::BrokenPipe => {
                    Ok(())
                }
                Err(e) => Err(e.into()),
            }
            .and_then(|_| {
                io::stdout()
                    .flush()
                    .or_else(ignore_broken_pipe)
                    .map_err(Into::into)
            })
        }
    }
}

pub(crate) fn ignore_broken_pipe(e: io::Error) -> io::Result<()> {
    if e.kind() == io::ErrorKind::BrokenPipe {
        Ok(())
    } else {
        Err(e)
    }
}
