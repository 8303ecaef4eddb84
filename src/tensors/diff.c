// Diffs: metrics between two float arrays, and the comparison of two tensor sets (through a
// name map, namemap.c, where the names differ).
//
// The array kernel is written in lanes like the statistics (stats.c): per-lane partial sums
// in double, and every test on the float's bits with integers, so that it vectorises without
// -ffast-math. Non-negative floats order like their bit patterns, which turns |a-b|, the
// tolerance threshold and the maxima into integer compares. Tolerance is decided in single
// precision: on |a-b| and max(tol_abs, tol_rel*|a|) rounded to float.
// Speed (issue 21: 2.5-3.1 GB/s before, memcpy 12): the lanes hold only what a finite pair
// adds, so that they stay in vector registers; a block with a NaN or an infinity is scanned
// again for those (diff_non_finite). The block is built twice, generic (SSE2) and for AVX2
// (8 floats a register, unsigned integer maxima), picked once by the CPU: the same operations
// in the same order per lane, so the same bits either way (no FMA: it would round differently).
#include "core/internal.h"
#include "tensors/namemap.h"

#include <fnmatch.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// ---- array diff --------------------------------------------------------------------------

#define LANES 8
#define BLOCK 4096 // elements per block: lane counters stay small, the argmax rescan is short

static inline uint32_t float_bits(float v) { uint32_t u; memcpy(&u, &v, sizeof(u)); return u; }
static inline float    bits_float(uint32_t u) { float v; memcpy(&v, &u, sizeof(v)); return v; }

struct diff_lanes {
    int32_t  fin[LANES], exceed[LANES];      // finite pairs; those outside tolerance
    uint32_t max_abs[LANES], max_rel[LANES]; // bits of non-negative floats
    double   s_abs[LANES], s_rel[LANES], s_dd[LANES], s_aa[LANES], s_bb[LANES], s_ab[LANES];
};

struct diff_consts {
    uint32_t tol_abs;  // bits of tol_abs as float
    float    tol_rel;
    uint32_t eps;      // bits of LLT_DIFF_REL_EPS as float
};

// all ones when a and b are both finite, else 0
static inline uint32_t finite_mask(uint32_t ua, uint32_t ub) {
    return 0u - (uint32_t) (((ua & 0x7fffffffu) < 0x7f800000u) & ((ub & 0x7fffffffu) < 0x7f800000u));
}

// bits of |a-b| under the finite mask m (0 for a pair that is not finite)
static inline uint32_t abs_diff_bits(float a, float b, uint32_t m) {
    return float_bits(a - b) & 0x7fffffffu & m;
}

// A pair into lane j. A pair that is not finite adds nothing but 0 here (its NaNs, infinities
// and tolerance are counted by diff_non_finite, for the rare block that has one): the lanes
// then fit in a CPU's vector registers.
static inline void diff_lane(struct diff_lanes * L, int j, float a, float b, const struct diff_consts * c) {
    const uint32_t ua = float_bits(a), ub = float_bits(b);
    const uint32_t m = finite_mask(ua, ub);
    const int32_t  fin = (int32_t) (m & 1);
    const float    fa = bits_float(ua & m), fb = bits_float(ub & m); // the pair, or 0 and 0
    const uint32_t ad = abs_diff_bits(a, b, m);
    const uint32_t ma_f = ua & 0x7fffffffu & m;                    // |a| of a finite pair
    const uint32_t den = ma_f > c->eps ? ma_f : c->eps;
    const uint32_t rel = float_bits(bits_float(ad) / bits_float(den));
    const uint32_t trel = float_bits(c->tol_rel * bits_float(ma_f));
    const uint32_t thr = trel > c->tol_abs ? trel : c->tol_abs;
    L->fin[j]    += fin;
    L->exceed[j] += fin & (ad > thr);
    L->max_abs[j] = ad > L->max_abs[j] ? ad : L->max_abs[j];
    L->max_rel[j] = rel > L->max_rel[j] ? rel : L->max_rel[j];
    const double da = fa, db = fb, dd = da - db;
    L->s_abs[j] += bits_float(ad);
    L->s_rel[j] += bits_float(rel);
    L->s_dd[j]  += dd * dd;
    L->s_aa[j]  += da * da;
    L->s_bb[j]  += db * db;
    L->s_ab[j]  += da * db;
}

