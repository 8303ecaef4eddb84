// Loading a run for analysis: its graphs and nodes with their cost, its steps and their
// parts, its node times; one pass over each table of the trace (lltrace/read.h).
#include "analysis/run.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char * const phase_names[] = { "prompt", "gen", "warmup" };
static const char * const part_names[] = { "tokenize", "embed", "layers", "logits", "sampling", "decode overhead", "total" };
_Static_assert(sizeof(phase_names) / sizeof(phase_names[0]) == LLT_PHASE_COUNT, "a name per phase");
_Static_assert(sizeof(part_names) / sizeof(part_names[0]) == LLT_PART_COUNT, "a name per part");

const char * llt_phase_name(enum llt_phase phase) {
    return (unsigned) phase < LLT_PHASE_COUNT ? phase_names[phase] : "all";
}

const char * llt_part_name(enum llt_part part) {
    return (unsigned) part < LLT_PART_COUNT ? part_names[part] : "?";
}

struct llt_analysis_params llt_analysis_default_params(void) {
    return (struct llt_analysis_params) { .run = 0, .step = -1, .seq = -1 };
}

bool times_add(struct times * t, int64_t v) {
    if (!llt_grow((void **) &t->v, &t->cap, t->n + 1, sizeof(*t->v))) return false;
    t->v[t->n++] = v;
    return true;
}

static int oom(void) {
    return llt_set_error(LLT_ENOMEM, "out of memory");
}

static struct graph * find_graph(const struct llt_analysis * a, int64_t id) {
    const int32_t i = llt_find_i64(a->graphs, a->n_graphs, sizeof(*a->graphs), offsetof(struct graph, id), id);
    return i < 0 ? NULL : &a->graphs[i];
}

static struct step * find_step(const struct llt_analysis * a, int64_t step) {
    const int32_t i = llt_find_i64(a->steps, a->n_steps, sizeof(*a->steps), offsetof(struct step, pub.step), step);
    return i < 0 ? NULL : &a->steps[i];
}

// ---- graphs and nodes --------------------------------------------------------------------

static int on_node(const struct llt_read_node * r, void * user_data) {
    struct llt_analysis * a = user_data;
    struct graph * g = a->n_graphs ? &a->graphs[a->n_graphs - 1] : NULL;
    if (!g || g->id != r->graph_id) {
        if (!llt_grow((void **) &a->graphs, &a->cap_graphs, a->n_graphs + 1, sizeof(*a->graphs))) return oom();
        g = &a->graphs[a->n_graphs++];
        *g = (struct graph) { .id = r->graph_id, .first = a->n_nodes, .embed_last = -1 };
    }
    if (r->idx != g->n_nodes) return llt_set_error(LLT_EFORMAT, "graph %lld has no node %d", (long long) g->id, g->n_nodes);
    if (!llt_grow((void **) &a->nodes, &a->cap_nodes, a->n_nodes + 1, sizeof(*a->nodes))) return oom();
    struct node * nd = &a->nodes[a->n_nodes++];
    g->n_nodes++;
    memset(nd, 0, sizeof(*nd));
    snprintf(nd->op, sizeof(nd->op), "%s", r->op);
    snprintf(nd->name, sizeof(nd->name), "%s", r->name);
    nd->layer = r->layer;
    nd->is_noop = r->is_noop;
    nd->layer_out = r->layer_out;
    nd->fused = r->fused;
    for (int d = 0; d < 4; d++) nd->in.out.ne[d] = r->ne[d];
    nd->in.out.bytes = (uint64_t) r->bytes;
    return LLT_OK;
}

