// lltrace profile: where the time of a traced run went, per op, layer, phase, step or node,
// prompt and generation apart, with the bytes each node moved and the FLOPs it did.
//
// The figures are the analysis layer's (lltrace/analysis.h, docs/trace-format.md "Profile
// figures"); this file chooses the view and renders it through the output engine.
#include "cli.h"
#include "output.h"
#include "lltrace.h"

#include <math.h>
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
    "  --seq N         only the steps that took tokens of llama.cpp sequence N (lltrace exec)\n"
    "  --by VIEW       op (default): time, share, samples, mean, median and p90 of a timed\n"
    "                  node, bytes, FLOPs, GB/s and GFLOP/s per op\n"
    "                  layer: per layer, with the l_out-to-l_out time of each layer (mean,\n"
    "                  median and p90 of a step's)\n"
    "                  phase: tokenize, embed, layers, logits, sampling and decode overhead\n"
    "                  step: the same per step, with the sum of the node times\n"
    "                  node: the slowest nodes\n"
    "                  expert: per MoE layer and expert the tokens routed to it and its part\n"
    "                  of the layer's MUL_MAT_ID time, split by tokens (an attribution: ggml\n"
    "                  computes all experts of a MUL_MAT_ID in one node)\n"
    "                  device: per device (CPU, RPC server, GPU): node runs, splits, the\n"
    "                  scheduler's input copies into them, split and node times, and how\n"
    "                  each was measured\n"
    "  --top N         op, layer, node, expert: at most N rows per phase (expert: the N\n"
    "                  slowest; default: all; node: 20)\n"
    "  --format FMT    table (default), csv or json\n"
    "  -h, --help      this help\n";

// ---- options -----------------------------------------------------------------------------

enum prof_view { BY_OP, BY_LAYER, BY_PHASE, BY_STEP, BY_NODE, BY_EXPERT, BY_DEVICE, BY_COUNT };

static const char * view_names[] = { "op", "layer", "phase", "step", "node", "expert", "device" };
_Static_assert(sizeof(view_names) / sizeof(view_names[0]) == BY_COUNT, "a name per view");

struct prof_opts {
    const char *    trace;
    int64_t         run;  // 0: the last run
    int64_t         top;  // 0: all rows
    int64_t         seq;  // -1: every step
    enum prof_view  view;
    enum out_format format;
};

