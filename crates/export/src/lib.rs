//! Exports of the provenance graph, or of a part of it (the nodes of a query
//! answer): W3C PROV-JSON and Graphviz DOT. Both writers stream to an
//! `io::Write` in a few passes over the graph and hold nothing per node
//! beyond the selection mask, so they work on large graphs.

mod dot;
mod prov;

pub use dot::write_dot;
pub use prov::{write_prov_json, TOMO_NS};

use std::io;
use tomo_store::{EdgeId, Graph, NodeId};

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("writing the export failed: {0}")]
    Io(#[from] io::Error),
    #[error("unknown export format {0:?}: use prov-json or dot")]
    UnknownFormat(String),
}

/// Export formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// W3C PROV-JSON (<https://www.w3.org/Submission/prov-json/>).
    ProvJson,
    /// Graphviz DOT.
    Dot,
}

impl std::str::FromStr for Format {
    type Err = ExportError;
    fn from_str(s: &str) -> Result<Format, ExportError> {
        match s {
            "prov-json" | "prov" | "provjson" => Ok(Format::ProvJson),
            "dot" | "graphviz" => Ok(Format::Dot),
            _ => Err(ExportError::UnknownFormat(s.into())),
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
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExportStats {
    /// PROV entities (object versions), or DOT object nodes.
    pub entities: usize,
    /// PROV activities (process versions), or DOT process nodes.
    pub activities: usize,
    /// PROV agents (users).
    pub agents: usize,
    /// Relations (PROV) or edges (DOT) written from graph edges.
    pub relations: usize,
}

/// Write `sel` of `g` in `format`.
pub fn export<W: io::Write>(
    g: &Graph,
    sel: &Selection,
    format: Format,
    w: W,
) -> Result<ExportStats, ExportError> {
    match format {
        Format::ProvJson => write_prov_json(g, sel, w),
        Format::Dot => write_dot(g, sel, w),
    }
}

/// RFC3339 / xsd:dateTime in UTC with nanoseconds.
pub(crate) fn datetime(ns: u64) -> String {
    use time::format_description::well_known::Rfc3339;
    time::OffsetDateTime::from_unix_timestamp_nanos(ns as i128)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".into())
}
