// lltrace/cost.h: FLOPs and bytes of a graph node. Part of lltrace.h.
#pragma once

#include "lltrace/core.h"

#ifdef __cplusplus
extern "C" {
#endif

//
// From the op, shapes and sizes alone (docs/trace-format.md, "Cost model"): a multiply-add is
// 2 FLOPs; bytes are what the op reads and writes at least, weights at their quantized size.

#define LLT_COST_MAX_SRC 10

struct llt_cost_tensor {
    int64_t  ne[4];     // elements per dim, ne[0] innermost; all 0 when unknown (graph inputs)
    uint64_t bytes;     // ggml_nbytes
    bool     is_view;   // a view: what is read are its elements (type, ne), not the span of
                        // its strides (a K/V cache view holds the n_kv positions attended to)
    int32_t  type;      // enum ggml_type, with is_view
    bool     is_weight; // a source that is a model weight
};

struct llt_cost_node {
    const char *           op;    // as nodes.op has it, ggml_op_desc: "MUL_MAT", "SWIGLU"
    struct llt_cost_tensor out;
    int32_t                n_src; // sources in slots 0..n_src-1; an empty slot is all 0
    struct llt_cost_tensor src[LLT_COST_MAX_SRC];
    int32_t                n_experts; // MUL_MAT_ID: the distinct experts its ids chose (expert_routing);
                                      // 0 when unknown: at most n_used × n_tokens of them
};

struct llt_cost {
    uint64_t flops;
    uint64_t bytes_read;         // all sources
    uint64_t bytes_read_weights; // the part of bytes_read that is model weights
    uint64_t bytes_written;
};

// true if the op has a model; else (or when a shape it needs is unknown) flops is 0 and the
// bytes are those of all sources and the output
bool llt_node_cost(const struct llt_cost_node * node, struct llt_cost * out);

#ifdef __cplusplus
}
#endif
