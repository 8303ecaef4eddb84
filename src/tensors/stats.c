// Element types and tensor statistics: any type to float, and min/max/mean/std/absmax plus
// NaN/Inf/zero counts in one streaming pass over small chunks.
//
// Statistics run on the inference hot path, so the loops are written in lanes: each lane
// keeps its own partial sums, which vectorise without reassociating floating-point sums (no
// -ffast-math needed). Sums are kept in double; a chunk of finite values is read once, its
// variance taken around its first value (chunk_finite says why that is precise), a chunk with
// a NaN or an infinity twice, around its own mean; chunks are merged with Chan's formula, so a
// large mean does not eat the variance.
#include "core/internal.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

// ---- element types -----------------------------------------------------------------------

static const struct { int type; const char * name; size_t size; } xtypes[] = {
    { LLT_TYPE_U8,   "u8",   1 },
    { LLT_TYPE_U16,  "u16",  2 },
    { LLT_TYPE_U32,  "u32",  4 },
    { LLT_TYPE_U64,  "u64",  8 },
    { LLT_TYPE_BOOL, "bool", 1 },
};
_Static_assert(sizeof(xtypes)/sizeof(xtypes[0]) == LLT_TYPE_BOOL - LLT_TYPE_U8 + 1, "xtype table");

static bool is_ggml_type(int type) {
    return type >= 0 && type < GGML_TYPE_COUNT && ggml_get_type_traits((enum ggml_type) type)->blck_size > 0;
}

const char * llt_type_name(int type) {
    if (is_ggml_type(type)) return ggml_type_name((enum ggml_type) type);
    if (type >= LLT_TYPE_U8 && type <= LLT_TYPE_BOOL) return xtypes[type - LLT_TYPE_U8].name;
    return "?";
}

int64_t llt_type_block_size(int type) {
    if (is_ggml_type(type)) return ggml_blck_size((enum ggml_type) type);
    return type >= LLT_TYPE_U8 && type <= LLT_TYPE_BOOL ? 1 : 0;
}

size_t llt_type_block_bytes(int type) {
    if (is_ggml_type(type)) return ggml_type_size((enum ggml_type) type);
    return type >= LLT_TYPE_U8 && type <= LLT_TYPE_BOOL ? xtypes[type - LLT_TYPE_U8].size : 0;
}

// ---- conversion to float -----------------------------------------------------------------

// ggml has no to_float for these two; layouts from ggml/src/ggml-common.h
typedef struct { uint16_t d, s; int8_t qs[32]; } block_q8_1;
typedef struct { float d; int8_t qs[256]; int16_t bsums[16]; } block_q8_K;

// src aligned for its type; n a multiple of the block size
static int to_float_aligned(const void * src, int type, int64_t n, float * dst) {
    switch (type) {
        case GGML_TYPE_F32:  memcpy(dst, src, (size_t) n * sizeof(float)); return LLT_OK;
        case GGML_TYPE_F64:  for (int64_t i = 0; i < n; i++) dst[i] = (float) ((const double   *) src)[i]; return LLT_OK;
        case GGML_TYPE_I8:   for (int64_t i = 0; i < n; i++) dst[i] = (float) ((const int8_t   *) src)[i]; return LLT_OK;
        case GGML_TYPE_I16:  for (int64_t i = 0; i < n; i++) dst[i] = (float) ((const int16_t  *) src)[i]; return LLT_OK;
        case GGML_TYPE_I32:  for (int64_t i = 0; i < n; i++) dst[i] = (float) ((const int32_t  *) src)[i]; return LLT_OK;
        case GGML_TYPE_I64:  for (int64_t i = 0; i < n; i++) dst[i] = (float) ((const int64_t  *) src)[i]; return LLT_OK;
        case LLT_TYPE_U8:    for (int64_t i = 0; i < n; i++) dst[i] = (float) ((const uint8_t  *) src)[i]; return LLT_OK;
        case LLT_TYPE_U16:   for (int64_t i = 0; i < n; i++) dst[i] = (float) ((const uint16_t *) src)[i]; return LLT_OK;
        case LLT_TYPE_U32:   for (int64_t i = 0; i < n; i++) dst[i] = (float) ((const uint32_t *) src)[i]; return LLT_OK;
        case LLT_TYPE_U64:   for (int64_t i = 0; i < n; i++) dst[i] = (float) ((const uint64_t *) src)[i]; return LLT_OK;
        case LLT_TYPE_BOOL:  for (int64_t i = 0; i < n; i++) dst[i] = ((const uint8_t *) src)[i] ? 1.0f : 0.0f; return LLT_OK;
        case GGML_TYPE_Q8_1:
            for (int64_t b = 0; b < n / 32; b++) {
                const block_q8_1 * x = (const block_q8_1 *) src + b;
                const float d = ggml_fp16_to_fp32(x->d);
                for (int j = 0; j < 32; j++) dst[b*32 + j] = d * x->qs[j];
            }
            return LLT_OK;
        case GGML_TYPE_Q8_K:
            for (int64_t b = 0; b < n / 256; b++) {
                const block_q8_K * x = (const block_q8_K *) src + b;
                for (int j = 0; j < 256; j++) dst[b*256 + j] = x->d * x->qs[j];
            }
            return LLT_OK;
        default:
            break;
    }
    const struct ggml_type_traits * tt = is_ggml_type(type) ? ggml_get_type_traits((enum ggml_type) type) : NULL;
    if (!tt || !tt->to_float) {
        return llt_set_error(LLT_EINVAL, "cannot convert type %s (%d) to float", llt_type_name(type), type);
    }
    tt->to_float(src, dst, n);
    return LLT_OK;
}

