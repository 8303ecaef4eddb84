// Generate: a plain llama.cpp generation loop (tokenize, prompt decode, sample, decode),
// traced through an llt_tracer when a store is given. `lltrace run`, the tests and the
// benchmarks all use it, so a traced and an untraced run differ only by the tracer.
#include "core/internal.h"

#include "ggml-backend.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#define LLT_MAX_DEVICES 64 // devices one --device list names, at most

struct llt_gen_params llt_gen_default_params(void) {
    return (struct llt_gen_params) {
        .prompt = "Hello, my name is",
        .n_predict = 32,
        .n_batch = 512,
        .flash_attn = LLAMA_FLASH_ATTN_TYPE_AUTO,
        .type_k = GGML_TYPE_F16,
        .type_v = GGML_TYPE_F16,
        .seed = 42,
        .temp = 0.0f,
        .top_k = 40,
        .top_p = 0.95f,
        .level = LLT_LEVEL_GRAPH,
        .values = llt_values_default_params(),
        .n_gpu_layers = -1,
        .split_mode = -1,
    };
}

void llt_gen_result_free(struct llt_gen_result * r) {
    if (!r) return;
    free(r->parity);
    free(r->tokens);
    free(r->text);
    memset(r, 0, sizeof(*r));
}

// ---- pieces ------------------------------------------------------------------------------

static bool text_append(struct llt_gen_result * r, size_t * cap, const char * piece) {
    size_t len = r->text ? strlen(r->text) : 0, add = strlen(piece);
    if (len + add + 1 > *cap) {
        size_t ncap = (*cap ? *cap * 2 : 256) + add;
        char * nt = realloc(r->text, ncap);
        if (!nt) return false;
        r->text = nt;
        *cap = ncap;
    }
    memcpy(r->text + len, piece, add + 1);
    return true;
}

static void params_json(const struct llt_gen_params * p, int n_ctx, int n_threads, char * buf, size_t size) {
    const char * fa = p->flash_attn < 0 ? "auto" : p->flash_attn ? "on" : "off";
    snprintf(buf, size,
        "{\"n_ctx\":%d,\"n_batch\":%d,\"n_threads\":%d,\"flash_attn\":\"%s\",\"type_k\":\"%s\","
        "\"type_v\":\"%s\",\"seed\":%u,\"temp\":%g,\"top_k\":%d,\"top_p\":%g,\"n_predict\":%d,"
        "\"n_gpu_layers\":%d,\"split_mode\":%d,\"rpc\":\"%s\",\"devices\":\"%s\"}",
        n_ctx, p->n_batch, n_threads, fa, ggml_type_name((enum ggml_type) p->type_k),
        ggml_type_name((enum ggml_type) p->type_v), p->seed, p->temp, p->top_k, p->top_p, p->n_predict,
        p->n_gpu_layers, p->split_mode, p->rpc ? p->rpc : "", p->devices ? p->devices : ""); // both checked by then
}

static struct llama_sampler * make_sampler(const struct llt_gen_params * p) {
    struct llama_sampler * s = llama_sampler_chain_init(llama_sampler_chain_default_params());
    if (p->temp <= 0.0f) {
        llama_sampler_chain_add(s, llama_sampler_init_greedy());
    } else {
        if (p->top_k > 0) llama_sampler_chain_add(s, llama_sampler_init_top_k(p->top_k));
        if (p->top_p < 1.0f) llama_sampler_chain_add(s, llama_sampler_init_top_p(p->top_p, 1));
        llama_sampler_chain_add(s, llama_sampler_init_temp(p->temp));
        llama_sampler_chain_add(s, llama_sampler_init_dist(p->seed));
    }
    return s;
}

// ---- where the model runs ----------------------------------------------------------------

// Whether a TCP connection to "host:port" opens (closed at once): llama.cpp aborts the process
// when it cannot connect to an RPC server, so an unreachable one is refused here, with a message.
static int check_endpoint(const char * endpoint) {
    const char * colon = strrchr(endpoint, ':');
    char host[256];
    snprintf(host, sizeof(host), "%.*s", (int) (colon - endpoint), endpoint);
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, * res = NULL;
    const int gai = getaddrinfo(host, colon + 1, &hints, &res);
    if (gai != 0) return llt_set_error(LLT_EINVAL, "--rpc: cannot resolve '%s': %s", endpoint, gai_strerror(gai));
    int err = ECONNREFUSED;
    bool ok = false;
    for (struct addrinfo * ai = res; ai && !ok; ai = ai->ai_next) {
        const int fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd < 0) { err = errno; continue; }
        ok = connect(fd, ai->ai_addr, ai->ai_addrlen) == 0;
        if (!ok) err = errno;
        close(fd);
    }
    freeaddrinfo(res);
    return ok ? LLT_OK : llt_set_error(LLT_EINVAL, "--rpc: cannot connect to %s: %s", endpoint, strerror(err));
}

