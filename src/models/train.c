// Training the sorter: llama's forward pass written as a ggml graph, trained with ggml-opt.
//
// llama.cpp's own trainer (llama_opt_epoch) leaves token_embd, attn_k and attn_v untouched
// (K and V come back through the KV cache) and takes one sequence per step; it reached 63% on
// this task. Here the same computation llama.cpp does for LLM_ARCH_LLAMA (RMS norm, RoPE in
// its "normal" mode, causal softmax attention scaled by 1/sqrt(head size), SwiGLU, untied
// output) is built directly over a batch of sequences, so every weight gets its gradient, and
// the trained tensors, named as in a llama GGUF, go to llama_model_init_from_user (mkmodel.c).
//
// The loss is cross-entropy on the answer only: the logits of every other position are
// multiplied by 0 before the loss, so they add a constant and no gradient (ggml's
// cross-entropy assumes each row's labels sum to 1, so zero labels alone would not do).
// In the second half of the training, once the task is learnt, a penalty on the entropy of the
// attention at the answer positions makes the head decisive: trained on cross-entropy alone it
// found the letter to emit (its largest probability was there 99% of the time) but shared it
// with the next larger one, which the FFN still decoded; with the penalty it puts 0.97 or more
// on the letter (three seeds tried). From the start, the penalty made the head settle on wrong letters.
// Determinism: the examples and initial weights come from one integer PRNG and the CPU
// backend runs one thread (every sum in a fixed order; and on a loaded machine two threads
// spent most of their time spinning at ggml's barriers), so the same parameters give the same
// bytes on the same machine and build.
#include "core/internal.h"
#include "models/prng.h"
#include "models/sorter.h"

#include "ggml.h"
#include "ggml-alloc.h"
#include "ggml-backend.h"
#include "ggml-opt.h"
#include "gguf.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LAYERS 8
#define MAX_WEIGHTS (3 + 9 * MAX_LAYERS)

struct llt_train_params llt_train_default_params(void) {
    return (struct llt_train_params) {
        .n_embd = 64, .n_layer = 1, .n_head = 1, .n_ff = 256,
        .n_steps = 2000, .n_batch = 64, .lr = 5e-3f, .attn_entropy = 0.2f, .seed = 20261202, .n_threads = 1,
    };
}

struct llt_trained {
    int32_t n;
    char    names[MAX_WEIGHTS][64];
    int64_t nelements[MAX_WEIGHTS];
    float * data[MAX_WEIGHTS];
};

void llt_trained_free(struct llt_trained * t) {
    if (!t) return;
    for (int32_t i = 0; i < t->n; i++) free(t->data[i]);
    free(t);
}

const float * llt_trained_get(const struct llt_trained * t, const char * name, int64_t n) {
    for (int32_t i = 0; i < t->n; i++) {
        if (strcmp(t->names[i], name) == 0) return t->nelements[i] == n ? t->data[i] : NULL;
    }
    return NULL;
}

// ---- the model ---------------------------------------------------------------------------

struct layer {
    struct ggml_tensor * attn_norm, * wq, * wk, * wv, * wo, * ffn_norm, * gate, * up, * down;
};

struct model {
    struct ggml_tensor * tok_embd, * output_norm, * output;
    struct layer layers[MAX_LAYERS];
    struct ggml_tensor * weights[MAX_WEIGHTS];
    int n_weights;
};

static struct ggml_tensor * weight(struct ggml_context * ctx, struct model * m, const char * name, int64_t ne0, int64_t ne1) {
    struct ggml_tensor * t = ne1 > 0 ? ggml_new_tensor_2d(ctx, GGML_TYPE_F32, ne0, ne1) : ggml_new_tensor_1d(ctx, GGML_TYPE_F32, ne0);
    ggml_set_name(t, name);
    ggml_set_param(t);
    m->weights[m->n_weights++] = t;
    return t;
}

