// The debugger on the tracer's node hook: which nodes to ask for, when to pause, the pause.
//
// The hook runs for every node in its ask call; while nothing is armed (no breakpoint, watch
// or step) it answers false after one atomic load, so the scheduler computes as it would
// without a debugger. Armed, it asks only for the nodes a breakpoint, a watch or the step in
// progress could stop at; in such a node's post call the node is computed and no consumer has
// run: the pause waits there, on the inference thread, and what a command writes into the
// output is what the rest of the graph reads.
#include "debug/debug.h"

#include <errno.h>
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

// ---- life --------------------------------------------------------------------------------

int llt_debug_init(struct llt_debug_io io, bool json, struct llt_debug ** out) {
    *out = NULL;
    struct llt_debug * d = calloc(1, sizeof(*d));
    if (!d) return llt_set_error(LLT_ENOMEM, "out of memory");
    d->io = io;
    d->json = json;
    d->next_id = 1;
    d->from_step = -1;
    d->from_idx = -1;
    pthread_mutex_init(&d->lock, NULL);
    pthread_cond_init(&d->changed, NULL);
    atomic_init(&d->armed, false);
    *out = d;
    return LLT_OK;
}

void llt_debug_free(struct llt_debug * d) {
    if (!d) return;
    for (int32_t i = 0; i < d->n_bps; i++) free(d->bps[i].glob);
    free(d->bps);
    llt_iv_set_free(d->ivs);
    pthread_cond_destroy(&d->changed);
    pthread_mutex_destroy(&d->lock);
    free(d);
}

void llt_dbg_rearm(struct llt_debug * d) {
    atomic_store(&d->armed, d->n_bps > 0 || (d->started && d->mode != MODE_RUN && d->mode != MODE_QUIT));
}

// ---- which nodes -------------------------------------------------------------------------

bool llt_dbg_bp_matches(const struct breakpoint * bp, const struct llt_node_view * v) {
    if (bp->step >= 0 && v->step != bp->step) return false;
    if (bp->layer >= 0 && v->layer != bp->layer) return false;
    if (bp->seq >= 0 && !(v->seq_mask & (int64_t) ((uint64_t) 1 << (bp->seq < 63 ? bp->seq : 63)))) return false;
    if (bp->op[0] && strcasecmp(bp->op, v->op) != 0 && strcasecmp(bp->op, ggml_op_name(v->t->op)) != 0) return false;
    if (bp->glob && fnmatch(bp->glob, v->t->name, 0) != 0) return false;
    // a watch reads values: a view computes nothing of its own
    return !(bp->watch && v->noop);
}

// whether the step in progress stops at v
static bool step_stops(const struct llt_debug * d, const struct llt_node_view * v) {
    if (v->noop) return false;
    const bool later = v->step != d->from_step || v->idx > d->from_idx;
    switch (d->mode) {
        case MODE_NEXT:  return later;
        case MODE_LAYER: return later && (v->step != d->from_step || v->layer != d->from_layer);
        case MODE_TOKEN: return v->step > d->from_step;
        default:         return false;
    }
}

static bool wants(const struct llt_debug * d, const struct llt_node_view * v) {
    if (!d->started || d->mode == MODE_QUIT) return false;
    if (step_stops(d, v)) return true;
    for (int32_t i = 0; i < d->n_bps; i++) if (llt_dbg_bp_matches(&d->bps[i], v)) return true;
    return false;
}

// ---- values conditions and watches (post call) -------------------------------------------

static bool node_stats(const struct llt_node_view * v, struct llt_stats * st) {
    struct dbg_values vals = {0};
    if (llt_dbg_read(v->t, "", &vals) != LLT_OK) return false;
    const int64_t n = vals.ne[0] * vals.ne[1] * vals.ne[2] * vals.ne[3];
    const bool ok = llt_stats_compute(vals.v, GGML_TYPE_F32, n, st) == LLT_OK;
    free(vals.v);
    return ok;
}

