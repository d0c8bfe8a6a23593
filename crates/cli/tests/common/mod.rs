//! Shared helpers of the `tomo` integration tests: compile a C program into a
//! temporary directory, record it with `tomo record`, and look at the result
//! through `tomo graph|events|ps|files --json`.
//!
//! Graph assertions are written as *triples* `"SRC KIND DST"` where an
//! endpoint is `process:NAME` (basename of the exe), `file:/abs/path`,
//! `dir:/abs/path`, `symlink:/abs/path`, `pipe` or `socket`, ignoring
//! versions and uuids. `$D` in an expected triple stands for the test's
//! working directory.
#![allow(dead_code)]

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::fmt::Write as _;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

/// Path of the `tomo` binary under test.
pub fn tomo_bin() -> &'static str {
    env!("CARGO_BIN_EXE_tomo")
}

/// Directory of the C sources of the coverage suite.
pub fn c_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("c")
}

/// Default time limit of one child command.
pub const TIMEOUT: Duration = Duration::from_secs(60);

/// Run `cmd` to completion (stdin closed, stdout and stderr captured), killing
/// it after `limit`. Panics with a readable message if it could not run or
/// timed out.
pub fn run(cmd: &mut Command, limit: Duration) -> Output {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let desc = format!("{cmd:?}");
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {desc}: {e}"));
    // Drain both pipes on threads so that a chatty child cannot block.
    let mut out_pipe = child.stdout.take().expect("stdout piped");
    let mut err_pipe = child.stderr.take().expect("stderr piped");
    let out_t = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out_pipe.read_to_end(&mut v);
        v
    });
    let err_t = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err_pipe.read_to_end(&mut v);
        v
    });
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break st,
            Ok(None) if start.elapsed() > limit => {
                let _ = child.kill();
                let _ = child.wait();
                let err = err_t.join().unwrap_or_default();
                panic!(
                    "timed out after {limit:?}: {desc}\nstderr:\n{}",
                    String::from_utf8_lossy(&err)
                );
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => panic!("wait failed for {desc}: {e}"),
        }
    };
    Output {
        status,
        stdout: out_t.join().unwrap_or_default(),
        stderr: err_t.join().unwrap_or_default(),
    }
}

/// Run `tomo ARGS` and return its output (any exit status).
pub fn tomo(args: &[&str]) -> Output {
    run(Command::new(tomo_bin()).args(args), TIMEOUT)
}

