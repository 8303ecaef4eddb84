// Test: built-in models are deterministic, hold exactly a Llama checkpoint's tensors, and load.
#include "lltrace.h"
#include "testutil.h"

#include <unistd.h>

static char dir[] = "/tmp/lltrace-test-mkmodel-XXXXXX";

static void check_type(const char * type_name, int want_big_type) {
    const int ftype = llt_ftype_from_name(type_name);
    char a[512], b[512];
    snprintf(a, sizeof(a), "%s/tiny-%s-a.gguf", dir, type_name);
    snprintf(b, sizeof(b), "%s/tiny-%s-b.gguf", dir, type_name);
    CHECK_INT(llt_mkmodel("tiny", ftype, NULL, a), LLT_OK);
    CHECK_INT(llt_mkmodel("tiny", ftype, NULL, b), LLT_OK);
    CHECK(same_bytes(a, b), "%s: two makes differ", type_name);

    struct llt_registry * reg = NULL;
    REQUIRE(llt_registry_load(a, &reg) == LLT_OK, "%s", llt_last_error());
    const struct llt_preset * p = llt_preset_find("tiny");
    CHECK_INT(llt_registry_count(reg), 3 + 9 * p->n_layer);
    int n_big = 0;
    for (int i = 0; i < llt_registry_count(reg); i++) {
        const struct llt_weight * w = llt_registry_get(reg, i);
        CHECK(strstr(w->name, "bias") == NULL && strstr(w->name, "scale") == NULL && strstr(w->name, "rope") == NULL,
              "stray tensor %s", w->name);
        if (w->type == want_big_type) n_big++;
        CHECK(w->file_offset % 32 == 0, "%s: data offset %llu not aligned", w->name, (unsigned long long) w->file_offset);
    }
    CHECK(n_big > 0, "%s: no tensor of type %s", type_name, ggml_type_name((enum ggml_type) want_big_type));
    // two answers at once: each lives in its caller's buffer
    char arch[32], layers[16], want_layers[16], cut[3];
    snprintf(want_layers, sizeof(want_layers), "%d", p->n_layer);
    CHECK_INT(llt_registry_meta(reg, "general.architecture", arch, sizeof(arch)), LLT_OK);
    CHECK_INT(llt_registry_meta(reg, "llama.block_count", layers, sizeof(layers)), LLT_OK);
    CHECK_STR(arch, "llama");
    CHECK_STR(layers, want_layers);
    CHECK_INT(llt_registry_meta(reg, "general.architecture", cut, sizeof(cut)), LLT_OK);
    CHECK_STR(cut, "ll");
    CHECK_INT(llt_registry_meta(reg, "no.such.key", cut, sizeof(cut)), LLT_ENOTFOUND);
    CHECK_STR(cut, "");
    llt_registry_free(reg);

    struct llama_model * m = llama_model_load_from_file(a, llama_model_default_params());
    CHECK(m != NULL, "%s: llama.cpp cannot load it", type_name);
    if (m) {
        CHECK_INT(llama_model_n_layer(m), p->n_layer);
        CHECK_INT(llama_model_n_embd(m), p->n_embd);
        CHECK_INT(llama_model_n_head(m), p->n_head);
        CHECK_INT(llama_model_n_head_kv(m), p->n_head_kv);
        CHECK_INT(llama_vocab_n_tokens(llama_model_get_vocab(m)), 32000);
        CHECK_INT(llama_model_ftype(m) & ~LLAMA_FTYPE_GUESSED, ftype);
        llama_model_free(m);
    }
    unlink(a);
    unlink(b);
}

// the cache makes a model once, and the library says nothing on stderr while doing it
static void check_default_model(void) {
    char cache[512], err_path[512];
    snprintf(cache, sizeof(cache), "%s/cache", dir);
    snprintf(err_path, sizeof(err_path), "%s/stderr.txt", dir);
    setenv("LLTRACE_CACHE", cache, 1);
    CHECK(!llt_default_model_cached("tiny", LLAMA_FTYPE_ALL_F32), "an empty cache holds the tiny model");
    fflush(stderr);
    const int saved = dup(2);
    REQUIRE(saved >= 0 && freopen(err_path, "w", stderr), "redirect stderr");
    char * path = NULL;
    const int rc = llt_default_model("tiny", LLAMA_FTYPE_ALL_F32, &path);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    CHECK_INT(rc, LLT_OK);
    CHECK(llt_default_model_cached("tiny", LLAMA_FTYPE_ALL_F32), "the model made is not in the cache");
    FILE * f = fopen(err_path, "rb");
    long n = -1;
    if (f) { fseek(f, 0, SEEK_END); n = ftell(f); fclose(f); }
    CHECK(n == 0, "the library wrote %ld bytes on stderr, want 0", n);
    if (path) unlink(path);
    free(path);
    unlink(err_path);
    char models[600];
    snprintf(models, sizeof(models), "%s/models", cache);
    rmdir(models);
    rmdir(cache);
    unsetenv("LLTRACE_CACHE");
}

int main(void) {
    REQUIRE(mkdtemp(dir), "mkdtemp");
    llt_log_init(false);
    llama_backend_init();

    check_type("F32", GGML_TYPE_F32);
    check_type("F16", GGML_TYPE_F16);
    check_type("Q8_0", GGML_TYPE_Q8_0);
    check_type("Q4_K_M", GGML_TYPE_Q4_K);
    check_default_model();

    char out[512];
    snprintf(out, sizeof(out), "%s/x.gguf", dir);
    CHECK_INT(llt_mkmodel("huge", LLAMA_FTYPE_ALL_F32, NULL, out), LLT_EINVAL);
    snprintf(out, sizeof(out), "%s/missing/x.gguf", dir);
    CHECK(llt_mkmodel("tiny", LLAMA_FTYPE_ALL_F32, NULL, out) != LLT_OK, "wrote into a missing folder");
    CHECK(access(out, F_OK) != 0, "left a file behind");

    rmdir(dir);
    return test_result("test-mkmodel");
}
