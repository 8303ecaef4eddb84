// Causal tracing (lltrace/causal.h): the clean and corrupted prompts run with an eval callback
// that asks for the patched node of every layer (so every run splits its graph alike), keeps
// the clean run's values (written as a dump GGUF, names <node>#0 as lltrace's dumps), and in
// the corrupted runs patches one layer's position from them through an LLT_IV_PATCH
// intervention (lltrace/intervene.h). Given a store, the two plain runs are traced (level graph,
// the tracer chaining this callback) and the result is stored with them.
#define _GNU_SOURCE // mkstemps
#include "core/internal.h"
#include "trace/causal.h"

#include "gguf.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct llt_causal_params llt_causal_default_params(void) {
    return (struct llt_causal_params) { .node = "l_out" };
}

void llt_causal_result_free(struct llt_causal_result * r) {
    if (!r) return;
    for (int32_t i = 0; r->pieces && i < r->n_pos; i++) free(r->pieces[i]);
    for (int32_t i = 0; r->clean_pieces && i < r->n_pos; i++) free(r->clean_pieces[i]);
    free(r->pieces);
    free(r->clean_pieces);
    free(r->cells);
    memset(r, 0, sizeof(*r));
}

// ---- the eval callback -------------------------------------------------------------------

struct kept { char name[GGML_MAX_NAME]; int64_t ne[4]; float * data; };

struct hook {
    char                prefix[64];   // "<node>-"
    int32_t             n_pos, n_head, n_head_kv;
    bool                keep;         // the clean run: keep the nodes' values
    struct kept *       kept;
    int32_t             n_kept, cap_kept;
    struct llt_iv_set * set;          // the corrupted runs' patch, or NULL
    int64_t             n_changed;
    char                error[512];
    char                seen[256][GGML_MAX_NAME]; // the nodes met in this run: a name's first node only
    int32_t             n_seen;
};

// the patched node of some layer: "<node>-N" exactly, a node that computes (not a view of one)
static bool wanted(const struct hook * h, const struct ggml_tensor * t) {
    const size_t n = strlen(h->prefix);
    const char * name = t->name;
    return strncmp(name, h->prefix, n) == 0 && name[n] && strspn(name + n, "0123456789") == strlen(name + n) &&
           t->op != GGML_OP_VIEW && t->op != GGML_OP_RESHAPE && t->op != GGML_OP_PERMUTE && t->op != GGML_OP_TRANSPOSE;
}

// Qcur-N is a projection, then its RoPE: the first node of a name is the one kept and patched
static bool first_of_name(struct hook * h, const char * name) {
    for (int32_t i = 0; i < h->n_seen; i++) if (strcmp(h->seen[i], name) == 0) return false;
    if (h->n_seen < 256) snprintf(h->seen[h->n_seen++], GGML_MAX_NAME, "%s", name);
    return true;
}

static bool keep_node(struct hook * h, const struct ggml_tensor * t) {
    if (t->type != GGML_TYPE_F32 || !ggml_is_contiguous(t)) {
        snprintf(h->error, sizeof(h->error), "'%s' is %s and not contiguous f32: causal patches f32 nodes", t->name, ggml_type_name(t->type));
        return false;
    }
    if (!llt_grow((void **) &h->kept, &h->cap_kept, h->n_kept + 1, sizeof(struct kept))) return false;
    struct kept * k = &h->kept[h->n_kept];
    if (!(k->data = malloc(ggml_nbytes(t)))) return false;
    snprintf(k->name, sizeof(k->name), "%s", t->name);
    memcpy(k->ne, t->ne, sizeof(k->ne));
    ggml_backend_tensor_get(t, k->data, 0, ggml_nbytes(t));
    h->n_kept++;
    return true;
}

