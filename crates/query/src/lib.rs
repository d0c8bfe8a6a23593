//! Questions about a provenance graph: where did this come from (`why`),
//! what did it affect (`impact`), how did data get from A to B (`path`), and
//! the listings (`ps`, `files`, `timeline`, `graph`).
//!
//! Every answer has a JSON form (the shapes of `docs/CONTRACTS.md`, written
//! by streaming writers) and a text form for people. Nothing here panics on
//! user input: unknown or ambiguous targets are [`QueryError`]s.
//!
//! Traversals rely on the store's invariant that all incoming edges of a
//! version precede its outgoing ones, so following edges is time-respecting
//! by construction. Version chains (`version` edges) are folded so that the
//! user sees entities, not versions: going backwards from version `k` of an
//! entity, the in-edges of versions `0..=k` all precede it; going forwards
//! from version `k`, the out-edges of versions `k..` all follow it.

mod content;
mod lineage;
mod lists;
mod path;
mod resolve;
mod text;
mod view;

pub use content::{
    content_matches, ContentMatch, ContentPattern, ContentScanner, DEFAULT_REGEX_OVERLAP,
};
pub use lineage::{
    impact, lineage, pick_version, why, Direction, LineageOptions, Tree, TreeNode,
    DEFAULT_MAX_NODES,
};
pub use lists::{
    files_rows, graph_summary, ps_rows, timeline_edges, write_files_json, write_files_text,
    write_graph_json, write_graph_text, write_ps_json, write_ps_text, write_timeline_json,
    write_timeline_text, FileRow, GraphSummary, IoRow, MapRow, PeerRow, PsRow,
};
pub use path::{paths, write_paths_json, write_paths_text, CausalPath, Paths, DEFAULT_K};
pub use resolve::{resolve, ResolveOptions, Resolved};
pub use text::activities_with_text;
pub use view::{
    clean, describe, edge_phrase, end_ns, entity_path, exe_argv, fmt_argv, fmt_bytes, fmt_dur,
    fmt_rel, is_library_name, object_name, origin_ns, rfc3339, EdgeView, NodeRef, NodeView,
    TextOptions, ViaView,
};

/// Errors of the queries. [`QueryError::exit_code`] maps them to the CLI's
/// exit codes (1: nothing found, 2: anything else).
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The target matches nothing in the recording.
    #[error("{target:?} is not in the recording{}", suggest(.suggestions))]
    NotFound {
        target: String,
        suggestions: Vec<String>,
    },
    /// The target matches several entities; the user must choose.
    #[error("{target:?} is ambiguous, {hint}:\n{}", .candidates.iter().map(|c| format!("  {c}")).collect::<Vec<_>>().join("\n"))]
    Ambiguous {
        target: String,
        hint: String,
        candidates: Vec<String>,
    },
    /// `path`: B is not reachable from A.
    #[error("no causal path from {from} to {to} in the recording")]
    NoPath { from: String, to: String },
    /// A request that cannot be answered as asked.
    #[error("{0}")]
    Invalid(String),
}

impl QueryError {
    /// 1 when the target or path was not found (or not uniquely), 2 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            QueryError::NotFound { .. }
            | QueryError::Ambiguous { .. }
            | QueryError::NoPath { .. } => 1,
            QueryError::Invalid(_) => 2,
        }
    }
}

fn suggest(s: &[String]) -> String {
    if s.is_empty() {
        String::new()
    } else {
        format!("; closest known: {}", s.join(", "))
    }
}
