// The report's comparison of two runs (another quantization, another prompt, another build):
// token by token from both runs' parity records (llt_parity_compare, the rules of `lltrace
// parity`), tensor by tensor from both runs' dumps (llt_set_diff, the metrics of `lltrace
// diff`), so the page shows the figures those commands print.
#include "report/report.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void put_num(FILE * f, const char * k, double v) {
    fprintf(f, ",\"%s\":", k);
    llt_rj_num(f, v);
}

static int write_parity(FILE * f, struct llt_store * a, int64_t run_a, struct llt_store * b, int64_t run_b,
                        uint8_t * want, int32_t n_vocab, char * why, size_t size) {
    struct llt_parity_step * pa = NULL, * pb = NULL;
    int32_t na = 0, nb = 0;
    struct llt_parity_report r = {0};
    int rc = llt_parity_read_trace(a, (int) run_a, &pa, &na);
    if (rc == LLT_OK) rc = llt_parity_read_trace(b, (int) run_b, &pb, &nb);
    if (rc == LLT_OK) rc = llt_parity_compare(pa, na, pb, nb, 0, &r);
    if (rc != LLT_OK) {
        // no parity records on a side: the token view says so, the tensor view may still come
        snprintf(why, size, "%s (run both with --parity FILE)", llt_last_error());
        fputs("\"parity\":null", f);
        rc = rc == LLT_ENOTFOUND ? LLT_OK : rc;
        goto done;
    }
    fprintf(f, "\"parity\":{\"verdict\":\"%s\",\"k\":%d,\"n_a\":%d,\"n_b\":%d,\"n_compared\":%d,\"first_diff\":%d,\"n_top1\":%d",
            llt_parity_verdict_name(r.verdict), r.k, r.n_a, r.n_b, r.n_compared, r.first_diff, r.n_top1);
    put_num(f, "mean_overlap", r.mean_overlap);
    put_num(f, "mean_kl", r.mean_kl);
    put_num(f, "max_kl", r.max_kl);
    put_num(f, "margin_a", r.margin_a);
    put_num(f, "margin_b", r.margin_b);
    fprintf(f, ",\"pos_differs\":%s,\"steps\":[", r.pos_differs ? "true" : "false");
    const int32_t n = na < nb ? na : nb;
    for (int32_t i = 0; i < n; i++) {
        const struct llt_parity_cmp * s = &r.steps[i];
        llt_report_mark(want, n_vocab, s->token_a);
        llt_report_mark(want, n_vocab, s->token_b);
        // [step, token_a, token_b, compared, same_top1, overlap, max_diff, kl]
        fprintf(f, "%s[%d,%d,%d,%d,%d,%d,", i ? "," : "", s->step, s->token_a, s->token_b, s->compared ? 1 : 0,
                s->same_top1 ? 1 : 0, s->overlap);
        llt_rj_num(f, s->compared ? s->max_diff : NAN);
        fputc(',', f);
        llt_rj_num(f, s->compared ? s->kl : NAN);
        fputc(']', f);
    }
    fputs("]}", f);
done:
    llt_parity_report_free(&r);
    free(pa);
    free(pb);
    return rc;
}

static int write_tensors(FILE * f, const char * dump_a, const char * dump_b, char * why, size_t size) {
    struct llt_tensor_set * a = NULL, * b = NULL;
    struct llt_set_diff * sd = NULL;
    int rc = LLT_OK;
    if (!dump_a || !dump_b) {
        snprintf(why, size, "run %s dumped nothing: run both with --checkpoints", !dump_a ? "A" : "B");
    } else if (llt_tensor_set_open(dump_a, &a) != LLT_OK || llt_tensor_set_open(dump_b, &b) != LLT_OK) {
        snprintf(why, size, "%s", llt_last_error());
    } else {
        struct llt_diff_params p = llt_diff_default_params();
        rc = llt_set_diff(a, b, &p, &sd);
    }
    if (rc != LLT_OK || !sd) {
        fputs("\"tensors\":null", f);
        goto done;
    }
    fprintf(f, "\"tensors\":{\"n_compared\":%d,\"n_within\":%d,\"n_exceed\":%d,\"n_shape_mismatch\":%d,\"first_exceed\":%d",
            sd->n_compared, sd->n_within, sd->n_exceed, sd->n_shape_mismatch, sd->first_exceed);
    put_num(f, "max_abs", sd->max_abs);
    put_num(f, "mean_cosine", sd->mean_cosine);
    fputs(",\"rows\":[", f);
    int32_t n = 0;
    for (int32_t i = 0; i < sd->n_entries; i++) {
        const struct llt_diff_entry * e = &sd->entries[i];
        if (e->status != LLT_DIFF_WITHIN && e->status != LLT_DIFF_EXCEEDS) continue;
        // [name, layer, within (1) or exceeds (0), nmse, cosine, max_abs]
        fprintf(f, "%s[", n++ ? "," : "");
        llt_json_write_string(f, llt_tensor_set_get(a, e->a)->name);
        fprintf(f, ",%d,%d,", e->layer, e->status == LLT_DIFF_WITHIN ? 1 : 0);
        llt_rj_num(f, e->d.nmse);
        fputc(',', f);
        llt_rj_num(f, e->d.cosine);
        fputc(',', f);
        llt_rj_num(f, e->d.max_abs);
        fputc(']', f);
    }
    fputs("]}", f);
done:
    llt_set_diff_free(sd);
    llt_tensor_set_close(a);
    llt_tensor_set_close(b);
    return rc;
}

