#!/usr/bin/env bash
# lltrace causal (docs/debugging.md, "Causal tracing"): its two invariants on tiny F32 (patching
# nothing gives the corrupted run's logits exactly: the last layer's positions without a row,
# and the check over every logit; patching the last layer's l_out whole gives the clean run's);
# its answer is what run generates; the JSON keys scripts rely on; the demo model's picture.
#   cli-causal.sh LLTRACE_BINARY
. "$(dirname "$0")/lib.sh" cli-causal "$1"

"$bin" causal -m "$model" --clean "Hello world" --corrupt "Hello there" --format json >"$dir/c.json" 2>"$dir/err" ||
    fail "causal on tiny: exit $?: $(tail -1 "$dir/err")"
got=$(python3 - "$dir/c.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
cells = {(c['layer'], c['pos']): c for c in d['cells']}
L, P = d['n_layer'], d['n_pos']
last = L - 1
print(sorted(cells) == [(l, p) for l in range(L) for p in range(P)])
print(d['none_is_corrupt'], d['last_is_clean'])
# the last layer keeps the output row only: its other positions patch nothing
print(all(cells[(last, p)]['n_changed'] == 0 and cells[(last, p)]['p'] == d['corrupt_p'] for p in range(P - 1)))
print(cells[(last, P - 1)]['p'] == d['clean_p'], cells[(last, P - 1)]['n_changed'] > 0)
# every layer below has a row at every position, and the clean answer comes back from some
print(all(cells[(l, p)]['n_changed'] > 0 for l in range(last) for p in range(P)), d['clean_p'] != d['corrupt_p'])
print(d['answer'])
PY
) || fail "reading causal's JSON: $got"
answer=$("$bin" run -m "$model" -p "Hello world" -n 1 -o "$dir/r.db" 2>/dev/null)
want=$(printf 'True\nTrue True\nTrue\nTrue True\nTrue True\n%s' "${answer#Hello world}")
expect "causal's invariants and answer" "$got" "$want"

# the demo model: the answer letter is read from its position through attention's values
"$bin" causal --clean "sort: d a c b =" --corrupt "sort: d e c b =" --node Vcur --format json >"$dir/v.json" 2>"$dir/err" ||
    fail "causal --node Vcur on the sorter: exit $?: $(tail -1 "$dir/err")"
expect "sorter: the clean answer, and none of one V row brings it back" "$(python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); print(d["answer"], d["corrupt_top"], d["last_is_clean"], max(c["p"] for c in d["cells"]) < 0.5)' "$dir/v.json")" " a  b None True"
# refused: prompts of different lengths, no such node
"$bin" causal -m "$model" --clean "Hello world" --corrupt "Hello" >/dev/null 2>"$dir/err"
expect "prompts of different lengths: exit" "$?" 2
grep -q "same number of tokens (3 and 2)" "$dir/err" || fail "prompts of different lengths: $(cat "$dir/err")"
"$bin" causal -m "$model" --clean "Hello world" --corrupt "Hello there" --node nosuch >/dev/null 2>"$dir/err"
expect "no such node: exit" "$?" 2
finish
