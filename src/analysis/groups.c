// Time per op, layer or node: the profile estimator.
//
// A group's time is estimated node by node: the node's mean over the steps where it was
// timed, times the steps that ran it; a node never timed in a phase moves its bytes at the
// GB/s its op achieved in that phase. At level timing the estimate is the plain sum. Every
// figure says how many timed runs stand behind it; mean, median and p90 are those of one
// timed run (by layer: of one step's l_out-to-l_out gap).
//
// A layer's time is measured, not estimated, wherever it can be: the sum of its
// l_out-to-l_out gaps when every step of the phase has one (levels timing and profile time
// every l_out), so no layer is ever given more than the time it took, and `profile --by
// layer`, `show --stats` and the report say the same.
#include "analysis/run.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct group {
    struct llt_analysis_group pub;
    struct times              values; // for the median and p90
};

struct groups {
    struct group * g;
    int32_t        n, cap;
};

static void groups_clear(struct groups * gs) {
    for (int32_t i = 0; i < gs->n; i++) free(gs->g[i].values.v);
    free(gs->g);
    memset(gs, 0, sizeof(*gs));
}

// the group of (phase, key, idx), made if new; NULL when out of memory
static struct group * group_find(struct groups * gs, enum llt_phase phase, const char * key, int32_t idx) {
    for (int32_t i = 0; i < gs->n; i++) {
        const struct llt_analysis_group * g = &gs->g[i].pub;
        if (g->phase == phase && g->idx == idx && strcmp(g->key, key) == 0) return &gs->g[i];
    }
    if (!llt_grow((void **) &gs->g, &gs->cap, gs->n + 1, sizeof(*gs->g))) return NULL;
    struct group * g = &gs->g[gs->n++];
    memset(g, 0, sizeof(*g));
    g->pub.phase = phase;
    g->pub.idx = idx;
    snprintf(g->pub.key, sizeof(g->pub.key), "%s", key);
    return g;
}

// the layer label of a node ("embed", "3", "logits") and its place in the layer table
static int32_t layer_key(const struct node * nd, int32_t n_layer, char * key, size_t size) {
    if (nd->region == REGION_LAYERS && nd->layer >= 0) {
        snprintf(key, size, "%d", nd->layer);
        return nd->layer + 1;
    }
    snprintf(key, size, "%s", nd->region == REGION_EMBED ? "embed" : nd->region == REGION_LOGITS ? "logits" : "other");
    return nd->region == REGION_EMBED ? 0 : n_layer + 1 + (nd->region == REGION_LAYERS);
}

// the l_out-to-l_out time of every layer, and the embed and logits parts around them
static int add_layer_gaps(const struct llt_analysis * a, bool by_phase, struct groups * gs) {
    const int32_t n_layer = a->run.n_layer;
    for (int32_t si = 0; si < a->n_steps; si++) {
        const struct step * s = &a->steps[si];
        for (int32_t l = -1; l <= n_layer; l++) {
            const int64_t gap = l < 0 ? s->pub.parts_ns[LLT_PART_EMBED]
                              : l == n_layer ? s->pub.parts_ns[LLT_PART_LOGITS] : llt_analysis_layer_gap(a, s, l);
            if (gap < 0) continue;
            char key[16];
            snprintf(key, sizeof(key), l < 0 ? "embed" : l == n_layer ? "logits" : "%d", l);
            struct group * g = group_find(gs, by_phase ? s->pub.phase : LLT_PHASE_COUNT, key, 0);
            if (!g || !times_add(&g->values, gap)) return llt_set_error(LLT_ENOMEM, "out of memory");
            g->pub.layer = l + 1; // the order of the layer table
            g->pub.gap_ns += (double) gap;
            g->pub.gap_samples++;
        }
    }
    return LLT_OK;
}

static int build(const struct llt_analysis * a, enum llt_analysis_by by, bool by_phase, struct groups * gs) {
    for (int32_t gi = 0; gi < a->n_graphs; gi++) {
        const struct graph * gr = &a->graphs[gi];
        for (int32_t i = 0; i < gr->n_nodes; i++) {
            const struct node * nd = &a->nodes[gr->first + i];
            if (nd->is_noop) continue;
            for (int ph = 0; ph < LLT_PHASE_COUNT; ph++) {
                if (nd->instances[ph] == 0) continue;
                char key[GGML_MAX_NAME];
                int32_t order = nd->layer;
                if (by == LLT_ANALYSIS_BY_LAYER)     order = layer_key(nd, a->run.n_layer, key, sizeof(key));
                else if (by == LLT_ANALYSIS_BY_NODE) snprintf(key, sizeof(key), "%s", nd->name);
                else                                 snprintf(key, sizeof(key), "%s", nd->op);
                struct group * grp = group_find(gs, by_phase ? (enum llt_phase) ph : LLT_PHASE_COUNT, key,
                                                by == LLT_ANALYSIS_BY_NODE ? i : 0);
                if (!grp) return llt_set_error(LLT_ENOMEM, "out of memory");
                struct llt_analysis_group * g = &grp->pub;
                if (g->instances == 0) snprintf(g->op, sizeof(g->op), "%s", nd->op);
                g->layer = order;
                const double inst = (double) nd->instances[ph], smp = (double) nd->samples[ph];
                const double bytes = (double) (nd->cost.bytes_read + nd->cost.bytes_written);
                g->instances += nd->instances[ph];
                g->samples += nd->samples[ph];
                g->time_ns += (double) nd->time_ns[ph];
                g->bytes += inst * bytes + nd->bytes_adj[ph];
                g->flops += inst * (double) nd->cost.flops;
                g->bytes_timed += smp * bytes + nd->bytes_adj_timed[ph];
                g->flops_timed += smp * (double) nd->cost.flops;
                g->est_ns += nd->est_ns[ph];
                if (by == LLT_ANALYSIS_BY_LAYER) continue; // its values are the l_out gaps
                for (int32_t k = 0; k < nd->times[ph].n; k++) {
                    if (!times_add(&grp->values, nd->times[ph].v[k])) return llt_set_error(LLT_ENOMEM, "out of memory");
                }
            }
        }
    }
    return by == LLT_ANALYSIS_BY_LAYER ? add_layer_gaps(a, by_phase, gs) : LLT_OK;
}

