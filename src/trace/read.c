// Reading a run row by row for the analysis: one query per table, streamed in key order, so
// that reading a run costs time linear in its size (no per-step re-query).
#include "trace/db.h"

#include <sqlite3.h>
#include <string.h>

// ---- statements --------------------------------------------------------------------------

// the steps of the sequence :seq (NULL: every step)
#define SEQ_STEP(s) "(:seq IS NULL OR (" s "seq_mask >> min(:seq, 63)) & 1)"

// Prepares sql and binds :run, :step (step < 0: NULL, every step) and :seq (seq < 0: NULL,
// every sequence). caller finalizes; NULL after setting the error.
static sqlite3_stmt * prepare_sel(struct llt_store * st, const char * sql, int64_t run, int64_t step, int64_t seq) {
    sqlite3_stmt * stmt = llt_store_prepare(st, sql);
    if (!stmt) return NULL;
    const int i_run = sqlite3_bind_parameter_index(stmt, ":run");
    const int i_step = sqlite3_bind_parameter_index(stmt, ":step");
    const int i_seq = sqlite3_bind_parameter_index(stmt, ":seq");
    if ((i_run && sqlite3_bind_int64(stmt, i_run, run) != SQLITE_OK) ||
        (i_step && step >= 0 && sqlite3_bind_int64(stmt, i_step, step) != SQLITE_OK) ||
        (i_seq && seq >= 0 && sqlite3_bind_int64(stmt, i_seq, seq) != SQLITE_OK)) {
        llt_set_error(LLT_EIO, "trace '%s': %s", llt_store_path(st), sqlite3_errmsg(llt_store_db(st)));
        sqlite3_finalize(stmt);
        return NULL;
    }
    return stmt;
}

// prepare_sel() for a selection of rows: also binds :from, the first step kept
static sqlite3_stmt * prepare_read(struct llt_store * st, const char * sql, const struct llt_read_sel * sel) {
    sqlite3_stmt * stmt = prepare_sel(st, sql, sel->run, sel->step, sel->by_seq ? sel->seq : -1);
    const int i_from = stmt ? sqlite3_bind_parameter_index(stmt, ":from") : 0;
    if (i_from && sqlite3_bind_int64(stmt, i_from, sel->from_step > 0 ? sel->from_step : 0) != SQLITE_OK) {
        llt_set_error(LLT_EIO, "trace '%s': %s", llt_store_path(st), sqlite3_errmsg(llt_store_db(st)));
        sqlite3_finalize(stmt);
        return NULL;
    }
    return stmt;
}

// the error of a statement that did not step to its end
static int step_error(struct llt_store * st) {
    return llt_set_error(LLT_EIO, "trace '%s': %s", llt_store_path(st), sqlite3_errmsg(llt_store_db(st)));
}

static const char * text(sqlite3_stmt * stmt, int col) {
    const unsigned char * t = sqlite3_column_text(stmt, col);
    return t ? (const char *) t : "";
}

static int64_t int_or(sqlite3_stmt * stmt, int col, int64_t none) {
    return sqlite3_column_type(stmt, col) == SQLITE_NULL ? none : sqlite3_column_int64(stmt, col);
}

