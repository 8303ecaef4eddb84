// lltrace diff: compares two tensor sets (GGUF dumps or models, safetensors files, .npy
// directories) tensor by tensor after dequantization, and prints the metrics per tensor, per
// layer, per weight kind (--weights) and a summary.
// Exit status: 0 all within tolerance, 1 some tensor exceeds it (or shapes differ, or a
// tensor is on one side only), 2 bad usage or unreadable input.
#include "cli.h"
#include "lltrace.h"

#include <errno.h>
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
    bool         weights;
    bool         json;
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
    "  --name GLOB          only tensors whose A or B name matches: 'Qcur-*', 'blk.0.*'\n"
    "  --map FILE           match names through a map (docs/name-maps.md), e.g. docs/maps/llama-hf.map\n"
    "  --map-var NAME=N     set a map variable ({head_dim}) the files' metadata does not give\n"
    "  --format FMT         table (default) or json\n"
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
            static const char * const formats[] = { "table", "json" };
            int k;
            if (!(v = cli_value(argc, argv, &i)) || !cli_parse_choice(a, v, formats, 2, &k)) return false;
            o->json = k == 1;
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
    qsort(layers->g, (size_t) layers->n, sizeof(struct group), cmp_layer);
    return true;
}

// ---- output ------------------------------------------------------------------------------

static const char * entry_name(const struct llt_diff_entry * e, struct llt_tensor_set * a, struct llt_tensor_set * b) {
    return e->a >= 0 ? llt_tensor_set_get(a, e->a)->name : llt_tensor_set_get(b, e->b)->name;
}

static void shape_text(const int64_t ne[4], char * buf, size_t cap) {
    int nd = 4;
    while (nd > 1 && ne[nd - 1] == 1) nd--;
    int o = snprintf(buf, cap, "%lld", (long long) ne[0]);
    for (int d = 1; d < nd && o < (int) cap; d++) o += snprintf(buf + o, cap - (size_t) o, "x%lld", (long long) ne[d]);
}

