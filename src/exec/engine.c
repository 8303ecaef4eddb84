// The engine of lltrace exec (liblltrace-exec.so): inside the traced program, one run per
// context that decodes, in the trace LLTRACE_OUTPUT names.
//
// Each context made gets its own tracer (its callbacks chained in front of the program's own)
// and its own connection to the trace, so contexts decoding on several threads at once never
// share a transaction. The run begins at the context's first decode call, so the contexts
// programs make only to measure memory leave no run; it ends when the context is freed, or
// when the program exits without freeing it. Whatever fails here stops tracing with one line
// on stderr and the reason in the trace; the program computes and prints as it would untraced.
#define _GNU_SOURCE // program_invocation_short_name
#include "exec/hooks.h"
#include "core/internal.h"
#include "lltrace.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct model_entry {
    const struct llama_model * model;
    char *                     path; // absolute
};

struct ctx_entry {
    struct llama_context *     ctx;
    const struct llama_model * model;
    struct llt_store *         st;
    struct llt_tracer *        tr;
    int                        ordinal;  // contexts the process made, from 1
    bool                       begun;    // the run began (first decode)
    bool                       failed;   // tracing stopped; said on stderr
    bool                       said_nan;
    bool                       said;     // without a tracer (a model made in memory), and said so
};

static struct {
    pthread_mutex_t              lock;    // the tables below
    struct llt_exec_config *     cfg;
    struct model_entry *         models;
    int32_t                      n_models, cap_models;
    struct ctx_entry **          ctxs;
    int32_t                      n_ctxs, cap_ctxs;
    int                          n_made;
} E = { .lock = PTHREAD_MUTEX_INITIALIZER };

static __thread struct ctx_entry * dying; // between llama_free's two hooks, on its thread

static void say(const char * fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char * fmt, ...) {
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    fprintf(stderr, "lltrace: %s\n", line);
}

// ---- models --------------------------------------------------------------------------------

static void model_loaded(const struct llama_model * model, const char * path) {
    char * abs = llt_abs_path(path);
    pthread_mutex_lock(&E.lock);
    if (abs && llt_grow((void **) &E.models, &E.cap_models, E.n_models + 1, sizeof(struct model_entry))) {
        E.models[E.n_models++] = (struct model_entry) { model, abs };
        abs = NULL;
    }
    pthread_mutex_unlock(&E.lock);
    free(abs);
}

static void model_freed(const struct llama_model * model) {
    pthread_mutex_lock(&E.lock);
    for (int32_t i = 0; i < E.n_models; i++) {
        if (E.models[i].model != model) continue;
        free(E.models[i].path);
        E.models[i] = E.models[--E.n_models];
        break;
    }
    pthread_mutex_unlock(&E.lock);
}

// the model's path, copied into buf; false if it was not loaded from a file lltrace saw
static bool model_path(const struct llama_model * model, char * buf, size_t size) {
    bool found = false;
    pthread_mutex_lock(&E.lock);
    for (int32_t i = 0; i < E.n_models && !found; i++) {
        if (E.models[i].model == model) found = (size_t) snprintf(buf, size, "%s", E.models[i].path) < size;
    }
    pthread_mutex_unlock(&E.lock);
    return found;
}

// ---- contexts ------------------------------------------------------------------------------

static void entry_free(struct ctx_entry * e) {
    if (!e) return;
    llt_tracer_free(e->tr);
    llt_store_close(e->st);
    free(e);
}

static void * context_begin(const struct llama_model * model, struct llama_context_params * params) {
    struct ctx_entry * e = calloc(1, sizeof(*e));
    if (!e) return NULL;
    char path[4096];
    if (!model_path(model, path, sizeof(path))) {
        // a model made in memory (llama_model_init_from_user: programs measure memory so); its
        // context, without a tracer, is said only if it decodes
        return e;
    }
    pthread_mutex_lock(&E.lock);
    e->ordinal = ++E.n_made;
    pthread_mutex_unlock(&E.lock);
    e->model = model;

    char name[256], json[1024];
    snprintf(name, sizeof(name), "%s context %d%s", program_invocation_short_name, e->ordinal,
             params->embeddings ? " (embeddings)" : "");
    snprintf(json, sizeof(json),
             "{\"program\":\"%s\",\"pid\":%d,\"context\":%d,\"n_ctx\":%u,\"n_batch\":%u,\"n_ubatch\":%u,"
             "\"n_seq_max\":%u,\"n_threads\":%d,\"flash_attn\":%d,\"embeddings\":%s,\"type_k\":\"%s\",\"type_v\":\"%s\"}",
             program_invocation_short_name, (int) getpid(), e->ordinal, params->n_ctx, params->n_batch,
             params->n_ubatch, params->n_seq_max, params->n_threads, (int) params->flash_attn_type,
             params->embeddings ? "true" : "false", ggml_type_name(params->type_k), ggml_type_name(params->type_v));
    struct llt_tracer_params tp = E.cfg->tracer;
    tp.model_path = path;
    tp.name = name;
    tp.params_json = json;
    if (llt_store_open(E.cfg->output, LLT_STORE_WRITE, &e->st) != LLT_OK ||
        llt_tracer_init(e->st, tp, &e->tr) != LLT_OK) {
        say("%s: not traced: %s", name, llt_last_error());
        entry_free(e);
        return NULL;
    }
    llt_tracer_attach(e->tr, params);
    return e;
}

