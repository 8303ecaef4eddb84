// Statistics of an RMS_NORM derived from its input, without reading the norm.
//
// A norm is often never in memory to be read: the CPU backend computes it and the MUL after it
// in one pass (ggml_compute_forward_rms_norm_mul_fused), or computes the MUL in place over it.
// Reading it would split the graph there, and keep the CPU from fusing the pair. Its input is
// read anyway (it is a node of the graph too): the norm of each row is computed again here,
// in ggml-cpu's order (ops.cpp, ggml_compute_forward_rms_norm_f32: the squares summed in
// double one after another, the scale in float, each value times the scale), so the values,
// and their statistics, are the norm's bit for bit. A run checks that against norms it reads
// at post calls before it plans any derivation (record.c): a ggml that computes norms some
// other way is read as before.
#include "capture/tracer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

bool llt_derive_norm_possible(const struct ggml_tensor * norm, const struct ggml_tensor * src) {
    return norm->op == GGML_OP_RMS_NORM && norm->type == GGML_TYPE_F32 &&
           src->type == GGML_TYPE_F32 && src->nb[0] == sizeof(float) && ggml_are_same_shape(norm, src) && src->data &&
           ggml_is_contiguous(norm) && ggml_nelements(norm) > 0;
}

static const float * row_of(const struct ggml_tensor * t, int64_t r) {
    const int64_t i1 = r % t->ne[1], i2 = (r / t->ne[1]) % t->ne[2], i3 = r / (t->ne[1] * t->ne[2]);
    return (const float *) ((const char *) t->data + i1 * t->nb[1] + i2 * t->nb[2] + i3 * t->nb[3]);
}

static float scale_of(double sum, int64_t n, float eps) {
    const float mean = sum / n;
    return 1.0f / sqrtf(mean + eps);
}

// the scales of rows [r, r + k), k <= 4: each row's sum is one chain of additions in order
// (ggml's), four chains at once so that they overlap
static void row_scales(const struct ggml_tensor * src, int64_t r, int k, float eps, float * out) {
    const int64_t n = src->ne[0];
    const float * x[4];
    for (int j = 0; j < 4; j++) x[j] = row_of(src, r + (j < k ? j : 0));
    double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
    for (int64_t i = 0; i < n; i++) {
        s0 += (double) (x[0][i] * x[0][i]);
        s1 += (double) (x[1][i] * x[1][i]);
        s2 += (double) (x[2][i] * x[2][i]);
        s3 += (double) (x[3][i] * x[3][i]);
    }
    const double s[4] = { s0, s1, s2, s3 };
    for (int j = 0; j < k; j++) out[j] = scale_of(s[j], n, eps);
}

int llt_derive_norm_stats(const struct ggml_tensor * norm, const struct ggml_tensor * src, float ** buf, size_t * cap,
                          struct llt_stats * st) {
    const int64_t n = src->ne[0], rows = ggml_nrows(src), total = n * rows;
    if ((size_t) total > *cap) {
        float * b = realloc(*buf, (size_t) total * sizeof(float));
        if (!b) return llt_set_error(LLT_ENOMEM, "out of memory");
        *buf = b;
        *cap = (size_t) total;
    }
    float eps;
    memcpy(&eps, norm->op_params, sizeof(eps));
    for (int64_t r = 0; r < rows; r += 4) {
        const int k = rows - r < 4 ? (int) (rows - r) : 4;
        float scale[4];
        row_scales(src, r, k, eps, scale);
        for (int j = 0; j < k; j++) {
            const float * x = row_of(src, r + j);
            float * y = *buf + (r + j) * n;
            for (int64_t i = 0; i < n; i++) y[i] = x[i] * scale[j];
        }
    }
    return llt_stats_compute(*buf, GGML_TYPE_F32, total, st);
}
