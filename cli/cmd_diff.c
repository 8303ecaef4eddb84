// lltrace diff: compares two tensor sets (GGUF dumps or models, safetensors files, .npy
// directories) tensor by tensor after dequantization, and prints the metrics per tensor, per
// layer, per weight kind (--weights) and a summary.
// Exit status: 0 all within tolerance, 1 some tensor exceeds it (or shapes differ, or a
// tensor is on one side only), 2 bad usage or unreadable input.
#include "cli.h"
#include "output.h"
#include "lltrace.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// ---- options -----------------------------------------------------------------------------

#define MAX_MAP_VARS 8

struct diff_opts {
    const char * a, * b;
    const char * map;
    const char * map_vars[MAX_MAP_VARS]; // NAME=VALUE
    int          n_map_vars;
    struct llt_diff_params p;
    enum out_format format;
    bool         weights;
};

static const char * usage_text =
    "usage: lltrace diff A B [options]\n"
    "\n"
    "Compares the tensors of B with those of A (the reference), matched by name, after\n"
    "dequantization. A and B are GGUF files (lltrace dumps or models), safetensors files or\n"
    "directories of .npy files, in any combination.\n"
    "\n"
    "options:\n"
    "  --weights            A and B are models: compare their weights, summarised per weight kind\n"
    "  --tolerance-abs X    absolute tolerance (default 1e-6)\n"
    "  --tolerance-rel Y    relative tolerance (default 1e-4): element i is within tolerance if\n"
    "                       |a-b| <= X or |a-b| <= Y*|a|\n"
    "  --layer N            only tensors of layer N\n"
    "  --name GLOB          only tensors whose A or B name matches: 'Qcur-*', 'blk.0.*' (case-sensitive;\n"
    "                       one that matches nothing is a warning)\n"
    "  --map FILE           match names through a map (docs/name-maps.md), e.g. docs/maps/llama-hf.map\n"
    "  --map-var NAME=N     set a map variable ({head_dim}) the files' metadata does not give\n"
    "  --format FMT         table (default), csv or json (docs/commands/README.md)\n"
    "  -h, --help           this help\n"
    "\n"
    "exit status: 0 all within tolerance, 1 some tensor exceeds it, differs in shape or is\n"
    "on one side only, 2 bad usage or unreadable input\n";

static bool parse_opts(int argc, char ** argv, struct diff_opts * o, bool * help) {
    int64_t layer = -1;
    for (int i = 1; i < argc; i++) {
        const char * a = argv[i];
        const char * v = NULL;
        if (cli_is_help(a)) {
            *help = true;
            return true;
        } else if (strcmp(a, "--weights") == 0) {
            o->weights = true;
        } else if (strcmp(a, "--tolerance-abs") == 0) {
            if (!(v = cli_value(argc, argv, &i)) || !cli_parse_float(a, v, 0, 1e30, &o->p.tol_abs)) return false;
        } else if (strcmp(a, "--tolerance-rel") == 0) {
            if (!(v = cli_value(argc, argv, &i)) || !cli_parse_float(a, v, 0, 1e30, &o->p.tol_rel)) return false;
        } else if (strcmp(a, "--layer") == 0) {
            if (!(v = cli_value(argc, argv, &i)) || !cli_parse_int(a, v, 0, INT32_MAX, &layer)) return false;
        } else if (strcmp(a, "--name") == 0) {
            if (!(o->p.name_glob = cli_value(argc, argv, &i))) return false;
        } else if (strcmp(a, "--map") == 0) {
            if (!(o->map = cli_value(argc, argv, &i))) return false;
        } else if (strcmp(a, "--map-var") == 0) {
            if (!(v = cli_value(argc, argv, &i))) return false;
            if (o->n_map_vars == MAX_MAP_VARS) {
                cli_error("diff: at most %d --map-var", MAX_MAP_VARS);
                return false;
            }
            o->map_vars[o->n_map_vars++] = v;
        } else if (strcmp(a, "--format") == 0) {
            if (!(v = cli_value(argc, argv, &i)) || !out_parse_format(a, v, &o->format)) return false;
        } else if (a[0] == '-' && a[1] != '\0') {
            cli_error("diff: unknown option '%s' (see 'lltrace diff --help')", a);
            return false;
        } else if (!o->a) {
            o->a = a;
        } else if (!o->b) {
            o->b = a;
        } else {
            cli_error("diff: unexpected argument '%s' (two tensor sets A and B)", a);
            return false;
        }
    }
    if (!o->b) {
        cli_error("diff: needs two tensor sets A and B (see 'lltrace diff --help')");
        return false;
    }
    o->p.layer = (int32_t) layer;
    return true;
}

