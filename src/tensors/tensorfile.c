// Tensor sets: one reader for GGUF files (models and lltrace dumps), safetensors files and
// directories of .npy files, and writers for .npy and safetensors.
//
// Only headers are parsed; files are mapped and a tensor's bytes are touched when asked for.
// Every header is validated before a tensor is handed out: a tensor never points outside its
// file. Formats:
//   GGUF         parsed by llama.cpp's gguf.h (no_alloc).
//   safetensors  1. u64 little-endian N  2. N bytes of JSON: {"name": {"dtype": "F32",
//                "shape": [outermost, ..., innermost], "data_offsets": [begin, end]}, ...,
//                "__metadata__": {"k": "v"}}  3. the data; offsets are relative to it.
//   .npy         1. "\x93NUMPY" 2. major, minor version bytes 3. header length (u16 in v1,
//                u32 in v2/v3) 4. a Python dict literal {'descr': '<f4', 'fortran_order':
//                False, 'shape': (3, 4), } padded with spaces and '\n' 5. the data.
// numpy and torch shapes are outermost first; ggml's ne[0] is the innermost: shapes are reversed.
#include "core/internal.h"

#include "gguf.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "tensor files are little-endian; this reader assumes a little-endian host"
#endif

// ---- the set -----------------------------------------------------------------------------

struct tf_file {
    char *   path;
    void *   map;  // the whole file, read only
    uint64_t size;
};

struct llt_tensor_set {
    enum llt_tensor_set_kind kind;
    struct gguf_context *    gguf;
    struct tf_file *         files;
    int                      n_files;
    struct llt_tensor_info * tensors;
    int32_t *                file_of; // tensor -> files[]
    int                      n;
    int                      cap;
    int32_t *                slots;   // name hash table: tensor index + 1, 0 empty
    uint32_t                 n_slots; // a power of two
};

static const char * kind_names[] = { "gguf", "safetensors", "npy" };
_Static_assert(sizeof(kind_names)/sizeof(kind_names[0]) == LLT_TENSOR_SET_NPY + 1, "kind names");

const char * llt_tensor_set_kind_name(enum llt_tensor_set_kind kind) {
    return (unsigned) kind <= LLT_TENSOR_SET_NPY ? kind_names[kind] : "?";
}

enum llt_tensor_set_kind llt_tensor_set_kind(const struct llt_tensor_set * set) { return set->kind; }
int llt_tensor_set_count(const struct llt_tensor_set * set) { return set->n; }
const struct gguf_context * llt_tensor_set_gguf(const struct llt_tensor_set * set) { return set->gguf; }

const struct llt_tensor_info * llt_tensor_set_get(const struct llt_tensor_set * set, int i) {
    return i >= 0 && i < set->n ? &set->tensors[i] : NULL;
}

void llt_tensor_set_close(struct llt_tensor_set * set) {
    if (!set) return;
    for (int i = 0; i < set->n_files; i++) {
        if (set->files[i].map) munmap(set->files[i].map, (size_t) set->files[i].size);
        free(set->files[i].path);
    }
    for (int i = 0; i < set->n; i++) free((char *) set->tensors[i].name);
    if (set->gguf) gguf_free(set->gguf);
    free(set->files);
    free(set->tensors);
    free(set->file_of);
    free(set->slots);
    free(set);
}

// maps a whole file; an empty file maps to NULL
static int map_file(struct llt_tensor_set * set, const char * path, struct tf_file ** out) {
    struct tf_file * files = realloc(set->files, (size_t) (set->n_files + 1) * sizeof(*files));
    if (!files) return llt_set_error(LLT_ENOMEM, "out of memory");
    set->files = files;
    struct tf_file * f = &files[set->n_files];
    memset(f, 0, sizeof(*f));
    if (!(f->path = strdup(path))) return llt_set_error(LLT_ENOMEM, "out of memory");
    set->n_files++;

    int fd = open(path, O_RDONLY);
    if (fd < 0) return llt_set_error(LLT_EIO, "cannot open '%s': %s", path, strerror(errno));
    struct stat sb;
    int rc = LLT_OK;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        rc = llt_set_error(LLT_EIO, "cannot open '%s': not a regular file", path);
        goto done;
    }
    f->size = (uint64_t) sb.st_size;
    if (f->size > 0) {
        void * p = mmap(NULL, (size_t) f->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            rc = llt_set_error(LLT_EIO, "cannot map '%s': %s", path, strerror(errno));
            goto done;
        }
        f->map = p;
    }
    *out = f;
done:
    close(fd);
    return rc;
}

// appends a tensor (name copied) read from file index fi
static int add_tensor(struct llt_tensor_set * set, const char * name, size_t name_len, int fi,
                      struct llt_tensor_info ** out) {
    if (set->n == set->cap) {
        int cap = set->cap ? set->cap * 2 : 64;
        struct llt_tensor_info * t = realloc(set->tensors, (size_t) cap * sizeof(*t));
        if (!t) return llt_set_error(LLT_ENOMEM, "out of memory");
        set->tensors = t;
        int32_t * fo = realloc(set->file_of, (size_t) cap * sizeof(*fo));
        if (!fo) return llt_set_error(LLT_ENOMEM, "out of memory");
        set->file_of = fo;
        set->cap = cap;
    }
    char * copy = malloc(name_len + 1);
    if (!copy) return llt_set_error(LLT_ENOMEM, "out of memory");
    memcpy(copy, name, name_len);
    copy[name_len] = '\0';
    struct llt_tensor_info * t = &set->tensors[set->n];
    memset(t, 0, sizeof(*t));
    t->name = copy;
    t->order = -1;
    t->layer = -1;
    set->file_of[set->n] = fi;
    set->n++;
    *out = t;
    return LLT_OK;
}

