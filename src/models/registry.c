// The weight registry: every tensor of a GGUF model file with its type, shape, size, bits per
// weight, layer and absolute file offset. Graph nodes name their weight sources through it.
// A model split in several files (llama-gguf-split) is registered whole: the tensors of every
// split, each offset in its own file, and the files' sizes added up.
#include "core/internal.h"

#include "gguf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct llt_registry {
    struct gguf_context * gguf;
    struct llt_weight *   weights;
    int                   n_weights;
    int32_t *             index;      // open addressing on the name hash: id, or -1
    uint32_t              index_mask;
    uint64_t              file_size;  // of every file of the model
};

// ---- checks before handing the file to gguf ----------------------------------------------

static int check_magic(const char * path, uint64_t * size) {
    if (llt_input_check(path, "model") != LLT_OK) return LLT_EIO;
    FILE * f = fopen(path, "rb");
    if (!f) {
        return llt_set_error(LLT_EIO, "cannot open model '%s': %s", path, strerror(errno));
    }
    struct stat sb;
    char magic[4] = {0};
    size_t n = fread(magic, 1, 4, f);
    int rc = fstat(fileno(f), &sb);
    fclose(f);
    if (rc != 0 || !S_ISREG(sb.st_mode)) {
        return llt_set_error(LLT_EIO, "cannot open model '%s': not a regular file", path);
    }
    if (n < 4 || memcmp(magic, "GGUF", 4) != 0) {
        return llt_set_error(LLT_EFORMAT, "cannot open model '%s': not a GGUF file (bad magic)", path);
    }
    *size = (uint64_t) sb.st_size;
    return LLT_OK;
}

// ---- the name index: capture looks weights up by name ------------------------------------

static bool build_index(struct llt_registry * reg) {
    uint32_t cap = 16;
    while (cap < (uint32_t) reg->n_weights * 2) cap *= 2;
    reg->index = malloc(cap * sizeof(int32_t));
    if (!reg->index) return false;
    memset(reg->index, 0xff, cap * sizeof(int32_t));
    reg->index_mask = cap - 1;
    for (int id = 0; id < reg->n_weights; id++) {
        uint32_t i = llt_str_hash(reg->weights[id].name) & reg->index_mask;
        while (reg->index[i] >= 0) i = (i + 1) & reg->index_mask;
        reg->index[i] = id;
    }
    return true;
}

// ---- load --------------------------------------------------------------------------------

// the tensors of one file of the model (its only file, or one of its splits) into the registry
static int add_file(struct llt_registry * reg, const char * path, const struct gguf_context * g, uint64_t file_size) {
    const int64_t n = gguf_get_n_tensors(g);
    const uint64_t data_offset = gguf_get_data_offset(g);
    struct llt_weight * grown = realloc(reg->weights, ((size_t) reg->n_weights + (size_t) n + 1) * sizeof(struct llt_weight));
    if (!grown) return llt_set_error(LLT_ENOMEM, "out of memory");
    reg->weights = grown;
    for (int64_t i = 0; i < n; i++) {
        struct llt_weight * w = &reg->weights[reg->n_weights];
        memset(w, 0, sizeof(*w));
        snprintf(w->name, sizeof(w->name), "%s", gguf_get_tensor_name(g, i));
        w->type = gguf_get_tensor_type(g, i);
        const int64_t * ne = gguf_get_tensor_ne(g, i);
        double nel = 1; // in floating point: a damaged file's shape may overflow an integer
        w->n_dims = 1;
        for (int d = 0; d < 4; d++) {
            w->ne[d] = ne[d];
            nel *= (double) ne[d];
            if (ne[d] != 1) w->n_dims = d + 1;
        }
        w->bytes = gguf_get_tensor_size(g, i);
        w->bpw = nel > 0 ? (double) w->bytes * 8.0 / nel : 0.0;
        w->layer = llt_layer_from_name(w->name);
        w->file_offset = data_offset + gguf_get_tensor_offset(g, i); // in its own file
        if (w->file_offset + w->bytes > file_size) {
            return llt_set_error(LLT_EFORMAT,
                "cannot open model '%s': truncated (tensor '%s' ends at byte %llu, the file has %llu)",
                path, w->name, (unsigned long long) (w->file_offset + w->bytes),
                (unsigned long long) file_size);
        }
        reg->n_weights++;
    }
    reg->file_size += file_size;
    return LLT_OK;
}

