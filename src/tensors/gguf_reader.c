// lltrace's own GGUF header reader, for every GGUF file a tensor set opens (models and dumps).
//
// Why not ggml's gguf_init_from_file(): it checks each key against every key before it and
// each tensor name against every name before it, so a dump of n tensors takes n² string
// compares to open (63,600 tensors of a 400-step checkpoint dump: seconds of compares), and
// every later key lookup scans all keys. Here keys are hashed once and the tensor set hashes
// the names once: opening grows with the file's header, nothing else. The data is never read:
// the set maps the file and hands out pointers into it.
//
// The layout (gguf.h; little-endian, no padding inside the header):
//   1. "GGUF", u32 version (2 or 3), i64 n_tensors, i64 n_kv
//   2. n_kv times: string key, i32 type, then the value: a scalar, a string (u64 length and
//      bytes, no NUL), or an array (i32 element type, u64 n, n elements; no arrays of arrays)
//   3. n_tensors times: string name (< 64 bytes), u32 n_dims (<= 4), i64 ne[n_dims], i32 ggml
//      type, u64 offset from the data section (a multiple of the alignment)
//   4. padding to the alignment (general.alignment, a u32 power of two, default 32), then data.
// Every count is checked against the bytes that remain before anything is allocated for it, so
// a header that claims more than the file holds is refused, never trusted. Values are copied
// out of the map into one arena, NUL-terminated and aligned: the getters return C strings and
// aligned arrays whatever the file's byte offsets.
#include "tensors/gguf_reader.h"

#include "ggml.h"
#include "gguf.h"

#include <stdlib.h>
#include <string.h>

_Static_assert((int) LLT_GGUF_U8 == (int) GGUF_TYPE_UINT8 && (int) LLT_GGUF_STRING == (int) GGUF_TYPE_STRING &&
               (int) LLT_GGUF_ARRAY == (int) GGUF_TYPE_ARRAY && (int) LLT_GGUF_F64 == (int) GGUF_TYPE_FLOAT64 &&
               (int) LLT_GGUF_TYPE_COUNT == (int) GGUF_TYPE_COUNT, "llt_gguf_type numbers are GGUF's");

struct gr_kv {
    uint64_t key;      // arena offset of the NUL-terminated key
    uint32_t key_hash;
    int32_t  type;     // enum llt_gguf_type
    int32_t  arr_type; // arrays: the elements' type
    uint64_t n;        // arrays: elements
    uint64_t val;      // arena offset: the scalar, the string, the array's elements (strings:
                       // n u64 arena offsets of the strings)
};

struct llt_gguf {
    uint32_t                 version;
    uint64_t                 alignment;
    uint64_t                 data_offset;
    int64_t                  n_kv;
    struct gr_kv *           kv;
    uint32_t *               slots;   // key hash table: kv index + 1, 0 empty
    uint32_t                 n_slots; // a power of two
    int64_t                  n_tensors;
    struct llt_gguf_tensor * tensors;
    char *                   arena;
    size_t                   arena_n, arena_cap;
};

// ---- values: sizes and names -----------------------------------------------------------

size_t llt_gguf_type_size(int type) {
    switch (type) {
        case LLT_GGUF_U8: case LLT_GGUF_I8: case LLT_GGUF_BOOL:  return 1;
        case LLT_GGUF_U16: case LLT_GGUF_I16:                    return 2;
        case LLT_GGUF_U32: case LLT_GGUF_I32: case LLT_GGUF_F32: return 4;
        case LLT_GGUF_U64: case LLT_GGUF_I64: case LLT_GGUF_F64: return 8;
        default:                                                 return 0; // strings, arrays
    }
}

// ---- the cursor over the mapped header ----------------------------------------------------

struct cur {
    const unsigned char * p;
    uint64_t              left;
    const char *          path;
};

static int truncated(const struct cur * c, const char * what) {
    return llt_set_error(LLT_EFORMAT, "cannot open '%s': corrupt or truncated GGUF header (%.200s)", c->path, what);
}

