// lltrace show: the nodes of a step, the statistics of a run or its weight registry, as a
// table, CSV or JSON.
//
// A view is a list of sheets: an SQL query over the trace (docs/trace-format.md) and the
// columns it returns. All sheets are read before anything is printed, so a failing query
// never leaves half a document behind.
#include "cli.h"
#include "lltrace.h"
#include "ggml-cpu.h"

#include <assert.h>
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// ---- options -----------------------------------------------------------------------------

enum show_view   { VIEW_NODES, VIEW_STATS, VIEW_WEIGHTS, VIEW_DISPATCH };
enum show_format { FORMAT_TABLE, FORMAT_CSV, FORMAT_JSON };

struct show_opts {
    const char *     trace;
    int64_t          run;       // 0: the last run
    int64_t          step;      // with has_step
    int64_t          layer;     // with has_layer
    bool             has_step;
    bool             has_layer;
    const char *     op;        // NULL: any op
    const char *     name;      // sqlite GLOB, NULL: any name
    int64_t          limit;     // 0: no limit
    enum show_view   view;
    enum show_format format;
    bool             help;
};

static const char * usage_text =
    "usage: lltrace show TRACE [options]\n"
    "\n"
    "Prints the nodes of one step of a run (default: the last run, step 0).\n"
    "\n"
    "options:\n"
    "  --run ID        the run to show (default: the last one)\n"
    "  --step N        the step to show (default: 0; with --stats: every step)\n"
    "  --layer N       only nodes (or weights) of layer N; -1: outside the blocks\n"
    "  --op OP         only nodes of this op, any case (MUL_MAT, rms_norm)\n"
    "  --name GLOB     only nodes (or weights) whose name matches: 'Qcur-*', 'blk.0.*'\n"
    "  --limit N       at most N rows\n"
    "  --stats         nodes per op and layer, bytes read and written, weight coverage\n"
    "  --weights       the weight registry of the run\n"
    "  --dispatch      per weight: type, block size, bits per weight, the type this CPU converts\n"
    "                  activations to for its dot products, buffer; kernels and where nodes ran\n"
    "  --format FMT    table (default), csv or json\n"
    "  -h, --help      this help\n";

// Fills o from argv; false after printing a usage error. Stops at -h/--help.
static bool parse_opts(int argc, char ** argv, struct show_opts * o) {
    bool stats = false, weights = false, dispatch = false;
    for (int i = 1; i < argc; i++) {
        const char * a = argv[i];
        const char * v = NULL;
        if (cli_is_help(a)) {
            o->help = true;
            return true;
        } else if (strcmp(a, "--stats") == 0) {
            stats = true;
        } else if (strcmp(a, "--weights") == 0) {
            weights = true;
        } else if (strcmp(a, "--dispatch") == 0) {
            dispatch = true;
        } else if (strcmp(a, "--run") == 0) {
            if (!(v = cli_value(argc, argv, &i)) || !cli_parse_int(a, v, 1, INT32_MAX, &o->run)) return false;
        } else if (strcmp(a, "--step") == 0) {
            if (!(v = cli_value(argc, argv, &i)) || !cli_parse_int(a, v, 0, INT32_MAX, &o->step)) return false;
            o->has_step = true;
        } else if (strcmp(a, "--layer") == 0) {
            if (!(v = cli_value(argc, argv, &i)) || !cli_parse_int(a, v, -1, INT32_MAX, &o->layer)) return false;
            o->has_layer = true;
        } else if (strcmp(a, "--limit") == 0) {
            if (!(v = cli_value(argc, argv, &i)) || !cli_parse_int(a, v, 1, INT64_MAX, &o->limit)) return false;
        } else if (strcmp(a, "--op") == 0) {
            if (!(o->op = cli_value(argc, argv, &i))) return false;
        } else if (strcmp(a, "--name") == 0) {
            if (!(o->name = cli_value(argc, argv, &i))) return false;
        } else if (strcmp(a, "--format") == 0) {
            static const char * const formats[] = { [FORMAT_TABLE] = "table", [FORMAT_CSV] = "csv", [FORMAT_JSON] = "json" };
            int k;
            if (!(v = cli_value(argc, argv, &i)) || !cli_parse_choice(a, v, formats, 3, &k)) return false;
            o->format = (enum show_format) k;
        } else if (a[0] == '-' && a[1] != '\0') {
            cli_error("show: unknown option '%s' (see 'lltrace show --help')", a);
            return false;
        } else if (o->trace) {
            cli_error("show: unexpected argument '%s' (one TRACE only)", a);
            return false;
        } else {
            o->trace = a;
        }
    }
    if (!o->trace) {
        cli_error("show: missing TRACE (see 'lltrace show --help')");
        return false;
    }
    if (stats + weights + dispatch > 1) {
        cli_error("show: --stats, --weights and --dispatch are separate views; pick one");
        return false;
    }
    o->view = stats ? VIEW_STATS : weights ? VIEW_WEIGHTS : dispatch ? VIEW_DISPATCH : VIEW_NODES;
    if (dispatch && o->op) {
        cli_error("show: --op selects nodes; --dispatch lists weights (--layer, --name, --limit) and kernels (--step)");
        return false;
    }
    if (stats && (o->has_layer || o->op || o->name || o->limit)) {
        cli_error("show: --layer, --op, --name and --limit select nodes or weights, not --stats");
        return false;
    }
    if (weights && (o->has_step || o->op)) {
        cli_error("show: --step and --op select nodes; the weight registry is the same for every step");
        return false;
    }
    return true;
}

// ---- sheets: a query and its columns -----------------------------------------------------

enum col_kind {
    COL_TEXT,  // text as stored
    COL_LONG,  // free text (prompt, output): one short quoted line in a table
    COL_INT,
    COL_BYTES, // human readable in a table, exact elsewhere
    COL_TIME,  // nanoseconds, printed as microseconds
    COL_REAL,
    COL_PCT,
    COL_JSON,  // JSON text made by the query
};

