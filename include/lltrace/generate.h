// lltrace/generate.h: a plain llama.cpp generation loop, traced or not. Part of lltrace.h.
#pragma once

#include "lltrace/tracer.h"
#include "lltrace/debug.h"

#ifdef __cplusplus
extern "C" {
#endif

struct llt_gen_params {
    const char *   model_path;
    const char *   prompt;
    const llama_token * prompt_tokens; // used instead of prompt when n_prompt_tokens > 0
    int32_t        n_prompt_tokens;
    int32_t        n_predict;   // tokens to generate
    int32_t        n_threads;   // 0 = all cores
    int32_t        n_ctx;       // 0 = prompt + n_predict rounded up
    int32_t        n_batch;     // also n_ubatch, so that one decode call is one graph
    int32_t        flash_attn;  // enum llama_flash_attn_type: -1 auto, 0 off, 1 on
    int32_t        type_k;      // enum ggml_type of the K cache
    int32_t        type_v;      // enum ggml_type of the V cache
    uint32_t       seed;
    float          temp;        // 0 = greedy
    int32_t        top_k;
    float          top_p;
    enum llt_level level;
    struct llt_values_params values;
    // where the model runs, with llama.cpp's names and meanings (common/arg.cpp)
    const char *   rpc;          // --rpc: RPC servers "host:port,...", registered as devices; NULL: none
    const char *   devices;      // --device: devices to offload to "RPC0,CUDA0,..." or "none"; NULL: all
    int32_t        n_gpu_layers; // -ngl: layers stored on the devices; -1: all
    int32_t        split_mode;   // -sm: enum llama_split_mode; -1: llama.cpp's default (layer)
    bool           time_nodes;   // timing off the CPU: every node, not each split (llt_tracer_params)
    struct llt_iv_set * interventions; // made on the traced run (llt_tracer_params); NULL: none
    volatile sig_atomic_t * stop; // set to non-zero to end after the current step; may be NULL
    struct llt_debug * debug;    // a debugger on the run's tracer (lltrace/debug.h); its `quit` ends
                                 // the run after the current step, status ok; may be NULL
    int32_t        parity_top_k; // > 0: keep the top-k logits of every generated step (result.parity)
    // called once with the prompt text when it is tokenized, before it is decoded (not when
    // tokens are given); may be NULL
    void (*on_prompt)(const char * prompt, void * user_data);
    // called with each generated piece of text; may be NULL
    void (*on_piece)(const char * piece, void * user_data);
    void * user_data;
};

struct llt_gen_params llt_gen_default_params(void);

struct llt_gen_result {
    llama_token * tokens;     // prompt tokens then generated tokens
    int32_t       n_prompt;
    int32_t       n_gen;
    int32_t       n_ctx_train; // the context the model was trained with (0 if not loaded)
    char *        text;       // generated text
    int64_t       t_load_ns;  // 0 if the run failed while loading (model, context, tracer)
    int64_t       t_prompt_ns;
    int64_t       t_gen_ns;
    bool          interrupted;
    bool          stopped_on_nan;   // break_on_nan stopped the run
    bool          flash_attn_off;   // checkpoints or an intervention asked for attention probabilities: flash attention was turned off
    char          iv_error[512];    // an intervention that could not be made (the run stopped there), "" if none
    char          iv_unmatched[256]; // interventions that changed no node, "" if none
    char          nan_report[1024]; // where the NaN/Inf appeared, when stopped_on_nan
    char          dump_path[1024];  // the tensor dump written, "" if none
    char          dump_unmatched[256]; // dump patterns no node matched, quoted, comma-separated; "" if none
    bool          has_reference;    // values.reference was compared live: reference holds the summary
    struct llt_ref_summary reference;
    struct llt_parity_step * parity; // n_gen entries when parity_top_k > 0
    int           run_id;     // run written, or 0 untraced
    struct llt_tracer_stats stats;
    char          trace_error[256]; // tracing failure, "" if none
};

// Loads the model, generates, frees everything. With st != NULL the run is traced into st.
// result: caller frees with llt_gen_result_free()
int  llt_generate(const struct llt_gen_params * p, struct llt_store * st, struct llt_gen_result * result);
void llt_gen_result_free(struct llt_gen_result * result);

#ifdef __cplusplus
}
#endif
