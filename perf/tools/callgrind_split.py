#!/usr/bin/python3
"""Instructions per RPC split by layer, from the dumps perf/callgrind.sh leaves behind.

callgrind.sh dumps the counters after the warm-up (part 1), after SMALL calls (part 2) and
after LARGE calls (part 3). This reads all parts of one process in order (callgrind names a
string once, in the first part that uses it, so later parts cannot be read alone), takes the
self cost of every function in parts 2 and 3, and divides the difference by LARGE - SMALL:
the steady-state cost of one call, as callgrind.sh's total.

Self cost (a function's own instructions, not its callees') is charged to the layer of the
file the function is defined in, so inlined std:: templates count where they were inlined
and nghttp2's figure is nghttp2's own work, without our callbacks.

Usage: perf/tools/callgrind_split.py OUT_DIR/callgrind.out.PID SMALL LARGE [--top N] [--layer L]
"""
import argparse
import collections
import os
import re
import sys

SRC_LAYERS = ("loop", "transport", "http2", "rpc", "server", "base", "services")


def layer_of(obj, fl):
    o = os.path.basename(obj or "")
    if "libnghttp2" in o:
        return "nghttp2"
    if o.startswith("libc.so") or o.startswith("libm.so"):
        return "libc"
    if o.startswith("libstdc++"):
        return "libstdc++"
    if o.startswith("libprotobuf"):
        return "protobuf"
    if o.startswith(("libssl", "libcrypto")):
        return "openssl"
    if o.startswith("ld-linux") or "vgpreload" in o or o.startswith("libgcc"):
        return "ld.so/valgrind/libgcc"
    if o.startswith("liburing"):
        return "liburing"
    if o.startswith("libdeflate") or o.startswith("libz"):
        return "compression libs"
    f = fl or ""
    m = re.search(r"/src/([a-z0-9_]+)/", f) or re.match(r"src/([a-z0-9_]+)/", f)
    if m and m.group(1) in SRC_LAYERS:
        return "src/" + m.group(1)
    if "/gen" in f and (".pb." in f):
        return "generated code"
    if "/perf/" in f or f.startswith("perf/"):
        return "bench handler (perf/)"
    if "include/uringrpc/" in f:
        return "include/uringrpc (templates)"
    if "/c++/" in f:
        return "std templates (not inlined)"
    if "google/protobuf" in f:
        return "protobuf"
    if "liburing" in f:
        return "liburing"
    return "other: " + (o or "?")


