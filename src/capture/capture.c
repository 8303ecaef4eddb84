// Capture: the eval callback that records every graph node llama.cpp computes.
//
// The scheduler asks the callback about each node in order (ask=true); nodes answered false are
// computed together up to the next node answered true, which then gets a post call
// (ask=false) once it is computed. At level graph every node is recorded in the ask call and
// every answer is false, so the scheduler computes each split in one go, as without lltrace.
//
// Levels timing and profile time nodes without observing them. The CPU backend calls the
// context's abort callback (llama_context_params.abort_callback) on its calling thread after
// every node it computes; the tracer chains its own there and takes a time stamp. After the
// computation the stamps are matched, in order, to the nodes the CPU computes: every node
// that is not a no-op, except that a MUL fused into the RMS_NORM before it shares its stamp.
// A node's time runs from the previous node's stamp to its own, so the times add up to the
// computation and the scheduler computes as without lltrace. Where the stamps do not match
// (a GPU backend, an abort callback set later by the application) the tracer falls back to
// observing each timed node: computed alone and timed from its ask to its post call.
//
// The hot path is one struct compare per node: llama.cpp reuses its graph from step to step,
// and a node whose tensor is byte-identical to the one at the same position last time has the
// same record. At the end of a graph computation the records are matched against the graphs
// seen before, so a structure is stored once; each decode call's rows go to the writer thread
// (writer.c) in one batch.
#include "capture/values.h"

#include "ggml-backend.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// a distinct graph structure, kept in memory to recognise repeats
struct graph {
    int64_t           id;        // graphs.id
    int32_t           n_nodes;
    int32_t           n_weights_read;
    int64_t           last_used; // step that last ran it
    struct node_rec * recs;
};

// open-addressing table: pointer -> int, entries of older generations count as empty
struct ptr_entry { const void * key; int32_t val; uint32_t gen; };
struct ptr_table { struct ptr_entry * e; uint32_t cap; uint32_t n; uint32_t gen; };

// node name -> how many nodes of the graph so far have it; the name is read from recs[last]
struct name_entry { uint32_t gen, hash; int32_t last, count; };
struct name_table { struct name_entry * e; uint32_t cap, gen; };

// statistics of a node of the current graph, when read
struct node_stat { bool has; struct llt_stats st; };

// a node's time in the current computation, since the run began; end 0: not timed
struct node_span { int64_t begin_ns, end_ns; };

// the CPU backend finished a node: when, and how many nodes had been asked about by then
struct stamp { int64_t ns; int32_t asked; };

// per node of the current graph, for matching stamps to nodes
enum node_bit {
    BIT_OBSERVED   = 1, // answered true: its compute range ends here, nothing fuses across it
    BIT_FUSES_NORM = 2, // a MUL the CPU backend may compute in one pass with the RMS_NORM before it
};

#define MAX_CACHED_GRAPHS 32
#define GRAPH_IDS_PER_RUN ((int64_t) 1 << 24)

struct llt_tracer {
    // first, together: what the abort callback reads after every node the CPU computes, when
    // the node's data has pushed the tracer out of the cache
    bool                     active;        // false once tracing failed or ended
    bool                     stamped;       // timing by stamps; on until the stamps of a computation fail to match
    int32_t                  n_nodes, cap_nodes; // the graph being computed: nodes asked about so far
    int32_t                  n_stamps;
    int64_t                  t0_ns;
    int64_t                  last_ask_ns;   // the ask just before the computation began
    int64_t                  first_begin_ns;
    struct stamp *           stamps;        // this computation's, up to cap_nodes of them
    bool                   (*chain_abort)(void *);
    void *                   chain_abort_ud;
    bool                     aborted;       // the chained abort callback stopped this computation

    struct llt_store *       st;
    struct llt_tracer_params params;
    char *                   model_path;
    char *                   prompt;
    char *                   params_json;
    struct llt_registry *    reg;
    const struct llama_vocab * vocab;
    struct llt_writer *      writer;
    const char **            weight_names;  // for the writer: registry names by id
    struct llt_values *      values;        // statistics, dumps, comparisons; NULL at levels graph/timing/profile without them
    struct node_stat *       node_stats;    // per node of the current graph (values)
    // the scan plan (statistics): for the graph of the previous computation, which post call
    // reads which nodes' outputs. A node's output is intact from its computation until the
    // first later node that writes over its memory, so one observed node can read many.
    int32_t *                scan_at;       // per node: the node whose post call reads it, -1 none
    int32_t *                scan_first;    // per node: first node its post call reads, -1 if it reads none
    int32_t                  n_plan;        // nodes the plan covers; 0: no plan (observe every node)
    int32_t                  scan_next;     // first node of this computation not read yet
    bool                     off_plan;      // this computation left the plan: every node reads itself
    int32_t                  n_layer;       // the profile level samples layer (step % n_layer)
    llama_token *            all_tokens;    // every token in and out, for the dump's metadata
    int32_t                  cap_all_tokens;
    int64_t                  run_id;
    char                     error[256];

    // chained user callback
    ggml_backend_sched_eval_callback chain_cb;
    void *                   chain_ud;
    bool                     chain_need;    // the chained callback asked for the last node
    bool                     self_need;     // we asked for the last node

    // timing by stamps (levels timing and profile): see the top of the file
    bool                     cpu_fusion;    // the CPU backend fuses RMS_NORM + MUL (GGML_CPU_DISABLE_FUSION)
    int64_t                  observed_from; // the step timing by observing began, -1 none
    uint8_t *                bits;          // per node: enum node_bit
    int32_t                  n_asked_true;  // nodes answered true in this computation
    // which node each stamp ends, worked out for the graph once (it stays while the graph does)
    struct stamp_map {
        int32_t * node;   // per stamp: the node it ends
        int16_t * layer;  // per stamp: that node's layer, -1 when level profile keeps it every step
        uint8_t * fused;  // per stamp: the node after it was computed in the same pass
        int32_t   n;      // stamps; -1 no map
    }                        map;
    int32_t *                uses;          // per node: how many source slots of the graph name it

    // the graph being computed. recs, times and seen keep the previous computation's entries
    // beyond n_nodes, for the comparison in record_node().
    struct node_rec *        recs;
    struct node_span *       times;
    struct ggml_tensor *     seen;          // the tensor structs as they were asked about
    const struct ggml_tensor ** seen_ptr;   // and where they were
    int32_t                  n_prev;        // nodes of the previous computation
    struct graph *           prev_graph;    // its graph
    bool                     same_so_far;   // every node so far matched the previous computation
    int64_t                  compute_begin_ns, compute_end_ns;
    int32_t                  n_observed;    // post calls in the current computation
    struct ptr_table         node_idx;      // tensor -> idx in the current graph
    struct name_table        names;         // name -> count of nodes so far, for node_rec.occ
    struct ptr_table         weight_ids;    // weight tensor -> registry id (lives for the run)

