// Parity: the parity records of a trace and the comparison of two sequences of steps. The
// parity JSON Lines format itself (format, parse, read, write) is src/tensors/parity_file.c.
#include "core/internal.h"
#include "trace/runs.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// ---- reading traces ----------------------------------------------------------------------

struct trace_read {
    struct llt_store *       st;
    int                      run_id;
    struct llt_parity_step * steps;
    int32_t                  n, cap;
};

static int add_trace_row(const struct llt_trace_parity_row * row, void * user_data) {
    struct trace_read * tr = user_data;
    if (!llt_grow((void **) &tr->steps, &tr->cap, tr->n + 1, sizeof(*tr->steps))) return llt_set_error(LLT_ENOMEM, "out of memory");
    struct llt_parity_step * s = &tr->steps[tr->n];
    if (llt_parity_parse_top_k(row->top_k ? row->top_k : "", s) != LLT_OK) {
        return llt_set_error(LLT_EFORMAT, "trace '%s', run %d, parity step %d: top_k %s", llt_store_path(tr->st), tr->run_id,
                             row->step, llt_last_error());
    }
    s->step = row->step;
    s->pos = row->pos;
    s->token = row->token;
    s->seq_id = row->seq_id;
    snprintf(s->piece, sizeof(s->piece), "%s", row->piece);
    tr->n++;
    return LLT_OK;
}

int llt_parity_read_trace(struct llt_store * st, int run_id, struct llt_parity_step ** out, int32_t * n_out) {
    *out = NULL;
    *n_out = 0;
    if (run_id <= 0 && (run_id = llt_store_last_run(st)) < 0) return run_id;
    struct trace_read tr = { .st = st, .run_id = run_id };
    int rc = llt_trace_parity_each(st, run_id, add_trace_row, &tr);
    if (rc != LLT_OK) {
        free(tr.steps);
        return rc;
    }
    *out = tr.steps;
    *n_out = tr.n;
    return LLT_OK;
}

// ---- comparing ---------------------------------------------------------------------------

static const char * verdict_names[] = {
    [LLT_PARITY_IDENTICAL] = "identical",
    [LLT_PARITY_MATCH]     = "match",
    [LLT_PARITY_DIVERGED]  = "diverged",
    [LLT_PARITY_LENGTH]    = "length-mismatch",
};
_Static_assert(sizeof(verdict_names) / sizeof(verdict_names[0]) == LLT_PARITY_VERDICT_COUNT, "a name per verdict");

const char * llt_parity_verdict_name(enum llt_parity_verdict v) {
    return (unsigned) v < LLT_PARITY_VERDICT_COUNT ? verdict_names[v] : "?";
}

// position of id in the first k ids of s, or -1
static int32_t find_id(const struct llt_parity_step * s, int32_t k, llama_token id) {
    for (int32_t i = 0; i < k; i++) {
        if (s->ids[i] == id) return i;
    }
    return -1;
}

// logit of id on side s: its own, or the k-th largest when id is not in s's top-k
static double logit_of(const struct llt_parity_step * s, int32_t k, llama_token id) {
    int32_t i = find_id(s, k, id);
    return s->logits[i >= 0 ? i : k - 1];
}

// KL(A‖B) over the union U of both top-k id sets, with softmaxes over U (docs/trace-format.md)
static double kl_divergence(const struct llt_parity_step * a, const struct llt_parity_step * b, int32_t k) {
    llama_token u[2 * LLT_PARITY_MAX_K];
    int32_t n = 0;
    for (int32_t i = 0; i < k; i++) u[n++] = a->ids[i];
    for (int32_t i = 0; i < k; i++) {
        if (find_id(a, k, b->ids[i]) < 0) u[n++] = b->ids[i];
    }
    // log-sum-exp around each side's maximum, its top-1 logit
    double za = 0, zb = 0;
    for (int32_t i = 0; i < n; i++) {
        za += exp(logit_of(a, k, u[i]) - a->logits[0]);
        zb += exp(logit_of(b, k, u[i]) - b->logits[0]);
    }
    double kl = 0;
    for (int32_t i = 0; i < n; i++) {
        const double la = logit_of(a, k, u[i]) - a->logits[0] - log(za);
        const double lb = logit_of(b, k, u[i]) - b->logits[0] - log(zb);
        kl += exp(la) * (la - lb);
    }
    return kl > 0 ? kl : 0; // rounding can leave a tiny negative for equal distributions
}