// shape given outermost first (numpy, torch) into ne; counts elements and bytes
static int set_shape(struct llt_tensor_info * t, const uint64_t * shape, int n_dims, const char * path) {
    if (n_dims > 4) {
        return llt_set_error(LLT_EFORMAT, "cannot open '%s': tensor '%s' has %d dimensions (at most 4)",
            path, t->name, n_dims);
    }
    t->n_dims = n_dims > 0 ? n_dims : 1;
    uint64_t n = 1;
    for (int d = 0; d < 4; d++) {
        const uint64_t v = d < n_dims ? shape[n_dims - 1 - d] : 1;
        if (v > (uint64_t) INT64_MAX || (v > 0 && n > (uint64_t) INT64_MAX / 16 / v)) {
            return llt_set_error(LLT_EFORMAT, "cannot open '%s': tensor '%s' is too large", path, t->name);
        }
        t->ne[d] = (int64_t) v;
        n *= v;
    }
    t->n_elements = (int64_t) n;
    t->bytes = n * llt_type_block_bytes(t->type); // plain types only: block size 1
    return LLT_OK;
}

// ---- names -------------------------------------------------------------------------------

static uint32_t name_hash(const char * s) {
    uint32_t h = 2166136261u;
    for (; *s; s++) h = (h ^ (unsigned char) *s) * 16777619u;
    return h;
}

int llt_tensor_set_find(const struct llt_tensor_set * set, const char * name) {
    if (set->n_slots == 0) return -1;
    for (uint32_t h = name_hash(name);; h++) {
        const int32_t s = set->slots[h & (set->n_slots - 1)];
        if (s == 0) return -1;
        if (strcmp(set->tensors[s - 1].name, name) == 0) return s - 1;
    }
}

static int index_names(struct llt_tensor_set * set, const char * path) {
    uint32_t cap = 16;
    while (cap < 2u * (uint32_t) set->n) cap *= 2;
    set->slots = calloc(cap, sizeof(int32_t));
    if (!set->slots) return llt_set_error(LLT_ENOMEM, "out of memory");
    set->n_slots = cap;
    for (int i = 0; i < set->n; i++) {
        uint32_t h = name_hash(set->tensors[i].name);
        for (;; h++) {
            int32_t * s = &set->slots[h & (cap - 1)];
            if (*s == 0) { *s = i + 1; break; }
            if (strcmp(set->tensors[*s - 1].name, set->tensors[i].name) == 0) {
                return llt_set_error(LLT_EFORMAT, "cannot open '%s': tensor name '%s' appears twice",
                    path, set->tensors[i].name);
            }
        }
    }
    return LLT_OK;
}

// layer from a name: lltrace/llama.cpp names ("Qcur-3", "blk.3.", "Qcur-3#0" in dumps) and
// Hugging Face module names ("model.layers.3.mlp")
static int32_t layer_from_name(const char * name) {
    char base[256];
    snprintf(base, sizeof(base), "%s", name);
    char * hash = strchr(base, '#');
    if (hash) *hash = '\0';
    int layer = llt_layer_from_name(base);
    if (layer >= 0) return layer;
    const char * p = strstr(name, "layers.");
    if (p && (p == name || p[-1] == '.') && isdigit((unsigned char) p[7])) return (int32_t) atoi(p + 7);
    return -1;
}

// ---- GGUF --------------------------------------------------------------------------------

bool llt_tensor_set_meta_int(const struct llt_tensor_set * set, const char * key, int64_t * out) {
    if (!set->gguf) return false;
    const int64_t k = gguf_find_key(set->gguf, key);
    if (k < 0) return false;
    switch (gguf_get_kv_type(set->gguf, k)) {
        case GGUF_TYPE_UINT8:  *out = gguf_get_val_u8 (set->gguf, k); return true;
        case GGUF_TYPE_INT8:   *out = gguf_get_val_i8 (set->gguf, k); return true;
        case GGUF_TYPE_UINT16: *out = gguf_get_val_u16(set->gguf, k); return true;
        case GGUF_TYPE_INT16:  *out = gguf_get_val_i16(set->gguf, k); return true;
        case GGUF_TYPE_UINT32: *out = gguf_get_val_u32(set->gguf, k); return true;
        case GGUF_TYPE_INT32:  *out = gguf_get_val_i32(set->gguf, k); return true;
        case GGUF_TYPE_UINT64: *out = (int64_t) gguf_get_val_u64(set->gguf, k); return true;
        case GGUF_TYPE_INT64:  *out = gguf_get_val_i64(set->gguf, k); return true;
        default:               return false;
    }
}

static int open_gguf(struct llt_tensor_set * set, const char * path) {
    struct tf_file * f = NULL;
    int rc = map_file(set, path, &f);
    if (rc != LLT_OK) return rc;
    struct gguf_init_params gp = { .no_alloc = true, .ctx = NULL };
    set->gguf = gguf_init_from_file(path, gp);
    if (!set->gguf) {
        return llt_set_error(LLT_EFORMAT, "cannot open '%s': corrupt or truncated GGUF header", path);
    }
    const int64_t n = gguf_get_n_tensors(set->gguf);
    const uint64_t data_offset = gguf_get_data_offset(set->gguf);
    for (int64_t i = 0; i < n; i++) {
        const char * name = gguf_get_tensor_name(set->gguf, i);
        struct llt_tensor_info * t = NULL;
        if ((rc = add_tensor(set, name, strlen(name), 0, &t)) != LLT_OK) return rc;
        t->type = gguf_get_tensor_type(set->gguf, i);
        const int64_t * ne = gguf_get_tensor_ne(set->gguf, i);
        t->n_elements = 1;
        t->n_dims = 1;
        for (int d = 0; d < 4; d++) {
            t->ne[d] = ne[d];
            t->n_elements *= ne[d];
            if (ne[d] != 1) t->n_dims = d + 1;
        }
        t->bytes = gguf_get_tensor_size(set->gguf, i);
        t->offset = data_offset + gguf_get_tensor_offset(set->gguf, i);
        if (t->offset + t->bytes > f->size) {
            return llt_set_error(LLT_EFORMAT,
                "cannot open '%s': truncated (tensor '%s' ends at byte %llu, the file has %llu)",
                path, name, (unsigned long long) (t->offset + t->bytes), (unsigned long long) f->size);
        }
        char key[512];
        int64_t v = 0;
        snprintf(key, sizeof(key), LLT_DUMP_KEY_ORDER, name);
        if (llt_tensor_set_meta_int(set, key, &v)) t->order = v;
        snprintf(key, sizeof(key), LLT_DUMP_KEY_LAYER, name);
        t->layer = llt_tensor_set_meta_int(set, key, &v) ? (int32_t) v : layer_from_name(name);
    }
    return LLT_OK;
}

