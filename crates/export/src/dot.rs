//! Graphviz DOT: processes are boxes, files ellipses, pipes and sockets
//! notes, directories folders. Edges carry their kind and, for data flows,
//! the bytes moved; `version` edges are dashed. Node ids are
//! `"<uuid>_v<version>"`, stable across runs and cuts.

use crate::{ExportError, ExportOptions, ExportStats, Selection};
use std::fmt::Write as _;
use std::io::{BufWriter, Write};
use tomo_store::{EdgeKind, EntityKind, Graph, NodeId};

fn id(g: &Graph, n: NodeId) -> String {
    let node = &g.nodes[n as usize];
    format!(
        "\"{}_v{}\"",
        g.entities[node.entity as usize].uuid, node.version
    )
}

/// Escape for a DOT double-quoted string; `\n` stays a line break.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => {
                let _ = write!(out, "\\\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

fn abbreviate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let cut: String = s.chars().take(max.saturating_sub(1)).collect();
    cut + "…"
}

fn fmt_bytes(b: u64) -> String {
    if b < 1024 {
        return format!("{b} B");
    }
    let mut v = b as f64 / 1024.0;
    for u in ["KiB", "MiB", "GiB", "TiB"] {
        if v < 1024.0 {
            return format!("{v:.1} {u}");
        }
        v /= 1024.0;
    }
    format!("{v:.1} PiB")
}

/// Write the selected part of `g` as a DOT digraph.
pub fn write_dot<W: Write>(
    g: &Graph,
    sel: &Selection,
    opts: &ExportOptions,
    w: W,
) -> Result<ExportStats, ExportError> {
    let mut w = BufWriter::new(w);
    let mut stats = ExportStats::default();
    let mut tk = crate::record::Ticker::new((g.nodes.len() + g.edges.len()) as u64, opts.progress);
    writeln!(w, "digraph tomo {{")?;
    writeln!(w, "  graph [rankdir=LR];")?;
    writeln!(w, "  node [fontname=\"Helvetica\", fontsize=10];")?;
    writeln!(w, "  edge [fontname=\"Helvetica\", fontsize=9];")?;
    for n in 0..g.nodes.len() as NodeId {
        tk.tick();
        if !sel.contains(n) {
            continue;
        }
        let node = &g.nodes[n as usize];
        let ent = &g.entities[node.entity as usize];
        let version = if node.version > 0 {
            format!(" v{}", node.version)
        } else {
            String::new()
        };
        let (shape, label) = match ent.process.as_deref() {
            Some(info) => {
                stats.activities += 1;
                let argv = crate::record::activity_facts(g, n).0.argv;
                let mut l = format!("{}[{}]{version}", node.label, info.pid);
                if !argv.is_empty() {
                    l.push('\n');
                    l.push_str(&abbreviate(&argv.join(" "), 48));
                }
                ("box", l)
            }
            None => {
                stats.entities += 1;
                let shape = match ent.kind {
                    EntityKind::Pipe | EntityKind::Socket => "note",
                    EntityKind::Dir => "folder",
                    _ => "ellipse",
                };
                (shape, format!("{}{version}", abbreviate(&node.label, 64)))
            }
        };
        writeln!(
            w,
            "  {} [shape={shape}, label=\"{}\"];",
            id(g, n),
            esc(&label)
        )?;
    }
    for x in &g.edges {
        tk.tick();
        if !sel.contains(x.src) || !sel.contains(x.dst) {
            continue;
        }
        let label = match x.kind {
            EdgeKind::Read | EdgeKind::Write | EdgeKind::Flow => {
                format!("{} {}", x.kind.as_str(), fmt_bytes(x.bytes))
            }
            EdgeKind::Version => String::new(),
            k => k.as_str().to_string(),
        };
        let style = if x.kind == EdgeKind::Version {
            ", style=dashed"
        } else {
            ""
        };
        writeln!(
            w,
            "  {} -> {} [label=\"{}\"{style}];",
            id(g, x.src),
            id(g, x.dst),
            esc(&label)
        )?;
        stats.relations += 1;
    }
    writeln!(w, "}}")?;
    w.flush()?;
    tk.finish();
    Ok(stats)
}

/// Lay out `dot_text` with Graphviz (`dot -Tsvg`), writing the SVG to `w`.
pub fn render_svg<W: Write>(dot_text: &[u8], w: W) -> Result<(), ExportError> {
    render(
        |stdin| stdin.write_all(dot_text).map_err(ExportError::from),
        w,
    )
    .map(|_| ())
}

/// Write the selected part of `g` as SVG, laid out by Graphviz `dot` (which
/// must be installed: a clear error says so otherwise).
pub fn write_svg<W: Write>(
    g: &Graph,
    sel: &Selection,
    opts: &ExportOptions,
    w: W,
) -> Result<ExportStats, ExportError> {
    render(|stdin| write_dot(g, sel, opts, stdin), w)
}

/// Run `dot -Tsvg`, feeding its stdin with `feed` on another thread while
/// this one copies its stdout to `w` (either side can block on a full pipe).
fn render<T: Send, W: Write>(
    feed: impl FnOnce(&mut std::process::ChildStdin) -> Result<T, ExportError> + Send,
    mut w: W,
) -> Result<T, ExportError> {
    use std::process::{Command, Stdio};
    let mut child = Command::new("dot")
        .arg("-Tsvg")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(ExportError::GraphvizMissing)?;
    let (Some(mut stdin), Some(mut stdout), Some(mut stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err(ExportError::Io(std::io::Error::other("no pipe to dot")));
    };
    let (fed, copied, err_text) = std::thread::scope(|s| {
        let feeder = s.spawn(move || {
            let r = feed(&mut stdin);
            drop(stdin); // end of input: dot starts laying out
            r
        });
        let err_reader = s.spawn(move || {
            let mut v = String::new();
            let _ = std::io::Read::read_to_string(&mut stderr, &mut v);
            v
        });
        let copied = std::io::copy(&mut stdout, &mut w).and_then(|_| w.flush());
        (
            feeder.join().unwrap_or_else(|_| {
                Err(ExportError::Io(std::io::Error::other(
                    "DOT writer panicked",
                )))
            }),
            copied,
            err_reader.join().unwrap_or_default(),
        )
    });
    let status = child.wait()?;
    if !status.success() {
        return Err(ExportError::Graphviz {
            status: status.to_string(),
            stderr: err_text.trim().to_string(),
        });
    }
    copied?;
    fed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping() {
        assert_eq!(esc("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        assert_eq!(abbreviate("abcdef", 4), "abc…");
        assert_eq!(fmt_bytes(2048), "2.0 KiB");
    }
}
