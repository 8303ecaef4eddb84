// Values: what lltrace reads from tensor data while a node's output is valid (the post call).
//
// Statistics of every computing node (level values), dumps of the nodes that match patterns
// or belong to the named checkpoints, the KV cache of the positions used so far, a live
// comparison against a reference dump, and the stop at the first NaN or Inf.
//
// Dumps go to one GGUF per run. Data is appended to a side file as nodes are computed; when
// the run ends the GGUF is written: metadata, tensor infos, then the data copied across.
// Tensor names (docs/dump-format.md): <node name>#<step>, plus .<k> for the k-th repeat of a
// name within the step (Qcur-0#4 is the projection, Qcur-0#4.2 the RoPE), plus :s<i> for
// source i with dump_sources. A name longer than GGUF allows becomes n<idx>#<step>...
#include "capture/values.h"
#include "tensors/gguf_writer.h"

#include "ggml-backend.h"
#include "gguf.h"

#include <errno.h>
#include <fnmatch.h>
#include <math.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct pattern {
    bool    is_regex;
    regex_t re;
    char *  glob;
    bool    matched; // some node of the run matched it: else the user gets a warning
};

struct dump_entry {
    char     name[GGML_MAX_NAME];
    char     node[GGML_MAX_NAME];
    char     checkpoint[32];
    int32_t  type;
    int32_t  n_dims;
    int64_t  ne[4];
    uint64_t offset, size; // in the side file
    int32_t  layer, idx, src_slot; // src_slot -1: the node itself
    int64_t  step, order;
    int32_t  pos0, n_tokens;
    char     op[32];
};

struct llt_values {
    struct llt_values_params p;
    bool             stats;       // level values
    struct pattern * patterns;
    int32_t          n_patterns;

    // dumps
    char *           dump_path;
    char             data_path[1100];
    FILE *           data;
    struct dump_entry * entries;
    int32_t          n_entries, cap_entries;
    uint64_t         data_size;
    int64_t          order;

    // live comparison
    struct llt_tensor_set * ref;
    char **          ref_nodes;   // node names the reference holds (sorted)
    bool *           ref_seen;    // [n_ref_nodes]: a node of this run has the name
    int32_t          n_ref_nodes;
    struct llt_ref_summary ref_sum;

    // scratch
    void *           host;        // a tensor's bytes when its buffer is not in host memory
    size_t           host_size;
    void *           rows;        // a strided view's rows, gathered
    size_t           rows_size;
    float *          f32a, * f32b;
    size_t           f32_cap;

    char             nan_report[1024];
};

// ---- patterns ----------------------------------------------------------------------------

// a pattern ready to match: a glob, or a regex after "re:"; caller frees with free_pattern()
static int compile_pattern(const char * pat, struct pattern * p) {
    memset(p, 0, sizeof(*p));
    if (strncmp(pat, "re:", 3) != 0) {
        return (p->glob = strdup(pat)) ? LLT_OK : llt_set_error(LLT_ENOMEM, "out of memory");
    }
    int err = regcomp(&p->re, pat + 3, REG_EXTENDED | REG_NOSUB);
    if (err != 0) {
        char msg[128];
        regerror(err, &p->re, msg, sizeof(msg));
        return llt_set_error(LLT_EINVAL, "dump pattern '%s': bad regular expression: %s", pat, msg);
    }
    p->is_regex = true;
    return LLT_OK;
}

static void free_pattern(struct pattern * p) {
    if (p->is_regex) regfree(&p->re);
    free(p->glob);
}

int llt_pattern_check(const char * pat) {
    struct pattern p;
    int rc = compile_pattern(pat, &p);
    if (rc == LLT_OK) free_pattern(&p);
    return rc;
}

static int compile_patterns(struct llt_values * v) {
    int32_t n = 0;
    while (v->p.dump && v->p.dump[n]) n++;
    v->patterns = calloc((size_t) n + 1, sizeof(struct pattern));
    if (!v->patterns) return llt_set_error(LLT_ENOMEM, "out of memory");
    for (int32_t i = 0; i < n; i++) {
        int rc = compile_pattern(v->p.dump[i], &v->patterns[i]);
        if (rc != LLT_OK) return rc;
        v->n_patterns++;
    }
    return LLT_OK;
}

// every pattern is tried, so that each one that matches something is marked
static bool pattern_match(struct llt_values * v, const char * name) {
    bool any = false;
    for (int32_t i = 0; i < v->n_patterns; i++) {
        struct pattern * p = &v->patterns[i];
        if (p->is_regex ? regexec(&p->re, name, 0, NULL, 0) == 0 : fnmatch(p->glob, name, 0) == 0) any = p->matched = true;
    }
    return any;
}

// ---- checkpoints -------------------------------------------------------------------------