enum col_where {
    IN_ALL,
    IN_TEXT,   // table and csv only: the readable twin of an IN_JSON column
    IN_JSON,   // json only
};

struct col {
    const char *   name;
    enum col_kind  kind;
    enum col_where where;
    unsigned       needs; // HAVE_* the run must have for the column to be shown
};

// what a run holds besides its graph
enum { HAVE_TIMES = 1, HAVE_STATS = 2 };

struct sheet_def {
    const char *       name;   // member of the json document
    const char *       title;  // heading in a table, NULL: none
    bool               record; // one row: a line in a table, an object in json, left out of csv
    const char *       sql;    // parameters :run :step :layer :op :name :limit, NULL when not given
    const struct col * cols;   // one per result column
    int                n_cols;
};

#define SHEET(name, title, record, sql, cols) \
    { name, title, record, sql, cols, (int) (sizeof(cols) / sizeof(cols[0])) }

// a tensor's shape as a JSON array, trailing 1s dropped: [4096,7]
#define SHAPE_JSON(t) \
    "CASE WHEN " t ".ne3 > 1 THEN json_array(" t ".ne0, " t ".ne1, " t ".ne2, " t ".ne3)" \
    " WHEN " t ".ne2 > 1 THEN json_array(" t ".ne0, " t ".ne1, " t ".ne2)" \
    " WHEN " t ".ne1 > 1 THEN json_array(" t ".ne0, " t ".ne1)" \
    " ELSE json_array(" t ".ne0) END"
// the same shape as text: 4096×7
#define SHAPE_TEXT(col) "replace(trim(" col ", '[]'), ',', '×')"
// the selected steps: one with :step, else all of the run
#define STEPS_WHERE(s) s ".run_id = :run AND (:step IS NULL OR " s ".step = :step)"

static const struct col run_cols[] = {
    { "run",        COL_INT,  IN_ALL,  0 },
    { "model",      COL_TEXT, IN_ALL,  0 },
    { "arch",       COL_TEXT, IN_ALL,  0 },
    { "file_type",  COL_TEXT, IN_ALL,  0 },
    { "level",      COL_TEXT, IN_ALL,  0 },
    { "status",     COL_TEXT, IN_ALL,  0 },
    { "error",      COL_LONG, IN_ALL,  0 },
    { "steps",      COL_INT,  IN_ALL,  0 },
    { "tokens",     COL_TEXT, IN_TEXT, 0 },
    { "n_prompt",   COL_INT,  IN_JSON, 0 },
    { "n_gen",      COL_INT,  IN_JSON, 0 },
    { "output",     COL_LONG, IN_ALL,  0 },
    { "prompt",     COL_LONG, IN_JSON, 0 },
    { "model_path", COL_TEXT, IN_JSON, 0 },
    { "started_at", COL_TEXT, IN_JSON, 0 },
    { "ended_at",   COL_TEXT, IN_JSON, 0 },
    { "params",     COL_JSON, IN_JSON, 0 },
};
static const char run_sql[] =
    "SELECT id, model_name, model_arch, file_type, level, status, error,"
    " (SELECT count(*) FROM steps WHERE run_id = r.id),"
    " n_prompt || ' prompt + ' || n_gen || ' gen', n_prompt, n_gen, output, prompt, model_path, started_at, ended_at,"
    " CASE WHEN json_valid(params) THEN params END"
    " FROM runs r WHERE id = :run";

static const struct col step_cols[] = {
    { "step",       COL_INT,  IN_ALL, 0 },
    { "decode",     COL_INT,  IN_ALL, 0 },
    { "phase",      COL_TEXT, IN_ALL, 0 },
    { "pos0",       COL_INT,  IN_ALL, 0 },
    { "n_tokens",   COL_INT,  IN_ALL, 0 },
    { "graph",      COL_INT,  IN_ALL, 0 },
    { "nodes",      COL_INT,  IN_ALL, 0 },
    { "time_us",    COL_TIME, IN_ALL, 0 },
    { "compute_us", COL_TIME, IN_ALL, 0 },
};
static const char step_sql[] =
    "SELECT s.step, s.decode, s.phase, s.pos0, s.n_tokens, s.graph_id, g.n_nodes,"
    " s.t_end_ns - s.t_begin_ns, s.compute_end_ns - s.compute_begin_ns"
    " FROM steps s LEFT JOIN graphs g ON g.id = s.graph_id"
    " WHERE s.run_id = :run AND s.step = :step";

