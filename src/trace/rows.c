// Rows: the batches capture hands over, as trace rows. One prepared insert per table, bound
// field by field; a batch list is one transaction. Used by the writer thread (writer.c) and
// by recovery (recovery.c), which replays a dead run's step log through the same code.
#include "trace/batch.h"
#include "trace/db.h"

#include <stdlib.h>
#include <string.h>

// one prepared insert per table; OR IGNORE: a step log replayed after a crash may repeat rows
// already committed
enum { INS_GRAPH, INS_NODE, INS_SRC, INS_STEP, INS_TIMES, INS_TOKEN, INS_STAT, INS_DIFF, INS_PARITY, INS_ROUTE, INS_SPLIT,
       INS_SPLIT_INPUT, INS_SPLIT_TIME, INS_IV, INS_COUNT };

static const char * insert_sql[] = {
    [INS_GRAPH]  = "INSERT OR IGNORE INTO graphs(id, run_id, n_nodes) VALUES(?,?,?)",
    [INS_NODE]   = "INSERT OR IGNORE INTO nodes(graph_id, idx, op, name, layer, type, ne0, ne1, ne2, ne3, bytes,"
                   " is_view, is_noop, buffer, layer_out, fused, device) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
    [INS_SRC]    = "INSERT OR IGNORE INTO node_srcs(graph_id, idx, slot, kind, src_idx, weight_id, name, bytes)"
                   " VALUES(?,?,?,?,?,?,?,?)",
    [INS_STEP]   = "INSERT OR IGNORE INTO steps(run_id, step, decode, phase, pos0, n_tokens, graph_id, t_begin_ns,"
                   " t_end_ns, compute_begin_ns, compute_end_ns, t_sample_ns, n_timed, seq_mask) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
    [INS_TIMES]  = "INSERT OR IGNORE INTO step_node_times(run_id, step, base_ns, times) VALUES(?,?,?,?)",
    [INS_TOKEN]  = "INSERT OR REPLACE INTO tokens(run_id, seq, role, step, pos, token, piece, piece_bytes, seq_id, output)"
                   " VALUES(?,?,?,?,?,?,?,?,?,?)",
    [INS_STAT]   = "INSERT OR IGNORE INTO step_node_stats(run_id, step, stats) VALUES(?,?,?)",
    [INS_DIFF]   = "INSERT OR IGNORE INTO node_diffs(run_id, step, idx, name, shape_ok, n, max_abs, mean_abs, max_rel,"
                   " mean_rel, rmse, nmse, cosine, ref_nonfinite, nonfinite, n_exceed, max_abs_index, within, n_finite,"
                   " n_nonfinite_pairs) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
    [INS_PARITY] = "INSERT OR REPLACE INTO parity(run_id, step, pos, token, piece, top_k, piece_bytes, seq_id) VALUES(?,?,?,?,?,?,?,?)",
    [INS_ROUTE]  = "INSERT OR IGNORE INTO expert_routing(run_id, step, layer, row, pos, seq_id, rank, expert, weight)"
                   " VALUES(?,?,?,?,?,?,?,?,?)",
    [INS_SPLIT]  = "INSERT OR IGNORE INTO splits(graph_id, split, device, idx_first, idx_last, n_nodes, n_inputs, input_bytes)"
                   " VALUES(?,?,?,?,?,?,?,?)",
    [INS_SPLIT_INPUT] = "INSERT OR IGNORE INTO split_inputs(graph_id, split, input, kind, src_idx, weight_id, name,"
                   " from_device, to_device, bytes) VALUES(?,?,?,?,?,?,?,?,?,?)",
    [INS_SPLIT_TIME] = "INSERT OR IGNORE INTO split_times(run_id, step, split, t_begin_ns, t_compute_ns, t_end_ns)"
                   " VALUES(?,?,?,?,?,?)",
    [INS_IV]     = "INSERT OR IGNORE INTO intervention_steps(run_id, step, iv, idx, node, n_changed) VALUES(?,?,?,?,?,?)",
};
_Static_assert(sizeof(insert_sql)/sizeof(insert_sql[0]) == INS_COUNT, "one insert per table");

