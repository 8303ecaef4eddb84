// Interventions (lltrace/intervene.h): the command line's syntax, the spec file, the JSON form,
// and llt_iv_set_apply() on tensors made here: heads sliced per layout, positions, views
// written through their strides, refusals that leave the tensor unchanged.
#include "lltrace.h"
#include "testutil.h"

#include "ggml.h"

#include <math.h>

static void test_parse(void) {
    struct llt_intervention iv;
    CHECK_INT(llt_iv_parse(LLT_IV_ABLATE, "kqv_out-0:head=1", NULL, &iv), LLT_OK);
    CHECK_STR(iv.node, "kqv_out-0");
    CHECK_INT(iv.head, 1);
    CHECK_INT(iv.pos_first, LLT_IV_ANY);
    CHECK_INT(llt_iv_parse(LLT_IV_SCALE, "l_out-*=0.5:pos=2-4:step=0", NULL, &iv), LLT_OK);
    CHECK_STR(iv.node, "l_out-*");
    CHECK(iv.value == 0.5f, "factor %g", iv.value);
    CHECK_INT(iv.pos_first, 2);
    CHECK_INT(iv.pos_last, 4);
    CHECK_INT(iv.step_first, 0);
    CHECK_INT(iv.step_last, 0);
    CHECK_INT(llt_iv_parse(LLT_IV_ADD, "l_out-1=dir/v.npy*-2.5:pos=3", NULL, &iv), LLT_OK);
    CHECK_STR(iv.file, "dir/v.npy");
    CHECK(iv.value == -2.5f, "alpha %g", iv.value);
    CHECK_INT(iv.pos_first, 3);
    CHECK_INT(llt_iv_parse(LLT_IV_ADD, "l_out-1=v.npy", NULL, &iv), LLT_OK);
    CHECK(iv.value == 1.0f, "default alpha %g", iv.value);
    CHECK_INT(llt_iv_parse(LLT_IV_PATCH, "l_out-0:pos=1:layer=0:seq=2", "clean.gguf", &iv), LLT_OK);
    CHECK_STR(iv.file, "clean.gguf");
    CHECK_INT(iv.layer, 0);
    CHECK_INT(iv.seq, 2);
    // refused, with a message
    CHECK_INT(llt_iv_parse(LLT_IV_SCALE, "l_out-0", NULL, &iv), LLT_EINVAL);
    CHECK(strstr(llt_last_error(), "NODE=FACTOR") != NULL, "%s", llt_last_error());
    CHECK_INT(llt_iv_parse(LLT_IV_SCALE, "l_out-0=x", NULL, &iv), LLT_EINVAL);
    CHECK_INT(llt_iv_parse(LLT_IV_ABLATE, "kq-0:head=-1", NULL, &iv), LLT_EINVAL);
    CHECK_INT(llt_iv_parse(LLT_IV_ABLATE, "kq-0:pos=5-2", NULL, &iv), LLT_EINVAL);
    CHECK_INT(llt_iv_parse(LLT_IV_PATCH, "l_out-0", NULL, &iv), LLT_EINVAL);
    CHECK_INT(llt_iv_parse(LLT_IV_ABLATE, ":head=1", NULL, &iv), LLT_EINVAL);

    char json[512];
    llt_iv_parse(LLT_IV_SCALE, "kq_soft_max-1=2:head=0:pos=1-3", NULL, &iv);
    llt_iv_format_json(&iv, json, sizeof(json));
    CHECK_STR(json, "{\"kind\":\"scale\",\"node\":\"kq_soft_max-1\",\"head\":0,\"pos\":[1,3],\"factor\":2}");
    CHECK_INT(llt_iv_kind_from_name("steer"), LLT_IV_ADD);
    CHECK_INT(llt_iv_kind_from_name("zero"), LLT_IV_ABLATE);
    CHECK_INT(llt_iv_kind_from_name("bogus"), -1);
}