/// Run `tomo ARGS`, require success, return stdout as a string.
pub fn tomo_ok(args: &[&str]) -> String {
    let out = tomo(args);
    assert!(
        out.status.success(),
        "`tomo {}` failed with {}\nstdout:\n{}\nstderr:\n{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("tomo printed non-UTF-8")
}

/// Run `tomo ARGS` and parse stdout as one JSON document.
pub fn tomo_json(args: &[&str]) -> Value {
    let s = tomo_ok(args);
    serde_json::from_str(&s).unwrap_or_else(|e| {
        panic!(
            "`tomo {}` did not print JSON: {e}\n{}",
            args.join(" "),
            truncate(&s, 2000)
        )
    })
}

fn truncate(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// A temporary working directory for one test.
pub struct Work {
    _tmp: tempfile::TempDir,
    /// Canonical absolute path of the directory.
    pub dir: PathBuf,
}

impl Default for Work {
    fn default() -> Self {
        Self::new()
    }
}

impl Work {
    pub fn new() -> Work {
        let tmp = tempfile::Builder::new()
            .prefix("tomo-test-")
            .tempdir()
            .expect("tempdir");
        let dir = tmp.path().canonicalize().expect("canonicalize tempdir");
        Work { _tmp: tmp, dir }
    }

    /// The directory as a string (what `$D` expands to).
    pub fn d(&self) -> String {
        self.dir.to_str().expect("UTF-8 tempdir").to_string()
    }

    /// Absolute path of `rel` inside the directory, as a string.
    pub fn p(&self, rel: &str) -> String {
        format!("{}/{}", self.d(), rel)
    }

    /// Replace `$D` by the directory.
    pub fn expand(&self, s: &str) -> String {
        s.replace("$D", &self.d())
    }

    pub fn write(&self, rel: &str, contents: impl AsRef<[u8]>) {
        let p = self.dir.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("mkdir -p");
        }
        std::fs::write(&p, contents).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
    }

    pub fn mkdir(&self, rel: &str) {
        std::fs::create_dir_all(self.dir.join(rel)).expect("mkdir");
    }

    /// Compile `tests/c/NAME.c` statically (no dynamic loader, so the only
    /// file a program touches besides its own are the ones it opens) into the
    /// directory; returns the absolute path of the binary.
    pub fn compile(&self, name: &str) -> String {
        self.compile_with(name, &["-static"])
    }

    /// Compile `tests/c/NAME.c` as an ordinary dynamically linked program.
    pub fn compile_dynamic(&self, name: &str) -> String {
        self.compile_with(name, &[])
    }

    fn compile_with(&self, name: &str, extra: &[&str]) -> String {
        let src = c_dir().join(format!("{name}.c"));
        let out = self.p(name);
        let o = run(
            Command::new("cc")
                .args(extra)
                .args(["-O1", "-Wall", "-Werror", "-pthread", "-I"])
                .arg(c_dir())
                .arg("-o")
                .arg(&out)
                .arg(&src),
            TIMEOUT,
        );
        assert!(
            o.status.success(),
            "cc failed for {}:\n{}",
            src.display(),
            String::from_utf8_lossy(&o.stderr)
        );
        out
    }

    /// `tomo record -o $D/rec.tomo -- ARGV...` with the directory as cwd;
    /// requires that both tomo and the command exit with status 0.
    pub fn record(&self, argv: &[&str]) -> Recording {
        let r = self.record_any(argv);
        assert!(
            r.status.success(),
            "`tomo record -- {}` exited with {}\nstderr:\n{}",
            argv.join(" "),
            r.status,
            r.stderr
        );
        r
    }

    /// Like [`Work::record`] but accepts any exit status.
    pub fn record_any(&self, argv: &[&str]) -> Recording {
        self.record_to("rec.tomo", argv)
    }

    pub fn record_to(&self, file: &str, argv: &[&str]) -> Recording {
        let path = self.p(file);
        let o = run(
            Command::new(tomo_bin())
                .current_dir(&self.dir)
                .args(["record", "-o", &path, "--"])
                .args(argv),
            TIMEOUT,
        );
        let r = Recording {
            path,
            status: o.status,
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
            graph: Default::default(),
        };
        assert!(
            Path::new(&r.path).exists(),
            "`tomo record` wrote no recording at {} (status {})\nstderr:\n{}",
            r.path,
            r.status,
            r.stderr
        );
        r
    }
}

/// A recording made by `tomo record`.
pub struct Recording {
    pub path: String,
    pub status: ExitStatus,
    /// What the recorded command printed (tomo passes its stdout through).
    pub stdout: String,
    pub stderr: String,
    graph: std::cell::OnceCell<Graph>,
}

impl Recording {
    /// `tomo graph FILE --json`, parsed (cached).
    pub fn graph(&self) -> &Graph {
        self.graph
            .get_or_init(|| Graph::from_json(&tomo_json(&["graph", &self.path, "--json"])))
    }

    /// `tomo events FILE --json`: one JSON object per line.
    pub fn events(&self) -> Vec<Value> {
        let s = tomo_ok(&["events", &self.path, "--json"]);
        s.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                serde_json::from_str(l).unwrap_or_else(|e| panic!("bad event line {l:?}: {e}"))
            })
            .collect()
    }

    /// `tomo ps FILE --json`.
    pub fn ps(&self) -> Vec<Value> {
        match tomo_json(&["ps", &self.path, "--json"]) {
            Value::Array(v) => v,
            other => panic!("`tomo ps --json` is not an array: {other}"),
        }
    }

    /// `tomo files FILE --json`.
    pub fn files(&self) -> Vec<Value> {
        match tomo_json(&["files", &self.path, "--json"]) {
            Value::Array(v) => v,
            other => panic!("`tomo files --json` is not an array: {other}"),
        }
    }
}

