// Diff metrics against a double-precision reference computed here, the tolerance rule at its
// edges, NaN/Inf handling, set diffs (status, summary, graph order) and name maps with their
// transforms.
#include "testutil.h"

#include "lltrace.h"
#include "gguf.h"

#include <math.h>
#include <stdint.h>
#include <unistd.h>

static char tmp_dir[] = "/tmp/lltrace-test-diff-XXXXXX";

// ---- array metrics -----------------------------------------------------------------------

struct ref {
    int64_t n_finite, a_nan, a_inf, b_nan, b_inf, exceed, max_index;
    double  max_abs, mean_abs, max_rel, mean_rel, rmse, nmse, cosine;
};

static struct ref reference(const float * a, const float * b, int64_t n, double tol_abs, double tol_rel) {
    struct ref r = { .max_index = -1 };
    double s_abs = 0, s_rel = 0, s_dd = 0, s_aa = 0, s_bb = 0, s_ab = 0;
    for (int64_t i = 0; i < n; i++) {
        r.a_nan += isnan(a[i]) != 0; r.a_inf += isinf(a[i]) != 0; // glibc's isinf() gives -1 for -inf
        r.b_nan += isnan(b[i]) != 0; r.b_inf += isinf(b[i]) != 0;
        if (!isfinite(a[i]) || !isfinite(b[i])) {
            const bool same = (isnan(a[i]) && isnan(b[i])) || a[i] == b[i];
            r.exceed += !same;
            continue;
        }
        const double da = a[i], db = b[i], d = fabs(da - db), rel = d / fmax(fabs(da), LLT_DIFF_REL_EPS);
        r.exceed += !(d <= tol_abs || d <= tol_rel * fabs(da));
        if (r.max_index < 0 || d > r.max_abs) { r.max_abs = d; r.max_index = i; }
        r.max_rel = fmax(r.max_rel, rel);
        s_abs += d; s_rel += rel; s_dd += d * d; s_aa += da * da; s_bb += db * db; s_ab += da * db;
        r.n_finite++;
    }
    if (r.n_finite == 0) return r;
    r.mean_abs = s_abs / r.n_finite;
    r.mean_rel = s_rel / r.n_finite;
    r.rmse = sqrt(s_dd / r.n_finite);
    r.nmse = s_aa > 0 ? s_dd / s_aa : s_dd > 0 ? INFINITY : 0;
    r.cosine = s_aa > 0 && s_bb > 0 ? s_ab / sqrt(s_aa * s_bb) : s_aa == 0 && s_bb == 0 ? 1 : 0;
    return r;
}

static bool close_rel(double got, double want) {
    if (isinf(want)) return got == want;
    return fabs(got - want) <= 1e-6 * fabs(want) + 1e-300;
}

static void check_diff(const char * label, const float * a, const float * b, int64_t n, double tol_abs, double tol_rel) {
    struct llt_diff d;
    int rc = llt_diff_compute(a, b, n, tol_abs, tol_rel, &d);
    CHECK(rc == LLT_OK, "%s: %s", label, llt_last_error());
    const struct ref r = reference(a, b, n, tol_abs, tol_rel);
    CHECK(d.n == n && d.n_finite == r.n_finite, "%s: n %lld finite %lld, want %lld %lld", label,
        (long long) d.n, (long long) d.n_finite, (long long) n, (long long) r.n_finite);
    CHECK(d.a_nan == r.a_nan && d.a_inf == r.a_inf && d.b_nan == r.b_nan && d.b_inf == r.b_inf,
        "%s: nan/inf counts %lld %lld %lld %lld, want %lld %lld %lld %lld", label, (long long) d.a_nan,
        (long long) d.a_inf, (long long) d.b_nan, (long long) d.b_inf, (long long) r.a_nan, (long long) r.a_inf,
        (long long) r.b_nan, (long long) r.b_inf);
    CHECK(d.n_exceed == r.exceed, "%s: exceed %lld, want %lld", label, (long long) d.n_exceed, (long long) r.exceed);
    CHECK(d.max_abs_index == r.max_index, "%s: max_abs_index %lld, want %lld", label,
        (long long) d.max_abs_index, (long long) r.max_index);
    const char * names[] = { "max_abs", "mean_abs", "max_rel", "mean_rel", "rmse", "nmse", "cosine" };
    const double got[] = { d.max_abs, d.mean_abs, d.max_rel, d.mean_rel, d.rmse, d.nmse, d.cosine };
    const double want[] = { r.max_abs, r.mean_abs, r.max_rel, r.mean_rel, r.rmse, r.nmse, r.cosine };
    for (int k = 0; k < 7; k++) {
        CHECK(close_rel(got[k], want[k]), "%s: %s %.17g, want %.17g", label, names[k], got[k], want[k]);
    }
}

