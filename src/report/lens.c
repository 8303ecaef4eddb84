// The logit lens: each dumped layer output put through the model's final norm and output
// head, as if the model stopped after that layer.
//
// The output head is the largest matrix of a model (n_vocab rows), so it is never dequantized
// whole: it is read in chunks of rows, each chunk dequantized once and multiplied with every
// collected hidden state, while each state keeps its top k and an online softmax (running
// maximum, sum of exponentials and the sum that gives the entropy). Memory stays at one chunk
// plus the states, whatever the vocabulary and the weight type.
#include "core/internal.h"


#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct llt_lens_params llt_lens_default_params(void) {
    return (struct llt_lens_params) { .top_k = 5 };
}

void llt_lens_free(struct llt_lens * lens) {
    if (!lens) return;
    free(lens->rows);
    free(lens);
}

// ---- the model's final norm --------------------------------------------------------------

struct head {
    int      n_embd, n_vocab;
    bool     rms;         // RMS norm, else layer norm (mean removed, a bias added)
    float    eps;
    float *  norm_w;      // [n_embd]
    float *  norm_b;      // [n_embd], layer norm only
    int      out;         // the output head in the model set
    size_t   row_bytes;
};

static int meta_f32(const struct llt_gguf * g, const char * arch, const char * suffix, float * v) {
    char key[128];
    snprintf(key, sizeof(key), "%s.%s", arch, suffix);
    int64_t id = llt_gguf_find_key(g, key);
    if (llt_gguf_kv_type(g, id) != LLT_GGUF_F32) return 0;
    *v = *(const float *) llt_gguf_val_data(g, id);
    return 1;
}

static float * read_vector(struct llt_tensor_set * set, const char * name, int n) {
    int i = llt_tensor_set_find(set, name);
    if (i < 0) return NULL;
    if (llt_tensor_set_get(set, i)->n_elements != n) return NULL;
    float * v = malloc((size_t) n * sizeof(float));
    if (v && llt_tensor_set_read_f32(set, i, v) != LLT_OK) { free(v); return NULL; }
    return v;
}

static int head_open(struct llt_tensor_set * model, const char * path, struct head * h) {
    const struct llt_gguf * g = llt_tensor_set_gguf(model);
    if (!g) return llt_set_error(LLT_EFORMAT, "logit lens: model '%s' is not a GGUF file", path);
    const char * arch = llt_gguf_val_str(g, llt_gguf_find_key(g, "general.architecture"));
    if (!arch) return llt_set_error(LLT_EFORMAT, "logit lens: model '%s' has no general.architecture", path);
    h->out = llt_tensor_set_find(model, "output.weight");
    if (h->out < 0) h->out = llt_tensor_set_find(model, "token_embd.weight"); // tied embeddings
    if (h->out < 0) return llt_set_error(LLT_ENOTFOUND, "logit lens: model '%s' has no output head", path);
    const struct llt_tensor_info * t = llt_tensor_set_get(model, h->out);
    int64_t bs = llt_type_block_size(t->type);
    if (bs <= 0 || t->ne[0] % bs != 0 || t->n_dims != 2) {
        return llt_set_error(LLT_EFORMAT, "logit lens: output head '%s' of type %s cannot be read by rows",
                             t->name, llt_type_name(t->type));
    }
    h->n_embd = (int) t->ne[0];
    h->n_vocab = (int) t->ne[1];
    h->row_bytes = (size_t) (t->ne[0] / bs) * llt_type_block_bytes(t->type);
    h->rms = meta_f32(g, arch, "attention.layer_norm_rms_epsilon", &h->eps);
    if (!h->rms && !meta_f32(g, arch, "attention.layer_norm_epsilon", &h->eps)) {
        return llt_set_error(LLT_EFORMAT, "logit lens: model '%s' (%s) names no norm epsilon", path, arch);
    }
    h->norm_w = read_vector(model, "output_norm.weight", h->n_embd);
    if (!h->norm_w) return llt_set_error(LLT_ENOTFOUND, "logit lens: model '%s' has no output_norm.weight of %d values", path, h->n_embd);
    if (!h->rms) h->norm_b = read_vector(model, "output_norm.bias", h->n_embd); // NULL: none
    return LLT_OK;
}

