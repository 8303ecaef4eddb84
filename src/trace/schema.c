// The trace schema: the tables of the current version (LLT_STORE_SCHEMA_VERSION), made in a
// new trace, and the upgrade of an older trace, in place (opened for writing) or seen through
// on the fly (read only).
//
// Every build of lltrace before schema version 2 wrote user_version 1, with one of these
// variants of the schema (git history of src/store.c):
//   a. 82f70c6  node_times a table of rows; no parity, node_stats, node_diffs;
//               runs without dump_path, nan_report, t_tokenize_ns; steps without t_sample_ns
//   b. 4d32634  node_times a view over step_times(run_id, step, times), a JSON text of
//               [idx, t_begin_ns, t_end_ns] per timed node
//   c. 17f6828  + table parity
//   d. eae43c0  + runs.dump_path, runs.nan_report, tables node_stats and node_diffs
//   e. 94b227c  + runs.t_tokenize_ns, steps.t_sample_ns
// Version 2 adds steps.n_timed, nodes.layer_out, nodes.fused, tokens.piece_bytes,
// parity.piece_bytes and the view node_times_named, makes node_times a table of rows again
// and holds valid UTF-8 in every TEXT column. Version 3 adds runs.name, tokens.seq_id,
// tokens.output, steps.seq_mask and parity.seq_id (lltrace exec: several sequences per batch), and
// the tables expert_routing, splits, split_inputs and split_times and nodes.device. Version 4
// adds expert_routing.row (its new key) and expert_routing.seq_id. Version 5 keeps a step's node
// times as one row of step_node_times (a JSON text, written in one insert: a row per node into
// an index cost the writer more than the model's own work, issue 21), node_times becoming a view
// over it with the same columns (and triggers, so SQL that inserts or deletes its rows still
// works). Version 6 adds the tables intervention_specs and intervention_steps and the view
// interventions over them. Version 7 adds the tables causal and causal_cells (lltrace causal
// -o). Version 8 keeps a step's node statistics as one row of step_node_stats, node_stats
// becoming a view over it with the same columns, as node_times did in version 5 (issue 21).
// The tables below are version 8; a column missing from an older table gets its `fill` (an
// SQL expression over the old row, m). The same upgrade serves versions 1 to 7.
#include "trace/schema.h"

#include <ctype.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct column {
    const char * name;
    const char * type;
    const char * fill; // value of an older row that lacks the column; NULL: NULL
};

struct table {
    const char *          name;
    const struct column * cols;
    const char *          key;    // table constraint after the columns, or NULL
    bool                  rowid;  // false: WITHOUT ROWID
};

#define COLS(...) (const struct column[]) { __VA_ARGS__, { NULL, NULL, NULL } }

