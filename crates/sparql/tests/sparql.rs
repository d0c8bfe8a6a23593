//! SPARQL over the PROV-O view of graphs built from hand-written events:
//! the view holds what the Turtle export holds, and the two queries of the
//! seed (files of a tar archive and the editors that wrote them; processes
//! whose data held a string) translate directly.

// The synthetic-recording builder of the query tests, shared rather than copied.
#[path = "../../query/tests/common/mod.rs"]
mod common;

use common::*;
use tomo_event::*;
use tomo_export::{ExportOptions, Selection};
use tomo_sparql::{Answer, OutputFormat, SparqlError, TextMatch, View};
use tomo_store::{EntityKind, Graph};

fn rows(a: &Answer) -> (Vec<String>, Vec<Vec<String>>) {
    match a {
        Answer::Solutions { vars, rows } => (
            vars.clone(),
            rows.iter()
                .map(|r| {
                    r.iter()
                        .map(|t| t.as_ref().map_or_else(String::new, tomo_sparql::short))
                        .collect()
                })
                .collect(),
        ),
        other => panic!("not a SELECT answer: {other:?}"),
    }
}

fn view(g: &Graph, texts: &[TextMatch]) -> View {
    View::build(g, &Selection::all(), &ExportOptions::default(), true, texts).unwrap()
}

fn one(v: &View, q: &str) -> String {
    let (_, r) = rows(&v.query(q).unwrap());
    assert_eq!(r.len(), 1, "{q}: {r:?}");
    r[0][0].clone()
}

#[test]
fn the_view_holds_the_prov_export() {
    let g = pipeline().graph();
    let v = view(&g, &[]);
    let objects = g
        .nodes
        .iter()
        .filter(|n| g.entities[n.entity as usize].kind != EntityKind::Process)
        .count();
    let procs = g.nodes.len() - objects;
    assert_eq!(v.stats.entities, objects);
    let count = |class: &str| {
        one(
            &v,
            &format!("SELECT (COUNT(DISTINCT ?x) AS ?n) WHERE {{ ?x a {class} }}"),
        )
    };
    assert_eq!(count("prov:Entity"), objects.to_string());
    assert_eq!(count("prov:Activity"), procs.to_string());
    assert_eq!(count("prov:Agent"), "1");
    assert_eq!(count("tomo:Archiver"), "1", "tar");
    assert_eq!(count("tomoprog:gzip"), "1");
    let qualified: usize = ["prov:Usage", "prov:Generation", "prov:Communication"]
        .iter()
        .map(|c| count(c).parse::<usize>().unwrap())
        .sum::<usize>()
        + count("prov:Derivation").parse::<usize>().unwrap()
        + count("prov:Revision").parse::<usize>().unwrap();
    assert_eq!(qualified, v.stats.relations + v.stats.derivations);

    // Times: xsd:dateTime for SPARQL's date functions, integers for exact
    // arithmetic.
    let tar_start = one(
        &v,
        "SELECT ?ns WHERE { ?a tomo:program \"tar\" ; tomo:startNs ?ns }",
    );
    assert_eq!(
        tar_start.parse::<u64>().unwrap(),
        g.entities[g.by_pid(11)[0] as usize]
            .process
            .as_ref()
            .unwrap()
            .start_ns
    );
    let year = one(
        &v,
        "SELECT (YEAR(?t) AS ?y) WHERE { ?a tomo:program \"tar\" ; prov:startedAtTime ?t }",
    );
    assert_eq!(year, "2023");
}

