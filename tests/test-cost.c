// The cost model: FLOPs and bytes of the nodes of a llama layer against hand-computed values.
// Shapes are those of the tiny model (n_embd 256, 4 heads, 2 KV heads of 64, n_ff 768) on a
// 7-token prompt with a 256-cell KV cache.
#include "lltrace.h"
#include "testutil.h"

// a tensor of shape ne0×ne1×ne2×ne3 with bytes_per_el bytes per element (0.5625 for q4_K)
static struct llt_cost_tensor tensor(int64_t ne0, int64_t ne1, int64_t ne2, int64_t ne3, double bytes_per_el) {
    struct llt_cost_tensor t = { { ne0, ne1, ne2, ne3 }, 0 };
    t.bytes = (uint64_t) ((double) (ne0 * ne1 * ne2 * ne3) * bytes_per_el);
    return t;
}

// a graph input: the trace knows its size only
static struct llt_cost_tensor input(uint64_t bytes) {
    struct llt_cost_tensor t = { { 0, 0, 0, 0 }, bytes };
    return t;
}

struct want {
    bool     modeled;
    uint64_t flops, read, written;
};

static void check_cost(const char * what, const struct llt_cost_node * node, struct want want) {
    struct llt_cost c;
    bool modeled = llt_node_cost(node, &c);
    CHECK(modeled == want.modeled, "%s: modeled %d, want %d", what, modeled, want.modeled);
    CHECK(c.flops == want.flops, "%s: %llu FLOPs, want %llu", what, (unsigned long long) c.flops, (unsigned long long) want.flops);
    CHECK(c.bytes_read == want.read, "%s: %llu bytes read, want %llu", what,
          (unsigned long long) c.bytes_read, (unsigned long long) want.read);
    CHECK(c.bytes_written == want.written, "%s: %llu bytes written, want %llu", what,
          (unsigned long long) c.bytes_written, (unsigned long long) want.written);
}

#define F32 4.0
#define F16 2.0
#define Q4_K (144.0 / 256.0) // a block of 256 weights in 144 bytes: 4.5 bits per weight