// ---- safetensors: a strict JSON reader for the header ------------------------------------

struct json {
    const char * s;   // the header
    size_t       n;
    size_t       i;   // position
    const char * err; // first error
    size_t       err_at;
};

static bool json_fail(struct json * j, const char * what) {
    if (!j->err) { j->err = what; j->err_at = j->i; }
    return false;
}

static void json_ws(struct json * j) {
    while (j->i < j->n && (j->s[j->i] == ' ' || j->s[j->i] == '\t' || j->s[j->i] == '\n' || j->s[j->i] == '\r')) j->i++;
}

static bool json_char(struct json * j, char c) {
    json_ws(j);
    if (j->i < j->n && j->s[j->i] == c) { j->i++; return true; }
    return false;
}

static int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// n hex digits, or -1
static int hex_n(const char * p, int n) {
    int v = 0;
    for (int k = 0; k < n; k++) {
        const int h = hex_digit(p[k]);
        if (h < 0) return -1;
        v = v << 4 | h;
    }
    return v;
}

// a JSON string as UTF-8 into out (at most cap-1 bytes, *len its length); out NULL: checked only
static bool json_string(struct json * j, char * out, size_t cap, size_t * len) {
    json_ws(j);
    if (j->i >= j->n || j->s[j->i] != '"') return json_fail(j, "expected a string");
    j->i++;
    size_t o = 0;
    for (;;) {
        if (j->i >= j->n) return json_fail(j, "unterminated string");
        const unsigned char c = (unsigned char) j->s[j->i++];
        unsigned char enc[4];
        int ne = 0;
        if (c == '"') break;
        if (c < 0x20) return json_fail(j, "control character in a string");
        if (c != '\\') {
            enc[ne++] = c; // UTF-8 bytes are copied as they are
        } else {
            if (j->i >= j->n) return json_fail(j, "unterminated string");
            uint32_t cp;
            switch (j->s[j->i++]) {
                case '"': cp = '"'; break;   case '\\': cp = '\\'; break; case '/': cp = '/'; break;
                case 'b': cp = '\b'; break;  case 'f': cp = '\f'; break;  case 'n': cp = '\n'; break;
                case 'r': cp = '\r'; break;  case 't': cp = '\t'; break;
                case 'u': {
                    const int h = j->i + 4 <= j->n ? hex_n(j->s + j->i, 4) : -1;
                    if (h < 0) return json_fail(j, "bad \\u escape");
                    j->i += 4;
                    cp = (uint32_t) h;
                    if (cp >= 0xDC00 && cp <= 0xDFFF) return json_fail(j, "unpaired surrogate in \\u escape");
                    if (cp >= 0xD800 && cp <= 0xDBFF) {
                        const int lo = j->i + 6 <= j->n && j->s[j->i] == '\\' && j->s[j->i + 1] == 'u'
                                     ? hex_n(j->s + j->i + 2, 4) : -1;
                        if (lo < 0xDC00 || lo > 0xDFFF) return json_fail(j, "unpaired surrogate in \\u escape");
                        j->i += 6;
                        cp = 0x10000 + ((cp - 0xD800) << 10) + ((uint32_t) lo - 0xDC00);
                    }
                    break;
                }
                default: return json_fail(j, "bad escape in a string");
            }
            if (cp < 0x80) {
                enc[ne++] = (unsigned char) cp;
            } else if (cp < 0x800) {
                enc[ne++] = (unsigned char) (0xC0 | (cp >> 6));
                enc[ne++] = (unsigned char) (0x80 | (cp & 0x3F));
            } else if (cp < 0x10000) {
                enc[ne++] = (unsigned char) (0xE0 | (cp >> 12));
                enc[ne++] = (unsigned char) (0x80 | ((cp >> 6) & 0x3F));
                enc[ne++] = (unsigned char) (0x80 | (cp & 0x3F));
            } else {
                enc[ne++] = (unsigned char) (0xF0 | (cp >> 18));
                enc[ne++] = (unsigned char) (0x80 | ((cp >> 12) & 0x3F));
                enc[ne++] = (unsigned char) (0x80 | ((cp >> 6) & 0x3F));
                enc[ne++] = (unsigned char) (0x80 | (cp & 0x3F));
            }
        }
        if (!out) continue;
        if (o + (size_t) ne >= cap) return json_fail(j, "string too long");
        memcpy(out + o, enc, (size_t) ne);
        o += (size_t) ne;
    }
    if (out) {
        out[o] = '\0';
        *len = o;
    }
    return true;
}

// a non-negative integer (no sign, fraction or exponent)
static bool json_uint(struct json * j, uint64_t * out) {
    json_ws(j);
    const size_t start = j->i;
    uint64_t v = 0;
    while (j->i < j->n && isdigit((unsigned char) j->s[j->i])) {
        const uint64_t d = (uint64_t) (j->s[j->i] - '0');
        if (v > (UINT64_MAX - d) / 10) return json_fail(j, "integer too large");
        v = v * 10 + d;
        j->i++;
    }
    if (j->i == start) return json_fail(j, "expected a non-negative integer");
    if (j->s[start] == '0' && j->i - start > 1) return json_fail(j, "leading zero in a number");
    if (j->i < j->n && (j->s[j->i] == '.' || j->s[j->i] == 'e' || j->s[j->i] == 'E')) {
        return json_fail(j, "expected an integer");
    }
    *out = v;
    return true;
}

