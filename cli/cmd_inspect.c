// lltrace inspect: what a GGUF file (a model or a dump) holds: metadata, tensor table, first
// values of every tensor (dequantized), per-tensor statistics and the quantization blocks of a
// quantized tensor. Safetensors files and .npy directories work too (they have no metadata).
#include "cli.h"
#include "output.h"
#include "lltrace.h"

#include "gguf.h"

#include <fnmatch.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// ---- options -----------------------------------------------------------------------------

struct inspect_opts {
    const char * path;
    const char * tensor;    // only the tensors this glob matches (case-sensitive, like every name pattern)
    const char * blocks;    // show the blocks of this tensor
    int64_t      show_data; // first N values of every tensor; 0: none
    int64_t      n_blocks;
    enum out_format format;
    bool         stats;
    bool         no_metadata;
};

static const char * usage_text =
    "usage: lltrace inspect FILE [options]\n"
    "\n"
    "Prints what a GGUF file (a model or an lltrace dump) holds: metadata, then a table of\n"
    "its tensors. Safetensors files and directories of .npy files work too.\n"
    "\n"
    "options:\n"
    "  --show-data [N]  the first N values of every tensor, dequantized (default N: 10)\n"
    "  --tensor GLOB    only the tensors whose name matches GLOB ('blk.0.*'; case-sensitive)\n"
    "  --no-metadata    leave out the metadata keys\n"
    "  --stats          min, max, mean, std, absmax and NaN/Inf/zero counts per tensor\n"
    "  --blocks NAME    the quantization blocks of a quantized tensor: scales, mins, quants\n"
    "  --n-blocks N     how many blocks --blocks shows (default: 4)\n"
    "  --format FMT     table (default), csv or json (docs/commands/README.md)\n"
    "  -h, --help       this help\n"
    "\n"
    "Exit status: 0 done (a --tensor that matches nothing is a warning); 1 the output could not\n"
    "be written; 2 bad usage or an unreadable file.\n";

#define META_ARRAY_HEAD 8  // array elements shown
#define META_STR_MAX    96 // characters of a string shown in a table

static bool parse_opts(int argc, char ** argv, struct inspect_opts * o, bool * help) {
    for (int i = 1; i < argc; i++) {
        const char * a = argv[i];
        const char * v = NULL;
        if (cli_is_help(a)) {
            *help = true;
            return true;
        } else if (strcmp(a, "--show-data") == 0) {
            o->show_data = 10;
            // the count is optional: take the next argument only if it is a number
            if (i + 1 < argc && argv[i + 1][0] >= '0' && argv[i + 1][0] <= '9') {
                if (!cli_parse_int(a, argv[++i], 1, INT32_MAX, &o->show_data)) return false;
            }
        } else if (strcmp(a, "--tensor") == 0) {
            if (!(o->tensor = cli_value(argc, argv, &i))) return false;
        } else if (strcmp(a, "--blocks") == 0) {
            if (!(o->blocks = cli_value(argc, argv, &i))) return false;
        } else if (strcmp(a, "--n-blocks") == 0) {
            if (!(v = cli_value(argc, argv, &i)) || !cli_parse_int(a, v, 1, 1 << 20, &o->n_blocks)) return false;
        } else if (strcmp(a, "--stats") == 0) {
            o->stats = true;
        } else if (strcmp(a, "--no-metadata") == 0) {
            o->no_metadata = true;
        } else if (strcmp(a, "--format") == 0) {
            if (!(v = cli_value(argc, argv, &i)) || !out_parse_format(a, v, &o->format)) return false;
        } else if (a[0] == '-' && a[1] != '\0') {
            cli_error("inspect: unknown option '%s' (see 'lltrace inspect --help')", a);
            return false;
        } else if (o->path) {
            cli_error("inspect: unexpected argument '%s' (one FILE only)", a);
            return false;
        } else {
            o->path = a;
        }
    }
    if (!o->path) {
        cli_error("inspect: missing FILE (see 'lltrace inspect --help')");
        return false;
    }
    return true;
}

// ---- metadata ----------------------------------------------------------------------------

// one scalar of an array or a value: numeric types and bools
static double gguf_num(enum gguf_type t, const void * p) {
    switch (t) {
        case GGUF_TYPE_UINT8:   return *(const uint8_t  *) p;
        case GGUF_TYPE_INT8:    return *(const int8_t   *) p;
        case GGUF_TYPE_UINT16:  return *(const uint16_t *) p;
        case GGUF_TYPE_INT16:   return *(const int16_t  *) p;
        case GGUF_TYPE_UINT32:  return *(const uint32_t *) p;
        case GGUF_TYPE_INT32:   return *(const int32_t  *) p;
        case GGUF_TYPE_UINT64:  return (double) *(const uint64_t *) p;
        case GGUF_TYPE_INT64:   return (double) *(const int64_t  *) p;
        case GGUF_TYPE_FLOAT32: return *(const float    *) p;
        case GGUF_TYPE_FLOAT64: return *(const double   *) p;
        case GGUF_TYPE_BOOL:    return *(const int8_t   *) p != 0;
        default:                return NAN;
    }
}

