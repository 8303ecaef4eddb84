// The writer: a thread that turns captured batches into trace rows.
//
// A commit costs tens of microseconds of SQLite and file system work, too much for the thread
// that runs inference, and more again when it is paid once per token. The capture side appends
// each decode call's batch to the step log (one write(), the crash insurance) and queues it;
// this thread commits what is queued every COMMIT_INTERVAL_MS, in order, in one transaction,
// then empties the log. llt_writer_sync() commits at once and waits.
//
// Graph structures (a thousand rows each, a few per run), node times (a row per timed node) and node statistics (level values, a row per node per step) are the bulk: writing them while the model runs would take cores
// from inference, and a writer that preempts one of the compute threads stalls them all at the
// next barrier. They wait in memory, safe in the step log, and are written when the run ends
// or DEFERRED_MAX bytes of them have piled up. The thread also runs at a lower priority.
#define _DEFAULT_SOURCE // syscall(SYS_gettid): the writer thread lowers its own priority
#include "trace/batch.h"

#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

// How often the writer commits; LLTRACE_COMMIT_MS overrides it (tests use it to leave
// everything to the step log). A commit costs the inference threads about a millisecond (the
// writer takes a core from one of them, and the other waits at the next barrier), so it comes
// rarely; the step log keeps the rows in between safe, and readers see them a second late.
#define COMMIT_INTERVAL_MS 1000
#define DEFERRED_MAX       (64u << 20)

// one prepared insert per table; OR IGNORE: a step log replayed after a crash may repeat rows
// already committed
enum { INS_GRAPH, INS_NODE, INS_SRC, INS_STEP, INS_TIMES, INS_TOKEN, INS_STAT, INS_DIFF, INS_PARITY, INS_COUNT };

static const char * insert_sql[] = {
    [INS_GRAPH]  = "INSERT OR IGNORE INTO graphs(id, run_id, n_nodes) VALUES(?,?,?)",
    [INS_NODE]   = "INSERT OR IGNORE INTO nodes(graph_id, idx, op, name, layer, type, ne0, ne1, ne2, ne3, bytes,"
                   " is_view, is_noop, buffer, layer_out, fused) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
    [INS_SRC]    = "INSERT OR IGNORE INTO node_srcs(graph_id, idx, slot, kind, src_idx, weight_id, name, bytes)"
                   " VALUES(?,?,?,?,?,?,?,?)",
    [INS_STEP]   = "INSERT OR IGNORE INTO steps(run_id, step, decode, phase, pos0, n_tokens, graph_id, t_begin_ns,"
                   " t_end_ns, compute_begin_ns, compute_end_ns, t_sample_ns, n_timed) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?)",
    [INS_TIMES]  = "INSERT OR IGNORE INTO node_times(run_id, step, idx, t_begin_ns, t_end_ns) VALUES(?,?,?,?,?)",
    [INS_TOKEN]  = "INSERT OR IGNORE INTO tokens(run_id, seq, role, step, pos, token, piece, piece_bytes)"
                   " VALUES(?,?,?,?,?,?,?,?)",
    [INS_STAT]   = "INSERT OR IGNORE INTO node_stats(run_id, step, idx, n, n_nan, n_pinf, n_ninf, n_zero, min, max,"
                   " mean, std, absmax) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?)",
    [INS_DIFF]   = "INSERT OR IGNORE INTO node_diffs(run_id, step, idx, name, shape_ok, n, max_abs, mean_abs, max_rel,"
                   " mean_rel, rmse, nmse, cosine, ref_nonfinite, nonfinite, n_exceed, max_abs_index, within, n_finite,"
                   " n_nonfinite_pairs) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
    [INS_PARITY] = "INSERT OR IGNORE INTO parity(run_id, step, pos, token, piece, top_k, piece_bytes) VALUES(?,?,?,?,?,?,?)",
};
_Static_assert(sizeof(insert_sql)/sizeof(insert_sql[0]) == INS_COUNT, "one insert per table");

struct llt_rows {
    struct llt_store *   st;
    int64_t              run_id;
    const char * const * weight_names;
    int32_t              n_weights;
    sqlite3_stmt *       ins[INS_COUNT]; // prepared inserts, by table
};

