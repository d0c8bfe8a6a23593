//! `tomo sparql`: SPARQL 1.1 over the PROV-O view of a provenance graph.
//!
//! The view is exactly the triples of the Turtle export
//! (`tomo_export::rdf`), loaded into an in-memory oxigraph store, plus
//! `tomo:hasText "STRING"` on the activities whose captured reads or writes
//! contained STRING (computed by the caller, see [`TextMatch`]). The
//! prefixes `prov:`, `rdf:`, `rdfs:`, `xsd:`, `tomo:` and `tomoprog:` are
//! predeclared, so a query needs no PREFIX lines.
//!
//! This crate exists so that oxigraph's weight (a SPARQL parser, optimizer
//! and evaluator) is compiled only into the binary, not into the export or
//! query libraries that other tools link.

use oxigraph::model::vocab::xsd;
use oxigraph::model::{
    BlankNode, GraphName, Literal, NamedNode, NamedOrBlankNode, Quad, Term as OxTerm,
};
use oxigraph::sparql::results::{QueryResultsFormat, QueryResultsSerializer};
use oxigraph::sparql::{QueryResults, SparqlEvaluator};
use oxigraph::store::Store;
use std::io::{self, Write};
use tomo_export::rdf::{Object, Predicate, Subject, TripleSink};
use tomo_export::{datetime, ExportOptions, ExportStats, Ns, Selection};
use tomo_store::{Graph, NodeId};

/// Errors of the SPARQL view. The messages are for people: a syntax error
/// names the line and column.
#[derive(Debug, thiserror::Error)]
pub enum SparqlError {
    #[error("SPARQL syntax error: {0}")]
    Syntax(String),
    #[error("SPARQL evaluation failed: {0}")]
    Evaluation(String),
    #[error("building the RDF view failed: {0}")]
    View(String),
    #[error("writing the answer failed: {0}")]
    Io(#[from] io::Error),
}

/// The activities whose captured content contained `text`: they get
/// `tomo:hasText "text"`.
#[derive(Clone, Debug)]
pub struct TextMatch {
    pub text: String,
    pub activities: Vec<NodeId>,
}

/// The PROV-O view of a graph, ready for queries.
pub struct View {
    store: Store,
    /// What the view holds (as the Turtle export would report it).
    pub stats: ExportStats,
    /// Triples loaded (distinct triples may be fewer).
    pub triples: u64,
}

fn iri(ns: Ns, local: &str) -> NamedNode {
    // Locals are ids, encoded program names or validated class names, and
    // namespaces are constants: always valid IRIs.
    NamedNode::new_unchecked(format!("{}{local}", ns.iri()))
}

fn subject(s: Subject) -> NamedOrBlankNode {
    match s {
        Subject::Iri(ns, l) => iri(ns, l).into(),
        Subject::Blank(l) => BlankNode::new_unchecked(l).into(),
    }
}

fn object(o: Object) -> OxTerm {
    match o {
        Object::Iri(ns, l) => iri(ns, l).into(),
        Object::Blank(l) => BlankNode::new_unchecked(l).into(),
        Object::Str(s) => Literal::new_simple_literal(s).into(),
        Object::Int(i) => Literal::from(i).into(),
        Object::DateTime(t) => Literal::new_typed_literal(datetime(t), xsd::DATE_TIME).into(),
    }
}

/// Collects quads and hands them to the bulk loader in batches.
struct Loader<'s> {
    loader: oxigraph::store::BulkLoader<'s>,
    batch: Vec<Quad>,
    count: u64,
}

const BATCH: usize = 1 << 16;

impl Loader<'_> {
    fn push(&mut self, q: Quad) -> io::Result<()> {
        self.batch.push(q);
        self.count += 1;
        if self.batch.len() >= BATCH {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.loader
            .load_quads(self.batch.drain(..))
            .map_err(io::Error::other)
    }
}

impl TripleSink for Loader<'_> {
    fn triple(&mut self, s: Subject, p: Predicate, o: Object) -> io::Result<()> {
        self.push(Quad::new(
            subject(s),
            iri(p.0, p.1),
            object(o),
            GraphName::DefaultGraph,
        ))
    }
}