// Steps stmt to its end, calling row(stmt) for each row; the first non-zero return stops it.
static int each_row(struct llt_store * st, sqlite3_stmt * stmt, int (*row)(sqlite3_stmt *, void *), void * ctx) {
    int rc = LLT_OK, step_rc;
    while ((step_rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        if ((rc = row(stmt, ctx)) != 0) break;
    }
    if (rc == LLT_OK && step_rc != SQLITE_DONE) rc = step_error(st);
    sqlite3_finalize(stmt);
    return rc;
}

// ---- a run -------------------------------------------------------------------------------

static int count_of(struct llt_store * st, const char * sql, int64_t run, int64_t step, int64_t seq, int64_t * out) {
    sqlite3_stmt * stmt = prepare_sel(st, sql, run, step, seq);
    if (!stmt) return LLT_EIO;
    const int rc = sqlite3_step(stmt) == SQLITE_ROW ? LLT_OK : step_error(st);
    *out = rc == LLT_OK ? sqlite3_column_int64(stmt, 0) : 0;
    sqlite3_finalize(stmt);
    return rc;
}

int llt_read_check_sel(struct llt_store * st, int64_t run, int64_t step, int32_t seq) {
    int64_t n = 0;
    int rc = LLT_OK;
    if (seq >= 0) {
        rc = count_of(st, "SELECT count(*) FROM steps WHERE run_id = :run AND " SEQ_STEP(""), run, -1, seq, &n);
        if (rc == LLT_OK && n == 0) {
            char seqs[160] = "";
            for (int s = 0; s < 63 && strlen(seqs) < sizeof(seqs) - 16; s++) {
                int64_t k = 0;
                if (count_of(st, "SELECT count(*) FROM steps WHERE run_id = :run AND " SEQ_STEP(""), run, -1, s, &k) != LLT_OK) break;
                if (k > 0) snprintf(seqs + strlen(seqs), sizeof(seqs) - strlen(seqs), "%s%d", seqs[0] ? ", " : "", s);
            }
            return llt_set_error(LLT_ENOTFOUND, "run %lld has no step of sequence %d (its sequences: %s)", (long long) run, seq,
                                 seqs[0] ? seqs : "none so far");
        }
    }
    if (rc == LLT_OK && step >= 0) {
        rc = count_of(st, "SELECT count(*) FROM steps WHERE run_id = :run AND step = :step AND " SEQ_STEP(""), run, step,
                      seq, &n);
        if (rc == LLT_OK && n == 0) {
            int64_t total = 0;
            if (count_of(st, "SELECT count(*) FROM steps WHERE run_id = :run", run, -1, -1, &total) != LLT_OK) total = 0;
            if (seq >= 0) return llt_set_error(LLT_ENOTFOUND, "run %lld has no step %lld of sequence %d", (long long) run,
                                               (long long) step, seq);
            return llt_set_error(LLT_ENOTFOUND, "run %lld has no step %lld (it has %lld)", (long long) run, (long long) step,
                                 (long long) total);
        }
    }
    return rc;
}

int llt_read_run(struct llt_store * st, int64_t run, struct llt_read_run * out) {
    memset(out, 0, sizeof(*out));
    if (run == 0) {
        const int last = llt_store_last_run(st);
        if (last < 0) return last;
        run = last;
    }
    sqlite3_stmt * stmt = prepare_sel(st,
        "SELECT id, coalesce(started_at, ''), coalesce(level, ''), coalesce(status, ''), coalesce(model_name, ''),"
        " coalesce(file_type, ''), coalesce(n_layer, 0), n_prompt, n_gen, t_tokenize_ns,"
        " (SELECT count(*) FROM steps WHERE run_id = r.id),"
        " (SELECT count(*) FROM steps s WHERE s.run_id = r.id"
        "   AND EXISTS (SELECT 1 FROM node_times t WHERE t.run_id = s.run_id AND t.step = s.step)),"
        " (SELECT count(*) FROM weights WHERE run_id = r.id),"
        " EXISTS (SELECT 1 FROM node_stats WHERE run_id = r.id), coalesce(name, ''),"
        " (SELECT count(DISTINCT seq_id) FROM tokens WHERE run_id = r.id), coalesce(error, ''), t_prompt_ns, t_gen_ns,"
        " coalesce(dump_path, '') != '' OR EXISTS (SELECT 1 FROM node_diffs WHERE run_id = r.id)"
        " FROM runs r WHERE id = :run", run, -1, -1);
    if (!stmt) return LLT_EIO;
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        out->id = sqlite3_column_int64(stmt, 0);
        snprintf(out->started_at, sizeof(out->started_at), "%s", text(stmt, 1));
        snprintf(out->level, sizeof(out->level), "%s", text(stmt, 2));
        snprintf(out->status, sizeof(out->status), "%s", text(stmt, 3));
        snprintf(out->model_name, sizeof(out->model_name), "%s", text(stmt, 4));
        snprintf(out->file_type, sizeof(out->file_type), "%s", text(stmt, 5));
        out->n_layer = sqlite3_column_int(stmt, 6);
        out->n_prompt = int_or(stmt, 7, -1);
        out->n_gen = int_or(stmt, 8, -1);
        out->t_tokenize_ns = int_or(stmt, 9, -1);
        out->n_steps = sqlite3_column_int64(stmt, 10);
        out->n_timed_steps = sqlite3_column_int64(stmt, 11);
        out->n_weights = sqlite3_column_int64(stmt, 12);
        out->has_stats = sqlite3_column_int(stmt, 13) != 0;
        snprintf(out->name, sizeof(out->name), "%s", text(stmt, 14));
        out->n_seqs = sqlite3_column_int(stmt, 15);
        snprintf(out->error, sizeof(out->error), "%s", text(stmt, 16));
        out->t_prompt_ns = int_or(stmt, 17, -1);
        out->t_gen_ns = int_or(stmt, 18, -1);
        out->values_read = out->has_stats || sqlite3_column_int(stmt, 19) != 0;
        rc = LLT_OK;
    } else if (rc == SQLITE_DONE) {
        rc = llt_set_error(LLT_ENOTFOUND, "trace '%s' has no run %lld", llt_store_path(st), (long long) run);
    } else {
        rc = step_error(st);
    }
    sqlite3_finalize(stmt);
    return rc;
}