// [u, u, ...] with at most cap values
static bool json_uint_array(struct json * j, uint64_t * out, int cap, int * n) {
    if (!json_char(j, '[')) return json_fail(j, "expected '['");
    *n = 0;
    if (json_char(j, ']')) return true;
    do {
        if (*n == cap) return json_fail(j, "array too long");
        if (!json_uint(j, &out[(*n)++])) return false;
    } while (json_char(j, ','));
    return json_char(j, ']') || json_fail(j, "expected ',' or ']'");
}

static const struct { const char * name; int type; } st_dtypes[] = {
    { "F64", GGML_TYPE_F64 }, { "F32", GGML_TYPE_F32 }, { "F16", GGML_TYPE_F16 }, { "BF16", GGML_TYPE_BF16 },
    { "I64", GGML_TYPE_I64 }, { "I32", GGML_TYPE_I32 }, { "I16", GGML_TYPE_I16 }, { "I8", GGML_TYPE_I8 },
    { "U64", LLT_TYPE_U64 },  { "U32", LLT_TYPE_U32 },  { "U16", LLT_TYPE_U16 },  { "U8", LLT_TYPE_U8 },
    { "BOOL", LLT_TYPE_BOOL },
};
// known to safetensors, not read here
static const char * st_unsupported[] = { "F8_E4M3", "F8_E5M2", "F8_E8M0", "F6_E2M3", "F6_E3M2", "F4", "C64" };

// one tensor entry: {"dtype": ..., "shape": [...], "data_offsets": [b, e]}
static int st_entry(struct llt_tensor_set * set, struct json * j, const char * name, size_t name_len,
                    uint64_t data_base, uint64_t data_size, const char * path) {
    char key[32], dtype[32] = "";
    size_t len = 0;
    uint64_t shape[8], offs[2];
    int n_dims = -1, n_offs = -1;
    if (!json_char(j, '{')) return json_fail(j, "expected '{' for a tensor"), LLT_EFORMAT;
    if (!json_char(j, '}')) {
        do {
            if (!json_string(j, key, sizeof(key), &len) || !json_char(j, ':')) {
                return json_fail(j, "expected a key"), LLT_EFORMAT;
            }
            bool ok;
            if (strcmp(key, "dtype") == 0 && !dtype[0]) {
                ok = json_string(j, dtype, sizeof(dtype), &len);
            } else if (strcmp(key, "shape") == 0 && n_dims < 0) {
                ok = json_uint_array(j, shape, 8, &n_dims);
            } else if (strcmp(key, "data_offsets") == 0 && n_offs < 0) {
                ok = json_uint_array(j, offs, 2, &n_offs);
            } else {
                return json_fail(j, "unknown or repeated key in a tensor entry"), LLT_EFORMAT;
            }
            if (!ok) return LLT_EFORMAT;
        } while (json_char(j, ','));
        if (!json_char(j, '}')) return json_fail(j, "expected ',' or '}'"), LLT_EFORMAT;
    }
    if (!dtype[0] || n_dims < 0 || n_offs != 2) {
        return llt_set_error(LLT_EFORMAT, "cannot open '%s': bad safetensors header: tensor '%s' needs "
            "dtype, shape and data_offsets [begin, end]", path, name);
    }
    int type = -1;
    for (size_t k = 0; k < sizeof(st_dtypes)/sizeof(st_dtypes[0]); k++) {
        if (strcmp(dtype, st_dtypes[k].name) == 0) type = st_dtypes[k].type;
    }
    if (type < 0) {
        bool known = false;
        for (size_t k = 0; k < sizeof(st_unsupported)/sizeof(st_unsupported[0]); k++) {
            known |= strcmp(dtype, st_unsupported[k]) == 0;
        }
        return llt_set_error(LLT_EFORMAT, "cannot open '%s': tensor '%s' has %s dtype '%s' "
            "(lltrace reads F64 F32 F16 BF16 I64 I32 I16 I8 U64 U32 U16 U8 BOOL)",
            path, name, known ? "unsupported" : "unknown", dtype);
    }
    struct llt_tensor_info * t = NULL;
    int rc = add_tensor(set, name, name_len, 0, &t);
    if (rc != LLT_OK) return rc;
    t->type = type;
    if ((rc = set_shape(t, shape, n_dims, path)) != LLT_OK) return rc;
    if (offs[0] > offs[1] || offs[1] > data_size) {
        return llt_set_error(LLT_EFORMAT, "cannot open '%s': tensor '%s': data_offsets [%llu, %llu] "
            "outside the data (%llu bytes)", path, t->name, (unsigned long long) offs[0],
            (unsigned long long) offs[1], (unsigned long long) data_size);
    }
    if (offs[1] - offs[0] != t->bytes) {
        return llt_set_error(LLT_EFORMAT, "cannot open '%s': tensor '%s': data_offsets hold %llu bytes, "
            "its shape and dtype need %llu", path, t->name, (unsigned long long) (offs[1] - offs[0]),
            (unsigned long long) t->bytes);
    }
    t->offset = data_base + offs[0];
    t->layer = layer_from_name(t->name);
    return LLT_OK;
}

// "__metadata__": an object of strings; checked and skipped
static bool st_metadata(struct json * j) {
    if (!json_char(j, '{')) return json_fail(j, "__metadata__ must be an object");
    if (json_char(j, '}')) return true;
    do {
        if (!json_string(j, NULL, 0, NULL) || !json_char(j, ':')) return false;
        json_ws(j);
        if (j->i >= j->n || j->s[j->i] != '"' || !json_string(j, NULL, 0, NULL)) {
            return json_fail(j, "__metadata__ values must be strings");
        }
    } while (json_char(j, ','));
    return json_char(j, '}') || json_fail(j, "expected ',' or '}'");
}

#define ST_MAX_HEADER (100u << 20) // safetensors' own limit

