// Cost: what a graph node must compute and move, from its op, shapes and sizes alone.
//
// The figures are the roofline's: a multiply-add is 2 FLOPs, an exp or a division 1; bytes
// are what the op reads and writes at least, weights at their quantized size, each source
// read once. Conversions a kernel does internally (activations to the weight's vec_dot_type,
// dequantization) are not counted. docs/trace-format.md, "Cost model", lists every rule.
#include "core/internal.h"

#include <string.h>

// ---- op names ----------------------------------------------------------------------------

enum op_class {
    OP_OTHER,      // no model: 0 FLOPs, sources read, output written
    OP_NOOP,       // VIEW, RESHAPE, PERMUTE, TRANSPOSE, NONE: nothing moves
    OP_COPY,       // DUP, CPY, CONT: read src0, write the output
    OP_ELEMENT,    // one FLOP per output element: binary ops, unary activations, SCALE ...
    OP_GLU,        // activation times gate: 2 per output element
    OP_MUL_MAT,
    OP_MUL_MAT_ID,
    OP_NORM,       // 5 per element: mean, subtract, square, sum, scale
    OP_RMS_NORM,   // 3 per element: square, sum, scale
    OP_SOFT_MAX,   // 5 per element: scale, mask, max, exp, sum and normalize
    OP_ROPE,       // 3 per element: a rotation of a pair is 4 multiplies and 2 adds
    OP_GET_ROWS,
    OP_SET_ROWS,
    OP_FLASH_ATTN,
};

static enum op_class op_class_of(const char * op) {
    static const struct { const char * name; enum op_class cls; } known[] = {
        { "NONE", OP_NOOP }, { "VIEW", OP_NOOP }, { "RESHAPE", OP_NOOP }, { "PERMUTE", OP_NOOP },
        { "TRANSPOSE", OP_NOOP },
        { "DUP", OP_COPY }, { "CPY", OP_COPY }, { "CONT", OP_COPY },
        { "ADD", OP_ELEMENT }, { "ADD1", OP_ELEMENT }, { "SUB", OP_ELEMENT }, { "MUL", OP_ELEMENT },
        { "DIV", OP_ELEMENT }, { "SQR", OP_ELEMENT }, { "SQRT", OP_ELEMENT }, { "LOG", OP_ELEMENT },
        { "SIN", OP_ELEMENT }, { "COS", OP_ELEMENT }, { "SCALE", OP_ELEMENT }, { "CLAMP", OP_ELEMENT },
        { "LEAKY_RELU", OP_ELEMENT },
        { "MUL_MAT", OP_MUL_MAT }, { "MUL_MAT_ID", OP_MUL_MAT_ID },
        { "NORM", OP_NORM }, { "RMS_NORM", OP_RMS_NORM }, { "L2_NORM", OP_RMS_NORM },
        { "SOFT_MAX", OP_SOFT_MAX }, { "ROPE", OP_ROPE },
        { "GET_ROWS", OP_GET_ROWS }, { "SET_ROWS", OP_SET_ROWS },
        { "FLASH_ATTN_EXT", OP_FLASH_ATTN },
    };
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
        if (strcmp(op, known[i].name) == 0) return known[i].cls;
    }
    // nodes.op holds the unary or GLU kind for those two ops (ggml_op_desc)
    for (int u = 0; u < GGML_UNARY_OP_COUNT; u++) {
        if (strcmp(op, ggml_unary_op_name((enum ggml_unary_op) u)) == 0) return OP_ELEMENT;
    }
    for (int g = 0; g < GGML_GLU_OP_COUNT; g++) {
        if (strcmp(op, ggml_glu_op_name((enum ggml_glu_op) g)) == 0) return OP_GLU;
    }
    return OP_OTHER;
}

// ---- shapes ------------------------------------------------------------------------------

static uint64_t n_elements(const struct llt_cost_tensor * t) {
    return (uint64_t) (t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3]);
}

static uint64_t n_rows(const struct llt_cost_tensor * t) {
    return (uint64_t) (t->ne[1] * t->ne[2] * t->ne[3]);
}