static void print_table(FILE * f, const struct diff_opts * o, const struct llt_set_diff * sd, const char * note,
                        struct llt_tensor_set * a, struct llt_tensor_set * b,
                        const struct groups * layers, const struct groups * kinds) {
    fprintf(f, "A: %s (%s, %d tensors)\nB: %s (%s, %d tensors)\n", o->a, llt_tensor_set_kind_name(llt_tensor_set_kind(a)),
        llt_tensor_set_count(a), o->b, llt_tensor_set_kind_name(llt_tensor_set_kind(b)), llt_tensor_set_count(b));
    fprintf(f, "tolerance: |a-b| <= %g or |a-b| <= %g*|a|\n\n", o->p.tol_abs, o->p.tol_rel);

    fprintf(f, "%-36s %-6s %-6s %-16s %-10s %-10s %-10s %-10s %-10s %-12s %s\n", "tensor", "type A", "type B", "shape",
        "max abs", "mean abs", "max rel", "rmse", "nmse", "cosine", "result");
    for (int i = 0; i < sd->n_entries; i++) {
        const struct llt_diff_entry * e = &sd->entries[i];
        char sa[48], sb[48];
        shape_text(e->a >= 0 ? e->ne_a : e->ne_b, sa, sizeof(sa));
        fprintf(f, "%-36s %-6s %-6s %-16s ", entry_name(e, a, b), e->a >= 0 ? llt_type_name(e->type_a) : "-",
            e->b >= 0 ? llt_type_name(e->type_b) : "-", sa);
        if (compared(e)) {
            fprintf(f, "%-10.3e %-10.3e %-10.3e %-10.3e %-10.3e %-12.9f ", e->d.max_abs, e->d.mean_abs, e->d.max_rel,
                e->d.rmse, e->d.nmse, e->d.cosine);
        } else {
            fprintf(f, "%-10s %-10s %-10s %-10s %-10s %-12s ", "-", "-", "-", "-", "-", "-");
        }
        switch (e->status) {
            case LLT_DIFF_WITHIN:  fputs("ok", f); break;
            case LLT_DIFF_EXCEEDS: fprintf(f, "EXCEEDS (%lld of %lld, worst at %lld)", (long long) e->d.n_exceed,
                                       (long long) e->d.n, (long long) e->d.max_abs_index); break;
            case LLT_DIFF_SHAPE_MISMATCH:
                shape_text(e->ne_b, sb, sizeof(sb));
                fprintf(f, "SHAPE MISMATCH (B: %s)", sb);
                break;
            case LLT_DIFF_ONLY_A: fputs("ONLY IN A", f); break;
            case LLT_DIFF_ONLY_B: fputs("ONLY IN B", f); break;
            default: break;
        }
        if (compared(e) && (e->d.a_nan || e->d.a_inf || e->d.b_nan || e->d.b_inf)) {
            fprintf(f, "  [A: %lld nan %lld inf, B: %lld nan %lld inf]", (long long) e->d.a_nan, (long long) e->d.a_inf,
                (long long) e->d.b_nan, (long long) e->d.b_inf);
        }
        if (e->transform[0]) fprintf(f, "  {%s}", e->transform);
        fputc('\n', f);
    }

    fprintf(f, "\nper layer:\n  %-6s %-8s %-9s %-8s %-10s %-10s %-12s %s\n", "layer", "tensors", "compared", "within",
        "max abs", "max rel", "mean cosine", "mean nmse");
    for (int i = 0; i < layers->n; i++) {
        const struct group * g = &layers->g[i];
        char l[16];
        snprintf(l, sizeof(l), g->layer < 0 ? "-" : "%d", g->layer);
        fprintf(f, "  %-6s %-8d %-9d %-8d %-10.3e %-10.3e %-12.9f %.3e\n", l, g->n, g->n_compared, g->n_within,
            g->max_abs, g->max_rel, g->n_compared ? g->sum_cos / g->n_compared : 0.0,
            g->n_compared ? g->sum_nmse / g->n_compared : 0.0);
    }
    if (o->weights) {
        fprintf(f, "\nper weight kind:\n  %-40s %-8s %-10s %-10s %-12s %s\n", "kind (type A->B)", "tensors", "max abs",
            "max rel", "mean cosine", "mean nmse");
        for (int i = 0; i < kinds->n; i++) {
            const struct group * g = &kinds->g[i];
            fprintf(f, "  %-40s %-8d %-10.3e %-10.3e %-12.9f %.3e\n", g->key, g->n, g->max_abs, g->max_rel,
                g->n_compared ? g->sum_cos / g->n_compared : 0.0, g->n_compared ? g->sum_nmse / g->n_compared : 0.0);
        }
    }

    const int matched = sd->n_compared + sd->n_shape_mismatch;
    fprintf(f, "\n=== TENSOR DIFFERENCE ANALYSIS SUMMARY ===\n");
    fprintf(f, "Reference (A): %s\nCompared (B): %s\n", o->a, o->b);
    fprintf(f, "Total comparisons: %d (A has %d tensors, B has %d)\n", sd->n_compared, llt_tensor_set_count(a),
        llt_tensor_set_count(b));
    fprintf(f, "Tolerance - Absolute: %.2e, Relative: %.2e\n\n--- Overall Results ---\n", o->p.tol_abs, o->p.tol_rel);
    fprintf(f, "Tensors within tolerance: %d/%d (%.1f%%)\n", sd->n_within, matched,
        matched ? 100.0 * sd->n_within / matched : 100.0);
    fprintf(f, "Shape mismatches: %d\nType mismatches: %d\n", sd->n_shape_mismatch, sd->n_type_mismatch);
    fprintf(f, "Only in A: %d, only in B: %d", sd->n_only_a, sd->n_only_b);
    if (o->map) fprintf(f, ", not named by the map: %d", sd->n_unmapped);
    fprintf(f, "\nMaximum absolute difference: %.2e\nMaximum relative difference: %.2e\n", sd->max_abs, sd->max_rel);
    fprintf(f, "Average cosine similarity: %.6f\n", sd->mean_cosine);
    if (sd->n_exceed > 0) {
        fprintf(f, "\n--- Tensors exceeding tolerance ---\n");
        for (int i = 0; i < sd->n_entries; i++) {
            const struct llt_diff_entry * e = &sd->entries[i];
            if (e->status == LLT_DIFF_EXCEEDS) {
                fprintf(f, "  %s: abs=%.2e, rel=%.2e\n", entry_name(e, a, b), e->d.max_abs, e->d.max_rel);
            }
        }
    }
    if (sd->first_exceed >= 0) {
        const struct llt_diff_entry * e = &sd->entries[sd->first_exceed];
        fprintf(f, "\nFirst in %s order exceeding tolerance: %s", sd->graph_order ? "graph" : "file", entry_name(e, a, b));
        if (sd->graph_order) fprintf(f, " (node %lld)", (long long) e->order);
        fputc('\n', f);
    }
    if (note[0]) fprintf(f, "\nNote: %s (-ctk f32 -ctv f32)\n", note);
}

