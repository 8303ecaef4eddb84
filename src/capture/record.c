// Recording: the eval callback's ask and post calls and the abort callback, for every node the
// scheduler computes. The hot path is one struct compare per node while the graph repeats;
// see tracer.h for the whole story.
#include "capture/tracer.h"

#include <stdio.h>
#include <stdlib.h>
#include <stddef.h>
#include <string.h>

// the index slot of string s (hash h): where its id is, or the empty slot where it would go
static uint32_t string_slot(const struct llt_tracer * tr, const char * s, uint32_t h) {
    const uint32_t mask = tr->cap_string_index - 1;
    uint32_t i = h & mask;
    while (tr->string_index[i] && strcmp(tr->strings[tr->string_index[i] - 1], s) != 0) i = (i + 1) & mask;
    return i;
}

// the index at twice the size, every string in it again; false when out of memory
static bool string_index_grow(struct llt_tracer * tr) {
    const uint32_t cap = tr->cap_string_index ? tr->cap_string_index * 2 : 64;
    int32_t * index = calloc(cap, sizeof(int32_t));
    if (!index) return false;
    free(tr->string_index);
    tr->string_index = index;
    tr->cap_string_index = cap;
    for (int32_t id = 0; id < tr->n_strings; id++) {
        tr->string_index[string_slot(tr, tr->strings[id], llt_str_hash(tr->strings[id]))] = id + 1;
    }
    return true;
}

// id of a string in tr->strings, added if new; -1 when out of memory (a graph's slow path
// asks for the buffer and input names of every node: hashed, not searched)
static int32_t intern(struct llt_tracer * tr, const char * s) {
    if ((uint32_t) tr->n_strings * 2 + 2 > tr->cap_string_index && !string_index_grow(tr)) return -1;
    const uint32_t slot = string_slot(tr, s, llt_str_hash(s));
    if (tr->string_index[slot]) return tr->string_index[slot] - 1;
    if (!llt_grow((void **) &tr->strings, &tr->cap_strings, tr->n_strings + 1, sizeof(char *))) return -1;
    char * copy = strdup(s);
    if (!copy) return -1;
    tr->strings[tr->n_strings] = copy;
    tr->string_index[slot] = tr->n_strings + 1;
    return tr->n_strings++;
}

// ---- recording a node (runs for every node, in the ask call) -----------------------------

static bool op_is_noop(enum ggml_op op) {
    return op == GGML_OP_NONE || op == GGML_OP_VIEW || op == GGML_OP_RESHAPE ||
           op == GGML_OP_PERMUTE || op == GGML_OP_TRANSPOSE;
}

static int32_t buffer_id(struct llt_tracer * tr, const struct ggml_tensor * t) {
    const struct ggml_tensor * base = t->view_src ? t->view_src : t;
    ggml_backend_buffer_t buf = base->buffer ? base->buffer : t->buffer;
    // nodes of a graph share one or two buffers: remember the last one
    if (buf != tr->last_buffer || tr->last_buffer_id < 0) {
        tr->last_buffer = buf;
        tr->last_buffer_id = intern(tr, buf ? ggml_backend_buffer_name(buf) : "none");
    }
    return tr->last_buffer_id;
}

// The device whose memory holds t ("CPU", "RPC0", "CUDA0"): the device of its buffer's type,
// except a GPU's host buffer type (pinned memory), which llama.cpp gives the CPU backend when a
// GPU is present (llama-context.cpp): the CPU computes there.
static int32_t device_id(struct llt_tracer * tr, const struct ggml_tensor * t) {
    const struct ggml_tensor * base = t->view_src ? t->view_src : t;
    ggml_backend_buffer_t buf = base->buffer ? base->buffer : t->buffer;
    if (buf != tr->last_dev_buffer || tr->last_device_id < 0) {
        ggml_backend_buffer_type_t buft = buf ? ggml_backend_buffer_get_type(buf) : NULL;
        ggml_backend_dev_t dev = buft ? ggml_backend_buft_get_device(buft) : NULL;
        if (dev && ggml_backend_dev_host_buffer_type(dev) == buft) dev = NULL;
        tr->last_dev_buffer = buf;
        tr->last_device_id = intern(tr, dev ? ggml_backend_dev_name(dev) : "CPU");
        tr->last_device_cpu = !dev || ggml_backend_dev_type(dev) == GGML_BACKEND_DEVICE_TYPE_CPU;
    }
    return tr->last_device_id;
}

// ggml_is_view_op: the scheduler starts no split at these (ggml_backend_sched_split_graph)
static bool is_view_op(int32_t op) {
    return op == GGML_OP_VIEW || op == GGML_OP_RESHAPE || op == GGML_OP_PERMUTE || op == GGML_OP_TRANSPOSE;
}

// The split of node idx, recorded in r: a node that computes on another device than the split
// before it starts a new one, as the scheduler splits the graph (views go with the split they
// are in). The split's device is that of its last node that is not a view.
static int32_t split_of(const struct llt_tracer * tr, const struct node_rec * r, int32_t idx) {
    if (idx == 0) return 0;
    const int32_t split = tr->recs[idx - 1].split;
    if (is_view_op(r->op)) return split;
    for (int32_t j = idx - 1; j >= 0 && tr->recs[j].split == split; j--) {
        if (!is_view_op(tr->recs[j].op)) return tr->recs[j].device == r->device ? split : split + 1;
    }
    return split; // only views so far: this node gives the split its device
}

// The scheduler hands a node a copy of a source that lives on another device, made in the
// node's split and named "<backend>#<source>#<copy>" (ggml_backend_sched_split_graph): the
// source's name, or NULL if s is no such copy. A name cut at GGML_MAX_NAME loses its tail.
static const char * copy_origin(const struct ggml_tensor * s, char * out, size_t size) {
    const char * first = strchr(s->name, '#');
    if (!first || first == s->name) return NULL;
    const char * last = strrchr(s->name, '#');
    size_t n = strlen(first + 1);
    if (last > first && last[1] && strspn(last + 1, "0123456789") == strlen(last + 1)) n = (size_t) (last - first - 1);
    snprintf(out, size, "%.*s", (int) n, first + 1);
    return out;
}

