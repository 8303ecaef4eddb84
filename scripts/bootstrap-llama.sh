#!/usr/bin/env bash
# Fetch and build the pinned llama.cpp into a cache outside the repo: the libraries (what
# `lltrace run` needs), and with --programs also the llama.cpp programs the tests and benchmarks
# run. Both share one build folder, so asking for the programs later compiles only what they add.
#
# The one pristine llama.cpp source reachable from Debian's and npm's registries is the git
# bundle inside node-llama-cpp@3.22.1. It is verified against a pinned integrity hash, cloned
# and built once into $LLTRACE_CACHE/llama.cpp-<tag>; later calls reuse it.
#
# The build is keyed by tag and options: $LLTRACE_CACHE/llama.cpp-<tag>/install-<options>, with
# RPC on (ggml-rpc); .complete marks the libraries, .programs these programs in bin/:
# llama-simple, llama-completion, llama-cli, llama-server, llama-eval-callback, ggml-rpc-server.
#
# --valgrind builds another variant, install-valgrind: only the libraries (llama, ggml), for an
# x86-64 with AVX2 and no AVX-512 (-DGGML_NATIVE=OFF ...), so valgrind can run them: the native
# build uses AVX-512, which valgrind does not know (illegal instruction). bench/instructions.sh
# and the guard test cli-instructions point LD_LIBRARY_PATH at its lib/.
#
# Usage: bootstrap-llama.sh [--programs | --valgrind]
# Prints the install prefix (the folder holding lib/, include/ and bin/) on its last stdout line.
# Env: LLTRACE_CACHE (default ~/.cache/lltrace), LLTRACE_JOBS (default nproc).
set -euo pipefail

PKG="node-llama-cpp@3.22.1"
INTEGRITY="sha512-bltIipuWmc123H7tMIgDGKSsSrhmhlQYeVUC48XTjVW7XGJJiJJyCdlTMzQ/LiWoPkGDpcL4FviDpgw7qfTiDw=="
CACHE="${LLTRACE_CACHE:-$HOME/.cache/lltrace}"
JOBS="${LLTRACE_JOBS:-$(nproc)}"
OPTS="rpc"                      # the cache key of the options below; change it with them
ISA=()                          # the native build: ggml picks the machine's instructions
want_programs=0
[ "${1:-}" = "--programs" ] && want_programs=1
if [ "${1:-}" = "--valgrind" ]; then
    OPTS="valgrind"
    ISA=(-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=OFF)
fi
PROGRAMS=(llama-simple llama-completion llama-cli llama-server llama-eval-callback ggml-rpc-server)

say() { echo "bootstrap: $*" >&2; }
die() { echo "bootstrap: error: $*" >&2; exit 1; }

mkdir -p "$CACHE" || die "cannot create cache folder '$CACHE'"

# ---- fast path: a finished build for the pinned package ---------------------------------
stamp="$CACHE/pinned-tag"
if [ -f "$stamp" ]; then
    tag=$(cat "$stamp")
    prefix="$CACHE/llama.cpp-$tag/install-$OPTS"
    if [ -f "$prefix/.complete" ] && { [ $want_programs = 0 ] || [ -f "$prefix/.programs" ]; }; then
        echo "$prefix"
        exit 0
    fi
fi

command -v npm >/dev/null || die "npm is missing (apt-get install npm)"
command -v git >/dev/null || die "git is missing (apt-get install git)"
command -v cmake >/dev/null || die "cmake is missing (apt-get install cmake)"

# ---- fetch and verify the npm package -----------------------------------------------------
dl="$CACHE/npm"
mkdir -p "$dl"
tgz="$dl/node-llama-cpp-3.22.1.tgz"
if [ ! -f "$tgz" ]; then
    say "fetching $PKG from the npm registry"
    (cd "$dl" && npm pack "$PKG" --silent >/dev/null) || die "npm pack $PKG failed"
fi
got="sha512-$(openssl dgst -sha512 -binary "$tgz" | base64 -w0)"
if [ "$got" != "$INTEGRITY" ]; then
    rm -f "$tgz"
    die "$tgz does not match the pinned integrity (got $got); refusing it"
fi

