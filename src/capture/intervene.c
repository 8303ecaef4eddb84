// Interventions: a node's output changed in the eval callback's post call (lltrace/intervene.h).
//
// Every element of the node is visited in ggml's logical order (i0 innermost) through its
// strides, so a view writes into its parent's memory exactly where the view reads. Each
// element's token row, position, sequence and head are worked out from its coordinates:
//   - the token axis is the outermost axis (1..3) whose extent is the graph's token count, or,
//     in the last layer, where llama.cpp keeps only the rows whose logits were asked for, their
//     count; the attention internals kq, kq_soft_max and kqv have their tokens on axis 1;
//   - heads are ne[2] of kq, kq_soft_max and kqv ([n_kv or d, n_tokens, n_head]); in Q, K, V
//     (projected, normed, after RoPE, 2-D or 3-D) and kqv_out they are equal slices of each
//     token's row, in order (ggml_reshape_3d(Qcur, n_embd_head, n_head, n_tokens)).
// A buffer outside host memory (a GPU, an RPC server) is read whole into host memory, changed
// there and written back: it must be contiguous. Elements are f32, f16 or bf16; anything else
// (a quantized KV cache) is refused. Nothing is written before every check passed.
#include "capture/intervene_internal.h"

#include "ggml-backend.h"

#include <fnmatch.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

// ---- the set -----------------------------------------------------------------------------

int llt_iv_set_init(struct llt_iv_set ** out) {
    *out = calloc(1, sizeof(**out));
    return *out ? LLT_OK : llt_set_error(LLT_ENOMEM, "out of memory");
}

void llt_iv_set_free(struct llt_iv_set * set) {
    if (!set) return;
    for (int32_t i = 0; i < set->n; i++) {
        struct iv_entry * e = &set->e[i];
        if (e->is_regex) regfree(&e->re);
        free(e->vec);
        llt_tensor_set_close(e->dump);
    }
    free(set->e);
    free(set->scratch);
    free(set->src);
    free(set);
}

int llt_iv_set_count(const struct llt_iv_set * set) { return set ? set->n : 0; }

const struct llt_intervention * llt_iv_set_get(const struct llt_iv_set * set, int i) {
    return set && i >= 0 && i < set->n ? &set->e[i].iv : NULL;
}

// the vector an add intervention adds: one row of floats
static int load_vector(struct iv_entry * e) {
    struct llt_tensor_set * ts = NULL;
    int rc = llt_tensor_set_open(e->iv.file, &ts);
    if (rc != LLT_OK) return rc;
    const struct llt_tensor_info * ti = llt_tensor_set_count(ts) == 1 ? llt_tensor_set_get(ts, 0) : NULL;
    if (!ti || ti->n_elements != ti->ne[0] || ti->n_elements <= 0) {
        rc = llt_set_error(LLT_EINVAL, "steering vector '%s': want one tensor of one row, found %s", e->iv.file,
                           ti ? "several rows" : "another number of tensors");
    } else if (!(e->vec = malloc((size_t) ti->n_elements * sizeof(float)))) {
        rc = llt_set_error(LLT_ENOMEM, "out of memory");
    } else if ((rc = llt_tensor_set_read_f32(ts, 0, e->vec)) == LLT_OK) {
        e->n_vec = ti->n_elements;
    }
    llt_tensor_set_close(ts);
    return rc;
}