struct llt_rows {
    struct llt_store *   st;
    int64_t              run_id;
    const char * const * weight_names;
    int32_t              n_weights;
    sqlite3_stmt *       ins[INS_COUNT]; // prepared inserts, by table
    char *               text;           // a step's node times or statistics as text (text_room)
    size_t               text_cap;
};

void llt_batch_free(struct llt_batch * b) {
    if (!b) return;
    for (int32_t i = 0; i < b->n_graphs; i++) {
        free(b->graphs[i].recs);
        free(b->graphs[i].strings);
        free(b->graphs[i].string_data);
    }
    for (int32_t i = 0; i < b->n_steps; i++) {
        free(b->steps[i].times);
        free(b->steps[i].split_times);
    }
    free(b->graphs);
    free(b->steps);
    free(b->tokens);
    free(b->stats);
    free(b->diffs);
    for (int32_t i = 0; i < b->n_parity; i++) free(b->parity[i].top_k);
    free(b->parity);
    free(b->routes);
    free(b->ivs);
    free(b);
}

static const char * src_kind_names[] = { "none", "node", "weight", "input" };

static void bind_time_or_null(sqlite3_stmt * s, int i, int64_t t_ns) {
    if (t_ns) sqlite3_bind_int64(s, i, t_ns); else sqlite3_bind_null(s, i);
}

const char * llt_node_op_name(const struct node_rec * r) {
    if (r->op == GGML_OP_UNARY) return ggml_unary_op_name((enum ggml_unary_op) r->subop);
    if (r->op == GGML_OP_GLU)   return ggml_glu_op_name((enum ggml_glu_op) r->subop);
    return ggml_op_name((enum ggml_op) r->op);
}

// binds source k of r: its node idx at column col, weight id at col + 1, name at col + 2
static void bind_src(struct llt_rows * w, const struct graph_rows * g, sqlite3_stmt * s, const struct node_rec * r, int k, int col) {
    sqlite3_bind_null(s, col);
    sqlite3_bind_null(s, col + 1);
    const char * name = NULL;
    if (r->src_kind[k] == SRC_NODE) {
        sqlite3_bind_int(s, col, r->src_ref[k]);
        name = g->recs[r->src_ref[k]].name;
    } else if (r->src_kind[k] == SRC_WEIGHT) {
        sqlite3_bind_int(s, col + 1, r->src_ref[k]);
        name = r->src_ref[k] < w->n_weights ? w->weight_names[r->src_ref[k]] : NULL;
    } else if (r->src_kind[k] == SRC_INPUT && r->src_ref[k] >= 0) {
        name = g->strings[r->src_ref[k]];
    }
    llt_store_bind_text(s, col + 2, name);
}

static const char * device_name(const struct graph_rows * g, int32_t device) {
    return device >= 0 ? g->strings[device] : NULL;
}

