// Test: the trained demo model, "sorter".
//   test-sorter train      a short training: the loss falls, and two runs give the same bytes
//   test-sorter model      (the built-in one in the cache, trained on first use)
//   test-sorter MODEL      llama.cpp tokenizes the task one token per word; the logits llama.cpp
//                          computes from the file equal those of the trainer's own forward pass
//                          (what was trained is what runs); and greedy generation through
//                          llt_generate sorts >= 99% of 500 held-out prompts
// The held-out prompts and their answers come from this file's own generator (xorshift, a seed
// the training's splitmix stream never used), and the answer is sorted here, by counting.
#include "lltrace.h"
#include "models/sorter.h"
#include "testutil.h"

#include <math.h>

static void test_training(void) {
    struct llt_train_params p = llt_train_default_params();
    p.n_steps = 40;
    struct llt_trained * a = NULL, * b = NULL;
    float first_a, last_a, first_b, last_b;
    REQUIRE(llt_train_sorter(&p, &a, &first_a, &last_a) == LLT_OK, "%s", llt_last_error());
    REQUIRE(llt_train_sorter(&p, &b, &first_b, &last_b) == LLT_OK, "%s", llt_last_error());
    // chance is ln(8 letters) ~ 2.08 for a letter; 40 steps get well below half of it
    CHECK(first_a > 1.5f, "loss of the first steps %.3f, want > 1.5 (untrained)", first_a);
    CHECK(last_a < 0.5f * first_a, "loss fell from %.3f to %.3f, want below half", first_a, last_a);
    CHECK(first_a == first_b && last_a == last_b, "two runs: losses %.6f/%.6f and %.6f/%.6f", first_a, last_a, first_b, last_b);
    // every weight, bit for bit; and every one of them trained (K, V and the embedding too)
    const char * names[] = { "token_embd.weight", "blk.0.attn_k.weight", "blk.0.attn_v.weight", "blk.0.ffn_down.weight", "output.weight" };
    const int64_t sizes[] = { 64 * SORT_N_VOCAB, 64 * 64, 64 * 64, 256 * 64, 64 * SORT_N_VOCAB };
    struct llt_train_params p0 = p;
    p0.n_steps = 1;
    struct llt_trained * z = NULL;
    REQUIRE(llt_train_sorter(&p0, &z, NULL, NULL) == LLT_OK, "%s", llt_last_error());
    for (int i = 0; i < 5; i++) {
        const float * wa = llt_trained_get(a, names[i], sizes[i]), * wb = llt_trained_get(b, names[i], sizes[i]);
        const float * wz = llt_trained_get(z, names[i], sizes[i]);
        REQUIRE(wa && wb && wz, "%s missing", names[i]);
        CHECK(memcmp(wa, wb, (size_t) sizes[i] * sizeof(float)) == 0, "%s differs between two runs", names[i]);
        double moved = 0;
        for (int64_t j = 0; j < sizes[i]; j++) moved += (wa[j] - wz[j]) * (wa[j] - wz[j]);
        CHECK(moved > 1e-4, "%s did not move in training (sum of squares %.3g)", names[i], moved);
    }
    llt_trained_free(a);
    llt_trained_free(b);
    llt_trained_free(z);
}

// ---- the model --------------------------------------------------------------------------

