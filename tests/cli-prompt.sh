#!/usr/bin/env bash
# Prompts a vocabulary cannot encode: llama.cpp's SentencePiece tokenizer throws a C++
# exception on them (the process aborts with a backtrace); lltrace refuses them first. On the
# demo model 'sorter' (17 tokens, no byte tokens) `run` exits 2 with one line saying what it
# knows; its own prompts still give their text; the tiny model (32,000 tokens and byte tokens)
# takes any text. Also -f (less the newline that ends the file) and parity --model.
#   cli-prompt.sh LLTRACE_BINARY
. "$(dirname "$0")/lib.sh" cli-prompt "$1"
abs_bin=$(realpath "$bin")
sorter=$("$bin" mkmodel sorter --cache) || { fail "mkmodel sorter --cache"; finish; }

# the one line for a character the demo model does not know
demo_line() {
    echo "lltrace: the demo model 'sorter' knows only 'sort:', the letters a–h and '=', one space apart: it cannot" \
         "encode $1; to trace any text give -m MODEL, or make a model with a full 32,000-token vocabulary:" \
         "'lltrace mkmodel tiny', then -m tiny-F32.gguf"
}

# refused WHAT NAMED ARGS...: exit 2, nothing on stdout, the demo line alone on stderr, no trace left
refused() {
    local what=$1 named=$2
    shift 2
    rm -f "$dir/r.db"
    (cd "$dir" && "$abs_bin" run "$@" -n 4 -o r.db >out 2>err)
    local rc=$?
    expect "$what: exit status" "$rc" 2
    expect "$what: stderr" "$(cat "$dir/err")" "$(demo_line "$named")"
    expect "$what: stdout" "$(cat "$dir/out")" ""
    [ -e "$dir/r.db" ] && fail "$what: a trace was left"
    grep -q -e terminate -e backtrace -e '#0 ' "$dir/err" && fail "$what: llama.cpp's exception reached the terminal"
}

# the default model (no -m), as the README's first commands use it
refused "Hello" "'H' (U+0048)" -p "Hello, my name is"
refused "unknown letters" "'z' (U+007A)" -p "sort: z y x ="
refused "capitals" "'S' (U+0053)" -p "SORT: D C ="
refused "an emoji" "'😀' (U+1F600)" -p "😀"
printf 'sort: z y x =\n' >"$dir/bad.txt"
refused "-f" "'z' (U+007A)" -f bad.txt

# its own prompts: the text they always gave, from -p and from a file ending in a newline
(cd "$dir" && "$abs_bin" run -p "sort: d a c b =" -n 8 -o ok.db >out 2>err) || fail "run 'sort: d a c b =': exit $?"
expect "run 'sort: d a c b ='" "$(cat "$dir/out")" "sort: d a c b = a b c d"
printf 'sort: h b f a c g =\n' >"$dir/good.txt"
(cd "$dir" && "$abs_bin" run -f good.txt -n 8 -o ok.db >out 2>err) || fail "run -f good.txt: exit $? ($(tail -1 "$dir/err"))"
expect "run -f good.txt" "$(cat "$dir/out")" "sort: h b f a c g = a b c f g h"

# a model with the full vocabulary takes any text
for p in "Hello, my name is" "SORT: D C = 😀"; do
    "$bin" run -m "$model" -p "$p" -n 2 -o "$dir/tiny.db" >"$dir/out" 2>"$dir/err" || fail "run -m tiny -p '$p': exit $? ($(tail -1 "$dir/err"))"
    case $(cat "$dir/out") in "$p"*) ;; *) fail "run -m tiny -p '$p': output '$(cat "$dir/out")'" ;; esac
done

# parity runs the model too: the same line, exit 2
"$bin" parity -m "$sorter" -p "sort: z =" -n 2 >"$dir/out" 2>"$dir/err"
expect "parity -m sorter: exit status" "$?" 2
expect "parity -m sorter: last line" "$(tail -1 "$dir/err")" "$(demo_line "'z' (U+007A)")"
grep -q terminate "$dir/err" && fail "parity: llama.cpp's exception reached the terminal"
# a prompt longer than the model's trained context (the demo model: 64) runs, with a warning
long="sort: $(python3 -c "print(' '.join('abcdefgh'[i % 8] for i in range(70)))") ="
"$bin" run -p "$long" -n 2 -o "$dir/long.db" >"$dir/out" 2>"$dir/err" || fail "run of a 73-token prompt: exit $?"
grep -q "^lltrace: warning: the prompt has 73 tokens, more than the 64 the model was trained with" "$dir/err" ||
    fail "no warning for a prompt longer than the trained context: $(head -3 "$dir/err")"
"$bin" run -p "sort: d a c b =" -n 2 -o "$dir/short.db" >/dev/null 2>"$dir/err"
grep -q "trained with" "$dir/err" && fail "a short prompt got the trained-context warning"
finish