// --map-var NAME=N into the map
static bool set_map_vars(const struct diff_opts * o, struct llt_name_map * map) {
    for (int i = 0; i < o->n_map_vars; i++) {
        const char * eq = strchr(o->map_vars[i], '=');
        char name[64];
        int64_t v = 0;
        if (!eq || eq == o->map_vars[i] || (size_t) (eq - o->map_vars[i]) >= sizeof(name)) {
            cli_error("diff: --map-var: '%s' is not NAME=N", o->map_vars[i]);
            return false;
        }
        snprintf(name, sizeof(name), "%.*s", (int) (eq - o->map_vars[i]), o->map_vars[i]);
        if (!cli_parse_int("--map-var", eq + 1, 1, INT32_MAX, &v)) return false;
        if (llt_name_map_set_var(map, name, v) != LLT_OK) {
            cli_error("diff: %s", llt_last_error());
            return false;
        }
    }
    return true;
}

// ---- aggregates --------------------------------------------------------------------------

// per layer or per weight kind
struct group {
    char    key[96];  // weight kind ("attn_q.weight") with its types
    int32_t layer;
    int     n, n_compared, n_within;
    double  max_abs, max_rel, sum_cos, sum_nmse;
};

struct groups {
    struct group * g;
    int            n, cap;
};

static struct group * group_get(struct groups * gs, const char * key, int32_t layer) {
    for (int i = 0; i < gs->n; i++) {
        if (gs->g[i].layer == layer && strcmp(gs->g[i].key, key) == 0) return &gs->g[i];
    }
    if (gs->n == gs->cap) {
        const int cap = gs->cap ? gs->cap * 2 : 32;
        struct group * g = realloc(gs->g, (size_t) cap * sizeof(*g));
        if (!g) return NULL;
        gs->g = g;
        gs->cap = cap;
    }
    struct group * g = &gs->g[gs->n++];
    memset(g, 0, sizeof(*g));
    snprintf(g->key, sizeof(g->key), "%s", key);
    g->layer = layer;
    return g;
}

static bool compared(const struct llt_diff_entry * e) {
    return e->status == LLT_DIFF_WITHIN || e->status == LLT_DIFF_EXCEEDS;
}

static void group_add(struct group * g, const struct llt_diff_entry * e) {
    g->n++;
    if (!compared(e)) return;
    g->n_compared++;
    g->n_within += e->status == LLT_DIFF_WITHIN;
    g->max_abs = fmax(g->max_abs, e->d.max_abs);
    g->max_rel = fmax(g->max_rel, e->d.max_rel);
    g->sum_cos += e->d.cosine;
    g->sum_nmse += e->d.nmse;
}

static int cmp_layer(const void * x, const void * y) {
    const struct group * a = x, * b = y;
    return (a->layer > b->layer) - (a->layer < b->layer);
}

// weight kind: the name without "blk.N.", with the two types: "attn_q.weight f32->q8_0"
static void weight_kind(const char * name, int type_a, int type_b, char * out, size_t cap) {
    const char * k = name;
    if (strncmp(name, "blk.", 4) == 0) {
        const char * dot = strchr(name + 4, '.');
        if (dot) k = dot + 1;
    }
    snprintf(out, cap, "%.60s %s->%s", k, llt_type_name(type_a), llt_type_name(type_b));
}

