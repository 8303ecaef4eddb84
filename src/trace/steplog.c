// The step log's writer: the batches of a running trace that the writer thread has not
// committed yet, copied into a shared file mapping (the format: steplog.h).
#define _GNU_SOURCE // mremap
#include "trace/steplog.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <unistd.h>

struct llt_steplog {
    int    fd;
    char   path[1100];
    char * map;      // the file, mapped shared
    size_t map_size;
    size_t end;      // offset of the end mark
    char * buf;      // one batch, serialised
    size_t len, cap;
};

#define LOG_INITIAL_SIZE ((size_t) 512 << 10) // the two take 1 MiB at once

void llt_steplog_path(char * out, size_t size, const char * trace_path, int64_t run_id, int which) {
    snprintf(out, size, "%s-log-%lld%s", trace_path, (long long) run_id, which ? ".1" : "");
}

// ---- writing -----------------------------------------------------------------------------

static bool reserve(struct llt_steplog * log, size_t need) {
    size_t cap = log->cap ? log->cap : 65536;
    while (cap < need) cap *= 2;
    char * nb = realloc(log->buf, cap);
    if (!nb) return false;
    log->buf = nb;
    log->cap = cap;
    return true;
}

static bool put(struct llt_steplog * log, const void * data, size_t n) {
    if (log->len + n > log->cap && !reserve(log, log->len + n)) return false;
    if (n) memcpy(log->buf + log->len, data, n);
    log->len += n;
    return true;
}

static bool put_record(struct llt_steplog * log, uint32_t kind, uint32_t size) {
    struct log_record r = { kind, size };
    return put(log, &r, sizeof(r));
}

// zero bytes up to the next multiple of 8, after a record's payload
static bool pad(struct llt_steplog * log) {
    static const char zeros[8];
    return put(log, zeros, (8 - log->len % 8) % 8);
}

static bool put_graph(struct llt_steplog * log, const struct graph_rows * g) {
    size_t size = sizeof(struct log_graph) + (size_t) g->n_nodes * sizeof(struct node_rec);
    for (int32_t i = 0; i < g->n_strings; i++) size += 4 + strlen(g->strings[i]);
    const struct log_graph lg = { g->id, g->n_nodes, g->n_strings };
    bool ok = size <= UINT32_MAX && put_record(log, LOG_GRAPH, (uint32_t) size) && put(log, &lg, sizeof(lg)) &&
              put(log, g->recs, (size_t) g->n_nodes * sizeof(struct node_rec));
    for (int32_t i = 0; ok && i < g->n_strings; i++) {
        uint32_t len = (uint32_t) strlen(g->strings[i]);
        ok = put(log, &len, 4) && put(log, g->strings[i], len);
    }
    return ok && pad(log);
}

static bool put_step(struct llt_steplog * log, const struct step_rows * s) {
    const struct log_step ls = {
        s->step, s->decode, s->graph_id, s->t_begin_ns, s->t_end_ns, s->compute_begin_ns, s->compute_end_ns,
        s->t_sample_ns, s->pos0, s->n_tokens,
        s->is_warmup ? LOG_PHASE_WARMUP : s->is_prompt ? LOG_PHASE_PROMPT : LOG_PHASE_GEN, s->n_times, s->time_shift,
        s->split_times ? s->n_split_times : 0, s->seq_mask,
    };
    const size_t times = (size_t) ls.n_times * sizeof(struct node_time);
    const size_t splits = (size_t) ls.n_split_times * sizeof(struct split_time);
    return put_record(log, LOG_STEP, (uint32_t) (sizeof(ls) + times + splits)) && put(log, &ls, sizeof(ls)) &&
           (times == 0 || put(log, s->times, times)) && (splits == 0 || put(log, s->split_times, splits)) && pad(log);
}

static bool put_tokens(struct llt_steplog * log, const struct token_rows * t, int32_t n) {
    bool ok = n == 0 || put_record(log, LOG_TOKENS, (uint32_t) ((size_t) n * sizeof(struct log_token)));
    for (int32_t i = 0; ok && i < n; i++) {
        struct log_token lt = { t[i].seq, t[i].step, t[i].pos, t[i].token, t[i].is_prompt, 0, {0}, t[i].seq_id, t[i].output };
        lt.piece_len = (int32_t) strnlen(t[i].piece, sizeof(lt.piece) - 1);
        memcpy(lt.piece, t[i].piece, (size_t) lt.piece_len);
        ok = put(log, &lt, sizeof(lt));
    }
    return ok;
}

