#!/usr/bin/env bash
# lltrace bench: a receipt made from saved measures (--samples) flags an overhead that the
# untraced runs' own spread could explain, and only then; saved measures give the same table as
# the runs they came from; bad input exits 2.
#   cli-bench.sh LLTRACE_BINARY
. "$(dirname "$0")/lib.sh" cli-bench "$@"

# synthetic measures: level rep prompt_s gen_s n_prompt n_gen rss_kib trace_bytes
samples() { # NAME: off generation times, then graph's
    local name=$1; shift
    printf '# lltrace-bench-samples 1\tsynthetic.gguf\t32\t64\t4\tsome machine\n' >"$dir/$name"
    for r in 0 1 2; do
        printf 'off\t%d\t0.1\t%s\t32\t64\t1000\t0\n' "$r" "$1" >>"$dir/$name"
        printf 'graph\t%d\t0.1\t%s\t32\t64\t1100\t4096\n' "$r" "$4" >>"$dir/$name"
        shift
    done
}
# noisy: the untraced generation times spread over 40% of their median; graph is ~2% slower
samples noisy.tsv 1.0 1.3 0.9 1.02 1.33 0.92
# clean: a 2% spread, graph 20% slower
samples clean.tsv 1.0 1.01 0.99 1.2 1.212 1.188

"$bin" bench --samples "$dir/noisy.tsv" >"$dir/noisy.md" 2>"$dir/err" || fail "bench --samples noisy: exit $?: $(cat "$dir/err")"
"$bin" bench --samples "$dir/clean.tsv" >"$dir/clean.md" 2>"$dir/err" || fail "bench --samples clean: exit $?: $(cat "$dir/err")"
python3 - "$dir" <<'PY' || fail "bench receipts from synthetic measures"
import statistics, sys
d = sys.argv[1]
def row(md, level):
    for line in open(md, encoding='utf-8'):
        cells = [c.strip() for c in line.strip().strip('|').split('|')]
        if cells[0] == level: return cells
    raise AssertionError('no row %s in %s' % (level, md))
def overhead(off, lvl):  # median of the per-repetition ratios, in percent
    return statistics.median((l / o - 1) * 100 for o, l in zip(off, lvl))
for name, off, gr, flagged in (('noisy', [1.0, 1.3, 0.9], [1.02, 1.33, 0.92], True),
                               ('clean', [1.0, 1.01, 0.99], [1.2, 1.212, 1.188], False)):
    md = '%s/%s.md' % (d, name)
    cell = row(md, 'graph')[4]  # generation time vs off
    want = '%+.1f%%' % overhead(off, gr)
    assert cell.startswith(want), (name, cell, want)
    assert ('⚠' in cell) == flagged, (name, cell)
    text = open(md, encoding='utf-8').read()
    spread = '%.1f%%' % ((max(off) - min(off)) / statistics.median(off) * 100)
    assert (('generation %s' % spread) in text) == flagged, (name, spread, text)
    assert '⚠' not in row(md, 'graph')[3], (name, 'prompt times are equal: no flag', row(md, 'graph'))
PY

# measures saved from real runs of the tiny model give the same table again
"$bin" bench -m "$model" -p 4 -n 2 -r 2 -t 2 --levels off,graph --save-samples "$dir/real.tsv" >"$dir/real.md" 2>"$dir/err" \
    || fail "bench --save-samples: exit $?: $(cat "$dir/err")"
"$bin" bench --samples "$dir/real.tsv" >"$dir/again.md" 2>"$dir/err" || fail "bench --samples of saved runs: $(cat "$dir/err")"
expect "receipt table from saved samples" "$(grep -E '^\||^- (machine|model)' "$dir/again.md")" "$(grep -E '^\||^- (machine|model)' "$dir/real.md")"

# bad input: exit 2
"$bin" bench --samples "$dir/absent.tsv" >/dev/null 2>"$dir/err"
expect "exit of bench with a missing samples file" "$?" 2
printf '# lltrace-bench-samples 1\tm\t32\t64\t4\tx\noff\t0\tx\n' >"$dir/bad.tsv"
"$bin" bench --samples "$dir/bad.tsv" >/dev/null 2>"$dir/err"
expect "exit of bench with a bad samples file" "$?" 2
grep -q "line 2" "$dir/err" || fail "bad samples: the message does not name line 2: $(cat "$dir/err")"
"$bin" bench -m "$dir/absent.gguf" >/dev/null 2>&1
expect "exit of bench with a missing model" "$?" 2

finish