static bool eval_cb(struct ggml_tensor * t, bool ask, void * user_data) {
    struct hook * h = user_data;
    if (ask) return wanted(h, t);
    if (h->error[0]) return false;
    if (!first_of_name(h, t->name)) return true;
    if (h->keep && !keep_node(h, t)) {
        if (!h->error[0]) snprintf(h->error, sizeof(h->error), "out of memory");
        return false;
    }
    const struct llt_iv_where w = { .step = 0, .n_tokens = h->n_pos, .pos0 = 0, .n_out = 1,
                                    .n_head = h->n_head, .n_head_kv = h->n_head_kv };
    for (int i = 0; i < llt_iv_set_count(h->set); i++) {
        if (!llt_iv_set_matches(h->set, i, t->name, llt_layer_from_name(t->name), 0)) continue;
        const int64_t n = llt_iv_set_apply(h->set, i, t, &w);
        if (n < 0) {
            snprintf(h->error, sizeof(h->error), "%s", llt_last_error());
            return false;
        }
        h->n_changed += n;
    }
    return true;
}

// ---- runs --------------------------------------------------------------------------------

static llama_token top1(const float * logits, int32_t n) {
    llama_token best = 0;
    for (int32_t i = 1; i < n; i++) if (logits[i] > logits[best]) best = i;
    return best;
}

struct runner {
    const char *         model_path;
    const char *         node;   // the node's name without its layer (JSON-safe: the CLI checks it)
    struct llama_model * model;
    int32_t              n_threads, n_vocab;
    struct hook          hook;
};

// one run of tokens; the last row's logits into logits (n_vocab). Traced by tr (may be NULL),
// its top-1 token recorded as the token it generates.
static int run_prompt(struct runner * rn, const llama_token * tokens, int32_t n, float * logits, struct llt_tracer * tr) {
    struct llama_context_params cp = llama_context_default_params();
    cp.n_ctx = (uint32_t) ((n + 255) / 256 * 256);
    cp.n_batch = cp.n_ubatch = (uint32_t) n;
    cp.n_threads = cp.n_threads_batch = rn->n_threads;
    cp.no_perf = true;
    cp.cb_eval = eval_cb;
    cp.cb_eval_user_data = &rn->hook;
    rn->hook.n_changed = 0;
    rn->hook.n_seen = 0;
    rn->hook.error[0] = '\0';
    if (tr) llt_tracer_attach(tr, &cp);
    llt_llama_error_clear();
    struct llama_context * ctx = llama_init_from_model(rn->model, cp);
    if (!ctx) return llt_set_error(LLT_ELLAMA, "llama.cpp could not create a context%s%s", *llt_llama_error() ? ": " : "", llt_llama_error());
    int rc = tr ? llt_tracer_begin(tr, rn->model, ctx) : LLT_OK;
    llama_token * copy = malloc((size_t) n * sizeof(llama_token)); // llama_batch_get_one takes them mutable
    if (rc == LLT_OK && !copy) rc = llt_set_error(LLT_ENOMEM, "out of memory");
    if (rc == LLT_OK) {
        memcpy(copy, tokens, (size_t) n * sizeof(llama_token));
        const struct llama_batch b = llama_batch_get_one(copy, n);
        const int32_t drc = tr ? llt_decode(tr, ctx, b) : llama_decode(ctx, b);
        if (rn->hook.error[0]) rc = llt_set_error(LLT_EINVAL, "%s", rn->hook.error);
        else if (drc != 0) rc = llt_set_error(LLT_ELLAMA, "llama_decode failed (%d)", drc);
        else memcpy(logits, llama_get_logits_ith(ctx, -1), (size_t) rn->n_vocab * sizeof(float));
    }
    if (tr && llt_tracer_run_id(tr) > 0) {
        char saved[512], piece[256] = "";
        snprintf(saved, sizeof(saved), "%s", llt_last_error());
        if (rc == LLT_OK) {
            const llama_token tok = top1(logits, rn->n_vocab);
            llt_tracer_sampled(tr, tok);
            const int np = llama_token_to_piece(llama_model_get_vocab(rn->model), tok, piece, sizeof(piece) - 1, 0, false);
            piece[np > 0 ? np : 0] = '\0';
        }
        const int erc = llt_tracer_end(tr, rc == LLT_OK ? LLT_RUN_OK : LLT_RUN_ERROR, piece);
        if (rc == LLT_OK && erc == LLT_OK && llt_tracer_error(tr)) rc = llt_set_error(LLT_EIO, "tracing failed: %s", llt_tracer_error(tr));
        if (rc == LLT_OK) rc = erc; else llt_set_error(rc, "%s", saved);
    }
    free(copy);
    llama_free(ctx);
    return rc;
}

