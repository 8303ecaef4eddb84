// Tensor values during a run: statistics, dumps, checkpoints, live comparison. Private to
// the library; capture calls it in the eval callback's post calls.
#pragma once

#include "trace/batch.h"

struct llt_values;

struct llt_dump_meta {
    int64_t             run_id;
    const struct llt_registry * model; // its hyperparameters go into the dump
    const char *        model_path;
    const char *        prompt;
    const char *        filters;  // the dump options, as text
    const char *        params_json; // the run's parameters (cache types, flash attention), may be NULL
    const llama_token * tokens;   // every token in and out
    int32_t             n_tokens;
};

// caller frees with llt_values_free()
int  llt_values_init(const struct llt_values_params * p, enum llt_level level, const char * trace_path,
                     int64_t run_id, struct llt_values ** out);
void llt_values_free(struct llt_values * v);
bool llt_values_stats(const struct llt_values * v);            // statistics of every computing node
const char * llt_values_dump_path(const struct llt_values * v); // NULL if nothing is dumped
const char * llt_values_nan_report(const struct llt_values * v);
// the dump patterns no node has matched so far, quoted and comma-separated into buf (cut to
// size); returns how many
int llt_values_unmatched(const struct llt_values * v, char * buf, size_t size);
int32_t llt_values_n_dumped(const struct llt_values * v);
// NODE_DUMP / NODE_REF from what is fixed for the run
int32_t llt_values_node_flags(struct llt_values * v, const struct ggml_tensor * t, const char * name, int32_t layer, bool noop);
bool llt_values_step_wanted(const struct llt_values * v, int64_t step);
// in the post call, while t's data is valid
int  llt_values_stats_of(struct llt_values * v, const struct ggml_tensor * t, struct llt_stats * st);
int  llt_values_dump(struct llt_values * v, const struct ggml_tensor * t, const struct node_rec * r, int32_t idx,
                     int64_t step, int32_t pos0, int32_t n_tokens, const char * op_name);
int  llt_values_compare(struct llt_values * v, const struct ggml_tensor * t, const struct node_rec * r, int32_t idx,
                        int64_t step, struct diff_rows * out, bool * found);
void llt_values_nan(struct llt_values * v, const struct ggml_tensor * t, const struct node_rec * r, const char * op_name,
                    int64_t step, const struct llt_stats * st);
// the live comparison so far; false without a reference
bool llt_values_ref_summary(const struct llt_values * v, struct llt_ref_summary * out);
// writes the dump GGUF (at the end of the run)
int  llt_values_finish(struct llt_values * v, const struct llt_dump_meta * meta);

// the op of a record as the trace names it (ggml_op_desc: unary and GLU ops by their kind)
const char * llt_node_op_name(const struct node_rec * r);

