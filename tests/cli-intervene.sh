#!/usr/bin/env bash
# Interventions on `lltrace run` (docs/debugging.md): interventions that change nothing leave
# every logit and the text bit-identical; --ablate 'kqv_out-0:head=1' on tiny F32 equals the
# layer computed here with that head's slice zeroed (intervene-ref.py, from the dumps); the
# trace records each change and show marks it; what cannot be done is refused with the reason.
# Under exec, llama-simple with the same ablation writes the same text as run.
#   cli-intervene.sh LLTRACE_BINARY LLAMA_PREFIX
. "$(dirname "$0")/lib.sh" cli-intervene "$1"
simple=${2:-}/bin/llama-simple
[ -x "$simple" ] || simple=${2:-}/../install-rpc/bin/llama-simple
here=$(dirname "$0")
run() { "$bin" run -m "$model" -p "Hello world" -n 6 "$@"; }

# ---- the plain run, and its dump to patch from ----------------------------------------------

run -o "$dir/plain.db" --parity "$dir/plain.jsonl" --dump 'l_out-*' --dump 'kqv_out-0' --dump 'attn_out-0' \
    --dump-file "$dir/plain.gguf" >"$dir/plain.txt" 2>"$dir/err" || fail "the plain run: $(tail -1 "$dir/err")"

# ---- no-op interventions: bit-identical logits and text ------------------------------------

python3 "$here/intervene-ref.py" zeros "$dir/zeros.npy" 256 || fail "writing zeros.npy"
check_noop() { # WHAT FLAGS...
    local what=$1
    shift
    run -o "$dir/noop.db" --parity "$dir/noop.jsonl" "$@" >"$dir/noop.txt" 2>"$dir/err" || { fail "$what: exit $?: $(tail -1 "$dir/err")"; return; }
    cmp -s "$dir/plain.jsonl" "$dir/noop.jsonl" || fail "$what: the logits differ from the plain run's"
    expect "$what: text" "$(cat "$dir/noop.txt")" "$(cat "$dir/plain.txt")"
}
check_noop "--scale X=1 on every layer output, a head, the split norm" \
    --scale 'l_out-*=1' --scale 'kqv_out-0=1:head=1' --scale 'norm-0=1' --scale 'Qcur-1=1:head=2:op=ROPE'
check_noop "--steer adding zeros (and -0s)" --steer "l_out-0=$dir/zeros.npy*3"
check_noop "--patch from the run's own dump" --patch 'l_out-*' --from "$dir/plain.gguf"
# through a spec file, relative names from its folder
cat >"$dir/spec.json" <<'EOF'
{"interventions": [
  {"kind": "scale", "node": "ffn_out-*", "factor": 1},
  {"kind": "steer", "node": "l_out-1", "vector": "zeros.npy", "alpha": -2, "pos": [1, 2]},
  {"kind": "patch", "node": "l_out-0", "from": "plain.gguf", "step": 0}
]}
EOF
check_noop "--intervene with a no-op spec" --intervene "$dir/spec.json"
# probabilities exist without flash attention only: lltrace turns it off, as for checkpoints
run -fa off -o "$dir/fa.db" --parity "$dir/fa-off.jsonl" --dump 'kqv_out-0' --dump 'attn_out-0' --dump-file "$dir/plain-fa.gguf" \
    >/dev/null 2>&1 || fail "the plain run -fa off"
run -o "$dir/fa.db" --parity "$dir/fa.jsonl" --scale 'kq_soft_max-*=1' >/dev/null 2>"$dir/err" || fail "scale kq_soft_max: $(tail -1 "$dir/err")"
grep -q "flash attention was turned off" "$dir/err" || fail "an intervention on kq_soft_max did not say flash attention was turned off"
cmp -s "$dir/fa-off.jsonl" "$dir/fa.jsonl" || fail "--scale kq_soft_max-*=1: the logits differ from the plain run with -fa off"