// classifies a source: a node of this graph, a model weight, or an input
static void classify_src(struct llt_tracer * tr, const struct ggml_tensor * s, int32_t * kind, int32_t * ref) {
    int32_t idx = ptr_table_get(&tr->node_idx, s);
    if (idx >= 0) { *kind = SRC_NODE; *ref = idx; return; }
    int32_t wid = ptr_table_get(&tr->weight_ids, s);
    if (wid >= 0) { *kind = SRC_WEIGHT; *ref = wid; return; }
    if (s->buffer && ggml_backend_buffer_get_usage(s->buffer) == GGML_BACKEND_BUFFER_USAGE_WEIGHTS) {
        wid = llt_registry_find(tr->reg, s->name);
        if (wid >= 0) {
            if (!ptr_table_put(&tr->weight_ids, s, wid)) { llt_capture_fail(tr, "out of memory"); }
            if (tr->weight_buffer[wid] < 0) tr->weight_buffer[wid] = intern(tr, ggml_backend_buffer_name(s->buffer));
            *kind = SRC_WEIGHT; *ref = wid;
            return;
        }
    }
    *kind = SRC_INPUT;
    *ref = intern(tr, s->name[0] ? s->name : "(unnamed)");
}

static bool fuses_norm(const struct ggml_tensor * mul, const struct ggml_tensor * norm);
static void drop_derived(struct llt_tracer * tr, int32_t from);

static bool resize(void ** p, int32_t n, size_t elem) {
    void * q = realloc(*p, (size_t) n * elem);
    if (q) *p = q;
    return q != NULL;
}

// Grows the per-node arrays; false (tracing stopped) when out of memory.
static bool reserve_nodes(struct llt_tracer * tr, int32_t n) {
    if (n <= tr->cap_nodes) return true;
    int32_t cap = tr->cap_nodes;
    bool ok = llt_grow((void **) &tr->recs, &cap, n, sizeof(struct node_rec)) &&
              resize((void **) &tr->times, cap, sizeof(struct node_span)) &&
              resize((void **) &tr->seen, cap, sizeof(struct ggml_tensor)) &&
              resize((void **) &tr->seen_ptr, cap, sizeof(const struct ggml_tensor *)) &&
              resize((void **) &tr->stamps, cap, sizeof(struct stamp)) && resize((void **) &tr->bits, cap, 1) &&
              resize((void **) &tr->asked, cap, 1) && resize((void **) &tr->fast_ptr, cap, sizeof(*tr->fast_ptr)) &&
              resize((void **) &tr->uses, cap, sizeof(int32_t)) && resize((void **) &tr->map.node, cap, sizeof(int32_t)) &&
              resize((void **) &tr->map.layer, cap, sizeof(int16_t)) && resize((void **) &tr->map.fused, cap, 1);
    if (ok && tr->params.interventions) ok = resize((void **) &tr->iv_match, cap, 1);
    if (ok && tr->values) {
        ok = resize((void **) &tr->node_stats, cap, sizeof(struct node_stat)) &&
             resize((void **) &tr->scan_at, cap, sizeof(int32_t)) && resize((void **) &tr->scan_first, cap, sizeof(int32_t)) &&
             resize((void **) &tr->read_map, cap, sizeof(int32_t)) && resize((void **) &tr->by_stamp, cap, 1) &&
             resize((void **) &tr->derive_of, cap, sizeof(int32_t));
    }
    if (!ok) {
        llt_capture_fail(tr, "out of memory");
        return false;
    }
    // new slots match nothing, and have no statistics (finish_graph clears them after each computation)
    memset(tr->seen_ptr + tr->cap_nodes, 0, (size_t) (cap - tr->cap_nodes) * sizeof(*tr->seen_ptr));
    memset(tr->fast_ptr + tr->cap_nodes, 0, (size_t) (cap - tr->cap_nodes) * sizeof(*tr->fast_ptr));
    if (tr->node_stats) memset(tr->node_stats + tr->cap_nodes, 0, (size_t) (cap - tr->cap_nodes) * sizeof(*tr->node_stats));
    tr->cap_nodes = cap;
    return true;
}