// x through the final norm, in place
static void head_norm(const struct head * h, float * x) {
    const int n = h->n_embd;
    double mean = 0, sq = 0;
    if (!h->rms) {
        for (int i = 0; i < n; i++) mean += x[i];
        mean /= n;
    }
    for (int i = 0; i < n; i++) sq += ((double) x[i] - mean) * ((double) x[i] - mean);
    const float scale = (float) (1.0 / sqrt(sq / n + h->eps));
    for (int i = 0; i < n; i++) {
        x[i] = (float) (x[i] - mean) * scale * h->norm_w[i] + (h->norm_b ? h->norm_b[i] : 0.0f);
    }
}

// ---- the layer outputs of the dump -------------------------------------------------------

struct state {
    int64_t step, pos;
    int32_t layer;
    double  max, sum, tsum;  // online softmax: max logit, Σ e^(l-max), Σ e^(l-max)·(l-max)
};

static int64_t tensor_meta(const struct llt_tensor_set * dump, const char * name, const char * field, int64_t dflt) {
    char key[160];
    int64_t v;
    snprintf(key, sizeof(key), "lltrace.tensor.%s.%s", name, field);
    return llt_tensor_set_meta_int(dump, key, &v) ? v : dflt;
}

// the l_out-L#S tensors of the dump (never their .k siblings): n_states columns of n_embd
static int collect(struct llt_tensor_set * dump, const struct head * h, struct state ** states, float ** x, int64_t * n_states) {
    int64_t n = 0, cap = 0;
    struct state * st = NULL;
    float * xs = NULL;
    int rc = LLT_OK;
    for (int i = 0; i < llt_tensor_set_count(dump); i++) {
        const struct llt_tensor_info * t = llt_tensor_set_get(dump, i);
        int layer, end = 0;
        long long step;
        if (sscanf(t->name, "l_out-%d#%lld%n", &layer, &step, &end) != 2 || t->name[end] != '\0') continue;
        if (t->ne[0] != h->n_embd) {
            rc = llt_set_error(LLT_EFORMAT, "logit lens: %s has %lld values a position, the model's head takes %d",
                               t->name, (long long) t->ne[0], h->n_embd);
            goto done;
        }
        const int64_t cols = t->n_elements / t->ne[0];
        const int64_t pos0 = tensor_meta(dump, t->name, "pos", 0);
        const int64_t n_tok = tensor_meta(dump, t->name, "n_tokens", cols);
        if (n + cols > cap) {
            int64_t nc = (n + cols) * 2;
            struct state * s2 = realloc(st, (size_t) nc * sizeof(*st));
            if (s2) st = s2;
            float * x2 = s2 ? realloc(xs, (size_t) nc * h->n_embd * sizeof(float)) : NULL;
            if (!x2) { rc = llt_set_error(LLT_ENOMEM, "logit lens: out of memory"); goto done; }
            xs = x2;
            cap = nc;
        }
        rc = llt_tensor_set_read_f32(dump, i, xs + n * h->n_embd);
        if (rc != LLT_OK) goto done;
        for (int64_t c = 0; c < cols; c++) {
            // a step that keeps fewer columns than its tokens (the last layer of a prompt
            // keeps the rows whose logits are wanted) keeps the last ones
            st[n + c] = (struct state) { .step = step, .layer = layer, .pos = pos0 + n_tok - cols + c, .max = -INFINITY };
            head_norm(h, xs + (n + c) * h->n_embd);
        }
        n += cols;
    }
done:
    if (rc != LLT_OK) { free(st); free(xs); return rc; }
    *states = st;
    *x = xs;
    *n_states = n;
    return LLT_OK;
}

static int cmp_rows(const void * a, const void * b) {
    const struct llt_lens_row * x = a, * y = b;
    if (x->step != y->step)   return x->step < y->step ? -1 : 1;
    if (x->layer != y->layer) return x->layer < y->layer ? -1 : 1;
    return (x->pos > y->pos) - (x->pos < y->pos);
}

// ---- the product with the head, in chunks of rows ----------------------------------------

// eight partial sums the compiler keeps in one vector register; no -ffast-math needed
static float dot(const float * a, const float * b, int n) {
    float acc[8] = {0};
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        for (int j = 0; j < 8; j++) acc[j] += a[i + j] * b[i + j];
    }
    float s = 0;
    for (; i < n; i++) s += a[i] * b[i];
    for (int j = 0; j < 8; j++) s += acc[j];
    return s;
}

static void keep(struct llt_lens_row * r, int k, int32_t id, float logit) {
    if (r->k == k && logit <= r->logits[k - 1]) return;
    int at = r->k < k ? r->k++ : k - 1;
    while (at > 0 && r->logits[at - 1] < logit) { // ties keep the lower id first
        r->ids[at] = r->ids[at - 1];
        r->logits[at] = r->logits[at - 1];
        at--;
    }
    r->ids[at] = id;
    r->logits[at] = logit;
}

