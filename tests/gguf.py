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
