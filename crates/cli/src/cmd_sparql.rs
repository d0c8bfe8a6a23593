//! `tomo sparql RECORDING 'QUERY'`: SPARQL 1.1 over the PROV-O view (the
//! triples of `tomo export --format turtle`), with `--text` adding
//! `tomo:hasText` to the activities whose captured content held a string.

use crate::cmd_export::ViewArgs;
use crate::load;
use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use tomo_export::Selection;
use tomo_sparql::{OutputFormat, TextMatch, View};
use tomo_store::Graph;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned columns, prefixed names, literal values.
    Table,
    /// SPARQL 1.1 Query Results JSON.
    Json,
    Csv,
    Tsv,
    /// SPARQL Query Results XML.
    Xml,
}

#[derive(Args)]
pub struct SparqlArgs {
    /// The recording.
    recording: PathBuf,
    /// The query (`-` reads it from standard input). Prefixes prov:, rdf:,
    /// rdfs:, xsd:, tomo: and tomoprog: are predeclared.
    #[arg(required_unless_present = "file")]
    query: Option<String>,
    /// Read the query from FILE.
    #[arg(short, long, value_name = "FILE", conflicts_with = "query")]
    file: Option<PathBuf>,
    /// Add `tomo:hasText "STRING"` to every activity whose captured reads
    /// or writes contain STRING (needs a recording made with `tomo record
    /// --content`). Repeatable.
    #[arg(long, value_name = "STRING")]
    text: Vec<String>,
    /// Answer format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// Shorthand for --format json.
    #[arg(long, conflicts_with = "format")]
    json: bool,
    /// Leave out the qualified relation nodes (prov:qualifiedUsage …, with
    /// each relation's time and bytes): a third of the triples, for big
    /// recordings; the direct triples (prov:used …) stay.
    #[arg(long)]
    lean: bool,
    #[command(flatten)]
    view: ViewArgs,
}

fn query_text(a: &SparqlArgs) -> Result<String> {
    match (&a.query, &a.file) {
        (_, Some(f)) => {
            std::fs::read_to_string(f).with_context(|| format!("cannot read {}", f.display()))
        }
        (Some(q), None) if q == "-" => {
            let mut s = String::new();
            io::stdin()
                .read_to_string(&mut s)
                .context("cannot read the query from standard input")?;
            Ok(s)
        }
        (Some(q), None) => Ok(q.clone()),
        (None, None) => bail!("no query: give it as an argument or with --file"),
    }
}

/// The activities whose captured content contains each of `texts`, from
/// the recording's `Content` events.
fn text_matches(g: &Graph, recording: &Path, texts: &[String]) -> Result<Vec<TextMatch>> {
    if texts.is_empty() {
        return Ok(Vec::new());
    }
    let mut reader = tomo_log::Reader::open(recording)
        .with_context(|| format!("cannot read recording {}", recording.display()))?;
    let mut contents = 0u64;
    let mut damage = None;
    let events = std::iter::from_fn(|| match reader.next()? {
        Ok(ev) => {
            if matches!(ev.op, tomo_event::Op::Content { .. }) {
                contents += 1;
            }
            Some(ev)
        }
        Err(e) => {
            damage = Some(e.to_string());
            None
        }
    });
    let needles: Vec<&str> = texts.iter().map(String::as_str).collect();
    let found = tomo_query::activities_with_text(g, events, &needles)?;
    if let Some(d) = damage {
        eprintln!("tomo: warning: {d}; --text searched the content before it");
    }
    if contents == 0 {
        eprintln!(
            "tomo: note: {} holds no captured content (record with `tomo record --content`); --text matches nothing",
            recording.display()
        );
    }
    Ok(texts
        .iter()
        .zip(found)
        .map(|(t, activities)| TextMatch {
            text: t.clone(),
            activities,
        })
        .collect())
}

pub fn run(a: SparqlArgs) -> Result<i32> {
    let query = query_text(&a)?;
    let g = load::graph(&a.recording)?;
    let opts = a.view.options()?;
    let texts = text_matches(&g, &a.recording, &a.text)?;
    let view = View::build(&g, &Selection::all(), &opts, !a.lean, &texts)?;
    let answer = view.query(&query)?;
    let format = match (a.json, a.format) {
        (true, _) | (_, Format::Json) => OutputFormat::Json,
        (_, Format::Table) => OutputFormat::Table,
        (_, Format::Csv) => OutputFormat::Csv,
        (_, Format::Tsv) => OutputFormat::Tsv,
        (_, Format::Xml) => OutputFormat::Xml,
    };
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    match answer.write(format, &mut out) {
        Err(tomo_sparql::SparqlError::Io(e)) if e.kind() == io::ErrorKind::BrokenPipe => {}
        r => r?,
    }
    out.flush().or_else(crate::cmd_export::ignore_broken_pipe)?;
    Ok(0)
}