// The other files of a model split by llama-gguf-split (split.count > 1 in the first): named
// as llama.cpp names them, <prefix>-NNNNN-of-MMMMM.gguf, beside the first (llama_split_path).
static int add_splits(struct llt_registry * reg, const char * path) {
    const int64_t kc = gguf_find_key(reg->gguf, "split.count");
    if (kc < 0 || gguf_get_kv_type(reg->gguf, kc) != GGUF_TYPE_UINT16) return LLT_OK;
    const int count = gguf_get_val_u16(reg->gguf, kc);
    const int64_t kn = gguf_find_key(reg->gguf, "split.no");
    const int no = kn >= 0 && gguf_get_kv_type(reg->gguf, kn) == GGUF_TYPE_UINT16 ? gguf_get_val_u16(reg->gguf, kn) : 0;
    if (count <= 1) return LLT_OK;
    char suffix[64];
    snprintf(suffix, sizeof(suffix), "-%05d-of-%05d.gguf", no + 1, count);
    const size_t len = strlen(path), slen = strlen(suffix);
    if (len < slen || strcmp(path + len - slen, suffix) != 0) {
        return llt_set_error(LLT_EFORMAT, "cannot open model '%s': split %d of %d, but not named <prefix>%s", path, no + 1,
                             count, suffix);
    }
    int rc = LLT_OK;
    for (int i = 0; i < count && rc == LLT_OK; i++) {
        if (i == no) continue;
        char split[4096];
        snprintf(split, sizeof(split), "%.*s-%05d-of-%05d.gguf", (int) (len - slen), path, i + 1, count);
        uint64_t size = 0;
        rc = check_magic(split, &size);
        if (rc != LLT_OK) break;
        struct gguf_context * g = gguf_init_from_file(split, (struct gguf_init_params) { .no_alloc = true, .ctx = NULL });
        if (!g) {
            rc = llt_set_error(LLT_EFORMAT, "cannot open model '%s': corrupt or truncated GGUF header", split);
            break;
        }
        rc = add_file(reg, split, g, size);
        gguf_free(g);
    }
    return rc;
}

int llt_registry_load(const char * path, struct llt_registry ** out) {
    *out = NULL;
    uint64_t file_size = 0;
    int rc = check_magic(path, &file_size);
    if (rc != LLT_OK) return rc;

    struct llt_registry * reg = calloc(1, sizeof(*reg));
    if (!reg) return llt_set_error(LLT_ENOMEM, "out of memory");

    struct gguf_init_params gp = { .no_alloc = true, .ctx = NULL };
    reg->gguf = gguf_init_from_file(path, gp);
    if (!reg->gguf) {
        rc = llt_set_error(LLT_EFORMAT, "cannot open model '%s': corrupt or truncated GGUF header", path);
        goto done;
    }
    rc = add_file(reg, path, reg->gguf, file_size);
    if (rc == LLT_OK) rc = add_splits(reg, path);
    if (rc == LLT_OK && !build_index(reg)) rc = llt_set_error(LLT_ENOMEM, "out of memory");
done:
    if (rc != LLT_OK) {
        llt_registry_free(reg);
        return rc;
    }
    *out = reg;
    return LLT_OK;
}

void llt_registry_free(struct llt_registry * reg) {
    if (!reg) return;
    if (reg->gguf) gguf_free(reg->gguf);
    free(reg->weights);
    free(reg->index);
    free(reg);
}

// ---- lookups -----------------------------------------------------------------------------

int llt_registry_count(const struct llt_registry * reg) { return reg->n_weights; }
uint64_t llt_registry_file_size(const struct llt_registry * reg) { return reg->file_size; }

const struct llt_weight * llt_registry_get(const struct llt_registry * reg, int id) {
    return id >= 0 && id < reg->n_weights ? &reg->weights[id] : NULL;
}

int llt_registry_find(const struct llt_registry * reg, const char * name) {
    for (uint32_t i = llt_str_hash(name) & reg->index_mask; reg->index[i] >= 0; i = (i + 1) & reg->index_mask) {
        if (strcmp(reg->weights[reg->index[i]].name, name) == 0) return reg->index[i];
    }
    return -1;
}

