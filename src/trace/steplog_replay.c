// The step log's reader: the batches a dead run left in its logs (the format: steplog.h), handed
// to recovery a chunk at a time.
#include "trace/steplog.h"

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
        ls.n_tokens < 0 || (ls.phase < LOG_PHASE_GEN || ls.phase > LOG_PHASE_WARMUP) || ls.n_split_times < 0 ||
        (size_t) ls.n_split_times > size / sizeof(struct split_time) ||
        size != sizeof(ls) + (size_t) ls.n_times * sizeof(struct node_time) +
                (size_t) ls.n_split_times * sizeof(struct split_time)) return false;
    *s = (struct step_rows) {
        .step = ls.step, .decode = ls.decode, .graph_id = ls.graph_id, .pos0 = ls.pos0,
        .n_tokens = ls.n_tokens, .is_prompt = ls.phase == LOG_PHASE_PROMPT,
        .is_warmup = ls.phase == LOG_PHASE_WARMUP, .t_begin_ns = ls.t_begin_ns,
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

static bool read_ivs(struct reader * body, struct llt_batch * b) {
    const int32_t n = count_rows(body, sizeof(struct log_iv));
    if (n < 0 || !llt_grow((void **) &b->ivs, &b->cap_ivs, b->n_ivs + n, sizeof(struct iv_rows))) return false;
    for (int32_t i = 0; i < n; i++) {
        struct log_iv li;
        if (!take(body, &li, sizeof(li)) || li.step < 0 || li.idx < 0 || li.iv < 0 || li.n_changed < 0) return false;
        struct iv_rows * r = &b->ivs[b->n_ivs++];
        *r = (struct iv_rows) { .step = li.step, .n_changed = li.n_changed, .idx = li.idx, .iv = li.iv };
        snprintf(r->node, sizeof(r->node), "%.*s", (int) strnlen(li.node, sizeof(li.node)), li.node);
    }
    return true;
}

// ---- one log, a batch at a time ---------------------------------------------------------

struct log_file {
    char         path[1100];
    int          fd;
    const char * data;    // the file, mapped read-only (NULL when empty)
    size_t       size;
    struct reader r;      // the next record
    bool         done;    // the end is reached: at its end mark, or at damage
    char         damage[256]; // why the log stopped before its end mark ("" if it did not)
    size_t       damage_at;   // the offset of the batch that could not be read
    int64_t      n_batches;   // whole batches read
};

// the next whole batch, or NULL at the log's end (f->damage says whether that was damage)
static struct llt_batch * next_batch(struct log_file * f) {
    if (f->done) return NULL;
    struct llt_batch * cur = NULL;
    const char * start = f->r.p;
    bool ok = true;
    while (!f->done) {
        struct log_record rec;
        if (!take(&f->r, &rec, sizeof(rec))) {
            // a log ends at a kind 0; only a batch cut by the file's end is damage
            if (cur || f->r.p != f->r.end) snprintf(f->damage, sizeof(f->damage), "the file ends inside a batch");
            f->done = true;
            break;
        }
        if (rec.kind == 0 && !cur) { f->done = true; break; }
        if (rec.kind == 0 || (size_t) (f->r.end - f->r.p) < rec.size) {
            snprintf(f->damage, sizeof(f->damage), rec.kind == 0 ? "a batch without its end" : "a record past the file's end");
            f->done = true;
            break;
        }
        struct reader body = { f->r.p, f->r.p + rec.size };
        f->r.p += rec.size;
        const size_t padding = (8 - rec.size % 8) % 8;
        f->r.p += (size_t) (f->r.end - f->r.p) < padding ? (size_t) (f->r.end - f->r.p) : padding;
        if (!cur && !(cur = calloc(1, sizeof(*cur)))) {
            snprintf(f->damage, sizeof(f->damage), "out of memory");
            f->done = true;
            break;
        }
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
            case LOG_ROUTES: ok = read_routes(&body, cur); break;
            case LOG_IVS:    ok = read_ivs(&body, cur); break;
            case LOG_END:
                f->n_batches++;
                return cur;
            default:
                ok = false;
        }
        if (!ok) {
            snprintf(f->damage, sizeof(f->damage), "a record of kind %u that does not read", rec.kind);
            f->done = true;
        }
    }
    if (f->damage[0]) f->damage_at = (size_t) (start - f->data);
    llt_batch_free(cur);
    return NULL;
}

