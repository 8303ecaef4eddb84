// The analysis layer on a hand-made trace: one graph of four nodes (embedding rows, a matrix
// multiply, a layer output, the logits) run by a prompt step and three generation steps,
// some nodes untimed as a sampled run leaves them. Every expected figure is worked out here
// from the rows inserted: bytes and FLOPs by the cost model's rules, the estimate, mean,
// median and p90, the l_out gaps and the parts of a step.
#include "lltrace.h"
#include "testutil.h"

#include <math.h>
#include <sqlite3.h>

static sqlite3 * db;

static void exec(const char * sql) {
    char * msg = NULL;
    REQUIRE(sqlite3_exec(db, sql, NULL, NULL, &msg) == SQLITE_OK, "%s: %s", sql, msg ? msg : "");
}

// node times of a step: rows of node_times
static void add_times(int step, const int64_t (*t)[3], int n) {
    char sql[256];
    for (int i = 0; i < n; i++) {
        snprintf(sql, sizeof(sql), "INSERT INTO node_times(run_id, step, idx, t_begin_ns, t_end_ns) VALUES"
                 " (1, %d, %lld, %lld, %lld)", step, (long long) t[i][0], (long long) t[i][1], (long long) t[i][2]);
        exec(sql);
    }
}

static const struct llt_analysis_group * find(const struct llt_analysis_groups * gs, enum llt_phase phase, const char * key) {
    for (int32_t i = 0; i < gs->n; i++) {
        if (gs->g[i].phase == phase && strcmp(gs->g[i].key, key) == 0) return &gs->g[i];
    }
    return NULL;
}

#define CHECK_NEAR(got, want) do { \
    double g_ = (got), w_ = (want); \
    CHECK(fabs(g_ - w_) <= 1e-9 * fmax(1, fabs(w_)), "got %.17g, want %.17g", g_, w_); \
} while (0)