static int open_safetensors(struct llt_tensor_set * set, const char * path) {
    struct tf_file * f = NULL;
    int rc = map_file(set, path, &f);
    if (rc != LLT_OK) return rc;
    if (f->size < 8) {
        return llt_set_error(LLT_EFORMAT, "cannot open '%s': bad safetensors header: the file has %llu bytes, "
            "too short for the header length", path, (unsigned long long) f->size);
    }
    uint64_t hlen;
    memcpy(&hlen, f->map, sizeof(hlen));
    if (hlen < 2 || hlen > f->size - 8 || hlen > ST_MAX_HEADER) {
        return llt_set_error(LLT_EFORMAT, "cannot open '%s': bad safetensors header: header length %llu "
            "does not fit the file (%llu bytes)", path, (unsigned long long) hlen, (unsigned long long) f->size);
    }
    struct json j = { .s = (const char *) f->map + 8, .n = (size_t) hlen };
    const uint64_t data_base = 8 + hlen, data_size = f->size - data_base;
    char name[1024];
    size_t len = 0;
    if (!json_char(&j, '{')) {
        json_fail(&j, "expected '{'");
    } else if (!json_char(&j, '}')) {
        do {
            if (!json_string(&j, name, sizeof(name), &len) || !json_char(&j, ':')) {
                json_fail(&j, "expected a tensor name and ':'");
                break;
            }
            if (strcmp(name, "__metadata__") == 0) {
                if (!st_metadata(&j)) break;
            } else if ((rc = st_entry(set, &j, name, len, data_base, data_size, path)) != LLT_OK) {
                if (!j.err) return rc; // a semantic error, already set
                break;
            }
        } while (json_char(&j, ','));
        if (!j.err && !json_char(&j, '}')) json_fail(&j, "expected ',' or '}'");
    }
    if (!j.err) {
        json_ws(&j);
        if (j.i != j.n) json_fail(&j, "trailing bytes after the JSON object");
    }
    if (j.err) {
        return llt_set_error(LLT_EFORMAT, "cannot open '%s': bad safetensors header: %s at byte %zu",
            path, j.err, (size_t) 8 + j.err_at);
    }
    return LLT_OK;
}

// ---- .npy --------------------------------------------------------------------------------

static const struct { char kind; int size; int type; } npy_dtypes[] = {
    { 'f', 2, GGML_TYPE_F16 }, { 'f', 4, GGML_TYPE_F32 }, { 'f', 8, GGML_TYPE_F64 },
    { 'i', 1, GGML_TYPE_I8 },  { 'i', 2, GGML_TYPE_I16 }, { 'i', 4, GGML_TYPE_I32 }, { 'i', 8, GGML_TYPE_I64 },
    { 'u', 1, LLT_TYPE_U8 },   { 'u', 2, LLT_TYPE_U16 },  { 'u', 4, LLT_TYPE_U32 },  { 'u', 8, LLT_TYPE_U64 },
    { 'b', 1, LLT_TYPE_BOOL },
};

static const char * npy_kind_desc(char kind) {
    switch (kind) {
        case 'c': return "complex";
        case 'O': return "Python objects";
        case 'U': case 'S': case 'a': return "strings";
        case 'V': return "raw or structured records";
        case 'M': case 'm': return "datetimes";
        case 'f': return "a float of this size";
        default:  return "not a numeric type lltrace knows";
    }
}

// descr like '<f4' into a type
static int npy_descr(const char * d, const char * path, int * type) {
    const char order = d[0];
    const char kind = order ? d[1] : '\0';
    const int size = kind ? atoi(d + 2) : 0;
    for (size_t k = 0; k < sizeof(npy_dtypes)/sizeof(npy_dtypes[0]); k++) {
        if (npy_dtypes[k].kind != kind || npy_dtypes[k].size != size) continue;
        if (order == '>' && size > 1) {
            return llt_set_error(LLT_EFORMAT, "cannot open '%s': big-endian dtype '%s' is not supported "
                "(save it with .astype('<%c%d'))", path, d, kind, size);
        }
        if (order != '<' && order != '|' && order != '=' && order != '>') break;
        *type = npy_dtypes[k].type;
        return LLT_OK;
    }
    return llt_set_error(LLT_EFORMAT, "cannot open '%s': unsupported dtype '%s' (%s); lltrace reads "
        "f2 f4 f8 i1 i2 i4 i8 u1 u2 u4 u8 b1", path, d, npy_kind_desc(kind));
}

// the header dict: {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }
static int npy_header(const char * h, size_t n, const char * path, int * type, bool * fortran,
                      uint64_t * shape, int * n_dims) {
    size_t i = 0;
    bool have_descr = false, have_order = false, have_shape = false;
#define NPY_WS() while (i < n && (h[i] == ' ' || h[i] == '\n' || h[i] == '\t')) i++
#define NPY_BAD(what) return llt_set_error(LLT_EFORMAT, "cannot open '%s': bad .npy header: %s", path, what)
    NPY_WS();
    if (i >= n || h[i++] != '{') NPY_BAD("expected '{'");
    for (;;) {
        NPY_WS();
        if (i < n && h[i] == '}') { i++; break; }
        if (i >= n || (h[i] != '\'' && h[i] != '"')) NPY_BAD("expected a quoted key");
        const char q = h[i++];
        const size_t k0 = i;
        while (i < n && h[i] != q) i++;
        if (i >= n) NPY_BAD("unterminated key");
        const size_t klen = i++ - k0;
        NPY_WS();
        if (i >= n || h[i++] != ':') NPY_BAD("expected ':'");
        NPY_WS();
        if (klen == 5 && memcmp(h + k0, "descr", 5) == 0) {
            if (i < n && h[i] == '[') {
                return llt_set_error(LLT_EFORMAT, "cannot open '%s': unsupported dtype (structured records)", path);
            }
            if (i >= n || (h[i] != '\'' && h[i] != '"')) NPY_BAD("descr must be a string");
            const char dq = h[i++];
            char d[16];
            size_t dl = 0;
            while (i < n && h[i] != dq && dl < sizeof(d) - 1) d[dl++] = h[i++];
            if (i >= n || h[i] != dq) NPY_BAD("bad descr");
            i++;
            d[dl] = '\0';
            int rc = npy_descr(d, path, type);
            if (rc != LLT_OK) return rc;
            have_descr = true;
        } else if (klen == 13 && memcmp(h + k0, "fortran_order", 13) == 0) {
            if (n - i >= 4 && memcmp(h + i, "True", 4) == 0) { *fortran = true; i += 4; }
            else if (n - i >= 5 && memcmp(h + i, "False", 5) == 0) { *fortran = false; i += 5; }
            else NPY_BAD("fortran_order must be True or False");
            have_order = true;
        } else if (klen == 5 && memcmp(h + k0, "shape", 5) == 0) {
            if (i >= n || h[i++] != '(') NPY_BAD("shape must be a tuple");
            *n_dims = 0;
            for (;;) {
                NPY_WS();
                if (i < n && h[i] == ')') { i++; break; }
                if (i >= n || !isdigit((unsigned char) h[i])) NPY_BAD("shape must hold non-negative integers");
                if (*n_dims == 8) NPY_BAD("too many dimensions");
                uint64_t v = 0;
                while (i < n && isdigit((unsigned char) h[i])) {
                    if (v > UINT64_MAX / 10 - 9) NPY_BAD("dimension too large");
                    v = v * 10 + (uint64_t) (h[i++] - '0');
                }
                if (i < n && h[i] == 'L') i++; // Python 2 long
                shape[(*n_dims)++] = v;
                NPY_WS();
                if (i < n && h[i] == ',') i++;
                else if (i >= n || h[i] != ')') NPY_BAD("expected ',' or ')' in shape");
            }
            have_shape = true;
        } else {
            NPY_BAD("unknown key");
        }
        NPY_WS();
        if (i < n && h[i] == ',') { i++; continue; }
        if (i < n && h[i] == '}') { i++; break; }
        NPY_BAD("expected ',' or '}'");
    }
    NPY_WS();
    if (i != n) NPY_BAD("trailing bytes after the dict");
    if (!have_descr || !have_order || !have_shape) NPY_BAD("needs descr, fortran_order and shape");
#undef NPY_WS
#undef NPY_BAD
    return LLT_OK;
}