static float wave(int64_t i) { return (float) (sin(0.37 * (double) i) + 0.3 * cos(1.1 * (double) i)); }

static void test_metrics(void) {
    const int64_t lens[] = { 1, 5, 8, 4096, 4099, 12345 };
    for (size_t k = 0; k < sizeof(lens)/sizeof(lens[0]); k++) {
        const int64_t n = lens[k];
        float * a = malloc((size_t) n * sizeof(float)), * b = malloc((size_t) n * sizeof(float));
        REQUIRE(a && b, "out of memory");
        // differences far from the tolerance edge: within (1e-9) or well outside (>= 1e-3)
        for (int64_t i = 0; i < n; i++) {
            a[i] = wave(i);
            b[i] = a[i] + (i % 3 == 0 ? 1e-3f * (float) (1 + i % 7) : i % 3 == 1 ? 0.0f : 1e-9f);
        }
        b[n - 1] = a[n - 1] + 0.5f; // one clear maximum, in the tail
        char label[64];
        snprintf(label, sizeof(label), "metrics n=%lld", (long long) n);
        check_diff(label, a, b, n, 1e-6, 1e-4);
        if (n > 4096) {
            b[n - 1] = a[n - 1];
            b[4097] = a[4097] + 0.75f; // the maximum in a later block
            snprintf(label, sizeof(label), "metrics second block n=%lld", (long long) n);
            check_diff(label, a, b, n, 1e-6, 1e-4);
        }
        // specials on both sides
        for (int64_t i = 0; i < n; i += 13) { a[i] = NAN; b[i] = NAN; }
        for (int64_t i = 4; i < n; i += 31) b[i] = INFINITY;
        for (int64_t i = 6; i < n; i += 37) { a[i] = -INFINITY; b[i] = -INFINITY; }
        for (int64_t i = 9; i < n; i += 41) a[i] = NAN;
        snprintf(label, sizeof(label), "metrics specials n=%lld", (long long) n);
        check_diff(label, a, b, n, 1e-6, 1e-4);
        free(a);
        free(b);
    }
}

