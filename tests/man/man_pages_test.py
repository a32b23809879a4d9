#!/usr/bin/env python3
# The man pages of man/ hold together: each renders with `groff -ww -man -Tutf8` (what
# `man -l` runs) without a warning, its .TH names its file, every public header of
# include/uringrpc/ is named (#include <uringrpc/X.h>) in some man3 page's SYNOPSIS, every
# page is in uringrpc(7)'s SEE ALSO, every SEE ALSO reference to one of our pages points at a
# page of man/, and the C++ of every man3 EXAMPLE (its .EX blocks but shell commands, after
# EXAMPLE_PRELUDE) compiles against include/ under -Werror: examples stay true to the API.
# A last case plants a broken page and a header nobody documents in a copy of the tree and
# checks that each check above catches them. Prints the RESULT line of
# tests/common/test_report.py. Usage: man_pages_test.py [--man-dir DIR] [--include-dir DIR]
import argparse
import concurrent.futures
import os
import pathlib
import re
import shlex
import shutil
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "common"))
from test_report import Report, exit_with  # noqa: E402

# Public headers no man3 page needs to name, each with the reason.
UNDOCUMENTED_HEADERS = {
    # Declares the coroutine-frame allocator that Task's promise type calls (task.h includes
    # it); nothing in it is for users to call.
    "frame_pool.h": "internal to task.h",
}
# Prepended to each man3 EXAMPLE, which may then use the public API and the usual
# standard headers without repeating them.
EXAMPLE_PRELUDE = """#include <uringrpc/uringrpc.h>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
"""
# An .EX block of an EXAMPLE that starts with one of these is a shell command, not C++.
SHELL_COMMANDS = ("g++", "c++", "cmake", "pkg-config", "protoc", "$")


def pages(man_dir):
    return sorted(p for p in pathlib.Path(man_dir).iterdir() if re.fullmatch(r".+\.[1-8]", p.name))


def plain(roff):
    """Roff source with the escapes that matter here turned back into text."""
    roff = re.sub(r"\\f(\[[A-Z]*\]|[BIRPC])", "", roff)
    for esc, text in (("\\-", "-"), ("\\(la", "<"), ("\\(ra", ">"), ("\\(dq", '"'), ("\\e", "\\"),
                      ("\\&", ""), ("\\(aq", "'")):
        roff = roff.replace(esc, text)
    return roff


def section(source, title):
    """The lines of section `title` (.SH TITLE up to the next .SH), roff source."""
    m = re.search(r'^\.SH\s+"?' + re.escape(title) + r'"?\s*\n(.*?)(?=^\.SH\s|\Z)', source, re.M | re.S)
    return m.group(1) if m else ""


def references(text):
    return re.findall(r"([A-Za-z0-9_.:+-]+)\s*\((\d[a-z]*)\)", plain(text))


def render_problems(man_dir):
    problems = []
    for page in pages(man_dir):
        p = subprocess.run(["groff", "-ww", "-man", "-Tutf8", str(page)], stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True)
        if p.returncode != 0 or p.stderr.strip():
            problems.append(f"{page.name}: groff exited {p.returncode}: {p.stderr.strip()}")
    return problems


def title_problems(man_dir):
    problems = []
    for page in pages(man_dir):
        m = re.search(r"^\.TH\s+(\S+)\s+(\S+)", page.read_text(), re.M)
        name, sect = page.name.rsplit(".", 1)
        if not m or plain(m.group(1)).strip('"').lower() != name.lower() or m.group(2) != sect:
            problems.append(f"{page.name}: .TH is {m.group(0) if m else 'missing'!r}, not {name} {sect}")
    return problems


def header_problems(man_dir, include_dir):
    named = set()
    for page in pages(man_dir):
        if page.suffix == ".3":
            synopsis = plain(section(page.read_text(), "SYNOPSIS"))
            named |= set(re.findall(r"#include\s*<uringrpc/([\w.-]+\.h)>", synopsis))
    headers = sorted(h.name for h in pathlib.Path(include_dir, "uringrpc").glob("*.h"))
    return [f"include/uringrpc/{h}: named in no man3 page's SYNOPSIS (#include <uringrpc/{h}>)"
            for h in headers if h not in named and h not in UNDOCUMENTED_HEADERS]


def index_problems(man_dir):
    index = pathlib.Path(man_dir, "uringrpc.7")
    if not index.exists():
        return ["uringrpc.7 is missing"]
    listed = set(references(section(index.read_text(), "SEE ALSO")))
    return [f"{p.name}: not in uringrpc.7's SEE ALSO" for p in pages(man_dir)
            if p.name != "uringrpc.7" and tuple(p.name.rsplit(".", 1)) not in listed]


def reference_problems(man_dir):
    """SEE ALSO references to our pages (any name with "uringrpc" in it, or a page of man/)
    must name a page of man/, section included. Other references are to the system's pages
    (io_uring(7), pkg-config(1)), which a build machine need not have installed."""
    ours = {tuple(p.name.rsplit(".", 1)) for p in pages(man_dir)}
    ours_by_name = {name for name, _ in ours}
    problems = []
    for page in pages(man_dir):
        for name, sect in references(section(page.read_text(), "SEE ALSO")):
            if ("uringrpc" in name or name in ours_by_name) and (name, sect) not in ours:
                problems.append(f"{page.name}: SEE ALSO {name}({sect}): no man/{name}.{sect}")
    return problems