static void test_spec(const char * dir) {
    char path[1024];
    snprintf(path, sizeof(path), "%s/spec.json", dir);
    FILE * f = fopen(path, "w");
    REQUIRE(f, "cannot write %s", path);
    fputs("{\"interventions\": [\n"
          "  {\"kind\": \"ablate\", \"node\": \"kqv_out-0\", \"head\": 1},\n"
          "  {\"kind\": \"scale\", \"node\": \"l_out-*\", \"factor\": 0.5, \"pos\": [2, 5], \"step\": 0, \"layer\": 1},\n"
          "  {\"kind\": \"set\", \"node\": \"re:^ffn_out-[01]$\", \"value\": 3, \"seq\": 1}\n"
          "]}\n", f);
    fclose(f);
    struct llt_iv_set * set = NULL;
    REQUIRE(llt_iv_set_init(&set) == LLT_OK, "init");
    CHECK_INT(llt_iv_set_add_json(set, path), LLT_OK);
    CHECK_INT(llt_iv_set_count(set), 3);
    const struct llt_intervention * iv = llt_iv_set_get(set, 1);
    CHECK_INT(iv->kind, LLT_IV_SCALE);
    CHECK_INT(iv->pos_last, 5);
    CHECK_INT(iv->layer, 1);
    CHECK(llt_iv_set_matches(set, 1, "l_out-1", 1, 0), "l_out-1 at step 0");
    CHECK(!llt_iv_set_matches(set, 1, "l_out-1", 1, 1), "not at step 1");
    CHECK(!llt_iv_set_matches(set, 1, "l_out-0", 0, 0), "not layer 0");
    CHECK(llt_iv_set_matches(set, 2, "ffn_out-1", 1, 7), "regex");
    CHECK(!llt_iv_set_matches(set, 2, "ffn_out-12", 12, 7), "regex anchored");
    CHECK(!llt_iv_set_needs_probs(set), "no probabilities named");
    llt_iv_set_free(set);

    // errors name the file and what is wrong
    f = fopen(path, "w");
    fputs("[{\"kind\": \"scale\", \"node\": \"x\"}]", f);
    fclose(f);
    llt_iv_set_init(&set);
    CHECK_INT(llt_iv_set_add_json(set, path), LLT_EINVAL);
    CHECK(strstr(llt_last_error(), "no \"factor\"") != NULL, "%s", llt_last_error());
    f = fopen(path, "w");
    fputs("[{\"kind\": \"ablate\", \"node\": \"kq_soft_max-*\", \"colour\": 1}]", f);
    fclose(f);
    CHECK_INT(llt_iv_set_add_json(set, path), LLT_EINVAL);
    CHECK(strstr(llt_last_error(), "unknown key \"colour\"") != NULL, "%s", llt_last_error());
    // a name longer than its field is refused, never cut (it would match other nodes); escapes
    // are JSON's, the failure's place its byte
    f = fopen(path, "w");
    fputs("[{\"kind\": \"ablate\", \"op\": \"MUL_MAT_ID_AND_MUCH_LONGER\", \"node\": \"x\"}]", f);
    fclose(f);
    CHECK_INT(llt_iv_set_add_json(set, path), LLT_EINVAL);
    CHECK(strstr(llt_last_error(), "a string longer than 23 bytes (at byte 54)") != NULL, "%s", llt_last_error());
    f = fopen(path, "w");
    fputs("[{\"kind\": \"ablate\", \"node\": \"l_out-\\u0030\"}]", f);
    fclose(f);
    CHECK_INT(llt_iv_set_add_json(set, path), LLT_OK);
    CHECK_STR(llt_iv_set_get(set, 0)->node, "l_out-0");
    llt_iv_set_free(set);
    llt_iv_set_init(&set);
    CHECK_INT(llt_iv_set_add_text(set, LLT_IV_ABLATE, "kq_soft_max-*:head=0", NULL), LLT_OK);
    CHECK(llt_iv_set_needs_probs(set), "kq_soft_max needs flash attention off");
    CHECK_INT(llt_iv_set_add_text(set, LLT_IV_ADD, "l_out-0=/nonexistent.npy", NULL), LLT_EIO);
    llt_iv_set_free(set);
    unlink(path);
}