// the checkpoint node t (named name) is, "" if none: per layer the attention norm, Q/K/V after
// projection (fused in GPT-2), their norms (Qwen3, Gemma 3) and RoPE, the KV cache, attention
// probabilities, attention output (before and after its projection), FFN or MoE output (and
// the experts an MoE layer chose) and layer output; then the final norm and the logits.
// docs/architectures.md tables them per architecture.
static const char * checkpoint_of(const struct ggml_tensor * t, const char * name) {
    static const struct { const char * prefix; enum ggml_op op; const char * what; } set[] = {
        { "attn_norm-",      GGML_OP_MUL,      "attn_norm" },
        { "attn_norm-",      GGML_OP_ADD,      "attn_norm" },      // LayerNorm's bias (GPT-2)
        { "wqkv_b-",         GGML_OP_ADD,      "qkv_proj" },       // fused Q/K/V with bias (GPT-2)
        { "Qcur-",           GGML_OP_MUL_MAT,  "q_proj" },
        { "Qcur_normed-",    GGML_OP_MUL,      "q_norm" },
        { "Qcur-",           GGML_OP_ROPE,     "q_rope" },
        { "Kcur-",           GGML_OP_MUL_MAT,  "k_proj" },
        { "Kcur_normed-",    GGML_OP_MUL,      "k_norm" },
        { "Kcur-",           GGML_OP_ROPE,     "k_rope" },
        { "Vcur-",           GGML_OP_MUL_MAT,  "v_proj" },
        { "kq_soft_max-",    GGML_OP_SOFT_MAX, "attn_probs" },
        { "kqv_out-",        GGML_OP_CONT,     "attn_kqv" },
        { "attn_sub_norm-",  GGML_OP_MUL,      "attn_sub_norm" },  // BitNet
        { "attn_out-",       GGML_OP_MUL_MAT,  "attn_out" },
        { "attn_post_norm-", GGML_OP_MUL,      "attn_post_norm" }, // Gemma 3
        { "ffn_out-",        GGML_OP_MUL_MAT,  "ffn_out" },
        { "ffn_out-",        GGML_OP_ADD,      "ffn_out" },        // the down projection's bias (GPT-2)
        { "ffn_down-",       GGML_OP_MUL_MAT,  "ffn_down" },       // BitNet's FFN output; GPT-2's before its bias
        { "ffn_moe_topk-",   GGML_OP_VIEW,     "moe_topk" },       // the experts an MoE layer chose
        { "ffn_moe_out-",    GGML_OP_ADD,      "moe_out" },        // the selected experts' sum
        { "ffn_post_norm-",  GGML_OP_MUL,      "ffn_post_norm" },  // Gemma 3
        { "l_out-",          GGML_OP_ADD,      "layer_out" },
    };
    const enum ggml_op op = t->op;
    for (size_t i = 0; i < sizeof(set)/sizeof(set[0]); i++) {
        size_t n = strlen(set[i].prefix);
        if (op == set[i].op && strncmp(name, set[i].prefix, n) == 0 && strchr(name, ' ') == NULL) return set[i].what;
    }
    // Qwen3, Gemma 3 and GPT-2 leave the attention output projection unnamed (node_N): it is
    // the product with the layer's attn_output weight
    const char * w = op == GGML_OP_MUL_MAT && t->src[0] ? t->src[0]->name : "";
    if (strncmp(w, "blk.", 4) == 0 && strcmp(w + 4 + strspn(w + 4, "0123456789"), ".attn_output.weight") == 0) return "attn_out";
    // the rows of token_embd the tokens pick, layer 0's input: a quantized token_embd differs here first
    if (op == GGML_OP_GET_ROWS && (strcmp(name, "embd") == 0 || strcmp(name, "inp_embd") == 0)) return "embedding";
    if ((op == GGML_OP_MUL || op == GGML_OP_ADD) && strcmp(name, "result_norm") == 0) return "output_norm";
    if (op == GGML_OP_MUL_MAT && strcmp(name, "result_output") == 0) return "logits";
    // the views attention reads the cache through
    if (op == GGML_OP_VIEW && strncmp(name, "cache_k_l", 9) == 0 && strstr(name, " (view)") && !strstr(name, "(permuted)")) return "k_cache";
    if (op == GGML_OP_VIEW && strncmp(name, "cache_v_l", 9) == 0 && strstr(name, " (view)") && !strstr(name, "(permuted)")) return "v_cache";
    return "";
}

// ---- setup -------------------------------------------------------------------------------

struct llt_values_params llt_values_default_params(void) {
    return (struct llt_values_params) {
        .dump_layer = -1, .dump_step_first = -1, .dump_step_last = -1, .checkpoint_layer = -1,
        .tol_abs = 1e-6, .tol_rel = 1e-4,
    };
}

static int cmp_str(const void * a, const void * b) {
    return strcmp(*(char * const *) a, *(char * const *) b);
}