// Registers each RPC server of "host:port,..." as devices, as llama.cpp's common/arg.cpp does
// for --rpc. The RPC backend keeps one registry per endpoint for the process, and a device is
// registered once: a second run with the same servers finds them registered.
static int add_rpc_servers(const char * list) {
    ggml_backend_reg_t rpc = ggml_backend_reg_by_name("RPC");
    typedef ggml_backend_reg_t (*add_server_fn)(const char * endpoint);
    add_server_fn add = rpc ? (add_server_fn) ggml_backend_reg_get_proc_address(rpc, "ggml_backend_rpc_add_server") : NULL;
    if (!add) return llt_set_error(LLT_EINVAL, "--rpc: llama.cpp was built without RPC (-DGGML_RPC=ON)");
    char endpoint[256];
    for (const char * p = list; *p;) {
        const size_t n = strcspn(p, ",");
        if (n == 0 || n >= sizeof(endpoint) || !memchr(p, ':', n)) {
            return llt_set_error(LLT_EINVAL, "--rpc: '%.*s' is not HOST:PORT", (int) n, p);
        }
        snprintf(endpoint, sizeof(endpoint), "%.*s", (int) n, p);
        p += n + (p[n] == ',');
        int rc = check_endpoint(endpoint);
        if (rc != LLT_OK) return rc;
        // connects to the server (llama.cpp aborts the process when that fails after all: see lltrace run)
        ggml_backend_reg_t reg = add(endpoint);
        if (!reg) return llt_set_error(LLT_EINVAL, "--rpc: server %s has no devices", endpoint);
        bool known = false;
        for (size_t i = 0; i < ggml_backend_reg_count() && !known; i++) known = ggml_backend_reg_get(i) == reg;
        if (!known) ggml_backend_register(reg);
    }
    return LLT_OK;
}

// "RPC0,CUDA0" into a NULL-terminated device list (as common/arg.cpp's --device); "none": no device
static int parse_devices(const char * list, ggml_backend_dev_t * out, int n_max) {
    int n = 0;
    if (strcmp(list, "none") != 0) {
        char name[128];
        for (const char * p = list; *p;) {
            const size_t len = strcspn(p, ",");
            snprintf(name, sizeof(name), "%.*s", (int) len, p);
            p += len + (p[len] == ',');
            ggml_backend_dev_t dev = ggml_backend_dev_by_name(name);
            if (!dev || ggml_backend_dev_type(dev) == GGML_BACKEND_DEVICE_TYPE_CPU) {
                return llt_set_error(LLT_EINVAL, "--device: no device '%s'%s", name,
                                     strncmp(name, "RPC", 3) == 0 ? " (RPC devices come with --rpc)" : "");
            }
            if (n + 1 >= n_max) return llt_set_error(LLT_EINVAL, "--device: at most %d devices", n_max - 1);
            out[n++] = dev;
        }
    }
    out[n] = NULL;
    return LLT_OK;
}

// ---- the loop ----------------------------------------------------------------------------

static int32_t decode(struct llt_tracer * tr, struct llama_context * ctx, struct llama_batch b) {
    return tr ? llt_decode(tr, ctx, b) : llama_decode(ctx, b);
}

// an intervention could not be made: the rest of its graph was not computed (the scheduler
// stops a split at a false post call), so the logits are not the model's
static bool iv_refused(struct llt_tracer * tr) {
    return tr && llt_tracer_iv_error(tr);
}

// a decode call failed: an intervention that could not be made says why
static int decode_failed(struct llt_tracer * tr, const char * what) {
    const char * why = tr ? llt_tracer_iv_error(tr) : NULL;
    if (why) return llt_set_error(LLT_EINVAL, "intervention refused at %s", why);
    return llt_set_error(LLT_ELLAMA, "llama_decode failed %s", what);
}

// break_on_nan stopped the graph: the run ends with the report
static bool stopped_on_nan(struct llt_tracer * tr, struct llt_gen_result * res) {
    const char * report = tr ? llt_tracer_nan_report(tr) : NULL;
    if (report && !res->stopped_on_nan) {
        res->stopped_on_nan = true;
        snprintf(res->nan_report, sizeof(res->nan_report), "%s", report);
    }
    return res->stopped_on_nan;
}