int llt_analysis_estimate(struct llt_analysis * a) {
    struct groups ops = { 0 };
    int rc = build(a, LLT_ANALYSIS_BY_OP, true, &ops);
    for (int32_t i = 0; rc == LLT_OK && i < a->n_nodes; i++) {
        struct node * nd = &a->nodes[i];
        for (int ph = 0; ph < LLT_PHASE_COUNT; ph++) {
            const double inst = (double) nd->instances[ph];
            if (nd->samples[ph] > 0) {
                nd->est_ns[ph] = (double) nd->time_ns[ph] / (double) nd->samples[ph] * inst;
                continue;
            }
            const struct group * op = nd->is_noop || inst == 0 ? NULL : group_find(&ops, (enum llt_phase) ph, nd->op, 0);
            const double bytes = (double) (nd->cost.bytes_read + nd->cost.bytes_written);
            nd->est_ns[ph] = op && op->pub.bytes_timed > 0 ? (inst * bytes + nd->bytes_adj[ph]) * op->pub.time_ns / op->pub.bytes_timed
                           : inst > 0 ? NAN : 0;
        }
    }
    groups_clear(&ops);
    return rc;
}

static int cmp_i64(const void * x, const void * y) {
    const int64_t a = *(const int64_t *) x, b = *(const int64_t *) y;
    return (a > b) - (a < b);
}

// the q-quantile of sorted values, the nearest rank; NAN if none
static double quantile(const struct times * t, double q) {
    if (t->n == 0) return NAN;
    int32_t rank = (int32_t) ceil(q * t->n);
    if (rank < 1) rank = 1;
    return (double) t->v[rank - 1];
}

static int by_estimate(const void * x, const void * y) {
    const struct llt_analysis_group * a = x, * b = y;
    if (a->phase != b->phase) return a->phase < b->phase ? -1 : 1;
    const double ea = isnan(a->est_ns) ? -1 : a->est_ns, eb = isnan(b->est_ns) ? -1 : b->est_ns;
    if (ea != eb) return ea > eb ? -1 : 1;
    return a->idx - b->idx;
}

static int by_order(const void * x, const void * y) {
    const struct llt_analysis_group * a = x, * b = y;
    if (a->phase != b->phase) return a->phase < b->phase ? -1 : 1;
    return a->layer - b->layer;
}

int llt_analysis_group(const struct llt_analysis * a, enum llt_analysis_by by, bool by_phase,
                       struct llt_analysis_groups * out) {
    memset(out, 0, sizeof(*out));
    struct groups gs = { 0 };
    int rc = build(a, by, by_phase, &gs);
    if (rc != LLT_OK) {
        groups_clear(&gs);
        return rc;
    }
    out->g = malloc(((size_t) gs.n + 1) * sizeof(*out->g));
    if (!out->g) {
        groups_clear(&gs);
        return llt_set_error(LLT_ENOMEM, "out of memory");
    }
    if (by == LLT_ANALYSIS_BY_LAYER) {
        int64_t steps[LLT_PHASE_COUNT + 1] = { 0 };
        for (int32_t si = 0; si < a->n_steps; si++) steps[by_phase ? a->steps[si].pub.phase : LLT_PHASE_COUNT]++;
        for (int32_t i = 0; i < gs.n; i++) {
            struct llt_analysis_group * g = &gs.g[i].pub;
            if (g->gap_samples > 0 && g->gap_samples == steps[g->phase]) g->est_ns = g->gap_ns;
        }
    }
    double total[LLT_PHASE_COUNT + 1] = { 0 };
    for (int32_t i = 0; i < gs.n; i++) {
        if (!isnan(gs.g[i].pub.est_ns)) total[gs.g[i].pub.phase] += gs.g[i].pub.est_ns;
    }
    for (int32_t i = 0; i < gs.n; i++) {
        struct group * grp = &gs.g[i];
        struct llt_analysis_group * g = &grp->pub;
        // qsort wants a valid pointer even for no elements, and a group may have no times
        if (grp->values.n > 1) qsort(grp->values.v, (size_t) grp->values.n, sizeof(*grp->values.v), cmp_i64);
        const double n = by == LLT_ANALYSIS_BY_LAYER ? (double) g->gap_samples : (double) g->samples;
        const double sum = by == LLT_ANALYSIS_BY_LAYER ? g->gap_ns : g->time_ns;
        g->mean_ns = n > 0 ? sum / n : NAN;
        g->median_ns = quantile(&grp->values, 0.5);
        g->p90_ns = quantile(&grp->values, 0.9);
        g->share = total[g->phase] > 0 ? 100.0 * g->est_ns / total[g->phase] : NAN;
        if (by != LLT_ANALYSIS_BY_NODE) g->idx = -1;
        out->g[out->n++] = *g;
    }
    qsort(out->g, (size_t) out->n, sizeof(*out->g), by == LLT_ANALYSIS_BY_LAYER ? by_order : by_estimate);
    groups_clear(&gs);
    return LLT_OK;
}

void llt_analysis_groups_free(struct llt_analysis_groups * groups) {
    free(groups->g);
    memset(groups, 0, sizeof(*groups));
}
