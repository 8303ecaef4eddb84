#!/usr/bin/env bash
# Bad input gets one line on stderr and the documented exit status (docs/commands/README.md), and
# leaves existing files as they were; every command's exit status for a missing input, an
# unknown flag, a FIFO input, a full standard output and (with -o) a device node or FIFO output.
#   cli-errors.sh LLTRACE_BINARY
. "$(dirname "$0")/lib.sh" cli-errors "$@"

# expect WANT_EXIT NAME -- command...: exit status WANT_EXIT and one stderr line; stdout goes
# to $out (default $dir/out), and a command that would block is stopped after 60 s (exit 124)
out=$dir/out
expect() {
    local want=$1 name=$2; shift 3
    timeout 60 "$@" >"$out" 2>"$dir/err"
    local got=$? lines
    lines=$(wc -l <"$dir/err")
    if [ "$got" != "$want" ]; then
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
expect 2 "missing model"   -- "$bin" run -m "$dir/absent.gguf" -n 2 -o "$dir/t.db"
[ -e "$dir/t.db" ] && fail "a trace was created for a missing model"
echo "just some text, not a model" >"$dir/text.gguf"
expect 2 "not a GGUF"      -- "$bin" run -m "$dir/text.gguf" -n 2 -o "$dir/t.db"
grep -q "not a GGUF" "$dir/err" || fail "not-a-GGUF message: $(cat "$dir/err")"
head -c 2000000 "$model" >"$dir/truncated.gguf"
expect 2 "truncated GGUF"  -- "$bin" run -m "$dir/truncated.gguf" -n 2 -o "$dir/t.db"
grep -q "truncated" "$dir/err" || fail "truncated message: $(cat "$dir/err")"
head -c 100 "$model" >"$dir/header.gguf"
expect 2 "cut-off header"  -- "$bin" run -m "$dir/header.gguf" -n 2 -o "$dir/t.db"

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
expect 2 "missing dir"     -- "$bin" run -m "$model" -n 2 -o "$dir/missing/t.db"
expect 2 "unwritable dir"  -- "$bin" run -m "$model" -n 2 -o /proc/lltrace-test.db
expect 1 "mkmodel missing dir" -- "$bin" mkmodel tiny F32 -o "$dir/missing/m.gguf"

echo "my precious notes" >"$dir/notes.txt"
sum=$(sha256sum "$dir/notes.txt" | cut -d' ' -f1)
expect 2 "not a trace"     -- "$bin" run -m "$model" -n 2 -o "$dir/notes.txt"
unchanged "$dir/notes.txt" "$sum"

sqlite3 "$dir/other.db" "CREATE TABLE t(x); INSERT INTO t VALUES(42);"
sum=$(sha256sum "$dir/other.db" | cut -d' ' -f1)
expect 2 "other database"  -- "$bin" run -m "$model" -n 2 -o "$dir/other.db"
unchanged "$dir/other.db" "$sum"

# a trace of a newer schema version: refused for writing and reading
"$bin" run -m "$model" -n 2 -o "$dir/newer.db" >/dev/null 2>&1 || fail "a good run failed"
sqlite3 "$dir/newer.db" "PRAGMA user_version=99;"
sum=$(sha256sum "$dir/newer.db" | cut -d' ' -f1)
expect 2 "newer schema (run)"  -- "$bin" run -m "$model" -n 2 -o "$dir/newer.db"
grep -q "version 99" "$dir/err" || fail "version message: $(cat "$dir/err")"
expect 2 "newer schema (show)" -- "$bin" show "$dir/newer.db"
unchanged "$dir/newer.db" "$sum"

# ---- inputs that cannot be read: exit 2 in every command that reads one --------------------
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

# ---- every command: missing input 2, unknown flag 2, FIFO input 2, full stdout 1 -----------
# A FIFO as an input is refused, not opened: opening it would wait for a writer forever.
mkfifo "$dir/fifo"
"$bin" run -m "$model" -n 2 --level timing --checkpoints --parity "$dir/p.jsonl" -o "$dir/timed.db" >/dev/null 2>&1 \
    || fail "a timing run with checkpoints and parity failed"
printf '# lltrace-bench-samples 1\tm.gguf\t32\t64\t2\tsome machine\noff\t0\t0.1\t1.0\t32\t64\t1000\t0\ngraph\t0\t0.1\t1.01\t32\t64\t1000\t100\n' >"$dir/samples.tsv"
# one good invocation per command, @IN@ standing for its input (ctest sets LLTRACE_VOCAB)
declare -A good=(
    [run]="run -m @IN@ -n 2 -o $dir/m.db"
    [show]="show @IN@"
    [export]="export @IN@"
    [mkmodel]="mkmodel tiny -o $dir/mk.gguf --vocab @IN@"
    [bench]="bench --samples @IN@"
    [inspect]="inspect @IN@"
    [diff]="diff @IN@ $model"
    [parity]="parity @IN@ $dir/p.jsonl"
    [profile]="profile @IN@"
)
declare -A input=(
    [run]=$model [show]=$dir/timed.db [export]=$dir/timed.db [mkmodel]=${LLTRACE_VOCAB:-}
    [bench]=$dir/samples.tsv [inspect]=$model [diff]=$model [parity]=$dir/p.jsonl [profile]=$dir/timed.db
)
for cmd in run show export mkmodel bench inspect diff parity profile; do
    args=${good[$cmd]}
    # shellcheck disable=SC2086 # the words of a command line
    expect 2 "$cmd: missing input" -- "$bin" ${args//@IN@/$dir/absent}
    # shellcheck disable=SC2086
    expect 2 "$cmd: FIFO input"    -- "$bin" ${args//@IN@/$dir/fifo}
    grep -q 'FIFO' "$dir/err" || fail "$cmd: FIFO message: $(cat "$dir/err")"
    expect 2 "$cmd: unknown flag"  -- "$bin" "$cmd" --bogus
    [ -n "${input[$cmd]}" ] || { fail "$cmd: no good input"; continue; }
    if [ "$cmd" != run ]; then # run also writes its summary on stderr: below
        out=/dev/full
        # shellcheck disable=SC2086
        expect 1 "$cmd: stdout on a full disk" -- "$bin" ${args//@IN@/${input[$cmd]}}
        out=$dir/out
    fi
done
"$bin" run -m "$model" -n 2 -o "$dir/m.db" >/dev/full 2>"$dir/err"
got=$?
[ "$got" = 1 ] || fail "run: stdout on a full disk: exit $got, want 1"
tail -n1 "$dir/err" | grep -q '^lltrace: cannot write standard output' || fail "run: full stdout message: $(cat "$dir/err")"
expect 2 "run -f FIFO"   -- "$bin" run -m "$model" -n 2 -f "$dir/fifo" -o "$dir/m.db"
mkdir "$dir/folder"
expect 2 "diff --map DIR" -- "$bin" diff "$model" "$model" --map "$dir/folder"
grep -q 'is a directory' "$dir/err" || fail "diff --map DIR message: $(cat "$dir/err")"
expect 2 "run --reference FIFO" -- "$bin" run -m "$model" -n 2 --reference "$dir/fifo" -o "$dir/m.db"
# the reason of a malformed parity line survives its wrapping in the file's message
{ head -n 1 "$dir/p.jsonl"; echo '{"step":1,"token":5,"top_k":[[5,1.0],]}'; } >"$dir/bad.jsonl"
expect 2 "parity: a malformed line" -- "$bin" parity "$dir/p.jsonl" "$dir/bad.jsonl"
grep -q "bad.jsonl', line 2, column 38: expected '\['$" "$dir/err" || fail "malformed parity line message: $(cat "$dir/err")"

# ---- -o on a device node or a FIFO: written directly, never replaced ------------------------
# The device is a copy of /dev/null made here (never the real one); the FIFO has a reader,
# whose copy must be the bytes a regular file gets.
if mknod "$dir/null" c 1 3 2>/dev/null; then
    stays_node() { [ -c "$dir/null" ] || fail "$1 replaced the device node"; }
    "$bin" export "$dir/timed.db" -o "$dir/null" || fail "export -o DEVICE failed";                                       stays_node export
    "$bin" export "$dir/timed.db" --dump-format safetensors -o "$dir/null" 2>/dev/null || fail "export safetensors -o DEVICE failed"
    stays_node "export --dump-format safetensors"
    expect 1 "export npy -o DEVICE"         -- "$bin" export "$dir/timed.db" --dump-format npy -o "$dir/null";            stays_node "export --dump-format npy"
    expect 2 "run -o DEVICE"                -- "$bin" run -m "$model" -n 2 -o "$dir/null";                                stays_node "run -o"
    grep -q 'character device' "$dir/err" || fail "run -o DEVICE message: $(cat "$dir/err")"
    expect 2 "run --dump-file DEVICE"       -- "$bin" run -m "$model" -n 2 --checkpoints --dump-file "$dir/null" -o "$dir/m.db"; stays_node "run --dump-file"
    "$bin" run -m "$model" -n 2 --parity "$dir/null" -o "$dir/m.db" >/dev/null 2>&1 || fail "run --parity DEVICE failed"; stays_node "run --parity"
    "$bin" mkmodel tiny -o "$dir/null" >/dev/null 2>&1 || fail "mkmodel -o DEVICE failed";                               stays_node mkmodel
    "$bin" bench --samples "$dir/samples.tsv" -o "$dir/null" >/dev/null 2>&1 || fail "bench -o DEVICE failed";            stays_node bench
    mknod "$dir/full" c 1 7
    expect 1 "mkmodel -o a full device" -- "$bin" mkmodel tiny -o "$dir/full"
    grep -q 'No space left on device' "$dir/err" || fail "mkmodel full device message: $(cat "$dir/err")"
else
    echo "skip: device node outputs (mknod needs root)"
fi
# through_fifo NAME FILE -- command with FIFO for its output: the reader's copy equals FILE
through_fifo() {
    local name=$1 want=$2; shift 3
    timeout 60 cat "$dir/fifo" >"$dir/fifo.out" &
    local reader=$!
    timeout 60 "$@" >/dev/null 2>"$dir/err" || fail "$name: exit $?: $(cat "$dir/err")"
    wait "$reader"
    [ -p "$dir/fifo" ] || fail "$name replaced the FIFO"
    cmp -s "$dir/fifo.out" "$want" || fail "$name: the reader got $(wc -c <"$dir/fifo.out") bytes, not the $(wc -c <"$want") of $want"
}
"$bin" export "$dir/timed.db" -o "$dir/export.ndjson" 2>/dev/null
through_fifo "export -o FIFO" "$dir/export.ndjson" -- "$bin" export "$dir/timed.db" -o "$dir/fifo"
"$bin" export "$dir/timed.db" --dump-format safetensors -o "$dir/dump.safetensors" 2>/dev/null
through_fifo "export safetensors -o FIFO" "$dir/dump.safetensors" -- "$bin" export "$dir/timed.db" --dump-format safetensors -o "$dir/fifo"
through_fifo "mkmodel -o FIFO" "$model" -- "$bin" mkmodel tiny -o "$dir/fifo"
# a symbolic link stays a link: the file it names is replaced
echo old >"$dir/target.ndjson"
ln -s target.ndjson "$dir/link.ndjson"
"$bin" export "$dir/timed.db" -o "$dir/link.ndjson" || fail "export -o LINK failed"
[ -L "$dir/link.ndjson" ] || fail "export -o LINK replaced the link"
cmp -s "$dir/target.ndjson" "$dir/export.ndjson" || fail "export -o LINK: the linked file does not hold the export"

# ---- outputs that cannot be written: the cause, and nothing left behind ---------------------
# a file size limit: EFBIG, not death by SIGXFSZ; no temporary file stays
mkdir "$dir/limited"
(ulimit -f 1000; exec "$bin" mkmodel tiny -o "$dir/limited/m.gguf") >/dev/null 2>"$dir/err"
got=$?
[ "$got" = 1 ] || fail "mkmodel over ulimit -f: exit $got, want 1: $(cat "$dir/err")"
grep -q 'File too large' "$dir/err" || fail "mkmodel over ulimit -f message: $(cat "$dir/err")"
left=$(ls -A "$dir/limited")
[ -z "$left" ] || fail "mkmodel over ulimit -f left files: $left"
# a full disk: a small tmpfs where the machine lets us mount one
mkdir "$dir/small"
if mount -t tmpfs -o size=64k tmpfs "$dir/small" 2>/dev/null; then
    trap 'umount "$dir/small" 2>/dev/null; rm -rf "$dir"' EXIT # a mount point is not removed by rm
    for type in F32 Q8_0; do
        expect 1 "mkmodel $type on a full disk" -- "$bin" mkmodel tiny "$type" -o "$dir/small/m.gguf"
        grep -q 'No space left on device' "$dir/err" || fail "mkmodel $type full disk message: $(cat "$dir/err")"
    done
    expect 1 "export npy on a full disk" -- "$bin" export "$dir/timed.db" --dump-format npy -o "$dir/small/npy"
    expect 1 "export safetensors on a full disk" -- "$bin" export "$dir/timed.db" --dump-format safetensors -o "$dir/small/d.st"
    left=$(ls -A "$dir/small")
    [ -z "$left" ] || fail "failed writes on a full disk left files: $left"
    umount "$dir/small"
else
    echo "skip: full-disk outputs (cannot mount a tmpfs)"
fi

# ---- selections that name nothing, outputs without a folder (issue 20) ------------------------
"$bin" run -m "$model" -n 3 --level profile -o "$dir/sel.db" >/dev/null 2>&1 || fail "the run for the selections failed"
expect 2 "profile --seq of no sequence" -- "$bin" profile "$dir/sel.db" --seq 7
grep -q "has no step of sequence 7 (its sequences: 0)" "$dir/err" || fail "profile --seq 7: $(cat "$dir/err")"
expect 2 "show --seq of no sequence" -- "$bin" show "$dir/sel.db" --seq 5
expect 2 "export --seq of no sequence" -- "$bin" export "$dir/sel.db" --seq 5
expect 2 "report --step of no step" -- "$bin" report "$dir/sel.db" --step 99 -o "$dir/sel.html"
grep -q "has no step 99 (it has 3)" "$dir/err" || fail "report --step 99: $(cat "$dir/err")"
[ -e "$dir/sel.html" ] && fail "report --step 99 wrote a page"
expect 2 "--dump-file in no folder" -- "$bin" run -m "$model" -n 2 --dump 'l_out*' --dump-file "$dir/nodir/d.gguf" -o "$dir/nd.db"
grep -q "no folder '$dir/nodir'" "$dir/err" || fail "--dump-file nodir: $(cat "$dir/err")"
[ -e "$dir/nd.db" ] && fail "a trace was made for a run refused for its --dump-file"
expect 2 "-o in no folder" -- "$bin" run -m "$model" -n 2 -o "$dir/nodir/t.db"
grep -q "cannot write trace '$dir/nodir/t.db': no folder '$dir/nodir'" "$dir/err" || fail "-o nodir: $(cat "$dir/err")"
echo "a prompt" >"$dir/prompt.txt"
expect 2 "-p with -f" -- "$bin" run -m "$model" -n 2 -p "hi" -f "$dir/prompt.txt" -o "$dir/pf.db"
[ -e "$dir/pf.db" ] && fail "a trace was made for -p with -f"
# JSON booleans in show's tables; a reader leaves no -wal/-shm files behind
"$bin" show "$dir/sel.db" --step 0 --format json >"$dir/nodes.json" || fail "show --format json"
python3 -c "
import json, sys
d = json.load(open(sys.argv[1]))
nodes = next(v for v in d.values() if isinstance(v, list) and v and 'is_view' in v[0])
assert all(isinstance(n['is_view'], bool) and isinstance(n['is_noop'], bool) for n in nodes), nodes[0]
" "$dir/nodes.json" || fail "show --format json: is_view/is_noop are not JSON booleans"
for cmd in "show --stats" profile export "report -o $dir/w.html"; do
    # shellcheck disable=SC2086
    "$bin" $cmd "$dir/sel.db" >/dev/null 2>&1
    ls "$dir"/sel.db-wal "$dir"/sel.db-shm >/dev/null 2>&1 && fail "'lltrace $cmd' left -wal/-shm files: $(ls "$dir"/sel.db-*)"
done

finish