static const struct col node_cols[] = {
    { "idx",     COL_INT,   IN_ALL,  0 },
    { "op",      COL_TEXT,  IN_ALL,  0 },
    { "name",    COL_TEXT,  IN_ALL,  0 },
    { "layer",   COL_INT,   IN_ALL,  0 },
    { "shape",   COL_TEXT,  IN_TEXT, 0 },
    { "shape",   COL_JSON,  IN_JSON, 0 },
    { "type",    COL_TEXT,  IN_ALL,  0 },
    { "bytes",   COL_BYTES, IN_ALL,  0 },
    { "flags",   COL_TEXT,  IN_TEXT, 0 },
    { "is_view", COL_INT,   IN_JSON, 0 },
    { "is_noop", COL_INT,   IN_JSON, 0 },
    { "buffer",  COL_TEXT,  IN_ALL,  0 },
    { "time_us", COL_TIME,  IN_ALL,  HAVE_TIMES  },
    { "min",     COL_REAL,  IN_ALL,  HAVE_STATS },
    { "max",     COL_REAL,  IN_ALL,  HAVE_STATS },
    { "mean",    COL_REAL,  IN_ALL,  HAVE_STATS },
    { "std",     COL_REAL,  IN_ALL,  HAVE_STATS },
    { "nan_inf", COL_INT,   IN_ALL,  HAVE_STATS },
    { "sources", COL_TEXT,  IN_TEXT, 0 },
    { "sources", COL_JSON,  IN_JSON, 0 },
};
static const char node_sql[] =
    "WITH sn AS ("
    "  SELECT n.*, t.t_end_ns - t.t_begin_ns AS time_ns, " SHAPE_JSON("n") " AS shape,"
    "   x.min AS st_min, x.max AS st_max, x.mean AS st_mean, x.std AS st_std,"
    "   x.n_nan + x.n_pinf + x.n_ninf AS st_nonfinite"
    "  FROM steps s JOIN nodes n ON n.graph_id = s.graph_id"
    "  LEFT JOIN node_times t ON t.run_id = s.run_id AND t.step = s.step AND t.idx = n.idx"
    "  LEFT JOIN node_stats x ON x.run_id = s.run_id AND x.step = s.step AND x.idx = n.idx"
    "  WHERE s.run_id = :run AND s.step = :step"
    "    AND (:layer IS NULL OR n.layer = :layer)"
    "    AND (:op IS NULL OR upper(n.op) = upper(:op))"
    "    AND (:name IS NULL OR n.name GLOB :name)"
    "  ORDER BY n.idx LIMIT coalesce(:limit, -1))"
    " SELECT idx, op, name, layer, " SHAPE_TEXT("shape") ", shape, type, bytes,"
    "  CASE WHEN is_view AND is_noop THEN 'view,noop' WHEN is_view THEN 'view'"
    "   WHEN is_noop THEN 'noop' END,"
    "  is_view, is_noop, buffer, time_ns, st_min, st_max, st_mean, st_std, st_nonfinite,"
    "  (SELECT group_concat(label, ', ') FROM ("
    "    SELECT ns.name || CASE ns.kind WHEN 'node' THEN '[' || ns.src_idx || ']'"
    "     WHEN 'weight' THEN '(w)' ELSE '(in)' END AS label"
    "    FROM node_srcs ns WHERE ns.graph_id = sn.graph_id AND ns.idx = sn.idx ORDER BY ns.slot)),"
    "  (SELECT json_group_array(json_object('slot', slot, 'kind', kind, 'name', name,"
    "     'idx', src_idx, 'weight_id', weight_id, 'bytes', bytes)) FROM ("
    "    SELECT * FROM node_srcs ns WHERE ns.graph_id = sn.graph_id AND ns.idx = sn.idx ORDER BY ns.slot))"
    " FROM sn ORDER BY idx";

static const struct col weight_cols[] = {
    { "id",          COL_INT,   IN_ALL,  0 },
    { "name",        COL_TEXT,  IN_ALL,  0 },
    { "type",        COL_TEXT,  IN_ALL,  0 },
    { "shape",       COL_TEXT,  IN_TEXT, 0 },
    { "shape",       COL_JSON,  IN_JSON, 0 },
    { "bytes",       COL_BYTES, IN_ALL,  0 },
    { "bpw",         COL_REAL,  IN_ALL,  0 },
    { "layer",       COL_INT,   IN_ALL,  0 },
    { "file_offset", COL_INT,   IN_ALL,  0 },
    { "buffer",      COL_TEXT,  IN_ALL,  0 },
};
static const char weight_sql[] =
    "WITH w AS ("
    "  SELECT *, " SHAPE_JSON("weights") " AS shape FROM weights"
    "  WHERE run_id = :run AND (:layer IS NULL OR layer = :layer) AND (:name IS NULL OR name GLOB :name)"
    "  ORDER BY id LIMIT coalesce(:limit, -1))"
    " SELECT id, name, type, " SHAPE_TEXT("shape") ", shape, bytes, bpw, layer, file_offset, buffer"
    " FROM w ORDER BY id";

// bytes read: sources of the nodes that compute (views and no-ops move nothing);
// coverage: distinct weights that are a source of any node of the step
static const struct col step_stat_cols[] = {
    { "step",         COL_INT,   IN_ALL, 0 },
    { "phase",        COL_TEXT,  IN_ALL, 0 },
    { "n_tokens",     COL_INT,   IN_ALL, 0 },
    { "graph",        COL_INT,   IN_ALL, 0 },
    { "nodes",        COL_INT,   IN_ALL, 0 },
    { "read_weights", COL_BYTES, IN_ALL, 0 },
    { "read_acts",    COL_BYTES, IN_ALL, 0 },
    { "written",      COL_BYTES, IN_ALL, 0 },
    { "weights_read", COL_INT,   IN_ALL, 0 },
    { "weights",      COL_INT,   IN_ALL, 0 },
    { "coverage",     COL_PCT,   IN_ALL, 0 },
    { "time_us",      COL_TIME,  IN_ALL, 0 },
};
static const char step_stat_sql[] =
    "WITH used AS (SELECT DISTINCT graph_id FROM steps s WHERE " STEPS_WHERE("s") "),"
    " io AS (SELECT graph_id, count(*) AS nodes,"
    "   sum(CASE WHEN is_noop = 0 THEN bytes ELSE 0 END) AS written"
    "   FROM nodes WHERE graph_id IN used GROUP BY graph_id),"
    " rd AS (SELECT ns.graph_id,"
    "   sum(CASE WHEN ns.kind = 'weight' THEN ns.bytes ELSE 0 END) AS weights,"
    "   sum(CASE WHEN ns.kind = 'weight' THEN 0 ELSE ns.bytes END) AS acts"
    "   FROM node_srcs ns JOIN nodes n ON n.graph_id = ns.graph_id AND n.idx = ns.idx"
    "   WHERE ns.graph_id IN used AND n.is_noop = 0 GROUP BY ns.graph_id),"
    " cov AS (SELECT graph_id, count(DISTINCT weight_id) AS n FROM node_srcs"
    "   WHERE graph_id IN used AND kind = 'weight' GROUP BY graph_id),"
    " reg AS (SELECT count(*) AS n FROM weights WHERE run_id = :run)"
    " SELECT s.step, s.phase, s.n_tokens, s.graph_id, io.nodes, coalesce(rd.weights, 0),"
    "  coalesce(rd.acts, 0), io.written, coalesce(cov.n, 0), reg.n,"
    "  100.0 * coalesce(cov.n, 0) / nullif(reg.n, 0), s.t_end_ns - s.t_begin_ns"
    " FROM steps s JOIN reg LEFT JOIN io USING (graph_id) LEFT JOIN rd USING (graph_id)"
    " LEFT JOIN cov USING (graph_id)"
    " WHERE " STEPS_WHERE("s") " ORDER BY s.step";

