// Tensor sets: one reader for GGUF files (models and lltrace dumps), safetensors files and
// directories of .npy files, and writers for .npy and safetensors. This file holds the set,
// its name index, the GGUF reader, the dispatch on a file's kind and data access;
// safetensors.c and npy.c hold those formats' readers and writers.
//
// Only headers are parsed; files are mapped and a tensor's bytes are touched when asked for.
// Every header is validated before a tensor is handed out: a tensor never points outside its
// file. Formats:
//   GGUF         parsed by gguf_reader.c (keys and names hashed once: opening is linear).
//   safetensors  1. u64 little-endian N  2. N bytes of JSON: {"name": {"dtype": "F32",
//                "shape": [outermost, ..., innermost], "data_offsets": [begin, end]}, ...,
//                "__metadata__": {"k": "v"}}  3. the data; offsets are relative to it.
//   .npy         1. "\x93NUMPY" 2. major, minor version bytes 3. header length (u16 in v1,
//                u32 in v2/v3) 4. a Python dict literal {'descr': '<f4', 'fortran_order':
//                False, 'shape': (3, 4), } padded with spaces and '\n' 5. the data.
// numpy and torch shapes are outermost first; ggml's ne[0] is the innermost: shapes are reversed.
#include "tensors/tensor_set.h"

#include "tensors/gguf_reader.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

// ---- the set -----------------------------------------------------------------------------

static const char * kind_names[] = { "gguf", "safetensors", "npy" };
_Static_assert(sizeof(kind_names)/sizeof(kind_names[0]) == LLT_TENSOR_SET_NPY + 1, "kind names");

const char * llt_tensor_set_kind_name(enum llt_tensor_set_kind kind) {
    return (unsigned) kind <= LLT_TENSOR_SET_NPY ? kind_names[kind] : "?";
}

enum llt_tensor_set_kind llt_tensor_set_kind(const struct llt_tensor_set * set) { return set->kind; }
int llt_tensor_set_count(const struct llt_tensor_set * set) { return set->n; }
const struct llt_gguf * llt_tensor_set_gguf(const struct llt_tensor_set * set) { return set->gguf; }

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
    llt_gguf_free(set->gguf);
    free(set->files);
    free(set->tensors);
    free(set->file_of);
    free(set->slots);
    free(set);
}