static void json_metrics(FILE * f, const struct llt_diff * d) {
    const char * names[] = { "max_abs", "mean_abs", "max_rel", "mean_rel", "rmse", "nmse", "cosine" };
    const double v[] = { d->max_abs, d->mean_abs, d->max_rel, d->mean_rel, d->rmse, d->nmse, d->cosine };
    fprintf(f, "{\"n\": %lld, \"n_finite\": %lld, \"n_exceed\": %lld, \"max_abs_index\": %lld, \"a_nan\": %lld, "
        "\"a_inf\": %lld, \"b_nan\": %lld, \"b_inf\": %lld", (long long) d->n, (long long) d->n_finite,
        (long long) d->n_exceed, (long long) d->max_abs_index, (long long) d->a_nan, (long long) d->a_inf,
        (long long) d->b_nan, (long long) d->b_inf);
    for (int k = 0; k < 7; k++) { fprintf(f, ", \"%s\": ", names[k]); cli_json_number(f, v[k]); }
    fputc('}', f);
}

static void json_groups(FILE * f, const char * name, const struct groups * gs, bool kinds) {
    fprintf(f, ",\n  \"%s\": [", name);
    for (int i = 0; i < gs->n; i++) {
        const struct group * g = &gs->g[i];
        fprintf(f, "%s\n    {", i ? "," : "");
        if (kinds) { fputs("\"kind\": ", f); cli_json_string(f, g->key); }
        else       fprintf(f, "\"layer\": %d", g->layer);
        fprintf(f, ", \"tensors\": %d, \"compared\": %d, \"within\": %d, \"max_abs\": ", g->n, g->n_compared, g->n_within);
        cli_json_number(f, g->max_abs);
        fputs(", \"max_rel\": ", f);
        cli_json_number(f, g->max_rel);
        fputs(", \"mean_cosine\": ", f);
        cli_json_number(f, g->n_compared ? g->sum_cos / g->n_compared : 0.0);
        fputs(", \"mean_nmse\": ", f);
        cli_json_number(f, g->n_compared ? g->sum_nmse / g->n_compared : 0.0);
        fputc('}', f);
    }
    fputs(gs->n ? "\n  ]" : "]", f);
}

static void json_set(FILE * f, const char * key, const char * path, struct llt_tensor_set * s) {
    fprintf(f, "  \"%s\": {\"path\": ", key);
    cli_json_string(f, path);
    fprintf(f, ", \"kind\": \"%s\", \"n_tensors\": %d},\n", llt_tensor_set_kind_name(llt_tensor_set_kind(s)),
        llt_tensor_set_count(s));
}

static void json_ne(FILE * f, const int64_t ne[4]) {
    int nd = 4;
    while (nd > 1 && ne[nd - 1] == 1) nd--;
    fputc('[', f);
    for (int d = 0; d < nd; d++) fprintf(f, "%s%lld", d ? ", " : "", (long long) ne[d]);
    fputc(']', f);
}