static void softmax_add(struct state * s, double l) {
    if (l > s->max) {
        const double d = s->max == -INFINITY ? 0 : l - s->max, e = exp(-d);
        s->tsum = e * (s->tsum - d * s->sum);
        s->sum = e * s->sum + 1;
        s->max = l;
    } else {
        const double z = l - s->max, e = exp(z);
        s->sum += e;
        s->tsum += e * z;
    }
}

enum { CHUNK_ROWS = 256 };

int llt_lens_compute(const struct llt_lens_params * p, struct llt_lens ** out) {
    *out = NULL;
    if (!p->model_path || !p->dump_path) return llt_set_error(LLT_EINVAL, "logit lens: needs the model and the dump");
    if (p->top_k < 1 || p->top_k > LLT_LENS_MAX_K) {
        return llt_set_error(LLT_EINVAL, "logit lens: top-k %d is out of range [1, %d]", p->top_k, LLT_LENS_MAX_K);
    }
    struct llt_tensor_set * model = NULL, * dump = NULL;
    struct head h = {0};
    struct state * st = NULL;
    float * x = NULL, * w = NULL;
    struct llt_lens * lens = NULL;
    int64_t n = 0;
    int rc = llt_tensor_set_open(p->model_path, &model);
    if (rc == LLT_OK) rc = head_open(model, p->model_path, &h);
    if (rc == LLT_OK) rc = llt_tensor_set_open(p->dump_path, &dump);
    if (rc == LLT_OK) rc = collect(dump, &h, &st, &x, &n);
    if (rc != LLT_OK) goto done;
    if (n == 0) {
        rc = llt_set_error(LLT_ENOTFOUND, "logit lens: dump '%s' holds no layer output (run with --checkpoints)", p->dump_path);
        goto done;
    }
    lens = calloc(1, sizeof(*lens));
    w = malloc((size_t) CHUNK_ROWS * h.n_embd * sizeof(float));
    if (lens) lens->rows = calloc((size_t) n, sizeof(*lens->rows));
    if (!lens || !w || !lens->rows) { rc = llt_set_error(LLT_ENOMEM, "logit lens: out of memory"); goto done; }
    const unsigned char * head = llt_tensor_set_data(model, h.out);
    const int ht = llt_tensor_set_get(model, h.out)->type;
    if (!head) { rc = LLT_EIO; goto done; }
    for (int r0 = 0; r0 < h.n_vocab; r0 += CHUNK_ROWS) {
        const int nr = h.n_vocab - r0 < CHUNK_ROWS ? h.n_vocab - r0 : CHUNK_ROWS;
        rc = llt_to_float(head + (size_t) r0 * h.row_bytes, ht, (int64_t) nr * h.n_embd, w);
        if (rc != LLT_OK) goto done;
        for (int64_t s = 0; s < n; s++) {
            const float * xs = x + s * h.n_embd;
            for (int r = 0; r < nr; r++) {
                const float l = dot(xs, w + (size_t) r * h.n_embd, h.n_embd);
                keep(&lens->rows[s], p->top_k, r0 + r, l);
                softmax_add(&st[s], l);
            }
        }
    }
    for (int64_t s = 0; s < n; s++) {
        struct llt_lens_row * r = &lens->rows[s];
        r->step = st[s].step;
        r->layer = st[s].layer;
        r->pos = st[s].pos;
        for (int j = 0; j < r->k; j++) r->probs[j] = (float) (exp(r->logits[j] - st[s].max) / st[s].sum);
        r->entropy = (float) (log(st[s].sum) - st[s].tsum / st[s].sum);
    }
    qsort(lens->rows, (size_t) n, sizeof(*lens->rows), cmp_rows);
    lens->n_rows = n;
    lens->n_vocab = h.n_vocab;
    int64_t nl = 0;
    const struct llt_gguf * g = llt_tensor_set_gguf(model);
    char key[128];
    snprintf(key, sizeof(key), "%s.block_count", llt_gguf_val_str(g, llt_gguf_find_key(g, "general.architecture")));
    lens->n_layer = llt_tensor_set_meta_int(model, key, &nl) ? (int32_t) nl : 0;
done:
    if (rc != LLT_OK) { llt_lens_free(lens); lens = NULL; }
    free(w);
    free(x);
    free(st);
    free(h.norm_w);
    free(h.norm_b);
    llt_tensor_set_close(dump);
    llt_tensor_set_close(model);
    *out = lens;
    return rc;
}
