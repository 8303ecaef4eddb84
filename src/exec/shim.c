// The preload library of lltrace exec (liblltrace-preload.so): loaded into the traced program
// by LD_PRELOAD, it interposes llama.cpp's public API and hands each call to the engine.
//
// It names no llama.cpp or ggml symbol (only the types of llama.h): every real function is
// looked up at its first call, with dlsym(RTLD_NEXT) where libllama is in the global scope, or
// in the loaded libllama itself where the program opened it RTLD_LOCAL (node-llama-cpp), found
// among the loaded objects. libllama's own calls to its API (llama_new_context_with_model calls
// llama_init_from_model) pass through here too: a per-thread depth lets them through untouched.
//
// Nothing here may change what the program computes: when the engine cannot load, or libllama
// is not found, the calls go straight to llama.cpp and one line says why on stderr.
#define _GNU_SOURCE // RTLD_NEXT, RTLD_DEFAULT, dl_iterate_phdr, program_invocation_short_name
#include "exec/hooks.h"

// the deprecated entry points are interposed on purpose: old programs still call them
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

#include <dlfcn.h>
#include <errno.h>
#include <link.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct llt_exec_hooks * hooks; // NULL: not tracing
static pthread_once_t engine_once = PTHREAD_ONCE_INIT;
static __thread int depth;                  // inside an interposed call on this thread
// Whether the program read an output (logits, embeddings, a sampled token) since its last
// decode call on this thread: a decode nobody read, then its memory cleared, was a warm-up or
// a probe (llama-completion and llama-server do both), not an embedding program's batch.
static __thread bool outputs_read;

static void say(const char * fmt, const char * a, const char * b) {
    fprintf(stderr, "lltrace: ");
    fprintf(stderr, fmt, a, b);
    fputc('\n', stderr);
}

// ---- the program's libllama and libggml -----------------------------------------------------

static bool is_llama_lib(const char * path, const char * prefix) {
    const char * base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const size_t n = strlen(prefix);
    return strncmp(base, prefix, n) == 0 && (base[n] == '.' || base[n] == '-');
}

struct found_lib { char path[4096]; };

static int find_libllama(struct dl_phdr_info * info, size_t size, void * data) {
    (void) size;
    struct found_lib * f = data;
    // libllama.so, libllama.so.0, libllama.v0.5.0.so; not libllama-common.so
    const char * base = strrchr(info->dlpi_name, '/');
    base = base ? base + 1 : info->dlpi_name;
    if (strncmp(base, "libllama.", 9) != 0) return 0;
    snprintf(f->path, sizeof(f->path), "%s", info->dlpi_name);
    return 1;
}

// makes a loaded library's symbols global, so that the engine binds to it
static int promote(struct dl_phdr_info * info, size_t size, void * data) {
    (void) size;
    (void) data;
    if (info->dlpi_name[0] && (is_llama_lib(info->dlpi_name, "libllama") || is_llama_lib(info->dlpi_name, "libggml") ||
                               is_llama_lib(info->dlpi_name, "libggml-base") || is_llama_lib(info->dlpi_name, "libggml-cpu"))) {
        dlopen(info->dlpi_name, RTLD_NOLOAD | RTLD_LAZY | RTLD_GLOBAL); // a reference the process keeps
    }
    return 0;
}

// the loaded libllama, found among the loaded objects; NULL if none
static void * libllama(void) {
    static void * handle;
    if (!handle) {
        struct found_lib f = { "" };
        dl_iterate_phdr(find_libllama, &f);
        if (f.path[0]) handle = dlopen(f.path, RTLD_NOLOAD | RTLD_LAZY);
    }
    return handle;
}

static void * real(const char * name) {
    void * f = dlsym(RTLD_NEXT, name);
    if (!f && libllama()) f = dlsym(libllama(), name);
    if (!f) say("%s%s not found in the program's libllama: cannot go on", name, "");
    if (!f) abort(); // the program called it: without it, it cannot run at all
    return f;
}

