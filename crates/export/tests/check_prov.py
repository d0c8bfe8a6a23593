#!/usr/bin/env python3
"""Load Tomo's PROV exports with the reference tools and report what they see.

Usage: check_prov.py PROV_JSON [PROV_N] [TURTLE]
       check_prov.py --batch LIST   (LIST: lines of "PROV_JSON PROV_N TURTLE";
                                     prints a JSON list, one object a line)

Prints one JSON object:
  counts:  what the `prov` package loaded from PROV-JSON (records by class);
  provn:   whether prov's PROV-N parser (strict profile) gives a document
           equal to the one loaded from PROV-JSON, and the differences;
  turtle:  what rdflib parsed (classes and direct triples), and whether the
           `prov` package's PROV-O reader gives a document equal to the
           PROV-JSON one once the unqualified duplicates are dropped (see
           below).

Tomo's Turtle asserts every relation both as the direct triple and as the
qualified node (PROV-O's two forms, both needed: queries join on the direct
triples, the attributes live on the qualified node). The `prov` reader turns
each direct triple into a record of its own, without attributes; those are
exactly the records that repeat the formal arguments of an attributed record,
and are dropped before comparing.

Exit status 3 if `prov` or `rdflib` cannot be imported.
"""

import json
import sys

try:
    import rdflib
    from prov.model import (
        ProvActivity,
        ProvAgent,
        ProvAssociation,
        ProvCommunication,
        ProvDerivation,
        ProvDocument,
        ProvEntity,
        ProvGeneration,
        ProvRelation,
        ProvUsage,
    )
except ImportError as e:  # pragma: no cover - environment problem
    print("NO_PROV", e)
    sys.exit(3)

CLASSES = {
    "entities": ProvEntity,
    "activities": ProvActivity,
    "agents": ProvAgent,
    "used": ProvUsage,
    "generations": ProvGeneration,
    "communications": ProvCommunication,
    "derivations": ProvDerivation,
    "associations": ProvAssociation,
}


def counts(doc):
    out = {k: sum(1 for _ in doc.get_records(c)) for k, c in CLASSES.items()}
    out["relations"] = sum(1 for _ in doc.get_records(ProvRelation))
    return out


INTEGER_TYPES = {
    "http://www.w3.org/2001/XMLSchema#" + t for t in ("integer", "int", "long")
}


def normalize(doc):
    """A copy of doc with integer literals as plain ints.

    prov keeps an integer typed anything but xsd:int as a Literal object,
    so 5 (PROV-JSON), 5 (PROV-N) and "5"^^xsd:integer (Turtle) would differ
    only by the type name of one and the same XSD integer."""
    from prov.model import Literal

    out = ProvDocument()
    for ns in doc.get_registered_namespaces():
        out.add_namespace(ns)
    for r in doc.get_records():
        attrs = []
        for k, v in r.attributes:
            if isinstance(v, Literal) and v.datatype is not None and v.datatype.uri in INTEGER_TYPES:
                v = int(v.value)
            attrs.append((k, v))
        out.new_record(r.get_type(), r.identifier, attrs)
    return out


def key(rec):
    """A record as a comparable value."""
    return str(rec)


def diff(a, b, limit=5):
    ka = sorted(key(r) for r in a.get_records())
    kb = sorted(key(r) for r in b.get_records())
    sa, sb = set(ka), set(kb)
    return {
        "only_first": sorted(sa - sb)[:limit],
        "only_second": sorted(sb - sa)[:limit],
    }


def drop_unqualified_duplicates(doc):
    """A copy of doc without bare relation records (no attributes, no
    identifier) whose formal arguments an attributed record of the same
    type also has."""
    attributed = set()
    for r in doc.get_records(ProvRelation):
        if r.extra_attributes or any(
            v is not None for _, v in r.formal_attributes[2:]
        ):
            attributed.add((r.get_type(), tuple(v for _, v in r.formal_attributes[:2])))
    out = ProvDocument()
    for ns in doc.get_registered_namespaces():
        out.add_namespace(ns)
    dropped = 0
    for r in doc.get_records():
        if (
            isinstance(r, ProvRelation)
            and not r.extra_attributes
            and all(v is None for _, v in r.formal_attributes[2:])
            and r.identifier is None
            and (r.get_type(), tuple(v for _, v in r.formal_attributes[:2])) in attributed
        ):
            dropped += 1
            continue
        out.add_record(r)
    return out, dropped


def rdf_counts(path):
    g = rdflib.Graph()
    g.parse(path, format="turtle")
    PROV = rdflib.Namespace("http://www.w3.org/ns/prov#")
    typed = lambda c: len(set(g.subjects(rdflib.RDF.type, c)))
    direct = lambda p: len(set(g.subject_objects(p)))
    return {
        "triples": len(g),
        "entities": typed(PROV.Entity),
        "activities": typed(PROV.Activity),
        "agents": typed(PROV.Agent),
        "used": typed(PROV.Usage),
        "generations": typed(PROV.Generation),
        "communications": typed(PROV.Communication),
        "derivations": typed(PROV.Derivation) + typed(PROV.Revision),
        "associations": direct(PROV.wasAssociatedWith),
        "direct_used": direct(PROV.used),
        "direct_derived": direct(PROV.wasDerivedFrom),
    }


def check(args):
    out = {"file": args[0]}
    doc = normalize(ProvDocument.deserialize(args[0], format="json"))
    out["counts"] = counts(doc)
    if len(args) > 1 and args[1]:
        with open(args[1], "rb") as f:
            from prov.serializers.provn import ProvNSerializer

            pn = normalize(ProvNSerializer().deserialize(f, profile="strict"))
        out["provn"] = {
            "counts": counts(pn),
            "equal": pn == doc,
            "diff": {} if pn == doc else diff(doc, pn),
        }
    if len(args) > 2 and args[2]:
        rdf = rdf_counts(args[2])
        pt = ProvDocument.deserialize(args[2], format="rdf", rdf_format="turtle")
        pt, dropped = drop_unqualified_duplicates(pt)
        pt = normalize(pt)
        out["turtle"] = {
            "rdflib": rdf,
            "prov_counts": counts(pt),
            "dropped_unqualified": dropped,
            "equal": pt == doc,
            "diff": {} if pt == doc else diff(doc, pt),
        }
    return out


def main():
    if sys.argv[1] == "--batch":
        with open(sys.argv[2]) as f:
            jobs = [line.split() for line in f if line.strip()]
        print(json.dumps([check(j) for j in jobs], default=str))
    else:
        print(json.dumps(check(sys.argv[1:]), default=str))


if __name__ == "__main__":
    main()