// a plain run traced into st (level graph), named "causal: <role>"; its run id into *run_id
static int traced_run(struct runner * rn, struct llt_store * st, const char * prompt, const char * role,
                      const llama_token * tokens, int32_t n, float * logits, int64_t * run_id) {
    if (!st) return run_prompt(rn, tokens, n, logits, NULL);
    char name[64], pj[256];
    snprintf(name, sizeof(name), "causal: %s", role);
    const bool plain = strspn(rn->node, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_0123456789") == strlen(rn->node);
    snprintf(pj, sizeof(pj), "{\"causal\":\"%s\",\"node\":\"%s\",\"n_threads\":%d}", role, plain ? rn->node : "?", rn->n_threads);
    struct llt_tracer_params tp = llt_tracer_default_params();
    tp.level = LLT_LEVEL_GRAPH;
    tp.model_path = rn->model_path;
    tp.prompt = prompt;
    tp.params_json = pj;
    tp.name = name;
    struct llt_tracer * tr = NULL;
    int rc = llt_tracer_init(st, tp, &tr);
    if (rc == LLT_OK) rc = run_prompt(rn, tokens, n, logits, tr);
    *run_id = tr ? llt_tracer_run_id(tr) : 0;
    llt_tracer_free(tr);
    return rc;
}

static double prob(const float * logits, int32_t n, llama_token tok) {
    double mx = logits[0], sum = 0;
    for (int32_t i = 1; i < n; i++) if (logits[i] > mx) mx = logits[i];
    for (int32_t i = 0; i < n; i++) sum += exp((double) logits[i] - mx);
    return exp((double) logits[tok] - mx) / sum;
}

// the clean run's kept nodes as a dump GGUF at path
static int write_kept(const struct hook * h, const char * path) {
    size_t bytes = 0;
    for (int32_t i = 0; i < h->n_kept; i++) bytes += (size_t) (h->kept[i].ne[0] * h->kept[i].ne[1] * h->kept[i].ne[2] * h->kept[i].ne[3]) * sizeof(float);
    struct ggml_init_params ip = { .mem_size = bytes + (size_t) (h->n_kept + 1) * (ggml_tensor_overhead() + 64), .no_alloc = false };
    struct ggml_context * gctx = ggml_init(ip);
    struct gguf_context * g = gctx ? gguf_init_empty() : NULL;
    int rc = g ? LLT_OK : llt_set_error(LLT_ENOMEM, "out of memory");
    for (int32_t i = 0; rc == LLT_OK && i < h->n_kept; i++) {
        const struct kept * k = &h->kept[i];
        struct ggml_tensor * t = ggml_new_tensor_4d(gctx, GGML_TYPE_F32, k->ne[0], k->ne[1], k->ne[2], k->ne[3]);
        memcpy(t->data, k->data, ggml_nbytes(t));
        char name[GGML_MAX_NAME + 4];
        snprintf(name, sizeof(name), "%.*s#0", GGML_MAX_NAME - 3, k->name);
        ggml_set_name(t, name);
        gguf_add_tensor(g, t);
    }
    if (rc == LLT_OK && !gguf_write_to_file(g, path, false)) rc = llt_set_error(LLT_EIO, "cannot write '%s'", path);
    if (g) gguf_free(g);
    if (gctx) ggml_free(gctx);
    return rc;
}

static char * piece_of(const struct llama_vocab * vocab, llama_token tok) {
    char buf[256];
    const int n = llama_token_to_piece(vocab, tok, buf, sizeof(buf) - 1, 0, true);
    buf[n > 0 ? n : 0] = '\0';
    return strdup(buf);
}

// one corrupted run with node name patched (at pos, or every row with pos LLT_IV_ANY) from the dump
static int patched_run(struct runner * rn, const char * dump, const char * name, int32_t pos, const llama_token * tokens,
                       int32_t n, float * logits, int64_t * n_changed) {
    struct llt_intervention iv = llt_iv_default(LLT_IV_PATCH, name);
    iv.pos_first = iv.pos_last = pos;
    snprintf(iv.file, sizeof(iv.file), "%s", dump);
    int rc = llt_iv_set_init(&rn->hook.set);
    if (rc == LLT_OK) rc = llt_iv_set_add(rn->hook.set, &iv);
    if (rc == LLT_OK) rc = run_prompt(rn, tokens, n, logits, NULL);
    *n_changed = rn->hook.n_changed;
    llt_iv_set_free(rn->hook.set);
    rn->hook.set = NULL;
    return rc;
}

int llt_causal(const struct llt_causal_params * p, struct llt_causal_result * res) {
    memset(res, 0, sizeof(*res));
    if (!p->model_path || !p->clean || !p->corrupt) return llt_set_error(LLT_EINVAL, "causal needs a model, a clean and a corrupted prompt");
    const char * node = p->node && *p->node ? p->node : "l_out";
    struct llt_registry * reg = NULL;
    int rc = llt_registry_load(p->model_path, &reg);
    llt_registry_free(reg);
    if (rc != LLT_OK) return rc;

    struct runner rn = { .model_path = p->model_path, .node = node,
                         .n_threads = p->n_threads > 0 ? p->n_threads : (int32_t) sysconf(_SC_NPROCESSORS_ONLN) };
    llama_token * clean = NULL, * corrupt = NULL;
    int32_t n_clean = 0, n_corrupt = 0;
    float * logits_clean = NULL, * logits_corrupt = NULL, * logits = NULL;
    struct llt_tokenizer * tk = NULL;
    char dump[] = "/tmp/lltrace-causal-XXXXXX.gguf";
    bool made_dump = false;
    snprintf(rn.hook.prefix, sizeof(rn.hook.prefix), "%s-", node);

    llama_backend_init();
    llt_llama_error_clear();
    rn.model = llama_model_load_from_file(p->model_path, llama_model_default_params());
    if (!rn.model) {
        rc = llt_set_error(LLT_ELLAMA, "llama.cpp could not load model '%s'%s%s", p->model_path, *llt_llama_error() ? ": " : "", llt_llama_error());
        goto done;
    }
    const struct llama_vocab * vocab = llama_model_get_vocab(rn.model);
    rn.n_vocab = llama_vocab_n_tokens(vocab);
    rn.hook.n_head = llama_model_n_head(rn.model);
    rn.hook.n_head_kv = llama_model_n_head_kv(rn.model);
    if ((rc = llt_tokenizer_init(rn.model, &tk)) != LLT_OK) goto done;
    if ((rc = llt_tokenize(tk, p->clean, true, &clean, &n_clean)) != LLT_OK) goto done;
    if ((rc = llt_tokenize(tk, p->corrupt, true, &corrupt, &n_corrupt)) != LLT_OK) goto done;
    if (n_clean != n_corrupt || n_clean == 0) {
        rc = llt_set_error(LLT_EINVAL, "the clean and corrupted prompts must have the same number of tokens (%d and %d)", n_clean, n_corrupt);
        goto done;
    }
    snprintf(res->node, sizeof(res->node), "%s", node);
    res->last_checked = strcmp(node, "l_out") == 0;
    res->n_pos = rn.hook.n_pos = n_clean;
    res->n_layer = llama_model_n_layer(rn.model);
    logits_clean = malloc((size_t) rn.n_vocab * sizeof(float));
    logits_corrupt = malloc((size_t) rn.n_vocab * sizeof(float));
    logits = malloc((size_t) rn.n_vocab * sizeof(float));
    res->cells = calloc((size_t) res->n_layer * (size_t) res->n_pos, sizeof(*res->cells));
    res->pieces = calloc((size_t) res->n_pos, sizeof(char *));
    res->clean_pieces = calloc((size_t) res->n_pos, sizeof(char *));
    if (!logits_clean || !logits_corrupt || !logits || !res->cells || !res->pieces || !res->clean_pieces) {
        rc = llt_set_error(LLT_ENOMEM, "out of memory");
        goto done;
    }
    for (int32_t i = 0; i < res->n_pos; i++) {
        res->pieces[i] = piece_of(vocab, corrupt[i]);
        res->clean_pieces[i] = piece_of(vocab, clean[i]);
    }

    // the clean run, keeping every layer's node
    rn.hook.keep = true;
    rc = traced_run(&rn, p->st, p->clean, "clean", clean, n_clean, logits_clean, &res->clean_run);
    rn.hook.keep = false;
    if (rc != LLT_OK) goto done;
    if (rn.hook.n_kept == 0) {
        rc = llt_set_error(LLT_ENOTFOUND, "the model has no node '%s-N' (try l_out, attn_out, ffn_out)", node);
        goto done;
    }
    const int fd = mkstemps(dump, 5);
    if (fd < 0) { rc = llt_set_error(LLT_EIO, "cannot make a temporary file: %s", strerror(errno)); goto done; }
    close(fd);
    made_dump = true;
    if ((rc = write_kept(&rn.hook, dump)) != LLT_OK) goto done;
    if ((rc = traced_run(&rn, p->st, p->corrupt, "corrupt", corrupt, n_corrupt, logits_corrupt, &res->corrupt_run)) != LLT_OK) goto done;

    res->answer = top1(logits_clean, rn.n_vocab);
    res->corrupt_top = top1(logits_corrupt, rn.n_vocab);
    char * a = piece_of(vocab, res->answer), * b = piece_of(vocab, res->corrupt_top);
    snprintf(res->answer_piece, sizeof(res->answer_piece), "%s", a ? a : "");
    snprintf(res->corrupt_piece, sizeof(res->corrupt_piece), "%s", b ? b : "");
    free(a);
    free(b);
    res->clean_p = prob(logits_clean, rn.n_vocab, res->answer);
    res->corrupt_p = prob(logits_corrupt, rn.n_vocab, res->answer);
    res->clean_ld = logits_clean[res->answer] - logits_clean[res->corrupt_top];
    res->corrupt_ld = logits_corrupt[res->answer] - logits_corrupt[res->corrupt_top];

    // the invariants: nothing patched (an empty set), the last layer patched whole
    rn.hook.set = NULL;
    if ((rc = llt_iv_set_init(&rn.hook.set)) == LLT_OK) rc = run_prompt(&rn, corrupt, n_corrupt, logits, NULL);
    llt_iv_set_free(rn.hook.set);
    rn.hook.set = NULL;
    if (rc != LLT_OK) goto done;
    res->none_is_corrupt = memcmp(logits, logits_corrupt, (size_t) rn.n_vocab * sizeof(float)) == 0;
    char name[96];
    int64_t n_changed = 0;
    snprintf(name, sizeof(name), "%s-%d", node, res->n_layer - 1);
    if ((rc = patched_run(&rn, dump, name, LLT_IV_ANY, corrupt, n_corrupt, logits, &n_changed)) != LLT_OK) goto done;
    res->last_is_clean = memcmp(logits, logits_clean, (size_t) rn.n_vocab * sizeof(float)) == 0;

    for (int32_t l = 0; l < res->n_layer; l++) {
        snprintf(name, sizeof(name), "%s-%d", node, l);
        for (int32_t pos = 0; pos < res->n_pos; pos++) {
            if ((rc = patched_run(&rn, dump, name, pos, corrupt, n_corrupt, logits, &n_changed)) != LLT_OK) goto done;
            res->cells[(size_t) l * (size_t) res->n_pos + (size_t) pos] = (struct llt_causal_cell) {
                .layer = l, .pos = pos, .p = prob(logits, rn.n_vocab, res->answer),
                .logit_diff = logits[res->answer] - logits[res->corrupt_top], .n_changed = n_changed,
            };
        }
    }
    if (p->st) rc = llt_trace_causal_write(p->st, res);
done:
    if (made_dump) unlink(dump);
    for (int32_t i = 0; i < rn.hook.n_kept; i++) free(rn.hook.kept[i].data);
    free(rn.hook.kept);
    llt_tokenizer_free(tk);
    free(clean);
    free(corrupt);
    free(logits_clean);
    free(logits_corrupt);
    free(logits);
    if (rn.model) llama_model_free(rn.model);
    if (rc != LLT_OK) {
        char why[512];
        snprintf(why, sizeof(why), "%s", llt_last_error());
        llt_causal_result_free(res);
        llt_set_error(rc, "%s", why);
    }
    return rc;
}
