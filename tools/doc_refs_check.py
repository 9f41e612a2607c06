#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Fails when a file of the repository points at a document that is not in the repository.

Checks every tracked (and new, not ignored) text file except CHANGELOG.md:
  * no mention of the design folder outside the repository (a path through '../' + 'shared')
    nor of its specification files (spec/<name>.md, or "spec" followed by a section sign or a
    section number such as A1.3);
  * every docs/<file>.md (or docs/history/<file>.md) named exists, and every docs/<file>.md
    §<section> names a heading of that file (the heading starts with the section text; §4
    matches '## 4. ...').
Usage: tools/doc_refs_check.py [repository root]. Standard library only; run by `make docs-check`.
"""
import os
import re
import subprocess
import sys

# Built from pieces so this file does not match itself.
OUTSIDE = re.compile(r"\.\./" + "shared" + r"|\bspec/[A-Za-z0-9_]+\.md|\bspec [a-z_]+\.md"
                     r"|\bspec §|\bspec [A-Z][0-9]")
# docs/<file>.md or docs/history/<file>.md (the dated logs the main pages point at).
DOC = re.compile(r"\bdocs/((?:history/)?[A-Za-z0-9_]+\.md)")
SECTION = re.compile(r"\bdocs/((?:history/)?[A-Za-z0-9_]+\.md)[\s*#]*§\s*([^()\]\n;,:]*)")


def files(root):
    try:
        out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"],
                             cwd=root, capture_output=True, text=True, check=True).stdout
        names = out.split("\n")
    except (OSError, subprocess.CalledProcessError):
        names = []
        for d, subdirs, fs in os.walk(root):
            subdirs[:] = [s for s in subdirs if s not in (".git", "build", "lib")]
            names += [os.path.relpath(os.path.join(d, f), root) for f in fs]
    return sorted(n for n in names if n and n != "CHANGELOG.md")


def headings(path):
    """Heading texts of a markdown file, without '#', backticks and emphasis."""
    result = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("#"):
                result.append(line.lstrip("#").strip().replace("`", "").replace("*", ""))
    return result


def section_ok(name, heads):
    name = name.strip().rstrip(".").strip()
    for h in heads:
        if h == name or (h.startswith(name) and not re.match(r"[A-Za-z0-9_]", h[len(name)])):
            return True
    return False


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "."
    errors = []
    cache = {}
    for rel in files(root):
        path = os.path.join(root, rel)
        if not os.path.isfile(path):
            continue
        with open(path, "rb") as f:
            data = f.read()
        if b"\0" in data:
            continue
        text = data.decode("utf-8", "replace")
        for m in OUTSIDE.finditer(text):
            line = text.count("\n", 0, m.start()) + 1
            errors.append("%s:%d: refers outside the repository: %r" % (rel, line, m.group(0)))
        for m in DOC.finditer(text):
            if not os.path.isfile(os.path.join(root, "docs", m.group(1))):
                line = text.count("\n", 0, m.start()) + 1
                errors.append("%s:%d: docs/%s does not exist" % (rel, line, m.group(1)))
        for m in SECTION.finditer(text):
            doc = os.path.join(root, "docs", m.group(1))
            if not os.path.isfile(doc):
                continue
            if doc not in cache:
                cache[doc] = headings(doc)
            if not section_ok(m.group(2), cache[doc]):
                line = text.count("\n", 0, m.start()) + 1
                errors.append("%s:%d: docs/%s has no section %r"
                              % (rel, line, m.group(1), m.group(2).strip()))
    for e in errors:
        sys.stderr.write(e + "\n")
    if errors:
        sys.stderr.write("doc_refs_check: %d reference(s) do not resolve in the repository\n"
                         % len(errors))
        return 1
    print("doc_refs_check: every document reference resolves inside the repository")
    return 0


if __name__ == "__main__":
    sys.exit(main())
