// test-tokenize: llt_tokenize refuses exactly the texts llama.cpp's SentencePiece tokenizer
// would throw on (and abort the process), and gives llama_tokenize's own tokens for the rest.
//   test-tokenize           the demo model 'sorter' (from the cache) and vocabularies made here
//
// Each text is tried in two child processes: one calls llama_tokenize directly (it either
// returns or dies of the C++ exception), the other llt_tokenize; the refusals must be the same.
// The vocabularies made here (vocab-only GGUFs, no byte tokens) make the replay's every rule
// matter: scores that order the merges and ties left to right, special tokens that overlap, spaces stripped beside special tokens (RSTRIP, which
// llama.cpp sets for models named phi3), and no space in front.
#include "testutil.h"
#include "lltrace.h"
#include "gguf.h"

#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>

// ---- a vocabulary --------------------------------------------------------------------------

struct vtok {
    const char * text;
    float        score;
    int          type; // 1 normal, 2 unknown, 3 control, 4 user-defined
};

static const struct vtok made_vocab[] = {
    { "<unk>", 0, 2 }, { "<s>", 0, 3 }, { "</s>", 0, 3 }, { "<|endoftext|>", 0, 3 },
    { "<|x|>", 0, 4 }, { "<|xy|>", 0, 4 }, { "|xy", 0, 4 },
    { "a", -1, 1 }, { "b", -1, 1 }, { "c", -2, 1 }, { "ab", -0.5f, 1 },
    { "bc", -0.25f, 1 }, { "abc", -3, 1 }, { "ca", -0.25f, 1 }, { "\xe2\x96\x81" "a", -0.5f, 1 },
    { "\xe2\x96\x81" "b", -2, 1 }, { "\xe2\x96\x81" "ab", -1, 1 }, { "cab", -0.1f, 1 }, { "\xc3\xa9", -1, 1 },
    { "\xe2\x96\x81" "c", -1, 1 }, { "aa", 0, 1 }, { "aaa", -1, 1 }, { "d\xe2\x96\x81", -1, 1 },
    { "\xe2\x96\x81\xe2\x96\x81", -1, 1 }, { "y", -1, 1 }, { "dc", -0.25f, 1 }, { "cy", 0, 1 },
};
#define N_MADE (int) (sizeof(made_vocab) / sizeof(made_vocab[0]))