/// Events whose op is `variant` (e.g. "Io", "Chmod"): (whole event, op body).
pub fn ops<'a>(events: &'a [Value], variant: &str) -> Vec<(&'a Value, &'a Value)> {
    events
        .iter()
        .filter_map(|e| {
            e.get("op")
                .and_then(|op| op.get(variant))
                .map(|body| (e, body))
        })
        .collect()
}

/// The name of a `Call` as serialized (`"write"`, or `"other(5)"`).
pub fn call_name(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Object(m) => match m.get("other") {
            Some(n) => format!("other({n})"),
            None => v.to_string(),
        },
        _ => v.to_string(),
    }
}

/// Path of an `ObjRef` JSON value.
pub fn obj_path(obj: &Value) -> Option<&str> {
    obj.get("path").and_then(Value::as_str)
}

pub fn ok(ev: &Value) -> bool {
    ev.get("ret")
        .and_then(Value::as_i64)
        .is_some_and(|r| r >= 0)
}

#[derive(Clone, Debug)]
pub struct Node {
    pub id: u64,
    pub uuid: String,
    pub kind: String,
    pub version: u64,
    pub label: String,
    pub names: Vec<String>,
    pub pid: Option<i64>,
    pub exe: Option<String>,
    pub argv: Vec<String>,
}

impl Node {
    /// Every path the node is known by (label and names).
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.label.as_str()).chain(self.names.iter().map(String::as_str))
    }
    pub fn has_path(&self, p: &str) -> bool {
        self.paths().any(|x| x == p)
    }
}

#[derive(Clone, Debug)]
pub struct Edge {
    pub src: u64,
    pub dst: u64,
    pub kind: String,
    pub ts_ns: u64,
    pub bytes: Option<u64>,
    pub offset: Option<u64>,
    pub call: Option<String>,
}

/// Edge kinds that move data or control (compared exactly as triples).
pub const FLOW_KINDS: &[&str] = &["read", "write", "load", "spawn", "exec", "flow"];

/// What part of a graph a test owns: its programs and its directory.
pub struct Scope {
    pub dir: String,
    pub progs: Vec<String>,
}

impl Scope {
    pub fn new(w: &Work, progs: &[&str]) -> Scope {
        Scope {
            dir: w.d(),
            progs: progs.iter().map(|s| s.to_string()).collect(),
        }
    }
    pub fn contains(&self, n: &Node) -> bool {
        match n.kind.as_str() {
            "process" => self.progs.contains(&n.label),
            "pipe" | "socket" => true,
            _ => n.paths().any(|p| p.starts_with(&format!("{}/", self.dir))),
        }
    }
}

pub type Triple = (String, String, String);

pub struct Graph {
    pub nodes: Vec<Node>,
    pub edges: Vec<Edge>,
    by_id: HashMap<u64, usize>,
    pub raw: Value,
}