struct diff_acc {
    int64_t  a_nan, a_inf, b_nan, b_inf, fin, exceed, max_abs_index;
    uint32_t max_abs, max_rel;
    double   s_abs, s_rel, s_dd, s_aa, s_bb, s_ab;
};

// the pairs of a block that are not both finite: NaNs, infinities, and outside tolerance
// unless both are NaN or both the same infinity
static void diff_non_finite(const float * a, const float * b, int n, struct diff_acc * acc) {
    for (int i = 0; i < n; i++) {
        const uint32_t ua = float_bits(a[i]), ub = float_bits(b[i]);
        if (finite_mask(ua, ub)) continue;
        const uint32_t ma = ua & 0x7fffffffu, mb = ub & 0x7fffffffu;
        const bool na = ma > 0x7f800000u, nb = mb > 0x7f800000u;
        acc->a_nan  += na;
        acc->a_inf  += ma == 0x7f800000u;
        acc->b_nan  += nb;
        acc->b_inf  += mb == 0x7f800000u;
        acc->exceed += !((na && nb) || ua == ub);
    }
}

// One block through the lanes, then the lanes into acc. Inlined into a generic and an AVX2
// build of the block (diff_block below): the same operations in the same order, so both give
// the same bits; AVX2 runs 8 lanes in one register and has unsigned integer maxima.
static inline __attribute__((always_inline)) void diff_block_body(const float * a, const float * b, int n, int64_t base,
                                                                  const struct diff_consts * c, struct diff_acc * acc) {
    struct diff_lanes L = {0};
    const int nv = n / LANES * LANES;
    for (int i = 0; i < nv; i += LANES) {
        for (int j = 0; j < LANES; j++) diff_lane(&L, j, a[i + j], b[i + j], c);
    }
    for (int i = nv; i < n; i++) diff_lane(&L, i - nv, a[i], b[i], c);

    uint32_t max_abs = 0;
    int64_t fin = 0;
    for (int j = 0; j < LANES; j++) fin += L.fin[j];
    if (fin < n) diff_non_finite(a, b, n, acc);
    acc->fin += fin;
    for (int j = 0; j < LANES; j++) {
        acc->exceed += L.exceed[j];
        acc->s_abs  += L.s_abs[j];
        acc->s_rel  += L.s_rel[j];
        acc->s_dd   += L.s_dd[j];
        acc->s_aa   += L.s_aa[j];
        acc->s_bb   += L.s_bb[j];
        acc->s_ab   += L.s_ab[j];
        max_abs      = L.max_abs[j] > max_abs ? L.max_abs[j] : max_abs;
        acc->max_rel = L.max_rel[j] > acc->max_rel ? L.max_rel[j] : acc->max_rel;
    }
    // a new maximum: find where in this block (rare after the first blocks)
    if (max_abs > acc->max_abs || (acc->max_abs_index < 0 && acc->fin > 0)) {
        for (int i = 0; i < n; i++) {
            const uint32_t m = finite_mask(float_bits(a[i]), float_bits(b[i]));
            if (m && abs_diff_bits(a[i], b[i], m) == max_abs) {
                acc->max_abs = max_abs;
                acc->max_abs_index = base + i;
                break;
            }
        }
    }
}

static void diff_block_generic(const float * a, const float * b, int n, int64_t base, const struct diff_consts * c,
                               struct diff_acc * acc) {
    diff_block_body(a, b, n, base, c, acc);
}

#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("avx2")))
static void diff_block_avx2(const float * a, const float * b, int n, int64_t base, const struct diff_consts * c,
                            struct diff_acc * acc) {
    diff_block_body(a, b, n, base, c, acc);
}
#endif

typedef void (*diff_block_fn)(const float *, const float *, int, int64_t, const struct diff_consts *, struct diff_acc *);