// tensor name from a file name: "Qcur-0%23.npy" -> "Qcur-0#"
static void npy_name(const char * file, char * out, size_t cap) {
    const size_t n = strlen(file) - 4;
    size_t o = 0;
    for (size_t i = 0; i < n && o + 1 < cap; i++) {
        const int h = file[i] == '%' && i + 2 < n ? hex_n(file + i + 1, 2) : -1;
        if (h > 0) { out[o++] = (char) h; i += 2; }
        else out[o++] = file[i];
    }
    out[o] = '\0';
}

static int open_npy_file(struct llt_tensor_set * set, const char * path, const char * file_name) {
    struct tf_file * f = NULL;
    int rc = map_file(set, path, &f);
    if (rc != LLT_OK) return rc;
    const unsigned char * p = f->map;
    if (f->size < 10 || memcmp(p, "\x93NUMPY", 6) != 0) {
        return llt_set_error(LLT_EFORMAT, "cannot open '%s': not a .npy file (bad magic)", path);
    }
    const int major = p[6];
    if (major < 1 || major > 3) {
        return llt_set_error(LLT_EVERSION, "cannot open '%s': .npy format version %d.%d (lltrace knows 1, 2 and 3)",
            path, major, p[7]);
    }
    const size_t pre = major == 1 ? 10 : 12;
    if (f->size < pre) return llt_set_error(LLT_EFORMAT, "cannot open '%s': truncated .npy header", path);
    const uint64_t hlen = major == 1 ? (uint64_t) (p[8] | p[9] << 8)
                        : (uint64_t) p[8] | (uint64_t) p[9] << 8 | (uint64_t) p[10] << 16 | (uint64_t) p[11] << 24;
    if (pre + hlen > f->size) return llt_set_error(LLT_EFORMAT, "cannot open '%s': truncated .npy header", path);

    char name[1024];
    npy_name(file_name, name, sizeof(name));
    struct llt_tensor_info * t = NULL;
    if ((rc = add_tensor(set, name, strlen(name), set->n_files - 1, &t)) != LLT_OK) return rc;
    uint64_t shape[8];
    int n_dims = 0;
    rc = npy_header((const char *) p + pre, (size_t) hlen, path, &t->type, &t->fortran, shape, &n_dims);
    if (rc != LLT_OK) return rc;
    if ((rc = set_shape(t, shape, n_dims, path)) != LLT_OK) return rc;
    t->offset = pre + hlen;
    if (t->offset + t->bytes > f->size) {
        return llt_set_error(LLT_EFORMAT, "cannot open '%s': truncated (the data needs %llu bytes, the file has %llu)",
            path, (unsigned long long) (t->offset + t->bytes), (unsigned long long) f->size);
    }
    t->layer = layer_from_name(t->name);
    return LLT_OK;
}

static int cmp_str(const void * a, const void * b) {
    return strcmp(*(char * const *) a, *(char * const *) b);
}

static bool has_npy_suffix(const char * s) {
    const size_t n = strlen(s);
    return n > 4 && strcmp(s + n - 4, ".npy") == 0;
}

// every *.npy of a directory, in name order
static int open_npy_dir(struct llt_tensor_set * set, const char * dir) {
    DIR * d = opendir(dir);
    if (!d) return llt_set_error(LLT_EIO, "cannot open '%s': %s", dir, strerror(errno));
    char ** names = NULL;
    size_t n = 0, cap = 0;
    int rc = LLT_OK;
    char * path = NULL;
    for (struct dirent * e; (e = readdir(d)) != NULL;) {
        if (!has_npy_suffix(e->d_name)) continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            char ** nn = realloc(names, cap * sizeof(*nn));
            if (!nn) { rc = llt_set_error(LLT_ENOMEM, "out of memory"); goto done; }
            names = nn;
        }
        if (!(names[n] = strdup(e->d_name))) { rc = llt_set_error(LLT_ENOMEM, "out of memory"); goto done; }
        n++;
    }
    if (n == 0) {
        rc = llt_set_error(LLT_EFORMAT, "cannot open '%s': a directory without .npy files", dir);
        goto done;
    }
    qsort(names, n, sizeof(*names), cmp_str);
    if (!(path = malloc(strlen(dir) + 1 + 256 + 1))) { rc = llt_set_error(LLT_ENOMEM, "out of memory"); goto done; }
    for (size_t i = 0; i < n && rc == LLT_OK; i++) {
        sprintf(path, "%s/%s", dir, names[i]);
        rc = open_npy_file(set, path, names[i]);
    }
