// The writer: a thread that turns captured batches into trace rows.
//
// A commit costs tens of microseconds of SQLite and file system work, too much for the thread
// that runs inference, and more again when it is paid once per token. The capture side appends
// each decode call's batch to the step log (one write(), the crash insurance) and queues it;
// this thread commits what is queued every COMMIT_INTERVAL_MS, in order, in one transaction,
// then empties the log. llt_writer_sync() commits at once and waits.
//
// Graph structures (a thousand rows each, a few per run), node times (a row per timed node)
// and node statistics (level values, a row per node per step) are the bulk: writing them while
// the model runs would take cores from inference, and a writer that preempts one of the
// compute threads stalls them all at the next barrier. They wait in memory, safe in the step
// log, and are written when the run ends or DEFERRED_MAX bytes of them have piled up; the
// step's own row goes in at once, its n_timed saying how many times will follow. The thread
// also runs at a lower priority. Rows are written by rows.c.
#define _DEFAULT_SOURCE // syscall(SYS_gettid): the writer thread lowers its own priority
#include "trace/batch.h"

#include <errno.h>
#include <pthread.h>
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
    bool             log_failed;       // the log could not take a batch: nothing more goes in
    int              interval_ms;
    struct llt_batch * deferred;       // batches holding only statistics, oldest first
    struct llt_batch ** deferred_tail;
    size_t           deferred_bytes;
    atomic_bool      failed;
    char             error[512];
    int64_t          first_lost;       // the first step of the batches dropped unwritten; -1 none (the thread's)
};

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
            b->steps[i].split_times = NULL; // written with the deferred copy
            b->steps[i].n_split_times = 0;
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

// the first step with rows in a list of batches, or -1 (graphs only)
static int64_t first_step(const struct llt_batch * b) {
    int64_t first = -1;
    for (; b; b = b->next) {
        for (int32_t i = 0; i < b->n_steps; i++)  if (first < 0 || b->steps[i].step < first) first = b->steps[i].step;
        for (int32_t i = 0; i < b->n_tokens; i++) if (first < 0 || b->tokens[i].step < first) first = b->tokens[i].step;
        for (int32_t i = 0; i < b->n_stats; i++)  if (first < 0 || b->stats[i].step < first) first = b->stats[i].step;
    }
    return first;
}

// the first error: the writer stops writing, the log keeps what it could not write
static void fail(struct llt_writer * w) {
    snprintf(w->error, sizeof(w->error), "%s", llt_last_error());
    atomic_store(&w->failed, true);
}

// batches the thread drops unwritten (the log has them): the trace lacks rows from their first
// step on. Node times and statistics are written late (defer_bulk), so that step can be long
// before the one tracing stopped at; llt_writer_stop() says which it is
static void lost(struct llt_writer * w, const struct llt_batch * b) {
    const int64_t step = first_step(b);
    if (step >= 0 && (w->first_lost < 0 || step < w->first_lost)) w->first_lost = step;
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
        if (todo && !atomic_load(&w->failed) && llt_rows_write(w->rows, todo) != LLT_OK) fail(w);
        if (atomic_load(&w->failed)) lost(w, todo);
        free_batches(todo);
        if (w->deferred && (stopping || w->deferred_bytes > DEFERRED_MAX)) {
            if (!atomic_load(&w->failed) && llt_rows_write(w->rows, w->deferred) != LLT_OK) fail(w);
            if (atomic_load(&w->failed)) lost(w, w->deferred);
            free_batches(w->deferred);
            w->deferred = NULL;
            w->deferred_tail = &w->deferred;
            w->deferred_bytes = 0;
        }

        pthread_mutex_lock(&w->mu);
        // caught up: what the log holds is all in the trace (the producer appends under mu)
        if (n > 0 && !w->head && !w->deferred && !atomic_load(&w->failed) && llt_steplog_reset(w->log) != LLT_OK) {
            fail(w);
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
    w->first_lost = -1;
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
    // logged even after the trace failed (a full disk): the log's room is taken ahead, and
    // what it holds is replayed once the trace has room again
    if (!w->log_failed && llt_steplog_append(w->log, b) != LLT_OK) {
        w->log_failed = true;
        fail(w); // the thread drops b
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

int llt_writer_stop(struct llt_writer * w) {
    if (!w) return LLT_OK;
    pthread_mutex_lock(&w->mu);
    w->stop = true;
    pthread_cond_signal(&w->wake);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL); // the thread commits what is queued before it ends
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->wake);
    pthread_cond_destroy(&w->done);
    // a failed writer leaves its log for the next open to replay
    const bool failed = atomic_load(&w->failed);
    llt_steplog_close(w->log, failed);
    int rc = LLT_OK;
    if (failed && w->first_lost >= 0) {
        rc = llt_set_error(LLT_EIO, "rows from step %lld on not written: %s", (long long) w->first_lost, w->error);
    } else if (failed) {
        rc = llt_set_error(LLT_EIO, "%s", w->error);
    }
    llt_rows_free(w->rows);
    free(w);
    return rc;
}
