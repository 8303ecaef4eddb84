# Sourced by the scripts that configure a build (build.sh, test.sh, fuzz.sh): compile through
# ccache when it is installed, its cache beside llama.cpp's builds, outside the clone, so a
# fresh clone's three builds (normal, sanitized, fuzz) reuse the objects of the last one.
# Paths under the clone are made relative (CCACHE_BASEDIR) and the folder is not hashed, so a
# clone at another path hits the same objects. Takes effect when a build folder is configured
# the first time (CMake reads the launcher from the environment then).
if command -v ccache >/dev/null; then
    export CCACHE_DIR=${CCACHE_DIR:-${LLTRACE_CACHE:-$HOME/.cache/lltrace}/ccache}
    export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$PWD} CCACHE_NOHASHDIR=1 CCACHE_MAXSIZE=${CCACHE_MAXSIZE:-2G}
    export CMAKE_C_COMPILER_LAUNCHER=ccache CMAKE_CXX_COMPILER_LAUNCHER=ccache
fi
