// lltrace: see what an LLM does while it runs under llama.cpp.
//
// liblltrace attaches to llama.cpp through the scheduler's eval callback
// (llama_context_params.cb_eval), records every graph node that runs into an SQLite trace
// (docs/trace-format.md) and reads traces back. It never patches llama.cpp.
//
// Errors: functions returning int give 0 or a negative LLT_E* code; llt_last_error() then
// holds a one-line message (per thread). Nothing here exits or aborts on bad input.
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <signal.h>

#include "llama.h"

#ifdef __cplusplus
extern "C" {
#endif

#define LLT_VERSION "0.1.0"

// ---- errors ------------------------------------------------------------------------------

enum llt_error {
    LLT_OK        =  0,
    LLT_EIO       = -1, // a file could not be read or written
    LLT_EFORMAT   = -2, // a file is not what it should be (bad magic, corrupt, truncated)
    LLT_EVERSION  = -3, // a file has a version this lltrace does not know
    LLT_EINVAL    = -4, // a bad argument
    LLT_ENOMEM    = -5,
    LLT_ENOTFOUND = -6, // a name, run or step that does not exist
    LLT_ELLAMA    = -7, // llama.cpp refused (model load, context, decode)
};

// the message of the last failure on this thread; valid until the next lltrace call
const char * llt_last_error(void);

// ---- names -------------------------------------------------------------------------------

// llama file type by name ("F32", "F16", "Q8_0", "Q4_K_M", case-insensitive); -1 if unknown
int          llt_ftype_from_name(const char * name);
const char * llt_ftype_name(int ftype); // "?" if unknown
// ggml type by name ("f16", "q8_0", "q4_K", case-insensitive); -1 if unknown
int          llt_type_from_name(const char * name);
// layer number from a tensor name: "Qcur-3", "cache_k_l3 (view)", "blk.3.attn_q.weight" -> 3; else -1
int          llt_layer_from_name(const char * name);

// ---- weight registry: model weights <-> GGUF file offsets --------------------------------

struct llt_weight {
    char     name[GGML_MAX_NAME];
    int32_t  type;        // enum ggml_type
    int32_t  n_dims;
    int64_t  ne[4];       // elements per dim, ne[0] innermost
    uint64_t bytes;       // size of the data
    double   bpw;         // bits per weight
    int32_t  layer;       // from blk.N., else -1
    uint64_t file_offset; // absolute offset of the data in the file
};

struct llt_registry;

// Reads the tensor table of a GGUF file and checks the file holds all tensor data.
// caller frees with llt_registry_free()
int  llt_registry_load(const char * path, struct llt_registry ** out);
void llt_registry_free(struct llt_registry * reg);

int                       llt_registry_count(const struct llt_registry * reg);
const struct llt_weight * llt_registry_get  (const struct llt_registry * reg, int id); // borrowed, lives with reg
int                       llt_registry_find (const struct llt_registry * reg, const char * name); // id or -1
uint64_t                  llt_registry_file_size(const struct llt_registry * reg);
// general.* and llama.* metadata of the file, as text; NULL if absent (borrowed, lives with reg)
const char *              llt_registry_meta(const struct llt_registry * reg, const char * key);

// ---- store: the trace database -----------------------------------------------------------

#define LLT_STORE_SCHEMA_VERSION 1
#define LLT_STORE_APPLICATION_ID 0x4C4C5452 // "LLTR"

enum llt_store_mode {
    LLT_STORE_READ,   // an existing trace, read only
    LLT_STORE_WRITE,  // create the file, or append runs to an existing trace
};

struct llt_store;
struct sqlite3;

// Opens a trace. Never modifies a file that is not an lltrace trace, or one of a newer schema.
// caller frees with llt_store_close()
int  llt_store_open(const char * path, enum llt_store_mode mode, struct llt_store ** out);
void llt_store_close(struct llt_store * st);
// the underlying database, for queries; borrowed, lives with st
struct sqlite3 * llt_store_db(struct llt_store * st);
// id of the last run in the trace, or LLT_ENOTFOUND
int  llt_store_last_run(struct llt_store * st);

// ---- capture: the tracer -----------------------------------------------------------------

enum llt_level {
    LLT_LEVEL_GRAPH,  // record every node; decline every post call: scheduling untouched
    LLT_LEVEL_TIMING, // also observe every computing node and time it
    LLT_LEVEL_COUNT,
};
const char * llt_level_name(enum llt_level level);
int          llt_level_from_name(const char * name); // -1 if unknown

enum llt_run_status {
    LLT_RUN_RUNNING,
    LLT_RUN_OK,
    LLT_RUN_INTERRUPTED,
    LLT_RUN_ERROR,
    LLT_RUN_STATUS_COUNT,
};
const char * llt_run_status_name(enum llt_run_status status);

struct llt_tracer_params {
    enum llt_level level;
    const char *   model_path;  // the GGUF the model was loaded from (for the weight registry)
    const char *   prompt;      // stored with the run, may be NULL
    const char *   params_json; // run parameters as a JSON object, may be NULL
};

struct llt_tracer_params llt_tracer_default_params(void);

struct llt_tracer;

// Creates a tracer that writes one run into an open store (the store must outlive it).
// caller frees with llt_tracer_free()
int  llt_tracer_init(struct llt_store * st, struct llt_tracer_params params, struct llt_tracer ** out);
void llt_tracer_free(struct llt_tracer * tr);

// Installs the eval callback in cparams before llama_init_from_model(); a callback already set
// there keeps working (it is chained and sees every node it asks for).
void llt_tracer_attach(struct llt_tracer * tr, struct llama_context_params * cparams);

// Starts the run record: model info, weight registry, system info.
int  llt_tracer_begin(struct llt_tracer * tr, const struct llama_model * model, struct llama_context * ctx);

// llama_decode() with the step recorded around it: tokens in, positions, wall time.
// Returns what llama_decode returned. The step's rows go to the tracer's writer thread, which
// commits them right away; llt_tracer_sync() waits until they are in the file.
int32_t llt_decode(struct llt_tracer * tr, struct llama_context * ctx, struct llama_batch batch);

// Waits until every step recorded so far is committed to the trace.
int  llt_tracer_sync(struct llt_tracer * tr);

// Records a token chosen from the logits of the last step.
void llt_tracer_sampled(struct llt_tracer * tr, llama_token token);

// Ends the run: status, generated text (may be NULL) and totals.
int  llt_tracer_end(struct llt_tracer * tr, enum llt_run_status status, const char * output);

int          llt_tracer_run_id(const struct llt_tracer * tr);
// the first tracing failure, or NULL while tracing is healthy (borrowed, lives with tr)
const char * llt_tracer_error(const struct llt_tracer * tr);

struct llt_tracer_stats {
    int64_t n_steps;
    int64_t n_nodes_last;   // nodes in the last step's graph
    int64_t n_graphs;       // distinct graph structures stored
    int64_t n_weights;      // weights in the registry
    int64_t n_weights_read; // weights that were a source of some node in the last step
};
struct llt_tracer_stats llt_tracer_get_stats(const struct llt_tracer * tr);

// ---- generate: a plain llama.cpp generation loop, traced or not --------------------------

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
    volatile sig_atomic_t * stop; // set to non-zero to end after the current step; may be NULL
    int32_t        parity_top_k; // > 0: keep the top-k logits of every generated step (result.parity)
    // called with each generated piece of text; may be NULL
    void (*on_piece)(const char * piece, void * user_data);
    void * user_data;
};