fn s_field(v: &Value, k: &str) -> String {
    v.get(k)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn u_field(v: &Value, k: &str) -> Option<u64> {
    v.get(k).and_then(Value::as_u64)
}

fn str_list(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

impl Graph {
    pub fn from_json(v: &Value) -> Graph {
        let nodes: Vec<Node> = v
            .get("nodes")
            .and_then(Value::as_array)
            .unwrap_or_else(|| {
                panic!(
                    "graph JSON has no `nodes` array: {}",
                    truncate(&v.to_string(), 500)
                )
            })
            .iter()
            .map(Node::from_json)
            .collect();
        let edges: Vec<Edge> = v
            .get("edges")
            .and_then(Value::as_array)
            .unwrap_or_else(|| panic!("graph JSON has no `edges` array"))
            .iter()
            .map(|e| Edge {
                src: u_field(e, "src").expect("edge.src"),
                dst: u_field(e, "dst").expect("edge.dst"),
                kind: s_field(e, "kind"),
                ts_ns: u_field(e, "ts_ns").unwrap_or(0),
                bytes: u_field(e, "bytes"),
                offset: u_field(e, "offset"),
                call: e.get("call").and_then(Value::as_str).map(str::to_string),
            })
            .collect();
        let by_id: HashMap<u64, usize> = nodes.iter().enumerate().map(|(i, n)| (n.id, i)).collect();
        for e in &edges {
            assert!(
                by_id.contains_key(&e.src) && by_id.contains_key(&e.dst),
                "edge {e:?} refers to a node id that is not in `nodes`"
            );
        }
        Graph {
            nodes,
            edges,
            by_id,
            raw: v.clone(),
        }
    }

    pub fn node(&self, id: u64) -> &Node {
        &self.nodes[self.by_id[&id]]
    }

    /// The endpoint name of a node in triples.
    pub fn endpoint(n: &Node) -> String {
        let path = if n.label.is_empty() {
            n.names.first().cloned().unwrap_or_default()
        } else {
            n.label.clone()
        };
        match n.kind.as_str() {
            "process" => format!("process:{}", n.label),
            "pipe" => "pipe".into(),
            "socket" => "socket".into(),
            k => format!("{k}:{path}"),
        }
    }

    pub fn triple(&self, e: &Edge) -> Triple {
        (
            Self::endpoint(self.node(e.src)),
            e.kind.clone(),
            Self::endpoint(self.node(e.dst)),
        )
    }

    /// Data/control-flow triples with both ends in `scope`.
    pub fn flow_triples(&self, scope: &Scope) -> BTreeSet<Triple> {
        self.edges
            .iter()
            .filter(|e| FLOW_KINDS.contains(&e.kind.as_str()))
            .filter(|e| scope.contains(self.node(e.src)) && scope.contains(self.node(e.dst)))
            .map(|e| self.triple(e))
            .collect()
    }

    /// Endpoint names of the nodes in `scope`.
    pub fn scope_nodes(&self, scope: &Scope) -> BTreeSet<String> {
        self.nodes
            .iter()
            .filter(|n| scope.contains(n))
            .map(Self::endpoint)
            .collect()
    }

    /// Edges whose triple is `(src, kind, dst)` (endpoint names).
    pub fn edges_of(&self, src: &str, kind: &str, dst: &str) -> Vec<&Edge> {
        self.edges
            .iter()
            .filter(|e| {
                e.kind == kind
                    && Self::endpoint(self.node(e.src)) == src
                    && Self::endpoint(self.node(e.dst)) == dst
            })
            .collect()
    }

    /// All nodes (every version) of the entity `uuid`.
    pub fn versions(&self, uuid: &str) -> Vec<&Node> {
        self.nodes.iter().filter(|n| n.uuid == uuid).collect()
    }

    /// Uuids of the entities of `kind` (any kind if empty) known by `path`.
    pub fn uuids_by_path(&self, kind: &str, path: &str) -> BTreeSet<String> {
        self.nodes
            .iter()
            .filter(|n| (kind.is_empty() || n.kind == kind) && n.has_path(path))
            .map(|n| n.uuid.clone())
            .collect()
    }

    /// The single uuid of the entity known by `path` (panics otherwise).
    pub fn uuid_of(&self, kind: &str, path: &str) -> String {
        let u = self.uuids_by_path(kind, path);
        assert_eq!(
            u.len(),
            1,
            "expected exactly one {kind} entity named {path}, found {u:?}\n{}",
            self.dump()
        );
        u.into_iter().next().unwrap()
    }

    /// Uuids of the process entities labelled `name` at some version.
    pub fn proc_uuids(&self, name: &str) -> BTreeSet<String> {
        self.nodes
            .iter()
            .filter(|n| n.kind == "process" && n.label == name)
            .map(|n| n.uuid.clone())
            .collect()
    }

    /// Every name and label any version of `uuid` has.
    pub fn all_names(&self, uuid: &str) -> BTreeSet<String> {
        self.versions(uuid)
            .iter()
            .flat_map(|n| n.paths().map(str::to_string))
            .filter(|s| !s.is_empty())
            .collect()
    }

    /// Edges of `kind` from entity `src` to entity `dst` (any versions).
    pub fn uuid_edges(&self, src: &str, kind: &str, dst: &str) -> Vec<&Edge> {
        self.edges
            .iter()
            .filter(|e| {
                e.kind == kind && self.node(e.src).uuid == src && self.node(e.dst).uuid == dst
            })
            .collect()
    }

    /// Edges of `kind` touching entity `uuid` at either end.
    pub fn edges_touching(&self, uuid: &str, kind: &str) -> Vec<&Edge> {
        self.edges
            .iter()
            .filter(|e| {
                e.kind == kind && (self.node(e.src).uuid == uuid || self.node(e.dst).uuid == uuid)
            })
            .collect()
    }

    /// Is there a directed path from entity `from` to entity `to` using only
    /// edges of `kinds` (version edges are always allowed)?  Works on
    /// entities, i.e. versions collapsed.
    pub fn reaches(&self, from: &str, to: &str, kinds: &[&str]) -> bool {
        let mut adj: HashMap<&str, Vec<&str>> = HashMap::new();
        for e in &self.edges {
            if e.kind == "version" || kinds.contains(&e.kind.as_str()) {
                adj.entry(self.node(e.src).uuid.as_str())
                    .or_default()
                    .push(self.node(e.dst).uuid.as_str());
            }
        }
        let mut seen = BTreeSet::new();
        let mut q = VecDeque::from([from]);
        while let Some(u) = q.pop_front() {
            if u == to {
                return true;
            }
            if seen.insert(u) {
                q.extend(adj.get(u).into_iter().flatten().copied());
            }
        }
        false
    }

    /// Like [`Graph::reaches`] but along edges with non-decreasing
    /// timestamps (a causal path), starting at any time.
    pub fn reaches_causally(&self, from: &str, to: &str, kinds: &[&str]) -> bool {
        // Dijkstra-like: earliest arrival time at each entity.
        let mut best: HashMap<&str, u64> = HashMap::new();
        best.insert(from, 0);
        let mut changed = true;
        while changed {
            changed = false;
            for e in &self.edges {
                if !(e.kind == "version" || kinds.contains(&e.kind.as_str())) {
                    continue;
                }
                let s = self.node(e.src).uuid.as_str();
                let d = self.node(e.dst).uuid.as_str();
                if let Some(&t) = best.get(s) {
                    let ts = if e.kind == "version" { t } else { e.ts_ns };
                    let better = match best.get(d) {
                        Some(&old) => ts < old,
                        None => true,
                    };
                    if ts >= t && better {
                        best.insert(d, ts);
                        changed = true;
                    }
                }
            }
        }
        best.contains_key(to)
    }

    /// A readable listing of the whole graph, for failure messages.
    pub fn dump(&self) -> String {
        let mut s = String::from("--- graph nodes ---\n");
        for n in &self.nodes {
            let _ = writeln!(
                s,
                "  #{} {} v{} {:?} names={:?} pid={:?} uuid={}",
                n.id, n.kind, n.version, n.label, n.names, n.pid, n.uuid
            );
        }
        s.push_str("--- graph edges ---\n");
        for e in &self.edges {
            let _ = writeln!(
                s,
                "  #{} -{}-> #{}  call={:?} bytes={:?} offset={:?} ts={}   ({} -> {})",
                e.src,
                e.kind,
                e.dst,
                e.call,
                e.bytes,
                e.offset,
                e.ts_ns,
                Self::endpoint(self.node(e.src)),
                Self::endpoint(self.node(e.dst))
            );
        }
        s
    }
}

impl Node {
    fn from_json(v: &Value) -> Node {
        Node {
            id: u_field(v, "id").unwrap_or_else(|| panic!("node without numeric id: {v}")),
            uuid: s_field(v, "uuid"),
            kind: s_field(v, "kind"),
            version: u_field(v, "version").unwrap_or(0),
            label: s_field(v, "label"),
            names: str_list(v.get("names")),
            pid: v.get("pid").and_then(Value::as_i64),
            exe: v.get("exe").and_then(Value::as_str).map(str::to_string),
            argv: str_list(v.get("argv")),
        }
    }
}

/// Parse `"SRC KIND DST"` (with `$D` expanded).
pub fn parse_triple(w: &Work, s: &str) -> Triple {
    let s = w.expand(s);
    let parts: Vec<&str> = s.split_whitespace().collect();
    assert_eq!(parts.len(), 3, "bad triple {s:?}");
    (parts[0].into(), parts[1].into(), parts[2].into())
}

fn fmt_triples<'a>(it: impl IntoIterator<Item = &'a Triple>) -> String {
    let mut s = String::new();
    for (a, k, b) in it {
        let _ = writeln!(s, "    {a} -{k}-> {b}");
    }
    s
}

/// Assert that the flow triples in scope are exactly `expected`, that every
/// node in scope is an endpoint of them or listed in `maybe_nodes` (which may
/// or may not exist, e.g. a file only opened).
pub fn assert_flows(g: &Graph, w: &Work, scope: &Scope, expected: &[&str], maybe_nodes: &[&str]) {
    let want: BTreeSet<Triple> = expected.iter().map(|s| parse_triple(w, s)).collect();
    let got = g.flow_triples(scope);
    let missing: Vec<&Triple> = want.difference(&got).collect();
    let extra: Vec<&Triple> = got.difference(&want).collect();
    let mut required: BTreeSet<String> = BTreeSet::new();
    for (a, _, b) in &want {
        required.insert(a.clone());
        required.insert(b.clone());
    }
    let maybe: BTreeSet<String> = maybe_nodes.iter().map(|s| w.expand(s)).collect();
    let nodes = g.scope_nodes(scope);
    let missing_nodes: Vec<&String> = required.difference(&nodes).collect();
    let extra_nodes: Vec<&String> = nodes
        .iter()
        .filter(|n| !required.contains(*n) && !maybe.contains(*n))
        .collect();
    if missing.is_empty() && extra.is_empty() && missing_nodes.is_empty() && extra_nodes.is_empty()
    {
        return;
    }
    panic!(
        "graph mismatch (workdir {})\n  missing edges:\n{}  unexpected edges:\n{}  missing nodes: {:?}\n  unexpected nodes: {:?}\n  all in-scope edges:\n{}{}",
        w.d(),
        fmt_triples(missing),
        fmt_triples(extra),
        missing_nodes,
        extra_nodes,
        fmt_triples(&got),
        g.dump()
    );
}

/// `(call, bytes, offset)` of edges, sorted: a multiset signature.
pub fn io_sig<'a>(
    edges: impl IntoIterator<Item = &'a Edge>,
) -> Vec<(String, Option<u64>, Option<u64>)> {
    let mut v: Vec<_> = edges
        .into_iter()
        .map(|e| (e.call.clone().unwrap_or_default(), e.bytes, e.offset))
        .collect();
    v.sort();
    v
}

