// lltrace/analysis.h: what a run did and where its time went, computed once for every reader
// (`lltrace show --stats`, `lltrace profile`, a C program, a report). Part of lltrace.h.
//
//   struct llt_analysis_params p = llt_analysis_default_params();
//   p.run = 2;
//   struct llt_analysis * a = NULL;
//   if (llt_analysis_load(store, &p, &a) != LLT_OK) { ... llt_last_error() ... }
//   const struct llt_analysis_step * s = llt_analysis_step(a, 0); // bytes, FLOPs, parts
//   struct llt_analysis_groups ops;
//   llt_analysis_group(a, LLT_ANALYSIS_BY_OP, true, &ops);       // time per op and phase
//   llt_analysis_groups_free(&ops);
//   llt_analysis_free(a);
//
// The figures are those of docs/trace-format.md, "Cost model" and "Profile figures": bytes
// and FLOPs of every computing node from the cost model (lltrace/cost.h), node times from
// levels timing (every node) and profile (a sample), estimated where a node was not timed.
// The run is read once, in one pass over each table (lltrace/read.h).
#pragma once

#include "lltrace/core.h"
#include "lltrace/store.h"

#ifdef __cplusplus
extern "C" {
#endif

enum llt_phase { LLT_PHASE_PROMPT, LLT_PHASE_GEN, LLT_PHASE_WARMUP, LLT_PHASE_COUNT };

// the parts of a step's time (docs/trace-format.md, "Profile figures")
enum llt_part {
    LLT_PART_TOKENIZE, // tokenizing the prompt: the first step
    LLT_PART_EMBED,    // from the computation's start to the end of the last node before layer 0
    LLT_PART_LAYERS,   // from there to the end of the last layer's output (l_out)
    LLT_PART_LOGITS,   // from there to the computation's end
    LLT_PART_SAMPLING, // choosing the token after the step
    LLT_PART_OVERHEAD, // the decode call outside the graph computation
    LLT_PART_TOTAL,    // the decode call, sampling and tokenizing
    LLT_PART_COUNT,
};

const char * llt_phase_name(enum llt_phase phase); // "prompt", "gen"
const char * llt_part_name(enum llt_part part);    // "tokenize", ..., "decode overhead", "total"

struct llt_analysis_params {
    int64_t run;  // 0: the last run of the trace
    int64_t step; // -1: every step; else only this one
    int32_t seq;  // -1: every step; else only those that took tokens of this llama.cpp sequence
    int64_t from_step; // 0: every step; else only the steps from this one on (a window of a long run)
};

struct llt_analysis_params llt_analysis_default_params(void);

struct llt_analysis;

// Reads and analyses a run. caller frees with llt_analysis_free()
int  llt_analysis_load(struct llt_store * st, const struct llt_analysis_params * params, struct llt_analysis ** out);
void llt_analysis_free(struct llt_analysis * a);

// ---- the run -----------------------------------------------------------------------------

struct llt_analysis_run {
    int64_t id;
    char    model[128];     // model name
    char    file_type[32];
    char    level[16];
    char    status[16];
    bool    running;        // still being written: the figures are those of the steps so far
    int32_t n_layer;
    int64_t n_steps;        // steps loaded (the selected ones)
    int64_t n_timed_steps;  // of them, steps with node times
    int64_t samples;        // (step, node) timings of computing nodes
    int64_t instances;      // (step, node) runs of computing nodes
    int32_t fused;          // MUL nodes per step computed in their norm's pass (the most of any graph); -1 unknown (a version-1 trace)
    int64_t n_weights;      // the weight registry
    int64_t n_prompt, n_gen;        // the run's tokens (-1 while it is written)
    int64_t t_prompt_ns, t_gen_ns;  // the times of its speed (docs/trace-format.md, "Speed"); -1 while it is written
    bool    values_read;    // node outputs were read while it ran: its node times are inflated (LLT_VALUES_READ_NOTE)
};

// what to say wherever node times of a run that read values are shown
#define LLT_VALUES_READ_NOTE "node times were taken while values were read (statistics, a dump or checkpoints, a live" \
    " comparison): each read splits the graph and waits for it, which inflates the times several-fold; time a run at" \
    " --level timing without them"

// tokens per second: n over t_ns, NAN when either is unknown or 0 (docs/trace-format.md, "Speed")
double llt_speed(int64_t n, int64_t t_ns);

// borrowed, lives with a
const struct llt_analysis_run * llt_analysis_run(const struct llt_analysis * a);

// ---- steps -------------------------------------------------------------------------------

struct llt_analysis_step {
    int64_t        step, pos0, n_tokens, graph_id;
    enum llt_phase phase;
    int32_t        n_nodes;                   // nodes of its graph
    int64_t        wall_ns, compute_ns;       // the decode call, the graph computation
    int64_t        node_ns, node_samples;     // sum and number of its node times
    int64_t        parts_ns[LLT_PART_COUNT];  // -1 where unknown
    // the cost model over the step's computing nodes (docs/trace-format.md, "Cost model")
    uint64_t       bytes_read_weights;        // weights: the token rows of the embedding table ...
    uint64_t       bytes_read_acts;           // activations, inputs, the K/V cache positions attended to
    uint64_t       bytes_written;
    double         bytes_read_per_token;      // (weights + acts) / n_tokens
    uint64_t       flops;
    int32_t        weights_read;              // distinct weights its graph reads
};

int64_t llt_analysis_n_steps(const struct llt_analysis * a);
// step i of the loaded steps, in step order; borrowed, lives with a
const struct llt_analysis_step * llt_analysis_step(const struct llt_analysis * a, int64_t i);

// the parts summed over the loaded steps of a phase: time, tokens and steps where each is known
struct llt_analysis_part {
    int64_t time_ns, tokens, steps;
};
void llt_analysis_parts(const struct llt_analysis * a, enum llt_phase phase, struct llt_analysis_part out[LLT_PART_COUNT]);

// ---- experts: Mixture-of-Experts layers ----------------------------------------------------

// One expert of an MoE layer over the loaded steps. Its time cannot be measured: ggml computes
// every expert of a MUL_MAT_ID in one node (its threads share out each chosen expert's rows)
// and the CPU backend's callback comes once per node. time_ns attributes each timed
// MUL_MAT_ID run to the experts of its step by their share of its FLOPs: the tokens routed to each.
struct llt_analysis_expert {
    int32_t layer, expert;
    int64_t choices;  // tokens routed to it
    int64_t steps;    // steps that chose it
    double  time_ns;  // its part of the layer's timed MUL_MAT_ID runs (gate, up, down)
    int64_t samples;  // timed MUL_MAT_ID runs that chose it
};

// the experts of every MoE layer, by layer and expert; none for a model without experts
int32_t                            llt_analysis_n_experts(const struct llt_analysis * a);
const struct llt_analysis_expert * llt_analysis_expert(const struct llt_analysis * a, int32_t i);

// ---- groups: time, bytes and FLOPs per op, layer or node ---------------------------------

enum llt_analysis_by { LLT_ANALYSIS_BY_OP, LLT_ANALYSIS_BY_LAYER, LLT_ANALYSIS_BY_NODE };

struct llt_analysis_group {
    enum llt_phase phase;      // LLT_PHASE_COUNT when the phases are taken together
    char    key[64];           // the op, the layer ("embed", "0", ..., "logits"), the node's name
    char    op[32];            // by node: its op
    int32_t idx;               // by node: its place in the graph; else -1
    int32_t layer;             // by node: its layer; by layer: the table's order (0 embed,
                               // 1 + the layer, n_layer + 1 logits)
    int64_t instances;         // (step, node) runs of its computing nodes
    int64_t samples;           // of them, timed
    double  time_ns;           // sum of the timed runs
    double  est_ns;            // estimated over every run; NAN when it cannot be
    double  share;             // est_ns in % of its phase's
    double  mean_ns, median_ns, p90_ns; // of a timed run (by layer: of a step's l_out gap); NAN: none
    double  bytes, flops;      // over every run
    double  bytes_timed, flops_timed;   // over the timed runs: GB/s and GFLOP/s
    double  gap_ns;            // by layer: l_out-to-l_out time summed over steps
    int64_t gap_samples;       // by layer: steps behind gap_ns
};

struct llt_analysis_groups {
    struct llt_analysis_group * g; // by phase, then estimated time (by layer: layer order)
    int32_t                     n;
};

// Groups the computing nodes of the loaded steps, per phase or (by_phase false) all together.
// caller frees with llt_analysis_groups_free()
int  llt_analysis_group(const struct llt_analysis * a, enum llt_analysis_by by, bool by_phase,
                        struct llt_analysis_groups * out);
void llt_analysis_groups_free(struct llt_analysis_groups * groups);

#ifdef __cplusplus
}
#endif