static void compare_step(const struct llt_parity_step * a, const struct llt_parity_step * b, int32_t k,
                         struct llt_parity_cmp * c) {
    c->overlap = 0;
    c->max_diff = NAN;
    c->logits_equal = true;
    for (int32_t i = 0; i < k; i++) {
        int32_t j = find_id(b, k, a->ids[i]);
        c->logits_equal = c->logits_equal && j == i && a->logits[i] == b->logits[j];
        if (j < 0) continue;
        c->overlap++;
        const double d = fabs((double) a->logits[i] - (double) b->logits[j]);
        if (!(d <= c->max_diff)) c->max_diff = d; // the first shared id replaces NAN
    }
    c->same_top1 = a->ids[0] == b->ids[0];
    c->kl = kl_divergence(a, b, k);
}

// top-1 minus top-2 logit (top_k is sorted, largest first); NAN with fewer than 2
static double top_margin(const struct llt_parity_step * s) {
    return s->k >= 2 ? (double) s->logits[0] - (double) s->logits[1] : NAN;
}

int llt_parity_compare(const struct llt_parity_step * a, int32_t n_a, const struct llt_parity_step * b, int32_t n_b,
                       int32_t k, struct llt_parity_report * r) {
    memset(r, 0, sizeof(*r));
    if (n_a <= 0 || n_b <= 0) return llt_set_error(LLT_EINVAL, "nothing to compare: %d and %d steps", n_a, n_b);
    const int32_t n = n_a < n_b ? n_a : n_b;
    r->steps = calloc((size_t) n, sizeof(*r->steps));
    if (!r->steps) return llt_set_error(LLT_ENOMEM, "out of memory");
    r->k = k > 0 && k < LLT_PARITY_MAX_K ? k : LLT_PARITY_MAX_K;
    for (int32_t i = 0; i < n; i++) {
        if (a[i].k < r->k) r->k = a[i].k;
        if (b[i].k < r->k) r->k = b[i].k;
    }
    r->n_a = n_a;
    r->n_b = n_b;
    r->first_diff = -1;
    r->max_diff = NAN;
    r->max_diff_step = r->max_kl_step = -1;
    bool logits_equal = true;
    double sum_overlap = 0, sum_kl = 0;
    for (int32_t i = 0; i < n; i++) {
        struct llt_parity_cmp * c = &r->steps[i];
        c->step = i;
        c->token_a = a[i].token;
        c->token_b = b[i].token;
        // past the first difference the two sides are fed different tokens
        c->compared = r->first_diff < 0;
        if (!c->compared) continue;
        compare_step(&a[i], &b[i], r->k, c);
        r->n_compared++;
        r->n_top1 += c->same_top1;
        logits_equal = logits_equal && c->logits_equal;
        sum_overlap += (double) c->overlap / r->k;
        sum_kl += c->kl;
        if (c->max_diff > r->max_diff || (isnan(r->max_diff) && !isnan(c->max_diff))) {
            r->max_diff = c->max_diff;
            r->max_diff_step = i;
        }
        if (r->max_kl_step < 0 || c->kl > r->max_kl) {
            r->max_kl = c->kl;
            r->max_kl_step = i;
        }
        if (c->token_a != c->token_b) r->first_diff = i;
    }
    r->margin_a = r->first_diff >= 0 ? top_margin(&a[r->first_diff]) : NAN;
    r->margin_b = r->first_diff >= 0 ? top_margin(&b[r->first_diff]) : NAN;
    r->mean_overlap = sum_overlap / r->n_compared;
    r->mean_kl = sum_kl / r->n_compared;
    r->pos_differs = a[0].pos >= 0 && b[0].pos >= 0 && a[0].pos != b[0].pos;
    r->verdict = r->first_diff >= 0 ? LLT_PARITY_DIVERGED
               : n_a != n_b      ? LLT_PARITY_LENGTH
               : logits_equal    ? LLT_PARITY_IDENTICAL
               :                   LLT_PARITY_MATCH;
    return LLT_OK;
}

void llt_parity_report_free(struct llt_parity_report * r) {
    if (!r) return;
    free(r->steps);
    memset(r, 0, sizeof(*r));
}
