# A GGUF reader of the tests' own (no numpy, no gguf-py): the file's metadata and tensor table.
import struct

SCALARS = {0: '<B', 1: '<b', 2: '<H', 3: '<h', 4: '<I', 5: '<i', 6: '<f', 7: '<?', 10: '<Q', 11: '<q', 12: '<d'}
TYPE_NAMES = {0: 'f32', 1: 'f16', 8: 'q8_0', 12: 'q4_K', 14: 'q6_K'}

def read(path):
    """(n_kv, metadata dict, tensors [(name, type, ne, absolute offset)])"""
    f = open(path, 'rb')
    def take(fmt):
        return struct.unpack(fmt, f.read(struct.calcsize(fmt)))[0]
    def string():
        return f.read(take('<Q')).decode('utf-8')
    def value(t):
        if t == 8: return string()
        if t == 9:
            at, n = take('<I'), take('<Q')
            return [value(at) for _ in range(n)]
        return take(SCALARS[t])
    assert f.read(4) == b'GGUF'
    version, n_tensors, n_kv = take('<I'), take('<Q'), take('<Q')
    meta = {}
    for _ in range(n_kv):
        k = string()
        meta[k] = value(take('<I'))
    infos = []
    for _ in range(n_tensors):
        name = string()
        ne = [take('<Q') for _ in range(take('<I'))]
        infos.append((name, take('<I'), ne, take('<Q')))
    align = meta.get('general.alignment', 32)
    start = (f.tell() + align - 1) // align * align
    return n_kv, meta, [(n, t, ne, start + o) for n, t, ne, o in infos]

def f32_tensors(path, prefix=''):
    """{name: (ne, values)} of the file's F32 tensors whose name starts with prefix"""
    _, _, tensors = read(path)
    out = {}
    with open(path, 'rb') as f:
        for name, typ, ne, off in tensors:
            if typ != 0 or not name.startswith(prefix): continue
            n = 1
            for x in ne: n *= x
            f.seek(off)
            out[name] = (ne, struct.unpack('<%df' % n, f.read(4 * n)))
    return out

def f32(path, name):
    """(ne, values) of the F32 tensor name"""
    t = f32_tensors(path, name).get(name)
    if t is None: raise KeyError(name + ': no F32 tensor of that name')
    return t

def split(path, prefix, n):
    """writes the model at path as n files <prefix>-0000i-of-0000n.gguf, as llama-gguf-split does:
    the first holds the metadata, each its share of the tensors, all the split.* keys"""
    f = open(path, 'rb')
    def take(fmt):
        return struct.unpack(fmt, f.read(struct.calcsize(fmt)))[0]
    def skip_value(t):
        if t == 8: f.seek(take('<Q'), 1)
        elif t == 9:
            at, m = take('<I'), take('<Q')
            for _ in range(m): skip_value(at)
        else: f.seek(struct.calcsize(SCALARS[t]), 1)
    assert f.read(4) == b'GGUF'
    version, n_tensors, n_kv = take('<I'), take('<Q'), take('<Q')
    kvs, align = [], 32
    for _ in range(n_kv):
        start = f.tell()
        key = f.read(take('<Q')).decode('utf-8')
        t = take('<I')
        if key == 'general.alignment': align = take('<I'); f.seek(-4, 1)
        skip_value(t)
        end = f.tell()
        f.seek(start)
        kvs.append(f.read(end - start))
    infos = []
    for _ in range(n_tensors):
        name = f.read(take('<Q'))
        ne = [take('<Q') for _ in range(take('<I'))]
        infos.append([name, ne, take('<I'), take('<Q')])
    data = (f.tell() + align - 1) // align * align
    size_of = {}
    f.seek(0, 2)
    total = f.tell() - data
    for info in infos:
        later = [o for *_, o in infos if o > info[3]]
        size_of[info[0]] = (min(later) if later else total) - info[3]
    def s(x): return struct.pack('<Q', len(x)) + x
    def kv_u16(k, v): return s(k.encode()) + struct.pack('<IH', 2, v)
    def kv_i32(k, v): return s(k.encode()) + struct.pack('<Ii', 5, v)
    per = (len(infos) + n - 1) // n
    paths = []
    for i in range(n):
        mine = infos[i * per:(i + 1) * per]
        meta = (kvs if i == 0 else []) + [kv_u16('split.no', i), kv_u16('split.count', n), kv_i32('split.tensors.count', len(infos))]
        out = [b'GGUF', struct.pack('<IQQ', version, len(mine), len(meta))] + meta
        off, blobs = 0, []
        for name, ne, typ, o in mine:
            out += [s(name), struct.pack('<I', len(ne))] + [struct.pack('<Q', x) for x in ne] + [struct.pack('<IQ', typ, off)]
            f.seek(data + o)
            blob = f.read(size_of[name])
            blob += b'\0' * ((-len(blob)) % align)
            blobs.append(blob)
            off += len(blob)
        head = b''.join(out)
        head += b'\0' * ((-len(head)) % align)
        p = '%s-%05d-of-%05d.gguf' % (prefix, i + 1, n)
        open(p, 'wb').write(head + b''.join(blobs))
        paths.append(p)
    return paths

def tensor_facts(meta, tensors):
    """{tensor name: {field: value}} of an lltrace dump: version 2's arrays (lltrace.tensors.<field>,
    an element per tensor in the file's order), or version 1's keys lltrace.tensor.<name>.<field>"""
    facts = {name: {} for name, _, _, _ in tensors}
    for key, values in meta.items():
        if key.startswith('lltrace.tensors.') and isinstance(values, list) and len(values) == len(tensors):
            for (name, _, _, _), v in zip(tensors, values):
                facts[name][key[len('lltrace.tensors.'):]] = v
        elif key.startswith('lltrace.tensor.'):
            name, field = key[len('lltrace.tensor.'):].rsplit('.', 1)
            if name in facts: facts[name][field] = values
    return facts

def set_f32(path, name, index, value):
    """writes element index of F32 tensor name in the GGUF file at path (a test's poisoned model)"""
    import struct
    _, _, tensors = read(path)
    off = [o for n, t, ne, o in tensors if n == name][0]
    with open(path, 'r+b') as f:
        f.seek(off + index * 4)
        f.write(struct.pack('<f', value))

if __name__ == '__main__':
    # gguf.py set-f32 FILE TENSOR INDEX VALUE
    import sys
    if len(sys.argv) == 6 and sys.argv[1] == 'set-f32':
        set_f32(sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5]))
    else:
        sys.exit('usage: gguf.py set-f32 FILE TENSOR INDEX VALUE')
