// lltrace/tracer.h: capture: the tracer on llama.cpp's eval and abort callbacks. Part of lltrace.h.
#pragma once

#include "lltrace/store.h"
#include "lltrace/parity.h"
#include "lltrace/intervene.h"

#ifdef __cplusplus
extern "C" {
#endif

enum llt_level {
    LLT_LEVEL_GRAPH,   // record every node; decline every post call: scheduling untouched
    LLT_LEVEL_TIMING,  // also time every computing node (by the CPU backend's per-node stamps)
    LLT_LEVEL_PROFILE, // time the l_out nodes, the nodes outside the layers and one layer's nodes (rotating)
    LLT_LEVEL_VALUES,  // statistics of every computing node's output
    LLT_LEVEL_COUNT,
};
const char * llt_level_name(enum llt_level level);
int          llt_level_from_name(const char * name); // -1 if unknown

enum llt_run_status {
    LLT_RUN_RUNNING,
    LLT_RUN_OK,
    LLT_RUN_INTERRUPTED,
    LLT_RUN_ERROR,
    LLT_RUN_KILLED,      // the process died; recovered from its step log
    LLT_RUN_STATUS_COUNT,
};
const char * llt_run_status_name(enum llt_run_status status);

enum llt_dump_type {
    LLT_DUMP_NATIVE, // as computed (f32, f16, quantized KV cache ...)
    LLT_DUMP_F32,
    LLT_DUMP_F16,
};

// What to read from tensor values besides the level's statistics; everything off by default.
struct llt_values_params {
    const char * const * dump;     // node name patterns (glob, or regex after "re:"), NULL-terminated; NULL: none
    int32_t      dump_layer;       // only this layer; -1: all
    int32_t      dump_step_first;  // only steps in [first, last]; -1: all
    int32_t      dump_step_last;
    int32_t      dump_type;        // enum llt_dump_type
    const char * dump_path;        // the GGUF the dumped tensors go to, written when the run ends
    const char * reference;        // a dump to compare matching nodes with as they are computed
    double       tol_abs, tol_rel; // tolerances of the live comparison
    bool         dump_sources;     // also dump src0..src2 of every dumped node
    bool         checkpoints;      // dump the named checkpoints (norms, Q/K/V, KV cache, ...)
    int32_t      checkpoint_layer; // only this layer; -1: all
    bool         break_on_nan;     // stop at the first node that produces a NaN or Inf
    bool         nan_report_only;  // with break_on_nan: report it, and let the computation go on (lltrace exec)
};

struct llt_values_params llt_values_default_params(void);

// What the live comparison with a reference dump did, for a summary at the end of the run.
struct llt_ref_summary {
    int64_t n_compared;        // (node, step) pairs compared element by element
    int64_t n_within;          // ... every element within tolerance
    char    first_beyond[96];  // the first beyond tolerance in execution order, "<node>#<step>"; "" if none
    double  first_beyond_max_abs;
    double  max_abs;           // the largest |difference| over the compared pairs
    int64_t n_shape_differs;   // skipped: the reference has another shape
    int64_t n_token_count_differs; // ... of them, shapes that differ in the token count alone: another prompt
    char    shape_example[160]; // one of them: "name: [ne] here, [ne] in the reference"
    int64_t n_not_contiguous;  // skipped: a view lltrace cannot read in order
    int32_t n_ref_unseen;      // reference nodes this run never computed, the K/V cache aside
    int32_t n_ref_cache;       // K/V cache checkpoints of the reference: named after the cache, not compared live
    bool    ref_has_probs;     // the reference holds attention probabilities: flash attention was off there
    bool    run_has_probs;     // this run computed them: flash attention is off here
};

// LLT_OK if pat is a usable dump pattern (a glob, or a regex after "re:"), else LLT_EINVAL
int llt_pattern_check(const char * pat);

struct llt_tracer_params {
    enum llt_level level;
    struct llt_values_params values;
    const char *   model_path;  // the GGUF the model was loaded from (for the weight registry)
    const char *   prompt;      // stored with the run, may be NULL
    const char *   params_json; // run parameters as a JSON object, may be NULL
    int64_t        t_tokenize_ns; // time the caller spent tokenizing the prompt, stored with the run
    const char *   name;        // what made the run (lltrace exec: program and context), may be NULL
    int32_t        parity_top_k; // > 0: each generated token's top-k logits go to table parity, read
                                 // from the context when the token is known (for drivers that do not
                                 // call llt_tracer_parity() themselves: lltrace exec); at most LLT_PARITY_MAX_K
    // levels timing and profile where the CPU's stamps cannot time the graph (nodes on an RPC
    // server or a GPU): false times each split by observing its last node (a post call where
    // the scheduler synchronises anyway: next to free); true observes every computing node
    // (a compute call and a backend round trip each: a remote one on RPC)
    bool           time_nodes;
    // interventions (lltrace/intervene.h) made on the nodes they name, recorded in table
    // interventions; NULL: none. Borrowed: must outlive the tracer. An intervention on
    // attention's probabilities turns flash attention off, as checkpoints do.
    struct llt_iv_set * interventions;
};

struct llt_tracer_params llt_tracer_default_params(void);

struct llt_tracer;

// Creates a tracer that writes one run into an open store (the store must outlive it).
// caller frees with llt_tracer_free()
int  llt_tracer_init(struct llt_store * st, struct llt_tracer_params params, struct llt_tracer ** out);
void llt_tracer_free(struct llt_tracer * tr);

// Installs the eval callback in cparams before llama_init_from_model(); a callback already set
// there keeps working (it is chained and sees every node it asks for). At levels timing and
// profile it also installs the abort callback, which the CPU backend calls after every node it
// computes: the tracer stamps the time there and chains the callback already set (its answer
// counts). An abort callback set later with llama_set_abort_callback() replaces the tracer's:
// timing then falls back to observing nodes (llt_tracer_stats.timing_observed_from). With
// checkpoints it also turns flash attention off: attention probabilities exist as a tensor
// only without it.
void llt_tracer_attach(struct llt_tracer * tr, struct llama_context_params * cparams);

// Starts the run record: model info, weight registry, system info. A failure after the run's row
// is in ends the run there, status error with the reason.
int  llt_tracer_begin(struct llt_tracer * tr, const struct llama_model * model, struct llama_context * ctx);

// llama_decode() with the step recorded around it: tokens in, positions, wall time.
// Returns what llama_decode returned. The step's rows go to the tracer's writer thread, which
// commits them right away; llt_tracer_sync() waits until they are in the file.
int32_t llt_decode(struct llt_tracer * tr, struct llama_context * ctx, struct llama_batch batch);

// llt_decode() in two halves, for a driver that calls llama_decode() itself (lltrace exec):
// begin records the batch's tokens (prompt, or generated: a token that continues the output of
// a sequence), end the graph computations that llama_decode() made (one step each) and returns
// ret. Every token keeps its sequence id and whether its logits were asked for.
void    llt_tracer_decode_begin(struct llt_tracer * tr, struct llama_context * ctx, const struct llama_batch * batch);
int32_t llt_tracer_decode_end(struct llt_tracer * tr, int32_t ret);

// Waits until every step recorded so far is committed to the trace.
int  llt_tracer_sync(struct llt_tracer * tr);

// Records a token chosen from the logits of the last step, right after choosing it (the time
// since the decode call returned is the step's sampling time).
void llt_tracer_sampled(struct llt_tracer * tr, llama_token token);
// The same for the output row idx of the last decode call (as in llama_get_logits_ith(); -1:
// the last row): the token continues that row's sequence.
void llt_tracer_sampled_at(struct llt_tracer * tr, struct llama_context * ctx, int32_t idx, llama_token token);

// The program cleared ctx's memory (llama_memory_clear): every sequence starts again at
// position 0. unread: no output of the decode calls since the last token chosen was read (no
// logits, no embeddings): they were a warm-up (llama.cpp's common_init_from_params decodes
// [BOS, EOS] so) or a probe, and their tokens are no prompt of the run.
void llt_tracer_memory_cleared(struct llt_tracer * tr, bool unread);

struct llt_parity_step;
// Records the top-k logits of a generated step (table parity).
void llt_tracer_parity(struct llt_tracer * tr, const struct llt_parity_step * step);

// Ends the run: status, generated text (may be NULL) and totals. A run whose llt_tracer_begin()
// failed after its row was made has ended there (status error, with the reason); then, and on a
// second call, this does nothing.
int  llt_tracer_end(struct llt_tracer * tr, enum llt_run_status status, const char * output);

// In a child made by fork() (without exec): the tracer the child copied stops recording, and
// forgets the parent's writer thread, step log, trace connection and dump without touching
// them; its callbacks, still installed in the child's copy of the context, decline every node.
// Call it from a pthread_atfork child handler; never end or free the tracer in the child.
void llt_tracer_disown(struct llt_tracer * tr);

int          llt_tracer_run_id(const struct llt_tracer * tr);
// the first tracing failure, or NULL while tracing is healthy (borrowed, lives with tr)
const char * llt_tracer_error(const struct llt_tracer * tr);

// with break_on_nan: a description of the first node that produced a NaN or Inf (its op, name,
// layer, step, sources and their statistics), or NULL; generation should stop when set
const char * llt_tracer_nan_report(const struct llt_tracer * tr);

// the live comparison with values.reference so far; false without a reference
bool         llt_tracer_ref_summary(const struct llt_tracer * tr, struct llt_ref_summary * out);

// the dump patterns (values.dump) no node of the run matched, quoted and comma-separated into
// buf (cut to size); returns how many
int          llt_tracer_dump_unmatched(const struct llt_tracer * tr, char * buf, size_t size);

// an intervention that could not be made ("step S: <reason>"), which stopped the computation
// (llama_decode then fails), or NULL (borrowed, lives with tr)
const char * llt_tracer_iv_error(const struct llt_tracer * tr);
// the interventions that changed no node so far, "<kind> '<node>'" comma-separated into buf
// (cut to size); returns how many
int          llt_tracer_iv_unmatched(const struct llt_tracer * tr, char * buf, size_t size);

// the GGUF the run's tensor dump goes to (written by llt_tracer_end), or NULL (borrowed, lives with tr)
const char * llt_tracer_dump_path(const struct llt_tracer * tr);

// A node of the graph being computed, as the tracer sees it in the eval callback (for the
// debugger, lltrace/debug.h). Borrowed: valid during the call that hands it over.
struct llt_node_view {
    struct llt_tracer * tracer;   // the tracer that saw it (llt_tracer_graph_node, llt_tracer_apply_now)
    struct ggml_tensor * t;       // the node; its data holds its output from its post call until
                                  // a later node of the graph writes over that memory
    int32_t      idx;             // its place in the graph, in the order the scheduler computes
    int64_t      step;            // the graph computation of the run it belongs to
    int32_t      layer;           // -1 outside the layers
    const char * op;              // as the trace names it: "MUL_MAT", "SOFT_MAX", "SILU"
    const char * device;          // where its output lives: "CPU", "RPC0", "CUDA0"
    int32_t      pos0, n_tokens;  // the positions of the decode call's tokens
    int64_t      seq_mask;        // the sequences the decode call takes tokens of (bit 63: ids >= 63)
    bool         noop;            // a view, reshape or permute: computes nothing
    bool         fused_next;      // an RMS_NORM the CPU computes together with the MUL after it,
                                  // without writing it, unless it was observed
};

// Called for every node in its ask call (ask true: answer whether to observe it, which costs
// a compute call of its own) and, for a node answered true, in its post call once it is
// computed (ask false: the answer is ignored; what the hook writes into the output is what the
// rest of the graph reads). fn NULL removes the hook. idle (may be NULL), asked as each graph
// computation begins: true when the hook would answer no to every node of it; the tracer then
// skips the hook for the nodes of a graph that repeats (its fast path), so an idle hook costs
// nothing. Something the hook is given to stop at takes effect from the next computation.
typedef bool (*llt_node_hook)(const struct llt_node_view * node, bool ask, void * user_data);
typedef bool (*llt_node_hook_idle)(void * user_data);
void llt_tracer_set_node_hook(struct llt_tracer * tr, llt_node_hook fn, llt_node_hook_idle idle, void * user_data);

// Applies intervention i of set (lltrace/intervene.h) to t, the node whose post call is in
// progress (the node hook's, ask false), with its positions and the model's heads as the
// tracer knows them. Returns what llt_iv_set_apply() returns. Recorded as one more of the
// run's interventions (table interventions: its application now, its spec when the run ends).
int64_t llt_tracer_apply_now(struct llt_tracer * tr, struct llt_iv_set * set, int i, struct ggml_tensor * t);

// Node idx of the graph being computed, asked about so far (idx < view.idx of the latest
// node); false if there is none such
bool llt_tracer_graph_node(struct llt_tracer * tr, int32_t idx, struct llt_node_view * out);

struct llt_tracer_stats {
    int64_t n_steps;
    int64_t n_nodes_last;   // nodes in the last step's graph
    int64_t n_graphs;       // distinct graph structures stored
    int64_t n_weights;      // weights in the registry
    int64_t n_weights_read; // weights that were a source of some node in the last step
    int64_t n_dumped;       // tensors written to the dump
    int64_t timing_observed_from; // levels timing/profile: the step from which nodes were timed by
                                  // observing them, the CPU backend's stamps having failed; -1 never
    bool    timing_splits;        // ... off the CPU: each split timed by observing its last node, not each node
    int64_t n_stats_read;         // level values: node outputs whose statistics were read,
    int64_t n_stats_stamped;      // ... of them at the CPU backend's stamps (the rest at post calls, a graph split each)
    int64_t n_stats_derived;      // ... of them norms derived from their inputs, read there (no split either)
    int64_t t_prompt_ns;          // the prompt's decode calls (docs/trace-format.md, "Speed")
    int64_t t_gen_ns;             // the generation's decode calls and the sampling of every generated token
};
struct llt_tracer_stats llt_tracer_get_stats(const struct llt_tracer * tr);

#ifdef __cplusplus
}
#endif
