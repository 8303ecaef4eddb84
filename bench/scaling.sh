#!/usr/bin/env bash
# Scaling of the commands that read a trace with the trace's size, as Markdown on stdout:
#   bench/scaling.sh [STEPS...]        (default 1000 10000 100000)
# A 16-token timing run of the built-in tiny model is grown to each size by make-trace.sh;
# each command runs once per size (wall time and peak RSS by /usr/bin/time), output to a file.
set -euo pipefail
cd "$(dirname "$0")/.."
B=${LLTRACE_BUILD_DIR:-build}
sizes=("$@"); [ ${#sizes[@]} -gt 0 ] || sizes=(1000 10000 100000)
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
"$B"/lltrace run -n 16 --level timing -o "$tmp/src.db" >/dev/null 2>&1

cmds=("show" "show --stats" "profile" "profile --by layer" "profile --by node" "profile --by phase"
      "profile --by step" "export" "export --format chrome")
echo "## Scaling, $(date -u +%Y-%m-%dT%H:%MZ)"
echo
echo "- machine: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores; load average at start $(cut -d' ' -f1-3 /proc/loadavg)"
echo "- trace: a timing run of the tiny model grown by bench/make-trace.sh; seconds (peak RSS MiB)"
echo
printf '| command |'; for n in "${sizes[@]}"; do printf ' %s steps |' "$n"; done; echo
printf '|---|'; for _ in "${sizes[@]}"; do printf '%s' '---|'; done; echo
for n in "${sizes[@]}"; do
    bench/make-trace.sh "$tmp/src.db" "$tmp/big$n.db" "$n" >/dev/null 2>&1
    sz[$n]=$(awk -v s="$(stat -c %s "$tmp/big$n.db")" 'BEGIN {printf "%.0f", s/1048576}')
done
for cmd in "${cmds[@]}"; do
    printf '| `%s` |' "$cmd"
    for n in "${sizes[@]}"; do
        read -ra words <<<"$cmd"
        /usr/bin/time -f "%e %M" -o "$tmp/time" "$B"/lltrace "${words[0]}" "$tmp/big$n.db" "${words[@]:1}" \
            >"$tmp/out" 2>/dev/null || { printf ' failed |'; continue; }
        read -r secs kib <"$tmp/time"
        printf ' %s (%s) |' "$secs" "$((kib / 1024))"
    done
    echo
done
printf '| trace size, MiB |'; for n in "${sizes[@]}"; do printf ' %s |' "${sz[$n]}"; done; echo