done:
    closedir(d);
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
    free(path);
    return rc;
}

// ---- open --------------------------------------------------------------------------------

int llt_tensor_set_open(const char * path, struct llt_tensor_set ** out) {
    *out = NULL;
    struct stat sb;
    if (stat(path, &sb) != 0) return llt_set_error(LLT_EIO, "cannot open '%s': %s", path, strerror(errno));
    struct llt_tensor_set * set = calloc(1, sizeof(*set));
    if (!set) return llt_set_error(LLT_ENOMEM, "out of memory");
    int rc;
    if (S_ISDIR(sb.st_mode)) {
        set->kind = LLT_TENSOR_SET_NPY;
        rc = open_npy_dir(set, path);
    } else {
        unsigned char magic[8] = {0};
        FILE * f = fopen(path, "rb");
        if (!f) {
            rc = llt_set_error(LLT_EIO, "cannot open '%s': %s", path, strerror(errno));
            goto done;
        }
        const size_t got = fread(magic, 1, sizeof(magic), f);
        fclose(f);
        const char * base = strrchr(path, '/');
        base = base ? base + 1 : path;
        if (got >= 4 && memcmp(magic, "GGUF", 4) == 0) {
            set->kind = LLT_TENSOR_SET_GGUF;
            rc = open_gguf(set, path);
        } else if (got >= 6 && memcmp(magic, "\x93NUMPY", 6) == 0) {
            set->kind = LLT_TENSOR_SET_NPY;
            rc = open_npy_file(set, path, has_npy_suffix(base) ? base : "tensor.npy");
        } else if (strstr(base, ".safetensors") || (got == 8 && magic[7] == 0 && magic[6] == 0)) {
            set->kind = LLT_TENSOR_SET_SAFETENSORS;
            rc = open_safetensors(set, path);
        } else {
            rc = llt_set_error(LLT_EFORMAT, "cannot open '%s': not a GGUF, safetensors or .npy file", path);
        }
    }
    if (rc == LLT_OK) rc = index_names(set, path);
done:
    if (rc != LLT_OK) {
        llt_tensor_set_close(set);
        return rc;
    }
    *out = set;
    return LLT_OK;
}

// ---- data --------------------------------------------------------------------------------

const void * llt_tensor_set_data(struct llt_tensor_set * set, int i) {
    if (i < 0 || i >= set->n) {
        llt_set_error(LLT_EINVAL, "no tensor %d (the set has %d)", i, set->n);
        return NULL;
    }
    const struct tf_file * f = &set->files[set->file_of[i]];
    return (const unsigned char *) f->map + set->tensors[i].offset;
}

// column-major (numpy shape s0..sk-1, s0 fastest) into row-major (sk-1 fastest)
static void fortran_to_c(const float * src, const struct llt_tensor_info * t, float * dst) {
    const int nd = t->n_dims;
    int64_t shape[4], fstride[4], idx[4] = {0};
    for (int d = 0; d < nd; d++) shape[d] = t->ne[nd - 1 - d]; // numpy order, outermost first
    for (int d = 0, s = 1; d < nd; d++) { fstride[d] = s; s *= shape[d]; }
    for (int64_t o = 0; o < t->n_elements; o++) {
        int64_t src_i = 0;
        for (int d = 0; d < nd; d++) src_i += idx[d] * fstride[d];
        dst[o] = src[src_i];
        for (int d = nd - 1; d >= 0; d--) { // row-major counter: the last axis fastest
            if (++idx[d] < shape[d]) break;
            idx[d] = 0;
        }
    }
}

int llt_tensor_set_read_f32(struct llt_tensor_set * set, int i, float * dst) {
    const void * src = llt_tensor_set_data(set, i);
    if (!src) return LLT_EINVAL;
    const struct llt_tensor_info * t = &set->tensors[i];
    if (!t->fortran) return llt_to_float(src, t->type, t->n_elements, dst);
    float * tmp = malloc((size_t) (t->n_elements > 0 ? t->n_elements : 1) * sizeof(float));
    if (!tmp) return llt_set_error(LLT_ENOMEM, "out of memory for tensor '%s'", t->name);
    int rc = llt_to_float(src, t->type, t->n_elements, tmp);
    if (rc == LLT_OK) fortran_to_c(tmp, t, dst);
    free(tmp);
    return rc;
}

// ---- writers -----------------------------------------------------------------------------

// a temp file next to path; commit_temp() renames it over path, or removes it on failure
static int open_temp(const char * path, char ** tmp_path, FILE ** out) {
    *out = NULL;
    *tmp_path = malloc(strlen(path) + 8);
    if (!*tmp_path) return llt_set_error(LLT_ENOMEM, "out of memory");
    sprintf(*tmp_path, "%s.XXXXXX", path);
    int fd = mkstemp(*tmp_path);
    if (fd < 0) {
        int rc = llt_set_error(LLT_EIO, "cannot write '%s': %s", path, strerror(errno));
        free(*tmp_path);
        *tmp_path = NULL;
        return rc;
    }
    if (fchmod(fd, 0644) != 0 || !(*out = fdopen(fd, "wb"))) {
        int rc = llt_set_error(LLT_EIO, "cannot write '%s': %s", path, strerror(errno));
        close(fd);
        unlink(*tmp_path);
        free(*tmp_path);
        *tmp_path = NULL;
        return rc;
    }
    return LLT_OK;
}

static int commit_temp(FILE * f, char * tmp_path, const char * path, int rc) {
    if (ferror(f) && rc == LLT_OK) rc = llt_set_error(LLT_EIO, "cannot write '%s': %s", path, strerror(errno));
    if (fclose(f) != 0 && rc == LLT_OK) rc = llt_set_error(LLT_EIO, "cannot write '%s': %s", path, strerror(errno));
    if (rc == LLT_OK && rename(tmp_path, path) != 0) {
        rc = llt_set_error(LLT_EIO, "cannot write '%s': %s", path, strerror(errno));
    }
    if (rc != LLT_OK) unlink(tmp_path);
    free(tmp_path);
    return rc;
}

