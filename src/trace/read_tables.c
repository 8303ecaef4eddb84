// The tables `lltrace show` prints, as generic rows: one query each over the trace
// (docs/trace-format.md), bound with a filter whose unset members select everything.
#include "trace/db.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

// the selected steps: one with :step, else all of the run; with :seq, those that took tokens of it
#define STEPS_WHERE(s) s ".run_id = :run AND (:step IS NULL OR " s ".step = :step)" \
                       " AND (:seq IS NULL OR (" s ".seq_mask >> min(:seq, 63)) & 1)"

static const char * const table_sql[] = {
    [LLT_TABLE_RUNS] =
        "SELECT id, started_at, model_name, file_type, level, status,"
        " (SELECT count(*) FROM steps WHERE run_id = r.id) AS steps, n_prompt, n_gen, name,"
        " (SELECT count(*) FROM intervention_specs WHERE run_id = r.id) AS interventions"
        " FROM runs r ORDER BY id",
    [LLT_TABLE_RUN] =
        "SELECT id AS run, model_name AS model, model_arch AS arch, file_type, level, status, error,"
        " (SELECT count(*) FROM steps WHERE run_id = r.id) AS steps, n_prompt, n_gen, output, prompt,"
        " model_path, started_at, ended_at, CASE WHEN json_valid(params) THEN params END AS params, system_info,"
        " model_desc, n_layer, n_embd, n_head, n_head_kv, n_vocab, n_ctx_train, model_bytes, model_params,"
        " lltrace_version, llama_tag, t_prompt_ns, t_gen_ns, t_tokenize_ns, dump_path,"
        " (SELECT count(*) FROM graphs WHERE run_id = r.id) AS graphs,"
        " (SELECT json_group_array(CASE WHEN json_valid(params) THEN json(params) END)"
        "   FROM (SELECT params FROM intervention_specs WHERE run_id = r.id ORDER BY iv)) AS interventions"
        " FROM runs r WHERE id = :run",
    [LLT_TABLE_STEP] =
        "SELECT s.step, s.decode, s.phase, s.pos0, s.n_tokens, s.graph_id AS graph, g.n_nodes AS nodes,"
        " s.t_end_ns - s.t_begin_ns AS time_ns, s.compute_end_ns - s.compute_begin_ns AS compute_ns"
        " FROM steps s LEFT JOIN graphs g ON g.id = s.graph_id"
        " WHERE s.run_id = :run AND s.step = :step",
    [LLT_TABLE_TOKENS] =
        // in: the prompt tokens of the step, and each generated token it took: for each sequence the
        // step computed, the one chosen after that sequence's step before (a decode split into
        // ubatches, or one holding several sequences, has steps between); out: the ones chosen after it
        "SELECT CASE WHEN role = 'prompt' OR step < :step THEN 'in' ELSE 'out' END AS dir, role, seq, seq_id, pos, token, piece"
        " FROM tokens t WHERE run_id = :run AND (step = :step OR (role = 'gen' AND step < :step"
        "  AND ((SELECT seq_mask FROM steps WHERE run_id = :run AND step = :step) >> min(seq_id, 63)) & 1"
        "  AND step = (SELECT s.step FROM steps s WHERE s.run_id = :run AND s.step < :step"
        "   AND (s.seq_mask >> min(t.seq_id, 63)) & 1 ORDER BY s.step DESC LIMIT 1)))"
        " AND (:seq IS NULL OR seq_id = :seq) ORDER BY seq",
    [LLT_TABLE_NODES] =
        // the step's node times and statistics first: joined by run and step, SQLite would
        // expand the views node_times and node_stats for every step of the trace
        "WITH t AS MATERIALIZED (SELECT idx, t_begin_ns, t_end_ns FROM node_times WHERE run_id = :run AND step = :step),"
        " x AS MATERIALIZED (SELECT idx, min, max, mean, std, n_nan, n_pinf, n_ninf FROM node_stats"
        "  WHERE run_id = :run AND step = :step),"
        " sn AS ("
        "  SELECT n.*, t.t_end_ns - t.t_begin_ns AS time_ns,"
        "   x.min AS st_min, x.max AS st_max, x.mean AS st_mean, x.std AS st_std,"
        "   x.n_nan + x.n_pinf + x.n_ninf AS st_nonfinite"
        "  FROM steps s JOIN nodes n ON n.graph_id = s.graph_id"
        "  LEFT JOIN t ON t.idx = n.idx"
        "  LEFT JOIN x ON x.idx = n.idx"
        "  WHERE s.run_id = :run AND s.step = :step"
        "    AND (:layer IS NULL OR n.layer = :layer)"
        "    AND (:op IS NULL OR upper(n.op) = upper(:op))"
        "    AND (:name IS NULL OR n.name GLOB :name)"
        "  ORDER BY n.idx LIMIT coalesce(:limit, -1))"
        " SELECT idx, op, name, layer, ne0, ne1, ne2, ne3, type, bytes, is_view, is_noop, buffer, device, time_ns,"
        "  st_min AS min, st_max AS max, st_mean AS mean, st_std AS std, st_nonfinite AS nan_inf,"
        "  (SELECT group_concat(kind, '+') FROM interventions iv"
        "    WHERE iv.run_id = :run AND iv.step = :step AND iv.idx = sn.idx) AS intervened,"
        "  (SELECT group_concat(label, ', ') FROM ("
        "    SELECT ns.name || CASE ns.kind WHEN 'node' THEN '[' || ns.src_idx || ']'"
        "     WHEN 'weight' THEN '(w)' ELSE '(in)' END AS label"
        "    FROM node_srcs ns WHERE ns.graph_id = sn.graph_id AND ns.idx = sn.idx ORDER BY ns.slot)) AS sources_text,"
        "  (SELECT json_group_array(json_object('slot', slot, 'kind', kind, 'name', name,"
        "     'idx', src_idx, 'weight_id', weight_id, 'bytes', bytes)) FROM ("
        "    SELECT * FROM node_srcs ns WHERE ns.graph_id = sn.graph_id AND ns.idx = sn.idx ORDER BY ns.slot))"
        "   AS sources_json"
        " FROM sn ORDER BY idx",
    [LLT_TABLE_WEIGHTS] =
        "SELECT id, name, type, ne0, ne1, ne2, ne3, bytes, bpw, layer, file_offset, buffer FROM weights"
        " WHERE run_id = :run AND (:layer IS NULL OR layer = :layer) AND (:name IS NULL OR name GLOB :name)"
        " ORDER BY id LIMIT coalesce(:limit, -1)",
    [LLT_TABLE_GRAPHS] =
        "SELECT g.id AS graph, g.n_nodes AS nodes, count(*) AS steps, min(s.step) AS first_step"
        " FROM steps s JOIN graphs g ON g.id = s.graph_id"
        " WHERE " STEPS_WHERE("s") " GROUP BY g.id ORDER BY g.id",
    // steps: how many of the selected steps did not read the weight
    [LLT_TABLE_UNREAD] =
        "WITH used AS (SELECT graph_id, count(*) AS steps FROM steps s WHERE " STEPS_WHERE("s")
        "   GROUP BY graph_id),"
        " rd AS (SELECT DISTINCT graph_id, weight_id FROM node_srcs"
        "   WHERE kind = 'weight' AND graph_id IN (SELECT graph_id FROM used))"
        " SELECT w.id, w.name, w.bytes, sum(u.steps) AS steps FROM used u JOIN weights w ON w.run_id = :run"
        " WHERE (u.graph_id, w.id) NOT IN (SELECT graph_id, weight_id FROM rd)"
        " GROUP BY w.id ORDER BY w.id",
    [LLT_TABLE_DIFFS] =
        "SELECT d.idx, d.name, n.op, n.layer, d.shape_ok, d.n, d.max_abs, d.mean_abs, d.max_rel, d.rmse,"
        " d.nmse, d.cosine, d.nonfinite, d.ref_nonfinite, d.n_exceed, d.within"
        " FROM node_diffs d JOIN steps s ON s.run_id = d.run_id AND s.step = d.step"
        " LEFT JOIN nodes n ON n.graph_id = s.graph_id AND n.idx = d.idx"
        " WHERE d.run_id = :run AND d.step = :step"
        "  AND (:layer IS NULL OR n.layer = :layer) AND (:op IS NULL OR upper(n.op) = upper(:op))"
        "  AND (:name IS NULL OR d.name GLOB :name)"
        " ORDER BY d.idx LIMIT coalesce(:limit, -1)",
    // matmul: whether a matrix multiply of the run reads the weight
    [LLT_TABLE_MATMUL_WEIGHTS] =
        "WITH mm AS (SELECT DISTINCT ns.weight_id FROM node_srcs ns"
        "  JOIN nodes n ON n.graph_id = ns.graph_id AND n.idx = ns.idx"
        "  WHERE ns.kind = 'weight' AND n.op IN ('MUL_MAT', 'MUL_MAT_ID')"
        "  AND ns.graph_id IN (SELECT graph_id FROM steps WHERE run_id = :run))"
        " SELECT id, name, type, ne0, ne1, ne2, ne3, bpw, buffer, layer, id IN mm AS matmul FROM weights"
        " WHERE run_id = :run AND (:layer IS NULL OR layer = :layer) AND (:name IS NULL OR name GLOB :name)"
        " ORDER BY id LIMIT coalesce(:limit, -1)",
    [LLT_TABLE_KERNELS] =
        "SELECT n.op, w.type AS weight_type, w.buffer AS weight_buffer, n.buffer AS ran_on,"
        " count(DISTINCT w.id) AS weights, count(*) AS calls"
        " FROM steps s JOIN node_srcs ns ON ns.graph_id = s.graph_id AND ns.kind = 'weight'"
        " JOIN nodes n ON n.graph_id = ns.graph_id AND n.idx = ns.idx"
        " JOIN weights w ON w.run_id = s.run_id AND w.id = ns.weight_id"
        " WHERE " STEPS_WHERE("s") " GROUP BY 1, 2, 3, 4 ORDER BY 6 DESC, 1, 2",
    [LLT_TABLE_PLACEMENT] =
        "SELECT n.buffer AS ran_on, count(*) AS calls, group_concat(DISTINCT n.op) AS ops"
        " FROM steps s JOIN nodes n ON n.graph_id = s.graph_id"
        " WHERE " STEPS_WHERE("s") " AND n.is_noop = 0 GROUP BY n.buffer ORDER BY 2 DESC",
    [LLT_TABLE_DEVICES] =
        "WITH sel AS (SELECT run_id, step, graph_id FROM steps s WHERE " STEPS_WHERE("s") "),"
        " nd AS (SELECT n.device, count(*) AS calls, sum(n.bytes) AS written FROM sel s"
        "  JOIN nodes n ON n.graph_id = s.graph_id WHERE n.is_noop = 0 GROUP BY n.device),"
        " sp AS (SELECT p.device, count(*) AS splits, sum(p.n_inputs) AS inputs, sum(p.input_bytes) AS input_bytes"
        "  FROM sel s JOIN splits p ON p.graph_id = s.graph_id GROUP BY p.device),"
        " st AS (SELECT p.device, count(*) AS timed, sum(t.t_end_ns - t.t_compute_ns) AS split_ns,"
        "  sum(t.t_compute_ns - t.t_begin_ns) AS inputs_ns FROM sel s"
        "  JOIN split_times t ON t.run_id = s.run_id AND t.step = s.step"
        "  JOIN splits p ON p.graph_id = s.graph_id AND p.split = t.split GROUP BY p.device),"
        " nt AS (SELECT n.device, count(*) AS timed, sum(t.t_end_ns - t.t_begin_ns) AS node_ns FROM sel s"
        "  JOIN node_times t ON t.run_id = s.run_id AND t.step = s.step"
        "  JOIN nodes n ON n.graph_id = s.graph_id AND n.idx = t.idx WHERE n.is_noop = 0 GROUP BY n.device)"
        " SELECT nd.device, nd.calls, nd.written, sp.splits, sp.inputs, sp.input_bytes, st.timed AS timed_splits,"
        "  st.split_ns, st.inputs_ns, nt.timed AS timed_nodes, nt.node_ns"
        " FROM nd LEFT JOIN sp ON sp.device IS nd.device LEFT JOIN st ON st.device IS nd.device"
        " LEFT JOIN nt ON nt.device IS nd.device ORDER BY nd.device <> 'CPU', nd.device",
    [LLT_TABLE_LINKS] =
        "SELECT i.from_device, i.to_device, count(*) AS copies, sum(i.bytes) AS bytes, count(DISTINCT s.step) AS steps,"
        " sum(i.bytes) / count(DISTINCT s.step) AS bytes_per_step"
        " FROM steps s JOIN split_inputs i ON i.graph_id = s.graph_id"
        " WHERE " STEPS_WHERE("s") " GROUP BY 1, 2 ORDER BY 1, 2",
    [LLT_TABLE_SPLITS] =
        "SELECT s.step, p.split, p.device, p.idx_first, p.idx_last, p.n_nodes AS nodes, p.n_inputs AS inputs,"
        " p.input_bytes, t.t_begin_ns, t.t_compute_ns, t.t_end_ns, t.t_compute_ns - t.t_begin_ns AS inputs_ns,"
        " t.t_end_ns - t.t_compute_ns AS compute_ns"
        " FROM steps s JOIN splits p ON p.graph_id = s.graph_id"
        " LEFT JOIN split_times t ON t.run_id = s.run_id AND t.step = s.step AND t.split = p.split"
        " WHERE " STEPS_WHERE("s") " ORDER BY s.step, p.split LIMIT coalesce(:limit, -1)",
};