#define REAL(name) \
    static __typeof__(name) * real_fn; \
    if (!real_fn) real_fn = (__typeof__(name) *) real(#name)

// ---- the engine ----------------------------------------------------------------------------

static void load_engine(void) {
    if (!libllama()) {
        say("%s%s", "no libllama was found in this process: not tracing", "");
        return;
    }
    dl_iterate_phdr(promote, NULL);
    char path[4096];
    const char * env = getenv("LLTRACE_ENGINE");
    if (env && *env) {
        snprintf(path, sizeof(path), "%s", env);
    } else {
        Dl_info self;
        if (!dladdr((void *) load_engine, &self) || !self.dli_fname) {
            say("%s%s", "cannot tell where the preload library is: set LLTRACE_ENGINE", "");
            return;
        }
        const char * slash = strrchr(self.dli_fname, '/');
        snprintf(path, sizeof(path), "%.*sliblltrace-exec.so", slash ? (int) (slash - self.dli_fname + 1) : 0, self.dli_fname);
    }
    void * engine = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!engine) {
        say("cannot load the engine: %s%s; not tracing", dlerror(), "");
        return;
    }
    llt_exec_engine_fn entry = (llt_exec_engine_fn) dlsym(engine, LLT_EXEC_ENGINE_SYMBOL);
    const struct llt_exec_hooks * h = entry ? entry() : NULL;
    if (h && h->version != LLT_EXEC_HOOKS_VERSION) {
        say("%s%s is of another lltrace version: not tracing", path, "");
        h = NULL;
    }
    hooks = h;
}

static const struct llt_exec_hooks * engine(void) {
    pthread_once(&engine_once, load_engine);
    return hooks;
}

// A program with llama.cpp linked in statically calls its own copy: nothing here is called.
// Said at start when the program's own llama_decode comes before this one.
// (Not `f != llama_decode`: this library's own reference to llama_decode resolves to the
// program's too.)
__attribute__((constructor)) static void check_static(void) {
    void * f = dlsym(RTLD_DEFAULT, "llama_decode");
    Dl_info self, where;
    if (f && dladdr((void *) check_static, &self) && dladdr(f, &where) && where.dli_fbase != self.dli_fbase &&
        where.dli_fname && !is_llama_lib(where.dli_fname, "libllama")) {
        say("%s has llama.cpp linked in statically (its own llama_decode, in %s): it cannot be traced",
            program_invocation_short_name, where.dli_fname);
    }
}

// ---- llama.cpp's API, interposed ----------------------------------------------------------

typedef struct llama_model * (*load_fn)(const char * path, struct llama_model_params params);
typedef void (*free_fn)(struct llama_model * model);

static struct llama_model * load(load_fn fn, const char * path, struct llama_model_params params) {
    if (depth) return fn(path, params);
    depth++;
    struct llama_model * m = fn(path, params);
    depth--;
    if (m && engine()) hooks->model_loaded(m, path);
    return m;
}

static void unload(free_fn fn, struct llama_model * model) {
    if (!depth && model && engine()) hooks->model_freed(model);
    depth++;
    fn(model);
    depth--;
}

struct llama_model * llama_model_load_from_file(const char * path, struct llama_model_params params) {
    REAL(llama_model_load_from_file);
    return load(real_fn, path, params);
}

struct llama_model * llama_load_model_from_file(const char * path, struct llama_model_params params) {
    REAL(llama_load_model_from_file);
    return load(real_fn, path, params);
}

struct llama_model * llama_model_load_from_splits(const char ** paths, size_t n_paths, struct llama_model_params params) {
    REAL(llama_model_load_from_splits);
    if (depth) return real_fn(paths, n_paths, params);
    depth++;
    struct llama_model * m = real_fn(paths, n_paths, params);
    depth--;
    if (m && n_paths > 0 && engine()) hooks->model_loaded(m, paths[0]);
    return m;
}

void llama_model_free(struct llama_model * model) {
    REAL(llama_model_free);
    unload(real_fn, model);
}

void llama_free_model(struct llama_model * model) {
    REAL(llama_free_model);
    unload(real_fn, model);
}

static struct llama_context * make_context(struct llama_context * (*fn)(struct llama_model *, struct llama_context_params),
                                           struct llama_model * model, struct llama_context_params params) {
    if (depth || !engine()) return fn(model, params);
    void * pending = hooks->context_begin(model, &params);
    depth++;
    struct llama_context * ctx = fn(model, params);
    depth--;
    hooks->context_made(pending, ctx);
    return ctx;
}

