//! Exports of the provenance graph, or of a part of it (the nodes of a query
//! answer): W3C PROV-JSON, PROV-N and PROV-O (Turtle), Graphviz DOT and SVG,
//! GraphML, and Neo4j `neo4j-admin import` CSV.
//!
//! The three PROV formats are written from one stream of records
//! (`record.rs`), so they carry the same elements, relations and
//! attributes; the PROV-O triples are also what `tomo sparql` queries
//! (`rdf::triples`). Every writer streams to an `io::Write` in a few passes
//! over the graph and holds little per node beyond the selection mask, so
//! exports work on large graphs.

mod classes;
mod dot;
mod graphml;
mod neo4j;
mod prov;
mod provn;
pub mod rdf;
mod record;

pub use classes::{local_name, ClassesError, ProgramClasses, DEFAULT_CLASSES};
pub use dot::{render_svg, write_dot, write_svg};
pub use graphml::write_graphml;
pub use neo4j::{write_neo4j, NEO4J_NODES, NEO4J_RELATIONSHIPS};
pub use prov::write_prov_json;
pub use provn::write_prov_n;
pub use rdf::write_turtle;
pub use record::{Ns, TOMOPROG_NS};

use std::io;
use tomo_store::{EdgeId, Graph, NodeId};

/// The namespace of the `tomo:` prefix: Tomo's identifiers and the terms
/// PROV lacks.
pub const TOMO_NS: &str = "urn:tomo:";

/// Sources of data derivations kept per writing process version (see
/// `record.rs`).
pub const DEFAULT_MAX_DERIVATIONS: usize = 256;

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("writing the export failed: {0}")]
    Io(#[from] io::Error),
    #[error(
        "unknown export format {0:?}: use prov-json, prov-n, turtle, dot, svg, graphml or neo4j"
    )]
    UnknownFormat(String),
    #[error("SVG needs Graphviz's `dot` program, which could not be run ({0}); install graphviz (apt install graphviz) or export --format dot and render it elsewhere")]
    GraphvizMissing(io::Error),
    #[error("Graphviz `dot` failed ({status}): {stderr}")]
    Graphviz { status: String, stderr: String },
    #[error("the neo4j export is two files (nodes and relationships): write it to a directory with -o DIR")]
    Neo4jNeedsDirectory,
}

/// Export formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// W3C PROV-JSON (<https://www.w3.org/Submission/prov-json/>).
    ProvJson,
    /// W3C PROV-N (<https://www.w3.org/TR/prov-n/>).
    ProvN,
    /// W3C PROV-O in Turtle (<https://www.w3.org/TR/prov-o/>).
    Turtle,
    /// Graphviz DOT.
    Dot,
    /// SVG, laid out by Graphviz `dot`.
    Svg,
    /// GraphML (<http://graphml.graphdrawing.org/>).
    GraphMl,
    /// CSV files for `neo4j-admin database import full`.
    Neo4j,
}

impl std::str::FromStr for Format {
    type Err = ExportError;
    fn from_str(s: &str) -> Result<Format, ExportError> {
        match s {
            "prov-json" | "prov" | "provjson" => Ok(Format::ProvJson),
            "prov-n" | "provn" => Ok(Format::ProvN),
            "turtle" | "ttl" | "prov-o" | "provo" => Ok(Format::Turtle),
            "dot" | "graphviz" => Ok(Format::Dot),
            "svg" => Ok(Format::Svg),
            "graphml" => Ok(Format::GraphMl),
            "neo4j" | "neo4j-csv" => Ok(Format::Neo4j),
            _ => Err(ExportError::UnknownFormat(s.into())),
        }
    }
}

/// Options shared by the writers.
pub struct ExportOptions<'a> {
    /// Program classes of activities (PROV formats, GraphML, Neo4j labels).
    pub classes: ProgramClasses,
    /// Sources of data derivations per writing process version; 0: no bound.
    pub max_derivations: usize,
    /// Called now and then with (items done, items in all) while writing.
    pub progress: Option<&'a (dyn Fn(u64, u64) + Sync)>,
}

impl Default for ExportOptions<'_> {
    fn default() -> Self {
        ExportOptions {
            classes: ProgramClasses::default(),
            max_derivations: DEFAULT_MAX_DERIVATIONS,
            progress: None,
        }
    }
}

/// Which nodes to export. Edges are exported when both ends are.
#[derive(Clone, Debug)]
pub struct Selection {
    mask: Option<Vec<bool>>,
}

impl Selection {
    /// The whole graph.
    pub fn all() -> Selection {
        Selection { mask: None }
    }

