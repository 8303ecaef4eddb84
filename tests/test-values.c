// Integration test: tensor values read during real inference on the built-in tiny model.
// Checkpoints (attention rows sum to 1, the KV cache holds the K/V projections), statistics
// against an independent computation, dumps compared with themselves and across
// quantizations, the live reference comparison, and the stop at the first NaN.
#include "lltrace.h"
#include "testdb.h"

#include "gguf.h"

#include <math.h>
#include <sqlite3.h>
#include <unistd.h>

static char * model(const char * type) {
    char * path = NULL;
    REQUIRE(llt_default_model("tiny", llt_ftype_from_name(type), &path) == LLT_OK, "%s", llt_last_error());
    return path;
}

// a traced generation with the given values options into trace
static void run(const char * model_path, const char * trace, enum llt_level level, struct llt_values_params v,
                int n_predict, struct llt_gen_result * res) {
    struct llt_store * st = NULL;
    REQUIRE(llt_store_open(trace, LLT_STORE_WRITE, &st) == LLT_OK, "%s", llt_last_error());
    struct llt_gen_params p = llt_gen_default_params();
    p.model_path = model_path;
    p.prompt = "The quick brown fox jumps over";
    p.n_predict = n_predict;
    p.n_threads = 2;
    p.level = level;
    p.values = v;
    REQUIRE(llt_generate(&p, st, res) == LLT_OK, "generate: %s", llt_last_error());
    CHECK(res->trace_error[0] == '\0', "tracing failed: %s", res->trace_error);
    llt_store_close(st);
}

static float * read_f32(struct llt_tensor_set * set, const char * name, const struct llt_tensor_info ** info) {
    int i = llt_tensor_set_find(set, name);
    if (i < 0) return NULL;
    *info = llt_tensor_set_get(set, i);
    float * data = malloc((size_t) (*info)->n_elements * sizeof(float));
    REQUIRE(data && llt_tensor_set_read_f32(set, i, data) == LLT_OK, "read %s: %s", name, llt_last_error());
    return data;
}

// ---- checkpoints -------------------------------------------------------------------------

static void check_probs(struct llt_tensor_set * set, int n_layer, int n_steps) {
    int checked = 0;
    for (int s = 0; s < n_steps; s++) {
        for (int l = 0; l < n_layer; l++) {
            char name[64];
            snprintf(name, sizeof(name), "kq_soft_max-%d#%d", l, s);
            const struct llt_tensor_info * ti = NULL;
            float * p = read_f32(set, name, &ti);
            CHECK(p != NULL, "no %s in the dump", name);
            if (!p) continue;
            const int64_t rows = ti->ne[1] * ti->ne[2] * ti->ne[3];
            for (int64_t r = 0; r < rows; r++) {
                double sum = 0;
                for (int64_t j = 0; j < ti->ne[0]; j++) sum += p[r * ti->ne[0] + j];
                if (fabs(sum - 1.0) > 1e-5) { CHECK(0, "%s row %lld sums to %.9f", name, (long long) r, sum); break; }
                checked++;
            }
            free(p);
        }
    }
    CHECK(checked > 0, "no attention rows checked");
}

// the cache of step t, column j, equals the projection of position j (K after RoPE), to f16
static void check_kv(struct llt_tensor_set * set, int n_layer, int n_steps) {
    int64_t compared = 0;
    for (int l = 0; l < n_layer; l++) {
        for (int t = 0; t < n_steps; t++) {
            for (int kv = 0; kv < 2; kv++) {
                char cname[64];
                snprintf(cname, sizeof(cname), "cache_%c_l%d#%d", kv ? 'v' : 'k', l, t);
                const struct llt_tensor_info * ci = NULL;
                float * cache = read_f32(set, cname, &ci);
                CHECK(cache != NULL, "no %s in the dump", cname);
                if (!cache) continue;
                // the projections of steps 0..t cover positions 0..n_pos-1
                int64_t col = 0;
                for (int s = 0; s <= t; s++) {
                    char pname[64];
                    snprintf(pname, sizeof(pname), kv ? "Vcur-%d#%d" : "Kcur-%d#%d.2", l, s);
                    const struct llt_tensor_info * pi = NULL;
                    float * proj = read_f32(set, pname, &pi);
                    CHECK(proj != NULL, "no %s in the dump", pname);
                    if (!proj) break;
                    const int64_t ch = ci->ne[0], n_tok = pi->n_elements / ch;
                    CHECK(pi->n_elements % ch == 0, "%s has %lld elements, channels %lld", pname, (long long) pi->n_elements, (long long) ch);
                    for (int64_t j = 0; j < n_tok && col + j < ci->ne[1]; j++) {
                        for (int64_t c = 0; c < ch; c++) {
                            const float want = proj[j * ch + c], got = cache[(col + j) * ch + c];
                            if (fabsf(got - want) > 1e-3f * fabsf(want) + 1e-6f) {
                                CHECK(0, "%s pos %lld ch %lld: cache %g, projection %s %g", cname, (long long) (col + j),
                                      (long long) c, got, pname, want);
                                j = n_tok; break;
                            }
                            compared++;
                        }
                    }
                    col += n_tok;
                    free(proj);
                }
                CHECK(col == ci->ne[1], "%s holds %lld positions, the projections %lld", cname, (long long) ci->ne[1], (long long) col);
                free(cache);
            }
        }
    }
    CHECK(compared > 0, "no cache values compared");
}

