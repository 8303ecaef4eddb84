// lltrace/models.h: built-in deterministic models. Part of lltrace.h.
#pragma once

#include "lltrace/core.h"

#ifdef __cplusplus
extern "C" {
#endif

struct llt_preset {
    const char * name;
    int32_t n_embd, n_layer, n_head, n_head_kv, n_ff, n_ctx_train;
    bool trained; // taught a task by lltrace ("sorter": sorting letters), not random weights
};

// known presets: "sorter", "tiny", "small"; NULL if unknown (borrowed, static)
const struct llt_preset * llt_preset_find(const char * name);
const char *              llt_preset_names(void); // "sorter, tiny, small"

// Writes a deterministic llama model of a preset in a llama file type (LLAMA_FTYPE_*).
// Same preset and type give byte-identical files (for the trained "sorter": on the same
// machine and llama.cpp build; training takes a minute or two). vocab_path: a GGUF with the
// tokenizer (NULL = the llama-spm vocab of the llama.cpp build; the sorter has its own).
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
