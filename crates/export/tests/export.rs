//! PROV-JSON and DOT exports of graphs built from hand-written events,
//! checked structurally and by the reference tools: the `prov` Python
//! package (PyPI) must load the PROV-JSON with the same counts as the graph,
//! and Graphviz `dot` must render the DOT.
//!
//! Mapping under test (documented in ARCHITECTURE.md): one PROV element per
//! graph node, i.e. per *version*: object versions are `entity`, process
//! versions are `activity`; one relation per graph edge plus one
//! `wasAssociatedWith` per activity; one `agent` per uid.

// The synthetic-recording builder of the query tests, shared rather than copied.
#[path = "../../query/tests/common/mod.rs"]
mod common;

use common::*;
use std::collections::HashSet;
use std::path::Path;
use std::process::Command;
use tomo_event::*;
use tomo_export::{export, write_dot, write_prov_json, ExportStats, Format, Selection};
use tomo_store::{EdgeKind, EntityKind, Graph};

/// The tar | gzip pipeline, then gzip reads its output back and writes more
/// (new versions of gzip and of the output), execs (an exec edge), and a
/// socket and an awkwardly named file appear.
fn scenario() -> Graph {
    let mut r = pipeline();
    r.read(12, file("/w/out.tgz"), 40);
    r.write(12, file("/w/out.tgz"), 2);
    r.exec(12, "/usr/bin/true", &["true"]);
    r.write(
        12,
        ObjRef {
            kind: ObjKind::Socket,
            dev: 9,
            ino: 31337,
            path: None,
        },
        9,
    );
    r.write(12, file("/w/we\"ird\\name\nwith newline"), 1);
    let g = r.graph();
    assert!(g.edges.iter().any(|e| e.kind == EdgeKind::Version));
    assert!(g.edges.iter().any(|e| e.kind == EdgeKind::Exec));
    g
}

fn counts(g: &Graph, nodes: impl Iterator<Item = u32>) -> (usize, usize) {
    let (mut objects, mut procs) = (0, 0);
    for n in nodes {
        if g.entity_of(n).kind == EntityKind::Process {
            procs += 1;
        } else {
            objects += 1;
        }
    }
    (objects, procs)
}

#[test]
fn prov_json_has_one_element_per_version_and_one_relation_per_edge() {
    let g = scenario();
    let mut buf = Vec::new();
    let stats = write_prov_json(&g, &Selection::all(), &mut buf).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&buf).expect("PROV-JSON is JSON");
    assert_eq!(v["prefix"]["tomo"], "urn:tomo:");
    let (objects, procs) = counts(&g, 0..g.nodes.len() as u32);
    let section = |s: &str| v.get(s).and_then(|x| x.as_object()).map_or(0, |m| m.len());
    assert_eq!(section("entity"), objects);
    assert_eq!(section("activity"), procs);
    assert_eq!(section("agent"), 1, "one user");
    let relations: usize = ["used", "wasGeneratedBy", "wasInformedBy", "wasDerivedFrom"]
        .iter()
        .map(|s| section(s))
        .sum();
    assert_eq!(relations, g.edges.len());
    assert_eq!(section("wasAssociatedWith"), procs);
    assert_eq!(
        stats,
        ExportStats {
            entities: objects,
            activities: procs,
            agents: 1,
            relations: g.edges.len()
        }
    );

    // Every relation names declared elements, on the right side.
    let ents: HashSet<&String> = v["entity"].as_object().unwrap().keys().collect();
    let acts: HashSet<&String> = v["activity"].as_object().unwrap().keys().collect();
    for (sec, a, b, sa, sb) in [
        ("used", "prov:activity", "prov:entity", &acts, &ents),
        (
            "wasGeneratedBy",
            "prov:activity",
            "prov:entity",
            &acts,
            &ents,
        ),
        (
            "wasInformedBy",
            "prov:informed",
            "prov:informant",
            &acts,
            &acts,
        ),
        (
            "wasDerivedFrom",
            "prov:generatedEntity",
            "prov:usedEntity",
            &ents,
            &ents,
        ),
    ] {
        for (id, rel) in v[sec].as_object().unwrap() {
            let (x, y) = (
                rel[a].as_str().unwrap().to_string(),
                rel[b].as_str().unwrap().to_string(),
            );
            assert!(
                sa.contains(&x) && sb.contains(&y),
                "{sec} {id} names undeclared elements: {rel}"
            );
        }
    }
    // Versions of an object are PROV revisions; times are xsd:dateTime.
    let revisions = v["wasDerivedFrom"]
        .as_object()
        .unwrap()
        .values()
        .filter(|r| r["prov:type"]["$"] == "prov:Revision")
        .count();
    let versions = g
        .edges
        .iter()
        .filter(|e| e.kind == EdgeKind::Version && g.entity_of(e.src).kind.is_object())
        .count();
    assert_eq!(revisions, versions);
    let gen = v["wasGeneratedBy"]
        .as_object()
        .unwrap()
        .values()
        .next()
        .unwrap();
    assert!(
        gen["prov:time"]
            .as_str()
            .unwrap()
            .starts_with("2023-11-14T22:13:20"),
        "{gen}"
    );
    let act = v["activity"]
        .as_object()
        .unwrap()
        .values()
        .find(|a| a["prov:label"] == "tar")
        .unwrap();
    assert_eq!(act["tomo:pid"], 11);
    assert_eq!(act["tomo:argv"], "[\"tar\",\"cf\",\"-\",\"/d\"]");
}