// opens, locks and maps a log; false if it is missing or a live process holds it
static bool log_open(struct log_file * f, int64_t run_id) {
    f->fd = open(f->path, O_RDONLY | O_CLOEXEC);
    if (f->fd < 0) return false;
    struct stat sb;
    if (flock(f->fd, LOCK_EX | LOCK_NB) != 0 || fstat(f->fd, &sb) != 0) { close(f->fd); f->fd = -1; return false; }
    f->size = (size_t) sb.st_size;
    if (f->size == 0) { // made but never written: nothing to read, no pointer to compute with
        f->done = true;
        return true;
    }
    {
        void * m = mmap(NULL, f->size, PROT_READ, MAP_PRIVATE, f->fd, 0);
        if (m == MAP_FAILED) {
            snprintf(f->damage, sizeof(f->damage), "cannot be mapped: %s", strerror(errno));
            f->done = true;
            return true;
        }
        f->data = m;
    }
    f->r = (struct reader) { f->data, f->data + f->size };
    struct log_header h = { 0 };
    static const struct log_header none;
    if (!take(&f->r, &h, sizeof(h)) || memcmp(&h, &none, sizeof(h)) == 0) {
        f->done = true; // made but never written: the process died before its first word
    } else if (memcmp(h.magic, LOG_MAGIC, 4) != 0) {
        snprintf(f->damage, sizeof(f->damage), "not a step log (bad magic)");
    } else if (h.version < LOG_VERSION_OLDEST || h.version > LOG_VERSION) {
        snprintf(f->damage, sizeof(f->damage), "a step log of version %u (this lltrace reads %d)", h.version, LOG_VERSION);
    } else if (h.run_id != run_id) {
        snprintf(f->damage, sizeof(f->damage), "the log of run %lld, not of run %lld", (long long) h.run_id, (long long) run_id);
    }
    if (f->damage[0]) f->done = true;
    return true;
}

static void log_close(struct log_file * f) {
    if (f->data) munmap((void *) f->data, f->size);
    if (f->fd >= 0) close(f->fd); // releases the lock
    f->data = NULL;
    f->fd = -1;
}

// ---- the run's logs, replayed ----------------------------------------------------------

// a chunk handed to recovery at once: memory stays bounded whatever the log holds
#define CHUNK_BATCHES 256

static int64_t first_step(const struct llt_batch * b) {
    for (int32_t i = 0; b && i < b->n_steps; i++) return b->steps[i].step;
    return INT64_MAX;
}

static void free_list(struct llt_batch * b) {
    while (b) {
        struct llt_batch * next = b->next;
        llt_batch_free(b);
        b = next;
    }
}

// keeps a damaged log beside the trace under a name no later run takes: <log>.damaged, or
// <log>.damaged.N when that exists
static void keep_damaged(const char * path, char * kept, size_t size) {
    for (int n = 1; n < 1000; n++) {
        if (n == 1) snprintf(kept, size, "%.1100s.damaged", path);
        else snprintf(kept, size, "%.1100s.damaged.%d", path, n);
        if (access(kept, F_OK) != 0 && rename(path, kept) == 0) return;
    }
    snprintf(kept, size, "%.1100s", path); // left where it is
}