struct llt_table_filter llt_table_default_filter(void) {
    return (struct llt_table_filter) { .run = 0, .step = -1, .layer = INT64_MIN, .op = NULL, .name = NULL, .limit = 0 };
}

void llt_table_rows_free(struct llt_table_rows * rows) {
    if (!rows) return;
    for (int64_t i = 0; i < rows->n_rows * rows->n_cols; i++) free((char *) rows->values[i].s);
    for (int32_t c = 0; c < rows->n_cols; c++) free((char *) rows->cols[c]);
    free(rows->cols);
    free(rows->values);
    free(rows);
}

static int bind_int(sqlite3_stmt * stmt, const char * param, int64_t v) {
    const int i = sqlite3_bind_parameter_index(stmt, param);
    return i == 0 ? SQLITE_OK : sqlite3_bind_int64(stmt, i, v);
}

static int bind_text(sqlite3_stmt * stmt, const char * param, const char * v) {
    const int i = sqlite3_bind_parameter_index(stmt, param);
    return i == 0 ? SQLITE_OK : sqlite3_bind_text(stmt, i, v, -1, SQLITE_STATIC);
}

// binds what the filter sets; the other parameters stay NULL, which the queries read as "any"
static int bind_filter(sqlite3_stmt * stmt, int64_t run, const struct llt_table_filter * f) {
    int rc = bind_int(stmt, ":run", run);
    if (rc == SQLITE_OK && f->step >= 0)         rc = bind_int(stmt, ":step", f->step);
    if (rc == SQLITE_OK && f->by_seq)            rc = bind_int(stmt, ":seq", f->seq);
    if (rc == SQLITE_OK && f->layer != INT64_MIN) rc = bind_int(stmt, ":layer", f->layer);
    if (rc == SQLITE_OK && f->limit > 0)         rc = bind_int(stmt, ":limit", f->limit);
    if (rc == SQLITE_OK && f->op)                rc = bind_text(stmt, ":op", f->op);
    if (rc == SQLITE_OK && f->name)              rc = bind_text(stmt, ":name", f->name);
    return rc;
}

