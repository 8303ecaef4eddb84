// Expert routing in the analysis: the experts each step's MoE layers chose (expert_routing)
// make the bytes of their MUL_MAT_ID nodes exact, and split those nodes' times by expert.
//
// A MUL_MAT_ID reads the matrix of each expert its tokens chose, once: without the routing
// the cost model can only bound them (min(n_expert, n_used × n_tokens)); with it, a step's
// bytes count the distinct experts of each layer. Node costs are per graph, and graphs repeat
// over steps that chose different experts, so the difference is kept per step and per node
// (node.bytes_adj) rather than in the graph's cost.
#include "analysis/run.h"
#include "lltrace/experts.h"

#include <stdlib.h>
#include <string.h>

static int oom(void) {
    return llt_set_error(LLT_ENOMEM, "out of memory");
}

// Rows come by step, layer, pos and rank: the experts of a (step, layer) are collected in
// a->uses, one entry per distinct expert with the tokens that chose it.
static int on_route(const struct llt_read_route * r, void * user_data) {
    struct llt_analysis * a = user_data;
    if (r->layer < 0 || r->layer >= a->run.n_layer || r->expert < 0 || r->expert >= LLT_EXPERTS_MAX) return LLT_OK;
    const int32_t si = llt_find_i64(a->steps, a->n_steps, sizeof(*a->steps), offsetof(struct step, pub.step), r->step);
    if (si < 0) return LLT_OK;
    struct step * s = &a->steps[si];
    if (r->step != a->route_step || r->layer != a->route_layer) {
        if (a->route_seen) memset(a->route_seen, 0, (size_t) a->cap_route_seen * sizeof(*a->route_seen));
        a->route_step = r->step;
        a->route_layer = r->layer;
        s->uses[r->layer] = a->n_uses;
        s->experts[r->layer] = 0;
    }
    if (r->expert >= a->cap_route_seen) {
        const int32_t old = a->cap_route_seen;
        if (!llt_grow((void **) &a->route_seen, &a->cap_route_seen, r->expert + 1, sizeof(*a->route_seen))) return oom();
        memset(a->route_seen + old, 0, (size_t) (a->cap_route_seen - old) * sizeof(*a->route_seen));
    }
    if (a->route_seen[r->expert] == 0) {
        if (!llt_grow((void **) &a->uses, &a->cap_uses, a->n_uses + 1, sizeof(*a->uses))) return oom();
        a->uses[a->n_uses++] = (struct expert_use) { r->expert, 0 };
        a->route_seen[r->expert] = a->n_uses;
        s->experts[r->layer]++;
        if (r->expert >= a->n_expert) a->n_expert = r->expert + 1;
    }
    a->uses[a->route_seen[r->expert] - 1].n++;
    return LLT_OK;
}

static bool is_routed(const struct llt_analysis * a, const struct step * s, const struct node * nd) {
    return nd->layer >= 0 && nd->layer < a->run.n_layer && s->experts[nd->layer] > 0 && strcmp(nd->op, "MUL_MAT_ID") == 0;
}

// what the experts chosen in step s change of a MUL_MAT_ID node's bytes read (all, and of
// weights) against the bound its graph's cost has
static int64_t routed_delta(const struct llt_analysis * a, const struct step * s, const struct node * nd, int64_t * weights) {
    struct llt_cost_node in = nd->in;
    in.n_experts = s->experts[nd->layer];
    struct llt_cost c;
    llt_node_cost(&in, &c);
    *weights = (int64_t) c.bytes_read_weights - (int64_t) nd->cost.bytes_read_weights;
    return (int64_t) c.bytes_read - (int64_t) nd->cost.bytes_read;
}

// every step's bytes with the experts its routing names
static void apply_bytes(struct llt_analysis * a) {
    for (int32_t si = 0; si < a->n_steps; si++) {
        struct step * s = &a->steps[si];
        struct llt_analysis_step * p = &s->pub;
        const struct graph * g = &a->graphs[s->graph];
        for (int32_t i = g->first; i < g->first + g->n_nodes; i++) {
            if (!is_routed(a, s, &a->nodes[i])) continue;
            int64_t dw = 0;
            const int64_t d = routed_delta(a, s, &a->nodes[i], &dw);
            p->bytes_read_weights = (uint64_t) ((int64_t) p->bytes_read_weights + dw);
            p->bytes_read_acts = (uint64_t) ((int64_t) p->bytes_read_acts + d - dw);
            a->nodes[i].bytes_adj[p->phase] += (double) d;
        }
        if (p->n_tokens > 0) p->bytes_read_per_token = (double) (p->bytes_read_weights + p->bytes_read_acts) / (double) p->n_tokens;
    }
}