// the slow path: a node that differs from the previous computation's at its position
static void describe_node(struct llt_tracer * tr, struct ggml_tensor * t, int32_t idx) {
    if (tr->same_so_far) {
        // the first difference: the index map must hold exactly this computation's nodes
        tr->same_so_far = false;
        tr->n_fast = 0;
        ptr_table_clear(&tr->node_idx);
        tr->names.gen++;
        for (int32_t i = 0; i < idx; i++) {
            if (!ptr_table_put(&tr->node_idx, tr->seen_ptr[i], i)) { llt_capture_fail(tr, "out of memory"); return; }
            name_table_count(&tr->names, tr->recs, i);
        }
    }
    if ((uint32_t) idx * 2 + 2 > tr->names.cap) {
        // more nodes than the name table was made for: tracing stops rather than loop
        llt_capture_fail(tr, "graph too large");
        return;
    }
    struct node_rec * r = &tr->recs[idx];
    memset(r, 0, sizeof(*r)); // records are compared with memcmp: padding included
    strncpy(r->name, t->name, sizeof(r->name));
    r->op    = t->op;
    r->subop = t->op == GGML_OP_UNARY ? (int32_t) ggml_get_unary_op(t)
             : t->op == GGML_OP_GLU   ? (int32_t) ggml_get_glu_op(t) : -1;
    r->type  = t->type;
    for (int d = 0; d < 4; d++) r->ne[d] = t->ne[d];
    r->bytes  = ggml_nbytes(t);
    r->flags  = (t->view_src ? NODE_VIEW : 0) | (op_is_noop(t->op) ? NODE_NOOP : 0) |
                (strncmp(t->name, "l_out-", 6) == 0 ? NODE_LOUT : 0) | (llt_experts_is_route(t) ? NODE_ROUTE : 0);
    if (tr->cpu_fusion && idx > 0 && t->op == GGML_OP_MUL && tr->seen_ptr[idx - 1]->op == GGML_OP_RMS_NORM &&
        fuses_norm(t, tr->seen_ptr[idx - 1])) {
        const struct ggml_tensor * base = t->view_src ? t->view_src : t;
        if (!base->buffer || ggml_backend_buffer_is_host(base->buffer)) r->flags |= NODE_FUSABLE; // on the CPU
    }
    r->buffer = buffer_id(tr, t);
    r->device = device_id(tr, t);
    r->split  = split_of(tr, r, idx);
    if (!tr->last_device_cpu && !op_is_noop(t->op)) tr->off_cpu = true;
    int32_t inherited = -1;
    for (int i = 0; i < GGML_MAX_SRC; i++) {
        const struct ggml_tensor * s = t->src[i];
        if (!s) continue;
        r->n_src = i + 1;
        char origin[GGML_MAX_NAME];
        if (ptr_table_get(&tr->node_idx, s) < 0 && copy_origin(s, origin, sizeof(origin))) {
            // the source is the node, weight or input the copy was made of (the latest node of that name)
            r->copied |= 1 << i;
            int32_t at = name_table_find(&tr->names, tr->recs, origin);
            int32_t wid = at < 0 ? llt_registry_find(tr->reg, origin) : -1;
            r->src_kind[i] = at >= 0 ? SRC_NODE : wid >= 0 ? SRC_WEIGHT : SRC_INPUT;
            r->src_ref[i]  = at >= 0 ? at : wid >= 0 ? wid : intern(tr, origin);
        } else {
            classify_src(tr, s, &r->src_kind[i], &r->src_ref[i]);
        }
        r->src_bytes[i] = ggml_nbytes(s);
        int32_t l = r->src_kind[i] == SRC_NODE   ? tr->recs[r->src_ref[i]].layer
                  : r->src_kind[i] == SRC_WEIGHT ? llt_registry_get(tr->reg, r->src_ref[i])->layer : -1;
        if (l > inherited) inherited = l;
    }
    r->occ   = name_table_count(&tr->names, tr->recs, idx); // after the sources: their lookups see earlier nodes only
    r->layer = llt_layer_from_name(t->name);
    if (r->layer < 0 && (t->name[0] == '\0' || strncmp(t->name, "node_", 5) == 0)) {
        // auto-named nodes (FLASH_ATTN_EXT, GET_ROWS on out_ids) belong to the layer being
        // built: the later of their sources' layer and the previous node's
        int32_t prev = idx > 0 ? tr->recs[idx - 1].layer : -1;
        r->layer = inherited > prev ? inherited : prev;
    } else if (r->layer < 0 && (t->op == GGML_OP_RMS_NORM || t->op == GGML_OP_NORM) && r->src_kind[0] == SRC_NODE &&
               !(tr->recs[r->src_ref[0]].flags & NODE_LOUT)) {
        // a norm llama.cpp builds with layer -1 inside a layer (Gemma 3's post-FFN norm, named
        // "norm") belongs to its input's layer; the final norm reads the last layer's output
        r->layer = tr->recs[r->src_ref[0]].layer;
    }
    if (tr->values) r->flags |= llt_values_node_flags(tr->values, t, r->name, r->layer, (r->flags & NODE_NOOP) != 0);
    if (!ptr_table_put(&tr->node_idx, t, idx)) llt_capture_fail(tr, "out of memory");
    tr->seen[idx] = *t;
    tr->seen_ptr[idx] = t;
}

// whether a node is observed: computed alone, then posted
// the statistics read a node's output: it computes something of its own
static bool scanned(const struct node_rec * r) {
    return !(r->flags & (NODE_NOOP | NODE_VIEW));
}

// Where stamps cannot time the nodes, the profile level observes every PROFILE_PERIOD-th
// step: its l_out nodes (the per-layer totals) and the computing nodes of one layer, rotating.
// Each observed node costs the inference a compute call and a thread barrier.
#define PROFILE_PERIOD 3

static bool wants(const struct llt_tracer * tr, const struct node_rec * r, int32_t idx) {
    const bool computes = !(r->flags & NODE_NOOP);
    if ((r->flags & NODE_DUMP) && llt_values_step_wanted(tr->values, tr->n_steps)) return true;
    if (r->flags & NODE_REF) return true;
    if (tr->values && llt_values_stats(tr->values)) {
        if (tr->n_plan > 0 && !tr->off_plan && idx < tr->n_plan) return tr->scan_first[idx] >= 0;
        if (scanned(r)) return true;
    }
    if (tr->stamped || times_splits(tr)) return false; // stamps, or each split's last node (record_node)
    switch (tr->params.level) {
        case LLT_LEVEL_TIMING:  return computes;
        case LLT_LEVEL_PROFILE:
            return computes && tr->n_steps % PROFILE_PERIOD == 0 &&
                   ((r->flags & NODE_LOUT) || r->layer == (tr->n_steps / PROFILE_PERIOD) % tr->n_layer);
        default:                return false;
    }
}

// Whether the CPU backend computes mul together with norm, the RMS_NORM node before it (its
// ggml_cpu_try_fuse_ops): the conditions on the pair itself. Those on the graph (the norm has
// no other use, no compute range ends between them) are checked when the stamps are matched.
static bool fuses_norm(const struct ggml_tensor * mul, const struct ggml_tensor * norm) {
    if (mul->src[0] != norm && mul->src[1] != norm) return false;
    const struct ggml_tensor * w = mul->src[0] == norm ? mul->src[1] : mul->src[0];
    return norm->src[0] && norm->src[0]->type == GGML_TYPE_F32 && mul->type == GGML_TYPE_F32 && w &&
           w->type == GGML_TYPE_F32 && w->ne[0] == norm->ne[0] && w->nb[0] == sizeof(float) &&
           !norm->view_src && !(norm->flags & GGML_TENSOR_FLAG_OUTPUT) && ggml_are_same_shape(mul, norm);
}