pub fn sig(items: &[(&str, u64, Option<u64>)]) -> Vec<(String, Option<u64>, Option<u64>)> {
    let mut v: Vec<_> = items
        .iter()
        .map(|(c, b, o)| (c.to_string(), Some(*b), *o))
        .collect();
    v.sort();
    v
}

/// Group JSON values by a string key (for readable set comparisons).
pub fn count_by<'a, T: Ord + Clone + 'a>(
    items: impl IntoIterator<Item = &'a T>,
) -> BTreeMap<T, usize> {
    let mut m = BTreeMap::new();
    for i in items {
        *m.entry(i.clone()).or_insert(0) += 1;
    }
    m
}

/// Assert that `got` equals `want` as sets, printing a readable diff.
pub fn assert_set_eq<T: Ord + std::fmt::Debug>(what: &str, got: &BTreeSet<T>, want: &BTreeSet<T>) {
    if got == want {
        return;
    }
    let mut s = format!("{what}: sets differ\n");
    for x in want.difference(got) {
        let _ = writeln!(s, "  - missing:    {x:?}");
    }
    for x in got.difference(want) {
        let _ = writeln!(s, "  + unexpected: {x:?}");
    }
    panic!("{s}");
}

/// The exit code of a finished process, or 128 + signal like a shell.
pub fn exit_code(st: &ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    match (st.code(), st.signal()) {
        (Some(c), _) => c,
        (None, Some(s)) => 128 + s,
        (None, None) => -1,
    }
}

