// Integration test: real inference on a built-in model, traced at each level.
//   test-capture PRESET FTYPE [N_PREDICT]
// Checks, from the stored trace: every layer has its full set of nodes, every weight is read
// in every step, per-node times tile the compute span; and that tracing never changes the
// greedy tokens.
#include "lltrace.h"
#include "testdb.h"

#include <sqlite3.h>
#include <unistd.h>


struct gen_run {
    struct llt_gen_result res;
};

static void generate(const char * model, int flash_attn, int level, struct llt_store * st, int n_predict,
                     struct llt_gen_result * res) {
    struct llt_gen_params p = llt_gen_default_params();
    p.model_path = model;
    p.prompt = "The capital of France is a city where";
    p.n_predict = n_predict;
    p.n_threads = 2;
    p.flash_attn = flash_attn;
    p.level = (enum llt_level) level;
    REQUIRE(llt_generate(&p, st, res) == LLT_OK, "generate: %s", llt_last_error());
    CHECK(res->trace_error[0] == '\0', "tracing failed: %s", res->trace_error);
}

static void check_same_tokens(const char * what, const struct llt_gen_result * a, const struct llt_gen_result * b) {
    CHECK_INT(a->n_prompt, b->n_prompt);
    CHECK(a->n_gen == b->n_gen, "%s: %d vs %d generated tokens", what, a->n_gen, b->n_gen);
    for (int i = 0; i < a->n_prompt + a->n_gen && i < b->n_prompt + b->n_gen; i++) {
        if (a->tokens[i] != b->tokens[i]) {
            CHECK(0, "%s: token %d differs: %d vs %d", what, i, a->tokens[i], b->tokens[i]);
            break;
        }
    }
}

// a node of graph g whose name matches the GLOB `name` with op `op` in `layer`, reading weight `weight` if given
static void check_node(long long g, long long step, const char * name, const char * op, int layer, const char * weight) {
    long long n = weight
        ? qi("SELECT count(*) FROM nodes n JOIN node_srcs s ON s.graph_id=n.graph_id AND s.idx=n.idx"
            " WHERE n.graph_id=%lld AND n.name GLOB '%s' AND n.op='%s' AND n.layer=%d AND s.kind='weight' AND s.name='%s'",
            g, name, op, layer, weight)
        : qi("SELECT count(*) FROM nodes WHERE graph_id=%lld AND name GLOB '%s' AND op='%s' AND layer=%d",
            g, name, op, layer);
    CHECK(n >= 1, "step %lld: no %s node '%s' in layer %d%s%s", step, op, name, layer,
          weight ? " reading " : "", weight ? weight : "");
}

static void check_layers(int run, int n_layer, bool flash) {
    long long n_steps = qi("SELECT count(*) FROM steps WHERE run_id=%d", run);
    CHECK(n_steps > 1, "run %d has %lld steps", run, n_steps);
    for (long long step = 0; step < n_steps; step++) {
        long long g = qi("SELECT graph_id FROM steps WHERE run_id=%d AND step=%lld", run, step);
        check_node(g, step, "embd", "GET_ROWS", -1, "token_embd.weight");
        check_node(g, step, "result_norm", "MUL", -1, "output_norm.weight");
        check_node(g, step, "result_output", "MUL_MAT", -1, "output.weight");
        for (int l = 0; l < n_layer; l++) {
            char name[64], w[64];
            struct { const char * node, * op, * weight; } want[] = {
                { "attn_norm-%d", "MUL",      "blk.%d.attn_norm.weight" },
                { "Qcur-%d",      "MUL_MAT",  "blk.%d.attn_q.weight" },
                { "Kcur-%d",      "MUL_MAT",  "blk.%d.attn_k.weight" },
                { "Vcur-%d",      "MUL_MAT",  "blk.%d.attn_v.weight" },
                { "Qcur-%d",      "ROPE",     NULL },
                { "Kcur-%d",      "ROPE",     NULL },
                { "cache_k_l%d (*view)", "SET_ROWS", NULL },
                { "cache_v_l%d (*view)", "SET_ROWS", NULL },
                { "attn_out-%d",  "MUL_MAT",  "blk.%d.attn_output.weight" },
                { "ffn_inp-%d",   "ADD",      NULL },
                { "ffn_norm-%d",  "MUL",      "blk.%d.ffn_norm.weight" },
                { "ffn_gate-%d",  "MUL_MAT",  "blk.%d.ffn_gate.weight" },
                { "ffn_up-%d",    "MUL_MAT",  "blk.%d.ffn_up.weight" },
                { "ffn_swiglu-%d","SWIGLU",   NULL },
                { "ffn_out-%d",   "MUL_MAT",  "blk.%d.ffn_down.weight" },
                { "l_out-%d",     "ADD",      NULL },
                { "kq-%d",        "MUL_MAT",  NULL },
                { "kq_soft_max-%d","SOFT_MAX",NULL },
                { "kqv-%d",       "MUL_MAT",  NULL },
            };
            const size_t n_want = sizeof(want)/sizeof(want[0]) - (flash ? 3 : 0);
            for (size_t i = 0; i < n_want; i++) {
                snprintf(name, sizeof(name), want[i].node, l);
                if (want[i].weight) snprintf(w, sizeof(w), want[i].weight, l);
                check_node(g, step, name, want[i].op, l, want[i].weight ? w : NULL);
            }
            if (flash) {
                CHECK(qi("SELECT count(*) FROM nodes WHERE graph_id=%lld AND op='FLASH_ATTN_EXT' AND layer=%d", g, l) == 1,
                      "step %lld: no FLASH_ATTN_EXT in layer %d", step, l);
            }
        }
    }
}