// Whether node idx ends its split, as the previous computation had the graph: the scheduler
// computes a split's nodes in one call and synchronises its backend after it, so observing the
// last one adds a post call and nothing else. A wrong guess (the graph changed) is dropped
// when the computation ends (llt_capture_finish_graph); the first computation has no guess.
static bool split_end(const struct llt_tracer * tr, int32_t idx) {
    if (idx + 1 >= tr->n_prev) return idx + 1 == tr->n_prev;
    return tr->recs[idx + 1].split != tr->recs[idx].split;
}

// ---- the fast path: a graph that repeats --------------------------------------------------
//
// llama.cpp computes the same graph step after step (it reuses it while the batch's shape
// stays), and asks about every node every time. Where the tracer's answer for an unchanged
// node is always no and nothing is recorded per node (level graph, the levels the CPU
// backend's stamps time, and at level values every node the scan plan does not read at), the
// ask call of such a node is one pointer and one struct compare: the rest of record_node() is
// skipped. Which nodes still take the full path is planned once per graph in tr->asked (a
// graph's first and last node, MoE routing, the values level's read points); a hook that needs
// its own nodes would set its bit in llt_capture_plan_asks().

// (not with interventions, which a step's selectors may change, nor under a debugger that has
// breakpoints or steps: they look at every node)
static bool hook_busy(const struct llt_tracer * tr) {
    return tr->hook && !(tr->hook_idle && tr->hook_idle(tr->hook_ud));
}

// values: the graph as the scan plan has it, whose reads and dumps are in tr->asked
static bool values_planned(const struct llt_tracer * tr) {
    return tr->n_plan > 0 && tr->n_plan == tr->n_prev && !tr->off_plan;
}

static bool fast_path_ok(const struct llt_tracer * tr) {
    return tr->active && tr->same_so_far && (!tr->values || values_planned(tr)) && !tr->chain_cb && !hook_busy(tr) &&
           !tr->params.interventions &&
           (tr->params.level == LLT_LEVEL_GRAPH || tr->stamped || tr->params.level == LLT_LEVEL_VALUES) &&
           !((tr->moe || tr->cur_n_tokens > 1) && tr->n_graph_pos == 0); // the graph's positions are looked for
}

// the fast path's one pointer compare per node: the tensor of an unasked node, NULL for others
static void fast_ptrs(struct llt_tracer * tr) {
    for (int32_t i = 0; i < tr->n_nodes; i++) tr->fast_ptr[i] = tr->asked[i] ? NULL : tr->seen_ptr[i];
}

void llt_capture_plan_asks(struct llt_tracer * tr) {
    const int32_t n = tr->n_nodes;
    for (int32_t i = 0; i < n; i++) tr->asked[i] = (tr->recs[i].flags & NODE_ROUTE) ? ASK_TRACER : 0;
    if (n > 0) tr->asked[0] = tr->asked[n - 1] = ASK_TRACER; // starts and ends a computation
    fast_ptrs(tr);
}

// Every byte of two tensor structs equal up to extra, a backend's own pointer, and padding,
// which nothing describes, but for the 32 bytes at SKIP, op_params[3..10]: no field of a node's
// record is made from them (its subop is op_params[0]). A memcmp inlined: no call, and vectors
// of 32 bytes where the caller is built for AVX2; 9 of them.
typedef uint64_t v32 __attribute__((vector_size(32)));
typedef uint64_t v16 __attribute__((vector_size(16)));
#define TENSOR_SAME_BYTES offsetof(struct ggml_tensor, extra)
#define SKIP (offsetof(struct ggml_tensor, op_params) + 3 * sizeof(int32_t))
_Static_assert(TENSOR_SAME_BYTES % 32 == 0, "the compared bytes are whole 32-byte vectors");
_Static_assert(SKIP % 32 == 0 && SKIP + 32 <= offsetof(struct ggml_tensor, op_params) + GGML_MAX_OP_PARAMS,
               "the bytes left out are one vector inside op_params, after its first three values");

static inline __attribute__((always_inline)) bool same_tensor(const struct ggml_tensor * a, const struct ggml_tensor * b) {
    const unsigned char * pa = (const unsigned char *) a, * pb = (const unsigned char *) b;
    v32 acc = {0};
    for (size_t i = 0; i < TENSOR_SAME_BYTES; i += 32) {
        if (i == SKIP) continue;
        v32 x, y;
        memcpy(&x, pa + i, 32);
        memcpy(&y, pb + i, 32);
        acc |= x ^ y;
    }
    const v16 r = (v16) { acc[0], acc[1] } | (v16) { acc[2], acc[3] }; // halves first: fewer moves out of vectors
    return (r[0] | r[1]) == 0;
}

// true: t is the next node of a repeating graph, unasked and unchanged; counted, answered no
static inline bool repeats_unasked(struct llt_tracer * tr, const struct ggml_tensor * t) {
    const int32_t idx = tr->n_nodes;
    if (idx >= tr->n_fast || tr->fast_ptr[idx] != t || !same_tensor(&tr->seen[idx], t)) {
        return false;
    }
    tr->n_nodes = idx + 1; // its bits stay 0 (record_node clears them when a computation begins)
    return true;
}

// ---- the full path -------------------------------------------------------------------------

// Records a node in the ask call; returns true if it should be observed (computed alone,
// then posted). While the graph repeats, one struct compare per node finds it unchanged.
// t begins a graph computation while one is recorded: the first node again, or, in a graph
// llama.cpp built anew (a ubatch of another size), the token embeddings' GET_ROWS of the
// first node's name (a cheap test first: few nodes are GET_ROWS)
static bool starts_graph(const struct llt_tracer * tr, const struct ggml_tensor * t) {
    return t == tr->seen_ptr[0] ||
           (t->op == GGML_OP_GET_ROWS && tr->recs[0].op == GGML_OP_GET_ROWS && strcmp(t->name, tr->recs[0].name) == 0);
}