struct llt_writer {
    struct llt_rows *    rows;
    struct llt_steplog * log;

    pthread_t        thread;
    pthread_mutex_t  mu;
    pthread_cond_t   wake;     // sync or stop asked
    pthread_cond_t   done;     // batches committed
    struct llt_batch * head, * tail;
    int64_t          n_submitted, n_committed;
    bool             stop, sync;
    int              interval_ms;
    struct llt_batch * deferred;       // batches holding only statistics, oldest first
    struct llt_batch ** deferred_tail;
    size_t           deferred_bytes;
    atomic_bool      failed;
    char             error[512];
};

void llt_batch_free(struct llt_batch * b) {
    if (!b) return;
    for (int32_t i = 0; i < b->n_graphs; i++) {
        free(b->graphs[i].recs);
        free(b->graphs[i].strings);
        free(b->graphs[i].string_data);
    }
    for (int32_t i = 0; i < b->n_steps; i++) free(b->steps[i].times);
    free(b->graphs);
    free(b->steps);
    free(b->tokens);
    free(b->stats);
    free(b->diffs);
    free(b->parity);
    free(b);
}

// ---- rows --------------------------------------------------------------------------------

static const char * src_kind_names[] = { "none", "node", "weight", "input" };

static void bind_time_or_null(sqlite3_stmt * s, int i, int64_t t_ns) {
    if (t_ns) sqlite3_bind_int64(s, i, t_ns); else sqlite3_bind_null(s, i);
}

const char * llt_node_op_name(const struct node_rec * r) {
    if (r->op == GGML_OP_UNARY) return ggml_unary_op_name((enum ggml_unary_op) r->subop);
    if (r->op == GGML_OP_GLU)   return ggml_glu_op_name((enum ggml_glu_op) r->subop);
    return ggml_op_name((enum ggml_op) r->op);
}

static int write_graph(struct llt_rows * w, const struct graph_rows * g) {
    sqlite3_stmt * s = w->ins[INS_GRAPH];
    sqlite3_bind_int64(s, 1, g->id);
    sqlite3_bind_int64(s, 2, w->run_id);
    sqlite3_bind_int(s, 3, g->n_nodes);
    int rc = llt_store_step_done(w->st, s);
    for (int32_t i = 0; i < g->n_nodes && rc == LLT_OK; i++) {
        const struct node_rec * r = &g->recs[i];
        s = w->ins[INS_NODE];
        sqlite3_bind_int64(s, 1, g->id);
        sqlite3_bind_int(s, 2, i);
        sqlite3_bind_text(s, 3, llt_node_op_name(r), -1, SQLITE_STATIC);
        llt_store_bind_text(s, 4, r->name); // a name ggml cut at GGML_MAX_NAME may end inside a character
        sqlite3_bind_int(s, 5, r->layer);
        sqlite3_bind_text(s, 6, ggml_type_name((enum ggml_type) r->type), -1, SQLITE_STATIC);
        for (int d = 0; d < 4; d++) sqlite3_bind_int64(s, 7 + d, r->ne[d]);
        sqlite3_bind_int64(s, 11, (int64_t) r->bytes);
        sqlite3_bind_int(s, 12, (r->flags & NODE_VIEW) != 0);
        sqlite3_bind_int(s, 13, (r->flags & NODE_NOOP) != 0);
        llt_store_bind_text(s, 14, r->buffer >= 0 ? g->strings[r->buffer] : NULL);
        sqlite3_bind_int(s, 15, (r->flags & NODE_LOUT) != 0);
        sqlite3_bind_int(s, 16, (r->flags & NODE_FUSED) != 0);
        rc = llt_store_step_done(w->st, s);
        for (int k = 0; k < r->n_src && rc == LLT_OK; k++) {
            if (r->src_kind[k] == SRC_NONE) continue;
            s = w->ins[INS_SRC];
            sqlite3_bind_int64(s, 1, g->id);
            sqlite3_bind_int(s, 2, i);
            sqlite3_bind_int(s, 3, k);
            sqlite3_bind_text(s, 4, src_kind_names[r->src_kind[k]], -1, SQLITE_STATIC);
            sqlite3_bind_null(s, 5);
            sqlite3_bind_null(s, 6);
            const char * name = NULL;
            if (r->src_kind[k] == SRC_NODE) {
                sqlite3_bind_int(s, 5, r->src_ref[k]);
                name = g->recs[r->src_ref[k]].name;
            } else if (r->src_kind[k] == SRC_WEIGHT) {
                sqlite3_bind_int(s, 6, r->src_ref[k]);
                name = r->src_ref[k] < w->n_weights ? w->weight_names[r->src_ref[k]] : NULL;
            } else if (r->src_ref[k] >= 0) {
                name = g->strings[r->src_ref[k]];
            }
            llt_store_bind_text(s, 7, name);
            sqlite3_bind_int64(s, 8, (int64_t) r->src_bytes[k]);
            rc = llt_store_step_done(w->st, s);
        }
    }
    return rc;
}

