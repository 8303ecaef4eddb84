#!/usr/bin/env bash
# The cost of observing stays down (issue 21): bench/instructions.sh counts, under callgrind,
# each level's own instructions per generated token on the tiny model, for `lltrace run` and for
# `lltrace exec` around llama-completion, and fails when one exceeds twice its target. Counts do
# not move with the machine's load, so this is no timed assertion. Tiny's targets: the tiny
# model does 7.2 M instructions a token, small 52 M, over about half as many nodes, so lltrace's
# per-node and per-step work weighs about 3-5 times more. Tiny's figures of 2026-12-08 (run /
# exec): graph 0.44% / 0.36%, timing 0.79% / 0.73%, profile 0.70% / 0.41%, values 3.02% / 2.99%
# (the night before's build gave the same for run); before the ask call's fast path and the
# statistics kernel's finite lanes, run gave 0.46%, 0.96%, 0.81%, 12.8%. Timing's regression
# (4.9% on tiny) fails it, and so would values' old 10.6%. Needs valgrind, llama.cpp's valgrind
# build (scripts/bootstrap-llama.sh --valgrind) and its programs (--programs), which
# scripts/test.sh makes.
#   cli-instructions.sh LLTRACE_BINARY
. "$(dirname "$0")/lib.sh" cli-instructions "$@"
root=$(cd "$(dirname "$0")/.." && pwd)

LLTRACE_BUILD_DIR=$(cd "$(dirname "$bin")" && pwd) MODEL=tiny QUANT=Q4_K_M EXEC=1 CHECK=2 \
    TARGETS="graph=0.35 timing=0.8 profile=0.7 values=3.5" \
    "$root/bench/instructions.sh" >"$dir/table.md" 2>"$dir/err"
rc=$?
cat "$dir/table.md"
[ $rc = 0 ] || fail "a level over twice its target (exit $rc): $(cat "$dir/err")"
grep -q '^| timing |' "$dir/table.md" || fail "no table: $(cat "$dir/err")"
finish
