// lltrace profile: where the time of a traced run went, per op, layer, phase, step or node,
// prompt and generation apart, with the bytes each node moved and the FLOPs it did.
//
// Node times come from runs traced at level timing (every computing node, every step) or
// profile (a sample of the nodes per step). Every figure says how many (step, node) timings
// stand behind it. A group's time is estimated node by node: the node's mean over the steps
// where it was timed, times the steps that ran it; a node never timed in a phase moves its
// bytes at the GB/s its op achieved in that phase. At level timing the estimate is the plain
// sum.
#include "cli.h"
#include "lltrace.h"

#include <errno.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char * usage_text =
    "usage: lltrace profile TRACE [options]\n"
    "\n"
    "Where the time of a run went, prompt and generation apart, from a trace recorded with\n"
    "--level timing or --level profile.\n"
    "\n"
    "options:\n"
    "  --run ID        the run (default: the last one)\n"
    "  --by VIEW       op (default): time, share, bytes, FLOPs, GB/s and GFLOP/s per op\n"
    "                  layer: per layer, with the l_out-to-l_out time of each layer\n"
    "                  phase: tokenize, embed, layers, logits, sampling and decode overhead\n"
    "                  step: the same per step, with the sum of the node times\n"
    "                  node: the slowest nodes\n"
    "  --top N         op, layer, node: at most N rows per phase (default: all; node: 20)\n"
    "  --format FMT    table (default), csv or json\n"
    "  -h, --help      this help\n";

// ---- options -----------------------------------------------------------------------------

enum prof_view   { BY_OP, BY_LAYER, BY_PHASE, BY_STEP, BY_NODE, BY_COUNT };
enum prof_format { FORMAT_TABLE, FORMAT_CSV, FORMAT_JSON, FORMAT_COUNT };

static const char * view_names[]   = { "op", "layer", "phase", "step", "node" };
static const char * format_names[] = { "table", "csv", "json" };
_Static_assert(sizeof(view_names) / sizeof(view_names[0]) == BY_COUNT, "a name per view");
_Static_assert(sizeof(format_names) / sizeof(format_names[0]) == FORMAT_COUNT, "a name per format");

struct prof_opts {
    const char *     trace;
    int64_t          run;  // 0: the last run
    int64_t          top;  // 0: all rows
    enum prof_view   view;
    enum prof_format format;
};

// returns CLI_OK, or the exit code to leave with (-1: help was printed)
static int parse_opts(int argc, char ** argv, struct prof_opts * o) {
    bool has_top = false;
    for (int i = 1; i < argc; i++) {
        const char * a = argv[i];
        const char * v = NULL;
        int k;
        if (cli_is_help(a)) {
            fputs(usage_text, stdout);
            return -1;
        } else if (strcmp(a, "--run") == 0) {
            if (!(v = cli_value(argc, argv, &i)) || !cli_parse_int(a, v, 1, INT32_MAX, &o->run)) return CLI_USAGE;
        } else if (strcmp(a, "--top") == 0) {
            if (!(v = cli_value(argc, argv, &i)) || !cli_parse_int(a, v, 1, INT32_MAX, &o->top)) return CLI_USAGE;
            has_top = true;
        } else if (strcmp(a, "--by") == 0) {
            if (!(v = cli_value(argc, argv, &i)) || !cli_parse_choice(a, v, view_names, BY_COUNT, &k)) return CLI_USAGE;
            o->view = (enum prof_view) k;
        } else if (strcmp(a, "--format") == 0) {
            if (!(v = cli_value(argc, argv, &i)) || !cli_parse_choice(a, v, format_names, FORMAT_COUNT, &k)) return CLI_USAGE;
            o->format = (enum prof_format) k;
        } else if (a[0] == '-' && a[1] != '\0') {
            cli_error("profile: unknown option '%s' (see 'lltrace profile --help')", a);
            return CLI_USAGE;
        } else if (o->trace) {
            cli_error("profile: unexpected argument '%s' (one TRACE only)", a);
            return CLI_USAGE;
        } else {
            o->trace = a;
        }
    }
    if (!o->trace) {
        cli_error("profile: missing TRACE (see 'lltrace profile --help')");
        return CLI_USAGE;
    }
    if (!has_top && o->view == BY_NODE) o->top = 20;
    return CLI_OK;
}

// ---- the run in memory -------------------------------------------------------------------

enum phase  { PHASE_PROMPT, PHASE_GEN, PHASE_COUNT };
static const char * phase_names[] = { "prompt", "gen" };
_Static_assert(sizeof(phase_names) / sizeof(phase_names[0]) == PHASE_COUNT, "a name per phase");

// where a node sits in the forward pass
enum region { REGION_EMBED, REGION_LAYERS, REGION_LOGITS };

struct node {
    char     op[32];
    char     name[GGML_MAX_NAME];
    int32_t  layer;
    bool     is_noop;
    enum region region;
    struct llt_cost_node in; // shapes and sizes, for the cost
    struct llt_cost cost;
    // per phase: steps that ran the node, (step, node) timings and their sum
    int64_t  instances[PHASE_COUNT];
    int64_t  samples[PHASE_COUNT];
    int64_t  time_ns[PHASE_COUNT];
    double   est_ns[PHASE_COUNT];   // over all its instances; NAN if it cannot be estimated
};

struct graph {
    int64_t   id;
    int32_t   first, n_nodes;  // its nodes: prof.nodes[first .. first + n_nodes)
    int32_t   embed_last;      // idx of the last computing node before layer 0, -1 if none
    int32_t * l_out;           // per layer: idx of its l_out node, -1 if none
};

