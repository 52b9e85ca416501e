#!/usr/bin/env python3
"""Fails when a relative link of README.md or docs/*.md names no file or
directory of the repository, or a "#fragment" no heading of its target.

A link is a Markdown link or image, [text](target) or [text]: target;
links with a scheme (https:, mailto:) are not followed. Code (fenced blocks
and `inline spans`) is not read, so examples may show any path.

Usage: check_links.py [REPO]   (default: the repository of this script)
"""
import os
import re
import sys

INLINE = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$", re.M)
SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def strip_code(text):
    text = re.sub(r"^(```|~~~).*?^\1[^\n]*$", "", text, flags=re.M | re.S)
    return re.sub(r"`[^`\n]*`", "", text)


def anchors(path):
    """GitHub's anchors of a Markdown file's headings."""
    out = set()
    with open(path, encoding="utf-8") as f:
        text = strip_code(f.read())
    for heading in re.findall(r"^#{1,6}\s+(.*?)\s*#*\s*$", text, re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        n, candidate = 0, slug
        while candidate in out:
            n += 1
            candidate = f"{slug}-{n}"
        out.add(candidate)
    return out


def main():
    repo = sys.argv[1] if len(sys.argv) > 1 else os.environ.get(
        "GALA_SRCDIR", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
    docs = os.path.join(repo, "docs")
    files = [os.path.join(repo, "README.md")] + sorted(
        os.path.join(docs, n) for n in os.listdir(docs) if n.endswith(".md"))
    bad, count = [], 0
    for md in files:
        with open(md, encoding="utf-8") as f:
            text = strip_code(f.read())
        for target in INLINE.findall(text) + REFERENCE.findall(text):
            if SCHEME.match(target):
                continue
            count += 1
            path, _, fragment = target.partition("#")
            full = os.path.normpath(os.path.join(os.path.dirname(md), path)) if path else md
            where = f"{os.path.relpath(md, repo)}: {target}"
            if not os.path.exists(full):
                bad.append(f"{where}: no such file")
            elif not os.path.realpath(full).startswith(os.path.realpath(repo) + os.sep):
                bad.append(f"{where}: outside the repository")
            elif fragment and full.endswith(".md") and fragment not in anchors(full):
                bad.append(f"{where}: no heading #{fragment}")
    for b in bad:
        print("broken link: " + b)
    print(f"{count} relative links in {len(files)} files, {len(bad)} broken")
    return 1 if bad or count == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
