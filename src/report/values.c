// The report's sections that come from the run's dump (docs/dump-format.md): attention
// probabilities, the size of the residual stream, the logit lens.
//
// The dump holds its tensors in execution order, so each section is one pass over the file's
// tensor list, a step's object closed when the next step begins. Sizes are bounded by a count
// of values: the first steps are kept whole, the rest left out, and the page says so.
#include "report/report.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int64_t tensor_meta(const struct llt_tensor_set * dump, const char * name, const char * field, int64_t dflt) {
    char key[160];
    int64_t v;
    snprintf(key, sizeof(key), "lltrace.tensor.%s.%s", name, field);
    return llt_tensor_set_meta_int(dump, key, &v) ? v : dflt;
}

// the tensor's name is exactly <prefix><layer>#<step> (no ".k" sibling); layer -1 for a
// prefix without a number ("embd#")
static bool parse_name(const char * name, const char * prefix, bool numbered, int * layer, long long * step) {
    const size_t n = strlen(prefix);
    if (strncmp(name, prefix, n) != 0) return false;
    int end = 0;
    if (numbered) {
        if (sscanf(name + n, "%d#%lld%n", layer, step, &end) != 2) return false;
    } else {
        *layer = -1;
        if (sscanf(name + n, "#%lld%n", step, &end) != 1) return false;
    }
    return name[n + end] == '\0';
}

// a step's object: opened at its first tensor, closed at the next step's or the end
struct stepper {
    FILE *    f;
    long long step;     // -1: none open
    int       n_steps;
};

static void step_open(struct stepper * s, const struct llt_tensor_set * dump, const char * name, long long step) {
    if (s->step == step) { fputc(',', s->f); return; }
    if (s->step >= 0) fputs("]}", s->f);
    fprintf(s->f, "%s{\"step\":%lld,\"pos0\":%lld,\"n_tokens\":%lld,\"layers\":[", s->n_steps++ ? "," : "",
            step, (long long) tensor_meta(dump, name, "pos", 0), (long long) tensor_meta(dump, name, "n_tokens", 0));
    s->step = step;
}

static void step_close(struct stepper * s) {
    if (s->step >= 0) fputs("]}", s->f);
}

// ---- attention ---------------------------------------------------------------------------

// tensor i of the dump as F32 into *v, grown to hold it (*cap elements)
static int read_f32(struct llt_tensor_set * dump, int i, float ** v, int64_t * cap) {
    const int64_t n = llt_tensor_set_get(dump, i)->n_elements;
    if (n > *cap) {
        float * nv = realloc(*v, (size_t) n * sizeof(float));
        if (!nv) return llt_set_error(LLT_ENOMEM, "report: out of memory");
        *v = nv;
        *cap = n;
    }
    return llt_tensor_set_read_f32(dump, i, *v);
}

int llt_report_attention(FILE * f, struct llt_tensor_set * dump, int64_t max_values) {
    float * v = NULL;
    int64_t cap = 0, written = 0;
    long long left_out = -1; // the first step left out
    struct stepper s = { f, -1, 0 };
    int rc = LLT_OK;
    for (int i = 0; dump && i < llt_tensor_set_count(dump) && rc == LLT_OK; i++) {
        const struct llt_tensor_info * t = llt_tensor_set_get(dump, i);
        int layer;
        long long step;
        if (!parse_name(t->name, "kq_soft_max-", true, &layer, &step)) continue;
        if (left_out >= 0 || (step != s.step && written + t->n_elements > max_values && s.n_steps > 0)) {
            if (left_out < 0) left_out = step;
            continue;
        }
        if ((rc = read_f32(dump, i, &v, &cap)) != LLT_OK) break;
        if (s.step < 0) fputs("\"attention\":{\"steps\":[", f);
        step_open(&s, dump, t->name, step);
        // ne: [positions attended to, queries (the step's tokens), heads]
        fprintf(f, "{\"layer\":%d,\"ne\":[%lld,%lld,%lld],\"v\":[", layer,
                (long long) t->ne[0], (long long) t->ne[1], (long long) t->ne[2]);
        for (int64_t j = 0; j < t->n_elements; j++) {
            if (j) fputc(',', f);
            llt_rj_num(f, v[j]);
        }
        fputs("]}", f);
        written += t->n_elements;
    }
    free(v);
    if (rc != LLT_OK) return rc;
    if (s.step < 0) { fputs("\"attention\":null", f); return LLT_OK; }
    step_close(&s);
    fprintf(f, "],\"left_out_from\":%lld}", left_out);
    return LLT_OK;
}

// ---- the residual stream -----------------------------------------------------------------