// returns CLI_OK, or the exit code to leave with (-1: help was printed)
static int parse_opts(int argc, char ** argv, struct prof_opts * o) {
    bool has_top = false;
    o->seq = -1;
    for (int i = 1; i < argc; i++) {
        const char * a = argv[i];
        const char * v = NULL;
        int k;
        if (cli_is_help(a)) {
            fputs(usage_text, stdout);
            return -1;
        } else if (strcmp(a, "--run") == 0) {
            if (!(v = cli_value(argc, argv, &i)) || !cli_parse_int(a, v, 1, INT32_MAX, &o->run)) return CLI_USAGE;
        } else if (strcmp(a, "--seq") == 0) {
            if (!(v = cli_value(argc, argv, &i)) || !cli_parse_int(a, v, 0, INT32_MAX, &o->seq)) return CLI_USAGE;
        } else if (strcmp(a, "--top") == 0) {
            if (!(v = cli_value(argc, argv, &i)) || !cli_parse_int(a, v, 1, INT32_MAX, &o->top)) return CLI_USAGE;
            has_top = true;
        } else if (strcmp(a, "--by") == 0) {
            if (!(v = cli_value(argc, argv, &i)) || !cli_parse_choice(a, v, view_names, BY_COUNT, &k)) return CLI_USAGE;
            o->view = (enum prof_view) k;
        } else if (strcmp(a, "--format") == 0) {
            if (!(v = cli_value(argc, argv, &i)) || !out_parse_format(a, v, &o->format)) return CLI_USAGE;
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

// ---- the views ---------------------------------------------------------------------------

static const struct out_col op_cols[] = {
    { "phase", OUT_TEXT, OUT_ALL }, { "op", OUT_TEXT, OUT_ALL }, { "time_us", OUT_TIME, OUT_ALL },
    { "share", OUT_PCT, OUT_ALL }, { "nodes", OUT_INT, OUT_ALL }, { "samples", OUT_INT, OUT_ALL },
    { "mean_us", OUT_TIME, OUT_ALL }, { "median_us", OUT_TIME, OUT_ALL }, { "p90_us", OUT_TIME, OUT_ALL },
    { "bytes", OUT_BYTES, OUT_ALL }, { "flops", OUT_COUNT, OUT_ALL }, { "GB/s", OUT_RATE, OUT_ALL },
    { "GFLOP/s", OUT_RATE, OUT_ALL },
};
// mean, median, p90: of one step's l_out-to-l_out time
static const struct out_col layer_cols[] = {
    { "phase", OUT_TEXT, OUT_ALL }, { "layer", OUT_TEXT, OUT_ALL }, { "time_us", OUT_TIME, OUT_ALL },
    { "share", OUT_PCT, OUT_ALL }, { "nodes", OUT_INT, OUT_ALL }, { "samples", OUT_INT, OUT_ALL },
    { "l_out_gap_us", OUT_TIME, OUT_ALL }, { "gap_samples", OUT_INT, OUT_ALL },
    { "mean_us", OUT_TIME, OUT_ALL }, { "median_us", OUT_TIME, OUT_ALL }, { "p90_us", OUT_TIME, OUT_ALL },
    { "bytes", OUT_BYTES, OUT_ALL }, { "flops", OUT_COUNT, OUT_ALL }, { "GB/s", OUT_RATE, OUT_ALL },
    { "GFLOP/s", OUT_RATE, OUT_ALL },
};
// bytes and flops: of one run of the node
static const struct out_col node_cols[] = {
    { "phase", OUT_TEXT, OUT_ALL }, { "idx", OUT_INT, OUT_ALL }, { "name", OUT_TEXT, OUT_ALL },
    { "op", OUT_TEXT, OUT_ALL }, { "layer", OUT_INT, OUT_ALL }, { "time_us", OUT_TIME, OUT_ALL },
    { "share", OUT_PCT, OUT_ALL }, { "samples", OUT_INT, OUT_ALL }, { "mean_us", OUT_TIME, OUT_ALL },
    { "median_us", OUT_TIME, OUT_ALL }, { "p90_us", OUT_TIME, OUT_ALL }, { "bytes", OUT_BYTES, OUT_ALL },
    { "flops", OUT_COUNT, OUT_ALL }, { "GB/s", OUT_RATE, OUT_ALL }, { "GFLOP/s", OUT_RATE, OUT_ALL },
};
static const struct out_col phase_cols[] = {
    { "phase", OUT_TEXT, OUT_ALL }, { "part", OUT_TEXT, OUT_ALL }, { "time_us", OUT_TIME, OUT_ALL },
    { "per_token_us", OUT_TIME, OUT_ALL }, { "share", OUT_PCT, OUT_ALL }, { "steps", OUT_INT, OUT_ALL },
};
static const struct out_col step_cols[] = {
    { "step", OUT_INT, OUT_ALL }, { "phase", OUT_TEXT, OUT_ALL }, { "tokens", OUT_INT, OUT_ALL },
    { "wall_us", OUT_TIME, OUT_ALL }, { "compute_us", OUT_TIME, OUT_ALL }, { "nodes_us", OUT_TIME, OUT_ALL },
    { "samples", OUT_INT, OUT_ALL }, { "embed_us", OUT_TIME, OUT_ALL }, { "layers_us", OUT_TIME, OUT_ALL },
    { "logits_us", OUT_TIME, OUT_ALL }, { "sampling_us", OUT_TIME, OUT_ALL }, { "overhead_us", OUT_TIME, OUT_ALL },
    { "bytes_read", OUT_BYTES, OUT_ALL }, { "bytes_written", OUT_BYTES, OUT_ALL },
    { "read_per_token", OUT_BYTES, OUT_ALL }, { "flops", OUT_COUNT, OUT_ALL },
};
// json only: a table says it in its header lines
static const struct out_col run_cols[] = {
    { "trace", OUT_TEXT, OUT_ONLY_JSON }, { "run", OUT_INT, OUT_ONLY_JSON }, { "model", OUT_TEXT, OUT_ONLY_JSON },
    { "level", OUT_TEXT, OUT_ONLY_JSON }, { "status", OUT_TEXT, OUT_ONLY_JSON }, { "steps", OUT_INT, OUT_ONLY_JSON },
    { "timed_steps", OUT_INT, OUT_ONLY_JSON }, { "samples", OUT_INT, OUT_ONLY_JSON },
    { "instances", OUT_INT, OUT_ONLY_JSON }, { "fused", OUT_INT, OUT_ONLY_JSON }, { "by", OUT_TEXT, OUT_ONLY_JSON },
};


static double ratio(double num, double den) {
    return den > 0 ? num / den : NAN;
}

// a value that is -1 when unknown
static struct out_val known(int64_t v) {
    return v >= 0 ? out_int(v) : out_null();
}

// a figure that is NAN when there is nothing to compute it from
static struct out_val num(double v) {
    return isnan(v) ? out_null() : out_real(v);
}

// op, layer and node tables
static int write_groups(struct out * o, const struct llt_analysis * a, const struct prof_opts * opts) {
    static const enum llt_analysis_by by_of[] = { [BY_OP] = LLT_ANALYSIS_BY_OP, [BY_LAYER] = LLT_ANALYSIS_BY_LAYER,
                                                  [BY_NODE] = LLT_ANALYSIS_BY_NODE };
    struct llt_analysis_groups gs;
    if (llt_analysis_group(a, by_of[opts->view], true, &gs) != LLT_OK) {
        cli_error("%s", llt_last_error());
        return CLI_FAIL;
    }
    const struct out_col * cols = opts->view == BY_OP ? op_cols : opts->view == BY_LAYER ? layer_cols : node_cols;
    int rc = CLI_OK;
    const int nc = opts->view == BY_OP ? (int) (sizeof(op_cols) / sizeof(op_cols[0]))
                 : opts->view == BY_LAYER ? (int) (sizeof(layer_cols) / sizeof(layer_cols[0]))
                 : (int) (sizeof(node_cols) / sizeof(node_cols[0]));
    out_begin(o, "rows", NULL, cols, nc, OUT_SPLIT_FIRST);
    int64_t shown[LLT_PHASE_COUNT + 1] = { 0 };
    for (int32_t i = 0; i < gs.n && rc == CLI_OK; i++) {
        const struct llt_analysis_group * g = &gs.g[i];
        if (opts->top && shown[g->phase]++ >= opts->top) continue;
        struct out_val v[16];
        int c = 0;
        v[c++] = out_text(llt_phase_name(g->phase));
        if (opts->view == BY_NODE) {
            v[c++] = out_int(g->idx);
            v[c++] = out_text(g->key);
            v[c++] = out_text(g->op);
            v[c++] = out_int(g->layer);
        } else {
            v[c++] = out_text(g->key);
        }
        v[c++] = num(g->est_ns);
        v[c++] = num(g->share);
        if (opts->view != BY_NODE) v[c++] = out_int(g->instances);
        v[c++] = out_int(g->samples);
        if (opts->view == BY_LAYER) {
            v[c++] = g->gap_samples ? out_real(g->gap_ns) : out_null();
            v[c++] = out_int(g->gap_samples);
        }
        v[c++] = num(g->mean_ns);
        v[c++] = num(g->median_ns);
        v[c++] = num(g->p90_ns);
        // by node: per run; else over all runs
        const double per = opts->view == BY_NODE ? (double) g->instances : 1;
        v[c++] = out_real(g->bytes / per);
        v[c++] = out_real(g->flops / per);
        v[c++] = num(ratio(g->bytes_timed, g->time_ns));
        v[c++] = num(ratio(g->flops_timed, g->time_ns));
        rc = out_row(o, v);
    }
    if (rc == CLI_OK) rc = out_end(o);
    llt_analysis_groups_free(&gs);
    return rc;
}

static int write_phases(struct out * o, const struct llt_analysis * a) {
    int rc = out_begin(o, "rows", NULL, OUT_COLS(phase_cols), OUT_SPLIT_FIRST);
    for (int ph = 0; ph < LLT_PHASE_COUNT && rc == CLI_OK; ph++) {
        struct llt_analysis_part parts[LLT_PART_COUNT];
        llt_analysis_parts(a, (enum llt_phase) ph, parts);
        if (parts[LLT_PART_TOTAL].steps == 0) continue;
        for (int k = 0; k < LLT_PART_COUNT && rc == CLI_OK; k++) {
            const struct llt_analysis_part * p = &parts[k];
            const bool any = p->steps > 0;
            const struct out_val v[] = {
                out_text(llt_phase_name((enum llt_phase) ph)), out_text(llt_part_name((enum llt_part) k)),
                any ? out_real((double) p->time_ns) : out_null(),
                any ? num(ratio((double) p->time_ns, (double) p->tokens)) : out_null(),
                any ? num(100.0 * ratio((double) p->time_ns, (double) parts[LLT_PART_TOTAL].time_ns)) : out_null(),
                any ? out_int(p->steps) : out_null(),
            };
            rc = out_row(o, v);
        }
    }
    return rc == CLI_OK ? out_end(o) : rc;
}

static int write_steps(struct out * o, const struct llt_analysis * a) {
    int rc = out_begin(o, "rows", NULL, OUT_COLS(step_cols), 0);
    for (int64_t i = 0; i < llt_analysis_n_steps(a) && rc == CLI_OK; i++) {
        const struct llt_analysis_step * s = llt_analysis_step(a, i);
        const struct out_val v[] = {
            out_int(s->step), out_text(llt_phase_name(s->phase)), out_int(s->n_tokens), out_int(s->wall_ns),
            out_int(s->compute_ns), out_int(s->node_ns), out_int(s->node_samples),
            known(s->parts_ns[LLT_PART_EMBED]), known(s->parts_ns[LLT_PART_LAYERS]), known(s->parts_ns[LLT_PART_LOGITS]),
            known(s->parts_ns[LLT_PART_SAMPLING]), known(s->parts_ns[LLT_PART_OVERHEAD]),
            out_int((int64_t) (s->bytes_read_weights + s->bytes_read_acts)), out_int((int64_t) s->bytes_written),
            num(s->bytes_read_per_token), out_int((int64_t) s->flops),
        };
        rc = out_row(o, v);
    }
    return rc == CLI_OK ? out_end(o) : rc;
}

static const struct out_col expert_cols[] = {
    { "layer", OUT_INT, OUT_ALL }, { "expert", OUT_INT, OUT_ALL }, { "tokens", OUT_INT, OUT_ALL },
    { "steps", OUT_INT, OUT_ALL }, { "time_us", OUT_TIME, OUT_ALL }, { "share", OUT_PCT, OUT_ALL },
    { "samples", OUT_INT, OUT_ALL },
};

static int cmp_expert_time(const void * x, const void * y) {
    const double a = (*(const struct llt_analysis_expert * const *) x)->time_ns;
    const double b = (*(const struct llt_analysis_expert * const *) y)->time_ns;
    return (a < b) - (a > b);
}

// per MoE layer and expert (--top: the slowest); share: of the experts' time
static int write_experts(struct out * o, const struct llt_analysis * a, const struct prof_opts * opts) {
    const int32_t n = llt_analysis_n_experts(a);
    const struct llt_analysis_expert ** e = malloc(((size_t) n + 1) * sizeof(*e));
    if (!e) {
        cli_error("out of memory");
        return CLI_FAIL;
    }
    double total = 0;
    for (int32_t i = 0; i < n; i++) {
        e[i] = llt_analysis_expert(a, i);
        total += e[i]->time_ns;
    }
    if (opts->top) qsort(e, (size_t) n, sizeof(*e), cmp_expert_time);
    if (n == 0) out_note(o, "no expert routing: not a Mixture-of-Experts model");
    int rc = out_begin(o, "rows", NULL, OUT_COLS(expert_cols), 0);
    for (int32_t i = 0; i < n && rc == CLI_OK && (!opts->top || i < opts->top); i++) {
        const struct out_val v[] = {
            out_int(e[i]->layer), out_int(e[i]->expert), out_int(e[i]->choices), out_int(e[i]->steps),
            out_real(e[i]->time_ns), num(100.0 * ratio(e[i]->time_ns, total)), out_int(e[i]->samples),
        };
        rc = out_row(o, v);
    }
    free(e);
    return rc == CLI_OK ? out_end(o) : rc;
}

static int write_run(struct out * o, const struct llt_analysis * a, const struct prof_opts * opts) {
    const struct llt_analysis_run * r = llt_analysis_run(a);
    const double coverage = 100.0 * ratio((double) r->samples, (double) r->instances);
    out_note(o, "run %lld (%s %s), level %s%s: %lld steps%s, %lld node timings of %lld computing nodes run (%.1f%%)",
             (long long) r->id, r->model, r->file_type, r->level, r->running ? ", status running" : "",
             (long long) r->n_steps, r->running ? " so far" : "", (long long) r->samples, (long long) r->instances,
             isnan(coverage) ? 0.0 : coverage);
    const double prompt_tps = llt_speed(r->n_prompt, r->t_prompt_ns), gen_tps = llt_speed(r->n_gen, r->t_gen_ns);
    if (!isnan(prompt_tps) || !isnan(gen_tps)) {
        char ps[64] = "-", gs[64] = "-";
        if (!isnan(prompt_tps)) snprintf(ps, sizeof(ps), "%.1f tok/s", prompt_tps);
        if (!isnan(gen_tps)) snprintf(gs, sizeof(gs), "%.1f tok/s", gen_tps);
        out_note(o, "speed: prompt %s (%lld tokens), generation %s (%lld tokens; decode calls and sampling, docs/trace-format.md)",
                 ps, (long long) r->n_prompt, gs, (long long) r->n_gen);
    }
    if (r->values_read && r->n_timed_steps > 0) out_note(o, "note: %s", LLT_VALUES_READ_NOTE);
    if (r->running && r->n_timed_steps == 0) {
        out_note(o, "status running: no step has node times yet");
    } else if (r->samples < r->instances) {
        out_note(o, "sampled: times are estimated from the timed nodes; 'samples' counts the timings behind each figure");
    }
    out_note(o, "bytes and FLOPs: the cost model (docs/trace-format.md), attention over the n_kv cache positions each step attends to");
    if (r->fused > 0) {
        out_note(o, "fused: %d MUL node(s) per step computed in one pass with the RMS_NORM before them; the norm's time is the pair's",
                 r->fused);
    }
    char model[192];
    snprintf(model, sizeof(model), "%s %s", r->model, r->file_type);
    int rc = out_begin(o, "run", NULL, OUT_COLS(run_cols), OUT_RECORD);
    const struct out_val v[] = {
        out_text(opts->trace), out_int(r->id), out_text(model), out_text(r->level), out_text(r->status),
        out_int(r->n_steps), out_int(r->n_timed_steps), out_int(r->samples), out_int(r->instances), out_int(r->fused),
        out_text(view_names[opts->view]),
    };
    if (rc == CLI_OK) rc = out_row(o, v);
    return rc == CLI_OK ? out_end(o) : rc;
}

static const struct out_col device_cols[] = {
    { "device", OUT_TEXT, OUT_ALL }, { "calls", OUT_INT, OUT_ALL }, { "splits", OUT_INT, OUT_ALL },
    { "inputs", OUT_INT, OUT_ALL }, { "input_bytes", OUT_BYTES, OUT_ALL }, { "split_us", OUT_TIME, OUT_ALL },
    { "inputs_us", OUT_TIME, OUT_ALL }, { "timed_splits", OUT_INT, OUT_ALL }, { "node_us", OUT_TIME, OUT_ALL },
    { "timed_nodes", OUT_INT, OUT_ALL }, { "measured", OUT_TEXT, OUT_ALL },
};

// the value of column col in a row of t
static struct llt_value cell(const struct llt_table_rows * t, int64_t r, const char * col) {
    for (int32_t c = 0; c < t->n_cols; c++) if (strcmp(t->cols[c], col) == 0) return t->values[r * t->n_cols + c];
    return (struct llt_value) { .type = LLT_VALUE_NULL };
}

static struct out_val int_or_null(struct llt_value v) {
    return v.type == LLT_VALUE_NULL ? out_null() : out_int(v.i);
}

// per device: what ran there, what was copied into it, and the times measured there
static int write_devices(struct out * o, struct llt_store * st, const struct llt_analysis * a) {
    struct llt_table_filter f = llt_table_default_filter();
    f.run = llt_analysis_run(a)->id;
    struct llt_table_rows * t = NULL;
    if (llt_read_table(st, LLT_TABLE_DEVICES, &f, &t) != LLT_OK) {
        cli_error("%s", llt_last_error());
        return CLI_FAIL;
    }
    out_note(o, "split_us: a split's computation, from the ask of its first node to the post call of its last, "
                "observed (the scheduler synchronises the device there anyway): one round trip per split");
    out_note(o, "inputs_us: from the previous split's end to that ask: the scheduler's copies of the split's inputs");
    out_note(o, "node_us: node times, from the CPU's per-node stamps, or each node observed (--time-nodes: a compute "
                "call and a round trip to the device per node)");
    int rc = out_begin(o, "rows", NULL, OUT_COLS(device_cols), 0);
    for (int64_t r = 0; r < t->n_rows && rc == CLI_OK; r++) {
        const bool splits = cell(t, r, "timed_splits").i > 0, nodes = cell(t, r, "timed_nodes").i > 0;
        const struct llt_value dev = cell(t, r, "device");
        const struct out_val v[] = {
            out_text(dev.s && *dev.s ? dev.s : "?"), int_or_null(cell(t, r, "calls")), int_or_null(cell(t, r, "splits")),
            int_or_null(cell(t, r, "inputs")), int_or_null(cell(t, r, "input_bytes")), int_or_null(cell(t, r, "split_ns")),
            int_or_null(cell(t, r, "inputs_ns")), int_or_null(cell(t, r, "timed_splits")), int_or_null(cell(t, r, "node_ns")),
            int_or_null(cell(t, r, "timed_nodes")),
            out_text(splits && nodes ? "splits and nodes" : splits ? "splits: last node observed"
                     : nodes ? "nodes" : "not timed"),
        };
        rc = out_row(o, v);
    }
    if (rc == CLI_OK) rc = out_end(o);
    llt_table_rows_free(t);
    return rc;
}

// ---- the command -------------------------------------------------------------------------

int cmd_profile(int argc, char ** argv) {
    struct prof_opts opts = { 0 };
    int rc = parse_opts(argc, argv, &opts);
    if (rc != CLI_OK) return rc < 0 ? CLI_OK : rc;

    struct llt_store * st = NULL;
    struct llt_analysis * a = NULL;
    struct out * o = NULL;
    if (cli_open_trace(opts.trace, LLT_STORE_READ, &st) != LLT_OK) {
        cli_error("%s", llt_last_error());
        rc = CLI_USAGE;
        goto done;
    }
    struct llt_read_run run;
    if (opts.seq >= 0 && (llt_read_run(st, opts.run, &run) != LLT_OK || llt_read_check_sel(st, run.id, -1, (int32_t) opts.seq) != LLT_OK)) {
        cli_error("profile: %s", llt_last_error());
        rc = CLI_USAGE;
        goto done;
    }
    struct llt_analysis_params params = llt_analysis_default_params();
    params.run = opts.run;
    params.seq = (int32_t) opts.seq;
    if (llt_analysis_load(st, &params, &a) != LLT_OK) {
        cli_error("%s", llt_last_error());
        rc = CLI_USAGE;
        goto done;
    }
    const struct llt_analysis_run * r = llt_analysis_run(a);
    const bool timed_level = strcmp(r->level, "timing") == 0 || strcmp(r->level, "profile") == 0;
    if (r->n_timed_steps == 0 && !(timed_level && r->running) && opts.view != BY_DEVICE) {
        cli_error("profile: run %lld of trace '%s' has no node times (level %s); re-run with "
                  "'lltrace run --level timing' (every node) or '--level profile' (sampled)%s",
                  (long long) r->id, opts.trace, r->level,
                  timed_level ? "; off the CPU its splits were timed: see --by device" : "");
        rc = CLI_FAIL;
        goto done;
    }
    if (!(o = out_open(stdout, opts.format))) {
        cli_error("out of memory");
        rc = CLI_FAIL;
        goto done;
    }
    rc = write_run(o, a, &opts);
    if (rc == CLI_OK) {
        rc = opts.view == BY_PHASE ? write_phases(o, a) : opts.view == BY_STEP ? write_steps(o, a)
           : opts.view == BY_EXPERT ? write_experts(o, a, &opts)
           : opts.view == BY_DEVICE ? write_devices(o, st, a) : write_groups(o, a, &opts);
    }
done:
    if (o) {
        const int close_rc = out_close(o);
        if (rc == CLI_OK) rc = close_rc;
    }
    llt_analysis_free(a);
    llt_store_close(st);
    return rc;
}