static bool value_read(sqlite3_stmt * stmt, int col, struct llt_value * v) {
    switch (sqlite3_column_type(stmt, col)) {
        case SQLITE_NULL:
            v->type = LLT_VALUE_NULL;
            return true;
        case SQLITE_INTEGER:
            v->type = LLT_VALUE_INT;
            v->i = sqlite3_column_int64(stmt, col);
            v->d = (double) v->i;
            return true;
        case SQLITE_FLOAT:
            v->type = LLT_VALUE_REAL;
            v->d = sqlite3_column_double(stmt, col);
            return true;
        default: {
            const unsigned char * t = sqlite3_column_text(stmt, col);
            const size_t n = (size_t) sqlite3_column_bytes(stmt, col);
            char * s = malloc(n + 1);
            if (!s) return false;
            if (t) memcpy(s, t, n);
            s[n] = '\0';
            v->type = LLT_VALUE_TEXT;
            v->s = s;
            return true;
        }
    }
}

int llt_read_table(struct llt_store * st, enum llt_table table, const struct llt_table_filter * filter,
                   struct llt_table_rows ** out) {
    *out = NULL;
    if ((int) table < 0 || (size_t) table >= sizeof(table_sql) / sizeof(table_sql[0])) {
        return llt_set_error(LLT_EINVAL, "no table %d", (int) table);
    }
    int64_t run = filter->run;
    if (run == 0 && table != LLT_TABLE_RUNS && (run = llt_store_last_run(st)) < 0) return (int) run;
    sqlite3_stmt * stmt = llt_store_prepare(st, table_sql[table]);
    if (!stmt) return LLT_EIO;
    struct llt_table_rows * rows = calloc(1, sizeof(*rows));
    int rc = LLT_OK;
    if (!rows) {
        rc = llt_set_error(LLT_ENOMEM, "out of memory");
        goto done;
    }
    if (bind_filter(stmt, run, filter) != SQLITE_OK) {
        rc = llt_set_error(LLT_EIO, "trace '%s': %s", llt_store_path(st), sqlite3_errmsg(llt_store_db(st)));
        goto done;
    }
    rows->n_cols = sqlite3_column_count(stmt);
    rows->cols = calloc((size_t) rows->n_cols, sizeof(*rows->cols));
    if (!rows->cols) {
        rc = llt_set_error(LLT_ENOMEM, "out of memory");
        goto done;
    }
    for (int32_t c = 0; c < rows->n_cols; c++) {
        if (!(rows->cols[c] = strdup(sqlite3_column_name(stmt, c)))) {
            rc = llt_set_error(LLT_ENOMEM, "out of memory");
            goto done;
        }
    }
    int64_t cap = 0;
    int step_rc;
    while ((step_rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        if (rows->n_rows == cap) {
            cap = cap ? 2 * cap : 64;
            struct llt_value * nv = realloc(rows->values, (size_t) (cap * rows->n_cols) * sizeof(*nv));
            if (!nv) {
                rc = llt_set_error(LLT_ENOMEM, "out of memory");
                goto done;
            }
            rows->values = nv;
        }
        struct llt_value * row = rows->values + rows->n_rows * rows->n_cols;
        memset(row, 0, (size_t) rows->n_cols * sizeof(*row)); // freeable if a read fails
        rows->n_rows++;
        for (int32_t c = 0; c < rows->n_cols; c++) {
            if (!value_read(stmt, c, &row[c])) {
                rc = llt_set_error(LLT_ENOMEM, "out of memory");
                goto done;
            }
        }
    }
    if (step_rc != SQLITE_DONE) {
        rc = llt_set_error(LLT_EIO, "trace '%s': %s", llt_store_path(st), sqlite3_errmsg(llt_store_db(st)));
    }
done:
    sqlite3_finalize(stmt);
    if (rc != LLT_OK) llt_table_rows_free(rows);
    else *out = rows;
    return rc;
}
