// Integration test: the built-in model of each architecture, made and traced.
//   test-archs PRESET FTYPE [--made-once]
// Checks: two makes give the same bytes (not with --made-once: quantizing a big vocabulary
// twice is slow, and F32 and the cheap types show it); the file holds exactly the tensors a real checkpoint
// of the architecture has (listed here from llama.cpp's src/models/<arch>.cpp and the
// Hugging Face checkpoints, not from lltrace's table) with the family's vocabulary; tracing
// never changes the greedy tokens; every step reads every weight; every layer has its nodes
// (names, ops and the weights they read, from llama.cpp's graph code) and reads only its own
// weights, and every node between the first layer's and the last layer's output is in a layer; --checkpoints dumps the architecture's named set in every layer, the KV cache as
// [n_head_kv * head_dim, positions].
#include "lltrace.h"
#include "testdb.h"

#include "gguf.h"

#include <sqlite3.h>
#include <unistd.h>

#define MAXN 24

struct node_want { const char * name, * op, * weight; };

struct arch_want {
    const char * preset;
    int n_vocab, head_dim;
    const char * global[8];            // tensors outside the layers
    const char * layer[16];            // per layer: blk.N.<this>
    struct node_want outside[4];       // nodes outside the layers
    struct node_want nodes[MAXN];      // per layer; %d is the layer
    const char * checkpoints[MAXN];    // per layer
    const char * ternary_type;         // bitnet: the projections' type in a ternary file type
};

