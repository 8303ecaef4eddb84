// A norm's statistics derived from its input (src/capture/derive.c) against a reference written
// here from ggml-cpu's RMS_NORM (ops.cpp: the squares summed in double one after another, the
// mean and the scale in float, each value times the scale), bit for bit: random rows over a wide
// range of magnitudes, rows with gaps between them, and a row whose squares summed in another
// order than ggml's give another float mean (the derivation must see that and sum in order).
#include "testutil.h"

#include "capture/tracer.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

static void reference(const struct ggml_tensor * src, float eps, float * y, struct llt_stats * st) {
    const int64_t n = src->ne[0], rows = src->ne[1];
    for (int64_t r = 0; r < rows; r++) {
        const float * x = (const float *) ((const char *) src->data + r * src->nb[1]);
        double sum = 0.0;
        for (int64_t i = 0; i < n; i++) sum += (double) (x[i] * x[i]);
        const float mean = sum / n;
        const float scale = 1.0f / sqrtf(mean + eps);
        for (int64_t i = 0; i < n; i++) y[r * n + i] = x[i] * scale;
    }
    REQUIRE(llt_stats_compute(y, GGML_TYPE_F32, n * rows, st) == LLT_OK, "%s", llt_last_error());
}

// src: rows of n floats, row_floats apart, at data (aligned as ggml's buffers are); norm: its RMS_NORM, contiguous
static void tensors(struct ggml_tensor * src, struct ggml_tensor * norm, float * data, int64_t n, int64_t rows,
                    int64_t row_floats, float eps) {
    memset(src, 0, sizeof(*src));
    src->type = GGML_TYPE_F32;
    src->ne[0] = n; src->ne[1] = rows; src->ne[2] = src->ne[3] = 1;
    src->nb[0] = sizeof(float); src->nb[1] = (size_t) row_floats * sizeof(float);
    src->nb[2] = src->nb[3] = src->nb[1] * (size_t) rows;
    src->data = data;
    static ggml_backend_buffer_t host; // the input's memory, as a host buffer (a CPU backend's)
    if (host) ggml_backend_buffer_free(host);
    host = ggml_backend_cpu_buffer_from_ptr(data, src->nb[3]);
    src->buffer = host;
    memset(norm, 0, sizeof(*norm));
    norm->type = GGML_TYPE_F32;
    norm->op = GGML_OP_RMS_NORM;
    memcpy(norm->op_params, &eps, sizeof(eps));
    for (int d = 0; d < 4; d++) norm->ne[d] = src->ne[d];
    norm->nb[0] = sizeof(float);
    for (int d = 1; d < 4; d++) norm->nb[d] = norm->nb[d - 1] * (size_t) norm->ne[d - 1];
    norm->src[0] = src;
}

static int compare(const char * what, const struct ggml_tensor * norm, const struct ggml_tensor * src, float * ref_y,
                   float ** buf, size_t * cap) {
    float eps;
    memcpy(&eps, norm->op_params, sizeof(eps));
    struct llt_stats want, got;
    reference(src, eps, ref_y, &want);
    CHECK(llt_derive_norm_possible(norm, src), "%s: not derivable", what);
    REQUIRE(llt_derive_norm_stats(norm, src, buf, cap, &got) == LLT_OK, "%s: %s", what, llt_last_error());
    const bool same = memcmp(&got, &want, sizeof(got)) == 0;
    CHECK(same, "%s: derived mean %.17g std %.17g min %.9g max %.9g, ggml's %.17g %.17g %.9g %.9g", what, got.mean,
          got.std, got.min, got.max, want.mean, want.std, want.min, want.max);
    return same;
}

static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static double uniform(void) {
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return (double) (rng >> 11) * 0x1p-53;
}

int main(void) {
    float * buf = NULL;
    size_t cap = 0;
    struct ggml_tensor src, norm;

    // Eight squares: 1 and 2^-24 (their exact sum / 8 lies halfway between two floats), and six
    // of 2^-54, a quarter of the last place of the sum each. ggml adds them one by one: each
    // rounds away, the mean is the tie, which rounds to the even float 1/8. Any order that adds
    // the small ones together first (four lanes, or eight, then across them) keeps 2^-52 of
    // them: the mean rounds up, and the scale, and every value, differ.
    _Alignas(64) float crafted[8] = { 1.0f, 0x1p-27f, 0x1p-27f, 0x1p-27f, 0x1p-12f, 0x1p-27f, 0x1p-27f, 0x1p-27f };
    double lanes[4] = { 0 }, seq = 0;
    for (int i = 0; i < 8; i++) {
        lanes[i % 4] += (double) (crafted[i] * crafted[i]);
        seq += (double) (crafted[i] * crafted[i]);
    }
    const float mean_lanes = ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) / 8, mean_seq = seq / 8;
    CHECK(1.0f / sqrtf(mean_lanes) != 1.0f / sqrtf(mean_seq), "the crafted row's scales agree (means %.9g, %.9g): it tests nothing",
          mean_lanes, mean_seq);
    float y8[8];
    tensors(&src, &norm, crafted, 8, 1, 8, 0.0f);
    compare("crafted row", &norm, &src, y8, &buf, &cap);

    // random rows, magnitudes from 1e-6 to 1e3 and signs mixed, the rows 8 floats apart
    enum { N = 768, ROWS = 32, GAP = 8 };
    static _Alignas(64) float data[ROWS * (N + GAP)];
    static float ref_y[ROWS * N];
    int same = 0, tried = 0;
    for (int t = 0; t < 400; t++) {
        const double decades = 1 + 8 * uniform();
        for (int i = 0; i < ROWS * (N + GAP); i++) {
            const double mag = pow(10.0, 3 - decades * uniform());
            data[i] = (float) (uniform() < 0.5 ? -mag : mag);
        }
        const int rows = t % 3 == 0 ? 1 : ROWS; // a generated token's norm is one row
        tensors(&src, &norm, data, N, rows, N + GAP, t % 2 ? 1e-5f : 1e-6f);
        char what[32];
        snprintf(what, sizeof(what), "random %d", t);
        same += compare(what, &norm, &src, ref_y, &buf, &cap);
        tried++;
    }
    printf("test-derive: %d of %d random tensors derived bit for bit\n", same, tried);

    // a norm whose input is not F32, not in host memory (an RPC server's, a GPU's), or that is
    // no RMS_NORM, is not derived
    tensors(&src, &norm, data, N, 1, N, 1e-5f);
    src.buffer = NULL;
    CHECK(!llt_derive_norm_possible(&norm, &src), "an input in no host buffer is derivable");
    tensors(&src, &norm, data, N, 1, N, 1e-5f);
    src.type = GGML_TYPE_F16;
    CHECK(!llt_derive_norm_possible(&norm, &src), "an F16 input is derivable");
    tensors(&src, &norm, data, N, 1, N, 1e-5f);
    norm.op = GGML_OP_NORM;
    CHECK(!llt_derive_norm_possible(&norm, &src), "a NORM (LayerNorm) is derivable");
    free(buf);
    return test_result("test-derive");
}
