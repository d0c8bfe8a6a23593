#!/usr/bin/env python3
"""Check Neo4j import CSV pairs the way `neo4j-admin database import` reads
them: the header syntax, one value per column on every row, unique `:ID`s,
relationships between known ids, typed columns that parse.

Usage: check_neo4j.py NODES_CSV RELATIONSHIPS_CSV [NODES_CSV RELS_CSV ...]
Prints a JSON list, one object per pair.
"""

import csv
import json
import sys


def rows(path):
    with open(path, newline="", encoding="utf-8") as f:
        r = list(csv.reader(f))
    return r[0], r[1:]


def check(nodes_path, rels_path):
    problems = []
    nh, nodes = rows(nodes_path)
    rh, rels = rows(rels_path)
    if nh[0] != "id:ID" or ":LABEL" not in nh:
        problems.append("node header " + ",".join(nh))
    if rh[:3] != [":START_ID", ":END_ID", ":TYPE"]:
        problems.append("relationship header " + ",".join(rh))

    def typed(header, row, where):
        for h, v in zip(header, row):
            t = h.split(":")[1] if ":" in h and not h.startswith(":") else ""
            if v and t in ("int", "long"):
                try:
                    int(v)
                except ValueError:
                    problems.append(f"{where}: {h}={v!r}")

    ids, labels = set(), set()
    for i, r in enumerate(nodes):
        if len(r) != len(nh):
            problems.append(f"node row {i}: {len(r)} fields, header {len(nh)}")
            continue
        if r[0] in ids:
            problems.append("duplicate id " + r[0])
        ids.add(r[0])
        labels.update(r[1].split(";"))
        typed(nh, r, f"node row {i}")
    for i, r in enumerate(rels):
        if len(r) != len(rh):
            problems.append(f"relationship row {i}: {len(r)} fields, header {len(rh)}")
            continue
        if r[0] not in ids or r[1] not in ids:
            problems.append(f"relationship row {i}: unknown end")
        if not r[2] or r[2] != r[2].upper():
            problems.append(f"relationship row {i}: type {r[2]!r}")
        typed(rh, r, f"relationship row {i}")
    return {
        "nodes": len(nodes),
        "relationships": len(rels),
        "problems": problems[:10],
        "labels": sorted(labels),
    }


if __name__ == "__main__":
    a = sys.argv[1:]
    print(json.dumps([check(a[i], a[i + 1]) for i in range(0, len(a), 2)]))