static void model_tensors(struct ggml_context * ctx, struct model * m, const struct llt_train_params * p) {
    char name[64];
    const int64_t E = p->n_embd, F = p->n_ff;
    m->tok_embd = weight(ctx, m, "token_embd.weight", E, SORT_N_VOCAB);
    for (int il = 0; il < p->n_layer; il++) {
        struct layer * l = &m->layers[il];
#define W(field, kind, a, b) (snprintf(name, sizeof(name), "blk.%d." kind ".weight", il), l->field = weight(ctx, m, name, a, b))
        W(attn_norm, "attn_norm", E, 0);
        W(wq, "attn_q", E, E);
        W(wk, "attn_k", E, E);
        W(wv, "attn_v", E, E);
        W(wo, "attn_output", E, E);
        W(ffn_norm, "ffn_norm", E, 0);
        W(gate, "ffn_gate", E, F);
        W(up, "ffn_up", E, F);
        W(down, "ffn_down", F, E);
#undef W
    }
    m->output_norm = weight(ctx, m, "output_norm.weight", E, 0);
    m->output = weight(ctx, m, "output.weight", E, SORT_N_VOCAB);
}

// norms 1, matrices N(0, 1/fan_in), from one PRNG stream in a fixed order
static int model_init(const struct model * m, uint64_t seed) {
    for (int i = 0; i < m->n_weights; i++) {
        struct ggml_tensor * t = m->weights[i];
        const int64_t n = ggml_nelements(t);
        float * buf = malloc((size_t) n * sizeof(float));
        if (!buf) return llt_set_error(LLT_ENOMEM, "out of memory");
        const float scale = 1.0f / sqrtf((float) t->ne[0]);
        for (int64_t j = 0; j < n; j++) buf[j] = t->ne[1] == 1 ? 1.0f : llt_gauss(&seed) * scale;
        ggml_backend_tensor_set(t, buf, 0, (size_t) n * sizeof(float));
        free(buf);
    }
    return LLT_OK;
}

// ---- the forward pass, as llama.cpp computes it ------------------------------------------

