#!/usr/bin/env bash
# llama.cpp's own llama-eval-callback against lltrace --level values, on the same model and
# prompt (issue 3's comparison). Builds the peers (llama-eval-callback, llama-simple) from the
# pinned source into the cache, beside the libraries lltrace uses; they are not part of lltrace.
#
#   bench/peers.sh [MODEL]     prints a Markdown section
set -euo pipefail
cd "$(dirname "$0")/.."
B=${LLTRACE_BUILD_DIR:-build}
prefix=$(scripts/bootstrap-llama.sh --programs | tail -n 1)
root=$(dirname "$prefix")
peers="$root/build-peers"
if [ ! -x "$peers/bin/llama-eval-callback" ] || [ ! -x "$peers/bin/llama-simple" ]; then
    echo "peers: building llama-eval-callback and llama-simple (a few minutes, once)" >&2
    cmake -S "$root/src" -B "$peers" -G Ninja -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=ON \
        -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=ON -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF \
        -DLLAMA_CURL=OFF >"$root/peers-configure.log" 2>&1
    cmake --build "$peers" --target llama-eval-callback llama-simple -j "$(nproc)" >"$root/peers-build.log" 2>&1
fi
model=${1:-$("$B"/lltrace mkmodel small Q4_K_M --cache)}
# a 30-token prompt (BOS + 29 words of one token each)
prompt="the cat sat on the mat and the dog ran to the park while the sun was high in the sky and all the birds sang a song"
reps=${REPS:-5}

# median wall time in seconds of a command, over $reps runs
wall() {
    local times=()
    for _ in $(seq 1 "$reps"); do
        local t0 t1
        t0=$(date +%s%N)
        "$@" >/dev/null 2>&1
        t1=$(date +%s%N)
        times+=($(( (t1 - t0) / 1000 )))
    done
    printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {printf "%.3f", a[int((NR+1)/2)]/1e6}'
}

simple=$(wall "$peers/bin/llama-simple" -m "$model" -n 1 "$prompt")
evalcb=$(wall "$peers/bin/llama-eval-callback" -m "$model" -n 1 -p "$prompt" -t "$(nproc)")
receipt=$("$B"/lltrace bench -m "$model" -p 30 -n 1 -r "$reps" --levels off,values 2>/dev/null)
off=$(echo "$receipt" | awk -F'|' '/^\| off /{print $3}' | awk '{print $1}')
values=$(echo "$receipt" | awk -F'|' '/^\| values /{print $3}' | awk '{print $1}')
# prompt tok/s -> seconds for 30 tokens
lltrace_added=$(awk -v a="$off" -v b="$values" 'BEGIN {printf "%.4f", 30/b - 30/a}')
peer_added=$(awk -v a="$simple" -v b="$evalcb" 'BEGIN {printf "%.3f", b - a}')

echo "## lltrace --level values vs llama-eval-callback, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo
echo "- model: \`$model\`, 30-token prompt, $(nproc) threads, median of $reps"
echo "- llama-simple (prompt + 1 token, whole process): ${simple} s; llama-eval-callback (observes and prints every node of the prompt decode): ${evalcb} s → adds **${peer_added} s**"
echo "- lltrace prompt decode: untraced ${off} tok/s, --level values ${values} tok/s → adds **${lltrace_added} s**"
echo "- ratio: $(awk -v a="$peer_added" -v b="$lltrace_added" 'BEGIN {printf "%.0fx", a/b}') less added time with lltrace"
echo