static bool build_groups(const struct llt_set_diff * sd, struct llt_tensor_set * a, bool weights,
                         struct groups * layers, struct groups * kinds) {
    for (int i = 0; i < sd->n_entries; i++) {
        const struct llt_diff_entry * e = &sd->entries[i];
        struct group * g = group_get(layers, "", e->layer);
        if (!g) return false;
        group_add(g, e);
        if (!weights || e->a < 0 || e->b < 0) continue;
        char key[96];
        weight_kind(llt_tensor_set_get(a, e->a)->name, e->type_a, e->type_b, key, sizeof(key));
        if (!(g = group_get(kinds, key, -1))) return false;
        group_add(g, e);
    }
    if (layers->n > 1) qsort(layers->g, (size_t) layers->n, sizeof(struct group), cmp_layer); // no groups: --name matched nothing
    return true;
}

// ---- output ------------------------------------------------------------------------------


static const struct out_col set_cols[] = {
    { "path", OUT_TEXT, OUT_ONLY_JSON }, { "kind", OUT_TEXT, OUT_ONLY_JSON }, { "n_tensors", OUT_INT, OUT_ONLY_JSON },
};
static const struct out_col tolerance_cols[] = { { "abs", OUT_REAL, OUT_ONLY_JSON }, { "rel", OUT_REAL, OUT_ONLY_JSON } };

// a table shows what to read, csv and json every figure
static const struct out_col tensor_cols[] = {
    { "name", OUT_TEXT, OUT_ALL }, { "name_b", OUT_TEXT, OUT_NOT_TABLE }, { "status", OUT_TEXT, OUT_NOT_TABLE },
    { "layer", OUT_INT, OUT_NOT_TABLE }, { "order", OUT_INT, OUT_NOT_TABLE },
    { "type_a", OUT_TEXT, OUT_ALL }, { "type_b", OUT_TEXT, OUT_ALL }, { "ne_a", OUT_SHAPE, OUT_ALL },
    { "ne_b", OUT_SHAPE, OUT_NOT_TABLE }, { "transform", OUT_TEXT, OUT_NOT_TABLE },
    { "n", OUT_INT, OUT_NOT_TABLE }, { "n_finite", OUT_INT, OUT_NOT_TABLE }, { "n_exceed", OUT_INT, OUT_NOT_TABLE },
    { "max_abs_index", OUT_INT, OUT_NOT_TABLE }, { "a_nan", OUT_INT, OUT_NOT_TABLE }, { "a_inf", OUT_INT, OUT_NOT_TABLE },
    { "b_nan", OUT_INT, OUT_NOT_TABLE }, { "b_inf", OUT_INT, OUT_NOT_TABLE },
    { "max_abs", OUT_REAL, OUT_ALL }, { "mean_abs", OUT_REAL, OUT_ALL }, { "max_rel", OUT_REAL, OUT_ALL },
    { "mean_rel", OUT_REAL, OUT_NOT_TABLE }, { "rmse", OUT_REAL, OUT_ALL }, { "nmse", OUT_REAL, OUT_ALL },
    { "cosine", OUT_PRECISE, OUT_ALL }, { "result", OUT_TEXT, OUT_ONLY_TABLE },
};
enum { N_TENSOR_COLS = sizeof(tensor_cols) / sizeof(tensor_cols[0]) };