// one scalar: exact; a float that is not finite is null in json
static void print_scalar(FILE * f, enum gguf_type t, const void * p, bool json) {
    const double v = gguf_num(t, p);
    switch (t) {
        case GGUF_TYPE_BOOL:    fputs(v != 0 ? "true" : "false", f); break;
        case GGUF_TYPE_UINT64:  fprintf(f, "%llu", (unsigned long long) *(const uint64_t *) p); break;
        case GGUF_TYPE_INT64:   fprintf(f, "%lld", (long long) *(const int64_t *) p); break;
        case GGUF_TYPE_FLOAT32:
        case GGUF_TYPE_FLOAT64: if (json && !isfinite(v)) fputs("null", f); else fprintf(f, "%.9g", v); break;
        default:                fprintf(f, "%.0f", v); break; // integers of 32 bits and less: exact
    }
}

// a string for a table: quoted, control characters escaped, cut at META_STR_MAX bytes
static void print_table_string(FILE * f, const char * s) {
    const size_t n = strlen(s);
    fputc('"', f);
    for (size_t i = 0; i < n && i < META_STR_MAX; i++) {
        const unsigned char c = (unsigned char) s[i];
        if (c == '\n') fputs("\\n", f);
        else if (c < 0x20) fprintf(f, "\\x%02x", c);
        else fputc(c, f);
    }
    fputc('"', f);
    if (n > META_STR_MAX) fprintf(f, "... (%zu bytes)", n);
}

static void print_string(FILE * f, const char * s, bool json) {
    if (json) llt_json_write_string(f, s);
    else      print_table_string(f, s);
}

// a value for a table (strings cut, arrays as "[i32 x 100] 1, 2, ...") or as JSON text (an
// array as {"type", "n", "head"})
static void print_value(FILE * f, const struct llt_gguf * g, int64_t k, bool json) {
    const enum gguf_type t = llt_gguf_kv_type(g, k);
    if (t == GGUF_TYPE_STRING) {
        print_string(f, llt_gguf_val_str(g, k), json);
        return;
    }
    if (t != GGUF_TYPE_ARRAY) {
        print_scalar(f, t, llt_gguf_val_data(g, k), json);
        return;
    }
    const enum gguf_type at = llt_gguf_arr_type(g, k);
    const size_t n = llt_gguf_arr_n(g, k);
    const size_t head = n < META_ARRAY_HEAD ? n : META_ARRAY_HEAD;
    if (json) fprintf(f, "{\"type\": \"%s\", \"n\": %zu, \"head\": [", gguf_type_name(at), n);
    else      fprintf(f, "[%s x %zu] ", gguf_type_name(at), n);
    for (size_t i = 0; i < head; i++) {
        if (i) fputs(", ", f);
        if (at == GGUF_TYPE_STRING) {
            print_string(f, llt_gguf_arr_str(g, k, i), json);
        } else if (at == GGUF_TYPE_ARRAY) {
            fputs(json ? "null" : "[...]", f);
        } else {
            print_scalar(f, at, (const char *) llt_gguf_arr_data(g, k) + i * llt_gguf_type_size(at), json);
        }
    }
    if (json) fputs("]}", f);
    else if (head < n) fputs(", ...", f);
}

// print_value into a string; caller frees; NULL when out of memory
static char * value_text(const struct llt_gguf * g, int64_t k, bool json) {
    char * text = NULL;
    size_t size = 0;
    FILE * f = open_memstream(&text, &size);
    if (!f) return NULL;
    print_value(f, g, k, json);
    if (fclose(f) != 0) {
        free(text);
        return NULL;
    }
    return text;
}

// the value: a table's text; csv and json carry it exactly as JSON text
static const struct out_col meta_cols[] = {
    { "key", OUT_TEXT, OUT_ALL }, { "type", OUT_TEXT, OUT_ALL }, { "value", OUT_TEXT, OUT_NOT_JSON },
    { "value", OUT_RAW_JSON, OUT_ONLY_JSON },
};