/// Run one coverage program: compile `tests/c/NAME.c` and prepare (with
/// `setup`) two identical fresh directories; run the program natively in the
/// first (`NAME DIR ARGS...`, must exit with `code`: this checks the program
/// itself, independently of Tomo), then record it in the second with
/// `tomo record`, which must pass the same exit status through. Returns the
/// recorded directory and the recording.
pub fn case(name: &str, setup: &dyn Fn(&Work), args: &[&str], code: i32) -> (Work, Recording) {
    let native = Work::new();
    setup(&native);
    let bin = native.compile(name);
    let o = run(
        Command::new(&bin)
            .current_dir(&native.dir)
            .arg(native.d())
            .args(args),
        TIMEOUT,
    );
    assert_eq!(
        exit_code(&o.status),
        code,
        "native run of {name} exited with {} (wanted {code}); the test program is broken\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let w = Work::new();
    setup(&w);
    let bin = w.compile(name);
    let mut argv: Vec<String> = vec![bin, w.d()];
    argv.extend(args.iter().map(|s| s.to_string()));
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let rec = w.record_any(&argv);
    assert_eq!(
        exit_code(&rec.status),
        code,
        "`tomo record -- {}` exited with {} (the program exits {code} natively)\nstdout:\n{}\nstderr:\n{}",
        argv.join(" "),
        rec.status,
        rec.stdout,
        rec.stderr
    );
    (w, rec)
}

/// The op variant and body of an event (`("Io", {...})`).
pub fn op_of(ev: &Value) -> (&str, &Value) {
    match ev.get("op") {
        Some(Value::Object(m)) if m.len() == 1 => {
            let (k, v) = m.iter().next().expect("one entry");
            (k.as_str(), v)
        }
        Some(Value::String(s)) => (s.as_str(), &Value::Null),
        other => panic!("event without a recognizable op: {other:?} in {ev}"),
    }
}

/// The call of an event (`"observed"` for Observed).
pub fn ev_call(ev: &Value) -> String {
    let (variant, body) = op_of(ev);
    match body.get("call") {
        Some(c) => call_name(c),
        None if variant == "Observed" => "observed".into(),
        None => String::new(),
    }
}

pub fn ev_ret(ev: &Value) -> i64 {
    ev.get("ret")
        .and_then(Value::as_i64)
        .unwrap_or_else(|| panic!("event without ret: {ev}"))
}

pub fn ev_pid(ev: &Value) -> u64 {
    ev.pointer("/proc/pid")
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("event without proc.pid: {ev}"))
}