// The CPU's threadpool, made here as llama.cpp's own programs make theirs
// (common_threadpools::init): without one the CPU backend makes and frees a threadpool for every
// graph it computes, and level values computes one per observed node (issue 21). Found through
// the backend registry, as common.cpp finds it, so the library does not link ggml-cpu.
struct cpu_pool {
    struct ggml_threadpool * tp;
    void (*free_fn)(struct ggml_threadpool *);
};

static void attach_threadpool(struct llama_context * ctx, int32_t n_threads, struct cpu_pool * pool) {
    ggml_backend_dev_t dev = ggml_backend_dev_by_type(GGML_BACKEND_DEVICE_TYPE_CPU);
    ggml_backend_reg_t reg = dev ? ggml_backend_dev_backend_reg(dev) : NULL;
    void * new_sym = reg ? ggml_backend_reg_get_proc_address(reg, "ggml_threadpool_new") : NULL;
    void * free_sym = reg ? ggml_backend_reg_get_proc_address(reg, "ggml_threadpool_free") : NULL;
    if (!new_sym || !free_sym) return; // llama.cpp makes its own, per graph
    struct ggml_threadpool * (*new_fn)(struct ggml_threadpool_params *);
    memcpy(&new_fn, &new_sym, sizeof(new_fn));
    memcpy(&pool->free_fn, &free_sym, sizeof(pool->free_fn));
    struct ggml_threadpool_params tpp = ggml_threadpool_params_default(n_threads);
    if ((pool->tp = new_fn(&tpp))) llama_attach_threadpool(ctx, pool->tp, NULL);
}