// a llama GGUF with the tokenizer and hyperparameters, no tensors (loaded vocab-only)
static void write_vocab(const char * path, const char * name, int space_prefix) {
    struct gguf_context * g = gguf_init_empty();
    const char * texts[N_MADE];
    float scores[N_MADE];
    int32_t types[N_MADE];
    for (int i = 0; i < N_MADE; i++) {
        texts[i] = made_vocab[i].text;
        scores[i] = made_vocab[i].score;
        types[i] = made_vocab[i].type;
    }
    gguf_set_val_str(g, "general.architecture", "llama");
    gguf_set_val_str(g, "general.name", name);
    gguf_set_val_u32(g, "llama.context_length", 64);
    gguf_set_val_u32(g, "llama.embedding_length", 16);
    gguf_set_val_u32(g, "llama.block_count", 1);
    gguf_set_val_u32(g, "llama.feed_forward_length", 32);
    gguf_set_val_u32(g, "llama.attention.head_count", 2);
    gguf_set_val_f32(g, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
    gguf_set_val_str(g, "tokenizer.ggml.model", "llama");
    gguf_set_val_str(g, "tokenizer.ggml.pre", "default");
    gguf_set_arr_str(g, "tokenizer.ggml.tokens", texts, N_MADE);
    gguf_set_arr_data(g, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, scores, N_MADE);
    gguf_set_arr_data(g, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, types, N_MADE);
    gguf_set_val_u32(g, "tokenizer.ggml.unknown_token_id", 0);
    gguf_set_val_u32(g, "tokenizer.ggml.bos_token_id", 1);
    gguf_set_val_u32(g, "tokenizer.ggml.eos_token_id", 2);
    if (space_prefix >= 0) gguf_set_val_bool(g, "tokenizer.ggml.add_space_prefix", space_prefix != 0);
    REQUIRE(gguf_write_to_file(g, path, true), "cannot write %s", path);
    gguf_free(g);
}

static struct llama_model * load_vocab(const char * path) {
    struct llama_model_params mp = llama_model_default_params();
    mp.vocab_only = true;
    struct llama_model * m = llama_model_load_from_file(path, mp);
    REQUIRE(m, "cannot load %s: %s", path, llt_last_error());
    return m;
}

// ---- one text, both ways -------------------------------------------------------------------

enum { REFUSED = 3, DIFFERENT = 4, OTHER = 5 };

// runs fn(text) in a child; its exit status, or 128 + the signal that ended it
static int in_child(int (*fn)(const struct llama_model *, const char *), const struct llama_model * m, const char * text) {
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    REQUIRE(pid >= 0, "fork failed");
    if (pid == 0) {
        struct rlimit no_core = { 0, 0 };
        setrlimit(RLIMIT_CORE, &no_core);
        if (!freopen("/dev/null", "w", stderr)) _exit(OTHER); // terminate's message
        _exit(fn(m, text));
    }
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid, "waitpid failed");
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static int32_t raw_tokens(const struct llama_model * m, const char * text, llama_token * out, int32_t n_max) {
    return llama_tokenize(llama_model_get_vocab(m), text, (int32_t) strlen(text), out, n_max, true, true);
}

static int raw(const struct llama_model * m, const char * text) {
    llama_token t[512];
    return raw_tokens(m, text, t, 512) >= 0 ? 0 : OTHER;
}

static int checked(const struct llama_model * m, const char * text) {
    struct llt_tokenizer * tk = NULL;
    llama_token * t = NULL, want[512];
    int32_t n = 0;
    int rc = llt_tokenizer_init(m, &tk) == LLT_OK ? llt_tokenize(tk, text, true, &t, &n) : LLT_ENOMEM;
    int status = rc == LLT_EINVAL ? REFUSED : rc != LLT_OK ? OTHER : 0;
    if (rc == LLT_OK && (raw_tokens(m, text, want, 512) != n || memcmp(t, want, (size_t) n * sizeof(llama_token)) != 0)) {
        status = DIFFERENT;
    }
    free(t);
    llt_tokenizer_free(tk);
    return status;
}

// both ways agree on text; counts the refusals; whether llama.cpp threw
static bool compare(const char * what, const struct llama_model * m, const char * text, int * n_refused) {
    const int r = in_child(raw, m, text), c = in_child(checked, m, text);
    const bool threw = r == 128 + SIGABRT;
    CHECK(r == 0 || threw, "%s: llama_tokenize on '%s' ended with %d", what, text, r);
    CHECK(c == (threw ? REFUSED : 0), "%s: '%s': llama.cpp %s, llt_tokenize ended with %d%s", what, text,
          threw ? "throws" : "tokenizes it", c, c == DIFFERENT ? " (other tokens)" : c == REFUSED ? " (refused)" : "");
    if (threw) (*n_refused)++;
    return threw;
}

// n random texts of pieces from the alphabet: each compared both ways
// random texts per vocabulary: 1500, or LLTRACE_TEST_TEXTS (fewer under the sanitizers)
static int n_texts(void) {
    const char * v = getenv("LLTRACE_TEST_TEXTS");
    return v && atoi(v) > 0 ? atoi(v) : 1500;
}

static void fuzz(const char * what, const struct llama_model * m, const char * const * alphabet, int n_alpha, int n) {
    uint64_t x = 0x9e3779b97f4a7c15u;
    int n_refused = 0;
    for (int i = 0; i < n; i++) {
        char text[256] = "";
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        const int len = 1 + (int) (x % 7);
        for (int k = 0; k < len; k++) {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            strcat(text, alphabet[x % (uint64_t) n_alpha]);
        }
        compare(what, m, text, &n_refused);
    }
    fprintf(stderr, "%s: %d texts, %d refused\n", what, n, n_refused);
    // both kinds were tried
    CHECK(n_refused >= n / 20 && n_refused <= n - n / 20, "%s: %d of %d refused: the texts try too little", what, n_refused, n);
}

// ---- the cases -------------------------------------------------------------------------------

static void test_sorter(void) {
    char * path = NULL;
    REQUIRE(llt_default_model("sorter", LLAMA_FTYPE_ALL_F32, &path) == LLT_OK, "%s", llt_last_error());
    struct llama_model * m = load_vocab(path);
    struct llt_tokenizer * tk = NULL;
    REQUIRE(llt_tokenizer_init(m, &tk) == LLT_OK, "%s", llt_last_error());

    // the demo model's message names the character
    static const struct { const char * text, * named; } bad[] = {
        { "Hello, my name is", "'H' (U+0048)" }, { "sort: z y x =", "'z' (U+007A)" }, { "SORT: D C =", "'S' (U+0053)" },
        { "\xf0\x9f\x98\x80", "'\xf0\x9f\x98\x80' (U+1F600)" }, { "sort: a\n", "the control character U+000A" },
        { "sort: d  a =", "a space (U+0020)" }, { "sort: \xff", "the byte 0xFF (not UTF-8)" },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        llama_token * t = NULL;
        int32_t n = -1;
        CHECK_INT(llt_tokenize(tk, bad[i].text, true, &t, &n), LLT_EINVAL);
        CHECK(!t && n == 0, "'%s': tokens given with the refusal", bad[i].text);
        CHECK(strstr(llt_last_error(), "the demo model 'sorter' knows only") && strstr(llt_last_error(), bad[i].named) &&
              strstr(llt_last_error(), "lltrace mkmodel tiny") && !strchr(llt_last_error(), '\n'),
              "'%s': got '%s', want the demo model's line naming %s", bad[i].text, llt_last_error(), bad[i].named);
    }
    // its own task, token for token (sorter.h: <s> ▁sort: ▁d ▁a ▁c ▁b ▁=)
    llama_token * t = NULL;
    int32_t n = 0;
    CHECK_INT(llt_tokenize(tk, "sort: d a c b =", true, &t, &n), LLT_OK);
    const llama_token want[] = { 1, 7, 12, 9, 11, 10, 8 };
    CHECK(n == 7 && t && memcmp(t, want, sizeof(want)) == 0, "'sort: d a c b =': got %d tokens", n);
    free(t);
    llt_tokenizer_free(tk);

    static const char * const alphabet[] = {
        "sort:", " sort:", "s", "o", "r", "t", ":", " ", "  ", "a", " a", " b", "c", " d", "e", "f", " g", "h", "=", " =", "z",
        "<s>", "</s>", "<unk>", "\xe2\x96\x81", "\n", "\xc3\xa9", "\xff", "\xe2",
    };
    fuzz("sorter", m, alphabet, (int) (sizeof(alphabet) / sizeof(alphabet[0])), n_texts());
    llama_model_free(m);
    free(path);
}

// a text whose fate one rule of the replay decides
struct decided {
    const char * text;
    bool         refused;
    const char * rule;
};

static void test_made(const char * what, const char * name, int space_prefix, const struct decided * cases, int n_cases) {
    const char * path = path_in(what);
    write_vocab(path, name, space_prefix);
    struct llama_model * m = load_vocab(path);
    int n_refused = 0;
    for (int i = 0; i < n_cases; i++) {
        CHECK(compare(what, m, cases[i].text, &n_refused) == cases[i].refused, "%s: '%s' %s by llama.cpp: %s", what,
              cases[i].text, cases[i].refused ? "accepted" : "refused", cases[i].rule);
    }
    static const char * const alphabet[] = {
        "a", "b", "c", "d", " ", "  ", "\xc3\xa9", "<s>", "</s>", "<|x|>", "<|xy|>", "<|x", "|xy", "y", "\xc3", "<unk>", "aa",
    };
    fuzz(what, m, alphabet, (int) (sizeof(alphabet) / sizeof(alphabet[0])), n_texts());
    // a vocabulary that is not the sorter's: the plain message
    struct llt_tokenizer * tk = NULL;
    llama_token * t = NULL;
    int32_t n = 0;
    REQUIRE(llt_tokenizer_init(m, &tk) == LLT_OK, "%s", llt_last_error());
    CHECK_INT(llt_tokenize(tk, "a z", true, &t, &n), LLT_EINVAL);
    CHECK(strstr(llt_last_error(), "vocabulary cannot encode 'z' (U+007A)") && !strstr(llt_last_error(), "sorter"),
          "%s: got '%s'", what, llt_last_error());
    llt_tokenizer_free(tk);
    llama_model_free(m);
}

// a full vocabulary (byte tokens): nothing is refused, and the tokens are llama.cpp's
static void test_tiny(void) {
    char * path = NULL;
    REQUIRE(llt_default_model("tiny", LLAMA_FTYPE_ALL_F32, &path) == LLT_OK, "%s", llt_last_error());
    struct llama_model * m = load_vocab(path);
    int n_refused = 0;
    static const char * const texts[] = { "Hello, my name is", "sort: z y x =", "\xf0\x9f\x98\x80 \xff\n<s>", "" };
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) compare("tiny", m, texts[i], &n_refused);
    CHECK_INT(n_refused, 0);
    llama_model_free(m);
    free(path);
}

