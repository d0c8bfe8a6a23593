#!/usr/bin/env python3
"""store_bench --compare: Tomo's graph and lineage question in SQLite,
DuckDB and NetworkX.

Usage: store_compare.py --dir DIR --systems sqlite,duckdb,networkx
           [--depth 3] [--events N] [--check-sets 50] [--budget-s 1800]
           [--max-rss-mib 8192]

DIR holds what store_bench wrote (see `compare_prepare` there):
nodes.csv (id,entity,version), edges.csv (src,dst,ts,last,kind),
targets.csv (entity,node,answer_nodes: Tomo's answer size) and sets.txt
(Tomo's whole answer for the first targets). For each system: bulk-load the
graph (timed, to a file whose size is reported), then answer the backward
lineage of every target, bounded at --depth edges and respecting time, as
Tomo's `why --depth D` does:

- from the target node (the entity's latest version), follow incoming
  edges backwards; a `version` edge (older version -> newer version of one
  entity) costs no depth: a reached version brings its older versions with
  it ("folded"; an `exec` edge is a real step);
- an edge is followed only if it began (`ts`) no later than the last event
  (`last`) of the edge that led to the node it enters: data cannot flow
  backwards in time;
- the answer is the set of graph nodes reached, folded versions included.

Each answer is checked against Tomo's: sizes for every target, whole sets
for the first --check-sets. Prints one JSON object on stdout; progress on
stderr.
"""

import argparse
import collections
import gc
import json
import os
import pickle
import sqlite3
import sys
import threading
import time

INT64_MAX = 9223372036854775807


def log(msg):
    print(f"store_compare: {msg}", file=sys.stderr, flush=True)


def rss_mib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def peak_rss_mib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def pct(sorted_ms, p):
    if not sorted_ms:
        return None
    return sorted_ms[round((len(sorted_ms) - 1) * p)]


class TooBig(Exception):
    pass


def read_targets(d, check_sets):
    targets = []
    with open(os.path.join(d, "targets.csv")) as f:
        next(f)
        for line in f:
            _, node, size = line.split(",")
            targets.append((int(node), int(size)))
    sets = []
    with open(os.path.join(d, "sets.txt")) as f:
        for i, line in enumerate(f):
            if i >= check_sets:
                break
            sets.append(set(int(x) for x in line.split()))
    return targets, sets


def edge_rows(d):
    """edges.csv as (src, dst, ts, last, kind) tuples."""
    kinds = {}
    with open(os.path.join(d, "edges.csv")) as f:
        next(f)
        for line in f:
            s, t, ts, last, kind = line.rstrip("\n").split(",")
            kind = kinds.setdefault(kind, kind)
            yield int(s), int(t), int(ts), int(last), kind


def node_rows(d):
    with open(os.path.join(d, "nodes.csv")) as f:
        next(f)
        for line in f:
            i, e, v = line.split(",")
            yield int(i), int(e), int(v)


def run_queries(name, targets, sets, budget_s, ask):
    """Times `ask(node)` (returns the answer's node ids) on every target,
    stops when the budget is spent, and checks the answers."""
    lat = []
    size_mismatches = 0
    set_mismatches = 0
    examples = []
    start = time.perf_counter()
    deadline = start + budget_s if budget_s > 0 else None
    exhausted = False
    for i, (node, want) in enumerate(targets):
        t = time.perf_counter()
        try:
            ans = ask(node, deadline)
        except TimeoutError:
            exhausted = True
            break
        lat.append((time.perf_counter() - t) * 1e3)
        got = set(ans)
        if len(got) != want:
            size_mismatches += 1
            if len(examples) < 5:
                examples.append({"target": i, "node": node, "tomo": want, "got": len(got)})
        if i < len(sets) and got != sets[i]:
            set_mismatches += 1
            if len(examples) < 5:
                examples.append(
                    {
                        "target": i,
                        "node": node,
                        "missing": sorted(sets[i] - got)[:10],
                        "extra": sorted(got - sets[i])[:10],
                    }
                )
        if (i + 1) % 100 == 0:
            log(f"{name}: {i + 1} queries, {time.perf_counter() - start:.1f} s")
    lat.sort()
    out = {
        "queries": len(lat),
        "query_total_s": time.perf_counter() - start,
        "p50_ms": pct(lat, 0.5),
        "p99_ms": pct(lat, 0.99),
        "max_ms": pct(lat, 1.0),
        "size_mismatches": size_mismatches,
        "sets_checked": min(len(sets), len(lat)),
        "set_mismatches": set_mismatches,
        "mismatch_examples": examples,
    }
    if exhausted:
        out["note"] = (
            f"query budget of {budget_s} s spent after {len(lat)} of {len(targets)} targets; "
            "p50/p99 are over those only"
        )
    return out