static uint64_t xorshift(uint64_t * s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void test_tokens(const char * model_path) {
    struct llama_model_params mp = llama_model_default_params();
    struct llama_model * m = llama_model_load_from_file(model_path, mp);
    REQUIRE(m, "cannot load %s", model_path);
    const struct llama_vocab * v = llama_model_get_vocab(m);
    llama_token tok[32];
    const char * text = "sort: d a c b =";
    int n = llama_tokenize(v, text, (int32_t) strlen(text), tok, 32, true, true);
    // <s> ▁sort: ▁d ▁a ▁c ▁b ▁=, by the ids sorter.h gives them
    const llama_token want[] = { 1, 7, 12, 9, 11, 10, 8 };
    CHECK_INT(n, 7);
    for (int i = 0; i < 7 && i < n; i++) CHECK(tok[i] == want[i], "token %d: got %d, want %d", i, tok[i], want[i]);
    CHECK_INT(llama_vocab_n_tokens(v), SORT_N_VOCAB);
    llama_model_free(m);
}

// every logit of 50 whole examples (prompt, answer, </s>), by llama_decode and by the trainer
static void test_logits(const char * model_path) {
    struct llt_trained * t = NULL;
    REQUIRE(llt_trained_read(model_path, &t) == LLT_OK, "%s", llt_last_error());
    struct llama_model * m = llama_model_load_from_file(model_path, llama_model_default_params());
    REQUIRE(m, "cannot load %s", model_path);
    struct llama_context_params cp = llama_context_default_params();
    cp.n_ctx = 64;
    cp.n_threads = cp.n_threads_batch = 1;
    cp.type_k = cp.type_v = GGML_TYPE_F32; // the trainer keeps K and V in F32 too
    cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
    struct llama_context * ctx = llama_init_from_model(m, cp);
    REQUIRE(ctx, "cannot make a context");
    const struct llt_train_params p = llt_train_default_params();
    uint64_t rng = 0x10617510617cafeULL;
    double max_diff = 0, max_abs = 0;
    int n_logits = 0;
    for (int e = 0; e < 50; e++) {
        int32_t tok[SORT_MAX_TOKENS];
        int n_prompt;
        const int n = llt_sort_example(&rng, tok, &n_prompt);
        float ours[SORT_MAX_TOKENS * SORT_N_VOCAB];
        REQUIRE(llt_sorter_logits(t, &p, tok, n, ours) == LLT_OK, "%s", llt_last_error());
        llama_memory_clear(llama_get_memory(ctx), true);
        struct llama_batch b = llama_batch_init(n, 0, 1);
        for (int i = 0; i < n; i++) {
            b.token[i] = tok[i];
            b.pos[i] = i;
            b.n_seq_id[i] = 1;
            b.seq_id[i][0] = 0;
            b.logits[i] = 1;
        }
        b.n_tokens = n;
        REQUIRE(llama_decode(ctx, b) == 0, "llama_decode failed");
        for (int i = 0; i < n; i++) {
            const float * theirs = llama_get_logits_ith(ctx, i);
            for (int v = 0; v < SORT_N_VOCAB; v++) {
                const double d = fabs((double) theirs[v] - ours[i * SORT_N_VOCAB + v]);
                if (d > max_diff) max_diff = d;
                if (fabs(theirs[v]) > max_abs) max_abs = fabs(theirs[v]);
                n_logits++;
            }
        }
        llama_batch_free(b);
    }
    fprintf(stderr, "sorter: %d logits, llama.cpp against the trainer: largest difference %.3g (largest logit %.3g)\n",
            n_logits, max_diff, max_abs);
    CHECK(max_abs > 1.0, "the logits are all near 0 (largest %.3g)", max_abs);
    CHECK(max_diff <= 1e-4 * max_abs, "largest difference %.3g, want <= 1e-4 of the largest logit %.3g", max_diff, max_abs);
    llama_free(ctx);
    llama_model_free(m);
    llt_trained_free(t);
}

static void test_accuracy(const char * model_path) {
    const int n_prompts = 500;
    uint64_t rng = 0x0dd5eed0fc0ffee1ULL;
    int n_right = 0;
    for (int k = 0; k < n_prompts; k++) {
        // SORT_MIN_LEN..SORT_MAX_LEN distinct letters of the first SORT_N_LETTERS, in random
        // order: draw until n distinct
        const int n = SORT_MIN_LEN + (int) (xorshift(&rng) % (SORT_MAX_LEN - SORT_MIN_LEN + 1));
        bool used[SORT_N_LETTERS] = { false };
        char prompt[64] = "sort:", want[64] = "";
        for (int got = 0; got < n;) {
            int c = (int) (xorshift(&rng) % SORT_N_LETTERS);
            if (used[c]) continue;
            used[c] = true;
            got++;
            snprintf(prompt + strlen(prompt), sizeof(prompt) - strlen(prompt), " %c", 'a' + c);
        }
        strcat(prompt, " =");
        for (int c = 0; c < SORT_N_LETTERS; c++) {
            if (used[c]) snprintf(want + strlen(want), sizeof(want) - strlen(want), " %c", 'a' + c);
        }
        struct llt_gen_params gp = llt_gen_default_params();
        gp.model_path = model_path;
        gp.prompt = prompt;
        gp.n_predict = 10;
        gp.n_threads = 1;
        struct llt_gen_result r;
        REQUIRE(llt_generate(&gp, NULL, &r) == LLT_OK, "%s", llt_last_error());
        // the answer, then </s>: generation stops there
        const bool right = r.text && strcmp(r.text, want) == 0 && r.n_gen == n + 1;
        n_right += right;
        if (!right && n_prompts - n_right <= n_prompts / 100 + 3) {
            fprintf(stderr, "wrong: '%s' gave '%s', want '%s'\n", prompt, r.text ? r.text : "", want);
        }
        llt_gen_result_free(&r);
    }
    fprintf(stderr, "sorter: %d of %d held-out prompts sorted\n", n_right, n_prompts);
    CHECK(n_right * 100 >= n_prompts * 99, "got %d of %d right, want >= 99%%", n_right, n_prompts);
}

int main(int argc, char ** argv) {
    REQUIRE(argc == 2, "usage: test-sorter train | MODEL");
    llt_log_init(false);
    llama_backend_init();
    if (strcmp(argv[1], "train") == 0) {
        test_training();
    } else {
        char * path = NULL;
        if (strcmp(argv[1], "model") == 0) {
            REQUIRE(llt_default_model("sorter", LLAMA_FTYPE_ALL_F32, &path) == LLT_OK, "%s", llt_last_error());
        }
        test_tokens(path ? path : argv[1]);
        test_logits(path ? path : argv[1]);
        test_accuracy(path ? path : argv[1]);
        free(path);
    }
    return test_failures ? 1 : 0;
}