impl View {
    /// Build the view of `sel` of `g`: the Turtle export's triples, or
    /// without `qualified` only the direct triples of relations (loads
    /// about three times faster; relation times and attributes are gone).
    pub fn build(
        g: &Graph,
        sel: &Selection,
        opts: &ExportOptions,
        qualified: bool,
        texts: &[TextMatch],
    ) -> Result<View, SparqlError> {
        let view_err = |e: &dyn std::fmt::Display| SparqlError::View(e.to_string());
        let store = Store::new().map_err(|e| view_err(&e))?;
        let (stats, count) = {
            let mut l = Loader {
                loader: store.bulk_loader(),
                batch: Vec::with_capacity(BATCH),
                count: 0,
            };
            let stats = tomo_export::rdf::triples(g, sel, opts, qualified, &mut l)
                .map_err(|e| view_err(&e))?;
            let mut id = String::new();
            for t in texts {
                for &n in t.activities.iter().filter(|&&n| sel.contains(n)) {
                    id.clear();
                    tomo_export::rdf::node_local_id(g, n, &mut id);
                    l.push(Quad::new(
                        iri(Ns::Tomo, &id),
                        iri(Ns::Tomo, "hasText"),
                        Literal::new_simple_literal(&t.text),
                        GraphName::DefaultGraph,
                    ))?;
                }
            }
            l.flush()?;
            let count = l.count;
            l.loader.commit().map_err(|e| view_err(&e))?;
            (stats, count)
        };
        Ok(View {
            store,
            stats,
            triples: count,
        })
    }

    /// Run `query` (with the view's prefixes predeclared).
    pub fn query(&self, query: &str) -> Result<Answer, SparqlError> {
        let mut ev = SparqlEvaluator::new();
        for ns in Ns::ALL {
            ev = ev
                .with_prefix(ns.prefix(), ns.iri())
                .map_err(|e| SparqlError::View(e.to_string()))?;
        }
        let prepared = ev
            .parse_query(query)
            .map_err(|e| SparqlError::Syntax(e.to_string()))?;
        let eval = |e: &dyn std::fmt::Display| SparqlError::Evaluation(e.to_string());
        match prepared
            .on_store(&self.store)
            .execute()
            .map_err(|e| eval(&e))?
        {
            QueryResults::Boolean(b) => Ok(Answer::Boolean(b)),
            QueryResults::Solutions(sols) => {
                let vars: Vec<String> = sols
                    .variables()
                    .iter()
                    .map(|v| v.as_str().to_string())
                    .collect();
                let mut rows = Vec::new();
                for s in sols {
                    let s = s.map_err(|e| eval(&e))?;
                    rows.push(
                        vars.iter()
                            .map(|v| s.get(v.as_str()).cloned())
                            .collect::<Vec<_>>(),
                    );
                }
                Ok(Answer::Solutions { vars, rows })
            }
            QueryResults::Graph(triples) => {
                let mut out = Vec::new();
                for t in triples {
                    out.push(t.map_err(|e| eval(&e))?);
                }
                Ok(Answer::Graph(out))
            }
        }
    }
}

/// A query's answer.
#[derive(Debug, Clone)]
pub enum Answer {
    /// SELECT: variables and rows (unbound variables are `None`).
    Solutions {
        vars: Vec<String>,
        rows: Vec<Vec<Option<OxTerm>>>,
    },
    /// ASK.
    Boolean(bool),
    /// CONSTRUCT / DESCRIBE.
    Graph(Vec<oxigraph::model::Triple>),
}

/// Output formats of an answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    /// An aligned table for people: prefixed names, literal values.
    Table,
    /// SPARQL 1.1 Query Results JSON.
    Json,
    Csv,
    Tsv,
    /// SPARQL Query Results XML.
    Xml,
}

