// Unit test of the logit lens (llt_lens_compute) on checkpointed runs of the tiny model.
// Expected values come from elsewhere: the last layer's lens against llama.cpp's own logits
// (the dumped result_output), for F32 and Q4_K_M weights; every layer of the F32 model
// against a computation written here in double precision, the weights read with gguf.h and
// fread, not through lltrace's tensor sets.
#include "lltrace.h"
#include "testdb.h"

#include "gguf.h"

#include <math.h>

enum { K = 5 };

static char * model(const char * type) {
    char * path = NULL;
    REQUIRE(llt_default_model("tiny", llt_ftype_from_name(type), &path) == LLT_OK, "%s", llt_last_error());
    return path;
}

// a checkpointed run of model; returns its dump path (caller frees)
static char * run(const char * model_path, const char * trace, int32_t * n_prompt) {
    struct llt_store * st = NULL;
    REQUIRE(llt_store_open(trace, LLT_STORE_WRITE, &st) == LLT_OK, "%s", llt_last_error());
    struct llt_gen_params p = llt_gen_default_params();
    p.model_path = model_path;
    p.prompt = "The quick brown fox jumps over";
    p.n_predict = 4;
    p.n_threads = 2;
    p.values.checkpoints = true;
    struct llt_gen_result res;
    REQUIRE(llt_generate(&p, st, &res) == LLT_OK, "generate: %s", llt_last_error());
    REQUIRE(res.dump_path[0], "the run wrote no dump");
    char * dump = strdup(res.dump_path);
    *n_prompt = res.n_prompt;
    llt_gen_result_free(&res);
    llt_store_close(st);
    return dump;
}

static float * tensor(struct gguf_context * g, const char * path, const char * name, int64_t * n) {
    int64_t id = gguf_find_tensor(g, name);
    if (id < 0) return NULL;
    REQUIRE(gguf_get_tensor_type(g, id) == GGML_TYPE_F32, "%s is not f32", name);
    size_t bytes = gguf_get_tensor_size(g, id);
    float * v = malloc(bytes);
    FILE * f = fopen(path, "rb");
    REQUIRE(v && f, "cannot read %s", path);
    REQUIRE(fseek(f, (long) (gguf_get_data_offset(g) + gguf_get_tensor_offset(g, id)), SEEK_SET) == 0 &&
            fread(v, 1, bytes, f) == bytes, "cannot read %s of %s", name, path);
    fclose(f);
    *n = (int64_t) (bytes / sizeof(float));
    return v;
}

static struct gguf_context * open_gguf(const char * path) {
    struct gguf_init_params ip = { .no_alloc = true, .ctx = NULL };
    struct gguf_context * g = gguf_init_from_file(path, ip);
    REQUIRE(g, "cannot open %s", path);
    return g;
}

static const struct llt_lens_row * find_row(const struct llt_lens * lens, int64_t step, int layer, int64_t pos) {
    for (int64_t i = 0; i < lens->n_rows; i++) {
        const struct llt_lens_row * r = &lens->rows[i];
        if (r->step == step && r->layer == layer && r->pos == pos) return r;
    }
    return NULL;
}

// the top K of n logits, largest first (ties: lower id first)
static void top(const float * l, int64_t n, int32_t ids[K]) {
    for (int j = 0; j < K; j++) {
        int64_t best = -1;
        for (int64_t i = 0; i < n; i++) {
            bool taken = false;
            for (int q = 0; q < j; q++) taken |= ids[q] == i;
            if (!taken && (best < 0 || l[i] > l[best])) best = i;
        }
        ids[j] = (int32_t) best;
    }
}

// ---- the last layer is the model's own logits --------------------------------------------

static void check_last_layer(const struct llt_lens * lens, const char * dump_path, double tol) {
    struct gguf_context * g = open_gguf(dump_path);
    int checked = 0;
    for (int64_t step = 0;; step++) {
        char name[64];
        snprintf(name, sizeof(name), "result_output#%lld", (long long) step);
        int64_t n = 0;
        float * logits = tensor(g, dump_path, name, &n);
        if (!logits) break;
        CHECK_INT(n, lens->n_vocab);
        // the position the logits are for: the last l_out of that step
        const struct llt_lens_row * r = NULL;
        for (int64_t i = 0; i < lens->n_rows; i++) {
            const struct llt_lens_row * c = &lens->rows[i];
            if (c->step == step && c->layer == lens->n_layer - 1 && (!r || c->pos > r->pos)) r = c;
        }
        CHECK(r != NULL, "no lens row of the last layer at step %lld", (long long) step);
        if (r) {
            int32_t want[K];
            top(logits, n, want);
            CHECK_INT(r->ids[0], want[0]);
            float amax = 0;
            for (int64_t i = 0; i < n; i++) amax = fmaxf(amax, fabsf(logits[i]));
            for (int j = 0; j < K; j++) {
                const float lw = logits[r->ids[j]];
                CHECK(fabs(r->logits[j] - lw) <= tol * amax, "step %lld rank %d: lens logit %g of token %d, llama.cpp's %g",
                      (long long) step, j, r->logits[j], r->ids[j], lw);
            }
            // softmax over the whole vocabulary, in double
            double sum = 0;
            for (int64_t i = 0; i < n; i++) sum += exp((double) logits[i] - logits[want[0]]);
            CHECK(fabs(r->probs[0] - 1.0 / sum) < 1e-3, "step %lld: top-1 probability %g, wanted %g",
                  (long long) step, r->probs[0], 1.0 / sum);
            checked++;
        }
        free(logits);
    }
    CHECK(checked == 4, "compared %d steps with llama.cpp's logits, wanted 4: the prompt and 3 generated tokens decoded", checked);
    gguf_free(g);
}

// ---- every layer against a computation in double -----------------------------------------

