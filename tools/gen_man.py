#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Generates the section-3 man pages of libmm from the comments of include/mm.h: one page per
public function (man/man3/mm_policy_create.3, ...) and libmm.3 with the header's contracts.

Usage: tools/gen_man.py [--check] [include/mm.h] [man/man3]
Without --check it writes the pages and removes pages of functions that no longer exist; with
--check it writes nothing and fails if any page is missing, stale or extra (`make docs-check`).
The pages are committed, so `make install` needs no Python. Standard library only.
"""
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_api_doc  # noqa: E402  (same folder: one parser for API.md and the man pages)


def roff(line):
    """Escapes one line of text for roff (backslashes; a leading dot or quote)."""
    line = line.replace("\\", "\\e")
    if line.startswith((".", "'")):
        line = "\\&" + line
    return line


def summary(comment, name):
    """The NAME line: the comment's first sentence, on one line, at most ~72 characters."""
    text = re.sub(r"\s+", " ", " ".join(comment)).strip()
    m = re.match(r"(.+?[.:;])(\s|$)", text)
    first = m.group(1).rstrip(".:;") if m else text
    if not first:
        return "libmm function " + name
    return first if len(first) <= 72 else first[:69].rsplit(" ", 1)[0] + " ..."


def header(title, version):
    return ['.\\" SPDX-License-Identifier: MIT',
            '.\\" Generated from include/mm.h by tools/gen_man.py; do not edit.',
            '.TH %s 3 "" "libmm %s" "libmm manual"' % (title.upper(), version)]


def function_page(name, decl, comment, section, siblings, version):
    lines = header(name, version)
    lines += [".SH NAME", "%s \\- %s" % (roff(name).replace("-", "\\-"), roff(summary(comment, name))),
              ".SH SYNOPSIS", ".nf", ".B #include <mm.h>", ".PP"]
    lines += [roff(decl)]
    lines += [".PP", "Link with \\fI\\-lmm\\fP (pkg-config: \\fIlibmm\\fP).", ".fi",
              ".SH DESCRIPTION", ".nf"]
    lines += [roff(l) for l in comment] if comment else ["(no description)"]
    lines += [".fi"]
    if section:
        lines += [".PP", "Section of mm.h: %s." % roff(section)]
    see = ["libmm (3)"] + ["%s (3)" % s for s in siblings if s != name][:12]
    lines += [".SH SEE ALSO", ",\n".join(".BR " + s for s in see)]
    lines += ["", ".PP", "docs/API.md in the libmm sources collects the same text with the "
              "enums, struct fields and parameter ids."]
    return "\n".join(l for l in lines if l != "") + "\n"


def overview_page(src, funcs, version):
    head = re.match(r"\s*(?:/\*\s*SPDX-License-Identifier:[^*]*\*/\s*)?(/\*.*?\*/)", src, re.S)
    intro = gen_api_doc.strip_comment(head.group(1)) if head else []
    intro = [l for l in intro if not l.startswith("mm.h") and not re.match(r"^-{10,}$", l)]
    while intro and not intro[0].strip():
        intro.pop(0)
    lines = header("libmm", version)
    lines += [".SH NAME", "libmm \\- embeddable C library of machine-learning kernels",
              ".SH SYNOPSIS", ".nf", ".B #include <mm.h>", ".fi",
              ".SH DESCRIPTION", ".nf"] + [roff(l) for l in intro] + [".fi",
              ".SH FUNCTIONS", ".nf"] + [roff(f) + "(3)" for f in sorted(funcs)] + [".fi"]
    return "\n".join(lines) + "\n"


def pages(src):
    version = re.search(r'#define MM_VERSION_STRING "([^"]+)"', src).group(1)
    section = ""
    funcs = []
    for item in gen_api_doc.parse(src):
        if item[0] == "section":
            section = item[1]
        elif item[0] == "func":
            funcs.append((item[1], item[2], item[3], section))
    by_section = {}
    for name, _, _, sec in funcs:
        by_section.setdefault(sec, []).append(name)
    out = {}
    for name, decl, comment, sec in funcs:
        out[name + ".3"] = function_page(name, decl, comment, sec, by_section[sec], version)
    out["libmm.3"] = overview_page(src, [f[0] for f in funcs], version)
    return out


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    check = "--check" in sys.argv
    header_path = args[0] if args else "include/mm.h"
    outdir = args[1] if len(args) > 1 else "man/man3"
    with open(header_path, encoding="utf-8") as f:
        want = pages(f.read())
    have = set(n for n in os.listdir(outdir) if n.endswith(".3")) if os.path.isdir(outdir) else set()
    problems = []
    for name, text in sorted(want.items()):
        path = os.path.join(outdir, name)
        current = None
        if name in have:
            with open(path, encoding="utf-8") as f:
                current = f.read()
        if current != text:
            if check:
                problems.append("%s is %s" % (path, "missing" if current is None else "stale"))
            else:
                os.makedirs(outdir, exist_ok=True)
                with open(path, "w", encoding="utf-8") as f:
                    f.write(text)
    for name in sorted(have - set(want)):
        if check:
            problems.append("%s documents no public function" % os.path.join(outdir, name))
        else:
            os.remove(os.path.join(outdir, name))
    if problems:
        sys.stderr.write("\n".join(problems) + "\ngen_man: run `make docs`\n")
        return 1
    if check:
        print("gen_man: %d man pages in %s are current" % (len(want), outdir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
