//! The PROV-O view: the records of `record.rs` as RDF triples, written as
//! Turtle or handed to any [`TripleSink`] (`tomo sparql` loads them into
//! an in-memory SPARQL store).
//!
//! Elements are typed `prov:Entity` / `prov:Activity` / `prov:Agent`
//! (activities also `tomoprog:<program>` and their program classes, e.g.
//! `tomo:Editor`), labelled with `rdfs:label`, activities timed with
//! `prov:startedAtTime` / `prov:endedAtTime` (plus `tomo:startNs` /
//! `tomo:endNs` integers for exact arithmetic). Every relation is asserted
//! both ways PROV-O offers: the direct triple (`?a prov:used ?e`), which is
//! what queries join on, and the qualified node (`prov:qualifiedUsage [ a
//! prov:Usage ; prov:entity ?e ; prov:atTime … ; tomo:bytes … ]`), which
//! keeps the time and the `tomo:` attributes and gives one node per PROV
//! record, so counts match PROV-JSON even where two records relate the same
//! pair. Associations have no attributes and are direct triples only.

pub use crate::record::node_id as node_local_id;
use crate::record::{self, Kind, Ns, Rec, Val};
use crate::{push_datetime, ExportError, ExportOptions, ExportStats, Selection};
use std::io::{self, BufWriter, Write};
use tomo_store::Graph;