// the node names a reference dump holds: its tensor names up to the '#'
static int load_reference(struct llt_values * v) {
    int rc = llt_tensor_set_open(v->p.reference, &v->ref);
    if (rc != LLT_OK) return rc;
    int n = llt_tensor_set_count(v->ref);
    v->ref_nodes = calloc((size_t) n + 1, sizeof(char *));
    if (!v->ref_nodes) return llt_set_error(LLT_ENOMEM, "out of memory");
    for (int i = 0; i < n; i++) {
        const char * name = llt_tensor_set_get(v->ref, i)->name;
        const char * hash = strrchr(name, '#');
        if (!hash || strchr(hash, ':')) continue; // sources are not compared live
        char * node = strndup(name, (size_t) (hash - name));
        if (!node) return llt_set_error(LLT_ENOMEM, "out of memory");
        v->ref_nodes[v->n_ref_nodes++] = node;
    }
    qsort(v->ref_nodes, (size_t) v->n_ref_nodes, sizeof(char *), cmp_str);
    // one name per node: a node dumped at several steps is one node
    int32_t u = 0;
    for (int32_t i = 0; i < v->n_ref_nodes; i++) {
        if (u > 0 && strcmp(v->ref_nodes[u - 1], v->ref_nodes[i]) == 0) { free(v->ref_nodes[i]); continue; }
        v->ref_nodes[u++] = v->ref_nodes[i];
        v->ref_sum.ref_has_probs |= strncmp(v->ref_nodes[i], "kq_soft_max-", 12) == 0;
    }
    v->n_ref_nodes = u;
    v->ref_seen = calloc((size_t) u + 1, sizeof(bool));
    if (!v->ref_seen) return llt_set_error(LLT_ENOMEM, "out of memory");
    if (v->n_ref_nodes == 0) {
        return llt_set_error(LLT_EFORMAT, "reference '%s' holds no lltrace dump tensors (<node>#<step>)", v->p.reference);
    }
    return LLT_OK;
}

int llt_values_init(const struct llt_values_params * p, enum llt_level level, const char * trace_path,
                    int64_t run_id, struct llt_values ** out) {
    *out = NULL;
    struct llt_values * v = calloc(1, sizeof(*v));
    if (!v) return llt_set_error(LLT_ENOMEM, "out of memory");
    v->p = *p;
    v->stats = level == LLT_LEVEL_VALUES || p->break_on_nan;
    int rc = compile_patterns(v);
    if (rc == LLT_OK && p->reference) rc = load_reference(v);
    if (rc == LLT_OK && (v->n_patterns > 0 || p->checkpoints)) {
        char def[1100];
        snprintf(def, sizeof(def), "%s.run%lld.gguf", trace_path, (long long) run_id);
        v->dump_path = llt_abs_path(p->dump_path ? p->dump_path : def); // runs.dump_path holds it
        snprintf(v->data_path, sizeof(v->data_path), "%s.data.%d", v->dump_path, (int) getpid());
        struct stat sb; // the trace names the dump to read it back: it is a file, not a FIFO or device
        if (v->dump_path && stat(v->dump_path, &sb) == 0 && !S_ISREG(sb.st_mode)) {
            rc = llt_set_error(LLT_EIO, "cannot write dump '%s': not a regular file (a dump is read back by its path)", v->dump_path);
        } else if (!(v->data = v->dump_path ? fopen(v->data_path, "w+b") : NULL)) {
            rc = llt_set_error(LLT_EIO, "cannot write dump data next to '%s': %s", v->dump_path ? v->dump_path : def, strerror(errno));
        }
    }
    if (rc != LLT_OK) {
        llt_values_free(v);
        return rc;
    }
    *out = v;
    return LLT_OK;
}

void llt_values_free(struct llt_values * v) {
    if (!v) return;
    for (int32_t i = 0; i < v->n_patterns; i++) free_pattern(&v->patterns[i]);
    free(v->patterns);
    if (v->data) {
        fclose(v->data);
        unlink(v->data_path);
    }
    free(v->dump_path);
    free(v->entries);
    llt_tensor_set_close(v->ref);
    for (int32_t i = 0; i < v->n_ref_nodes; i++) free(v->ref_nodes[i]);
    free(v->ref_seen);
    free(v->ref_nodes);
    free(v->host);
    free(v->rows);
    free(v->f32a);
    free(v->f32b);
    free(v);
}

bool llt_values_stats(const struct llt_values * v) { return v->stats; }
const char * llt_values_dump_path(const struct llt_values * v) { return v->dump_path; }
const char * llt_values_nan_report(const struct llt_values * v) { return v->nan_report[0] ? v->nan_report : NULL; }

int llt_values_unmatched(const struct llt_values * v, char * buf, size_t size) {
    size_t n = 0;
    int count = 0;
    buf[0] = '\0';
    for (int32_t i = 0; i < v->n_patterns; i++) {
        if (v->patterns[i].matched) continue;
        if (n < size) n += (size_t) snprintf(buf + n, size - n, "%s'%s'", count ? ", " : "", v->p.dump[i]);
        count++;
    }
    return count;
}

// A view llama.cpp named itself (ffn_moe_topk-N, the experts chosen): dumped like a computing
// node. Other no-ops are named after their source ("Kcur-0 (view)") or repeat its name.
static bool named_view(const char * name, enum ggml_op op) {
    return op == GGML_OP_VIEW && strstr(name, " (") == NULL;
}