static void check_coverage(int run, int n_weights) {
    CHECK_INT(qi("SELECT count(*) FROM weights WHERE run_id=%d", run), n_weights);
    long long bad = qi("SELECT count(*) FROM steps s WHERE s.run_id=%d AND"
                      " (SELECT count(DISTINCT weight_id) FROM node_srcs ns WHERE ns.graph_id=s.graph_id AND kind='weight') != %d",
                      run, n_weights);
    CHECK(bad == 0, "run %d: %lld steps do not read all %d weights", run, bad, n_weights);
    CHECK_INT(qi("SELECT count(*) FROM weights WHERE run_id=%d AND buffer IS NULL", run), 0);
    // the layer outputs, one per layer and step
    CHECK_INT(qi("SELECT count(*) FROM steps s JOIN nodes n ON n.graph_id=s.graph_id WHERE s.run_id=%d AND n.layer_out=1", run),
              qi("SELECT count(*) FROM steps WHERE run_id=%d", run) * qi("SELECT n_layer FROM runs WHERE id=%d", run));
    CHECK_INT(qi("SELECT count(*) FROM steps s JOIN nodes n ON n.graph_id=s.graph_id WHERE s.run_id=%d"
                 " AND (n.layer_out=1) != (n.name GLOB 'l_out-*')", run), 0);
}

static void check_tokens(int run, const struct llt_gen_result * r) {
    CHECK_INT(qi("SELECT count(*) FROM tokens WHERE run_id=%d AND role='prompt'", run), r->n_prompt);
    CHECK_INT(qi("SELECT count(*) FROM tokens WHERE run_id=%d AND role='gen'", run), r->n_gen);
    for (int i = 0; i < r->n_prompt + r->n_gen; i++) {
        long long tok = qi("SELECT token FROM tokens WHERE run_id=%d AND seq=%d", run, i);
        if (tok != r->tokens[i]) { CHECK(0, "run %d: token %d is %lld, want %d", run, i, tok, r->tokens[i]); break; }
    }
    CHECK_INT(qi("SELECT count(*) FROM steps WHERE run_id=%d", run), 1 + (r->n_gen - 1));
    CHECK_INT(qi("SELECT n_tokens FROM steps WHERE run_id=%d AND step=0", run), r->n_prompt);
    CHECK_INT(qi("SELECT count(*) FROM steps WHERE run_id=%d AND phase='gen' AND n_tokens=1", run), r->n_gen - 1);
    CHECK_INT(qi("SELECT count(*) FROM runs WHERE id=%d AND status='ok' AND error IS NULL", run), 1);
}