static bool cond_holds(const struct breakpoint * bp, const struct llt_node_view * v) {
    if (bp->cond == COND_NONE) return true;
    struct llt_stats st;
    if (!node_stats(v, &st)) return false;
    if (bp->cond == COND_NAN) return st.n_nan + st.n_pinf + st.n_ninf > 0;
    return st.absmax > bp->absmax;
}

static void watch_reply(struct llt_debug * d, const struct breakpoint * bp, const struct llt_node_view * v) {
    struct llt_stats st;
    struct reply r;
    reply_begin(&r, d, "watch");
    reply_int(&r, "id", bp->id);
    reply_int(&r, "step", v->step);
    reply_str(&r, "node", v->t->name);
    reply_int(&r, "index", v->idx);
    if (node_stats(v, &st)) reply_stats(&r, &st);
    else reply_str(&r, "error", llt_last_error());
    reply_end(&r);
}

// ---- the pause ---------------------------------------------------------------------------

static void stopped_reply(struct llt_debug * d) {
    struct reply r;
    reply_begin(&r, d, "stopped");
    if (d->stop_bp > 0) reply_int(&r, "breakpoint", d->stop_bp);
    else reply_str(&r, "reason", d->mode == MODE_NEXT ? "next" : d->mode == MODE_LAYER ? "step layer" : "step token");
    reply_node(&r, &d->cur);
    reply_end(&r);
}

// waits in v's post call until a command resumes the program (the lock held)
static void pause_at(struct llt_debug * d, const struct llt_node_view * v, int32_t bp_id) {
    d->cur = *v;
    d->stop_bp = bp_id;
    stopped_reply(d);
    d->mode = MODE_RUN; // the step is done; the next command says what comes
    d->paused = true;
    d->resumed = false;
    llt_dbg_rearm(d);
    pthread_cond_broadcast(&d->changed);
    if (d->io.read_line) {
        char line[1024];
        while (!d->resumed) {
            if (!d->io.read_line(line, sizeof(line), d->io.user_data)) {
                // the end of the commands: the program runs to its end, as if detached
                llt_dbg_resume(d, MODE_QUIT);
                break;
            }
            llt_dbg_run_line(d, line);
        }
    } else {
        while (!d->resumed) pthread_cond_wait(&d->changed, &d->lock);
    }
    d->paused = false;
    d->resumed = false;
}

void llt_dbg_resume(struct llt_debug * d, enum dbg_mode mode) {
    d->mode = mode;
    if (d->paused) {
        d->from_step = d->cur.step;
        d->from_idx = d->cur.idx;
        d->from_layer = d->cur.layer;
    } else {
        // not paused (before the program runs, or while it runs): from its next node
        d->from_step = -1;
        d->from_idx = -1;
        d->from_layer = -2;
    }
    if (mode == MODE_TOKEN && !d->paused) d->mode = MODE_NEXT; // the next node is in the next step anyway
    d->resumed = true;
    d->n_resumes++;
    llt_dbg_rearm(d);
    pthread_cond_broadcast(&d->changed);
}

static void post(struct llt_debug * d, const struct llt_node_view * v) {
    if (!d->started || d->mode == MODE_QUIT) return;
    int32_t stop = step_stops(d, v) ? 0 : -1;
    for (int32_t i = 0; i < d->n_bps; i++) {
        struct breakpoint * bp = &d->bps[i];
        if (!llt_dbg_bp_matches(bp, v)) continue;
        if (bp->watch) {
            watch_reply(d, bp, v);
        } else if (stop < 0 && cond_holds(bp, v)) {
            bp->hits++;
            stop = bp->id;
        }
    }
    if (stop >= 0) pause_at(d, v, stop);
}

static bool node_hook(const struct llt_node_view * v, bool ask, void * user_data) {
    struct llt_debug * d = user_data;
    if (!atomic_load_explicit(&d->armed, memory_order_relaxed)) return false; // the cost of an idle debugger
    pthread_mutex_lock(&d->lock);
    bool want = false;
    if (ask) want = wants(d, v);
    else post(d, v);
    pthread_mutex_unlock(&d->lock);
    return want;
}

