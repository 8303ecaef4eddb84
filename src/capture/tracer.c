// The tracer's public API (lltrace/tracer.h): a run's life — init, attach to a context, begin,
// decode calls, the tokens chosen, parity records, end — and what it reports.
#include "capture/tracer.h"
#include "trace/runs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// ---- failure: record it, stop tracing, let inference go on -------------------------------

void llt_capture_fail(struct llt_tracer * tr, const char * what) {
    if (tr->error[0] == '\0') {
        tr->stopped_at = tr->n_steps;
        snprintf(tr->error, sizeof(tr->error), "tracing stopped at step %lld: %s", (long long) tr->stopped_at, what);
    }
    llt_capture_stop(tr);
}

void llt_capture_writer_fail(struct llt_tracer * tr, const char * what) {
    if (tr->error[0] && !tr->writer_failed) return; // capture's own failure came first
    if (!tr->error[0]) tr->stopped_at = tr->n_steps;
    tr->writer_failed = true;
    snprintf(tr->error, sizeof(tr->error), "tracing stopped at step %lld: %s", (long long) tr->stopped_at, what);
    llt_capture_stop(tr);
}

// ---- public API --------------------------------------------------------------------------

struct llt_tracer_params llt_tracer_default_params(void) {
    return (struct llt_tracer_params) { .level = LLT_LEVEL_GRAPH, .values = llt_values_default_params() };
}

static char * dup_or_null(const char * s) { return s ? strdup(s) : NULL; }

// whether the model has Mixture-of-Experts layers: <arch>.expert_count above 0
static bool has_experts(const struct llt_registry * reg) {
    char arch[64], key[96], count[32];
    if (llt_registry_meta(reg, "general.architecture", arch, sizeof(arch)) != LLT_OK) return false;
    snprintf(key, sizeof(key), "%s.expert_count", arch);
    return llt_registry_meta(reg, key, count, sizeof(count)) == LLT_OK && atoi(count) > 0;
}

int llt_tracer_init(struct llt_store * st, struct llt_tracer_params params, struct llt_tracer ** out) {
    *out = NULL;
    if ((unsigned) params.level >= LLT_LEVEL_COUNT) return llt_set_error(LLT_EINVAL, "unknown trace level %d", params.level);
    if (!params.model_path) return llt_set_error(LLT_EINVAL, "the tracer needs the model path");
    if (params.parity_top_k < 0 || params.parity_top_k > LLT_PARITY_MAX_K) {
        return llt_set_error(LLT_EINVAL, "parity top-k %d is out of range [0, %d]", params.parity_top_k, LLT_PARITY_MAX_K);
    }
    struct llt_tracer * tr = calloc(1, sizeof(*tr));
    if (!tr) return llt_set_error(LLT_ENOMEM, "out of memory");
    tr->st = st;
    tr->params = params;
    tr->model_path = dup_or_null(params.model_path);
    tr->prompt = dup_or_null(params.prompt);
    tr->params_json = dup_or_null(params.params_json);
    tr->name = dup_or_null(params.name);
    tr->params.model_path = tr->model_path;
    tr->params.prompt = tr->prompt;
    tr->params.params_json = tr->params_json;
    tr->params.name = tr->name;
    tr->last_buffer_id = tr->last_device_id = -1;
    tr->observed_from = -1;
    tr->map.n = -1;
    int rc = llt_registry_load(params.model_path, &tr->reg);
    if (rc == LLT_OK && (!ptr_table_init(&tr->node_idx, 2048) || !ptr_table_init(&tr->weight_ids, 1024))) {
        rc = llt_set_error(LLT_ENOMEM, "out of memory");
    }
    // GGML_DEFAULT_GRAPH_SIZE nodes at most per graph in llama.cpp; names need half the table free
    tr->names.cap = 1u << 15;
    tr->names.gen = 1;
    if (rc == LLT_OK && !(tr->names.e = calloc(tr->names.cap, sizeof(struct name_entry)))) {
        rc = llt_set_error(LLT_ENOMEM, "out of memory");
    }
    if (rc == LLT_OK) tr->moe = has_experts(tr->reg);
    if (rc == LLT_OK) {
        int nw = llt_registry_count(tr->reg);
        tr->weight_buffer = malloc(((size_t) nw + 1) * sizeof(int32_t));
        if (!tr->weight_buffer) rc = llt_set_error(LLT_ENOMEM, "out of memory");
        for (int i = 0; rc == LLT_OK && i < nw; i++) tr->weight_buffer[i] = -1;
    }
    if (rc != LLT_OK) {
        llt_tracer_free(tr);
        return rc;
    }
    *out = tr;
    return LLT_OK;
}

