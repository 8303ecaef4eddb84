// lltrace/causal.h: causal tracing (activation patching): which layer and position of a clean
// run carry the answer. Part of lltrace.h.
//
// Two prompts of the same token length, a clean one and a corrupted one (one word changed).
// Each is run once (the prompt only); the clean run's top-1 token is the answer. Then for every
// layer L and position P the corrupted prompt runs again with node <node>-L at position P
// patched from the clean run (an LLT_IV_PATCH intervention, lltrace/intervene.h), and the
// probability of the answer says how much of it came back. Every run asks for the same nodes,
// so all of them compute the graph split alike: patching nothing gives the corrupted run's
// logits exactly, patching the last layer's every row the clean run's (the checks below).
//
// Given a store, the clean and corrupted runs are traced into it (level graph, each with its
// top-1 token as the one it generates) and the result goes to the tables causal and
// causal_cells (docs/trace-format.md, "Causal tracing"); llt_read_causal() (lltrace/read.h)
// reads it back.
#pragma once

#include "lltrace/core.h"
#include "lltrace/store.h"

#ifdef __cplusplus
extern "C" {
#endif

struct llt_causal_params {
    const char * model_path;
    const char * clean;       // the clean prompt
    const char * corrupt;     // the corrupted prompt: as many tokens as the clean one
    const char * node;        // the node patched per layer, by its name before "-L": "l_out" (default), "attn_out", "ffn_out"
    int32_t      n_threads;   // 0: all cores
    struct llt_store * st;    // trace the two plain runs and store the result here; NULL: not stored
};

struct llt_causal_params llt_causal_default_params(void);

struct llt_causal_cell {
    int32_t layer, pos;
    double  p;           // the answer's probability with this layer's position patched from the clean run
    double  logit_diff;  // logit of the answer - logit of the corrupted run's top-1 token
    int64_t n_changed;   // elements patched (0: the node has no row at this position: the last layer keeps the output row only)
};

struct llt_causal_result {
    char         node[64];        // the node patched per layer, without its layer ("l_out")
    int32_t      n_layer, n_pos;
    llama_token  answer;          // the clean run's top-1 token
    llama_token  corrupt_top;     // the corrupted run's top-1 token
    char         answer_piece[64], corrupt_piece[64];
    double       clean_p, corrupt_p;   // the answer's probability in each plain run
    double       clean_ld, corrupt_ld; // logit_diff in each plain run
    char **      pieces;          // [n_pos] the corrupted prompt's tokens, as text
    char **      clean_pieces;    // [n_pos] the clean prompt's
    struct llt_causal_cell * cells; // [n_layer * n_pos], by layer then position
    // the invariants, every logit compared bit for bit
    bool         none_is_corrupt;   // a run with nothing patched gives the corrupted run's logits
    bool         last_is_clean;     // patching every row of the last layer gives the clean run's
    bool         last_checked;      // last_is_clean is an invariant: the node is l_out (a patched V or K
                                    // of the last layer leaves its Q corrupted)
    // in the trace (params.st); 0: not stored
    int64_t      id;              // causal.id
    int64_t      clean_run, corrupt_run;
};

// Loads the model once and makes 3 + n_layer × n_pos runs of the prompts. result: caller frees
// with llt_causal_result_free()
int  llt_causal(const struct llt_causal_params * p, struct llt_causal_result * result);
void llt_causal_result_free(struct llt_causal_result * result);

#ifdef __cplusplus
}
#endif
