#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Generates docs/API.md from the comments of include/mm.h (the normative reference).

Usage: tools/gen_api_doc.py [--check] [include/mm.h] > docs/API.md
--check also fails when a public function's comment lacks 'Since:' or 'Allocates'.
`make docs-check` regenerates it and fails if the committed file differs, so it cannot rot.
Standard library only.
"""
import re
import sys


def strip_comment(text):
    """Turns a /* ... */ block into plain lines without the leading stars."""
    body = text.strip()
    body = body[2:-2] if body.startswith("/*") else body
    lines = []
    for line in body.splitlines():
        line = re.sub(r"^\s*\*( ?)", "", line)
        lines.append(line.rstrip())
    if lines and lines[0].startswith(" "):
        lines[0] = lines[0][1:]
    while lines and not lines[0].strip():
        lines.pop(0)
    while lines and not lines[-1].strip():
        lines.pop()
    return lines


def clean_decl(decl):
    decl = re.sub(r"\bMM_API\s+", "", decl)
    decl = re.sub(r"\bMM_NODISCARD\s+", "", decl)
    return re.sub(r"\s+", " ", decl).replace("( ", "(").strip()


def parse(src):
    """Yields ('section', title), ('text', lines) and ('func', name, decl, comment lines)."""
    tokens = re.finditer(r"/\*.*?\*/|^MM_API[^;]*;|^(?:typedef struct|enum)\b", src,
                         re.S | re.M)
    last_comment = None
    last_end = 0
    for tok in tokens:
        text = tok.group(0)
        between = src[last_end:tok.start()]
        last_end = tok.end()
        if text.startswith("/*"):
            m = re.match(r"/\*\s*-{2,}\s*(.*?)\s*-{2,}", text)
            if m and m.group(1):
                yield ("section", m.group(1))
                rest = text[m.end():].rstrip("*/ \n")
                last_comment = strip_comment("/*" + rest + "*/") if rest.strip() else None
                if last_comment:
                    yield ("text", last_comment)
                    last_comment = None
            else:
                last_comment = strip_comment(text)
        elif text.startswith("MM_API"):
            name = re.search(r"(mm_[a-z0-9_]+)\s*\(", text).group(1)
            # A declaration right after another shares its comment (set_f64 / get_f64).
            yield ("func", name, clean_decl(text), last_comment or [])
        else:
            # typedefs/enums consume the preceding comment as overview text
            if last_comment and between.strip() == "":
                yield ("text", last_comment)
            last_comment = None


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    path = args[0] if args else "include/mm.h"
    with open(path, encoding="utf-8") as f:
        src = f.read()
    out = ["# libmm API reference", "",
           "Generated from `include/mm.h` by `tools/gen_api_doc.py`; do not edit by hand",
           "(`make docs-check` fails when this file and the header disagree). The header",
           "comments are the normative text; this page only collects them.", ""]
    # the file comment after the licence line
    head = re.match(r"\s*(?:/\*\s*SPDX-License-Identifier:[^*]*\*/\s*)?(/\*.*?\*/)", src, re.S)
    if head:
        intro = [l for l in strip_comment(head.group(1)) if not l.startswith("mm.h")]
        out += ["```text"] + intro + ["```", ""]
    seen_section = False
    for item in parse(src):
        if item[0] == "section":
            out += ["", "## " + item[1], ""]
            seen_section = True
        elif item[0] == "text" and seen_section:
            out += ["```text"] + item[1] + ["```", ""]
        elif item[0] == "func":
            _, name, decl, comment = item
            out += ["### `%s`" % name, "", "```c", decl, "```", ""]
            if comment:
                out += ["```text"] + comment + ["```", ""]
    funcs = [item for item in parse(src) if item[0] == "func"]
    for word in ("Since:", "llocates"):
        missing = [f[1] for f in funcs if not any(word in l for l in f[3])]
        if "--check" in sys.argv and missing:
            sys.stderr.write("functions whose header comment lacks '%s': %s\n"
                             % (word.replace("llocates", "Allocates"), ", ".join(missing)))
            sys.exit(1)
    text = "\n".join(out)
    text = re.sub(r"\n{3,}", "\n\n", text).rstrip() + "\n"
    sys.stdout.write(text)


if __name__ == "__main__":
    main()