// ---- statistics --------------------------------------------------------------------------


// node_stats of the dumped l_out and ffn_out tensors equal statistics computed here in double
static void check_stats(struct llt_tensor_set * set, int run) {
    int checked = 0;
    for (int i = 0; i < llt_tensor_set_count(set); i++) {
        const struct llt_tensor_info * ti = llt_tensor_set_get(set, i);
        if (strchr(ti->name, ':') || strncmp(ti->name, "cache_", 6) == 0 || strncmp(ti->name, "kq_soft_max", 11) == 0) continue;
        char key[160];
        int64_t step = -1, idx = -1;
        snprintf(key, sizeof(key), "lltrace.tensor.%s.step", ti->name);
        llt_tensor_set_meta_int(set, key, &step);
        snprintf(key, sizeof(key), "lltrace.tensor.%s.idx", ti->name);
        llt_tensor_set_meta_int(set, key, &idx);
        float * x = malloc((size_t) ti->n_elements * sizeof(float));
        REQUIRE(x && llt_tensor_set_read_f32(set, i, x) == LLT_OK, "read");
        double mn = INFINITY, mx = -INFINITY, sum = 0, sum2 = 0;
        for (int64_t k = 0; k < ti->n_elements; k++) {
            mn = fmin(mn, x[k]); mx = fmax(mx, x[k]); sum += x[k]; sum2 += (double) x[k] * x[k];
        }
        const double mean = sum / ti->n_elements, sd = sqrt(fmax(sum2 / ti->n_elements - mean * mean, 0));
        const char * where = "run_id=%d AND step=%lld AND idx=%lld";
        char cond[128];
        snprintf(cond, sizeof(cond), where, run, (long long) step, (long long) idx);
        const double got_n = qd("SELECT n FROM node_stats WHERE %s", cond);
        CHECK(got_n == ti->n_elements, "%s: n %g, want %lld", ti->name, got_n, (long long) ti->n_elements);
        struct { const char * col; double want; } m[] = { { "min", mn }, { "max", mx }, { "mean", mean }, { "std", sd } };
        for (size_t k = 0; k < 4; k++) {
            const double got = qd("SELECT %s FROM node_stats WHERE %s", m[k].col, cond);
            CHECK(fabs(got - m[k].want) <= 1e-6 * fmax(fabs(m[k].want), 1e-3), "%s %s: %.9g, want %.9g", ti->name, m[k].col, got, m[k].want);
        }
        free(x);
        checked++;
    }
    CHECK(checked > 10, "only %d tensors checked", checked);
    // the built-in models' norm weights are 1: a norm and the MUL by its weight have the same
    // values, which fails when the norm was read where it had been fused away
    CHECK(qd("SELECT count(*) FROM node_stats a JOIN steps s ON s.run_id=a.run_id AND s.step=a.step"
            " JOIN nodes n ON n.graph_id=s.graph_id AND n.idx=a.idx AND n.op='RMS_NORM'"
            " JOIN node_stats b ON b.run_id=a.run_id AND b.step=a.step AND b.idx=a.idx+1"
            " WHERE a.run_id=%d AND (a.mean != b.mean OR a.std != b.std OR a.min != b.min)", run) == 0,
          "a norm's statistics differ from its weighted copy's");
    CHECK(qd("SELECT count(*) FROM node_stats x JOIN steps s USING(run_id, step) JOIN nodes n"
            " ON n.graph_id=s.graph_id AND n.idx=x.idx WHERE x.run_id=%d AND n.op='RMS_NORM'", run) > 0, "no norms read");
    // every computing node that is not a view has statistics, in every step
    CHECK(qd("SELECT count(*) FROM steps s JOIN nodes n ON n.graph_id=s.graph_id WHERE s.run_id=%d AND n.is_noop=0"
            " AND n.is_view=0 AND NOT EXISTS (SELECT 1 FROM node_stats x WHERE x.run_id=s.run_id AND x.step=s.step"
            " AND x.idx=n.idx)", run) == 0, "computing nodes without statistics");
}