static const struct col op_cols[] = {
    { "op",      COL_TEXT, IN_ALL, 0 },
    { "nodes",   COL_INT,  IN_ALL, 0 },
    { "time_us", COL_TIME, IN_ALL, HAVE_TIMES  },
    { "share",   COL_PCT,  IN_ALL, HAVE_TIMES  },
};
static const struct col layer_cols[] = {
    { "layer",   COL_INT,  IN_ALL, 0 },
    { "nodes",   COL_INT,  IN_ALL, 0 },
    { "time_us", COL_TIME, IN_ALL, HAVE_TIMES  },
    { "share",   COL_PCT,  IN_ALL, HAVE_TIMES  },
};
// nodes and node time of the selected steps, grouped by a column of nodes
#define NODES_BY(col, order) \
    "SELECT n." col ", count(*), sum(t.t_end_ns - t.t_begin_ns)," \
    " 100.0 * sum(t.t_end_ns - t.t_begin_ns) / sum(sum(t.t_end_ns - t.t_begin_ns)) OVER ()" \
    " FROM steps s JOIN nodes n ON n.graph_id = s.graph_id" \
    " LEFT JOIN node_times t ON t.run_id = s.run_id AND t.step = s.step AND t.idx = n.idx" \
    " WHERE " STEPS_WHERE("s") " GROUP BY n." col " ORDER BY " order

static const struct col graph_cols[] = {
    { "graph",      COL_INT, IN_ALL, 0 },
    { "nodes",      COL_INT, IN_ALL, 0 },
    { "steps",      COL_INT, IN_ALL, 0 },
    { "first_step", COL_INT, IN_ALL, 0 },
};
static const char graph_sql[] =
    "SELECT g.id, g.n_nodes, count(*), min(s.step) FROM steps s JOIN graphs g ON g.id = s.graph_id"
    " WHERE " STEPS_WHERE("s") " GROUP BY g.id ORDER BY g.id";

// steps: how many of the selected steps did not read the weight
static const struct col unread_cols[] = {
    { "id",    COL_INT,   IN_ALL, 0 },
    { "name",  COL_TEXT,  IN_ALL, 0 },
    { "bytes", COL_BYTES, IN_ALL, 0 },
    { "steps", COL_INT,   IN_ALL, 0 },
};
static const char unread_sql[] =
    "WITH used AS (SELECT graph_id, count(*) AS steps FROM steps s WHERE " STEPS_WHERE("s")
    "   GROUP BY graph_id),"
    " rd AS (SELECT DISTINCT graph_id, weight_id FROM node_srcs"
    "   WHERE kind = 'weight' AND graph_id IN (SELECT graph_id FROM used))"
    " SELECT w.id, w.name, w.bytes, sum(u.steps) FROM used u JOIN weights w ON w.run_id = :run"
    " WHERE (u.graph_id, w.id) NOT IN (SELECT graph_id, weight_id FROM rd)"
    " GROUP BY w.id ORDER BY w.id";

#define RUN_SHEET SHEET("run", NULL, true, run_sql, run_cols)

static const struct sheet_def nodes_view[] = {
    RUN_SHEET,
    SHEET("step",  NULL, true,  step_sql, step_cols),
    SHEET("nodes", NULL, false, node_sql, node_cols),
};
static const struct sheet_def stats_view[] = {
    RUN_SHEET,
    SHEET("steps",          "steps",              false, step_stat_sql, step_stat_cols),
    SHEET("ops",            "ops",                false, NODES_BY("op", "3 DESC, 2 DESC, 1"), op_cols),
    SHEET("layers",         "layers",             false, NODES_BY("layer", "1"), layer_cols),
    SHEET("graphs",         "graphs",             false, graph_sql, graph_cols),
    SHEET("unread_weights", "weights never read", false, unread_sql, unread_cols),
};
// dispatch: llt_vec_dot_type(), llt_block_size() and llt_system_info() are this process's
// (add_dispatch_functions): the CPU that reads the trace, said so when it is not the traced one
static const struct col cpu_cols[] = {
    { "cpu_features", COL_TEXT, IN_ALL, 0 },
    { "vec_dot_types", COL_TEXT, IN_ALL, 0 },
};
static const char cpu_sql[] =
    "SELECT trim(replace(replace(system_info, ' = 1', ''), ' |', '')),"
    " CASE WHEN system_info = llt_system_info() THEN 'looked up here, on the same CPU features as the run'"
    " ELSE 'looked up on this machine, whose CPU features differ from the run''s ('"
    "  || trim(replace(replace(llt_system_info(), ' = 1', ''), ' |', '')) || '): the run may have used others' END"
    " FROM runs WHERE id = :run";

static const struct col dispatch_weight_cols[] = {
    { "id",           COL_INT,   IN_ALL,  0 },
    { "name",         COL_TEXT,  IN_ALL,  0 },
    { "type",         COL_TEXT,  IN_ALL,  0 },
    { "shape",        COL_TEXT,  IN_TEXT, 0 },
    { "shape",        COL_JSON,  IN_JSON, 0 },
    { "block",        COL_INT,   IN_ALL,  0 },
    { "bpw",          COL_REAL,  IN_ALL,  0 },
    { "vec_dot_type", COL_TEXT,  IN_ALL,  0 },
    { "buffer",       COL_TEXT,  IN_ALL,  0 },
    { "layer",        COL_INT,   IN_ALL,  0 },
};
// vec_dot_type only for weights that some matrix multiply of the run reads
static const char dispatch_weight_sql[] =
    "WITH w AS ("
    "  SELECT *, " SHAPE_JSON("weights") " AS shape FROM weights"
    "  WHERE run_id = :run AND (:layer IS NULL OR layer = :layer) AND (:name IS NULL OR name GLOB :name)"
    "  ORDER BY id LIMIT coalesce(:limit, -1)),"
    " mm AS (SELECT DISTINCT ns.weight_id FROM node_srcs ns JOIN nodes n ON n.graph_id = ns.graph_id AND n.idx = ns.idx"
    "  WHERE ns.kind = 'weight' AND n.op IN ('MUL_MAT', 'MUL_MAT_ID')"
    "  AND ns.graph_id IN (SELECT graph_id FROM steps WHERE run_id = :run))"
    " SELECT id, name, type, " SHAPE_TEXT("shape") ", shape, llt_block_size(type), bpw,"
    "  CASE WHEN id IN mm THEN llt_vec_dot_type(type) END, buffer, layer"
    " FROM w ORDER BY id";