static const struct table tables[] = {
    { "meta", COLS({ "key", "TEXT PRIMARY KEY", NULL }, { "value", "TEXT", NULL }), NULL, true },
    { "runs", COLS(
        { "id", "INTEGER PRIMARY KEY", NULL }, { "started_at", "TEXT", NULL }, { "ended_at", "TEXT", NULL },
        { "status", "TEXT", NULL }, { "error", "TEXT", NULL }, { "level", "TEXT", NULL },
        { "lltrace_version", "TEXT", NULL }, { "llama_tag", "TEXT", NULL }, { "system_info", "TEXT", NULL },
        { "model_path", "TEXT", NULL }, { "model_name", "TEXT", NULL }, { "model_arch", "TEXT", NULL },
        { "model_desc", "TEXT", NULL }, { "n_layer", "INTEGER", NULL }, { "n_embd", "INTEGER", NULL },
        { "n_head", "INTEGER", NULL }, { "n_head_kv", "INTEGER", NULL }, { "n_vocab", "INTEGER", NULL },
        { "n_ctx_train", "INTEGER", NULL }, { "file_type", "TEXT", NULL }, { "model_bytes", "INTEGER", NULL },
        { "model_params", "INTEGER", NULL }, { "params", "TEXT", NULL }, { "prompt", "TEXT", NULL },
        { "output", "TEXT", NULL }, { "n_prompt", "INTEGER", NULL }, { "n_gen", "INTEGER", NULL },
        { "t_prompt_ns", "INTEGER", NULL }, { "t_gen_ns", "INTEGER", NULL }, { "dump_path", "TEXT", NULL },
        { "nan_report", "TEXT", NULL }, { "t_tokenize_ns", "INTEGER", NULL },
        // version 3: which program and context made the run (lltrace exec), "" for lltrace run
        { "name", "TEXT", NULL }), NULL, true },
    { "weights", COLS(
        { "run_id", "INTEGER", NULL }, { "id", "INTEGER", NULL }, { "name", "TEXT", NULL }, { "type", "TEXT", NULL },
        { "n_dims", "INTEGER", NULL }, { "ne0", "INTEGER", NULL }, { "ne1", "INTEGER", NULL }, { "ne2", "INTEGER", NULL },
        { "ne3", "INTEGER", NULL }, { "bytes", "INTEGER", NULL }, { "bpw", "REAL", NULL }, { "layer", "INTEGER", NULL },
        { "file_offset", "INTEGER", NULL }, { "buffer", "TEXT", NULL }), "PRIMARY KEY(run_id, id)", false },
    { "graphs", COLS({ "id", "INTEGER PRIMARY KEY", NULL }, { "run_id", "INTEGER", NULL }, { "n_nodes", "INTEGER", NULL }),
      NULL, true },
    { "nodes", COLS(
        { "graph_id", "INTEGER", NULL }, { "idx", "INTEGER", NULL }, { "op", "TEXT", NULL }, { "name", "TEXT", NULL },
        { "layer", "INTEGER", NULL }, { "type", "TEXT", NULL }, { "ne0", "INTEGER", NULL }, { "ne1", "INTEGER", NULL },
        { "ne2", "INTEGER", NULL }, { "ne3", "INTEGER", NULL }, { "bytes", "INTEGER", NULL },
        { "is_view", "INTEGER", NULL }, { "is_noop", "INTEGER", NULL }, { "buffer", "TEXT", NULL },
        // facts capture knew, which version 1 did not keep: a layer's output is what version-1
        // capture itself took for one (its name l_out-N); a fused MUL is unknown
        { "layer_out", "INTEGER", "m.name GLOB 'l_out-[0-9]*'" }, { "fused", "INTEGER", NULL },
        // version 3 (the RPC/GPU branch): the backend device holding the output; unknown before
        { "device", "TEXT", NULL }), "PRIMARY KEY(graph_id, idx)", false },
    { "node_srcs", COLS(
        { "graph_id", "INTEGER", NULL }, { "idx", "INTEGER", NULL }, { "slot", "INTEGER", NULL }, { "kind", "TEXT", NULL },
        { "src_idx", "INTEGER", NULL }, { "weight_id", "INTEGER", NULL }, { "name", "TEXT", NULL },
        { "bytes", "INTEGER", NULL }), "PRIMARY KEY(graph_id, idx, slot)", false },
    { "steps", COLS(
        { "run_id", "INTEGER", NULL }, { "step", "INTEGER", NULL }, { "decode", "INTEGER", NULL }, { "phase", "TEXT", NULL },
        { "pos0", "INTEGER", NULL }, { "n_tokens", "INTEGER", NULL }, { "graph_id", "INTEGER", NULL },
        { "t_begin_ns", "INTEGER", NULL }, { "t_end_ns", "INTEGER", NULL }, { "compute_begin_ns", "INTEGER", NULL },
        { "compute_end_ns", "INTEGER", NULL }, { "t_sample_ns", "INTEGER", NULL },
        { "n_timed", "INTEGER", "(SELECT count(*) FROM node_times t WHERE t.run_id = m.run_id AND t.step = m.step)" },
        // version 3: bit s set when the decode call took tokens of sequence s (bit 63: of one
        // >= 63); older traces held sequence 0 alone
        { "seq_mask", "INTEGER", "1" }),
      "PRIMARY KEY(run_id, step)", false },
    { "tokens", COLS(
        { "run_id", "INTEGER", NULL }, { "seq", "INTEGER", NULL }, { "role", "TEXT", NULL }, { "step", "INTEGER", NULL },
        { "pos", "INTEGER", NULL }, { "token", "INTEGER", NULL }, { "piece", "TEXT", NULL },
        { "piece_bytes", "BLOB", "CAST(m.piece AS BLOB)" },
        // version 3: llama.cpp's sequence id, and whether the token's logits were asked for
        // (older traces: one sequence; outputs unknown)
        { "seq_id", "INTEGER", "0" }, { "output", "INTEGER", NULL }), "PRIMARY KEY(run_id, seq)", false },
    { "parity", COLS(
        { "run_id", "INTEGER", NULL }, { "step", "INTEGER", NULL }, { "pos", "INTEGER", NULL }, { "token", "INTEGER", NULL },
        { "piece", "TEXT", NULL }, { "top_k", "TEXT", NULL }, { "piece_bytes", "BLOB", "CAST(m.piece AS BLOB)" },
        { "seq_id", "INTEGER", "0" }), "PRIMARY KEY(run_id, step)", false },
    // version 5: a step's node times, [[idx, begin, end], ...] in key order, begin and end in ns
    // after base_ns (the step's compute_begin_ns when lltrace wrote them); the view node_times
    // shows them as rows
    { "step_node_times", COLS(
        { "run_id", "INTEGER", NULL }, { "step", "INTEGER", NULL }, { "base_ns", "INTEGER", NULL },
        { "times", "TEXT", NULL }), "PRIMARY KEY(run_id, step)", false },
    // version 8: a step's node statistics, one JSON array per node in idx order (stats_view_sql);
    // the view node_stats shows them as rows
    { "step_node_stats", COLS(
        { "run_id", "INTEGER", NULL }, { "step", "INTEGER", NULL }, { "stats", "TEXT", NULL }),
      "PRIMARY KEY(run_id, step)", false },
    { "node_diffs", COLS(
        { "run_id", "INTEGER", NULL }, { "step", "INTEGER", NULL }, { "idx", "INTEGER", NULL }, { "name", "TEXT", NULL },
        { "shape_ok", "INTEGER", NULL }, { "n", "INTEGER", NULL }, { "max_abs", "REAL", NULL },
        { "mean_abs", "REAL", NULL }, { "max_rel", "REAL", NULL }, { "mean_rel", "REAL", NULL }, { "rmse", "REAL", NULL },
        { "nmse", "REAL", NULL }, { "cosine", "REAL", NULL }, { "ref_nonfinite", "INTEGER", NULL },
        { "nonfinite", "INTEGER", NULL }, { "n_exceed", "INTEGER", NULL }, { "max_abs_index", "INTEGER", NULL },
        { "within", "INTEGER", NULL }, { "n_finite", "INTEGER", NULL }, { "n_nonfinite_pairs", "INTEGER", NULL }),
      "PRIMARY KEY(run_id, step, idx)", false },
    // version 3: the experts each token chose in each MoE layer; version 4: the token's row in
    // the step's ubatch (the key: a ubatch may hold two sequences' tokens at one position) and
    // its sequence. Version 3 wrote pos = the decode call's first position + row.
    { "expert_routing", COLS(
        { "run_id", "INTEGER", NULL }, { "step", "INTEGER", NULL }, { "layer", "INTEGER", NULL },
        { "row", "INTEGER", "m.pos - (SELECT s.pos0 FROM main.steps s WHERE s.run_id = m.run_id AND s.step = m.step)" },
        { "pos", "INTEGER", NULL }, { "seq_id", "INTEGER", "0" }, { "rank", "INTEGER", NULL },
        { "expert", "INTEGER", NULL }, { "weight", "REAL", NULL }), "PRIMARY KEY(run_id, step, layer, row, rank)", false },
    // version 3 (the RPC/GPU branch): the scheduler's splits of each graph, the inputs copied
    // into each split from another device, and the splits timed off the CPU
    { "splits", COLS(
        { "graph_id", "INTEGER", NULL }, { "split", "INTEGER", NULL }, { "device", "TEXT", NULL },
        { "idx_first", "INTEGER", NULL }, { "idx_last", "INTEGER", NULL }, { "n_nodes", "INTEGER", NULL },
        { "n_inputs", "INTEGER", NULL }, { "input_bytes", "INTEGER", NULL }), "PRIMARY KEY(graph_id, split)", false },
    { "split_inputs", COLS(
        { "graph_id", "INTEGER", NULL }, { "split", "INTEGER", NULL }, { "input", "INTEGER", NULL },
        { "kind", "TEXT", NULL }, { "src_idx", "INTEGER", NULL }, { "weight_id", "INTEGER", NULL },
        { "name", "TEXT", NULL }, { "from_device", "TEXT", NULL }, { "to_device", "TEXT", NULL },
        { "bytes", "INTEGER", NULL }), "PRIMARY KEY(graph_id, split, input)", false },
    { "split_times", COLS(
        { "run_id", "INTEGER", NULL }, { "step", "INTEGER", NULL }, { "split", "INTEGER", NULL },
        { "t_begin_ns", "INTEGER", NULL }, { "t_compute_ns", "INTEGER", NULL }, { "t_end_ns", "INTEGER", NULL }),
      "PRIMARY KEY(run_id, step, split)", false },
    // version 6: the interventions a run makes (its list, written when it begins) and each
    // application of one to a node in a step; the view interventions joins them
    { "intervention_specs", COLS(
        { "run_id", "INTEGER", NULL }, { "iv", "INTEGER", NULL }, { "kind", "TEXT", NULL }, { "node", "TEXT", NULL },
        { "params", "TEXT", NULL }), "PRIMARY KEY(run_id, iv)", false },
    { "intervention_steps", COLS(
        { "run_id", "INTEGER", NULL }, { "step", "INTEGER", NULL }, { "iv", "INTEGER", NULL }, { "idx", "INTEGER", NULL },
        { "node", "TEXT", NULL }, { "n_changed", "INTEGER", NULL }), "PRIMARY KEY(run_id, step, iv, idx)", false },
    // version 7: a causal tracing result (lltrace causal -o): its clean and corrupted runs, the
    // answer and the plain runs' figures, and per layer and position of the corrupted prompt
    // the answer's probability with that position of <node>-<layer> patched from the clean run
    { "causal", COLS(
        { "id", "INTEGER PRIMARY KEY", NULL }, { "clean_run", "INTEGER", NULL }, { "corrupt_run", "INTEGER", NULL },
        { "node", "TEXT", NULL }, { "answer", "INTEGER", NULL }, { "answer_piece", "TEXT", NULL },
        { "corrupt_top", "INTEGER", NULL }, { "corrupt_top_piece", "TEXT", NULL }, { "clean_p", "REAL", NULL },
        { "corrupt_p", "REAL", NULL }, { "clean_logit_diff", "REAL", NULL }, { "corrupt_logit_diff", "REAL", NULL },
        { "n_layer", "INTEGER", NULL }, { "n_pos", "INTEGER", NULL }, { "none_is_corrupt", "INTEGER", NULL },
        { "last_is_clean", "INTEGER", NULL }), NULL, true },
    { "causal_cells", COLS(
        { "causal_id", "INTEGER", NULL }, { "layer", "INTEGER", NULL }, { "pos", "INTEGER", NULL },
        { "token", "TEXT", NULL }, { "clean_token", "TEXT", NULL }, { "p", "REAL", NULL },
        { "logit_diff", "REAL", NULL }, { "n_changed", "INTEGER", NULL }), "PRIMARY KEY(causal_id, layer, pos)", false },
};
#define N_TABLES ((int) (sizeof(tables) / sizeof(tables[0])))
#define MAX_COLS 64 // columns of the widest table, at most (struct found)

