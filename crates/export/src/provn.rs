//! W3C PROV-N, the same records as PROV-JSON (`record.rs`).
//!
//! Relations are written without identifiers: PROV-JSON's relation keys are
//! blank nodes, which PROV-N has no syntax for, and the `prov` package
//! drops them when it reads PROV-JSON, so both load to the same document.

use crate::record::{self, Kind, Ns, Rec, Val};
use crate::{push_datetime, ExportError, ExportOptions, ExportStats, Selection};
use std::io::{BufWriter, Write};
use tomo_store::Graph;

/// A PROV-N string literal: `\`, `"` and line breaks escaped, other control
/// characters as `\uXXXX`.
fn string<W: Write>(w: &mut W, s: &str) -> std::io::Result<()> {
    if !s.chars().any(|c| c == '"' || c == '\\' || c.is_control()) {
        return write!(w, "\"{s}\"");
    }
    let mut out = String::with_capacity(s.len() + 8);
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
    w.write_all(out.as_bytes())
}

fn value<W: Write>(w: &mut W, v: &Val, buf: &mut String) -> std::io::Result<()> {
    match v {
        Val::Str(s) => string(w, s),
        Val::Int(i) => write!(w, "{i}"),
        Val::Time(t) => {
            buf.clear();
            push_datetime(buf, *t);
            write!(w, "\"{buf}\" %% xsd:dateTime")
        }
        Val::QName(ns, l) => write!(w, "'{}:{l}'", ns.prefix()),
    }
}

fn time_or_marker<W: Write>(w: &mut W, t: Option<u64>, buf: &mut String) -> std::io::Result<()> {
    match t {
        Some(t) => {
            buf.clear();
            push_datetime(buf, t);
            write!(w, ", {buf}")
        }
        None => w.write_all(b", -"),
    }
}

fn record<W: Write>(w: &mut W, r: &Rec, buf: &mut String) -> std::io::Result<()> {
    write!(w, "  {}(", r.kind.keyword())?;
    match r.kind {
        Kind::Entity | Kind::Agent => write!(w, "tomo:{}", r.id)?,
        Kind::Activity => {
            write!(w, "tomo:{}", r.id)?;
            time_or_marker(w, r.time, buf)?;
            time_or_marker(w, r.end, buf)?;
        }
        Kind::Used | Kind::Generation => {
            write!(w, "tomo:{}, tomo:{}", r.a, r.b)?;
            time_or_marker(w, r.time, buf)?;
        }
        Kind::Communication => write!(w, "tomo:{}, tomo:{}", r.a, r.b)?,
        Kind::Derivation => {
            write!(w, "tomo:{}, tomo:{}, ", r.a, r.b)?;
            if r.via.is_empty() {
                w.write_all(b"-")?;
            } else {
                write!(w, "tomo:{}", r.via)?;
            }
            w.write_all(b", -, -")?;
        }
        Kind::Association => write!(w, "tomo:{}, tomo:{}, -", r.a, r.b)?,
    }
    if !r.attrs.is_empty() {
        w.write_all(b", [")?;
        for (i, ((ns, k), v)) in r.attrs.iter().enumerate() {
            if i > 0 {
                w.write_all(b", ")?;
            }
            write!(w, "{}:{k}=", ns.prefix())?;
            value(w, v, buf)?;
        }
        w.write_all(b"]")?;
    }
    w.write_all(b")\n")
}

/// Write the selected part of `g` as a PROV-N document.
pub fn write_prov_n<W: Write>(
    g: &Graph,
    sel: &Selection,
    opts: &ExportOptions,
    w: W,
) -> Result<ExportStats, ExportError> {
    let mut w = BufWriter::with_capacity(1 << 16, w);
    writeln!(w, "document")?;
    for ns in [Ns::Tomo, Ns::TomoProg] {
        writeln!(w, "  prefix {} <{}>", ns.prefix(), ns.iri())?;
    }
    writeln!(w)?;
    let mut buf = String::new();
    let stats = record::for_each(g, sel, opts, &mut |r| record(&mut w, r, &mut buf))?;
    writeln!(w, "endDocument")?;
    w.flush()?;
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_escaped() {
        let mut v = Vec::new();
        string(&mut v, "a\"b\\c\nd\u{1}").unwrap();
        assert_eq!(String::from_utf8(v).unwrap(), "\"a\\\"b\\\\c\\nd\\u0001\"");
    }
}
