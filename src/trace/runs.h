// A run's own rows (runs.c): its row in `runs` and its weight registry, begun and ended by
// capture, marked killed by recovery; and its parity records read back. Private to the library.
#pragma once

#include "core/internal.h"

// an intervention the run makes (table intervention_specs); text borrowed for the call
struct llt_run_iv {
    const char * kind;   // "ablate", "scale", ...
    const char * node;   // the node pattern
    const char * params; // the whole intervention as a JSON object
};

// what is known when a run begins; text borrowed for the call
struct llt_run_begin {
    const char * started_at;   // ISO 8601 UTC
    const char * level;
    const char * system_info;
    const char * model_path, * model_name, * model_arch, * model_desc;
    int32_t      n_layer, n_embd, n_head, n_head_kv, n_vocab, n_ctx_train;
    const char * file_type;
    int64_t      model_bytes, model_params;
    const char * params;       // JSON object or NULL
    const char * prompt;       // or NULL
    const char * name;         // the program and context that made it (lltrace exec), or NULL
    const struct llt_run_iv * ivs; // the interventions it makes, by index (iv_rows.iv)
    int32_t      n_ivs;
};

// what is known when it ends; text borrowed for the call
struct llt_run_end {
    const char * ended_at;
    const char * status;
    const char * error;        // or NULL
    const char * output;
    int32_t      n_prompt, n_gen;
    int64_t      t_prompt_ns, t_gen_ns, t_tokenize_ns;
    const char * dump_path;    // or NULL
    const char * nan_report;   // or NULL
    const char * const * weight_buffers; // per weight id: the buffer it was read from, NULL if never read
    int32_t      n_weights;
    const struct llt_run_iv * ivs_added; // interventions made during the run (the debugger's),
    int32_t      n_ivs_added, iv_base;   // numbered from iv_base on
};

// Inserts the run (status running), its weights and interventions in one transaction; *run_id its id.
int llt_trace_run_begin(struct llt_store * st, const struct llt_run_begin * r, const struct llt_registry * reg,
                        int64_t * run_id);
// Completes the run's row and its weights' buffers, in one transaction.
int llt_trace_run_end(struct llt_store * st, int64_t run_id, const struct llt_run_end * e);
// Marks a run that died while running killed, its token counts taken from its rows; note (or
// NULL) becomes its error: what recovery could not replay.
int llt_trace_run_killed(struct llt_store * st, int64_t run_id, const char * note);
// The weight names of a run, by id (the model file may be gone); NULL for an id without one.
// caller frees with llt_trace_names_free()
int  llt_trace_weight_names(struct llt_store * st, int64_t run_id, char *** names, int32_t * n);
void llt_trace_names_free(char ** names, int32_t n);

// a parity record as stored; borrowed for the callback
struct llt_trace_parity_row {
    int32_t      step;
    int32_t      pos;          // -1 if unknown
    int32_t      token;
    const char * piece;
    const char * top_k;        // the JSON text [[ID,LOGIT],...]
    int32_t      seq_id;       // the llama.cpp sequence
};
// Calls fn for each parity record of a run, in step order, until fn returns non-zero (that
// is returned); LLT_ENOTFOUND if the run has none.
int llt_trace_parity_each(struct llt_store * st, int64_t run_id,
                          int (*fn)(const struct llt_trace_parity_row * row, void * user_data), void * user_data);