static int write_step(struct llt_rows * w, const struct step_rows * ps) {
    sqlite3_stmt * s = w->ins[INS_STEP];
    sqlite3_bind_int64(s, 1, w->run_id);
    sqlite3_bind_int64(s, 2, ps->step);
    sqlite3_bind_int64(s, 3, ps->decode);
    sqlite3_bind_text(s, 4, ps->is_prompt ? "prompt" : "gen", -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 5, ps->pos0);
    sqlite3_bind_int(s, 6, ps->n_tokens);
    sqlite3_bind_int64(s, 7, ps->graph_id);
    bind_time_or_null(s, 8, ps->t_begin_ns);
    bind_time_or_null(s, 9, ps->t_end_ns);
    sqlite3_bind_int64(s, 10, ps->compute_begin_ns);
    bind_time_or_null(s, 11, ps->compute_end_ns);
    bind_time_or_null(s, 12, ps->t_sample_ns);
    sqlite3_bind_int(s, 13, ps->n_times);
    int rc = llt_store_step_done(w->st, s);
    // a row per timed node; the step's row said how many, so it is written first (a step
    // whose times are deferred is written twice, the second time ignored)
    for (int32_t k = 0; k < ps->n_times && ps->times && rc == LLT_OK; k++) {
        const struct node_time * t = &ps->times[k];
        s = w->ins[INS_TIMES];
        sqlite3_bind_int64(s, 1, w->run_id);
        sqlite3_bind_int64(s, 2, ps->step);
        sqlite3_bind_int(s, 3, t->idx);
        sqlite3_bind_int64(s, 4, ps->compute_begin_ns + ((int64_t) t->begin << ps->time_shift));
        sqlite3_bind_int64(s, 5, ps->compute_begin_ns + ((int64_t) t->end << ps->time_shift));
        rc = llt_store_step_done(w->st, s);
    }
    return rc;
}

static int write_token(struct llt_rows * w, const struct token_rows * t) {
    sqlite3_stmt * s = w->ins[INS_TOKEN];
    sqlite3_bind_int64(s, 1, w->run_id);
    sqlite3_bind_int64(s, 2, t->seq);
    sqlite3_bind_text(s, 3, t->is_prompt ? "prompt" : "gen", -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 4, t->step);
    sqlite3_bind_int(s, 5, t->pos);
    sqlite3_bind_int(s, 6, t->token);
    // a piece may be part of a character (byte-fallback tokens): the text is made valid, the bytes kept
    llt_store_bind_text(s, 7, t->piece);
    sqlite3_bind_blob(s, 8, t->piece, (int) strlen(t->piece), SQLITE_STATIC);
    return llt_store_step_done(w->st, s);
}

static int write_stat(struct llt_rows * w, const struct stat_rows * r) {
    sqlite3_stmt * s = w->ins[INS_STAT];
    const struct llt_stats * st = &r->st;
    sqlite3_bind_int64(s, 1, w->run_id);
    sqlite3_bind_int64(s, 2, r->step);
    sqlite3_bind_int(s, 3, r->idx);
    sqlite3_bind_int64(s, 4, st->n);
    sqlite3_bind_int64(s, 5, st->n_nan);
    sqlite3_bind_int64(s, 6, st->n_pinf);
    sqlite3_bind_int64(s, 7, st->n_ninf);
    sqlite3_bind_int64(s, 8, st->n_zero);
    sqlite3_bind_double(s, 9, st->min);
    sqlite3_bind_double(s, 10, st->max);
    sqlite3_bind_double(s, 11, st->mean);
    sqlite3_bind_double(s, 12, st->std);
    sqlite3_bind_double(s, 13, st->absmax);
    return llt_store_step_done(w->st, s);
}