static void print_json(FILE * f, const struct diff_opts * o, const struct llt_set_diff * sd, const char * note,
                       struct llt_tensor_set * a, struct llt_tensor_set * b,
                       const struct groups * layers, const struct groups * kinds) {
    fputs("{\n", f);
    json_set(f, "a", o->a, a);
    json_set(f, "b", o->b, b);
    fprintf(f, "  \"tolerance\": {\"abs\": %.9g, \"rel\": %.9g},\n  \"tensors\": [", o->p.tol_abs, o->p.tol_rel);
    for (int i = 0; i < sd->n_entries; i++) {
        const struct llt_diff_entry * e = &sd->entries[i];
        fprintf(f, "%s\n    {\"name\": ", i ? "," : "");
        cli_json_string(f, entry_name(e, a, b));
        fputs(", \"name_b\": ", f);
        if (e->b >= 0) cli_json_string(f, llt_tensor_set_get(b, e->b)->name);
        else           fputs("null", f);
        fprintf(f, ", \"status\": \"%s\", \"layer\": %d, \"order\": %lld", llt_diff_status_name(e->status), e->layer,
            (long long) e->order);
        fprintf(f, ", \"type_a\": \"%s\", \"type_b\": \"%s\"", e->a >= 0 ? llt_type_name(e->type_a) : "",
            e->b >= 0 ? llt_type_name(e->type_b) : "");
        fputs(", \"ne_a\": ", f); json_ne(f, e->ne_a);
        fputs(", \"ne_b\": ", f); json_ne(f, e->ne_b);
        fputs(", \"transform\": ", f); cli_json_string(f, e->transform);
        fputs(", \"metrics\": ", f);
        if (compared(e)) json_metrics(f, &e->d);
        else             fputs("null", f);
        fputc('}', f);
    }
    fputs(sd->n_entries ? "\n  ]" : "]", f);
    json_groups(f, "layers", layers, false);
    if (o->weights) json_groups(f, "kinds", kinds, true);
    fprintf(f, ",\n  \"summary\": {\"compared\": %d, \"within\": %d, \"exceed\": %d, \"shape_mismatch\": %d, "
        "\"type_mismatch\": %d, \"only_a\": %d, \"only_b\": %d, \"unmapped\": %d, \"max_abs\": ", sd->n_compared,
        sd->n_within, sd->n_exceed, sd->n_shape_mismatch, sd->n_type_mismatch, sd->n_only_a, sd->n_only_b, sd->n_unmapped);
    cli_json_number(f, sd->max_abs);
    fputs(", \"max_rel\": ", f);
    cli_json_number(f, sd->max_rel);
    fputs(", \"mean_cosine\": ", f);
    cli_json_number(f, sd->mean_cosine);
    fputs(", \"first_exceed\": ", f);
    if (sd->first_exceed >= 0) cli_json_string(f, entry_name(&sd->entries[sd->first_exceed], a, b));
    else                       fputs("null", f);
    fprintf(f, ", \"first_exceed_order\": \"%s\", \"kv_cache_note\": ", sd->graph_order ? "graph" : "file");
    if (note[0]) cli_json_string(f, note);
    else         fputs("null", f);
    fputs("}\n}\n", f);
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
    if (sd->n_entries == 0) {
        cli_error("diff: no tensors to compare (%d in A, %d in B%s)", llt_tensor_set_count(a), llt_tensor_set_count(b),
            o.p.name_glob || o.p.layer >= 0 || map ? ", after --name/--layer/--map" : "");
        rc = CLI_USAGE;
        goto done;
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
    if (o.json) print_json(stdout, &o, sd, note, a, b, &layers, &kinds);
    else        print_table(stdout, &o, sd, note, a, b, &layers, &kinds);
    rc = sd->n_exceed || sd->n_shape_mismatch || sd->n_only_a || sd->n_only_b ? CLI_FAIL : CLI_OK;
    if (fflush(stdout) != 0 || ferror(stdout)) {
        cli_error("diff: cannot write the output: %s", strerror(errno));
        rc = CLI_FAIL;
    }
done:
    free(layers.g);
    free(kinds.g);
    llt_set_diff_free(sd);
    llt_name_map_free(map);
    llt_tensor_set_close(a);
    llt_tensor_set_close(b);
    return rc;
}