void llt_tracer_free(struct llt_tracer * tr) {
    if (!tr) return;
    llt_writer_stop(tr->writer);
    llt_batch_free(tr->batch);
    for (int32_t i = 0; i < tr->n_graphs_cached; i++) free(tr->graphs[i].recs);
    for (int32_t i = 0; i < tr->n_strings; i++) free(tr->strings[i]);
    free(tr->strings);
    free(tr->string_index);
    free(tr->recs);
    free(tr->times);
    free(tr->stamps);
    free(tr->bits);
    free(tr->asked);
    free(tr->split_times);
    free(tr->uses);
    free(tr->map.node);
    free(tr->map.layer);
    free(tr->map.fused);
    free(tr->seen);
    free(tr->seen_ptr);
    free(tr->node_idx.e);
    free(tr->weight_ids.e);
    free(tr->names.e);
    free(tr->node_stats);
    free(tr->scan_at);
    free(tr->scan_first);
    free(tr->fast_ptr);
    free(tr->read_map);
    free(tr->by_stamp);
    free(tr->derive_of);
    free(tr->derive_buf);
    free(tr->all_tokens);
    free(tr->seqs);
    free(tr->seqs_before);
    free(tr->graph_pos);
    free(tr->graph_seq);
    free(tr->batch_tok);
    free(tr->iv_match);
    free(tr->iv_spans);
    free(tr->iv_applied);
    for (int32_t i = 0; i < tr->n_iv_added; i++) free(tr->iv_added[i].params);
    free(tr->iv_added);
    llt_values_free(tr->values);
    free(tr->weight_buffer);
    free(tr->weight_names);
    llt_registry_free(tr->reg);
    free(tr->model_path);
    free(tr->prompt);
    free(tr->params_json);
    free(tr->name);
    free(tr);
}

// the run's parameters say "flash_attn":"off" where the tracer turned it off: what ran, not
// what was asked for
static void params_flash_attn_off(struct llt_tracer * tr) {
    static const char key[] = "\"flash_attn\":\"";
    const char * json = tr->params_json;
    const char * v = json ? strstr(json, key) : NULL;
    const char * end = v ? strchr(v + sizeof(key) - 1, '"') : NULL;
    if (!end) return;
    const int head = (int) (v + sizeof(key) - 1 - json);
    char * out = malloc(strlen(json) + 4);
    if (!out) return; // the parameters as asked, then
    sprintf(out, "%.*soff%s", head, json, end);
    free(tr->params_json);
    tr->params_json = out;
    tr->params.params_json = out;
}

void llt_tracer_attach(struct llt_tracer * tr, struct llama_context_params * cparams) {
    // attention probabilities exist as a tensor only without flash attention
    const bool probs = tr->params.values.checkpoints || llt_iv_set_needs_probs(tr->params.interventions);
    if (probs && cparams->flash_attn_type != LLAMA_FLASH_ATTN_TYPE_DISABLED) {
        cparams->flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
        params_flash_attn_off(tr);
    }
    tr->chain_cb = cparams->cb_eval;
    tr->chain_ud = cparams->cb_eval_user_data;
    cparams->cb_eval = llt_capture_eval_cb;
    cparams->cb_eval_user_data = tr;
    const char * nofuse = getenv("GGML_CPU_DISABLE_FUSION"); // read the way ggml-cpu reads it
    tr->cpu_fusion = !(nofuse && atoi(nofuse) == 1);
    // statistics are read at stamps once they are seen to match (record.c)
    tr->stamp_reads = tr->params.level == LLT_LEVEL_VALUES && !tr->params.values.break_on_nan;
    if (timed(tr) || tr->stamp_reads) {
        tr->stamped = timed(tr);
        tr->chain_abort = cparams->abort_callback;
        tr->chain_abort_ud = cparams->abort_callback_data;
        cparams->abort_callback = llt_capture_abort_cb;
        cparams->abort_callback_data = tr;
    }
}