// Flags of a node t, from what is fixed for the run: its name, op, weight and layer.
int32_t llt_values_node_flags(struct llt_values * v, const struct ggml_tensor * t, const char * name, int32_t layer, bool noop) {
    int32_t flags = 0;
    if (v->n_patterns > 0 && (!noop || named_view(name, t->op)) && (v->p.dump_layer < 0 || layer == v->p.dump_layer) &&
        pattern_match(v, name)) {
        flags |= NODE_DUMP;
    }
    if (v->p.checkpoints && (v->p.checkpoint_layer < 0 || layer == v->p.checkpoint_layer || layer < 0) &&
        checkpoint_of(t, name)[0]) {
        flags |= NODE_DUMP;
    }
    if (v->ref && strncmp(name, "kq_soft_max-", 12) == 0) v->ref_sum.run_has_probs = true;
    char ** hit = v->ref && !noop ? bsearch(&name, v->ref_nodes, (size_t) v->n_ref_nodes, sizeof(char *), cmp_str) : NULL;
    if (hit) {
        flags |= NODE_REF;
        v->ref_seen[hit - v->ref_nodes] = true;
    }
    return flags;
}

bool llt_values_step_wanted(const struct llt_values * v, int64_t step) {
    return (v->p.dump_step_first < 0 || step >= v->p.dump_step_first) &&
           (v->p.dump_step_last < 0 || step <= v->p.dump_step_last);
}

// ---- reading a tensor --------------------------------------------------------------------

// the bytes of t: in place for host buffers, else copied; NULL when out of memory
static const void * tensor_bytes(struct llt_values * v, const struct ggml_tensor * t) {
    const struct ggml_tensor * base = t->view_src ? t->view_src : t;
    if (!base->buffer || ggml_backend_buffer_is_host(base->buffer)) return t->data;
    size_t n = ggml_nbytes(t);
    if (n > v->host_size) {
        void * h = realloc(v->host, n);
        if (!h) return NULL;
        v->host = h;
        v->host_size = n;
    }
    ggml_backend_tensor_get(t, v->host, 0, n);
    return v->host;
}

// The bytes of t, contiguous: in place, or a strided view's rows gathered (a view whose rows
// are contiguous, as ffn_moe_topk-N is) into *out
static int packed_bytes(struct llt_values * v, const struct ggml_tensor * t, const void ** out) {
    const void * bytes = tensor_bytes(v, t);
    if (!bytes) return llt_set_error(LLT_ENOMEM, "out of memory");
    *out = bytes;
    if (ggml_is_contiguous(t)) return LLT_OK;
    if (t->nb[0] != ggml_type_size(t->type) || ggml_blck_size(t->type) != 1) {
        return llt_set_error(LLT_EINVAL, "cannot read '%s': not contiguous", t->name);
    }
    const size_t row = ggml_row_size(t->type, t->ne[0]), n = ggml_nbytes(t) > 0 ? row * (size_t) ggml_nrows(t) : 0;
    if (n > v->rows_size) {
        void * r = realloc(v->rows, n);
        if (!r) return llt_set_error(LLT_ENOMEM, "out of memory");
        v->rows = r;
        v->rows_size = n;
    }
    char * p = v->rows;
    for (int64_t i3 = 0; i3 < t->ne[3]; i3++) {
        for (int64_t i2 = 0; i2 < t->ne[2]; i2++) {
            for (int64_t i1 = 0; i1 < t->ne[1]; i1++, p += row) {
                memcpy(p, (const char *) bytes + i1 * t->nb[1] + i2 * t->nb[2] + i3 * t->nb[3], row);
            }
        }
    }
    *out = v->rows;
    return LLT_OK;
}

static bool reserve_f32(struct llt_values * v, size_t n) {
    if (n <= v->f32_cap) return true;
    float * a = realloc(v->f32a, n * sizeof(float));
    if (a) v->f32a = a;
    float * b = realloc(v->f32b, n * sizeof(float));
    if (b) v->f32b = b;
    if (!a || !b) return false;
    v->f32_cap = n;
    return true;
}

// a tensor as floats in v->f32a
static int tensor_f32(struct llt_values * v, const struct ggml_tensor * t) {
    const void * bytes = NULL;
    int rc = packed_bytes(v, t, &bytes);
    if (rc != LLT_OK) return rc;
    if (!reserve_f32(v, (size_t) ggml_nelements(t))) return llt_set_error(LLT_ENOMEM, "out of memory");
    return llt_to_float(bytes, t->type, ggml_nelements(t), v->f32a);
}

int llt_values_stats_of(struct llt_values * v, const struct ggml_tensor * t, struct llt_stats * st) {
    if (!ggml_is_contiguous(t)) return llt_set_error(LLT_EINVAL, "'%s' is not contiguous", t->name);
    const void * bytes = tensor_bytes(v, t);
    if (!bytes) return llt_set_error(LLT_ENOMEM, "out of memory");
    return llt_stats_compute(bytes, t->type, ggml_nelements(t), st);
}

// ---- dumps -------------------------------------------------------------------------------

static void dump_name(char * out, size_t size, const char * node, int32_t idx, int64_t step, int32_t occ, int32_t slot) {
    char suffix[40];
    int n = snprintf(suffix, sizeof(suffix), "#%lld", (long long) step);
    if (occ > 0) n += snprintf(suffix + n, sizeof(suffix) - (size_t) n, ".%d", occ);
    if (slot >= 0) snprintf(suffix + n, sizeof(suffix) - (size_t) n, ":s%d", slot);
    if (strlen(node) + strlen(suffix) < size) snprintf(out, size, "%.*s%s", (int) (size - 1 - strlen(suffix)), node, suffix);
    else snprintf(out, size, "n%d%.40s", idx, suffix);
}

