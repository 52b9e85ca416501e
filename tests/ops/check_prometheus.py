#!/usr/bin/env python3
"""The Prometheus files of etc/prometheus/ are what promtool accepts:
the alert rules parse (check rules), fire and stay silent as their unit
tests say (test rules), and the scrape job is a valid configuration
(check config, with its rule_files pointed at the repository's copy).
Skips (exit 77) only when promtool is missing; scripts/lib/deps.sh
installs it (Debian's prometheus package), so CI always runs it."""
import os
import shutil
import subprocess
import sys
import tempfile

here = os.path.dirname(os.path.abspath(__file__))
etc = os.path.join(here, "..", "..", "etc", "prometheus")


def run(*args, cwd=None):
    p = subprocess.run(["promtool", *args], cwd=cwd, capture_output=True, text=True)
    print(p.stdout + p.stderr, end="")
    if p.returncode != 0:
        sys.exit(f"promtool {' '.join(args)} failed")


def main():
    if shutil.which("promtool") is None:
        print("SKIP: promtool is not installed (Debian package prometheus)")
        return 77
    run("check", "rules", "gala-alerts.yml", cwd=etc)
    run("test", "rules", "gala-alerts.test.yml", cwd=etc)
    with tempfile.TemporaryDirectory() as tmp:
        rules = os.path.join(tmp, "gala-alerts.yml")
        shutil.copy(os.path.join(etc, "gala-alerts.yml"), rules)
        with open(os.path.join(etc, "scrape.yml"), encoding="utf-8") as f:
            conf = f.read().replace("/etc/prometheus/gala-alerts.yml", rules)
        conf_path = os.path.join(tmp, "prometheus.yml")
        with open(conf_path, "w", encoding="utf-8") as f:
            f.write(conf)
        # The CA file of the example need not exist for the syntax check.
        run("check", "config", "--syntax-only", conf_path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