static void write_side(FILE * f, const char * k, struct llt_store * st, const struct llt_table_rows * run) {
    fprintf(f, "\"%s\":{\"trace\":", k);
    llt_json_write_string(f, llt_store_path(st));
    for (int32_t c = 0; c < run->n_cols; c++) {
        const char * name = run->cols[c];
        if (strcmp(name, "run") && strcmp(name, "model") && strcmp(name, "file_type") && strcmp(name, "prompt")) continue;
        fprintf(f, ",\"%s\":", name);
        llt_rj_value(f, &run->values[c], false);
    }
    fputc('}', f);
}

int llt_report_compare(FILE * f, struct llt_store * a, const struct llt_table_rows * run_a,
                       struct llt_store * b, int64_t run_b, uint8_t * want, int32_t n_vocab) {
    struct llt_table_filter filt = llt_table_default_filter();
    filt.run = run_b;
    struct llt_table_rows * rb = NULL;
    int rc = llt_read_table(b, LLT_TABLE_RUN, &filt, &rb);
    if (rc == LLT_OK && rb->n_rows == 0) rc = llt_set_error(LLT_ENOTFOUND, "trace '%s' has no run %lld", llt_store_path(b), (long long) run_b);
    if (rc != LLT_OK) { llt_table_rows_free(rb); return rc; }
    const char * dump_a = NULL, * dump_b = NULL;
    int64_t id_a = 0, id_b = 0;
    for (int32_t c = 0; c < run_a->n_cols; c++) {
        if (strcmp(run_a->cols[c], "dump_path") == 0) dump_a = run_a->values[c].s;
        if (strcmp(run_a->cols[c], "run") == 0) id_a = run_a->values[c].i;
    }
    for (int32_t c = 0; c < rb->n_cols; c++) {
        if (strcmp(rb->cols[c], "dump_path") == 0) dump_b = rb->values[c].s;
        if (strcmp(rb->cols[c], "run") == 0) id_b = rb->values[c].i;
    }
    char why_parity[512] = "", why_tensors[512] = "";
    fputs("\"comparison\":{", f);
    write_side(f, "a", a, run_a);
    fputc(',', f);
    write_side(f, "b", b, rb);
    fputc(',', f);
    rc = write_parity(f, a, id_a, b, id_b, want, n_vocab, why_parity, sizeof(why_parity));
    if (rc == LLT_OK) { fputc(',', f); rc = write_tensors(f, dump_a, dump_b, why_tensors, sizeof(why_tensors)); }
    if (rc == LLT_OK) {
        fputs(",\"why_parity\":", f);
        llt_json_write_string(f, why_parity);
        fputs(",\"why_tensors\":", f);
        llt_json_write_string(f, why_tensors);
        fputc('}', f);
    }
    llt_table_rows_free(rb);
    return rc;
}

// ---- a run's own live comparison (run --reference) ---------------------------------------

static const struct llt_value * cell(const struct llt_table_rows * t, int64_t r, const char * name) {
    for (int32_t c = 0; c < t->n_cols; c++) {
        if (strcmp(t->cols[c], name) == 0) return &t->values[r * t->n_cols + c];
    }
    return NULL;
}

int llt_report_live_diffs(FILE * f, struct llt_store * st, const struct llt_table_rows * run, const struct llt_analysis * a) {
    int64_t id = 0;
    for (int32_t c = 0; c < run->n_cols; c++) if (strcmp(run->cols[c], "run") == 0) id = run->values[c].i;
    int rc = LLT_OK;
    int32_t n = 0, n_within = 0;
    for (int64_t i = 0; i < llt_analysis_n_steps(a) && rc == LLT_OK; i++) {
        struct llt_table_filter filt = llt_table_default_filter();
        filt.run = id;
        filt.step = llt_analysis_step(a, i)->step;
        struct llt_table_rows * d = NULL;
        if ((rc = llt_read_table(st, LLT_TABLE_DIFFS, &filt, &d)) != LLT_OK) break;
        for (int64_t r = 0; r < d->n_rows; r++) {
            if (n == 0) {
                fputs("\"comparison\":{\"live\":true,", f);
                write_side(f, "a", st, run);
                fputs(",\"b\":{\"trace\":\"the reference dump (run --reference)\"},\"parity\":null,"
                      "\"why_parity\":\"a live comparison has no second decode: compare two runs with --vs\","
                      "\"tensors\":{\"rows\":[", f);
            }
            // [name, layer, within (1) or exceeds (0), nmse, cosine, max_abs], as from two dumps
            const struct llt_value * within = cell(d, r, "within");
            fputs(n ? ",[" : "[", f);
            llt_rj_value(f, cell(d, r, "name"), false);
            fputc(',', f);
            llt_rj_value(f, cell(d, r, "layer"), false);
            fprintf(f, ",%d,", within && within->i ? 1 : 0);
            llt_rj_value(f, cell(d, r, "nmse"), false);
            fputc(',', f);
            llt_rj_value(f, cell(d, r, "cosine"), false);
            fputc(',', f);
            llt_rj_value(f, cell(d, r, "max_abs"), false);
            fputc(']', f);
            n_within += within && within->i;
            n++;
        }
        llt_table_rows_free(d);
    }
    if (rc != LLT_OK) return rc;
    if (n == 0) fputs("\"comparison\":null", f);
    else fprintf(f, "],\"n_compared\":%d,\"n_within\":%d,\"n_exceed\":%d},\"why_tensors\":\"\"}", n, n_within, n - n_within);
    return LLT_OK;
}
