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
//! The graph edge kind, call, bytes and event count are kept as `tomo:`
//! attributes. Identifiers are stable across runs and cuts:
//! `tomo:<uuid>_v<version>` for nodes, `tomo:uid<uid>` for agents, and blank
//! nodes `_:e<edge id>` / `_:a<node id>` for relations.

use crate::{datetime, ExportError, ExportStats, Selection};
use serde_json::{json, Map, Value};
use std::collections::BTreeSet;
use std::io::{BufWriter, Write};
use tomo_store::{EdgeKind, EntityKind, Graph, NodeId, ProcessInfo};

/// The namespace of the `tomo:` prefix.
pub const TOMO_NS: &str = "urn:tomo:";

fn id(g: &Graph, n: NodeId) -> String {
    let node = &g.nodes[n as usize];
    format!(
        "tomo:{}_v{}",
        g.entities[node.entity as usize].uuid, node.version
    )
}

fn time(ns: u64) -> Value {
    json!({"$": datetime(ns), "type": "xsd:dateTime"})
}

fn is_process(g: &Graph, n: NodeId) -> bool {
    g.entity_of(n).kind == EntityKind::Process
}

/// Writes sections of a JSON object lazily (only non-empty ones).
struct Doc<W: Write> {
    w: W,
    open: bool,
    records: usize,
}

impl<W: Write> Doc<W> {
    fn record(&mut self, section: &str, key: &str, value: &Value) -> std::io::Result<()> {
        if !self.open {
            write!(self.w, ",\n{}:{{", Value::from(section))?;
            self.open = true;
        } else {
            self.w.write_all(b",")?;
        }
        write!(self.w, "\n {}:", Value::from(key))?;
        serde_json::to_writer(&mut self.w, value).map_err(std::io::Error::other)?;
        self.records += 1;
        Ok(())
    }

    fn end(&mut self) -> std::io::Result<usize> {
        if self.open {
            self.w.write_all(b"\n}")?;
            self.open = false;
        }
        Ok(std::mem::take(&mut self.records))
    }
}