pub fn ev_tid(ev: &Value) -> u64 {
    ev.pointer("/proc/tid")
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("event without proc.tid: {ev}"))
}

/// Successful events of op `variant`, with their bodies.
pub fn ok_ops<'a>(events: &'a [Value], variant: &str) -> Vec<(&'a Value, &'a Value)> {
    ops(events, variant)
        .into_iter()
        .filter(|(e, _)| ok(e))
        .collect()
}

/// The JSON of `SockAddr::Inet`.
pub fn inet(ip: &str, port: u64) -> Value {
    serde_json::json!({"Inet": {"ip": ip, "port": port}})
}

/// The JSON of a path-named `SockAddr::Unix`.
pub fn unix_addr(path: &str) -> Value {
    serde_json::json!({"Unix": {"path": path, "abstract_ns": false}})
}

/// Render events compactly for failure messages.
pub fn fmt_events<'a>(evs: impl IntoIterator<Item = &'a Value>) -> String {
    let mut s = String::new();
    for e in evs {
        let _ = writeln!(s, "    {e}");
    }
    s
}

/// Parse `key=NUMBER` out of text printed by a test program.
pub fn printed_num(text: &str, key: &str) -> u64 {
    text.split_whitespace()
        .find_map(|t| t.strip_prefix(&format!("{key}=")))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("the program did not print {key}=N; stdout was:\n{text}"))
}

