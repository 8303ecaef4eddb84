// Expert routing: which experts each token chose in each Mixture-of-Experts layer, and their
// weights in the mix (table expert_routing).
//
// llama.cpp's MoE block (build_moe_ffn) routes in the graph: ffn_moe_logits-N → ffn_moe_probs-N
// → ffn_moe_argsort-N → ffn_moe_topk-N, a VIEW of the argsort's first n_expert_used columns
// (I32 [n_expert_used, n_tokens], rows nb[1] apart: not contiguous when n_tokens > 1) →
// ffn_moe_weights-N (GET_ROWS of the probabilities at those ids, F32 [1, n_expert_used,
// n_tokens]), then, where the model does, ffn_moe_weights_softmax-N, _norm-N and _scaled-N.
// llama.cpp builds the weights right after the top-k (ggml_build_forward_expand(weights)
// "call early"), so they are computed before the expert matmuls that read the top-k view.
//
// Cost: the weights nodes are observed (answered true) at every level, level graph included:
// in the post call of ffn_moe_weights-N both small tensors are intact (the argsort's output is
// read later by the MUL_MAT_ID nodes), so the ids are read through its source, the top-k view,
// row by row, and the weights from the node; a later weights node of the layer replaces the
// weights with what the mix uses. One or two pauses of the scheduler per MoE layer and step,
// reading n_expert_used × n_tokens ids and floats. Models without experts have no such node
// and pay nothing.
#include "capture/tracer.h"

#include <stdlib.h>
#include <string.h>

// the names of the mixing weights, in the order the graph computes them
static const char * const weight_names[] = {
    "ffn_moe_weights-", "ffn_moe_weights_softmax-", "ffn_moe_weights_norm-", "ffn_moe_weights_scaled-",
};

// prefix followed by a layer number and nothing else
static bool is_named(const char * name, const char * prefix) {
    const size_t n = strlen(prefix);
    if (strncmp(name, prefix, n) != 0 || name[n] == '\0') return false;
    for (const char * p = name + n; *p; p++) {
        if (*p < '0' || *p > '9') return false;
    }
    return true;
}

bool llt_experts_is_route(const struct ggml_tensor * t) {
    if (t->type != GGML_TYPE_F32) return false;
    if (is_named(t->name, weight_names[0])) {
        // the first: GET_ROWS at the top-k ids
        const struct ggml_tensor * ids = t->src[1];
        return t->op == GGML_OP_GET_ROWS && ids && ids->type == GGML_TYPE_I32 && ids->ne[2] == 1 && ids->ne[3] == 1 &&
               ggml_nelements(t) == ggml_nelements(ids) && ids->nb[0] == sizeof(int32_t);
    }
    for (size_t i = 1; i < sizeof(weight_names) / sizeof(weight_names[0]); i++) {
        if (is_named(t->name, weight_names[i])) return true;
    }
    return false;
}

// experts a token can choose at most (llama.cpp's LLAMA_MAX_EXPERTS): a row of ids or weights
// is read into the stack
#define MAX_USED 512

// ggml_backend_tensor_get() aborts on a tensor without data or buffer: the hook must not
static bool readable(const struct ggml_tensor * t) {
    const struct ggml_tensor * base = t->view_src ? t->view_src : t;
    return t->data && base->buffer;
}

// Which token each row is. A graph computes a ubatch: llama.cpp may split a decode call's
// batch, and with a KV cache per sequence it groups each ubatch's tokens by sequence (an
// equal number from each), so rows do not follow the batch. A row's position is read from the
// graph itself (the first RoPE node's positions, in its ask call), and its sequence is found
// in the batch: each row takes a batch token no earlier graph took, at the row's position,
// and the next untaken one of its sequence (a sequence's tokens keep their order): the next of
// the previous row's sequence if that one fits, else the first such token in the batch (none
// fits, or the graph was computed outside a decode call: sequence -1, unknown). Without
// positions (no RoPE node) the rows follow the batch from the decode call's first position, in
// sequence 0.