// regions (before the first node of a layer, the layers, after the last one), layer outputs
static int place_nodes(struct llt_analysis * a) {
    const int32_t n_layer = a->run.n_layer;
    a->l_out_idx = malloc(((size_t) a->n_graphs * (size_t) n_layer + 1) * sizeof(*a->l_out_idx));
    if (!a->l_out_idx) return oom();
    for (int32_t gi = 0; gi < a->n_graphs; gi++) {
        struct graph * g = &a->graphs[gi];
        struct node * nodes = a->nodes + g->first;
        g->l_out = a->l_out_idx + (size_t) gi * (size_t) n_layer;
        for (int32_t l = 0; l < n_layer; l++) g->l_out[l] = -1;
        int32_t first = g->n_nodes, last = -1;
        for (int32_t i = 0; i < g->n_nodes; i++) {
            const int32_t l = nodes[i].layer;
            if (nodes[i].layer_out && l >= 0 && l < n_layer) g->l_out[l] = i;
            if (nodes[i].layer < 0) continue;
            if (first == g->n_nodes) first = i;
            last = i;
        }
        for (int32_t i = 0; i < g->n_nodes; i++) {
            nodes[i].region = i < first ? REGION_EMBED : i > last ? REGION_LOGITS : REGION_LAYERS;
            if (i < first && !nodes[i].is_noop) g->embed_last = i;
        }
    }
    return LLT_OK;
}

static int on_src(const struct llt_read_src * r, void * user_data) {
    struct llt_analysis * a = user_data;
    struct graph * g = find_graph(a, r->graph_id);
    if (!g || r->idx < 0 || r->idx >= g->n_nodes || r->slot < 0 || r->slot >= LLT_COST_MAX_SRC) return LLT_OK;
    struct llt_cost_node * in = &a->nodes[g->first + r->idx].in;
    if (r->slot >= in->n_src) in->n_src = r->slot + 1;
    struct llt_cost_tensor * t = &in->src[r->slot];
    t->bytes = (uint64_t) r->bytes;
    for (int d = 0; d < 4; d++) t->ne[d] = r->ne[d];
    t->is_view = r->is_view;
    t->type = r->is_view ? llt_type_from_name(r->type) : -1;
    t->is_weight = r->kind == LLT_SRC_WEIGHT;
    if (t->is_weight) {
        if (!llt_grow((void **) &g->weight_ids, &g->cap_weight_ids, g->n_weight_ids + 1, sizeof(*g->weight_ids))) return oom();
        g->weight_ids[g->n_weight_ids++] = r->weight_id;
    }
    return LLT_OK;
}

static int cmp_i64(const void * x, const void * y) {
    const int64_t a = *(const int64_t *) x, b = *(const int64_t *) y;
    return (a > b) - (a < b);
}

// every node's cost, each graph's sum and its distinct weights
static void cost_nodes(struct llt_analysis * a) {
    for (int32_t gi = 0; gi < a->n_graphs; gi++) {
        struct graph * g = &a->graphs[gi];
        for (int32_t i = g->first; i < g->first + g->n_nodes; i++) {
            struct node * nd = &a->nodes[i];
            nd->in.op = nd->op; // now that the array no longer moves
            llt_node_cost(&nd->in, &nd->cost);
            if (nd->is_noop) continue;
            g->cost.flops += nd->cost.flops;
            g->cost.bytes_read += nd->cost.bytes_read;
            g->cost.bytes_read_weights += nd->cost.bytes_read_weights;
            g->cost.bytes_written += nd->cost.bytes_written;
        }
        // a graph that reads no weights has no array: qsort wants a valid pointer even for none
        if (g->n_weight_ids > 1) qsort(g->weight_ids, (size_t) g->n_weight_ids, sizeof(*g->weight_ids), cmp_i64);
        for (int32_t i = 0; i < g->n_weight_ids; i++) {
            g->weights_read += i == 0 || g->weight_ids[i] != g->weight_ids[i - 1];
        }
        free(g->weight_ids);
        g->weight_ids = NULL;
    }
}

// ---- steps and times ---------------------------------------------------------------------