// the widest build this CPU runs
static diff_block_fn diff_block_pick(void) {
#if defined(__x86_64__) && defined(__GNUC__)
    if (__builtin_cpu_supports("avx2")) return diff_block_avx2;
#endif
    return diff_block_generic;
}

int llt_diff_compute(const float * a, const float * b, int64_t n, double tol_abs, double tol_rel,
                     struct llt_diff * out) {
    memset(out, 0, sizeof(*out));
    out->max_abs_index = -1;
    if (n < 0 || !(tol_abs >= 0) || !(tol_rel >= 0)) {
        return llt_set_error(LLT_EINVAL, "diff: bad arguments (n %lld, tolerance abs %g rel %g)",
            (long long) n, tol_abs, tol_rel);
    }
    const struct diff_consts c = {
        .tol_abs = float_bits((float) tol_abs),
        .tol_rel = (float) tol_rel,
        .eps     = float_bits((float) LLT_DIFF_REL_EPS),
    };
    struct diff_acc acc = { .max_abs_index = -1 };
    const diff_block_fn diff_block = diff_block_pick();
    for (int64_t i = 0; i < n; i += BLOCK) {
        diff_block(a + i, b + i, (int) (n - i < BLOCK ? n - i : BLOCK), i, &c, &acc);
    }
    out->n = n;
    out->n_finite = acc.fin;
    out->a_nan = acc.a_nan;
    out->a_inf = acc.a_inf;
    out->b_nan = acc.b_nan;
    out->b_inf = acc.b_inf;
    out->n_exceed = acc.exceed;
    if (acc.fin == 0) return LLT_OK;
    const double nf = (double) acc.fin;
    out->max_abs_index = acc.max_abs_index;
    out->max_abs  = bits_float(acc.max_abs);
    out->mean_abs = acc.s_abs / nf;
    out->max_rel  = bits_float(acc.max_rel);
    out->mean_rel = acc.s_rel / nf;
    out->rmse     = sqrt(acc.s_dd / nf);
    out->nmse     = acc.s_aa > 0 ? acc.s_dd / acc.s_aa : acc.s_dd > 0 ? INFINITY : 0.0;
    out->cosine   = acc.s_aa > 0 && acc.s_bb > 0 ? acc.s_ab / sqrt(acc.s_aa * acc.s_bb)
                  : acc.s_aa == 0 && acc.s_bb == 0 ? 1.0 : 0.0;
    return LLT_OK;
}

// ---- set diff ----------------------------------------------------------------------------

static const char * status_names[] = { "within", "exceeds", "shape_mismatch", "only_a", "only_b" };
_Static_assert(sizeof(status_names)/sizeof(status_names[0]) == LLT_DIFF_STATUS_COUNT, "diff status names");

const char * llt_diff_status_name(enum llt_diff_status status) {
    return (unsigned) status < LLT_DIFF_STATUS_COUNT ? status_names[status] : "?";
}

struct llt_diff_params llt_diff_default_params(void) {
    return (struct llt_diff_params) {
        .tol_abs   = LLT_DIFF_DEFAULT_ABS,
        .tol_rel   = LLT_DIFF_DEFAULT_REL,
        .layer     = -1,
        .name_glob = NULL,
        .map       = NULL,
    };
}

void llt_set_diff_free(struct llt_set_diff * sd) {
    if (!sd) return;
    free(sd->entries);
    free(sd);
}

static int push_entry(struct llt_set_diff * sd, int * cap, struct llt_diff_entry ** out) {
    if (sd->n_entries == *cap) {
        const int nc = *cap ? *cap * 2 : 64;
        struct llt_diff_entry * e = realloc(sd->entries, (size_t) nc * sizeof(*e));
        if (!e) return llt_set_error(LLT_ENOMEM, "out of memory");
        sd->entries = e;
        *cap = nc;
    }
    *out = &sd->entries[sd->n_entries++];
    memset(*out, 0, sizeof(**out));
    (*out)->a = (*out)->b = -1;
    (*out)->order = -1;
    (*out)->transform = "";
    return LLT_OK;
}

