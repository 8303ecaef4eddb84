// Statistics of an RMS_NORM derived from its input, without reading the norm.
//
// A norm is often never in memory to be read: the CPU backend computes it and the MUL after it
// in one pass (ggml_compute_forward_rms_norm_mul_fused), or computes the MUL in place over it.
// Reading it would split the graph there, and keep the CPU from fusing the pair. Its input is
// read anyway (it is a node of the graph too): the norm of each row is computed again here,
// as ggml-cpu does (ops.cpp, ggml_compute_forward_rms_norm_f32: the squares summed in double
// one after another, the mean and the scale in float, each value times the scale), so the
// values, and their statistics, are the norm's bit for bit (the sum in another order where
// that cannot change the float mean: row_scale_fast). A run checks that against norms it reads
// at post calls before it plans any derivation (record.c): a ggml that computes norms some
// other way is read as before.
#include "capture/tracer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

bool llt_derive_norm_possible(const struct ggml_tensor * norm, const struct ggml_tensor * src) {
    const struct ggml_tensor * base = src->view_src ? src->view_src : src; // its data is read here: in host memory
    return norm->op == GGML_OP_RMS_NORM && norm->type == GGML_TYPE_F32 && base->buffer && ggml_backend_buffer_is_host(base->buffer) &&
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

// the sum of one row's squares, in ggml's order: each square a float, the sum a double, one
// addition after another (a chain of n dependent additions: slow)
static double row_sum(const float * x, int64_t n) {
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) sum += (double) (x[i] * x[i]);
    return sum;
}

// The same sum in any order, with no chain. It differs from ggml's by rounding only: each sum
// of n non-negative terms is within (n - 1) u of the exact one (u = 2^-53), so the two are
// within 2 (n + 1) u of each other, relatively. ggml's mean is that sum / n as a float, whose
// precision is 2^-24: unless the mean lies within a few 1e-13 of a point where float rounding
// changes, every sum in the interval gives the same float mean, and so the same scale. Where
// it does (about once in 10^5 rows), or the sum is not finite, false: the chain decides.
static bool row_scale_fast(double (*sum_of)(const float *, int64_t), const float * x, int64_t n, float eps, float * out) {
    const double s = sum_of(x, n);
    const double g = 4.0 * (double) (n + 2) * 0x1p-53; // twice the bound, for the roundings here
    const float lo = (s - s * g) / n, hi = (s + s * g) / n;
    if (!isfinite(s) || lo != hi) return false;
    *out = 1.0f / sqrtf(lo + eps);
    return true;
}

static double row_sum_any(const float * x, int64_t n) {
    double s[4] = { 0.0, 0.0, 0.0, 0.0 };
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        for (int k = 0; k < 4; k++) s[k] += (double) (x[i + k] * x[i + k]);
    }
    for (; i < n; i++) s[0] += (double) (x[i] * x[i]);
    return (s[0] + s[1]) + (s[2] + s[3]);
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

__attribute__((target("avx2")))
static double row_sum_any_avx2(const float * x, int64_t n) {
    __m256d a = _mm256_setzero_pd(), b = _mm256_setzero_pd();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 v = _mm256_loadu_ps(x + i);
        const __m256 sq = _mm256_mul_ps(v, v);
        a = _mm256_add_pd(a, _mm256_cvtps_pd(_mm256_castps256_ps128(sq)));
        b = _mm256_add_pd(b, _mm256_cvtps_pd(_mm256_extractf128_ps(sq, 1)));
    }
    double t[4];
    _mm256_storeu_pd(t, _mm256_add_pd(a, b));
    double s = (t[0] + t[1]) + (t[2] + t[3]);
    for (; i < n; i++) s += (double) (x[i] * x[i]);
    return s;
}

static double (*pick_sum_any(void))(const float *, int64_t) {
    return __builtin_cpu_supports("avx2") ? row_sum_any_avx2 : row_sum_any;
}
#else
static double (*pick_sum_any(void))(const float *, int64_t) { return row_sum_any; }
#endif

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
    double (*sum_any)(const float *, int64_t) = pick_sum_any();
    for (int64_t r = 0; r < rows; r++) {
        const float * x = row_of(src, r);
        float scale;
        if (!row_scale_fast(sum_any, x, n, eps, &scale)) scale = scale_of(row_sum(x, n), n, eps);
        float * y = *buf + r * n;
        for (int64_t i = 0; i < n; i++) y[i] = x[i] * scale;
    }
    return llt_stats_compute(*buf, GGML_TYPE_F32, total, st);
}