static int write_metadata(struct out * o, enum out_format format, const struct llt_gguf * g) {
    const int64_t n = llt_gguf_n_kv(g);
    char title[64];
    snprintf(title, sizeof(title), "metadata (%lld keys)", (long long) n);
    int rc = out_begin(o, "metadata", title, OUT_COLS(meta_cols), 0);
    for (int64_t k = 0; k < n && rc == CLI_OK; k++) {
        char * text = value_text(g, k, format != OUT_TABLE);
        if (!text) {
            cli_error("inspect: out of memory");
            return CLI_FAIL;
        }
        const struct out_val v[] = { out_text(llt_gguf_key(g, k)), out_text(gguf_type_name(llt_gguf_kv_type(g, k))),
                                     out_text(text), out_text(text) };
        rc = out_row(o, v);
        free(text);
    }
    return rc == CLI_OK ? out_end(o) : rc;
}

// ---- tensors -----------------------------------------------------------------------------

// the first n values of tensor i (dequantized); *got how many
static int first_values(struct llt_tensor_set * set, int i, int64_t n, float ** out, int64_t * got) {
    const struct llt_tensor_info * t = llt_tensor_set_get(set, i);
    const int64_t bs = llt_type_block_size(t->type);
    const int64_t want = n < t->n_elements ? n : t->n_elements;
    // whole blocks for quantized data; a column-major .npy is read whole to be reordered
    const int64_t conv = t->fortran ? t->n_elements : (want + bs - 1) / bs * bs;
    float * buf = malloc((size_t) (conv > 0 ? conv : 1) * sizeof(float));
    if (!buf) {
        cli_error("inspect: out of memory for tensor '%s'", t->name);
        return CLI_FAIL;
    }
    int rc;
    if (t->fortran) {
        rc = llt_tensor_set_read_f32(set, i, buf);
    } else {
        const void * data = llt_tensor_set_data(set, i);
        rc = data ? llt_to_float(data, t->type, conv, buf) : LLT_EIO;
    }
    if (rc != LLT_OK) {
        cli_error("inspect: tensor '%s': %s", t->name, llt_last_error());
        free(buf);
        return CLI_USAGE;
    }
    *out = buf;
    *got = want;
    return CLI_OK;
}

static int tensor_stats(struct llt_tensor_set * set, int i, struct llt_stats * st) {
    const struct llt_tensor_info * t = llt_tensor_set_get(set, i);
    const void * data = llt_tensor_set_data(set, i); // element order does not change statistics
    const int rc = data ? llt_stats_compute(data, t->type, t->n_elements, st) : LLT_EIO;
    if (rc != LLT_OK) {
        cli_error("inspect: tensor '%s': %s", t->name, llt_last_error());
        return CLI_USAGE;
    }
    return CLI_OK;
}

// ---- quantization blocks -----------------------------------------------------------------
//
// Block layouts copied from ggml/src/ggml-common.h of the pinned llama.cpp (ggml_half is a
// uint16_t holding an IEEE half). A decoded block gives, per sub-block, the stored integer
// scale (and min) and the effective scale and offset, so that every element is
// value = scale * q + offset, exactly as ggml's dequantize_row_* computes it.

#define QK_K 256

typedef struct { uint16_t d; uint8_t qs[16]; }                               blk_q4_0;
typedef struct { uint16_t d, m; uint8_t qs[16]; }                            blk_q4_1;
typedef struct { uint16_t d; uint8_t qh[4]; uint8_t qs[16]; }                blk_q5_0;
typedef struct { uint16_t d, m; uint8_t qh[4]; uint8_t qs[16]; }             blk_q5_1;
typedef struct { uint16_t d; int8_t qs[32]; }                                blk_q8_0;
typedef struct { uint8_t scales[16]; uint8_t qs[64]; uint16_t d, dmin; }     blk_q2_K;
typedef struct { uint8_t hmask[32]; uint8_t qs[64]; uint8_t scales[12]; uint16_t d; } blk_q3_K;
typedef struct { uint16_t d, dmin; uint8_t scales[12]; uint8_t qs[128]; }    blk_q4_K;
typedef struct { uint16_t d, dmin; uint8_t scales[12]; uint8_t qh[32]; uint8_t qs[128]; } blk_q5_K;
typedef struct { uint8_t ql[128]; uint8_t qh[64]; int8_t scales[16]; uint16_t d; } blk_q6_K;

_Static_assert(sizeof(blk_q4_0) == 18 && sizeof(blk_q4_1) == 20 && sizeof(blk_q5_0) == 22 &&
               sizeof(blk_q5_1) == 24 && sizeof(blk_q8_0) == 34, "ggml-common.h block layouts");
_Static_assert(sizeof(blk_q2_K) == 84 && sizeof(blk_q3_K) == 110 && sizeof(blk_q4_K) == 144 &&
               sizeof(blk_q5_K) == 176 && sizeof(blk_q6_K) == 210, "ggml-common.h k-quant layouts");