int llt_iv_set_add(struct llt_iv_set * set, const struct llt_intervention * iv) {
    if ((unsigned) iv->kind >= LLT_IV_KIND_COUNT) return llt_set_error(LLT_EINVAL, "unknown intervention kind %d", iv->kind);
    if (!iv->node[0]) return llt_set_error(LLT_EINVAL, "an intervention needs a node name or pattern");
    if ((iv->kind == LLT_IV_ADD || iv->kind == LLT_IV_PATCH) && !iv->file[0]) {
        return llt_set_error(LLT_EINVAL, "%s %s: no file to take the values from", llt_iv_kind_name(iv->kind), iv->node);
    }
    if (!isfinite(iv->value)) return llt_set_error(LLT_EINVAL, "%s %s: the value is not finite", llt_iv_kind_name(iv->kind), iv->node);
    if (!llt_grow((void **) &set->e, &set->cap, set->n + 1, sizeof(*set->e))) return llt_set_error(LLT_ENOMEM, "out of memory");
    struct iv_entry * e = &set->e[set->n];
    memset(e, 0, sizeof(*e));
    e->iv = *iv;
    int rc = LLT_OK;
    if (strncmp(iv->node, "re:", 3) == 0) {
        const int err = regcomp(&e->re, iv->node + 3, REG_EXTENDED | REG_NOSUB);
        if (err != 0) {
            char msg[128];
            regerror(err, &e->re, msg, sizeof(msg));
            return llt_set_error(LLT_EINVAL, "intervention node '%s': bad regular expression: %s", iv->node, msg);
        }
        e->is_regex = true;
    }
    if (iv->kind == LLT_IV_ADD) rc = load_vector(e);
    if (iv->kind == LLT_IV_PATCH) rc = llt_tensor_set_open(iv->file, &e->dump);
    if (rc == LLT_OK && iv->kind == LLT_IV_PATCH && llt_tensor_set_kind(e->dump) != LLT_TENSOR_SET_GGUF) {
        rc = llt_set_error(LLT_EINVAL, "patch %s: '%s' is not a dump GGUF (lltrace run --dump)", iv->node, iv->file);
    }
    if (rc != LLT_OK) {
        if (e->is_regex) regfree(&e->re);
        free(e->vec);
        llt_tensor_set_close(e->dump);
        return rc;
    }
    set->n++;
    return LLT_OK;
}

int llt_iv_set_add_text(struct llt_iv_set * set, enum llt_iv_kind kind, const char * text, const char * from) {
    struct llt_intervention iv;
    int rc = llt_iv_parse(kind, text, from, &iv);
    return rc == LLT_OK ? llt_iv_set_add(set, &iv) : rc;
}

// ---- which nodes -------------------------------------------------------------------------

static bool in_range(int64_t v, int32_t first, int32_t last) {
    return first == LLT_IV_ANY || (v >= first && v <= last);
}

bool llt_iv_set_matches(const struct llt_iv_set * set, int i, const char * name, int32_t layer, int64_t step) {
    const struct iv_entry * e = &set->e[i];
    if (!in_range(step, e->iv.step_first, e->iv.step_last)) return false;
    if (e->iv.layer != LLT_IV_ANY && layer != e->iv.layer) return false;
    return e->is_regex ? regexec(&e->re, name, 0, NULL, 0) == 0 : fnmatch(e->iv.node, name, 0) == 0;
}

bool llt_iv_set_wants(const struct llt_iv_set * set, const char * name, int32_t layer, int64_t step) {
    for (int32_t i = 0; set && i < set->n; i++) {
        if (llt_iv_set_matches(set, i, name, layer, step)) return true;
    }
    return false;
}

bool llt_iv_set_wants_node(const struct llt_iv_set * set, const char * name, int32_t layer) {
    for (int32_t i = 0; set && i < set->n; i++) {
        const struct iv_entry * e = &set->e[i];
        if (e->iv.layer != LLT_IV_ANY && layer != e->iv.layer) continue;
        if (e->is_regex ? regexec(&e->re, name, 0, NULL, 0) == 0 : fnmatch(e->iv.node, name, 0) == 0) return true;
    }
    return false;
}

bool llt_iv_set_needs_probs(const struct llt_iv_set * set) {
    static const char * const bases[] = { "kq", "kq_soft_max", "kqv" };
    char name[32];
    for (int32_t i = 0; set && i < set->n; i++) {
        for (int b = 0; b < 3; b++) {
            for (int l = -1; l < 256; l++) {
                if (l < 0) snprintf(name, sizeof(name), "%s", bases[b]);
                else snprintf(name, sizeof(name), "%s-%d", bases[b], l);
                if (llt_iv_set_matches(set, i, name, l, set->e[i].iv.step_first == LLT_IV_ANY ? 0 : set->e[i].iv.step_first)) {
                    return true;
                }
            }
        }
    }
    return false;
}

// the name without its layer and view suffixes: "Qcur-3 (reshaped)" -> "Qcur"
static void base_name(const char * name, char * out, size_t size) {
    size_t n = strcspn(name, " ");
    const char * dash = memchr(name, '-', n);
    while (dash) {
        const char * next = memchr(dash + 1, '-', n - (size_t) (dash + 1 - name));
        if (!next) break;
        dash = next;
    }
    if (dash && dash[1] >= '0' && dash[1] <= '9') n = (size_t) (dash - name);
    snprintf(out, size, "%.*s", (int) n, name);
}