int llt_generate(const struct llt_gen_params * p, struct llt_store * st, struct llt_gen_result * res) {
    memset(res, 0, sizeof(*res));
    struct llt_registry * reg = NULL;
    struct llama_model * model = NULL;
    struct llama_context * ctx = NULL;
    struct cpu_pool pool = {0};
    struct llama_sampler * smpl = NULL;
    struct llt_tracer * tr = NULL;
    size_t text_cap = 0;
    enum llt_run_status status = LLT_RUN_ERROR;

    if (p->n_predict < 0 || p->n_batch <= 0 || p->parity_top_k < 0 || p->parity_top_k > LLT_PARITY_MAX_K) {
        return llt_set_error(LLT_EINVAL, "bad generation parameters");
    }
    if (p->n_prompt_tokens > 0 ? !p->prompt_tokens : !p->prompt) {
        return llt_set_error(LLT_EINVAL, "no prompt: give a prompt or prompt tokens");
    }
    // the registry checks the file first, so a bad model gets a clear message, not a llama.cpp log
    int rc = llt_registry_load(p->model_path, &reg);
    llt_registry_free(reg);
    if (rc != LLT_OK) return rc;

    llama_backend_init();
    const int64_t t_load = llt_now_ns();
    struct llama_model_params mp = llama_model_default_params();
    ggml_backend_dev_t devices[LLT_MAX_DEVICES + 1];
    if (p->rpc && *p->rpc && (rc = add_rpc_servers(p->rpc)) != LLT_OK) goto done;
    if (p->devices) {
        if ((rc = parse_devices(p->devices, devices, LLT_MAX_DEVICES + 1)) != LLT_OK) goto done;
        mp.devices = devices;
    }
    mp.n_gpu_layers = p->n_gpu_layers;
    if (p->split_mode >= 0) mp.split_mode = (enum llama_split_mode) p->split_mode;
    llt_llama_error_clear();
    model = llama_model_load_from_file(p->model_path, mp);
    if (!model) {
        rc = llt_set_error(LLT_ELLAMA, "llama.cpp could not load model '%s'%s%s", p->model_path,
                           *llt_llama_error() ? ": " : "", llt_llama_error());
        goto done;
    }
    const struct llama_vocab * vocab = llama_model_get_vocab(model);

    // tokenize (or take the tokens given); a text llama.cpp would throw on is refused here
    const int64_t t_tokenize = llt_now_ns();
    llama_token * prompt_tokens = NULL;
    int32_t n_prompt = p->n_prompt_tokens;
    if (n_prompt <= 0) { // the text is read only here: with tokens given it may be NULL
        struct llt_tokenizer * tk = NULL;
        rc = llt_tokenizer_init(model, &tk);
        if (rc == LLT_OK) rc = llt_tokenize(tk, p->prompt, true, &prompt_tokens, &n_prompt);
        llt_tokenizer_free(tk);
        if (rc != LLT_OK) goto done;
        if (n_prompt == 0) {
            free(prompt_tokens);
            rc = llt_set_error(LLT_EINVAL, "the prompt is empty: it gives no tokens");
            goto done;
        }
        if (p->on_prompt) p->on_prompt(p->prompt, p->user_data);
    }
    res->tokens = malloc(((size_t) n_prompt + (size_t) p->n_predict + 1) * sizeof(llama_token));
    if (p->parity_top_k > 0) res->parity = calloc((size_t) p->n_predict + 1, sizeof(struct llt_parity_step));
    if (res->tokens) memcpy(res->tokens, prompt_tokens ? prompt_tokens : p->prompt_tokens, (size_t) n_prompt * sizeof(llama_token));
    free(prompt_tokens);
    if (!res->tokens || (p->parity_top_k > 0 && !res->parity)) { rc = llt_set_error(LLT_ENOMEM, "out of memory"); goto done; }
    res->n_prompt = n_prompt;
    res->n_ctx_train = llama_model_n_ctx_train(model);
    const int64_t t_tokenize_ns = llt_now_ns() - t_tokenize;

    // context
    const int32_t need = n_prompt + p->n_predict;
    int32_t n_ctx = p->n_ctx > 0 ? p->n_ctx : ((need + 255) / 256) * 256;
    if (n_ctx < need) {
        rc = llt_set_error(LLT_EINVAL, "context of %d tokens is too small for %d prompt + %d generated tokens",
                           n_ctx, n_prompt, p->n_predict);
        goto done;
    }
    const int32_t n_threads = p->n_threads > 0 ? p->n_threads : (int32_t) sysconf(_SC_NPROCESSORS_ONLN);
    struct llama_context_params cp = llama_context_default_params();
    cp.n_ctx = (uint32_t) n_ctx;
    cp.n_batch = cp.n_ubatch = (uint32_t) p->n_batch; // one decode call = one graph
    cp.n_threads = cp.n_threads_batch = n_threads;
    cp.flash_attn_type = (enum llama_flash_attn_type) p->flash_attn;
    cp.type_k = (enum ggml_type) p->type_k;
    cp.type_v = (enum ggml_type) p->type_v;
    cp.no_perf = true;

    if (st) {
        char pj[1024];
        params_json(p, n_ctx, n_threads, pj, sizeof(pj));
        struct llt_tracer_params tp = llt_tracer_default_params();
        tp.level = p->level;
        tp.values = p->values;
        tp.model_path = p->model_path;
        tp.prompt = p->prompt;
        tp.params_json = pj;
        tp.t_tokenize_ns = t_tokenize_ns;
        tp.time_nodes = p->time_nodes;
        tp.interventions = p->interventions;
        rc = llt_tracer_init(st, tp, &tr);
        if (rc != LLT_OK) goto done;
        llt_tracer_attach(tr, &cp);
        if (p->debug) llt_debug_attach(p->debug, tr);
        res->flash_attn_off = cp.flash_attn_type != (enum llama_flash_attn_type) p->flash_attn;
    }
    llt_llama_error_clear();
    ctx = llama_init_from_model(model, cp);
    if (!ctx) {
        rc = llt_set_error(LLT_ELLAMA, "llama.cpp could not create a context (n_ctx %d, K cache %s, V cache %s)%s%s",
                           n_ctx, ggml_type_name(cp.type_k), ggml_type_name(cp.type_v),
                           *llt_llama_error() ? ": " : "", llt_llama_error());
        goto done;
    }
    attach_threadpool(ctx, n_threads, &pool);
    if (tr && (rc = llt_tracer_begin(tr, model, ctx)) != LLT_OK) goto done;
    smpl = make_sampler(p);
    res->t_load_ns = llt_now_ns() - t_load;

    // prompt, in batches
    const int64_t t_prompt = llt_now_ns();
    for (int32_t i = 0; i < n_prompt && !stopped_on_nan(tr, res) && !(p->debug && llt_debug_quit_requested(p->debug));
         i += p->n_batch) {
        int32_t n = n_prompt - i < p->n_batch ? n_prompt - i : p->n_batch;
        const int32_t drc = decode(tr, ctx, llama_batch_get_one(res->tokens + i, n));
        if ((drc != 0 && !stopped_on_nan(tr, res)) || iv_refused(tr)) {
            rc = decode_failed(tr, "on the prompt");
            goto done;
        }
    }
    res->t_prompt_ns = llt_now_ns() - t_prompt;

    // generation: its time is that of the decode calls and the sampling (docs/trace-format.md,
    // "Speed"), not the printing between them; a traced run takes the tracer's figures below
    int64_t t_gen = 0;
    status = LLT_RUN_OK;
    if (!text_append(res, &text_cap, "")) { rc = llt_set_error(LLT_ENOMEM, "out of memory"); goto done; }
    for (int32_t i = 0; i < p->n_predict && !stopped_on_nan(tr, res); i++) {
        if (p->debug && llt_debug_quit_requested(p->debug)) break; // the user ended it: a complete run
        if (p->stop && *p->stop) {
            status = LLT_RUN_INTERRUPTED;
            res->interrupted = true;
            break;
        }
        int64_t t0 = llt_now_ns();
        llama_token tok = llama_sampler_sample(smpl, ctx, -1);
        t_gen += llt_now_ns() - t0;
        if (tr) llt_tracer_sampled(tr, tok);
        char piece[256];
        int n = llama_token_to_piece(vocab, tok, piece, sizeof(piece) - 1, 0, false);
        piece[n > 0 ? n : 0] = '\0';
        if (res->parity) {
            struct llt_parity_step * ps = &res->parity[res->n_gen];
            llt_parity_top_k(llama_get_logits_ith(ctx, -1), llama_vocab_n_tokens(vocab), p->parity_top_k, ps);
            ps->step = res->n_gen;
            ps->pos = n_prompt + res->n_gen;
            ps->token = tok;
            snprintf(ps->piece, sizeof(ps->piece), "%.63s", piece);
            if (tr) llt_tracer_parity(tr, ps);
        }
        res->tokens[n_prompt + res->n_gen++] = tok;
        if (llama_vocab_is_eog(vocab, tok)) break;
        if (!text_append(res, &text_cap, piece)) { rc = llt_set_error(LLT_ENOMEM, "out of memory"); goto done; }
        if (p->on_piece) p->on_piece(piece, p->user_data);
        if (i + 1 == p->n_predict) break; // the last token is not fed back
        t0 = llt_now_ns();
        const int32_t drc = decode(tr, ctx, llama_batch_get_one(&tok, 1));
        t_gen += llt_now_ns() - t0;
        if ((drc != 0 && !stopped_on_nan(tr, res)) || iv_refused(tr)) {
            char at[48];
            snprintf(at, sizeof(at), "at generated token %d", i);
            rc = decode_failed(tr, at);
            status = LLT_RUN_ERROR;
            goto done;
        }
    }
    res->t_gen_ns = t_gen;
    if (res->stopped_on_nan) status = LLT_RUN_INTERRUPTED;
    rc = LLT_OK;
done:
    if (tr && llt_tracer_run_id(tr) > 0) {
        if (rc != LLT_OK) status = LLT_RUN_ERROR;
        char saved[512];
        snprintf(saved, sizeof(saved), "%s", llt_last_error());
        int erc = llt_tracer_end(tr, status, res->text);
        res->run_id = llt_tracer_run_id(tr);
        res->stats = llt_tracer_get_stats(tr);
        res->t_prompt_ns = res->stats.t_prompt_ns; // what the trace says, so every command prints the same speed
        res->t_gen_ns = res->stats.t_gen_ns;
        if (llt_tracer_error(tr)) snprintf(res->trace_error, sizeof(res->trace_error), "%s", llt_tracer_error(tr));
        llt_tracer_dump_unmatched(tr, res->dump_unmatched, sizeof(res->dump_unmatched));
        llt_tracer_iv_unmatched(tr, res->iv_unmatched, sizeof(res->iv_unmatched));
        if (llt_tracer_iv_error(tr)) snprintf(res->iv_error, sizeof(res->iv_error), "%s", llt_tracer_iv_error(tr));
        res->has_reference = llt_tracer_ref_summary(tr, &res->reference);
        if (llt_tracer_dump_path(tr) && res->stats.n_dumped > 0) snprintf(res->dump_path, sizeof(res->dump_path), "%s", llt_tracer_dump_path(tr));
        if (rc == LLT_OK) rc = erc; else llt_set_error(rc, "%s", saved);
    }
    llt_tracer_free(tr);
    if (smpl) llama_sampler_free(smpl);
    if (ctx) llama_free(ctx);
    if (pool.tp) pool.free_fn(pool.tp); // after the context, which computes with it
    if (model) llama_model_free(model);
    return rc;
}