static const struct out_col layer_cols[] = {
    { "layer", OUT_INT, OUT_ALL }, { "tensors", OUT_INT, OUT_ALL }, { "compared", OUT_INT, OUT_ALL },
    { "within", OUT_INT, OUT_ALL }, { "max_abs", OUT_REAL, OUT_ALL }, { "max_rel", OUT_REAL, OUT_ALL },
    { "mean_cosine", OUT_PRECISE, OUT_ALL }, { "mean_nmse", OUT_REAL, OUT_ALL },
};
static const struct out_col kind_cols[] = {
    { "kind", OUT_TEXT, OUT_ALL }, { "tensors", OUT_INT, OUT_ALL }, { "compared", OUT_INT, OUT_ALL },
    { "within", OUT_INT, OUT_ALL }, { "max_abs", OUT_REAL, OUT_ALL }, { "max_rel", OUT_REAL, OUT_ALL },
    { "mean_cosine", OUT_PRECISE, OUT_ALL }, { "mean_nmse", OUT_REAL, OUT_ALL },
};
static const struct out_col summary_cols[] = {
    { "compared", OUT_INT, OUT_ONLY_JSON }, { "within", OUT_INT, OUT_ONLY_JSON }, { "exceed", OUT_INT, OUT_ONLY_JSON },
    { "shape_mismatch", OUT_INT, OUT_ONLY_JSON }, { "type_mismatch", OUT_INT, OUT_ONLY_JSON },
    { "only_a", OUT_INT, OUT_ONLY_JSON }, { "only_b", OUT_INT, OUT_ONLY_JSON }, { "unmapped", OUT_INT, OUT_ONLY_JSON },
    { "max_abs", OUT_REAL, OUT_ONLY_JSON }, { "max_rel", OUT_REAL, OUT_ONLY_JSON },
    { "mean_cosine", OUT_REAL, OUT_ONLY_JSON }, { "first_exceed", OUT_TEXT, OUT_ONLY_JSON },
    { "first_exceed_order", OUT_TEXT, OUT_ONLY_JSON }, { "kv_cache_note", OUT_TEXT, OUT_ONLY_JSON },
};

static const char * entry_name(const struct llt_diff_entry * e, struct llt_tensor_set * a, struct llt_tensor_set * b) {
    return e->a >= 0 ? llt_tensor_set_get(a, e->a)->name : llt_tensor_set_get(b, e->b)->name;
}

// the table's verdict on one tensor: "ok", "EXCEEDS (3 of 64, worst at 7)", then non-finite
// counts and the map's transforms
static void result_text(const struct llt_diff_entry * e, char * buf, size_t size) {
    size_t n = 0;
    switch (e->status) {
        case LLT_DIFF_WITHIN:  n = (size_t) snprintf(buf, size, "ok"); break;
        case LLT_DIFF_EXCEEDS:
            n = (size_t) snprintf(buf, size, "EXCEEDS (%lld of %lld, worst at %lld)", (long long) e->d.n_exceed,
                                  (long long) e->d.n, (long long) e->d.max_abs_index);
            break;
        case LLT_DIFF_SHAPE_MISMATCH: {
            char shape[96];
            n = (size_t) snprintf(buf, size, "SHAPE MISMATCH (B: %s)", out_table_text(OUT_SHAPE, out_shape(e->ne_b), shape, sizeof(shape)));
            break;
        }
        case LLT_DIFF_ONLY_A: n = (size_t) snprintf(buf, size, "ONLY IN A"); break;
        case LLT_DIFF_ONLY_B: n = (size_t) snprintf(buf, size, "ONLY IN B"); break;
        default: buf[0] = '\0'; break;
    }
    if (n < size && compared(e) && (e->d.a_nan || e->d.a_inf || e->d.b_nan || e->d.b_inf)) {
        n += (size_t) snprintf(buf + n, size - n, "  [A: %lld nan %lld inf, B: %lld nan %lld inf]", (long long) e->d.a_nan,
                               (long long) e->d.a_inf, (long long) e->d.b_nan, (long long) e->d.b_inf);
    }
    if (n < size && e->transform[0]) snprintf(buf + n, size - n, "  {%s}", e->transform);
}

static int write_set(struct out * o, const char * name, const char * path, struct llt_tensor_set * s) {
    out_note(o, "%s: %s (%s, %d tensors)", name[0] == 'a' ? "A" : "B", path,
             llt_tensor_set_kind_name(llt_tensor_set_kind(s)), llt_tensor_set_count(s));
    const struct out_val v[] = { out_text(path), out_text(llt_tensor_set_kind_name(llt_tensor_set_kind(s))),
                                 out_int(llt_tensor_set_count(s)) };
    return out_record(o, name, OUT_COLS(set_cols), v);
}