// the batch's next token of sequence seq that no graph took; -1 if none
static int32_t next_of(const struct llt_tracer * tr, int32_t seq) {
    for (int32_t k = tr->batch_unused; k < tr->n_batch_tok; k++) {
        if (!tr->batch_tok[k].used && tr->batch_tok[k].seq == seq) return k;
    }
    return -1;
}

// graph_seq[r] of each row, and the batch tokens taken
static void find_sequences(struct llt_tracer * tr) {
    int32_t prev = -1; // the previous row's batch token
    for (int32_t r = 0; r < tr->n_graph_pos; r++) {
        const int32_t pos = tr->graph_pos[r];
        int32_t k = prev >= 0 ? next_of(tr, tr->batch_tok[prev].seq) : -1;
        if (k < 0 || tr->batch_tok[k].pos != pos) {
            for (k = tr->batch_unused; k < tr->n_batch_tok; k++) {
                if (!tr->batch_tok[k].used && tr->batch_tok[k].pos == pos && next_of(tr, tr->batch_tok[k].seq) == k) break;
            }
        }
        if (k >= tr->n_batch_tok) { tr->graph_seq[r] = -1; prev = -1; continue; }
        tr->batch_tok[k].used = true;
        tr->graph_seq[r] = tr->batch_tok[k].seq;
        prev = k;
        while (tr->batch_unused < tr->n_batch_tok && tr->batch_tok[tr->batch_unused].used) tr->batch_unused++;
    }
}

void llt_experts_graph_pos(struct llt_tracer * tr, const struct ggml_tensor * rope) {
    const struct ggml_tensor * pos = rope->src[1];
    const int64_t n = rope->ne[2]; // [head size, heads, tokens]; M-RoPE's text positions come first
    if (!pos || pos->type != GGML_TYPE_I32 || !ggml_is_contiguous(pos) || n <= 0 || n > INT32_MAX || ggml_nelements(pos) < n ||
        !readable(pos) || !llt_grow((void **) &tr->graph_pos, &tr->cap_graph_pos, (int32_t) n, sizeof(int32_t)) ||
        !llt_grow((void **) &tr->graph_seq, &tr->cap_graph_seq, (int32_t) n, sizeof(int32_t))) {
        return;
    }
    ggml_backend_tensor_get(pos, tr->graph_pos, 0, (size_t) n * sizeof(int32_t));
    tr->n_graph_pos = (int32_t) n;
    if (tr->in_decode && tr->n_batch_tok > 0) find_sequences(tr);
    else for (int32_t r = 0; r < tr->n_graph_pos; r++) tr->graph_seq[r] = -1;
}

struct token_at { int32_t row, pos, seq; };

static struct token_at token_at(const struct llt_tracer * tr, int32_t row) {
    if (row < tr->n_graph_pos) return (struct token_at) { row, tr->graph_pos[row], tr->graph_seq[row] };
    return (struct token_at) { row, tr->cur_pos0 + row, 0 };
}

// The layer's rows: the last layer computes its FFN only for the tokens whose output is asked
// for: llama.cpp picks their rows with GET_ROWS at the input out_ids before it (a few nodes up
// the sources; inp_out_ids in older llama.cpp). Found there, or else the last rows.
#define MAX_SEARCH 256

static void token_rows(const struct llt_tracer * tr, const struct ggml_tensor * t, int64_t n_rows, struct token_at * at) {
    const int32_t n_tokens = tr->n_graph_pos > 0 ? tr->n_graph_pos : tr->cur_n_tokens;
    for (int64_t r = 0; r < n_rows; r++) at[r] = token_at(tr, n_tokens - (int32_t) n_rows + (int32_t) r);
    if (n_rows >= n_tokens) return;
    const struct ggml_tensor * queue[MAX_SEARCH];
    int32_t head = 0, tail = 0;
    queue[tail++] = t;
    while (head < tail) {
        const struct ggml_tensor * x = queue[head++];
        if ((strcmp(x->name, "out_ids") == 0 || strcmp(x->name, "inp_out_ids") == 0) && x->type == GGML_TYPE_I32 && ggml_nelements(x) == n_rows && readable(x)) {
            for (int64_t r = 0; r < n_rows; r++) {
                int32_t row = 0;
                ggml_backend_tensor_get(x, &row, (size_t) r * sizeof(int32_t), sizeof(int32_t));
                at[r] = token_at(tr, row);
            }
            return;
        }
        for (int i = 0; i < GGML_MAX_SRC && x->src[i] && tail < MAX_SEARCH; i++) queue[tail++] = x->src[i];
    }
}