static const struct arch_want wants[] = {
    { "tiny-gpt2", 50257, 32,
      { "token_embd.weight", "position_embd.weight", "output_norm.weight", "output_norm.bias", "output.weight" },
      { "attn_norm.weight", "attn_norm.bias", "attn_qkv.weight", "attn_qkv.bias", "attn_output.weight", "attn_output.bias",
        "ffn_norm.weight", "ffn_norm.bias", "ffn_up.weight", "ffn_up.bias", "ffn_down.weight", "ffn_down.bias" },
      { { "pos_embd", "GET_ROWS", "position_embd.weight" }, { "result_norm", "ADD", "output_norm.bias" },
        { "result_output", "MUL_MAT", "output.weight" } },
      { { "attn_norm-%d", "ADD", "blk.%d.attn_norm.bias" }, { "wqkv-%d", "MUL_MAT", "blk.%d.attn_qkv.weight" },
        { "wqkv_b-%d", "ADD", "blk.%d.attn_qkv.bias" }, { "Qcur-%d", "VIEW", NULL }, { "kq_soft_max-%d", "SOFT_MAX", NULL },
        { "node_*", "MUL_MAT", "blk.%d.attn_output.weight" }, { "ffn_norm-%d", "ADD", "blk.%d.ffn_norm.bias" },
        { "ffn_gelu-%d", "GELU", NULL }, { "ffn_out-%d", "ADD", "blk.%d.ffn_down.bias" }, { "l_out-%d", "ADD", NULL } },
      { "attn_norm", "qkv_proj", "k_cache", "v_cache", "attn_probs", "attn_kqv", "attn_out", "ffn_down", "ffn_out", "layer_out" },
      NULL },
    { "tiny-qwen3", 151936, 32,
      { "token_embd.weight", "output_norm.weight" },
      { "attn_norm.weight", "attn_q.weight", "attn_k.weight", "attn_v.weight", "attn_output.weight", "attn_q_norm.weight",
        "attn_k_norm.weight", "ffn_norm.weight", "ffn_gate.weight", "ffn_up.weight", "ffn_down.weight" },
      { { "result_norm", "MUL", "output_norm.weight" }, { "result_output", "MUL_MAT", "token_embd.weight" } },
      { { "attn_norm-%d", "MUL", "blk.%d.attn_norm.weight" }, { "Qcur-%d", "MUL_MAT", "blk.%d.attn_q.weight" },
        { "Qcur_normed-%d", "MUL", "blk.%d.attn_q_norm.weight" }, { "Kcur_normed-%d", "MUL", "blk.%d.attn_k_norm.weight" },
        { "Qcur-%d", "ROPE", NULL }, { "Kcur-%d", "ROPE", NULL }, { "kq_soft_max-%d", "SOFT_MAX", NULL },
        { "node_*", "MUL_MAT", "blk.%d.attn_output.weight" }, { "ffn_swiglu-%d", "SWIGLU", NULL },
        { "ffn_out-%d", "MUL_MAT", "blk.%d.ffn_down.weight" }, { "l_out-%d", "ADD", NULL } },
      { "attn_norm", "q_proj", "q_norm", "q_rope", "k_proj", "k_norm", "k_rope", "v_proj", "k_cache", "v_cache",
        "attn_probs", "attn_kqv", "attn_out", "ffn_out", "layer_out" },
      NULL },
    { "tiny-gemma3", 262144, 32,
      { "token_embd.weight", "output_norm.weight" },
      { "attn_norm.weight", "attn_q.weight", "attn_k.weight", "attn_v.weight", "attn_output.weight", "attn_q_norm.weight",
        "attn_k_norm.weight", "post_attention_norm.weight", "ffn_norm.weight", "ffn_gate.weight", "ffn_up.weight",
        "ffn_down.weight", "post_ffw_norm.weight" },
      { { "inp_scaled", "SCALE", NULL }, { "result_norm", "MUL", "output_norm.weight" },
        { "result_output", "MUL_MAT", "token_embd.weight" } },
      { { "attn_norm-%d", "MUL", "blk.%d.attn_norm.weight" }, { "Qcur_normed-%d", "MUL", "blk.%d.attn_q_norm.weight" },
        { "Kcur_normed-%d", "MUL", "blk.%d.attn_k_norm.weight" }, { "Qcur-%d", "ROPE", NULL },
        { "node_*", "MUL_MAT", "blk.%d.attn_output.weight" },
        { "attn_post_norm-%d", "MUL", "blk.%d.post_attention_norm.weight" }, { "sa_out-%d", "ADD", NULL },
        { "ffn_geglu-%d", "GEGLU", NULL }, { "ffn_out-%d", "MUL_MAT", "blk.%d.ffn_down.weight" },
        { "ffn_post_norm-%d", "MUL", "blk.%d.post_ffw_norm.weight" }, { "l_out-%d", "ADD", NULL } },
      { "attn_norm", "q_proj", "q_norm", "q_rope", "k_proj", "k_norm", "k_rope", "v_proj", "k_cache", "v_cache",
        "attn_probs", "attn_kqv", "attn_out", "attn_post_norm", "ffn_out", "ffn_post_norm", "layer_out" },
      NULL },
    { "tiny-qwen3moe", 151936, 32,
      { "token_embd.weight", "output_norm.weight", "output.weight" },
      { "attn_norm.weight", "attn_q.weight", "attn_k.weight", "attn_v.weight", "attn_output.weight", "attn_q_norm.weight",
        "attn_k_norm.weight", "ffn_norm.weight", "ffn_gate_inp.weight", "ffn_gate_exps.weight", "ffn_up_exps.weight",
        "ffn_down_exps.weight" },
      { { "result_norm", "MUL", "output_norm.weight" }, { "result_output", "MUL_MAT", "output.weight" } },
      { { "attn_norm-%d", "MUL", "blk.%d.attn_norm.weight" }, { "Qcur_normed-%d", "MUL", "blk.%d.attn_q_norm.weight" },
        { "node_*", "MUL_MAT", "blk.%d.attn_output.weight" }, { "ffn_moe_logits-%d", "MUL_MAT", "blk.%d.ffn_gate_inp.weight" },
        { "ffn_moe_probs-%d", "SOFT_MAX", NULL }, { "ffn_moe_argsort-%d", "ARGSORT", NULL },
        { "ffn_moe_gate-%d", "MUL_MAT_ID", "blk.%d.ffn_gate_exps.weight" }, { "ffn_moe_up-%d", "MUL_MAT_ID", "blk.%d.ffn_up_exps.weight" },
        { "ffn_moe_down-%d", "MUL_MAT_ID", "blk.%d.ffn_down_exps.weight" }, { "ffn_moe_out-%d", "ADD", NULL },
        { "l_out-%d", "ADD", NULL } },
      { "attn_norm", "q_proj", "q_norm", "q_rope", "k_proj", "k_norm", "k_rope", "v_proj", "k_cache", "v_cache",
        "attn_probs", "attn_kqv", "attn_out", "moe_out", "layer_out" },
      NULL },
    { "tiny-bitnet", 32000, 64,
      { "token_embd.weight", "output_norm.weight" },
      { "attn_norm.weight", "attn_q.weight", "attn_k.weight", "attn_v.weight", "attn_sub_norm.weight", "attn_output.weight",
        "ffn_norm.weight", "ffn_gate.weight", "ffn_up.weight", "ffn_sub_norm.weight", "ffn_down.weight" },
      { { "result_norm", "MUL", "output_norm.weight" }, { "result_output", "MUL_MAT", "token_embd.weight" } },
      { { "attn_norm-%d", "MUL", "blk.%d.attn_norm.weight" }, { "Qcur-%d", "MUL_MAT", "blk.%d.attn_q.weight" },
        { "Qcur-%d", "ROPE", NULL }, { "attn_sub_norm-%d", "MUL", "blk.%d.attn_sub_norm.weight" },
        { "attn_out-%d", "MUL_MAT", "blk.%d.attn_output.weight" }, { "ffn_sub_out-%d", "SWIGLU", NULL },
        { "ffn_sub_norm-%d", "MUL", "blk.%d.ffn_sub_norm.weight" }, { "ffn_down-%d", "MUL_MAT", "blk.%d.ffn_down.weight" },
        { "l_out-%d", "ADD", NULL } },
      { "attn_norm", "q_proj", "q_rope", "k_proj", "k_rope", "v_proj", "k_cache", "v_cache", "attn_probs", "attn_kqv",
        "attn_sub_norm", "attn_out", "ffn_down", "layer_out" },
      NULL },
};