static bool take(struct cur * c, void * dst, uint64_t n) {
    if (c->left < n) return false;
    memcpy(dst, c->p, (size_t) n);
    c->p += n;
    c->left -= n;
    return true;
}

// a string's bytes in the map; false if it runs past the end
static bool take_str(struct cur * c, const char ** s, uint64_t * n) {
    if (!take(c, n, sizeof(*n)) || *n > c->left) return false;
    *s = (const char *) c->p;
    c->p += *n;
    c->left -= *n;
    return true;
}

// ---- the arena: offsets stay valid while it grows -----------------------------------------

// room for n bytes at an 8-byte boundary; its offset in *off
static int arena_alloc(struct llt_gguf * g, uint64_t n, uint64_t * off) {
    const size_t at = (g->arena_n + 7) & ~(size_t) 7;
    if (n > SIZE_MAX - at - 8) return llt_set_error(LLT_ENOMEM, "out of memory");
    if (at + n > g->arena_cap) {
        size_t cap = g->arena_cap ? g->arena_cap : 4096;
        while (cap < at + n) cap *= 2;
        char * a = realloc(g->arena, cap);
        if (!a) return llt_set_error(LLT_ENOMEM, "out of memory");
        g->arena = a;
        g->arena_cap = cap;
    }
    g->arena_n = at + (size_t) n;
    *off = at;
    return LLT_OK;
}

// a string copied NUL-terminated into the arena
static int arena_str(struct llt_gguf * g, const char * s, uint64_t n, uint64_t * off) {
    int rc = arena_alloc(g, n + 1, off);
    if (rc != LLT_OK) return rc;
    memcpy(g->arena + *off, s, (size_t) n);
    g->arena[*off + n] = '\0';
    return LLT_OK;
}

// ---- keys ----------------------------------------------------------------------------------

static uint32_t key_hash(const char * s, uint64_t n) {
    uint32_t h = 2166136261u;
    for (uint64_t i = 0; i < n; i++) h = (h ^ (unsigned char) s[i]) * 16777619u;
    return h;
}

static const char * kv_key(const struct llt_gguf * g, const struct gr_kv * kv) { return g->arena + kv->key; }

// the slot of key (n bytes): the key's kv index + 1, or the empty slot where it would go
static uint32_t * key_slot(const struct llt_gguf * g, const char * key, uint64_t n, uint32_t hash) {
    for (uint32_t h = hash;; h++) {
        uint32_t * s = &g->slots[h & (g->n_slots - 1)];
        if (*s == 0) return s;
        const struct gr_kv * kv = &g->kv[*s - 1];
        const char * k = kv_key(g, kv);
        if (kv->key_hash == hash && strncmp(k, key, (size_t) n) == 0 && k[n] == '\0') return s;
    }
}

// reads the value of kv (its type already read) from c into the arena. The key is looked up
// again for each message: the arena moves as it grows.
static int read_value(struct llt_gguf * g, struct cur * c, struct gr_kv * kv) {
    int32_t type = kv->type;
    uint64_t n = 1;
    if (type == LLT_GGUF_ARRAY) {
        if (!take(c, &type, sizeof(type)) || !take(c, &n, sizeof(n))) return truncated(c, kv_key(g, kv));
        kv->arr_type = type;
        kv->n = n;
    }
    if (type == LLT_GGUF_STRING) {
        if (kv->type == LLT_GGUF_STRING) {
            const char * s;
            uint64_t len;
            if (!take_str(c, &s, &len)) return truncated(c, kv_key(g, kv));
            return arena_str(g, s, len, &kv->val);
        }
        if (n > c->left / sizeof(uint64_t)) return truncated(c, kv_key(g, kv)); // each has a u64 length
        int rc = arena_alloc(g, n * sizeof(uint64_t), &kv->val);
        for (uint64_t i = 0; rc == LLT_OK && i < n; i++) {
            const char * s;
            uint64_t len, off = 0;
            if (!take_str(c, &s, &len)) return truncated(c, kv_key(g, kv));
            if ((rc = arena_str(g, s, len, &off)) == LLT_OK) memcpy(g->arena + kv->val + i * sizeof(off), &off, sizeof(off));
        }
        return rc;
    }
    const size_t size = llt_gguf_type_size(type);
    if (size == 0) {
        return llt_set_error(LLT_EFORMAT, "cannot open '%s': key '%.200s' has invalid GGUF type %d", c->path, kv_key(g, kv), (int) type);
    }
    if (n > c->left / size) return truncated(c, kv_key(g, kv));
    int rc = arena_alloc(g, n * size, &kv->val);
    if (rc != LLT_OK) return rc;
    take(c, g->arena + kv->val, n * size);
    return LLT_OK;
}