/// A subject: an IRI (namespace, local part) or a blank node label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Subject<'a> {
    Iri(Ns, &'a str),
    Blank(&'a str),
}

/// An object of a triple.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Object<'a> {
    Iri(Ns, &'a str),
    Blank(&'a str),
    Str(&'a str),
    Int(i64),
    /// xsd:dateTime, nanoseconds since the epoch.
    DateTime(u64),
}

/// A predicate: namespace and local name.
pub type Predicate<'a> = (Ns, &'a str);

/// Receives the triples of the view, subjects grouped (all triples of one
/// subject follow each other, except that a relation's direct triple may
/// come after its subject's element triples).
pub trait TripleSink {
    fn triple(&mut self, s: Subject, p: Predicate, o: Object) -> io::Result<()>;
}

fn attr_triples(sink: &mut dyn TripleSink, s: Subject, r: &Rec) -> io::Result<()> {
    for ((ns, k), v) in &r.attrs {
        let p = match (ns, *k) {
            (Ns::Prov, "label") => (Ns::Rdfs, "label"),
            (Ns::Prov, "type") => (Ns::Rdf, "type"),
            _ => (*ns, *k),
        };
        let o = match v {
            Val::Str(x) => Object::Str(x),
            Val::Int(i) => Object::Int(*i),
            Val::Time(t) => Object::DateTime(*t),
            Val::QName(ns, l) => Object::Iri(*ns, l),
        };
        sink.triple(s, p, o)?;
    }
    Ok(())
}

const TYPE: Predicate = (Ns::Rdf, "type");

fn record_triples(sink: &mut dyn TripleSink, r: &Rec, with_qualified: bool) -> io::Result<()> {
    let prov = |l| Object::Iri(Ns::Prov, l);
    match r.kind {
        Kind::Entity | Kind::Activity | Kind::Agent => {
            let s = Subject::Iri(Ns::Tomo, &r.id);
            let class = match r.kind {
                Kind::Entity => "Entity",
                Kind::Activity => "Activity",
                _ => "Agent",
            };
            sink.triple(s, TYPE, prov(class))?;
            if let Some(t) = r.time {
                sink.triple(s, (Ns::Prov, "startedAtTime"), Object::DateTime(t))?;
            }
            if let Some(t) = r.end {
                sink.triple(s, (Ns::Prov, "endedAtTime"), Object::DateTime(t))?;
            }
            attr_triples(sink, s, r)
        }
        Kind::Association => sink.triple(
            Subject::Iri(Ns::Tomo, &r.a),
            (Ns::Prov, "wasAssociatedWith"),
            Object::Iri(Ns::Tomo, &r.b),
        ),
        _ => {
            let revision = r.attrs.iter().any(|(k, v)| {
                *k == (Ns::Prov, "type") && *v == Val::QName(Ns::Prov, "Revision".into())
            });
            let (direct, qualified, class, formal) = match r.kind {
                Kind::Used => ("used", "qualifiedUsage", "Usage", "entity"),
                Kind::Generation => (
                    "wasGeneratedBy",
                    "qualifiedGeneration",
                    "Generation",
                    "activity",
                ),
                Kind::Communication => (
                    "wasInformedBy",
                    "qualifiedCommunication",
                    "Communication",
                    "activity",
                ),
                _ if revision => ("wasDerivedFrom", "qualifiedRevision", "", "entity"),
                _ => (
                    "wasDerivedFrom",
                    "qualifiedDerivation",
                    "Derivation",
                    "entity",
                ),
            };
            let a = Subject::Iri(Ns::Tomo, &r.a);
            let b = Object::Iri(Ns::Tomo, &r.b);
            sink.triple(a, (Ns::Prov, direct), b)?;
            if !with_qualified {
                return Ok(());
            }
            sink.triple(a, (Ns::Prov, qualified), Object::Blank(&r.id))?;
            let q = Subject::Blank(&r.id);
            // A revision's class comes from its prov:type attribute.
            if !class.is_empty() {
                sink.triple(q, TYPE, prov(class))?;
            }
            sink.triple(q, (Ns::Prov, formal), b)?;
            if !r.via.is_empty() {
                sink.triple(q, (Ns::Prov, "hadActivity"), Object::Iri(Ns::Tomo, &r.via))?;
            }
            if let Some(t) = r.time {
                sink.triple(q, (Ns::Prov, "atTime"), Object::DateTime(t))?;
            }
            attr_triples(sink, q, r)
        }
    }
}

/// Hand the PROV-O triples of the selected part of `g` to `sink`. Without
/// `qualified`, relations are their direct triples only (no times or
/// attributes of relations: about a third of the triples).
pub fn triples(
    g: &Graph,
    sel: &Selection,
    opts: &ExportOptions,
    qualified: bool,
    sink: &mut dyn TripleSink,
) -> Result<ExportStats, ExportError> {
    Ok(record::for_each(g, sel, opts, &mut |r| {
        record_triples(sink, r, qualified)
    })?)
}

/// Streams Turtle, grouping consecutive triples of one subject with `;`.
struct Turtle<W: Write> {
    w: W,
    last: String,
    buf: String,
}

fn turtle_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

fn subject_text(out: &mut String, s: Subject) {
    match s {
        Subject::Iri(ns, l) => {
            out.push_str(ns.prefix());
            out.push(':');
            out.push_str(l);
        }
        Subject::Blank(l) => {
            out.push_str("_:");
            out.push_str(l);
        }
    }
}

impl<W: Write> TripleSink for Turtle<W> {
    fn triple(&mut self, s: Subject, p: Predicate, o: Object) -> io::Result<()> {
        self.buf.clear();
        subject_text(&mut self.buf, s);
        if self.buf == self.last {
            self.w.write_all(b" ;\n    ")?;
        } else {
            if !self.last.is_empty() {
                self.w.write_all(b" .\n")?;
            }
            self.w.write_all(self.buf.as_bytes())?;
            self.w.write_all(b" ")?;
            std::mem::swap(&mut self.last, &mut self.buf);
        }
        if p == TYPE {
            self.w.write_all(b"a ")?;
        } else {
            write!(self.w, "{}:{} ", p.0.prefix(), p.1)?;
        }
        self.buf.clear();
        match o {
            Object::Iri(ns, l) => subject_text(&mut self.buf, Subject::Iri(ns, l)),
            Object::Blank(l) => subject_text(&mut self.buf, Subject::Blank(l)),
            Object::Str(x) => turtle_string(&mut self.buf, x),
            Object::Int(i) => {
                use std::fmt::Write as _;
                let _ = write!(self.buf, "{i}");
            }
            Object::DateTime(t) => {
                self.buf.push('"');
                push_datetime(&mut self.buf, t);
                self.buf.push_str("\"^^xsd:dateTime");
            }
        }
        self.w.write_all(self.buf.as_bytes())
    }
}

/// Write the selected part of `g` as PROV-O in Turtle.
pub fn write_turtle<W: Write>(
    g: &Graph,
    sel: &Selection,
    opts: &ExportOptions,
    w: W,
) -> Result<ExportStats, ExportError> {
    let mut t = Turtle {
        w: BufWriter::with_capacity(1 << 16, w),
        last: String::new(),
        buf: String::new(),
    };
    for ns in Ns::ALL {
        writeln!(t.w, "@prefix {}: <{}> .", ns.prefix(), ns.iri())?;
    }
    writeln!(t.w)?;
    let stats = triples(g, sel, opts, true, &mut t)?;
    if !t.last.is_empty() {
        t.w.write_all(b" .\n")?;
    }
    t.w.flush()?;
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_escaped() {
        let mut s = String::new();
        turtle_string(&mut s, "a\"b\\c\nd\u{7}é");
        assert_eq!(s, "\"a\\\"b\\\\c\\nd\\u0007é\"");
    }
}