static int count(const char * const * names, int max) {
    int n = 0;
    while (n < max && names[n]) n++;
    return n;
}

// ---- the file ----------------------------------------------------------------------------

static void check_file(const struct arch_want * w, const struct llt_preset * p, int ftype, const char * model, bool remake) {
    if (remake) {
        char again[] = "/tmp/lltrace-test-archs-XXXXXX";
        int fd = mkstemp(again);
        REQUIRE(fd >= 0, "mkstemp");
        close(fd);
        CHECK_INT(llt_mkmodel(w->preset, ftype, NULL, again), LLT_OK);
        CHECK(same_bytes(model, again), "%s %s: two makes differ", w->preset, llt_ftype_name(ftype));
        unlink(again);
    }

    struct llt_registry * reg = NULL;
    REQUIRE(llt_registry_load(model, &reg) == LLT_OK, "%s", llt_last_error());
    const int n_global = count(w->global, 8), n_layer_t = count(w->layer, 16);
    CHECK(llt_registry_count(reg) == n_global + n_layer_t * p->n_layer, "%s: %d tensors, want %d",
          w->preset, llt_registry_count(reg), n_global + n_layer_t * p->n_layer);
    int n_ternary = 0;
    for (int i = 0; i < llt_registry_count(reg); i++) {
        const struct llt_weight * t = llt_registry_get(reg, i);
        bool known = false;
        for (int g = 0; g < n_global; g++) known |= strcmp(t->name, w->global[g]) == 0;
        for (int l = 0; l < p->n_layer; l++) {
            for (int k = 0; k < n_layer_t; k++) {
                char name[96];
                snprintf(name, sizeof(name), "blk.%d.%s", l, w->layer[k]);
                known |= strcmp(t->name, name) == 0;
            }
        }
        CHECK(known, "%s: stray tensor %s", w->preset, t->name);
        if (w->ternary_type && strcmp(ggml_type_name((enum ggml_type) t->type), w->ternary_type) == 0) n_ternary++;
    }
    // BitNet's seven projections per layer in the ternary type
    if (w->ternary_type) CHECK(n_ternary == 7 * p->n_layer, "%s: %d tensors of type %s, want %d", w->preset, n_ternary, w->ternary_type, 7 * p->n_layer);
    llt_registry_free(reg);

    struct llama_model * m = llama_model_load_from_file(model, llama_model_default_params());
    REQUIRE(m != NULL, "%s: llama.cpp cannot load it", w->preset);
    CHECK_INT(llama_model_n_layer(m), p->n_layer);
    CHECK_INT(llama_model_n_embd(m), p->n_embd);
    CHECK_INT(llama_model_n_head(m), p->n_head);
    CHECK_INT(llama_model_n_head_kv(m), p->n_head_kv);
    CHECK_INT(llama_vocab_n_tokens(llama_model_get_vocab(m)), w->n_vocab);
    CHECK_INT(llama_model_ftype(m) & ~LLAMA_FTYPE_GUESSED, ftype);
    char arch[32] = "";
    llama_model_meta_val_str(m, "general.architecture", arch, sizeof(arch));
    CHECK_STR(arch, strchr(w->preset, '-') + 1);
    llama_model_free(m);
}

