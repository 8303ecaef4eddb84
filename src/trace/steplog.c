// The step log: the batches of a running trace that the writer has not committed yet.
//
// File <trace>-log-<run id>, native byte order (it is read back on the same machine):
//   1. header (struct log_header): magic "LLTL", u32 version (5), i64 run id, i64 pid of the
//      writing process
//   2. records, each: u32 kind, u32 payload size, the payload, then zero bytes up to a multiple
//      of 8 (so every record, and the word that publishes a batch, is aligned)
//      LOG_GRAPH  struct log_graph, struct node_rec[n_nodes], then n_strings strings, each
//                 u32 length + bytes (no NUL)
//      LOG_STEP   struct log_step, then struct node_time[n_times] (the timed nodes), then
//                 struct split_time[n_split_times] (the timed splits)
//      LOG_TOKENS struct log_token[n]  (n from the size)
//      LOG_STATS  struct log_stat[n]
//      LOG_DIFFS  struct log_diff[n]
//      LOG_PARITY struct log_parity, then top_k_len bytes of top-k text (one record per row)
//      LOG_ROUTES struct log_route[n]  (version 4: the experts of MoE layers; 5: row, sequence)
//      LOG_END    (empty) closes a batch; a batch without its end is dropped when replayed
//   3. a record of kind 0 ends the log; the file may hold stale bytes after it
// Every record struct has fixed-width fields and a size asserted below; the rows of a batch
// are converted to and from them, so no struct of the public API is ever written raw. The
// reader copies each record out (memcpy, no pointer into the file) and checks every count,
// index and enum against what it can hold before anything uses it: a damaged log replays
// its whole batches up to the damage, or nothing, and never crashes the reader.
// The file is mapped shared: a batch is copied in with memcpy (no system call per step) and
// published by storing its first kind last, over the old end mark, so a process killed at
// any instant leaves whole batches only. Emptying the log moves the end mark back to the
// header; the pages stay and are reused. The running process holds an exclusive flock() on
// the file: a log nobody holds belongs to a process that died, and llt_steplog_replay_dead()
// hands its batches to recovery (recovery.c).
#define _GNU_SOURCE // mremap
#include "trace/batch.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define LOG_MAGIC   "LLTL"
#define LOG_VERSION 5 // 4: tokens' sequences, node_rec.device, split, copied; split times; routing
                      // 5: a route's row and sequence

enum log_kind { LOG_GRAPH = 1, LOG_STEP = 2, LOG_TOKENS = 3, LOG_END = 4, LOG_STATS = 5, LOG_DIFFS = 6, LOG_PARITY = 7,
                LOG_ROUTES = 8 };

struct log_header {
    char     magic[4];
    uint32_t version;
    int64_t  run_id;
    int64_t  pid;
};
_Static_assert(sizeof(struct log_header) == 24, "log header layout");

struct log_record {
    uint32_t kind;
    uint32_t size; // of the payload, without the padding
};
_Static_assert(sizeof(struct log_record) == 8, "log record layout");

struct log_graph {
    int64_t id;
    int32_t n_nodes, n_strings;
};
_Static_assert(sizeof(struct log_graph) == 16, "log graph layout");
// written as they are: the library's own fixed-width records (batch.h)
_Static_assert(sizeof(struct node_rec) == 64 + 4 * 4 + 4 * 8 + 8 + 7 * 4 + GGML_MAX_SRC * (4 + 4 + 8) + 4 /* padding before src_bytes */,
               "node_rec layout");
_Static_assert(sizeof(struct split_time) == 32, "split_time layout");
_Static_assert(sizeof(struct node_time) == 12, "node_time layout");

struct log_step {
    int64_t step, decode, graph_id;
    int64_t t_begin_ns, t_end_ns, compute_begin_ns, compute_end_ns, t_sample_ns;
    int32_t pos0, n_tokens, is_prompt, n_times, time_shift, n_split_times;
    int64_t seq_mask;
};
_Static_assert(sizeof(struct log_step) == 96, "log step layout");

struct log_token {
    int64_t seq, step;
    int32_t pos, token, is_prompt, piece_len;
    char    piece[128];
    int32_t seq_id, output;
};
_Static_assert(sizeof(struct log_token) == 168, "log token layout");

