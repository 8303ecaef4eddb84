// The data of a run's report: one JSON object the page renders (docs/report.md).
//
// Everything is computed here, in the library, from the read functions and the analysis
// layer, so the page's figures are `show`'s and `profile`'s; the page only draws. A section
// the trace cannot fill is null, and "missing" says which `lltrace run` option gives it.
// Long runs stay small: per-step series are decimated to max_steps, dumped values cut at
// max_values, tokens and candidates to the last max_tokens, and the data says what was left
// out.
#include "report/report.h"

#include "gguf.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct llt_report_params llt_report_default_params(void) {
    return (struct llt_report_params) { .run = 0, .graph_step = -1, .lens_k = 5, .max_steps = 2000, .max_values = 400000, .max_tokens = 0,
                                        .vs = NULL, .vs_run = 0, .bandwidth_gbs = 0 };
}

// ---- this machine's memory bandwidth -----------------------------------------------------

double llt_report_measure_bandwidth(void) {
    enum { BYTES = 64 << 20, REPS = 4 };
    char * a = malloc(BYTES), * b = malloc(BYTES);
    double best = 0;
    if (a && b) {
        memset(a, 1, BYTES); // every page touched before the clock starts
        memset(b, 2, BYTES);
        for (int r = 0; r < REPS; r++) {
            const int64_t t0 = llt_now_ns();
            memcpy(r % 2 ? a : b, r % 2 ? b : a, BYTES);
            const int64_t dt = llt_now_ns() - t0;
            // bytes read and written, as the cost model counts an op's bytes
            if (dt > 0 && 2.0 * BYTES / dt > best) best = 2.0 * BYTES / dt;
        }
    }
    free(a);
    free(b);
    return best;
}

// a table as {"cols":[...],"rows":[[...],...]}: columns holding JSON text written raw
static void write_table(FILE * f, const struct llt_table_rows * t) {
    fputs("{\"cols\":[", f);
    for (int32_t c = 0; c < t->n_cols; c++) {
        if (c) fputc(',', f);
        llt_json_write_string(f, t->cols[c]);
    }
    fputs("],\"rows\":[", f);
    for (int64_t r = 0; r < t->n_rows; r++) {
        fputs(r ? ",[" : "[", f);
        for (int32_t c = 0; c < t->n_cols; c++) {
            if (c) fputc(',', f);
            const char * col = t->cols[c];
            llt_rj_value(f, &t->values[r * t->n_cols + c], strcmp(col, "params") == 0 || strstr(col, "_json") != NULL);
        }
        fputc(']', f);
    }
    fputs("]}", f);
}

static const struct llt_value * col(const struct llt_table_rows * t, const char * name) {
    for (int32_t c = 0; c < t->n_cols; c++) {
        if (strcmp(t->cols[c], name) == 0 && t->n_rows > 0) return &t->values[c];
    }
    return NULL;
}

static const char * col_text(const struct llt_table_rows * t, const char * name) {
    const struct llt_value * v = col(t, name);
    return v && v->type == LLT_VALUE_TEXT ? v->s : NULL;
}

// ---- the run and its tokens --------------------------------------------------------------

// the tokens from index first on, at most max (0: all), counting them all in n
struct token_writer {
    FILE *  f;
    int64_t first, max;
    int64_t n, written;
};

static int on_token(const struct llt_read_token * r, void * user_data) {
    struct token_writer * w = user_data;
    FILE * f = w->f;
    if (w->n++ < w->first || (w->max > 0 && w->written == w->max)) return 0;
    // [seq, prompt (1) or generated (0), step, pos, token, piece]
    fprintf(f, "%s[%lld,%d,%lld,%lld,%lld,", w->written++ ? "," : "", (long long) r->seq, r->prompt ? 1 : 0,
            (long long) r->step, (long long) r->pos, (long long) r->token);
    llt_json_write_string(f, r->piece ? r->piece : "");
    fputc(']', f);
    return 0;
}

static int count_token(const struct llt_read_token * r, void * user_data) {
    (void) r;
    ++*(int64_t *) user_data;
    return 0;
}

