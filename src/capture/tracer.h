// Capture: the eval callback that records every graph node llama.cpp computes. This header
// holds the tracer's state, shared by the files of src/capture; private to the library.
//
// The scheduler asks the callback about each node in order (ask=true); nodes answered false are
// computed together up to the next node answered true, which then gets a post call
// (ask=false) once it is computed. At level graph every node is recorded in the ask call and
// every answer is false, so the scheduler computes each split in one go, as without lltrace
// (but for an MoE layer's mixing weights, observed at every level to read the experts chosen:
// experts.c).
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
// Level values reads each node's statistics while its output is intact, by a plan made from the
// graph's previous computation (record.c, llt_capture_build_plan): on the CPU, at the stamp
// after the next node it computes, when that node does not write over it; otherwise at its own
// post call, a split of the graph. A norm that would need that split is derived from its input
// when the input is read (derive.c). The nodes of the plan's reads take the ask call's full path.
//
// Off the CPU (an RPC server, a GPU) there are no stamps. Each node records the device holding
// its output and its split (the scheduler computes a run of nodes on one device as one split,
// copying the inputs it needs from other devices; the copies, named "<backend>#<src>#<n>", are
// resolved to their sources). Timed levels then observe only each split's last node: its post
// call comes where the scheduler synchronises the device anyway, so a split costs one round
// trip (record.c, split_end); llt_tracer_params.time_nodes observes every node instead.
//
// The hot path is one struct compare per node: llama.cpp reuses its graph from step to step,
// and a node whose tensor is byte-identical to the one at the same position last time has the
// same record. At the end of a graph computation the records are matched against the graphs
// seen before, so a structure is stored once; each decode call's rows go to the writer thread
// (writer.c) in one batch.
//
// Files: record.c (the callbacks: each node as the scheduler asks about it, observed nodes'
// statistics, dumps and comparisons), derive.c (a norm's statistics from its input), experts.c (the experts MoE layers chose), tracer_iv.c
// (interventions: nodes changed in their post call; intervene.c does the changing), steps.c (the
// end of each graph computation: its graph structure, node times and rows), tracer.c (the
// public API: a run's life, decode calls, the tokens chosen).
#pragma once

#include "capture/values.h"

#include "ggml-backend.h"

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
    BIT_SPLIT_END  = 2, // observed as the last node of its split: the split's time, not the node's
    BIT_INTERVENE  = 4, // an intervention changes it in this step (tracer_iv.c)
};

// per node of the previous computation, who wants the ask call of that node when it comes
// again unchanged (record.c's fast path answers the others no, with nothing but the comparison)
enum ask_bit {
    ASK_TRACER = 1, // the tracer: a graph's first and last node, an MoE layer's routing
    ASK_VALUES = 2, // the values level: the nodes whose post call reads statistics (the scan
                    // plan), dumps or compares (set with the plan: llt_capture_build_plan)
    // a hook of another kind adds its bit here and sets it in llt_capture_plan_asks(), which
    // makes tr->fast_ptr from tr->asked
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
    char *                   name;
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
    int32_t                  off_plan_at;   // ... at this node
    // Statistics read at stamps (values level, on the CPU): the CPU backend calls the abort
    // callback after each node it computes, on its first thread, before its threads meet. The
    // computed node before that one is complete then (they met after it), and intact where the
    // node just computed does not write over it (the plan checks). Such a node needs no split.
    bool                     stamp_reads;   // the abort callback is installed for them
    bool                     stamps_checked; // a computation's stamps were counted against its computed nodes
    bool                     stamps_ok;     // ... and matched: a plan may read at stamps
    int32_t                  n_read_stamps; // stamps of this computation so far
    int32_t *                read_map;      // the plan's computed nodes in order: the node each stamp ends
    int32_t                  n_read_map;    // 0: the plan reads at no stamp
    uint8_t *                by_stamp;      // per node: read at the stamp after the next computed node
    // Norms derived from their inputs (derive.c), where reading them would split the graph:
    // only once norms read at post calls matched their derivation, and none failed to
    int32_t *                derive_of;     // per node of the plan: the norm derived when it is read, -1 none
    int32_t                  n_derive_ok;   // norms whose derivation matched their read
    bool                     derive_bad;    // one did not: no more derivations this run
    float *                  derive_buf;    // a derived norm's values
    size_t                   derive_cap;
    int64_t                  n_stats_read, n_stats_stamped, n_stats_derived; // over the run (llt_tracer_stats)
    int32_t                  n_layer;       // the profile level samples layer (step % n_layer)
    llama_token *            all_tokens;    // every token in and out, for the dump's metadata
    int32_t                  cap_all_tokens;
    int64_t                  run_id;
    bool                     ended;         // llt_tracer_end() was called
    char                     error[256];
    int64_t                  stopped_at;    // with error: the step tracing stopped at
    bool                     writer_failed; // error is the writer's: its last word replaces it

