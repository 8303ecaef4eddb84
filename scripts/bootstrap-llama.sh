#!/usr/bin/env bash
# Fetch and build the pinned llama.cpp (libraries only) into a cache outside the repo.
#
# The one pristine llama.cpp source reachable from Debian's and npm's registries is the git
# bundle inside node-llama-cpp@3.22.1. It is verified against a pinned integrity hash, cloned
# and built once into $LLTRACE_CACHE/llama.cpp-<tag>; later calls reuse it.
#
# Prints the install prefix (the folder holding lib/ and include/) on its last stdout line.
# Env: LLTRACE_CACHE (default ~/.cache/lltrace), LLTRACE_JOBS (default nproc).
set -euo pipefail

PKG="node-llama-cpp@3.22.1"
INTEGRITY="sha512-bltIipuWmc123H7tMIgDGKSsSrhmhlQYeVUC48XTjVW7XGJJiJJyCdlTMzQ/LiWoPkGDpcL4FviDpgw7qfTiDw=="
CACHE="${LLTRACE_CACHE:-$HOME/.cache/lltrace}"
JOBS="${LLTRACE_JOBS:-$(nproc)}"

say() { echo "bootstrap: $*" >&2; }
die() { echo "bootstrap: error: $*" >&2; exit 1; }

mkdir -p "$CACHE" || die "cannot create cache folder '$CACHE'"

# ---- fast path: a finished build for the pinned package ---------------------------------
stamp="$CACHE/pinned-tag"
if [ -f "$stamp" ]; then
    tag=$(cat "$stamp")
    prefix="$CACHE/llama.cpp-$tag/install"
    if [ -f "$prefix/.complete" ]; then
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
prefix="$root/install"
if [ -f "$prefix/.complete" ]; then
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

say "building llama.cpp $tag libraries (a few minutes, once)"
cmake -S "$src" -B "$root/build" -G "$(command -v ninja >/dev/null && echo Ninja || echo 'Unix Makefiles')" \
    -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=ON \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF \
    -DLLAMA_BUILD_SERVER=OFF -DLLAMA_CURL=OFF \
    -DCMAKE_INSTALL_PREFIX="$prefix" >"$root/configure.log" 2>&1 \
    || die "cmake configure failed; see $root/configure.log"
cmake --build "$root/build" --target llama -j "$JOBS" >"$root/build.log" 2>&1 \
    || die "build failed; see $root/build.log"

# Install by hand: `cmake --install` wants every target built.
rm -rf "$prefix"
mkdir -p "$prefix/lib" "$prefix/include" "$prefix/share"
find "$root/build/bin" "$root/build" -maxdepth 3 -name 'lib*.so*' -exec cp -P {} "$prefix/lib/" \; 2>/dev/null
cp "$src"/include/*.h "$src"/ggml/include/*.h "$prefix/include/"
cp "$src/models/ggml-vocab-llama-spm.gguf" "$prefix/share/"
echo "$tag" > "$prefix/TAG"
for l in libllama libggml libggml-base libggml-cpu; do
    ls "$prefix/lib/$l.so"* >/dev/null 2>&1 || die "build produced no $l.so"
done
touch "$prefix/.complete"
echo "$tag" > "$stamp"
say "llama.cpp $tag ready in $prefix"
echo "$prefix"