int llt_report_residual(FILE * f, struct llt_tensor_set * dump, int64_t max_values) {
    float * v = NULL;
    int64_t cap = 0, written = 0;
    long long left_out = -1;
    struct stepper s = { f, -1, 0 };
    int rc = LLT_OK;
    for (int i = 0; dump && i < llt_tensor_set_count(dump) && rc == LLT_OK; i++) {
        const struct llt_tensor_info * t = llt_tensor_set_get(dump, i);
        int layer;
        long long step;
        if (!parse_name(t->name, "l_out-", true, &layer, &step) && !parse_name(t->name, "embd", false, &layer, &step)) continue;
        const int64_t cols = t->ne[0] > 0 ? t->n_elements / t->ne[0] : 0;
        if (left_out >= 0 || (step != s.step && written + 3 * cols > max_values && s.n_steps > 0)) {
            if (left_out < 0) left_out = step;
            continue;
        }
        if ((rc = read_f32(dump, i, &v, &cap)) != LLT_OK) break;
        if (s.step < 0) fputs("\"residual\":{\"steps\":[", f);
        step_open(&s, dump, t->name, step);
        // a step that keeps fewer columns than tokens keeps the last ones (the prompt's last layer)
        const int64_t pos0 = tensor_meta(dump, t->name, "pos", 0), n_tok = tensor_meta(dump, t->name, "n_tokens", cols);
        struct llt_stats * st = calloc((size_t) (cols ? cols : 1), sizeof(*st));
        if (!st) { rc = llt_set_error(LLT_ENOMEM, "report: out of memory"); break; }
        for (int64_t c = 0; c < cols && rc == LLT_OK; c++) rc = llt_stats_compute(v + c * t->ne[0], 0 /* GGML_TYPE_F32 */, t->ne[0], &st[c]);
        fprintf(f, "{\"layer\":%d,\"pos\":[", layer);
        for (int64_t c = 0; c < cols; c++) fprintf(f, "%s%lld", c ? "," : "", (long long) (pos0 + n_tok - cols + c));
        fputs("],\"rms\":[", f);
        // the RMS from the population's mean and standard deviation: mean² + std²
        for (int64_t c = 0; c < cols; c++) { if (c) fputc(',', f); llt_rj_num(f, sqrt(st[c].mean * st[c].mean + st[c].std * st[c].std)); }
        fputs("],\"absmax\":[", f);
        for (int64_t c = 0; c < cols; c++) { if (c) fputc(',', f); llt_rj_num(f, st[c].absmax); }
        fputs("],\"nonfinite\":[", f);
        for (int64_t c = 0; c < cols; c++) fprintf(f, "%s%lld", c ? "," : "", (long long) (st[c].n_nan + st[c].n_pinf + st[c].n_ninf));
        fputs("]}", f);
        free(st);
        written += 3 * cols;
    }
    free(v);
    if (rc != LLT_OK) return rc;
    if (s.step < 0) { fputs("\"residual\":null", f); return LLT_OK; }
    step_close(&s);
    fprintf(f, "],\"left_out_from\":%lld}", left_out);
    return LLT_OK;
}

// ---- the logit lens ----------------------------------------------------------------------

int llt_report_lens(FILE * f, const char * model_path, const char * dump_path, int32_t k,
                    uint8_t * want, int32_t n_vocab) {
    struct llt_lens_params p = llt_lens_default_params();
    p.model_path = model_path;
    p.dump_path = dump_path;
    p.top_k = k;
    struct llt_lens * lens = NULL;
    int rc = llt_lens_compute(&p, &lens);
    if (rc != LLT_OK) return rc;
    fprintf(f, "\"lens\":{\"k\":%d,\"n_layer\":%d,\"rows\":[", k, lens->n_layer);
    for (int64_t i = 0; i < lens->n_rows; i++) {
        const struct llt_lens_row * r = &lens->rows[i];
        // [step, layer, pos, entropy, [ids], [probabilities]]
        fprintf(f, "%s[%lld,%d,%lld,", i ? "," : "", (long long) r->step, r->layer, (long long) r->pos);
        llt_rj_num(f, r->entropy);
        fputs(",[", f);
        for (int j = 0; j < r->k; j++) {
            fprintf(f, "%s%d", j ? "," : "", r->ids[j]);
            llt_report_mark(want, n_vocab, r->ids[j]);
        }
        fputs("],[", f);
        for (int j = 0; j < r->k; j++) { if (j) fputc(',', f); llt_rj_num(f, r->probs[j]); }
        fputs("]]", f);
    }
    fputs("]}", f);
    llt_lens_free(lens);
    return LLT_OK;
}
