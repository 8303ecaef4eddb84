// lltrace inspect: what a GGUF file (a model or a dump) holds: metadata, tensor table, first
// values of every tensor (dequantized), per-tensor statistics and the quantization blocks of a
// quantized tensor. Safetensors files and .npy directories work too (they have no metadata).
#include "cli.h"
#include "lltrace.h"

#include "gguf.h"

#include <errno.h>
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
    bool         stats;
    bool         json;
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
    "  --format FMT     table (default) or json\n"
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
            static const char * const formats[] = { "table", "json" };
            int k;
            if (!(v = cli_value(argc, argv, &i)) || !cli_parse_choice(a, v, formats, 2, &k)) return false;
            o->json = k == 1;
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

static size_t gguf_scalar_size(enum gguf_type t) {
    switch (t) {
        case GGUF_TYPE_UINT8: case GGUF_TYPE_INT8: case GGUF_TYPE_BOOL:     return 1;
        case GGUF_TYPE_UINT16: case GGUF_TYPE_INT16:                        return 2;
        case GGUF_TYPE_UINT32: case GGUF_TYPE_INT32: case GGUF_TYPE_FLOAT32: return 4;
        default:                                                            return 8;
    }
}

static void print_scalar(FILE * f, enum gguf_type t, const void * p, bool json) {
    const double v = gguf_num(t, p);
    switch (t) {
        case GGUF_TYPE_BOOL:    fputs(v != 0 ? "true" : "false", f); break;
        case GGUF_TYPE_UINT64:  fprintf(f, "%llu", (unsigned long long) *(const uint64_t *) p); break;
        case GGUF_TYPE_INT64:   fprintf(f, "%lld", (long long) *(const int64_t *) p); break;
        case GGUF_TYPE_FLOAT32:
        case GGUF_TYPE_FLOAT64: if (json) cli_json_number(f, v); else fprintf(f, "%.9g", v); break;
        default:                fprintf(f, "%.0f", v); break; // integers of 32 bits and less: exact
    }
}

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

static void print_value(FILE * f, const struct gguf_context * g, int64_t k, bool json) {
    const enum gguf_type t = gguf_get_kv_type(g, k);
    if (t == GGUF_TYPE_STRING) {
        if (json) cli_json_string(f, gguf_get_val_str(g, k));
        else      print_table_string(f, gguf_get_val_str(g, k));
        return;
    }
    if (t != GGUF_TYPE_ARRAY) {
        print_scalar(f, t, gguf_get_val_data(g, k), json);
        return;
    }
    const enum gguf_type at = gguf_get_arr_type(g, k);
    const size_t n = gguf_get_arr_n(g, k);
    const size_t head = n < META_ARRAY_HEAD ? n : META_ARRAY_HEAD;
    if (json) fprintf(f, "{\"type\": \"%s\", \"n\": %zu, \"head\": [", gguf_type_name(at), n);
    else      fprintf(f, "[%s x %zu] ", gguf_type_name(at), n);
    for (size_t i = 0; i < head; i++) {
        if (i) fputs(", ", f);
        if (at == GGUF_TYPE_STRING) {
            if (json) cli_json_string(f, gguf_get_arr_str(g, k, i));
            else      print_table_string(f, gguf_get_arr_str(g, k, i));
        } else if (at == GGUF_TYPE_ARRAY) {
            fputs(json ? "null" : "[...]", f);
        } else {
            print_scalar(f, at, (const char *) gguf_get_arr_data(g, k) + i * gguf_scalar_size(at), json);
        }
    }
    if (json) fputs("]}", f);
    else if (head < n) fputs(", ...", f);
}

static void print_metadata(FILE * f, const struct gguf_context * g, bool json) {
    const int64_t n = gguf_get_n_kv(g);
    if (json) {
        fputs("  \"metadata\": [", f);
        for (int64_t k = 0; k < n; k++) {
            fprintf(f, "%s\n    {\"key\": ", k ? "," : "");
            cli_json_string(f, gguf_get_key(g, k));
            fprintf(f, ", \"type\": \"%s\", \"value\": ", gguf_type_name(gguf_get_kv_type(g, k)));
            print_value(f, g, k, true);
            fputc('}', f);
        }
        fputs(n ? "\n  ],\n" : "],\n", f);
        return;
    }
    fprintf(f, "metadata (%lld keys):\n", (long long) n);
    int w = 0;
    for (int64_t k = 0; k < n; k++) {
        const int l = (int) strlen(gguf_get_key(g, k));
        w = l > w ? l : w;
    }
    for (int64_t k = 0; k < n; k++) {
        fprintf(f, "  %-*s  %-6s  ", w, gguf_get_key(g, k), gguf_type_name(gguf_get_kv_type(g, k)));
        print_value(f, g, k, false);
        fputc('\n', f);
    }
    fputc('\n', f);
}

