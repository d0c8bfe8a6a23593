//! GraphML: one `<node>` per graph node, one `<edge>` per graph edge, every
//! attribute declared as a typed `<key>` (GraphML's own attribute scheme),
//! so networkx, Gephi, yEd or igraph read it as is.

use crate::record::{activity_facts, node_id, Ticker};
use crate::{ExportError, ExportOptions, ExportStats, Selection};
use std::io::{BufWriter, Write};
use tomo_store::Graph;

const NODE_KEYS: &[(&str, &str)] = &[
    ("kind", "string"),
    ("label", "string"),
    ("uuid", "string"),
    ("version", "int"),
    ("path", "string"),
    ("createdNs", "long"),
    ("program", "string"),
    ("classes", "string"),
    ("pid", "long"),
    ("ppid", "long"),
    ("uid", "long"),
    ("exe", "string"),
    ("argv", "string"),
    ("startNs", "long"),
    ("endNs", "long"),
    ("exitCode", "int"),
];

const EDGE_KEYS: &[(&str, &str)] = &[
    ("edge", "string"),
    ("call", "string"),
    ("bytes", "long"),
    ("events", "int"),
    ("offset", "long"),
    ("tsNs", "long"),
    ("lastNs", "long"),
];

/// Escape text for XML 1.0 content and attributes. XML 1.0 cannot carry
/// most control characters at all, so they are written as `\xNN`.
pub(crate) fn xml_escape(out: &mut String, s: &str) {
    use std::fmt::Write;
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if c.is_control() => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
}

fn data(out: &mut String, key: &str, value: &str) {
    out.push_str("      <data key=\"");
    out.push_str(key);
    out.push_str("\">");
    xml_escape(out, value);
    out.push_str("</data>\n");
}

/// Write the selected part of `g` as a GraphML document.
pub fn write_graphml<W: Write>(
    g: &Graph,
    sel: &Selection,
    opts: &ExportOptions,
    w: W,
) -> Result<ExportStats, ExportError> {
    let mut w = BufWriter::with_capacity(1 << 16, w);
    let mut st = ExportStats::default();
    let mut tk = Ticker::new((g.nodes.len() + g.edges.len()) as u64, opts.progress);
    writeln!(w, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>")?;
    writeln!(
        w,
        "<graphml xmlns=\"http://graphml.graphdrawing.org/xmlns\" \
         xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" \
         xsi:schemaLocation=\"http://graphml.graphdrawing.org/xmlns \
         http://graphml.graphdrawing.org/xmlns/1.0/graphml.xsd\">"
    )?;
    for (target, keys) in [("node", NODE_KEYS), ("edge", EDGE_KEYS)] {
        for (name, ty) in keys {
            // Keys are prefixed by what they describe: an attribute may mean
            // something else on edges (GraphML ids are global).
            writeln!(
                w,
                "  <key id=\"{target}_{name}\" for=\"{target}\" attr.name=\"{name}\" attr.type=\"{ty}\"/>"
            )?;
        }
    }
    writeln!(w, "  <graph id=\"tomo\" edgedefault=\"directed\">")?;
    let mut out = String::new();
    let mut id = String::new();
    for n in 0..g.nodes.len() as u32 {
        tk.tick();
        if !sel.contains(n) {
            continue;
        }
        let node = &g.nodes[n as usize];
        let ent = &g.entities[node.entity as usize];
        out.clear();
        id.clear();
        node_id(g, n, &mut id);
        out.push_str("    <node id=\"");
        out.push_str(&id);
        out.push_str("\">\n");
        data(&mut out, "node_kind", ent.kind.as_str());
        data(&mut out, "node_label", &node.label);
        data(&mut out, "node_uuid", &ent.uuid.to_string());
        data(&mut out, "node_version", &node.version.to_string());
        if ent.process.is_some() {
            let (a, info) = activity_facts(g, n);
            data(&mut out, "node_program", &node.label);
            let classes = opts.classes.of(&node.label).join(" ");
            if !classes.is_empty() {
                data(&mut out, "node_classes", &classes);
            }
            data(&mut out, "node_pid", &info.pid.to_string());
            data(&mut out, "node_ppid", &info.ppid.to_string());
            data(&mut out, "node_uid", &info.uid.to_string());
            if let Some(exe) = a.exe {
                data(&mut out, "node_exe", exe);
            }
            data(
                &mut out,
                "node_argv",
                &serde_json::to_string(a.argv).unwrap_or_default(),
            );
            data(&mut out, "node_startNs", &a.start.to_string());
            if let Some(e) = a.end {
                data(&mut out, "node_endNs", &e.to_string());
            }
            if let (true, Some(c)) = (a.last, info.exit_code) {
                data(&mut out, "node_exitCode", &c.to_string());
            }
            st.activities += 1;
        } else {
            if let Some(p) = ent.names.first() {
                data(&mut out, "node_path", p);
            }
            data(&mut out, "node_createdNs", &node.created_ns.to_string());
            st.entities += 1;
        }
        out.push_str("    </node>\n");
        w.write_all(out.as_bytes())?;
    }
    let (mut src, mut dst) = (String::new(), String::new());
    for (e, x) in g.edges.iter().enumerate() {
        tk.tick();
        if !sel.contains(x.src) || !sel.contains(x.dst) {
            continue;
        }
        out.clear();
        src.clear();
        dst.clear();
        node_id(g, x.src, &mut src);
        node_id(g, x.dst, &mut dst);
        out.push_str(&format!(
            "    <edge id=\"e{e}\" source=\"{src}\" target=\"{dst}\">\n"
        ));
        data(&mut out, "edge_edge", x.kind.as_str());
        data(&mut out, "edge_call", x.call.as_str());
        data(&mut out, "edge_bytes", &x.bytes.to_string());
        data(&mut out, "edge_events", &x.events.to_string());
        if let Some(o) = x.offset {
            data(&mut out, "edge_offset", &o.to_string());
        }
        data(&mut out, "edge_tsNs", &x.ts_ns.to_string());
        data(&mut out, "edge_lastNs", &x.last_ns.to_string());
        out.push_str("    </edge>\n");
        w.write_all(out.as_bytes())?;
        st.relations += 1;
    }
    writeln!(w, "  </graph>\n</graphml>")?;
    w.flush()?;
    tk.finish();
    Ok(st)
}