    // strings: buffer names and input names; the strings never move once made
    char **                  strings;
    int32_t                  n_strings, cap_strings;

    int32_t *                weight_buffer; // per registry id: buffer string id, -1 unseen
    ggml_backend_buffer_t    last_buffer;   // buffer_id()'s cache
    int32_t                  last_buffer_id;

    // distinct graphs
    struct graph             graphs[MAX_CACHED_GRAPHS];
    int32_t                  n_graphs_cached;
    int64_t                  first_graph_id, next_graph_id;

    // decode bookkeeping
    struct llt_batch *       batch;         // rows of the current decode call
    int64_t                  n_steps;
    int64_t                  n_decodes;
    int32_t                  next_pos;
    bool                     in_decode;
    bool                     cur_prompt;
    int32_t                  cur_pos0, cur_n_tokens;
    llama_token              last_sampled;
    bool                     have_sampled;
    int64_t                  t_prompt_ns, t_gen_ns;
    int64_t                  t_decode_end_ns; // end of the last decode call
    int32_t                  n_prompt, n_gen;
};

// ---- small containers --------------------------------------------------------------------

static inline uint32_t ptr_hash(const void * p) {
    uint64_t x = (uint64_t) (uintptr_t) p;
    x ^= x >> 33; x *= 0xff51afd7ed558ccdULL; x ^= x >> 33;
    return (uint32_t) x;
}

static bool ptr_table_init(struct ptr_table * t, uint32_t cap) {
    t->e = calloc(cap, sizeof(*t->e));
    t->cap = cap;
    t->n = 0;
    t->gen = 1;
    return t->e != NULL;
}

// forget every entry in O(1)
static void ptr_table_clear(struct ptr_table * t) {
    t->gen++;
    t->n = 0;
}

static int32_t ptr_table_get(const struct ptr_table * t, const void * key) {
    for (uint32_t i = ptr_hash(key) & (t->cap - 1);; i = (i + 1) & (t->cap - 1)) {
        const struct ptr_entry * e = &t->e[i];
        if (e->gen != t->gen) return -1;
        if (e->key == key) return e->val;
    }
}

static bool ptr_table_put(struct ptr_table * t, const void * key, int32_t val) {
    if ((t->n + 1) * 2 > t->cap) {
        // rehash the live entries into a table twice the size
        struct ptr_table nt;
        if (!ptr_table_init(&nt, t->cap * 2)) return false;
        for (uint32_t i = 0; i < t->cap; i++) {
            if (t->e[i].gen == t->gen) ptr_table_put(&nt, t->e[i].key, t->e[i].val);
        }
        free(t->e);
        *t = nt;
    }
    uint32_t i = ptr_hash(key) & (t->cap - 1);
    while (t->e[i].gen == t->gen && t->e[i].key != key) i = (i + 1) & (t->cap - 1);
    if (t->e[i].gen != t->gen) t->n++;
    t->e[i] = (struct ptr_entry) { key, val, t->gen };
    return true;
}

// counts name at recs[idx]: returns how many earlier nodes had it (the table holds < cap/2 names)
static int32_t name_table_count(struct name_table * t, const struct node_rec * recs, int32_t idx) {
    const char * name = recs[idx].name;
    const uint32_t h = llt_str_hash(name);
    uint32_t i = h & (t->cap - 1);
    for (;; i = (i + 1) & (t->cap - 1)) {
        struct name_entry * e = &t->e[i];
        if (e->gen != t->gen) {
            *e = (struct name_entry) { t->gen, h, idx, 1 };
            return 0;
        }
        if (e->hash == h && strcmp(recs[e->last].name, name) == 0) {
            e->last = idx;
            return e->count++;
        }
    }
}

// id of a string in tr->strings, added if new; -1 when out of memory
static int32_t intern(struct llt_tracer * tr, const char * s) {
    for (int32_t i = tr->n_strings - 1; i >= 0; i--) {
        if (strcmp(tr->strings[i], s) == 0) return i;
    }
    if (!llt_grow((void **) &tr->strings, &tr->cap_strings, tr->n_strings + 1, sizeof(char *))) return -1;
    char * copy = strdup(s);
    if (!copy) return -1;
    tr->strings[tr->n_strings] = copy;
    return tr->n_strings++;
}

// ---- failure: record it, stop tracing, let inference go on -------------------------------

static void tracer_fail(struct llt_tracer * tr, const char * what) {
    if (tr->error[0] == '\0') {
        snprintf(tr->error, sizeof(tr->error), "tracing stopped at step %lld: %s",
                 (long long) tr->n_steps, what);
    }
    tr->active = false;
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

// classifies a source: a node of this graph, a model weight, or an input
static void classify_src(struct llt_tracer * tr, const struct ggml_tensor * s, int32_t * kind, int32_t * ref) {
    int32_t idx = ptr_table_get(&tr->node_idx, s);
    if (idx >= 0) { *kind = SRC_NODE; *ref = idx; return; }
    int32_t wid = ptr_table_get(&tr->weight_ids, s);
    if (wid >= 0) { *kind = SRC_WEIGHT; *ref = wid; return; }
    if (s->buffer && ggml_backend_buffer_get_usage(s->buffer) == GGML_BACKEND_BUFFER_USAGE_WEIGHTS) {
        wid = llt_registry_find(tr->reg, s->name);
        if (wid >= 0) {
            if (!ptr_table_put(&tr->weight_ids, s, wid)) { tracer_fail(tr, "out of memory"); }
            if (tr->weight_buffer[wid] < 0) tr->weight_buffer[wid] = intern(tr, ggml_backend_buffer_name(s->buffer));
            *kind = SRC_WEIGHT; *ref = wid;
            return;
        }
    }
    *kind = SRC_INPUT;
    *ref = intern(tr, s->name[0] ? s->name : "(unnamed)");
}

static void finish_graph(struct llt_tracer * tr);
static void submit_batch(struct llt_tracer * tr);
static struct llt_batch * cur_batch(struct llt_tracer * tr);

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
              resize((void **) &tr->uses, cap, sizeof(int32_t)) && resize((void **) &tr->map.node, cap, sizeof(int32_t)) &&
              resize((void **) &tr->map.layer, cap, sizeof(int16_t)) && resize((void **) &tr->map.fused, cap, 1);
    if (ok && tr->values) {
        ok = resize((void **) &tr->node_stats, cap, sizeof(struct node_stat)) &&
             resize((void **) &tr->scan_at, cap, sizeof(int32_t)) && resize((void **) &tr->scan_first, cap, sizeof(int32_t));
    }
    if (!ok) {
        tracer_fail(tr, "out of memory");
        return false;
    }
    // new slots match nothing
    memset(tr->seen_ptr + tr->cap_nodes, 0, (size_t) (cap - tr->cap_nodes) * sizeof(*tr->seen_ptr));
    tr->cap_nodes = cap;
    return true;
}