// ---- rows --------------------------------------------------------------------------------

// the graphs of the selected steps
#define SEL_GRAPHS "(SELECT DISTINCT graph_id FROM steps WHERE run_id = :run AND (:step IS NULL OR step = :step) AND step >= :from AND " SEQ_STEP("") ")"

struct callback {
    void * fn;
    void * user_data;
};

static int node_row(sqlite3_stmt * stmt, void * ctx) {
    const struct callback * cb = ctx;
    struct llt_read_node n = {
        .graph_id = sqlite3_column_int64(stmt, 0), .idx = sqlite3_column_int(stmt, 1),
        .op = text(stmt, 2), .name = text(stmt, 3), .type = text(stmt, 4), .layer = sqlite3_column_int(stmt, 5),
        .bytes = sqlite3_column_int64(stmt, 10), .is_view = sqlite3_column_int(stmt, 11) != 0,
        .is_noop = sqlite3_column_int(stmt, 12) != 0, .buffer = text(stmt, 13),
        .layer_out = sqlite3_column_int(stmt, 14) != 0,
        .fused = sqlite3_column_type(stmt, 15) == SQLITE_NULL ? -1 : sqlite3_column_int(stmt, 15) != 0,
        .device = text(stmt, 16),
    };
    for (int d = 0; d < 4; d++) n.ne[d] = sqlite3_column_int64(stmt, 6 + d);
    return ((llt_read_node_fn) cb->fn)(&n, cb->user_data);
}

int llt_read_nodes(struct llt_store * st, const struct llt_read_sel * sel, llt_read_node_fn fn, void * user_data) {
    sqlite3_stmt * stmt = prepare_read(st,
        "SELECT graph_id, idx, op, name, type, layer, ne0, ne1, ne2, ne3, bytes, is_view, is_noop, buffer,"
        " layer_out, fused, device FROM nodes WHERE graph_id IN " SEL_GRAPHS " ORDER BY graph_id, idx",
        sel);
    if (!stmt) return LLT_EIO;
    struct callback cb = { (void *) fn, user_data };
    return each_row(st, stmt, node_row, &cb);
}