// The splits of a graph and the inputs the scheduler copied into each. The scheduler makes one
// copy of a source per device and graph, in the first split on that device that reads it
// (ggml-backend.cpp, ggml_backend_sched_split_graph), so a source copied again later is not
// counted again. A copied graph input or weight comes from the CPU: the scheduler keeps graph
// inputs on its last backend, the CPU, and copies weights only out of host memory.
static int write_splits(struct llt_rows * w, const struct graph_rows * g) {
    struct seen { int32_t kind, ref, to; } * seen = NULL;
    int32_t n_seen = 0, cap_seen = 0;
    int rc = LLT_OK;
    for (int32_t i = 0; i < g->n_nodes && rc == LLT_OK;) {
        const int32_t split = g->recs[i].split;
        int32_t last = i, n_inputs = 0, device = -1;
        int64_t input_bytes = 0;
        for (; last + 1 < g->n_nodes && g->recs[last + 1].split == split; last++) {}
        for (int32_t j = i; j <= last && rc == LLT_OK; j++) {
            const struct node_rec * r = &g->recs[j];
            if (device < 0 && !(r->flags & NODE_VIEW)) device = r->device;
            for (int k = 0; k < r->n_src && rc == LLT_OK; k++) {
                if (!(r->copied & (1 << k))) continue;
                bool dup = false;
                for (int32_t q = 0; q < n_seen && !dup; q++) {
                    dup = seen[q].kind == r->src_kind[k] && seen[q].ref == r->src_ref[k] && seen[q].to == r->device;
                }
                if (dup) continue;
                if (!llt_grow((void **) &seen, &cap_seen, n_seen + 1, sizeof(*seen))) { rc = llt_set_error(LLT_ENOMEM, "out of memory"); break; }
                seen[n_seen++] = (struct seen) { r->src_kind[k], r->src_ref[k], r->device };
                sqlite3_stmt * s = w->ins[INS_SPLIT_INPUT];
                sqlite3_bind_int64(s, 1, g->id);
                sqlite3_bind_int(s, 2, split);
                sqlite3_bind_int(s, 3, n_inputs++);
                sqlite3_bind_text(s, 4, src_kind_names[r->src_kind[k]], -1, SQLITE_STATIC);
                bind_src(w, g, s, r, k, 5);
                const char * from = r->src_kind[k] == SRC_NODE ? device_name(g, g->recs[r->src_ref[k]].device) : "CPU";
                llt_store_bind_text(s, 8, from);
                llt_store_bind_text(s, 9, device_name(g, r->device));
                sqlite3_bind_int64(s, 10, (int64_t) r->src_bytes[k]);
                input_bytes += (int64_t) r->src_bytes[k];
                rc = llt_store_step_done(w->st, s);
            }
        }
        if (rc != LLT_OK) break;
        sqlite3_stmt * s = w->ins[INS_SPLIT];
        sqlite3_bind_int64(s, 1, g->id);
        sqlite3_bind_int(s, 2, split);
        llt_store_bind_text(s, 3, device_name(g, device >= 0 ? device : g->recs[i].device));
        sqlite3_bind_int(s, 4, i);
        sqlite3_bind_int(s, 5, last);
        sqlite3_bind_int(s, 6, last - i + 1);
        sqlite3_bind_int(s, 7, n_inputs);
        sqlite3_bind_int64(s, 8, input_bytes);
        rc = llt_store_step_done(w->st, s);
        i = last + 1;
    }
    free(seen);
    return rc;
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
        llt_store_bind_text(s, 17, r->device >= 0 ? g->strings[r->device] : NULL);
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
            bind_src(w, g, s, r, k, 5);
            sqlite3_bind_int64(s, 8, (int64_t) r->src_bytes[k]);
            rc = llt_store_step_done(w->st, s);
        }
    }
    return rc == LLT_OK ? write_splits(w, g) : rc;
}

// ---- node times: one text per step ---------------------------------------------------------

// the decimal digits of v, at least 1: from its bit length, then one compare
static inline int decimal_digits(uint64_t v) {
    static const uint64_t pow10[20] = { 1ULL, 10ULL, 100ULL, 1000ULL, 10000ULL, 100000ULL, 1000000ULL, 10000000ULL,
        100000000ULL, 1000000000ULL, 10000000000ULL, 100000000000ULL, 1000000000000ULL, 10000000000000ULL,
        100000000000000ULL, 1000000000000000ULL, 10000000000000000ULL, 100000000000000000ULL,
        1000000000000000000ULL, 10000000000000000000ULL };
    v |= 1; // the same digits (a power of ten is even), and a bit length for 0
    const int t = ((64 - __builtin_clzll(v)) * 1233) >> 12; // floor(bits * log10(2)): digits or one less
    return t + (v >= pow10[t]);
}

// the 8 decimal digits of x < 10^8, leading zeros too, as 8 ASCII bytes in memory order (x86
// is little-endian: the first digit is the lowest byte). In lanes of one 64-bit word: x as two
// 4-digit halves, each as two 2-digit parts, each as two digits (divisions by multiplication).
static inline uint64_t digits8(uint32_t x) {
    const uint64_t halves = (uint64_t) (x / 10000) | (uint64_t) (x % 10000) << 32;
    const uint64_t hi100 = ((halves * 10486) >> 20) & 0x0000007F0000007FULL; // / 100 in each 32-bit lane
    const uint64_t pairs = hi100 | (halves - 100 * hi100) << 16;
    const uint64_t hi10 = ((pairs * 103) >> 10) & 0x000F000F000F000FULL;    // / 10 in each 16-bit lane
    return (hi10 | (pairs - 10 * hi10) << 8) + 0x3030303030303030ULL;
}