// logits [n_vocab, T*B] of tokens [T*B] at positions pos [T*B] (B sequences of T tokens);
// attn[il]: layer il's attention probabilities [T keys, T queries, H, B]
static struct ggml_tensor * forward(struct ggml_context * ctx, const struct model * m, const struct llt_train_params * p,
                                    struct ggml_tensor * tokens, struct ggml_tensor * pos, int T, int B,
                                    struct ggml_tensor ** attn) {
    const int H = p->n_head, hd = p->n_embd / p->n_head;
    const float eps = 1e-5f; // llama.attention.layer_norm_rms_epsilon in the GGUF
    struct ggml_tensor * x = ggml_get_rows(ctx, m->tok_embd, tokens);
    for (int il = 0; il < p->n_layer; il++) {
        const struct layer * l = &m->layers[il];
        struct ggml_tensor * cur = ggml_mul(ctx, ggml_rms_norm(ctx, x, eps), l->attn_norm);
        struct ggml_tensor * q = ggml_reshape_3d(ctx, ggml_mul_mat(ctx, l->wq, cur), hd, H, T * B);
        struct ggml_tensor * k = ggml_reshape_3d(ctx, ggml_mul_mat(ctx, l->wk, cur), hd, H, T * B);
        struct ggml_tensor * v = ggml_reshape_4d(ctx, ggml_mul_mat(ctx, l->wv, cur), hd, H, T, B);
        // rope.freq_base 10000, no scaling: what llama.cpp uses for this GGUF
        q = ggml_rope_ext(ctx, q, pos, NULL, hd, 0, SORT_MAX_TOKENS, 10000.0f, 1.0f, 0.0f, 1.0f, 32.0f, 1.0f);
        k = ggml_rope_ext(ctx, k, pos, NULL, hd, 0, SORT_MAX_TOKENS, 10000.0f, 1.0f, 0.0f, 1.0f, 32.0f, 1.0f);
        q = ggml_cont(ctx, ggml_permute(ctx, ggml_reshape_4d(ctx, q, hd, H, T, B), 0, 2, 1, 3)); // [hd, T, H, B]
        k = ggml_cont(ctx, ggml_permute(ctx, ggml_reshape_4d(ctx, k, hd, H, T, B), 0, 2, 1, 3)); // [hd, T, H, B]
        v = ggml_cont(ctx, ggml_permute(ctx, v, 1, 2, 0, 3));                                   // [T, hd, H, B]
        struct ggml_tensor * kq = ggml_mul_mat(ctx, k, q);                                       // [T keys, T queries, H, B]
        kq = ggml_soft_max_ext(ctx, ggml_diag_mask_inf(ctx, kq, 0), NULL, 1.0f / sqrtf((float) hd), 0.0f);
        attn[il] = kq;
        struct ggml_tensor * kqv = ggml_mul_mat(ctx, v, kq);                                     // [hd, T, H, B]
        kqv = ggml_cont(ctx, ggml_permute(ctx, kqv, 0, 2, 1, 3));                                // [hd, H, T, B]
        x = ggml_add(ctx, x, ggml_mul_mat(ctx, l->wo, ggml_reshape_2d(ctx, kqv, p->n_embd, T * B)));
        cur = ggml_mul(ctx, ggml_rms_norm(ctx, x, eps), l->ffn_norm);
        struct ggml_tensor * g = ggml_silu(ctx, ggml_mul_mat(ctx, l->gate, cur));
        x = ggml_add(ctx, x, ggml_mul_mat(ctx, l->down, ggml_mul(ctx, g, ggml_mul_mat(ctx, l->up, cur))));
    }
    x = ggml_mul(ctx, ggml_rms_norm(ctx, x, eps), m->output_norm);
    return ggml_mul_mat(ctx, m->output, x);
}

// ---- training ----------------------------------------------------------------------------

// The loss, one value, a sum over the answer positions / T*B: at each, the cross-entropy of
// the next token, plus, when p->attn_entropy > 0, a weight times the mean entropy (nats) of the
// heads' attention there. The penalty asks each head to be decisive, not where to look.
// mask [1, T*B]: 1 on the answer positions; labels [n_vocab, T*B]: their one-hot next tokens;
// ent [1, T*B]: the penalty's weight at each position (0 off the answer).
static struct ggml_tensor * loss_graph(struct ggml_context * ctx, const struct model * m, const struct llt_train_params * p,
                                       struct ggml_tensor * tokens, struct ggml_tensor * pos, struct ggml_tensor * mask,
                                       struct ggml_tensor * labels, struct ggml_tensor * ent) {
    const int T = SORT_MAX_TOKENS, B = p->n_batch;
    struct ggml_tensor * attn[MAX_LAYERS];
    struct ggml_tensor * logits = ggml_mul(ctx, forward(ctx, m, p, tokens, pos, T, B, attn), mask);
    struct ggml_tensor * loss = ggml_cross_entropy_loss(ctx, logits, labels);
    if (p->attn_entropy <= 0.0f) return loss;
    struct ggml_tensor * rows = ggml_reshape_4d(ctx, ent, 1, T, 1, B);
    for (int il = 0; il < p->n_layer; il++) {
        // sum of p log p over the keys (masked keys have p = 0 and add 0), answer rows only
        struct ggml_tensor * plogp = ggml_mul(ctx, attn[il], ggml_log(ctx, ggml_scale_bias(ctx, attn[il], 1.0f, 1e-6f)));
        struct ggml_tensor * neg_entropy = ggml_sum(ctx, ggml_mul(ctx, ggml_sum_rows(ctx, plogp), rows));
        const float scale = -1.0f / ((float) T * B * p->n_head * p->n_layer);
        loss = ggml_add(ctx, loss, ggml_scale(ctx, neg_entropy, scale));
    }
    return loss;
}

