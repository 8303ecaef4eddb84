// The step log: the batches of a running trace that the writer has not committed yet.
//
// File <trace>-log-<run id>, native byte order (it is read back on the same machine):
//   1. header: magic "LLTL", u32 version (2), i64 run id, i64 pid of the writing process
//   2. records, each: u32 kind, u32 payload size, payload
//      LOG_GRAPH  i64 id, i32 n_nodes, i32 n_strings, node_rec[n_nodes],
//                 then n_strings strings, each u32 length + bytes (no NUL)
//      LOG_STEP   struct log_step, then node_time[n_times] (the timed nodes; version 2)
//      LOG_TOKENS struct token_rows[n]       (n from the size)
//      LOG_STATS  struct stat_rows[n]
//      LOG_DIFFS  struct diff_rows[n]
//      LOG_PARITY struct llt_parity_step[n]
//      LOG_END    (empty) closes a batch; a batch without its end is dropped when replayed
//   3. a record of kind 0 ends the log; the file may hold stale bytes after it
// The file is mapped shared: a batch is copied in with memcpy (no system call per step) and
// published by storing its first kind last, over the old end mark, so a process killed at
// any instant leaves whole batches only. Emptying the log moves the end mark back to the
// header; the pages stay and are reused. The running process holds an exclusive flock() on
// the file: a log nobody holds belongs to a process that died, and llt_steplog_recover()
// replays it into the trace.
#define _GNU_SOURCE // mremap
#include "trace/batch.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define LOG_MAGIC   "LLTL"
#define LOG_VERSION 2

enum log_kind { LOG_GRAPH = 1, LOG_STEP = 2, LOG_TOKENS = 3, LOG_END = 4, LOG_STATS = 5, LOG_DIFFS = 6, LOG_PARITY = 7 };

struct log_header {
    char     magic[4];
    uint32_t version;
    int64_t  run_id;
    int64_t  pid;
};
_Static_assert(sizeof(struct log_header) == 24, "log header layout");

struct log_record {
    uint32_t kind;
    uint32_t size;
};
_Static_assert(sizeof(struct log_record) == 8, "log record layout");

struct log_step {
    int64_t step, decode, graph_id;
    int64_t t_begin_ns, t_end_ns, compute_begin_ns, compute_end_ns, t_sample_ns;
    int32_t pos0, n_tokens, is_prompt, n_times, time_shift, unused;
};
_Static_assert(sizeof(struct log_step) == 88, "log step layout");

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

// n fixed-size rows as one record; none: no record
static bool put_array(struct llt_steplog * log, uint32_t kind, const void * rows, int32_t n, size_t elem) {
    const size_t size = (size_t) n * elem;
    return n == 0 || (put_record(log, kind, (uint32_t) size) && put(log, rows, size));
}

static bool put_graph(struct llt_steplog * log, const struct graph_rows * g) {
    size_t size = 16 + (size_t) g->n_nodes * sizeof(struct node_rec);
    for (int32_t i = 0; i < g->n_strings; i++) size += 4 + strlen(g->strings[i]);
    int32_t counts[2] = { g->n_nodes, g->n_strings };
    bool ok = put_record(log, LOG_GRAPH, (uint32_t) size) && put(log, &g->id, 8) && put(log, counts, 8) &&
              put(log, g->recs, (size_t) g->n_nodes * sizeof(struct node_rec));
    for (int32_t i = 0; ok && i < g->n_strings; i++) {
        uint32_t len = (uint32_t) strlen(g->strings[i]);
        ok = put(log, &len, 4) && put(log, g->strings[i], len);
    }
    return ok;
}

