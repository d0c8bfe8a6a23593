//! The exports of graphs built from hand-written events, checked
//! structurally and by the reference tools: the `prov` Python package (PyPI)
//! must load the PROV-JSON with the same counts as the graph, its PROV-N
//! reader and its PROV-O reader must load the PROV-N and the Turtle to the
//! very same document, rdflib must parse the Turtle with the same counts,
//! Graphviz `dot` must render the DOT, networkx must read the GraphML, and
//! the Neo4j CSV must be consistent.
//!
//! Mapping under test (documented in ARCHITECTURE.md): one PROV element per
//! graph node, i.e. per *version*: object versions are `entity`, process
//! versions are `activity`; one relation per graph edge, one data
//! derivation per (written version, source read before the write), plus
//! one `wasAssociatedWith` per activity; one `agent` per uid.

// The synthetic-recording builder of the query tests, shared rather than copied.
#[path = "../../query/tests/common/mod.rs"]
mod common;

use common::*;
use std::collections::HashSet;
use std::path::Path;
use std::process::Command;
use tomo_event::*;
use tomo_export::{
    export, write_dot, write_graphml, write_neo4j, write_prov_json, write_svg, ExportOptions,
    ExportStats, Format, Selection,
};
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
    let stats = write_prov_json(&g, &Selection::all(), &opts(), &mut buf).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&buf).expect("PROV-JSON is JSON");
    assert_eq!(v["prefix"]["tomo"], "urn:tomo:");
    assert_eq!(v["prefix"]["tomoprog"], "urn:tomoprog:");
    let (objects, procs) = counts(&g, 0..g.nodes.len() as u32);
    let section = |s: &str| v.get(s).and_then(|x| x.as_object()).map_or(0, |m| m.len());
    assert_eq!(section("entity"), objects);
    assert_eq!(section("activity"), procs);
    assert_eq!(section("agent"), 1, "one user");
    let relations: usize = ["used", "wasGeneratedBy", "wasInformedBy", "wasDerivedFrom"]
        .iter()
        .map(|s| section(s))
        .sum();
    assert!(stats.derivations > 0, "gzip wrote after reading");
    assert_eq!(relations, g.edges.len() + stats.derivations);
    assert_eq!(section("wasAssociatedWith"), procs);
    assert_eq!(
        stats,
        ExportStats {
            entities: objects,
            activities: procs,
            agents: 1,
            relations: g.edges.len(),
            derivations: stats.derivations,
            derivations_capped: 0,
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
    // Data derivations: what gzip wrote derives from what it read.
    let out_tgz = v["wasDerivedFrom"]
        .as_object()
        .unwrap()
        .values()
        .filter(|r| r["tomo:edge"] == "data")
        .filter(|r| {
            let gen = r["prov:generatedEntity"].as_str().unwrap();
            v["entity"][gen]["prov:label"] == "/w/out.tgz"
        })
        .map(|r| {
            let used = r["prov:usedEntity"].as_str().unwrap();
            v["entity"][used]["tomo:kind"].as_str().unwrap().to_string()
        })
        .collect::<HashSet<_>>();
    assert!(
        out_tgz.contains("pipe") && out_tgz.contains("file"),
        "out.tgz derives from the pipe and from itself (gzip read it back): {out_tgz:?}"
    );
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
    assert_eq!(act["tomo:program"], "tar");
    assert_eq!(
        act["prov:type"],
        serde_json::json!([
            {"$": "tomoprog:tar", "type": "prov:QUALIFIED_NAME"},
            {"$": "tomo:Archiver", "type": "prov:QUALIFIED_NAME"}
        ])
    );
    assert!(act["tomo:startNs"].as_u64().unwrap() >= common::T0);
}

fn opts() -> ExportOptions<'static> {
    ExportOptions::default()
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
    let stats = export(
        &g,
        &Selection::all(),
        Format::ProvJson,
        &opts(),
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
        g.edges.len() + stats.derivations + procs,
        "edges, data derivations and associations: {c}"
    );

    // A part of the graph (a lineage answer) exports with its own counts.
    let out = g.by_name("/w/out.tgz")[0];
    let tree = tomo_query::why(&g, out, &tomo_query::LineageOptions::default());
    let sel = Selection::nodes(&g, tree.graph_nodes());
    let part = dir.path().join("why.prov.json");
    let stats = write_prov_json(&g, &sel, &opts(), std::fs::File::create(&part).unwrap()).unwrap();
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
    write_prov_json(
        &g,
        &Selection::all(),
        &opts(),
        std::fs::File::create(&path).unwrap(),
    )
    .unwrap();
    let c = prov_counts(&path);
    assert_eq!(c["entities"], 0);
    assert_eq!(c["relations"], 0);
}