// "tokens": the last max of the run (0: all), in order; "tokens_total" and "tokens_first" say
// which they are. Two passes, so that only the tokens written are ever held.
static int write_tokens(FILE * f, struct llt_store * st, int64_t run, int64_t max) {
    struct llt_read_sel sel = { .run = run, .step = -1 };
    int64_t n = 0;
    int rc = max > 0 ? llt_read_tokens(st, &sel, count_token, &n) : LLT_OK;
    if (rc != LLT_OK) return rc;
    struct token_writer tw = { .f = f, .first = n > max ? n - max : 0, .max = max };
    fputs("\"tokens\":[", f);
    if ((rc = llt_read_tokens(st, &sel, on_token, &tw)) != LLT_OK) return rc;
    // (tokens written between the passes count in the total: the window then ends before it)
    fprintf(f, "],\"tokens_total\":%lld,\"tokens_first\":%lld", (long long) tw.n, (long long) tw.first);
    return LLT_OK;
}

// the top-k candidates of each generated token, from the parity records: probabilities and
// entropy of the softmax over the k logits kept; "candidates_total" and "candidates_first" say
// which of the run's the last max (0: all) are
static int write_candidates(FILE * f, struct llt_store * st, int64_t run, int64_t max, uint8_t * want, int32_t n_vocab,
                            bool * have) {
    struct llt_parity_step * ps = NULL;
    int32_t n = 0;
    int rc = llt_parity_read_trace(st, (int) run, &ps, &n);
    if (rc == LLT_ENOTFOUND) n = 0; // a run without --parity
    else if (rc != LLT_OK) return rc;
    *have = n > 0;
    const int32_t first = max > 0 && n > max ? (int32_t) (n - max) : 0;
    if (n == 0) fputs("\"candidates\":null", f);
    else fputs("\"candidates\":[", f);
    for (int32_t i = first; i < n; i++) {
        const struct llt_parity_step * s = &ps[i];
        double sum = 0, ent = 0;
        for (int j = 0; j < s->k; j++) sum += exp((double) s->logits[j] - s->logits[0]);
        for (int j = 0; j < s->k; j++) {
            double p = exp((double) s->logits[j] - s->logits[0]) / sum;
            if (p > 0) ent -= p * log(p);
        }
        // [step, pos, token, entropy, [[id, logit, probability], ...]]
        fprintf(f, "%s[%d,%d,%d,", i > first ? "," : "", s->step, s->pos, s->token);
        llt_rj_num(f, ent);
        fputs(",[", f);
        for (int j = 0; j < s->k; j++) {
            fprintf(f, "%s[%d,", j ? "," : "", s->ids[j]);
            llt_rj_num(f, s->logits[j]);
            fputc(',', f);
            llt_rj_num(f, exp((double) s->logits[j] - s->logits[0]) / sum);
            fputc(']', f);
            llt_report_mark(want, n_vocab, s->ids[j]);
        }
        fputs("]]", f);
    }
    fprintf(f, "%s,\"candidates_total\":%d,\"candidates_first\":%d", n ? "]" : "", n, first);
    free(ps);
    return LLT_OK;
}

// ---- steps and time ----------------------------------------------------------------------

static void write_steps(FILE * f, const struct llt_analysis * a, int64_t max_steps) {
    const int64_t n = llt_analysis_n_steps(a);
    const int64_t stride = n > max_steps && max_steps > 0 ? (n + max_steps - 1) / max_steps : 1;
    fprintf(f, "\"steps\":{\"n\":%lld,\"stride\":%lld,\"cols\":[\"step\",\"phase\",\"pos0\",\"n_tokens\",\"wall_ns\","
               "\"compute_ns\",\"weights_bytes\",\"acts_bytes\",\"written_bytes\",\"flops\"],\"rows\":[",
            (long long) n, (long long) stride);
    for (int64_t i = 0; i < n; i += stride) {
        const struct llt_analysis_step * s = llt_analysis_step(a, i);
        fprintf(f, "%s[%lld,\"%s\",%lld,%lld,%lld,%lld,%llu,%llu,%llu,%llu]", i ? "," : "", (long long) s->step,
                llt_phase_name(s->phase), (long long) s->pos0, (long long) s->n_tokens, (long long) s->wall_ns,
                (long long) s->compute_ns, (unsigned long long) s->bytes_read_weights,
                (unsigned long long) s->bytes_read_acts, (unsigned long long) s->bytes_written, (unsigned long long) s->flops);
    }
    fputs("]}", f);
}

