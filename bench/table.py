#!/usr/bin/env python3
"""Rewrites the rows of docs/benchmarks.md's opening table that fresh receipts measured.

usage: table.py BENCHMARKS.md RESULTS_DIR MACHINE DATE [--check]

RESULTS_DIR holds the receipts bench/all.sh kept, one file per benchmark script, named after
it (run.md, instructions.md, debug.md, exec.md, rpc.md, scaling.md, report.md, dumps.md, training.md,
setup.md). For each row of the table (between the "figures: begin" and "figures: end"
comments) whose receipt is there, the value is read from the receipt and the row gets that
value, MACHINE and DATE; the other rows stay as they were. A receipt that lacks its figure
(a benchmark that failed halfway) is said on stderr and its row left alone. --check prints
the rows it would write and changes nothing.
"""
import os, re, sys

LEVELS = ('graph', 'timing', 'profile', 'values')


def table_rows(text, header_start):
    """The rows of the first Markdown table after a line starting with header_start:
    {first cell: [cells]}."""
    lines = text.split('\n')
    for i, l in enumerate(lines):
        if l.startswith(header_start):
            rows = {}
            for r in lines[i + 2:]:
                if not r.startswith('|'):
                    break
                cells = [c.strip() for c in r.strip('|').split('|')]
                rows[cells[0]] = cells
            return rows
    return {}


def last_bench_receipt(text):
    """The generation column ('generation time vs off') of the last lltrace bench receipt."""
    parts = text.split('| level | prompt tok/s |')
    if len(parts) < 2:
        return {}
    return table_rows('| level | prompt tok/s |' + parts[-1], '| level | prompt tok/s |')


def col(rows, key, i):
    return rows[key][i] if key in rows and len(rows[key]) > i else None


# ---- one extractor per row: (receipt file, function of its text -> value or None) ----------

def instructions(level):
    def get(t):
        rows = table_rows(t, '| level | run |')
        run, exe, target = col(rows, level, 1), col(rows, level, 2), col(rows, level, 3)
        if run is None:
            return None
        if target is None:  # a receipt of run alone
            run, exe, target = run, None, col(rows, level, 2)
        return '%s (run)%s; target %s' % (run, ', %s (exec)' % exe if exe else '', target)
    return get


def wall(level):
    def get(t):
        per_process = col(last_bench_receipt(t), level, 4)
        in_process = col(table_rows(t.split('## In-process overhead')[-1], '| level | prompt time vs off |'),
                         'parity (untraced, top-10)' if level == 'parity' else level, 2)
        if per_process is None:
            return None
        return '%s per process%s' % (per_process, ', %s in-process' % in_process if in_process else '')
    return get


def trace_size(t):
    g = re.search(r'1,000 generated tokens at level graph: trace of ([\d.]+) MiB', t)
    m = re.search(r'the same at level timing: ([\d.]+) MiB', t)
    return '%s MiB at `graph`, %s MiB at `timing`' % (g.group(1), m.group(1)) if g and m else None


def peers(t):
    lt = re.findall(r'--level values .*? adds \*\*([\d.]+) s\*\*', t)
    cb = re.findall(r'llama-eval-callback \(observes .*? adds \*\*([\d.]+) s\*\*', t)
    x = re.findall(r'ratio: ([\d.]+)x less', t)
    return '%s s against %s s: %s× less' % (lt[-1], cb[-1], x[-1]) if lt and cb and x else None


def diff_speed(t):
    m = re.findall(r'`lltrace diff` of two F32 tensor sets .*?: ([\d.]+) GB/s end to end.*?memcpy in the same run: ([\d.]+) GB/s', t)
    return '%s GB/s (memcpy %s GB/s); target ≥ 1 GB/s' % m[-1] if m else None


def exec_levels(t):
    rows = table_rows(t, '| level | ms/token |')
    got = ['%s %s' % (l, col(rows, l, 2)) for l in LEVELS if col(rows, l, 2)]
    return ', '.join(got) if got else None


def exec_server(t):
    m = re.search(r'untraced [\d.]+, exec --level graph [\d.]+ \(([+-][\d.]+%) time per token\)', t)
    return '%s time per token' % m.group(1) if m else None


def rpc(t):
    rows = last_bench_receipt(t)
    g, tm = col(rows, 'graph', 4), col(rows, 'timing', 4)
    return 'graph %s, timing (split times) %s; targets ≤ 1%%, ≤ 3%%' % (g, tm) if g and tm else None


def scaling(t):
    rows = table_rows(t, '| command |')
    want = ['`show --stats`', '`profile`', '`export`', '`export --format chrome`']
    if not all(col(rows, w, -1) for w in want):
        return None
    size = col(rows, 'trace size, MiB', -1)
    return ', '.join('%s %s s' % (w, rows[w][-1].split(' ')[0]) for w in want) + (' (trace %s MiB)' % size if size else '')