static int append_entry(struct llt_values * v, const struct dump_entry * e, const void * data) {
    if (!llt_grow((void **) &v->entries, &v->cap_entries, v->n_entries + 1, sizeof(*e))) {
        return llt_set_error(LLT_ENOMEM, "out of memory");
    }
    struct dump_entry * d = &v->entries[v->n_entries];
    *d = *e;
    d->offset = v->data_size;
    d->order = v->order++;
    if (fwrite(data, 1, e->size, v->data) != e->size) {
        return llt_set_error(LLT_EIO, "cannot write dump data '%s': %s", v->data_path, strerror(errno));
    }
    v->data_size += e->size;
    v->n_entries++;
    return LLT_OK;
}

// a tensor in the requested dump type: native bytes, or converted through floats
static int dump_tensor(struct llt_values * v, const struct ggml_tensor * t, struct dump_entry * e) {
    e->n_dims = ggml_n_dims(t);
    for (int d = 0; d < 4; d++) e->ne[d] = t->ne[d];
    const int64_t n = ggml_nelements(t);
    if (v->p.dump_type == LLT_DUMP_NATIVE) {
        const void * bytes = NULL;
        int rc = packed_bytes(v, t, &bytes);
        if (rc != LLT_OK) return rc;
        e->type = t->type;
        e->size = (uint64_t) ggml_row_size(t->type, t->ne[0]) * (uint64_t) ggml_nrows(t);
        return append_entry(v, e, bytes);
    }
    int rc = tensor_f32(v, t);
    if (rc != LLT_OK) return rc;
    if (v->p.dump_type == LLT_DUMP_F32) {
        e->type = GGML_TYPE_F32;
        e->size = (uint64_t) n * sizeof(float);
        return append_entry(v, e, v->f32a);
    }
    ggml_fp16_t * h = (ggml_fp16_t *) v->f32b;
    ggml_fp32_to_fp16_row(v->f32a, h, n);
    e->type = GGML_TYPE_F16;
    e->size = (uint64_t) n * sizeof(ggml_fp16_t);
    return append_entry(v, e, h);
}

// The KV cache of positions [0, n_pos) as F32 [n_head_kv*head_dim, n_pos], gathered through the
// view attention reads: K as [head_dim, n_head_kv, cells], V (transposed when flash attention is
// off, as checkpoints run) as [cells, n_head_kv, head_dim]. The shape comes from the view, not
// from n_embd / n_head: Qwen3 and Gemma 3 heads are wider than that, and layers may differ.
static int dump_kv(struct llt_values * v, const struct ggml_tensor * t, bool is_v, int32_t n_pos, struct dump_entry * e) {
    // transposed, a head's elements lie a whole cache row apart, further than the next head
    const int cell_dim = is_v && t->nb[1] > t->nb[2] ? 0 : 2;
    const int64_t hd = cell_dim == 2 ? t->ne[0] : t->ne[2], nh = t->ne[1], ch = hd * nh;
    if (t->ne[cell_dim] < n_pos) {
        return llt_set_error(LLT_EINVAL, "cannot read KV cache view '%s': unexpected shape", t->name);
    }
    const void * bytes = tensor_bytes(v, t);
    if (!bytes || !reserve_f32(v, (size_t) (ch * n_pos) + (size_t) hd)) return llt_set_error(LLT_ENOMEM, "out of memory");
    const struct ggml_type_traits * tt = ggml_get_type_traits(t->type);
    float * out = v->f32a, * row = v->f32b;
    for (int64_t j = 0; j < n_pos; j++) {
        for (int64_t h = 0; h < nh; h++) {
            if (cell_dim == 2) {
                // one head of one cell is a contiguous row of head_dim elements
                const char * src = (const char *) bytes + h * t->nb[1] + j * t->nb[2];
                if (tt->to_float) tt->to_float(src, row, hd); else memcpy(row, src, (size_t) hd * sizeof(float));
                memcpy(out + j * ch + h * hd, row, (size_t) hd * sizeof(float));
            } else {
                for (int64_t d = 0; d < hd; d++) {
                    const char * src = (const char *) bytes + j * t->nb[0] + h * t->nb[1] + d * t->nb[2];
                    out[j * ch + h * hd + d] = t->type == GGML_TYPE_F16 ? ggml_fp16_to_fp32(*(const ggml_fp16_t *) src)
                                             : t->type == GGML_TYPE_F32 ? *(const float *) src : NAN;
                }
            }
        }
    }
    e->type = GGML_TYPE_F32;
    e->n_dims = 2;
    e->ne[0] = ch; e->ne[1] = n_pos; e->ne[2] = e->ne[3] = 1;
    e->size = (uint64_t) (ch * n_pos) * sizeof(float);
    return append_entry(v, e, out);
}

// attention probabilities [n_kv, n_tokens, n_head] cut to the cells in use, [n_pos, n_tokens,
// n_head], into v->f32a: as dumped, and as compared with a dump
static int probs_f32(struct llt_values * v, const struct ggml_tensor * t, int64_t n_pos) {
    int rc = tensor_f32(v, t);
    if (rc != LLT_OK) return rc;
    const int64_t rows = t->ne[1] * t->ne[2] * t->ne[3];
    for (int64_t r = 0; r < rows; r++) memmove(v->f32a + r * n_pos, v->f32a + r * t->ne[0], (size_t) n_pos * sizeof(float));
    return LLT_OK;
}

