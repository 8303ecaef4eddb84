#!/usr/bin/env python3
"""Independent checks of interventions, from dumps (this file's own arithmetic, no numpy).

usage: intervene-ref.py zeros FILE.npy N           write a .npy of N f32 zeros (-0.0 at odd places)
       intervene-ref.py ablate MODEL.gguf PLAIN.gguf ABLATED.gguf HEAD N_HEAD
           PLAIN and ABLATED dumps of kqv_out-0 and attn_out-0 at step 0, from the plain run
           and from `--ablate 'kqv_out-0:head=HEAD'`. Checks that ABLATED's kqv_out-0 is PLAIN's
           with that head's slice of each token's row zeroed (exactly), and that its attn_out-0
           is blk.0.attn_output.weight times that (computed here in double precision, within
           1e-5 relative to the row's largest value): the rest of the layer read the change.
"""
import struct
import sys

import gguf  # tests/gguf.py, beside this script


def write_zeros(path, n):
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (%d,), }" % n
    header += ' ' * (63 - (10 + len(header)) % 64) + '\n'
    with open(path, 'wb') as f:
        f.write(b'\x93NUMPY\x01\x00' + struct.pack('<H', len(header)) + header.encode())
        f.write(struct.pack('<%df' % n, *[(-0.0 if i % 2 else 0.0) for i in range(n)]))


def ablate(model, plain, ablated, head, n_head):
    (ne, x) = gguf.f32(plain, 'kqv_out-0#0')
    (ne_a, xa) = gguf.f32(ablated, 'kqv_out-0#0')
    assert ne == ne_a, (ne, ne_a)
    row, n_tok = ne[0], ne[1]
    d = row // n_head
    want = list(x)
    for t in range(n_tok):
        for i in range(head * d, (head + 1) * d):
            want[t * row + i] = 0.0
    bad = [i for i in range(len(want)) if struct.pack('<f', want[i]) != struct.pack('<f', xa[i])]
    assert not bad, 'kqv_out-0: %d elements differ from the plain run with head %d zeroed, first %d: %r vs %r' % (
        len(bad), head, bad[0], xa[bad[0]], want[bad[0]])
    assert any(x[t * row + head * d + i] != 0 for t in range(n_tok) for i in range(d)), 'the head was zero already'
    (ne_w, w) = gguf.f32(model, 'blk.0.attn_output.weight')
    n_in, n_out = ne_w[0], ne_w[1]
    assert n_in == row, (ne_w, ne)
    (ne_o, out) = gguf.f32(ablated, 'attn_out-0#0')
    (_, out_plain) = gguf.f32(plain, 'attn_out-0#0')
    worst = 0.0
    for t in range(n_tok):
        xs = want[t * row:(t + 1) * row]
        ref = [sum(w[o * n_in + i] * xs[i] for i in range(n_in)) for o in range(n_out)]
        scale = max(abs(v) for v in ref) or 1.0
        for o in range(n_out):
            worst = max(worst, abs(ref[o] - out[t * n_out + o]) / scale)
    assert worst < 1e-5, 'attn_out-0 differs from W_o x (head %d zeroed) by %g (relative)' % (head, worst)
    assert list(out) != list(out_plain), 'attn_out-0 is the plain run\'s'
    print('kqv_out-0 head %d zeroed exactly; attn_out-0 = W_o x within %.2g' % (head, worst))


def main():
    a = sys.argv[1:]
    if a[:1] == ['zeros'] and len(a) == 3:
        write_zeros(a[1], int(a[2]))
    elif a[:1] == ['ablate'] and len(a) == 6:
        ablate(a[1], a[2], a[3], int(a[4]), int(a[5]))
    else:
        sys.exit(__doc__)


main()