// nothing to stop at or watch: the tracer's fast path may skip the hook
static bool node_hook_idle(void * user_data) {
    struct llt_debug * d = user_data;
    return !atomic_load_explicit(&d->armed, memory_order_relaxed);
}

void llt_debug_attach(struct llt_debug * d, struct llt_tracer * tr) {
    llt_tracer_set_node_hook(tr, node_hook, node_hook_idle, d);
}

// ---- driving it --------------------------------------------------------------------------

bool llt_debug_prompt(struct llt_debug * d) {
    char line[1024];
    pthread_mutex_lock(&d->lock);
    while (!d->started && !d->quit && d->io.read_line && d->io.read_line(line, sizeof(line), d->io.user_data)) {
        llt_dbg_run_line(d, line);
    }
    const bool run = d->started && !d->quit;
    pthread_mutex_unlock(&d->lock);
    return run;
}

enum llt_debug_after llt_debug_command(struct llt_debug * d, const char * line) {
    pthread_mutex_lock(&d->lock);
    d->started = true; // push mode: the program runs from the start
    const int64_t resumes = d->n_resumes;
    llt_dbg_run_line(d, line);
    // a resuming command while the program runs (continue with a breakpoint set) waits as well
    const enum llt_debug_after after = d->quit ? LLT_DEBUG_QUIT : d->n_resumes != resumes ? LLT_DEBUG_RESUMED : LLT_DEBUG_IDLE;
    pthread_mutex_unlock(&d->lock);
    return after;
}

bool llt_debug_wait_stopped(struct llt_debug * d, int wait_ms) {
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += wait_ms / 1000;
    until.tv_nsec += (long) (wait_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) { until.tv_sec++; until.tv_nsec -= 1000000000L; }
    pthread_mutex_lock(&d->lock);
    int rc = 0;
    while (!(d->paused && !d->resumed) && !d->exited && d->mode != MODE_QUIT && d->started && rc != ETIMEDOUT) {
        // nothing can stop it: no breakpoint and no step (a `continue` with none set)
        if (!atomic_load(&d->armed)) break;
        rc = pthread_cond_timedwait(&d->changed, &d->lock, &until);
    }
    const bool stopped = rc != ETIMEDOUT;
    pthread_mutex_unlock(&d->lock);
    return stopped;
}

void llt_debug_detach(struct llt_debug * d) {
    pthread_mutex_lock(&d->lock);
    for (int32_t i = 0; i < d->n_bps; i++) free(d->bps[i].glob);
    d->n_bps = 0;
    d->json = false;
    if (d->paused) llt_dbg_resume(d, MODE_RUN);
    d->mode = MODE_RUN;
    d->quit = false;
    d->no_wait = false;
    llt_dbg_rearm(d);
    pthread_mutex_unlock(&d->lock);
}

void llt_debug_set_flash_attn(struct llt_debug * dbg, bool on) {
    pthread_mutex_lock(&dbg->lock);
    dbg->flash_attn = on;
    pthread_mutex_unlock(&dbg->lock);
}

bool llt_debug_quit_requested(const struct llt_debug * d) {
    return d->quit;
}

void llt_debug_exited(struct llt_debug * d, const char * status, int run_id, const char * text) {
    pthread_mutex_lock(&d->lock);
    d->exited = true;
    atomic_store(&d->armed, false);
    struct reply r;
    reply_begin(&r, d, "exited");
    reply_str(&r, "status", status);
    reply_int(&r, "run", run_id);
    if (text) reply_str(&r, "text", text);
    reply_end(&r);
    pthread_cond_broadcast(&d->changed);
    char line[1024];
    while (!d->quit && d->io.read_line && d->io.read_line(line, sizeof(line), d->io.user_data)) llt_dbg_run_line(d, line);
    pthread_mutex_unlock(&d->lock);
}