struct step {
    int64_t    step, n_tokens;
    enum phase phase;
    int32_t    graph;          // index into prof.graphs
    int64_t    t_begin, t_end, compute_begin, compute_end;
    int64_t    t_sample;       // -1: not recorded
    int64_t    node_ns, node_samples;
    int64_t    embed_end;      // end of the graph's embed_last node, -1 if not timed
    int64_t *  l_out_end;      // per layer, -1 if not timed
};

struct prof {
    const struct prof_opts * o;
    sqlite3 *      db;
    int64_t        run;
    int32_t        n_layer;
    char           level[16];
    char           model[128];
    int64_t        t_tokenize; // runs.t_tokenize_ns, -1 if unknown
    struct graph * graphs;
    int32_t        n_graphs;
    struct node *  nodes;
    int32_t        n_nodes;
    struct step *  steps;
    int32_t        n_steps;
    int64_t *      l_out_ends; // n_steps * n_layer
    int32_t *      l_out_idx;  // n_graphs * n_layer
};

// grows *arr (of *cap elements of size elem) to hold need; false when out of memory
static bool grow(void ** arr, int32_t * cap, int32_t need, size_t elem) {
    if (need <= *cap) return true;
    int32_t ncap = *cap ? *cap : 64;
    while (ncap < need) ncap *= 2;
    void * na = realloc(*arr, (size_t) ncap * elem);
    if (!na) return false;
    *arr = na;
    *cap = ncap;
    return true;
}

static void prof_free(struct prof * p) {
    free(p->graphs);
    free(p->nodes);
    free(p->steps);
    free(p->l_out_ends);
    free(p->l_out_idx);
}

static int db_error(const struct prof * p) {
    cli_error("trace '%s': %s", p->o->trace, sqlite3_errmsg(p->db));
    return CLI_FAIL;
}

static int oom(void) {
    cli_error("out of memory");
    return CLI_FAIL;
}

// prepares sql and binds :run
static sqlite3_stmt * prepare(const struct prof * p, const char * sql) {
    sqlite3_stmt * stmt = NULL;
    if (sqlite3_prepare_v2(p->db, sql, -1, &stmt, NULL) != SQLITE_OK) return NULL;
    int i = sqlite3_bind_parameter_index(stmt, ":run");
    if (i > 0 && sqlite3_bind_int64(stmt, i, p->run) != SQLITE_OK) {
        sqlite3_finalize(stmt);
        return NULL;
    }
    return stmt;
}

// a count
static int query_count(const struct prof * p, const char * sql, int64_t * out) {
    sqlite3_stmt * stmt = prepare(p, sql);
    if (!stmt) return db_error(p);
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) *out = sqlite3_column_int64(stmt, 0);
    sqlite3_finalize(stmt);
    return rc == SQLITE_ROW ? CLI_OK : db_error(p);
}

static void copy_text(sqlite3_stmt * stmt, int col, char * buf, size_t size) {
    const unsigned char * t = sqlite3_column_text(stmt, col);
    snprintf(buf, size, "%s", t ? (const char *) t : "");
}

static int load_run(struct prof * p) {
    sqlite3_stmt * stmt = prepare(p, "SELECT level, coalesce(n_layer, 0), coalesce(model_name, '') || ' ' ||"
                                     " coalesce(file_type, ''), coalesce(t_tokenize_ns, -1) FROM runs WHERE id = :run");
    if (!stmt) return db_error(p);
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        copy_text(stmt, 0, p->level, sizeof(p->level));
        p->n_layer = sqlite3_column_int(stmt, 1);
        copy_text(stmt, 2, p->model, sizeof(p->model));
        p->t_tokenize = sqlite3_column_int64(stmt, 3);
    }
    sqlite3_finalize(stmt);
    if (rc == SQLITE_DONE) {
        cli_error("trace '%s' has no run %lld", p->o->trace, (long long) p->run);
        return CLI_FAIL;
    }
    if (rc != SQLITE_ROW) return db_error(p);
    int64_t n_timed = 0;
    if ((rc = query_count(p, "SELECT count(*) FROM steps WHERE run_id = :run AND n_timed > 0", &n_timed)) != CLI_OK) return rc;
    if (n_timed == 0) {
        cli_error("profile: run %lld of trace '%s' has no node times (level %s); re-run with "
                  "'lltrace run --level timing' (every node) or '--level profile' (sampled)",
                  (long long) p->run, p->o->trace, p->level);
        return CLI_FAIL;
    }
    return CLI_OK;
}

