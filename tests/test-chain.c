// Integration test: the tracer through the library API, with callbacks already installed in
// the context parameters. The user's eval callback keeps seeing (and being asked about) the
// nodes it wants, with valid data, while the tracer records every node; the user's abort
// callback is called as often as without the tracer, which times nodes through it, and its
// answer counts: a computation it stops is a step without times. An abort callback set after
// the tracer's makes the tracer time nodes by observing them instead, and at level values read
// statistics at post calls instead of stamps: set before the first computation, every step
// still has them all; set in the middle of a run, the one computation whose stamps went missing
// lacks the statistics planned for them, and every later step has them all again.
#include "lltrace.h"
#include "testdb.h"

#include <unistd.h>

struct user_cb {
    int asks, posts, post_other, aborts;
    int abort_at; // the abort callback's call that stops the computation; 0 never
    double l_out_sum; // a value read in the post call: the data must be there
};

// the user asks for every l_out node and reads its first value
static bool user_eval(struct ggml_tensor * t, bool ask, void * user_data) {
    struct user_cb * u = user_data;
    const bool wanted = strncmp(t->name, "l_out-", 6) == 0;
    if (ask) {
        u->asks++;
        return wanted;
    }
    if (!wanted) u->post_other++;
    u->posts++;
    u->l_out_sum += ((const float *) t->data)[0];
    return true;
}

static bool user_abort(void * user_data) {
    struct user_cb * u = user_data;
    return ++u->aborts == u->abort_at;
}

// the application replaces the abort callback after the tracer attached: never, before the
// first computation, or after the prompt and this many generated tokens
enum { ABORT_KEPT = -2, ABORT_LATE = -1 };

static int run(const char * model_path, struct llt_store * st, int level, int set_abort_late, struct user_cb * u,
               llama_token * out, int n_out, struct llt_tracer_stats * stats) {
    struct llama_model * model = llama_model_load_from_file(model_path, llama_model_default_params());
    REQUIRE(model, "load %s", model_path);
    struct llama_context_params cp = llama_context_default_params();
    cp.n_ctx = 256;
    cp.n_threads = cp.n_threads_batch = 2;
    cp.cb_eval = user_eval;
    cp.cb_eval_user_data = u;
    cp.abort_callback = user_abort;
    cp.abort_callback_data = u;
    struct llt_tracer * tr = NULL;
    if (st) {
        struct llt_tracer_params tp = llt_tracer_default_params();
        tp.level = (enum llt_level) level;
        tp.model_path = model_path;
        REQUIRE(llt_tracer_init(st, tp, &tr) == LLT_OK, "%s", llt_last_error());
        llt_tracer_attach(tr, &cp);
    }
    struct llama_context * ctx = llama_init_from_model(model, cp);
    REQUIRE(ctx, "context");
    if (set_abort_late == ABORT_LATE) llama_set_abort_callback(ctx, user_abort, u);
    if (tr) REQUIRE(llt_tracer_begin(tr, model, ctx) == LLT_OK, "%s", llt_last_error());
    llama_token prompt[4] = { 1, 450, 4996, 17354 };
    struct llama_batch b = llama_batch_get_one(prompt, 4);
    int rc = tr ? llt_decode(tr, ctx, b) : llama_decode(ctx, b);
    if (rc == 2 && u->abort_at) rc = tr ? llt_decode(tr, ctx, b) : llama_decode(ctx, b); // aborted: again
    for (int i = 0; i < n_out && rc == 0; i++) {
        // greedy by hand
        const float * logits = llama_get_logits_ith(ctx, -1);
        int best = 0;
        for (int v = 1; v < llama_vocab_n_tokens(llama_model_get_vocab(model)); v++) if (logits[v] > logits[best]) best = v;
        out[i] = best;
        if (tr) llt_tracer_sampled(tr, best);
        if (set_abort_late == i) llama_set_abort_callback(ctx, user_abort, u);
        b = llama_batch_get_one(&out[i], 1);
        rc = tr ? llt_decode(tr, ctx, b) : llama_decode(ctx, b);
    }
    if (tr) {
        CHECK_INT(llt_tracer_sync(tr), LLT_OK);
        CHECK_INT(llt_tracer_end(tr, LLT_RUN_OK, NULL), LLT_OK);
        *stats = llt_tracer_get_stats(tr);
        llt_tracer_free(tr);
    }
    llama_free(ctx);
    llama_model_free(model);
    return rc;
}