struct log_stat {
    int64_t step;
    int32_t idx, unused;
    int64_t n, n_nan, n_pinf, n_ninf, n_zero;
    double  min, max, mean, std, absmax;
};
_Static_assert(sizeof(struct log_stat) == 96, "log stat layout");

struct log_diff {
    int64_t step;
    int32_t idx, shape_ok;
    char    name[64];
    int64_t n, n_finite, a_nonfinite, b_nonfinite, n_exceed, max_abs_index;
    double  max_abs, mean_abs, max_rel, mean_rel, rmse, nmse, cosine;
};
_Static_assert(sizeof(struct log_diff) == 184, "log diff layout");
_Static_assert(GGML_MAX_NAME <= 64, "a node name fits a log diff");

struct log_parity {
    int32_t step, pos, token, top_k_len;
    char    piece[64];
    int32_t seq_id, unused;
};
_Static_assert(sizeof(struct log_parity) == 88, "log parity layout");

struct log_route {
    int64_t step;
    int32_t layer, pos, rank, expert;
    float   weight;
    int32_t row, seq_id, unused;
};
_Static_assert(sizeof(struct log_route) == 40, "log route layout");

struct llt_steplog {
    int    fd;
    char   path[1100];
    char * map;      // the file, mapped shared
    size_t map_size;
    size_t end;      // offset of the end mark
    char * buf;      // one batch, serialised
    size_t len, cap;
};

#define LOG_INITIAL_SIZE (1u << 20)