    /// These nodes (ids out of range are ignored; duplicates are fine).
    pub fn nodes(g: &Graph, ids: impl IntoIterator<Item = NodeId>) -> Selection {
        let mut mask = vec![false; g.nodes.len()];
        for n in ids {
            if let Some(m) = mask.get_mut(n as usize) {
                *m = true;
            }
        }
        Selection { mask: Some(mask) }
    }

    #[inline]
    pub fn contains(&self, n: NodeId) -> bool {
        match &self.mask {
            None => true,
            Some(m) => m.get(n as usize).copied().unwrap_or(false),
        }
    }

    /// Selected nodes in id order.
    pub fn node_ids<'a>(&'a self, g: &Graph) -> impl Iterator<Item = NodeId> + 'a {
        (0..g.nodes.len() as NodeId).filter(move |&n| self.contains(n))
    }

    /// Edges with both ends selected, in id order.
    pub fn edge_ids<'a>(&'a self, g: &'a Graph) -> impl Iterator<Item = EdgeId> + 'a {
        (0..g.edges.len() as EdgeId).filter(move |&e| {
            let x = &g.edges[e as usize];
            self.contains(x.src) && self.contains(x.dst)
        })
    }
}

/// What an export wrote.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ExportStats {
    /// PROV entities (object versions), or object nodes.
    pub entities: usize,
    /// PROV activities (process versions), or process nodes.
    pub activities: usize,
    /// PROV agents (users).
    pub agents: usize,
    /// Relations (PROV) or edges written from graph edges.
    pub relations: usize,
    /// PROV data derivations (`wasDerivedFrom` what the writer had read).
    pub derivations: usize,
    /// Written versions whose data derivations were cut to `max_derivations`.
    pub derivations_capped: usize,
}

/// Write `sel` of `g` in `format` to `w` (not for [`Format::Neo4j`], which
/// is two files: see [`write_neo4j`]).
pub fn export<W: io::Write>(
    g: &Graph,
    sel: &Selection,
    format: Format,
    opts: &ExportOptions,
    w: W,
) -> Result<ExportStats, ExportError> {
    match format {
        Format::ProvJson => write_prov_json(g, sel, opts, w),
        Format::ProvN => write_prov_n(g, sel, opts, w),
        Format::Turtle => write_turtle(g, sel, opts, w),
        Format::Dot => write_dot(g, sel, opts, w),
        Format::Svg => write_svg(g, sel, opts, w),
        Format::GraphMl => write_graphml(g, sel, opts, w),
        Format::Neo4j => Err(ExportError::Neo4jNeedsDirectory),
    }
}

/// Append `ns` nanoseconds since the epoch as an xsd:dateTime in UTC, with
/// as many fractional digits as needed (none for a whole second).
pub fn push_datetime(out: &mut String, ns: u64) {
    use std::fmt::Write;
    let secs = ns / 1_000_000_000;
    let frac = (ns % 1_000_000_000) as u32;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let _ = write!(
        out,
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    );
    if frac > 0 {
        let mut digits = format!("{frac:09}");
        while digits.ends_with('0') {
            digits.pop();
        }
        out.push('.');
        out.push_str(&digits);
    }
    out.push('Z');
}

/// [`push_datetime`] into a new string.
pub fn datetime(ns: u64) -> String {
    let mut s = String::with_capacity(30);
    push_datetime(&mut s, ns);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetimes_match_rfc3339() {
        use time::format_description::well_known::Rfc3339;
        for ns in [
            0u64,
            1,
            999_999_999,
            1_000_000_000,
            951_782_400_000_000_000, // 2000-02-29
            1_700_000_000_000_010_000,
            4_102_444_799_999_999_999, // 2099-12-31T23:59:59.999999999
            1_709_164_800_123_000_000, // 2024-02-29
        ] {
            let want = time::OffsetDateTime::from_unix_timestamp_nanos(ns as i128)
                .unwrap()
                .format(&Rfc3339)
                .unwrap();
            assert_eq!(datetime(ns), want, "{ns}");
        }
    }

    #[test]
    fn formats_parse() {
        for (s, f) in [
            ("prov-json", Format::ProvJson),
            ("prov-n", Format::ProvN),
            ("turtle", Format::Turtle),
            ("prov-o", Format::Turtle),
            ("dot", Format::Dot),
            ("svg", Format::Svg),
            ("graphml", Format::GraphMl),
            ("neo4j", Format::Neo4j),
        ] {
            assert_eq!(s.parse::<Format>().unwrap(), f);
        }
        assert!("pdf".parse::<Format>().is_err());
    }
}
