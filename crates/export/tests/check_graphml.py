#!/usr/bin/env python3
"""Read GraphML files with networkx (which enforces declared, typed keys) and
report what it saw.

Usage: check_graphml.py FILE...   Prints a JSON list, one object per file.
Exit status 3 if networkx cannot be imported.
"""

import json
import sys

try:
    import networkx as nx
except ImportError as e:  # pragma: no cover - environment problem
    print("NO_NETWORKX", e)
    sys.exit(3)


def check(path):
    g = nx.read_graphml(path)
    nodes = [d for _, d in g.nodes(data=True)]
    procs = [d for d in nodes if d.get("kind") == "process"]
    edges = [d for _, _, d in g.edges(data=True)]
    return {
        "nodes": g.number_of_nodes(),
        "edges": g.number_of_edges(),
        "processes": len(procs),
        "pid_types": sorted({type(d["pid"]).__name__ for d in procs}),
        "bytes_types": sorted({type(d["bytes"]).__name__ for d in edges}),
        "programs": {d["program"]: d.get("classes", "") for d in procs},
        "kinds": sorted({d["edge"] for d in edges}),
    }


if __name__ == "__main__":
    print(json.dumps([check(p) for p in sys.argv[1:]]))