static int src_row(sqlite3_stmt * stmt, void * ctx) {
    const struct callback * cb = ctx;
    const char * kind = text(stmt, 3);
    struct llt_read_src s = {
        .graph_id = sqlite3_column_int64(stmt, 0), .idx = sqlite3_column_int(stmt, 1),
        .slot = sqlite3_column_int(stmt, 2),
        .kind = strcmp(kind, "node") == 0 ? LLT_SRC_NODE : strcmp(kind, "weight") == 0 ? LLT_SRC_WEIGHT : LLT_SRC_INPUT,
        .src_idx = sqlite3_column_int(stmt, 4), .weight_id = sqlite3_column_int64(stmt, 5),
        .bytes = sqlite3_column_int64(stmt, 6), .type = text(stmt, 11), .is_view = sqlite3_column_int(stmt, 12) != 0,
        .name = text(stmt, 13),
    };
    for (int d = 0; d < 4; d++) s.ne[d] = sqlite3_column_int64(stmt, 7 + d);
    return ((llt_read_src_fn) cb->fn)(&s, cb->user_data);
}

int llt_read_srcs(struct llt_store * st, const struct llt_read_sel * sel, llt_read_src_fn fn, void * user_data) {
    sqlite3_stmt * stmt = prepare_read(st,
        "SELECT ns.graph_id, ns.idx, ns.slot, ns.kind, coalesce(ns.src_idx, -1), coalesce(ns.weight_id, -1), ns.bytes,"
        " coalesce(n2.ne0, w.ne0, 0), coalesce(n2.ne1, w.ne1, 0), coalesce(n2.ne2, w.ne2, 0), coalesce(n2.ne3, w.ne3, 0),"
        " coalesce(n2.type, w.type, ''), coalesce(n2.is_view, 0), ns.name"
        " FROM node_srcs ns"
        " LEFT JOIN nodes n2 ON ns.kind = 'node' AND n2.graph_id = ns.graph_id AND n2.idx = ns.src_idx"
        " LEFT JOIN weights w ON ns.kind = 'weight' AND w.run_id = :run AND w.id = ns.weight_id"
        " WHERE ns.graph_id IN " SEL_GRAPHS " ORDER BY ns.graph_id, ns.idx, ns.slot", sel);
    if (!stmt) return LLT_EIO;
    struct callback cb = { (void *) fn, user_data };
    return each_row(st, stmt, src_row, &cb);
}

static int step_row(sqlite3_stmt * stmt, void * ctx) {
    const struct callback * cb = ctx;
    const struct llt_read_step s = {
        .step = sqlite3_column_int64(stmt, 0), .decode = sqlite3_column_int64(stmt, 1),
        .prompt = strcmp(text(stmt, 2), "prompt") == 0,
        .warmup = strcmp(text(stmt, 2), "warmup") == 0, .pos0 = sqlite3_column_int64(stmt, 3),
        .n_tokens = sqlite3_column_int64(stmt, 4), .graph_id = sqlite3_column_int64(stmt, 5),
        .t_begin_ns = int_or(stmt, 6, -1), .t_end_ns = int_or(stmt, 7, -1),
        .compute_begin_ns = int_or(stmt, 8, -1), .compute_end_ns = int_or(stmt, 9, -1),
        .t_sample_ns = int_or(stmt, 10, -1),
    };
    return ((llt_read_step_fn) cb->fn)(&s, cb->user_data);
}

const char * llt_read_step_phase(const struct llt_read_step * s) {
    return s->warmup ? "warmup" : s->prompt ? "prompt" : "gen";
}

int llt_read_steps(struct llt_store * st, const struct llt_read_sel * sel, llt_read_step_fn fn, void * user_data) {
    sqlite3_stmt * stmt = prepare_read(st,
        "SELECT step, decode, phase, pos0, n_tokens, graph_id, t_begin_ns, t_end_ns, compute_begin_ns, compute_end_ns,"
        " t_sample_ns FROM steps WHERE run_id = :run AND (:step IS NULL OR step = :step) AND step >= :from AND " SEQ_STEP("") " ORDER BY step",
        sel);
    if (!stmt) return LLT_EIO;
    struct callback cb = { (void *) fn, user_data };
    return each_row(st, stmt, step_row, &cb);
}

static int time_row(sqlite3_stmt * stmt, void * ctx) {
    const struct callback * cb = ctx;
    const struct llt_read_time t = {
        .step = sqlite3_column_int64(stmt, 0), .idx = sqlite3_column_int(stmt, 1),
        .t_begin_ns = sqlite3_column_int64(stmt, 2), .t_end_ns = sqlite3_column_int64(stmt, 3),
    };
    return ((llt_read_time_fn) cb->fn)(&t, cb->user_data);
}