static int read_kvs(struct llt_gguf * g, struct cur * c) {
    // a key takes at least 13 bytes: its length, one byte, a type, a one-byte value
    if ((uint64_t) g->n_kv > c->left / 13) return truncated(c, "more keys than the file holds");
    g->kv = calloc((size_t) g->n_kv + 1, sizeof(*g->kv));
    uint32_t cap = 16;
    while (cap < 2u * (uint64_t) g->n_kv) cap *= 2;
    g->slots = calloc(cap, sizeof(*g->slots));
    if (!g->kv || !g->slots) return llt_set_error(LLT_ENOMEM, "out of memory");
    g->n_slots = cap;
    for (int64_t i = 0; i < g->n_kv; i++) {
        struct gr_kv * kv = &g->kv[i];
        const char * key;
        uint64_t len;
        if (!take_str(c, &key, &len)) return truncated(c, "a key");
        if (len == 0) return llt_set_error(LLT_EFORMAT, "cannot open '%s': key %lld is empty", c->path, (long long) i);
        kv->key_hash = key_hash(key, len);
        uint32_t * slot = key_slot(g, key, len, kv->key_hash);
        if (*slot != 0) {
            return llt_set_error(LLT_EFORMAT, "cannot open '%s': key '%.*s' appears twice", c->path,
                                 len > 200 ? 200 : (int) len, key);
        }
        int rc = arena_str(g, key, len, &kv->key);
        if (rc != LLT_OK) return rc;
        *slot = (uint32_t) i + 1;
        if (!take(c, &kv->type, sizeof(kv->type))) return truncated(c, kv_key(g, kv));
        if ((rc = read_value(g, c, kv)) != LLT_OK) return rc;
    }
    return LLT_OK;
}

// general.alignment: a u32 power of two, else GGUF's default
static int read_alignment(struct llt_gguf * g, const char * path) {
    g->alignment = GGUF_DEFAULT_ALIGNMENT;
    const int64_t k = llt_gguf_find_key(g, GGUF_KEY_GENERAL_ALIGNMENT);
    if (k < 0) return LLT_OK;
    if (g->kv[k].type != LLT_GGUF_U32) {
        return llt_set_error(LLT_EFORMAT, "cannot open '%s': %s is not a u32", path, GGUF_KEY_GENERAL_ALIGNMENT);
    }
    uint32_t a;
    memcpy(&a, g->arena + g->kv[k].val, sizeof(a));
    if (a == 0 || (a & (a - 1)) != 0) {
        return llt_set_error(LLT_EFORMAT, "cannot open '%s': alignment %u is not a power of 2", path, a);
    }
    g->alignment = a;
    return LLT_OK;
}

// ---- tensors -------------------------------------------------------------------------------

static int tensor_error(const struct cur * c, const struct llt_gguf_tensor * t, const char * what) {
    return llt_set_error(LLT_EFORMAT, "cannot open '%s': tensor '%.*s' %s", c->path, (int) t->name_len, t->name, what);
}