/// Run python3 with the `prov` package on a PROV-JSON file and return the
/// counts it sees. Never skips: a missing tool is a failed test.
fn prov_counts(path: &Path) -> serde_json::Value {
    const SCRIPT: &str = r#"
import json, sys
try:
    import prov
    from prov.model import ProvDocument, ProvEntity, ProvActivity, ProvAgent, ProvRelation, ProvAssociation
except ImportError as e:
    print("NO_PROV", e)
    sys.exit(3)
doc = ProvDocument.deserialize(sys.argv[1], format="json")
n = lambda cls: sum(1 for _ in doc.get_records(cls))
print(json.dumps({"entities": n(ProvEntity), "activities": n(ProvActivity), "agents": n(ProvAgent),
                  "relations": n(ProvRelation), "associations": n(ProvAssociation),
                  "provn_lines": len(doc.get_provn().splitlines())}))
"#;
    let out = match Command::new("python3")
        .arg("-c")
        .arg(SCRIPT)
        .arg(path)
        .output()
    {
        Ok(o) => o,
        Err(e) => panic!("python3 is needed to check PROV-JSON with the `prov` package: {e}"),
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    if out.status.code() == Some(3) {
        panic!("the Python package `prov` is not importable ({}): run `pip install prov` (CI installs it)", stdout.trim());
    }
    assert!(
        out.status.success(),
        "prov failed to load the export: {}\n{}",
        stdout,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("bad output from the prov check ({e}): {stdout}"))
}

#[test]
fn prov_json_loads_with_the_prov_package_with_the_same_counts() {
    let g = scenario();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.prov.json");
    export(
        &g,
        &Selection::all(),
        Format::ProvJson,
        std::fs::File::create(&path).unwrap(),
    )
    .unwrap();
    let c = prov_counts(&path);
    let (objects, procs) = counts(&g, 0..g.nodes.len() as u32);
    assert_eq!(c["entities"], objects, "{c}");
    assert_eq!(c["activities"], procs, "{c}");
    assert_eq!(c["agents"], 1, "{c}");
    assert_eq!(c["associations"], procs, "{c}");
    assert_eq!(
        c["relations"],
        g.edges.len() + procs,
        "edges plus associations: {c}"
    );

    // A part of the graph (a lineage answer) exports with its own counts.
    let out = g.by_name("/w/out.tgz")[0];
    let tree = tomo_query::why(&g, out, &tomo_query::LineageOptions::default());
    let sel = Selection::nodes(&g, tree.graph_nodes());
    let part = dir.path().join("why.prov.json");
    let stats = write_prov_json(&g, &sel, std::fs::File::create(&part).unwrap()).unwrap();
    let c = prov_counts(&part);
    let (objects, procs) = counts(&g, sel.node_ids(&g));
    assert!(objects < g.nodes.len() && procs > 0);
    assert_eq!(
        (c["entities"].as_u64(), c["activities"].as_u64()),
        (Some(objects as u64), Some(procs as u64)),
        "{c}"
    );
    assert_eq!(stats.relations, sel.edge_ids(&g).count());
}

#[test]
fn prov_json_of_an_empty_graph_is_a_valid_document() {
    let g = Graph::new();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.json");
    write_prov_json(&g, &Selection::all(), std::fs::File::create(&path).unwrap()).unwrap();
    let c = prov_counts(&path);
    assert_eq!(c["entities"], 0);
    assert_eq!(c["relations"], 0);
}

#[test]
fn dot_renders_with_graphviz() {
    let g = scenario();
    let mut buf = Vec::new();
    let stats = write_dot(&g, &Selection::all(), &mut buf).unwrap();
    let text = String::from_utf8(buf.clone()).unwrap();
    assert!(text.starts_with("digraph tomo {"));
    let (objects, procs) = counts(&g, 0..g.nodes.len() as u32);
    assert_eq!(
        (stats.entities, stats.activities, stats.relations),
        (objects, procs, g.edges.len())
    );
    assert!(
        text.contains("shape=box, label=\"tar[11]\\ntar cf - /d\""),
        "{text}"
    );
    assert!(
        text.contains("we\\\"ird\\\\name\\nwith newline"),
        "names are escaped: {text}"
    );
    assert!(text.contains("style=dashed"), "version edges are dashed");

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.dot");
    std::fs::write(&path, &buf).unwrap();
    let out = match Command::new("dot").arg("-Tsvg").arg(&path).output() {
        Ok(o) => o,
        Err(e) => {
            panic!("Graphviz `dot` is needed to check the DOT export (apt install graphviz): {e}")
        }
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "dot failed: {stderr}");
    assert!(
        !stderr.contains("Warning") && !stderr.contains("Error"),
        "dot complained: {stderr}"
    );
    let svg = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        svg.matches("class=\"node\"").count(),
        g.nodes.len(),
        "one SVG node per graph node"
    );
    assert_eq!(
        svg.matches("class=\"edge\"").count(),
        g.edges.len(),
        "one SVG edge per graph edge"
    );
}

#[test]
fn unknown_formats_are_errors() {
    assert!("prov-json".parse::<Format>().is_ok());
    assert!("dot".parse::<Format>().is_ok());
    let e = "svg".parse::<Format>().unwrap_err();
    assert!(e.to_string().contains("prov-json or dot"));
}