static void log_path(char * out, size_t size, const char * trace_path, int64_t run_id) {
    snprintf(out, size, "%s-log-%lld", trace_path, (long long) run_id);
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
        s->t_sample_ns, s->pos0, s->n_tokens, s->is_prompt, s->n_times, s->time_shift,
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

// Maps the file at a size that holds `need` bytes. A larger map keeps the pages already
// mapped (mremap) and writes to each new page now, so that steps do not pay the faults: the
// first write to a page of a shared file mapping faults, and the file system gives it a block.
static int map_file(struct llt_steplog * log, size_t need) {
    if (log->map && need <= log->map_size) return LLT_OK;
    size_t size = log->map_size ? log->map_size : LOG_INITIAL_SIZE;
    while (size < need) size *= 2;
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
                  (size_t) b->n_routes * sizeof(struct log_route);
    for (int32_t i = 0; i < b->n_steps; i++) {
        need += (size_t) b->steps[i].n_times * sizeof(struct node_time) +
                (size_t) b->steps[i].n_split_times * sizeof(struct split_time) + 128;
    }
    for (int32_t i = 0; i < b->n_graphs; i++) need += (size_t) b->graphs[i].n_nodes * sizeof(struct node_rec) + 65536;
    bool ok = put(log, NULL, 0) && (need <= log->cap || reserve(log, need));
    for (int32_t i = 0; ok && i < b->n_graphs; i++) ok = put_graph(log, &b->graphs[i]);
    for (int32_t i = 0; ok && i < b->n_steps; i++) ok = put_step(log, &b->steps[i]);
    ok = ok && put_tokens(log, b->tokens, b->n_tokens) && put_stats(log, b->stats, b->n_stats) &&
         put_diffs(log, b->diffs, b->n_diffs) && put_routes(log, b->routes, b->n_routes);
    for (int32_t i = 0; ok && i < b->n_parity; i++) ok = put_parity(log, &b->parity[i]);
    if (!ok || !put_record(log, LOG_END, 0)) return llt_set_error(LLT_ENOMEM, "out of memory");
    return publish(log);
}

int llt_steplog_create(const char * trace_path, int64_t run_id, struct llt_steplog ** out) {
    *out = NULL;
    struct llt_steplog * log = calloc(1, sizeof(*log));
    if (!log) return llt_set_error(LLT_ENOMEM, "out of memory");
    log_path(log->path, sizeof(log->path), trace_path, run_id);
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

// ---- reading back ------------------------------------------------------------------------

struct reader {
    const char * p, * end;
};

// copies the next n bytes out; false if the data ends first
static bool take(struct reader * r, void * out, size_t n) {
    if ((size_t) (r->end - r->p) < n) return false;
    memcpy(out, r->p, n);
    r->p += n;
    return true;
}

// a node record that can be written without reading outside its graph, its strings or an enum's names
static bool valid_rec(const struct node_rec * n, int32_t idx, int32_t n_strings) {
    if (n->op < 0 || n->op >= GGML_OP_COUNT || n->type < 0 || n->type >= GGML_TYPE_COUNT) return false;
    if (n->op == GGML_OP_UNARY && (n->subop < 0 || n->subop >= GGML_UNARY_OP_COUNT)) return false;
    if (n->op == GGML_OP_GLU && (n->subop < 0 || n->subop >= GGML_GLU_OP_COUNT)) return false;
    if (n->buffer < -1 || n->buffer >= n_strings || n->n_src < 0 || n->n_src > GGML_MAX_SRC) return false;
    if (n->device < -1 || n->device >= n_strings || n->split < 0 || n->split > idx) return false;
    for (int k = 0; k < n->n_src; k++) {
        const int32_t ref = n->src_ref[k];
        switch (n->src_kind[k]) {
            case SRC_NONE:   if (n->copied & (1 << k)) return false; break; // no source, nothing copied
            case SRC_NODE:   if (ref < 0 || ref >= idx) return false; break;
            case SRC_WEIGHT: if (ref < 0) return false; break;
            case SRC_INPUT:  if (ref < -1 || ref >= n_strings) return false; break;
            default:         return false;
        }
    }
    return true;
}

static bool read_graph(struct reader * r, struct graph_rows * g) {
    struct log_graph lg;
    if (!take(r, &lg, sizeof(lg)) || lg.n_nodes < 0 || lg.n_strings < 0 ||
        (size_t) lg.n_nodes > (size_t) (r->end - r->p) / sizeof(struct node_rec) ||
        (size_t) lg.n_strings > (size_t) (r->end - r->p) / 4) return false;
    *g = (struct graph_rows) { .id = lg.id, .n_nodes = lg.n_nodes, .n_strings = lg.n_strings };
    g->recs = malloc((size_t) lg.n_nodes * sizeof(struct node_rec) + 1);
    g->strings = calloc((size_t) lg.n_strings + 1, sizeof(char *));
    g->string_data = malloc((size_t) (r->end - r->p) + (size_t) lg.n_strings + 1);
    if (!g->recs || !g->strings || !g->string_data || !take(r, g->recs, (size_t) lg.n_nodes * sizeof(struct node_rec))) {
        return false;
    }
    char * out = g->string_data;
    for (int32_t i = 0; i < lg.n_strings; i++) {
        uint32_t len;
        if (!take(r, &len, 4) || !take(r, out, len)) return false;
        out[len] = '\0';
        g->strings[i] = out;
        out += len + 1;
    }
    for (int32_t i = 0; i < g->n_nodes; i++) {
        g->recs[i].name[sizeof(g->recs[i].name) - 1] = '\0';
        if (!valid_rec(&g->recs[i], i, lg.n_strings)) return false;
    }
    return true;
}

static bool read_step(struct reader * r, uint32_t size, struct step_rows * s) {
    struct log_step ls;
    if (!take(r, &ls, sizeof(ls)) || ls.n_times < 0 || ls.time_shift < 0 || ls.time_shift > 31 || ls.step < 0 ||
        ls.n_tokens < 0 || (ls.is_prompt != 0 && ls.is_prompt != 1) || ls.n_split_times < 0 ||
        (size_t) ls.n_split_times > size / sizeof(struct split_time) ||
        size != sizeof(ls) + (size_t) ls.n_times * sizeof(struct node_time) +
                (size_t) ls.n_split_times * sizeof(struct split_time)) return false;
    *s = (struct step_rows) {
        .step = ls.step, .decode = ls.decode, .graph_id = ls.graph_id, .pos0 = ls.pos0,
        .n_tokens = ls.n_tokens, .is_prompt = ls.is_prompt != 0, .t_begin_ns = ls.t_begin_ns,
        .t_end_ns = ls.t_end_ns, .compute_begin_ns = ls.compute_begin_ns,
        .compute_end_ns = ls.compute_end_ns, .t_sample_ns = ls.t_sample_ns, .n_times = ls.n_times,
        .time_shift = ls.time_shift, .seq_mask = ls.seq_mask, .n_split_times = ls.n_split_times,
    };
    if (ls.n_times > 0) {
        s->times = malloc((size_t) ls.n_times * sizeof(struct node_time));
        if (!s->times || !take(r, s->times, (size_t) ls.n_times * sizeof(struct node_time))) return false;
        for (int32_t k = 0; k < ls.n_times; k++) {
            if (s->times[k].idx < 0 || s->times[k].end < s->times[k].begin) return false;
        }
    }
    if (ls.n_split_times > 0) {
        s->split_times = malloc((size_t) ls.n_split_times * sizeof(struct split_time));
        if (!s->split_times || !take(r, s->split_times, (size_t) ls.n_split_times * sizeof(struct split_time))) return false;
        for (int32_t k = 0; k < ls.n_split_times; k++) {
            const struct split_time * t = &s->split_times[k];
            if (t->split < 0 || t->idx < t->split || t->t_begin_ns > t->t_compute_ns || t->t_compute_ns > t->t_end_ns) return false;
        }
    }
    return true;
}

// a record of n fixed-size rows: how many, or -1 if its size is not a whole number of them
static int32_t count_rows(const struct reader * body, size_t elem) {
    const size_t size = (size_t) (body->end - body->p);
    return size % elem == 0 && size / elem < INT32_MAX / 2 ? (int32_t) (size / elem) : -1;
}

static bool read_tokens(struct reader * body, struct llt_batch * b) {
    const int32_t n = count_rows(body, sizeof(struct log_token));
    if (n < 0 || !llt_grow((void **) &b->tokens, &b->cap_tokens, b->n_tokens + n, sizeof(struct token_rows))) return false;
    for (int32_t i = 0; i < n; i++) {
        struct log_token lt;
        if (!take(body, &lt, sizeof(lt)) || lt.piece_len < 0 || lt.piece_len >= (int32_t) sizeof(lt.piece) ||
            (lt.is_prompt != 0 && lt.is_prompt != 1) || (lt.output < -1 || lt.output > 1) || lt.seq < 0) return false;
        struct token_rows * t = &b->tokens[b->n_tokens++];
        *t = (struct token_rows) { .seq = lt.seq, .step = lt.step, .pos = lt.pos, .seq_id = lt.seq_id, .token = lt.token,
                                   .is_prompt = lt.is_prompt, .output = (int8_t) lt.output };
        memcpy(t->piece, lt.piece, (size_t) lt.piece_len);
        t->piece[lt.piece_len] = '\0';
    }
    return true;
}

static bool read_stats(struct reader * body, struct llt_batch * b) {
    const int32_t n = count_rows(body, sizeof(struct log_stat));
    if (n < 0 || !llt_grow((void **) &b->stats, &b->cap_stats, b->n_stats + n, sizeof(struct stat_rows))) return false;
    for (int32_t i = 0; i < n; i++) {
        struct log_stat ls;
        if (!take(body, &ls, sizeof(ls)) || ls.idx < 0) return false;
        b->stats[b->n_stats++] = (struct stat_rows) { ls.step, ls.idx, { ls.n, ls.n_nan, ls.n_pinf, ls.n_ninf, ls.n_zero,
                                                                         ls.min, ls.max, ls.mean, ls.std, ls.absmax } };
    }
    return true;
}

static bool read_diffs(struct reader * body, struct llt_batch * b) {
    const int32_t n = count_rows(body, sizeof(struct log_diff));
    if (n < 0 || !llt_grow((void **) &b->diffs, &b->cap_diffs, b->n_diffs + n, sizeof(struct diff_rows))) return false;
    for (int32_t i = 0; i < n; i++) {
        struct log_diff ld;
        if (!take(body, &ld, sizeof(ld)) || ld.idx < 0) return false;
        struct diff_rows * d = &b->diffs[b->n_diffs++];
        *d = (struct diff_rows) { .step = ld.step, .idx = ld.idx, .shape_ok = ld.shape_ok != 0 };
        // the non-finite counts come back as NaN counts: the trace keeps only their sums
        d->d = (struct llt_diff) { .n = ld.n, .n_finite = ld.n_finite, .a_nan = ld.a_nonfinite, .b_nan = ld.b_nonfinite,
                                   .n_exceed = ld.n_exceed, .max_abs_index = ld.max_abs_index, .max_abs = ld.max_abs,
                                   .mean_abs = ld.mean_abs, .max_rel = ld.max_rel, .mean_rel = ld.mean_rel,
                                   .rmse = ld.rmse, .nmse = ld.nmse, .cosine = ld.cosine };
        ld.name[sizeof(ld.name) - 1] = '\0';
        snprintf(d->name, sizeof(d->name), "%s", ld.name);
    }
    return true;
}

static bool read_parity(struct reader * body, struct llt_batch * b) {
    struct log_parity lp;
    if (!take(body, &lp, sizeof(lp)) || lp.top_k_len < 0 || (size_t) lp.top_k_len != (size_t) (body->end - body->p) ||
        !llt_grow((void **) &b->parity, &b->cap_parity, b->n_parity + 1, sizeof(struct parity_rows))) return false;
    struct parity_rows * p = &b->parity[b->n_parity];
    *p = (struct parity_rows) { .seq_id = lp.seq_id, .step = lp.step, .pos = lp.pos, .token = lp.token,
                                .top_k = malloc((size_t) lp.top_k_len + 1) };
    lp.piece[sizeof(lp.piece) - 1] = '\0';
    snprintf(p->piece, sizeof(p->piece), "%s", lp.piece);
    if (!p->top_k) return false;
    b->n_parity++; // owns top_k from here
    if (!take(body, p->top_k, (size_t) lp.top_k_len)) return false;
    p->top_k[lp.top_k_len] = '\0';
    return true;
}

static bool read_routes(struct reader * body, struct llt_batch * b) {
    const int32_t n = count_rows(body, sizeof(struct log_route));
    if (n < 0 || !llt_grow((void **) &b->routes, &b->cap_routes, b->n_routes + n, sizeof(struct route_rows))) return false;
    for (int32_t i = 0; i < n; i++) {
        struct log_route lr;
        if (!take(body, &lr, sizeof(lr)) || lr.layer < 0 || lr.rank < 0 || lr.expert < 0 || lr.row < 0 || lr.seq_id < -1) return false;
        b->routes[b->n_routes++] = (struct route_rows) {
            .step = lr.step, .layer = lr.layer, .row = lr.row, .pos = lr.pos, .seq_id = lr.seq_id,
            .rank = lr.rank, .expert = lr.expert, .weight = lr.weight,
        };
    }
    return true;
}

// Parses a log into complete batches (linked by next); a torn or damaged tail is dropped.
static struct llt_batch * parse_log(const char * data, size_t size, int64_t run_id) {
    struct reader r = { data, data + size };
    struct log_header h;
    if (!take(&r, &h, sizeof(h)) || memcmp(h.magic, LOG_MAGIC, 4) != 0 || h.version != LOG_VERSION || h.run_id != run_id) {
        return NULL;
    }
    struct llt_batch * head = NULL, ** tail = &head, * cur = NULL;
    bool ok = true;
    while (ok) {
        struct log_record rec;
        if (!take(&r, &rec, sizeof(rec)) || rec.kind == 0 || (size_t) (r.end - r.p) < rec.size) break;
        struct reader body = { r.p, r.p + rec.size };
        r.p += rec.size;
        r.p += (size_t) (r.end - r.p) < (8 - rec.size % 8) % 8 ? (size_t) (r.end - r.p) : (8 - rec.size % 8) % 8;
        if (!cur && !(cur = calloc(1, sizeof(*cur)))) break;
        switch (rec.kind) {
            case LOG_GRAPH:
                ok = llt_grow((void **) &cur->graphs, &cur->cap_graphs, cur->n_graphs + 1, sizeof(struct graph_rows));
                // counted first: a graph read halfway is freed with the batch
                if (ok) ok = read_graph(&body, &cur->graphs[cur->n_graphs++]);
                break;
            case LOG_STEP:
                ok = llt_grow((void **) &cur->steps, &cur->cap_steps, cur->n_steps + 1, sizeof(struct step_rows));
                if (ok) ok = read_step(&body, rec.size, &cur->steps[cur->n_steps++]);
                break;
            case LOG_TOKENS: ok = read_tokens(&body, cur); break;
            case LOG_STATS:  ok = read_stats(&body, cur); break;
            case LOG_DIFFS:  ok = read_diffs(&body, cur); break;
            case LOG_PARITY: ok = read_parity(&body, cur); break;
            case LOG_ROUTES: ok = h.version >= 4 && read_routes(&body, cur); break;
            case LOG_END:
                *tail = cur;
                tail = &cur->next;
                cur = NULL;
                break;
            default:
                ok = false;
        }
    }
    llt_batch_free(cur); // incomplete: the process died while writing it, or the log is damaged
    return head;
}

static char * read_whole(int fd, size_t * size) {
    struct stat sb;
    if (fstat(fd, &sb) != 0) return NULL;
    char * buf = malloc((size_t) sb.st_size + 1);
    size_t got = 0;
    while (buf && got < (size_t) sb.st_size) {
        ssize_t n = pread(fd, buf + got, (size_t) sb.st_size - got, (off_t) got);
        if (n <= 0) { free(buf); return NULL; }
        got += (size_t) n;
    }
    *size = got;
    return buf;
}

// the folder of a trace and the file name prefix of its logs
static void log_glob(const char * trace_path, char * dir, size_t dir_size, char * prefix, size_t prefix_size) {
    const char * slash = strrchr(trace_path, '/');
    if (!slash) snprintf(dir, dir_size, ".");
    else if (slash == trace_path) snprintf(dir, dir_size, "/");
    else snprintf(dir, dir_size, "%.*s", (int) (slash - trace_path), trace_path);
    snprintf(prefix, prefix_size, "%s-log-", slash ? slash + 1 : trace_path);
}

// run id of a log file name, or 0
static long long log_run_id(const char * name, const char * prefix) {
    if (strncmp(name, prefix, strlen(prefix)) != 0) return 0;
    char * end = NULL;
    long long run_id = strtoll(name + strlen(prefix), &end, 10);
    return end && *end == '\0' && run_id > 0 ? run_id : 0;
}

bool llt_steplog_any(const char * trace_path) {
    char dir[1024], prefix[512];
    log_glob(trace_path, dir, sizeof(dir), prefix, sizeof(prefix));
    DIR * d = opendir(dir);
    bool any = false;
    for (struct dirent * e; d && !any && (e = readdir(d));) any = log_run_id(e->d_name, prefix) > 0;
    if (d) closedir(d);
    return any;
}

int llt_steplog_replay_dead(const char * trace_path,
                            int (*fn)(int64_t run_id, const struct llt_batch * batches, void * user_data), void * user_data) {
    char dir[1024], prefix[512];
    log_glob(trace_path, dir, sizeof(dir), prefix, sizeof(prefix));
    DIR * d = opendir(dir);
    if (!d) return 0;
    int replayed = 0, rc = LLT_OK;
    for (struct dirent * e; rc == LLT_OK && (e = readdir(d));) {
        long long run_id = log_run_id(e->d_name, prefix);
        if (run_id == 0) continue;
        char path[1100];
        log_path(path, sizeof(path), trace_path, run_id);
        int fd = open(path, O_RDWR | O_CLOEXEC);
        if (fd < 0) continue;
        if (flock(fd, LOCK_EX | LOCK_NB) != 0) { close(fd); continue; } // a live run
        size_t size = 0;
        char * data = read_whole(fd, &size);
        struct llt_batch * batches = data ? parse_log(data, size, run_id) : NULL;
        free(data);
        rc = fn(run_id, batches, user_data);
        while (batches) {
            struct llt_batch * next = batches->next;
            llt_batch_free(batches);
            batches = next;
        }
        if (rc == LLT_OK) {
            unlink(path);
            replayed++;
        }
        close(fd);
    }
    closedir(d);
    return rc == LLT_OK ? replayed : rc;
}
