#!/usr/bin/env python3
"""The sorter's mechanism, read from checkpoint dumps with this file's own GGUF reader.

usage: sorter-attention.py DUMP.gguf "d a c b" [DUMP2.gguf "h b f" ...]
       (each dump from a run of the prompt "sort: <letters> =" with --checkpoints)

When the model emits the k-th letter of the answer, the query is the token before it ("=" for
the first, the (k-1)-th answer letter after); prompt position 2+i holds the i-th letter (after
<s> and "sort:"). For every layer and head, over every letter emitted in every dump: the
attention probability on the position holding that letter, and whether that position gets
the head's largest probability. Prints one line per head, best last, then each letter of the
best head. Exits 0 when the best head points: for every letter emitted it puts at least 0.8
of its attention probability on the position holding that letter (docs/commands/mkmodel.md, "The demo model").
"""
import sys

import gguf  # tests/gguf.py, beside this script

def emissions(path, letters, heads, log):
    tensors = gguf.f32_tensors(path, 'kq_soft_max-')
    answer = sorted(letters)
    n_prompt = 3 + len(letters)          # <s> sort: letters =
    source = {c: 2 + i for i, c in enumerate(letters)}
    for name, (ne, v) in tensors.items():
        if not name.startswith('kq_soft_max-'): continue
        layer, step = (int(x) for x in name[len('kq_soft_max-'):].split('#'))
        n_kv, n_tok, n_head = ne[0], ne[1], ne[2]
        # step 0 is the prompt (its last row emits the first letter); step s > 0 emits letter s+1
        k = step
        if k >= len(answer): continue
        q = n_tok - 1
        assert (step == 0 and n_tok == n_prompt) or (step > 0 and n_tok == 1), (name, ne)
        for h in range(n_head):
            row = v[h * n_tok * n_kv + q * n_kv:h * n_tok * n_kv + q * n_kv + n_kv]
            p = row[source[answer[k]]]
            heads.setdefault((layer, h), []).append((p, p == max(row)))
            log.setdefault((layer, h), []).append('%s: %s %.3f%s' % (' '.join(letters), answer[k], p, '' if p == max(row) else ' (not its largest)'))

def main():
    args = sys.argv[1:]
    assert args and len(args) % 2 == 0, __doc__
    heads, log = {}, {}
    for i in range(0, len(args), 2):
        emissions(args[i], args[i + 1].split(), heads, log)
    assert heads, 'no kq_soft_max checkpoints in the dumps'
    def score(ps):  # (least, mean) probability on the letter
        return (min(p for p, top in ps), sum(p for p, top in ps) / len(ps))
    ranked = sorted(heads.items(), key=lambda kv_: score(kv_[1]))
    for (layer, h), ps in ranked:
        least, mean = score(ps)
        print('layer %d head %d: %d letters emitted; >= 0.8 on the letter for %.0f%% of them; '
              'largest on it for %.0f%%; least %.3f, mean %.3f' % (
            layer, h, len(ps), 100 * sum(1 for p, t in ps if p >= 0.8) / len(ps),
            100 * sum(1 for p, top in ps if top) / len(ps), least, mean))
    best = ranked[-1][0]
    print('\n'.join(log[best]))
    least, mean = score(ranked[-1][1])
    sys.exit(0 if least >= 0.8 else 1)

main()
