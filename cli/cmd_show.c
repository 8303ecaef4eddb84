// lltrace show: the runs of a trace, the nodes of a step, the statistics of a run, its weight
// registry, how its weights were dispatched, or the live diffs of a --reference run, as a
// table, CSV or JSON.
//
// A view is a list of sections, each a table the trace layer reads (lltrace/read.h) or a
// figure of the analysis layer (lltrace/analysis.h), rendered by the output engine.
#include "cli.h"
#include "output.h"
#include "lltrace.h"
#include "ggml-cpu.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// ---- options -----------------------------------------------------------------------------

enum show_view { VIEW_NODES, VIEW_STATS, VIEW_WEIGHTS, VIEW_DISPATCH, VIEW_RUNS, VIEW_DIFFS, VIEW_EXPERTS };

struct show_opts {
    const char *    trace;
    int64_t         run;       // 0: the last run
    int64_t         step;      // with has_step
    int64_t         layer;     // with has_layer
    bool            has_step;
    bool            has_layer;
    bool            has_seq;
    int64_t         seq;       // with has_seq
    const char *    op;        // NULL: any op
    const char *    name;      // sqlite GLOB, NULL: any name
    int64_t         limit;     // 0: no limit
    enum show_view  view;
    enum out_format format;
    bool            help;
};

static const char * usage_text =
    "usage: lltrace show TRACE [options]\n"
    "\n"
    "Prints the nodes of one step of a run (default: the last run, step 0).\n"
    "\n"
    "options:\n"
    "  --run ID        the run to show (default: the last one)\n"
    "  --step N        the step to show (default: 0; with --stats: every step)\n"
    "  --seq N         only the steps and tokens of llama.cpp sequence N (lltrace exec)\n"
    "  --layer N       only nodes (or weights) of layer N; -1: outside the blocks\n"
    "  --op OP         only nodes of this op, any case (MUL_MAT, rms_norm)\n"
    "  --name GLOB     only nodes (or weights) whose name matches, case-sensitive: 'Qcur-*', 'blk.0.*'\n"
    "  --limit N       at most N rows\n"
    "  --runs          the runs of the trace: id, start, model, level, status, steps, tokens, name,\n"
    "                  interventions\n"
    "  --stats         per step bytes read and written (cost model), FLOPs, weight coverage;\n"
    "                  nodes and time per op and layer; graphs; weights never read\n"
    "  --weights       the weight registry of the run\n"
    "  --dispatch      per weight: type, block size, bits per weight, the type this CPU converts\n"
    "                  activations to for its dot products, buffer; kernels and where nodes ran\n"
    "  --diffs         the live comparison of a 'run --reference' run, node by node (--step)\n"
    "  --experts       Mixture of Experts: per layer how often each expert was chosen and the\n"
    "                  load imbalance (max / mean); per token the experts and their weights\n"
    "                  (--step, --layer, --seq: one sequence's tokens; --limit: token rows)\n"
    "  --format FMT    table (default), csv or json\n"
    "  -h, --help      this help\n";