// ---- the trace ---------------------------------------------------------------------------

static void generate(const char * model, int flash_attn, bool checkpoints, struct llt_store * st, struct llt_gen_result * res) {
    struct llt_gen_params g = llt_gen_default_params();
    g.model_path = model;
    g.prompt = "The capital of France is a city where";
    g.n_predict = 6;
    g.n_threads = 2;
    g.flash_attn = flash_attn;
    g.level = LLT_LEVEL_GRAPH;
    g.values.checkpoints = checkpoints;
    REQUIRE(llt_generate(&g, st, res) == LLT_OK, "generate: %s", llt_last_error());
    CHECK(res->trace_error[0] == '\0', "tracing failed: %s", res->trace_error);
}

static void check_same_tokens(const char * what, const struct llt_gen_result * a, const struct llt_gen_result * b) {
    CHECK(a->n_prompt + a->n_gen == b->n_prompt + b->n_gen, "%s: %d vs %d tokens", what, a->n_prompt + a->n_gen, b->n_prompt + b->n_gen);
    for (int i = 0; i < a->n_prompt + a->n_gen && i < b->n_prompt + b->n_gen; i++) {
        if (a->tokens[i] != b->tokens[i]) { CHECK(0, "%s: token %d is %d traced, %d untraced", what, i, a->tokens[i], b->tokens[i]); break; }
    }
}

static void check_node(long long g, long long step, const struct node_want * nw, int layer) {
    char name[64], weight[96];
    snprintf(name, sizeof(name), nw->name, layer);
    if (nw->weight) snprintf(weight, sizeof(weight), nw->weight, layer);
    long long n = nw->weight
        ? qi("SELECT count(*) FROM nodes n JOIN node_srcs s ON s.graph_id=n.graph_id AND s.idx=n.idx"
             " WHERE n.graph_id=%lld AND n.name GLOB '%s' AND n.op='%s' AND n.layer=%d AND s.kind='weight' AND s.name='%s'",
             g, name, nw->op, layer, weight)
        : qi("SELECT count(*) FROM nodes WHERE graph_id=%lld AND name GLOB '%s' AND op='%s' AND layer=%d", g, name, nw->op, layer);
    CHECK(n >= 1, "step %lld: no %s node '%s' in layer %d%s%s", step, nw->op, name, layer,
          nw->weight ? " reading " : "", nw->weight ? weight : "");
}