struct schedule {
    const struct llt_train_params * p;
    int32_t step;
};

// warm-up over the first 5% of the steps, then a cosine down to a tenth
static struct ggml_opt_optimizer_params optimizer_params(void * user_data) {
    const struct schedule * s = user_data;
    struct ggml_opt_optimizer_params op = ggml_opt_get_default_optimizer_params(NULL);
    const int32_t warm = s->p->n_steps / 20 + 1;
    const float t = (float) s->step / (float) s->p->n_steps;
    op.adamw.alpha = s->step < warm ? s->p->lr * (float) (s->step + 1) / (float) warm
                                    : s->p->lr * (0.1f + 0.45f * (1.0f + cosf(3.14159265f * t)));
    op.adamw.beta2 = 0.99f;
    return op;
}

// the entropy penalty's weight at a step: none while the task is being learnt (the first half:
// a head pushed to decide early settles on the wrong letters), then rising to p->attn_entropy
// over the next quarter
static float entropy_weight(const struct llt_train_params * p, int32_t step) {
    const float t = (float) step / (float) p->n_steps;
    return p->attn_entropy * (t < 0.5f ? 0.0f : t < 0.75f ? (t - 0.5f) / 0.25f : 1.0f);
}

// one batch of examples from rng: tokens, the loss mask and the one-hot labels of the answer
static void make_batch(uint64_t * rng, int B, int32_t * tokens, float * mask, float * labels, int32_t * n_answer) {
    const int T = SORT_MAX_TOKENS;
    memset(mask, 0, (size_t) T * B * sizeof(float));
    memset(labels, 0, (size_t) T * B * SORT_N_VOCAB * sizeof(float));
    *n_answer = 0;
    for (int b = 0; b < B; b++) {
        int32_t * seq = tokens + b * T;
        int n_prompt;
        int n = llt_sort_example(rng, seq, &n_prompt);
        for (int i = n; i < T; i++) seq[i] = SORT_TOK_EOS; // padding, never in the loss
        // the answer: each position from "=" on predicts the next token, up to </s>
        for (int i = n_prompt - 1; i < n - 1; i++) {
            mask[b * T + i] = 1.0f;
            labels[((size_t) b * T + i) * SORT_N_VOCAB + seq[i + 1]] = 1.0f;
            (*n_answer)++;
        }
    }
}

// the CPU backend, running p->n_threads threads
static int cpu_backend(const struct llt_train_params * p, ggml_backend_t * out) {
    ggml_backend_dev_t dev = ggml_backend_dev_by_type(GGML_BACKEND_DEVICE_TYPE_CPU);
    if (!dev || !(*out = ggml_backend_dev_init(dev, NULL))) return llt_set_error(LLT_ELLAMA, "ggml has no CPU backend");
    ggml_backend_set_n_threads_t fn = (ggml_backend_set_n_threads_t)
        ggml_backend_reg_get_proc_address(ggml_backend_dev_backend_reg(dev), "ggml_backend_set_n_threads");
    if (fn) fn(*out, p->n_threads);
    return LLT_OK;
}

static bool params_ok(const struct llt_train_params * p) {
    return p->n_layer >= 1 && p->n_layer <= MAX_LAYERS && p->n_head >= 1 && p->n_embd % p->n_head == 0 &&
           (p->n_embd / p->n_head) % 2 == 0 && p->n_ff >= 1 && p->n_steps >= 1 && p->n_batch >= 1 && p->n_threads >= 1 &&
           p->attn_entropy >= 0.0f;
}