    // chained user callback
    ggml_backend_sched_eval_callback chain_cb;
    void *                   chain_ud;
    bool                     chain_need;    // the chained callback asked for the last node
    bool                     self_need;     // we asked for the last node
    // the node hook (the debugger): llt_tracer_set_node_hook
    llt_node_hook            hook;
    llt_node_hook_idle       hook_idle;     // NULL: the hook is never idle
    void *                   hook_ud;
    bool                     hook_need;     // the hook asked for the last node

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
    // The fast path of the ask call (record.c): a node unchanged since the previous computation
    // that nobody asked for is counted and answered no, with one pointer and one struct compare.
    // asked is planned when a graph is first seen and kept while it repeats (plan_asks in
    // record.c); fast_ptr is made from it and seen_ptr.
    uint8_t *                asked;         // per node of the previous computation: enum ask_bit
    int32_t                  n_fast;        // nodes of this computation that may take the fast path: 0, or n_prev
    const struct ggml_tensor ** fast_ptr;   // per node of the previous computation: its tensor, NULL when asked for
    int64_t                  compute_begin_ns, compute_end_ns;
    int32_t                  n_observed;    // post calls in the current computation
    struct ptr_table         node_idx;      // tensor -> idx in the current graph
    struct name_table        names;         // name -> count of nodes so far, for node_rec.occ
    struct ptr_table         weight_ids;    // weight tensor -> registry id (lives for the run)

    // strings: buffer names and input names; the strings never move once made
    char **                  strings;
    int32_t                  n_strings, cap_strings;
    int32_t *                string_index;  // open addressing by llt_str_hash: id + 1, 0 empty
    uint32_t                 cap_string_index; // a power of two, at least twice n_strings

    int32_t *                weight_buffer; // per registry id: buffer string id, -1 unseen
    ggml_backend_buffer_t    last_buffer;   // buffer_id()'s cache
    int32_t                  last_buffer_id;

    // distinct graphs
    struct graph             graphs[MAX_CACHED_GRAPHS];
    int32_t                  n_graphs_cached;
    int64_t                  first_graph_id, next_graph_id;

    // devices and splits (record.c): the device of the last buffer seen, and the splits timed
    // off the CPU in the current computation
    ggml_backend_buffer_t    last_dev_buffer;
    int32_t                  last_device_id;
    bool                     last_device_cpu;
    bool                     off_cpu;       // a node computed off the CPU (RPC, GPU) was seen
    struct split_time *      split_times;
    int32_t                  n_split_times, cap_split_times;
    int64_t                  split_begin_ns; // the current split's inputs began to be copied: the previous split's end
    int64_t                  split_ask_ns;   // the first ask of the current split: its computation is about to begin

    // decode bookkeeping
    struct llt_batch *       batch;         // rows of the current decode call
    int64_t                  n_steps;
    int64_t                  n_decodes;
    int32_t                  next_pos;
    bool                     in_decode;
    bool                     cur_prompt;
    int32_t                  cur_pos0, cur_n_tokens;
    int64_t                  cur_t_begin_ns;
    int64_t                  cur_seq_mask;  // the sequences the decode call took tokens of
    struct seq_state *       seqs;          // by sequence id
    int32_t                  cap_seqs;
    int32_t                  n_parity;      // parity records of the run (parity_top_k)
    int64_t                  t_prompt_ns, t_gen_ns;
    int64_t                  t_decode_end_ns; // end of the last decode call
    int32_t                  n_prompt, n_gen;
    // what the decode call in progress changed, undone when llama.cpp refuses it (no KV slot:
    // the program retries the same tokens, in smaller batches): the tokens and parity records
    // it added to the batch, the counts, and the sequences as they were (cap_seqs_before of them)
    struct {
        int32_t n_tokens, n_parity_rows, n_prompt, n_gen, n_parity, n_steps_rows, next_pos, cap_seqs;
        int64_t n_steps;
    }                        before;
    struct seq_state *       seqs_before;
    int32_t                  cap_seqs_before;

    // expert routing (experts.c): the rows of the MoE layer read last, in the current batch
    int32_t                  route_first, route_n; // first row, rows (n_expert_used × n_tokens)
    int32_t                  route_layer;
    int64_t                  route_step;
    // which token each row of a graph is, for the routing of a model with experts (moe): the
    // positions of the graph's tokens, read from the first RoPE node's positions (n_graph_pos
    // of them; 0 until read) and their sequences, found in the decode call's batch (positions
    // and sequences per token, and which tokens the graphs so far took; experts.c)
    bool                     moe;
    int32_t *                graph_pos, * graph_seq;
    int32_t                  n_graph_pos, cap_graph_pos, cap_graph_seq;
    struct { int32_t pos, seq; bool used; } * batch_tok;
    int32_t                  n_batch_tok, cap_batch_tok, batch_unused; // the first token no graph took

