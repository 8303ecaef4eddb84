// The engine of lltrace exec (liblltrace-exec.so): inside the traced program, one run per
// context that decodes, in the trace LLTRACE_OUTPUT names.
//
// Each context made gets its own tracer (its callbacks chained in front of the program's own)
// and its own connection to the trace, so contexts decoding on several threads at once never
// share a transaction. The run begins at the context's first decode call, so the contexts
// programs make only to measure memory leave no run; it ends when the context is freed, or
// when the program exits without freeing it. Whatever fails here stops tracing with one line
// on stderr and the reason in the trace; the program computes and prints as it would untraced.
//
// Process lives. Every hook that uses a context's entry holds it (busy) while it does, so that
// the exit, which may come from another thread or from a signal handler in the middle of a
// decode, ends only runs nobody is using: it first marks the process as ending (no run begins
// and no entry is handed out any more), waits a bounded time for the entries in use to be let
// go, ends the idle ones, and leaves the others running: their step logs bring their rows in
// (killed) when the trace is next opened. It takes no lock without a time limit. A forked
// child (fork() without exec) shares the parent's tracers, writers and files in copy: it
// traces nothing and touches none of them; a child that execs gets an engine of its own.
#define _GNU_SOURCE // program_invocation_short_name, open_memstream
#include "exec/hooks.h"
#include "core/internal.h"
#include "lltrace.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

// how long the exit waits for decode calls in flight to leave, and for the tables' lock
#define EXIT_WAIT_MS 2000

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
    bool                       ended;    // its run ended at exit: its calls go straight to llama.cpp
    bool                       failed;   // tracing stopped; said on stderr
    bool                       said_nan;
    bool                       said_iv;   // an intervention was refused (and the program stopped)
    bool                       said;     // without a tracer (a model made in memory), and said so
    atomic_int                 busy;     // hooks using the entry now (the exit ends idle entries only)
};

static struct {
    pthread_mutex_t              lock;    // the tables below
    struct llt_exec_config *     cfg;
    struct model_entry *         models;
    int32_t                      n_models, cap_models;
    struct ctx_entry **          ctxs;
    int32_t                      n_ctxs, cap_ctxs;
    int                          n_made;
    pid_t                        owner;   // the process that loaded the engine (a forked child is not it)
    atomic_bool                  ending;  // the program exits: nothing is handed out or begun any more
    atomic_int                   n_busy;  // the entries' busy counts, summed
    struct llt_debug_server *    debug;   // LLTRACE_DEBUG: the debugger every context's tracer pauses in
    bool                         said_fork;
} E = { .lock = PTHREAD_MUTEX_INITIALIZER };

static __thread int held; // entries this thread holds busy (the exit may come from its signal handler)

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

// ---- what happened, for lltrace exec's last words ------------------------------------------

// One line per kind of event and process into LLTRACE_STATUS (a file lltrace exec made): so it
// can say whether the program created a llama.cpp context, or decoded with one, when no run came.
static void note(const char * what) {
    const char * path = getenv("LLTRACE_STATUS");
    if (!path || !*path) return;
    char line[64];
    const int n = snprintf(line, sizeof(line), "%s %d\n", what, (int) getpid());
    const int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
    if (fd < 0) return;
    if (write(fd, line, (size_t) n) != n) {} // a lost line costs a less precise message only
    close(fd);
}