static const struct { int type; size_t size; } block_layouts[] = {
    { GGML_TYPE_Q4_0, sizeof(blk_q4_0) }, { GGML_TYPE_Q4_1, sizeof(blk_q4_1) },
    { GGML_TYPE_Q5_0, sizeof(blk_q5_0) }, { GGML_TYPE_Q5_1, sizeof(blk_q5_1) },
    { GGML_TYPE_Q8_0, sizeof(blk_q8_0) }, { GGML_TYPE_Q2_K, sizeof(blk_q2_K) },
    { GGML_TYPE_Q3_K, sizeof(blk_q3_K) }, { GGML_TYPE_Q4_K, sizeof(blk_q4_K) },
    { GGML_TYPE_Q5_K, sizeof(blk_q5_K) }, { GGML_TYPE_Q6_K, sizeof(blk_q6_K) },
};

struct qblock {
    int   n_sub, sub_size;
    float d, dmin;          // super-block scale and min scale (dmin: K-quants with mins, q4_1/q5_1's m)
    bool  has_dmin;
    bool  has_sub_scale;    // integer sub-block scales (K-quants)
    bool  has_sub_min;
    int   sc[16], mn[16];   // stored sub-block scales and mins
    float scale[16], off[16];
    int   q[QK_K];          // quants in element order
};

// K-quants' 6-bit scales and mins, 8 of each in 12 bytes (ggml-quants.c get_scale_min_k4)
static void scale_min_k4(int j, const uint8_t * q, int * d, int * m) {
    if (j < 4) {
        *d = q[j] & 63; *m = q[j + 4] & 63;
    } else {
        *d = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
        *m = (q[j + 4] >>  4) | ((q[j - 0] >> 6) << 4);
    }
}