    // interventions (tracer_iv.c): per node, whether one names it (by name and layer: kept
    // while the graph repeats); per intervention, the nodes it changed; the first refusal
    uint8_t *                iv_match;
    struct iv_span { int64_t step; int32_t iv; const void * buffer; const char * begin, * end; } * iv_spans; // changed this step
    int32_t                  n_iv_spans, cap_iv_spans;
    int64_t *                iv_applied;
    // changes made at a pause (llt_tracer_apply_now), the run's interventions after its own
    // list: each application is a row as it is made, the list is written when the run ends
    struct iv_added { const char * kind; char node[sizeof(((struct llt_intervention *) 0)->node)]; char * params; } * iv_added;
    int32_t                  n_iv_added, cap_iv_added;
    bool                     iv_need;       // the last node asked about is changed in its post call
    int32_t                  n_head, n_head_kv; // the model's, for slicing heads
#define IV_MAX_OUT_ROWS 64
    int32_t                  iv_out_rows[IV_MAX_OUT_ROWS]; // llt_capture_iv_where()'s, valid until the next call
    int32_t                  iv_one_seq;
    char                     iv_error[512];
};

// per llama.cpp sequence id: its output in the last decode call that asked for one
struct seq_state {
    bool        pending;     // an output no chosen token continues yet
    bool        chosen;      // its token was chosen (and recorded) before the next decode call
    llama_token chosen_token;
    int64_t     chosen_seq;  // ... recorded as the run's token number chosen_seq
    int64_t     chosen_parity; // ... with the parity record of this step; -1 none
    int32_t     out_pos;     // position of the token whose logits were asked for
    int32_t     out_row;     // its index in that decode call's batch
    int64_t     out_step;    // that call's first step
    int64_t     out_decode;  // that call
    int32_t     n_batch;     // its tokens in the batch of the decode call being recorded
    int32_t     next_auto;   // position llama.cpp gives its next token in a batch without positions
};
#define MAX_SEQ_ID 4096 // sequence ids beyond: their tokens are all prompt

// ---- small containers --------------------------------------------------------------------

static inline uint32_t ptr_hash(const void * p) {
    uint64_t x = (uint64_t) (uintptr_t) p;
    x ^= x >> 33; x *= 0xff51afd7ed558ccdULL; x ^= x >> 33;
    return (uint32_t) x;
}

static inline bool ptr_table_init(struct ptr_table * t, uint32_t cap) {
    t->e = calloc(cap, sizeof(*t->e));
    t->cap = cap;
    t->n = 0;
    t->gen = 1;
    return t->e != NULL;
}

// forget every entry in O(1)
static inline void ptr_table_clear(struct ptr_table * t) {
    t->gen++;
    t->n = 0;
}

static inline int32_t ptr_table_get(const struct ptr_table * t, const void * key) {
    for (uint32_t i = ptr_hash(key) & (t->cap - 1);; i = (i + 1) & (t->cap - 1)) {
        const struct ptr_entry * e = &t->e[i];
        if (e->gen != t->gen) return -1;
        if (e->key == key) return e->val;
    }
}