int main(int argc, char ** argv) {
    (void) argc;
    // ggml's terminate handler would run gdb for a backtrace in every child that throws
    if (!getenv("GGML_NO_BACKTRACE")) {
        setenv("GGML_NO_BACKTRACE", "1", 1);
        execv("/proc/self/exe", argv);
    }
    llt_log_init(false);
    llama_backend_init();
    test_dir_make("test-tokenize");
    test_sorter();
    // "▁" alone is no token in these vocabularies: where spaces go decides
    static const struct decided made[] = {
        { "a", false, "a space in front: \u2581a" },
        { "d ", true, "a space in front: \u2581 is left alone" },
        { "<|x|> a", true, "after a special token a space in front: \u2581\u2581a merges \u2581a first" },
        { "<|xy|>", false, "the longest special text first (else |xy cuts it)" },
    }, no_prefix[] = {
        { "d ", false, "no space in front: d\u2581" },
        { "<|x|> a", false, "no space in front: \u2581a" },
        { "dca", false, "equal scores: the left pair dc first (else d is left alone)" },
        { "dcy", true, "the best score first: cy (then d is left alone)" },
    }, phi3[] = {
        { "<|x|> a", false, "RSTRIP eats the space after <|x|>: \u2581a" },
        { "d ", true, "a space in front" },
    };
    test_made("made", "made", -1, made, 4);
    test_made("no-prefix", "made", 0, no_prefix, 4);
    test_made("phi3", "phi3-made", 1, phi3, 2); // llama.cpp sets RSTRIP on its special tokens
    test_tiny();
    test_dir_remove();
    return test_failures ? 1 : 0;
}
