#!/usr/bin/env python3
"""Fails when docs/openapi.json is not a valid OpenAPI 3.1 document: it is
checked against the OpenAPI Initiative's JSON Schema of 3.1 by
@seriousme/openapi-schema-validator (npm, docs/ui/package-lock.json), from
the node_modules that configure was given (GALA_NODE_MODULES). Skipped (77)
when there is none; tests/unit/check_unit_openapi checks the document
against the route table.
"""
import json
import os
import shutil
import subprocess
import sys


def main():
    modules = os.environ.get("GALA_NODE_MODULES", "")
    cli = os.path.join(modules, "@seriousme", "openapi-schema-validator", "bin",
                       "validate-api-cli.js")
    node = shutil.which("node") or shutil.which("nodejs")
    if not modules or not os.path.isfile(cli) or node is None:
        print("SKIP: no OpenAPI validator (configure --with-node-modules=DIR with "
              "docs/ui's packages, and node; scripts/test provides both)")
        return 77
    doc = os.path.join(os.environ.get("GALA_SRCDIR", "."), "docs", "openapi.json")
    r = subprocess.run([node, cli, doc], capture_output=True, text=True, timeout=120)
    print(r.stdout[-20000:], r.stderr[-2000:], sep="")
    try:
        valid = json.loads(r.stdout).get("valid") is True
    except ValueError:
        valid = False
    print(f"{doc}: {'valid' if valid and r.returncode == 0 else 'INVALID'} OpenAPI 3.1")
    return 0 if valid and r.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