unpack="$dl/package"
if [ ! -f "$unpack/llama/gitRelease.bundle" ]; then
    rm -rf "$unpack"
    tar -xzf "$tgz" -C "$dl" package/llama/gitRelease.bundle package/llama/llama.cpp.info.json \
        || die "cannot unpack $tgz"
fi
tag=$(sed -n 's/.*"tag"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p' "$unpack/llama/llama.cpp.info.json")
[ -n "$tag" ] || die "no tag in llama.cpp.info.json"

root="$CACHE/llama.cpp-$tag"
src="$root/src"
prefix="$root/install-$OPTS"
build="$root/build-$OPTS"
if [ -f "$prefix/.complete" ] && { [ $want_programs = 0 ] || [ -f "$prefix/.programs" ]; }; then
    echo "$tag" > "$stamp"
    echo "$prefix"
    exit 0
fi

# ---- clone and build ----------------------------------------------------------------------
if [ ! -f "$src/CMakeLists.txt" ]; then
    rm -rf "$src"
    say "cloning llama.cpp $tag from the bundle"
    git -c advice.detachedHead=false clone -q "$unpack/llama/gitRelease.bundle" "$src" || die "cannot clone the bundle"
fi

configure() {
    cmake -S "$src" -B "$build" -G "$(command -v ninja >/dev/null && echo Ninja || echo 'Unix Makefiles')" \
        -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=ON -DGGML_RPC=ON \
        -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=ON -DLLAMA_BUILD_TOOLS=ON \
        -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF \
        -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF \
        -DCMAKE_BUILD_WITH_INSTALL_RPATH=ON -DCMAKE_INSTALL_RPATH='$ORIGIN:$ORIGIN/../lib' \
        -DCMAKE_INSTALL_PREFIX="$prefix" ${ISA[@]+"${ISA[@]}"} >"$root/configure-$OPTS.log" 2>&1 \
        || die "cmake configure failed; see $root/configure-$OPTS.log"
}

# ---- the libraries (what lltrace links) ---------------------------------------------------
if [ ! -f "$prefix/.complete" ]; then
    say "building llama.cpp $tag libraries (about 2 minutes on 2 cores, once)"
    configure
    cmake --build "$build" --target llama ggml-rpc -j "$JOBS" >"$root/build-$OPTS.log" 2>&1 \
        || die "build failed; see $root/build-$OPTS.log"
    # Install by hand: `cmake --install` wants every target built.
    rm -rf "$prefix"
    mkdir -p "$prefix/lib" "$prefix/include" "$prefix/share" "$prefix/bin"
    find "$build/bin" "$build" -maxdepth 3 -name 'lib*.so*' -exec cp -P {} "$prefix/lib/" \; 2>/dev/null
    cp "$src"/include/*.h "$src"/ggml/include/*.h "$prefix/include/"
    cp "$src"/models/ggml-vocab-*.gguf "$prefix/share/"
    echo "$tag" > "$prefix/TAG"
    for l in libllama libggml libggml-base libggml-cpu libggml-rpc; do
        ls "$prefix/lib/$l.so"* >/dev/null 2>&1 || die "build produced no $l.so"
    done
    touch "$prefix/.complete"
    echo "$tag" > "$stamp"
    say "llama.cpp $tag libraries ready in $prefix"
fi

# ---- the programs (tests and benchmarks), from the same build folder ----------------------
if [ $want_programs = 1 ] && [ ! -f "$prefix/.programs" ]; then
    say "building llama.cpp $tag programs: ${PROGRAMS[*]} (about 8 minutes on 2 cores, once)"
    [ -f "$build/CMakeCache.txt" ] || configure
    cmake --build "$build" --target "${PROGRAMS[@]}" -j "$JOBS" >"$root/build-programs-$OPTS.log" 2>&1 \
        || die "build failed; see $root/build-programs-$OPTS.log"
    # the programs link the same libraries: a rebuilt one replaces the installed copy
    find "$build/bin" "$build" -maxdepth 3 -name 'lib*.so*' -exec cp -P {} "$prefix/lib/" \; 2>/dev/null
    for p in "${PROGRAMS[@]}"; do cp "$build/bin/$p" "$prefix/bin/" || die "build produced no $p"; done
    touch "$prefix/.programs"
    say "llama.cpp $tag programs ready in $prefix/bin"
fi
echo "$prefix"
