// Unit test: names of layers, file types, ggml types, levels.
#include "lltrace.h"
#include "testutil.h"

int main(void) {
    struct { const char * name; int layer; } layers[] = {
        { "Qcur-3", 3 }, { "norm-0", 0 }, { "l_out-11", 11 }, { "Kcur-0 (view)", 0 },
        { "cache_k_l7 (view)", 7 }, { "cache_v_l12 (view) (permuted)", 12 },
        { "blk.5.attn_q.weight", 5 }, { "blk.10.ffn_down.weight", 10 },
        { "norm", -1 }, { "result_output", -1 }, { "node_21", -1 }, { "inp_embd", -1 },
        { "token_embd.weight", -1 }, { "", -1 }, { "x-", -1 }, { "cache_k_l", -1 },
    };
    for (size_t i = 0; i < sizeof(layers)/sizeof(layers[0]); i++) {
        int got = llt_layer_from_name(layers[i].name);
        CHECK(got == layers[i].layer, "'%s': got %d, want %d", layers[i].name, got, layers[i].layer);
    }

    CHECK_INT(llt_ftype_from_name("Q4_K_M"), LLAMA_FTYPE_MOSTLY_Q4_K_M);
    CHECK_INT(llt_ftype_from_name("q8_0"), LLAMA_FTYPE_MOSTLY_Q8_0);
    CHECK_INT(llt_ftype_from_name("F32"), LLAMA_FTYPE_ALL_F32);
    CHECK_INT(llt_ftype_from_name("Q9_9"), -1);
    CHECK_STR(llt_ftype_name(LLAMA_FTYPE_MOSTLY_IQ4_XS), "IQ4_XS");
    CHECK_STR(llt_ftype_name(LLAMA_FTYPE_MOSTLY_Q4_K_M | LLAMA_FTYPE_GUESSED), "Q4_K_M");

    CHECK_INT(llt_type_from_name("f16"), GGML_TYPE_F16);
    CHECK_INT(llt_type_from_name("q4_K"), GGML_TYPE_Q4_K);
    CHECK_INT(llt_type_from_name("Q8_0"), GGML_TYPE_Q8_0);
    CHECK_INT(llt_type_from_name("f64x"), -1);

    CHECK_INT(llt_level_from_name("timing"), LLT_LEVEL_TIMING);
    CHECK_INT(llt_level_from_name("graph"), LLT_LEVEL_GRAPH);
    CHECK_INT(llt_level_from_name("all"), -1);
    CHECK_STR(llt_run_status_name(LLT_RUN_INTERRUPTED), "interrupted");
    return test_result("test-names");
}