static int write_groups(FILE * f, const char * name, const struct llt_analysis * a, enum llt_analysis_by by,
                        bool by_phase, int32_t limit) {
    struct llt_analysis_groups gs;
    int rc = llt_analysis_group(a, by, by_phase, &gs);
    if (rc != LLT_OK) return rc;
    fprintf(f, "\"%s\":[", name);
    for (int32_t i = 0, n = 0; i < gs.n && n < limit; i++, n++) {
        const struct llt_analysis_group * g = &gs.g[i];
        fprintf(f, "%s{\"phase\":\"%s\",\"key\":", n ? "," : "", g->phase == LLT_PHASE_COUNT ? "all" : llt_phase_name(g->phase));
        llt_json_write_string(f, g->key);
        fputs(",\"op\":", f);
        llt_json_write_string(f, g->op);
        fprintf(f, ",\"idx\":%d,\"layer\":%d,\"instances\":%lld,\"samples\":%lld", g->idx, g->layer,
                (long long) g->instances, (long long) g->samples);
        const struct { const char * k; double v; } nums[] = {
            { "time_ns", g->time_ns }, { "est_ns", g->est_ns }, { "share", g->share }, { "mean_ns", g->mean_ns },
            { "median_ns", g->median_ns }, { "p90_ns", g->p90_ns }, { "bytes", g->bytes }, { "flops", g->flops },
            { "bytes_timed", g->bytes_timed }, { "flops_timed", g->flops_timed }, { "gap_ns", g->gap_ns },
        };
        for (size_t j = 0; j < sizeof(nums) / sizeof(nums[0]); j++) {
            fprintf(f, ",\"%s\":", nums[j].k);
            llt_rj_num(f, nums[j].v);
        }
        fputc('}', f);
    }
    fputc(']', f);
    llt_analysis_groups_free(&gs);
    return LLT_OK;
}

static int write_time(FILE * f, const struct llt_analysis * a, double bandwidth_gbs) {
    const struct llt_analysis_run * r = llt_analysis_run(a);
    if (r->n_timed_steps == 0) { fputs("\"time\":null", f); return LLT_OK; }
    fprintf(f, "\"time\":{\"timed_steps\":%lld,\"samples\":%lld,\"instances\":%lld,\"values_read\":%s,\"bandwidth_gbs\":",
            (long long) r->n_timed_steps, (long long) r->samples, (long long) r->instances,
            r->values_read ? "true" : "false");
    llt_rj_num(f, bandwidth_gbs > 0 ? bandwidth_gbs : NAN);
    fputs(",\"parts\":{", f);
    for (int ph = 0; ph < LLT_PHASE_COUNT; ph++) {
        struct llt_analysis_part parts[LLT_PART_COUNT];
        llt_analysis_parts(a, (enum llt_phase) ph, parts);
        fprintf(f, "%s\"%s\":[", ph ? "," : "", llt_phase_name((enum llt_phase) ph));
        for (int k = 0; k < LLT_PART_COUNT; k++) {
            fprintf(f, "%s[\"%s\",%lld,%lld,%lld]", k ? "," : "", llt_part_name((enum llt_part) k),
                    (long long) parts[k].time_ns, (long long) parts[k].tokens, (long long) parts[k].steps);
        }
        fputc(']', f);
    }
    fputs("},", f);
    int rc = write_groups(f, "ops", a, LLT_ANALYSIS_BY_OP, true, 1000);
    if (rc == LLT_OK) { fputc(',', f); rc = write_groups(f, "layers", a, LLT_ANALYSIS_BY_LAYER, true, 10000); }
    if (rc == LLT_OK) { fputc(',', f); rc = write_groups(f, "nodes", a, LLT_ANALYSIS_BY_NODE, false, INT32_MAX); }
    fputc('}', f);
    return rc;
}