// node times as rows, a table before version 5 (the view of the same name after)
static const struct table times_rows = { "node_times", COLS(
    { "run_id", "INTEGER", NULL }, { "step", "INTEGER", NULL }, { "idx", "INTEGER", NULL },
    { "t_begin_ns", "INTEGER", NULL }, { "t_end_ns", "INTEGER", NULL }), "PRIMARY KEY(run_id, step, idx)", false };

// node_times over step_node_times, made with the tables of a version-5 trace. The triggers keep
// SQL written for the table working: an inserted row is appended to its step's text, a deleted
// one taken out of it (slow, per row: for hand-made traces and tests, not for lltrace's writer).
static const char * times_view_sql =
    "CREATE VIEW node_times AS\n"
    "  SELECT p.run_id AS run_id, p.step AS step, j.value->>0 AS idx,\n"
    "         p.base_ns + (j.value->>1) AS t_begin_ns, p.base_ns + (j.value->>2) AS t_end_ns\n"
    "  FROM step_node_times p, json_each(p.times) j;\n"
    "CREATE TRIGGER node_times_insert INSTEAD OF INSERT ON node_times BEGIN\n"
    "  INSERT OR IGNORE INTO step_node_times VALUES(NEW.run_id, NEW.step, 0, '[]');\n"
    "  UPDATE step_node_times SET times = json_insert(times, '$[#]',\n"
    "      json_array(NEW.idx, NEW.t_begin_ns - base_ns, NEW.t_end_ns - base_ns))\n"
    "    WHERE run_id = NEW.run_id AND step = NEW.step;\n"
    "END;\n"
    "CREATE TRIGGER node_times_delete INSTEAD OF DELETE ON node_times BEGIN\n"
    "  UPDATE step_node_times SET times = (SELECT json_group_array(json(j.value)) FROM json_each(times) j\n"
    "      WHERE j.value->>0 IS NOT OLD.idx)\n"
    "    WHERE run_id = OLD.run_id AND step = OLD.step;\n"
    "  DELETE FROM step_node_times WHERE run_id = OLD.run_id AND step = OLD.step\n"
    "    AND json_array_length(times) = 0;\n"
    "END;\n";