/// `term` for people: a prefixed name when a view prefix fits, a literal's
/// value without quotes or type.
pub fn short(term: &OxTerm) -> String {
    match term {
        OxTerm::NamedNode(n) => {
            let s = n.as_str();
            // Longest namespace first: tomoprog's IRI is not under tomo's,
            // but keep the rule safe for any future nesting.
            let mut best: Option<(Ns, usize)> = None;
            for ns in Ns::ALL {
                if s.starts_with(ns.iri()) && best.is_none_or(|(_, l)| ns.iri().len() > l) {
                    best = Some((ns, ns.iri().len()));
                }
            }
            match best {
                Some((ns, l)) => format!("{}:{}", ns.prefix(), &s[l..]),
                None => format!("<{s}>"),
            }
        }
        OxTerm::BlankNode(b) => format!("_:{}", b.as_str()),
        OxTerm::Literal(l) => l.value().to_string(),
        #[allow(unreachable_patterns)]
        other => other.to_string(),
    }
}

impl Answer {
    /// Number of rows (SELECT), triples (CONSTRUCT) or 1 (ASK).
    pub fn len(&self) -> usize {
        match self {
            Answer::Solutions { rows, .. } => rows.len(),
            Answer::Boolean(_) => 1,
            Answer::Graph(t) => t.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Write the answer in `format`. Graphs are written as N-Triples in
    /// every format but the table.
    pub fn write<W: Write>(&self, format: OutputFormat, mut w: W) -> Result<(), SparqlError> {
        let results_format = match format {
            OutputFormat::Table => return self.write_table(w),
            OutputFormat::Json => QueryResultsFormat::Json,
            OutputFormat::Csv => QueryResultsFormat::Csv,
            OutputFormat::Tsv => QueryResultsFormat::Tsv,
            OutputFormat::Xml => QueryResultsFormat::Xml,
        };
        let ser = QueryResultsSerializer::from_format(results_format);
        match self {
            Answer::Boolean(b) => {
                ser.serialize_boolean_to_writer(&mut w, *b)?;
            }
            Answer::Solutions { vars, rows } => {
                let variables: Vec<oxigraph::sparql::Variable> = vars
                    .iter()
                    .map(|v| oxigraph::sparql::Variable::new_unchecked(v.clone()))
                    .collect();
                let mut s = ser.serialize_solutions_to_writer(&mut w, variables.clone())?;
                for row in rows {
                    s.serialize(
                        variables
                            .iter()
                            .zip(row)
                            .filter_map(|(v, t)| t.as_ref().map(|t| (v.as_ref(), t.as_ref()))),
                    )?;
                }
                s.finish()?;
            }
            Answer::Graph(ts) => {
                for t in ts {
                    writeln!(w, "{t} .")?;
                }
            }
        }
        writeln!(w)?;
        Ok(())
    }

    fn write_table<W: Write>(&self, mut w: W) -> Result<(), SparqlError> {
        match self {
            Answer::Boolean(b) => writeln!(w, "{b}")?,
            Answer::Graph(ts) => {
                for t in ts {
                    writeln!(
                        w,
                        "{} {} {}",
                        short(&t.subject.clone().into()),
                        short(&t.predicate.clone().into()),
                        short(&t.object)
                    )?;
                }
            }
            Answer::Solutions { vars, rows } => {
                let cells: Vec<Vec<String>> = rows
                    .iter()
                    .map(|r| {
                        r.iter()
                            .map(|t| t.as_ref().map_or_else(String::new, short))
                            .collect()
                    })
                    .collect();
                let mut width: Vec<usize> = vars.iter().map(|v| v.chars().count()).collect();
                for r in &cells {
                    for (i, c) in r.iter().enumerate() {
                        width[i] = width[i].max(c.chars().count());
                    }
                }
                let line = |w: &mut W, cols: &mut dyn Iterator<Item = &str>| -> io::Result<()> {
                    let mut s = String::new();
                    for (i, c) in cols.enumerate() {
                        if i > 0 {
                            s.push_str("  ");
                        }
                        s.push_str(c);
                        s.extend(std::iter::repeat_n(' ', width[i] - c.chars().count()));
                    }
                    writeln!(w, "{}", s.trim_end())
                };
                line(&mut w, &mut vars.iter().map(String::as_str))?;
                for r in &cells {
                    line(&mut w, &mut r.iter().map(String::as_str))?;
                }
            }
        }
        Ok(())
    }
}