static bool put_step(struct llt_steplog * log, const struct step_rows * s) {
    struct log_step ls = {
        s->step, s->decode, s->graph_id, s->t_begin_ns, s->t_end_ns, s->compute_begin_ns, s->compute_end_ns,
        s->t_sample_ns, s->pos0, s->n_tokens, s->is_prompt, s->n_times, s->time_shift, 0,
    };
    size_t times = (size_t) s->n_times * sizeof(struct node_time);
    return put_record(log, LOG_STEP, (uint32_t) (sizeof(ls) + times)) && put(log, &ls, sizeof(ls)) &&
           (times == 0 || put(log, s->times, times));
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
    size_t need = 4096 + (size_t) b->n_stats * sizeof(struct stat_rows) + (size_t) b->n_diffs * sizeof(struct diff_rows) +
                  (size_t) b->n_tokens * (sizeof(struct token_rows) + 8) + (size_t) b->n_parity * sizeof(struct llt_parity_step);
    for (int32_t i = 0; i < b->n_steps; i++) need += (size_t) b->steps[i].n_times * sizeof(struct node_time) + 128;
    for (int32_t i = 0; i < b->n_graphs; i++) need += (size_t) b->graphs[i].n_nodes * sizeof(struct node_rec) + 65536;
    bool ok = put(log, NULL, 0) && (need <= log->cap || reserve(log, need));
    for (int32_t i = 0; ok && i < b->n_graphs; i++) ok = put_graph(log, &b->graphs[i]);
    for (int32_t i = 0; ok && i < b->n_steps; i++) ok = put_step(log, &b->steps[i]);
    ok = ok && put_array(log, LOG_TOKENS, b->tokens, b->n_tokens, sizeof(struct token_rows)) &&
         put_array(log, LOG_STATS, b->stats, b->n_stats, sizeof(struct stat_rows)) &&
         put_array(log, LOG_DIFFS, b->diffs, b->n_diffs, sizeof(struct diff_rows)) &&
         put_array(log, LOG_PARITY, b->parity, b->n_parity, sizeof(struct llt_parity_step));
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

static const void * take(struct reader * r, size_t n) {
    if ((size_t) (r->end - r->p) < n) return NULL;
    const void * at = r->p;
    r->p += n;
    return at;
}

static bool read_graph(struct reader * r, struct graph_rows * g) {
    const int64_t * id = take(r, 8);
    const int32_t * counts = take(r, 8);
    if (!id || !counts || counts[0] < 0 || counts[1] < 0) return false;
    const void * recs = take(r, (size_t) counts[0] * sizeof(struct node_rec));
    if (!recs) return false;
    *g = (struct graph_rows) { .id = *id, .n_nodes = counts[0], .n_strings = counts[1] };
    g->recs = malloc((size_t) counts[0] * sizeof(struct node_rec) + 1);
    g->strings = calloc((size_t) counts[1] + 1, sizeof(char *));
    g->string_data = malloc((size_t) (r->end - r->p) + (size_t) counts[1] + 1);
    if (!g->recs || !g->strings || !g->string_data) return false;
    memcpy(g->recs, recs, (size_t) counts[0] * sizeof(struct node_rec));
    char * out = g->string_data;
    for (int32_t i = 0; i < counts[1]; i++) {
        const uint32_t * len = take(r, 4);
        const char * s = len ? take(r, *len) : NULL;
        if (!s) return false;
        memcpy(out, s, *len);
        out[*len] = '\0';
        g->strings[i] = out;
        out += *len + 1;
    }
    // a record pointing outside its own string table is corruption
    for (int32_t i = 0; i < g->n_nodes; i++) {
        const struct node_rec * n = &g->recs[i];
        if (n->buffer >= counts[1] || n->n_src > GGML_MAX_SRC) return false;
        for (int k = 0; k < n->n_src; k++) {
            if (n->src_kind[k] == SRC_INPUT && n->src_ref[k] >= counts[1]) return false;
            if (n->src_kind[k] == SRC_NODE && (n->src_ref[k] < 0 || n->src_ref[k] >= i)) return false;
        }
    }
    return true;
}

static bool read_step(struct reader * r, uint32_t size, struct step_rows * s) {
    const struct log_step * ls = take(r, sizeof(*ls));
    if (!ls || ls->n_times < 0 || ls->time_shift < 0 || ls->time_shift > 31 ||
        size != sizeof(*ls) + (size_t) ls->n_times * sizeof(struct node_time)) return false;
    *s = (struct step_rows) {
        .step = ls->step, .decode = ls->decode, .graph_id = ls->graph_id, .pos0 = ls->pos0,
        .n_tokens = ls->n_tokens, .is_prompt = ls->is_prompt != 0, .t_begin_ns = ls->t_begin_ns,
        .t_end_ns = ls->t_end_ns, .compute_begin_ns = ls->compute_begin_ns,
        .compute_end_ns = ls->compute_end_ns, .t_sample_ns = ls->t_sample_ns, .n_times = ls->n_times,
        .time_shift = ls->time_shift,
    };
    if (ls->n_times == 0) return true;
    const void * times = take(r, (size_t) ls->n_times * sizeof(struct node_time));
    s->times = times ? malloc((size_t) ls->n_times * sizeof(struct node_time)) : NULL;
    if (!s->times) return false;
    memcpy(s->times, times, (size_t) ls->n_times * sizeof(struct node_time));
    return true;
}

// a record of fixed-size rows, appended to an array of the batch (NUL-terminating text is the caller's)
static bool read_array(struct reader * body, size_t elem, void ** arr, int32_t * n, int32_t * cap) {
    const size_t size = (size_t) (body->end - body->p);
    if (size % elem != 0) return false;
    const int32_t add = (int32_t) (size / elem);
    if (!llt_grow(arr, cap, *n + add, elem)) return false;
    memcpy((char *) *arr + (size_t) *n * elem, body->p, size);
    *n += add;
    return true;
}

// Parses a log into complete batches (linked by next); a torn tail is dropped.
static struct llt_batch * parse_log(const char * data, size_t size, int64_t run_id) {
    struct reader r = { data, data + size };
    const struct log_header * h = take(&r, sizeof(*h));
    if (!h || memcmp(h->magic, LOG_MAGIC, 4) != 0 || h->version != LOG_VERSION || h->run_id != run_id) return NULL;
    struct llt_batch * head = NULL, ** tail = &head, * cur = NULL;
    bool ok = true;
    while (ok) {
        const struct log_record * rec = take(&r, sizeof(*rec));
        if (!rec || rec->kind == 0 || (size_t) (r.end - r.p) < rec->size) break;
        struct reader body = { r.p, r.p + rec->size };
        r.p += rec->size;
        if (!cur && !(cur = calloc(1, sizeof(*cur)))) break;
        switch (rec->kind) {
            case LOG_GRAPH:
                ok = llt_grow((void **) &cur->graphs, &cur->cap_graphs, cur->n_graphs + 1, sizeof(struct graph_rows)) &&
                     read_graph(&body, &cur->graphs[cur->n_graphs++]);
                break;
            case LOG_STEP:
                ok = llt_grow((void **) &cur->steps, &cur->cap_steps, cur->n_steps + 1, sizeof(struct step_rows)) &&
                     read_step(&body, rec->size, &cur->steps[cur->n_steps++]);
                break;
            case LOG_TOKENS:
                ok = read_array(&body, sizeof(struct token_rows), (void **) &cur->tokens, &cur->n_tokens, &cur->cap_tokens);
                for (int32_t i = 0; ok && i < cur->n_tokens; i++) cur->tokens[i].piece[sizeof(cur->tokens[i].piece) - 1] = '\0';
                break;
            case LOG_STATS:
                ok = read_array(&body, sizeof(struct stat_rows), (void **) &cur->stats, &cur->n_stats, &cur->cap_stats);
                break;
            case LOG_DIFFS:
                ok = read_array(&body, sizeof(struct diff_rows), (void **) &cur->diffs, &cur->n_diffs, &cur->cap_diffs);
                for (int32_t i = 0; ok && i < cur->n_diffs; i++) cur->diffs[i].name[GGML_MAX_NAME - 1] = '\0';
                break;
            case LOG_PARITY:
                ok = read_array(&body, sizeof(struct llt_parity_step), (void **) &cur->parity, &cur->n_parity, &cur->cap_parity);
                for (int32_t i = 0; ok && i < cur->n_parity; i++) {
                    struct llt_parity_step * p = &cur->parity[i];
                    p->piece[sizeof(p->piece) - 1] = '\0';
                    ok = p->k >= 0 && p->k <= LLT_PARITY_MAX_K;
                }
                break;
            case LOG_END:
                *tail = cur;
                tail = &cur->next;
                cur = NULL;
                break;
            default:
                ok = false;
        }
    }
    llt_batch_free(cur); // incomplete: the process died while writing it
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

// weight names of a run, from the trace (the model file may be gone)
static char ** weight_names(struct llt_store * st, int64_t run_id, int32_t * n) {
    sqlite3_stmt * s = llt_store_prepare(st, "SELECT id, name FROM weights WHERE run_id=? ORDER BY id");
    if (!s) return NULL;
    sqlite3_bind_int64(s, 1, run_id);
    char ** names = NULL;
    int32_t cap = 0;
    *n = 0;
    while (sqlite3_step(s) == SQLITE_ROW) {
        int32_t id = sqlite3_column_int(s, 0);
        if (id < 0 || !llt_grow((void **) &names, &cap, id + 1, sizeof(char *))) break;
        names[id] = strdup((const char *) sqlite3_column_text(s, 1));
        if (id + 1 > *n) *n = id + 1;
    }
    sqlite3_finalize(s);
    return names;
}

static int replay(struct llt_store * st, int64_t run_id, const struct llt_batch * batches) {
    int32_t n_names = 0;
    char ** names = weight_names(st, run_id, &n_names);
    struct llt_rows * rows = NULL;
    int rc = llt_rows_init(st, run_id, (const char * const *) names, n_names, &rows);
    if (rc == LLT_OK && batches) rc = llt_rows_write(rows, batches);
    llt_rows_free(rows);
    for (int32_t i = 0; i < n_names; i++) free(names[i]);
    free(names);
    if (rc != LLT_OK) return rc;
    char ended[32], sql[512];
    llt_utc_now(ended, sizeof(ended));
    snprintf(sql, sizeof(sql),
        "UPDATE runs SET status='killed', ended_at='%s',"
        " n_prompt=(SELECT count(*) FROM tokens WHERE run_id=%lld AND role='prompt'),"
        " n_gen=(SELECT count(*) FROM tokens WHERE run_id=%lld AND role='gen')"
        " WHERE id=%lld AND status='running'",
        ended, (long long) run_id, (long long) run_id, (long long) run_id);
    return llt_store_exec(st, sql);
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

int llt_steplog_recover(struct llt_store * st, const char * trace_path) {
    char dir[1024], prefix[512];
    log_glob(trace_path, dir, sizeof(dir), prefix, sizeof(prefix));
    DIR * d = opendir(dir);
    if (!d) return 0;
    int recovered = 0, rc = LLT_OK;
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
        rc = replay(st, run_id, batches);
        while (batches) {
            struct llt_batch * next = batches->next;
            llt_batch_free(batches);
            batches = next;
        }
        if (rc == LLT_OK) {
            unlink(path);
            recovered++;
        }
        close(fd);
    }
    closedir(d);
    return rc == LLT_OK ? recovered : rc;
}