static int insert_run(struct llt_tracer * tr, const struct llama_model * model) {
    char started[32], arch[64] = "", name[256] = "", desc[256] = "";
    llt_utc_now(started, sizeof(started));
    llama_model_meta_val_str(model, "general.architecture", arch, sizeof(arch));
    llama_model_meta_val_str(model, "general.name", name, sizeof(name));
    llama_model_desc(model, desc, sizeof(desc));
    const struct llt_run_begin r = {
        .started_at = started, .level = llt_level_name(tr->params.level), .system_info = llama_print_system_info(),
        .model_path = tr->model_path, .model_name = name, .model_arch = arch, .model_desc = desc,
        .n_layer = llama_model_n_layer(model), .n_embd = llama_model_n_embd(model), .n_head = llama_model_n_head(model),
        .n_head_kv = llama_model_n_head_kv(model), .n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(model)),
        .n_ctx_train = llama_model_n_ctx_train(model), .file_type = llt_ftype_name(llama_model_ftype(model)),
        .model_bytes = (int64_t) llt_registry_file_size(tr->reg), .model_params = (int64_t) llama_model_n_params(model),
        .params = tr->params_json, .prompt = tr->prompt, .name = tr->params.name,
    };
    // the interventions, as their JSON text
    const int32_t n_ivs = llt_iv_set_count(tr->params.interventions);
    struct llt_run_iv * ivs = n_ivs > 0 ? calloc((size_t) n_ivs, sizeof(*ivs)) : NULL;
    char ** texts = n_ivs > 0 ? calloc((size_t) n_ivs, sizeof(char *)) : NULL;
    int rc = n_ivs > 0 && (!ivs || !texts) ? llt_set_error(LLT_ENOMEM, "out of memory") : LLT_OK;
    for (int32_t i = 0; rc == LLT_OK && i < n_ivs; i++) {
        const struct llt_intervention * iv = llt_iv_set_get(tr->params.interventions, i);
        const int len = llt_iv_format_json(iv, NULL, 0);
        if (!(texts[i] = malloc((size_t) len + 1))) { rc = llt_set_error(LLT_ENOMEM, "out of memory"); break; }
        llt_iv_format_json(iv, texts[i], (size_t) len + 1);
        ivs[i] = (struct llt_run_iv) { llt_iv_kind_name(iv->kind), iv->node, texts[i] };
    }
    struct llt_run_begin rb = r;
    rb.ivs = ivs;
    rb.n_ivs = n_ivs;
    if (rc == LLT_OK) rc = llt_trace_run_begin(tr->st, &rb, tr->reg, &tr->run_id);
    for (int32_t i = 0; texts && i < n_ivs; i++) free(texts[i]);
    free(texts);
    free(ivs);
    return rc;
}

static int start_run(struct llt_tracer * tr, const struct llama_model * model);

int llt_tracer_begin(struct llt_tracer * tr, const struct llama_model * model, struct llama_context * ctx) {
    (void) ctx;
    tr->vocab = llama_model_get_vocab(model);
    tr->t0_ns = llt_now_ns();
    int rc = insert_run(tr, model);
    if (rc != LLT_OK) return rc;
    rc = start_run(tr, model);
    if (rc == LLT_OK) return LLT_OK;
    // the run's row exists: it ends failed, saying why, rather than running forever. The
    // reason is the caller's error to report, not a tracing failure besides it (tr->error is
    // cleared again)
    char why[sizeof(tr->error)];
    snprintf(why, sizeof(why), "%s", llt_last_error());
    snprintf(tr->error, sizeof(tr->error), "%s", why);
    llt_capture_stop(tr);
    llt_tracer_end(tr, LLT_RUN_ERROR, NULL);
    tr->error[0] = '\0';
    return llt_set_error(rc, "%s", why);
}

// the run's writer thread and values, once its row is in
static int start_run(struct llt_tracer * tr, const struct llama_model * model) {
    int rc;
    // graph ids are given here, not by the database, so capture never waits for the writer;
    // each run has its own range, so runs traced into one file at once never collide
    tr->next_graph_id = tr->run_id * GRAPH_IDS_PER_RUN + 1;
    tr->first_graph_id = tr->next_graph_id;
    const int32_t nw = llt_registry_count(tr->reg);
    tr->weight_names = malloc(((size_t) nw + 1) * sizeof(char *));
    if (!tr->weight_names) return llt_set_error(LLT_ENOMEM, "out of memory");
    for (int32_t i = 0; i < nw; i++) tr->weight_names[i] = llt_registry_get(tr->reg, i)->name;
    rc = llt_writer_start(tr->st, tr->run_id, tr->weight_names, nw, &tr->writer);
    if (rc != LLT_OK) return rc;
    tr->n_layer = llama_model_n_layer(model) > 0 ? llama_model_n_layer(model) : 1;
    tr->n_head = llama_model_n_head(model);
    tr->n_head_kv = llama_model_n_head_kv(model);
    const int n_ivs = llt_iv_set_count(tr->params.interventions);
    if (n_ivs > 0 && !(tr->iv_applied = calloc((size_t) n_ivs, sizeof(int64_t)))) return llt_set_error(LLT_ENOMEM, "out of memory");
    const struct llt_values_params * vp = &tr->params.values;
    if (tr->params.level == LLT_LEVEL_VALUES || vp->dump || vp->checkpoints || vp->reference || vp->break_on_nan) {
        rc = llt_values_init(vp, tr->params.level, llt_store_path(tr->st), tr->run_id, &tr->values);
        if (rc != LLT_OK) return rc;
    }
    tr->active = true;
    return LLT_OK;
}