static void test_tolerance(void) {
    struct llt_diff d;
    // relative edge: |1.25 - 1| = 0.25 <= 0.25 * 1 (exact in binary)
    const float a1[] = { 1.0f }, b_in[] = { 1.25f }, b_out[] = { nextafterf(1.25f, 2.0f) };
    llt_diff_compute(a1, b_in, 1, 0.0, 0.25, &d);
    CHECK_INT(d.n_exceed, 0);
    llt_diff_compute(a1, b_out, 1, 0.0, 0.25, &d);
    CHECK_INT(d.n_exceed, 1);
    // relative to A, not B: a = 1.25, b = 1 is |d| = 0.25 <= 0.25 * 1.25
    llt_diff_compute(b_in, a1, 1, 0.0, 0.2, &d);
    CHECK_INT(d.n_exceed, 0);
    // absolute edge
    const float a2[] = { 10.0f }, c_in[] = { 10.5f }, c_out[] = { nextafterf(10.5f, 11.0f) };
    llt_diff_compute(a2, c_in, 1, 0.5, 0.0, &d);
    CHECK_INT(d.n_exceed, 0);
    llt_diff_compute(a2, c_out, 1, 0.5, 0.0, &d);
    CHECK_INT(d.n_exceed, 1);
    // either rule suffices
    llt_diff_compute(a2, c_out, 1, 0.5, 0.1, &d);
    CHECK_INT(d.n_exceed, 0);
    // non-finite pairs: NaN/NaN, +inf/+inf and -0/+0 equal; NaN/1, +inf/-inf, 1/inf not
    const float x[] = { NAN, INFINITY, -0.0f, NAN, INFINITY, 1.0f, 0.0f };
    const float y[] = { NAN, INFINITY, 0.0f, 1.0f, -INFINITY, INFINITY, 0.0f };
    llt_diff_compute(x, y, 7, 0.0, 0.0, &d);
    CHECK_INT(d.n_exceed, 3);
    CHECK_INT(d.n_finite, 2);
    CHECK_INT(d.a_nan, 2);
    CHECK_INT(d.b_inf, 3);
    CHECK(d.max_abs == 0 && d.cosine == 1 && d.nmse == 0, "zero pairs: max_abs %g cosine %g nmse %g", d.max_abs, d.cosine, d.nmse);
    // one side all zero
    const float z[] = { 0, 0 }, o[] = { 1, 2 };
    llt_diff_compute(z, o, 2, 0.0, 0.0, &d);
    CHECK(d.cosine == 0 && isinf(d.nmse), "zero A: cosine %g nmse %g", d.cosine, d.nmse);
    // relative difference divides by max(|a|, eps)
    llt_diff_compute(z, o, 2, 0.0, 0.0, &d);
    CHECK(close_rel(d.max_rel, 2.0 / LLT_DIFF_REL_EPS), "max_rel %g, want %g", d.max_rel, 2.0 / LLT_DIFF_REL_EPS);
    // nothing to compare
    CHECK_INT(llt_diff_compute(z, o, 0, 0.0, 0.0, &d), LLT_OK);
    CHECK(d.n == 0 && d.max_abs_index == -1, "empty: n %lld index %lld", (long long) d.n, (long long) d.max_abs_index);
    CHECK_INT(llt_diff_compute(z, o, 2, -1.0, 0.0, &d), LLT_EINVAL);
}

// ---- set diffs ---------------------------------------------------------------------------

struct arrays { const float * data[8]; int64_t n[8]; };

static int get_array(int i, float * dst, void * user_data) {
    const struct arrays * arr = user_data;
    memcpy(dst, arr->data[i], (size_t) arr->n[i] * sizeof(float));
    return LLT_OK;
}

static void path_in_tmp(char * out, size_t cap, const char * name) {
    snprintf(out, cap, "%s/%s", tmp_dir, name);
}