_Static_assert(sizeof(block_q8_1) == 36, "block_q8_1 layout");
_Static_assert(sizeof(block_q8_K) == 292, "block_q8_K layout");

// elements per chunk: every block size (32, 64, 128, 256) divides it
#define CHUNK 4096

int llt_to_float(const void * src, int type, int64_t n, float * dst) {
    const int64_t bs = llt_type_block_size(type);
    if (bs == 0) return llt_set_error(LLT_EINVAL, "unknown element type %d", type);
    if (n < 0 || n % bs != 0) {
        return llt_set_error(LLT_EINVAL, "%lld elements of %s: not a multiple of its block size %lld",
            (long long) n, llt_type_name(type), (long long) bs);
    }
    if (((uintptr_t) src & 7) == 0) return to_float_aligned(src, type, n, dst);
    // mapped files may place data at any byte: go through an aligned buffer (at most 8 bytes
    // per element: the widest plain types; quantized blocks are smaller)
    const size_t bb = llt_type_block_bytes(type);
    _Alignas(8) unsigned char bounce[CHUNK * 8];
    for (int64_t i = 0; i < n; i += CHUNK) {
        const int64_t m = n - i < CHUNK ? n - i : CHUNK;
        memcpy(bounce, (const unsigned char *) src + (size_t) (i / bs) * bb, (size_t) (m / bs) * bb);
        int rc = to_float_aligned(bounce, type, m, dst + i);
        if (rc != LLT_OK) return rc;
    }
    return LLT_OK;
}

// ---- statistics --------------------------------------------------------------------------

#define LANES 8

struct stats_acc {
    int64_t n, n_nan, n_pinf, n_ninf, n_zero, n_fin;
    double  mean, m2; // running mean and sum of squared deviations of the finite values
    float   min, max, absmax;
};

// Per-lane partials of one chunk. Every test is done on the float's bits with integers:
// floating-point compares may trap, which keeps the compiler from vectorising selects on them.
// min and max are kept as order-preserving integer keys.
// absmax is not kept: over finite values it is max(|min|, |max|) (stats_chunk).
struct stats_lanes {
    int32_t nan[LANES], pinf[LANES], ninf[LANES], zero[LANES], fin[LANES];
    int32_t kmin[LANES], kmax[LANES]; // float_key() of the finite values
    double  sum[LANES];
};

static inline uint32_t float_bits(float v) { uint32_t u; memcpy(&u, &v, sizeof(u)); return u; }
static inline float    bits_float(uint32_t u) { float v; memcpy(&v, &u, sizeof(v)); return v; }
// a signed integer that orders like the float (an involution: it is also its own inverse)
static inline int32_t  float_key(uint32_t u) { return (int32_t) (u ^ ((uint32_t) ((int32_t) u >> 31) & 0x7fffffffu)); }
// the keys of +inf and -inf: a NaN's key lies beyond them (above +inf's, or below -inf's
// when its sign bit is set), a finite value's between
#define KEY_PINF ((int32_t) 0x7f800000)
#define KEY_NINF ((int32_t) 0x807fffff)