static int write_diff(struct llt_rows * w, const struct diff_rows * r) {
    sqlite3_stmt * s = w->ins[INS_DIFF];
    const struct llt_diff * d = &r->d;
    int i = 1;
    sqlite3_bind_int64(s, i++, w->run_id);
    sqlite3_bind_int64(s, i++, r->step);
    sqlite3_bind_int(s, i++, r->idx);
    llt_store_bind_text(s, i++, r->name);
    sqlite3_bind_int(s, i++, r->shape_ok);
    sqlite3_bind_int64(s, i++, d->n);
    sqlite3_bind_double(s, i++, d->max_abs);
    sqlite3_bind_double(s, i++, d->mean_abs);
    sqlite3_bind_double(s, i++, d->max_rel);
    sqlite3_bind_double(s, i++, d->mean_rel);
    sqlite3_bind_double(s, i++, d->rmse);
    sqlite3_bind_double(s, i++, d->nmse);
    sqlite3_bind_double(s, i++, d->cosine);
    sqlite3_bind_int64(s, i++, d->a_nan + d->a_inf);
    sqlite3_bind_int64(s, i++, d->b_nan + d->b_inf);
    sqlite3_bind_int64(s, i++, d->n_exceed);
    sqlite3_bind_int64(s, i++, d->max_abs_index);
    sqlite3_bind_int(s, i++, r->shape_ok && d->n_exceed == 0);
    sqlite3_bind_int64(s, i++, d->n_finite);
    sqlite3_bind_int64(s, i++, d->n - d->n_finite);
    return llt_store_step_done(w->st, s);
}

static int write_parity(struct llt_rows * w, const struct llt_parity_step * p) {
    char top_k[LLT_PARITY_LINE_MAX];
    llt_parity_format_top_k(p, top_k, sizeof(top_k));
    sqlite3_stmt * s = w->ins[INS_PARITY];
    sqlite3_bind_int64(s, 1, w->run_id);
    sqlite3_bind_int(s, 2, p->step);
    sqlite3_bind_int(s, 3, p->pos);
    sqlite3_bind_int(s, 4, p->token);
    llt_store_bind_text(s, 5, p->piece);
    sqlite3_bind_text(s, 6, top_k, -1, SQLITE_STATIC);
    sqlite3_bind_blob(s, 7, p->piece, (int) strlen(p->piece), SQLITE_STATIC);
    return llt_store_step_done(w->st, s);
}

int llt_rows_write(struct llt_rows * w, const struct llt_batch * b) {
    int rc = llt_store_begin(w->st);
    for (; b && rc == LLT_OK; b = b->next) {
        for (int32_t i = 0; i < b->n_graphs && rc == LLT_OK; i++) rc = write_graph(w, &b->graphs[i]);
        for (int32_t i = 0; i < b->n_steps  && rc == LLT_OK; i++) rc = write_step(w, &b->steps[i]);
        for (int32_t i = 0; i < b->n_tokens && rc == LLT_OK; i++) rc = write_token(w, &b->tokens[i]);
        for (int32_t i = 0; i < b->n_stats  && rc == LLT_OK; i++) rc = write_stat(w, &b->stats[i]);
        for (int32_t i = 0; i < b->n_diffs  && rc == LLT_OK; i++) rc = write_diff(w, &b->diffs[i]);
        for (int32_t i = 0; i < b->n_parity && rc == LLT_OK; i++) rc = write_parity(w, &b->parity[i]);
    }
    if (rc == LLT_OK) rc = llt_store_commit(w->st);
    if (rc != LLT_OK) llt_store_rollback(w->st);
    return rc;
}

