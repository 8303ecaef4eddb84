// Expert routing: what the tokens of a run chose in each MoE layer, from expert_routing
// (lltrace/read.h): per layer how often each expert was chosen and how uneven that is, and
// per token its experts and their weights.
#include "lltrace/experts.h"
#include "lltrace/read.h"
#include "core/internal.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

struct layer {
    struct llt_experts_layer pub;
    int64_t * count;
    int32_t   cap_count;
};

struct piece {
    int64_t key;  // piece_key(sequence, position)
    char *  text; // owned
};

// a token's sequence and position as one sortable key
static int64_t piece_key(int32_t seq_id, int64_t pos) {
    return (int64_t) ((uint64_t) (uint32_t) seq_id << 32 | (uint32_t) pos);
}

struct llt_experts {
    struct layer *             layers;  // by layer
    int32_t                    n_layers, cap_layers;
    struct llt_experts_token * tokens;
    int32_t                    n_tokens, cap_tokens;
    int32_t *                  first;   // per token: its first choice in expert / weight
    int32_t                    cap_first;
    int32_t *                  expert;  // every choice, in row order
    float *                    weight;
    int32_t                    n_choices, cap_expert, cap_weight;
    struct piece *             pieces;  // the tokens fed, by sequence and position
    int32_t                    n_pieces, cap_pieces;
    int32_t                    seq;     // only this sequence's tokens; -1: every one
};

static int oom(void) {
    return llt_set_error(LLT_ENOMEM, "out of memory");
}

// the layer's entry, made if new (layers arrive in order for each step: a short search)
static struct layer * layer_of(struct llt_experts * e, int32_t layer) {
    int32_t i = 0;
    while (i < e->n_layers && e->layers[i].pub.layer < layer) i++;
    if (i < e->n_layers && e->layers[i].pub.layer == layer) return &e->layers[i];
    if (!llt_grow((void **) &e->layers, &e->cap_layers, e->n_layers + 1, sizeof(*e->layers))) return NULL;
    memmove(&e->layers[i + 1], &e->layers[i], (size_t) (e->n_layers - i) * sizeof(*e->layers));
    e->n_layers++;
    e->layers[i] = (struct layer) { .pub = { .layer = layer, .imbalance = NAN } };
    return &e->layers[i];
}

// widens a layer to n experts, the new ones never chosen
static bool widen(struct layer * l, int32_t n) {
    if (n <= l->pub.n_expert) return true;
    if (!llt_grow((void **) &l->count, &l->cap_count, n, sizeof(*l->count))) return false;
    memset(l->count + l->pub.n_expert, 0, (size_t) (n - l->pub.n_expert) * sizeof(*l->count));
    l->pub.n_expert = n;
    return true;
}

// a layer's router width: its probabilities, one per expert
static int on_node(const struct llt_read_node * r, void * user_data) {
    struct llt_experts * e = user_data;
    if (r->layer < 0 || strncmp(r->name, "ffn_moe_probs-", 14) != 0 || r->ne[0] <= 0 || r->ne[0] > LLT_EXPERTS_MAX) return LLT_OK;
    struct layer * l = layer_of(e, r->layer);
    return l && widen(l, (int32_t) r->ne[0]) ? LLT_OK : oom();
}

static int on_route(const struct llt_read_route * r, void * user_data) {
    struct llt_experts * e = user_data;
    if (r->expert < 0 || r->expert >= LLT_EXPERTS_MAX || r->layer < 0) return LLT_OK; // a damaged row
    if (e->seq >= 0 && r->seq_id != e->seq) return LLT_OK;
    struct llt_experts_token * t = e->n_tokens ? &e->tokens[e->n_tokens - 1] : NULL;
    if (!t || t->step != r->step || t->layer != r->layer || t->row != r->row) {
        if (!llt_grow((void **) &e->tokens, &e->cap_tokens, e->n_tokens + 1, sizeof(*e->tokens)) ||
            !llt_grow((void **) &e->first, &e->cap_first, e->n_tokens + 1, sizeof(*e->first))) return oom();
        e->first[e->n_tokens] = e->n_choices;
        t = &e->tokens[e->n_tokens++];
        *t = (struct llt_experts_token) { .step = r->step, .row = r->row, .pos = r->pos, .seq_id = r->seq_id,
                                          .layer = r->layer, .piece = "" };
    }
    if (!llt_grow((void **) &e->expert, &e->cap_expert, e->n_choices + 1, sizeof(*e->expert)) ||
        !llt_grow((void **) &e->weight, &e->cap_weight, e->n_choices + 1, sizeof(*e->weight))) return oom();
    e->expert[e->n_choices] = r->expert;
    e->weight[e->n_choices] = (float) r->weight;
    e->n_choices++;
    t->n++;
    struct layer * l = layer_of(e, r->layer);
    if (!l || !widen(l, r->expert + 1)) return oom();
    l->count[r->expert]++;
    if (r->rank == 0) l->pub.n_tokens++;
    if (r->rank + 1 > l->pub.n_used) l->pub.n_used = r->rank + 1;
    return LLT_OK;
}

