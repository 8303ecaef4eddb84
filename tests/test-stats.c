// Tensor statistics against a double-precision reference computed here: F32 with NaN/Inf/zeros
// and awkward lengths, F16, BF16, integer types and every quantized type. The reference
// decodes elements on its own (F16 through ggml's scalar converter, BF16 by bit shift,
// quantized types through ggml's to_float, Q8_1/Q8_K by their block formula) and never calls
// llt_stats_compute or llt_to_float. Quantized data comes from ggml_quantize_chunk, except for
// the five lattice types (IQ1/IQ2), whose blocks are fixed pseudo-random bytes.
#include "testutil.h"

#include "lltrace.h"

#include <math.h>
#include <stdint.h>

// ---- the reference -----------------------------------------------------------------------

struct ref {
    int64_t n, nan, pinf, ninf, zero;
    double  min, max, mean, std, absmax;
};

static struct ref reference(const float * x, int64_t n) {
    struct ref r = { .n = n };
    int64_t nf = 0;
    double sum = 0;
    for (int64_t i = 0; i < n; i++) {
        const double v = x[i];
        if (isnan(v)) { r.nan++; continue; }
        if (isinf(v)) { if (v > 0) r.pinf++; else r.ninf++; continue; }
        if (v == 0) r.zero++;
        if (nf == 0 || v < r.min) r.min = v;
        if (nf == 0 || v > r.max) r.max = v;
        if (fabs(v) > r.absmax) r.absmax = fabs(v);
        sum += v;
        nf++;
    }
    if (nf == 0) return r;
    r.mean = sum / (double) nf;
    double ss = 0;
    for (int64_t i = 0; i < n; i++) {
        if (isfinite(x[i])) ss += ((double) x[i] - r.mean) * ((double) x[i] - r.mean);
    }
    r.std = sqrt(ss / (double) nf);
    return r;
}

// |got - want| within 1e-6 of the data's scale (the largest magnitude), so that a mean near
// zero is held to the same absolute accuracy as the values it averages
static void check_close(const char * what, const char * label, double got, double want, double scale) {
    const double tol = 1e-6 * fmax(fabs(want), scale) + 1e-300;
    CHECK(fabs(got - want) <= tol, "%s %s: got %.17g, want %.17g", label, what, got, want);
}

static void check_stats(const char * label, const void * data, int type, int64_t n, const float * decoded) {
    struct llt_stats s;
    int rc = llt_stats_compute(data, type, n, &s);
    CHECK(rc == LLT_OK, "%s: llt_stats_compute failed: %s", label, llt_last_error());
    if (rc != LLT_OK) return;
    const struct ref r = reference(decoded, n);
    CHECK(s.n == r.n && s.n_nan == r.nan && s.n_pinf == r.pinf && s.n_ninf == r.ninf && s.n_zero == r.zero,
        "%s counts: got n %lld nan %lld +inf %lld -inf %lld zero %lld, want %lld %lld %lld %lld %lld", label,
        (long long) s.n, (long long) s.n_nan, (long long) s.n_pinf, (long long) s.n_ninf, (long long) s.n_zero,
        (long long) r.n, (long long) r.nan, (long long) r.pinf, (long long) r.ninf, (long long) r.zero);
    // min, max and absmax are values of the data: exact
    CHECK(s.min == r.min && s.max == r.max && s.absmax == r.absmax, "%s: min/max/absmax got %g %g %g, want %g %g %g",
        label, s.min, s.max, s.absmax, r.min, r.max, r.absmax);
    check_close("mean", label, s.mean, r.mean, r.absmax);
    check_close("std", label, s.std, r.std, r.std);
}

// ---- data --------------------------------------------------------------------------------

static float wave(int64_t i) {
    return (float) (0.8 * sin(0.37 * (double) i) + 0.15 * cos(1.3 * (double) i + 0.2) + 0.05);
}