static bool selected(const struct llt_diff_params * p, int32_t layer, const char * name_a, const char * name_b) {
    if (p->layer >= 0 && layer != p->layer) return false;
    if (!p->name_glob) return true;
    return (name_a && fnmatch(p->name_glob, name_a, 0) == 0) || (name_b && fnmatch(p->name_glob, name_b, 0) == 0);
}

// floats of tensor i: a pointer into the mapped file when it already is aligned F32, else
// converted into buf
static int tensor_floats(struct llt_tensor_set * set, int i, float * buf, const float ** out) {
    const struct llt_tensor_info * t = llt_tensor_set_get(set, i);
    if (t->type == GGML_TYPE_F32 && !t->fortran) {
        const void * p = llt_tensor_set_data(set, i);
        if (!p) return LLT_EIO;
        if (((uintptr_t) p & 3) == 0) { *out = p; return LLT_OK; }
    }
    *out = buf;
    return llt_tensor_set_read_f32(set, i, buf);
}

// compares A's tensor ia with B's tensor ib into e
static int compare_pair(struct llt_tensor_set * a, struct llt_tensor_set * b, int ia, int ib,
                        const struct llt_diff_params * p, const struct map_line * line, struct llt_map_bufs * bf,
                        struct llt_diff_entry * e) {
    const struct llt_tensor_info * ta = llt_tensor_set_get(a, ia), * tb = llt_tensor_set_get(b, ib);
    memcpy(e->ne_a, ta->ne, sizeof(e->ne_a));
    memcpy(e->ne_b, tb->ne, sizeof(e->ne_b));
    bool flat = false;
    const bool ops = line && llt_map_line_ops(line)[0] != '\0';
    int rc = llt_map_bufs_reserve(bf, ta->n_elements > tb->n_elements ? ta->n_elements : tb->n_elements);
    if (rc != LLT_OK) return rc;
    const float * fb = NULL;
    if (ops) {
        if ((rc = llt_tensor_set_read_f32(b, ib, bf->b)) != LLT_OK) return rc;
        if ((rc = llt_map_transform(p->map, line, a, b, ta->ne, bf, e->ne_b, &flat)) != LLT_OK) return rc;
        fb = bf->b;
    } else if ((rc = tensor_floats(b, ib, bf->b, &fb)) != LLT_OK) {
        return rc;
    }
    const int64_t n_b = e->ne_b[0] * e->ne_b[1] * e->ne_b[2] * e->ne_b[3];
    const bool same = flat ? n_b == ta->n_elements : memcmp(e->ne_a, e->ne_b, sizeof(e->ne_a)) == 0;
    if (!same) {
        e->status = LLT_DIFF_SHAPE_MISMATCH;
        return LLT_OK;
    }
    const float * fa = NULL;
    if ((rc = tensor_floats(a, ia, bf->a, &fa)) != LLT_OK) return rc;
    if ((rc = llt_diff_compute(fa, fb, ta->n_elements, p->tol_abs, p->tol_rel, &e->d)) != LLT_OK) return rc;
    e->status = e->d.n_exceed == 0 ? LLT_DIFF_WITHIN : LLT_DIFF_EXCEEDS;
    return LLT_OK;
}