// decodes one block of a type in block_layouts
static void decode_block(int type, const void * p, struct qblock * b) {
    memset(b, 0, sizeof(*b));
    b->n_sub = 1;
    b->sub_size = 32;
    switch (type) {
        case GGML_TYPE_Q4_0: {
            const blk_q4_0 * x = p;
            b->d = ggml_fp16_to_fp32(x->d);
            for (int j = 0; j < 16; j++) { b->q[j] = (x->qs[j] & 0xF) - 8; b->q[j + 16] = (x->qs[j] >> 4) - 8; }
            b->scale[0] = b->d;
            break;
        }
        case GGML_TYPE_Q4_1: {
            const blk_q4_1 * x = p;
            b->d = ggml_fp16_to_fp32(x->d); b->dmin = ggml_fp16_to_fp32(x->m); b->has_dmin = true;
            for (int j = 0; j < 16; j++) { b->q[j] = x->qs[j] & 0xF; b->q[j + 16] = x->qs[j] >> 4; }
            b->scale[0] = b->d; b->off[0] = b->dmin;
            break;
        }
        case GGML_TYPE_Q5_0:
        case GGML_TYPE_Q5_1: {
            const bool one = type == GGML_TYPE_Q5_1;
            const uint8_t * qh = one ? ((const blk_q5_1 *) p)->qh : ((const blk_q5_0 *) p)->qh;
            const uint8_t * qs = one ? ((const blk_q5_1 *) p)->qs : ((const blk_q5_0 *) p)->qs;
            uint32_t h;
            memcpy(&h, qh, sizeof(h));
            b->d = ggml_fp16_to_fp32(one ? ((const blk_q5_1 *) p)->d : ((const blk_q5_0 *) p)->d);
            for (int j = 0; j < 16; j++) {
                b->q[j]      = ((qs[j] & 0xF) | (((h >> j) << 4) & 0x10)) - (one ? 0 : 16);
                b->q[j + 16] = ((qs[j] >> 4)  | ((h >> (j + 12)) & 0x10)) - (one ? 0 : 16);
            }
            b->scale[0] = b->d;
            if (one) { b->dmin = ggml_fp16_to_fp32(((const blk_q5_1 *) p)->m); b->has_dmin = true; b->off[0] = b->dmin; }
            break;
        }
        case GGML_TYPE_Q8_0: {
            const blk_q8_0 * x = p;
            b->d = ggml_fp16_to_fp32(x->d);
            for (int j = 0; j < 32; j++) b->q[j] = x->qs[j];
            b->scale[0] = b->d;
            break;
        }
        case GGML_TYPE_Q2_K: {
            const blk_q2_K * x = p;
            b->d = ggml_fp16_to_fp32(x->d); b->dmin = ggml_fp16_to_fp32(x->dmin); b->has_dmin = true;
            b->n_sub = 16; b->sub_size = 16; b->has_sub_scale = b->has_sub_min = true;
            for (int s = 0; s < 16; s++) {
                b->sc[s] = x->scales[s] & 0xF; b->mn[s] = x->scales[s] >> 4;
                b->scale[s] = b->d * b->sc[s]; b->off[s] = -(b->dmin * b->mn[s]);
            }
            // 128-element halves; in each, 4 shifts x (16 from q[0..15], 16 from q[16..31])
            for (int e = 0; e < QK_K; e++) {
                const int half = e / 128, r = e % 128, shift = (r / 32) * 2, l = r % 32;
                b->q[e] = (x->qs[half * 32 + l] >> shift) & 3;
            }
            break;
        }
        case GGML_TYPE_Q3_K: {
            const blk_q3_K * x = p;
            b->d = ggml_fp16_to_fp32(x->d);
            b->n_sub = 16; b->sub_size = 16; b->has_sub_scale = true;
            const uint8_t * s = x->scales;
            for (int j = 0; j < 16; j++) { // 4 low bits from s[0..7], 2 high bits from s[8..11]
                const int lo = j < 8 ? s[j] & 0xF : s[j - 8] >> 4;
                const int hi = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
                b->sc[j] = (lo | hi << 4) - 32;
                b->scale[j] = b->d * b->sc[j];
            }
            for (int e = 0; e < QK_K; e++) {
                const int half = e / 128, r = e % 128, shift = (r / 32) * 2, l = r % 32;
                const int m = 1 << (half * 4 + r / 32);
                b->q[e] = ((x->qs[half * 32 + l] >> shift) & 3) - ((x->hmask[l] & m) ? 0 : 4);
            }
            break;
        }
        case GGML_TYPE_Q4_K:
        case GGML_TYPE_Q5_K: {
            const bool five = type == GGML_TYPE_Q5_K;
            const uint16_t * dd = p; // d, dmin lead both layouts
            const uint8_t * scales = five ? ((const blk_q5_K *) p)->scales : ((const blk_q4_K *) p)->scales;
            const uint8_t * qs = five ? ((const blk_q5_K *) p)->qs : ((const blk_q4_K *) p)->qs;
            b->d = ggml_fp16_to_fp32(dd[0]); b->dmin = ggml_fp16_to_fp32(dd[1]); b->has_dmin = true;
            b->n_sub = 8; b->sub_size = 32; b->has_sub_scale = b->has_sub_min = true;
            for (int s = 0; s < 8; s++) {
                scale_min_k4(s, scales, &b->sc[s], &b->mn[s]);
                b->scale[s] = b->d * b->sc[s]; b->off[s] = -(b->dmin * b->mn[s]);
            }
            // 64-element groups: 32 low nibbles, then 32 high nibbles of the same 32 bytes
            for (int e = 0; e < QK_K; e++) {
                const int g = e / 64, r = e % 64, l = r % 32, high = r / 32;
                int v = high ? qs[g * 32 + l] >> 4 : qs[g * 32 + l] & 0xF;
                if (five) v += (((const blk_q5_K *) p)->qh[l] >> (2 * g + high)) & 1 ? 16 : 0;
                b->q[e] = v;
            }
            break;
        }
        case GGML_TYPE_Q6_K: {
            const blk_q6_K * x = p;
            b->d = ggml_fp16_to_fp32(x->d);
            b->n_sub = 16; b->sub_size = 16; b->has_sub_scale = true;
            for (int s = 0; s < 16; s++) { b->sc[s] = x->scales[s]; b->scale[s] = b->d * b->sc[s]; }
            // 128-element halves; in each, 4 quarters of 32 from ql (low/high nibbles) and qh
            for (int e = 0; e < QK_K; e++) {
                const int half = e / 128, r = e % 128, quarter = r / 32, l = r % 32;
                const uint8_t * ql = x->ql + half * 64, * qh = x->qh + half * 32;
                const int low = quarter & 1 ? ql[l + 32] : ql[l];
                const int lo4 = quarter < 2 ? low & 0xF : low >> 4;
                b->q[e] = (lo4 | ((qh[l] >> (2 * quarter)) & 3) << 4) - 32;
            }
            break;
        }
        default:
            break;
    }
}

static bool has_layout(int type) {
    for (size_t k = 0; k < sizeof(block_layouts)/sizeof(block_layouts[0]); k++) {
        if (block_layouts[k].type == type) return true;
    }
    return false;
}

static const struct out_col blocks_cols[] = {
    { "tensor", OUT_TEXT, OUT_ONLY_JSON }, { "type", OUT_TEXT, OUT_ONLY_JSON }, { "block_size", OUT_INT, OUT_ONLY_JSON },
    { "block_bytes", OUT_INT, OUT_ONLY_JSON }, { "n_blocks", OUT_INT, OUT_ONLY_JSON }, { "decoded", OUT_TEXT, OUT_ONLY_JSON },
};
// one row per block shown: its scales, the check of the decoding, its raw bytes (hex) when it
// is not decoded here, its values as ggml dequantizes them
static const struct out_col shown_cols[] = {
    { "block", OUT_INT, OUT_ALL }, { "first", OUT_INT, OUT_ALL }, { "d", OUT_REAL, OUT_ALL }, { "dmin", OUT_REAL, OUT_ALL },
    { "decode_error", OUT_REAL, OUT_ALL }, { "raw", OUT_TEXT, OUT_ALL }, { "values", OUT_LIST, OUT_ALL },
};
static const struct out_col sub_cols[] = {
    { "block", OUT_INT, OUT_ALL }, { "sub", OUT_INT, OUT_ALL }, { "scale_q", OUT_INT, OUT_ALL }, { "min_q", OUT_INT, OUT_ALL },
    { "scale", OUT_REAL, OUT_ALL }, { "offset", OUT_REAL, OUT_ALL }, { "q", OUT_LIST, OUT_ALL },
};