/// A session like the seed's: a shell runs an editor on several text files
/// at different times (a.txt twice), copies one, edits a non-text file, and
/// archives them all with tar. pids: vi 21 (a.txt), 22 (b.txt), 23
/// (c.txt), 24 (a.txt again), 25 (notes.md); cp 26; tar 27.
fn editing_session(content: bool) -> Rec {
    let mut r = Rec::new();
    r.observed(10, "/bin/sh", &["sh", "session.sh"]);
    let text = b"Llamas are lame.\n";
    let content_op = |dir: Dir, path: &str, data: &[u8]| Op::Content {
        call: if dir == Dir::Read {
            Call::read
        } else {
            Call::write
        },
        dir,
        fd: 3,
        obj: file(path),
        offset: Some(0),
        total: data.len() as u64,
        data: data.to_vec(),
    };
    let edit = |r: &mut Rec, pid: u32, path: &str, existing: bool, data: &[u8]| {
        r.spawn(10, pid);
        r.exec(pid, "/usr/bin/vi", &["vi", path]);
        if existing {
            r.read(pid, file(path), data.len() as u64);
            if content {
                r.push(pid, content_op(Dir::Read, path, data));
            }
        }
        r.create(pid, path);
        r.write(pid, file(path), data.len() as u64);
        if content {
            r.push(pid, content_op(Dir::Write, path, data));
        }
        r.exit(pid, 0);
        r.t += 1_000_000_000; // a second between editor sessions
    };
    edit(&mut r, 21, "/w/a.txt", false, b"first draft\n");
    edit(&mut r, 22, "/w/b.txt", false, text);
    edit(&mut r, 23, "/w/c.txt", false, b"camels\n");
    edit(&mut r, 24, "/w/a.txt", true, b"first draft\n");
    edit(&mut r, 25, "/w/notes.md", false, text);
    r.spawn(10, 26);
    r.exec(26, "/usr/bin/cp", &["cp", "/w/b.txt", "/w/d.txt"]);
    r.read(26, file("/w/b.txt"), text.len() as u64);
    r.create(26, "/w/d.txt");
    r.write(26, file("/w/d.txt"), text.len() as u64);
    r.exit(26, 0);
    r.spawn(10, 27);
    r.exec(27, "/usr/bin/tar", &["tar", "cf", "archive.tar"]);
    r.create(27, "/w/archive.tar");
    for f in [
        "/w/a.txt",
        "/w/b.txt",
        "/w/c.txt",
        "/w/d.txt",
        "/w/notes.md",
    ] {
        r.read(27, file(f), 10);
        if content && (f == "/w/b.txt" || f == "/w/notes.md" || f == "/w/d.txt") {
            r.push(27, content_op(Dir::Read, f, text));
        }
    }
    r.write(27, file("/w/archive.tar"), 10240);
    r.exit(27, 0);
    r.exit(10, 0);
    r
}

/// Seed 000, query 1, with the archive named by its label.
const QUERY_1: &str = r#"
SELECT (MIN(?startTime) AS ?s) (MAX(?endTime) AS ?e) WHERE {
  ?tar rdfs:label "/w/archive.tar" .
  ?tar prov:wasDerivedFrom ?file .
  ?file rdfs:label ?name . FILTER regex(?name, "txt")
  ?file prov:wasGeneratedBy ?activity .
  ?activity a tomo:Editor .
  ?activity prov:startedAtTime ?startTime .
  ?activity prov:endedAtTime ?endTime .
}"#;

fn process(g: &Graph, pid: u32) -> &tomo_store::ProcessInfo {
    g.entities[g.by_pid(pid)[0] as usize]
        .process
        .as_deref()
        .unwrap()
}

#[test]
fn seed_query_1_finds_the_editor_sessions_behind_the_archive() {
    let g = editing_session(false).graph();
    let v = view(&g, &[]);
    let (vars, r) = rows(&v.query(QUERY_1).unwrap());
    assert_eq!(vars, ["s", "e"]);
    // The editors of the text files tar read: 22 (b), 23 (c), 24 (a, the
    // second edit). Not 21 (its a.txt was replaced before tar read it),
    // not 25 (notes.md), not cp (d.txt: no editor).
    let start = process(&g, 22).start_ns;
    let end = process(&g, 24).end_ns.unwrap();
    assert_eq!(
        r,
        vec![vec![
            tomo_export::datetime(start),
            tomo_export::datetime(end)
        ]]
    );
    // The editors one by one.
    let q = r#"SELECT DISTINCT ?pid WHERE {
        ?tar rdfs:label "/w/archive.tar" ; prov:wasDerivedFrom ?file .
        ?file rdfs:label ?name FILTER regex(?name, "txt")
        ?file prov:wasGeneratedBy ?a . ?a a tomo:Editor ; tomo:pid ?pid } ORDER BY ?pid"#;
    let (_, r) = rows(&v.query(q).unwrap());
    assert_eq!(r, vec![vec!["22"], vec!["23"], vec!["24"]]);

    // The lean view (direct triples only) answers the same, from fewer
    // triples, and has no qualified nodes.
    let lean = View::build(&g, &Selection::all(), &ExportOptions::default(), false, &[]).unwrap();
    assert!(
        lean.triples * 2 < v.triples,
        "{} vs {}",
        lean.triples,
        v.triples
    );
    assert_eq!(
        rows(&lean.query(QUERY_1).unwrap()),
        rows(&v.query(QUERY_1).unwrap())
    );
    assert!(matches!(
        lean.query("ASK { ?u a prov:Usage }").unwrap(),
        Answer::Boolean(false)
    ));
}