// a kernel: an op on a weight type in a buffer, on the activations of its vec_dot type
static const struct col kernel_cols[] = {
    { "op",            COL_TEXT, IN_ALL, 0 },
    { "weight_type",   COL_TEXT, IN_ALL, 0 },
    { "vec_dot_type",  COL_TEXT, IN_ALL, 0 },
    { "weight_buffer", COL_TEXT, IN_ALL, 0 },
    { "ran_on",        COL_TEXT, IN_ALL, 0 },
    { "weights",       COL_INT,  IN_ALL, 0 },
    { "calls",         COL_INT,  IN_ALL, 0 },
};
static const char kernel_sql[] =
    "SELECT n.op, w.type, CASE WHEN n.op IN ('MUL_MAT', 'MUL_MAT_ID') THEN llt_vec_dot_type(w.type) END,"
    " w.buffer, n.buffer, count(DISTINCT w.id), count(*)"
    " FROM steps s JOIN node_srcs ns ON ns.graph_id = s.graph_id AND ns.kind = 'weight'"
    " JOIN nodes n ON n.graph_id = ns.graph_id AND n.idx = ns.idx"
    " JOIN weights w ON w.run_id = s.run_id AND w.id = ns.weight_id"
    " WHERE " STEPS_WHERE("s") " GROUP BY 1, 2, 3, 4, 5 ORDER BY 7 DESC, 1, 2";

static const struct col placement_cols[] = {
    { "ran_on", COL_TEXT, IN_ALL, 0 },
    { "calls",  COL_INT,  IN_ALL, 0 },
    { "ops",    COL_TEXT, IN_ALL, 0 },
};
static const char placement_sql[] =
    "SELECT n.buffer, count(*), group_concat(DISTINCT n.op) FROM steps s JOIN nodes n ON n.graph_id = s.graph_id"
    " WHERE " STEPS_WHERE("s") " AND n.is_noop = 0 GROUP BY n.buffer ORDER BY 2 DESC";

static const struct sheet_def dispatch_view[] = {
    RUN_SHEET,
    SHEET("cpu",       NULL,                         true,  cpu_sql, cpu_cols),
    SHEET("weights",   "weights",                    false, dispatch_weight_sql, dispatch_weight_cols),
    SHEET("kernels",   "kernels (calls: node runs)", false, kernel_sql, kernel_cols),
    SHEET("placement", "where the nodes ran",        false, placement_sql, placement_cols),
};

static const struct sheet_def weights_view[] = {
    RUN_SHEET,
    SHEET("weights", NULL, false, weight_sql, weight_cols),
};

#define VIEW(sheets) { sheets, (int) (sizeof(sheets) / sizeof(sheets[0])) }
static const struct {
    const struct sheet_def * sheets;
    int                      n;
} views[] = {
    [VIEW_NODES]   = VIEW(nodes_view),
    [VIEW_STATS]   = VIEW(stats_view),
    [VIEW_WEIGHTS] = VIEW(weights_view),
    [VIEW_DISPATCH] = VIEW(dispatch_view),
};

// ---- reading sheets ----------------------------------------------------------------------

struct cell {
    int     type; // SQLITE_INTEGER, SQLITE_FLOAT, SQLITE_TEXT, SQLITE_BLOB or SQLITE_NULL
    int64_t i;
    double  d;
    char *  s;    // the value as text, NULL for SQLITE_NULL
};

struct sheet {
    const struct sheet_def * def;
    struct cell *            cells; // n_rows * def->n_cols
    size_t                   n_rows;
};

struct show {
    struct show_opts o;
    sqlite3 *        db;
    int64_t          run;
    unsigned         have;  // HAVE_* of the run
};

static int db_error(const struct show * sh) {
    cli_error("trace '%s': %s", sh->o.trace, sqlite3_errmsg(sh->db));
    return CLI_FAIL;
}

static int bind_int(sqlite3_stmt * stmt, const char * param, int64_t v) {
    int i = sqlite3_bind_parameter_index(stmt, param);
    return i == 0 ? SQLITE_OK : sqlite3_bind_int64(stmt, i, v);
}

static int bind_text(sqlite3_stmt * stmt, const char * param, const char * v) {
    int i = sqlite3_bind_parameter_index(stmt, param);
    return i == 0 ? SQLITE_OK : sqlite3_bind_text(stmt, i, v, -1, SQLITE_STATIC);
}

// Binds the options that were given; the others stay NULL, which the queries read as "any".
static int bind_opts(const struct show * sh, sqlite3_stmt * stmt) {
    const struct show_opts * o = &sh->o;
    int rc = bind_int(stmt, ":run", sh->run);
    if (rc == SQLITE_OK && o->has_step)  rc = bind_int(stmt, ":step", o->step);
    if (rc == SQLITE_OK && o->has_layer) rc = bind_int(stmt, ":layer", o->layer);
    if (rc == SQLITE_OK && o->limit)     rc = bind_int(stmt, ":limit", o->limit);
    if (rc == SQLITE_OK && o->op)        rc = bind_text(stmt, ":op", o->op);
    if (rc == SQLITE_OK && o->name)      rc = bind_text(stmt, ":name", o->name);
    return rc;
}

static void sheet_free(struct sheet * s) {
    size_t n = s->def ? s->n_rows * (size_t) s->def->n_cols : 0;
    for (size_t i = 0; i < n; i++) {
        free(s->cells[i].s);
    }
    free(s->cells);
    memset(s, 0, sizeof(*s));
}