static void check_timing(int run) {
    // every computing node of every step has a time; views and no-ops have none
    long long missing = qi("SELECT count(*) FROM steps s JOIN nodes n ON n.graph_id=s.graph_id"
                          " WHERE s.run_id=%d AND n.is_noop=0 AND NOT EXISTS (SELECT 1 FROM node_times t"
                          " WHERE t.run_id=s.run_id AND t.step=s.step AND t.idx=n.idx)", run);
    CHECK(missing == 0, "%lld computing nodes have no time", missing);
    long long extra = qi("SELECT count(*) FROM node_times t JOIN steps s USING(run_id, step)"
                        " JOIN nodes n ON n.graph_id=s.graph_id AND n.idx=t.idx WHERE t.run_id=%d AND n.is_noop=1", run);
    CHECK(extra == 0, "%lld no-op nodes were timed", extra);
    // steps.n_timed counts the step's rows
    CHECK_INT(qi("SELECT count(*) FROM steps s WHERE run_id=%d AND n_timed !="
                 " (SELECT count(*) FROM node_times t WHERE t.run_id=s.run_id AND t.step=s.step)", run), 0);
    // the fused MULs, worked out here from the graph: a MUL right after an RMS_NORM that
    // nothing else reads (every F32 norm of these models qualifies); the CPU backend computes
    // them in the norm's pass, so their spans are empty
    const char * pairs = "FROM steps s JOIN nodes n ON n.graph_id=s.graph_id"
                         " JOIN nodes p ON p.graph_id=n.graph_id AND p.idx=n.idx-1"
                         " WHERE s.run_id=%d AND n.op='MUL' AND p.op='RMS_NORM' AND n.type='f32' AND"
                         " (SELECT count(*) FROM node_srcs x WHERE x.graph_id=n.graph_id AND x.kind='node' AND x.src_idx=p.idx) = 1";
    char sql[1024];
    snprintf(sql, sizeof(sql), "SELECT count(*) %s", pairs);
    const long long n_pairs = qi(sql, run);
    CHECK(n_pairs > 0, "run %d: no RMS_NORM + MUL pairs", run);
    CHECK_INT(qi("SELECT count(*) FROM steps s JOIN nodes n ON n.graph_id=s.graph_id WHERE s.run_id=%d AND n.fused=1", run),
              n_pairs);
    snprintf(sql, sizeof(sql), "SELECT count(*) %s AND n.fused=1 AND EXISTS (SELECT 1 FROM node_times t"
                               " WHERE t.run_id=s.run_id AND t.step=s.step AND t.idx=n.idx AND t.t_end_ns=t.t_begin_ns)", pairs);
    CHECK_INT(qi(sql, run), n_pairs);
    // node intervals are in order and do not overlap, and lie inside the step
    long long overlap = qi("SELECT count(*) FROM (SELECT t_begin_ns, t_end_ns,"
                          " lag(t_end_ns) OVER (PARTITION BY step ORDER BY idx) AS prev_end"
                          " FROM node_times WHERE run_id=%d) WHERE t_end_ns < t_begin_ns OR t_begin_ns < prev_end", run);
    CHECK(overlap == 0, "%lld node intervals overlap", overlap);
    long long outside = qi("SELECT count(*) FROM node_times t JOIN steps s USING(run_id, step) WHERE t.run_id=%d"
                          " AND (t.t_begin_ns < s.compute_begin_ns OR t.t_end_ns > s.compute_end_ns"
                          " OR s.compute_end_ns > s.t_end_ns OR s.compute_begin_ns < s.t_begin_ns)", run);
    CHECK(outside == 0, "%lld node times fall outside their step", outside);
    // the node times add up to the compute span, but for the asks before the computation: each
    // timed node begins where the one before it ended, and the last ends the computation (exact,
    // whatever the machine's load: a share of the span would swing with it)
    long long nodes = qi("SELECT sum(t_end_ns - t_begin_ns) FROM node_times WHERE run_id=%d", run);
    long long span = qi("SELECT sum(compute_end_ns - compute_begin_ns) FROM steps WHERE run_id=%d", run);
    CHECK(nodes <= span, "node times sum to %lld ns, compute span %lld ns", nodes, span);
    long long gaps = qi("SELECT count(*) FROM (SELECT t_begin_ns, lag(t_end_ns) OVER (PARTITION BY step ORDER BY idx) AS prev_end"
                        " FROM node_times WHERE run_id=%d) WHERE prev_end IS NOT NULL AND t_begin_ns != prev_end", run);
    CHECK(gaps == 0, "%lld timed nodes do not begin where the one before ended", gaps);
    long long open_end = qi("SELECT count(*) FROM steps s WHERE s.run_id=%d AND s.compute_end_ns !="
                            " (SELECT max(t_end_ns) FROM node_times t WHERE t.run_id=s.run_id AND t.step=s.step)", run);
    CHECK(open_end == 0, "%lld steps whose last timed node does not end the computation", open_end);
}