static int check_shape(const char * name, const int64_t ne[4], int n_dims, int64_t * n_elements) {
    if (n_dims < 1 || n_dims > 4) return llt_set_error(LLT_EINVAL, "tensor '%s': %d dimensions (1 to 4)", name, n_dims);
    *n_elements = 1;
    for (int d = 0; d < n_dims; d++) {
        if (ne[d] < 0) return llt_set_error(LLT_EINVAL, "tensor '%s': negative dimension", name);
        *n_elements *= ne[d];
    }
    return LLT_OK;
}

int llt_npy_write(const char * dir, const char * name, const float * data, const int64_t ne[4], int n_dims) {
    int64_t n = 0;
    int rc = check_shape(name, ne, n_dims, &n);
    if (rc != LLT_OK) return rc;
    char * path = malloc(strlen(dir) + 1 + 3 * strlen(name) + 5);
    if (!path) return llt_set_error(LLT_ENOMEM, "out of memory");
    char * p = path + sprintf(path, "%s/", dir);
    for (const unsigned char * s = (const unsigned char *) name; *s; s++) {
        p += isalnum(*s) || strchr("._+#=-", *s) ? sprintf(p, "%c", *s) : sprintf(p, "%%%02X", *s);
    }
    strcpy(p, ".npy");

    // header: the dict, padded with spaces so that the data starts at a multiple of 64
    char hdr[256];
    int h = snprintf(hdr, sizeof(hdr), "{'descr': '<f4', 'fortran_order': False, 'shape': (");
    for (int d = n_dims - 1; d >= 0; d--) {
        h += snprintf(hdr + h, sizeof(hdr) - (size_t) h, "%lld%s", (long long) ne[d],
            d > 0 ? ", " : n_dims == 1 ? "," : ""); // (3, 4) but (3,)
    }
    h += snprintf(hdr + h, sizeof(hdr) - (size_t) h, "), }");
    const int total = (10 + h + 1 + 63) / 64 * 64;
    const unsigned char pre[10] = { 0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0,
                                    (unsigned char) ((total - 10) & 0xff), (unsigned char) ((total - 10) >> 8) };

    char * tmp = NULL;
    FILE * f = NULL;
    if ((rc = open_temp(path, &tmp, &f)) != LLT_OK) goto done;
    fwrite(pre, 1, sizeof(pre), f);
    fwrite(hdr, 1, (size_t) h, f);
    for (int i = 10 + h; i < total - 1; i++) fputc(' ', f);
    fputc('\n', f);
    fwrite(data, sizeof(float), (size_t) n, f);
    rc = commit_temp(f, tmp, path, LLT_OK);
done:
    free(path);
    return rc;
}

static void json_put_string(FILE * f, const char * s) {
    fputc('"', f);
    for (const unsigned char * p = (const unsigned char *) s; *p; p++) {
        if (*p == '"' || *p == '\\') fprintf(f, "\\%c", *p);
        else if (*p < 0x20) fprintf(f, "\\u%04x", *p);
        else fputc(*p, f);
    }
    fputc('"', f);
}

static int64_t desc_elements(const struct llt_tensor_desc * t) {
    int64_t n = 1;
    for (int d = 0; d < t->n_dims; d++) n *= t->ne[d];
    return n;
}

int llt_safetensors_write(const char * path, const struct llt_tensor_desc * tensors, int n,
                          int (*get)(int i, float * dst, void * user_data), void * user_data) {
    int64_t max_n = 1;
    for (int i = 0; i < n; i++) {
        int64_t ne = 0;
        int rc = check_shape(tensors[i].name, tensors[i].ne, tensors[i].n_dims, &ne);
        if (rc != LLT_OK) return rc;
        max_n = ne > max_n ? ne : max_n;
    }
    // the header, measured by writing it to a memory stream first
    char * hdr = NULL;
    size_t hlen = 0;
    FILE * m = open_memstream(&hdr, &hlen);
    if (!m) return llt_set_error(LLT_ENOMEM, "out of memory");
    fputc('{', m);
    uint64_t off = 0;
    for (int i = 0; i < n; i++) {
        const struct llt_tensor_desc * t = &tensors[i];
        const int64_t ne = desc_elements(t);
        if (i) fputc(',', m);
        json_put_string(m, t->name);
        fputs(":{\"dtype\":\"F32\",\"shape\":[", m);
        for (int d = t->n_dims - 1; d >= 0; d--) fprintf(m, "%lld%s", (long long) t->ne[d], d ? "," : "");
        fprintf(m, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long) off,
            (unsigned long long) (off + (uint64_t) ne * sizeof(float)));
        off += (uint64_t) ne * sizeof(float);
    }
    fputc('}', m);
    while ((ftell(m) & 7) != 0) fputc(' ', m); // the data starts 8-aligned
    if (fclose(m) != 0) {
        free(hdr);
        return llt_set_error(LLT_ENOMEM, "out of memory");
    }

    char * tmp = NULL;
    FILE * f = NULL;
    float * buf = NULL;
    int rc = open_temp(path, &tmp, &f);
    if (rc != LLT_OK) goto done;
    if (!(buf = malloc((size_t) max_n * sizeof(float)))) {
        rc = llt_set_error(LLT_ENOMEM, "out of memory");
        goto commit;
    }
    const uint64_t len64 = hlen;
    fwrite(&len64, sizeof(len64), 1, f);
    fwrite(hdr, 1, hlen, f);
    for (int i = 0; i < n && rc == LLT_OK; i++) {
        if ((rc = get(i, buf, user_data)) == LLT_OK) fwrite(buf, sizeof(float), (size_t) desc_elements(&tensors[i]), f);
    }
commit:
    rc = commit_temp(f, tmp, path, rc);
done:
    free(buf);
    free(hdr);
    return rc;
}