int llt_rows_init(struct llt_store * st, int64_t run_id, const char * const * weight_names, int32_t n_weights,
                  struct llt_rows ** out) {
    *out = NULL;
    struct llt_rows * w = calloc(1, sizeof(*w));
    if (!w) return llt_set_error(LLT_ENOMEM, "out of memory");
    *w = (struct llt_rows) { .st = st, .run_id = run_id, .weight_names = weight_names, .n_weights = n_weights };
    for (int i = 0; i < INS_COUNT; i++) {
        if (!(w->ins[i] = llt_store_prepare(st, insert_sql[i]))) {
            llt_rows_free(w);
            return LLT_EIO;
        }
    }
    *out = w;
    return LLT_OK;
}

void llt_rows_free(struct llt_rows * w) {
    if (!w) return;
    for (int i = 0; i < INS_COUNT; i++) sqlite3_finalize(w->ins[i]);
    free(w);
}

// ---- the thread --------------------------------------------------------------------------

static void free_batches(struct llt_batch * b) {
    while (b) {
        struct llt_batch * next = b->next;
        llt_batch_free(b);
        b = next;
    }
}

// moves the graphs, node times and statistics of the batches into batches of their own, kept
// for later (a step's row is written now; its copy with the times repeats it later, ignored)
static void defer_bulk(struct llt_writer * w, struct llt_batch * b) {
    for (; b; b = b->next) {
        int32_t n_timed = 0;
        for (int32_t i = 0; i < b->n_steps; i++) n_timed += b->steps[i].times != NULL;
        if (b->n_stats == 0 && b->n_graphs == 0 && n_timed == 0) continue;
        struct llt_batch * d = calloc(1, sizeof(*d));
        struct step_rows * steps = n_timed ? malloc((size_t) n_timed * sizeof(*steps)) : NULL;
        if (!d || (n_timed && !steps)) { free(d); free(steps); continue; } // written now instead
        for (int32_t i = 0; i < b->n_steps; i++) {
            if (!b->steps[i].times) continue;
            steps[d->n_steps++] = b->steps[i];
            w->deferred_bytes += (size_t) b->steps[i].n_times * sizeof(struct node_time);
            b->steps[i].times = NULL; // n_times stays: the step's row written now counts them
        }
        d->steps = steps;
        d->cap_steps = d->n_steps;
        d->stats = b->stats;
        d->n_stats = d->cap_stats = b->n_stats;
        d->graphs = b->graphs;
        d->n_graphs = d->cap_graphs = b->n_graphs;
        b->stats = NULL;
        b->n_stats = b->cap_stats = 0;
        b->graphs = NULL;
        b->n_graphs = b->cap_graphs = 0;
        *w->deferred_tail = d;
        w->deferred_tail = &d->next;
        w->deferred_bytes += (size_t) d->n_stats * sizeof(struct stat_rows);
        for (int32_t i = 0; i < d->n_graphs; i++) w->deferred_bytes += (size_t) d->graphs[i].n_nodes * sizeof(struct node_rec);
    }
}

static void deadline_in(struct timespec * ts, int ms) {
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_nsec += (long) ms * 1000000L;
    ts->tv_sec += ts->tv_nsec / 1000000000L;
    ts->tv_nsec %= 1000000000L;
}