// the rows of an older trace's node_times table as version 5's texts, one per step
static const char * times_pack_sql =
    "INSERT INTO main.step_node_times(run_id, step, base_ns, times)\n"
    "  SELECT run_id, step, 0, json_group_array(json_array(idx, t_begin_ns, t_end_ns))\n"
    "  FROM (SELECT * FROM main.node_times ORDER BY run_id, step, idx) GROUP BY run_id, step;\n"
    "DROP TABLE main.node_times;\n";

// ---- node statistics: one text per step (version 8) --------------------------------------
// A row per node statistic cost the writer about 9 k instructions (an indexed insert, bound
// column by column), 2.5% of the model's own work at level values (issue 21); a step's are
// now one text, [[idx, n, n_nan, n_pinf, n_ninf, n_zero, min, max, mean, std, absmax], ...],
// each REAL written as two integers m, e with the value m * 2^e (m odd, or 0 for zero; an
// infinity is ±1, 1024; NaN null). A decimal fraction would come back through SQLite's text to
// double conversion, which is not correctly rounded in every case; m * pow(2.0, e) is exact
// (m has at most 55 bits, a power of two scales without rounding). pow is one of SQLite's math
// functions (built in since 3.35). absmax may be left out, as lltrace's writer leaves it: over
// the finite values it is max(|min|, |max|).

// the columns of node_stats, as the table of versions 1d-6 had them
#define STATS_COLS "run_id, step, idx, n, n_nan, n_pinf, n_ninf, n_zero, min, max, mean, std, absmax"

static const char * stats_view_sql =
    "CREATE VIEW node_stats AS\n"
    "  SELECT p.run_id AS run_id, p.step AS step, j.value->>0 AS idx, j.value->>1 AS n, j.value->>2 AS n_nan,\n"
    "         j.value->>3 AS n_pinf, j.value->>4 AS n_ninf, j.value->>5 AS n_zero,\n"
    "         (j.value->>6) * pow(2.0, j.value->>7) AS min, (j.value->>8) * pow(2.0, j.value->>9) AS max,\n"
    "         (j.value->>10) * pow(2.0, j.value->>11) AS mean, (j.value->>12) * pow(2.0, j.value->>13) AS std,\n"
    "         CASE WHEN json_array_length(j.value) > 14 THEN (j.value->>14) * pow(2.0, j.value->>15)\n"
    "           ELSE max(abs((j.value->>6) * pow(2.0, j.value->>7)), abs((j.value->>8) * pow(2.0, j.value->>9))) END AS absmax\n"
    "  FROM step_node_stats p, json_each(p.stats) j;\n";