// ---- decode calls and the tokens chosen ---------------------------------------------------

static void parity_record(struct llt_tracer * tr, const struct llt_parity_step * step, int32_t seq_id);

// the state of sequence id, NULL beyond MAX_SEQ_ID (or out of memory: tracing stops)
static struct seq_state * seq_state(struct llt_tracer * tr, int32_t id) {
    if (id < 0 || id >= MAX_SEQ_ID) return NULL;
    const int32_t had = tr->cap_seqs;
    if (id >= tr->cap_seqs) {
        if (!llt_grow((void **) &tr->seqs, &tr->cap_seqs, id + 1, sizeof(struct seq_state))) {
            llt_capture_fail(tr, "out of memory");
            return NULL;
        }
        memset(tr->seqs + had, 0, (size_t) (tr->cap_seqs - had) * sizeof(struct seq_state));
    }
    return &tr->seqs[id];
}

// the token chosen from sequence s's output: recorded, with its top-k logits when asked for
// and the logits are still the context's (no decode call since). A second choice from the same
// output replaces the first: common_sampler resamples when a grammar rejects its first pick,
// and a program may feed back another token than it picked; the one that continues is the truth.
static void record_chosen(struct llt_tracer * tr, struct llama_context * ctx, struct seq_state * s, int32_t seq_id,
                          llama_token token) {
    const int32_t pos = s->out_pos + 1;
    const bool again = s->chosen;
    if (tr->params.parity_top_k > 0 && ctx && s->out_decode == tr->n_decodes - 1 && (!again || s->chosen_parity >= 0)) {
        const float * logits = llama_get_logits_ith(ctx, s->out_row);
        if (logits) {
            struct llt_parity_step ps = { .step = again ? s->chosen_parity : tr->n_parity++, .pos = pos, .token = token };
            llt_parity_top_k(logits, llama_vocab_n_tokens(tr->vocab), tr->params.parity_top_k, &ps);
            int n = llama_token_to_piece(tr->vocab, token, ps.piece, (int32_t) sizeof(ps.piece) - 1, 0, true);
            ps.piece[n > 0 ? n : 0] = '\0';
            parity_record(tr, &ps, seq_id);
            s->chosen_parity = ps.step;
        }
    }
    if (again) {
        llt_capture_replace_token(tr, s->chosen_seq, token, pos, s->out_step, seq_id);
    } else {
        s->chosen_seq = tr->n_prompt + tr->n_gen;
        llt_capture_push_token(tr, token, pos, s->out_step, false, seq_id, -1);
    }
    s->chosen = true;
    s->chosen_token = token;
}

// the lowest sequence id of batch token i (0 for a batch without them)
static int32_t token_seq(const struct llama_batch * b, int32_t i) {
    if (!b->seq_id || !b->n_seq_id || b->n_seq_id[i] < 1 || !b->seq_id[i]) return 0;
    int32_t lo = b->seq_id[i][0];
    for (int32_t k = 1; k < b->n_seq_id[i]; k++) if (b->seq_id[i][k] < lo) lo = b->seq_id[i][k];
    return lo;
}

// The position llama.cpp gives the next token of sequence sid in a batch without positions:
// after the last the context's memory holds (the program may have cleared or cut it)
static int32_t auto_pos(const struct llt_tracer * tr, struct llama_context * ctx, int32_t sid) {
    llama_memory_t mem = ctx ? llama_get_memory(ctx) : NULL;
    return mem ? llama_memory_seq_pos_max(mem, sid) + 1 : tr->next_pos;
}