static bool cell_read(sqlite3_stmt * stmt, int col, struct cell * c) {
    c->type = sqlite3_column_type(stmt, col);
    c->i    = sqlite3_column_int64(stmt, col);
    c->d    = sqlite3_column_double(stmt, col);
    if (c->type == SQLITE_NULL) return true;
    const unsigned char * text = sqlite3_column_text(stmt, col);
    if (!text) text = (const unsigned char *) ""; // an empty blob, unless memory ran out
    size_t n = (size_t) sqlite3_column_bytes(stmt, col);
    c->s = malloc(n + 1);
    if (!c->s || sqlite3_errcode(sqlite3_db_handle(stmt)) == SQLITE_NOMEM) return false;
    memcpy(c->s, text, n + 1);
    return true;
}

// Runs a sheet's query; every row goes into out. caller frees with sheet_free()
static int sheet_load(const struct show * sh, const struct sheet_def * def, struct sheet * out) {
    sqlite3_stmt * stmt = NULL;
    size_t cap = 0;
    int rc = CLI_OK;
    memset(out, 0, sizeof(*out));
    out->def = def;
    if (sqlite3_prepare_v2(sh->db, def->sql, -1, &stmt, NULL) != SQLITE_OK || bind_opts(sh, stmt) != SQLITE_OK) {
        rc = db_error(sh);
        goto done;
    }
    assert(sqlite3_column_count(stmt) == def->n_cols);
    int step_rc;
    while ((step_rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        if (out->n_rows == cap) {
            cap = cap ? 2 * cap : 64;
            struct cell * cells = realloc(out->cells, cap * (size_t) def->n_cols * sizeof(*cells));
            if (!cells) {
                cli_error("out of memory");
                rc = CLI_FAIL;
                goto done;
            }
            out->cells = cells;
        }
        struct cell * row = out->cells + out->n_rows * (size_t) def->n_cols;
        memset(row, 0, (size_t) def->n_cols * sizeof(*row)); // freeable if a read fails
        out->n_rows++;
        for (int c = 0; c < def->n_cols; c++) {
            if (!cell_read(stmt, c, &row[c])) {
                cli_error("out of memory");
                rc = CLI_FAIL;
                goto done;
            }
        }
    }
    if (step_rc != SQLITE_DONE) rc = db_error(sh);
done:
    sqlite3_finalize(stmt);
    if (rc != CLI_OK) sheet_free(out);
    return rc;
}

// ---- formatting cells --------------------------------------------------------------------

static bool col_shown(const struct col * c, enum show_format format, unsigned have) {
    if (c->needs & ~have) return false;
    if (c->where == IN_TEXT) return format != FORMAT_JSON;
    if (c->where == IN_JSON) return format == FORMAT_JSON;
    return true;
}

static bool col_right_aligned(const struct col * c) {
    return c->kind != COL_TEXT && c->kind != COL_LONG && c->kind != COL_JSON;
}

static bool is_number(const struct cell * v) {
    return v->type == SQLITE_INTEGER || v->type == SQLITE_FLOAT;
}

// display columns of UTF-8 text: continuation bytes take none
static size_t text_width(const char * s) {
    size_t w = 0;
    for (; *s; s++) {
        w += ((unsigned char) *s & 0xC0) != 0x80;
    }
    return w;
}

static void human_bytes(int64_t b, char * buf, size_t size) {
    static const char * units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
    double v = (double) b;
    int u = 0;
    while (v >= 1024 && u < 4) {
        v /= 1024;
        u++;
    }
    if (u == 0) snprintf(buf, size, "%lld B", (long long) b);
    else        snprintf(buf, size, "%.1f %s", v, units[u]);
}

// free text on one short line: control characters escaped, cut at max_width columns
static void one_line(const char * s, size_t max_width, char * buf, size_t size) {
    size_t n = 0, width = 0;
    buf[n++] = '"';
    for (; *s && n + 8 < size; s++) {
        unsigned char ch = (unsigned char) *s;
        if ((ch & 0xC0) != 0x80 && width++ == max_width) {
            n += (size_t) snprintf(buf + n, size - n, "…");
            break;
        }
        if (ch == '\n' || ch == '\t' || ch == '\r') {
            buf[n++] = '\\';
            buf[n++] = ch == '\n' ? 'n' : ch == '\t' ? 't' : 'r';
        } else {
            buf[n++] = ch < 0x20 ? '?' : (char) ch;
        }
    }
    buf[n++] = '"';
    buf[n] = '\0';
}

// A cell as text: for a table (human units, short lines) or exact (csv, json numbers).
// Returns the cell's own text or buf.
static const char * cell_text(const struct col * c, const struct cell * v, bool table, char * buf, size_t size) {
    if (v->type == SQLITE_NULL) return table ? "-" : "";
    if (!is_number(v) && c->kind != COL_LONG) return v->s;
    switch (c->kind) {
        case COL_BYTES:
            if (!table) return v->s;
            human_bytes(v->i, buf, size);
            return buf;
        case COL_TIME:
            snprintf(buf, size, table ? "%.1f" : "%.3f", v->d / 1e3);
            return buf;
        case COL_REAL:
            snprintf(buf, size, table ? "%.2f" : "%.10g", v->d);
            return buf;
        case COL_PCT:
            snprintf(buf, size, table ? "%.1f%%" : "%.10g", v->d);
            return buf;
        case COL_LONG:
            if (!table) return v->s;
            one_line(v->s, 60, buf, size);
            return buf;
        default:
            return v->s;
    }
}

static void json_value(FILE * f, const struct col * c, const struct cell * v) {
    char buf[64];
    if (v->type == SQLITE_NULL)  fputs("null", f);
    else if (c->kind == COL_JSON) fputs(v->s, f);
    else if (is_number(v))        fputs(cell_text(c, v, false, buf, sizeof(buf)), f);
    else                          llt_json_write_string(f, v->s);
}

// ---- printing sheets ---------------------------------------------------------------------

static const struct cell * sheet_row(const struct sheet * s, size_t r) {
    return s->cells + r * (size_t) s->def->n_cols;
}

// a record as one line: "run 1, model tiny, arch llama, ..."; NULL values left out
static void table_record(FILE * f, const struct sheet * s, unsigned have) {
    char buf[512];
    const char * sep = "";
    for (size_t r = 0; r < s->n_rows; r++) {
        const struct cell * row = sheet_row(s, r);
        for (int c = 0; c < s->def->n_cols; c++) {
            const struct col * col = &s->def->cols[c];
            if (!col_shown(col, FORMAT_TABLE, have) || row[c].type == SQLITE_NULL) continue;
            fprintf(f, "%s%s %s", sep, col->name, cell_text(col, &row[c], true, buf, sizeof(buf)));
            sep = ", ";
        }
    }
    fputc('\n', f);
}

static void table_cell(FILE * f, const char * text, size_t width, bool right, bool last) {
    size_t pad = width - text_width(text);
    if (right) fprintf(f, "%*s", (int) pad, "");
    fputs(text, f);
    if (!right && !last) fprintf(f, "%*s", (int) pad, "");
    if (!last) fputs("  ", f);
}

static void table_list(FILE * f, const struct sheet * s, unsigned have) {
    const struct sheet_def * def = s->def;
    char buf[512];
    size_t width[32] = { 0 };
    int last = -1;
    assert(def->n_cols <= 32);
    for (int c = 0; c < def->n_cols; c++) {
        if (!col_shown(&def->cols[c], FORMAT_TABLE, have)) continue;
        width[c] = text_width(def->cols[c].name);
        last = c;
        for (size_t r = 0; r < s->n_rows; r++) {
            size_t w = text_width(cell_text(&def->cols[c], &sheet_row(s, r)[c], true, buf, sizeof(buf)));
            if (w > width[c]) width[c] = w;
        }
    }
    if (s->n_rows == 0) {
        fputs("(none)\n", f);
        return;
    }
    for (int c = 0; c <= last; c++) {
        if (!col_shown(&def->cols[c], FORMAT_TABLE, have)) continue;
        table_cell(f, def->cols[c].name, width[c], col_right_aligned(&def->cols[c]), c == last);
    }
    fputc('\n', f);
    for (size_t r = 0; r < s->n_rows; r++) {
        const struct cell * row = sheet_row(s, r);
        for (int c = 0; c <= last; c++) {
            const struct col * col = &def->cols[c];
            if (!col_shown(col, FORMAT_TABLE, have)) continue;
            table_cell(f, cell_text(col, &row[c], true, buf, sizeof(buf)), width[c], col_right_aligned(col), c == last);
        }
        fputc('\n', f);
    }
}

static void print_table(FILE * f, const struct sheet * sheets, int n, unsigned have) {
    bool after_records = false;
    for (int i = 0; i < n; i++) {
        const struct sheet * s = &sheets[i];
        if (s->def->record) {
            table_record(f, s, have);
            after_records = true;
            continue;
        }
        if (after_records || s->def->title) fputc('\n', f);
        after_records = false;
        if (s->def->title) fprintf(f, "%s\n", s->def->title);
        table_list(f, s, have);
    }
}

static void csv_field(FILE * f, const char * s) {
    if (!strpbrk(s, ",\"\n\r")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"') fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

// csv: the lists only, each with a header row, separated by an empty line
static void print_csv(FILE * f, const struct sheet * sheets, int n, unsigned have) {
    char buf[64];
    bool first = true;
    for (int i = 0; i < n; i++) {
        const struct sheet * s = &sheets[i];
        const struct sheet_def * def = s->def;
        if (def->record) continue;
        if (!first) fputc('\n', f);
        first = false;
        for (size_t r = 0; r <= s->n_rows; r++) {
            const char * sep = "";
            for (int c = 0; c < def->n_cols; c++) {
                const struct col * col = &def->cols[c];
                if (!col_shown(col, FORMAT_CSV, have)) continue;
                fputs(sep, f);
                sep = ",";
                // row 0 is the header
                csv_field(f, r == 0 ? col->name : cell_text(col, &sheet_row(s, r - 1)[c], false, buf, sizeof(buf)));
            }
            fputc('\n', f);
        }
    }
}

static void json_object_row(FILE * f, const struct sheet * s, size_t r, unsigned have) {
    const char * sep = "";
    fputc('{', f);
    for (int c = 0; c < s->def->n_cols; c++) {
        const struct col * col = &s->def->cols[c];
        if (!col_shown(col, FORMAT_JSON, have)) continue;
        fprintf(f, "%s\"%s\": ", sep, col->name);
        json_value(f, col, &sheet_row(s, r)[c]);
        sep = ", ";
    }
    fputc('}', f);
}

// json: one document; records are objects, lists arrays of objects
static void print_json(FILE * f, const struct sheet * sheets, int n, unsigned have) {
    fputs("{", f);
    for (int i = 0; i < n; i++) {
        const struct sheet * s = &sheets[i];
        fprintf(f, "%s\n  \"%s\": ", i ? "," : "", s->def->name);
        if (s->def->record) {
            json_object_row(f, s, 0, have);
            continue;
        }
        fputc('[', f);
        for (size_t r = 0; r < s->n_rows; r++) {
            fputs(r ? ",\n    " : "\n    ", f);
            json_object_row(f, s, r, have);
        }
        fputs(s->n_rows ? "\n  ]" : "]", f);
    }
    fputs("\n}\n", f);
}

// ---- dispatch: how the CPU that reads the trace computes each weight type ----------------

// llt_vec_dot_type(TYPE): the type ggml's CPU backend converts activations to for dot products
// with a weight of TYPE (CPU_REPACK kernels take the same type, interleaved); NULL if unknown
static void sql_vec_dot_type(sqlite3_context * ctx, int argc, sqlite3_value ** argv) {
    const unsigned char * name = sqlite3_value_text(argv[0]);
    const int t = name ? llt_type_from_name((const char *) name) : -1;
    if (t < 0) sqlite3_result_null(ctx);
    else sqlite3_result_text(ctx, ggml_type_name(ggml_get_type_traits_cpu((enum ggml_type) t)->vec_dot_type), -1, SQLITE_STATIC);
}

// llt_block_size(TYPE): elements per block of TYPE; NULL if unknown
static void sql_block_size(sqlite3_context * ctx, int argc, sqlite3_value ** argv) {
    const unsigned char * name = sqlite3_value_text(argv[0]);
    const int t = name ? llt_type_from_name((const char *) name) : -1;
    if (t < 0) sqlite3_result_null(ctx);
    else sqlite3_result_int64(ctx, ggml_blck_size((enum ggml_type) t));
}

// llt_system_info(): llama_print_system_info() of this process, as runs.system_info has it
static void sql_system_info(sqlite3_context * ctx, int argc, sqlite3_value ** argv) {
    sqlite3_result_text(ctx, llama_print_system_info(), -1, SQLITE_TRANSIENT);
}

static int add_dispatch_functions(const struct show * sh) {
    const int flags = SQLITE_UTF8 | SQLITE_DETERMINISTIC;
    if (sqlite3_create_function(sh->db, "llt_vec_dot_type", 1, flags, NULL, sql_vec_dot_type, NULL, NULL) != SQLITE_OK ||
        sqlite3_create_function(sh->db, "llt_block_size", 1, flags, NULL, sql_block_size, NULL, NULL) != SQLITE_OK ||
        sqlite3_create_function(sh->db, "llt_system_info", 0, flags, NULL, sql_system_info, NULL, NULL) != SQLITE_OK) {
        return db_error(sh);
    }
    return CLI_OK;
}

// ---- the command -------------------------------------------------------------------------

// one integer from a query bound with the options; *found: whether it returned a row
static int query_int(const struct show * sh, const char * sql, int64_t * out, bool * found) {
    sqlite3_stmt * stmt = NULL;
    int rc = CLI_OK;
    if (sqlite3_prepare_v2(sh->db, sql, -1, &stmt, NULL) != SQLITE_OK || bind_opts(sh, stmt) != SQLITE_OK) {
        rc = db_error(sh);
        goto done;
    }
    int step_rc = sqlite3_step(stmt);
    *found = step_rc == SQLITE_ROW;
    if (step_rc == SQLITE_ROW)       *out = sqlite3_column_int64(stmt, 0);
    else if (step_rc != SQLITE_DONE) rc = db_error(sh);
done:
    sqlite3_finalize(stmt);
    return rc;
}

// Finds the run and what it holds (times, statistics), and checks the step asked for exists.
static int check_selection(struct show * sh) {
    int64_t v = 0;
    bool found = false;
    int rc = query_int(sh, "SELECT (level IN ('timing', 'profile')) * 1 + (EXISTS (SELECT 1 FROM node_stats"
                           " WHERE run_id = :run)) * 2 FROM runs WHERE id = :run", &v, &found);
    if (rc != CLI_OK) return rc;
    if (!found) {
        cli_error("trace '%s' has no run %lld", sh->o.trace, (long long) sh->run);
        return CLI_FAIL;
    }
    sh->have = (unsigned) v; // HAVE_TIMES | HAVE_STATS
    if (!sh->o.has_step) return CLI_OK;
    rc = query_int(sh, "SELECT 1 FROM steps WHERE run_id = :run AND step = :step", &v, &found);
    if (rc != CLI_OK || found) return rc;
    rc = query_int(sh, "SELECT count(*) FROM steps WHERE run_id = :run", &v, &found);
    if (rc != CLI_OK) return rc;
    cli_error("run %lld of trace '%s' has no step %lld (it has %lld)", (long long) sh->run, sh->o.trace,
              (long long) sh->o.step, (long long) v);
    return CLI_FAIL;
}

int cmd_show(int argc, char ** argv) {
    struct show sh = { 0 };
    if (!parse_opts(argc, argv, &sh.o)) return CLI_USAGE;
    if (sh.o.help) {
        fputs(usage_text, stdout);
        return CLI_OK;
    }
    if (sh.o.view == VIEW_NODES && !sh.o.has_step) {
        sh.o.has_step = true; // the node table shows one step: 0 unless told
    }

    const struct sheet_def * defs = views[sh.o.view].sheets;
    int n_defs = views[sh.o.view].n;
    struct sheet sheets[8] = { 0 };
    assert(n_defs <= 8);

    struct llt_store * st = NULL;
    int rc = CLI_OK;
    if (llt_store_open(sh.o.trace, LLT_STORE_READ, &st) != LLT_OK) {
        cli_error("%s", llt_last_error());
        rc = CLI_FAIL;
        goto done;
    }
    sh.db = llt_store_db(st);
    if (sh.o.view == VIEW_DISPATCH && (rc = add_dispatch_functions(&sh)) != CLI_OK) goto done;
    sh.run = sh.o.run;
    if (sh.run == 0) {
        int last = llt_store_last_run(st);
        if (last < 0) {
            cli_error("%s", llt_last_error());
            rc = CLI_FAIL;
            goto done;
        }
        sh.run = last;
    }
    rc = check_selection(&sh);
    for (int i = 0; i < n_defs && rc == CLI_OK; i++) {
        rc = sheet_load(&sh, &defs[i], &sheets[i]);
    }
    if (rc != CLI_OK) goto done;

    switch (sh.o.format) {
        case FORMAT_TABLE: print_table(stdout, sheets, n_defs, sh.have); break;
        case FORMAT_CSV:   print_csv  (stdout, sheets, n_defs, sh.have); break;
        case FORMAT_JSON:  print_json (stdout, sheets, n_defs, sh.have); break;
    }
    if (fflush(stdout) != 0 || ferror(stdout)) {
        cli_error("cannot write the output: %s", strerror(errno));
        rc = CLI_FAIL;
    }
done:
    for (int i = 0; i < n_defs; i++) {
        sheet_free(&sheets[i]);
    }
    llt_store_close(st);
    return rc;
}