// made after the tables (and again after an upgrade: a view's n.* is the columns of its
// time); %s: "" or "TEMP "
static const char * views_sql =
    "CREATE %sVIEW step_nodes AS\n"
    "  SELECT s.run_id AS run_id, s.step AS step, s.phase AS phase, n.*\n"
    "  FROM steps s JOIN nodes n ON n.graph_id = s.graph_id;\n"
    "CREATE %sVIEW node_times_named AS\n"
    "  SELECT t.run_id AS run_id, t.step AS step, t.idx AS idx, n.name AS name, n.op AS op,\n"
    "         n.layer AS layer, t.t_begin_ns AS t_begin_ns, t.t_end_ns AS t_end_ns,\n"
    "         t.t_end_ns - t.t_begin_ns AS dur_ns\n"
    "  FROM node_times t JOIN steps s ON s.run_id = t.run_id AND s.step = t.step\n"
    "  JOIN nodes n ON n.graph_id = s.graph_id AND n.idx = t.idx;\n"
    "CREATE %sVIEW interventions AS\n"
    "  SELECT a.run_id AS run_id, a.step AS step, a.idx AS idx, a.node AS node, p.kind AS kind,\n"
    "         p.params AS params, a.n_changed AS n_changed, a.iv AS iv\n"
    "  FROM intervention_steps a JOIN intervention_specs p ON p.run_id = a.run_id AND p.iv = a.iv;\n";

// node times of a version-1 trace of variants b-e, from their JSON text
static const char * times_from_json_sql =
    "SELECT st.run_id, st.step, j.value->>0, j.value->>1, j.value->>2 FROM %s.step_times st, json_each(st.times) j";

// ---- text --------------------------------------------------------------------------------

struct sql {
    char * s;
    size_t len, cap;
    bool   failed;
};

static void add(struct sql * q, const char * fmt, ...) __attribute__((format(printf, 2, 3)));
static void add(struct sql * q, const char * fmt, ...) {
    for (int attempt = 0; attempt < 2 && !q->failed; attempt++) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(q->s ? q->s + q->len : NULL, q->s ? q->cap - q->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) { q->failed = true; return; }
        if (q->s && q->len + (size_t) n < q->cap) { q->len += (size_t) n; return; }
        size_t cap = q->cap ? q->cap : 1024;
        while (cap <= q->len + (size_t) n) cap *= 2;
        char * ns = realloc(q->s, cap);
        if (!ns) { q->failed = true; return; }
        q->s = ns;
        q->cap = cap;
    }
}

// CREATE TABLE schema.<name><suffix>
static void create_table(struct sql * q, const char * schema, const struct table * t, const char * suffix) {
    add(q, "CREATE TABLE %s.%s%s(", schema, t->name, suffix);
    for (const struct column * c = t->cols; c->name; c++) add(q, "%s%s %s", c == t->cols ? "" : ", ", c->name, c->type);
    if (t->key) add(q, ", %s", t->key);
    add(q, ")%s;\n", t->rowid ? "" : " WITHOUT ROWID");
}

// ---- node statistics in SQL --------------------------------------------------------------

// The pair "m, e" of the REAL x (an SQL expression) as stats_view_sql reads it back, for rows
// that come through SQL (the triggers, an upgrade): e = floor(log2 |x|) - 53, at least -1074
// (subnormals), and m = x * 2^-e, an integer below 2^55 even where log2 is one off, scaled in
// two halves so that no step overflows. lltrace's writer makes m odd instead (rows.c).
static void add_real_pair(struct sql * q, const char * x) {
    char e[400];
    snprintf(e, sizeof(e), "(CASE WHEN %s IS NULL OR %s = 0 THEN 0 WHEN abs(%s) >= 1e999 THEN 1024"
             " ELSE max(CAST(floor(log2(abs(%s))) AS INTEGER) - 53, -1074) END)", x, x, x, x);
    add(q, "CASE WHEN %s IS NULL THEN NULL WHEN %s = 0 THEN 0 WHEN abs(%s) >= 1e999 THEN sign(%s)"
           " ELSE CAST(%s * pow(2.0, (-%s) / 2) * pow(2.0, -%s - (-%s) / 2) AS INTEGER) END, %s",
        x, x, x, x, x, e, e, e, e);
}

// node_stats's element of a row whose columns are p.<name> (p: "NEW." or "m.")
static void add_stats_element(struct sql * q, const char * p) {
    add(q, "json_array(%sidx, %sn, %sn_nan, %sn_pinf, %sn_ninf, %sn_zero", p, p, p, p, p, p);
    static const char * const reals[] = { "min", "max", "mean", "std", "absmax" };
    for (int k = 0; k < 5; k++) {
        char x[32];
        snprintf(x, sizeof(x), "%s%s", p, reals[k]);
        add(q, ", ");
        add_real_pair(q, x);
    }
    add(q, ")");
}

// the view node_stats and its triggers, which keep SQL written for the table working: an
// inserted row is appended to its step's text, a deleted one taken out of it (slow, per row:
// for hand-made traces and tests, not for lltrace's writer)
static void add_stats_view(struct sql * q) {
    add(q, "%s", stats_view_sql);
    add(q, "CREATE TRIGGER node_stats_insert INSTEAD OF INSERT ON node_stats BEGIN\n"
           "  INSERT OR IGNORE INTO step_node_stats VALUES(NEW.run_id, NEW.step, '[]');\n"
           "  UPDATE step_node_stats SET stats = json_insert(stats, '$[#]', ");
    add_stats_element(q, "NEW.");
    add(q, ")\n    WHERE run_id = NEW.run_id AND step = NEW.step;\nEND;\n"
           "CREATE TRIGGER node_stats_delete INSTEAD OF DELETE ON node_stats BEGIN\n"
           "  UPDATE step_node_stats SET stats = (SELECT json_group_array(json(j.value)) FROM json_each(stats) j\n"
           "      WHERE j.value->>0 IS NOT OLD.idx)\n"
           "    WHERE run_id = OLD.run_id AND step = OLD.step;\n"
           "  DELETE FROM step_node_stats WHERE run_id = OLD.run_id AND step = OLD.step\n"
           "    AND json_array_length(stats) = 0;\n"
           "END;\n");
}