int main(void) {
    test_dir_make("test-analysis");
    struct llt_store * st = NULL;
    REQUIRE(llt_store_open(path_in("t.db"), LLT_STORE_WRITE, &st) == LLT_OK, "%s", llt_last_error());
    db = llt_store_db(st);
    exec("INSERT INTO runs(id, status, level, model_name, file_type, n_layer, t_tokenize_ns)"
         " VALUES (1, 'ok', 'profile', 'hand', 'F32', 1, 100);"
         "INSERT INTO weights(run_id, id, name, type, n_dims, ne0, ne1, ne2, ne3, bytes, layer)"
         " VALUES (1, 0, 'w', 'f32', 2, 4, 4, 1, 1, 64, -1);"
         "INSERT INTO graphs VALUES (7, 1, 4);"
         // embd = GET_ROWS(w, ids); x-0 = w · embd; l_out-0 = x-0 + embd; result_output = w · l_out-0
         "INSERT INTO nodes(graph_id, idx, op, name, layer, type, ne0, ne1, ne2, ne3, bytes, is_view, is_noop, buffer,"
         " layer_out, fused) VALUES"
         " (7, 0, 'GET_ROWS', 'embd', -1, 'f32', 4, 1, 1, 1, 16, 0, 0, 'CPU', 0, 0),"
         " (7, 1, 'MUL_MAT', 'x-0', 0, 'f32', 4, 1, 1, 1, 16, 0, 0, 'CPU', 0, 0),"
         " (7, 2, 'ADD', 'l_out-0', 0, 'f32', 4, 1, 1, 1, 16, 0, 0, 'CPU', 1, 0),"
         " (7, 3, 'MUL_MAT', 'result_output', -1, 'f32', 4, 1, 1, 1, 16, 0, 0, 'CPU', 0, 0);"
         "INSERT INTO node_srcs(graph_id, idx, slot, kind, src_idx, weight_id, name, bytes) VALUES"
         " (7, 0, 0, 'weight', NULL, 0, 'w', 64), (7, 0, 1, 'input', NULL, NULL, 'ids', 4),"
         " (7, 1, 0, 'weight', NULL, 0, 'w', 64), (7, 1, 1, 'node', 0, NULL, 'embd', 16),"
         " (7, 2, 0, 'node', 1, NULL, 'x-0', 16), (7, 2, 1, 'node', 0, NULL, 'embd', 16),"
         " (7, 3, 0, 'weight', NULL, 0, 'w', 64), (7, 3, 1, 'node', 2, NULL, 'l_out-0', 16);"
         "INSERT INTO steps(run_id, step, decode, phase, pos0, n_tokens, graph_id, t_begin_ns, t_end_ns,"
         " compute_begin_ns, compute_end_ns, t_sample_ns) VALUES"
         " (1, 0, 0, 'prompt', 0, 1, 7, 0, 300, 5, 290, 4),"
         " (1, 1, 1, 'gen', 1, 1, 7, 990, 1340, 995, 1330, 5),"
         " (1, 2, 2, 'gen', 2, 1, 7, 1990, 2340, 1995, 2330, 5),"
         " (1, 3, 3, 'gen', 3, 1, 7, 2990, 3540, 2995, 3530, 5);");
    // the prompt step: x-0 untimed; gen step 2: x-0 untimed
    static const int64_t t0[][3] = { { 0, 10, 30 }, { 2, 50, 60 }, { 3, 100, 196 } };
    static const int64_t t1[][3] = { { 0, 1000, 1010 }, { 1, 1010, 1110 }, { 2, 1110, 1120 }, { 3, 1120, 1320 } };
    static const int64_t t2[][3] = { { 0, 2000, 2010 }, { 2, 2110, 2120 }, { 3, 2120, 2320 } };
    static const int64_t t3[][3] = { { 0, 3000, 3010 }, { 1, 3010, 3310 }, { 2, 3310, 3320 }, { 3, 3320, 3520 } };
    add_times(0, t0, 3);
    add_times(1, t1, 4);
    add_times(2, t2, 3);
    add_times(3, t3, 4);

    struct llt_analysis_params params = llt_analysis_default_params();
    struct llt_analysis * a = NULL;
    REQUIRE(llt_analysis_load(st, &params, &a) == LLT_OK, "%s", llt_last_error());
    const struct llt_analysis_run * r = llt_analysis_run(a);
    CHECK_INT(r->n_steps, 4);
    CHECK_INT(r->n_timed_steps, 4);
    CHECK_INT(r->instances, 16);
    CHECK_INT(r->samples, 14);
    CHECK(!r->running, "a finished run reads as running");

    // bytes: embd reads one 16-byte row of w and 4 bytes of ids, writes 16; each MUL_MAT reads
    // w (64) and a 16-byte vector, writes 16; ADD reads 2 × 16, writes 16
    CHECK_INT(llt_analysis_n_steps(a), 4);
    const struct llt_analysis_step * s1 = llt_analysis_step(a, 1);
    REQUIRE(s1, "no step 1");
    CHECK_INT(s1->bytes_read_weights, 16 + 64 + 64);
    CHECK_INT(s1->bytes_read_acts, 4 + 16 + 32 + 16);
    CHECK_INT(s1->bytes_written, 4 * 16);
    CHECK_INT(s1->flops, 2 * 4 * 4 + 4 + 2 * 4 * 4);
    CHECK_INT(s1->weights_read, 1);
    CHECK_NEAR(s1->bytes_read_per_token, 144 + 68);
    // parts of step 1: embed to the end of embd, layers to the end of l_out-0, logits to the end
    CHECK_INT(s1->parts_ns[LLT_PART_EMBED], 1010 - 995);
    CHECK_INT(s1->parts_ns[LLT_PART_LAYERS], 1120 - 1010);
    CHECK_INT(s1->parts_ns[LLT_PART_LOGITS], 1330 - 1120);
    CHECK_INT(s1->parts_ns[LLT_PART_SAMPLING], 5);
    CHECK_INT(s1->parts_ns[LLT_PART_OVERHEAD], (1340 - 990) - (1330 - 995));
    CHECK_INT(s1->parts_ns[LLT_PART_TOKENIZE], -1);
    CHECK_INT(s1->parts_ns[LLT_PART_TOTAL], 350 + 5);
    CHECK_INT(llt_analysis_step(a, 0)->parts_ns[LLT_PART_TOKENIZE], 100);

    struct llt_analysis_groups ops;
    REQUIRE(llt_analysis_group(a, LLT_ANALYSIS_BY_OP, true, &ops) == LLT_OK, "%s", llt_last_error());
    // gen MUL_MAT: x-0 timed 100 and 300 in 3 runs, result_output 200 three times
    const struct llt_analysis_group * mm = find(&ops, LLT_PHASE_GEN, "MUL_MAT");
    REQUIRE(mm, "no gen MUL_MAT group");
    CHECK_INT(mm->instances, 6);
    CHECK_INT(mm->samples, 5);
    CHECK_NEAR(mm->time_ns, 100 + 300 + 3 * 200);
    CHECK_NEAR(mm->est_ns, (100 + 300) / 2.0 * 3 + 200 * 3);
    CHECK_NEAR(mm->mean_ns, 1000 / 5.0);
    CHECK_NEAR(mm->median_ns, 200);
    CHECK_NEAR(mm->p90_ns, 300);
    CHECK_NEAR(mm->bytes, 6 * 96);
    CHECK_NEAR(mm->flops, 6 * 32);
    // prompt MUL_MAT: x-0 never timed moves its 96 bytes at result_output's 96 bytes in 96 ns
    const struct llt_analysis_group * pmm = find(&ops, LLT_PHASE_PROMPT, "MUL_MAT");
    REQUIRE(pmm, "no prompt MUL_MAT group");
    CHECK_INT(pmm->samples, 1);
    CHECK_NEAR(pmm->est_ns, 96 + 96);
    // shares of a phase sum to 100
    double share = 0;
    for (int32_t i = 0; i < ops.n; i++) share += ops.g[i].phase == LLT_PHASE_GEN ? ops.g[i].share : 0;
    CHECK_NEAR(share, 100);
    llt_analysis_groups_free(&ops);

    // layer 0 in gen: l_out-0's end from embd's end, 110, 110 and 310 ns
    struct llt_analysis_groups layers;
    REQUIRE(llt_analysis_group(a, LLT_ANALYSIS_BY_LAYER, true, &layers) == LLT_OK, "%s", llt_last_error());
    const struct llt_analysis_group * l0 = find(&layers, LLT_PHASE_GEN, "0");
    REQUIRE(l0, "no gen layer 0 group");
    CHECK_INT(l0->gap_samples, 3);
    CHECK_NEAR(l0->gap_ns, 110 + 110 + 310);
    CHECK_NEAR(l0->median_ns, 110);
    CHECK_NEAR(l0->p90_ns, 310);
    llt_analysis_groups_free(&layers);

    // phases together: every op once
    struct llt_analysis_groups all;
    REQUIRE(llt_analysis_group(a, LLT_ANALYSIS_BY_OP, false, &all) == LLT_OK, "%s", llt_last_error());
    CHECK_INT(all.n, 3);
    const struct llt_analysis_group * amm = find(&all, LLT_PHASE_COUNT, "MUL_MAT");
    CHECK(amm && amm->instances == 8 && amm->samples == 6, "MUL_MAT over both phases: %lld runs, %lld timed",
          amm ? (long long) amm->instances : -1LL, amm ? (long long) amm->samples : -1LL);
    llt_analysis_groups_free(&all);
    llt_analysis_free(a);

    // one step selected: its figures alone
    params.step = 2;
    REQUIRE(llt_analysis_load(st, &params, &a) == LLT_OK, "%s", llt_last_error());
    CHECK_INT(llt_analysis_n_steps(a), 1);
    CHECK_INT(llt_analysis_run(a)->samples, 3);
    llt_analysis_free(a);

    // a run still being written
    exec("UPDATE runs SET status = 'running'");
    params.step = -1;
    REQUIRE(llt_analysis_load(st, &params, &a) == LLT_OK, "%s", llt_last_error());
    CHECK(llt_analysis_run(a)->running, "a run with status running does not read as running");
    llt_analysis_free(a);

    llt_store_close(st);
    test_dir_remove();
    return test_result("test-analysis");
}