static int write_tensors(struct out * o, const struct llt_set_diff * sd, struct llt_tensor_set * a, struct llt_tensor_set * b) {
    int rc = out_begin(o, "tensors", "per tensor", OUT_COLS(tensor_cols), 0);
    for (int i = 0; i < sd->n_entries && rc == CLI_OK; i++) {
        const struct llt_diff_entry * e = &sd->entries[i];
        const struct llt_diff * d = &e->d;
        char result[256];
        result_text(e, result, sizeof(result));
        struct out_val v[N_TENSOR_COLS];
        int c = 0;
        v[c++] = out_text(entry_name(e, a, b));
        v[c++] = out_text(e->b >= 0 ? llt_tensor_set_get(b, e->b)->name : NULL);
        v[c++] = out_text(llt_diff_status_name(e->status));
        v[c++] = out_int(e->layer);
        v[c++] = out_int(e->order);
        v[c++] = out_text(e->a >= 0 ? llt_type_name(e->type_a) : NULL);
        v[c++] = out_text(e->b >= 0 ? llt_type_name(e->type_b) : NULL);
        v[c++] = e->a >= 0 ? out_shape(e->ne_a) : out_null();
        v[c++] = e->b >= 0 ? out_shape(e->ne_b) : out_null();
        v[c++] = out_text(e->transform);
        const bool m = compared(e); // metrics only of tensors compared
        const int64_t ints[] = { d->n, d->n_finite, d->n_exceed, d->max_abs_index, d->a_nan, d->a_inf, d->b_nan, d->b_inf };
        for (size_t k = 0; k < sizeof(ints) / sizeof(ints[0]); k++) v[c++] = m ? out_int(ints[k]) : out_null();
        const double reals[] = { d->max_abs, d->mean_abs, d->max_rel, d->mean_rel, d->rmse, d->nmse, d->cosine };
        for (size_t k = 0; k < sizeof(reals) / sizeof(reals[0]); k++) v[c++] = m ? out_real(reals[k]) : out_null();
        v[c++] = out_text(result);
        rc = out_row(o, v);
    }
    return rc == CLI_OK ? out_end(o) : rc;
}

static int write_groups(struct out * o, const char * name, const char * title, const struct groups * gs, bool kinds) {
    int rc = kinds ? out_begin(o, name, title, OUT_COLS(kind_cols), 0) : out_begin(o, name, title, OUT_COLS(layer_cols), 0);
    for (int i = 0; i < gs->n && rc == CLI_OK; i++) {
        const struct group * g = &gs->g[i];
        const bool any = g->n_compared > 0; // a maximum or mean of nothing is missing
        const struct out_val v[] = {
            kinds ? out_text(g->key) : out_int(g->layer), out_int(g->n), out_int(g->n_compared), out_int(g->n_within),
            any ? out_real(g->max_abs) : out_null(), any ? out_real(g->max_rel) : out_null(),
            any ? out_real(g->sum_cos / g->n_compared) : out_null(), any ? out_real(g->sum_nmse / g->n_compared) : out_null(),
        };
        rc = out_row(o, v);
    }
    return rc == CLI_OK ? out_end(o) : rc;
}