static bool shape_known(const struct llt_cost_tensor * t) {
    return t->ne[0] > 0 && t->ne[1] > 0 && t->ne[2] > 0 && t->ne[3] > 0;
}

// bytes of n rows of t: t's bytes per row (a row of a quantized type is whole blocks)
static uint64_t rows_bytes(const struct llt_cost_tensor * t, uint64_t n) {
    uint64_t rows = n_rows(t);
    return rows ? t->bytes / rows * n : t->bytes;
}

static uint64_t src_bytes(const struct llt_cost_node * node, int32_t slot) {
    return slot < node->n_src ? node->src[slot].bytes : 0;
}

static bool src_known(const struct llt_cost_node * node, int32_t slot) {
    return slot < node->n_src && shape_known(&node->src[slot]);
}

// ---- the model ---------------------------------------------------------------------------

bool llt_node_cost(const struct llt_cost_node * node, struct llt_cost * out) {
    const struct llt_cost_tensor * o = &node->out;
    const struct llt_cost_tensor * s = node->src;
    const uint64_t n = n_elements(o);
    memset(out, 0, sizeof(*out));
    for (int32_t i = 0; i < node->n_src && i < LLT_COST_MAX_SRC; i++) {
        out->bytes_read += s[i].bytes;
    }
    out->bytes_written = o->bytes;

    switch (op_class_of(node->op)) {
        case OP_OTHER:
            return false;
        case OP_NOOP:
            out->bytes_read = out->bytes_written = 0;
            return true;
        case OP_COPY:
            out->bytes_read = src_bytes(node, 0); // CPY's src1 is the destination
            return true;
        case OP_ELEMENT:
            out->flops = n;
            return true;
        case OP_GLU:
            out->flops = 2 * n;
            return true;
        case OP_NORM:
            out->flops = 5 * n;
            return true;
        case OP_RMS_NORM:
            out->flops = 3 * n;
            return true;
        case OP_SOFT_MAX:
            out->flops = 5 * n;
            return true;
        case OP_ROPE:
            out->flops = 3 * n;
            return true;
        case OP_MUL_MAT:
            // out [M, N, batch...] = src0 [K, M, ...] x src1 [K, N, ...]: 2·K per output element
            if (!src_known(node, 0)) return false;
            out->flops = 2 * (uint64_t) s[0].ne[0] * n;
            return true;
        case OP_MUL_MAT_ID:
            // src0 [K, M, n_expert], out [M, n_used, n_tokens]: only the chosen experts are read
            if (!src_known(node, 0)) return false;
            out->flops = 2 * (uint64_t) s[0].ne[0] * n;
            if (n_rows(o) < (uint64_t) s[0].ne[2]) {
                const uint64_t expert_bytes = s[0].bytes / (uint64_t) s[0].ne[2];
                out->bytes_read = expert_bytes * n_rows(o) + src_bytes(node, 1) + src_bytes(node, 2);
            }
            return true;
        case OP_GET_ROWS:
            // only the rows asked for are read from src0 (the embedding table)
            if (!src_known(node, 0)) return false;
            out->bytes_read = rows_bytes(&s[0], n_rows(o)) + src_bytes(node, 1);
            return true;
        case OP_SET_ROWS:
            // src0's rows go into the rows of the output (a view of src2, which is not read)
            if (!src_known(node, 0) || !shape_known(o)) return false;
            out->bytes_read = src_bytes(node, 0) + src_bytes(node, 1);
            out->bytes_written = rows_bytes(o, n_rows(&s[0]));
            return true;
        case OP_FLASH_ATTN:
            // q [D, n_q, n_head, ns], k [D, n_kv, ...], v [Dv, n_kv, ...], out [Dv, n_head, n_q, ns]:
            // Q·Kᵀ and P·V, 2·n_kv·(D + Dv) per query row and head; the softmax is not counted
            if (!src_known(node, 0) || !src_known(node, 1) || !shape_known(o)) return false;
            out->flops = 2 * n_rows(o) * (uint64_t) s[1].ne[1] * (uint64_t) (s[0].ne[0] + o->ne[0]);
            return true;
    }
    return false;
}
