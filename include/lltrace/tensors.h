// lltrace/tensors.h: tensor types, statistics, element diffs and tensor sets (GGUF, safetensors, .npy). Part of lltrace.h.
#pragma once

#include "lltrace/core.h"

#ifdef __cplusplus
extern "C" {
#endif

//
// Element types: every ggml type (enum ggml_type, quantized ones included) plus the
// LLT_TYPE_* kinds that numpy and safetensors have and ggml lacks.

enum llt_xtype {
    LLT_TYPE_U8 = 1000,
    LLT_TYPE_U16,
    LLT_TYPE_U32,
    LLT_TYPE_U64,
    LLT_TYPE_BOOL,
};

const char * llt_type_name(int type);       // "f32", "q4_K", "u8", "bool"; "?" if unknown
int64_t      llt_type_block_size(int type); // elements per block; 0 if unknown
size_t       llt_type_block_bytes(int type); // bytes per block; 0 if unknown

// Converts n elements (a multiple of the block size) of any type to float.
int  llt_to_float(const void * src, int type, int64_t n, float * dst);

struct llt_stats {
    int64_t n;      // elements
    int64_t n_nan;
    int64_t n_pinf;
    int64_t n_ninf;
    int64_t n_zero; // +0 and -0
    double  min, max, mean, std, absmax; // over the finite values, std of the population; 0 if none
};

// Statistics of n elements of any type, dequantized in small chunks (no allocation).
int  llt_stats_compute(const void * data, int type, int64_t n, struct llt_stats * out);

// Relative differences divide by max(|a|, LLT_DIFF_REL_EPS): below it a value counts as zero,
// which is the scale of the default absolute tolerance.
#define LLT_DIFF_REL_EPS       1e-6
#define LLT_DIFF_DEFAULT_ABS   1e-6
#define LLT_DIFF_DEFAULT_REL   1e-4

// B against A, the reference. The metrics are over the pairs where both values are finite.
// Element i is within tolerance if |a-b| <= tol_abs or |a-b| <= tol_rel*|a|; a non-finite
// pair is within tolerance only if both are NaN or both are the same infinity.
struct llt_diff {
    int64_t n;             // elements compared
    int64_t n_finite;      // pairs where both values are finite
    int64_t a_nan, a_inf, b_nan, b_inf;
    int64_t n_exceed;      // elements outside tolerance
    int64_t max_abs_index; // element of the largest |a-b| (ne[0] innermost), -1 if none
    double  max_abs, mean_abs;
    double  max_rel, mean_rel;
    double  rmse;
    double  nmse;          // sum (a-b)^2 / sum a^2; 0 if both are 0, inf if only a is 0
    double  cosine;        // 1 if both are all zero, 0 if one is
};

int  llt_diff_compute(const float * a, const float * b, int64_t n, double tol_abs, double tol_rel,
                      struct llt_diff * out);

// ---- tensor sets: GGUF files, safetensors files, directories of .npy ---------------------
//
// A GGUF dump written by lltrace (docs/dump-format.md) carries per tensor its execution order,
// layer, step ...: version 2 as one array key per field, an element per tensor in the file's
// order; version 1 as one key per tensor and field. llt_tensor_set_meta_int() reads either
// under version 1's key (LLT_DUMP_KEY_ORDER with the tensor's name, ...).
#define LLT_DUMP_VERSION 2
#define LLT_DUMP_KEY_FIELD "lltrace.tensors.%s"      // version 2: an array per field
#define LLT_DUMP_KEY_ORDER "lltrace.tensor.%s.order" // version 1: integer, by tensor name
#define LLT_DUMP_KEY_LAYER "lltrace.tensor.%s.layer" // integer, optional
// and the run's parameters as a JSON object (type_k, type_v, flash_attn, ...) under this one:
#define LLT_DUMP_KEY_PARAMS "lltrace.params"

enum llt_tensor_set_kind {
    LLT_TENSOR_SET_GGUF,
    LLT_TENSOR_SET_SAFETENSORS,
    LLT_TENSOR_SET_NPY, // a directory of .npy files, or one .npy file
};

struct llt_tensor_info {
    const char * name;       // borrowed, lives with the set
    int32_t      type;       // enum ggml_type or LLT_TYPE_*
    int32_t      n_dims;
    int64_t      ne[4];      // elements per dim, ne[0] innermost: numpy/torch shapes reversed
    int64_t      n_elements;
    uint64_t     bytes;      // size of the data in the file
    uint64_t     offset;     // absolute byte offset of the data in its file
    int64_t      order;      // execution order from the dump's metadata, else -1
    int32_t      layer;      // from the metadata or the name (blk.N., -N, layers.N.), else -1
    bool         fortran;    // .npy stored column-major (reads return it row-major)
};

struct llt_tensor_set;
struct llt_gguf;

// Opens a tensor set; reads headers only (data is mapped, not loaded). Checks that every
// tensor lies inside its file. caller frees with llt_tensor_set_close()
int  llt_tensor_set_open(const char * path, struct llt_tensor_set ** out);
void llt_tensor_set_close(struct llt_tensor_set * set);

enum llt_tensor_set_kind       llt_tensor_set_kind (const struct llt_tensor_set * set);
const char *                   llt_tensor_set_kind_name(enum llt_tensor_set_kind kind); // "gguf"...
int                            llt_tensor_set_count(const struct llt_tensor_set * set);
const struct llt_tensor_info * llt_tensor_set_get  (const struct llt_tensor_set * set, int i); // borrowed, lives with set
int                            llt_tensor_set_find (const struct llt_tensor_set * set, const char * name); // index or -1
// the GGUF metadata of a GGUF set, else NULL (borrowed, lives with set; read with llt_gguf_*)
const struct llt_gguf *        llt_tensor_set_gguf (const struct llt_tensor_set * set);
// a metadata integer of a GGUF set (any integer type); false if absent
bool                           llt_tensor_set_meta_int(const struct llt_tensor_set * set, const char * key, int64_t * out);
// the stored bytes of tensor i (info->bytes); NULL and an error if unreadable (borrowed, lives with set)
const void *                   llt_tensor_set_data (struct llt_tensor_set * set, int i);
// tensor i as n_elements floats, dequantized, row-major
int                            llt_tensor_set_read_f32(struct llt_tensor_set * set, int i, float * dst);

// ---- GGUF metadata, as lltrace's own reader holds it --------------------------------------
//
// Keys are hashed when the file opens, so a lookup costs the same in a file of 10 keys or of
// 100,000 (ggml's gguf.h scans them all). Value types are GGUF's numbers (gguf.h's enum
// gguf_type). Strings are NUL-terminated copies, arrays aligned copies; every pointer is
// borrowed and lives with the set. A getter asked for the wrong type returns NULL, 0 or -1.
enum llt_gguf_type {
    LLT_GGUF_U8, LLT_GGUF_I8, LLT_GGUF_U16, LLT_GGUF_I16, LLT_GGUF_U32, LLT_GGUF_I32, LLT_GGUF_F32,
    LLT_GGUF_BOOL, LLT_GGUF_STRING, LLT_GGUF_ARRAY, LLT_GGUF_U64, LLT_GGUF_I64, LLT_GGUF_F64,
    LLT_GGUF_TYPE_COUNT,
};

uint32_t     llt_gguf_version    (const struct llt_gguf * g);
int64_t      llt_gguf_n_kv       (const struct llt_gguf * g);
size_t       llt_gguf_alignment  (const struct llt_gguf * g);
uint64_t     llt_gguf_data_offset(const struct llt_gguf * g); // absolute byte offset of the data section
int64_t      llt_gguf_find_key   (const struct llt_gguf * g, const char * key); // index or -1
const char * llt_gguf_key        (const struct llt_gguf * g, int64_t k);
int          llt_gguf_kv_type    (const struct llt_gguf * g, int64_t k); // enum llt_gguf_type, -1 if no key k
size_t       llt_gguf_type_size  (int type);                             // bytes of a scalar; 0 for strings and arrays
const char * llt_gguf_val_str    (const struct llt_gguf * g, int64_t k);
const void * llt_gguf_val_data   (const struct llt_gguf * g, int64_t k); // a scalar, llt_gguf_type_size bytes
int          llt_gguf_arr_type   (const struct llt_gguf * g, int64_t k);
size_t       llt_gguf_arr_n      (const struct llt_gguf * g, int64_t k);
const void * llt_gguf_arr_data   (const struct llt_gguf * g, int64_t k); // scalars only
const char * llt_gguf_arr_str    (const struct llt_gguf * g, int64_t k, size_t i);

// Writes dir/<name>.npy ('<f4', C order, numpy shape = ne reversed) through a temp file and a
// rename. Bytes of name outside [A-Za-z0-9._+#=-] are written %XX; the reader decodes them.
int  llt_npy_write(const char * dir, const char * name, const float * data, const int64_t ne[4], int n_dims);

struct llt_tensor_desc {
    const char * name;
    int32_t      n_dims;
    int64_t      ne[4]; // ne[0] innermost
};
// Writes F32 tensors into one safetensors file through a temp file and a rename; get() fills
// tensor i's data (its elements, row-major) and returns 0 or an LLT_E* code.
int  llt_safetensors_write(const char * path, const struct llt_tensor_desc * tensors, int n,
                           int (*get)(int i, float * dst, void * user_data), void * user_data);

#ifdef __cplusplus
}
#endif