// the slow path: a node that differs from the previous computation's at its position
static void describe_node(struct llt_tracer * tr, struct ggml_tensor * t, int32_t idx) {
    if (tr->same_so_far) {
        // the first difference: the index map must hold exactly this computation's nodes
        tr->same_so_far = false;
        ptr_table_clear(&tr->node_idx);
        tr->names.gen++;
        for (int32_t i = 0; i < idx; i++) {
            if (!ptr_table_put(&tr->node_idx, tr->seen_ptr[i], i)) { tracer_fail(tr, "out of memory"); return; }
            name_table_count(&tr->names, tr->recs, i);
        }
    }
    if ((uint32_t) idx * 2 + 2 > tr->names.cap) {
        // more nodes than the name table was made for: tracing stops rather than loop
        tracer_fail(tr, "graph too large");
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
                (strncmp(t->name, "l_out-", 6) == 0 ? NODE_LOUT : 0);
    r->occ    = name_table_count(&tr->names, tr->recs, idx);
    r->buffer = buffer_id(tr, t);
    int32_t inherited = -1;
    for (int i = 0; i < GGML_MAX_SRC; i++) {
        const struct ggml_tensor * s = t->src[i];
        if (!s) continue;
        r->n_src = i + 1;
        classify_src(tr, s, &r->src_kind[i], &r->src_ref[i]);
        r->src_bytes[i] = ggml_nbytes(s);
        int32_t l = r->src_kind[i] == SRC_NODE   ? tr->recs[r->src_ref[i]].layer
                  : r->src_kind[i] == SRC_WEIGHT ? llt_registry_get(tr->reg, r->src_ref[i])->layer : -1;
        if (l > inherited) inherited = l;
    }
    r->layer = llt_layer_from_name(t->name);
    if (r->layer < 0 && (t->name[0] == '\0' || strncmp(t->name, "node_", 5) == 0)) {
        // auto-named nodes (FLASH_ATTN_EXT, GET_ROWS on out_ids) belong to the layer being
        // built: the later of their sources' layer and the previous node's
        int32_t prev = idx > 0 ? tr->recs[idx - 1].layer : -1;
        r->layer = inherited > prev ? inherited : prev;
    }
    if (tr->values) r->flags |= llt_values_node_flags(tr->values, r->name, t->op, r->layer, (r->flags & NODE_NOOP) != 0);
    if (!ptr_table_put(&tr->node_idx, t, idx)) tracer_fail(tr, "out of memory");
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
    if (tr->stamped) return false;
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

// Records a node in the ask call; returns true if it should be observed (computed alone,
// then posted). The hot path: one struct compare per node while the graph repeats.
static bool record_node(struct llt_tracer * tr, struct ggml_tensor * t) {
    if (tr->n_nodes > 0 && t == tr->seen_ptr[0]) {
        // the first node again: a new graph computation began (next ubatch, or a decode made
        // without llt_decode, whose rows are written right away)
        finish_graph(tr);
        if (!tr->in_decode) submit_batch(tr);
        if (!tr->active) return false;
    }
    if (tr->n_nodes == 0) tr->compute_begin_ns = tr->last_ask_ns = llt_now_ns() - tr->t0_ns;
    const int32_t idx = tr->n_nodes;
    if (idx >= tr->cap_nodes && !reserve_nodes(tr, idx + 1)) return false;
    const bool same = tr->same_so_far && idx < tr->n_prev && tr->seen_ptr[idx] == t &&
                      memcmp(&tr->seen[idx], t, sizeof(*t)) == 0;
    if (!same) {
        describe_node(tr, t, idx);
        if (!tr->active) return false;
    }
    tr->n_nodes++;
    if (tr->params.level == LLT_LEVEL_GRAPH && !tr->values) return false; // records only
    if (tr->stamped) {
        // the live tensors, not the records: this runs for every node, and they are in cache
        tr->bits[idx] = idx > 0 && t->op == GGML_OP_MUL && tr->seen_ptr[idx - 1]->op == GGML_OP_RMS_NORM &&
                        fuses_norm(t, tr->seen_ptr[idx - 1]) ? BIT_FUSES_NORM : 0;
        // the computation begins after the last ask: the graph's last node, as before
        if (!same || idx + 1 >= tr->n_prev) tr->last_ask_ns = llt_now_ns() - tr->t0_ns;
        if (!tr->values) return false; // timed by stamps, nothing to observe
    }
    tr->times[idx] = (struct node_span) { 0, 0 };
    if (tr->node_stats) tr->node_stats[idx].has = false;
    if (!same && tr->n_plan > 0 && !tr->off_plan && tr->node_stats) {
        // the graph changed under the plan: this node reads what the plan left pending
        tr->off_plan = true;
        return true;
    }
    return wants(tr, &tr->recs[idx], idx);
}

static bool overlaps(const struct ggml_tensor * a, const struct ggml_tensor * b) {
    const char * pa = a->data, * pb = b->data;
    return a->buffer == b->buffer && pa && pb && pa < pb + ggml_nbytes(b) && pb < pa + ggml_nbytes(a);
}

// reads the statistics of node i, whose output is intact now
static int scan_node(struct llt_tracer * tr, int32_t i, int32_t * nan_at) {
    struct node_stat * ns = &tr->node_stats[i];
    int rc = llt_values_stats_of(tr->values, tr->seen_ptr[i], &ns->st);
    ns->has = rc == LLT_OK;
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

// Plans the reads for the graph just computed (tr->seen holds its tensors): each node is read
// at the earliest point its output is still intact and others are too. Interval stabbing: a
// node is readable from itself to the node before the first one that writes over it.
static void build_plan(struct llt_tracer * tr) {
    const int32_t n = tr->n_nodes;
    // the memory each node writes: [begin, end) in its buffer
    struct span { const void * buffer; const char * begin, * end; } * sp = malloc((size_t) n * sizeof(*sp) + 1);
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
        sp[i] = (struct span) { t->buffer, t->data, t->data ? (const char *) t->data + ggml_nbytes(t) : NULL };
    }
    int32_t pending = -1, min_end = INT32_MAX;
    for (int32_t i = 0; i < n; i++) {
        tr->scan_at[i] = tr->scan_first[i] = -1;
        if (scanned(&tr->recs[i]) && sp[i].begin) {
            // the CPU backend computes RMS_NORM and the MUL after it in one pass, without writing
            // the norm, when both are in one compute range: such a norm is read at its own post
            const bool fusable = tr->recs[i].op == GGML_OP_RMS_NORM && i + 1 < n && tr->recs[i + 1].op == GGML_OP_MUL &&
                                 ((tr->recs[i + 1].src_kind[0] == SRC_NODE && tr->recs[i + 1].src_ref[0] == i) ||
                                  (tr->recs[i + 1].src_kind[1] == SRC_NODE && tr->recs[i + 1].src_ref[1] == i));
            int32_t end = fusable ? i : n - 1;
            for (int32_t k = i + 1; k < n && end > i; k++) {
                if (sp[k].buffer == sp[i].buffer && sp[k].begin && sp[k].begin < sp[i].end && sp[i].begin < sp[k].end &&
                    !(tr->recs[k].flags & NODE_NOOP)) {
                    end = k - 1;
                    break;
                }
            }
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
    free(sp);
    tr->n_plan = n;
}

// the post call of an observed node: its output is valid now
static bool observe(struct llt_tracer * tr, struct ggml_tensor * t) {
    const int32_t idx = tr->n_nodes - 1;
    const int64_t now = llt_now_ns() - tr->t0_ns;
    tr->times[idx].end_ns = now;
    tr->compute_end_ns = now;
    tr->n_observed++;
    if (!tr->values) return true;
    const struct node_rec * r = &tr->recs[idx];
    struct llt_values * v = tr->values;
    int rc = LLT_OK;
    if (llt_values_stats(v)) {
        int32_t nan_at = -1;
        rc = scan(tr, idx, &nan_at);
        if (nan_at >= 0) {
            const struct node_rec * nr = &tr->recs[nan_at];
            llt_values_nan(v, tr->seen_ptr[nan_at], nr, llt_node_op_name(nr), tr->n_steps, &tr->node_stats[nan_at].st);
            return false; // the rest of the graph is not computed; the report ends the run
        }
    }
    if (rc == LLT_OK && (r->flags & NODE_DUMP) && llt_values_step_wanted(v, tr->n_steps)) {
        rc = llt_values_dump(v, t, r, idx, tr->n_steps, tr->cur_pos0, tr->cur_n_tokens, llt_node_op_name(r));
    }
    if (rc == LLT_OK && (r->flags & NODE_REF)) {
        struct llt_batch * b = cur_batch(tr);
        bool found = false;
        if (!b || !llt_grow((void **) &b->diffs, &b->cap_diffs, b->n_diffs + 1, sizeof(struct diff_rows))) {
            rc = llt_set_error(LLT_ENOMEM, "out of memory");
        } else {
            rc = llt_values_compare(v, t, r, idx, tr->n_steps, &b->diffs[b->n_diffs], &found);
            if (rc == LLT_OK && found) b->n_diffs++;
        }
    }
    if (rc != LLT_OK) tracer_fail(tr, llt_last_error());
    return true;
}

static bool eval_cb(struct ggml_tensor * t, bool ask, void * user_data) {
    struct llt_tracer * tr = user_data;
    if (ask) {
        tr->chain_need = tr->chain_cb ? tr->chain_cb(t, true, tr->chain_ud) : false;
        tr->self_need = tr->active && record_node(tr, t);
        const bool need = tr->self_need || tr->chain_need;
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
    bool go_on = true;
    if (tr->self_need && tr->active) go_on = observe(tr, t);
    // a false answer to a post call stops the computation: the chained callback may ask for it
    if (tr->chain_need && !tr->chain_cb(t, false, tr->chain_ud)) go_on = false;
    return go_on;
}

// the CPU backend computed a node (on the thread that called llama_decode)
static bool abort_cb(void * user_data) {
    struct llt_tracer * tr = user_data;
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

// ---- end of a graph computation ----------------------------------------------------------

// the batch of the current decode call, made on first use; NULL (tracing stopped) when out of memory
static struct llt_batch * cur_batch(struct llt_tracer * tr) {
    if (!tr->batch && !(tr->batch = calloc(1, sizeof(struct llt_batch)))) tracer_fail(tr, "out of memory");
    return tr->batch;
}

// a new graph: cached for matching, and queued to be written with the current batch
static struct graph * new_graph(struct llt_tracer * tr) {
    const size_t size = (size_t) tr->n_nodes * sizeof(struct node_rec);
    struct llt_batch * b = cur_batch(tr);
    if (!b || !llt_grow((void **) &b->graphs, &b->cap_graphs, b->n_graphs + 1, sizeof(struct graph_rows))) return NULL;
    struct graph_rows * gr = &b->graphs[b->n_graphs];
    gr->recs = malloc(size);
    gr->strings = malloc(((size_t) tr->n_strings + 1) * sizeof(char *));
    if (!gr->recs || !gr->strings) {
        free(gr->recs);
        free(gr->strings);
        return NULL;
    }
    memcpy(gr->recs, tr->recs, size);
    memcpy(gr->strings, tr->strings, (size_t) tr->n_strings * sizeof(char *));
    gr->n_strings = tr->n_strings;
    gr->string_data = NULL;
    gr->id = tr->next_graph_id++;
    gr->n_nodes = tr->n_nodes;
    b->n_graphs++;

    // when the cache is full, the least recently used graph gives up its slot (it stays in the trace)
    struct graph * g = NULL;
    if (tr->n_graphs_cached < MAX_CACHED_GRAPHS) {
        g = &tr->graphs[tr->n_graphs_cached++];
    } else {
        g = &tr->graphs[0];
        for (int32_t i = 1; i < MAX_CACHED_GRAPHS; i++) {
            if (tr->graphs[i].last_used < g->last_used) g = &tr->graphs[i];
        }
        free(g->recs);
    }
    *g = (struct graph) { .id = gr->id, .n_nodes = tr->n_nodes, .recs = malloc(size) };
    if (!g->recs) return NULL;
    memcpy(g->recs, tr->recs, size);
    int32_t nw = llt_registry_count(tr->reg);
    char * read = calloc((size_t) nw + 1, 1);
    if (!read) return NULL;
    for (int32_t i = 0; i < tr->n_nodes; i++) {
        for (int k = 0; k < tr->recs[i].n_src; k++) {
            if (tr->recs[i].src_kind[k] == SRC_WEIGHT && !read[tr->recs[i].src_ref[k]]) {
                read[tr->recs[i].src_ref[k]] = 1;
                g->n_weights_read++;
            }
        }
    }
    free(read);
    return g;
}

// the graph in tr->recs: the previous one, a cached one, or a new one
static struct graph * match_graph(struct llt_tracer * tr) {
    if (tr->same_so_far && tr->n_nodes == tr->n_prev && tr->prev_graph) return tr->prev_graph;
    const size_t size = (size_t) tr->n_nodes * sizeof(struct node_rec);
    for (int32_t i = 0; i < tr->n_graphs_cached; i++) {
        struct graph * g = &tr->graphs[i];
        if (g->recs && g->n_nodes == tr->n_nodes && memcmp(g->recs, tr->recs, size) == 0) return g;
    }
    return new_graph(tr);
}

// node times are recorded at levels timing and profile
static bool timed(const struct llt_tracer * tr) {
    return tr->params.level == LLT_LEVEL_TIMING || tr->params.level == LLT_LEVEL_PROFILE;
}

// Works out which node each stamp of the computation ends: the nodes the CPU computes, in
// order. False if the number of stamps is not theirs.
static bool build_stamp_map(struct llt_tracer * tr) {
    const int32_t n = tr->n_nodes;
    memset(tr->uses, 0, (size_t) n * sizeof(int32_t));
    for (int32_t i = 0; i < n; i++) {
        for (int k = 0; k < tr->recs[i].n_src; k++) {
            if (tr->recs[i].src_kind[k] == SRC_NODE) tr->uses[tr->recs[i].src_ref[k]]++;
        }
    }
    struct stamp_map * m = &tr->map;
    m->n = 0;
    for (int32_t i = 0; i < n; i++) {
        const struct node_rec * r = &tr->recs[i];
        if ((r->flags & NODE_NOOP) || !(tr->seen[i].flags & GGML_TENSOR_FLAG_COMPUTE)) continue;
        if (m->n == tr->cap_nodes) break;
        m->node[m->n] = i;
        m->layer[m->n] = (r->flags & NODE_LOUT) || r->layer < 0 ? -1 : (int16_t) r->layer;
        // a MUL fused into this norm has no stamp of its own
        m->fused[m->n] = tr->cpu_fusion && i + 1 < n && (tr->bits[i + 1] & BIT_FUSES_NORM) && !(tr->bits[i] & BIT_OBSERVED) &&
                         tr->uses[i] == 1 && (tr->seen[i + 1].flags & GGML_TENSOR_FLAG_COMPUTE);
        m->n++;
        if (m->fused[m->n - 1]) i++;
    }
    return m->n == tr->n_stamps;
}

// The node times from the stamps (into cleared times): a node runs from the previous node's
// stamp to its own. False if the stamps do not match the nodes (then no node has a time).
static bool times_from_stamps(struct llt_tracer * tr) {
    struct stamp_map * m = &tr->map;
    // the map holds while the graph does, unless nodes answered true cut it into ranges
    const bool same = tr->same_so_far && tr->n_nodes == tr->n_prev && m->n >= 0 && tr->n_asked_true == 0;
    if (same ? tr->n_stamps != m->n : !build_stamp_map(tr)) {
        m->n = -1;
        return false;
    }
    if (tr->n_asked_true > 0) m->n = -1; // made for this computation's ranges only: not kept
    const int32_t sample = tr->params.level == LLT_LEVEL_PROFILE ? (int32_t) (tr->n_steps % tr->n_layer) : -2;
    int64_t prev = tr->first_begin_ns;
    for (int32_t s = 0; s < tr->n_stamps; s++) {
        const int32_t i = tr->map.node[s];
        // each stamp comes after its node was asked about
        if (tr->stamps[s].asked <= i) {
            memset(tr->times, 0, (size_t) tr->n_nodes * sizeof(struct node_span));
            return false;
        }
        const int64_t end = tr->stamps[s].ns;
        // level profile keeps the l_out nodes, the nodes outside the layers and one layer's
        if (sample == -2 || tr->map.layer[s] < 0 || tr->map.layer[s] == sample) {
            tr->times[i] = (struct node_span) { prev, end };
            if (tr->map.fused[s]) tr->times[i + 1] = (struct node_span) { end, end }; // no time of its own
        }
        prev = end;
    }
    tr->n_observed = tr->n_stamps;
    tr->compute_end_ns = prev;
    return true;
}

// the timed nodes of the computation into the step's rows, relative to its compute_begin_ns
static bool step_times(const struct llt_tracer * tr, struct step_rows * ps) {
    int32_t n = 0;
    int64_t last = 0;
    for (int32_t i = 0; i < tr->n_nodes; i++) {
        if (tr->times[i].end_ns == 0) continue;
        n++;
        if (tr->times[i].end_ns > last) last = tr->times[i].end_ns;
    }
    int32_t shift = 0;
    while (((last - tr->compute_begin_ns) >> shift) > (int64_t) UINT32_MAX) shift++;
    if (n == 0 || !(ps->times = malloc((size_t) n * sizeof(struct node_time)))) return n == 0;
    ps->n_times = n;
    ps->time_shift = shift;
    for (int32_t i = 0, k = 0; i < tr->n_nodes; i++) {
        const struct node_span * t = &tr->times[i];
        if (t->end_ns == 0) continue;
        const int64_t b = t->begin_ns > tr->compute_begin_ns ? t->begin_ns - tr->compute_begin_ns : 0;
        ps->times[k++] = (struct node_time) { i, (uint32_t) (b >> shift), (uint32_t) ((t->end_ns - tr->compute_begin_ns) >> shift) };
    }
    return true;
}

static void finish_graph(struct llt_tracer * tr) {
    if (!tr->active || tr->n_nodes == 0) return;
    if (tr->stamped) {
        // times only from stamps that match; a computation the application stopped has none
        memset(tr->times, 0, (size_t) tr->n_nodes * sizeof(struct node_span));
        tr->n_observed = 0;
        if (!tr->aborted && !times_from_stamps(tr)) {
            tr->stamped = false; // from the next computation on, timed nodes are observed
            tr->observed_from = tr->n_steps + 1;
        }
        tr->n_stamps = 0;
        tr->n_asked_true = 0;
        tr->aborted = false;
    }
    struct graph * g = match_graph(tr);
    struct llt_batch * b = cur_batch(tr);
    if (!g || !b || !llt_grow((void **) &b->steps, &b->cap_steps, b->n_steps + 1, sizeof(struct step_rows))) {
        tracer_fail(tr, "out of memory");
        return;
    }
    struct step_rows * ps = &b->steps[b->n_steps++];
    *ps = (struct step_rows) {
        .step = tr->n_steps, .decode = tr->n_decodes, .graph_id = g->id,
        .pos0 = tr->cur_pos0, .n_tokens = tr->cur_n_tokens, .is_prompt = tr->cur_prompt,
        .compute_begin_ns = tr->compute_begin_ns,
        .compute_end_ns = timed(tr) && tr->n_observed > 0 ? tr->compute_end_ns : 0,
    };
    if (timed(tr) && tr->n_observed > 0) { // a profile step that sampled nothing has no times
        if (!step_times(tr, ps)) { tracer_fail(tr, "out of memory"); return; }
    }
    for (int32_t i = 0; tr->node_stats && i < tr->n_nodes; i++) {
        if (!tr->node_stats[i].has) continue;
        if (!llt_grow((void **) &b->stats, &b->cap_stats, b->n_stats + 1, sizeof(struct stat_rows))) {
            tracer_fail(tr, "out of memory");
            return;
        }
        b->stats[b->n_stats++] = (struct stat_rows) { tr->n_steps, i, tr->node_stats[i].st };
    }
    // a new plan when the graph changed (or there was none)
    if (tr->node_stats && (tr->off_plan || tr->n_plan != tr->n_nodes || !tr->same_so_far)) build_plan(tr);
    tr->off_plan = false;
    tr->scan_next = 0;
    tr->n_observed = 0;
    g->last_used = tr->n_steps;
    tr->prev_graph = g;
    tr->n_steps++;
    tr->n_prev = tr->n_nodes;
    tr->n_nodes = 0;
    tr->same_so_far = true;
}

// hands the current batch to the writer; stops tracing if the writer failed
static void submit_batch(struct llt_tracer * tr) {
    const char * werr = llt_writer_error(tr->writer);
    if (werr) tracer_fail(tr, werr);
    if (tr->batch && tr->active) {
        llt_writer_submit(tr->writer, tr->batch);
        tr->batch = NULL;
    }
}

static void push_token(struct llt_tracer * tr, llama_token tok, int32_t pos, int64_t step, bool is_prompt) {
    struct llt_batch * b = cur_batch(tr);
    if (!b || !llt_grow((void **) &b->tokens, &b->cap_tokens, b->n_tokens + 1, sizeof(struct token_rows))) {
        tracer_fail(tr, "out of memory");
        return;
    }
    struct token_rows * t = &b->tokens[b->n_tokens++];
    const int32_t seq = tr->n_prompt + tr->n_gen;
    *t = (struct token_rows) { .seq = seq, .step = step, .pos = pos, .token = tok, .is_prompt = is_prompt };
    int n = llama_token_to_piece(tr->vocab, tok, t->piece, (int32_t) sizeof(t->piece) - 1, 0, true);
    t->piece[n > 0 ? n : 0] = '\0';
    if (is_prompt) tr->n_prompt++; else tr->n_gen++;
    if (tr->values && llt_grow((void **) &tr->all_tokens, &tr->cap_all_tokens, seq + 1, sizeof(llama_token))) {
        tr->all_tokens[seq] = tok;
    }
}

// ---- public API --------------------------------------------------------------------------

struct llt_tracer_params llt_tracer_default_params(void) {
    return (struct llt_tracer_params) { .level = LLT_LEVEL_GRAPH, .values = llt_values_default_params() };
}

static char * dup_or_null(const char * s) { return s ? strdup(s) : NULL; }

int llt_tracer_init(struct llt_store * st, struct llt_tracer_params params, struct llt_tracer ** out) {
    *out = NULL;
    if ((unsigned) params.level >= LLT_LEVEL_COUNT) return llt_set_error(LLT_EINVAL, "unknown trace level %d", params.level);
    if (!params.model_path) return llt_set_error(LLT_EINVAL, "the tracer needs the model path");
    struct llt_tracer * tr = calloc(1, sizeof(*tr));
    if (!tr) return llt_set_error(LLT_ENOMEM, "out of memory");
    tr->st = st;
    tr->params = params;
    tr->model_path = dup_or_null(params.model_path);
    tr->prompt = dup_or_null(params.prompt);
    tr->params_json = dup_or_null(params.params_json);
    tr->params.model_path = tr->model_path;
    tr->params.prompt = tr->prompt;
    tr->params.params_json = tr->params_json;
    tr->last_buffer_id = -1;
    tr->observed_from = -1;
    tr->map.n = -1;
    int rc = llt_registry_load(params.model_path, &tr->reg);
    if (rc == LLT_OK && (!ptr_table_init(&tr->node_idx, 2048) || !ptr_table_init(&tr->weight_ids, 1024))) {
        rc = llt_set_error(LLT_ENOMEM, "out of memory");
    }
    // GGML_DEFAULT_GRAPH_SIZE nodes at most per graph in llama.cpp; names need half the table free
    tr->names.cap = 1u << 15;
    tr->names.gen = 1;
    if (rc == LLT_OK && !(tr->names.e = calloc(tr->names.cap, sizeof(struct name_entry)))) {
        rc = llt_set_error(LLT_ENOMEM, "out of memory");
    }
    if (rc == LLT_OK) {
        int nw = llt_registry_count(tr->reg);
        tr->weight_buffer = malloc(((size_t) nw + 1) * sizeof(int32_t));
        if (!tr->weight_buffer) rc = llt_set_error(LLT_ENOMEM, "out of memory");
        for (int i = 0; rc == LLT_OK && i < nw; i++) tr->weight_buffer[i] = -1;
    }
    if (rc != LLT_OK) {
        llt_tracer_free(tr);
        return rc;
    }
    *out = tr;
    return LLT_OK;
}

void llt_tracer_free(struct llt_tracer * tr) {
    if (!tr) return;
    llt_writer_stop(tr->writer);
    llt_batch_free(tr->batch);
    for (int32_t i = 0; i < tr->n_graphs_cached; i++) free(tr->graphs[i].recs);
    for (int32_t i = 0; i < tr->n_strings; i++) free(tr->strings[i]);
    free(tr->strings);
    free(tr->recs);
    free(tr->times);
    free(tr->stamps);
    free(tr->bits);
    free(tr->uses);
    free(tr->map.node);
    free(tr->map.layer);
    free(tr->map.fused);
    free(tr->seen);
    free(tr->seen_ptr);
    free(tr->node_idx.e);
    free(tr->weight_ids.e);
    free(tr->names.e);
    free(tr->node_stats);
    free(tr->scan_at);
    free(tr->scan_first);
    free(tr->all_tokens);
    llt_values_free(tr->values);
    free(tr->weight_buffer);
    free(tr->weight_names);
    llt_registry_free(tr->reg);
    free(tr->model_path);
    free(tr->prompt);
    free(tr->params_json);
    free(tr);
}

void llt_tracer_attach(struct llt_tracer * tr, struct llama_context_params * cparams) {
    // attention probabilities exist as a tensor only without flash attention
    if (tr->params.values.checkpoints) cparams->flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
    tr->chain_cb = cparams->cb_eval;
    tr->chain_ud = cparams->cb_eval_user_data;
    cparams->cb_eval = eval_cb;
    cparams->cb_eval_user_data = tr;
    if (timed(tr)) {
        const char * nofuse = getenv("GGML_CPU_DISABLE_FUSION"); // read the way ggml-cpu reads it
        tr->cpu_fusion = !(nofuse && atoi(nofuse) == 1);
        tr->stamped = true;
        tr->chain_abort = cparams->abort_callback;
        tr->chain_abort_ud = cparams->abort_callback_data;
        cparams->abort_callback = abort_cb;
        cparams->abort_callback_data = tr;
    }
}

static int insert_run(struct llt_tracer * tr, const struct llama_model * model) {
    char started[32], arch[64] = "", name[256] = "", desc[256] = "";
    llt_utc_now(started, sizeof(started));
    llama_model_meta_val_str(model, "general.architecture", arch, sizeof(arch));
    llama_model_meta_val_str(model, "general.name", name, sizeof(name));
    llama_model_desc(model, desc, sizeof(desc));
    sqlite3_stmt * s = llt_store_prepare(tr->st,
        "INSERT INTO runs(started_at, status, level, lltrace_version, llama_tag, system_info,"
        " model_path, model_name, model_arch, model_desc, n_layer, n_embd, n_head, n_head_kv,"
        " n_vocab, n_ctx_train, file_type, model_bytes, model_params, params, prompt)"
        " VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
    if (!s) return LLT_EIO;
    int i = 1;
    sqlite3_bind_text(s, i++, started, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, i++, llt_run_status_name(LLT_RUN_RUNNING), -1, SQLITE_STATIC);
    sqlite3_bind_text(s, i++, llt_level_name(tr->params.level), -1, SQLITE_STATIC);
    sqlite3_bind_text(s, i++, llt_version(), -1, SQLITE_STATIC);
    sqlite3_bind_text(s, i++, llt_llama_tag(), -1, SQLITE_STATIC);
    sqlite3_bind_text(s, i++, llama_print_system_info(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, i++, tr->model_path, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, i++, name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, i++, arch, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, i++, desc, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(s, i++, llama_model_n_layer(model));
    sqlite3_bind_int(s, i++, llama_model_n_embd(model));
    sqlite3_bind_int(s, i++, llama_model_n_head(model));
    sqlite3_bind_int(s, i++, llama_model_n_head_kv(model));
    sqlite3_bind_int(s, i++, llama_vocab_n_tokens(llama_model_get_vocab(model)));
    sqlite3_bind_int(s, i++, llama_model_n_ctx_train(model));
    sqlite3_bind_text(s, i++, llt_ftype_name(llama_model_ftype(model)), -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, i++, (int64_t) llt_registry_file_size(tr->reg));
    sqlite3_bind_int64(s, i++, (int64_t) llama_model_n_params(model));
    sqlite3_bind_text(s, i++, tr->params_json, -1, SQLITE_TRANSIENT); // sqlite binds a NULL string as NULL
    sqlite3_bind_text(s, i++, tr->prompt, -1, SQLITE_TRANSIENT);
    int rc = llt_store_step_done(tr->st, s);
    sqlite3_finalize(s);
    if (rc != LLT_OK) return rc;
    tr->run_id = sqlite3_last_insert_rowid(llt_store_db(tr->st));

    s = llt_store_prepare(tr->st,
        "INSERT INTO weights(run_id, id, name, type, n_dims, ne0, ne1, ne2, ne3, bytes, bpw, layer, file_offset)"
        " VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?)");
    if (!s) return LLT_EIO;
    for (int w = 0; w < llt_registry_count(tr->reg) && rc == LLT_OK; w++) {
        const struct llt_weight * wt = llt_registry_get(tr->reg, w);
        sqlite3_bind_int64(s, 1, tr->run_id);
        sqlite3_bind_int(s, 2, w);
        sqlite3_bind_text(s, 3, wt->name, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 4, ggml_type_name((enum ggml_type) wt->type), -1, SQLITE_STATIC);
        sqlite3_bind_int(s, 5, wt->n_dims);
        for (int d = 0; d < 4; d++) sqlite3_bind_int64(s, 6 + d, wt->ne[d]);
        sqlite3_bind_int64(s, 10, (int64_t) wt->bytes);
        sqlite3_bind_double(s, 11, wt->bpw);
        sqlite3_bind_int(s, 12, wt->layer);
        sqlite3_bind_int64(s, 13, (int64_t) wt->file_offset);
        rc = llt_store_step_done(tr->st, s);
    }
    sqlite3_finalize(s);
    return rc;
}

int llt_tracer_begin(struct llt_tracer * tr, const struct llama_model * model, struct llama_context * ctx) {
    tr->vocab = llama_model_get_vocab(model);
    tr->t0_ns = llt_now_ns();
    int rc = llt_store_begin(tr->st);
    if (rc == LLT_OK) rc = insert_run(tr, model);
    if (rc == LLT_OK) rc = llt_store_commit(tr->st);
    if (rc != LLT_OK) {
        llt_store_rollback(tr->st);
        return rc;
    }
    // graph ids are given here, not by the database, so capture never waits for the writer;
    // each run has its own range, so runs traced into one file at once never collide
    tr->next_graph_id = tr->run_id * GRAPH_IDS_PER_RUN + 1;
    tr->first_graph_id = tr->next_graph_id;
    const int32_t nw = llt_registry_count(tr->reg);
    tr->weight_names = malloc(((size_t) nw + 1) * sizeof(char *));
    if (!tr->weight_names) return llt_set_error(LLT_ENOMEM, "out of memory");
    for (int32_t i = 0; i < nw; i++) tr->weight_names[i] = llt_registry_get(tr->reg, i)->name;
    rc = llt_writer_start(tr->st, tr->run_id, tr->weight_names, nw, &tr->writer);
    if (rc != LLT_OK) return rc;
    tr->n_layer = llama_model_n_layer(model) > 0 ? llama_model_n_layer(model) : 1;
    const struct llt_values_params * vp = &tr->params.values;
    if (tr->params.level == LLT_LEVEL_VALUES || vp->dump || vp->checkpoints || vp->reference || vp->break_on_nan) {
        rc = llt_values_init(vp, tr->params.level, llt_store_path(tr->st), tr->run_id,
                             llama_model_n_embd(model) / llama_model_n_head(model), llama_model_n_head_kv(model), &tr->values);
        if (rc != LLT_OK) return rc;
    }
    tr->active = true;
    return LLT_OK;
}

int32_t llt_decode(struct llt_tracer * tr, struct llama_context * ctx, struct llama_batch batch) {
    if (!tr->active) {
        return llama_decode(ctx, batch);
    }
    submit_batch(tr); // the previous decode's, if no token was chosen from it
    // a single token that was just sampled is generation; anything else is prompt
    const bool is_gen = tr->have_sampled && batch.n_tokens == 1 && batch.token &&
                        batch.token[0] == tr->last_sampled;
    tr->have_sampled = false;
    tr->cur_prompt = !is_gen;
    tr->cur_pos0 = batch.pos ? batch.pos[0] : tr->next_pos;
    tr->cur_n_tokens = batch.n_tokens;
    const int64_t first_step = tr->n_steps;
    if (!is_gen && batch.token) {
        for (int32_t i = 0; i < batch.n_tokens; i++) {
            push_token(tr, batch.token[i], batch.pos ? batch.pos[i] : tr->cur_pos0 + i, first_step, true);
        }
    }

    const int64_t t_begin = llt_now_ns() - tr->t0_ns;
    tr->in_decode = true;
    int32_t ret = llama_decode(ctx, batch);
    tr->in_decode = false;
    finish_graph(tr);
    const int64_t t_end = llt_now_ns() - tr->t0_ns;
    if (is_gen) tr->t_gen_ns += t_end - t_begin; else tr->t_prompt_ns += t_end - t_begin;
    tr->next_pos = tr->cur_pos0 + batch.n_tokens;
    tr->n_decodes++;
    if (!tr->active) return ret;

    // the decode's wall time belongs to all of its steps (one per ubatch)
    for (int32_t i = 0; tr->batch && i < tr->batch->n_steps; i++) {
        tr->batch->steps[i].t_begin_ns = t_begin;
        tr->batch->steps[i].t_end_ns = t_end;
    }
    // handed over when the token is chosen (its sampling time goes with the step), or with
    // the next decode call
    tr->t_decode_end_ns = t_end;
    return ret;
}

void llt_tracer_sampled(struct llt_tracer * tr, llama_token token) {
    if (!tr->active) return;
    tr->last_sampled = token;
    tr->have_sampled = true;
    struct llt_batch * b = tr->batch;
    if (b && b->n_steps > 0) b->steps[b->n_steps - 1].t_sample_ns = llt_now_ns() - tr->t0_ns - tr->t_decode_end_ns;
    push_token(tr, token, tr->next_pos, tr->n_steps - 1, false);
    submit_batch(tr);
}

void llt_tracer_parity(struct llt_tracer * tr, const struct llt_parity_step * step) {
    if (!tr->active) return;
    struct llt_batch * b = cur_batch(tr);
    if (!b || !llt_grow((void **) &b->parity, &b->cap_parity, b->n_parity + 1, sizeof(*step))) {
        tracer_fail(tr, "out of memory");
        return;
    }
    b->parity[b->n_parity++] = *step;
}

int llt_tracer_sync(struct llt_tracer * tr) {
    if (!tr->writer) return LLT_OK;
    submit_batch(tr);
    return llt_writer_sync(tr->writer);
}

int llt_tracer_end(struct llt_tracer * tr, enum llt_run_status status, const char * output) {
    if (tr->run_id == 0) return llt_set_error(LLT_EINVAL, "the run was never begun");
    if (tr->active) {
        finish_graph(tr);
        submit_batch(tr);
    }
    tr->active = false;
    if (tr->writer && llt_writer_sync(tr->writer) != LLT_OK) tracer_fail(tr, llt_last_error());
    llt_writer_stop(tr->writer);
    tr->writer = NULL;

    const char * dump_path = NULL;
    if (tr->values && llt_values_dump_path(tr->values)) {
        char filters[512];
        const struct llt_values_params * vp = &tr->params.values;
        snprintf(filters, sizeof(filters), "layer=%d steps=%d-%d sources=%d checkpoints=%d type=%d",
                 vp->dump_layer, vp->dump_step_first, vp->dump_step_last, vp->dump_sources, vp->checkpoints, vp->dump_type);
        struct llt_dump_meta meta = { tr->run_id, tr->reg, tr->model_path, tr->prompt, filters, tr->params_json,
                                      tr->all_tokens, tr->n_prompt + tr->n_gen };
        if (llt_values_finish(tr->values, &meta) == LLT_OK) dump_path = llt_values_dump_path(tr->values);
        else tracer_fail(tr, llt_last_error());
    }
    char ended[32];
    llt_utc_now(ended, sizeof(ended));
    int rc = llt_store_begin(tr->st);
    sqlite3_stmt * s = rc == LLT_OK ? llt_store_prepare(tr->st,
        "UPDATE runs SET ended_at=?, status=?, error=?, output=?, n_prompt=?, n_gen=?,"
        " t_prompt_ns=?, t_gen_ns=?, dump_path=?, nan_report=?, t_tokenize_ns=? WHERE id=?") : NULL;
    if (s) {
        sqlite3_bind_text(s, 1, ended, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(s, 2, llt_run_status_name(tr->error[0] && status == LLT_RUN_OK ? LLT_RUN_ERROR : status), -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 3, tr->error[0] ? tr->error : NULL, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(s, 4, output, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int(s, 5, tr->n_prompt);
        sqlite3_bind_int(s, 6, tr->n_gen);
        sqlite3_bind_int64(s, 7, tr->t_prompt_ns);
        sqlite3_bind_int64(s, 8, tr->t_gen_ns);
        sqlite3_bind_text(s, 9, dump_path, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(s, 10, llt_tracer_nan_report(tr), -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(s, 11, tr->params.t_tokenize_ns);
        sqlite3_bind_int64(s, 12, tr->run_id);
        rc = llt_store_step_done(tr->st, s);
        sqlite3_finalize(s);
    } else {
        rc = LLT_EIO;
    }
    s = rc == LLT_OK ? llt_store_prepare(tr->st, "UPDATE weights SET buffer=? WHERE run_id=? AND id=?") : NULL;
    for (int w = 0; s && rc == LLT_OK && w < llt_registry_count(tr->reg); w++) {
        if (tr->weight_buffer[w] < 0) continue;
        sqlite3_bind_text(s, 1, tr->strings[tr->weight_buffer[w]], -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 2, tr->run_id);
        sqlite3_bind_int(s, 3, w);
        rc = llt_store_step_done(tr->st, s);
    }
    sqlite3_finalize(s);
    if (rc == LLT_OK) rc = llt_store_commit(tr->st);
    if (rc != LLT_OK) llt_store_rollback(tr->st);
    return rc;
}

int llt_tracer_run_id(const struct llt_tracer * tr) { return (int) tr->run_id; }

const char * llt_tracer_error(const struct llt_tracer * tr) {
    return tr->error[0] ? tr->error : NULL;
}

const char * llt_tracer_dump_path(const struct llt_tracer * tr) {
    return tr->values ? llt_values_dump_path(tr->values) : NULL;
}

bool llt_tracer_ref_summary(const struct llt_tracer * tr, struct llt_ref_summary * out) {
    return tr->values && llt_values_ref_summary(tr->values, out);
}

int llt_tracer_dump_unmatched(const struct llt_tracer * tr, char * buf, size_t size) {
    if (size > 0) buf[0] = '\0';
    return tr->values && size > 0 ? llt_values_unmatched(tr->values, buf, size) : 0;
}

const char * llt_tracer_nan_report(const struct llt_tracer * tr) {
    return tr->values ? llt_values_nan_report(tr->values) : NULL;
}

struct llt_tracer_stats llt_tracer_get_stats(const struct llt_tracer * tr) {
    // all derived: the last step's graph is the one finish_graph() matched last
    const struct graph * g = tr->prev_graph;
    return (struct llt_tracer_stats) {
        .n_steps = tr->n_steps,
        .n_nodes_last = g ? g->n_nodes : 0,
        .n_graphs = tr->next_graph_id - tr->first_graph_id,
        .n_weights = tr->reg ? llt_registry_count(tr->reg) : 0,
        .n_weights_read = g ? g->n_weights_read : 0,
        .n_dumped = tr->values ? llt_values_n_dumped(tr->values) : 0,
        .timing_observed_from = tr->observed_from,
    };
}