static void test_f32(void) {
    const int64_t lens[] = { 1, 7, 8, 13, 4095, 4096, 4097, 100003 };
    for (size_t k = 0; k < sizeof(lens)/sizeof(lens[0]); k++) {
        const int64_t n = lens[k];
        float * x = malloc((size_t) n * sizeof(float));
        REQUIRE(x, "out of memory");
        for (int64_t i = 0; i < n; i++) x[i] = wave(i) * 3.0f;
        char label[64];
        snprintf(label, sizeof(label), "f32 n=%lld", (long long) n);
        check_stats(label, x, GGML_TYPE_F32, n, x);

        // specials sprinkled in, and -0.0 which counts as a zero
        for (int64_t i = 0; i < n; i += 5) x[i] = 0.0f;
        for (int64_t i = 1; i < n; i += 11) x[i] = NAN;
        for (int64_t i = 2; i < n; i += 17) x[i] = INFINITY;
        for (int64_t i = 3; i < n; i += 23) x[i] = -INFINITY;
        for (int64_t i = 4; i < n; i += 29) x[i] = -0.0f;
        snprintf(label, sizeof(label), "f32 specials n=%lld", (long long) n);
        check_stats(label, x, GGML_TYPE_F32, n, x);

        // a large mean must not eat the variance
        for (int64_t i = 0; i < n; i++) x[i] = 1.0e6f + wave(i);
        snprintf(label, sizeof(label), "f32 offset n=%lld", (long long) n);
        check_stats(label, x, GGML_TYPE_F32, n, x);
        free(x);
    }

    // one special alone among finite values, each in turn: the finite lanes must notice it (a
    // NaN with its sign bit set orders below -inf)
    const float alone[4] = { NAN, copysignf(NAN, -1.0f), INFINITY, -INFINITY };
    for (int k = 0; k < 4; k++) {
        float y[100];
        for (int i = 0; i < 100; i++) y[i] = wave(i) * 3.0f;
        y[37] = alone[k];
        char label[64];
        snprintf(label, sizeof(label), "f32 one special (%d) among finite values", k);
        check_stats(label, y, GGML_TYPE_F32, 100, y);
    }

    // nothing finite: counts only, every moment 0
    float bad[5] = { NAN, INFINITY, -INFINITY, NAN, NAN };
    struct llt_stats s;
    CHECK_INT(llt_stats_compute(bad, GGML_TYPE_F32, 5, &s), LLT_OK);
    CHECK(s.n_nan == 3 && s.n_pinf == 1 && s.n_ninf == 1 && s.min == 0 && s.max == 0 && s.mean == 0 && s.std == 0,
        "all non-finite: nan %lld +inf %lld -inf %lld min %g max %g mean %g std %g", (long long) s.n_nan,
        (long long) s.n_pinf, (long long) s.n_ninf, s.min, s.max, s.mean, s.std);

    // known values: 1, 2, 3, 4 -> mean 2.5, population std sqrt(1.25)
    const float four[4] = { 1, 2, 3, 4 };
    CHECK_INT(llt_stats_compute(four, GGML_TYPE_F32, 4, &s), LLT_OK);
    CHECK(s.mean == 2.5 && fabs(s.std - sqrt(1.25)) < 1e-15 && s.min == 1 && s.max == 4 && s.absmax == 4,
        "1..4: mean %g std %.17g min %g max %g", s.mean, s.std, s.min, s.max);

    // data at an odd address (mapped files place tensors anywhere)
    unsigned char raw[4 * 100 + 1];
    float * src = malloc(100 * sizeof(float));
    REQUIRE(src, "out of memory");
    for (int i = 0; i < 100; i++) src[i] = wave(i);
    memcpy(raw + 1, src, sizeof(float) * 100);
    check_stats("f32 unaligned", raw + 1, GGML_TYPE_F32, 100, src);
    free(src);
}

