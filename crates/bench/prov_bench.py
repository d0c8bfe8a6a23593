#!/usr/bin/env python3
"""Time the `prov` package on a PROV-JSON document (export_bench --prov).

Usage: prov_bench.py PROV_JSON OUT_PREFIX FORMATS
FORMATS: comma-separated, of json, provn, ttl (prov's PROV-O via rdflib).
Prints JSON: seconds to load, seconds and bytes per serialization, peak RSS.
"""

import json
import os
import resource
import sys
import time

from prov.model import ProvDocument


def main():
    src, prefix, formats = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
    out = {"prov_version": __import__("prov").__version__}
    t = time.perf_counter()
    doc = ProvDocument.deserialize(src, format="json")
    out["load_s"] = time.perf_counter() - t
    out["loaded_records"] = sum(1 for _ in doc.get_records())
    for f in formats:
        path = f"{prefix}.{f}"
        t = time.perf_counter()
        with open(path, "w", encoding="utf-8") as fh:
            if f == "json":
                doc.serialize(fh, format="json")
            elif f == "provn":
                fh.write(doc.get_provn())
            elif f == "ttl":
                fh.write(doc.serialize(format="rdf", rdf_format="turtle"))
            else:
                raise SystemExit(f"unknown format {f}")
        out[f"{f}_s"] = time.perf_counter() - t
        out[f"{f}_bytes"] = os.path.getsize(path)
        os.remove(path)
    out["max_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(out))


if __name__ == "__main__":
    main()