// Fills o from argv; false after printing a usage error. Stops at -h/--help.
static bool parse_opts(int argc, char ** argv, struct show_opts * o) {
    int n_views = 0;
    for (int i = 1; i < argc; i++) {
        const char * a = argv[i];
        const char * v = NULL;
        static const struct { const char * flag; enum show_view view; } views[] = {
            { "--stats", VIEW_STATS }, { "--weights", VIEW_WEIGHTS }, { "--dispatch", VIEW_DISPATCH },
            { "--runs", VIEW_RUNS }, { "--diffs", VIEW_DIFFS }, { "--experts", VIEW_EXPERTS },
        };
        bool is_view = false;
        for (size_t k = 0; k < sizeof(views) / sizeof(views[0]); k++) {
            if (strcmp(a, views[k].flag) == 0) {
                o->view = views[k].view;
                n_views++;
                is_view = true;
            }
        }
        if (is_view) continue;
        if (cli_is_help(a)) {
            o->help = true;
            return true;
        } else if (strcmp(a, "--run") == 0) {
            if (!(v = cli_value(argc, argv, &i)) || !cli_parse_int(a, v, 1, INT32_MAX, &o->run)) return false;
        } else if (strcmp(a, "--step") == 0) {
            if (!(v = cli_value(argc, argv, &i)) || !cli_parse_int(a, v, 0, INT32_MAX, &o->step)) return false;
            o->has_step = true;
        } else if (strcmp(a, "--seq") == 0) {
            if (!(v = cli_value(argc, argv, &i)) || !cli_parse_int(a, v, 0, INT32_MAX, &o->seq)) return false;
            o->has_seq = true;
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
            if (!(v = cli_value(argc, argv, &i)) || !out_parse_format(a, v, &o->format)) return false;
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
    if (n_views > 1) {
        cli_error("show: --runs, --stats, --weights, --dispatch, --diffs and --experts are separate views; pick one");
        return false;
    }
    const enum show_view w = o->view;
    if (w == VIEW_DISPATCH && o->op) {
        cli_error("show: --op selects nodes; --dispatch lists weights (--layer, --name, --limit) and kernels (--step)");
        return false;
    }
    if ((w == VIEW_STATS || w == VIEW_RUNS) && (o->has_layer || o->op || o->name || o->limit)) {
        cli_error("show: --layer, --op, --name and --limit select nodes or weights, not --stats or --runs");
        return false;
    }
    if (w == VIEW_EXPERTS && (o->op || o->name)) {
        cli_error("show: --op and --name select nodes; --experts takes --step, --layer and --limit");
        return false;
    }
    if (w == VIEW_RUNS && (o->has_step || o->run)) {
        cli_error("show: --runs lists every run; --run and --step select one");
        return false;
    }
    if (w == VIEW_WEIGHTS && (o->has_step || o->op)) {
        cli_error("show: --step and --op select nodes; the weight registry is the same for every step");
        return false;
    }
    return true;
}

// ---- sections from the trace's tables ----------------------------------------------------

// a column of the output and where its value comes from: the table's column named src
// (a shape: src names ne0 and the three after it); a few are composed (see value_of)
struct col {
    struct out_col out;
    const char *   src;
};

struct show {
    struct show_opts          o;
    struct llt_store *        st;
    struct out *              out;
    struct llt_table_filter   filter;
    struct llt_read_run       run;
};

static int src_index(const struct llt_table_rows * rows, const char * name) {
    for (int32_t c = 0; c < rows->n_cols; c++) {
        if (strcmp(rows->cols[c], name) == 0) return c;
    }
    return -1;
}

static struct out_val from_value(const struct llt_value * v) {
    switch (v->type) {
        case LLT_VALUE_INT:  return out_int(v->i);
        case LLT_VALUE_REAL: return out_real(v->d);
        case LLT_VALUE_TEXT: return out_text(v->s);
        default:             return out_null();
    }
}

// composed values: "?col" a yes/no column (JSON's true and false), flags (view, noop), tokens ("3 prompt + 4 gen"), vec_dot_type, block (elements per block)
static struct out_val value_of(const struct llt_table_rows * rows, const struct llt_value * row, const struct col * c,
                               char * buf, size_t size) {
    if (c->src[0] == '?') {
        const int i = src_index(rows, c->src + 1);
        return i >= 0 && row[i].type == LLT_VALUE_INT ? out_bool(row[i].i != 0) : out_null();
    }
    if (strcmp(c->src, "flags") == 0) {
        const bool view = row[src_index(rows, "is_view")].i, noop = row[src_index(rows, "is_noop")].i;
        const int iv = src_index(rows, "intervened");
        const char * kinds = iv >= 0 && row[iv].type == LLT_VALUE_TEXT ? row[iv].s : NULL;
        snprintf(buf, size, "%s%s%s%s%s%s%s", view ? "view" : "", view && noop ? "," : "", noop ? "noop" : "",
                 kinds && (view || noop) ? "," : "", kinds ? "intervened(" : "", kinds ? kinds : "", kinds ? ")" : "");
        return *buf ? out_text(buf) : out_null();
    }
    if (strcmp(c->src, "tokens") == 0) {
        const struct llt_value * p = &row[src_index(rows, "n_prompt")], * g = &row[src_index(rows, "n_gen")];
        if (p->type != LLT_VALUE_INT || g->type != LLT_VALUE_INT) return out_null();
        snprintf(buf, size, "%lld prompt + %lld gen", (long long) p->i, (long long) g->i);
        return out_text(buf);
    }
    if (strcmp(c->src, "vec_dot_type") == 0) {
        // the type ggml's CPU backend converts activations to for dot products with the weight
        // (CPU_REPACK kernels take the same type, interleaved); only for matrix multiplies:
        // the weights table says whether one reads the weight, the kernels table has the op
        const int i_type = src_index(rows, "weight_type") >= 0 ? src_index(rows, "weight_type") : src_index(rows, "type");
        const int i_mm = src_index(rows, "matmul"), i_op = src_index(rows, "op");
        const char * op = i_op >= 0 && row[i_op].s ? row[i_op].s : "";
        const bool mm = i_mm >= 0 ? row[i_mm].i != 0 : strcmp(op, "MUL_MAT") == 0 || strcmp(op, "MUL_MAT_ID") == 0;
        const int t = mm && row[i_type].s ? llt_type_from_name(row[i_type].s) : -1;
        return t < 0 ? out_null() : out_text(ggml_type_name(ggml_get_type_traits_cpu((enum ggml_type) t)->vec_dot_type));
    }
    if (strcmp(c->src, "block") == 0) {
        const struct llt_value * type = &row[src_index(rows, "type")];
        const int t = type->s ? llt_type_from_name(type->s) : -1;
        return t < 0 ? out_null() : out_int(ggml_blck_size((enum ggml_type) t));
    }
    const int i = src_index(rows, c->src);
    if (i < 0) return out_null();
    if (c->out.kind == OUT_SHAPE) {
        const int64_t ne[4] = { row[i].i, row[i + 1].i, row[i + 2].i, row[i + 3].i };
        return out_shape(ne);
    }
    return from_value(&row[i]);
}

// Reads a table and writes it as a section; *n_rows (if not NULL): the rows it had.
static int write_table(struct show * sh, enum llt_table table, const char * name, const char * title,
                       const struct col * cols, int n_cols, unsigned flags, int64_t * n_rows) {
    struct llt_table_rows * rows = NULL;
    if (llt_read_table(sh->st, table, &sh->filter, &rows) != LLT_OK) {
        cli_error("%s", llt_last_error());
        return CLI_FAIL;
    }
    struct out_col oc[32];
    struct out_val v[32];
    char bufs[32][64];
    for (int c = 0; c < n_cols && c < 32; c++) oc[c] = cols[c].out;
    int rc = out_begin(sh->out, name, title, oc, n_cols, flags);
    for (int64_t r = 0; r < rows->n_rows && rc == CLI_OK; r++) {
        const struct llt_value * row = rows->values + r * rows->n_cols;
        for (int c = 0; c < n_cols && c < 32; c++) v[c] = value_of(rows, row, &cols[c], bufs[c], sizeof(bufs[c]));
        rc = out_row(sh->out, v);
    }
    if (rc == CLI_OK) rc = out_end(sh->out);
    if (n_rows) *n_rows = rows->n_rows;
    llt_table_rows_free(rows);
    return rc;
}


static const struct col run_cols[] = {
    { { "run",        OUT_INT,      OUT_ALL },       "run" },
    { { "model",      OUT_TEXT,     OUT_ALL },       "model" },
    { { "arch",       OUT_TEXT,     OUT_ALL },       "arch" },
    { { "file_type",  OUT_TEXT,     OUT_ALL },       "file_type" },
    { { "level",      OUT_TEXT,     OUT_ALL },       "level" },
    { { "status",     OUT_TEXT,     OUT_ALL },       "status" },
    { { "error",      OUT_LONG,     OUT_ALL },       "error" },
    { { "steps",      OUT_INT,      OUT_ALL },       "steps" },
    { { "tokens",     OUT_TEXT,     OUT_NOT_JSON },  "tokens" },
    { { "n_prompt",   OUT_INT,      OUT_ONLY_JSON }, "n_prompt" },
    { { "n_gen",      OUT_INT,      OUT_ONLY_JSON }, "n_gen" },
    { { "output",     OUT_LONG,     OUT_ALL },       "output" },
    { { "prompt",     OUT_LONG,     OUT_ONLY_JSON }, "prompt" },
    { { "model_path", OUT_TEXT,     OUT_ONLY_JSON }, "model_path" },
    { { "started_at", OUT_TEXT,     OUT_ONLY_JSON }, "started_at" },
    { { "ended_at",   OUT_TEXT,     OUT_ONLY_JSON }, "ended_at" },
    { { "params",     OUT_RAW_JSON, OUT_ONLY_JSON }, "params" },
};

static const struct col runs_cols[] = {
    { { "run",      OUT_INT,  OUT_ALL }, "id" },
    { { "started",  OUT_TEXT, OUT_ALL }, "started_at" },
    { { "model",    OUT_TEXT, OUT_ALL }, "model_name" },
    { { "type",     OUT_TEXT, OUT_ALL }, "file_type" },
    { { "level",    OUT_TEXT, OUT_ALL }, "level" },
    { { "status",   OUT_TEXT, OUT_ALL }, "status" },
    { { "steps",    OUT_INT,  OUT_ALL }, "steps" },
    { { "n_prompt", OUT_INT,  OUT_ALL }, "n_prompt" },
    { { "n_gen",    OUT_INT,  OUT_ALL }, "n_gen" },
    { { "interventions", OUT_INT, OUT_ALL }, "interventions" },
};

static const struct col step_cols[] = {
    { { "step",       OUT_INT,  OUT_ALL }, "step" },
    { { "decode",     OUT_INT,  OUT_ALL }, "decode" },
    { { "phase",      OUT_TEXT, OUT_ALL }, "phase" },
    { { "pos0",       OUT_INT,  OUT_ALL }, "pos0" },
    { { "n_tokens",   OUT_INT,  OUT_ALL }, "n_tokens" },
    { { "graph",      OUT_INT,  OUT_ALL }, "graph" },
    { { "nodes",      OUT_INT,  OUT_ALL }, "nodes" },
    { { "time_us",    OUT_TIME, OUT_ALL }, "time_ns" },
    { { "compute_us", OUT_TIME, OUT_ALL }, "compute_ns" },
};

// the node columns; time and statistics only where the run has them
enum { NODE_TIME = 12, NODE_STATS = 13, NODE_N_STATS = 5 };
static const struct col node_cols[] = {
    { { "idx",     OUT_INT,      OUT_ALL },       "idx" },
    { { "op",      OUT_TEXT,     OUT_ALL },       "op" },
    { { "name",    OUT_TEXT,     OUT_ALL },       "name" },
    { { "layer",   OUT_INT,      OUT_ALL },       "layer" },
    { { "shape",   OUT_SHAPE,    OUT_ALL },       "ne0" },
    { { "type",    OUT_TEXT,     OUT_ALL },       "type" },
    { { "bytes",   OUT_BYTES,    OUT_ALL },       "bytes" },
    { { "flags",   OUT_TEXT,     OUT_NOT_JSON },  "flags" },
    { { "is_view", OUT_TEXT,     OUT_ONLY_JSON }, "?is_view" },
    { { "is_noop", OUT_TEXT,     OUT_ONLY_JSON }, "?is_noop" },
    { { "buffer",  OUT_TEXT,     OUT_ALL },       "buffer" },
    { { "device",  OUT_TEXT,     OUT_ALL },       "device" },
    { { "time_us", OUT_TIME,     OUT_ALL },       "time_ns" },
    { { "min",     OUT_REAL,     OUT_ALL },       "min" },
    { { "max",     OUT_REAL,     OUT_ALL },       "max" },
    { { "mean",    OUT_REAL,     OUT_ALL },       "mean" },
    { { "std",     OUT_REAL,     OUT_ALL },       "std" },
    { { "nan_inf", OUT_INT,      OUT_ALL },       "nan_inf" },
    { { "intervened", OUT_TEXT,  OUT_ONLY_JSON }, "intervened" },
    { { "sources", OUT_TEXT,     OUT_NOT_JSON },  "sources_text" },
    { { "sources", OUT_RAW_JSON, OUT_ONLY_JSON }, "sources_json" },
};

static const struct col weight_cols[] = {
    { { "id",          OUT_INT,   OUT_ALL }, "id" },
    { { "name",        OUT_TEXT,  OUT_ALL }, "name" },
    { { "type",        OUT_TEXT,  OUT_ALL }, "type" },
    { { "shape",       OUT_SHAPE, OUT_ALL }, "ne0" },
    { { "bytes",       OUT_BYTES, OUT_ALL }, "bytes" },
    { { "bpw",         OUT_REAL,  OUT_ALL }, "bpw" },
    { { "layer",       OUT_INT,   OUT_ALL }, "layer" },
    { { "file_offset", OUT_INT,   OUT_ALL }, "file_offset" },
    { { "buffer",      OUT_TEXT,  OUT_ALL }, "buffer" },
};

static const struct col graph_cols[] = {
    { { "graph",      OUT_INT, OUT_ALL }, "graph" },
    { { "nodes",      OUT_INT, OUT_ALL }, "nodes" },
    { { "steps",      OUT_INT, OUT_ALL }, "steps" },
    { { "first_step", OUT_INT, OUT_ALL }, "first_step" },
};

// steps: how many of the selected steps did not read the weight
static const struct col unread_cols[] = {
    { { "id",    OUT_INT,   OUT_ALL }, "id" },
    { { "name",  OUT_TEXT,  OUT_ALL }, "name" },
    { { "bytes", OUT_BYTES, OUT_ALL }, "bytes" },
    { { "steps", OUT_INT,   OUT_ALL }, "steps" },
};

static const struct col diff_cols[] = {
    { { "idx",        OUT_INT,  OUT_ALL }, "idx" },
    { { "name",       OUT_TEXT, OUT_ALL }, "name" },
    { { "op",         OUT_TEXT, OUT_ALL }, "op" },
    { { "layer",      OUT_INT,  OUT_ALL }, "layer" },
    { { "shape_ok",   OUT_TEXT, OUT_ALL }, "?shape_ok" },
    { { "n",          OUT_INT,  OUT_ALL }, "n" },
    { { "max_abs",    OUT_REAL, OUT_ALL }, "max_abs" },
    { { "mean_abs",   OUT_REAL, OUT_ALL }, "mean_abs" },
    { { "max_rel",    OUT_REAL, OUT_ALL }, "max_rel" },
    { { "rmse",       OUT_REAL, OUT_ALL }, "rmse" },
    { { "nmse",       OUT_REAL, OUT_ALL }, "nmse" },
    { { "cosine",     OUT_REAL, OUT_ALL }, "cosine" },
    { { "nonfinite",  OUT_INT,  OUT_ALL }, "nonfinite" },
    { { "ref_nonfinite", OUT_INT, OUT_ALL }, "ref_nonfinite" },
    { { "n_exceed",   OUT_INT,  OUT_ALL }, "n_exceed" },
    { { "within",     OUT_TEXT, OUT_ALL }, "?within" },
};

static const struct col dispatch_weight_cols[] = {
    { { "id",           OUT_INT,   OUT_ALL }, "id" },
    { { "name",         OUT_TEXT,  OUT_ALL }, "name" },
    { { "type",         OUT_TEXT,  OUT_ALL }, "type" },
    { { "shape",        OUT_SHAPE, OUT_ALL }, "ne0" },
    { { "block",        OUT_INT,   OUT_ALL }, "block" },
    { { "bpw",          OUT_REAL,  OUT_ALL }, "bpw" },
    { { "vec_dot_type", OUT_TEXT,  OUT_ALL }, "vec_dot_type" },
    { { "buffer",       OUT_TEXT,  OUT_ALL }, "buffer" },
    { { "layer",        OUT_INT,   OUT_ALL }, "layer" },
};

static const struct col kernel_cols[] = {
    { { "op",            OUT_TEXT, OUT_ALL }, "op" },
    { { "weight_type",   OUT_TEXT, OUT_ALL }, "weight_type" },
    { { "vec_dot_type",  OUT_TEXT, OUT_ALL }, "vec_dot_type" },
    { { "weight_buffer", OUT_TEXT, OUT_ALL }, "weight_buffer" },
    { { "ran_on",        OUT_TEXT, OUT_ALL }, "ran_on" },
    { { "weights",       OUT_INT,  OUT_ALL }, "weights" },
    { { "calls",         OUT_INT,  OUT_ALL }, "calls" },
};

static const struct col placement_cols[] = {
    { { "ran_on", OUT_TEXT, OUT_ALL }, "ran_on" },
    { { "calls",  OUT_INT,  OUT_ALL }, "calls" },
    { { "ops",    OUT_TEXT, OUT_ALL }, "ops" },
};

// ---- the views ---------------------------------------------------------------------------

// a pattern that matched nothing is not an error, but it is said
static void warn_unmatched(const struct show * sh, int64_t n_rows, const char * what) {
    if (n_rows > 0 || (!sh->o.name && !sh->o.op)) return;
    fprintf(stderr, "lltrace: warning: no %s of run %lld matches%s%s%s%s%s\n", what, (long long) sh->run.id,
            sh->o.name ? " --name '" : "", sh->o.name ? sh->o.name : "", sh->o.name ? "'" : "",
            sh->o.op ? " --op " : "", sh->o.op ? sh->o.op : "");
}

static int write_run(struct show * sh) {
    return write_table(sh, LLT_TABLE_RUN, "run", NULL, OUT_COLS(run_cols), OUT_RECORD, NULL);
}

// appends piece to buf as a quoted string, for a line of tokens
static void append_piece(char * buf, size_t size, const char * piece) {
    size_t n = strlen(buf);
    if (n + 4 >= size) return;
    if (n > 0) buf[n++] = ' ';
    buf[n++] = '"';
    for (const char * p = piece; *p && n + 3 < size; p++) {
        if (*p == '"' || *p == '\\') buf[n++] = '\\';
        buf[n++] = *p == '\n' ? 'n' : *p;
    }
    buf[n++] = '"';
    buf[n] = '\0';
}

// which tokens the step fed (in) and which was chosen from its logits (out), as pieces
static int write_tokens(struct show * sh) {
    static const struct out_col cols[] = { { "in", OUT_TEXT, OUT_ALL }, { "out", OUT_TEXT, OUT_ALL } };
    struct llt_table_rows * rows = NULL;
    if (llt_read_table(sh->st, LLT_TABLE_TOKENS, &sh->filter, &rows) != LLT_OK) {
        cli_error("%s", llt_last_error());
        return CLI_FAIL;
    }
    char in[1024] = "", out[256] = "";
    const int i_dir = src_index(rows, "dir"), i_piece = src_index(rows, "piece");
    for (int64_t r = 0; r < rows->n_rows; r++) {
        const struct llt_value * row = rows->values + r * rows->n_cols;
        const bool is_in = strcmp(row[i_dir].s, "in") == 0;
        append_piece(is_in ? in : out, is_in ? sizeof(in) : sizeof(out), row[i_piece].s ? row[i_piece].s : "");
    }
    llt_table_rows_free(rows);
    const struct out_val v[] = { out_text(*in ? in : NULL), out_text(*out ? out : NULL) };
    int rc = out_begin(sh->out, "tokens", NULL, cols, 2, OUT_RECORD);
    if (rc == CLI_OK) rc = out_row(sh->out, v);
    return rc == CLI_OK ? out_end(sh->out) : rc;
}

// the step header, then a line with the tokens it fed and the one chosen after it
static int view_nodes(struct show * sh) {
    int rc = write_run(sh);
    if (rc == CLI_OK) rc = write_table(sh, LLT_TABLE_STEP, "step", NULL, OUT_COLS(step_cols), OUT_RECORD, NULL);
    if (rc == CLI_OK) rc = write_tokens(sh);
    if (rc != CLI_OK) return rc;
    // time and statistics columns only for runs that have them
    struct col cols[sizeof(node_cols) / sizeof(node_cols[0])];
    int n = 0;
    const bool timed = sh->run.n_timed_steps > 0 || strcmp(sh->run.level, "timing") == 0 ||
                       strcmp(sh->run.level, "profile") == 0;
    const bool stats = sh->run.has_stats;
    for (int c = 0; c < (int) (sizeof(node_cols) / sizeof(node_cols[0])); c++) {
        if (c == NODE_TIME && !timed) continue;
        if (c >= NODE_STATS && c < NODE_STATS + NODE_N_STATS && !stats) continue;
        cols[n++] = node_cols[c];
    }
    int64_t n_rows = 0;
    rc = write_table(sh, LLT_TABLE_NODES, "nodes", "nodes", cols, n, 0, &n_rows);
    if (rc == CLI_OK) warn_unmatched(sh, n_rows, "node of the step");
    return rc;
}

static int view_weights(struct show * sh) {
    int64_t n_rows = 0;
    int rc = write_run(sh);
    if (rc == CLI_OK) rc = write_table(sh, LLT_TABLE_WEIGHTS, "weights", NULL, OUT_COLS(weight_cols), 0, &n_rows);
    if (rc == CLI_OK) warn_unmatched(sh, n_rows, "weight");
    return rc;
}

static int view_diffs(struct show * sh) {
    int64_t n_rows = 0;
    int rc = write_run(sh);
    if (rc == CLI_OK) rc = write_table(sh, LLT_TABLE_STEP, "step", NULL, OUT_COLS(step_cols), OUT_RECORD, NULL);
    if (rc == CLI_OK) rc = write_table(sh, LLT_TABLE_DIFFS, "diffs", "diffs against the reference", OUT_COLS(diff_cols), 0, &n_rows);
    if (rc == CLI_OK) warn_unmatched(sh, n_rows, "compared node of the step");
    return rc;
}

// llama_print_system_info()'s "CPU : SSE3 = 1 | AVX = 1 | ..." as "CPU : SSE3 AVX ..."
static void cpu_features(const char * info, char * buf, size_t size) {
    size_t n = 0;
    for (const char * p = info; *p && n + 1 < size; ) {
        if (strncmp(p, " = 1", 4) == 0) { p += 4; continue; }
        if (strncmp(p, " |", 2) == 0)   { p += 2; continue; }
        buf[n++] = *p++;
    }
    while (n > 0 && buf[n - 1] == ' ') n--;
    buf[n] = '\0';
}

// the CPU whose type traits the dispatch view looks up: this one, said so when it is not the run's
static int write_cpu(struct show * sh) {
    struct llt_table_rows * rows = NULL;
    if (llt_read_table(sh->st, LLT_TABLE_RUN, &sh->filter, &rows) != LLT_OK) {
        cli_error("%s", llt_last_error());
        return CLI_FAIL;
    }
    const int i = src_index(rows, "system_info");
    const char * run_info = rows->n_rows && rows->values[i].s ? rows->values[i].s : "";
    const char * here = llama_print_system_info();
    char features[512];
    cpu_features(run_info, features, sizeof(features));
    static const struct out_col cols[] = {
        { "cpu_features", OUT_TEXT, OUT_ALL }, { "vec_dot_types", OUT_TEXT, OUT_ALL },
    };
    const struct out_val v[] = {
        out_text(features),
        out_text(strcmp(run_info, here) == 0 ? "looked up here, on the same CPU features as the run"
                                             : "looked up on this machine, whose CPU features differ from the run's: "
                                               "the run may have used others"),
    };
    int rc = out_begin(sh->out, "cpu", NULL, cols, 2, OUT_RECORD);
    if (rc == CLI_OK) rc = out_row(sh->out, v);
    if (rc == CLI_OK) rc = out_end(sh->out);
    llt_table_rows_free(rows);
    return rc;
}

static int view_dispatch(struct show * sh) {
    int64_t n_rows = 0;
    int rc = write_run(sh);
    if (rc == CLI_OK) rc = write_cpu(sh);
    if (rc == CLI_OK) rc = write_table(sh, LLT_TABLE_MATMUL_WEIGHTS, "weights", "weights", OUT_COLS(dispatch_weight_cols), 0, &n_rows);
    if (rc == CLI_OK) warn_unmatched(sh, n_rows, "weight");
    if (rc == CLI_OK) rc = write_table(sh, LLT_TABLE_KERNELS, "kernels", "kernels (calls: node runs)", OUT_COLS(kernel_cols), 0, NULL);
    if (rc == CLI_OK) rc = write_table(sh, LLT_TABLE_PLACEMENT, "placement", "where the nodes ran", OUT_COLS(placement_cols), 0, NULL);
    return rc;
}

// ---- --stats: where the model ran ---------------------------------------------------------

static const struct col device_cols[] = {
    { { "device",       OUT_TEXT,  OUT_ALL }, "device" },
    { { "calls",        OUT_INT,   OUT_ALL }, "calls" },
    { { "written",      OUT_BYTES, OUT_ALL }, "written" },
    { { "splits",       OUT_INT,   OUT_ALL }, "splits" },
    { { "inputs",       OUT_INT,   OUT_ALL }, "inputs" },
    { { "input_bytes",  OUT_BYTES, OUT_ALL }, "input_bytes" },
    { { "timed_splits", OUT_INT,   OUT_ALL }, "timed_splits" },
    { { "split_us",     OUT_TIME,  OUT_ALL }, "split_ns" },
    { { "inputs_us",    OUT_TIME,  OUT_ALL }, "inputs_ns" },
    { { "timed_nodes",  OUT_INT,   OUT_ALL }, "timed_nodes" },
    { { "node_us",      OUT_TIME,  OUT_ALL }, "node_ns" },
};

static const struct col link_cols[] = {
    { { "from",           OUT_TEXT,  OUT_ALL }, "from_device" },
    { { "to",             OUT_TEXT,  OUT_ALL }, "to_device" },
    { { "copies",         OUT_INT,   OUT_ALL }, "copies" },
    { { "bytes",          OUT_BYTES, OUT_ALL }, "bytes" },
    { { "steps",          OUT_INT,   OUT_ALL }, "steps" },
    { { "bytes_per_step", OUT_BYTES, OUT_ALL }, "bytes_per_step" },
};

static const struct col split_cols[] = {
    { { "step",        OUT_INT,   OUT_ALL }, "step" },
    { { "split",       OUT_INT,   OUT_ALL }, "split" },
    { { "device",      OUT_TEXT,  OUT_ALL }, "device" },
    { { "first",       OUT_INT,   OUT_ALL }, "idx_first" },
    { { "last",        OUT_INT,   OUT_ALL }, "idx_last" },
    { { "nodes",       OUT_INT,   OUT_ALL }, "nodes" },
    { { "inputs",      OUT_INT,   OUT_ALL }, "inputs" },
    { { "input_bytes", OUT_BYTES, OUT_ALL }, "input_bytes" },
    { { "inputs_us",   OUT_TIME,  OUT_ALL }, "inputs_ns" },
    { { "compute_us",  OUT_TIME,  OUT_ALL }, "compute_ns" },
};

// Per device, per link between devices and per split, for a run that computed off the CPU
// (RPC servers, GPUs): nothing for a run on the CPU alone.
static int write_devices(struct show * sh) {
    struct llt_table_rows * rows = NULL;
    if (llt_read_table(sh->st, LLT_TABLE_DEVICES, &sh->filter, &rows) != LLT_OK) {
        cli_error("%s", llt_last_error());
        return CLI_FAIL;
    }
    bool off_cpu = false;
    for (int64_t r = 0; r < rows->n_rows; r++) {
        const char * d = rows->values[r * rows->n_cols].s;
        off_cpu |= d && *d && strcmp(d, "CPU") != 0;
    }
    llt_table_rows_free(rows);
    if (!off_cpu) return CLI_OK;
    int rc = write_table(sh, LLT_TABLE_DEVICES, "devices", "devices (splits: split runs; times: timed splits and nodes)",
                         OUT_COLS(device_cols), 0, NULL);
    if (rc == CLI_OK) rc = write_table(sh, LLT_TABLE_LINKS, "links", "links (the scheduler's input copies between devices)",
                                       OUT_COLS(link_cols), 0, NULL);
    if (rc == CLI_OK) rc = write_table(sh, LLT_TABLE_SPLITS, "splits", "splits", OUT_COLS(split_cols), 0, NULL);
    return rc;
}

// ---- --stats: the analysis layer's figures -----------------------------------------------

static const struct out_col step_stat_cols[] = {
    { "step", OUT_INT, OUT_ALL }, { "phase", OUT_TEXT, OUT_ALL }, { "n_tokens", OUT_INT, OUT_ALL },
    { "graph", OUT_INT, OUT_ALL }, { "nodes", OUT_INT, OUT_ALL }, { "read_weights", OUT_BYTES, OUT_ALL },
    { "read_acts", OUT_BYTES, OUT_ALL }, { "written", OUT_BYTES, OUT_ALL }, { "read_per_token", OUT_BYTES, OUT_ALL },
    { "flops", OUT_COUNT, OUT_ALL }, { "weights_read", OUT_INT, OUT_ALL }, { "weights", OUT_INT, OUT_ALL },
    { "coverage", OUT_PCT, OUT_ALL }, { "time_us", OUT_TIME, OUT_ALL },
};

static const struct out_col group_cols[] = {
    { "op", OUT_TEXT, OUT_ALL }, { "nodes", OUT_INT, OUT_ALL }, { "samples", OUT_INT, OUT_ALL },
    { "time_us", OUT_TIME, OUT_ALL }, { "share", OUT_PCT, OUT_ALL },
};

static int write_groups(struct show * sh, const struct llt_analysis * a, enum llt_analysis_by by) {
    struct llt_analysis_groups gs;
    if (llt_analysis_group(a, by, false, &gs) != LLT_OK) {
        cli_error("%s", llt_last_error());
        return CLI_FAIL;
    }
    struct out_col cols[5];
    memcpy(cols, group_cols, sizeof(cols));
    if (by == LLT_ANALYSIS_BY_LAYER) cols[0].name = "layer";
    const bool timed = llt_analysis_run(a)->samples > 0;
    int rc = out_begin(sh->out, by == LLT_ANALYSIS_BY_LAYER ? "layers" : "ops", by == LLT_ANALYSIS_BY_LAYER ? "layers" : "ops",
                       cols, timed ? 5 : 2, 0);
    for (int32_t i = 0; i < gs.n && rc == CLI_OK; i++) {
        const struct llt_analysis_group * g = &gs.g[i];
        const struct out_val v[] = {
            out_text(g->key), out_int(g->instances), out_int(g->samples),
            // the estimate profile prints (by layer: the measured l_out-to-l_out time)
            g->samples && !isnan(g->est_ns) ? out_real(g->est_ns) : out_null(), g->samples ? out_real(g->share) : out_null(),
        };
        rc = out_row(sh->out, v);
    }
    if (rc == CLI_OK) rc = out_end(sh->out);
    llt_analysis_groups_free(&gs);
    return rc;
}

static int view_stats(struct show * sh) {
    struct llt_analysis_params params = llt_analysis_default_params();
    params.run = sh->run.id;
    params.step = sh->o.has_step ? sh->o.step : -1;
    params.seq = sh->o.has_seq ? (int32_t) sh->o.seq : -1;
    struct llt_analysis * a = NULL;
    if (llt_analysis_load(sh->st, &params, &a) != LLT_OK) {
        cli_error("%s", llt_last_error());
        return CLI_FAIL;
    }
    const struct llt_analysis_run * r = llt_analysis_run(a);
    int rc = write_run(sh);
    if (rc == CLI_OK && r->running) {
        out_note(sh->out, "status running: the figures are those of the %lld steps written so far", (long long) r->n_steps);
    }
    if (rc == CLI_OK && r->values_read && r->n_timed_steps > 0) out_note(sh->out, "note: %s", LLT_VALUES_READ_NOTE);
    if (rc == CLI_OK) rc = out_begin(sh->out, "steps", "steps (bytes and FLOPs: the cost model, docs/trace-format.md)",
                                     step_stat_cols, (int) (sizeof(step_stat_cols) / sizeof(step_stat_cols[0])), 0);
    for (int64_t i = 0; i < llt_analysis_n_steps(a) && rc == CLI_OK; i++) {
        const struct llt_analysis_step * s = llt_analysis_step(a, i);
        const struct out_val v[] = {
            out_int(s->step), out_text(llt_phase_name(s->phase)), out_int(s->n_tokens), out_int(s->graph_id),
            out_int(s->n_nodes), out_int((int64_t) s->bytes_read_weights), out_int((int64_t) s->bytes_read_acts),
            out_int((int64_t) s->bytes_written), isnan(s->bytes_read_per_token) ? out_null() : out_real(s->bytes_read_per_token),
            out_int((int64_t) s->flops), out_int(s->weights_read), out_int(r->n_weights),
            r->n_weights > 0 ? out_real(100.0 * s->weights_read / (double) r->n_weights) : out_null(),
            out_int(s->wall_ns),
        };
        rc = out_row(sh->out, v);
    }
    if (rc == CLI_OK) rc = out_end(sh->out);
    if (rc == CLI_OK) rc = write_groups(sh, a, LLT_ANALYSIS_BY_OP);
    if (rc == CLI_OK) rc = write_groups(sh, a, LLT_ANALYSIS_BY_LAYER);
    if (rc == CLI_OK) rc = write_table(sh, LLT_TABLE_GRAPHS, "graphs", "graphs", OUT_COLS(graph_cols), 0, NULL);
    if (rc == CLI_OK) rc = write_table(sh, LLT_TABLE_UNREAD, "unread_weights", "weights never read", OUT_COLS(unread_cols), 0, NULL);
    if (rc == CLI_OK) rc = write_devices(sh);
    llt_analysis_free(a);
    return rc;
}

// ---- --experts: the analysis layer's routing figures ---------------------------------------

static const struct out_col expert_layer_cols[] = {
    { "layer", OUT_INT, OUT_ALL }, { "experts", OUT_INT, OUT_ALL }, { "used", OUT_INT, OUT_ALL },
    { "tokens", OUT_INT, OUT_ALL }, { "imbalance", OUT_REAL, OUT_ALL }, { "idle", OUT_INT, OUT_ALL },
    { "counts", OUT_LIST, OUT_ALL },
};

static const struct out_col expert_token_cols[] = {
    { "step", OUT_INT, OUT_ALL }, { "seq", OUT_INT, OUT_ALL }, { "pos", OUT_INT, OUT_ALL }, { "piece", OUT_TEXT, OUT_ALL },
    { "layer", OUT_INT, OUT_ALL }, { "experts", OUT_LIST, OUT_ALL }, { "weights", OUT_LIST, OUT_ALL },
};

static int view_experts(struct show * sh) {
    struct llt_experts * e = NULL;
    const int32_t seq = sh->o.has_seq ? (int32_t) sh->o.seq : -1;
    if (llt_experts_load(sh->st, sh->run.id, sh->o.has_step ? sh->o.step : -1, seq, &e) != LLT_OK) {
        cli_error("%s", llt_last_error());
        return CLI_FAIL;
    }
    const bool any_layer = !sh->o.has_layer;
    float * f = NULL;
    int rc = out_begin(sh->out, "layers", "Experts chosen per layer (counts: expert 0, 1, ...)", OUT_COLS(expert_layer_cols), 0);
    for (int32_t i = 0; rc == CLI_OK && i < llt_experts_n_layers(e); i++) {
        const struct llt_experts_layer * l = llt_experts_layer(e, i);
        if (!any_layer && l->layer != sh->o.layer) continue;
        float * nf = realloc(f, ((size_t) l->n_expert + 1) * sizeof(float));
        if (!nf) { rc = CLI_FAIL; cli_error("out of memory"); break; }
        f = nf;
        for (int32_t x = 0; x < l->n_expert; x++) f[x] = (float) l->count[x];
        const struct out_val v[] = { out_int(l->layer), out_int(l->n_expert), out_int(l->n_used), out_int(l->n_tokens),
                                     out_real(l->imbalance), out_int(l->n_idle), out_floats(f, l->n_expert) };
        rc = out_row(sh->out, v);
    }
    if (rc == CLI_OK) rc = out_end(sh->out);
    if (rc == CLI_OK && llt_experts_n_layers(e) == 0) {
        out_note(sh->out, "run %lld has no expert routing: not a Mixture-of-Experts model", (long long) sh->run.id);
    }
    if (rc == CLI_OK) rc = out_begin(sh->out, "tokens", "Experts per token, best first", OUT_COLS(expert_token_cols), 0);
    int64_t n_rows = 0;
    float ids[512];
    for (int64_t i = 0; rc == CLI_OK && i < llt_experts_n_tokens(e) && (!sh->o.limit || n_rows < sh->o.limit); i++) {
        const struct llt_experts_token * t = llt_experts_token(e, i);
        if (!any_layer && t->layer != sh->o.layer) continue;
        const int32_t n = t->n < 512 ? t->n : 512;
        for (int32_t k = 0; k < n; k++) ids[k] = (float) t->expert[k];
        const struct out_val v[] = { out_int(t->step), out_int(t->seq_id), out_int(t->pos), out_text(t->piece), out_int(t->layer),
                                     out_floats(ids, n), out_floats(t->weight, n) };
        rc = out_row(sh->out, v);
        n_rows++;
    }
    if (rc == CLI_OK) rc = out_end(sh->out);
    free(f);
    llt_experts_free(e);
    return rc;
}

// ---- the command -------------------------------------------------------------------------

// Finds the run and checks the step asked for exists; the exit code on failure.
static int check_selection(struct show * sh) {
    if (llt_read_run(sh->st, sh->o.run, &sh->run) != LLT_OK) {
        cli_error("%s", llt_last_error());
        return CLI_USAGE;
    }
    sh->filter.run = sh->run.id;
    // a sequence or step the run does not have is a usage error (one line), not an empty table
    if (llt_read_check_sel(sh->st, sh->run.id, sh->o.has_step ? sh->o.step : -1, sh->o.has_seq ? (int32_t) sh->o.seq : -1) != LLT_OK) {
        cli_error("%s%s", llt_last_error(), strcmp(sh->run.status, "running") == 0 ? " so far: status running" : "");
        return CLI_USAGE;
    }
    return CLI_OK;
}

int cmd_show(int argc, char ** argv) {
    struct show sh = { .filter = llt_table_default_filter() };
    if (!parse_opts(argc, argv, &sh.o)) return CLI_USAGE;
    if (sh.o.help) {
        fputs(usage_text, stdout);
        return CLI_OK;
    }
    const struct show_opts * o = &sh.o;
    if ((o->view == VIEW_NODES || o->view == VIEW_DIFFS) && !o->has_step) {
        sh.o.has_step = true; // the node table shows one step: 0 unless told
    }
    sh.filter.step = o->has_step ? o->step : -1;
    sh.filter.by_seq = o->has_seq;
    sh.filter.seq = (int32_t) o->seq;
    sh.filter.layer = o->has_layer ? o->layer : INT64_MIN;
    sh.filter.op = o->op;
    sh.filter.name = o->name;
    sh.filter.limit = o->limit;

    int rc = CLI_OK;
    if (cli_open_trace(o->trace, LLT_STORE_READ, &sh.st) != LLT_OK) {
        cli_error("%s", llt_last_error());
        return CLI_USAGE;
    }
    if (o->view != VIEW_RUNS) rc = check_selection(&sh);
    if (rc == CLI_OK && !(sh.out = out_open(stdout, o->format))) {
        cli_error("out of memory");
        rc = CLI_FAIL;
    }
    if (rc == CLI_OK) {
        switch (o->view) {
            case VIEW_NODES:    rc = view_nodes(&sh); break;
            case VIEW_STATS:    rc = view_stats(&sh); break;
            case VIEW_WEIGHTS:  rc = view_weights(&sh); break;
            case VIEW_DISPATCH: rc = view_dispatch(&sh); break;
            case VIEW_DIFFS:    rc = view_diffs(&sh); break;
            case VIEW_EXPERTS:  rc = view_experts(&sh); break;
            case VIEW_RUNS:     rc = write_table(&sh, LLT_TABLE_RUNS, "runs", NULL, OUT_COLS(runs_cols), 0, NULL); break;
        }
    }
    if (sh.out) {
        const int close_rc = out_close(sh.out);
        if (rc == CLI_OK) rc = close_rc;
    }
    llt_store_close(sh.st);
    return rc;
}