static int dump_probs(struct llt_values * v, const struct ggml_tensor * t, int32_t n_pos, struct dump_entry * e) {
    int rc = probs_f32(v, t, n_pos);
    if (rc != LLT_OK) return rc;
    const int64_t rows = t->ne[1] * t->ne[2] * t->ne[3];
    e->type = GGML_TYPE_F32;
    e->n_dims = 3;
    e->ne[0] = n_pos; e->ne[1] = t->ne[1]; e->ne[2] = t->ne[2]; e->ne[3] = t->ne[3];
    e->size = (uint64_t) (n_pos * rows) * sizeof(float);
    return append_entry(v, e, v->f32a);
}

int llt_values_dump(struct llt_values * v, const struct ggml_tensor * t, const struct node_rec * r, int32_t idx,
                    int64_t step, int32_t pos0, int32_t n_tokens, const char * op_name) {
    struct dump_entry e = {
        .layer = r->layer, .idx = idx, .src_slot = -1, .step = step, .pos0 = pos0, .n_tokens = n_tokens,
    };
    snprintf(e.node, sizeof(e.node), "%s", r->name);
    snprintf(e.op, sizeof(e.op), "%s", op_name);
    const char * cp = v->p.checkpoints ? checkpoint_of(t, r->name) : "";
    snprintf(e.checkpoint, sizeof(e.checkpoint), "%s", cp);
    const int32_t n_pos = pos0 + n_tokens;
    if (strcmp(cp, "k_cache") == 0 || strcmp(cp, "v_cache") == 0) {
        // named after the cache, not the view: cache_k_l0#5
        char cache[GGML_MAX_NAME];
        snprintf(cache, sizeof(cache), "%.*s", (int) strcspn(r->name, " "), r->name);
        dump_name(e.name, sizeof(e.name), cache, idx, step, 0, -1);
        return dump_kv(v, t, cp[0] == 'v', n_pos, &e);
    }
    dump_name(e.name, sizeof(e.name), r->name, idx, step, r->occ, -1);
    int rc = strcmp(cp, "attn_probs") == 0 && t->ne[0] >= n_pos ? dump_probs(v, t, n_pos, &e) : dump_tensor(v, t, &e);
    for (int s = 0; rc == LLT_OK && v->p.dump_sources && s < 3 && s < r->n_src; s++) {
        const struct ggml_tensor * src = t->src[s];
        // weights are in the model file; permuted views of the cache cannot be dumped as they are
        if (!src || !ggml_is_contiguous(src) || r->src_kind[s] == SRC_WEIGHT) continue;
        struct dump_entry es = e;
        es.src_slot = s;
        es.checkpoint[0] = '\0';
        snprintf(es.node, sizeof(es.node), "%s", src->name);
        dump_name(es.name, sizeof(es.name), r->name, idx, step, r->occ, s);
        rc = dump_tensor(v, src, &es);
    }
    return rc;
}

// ---- live comparison ---------------------------------------------------------------------

int llt_values_compare(struct llt_values * v, const struct ggml_tensor * t, const struct node_rec * r, int32_t idx,
                       int64_t step, struct diff_rows * out, bool * found) {
    *found = false;
    dump_name(out->name, sizeof(out->name), r->name, idx, step, r->occ, -1);
    int i = llt_tensor_set_find(v->ref, out->name);
    if (i < 0) return LLT_OK;
    const struct llt_tensor_info * ti = llt_tensor_set_get(v->ref, i);
    *found = true;
    out->step = step;
    out->idx = idx;
    // attention probabilities were dumped cut to the positions in use: compare the same cut
    const bool probs = strcmp(checkpoint_of(t, r->name), "attn_probs") == 0 && ti->ne[0] > 0 &&
                       ti->ne[0] < t->ne[0] && ti->ne[1] == t->ne[1] && ti->ne[2] == t->ne[2] && ti->ne[3] == t->ne[3];
    out->shape_ok = probs || ti->n_elements == ggml_nelements(t);
    for (int d = 0; !probs && out->shape_ok && d < 4; d++) out->shape_ok = ti->ne[d] == t->ne[d];
    struct llt_ref_summary * s = &v->ref_sum;
    if (!out->shape_ok || !ggml_is_contiguous(t)) {
        memset(&out->d, 0, sizeof(out->d));
        if (out->shape_ok) {
            s->n_not_contiguous++;
        } else {
            // activations are [features, tokens]: only the token count differs when the prompts do
            const bool tokens_only = ti->ne[0] == t->ne[0] && ti->ne[1] != t->ne[1] && ti->ne[2] == t->ne[2] && ti->ne[3] == t->ne[3];
            s->n_token_count_differs += tokens_only;
            if (s->n_shape_differs++ == 0) {
                snprintf(s->shape_example, sizeof(s->shape_example), "%.60s: [%lld, %lld, %lld, %lld] here, [%lld, %lld, %lld, %lld] in the reference",
                         out->name, (long long) t->ne[0], (long long) t->ne[1], (long long) t->ne[2], (long long) t->ne[3],
                         (long long) ti->ne[0], (long long) ti->ne[1], (long long) ti->ne[2], (long long) ti->ne[3]);
            }
        }
        return LLT_OK;
    }
    int rc = probs ? probs_f32(v, t, ti->ne[0]) : tensor_f32(v, t);
    if (rc == LLT_OK) rc = llt_tensor_set_read_f32(v->ref, i, v->f32b);
    if (rc == LLT_OK) rc = llt_diff_compute(v->f32b, v->f32a, ti->n_elements, v->p.tol_abs, v->p.tol_rel, &out->d);
    if (rc == LLT_OK) {
        s->n_compared++;
        if (out->d.max_abs > s->max_abs) s->max_abs = out->d.max_abs;
        if (out->d.n_exceed == 0) {
            s->n_within++;
        } else if (!s->first_beyond[0]) {
            snprintf(s->first_beyond, sizeof(s->first_beyond), "%s", out->name);
            s->first_beyond_max_abs = out->d.max_abs;
        }
    }
    return rc;
}