int llt_set_diff(struct llt_tensor_set * a, struct llt_tensor_set * b, const struct llt_diff_params * p,
                 struct llt_set_diff ** out) {
    *out = NULL;
    const int na = llt_tensor_set_count(a), nb = llt_tensor_set_count(b);
    struct llt_set_diff * sd = calloc(1, sizeof(*sd));
    bool * used = calloc((size_t) (nb > 0 ? nb : 1), sizeof(bool));
    struct llt_map_bufs bf = {0};
    int rc = LLT_OK, cap = 0;
    if (!sd || !used) {
        rc = llt_set_error(LLT_ENOMEM, "out of memory");
        goto done;
    }
    sd->first_exceed = -1;
    sd->graph_order = true;
    char b_name[1024];
    for (int ia = 0; ia < na; ia++) {
        const struct llt_tensor_info * ta = llt_tensor_set_get(a, ia);
        const struct map_line * line = NULL;
        int32_t layer = ta->layer;
        if (p->map) {
            if (!(line = llt_map_a(p->map, ta->name, b_name, sizeof(b_name), &layer))) {
                sd->n_unmapped++;
                continue;
            }
        } else {
            snprintf(b_name, sizeof(b_name), "%s", ta->name);
        }
        if (!selected(p, layer, ta->name, b_name)) continue;
        const int ib = llt_tensor_set_find(b, b_name);
        struct llt_diff_entry * e = NULL;
        if ((rc = push_entry(sd, &cap, &e)) != LLT_OK) goto done;
        e->a = ia;
        e->b = ib;
        e->layer = layer;
        e->type_a = ta->type;
        e->order = ta->order;
        memcpy(e->ne_a, ta->ne, sizeof(e->ne_a));
        if (ib < 0) {
            e->status = LLT_DIFF_ONLY_A;
            continue;
        }
        used[ib] = true;
        const struct llt_tensor_info * tb = llt_tensor_set_get(b, ib);
        e->type_b = tb->type;
        if (e->order < 0) e->order = tb->order;
        if (line) e->transform = llt_map_line_ops(line);
        if ((rc = compare_pair(a, b, ia, ib, p, line, &bf, e)) != LLT_OK) goto done;
    }
    for (int ib = 0; ib < nb; ib++) {
        const struct llt_tensor_info * tb = llt_tensor_set_get(b, ib);
        if (used[ib]) continue;
        if (p->map && !llt_map_names_b(p->map, tb->name)) {
            sd->n_unmapped++;
            continue;
        }
        if (!selected(p, tb->layer, NULL, tb->name)) continue;
        struct llt_diff_entry * e = NULL;
        if ((rc = push_entry(sd, &cap, &e)) != LLT_OK) goto done;
        e->status = LLT_DIFF_ONLY_B;
        e->b = ib;
        e->layer = tb->layer;
        e->type_b = tb->type;
        e->order = tb->order;
        memcpy(e->ne_b, tb->ne, sizeof(e->ne_b));
    }

    // summary; the first exceeding tensor by graph order if every compared one has one
    double cos_sum = 0;
    for (int i = 0; i < sd->n_entries; i++) {
        const struct llt_diff_entry * e = &sd->entries[i];
        switch (e->status) {
            case LLT_DIFF_WITHIN:         sd->n_within++;         break;
            case LLT_DIFF_EXCEEDS:        sd->n_exceed++;         break;
            case LLT_DIFF_SHAPE_MISMATCH: sd->n_shape_mismatch++; break;
            case LLT_DIFF_ONLY_A:         sd->n_only_a++;         break;
            case LLT_DIFF_ONLY_B:         sd->n_only_b++;         break;
            default: break;
        }
        if (e->a >= 0 && e->b >= 0 && e->type_a != e->type_b) sd->n_type_mismatch++;
        if (e->status != LLT_DIFF_WITHIN && e->status != LLT_DIFF_EXCEEDS) continue;
        sd->n_compared++;
        cos_sum += e->d.cosine;
        sd->max_abs = e->d.max_abs > sd->max_abs ? e->d.max_abs : sd->max_abs;
        sd->max_rel = e->d.max_rel > sd->max_rel ? e->d.max_rel : sd->max_rel;
        if (e->order < 0) sd->graph_order = false;
    }
    sd->mean_cosine = sd->n_compared > 0 ? cos_sum / sd->n_compared : 0.0;
    if (sd->n_compared == 0) sd->graph_order = false;
    for (int i = 0; i < sd->n_entries; i++) {
        const struct llt_diff_entry * e = &sd->entries[i];
        if (e->status != LLT_DIFF_EXCEEDS) continue;
        if (sd->first_exceed < 0 || (sd->graph_order && e->order < sd->entries[sd->first_exceed].order)) {
            sd->first_exceed = i;
        }
    }
done:
    free(used);
    llt_map_bufs_free(&bf);
    if (rc != LLT_OK) {
        llt_set_diff_free(sd);
        return rc;
    }
    *out = sd;
    return LLT_OK;
}