static void check_run(const struct arch_want * w, const struct llt_preset * p, int run, bool flash) {
    const long long n_weights = count(w->global, 8) + count(w->layer, 16) * p->n_layer;
    CHECK_INT(qi("SELECT count(*) FROM weights WHERE run_id=%d", run), n_weights);
    const long long n_steps = qi("SELECT count(*) FROM steps WHERE run_id=%d", run);
    CHECK(n_steps == 6, "run %d: %lld steps, want 6", run, n_steps);
    // every weight in every step (for the MoE the expert tensors too: each MUL_MAT_ID reads its whole tensor's
    // rows of the selected experts, and names the tensor as its source)
    long long bad = qi("SELECT count(*) FROM steps s WHERE s.run_id=%d AND"
                       " (SELECT count(DISTINCT weight_id) FROM node_srcs ns WHERE ns.graph_id=s.graph_id AND kind='weight') != %lld",
                       run, n_weights);
    CHECK(bad == 0, "run %d: %lld steps do not read all %lld weights", run, bad, n_weights);
    // every layer's weights are read by nodes of that layer only, and every layer has its nodes
    bad = qi("SELECT count(*) FROM steps s JOIN node_srcs ns ON ns.graph_id=s.graph_id JOIN nodes n"
             " ON n.graph_id=ns.graph_id AND n.idx=ns.idx WHERE s.run_id=%d AND ns.kind='weight' AND ns.name GLOB 'blk.*'"
             " AND n.layer != CAST(substr(ns.name, 5, instr(substr(ns.name, 5), '.') - 1) AS INTEGER)", run);
    CHECK(bad == 0, "run %d: %lld reads of a layer's weight by a node of another layer", run, bad);
    CHECK_INT(qi("SELECT count(*) FROM steps s JOIN nodes n ON n.graph_id=s.graph_id WHERE s.run_id=%d AND n.layer_out=1", run),
              n_steps * p->n_layer);
    // outside the layers only what comes before the first layer's first node or after the last layer's output
    bad = qi("SELECT count(*) FROM steps s JOIN nodes n ON n.graph_id=s.graph_id WHERE s.run_id=%d AND n.layer < 0"
             " AND n.idx > (SELECT min(idx) FROM nodes m WHERE m.graph_id=s.graph_id AND m.layer = 0)"
             " AND n.idx < (SELECT max(idx) FROM nodes m WHERE m.graph_id=s.graph_id AND m.layer_out=1)", run);
    CHECK(bad == 0, "run %d: %lld nodes within the layers are attributed to none", run, bad);
    for (long long step = 0; step < n_steps; step++) {
        long long g = qi("SELECT graph_id FROM steps WHERE run_id=%d AND step=%lld", run, step);
        check_node(g, step, &(struct node_want) { "embd", "GET_ROWS", "token_embd.weight" }, -1);
        for (int i = 0; i < 4 && w->outside[i].name; i++) check_node(g, step, &w->outside[i], -1);
        for (int l = 0; l < p->n_layer; l++) {
            for (int i = 0; i < MAXN && w->nodes[i].name; i++) {
                if (flash && strcmp(w->nodes[i].op, "SOFT_MAX") == 0 && strncmp(w->nodes[i].name, "kq", 2) == 0) continue;
                check_node(g, step, &w->nodes[i], l);
            }
        }
    }
}

// every checkpoint of the architecture in every layer of the prompt step, and the KV cache's shape
static void check_checkpoints(const struct arch_want * w, const struct llt_preset * p, const char * dump, int n_prompt) {
    struct ggml_context * ctx = NULL;
    struct gguf_init_params gp = { .no_alloc = true, .ctx = &ctx };
    struct gguf_context * g = gguf_init_from_file(dump, gp);
    REQUIRE(g, "cannot read the dump %s", dump);
    const int n_cp = count(w->checkpoints, MAXN);
    int found[8][MAXN] = {{0}};
    // the dump's per-tensor facts: an array per field, an element per tensor (dump version 2)
    const int64_t k = gguf_find_key(g, "lltrace.tensors.checkpoint"), kl = gguf_find_key(g, "lltrace.tensors.layer"),
                  ks = gguf_find_key(g, "lltrace.tensors.step");
    REQUIRE(k >= 0 && kl >= 0 && ks >= 0 && gguf_get_arr_n(g, k) == (size_t) gguf_get_n_tensors(g),
            "%s: the dump has no per-tensor arrays", w->preset);
    const int64_t * layers = gguf_get_arr_data(g, kl), * steps = gguf_get_arr_data(g, ks);
    for (int64_t i = 0; i < gguf_get_n_tensors(g); i++) {
        const char * name = gguf_get_tensor_name(g, i);
        const char * cp = gguf_get_arr_str(g, k, (size_t) i);
        if (!cp[0] || steps[i] != 0) continue;
        const int64_t layer = layers[i];
        for (int c = 0; c < n_cp && layer >= 0 && layer < 8; c++) found[layer][c] += strcmp(cp, w->checkpoints[c]) == 0;
        if (strcmp(cp, "k_cache") == 0 || strcmp(cp, "v_cache") == 0) {
            const struct ggml_tensor * t = ggml_get_tensor(ctx, name);
            CHECK(t && t->ne[0] == (int64_t) p->n_head_kv * w->head_dim && t->ne[1] == n_prompt,
                  "%s: %s is [%lld, %lld], want [%d, %d]", w->preset, name, t ? (long long) t->ne[0] : -1LL,
                  t ? (long long) t->ne[1] : -1LL, p->n_head_kv * w->head_dim, n_prompt);
        }
    }
    for (int l = 0; l < p->n_layer; l++) {
        for (int c = 0; c < n_cp; c++) {
            CHECK(found[l][c] >= 1, "%s: no checkpoint %s in layer %d of step 0", w->preset, w->checkpoints[c], l);
        }
    }
    gguf_free(g);
    ggml_free(ctx);
}