struct llama_context * llama_init_from_model(struct llama_model * model, struct llama_context_params params) {
    REAL(llama_init_from_model);
    return make_context(real_fn, model, params);
}

struct llama_context * llama_new_context_with_model(struct llama_model * model, struct llama_context_params params) {
    REAL(llama_new_context_with_model);
    return make_context(real_fn, model, params);
}

void llama_free(struct llama_context * ctx) {
    REAL(llama_free);
    const bool traced = !depth && ctx && engine();
    if (traced) hooks->context_freed(ctx);
    depth++;
    real_fn(ctx);
    depth--;
    if (traced) hooks->context_gone(ctx);
}

int32_t llama_decode(struct llama_context * ctx, struct llama_batch batch) {
    REAL(llama_decode);
    if (depth || !engine()) return real_fn(ctx, batch);
    outputs_read = false;
    return hooks->decode(ctx, batch, real_fn);
}

static void read_outputs(void) { if (!depth) outputs_read = true; }

void llama_memory_clear(llama_memory_t mem, bool data) {
    REAL(llama_memory_clear);
    depth++;
    real_fn(mem, data);
    depth--;
    if (!depth && mem && engine()) hooks->memory_cleared(mem, !outputs_read);
}

float * llama_get_logits(struct llama_context * ctx) {
    REAL(llama_get_logits);
    read_outputs();
    return real_fn(ctx);
}

float * llama_get_embeddings(struct llama_context * ctx) {
    REAL(llama_get_embeddings);
    read_outputs();
    return real_fn(ctx);
}

float * llama_get_embeddings_ith(struct llama_context * ctx, int32_t i) {
    REAL(llama_get_embeddings_ith);
    read_outputs();
    return real_fn(ctx, i);
}

float * llama_get_embeddings_seq(struct llama_context * ctx, llama_seq_id seq_id) {
    REAL(llama_get_embeddings_seq);
    read_outputs();
    return real_fn(ctx, seq_id);
}

// ---- tokens the program chose -------------------------------------------------------------

// Programs sampling through common_sampler (llama-completion, llama-server) read the output
// row idx (llama_get_sampled_token_ith: a backend sampler chose; else llama_get_logits_ith),
// apply their samplers to it and take the token the chain selected: the row the thread read
// last is the one its next selection is made from.
static __thread struct llama_context * row_ctx;
static __thread int32_t                row_idx;

float * llama_get_logits_ith(struct llama_context * ctx, int32_t i) {
    REAL(llama_get_logits_ith);
    read_outputs();
    if (!depth) {
        row_ctx = ctx;
        row_idx = i;
    }
    return real_fn(ctx, i);
}

llama_token llama_get_sampled_token_ith(struct llama_context * ctx, int32_t i) {
    REAL(llama_get_sampled_token_ith);
    depth++;
    const llama_token token = real_fn(ctx, i);
    depth--;
    if (depth) return token;
    outputs_read = true;
    row_ctx = ctx;
    row_idx = i;
    if (token != LLAMA_TOKEN_NULL && ctx && engine()) hooks->sampled(ctx, i, token);
    return token;
}

// the program's own call (not one inside llama_sampler_sample): a selection is a token chosen
// from the row read last (a grammar's check of one token selects nothing)
void llama_sampler_apply(struct llama_sampler * smpl, llama_token_data_array * cur_p) {
    REAL(llama_sampler_apply);
    depth++;
    real_fn(smpl, cur_p);
    depth--;
    if (depth || !cur_p || cur_p->selected < 0 || (size_t) cur_p->selected >= cur_p->size || !row_ctx) return;
    if (engine()) hooks->sampled(row_ctx, row_idx, cur_p->data[cur_p->selected].id);
}

llama_token llama_sampler_sample(struct llama_sampler * smpl, struct llama_context * ctx, int32_t idx) {
    REAL(llama_sampler_sample);
    depth++;
    const llama_token token = real_fn(smpl, ctx, idx);
    depth--;
    if (depth) return token;
    outputs_read = true;
    if (ctx && engine()) hooks->sampled(ctx, idx, token);
    return token;
}