static int load_graphs(struct prof * p) {
    int64_t n = 0;
    int rc = query_count(p, "SELECT count(DISTINCT graph_id) FROM steps WHERE run_id = :run", &n);
    if (rc != CLI_OK) return rc;
    p->graphs = calloc((size_t) n + 1, sizeof(*p->graphs));
    p->l_out_idx = malloc(((size_t) n * (size_t) p->n_layer + 1) * sizeof(*p->l_out_idx));
    if (!p->graphs || !p->l_out_idx) return oom();
    for (int64_t i = 0; i < n * p->n_layer; i++) p->l_out_idx[i] = -1;

    // nodes, in graph and execution order
    sqlite3_stmt * stmt = prepare(p,
        "SELECT n.graph_id, n.idx, n.op, n.name, n.layer, n.is_noop, n.ne0, n.ne1, n.ne2, n.ne3, n.bytes"
        " FROM nodes n WHERE n.graph_id IN (SELECT graph_id FROM steps WHERE run_id = :run)"
        " ORDER BY n.graph_id, n.idx");
    if (!stmt) return db_error(p);
    int32_t cap = 0;
    struct graph * g = NULL;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        const int64_t gid = sqlite3_column_int64(stmt, 0);
        const int32_t idx = sqlite3_column_int(stmt, 1);
        if (!g || g->id != gid) {
            if (p->n_graphs == n) break; // a graph written after the count
            g = &p->graphs[p->n_graphs];
            *g = (struct graph) { .id = gid, .first = p->n_nodes, .embed_last = -1,
                                  .l_out = p->l_out_idx + (size_t) p->n_graphs * (size_t) p->n_layer };
            p->n_graphs++;
        }
        if (idx != g->n_nodes) {
            sqlite3_finalize(stmt);
            cli_error("trace '%s': graph %lld has no node %d", p->o->trace, (long long) gid, g->n_nodes);
            return CLI_FAIL;
        }
        if (!grow((void **) &p->nodes, &cap, p->n_nodes + 1, sizeof(*p->nodes))) {
            sqlite3_finalize(stmt);
            return oom();
        }
        struct node * nd = &p->nodes[p->n_nodes++];
        g->n_nodes++;
        memset(nd, 0, sizeof(*nd));
        copy_text(stmt, 2, nd->op, sizeof(nd->op));
        copy_text(stmt, 3, nd->name, sizeof(nd->name));
        nd->layer = sqlite3_column_int(stmt, 4);
        nd->is_noop = sqlite3_column_int(stmt, 5) != 0;
        for (int d = 0; d < 4; d++) nd->in.out.ne[d] = sqlite3_column_int64(stmt, 6 + d);
        nd->in.out.bytes = (uint64_t) sqlite3_column_int64(stmt, 10);
        int l = -1, end = 0;
        if (sscanf(nd->name, "l_out-%d%n", &l, &end) == 1 && nd->name[end] == '\0' && l >= 0 && l < p->n_layer) {
            g->l_out[l] = idx; // llama.cpp's name for a layer's output, cb(cur, "l_out", il)
        }
    }
    sqlite3_finalize(stmt);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return db_error(p);

    // regions: before the first node of a layer, the layers, after the last one
    for (int32_t gi = 0; gi < p->n_graphs; gi++) {
        struct graph * gr = &p->graphs[gi];
        struct node * nodes = p->nodes + gr->first;
        int32_t first = gr->n_nodes, last = -1;
        for (int32_t i = 0; i < gr->n_nodes; i++) {
            if (nodes[i].layer < 0) continue;
            if (first == gr->n_nodes) first = i;
            last = i;
        }
        for (int32_t i = 0; i < gr->n_nodes; i++) {
            nodes[i].region = i < first ? REGION_EMBED : i > last ? REGION_LOGITS : REGION_LAYERS;
            if (i < first && !nodes[i].is_noop) gr->embed_last = i;
        }
    }
    return CLI_OK;
}

static struct graph * find_graph(const struct prof * p, int64_t id, int32_t * index) {
    for (int32_t i = 0; i < p->n_graphs; i++) {
        if (p->graphs[i].id == id) {
            if (index) *index = i;
            return &p->graphs[i];
        }
    }
    return NULL;
}

// the sources' shapes (from the nodes and weights they are) and sizes, then each node's cost
static int load_costs(struct prof * p) {
    sqlite3_stmt * stmt = prepare(p,
        "SELECT ns.graph_id, ns.idx, ns.slot, ns.bytes, coalesce(n2.ne0, w.ne0, 0), coalesce(n2.ne1, w.ne1, 0),"
        " coalesce(n2.ne2, w.ne2, 0), coalesce(n2.ne3, w.ne3, 0)"
        " FROM node_srcs ns"
        " LEFT JOIN nodes n2 ON ns.kind = 'node' AND n2.graph_id = ns.graph_id AND n2.idx = ns.src_idx"
        " LEFT JOIN weights w ON ns.kind = 'weight' AND w.run_id = :run AND w.id = ns.weight_id"
        " WHERE ns.graph_id IN (SELECT graph_id FROM steps WHERE run_id = :run)");
    if (!stmt) return db_error(p);
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        const struct graph * g = find_graph(p, sqlite3_column_int64(stmt, 0), NULL);
        const int32_t idx = sqlite3_column_int(stmt, 1), slot = sqlite3_column_int(stmt, 2);
        if (!g || idx < 0 || idx >= g->n_nodes || slot < 0 || slot >= LLT_COST_MAX_SRC) continue;
        struct llt_cost_node * in = &p->nodes[g->first + idx].in;
        if (slot >= in->n_src) in->n_src = slot + 1;
        in->src[slot].bytes = (uint64_t) sqlite3_column_int64(stmt, 3);
        for (int d = 0; d < 4; d++) in->src[slot].ne[d] = sqlite3_column_int64(stmt, 4 + d);
    }
    sqlite3_finalize(stmt);
    if (rc != SQLITE_DONE) return db_error(p);
    for (int32_t i = 0; i < p->n_nodes; i++) {
        struct node * nd = &p->nodes[i];
        nd->in.op = nd->op; // now that the array no longer moves
        llt_node_cost(&nd->in, &nd->cost);
    }
    return CLI_OK;
}