static void check_all_layers(const struct llt_lens * lens, const char * model_path, const char * dump_path) {
    struct gguf_context * gm = open_gguf(model_path), * gd = open_gguf(dump_path);
    int64_t n_out = 0, n_norm = 0;
    float * out = tensor(gm, model_path, "output.weight", &n_out);
    float * norm = tensor(gm, model_path, "output_norm.weight", &n_norm);
    REQUIRE(out && norm, "the model has no output.weight or output_norm.weight");
    const double eps = gguf_get_val_f32(gm, gguf_find_key(gm, "llama.attention.layer_norm_rms_epsilon"));
    const int64_t n_embd = n_norm, n_vocab = n_out / n_norm;
    int checked = 0;
    for (int layer = 0; layer < lens->n_layer; layer++) {
        for (int64_t step = 0; step < 2; step++) {
            char name[64];
            snprintf(name, sizeof(name), "l_out-%d#%lld", layer, (long long) step);
            int64_t n = 0;
            float * h = tensor(gd, dump_path, name, &n);
            REQUIRE(h, "no %s in the dump", name);
            const int64_t cols = n / n_embd;
            for (int64_t c = 0; c < cols; c++) {
                const float * x = h + c * n_embd;
                double sq = 0;
                for (int64_t i = 0; i < n_embd; i++) sq += (double) x[i] * x[i];
                const double scale = 1.0 / sqrt(sq / n_embd + eps);
                float * logits = malloc((size_t) n_vocab * sizeof(float));
                for (int64_t v = 0; v < n_vocab; v++) {
                    double s = 0;
                    for (int64_t i = 0; i < n_embd; i++) s += x[i] * scale * norm[i] * out[v * n_embd + i];
                    logits[v] = (float) s;
                }
                int32_t want[K];
                top(logits, n_vocab, want);
                // a step's columns are its positions; a single column (a generated token, or
                // the last layer of the prompt) is the step's last position
                const struct llt_lens_row * r = NULL;
                if (cols > 1) r = find_row(lens, step, layer, c);
                else for (int64_t i = 0; i < lens->n_rows; i++) {
                    const struct llt_lens_row * q = &lens->rows[i];
                    if (q->step == step && q->layer == layer && (!r || q->pos > r->pos)) r = q;
                }
                CHECK(r != NULL, "no lens row for %s column %lld", name, (long long) c);
                if (!r) { free(logits); continue; }
                for (int j = 0; j < K; j++) {
                    CHECK(r->ids[j] == want[j], "%s column %lld rank %d: token %d, wanted %d", name, (long long) c, j, r->ids[j], want[j]);
                    CHECK(fabs(r->logits[j] - logits[want[j]]) < 1e-4 * (1 + fabs(logits[want[j]])),
                          "%s column %lld rank %d: logit %g, wanted %g", name, (long long) c, j, r->logits[j], logits[want[j]]);
                }
                double sum = 0, ent = 0;
                for (int64_t v = 0; v < n_vocab; v++) sum += exp((double) logits[v] - logits[want[0]]);
                for (int64_t v = 0; v < n_vocab; v++) {
                    double pv = exp((double) logits[v] - logits[want[0]]) / sum;
                    if (pv > 0) ent -= pv * log(pv);
                }
                CHECK(fabs(r->entropy - ent) < 1e-3 * (1 + ent), "%s column %lld: entropy %g, wanted %g", name, (long long) c, r->entropy, ent);
                checked++;
                free(logits);
            }
            free(h);
        }
    }
    CHECK(checked >= 8, "checked %d lens rows, wanted more", checked);
    free(out);
    free(norm);
    gguf_free(gm);
    gguf_free(gd);
}

int main(void) {
    test_dir_make("test-lens");
    llt_log_init(false);

    char * f32 = model("F32");
    int32_t n_prompt = 0;
    char * dump = run(f32, path_in("f32.db"), &n_prompt);
    struct llt_lens_params p = llt_lens_default_params();
    p.model_path = f32;
    p.dump_path = dump;
    p.top_k = K;
    struct llt_lens * lens = NULL;
    REQUIRE(llt_lens_compute(&p, &lens) == LLT_OK, "%s", llt_last_error());
    CHECK_INT(lens->n_layer, 2);
    CHECK_INT(lens->n_vocab, 32000);
    // the prompt's tokens in every layer but the last, which keeps the last position; then
    // one position per layer for 3 of the 4 generated tokens (the last one is not decoded)
    CHECK_INT(lens->n_rows, n_prompt * 1 + 1 + 3 * 2);
    check_last_layer(lens, dump, 1e-5);
    check_all_layers(lens, f32, dump);
    llt_lens_free(lens);
    free(dump);

    char * q4 = model("Q4_K_M");
    dump = run(q4, path_in("q4.db"), &n_prompt);
    p.model_path = q4;
    p.dump_path = dump;
    REQUIRE(llt_lens_compute(&p, &lens) == LLT_OK, "%s", llt_last_error());
    // llama.cpp multiplies with activations rounded to 8 bits (q8_K): close, not equal
    check_last_layer(lens, dump, 2e-2);
    llt_lens_free(lens);
    free(dump);

    // no layer outputs: a clear error
    p.dump_path = f32;
    CHECK_INT(llt_lens_compute(&p, &lens), LLT_ENOTFOUND);
    CHECK(strstr(llt_last_error(), "--checkpoints") != NULL, "message: %s", llt_last_error());
    p.top_k = 0;
    CHECK_INT(llt_lens_compute(&p, &lens), LLT_EINVAL);

    free(f32);
    free(q4);
    test_dir_remove();
    if (test_failures) { fprintf(stderr, "%d failure(s)\n", test_failures); return 1; }
    printf("test-lens: ok\n");
    return 0;
}