static void test_set_diff(void) {
    float v32[32], w32[32], v3[3];
    for (int k = 0; k < 32; k++) v32[k] = w32[k] = wave(k);
    for (int k = 0; k < 3; k++) v3[k] = wave(k);
    w32[5] += 0.01f; // "changed" differs at element 5
    const struct llt_tensor_desc a_t[] = {
        { "same",    2, { 8, 4, 1, 1 } },
        { "changed", 1, { 32, 1, 1, 1 } },
        { "shape",   2, { 8, 4, 1, 1 } },
        { "only_a",  1, { 3, 1, 1, 1 } },
    };
    const struct llt_tensor_desc b_t[] = {
        { "only_b",  1, { 2, 1, 1, 1 } },
        { "shape",   2, { 4, 8, 1, 1 } },
        { "changed", 1, { 32, 1, 1, 1 } },
        { "same",    3, { 8, 4, 1, 1 } }, // a trailing 1 compares equal
    };
    const struct arrays da = { { v32, v32, v32, v3 }, { 32, 32, 32, 3 } };
    const struct arrays db = { { v3, v32, w32, v32 }, { 2, 32, 32, 32 } };
    char pa[256], pb[256];
    path_in_tmp(pa, sizeof(pa), "a.safetensors");
    path_in_tmp(pb, sizeof(pb), "b.safetensors");
    REQUIRE(llt_safetensors_write(pa, a_t, 4, get_array, (void *) &da) == LLT_OK, "write a: %s", llt_last_error());
    REQUIRE(llt_safetensors_write(pb, b_t, 4, get_array, (void *) &db) == LLT_OK, "write b: %s", llt_last_error());
    struct llt_tensor_set * a = NULL, * b = NULL;
    REQUIRE(llt_tensor_set_open(pa, &a) == LLT_OK, "open a: %s", llt_last_error());
    REQUIRE(llt_tensor_set_open(pb, &b) == LLT_OK, "open b: %s", llt_last_error());
    struct llt_diff_params p = llt_diff_default_params();
    struct llt_set_diff * sd = NULL;
    REQUIRE(llt_set_diff(a, b, &p, &sd) == LLT_OK, "set diff: %s", llt_last_error());
    CHECK_INT(sd->n_entries, 5);
    CHECK_INT(sd->n_compared, 2);
    CHECK_INT(sd->n_within, 1);
    CHECK_INT(sd->n_exceed, 1);
    CHECK_INT(sd->n_shape_mismatch, 1);
    CHECK_INT(sd->n_only_a, 1);
    CHECK_INT(sd->n_only_b, 1);
    CHECK(!sd->graph_order, "safetensors have no graph order");
    REQUIRE(sd->first_exceed >= 0, "no first exceed");
    const struct llt_diff_entry * e = &sd->entries[sd->first_exceed];
    CHECK_STR(llt_tensor_set_get(a, e->a)->name, "changed");
    CHECK_INT(e->d.max_abs_index, 5);
    CHECK(fabs(e->d.max_abs - 0.01) < 1e-6, "changed: max_abs %g, want 0.01", e->d.max_abs);
    CHECK_INT(sd->entries[0].status, LLT_DIFF_WITHIN);
    CHECK_INT(sd->entries[2].status, LLT_DIFF_SHAPE_MISMATCH);
    CHECK_INT(sd->entries[3].status, LLT_DIFF_ONLY_A);
    CHECK_INT(sd->entries[4].status, LLT_DIFF_ONLY_B);
    llt_set_diff_free(sd);

    // name filter
    p.name_glob = "ch*";
    REQUIRE(llt_set_diff(a, b, &p, &sd) == LLT_OK, "set diff: %s", llt_last_error());
    CHECK_INT(sd->n_entries, 1);
    llt_set_diff_free(sd);
    llt_tensor_set_close(a);
    llt_tensor_set_close(b);
}

// a GGUF dump whose execution order is the reverse of its file order
static void write_dump(const char * path, float bump) {
    struct ggml_init_params ip = { .mem_size = 1 << 20, .mem_buffer = NULL, .no_alloc = false };
    struct ggml_context * ctx = ggml_init(ip);
    struct gguf_context * g = gguf_init_empty();
    REQUIRE(ctx && g, "ggml/gguf init");
    const char * names[] = { "x-0#0", "y-1#0", "z-1#0" };
    for (int i = 0; i < 3; i++) {
        struct ggml_tensor * t = ggml_new_tensor_2d(ctx, GGML_TYPE_F32, 4, 2);
        ggml_set_name(t, names[i]);
        for (int k = 0; k < 8; k++) ((float *) t->data)[k] = (float) (k + i) + (i > 0 ? bump : 0.0f);
        gguf_add_tensor(g, t);
        char key[128];
        snprintf(key, sizeof(key), LLT_DUMP_KEY_ORDER, names[i]);
        gguf_set_val_i64(g, key, 2 - i);
    }
    REQUIRE(gguf_write_to_file(g, path, false), "write %s", path);
    gguf_free(g);
    ggml_free(ctx);
}