class Reader:
    """Parses callgrind parts of one process, keeping the name tables across parts."""

    def __init__(self):
        self.names = {"ob": {}, "fl": {}, "fn": {}}

    def name(self, kind, text):
        m = re.match(r"\((\d+)\)\s*(.*)", text)
        if not m:
            return text.strip()
        table = self.names[kind]
        if m.group(2):
            table[m.group(1)] = m.group(2).strip()
        return table.get(m.group(1), "?" + m.group(1))

    def self_costs(self, path, edges=None):
        """Self cost per (object, file, function); with edges (a Counter), also the
        inclusive cost of each call edge (caller function, callee function)."""
        costs = collections.Counter()
        ob = fl = fn = cfn = None
        skip_next_cost = False
        with open(path) as f:
            for line in f:
                if not line or line[0] == "#" or line == "\n":
                    continue
                key, sep, rest = line.partition("=")
                if sep and key in ("ob", "fl", "fn", "fi", "fe", "cob", "cfi", "cfl", "cfn", "calls",
                                   "jump", "jcnd"):
                    if key == "ob":
                        ob = self.name("ob", rest)
                    elif key == "fl":
                        fl = self.name("fl", rest)
                    elif key in ("fi", "fe", "cfi", "cfl"):
                        self.name("fl", rest)
                    elif key == "fn":
                        fn = self.name("fn", rest)
                    elif key == "cfn":
                        cfn = self.name("fn", rest)
                    elif key == "cob":
                        self.name("ob", rest)
                    elif key == "calls":
                        skip_next_cost = True
                        if edges is not None:
                            edges[("#calls", fn, cfn)] += int(rest.split()[0])
                    continue
                c = line[0]
                if c.isdigit() or c in "+-*":
                    if skip_next_cost:
                        skip_next_cost = False
                        if edges is not None:
                            edges[(fn, cfn)] += int(line.split()[1])
                        continue
                    parts = line.split()
                    if len(parts) >= 2 and fn is not None:
                        costs[(ob, fl, fn)] += int(parts[1])
        return costs


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("base", help="OUT_DIR/callgrind.out.PID (parts .1 .2 .3 beside it)")
    ap.add_argument("small", type=int)
    ap.add_argument("large", type=int)
    ap.add_argument("--top", type=int, default=8, help="functions listed per layer")
    ap.add_argument("--layer", action="append", help="list only these layers' functions")
    ap.add_argument("--callees", metavar="REGEX",
                    help="instead: for functions matching REGEX, self and inclusive cost of each callee")
    ap.add_argument("--by-file", metavar="LAYER", action="append",
                    help="also total this layer per source file (nghttp2's files need a libnghttp2 with "
                         "debug information, e.g. built from Debian's source and put first with LD_LIBRARY_PATH)")
    ap.add_argument("--callers", metavar="REGEX",
                    help="instead: for functions matching REGEX, calls per RPC from each caller")
    args = ap.parse_args()
    r = Reader()
    r.self_costs(args.base + ".1")
    e_small, e_large = collections.Counter(), collections.Counter()
    small = r.self_costs(args.base + ".2", e_small)
    large = r.self_costs(args.base + ".3", e_large)
    n = args.large - args.small
    if args.callees:
        return print_callees(args.callees, small, large, e_small, e_large, n)
    if args.callers:
        return print_callers(args.callers, e_small, e_large, n)
    per_fn = {k: (large[k] - small.get(k, 0)) / n for k in large}
    per_layer = collections.Counter()
    fns = collections.defaultdict(list)
    for (ob, fl, fn), v in per_fn.items():
        lay = layer_of(ob, fl)
        per_layer[lay] += v
        fns[lay].append((v, fn, fl))
    total = sum(per_layer.values())
    print(f"# self instructions per RPC by layer ({args.base}, parts 2 and 3, {n} calls apart)")
    print(f"{'layer':36} {'instr/RPC':>10} {'share':>7}")
    for lay, v in per_layer.most_common():
        print(f"{lay:36} {v:10.0f} {100 * v / total:6.1f}%")
    print(f"{'total':36} {total:10.0f}")
    outside = total - per_layer.get("nghttp2", 0)
    print(f"{'outside nghttp2':36} {outside:10.0f}")
    for lay in args.by_file or []:
        files = collections.Counter()
        for v, _, fl in fns.get(lay, []):
            files[os.path.basename(fl or "?")] += v
        print(f"\n## {lay} by file")
        for fl, v in files.most_common():
            if abs(v) >= 1:
                print(f"{v:9.0f}  {fl}")
    for lay, _ in per_layer.most_common():
        if args.layer and lay not in args.layer:
            continue
        print(f"\n## {lay}")
        for v, fn, fl in sorted(fns[lay], reverse=True)[: args.top]:
            if abs(v) < 1:
                break
            print(f"{v:9.1f}  {fn[:110]}  [{os.path.basename(fl or '')}]")


def print_callers(regex, e_small, e_large, n):
    pat = re.compile(regex)
    by_callee = collections.defaultdict(list)
    for k, v in e_large.items():
        if k[0] == "#calls" and pat.search(k[2] or ""):
            per = (v - e_small.get(k, 0)) / n
            cost = (e_large.get((k[1], k[2]), 0) - e_small.get((k[1], k[2]), 0)) / n
            by_callee[k[2]].append((per, cost, k[1]))
    for callee, rows in sorted(by_callee.items()):
        print(f"\n{sum(r[0] for r in rows):6.2f} calls/RPC  {callee[:120]}")
        for per, cost, caller in sorted(rows, reverse=True):
            if per >= 0.01:
                print(f"   {per:6.2f} calls {cost:9.1f} incl  from {caller[:110]}")


def print_callees(regex, small, large, e_small, e_large, n):
    pat = re.compile(regex)
    selfc = collections.Counter()
    for k in large:
        selfc[k[2]] += (large[k] - small.get(k, 0)) / n
    pairs = [k for k in e_large if len(k) == 2]
    for caller in sorted({c for c, _ in pairs if pat.search(c or "")}):
        out = [(((e_large[(c, d)] - e_small.get((c, d), 0)) / n), d) for c, d in pairs if c == caller]
        incl = selfc[caller] + sum(v for v, _ in out)
        print(f"\n{incl:9.1f} inclusive, {selfc[caller]:9.1f} self  {caller[:120]}")
        for v, d in sorted(out, reverse=True):
            if abs(v) >= 1:
                print(f"   {v:9.1f}  {d[:120]}")


if __name__ == "__main__":
    sys.exit(main())