# ---- ablating one head equals the layer computed with that head zeroed ----------------------

# (flash attention off: kqv_out-0 is then a node of its own, CONT, which a dump holds; with it
# on, kqv_out-0 is a view of flash attention's output, changed the same way but not dumped)
run -fa off -o "$dir/ab.db" --parity "$dir/ab.jsonl" --ablate 'kqv_out-0:head=1' --dump 'kqv_out-0' --dump 'attn_out-0' \
    --dump-file "$dir/ab.gguf" >/dev/null 2>"$dir/err" || fail "--ablate kqv_out-0:head=1: $(tail -1 "$dir/err")"
cmp -s "$dir/fa-off.jsonl" "$dir/ab.jsonl" && fail "--ablate kqv_out-0:head=1 left the logits as they were"
python3 "$here/intervene-ref.py" ablate "$model" "$dir/plain-fa.gguf" "$dir/ab.gguf" 1 4 >"$dir/ref" 2>&1 ||
    fail "the ablated layer against its own computation: $(tail -1 "$dir/ref")"
run -o "$dir/abfa.db" --parity "$dir/abfa.jsonl" --ablate 'kqv_out-0:head=1' >/dev/null 2>&1 || fail "--ablate under flash attention"
cmp -s "$dir/plain.jsonl" "$dir/abfa.jsonl" && fail "--ablate kqv_out-0:head=1 under flash attention left the logits as they were"
# the same through a spec file
echo '[{"kind": "ablate", "node": "kqv_out-0", "head": 1}]' >"$dir/ab.json"
run -fa off -o "$dir/ab2.db" --parity "$dir/ab2.jsonl" --intervene "$dir/ab.json" >/dev/null 2>&1 || fail "--intervene ab.json"
cmp -s "$dir/ab.jsonl" "$dir/ab2.jsonl" || fail "--intervene with an ablation differs from --ablate"

# ---- exec: the same intervention in an unmodified program --------------------------------

if [ -x "$simple" ]; then
    run -o "$dir/abfa.db" --ablate 'kqv_out-0:head=1' >"$dir/run.txt" 2>/dev/null || fail "run --ablate for exec"
    "$bin" exec -q -o "$dir/ex.db" --ablate 'kqv_out-0:head=1' -- "$simple" -m "$model" -n 6 "Hello world" >"$dir/ex.txt" 2>"$dir/err" ||
        fail "exec --ablate: exit $?: $(tail -1 "$dir/err")"
    expect "exec --ablate: llama-simple's text" "$(cat "$dir/ex.txt")" "<s> $(cat "$dir/run.txt")"
    expect "exec --ablate: the trace" "$(sqlite3 "$dir/ex.db" "SELECT count(*), min(n_changed) FROM interventions WHERE kind = 'ablate'")" "6|64"
    "$bin" exec -q -o "$dir/ex.db" --ablate 'l_out-0:head=1' -- "$simple" -m "$model" -n 6 "Hello world" >/dev/null 2>"$dir/err"
    expect "exec: a refused intervention ends the program: exit" "$?" 1
    grep -q "intervention refused at step 0: ablate l_out-0" "$dir/err" || fail "exec: the refusal is not said: $(tail -2 "$dir/err")"
else
    fail "llama-simple not found ('$simple'): scripts/bootstrap-llama.sh builds it"
fi

# ---- the trace records each change ----------------------------------------------------------

# 3 prompt tokens at step 0, one token a step after: 64 elements of head 1 per token
expect "table interventions" "$(sqlite3 "$dir/ab.db" "SELECT group_concat(step || ':' || node || ':' || kind || ':' || n_changed, ' ')
    FROM (SELECT * FROM interventions ORDER BY step)")" "0:kqv_out-0:ablate:192 1:kqv_out-0:ablate:64 2:kqv_out-0:ablate:64 3:kqv_out-0:ablate:64 4:kqv_out-0:ablate:64 5:kqv_out-0:ablate:64"