static void test_graph_order(void) {
    char pa[256], pb[256];
    path_in_tmp(pa, sizeof(pa), "dump-a.gguf");
    path_in_tmp(pb, sizeof(pb), "dump-b.gguf");
    write_dump(pa, 0.0f);
    write_dump(pb, 1.0f); // y and z differ
    struct llt_tensor_set * a = NULL, * b = NULL;
    REQUIRE(llt_tensor_set_open(pa, &a) == LLT_OK, "open: %s", llt_last_error());
    REQUIRE(llt_tensor_set_open(pb, &b) == LLT_OK, "open: %s", llt_last_error());
    CHECK_INT(llt_tensor_set_get(a, 0)->order, 2);
    CHECK_INT(llt_tensor_set_get(a, 1)->layer, 1);
    struct llt_diff_params p = llt_diff_default_params();
    struct llt_set_diff * sd = NULL;
    REQUIRE(llt_set_diff(a, b, &p, &sd) == LLT_OK, "set diff: %s", llt_last_error());
    CHECK(sd->graph_order, "dumps carry graph order");
    CHECK_INT(sd->n_exceed, 2);
    REQUIRE(sd->first_exceed >= 0, "no first exceed");
    CHECK_STR(llt_tensor_set_get(a, sd->entries[sd->first_exceed].a)->name, "z-1#0"); // order 0
    llt_set_diff_free(sd);
    p.layer = 0;
    REQUIRE(llt_set_diff(a, b, &p, &sd) == LLT_OK, "set diff: %s", llt_last_error());
    CHECK_INT(sd->n_entries, 1);
    CHECK_INT(sd->n_within, 1);
    llt_set_diff_free(sd);
    llt_tensor_set_close(a);
    llt_tensor_set_close(b);
}

// ---- name maps ---------------------------------------------------------------------------

// the Hugging Face -> GGUF row permutation of convert_hf_to_gguf.py (LlamaModel.permute),
// written out here on its own: gguf row h*hd + 2*i + j is HF row h*hd + j*hd/2 + i
static int64_t hf_row(int64_t gguf_row, int64_t hd) {
    const int64_t h = gguf_row / hd, w = gguf_row % hd;
    return h * hd + (w % 2) * (hd / 2) + w / 2;
}

static void write_map(const char * path, const char * text) {
    FILE * f = fopen(path, "w");
    REQUIRE(f, "cannot write %s", path);
    fputs(text, f);
    fclose(f);
}