static int on_token(const struct llt_read_token * r, void * user_data) {
    struct llt_experts * e = user_data;
    if (!llt_grow((void **) &e->pieces, &e->cap_pieces, e->n_pieces + 1, sizeof(*e->pieces))) return oom();
    struct piece * p = &e->pieces[e->n_pieces];
    if (!(p->text = strdup(r->piece))) return oom();
    p->key = piece_key(r->seq_id, r->pos);
    e->n_pieces++;
    return LLT_OK;
}

// by sequence and position (a sequence is fed one token per position)
static int cmp_piece(const void * x, const void * y) {
    const struct piece * a = x, * b = y;
    return (a->key > b->key) - (a->key < b->key);
}

// the figures, once every row is in (the arrays no longer move)
static void finish(struct llt_experts * e) {
    if (e->n_pieces > 1) qsort(e->pieces, (size_t) e->n_pieces, sizeof(*e->pieces), cmp_piece);
    for (int32_t i = 0; i < e->n_tokens; i++) {
        struct llt_experts_token * t = &e->tokens[i];
        t->expert = e->expert + e->first[i];
        t->weight = e->weight + e->first[i];
        const int32_t k = t->seq_id < 0 ? -1 : llt_find_i64(e->pieces, e->n_pieces, sizeof(*e->pieces), offsetof(struct piece, key),
                                                            piece_key(t->seq_id, t->pos));
        if (k >= 0) t->piece = e->pieces[k].text;
    }
    for (int32_t i = 0; i < e->n_layers; i++) {
        struct layer * l = &e->layers[i];
        l->pub.count = l->count;
        int64_t sum = 0, max = 0;
        for (int32_t x = 0; x < l->pub.n_expert; x++) {
            sum += l->count[x];
            if (l->count[x] > max) max = l->count[x];
            l->pub.n_idle += l->count[x] == 0;
        }
        if (sum > 0) l->pub.imbalance = (double) max / ((double) sum / (double) l->pub.n_expert);
    }
}

int llt_experts_load(struct llt_store * st, int64_t run, int64_t step, int32_t seq, struct llt_experts ** out) {
    *out = NULL;
    struct llt_read_run r;
    int rc = llt_read_run(st, run, &r);
    if (rc != LLT_OK) return rc;
    struct llt_experts * e = calloc(1, sizeof(*e));
    if (!e) return oom();
    e->seq = seq < 0 ? -1 : seq;
    const struct llt_read_sel sel = { .run = r.id, .step = step, .by_seq = seq >= 0, .seq = seq };
    rc = llt_read_nodes(st, &sel, on_node, e);
    if (rc == LLT_OK) rc = llt_read_routes(st, &sel, on_route, e);
    if (rc == LLT_OK) rc = llt_read_tokens(st, &sel, on_token, e);
    if (rc != LLT_OK) {
        llt_experts_free(e);
        return rc;
    }
    finish(e);
    *out = e;
    return LLT_OK;
}

void llt_experts_free(struct llt_experts * e) {
    if (!e) return;
    for (int32_t i = 0; i < e->n_layers; i++) free(e->layers[i].count);
    for (int32_t i = 0; i < e->n_pieces; i++) free(e->pieces[i].text);
    free(e->layers);
    free(e->tokens);
    free(e->first);
    free(e->expert);
    free(e->weight);
    free(e->pieces);
    free(e);
}

int32_t llt_experts_n_layers(const struct llt_experts * e) { return e->n_layers; }

const struct llt_experts_layer * llt_experts_layer(const struct llt_experts * e, int32_t i) {
    return i >= 0 && i < e->n_layers ? &e->layers[i].pub : NULL;
}

int64_t llt_experts_n_tokens(const struct llt_experts * e) { return e->n_tokens; }

const struct llt_experts_token * llt_experts_token(const struct llt_experts * e, int64_t i) {
    return i >= 0 && i < e->n_tokens ? &e->tokens[i] : NULL;
}
