#!/usr/bin/env python3
"""Reads callgrind output files for bench/instructions.sh.

  callgrind.py largest FILE...             the file with the most instructions (the process
                                            that did the work: a bench child, the traced program)
  callgrind.py per-token A B N             (total of B - total of A) / N
  callgrind.py breakdown TOP N OFF1 OFF2 L1 L2
                                            a Markdown table of the TOP functions whose self
                                            instructions per token ((L2 - L1) - (OFF2 - OFF1)) / N
                                            change most

The format (valgrind's docs/callgrind-format): `fn=(id) name` names a function once and `fn=(id)`
repeats it, the same for ob= (the object file); a cost line is positions then the event count;
the cost line after `calls=` is a callee's inclusive cost, not the caller's own, so it is skipped.
"""
import os
import re
import sys


def total(path):
    with open(path, errors="replace") as f:
        for line in f:
            if line.startswith("summary:") or line.startswith("totals:"):
                return int(line.split()[1])
    sys.exit("callgrind.py: no total in %s" % path)


NAMED = re.compile(r"^(c?(?:fn|ob))=\((\d+)\)(?: (.*))?$")


def self_costs(path):
    """{(function, object): self instructions}"""
    names = {"fn": {}, "ob": {}}
    costs = {}
    ob = fn = None
    skip_next = False
    with open(path, errors="replace") as f:
        for line in f:
            c = line[0]
            if c.isdigit() or c in "+-*":
                if skip_next:
                    skip_next = False
                    continue
                parts = line.split()
                if len(parts) >= 2 and fn is not None:
                    key = (fn, ob)
                    costs[key] = costs.get(key, 0) + int(parts[1])
                continue
            if line.startswith("calls="):
                skip_next = True
                continue
            m = NAMED.match(line.rstrip("\n"))
            if not m:
                continue
            kind, ident, name = m.group(1), m.group(2), m.group(3)
            table = names[kind.lstrip("c")]
            if name is not None:
                table[ident] = name
            value = table.get(ident, "?")
            if kind == "ob":
                ob = os.path.basename(value)
            elif kind == "fn":
                fn = value
    return costs


def breakdown(top, n, off1, off2, l1, l2):
    base = (total(off2) - total(off1)) / n
    c = [self_costs(p) for p in (off1, off2, l1, l2)]
    keys = set().union(*c)
    delta = {k: ((c[3].get(k, 0) - c[2].get(k, 0)) - (c[1].get(k, 0) - c[0].get(k, 0))) / n for k in keys}
    own = sum(delta.values())
    print("| function | object | instructions/token | % of untraced |")
    print("|---|---|---|---|")
    for k in sorted(keys, key=lambda k: -abs(delta[k]))[:top]:
        print("| %s | %s | %+.0f | %+.3f%% |" % (k[0].replace("|", "\\|"), k[1], delta[k], delta[k] / base * 100))
    print("| **all** | | %+.0f | %+.3f%% |" % (own, own / base * 100))


def main(argv):
    if len(argv) >= 2 and argv[0] == "largest":
        print(max(argv[1:], key=total))
    elif len(argv) == 4 and argv[0] == "per-token":
        print("%.1f" % ((total(argv[2]) - total(argv[1])) / int(argv[3])))
    elif len(argv) == 7 and argv[0] == "breakdown":
        breakdown(int(argv[1]), int(argv[2]), *argv[3:])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
