// lltrace/experts.h: which experts the tokens of a run chose in each Mixture-of-Experts layer
// (table expert_routing). Part of lltrace.h.
//
//   struct llt_experts * e = NULL;
//   llt_experts_load(st, 0, -1, -1, &e);                   // the last run, every step and sequence
//   const struct llt_experts_layer * l = llt_experts_layer(e, 0);
//   // l->count[x]: how often expert x was chosen; l->imbalance: max / mean
//   llt_experts_free(e);
#pragma once

#include "lltrace/core.h"
#include "lltrace/store.h"

#ifdef __cplusplus
extern "C" {
#endif

// expert ids from this on are taken for a damaged trace (llama.cpp allows 512 experts)
#define LLT_EXPERTS_MAX 65536

struct llt_experts_layer {
    int32_t         layer;
    int32_t         n_expert;  // the layer's experts: its router's width (ffn_moe_probs-N), or past the highest id chosen
    int32_t         n_used;    // experts per token
    int64_t         n_tokens;  // tokens routed, over the selected steps
    const int64_t * count;     // [n_expert]: how often each expert was chosen; the counts sum to n_tokens × n_used
    int32_t         n_idle;    // experts never chosen
    double          imbalance; // the most chosen expert's count over the mean count (1: even); NAN without tokens
};

// one token's choice in one layer
struct llt_experts_token {
    int64_t         step, pos;
    int32_t         row;      // the token's row in the step's ubatch
    int32_t         seq_id;   // its sequence; -1: not known (two sequences had a token at pos)
    int32_t         layer;
    int32_t         n;        // experts chosen
    const int32_t * expert;   // [n], best first
    const float *   weight;   // [n]: their weights in the mix
    const char *    piece;    // the token fed at pos in its sequence; "" if unknown
};

struct llt_experts;

// Reads the routing of a run (0: the last), step (-1: every step) and llama.cpp sequence (-1:
// every one; else only that sequence's tokens, and the layers' counts are theirs). A run without
// MoE layers gives no layers. caller frees with llt_experts_free()
int  llt_experts_load(struct llt_store * st, int64_t run, int64_t step, int32_t seq, struct llt_experts ** out);
void llt_experts_free(struct llt_experts * e);

// the MoE layers, by layer; pointers live as long as e
int32_t                          llt_experts_n_layers(const struct llt_experts * e);
const struct llt_experts_layer * llt_experts_layer(const struct llt_experts * e, int32_t i);
// every token's choice in every layer, by step, layer and row
int64_t                          llt_experts_n_tokens(const struct llt_experts * e);
const struct llt_experts_token * llt_experts_token(const struct llt_experts * e, int64_t i);

#ifdef __cplusplus
}
#endif