static void test_map(void) {
    // A (llama.cpp layout): a weight with permuted rows, an activation with permuted features,
    // a transposed one, one 3-token activation where B has 5 tokens, one reshaped
    enum { HD = 4, ROWS = 8, IN = 3, TOK = 5 };
    float w_gguf[ROWS * IN], w_hf[ROWS * IN], q_gguf[ROWS * TOK], q_hf[ROWS * TOK];
    float t_a[6], t_b[6], l_a[ROWS * 3], l_b[ROWS * TOK], r_a[12], r_b[12];
    for (int r = 0; r < ROWS; r++) {
        for (int c = 0; c < IN; c++) w_hf[r * IN + c] = wave(r * IN + c);     // torch [out, in]: ne [in, out]
        for (int t = 0; t < TOK; t++) q_hf[t * ROWS + r] = wave(100 + t * ROWS + r); // torch [tok, feat]
    }
    for (int r = 0; r < ROWS; r++) {
        for (int c = 0; c < IN; c++) w_gguf[r * IN + c] = w_hf[hf_row(r, HD) * IN + c];
        for (int t = 0; t < TOK; t++) q_gguf[t * ROWS + r] = q_hf[t * ROWS + hf_row(r, HD)];
    }
    for (int i = 0; i < 2; i++) for (int j = 0; j < 3; j++) { t_a[i * 3 + j] = wave(7 * i + j); t_b[j * 2 + i] = t_a[i * 3 + j]; }
    for (int k = 0; k < ROWS * TOK; k++) l_b[k] = wave(300 + k);
    memcpy(l_a, l_b + ROWS * (TOK - 3), sizeof(l_a));                      // the last 3 tokens
    for (int k = 0; k < 12; k++) r_a[k] = r_b[k] = wave(500 + k);

    const struct llt_tensor_desc a_t[] = {
        { "blk.0.attn_q.weight", 2, { IN, ROWS, 1, 1 } },
        { "Qcur-0#0",            2, { ROWS, TOK, 1, 1 } },
        { "Qcur-0#0.2",          3, { HD, 2, TOK, 1 } }, // a repeat: not named by the map
        { "tr-0#0",              2, { 3, 2, 1, 1 } },
        { "l_out-1#0",           2, { ROWS, 3, 1, 1 } },
        { "flat-0#0",            3, { 2, 3, 2, 1 } },
        { "lr-0#0",              2, { ROWS, 3, 1, 1 } },
        { "lq-0#0",              2, { ROWS, 3, 1, 1 } },
    };
    const struct llt_tensor_desc b_t[] = {
        { "model.layers.0.self_attn.q_proj.weight", 2, { IN, ROWS, 1, 1 } },
        { "model.layers.0.self_attn.q_proj",        2, { ROWS, TOK, 1, 1 } },
        { "tr.0",                                   2, { 2, 3, 1, 1 } },
        { "model.layers.1",                         2, { ROWS, TOK, 1, 1 } },
        { "flat.0",                                 2, { 4, 3, 1, 1 } },
        { "model.layers.0.unmapped",                1, { 2, 1, 1, 1 } },
        { "lr.0",                                   2, { ROWS, TOK, 1, 1 } },
        { "lq.0",                                   2, { ROWS, TOK, 1, 1 } },
    };
    const float pad[2] = { 0, 0 };
    const struct arrays da = { { w_gguf, q_gguf, q_gguf, t_a, l_a, r_a, l_a, q_gguf + ROWS * (TOK - 3) },
                               { ROWS * IN, ROWS * TOK, ROWS * TOK, 6, ROWS * 3, 12, ROWS * 3, ROWS * 3 } };
    const struct arrays db = { { w_hf, q_hf, t_b, l_b, r_b, pad, l_b, q_hf },
                               { ROWS * IN, ROWS * TOK, 6, ROWS * TOK, 12, 2, ROWS * TOK, ROWS * TOK } };
    char pa[256], pb[256], pm[256];
    path_in_tmp(pa, sizeof(pa), "map-a.safetensors");
    path_in_tmp(pb, sizeof(pb), "map-b.safetensors");
    path_in_tmp(pm, sizeof(pm), "test.map");
    REQUIRE(llt_safetensors_write(pa, a_t, 8, get_array, (void *) &da) == LLT_OK, "write: %s", llt_last_error());
    REQUIRE(llt_safetensors_write(pb, b_t, 8, get_array, (void *) &db) == LLT_OK, "write: %s", llt_last_error());
    write_map(pm,
        "lltrace-map 1\n"
        "# weights and activations\n"
        "blk.{L}.attn_q.weight  model.layers.{L}.self_attn.q_proj.weight  qk-permute:1\n"
        "Qcur-{L}   model.layers.{L}.self_attn.q_proj   qk-permute:0   # a comment\n"
        "tr-{L}     tr.{L}       transpose\n"
        "l_out-{L}  model.layers.{L}  last-rows\n"
        "flat-*     flat.*       reshape\n"
        "lr-{L}     lr.{L}       last-rows reshape:-1,3   # the reshape sees 3 tokens, not 5\n"
        "lq-{L}     lq.{L}       last-rows qk-permute:0\n");

    struct llt_tensor_set * a = NULL, * b = NULL;
    struct llt_name_map * map = NULL;
    REQUIRE(llt_tensor_set_open(pa, &a) == LLT_OK, "open: %s", llt_last_error());
    REQUIRE(llt_tensor_set_open(pb, &b) == LLT_OK, "open: %s", llt_last_error());
    REQUIRE(llt_name_map_load(pm, &map) == LLT_OK, "map: %s", llt_last_error());
    struct llt_diff_params p = llt_diff_default_params();
    p.map = map;
    p.tol_abs = 0;
    p.tol_rel = 0;
    struct llt_set_diff * sd = NULL;
    // {head_dim} is in neither file's metadata: a clear error until it is set
    CHECK_INT(llt_set_diff(a, b, &p, &sd), LLT_ENOTFOUND);
    CHECK(strstr(llt_last_error(), "{head_dim}") != NULL && strstr(llt_last_error(), "--") == NULL,
          "message: %s", llt_last_error());
    REQUIRE(llt_name_map_set_var(map, "head_dim", HD) == LLT_OK, "set var");
    REQUIRE(llt_set_diff(a, b, &p, &sd) == LLT_OK, "set diff: %s", llt_last_error());
    CHECK_INT(sd->n_compared, 7);
    CHECK_INT(sd->n_within, 7);
    CHECK_INT(sd->n_unmapped, 2); // Qcur-0#0.2 and model.layers.0.unmapped
    CHECK_INT(sd->n_only_a + sd->n_only_b + sd->n_shape_mismatch, 0);
    for (int i = 0; i < sd->n_entries; i++) {
        const struct llt_diff_entry * e = &sd->entries[i];
        CHECK(e->status == LLT_DIFF_WITHIN && e->d.max_abs == 0, "map entry %s: status %s max_abs %g",
            e->a >= 0 ? llt_tensor_set_get(a, e->a)->name : "?", llt_diff_status_name(e->status), e->d.max_abs);
    }
    CHECK_INT(sd->entries[1].layer, 0);
    llt_set_diff_free(sd);
    llt_name_map_free(map);

    // without the permutation the Q rows do not line up
    write_map(pm, "lltrace-map 1\nQcur-{L} model.layers.{L}.self_attn.q_proj\n");
    REQUIRE(llt_name_map_load(pm, &map) == LLT_OK, "map: %s", llt_last_error());
    p.map = map;
    REQUIRE(llt_set_diff(a, b, &p, &sd) == LLT_OK, "set diff: %s", llt_last_error());
    CHECK(sd->n_compared == 1 && sd->n_exceed == 1, "unpermuted Q: compared %d exceed %d", sd->n_compared, sd->n_exceed);
    llt_set_diff_free(sd);
    llt_name_map_free(map);
    llt_tensor_set_close(a);
    llt_tensor_set_close(b);

    // bad maps
    const struct { const char * text, * want; } bad[] = {
        { "lltrace-map 2\na b\n",                  "version 2" },
        { "a b\n",                                 "lltrace-map 1" },
        { "lltrace-map 1\na b frobnicate\n",       "unknown transform" },
        { "lltrace-map 1\na b split:1,2,2\n",     "unknown transform" }, // part 2 of 2: parts count from 0
        { "lltrace-map 1\na b split:1,0\n",       "unknown transform" },
        { "lltrace-map 1\na b.{L}\n",              "{L}" },
        { "lltrace-map 1\na* b\n",                 "'*'" },
        { "lltrace-map 1\nonly-one-word\n",        "needs" },
        { "lltrace-map 1\n# nothing\n",            "no mapping lines" },
    };
    for (size_t k = 0; k < sizeof(bad)/sizeof(bad[0]); k++) {
        write_map(pm, bad[k].text);
        map = NULL;
        CHECK(llt_name_map_load(pm, &map) == LLT_EFORMAT && map == NULL, "bad map %zu loaded", k);
        CHECK(strstr(llt_last_error(), bad[k].want) != NULL, "bad map %zu: message '%s' lacks '%s'", k,
            llt_last_error(), bad[k].want);
    }
}