def report(t):
    ms = re.search(r'\| generation time, median of \d+ \(ms\) \| (\d+)', t)
    size = re.search(r'\| page size \(bytes\) \| (\d+)', t)
    if not (ms and size):
        return None
    return '%.2f s, %s bytes; limits 3 s, 5 MB' % (int(ms.group(1)) / 1000, format(int(size.group(1)), ','))


def dumps(t):
    # bench/dumps.sh's table in instructions: | steps | tensors | file | inspect M instr | diff M instr | (base columns) |
    rows = re.findall(r'^\| (\d+) \| (\d+) \| ([\d.]+) MiB \| ([\d.]+) \| ([\d.]+) \|', t, re.M)
    if not rows:
        return None
    rows.sort(key=lambda r: int(r[0]))
    last = rows[-1]
    return ('linear: `inspect --no-metadata` %s M instructions, `diff` of one tensor %s M (%s steps: %s tensors, %s MiB)'
            % (' → '.join(format(round(float(r[3])), ',') for r in rows), ' → '.join(format(round(float(r[4])), ',') for r in rows),
               last[0], format(int(last[1]), ','), format(int(float(last[2])), ',')))


def debug_cost(configs, note):
    # bench/debug-cost.sh's table: | configuration | instructions per generated token | +N (+P%) |
    def get(t):
        got = dict(re.findall(r'^\| ([\w-]+) \| \d+ \| ([+-]\d+ \([+-][\d.]+%\)) \|$', t, re.M))
        if not all(c in got for c in configs):
            return None
        return '; '.join('%s %s' % (c, got[c].replace('(', '').replace(')', '').split(' ')[1]) for c in configs) + note
    return get


def seconds(pattern):
    def get(t):
        m = re.search(pattern, t)
        return m.group(1) if m else None
    return get


ROWS = {
    'own work per generated token, `%s`, in instructions' % l: ('instructions.md', instructions(l)) for l in LEVELS}
ROWS.update({'generation time vs untraced, `%s`, wall time' % l: ('run.md', wall(l)) for l in LEVELS})
ROWS.update({
    'generation time vs untraced, parity logging (top-10), wall time': ('run.md', wall('parity')),
    'trace of 1,000 generated tokens': ('run.md', trace_size),
    'time `--level values` adds to a prompt decode, against llama-eval-callback': ('run.md', peers),
    '`lltrace diff` throughput, two F32 tensor sets': ('run.md', diff_speed),
    '`exec` around llama-completion, ms per generated token vs untraced': ('exec.md', exec_levels),
    '`exec` around llama-server --parallel 2, two clients, level graph': ('exec.md', exec_server),
    'over two RPC servers, generation time vs untraced': ('rpc.md', rpc),
    'reading a 100,000-step timing trace': ('scaling.md', scaling),
    'report of a 1,000-step timing trace of `small`': ('report.md', report),
    'opening a checkpoint dump of `bench/dumps.sh`, 50 → 400 steps': ('dumps.md', dumps),
    '`lltrace debug` with no breakpoint, against `run` at the same level, in instructions':
        ('debug.md', debug_cost(['debug'], ' per generated token (graph, -fa off)')),
    'an intervention, against `run` at the same level, in instructions':
        ('debug.md', debug_cost(['ablate', 'scale-all', 'break-late'],
                                ' per generated token: one head of one node; every layer\'s `l_out` (its splits); a breakpoint\'s node asked for')),
    "the demo model's training (`mkmodel sorter`)": ('training.md', seconds(r'(?m)training: (.+)$')),
    'first run on a new machine (`scripts/build.sh && build/lltrace run`, empty cache)': ('setup.md', seconds(r'(?m)first run: (.+)$')),
})


def main():
    if len(sys.argv) < 5:
        sys.exit(__doc__)
    path, results, machine, date = sys.argv[1:5]
    check = '--check' in sys.argv[5:]
    text = open(path, encoding='utf-8').read()
    a = text.index('<!-- figures: begin')
    b = text.index('<!-- figures: end -->')
    lines = text[a:b].split('\n')
    changed = 0
    for i, line in enumerate(lines):
        if not line.startswith('| ') or line.startswith('| figure |'):
            continue
        cells = [c.strip() for c in line.strip('|').split('|')]
        spec = ROWS.get(cells[0])
        if spec is None:
            continue
        receipt = os.path.join(results, spec[0])
        if not os.path.exists(receipt):
            continue
        value = spec[1](open(receipt, encoding='utf-8').read())
        if value is None:
            print('table: %s has no figure for "%s"; its row is kept' % (receipt, cells[0]), file=sys.stderr)
            continue
        cells[1:4] = [value, machine, date]
        lines[i] = '| ' + ' | '.join(cells) + ' |'
        changed += 1
        if check:
            print(lines[i])
    if not check:
        open(path, 'w', encoding='utf-8').write(text[:a] + '\n'.join(lines) + text[b:])
    print('table: %d rows from the receipts in %s' % (changed, results), file=sys.stderr)


if __name__ == '__main__':
    main()