bool llt_values_ref_summary(const struct llt_values * v, struct llt_ref_summary * out) {
    if (!v->ref) return false;
    *out = v->ref_sum;
    out->n_ref_unseen = out->n_ref_cache = 0;
    for (int32_t i = 0; i < v->n_ref_nodes; i++) {
        const char * n = v->ref_nodes[i];
        if (strncmp(n, "cache_k_l", 9) == 0 || strncmp(n, "cache_v_l", 9) == 0) out->n_ref_cache++;
        else out->n_ref_unseen += !v->ref_seen[i];
    }
    return true;
}

// ---- NaN / Inf ---------------------------------------------------------------------------

static int stats_line(char * out, size_t size, const char * what, const struct llt_stats * s) {
    return snprintf(out, size, "%s: min %g max %g mean %g nan %lld +inf %lld -inf %lld", what, s->min, s->max, s->mean,
                    (long long) s->n_nan, (long long) s->n_pinf, (long long) s->n_ninf);
}

// records where the first NaN or Inf appeared; the run stops there
void llt_values_nan(struct llt_values * v, const struct ggml_tensor * t, const struct node_rec * r, const char * op_name,
                    int64_t step, const struct llt_stats * st) {
    if (v->nan_report[0]) return;
    size_t n = (size_t) snprintf(v->nan_report, sizeof(v->nan_report), "%s %s (layer %d, step %lld) produced ",
                                 op_name, r->name, r->layer, (long long) step);
    n += (size_t) stats_line(v->nan_report + n, sizeof(v->nan_report) - n, "output", st);
    for (int s = 0; s < GGML_MAX_SRC && t->src[s] && n < sizeof(v->nan_report); s++) {
        struct llt_stats ss;
        char what[96];
        snprintf(what, sizeof(what), "; src%d %s", s, t->src[s]->name);
        if (llt_values_stats_of(v, t->src[s], &ss) == LLT_OK) {
            n += (size_t) stats_line(v->nan_report + n, sizeof(v->nan_report) - n, what, &ss);
        } else {
            n += (size_t) snprintf(v->nan_report + n, sizeof(v->nan_report) - n, "%s: (not contiguous)", what);
        }
    }
}

// ---- the dump file -----------------------------------------------------------------------

// The per-tensor facts, one array key per field with an element per tensor in the file's
// order (dump version 2). Version 1 wrote a key per tensor and field: ggml's GGUF reader checks
// every key against all before it, so a dump of n tensors took n^2 to open.
enum { F_LAYER, F_STEP, F_POS, F_N_TOKENS, F_ORDER, F_IDX, F_SRC, N_INT_FIELDS };
static const char * const int_fields[N_INT_FIELDS] = { "layer", "step", "pos", "n_tokens", "order", "idx", "src" };

static int set_tensor_facts(struct gguf_context * g, const struct llt_values * v, const bool * keep, int64_t n) {
    if (n == 0) return LLT_OK;
    int64_t * ints = malloc((size_t) n * N_INT_FIELDS * sizeof(int64_t));
    const char ** strs = malloc((size_t) n * 3 * sizeof(char *));
    if (!ints || !strs) {
        free(ints);
        free(strs);
        return llt_set_error(LLT_ENOMEM, "out of memory");
    }
    int64_t k = 0;
    for (int32_t i = 0; i < v->n_entries; i++) {
        if (!keep[i]) continue;
        const struct dump_entry * e = &v->entries[i];
        const int64_t f[N_INT_FIELDS] = { e->layer, e->step, e->pos0, e->n_tokens, e->order, e->idx, e->src_slot };
        for (int c = 0; c < N_INT_FIELDS; c++) ints[c * n + k] = f[c];
        strs[k] = e->node;
        strs[n + k] = e->op;
        strs[2 * n + k] = e->checkpoint;
        k++;
    }
    char key[64];
    for (int c = 0; c < N_INT_FIELDS; c++) {
        snprintf(key, sizeof(key), LLT_DUMP_KEY_FIELD, int_fields[c]);
        gguf_set_arr_data(g, key, GGUF_TYPE_INT64, ints + c * n, (size_t) n);
    }
    static const char * const str_fields[3] = { "node", "op", "checkpoint" };
    for (int c = 0; c < 3; c++) {
        snprintf(key, sizeof(key), LLT_DUMP_KEY_FIELD, str_fields[c]);
        gguf_set_arr_str(g, key, strs + c * n, (size_t) n);
    }
    free(ints);
    free(strs);
    return LLT_OK;
}