// maps a whole file; an empty file maps to NULL
int llt_tf_map_file(struct llt_tensor_set * set, const char * path, struct tf_file ** out) {
    struct tf_file * files = realloc(set->files, (size_t) (set->n_files + 1) * sizeof(*files));
    if (!files) return llt_set_error(LLT_ENOMEM, "out of memory");
    set->files = files;
    struct tf_file * f = &files[set->n_files];
    memset(f, 0, sizeof(*f));
    if (!(f->path = strdup(path))) return llt_set_error(LLT_ENOMEM, "out of memory");
    set->n_files++;

    int rc = llt_input_check(path, NULL); // a FIFO would block the open
    if (rc != LLT_OK) return rc;
    int fd = open(path, O_RDONLY | O_NONBLOCK);
    if (fd < 0) return llt_set_error(LLT_EIO, "cannot open '%s': %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) { // replaced since the check
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
int llt_tf_add_tensor(struct llt_tensor_set * set, const char * name, size_t name_len, int fi,
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
int llt_tf_set_shape(struct llt_tensor_info * t, const uint64_t * shape, int n_dims, const char * path) {
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

// ---- hex digits: JSON \u escapes and %XX in .npy file names ---------------------------

static int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// n hex digits, or -1
int llt_tf_hex_n(const char * p, int n) {
    int v = 0;
    for (int k = 0; k < n; k++) {
        const int h = hex_digit(p[k]);
        if (h < 0) return -1;
        v = v << 4 | h;
    }
    return v;
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
int32_t llt_tf_layer_from_name(const char * name) {
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

// a version-2 dump's array of an integer field, an element per tensor; NULL if it has none
static const int64_t * dump_field(const struct llt_tensor_set * set, const char * field) {
    char key[96];
    snprintf(key, sizeof(key), LLT_DUMP_KEY_FIELD, field);
    const int64_t k = llt_gguf_find_key(set->gguf, key);
    if (llt_gguf_arr_type(set->gguf, k) != LLT_GGUF_I64 || llt_gguf_arr_n(set->gguf, k) != (size_t) llt_gguf_n_tensors(set->gguf)) {
        return NULL;
    }
    return llt_gguf_arr_data(set->gguf, k);
}

// A per-tensor key of version 1, "lltrace.tensor.<name>.<field>", read from version 2's array
// of the field (a tensor's set index is its index in the file). src -1 (not a source) reads
// as absent, as version 1 wrote no key for it.
static bool dump_tensor_key(const struct llt_tensor_set * set, const char * key, int64_t * out) {
    static const char prefix[] = "lltrace.tensor.";
    if (strncmp(key, prefix, sizeof(prefix) - 1) != 0) return false;
    const char * name = key + sizeof(prefix) - 1;
    const char * dot = strrchr(name, '.'); // fields have no dot, names may
    char tname[GGML_MAX_NAME + 1];
    if (!dot || dot == name || (size_t) (dot - name) >= sizeof(tname)) return false;
    memcpy(tname, name, (size_t) (dot - name));
    tname[dot - name] = '\0';
    const int i = llt_tensor_set_find(set, tname);
    const int64_t * values = i >= 0 ? dump_field(set, dot + 1) : NULL;
    if (!values || (strcmp(dot + 1, "src") == 0 && values[i] < 0)) return false;
    *out = values[i];
    return true;
}

bool llt_tensor_set_meta_int(const struct llt_tensor_set * set, const char * key, int64_t * out) {
    if (!set->gguf) return false;
    const int64_t k = llt_gguf_find_key(set->gguf, key);
    if (k < 0) return dump_tensor_key(set, key, out);
    const void * p = llt_gguf_val_data(set->gguf, k); // aligned for its type
    switch (llt_gguf_kv_type(set->gguf, k)) {
        case LLT_GGUF_U8:  *out = *(const uint8_t  *) p; return true;
        case LLT_GGUF_I8:  *out = *(const int8_t   *) p; return true;
        case LLT_GGUF_U16: *out = *(const uint16_t *) p; return true;
        case LLT_GGUF_I16: *out = *(const int16_t  *) p; return true;
        case LLT_GGUF_U32: *out = *(const uint32_t *) p; return true;
        case LLT_GGUF_I32: *out = *(const int32_t  *) p; return true;
        case LLT_GGUF_U64: *out = (int64_t) *(const uint64_t *) p; return true;
        case LLT_GGUF_I64: *out = *(const int64_t  *) p; return true;
        default:           return false;
    }
}

static int open_gguf(struct llt_tensor_set * set, const char * path) {
    struct tf_file * f = NULL;
    int rc = llt_tf_map_file(set, path, &f);
    if (rc != LLT_OK) return rc;
    if ((rc = llt_gguf_read(f->map, f->size, path, &set->gguf)) != LLT_OK) return rc;
    const int64_t n = llt_gguf_n_tensors(set->gguf);
    const uint64_t data_offset = llt_gguf_data_offset(set->gguf);
    // a dump's execution order and layers: version 2's arrays, else version 1's keys
    const int64_t * order = dump_field(set, "order"), * layer = dump_field(set, "layer");
    for (int64_t i = 0; i < n; i++) {
        const struct llt_gguf_tensor * gt = llt_gguf_tensor(set->gguf, i);
        struct llt_tensor_info * t = NULL;
        if ((rc = llt_tf_add_tensor(set, gt->name, gt->name_len, 0, &t)) != LLT_OK) return rc;
        const char * name = t->name;
        t->type = gt->type;
        t->n_elements = 1;
        t->n_dims = 1;
        for (int d = 0; d < 4; d++) {
            t->ne[d] = gt->ne[d];
            t->n_elements *= gt->ne[d];
            if (gt->ne[d] != 1) t->n_dims = d + 1;
        }
        t->bytes = gt->bytes;
        t->offset = data_offset + gt->offset;
        if (gt->offset > f->size || t->offset < gt->offset || t->offset > f->size || t->bytes > f->size - t->offset) {
            return llt_set_error(LLT_EFORMAT,
                "cannot open '%s': truncated (tensor '%s' ends at byte %llu, the file has %llu)",
                path, name, (unsigned long long) (t->offset + t->bytes), (unsigned long long) f->size);
        }
        char key[512];
        int64_t v = 0;
        snprintf(key, sizeof(key), LLT_DUMP_KEY_ORDER, name);
        if (order) t->order = order[i];
        else if (llt_tensor_set_meta_int(set, key, &v)) t->order = v;
        snprintf(key, sizeof(key), LLT_DUMP_KEY_LAYER, name);
        if (layer) t->layer = (int32_t) layer[i];
        else t->layer = llt_tensor_set_meta_int(set, key, &v) ? (int32_t) v : llt_tf_layer_from_name(name);
    }
    return LLT_OK;
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
        rc = llt_tf_open_npy_dir(set, path);
    } else if ((rc = llt_input_check(path, NULL)) != LLT_OK) {
        goto done;
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
            rc = llt_tf_open_npy_file(set, path, llt_tf_has_npy_suffix(base) ? base : "tensor.npy");
        } else if (strstr(base, ".safetensors") || (got == 8 && magic[7] == 0 && magic[6] == 0)) {
            set->kind = LLT_TENSOR_SET_SAFETENSORS;
            rc = llt_tf_open_safetensors(set, path);
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

int llt_tf_check_shape(const char * name, const int64_t ne[4], int n_dims, int64_t * n_elements) {
    if (n_dims < 1 || n_dims > 4) return llt_set_error(LLT_EINVAL, "tensor '%s': %d dimensions (1 to 4)", name, n_dims);
    *n_elements = 1;
    for (int d = 0; d < n_dims; d++) {
        if (ne[d] < 0) return llt_set_error(LLT_EINVAL, "tensor '%s': negative dimension", name);
        *n_elements *= ne[d];
    }
    return LLT_OK;
}
