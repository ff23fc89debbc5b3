#!/usr/bin/env python3
"""Validates JSON documents against the OCI image-spec schemas (python3-jsonschema).

usage: validate_oci_schema.py SCHEMA_DIR SCHEMA_FILE DOCUMENT...
Exits 0 when every document is valid, 1 (printing the errors) otherwise.
"""
import json
import os
import sys
import warnings

import jsonschema

warnings.filterwarnings("ignore", category=DeprecationWarning)


def main():
    schema_dir, schema_file, docs = sys.argv[1], sys.argv[2], sys.argv[3:]
    store = {}
    by_name = {}
    for name in os.listdir(schema_dir):
        if not name.endswith(".json"):
            continue
        with open(os.path.join(schema_dir, name)) as f:
            doc = json.load(f)
        by_name[name] = doc
        # The schemas refer to each other relative to ids under two different bases.
        for base in ("https://opencontainers.org/schema/", "https://opencontainers.org/schema/image/"):
            store[base + name] = doc
        if "id" in doc:
            store[doc["id"]] = doc
    schema = store["https://opencontainers.org/schema/image/" + schema_file]
    # Nested "id"s move the resolution base around; every schema file is known by its base
    # name, so resolve any https reference by that (and never touch the network).
    def local(uri):
        return by_name[uri.rsplit("/", 1)[-1]]
    resolver = jsonschema.RefResolver(schema["id"], schema, store=store, handlers={"https": local})
    validator = jsonschema.Draft4Validator(schema, resolver=resolver,
                                           format_checker=jsonschema.FormatChecker())
    failed = False
    for path in docs:
        with open(path) as f:
            doc = json.load(f)
        for error in validator.iter_errors(doc):
            failed = True
            print(f"{path}: {'/'.join(str(p) for p in error.path)}: {error.message}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