int llt_train_sorter(const struct llt_train_params * p, struct llt_trained ** out, float * loss_first, float * loss_last) {
    *out = NULL;
    if (!params_ok(p)) return llt_set_error(LLT_EINVAL, "bad training parameters");
    const int T = SORT_MAX_TOKENS, B = p->n_batch;
    const size_t graph_size = 4 * GGML_DEFAULT_GRAPH_SIZE;
    int rc = LLT_OK;
    struct ggml_context * ctx_static = NULL, * ctx_compute = NULL;
    ggml_backend_t backend = NULL;
    ggml_backend_buffer_t buf = NULL;
    ggml_backend_sched_t sched = NULL;
    ggml_opt_context_t opt = NULL;
    struct llt_trained * tr = NULL;
    int32_t * tokens = malloc((size_t) T * B * sizeof(int32_t)), * pos = malloc((size_t) T * B * sizeof(int32_t));
    float * mask = malloc((size_t) T * B * sizeof(float)), * ent = malloc((size_t) T * B * sizeof(float));
    float * labels = malloc((size_t) T * B * SORT_N_VOCAB * sizeof(float));
    if (!tokens || !pos || !mask || !ent || !labels) { rc = llt_set_error(LLT_ENOMEM, "out of memory"); goto done; }
    if ((rc = cpu_backend(p, &backend)) != LLT_OK) goto done;

    // the weights and the inputs: allocated once, in one buffer
    struct ggml_init_params sp = { (MAX_WEIGHTS + 8) * ggml_tensor_overhead(), NULL, true };
    ctx_static = ggml_init(sp);
    struct model m = { 0 };
    model_tensors(ctx_static, &m, p);
    struct ggml_tensor * in_tokens = ggml_new_tensor_1d(ctx_static, GGML_TYPE_I32, (int64_t) T * B);
    struct ggml_tensor * in_pos = ggml_new_tensor_1d(ctx_static, GGML_TYPE_I32, (int64_t) T * B);
    struct ggml_tensor * in_mask = ggml_new_tensor_2d(ctx_static, GGML_TYPE_F32, 1, (int64_t) T * B);
    struct ggml_tensor * in_labels = ggml_new_tensor_2d(ctx_static, GGML_TYPE_F32, SORT_N_VOCAB, (int64_t) T * B);
    struct ggml_tensor * in_ent = ggml_new_tensor_2d(ctx_static, GGML_TYPE_F32, 1, (int64_t) T * B);
    ggml_set_input(in_pos);
    ggml_set_input(in_mask);
    ggml_set_input(in_labels);
    ggml_set_input(in_ent);
    buf = ggml_backend_alloc_ctx_tensors(ctx_static, backend);
    if (!buf) { rc = llt_set_error(LLT_ENOMEM, "cannot allocate the weights"); goto done; }
    if ((rc = model_init(&m, p->seed)) != LLT_OK) goto done;
    for (int i = 0; i < T * B; i++) pos[i] = i % T;
    ggml_backend_tensor_set(in_pos, pos, 0, ggml_nbytes(in_pos));

    // the graph: the loss of the answer positions (the logits of the others times 0)
    struct ggml_init_params cp = { graph_size * ggml_tensor_overhead() + 3 * ggml_graph_overhead_custom(graph_size, true), NULL, true };
    ctx_compute = ggml_init(cp);
    struct ggml_tensor * loss = loss_graph(ctx_compute, &m, p, in_tokens, in_pos, in_mask, in_labels, in_ent);

    sched = ggml_backend_sched_new(&backend, NULL, 1, graph_size, false, false);
    struct schedule sch = { p, 0 };
    struct ggml_opt_params op = ggml_opt_default_params(sched, GGML_OPT_LOSS_TYPE_SUM);
    op.ctx_compute = ctx_compute;
    op.inputs = in_tokens;
    op.outputs = loss;
    op.get_opt_pars = optimizer_params;
    op.get_opt_pars_ud = &sch;
    opt = ggml_opt_init(op);

    // the loss per answer position
    const int32_t tenth = p->n_steps / 10 > 0 ? p->n_steps / 10 : 1;
    double sum_first = 0, sum_last = 0;
    uint64_t rng = p->seed ^ 0x5eed5eed5eed5eedULL;
    for (sch.step = 0; sch.step < p->n_steps; sch.step++) {
        int32_t n_answer;
        make_batch(&rng, B, tokens, mask, labels, &n_answer);
        ggml_backend_tensor_set(in_tokens, tokens, 0, ggml_nbytes(in_tokens));
        ggml_backend_tensor_set(in_mask, mask, 0, ggml_nbytes(in_mask));
        ggml_backend_tensor_set(in_labels, labels, 0, ggml_nbytes(in_labels));
        const float w = entropy_weight(p, sch.step);
        for (int i = 0; i < T * B; i++) ent[i] = w * mask[i];
        ggml_backend_tensor_set(in_ent, ent, 0, ggml_nbytes(in_ent));
        ggml_opt_alloc(opt, true);
        ggml_opt_eval(opt, NULL);
        float loss_value;
        ggml_backend_tensor_get(ggml_opt_loss(opt), &loss_value, 0, sizeof(loss_value));
        const double answer_loss = (double) loss_value * T * B / n_answer; // masked rows add 0
        if (sch.step < tenth) sum_first += answer_loss;
        if (sch.step >= p->n_steps - tenth) sum_last += answer_loss;
    }
    if (loss_first) *loss_first = (float) (sum_first / tenth);
    if (loss_last) *loss_last = (float) (sum_last / tenth);

    tr = calloc(1, sizeof(*tr));
    if (!tr) { rc = llt_set_error(LLT_ENOMEM, "out of memory"); goto done; }
    for (int i = 0; i < m.n_weights; i++) {
        struct ggml_tensor * t = m.weights[i];
        snprintf(tr->names[i], sizeof(tr->names[i]), "%s", ggml_get_name(t));
        tr->nelements[i] = ggml_nelements(t);
        if (!(tr->data[i] = malloc(ggml_nbytes(t)))) { rc = llt_set_error(LLT_ENOMEM, "out of memory"); goto done; }
        tr->n = i + 1;
        ggml_backend_tensor_get(t, tr->data[i], 0, ggml_nbytes(t));
    }
    *out = tr;
    tr = NULL;
done:
    llt_trained_free(tr);
    ggml_opt_free(opt);
    if (sched) ggml_backend_sched_free(sched);
    if (buf) ggml_backend_buffer_free(buf);
    if (backend) ggml_backend_free(backend);
    if (ctx_compute) ggml_free(ctx_compute);
    if (ctx_static) ggml_free(ctx_static);
    free(tokens);
    free(pos);
    free(mask);
    free(ent);
    free(labels);
    return rc;
}