static int read_tensor(struct llt_gguf * g, struct cur * c, struct llt_gguf_tensor * t) {
    uint64_t len;
    uint32_t n_dims;
    if (!take_str(c, &t->name, &len)) return truncated(c, "a tensor name");
    if (len >= GGML_MAX_NAME) {
        return llt_set_error(LLT_EFORMAT, "cannot open '%s': tensor name '%.*s' is too long (%llu bytes, at most %d)",
                             c->path, 80, t->name, (unsigned long long) len, GGML_MAX_NAME - 1);
    }
    t->name_len = (uint32_t) len;
    if (memchr(t->name, '\0', (size_t) len)) return tensor_error(c, t, "has a NUL byte in its name");
    if (!take(c, &n_dims, sizeof(n_dims))) return truncated(c, "a tensor's dimensions");
    if (n_dims > 4) return tensor_error(c, t, "has more than 4 dimensions");
    t->n_dims = (int32_t) n_dims;
    uint64_t n = 1;
    for (int d = 0; d < 4; d++) {
        t->ne[d] = 1;
        if ((uint32_t) d < n_dims && !take(c, &t->ne[d], sizeof(t->ne[d]))) return truncated(c, "a tensor's shape");
        if (t->ne[d] < 0) return tensor_error(c, t, "has a negative dimension");
        if (t->ne[d] > 0 && n > (uint64_t) INT64_MAX / (uint64_t) t->ne[d]) return tensor_error(c, t, "is too large");
        n *= (uint64_t) t->ne[d];
    }
    if (!take(c, &t->type, sizeof(t->type)) || !take(c, &t->offset, sizeof(t->offset))) return truncated(c, "a tensor's type");
    if (t->type < 0 || t->type >= GGML_TYPE_COUNT || ggml_blck_size((enum ggml_type) t->type) == 0) {
        return llt_set_error(LLT_EFORMAT, "cannot open '%s': tensor '%.*s' has invalid ggml type %d", c->path,
                             (int) t->name_len, t->name, (int) t->type);
    }
    const int64_t bs = ggml_blck_size((enum ggml_type) t->type);
    const uint64_t bb = ggml_type_size((enum ggml_type) t->type);
    if (t->ne[0] % bs != 0) return tensor_error(c, t, "has rows that are not whole blocks of its type");
    if (n / (uint64_t) bs > UINT64_MAX / 2 / bb) return tensor_error(c, t, "is too large");
    t->bytes = n / (uint64_t) bs * bb;
    if (t->offset % g->alignment != 0) return tensor_error(c, t, "has an unaligned offset");
    return LLT_OK;
}

static int read_tensors(struct llt_gguf * g, struct cur * c) {
    // a tensor takes at least 24 bytes: name length, n_dims, type, offset
    if ((uint64_t) g->n_tensors > c->left / 24) return truncated(c, "more tensors than the file holds");
    g->tensors = calloc((size_t) g->n_tensors + 1, sizeof(*g->tensors));
    if (!g->tensors) return llt_set_error(LLT_ENOMEM, "out of memory");
    for (int64_t i = 0; i < g->n_tensors; i++) {
        int rc = read_tensor(g, c, &g->tensors[i]);
        if (rc != LLT_OK) return rc;
    }
    return LLT_OK;
}

// ---- open ----------------------------------------------------------------------------------

int llt_gguf_read(const void * data, uint64_t size, const char * path, struct llt_gguf ** out) {
    *out = NULL;
    struct cur c = { .p = data, .left = data ? size : 0, .path = path };
    struct llt_gguf * g = calloc(1, sizeof(*g));
    if (!g) return llt_set_error(LLT_ENOMEM, "out of memory");
    int rc = LLT_OK;
    char magic[4];
    if (!take(&c, magic, sizeof(magic)) || memcmp(magic, "GGUF", 4) != 0) {
        rc = llt_set_error(LLT_EFORMAT, "cannot open '%s': not a GGUF file (bad magic)", path);
        goto done;
    }
    if (!take(&c, &g->version, sizeof(g->version)) || !take(&c, &g->n_tensors, sizeof(g->n_tensors)) ||
        !take(&c, &g->n_kv, sizeof(g->n_kv))) {
        rc = truncated(&c, "the counts");
        goto done;
    }
    if (g->version < 2 || g->version > GGUF_VERSION) {
        rc = llt_set_error(LLT_EFORMAT, "cannot open '%s': GGUF version %u (this reader knows 2 to %d)", path,
                           g->version, GGUF_VERSION);
        goto done;
    }
    if (g->n_tensors < 0 || g->n_kv < 0) {
        rc = truncated(&c, "negative counts");
        goto done;
    }
    if ((rc = read_kvs(g, &c)) != LLT_OK || (rc = read_alignment(g, path)) != LLT_OK || (rc = read_tensors(g, &c)) != LLT_OK) {
        goto done;
    }
    g->data_offset = size - c.left;
    if (g->n_tensors > 0) g->data_offset = (g->data_offset + g->alignment - 1) / g->alignment * g->alignment;
done:
    if (rc != LLT_OK) {
        llt_gguf_free(g);
        return rc;
    }
    *out = g;
    return LLT_OK;
}