static inline void stats_lane(struct stats_lanes * L, int j, float v) {
    const uint32_t u   = float_bits(v);
    const uint32_t mag = u & 0x7fffffffu;
    const int32_t  fin = mag < 0x7f800000u;
    const int32_t  key = float_key(u);
    L->nan[j]  += mag > 0x7f800000u;
    L->pinf[j] += u == 0x7f800000u;
    L->ninf[j] += u == 0xff800000u;
    L->zero[j] += mag == 0;
    L->fin[j]  += fin;
    L->sum[j]  += (double) bits_float(u & (0u - (uint32_t) fin)); // v, or +0 when not finite
    L->kmin[j]   = (fin & (key < L->kmin[j]))   ? key : L->kmin[j];
    L->kmax[j]   = (fin & (key > L->kmax[j]))   ? key : L->kmax[j];
}

static inline void stats_dev(double * q, int j, float v, double mean) {
    const uint32_t u = float_bits(v);
    const int32_t  fin = (u & 0x7fffffffu) < 0x7f800000u;
    const double   d = (double) bits_float(u & (0u - (uint32_t) fin)) - mean;
    q[j] += (double) fin * d * d;
}

// The common case first: a chunk of finite values, in one pass over it that keeps five
// partials per lane: the zeros, the smallest and largest key, the sum of the values and the
// sum of their squared deviations from the chunk's first value c0. Then m2 = sum (x-c0)^2 -
// n (mean-c0)^2. No value lies more than sqrt(n-1) standard deviations from its chunk's mean
// (Samuelson's inequality), so the subtraction costs at most a factor n = 4096 of double's
// precision: a relative error of about 1e-12 in the worst case, far below float data's own.
// A NaN or an infinity makes the sums NaN or infinite (finite floats cannot overflow them):
// such a chunk is done again by the general lanes, whose sum adds the same numbers in the
// same order.
//
// The rows of LANES values: lane j holds element j of every row. Built twice, the AVX2 one
// with intrinsics (GCC's vectoriser kept the doubles scalar once both sums were in one
// loop); both do the same operations in the same order, so they give the same bits.
// LLT_STATS_GENERIC builds the generic one only (test-stats-generic runs it on any machine).
struct row_sums {
    double  sum[LANES], sq[LANES];
    float   min[LANES], max[LANES]; // compared as floats: the values are finite (a -0 and a +0 tie)
    int32_t zero[LANES];
};

static void rows_generic(const float * x, int nv, double c0, struct row_sums * r) {
    for (int j = 0; j < LANES; j++) {
        r->sum[j] = r->sq[j] = 0;
        r->zero[j] = 0;
        r->min[j] = FLT_MAX;
        r->max[j] = -FLT_MAX;
    }
    for (int i = 0; i < nv; i += LANES) {
        for (int j = 0; j < LANES; j++) {
            const float  v = x[i + j];
            const double d = (double) v - c0;
            r->sum[j]  += (double) v;
            r->sq[j]   += d * d;
            r->zero[j] += (float_bits(v) & 0x7fffffffu) == 0;
            r->min[j]   = v < r->min[j] ? v : r->min[j]; // as _mm256_min_ps(v, min)
            r->max[j]   = v > r->max[j] ? v : r->max[j];
        }
    }
}

#if defined(__x86_64__) && defined(__GNUC__) && !defined(LLT_STATS_GENERIC)
#include <immintrin.h>

