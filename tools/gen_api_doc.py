#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Generates docs/API.md from the comments of include/mm.h (the normative reference): every
function with its comment, every enum as a table of names, values and meanings, every struct
as a table of fields with their defaults (the bracketed part of a field's comment), and one
table of all run-time parameter ids with the object that owns them.

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


DEFINITION = (r"^enum\s*\{.*?\};|^typedef struct \w+\s*\{.*?\}\s*\w+;"
              r"|^typedef struct \w+ \w+;|^typedef [^;{]*\(\*\w+\)[^;]*;")


def parse(src):
    """Yields ('section', title), ('text', lines), ('func', name, decl, comment lines),
    ('enum', entries) and ('struct', name, fields)."""
    tokens = re.finditer(r"/\*.*?\*/|^MM_API[^;]*;|" + DEFINITION, src, re.S | re.M)
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
            # typedefs/enums consume the preceding comment as overview text; a struct's comment
            # goes under the struct's own heading
            overview = last_comment if last_comment and between.strip() == "" else None
            last_comment = None
            if text.startswith("typedef struct") and "{" in text:
                name = re.match(r"typedef struct (\w+)", text).group(1)
                yield ("struct", name, struct_fields(text), overview)
                continue
            if overview:
                yield ("text", overview)
            if text.startswith("enum"):
                yield ("enum", enum_entries(text))
            else:
                yield ("typedef", re.sub(r"\s+", " ", text))


def body_items(body, item_re):
    """Splits the body of a definition into items (matches of item_re) and comments. A comment
    that starts on the line where an item ends describes it; any other comment is a note.
    Returns a list of [match, comment text] and [None, note text]."""
    out = []
    last_end = None
    for m in re.finditer(r"/\*(?P<comment>.*?)\*/|" + item_re, body, re.S):
        if m.group(0).startswith("/*"):
            comment = " ".join(l.strip().lstrip("*").strip()
                               for l in m.group("comment").splitlines()).strip()
            comment = re.sub(r"\s+", " ", comment)
            if out and out[-1][0] is not None and last_end is not None \
                    and "\n" not in body[last_end:m.start()]:
                out[-1][1] = (out[-1][1] + " " + comment).strip()
            else:
                out.append([None, comment])
        else:
            out.append([m, ""])
            last_end = m.end()
    return out


def enum_entries(text):
    """[(name, value, meaning)] of an enum; name None for a note between entries."""
    body = text[text.index("{") + 1:text.rindex("}")]
    entries = []
    value = -1
    for m, comment in body_items(body, r"(?P<name>MM_\w+)\s*(?:=\s*(?P<val>[^,/\n]+?))?\s*(?:,|$|(?=\s*/\*))"):
        if m is None:
            entries.append((None, None, comment))
            continue
        if m.group("val"):
            value = int(m.group("val").strip().rstrip("uU"), 0)
        else:
            value += 1
        entries.append((m.group("name"), value, comment))
    return entries


def struct_fields(text):
    """[(declaration, names, comment)] of a struct; declaration None for a note."""
    body = text[text.index("{") + 1:text.rindex("}")]
    fields = []
    for m, comment in body_items(body, r"[A-Za-z_][^;/]*;"):
        if m is None:
            fields.append((None, [], comment))
            continue
        decl = re.sub(r"\s+", " ", m.group(0).rstrip(";")).strip()
        fp = re.search(r"\(\*\s*(\w+)\)", decl)
        if fp:
            names = [fp.group(1)]
        else:
            names = [re.findall(r"\w+", re.sub(r"\[.*?\]", "", part))[-1]
                     for part in decl.split(",")]
        fields.append((decl, names, comment))
    return fields


def cell(text):
    return text.replace("|", "\\|").strip()


def default_of(decl, comment):
    """The default a field's comment states: its first [bracketed] part, else what the
    comment implies (reserved fields 0, pointers NULL, struct_size from the _init function)."""
    m = re.search(r"\[([^\]]*)\]", comment)
    if m:
        return m.group(1)
    m = re.search(r"default ([^;,)]+)", comment)
    if m:
        return m.group(1)
    if "must be 0" in comment:
        return "0"
    if comment.startswith("sizeof("):
        return "sizeof"
    if "*" in decl:
        return "NULL"
    return ""


PARAM_OWNERS = [(100, 199, "mm_attn"), (200, 299, "mm_ssm"), (300, 399, "mm_policy"),
                (400, 499, "mm_loss"), (500, 599, "mm_model")]


def param_owner(name, value):
    prefix = {"MM_ATTN_": "mm_attn", "MM_SSM_": "mm_ssm", "MM_POLICY_": "mm_policy",
              "MM_LOSS_": "mm_loss", "MM_MODEL_": "mm_model"}
    for lo, hi, owner in PARAM_OWNERS:
        if lo <= value <= hi and any(name.startswith(p) and o == owner
                                     for p, o in prefix.items()):
            return owner
    return None


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
        while intro and not intro[0].strip():
            intro.pop(0)
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
        elif item[0] == "enum" and seen_section:
            out += ["| name | value | meaning |", "|---|---:|---|"]
            for name, value, comment in item[1]:
                if name is None:
                    out.append("| | | *%s* |" % cell(comment))
                else:
                    out.append("| `%s` | %d | %s |" % (name, value, cell(comment)))
            out.append("")
        elif item[0] == "struct":
            _, sname, fields, overview = item
            out += ["### `%s`" % sname, ""]
            if overview:
                out += ["```text"] + overview + ["```", ""]
            out += ["| field | default | meaning |", "|---|---|---|"]
            for decl, names, comment in fields:
                if decl is None:
                    out.append("| | | *%s* |" % cell(comment))
                else:
                    out.append("| `%s` | %s | %s |" % (cell(decl), cell(default_of(decl, comment)),
                                                       cell(comment)))
            out.append("")
        elif item[0] == "typedef":
            out += ["```c", item[1], "```", ""]
    params = [(value, name, comment) for item in parse(src) if item[0] == "enum"
              for name, value, comment in item[1]
              if name is not None and param_owner(name, value)]
    if params:
        out += ["", "## Run-time parameter ids", "",
                "Every id of `mm_<object>_set_f64` / `mm_<object>_get_f64`, with its default and "
                "bounds as the header states them (`mm_param_bounds(id, &lo, &hi)` returns the "
                "bounds at run time). Read-only ids are statistics: setting them returns "
                "`MM_E_UNSUPPORTED`.", "",
                "| id | name | object | access | meaning |", "|---:|---|---|---|---|"]
        for value, name, comment in sorted(params):
            ro = "_STAT_" in name or "read-only" in comment
            out.append("| %d | `%s` | `%s` | %s | %s |" % (value, name, param_owner(name, value),
                                                          "read" if ro else "read, write",
                                                          cell(comment)))
        out.append("")
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
