#!/usr/bin/env bash
# lltrace diff against numpy on a large random pair (4 Mi + 3 elements, so blocks and lanes end
# part-way): 2 .npy directories, one tensor each, B = A + noise at several scales, with NaNs,
# infinities and zeros on both sides. The counts, the largest differences and where the
# largest lies must equal numpy's exactly (the tolerance and relative difference decided in
# float32, as docs/diffs define them); the sums (mean_abs, mean_rel, rmse, nmse, cosine),
# taken in double in another order, to 1e-12. Fails without numpy (scripts/build.sh installs python3-numpy).
#   cli-diff-numpy.sh LLTRACE_BINARY
set -u
bin=$1
dir=$(mktemp -d /tmp/lltrace-cli-diff-numpy-XXXXXX)
trap 'rm -rf "$dir"' EXIT

py=
for p in python3 /usr/bin/python3; do
    if "$p" -c 'import numpy' 2>/dev/null; then py=$p; break; fi
done
[ -n "$py" ] || { echo "FAIL no python3 with numpy: scripts/build.sh installs python3-numpy"; exit 1; }

mkdir "$dir/a" "$dir/b"
"$py" - "$dir" <<'EOF' || { echo "FAIL cannot write the pair"; exit 1; }
import sys
import numpy as np
d = sys.argv[1]
rng = np.random.default_rng(21)
n = 4 * 1024 * 1024 + 3
a = rng.standard_normal(n).astype(np.float32) * rng.choice([1e-8, 1e-3, 1.0, 1e3], n).astype(np.float32)
scale = rng.choice([0, 1e-9, 1e-7, 1e-5, 1e-3], n)
b = (a + (rng.standard_normal(n) * scale * (1 + np.abs(a))).astype(np.float32)).astype(np.float32)
a[rng.integers(0, n, 2000)] = 0
for arr in (a, b):
    arr[rng.integers(0, n, 300)] = np.nan
    arr[rng.integers(0, n, 200)] = np.inf
    arr[rng.integers(0, n, 200)] = -np.inf
both = rng.integers(0, n, 100)  # pairs that agree on a non-finite value
a[both[:50]] = b[both[:50]] = np.nan
a[both[50:]] = b[both[50:]] = -np.inf
np.save(d + "/a/x.npy", a)
np.save(d + "/b/x.npy", b)
EOF
"$bin" diff "$dir/a" "$dir/b" --format json >"$dir/diff.json" 2>"$dir/err"
rc=$?
[ "$rc" = 1 ] || { echo "FAIL diff: exit $rc, want 1 (some exceed); $(cat "$dir/err")"; exit 1; }
"$py" - "$dir" <<'EOF' && echo "cli-diff-numpy: ok"
import json, math, sys
import numpy as np
d = sys.argv[1]
a, b = np.load(d + "/a/x.npy").ravel(), np.load(d + "/b/x.npy").ravel()
got = json.load(open(d + "/diff.json"))["tensors"][0]
tol_abs, tol_rel, eps = np.float32(1e-6), np.float32(1e-4), np.float32(1e-6)

fin = np.isfinite(a) & np.isfinite(b)
af, bf = a[fin], b[fin]
ad = np.abs(af - bf)                                   # float32, as lltrace
rel = ad / np.maximum(np.abs(af), eps)                 # float32 division
thr = np.maximum(tol_rel * np.abs(af), tol_abs)
same = (np.isnan(a) & np.isnan(b)) | (a == b)          # a non-finite pair within tolerance
want = {
    "n": a.size, "n_finite": int(fin.sum()),
    "a_nan": int(np.isnan(a).sum()), "a_inf": int(np.isinf(a).sum()),
    "b_nan": int(np.isnan(b).sum()), "b_inf": int(np.isinf(b).sum()),
    "n_exceed": int((ad > thr).sum() + (~fin & ~same).sum()),
    "max_abs": float(ad.max()), "max_rel": float(rel.max()),
    "max_abs_index": int(np.flatnonzero(fin)[int(np.argmax(ad))]),
}
da, db = af.astype(np.float64), bf.astype(np.float64)
sums = {
    "mean_abs": float(ad.astype(np.float64).mean()), "mean_rel": float(rel.astype(np.float64).mean()),
    "rmse": math.sqrt(float(((da - db) ** 2).mean())),
    "nmse": float(((da - db) ** 2).sum() / (da * da).sum()),
    "cosine": float((da * db).sum() / math.sqrt((da * da).sum() * (db * db).sum())),
}
bad = [f"{k}: lltrace {got[k]!r}, numpy {v!r}" for k, v in want.items() if got[k] != v]
bad += [f"{k}: lltrace {got[k]!r}, numpy {v!r}" for k, v in sums.items() if not math.isclose(got[k], v, rel_tol=1e-12)]
for line in bad: print("FAIL", line)
sys.exit(1 if bad else 0)
EOF