// the expert table, n_layer × n_expert, with how often and in how many steps each was chosen;
// n_expert the router's width (ffn_moe_probs-N, a probability per expert) where it is wider
// than the highest id chosen
static int count_choices(struct llt_analysis * a) {
    for (int32_t i = 0; a->n_expert > 0 && i < a->n_nodes; i++) {
        const int64_t w = a->nodes[i].in.out.ne[0];
        if (strncmp(a->nodes[i].name, "ffn_moe_probs-", 14) == 0 && w > a->n_expert && w <= LLT_EXPERTS_MAX) a->n_expert = (int32_t) w;
    }
    const size_t n = (size_t) a->run.n_layer * (size_t) a->n_expert;
    if (n == 0) return LLT_OK;
    if (!(a->experts = calloc(n, sizeof(*a->experts)))) return oom();
    for (size_t i = 0; i < n; i++) {
        a->experts[i].layer = (int32_t) (i / (size_t) a->n_expert);
        a->experts[i].expert = (int32_t) (i % (size_t) a->n_expert);
    }
    for (int32_t si = 0; si < a->n_steps; si++) {
        const struct step * s = &a->steps[si];
        for (int32_t l = 0; l < a->run.n_layer; l++) {
            for (int32_t k = 0; k < s->experts[l]; k++) {
                const struct expert_use * u = &a->uses[s->uses[l] + k];
                struct llt_analysis_expert * e = &a->experts[(size_t) l * (size_t) a->n_expert + (size_t) u->expert];
                e->choices += u->n;
                e->steps++;
            }
        }
    }
    a->n_experts = (int32_t) n;
    return LLT_OK;
}

int llt_analysis_read_routing(struct llt_store * st, const struct llt_read_sel * sel, struct llt_analysis * a) {
    a->route_step = -1;
    int rc = llt_read_routes(st, sel, on_route, a);
    if (rc != LLT_OK) return rc;
    apply_bytes(a);
    return count_choices(a);
}

void llt_analysis_route_time(struct llt_analysis * a, const struct step * s, struct node * nd, int64_t ns) {
    if (!is_routed(a, s, nd)) return;
    int64_t dw;
    nd->bytes_adj_timed[s->pub.phase] += (double) routed_delta(a, s, nd, &dw);
    // the node's FLOPs are 2·K·M per token and expert: its time by the tokens each expert took
    const int32_t l = nd->layer;
    int64_t total = 0;
    for (int32_t k = 0; k < s->experts[l]; k++) total += a->uses[s->uses[l] + k].n;
    for (int32_t k = 0; k < s->experts[l] && total > 0; k++) {
        const struct expert_use * u = &a->uses[s->uses[l] + k];
        struct llt_analysis_expert * e = &a->experts[(size_t) l * (size_t) a->n_expert + (size_t) u->expert];
        e->time_ns += (double) ns * (double) u->n / (double) total;
        e->samples++;
    }
}

void llt_analysis_route_finish(struct llt_analysis * a) {
    int32_t kept = 0;
    for (int32_t l = 0; l < a->run.n_layer && a->experts; l++) {
        const struct llt_analysis_expert * row = &a->experts[(size_t) l * (size_t) a->n_expert];
        bool any = false;
        for (int32_t x = 0; x < a->n_expert; x++) any = any || row[x].choices > 0;
        if (!any) continue;
        memmove(&a->experts[kept], row, (size_t) a->n_expert * sizeof(*row));
        kept += a->n_expert;
    }
    a->n_experts = kept;
}

int32_t llt_analysis_n_experts(const struct llt_analysis * a) {
    return a->n_experts;
}

const struct llt_analysis_expert * llt_analysis_expert(const struct llt_analysis * a, int32_t i) {
    return i >= 0 && i < a->n_experts ? &a->experts[i] : NULL;
}
