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
#include <stdio.h>
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
};

struct llt_values_params llt_values_default_params(void);

// LLT_OK if pat is a usable dump pattern (a glob, or a regex after "re:"), else LLT_EINVAL
int llt_pattern_check(const char * pat);

struct llt_tracer_params {
    enum llt_level level;
    struct llt_values_params values;
    const char *   model_path;  // the GGUF the model was loaded from (for the weight registry)
    const char *   prompt;      // stored with the run, may be NULL
    const char *   params_json; // run parameters as a JSON object, may be NULL
    int64_t        t_tokenize_ns; // time the caller spent tokenizing the prompt, stored with the run
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

// Starts the run record: model info, weight registry, system info.
int  llt_tracer_begin(struct llt_tracer * tr, const struct llama_model * model, struct llama_context * ctx);

// llama_decode() with the step recorded around it: tokens in, positions, wall time.
// Returns what llama_decode returned. The step's rows go to the tracer's writer thread, which
// commits them right away; llt_tracer_sync() waits until they are in the file.
int32_t llt_decode(struct llt_tracer * tr, struct llama_context * ctx, struct llama_batch batch);

// Waits until every step recorded so far is committed to the trace.
int  llt_tracer_sync(struct llt_tracer * tr);

// Records a token chosen from the logits of the last step, right after choosing it (the time
// since the decode call returned is the step's sampling time).
void llt_tracer_sampled(struct llt_tracer * tr, llama_token token);

struct llt_parity_step;
// Records the top-k logits of a generated step (table parity).
void llt_tracer_parity(struct llt_tracer * tr, const struct llt_parity_step * step);

// Ends the run: status, generated text (may be NULL) and totals.
int  llt_tracer_end(struct llt_tracer * tr, enum llt_run_status status, const char * output);

int          llt_tracer_run_id(const struct llt_tracer * tr);
// the first tracing failure, or NULL while tracing is healthy (borrowed, lives with tr)
const char * llt_tracer_error(const struct llt_tracer * tr);

// with break_on_nan: a description of the first node that produced a NaN or Inf (its op, name,
// layer, step, sources and their statistics), or NULL; generation should stop when set
const char * llt_tracer_nan_report(const struct llt_tracer * tr);

// the GGUF the run's tensor dump goes to (written by llt_tracer_end), or NULL (borrowed, lives with tr)
const char * llt_tracer_dump_path(const struct llt_tracer * tr);

struct llt_tracer_stats {
    int64_t n_steps;
    int64_t n_nodes_last;   // nodes in the last step's graph
    int64_t n_graphs;       // distinct graph structures stored
    int64_t n_weights;      // weights in the registry
    int64_t n_weights_read; // weights that were a source of some node in the last step
    int64_t n_dumped;       // tensors written to the dump
    int64_t timing_observed_from; // levels timing/profile: the step from which nodes were timed by
                                  // observing them, the CPU backend's stamps having failed; -1 never
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
    struct llt_values_params values;
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
    bool          stopped_on_nan;   // break_on_nan stopped the run
    bool          flash_attn_off;   // checkpoints asked for attention probabilities: flash attention was turned off
    char          nan_report[1024]; // where the NaN/Inf appeared, when stopped_on_nan
    char          dump_path[1024];  // the tensor dump written, "" if none
    struct llt_parity_step * parity; // n_gen entries when parity_top_k > 0
    int           run_id;     // run written, or 0 untraced
    struct llt_tracer_stats stats;
    char          trace_error[256]; // tracing failure, "" if none
};

// Loads the model, generates, frees everything. With st != NULL the run is traced into st.
// result: caller frees with llt_gen_result_free()
int  llt_generate(const struct llt_gen_params * p, struct llt_store * st, struct llt_gen_result * result);
void llt_gen_result_free(struct llt_gen_result * result);

// ---- parity ------------------------------------------------------------------------------
//
// A parity file is JSON Lines, one object per generated step, in seed 004's shape:
//   {"step":N,"token":ID,"top_k":[[ID,LOGIT],...],"piece":"text","pos":P}
// "piece" and "pos" are optional (other engines leave them out; pos is then -1); other keys
// are ignored. Steps count up by one from the first line. A trace keeps the same records in
// table `parity`. docs/trace-format.md, "Parity", has the comparison's rules.

#define LLT_PARITY_LINE_MAX 8192 // a formatted line is shorter than this

// The k (<= LLT_PARITY_MAX_K) largest of n logits into out->ids/logits/k, largest first; ties
// keep the lower id first.
void llt_parity_top_k(const float * logits, int32_t n, int32_t k, struct llt_parity_step * out);

// One step as a parity line without the newline; returns the length it needs, like snprintf.
int  llt_parity_format(const struct llt_parity_step * s, char * buf, size_t size);
// The top-k list alone, [[ID,LOGIT],...] (the parity table's top_k column); like snprintf.
int  llt_parity_format_top_k(const struct llt_parity_step * s, char * buf, size_t size);
// Writes n steps as a parity file, replacing it.
int  llt_parity_write(const char * path, const struct llt_parity_step * steps, int32_t n);
// Parses one parity line. A top_k of more than LLT_PARITY_MAX_K entries keeps the largest;
// top_k is sorted, largest logit first. The error names the column, not the line.
int  llt_parity_parse(const char * line, struct llt_parity_step * out);
// Reads a parity file; a malformed line fails naming its number. caller frees *steps with free()
int  llt_parity_read(const char * path, struct llt_parity_step ** steps, int32_t * n_steps);
// Reads the parity records of a run (0: the last run). caller frees *steps with free()
int  llt_parity_read_trace(struct llt_store * st, int run_id, struct llt_parity_step ** steps, int32_t * n_steps);

// s as a JSON string; bytes that are not UTF-8 (a token cut inside a character) become U+FFFD
void llt_json_write_string(FILE * f, const char * s);
// length of the valid UTF-8 sequence at s (RFC 3629), 0 if s does not start one
int  llt_utf8_len(const unsigned char * s);

enum llt_parity_verdict {
    LLT_PARITY_IDENTICAL, // same chosen tokens, same top-k ids and logits at every step
    LLT_PARITY_MATCH,     // same chosen tokens; the logits differ
    LLT_PARITY_DIVERGED,  // the chosen tokens differ at first_diff
    LLT_PARITY_LENGTH,    // no difference in the common steps, but one side has more steps
    LLT_PARITY_VERDICT_COUNT,
};
const char * llt_parity_verdict_name(enum llt_parity_verdict v); // "identical", "match", ...

// one step of a comparison; the figures are set only when compared
struct llt_parity_cmp {
    int32_t     step;         // index in both sequences, from 0
    llama_token token_a, token_b;
    bool        compared;     // both sides were fed the same tokens before this step
    bool        same_top1;    // the top-1 ids agree
    bool        logits_equal; // the same ids in the same order with the same logits
    int32_t     overlap;      // ids in both top-k lists
    double      max_diff;     // max |logit A - logit B| over the shared ids; NAN if none
    double      kl;           // KL(A‖B) of the top-k softmaxes, nats
};

struct llt_parity_report {
    int32_t k;              // top-k compared: min(k asked, the shortest top_k of the common steps)
    int32_t n_a, n_b;       // steps of each side
    int32_t n_compared;     // steps compared: the common ones up to and including first_diff
    int32_t first_diff;     // first step whose chosen tokens differ, -1 if none
    int32_t n_top1;         // compared steps whose top-1 ids agree
    double  mean_overlap;   // mean of overlap / k over the compared steps
    double  max_diff;       // largest max_diff of the compared steps, NAN if none
    int32_t max_diff_step;  // -1 if none
    double  mean_kl, max_kl;
    int32_t max_kl_step;
    bool    pos_differs;    // both sides have positions and step 0's differ: different prompts
    enum llt_parity_verdict verdict;
    struct llt_parity_cmp * steps; // min(n_a, n_b) entries
};

// Compares two sequences, top-k up to k (<= 0: all there is). result: caller frees with
// llt_parity_report_free()
int  llt_parity_compare(const struct llt_parity_step * a, int32_t n_a, const struct llt_parity_step * b, int32_t n_b,
                        int32_t k, struct llt_parity_report * result);
void llt_parity_report_free(struct llt_parity_report * r);

// ---- cost: FLOPs and bytes of a graph node -----------------------------------------------
//
// From the op, shapes and sizes alone (docs/trace-format.md, "Cost model"): a multiply-add is
// 2 FLOPs; bytes are what the op reads and writes at least, weights at their quantized size.

#define LLT_COST_MAX_SRC 10

struct llt_cost_tensor {
    int64_t  ne[4]; // elements per dim, ne[0] innermost; all 0 when unknown (graph inputs)
    uint64_t bytes; // ggml_nbytes
};

struct llt_cost_node {
    const char *           op;    // as nodes.op has it, ggml_op_desc: "MUL_MAT", "SWIGLU"
    struct llt_cost_tensor out;
    int32_t                n_src; // sources in slots 0..n_src-1; an empty slot is all 0
    struct llt_cost_tensor src[LLT_COST_MAX_SRC];
};

struct llt_cost {
    uint64_t flops;
    uint64_t bytes_read;
    uint64_t bytes_written;
};

// true if the op has a model; else (or when a shape it needs is unknown) flops is 0 and the
// bytes are those of all sources and the output
bool llt_node_cost(const struct llt_cost_node * node, struct llt_cost * out);

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

// ---- tensor statistics and diffs ---------------------------------------------------------
//
// Element types: every ggml type (enum ggml_type, quantized ones included) plus the
// LLT_TYPE_* kinds that numpy and safetensors have and ggml lacks.

enum llt_xtype {
    LLT_TYPE_U8 = 1000,
    LLT_TYPE_U16,
    LLT_TYPE_U32,
    LLT_TYPE_U64,
    LLT_TYPE_BOOL,
};

const char * llt_type_name(int type);       // "f32", "q4_K", "u8", "bool"; "?" if unknown
int64_t      llt_type_block_size(int type); // elements per block; 0 if unknown
size_t       llt_type_block_bytes(int type); // bytes per block; 0 if unknown

// Converts n elements (a multiple of the block size) of any type to float.
int  llt_to_float(const void * src, int type, int64_t n, float * dst);

struct llt_stats {
    int64_t n;      // elements
    int64_t n_nan;
    int64_t n_pinf;
    int64_t n_ninf;
    int64_t n_zero; // +0 and -0
    double  min, max, mean, std, absmax; // over the finite values, std of the population; 0 if none
};

// Statistics of n elements of any type, dequantized in small chunks (no allocation).
int  llt_stats_compute(const void * data, int type, int64_t n, struct llt_stats * out);

// Relative differences divide by max(|a|, LLT_DIFF_REL_EPS): below it a value counts as zero,
// which is the scale of the default absolute tolerance.
#define LLT_DIFF_REL_EPS       1e-6
#define LLT_DIFF_DEFAULT_ABS   1e-6
#define LLT_DIFF_DEFAULT_REL   1e-4

// B against A, the reference. The metrics are over the pairs where both values are finite.
// Element i is within tolerance if |a-b| <= tol_abs or |a-b| <= tol_rel*|a|; a non-finite
// pair is within tolerance only if both are NaN or both are the same infinity.
struct llt_diff {
    int64_t n;             // elements compared
    int64_t n_finite;      // pairs where both values are finite
    int64_t a_nan, a_inf, b_nan, b_inf;
    int64_t n_exceed;      // elements outside tolerance
    int64_t max_abs_index; // element of the largest |a-b| (ne[0] innermost), -1 if none
    double  max_abs, mean_abs;
    double  max_rel, mean_rel;
    double  rmse;
    double  nmse;          // sum (a-b)^2 / sum a^2; 0 if both are 0, inf if only a is 0
    double  cosine;        // 1 if both are all zero, 0 if one is
};

int  llt_diff_compute(const float * a, const float * b, int64_t n, double tol_abs, double tol_rel,
                      struct llt_diff * out);

// ---- tensor sets: GGUF files, safetensors files, directories of .npy ---------------------
//
// A GGUF dump written by lltrace carries, per tensor, its execution order under this key:
#define LLT_DUMP_KEY_ORDER "lltrace.tensor.%s.order" // integer, by tensor name
#define LLT_DUMP_KEY_LAYER "lltrace.tensor.%s.layer" // integer, optional

enum llt_tensor_set_kind {
    LLT_TENSOR_SET_GGUF,
    LLT_TENSOR_SET_SAFETENSORS,
    LLT_TENSOR_SET_NPY, // a directory of .npy files, or one .npy file
};

struct llt_tensor_info {
    const char * name;       // borrowed, lives with the set
    int32_t      type;       // enum ggml_type or LLT_TYPE_*
    int32_t      n_dims;
    int64_t      ne[4];      // elements per dim, ne[0] innermost: numpy/torch shapes reversed
    int64_t      n_elements;
    uint64_t     bytes;      // size of the data in the file
    uint64_t     offset;     // absolute byte offset of the data in its file
    int64_t      order;      // execution order from the dump's metadata, else -1
    int32_t      layer;      // from the metadata or the name (blk.N., -N, layers.N.), else -1
    bool         fortran;    // .npy stored column-major (reads return it row-major)
};

struct llt_tensor_set;
struct gguf_context;

// Opens a tensor set; reads headers only (data is mapped, not loaded). Checks that every
// tensor lies inside its file. caller frees with llt_tensor_set_close()
int  llt_tensor_set_open(const char * path, struct llt_tensor_set ** out);
void llt_tensor_set_close(struct llt_tensor_set * set);

enum llt_tensor_set_kind       llt_tensor_set_kind (const struct llt_tensor_set * set);
const char *                   llt_tensor_set_kind_name(enum llt_tensor_set_kind kind); // "gguf"...
int                            llt_tensor_set_count(const struct llt_tensor_set * set);
const struct llt_tensor_info * llt_tensor_set_get  (const struct llt_tensor_set * set, int i); // borrowed, lives with set
int                            llt_tensor_set_find (const struct llt_tensor_set * set, const char * name); // index or -1
// the GGUF metadata of a GGUF set, else NULL (borrowed, lives with set)
const struct gguf_context *    llt_tensor_set_gguf (const struct llt_tensor_set * set);
// a metadata integer of a GGUF set (any integer type); false if absent
bool                           llt_tensor_set_meta_int(const struct llt_tensor_set * set, const char * key, int64_t * out);
// the stored bytes of tensor i (info->bytes); NULL and an error if unreadable (borrowed, lives with set)
const void *                   llt_tensor_set_data (struct llt_tensor_set * set, int i);
// tensor i as n_elements floats, dequantized, row-major
int                            llt_tensor_set_read_f32(struct llt_tensor_set * set, int i, float * dst);

// Writes dir/<name>.npy ('<f4', C order, numpy shape = ne reversed) through a temp file and a
// rename. Bytes of name outside [A-Za-z0-9._+#=-] are written %XX; the reader decodes them.
int  llt_npy_write(const char * dir, const char * name, const float * data, const int64_t ne[4], int n_dims);

struct llt_tensor_desc {
    const char * name;
    int32_t      n_dims;
    int64_t      ne[4]; // ne[0] innermost
};
// Writes F32 tensors into one safetensors file through a temp file and a rename; get() fills
// tensor i's data (its elements, row-major) and returns 0 or an LLT_E* code.
int  llt_safetensors_write(const char * path, const struct llt_tensor_desc * tensors, int n,
                           int (*get)(int i, float * dst, void * user_data), void * user_data);

// ---- set diffs and name maps -------------------------------------------------------------

struct llt_name_map;

// Reads a name map (docs/name-maps.md). caller frees with llt_name_map_free()
int  llt_name_map_load(const char * path, struct llt_name_map ** out);
void llt_name_map_free(struct llt_name_map * map);
// sets a variable of the map's transforms ({head_dim}), over what the files say
int  llt_name_map_set_var(struct llt_name_map * map, const char * name, int64_t value);

struct llt_diff_params {
    double       tol_abs;
    double       tol_rel;
    int32_t      layer;     // only this layer; -1: all
    const char * name_glob; // only tensors whose A or B name matches (fnmatch); NULL: all
    const struct llt_name_map * map; // NULL: tensors match by equal names
};

struct llt_diff_params llt_diff_default_params(void);

enum llt_diff_status {
    LLT_DIFF_WITHIN,         // compared, every element within tolerance
    LLT_DIFF_EXCEEDS,        // compared, some element outside tolerance
    LLT_DIFF_SHAPE_MISMATCH, // not compared
    LLT_DIFF_ONLY_A,
    LLT_DIFF_ONLY_B,
    LLT_DIFF_STATUS_COUNT,
};
const char * llt_diff_status_name(enum llt_diff_status status);

struct llt_diff_entry {
    enum llt_diff_status status;
    int32_t         a, b;       // tensor indices in A and B; -1 on the missing side
    int32_t         layer;
    int64_t         order;      // graph order (A's, else B's), else A's or B's file order
    int64_t         ne_a[4], ne_b[4]; // ne_b after the map's transforms
    int32_t         type_a, type_b;
    const char *    transform;  // the map's transforms, "" if none (borrowed, lives with the map)
    struct llt_diff d;          // when compared
};

struct llt_set_diff {
    struct llt_diff_entry * entries; // A's tensors in A's order, then the ones only in B
    int32_t n_entries;
    int32_t n_compared, n_within, n_exceed, n_shape_mismatch, n_type_mismatch, n_only_a, n_only_b;
    int32_t n_unmapped;      // tensors no map line names (ignored)
    double  max_abs, max_rel, mean_cosine; // over the compared tensors
    int32_t first_exceed;    // entry of the first tensor in order that exceeds tolerance, -1 if none
    bool    graph_order;     // order is the dump's execution order (else file order)
};

// Compares the tensors of B with those of A, matched by name (or through the map), after
// dequantization. Holds two tensors as floats at a time. caller frees with llt_set_diff_free()
int  llt_set_diff(struct llt_tensor_set * a, struct llt_tensor_set * b, const struct llt_diff_params * p,
                  struct llt_set_diff ** out);
void llt_set_diff_free(struct llt_set_diff * sd);

// ---- versions ----------------------------------------------------------------------------

const char * llt_version(void);    // lltrace version
const char * llt_llama_tag(void);  // tag of the llama.cpp lltrace was built against

// Silences llama.cpp's log unless verbose; errors are kept for llt_last_error().
void llt_log_init(bool verbose);

#ifdef __cplusplus
}
#endif