// ---- the trained model, read back and run by the trainer's forward pass ------------------

int llt_trained_read(const char * path, struct llt_trained ** out) {
    *out = NULL;
    struct ggml_context * data = NULL;
    struct gguf_init_params gp = { .no_alloc = false, .ctx = &data };
    struct gguf_context * g = gguf_init_from_file(path, gp);
    if (!g) return llt_set_error(LLT_EFORMAT, "cannot read '%s' as GGUF", path);
    struct llt_trained * t = calloc(1, sizeof(*t));
    int rc = t ? LLT_OK : llt_set_error(LLT_ENOMEM, "out of memory");
    for (int64_t i = 0; rc == LLT_OK && i < gguf_get_n_tensors(g); i++) {
        const struct ggml_tensor * w = ggml_get_tensor(data, gguf_get_tensor_name(g, i));
        if (!w || w->type != GGML_TYPE_F32) continue;
        if (t->n == MAX_WEIGHTS) { rc = llt_set_error(LLT_EFORMAT, "'%s' has more tensors than a sorter", path); break; }
        snprintf(t->names[t->n], sizeof(t->names[0]), "%s", ggml_get_name(w));
        t->nelements[t->n] = ggml_nelements(w);
        if (!(t->data[t->n] = malloc(ggml_nbytes(w)))) { rc = llt_set_error(LLT_ENOMEM, "out of memory"); break; }
        memcpy(t->data[t->n++], w->data, ggml_nbytes(w));
    }
    gguf_free(g);
    ggml_free(data);
    if (rc == LLT_OK) *out = t;
    else llt_trained_free(t);
    return rc;
}