void llt_gguf_free(struct llt_gguf * g) {
    if (!g) return;
    free(g->kv);
    free(g->slots);
    free(g->tensors);
    free(g->arena);
    free(g);
}

// ---- getters -------------------------------------------------------------------------------

int64_t llt_gguf_n_tensors(const struct llt_gguf * g) { return g->n_tensors; }

const struct llt_gguf_tensor * llt_gguf_tensor(const struct llt_gguf * g, int64_t i) {
    return i >= 0 && i < g->n_tensors ? &g->tensors[i] : NULL;
}

uint32_t llt_gguf_version(const struct llt_gguf * g) { return g->version; }
int64_t  llt_gguf_n_kv(const struct llt_gguf * g) { return g->n_kv; }
size_t   llt_gguf_alignment(const struct llt_gguf * g) { return (size_t) g->alignment; }
uint64_t llt_gguf_data_offset(const struct llt_gguf * g) { return g->data_offset; }

int64_t llt_gguf_find_key(const struct llt_gguf * g, const char * key) {
    const size_t n = strlen(key);
    const uint32_t s = *key_slot(g, key, n, key_hash(key, n));
    return (int64_t) s - 1;
}

static const struct gr_kv * kv_at(const struct llt_gguf * g, int64_t k) {
    return k >= 0 && k < g->n_kv ? &g->kv[k] : NULL;
}

const char * llt_gguf_key(const struct llt_gguf * g, int64_t k) {
    const struct gr_kv * kv = kv_at(g, k);
    return kv ? kv_key(g, kv) : NULL;
}

int llt_gguf_kv_type(const struct llt_gguf * g, int64_t k) {
    const struct gr_kv * kv = kv_at(g, k);
    return kv ? kv->type : -1;
}

const char * llt_gguf_val_str(const struct llt_gguf * g, int64_t k) {
    const struct gr_kv * kv = kv_at(g, k);
    return kv && kv->type == LLT_GGUF_STRING ? g->arena + kv->val : NULL;
}

const void * llt_gguf_val_data(const struct llt_gguf * g, int64_t k) {
    const struct gr_kv * kv = kv_at(g, k);
    return kv && llt_gguf_type_size(kv->type) > 0 ? g->arena + kv->val : NULL;
}

int llt_gguf_arr_type(const struct llt_gguf * g, int64_t k) {
    const struct gr_kv * kv = kv_at(g, k);
    return kv && kv->type == LLT_GGUF_ARRAY ? kv->arr_type : -1;
}

size_t llt_gguf_arr_n(const struct llt_gguf * g, int64_t k) {
    const struct gr_kv * kv = kv_at(g, k);
    return kv && kv->type == LLT_GGUF_ARRAY ? (size_t) kv->n : 0;
}

const void * llt_gguf_arr_data(const struct llt_gguf * g, int64_t k) {
    const struct gr_kv * kv = kv_at(g, k);
    return kv && kv->type == LLT_GGUF_ARRAY && kv->arr_type != LLT_GGUF_STRING ? g->arena + kv->val : NULL;
}

const char * llt_gguf_arr_str(const struct llt_gguf * g, int64_t k, size_t i) {
    const struct gr_kv * kv = kv_at(g, k);
    if (!kv || kv->type != LLT_GGUF_ARRAY || kv->arr_type != LLT_GGUF_STRING || i >= kv->n) return NULL;
    uint64_t off;
    memcpy(&off, g->arena + kv->val + i * sizeof(off), sizeof(off));
    return g->arena + off;
}