# The lineage question in SQL. `nodes.seg` names a node's version segment:
# the first node of its run of versions linked by `version` edges (an exec
# starts a new one), so a reached version's folded older versions are
# `seg = n.seg AND version <= n.version`, one indexed range instead of one
# recursion step per version. A row is (node, depth, bound): `bound` is the
# `last` of the edge that led there (the root has none). UNION removes
# repeated rows. The answer takes, per segment, every version up to the
# newest one reached.
LINEAGE_SQL = """
WITH RECURSIVE lin(node, depth, bound) AS (
  SELECT {node}, 0, {int64_max}
  UNION
  SELECT e.src, l.depth + 1, e.last
  FROM lin l
  JOIN nodes n ON n.id = l.node
  JOIN nodes m ON m.seg = n.seg AND m.version <= n.version
  JOIN edges e ON e.dst = m.id
  WHERE l.depth < {depth} AND e.kind <> 'version' AND e.ts <= l.bound
)
SELECT m.id
FROM (SELECT n.seg AS seg, max(n.version) AS v
      FROM lin l JOIN nodes n ON n.id = l.node GROUP BY n.seg) s
JOIN nodes m ON m.seg = s.seg AND m.version <= s.v
"""

# nodes_raw + edges -> nodes with their segment (a node starts a segment
# unless a `version` edge created it; node ids grow with versions).
SEG_SELECT = """
SELECT r.id AS id, r.entity AS entity, r.version AS version,
       max(CASE WHEN v.dst IS NULL THEN r.id END)
         OVER (PARTITION BY r.entity ORDER BY r.version ROWS UNBOUNDED PRECEDING) AS seg
FROM nodes_raw r
LEFT JOIN (SELECT dst FROM edges WHERE kind = 'version') v ON v.dst = r.id
"""


def bench_sqlite(a, targets, sets):
    path = os.path.join(a.dir, "graph.sqlite")
    for p in (path, path + "-journal"):
        if os.path.exists(p):
            os.remove(p)
    log(f"sqlite {sqlite3.sqlite_version}: loading into {path}")
    t = time.perf_counter()
    con = sqlite3.connect(path, isolation_level=None)
    # The bulk path: no journal, no fsync, one transaction, indexes after
    # the rows.
    con.execute("PRAGMA journal_mode=OFF")
    con.execute("PRAGMA synchronous=OFF")
    con.execute("PRAGMA cache_size=-262144")
    con.execute("PRAGMA temp_store=MEMORY")
    con.execute("BEGIN")
    con.execute(
        "CREATE TABLE edges(src INTEGER NOT NULL, dst INTEGER NOT NULL, "
        "ts INTEGER NOT NULL, last INTEGER NOT NULL, kind TEXT NOT NULL)"
    )
    con.execute(
        "CREATE TEMP TABLE nodes_raw(id INTEGER PRIMARY KEY, entity INTEGER NOT NULL, "
        "version INTEGER NOT NULL)"
    )
    con.execute(
        "CREATE TABLE nodes(id INTEGER PRIMARY KEY, entity INTEGER NOT NULL, "
        "version INTEGER NOT NULL, seg INTEGER NOT NULL)"
    )
    con.executemany("INSERT INTO edges VALUES (?,?,?,?,?)", edge_rows(a.dir))
    con.executemany("INSERT INTO nodes_raw VALUES (?,?,?)", node_rows(a.dir))
    con.execute("CREATE INDEX edges_dst ON edges(dst)")
    con.execute(f"INSERT INTO nodes {SEG_SELECT} ORDER BY id")
    con.execute("DROP TABLE nodes_raw")
    con.execute("CREATE INDEX nodes_seg ON nodes(seg, version)")
    con.execute("COMMIT")
    con.close()
    load_s = time.perf_counter() - t
    size = os.path.getsize(path)
    log(f"sqlite: loaded in {load_s:.2f} s, {size} bytes")

    con = sqlite3.connect(path)
    con.execute("PRAGMA cache_size=-262144")
    con.execute(f"PRAGMA mmap_size={1 << 34}")
    sql = LINEAGE_SQL.format(node="?1", int64_max=INT64_MAX, depth="?2")
    state = {"deadline": None}

    def progress():
        d = state["deadline"]
        return 1 if d is not None and time.perf_counter() > d else 0

    con.set_progress_handler(progress, 100_000)

    def ask(node, deadline):
        state["deadline"] = deadline
        try:
            return [r[0] for r in con.execute(sql, (node, a.depth)).fetchall()]
        except sqlite3.OperationalError as e:
            if "interrupt" in str(e):
                raise TimeoutError from e
            raise

    out = {"load_s": load_s, "bytes": size, "version": sqlite3.sqlite_version}
    out.update(run_queries("sqlite", targets, sets, a.budget_s, ask))
    con.close()
    if not a.keep_files:
        os.remove(path)
    return out