// the decode call's positions and sequences, to tell which token each row of its graphs is
static void keep_batch(struct llt_tracer * tr, const struct llama_batch * batch) {
    tr->n_batch_tok = tr->batch_unused = 0;
    const int32_t n = batch->n_tokens;
    // out of memory: no batch, and the rows' sequences are not known
    if (n <= 0 || !llt_grow((void **) &tr->batch_tok, &tr->cap_batch_tok, n, sizeof(*tr->batch_tok))) return;
    for (int32_t i = 0; i < n; i++) {
        tr->batch_tok[i].pos = batch->pos ? batch->pos[i] : tr->cur_pos0 + i;
        tr->batch_tok[i].seq = token_seq(batch, i);
        tr->batch_tok[i].used = false;
    }
    tr->n_batch_tok = n;
}

// what a decode call changes, kept to undo it if llama.cpp refuses the call (undo_decode)
static void mark_decode(struct llt_tracer * tr) {
    const struct llt_batch * b = tr->batch;
    tr->before.n_tokens = b ? b->n_tokens : 0;
    tr->before.n_parity_rows = b ? b->n_parity : 0;
    tr->before.n_prompt = tr->n_prompt;
    tr->before.n_gen = tr->n_gen;
    tr->before.n_parity = tr->n_parity;
    tr->before.n_steps = tr->n_steps;
    tr->before.next_pos = tr->next_pos;
    tr->before.cap_seqs = 0;
    if (tr->cap_seqs > 0 && !llt_grow((void **) &tr->seqs_before, &tr->cap_seqs_before, tr->cap_seqs, sizeof(struct seq_state))) {
        llt_capture_fail(tr, "out of memory");
        return;
    }
    if (tr->cap_seqs > 0) memcpy(tr->seqs_before, tr->seqs, (size_t) tr->cap_seqs * sizeof(struct seq_state));
    tr->before.cap_seqs = tr->cap_seqs;
}

// A decode call llama.cpp refused (returned 1: no room in the KV cache) computed nothing: its
// tokens are not in the sequence, and the program sends them again (llama-server in halves).
// Recorded now, they would be recorded twice.
static void undo_decode(struct llt_tracer * tr) {
    struct llt_batch * b = tr->batch;
    if (b) {
        for (int32_t i = tr->before.n_parity_rows; i < b->n_parity; i++) free(b->parity[i].top_k);
        b->n_tokens = tr->before.n_tokens;
        b->n_parity = tr->before.n_parity_rows;
    }
    tr->n_prompt = tr->before.n_prompt;
    tr->n_gen = tr->before.n_gen;
    tr->n_parity = tr->before.n_parity;
    tr->next_pos = tr->before.next_pos;
    if (tr->before.cap_seqs > 0) memcpy(tr->seqs, tr->seqs_before, (size_t) tr->before.cap_seqs * sizeof(struct seq_state));
    // sequences first seen in the refused call were never seen
    if (tr->cap_seqs > tr->before.cap_seqs) {
        memset(tr->seqs + tr->before.cap_seqs, 0, (size_t) (tr->cap_seqs - tr->before.cap_seqs) * sizeof(struct seq_state));
    }
}

void llt_tracer_decode_begin(struct llt_tracer * tr, struct llama_context * ctx, const struct llama_batch * batch) {
    if (!tr->active) return;
    llt_capture_submit(tr); // the previous decode's, if no token was chosen from it
    mark_decode(tr);
    const int64_t first_step = tr->n_steps;
    bool any_prompt = batch->n_tokens == 0 || !batch->token;
    int64_t seq_mask = 0;
    // a generated token comes alone in its sequence (a prompt may come in pieces, each asking
    // for the logits of its last token)
    for (int32_t i = 0; i < batch->n_tokens && tr->active; i++) {
        struct seq_state * s = seq_state(tr, token_seq(batch, i));
        if (s) s->n_batch = 0;
    }
    for (int32_t i = 0; i < batch->n_tokens && tr->active; i++) {
        const int32_t sid = token_seq(batch, i);
        struct seq_state * s = seq_state(tr, sid);
        if (s && s->n_batch++ == 0 && !batch->pos) s->next_auto = auto_pos(tr, ctx, sid);
    }
    for (int32_t i = 0; i < batch->n_tokens && tr->active; i++) {
        struct seq_state * ps = batch->pos ? NULL : seq_state(tr, token_seq(batch, i));
        const int32_t pos = batch->pos ? batch->pos[i] : ps ? ps->next_auto++ : tr->next_pos + i;
        if (i == 0) tr->cur_pos0 = pos;
        const int32_t sid = token_seq(batch, i);
        const bool out = batch->logits ? batch->logits[i] != 0 : i == batch->n_tokens - 1;
        struct seq_state * s = seq_state(tr, sid);
        seq_mask |= (int64_t) ((uint64_t) 1 << (sid >= 0 && sid < 63 ? sid : 63));
        // a token alone in its sequence, at the position after the sequence's output, was chosen from it
        const bool gen = batch->token && s && s->pending && s->n_batch == 1 && pos == s->out_pos + 1;
        if (gen) {
            if (!s->chosen || s->chosen_token != batch->token[i]) record_chosen(tr, ctx, s, sid, batch->token[i]);
            s->pending = false;
        } else if (batch->token) {
            llt_capture_push_token(tr, batch->token[i], pos, first_step, true, sid, out);
            any_prompt = true;
        }
        if (out && s) {
            *s = (struct seq_state) { .pending = true, .out_pos = pos, .out_row = i, .out_step = first_step,
                                      .out_decode = tr->n_decodes, .n_batch = s->n_batch, .next_auto = s->next_auto,
                                      .chosen_parity = -1 };
        }
    }
    tr->cur_prompt = any_prompt;
    tr->cur_seq_mask = seq_mask;
    if (tr->moe || batch->n_tokens > 1) keep_batch(tr, batch);
    if (batch->n_tokens <= 0) tr->cur_pos0 = tr->next_pos;
    tr->cur_n_tokens = batch->n_tokens;
    tr->cur_t_begin_ns = llt_now_ns() - tr->t0_ns;
    tr->in_decode = true;
}