// the n (1-8) digits of x < 10^n at p in one 8-byte store; returns p + n. The store runs past
// them: the caller writes over those bytes next (texts have PUT_SLACK bytes of room to spare).
static inline char * put_lead(char * p, uint32_t x, int n) {
    const uint64_t w = digits8(x) >> (8 * (8 - n)); // without the leading zeros
    memcpy(p, &w, 8);
    return p + n;
}
#define PUT_SLACK 8
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "digits8 writes the first digit to the lowest byte");

// v in decimal at p; returns the end. Eight digits at a time (digits8): this runs 16 times per
// node at level values (put_real's mantissas have up to 16 digits), on the writer thread, which
// the model shares two cores with. Writes up to 8 bytes past the end (PUT_SLACK).
static char * put_u64(char * p, uint64_t v) {
    static const char pairs[] = "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
                                "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
                                "8081828384858687888990919293949596979899";
    if (v < 10) { // the counts of NaNs and infinities, mostly
        *p = (char) ('0' + v);
        return p + 1;
    }
    if (v < 100) { // put_real's exponents, mostly
        memcpy(p, &pairs[2 * v], 2);
        return p + 2;
    }
    const int n = decimal_digits(v);
    if (n <= 8) return put_lead(p, (uint32_t) v, n);
    if (n <= 16) {
        p = put_lead(p, (uint32_t) (v / 100000000), n - 8);
    } else {
        p = put_lead(p, (uint32_t) (v / 10000000000000000ULL), n - 16);
        const uint64_t mid = digits8((uint32_t) (v / 100000000 % 100000000));
        memcpy(p, &mid, 8);
        p += 8;
    }
    const uint64_t low = digits8((uint32_t) (v % 100000000));
    memcpy(p, &low, 8);
    return p + 8;
}

// w->text with room for need bytes; NULL when out of memory
static char * text_room(struct llt_rows * w, size_t need) {
    if (need > w->text_cap) {
        char * t = realloc(w->text, need);
        if (!t) return NULL;
        w->text = t;
        w->text_cap = need;
    }
    return w->text;
}

// The step's node times as step_node_times.times, [[idx,begin,end],...] in ns after its
// compute_begin_ns; in w->text, valid until the next call; NULL when out of memory. Written
// by hand: snprintf would cost the writer more than the rest of the step's row.
static const char * times_text(struct llt_rows * w, const struct step_rows * ps) {
    char * p = text_room(w, 3 + (size_t) ps->n_times * (3 + 3 * 20 + 3) + PUT_SLACK);
    if (!p) return NULL;
    *p++ = '[';
    for (int32_t k = 0; k < ps->n_times; k++) {
        const struct node_time * t = &ps->times[k];
        if (k) *p++ = ',';
        *p++ = '[';
        p = put_u64(p, (uint32_t) t->idx);
        *p++ = ',';
        p = put_u64(p, (uint64_t) t->begin << ps->time_shift);
        *p++ = ',';
        p = put_u64(p, (uint64_t) t->end << ps->time_shift);
        *p++ = ']';
    }
    *p++ = ']';
    *p = '\0';
    return w->text;
}