static int load_steps(struct prof * p) {
    int64_t n = 0;
    int rc = query_count(p, "SELECT count(*) FROM steps WHERE run_id = :run", &n);
    if (rc != CLI_OK) return rc;
    p->steps = calloc((size_t) n + 1, sizeof(*p->steps));
    p->l_out_ends = malloc(((size_t) n * (size_t) p->n_layer + 1) * sizeof(*p->l_out_ends));
    if (!p->steps || !p->l_out_ends) return oom();
    for (int64_t i = 0; i < n * p->n_layer; i++) p->l_out_ends[i] = -1;

    sqlite3_stmt * stmt = prepare(p,
        "SELECT step, phase, graph_id, n_tokens, t_begin_ns, t_end_ns, compute_begin_ns, compute_end_ns,"
        " coalesce(t_sample_ns, -1) FROM steps WHERE run_id = :run ORDER BY step");
    if (!stmt) return db_error(p);
    // steps written after the count are left out: a trace may still be being written
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW && p->n_steps < n) {
        struct step * s = &p->steps[p->n_steps];
        const unsigned char * phase = sqlite3_column_text(stmt, 1);
        if (!find_graph(p, sqlite3_column_int64(stmt, 2), &s->graph)) continue; // a step without its graph
        s->step = sqlite3_column_int64(stmt, 0);
        s->phase = phase && strcmp((const char *) phase, "prompt") == 0 ? PHASE_PROMPT : PHASE_GEN;
        s->n_tokens = sqlite3_column_int64(stmt, 3);
        s->t_begin = sqlite3_column_int64(stmt, 4);
        s->t_end = sqlite3_column_int64(stmt, 5);
        s->compute_begin = sqlite3_column_int64(stmt, 6);
        s->compute_end = sqlite3_column_int64(stmt, 7);
        s->t_sample = sqlite3_column_int64(stmt, 8);
        s->embed_end = -1;
        s->l_out_end = p->l_out_ends + (size_t) p->n_steps * (size_t) p->n_layer;
        const struct graph * g = &p->graphs[s->graph];
        for (int32_t i = 0; i < g->n_nodes; i++) {
            struct node * nd = &p->nodes[g->first + i];
            if (!nd->is_noop) nd->instances[s->phase]++;
        }
        p->n_steps++;
    }
    sqlite3_finalize(stmt);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? CLI_OK : db_error(p);
}

static struct step * find_step(const struct prof * p, int64_t step) {
    int32_t lo = 0, hi = p->n_steps;
    while (lo < hi) {
        int32_t mid = (lo + hi) / 2;
        if (p->steps[mid].step < step) lo = mid + 1;
        else hi = mid;
    }
    return lo < p->n_steps && p->steps[lo].step == step ? &p->steps[lo] : NULL;
}

static int load_times(struct prof * p) {
    sqlite3_stmt * stmt = prepare(p, "SELECT step, idx, t_begin_ns, t_end_ns FROM node_times WHERE run_id = :run");
    if (!stmt) return db_error(p);
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        struct step * s = find_step(p, sqlite3_column_int64(stmt, 0));
        const int64_t idx = sqlite3_column_int64(stmt, 1);
        const int64_t end = sqlite3_column_int64(stmt, 3), ns = end - sqlite3_column_int64(stmt, 2);
        if (!s) continue;
        const struct graph * g = &p->graphs[s->graph];
        if (idx < 0 || idx >= g->n_nodes) continue;
        struct node * nd = &p->nodes[g->first + idx];
        nd->samples[s->phase]++;
        nd->time_ns[s->phase] += ns;
        s->node_ns += ns;
        s->node_samples++;
        if (idx == g->embed_last) s->embed_end = end;
        for (int32_t l = 0; l < p->n_layer; l++) {
            if (g->l_out[l] == idx) s->l_out_end[l] = end;
        }
    }
    sqlite3_finalize(stmt);
    return rc == SQLITE_DONE ? CLI_OK : db_error(p);
}

// ---- per step figures --------------------------------------------------------------------

// the time of layer l in step s: end of its l_out from the end of the one before (layer 0:
// from the end of the last node before it, or the start of compute if that was not timed)
static int64_t layer_gap(const struct prof * p, const struct step * s, int32_t l) {
    if (s->l_out_end[l] < 0) return -1;
    const int64_t from = l > 0 ? s->l_out_end[l - 1] : s->embed_end >= 0 ? s->embed_end : s->compute_begin;
    return from >= 0 ? s->l_out_end[l] - from : -1;
}

enum part { PART_TOKENIZE, PART_EMBED, PART_LAYERS, PART_LOGITS, PART_SAMPLING, PART_OVERHEAD, PART_TOTAL, PART_COUNT };
static const char * part_names[] = { "tokenize", "embed", "layers", "logits", "sampling", "decode overhead", "total" };
_Static_assert(sizeof(part_names) / sizeof(part_names[0]) == PART_COUNT, "a name per part");

// the parts of one step, -1 where unknown; docs/trace-format.md, "Profile"
static void step_parts(const struct prof * p, const struct step * s, int64_t parts[PART_COUNT]) {
    const int64_t last = p->n_layer > 0 ? s->l_out_end[p->n_layer - 1] : -1;
    const int64_t from = s->embed_end >= 0 ? s->embed_end : s->compute_begin;
    // tokenizing the prompt belongs to the first step
    parts[PART_TOKENIZE] = s->step == 0 && p->t_tokenize >= 0 ? p->t_tokenize : -1;
    parts[PART_EMBED]    = s->embed_end >= 0 ? s->embed_end - s->compute_begin : -1;
    parts[PART_LAYERS]   = last >= 0 ? last - from : -1;
    parts[PART_LOGITS]   = last >= 0 ? s->compute_end - last : -1;
    parts[PART_SAMPLING] = s->t_sample;
    parts[PART_OVERHEAD] = (s->t_end - s->t_begin) - (s->compute_end - s->compute_begin);
    parts[PART_TOTAL]    = (s->t_end - s->t_begin) + (s->t_sample > 0 ? s->t_sample : 0) +
                           (parts[PART_TOKENIZE] > 0 ? parts[PART_TOKENIZE] : 0);
}

// ---- groups: per op, layer or node, per phase ---------------------------------------------

struct group {
    enum phase phase;
    char       key[GGML_MAX_NAME]; // op, layer label or node name
    const struct node * node;      // by node: the first node of the group
    int32_t    idx;                // by node: its position in the graph
    int32_t    order;              // by layer: embed, layers, logits
    int64_t    instances, samples;
    double     time_ns, est_ns;           // timed total; estimate over all instances, NAN if unknown
    double     bytes, flops;              // over all instances
    double     bytes_timed, flops_timed;  // over the timed instances: rates
    double     gap_ns;                    // by layer: l_out-to-l_out time
    int64_t    gap_samples;
};

struct groups {
    struct group * g;
    int32_t        n, cap;
};

