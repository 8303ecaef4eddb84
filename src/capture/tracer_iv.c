// The tracer's interventions (llt_tracer_params.interventions): the nodes they change are asked
// for in the ask call (each such node ends a compute range: the cost of an intervention is that
// split and the write), changed in the post call before anything reads them, and each change is
// recorded (table interventions). A change that cannot be made stops the computation with the
// reason (llt_tracer_iv_error): an intervention is never dropped silently.
#include "capture/tracer.h"
#include "capture/intervene_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool llt_capture_iv_wants(struct llt_tracer * tr, int32_t idx, bool same) {
    const struct node_rec * r = &tr->recs[idx];
    // by name and layer once per graph structure; the steps every time
    if (!same) tr->iv_match[idx] = llt_iv_set_wants_node(tr->params.interventions, r->name, r->layer);
    return tr->iv_match[idx] && llt_iv_set_wants(tr->params.interventions, r->name, r->layer, tr->n_steps);
}

// The rows of the last layer, which keeps only the tokens whose output was asked for: llama.cpp
// picks them with GET_ROWS at the input out_ids a few nodes up the sources. Their rows among
// the graph's tokens into rows (at most cap); how many, or 0 if not found.
#define MAX_SEARCH 256

static int32_t output_rows(const struct ggml_tensor * t, int32_t * rows, int32_t cap) {
    const struct ggml_tensor * queue[MAX_SEARCH];
    int32_t head = 0, tail = 0;
    queue[tail++] = t;
    while (head < tail) {
        const struct ggml_tensor * x = queue[head++];
        if ((strcmp(x->name, "out_ids") == 0 || strcmp(x->name, "inp_out_ids") == 0) && x->type == GGML_TYPE_I32 &&
            ggml_is_contiguous(x) && ggml_nelements(x) <= cap && x->data) {
            const int32_t n = (int32_t) ggml_nelements(x);
            ggml_backend_tensor_get(x, rows, 0, (size_t) n * sizeof(int32_t));
            return n;
        }
        for (int i = 0; i < GGML_MAX_SRC && x->src[i] && tail < MAX_SEARCH; i++) queue[tail++] = x->src[i];
    }
    return 0;
}

// Whether intervention i already changed t's memory in this step: a view (Qcur-N reshaped,
// kqv_out-N over flash attention's output) of a node it changed shares that node's memory, and
// changing it again would scale twice. The spans changed are kept per step.
static bool changed_before(const struct llt_tracer * tr, int i, const struct ggml_tensor * t) {
    const char * a = t->data, * a_end = a + ggml_nbytes(t);
    for (int32_t k = 0; k < tr->n_iv_spans; k++) {
        const struct iv_span * sp = &tr->iv_spans[k];
        if (sp->step == tr->n_steps && sp->iv == i && sp->buffer == t->buffer && a < sp->end && sp->begin < a_end) return true;
    }
    return false;
}

static void remember_span(struct llt_tracer * tr, int i, const struct ggml_tensor * t) {
    if (tr->n_iv_spans > 0 && tr->iv_spans[0].step != tr->n_steps) tr->n_iv_spans = 0; // a new step
    if (!llt_grow((void **) &tr->iv_spans, &tr->cap_iv_spans, tr->n_iv_spans + 1, sizeof(struct iv_span))) return;
    tr->iv_spans[tr->n_iv_spans++] = (struct iv_span) {
        .step = tr->n_steps, .iv = i, .buffer = t->buffer, .begin = t->data, .end = (const char *) t->data + ggml_nbytes(t),
    };
}

struct llt_iv_where llt_capture_iv_where(struct llt_tracer * tr, const struct ggml_tensor * t) {
    const int32_t idx = tr->n_nodes - 1;
    const int32_t n_tokens = tr->n_graph_pos > 0 ? tr->n_graph_pos : tr->cur_n_tokens > 0 ? tr->cur_n_tokens : 1;
    int32_t n_out = 0;
    bool tokens_axis = false; // some axis of t counts the graph's tokens
    for (int a = 1; a < 4; a++) tokens_axis |= t->ne[a] == n_tokens;
    if (!tokens_axis && n_tokens > 1) n_out = output_rows(t, tr->iv_out_rows, IV_MAX_OUT_ROWS);
    // a graph of one token (its positions not read from the RoPE input): its sequence is the
    // decode call's only one
    tr->iv_one_seq = 0;
    for (int s = 0; s < 63; s++) if (tr->cur_seq_mask == ((int64_t) 1 << s)) tr->iv_one_seq = s;
    return (struct llt_iv_where) {
        .step = tr->n_steps, .occ = idx >= 0 ? tr->recs[idx].occ : 0, .n_tokens = n_tokens,
        .pos = tr->n_graph_pos > 0 ? tr->graph_pos : NULL,
        .seq = tr->n_graph_pos > 0 ? tr->graph_seq : n_tokens == 1 ? &tr->iv_one_seq : NULL,
        .pos0 = tr->cur_pos0, .n_out = n_out > 0 ? n_out : 1, .out_rows = n_out > 0 ? tr->iv_out_rows : NULL,
        .n_head = tr->n_head, .n_head_kv = tr->n_head_kv,
    };
}