static bool put_stats(struct llt_steplog * log, const struct stat_rows * r, int32_t n) {
    bool ok = n == 0 || put_record(log, LOG_STATS, (uint32_t) ((size_t) n * sizeof(struct log_stat)));
    for (int32_t i = 0; ok && i < n; i++) {
        const struct llt_stats * st = &r[i].st;
        const struct log_stat ls = { r[i].step, r[i].idx, 0, st->n, st->n_nan, st->n_pinf, st->n_ninf, st->n_zero,
                                     st->min, st->max, st->mean, st->std, st->absmax };
        ok = put(log, &ls, sizeof(ls));
    }
    return ok;
}

static bool put_diffs(struct llt_steplog * log, const struct diff_rows * r, int32_t n) {
    bool ok = n == 0 || put_record(log, LOG_DIFFS, (uint32_t) ((size_t) n * sizeof(struct log_diff)));
    for (int32_t i = 0; ok && i < n; i++) {
        const struct llt_diff * d = &r[i].d;
        struct log_diff ld = { r[i].step, r[i].idx, r[i].shape_ok, {0}, d->n, d->n_finite, d->a_nan + d->a_inf,
                               d->b_nan + d->b_inf, d->n_exceed, d->max_abs_index, d->max_abs, d->mean_abs, d->max_rel,
                               d->mean_rel, d->rmse, d->nmse, d->cosine };
        memcpy(ld.name, r[i].name, strnlen(r[i].name, sizeof(ld.name) - 1));
        ok = put(log, &ld, sizeof(ld));
    }
    return ok;
}

static bool put_parity(struct llt_steplog * log, const struct parity_rows * p) {
    const size_t len = p->top_k ? strlen(p->top_k) : 0;
    struct log_parity lp = { p->step, p->pos, p->token, (int32_t) len, {0}, p->seq_id, 0 };
    memcpy(lp.piece, p->piece, strnlen(p->piece, sizeof(lp.piece) - 1));
    return len < INT32_MAX - sizeof(lp) && put_record(log, LOG_PARITY, (uint32_t) (sizeof(lp) + len)) &&
           put(log, &lp, sizeof(lp)) && put(log, p->top_k, len) && pad(log);
}

static bool put_routes(struct llt_steplog * log, const struct route_rows * r, int32_t n) {
    bool ok = n == 0 || put_record(log, LOG_ROUTES, (uint32_t) ((size_t) n * sizeof(struct log_route)));
    for (int32_t i = 0; ok && i < n; i++) {
        const struct log_route lr = { r[i].step, r[i].layer, r[i].pos, r[i].rank, r[i].expert, r[i].weight, r[i].row, r[i].seq_id, 0 };
        ok = put(log, &lr, sizeof(lr));
    }
    return ok;
}

static bool put_ivs(struct llt_steplog * log, const struct iv_rows * r, int32_t n) {
    bool ok = n == 0 || put_record(log, LOG_IVS, (uint32_t) ((size_t) n * sizeof(struct log_iv)));
    for (int32_t i = 0; ok && i < n; i++) {
        struct log_iv li = { r[i].step, r[i].n_changed, r[i].idx, r[i].iv, {0} };
        memcpy(li.node, r[i].node, strnlen(r[i].node, sizeof(li.node) - 1));
        ok = put(log, &li, sizeof(li));
    }
    return ok;
}

// Maps the file at a size that holds `need` bytes. A larger map keeps the pages already
// mapped (mremap) and writes to each new page now, so that steps do not pay the faults: the
// first write to a page of a shared file mapping faults, and the file system gives it a block.
static int map_file(struct llt_steplog * log, size_t need) {
    if (log->map && need <= log->map_size) return LLT_OK;
    size_t size = log->map_size ? log->map_size : LOG_INITIAL_SIZE;
    // doubling up to the bound the writer keeps (steplog.h), then a megabyte at a time
    while (size < need) size = size < LOG_HARD_MAX ? size * 2 : size + ((size_t) 1 << 20);
    // the blocks in one call, not one at a time
    const int fa = posix_fallocate(log->fd, 0, (off_t) size);
    if (fa != 0 && fa != EOPNOTSUPP && fa != EINVAL) {
        return llt_set_error(LLT_EIO, "cannot grow step log '%s': %s", log->path, strerror(fa));
    }
    if (ftruncate(log->fd, (off_t) size) != 0) {
        return llt_set_error(LLT_EIO, "cannot grow step log '%s': %s", log->path, strerror(errno));
    }
    void * m = log->map ? mremap(log->map, log->map_size, size, MREMAP_MAYMOVE)
                        : mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, log->fd, 0);
    if (m == MAP_FAILED) return llt_set_error(LLT_EIO, "cannot map step log '%s': %s", log->path, strerror(errno));
    const long page = sysconf(_SC_PAGESIZE);
    for (size_t off = log->map_size; off < size; off += (size_t) page) {
        volatile char * p = (char *) m + off;
        *p = *p; // the file's own byte (zero past the old end)
    }
    log->map = m;
    log->map_size = size;
    return LLT_OK;
}