static int on_step(const struct llt_read_step * r, void * user_data) {
    struct llt_analysis * a = user_data;
    const struct graph * g = find_graph(a, r->graph_id);
    if (!g) return LLT_OK; // a step written after its graph was read: the run is still being written
    if (!llt_grow((void **) &a->steps, &a->cap_steps, a->n_steps + 1, sizeof(*a->steps))) return oom();
    struct step * s = &a->steps[a->n_steps++];
    *s = (struct step) {
        .graph = (int32_t) (g - a->graphs), .t_begin = r->t_begin_ns, .t_end = r->t_end_ns,
        .compute_begin = r->compute_begin_ns, .compute_end = r->compute_end_ns, .t_sample = r->t_sample_ns,
        .embed_end = -1,
    };
    struct llt_analysis_step * p = &s->pub;
    p->step = r->step;
    p->pos0 = r->pos0;
    p->n_tokens = r->n_tokens;
    p->graph_id = r->graph_id;
    p->phase = r->warmup ? LLT_PHASE_WARMUP : r->prompt ? LLT_PHASE_PROMPT : LLT_PHASE_GEN;
    p->n_nodes = g->n_nodes;
    p->wall_ns = r->t_end_ns - r->t_begin_ns;
    p->compute_ns = r->compute_end_ns - r->compute_begin_ns;
    p->bytes_read_weights = g->cost.bytes_read_weights;
    p->bytes_read_acts = g->cost.bytes_read - g->cost.bytes_read_weights;
    p->bytes_written = g->cost.bytes_written;
    p->bytes_read_per_token = r->n_tokens > 0 ? (double) g->cost.bytes_read / (double) r->n_tokens : NAN;
    p->flops = g->cost.flops;
    p->weights_read = g->weights_read;
    for (int32_t i = g->first; i < g->first + g->n_nodes; i++) {
        if (!a->nodes[i].is_noop) a->nodes[i].instances[p->phase]++;
    }
    return LLT_OK;
}

static int on_time(const struct llt_read_time * r, void * user_data) {
    struct llt_analysis * a = user_data;
    struct step * s = find_step(a, r->step);
    if (!s) return LLT_OK;
    const struct graph * g = &a->graphs[s->graph];
    if (r->idx < 0 || r->idx >= g->n_nodes) return LLT_OK;
    struct node * nd = &a->nodes[g->first + r->idx];
    const int64_t ns = r->t_end_ns - r->t_begin_ns;
    const enum llt_phase ph = s->pub.phase;
    if (!times_add(&nd->times[ph], ns)) return oom();
    nd->samples[ph]++;
    nd->time_ns[ph] += ns;
    llt_analysis_route_time(a, s, nd, ns);
    s->pub.node_ns += ns;
    s->pub.node_samples++;
    if (r->idx == g->embed_last) s->embed_end = r->t_end_ns;
    for (int32_t l = 0; l < a->run.n_layer; l++) {
        if (g->l_out[l] == r->idx) s->l_out_end[l] = r->t_end_ns;
    }
    return LLT_OK;
}

int64_t llt_analysis_layer_gap(const struct llt_analysis * a, const struct step * s, int32_t l) {
    if (s->l_out_end[l] < 0) return -1;
    // layer 0: from the end of the last node before it, or the start of compute if that was not timed
    const int64_t from = l > 0 ? s->l_out_end[l - 1] : s->embed_end >= 0 ? s->embed_end : s->compute_begin;
    return from >= 0 ? s->l_out_end[l] - from : -1;
}