static struct group * group_find(struct groups * gs, enum phase phase, const char * key, int32_t idx) {
    for (int32_t i = 0; i < gs->n; i++) {
        struct group * g = &gs->g[i];
        if (g->phase == phase && g->idx == idx && strcmp(g->key, key) == 0) return g;
    }
    if (!grow((void **) &gs->g, &gs->cap, gs->n + 1, sizeof(*gs->g))) return NULL;
    struct group * g = &gs->g[gs->n++];
    memset(g, 0, sizeof(*g));
    g->phase = phase;
    g->idx = idx;
    snprintf(g->key, sizeof(g->key), "%s", key);
    return g;
}

// the layer label of a node and its place in the layer table
static void layer_key(const struct node * nd, int32_t n_layer, char * key, size_t size, int32_t * order) {
    if (nd->region == REGION_LAYERS && nd->layer >= 0) {
        snprintf(key, size, "%d", nd->layer);
        *order = nd->layer + 1;
    } else {
        snprintf(key, size, "%s", nd->region == REGION_EMBED ? "embed" : nd->region == REGION_LOGITS ? "logits" : "other");
        *order = nd->region == REGION_EMBED ? 0 : n_layer + 1 + (nd->region == REGION_LAYERS);
    }
}

// the l_out-to-l_out time of every layer, and the embed and logits parts around them
static int add_layer_gaps(const struct prof * p, struct groups * gs) {
    for (int32_t si = 0; si < p->n_steps; si++) {
        const struct step * s = &p->steps[si];
        int64_t parts[PART_COUNT];
        step_parts(p, s, parts);
        for (int32_t l = -1; l <= p->n_layer; l++) {
            const int64_t gap = l < 0 ? parts[PART_EMBED] : l == p->n_layer ? parts[PART_LOGITS] : layer_gap(p, s, l);
            if (gap < 0) continue;
            char key[16];
            snprintf(key, sizeof(key), l < 0 ? "embed" : l == p->n_layer ? "logits" : "%d", l);
            struct group * g = group_find(gs, s->phase, key, 0);
            if (!g) return oom();
            g->order = l + 1;
            g->gap_ns += (double) gap;
            g->gap_samples++;
        }
    }
    return CLI_OK;
}

static int build_groups(const struct prof * p, enum prof_view view, struct groups * gs) {
    for (int32_t gi = 0; gi < p->n_graphs; gi++) {
        const struct graph * gr = &p->graphs[gi];
        for (int32_t i = 0; i < gr->n_nodes; i++) {
            const struct node * nd = &p->nodes[gr->first + i];
            if (nd->is_noop) continue;
            for (int ph = 0; ph < PHASE_COUNT; ph++) {
                if (nd->instances[ph] == 0) continue;
                char key[GGML_MAX_NAME];
                int32_t order = 0;
                if (view == BY_LAYER)     layer_key(nd, p->n_layer, key, sizeof(key), &order);
                else if (view == BY_NODE) snprintf(key, sizeof(key), "%s", nd->name);
                else                      snprintf(key, sizeof(key), "%s", nd->op);
                struct group * g = group_find(gs, (enum phase) ph, key, view == BY_NODE ? i : 0);
                if (!g) return oom();
                if (!g->node) g->node = nd;
                g->order = order;
                const double inst = (double) nd->instances[ph], smp = (double) nd->samples[ph];
                const double bytes = (double) (nd->cost.bytes_read + nd->cost.bytes_written);
                g->instances += nd->instances[ph];
                g->samples += nd->samples[ph];
                g->time_ns += (double) nd->time_ns[ph];
                g->bytes += inst * bytes;
                g->flops += inst * (double) nd->cost.flops;
                g->bytes_timed += smp * bytes;
                g->flops_timed += smp * (double) nd->cost.flops;
                g->est_ns += nd->est_ns[ph];
            }
        }
    }
    return view == BY_LAYER ? add_layer_gaps(p, gs) : CLI_OK;
}

// each node's time over all its instances: its mean where it was timed, else its bytes at
// the GB/s of its op in the phase
static int estimate_nodes(struct prof * p) {
    struct groups ops = { 0 };
    int rc = build_groups(p, BY_OP, &ops);
    for (int32_t i = 0; rc == CLI_OK && i < p->n_nodes; i++) {
        struct node * nd = &p->nodes[i];
        for (int ph = 0; ph < PHASE_COUNT; ph++) {
            const double inst = (double) nd->instances[ph];
            if (nd->samples[ph] > 0) {
                nd->est_ns[ph] = (double) nd->time_ns[ph] / (double) nd->samples[ph] * inst;
                continue;
            }
            const struct group * op = nd->is_noop || inst == 0 ? NULL : group_find(&ops, (enum phase) ph, nd->op, 0);
            const double bytes = (double) (nd->cost.bytes_read + nd->cost.bytes_written);
            nd->est_ns[ph] = op && op->bytes_timed > 0 ? inst * bytes * op->time_ns / op->bytes_timed : inst > 0 ? NAN : 0;
        }
    }
    free(ops.g);
    return rc;
}

static int by_estimate(const void * a, const void * b) {
    const struct group * x = a, * y = b;
    if (x->phase != y->phase) return x->phase < y->phase ? -1 : 1;
    const double ex = isnan(x->est_ns) ? -1 : x->est_ns, ey = isnan(y->est_ns) ? -1 : y->est_ns;
    if (ex != ey) return ex > ey ? -1 : 1;
    return x->idx - y->idx;
}

static int by_order(const void * a, const void * b) {
    const struct group * x = a, * y = b;
    if (x->phase != y->phase) return x->phase < y->phase ? -1 : 1;
    return x->order - y->order;
}

// ---- tables ------------------------------------------------------------------------------