// copies the serialised batch in and publishes it with its first 4 bytes, stored last
static int publish(struct llt_steplog * log) {
    int rc = map_file(log, log->end + log->len + sizeof(struct log_record));
    if (rc != LLT_OK) return rc;
    char * at = log->map + log->end;
    memcpy(at + 4, log->buf + 4, log->len - 4);
    memset(at + log->len, 0, sizeof(struct log_record)); // the new end mark
    uint32_t first_kind;
    memcpy(&first_kind, log->buf, 4);
    __atomic_store_n((uint32_t *) at, first_kind, __ATOMIC_RELEASE);
    log->end += log->len;
    return LLT_OK;
}

int llt_steplog_append(struct llt_steplog * log, const struct llt_batch * b) {
    log->len = 0;
    // room for the graphs up front: one allocation, not a doubling per page
    size_t need = 4096 + (size_t) b->n_stats * sizeof(struct log_stat) + (size_t) b->n_diffs * sizeof(struct log_diff) +
                  (size_t) b->n_tokens * sizeof(struct log_token) + (size_t) b->n_parity * (sizeof(struct log_parity) + 1024) +
                  (size_t) b->n_routes * sizeof(struct log_route) + (size_t) b->n_ivs * sizeof(struct log_iv);
    for (int32_t i = 0; i < b->n_steps; i++) {
        need += (size_t) b->steps[i].n_times * sizeof(struct node_time) +
                (size_t) b->steps[i].n_split_times * sizeof(struct split_time) + 128;
    }
    for (int32_t i = 0; i < b->n_graphs; i++) need += (size_t) b->graphs[i].n_nodes * sizeof(struct node_rec) + 65536;
    bool ok = put(log, NULL, 0) && (need <= log->cap || reserve(log, need));
    for (int32_t i = 0; ok && i < b->n_graphs; i++) ok = put_graph(log, &b->graphs[i]);
    for (int32_t i = 0; ok && i < b->n_steps; i++) ok = put_step(log, &b->steps[i]);
    ok = ok && put_tokens(log, b->tokens, b->n_tokens) && put_stats(log, b->stats, b->n_stats) &&
         put_diffs(log, b->diffs, b->n_diffs) && put_routes(log, b->routes, b->n_routes) && put_ivs(log, b->ivs, b->n_ivs);
    for (int32_t i = 0; ok && i < b->n_parity; i++) ok = put_parity(log, &b->parity[i]);
    if (!ok || !put_record(log, LOG_END, 0)) return llt_set_error(LLT_ENOMEM, "out of memory");
    return publish(log);
}

int llt_steplog_create(const char * trace_path, int64_t run_id, int which, struct llt_steplog ** out) {
    *out = NULL;
    struct llt_steplog * log = calloc(1, sizeof(*log));
    if (!log) return llt_set_error(LLT_ENOMEM, "out of memory");
    llt_steplog_path(log->path, sizeof(log->path), trace_path, run_id, which);
    log->fd = open(log->path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int rc = LLT_OK;
    if (log->fd < 0) {
        rc = llt_set_error(LLT_EIO, "cannot create step log '%s': %s", log->path, strerror(errno));
    } else if (flock(log->fd, LOCK_EX | LOCK_NB) != 0) {
        rc = llt_set_error(LLT_EIO, "cannot lock step log '%s': %s", log->path, strerror(errno));
    } else if ((rc = map_file(log, LOG_INITIAL_SIZE)) == LLT_OK) {
        struct log_header h = { .version = LOG_VERSION, .run_id = run_id, .pid = (int64_t) getpid() };
        memcpy(h.magic, LOG_MAGIC, 4);
        memcpy(log->map, &h, sizeof(h));
        log->end = sizeof(h);
        memset(log->map + log->end, 0, sizeof(struct log_record));
    }
    if (rc != LLT_OK) {
        llt_steplog_close(log, false);
        return rc;
    }
    *out = log;
    return LLT_OK;
}

int llt_steplog_reset(struct llt_steplog * log) {
    __atomic_store_n((uint32_t *) (log->map + sizeof(struct log_header)), 0, __ATOMIC_RELEASE);
    log->end = sizeof(struct log_header);
    return LLT_OK;
}

size_t llt_steplog_used(const struct llt_steplog * log) {
    return log->end;
}

void llt_steplog_disown(struct llt_steplog * log) {
    if (!log || log->fd < 0) return;
    // the mapping holds the open file too, and with it the lock
    if (log->map) munmap(log->map, log->map_size);
    log->map = NULL;
    close(log->fd);
    log->fd = -1;
}

void llt_steplog_close(struct llt_steplog * log, bool keep) {
    if (!log) return;
    if (log->map) munmap(log->map, log->map_size);
    if (log->fd >= 0) {
        if (!keep) unlink(log->path);
        close(log->fd); // releases the lock
    }
    free(log->buf);
    free(log);
}