// ---- tensors -----------------------------------------------------------------------------

static void shape_text(const struct llt_tensor_info * t, char * buf, size_t cap) {
    int o = snprintf(buf, cap, "%lld", (long long) t->ne[0]);
    for (int d = 1; d < t->n_dims && o < (int) cap; d++) o += snprintf(buf + o, cap - (size_t) o, " x %lld", (long long) t->ne[d]);
}

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

static void print_floats(FILE * f, const float * v, int n, bool json) {
    for (int i = 0; i < n; i++) {
        if (json) { if (i) fputs(", ", f); cli_json_number(f, v[i]); }
        else      fprintf(f, "%s%.6g", i ? " " : "", v[i]);
    }
}

static void print_ints(FILE * f, const int * v, int n, bool json) {
    for (int i = 0; i < n; i++) fprintf(f, "%s%d", i ? (json ? ", " : " ") : "", v[i]);
}

// the first n_blocks blocks of tensor i, a block-quantized one
static int show_blocks(FILE * f, struct llt_tensor_set * set, int i, int64_t n_blocks, bool json) {
    const struct llt_tensor_info * t = llt_tensor_set_get(set, i);
    const char * name = t->name;
    const int64_t bs = llt_type_block_size(t->type);
    const size_t bb = llt_type_block_bytes(t->type);
    const unsigned char * data = llt_tensor_set_data(set, i);
    float * vals = malloc((size_t) bs * sizeof(float));
    if (!data || !vals) {
        free(vals);
        cli_error("inspect: tensor '%s': cannot read its data", name);
        return CLI_FAIL;
    }
    const int64_t nb = t->n_elements / bs < n_blocks ? t->n_elements / bs : n_blocks;
    const bool decoded = has_layout(t->type);
    if (json) {
        fputs("  \"blocks\": {\"tensor\": ", f);
        cli_json_string(f, name);
        fprintf(f, ", \"type\": \"%s\", \"block_size\": %lld, \"block_bytes\": %zu, \"n_blocks\": %lld, \"decoded\": %s, \"shown\": [",
            llt_type_name(t->type), (long long) bs, bb, (long long) (t->n_elements / bs), decoded ? "true" : "false");
    } else {
        fprintf(f, "blocks of %s (%s: %lld elements in %zu bytes per block, %lld blocks):\n", name,
            llt_type_name(t->type), (long long) bs, bb, (long long) (t->n_elements / bs));
        if (decoded) fprintf(f, "  value = scale * q + offset\n");
    }
    int rc = CLI_OK;
    for (int64_t k = 0; k < nb && rc == CLI_OK; k++) {
        const unsigned char * blk = data + k * bb;
        if (llt_to_float(blk, t->type, bs, vals) != LLT_OK) {
            cli_error("inspect: tensor '%s': %s", name, llt_last_error());
            rc = CLI_FAIL;
            break;
        }
        if (json) fprintf(f, "%s\n    {\"block\": %lld", k ? "," : "", (long long) k);
        else      fprintf(f, "\nblock %lld (elements %lld..%lld):\n", (long long) k, (long long) (k * bs), (long long) ((k + 1) * bs - 1));
        if (decoded) {
            struct qblock q;
            decode_block(t->type, blk, &q);
            // ggml's dequantization against scale * q + offset: 0 when the decoding is right
            double err = 0;
            for (int e = 0; e < bs; e++) {
                const int s = e / q.sub_size;
                err = fmax(err, fabs((double) (q.scale[s] * q.q[e] + q.off[s]) - vals[e]));
            }
            if (json) {
                fputs(", \"d\": ", f); cli_json_number(f, q.d);
                if (q.has_dmin) { fputs(", \"dmin\": ", f); cli_json_number(f, q.dmin); }
                fputs(", \"decode_error\": ", f); cli_json_number(f, err);
                fputs(", \"sub_blocks\": [", f);
                for (int s = 0; s < q.n_sub; s++) {
                    fprintf(f, "%s\n      {", s ? "," : "");
                    if (q.has_sub_scale) fprintf(f, "\"scale_q\": %d, ", q.sc[s]);
                    if (q.has_sub_min)   fprintf(f, "\"min_q\": %d, ", q.mn[s]);
                    fputs("\"scale\": ", f); cli_json_number(f, q.scale[s]);
                    fputs(", \"offset\": ", f); cli_json_number(f, q.off[s]);
                    fputs(", \"q\": [", f); print_ints(f, q.q + s * q.sub_size, q.sub_size, true);
                    fputs("]}", f);
                }
                fputs("]", f);
            } else {
                fprintf(f, "  d = %.6g", q.d);
                if (q.has_dmin) fprintf(f, "   %s = %.6g", q.has_sub_min ? "dmin" : "m", q.dmin);
                fprintf(f, "   decode check: max |scale*q + offset - dequantized| = %g\n", err);
                fprintf(f, "  %-4s %s%s%-12s %-12s quants\n", "sub", q.has_sub_scale ? "scale_q " : "",
                    q.has_sub_min ? "min_q " : "", "scale", "offset");
                for (int s = 0; s < q.n_sub; s++) {
                    fprintf(f, "  %-4d ", s);
                    if (q.has_sub_scale) fprintf(f, "%7d ", q.sc[s]);
                    if (q.has_sub_min)   fprintf(f, "%5d ", q.mn[s]);
                    fprintf(f, "%-12.6g %-12.6g ", q.scale[s], q.off[s]);
                    print_ints(f, q.q + s * q.sub_size, q.sub_size, false);
                    fputc('\n', f);
                }
            }
        } else {
            if (json) fputs(", \"bytes\": \"", f);
            else      fputs("  bytes:", f);
            for (size_t b = 0; b < bb; b++) {
                if (!json && b % 32 == 0) fputs("\n   ", f);
                fprintf(f, json ? "%02x" : " %02x", blk[b]);
            }
            fputs(json ? "\"" : "\n", f);
        }
        if (json) { fputs(", \"values\": [", f); print_floats(f, vals, (int) bs, true); fputs("]}", f); }
        else      { fputs("  dequantized: ", f); print_floats(f, vals, (int) bs, false); fputc('\n', f); }
    }
    if (json) fputs(nb ? "\n  ]}" : "]}", f);
    free(vals);
    return rc;
}