expect "the intervention's parameters" "$(sqlite3 "$dir/ab.db" "SELECT DISTINCT params FROM interventions")" \
    '{"kind":"ablate","node":"kqv_out-0","head":1}'
expect "show --runs: interventions of the run" \
    "$("$bin" show "$dir/ab.db" --runs --format csv | awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "interventions") c = i; next } { print $c }')" 1
expect "show --runs: a plain run has none" \
    "$("$bin" show "$dir/plain.db" --runs --format csv | awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "interventions") c = i; next } { print $c }')" 0
"$bin" show "$dir/ab.db" --step 0 --format csv >"$dir/step.csv" 2>"$dir/err" || fail "show --step 0: $(tail -1 "$dir/err")"
expect "show --step 0 marks the changed node" "$(awk -F, '/intervened/ { print $3 }' "$dir/step.csv")" "kqv_out-0"

"$bin" report "$dir/ab.db" --step 0 --data -o "$dir/ab.json.data" 2>"$dir/err" || fail "report --data: $(tail -1 "$dir/err")"
expect "report: the run's interventions, the graph's changed node" "$(python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
g = d["graph"]["nodes"]; i = g["cols"].index("intervened"); n = g["cols"].index("name")
print(d["run"]["interventions"], [r[n] + ":" + r[i] for r in g["rows"] if r[i]])' "$dir/ab.json.data")" \
    "[{'kind': 'ablate', 'node': 'kqv_out-0', 'head': 1}] ['kqv_out-0:ablate']"

# a view shares its source's memory: Qcur-0's reshape is not scaled a second time (the
# projection, idx 3, and the RoPE, idx 5, are)
run -n 1 -o "$dir/q.db" --scale 'Qcur-0=2' >/dev/null 2>&1 || fail "--scale Qcur-0=2"
expect "Qcur-0: the nodes changed" "$(sqlite3 "$dir/q.db" "SELECT group_concat(idx || ':' || n_changed, ' ') FROM (SELECT * FROM interventions ORDER BY idx)")" "3:768 5:768"

# ---- refused, with the reason ---------------------------------------------------------------

run -o "$dir/r.db" --ablate 'l_out-0:head=0' >/dev/null 2>"$dir/err"
expect "a head of a node without heads: exit" "$?" 2
grep -q "no attention heads" "$dir/err" || fail "a head of l_out-0: the message says $(tail -1 "$dir/err")"
run -o "$dir/r.db" --ablate 'kqv_out-0:head=9' >/dev/null 2>"$dir/err"
expect "head 9 of 4: exit" "$?" 2
grep -q "has 4 heads" "$dir/err" || fail "head 9: the message says $(tail -1 "$dir/err")"
run -o "$dir/r.db" --steer "l_out-0=$dir/zeros.npy" --steer "ffn_up-0=$dir/zeros.npy" >/dev/null 2>"$dir/err"
expect "a vector of another length: exit" "$?" 2
grep -q "the vector has 256 elements" "$dir/err" || fail "a vector of another length: the message says $(tail -1 "$dir/err")"
for bad in "--scale l_out-0" "--scale l_out-0=x" "--ablate kq-0:pos=4-2" "--patch l_out-0" "--steer l_out-0=$dir/missing.npy"; do
    # shellcheck disable=SC2086
    run -o "$dir/r.db" $bad >/dev/null 2>"$dir/err"
    expect "'$bad': exit" "$?" 2
    [ "$(wc -l <"$dir/err")" -eq 1 ] || fail "'$bad': not one line: $(cat "$dir/err")"
done
run -o "$dir/r.db" --scale 'nosuchnode=2' >/dev/null 2>"$dir/err" || fail "an intervention matching nothing: exit $?"
grep -q "warning: scale 'nosuchnode' changed no node" "$dir/err" || fail "an intervention matching nothing: no warning: $(cat "$dir/err")"
finish