int llt_iv_head_layout(const char * name, bool * kv) {
    static const struct { const char * base; int layout; bool kv; } heads[] = {
        { "Qcur", 1, false }, { "Qcur_normed", 1, false }, { "kqv_out", 1, false },
        { "Kcur", 1, true },  { "Kcur_normed", 1, true },  { "Vcur", 1, true },
        { "kq", 2, false },   { "kq_soft_max", 2, false }, { "kqv", 2, false },
    };
    char base[64];
    base_name(name, base, sizeof(base));
    for (size_t i = 0; i < sizeof(heads) / sizeof(heads[0]); i++) {
        if (strcmp(base, heads[i].base) == 0) {
            if (kv) *kv = heads[i].kv;
            return heads[i].layout;
        }
    }
    if (kv) *kv = false;
    return 0;
}

// ---- elements ----------------------------------------------------------------------------

static bool type_ok(enum ggml_type type) {
    return type == GGML_TYPE_F32 || type == GGML_TYPE_F16 || type == GGML_TYPE_BF16;
}

static float get_elem(const char * p, enum ggml_type type) {
    switch (type) {
        case GGML_TYPE_F32:  { float f; memcpy(&f, p, sizeof(f)); return f; }
        case GGML_TYPE_F16:  { ggml_fp16_t h; memcpy(&h, p, sizeof(h)); return ggml_fp16_to_fp32(h); }
        default:             { ggml_bf16_t h; memcpy(&h, p, sizeof(h)); return ggml_bf16_to_fp32(h); }
    }
}

static void put_elem(char * p, enum ggml_type type, float v) {
    switch (type) {
        case GGML_TYPE_F32:  memcpy(p, &v, sizeof(v)); break;
        case GGML_TYPE_F16:  { ggml_fp16_t h = ggml_fp32_to_fp16(v); memcpy(p, &h, sizeof(h)); break; }
        default:             { ggml_bf16_t h = ggml_fp32_to_bf16(v); memcpy(p, &h, sizeof(h)); break; }
    }
}

// How a node's elements map to tokens and heads (see the top of the file)
struct layout {
    int     tok_axis;   // 1..3, -1 unknown
    bool    out_rows;   // the token axis counts the output rows, not the graph's tokens
    int     head_layout;
    int64_t row_len;    // elements of one token's row (the axes below the token axis)
    int64_t head_len;   // layout 1: elements of one head in a row
    int32_t n_heads;
};

static int find_layout(const struct llt_intervention * iv, const struct ggml_tensor * t, const struct llt_iv_where * w,
                       struct layout * L) {
    bool kv = false;
    memset(L, 0, sizeof(*L));
    L->head_layout = llt_iv_head_layout(t->name, &kv);
    L->tok_axis = -1;
    if (L->head_layout == 2) {
        L->tok_axis = t->ne[1] == w->n_tokens ? 1 : -1;
    } else {
        for (int a = 3; a >= 1 && L->tok_axis < 0; a--) if (t->ne[a] == w->n_tokens) L->tok_axis = a;
        for (int a = 3; a >= 1 && L->tok_axis < 0 && w->n_out > 0 && w->n_out < w->n_tokens; a--) {
            if (t->ne[a] == w->n_out) { L->tok_axis = a; L->out_rows = true; }
        }
    }
    L->row_len = 1;
    for (int a = 0; a < (L->tok_axis > 0 ? L->tok_axis : 4); a++) L->row_len *= t->ne[a];
    const bool selects_rows = iv->pos_first != LLT_IV_ANY || iv->seq != LLT_IV_ANY;
    if (selects_rows && L->tok_axis < 0) {
        return llt_set_error(LLT_EINVAL, "%s %s: cannot tell which token each row of '%s' is (shape [%lld, %lld, %lld, %lld], "
                             "%d tokens)", llt_iv_kind_name(iv->kind), iv->node, t->name, (long long) t->ne[0],
                             (long long) t->ne[1], (long long) t->ne[2], (long long) t->ne[3], w->n_tokens);
    }
    if (iv->head == LLT_IV_ANY) return LLT_OK;
    if (L->head_layout == 0) {
        return llt_set_error(LLT_EINVAL, "%s %s: '%s' has no attention heads (docs/debugging.md, \"Heads\")",
                             llt_iv_kind_name(iv->kind), iv->node, t->name);
    }
    L->n_heads = L->head_layout == 2 ? (int32_t) t->ne[2] : kv ? w->n_head_kv : w->n_head;
    if (L->head_layout == 1) {
        if (L->tok_axis < 0 && w->n_tokens != 1) {
            return llt_set_error(LLT_EINVAL, "%s %s: cannot find the token rows of '%s' to slice its heads",
                                 llt_iv_kind_name(iv->kind), iv->node, t->name);
        }
        if (L->n_heads <= 0 || L->row_len % L->n_heads != 0) {
            return llt_set_error(LLT_EINVAL, "%s %s: a row of '%s' (%lld elements) does not split into %d heads",
                                 llt_iv_kind_name(iv->kind), iv->node, t->name, (long long) L->row_len, L->n_heads);
        }
        L->head_len = L->row_len / L->n_heads;
    }
    if (iv->head >= L->n_heads) {
        return llt_set_error(LLT_EINVAL, "%s %s: head %d of '%s', which has %d heads", llt_iv_kind_name(iv->kind),
                             iv->node, iv->head, t->name, L->n_heads);
    }
    return LLT_OK;
}

