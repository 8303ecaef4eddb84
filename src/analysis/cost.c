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

// in unsigned arithmetic: a damaged trace's shapes may overflow (wrapping is defined there)
static uint64_t n_elements(const struct llt_cost_tensor * t) {
    return (uint64_t) t->ne[0] * (uint64_t) t->ne[1] * (uint64_t) t->ne[2] * (uint64_t) t->ne[3];
}

static uint64_t n_rows(const struct llt_cost_tensor * t) {
    return (uint64_t) t->ne[1] * (uint64_t) t->ne[2] * (uint64_t) t->ne[3];
}

static bool shape_known(const struct llt_cost_tensor * t) {
    return t->ne[0] > 0 && t->ne[1] > 0 && t->ne[2] > 0 && t->ne[3] > 0;
}

// bytes of n rows of t: t's bytes per row (a row of a quantized type is whole blocks)
static uint64_t rows_bytes(const struct llt_cost_tensor * t, uint64_t n) {
    uint64_t rows = n_rows(t);
    return rows ? t->bytes / rows * n : t->bytes;
}

// what reading a source moves: a view's elements (a strided view of the K/V cache spans the
// whole cache but is read at the n_kv positions of its shape), else its bytes
static uint64_t read_bytes(const struct llt_cost_tensor * t) {
    if (t->is_view && shape_known(t) && t->type >= 0 && t->type < GGML_TYPE_COUNT && ggml_blck_size((enum ggml_type) t->type) > 0) {
        return (uint64_t) ggml_row_size((enum ggml_type) t->type, t->ne[0]) * n_rows(t);
    }
    return t->bytes;
}

static bool src_known(const struct llt_cost_node * node, int32_t slot) {
    return slot < node->n_src && shape_known(&node->src[slot]);
}

// ---- the model ---------------------------------------------------------------------------

// Fills rd[slot] with the bytes the op reads of each source; false if the op has no model
// (every source then counts whole) or a shape it needs is unknown.
static bool model(const struct llt_cost_node * node, struct llt_cost * out, uint64_t rd[LLT_COST_MAX_SRC]) {
    const struct llt_cost_tensor * o = &node->out;
    const struct llt_cost_tensor * s = node->src;
    const uint64_t n = n_elements(o);
    switch (op_class_of(node->op)) {
        case OP_OTHER:
            return false;
        case OP_NOOP:
            memset(rd, 0, LLT_COST_MAX_SRC * sizeof(*rd));
            out->bytes_written = 0;
            return true;
        case OP_COPY:
            for (int32_t i = 1; i < LLT_COST_MAX_SRC; i++) rd[i] = 0; // CPY's src1 is the destination
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
            // out [M, N, batch...] = src0 [K, M, ...] x src1 [K, N, ...]: 2·K per output element;
            // K·Q of attention: M is n_kv, the positions attended to
            if (!src_known(node, 0)) return false;
            out->flops = 2 * (uint64_t) s[0].ne[0] * n;
            return true;
        case OP_MUL_MAT_ID:
            // src0 [K, M, n_expert], out [M, n_used, n_tokens]: only the chosen experts' matrices
            // are read, each once however many tokens chose it: the distinct experts the
            // routing recorded, else at most n_used × n_tokens of them
            if (!src_known(node, 0)) return false;
            out->flops = 2 * (uint64_t) s[0].ne[0] * n;
            const uint64_t chosen = node->n_experts > 0 ? (uint64_t) node->n_experts : n_rows(o);
            if (chosen < (uint64_t) s[0].ne[2]) rd[0] = s[0].bytes / (uint64_t) s[0].ne[2] * chosen;
            return true;
        case OP_GET_ROWS:
            // only the rows asked for are read from src0 (the embedding table: a row per token)
            if (!src_known(node, 0)) return false;
            rd[0] = rows_bytes(&s[0], n_rows(o));
            return true;
        case OP_SET_ROWS:
            // src0's rows go into the rows of the output (a view of src2, which is not read)
            if (!src_known(node, 0) || !shape_known(o)) return false;
            for (int32_t i = 2; i < LLT_COST_MAX_SRC; i++) rd[i] = 0;
            out->bytes_written = rows_bytes(o, n_rows(&s[0]));
            return true;
        case OP_FLASH_ATTN:
            // q [D, n_q, n_head, ns], k [D, n_kv, ...], v [Dv, n_kv, ...], out [Dv, n_head, n_q, ns]:
            // Q·Kᵀ and P·V, 2·n_kv·(D + Dv) per query row and head, n_kv the positions attended
            // to (k's shape); the softmax is not counted
            if (!src_known(node, 0) || !src_known(node, 1) || !shape_known(o)) return false;
            out->flops = 2 * n_rows(o) * (uint64_t) s[1].ne[1] * ((uint64_t) s[0].ne[0] + (uint64_t) o->ne[0]);
            return true;
    }
    return false;
}

bool llt_node_cost(const struct llt_cost_node * node, struct llt_cost * out) {
    uint64_t rd[LLT_COST_MAX_SRC] = { 0 };
    const int32_t n_src = node->n_src < LLT_COST_MAX_SRC ? node->n_src : LLT_COST_MAX_SRC;
    memset(out, 0, sizeof(*out));
    for (int32_t i = 0; i < n_src; i++) rd[i] = read_bytes(&node->src[i]);
    out->bytes_written = node->out.bytes;
    const bool modeled = model(node, out, rd);
    for (int32_t i = 0; i < n_src; i++) {
        out->bytes_read += rd[i];
        if (node->src[i].is_weight) out->bytes_read_weights += rd[i];
    }
    return modeled;
}