def examples(page):
    """The C++ .EX blocks of a page's EXAMPLE section, joined, as plain text."""
    blocks = re.findall(r"^\.EX\s*\n(.*?)^\.EE", section(page.read_text(), "EXAMPLE"), re.M | re.S)
    code = [plain(b) for b in blocks if not plain(b).lstrip().startswith(SHELL_COMMANDS)]
    return "\n".join(code)


def example_problems(man_dir, include_dir, only=None):
    """only: the page names to compile (the planted run compiles its own page alone)."""
    cxx = shlex.split(os.environ.get("CXX", "g++"))
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="uringrpc-man-examples-"))

    def compile_one(page):
        code = examples(page)
        if not code.strip():
            return None  # no EXAMPLE, or only shell commands: nothing to compile
        src = tmp / f"{page.stem}.cc"
        src.write_text(EXAMPLE_PRELUDE + code)
        p = subprocess.run([*cxx, "-std=c++20", "-Wall", "-Wextra", "-Werror", "-fsyntax-only",
                            f"-I{include_dir}", str(src)], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
        return f"{page.name}: its EXAMPLE does not compile:\n{p.stdout[-3000:]}" if p.returncode else None

    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
            found = pool.map(compile_one, [p for p in pages(man_dir)
                                           if p.suffix == ".3" and (only is None or p.name in only)])
            return [f for f in found if f]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


CHECKS = {
    "EveryPageRendersWithoutGroffWarnings": lambda m, i: render_problems(m),
    "EveryPageTitleMatchesItsFile": lambda m, i: title_problems(m),
    "EveryPublicHeaderIsNamedInAMan3Synopsis": header_problems,
    "EveryPageIsInUringrpc7SeeAlso": lambda m, i: index_problems(m),
    "EverySeeAlsoReferenceToOurPagesExists": lambda m, i: reference_problems(m),
    "EveryMan3ExampleCompiles": example_problems,
}

# A page that breaks every rule above, and a header that no page names.
PLANTED_PAGE = r""".TH WRONG_NAME 3 2026-12 "uringrpc 0.1.0" "uringrpc"
.SH NAME
planted \- a page that breaks every rule
.SH SYNOPSIS
.B #include <uringrpc/not_a_header.h>
.SH DESCRIPTION
.NOSUCHMACRO here
.SH EXAMPLE
.EX
int main() { return no_such_function(); }
.EE
.SH SEE ALSO
.BR uringrpc_no_such_page (3)
"""


def planted_problems_missed(include_dir):
    """Runs every check on a copy of man/ and include/ with a planted broken page and an
    undocumented header; returns the checks that did not report them."""
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="uringrpc-man-planted-"))
    try:
        man, inc = tmp / "man", tmp / "include"
        shutil.copytree(ROOT / "man", man)
        shutil.copytree(include_dir, inc)
        (man / "uringrpc_planted.3").write_text(PLANTED_PAGE)
        (inc / "uringrpc" / "planted.h").write_text("#pragma once\n")
        expected = {  # what each check must say about the planted files
            "EveryPageRendersWithoutGroffWarnings": "uringrpc_planted.3: groff",
            "EveryPageTitleMatchesItsFile": "uringrpc_planted.3: .TH",
            "EveryPublicHeaderIsNamedInAMan3Synopsis": "include/uringrpc/planted.h",
            "EveryPageIsInUringrpc7SeeAlso": "uringrpc_planted.3: not in uringrpc.7",
            "EverySeeAlsoReferenceToOurPagesExists": "uringrpc_no_such_page(3)",
            "EveryMan3ExampleCompiles": "uringrpc_planted.3: its EXAMPLE does not compile",
        }
        checks = dict(CHECKS, EveryMan3ExampleCompiles=lambda m, i: example_problems(
            m, i, only={"uringrpc_planted.3"}))  # the real pages' examples were compiled already
        return [name for name, check in checks.items()
                if not any(expected[name] in p for p in check(man, inc))]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--man-dir", default=str(ROOT / "man"))
    parser.add_argument("--include-dir", default=str(ROOT / "include"))
    args = parser.parse_args()
    report = Report()
    for name, check in CHECKS.items():
        problems = check(args.man_dir, args.include_dir)
        report.record(name, not problems)
        print(f"{'ok  ' if not problems else 'FAIL'} {name}", flush=True)
        for p in problems:
            print(f"     {p}", flush=True)
    missed = planted_problems_missed(args.include_dir)
    report.record("ChecksCatchAPlantedBrokenPageAndHeader", not missed)
    print(f"{'ok  ' if not missed else 'FAIL'} ChecksCatchAPlantedBrokenPageAndHeader"
          + (f": missed by {missed}" if missed else ""), flush=True)
    exit_with(report)


if __name__ == "__main__":
    main()