int main(int argc, char ** argv) {
    REQUIRE(argc == 3 || (argc == 4 && strcmp(argv[3], "--made-once") == 0), "usage: test-archs PRESET FTYPE [--made-once]");
    const struct arch_want * w = NULL;
    for (size_t i = 0; i < sizeof(wants)/sizeof(wants[0]); i++) {
        if (strcmp(wants[i].preset, argv[1]) == 0) w = &wants[i];
    }
    const struct llt_preset * p = llt_preset_find(argv[1]);
    const int ftype = llt_ftype_from_name(argv[2]);
    REQUIRE(w && p && ftype >= 0, "unknown preset or type");
    struct arch_want wt = *w;
    if (ftype == LLAMA_FTYPE_MOSTLY_TQ1_0 || ftype == LLAMA_FTYPE_MOSTLY_TQ2_0) wt.ternary_type = ftype == LLAMA_FTYPE_MOSTLY_TQ1_0 ? "tq1_0" : "tq2_0";
    llt_log_init(false);
    llama_backend_init();
    char * model = NULL;
    REQUIRE(llt_default_model(argv[1], ftype, &model) == LLT_OK, "%s", llt_last_error());
    check_file(&wt, p, ftype, model, argc == 3);

    char trace[] = "/tmp/lltrace-test-archs-XXXXXX";
    int fd = mkstemp(trace);
    REQUIRE(fd >= 0, "mkstemp");
    close(fd);
    struct llt_store * st = NULL;
    REQUIRE(llt_store_open(trace, LLT_STORE_WRITE, &st) == LLT_OK, "%s", llt_last_error());
    struct llt_gen_result plain = {0}, graph = {0}, plain_nofa = {0}, cps = {0};
    generate(model, LLAMA_FLASH_ATTN_TYPE_AUTO, false, NULL, &plain);
    generate(model, LLAMA_FLASH_ATTN_TYPE_AUTO, false, st, &graph);
    generate(model, LLAMA_FLASH_ATTN_TYPE_DISABLED, false, NULL, &plain_nofa);
    generate(model, LLAMA_FLASH_ATTN_TYPE_AUTO, true, st, &cps);
    check_same_tokens("graph level", &graph, &plain);
    check_same_tokens("checkpoints (flash attention off)", &cps, &plain_nofa);
    CHECK(cps.flash_attn_off, "checkpoints did not turn flash attention off");

    REQUIRE(sqlite3_open_v2(trace, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK, "open trace");
    CHECK_INT(qi("SELECT n_layer FROM runs WHERE id=1"), p->n_layer);
    CHECK_INT(qi("SELECT n_vocab FROM runs WHERE id=1"), w->n_vocab);
    // sizes from the file: the parameters are the elements of its tensors
    CHECK_INT(qi("SELECT model_params FROM runs WHERE id=1"), qi("SELECT sum(ne0 * ne1 * ne2 * ne3) FROM weights WHERE run_id=1"));
    check_run(&wt, p, 1, true);
    check_run(&wt, p, 2, false);
    sqlite3_close(db);
    check_checkpoints(&wt, p, cps.dump_path, cps.n_prompt);
    unlink(cps.dump_path);

    llt_gen_result_free(&plain); llt_gen_result_free(&graph); llt_gen_result_free(&plain_nofa); llt_gen_result_free(&cps);
    llt_store_close(st);
    free(model);
    remove_trace(trace);
    char name[64];
    snprintf(name, sizeof(name), "test-archs %s %s", argv[1], argv[2]);
    return test_result(name);
}