int main(int argc, char ** argv) {
    REQUIRE(argc >= 3, "usage: test-capture PRESET FTYPE [N_PREDICT]");
    const char * preset = argv[1];
    const int ftype = llt_ftype_from_name(argv[2]);
    const int n_predict = argc > 3 ? atoi(argv[3]) : 16;
    const struct llt_preset * p = llt_preset_find(preset);
    REQUIRE(p && ftype >= 0, "unknown preset or type");
    llt_log_init(false);
    char * model = NULL;
    REQUIRE(llt_default_model(preset, ftype, &model) == LLT_OK, "%s", llt_last_error());

    char trace[] = "/tmp/lltrace-test-capture-XXXXXX";
    int fd = mkstemp(trace);
    REQUIRE(fd >= 0, "mkstemp");
    close(fd);
    struct llt_store * st = NULL;
    REQUIRE(llt_store_open(trace, LLT_STORE_WRITE, &st) == LLT_OK, "%s", llt_last_error());

    struct llt_gen_result plain = {0}, graph = {0}, timing = {0}, plain_nofa = {0}, graph_nofa = {0};
    generate(model, LLAMA_FLASH_ATTN_TYPE_AUTO, LLT_LEVEL_GRAPH, NULL, n_predict, &plain);
    generate(model, LLAMA_FLASH_ATTN_TYPE_AUTO, LLT_LEVEL_GRAPH, st, n_predict, &graph);
    generate(model, LLAMA_FLASH_ATTN_TYPE_AUTO, LLT_LEVEL_TIMING, st, n_predict, &timing);
    generate(model, LLAMA_FLASH_ATTN_TYPE_DISABLED, LLT_LEVEL_GRAPH, NULL, n_predict, &plain_nofa);
    generate(model, LLAMA_FLASH_ATTN_TYPE_DISABLED, LLT_LEVEL_GRAPH, st, n_predict, &graph_nofa);
    CHECK(plain.n_gen == n_predict, "generated %d of %d tokens (an EOS?)", plain.n_gen, n_predict);
    check_same_tokens("graph vs untraced", &graph, &plain);
    check_same_tokens("timing vs untraced", &timing, &plain);
    check_same_tokens("graph vs untraced, flash attention off", &graph_nofa, &plain_nofa);

    REQUIRE(sqlite3_open_v2(trace, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK, "open trace");
    CHECK_INT(qi("SELECT count(*) FROM runs"), 3);
    CHECK_INT(qi("SELECT n_layer FROM runs WHERE id=1"), p->n_layer);
    CHECK_INT(qi("SELECT n_embd FROM runs WHERE id=1"), p->n_embd);
    const int n_weights = 3 + 9 * p->n_layer;
    const struct llt_gen_result * results[] = { &graph, &timing, &graph_nofa };
    for (int run = 1; run <= 3; run++) {
        check_layers(run, p->n_layer, run != 3);
        check_coverage(run, n_weights);
        check_tokens(run, results[run - 1]);
        CHECK_INT(results[run - 1]->stats.n_weights_read, n_weights);
    }
    check_timing(2);
    CHECK_INT(qi("SELECT count(*) FROM node_times WHERE run_id IN (1, 3)"), 0);
    // identical generation graphs are stored once
    CHECK(qi("SELECT count(*) FROM graphs WHERE run_id=1") < qi("SELECT count(*) FROM steps WHERE run_id=1"),
          "every step stored its own graph");
    sqlite3_close(db);

    llt_gen_result_free(&plain); llt_gen_result_free(&graph); llt_gen_result_free(&timing);
    llt_gen_result_free(&plain_nofa); llt_gen_result_free(&graph_nofa);
    llt_store_close(st);
    free(model);
    remove_trace(trace);
    char name[64];
    snprintf(name, sizeof(name), "test-capture %s %s", preset, argv[2]);
    return test_result(name);
}