int32_t llt_tracer_decode_end(struct llt_tracer * tr, int32_t ret) {
    if (!tr->in_decode) return ret;
    llt_capture_finish_graph(tr); // (in the call still: the last ubatch's tokens are its)
    tr->in_decode = false;
    const int64_t t_begin = tr->cur_t_begin_ns;
    const int64_t t_end = llt_now_ns() - tr->t0_ns;
    if (tr->cur_prompt) tr->t_prompt_ns += t_end - t_begin; else tr->t_gen_ns += t_end - t_begin;
    tr->next_pos = tr->cur_pos0 + tr->cur_n_tokens;
    const bool computed = tr->n_steps > tr->before.n_steps;
    if (ret != 0 && tr->active) {
        // refused: as if never called. A call that failed after computing a graph keeps its
        // steps; its tokens go, and no logits came of it either way.
        undo_decode(tr);
        if (!computed) return ret;
    }
    tr->n_decodes++;
    if (!tr->active) return ret;

    // the decode's wall time, shared by its steps (one per ubatch): each runs from the end of
    // the one before (the call's begin) to the start of the next graph (the call's end)
    for (int32_t i = 0; tr->batch && i < tr->batch->n_steps; i++) {
        struct step_rows * ps = &tr->batch->steps[i];
        ps->t_begin_ns = i == 0 ? t_begin : tr->batch->steps[i - 1].t_end_ns;
        if (i == tr->batch->n_steps - 1) ps->t_end_ns = t_end;
    }
    // handed over when the token is chosen (its sampling time goes with the step), or with
    // the next decode call
    tr->t_decode_end_ns = t_end;
    return ret;
}

int32_t llt_decode(struct llt_tracer * tr, struct llama_context * ctx, struct llama_batch batch) {
    if (!tr->active) return llama_decode(ctx, batch);
    llt_tracer_decode_begin(tr, ctx, &batch);
    return llt_tracer_decode_end(tr, llama_decode(ctx, batch));
}

void llt_tracer_memory_cleared(struct llt_tracer * tr, bool unread) {
    if (!tr->active) return;
    // a warm-up: decoded, nothing read or chosen from it, forgotten. Its tokens are still in the
    // batch (it goes to the writer with the next decode call); its steps stay, in phase warmup,
    // with no tokens: the run's prompt is what comes after.
    struct llt_batch * b = tr->batch;
    if (unread && tr->n_gen == 0 && b && b->n_tokens == tr->n_prompt) {
        for (int32_t i = 0; i < b->n_steps; i++) {
            b->steps[i].is_warmup = true;
            b->steps[i].is_prompt = false;
        }
        b->n_tokens = 0;
        tr->n_prompt = 0;
        tr->t_prompt_ns = 0;
    }
    if (tr->cap_seqs > 0) memset(tr->seqs, 0, (size_t) tr->cap_seqs * sizeof(struct seq_state));
    tr->next_pos = 0;
}