static void * writer_main(void * arg) {
    struct llt_writer * w = arg;
    // below the inference threads: on Linux a thread's nice value is its own
    setpriority(PRIO_PROCESS, (id_t) syscall(SYS_gettid), 10);
    pthread_mutex_lock(&w->mu);
    for (;;) {
        struct timespec until;
        deadline_in(&until, w->interval_ms);
        while (!w->stop && !w->sync) {
            if (pthread_cond_timedwait(&w->wake, &w->mu, &until) == ETIMEDOUT) break;
        }
        w->sync = false;
        struct llt_batch * todo = w->head;
        int64_t n = 0;
        for (struct llt_batch * b = todo; b; b = b->next) n++;
        w->head = w->tail = NULL;
        const bool stopping = w->stop;
        pthread_mutex_unlock(&w->mu);

        defer_bulk(w, todo);
        // after a failure batches are dropped: tracing has stopped, the log keeps them
        if (todo && !atomic_load(&w->failed) && llt_rows_write(w->rows, todo) != LLT_OK) {
            snprintf(w->error, sizeof(w->error), "%s", llt_last_error());
            atomic_store(&w->failed, true);
        }
        free_batches(todo);
        if (w->deferred && (stopping || w->deferred_bytes > DEFERRED_MAX)) {
            if (!atomic_load(&w->failed) && llt_rows_write(w->rows, w->deferred) != LLT_OK) {
                snprintf(w->error, sizeof(w->error), "%s", llt_last_error());
                atomic_store(&w->failed, true);
            }
            free_batches(w->deferred);
            w->deferred = NULL;
            w->deferred_tail = &w->deferred;
            w->deferred_bytes = 0;
        }

        pthread_mutex_lock(&w->mu);
        // caught up: what the log holds is all in the trace (the producer appends under mu)
        if (n > 0 && !w->head && !w->deferred && !atomic_load(&w->failed) && llt_steplog_reset(w->log) != LLT_OK) {
            snprintf(w->error, sizeof(w->error), "%s", llt_last_error());
            atomic_store(&w->failed, true);
        }
        w->n_committed += n;
        pthread_cond_broadcast(&w->done);
        if (stopping && !w->head) break;
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

int llt_writer_start(struct llt_store * st, int64_t run_id, const char * const * weight_names, int32_t n_weights,
                     struct llt_writer ** out) {
    *out = NULL;
    struct llt_writer * w = calloc(1, sizeof(*w));
    if (!w) return llt_set_error(LLT_ENOMEM, "out of memory");
    atomic_init(&w->failed, false);
    w->deferred_tail = &w->deferred;
    const char * env = getenv("LLTRACE_COMMIT_MS");
    w->interval_ms = env && atoi(env) > 0 ? atoi(env) : COMMIT_INTERVAL_MS;
    int rc = llt_rows_init(st, run_id, weight_names, n_weights, &w->rows);
    if (rc == LLT_OK) rc = llt_steplog_create(llt_store_path(st), run_id, &w->log);
    if (rc == LLT_OK) {
        pthread_mutex_init(&w->mu, NULL);
        pthread_cond_init(&w->wake, NULL);
        pthread_cond_init(&w->done, NULL);
        if (pthread_create(&w->thread, NULL, writer_main, w) != 0) {
            pthread_mutex_destroy(&w->mu);
            pthread_cond_destroy(&w->wake);
            pthread_cond_destroy(&w->done);
            rc = llt_set_error(LLT_ENOMEM, "cannot start the trace writer thread");
        }
    }
    if (rc != LLT_OK) {
        llt_steplog_close(w->log, false);
        llt_rows_free(w->rows);
        free(w);
        return rc;
    }
    *out = w;
    return LLT_OK;
}

void llt_writer_submit(struct llt_writer * w, struct llt_batch * b) {
    b->next = NULL;
    pthread_mutex_lock(&w->mu);
    if (!atomic_load(&w->failed) && llt_steplog_append(w->log, b) != LLT_OK) {
        snprintf(w->error, sizeof(w->error), "%s", llt_last_error());
        atomic_store(&w->failed, true);
    }
    if (w->tail) w->tail->next = b; else w->head = b;
    w->tail = b;
    w->n_submitted++;
    pthread_mutex_unlock(&w->mu);
}

int llt_writer_sync(struct llt_writer * w) {
    pthread_mutex_lock(&w->mu);
    w->sync = true;
    pthread_cond_signal(&w->wake);
    while (w->n_committed < w->n_submitted) pthread_cond_wait(&w->done, &w->mu);
    pthread_mutex_unlock(&w->mu);
    return atomic_load(&w->failed) ? llt_set_error(LLT_EIO, "%s", w->error) : LLT_OK;
}

const char * llt_writer_error(struct llt_writer * w) {
    return atomic_load(&w->failed) ? w->error : NULL;
}

void llt_writer_stop(struct llt_writer * w) {
    if (!w) return;
    pthread_mutex_lock(&w->mu);
    w->stop = true;
    pthread_cond_signal(&w->wake);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL); // the thread commits what is queued before it ends
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->wake);
    pthread_cond_destroy(&w->done);
    // a failed writer leaves its log for the next open to replay
    llt_steplog_close(w->log, atomic_load(&w->failed));
    llt_rows_free(w->rows);
    free(w);
}