// the rows of an older trace's node_stats table as version 8's texts, one per step
static void add_stats_pack(struct sql * q) {
    add(q, "INSERT INTO main.step_node_stats(run_id, step, stats)\n  SELECT run_id, step, json_group_array(");
    add_stats_element(q, "m.");
    add(q, ")\n  FROM (SELECT * FROM main.node_stats ORDER BY run_id, step, idx) AS m GROUP BY run_id, step;\n"
           "DROP TABLE main.node_stats;\n");
}

// ---- UTF-8: the SQL function llt_utf8(x) -------------------------------------------------

// x with every byte that does not start a valid UTF-8 sequence replaced by U+FFFD; other values as they are
static void utf8_fn(sqlite3_context * ctx, int argc, sqlite3_value ** argv) {
    (void) argc;
    if (sqlite3_value_type(argv[0]) != SQLITE_TEXT) {
        sqlite3_result_value(ctx, argv[0]);
        return;
    }
    const char * s = (const char *) sqlite3_value_text(argv[0]);
    const int n = sqlite3_value_bytes(argv[0]);
    if (llt_utf8_valid(s, (size_t) n)) {
        sqlite3_result_value(ctx, argv[0]);
        return;
    }
    char * out = malloc((size_t) n * 3 + 1);
    if (!out) {
        sqlite3_result_error_nomem(ctx);
        return;
    }
    size_t len = llt_utf8_copy(out, (size_t) n * 3 + 1, s, (size_t) n);
    sqlite3_result_text(ctx, out, (int) len, free);
}

int llt_schema_register(struct sqlite3 * db) {
    return sqlite3_create_function(db, "llt_utf8", 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS, NULL,
                                   utf8_fn, NULL, NULL) == SQLITE_OK ? LLT_OK : LLT_EIO;
}

// ---- creating ----------------------------------------------------------------------------

int llt_schema_create(struct llt_store * st) {
    struct sql q = {0};
    for (int i = 0; i < N_TABLES; i++) create_table(&q, "main", &tables[i], "");
    add(&q, "%s", times_view_sql);
    add_stats_view(&q);
    add(&q, views_sql, "", "", "");
    add(&q, "INSERT INTO meta VALUES('format', 'lltrace-trace');\n"
            "INSERT INTO meta VALUES('schema_version', '%d');\n"
            "PRAGMA application_id=%d; PRAGMA user_version=%d;\n",
        LLT_STORE_SCHEMA_VERSION, LLT_STORE_APPLICATION_ID, LLT_STORE_SCHEMA_VERSION);
    int rc = q.failed ? llt_set_error(LLT_ENOMEM, "out of memory") : llt_store_exec(st, q.s);
    free(q.s);
    return rc;
}

// ---- older versions ----------------------------------------------------------------------

// what an older trace holds of a table
struct found {
    bool exists;
    bool has[MAX_COLS]; // per column of the current table
};

static int inspect(struct llt_store * st, const struct table * t, struct found * f) {
    *f = (struct found) {0};
    sqlite3_stmt * s = llt_store_prepare(st, "SELECT name FROM pragma_table_info(?, 'main')");
    if (!s) return LLT_EIO;
    sqlite3_bind_text(s, 1, t->name, -1, SQLITE_STATIC);
    while (sqlite3_step(s) == SQLITE_ROW) {
        const char * name = (const char *) sqlite3_column_text(s, 0);
        f->exists = true;
        for (int k = 0; t->cols[k].name && k < MAX_COLS; k++) {
            if (strcmp(t->cols[k].name, name) == 0) f->has[k] = true;
        }
    }
    return sqlite3_finalize(s) == SQLITE_OK ? LLT_OK : llt_set_error(LLT_EIO, "trace '%s': %s", llt_store_path(st),
                                                                       sqlite3_errmsg(llt_store_db(st)));
}

// how an older trace holds its node times
enum times_layout {
    TIMES_NONE,   // not at all
    TIMES_ROWS,   // a table of rows, node_times (version 1a, 2-4)
    TIMES_JSON,   // version 1b-e: a JSON text per step in step_times, node_times a view over it
    TIMES_PACKED, // this version's step_node_times (a trace marked older than it is)
};

// The layout an older trace has, from a one-row query over sqlite_master whose n columns each
// give a layout's number when its table is there, 0 when not: the first that is not 0, in the
// order of preference; 0 (none) when no column is.
static int first_layout(struct llt_store * st, const char * sql, int n, int * out) {
    sqlite3_stmt * s = llt_store_prepare(st, sql);
    if (!s) return LLT_EIO;
    *out = 0;
    if (sqlite3_step(s) == SQLITE_ROW) {
        for (int c = 0; c < n && *out == 0; c++) *out = sqlite3_column_int(s, c);
    }
    sqlite3_finalize(s);
    return LLT_OK;
}