// ---- dumps across quantizations ----------------------------------------------------------

// mean relative RMSE (rmse / rms of A) over a layer's checkpoints of step 0
static double layer_error(const char * a_path, const char * b_path, int layer) {
    struct llt_tensor_set * a = NULL, * b = NULL;
    REQUIRE(llt_tensor_set_open(a_path, &a) == LLT_OK && llt_tensor_set_open(b_path, &b) == LLT_OK, "%s", llt_last_error());
    double total = 0;
    int n = 0;
    for (int i = 0; i < llt_tensor_set_count(a); i++) {
        const struct llt_tensor_info * ti = llt_tensor_set_get(a, i);
        if (ti->layer != layer) continue;
        int j = llt_tensor_set_find(b, ti->name);
        if (j < 0) continue;
        float * x = malloc((size_t) ti->n_elements * sizeof(float)), * y = malloc((size_t) ti->n_elements * sizeof(float));
        REQUIRE(llt_tensor_set_read_f32(a, i, x) == LLT_OK && llt_tensor_set_read_f32(b, j, y) == LLT_OK, "read");
        double se = 0, ss = 0;
        for (int64_t k = 0; k < ti->n_elements; k++) { se += (double) (x[k] - y[k]) * (x[k] - y[k]); ss += (double) x[k] * x[k]; }
        if (ss > 0) { total += sqrt(se / ss); n++; }
        free(x);
        free(y);
    }
    llt_tensor_set_close(a);
    llt_tensor_set_close(b);
    CHECK(n > 0, "layer %d: nothing compared", layer);
    return n ? total / n : NAN;
}

// ---- NaN ---------------------------------------------------------------------------------

// a copy of the model with one NaN in blk.1.ffn_up.weight
static void model_with_nan(const char * src, const char * dst) {
    struct ggml_context * ctx = NULL;
    struct gguf_init_params gp = { .no_alloc = false, .ctx = &ctx };
    struct gguf_context * in = gguf_init_from_file(src, gp);
    REQUIRE(in, "read %s", src);
    struct ggml_tensor * w = ggml_get_tensor(ctx, "blk.1.ffn_up.weight");
    REQUIRE(w && w->type == GGML_TYPE_F32, "blk.1.ffn_up.weight");
    ((float *) w->data)[5] = NAN;
    struct gguf_context * out = gguf_init_empty();
    gguf_set_kv(out, in);
    for (int64_t i = 0; i < gguf_get_n_tensors(in); i++) gguf_add_tensor(out, ggml_get_tensor(ctx, gguf_get_tensor_name(in, i)));
    REQUIRE(gguf_write_to_file(out, dst, false), "write %s", dst);
    gguf_free(out);
    gguf_free(in);
    ggml_free(ctx);
}

// prompt tokens stand in for the prompt text, which may then be NULL
static void test_prompt_tokens(const char * model_path) {
    const llama_token toks[] = { 1, 5, 9 };
    struct llt_gen_params p = llt_gen_default_params();
    p.model_path = model_path;
    p.prompt = NULL;
    p.prompt_tokens = toks;
    p.n_prompt_tokens = 3;
    p.n_predict = 2;
    p.n_threads = 2;
    struct llt_gen_result res = {0};
    CHECK(llt_generate(&p, NULL, &res) == LLT_OK, "generate from tokens: %s", llt_last_error());
    CHECK(res.n_prompt == 3 && res.n_gen == 2, "prompt %d generated %d, want 3 and 2", res.n_prompt, res.n_gen);
    for (int i = 0; i < 3 && res.tokens; i++) CHECK(res.tokens[i] == toks[i], "token %d: %d, want %d", i, res.tokens[i], toks[i]);
    llt_gen_result_free(&res);
    p.n_prompt_tokens = 0; // neither text nor tokens
    CHECK_INT(llt_generate(&p, NULL, &res), LLT_EINVAL);
    llt_gen_result_free(&res);
}

