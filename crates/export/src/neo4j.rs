//! CSV for `neo4j-admin database import full`: a nodes file and a
//! relationships file with Neo4j's header syntax (`:ID`, `:LABEL`,
//! `:START_ID`, `:END_ID`, `:TYPE`, typed properties like `startNs:long`).
//!
//! One node per graph node, labelled `Process` (plus `Activity` and its
//! program classes, e.g. `Editor`) or `Entity` plus its kind (`File`,
//! `Pipe`, …); one relationship per graph edge, typed by the edge kind in
//! upper case (`READ`, `WRITE`, `SPAWN`, …). Fields are quoted when they
//! need it; control characters (newlines in file names) are written as
//! `\xNN` so the import needs no `--multiline-fields`.

use crate::record::{activity_facts, node_id, Ticker};
use crate::{ExportError, ExportOptions, ExportStats, Selection};
use std::io::{BufWriter, Write};
use tomo_store::{EntityKind, Graph};

/// File name of the nodes file in the export directory.
pub const NEO4J_NODES: &str = "nodes.csv";
/// File name of the relationships file in the export directory.
pub const NEO4J_RELATIONSHIPS: &str = "relationships.csv";

const NODE_HEADER: &str = "id:ID,:LABEL,kind,label,uuid,version:int,path,createdNs:long,program,pid:long,ppid:long,uid:long,exe,argv,startNs:long,endNs:long,exitCode:int";
const REL_HEADER: &str =
    ":START_ID,:END_ID,:TYPE,call,bytes:long,events:int,offset:long,tsNs:long,lastNs:long";

/// A CSV field: quoted when it holds a comma, quote or leading/trailing
/// space; quotes doubled; control characters as `\xNN`.
fn field(out: &mut String, s: &str) {
    use std::fmt::Write;
    let quote = s.is_empty()
        || s.contains([',', '"', ';'])
        || s.starts_with(' ')
        || s.ends_with(' ')
        || s.chars().any(char::is_control);
    if quote {
        out.push('"');
    }
    for c in s.chars() {
        match c {
            '"' => out.push_str("\"\""),
            c if c.is_control() => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    if quote {
        out.push('"');
    }
}

fn kind_label(k: EntityKind) -> &'static str {
    match k {
        EntityKind::Process => "Process",
        EntityKind::File => "File",
        EntityKind::Dir => "Dir",
        EntityKind::Symlink => "Symlink",
        EntityKind::Pipe => "Pipe",
        EntityKind::Socket => "Socket",
        EntityKind::Device => "Device",
        EntityKind::Anon => "Anon",
        EntityKind::Unknown => "Unknown",
    }
}

/// Write the selected part of `g` as Neo4j import CSV: nodes to `nodes`,
/// relationships to `rels`.
pub fn write_neo4j<N: Write, R: Write>(
    g: &Graph,
    sel: &Selection,
    opts: &ExportOptions,
    nodes: N,
    rels: R,
) -> Result<ExportStats, ExportError> {
    let mut st = ExportStats::default();
    let mut tk = Ticker::new((g.nodes.len() + g.edges.len()) as u64, opts.progress);
    let mut w = BufWriter::with_capacity(1 << 16, nodes);
    writeln!(w, "{NODE_HEADER}")?;
    let mut out = String::new();
    for n in 0..g.nodes.len() as u32 {
        tk.tick();
        if !sel.contains(n) {
            continue;
        }
        let node = &g.nodes[n as usize];
        let ent = &g.entities[node.entity as usize];
        out.clear();
        node_id(g, n, &mut out);
        out.push(',');
        // Fields: labels, kind, label, uuid, version, path, createdNs,
        // then the process columns.
        let mut labels = String::new();
        if ent.process.is_some() {
            labels.push_str("Activity;Process");
            for c in opts.classes.of(&node.label) {
                labels.push(';');
                labels.push_str(c);
            }
        } else {
            labels.push_str("Entity;");
            labels.push_str(kind_label(ent.kind));
        }
        out.push_str(&labels);
        out.push(',');
        out.push_str(ent.kind.as_str());
        out.push(',');
        field(&mut out, &node.label);
        out.push(',');
        out.push_str(&ent.uuid.to_string());
        out.push_str(&format!(",{},", node.version));
        if ent.process.is_some() {
            let (a, info) = activity_facts(g, n);
            out.push_str(",,"); // path, createdNs
            field(&mut out, &node.label);
            out.push_str(&format!(",{},{},{},", info.pid, info.ppid, info.uid));
            if let Some(exe) = a.exe {
                field(&mut out, exe);
            }
            out.push(',');
            field(&mut out, &serde_json::to_string(a.argv).unwrap_or_default());
            out.push_str(&format!(",{},", a.start));
            if let Some(e) = a.end {
                out.push_str(&e.to_string());
            }
            out.push(',');
            if let (true, Some(c)) = (a.last, info.exit_code) {
                out.push_str(&c.to_string());
            }
            st.activities += 1;
        } else {
            if let Some(p) = ent.names.first() {
                field(&mut out, p);
            }
            out.push_str(&format!(",{}", node.created_ns));
            out.push_str(",,,,,,,,,"); // program … exitCode
            st.entities += 1;
        }
        out.push('\n');
        w.write_all(out.as_bytes())?;
    }
    w.flush()?;

    let mut w = BufWriter::with_capacity(1 << 16, rels);
    writeln!(w, "{REL_HEADER}")?;
    for x in &g.edges {
        tk.tick();
        if !sel.contains(x.src) || !sel.contains(x.dst) {
            continue;
        }
        out.clear();
        node_id(g, x.src, &mut out);
        out.push(',');
        node_id(g, x.dst, &mut out);
        out.push(',');
        out.push_str(&x.kind.as_str().to_ascii_uppercase());
        out.push(',');
        field(&mut out, x.call.as_str());
        out.push_str(&format!(",{},{},", x.bytes, x.events));
        if let Some(o) = x.offset {
            out.push_str(&o.to_string());
        }
        out.push_str(&format!(",{},{}\n", x.ts_ns, x.last_ns));
        w.write_all(out.as_bytes())?;
        st.relations += 1;
    }
    w.flush()?;
    tk.finish();
    Ok(st)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_quoted_when_needed() {
        let mut s = String::new();
        field(&mut s, "plain/path");
        s.push('|');
        field(&mut s, "a,\"b\"\nc");
        s.push('|');
        field(&mut s, "");
        assert_eq!(s, "plain/path|\"a,\"\"b\"\"\\x0ac\"|\"\"");
        assert_eq!(NODE_HEADER.split(',').count(), 17);
        assert_eq!(REL_HEADER.split(',').count(), 9);
    }
}