int llt_read_times(struct llt_store * st, const struct llt_read_sel * sel, llt_read_time_fn fn, void * user_data) {
    sqlite3_stmt * stmt = prepare_read(st,
        "SELECT step, idx, t_begin_ns, t_end_ns FROM node_times"
        " WHERE run_id = :run AND (:step IS NULL OR step = :step) AND step >= :from AND (:seq IS NULL OR step IN"
        "  (SELECT step FROM steps WHERE run_id = :run AND " SEQ_STEP("") ")) ORDER BY step, idx",
        sel);
    if (!stmt) return LLT_EIO;
    struct callback cb = { (void *) fn, user_data };
    return each_row(st, stmt, time_row, &cb);
}

static int token_row(sqlite3_stmt * stmt, void * ctx) {
    const struct callback * cb = ctx;
    const struct llt_read_token t = {
        .seq = sqlite3_column_int64(stmt, 0), .prompt = strcmp(text(stmt, 1), "prompt") == 0,
        .step = sqlite3_column_int64(stmt, 2), .pos = sqlite3_column_int64(stmt, 3),
        .token = sqlite3_column_int64(stmt, 4), .piece = text(stmt, 5), .seq_id = sqlite3_column_int(stmt, 6),
    };
    return ((llt_read_token_fn) cb->fn)(&t, cb->user_data);
}

int llt_read_tokens(struct llt_store * st, const struct llt_read_sel * sel, llt_read_token_fn fn, void * user_data) {
    sqlite3_stmt * stmt = prepare_read(st,
        "SELECT seq, role, step, pos, token, piece, seq_id FROM tokens WHERE run_id = :run"
        " AND (:seq IS NULL OR seq_id = :seq) AND step >= :from ORDER BY seq", sel);
    if (!stmt) return LLT_EIO;
    struct callback cb = { (void *) fn, user_data };
    return each_row(st, stmt, token_row, &cb);
}

static int route_row(sqlite3_stmt * stmt, void * ctx) {
    const struct callback * cb = ctx;
    const struct llt_read_route r = {
        .step = sqlite3_column_int64(stmt, 0), .layer = sqlite3_column_int(stmt, 1),
        .pos = sqlite3_column_int64(stmt, 2), .rank = sqlite3_column_int(stmt, 3),
        .expert = sqlite3_column_int(stmt, 4), .weight = sqlite3_column_double(stmt, 5),
        .row = sqlite3_column_int(stmt, 6), .seq_id = sqlite3_column_int(stmt, 7),
    };
    return ((llt_read_route_fn) cb->fn)(&r, cb->user_data);
}

int llt_read_routes(struct llt_store * st, const struct llt_read_sel * sel, llt_read_route_fn fn, void * user_data) {
    // a trace made before the table (schema version 2) has no routing: no rows
    sqlite3_stmt * stmt = prepare_sel(st, "SELECT 1 FROM sqlite_master WHERE name = 'expert_routing'"
                                          " UNION ALL SELECT 1 FROM sqlite_temp_master WHERE name = 'expert_routing'", 0, -1, -1);
    if (!stmt) return LLT_EIO;
    const int found = sqlite3_step(stmt);
    sqlite3_finalize(stmt);
    if (found != SQLITE_ROW) return found == SQLITE_DONE ? LLT_OK : step_error(st);
    stmt = prepare_read(st,
        "SELECT step, layer, pos, rank, expert, weight, row, seq_id FROM expert_routing"
        " WHERE run_id = :run AND (:step IS NULL OR step = :step) AND step >= :from AND (:seq IS NULL OR step IN"
        "  (SELECT step FROM steps WHERE run_id = :run AND " SEQ_STEP("") ")) ORDER BY step, layer, row, rank",
        sel);
    if (!stmt) return LLT_EIO;
    struct callback cb = { (void *) fn, user_data };
    return each_row(st, stmt, route_row, &cb);
}