// a context holding f32 tensors in host memory
static struct ggml_context * ctx_new(void) {
    struct ggml_init_params p = { .mem_size = 16 << 20, .mem_buffer = NULL, .no_alloc = false };
    return ggml_init(p);
}

static void fill(struct ggml_tensor * t) {
    float * d = t->data;
    for (int64_t i = 0; i < ggml_nelements(t); i++) d[i] = (float) (i + 1);
}

static struct llt_iv_where where_of(int32_t n_tokens, int32_t pos0) {
    return (struct llt_iv_where) { .step = 0, .n_tokens = n_tokens, .pos0 = pos0, .n_out = 1, .n_head = 4, .n_head_kv = 2 };
}

static int64_t apply_one(const char * text, enum llt_iv_kind kind, struct ggml_tensor * t, const struct llt_iv_where * w) {
    struct llt_iv_set * set = NULL;
    llt_iv_set_init(&set);
    int64_t n = llt_iv_set_add_text(set, kind, text, NULL);
    if (n == LLT_OK) n = llt_iv_set_apply(set, 0, t, w);
    llt_iv_set_free(set);
    return n;
}

static void test_apply(void) {
    struct ggml_context * ctx = ctx_new();
    const struct llt_iv_where w = where_of(3, 10); // 3 tokens at positions 10, 11, 12
    // kqv_out: [d * n_head, n_tokens], d = 2, 4 heads: head 1 is elements 2..3 of each row
    struct ggml_tensor * a = ggml_new_tensor_2d(ctx, GGML_TYPE_F32, 8, 3);
    ggml_set_name(a, "kqv_out-0");
    fill(a);
    CHECK_INT(apply_one("kqv_out-0:head=1", LLT_IV_ABLATE, a, &w), 6);
    const float * d = a->data;
    for (int64_t i = 0; i < 24; i++) {
        const bool zero = i % 8 == 2 || i % 8 == 3;
        CHECK(zero ? d[i] == 0 : d[i] == (float) (i + 1), "kqv_out element %lld: %g", (long long) i, d[i]);
    }
    // the same slicing on Q as [d, n_head, n_tokens] after the reshape, at one position
    struct ggml_tensor * q = ggml_new_tensor_3d(ctx, GGML_TYPE_F32, 2, 4, 3);
    ggml_set_name(q, "Qcur-0");
    fill(q);
    CHECK_INT(apply_one("Qcur-0=10:head=3:pos=11", LLT_IV_SCALE, q, &w), 2);
    d = q->data;
    for (int64_t i = 0; i < 24; i++) {
        const bool hit = i / 8 == 1 && i % 8 >= 6;
        CHECK(d[i] == (float) (i + 1) * (hit ? 10 : 1), "Qcur element %lld: %g", (long long) i, d[i]);
    }
    // K has n_head_kv (2) heads of 4
    struct ggml_tensor * k = ggml_new_tensor_2d(ctx, GGML_TYPE_F32, 8, 3);
    ggml_set_name(k, "Kcur-0");
    fill(k);
    CHECK_INT(apply_one("Kcur-0=-1:head=1", LLT_IV_SET, k, &w), 12);
    CHECK(((float *) k->data)[4] == -1 && ((float *) k->data)[3] == 4, "K head 1 begins at element 4");
    CHECK_INT(apply_one("Kcur-0:head=2", LLT_IV_ABLATE, k, &w), LLT_EINVAL);
    CHECK(strstr(llt_last_error(), "has 2 heads") != NULL, "%s", llt_last_error());
    // kq_soft_max: [n_kv, n_tokens, n_head]: head is ne[2], tokens ne[1]
    struct ggml_tensor * p = ggml_new_tensor_3d(ctx, GGML_TYPE_F32, 5, 3, 4);
    ggml_set_name(p, "kq_soft_max-1");
    fill(p);
    CHECK_INT(apply_one("kq_soft_max-1:head=2:pos=12", LLT_IV_ABLATE, p, &w), 5);
    d = p->data;
    for (int64_t i = 0; i < 60; i++) {
        const bool hit = i / 15 == 2 && (i / 5) % 3 == 2;
        CHECK(hit ? d[i] == 0 : d[i] == (float) (i + 1), "kq_soft_max element %lld: %g", (long long) i, d[i]);
    }
    // a node without heads refuses a head and stays unchanged
    struct ggml_tensor * l = ggml_new_tensor_2d(ctx, GGML_TYPE_F32, 8, 3);
    ggml_set_name(l, "l_out-0");
    fill(l);
    CHECK_INT(apply_one("l_out-0:head=0", LLT_IV_ABLATE, l, &w), LLT_EINVAL);
    CHECK(strstr(llt_last_error(), "no attention heads") != NULL, "%s", llt_last_error());
    CHECK(((float *) l->data)[0] == 1, "unchanged");
    // the last layer keeps only the output rows: its one row is the last token's
    struct ggml_tensor * last = ggml_new_tensor_2d(ctx, GGML_TYPE_F32, 8, 1);
    ggml_set_name(last, "l_out-1");
    fill(last);
    CHECK_INT(apply_one("l_out-1:pos=11", LLT_IV_ABLATE, last, &w), 0);
    CHECK_INT(apply_one("l_out-1:pos=12", LLT_IV_ABLATE, last, &w), 8);
    // a strided view writes its parent's memory where the view reads
    struct ggml_tensor * parent = ggml_new_tensor_2d(ctx, GGML_TYPE_F32, 12, 3);
    fill(parent);
    struct ggml_tensor * v = ggml_view_2d(ctx, parent, 4, 3, parent->nb[1], 8 * sizeof(float));
    ggml_set_name(v, "Vcur-0");
    CHECK_INT(apply_one("Vcur-0:head=0", LLT_IV_ABLATE, v, &w), 6);
    d = parent->data;
    for (int64_t i = 0; i < 36; i++) {
        const bool hit = i % 12 == 8 || i % 12 == 9;
        CHECK(hit ? d[i] == 0 : d[i] == (float) (i + 1), "parent element %lld: %g", (long long) i, d[i]);
    }
    // f16 elements, and quantized ones refused
    struct ggml_tensor * h = ggml_new_tensor_1d(ctx, GGML_TYPE_F16, 4);
    ggml_set_name(h, "x");
    for (int i = 0; i < 4; i++) ((ggml_fp16_t *) h->data)[i] = ggml_fp32_to_fp16((float) i);
    CHECK_INT(apply_one("x=2", LLT_IV_SCALE, h, &w), 4);
    CHECK(ggml_fp16_to_fp32(((ggml_fp16_t *) h->data)[3]) == 6.0f, "f16 scaled");
    struct ggml_tensor * qt = ggml_new_tensor_1d(ctx, GGML_TYPE_Q8_0, 32);
    ggml_set_name(qt, "x");
    CHECK_INT(apply_one("x=2", LLT_IV_SCALE, qt, &w), LLT_EINVAL);
    CHECK(strstr(llt_last_error(), "q8_0") != NULL, "%s", llt_last_error());
    // scale by 1 keeps every bit, -0 and NaN included
    struct ggml_tensor * z = ggml_new_tensor_1d(ctx, GGML_TYPE_F32, 3);
    ggml_set_name(z, "z");
    ((float *) z->data)[0] = -0.0f;
    ((float *) z->data)[1] = NAN;
    ((float *) z->data)[2] = 1e-40f;
    unsigned char before[12];
    memcpy(before, z->data, 12);
    CHECK_INT(apply_one("z=1", LLT_IV_SCALE, z, &w), 3);
    CHECK(memcmp(before, z->data, 12) == 0, "scale 1 changed bits");
    ggml_free(ctx);
}

int main(void) {
    char dir[] = "/tmp/llt-test-intervene-XXXXXX";
    REQUIRE(mkdtemp(dir), "mkdtemp");
    test_parse();
    test_spec(dir);
    test_apply();
    rmdir(dir);
    if (test_failures) fprintf(stderr, "%d failure(s)\n", test_failures);
    return test_failures ? 1 : 0;
}