int llt_sorter_logits(const struct llt_trained * t, const struct llt_train_params * p, const int32_t * tokens, int n, float * logits) {
    if (!params_ok(p) || n < 1) return llt_set_error(LLT_EINVAL, "bad parameters");
    int rc = LLT_OK;
    struct ggml_context * ctx_static = NULL, * ctx_compute = NULL;
    ggml_backend_t backend = NULL;
    ggml_backend_buffer_t buf = NULL;
    ggml_gallocr_t galloc = NULL;
    int32_t * pos = malloc((size_t) n * sizeof(int32_t));
    if (!pos) { rc = llt_set_error(LLT_ENOMEM, "out of memory"); goto done; }
    if ((rc = cpu_backend(p, &backend)) != LLT_OK) goto done;

    struct ggml_init_params sp = { (MAX_WEIGHTS + 2) * ggml_tensor_overhead(), NULL, true };
    ctx_static = ggml_init(sp);
    struct model m = { 0 };
    model_tensors(ctx_static, &m, p);
    struct ggml_tensor * in_tokens = ggml_new_tensor_1d(ctx_static, GGML_TYPE_I32, n);
    struct ggml_tensor * in_pos = ggml_new_tensor_1d(ctx_static, GGML_TYPE_I32, n);
    if (!(buf = ggml_backend_alloc_ctx_tensors(ctx_static, backend))) { rc = llt_set_error(LLT_ENOMEM, "cannot allocate the weights"); goto done; }
    for (int i = 0; i < m.n_weights; i++) {
        struct ggml_tensor * w = m.weights[i];
        const float * v = llt_trained_get(t, ggml_get_name(w), ggml_nelements(w));
        if (!v) { rc = llt_set_error(LLT_EFORMAT, "no trained '%s' of %lld values", ggml_get_name(w), (long long) ggml_nelements(w)); goto done; }
        ggml_backend_tensor_set(w, v, 0, ggml_nbytes(w));
    }
    for (int i = 0; i < n; i++) pos[i] = i;
    ggml_backend_tensor_set(in_tokens, tokens, 0, ggml_nbytes(in_tokens));
    ggml_backend_tensor_set(in_pos, pos, 0, ggml_nbytes(in_pos));

    struct ggml_init_params cp = { GGML_DEFAULT_GRAPH_SIZE * ggml_tensor_overhead() + ggml_graph_overhead(), NULL, true };
    ctx_compute = ggml_init(cp);
    struct ggml_tensor * attn[MAX_LAYERS];
    struct ggml_tensor * out = forward(ctx_compute, &m, p, in_tokens, in_pos, n, 1, attn);
    struct ggml_cgraph * gf = ggml_new_graph(ctx_compute);
    ggml_build_forward_expand(gf, out);
    galloc = ggml_gallocr_new(ggml_backend_get_default_buffer_type(backend));
    if (!ggml_gallocr_alloc_graph(galloc, gf)) { rc = llt_set_error(LLT_ENOMEM, "cannot allocate the graph"); goto done; }
    if (ggml_backend_graph_compute(backend, gf) != GGML_STATUS_SUCCESS) { rc = llt_set_error(LLT_ELLAMA, "the forward pass failed"); goto done; }
    ggml_backend_tensor_get(out, logits, 0, ggml_nbytes(out));
done:
    if (galloc) ggml_gallocr_free(galloc);
    if (buf) ggml_backend_buffer_free(buf);
    if (backend) ggml_backend_free(backend);
    if (ctx_compute) ggml_free(ctx_compute);
    if (ctx_static) ggml_free(ctx_static);
    free(pos);
    return rc;
}