static void test_half(void) {
    const int64_t n = 9001;
    float * x = malloc((size_t) n * sizeof(float));
    ggml_fp16_t * h = malloc((size_t) n * sizeof(ggml_fp16_t));
    ggml_bf16_t * b = malloc((size_t) n * sizeof(ggml_bf16_t));
    float * dec = malloc((size_t) n * sizeof(float));
    REQUIRE(x && h && b && dec, "out of memory");
    for (int64_t i = 0; i < n; i++) x[i] = wave(i) * 40.0f;
    x[10] = NAN; x[20] = INFINITY; x[30] = -INFINITY; x[40] = 0.0f; x[50] = 1.0e6f; // 1e6 overflows f16: +inf
    for (int64_t i = 0; i < n; i++) {
        h[i] = ggml_fp32_to_fp16(x[i]);
        b[i] = ggml_fp32_to_bf16(x[i]);
    }
    for (int64_t i = 0; i < n; i++) dec[i] = ggml_fp16_to_fp32(h[i]);
    check_stats("f16", h, GGML_TYPE_F16, n, dec);
    for (int64_t i = 0; i < n; i++) {
        const uint32_t bits = (uint32_t) b[i].bits << 16; // bf16 is the top half of an f32
        memcpy(&dec[i], &bits, sizeof(bits));
    }
    check_stats("bf16", b, GGML_TYPE_BF16, n, dec);
    free(x); free(h); free(b); free(dec);
}

static void test_plain_types(void) {
    enum { N = 777 };
    int8_t i8[N]; int16_t i16[N]; int32_t i32[N]; int64_t i64[N]; double f64[N];
    uint8_t u8[N], bl[N]; uint16_t u16[N]; uint32_t u32[N]; uint64_t u64[N];
    float dec[N];
    for (int i = 0; i < N; i++) {
        i8[i] = (int8_t) (i % 200 - 100); i16[i] = (int16_t) (i * 37 - 9000); i32[i] = i * 1001 - 300000;
        i64[i] = (int64_t) i * 12345 - 4000000; f64[i] = wave(i) * 1e3;
        u8[i] = (uint8_t) (i % 256); bl[i] = (uint8_t) (i % 3 == 0); u16[i] = (uint16_t) (i * 80);
        u32[i] = (uint32_t) i * 5000u; u64[i] = (uint64_t) i * 70000u;
    }
#define PLAIN(arr, type, label) do { \
        for (int i = 0; i < N; i++) dec[i] = (float) (arr)[i]; \
        check_stats(label, arr, type, N, dec); \
    } while (0)
    PLAIN(i8, GGML_TYPE_I8, "i8");       PLAIN(i16, GGML_TYPE_I16, "i16");
    PLAIN(i32, GGML_TYPE_I32, "i32");    PLAIN(i64, GGML_TYPE_I64, "i64");
    PLAIN(f64, GGML_TYPE_F64, "f64");    PLAIN(u8, LLT_TYPE_U8, "u8");
    PLAIN(u16, LLT_TYPE_U16, "u16");     PLAIN(u32, LLT_TYPE_U32, "u32");
    PLAIN(u64, LLT_TYPE_U64, "u64");     PLAIN(bl, LLT_TYPE_BOOL, "bool");
#undef PLAIN
}