static int times_layout(struct llt_store * st, enum times_layout * out) {
    int v = TIMES_NONE;
    const int rc = first_layout(st,
        "SELECT coalesce(max(name = 'step_node_times' AND type = 'table') * 3, 0),"
        " coalesce(max(name = 'step_times' AND type = 'table') * 2, 0),"
        " coalesce(max(name = 'node_times' AND type = 'table'), 0)"
        " FROM main.sqlite_master WHERE name IN ('step_node_times', 'step_times', 'node_times')", 3, &v);
    *out = (enum times_layout) v;
    return rc;
}

// how an older trace holds its node statistics
enum stats_layout {
    STATS_NONE,   // not at all (version 1a-c)
    STATS_ROWS,   // a table of rows, node_stats (versions 1d-6)
    STATS_PACKED, // this version's step_node_stats (a trace marked older than it is)
};

static int stats_layout(struct llt_store * st, enum stats_layout * out) {
    int v = STATS_NONE;
    const int rc = first_layout(st,
        "SELECT coalesce(max(name = 'step_node_stats') * 2, 0), coalesce(max(name = 'node_stats'), 0)"
        " FROM main.sqlite_master WHERE type = 'table' AND name IN ('step_node_stats', 'node_stats')", 2, &v);
    *out = (enum stats_layout) v;
    return rc;
}

// the value of column k of an older row m: the column (text made valid), or its fill
static void old_value(struct sql * q, const struct table * t, const struct found * f, int k) {
    const struct column * c = &t->cols[k];
    if (!f->has[k])                        add(q, "%s", c->fill ? c->fill : "NULL");
    else if (strcmp(c->type, "TEXT") == 0) add(q, "llt_utf8(m.%s)", c->name);
    else                                   add(q, "m.%s", c->name);
}

// whether the table's key names a column the older table lacks (SQLite cannot change a key)
static bool key_gains_column(const struct table * t, const struct found * f) {
    for (int k = 0; t->key && t->cols[k].name; k++) {
        if (f->has[k]) continue;
        const size_t n = strlen(t->cols[k].name);
        for (const char * p = strstr(t->key, t->cols[k].name); p; p = strstr(p + 1, t->cols[k].name)) {
            const bool starts = p == t->key || (!isalnum((unsigned char) p[-1]) && p[-1] != '_');
            if (starts && !isalnum((unsigned char) p[n]) && p[n] != '_') return true;
        }
    }
    return false;
}

// the table made anew under its current definition, its rows copied with the new columns filled
static void rebuild(struct sql * q, const struct table * t, const struct found * f) {
    create_table(q, "main", t, "_new");
    add(q, "INSERT INTO main.%s_new SELECT ", t->name);
    for (int k = 0; t->cols[k].name; k++) {
        if (k) add(q, ", ");
        old_value(q, t, f, k);
    }
    add(q, " FROM main.%s AS m;\nDROP TABLE main.%s;\nALTER TABLE main.%s_new RENAME TO %s;\n",
        t->name, t->name, t->name, t->name);
}

// Upgrades an older trace in place (the caller holds a write transaction): missing tables
// and columns are added and filled (a table whose key gains a column is made anew), node times
// become one text per step behind the view node_times, text becomes valid UTF-8.
static int upgrade(struct llt_store * st, struct sql * q) {
    enum times_layout layout = TIMES_NONE;
    enum stats_layout stats = STATS_NONE;
    int rc = times_layout(st, &layout);
    if (rc == LLT_OK) rc = stats_layout(st, &stats);
    add(q, "DROP VIEW IF EXISTS main.step_nodes; DROP VIEW IF EXISTS main.node_times_named;"
           " DROP VIEW IF EXISTS main.interventions;\n");
    if (layout == TIMES_JSON) { // version 1's JSON (b-e) becomes rows first, as versions 2-4 hold them
        add(q, "DROP VIEW IF EXISTS main.node_times;\n");
        create_table(q, "main", &times_rows, "");
        add(q, "INSERT INTO main.node_times ");
        add(q, times_from_json_sql, "main");
        add(q, ";\nDROP TABLE main.step_times;\n");
    }
    for (int i = 0; i < N_TABLES && rc == LLT_OK; i++) {
        const struct table * t = &tables[i];
        struct found f;
        if ((rc = inspect(st, t, &f)) != LLT_OK) continue;
        if (!f.exists) {
            create_table(q, "main", t, "");
            continue;
        }
        if (key_gains_column(t, &f)) {
            rebuild(q, t, &f);
            continue;
        }
        for (int k = 0; t->cols[k].name; k++) {
            if (!f.has[k]) add(q, "ALTER TABLE main.%s ADD COLUMN %s %s;\n", t->name, t->cols[k].name, t->cols[k].type);
        }
        // one pass over the table sets every new and every text column (piece_bytes is
        // computed from the piece as it was: an UPDATE reads the old row)
        add(q, "UPDATE main.%s AS m SET ", t->name);
        for (int k = 0; t->cols[k].name; k++) {
            add(q, "%s%s = ", k ? ", " : "", t->cols[k].name);
            old_value(q, t, &f, k);
        }
        add(q, " WHERE 0");
        for (int k = 0; t->cols[k].name; k++) {
            const struct column * c = &t->cols[k];
            if (!f.has[k] && c->fill)                    add(q, " OR 1");
            else if (f.has[k] && !strcmp(c->type, "TEXT")) add(q, " OR m.%s IS NOT llt_utf8(m.%s)", c->name, c->name);
        }
        add(q, ";\n");
    }
    // after the tables: steps.n_timed of version 1 was counted from the rows
    if (layout == TIMES_ROWS || layout == TIMES_JSON) add(q, "%s", times_pack_sql);
    add(q, "DROP VIEW IF EXISTS main.node_times;\n%s", times_view_sql);
    if (stats == STATS_ROWS) add_stats_pack(q);
    add(q, "DROP VIEW IF EXISTS main.node_stats;\n");
    add_stats_view(q);
    add(q, views_sql, "", "", "");
    add(q, "INSERT OR REPLACE INTO main.meta VALUES('schema_version', '%d');\nPRAGMA main.user_version=%d;\n",
        LLT_STORE_SCHEMA_VERSION, LLT_STORE_SCHEMA_VERSION);
    return rc;
}

