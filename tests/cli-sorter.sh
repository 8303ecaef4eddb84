#!/usr/bin/env bash
# The demo model, "sorter", through the command line: `lltrace run` with no model and no prompt
# runs it and sorts; a checkpoint dump shows a head pointing at each letter as it is emitted
# (sorter-attention.py, its own GGUF reader); llama.cpp's own llama-simple generates the same
# text from the same file.
#   cli-sorter.sh LLTRACE_BINARY LLAMA_PREFIX
# llama-simple is looked for in LLAMA_PREFIX/bin, then in the RPC build beside it
# (install-rpc/bin, scripts/bootstrap-llama.sh); missing, the test fails.
. "$(dirname "$0")/lib.sh" cli-sorter "$1"
simple=${2:-}/bin/llama-simple
[ -x "$simple" ] || simple=${2:-}/../install-rpc/bin/llama-simple
here=$(dirname "$0")
abs_bin=$(realpath "$bin")
sorter=$("$bin" mkmodel sorter --cache) || { fail "mkmodel sorter --cache"; finish; }

# the README's first command: the default model and prompt
(cd "$dir" && "$abs_bin" run -n 8 >out 2>err) || fail "run with the defaults: exit $? ($(tail -1 "$dir/err"))"
expect "run's output with the defaults" "$(cat "$dir/out")" "sort: d a c b = a b c d"
[ -s "$dir/lltrace.db" ] || fail "run with the defaults wrote no lltrace.db"
# another model keeps the old default prompt
"$bin" run -m "$model" -n 1 -o "$dir/tiny.db" >"$dir/out" 2>/dev/null || fail "run -m tiny"
case $(cat "$dir/out") in "Hello, my name is"*) ;; *) fail "run -m tiny: prompt '$(cat "$dir/out")', want 'Hello, my name is'" ;; esac

# the mechanism, over 40 prompts drawn here (Python's generator, seed 12): the head that points
# at each letter as it is emitted (sorter-attention.py says what it checks)
args=()
i=0
while read -r letters; do
    i=$((i + 1))
    "$bin" run -m "$sorter" -p "sort: $letters =" -n 8 -o "$dir/c.db" --checkpoints --dump-file "$dir/c$i.gguf" \
        >/dev/null 2>"$dir/err" || fail "run --checkpoints on '$letters': $(tail -1 "$dir/err")"
    args+=("$dir/c$i.gguf" "$letters")
done < <(python3 -c '
import random
r = random.Random(12)
for _ in range(40): print(" ".join(r.sample("abcdefgh", r.randint(2, 6))))')
python3 "$here/sorter-attention.py" "${args[@]}" >"$dir/heads" || fail "no head points at the letters it emits: $(cat "$dir/heads")"
head -1 "$dir/heads"

# llama.cpp's own program: the same tokens after the prompt (it prints the prompt with <s>)
[ -x "$simple" ] || { fail "llama-simple not found ('$simple'): scripts/bootstrap-llama.sh builds it"; finish; }
for letters in "d a c b" "h b f a c g" "e c" "b g f e"; do
    "$bin" run -m "$sorter" -p "sort: $letters =" -n 8 -o "$dir/s.db" >"$dir/ours" 2>/dev/null || fail "run '$letters'"
    "$simple" -m "$sorter" -n 8 "sort: $letters =" >"$dir/theirs" 2>"$dir/err" || fail "llama-simple '$letters': $(tail -1 "$dir/err")"
    expect "llama-simple on 'sort: $letters ='" "$(cat "$dir/theirs")" "<s> $(cat "$dir/ours")"
done
finish
