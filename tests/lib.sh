# Shared by the CLI tests (sourced): $bin, a temporary $dir removed on exit, fail(), expect(),
# the tiny model in $model, and finish() to end with the verdict.
#   . "$(dirname "$0")/lib.sh" NAME "$@"
set -u
test_name=$1
bin=${2:?usage: $test_name LLTRACE_BINARY}
dir=$(mktemp -d "/tmp/lltrace-$test_name-XXXXXX")
trap 'rm -rf "$dir"' EXIT
fails=0
fail() { echo "FAIL $*"; fails=$((fails + 1)); }
# expect WHAT GOT WANTED
expect() { [ "$2" == "$3" ] || fail "$1: got '$2', wanted '$3'"; }
finish() {
    if [ "$fails" -gt 0 ]; then echo "$test_name: $fails failure(s)"; exit 1; fi
    echo "$test_name: ok"
}
model=$("$bin" mkmodel tiny F32 --cache) || { echo "FAIL cannot make the tiny model"; exit 1; }