static inline bool ptr_table_put(struct ptr_table * t, const void * key, int32_t val) {
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
static inline int32_t name_table_count(struct name_table * t, const struct node_rec * recs, int32_t idx) {
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

// the latest node in recs with this name (counted so far), or -1
static inline int32_t name_table_find(const struct name_table * t, const struct node_rec * recs, const char * name) {
    const uint32_t h = llt_str_hash(name);
    for (uint32_t i = h & (t->cap - 1);; i = (i + 1) & (t->cap - 1)) {
        const struct name_entry * e = &t->e[i];
        if (e->gen != t->gen) return -1;
        if (e->hash == h && strcmp(recs[e->last].name, name) == 0) return e->last;
    }
}

// ---- shared by the files of src/capture --------------------------------------------------

// whether the CPU computes node i of the current graph (ggml-cpu skips no-ops and nodes
// without the compute flag): a stamp follows it, unless it is a MUL fused into the norm before
static inline bool llt_capture_computed(const struct llt_tracer * tr, int32_t i) {
    return !(tr->recs[i].flags & NODE_NOOP) && (tr->seen[i].flags & GGML_TENSOR_FLAG_COMPUTE);
}

// forgets the statistics of node i read this computation (counted in *how as well as in
// n_stats_read): the computation did not go as the plan had it; i < 0: none
static inline void llt_capture_unread(struct llt_tracer * tr, int32_t i, int64_t * how) {
    if (i < 0 || !tr->node_stats[i].has) return;
    tr->node_stats[i].has = false;
    tr->n_stats_read--;
    (*how)--;
}

// tracing stops: no more recording, and no fast path (the ask call's reads only n_fast)
static inline void llt_capture_stop(struct llt_tracer * tr) {
    tr->active = false;
    tr->n_fast = 0;
}

// node times are recorded at levels timing and profile
static inline bool timed(const struct llt_tracer * tr) {
    return tr->params.level == LLT_LEVEL_TIMING || tr->params.level == LLT_LEVEL_PROFILE;
}

// timing by observing each split's last node: off the CPU, where stamps cannot time the nodes,
// unless every node was asked for (llt_tracer_params.time_nodes)
static inline bool times_splits(const struct llt_tracer * tr) {
    return timed(tr) && !tr->stamped && tr->off_cpu && !tr->params.time_nodes;
}

// records the failure (the first one), stops tracing; inference goes on
void llt_capture_fail(struct llt_tracer * tr, const char * what);
// the writer's failure: recorded unless capture failed first; a later word of the writer (its
// last, from llt_writer_stop(), names the first step it could not write) replaces an earlier one
void llt_capture_writer_fail(struct llt_tracer * tr, const char * what);

// derive.c: whether norm's statistics can be derived from src, its input (live tensors or
// their copies: the graph's records say that src is norm's input)
bool llt_derive_norm_possible(const struct ggml_tensor * norm, const struct ggml_tensor * src);
// derive.c: the statistics of norm's output, from src, complete and intact now; *buf (*cap
// floats) is the scratch, grown as needed
int  llt_derive_norm_stats(const struct ggml_tensor * norm, const struct ggml_tensor * src, float ** buf, size_t * cap,
                           struct llt_stats * st);

// record.c: the callbacks llt_tracer_attach() installs
bool llt_capture_eval_cb(struct ggml_tensor * t, bool ask, void * user_data);
bool llt_capture_abort_cb(void * user_data);
// record.c: node idx of the graph being computed, as the node hook sees it
void llt_capture_node_view(struct llt_tracer * tr, int32_t idx, struct llt_node_view * out);
// record.c: plans which post calls read which nodes' outputs, for the graph just computed
void llt_capture_build_plan(struct llt_tracer * tr);
// record.c: plans which nodes of the graph just computed take the ask call's full path when it
// repeats (tr->asked); called when a graph is first seen. A hook ORs its own nodes in after it.
void llt_capture_plan_asks(struct llt_tracer * tr);

// tracer_iv.c: in the ask call of node idx (after record_node): whether an intervention changes it
bool llt_capture_iv_wants(struct llt_tracer * tr, int32_t idx, bool same);
// tracer_iv.c: in the post call of the node asked about last, t: where it is (step, positions,
// sequences, output rows, heads) for llt_iv_set_apply(); its arrays live in tr until the next call
struct llt_iv_where llt_capture_iv_where(struct llt_tracer * tr, const struct ggml_tensor * t);
// tracer_iv.c: in its post call: the interventions applied and recorded; false (the computation
// stops) when one cannot be made (llt_tracer_iv_error says why)
bool llt_capture_intervene(struct llt_tracer * tr, struct ggml_tensor * t);

// experts.c: whether a node is an MoE layer's mixing weights (ffn_moe_weights*-N), read in its post call
bool llt_experts_is_route(const struct ggml_tensor * t);
// experts.c: in the post call of such a node: its layer's expert ids and weights into the batch
int  llt_experts_read(struct llt_tracer * tr, const struct ggml_tensor * t, int32_t layer);
// experts.c: the positions of the graph's tokens, from a RoPE node in its ask call
void llt_experts_graph_pos(struct llt_tracer * tr, const struct ggml_tensor * rope);

// steps.c: the batch of the current decode call, made on first use; NULL (tracing stopped) when out of memory
struct llt_batch * llt_capture_batch(struct llt_tracer * tr);
// steps.c: ends a graph computation: its step's rows into the batch
void llt_capture_finish_graph(struct llt_tracer * tr);
// steps.c: hands the batch to the writer
void llt_capture_submit(struct llt_tracer * tr);
// steps.c: a token in or out, into the batch
// output: 1 its logits were asked for, 0 not, -1 not known (a token recorded when chosen)
void llt_capture_push_token(struct llt_tracer * tr, llama_token tok, int32_t pos, int64_t step, bool is_prompt,
                            int32_t seq_id, int output);
// steps.c: the generated token recorded as token seq of the run becomes tok (its row is
// written again: the trace keeps the last)
void llt_capture_replace_token(struct llt_tracer * tr, int64_t seq, llama_token tok, int32_t pos, int64_t step,
                               int32_t seq_id);