// the first n_blocks blocks of tensor i, a block-quantized one: a list of blocks, then (when
// the type is decoded here) a list of their sub-blocks, each block decoded again (a block at a
// time, however many are shown)
static int write_blocks(struct out * o, struct llt_tensor_set * set, int i, int64_t n_blocks) {
    const struct llt_tensor_info * t = llt_tensor_set_get(set, i);
    const char * name = t->name;
    const int64_t bs = llt_type_block_size(t->type);
    const size_t bb = llt_type_block_bytes(t->type);
    const unsigned char * data = llt_tensor_set_data(set, i);
    const int64_t nb = t->n_elements / bs < n_blocks ? t->n_elements / bs : n_blocks;
    const bool decoded = has_layout(t->type);
    float * v = malloc((size_t) bs * sizeof(float));
    struct qblock * b = malloc(sizeof(*b));
    char * hex = malloc(2 * bb + 1);
    int rc = CLI_OK;
    if (!data || !v || !b || !hex) {
        cli_error("inspect: tensor '%s': cannot read its data", name);
        rc = CLI_FAIL;
        goto done;
    }
    out_note(o, "blocks of %s (%s: %lld elements in %zu bytes per block, %lld blocks)%s", name, llt_type_name(t->type),
             (long long) bs, bb, (long long) (t->n_elements / bs), decoded ? ": value = scale * q + offset" : "");
    const struct out_val head[] = { out_text(name), out_text(llt_type_name(t->type)), out_int(bs), out_int((int64_t) bb),
                                    out_int(t->n_elements / bs), out_bool(decoded) };
    rc = out_record(o, "blocks", OUT_COLS(blocks_cols), head);
    if (rc == CLI_OK) rc = out_begin(o, "shown", NULL, OUT_COLS(shown_cols), 0);
    for (int64_t k = 0; k < nb && rc == CLI_OK; k++) {
        const unsigned char * blk = data + k * bb;
        if (llt_to_float(blk, t->type, bs, v) != LLT_OK) {
            cli_error("inspect: tensor '%s': %s", name, llt_last_error());
            rc = CLI_FAIL;
            break;
        }
        double err = 0;
        if (decoded) {
            decode_block(t->type, blk, b);
            // ggml's dequantization against scale * q + offset: 0 when the decoding is right
            for (int e = 0; e < bs; e++) {
                const int sb = e / b->sub_size;
                err = fmax(err, fabs((double) (b->scale[sb] * b->q[e] + b->off[sb]) - v[e]));
            }
        } else {
            for (size_t j = 0; j < bb; j++) snprintf(hex + 2 * j, 3, "%02x", blk[j]);
        }
        const struct out_val row[] = {
            out_int(k), out_int(k * bs), decoded ? out_real(b->d) : out_null(),
            decoded && b->has_dmin ? out_real(b->dmin) : out_null(), decoded ? out_real(err) : out_null(),
            decoded ? out_null() : out_text(hex), out_floats(v, bs),
        };
        rc = out_row(o, row);
    }
    if (rc == CLI_OK) rc = out_end(o);
    if (rc != CLI_OK || !decoded) goto done;
    rc = out_begin(o, "sub_blocks", "sub-blocks", OUT_COLS(sub_cols), 0);
    for (int64_t k = 0; k < nb && rc == CLI_OK; k++) {
        decode_block(t->type, data + k * bb, b);
        for (int sb = 0; sb < b->n_sub && rc == CLI_OK; sb++) {
            float qs[QK_K]; // small integers: exact as floats
            for (int e = 0; e < b->sub_size; e++) qs[e] = (float) b->q[sb * b->sub_size + e];
            const struct out_val row[] = {
                out_int(k), out_int(sb), b->has_sub_scale ? out_int(b->sc[sb]) : out_null(),
                b->has_sub_min ? out_int(b->mn[sb]) : out_null(), out_real(b->scale[sb]), out_real(b->off[sb]),
                out_floats(qs, b->sub_size),
            };
            rc = out_row(o, row);
        }
    }
    if (rc == CLI_OK) rc = out_end(o);
done:
    free(v);
    free(b);
    free(hex);
    return rc;
}

