// Test: the trained demo model, "sorter".
//   test-sorter train      a short training: the loss falls, and two runs give the same bytes
//   test-sorter model      (the built-in one in the cache, trained on first use)
//   test-sorter MODEL      llama.cpp tokenizes the task one token per word, and greedy
//                          generation through llt_generate sorts >= 99% of 500 held-out prompts
// The held-out prompts and their answers come from this file's own generator (xorshift, a seed
// the training's splitmix stream never used), and the answer is sorted here, by counting.
#include "lltrace.h"
#include "models/sorter.h"
#include "testutil.h"

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
        test_accuracy(path ? path : argv[1]);
        free(path);
    }
    return test_failures ? 1 : 0;
}