static bool record_node(struct llt_tracer * tr, struct ggml_tensor * t) {
    if (tr->n_nodes > 0 && starts_graph(tr, t)) {
        // a new graph computation began (next ubatch, or a decode made without llt_decode,
        // whose rows are written right away)
        llt_capture_finish_graph(tr);
        if (!tr->in_decode) llt_capture_submit(tr);
        if (!tr->active) return false;
    }
    if (tr->n_nodes == 0) {
        tr->compute_begin_ns = tr->last_ask_ns = llt_now_ns() - tr->t0_ns;
        tr->n_fast = fast_path_ok(tr) ? tr->n_prev : 0;
        if (tr->bits) memset(tr->bits, 0, (size_t) tr->cap_nodes); // the fast path leaves a node's as they are
    }
    const int32_t idx = tr->n_nodes;
    if (idx >= tr->cap_nodes && !reserve_nodes(tr, idx + 1)) return false;
    const bool same = tr->same_so_far && idx < tr->n_prev && tr->seen_ptr[idx] == t &&
                      memcmp(&tr->seen[idx], t, sizeof(*t)) == 0;
    if (!same) {
        describe_node(tr, t, idx);
        if (!tr->active) return false;
    }
    tr->n_nodes++;
    // which tokens the graph computes: an MoE layer's routing rows, the ubatches of a decode call
    if ((tr->moe || tr->cur_n_tokens > 1) && tr->n_graph_pos == 0 && t->op == GGML_OP_ROPE) {
        llt_experts_graph_pos(tr, t);
        tr->n_fast = fast_path_ok(tr) ? tr->n_prev : 0;
    }
    // an MoE layer's routing is read at every level (experts.c)
    const bool route = (tr->recs[idx].flags & NODE_ROUTE) != 0;
    tr->bits[idx] = 0;
    if (tr->params.interventions && llt_capture_iv_wants(tr, idx, same)) tr->bits[idx] = BIT_INTERVENE;
    if (tr->params.level == LLT_LEVEL_GRAPH && !tr->values) return route; // records only
    if (tr->stamped) {
        // the live tensors, not the records: this runs for every node, and they are in cache
        // the computation begins after the last ask: the graph's last node, as before
        if (!same || idx + 1 >= tr->n_prev) tr->last_ask_ns = llt_now_ns() - tr->t0_ns;
        if (!tr->values) return route; // timed by stamps, nothing else to observe
    }
    tr->times[idx] = (struct node_span) { 0, 0 };
    if (times_splits(tr)) {
        if (idx == 0) tr->split_begin_ns = tr->compute_begin_ns;
        if (idx == 0 || tr->recs[idx].split != tr->recs[idx - 1].split) tr->split_ask_ns = llt_now_ns() - tr->t0_ns;
        if (split_end(tr, idx)) tr->bits[idx] = BIT_SPLIT_END;
    }
    if (!same && tr->n_plan > 0 && !tr->off_plan && tr->node_stats) {
        // the graph changed under the plan: this node reads what the plan left pending
        tr->off_plan = true;
        tr->off_plan_at = idx;
        drop_derived(tr, idx);
        return true;
    }
    return (tr->bits[idx] & BIT_SPLIT_END) || wants(tr, &tr->recs[idx], idx) || route;
}

// the memory a node writes: [begin, end) in its buffer
struct span { const void * buffer; const char * begin, * end; };

static struct span span_of(const struct ggml_tensor * t) {
    return (struct span) { t->buffer, t->data, t->data ? (const char *) t->data + ggml_nbytes(t) : NULL };
}

static bool spans_overlap(const struct span * a, const struct span * b) {
    return a->buffer == b->buffer && a->begin && b->begin && a->begin < b->end && b->begin < a->end;
}

static bool overlaps(const struct ggml_tensor * a, const struct ggml_tensor * b) {
    const struct span sa = span_of(a), sb = span_of(b);
    return spans_overlap(&sa, &sb);
}

// node i's first source when it is a node of the graph, else -1
static int32_t src_node(const struct llt_tracer * tr, int32_t i) {
    const struct node_rec * r = &tr->recs[i];
    return r->n_src > 0 && r->src_kind[0] == SRC_NODE ? r->src_ref[0] : -1;
}

// the norms whose derivation must match their read before a plan derives any (derive.c)
#define DERIVE_CHECKS 4

// Node i, a norm, was read: its derivation from its input, where no node since (none asked
// for yet) wrote over that, must give the same statistics bit for bit.
static void check_derivation(struct llt_tracer * tr, int32_t i) {
    const int32_t p = src_node(tr, i);
    if (p < 0 || !llt_derive_norm_possible(tr->seen_ptr[i], tr->seen_ptr[p])) return;
    for (int32_t k = p + 1; k < tr->n_nodes; k++) {
        if (!(tr->recs[k].flags & NODE_NOOP) && overlaps(tr->seen_ptr[p], tr->seen_ptr[k])) return;
    }
    struct llt_stats st;
    if (llt_derive_norm_stats(tr->seen_ptr[i], tr->seen_ptr[p], &tr->derive_buf, &tr->derive_cap, &st) != LLT_OK) return;
    if (memcmp(&st, &tr->node_stats[i].st, sizeof(st)) == 0) {
        tr->n_derive_ok++;
    } else {
        tr->derive_bad = true;
    }
}

// the statistics of norm d, derived from its input p, read now (the plan's graph says what d is)
static void derive_node(struct llt_tracer * tr, int32_t d, int32_t p) {
    struct node_stat * ns = &tr->node_stats[d];
    ns->has = llt_derive_norm_stats(&tr->seen[d], tr->seen_ptr[p], &tr->derive_buf, &tr->derive_cap, &ns->st) == LLT_OK;
    tr->n_stats_read += ns->has;
    tr->n_stats_derived += ns->has;
}

// the graph left the plan at node from: the norms derived for nodes from there on are not known
// to be what the graph computes (each is read at its own post call, if it is still there)
static void drop_derived(struct llt_tracer * tr, int32_t from) {
    for (int32_t p = 0; p < from && p < tr->n_plan; p++) {
        if (tr->derive_of[p] >= from) llt_capture_unread(tr, tr->derive_of[p], &tr->n_stats_derived);
    }
}