// ---- the vocabulary's pieces for the ids the page names ----------------------------------

static void write_vocab(FILE * f, const char * model_path, const uint8_t * want, int32_t n_vocab) {
    struct gguf_init_params ip = { .no_alloc = true, .ctx = NULL };
    struct gguf_context * g = model_path && llt_input_check(model_path, "model") == LLT_OK ? gguf_init_from_file(model_path, ip) : NULL;
    int64_t id = g ? gguf_find_key(g, "tokenizer.ggml.tokens") : -1;
    if (id < 0 || gguf_get_arr_type(g, id) != GGUF_TYPE_STRING) {
        fputs("\"vocab\":null", f);
        gguf_free(g);
        return;
    }
    const int64_t n = (int64_t) gguf_get_arr_n(g, id);
    fputs("\"vocab\":{", f);
    bool first = true;
    for (int64_t t = 0; t < n && t < n_vocab; t++) {
        if (!(want[t / 8] & (1u << (t % 8)))) continue;
        fprintf(f, "%s\"%lld\":", first ? "" : ",", (long long) t);
        llt_json_write_string(f, gguf_get_arr_str(g, id, (size_t) t));
        first = false;
    }
    fputc('}', f);
    gguf_free(g);
}

// ---- the whole object --------------------------------------------------------------------

// ---- the experts a Mixture of Experts read ------------------------------------------------

#define MAX_EXPERT_ROWS 200000 // (step, layer, expert) rows on the page at most: a long run is cut

// per (step, layer): how many of the step's tokens each expert took, from the routing rows
// (which come ordered by step, layer)
struct expert_writer {
    FILE *    f;
    int64_t   step;
    int32_t   layer;
    int32_t * count;  // by expert
    int32_t   cap;
    int64_t   n_rows;
    bool      cut;
};

static void flush_experts(struct expert_writer * w) {
    for (int32_t e = 0; e < w->cap; e++) {
        if (!w->count[e]) continue;
        if (w->n_rows == MAX_EXPERT_ROWS) { w->cut = true; break; }
        fprintf(w->f, "%s[%lld,%d,%d,%d]", w->n_rows++ ? "," : "", (long long) w->step, w->layer, e, w->count[e]);
        w->count[e] = 0;
    }
}

static int on_route(const struct llt_read_route * r, void * user_data) {
    struct expert_writer * w = user_data;
    if (r->expert < 0 || r->expert > 65535) return LLT_OK;
    if (r->step != w->step || r->layer != w->layer) {
        flush_experts(w);
        w->step = r->step;
        w->layer = r->layer;
    }
    const int32_t had = w->cap;
    if (r->expert >= w->cap) {
        if (!llt_grow((void **) &w->count, &w->cap, r->expert + 1, sizeof(int32_t))) return llt_set_error(LLT_ENOMEM, "report: out of memory");
        memset(w->count + had, 0, (size_t) (w->cap - had) * sizeof(int32_t));
    }
    w->count[r->expert]++;
    return LLT_OK;
}

// "experts": {"cols": [...], "rows": [[step, layer, expert, tokens], ...], "cut": bool}; no rows
// for a model without experts
static int write_experts(FILE * f, struct llt_store * st, int64_t run_id, int64_t from_step) {
    struct expert_writer w = { .f = f, .step = -1, .layer = -1 };
    const struct llt_read_sel sel = { .run = run_id, .step = -1, .from_step = from_step };
    fputs("\"experts\":{\"cols\":[\"step\",\"layer\",\"expert\",\"tokens\"],\"rows\":[", f);
    int rc = llt_read_routes(st, &sel, on_route, &w);
    if (rc == LLT_OK && w.count) flush_experts(&w);
    fprintf(f, "],\"cut\":%s}", w.cut ? "true" : "false");
    free(w.count);
    return rc;
}