void llt_tracer_sampled_at(struct llt_tracer * tr, struct llama_context * ctx, int32_t idx, llama_token token) {
    if (!tr->active) return;
    // the sequence whose output is row idx of the last decode call (-1: its last output row)
    struct seq_state * s = NULL;
    int32_t sid = -1;
    for (int32_t i = 0; i < tr->cap_seqs; i++) {
        struct seq_state * c = &tr->seqs[i];
        if (!c->pending || c->out_decode != tr->n_decodes - 1) continue;
        if (idx >= 0 ? c->out_row == idx : (!s || c->out_row > s->out_row)) { s = c; sid = i; }
    }
    if (!s) return;
    if (s->chosen) { // chosen again before the next decode call: the last choice is the token
        if (token != s->chosen_token) {
            record_chosen(tr, ctx, s, sid, token);
            llt_capture_submit(tr);
        }
        return;
    }
    struct llt_batch * b = tr->batch;
    const int64_t t_sample = llt_now_ns() - tr->t0_ns - tr->t_decode_end_ns;
    if (b && b->n_steps > 0) b->steps[b->n_steps - 1].t_sample_ns = t_sample;
    tr->t_gen_ns += t_sample; // choosing a generated token is generation time (docs/trace-format.md, "Speed")
    record_chosen(tr, ctx, s, sid, token);
    llt_capture_submit(tr);
}

void llt_tracer_sampled(struct llt_tracer * tr, llama_token token) {
    llt_tracer_sampled_at(tr, NULL, -1, token);
}

void llt_tracer_parity(struct llt_tracer * tr, const struct llt_parity_step * step) {
    parity_record(tr, step, 0);
}

static void parity_record(struct llt_tracer * tr, const struct llt_parity_step * step, int32_t seq_id) {
    if (!tr->active) return;
    struct llt_batch * b = llt_capture_batch(tr);
    const int len = llt_parity_format_top_k(step, NULL, 0);
    char * top_k = len >= 0 ? malloc((size_t) len + 1) : NULL;
    if (!b || !top_k || !llt_grow((void **) &b->parity, &b->cap_parity, b->n_parity + 1, sizeof(struct parity_rows))) {
        free(top_k);
        llt_capture_fail(tr, "out of memory");
        return;
    }
    llt_parity_format_top_k(step, top_k, (size_t) len + 1);
    struct parity_rows * p = &b->parity[b->n_parity++];
    *p = (struct parity_rows) { .seq_id = seq_id, .step = step->step, .pos = step->pos, .token = step->token, .top_k = top_k };
    snprintf(p->piece, sizeof(p->piece), "%s", step->piece);
}

int llt_tracer_sync(struct llt_tracer * tr) {
    if (!tr->writer) return LLT_OK;
    llt_capture_submit(tr);
    return llt_writer_sync(tr->writer);
}

int llt_tracer_end(struct llt_tracer * tr, enum llt_run_status status, const char * output) {
    if (tr->run_id == 0) return llt_set_error(LLT_EINVAL, "the run was never begun");
    if (tr->ended) return LLT_OK; // (a run whose begin failed ended there)
    tr->ended = true;
    if (tr->active) {
        llt_capture_finish_graph(tr);
        llt_capture_submit(tr);
    }
    llt_capture_stop(tr);
    if (tr->writer && llt_writer_sync(tr->writer) != LLT_OK) llt_capture_writer_fail(tr, llt_last_error());
    // the writer writes node times and statistics as it stops: that can fail too
    if (llt_writer_stop(tr->writer) != LLT_OK) llt_capture_writer_fail(tr, llt_last_error());
    tr->writer = NULL;

    const char * dump_path = NULL;
    if (tr->values && llt_values_dump_path(tr->values)) {
        char filters[512];
        const struct llt_values_params * vp = &tr->params.values;
        snprintf(filters, sizeof(filters), "layer=%d steps=%d-%d sources=%d checkpoints=%d type=%d",
                 vp->dump_layer, vp->dump_step_first, vp->dump_step_last, vp->dump_sources, vp->checkpoints, vp->dump_type);
        struct llt_dump_meta meta = { tr->run_id, tr->reg, tr->model_path, tr->prompt, filters, tr->params_json,
                                      tr->all_tokens, tr->n_prompt + tr->n_gen };
        if (llt_values_finish(tr->values, &meta) == LLT_OK) dump_path = llt_values_dump_path(tr->values);
        else llt_capture_fail(tr, llt_last_error());
    }
    char ended[32];
    llt_utc_now(ended, sizeof(ended));
    const int32_t nw = llt_registry_count(tr->reg);
    const char ** buffers = calloc((size_t) nw + 1, sizeof(char *));
    if (!buffers) return llt_set_error(LLT_ENOMEM, "out of memory");
    for (int32_t w = 0; w < nw; w++) buffers[w] = tr->weight_buffer[w] >= 0 ? tr->strings[tr->weight_buffer[w]] : NULL;
    // the changes made at pauses, after the run's own interventions
    struct llt_run_iv * added = tr->n_iv_added > 0 ? calloc((size_t) tr->n_iv_added, sizeof(*added)) : NULL;
    for (int32_t i = 0; added && i < tr->n_iv_added; i++) {
        added[i] = (struct llt_run_iv) { tr->iv_added[i].kind, tr->iv_added[i].node, tr->iv_added[i].params };
    }
    const struct llt_run_end e = {
        .ended_at = ended,
        .status = llt_run_status_name(tr->error[0] && status == LLT_RUN_OK ? LLT_RUN_ERROR : status),
        .error = tr->error[0] ? tr->error : tr->iv_error[0] ? tr->iv_error : NULL, .output = output, .n_prompt = tr->n_prompt, .n_gen = tr->n_gen,
        .t_prompt_ns = tr->t_prompt_ns, .t_gen_ns = tr->t_gen_ns, .t_tokenize_ns = tr->params.t_tokenize_ns,
        .dump_path = dump_path, .nan_report = llt_tracer_nan_report(tr), .weight_buffers = buffers, .n_weights = nw,
        .ivs_added = added, .n_ivs_added = added ? tr->n_iv_added : 0, .iv_base = llt_iv_set_count(tr->params.interventions),
    };
    int rc = llt_trace_run_end(tr->st, tr->run_id, &e);
    free(added);
    free(buffers);
    return rc;
}