// the parts of every step, -1 where unknown; docs/trace-format.md, "Profile figures"
static void step_parts(struct llt_analysis * a, struct step * s, bool first_prompt) {
    const int32_t n_layer = a->run.n_layer;
    const int64_t last = n_layer > 0 ? s->l_out_end[n_layer - 1] : -1;
    const int64_t from = s->embed_end >= 0 ? s->embed_end : s->compute_begin;
    int64_t * parts = s->pub.parts_ns;
    // tokenizing the prompt belongs to the prompt's first step (a warm-up may come before it)
    parts[LLT_PART_TOKENIZE] = first_prompt && a->t_tokenize >= 0 ? a->t_tokenize : -1;
    parts[LLT_PART_EMBED]    = s->embed_end >= 0 ? s->embed_end - s->compute_begin : -1;
    parts[LLT_PART_LAYERS]   = last >= 0 ? last - from : -1;
    parts[LLT_PART_LOGITS]   = last >= 0 ? s->compute_end - last : -1;
    parts[LLT_PART_SAMPLING] = s->t_sample;
    parts[LLT_PART_OVERHEAD] = (s->t_end - s->t_begin) - (s->compute_end - s->compute_begin);
    parts[LLT_PART_TOTAL]    = (s->t_end - s->t_begin) + (s->t_sample > 0 ? s->t_sample : 0) +
                               (parts[LLT_PART_TOKENIZE] > 0 ? parts[LLT_PART_TOKENIZE] : 0);
}

// ---- the run -----------------------------------------------------------------------------

static void summarize(struct llt_analysis * a) {
    for (int32_t i = 0; i < a->n_nodes; i++) {
        for (int ph = 0; ph < LLT_PHASE_COUNT; ph++) {
            a->run.samples += a->nodes[i].samples[ph];
            a->run.instances += a->nodes[i].instances[ph];
        }
    }
    // the run's first prompt step: after its warm-up steps only, in a view from the run's start
    bool before_prompt = a->n_steps > 0 && a->steps[0].pub.step == 0;
    for (int32_t si = 0; si < a->n_steps; si++) {
        const enum llt_phase ph = a->steps[si].pub.phase;
        step_parts(a, &a->steps[si], before_prompt && ph == LLT_PHASE_PROMPT);
        before_prompt = before_prompt && ph == LLT_PHASE_WARMUP;
        a->run.n_timed_steps += a->steps[si].pub.node_samples > 0;
    }
    // fused pairs: counted in the graph that has most of them (the graphs of a run repeat them);
    // -1 when the trace does not know (version 1)
    bool fused_known = true;
    for (int32_t gi = 0; gi < a->n_graphs; gi++) {
        struct graph * g = &a->graphs[gi];
        for (int32_t i = g->first; i < g->first + g->n_nodes; i++) {
            fused_known = fused_known && a->nodes[i].fused >= 0;
            g->fused += a->nodes[i].fused > 0;
        }
        if (g->fused > a->run.fused) a->run.fused = g->fused;
    }
    if (!fused_known) a->run.fused = -1;
    a->run.n_steps = a->n_steps;
}