#define LLT_PARITY_MAX_K 64

// one generated step for greedy-decode parity: the chosen token and the k largest logits
struct llt_parity_step {
    int32_t     step;                      // generated token index, from 0
    int32_t     pos;                       // position the token will take
    llama_token token;                     // the chosen token
    char        piece[64];                 // its text (truncated)
    int32_t     k;
    llama_token ids[LLT_PARITY_MAX_K];     // top-k token ids, largest logit first
    float       logits[LLT_PARITY_MAX_K];
};

struct llt_gen_params llt_gen_default_params(void);

struct llt_gen_result {
    llama_token * tokens;     // prompt tokens then generated tokens
    int32_t       n_prompt;
    int32_t       n_gen;
    char *        text;       // generated text
    int64_t       t_load_ns;
    int64_t       t_prompt_ns;
    int64_t       t_gen_ns;
    bool          interrupted;
    struct llt_parity_step * parity; // n_gen entries when parity_top_k > 0
    int           run_id;     // run written, or 0 untraced
    struct llt_tracer_stats stats;
    char          trace_error[256]; // tracing failure, "" if none
};

// Loads the model, generates, frees everything. With st != NULL the run is traced into st.
// result: caller frees with llt_gen_result_free()
int  llt_generate(const struct llt_gen_params * p, struct llt_store * st, struct llt_gen_result * result);
void llt_gen_result_free(struct llt_gen_result * result);

// ---- built-in models ---------------------------------------------------------------------

struct llt_preset {
    const char * name;
    int32_t n_embd, n_layer, n_head, n_head_kv, n_ff, n_ctx_train;
};

// known presets: "tiny", "small"; NULL if unknown (borrowed, static)
const struct llt_preset * llt_preset_find(const char * name);
const char *              llt_preset_names(void); // "tiny, small"

// Writes a deterministic llama model of a preset in a llama file type (LLAMA_FTYPE_*).
// Same preset and type give byte-identical files. vocab_path: a GGUF with the tokenizer
// (NULL = the llama-spm vocab of the llama.cpp build).
int  llt_mkmodel(const char * preset, int ftype, const char * vocab_path, const char * out_path);

// Path of a built-in model in the cache, generated on first use. The string is malloc'ed:
// caller frees with free().
int  llt_default_model(const char * preset, int ftype, char ** out_path);

// Cache folder: $LLTRACE_CACHE or ~/.cache/lltrace. malloc'ed: caller frees with free().
char * llt_cache_dir(void);

// ---- versions ----------------------------------------------------------------------------

const char * llt_version(void);    // lltrace version
const char * llt_llama_tag(void);  // tag of the llama.cpp lltrace was built against

// Silences llama.cpp's log unless verbose; errors are kept for llt_last_error().
void llt_log_init(bool verbose);

#ifdef __cplusplus
}
#endif