__attribute__((target("avx2")))
static void rows_avx2(const float * x, int nv, double c0, struct row_sums * r) {
    const __m256d c   = _mm256_set1_pd(c0);
    __m256d sum_lo = _mm256_setzero_pd(), sum_hi = _mm256_setzero_pd(), sq_lo = _mm256_setzero_pd(), sq_hi = _mm256_setzero_pd();
    __m256  mn = _mm256_set1_ps(FLT_MAX), mx = _mm256_set1_ps(-FLT_MAX);
    __m256i zero = _mm256_setzero_si256();
#pragma GCC unroll 2
    for (int i = 0; i < nv; i += LANES) {
        const __m256  v  = _mm256_loadu_ps(x + i);
        const __m256d lo = _mm256_cvtps_pd(_mm_loadu_ps(x + i)), hi = _mm256_cvtps_pd(_mm_loadu_ps(x + i + 4));
        const __m256d dl = _mm256_sub_pd(lo, c), dh = _mm256_sub_pd(hi, c);
        sum_lo = _mm256_add_pd(sum_lo, lo);
        sum_hi = _mm256_add_pd(sum_hi, hi);
        sq_lo  = _mm256_add_pd(sq_lo, _mm256_mul_pd(dl, dl));
        sq_hi  = _mm256_add_pd(sq_hi, _mm256_mul_pd(dh, dh));
        mn = _mm256_min_ps(v, mn);
        mx = _mm256_max_ps(v, mx);
        // -0 == +0 as floats, and the values are finite
        zero = _mm256_sub_epi32(zero, _mm256_castps_si256(_mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_EQ_OQ)));
    }
    _mm256_storeu_pd(r->sum, sum_lo);
    _mm256_storeu_pd(r->sum + 4, sum_hi);
    _mm256_storeu_pd(r->sq, sq_lo);
    _mm256_storeu_pd(r->sq + 4, sq_hi);
    _mm256_storeu_si256((__m256i *) r->zero, zero);
    _mm256_storeu_ps(r->min, mn);
    _mm256_storeu_ps(r->max, mx);
}
#endif

typedef void (*rows_fn)(const float *, int, double, struct row_sums *);

// the widest build this CPU runs
static rows_fn rows_pick(void) {
#if defined(__x86_64__) && defined(__GNUC__) && !defined(LLT_STATS_GENERIC)
    if (__builtin_cpu_supports("avx2")) return rows_avx2;
#endif
    return rows_generic;
}

// a chunk's partials, reduced over the lanes
struct chunk_sums {
    int64_t  nan, pinf, ninf, zero, fin;
    int32_t  kmin, kmax; // float_key() of the smallest and largest finite value
    double   sum, m2;    // m2 around the chunk's own mean
};

// a chunk of finite values; false if it has a value that is not finite
static bool chunk_finite(const float * x, int n, rows_fn rows, struct chunk_sums * c) {
    const double c0 = (double) x[0];
    const int nv = n / LANES * LANES;
    struct row_sums r;
    rows(x, nv, c0, &r);
    *c = (struct chunk_sums) { .fin = n, .kmin = INT32_MAX, .kmax = INT32_MIN };
    double sq = 0;
    float mn = FLT_MAX, mx = -FLT_MAX;
    for (int j = 0; j < LANES; j++) {
        c->zero += r.zero[j];
        c->sum  += r.sum[j];
        sq      += r.sq[j];
        mn = r.min[j] < mn ? r.min[j] : mn;
        mx = r.max[j] > mx ? r.max[j] : mx;
    }
    c->kmin = float_key(float_bits(mn));
    c->kmax = float_key(float_bits(mx));
    for (int i = nv; i < n; i++) {
        const uint32_t u = float_bits(x[i]);
        const int32_t key = float_key(u);
        const double d = (double) x[i] - c0;
        c->zero += (u & 0x7fffffffu) == 0;
        c->sum  += (double) x[i];
        sq      += d * d;
        c->kmin  = key < c->kmin ? key : c->kmin;
        c->kmax  = key > c->kmax ? key : c->kmax;
    }
    if (!isfinite(c->sum) || !isfinite(sq)) return false;
    const double dm = c->sum / (double) n - c0;
    c->m2 = fmax(sq - (double) n * dm * dm, 0.0);
    return true;
}