// ---- the tensor table --------------------------------------------------------------------

static const struct out_col tensor_cols[] = {
    { "index", OUT_INT, OUT_ALL }, { "name", OUT_TEXT, OUT_ALL }, { "type", OUT_TEXT, OUT_ALL },
    { "ne", OUT_SHAPE, OUT_ALL }, { "elements", OUT_INT, OUT_ALL }, { "bytes", OUT_BYTES, OUT_ALL },
    { "bpw", OUT_REAL, OUT_ALL }, { "offset", OUT_INT, OUT_ALL }, { "layer", OUT_INT, OUT_NOT_TABLE },
    { "order", OUT_INT, OUT_NOT_TABLE },
};
static const struct out_col stats_cols[] = {
    { "min", OUT_REAL, OUT_ALL }, { "max", OUT_REAL, OUT_ALL }, { "mean", OUT_REAL, OUT_ALL }, { "std", OUT_REAL, OUT_ALL },
    { "absmax", OUT_REAL, OUT_ALL }, { "nan", OUT_INT, OUT_ALL }, { "pinf", OUT_INT, OUT_ALL }, { "ninf", OUT_INT, OUT_ALL },
    { "zero", OUT_INT, OUT_ALL },
};
static const struct out_col data_col = { "data", OUT_LIST, OUT_ALL };

enum { N_TENSOR_COLS = sizeof(tensor_cols) / sizeof(tensor_cols[0]), N_STATS_COLS = sizeof(stats_cols) / sizeof(stats_cols[0]) };

static bool tensor_selected(const struct inspect_opts * o, const char * name) {
    return !o->tensor || fnmatch(o->tensor, name, 0) == 0;
}

// one row of the tensor table, in the columns write_tensors chose: statistics and data when asked
static int write_tensor(struct out * o, struct llt_tensor_set * set, const struct inspect_opts * opts, int i) {
    const struct llt_tensor_info * t = llt_tensor_set_get(set, i);
    struct out_val v[N_TENSOR_COLS + N_STATS_COLS + 1];
    int c = 0;
    v[c++] = out_int(i);
    v[c++] = out_text(t->name);
    v[c++] = out_text(llt_type_name(t->type));
    int64_t ne[4] = { 1, 1, 1, 1 };
    for (int d = 0; d < t->n_dims && d < 4; d++) ne[d] = t->ne[d];
    v[c++] = out_shape(ne);
    v[c++] = out_int(t->n_elements);
    v[c++] = out_int((int64_t) t->bytes);
    v[c++] = t->n_elements > 0 ? out_real((double) t->bytes * 8.0 / (double) t->n_elements) : out_null();
    v[c++] = out_int((int64_t) t->offset);
    v[c++] = out_int(t->layer);
    v[c++] = out_int(t->order);
    if (opts->stats) {
        struct llt_stats st;
        int rc = tensor_stats(set, i, &st);
        if (rc != CLI_OK) return rc;
        const double r[] = { st.min, st.max, st.mean, st.std, st.absmax };
        for (size_t k = 0; k < sizeof(r) / sizeof(r[0]); k++) v[c++] = out_real(r[k]);
        const int64_t n[] = { st.n_nan, st.n_pinf, st.n_ninf, st.n_zero };
        for (size_t k = 0; k < sizeof(n) / sizeof(n[0]); k++) v[c++] = out_int(n[k]);
    }
    float * data = NULL;
    if (opts->show_data > 0) {
        int64_t got = 0;
        int rc = first_values(set, i, opts->show_data, &data, &got);
        if (rc != CLI_OK) return rc;
        v[c++] = out_floats(data, got);
    }
    const int rc = out_row(o, v);
    free(data);
    return rc;
}

// every tensor, or those --tensor matches (n_selected of them)
static int write_tensors(struct out * o, struct llt_tensor_set * set, const struct inspect_opts * opts, int n_selected) {
    const int n = llt_tensor_set_count(set);
    struct out_col cols[N_TENSOR_COLS + N_STATS_COLS + 1];
    int n_cols = 0;
    for (int c = 0; c < N_TENSOR_COLS; c++) cols[n_cols++] = tensor_cols[c];
    for (int c = 0; opts->stats && c < N_STATS_COLS; c++) cols[n_cols++] = stats_cols[c];
    if (opts->show_data > 0) cols[n_cols++] = data_col;
    char title[64];
    if (opts->tensor) snprintf(title, sizeof(title), "tensors (%d of %d)", n_selected, n);
    else              snprintf(title, sizeof(title), "tensors (%d)", n);
    int rc = out_begin(o, "tensors", title, cols, n_cols, 0);
    for (int i = 0; i < n && rc == CLI_OK; i++) {
        if (tensor_selected(opts, llt_tensor_set_get(set, i)->name)) rc = write_tensor(o, set, opts, i);
    }
    return rc == CLI_OK ? out_end(o) : rc;
}