static int replay_run(const char * trace_path, int64_t run_id, int (*fn)(const struct llt_replay * r, void * user_data),
                      void * user_data, bool * replayed) {
    struct log_file logs[2];
    int n_open = 0;
    for (int which = 0; which < 2; which++) {
        struct log_file * f = &logs[n_open];
        memset(f, 0, sizeof(*f));
        f->fd = -1;
        llt_steplog_path(f->path, sizeof(f->path), trace_path, run_id, which);
        if (log_open(f, run_id)) n_open++;
        else if (access(f->path, F_OK) == 0) { // a live process holds it: the run is alive
            for (int k = 0; k < n_open; k++) log_close(&logs[k]);
            return LLT_OK;
        }
    }
    // the log whose first batch came first is replayed first
    struct llt_batch * pending[2] = { NULL, NULL };
    for (int k = 0; k < n_open; k++) pending[k] = next_batch(&logs[k]);
    if (n_open == 2 && first_step(pending[1]) < first_step(pending[0])) {
        struct log_file t = logs[0]; logs[0] = logs[1]; logs[1] = t;
        struct llt_batch * p = pending[0]; pending[0] = pending[1]; pending[1] = p;
    }
    int rc = LLT_OK;
    for (int k = 0; k < n_open && rc == LLT_OK; k++) {
        struct llt_batch * b = pending[k];
        pending[k] = NULL;
        while (b && rc == LLT_OK) {
            struct llt_batch * head = b, * tail = b;
            for (int n = 1; n < CHUNK_BATCHES && (tail->next = next_batch(&logs[k])); n++) tail = tail->next;
            b = next_batch(&logs[k]); // NULL at the log's end
            tail->next = NULL;
            const struct llt_replay r = { .run_id = run_id, .batches = head };
            rc = fn(&r, user_data);
            free_list(head);
        }
        free_list(b);
    }
    for (int k = 0; k < 2; k++) free_list(pending[k]);
    char damage[2048] = ""; // (a second damaged log's account may be cut)
    for (int k = 0; k < n_open; k++) {
        struct log_file * f = &logs[k];
        const bool damaged = f->damage[0] != '\0';
        log_close(f);
        if (rc != LLT_OK || !damaged) continue;
        char kept[1200];
        keep_damaged(f->path, kept, sizeof(kept));
        snprintf(damage + strlen(damage), sizeof(damage) - strlen(damage),
                 "%sthe step log of run %lld is damaged at byte %zu (%.200s): %lld whole batches before it"
                 " replayed, the file kept as '%.1150s'", damage[0] ? "; " : "", (long long) run_id, f->damage_at,
                 f->damage, (long long) f->n_batches, kept);
    }
    if (rc == LLT_OK) {
        const struct llt_replay r = { .run_id = run_id, .last = true, .damage = damage[0] ? damage : NULL };
        rc = fn(&r, user_data);
    }
    if (rc == LLT_OK) {
        for (int which = 0; which < 2; which++) {
            char path[1100];
            llt_steplog_path(path, sizeof(path), trace_path, run_id, which);
            unlink(path); // the damaged ones were moved aside already
        }
        *replayed = true;
    }
    return rc;
}

// the folder of a trace and the file name prefix of its logs
static void log_glob(const char * trace_path, char * dir, size_t dir_size, char * prefix, size_t prefix_size) {
    llt_path_dir(trace_path, dir, dir_size);
    const char * slash = strrchr(trace_path, '/');
    snprintf(prefix, prefix_size, "%s-log-", slash ? slash + 1 : trace_path);
}

// run id of a log file name (<prefix><id> or <prefix><id>.1), or 0
static long long log_run_id(const char * name, const char * prefix) {
    if (strncmp(name, prefix, strlen(prefix)) != 0) return 0;
    char * end = NULL;
    long long run_id = strtoll(name + strlen(prefix), &end, 10);
    return end && (*end == '\0' || strcmp(end, ".1") == 0) && run_id > 0 ? run_id : 0;
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

int llt_steplog_replay_dead(const char * trace_path, int (*fn)(const struct llt_replay * r, void * user_data),
                            void * user_data) {
    char dir[1024], prefix[512];
    log_glob(trace_path, dir, sizeof(dir), prefix, sizeof(prefix));
    DIR * d = opendir(dir);
    if (!d) return 0;
    // the run ids first: replaying renames and removes files of the folder being read
    long long * ids = NULL;
    int32_t n_ids = 0, cap_ids = 0;
    for (struct dirent * e; (e = readdir(d));) {
        const long long id = log_run_id(e->d_name, prefix);
        bool seen = id == 0;
        for (int32_t i = 0; i < n_ids && !seen; i++) seen = ids[i] == id;
        if (seen) continue;
        if (!llt_grow((void **) &ids, &cap_ids, n_ids + 1, sizeof(*ids))) break;
        ids[n_ids++] = id;
    }
    closedir(d);
    int replayed = 0, rc = LLT_OK;
    for (int32_t i = 0; i < n_ids && rc == LLT_OK; i++) {
        bool done = false;
        rc = replay_run(trace_path, ids[i], fn, user_data, &done);
        replayed += done;
    }
    free(ids);
    return rc == LLT_OK ? replayed : rc;
}