/// Write the selected part of `g` as a PROV-JSON document.
pub fn write_prov_json<W: Write>(
    g: &Graph,
    sel: &Selection,
    w: W,
) -> Result<ExportStats, ExportError> {
    let mut d = Doc {
        w: BufWriter::new(w),
        open: false,
        records: 0,
    };
    let mut stats = ExportStats::default();
    write!(d.w, "{{\"prefix\":{}", json!({"tomo": TOMO_NS}))?;

    // Entities: object versions.
    for n in sel.node_ids(g).filter(|&n| !is_process(g, n)) {
        let node = &g.nodes[n as usize];
        let ent = &g.entities[node.entity as usize];
        let mut a = Map::new();
        a.insert("prov:label".into(), node.label.clone().into());
        a.insert("tomo:uuid".into(), ent.uuid.to_string().into());
        a.insert("tomo:kind".into(), ent.kind.as_str().into());
        a.insert("tomo:version".into(), node.version.into());
        if let Some(p) = ent.names.first() {
            a.insert("tomo:path".into(), p.clone().into());
        }
        a.insert("tomo:created".into(), time(node.created_ns));
        d.record("entity", &id(g, n), &Value::Object(a))?;
    }
    stats.entities = d.end()?;

    // Activities: process versions.
    let mut uids = BTreeSet::new();
    let no_info = ProcessInfo::default();
    for n in sel.node_ids(g).filter(|&n| is_process(g, n)) {
        let node = &g.nodes[n as usize];
        let ent = &g.entities[node.entity as usize];
        let info = ent.process.as_deref().unwrap_or(&no_info);
        uids.insert(info.uid);
        let pos = ent.versions.iter().position(|&v| v == n).unwrap_or(0);
        let next = ent
            .versions
            .get(pos + 1)
            .map(|&v| g.nodes[v as usize].created_ns);
        let start = if pos == 0 {
            info.start_ns.min(node.created_ns)
        } else {
            node.created_ns
        };
        let end = next.or(info.end_ns);
        let exec = info.execs.iter().rev().find(|x| match next {
            Some(t) => x.ts_ns < t,
            None => true,
        });
        let (exe, argv) = match exec {
            Some(x) => (Some(&x.exe), &x.argv),
            None => (info.exe.as_ref(), &info.argv),
        };
        let mut a = Map::new();
        a.insert("prov:label".into(), node.label.clone().into());
        a.insert("prov:startTime".into(), datetime(start).into());
        if let Some(e) = end {
            a.insert("prov:endTime".into(), datetime(e.max(start)).into());
        }
        a.insert("tomo:uuid".into(), ent.uuid.to_string().into());
        a.insert("tomo:version".into(), node.version.into());
        a.insert("tomo:pid".into(), info.pid.into());
        a.insert("tomo:ppid".into(), info.ppid.into());
        a.insert("tomo:uid".into(), info.uid.into());
        if let Some(exe) = exe {
            a.insert("tomo:exe".into(), exe.clone().into());
        }
        // JSON-encoded so that order and empty arguments survive.
        a.insert(
            "tomo:argv".into(),
            serde_json::to_string(argv).unwrap_or_default().into(),
        );
        if next.is_none() {
            if let Some(c) = info.exit_code {
                a.insert("tomo:exitCode".into(), c.into());
            }
            if let Some(s) = info.exit_signal {
                a.insert("tomo:exitSignal".into(), s.into());
            }
        }
        d.record("activity", &id(g, n), &Value::Object(a))?;
    }
    stats.activities = d.end()?;

    // Agents: users.
    for uid in &uids {
        d.record(
            "agent",
            &format!("tomo:uid{uid}"),
            &json!({"prov:label": format!("uid {uid}"), "tomo:uid": uid}),
        )?;
    }
    stats.agents = d.end()?;

    // Relations, one section at a time (PROV-JSON groups them by type).
    let attrs = |e: u32| {
        let x = &g.edges[e as usize];
        let mut a = Map::new();
        a.insert("tomo:edge".into(), x.kind.as_str().into());
        a.insert("tomo:call".into(), x.call.into());
        a.insert("tomo:bytes".into(), x.bytes.into());
        a.insert("tomo:events".into(), x.events.into());
        if let Some(o) = x.offset {
            a.insert("tomo:offset".into(), o.into());
        }
        a
    };
    let sections: [(&str, bool, bool); 4] = [
        ("used", false, true),
        ("wasGeneratedBy", true, false),
        ("wasInformedBy", true, true),
        ("wasDerivedFrom", false, false),
    ];
    for (section, src_proc, dst_proc) in sections {
        for e in sel.edge_ids(g) {
            let x = &g.edges[e as usize];
            if is_process(g, x.src) != src_proc || is_process(g, x.dst) != dst_proc {
                continue;
            }
            let mut a = attrs(e);
            let (s, t) = (id(g, x.src), id(g, x.dst));
            match section {
                "used" => {
                    a.insert("prov:activity".into(), t.into());
                    a.insert("prov:entity".into(), s.into());
                    a.insert("prov:time".into(), datetime(x.ts_ns).into());
                }
                "wasGeneratedBy" => {
                    a.insert("prov:entity".into(), t.into());
                    a.insert("prov:activity".into(), s.into());
                    a.insert("prov:time".into(), datetime(x.ts_ns).into());
                }
                "wasInformedBy" => {
                    a.insert("prov:informed".into(), t.into());
                    a.insert("prov:informant".into(), s.into());
                    a.insert("tomo:time".into(), time(x.ts_ns));
                }
                _ => {
                    a.insert("prov:generatedEntity".into(), t.into());
                    a.insert("prov:usedEntity".into(), s.into());
                    a.insert("tomo:time".into(), time(x.ts_ns));
                    if x.kind == EdgeKind::Version {
                        a.insert(
                            "prov:type".into(),
                            json!({"$": "prov:Revision", "type": "prov:QUALIFIED_NAME"}),
                        );
                    }
                }
            }
            d.record(section, &format!("_:e{e}"), &Value::Object(a))?;
        }
        stats.relations += d.end()?;
    }
    for n in sel.node_ids(g).filter(|&n| is_process(g, n)) {
        let uid = g.entity_of(n).process.as_deref().map_or(0, |p| p.uid);
        d.record(
            "wasAssociatedWith",
            &format!("_:a{n}"),
            &json!({"prov:activity": id(g, n), "prov:agent": format!("tomo:uid{uid}")}),
        )?;
    }
    d.end()?;
    d.w.write_all(b"\n}\n")?;
    d.w.flush()?;
    Ok(stats)
}