// the summary: sentences in a table, a record in json
static int write_summary(struct out * o, const struct diff_opts * opts, const struct llt_set_diff * sd, const char * note,
                         struct llt_tensor_set * a, struct llt_tensor_set * b) {
    char t1[32], t2[32], t3[32];
    const int matched = sd->n_compared + sd->n_shape_mismatch;
    if (matched == 0) {
        out_note(o, "\nsummary: no tensor selected, nothing compared (A has %d tensors, B %d)", llt_tensor_set_count(a),
                 llt_tensor_set_count(b));
    } else {
        out_note(o, "\nsummary: %d of %d tensors matched by name within tolerance (%.1f%%), %d compared (A has %d tensors, B %d)",
                 sd->n_within, matched, 100.0 * sd->n_within / matched, sd->n_compared, llt_tensor_set_count(a),
                 llt_tensor_set_count(b));
    }
    if (opts->map) {
        out_note(o, "shape mismatches %d, type mismatches %d, only in A %d, only in B %d, not named by the map %d",
                 sd->n_shape_mismatch, sd->n_type_mismatch, sd->n_only_a, sd->n_only_b, sd->n_unmapped);
    } else {
        out_note(o, "shape mismatches %d, type mismatches %d, only in A %d, only in B %d", sd->n_shape_mismatch,
                 sd->n_type_mismatch, sd->n_only_a, sd->n_only_b);
    }
    out_note(o, "max abs %s, max rel %s, mean cosine %s", out_table_text(OUT_REAL, out_real(sd->max_abs), t1, sizeof(t1)),
             out_table_text(OUT_REAL, out_real(sd->max_rel), t2, sizeof(t2)),
             out_table_text(OUT_PRECISE, out_real(sd->mean_cosine), t3, sizeof(t3)));
    const char * first = sd->first_exceed >= 0 ? entry_name(&sd->entries[sd->first_exceed], a, b) : NULL;
    if (first) {
        if (sd->graph_order) {
            out_note(o, "first in graph order beyond tolerance: %s (node %lld)", first,
                     (long long) sd->entries[sd->first_exceed].order);
        } else {
            out_note(o, "first in file order beyond tolerance: %s", first);
        }
    }
    if (note[0]) out_note(o, "note: %s (-ctk f32 -ctv f32)", note);
    const struct out_val v[] = {
        out_int(sd->n_compared), out_int(sd->n_within), out_int(sd->n_exceed), out_int(sd->n_shape_mismatch),
        out_int(sd->n_type_mismatch), out_int(sd->n_only_a), out_int(sd->n_only_b), out_int(sd->n_unmapped),
        out_real(sd->max_abs), out_real(sd->max_rel), out_real(sd->mean_cosine), out_text(first),
        out_text(sd->graph_order ? "graph" : "file"), out_text(note[0] ? note : NULL),
    };
    return out_record(o, "summary", OUT_COLS(summary_cols), v);
}

static int write_diff(struct out * o, const struct diff_opts * opts, const struct llt_set_diff * sd, const char * note,
                      struct llt_tensor_set * a, struct llt_tensor_set * b,
                      const struct groups * layers, const struct groups * kinds) {
    int rc = write_set(o, "a", opts->a, a);
    if (rc == CLI_OK) rc = write_set(o, "b", opts->b, b);
    out_note(o, "tolerance: |a-b| <= %g or |a-b| <= %g*|a|", opts->p.tol_abs, opts->p.tol_rel);
    const struct out_val tol[] = { out_real(opts->p.tol_abs), out_real(opts->p.tol_rel) };
    if (rc == CLI_OK) rc = out_record(o, "tolerance", OUT_COLS(tolerance_cols), tol);
    if (rc == CLI_OK) rc = write_tensors(o, sd, a, b);
    if (rc == CLI_OK) rc = write_groups(o, "layers", "per layer", layers, false);
    if (rc == CLI_OK && opts->weights) rc = write_groups(o, "kinds", "per weight kind (type A->B)", kinds, true);
    if (rc == CLI_OK) rc = write_summary(o, opts, sd, note, a, b);
    return rc;
}

// ---- the command -------------------------------------------------------------------------

static int open_set(const char * path, bool model, struct llt_tensor_set ** out) {
    if (llt_tensor_set_open(path, out) != LLT_OK) {
        cli_error("diff: %s", llt_last_error());
        return CLI_USAGE;
    }
    if (model && llt_tensor_set_kind(*out) != LLT_TENSOR_SET_GGUF) {
        cli_error("diff: --weights compares two GGUF models; '%s' is a %s set", path,
            llt_tensor_set_kind_name(llt_tensor_set_kind(*out)));
        llt_tensor_set_close(*out);
        *out = NULL;
        return CLI_USAGE;
    }
    return CLI_OK;
}

