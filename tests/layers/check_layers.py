#!/usr/bin/env python3
"""Fails when an #include of src/ breaks the layering the README draws.

From the bottom: core, db, clients, services, http, api, server (main.c on
top). Each directory includes only those its rule allows:

  core      core only (no db: db builds on core)
  db        core, db
  clients   core, clients
  services  core, db, clients, services (never http/, api/ or server/)
  http      anything but api/ and server/
  api       anything but db/ and server/
  server    anything

and no two modules of services/ include each other, directly or through
others (a module is a .c with its .h).

Usage: check_layers.py [SRCDIR]   (default: src/ beside this script's tests/)
"""
import os
import re
import sys

ALLOWED = {
    "core": {"core"},
    "db": {"core", "db"},
    "clients": {"core", "clients"},
    "services": {"core", "db", "clients", "services"},
    "http": {"core", "db", "clients", "services", "http"},
    "api": {"core", "clients", "services", "http", "api"},
    "server": {"core", "db", "clients", "services", "http", "api", "server"},
}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([a-z_]+)/([a-z_]+)\.h"', re.M)


def includes(path):
    with open(path, encoding="utf-8") as f:
        return INCLUDE.findall(f.read())


def cycles(graph):
    """Every cycle of the module graph, each as a list of modules."""
    found, state, stack = [], {}, []

    def visit(m):
        state[m] = "open"
        stack.append(m)
        for n in sorted(graph.get(m, ())):
            if state.get(n) == "open":
                found.append(stack[stack.index(n):] + [n])
            elif n not in state:
                visit(n)
        stack.pop()
        state[m] = "done"

    for m in sorted(graph):
        if m not in state:
            visit(m)
    return found


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    src = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "..", "src")
    errors = []
    services = {}
    for layer in sorted(ALLOWED):
        folder = os.path.join(src, layer)
        if not os.path.isdir(folder):
            errors.append(f"src/{layer}/ is missing")
            continue
        for name in sorted(os.listdir(folder)):
            if not name.endswith((".c", ".h")):
                continue
            module = name[:-2]
            for d, header in includes(os.path.join(folder, name)):
                if d not in ALLOWED[layer]:
                    errors.append(f"src/{layer}/{name} includes {d}/{header}.h")
                if layer == "services" and d == "services" and header != module:
                    services.setdefault(module, set()).add(header)
    for c in cycles(services):
        errors.append("services include each other: " + " -> ".join(c))
    for e in errors:
        print(e)
    if errors:
        print(f"{len(errors)} include(s) break the layering (tests/layers/check_layers.py)")
        return 1
    print("the includes of src/ keep to the layering")
    return 0


if __name__ == "__main__":
    sys.exit(main())