int llt_registry_meta(const struct llt_registry * reg, const char * key, char * b, size_t sz) {
    if (!b || sz == 0) return llt_set_error(LLT_EINVAL, "no buffer for metadata '%s'", key);
    b[0] = '\0';
    int64_t k = gguf_find_key(reg->gguf, key);
    if (k < 0) return llt_set_error(LLT_ENOTFOUND, "no metadata '%s' in the model", key);
    switch (gguf_get_kv_type(reg->gguf, k)) {
        case GGUF_TYPE_UINT8:   snprintf(b, sz, "%u",   gguf_get_val_u8  (reg->gguf, k)); break;
        case GGUF_TYPE_INT8:    snprintf(b, sz, "%d",   gguf_get_val_i8  (reg->gguf, k)); break;
        case GGUF_TYPE_UINT16:  snprintf(b, sz, "%u",   gguf_get_val_u16 (reg->gguf, k)); break;
        case GGUF_TYPE_INT16:   snprintf(b, sz, "%d",   gguf_get_val_i16 (reg->gguf, k)); break;
        case GGUF_TYPE_UINT32:  snprintf(b, sz, "%u",   gguf_get_val_u32 (reg->gguf, k)); break;
        case GGUF_TYPE_INT32:   snprintf(b, sz, "%d",   gguf_get_val_i32 (reg->gguf, k)); break;
        case GGUF_TYPE_UINT64:  snprintf(b, sz, "%llu", (unsigned long long) gguf_get_val_u64(reg->gguf, k)); break;
        case GGUF_TYPE_INT64:   snprintf(b, sz, "%lld", (long long) gguf_get_val_i64(reg->gguf, k)); break;
        case GGUF_TYPE_FLOAT32: snprintf(b, sz, "%g",   gguf_get_val_f32 (reg->gguf, k)); break;
        case GGUF_TYPE_FLOAT64: snprintf(b, sz, "%g",   gguf_get_val_f64 (reg->gguf, k)); break;
        case GGUF_TYPE_BOOL:    snprintf(b, sz, "%s",   gguf_get_val_bool(reg->gguf, k) ? "true" : "false"); break;
        case GGUF_TYPE_STRING:  snprintf(b, sz, "%s",   gguf_get_val_str (reg->gguf, k)); break;
        default:                snprintf(b, sz, "[array of %zu]", gguf_get_arr_n(reg->gguf, k)); break;
    }
    return LLT_OK;
}

void llt_registry_copy_meta(const struct llt_registry * reg, struct gguf_context * dst) {
    // general.architecture, general.name and every <arch>.* key: the model's hyperparameters
    const int64_t ka = gguf_find_key(reg->gguf, "general.architecture");
    if (ka < 0 || gguf_get_kv_type(reg->gguf, ka) != GGUF_TYPE_STRING) return;
    const char * arch = gguf_get_val_str(reg->gguf, ka);
    const size_t n = strlen(arch);
    struct gguf_context * keep = gguf_init_empty();
    for (int64_t k = 0; k < gguf_get_n_kv(reg->gguf); k++) {
        const char * key = gguf_get_key(reg->gguf, k);
        const bool wanted = strcmp(key, "general.architecture") == 0 || strcmp(key, "general.name") == 0 ||
                            (strncmp(key, arch, n) == 0 && key[n] == '.');
        const enum gguf_type t = gguf_get_kv_type(reg->gguf, k);
        if (!wanted || t == GGUF_TYPE_ARRAY) continue;
        switch (t) {
            case GGUF_TYPE_UINT32:  gguf_set_val_u32 (keep, key, gguf_get_val_u32 (reg->gguf, k)); break;
            case GGUF_TYPE_INT32:   gguf_set_val_i32 (keep, key, gguf_get_val_i32 (reg->gguf, k)); break;
            case GGUF_TYPE_UINT64:  gguf_set_val_u64 (keep, key, gguf_get_val_u64 (reg->gguf, k)); break;
            case GGUF_TYPE_FLOAT32: gguf_set_val_f32 (keep, key, gguf_get_val_f32 (reg->gguf, k)); break;
            case GGUF_TYPE_BOOL:    gguf_set_val_bool(keep, key, gguf_get_val_bool(reg->gguf, k)); break;
            case GGUF_TYPE_STRING:  gguf_set_val_str (keep, key, gguf_get_val_str (reg->gguf, k)); break;
            default: break;
        }
    }
    gguf_set_kv(dst, keep);
    gguf_free(keep);
}