def bench_duckdb(a, targets, sets):
    import duckdb

    path = os.path.join(a.dir, "graph.duckdb")
    for p in (path, path + ".wal"):
        if os.path.exists(p):
            os.remove(p)
    # DuckDB takes 80% of the RAM by default; keep it within the run's limit.
    limit = max(256, int(a.max_rss_mib - rss_mib() - 256))
    log(f"duckdb {duckdb.__version__}: loading into {path} (memory_limit {limit} MiB)")
    t = time.perf_counter()
    con = duckdb.connect(path, config={"memory_limit": f"{limit}MiB"})
    ecols = "{'src': 'UINTEGER', 'dst': 'UINTEGER', 'ts': 'BIGINT', 'last': 'BIGINT', 'kind': 'VARCHAR'}"
    ncols = "{'id': 'UINTEGER', 'entity': 'UINTEGER', 'version': 'UINTEGER'}"
    edges_csv = os.path.join(a.dir, "edges.csv").replace("'", "''")
    nodes_csv = os.path.join(a.dir, "nodes.csv").replace("'", "''")
    con.execute(f"CREATE TABLE edges AS SELECT * FROM read_csv('{edges_csv}', header = true, columns = {ecols})")
    con.execute(f"CREATE TEMP TABLE nodes_raw AS SELECT * FROM read_csv('{nodes_csv}', header = true, columns = {ncols})")
    con.execute(f"CREATE TABLE nodes AS {SEG_SELECT}")
    con.execute("DROP TABLE nodes_raw")
    con.execute("CHECKPOINT")
    con.close()
    load_s = time.perf_counter() - t
    size = os.path.getsize(path)
    log(f"duckdb: loaded in {load_s:.2f} s, {size} bytes")

    con = duckdb.connect(path, config={"memory_limit": f"{limit}MiB"})
    threads = con.execute("SELECT current_setting('threads')").fetchone()[0]
    sql = LINEAGE_SQL.format(node="$node::UINTEGER", int64_max=f"{INT64_MAX}::BIGINT", depth="$depth")

    def ask(node, deadline):
        timer = None
        if deadline is not None:
            left = deadline - time.perf_counter()
            if left <= 0:
                raise TimeoutError
            timer = threading.Timer(left, con.interrupt)
            timer.start()
        try:
            return [r[0] for r in con.execute(sql, {"node": node, "depth": a.depth}).fetchall()]
        except duckdb.InterruptException as e:
            raise TimeoutError from e
        finally:
            if timer is not None:
                timer.cancel()

    out = {"load_s": load_s, "bytes": size, "version": duckdb.__version__, "threads": threads}
    out.update(run_queries("duckdb", targets, sets, a.budget_s, ask))
    con.close()
    if not a.keep_files:
        os.remove(path)
    return out