enum col_kind {
    COL_TEXT,
    COL_INT,
    COL_TIME,  // nanoseconds, printed as microseconds
    COL_PCT,
    COL_RATE,  // GB/s, GFLOP/s
    COL_BIG,   // bytes, FLOPs: k, M, G in a table, exact elsewhere
};

struct col {
    const char *  name;
    enum col_kind kind;
};

struct cell {
    double v;  // NAN: no value
    char   s[GGML_MAX_NAME];
};

struct table {
    const struct col * cols;
    int                n_cols;
    bool               by_phase; // column 0 is the phase: a section per phase in a table
    struct cell *      cells;
    int32_t            n_rows, cap;
};

#define TABLE(cols, by_phase) { cols, (int) (sizeof(cols) / sizeof(cols[0])), by_phase, NULL, 0, 0 }

static const struct cell * table_cells(const struct table * t, int32_t r) {
    return t->cells + (size_t) r * (size_t) t->n_cols;
}

// a new row, every value NAN and every text empty; NULL when out of memory
static struct cell * table_row(struct table * t) {
    if (!grow((void **) &t->cells, &t->cap, (t->n_rows + 1) * t->n_cols, sizeof(*t->cells))) return NULL;
    struct cell * row = t->cells + (size_t) t->n_rows++ * (size_t) t->n_cols;
    for (int c = 0; c < t->n_cols; c++) row[c] = (struct cell) { .v = NAN };
    return row;
}

static void set_text(struct cell * c, const char * s) {
    snprintf(c->s, sizeof(c->s), "%s", s);
}

static double ratio(double num, double den) {
    return den > 0 ? num / den : NAN;
}

static double known(int64_t v) {
    return v >= 0 ? (double) v : NAN;
}

static void format_cell(const struct col * col, const struct cell * c, bool table, char * buf, size_t size) {
    if (col->kind == COL_TEXT) {
        snprintf(buf, size, "%s", c->s);
    } else if (isnan(c->v)) {
        snprintf(buf, size, "%s", table ? "-" : "");
    } else if (col->kind == COL_INT) {
        snprintf(buf, size, "%.0f", c->v);
    } else if (col->kind == COL_TIME) {
        snprintf(buf, size, table ? "%.1f" : "%.3f", c->v / 1e3);
    } else if (col->kind == COL_PCT) {
        snprintf(buf, size, table ? "%.1f%%" : "%.4f", c->v);
    } else if (col->kind == COL_RATE) {
        snprintf(buf, size, table ? "%.2f" : "%.6g", c->v);
    } else {
        static const char * units[] = { "", "k", "M", "G", "T", "P" };
        double v = c->v;
        int u = 0;
        while (table && v >= 1000 && u < 5) {
            v /= 1000;
            u++;
        }
        snprintf(buf, size, u ? "%.1f %s" : "%.0f", v, units[u]);
    }
}

// the rows of one phase (all rows if phase is NULL), from column first_col on
static void print_rows(const struct table * t, int first_col, const char * phase) {
    char buf[128];
    int width[16] = { 0 };
    for (int c = first_col; c < t->n_cols; c++) {
        width[c] = (int) strlen(t->cols[c].name);
        for (int32_t r = 0; r < t->n_rows; r++) {
            if (phase && strcmp(table_cells(t, r)[0].s, phase) != 0) continue;
            format_cell(&t->cols[c], &table_cells(t, r)[c], true, buf, sizeof(buf));
            if ((int) strlen(buf) > width[c]) width[c] = (int) strlen(buf);
        }
    }
    for (int32_t r = -1; r < t->n_rows; r++) { // row -1: the header
        if (r >= 0 && phase && strcmp(table_cells(t, r)[0].s, phase) != 0) continue;
        for (int c = first_col; c < t->n_cols; c++) {
            const char * text = t->cols[c].name;
            if (r >= 0) {
                format_cell(&t->cols[c], &table_cells(t, r)[c], true, buf, sizeof(buf));
                text = buf;
            }
            const bool last = c + 1 == t->n_cols;
            if (t->cols[c].kind == COL_TEXT) printf("%-*s", last ? 0 : width[c], text);
            else                             printf("%*s", width[c], text);
            fputs(last ? "\n" : "  ", stdout);
        }
    }
}

static void print_table(const struct table * t) {
    if (!t->by_phase) {
        print_rows(t, 0, NULL);
        return;
    }
    for (int ph = 0; ph < PHASE_COUNT; ph++) {
        bool any = false;
        for (int32_t r = 0; r < t->n_rows; r++) any = any || strcmp(table_cells(t, r)[0].s, phase_names[ph]) == 0;
        if (!any) continue;
        printf("\n%s\n", phase_names[ph]);
        print_rows(t, 1, phase_names[ph]);
    }
}

static void csv_field(const char * s) {
    if (!strpbrk(s, ",\"\n\r")) {
        fputs(s, stdout);
        return;
    }
    putchar('"');
    for (; *s; s++) {
        if (*s == '"') putchar('"');
        putchar(*s);
    }
    putchar('"');
}

static void print_csv(const struct table * t) {
    char buf[128];
    for (int32_t r = -1; r < t->n_rows; r++) { // row -1: the header
        for (int c = 0; c < t->n_cols; c++) {
            if (c) putchar(',');
            if (r < 0) {
                csv_field(t->cols[c].name);
                continue;
            }
            format_cell(&t->cols[c], &table_cells(t, r)[c], false, buf, sizeof(buf));
            csv_field(buf);
        }
        putchar('\n');
    }
}