static void context_made(void * pending, struct llama_context * ctx) {
    struct ctx_entry * e = pending;
    if (!e) return;
    bool kept = false;
    if (ctx) {
        e->ctx = ctx;
        pthread_mutex_lock(&E.lock);
        kept = llt_grow((void **) &E.ctxs, &E.cap_ctxs, E.n_ctxs + 1, sizeof(*E.ctxs));
        if (kept) E.ctxs[E.n_ctxs++] = e;
        pthread_mutex_unlock(&E.lock);
    }
    // a context llama.cpp refused never calls the callbacks
    if (!kept) entry_free(e);
}

static struct ctx_entry * find(const struct llama_context * ctx, bool take) {
    struct ctx_entry * e = NULL;
    pthread_mutex_lock(&E.lock);
    for (int32_t i = 0; i < E.n_ctxs && !e; i++) {
        if (E.ctxs[i]->ctx != ctx) continue;
        e = E.ctxs[i];
        if (take) E.ctxs[i] = E.ctxs[--E.n_ctxs];
    }
    pthread_mutex_unlock(&E.lock);
    return e;
}

// the run's end: everything recorded is in the trace
static void end_run(struct ctx_entry * e, enum llt_run_status status) {
    if (!e->begun) return;
    e->begun = false;
    if (llt_tracer_end(e->tr, status, NULL) != LLT_OK) say("run %d: %s", llt_tracer_run_id(e->tr), llt_last_error());
    else if (llt_tracer_error(e->tr) && !e->failed) say("run %d: %s", llt_tracer_run_id(e->tr), llt_tracer_error(e->tr));
}

static void context_freed(struct llama_context * ctx) {
    struct ctx_entry * e = find(ctx, true);
    if (!e) return;
    end_run(e, LLT_RUN_OK);
    dying = e;
}

static void context_gone(struct llama_context * ctx) {
    (void) ctx;
    entry_free(dying); // its callbacks are gone with the context
    dying = NULL;
}

// ---- decode calls --------------------------------------------------------------------------

// every run ends, then the program (LLTRACE_BREAK_ON_NAN=stop)
static void stop_program(void) {
    pthread_mutex_lock(&E.lock);
    for (int32_t i = 0; i < E.n_ctxs; i++) end_run(E.ctxs[i], LLT_RUN_INTERRUPTED);
    pthread_mutex_unlock(&E.lock);
    say("stopping %s (LLTRACE_BREAK_ON_NAN=stop)", program_invocation_short_name);
    _exit(1);
}

static int32_t decode(struct llama_context * ctx, struct llama_batch batch, llt_decode_fn real) {
    struct ctx_entry * e = find(ctx, false);
    if (e && !e->tr && !e->said) {
        say("a context of a model not loaded from a file decodes: not traced (lltrace reads the GGUF)");
        e->said = true;
    }
    if (!e || !e->tr || e->failed) return real(ctx, batch);
    if (!e->begun) {
        if (llt_tracer_begin(e->tr, e->model, ctx) != LLT_OK) {
            say("context %d: not traced: %s", e->ordinal, llt_last_error());
            e->failed = true;
            return real(ctx, batch);
        }
        e->begun = true;
    }
    llt_tracer_decode_begin(e->tr, ctx, &batch);
    const int32_t ret = llt_tracer_decode_end(e->tr, real(ctx, batch));
    const char * nan = llt_tracer_nan_report(e->tr);
    if (nan && !e->said_nan) {
        e->said_nan = true;
        say("run %d: %s", llt_tracer_run_id(e->tr), nan);
        if (E.cfg->stop_on_nan) stop_program();
    }
    if (llt_tracer_error(e->tr) && !e->failed) {
        e->failed = true;
        say("run %d: %s", llt_tracer_run_id(e->tr), llt_tracer_error(e->tr));
    }
    return ret;
}

static void sampled(struct llama_context * ctx, int32_t idx, llama_token token) {
    struct ctx_entry * e = find(ctx, false);
    if (e && e->begun && !e->failed) llt_tracer_sampled_at(e->tr, ctx, idx, token);
}

// ---- start and exit ------------------------------------------------------------------------

// A program that exits without freeing its contexts: their runs end here. Another thread may
// still hold the lock (exit() from a signal handler): then the runs stay running, and the step
// logs bring their rows in when the trace is next opened.
static void at_exit(void) {
    if (pthread_mutex_trylock(&E.lock) != 0) return;
    for (int32_t i = 0; i < E.n_ctxs; i++) end_run(E.ctxs[i], LLT_RUN_OK);
    for (int32_t i = 0; i < E.n_ctxs; i++) llt_store_close(E.ctxs[i]->st), E.ctxs[i]->st = NULL;
    pthread_mutex_unlock(&E.lock);
}

static const struct llt_exec_hooks hooks = {
    .version = LLT_EXEC_HOOKS_VERSION,
    .model_loaded = model_loaded, .model_freed = model_freed,
    .context_begin = context_begin, .context_made = context_made,
    .context_freed = context_freed, .context_gone = context_gone,
    .decode = decode, .sampled = sampled,
};

__attribute__((visibility("default"))) const struct llt_exec_hooks * llt_exec_engine(void) {
    // the ABI lltrace was built against: another ggml may lay out llama.cpp's structs otherwise
    if (strcmp(ggml_version(), LLT_GGML_VERSION) != 0) {
        say("%s uses ggml %s; lltrace was built for ggml %s (llama.cpp %s): not tracing", program_invocation_short_name,
            ggml_version(), LLT_GGML_VERSION, llt_llama_tag());
        return NULL;
    }
    if (llt_exec_config_from_env(&E.cfg) != LLT_OK) {
        say("%s: not tracing", llt_last_error());
        return NULL;
    }
    atexit(at_exit);
    return &hooks;
}