// reads the statistics of node i, whose output is intact now (and those of the norm derived from it)
static int scan_node(struct llt_tracer * tr, int32_t i, int32_t * nan_at) {
    struct node_stat * ns = &tr->node_stats[i];
    int rc = llt_values_stats_of(tr->values, tr->seen_ptr[i], &ns->st);
    ns->has = rc == LLT_OK;
    tr->n_stats_read += ns->has;
    if (ns->has && i < tr->n_plan && tr->derive_of[i] >= 0 && !(tr->off_plan && tr->derive_of[i] >= tr->off_plan_at)) {
        derive_node(tr, tr->derive_of[i], i);
    } else if (ns->has && tr->recs[i].op == GGML_OP_RMS_NORM && !tr->derive_bad && tr->n_derive_ok < DERIVE_CHECKS) {
        check_derivation(tr, i);
    }
    if (ns->has && *nan_at < 0 && tr->params.values.break_on_nan && (ns->st.n_nan || ns->st.n_pinf || ns->st.n_ninf)) {
        *nan_at = i;
    }
    return rc;
}

// the post call of node j reads: what the plan gives it; where the graph left the plan, the
// pending nodes that j did not write over; off the plan, j itself
static int scan(struct llt_tracer * tr, int32_t j, int32_t * nan_at) {
    int rc = LLT_OK;
    const bool planned = tr->n_plan > 0 && j < tr->n_plan;
    if (planned && !tr->off_plan) {
        for (int32_t i = tr->scan_first[j]; i >= 0 && i <= j && rc == LLT_OK; i++) {
            if (tr->scan_at[i] == j) rc = scan_node(tr, i, nan_at);
        }
        if (tr->scan_first[j] >= 0) tr->scan_next = j + 1;
        return rc;
    }
    if (planned && tr->off_plan && tr->scan_next <= j) {
        // the first node off the plan: what is still pending, unless j wrote over it
        for (int32_t i = tr->scan_next; i < j && rc == LLT_OK; i++) {
            if (scanned(&tr->recs[i]) && !overlaps(&tr->seen[i], tr->seen_ptr[j])) rc = scan_node(tr, i, nan_at);
        }
        tr->scan_next = INT32_MAX;
    }
    return rc == LLT_OK && scanned(&tr->recs[j]) ? scan_node(tr, j, nan_at) : rc;
}

// the last node before which node i's output is still intact: the node before the first later
// one that writes over its memory (or i itself, for a norm the CPU fuses with the MUL after it)
static int32_t intact_until(const struct llt_tracer * tr, const struct span * sp, int32_t i, int32_t n) {
    // the CPU backend computes RMS_NORM and the MUL after it in one pass, without writing the
    // norm, when both are in one compute range (mark_fused in steps.c): such a norm is read at
    // its own post, or derived
    if (i + 1 < n && (tr->recs[i + 1].flags & NODE_FUSED)) return i;
    for (int32_t k = i + 1; k < n; k++) {
        if (!(tr->recs[k].flags & NODE_NOOP) && spans_overlap(&sp[k], &sp[i])) return k - 1;
    }
    return n - 1;
}

// Reads at posts only: each node at the earliest post call where its output is still intact
// and others' are too (interval stabbing; each post call is a split of the graph).
static void plan_posts(struct llt_tracer * tr, const struct span * sp, int32_t n) {
    int32_t pending = -1, min_end = INT32_MAX;
    for (int32_t i = 0; i < n; i++) {
        if (scanned(&tr->recs[i]) && sp[i].begin) {
            const int32_t end = intact_until(tr, sp, i, n);
            if (end < min_end) min_end = end;
            if (pending < 0) pending = i;
        }
        if (i == min_end) {
            tr->scan_first[i] = pending;
            for (int32_t p = pending; p <= i; p++) if (scanned(&tr->recs[p])) tr->scan_at[p] = i;
            pending = -1;
            min_end = INT32_MAX;
        }
    }
}

// the first node after i that the CPU computes, n if none
static int32_t next_computed(const struct llt_tracer * tr, int32_t i, int32_t n) {
    while (++i < n && !llt_capture_computed(tr, i)) {}
    return i;
}

// Norms that would need a split of their own (the next computed node writes over them, or is
// the MUL the CPU fuses with them), derived from their input instead, when that is read (derive.c):
// nobody asks for such a norm, so the CPU computes it as without lltrace. Only once norms read
// at post calls matched their derivation, and with nobody else who might ask for them; and only
// a norm computed right after its input (so by the time the input is read, at the stamp after
// the norm or at the input's post call, nothing can stop the computation between the two).
static void plan_derived(struct llt_tracer * tr, const struct span * sp, int32_t n) {
    if (tr->n_derive_ok == 0 || tr->derive_bad || tr->chain_cb || tr->hook || tr->params.interventions) return;
    for (int32_t i = 0; i < n; i++) {
        const struct node_rec * r = &tr->recs[i];
        const int32_t p = src_node(tr, i);
        if (r->op != GGML_OP_RMS_NORM || !scanned(r) || (r->flags & (NODE_DUMP | NODE_REF)) || p < 0 ||
            !scanned(&tr->recs[p]) || !sp[p].begin || !llt_capture_computed(tr, p) || next_computed(tr, p, n) != i ||
            tr->derive_of[p] >= 0 || !llt_derive_norm_possible(&tr->seen[i], &tr->seen[p])) {
            continue;
        }
        const int32_t next = next_computed(tr, i, n);
        if (next < n && next <= intact_until(tr, sp, i, n)) continue; // read at a stamp: cheaper
        tr->derive_of[p] = i;
    }
}

static bool derived(const struct llt_tracer * tr, int32_t i) {
    const int32_t p = src_node(tr, i);
    return p >= 0 && tr->derive_of[p] == i;
}