static int copy_data(struct llt_values * v, struct llt_gguf_writer * w, const struct dump_entry * e) {
    char buf[65536];
    if (fseeko(v->data, (off_t) e->offset, SEEK_SET) != 0) return llt_set_error(LLT_EIO, "cannot read dump data");
    for (uint64_t left = e->size; left > 0;) {
        size_t n = left < sizeof(buf) ? (size_t) left : sizeof(buf);
        if (fread(buf, 1, n, v->data) != n || fwrite(buf, 1, n, w->f) != n) return llt_set_error(LLT_EIO, "cannot copy dump data");
        left -= n;
    }
    llt_gguf_writer_pad(w);
    return LLT_OK;
}

struct name_ref { const char * name; int32_t i; };

static int cmp_name_ref(const void * pa, const void * pb) {
    const struct name_ref * a = pa, * b = pb;
    const int c = strcmp(a->name, b->name);
    return c ? c : (a->i > b->i) - (a->i < b->i);
}

// keep[i]: entry i is the first of its name (a name made twice is a truncated fallback)
static bool first_of_names(const struct llt_values * v, bool * keep) {
    struct name_ref * refs = malloc(((size_t) v->n_entries + 1) * sizeof(*refs));
    if (!refs) return false;
    for (int32_t i = 0; i < v->n_entries; i++) refs[i] = (struct name_ref) { v->entries[i].name, i };
    qsort(refs, (size_t) v->n_entries, sizeof(*refs), cmp_name_ref);
    for (int32_t k = 0; k < v->n_entries; k++) keep[refs[k].i] = k == 0 || strcmp(refs[k].name, refs[k - 1].name) != 0;
    free(refs);
    return true;
}

// The dump is streamed by a GGUF writer of its own: gguf_context's setters search every key
// already set, which made finishing a dump of n tensors cost n^2.
int llt_values_finish(struct llt_values * v, const struct llt_dump_meta * meta) {
    if (!v->data) return LLT_OK;
    struct gguf_context * g = gguf_init_empty(); // the dump-wide keys only: a few dozen
    bool * keep = calloc((size_t) v->n_entries + 1, sizeof(bool));
    struct llt_outfile * of = NULL;
    int rc = g && keep && first_of_names(v, keep) ? LLT_OK : llt_set_error(LLT_ENOMEM, "out of memory");
    if (rc != LLT_OK) goto done;

    if (meta->model) llt_registry_copy_meta(meta->model, g); // general.architecture, llama.* ...
    gguf_set_val_str(g, "general.type", "lltrace-dump");
    gguf_set_val_u32(g, "lltrace.dump.version", LLT_DUMP_VERSION);
    gguf_set_val_str(g, "lltrace.version", llt_version());
    gguf_set_val_str(g, "lltrace.llama_tag", llt_llama_tag());
    gguf_set_val_str(g, "lltrace.model", meta->model_path ? meta->model_path : "");
    gguf_set_val_str(g, "lltrace.prompt", meta->prompt ? meta->prompt : "");
    gguf_set_val_str(g, "lltrace.filters", meta->filters ? meta->filters : "");
    gguf_set_val_str(g, LLT_DUMP_KEY_PARAMS, meta->params_json ? meta->params_json : "{}");
    gguf_set_val_i64(g, "lltrace.run_id", meta->run_id);
    gguf_set_arr_data(g, "lltrace.tokens", GGUF_TYPE_INT32, meta->tokens, (size_t) meta->n_tokens);

    int64_t n_tensors = 0;
    for (int32_t i = 0; i < v->n_entries; i++) n_tensors += keep[i];
    if ((rc = set_tensor_facts(g, v, keep, n_tensors)) != LLT_OK) goto done;
    if ((rc = llt_outfile_open(v->dump_path, &of)) != LLT_OK) goto done;
    struct llt_gguf_writer w;
    if ((rc = llt_gguf_writer_begin(&w, llt_outfile_file(of), g, 0, n_tensors)) != LLT_OK) goto done;
    for (int32_t i = 0; i < v->n_entries; i++) {
        const struct dump_entry * e = &v->entries[i];
        if (keep[i]) llt_gguf_writer_tensor(&w, e->name, e->type, e->n_dims > 0 ? e->n_dims : 1, e->ne, e->size);
    }
    llt_gguf_writer_pad(&w);
    for (int32_t i = 0; rc == LLT_OK && i < v->n_entries; i++) if (keep[i]) rc = copy_data(v, &w, &v->entries[i]);
    if (rc == LLT_OK) rc = llt_gguf_writer_end(&w);
    if (rc == LLT_OK) {
        rc = llt_outfile_commit(of);
        of = NULL;
    }
done:
    llt_outfile_abort(of);
    free(keep);
    gguf_free(g);
    return rc;
}

int32_t llt_values_n_dumped(const struct llt_values * v) { return v->n_entries; }