static int write_step(struct llt_rows * w, const struct step_rows * ps) {
    sqlite3_stmt * s = w->ins[INS_STEP];
    sqlite3_bind_int64(s, 1, w->run_id);
    sqlite3_bind_int64(s, 2, ps->step);
    sqlite3_bind_int64(s, 3, ps->decode);
    sqlite3_bind_text(s, 4, ps->is_warmup ? "warmup" : ps->is_prompt ? "prompt" : "gen", -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 5, ps->pos0);
    sqlite3_bind_int(s, 6, ps->n_tokens);
    sqlite3_bind_int64(s, 7, ps->graph_id);
    bind_time_or_null(s, 8, ps->t_begin_ns);
    bind_time_or_null(s, 9, ps->t_end_ns);
    sqlite3_bind_int64(s, 10, ps->compute_begin_ns);
    bind_time_or_null(s, 11, ps->compute_end_ns);
    bind_time_or_null(s, 12, ps->t_sample_ns);
    sqlite3_bind_int(s, 13, ps->n_times);
    sqlite3_bind_int64(s, 14, ps->seq_mask);
    int rc = llt_store_step_done(w->st, s);
    // the step's node times in one row, after the step's own (a step whose times are deferred
    // is written twice, the second time ignored)
    if (ps->n_times > 0 && ps->times && rc == LLT_OK) {
        s = w->ins[INS_TIMES];
        const char * text = times_text(w, ps);
        if (!text) return llt_set_error(LLT_ENOMEM, "out of memory");
        sqlite3_bind_int64(s, 1, w->run_id);
        sqlite3_bind_int64(s, 2, ps->step);
        sqlite3_bind_int64(s, 3, ps->compute_begin_ns);
        sqlite3_bind_text(s, 4, text, -1, SQLITE_STATIC);
        rc = llt_store_step_done(w->st, s);
    }
    for (int32_t k = 0; k < ps->n_split_times && ps->split_times && rc == LLT_OK; k++) {
        const struct split_time * t = &ps->split_times[k];
        s = w->ins[INS_SPLIT_TIME];
        sqlite3_bind_int64(s, 1, w->run_id);
        sqlite3_bind_int64(s, 2, ps->step);
        sqlite3_bind_int(s, 3, t->split);
        sqlite3_bind_int64(s, 4, t->t_begin_ns);
        sqlite3_bind_int64(s, 5, t->t_compute_ns);
        sqlite3_bind_int64(s, 6, t->t_end_ns);
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
    sqlite3_bind_int(s, 9, t->seq_id);
    if (t->output >= 0) sqlite3_bind_int(s, 10, t->output); else sqlite3_bind_null(s, 10);
    return llt_store_step_done(w->st, s);
}

// ---- node statistics: one text per step ----------------------------------------------------

static char * put_i64(char * p, int64_t v) {
    if (v < 0) {
        *p++ = '-';
        return put_u64(p, 0 - (uint64_t) v);
    }
    return put_u64(p, (uint64_t) v);
}

// v exactly, as the two integers "m,e" of v = m * 2^e, m odd or 0 (the view node_stats reads
// m * pow(2.0, e): schema.c says why not a decimal fraction). An infinity is ±1,1024; NaN is
// null,0 (SQLite stores a NaN as NULL). Zero is 0,0 of either sign: a REAL column kept -0.0 as
// the integer 0 too.
static char * put_real(char * p, double v) {
    uint64_t u;
    memcpy(&u, &v, sizeof(u));
    const int biased = (int) (u >> 52 & 0x7ff);
    uint64_t m = u & 0xfffffffffffffULL;
    int e = 0;
    if (biased == 0x7ff && m) {
        memcpy(p, "null,0", 6);
        return p + 6;
    }
    if (biased == 0x7ff) {
        m = 1;
        e = 1024;
    } else if (biased != 0 || m != 0) {
        if (biased) m |= 1ULL << 52;
        e = biased ? biased - 1075 : -1074; // subnormals: m * 2^-1074
        const int tz = __builtin_ctzll(m);
        m >>= tz;
        e += tz;
    }
    if (m && (u >> 63)) *p++ = '-';
    p = put_u64(p, m);
    *p++ = ',';
    return put_i64(p, e);
}

// The statistics of one step, n rows in idx order, as step_node_stats.stats:
// [[idx,n,n_nan,n_pinf,n_ninf,n_zero,min,max,mean,std],...], each REAL as put_real's pair,
// without absmax: over the finite values it is max(|min|, |max|), which the view node_stats
// computes (llt_stats_compute's absmax is that, to the bit). In w->text, valid until the next
// call; NULL when out of memory.
static const char * stats_text(struct llt_rows * w, const struct stat_rows * r, int32_t n) {
    char * p = text_room(w, 3 + (size_t) n * (3 + 6 * 21 + 4 * 28) + PUT_SLACK);
    if (!p) return NULL;
    *p++ = '[';
    for (int32_t k = 0; k < n; k++) {
        const struct llt_stats * st = &r[k].st;
        if (k) *p++ = ',';
        *p++ = '[';
        p = put_u64(p, (uint32_t) r[k].idx);
        const int64_t counts[5] = { st->n, st->n_nan, st->n_pinf, st->n_ninf, st->n_zero };
        for (int c = 0; c < 5; c++) {
            *p++ = ',';
            p = put_i64(p, counts[c]);
        }
        const double reals[4] = { st->min, st->max, st->mean, st->std };
        for (int c = 0; c < 4; c++) {
            *p++ = ',';
            p = put_real(p, reals[c]);
        }
        *p++ = ']';
    }
    *p++ = ']';
    *p = '\0';
    return w->text;
}

// a row of step_node_stats for each step in rows (capture hands over a step's statistics
// together, idx ascending: steps.c)
static int write_stats(struct llt_rows * w, const struct stat_rows * rows, int32_t n) {
    int rc = LLT_OK;
    for (int32_t i = 0, k; i < n && rc == LLT_OK; i = k) {
        k = i + 1;
        while (k < n && rows[k].step == rows[i].step) k++;
        const char * text = stats_text(w, rows + i, k - i);
        if (!text) return llt_set_error(LLT_ENOMEM, "out of memory");
        sqlite3_stmt * s = w->ins[INS_STAT];
        sqlite3_bind_int64(s, 1, w->run_id);
        sqlite3_bind_int64(s, 2, rows[i].step);
        sqlite3_bind_text(s, 3, text, -1, SQLITE_STATIC);
        rc = llt_store_step_done(w->st, s);
    }
    return rc;
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

static int write_parity(struct llt_rows * w, const struct parity_rows * p) {
    sqlite3_stmt * s = w->ins[INS_PARITY];
    sqlite3_bind_int64(s, 1, w->run_id);
    sqlite3_bind_int(s, 2, p->step);
    sqlite3_bind_int(s, 3, p->pos);
    sqlite3_bind_int(s, 4, p->token);
    llt_store_bind_text(s, 5, p->piece);
    sqlite3_bind_text(s, 6, p->top_k, -1, SQLITE_STATIC);
    sqlite3_bind_blob(s, 7, p->piece, (int) strlen(p->piece), SQLITE_STATIC);
    sqlite3_bind_int(s, 8, p->seq_id);
    return llt_store_step_done(w->st, s);
}

static int write_route(struct llt_rows * w, const struct route_rows * r) {
    sqlite3_stmt * s = w->ins[INS_ROUTE];
    sqlite3_bind_int64(s, 1, w->run_id);
    sqlite3_bind_int64(s, 2, r->step);
    sqlite3_bind_int(s, 3, r->layer);
    sqlite3_bind_int(s, 4, r->row);
    sqlite3_bind_int(s, 5, r->pos);
    sqlite3_bind_int(s, 6, r->seq_id);
    sqlite3_bind_int(s, 7, r->rank);
    sqlite3_bind_int(s, 8, r->expert);
    sqlite3_bind_double(s, 9, r->weight);
    return llt_store_step_done(w->st, s);
}

static int write_iv(struct llt_rows * w, const struct iv_rows * r) {
    sqlite3_stmt * s = w->ins[INS_IV];
    sqlite3_bind_int64(s, 1, w->run_id);
    sqlite3_bind_int64(s, 2, r->step);
    sqlite3_bind_int(s, 3, r->iv);
    sqlite3_bind_int(s, 4, r->idx);
    llt_store_bind_text(s, 5, r->node);
    sqlite3_bind_int64(s, 6, r->n_changed);
    return llt_store_step_done(w->st, s);
}

int llt_rows_write(struct llt_rows * w, const struct llt_batch * b) {
    int rc = llt_store_begin(w->st);
    for (; b && rc == LLT_OK; b = b->next) {
        for (int32_t i = 0; i < b->n_graphs && rc == LLT_OK; i++) rc = write_graph(w, &b->graphs[i]);
        for (int32_t i = 0; i < b->n_steps  && rc == LLT_OK; i++) rc = write_step(w, &b->steps[i]);
        for (int32_t i = 0; i < b->n_tokens && rc == LLT_OK; i++) rc = write_token(w, &b->tokens[i]);
        if (rc == LLT_OK) rc = write_stats(w, b->stats, b->n_stats);
        for (int32_t i = 0; i < b->n_diffs  && rc == LLT_OK; i++) rc = write_diff(w, &b->diffs[i]);
        for (int32_t i = 0; i < b->n_parity && rc == LLT_OK; i++) rc = write_parity(w, &b->parity[i]);
        for (int32_t i = 0; i < b->n_routes && rc == LLT_OK; i++) rc = write_route(w, &b->routes[i]);
        for (int32_t i = 0; i < b->n_ivs    && rc == LLT_OK; i++) rc = write_iv(w, &b->ivs[i]);
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
    free(w->text);
    free(w);
}