// ---- the command -------------------------------------------------------------------------

static void print_stats_json(FILE * f, const struct llt_stats * st) {
    fprintf(f, ", \"stats\": {\"n\": %lld, \"nan\": %lld, \"pinf\": %lld, \"ninf\": %lld, \"zero\": %lld",
        (long long) st->n, (long long) st->n_nan, (long long) st->n_pinf, (long long) st->n_ninf, (long long) st->n_zero);
    const char * names[] = { "min", "max", "mean", "std", "absmax" };
    const double v[] = { st->min, st->max, st->mean, st->std, st->absmax };
    for (int k = 0; k < 5; k++) { fprintf(f, ", \"%s\": ", names[k]); cli_json_number(f, v[k]); }
    fputc('}', f);
}

static bool tensor_selected(const struct inspect_opts * o, const char * name) {
    return !o->tensor || fnmatch(o->tensor, name, 0) == 0;
}

// every tensor, or those --tensor matches (n_selected of them)
static int print_tensors(FILE * f, struct llt_tensor_set * set, const struct inspect_opts * o, int n_selected) {
    const int n = llt_tensor_set_count(set);
    if (o->json) {
        fputs("  \"tensors\": [", f);
    } else {
        char count[48];
        if (o->tensor) snprintf(count, sizeof(count), "%d of %d", n_selected, n);
        else           snprintf(count, sizeof(count), "%d", n);
        fprintf(f, "tensors (%s):\n  %5s  %-32s %-7s %-22s %12s %12s %6s %12s\n", count, "#", "name", "type",
            "shape (ne0 first)", "elements", "bytes", "bpw", "offset");
    }
    int shown = 0;
    for (int i = 0; i < n; i++) {
        const struct llt_tensor_info * t = llt_tensor_set_get(set, i);
        if (!tensor_selected(o, t->name)) continue;
        const double bpw = t->n_elements > 0 ? (double) t->bytes * 8.0 / (double) t->n_elements : 0.0;
        char shape[96];
        shape_text(t, shape, sizeof(shape));
        if (o->json) {
            fprintf(f, "%s\n    {\"index\": %d, \"name\": ", shown > 0 ? "," : "", i);
            cli_json_string(f, t->name);
            fprintf(f, ", \"type\": \"%s\", \"ne\": [", llt_type_name(t->type));
            for (int d = 0; d < t->n_dims; d++) fprintf(f, "%s%lld", d ? ", " : "", (long long) t->ne[d]);
            fprintf(f, "], \"elements\": %lld, \"bytes\": %llu, \"bpw\": %.4f, \"offset\": %llu, \"layer\": %d, \"order\": %lld",
                (long long) t->n_elements, (unsigned long long) t->bytes, bpw, (unsigned long long) t->offset,
                t->layer, (long long) t->order);
        } else {
            fprintf(f, "  %5d  %-32s %-7s %-22s %12lld %12llu %6.2f %12llu\n", i, t->name, llt_type_name(t->type),
                shape, (long long) t->n_elements, (unsigned long long) t->bytes, bpw, (unsigned long long) t->offset);
        }
        if (o->stats) {
            struct llt_stats st;
            int rc = tensor_stats(set, i, &st);
            if (rc != CLI_OK) return rc;
            if (o->json) {
                print_stats_json(f, &st);
            } else {
                fprintf(f, "         stats: min %.6g max %.6g mean %.6g std %.6g absmax %.6g  nan %lld +inf %lld -inf %lld zero %lld\n",
                    st.min, st.max, st.mean, st.std, st.absmax, (long long) st.n_nan, (long long) st.n_pinf,
                    (long long) st.n_ninf, (long long) st.n_zero);
            }
        }
        if (o->show_data > 0) {
            float * v = NULL;
            int64_t got = 0;
            int rc = first_values(set, i, o->show_data, &v, &got);
            if (rc != CLI_OK) return rc;
            if (o->json) { fputs(", \"data\": [", f); print_floats(f, v, (int) got, true); fputc(']', f); }
            else         { fputs("         data: ", f); print_floats(f, v, (int) got, false); fputs(got < t->n_elements ? " ...\n" : "\n", f); }
            free(v);
        }
        if (o->json) fputc('}', f);
        shown++;
    }
    if (o->json) fputs(shown > 0 ? "\n  ]" : "]", f);
    return CLI_OK;
}

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
    FILE * f = stdout;
    const struct gguf_context * g = llt_tensor_set_gguf(set);
    const enum llt_tensor_set_kind kind = llt_tensor_set_kind(set);
    if (o.json) {
        fputs("{\n  \"file\": ", f);
        cli_json_string(f, o.path);
        fprintf(f, ",\n  \"kind\": \"%s\",\n  \"n_tensors\": %d,\n", llt_tensor_set_kind_name(kind), llt_tensor_set_count(set));
        if (g) {
            fprintf(f, "  \"gguf_version\": %u,\n  \"alignment\": %zu,\n  \"data_offset\": %zu,\n",
                gguf_get_version(g), gguf_get_alignment(g), gguf_get_data_offset(g));
        }
    } else {
        fprintf(f, "%s: %s, %d tensors", o.path, llt_tensor_set_kind_name(kind), llt_tensor_set_count(set));
        if (g) {
            fprintf(f, ", GGUF v%u, %lld metadata keys, alignment %zu, data at byte %zu", gguf_get_version(g),
                (long long) gguf_get_n_kv(g), gguf_get_alignment(g), gguf_get_data_offset(g));
        }
        fputs("\n\n", f);
    }
    if (g && !o.tensor && !o.blocks && !o.no_metadata) print_metadata(f, g, o.json);
    int rc = CLI_OK;
    const bool table = !o.blocks || o.tensor || o.stats || o.show_data; // --blocks alone shows only blocks
    if (table) rc = print_tensors(f, set, &o, n_selected);
    if (rc == CLI_OK && o.blocks) {
        if (table) fputs(o.json ? ",\n" : "\n", f);
        rc = show_blocks(f, set, blocks, o.n_blocks, o.json);
    }
    if (o.json) fputs("\n}\n", f);
    if (rc == CLI_OK && (fflush(f) != 0 || ferror(f))) {
        cli_error("inspect: cannot write the output: %s", strerror(errno));
        rc = CLI_FAIL;
    }
    llt_tensor_set_close(set);
    return rc;
}