// Reads at stamps where they can be: a node is read at the stamp of the next node the CPU
// computes, unless that node writes over it (an operation in place, a fused norm), or none
// follows; those are read at their own post call, which splits the graph there.
static void plan_stamps(struct llt_tracer * tr, const struct span * sp, int32_t n) {
    plan_derived(tr, sp, n);
    tr->n_read_map = 0;
    for (int32_t i = 0; i < n; i++) {
        if (!llt_capture_computed(tr, i)) continue;
        // a derived norm and its fused MUL end at one stamp, after which the MUL is complete
        if (derived(tr, i) && i + 1 < n && (tr->recs[i + 1].flags & NODE_FUSED)) continue;
        tr->read_map[tr->n_read_map++] = i;
    }
    for (int32_t s = 0; s < tr->n_read_map; s++) {
        const int32_t i = tr->read_map[s];
        if (!scanned(&tr->recs[i]) || !sp[i].begin || derived(tr, i)) continue;
        if (s + 1 < tr->n_read_map && tr->read_map[s + 1] <= intact_until(tr, sp, i, n)) {
            tr->by_stamp[i] = 1;
        } else {
            tr->scan_first[i] = tr->scan_at[i] = i;
        }
    }
    // a scanned node the CPU does not compute is read where it is, as before
    for (int32_t i = 0; i < n; i++) {
        if (scanned(&tr->recs[i]) && sp[i].begin && !llt_capture_computed(tr, i)) tr->scan_first[i] = tr->scan_at[i] = i;
    }
}

// Plans the reads for the graph just computed (tr->seen holds its tensors): which post calls
// and which stamps read which nodes' outputs.
void llt_capture_build_plan(struct llt_tracer * tr) {
    const int32_t n = tr->n_nodes;
    tr->n_read_map = 0;
    struct span * sp = malloc((size_t) n * sizeof(*sp) + 1);
    if (!sp) {
        tr->n_plan = 0; // no plan: every node reads itself
        return;
    }
    for (int32_t i = 0; i < n; i++) {
        const struct ggml_tensor * t = &tr->seen[i];
        if (t->buffer && !ggml_backend_buffer_is_host(t->buffer)) {
            // a GPU backend fuses more kinds of node pairs than we can name: read node by node
            free(sp);
            tr->n_plan = 0;
            return;
        }
        sp[i] = span_of(t);
    }
    for (int32_t i = 0; i < n; i++) {
        tr->scan_at[i] = tr->scan_first[i] = tr->derive_of[i] = -1;
        tr->by_stamp[i] = 0;
    }
    const bool stats = llt_values_stats(tr->values);
    if (stats && tr->stamp_reads && tr->stamps_ok) {
        plan_stamps(tr, sp, n);
    } else {
        plan_posts(tr, sp, n);
    }
    free(sp);
    tr->n_plan = n;
    // the nodes whose ask call must come to record_node(): the reads, dumps and comparisons
    for (int32_t i = 0; i < n; i++) {
        const bool asks = (stats && tr->scan_first[i] >= 0) || (tr->recs[i].flags & (NODE_DUMP | NODE_REF));
        tr->asked[i] = (uint8_t) ((tr->asked[i] & ~ASK_VALUES) | (asks ? ASK_VALUES : 0));
    }
    fast_ptrs(tr);
}

// the post call of an observed node: its output is valid now
static bool observe(struct llt_tracer * tr, struct ggml_tensor * t) {
    const int32_t idx = tr->n_nodes - 1;
    int64_t now = llt_now_ns() - tr->t0_ns;
    tr->times[idx].end_ns = now;
    tr->compute_end_ns = now;
    tr->n_observed++;
    if (tr->bits[idx] & BIT_SPLIT_END) {
        // the split's time, not the node's. A remote backend's synchronisation only waits until
        // its commands are sent (ggml-rpc: the server computes them in order, later): reading a
        // few bytes of the split's last output is the one round trip that ends with the split.
        const struct ggml_tensor * base = t->view_src ? t->view_src : t;
        if (base->buffer && !ggml_backend_buffer_is_host(base->buffer) && ggml_nbytes(t) > 0) {
            char probe[4];
            ggml_backend_tensor_get(t, probe, 0, ggml_nbytes(t) < sizeof(probe) ? ggml_nbytes(t) : sizeof(probe));
            tr->times[idx].end_ns = tr->compute_end_ns = now = llt_now_ns() - tr->t0_ns;
        }
        tr->times[idx] = (struct node_span) { 0, 0 };
        if (llt_grow((void **) &tr->split_times, &tr->cap_split_times, tr->n_split_times + 1, sizeof(struct split_time))) {
            tr->split_times[tr->n_split_times++] = (struct split_time) {
                .split = tr->recs[idx].split, .idx = idx,
                .t_begin_ns = tr->split_begin_ns, .t_compute_ns = tr->split_ask_ns, .t_end_ns = now,
            };
        } else {
            llt_capture_fail(tr, "out of memory");
        }
        tr->split_begin_ns = now;
    }
    const struct node_rec * r = &tr->recs[idx];
    if ((r->flags & NODE_ROUTE) && llt_experts_read(tr, t, r->layer) != LLT_OK) {
        llt_capture_fail(tr, llt_last_error());
        return true;
    }
    if (!tr->values) return true;
    struct llt_values * v = tr->values;
    int rc = LLT_OK;
    if (llt_values_stats(v)) {
        int32_t nan_at = -1;
        rc = scan(tr, idx, &nan_at);
        if (nan_at >= 0) {
            const struct node_rec * nr = &tr->recs[nan_at];
            llt_values_nan(v, tr->seen_ptr[nan_at], nr, llt_node_op_name(nr), tr->n_steps, &tr->node_stats[nan_at].st);
            // the rest of the graph is not computed, and the report ends the run; or, asked only
            // for the report, the program goes on as it would
            return tr->params.values.nan_report_only;
        }
    }
    if (rc == LLT_OK && (r->flags & NODE_DUMP) && llt_values_step_wanted(v, tr->n_steps)) {
        rc = llt_values_dump(v, t, r, idx, tr->n_steps, tr->cur_pos0, tr->cur_n_tokens, llt_node_op_name(r));
    }
    if (rc == LLT_OK && (r->flags & NODE_REF)) {
        struct llt_batch * b = llt_capture_batch(tr);
        bool found = false;
        if (!b || !llt_grow((void **) &b->diffs, &b->cap_diffs, b->n_diffs + 1, sizeof(struct diff_rows))) {
            rc = llt_set_error(LLT_ENOMEM, "out of memory");
        } else {
            rc = llt_values_compare(v, t, r, idx, tr->n_steps, &b->diffs[b->n_diffs], &found);
            if (rc == LLT_OK && found) b->n_diffs++;
        }
    }
    if (rc != LLT_OK) llt_capture_fail(tr, llt_last_error());
    return true;
}