int llt_analysis_load(struct llt_store * st, const struct llt_analysis_params * params, struct llt_analysis ** out) {
    *out = NULL;
    struct llt_read_run r;
    int rc = llt_read_run(st, params->run, &r);
    if (rc != LLT_OK) return rc;
    struct llt_analysis * a = calloc(1, sizeof(*a));
    if (!a) return oom();
    a->run = (struct llt_analysis_run) { .id = r.id, .n_layer = r.n_layer, .n_weights = r.n_weights,
                                         .running = strcmp(r.status, "running") == 0, .n_prompt = r.n_prompt,
                                         .n_gen = r.n_gen, .t_prompt_ns = r.t_prompt_ns, .t_gen_ns = r.t_gen_ns,
                                         .values_read = r.values_read };
    snprintf(a->run.model, sizeof(a->run.model), "%s", r.model_name);
    snprintf(a->run.file_type, sizeof(a->run.file_type), "%s", r.file_type);
    snprintf(a->run.level, sizeof(a->run.level), "%s", r.level);
    snprintf(a->run.status, sizeof(a->run.status), "%s", r.status);
    a->t_tokenize = r.t_tokenize_ns;
    if (params->seq >= 0) a->run.t_prompt_ns = a->run.t_gen_ns = -1; // the run's, not the sequence's
    const struct llt_read_sel sel = { .run = r.id, .step = params->step, .by_seq = params->seq >= 0, .seq = params->seq,
                                      .from_step = params->from_step };
    rc = llt_read_nodes(st, &sel, on_node, a);
    if (rc == LLT_OK) rc = place_nodes(a);
    if (rc == LLT_OK) rc = llt_read_srcs(st, &sel, on_src, a);
    if (rc == LLT_OK) {
        cost_nodes(a);
        rc = llt_read_steps(st, &sel, on_step, a);
    }
    if (rc == LLT_OK) {
        const size_t n = (size_t) a->n_steps * (size_t) a->run.n_layer;
        a->l_out_ends = malloc((n + 1) * sizeof(*a->l_out_ends));
        a->step_experts = calloc(n + 1, sizeof(*a->step_experts));
        a->step_uses = calloc(n + 1, sizeof(*a->step_uses));
        if (!a->l_out_ends || !a->step_experts || !a->step_uses) rc = oom();
        for (size_t i = 0; rc == LLT_OK && i < n; i++) a->l_out_ends[i] = -1;
        for (int32_t si = 0; rc == LLT_OK && si < a->n_steps; si++) {
            a->steps[si].l_out_end = a->l_out_ends + (size_t) si * (size_t) a->run.n_layer;
            a->steps[si].experts = a->step_experts + (size_t) si * (size_t) a->run.n_layer;
            a->steps[si].uses = a->step_uses + (size_t) si * (size_t) a->run.n_layer;
        }
    }
    if (rc == LLT_OK) rc = llt_analysis_read_routing(st, &sel, a);
    if (rc == LLT_OK) rc = llt_read_times(st, &sel, on_time, a);
    if (rc == LLT_OK) {
        llt_analysis_route_finish(a);
        summarize(a);
        rc = llt_analysis_estimate(a);
    }
    if (rc != LLT_OK) {
        llt_analysis_free(a);
        return rc;
    }
    *out = a;
    return LLT_OK;
}

void llt_analysis_free(struct llt_analysis * a) {
    if (!a) return;
    for (int32_t i = 0; i < a->n_nodes; i++) {
        for (int ph = 0; ph < LLT_PHASE_COUNT; ph++) free(a->nodes[i].times[ph].v);
    }
    for (int32_t gi = 0; gi < a->n_graphs; gi++) free(a->graphs[gi].weight_ids);
    free(a->graphs);
    free(a->nodes);
    free(a->steps);
    free(a->l_out_idx);
    free(a->l_out_ends);
    free(a->step_experts);
    free(a->step_uses);
    free(a->uses);
    free(a->route_seen);
    free(a->experts);
    free(a);
}

const struct llt_analysis_run * llt_analysis_run(const struct llt_analysis * a) {
    return &a->run;
}

int64_t llt_analysis_n_steps(const struct llt_analysis * a) {
    return a->n_steps;
}

const struct llt_analysis_step * llt_analysis_step(const struct llt_analysis * a, int64_t i) {
    return i >= 0 && i < a->n_steps ? &a->steps[i].pub : NULL;
}

void llt_analysis_parts(const struct llt_analysis * a, enum llt_phase phase, struct llt_analysis_part out[LLT_PART_COUNT]) {
    memset(out, 0, LLT_PART_COUNT * sizeof(*out));
    for (int32_t si = 0; si < a->n_steps; si++) {
        const struct llt_analysis_step * s = &a->steps[si].pub;
        if (s->phase != phase) continue;
        for (int k = 0; k < LLT_PART_COUNT; k++) {
            if (s->parts_ns[k] < 0) continue;
            out[k].time_ns += s->parts_ns[k];
            out[k].tokens += s->n_tokens;
            out[k].steps++;
        }
    }
}

double llt_speed(int64_t n, int64_t t_ns) {
    return n > 0 && t_ns > 0 ? (double) n * 1e9 / (double) t_ns : NAN;
}