def why_nx(G, start, depth, deadline):
    """Tomo's `why` (crates/query/src/lineage.rs) over a NetworkX graph:
    breadth-first, each node expanded where it is first reached, with the
    older versions of its version chain folded in."""
    pred = G.pred
    owner = set()

    def claim(v):
        owner.add(v)
        folded = []
        cur = v
        while True:
            prev = None
            for u, keyed in pred[cur].items():
                if any(x["kind"] == "version" for x in keyed.values()):
                    prev = u
                    break
            if prev is None or prev in owner:
                return folded
            owner.add(prev)
            folded.append(prev)
            cur = prev

    queue = collections.deque([(start, claim(start), None, 0)])
    steps = 0
    while queue:
        node, folded, bound, d = queue.popleft()
        steps += 1
        if deadline is not None and steps % 1024 == 0 and time.perf_counter() > deadline:
            raise TimeoutError
        edges = []
        for v in (node, *folded):
            for u, keyed in pred[v].items():
                for x in keyed.values():
                    if x["kind"] == "version":
                        continue
                    if bound is not None and x["ts"] > bound:
                        continue
                    edges.append((x["ts"], u, x["last"]))
        if not edges or d >= depth:
            continue
        edges.sort(key=lambda e: e[0])
        for _, u, last in edges:
            if u in owner:
                continue
            queue.append((u, claim(u), last, d + 1))
    return owner


def bench_networkx(a, targets, sets):
    import networkx as nx

    log(f"networkx {nx.__version__}: loading (limit {a.max_rss_mib:.0f} MiB)")
    t = time.perf_counter()
    # Parallel edges (two kinds, or flows split by other versions) exist:
    # a multigraph keeps each with its times.
    G = nx.MultiDiGraph()
    try:
        G.add_nodes_from((i, {"entity": e, "version": v}) for i, e, v in node_rows(a.dir))
        for k, (s, d, ts, last, kind) in enumerate(edge_rows(a.dir)):
            G.add_edge(s, d, ts=ts, last=last, kind=kind)
            if k % 50_000 == 0 and rss_mib() > a.max_rss_mib:
                raise TooBig(f"{k} edges loaded at {rss_mib():.0f} MiB")
    except TooBig as e:
        del G
        gc.collect()
        return {"error": f"abandoned: over the memory limit of {a.max_rss_mib:.0f} MiB ({e})"}
    load_s = time.perf_counter() - t
    graph_rss = rss_mib()
    log(f"networkx: loaded in {load_s:.2f} s, {graph_rss:.0f} MiB resident")
    path = os.path.join(a.dir, "graph.pickle")
    t = time.perf_counter()
    with open(path, "wb") as f:
        pickle.dump(G, f, protocol=pickle.HIGHEST_PROTOCOL)
    pickle_s = time.perf_counter() - t
    size = os.path.getsize(path)
    if not a.keep_files:
        os.remove(path)
    log(f"networkx: pickled in {pickle_s:.2f} s, {size} bytes")

    def ask(node, deadline):
        return why_nx(G, node, a.depth, deadline)

    out = {
        "load_s": load_s,
        "bytes": size,
        "pickle_s": pickle_s,
        "resident_mib": graph_rss,
        "version": nx.__version__,
    }
    out.update(run_queries("networkx", targets, sets, a.budget_s, ask))
    del G
    gc.collect()
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dir", required=True)
    p.add_argument("--systems", required=True)
    p.add_argument("--depth", type=int, default=3)
    p.add_argument("--events", type=int, default=0)
    p.add_argument("--check-sets", type=int, default=50)
    p.add_argument("--budget-s", type=float, default=1800)
    p.add_argument("--max-rss-mib", type=float, default=8192)
    p.add_argument("--keep-files", action="store_true")
    a = p.parse_args()
    targets, sets = read_targets(a.dir, a.check_sets)
    benches = {"sqlite": bench_sqlite, "duckdb": bench_duckdb, "networkx": bench_networkx}
    out = {"python": sys.version.split()[0], "depth": a.depth, "targets": len(targets), "systems": {}}
    for name in a.systems.split(","):
        if name not in benches:
            sys.exit(f"store_compare: unknown system {name!r}")
        try:
            r = benches[name](a, targets, sets)
        except ImportError as e:
            r = {"error": f"not installed: {e} (pip install {name})"}
        r["peak_rss_mib_so_far"] = peak_rss_mib()
        out["systems"][name] = r
    json.dump(out, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