// ---- the K/V cache note ------------------------------------------------------------------

static void test_kv_note(void) {
    char note[400];
    CHECK(!llt_diff_kv_note("f32", "f32", "f32", "f32", 1e-3, note, sizeof(note)) && note[0] == '\0', "note for f32 caches: %s", note);
    CHECK(llt_diff_kv_note("f16", "f16", "f32", "f32", 1e-3, note, sizeof(note)), "no note for an f16 cache against f32");
    CHECK(strstr(note, "f16/f16 in A") && strstr(note, "f32/f32 in B") && !strstr(note, "--"), "note: %s", note);
    CHECK(llt_diff_kv_note("f32", "f32", "q8_0", "f32", 5e-3, note, sizeof(note)), "no note for a quantized K cache");
    CHECK(!llt_diff_kv_note("f16", "f16", "f32", "f32", 0.5, note, sizeof(note)), "a cache explains a difference of 0.5: %s", note);
    CHECK(!llt_diff_kv_note("f16", "f16", "f32", "f32", 0.0, note, sizeof(note)), "a note without differences");
    CHECK(!llt_diff_kv_note("f16", "", "f32", "f32", 1e-3, note, sizeof(note)), "a note with a side unknown");

    // a dump says its run's cache types under LLT_DUMP_KEY_PARAMS
    char pa[256];
    path_in_tmp(pa, sizeof(pa), "params.gguf");
    struct ggml_init_params ip = { .mem_size = 1 << 16, .mem_buffer = NULL, .no_alloc = false };
    struct ggml_context * ctx = ggml_init(ip);
    struct gguf_context * g = gguf_init_empty();
    struct ggml_tensor * t = ggml_new_tensor_1d(ctx, GGML_TYPE_F32, 4);
    ggml_set_name(t, "x-0#0");
    memset(t->data, 0, 16);
    gguf_add_tensor(g, t);
    gguf_set_val_str(g, LLT_DUMP_KEY_PARAMS, "{\"n_ctx\":256,\"flash_attn\":\"off\",\"type_k\":\"q8_0\",\"type_v\":\"f16\",\"seed\":1}");
    REQUIRE(gguf_write_to_file(g, pa, false), "write %s", pa);
    gguf_free(g);
    ggml_free(ctx);
    struct llt_tensor_set * set = NULL;
    REQUIRE(llt_tensor_set_open(pa, &set) == LLT_OK, "open: %s", llt_last_error());
    char k[16] = "", v[16] = "";
    CHECK(llt_dump_cache_types(set, k, v, sizeof(k)), "cache types not read");
    CHECK(strcmp(k, "q8_0") == 0 && strcmp(v, "f16") == 0, "cache types %s/%s, want q8_0/f16", k, v);
    llt_tensor_set_close(set);
    // a set without the key: unknown
    path_in_tmp(pa, sizeof(pa), "a.safetensors");
    REQUIRE(llt_tensor_set_open(pa, &set) == LLT_OK, "open: %s", llt_last_error());
    CHECK(!llt_dump_cache_types(set, k, v, sizeof(k)), "cache types from a safetensors file");
    llt_tensor_set_close(set);
}

int main(void) {
    llt_log_init(false);
    REQUIRE(mkdtemp(tmp_dir), "mkdtemp");
    test_metrics();
    test_tolerance();
    test_set_diff();
    test_graph_order();
    test_map();
    test_kv_note();
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", tmp_dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmp_dir);
    return test_result("test-diff");
}