// the dump tensor a patch copies from, read as floats into set->src; its elements in t's logical order
static int load_patch(struct llt_iv_set * set, struct iv_entry * e, const struct ggml_tensor * t, const struct llt_iv_where * w) {
    char name[GGML_MAX_NAME + 32];
    int n = snprintf(name, sizeof(name), "%s#%lld", t->name, (long long) w->step);
    if (w->occ > 0) snprintf(name + n, sizeof(name) - (size_t) n, ".%d", w->occ);
    const int k = llt_tensor_set_find(e->dump, name);
    if (k < 0) {
        return llt_set_error(LLT_ENOTFOUND, "patch %s: the dump '%s' has no tensor '%s' (dump the node at this step: "
                             "--dump '%s')", e->iv.node, e->iv.file, name, t->name);
    }
    const struct llt_tensor_info * ti = llt_tensor_set_get(e->dump, k);
    for (int d = 0; d < 4; d++) {
        if (ti->ne[d] != t->ne[d]) {
            return llt_set_error(LLT_EINVAL, "patch %s: '%s' is [%lld, %lld, %lld, %lld] in the dump, [%lld, %lld, %lld, %lld] here "
                                 "(another prompt length?)", e->iv.node, name, (long long) ti->ne[0], (long long) ti->ne[1],
                                 (long long) ti->ne[2], (long long) ti->ne[3], (long long) t->ne[0], (long long) t->ne[1],
                                 (long long) t->ne[2], (long long) t->ne[3]);
        }
    }
    if (ti->n_elements > set->cap_src) {
        float * p = realloc(set->src, (size_t) ti->n_elements * sizeof(float));
        if (!p) return llt_set_error(LLT_ENOMEM, "out of memory");
        set->src = p;
        set->cap_src = ti->n_elements;
    }
    return llt_tensor_set_read_f32(e->dump, k, set->src);
}

// the token a row of the token axis is: its index among the graph's tokens
static int32_t token_of_row(const struct layout * L, const struct llt_iv_where * w, int64_t row) {
    if (!L->out_rows) return (int32_t) row;
    return w->out_rows ? w->out_rows[row] : (int32_t) (w->n_tokens - w->n_out + row);
}