/// A `tomo agent` (eBPF or audit source) running in the background for a
/// system-wide test; stopped by SIGTERM on drop if the test did not stop it.
pub struct AgentRun {
    child: Child,
    err_path: String,
}

impl AgentRun {
    pub fn start(source: &str, w: &Work, extra: &[&str]) -> AgentRun {
        let out = w.p("host.tomo");
        let ready = w.p("agent.ready");
        let _ = std::fs::remove_file(&ready);
        let err_path = w.p("agent.stderr");
        let err = std::fs::File::create(&err_path).expect("stderr file");
        let child = Command::new(tomo_bin())
            .args(["agent", "--source", source, "-o", &out, "--json"])
            .args(["--stats-every", "0", "--ready-file", &ready])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .expect("cannot run tomo agent");
        let mut a = AgentRun { child, err_path };
        let start = Instant::now();
        while !Path::new(&ready).exists() {
            if let Ok(Some(st)) = a.child.try_wait() {
                panic!(
                    "tomo agent exited with {st} before capturing:\n{}",
                    a.stderr()
                );
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "tomo agent did not start within 60 s:\n{}",
                a.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        a
    }

    pub fn pid(&self) -> i64 {
        self.child.id() as i64
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.err_path).unwrap_or_default()
    }

    pub fn wait(&mut self, what: &str) -> std::process::ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(st) = self.child.try_wait().expect("wait agent") {
                return st;
            }
            if start.elapsed() > Duration::from_secs(120) {
                let _ = self.child.kill();
                panic!("tomo agent did not stop on {what}:\n{}", self.stderr());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, wait, and return the JSON summary.
    pub fn stop(mut self) -> Value {
        let pid = self.child.id().to_string();
        let o = run(Command::new("kill").args(["-TERM", &pid]), TIMEOUT);
        assert!(o.status.success(), "kill -TERM {pid} failed");
        let st = self.wait("SIGTERM");
        let err = self.stderr();
        assert!(st.success(), "tomo agent exited with {st}:\n{err}");
        let line = err
            .lines()
            .rev()
            .find(|l| l.starts_with('{'))
            .unwrap_or_else(|| panic!("no JSON summary from tomo agent:\n{err}"));
        serde_json::from_str(line).expect("summary is JSON")
    }

    pub fn kill9(mut self) {
        let _ = self.child.kill();
        self.wait("SIGKILL");
    }
}

impl Drop for AgentRun {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .status();
            let _ = self.child.wait();
        }
    }
}