// a forked child (fork() without exec): its copies of the parent's tracers stay untouched
static bool forked(void) {
    if (getpid() == E.owner) return false;
    if (!E.said_fork) {
        E.said_fork = true;
        say("%s (pid %d) is a fork of a traced process: not traced", program_invocation_short_name, (int) getpid());
    }
    return true;
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

// the run's parameters as JSON (every string escaped: a program's name may hold anything);
// caller frees with free(), NULL when out of memory
static char * params_json(const struct llama_context_params * p, int ordinal) {
    char * json = NULL;
    size_t size = 0;
    FILE * f = open_memstream(&json, &size);
    if (!f) return NULL;
    fputs("{\"program\":", f);
    llt_json_write_string(f, program_invocation_short_name);
    fprintf(f, ",\"pid\":%d,\"context\":%d,\"n_ctx\":%u,\"n_batch\":%u,\"n_ubatch\":%u,\"n_seq_max\":%u,\"n_threads\":%d,"
               "\"flash_attn\":%d,\"embeddings\":%s,\"type_k\":",
            (int) getpid(), ordinal, p->n_ctx, p->n_batch, p->n_ubatch, p->n_seq_max, p->n_threads,
            (int) p->flash_attn_type, p->embeddings ? "true" : "false");
    llt_json_write_string(f, ggml_type_name(p->type_k));
    fputs(",\"type_v\":", f);
    llt_json_write_string(f, ggml_type_name(p->type_v));
    fputc('}', f);
    if (fclose(f) != 0) {
        free(json);
        return NULL;
    }
    return json;
}

static void * context_begin(const struct llama_model * model, struct llama_context_params * params) {
    if (forked() || atomic_load(&E.ending)) return NULL;
    note("context");
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

    char name[256];
    snprintf(name, sizeof(name), "%s context %d%s", program_invocation_short_name, e->ordinal,
             params->embeddings ? " (embeddings)" : "");
    char * json = params_json(params, e->ordinal);
    struct llt_tracer_params tp = E.cfg->tracer;
    tp.model_path = path;
    tp.name = name;
    tp.params_json = json;
    const bool ok = json && llt_store_open(E.cfg->output, LLT_STORE_WRITE, &e->st) == LLT_OK &&
                    llt_tracer_init(e->st, tp, &e->tr) == LLT_OK; // (the tracer copies the strings)
    if (!ok) say("%s: not traced: %s", name, json ? llt_last_error() : "out of memory");
    free(json);
    if (!ok) {
        entry_free(e);
        return NULL;
    }
    llt_tracer_attach(e->tr, params);
    if (E.debug) llt_debug_attach(llt_debug_server_debugger(E.debug), e->tr);
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

// ctx's entry, held busy until let_go(); taken out of the table when take. NULL when it has
// none, or once the program is ending (the exit owns every entry then)
static struct ctx_entry * hold(const struct llama_context * ctx, bool take) {
    if (forked()) return NULL;
    struct ctx_entry * e = NULL;
    pthread_mutex_lock(&E.lock);
    for (int32_t i = 0; i < E.n_ctxs && !e && !atomic_load(&E.ending); i++) {
        if (E.ctxs[i]->ctx != ctx) continue;
        e = E.ctxs[i];
        if (take) E.ctxs[i] = E.ctxs[--E.n_ctxs];
        atomic_fetch_add(&e->busy, 1);
        atomic_fetch_add(&E.n_busy, 1);
        held++;
    }
    pthread_mutex_unlock(&E.lock);
    return e;
}

static void let_go(struct ctx_entry * e) {
    if (!e) return;
    held--;
    atomic_fetch_sub(&e->busy, 1);
    atomic_fetch_sub(&E.n_busy, 1);
}

// the run's end: everything recorded is in the trace
// lltrace exec noted that the program got SIGINT, SIGTERM, SIGHUP or SIGQUIT (from lltrace, or
// the terminal's Ctrl-C): the program stops because it was asked to
static bool signal_noted(void) {
    const char * path = getenv("LLTRACE_STATUS");
    const int fd = path && *path ? open(path, O_RDONLY | O_CLOEXEC) : -1;
    if (fd < 0) return false;
    char buf[4096];
    const ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    buf[n > 0 ? n : 0] = '\0';
    return strncmp(buf, "signal ", 7) == 0 || strstr(buf, "\nsignal ") != NULL;
}

// A run the program ends by itself after a signal (llama-server's clean stop on SIGINT) was
// interrupted, not finished
static void end_run(struct ctx_entry * e, enum llt_run_status status) {
    if (!e->begun) return;
    if (status == LLT_RUN_OK && signal_noted()) status = LLT_RUN_INTERRUPTED;
    e->begun = false;
    if (llt_tracer_end(e->tr, status, NULL) != LLT_OK) say("run %d: %s", llt_tracer_run_id(e->tr), llt_last_error());
    else if (llt_tracer_error(e->tr) && !e->failed) say("run %d: %s", llt_tracer_run_id(e->tr), llt_tracer_error(e->tr));
}

static void context_freed(struct llama_context * ctx) {
    struct ctx_entry * e = hold(ctx, true);
    if (!e) return;
    end_run(e, LLT_RUN_OK);
    let_go(e);
    dying = e;
}

static void context_gone(struct llama_context * ctx) {
    (void) ctx;
    entry_free(dying); // its callbacks are gone with the context
    dying = NULL;
}

// ---- the end of every run: at exit, or --stop-on-nan -------------------------------------

static bool lock_bounded(pthread_mutex_t * m, int ms) {
    for (int waited = 0; pthread_mutex_trylock(m) != 0; waited++) {
        if (waited >= ms) return false;
        nanosleep(&(struct timespec) { 0, 1000000 }, NULL);
    }
    return true;
}

// Ends the run of every entry nobody uses, after waiting a bounded time for the decode calls in
// flight on other threads to finish (this thread's own entries stay as they are: it may be a
// signal handler's, come in the middle of one). An entry still in use keeps its run running:
// its step log has its rows. Returns with the entries ended and their stores closed.
static void end_all(enum llt_run_status status) {
    atomic_store(&E.ending, true);
    if (!lock_bounded(&E.lock, EXIT_WAIT_MS)) return;
    // the lock keeps further calls out: those in flight only have to finish
    for (int waited = 0; atomic_load(&E.n_busy) > held && waited < EXIT_WAIT_MS; waited++) {
        nanosleep(&(struct timespec) { 0, 1000000 }, NULL);
    }
    for (int32_t i = 0; i < E.n_ctxs; i++) {
        struct ctx_entry * e = E.ctxs[i];
        if (e->ended || atomic_load(&e->busy) > 0) continue;
        end_run(e, status);
        llt_store_close(e->st); // the tracer, inactive now, keeps its callbacks declining
        e->st = NULL;
        e->ended = true;
    }
    pthread_mutex_unlock(&E.lock);
}

// A program that exits without freeing its contexts: their runs end here. exit() may come from
// any thread, or from a signal handler (llama-server's second Ctrl-C): see end_all().
static void at_exit(void) {
    if (getpid() != E.owner) return; // a forked child's copies are the parent's
    llt_debug_serve_stop(E.debug); // a paused decode goes on, and its run can end
    end_all(LLT_RUN_OK);
}

// ---- decode calls --------------------------------------------------------------------------

// every run ends, then the program (LLTRACE_BREAK_ON_NAN=stop)
static void stop_program(const char * why) {
    end_all(LLT_RUN_INTERRUPTED);
    say("stopping %s (%s)", program_invocation_short_name, why);
    _exit(1);
}

// The run begins with the writer thread: made with the program's signals blocked, so that no
// handler of the program (an exit() among them) ever runs on it
static int begin_run(struct ctx_entry * e, struct llama_context * ctx) {
    sigset_t all, had;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &had);
    const int rc = llt_tracer_begin(e->tr, e->model, ctx);
    pthread_sigmask(SIG_SETMASK, &had, NULL);
    return rc;
}

static int32_t decode(struct llama_context * ctx, struct llama_batch batch, llt_decode_fn real) {
    struct ctx_entry * e = hold(ctx, false);
    if (e && !e->tr && !e->said) {
        say("a context of a model not loaded from a file decodes: not traced (lltrace reads the GGUF)");
        e->said = true;
    }
    if (!e || !e->tr || e->failed || e->ended) {
        let_go(e);
        return real(ctx, batch);
    }
    if (!e->begun) {
        note("decode");
        if (begin_run(e, ctx) != LLT_OK) {
            say("context %d: not traced: %s", e->ordinal, llt_last_error());
            e->failed = true;
            let_go(e);
            return real(ctx, batch);
        }
        e->begun = true;
    }
    llt_tracer_decode_begin(e->tr, ctx, &batch);
    const int32_t ret = llt_tracer_decode_end(e->tr, real(ctx, batch));
    const char * nan = llt_tracer_nan_report(e->tr);
    const char * stop = NULL;
    if (nan && !e->said_nan) {
        e->said_nan = true;
        say("run %d: %s", llt_tracer_run_id(e->tr), nan);
        stop = E.cfg->stop_on_nan ? "LLTRACE_BREAK_ON_NAN=stop" : NULL;
    }
    if (llt_tracer_iv_error(e->tr) && !e->said_iv) {
        // the rest of the graph was not computed: what the program would read is not the model's
        e->said_iv = true;
        say("run %d: intervention refused at %s", llt_tracer_run_id(e->tr), llt_tracer_iv_error(e->tr));
        stop = "an intervention was refused";
    }
    if (llt_tracer_error(e->tr) && !e->failed) {
        e->failed = true;
        say("run %d: %s", llt_tracer_run_id(e->tr), llt_tracer_error(e->tr));
    }
    let_go(e); // its run ends with the others' when stopping
    if (stop) stop_program(stop);
    return ret;
}

static void sampled(struct llama_context * ctx, int32_t idx, llama_token token) {
    struct ctx_entry * e = hold(ctx, false);
    if (e && e->begun && !e->failed && !e->ended) llt_tracer_sampled_at(e->tr, ctx, idx, token);
    let_go(e);
}

static void memory_cleared(llama_memory_t mem, bool unread) {
    if (forked()) return;
    struct llama_context * ctx = NULL;
    pthread_mutex_lock(&E.lock);
    for (int32_t i = 0; i < E.n_ctxs && !ctx; i++) if (llama_get_memory(E.ctxs[i]->ctx) == mem) ctx = E.ctxs[i]->ctx;
    pthread_mutex_unlock(&E.lock);
    struct ctx_entry * e = ctx ? hold(ctx, false) : NULL;
    if (e && e->begun && !e->failed && !e->ended) llt_tracer_memory_cleared(e->tr, unread);
    let_go(e);
}

// ---- start ---------------------------------------------------------------------------------

// fork() waits for the tables to be still, so that the child's copy of the lock is free
static void fork_prepare(void) { pthread_mutex_lock(&E.lock); }
static void fork_parent(void)  { pthread_mutex_unlock(&E.lock); }
static void fork_child(void) {
    pthread_mutex_unlock(&E.lock); // the forking thread's: the child's only thread
    held = 0;
    // a decode in the child of a context the parent made reaches its tracer through the
    // callbacks: the copy stops there, and nothing of it is ever freed, ended or written
    for (int32_t i = 0; i < E.n_ctxs; i++) if (E.ctxs[i]->tr) llt_tracer_disown(E.ctxs[i]->tr);
}

static const struct llt_exec_hooks hooks = {
    .version = LLT_EXEC_HOOKS_VERSION,
    .model_loaded = model_loaded, .model_freed = model_freed,
    .context_begin = context_begin, .context_made = context_made,
    .context_freed = context_freed, .context_gone = context_gone,
    .decode = decode, .sampled = sampled, .memory_cleared = memory_cleared,
};

__attribute__((visibility("default"))) const struct llt_exec_hooks * llt_exec_engine(void) {
    note("engine");
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
    E.owner = getpid();
    if (E.cfg->debug_socket && llt_debug_serve_start(E.cfg->debug_socket, &E.debug) != LLT_OK) {
        say("%s: no debugger: %s", program_invocation_short_name, llt_last_error());
    }
    pthread_atfork(fork_prepare, fork_parent, fork_child);
    atexit(at_exit);
    return &hooks;
}