int cmd_diff(int argc, char ** argv) {
    struct diff_opts o = { .p = llt_diff_default_params() };
    bool help = false;
    if (!parse_opts(argc, argv, &o, &help)) return CLI_USAGE;
    if (help) {
        fputs(usage_text, stdout);
        return CLI_OK;
    }
    llt_log_init(false);
    struct llt_tensor_set * a = NULL, * b = NULL;
    struct llt_name_map * map = NULL;
    struct llt_set_diff * sd = NULL;
    struct groups layers = {0}, kinds = {0};
    int rc = open_set(o.a, o.weights, &a);
    if (rc == CLI_OK) rc = open_set(o.b, o.weights, &b);
    if (rc != CLI_OK) goto done;
    if (o.map) {
        if (llt_name_map_load(o.map, &map) != LLT_OK) {
            cli_error("diff: %s", llt_last_error());
            rc = CLI_USAGE;
            goto done;
        }
        if (!set_map_vars(&o, map)) {
            rc = CLI_USAGE;
            goto done;
        }
        o.p.map = map;
    } else if (o.n_map_vars > 0) {
        cli_error("diff: --map-var needs --map");
        rc = CLI_USAGE;
        goto done;
    }
    const int drc = llt_set_diff(a, b, &o.p, &sd);
    if (drc != LLT_OK) {
        // a variable the map needs and the files do not give: the flag that gives it
        cli_error("diff: %s%s", llt_last_error(), drc == LLT_ENOTFOUND && map ? " with --map-var NAME=N" : "");
        rc = CLI_USAGE;
        goto done;
    }
    // nothing to compare at all is an input that cannot be used; a filter that matches nothing
    // is a warning, as in every command
    if (llt_tensor_set_count(a) == 0 && llt_tensor_set_count(b) == 0) {
        cli_error("diff: no tensors to compare ('%s' and '%s' hold none)", o.a, o.b);
        rc = CLI_USAGE;
        goto done;
    }
    if (sd->n_entries == 0) {
        char layer[32] = "";
        if (o.p.layer >= 0) snprintf(layer, sizeof(layer), " --layer %d", o.p.layer);
        cli_error("diff: warning:%s%s%s%s matched no tensor of A (%d) or B (%d) (names are case-sensitive)",
                  o.p.name_glob ? " --name '" : "", o.p.name_glob ? o.p.name_glob : "", o.p.name_glob ? "'" : "", layer,
                  llt_tensor_set_count(a), llt_tensor_set_count(b));
    }
    if (!build_groups(sd, a, o.weights, &layers, &kinds)) {
        cli_error("diff: out of memory");
        rc = CLI_FAIL;
        goto done;
    }
    // dumps that say their runs' cache types: a cache that is not f32 explains small differences
    char note[400] = "", ak[16], av[16], bk[16], bv[16];
    if (sd->n_exceed > 0 && llt_dump_cache_types(a, ak, av, sizeof(ak)) && llt_dump_cache_types(b, bk, bv, sizeof(bk))) {
        llt_diff_kv_note(ak, av, bk, bv, sd->max_abs, note, sizeof(note));
    }
    struct out * out = out_open(stdout, o.format);
    if (!out) {
        cli_error("diff: out of memory");
        rc = CLI_FAIL;
        goto done;
    }
    rc = write_diff(out, &o, sd, note, a, b, &layers, &kinds);
    const int close_rc = out_close(out);
    if (rc == CLI_OK) rc = close_rc;
    if (rc == CLI_OK && (sd->n_exceed || sd->n_shape_mismatch || sd->n_only_a || sd->n_only_b)) rc = CLI_FAIL;
done:
    free(layers.g);
    free(kinds.g);
    llt_set_diff_free(sd);
    llt_name_map_free(map);
    llt_tensor_set_close(a);
    llt_tensor_set_close(b);
    return rc;
}