// the lanes of any chunk: NaNs and infinities counted and left out
static inline void chunk_any(const float * x, int n, struct chunk_sums * c) {
    struct stats_lanes L = {0};
    for (int j = 0; j < LANES; j++) { L.kmin[j] = INT32_MAX; L.kmax[j] = INT32_MIN; }
    const int nv = n / LANES * LANES;
    for (int i = 0; i < nv; i += LANES) {
        for (int j = 0; j < LANES; j++) stats_lane(&L, j, x[i + j]);
    }
    for (int i = nv; i < n; i++) stats_lane(&L, i - nv, x[i]);
    *c = (struct chunk_sums) { .kmin = INT32_MAX, .kmax = INT32_MIN };
    for (int j = 0; j < LANES; j++) {
        c->nan  += L.nan[j];
        c->pinf += L.pinf[j];
        c->ninf += L.ninf[j];
        c->zero += L.zero[j];
        c->fin  += L.fin[j];
        c->sum  += L.sum[j];
        c->kmin   = L.kmin[j] < c->kmin ? L.kmin[j] : c->kmin;
        c->kmax   = L.kmax[j] > c->kmax ? L.kmax[j] : c->kmax;
    }
    if (c->fin == 0) return;
    const double mean_c = c->sum / (double) c->fin;
    double q[LANES] = {0};
    for (int i = 0; i < nv; i += LANES) {
        for (int j = 0; j < LANES; j++) stats_dev(q, j, x[i + j], mean_c);
    }
    for (int i = nv; i < n; i++) stats_dev(q, i - nv, x[i], mean_c);
    for (int j = 0; j < LANES; j++) c->m2 += q[j];
}

// one chunk of at most CHUNK floats, merged into acc. Built twice, for AVX2 and for any x86-64,
// the loader picks the one the CPU runs (the library is built without -march).
#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target_clones("avx2", "default")))
#endif
static void stats_chunk(const float * x, int n, rows_fn rows, struct stats_acc * acc) {
    struct chunk_sums c;
    if (!chunk_finite(x, n, rows, &c)) chunk_any(x, n, &c);
    acc->n_nan  += c.nan;
    acc->n_pinf += c.pinf;
    acc->n_ninf += c.ninf;
    acc->n_zero += c.zero;
    acc->n += n;
    if (c.fin == 0) return;

    // Chan et al.: merge (n_fin, mean, m2) with the chunk's
    const double mean_c = c.sum / (double) c.fin;
    const double na = (double) acc->n_fin, nb = (double) c.fin, nt = na + nb;
    const double delta = mean_c - acc->mean;
    acc->mean  += delta * nb / nt;
    acc->m2    += c.m2 + delta * delta * na * nb / nt;
    acc->n_fin += c.fin;
    const float cmin = bits_float((uint32_t) float_key((uint32_t) c.kmin));
    const float cmax = bits_float((uint32_t) float_key((uint32_t) c.kmax));
    const float cabs = fabsf(cmin) > fabsf(cmax) ? fabsf(cmin) : fabsf(cmax); // the largest |v|: min's or max's
    acc->min    = cmin < acc->min ? cmin : acc->min;
    acc->max    = cmax > acc->max ? cmax : acc->max;
    acc->absmax = cabs > acc->absmax ? cabs : acc->absmax;
}

int llt_stats_compute(const void * data, int type, int64_t n, struct llt_stats * out) {
    memset(out, 0, sizeof(*out));
    const int64_t bs = llt_type_block_size(type);
    if (bs == 0) return llt_set_error(LLT_EINVAL, "unknown element type %d", type);
    if (n < 0 || n % bs != 0) {
        return llt_set_error(LLT_EINVAL, "%lld elements of %s: not a multiple of its block size %lld",
            (long long) n, llt_type_name(type), (long long) bs);
    }
    struct stats_acc acc = { .min = FLT_MAX, .max = -FLT_MAX };
    const bool direct = type == GGML_TYPE_F32 && ((uintptr_t) data & 3) == 0;
    const rows_fn rows = rows_pick();
    const size_t bb = llt_type_block_bytes(type);
    float buf[CHUNK];
    for (int64_t i = 0; i < n; i += CHUNK) {
        const int m = (int) (n - i < CHUNK ? n - i : CHUNK);
        const float * x = (const float *) data + i;
        if (!direct) {
            int rc = llt_to_float((const unsigned char *) data + (size_t) (i / bs) * bb, type, m, buf);
            if (rc != LLT_OK) return rc;
            x = buf;
        }
        stats_chunk(x, m, rows, &acc);
    }
    out->n      = acc.n;
    out->n_nan  = acc.n_nan;
    out->n_pinf = acc.n_pinf;
    out->n_ninf = acc.n_ninf;
    out->n_zero = acc.n_zero;
    if (acc.n_fin > 0) {
        out->min    = acc.min;
        out->max    = acc.max;
        out->absmax = acc.absmax;
        out->mean   = acc.mean;
        out->std    = sqrt(acc.m2 / (double) acc.n_fin);
    }
    return LLT_OK;
}