void llt_tracer_disown(struct llt_tracer * tr) {
    // its writer thread, step log, connection and dump are the parent's: forgotten, not closed
    llt_capture_stop(tr);
    tr->stamped = false;
    tr->stamp_reads = false;
    llt_writer_disown(tr->writer); // the parent's lock on its step log stays the parent's alone
    tr->writer = NULL;
    tr->batch = NULL;
    tr->values = NULL;
    tr->st = NULL;
}

void llt_tracer_set_node_hook(struct llt_tracer * tr, llt_node_hook fn, llt_node_hook_idle idle, void * user_data) {
    tr->hook = fn;
    tr->hook_idle = idle;
    tr->hook_ud = user_data;
}

bool llt_tracer_graph_node(struct llt_tracer * tr, int32_t idx, struct llt_node_view * out) {
    if (!tr->active || idx < 0 || idx >= tr->n_nodes) return false;
    llt_capture_node_view(tr, idx, out);
    return true;
}

int llt_tracer_run_id(const struct llt_tracer * tr) { return (int) tr->run_id; }

const char * llt_tracer_error(const struct llt_tracer * tr) {
    return tr->error[0] ? tr->error : NULL;
}

const char * llt_tracer_dump_path(const struct llt_tracer * tr) {
    return tr->values ? llt_values_dump_path(tr->values) : NULL;
}

bool llt_tracer_ref_summary(const struct llt_tracer * tr, struct llt_ref_summary * out) {
    return tr->values && llt_values_ref_summary(tr->values, out);
}

int llt_tracer_dump_unmatched(const struct llt_tracer * tr, char * buf, size_t size) {
    if (size > 0) buf[0] = '\0';
    return tr->values && size > 0 ? llt_values_unmatched(tr->values, buf, size) : 0;
}

const char * llt_tracer_nan_report(const struct llt_tracer * tr) {
    return tr->values ? llt_values_nan_report(tr->values) : NULL;
}

struct llt_tracer_stats llt_tracer_get_stats(const struct llt_tracer * tr) {
    // all derived: the last step's graph is the one llt_capture_finish_graph() matched last
    const struct graph * g = tr->prev_graph;
    return (struct llt_tracer_stats) {
        .n_steps = tr->n_steps,
        .n_nodes_last = g ? g->n_nodes : 0,
        .n_graphs = tr->next_graph_id - tr->first_graph_id,
        .n_weights = tr->reg ? llt_registry_count(tr->reg) : 0,
        .n_weights_read = g ? g->n_weights_read : 0,
        .n_dumped = tr->values ? llt_values_n_dumped(tr->values) : 0,
        .timing_observed_from = tr->observed_from,
        .timing_splits = tr->observed_from >= 0 && tr->off_cpu && !tr->params.time_nodes,
        .n_stats_read = tr->n_stats_read,
        .n_stats_stamped = tr->n_stats_stamped,
        .n_stats_derived = tr->n_stats_derived,
        .t_prompt_ns = tr->t_prompt_ns,
        .t_gen_ns = tr->t_gen_ns,
    };
}

