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

// the sum of one row's squares, in order: each square a float, the sum a double
static double row_sum(const float * x, int64_t n) {
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) sum += (double) (x[i] * x[i]);
    return sum;
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

// the same, eight squares and their conversions at once, then added one by one in order (a
// generated token's norm is one row: this chain is the derivation's cost)
__attribute__((target("avx2")))
static double row_sum_avx2(const float * x, int64_t n) {
    __m128d sum = _mm_setzero_pd();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 v = _mm256_loadu_ps(x + i);
        const __m256 sq = _mm256_mul_ps(v, v);
        const __m256d lo = _mm256_cvtps_pd(_mm256_castps256_ps128(sq)), hi = _mm256_cvtps_pd(_mm256_extractf128_ps(sq, 1));
        const __m128d q[4] = { _mm256_castpd256_pd128(lo), _mm256_extractf128_pd(lo, 1),
                               _mm256_castpd256_pd128(hi), _mm256_extractf128_pd(hi, 1) };
        for (int k = 0; k < 4; k++) {
            sum = _mm_add_sd(sum, q[k]);
            sum = _mm_add_sd(sum, _mm_unpackhi_pd(q[k], q[k]));
        }
    }
    double s = _mm_cvtsd_f64(sum);
    for (; i < n; i++) s += (double) (x[i] * x[i]);
    return s;
}

static double (*pick_row_sum(void))(const float *, int64_t) {
    return __builtin_cpu_supports("avx2") ? row_sum_avx2 : row_sum;
}
#else
static double (*pick_row_sum(void))(const float *, int64_t) { return row_sum; }
#endif

// the scales of rows [r, r + k), k <= 4: each row's sum is one chain of additions in order
// (ggml's); four rows (a prompt's) in four chains at once, so that they overlap
static void row_scales(const struct ggml_tensor * src, int64_t r, int k, float eps, float * out) {
    const int64_t n = src->ne[0];
    if (k < 4) {
        double (*sum_of)(const float *, int64_t) = pick_row_sum();
        for (int j = 0; j < k; j++) out[j] = scale_of(sum_of(row_of(src, r + j), n), n, eps);
        return;
    }
    const float * x0 = row_of(src, r), * x1 = row_of(src, r + 1), * x2 = row_of(src, r + 2), * x3 = row_of(src, r + 3);
    double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
    for (int64_t i = 0; i < n; i++) {
        s0 += (double) (x0[i] * x0[i]);
        s1 += (double) (x1[i] * x1[i]);
        s2 += (double) (x2[i] * x2[i]);
        s3 += (double) (x3[i] * x3[i]);
    }
    out[0] = scale_of(s0, n, eps);
    out[1] = scale_of(s1, n, eps);
    out[2] = scale_of(s2, n, eps);
    out[3] = scale_of(s3, n, eps);
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