int64_t llt_iv_set_apply(struct llt_iv_set * set, int i, struct ggml_tensor * t, const struct llt_iv_where * w) {
    if (i < 0 || i >= set->n) return llt_set_error(LLT_EINVAL, "no intervention %d", i);
    struct iv_entry * e = &set->e[i];
    const struct llt_intervention * iv = &e->iv;
    const char * kind = llt_iv_kind_name(iv->kind);
    if (iv->op[0] && strcmp(iv->op, ggml_op_name(t->op)) != 0) return 0;
    if (!type_ok(t->type)) {
        return llt_set_error(LLT_EINVAL, "%s %s: '%s' holds %s elements; interventions change f32, f16 and bf16 only",
                             kind, iv->node, t->name, ggml_type_name(t->type));
    }
    struct layout L;
    int rc = find_layout(iv, t, w, &L);
    if (rc != LLT_OK) return rc;
    const bool per_head_vec = iv->kind == LLT_IV_ADD && e->n_vec != t->ne[0];
    if (iv->kind == LLT_IV_ADD && per_head_vec && !(iv->head != LLT_IV_ANY && L.head_layout == 1 && e->n_vec == L.head_len)) {
        return llt_set_error(LLT_EINVAL, "add %s: the vector has %lld elements, a row of '%s' %lld%s", iv->node,
                             (long long) e->n_vec, t->name, (long long) t->ne[0],
                             L.head_len > 0 ? " (or one head's, with head=)" : "");
    }
    if (iv->kind == LLT_IV_PATCH && (rc = load_patch(set, e, t, w)) != LLT_OK) return rc;

    // where the elements are: host memory, or a copy of a device's
    const struct ggml_tensor * base = t->view_src ? t->view_src : t;
    const bool host = !base->buffer || ggml_backend_buffer_is_host(base->buffer);
    const size_t nbytes = ggml_nbytes(t);
    char * data = t->data;
    if (!data) return llt_set_error(LLT_EINVAL, "%s %s: '%s' has no data", kind, iv->node, t->name);
    if (!host) {
        if (!ggml_is_contiguous(t)) {
            return llt_set_error(LLT_EINVAL, "%s %s: '%s' is a strided view in %s memory; lltrace changes such views in host "
                                 "memory only", kind, iv->node, t->name, ggml_backend_buffer_name(base->buffer));
        }
        if (nbytes > set->cap_scratch) {
            void * p = realloc(set->scratch, nbytes);
            if (!p) return llt_set_error(LLT_ENOMEM, "out of memory");
            set->scratch = p;
            set->cap_scratch = nbytes;
        }
        ggml_backend_tensor_get(t, set->scratch, 0, nbytes);
        data = set->scratch;
    }

    int64_t n_changed = 0, flat = 0;
    int64_t c[4];
    for (c[3] = 0; c[3] < t->ne[3]; c[3]++)
    for (c[2] = 0; c[2] < t->ne[2]; c[2]++)
    for (c[1] = 0; c[1] < t->ne[1]; c[1]++)
    for (c[0] = 0; c[0] < t->ne[0]; c[0]++, flat++) {
        int64_t in_row = flat % L.row_len;
        if (L.tok_axis > 0 && (iv->pos_first != LLT_IV_ANY || iv->seq != LLT_IV_ANY)) {
            const int32_t tok = token_of_row(&L, w, c[L.tok_axis]);
            const int32_t pos = w->pos ? w->pos[tok] : w->pos0 + tok;
            const int32_t seq = w->seq ? w->seq[tok] : 0;
            if (!in_range(pos, iv->pos_first, iv->pos_last) || (iv->seq != LLT_IV_ANY && seq != iv->seq)) continue;
        }
        if (iv->head != LLT_IV_ANY) {
            const int64_t h = L.head_layout == 2 ? c[2] : in_row / L.head_len;
            if (h != iv->head) continue;
        }
        char * p = data + c[0] * t->nb[0] + c[1] * t->nb[1] + c[2] * t->nb[2] + c[3] * t->nb[3];
        float v;
        switch (iv->kind) {
            case LLT_IV_ABLATE: v = 0.0f; break;
            case LLT_IV_SET:    v = iv->value; break;
            case LLT_IV_SCALE:  v = get_elem(p, t->type) * iv->value; break;
            case LLT_IV_PATCH:  v = set->src[flat]; break;
            default: {
                const float add = iv->value * e->vec[per_head_vec ? in_row % L.head_len : c[0]];
                if (add == 0.0f) continue; // x + 0 would turn -0 into +0: adding nothing writes nothing
                v = get_elem(p, t->type) + add;
                break;
            }
        }
        put_elem(p, t->type, v);
        n_changed++;
    }
    if (!host && n_changed > 0) ggml_backend_tensor_set(t, data, 0, nbytes);
    return n_changed;
}
