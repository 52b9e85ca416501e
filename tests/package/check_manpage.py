#!/usr/bin/env python3
"""gala(8) documents what the binary has: every command of `gala --help`
under COMMANDS, every setting of `gala check-config --list` under
SETTINGS, and it renders without a groff warning (when groff is
installed; man-db brings it). Extra entries are allowed: the page may
describe a command a branch adds before it is merged."""
import os
import re
import shutil
import subprocess
import sys

here = os.path.dirname(os.path.abspath(__file__))
page = os.path.normpath(os.path.join(os.environ.get("GALA_SRCDIR", os.path.join(here, "..", "..")),
                                    "man", "gala.8"))
gala = os.environ.get("GALA_BIN", "src/gala")


def plain(troff):
    """A troff line as text: macros, font changes and escapes removed."""
    line = re.sub(r"^\.[A-Z]{1,2}\s*", "", troff)
    line = re.sub(r"\\f[BIRP]", "", line).replace("\\-", "-").replace("\\e", "\\")
    return line.replace('"', "").strip()


def tags(lines, section):
    """The tags of the .TP paragraphs of one .SH section (with its .SS
    subsections), as text."""
    out, inside = [], False
    for i, line in enumerate(lines):
        if line.startswith(".SH "):
            inside = plain(line) == section
        elif inside and line.startswith(".TP") and i + 1 < len(lines):
            out.append(plain(lines[i + 1]))
    return out


def commands():
    """The commands of `gala --help`: the lines indented by two spaces under
    "commands:", up to the description (after two spaces or more), without
    their arguments (UPPER CASE or [optional])."""
    text = subprocess.run([gala, "--help"], capture_output=True, text=True, check=True).stdout
    found, inside = [], False
    for line in text.splitlines():
        if line == "commands:":
            inside = True
        elif inside and re.match(r"^  \S", line):
            words = []
            for word in re.split(r"\s{2,}", line.strip())[0].split():
                if word.startswith("[") or word.isupper():
                    break
                words.append(word)
            found.append(" ".join(words))
        elif inside and line == "":
            break
    return found


def main():
    with open(page, encoding="utf-8") as f:
        lines = f.read().splitlines()
    failures = []

    command_tags = tags(lines, "COMMANDS")
    listed = commands()
    if not listed:
        failures.append("gala --help lists no command: cannot check COMMANDS")
    for cmd in listed:
        if not any(tag == cmd or tag.startswith(cmd + " ") for tag in command_tags):
            failures.append(f"command '{cmd}' of gala --help is not under COMMANDS")

    setting_tags = set()
    for tag in tags(lines, "SETTINGS"):
        setting_tags.update(name.strip() for name in tag.split(","))
    out = subprocess.run([gala, "check-config", "--list"], capture_output=True, text=True,
                         check=True).stdout
    settings = [line.split()[0] for line in out.splitlines() if line.strip()]
    if len(settings) < 10:
        failures.append(f"check-config --list printed {len(settings)} settings: cannot check")
    for name in settings:
        if name not in setting_tags:
            failures.append(f"setting {name} of check-config --list is not under SETTINGS")

    if shutil.which("groff"):
        lint = subprocess.run(["groff", "-man", "-ww", "-z", page], capture_output=True, text=True)
        if lint.returncode != 0 or lint.stderr.strip():
            failures.append("groff warns:\n" + lint.stderr)
    else:
        print("note: groff is not installed; the rendering was not checked")

    print(f"{len(listed)} commands and {len(settings)} settings checked against {page}")
    for failure in failures:
        print("FAIL:", failure)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