// the first weights node of a layer: a row per token and expert into the batch
static int read_first(struct llt_tracer * tr, const struct ggml_tensor * t, int32_t layer) {
    const struct ggml_tensor * ids = t->src[1];
    const int64_t k = ids->ne[0], n_tokens = ids->ne[1];
    if (k > MAX_USED) return llt_set_error(LLT_EINVAL, "'%s': %lld experts per token, at most %d", t->name, (long long) k, MAX_USED);
    struct llt_batch * b = llt_capture_batch(tr);
    if (!b || !llt_grow((void **) &b->routes, &b->cap_routes, b->n_routes + (int32_t) (k * n_tokens), sizeof(struct route_rows))) {
        return llt_set_error(LLT_ENOMEM, "out of memory");
    }
    tr->route_first = b->n_routes;
    tr->route_n = (int32_t) (k * n_tokens);
    tr->route_layer = layer;
    tr->route_step = tr->n_steps;
    struct token_at * at = malloc((size_t) n_tokens * sizeof(*at) + 1);
    if (!at) return llt_set_error(LLT_ENOMEM, "out of memory");
    token_rows(tr, t, n_tokens, at);
    int32_t id[MAX_USED];
    float w[MAX_USED];
    for (int64_t r = 0; r < n_tokens; r++) {
        // the top-k view: a row of k ids per token, nb[1] apart in the argsort's output
        ggml_backend_tensor_get(ids, id, (size_t) r * ids->nb[1], (size_t) k * sizeof(int32_t));
        ggml_backend_tensor_get(t, w, (size_t) (r * k) * sizeof(float), (size_t) k * sizeof(float));
        for (int64_t j = 0; j < k; j++) {
            b->routes[b->n_routes++] = (struct route_rows) {
                .step = tr->n_steps, .layer = layer, .row = at[r].row, .pos = at[r].pos, .seq_id = at[r].seq,
                .rank = (int32_t) j, .expert = id[j], .weight = w[j],
            };
        }
    }
    free(at);
    return LLT_OK;
}

// A later weights node of the same layer: the weights the mix uses replace the rows'. The
// rows are in the current batch: a batch is handed on only between graph computations.
static int read_later(struct llt_tracer * tr, const struct ggml_tensor * t, int32_t layer) {
    struct llt_batch * b = tr->batch;
    if (!b || tr->route_layer != layer || tr->route_step != tr->n_steps || tr->route_n <= 0 ||
        ggml_nelements(t) != tr->route_n || !ggml_is_contiguous(t)) {
        return LLT_OK; // not after this layer's ffn_moe_weights: nothing to refine
    }
    float w[MAX_USED];
    for (int32_t done = 0; done < tr->route_n;) {
        const int32_t n = tr->route_n - done < MAX_USED ? tr->route_n - done : MAX_USED;
        ggml_backend_tensor_get(t, w, (size_t) done * sizeof(float), (size_t) n * sizeof(float));
        for (int32_t i = 0; i < n; i++) b->routes[tr->route_first + done + i].weight = w[i];
        done += n;
    }
    return LLT_OK;
}

int llt_experts_read(struct llt_tracer * tr, const struct ggml_tensor * t, int32_t layer) {
    if (layer < 0 || !readable(t) || (t->src[1] && !readable(t->src[1]))) return LLT_OK;
    return t->op == GGML_OP_GET_ROWS && is_named(t->name, weight_names[0]) ? read_first(tr, t, layer)
                                                                           : read_later(tr, t, layer);
}
