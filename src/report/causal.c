// The report's "causal" section: the causal tracing result of the run (lltrace causal -o), read
// back from the trace as it was stored; the page draws it as a layer × position heatmap.
#include "report/report.h"

#include <string.h>

static void num_array(FILE * f, const struct llt_causal_result * r, int what) {
    fputc('[', f);
    for (int64_t k = 0; k < (int64_t) r->n_layer * r->n_pos; k++) {
        if (k) fputc(',', f);
        const struct llt_causal_cell * c = &r->cells[k];
        if (what == 0) llt_rj_num(f, c->p);
        else if (what == 1) llt_rj_num(f, c->logit_diff);
        else fprintf(f, "%lld", (long long) c->n_changed);
    }
    fputc(']', f);
}

static void text_array(FILE * f, char ** texts, int32_t n) {
    fputc('[', f);
    for (int32_t i = 0; i < n; i++) {
        if (i) fputc(',', f);
        llt_json_write_string(f, texts[i]);
    }
    fputc(']', f);
}

int llt_report_causal(FILE * f, struct llt_store * st, int64_t run_id, char * missing, size_t size) {
    struct llt_causal_result r;
    const int rc = llt_read_causal(st, run_id, &r);
    if (rc == LLT_ENOMEM) return rc;
    if (rc != LLT_OK) {
        if (rc == LLT_ENOTFOUND) snprintf(missing, size, "no causal tracing result of this run: lltrace causal --clean TEXT --corrupt TEXT -o TRACE");
        else snprintf(missing, size, "%s", llt_last_error());
        fputs("\"causal\":null", f);
        return LLT_OK;
    }
    fprintf(f, "\"causal\":{\"id\":%lld,\"clean_run\":%lld,\"corrupt_run\":%lld,\"node\":", (long long) r.id,
            (long long) r.clean_run, (long long) r.corrupt_run);
    llt_json_write_string(f, r.node);
    fprintf(f, ",\"answer\":%d,\"answer_piece\":", r.answer);
    llt_json_write_string(f, r.answer_piece);
    fprintf(f, ",\"corrupt_top\":%d,\"corrupt_top_piece\":", r.corrupt_top);
    llt_json_write_string(f, r.corrupt_piece);
    fputs(",\"clean_p\":", f);
    llt_rj_num(f, r.clean_p);
    fputs(",\"corrupt_p\":", f);
    llt_rj_num(f, r.corrupt_p);
    fputs(",\"clean_logit_diff\":", f);
    llt_rj_num(f, r.clean_ld);
    fputs(",\"corrupt_logit_diff\":", f);
    llt_rj_num(f, r.corrupt_ld);
    fprintf(f, ",\"n_layer\":%d,\"n_pos\":%d,\"none_is_corrupt\":%s,\"last_is_clean\":%s,\"tokens\":", r.n_layer, r.n_pos,
            r.none_is_corrupt ? "true" : "false", !r.last_checked ? "null" : r.last_is_clean ? "true" : "false");
    text_array(f, r.pieces, r.n_pos);
    fputs(",\"clean_tokens\":", f);
    text_array(f, r.clean_pieces, r.n_pos);
    fputs(",\"p\":", f);
    num_array(f, &r, 0);
    fputs(",\"logit_diff\":", f);
    num_array(f, &r, 1);
    fputs(",\"n_changed\":", f);
    num_array(f, &r, 2);
    fputc('}', f);
    llt_causal_result_free(&r);
    return LLT_OK;
}