static void print_json(const struct prof * p, const struct table * t) {
    char buf[128];
    printf("{\"trace\": ");
    llt_json_write_string(stdout, p->o->trace);
    printf(", \"run\": %lld, \"level\": ", (long long) p->run);
    llt_json_write_string(stdout, p->level);
    printf(", \"by\": \"%s\",\n \"rows\": [", view_names[p->o->view]);
    for (int32_t r = 0; r < t->n_rows; r++) {
        printf("%s\n  {", r ? "," : "");
        for (int c = 0; c < t->n_cols; c++) {
            const struct cell * cell = &table_cells(t, r)[c];
            printf("%s\"%s\": ", c ? ", " : "", t->cols[c].name);
            if (t->cols[c].kind == COL_TEXT) {
                llt_json_write_string(stdout, cell->s);
            } else if (isnan(cell->v)) {
                fputs("null", stdout);
            } else {
                format_cell(&t->cols[c], cell, false, buf, sizeof(buf));
                fputs(buf, stdout);
            }
        }
        putchar('}');
    }
    printf("\n]}\n");
}

// ---- the views ---------------------------------------------------------------------------

static const struct col op_cols[] = {
    { "phase", COL_TEXT }, { "op", COL_TEXT }, { "time_us", COL_TIME }, { "share", COL_PCT },
    { "nodes", COL_INT }, { "samples", COL_INT }, { "mean_us", COL_TIME }, { "bytes", COL_BIG },
    { "flops", COL_BIG }, { "GB/s", COL_RATE }, { "GFLOP/s", COL_RATE },
};
static const struct col layer_cols[] = {
    { "phase", COL_TEXT }, { "layer", COL_TEXT }, { "time_us", COL_TIME }, { "share", COL_PCT },
    { "nodes", COL_INT }, { "samples", COL_INT }, { "l_out_gap_us", COL_TIME }, { "gap_samples", COL_INT },
    { "bytes", COL_BIG }, { "flops", COL_BIG }, { "GB/s", COL_RATE }, { "GFLOP/s", COL_RATE },
};
static const struct col node_cols[] = {
    { "phase", COL_TEXT }, { "idx", COL_INT }, { "name", COL_TEXT }, { "op", COL_TEXT },
    { "layer", COL_INT }, { "time_us", COL_TIME }, { "share", COL_PCT }, { "samples", COL_INT },
    { "mean_us", COL_TIME }, { "bytes", COL_BIG }, { "flops", COL_BIG }, { "GB/s", COL_RATE },
    { "GFLOP/s", COL_RATE },
};
static const struct col phase_cols[] = {
    { "phase", COL_TEXT }, { "part", COL_TEXT }, { "time_us", COL_TIME }, { "per_token_us", COL_TIME },
    { "share", COL_PCT }, { "steps", COL_INT },
};
static const struct col step_cols[] = {
    { "step", COL_INT }, { "phase", COL_TEXT }, { "tokens", COL_INT }, { "wall_us", COL_TIME },
    { "compute_us", COL_TIME }, { "nodes_us", COL_TIME }, { "samples", COL_INT }, { "embed_us", COL_TIME },
    { "layers_us", COL_TIME }, { "logits_us", COL_TIME }, { "sampling_us", COL_TIME }, { "overhead_us", COL_TIME },
};

// op, layer and node tables from the groups
static int fill_groups(const struct prof * p, struct table * t) {
    const enum prof_view view = p->o->view;
    struct groups gs = { 0 };
    int rc = build_groups(p, view, &gs);
    if (rc != CLI_OK) goto done;
    qsort(gs.g, (size_t) gs.n, sizeof(*gs.g), view == BY_LAYER ? by_order : by_estimate);
    double phase_total[PHASE_COUNT] = { 0 };
    for (int32_t i = 0; i < gs.n; i++) {
        if (!isnan(gs.g[i].est_ns)) phase_total[gs.g[i].phase] += gs.g[i].est_ns;
    }
    int64_t shown[PHASE_COUNT] = { 0 };
    for (int32_t i = 0; i < gs.n; i++) {
        const struct group * g = &gs.g[i];
        if (p->o->top && shown[g->phase]++ >= p->o->top) continue;
        struct cell * row = table_row(t);
        if (!row) {
            rc = oom();
            goto done;
        }
        int c = 0;
        set_text(&row[c++], phase_names[g->phase]);
        if (view == BY_NODE) {
            row[c++].v = g->idx;
            set_text(&row[c++], g->node->name);
            set_text(&row[c++], g->node->op);
            row[c++].v = g->node->layer;
        } else {
            set_text(&row[c++], g->key);
        }
        row[c++].v = g->est_ns;
        row[c++].v = 100.0 * ratio(g->est_ns, phase_total[g->phase]);
        if (view != BY_NODE) row[c++].v = (double) g->instances;
        row[c++].v = (double) g->samples;
        if (view == BY_LAYER) {
            row[c++].v = g->gap_samples ? g->gap_ns : NAN;
            row[c++].v = (double) g->gap_samples;
        } else {
            row[c++].v = ratio(g->time_ns, (double) g->samples);
        }
        // by node: per call; else over all instances
        const double per = view == BY_NODE ? (double) g->instances : 1;
        row[c++].v = g->bytes / per;
        row[c++].v = g->flops / per;
        row[c++].v = ratio(g->bytes_timed, g->time_ns);
        row[c++].v = ratio(g->flops_timed, g->time_ns);
    }
done:
    free(gs.g);
    return rc;
}

static int fill_phases(const struct prof * p, struct table * t) {
    for (int ph = 0; ph < PHASE_COUNT; ph++) {
        int64_t time[PART_COUNT] = { 0 }, tokens[PART_COUNT] = { 0 }, steps[PART_COUNT] = { 0 };
        for (int32_t si = 0; si < p->n_steps; si++) {
            const struct step * s = &p->steps[si];
            if (s->phase != (enum phase) ph) continue;
            int64_t parts[PART_COUNT];
            step_parts(p, s, parts);
            for (int k = 0; k < PART_COUNT; k++) {
                if (parts[k] < 0) continue;
                time[k] += parts[k];
                tokens[k] += s->n_tokens;
                steps[k]++;
            }
        }
        if (steps[PART_TOTAL] == 0) continue;
        for (int k = 0; k < PART_COUNT; k++) {
            struct cell * row = table_row(t);
            if (!row) return oom();
            set_text(&row[0], phase_names[ph]);
            set_text(&row[1], part_names[k]);
            if (steps[k] == 0) continue;
            row[2].v = (double) time[k];
            row[3].v = ratio((double) time[k], (double) tokens[k]);
            row[4].v = 100.0 * ratio((double) time[k], (double) time[PART_TOTAL]);
            row[5].v = (double) steps[k];
        }
    }
    return CLI_OK;
}