// Shows an older trace opened read only as the current version, without writing it: a TEMP view
// per table (they come before main's tables in name lookup) with the missing columns filled
// and text made valid; node_times a TEMP view of the rows (versions 1a-4), or for the JSON
// variants a TEMP table of rows.
static int shim(struct llt_store * st, struct sql * q) {
    enum times_layout layout = TIMES_NONE;
    int rc = times_layout(st, &layout);
    if (layout == TIMES_JSON) {
        create_table(q, "temp", &times_rows, "");
        add(q, "INSERT INTO temp.node_times ");
        add(q, times_from_json_sql, "main");
        add(q, ";\n");
    } else if (layout == TIMES_ROWS) {
        add(q, "CREATE TEMP VIEW node_times AS SELECT run_id, step, idx, t_begin_ns, t_end_ns FROM main.node_times;\n");
    } else if (layout == TIMES_NONE) {
        add(q, "CREATE TEMP VIEW node_times AS SELECT NULL AS run_id, NULL AS step, NULL AS idx, NULL AS t_begin_ns,"
               " NULL AS t_end_ns WHERE 0;\n");
    } // TIMES_PACKED: main's view reads main's table
    enum stats_layout stats = STATS_NONE;
    if (rc == LLT_OK) rc = stats_layout(st, &stats);
    if (stats == STATS_ROWS) {
        add(q, "CREATE TEMP VIEW node_stats AS SELECT " STATS_COLS " FROM main.node_stats;\n");
    } else if (stats == STATS_NONE) {
        add(q, "CREATE TEMP VIEW node_stats AS SELECT NULL AS run_id, NULL AS step, NULL AS idx, NULL AS n,"
               " NULL AS n_nan, NULL AS n_pinf, NULL AS n_ninf, NULL AS n_zero, NULL AS min, NULL AS max,"
               " NULL AS mean, NULL AS std, NULL AS absmax WHERE 0;\n");
    } // STATS_PACKED: main's view reads main's table
    for (int i = 0; i < N_TABLES && rc == LLT_OK; i++) {
        const struct table * t = &tables[i];
        struct found f;
        if ((rc = inspect(st, t, &f)) != LLT_OK) continue;
        add(q, "CREATE TEMP VIEW %s AS SELECT ", t->name);
        for (int k = 0; t->cols[k].name; k++) {
            if (k) add(q, ", ");
            if (f.exists) old_value(q, t, &f, k); else add(q, "NULL");
            add(q, " AS %s", t->cols[k].name);
        }
        if (f.exists) add(q, " FROM main.%s AS m;\n", t->name); else add(q, " WHERE 0;\n");
    }
    add(q, views_sql, "TEMP ", "TEMP ", "TEMP ");
    return rc;
}

int llt_schema_check(struct llt_store * st, enum llt_store_mode mode) {
    sqlite3 * db = llt_store_db(st);
    struct sql q = {0};
    int rc = mode == LLT_STORE_WRITE ? llt_store_exec(st, "BEGIN IMMEDIATE") : LLT_OK;
    // read under the write lock: another process may have upgraded the trace meanwhile
    sqlite3_stmt * s = rc == LLT_OK ? llt_store_prepare(st, "PRAGMA main.user_version") : NULL;
    const int version = s && sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int(s, 0) : -1;
    sqlite3_finalize(s);
    if (rc == LLT_OK && version < 0) rc = llt_set_error(LLT_EIO, "trace '%s': %s", llt_store_path(st), sqlite3_errmsg(db));
    const bool old = version >= 1 && version < LLT_STORE_SCHEMA_VERSION;
    if (rc == LLT_OK && old) rc = mode == LLT_STORE_WRITE ? upgrade(st, &q) : shim(st, &q);
    if (rc == LLT_OK && q.failed) rc = llt_set_error(LLT_ENOMEM, "out of memory");
    if (rc == LLT_OK && q.s) rc = llt_store_exec(st, q.s);
    if (rc == LLT_OK && mode == LLT_STORE_WRITE) rc = llt_store_exec(st, "COMMIT");
    if (rc != LLT_OK && mode == LLT_STORE_WRITE) llt_store_rollback(st);
    if (rc != LLT_OK && old) {
        char why[512];
        snprintf(why, sizeof(why), "%s", llt_last_error());
        rc = llt_set_error(rc, "cannot %s trace '%s' of schema version %d: %s",
                           mode == LLT_STORE_WRITE ? "upgrade" : "read", llt_store_path(st), version, why);
    }
    free(q.s);
    return rc;
}
