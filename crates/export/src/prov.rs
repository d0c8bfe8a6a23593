//! W3C PROV-JSON.
//!
//! Every graph node is exactly one PROV element: object versions are
//! entities, process versions are activities. Users (uids) are agents, each
//! process version `wasAssociatedWith` its user. Every graph edge is one
//! relation, chosen by the kinds of its ends:
//!
//! | edge ends          | relation          | graph edge kinds                  |
//! |--------------------|-------------------|-----------------------------------|
//! | object -> process  | `used`            | read, load                        |
//! | process -> object  | `wasGeneratedBy`  | write, rename, link, unlink, chmod, chown, mkdir, mknod, symlink |
//! | process -> process | `wasInformedBy`   | spawn, exec, signal, version      |
//! | object -> object   | `wasDerivedFrom`  | version (`prov:Revision`), flow   |
//!
//! plus the data derivations of `record.rs` (`wasDerivedFrom` with
//! `prov:activity` and `tomo:edge` "data"). The graph edge kind, call,
//! bytes and event count are kept as `tomo:` attributes; activities are
//! typed with their program (`tomoprog:vi`) and its classes (`tomo:Editor`).
//! Identifiers are stable across runs and cuts: `tomo:<uuid>_v<version>`
//! for nodes, `tomo:uid<uid>` for agents, and blank nodes `_:e<edge id>` /
//! `_:a<node id>` for relations (`_:d<n>` for data derivations).

use crate::record::{self, Kind, Ns, Rec, Val};
use crate::{push_datetime, ExportError, ExportOptions, ExportStats, Selection};
use std::io::{BufWriter, Write};
use tomo_store::Graph;

fn json_str<W: Write>(w: &mut W, s: &str) -> std::io::Result<()> {
    serde_json::to_writer(w, s).map_err(std::io::Error::other)
}

/// `"prefix:local"`; locals are ids or percent-encoded names, never
/// needing JSON escapes, but are escaped anyway when they do.
fn qname<W: Write>(w: &mut W, ns: Ns, local: &str) -> std::io::Result<()> {
    if local.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        write!(w, "\"{}:{local}\"", ns.prefix())
    } else {
        json_str(w, &format!("{}:{local}", ns.prefix()))
    }
}

fn value<W: Write>(w: &mut W, v: &Val, buf: &mut String) -> std::io::Result<()> {
    match v {
        Val::Str(s) => json_str(w, s),
        Val::Int(i) => write!(w, "{i}"),
        Val::Time(t) => {
            buf.clear();
            push_datetime(buf, *t);
            write!(w, "{{\"$\":\"{buf}\",\"type\":\"xsd:dateTime\"}}")
        }
        Val::QName(ns, l) => {
            w.write_all(b"{\"$\":")?;
            qname(w, *ns, l)?;
            w.write_all(b",\"type\":\"prov:QUALIFIED_NAME\"}")
        }
    }
}

fn time<W: Write>(w: &mut W, key: &str, t: u64, buf: &mut String) -> std::io::Result<()> {
    buf.clear();
    push_datetime(buf, t);
    write!(w, "\"{key}\":\"{buf}\"")
}

fn record<W: Write>(w: &mut W, r: &Rec, buf: &mut String) -> std::io::Result<()> {
    let mut first = true;
    let mut sep = |w: &mut W| -> std::io::Result<()> {
        if !first {
            w.write_all(b",")?;
        }
        first = false;
        Ok(())
    };
    let formal: [(&str, &str); 2] = match r.kind {
        Kind::Used => [("prov:activity", &r.a), ("prov:entity", &r.b)],
        Kind::Generation => [("prov:entity", &r.a), ("prov:activity", &r.b)],
        Kind::Communication => [("prov:informed", &r.a), ("prov:informant", &r.b)],
        Kind::Derivation => [("prov:generatedEntity", &r.a), ("prov:usedEntity", &r.b)],
        Kind::Association => [("prov:activity", &r.a), ("prov:agent", &r.b)],
        Kind::Entity | Kind::Activity | Kind::Agent => [("", ""); 2],
    };
    w.write_all(b"{")?;
    for (k, v) in formal {
        if !k.is_empty() {
            sep(w)?;
            write!(w, "\"{k}\":")?;
            qname(w, Ns::Tomo, v)?;
        }
    }
    if !r.via.is_empty() {
        sep(w)?;
        w.write_all(b"\"prov:activity\":")?;
        qname(w, Ns::Tomo, &r.via)?;
    }
    for (i, ((ns, k), v)) in r.attrs.iter().enumerate() {
        if r.attrs[..i].iter().any(|(key, _)| key == &(*ns, *k)) {
            continue;
        }
        sep(w)?;
        write!(w, "\"{}:{k}\":", ns.prefix())?;
        let n = r.attrs[i..]
            .iter()
            .filter(|(key, _)| key == &(*ns, *k))
            .count();
        if n == 1 {
            value(w, v, buf)?;
        } else {
            // A repeated attribute (prov:type) is a JSON array.
            w.write_all(b"[")?;
            for (j, (_, v)) in r.attrs[i..]
                .iter()
                .filter(|(key, _)| key == &(*ns, *k))
                .enumerate()
            {
                if j > 0 {
                    w.write_all(b",")?;
                }
                value(w, v, buf)?;
            }
            w.write_all(b"]")?;
        }
    }
    let (start_key, end_key) = match r.kind {
        Kind::Activity => ("prov:startTime", "prov:endTime"),
        _ => ("prov:time", ""),
    };
    if let Some(t) = r.time {
        sep(w)?;
        time(w, start_key, t, buf)?;
    }
    if let Some(t) = r.end {
        sep(w)?;
        time(w, end_key, t, buf)?;
    }
    w.write_all(b"}")
}

/// Write the selected part of `g` as a PROV-JSON document.
pub fn write_prov_json<W: Write>(
    g: &Graph,
    sel: &Selection,
    opts: &ExportOptions,
    w: W,
) -> Result<ExportStats, ExportError> {
    let mut w = BufWriter::with_capacity(1 << 16, w);
    write!(
        w,
        "{{\"prefix\":{{\"tomo\":\"{}\",\"tomoprog\":\"{}\"}}",
        Ns::Tomo.iri(),
        Ns::TomoProg.iri()
    )?;
    let mut section: Option<Kind> = None;
    let mut buf = String::new();
    let stats = record::for_each(g, sel, opts, &mut |r| {
        if section != Some(r.kind) {
            if section.is_some() {
                w.write_all(b"\n}")?;
            }
            write!(w, ",\n\"{}\":{{\n ", r.kind.keyword())?;
            section = Some(r.kind);
        } else {
            w.write_all(b",\n ")?;
        }
        match r.kind {
            Kind::Entity | Kind::Activity | Kind::Agent => qname(&mut w, Ns::Tomo, &r.id)?,
            _ => write!(w, "\"_:{}\"", r.id)?,
        }
        w.write_all(b":")?;
        record(&mut w, r, &mut buf)
    })?;
    if section.is_some() {
        w.write_all(b"\n}")?;
    }
    w.write_all(b"\n}\n")?;
    w.flush()?;
    Ok(stats)
}
