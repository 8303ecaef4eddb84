// lltrace/models.h: built-in deterministic models. Part of lltrace.h.
#pragma once

#include "lltrace/core.h"

#ifdef __cplusplus
extern "C" {
#endif

struct llt_preset {
    const char * name;
    int32_t n_embd, n_layer, n_head, n_head_kv, n_ff, n_ctx_train;
    const char * arch;       // general.architecture: llama, gpt2, qwen3, gemma3, qwen3moe, bitnet
    int32_t head_dim;        // key/value length per head; 0: n_embd / n_head
    int32_t n_expert;        // experts per MoE layer (n_ff is then each expert's); 0: dense
    int32_t n_expert_used;   // experts each token uses
    int32_t n_swa;           // sliding window of the local attention layers; 0: none
    int32_t swa_pattern;     // every swa_pattern-th layer is global, the others local
    bool trained;            // taught a task by lltrace ("sorter": sorting letters), not random weights
};

// known presets: "sorter" (the trained demo model), "tiny", "small" (llama), "tiny-<arch>" for
// the other architectures; NULL if unknown (borrowed, static)
const struct llt_preset * llt_preset_find(const char * name);
const char *              llt_preset_names(void); // "sorter, tiny, small, tiny-gpt2, ..."

// Writes a deterministic model of a preset in a llama file type (LLAMA_FTYPE_*), holding only
// the tensors a real checkpoint of its architecture has. Same preset and type give
// byte-identical files (for the trained "sorter": on the same machine and llama.cpp build;
// training takes about a minute, and its other types quantize the F32 model of the cache,
// trained there first if need be). vocab_path: a GGUF with the tokenizer (NULL: the vocab of the
// architecture's family, ggml-vocab-<family>.gguf, from $LLTRACE_VOCAB_DIR or the llama.cpp
// build; for llama $LLTRACE_VOCAB first; the sorter has its own).
int  llt_mkmodel(const char * preset, int ftype, const char * vocab_path, const char * out_path);

// Path of a built-in model in the cache, generated on first use (seconds for "small": ask
// llt_default_model_cached() first to tell the user). The string is malloc'ed: caller frees
// with free().
int  llt_default_model(const char * preset, int ftype, char ** out_path);
// true if the built-in model is already in the cache, so llt_default_model() will not make it
bool llt_default_model_cached(const char * preset, int ftype);

// Cache folder: $LLTRACE_CACHE or ~/.cache/lltrace. malloc'ed: caller frees with free().
char * llt_cache_dir(void);

#ifdef __cplusplus
}
#endif
