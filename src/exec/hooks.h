// Between the preload library (shim.c, liblltrace-preload.so) and the engine (engine.c,
// liblltrace-exec.so): the shim interposes llama.cpp's API in the traced program and calls
// these hooks; the engine holds lltrace itself. Private to lltrace exec.
//
// Two libraries because the engine calls llama.cpp and ggml, which must be the program's own
// copies: the shim is loaded before the program's libllama, and names none of its symbols;
// once libllama is loaded (the first interposed call) the shim makes it and libggml* global
// (node-llama-cpp loads them RTLD_LOCAL) and loads the engine, whose references to llama.cpp
// and ggml then bind to them. No second copy of llama.cpp is ever loaded.
#pragma once

#include "llama.h"

#define LLT_EXEC_HOOKS_VERSION 2

typedef int32_t (*llt_decode_fn)(struct llama_context * ctx, struct llama_batch batch);

struct llt_exec_hooks {
    int version; // LLT_EXEC_HOOKS_VERSION
    // a model was loaded from path
    void (*model_loaded)(const struct llama_model * model, const char * path);
    void (*model_freed)(const struct llama_model * model);
    // before a context is made: chains lltrace's callbacks into params; returns what
    // context_made takes (NULL: not traced)
    void * (*context_begin)(const struct llama_model * model, struct llama_context_params * params);
    // after: ctx is NULL when llama.cpp refused the context
    void (*context_made)(void * pending, struct llama_context * ctx);
    // before llama_free(ctx): the context's run ends
    void (*context_freed)(struct llama_context * ctx);
    // after llama_free(ctx): the tracer its callbacks pointed to goes
    void (*context_gone)(struct llama_context * ctx);
    // llama_decode(), calling real
    int32_t (*decode)(struct llama_context * ctx, struct llama_batch batch, llt_decode_fn real);
    // the program chose token from the output row idx of ctx (llama_sampler_sample(), or its
    // own samplers' selection, or a backend sampler's)
    void (*sampled)(struct llama_context * ctx, int32_t idx, llama_token token);
    // llama_memory_clear(mem) was called: the memory of a context (llama_get_memory); unread:
    // no output was read since the thread's last decode call
    void (*memory_cleared)(llama_memory_t mem, bool unread);
};

// the engine's one exported function; NULL when it cannot trace (it said why on stderr)
typedef const struct llt_exec_hooks * (*llt_exec_engine_fn)(void);
#define LLT_EXEC_ENGINE_SYMBOL "llt_exec_engine"