#define MAX_RUN_TEXT 65536 // bytes of the run's prompt and output kept under a max_tokens window

// the last n bytes of s at most, from the start of a UTF-8 character
static const char * text_tail(const char * s, size_t n) {
    const char * t = s + strlen(s) - n;
    while (((unsigned char) *t & 0xC0) == 0x80) t++;
    return t;
}

int llt_report_write_data(struct llt_store * st, const struct llt_report_params * p, FILE * f) {
    struct llt_table_filter filt = llt_table_default_filter();
    filt.run = p->run;
    struct llt_table_rows * run = NULL, * nodes = NULL, * weights = NULL;
    struct llt_analysis * a = NULL;
    struct llt_tensor_set * dump = NULL;
    uint8_t * want = NULL;
    int rc = llt_read_table(st, LLT_TABLE_RUN, &filt, &run);
    if (rc == LLT_OK && run->n_rows == 0) rc = llt_set_error(LLT_ENOTFOUND, "trace '%s' has no run %lld", llt_store_path(st), (long long) p->run);
    if (rc != LLT_OK) goto done;
    const int64_t run_id = col(run, "run")->i;
    const struct llt_value * nv = col(run, "n_vocab");
    const int32_t n_vocab = nv && nv->type == LLT_VALUE_INT && nv->i > 0 && nv->i < (1 << 24) ? (int32_t) nv->i : 0;
    want = calloc((size_t) n_vocab / 8 + 1, 1);
    if (!want) { rc = llt_set_error(LLT_ENOMEM, "report: out of memory"); goto done; }
    const char * model_path = col_text(run, "model_path"), * dump_path = col_text(run, "dump_path");
    const char * status = col_text(run, "status");
    filt.run = run_id;

    fputs("{\"format\":\"lltrace-report\",\"version\":1,\"run\":", f);
    for (int32_t c = 0; c < run->n_cols; c++) {
        fprintf(f, "%s", c ? "," : "{");
        llt_json_write_string(f, run->cols[c]);
        fputc(':', f);
        const struct llt_value * v = &run->values[c];
        if (p->max_tokens > 0 && v->type == LLT_VALUE_TEXT && strlen(v->s) > MAX_RUN_TEXT) {
            llt_json_write_string(f, text_tail(v->s, MAX_RUN_TEXT)); // the prompt or output of a long run
        } else {
            llt_rj_value(f, v, strcmp(run->cols[c], "params") == 0 || strcmp(run->cols[c], "interventions") == 0);
        }
    }
    fprintf(f, "},\"running\":%s,", status && strcmp(status, "running") == 0 ? "true" : "false");
    if ((rc = write_tokens(f, st, run_id, p->max_tokens)) != LLT_OK) goto done;
    fputc(',', f);
    bool have_cand = false;
    if ((rc = write_candidates(f, st, run_id, p->max_tokens, want, n_vocab, &have_cand)) != LLT_OK) goto done;

    // under a window (serve), the steps analysed are the window's too: what is read, held and
    // sent stays bounded however long the run (about a token a step); "steps_first" says where
    // the window begins
    struct llt_analysis_params ap = llt_analysis_default_params();
    ap.run = run_id;
    struct llt_read_run rr;
    if (p->max_tokens > 0 && llt_read_run(st, run_id, &rr) == LLT_OK && rr.n_steps > p->max_tokens) {
        ap.from_step = rr.n_steps - p->max_tokens;
    }
    if ((rc = llt_analysis_load(st, &ap, &a)) != LLT_OK) goto done;
    fprintf(f, ",\"steps_first\":%lld", (long long) ap.from_step);
    fputc(',', f);
    write_steps(f, a, p->max_steps);
    fputc(',', f);
    if ((rc = write_time(f, a, p->bandwidth_gbs)) != LLT_OK) goto done;

    // the graph of one step: the first generated one unless asked
    int64_t gstep = p->graph_step;
    for (int64_t i = 0; gstep < 0 && i < llt_analysis_n_steps(a); i++) {
        if (llt_analysis_step(a, i)->phase == LLT_PHASE_GEN) gstep = llt_analysis_step(a, i)->step;
    }
    if (gstep < 0) gstep = 0;
    filt.step = gstep;
    if ((rc = llt_read_table(st, LLT_TABLE_NODES, &filt, &nodes)) != LLT_OK) goto done;
    fprintf(f, ",\"graph\":");
    if (nodes->n_rows == 0) fputs("null", f);
    else {
        fprintf(f, "{\"step\":%lld,\"nodes\":", (long long) gstep);
        write_table(f, nodes);
        fputc('}', f);
    }
    filt.step = -1;
    if ((rc = llt_read_table(st, LLT_TABLE_WEIGHTS, &filt, &weights)) != LLT_OK) goto done;
    fputs(",\"weights\":", f);
    write_table(f, weights);
    fputc(',', f);
    if ((rc = write_experts(f, st, run_id, ap.from_step)) != LLT_OK) goto done;

    // the values: the dump and the model
    char dump_problem[512] = ""; // a copy: later calls replace llt_last_error()'s message
    if (!dump_path) snprintf(dump_problem, sizeof(dump_problem), "the run dumped nothing: run with --checkpoints");
    else if (llt_tensor_set_open(dump_path, &dump) != LLT_OK) snprintf(dump_problem, sizeof(dump_problem), "%s", llt_last_error());
    char lens_problem[512] = "";
    fputc(',', f);
    if ((rc = llt_report_attention(f, dump, p->max_values)) != LLT_OK) goto done;
    fputc(',', f);
    if ((rc = llt_report_residual(f, dump, p->max_values)) != LLT_OK) goto done;
    fputc(',', f);
    if (dump && p->lens_k > 0 && model_path) {
        if (llt_report_lens(f, model_path, dump_path, p->lens_k, want, n_vocab) != LLT_OK) {
            snprintf(lens_problem, sizeof(lens_problem), "%s", llt_last_error());
            fputs("\"lens\":null", f);
        }
    } else {
        fputs("\"lens\":null", f);
    }
    fputc(',', f);
    if (p->vs) {
        if ((rc = llt_report_compare(f, st, run, p->vs, p->vs_run, want, n_vocab)) != LLT_OK) goto done;
    } else if ((rc = llt_report_live_diffs(f, st, run, a)) != LLT_OK) {
        goto done;
    }
    fputc(',', f);
    char causal_problem[512] = "";
    if ((rc = llt_report_causal(f, st, run_id, causal_problem, sizeof(causal_problem))) != LLT_OK) goto done;
    fputc(',', f);
    write_vocab(f, model_path, want, n_vocab);

    // what is missing and how to get it
    fputs(",\"missing\":{", f);
    fputs("\"candidates\":", f);
    llt_json_write_string(f, have_cand ? "" : "no parity records: run with --parity FILE");
    fputs(",\"time\":", f);
    llt_json_write_string(f, llt_analysis_run(a)->n_timed_steps ? "" : "no node times: run with --level timing (or profile)");
    fputs(",\"values\":", f);
    llt_json_write_string(f, dump_problem);
    fputs(",\"lens\":", f);
    llt_json_write_string(f, dump_problem[0] ? dump_problem : lens_problem);
    fputs(",\"comparison\":", f);
    llt_json_write_string(f, "no second run: lltrace report A.db --vs B.db (or --vs-run ID for two runs of one trace), or a run with --reference");
    fputs(",\"causal\":", f);
    llt_json_write_string(f, causal_problem);
    fputs("}}\n", f);
    if (ferror(f)) rc = llt_set_error(LLT_EIO, "report: cannot write the data");
done:
    llt_tensor_set_close(dump);
    llt_analysis_free(a);
    llt_table_rows_free(weights);
    llt_table_rows_free(nodes);
    llt_table_rows_free(run);
    free(want);
    return rc;
}
