// The run in memory, as load.c reads it and groups.c sums it; private to src/analysis.
#pragma once

#include "core/internal.h"

// where a node sits in the forward pass
enum region { REGION_EMBED, REGION_LAYERS, REGION_LOGITS };

// a list of times (ns), for medians
struct times {
    int64_t * v;
    int32_t   n, cap;
};

struct node {
    char            op[32];
    char            name[GGML_MAX_NAME];
    int32_t         layer;
    bool            is_noop;
    bool            layer_out; // a layer's output (nodes.layer_out)
    int8_t          fused;     // computed in its norm's pass: 1, 0, -1 unknown
    enum region     region;
    struct llt_cost_node in;  // shapes and sizes, for the cost
    struct llt_cost cost;
    // per phase: steps that ran the node, its timed runs and their sum, its estimate over all
    int64_t         instances[LLT_PHASE_COUNT];
    int64_t         samples[LLT_PHASE_COUNT];
    int64_t         time_ns[LLT_PHASE_COUNT];
    double          est_ns[LLT_PHASE_COUNT]; // NAN if it cannot be estimated
    struct times    times[LLT_PHASE_COUNT];
    // a MUL_MAT_ID's bytes beyond instances × cost, over its runs and its timed runs: the
    // experts the routing recorded per step in place of the bound (negative: fewer read)
    double          bytes_adj[LLT_PHASE_COUNT], bytes_adj_timed[LLT_PHASE_COUNT];
};

struct graph {
    int64_t   id;
    int32_t   first, n_nodes; // its nodes: a->nodes[first .. first + n_nodes)
    int32_t   embed_last;     // idx of the last computing node before layer 0, -1 if none
    int32_t * l_out;          // per layer: idx of its output node, -1 if none
    int32_t   weights_read;   // distinct weights its nodes read
    int32_t   fused;          // MULs computed in their norm's pass
    struct llt_cost cost;     // its computing nodes together
    int64_t * weight_ids;     // while loading: the weights its nodes read
    int32_t   n_weight_ids, cap_weight_ids;
};

struct step {
    struct llt_analysis_step pub;
    int32_t  graph;                   // index into a->graphs
    int64_t  t_begin, compute_begin, compute_end, t_end, t_sample;
    int64_t  embed_end;               // end of the graph's embed_last node, -1 if not timed
    int64_t * l_out_end;              // per layer, -1 if not timed
    int32_t * experts;                // per layer: distinct experts its tokens chose, 0 unknown
    int32_t * uses;                   // per layer: the first of them in a->uses
};

// an expert a (step, layer) chose, and how many of its tokens did
struct expert_use {
    int32_t expert, n;
};

struct llt_analysis {
    struct llt_analysis_run run;
    int64_t        t_tokenize;        // -1 if unknown
    struct graph * graphs;            // by id
    int32_t        n_graphs, cap_graphs;
    struct node *  nodes;
    int32_t        n_nodes, cap_nodes;
    struct step *  steps;             // by step
    int32_t        n_steps, cap_steps;
    int32_t *      l_out_idx;         // n_graphs * n_layer
    int64_t *      l_out_ends;        // n_steps * n_layer
    // expert routing (routing.c)
    int32_t *      step_experts;      // n_steps * n_layer
    int32_t *      step_uses;         // n_steps * n_layer
    struct expert_use * uses;
    int32_t        n_uses, cap_uses;
    int64_t        route_step;        // reading: the (step, layer) being counted
    int32_t        route_layer;
    int32_t *      route_seen;        // per expert id: 1 + its entry in uses for that (step, layer), 0 none
    int32_t        cap_route_seen;
    int32_t        n_expert;          // the highest expert id chosen + 1
    struct llt_analysis_expert * experts; // n_layer * n_expert, then only the layers with routing
    int32_t        n_experts;
};

bool times_add(struct times * t, int64_t v);

// the time of layer l in step s: end of its l_out from the end of the one before; -1 if unknown
int64_t llt_analysis_layer_gap(const struct llt_analysis * a, const struct step * s, int32_t l);

// routing.c: reads the experts chosen per (step, layer), puts them in the steps' bytes
int  llt_analysis_read_routing(struct llt_store * st, const struct llt_read_sel * sel, struct llt_analysis * a);
// routing.c: a timed run of node nd in step s: a MUL_MAT_ID's bytes and time by expert
void llt_analysis_route_time(struct llt_analysis * a, const struct step * s, struct node * nd, int64_t ns);
// routing.c: keeps the experts of the layers that have routing (once the times are in)
void llt_analysis_route_finish(struct llt_analysis * a);

// each node's estimated time over all its runs (groups.c)
int llt_analysis_estimate(struct llt_analysis * a);