static const struct out_col file_cols[] = {
    { "path", OUT_TEXT, OUT_ONLY_JSON }, { "kind", OUT_TEXT, OUT_ONLY_JSON }, { "n_tensors", OUT_INT, OUT_ONLY_JSON },
    { "gguf_version", OUT_INT, OUT_ONLY_JSON }, { "metadata_keys", OUT_INT, OUT_ONLY_JSON },
    { "alignment", OUT_INT, OUT_ONLY_JSON }, { "data_offset", OUT_INT, OUT_ONLY_JSON },
};

// what the file is: a line in a table, a record in json (GGUF's figures null for other sets)
static int write_file(struct out * o, const struct inspect_opts * opts, struct llt_tensor_set * set) {
    const struct llt_gguf * g = llt_tensor_set_gguf(set);
    const char * kind = llt_tensor_set_kind_name(llt_tensor_set_kind(set));
    if (g) {
        out_note(o, "%s: %s, %d tensors, GGUF v%u, %lld metadata keys, alignment %zu, data at byte %zu", opts->path, kind,
                 llt_tensor_set_count(set), llt_gguf_version(g), (long long) llt_gguf_n_kv(g), llt_gguf_alignment(g),
                 (size_t) llt_gguf_data_offset(g));
    } else {
        out_note(o, "%s: %s, %d tensors", opts->path, kind, llt_tensor_set_count(set));
    }
    const struct out_val v[] = {
        out_text(opts->path), out_text(kind), out_int(llt_tensor_set_count(set)),
        g ? out_int(llt_gguf_version(g)) : out_null(), g ? out_int(llt_gguf_n_kv(g)) : out_null(),
        g ? out_int((int64_t) llt_gguf_alignment(g)) : out_null(), g ? out_int((int64_t) llt_gguf_data_offset(g)) : out_null(),
    };
    return out_record(o, "file", OUT_COLS(file_cols), v);
}

// ---- the command -------------------------------------------------------------------------

int cmd_inspect(int argc, char ** argv) {
    struct inspect_opts o = { .n_blocks = 4 };
    bool help = false;
    if (!parse_opts(argc, argv, &o, &help)) return CLI_USAGE;
    if (help) {
        fputs(usage_text, stdout);
        return CLI_OK;
    }
    llt_log_init(false);
    struct llt_tensor_set * set = NULL;
    if (llt_tensor_set_open(o.path, &set) != LLT_OK) {
        cli_error("inspect: %s", llt_last_error());
        return CLI_USAGE;
    }
    // names are checked before anything is printed: --blocks names one tensor, --tensor is a
    // filter, and one that matches nothing is a warning
    int n_selected = 0;
    for (int i = 0; i < llt_tensor_set_count(set); i++) n_selected += tensor_selected(&o, llt_tensor_set_get(set, i)->name);
    if (o.tensor && n_selected == 0) cli_error("inspect: warning: --tensor '%s' matched no tensor in '%s' (names are case-sensitive)", o.tensor, o.path);
    const int blocks = o.blocks ? llt_tensor_set_find(set, o.blocks) : -1;
    const struct llt_tensor_info * bt = llt_tensor_set_get(set, blocks);
    const bool not_blocks = bt && (llt_type_block_size(bt->type) <= 1 || bt->fortran);
    if ((o.blocks && blocks < 0) || not_blocks) {
        if (!bt) cli_error("inspect: no tensor '%s' in '%s'", o.blocks, o.path);
        else         cli_error("inspect: tensor '%s' is %s, not a block-quantized type", bt->name, llt_type_name(bt->type));
        llt_tensor_set_close(set);
        return CLI_USAGE;
    }
    struct out * out = out_open(stdout, o.format);
    if (!out) {
        cli_error("inspect: out of memory");
        llt_tensor_set_close(set);
        return CLI_FAIL;
    }
    const struct llt_gguf * g = llt_tensor_set_gguf(set);
    int rc = write_file(out, &o, set);
    if (rc == CLI_OK && g && !o.tensor && !o.blocks && !o.no_metadata) rc = write_metadata(out, o.format, g);
    const bool table = !o.blocks || o.tensor || o.stats || o.show_data; // --blocks alone shows only blocks
    if (rc == CLI_OK && table) rc = write_tensors(out, set, &o, n_selected);
    if (rc == CLI_OK && o.blocks) rc = write_blocks(out, set, blocks, o.n_blocks);
    const int close_rc = out_close(out);
    if (rc == CLI_OK) rc = close_rc;
    llt_tensor_set_close(set);
    return rc;
}
