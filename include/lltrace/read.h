// lltrace/read.h: reading a trace without SQL: a run's rows streamed to a callback, and the
// tables `lltrace show` prints as generic rows. Part of lltrace.h.
//
// Every reader makes one pass over its table in key order (docs/trace-format.md), so reading
// a run costs time linear in its size. A callback returns 0 to go on; anything else stops the
// reading, and the reader returns it.
#pragma once

#include "lltrace/core.h"
#include "lltrace/store.h"

#ifdef __cplusplus
extern "C" {
#endif

// which rows: a run (0: the last one) and its steps (-1: every step)
struct llt_read_sel {
    int64_t run;
    int64_t step;
    int64_t from_step; // only steps from this one on (0: every step); their tokens and rows too
    bool    by_seq;  // only the steps (and tokens) of llama.cpp sequence seq
    int32_t seq;
};

// ---- a run -------------------------------------------------------------------------------

struct llt_read_run {
    int64_t id;
    char    started_at[32];
    char    level[16];        // graph, timing, profile, values
    char    status[16];       // running, ok, error, interrupted ...
    char    model_name[128];
    char    file_type[32];
    int32_t n_layer;
    int64_t n_prompt, n_gen;  // tokens; -1 when unknown (a run still being written)
    int64_t t_prompt_ns, t_gen_ns; // the speed's times (docs/trace-format.md, "Speed"); -1 when unknown
    int64_t t_tokenize_ns;    // -1 when unknown
    int64_t n_steps;          // steps written so far
    int64_t n_timed_steps;    // steps with node times
    int64_t n_weights;        // the weight registry
    bool    has_stats;        // statistics of node outputs (node_stats)
    bool    values_read;      // node outputs were read while it ran (statistics, a dump, a live comparison):
                              // each read splits the graph, so its node times are inflated
    char    name[256];        // what made it (lltrace exec: "<program> context <n>"); "" for lltrace run
    int32_t n_seqs;           // llama.cpp sequences its tokens belong to
    char    error[256];       // why tracing stopped, "" if it did not
};

// The run (0: the last one); LLT_ENOTFOUND when the trace has no such run.
int llt_read_run(struct llt_store * st, int64_t run, struct llt_read_run * out);

// Whether a selection of a run names something it has, for commands that refuse an empty
// one: LLT_OK, or LLT_ENOTFOUND with a one-line message ("run 1 has no step 99 (it has 4)",
// "run 1 has no step of sequence 7 (its sequences: 0, 1)"). step < 0 and seq < 0: any.
int llt_read_check_sel(struct llt_store * st, int64_t run, int64_t step, int32_t seq);

// ---- the rows of a run, streamed ---------------------------------------------------------

// Texts in these rows are borrowed: valid during the callback only.

struct llt_read_node {
    int64_t      graph_id;
    int32_t      idx;
    const char * op;       // ggml_op_desc: "MUL_MAT", "SWIGLU"
    const char * name;
    const char * type;     // "f32", "q4_K"
    int32_t      layer;    // -1 outside the blocks
    int64_t      ne[4];
    int64_t      bytes;
    bool         is_view, is_noop;
    bool         layer_out; // a layer's output (capture's fact, nodes.layer_out)
    int8_t       fused;     // 1: a MUL the CPU computed in its norm's pass; 0 not; -1 unknown (a version-1 trace)
    const char * buffer;   // where it ran: "CPU"
    const char * device;   // the backend device holding its output: "CPU", "RPC0", "CUDA0"; "" unknown (before version 3)
};

enum llt_read_src_kind { LLT_SRC_NODE, LLT_SRC_WEIGHT, LLT_SRC_INPUT };

struct llt_read_src {
    int64_t                graph_id;
    int32_t                idx, slot;
    enum llt_read_src_kind kind;
    int32_t                src_idx;   // LLT_SRC_NODE: the node it is
    int64_t                weight_id; // LLT_SRC_WEIGHT: the weight it is
    const char *           name;
    int64_t                bytes;
    int64_t                ne[4];     // the node's or weight's; all 0 for an input
    const char *           type;      // the node's or weight's; "" for an input
    bool                   is_view;   // a node that is a view
};

struct llt_read_step {
    int64_t step, decode, pos0, n_tokens, graph_id;
    bool    prompt;  // phase prompt
    bool    warmup;  // phase warmup (a decode the program made before clearing its memory); neither: gen
    // since the run started; -1 when not recorded
    int64_t t_begin_ns, t_end_ns, compute_begin_ns, compute_end_ns;
    int64_t t_sample_ns;
};

struct llt_read_token {
    int64_t      seq, step, pos, token;
    bool         prompt; // role prompt (fed), else gen (chosen from the step's logits)
    const char * piece;  // as llama.cpp gave it: may end inside a UTF-8 character
    int32_t      seq_id; // the llama.cpp sequence
};

struct llt_read_time {
    int64_t step;
    int32_t idx;
    int64_t t_begin_ns, t_end_ns;
};

// an expert a token chose in an MoE layer (expert_routing)
struct llt_read_route {
    int64_t step;
    int32_t layer;
    int32_t row;     // the token's row in the step's ubatch
    int64_t pos;     // the token's position
    int32_t seq_id;  // its sequence; -1: not known (two sequences' tokens at one position)
    int32_t rank;    // 0: the token's highest-scoring expert
    int32_t expert;
    double  weight;  // its weight in the layer's mix
};

typedef int (*llt_read_node_fn)(const struct llt_read_node * row, void * user_data);
typedef int (*llt_read_src_fn) (const struct llt_read_src  * row, void * user_data);
typedef int (*llt_read_step_fn)(const struct llt_read_step * row, void * user_data);
typedef int (*llt_read_time_fn)(const struct llt_read_time * row, void * user_data);
typedef int (*llt_read_token_fn)(const struct llt_read_token * row, void * user_data);
typedef int (*llt_read_route_fn)(const struct llt_read_route * row, void * user_data);

// the nodes of every graph the selected steps ran, by graph and idx
int llt_read_nodes(struct llt_store * st, const struct llt_read_sel * sel, llt_read_node_fn fn, void * user_data);
// the sources of those nodes, by graph, idx and slot
int llt_read_srcs (struct llt_store * st, const struct llt_read_sel * sel, llt_read_src_fn fn, void * user_data);
// the selected steps, by step
// the step's phase as the trace names it: "prompt", "gen" or "warmup"
const char * llt_read_step_phase(const struct llt_read_step * s);
int llt_read_steps(struct llt_store * st, const struct llt_read_sel * sel, llt_read_step_fn fn, void * user_data);
// the node times of the selected steps, by step and idx
int llt_read_times(struct llt_store * st, const struct llt_read_sel * sel, llt_read_time_fn fn, void * user_data);
// the tokens of the run, by seq (sel->step is ignored)
int llt_read_tokens(struct llt_store * st, const struct llt_read_sel * sel, llt_read_token_fn fn, void * user_data);
// the experts of the selected steps, by step, layer, pos and rank (none for a model without
// experts, or a trace made before the table)
int llt_read_routes(struct llt_store * st, const struct llt_read_sel * sel, llt_read_route_fn fn, void * user_data);

// ---- a causal tracing result (lltrace causal -o) ----------------------------------------

struct llt_causal_result;
// The causal tracing result of run (its clean or its corrupted run; the last such), or with run
// 0 the trace's last one; LLT_ENOTFOUND when there is none (a trace made before schema version
// 7 has none). out: caller frees with llt_causal_result_free() (lltrace/causal.h)
int llt_read_causal(struct llt_store * st, int64_t run, struct llt_causal_result * out);

// ---- tables as rows ----------------------------------------------------------------------

enum llt_value_type { LLT_VALUE_NULL, LLT_VALUE_INT, LLT_VALUE_REAL, LLT_VALUE_TEXT };

struct llt_value {
    enum llt_value_type type;
    int64_t             i;  // LLT_VALUE_INT
    double              d;  // LLT_VALUE_INT and LLT_VALUE_REAL
    const char *        s;  // LLT_VALUE_TEXT, else NULL; lives with the rows
};

// a table: n_rows rows of n_cols values
struct llt_table_rows {
    int32_t            n_cols;
    const char **      cols;   // column names
    int64_t            n_rows;
    struct llt_value * values; // row r, column c: values[r * n_cols + c]
};

// The tables of `lltrace show`, with their columns (times in ns, sizes in bytes):
enum llt_table {
    LLT_TABLE_RUNS,           // every run: id, started_at, model_name, file_type, level, status, steps, n_prompt, n_gen, name,
                              // interventions (how many it makes)
    LLT_TABLE_RUN,            // the run: every column of runs (model and arch as "model", "arch"), steps, graphs,
                              // interventions (a JSON array of the run's, as intervention_specs.params)
    LLT_TABLE_STEP,           // the step: step, decode, phase, pos0, n_tokens, graph, nodes, time_ns, compute_ns
    LLT_TABLE_TOKENS,         // the step's tokens: dir ("in": fed by the step, "out": chosen from its
                              // logits), role, seq, pos, token, piece
    LLT_TABLE_NODES,          // the step's nodes: idx, op, name, layer, ne0..ne3, type, bytes, is_view,
                              // is_noop, buffer, device, time_ns, min, max, mean, std, nan_inf, intervened
                              // (the kinds of the interventions that changed it, "ablate+scale"; NULL none), sources_text
                              // ("name[idx]", "name(w)", "name(in)"), sources_json
    LLT_TABLE_WEIGHTS,        // the weight registry: id, name, type, ne0..ne3, bytes, bpw, layer, file_offset, buffer
    LLT_TABLE_GRAPHS,         // graphs of the selected steps: graph, nodes, steps, first_step
    LLT_TABLE_UNREAD,         // weights some selected step did not read: id, name, bytes, steps (not reading it)
    LLT_TABLE_DIFFS,          // the step's live comparison with a reference (node_diffs): idx, name, op,
                              // layer, shape_ok, n, max_abs, mean_abs, max_rel, rmse, nmse, cosine,
                              // nonfinite, ref_nonfinite, n_exceed, within
    LLT_TABLE_MATMUL_WEIGHTS, // weights: id, name, type, ne0..ne3, bpw, buffer, layer, matmul (a matrix multiply reads it)
    LLT_TABLE_KERNELS,        // per (op, weight_type, weight_buffer, ran_on): weights, calls (node runs)
    LLT_TABLE_PLACEMENT,      // computing nodes per buffer they ran on: ran_on, calls, ops
    // where the model ran (tables splits, split_inputs, split_times):
    LLT_TABLE_DEVICES,        // per device over the selected steps: device, calls (computing node runs),
                              // written (their output bytes), splits (split runs), inputs (copies into
                              // them), input_bytes, timed_splits, split_ns (their computation),
                              // inputs_ns (their input copies), timed_nodes, node_ns
    LLT_TABLE_LINKS,          // per link over the selected steps: from_device, to_device, copies, bytes,
                              // steps, bytes_per_step
    LLT_TABLE_SPLITS,         // per step and split: step, split, device, idx_first, idx_last, nodes, inputs,
                              // input_bytes, t_begin_ns, t_compute_ns, t_end_ns (NULL untimed), inputs_ns, compute_ns
};

// which rows of a table; NULL members and -1 numbers select everything
struct llt_table_filter {
    int64_t      run;   // 0: the last run
    int64_t      step;  // -1: every step
    int64_t      layer; // INT64_MIN: any layer
    const char * op;    // an op, case-insensitive
    const char * name;  // a glob (case-sensitive, sqlite GLOB)
    int64_t      limit; // 0: no limit
    bool         by_seq; // only the steps (and tokens) of llama.cpp sequence seq
    int32_t      seq;
};

struct llt_table_filter llt_table_default_filter(void);

// Reads a table. caller frees with llt_table_rows_free()
int  llt_read_table(struct llt_store * st, enum llt_table table, const struct llt_table_filter * filter,
                    struct llt_table_rows ** out);
void llt_table_rows_free(struct llt_table_rows * rows);

#ifdef __cplusplus
}
#endif