static int fill_steps(const struct prof * p, struct table * t) {
    for (int32_t si = 0; si < p->n_steps; si++) {
        const struct step * s = &p->steps[si];
        struct cell * row = table_row(t);
        if (!row) return oom();
        int64_t parts[PART_COUNT];
        step_parts(p, s, parts);
        row[0].v = (double) s->step;
        set_text(&row[1], phase_names[s->phase]);
        row[2].v = (double) s->n_tokens;
        row[3].v = (double) (s->t_end - s->t_begin);
        row[4].v = (double) (s->compute_end - s->compute_begin);
        row[5].v = (double) s->node_ns;
        row[6].v = (double) s->node_samples;
        row[7].v = known(parts[PART_EMBED]);
        row[8].v = known(parts[PART_LAYERS]);
        row[9].v = known(parts[PART_LOGITS]);
        row[10].v = known(parts[PART_SAMPLING]);
        row[11].v = known(parts[PART_OVERHEAD]);
    }
    return CLI_OK;
}

// ---- the command -------------------------------------------------------------------------

static void print_header(const struct prof * p) {
    int64_t samples = 0, instances = 0;
    for (int32_t i = 0; i < p->n_nodes; i++) {
        for (int ph = 0; ph < PHASE_COUNT; ph++) {
            samples += p->nodes[i].samples[ph];
            instances += p->nodes[i].instances[ph];
        }
    }
    printf("run %lld (%s), level %s: %d steps, %lld node timings of %lld computing nodes run (%.1f%%)\n",
           (long long) p->run, p->model, p->level, p->n_steps, (long long) samples, (long long) instances,
           100.0 * ratio((double) samples, (double) instances));
    if (samples < instances) {
        printf("sampled: times are estimated from the timed nodes; 'samples' counts the timings behind each figure\n");
    }
    // a MUL the CPU backend computed in the pass of the RMS_NORM before it has a zero-length
    // time; counted in the graph that has most of them (the graphs of a run repeat them)
    int32_t fused = 0;
    for (int32_t gi = 0; gi < p->n_graphs; gi++) {
        const struct graph * g = &p->graphs[gi];
        int32_t n_fused = 0;
        for (int32_t i = g->first + 1; i < g->first + g->n_nodes; i++) {
            const struct node * nd = &p->nodes[i];
            int64_t n = 0, ns = 0;
            for (int ph = 0; ph < PHASE_COUNT; ph++) { n += nd->samples[ph]; ns += nd->time_ns[ph]; }
            n_fused += n > 0 && ns == 0 && strcmp(nd->op, "MUL") == 0 && strcmp(p->nodes[i - 1].op, "RMS_NORM") == 0;
        }
        if (n_fused > fused) fused = n_fused;
    }
    if (fused > 0) {
        printf("fused: %d MUL node(s) per step computed in one pass with the RMS_NORM before them; the norm's time is the pair's\n", fused);
    }
}

int cmd_profile(int argc, char ** argv) {
    struct prof_opts o = { 0 };
    int rc = parse_opts(argc, argv, &o);
    if (rc != CLI_OK) return rc < 0 ? CLI_OK : rc;

    struct prof p = { .o = &o };
    struct llt_store * st = NULL;
    struct table tables[BY_COUNT] = {
        [BY_OP] = TABLE(op_cols, true), [BY_LAYER] = TABLE(layer_cols, true), [BY_PHASE] = TABLE(phase_cols, true),
        [BY_STEP] = TABLE(step_cols, false), [BY_NODE] = TABLE(node_cols, true),
    };
    struct table * t = &tables[o.view];
    if (llt_store_open(o.trace, LLT_STORE_READ, &st) != LLT_OK) {
        cli_error("%s", llt_last_error());
        rc = CLI_FAIL;
        goto done;
    }
    p.db = llt_store_db(st);
    p.run = o.run;
    if (p.run == 0 && (p.run = llt_store_last_run(st)) < 0) {
        cli_error("%s", llt_last_error());
        rc = CLI_FAIL;
        goto done;
    }
    rc = load_run(&p);
    if (rc == CLI_OK) rc = load_graphs(&p);
    if (rc == CLI_OK) rc = load_costs(&p);
    if (rc == CLI_OK) rc = load_steps(&p);
    if (rc == CLI_OK) rc = load_times(&p);
    if (rc == CLI_OK) rc = estimate_nodes(&p);
    if (rc == CLI_OK) {
        rc = o.view == BY_PHASE ? fill_phases(&p, t) : o.view == BY_STEP ? fill_steps(&p, t) : fill_groups(&p, t);
    }
    if (rc != CLI_OK) goto done;
    switch (o.format) {
        case FORMAT_TABLE:
            print_header(&p);
            print_table(t);
            break;
        case FORMAT_CSV:  print_csv(t); break;
        case FORMAT_JSON: print_json(&p, t); break;
        case FORMAT_COUNT: break;
    }
    if (fflush(stdout) != 0 || ferror(stdout)) {
        cli_error("cannot write the output: %s", strerror(errno));
        rc = CLI_FAIL;
    }
done:
    free(t->cells);
    prof_free(&p);
    llt_store_close(st);
    return rc;
}