int main(void) {
    test_dir_make("test-values");
    llt_log_init(false);
    char * f32 = model("F32"), * q8 = model("Q8_0"), * q4 = model("Q4_K_M");
    const int n_layer = llt_preset_find("tiny")->n_layer, n_steps = 4;
    test_prompt_tokens(f32);

    // checkpoints and statistics in one run
    struct llt_values_params v = llt_values_default_params();
    v.checkpoints = true;
    v.dump_type = LLT_DUMP_F32;
    v.dump_path = path_in("f32.gguf");
    struct llt_gen_result res = {0};
    run(f32, path_in("t.db"), LLT_LEVEL_VALUES, v, n_steps, &res);
    CHECK(res.flash_attn_off, "flash attention was not turned off for the checkpoints");
    CHECK(res.stats.n_dumped > 0, "nothing dumped");
    llt_gen_result_free(&res);
    struct llt_tensor_set * set = NULL;
    REQUIRE(llt_tensor_set_open(path_in("f32.gguf"), &set) == LLT_OK, "%s", llt_last_error());
    check_probs(set, n_layer, n_steps);
    check_kv(set, n_layer, n_steps);
    REQUIRE(sqlite3_open_v2(path_in("t.db"), &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK, "open trace");
    check_stats(set, 1);

    // a dump compared with itself: zero difference
    struct llt_tensor_set * same = NULL;
    REQUIRE(llt_tensor_set_open(path_in("f32.gguf"), &same) == LLT_OK, "%s", llt_last_error());
    struct llt_diff_params dp = llt_diff_default_params();
    struct llt_set_diff * rep = NULL;
    CHECK(llt_set_diff(set, same, &dp, &rep) == LLT_OK, "%s", llt_last_error());
    if (rep) {
        CHECK(rep->n_exceed == 0 && rep->n_compared == llt_tensor_set_count(set), "self diff: %d exceed, %d of %d compared",
              rep->n_exceed, rep->n_compared, llt_tensor_set_count(set));
        CHECK(rep->max_abs == 0, "self diff max_abs %g", rep->max_abs);
    }
    llt_set_diff_free(rep);
    llt_tensor_set_close(same);
    llt_tensor_set_close(set);

    // the same checkpoints of step 0 under Q8_0 and Q4_K_M: differences grow as precision falls
    v.dump_step_first = v.dump_step_last = 0;
    v.dump_path = path_in("q8.gguf");
    run(q8, path_in("t.db"), LLT_LEVEL_GRAPH, v, 1, &res);
    llt_gen_result_free(&res);
    v.dump_path = path_in("q4.gguf");
    run(q4, path_in("t.db"), LLT_LEVEL_GRAPH, v, 1, &res);
    llt_gen_result_free(&res);
    // the embedding is a checkpoint, and the first node where a quantized token_embd differs
    struct llt_tensor_set * s32 = NULL, * s4 = NULL;
    REQUIRE(llt_tensor_set_open(path_in("f32.gguf"), &s32) == LLT_OK && llt_tensor_set_open(path_in("q4.gguf"), &s4) == LLT_OK,
            "%s", llt_last_error());
    const int emb = llt_tensor_set_find(s4, "embd#0");
    CHECK(emb >= 0 && llt_tensor_set_get(s4, emb)->order == 0, "embd#0 is not the first checkpoint of the Q4_K_M dump");
    struct llt_diff_params ep = llt_diff_default_params();
    struct llt_set_diff * ed = NULL;
    CHECK(llt_set_diff(s32, s4, &ep, &ed) == LLT_OK, "%s", llt_last_error());
    if (ed) {
        const char * first = ed->first_exceed >= 0 ? llt_tensor_set_get(s32, ed->entries[ed->first_exceed].a)->name : "none";
        CHECK(strcmp(first, "embd#0") == 0, "first difference F32 vs Q4_K_M at %s, want embd#0", first);
    }
    llt_set_diff_free(ed);
    llt_tensor_set_close(s32);
    llt_tensor_set_close(s4);
    for (int l = 0; l < n_layer; l++) {
        const double e8 = layer_error(path_in("f32.gguf"), path_in("q8.gguf"), l);
        const double e4 = layer_error(path_in("f32.gguf"), path_in("q4.gguf"), l);
        printf("layer %d: relative error F32-Q8_0 %.3g, F32-Q4_K_M %.3g\n", l, e8, e4);
        CHECK(e8 > 0 && e8 < 0.05, "layer %d: F32 vs Q8_0 error %g, want small and non-zero", l, e8);
        CHECK(e4 > e8, "layer %d: F32 vs Q4_K_M error %g is not above Q8_0's %g", l, e4, e8);
    }

    // live comparison: the same model against its own dump, then Q8_0 against the F32 dump
    v = llt_values_default_params();
    v.reference = path_in("f32.gguf");
    run(f32, path_in("t.db"), LLT_LEVEL_GRAPH, v, n_steps, &res);
    llt_gen_result_free(&res);
    // flash attention differs from the checkpoint run (which turned it off): compare the
    // nodes before attention, which do not depend on it
    CHECK(qd("SELECT count(*) FROM node_diffs WHERE run_id=4") > 0, "no live comparisons");
    CHECK(qd("SELECT count(*) FROM node_diffs d JOIN steps s USING(run_id, step) JOIN nodes n"
            " ON n.graph_id=s.graph_id AND n.idx=d.idx WHERE d.run_id=4 AND n.name LIKE 'attn_norm-0'"
            " AND (d.max_abs != 0 OR d.shape_ok = 0)") == 0, "attn_norm-0 differs from its own dump");
    run(q8, path_in("t.db"), LLT_LEVEL_GRAPH, v, 1, &res);
    llt_gen_result_free(&res);
    CHECK(qd("SELECT max(max_abs) FROM node_diffs WHERE run_id=5") > 0, "Q8_0 equals F32 everywhere");

    // Statistics read at the CPU backend's stamps, and norms derived from their inputs, equal
    // those read at post calls, bit for bit: break_on_nan reads every node at a post call (the
    // run can stop there)
    v = llt_values_default_params();
    run(f32, path_in("stamps.db"), LLT_LEVEL_VALUES, v, n_steps, &res);
    const int64_t stamped = res.stats.n_stats_stamped, read = res.stats.n_stats_read, derived = res.stats.n_stats_derived;
    printf("statistics: %lld read, %lld at stamps, %lld norms derived\n", (long long) read, (long long) stamped, (long long) derived);
    CHECK(stamped > read / 4 && stamped < read, "%lld of %lld statistics read at stamps", (long long) stamped, (long long) read);
    // the norms a split would read, derived from their inputs (each step after the first of its graph)
    CHECK(derived > 0 && derived < stamped, "%lld norms derived", (long long) derived);
    llt_gen_result_free(&res);
    v.break_on_nan = true;
    run(f32, path_in("stamps.db"), LLT_LEVEL_VALUES, v, n_steps, &res);
    CHECK(res.stats.n_stats_stamped == 0 && res.stats.n_stats_read == read, "with break_on_nan: %lld of %lld at stamps, want 0 of %lld",
          (long long) res.stats.n_stats_stamped, (long long) res.stats.n_stats_read, (long long) read);
    CHECK_INT(res.stats.n_stats_derived, 0);
    llt_gen_result_free(&res);
    {
        sqlite3 * sdb = NULL;
        REQUIRE(sqlite3_open_v2(path_in("stamps.db"), &sdb, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK, "open stamps.db");
        sqlite3 * keep = db;
        db = sdb;
        const char * cols = "step, idx, n, n_nan, n_pinf, n_ninf, n_zero, min, max, mean, std, absmax";
        CHECK(qd("SELECT count(*) FROM node_stats WHERE run_id=1") == (double) read, "run 1 has not %lld statistics rows", (long long) read);
        CHECK(qd("SELECT count(*) FROM (SELECT %s FROM node_stats WHERE run_id=1 EXCEPT SELECT %s FROM node_stats WHERE run_id=2)",
                 cols, cols) == 0, "statistics read at stamps differ from those read at post calls");
        CHECK(qd("SELECT count(*) FROM (SELECT %s FROM node_stats WHERE run_id=2 EXCEPT SELECT %s FROM node_stats WHERE run_id=1)",
                 cols, cols) == 0, "statistics read at post calls missing from the run read at stamps");
        db = keep;
        sqlite3_close(sdb);
    }

    // the first NaN stops the run and is reported with its sources
    model_with_nan(f32, path_in("nan.gguf"));
    v = llt_values_default_params();
    v.break_on_nan = true;
    run(path_in("nan.gguf"), path_in("t.db"), LLT_LEVEL_GRAPH, v, 8, &res);
    CHECK(res.stopped_on_nan, "the NaN did not stop the run");
    CHECK(strstr(res.nan_report, "ffn_up-1") && strstr(res.nan_report, "MUL_MAT") && strstr(res.nan_report, "src0 blk.1.ffn_up.weight"),
          "report: %s", res.nan_report);
    CHECK(res.n_gen == 0, "generated %d tokens after the NaN in the prompt step", res.n_gen);
    llt_gen_result_free(&res);
    sqlite3_close(db);
    REQUIRE(sqlite3_open_v2(path_in("t.db"), &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK, "open trace");
    CHECK(qd("SELECT count(*) FROM runs WHERE id=6 AND status='interrupted' AND nan_report LIKE '%%ffn_up-1%%'") == 1,
          "the run does not record the NaN");
    sqlite3_close(db);

    free(f32); free(q8); free(q4);
    test_dir_remove();
    return test_result("test-values");
}