int main(void) {
    // ffn_up: q4_K weight [256, 768] times activations [256, 7]
    const struct llt_cost_node up = { "MUL_MAT", tensor(768, 7, 1, 1, F32), 2,
        { tensor(256, 768, 1, 1, Q4_K), tensor(256, 7, 1, 1, F32) } };
    check_cost("MUL_MAT ffn_up", &up, (struct want) { true, 2ull * 256 * 768 * 7, 110592 + 7168, 21504 });

    // K·Q without flash attention: K [64, 256, 2] f16 broadcast over Q [64, 7, 4]
    const struct llt_cost_node kq = { "MUL_MAT", tensor(256, 7, 4, 1, F32), 2,
        { tensor(64, 256, 2, 1, F16), tensor(64, 7, 4, 1, F32) } };
    check_cost("MUL_MAT kq", &kq, (struct want) { true, 2ull * 64 * 256 * 7 * 4, 65536 + 7168, 28672 });

    const struct llt_cost_node add = { "ADD", tensor(256, 7, 1, 1, F32), 2,
        { tensor(256, 7, 1, 1, F32), tensor(256, 7, 1, 1, F32) } };
    check_cost("ADD", &add, (struct want) { true, 256 * 7, 2 * 7168, 7168 });

    const struct llt_cost_node norm = { "RMS_NORM", tensor(256, 7, 1, 1, F32), 1, { tensor(256, 7, 1, 1, F32) } };
    check_cost("RMS_NORM", &norm, (struct want) { true, 3 * 256 * 7, 7168, 7168 });

    // the norm weight broadcast over the rows
    const struct llt_cost_node mul = { "MUL", tensor(256, 7, 1, 1, F32), 2,
        { tensor(256, 7, 1, 1, F32), tensor(256, 1, 1, 1, F32) } };
    check_cost("MUL", &mul, (struct want) { true, 256 * 7, 7168 + 1024, 7168 });

    // flash attention: q [64, 7, 4], k and v [64, 256, 2] f16, the mask an input;
    // 2·2·n_head·n_q·n_kv·head_dim
    const struct llt_cost_node fa = { "FLASH_ATTN_EXT", tensor(64, 4, 7, 1, F32), 4,
        { tensor(64, 7, 4, 1, F32), tensor(64, 256, 2, 1, F16), tensor(64, 256, 2, 1, F16), input(3584) } };
    check_cost("FLASH_ATTN_EXT", &fa, (struct want) { true, 2ull * 2 * 4 * 7 * 256 * 64, 7168 + 65536 + 65536 + 3584, 7168 });

    const struct llt_cost_node softmax = { "SOFT_MAX", tensor(256, 7, 4, 1, F32), 2,
        { tensor(256, 7, 4, 1, F32), input(3584) } };
    check_cost("SOFT_MAX", &softmax, (struct want) { true, 5 * 256 * 7 * 4, 28672 + 3584, 28672 });

    const struct llt_cost_node swiglu = { "SWIGLU", tensor(768, 7, 1, 1, F32), 2,
        { tensor(768, 7, 1, 1, F32), tensor(768, 7, 1, 1, F32) } };
    check_cost("SWIGLU", &swiglu, (struct want) { true, 2 * 768 * 7, 2 * 21504, 21504 });

    // token embeddings: 7 rows of a q4_K table [256, 32000] (144 bytes a row) and 7 i32 ids
    const struct llt_cost_node embd = { "GET_ROWS", tensor(256, 7, 1, 1, F32), 2,
        { tensor(256, 32000, 1, 1, Q4_K), input(28) } };
    check_cost("GET_ROWS", &embd, (struct want) { true, 0, 7 * 144 + 28, 7168 });

    // the same rows as weights: bytes_read_weights is the part of bytes_read read from them
    struct llt_cost_node embd_w = embd;
    embd_w.src[0].is_weight = true;
    struct llt_cost cw;
    llt_node_cost(&embd_w, &cw);
    CHECK(cw.bytes_read_weights == 7 * 144, "GET_ROWS of a weight: %llu bytes read from weights, want %d",
          (unsigned long long) cw.bytes_read_weights, 7 * 144);
    CHECK(cw.bytes_read == 7 * 144 + 28, "GET_ROWS of a weight: %llu bytes read, want %d",
          (unsigned long long) cw.bytes_read, 7 * 144 + 28);

    // K into the cache: 7 rows of 128 f32 into 7 of the 256 f16 rows of the cache (src2, not read)
    const struct llt_cost_node set = { "SET_ROWS", tensor(128, 256, 1, 1, F16), 3,
        { tensor(128, 7, 1, 1, F32), input(56), input(65536) } };
    check_cost("SET_ROWS", &set, (struct want) { true, 0, 3584 + 56, 7 * 256 });

    const struct llt_cost_node cpy = { "CPY", tensor(128, 7, 1, 1, F16), 2,
        { tensor(128, 7, 1, 1, F32), tensor(128, 7, 1, 1, F16) } };
    check_cost("CPY", &cpy, (struct want) { true, 0, 3584, 1792 });

    const struct llt_cost_node view = { "PERMUTE", tensor(64, 1, 4, 1, F32), 1, { tensor(64, 4, 1, 1, F32) } };
    check_cost("PERMUTE", &view, (struct want) { true, 0, 0, 0 });

    // MoE: 2 of 8 experts [256, 768] q4_K for one token
    const struct llt_cost_node moe = { "MUL_MAT_ID", tensor(768, 2, 1, 1, F32), 3,
        { tensor(256, 768, 8, 1, Q4_K), tensor(256, 1, 1, 1, F32), input(8) } };
    check_cost("MUL_MAT_ID", &moe, (struct want) { true, 2ull * 256 * 768 * 2, 2 * 110592 + 1024 + 8, 6144 });
    // five tokens: 10 choices bound 8 experts; the routing says they chose 3 distinct ones
    struct llt_cost_node moe5 = { "MUL_MAT_ID", tensor(768, 2, 5, 1, F32), 3,
        { tensor(256, 768, 8, 1, Q4_K), tensor(256, 1, 5, 1, F32), input(40) } };
    check_cost("MUL_MAT_ID bound", &moe5, (struct want) { true, 2ull * 256 * 768 * 10, 8 * 110592 + 5120 + 40, 30720 });
    moe5.n_experts = 3;
    check_cost("MUL_MAT_ID routed", &moe5, (struct want) { true, 2ull * 256 * 768 * 10, 3 * 110592 + 5120 + 40, 30720 });

    // P·V without flash attention, V transposed in a 1024-cell cache: the view [n_kv 256, 64, 2]
    // spans the whole cache (row stride 1024 cells) but its 256·64·2 f16 elements are read
    struct llt_cost_tensor v_view = tensor(256, 64, 2, 1, F16);
    v_view.bytes = 2 * (1023 + 127 * 1024) + 2; // ggml_nbytes of the strided view
    v_view.is_view = true;
    v_view.type = GGML_TYPE_F16;
    const struct llt_cost_node kqv = { "MUL_MAT", tensor(64, 7, 4, 1, F32), 2, { v_view, tensor(256, 7, 4, 1, F32) } };
    check_cost("MUL_MAT kqv of a strided V view", &kqv, (struct want) { true, 2ull * 256 * 64 * 7 * 4, 65536 + 28672, 7168 });

    // no model, or a shape the model needs is unknown: the plain sum of bytes
    const struct llt_cost_node concat = { "CONCAT", tensor(256, 14, 1, 1, F32), 2,
        { tensor(256, 7, 1, 1, F32), tensor(256, 7, 1, 1, F32) } };
    check_cost("CONCAT", &concat, (struct want) { false, 0, 2 * 7168, 14336 });
    const struct llt_cost_node blind = { "MUL_MAT", tensor(768, 7, 1, 1, F32), 2, { input(110592), input(7168) } };
    check_cost("MUL_MAT of inputs", &blind, (struct want) { false, 0, 110592 + 7168, 21504 });

    return test_result("test-flops");
}