#[test]
fn seed_query_2_finds_the_processes_whose_data_held_the_string() {
    let rec = editing_session(true);
    let g = rec.graph();
    let needles = ["Llamas are lame", "no such text"];
    let found = tomo_query::activities_with_text(&g, rec.evs.iter().cloned(), &needles).unwrap();
    let texts = vec![
        TextMatch {
            text: "Llamas are lame".into(),
            activities: found[0].clone(),
        },
        TextMatch {
            text: "no such text".into(),
            activities: found[1].clone(),
        },
    ];
    assert!(found[1].is_empty());
    let v = view(&g, &texts);
    let q = r#"SELECT (MIN(?st) AS ?min) ?vi WHERE {
        ?vi tomo:hasText "Llamas are lame" .
        ?vi prov:startedAtTime ?st
    } GROUP BY ?vi"#;
    let (vars, r) = rows(&v.query(q).unwrap());
    assert_eq!(vars, ["min", "vi"]);
    // Who had the string: vi 22 (wrote b.txt), vi 25 (notes.md), tar 27
    // (read b.txt, d.txt and notes.md). cp copied b.txt, but without
    // captured content for its calls it is not claimed.
    let q = r#"SELECT ?pid ?prog WHERE { ?a tomo:hasText "Llamas are lame" ;
        tomo:pid ?pid ; tomo:program ?prog } ORDER BY ?pid"#;
    let (_, who) = rows(&v.query(q).unwrap());
    assert_eq!(
        who,
        vec![vec!["22", "vi"], vec!["25", "vi"], vec!["27", "tar"]]
    );
    assert_eq!(r.len(), 3);
    let mut mins: Vec<&String> = r.iter().map(|row| &row[0]).collect();
    mins.sort();
    assert_eq!(
        *mins[0],
        tomo_export::datetime(process(&g, 22).start_ns),
        "the earliest is vi 22's start"
    );
}

#[test]
fn text_split_across_two_reads_is_found() {
    let mut r = Rec::new();
    r.observed(30, "/usr/bin/less", &["less", "/w/f"]);
    for (off, part) in [(0u64, &b"Llamas a"[..]), (8, b"re lame")] {
        r.read(30, file("/w/f"), part.len() as u64);
        r.push(
            30,
            Op::Content {
                call: Call::read,
                dir: Dir::Read,
                fd: 3,
                obj: file("/w/f"),
                offset: Some(off),
                total: part.len() as u64,
                data: part.to_vec(),
            },
        );
    }
    let g = r.graph();
    let found =
        tomo_query::activities_with_text(&g, r.evs.iter().cloned(), &["Llamas are lame"]).unwrap();
    assert_eq!(found[0].len(), 1, "{found:?}");
    assert_eq!(g.entity_of(found[0][0]).kind, EntityKind::Process);
    assert!(tomo_query::activities_with_text(&g, r.evs.iter().cloned(), &[""]).is_err());
}

#[test]
fn answers_in_every_format_and_errors_are_clear() {
    let g = pipeline().graph();
    let v = view(&g, &[]);
    let a = v
        .query("SELECT ?p WHERE { ?a tomo:program ?p } ORDER BY ?p")
        .unwrap();
    let mut json = Vec::new();
    a.write(OutputFormat::Json, &mut json).unwrap();
    let j: serde_json::Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(j["head"]["vars"], serde_json::json!(["p"]));
    assert_eq!(j["results"]["bindings"][0]["p"]["value"], "gzip");
    let mut csv = Vec::new();
    a.write(OutputFormat::Csv, &mut csv).unwrap();
    assert!(String::from_utf8(csv).unwrap().starts_with("p\r\ngzip\r\n"));
    let mut table = Vec::new();
    a.write(OutputFormat::Table, &mut table).unwrap();
    assert_eq!(String::from_utf8(table).unwrap(), "p\ngzip\nsh\ntar\n");

    assert!(matches!(
        v.query("ASK { ?a a tomo:Archiver }").unwrap(),
        Answer::Boolean(true)
    ));
    match v
        .query("CONSTRUCT { ?a tomo:ran ?p } WHERE { ?a tomo:program ?p }")
        .unwrap()
    {
        Answer::Graph(t) => assert_eq!(t.len(), 3),
        other => panic!("{other:?}"),
    }
    let e = v.query("SELECT * WHERE { ?x ?y }").unwrap_err();
    assert!(matches!(e, SparqlError::Syntax(_)), "{e}");
    assert!(e.to_string().contains("1:"), "says where: {e}");
    let e = v.query("SELECT * WHERE { ?x nope:y ?z }").unwrap_err();
    assert!(e.to_string().contains("Prefix not found"), "{e}");
    // Unbound values are empty cells, not errors.
    let a = v
        .query("SELECT ?a ?x WHERE { ?a tomo:program \"tar\" OPTIONAL { ?a tomo:nothing ?x } }")
        .unwrap();
    let (_, r) = rows(&a);
    assert_eq!(r[0][1], "");
}
