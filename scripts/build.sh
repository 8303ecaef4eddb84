#!/usr/bin/env bash
# Build lltrace from a fresh Debian 12 machine: apt packages (when root), the pinned llama.cpp
# (cached outside the repo by scripts/bootstrap-llama.sh), then lltrace itself into ./build.
#
# Env: LLAMA_PREFIX=<your llama.cpp install with include/ and lib/> skips the pinned build.
#      LLTRACE_BUILD_DIR (default ./build), LLTRACE_CACHE (default ~/.cache/lltrace).
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "build: $*" >&2; }

# ---- system packages: what is missing, by the command or file it provides ------------------
# (a tool installed outside apt, such as a newer npm, counts as present)
need=(
    "gcc:build-essential" "g++:build-essential" "make:build-essential" "cmake:cmake"
    "ninja:ninja-build" "git:git" "openssl:openssl" "npm:npm" "sqlite3:sqlite3" "python3:python3" "valgrind:valgrind" "ccache:ccache"
    "/usr/include/sqlite3.h:libsqlite3-dev" "/etc/ssl/certs/ca-certificates.crt:ca-certificates"
    "/usr/lib/python3/dist-packages/numpy:python3-numpy" # tests against numpy and gguf-py
)
missing=()
for entry in "${need[@]}"; do
    what=${entry%%:*} pkg=${entry##*:}
    if [ "${what#/}" != "$what" ]; then [ -e "$what" ] && continue; else command -v "$what" >/dev/null && continue; fi
    case " ${missing[*]-} " in *" $pkg "*) ;; *) missing+=("$pkg") ;; esac
done
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
        say "installing ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >/dev/null
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    else
        echo "build: missing packages; run: sudo apt-get install ${missing[*]}" >&2
        exit 1
    fi
fi

# ---- llama.cpp ----------------------------------------------------------------------------
if [ -z "${LLAMA_PREFIX:-}" ]; then
    LLAMA_PREFIX=$(scripts/bootstrap-llama.sh | tail -n 1)
fi
[ -f "$LLAMA_PREFIX/include/llama.h" ] || { echo "build: no include/llama.h under LLAMA_PREFIX=$LLAMA_PREFIX" >&2; exit 1; }

# ---- the report page's JavaScript libraries (report/package-lock.json) --------------------
# fetched once by npm, then the build is offline; compiled into the command (report/embed.cmake)
if [ ! -f report/node_modules/.package-lock.json ] || [ report/package-lock.json -nt report/node_modules/.package-lock.json ]; then
    say "npm ci in report/ (the report page's libraries)"
    (cd report && npm ci --no-audit --no-fund >/dev/null)
fi

# ---- lltrace ------------------------------------------------------------------------------
. scripts/ccache.sh
dir="${LLTRACE_BUILD_DIR:-build}"
cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DLLAMA_PREFIX="$LLAMA_PREFIX" -DLLT_WERROR="${LLT_WERROR:-OFF}" >/dev/null
cmake --build "$dir" -j "$(nproc)" >/dev/null || cmake --build "$dir" -j 1
say "lltrace built in $dir ($(./"$dir"/lltrace --version))"