void llt_capture_node_view(struct llt_tracer * tr, int32_t idx, struct llt_node_view * out) {
    const struct node_rec * r = &tr->recs[idx];
    *out = (struct llt_node_view) {
        .tracer = tr, .t = (struct ggml_tensor *) tr->seen_ptr[idx], .idx = idx, .step = tr->n_steps, .layer = r->layer,
        .op = llt_node_op_name(r), .device = r->device >= 0 ? tr->strings[r->device] : "?", .pos0 = tr->cur_pos0, .n_tokens = tr->cur_n_tokens,
        .seq_mask = tr->cur_seq_mask, .noop = (r->flags & NODE_NOOP) != 0,
        .fused_next = idx + 1 < tr->n_nodes && (tr->recs[idx + 1].flags & NODE_FUSABLE),
    };
}

// the node hook (the debugger) sees the node just recorded
static bool hook_call(struct llt_tracer * tr, bool ask) {
    struct llt_node_view v;
    llt_capture_node_view(tr, tr->n_nodes - 1, &v);
    return tr->hook(&v, ask, tr->hook_ud);
}

// the ask call's full path: the chained callback, the node recorded, the interventions and the
// debugger's hook that want it, the answer
static __attribute__((noinline)) bool ask_full(struct llt_tracer * tr, struct ggml_tensor * t) {
    tr->chain_need = tr->chain_cb ? tr->chain_cb(t, true, tr->chain_ud) : false;
    tr->self_need = tr->active && !repeats_unasked(tr, t) && record_node(tr, t);
    tr->iv_need = tr->active && tr->n_nodes > 0 && (tr->bits[tr->n_nodes - 1] & BIT_INTERVENE);
    tr->hook_need = tr->hook && tr->active && tr->n_nodes > 0 && hook_call(tr, true);
    const bool need = tr->self_need || tr->chain_need || tr->iv_need || tr->hook_need;
    if (need && tr->active && tr->n_nodes > 0) {
        const int64_t now = llt_now_ns() - tr->t0_ns;
        tr->times[tr->n_nodes - 1].begin_ns = tr->last_ask_ns = now;
        if (tr->stamped) {
            tr->bits[tr->n_nodes - 1] |= BIT_OBSERVED;
            tr->n_asked_true++;
        }
    }
    return need;
}

static __attribute__((noinline)) bool post(struct llt_tracer * tr, struct ggml_tensor * t) {
    bool go_on = true;
    // changed first (by the interventions, then the debugger's pause): what the trace records
    // of the node is what the rest of the graph reads
    if (tr->iv_need && tr->active) go_on = llt_capture_intervene(tr, t);
    if (go_on && tr->hook_need && tr->active) hook_call(tr, false);
    if (go_on && tr->self_need && tr->active) go_on = observe(tr, t);
    // a false answer to a post call stops the computation: the chained callback may ask for it
    if (tr->chain_need && !tr->chain_cb(t, false, tr->chain_ud)) go_on = false;
    return go_on;
}

// Small on purpose: most calls are the fast path (an unchanged node nobody asked for; never
// with a chained callback), which then costs the comparison and a few loads, no saved registers.
// Built for AVX2 too, where the comparison takes half the instructions.
#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target_clones("avx2", "default")))
#endif
bool llt_capture_eval_cb(struct ggml_tensor * t, bool ask, void * user_data) {
    struct llt_tracer * tr = user_data;
    if (ask && repeats_unasked(tr, t)) return false; // no post call follows: self_need and chain_need stay
    return ask ? ask_full(tr, t) : post(tr, t);
}

// The stamp after a node the CPU computed: the computed node before that one is read here if
// the plan says so, and the graph is as the plan has it up to the node just computed.
static void stamp_read(struct llt_tracer * tr) {
    const int32_t s = tr->n_read_stamps++;
    if (s == 0 || s >= tr->n_read_map) return;
    const int32_t k = tr->read_map[s], p = tr->read_map[s - 1];
    if (!tr->by_stamp[p] || k >= tr->n_nodes || (tr->off_plan && k >= tr->off_plan_at)) return;
    int32_t nan_at = -1; // not asked for: stamp reads are off with break_on_nan
    if (scan_node(tr, p, &nan_at) != LLT_OK) llt_capture_fail(tr, llt_last_error());
    tr->n_stats_stamped += tr->node_stats[p].has;
    tr->scan_next = p + 1;
}

// the CPU backend computed a node (on the thread that called llama_decode)
bool llt_capture_abort_cb(void * user_data) {
    struct llt_tracer * tr = user_data;
    if (tr->stamp_reads && tr->active) stamp_read(tr);
    if (tr->stamped && tr->active) {
        const int64_t now = llt_now_ns() - tr->t0_ns;
        if (tr->n_stamps == 0) tr->first_begin_ns = tr->last_ask_ns;
        if (tr->n_stamps < tr->cap_nodes) tr->stamps[tr->n_stamps] = (struct stamp) { now, tr->n_nodes };
        tr->n_stamps++;
    }
    if (!tr->chain_abort || !tr->chain_abort(tr->chain_abort_ud)) return false;
    tr->aborted = true; // the application stops the computation: fewer stamps than nodes
    return true;
}