#[test]
fn dot_renders_with_graphviz() {
    let g = scenario();
    let mut buf = Vec::new();
    let stats = write_dot(&g, &Selection::all(), &opts(), &mut buf).unwrap();
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
    let e = "pdf".parse::<Format>().unwrap_err();
    assert!(e.to_string().contains("prov-json, prov-n, turtle"), "{e}");
    let e = export(
        &Graph::new(),
        &Selection::all(),
        Format::Neo4j,
        &opts(),
        Vec::new(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("directory"), "{e}");
}

/// Run python3 on the checking script `tests/NAME` with `args`; parse its
/// last line of output as JSON. Never skips: a missing tool or package is
/// a failed test.
fn python(name: &str, args: &[&Path]) -> serde_json::Value {
    let out = Command::new("python3")
        .arg(script(name))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("python3 is needed to check the exports: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    if out.status.code() == Some(3) {
        panic!(
            "a Python package is missing ({}): pip install prov rdflib networkx (CI installs them)",
            stdout.trim()
        );
    }
    assert!(
        out.status.success(),
        "the Python check failed: {}\n{}",
        stdout,
        String::from_utf8_lossy(&out.stderr)
    );
    let last = stdout.lines().last().unwrap_or("");
    serde_json::from_str(last).unwrap_or_else(|e| panic!("bad output from Python ({e}): {stdout}"))
}

/// A checking script of `tests/` (shared with the CLI tests).
fn script(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join(name)
}

/// Export `sel` of `g` as PROV-JSON, PROV-N and Turtle into `dir` and load
/// them with the reference tools; check every count against the graph.
fn check_prov_formats(g: &Graph, sel: &Selection, dir: &Path) -> serde_json::Value {
    let mut stats = Vec::new();
    let mut paths = Vec::new();
    for (f, name) in [
        (Format::ProvJson, "x.json"),
        (Format::ProvN, "x.provn"),
        (Format::Turtle, "x.ttl"),
    ] {
        let p = dir.join(name);
        stats.push(export(g, sel, f, &opts(), std::fs::File::create(&p).unwrap()).unwrap());
        paths.push(p);
    }
    assert!(
        stats.windows(2).all(|w| w[0] == w[1]),
        "the three PROV writers report the same records: {stats:?}"
    );
    let st = &stats[0];
    let refs: Vec<&Path> = paths.iter().map(|p| p.as_path()).collect();
    let c = python("check_prov.py", &refs);
    let (objects, procs) = counts(g, sel.node_ids(g));
    let want = serde_json::json!({
        "entities": objects, "activities": procs,
        "agents": usize::from(procs > 0),
        "associations": procs,
        "relations": st.relations + st.derivations + procs,
    });
    for k in [
        "entities",
        "activities",
        "agents",
        "associations",
        "relations",
    ] {
        assert_eq!(c["counts"][k], want[k], "prov counts {k}: {c}");
        assert_eq!(c["provn"]["counts"][k], want[k], "PROV-N counts {k}: {c}");
        assert_eq!(
            c["turtle"]["prov_counts"][k], want[k],
            "PROV-O counts {k}: {c}"
        );
    }
    let rel: u64 = ["used", "generations", "communications", "derivations"]
        .iter()
        .map(|k| c["counts"][k].as_u64().unwrap())
        .sum();
    assert_eq!(rel as usize, st.relations + st.derivations, "{c}");
    assert_eq!(c["provn"]["equal"], true, "PROV-N = PROV-JSON: {c}");
    assert_eq!(c["turtle"]["equal"], true, "PROV-O = PROV-JSON: {c}");
    let rdf = &c["turtle"]["rdflib"];
    for k in [
        "entities",
        "activities",
        "agents",
        "used",
        "generations",
        "communications",
        "derivations",
        "associations",
    ] {
        assert_eq!(rdf[k], c["counts"][k], "rdflib {k}: {c}");
    }
    c
}

#[test]
fn prov_n_and_turtle_load_to_the_same_document_as_prov_json() {
    let g = scenario();
    let dir = tempfile::tempdir().unwrap();
    let c = check_prov_formats(&g, &Selection::all(), dir.path());
    assert!(c["counts"]["derivations"].as_u64().unwrap() > 0);
    // The Turtle's qualified nodes carry what the direct triples cannot:
    // each was one extra, attribute-less record for the prov reader.
    assert!(c["turtle"]["dropped_unqualified"].as_u64().unwrap() > 0);

    // A lineage answer, as `why --export` writes it.
    let out = g.by_name("/w/out.tgz")[0];
    let tree = tomo_query::why(&g, out, &tomo_query::LineageOptions::default());
    let sel = Selection::nodes(&g, tree.graph_nodes());
    check_prov_formats(&g, &sel, dir.path());

    // The empty graph is a valid document in every format.
    check_prov_formats(&Graph::new(), &Selection::all(), dir.path());
}

/// P reads a, writes x, reads b (a new version of P), writes y and x again
/// (the same version of x: nobody read it in between); Q reads x and writes
/// z. P also loads libc and reads it (as the loader does): code, not data.
/// R reads three files, then writes w.
fn derivation_scenario() -> Graph {
    let mut r = Rec::new();
    r.observed(20, "/bin/p", &["p"]);
    r.load(20, "/lib/libc.so");
    r.read(20, file("/lib/libc.so"), 832);
    r.read(20, file("/w/a"), 1);
    r.write(20, file("/w/x"), 1);
    r.read(20, file("/w/b"), 1);
    r.write(20, file("/w/y"), 1);
    r.write(20, file("/w/x"), 1);
    r.observed(21, "/bin/q", &["q"]);
    r.read(21, file("/w/x"), 2);
    r.write(21, file("/w/z"), 2);
    r.observed(22, "/bin/r", &["r"]);
    for f in ["/w/r1", "/w/r2", "/w/r3"] {
        r.read(22, file(f), 1);
    }
    r.write(22, file("/w/w"), 3);
    r.graph()
}

/// `(generated path, used path, activity program)` of the data
/// derivations of a PROV-JSON export.
fn data_derivations(g: &Graph, o: &ExportOptions) -> (Vec<(String, String, String)>, ExportStats) {
    let mut buf = Vec::new();
    let st = write_prov_json(g, &Selection::all(), o, &mut buf).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&buf).unwrap();
    let label = |sec: &str, id: &serde_json::Value| {
        v[sec][id.as_str().unwrap()]["prov:label"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let mut d: Vec<(String, String, String)> = v["wasDerivedFrom"]
        .as_object()
        .map(|m| {
            m.values()
                .filter(|r| r["tomo:edge"] == "data")
                .map(|r| {
                    (
                        label("entity", &r["prov:generatedEntity"]),
                        label("entity", &r["prov:usedEntity"]),
                        label("activity", &r["prov:activity"]),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    d.sort();
    (d, st)
}

#[test]
fn data_derivations_follow_what_the_writer_had_read() {
    let g = derivation_scenario();
    let t = |a: &str, b: &str, p: &str| (a.to_string(), b.to_string(), p.to_string());
    let (d, st) = data_derivations(&g, &opts());
    assert_eq!(
        d,
        vec![
            t("/w/w", "/w/r1", "r"),
            t("/w/w", "/w/r2", "r"),
            t("/w/w", "/w/r3", "r"),
            t("/w/x", "/w/a", "p"),
            t("/w/x", "/w/b", "p"),
            t("/w/y", "/w/b", "p"),
            t("/w/z", "/w/x", "q"),
        ],
        "each write derives from the reads of the writing version (y: b, read after \
         P's first write; a reaches y through P's version chain); nothing from libc"
    );
    assert_eq!((st.derivations, st.derivations_capped), (7, 0));
    // PROV's own rule holds: the derivation's activity used the source and
    // generated the derived entity.
    let mut buf = Vec::new();
    write_prov_json(&g, &Selection::all(), &opts(), &mut buf).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&buf).unwrap();
    let has = |sec: &str, k1: &str, v1: &serde_json::Value, k2: &str, v2: &serde_json::Value| {
        v[sec]
            .as_object()
            .unwrap()
            .values()
            .any(|r| &r[k1] == v1 && &r[k2] == v2)
    };
    for r in v["wasDerivedFrom"].as_object().unwrap().values() {
        if r["tomo:edge"] != "data" {
            continue;
        }
        let a = &r["prov:activity"];
        assert!(
            has(
                "used",
                "prov:activity",
                a,
                "prov:entity",
                &r["prov:usedEntity"]
            ),
            "{r}"
        );
        assert!(
            has(
                "wasGeneratedBy",
                "prov:activity",
                a,
                "prov:entity",
                &r["prov:generatedEntity"]
            ),
            "{r}"
        );
    }

    // Capped at two sources per writing version: the most recent ones.
    let o = ExportOptions {
        max_derivations: 2,
        ..ExportOptions::default()
    };
    let (d, st) = data_derivations(&g, &o);
    assert!(!d.contains(&t("/w/w", "/w/r1", "r")), "{d:?}");
    assert!(d.contains(&t("/w/w", "/w/r3", "r")), "{d:?}");
    assert_eq!((st.derivations, st.derivations_capped), (6, 1));
}

#[test]
fn program_classes_type_activities_and_can_be_overridden() {
    let g = scenario();
    let types = |o: &ExportOptions| {
        let mut buf = Vec::new();
        write_prov_json(&g, &Selection::all(), o, &mut buf).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&buf).unwrap();
        let mut t: Vec<(String, String)> = v["activity"]
            .as_object()
            .unwrap()
            .values()
            .flat_map(|a| {
                let p = a["tomo:program"].as_str().unwrap().to_string();
                a["prov:type"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .chain(a["prov:type"].as_object().map(|_| &a["prov:type"]))
                    .map(move |x| (p.clone(), x["$"].as_str().unwrap().to_string()))
                    .collect::<Vec<_>>()
            })
            .collect();
        t.sort();
        t.dedup();
        t
    };
    let t = types(&opts());
    for want in [
        ("sh", "tomo:Shell"),
        ("sh", "tomoprog:sh"),
        ("tar", "tomo:Archiver"),
        ("gzip", "tomo:Compressor"),
        ("true", "tomoprog:true"),
    ] {
        assert!(
            t.contains(&(want.0.into(), want.1.into())),
            "{want:?} in {t:?}"
        );
    }
    let o = ExportOptions {
        classes: tomo_export::ProgramClasses::with_overrides("Packer: tar gzip\nnone: sh\n")
            .unwrap(),
        ..ExportOptions::default()
    };
    let t = types(&o);
    assert!(t.contains(&("tar".into(), "tomo:Packer".into())), "{t:?}");
    assert!(
        !t.contains(&("tar".into(), "tomo:Archiver".into())),
        "{t:?}"
    );
    assert!(
        !t.iter().any(|(p, c)| p == "sh" && c.starts_with("tomo:")),
        "{t:?}"
    );
}

#[test]
fn svg_is_laid_out_by_graphviz() {
    let g = scenario();
    let mut svg = Vec::new();
    let st = write_svg(&g, &Selection::all(), &opts(), &mut svg).unwrap();
    let svg = String::from_utf8(svg).unwrap();
    assert!(svg.contains("<svg"), "{svg}");
    assert_eq!(svg.matches("class=\"node\"").count(), g.nodes.len());
    assert_eq!(svg.matches("class=\"edge\"").count(), g.edges.len());
    assert_eq!(st.relations, g.edges.len());
}

#[test]
fn graphml_reads_with_networkx_with_typed_attributes() {
    let g = scenario();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.graphml");
    let st = write_graphml(
        &g,
        &Selection::all(),
        &opts(),
        std::fs::File::create(&path).unwrap(),
    )
    .unwrap();

    let c = &python("check_graphml.py", &[&path])[0];
    let (objects, procs) = counts(&g, 0..g.nodes.len() as u32);
    assert_eq!(c["nodes"], g.nodes.len(), "{c}");
    assert_eq!(c["edges"], g.edges.len(), "{c}");
    assert_eq!(c["processes"], procs, "{c}");
    assert_eq!((st.entities, st.activities), (objects, procs));
    assert_eq!(
        c["pid_types"],
        serde_json::json!(["int"]),
        "declared long: {c}"
    );
    assert_eq!(c["bytes_types"], serde_json::json!(["int"]), "{c}");
    assert_eq!(c["programs"]["tar"], "Archiver", "{c}");
    assert!(c["kinds"].to_string().contains("version"), "{c}");
}

#[test]
fn neo4j_csv_is_consistent() {
    let g = scenario();
    let dir = tempfile::tempdir().unwrap();
    let (np, rp) = (dir.path().join("nodes.csv"), dir.path().join("rels.csv"));
    let st = write_neo4j(
        &g,
        &Selection::all(),
        &opts(),
        std::fs::File::create(&np).unwrap(),
        std::fs::File::create(&rp).unwrap(),
    )
    .unwrap();
    assert_eq!(st.relations, g.edges.len());
    let c = &python("check_neo4j.py", &[&np, &rp])[0];
    assert_eq!(c["nodes"], g.nodes.len(), "{c}");
    assert_eq!(c["relationships"], g.edges.len(), "{c}");
    assert_eq!(c["problems"], serde_json::json!([]), "{c}");
    assert!(c["labels"].to_string().contains("Archiver"), "{c}");
}

#[test]
fn every_writer_reports_progress_up_to_its_total() {
    use std::sync::Mutex;
    let g = scenario();
    for f in [
        Format::ProvJson,
        Format::ProvN,
        Format::Turtle,
        Format::Dot,
        Format::GraphMl,
    ] {
        let seen: Mutex<Vec<(u64, u64)>> = Mutex::new(Vec::new());
        let cb = |done: u64, total: u64| seen.lock().unwrap().push((done, total));
        let o = ExportOptions {
            progress: Some(&cb),
            ..ExportOptions::default()
        };
        export(&g, &Selection::all(), f, &o, Vec::new()).unwrap();
        let seen = seen.into_inner().unwrap();
        let (first, last) = (seen[0], seen[seen.len() - 1]);
        assert_eq!(first.0, 0, "{f:?}: {seen:?}");
        assert!(
            last.1 > 0 && last.0 == last.1,
            "{f:?} ends at its total: {seen:?}"
        );
        assert!(seen.windows(2).all(|w| w[0].0 <= w[1].0), "{f:?}: {seen:?}");
    }
}
