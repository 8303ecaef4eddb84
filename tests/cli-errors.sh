#!/usr/bin/env bash
# Bad input gets one line on stderr and a non-zero exit, and leaves existing files as they were.
#   cli-errors.sh LLTRACE_BINARY
. "$(dirname "$0")/lib.sh" cli-errors "$@"

# expect WANT_EXIT NAME -- command...: exit status WANT_EXIT (or any non-zero for "nz") and one stderr line
expect() {
    local want=$1 name=$2; shift 3
    "$@" >"$dir/out" 2>"$dir/err"
    local got=$? lines
    lines=$(wc -l <"$dir/err")
    if { [ "$want" = nz ] && [ "$got" = 0 ]; } || { [ "$want" != nz ] && [ "$got" != "$want" ]; }; then
        fail "$name: exit $got, want $want; stderr: $(cat "$dir/err")"
    elif [ "$lines" != 1 ]; then
        fail "$name: $lines lines on stderr, want 1:"; cat "$dir/err"
    elif ! grep -q '^lltrace: ' "$dir/err"; then
        fail "$name: message does not start with 'lltrace: ': $(cat "$dir/err")"
    fi
}

# unchanged FILE SUM: the file still has the sha256 SUM
unchanged() {
    local got
    got=$(sha256sum "$1" | cut -d' ' -f1)
    [ "$got" = "$2" ] || fail "$1 was modified"
}


# ---- models -------------------------------------------------------------------------------
expect nz "missing model"   -- "$bin" run -m "$dir/absent.gguf" -n 2 -o "$dir/t.db"
[ -e "$dir/t.db" ] && fail "a trace was created for a missing model"
echo "just some text, not a model" >"$dir/text.gguf"
expect nz "not a GGUF"      -- "$bin" run -m "$dir/text.gguf" -n 2 -o "$dir/t.db"
grep -q "not a GGUF" "$dir/err" || fail "not-a-GGUF message: $(cat "$dir/err")"
head -c 2000000 "$model" >"$dir/truncated.gguf"
expect nz "truncated GGUF"  -- "$bin" run -m "$dir/truncated.gguf" -n 2 -o "$dir/t.db"
grep -q "truncated" "$dir/err" || fail "truncated message: $(cat "$dir/err")"
head -c 100 "$model" >"$dir/header.gguf"
expect nz "cut-off header"  -- "$bin" run -m "$dir/header.gguf" -n 2 -o "$dir/t.db"

# ---- flags --------------------------------------------------------------------------------
expect 2 "unknown flag"     -- "$bin" run --bogus
expect 2 "bad number"       -- "$bin" run -n abc
expect 2 "negative number"  -- "$bin" run -n -3
expect 2 "zero threads"     -- "$bin" run -t 0
expect 2 "bad level"        -- "$bin" run --level everything
expect 2 "bad cache type"   -- "$bin" run -ctk q9_9
expect 2 "bad flash attn"   -- "$bin" run -fa maybe
expect 2 "missing value"    -- "$bin" run -m
expect 2 "unknown command"  -- "$bin" frobnicate
expect 2 "mkmodel preset"   -- "$bin" mkmodel huge
expect 2 "mkmodel type"     -- "$bin" mkmodel tiny Q9_K

# ---- output paths -------------------------------------------------------------------------
expect nz "missing dir"     -- "$bin" run -m "$model" -n 2 -o "$dir/missing/t.db"
expect nz "unwritable dir"  -- "$bin" run -m "$model" -n 2 -o /proc/lltrace-test.db
expect nz "mkmodel missing dir" -- "$bin" mkmodel tiny F32 -o "$dir/missing/m.gguf"

echo "my precious notes" >"$dir/notes.txt"
sum=$(sha256sum "$dir/notes.txt" | cut -d' ' -f1)
expect nz "not a trace"     -- "$bin" run -m "$model" -n 2 -o "$dir/notes.txt"
unchanged "$dir/notes.txt" "$sum"

sqlite3 "$dir/other.db" "CREATE TABLE t(x); INSERT INTO t VALUES(42);"
sum=$(sha256sum "$dir/other.db" | cut -d' ' -f1)
expect nz "other database"  -- "$bin" run -m "$model" -n 2 -o "$dir/other.db"
unchanged "$dir/other.db" "$sum"

# a trace of a newer schema version: refused for writing and reading
"$bin" run -m "$model" -n 2 -o "$dir/newer.db" >/dev/null 2>&1 || fail "a good run failed"
sqlite3 "$dir/newer.db" "PRAGMA user_version=99;"
sum=$(sha256sum "$dir/newer.db" | cut -d' ' -f1)
expect nz "newer schema (run)"  -- "$bin" run -m "$model" -n 2 -o "$dir/newer.db"
grep -q "version 99" "$dir/err" || fail "version message: $(cat "$dir/err")"
expect nz "newer schema (show)" -- "$bin" show "$dir/newer.db"
unchanged "$dir/newer.db" "$sum"

# ---- inputs that cannot be read: exit 2 in every command that reads one --------------------
# (run and bench: 'missing model' above; they exit 1 today)
echo "not a trace, not a model" >"$dir/text.txt"
"$bin" run -m "$model" -n 2 -o "$dir/ok.db" >/dev/null 2>&1 || fail "a good run failed"
for input in "$dir/absent" "$dir/text.txt"; do
    expect 2 "show $input"    -- "$bin" show "$input"
    expect 2 "export $input"  -- "$bin" export "$input"
    expect 2 "profile $input" -- "$bin" profile "$input"
    expect 2 "parity $input"  -- "$bin" parity "$input" "$input"
    expect 2 "inspect $input" -- "$bin" inspect "$input"
    expect 2 "diff $input"    -- "$bin" diff "$input" "$input"
done
for cmd in show export profile; do
    expect 2 "$cmd of a run the trace does not hold" -- "$bin" "$cmd" "$dir/ok.db" --run 9
done

finish