int64_t llt_tracer_apply_now(struct llt_tracer * tr, struct llt_iv_set * set, int i, struct ggml_tensor * t) {
    if (tr->n_nodes <= 0 || tr->seen_ptr[tr->n_nodes - 1] != t) {
        return llt_set_error(LLT_EINVAL, "'%s' is not the node being computed", t->name);
    }
    const struct llt_iv_where where = llt_capture_iv_where(tr, t);
    const int64_t n = llt_iv_set_apply(set, i, t, &where);
    if (n < 0) return n;
    // recorded as one more of the run's interventions: its application now, its spec at the end
    const struct llt_intervention * iv = llt_iv_set_get(set, i);
    const int len = llt_iv_format_json(iv, NULL, 0);
    char * params = malloc((size_t) len + 1);
    struct llt_batch * b = llt_capture_batch(tr);
    if (!params || !b || !llt_grow((void **) &tr->iv_added, &tr->cap_iv_added, tr->n_iv_added + 1, sizeof(struct iv_added)) ||
        !llt_grow((void **) &b->ivs, &b->cap_ivs, b->n_ivs + 1, sizeof(struct iv_rows))) {
        free(params);
        llt_capture_fail(tr, "out of memory");
        return n;
    }
    llt_iv_format_json(iv, params, (size_t) len + 1);
    struct iv_added * a = &tr->iv_added[tr->n_iv_added];
    *a = (struct iv_added) { .kind = llt_iv_kind_name(iv->kind), .params = params };
    snprintf(a->node, sizeof(a->node), "%s", iv->node);
    const int32_t idx = tr->n_nodes - 1;
    struct iv_rows * row = &b->ivs[b->n_ivs++];
    *row = (struct iv_rows) { .step = tr->n_steps, .n_changed = n, .idx = idx,
                              .iv = llt_iv_set_count(tr->params.interventions) + tr->n_iv_added };
    snprintf(row->node, sizeof(row->node), "%s", tr->recs[idx].name);
    tr->n_iv_added++;
    return n;
}

bool llt_capture_intervene(struct llt_tracer * tr, struct ggml_tensor * t) {
    const int32_t idx = tr->n_nodes - 1;
    const struct node_rec * r = &tr->recs[idx];
    struct llt_iv_set * set = tr->params.interventions;
    const struct llt_iv_where where = llt_capture_iv_where(tr, t);
    for (int i = 0; i < llt_iv_set_count(set); i++) {
        if (!llt_iv_set_matches(set, i, r->name, r->layer, tr->n_steps)) continue;
        const struct llt_intervention * iv = llt_iv_set_get(set, i);
        if (iv->op[0] && strcmp(iv->op, ggml_op_name(t->op)) != 0) continue;
        if ((r->flags & NODE_NOOP) && changed_before(tr, i, t)) continue;
        const int64_t n = llt_iv_set_apply(set, i, t, &where);
        if (n < 0) {
            snprintf(tr->iv_error, sizeof(tr->iv_error), "step %lld: %s", (long long) tr->n_steps, llt_last_error());
            return false; // the rest of the graph is not computed: llama_decode fails, the reason is here
        }
        tr->iv_applied[i]++;
        remember_span(tr, i, t);
        struct llt_batch * b = llt_capture_batch(tr);
        if (!b || !llt_grow((void **) &b->ivs, &b->cap_ivs, b->n_ivs + 1, sizeof(struct iv_rows))) {
            llt_capture_fail(tr, "out of memory");
            return true;
        }
        struct iv_rows * row = &b->ivs[b->n_ivs++];
        *row = (struct iv_rows) { .step = tr->n_steps, .n_changed = n, .idx = idx, .iv = i };
        snprintf(row->node, sizeof(row->node), "%s", r->name);
    }
    return true;
}

// ---- public ------------------------------------------------------------------------------

const char * llt_tracer_iv_error(const struct llt_tracer * tr) {
    return tr->iv_error[0] ? tr->iv_error : NULL;
}

int llt_tracer_iv_unmatched(const struct llt_tracer * tr, char * buf, size_t size) {
    int n = 0;
    size_t len = 0;
    if (size > 0) buf[0] = '\0';
    for (int i = 0; i < llt_iv_set_count(tr->params.interventions); i++) {
        if (tr->iv_applied && tr->iv_applied[i] > 0) continue;
        const struct llt_intervention * iv = llt_iv_set_get(tr->params.interventions, i);
        if (len < size) {
            const int k = snprintf(buf + len, size - len, "%s%s '%s'", n ? ", " : "", llt_iv_kind_name(iv->kind), iv->node);
            if (k > 0) len += (size_t) k;
        }
        n++;
    }
    return n;
}
