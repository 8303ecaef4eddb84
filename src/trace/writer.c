// The writer: a thread that turns captured batches into trace rows.
//
// A commit costs tens of microseconds of SQLite and file system work, too much for the thread
// that runs inference, and more again when it is paid once per token. The capture side appends
// each decode call's batch to the step log (one copy, the crash insurance) and queues it; this
// thread commits what is queued every COMMIT_INTERVAL_MS, in order, in one transaction, with
// everything it holds: graph structures when first seen, node times, statistics. Nothing waits
// in memory for the run's end, so memory stays flat and a live reader sees each committed step
// whole within a second.
//
// The step log is two files (steplog.h): when the thread takes the queued batches it makes the
// other log current, under the queue's mutex, so the log it took them from holds exactly those
// batches; once they are committed it empties that log. A log that passes LOG_SOFT_MAX wakes
// the thread early; one that passes LOG_HARD_MAX makes the next submit wait for the swap, so
// the logs stay bounded even when commits fall behind. The thread runs at a lower priority.
// Rows are written by rows.c.
#define _DEFAULT_SOURCE // syscall(SYS_gettid): the writer thread lowers its own priority
#include "trace/steplog.h"

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

// How often the writer commits; LLTRACE_COMMIT_MS overrides it (tests use it to leave batches
// to the step log; the logs' own bound still wakes the writer, steplog.h). A commit costs the inference threads about a millisecond (the
// writer takes a core from one of them, and the other waits at the next barrier), so it comes
// rarely; the step log keeps the rows in between safe, and readers see them a second late.
#define COMMIT_INTERVAL_MS 1000

struct llt_writer {
    struct llt_rows *    rows;
    struct llt_steplog * logs[2];
    int                  cur;          // the log submits append to (under mu)

    pthread_t        thread;
    pthread_mutex_t  mu;
    pthread_cond_t   wake;     // sync or stop asked
    pthread_cond_t   done;     // batches committed, or the logs swapped
    struct llt_batch * head, * tail;
    int64_t          n_submitted, n_committed;
    bool             stop, sync;
    bool             log_failed;       // the log could not take a batch: nothing more goes in
    int              interval_ms;
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
// step on; llt_writer_stop() says which it is
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
        // the log just taken holds exactly todo; a failed writer no longer swaps: its logs keep
        // what it could not write
        const int taken = w->cur;
        if (n > 0 && !atomic_load(&w->failed)) w->cur ^= 1;
        pthread_cond_broadcast(&w->done); // a submit waiting for room
        pthread_mutex_unlock(&w->mu);

        // after a failure batches are dropped: tracing has stopped, the log keeps them
        if (todo && !atomic_load(&w->failed) && llt_rows_write(w->rows, todo) != LLT_OK) fail(w);
        if (atomic_load(&w->failed)) lost(w, todo);
        free_batches(todo);
        // committed: the taken log's batches are all in the trace (no submit appends to it now)
        if (n > 0 && !atomic_load(&w->failed) && llt_steplog_reset(w->logs[taken]) != LLT_OK) fail(w);

        pthread_mutex_lock(&w->mu);
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
    const char * env = getenv("LLTRACE_COMMIT_MS");
    w->interval_ms = env && atoi(env) > 0 ? atoi(env) : COMMIT_INTERVAL_MS;
    int rc = llt_rows_init(st, run_id, weight_names, n_weights, &w->rows);
    for (int k = 0; k < 2 && rc == LLT_OK; k++) rc = llt_steplog_create(llt_store_path(st), run_id, k, &w->logs[k]);
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
        for (int k = 0; k < 2; k++) llt_steplog_close(w->logs[k], false);
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
    // a log past its hard bound waits for the writer to swap (it wakes at once: sync)
    while (llt_steplog_used(w->logs[w->cur]) > LOG_HARD_MAX && !atomic_load(&w->failed) && !w->log_failed) {
        w->sync = true;
        pthread_cond_signal(&w->wake);
        pthread_cond_wait(&w->done, &w->mu);
    }
    // logged even after the trace failed (a full disk): the log's room is taken ahead, and
    // what it holds is replayed once the trace has room again
    if (!w->log_failed && llt_steplog_append(w->logs[w->cur], b) != LLT_OK) {
        w->log_failed = true;
        fail(w); // the thread drops b
    }
    if (w->tail) w->tail->next = b; else w->head = b;
    w->tail = b;
    w->n_submitted++;
    if (llt_steplog_used(w->logs[w->cur]) > LOG_SOFT_MAX && !w->sync) {
        w->sync = true; // commit early: the log is growing faster than the interval empties it
        pthread_cond_signal(&w->wake);
    }
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

void llt_writer_disown(struct llt_writer * w) {
    if (!w) return;
    for (int k = 0; k < 2; k++) llt_steplog_disown(w->logs[k]);
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
    for (int k = 0; k < 2; k++) llt_steplog_close(w->logs[k], failed);
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