int main(void) {
    llt_log_init(false);
    llama_backend_init();
    char * model = NULL;
    REQUIRE(llt_default_model("tiny", LLAMA_FTYPE_ALL_F32, &model) == LLT_OK, "%s", llt_last_error());
    const int n_layer = llt_preset_find("tiny")->n_layer, n_out = 5;

    char trace[] = "/tmp/lltrace-test-chain-XXXXXX";
    int fd = mkstemp(trace);
    REQUIRE(fd >= 0, "mkstemp");
    close(fd);
    struct llt_store * st = NULL;
    REQUIRE(llt_store_open(trace, LLT_STORE_WRITE, &st) == LLT_OK, "%s", llt_last_error());

    struct user_cb alone = {0}, graph = {0}, timing = {0}, late = {0}, profile_late = {0};
    llama_token t_alone[8], t_graph[8], t_timing[8], t_late[8], t_profile_late[8];
    struct llt_tracer_stats s_graph, s_timing, s_late, s_profile_late;
    CHECK_INT(run(model, NULL, 0, ABORT_KEPT, &alone, t_alone, n_out, NULL), 0);
    CHECK_INT(run(model, st, LLT_LEVEL_GRAPH, ABORT_KEPT, &graph, t_graph, n_out, &s_graph), 0);
    CHECK_INT(run(model, st, LLT_LEVEL_TIMING, ABORT_KEPT, &timing, t_timing, n_out, &s_timing), 0);
    CHECK_INT(run(model, st, LLT_LEVEL_TIMING, ABORT_LATE, &late, t_late, n_out, &s_late), 0);
    CHECK_INT(run(model, st, LLT_LEVEL_PROFILE, ABORT_LATE, &profile_late, t_profile_late, n_out, &s_profile_late), 0);
    // the application stops the prompt's computation at its third node, then decodes it again
    struct user_cb stopped = { .abort_at = 3 };
    llama_token t_stopped[8];
    struct llt_tracer_stats s_stopped;
    CHECK_INT(run(model, st, LLT_LEVEL_TIMING, ABORT_KEPT, &stopped, t_stopped, n_out, &s_stopped), 0);
    CHECK(memcmp(t_alone, t_stopped, sizeof(llama_token) * n_out) == 0, "a stopped computation changed the tokens");
    CHECK_INT(stopped.aborts, alone.aborts + 3);
    CHECK_INT(s_stopped.timing_observed_from, -1); // a computation cut short is no reason to stop stamping

    // the user's callbacks see the same nodes with the same data, traced or not
    const struct user_cb * traced[] = { &graph, &timing, &late, &profile_late };
    for (int i = 0; i < 4; i++) {
        CHECK_INT(traced[i]->asks, alone.asks);
        CHECK_INT(traced[i]->posts, alone.posts);
        CHECK_INT(traced[i]->post_other, 0);
        CHECK(traced[i]->l_out_sum == alone.l_out_sum, "l_out values %g, untraced %g", traced[i]->l_out_sum, alone.l_out_sum);
    }
    CHECK_INT(alone.posts, (n_out + 1) * n_layer);
    CHECK(alone.aborts > 0, "the CPU backend never called the abort callback");
    CHECK_INT(graph.aborts, alone.aborts);
    CHECK_INT(timing.aborts, alone.aborts);
    CHECK(memcmp(t_alone, t_graph, sizeof(llama_token) * n_out) == 0, "graph level changed the tokens");
    CHECK(memcmp(t_alone, t_timing, sizeof(llama_token) * n_out) == 0, "timing level changed the tokens");
    CHECK(memcmp(t_alone, t_late, sizeof(llama_token) * n_out) == 0, "timing by observing changed the tokens");

    // timed by stamps throughout; with the abort callback taken away, by observing from step 1
    CHECK_INT(s_timing.timing_observed_from, -1);
    CHECK_INT(s_late.timing_observed_from, 1);
    CHECK_INT(s_profile_late.timing_observed_from, 1);

    // and the trace has every step, with the tokens in and out
    db = llt_store_db(st);
    CHECK_INT(qi("SELECT count(*) FROM steps WHERE run_id=1"), n_out + 1);
    CHECK_INT(qi("SELECT count(*) FROM tokens WHERE run_id=1 AND role='gen'"), n_out);
    CHECK_INT(qi("SELECT count(*) FROM tokens WHERE run_id=1 AND role='prompt'"), 4);
    CHECK_STR(qs("SELECT phase FROM steps WHERE run_id=1 AND step=1"), "gen");
    // every computing node of every step has a time (run 2), and of every step after the first (runs 3, 5)
    const int timed_from[][2] = { { 2, 0 }, { 3, 1 }, { 5, 1 } }; // run, from step
    for (int i = 0; i < 3; i++) {
        const long long untimed = qi("SELECT count(*) FROM steps s JOIN nodes n ON n.graph_id=s.graph_id WHERE s.run_id=%d"
                                     " AND s.step >= %d AND n.is_noop=0 AND NOT EXISTS (SELECT 1 FROM node_times t"
                                     " WHERE t.run_id=s.run_id AND t.step=s.step AND t.idx=n.idx)", timed_from[i][0], timed_from[i][1]);
        CHECK(untimed == 0, "run %d: %lld computing nodes untimed", timed_from[i][0], untimed);
    }
    // the step whose stamps failed has no times
    CHECK_INT(qi("SELECT count(*) FROM node_times WHERE run_id=3 AND step=0"), 0);
    CHECK_INT(qi("SELECT n_timed FROM steps WHERE run_id=3 AND step=0"), 0);
    // steps.n_timed counts the step's node_times rows, in every run
    CHECK_INT(qi("SELECT count(*) FROM steps s WHERE n_timed IS NOT"
                 " (SELECT count(*) FROM node_times t WHERE t.run_id=s.run_id AND t.step=s.step)"), 0);
    // the stopped computation is a step without times, the others have them all
    CHECK_INT(qi("SELECT count(*) FROM steps WHERE run_id=5"), n_out + 2);
    CHECK_STR(qs("SELECT group_concat(step) FROM steps s WHERE run_id=5"
                 " AND NOT EXISTS (SELECT 1 FROM node_times t WHERE t.run_id=5 AND t.step=s.step)"), "0");
    // level profile, observing: only every third step is timed (of steps 0..5, step 3)
    CHECK_STR(qs("SELECT group_concat(DISTINCT step) FROM node_times WHERE run_id=4"), "3");

    // Level values (runs 6-8): statistics read at stamps, then with the abort callback replaced
    // before the first computation, and after three generated tokens. Steps 0 and 1 are each a
    // new graph (the prompt's, the first token's), read at post calls; step 2 reads at stamps,
    // step 3 has none (the replaced callback), and from step 4 on the plan reads at post calls.
    struct user_cb values = {0}, values_late = {0}, values_mid = {0};
    llama_token t_values[8], t_values_late[8], t_values_mid[8];
    struct llt_tracer_stats s_values, s_values_late, s_values_mid;
    CHECK_INT(run(model, st, LLT_LEVEL_VALUES, ABORT_KEPT, &values, t_values, n_out, &s_values), 0);
    CHECK_INT(run(model, st, LLT_LEVEL_VALUES, ABORT_LATE, &values_late, t_values_late, n_out, &s_values_late), 0);
    CHECK_INT(run(model, st, LLT_LEVEL_VALUES, 2, &values_mid, t_values_mid, n_out, &s_values_mid), 0);
    const struct user_cb * valued[] = { &values, &values_late, &values_mid };
    const llama_token * t_valued[] = { t_values, t_values_late, t_values_mid };
    // the norms, read, are computed apart from their MULs: one more call of the abort callback each
    CHECK(values.aborts > alone.aborts, "abort callback called %d times at level values, %d untraced", values.aborts, alone.aborts);
    for (int i = 0; i < 3; i++) {
        CHECK_INT(valued[i]->aborts, values.aborts);
        CHECK_INT(valued[i]->posts, alone.posts);
        CHECK(valued[i]->l_out_sum == alone.l_out_sum, "values run %d: l_out values changed", i + 6);
        CHECK(memcmp(t_alone, t_valued[i], sizeof(llama_token) * n_out) == 0, "values run %d changed the tokens", i + 6);
    }
    CHECK(s_values.n_stats_stamped > s_values.n_stats_read / 3, "%lld of %lld statistics at stamps",
          (long long) s_values.n_stats_stamped, (long long) s_values.n_stats_read);
    CHECK_INT(s_values_late.n_stats_stamped, 0);
    CHECK(s_values_mid.n_stats_stamped > 0 && s_values_mid.n_stats_stamped < s_values.n_stats_stamped,
          "replaced mid-run: %lld at stamps, %lld with stamps throughout", (long long) s_values_mid.n_stats_stamped,
          (long long) s_values.n_stats_stamped);
    // the steps missing a computing node's statistics, per run
    const char * want_unread[] = { "", "", "3" };
    for (int i = 0; i < 3; i++) {
        const char * got = qs("SELECT group_concat(step) FROM (SELECT DISTINCT s.step FROM steps s JOIN nodes n"
                              " ON n.graph_id=s.graph_id WHERE s.run_id=%d AND n.is_noop=0 AND n.is_view=0 AND NOT EXISTS"
                              " (SELECT 1 FROM node_stats x WHERE x.run_id=s.run_id AND x.step=s.step AND x.idx=n.idx)"
                              " ORDER BY s.step)", 6 + i);
        CHECK(strcmp(got, want_unread[i]) == 0, "run %d: steps missing statistics '%s', want '%s'", 6 + i, got, want_unread[i]);
    }
    // and the statistics read at stamps equal those read at post calls
    CHECK_INT(qi("SELECT count(*) FROM (SELECT step, idx, n, min, max, mean, std FROM node_stats WHERE run_id=6"
                 " EXCEPT SELECT step, idx, n, min, max, mean, std FROM node_stats WHERE run_id=7)"), 0);

    llt_store_close(st);
    unlink(trace);
    free(model);
    return test_result("test-chain");
}
