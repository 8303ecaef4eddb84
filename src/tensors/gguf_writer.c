// A streaming GGUF writer: see gguf_writer.h for the layout and why it exists.
#include "tensors/gguf_writer.h"

#include "core/internal.h"

#include <string.h>

static void put(struct llt_gguf_writer * w, const void * p, size_t n) { fwrite(p, 1, n, w->f); }
static void put_u32(struct llt_gguf_writer * w, uint32_t v) { put(w, &v, sizeof(v)); }
static void put_i32(struct llt_gguf_writer * w, int32_t v) { put(w, &v, sizeof(v)); }
static void put_u64(struct llt_gguf_writer * w, uint64_t v) { put(w, &v, sizeof(v)); }
static void put_i64(struct llt_gguf_writer * w, int64_t v) { put(w, &v, sizeof(v)); }

static void put_str(struct llt_gguf_writer * w, const char * s) {
    const uint64_t n = strlen(s);
    put_u64(w, n);
    put(w, s, n);
}

// bytes of a scalar value; 0 for strings and arrays
static size_t scalar_size(enum gguf_type t) {
    switch (t) {
        case GGUF_TYPE_UINT8: case GGUF_TYPE_INT8: case GGUF_TYPE_BOOL:        return 1;
        case GGUF_TYPE_UINT16: case GGUF_TYPE_INT16:                           return 2;
        case GGUF_TYPE_UINT32: case GGUF_TYPE_INT32: case GGUF_TYPE_FLOAT32:   return 4;
        case GGUF_TYPE_UINT64: case GGUF_TYPE_INT64: case GGUF_TYPE_FLOAT64:   return 8;
        default:                                                               return 0;
    }
}

// key k of src as GGUF writes it: any type, arrays of strings included
static void put_kv(struct llt_gguf_writer * w, const struct gguf_context * src, int64_t k) {
    const enum gguf_type t = gguf_get_kv_type(src, k);
    put_str(w, gguf_get_key(src, k));
    put_i32(w, (int32_t) t);
    if (t == GGUF_TYPE_STRING) {
        put_str(w, gguf_get_val_str(src, k));
    } else if (t == GGUF_TYPE_ARRAY) {
        const enum gguf_type at = gguf_get_arr_type(src, k);
        const size_t n = gguf_get_arr_n(src, k);
        put_i32(w, (int32_t) at);
        put_u64(w, n);
        if (at == GGUF_TYPE_STRING) {
            for (size_t i = 0; i < n; i++) put_str(w, gguf_get_arr_str(src, k, i));
        } else {
            put(w, gguf_get_arr_data(src, k), n * scalar_size(at));
        }
    } else {
        put(w, gguf_get_val_data(src, k), scalar_size(t));
    }
}

int llt_gguf_writer_begin(struct llt_gguf_writer * w, FILE * f, const struct gguf_context * global,
                          int64_t n_kv, int64_t n_tensors) {
    const int64_t n_global = global ? gguf_get_n_kv(global) : 0;
    *w = (struct llt_gguf_writer) {
        .f = f, .alignment = global ? gguf_get_alignment(global) : GGUF_DEFAULT_ALIGNMENT,
        .n_kv_left = n_kv, .n_tensors_left = n_tensors,
    };
    if (n_kv < 0 || n_tensors < 0) return llt_set_error(LLT_EINVAL, "negative GGUF counts");
    put(w, "GGUF", 4);
    put_u32(w, GGUF_VERSION);
    put_i64(w, n_tensors);
    put_i64(w, n_global + n_kv);
    for (int64_t k = 0; k < n_global; k++) put_kv(w, global, k);
    return ferror(f) ? llt_set_error(LLT_EIO, "cannot write GGUF header") : LLT_OK;
}

void llt_gguf_writer_kv_str(struct llt_gguf_writer * w, const char * key, const char * value) {
    put_str(w, key);
    put_i32(w, GGUF_TYPE_STRING);
    put_str(w, value);
    w->n_kv_left--;
}

void llt_gguf_writer_kv_i64(struct llt_gguf_writer * w, const char * key, int64_t value) {
    put_str(w, key);
    put_i32(w, GGUF_TYPE_INT64);
    put_i64(w, value);
    w->n_kv_left--;
}

void llt_gguf_writer_tensor(struct llt_gguf_writer * w, const char * name, int type, int n_dims,
                            const int64_t ne[4], uint64_t size) {
    put_str(w, name);
    put_u32(w, (uint32_t) n_dims);
    for (int d = 0; d < n_dims; d++) put_i64(w, ne[d]);
    put_i32(w, type);
    put_u64(w, w->offset);
    w->offset += (size + w->alignment - 1) / w->alignment * w->alignment;
    w->n_tensors_left--;
}

void llt_gguf_writer_pad(struct llt_gguf_writer * w) {
    static const char zeros[64];
    const long at = ftell(w->f);
    if (at < 0) return;
    size_t n = (w->alignment - (size_t) at % w->alignment) % w->alignment;
    while (n > 0) {
        const size_t k = n < sizeof(zeros) ? n : sizeof(zeros);
        put(w, zeros, k);
        n -= k;
    }
}

int llt_gguf_writer_end(struct llt_gguf_writer * w) {
    if (w->n_kv_left != 0 || w->n_tensors_left != 0) {
        return llt_set_error(LLT_EINVAL, "GGUF writer: %lld keys and %lld tensors announced but not written",
                             (long long) w->n_kv_left, (long long) w->n_tensors_left);
    }
    return ferror(w->f) ? llt_set_error(LLT_EIO, "cannot write GGUF file") : LLT_OK;
}
