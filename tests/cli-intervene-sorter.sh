#!/usr/bin/env bash
# The demo model with its pointer head ablated: intact it sorts every held-out prompt; with
# layer 0's head 0 (the head that points at each letter as it is emitted: cli-sorter.sh) ablated
# in its probabilities or in its output, the accuracy collapses.
#   cli-intervene-sorter.sh LLTRACE_BINARY
. "$(dirname "$0")/lib.sh" cli-intervene-sorter "$1"
sorter=$("$bin" mkmodel sorter --cache) || { fail "mkmodel sorter --cache"; finish; }

# 12 held-out prompts (Python's generator, seed 7): accuracy = exact sorted answers
accuracy() { # FLAGS... -> "right/total"
    local right=0 total=0 letters want got
    while read -r letters; do
        want=$(echo "$letters" | tr ' ' '\n' | sort | tr '\n' ' ' | sed 's/ $//')
        got=$("$bin" run -m "$sorter" -p "sort: $letters =" -n 8 -o "$dir/s.db" "$@" 2>"$dir/err") ||
            { fail "run '$letters' $*: $(tail -1 "$dir/err")"; return; }
        got=${got#"sort: $letters = "}
        total=$((total + 1))
        [ "${got:0:${#want}}" == "$want" ] && right=$((right + 1))
    done < <(python3 -c '
import random
r = random.Random(7)
for _ in range(12): print(" ".join(r.sample("abcdefgh", r.randint(3, 6))))')
    echo "$right/$total"
}
expect "intact: sorted" "$(accuracy)" "12/12"
for iv in 'kq_soft_max-0:head=0' 'kqv_out-0:head=0'; do
    acc=$(accuracy --ablate "$iv")
    [ "${acc%/*}" -le 2 ] || fail "--ablate '$iv': $acc still sorted (want at most 2 of 12)"
    echo "--ablate '$iv': $acc sorted"
done
# the trace says so: every step of the last run changed the head
expect "interventions in the last run's trace" \
    "$(sqlite3 "$dir/s.db" "SELECT count(DISTINCT step) = (SELECT count(*) FROM steps WHERE run_id = (SELECT max(id) FROM runs))
        FROM interventions WHERE run_id = (SELECT max(id) FROM runs) AND kind = 'ablate' AND n_changed > 0")" 1
finish