// every quantized type: quantize known floats with ggml, decode them with ggml's own
// to_float (or by the block formula where ggml has none) as the reference
static void test_quantized(void) {
    const int64_t per_row = 1280, rows = 7, n = per_row * rows; // 8960: chunks of 4096 and a tail
    float * x = malloc((size_t) n * sizeof(float));
    float * imatrix = malloc((size_t) per_row * sizeof(float));
    float * dec = malloc((size_t) n * sizeof(float));
    void * q = malloc((size_t) n * 8);
    REQUIRE(x && imatrix && dec && q, "out of memory");
    for (int64_t i = 0; i < n; i++) x[i] = wave(i) * (1.0f + (float) (i % 97) / 50.0f);
    for (int64_t i = 0; i < per_row; i++) imatrix[i] = 1.0f;
    int tested = 0;
    for (int t = 0; t < GGML_TYPE_COUNT; t++) {
        const struct ggml_type_traits * tt = ggml_get_type_traits((enum ggml_type) t);
        if (tt->blck_size == 0 || !ggml_is_quantized((enum ggml_type) t)) continue;
        char label[64];
        snprintf(label, sizeof(label), "%s", tt->type_name);
        const bool lattice = t == GGML_TYPE_IQ2_XXS || t == GGML_TYPE_IQ2_XS || t == GGML_TYPE_IQ2_S ||
                             t == GGML_TYPE_IQ1_S || t == GGML_TYPE_IQ1_M;
        if (lattice) {
            // their quantizers first build lattice tables (seconds each); ggml's to_float decodes
            // any bytes, so fill the blocks with fixed pseudo-random bytes and a sane leading scale
            uint32_t r = 12345u + (uint32_t) t;
            for (int64_t k = 0; k < n / tt->blck_size * (int64_t) tt->type_size; k++) {
                r = r * 1664525u + 1013904223u;
                ((unsigned char *) q)[k] = (unsigned char) (r >> 24);
            }
            if (t != GGML_TYPE_IQ1_M) { // the others start with a half-precision scale
                const ggml_fp16_t d = ggml_fp32_to_fp16(0.01f);
                for (int64_t blk = 0; blk < n / tt->blck_size; blk++) memcpy((char *) q + blk * tt->type_size, &d, 2);
            }
            tt->to_float(q, dec, n);
        } else if (t == GGML_TYPE_Q8_1 || t == GGML_TYPE_Q8_K) {
            // no ggml quantizer or to_float: fill blocks by hand and decode by the formula
            const int bs = (int) tt->blck_size;
            for (int64_t blk = 0; blk < n / bs; blk++) {
                unsigned char * p = (unsigned char *) q + blk * tt->type_size;
                const float d = 0.01f * (float) (blk % 7 + 1);
                int8_t * qs;
                if (t == GGML_TYPE_Q8_1) {
                    const ggml_fp16_t dh = ggml_fp32_to_fp16(d);
                    memcpy(p, &dh, 2);
                    memset(p + 2, 0, 2);
                    qs = (int8_t *) (p + 4);
                } else {
                    memcpy(p, &d, 4);
                    qs = (int8_t *) (p + 4);
                }
                const float dd = t == GGML_TYPE_Q8_1 ? ggml_fp16_to_fp32(ggml_fp32_to_fp16(d)) : d;
                for (int j = 0; j < bs; j++) {
                    qs[j] = (int8_t) ((blk * 31 + j * 7) % 255 - 127);
                    dec[blk * bs + j] = dd * qs[j];
                }
            }
        } else {
            const size_t got = ggml_quantize_chunk((enum ggml_type) t, x, q, 0, rows, per_row,
                ggml_quantize_requires_imatrix((enum ggml_type) t) ? imatrix : NULL);
            CHECK(got == (size_t) n / tt->blck_size * tt->type_size, "%s: quantized %zu bytes", label, got);
            REQUIRE(tt->to_float, "%s has no to_float", label);
            tt->to_float(q, dec, n);
        }
        check_stats(label, q, t, n, dec);
        tested++;
    }
    CHECK(tested >= 25, "only %d quantized types tested", tested);
    free(x); free(imatrix); free(dec); free(q);
}

static void test_errors(void) {
    float x[64] = {0};
    struct llt_stats s;
    CHECK_INT(llt_stats_compute(x, GGML_TYPE_Q4_0, 31, &s), LLT_EINVAL); // not whole blocks
    CHECK(strstr(llt_last_error(), "block size") != NULL, "message: %s", llt_last_error());
    CHECK_INT(llt_stats_compute(x, 4, 32, &s), LLT_EINVAL);              // removed type Q4_2
    CHECK_INT(llt_stats_compute(x, 9999, 1, &s), LLT_EINVAL);
    CHECK_INT(llt_to_float(x, GGML_TYPE_F32, -1, x), LLT_EINVAL);
    CHECK_STR(llt_type_name(GGML_TYPE_Q4_K), "q4_K");
    CHECK_STR(llt_type_name(LLT_TYPE_BOOL), "bool");
    CHECK_STR(llt_type_name(4), "?");
}

int main(void) {
    llt_log_init(false);
    test_f32();
    test_half();
    test_plain_types();
    test_quantized();
    test_errors();
    ggml_quantize_free();
    return test_result("test-stats");
}
