// The end of a graph computation: the graph matched against those seen before (a structure
// is stored once), the stamps matched to the nodes the CPU computed (node times), and the
// step's rows added to the decode call's batch, which goes to the writer thread.
#include "capture/tracer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// ---- end of a graph computation ----------------------------------------------------------

// the batch of the current decode call, made on first use; NULL (tracing stopped) when out of memory
struct llt_batch * llt_capture_batch(struct llt_tracer * tr) {
    if (!tr->batch && !(tr->batch = calloc(1, sizeof(struct llt_batch)))) llt_capture_fail(tr, "out of memory");
    return tr->batch;
}

// a new graph: cached for matching, and queued to be written with the current batch
static struct graph * new_graph(struct llt_tracer * tr) {
    const size_t size = (size_t) tr->n_nodes * sizeof(struct node_rec);
    struct llt_batch * b = llt_capture_batch(tr);
    if (!b || !llt_grow((void **) &b->graphs, &b->cap_graphs, b->n_graphs + 1, sizeof(struct graph_rows))) return NULL;
    struct graph_rows * gr = &b->graphs[b->n_graphs];
    gr->recs = malloc(size);
    gr->strings = malloc(((size_t) tr->n_strings + 1) * sizeof(char *));
    if (!gr->recs || !gr->strings) {
        free(gr->recs);
        free(gr->strings);
        return NULL;
    }
    memcpy(gr->recs, tr->recs, size);
    memcpy(gr->strings, tr->strings, (size_t) tr->n_strings * sizeof(char *));
    gr->n_strings = tr->n_strings;
    gr->string_data = NULL;
    gr->id = tr->next_graph_id++;
    gr->n_nodes = tr->n_nodes;
    b->n_graphs++;

    // when the cache is full, the least recently used graph gives up its slot (it stays in the trace)
    struct graph * g = NULL;
    if (tr->n_graphs_cached < MAX_CACHED_GRAPHS) {
        g = &tr->graphs[tr->n_graphs_cached++];
    } else {
        g = &tr->graphs[0];
        for (int32_t i = 1; i < MAX_CACHED_GRAPHS; i++) {
            if (tr->graphs[i].last_used < g->last_used) g = &tr->graphs[i];
        }
        free(g->recs);
    }
    *g = (struct graph) { .id = gr->id, .n_nodes = tr->n_nodes, .recs = malloc(size) };
    if (!g->recs) return NULL;
    memcpy(g->recs, tr->recs, size);
    int32_t nw = llt_registry_count(tr->reg);
    char * read = calloc((size_t) nw + 1, 1);
    if (!read) return NULL;
    for (int32_t i = 0; i < tr->n_nodes; i++) {
        for (int k = 0; k < tr->recs[i].n_src; k++) {
            if (tr->recs[i].src_kind[k] == SRC_WEIGHT && !read[tr->recs[i].src_ref[k]]) {
                read[tr->recs[i].src_ref[k]] = 1;
                g->n_weights_read++;
            }
        }
    }
    free(read);
    return g;
}

// the graph in tr->recs: the previous one, a cached one, or a new one
static struct graph * match_graph(struct llt_tracer * tr) {
    if (tr->same_so_far && tr->n_nodes == tr->n_prev && tr->prev_graph) return tr->prev_graph;
    const size_t size = (size_t) tr->n_nodes * sizeof(struct node_rec);
    for (int32_t i = 0; i < tr->n_graphs_cached; i++) {
        struct graph * g = &tr->graphs[i];
        if (g->recs && g->n_nodes == tr->n_nodes && memcmp(g->recs, tr->recs, size) == 0) return g;
    }
    return new_graph(tr);
}

// Works out which node each stamp of the computation ends: the nodes the CPU computes, in
// order. False if the number of stamps is not theirs.
static bool build_stamp_map(struct llt_tracer * tr) {
    const int32_t n = tr->n_nodes;
    struct stamp_map * m = &tr->map;
    m->n = 0;
    for (int32_t i = 0; i < n; i++) {
        const struct node_rec * r = &tr->recs[i];
        if (!llt_capture_computed(tr, i)) continue;
        if (m->n == tr->cap_nodes) break;
        m->node[m->n] = i;
        m->layer[m->n] = (r->flags & NODE_LOUT) || r->layer < 0 ? -1 : (int16_t) r->layer;
        // a MUL fused into this norm has no stamp of its own
        m->fused[m->n] = i + 1 < n && (tr->recs[i + 1].flags & NODE_FUSED) && !(tr->bits[i] & BIT_OBSERVED) &&
                         (tr->seen[i + 1].flags & GGML_TENSOR_FLAG_COMPUTE);
        m->n++;
        if (m->fused[m->n - 1]) i++;
    }
    return m->n == tr->n_stamps;
}

// The node times from the stamps (into cleared times): a node runs from the previous node's
// stamp to its own. False if the stamps do not match the nodes (then no node has a time).
static bool times_from_stamps(struct llt_tracer * tr) {
    struct stamp_map * m = &tr->map;
    // the map holds while the graph does, unless nodes answered true cut it into ranges
    const bool same = tr->same_so_far && tr->n_nodes == tr->n_prev && m->n >= 0 && tr->n_asked_true == 0;
    if (same ? tr->n_stamps != m->n : !build_stamp_map(tr)) {
        m->n = -1;
        return false;
    }
    if (tr->n_asked_true > 0) m->n = -1; // made for this computation's ranges only: not kept
    const int32_t sample = tr->params.level == LLT_LEVEL_PROFILE ? (int32_t) (tr->n_steps % tr->n_layer) : -2;
    int64_t prev = tr->first_begin_ns;
    for (int32_t s = 0; s < tr->n_stamps; s++) {
        const int32_t i = tr->map.node[s];
        // each stamp comes after its node was asked about
        if (tr->stamps[s].asked <= i) {
            memset(tr->times, 0, (size_t) tr->n_nodes * sizeof(struct node_span));
            return false;
        }
        const int64_t end = tr->stamps[s].ns;
        // level profile keeps the l_out nodes, the nodes outside the layers and one layer's
        if (sample == -2 || tr->map.layer[s] < 0 || tr->map.layer[s] == sample) {
            tr->times[i] = (struct node_span) { prev, end };
            if (tr->map.fused[s]) tr->times[i + 1] = (struct node_span) { end, end }; // no time of its own
        }
        prev = end;
    }
    tr->n_observed = tr->n_stamps;
    tr->compute_end_ns = prev;
    return true;
}

// the timed nodes of the computation into the step's rows, relative to its compute_begin_ns
static bool step_times(const struct llt_tracer * tr, struct step_rows * ps) {
    int32_t n = 0;
    int64_t last = 0;
    for (int32_t i = 0; i < tr->n_nodes; i++) {
        if (tr->times[i].end_ns == 0) continue;
        n++;
        if (tr->times[i].end_ns > last) last = tr->times[i].end_ns;
    }
    int32_t shift = 0;
    while (((last - tr->compute_begin_ns) >> shift) > (int64_t) UINT32_MAX) shift++;
    if (n == 0 || !(ps->times = malloc((size_t) n * sizeof(struct node_time)))) return n == 0;
    ps->n_times = n;
    ps->time_shift = shift;
    for (int32_t i = 0, k = 0; i < tr->n_nodes; i++) {
        const struct node_span * t = &tr->times[i];
        if (t->end_ns == 0) continue;
        const int64_t b = t->begin_ns > tr->compute_begin_ns ? t->begin_ns - tr->compute_begin_ns : 0;
        ps->times[k++] = (struct node_time) { i, (uint32_t) (b >> shift), (uint32_t) ((t->end_ns - tr->compute_begin_ns) >> shift) };
    }
    return true;
}

// The splits timed in the computation into the step's rows: those whose observed node did end
// its split in the graph as it came out (the guess was made from the previous computation).
static bool step_split_times(struct llt_tracer * tr, struct step_rows * ps) {
    const int32_t n = tr->n_split_times;
    tr->n_split_times = 0;
    if (!(ps->split_times = malloc((size_t) n * sizeof(struct split_time)))) return false;
    for (int32_t k = 0; k < n; k++) {
        const struct split_time * t = &tr->split_times[k];
        const bool ends = t->idx < tr->n_nodes && tr->recs[t->idx].split == t->split &&
                          (t->idx + 1 == tr->n_nodes || tr->recs[t->idx + 1].split != t->split);
        if (ends) ps->split_times[ps->n_split_times++] = *t;
    }
    return true;
}

// A graph's fused MULs (NODE_FUSED): those meeting ggml-cpu's conditions on the pair whose
// norm no other node reads. Known once the graph is complete.
static void mark_fused(struct llt_tracer * tr) {
    const int32_t n = tr->n_nodes;
    memset(tr->uses, 0, (size_t) n * sizeof(int32_t));
    for (int32_t i = 0; i < n; i++) {
        for (int k = 0; k < tr->recs[i].n_src; k++) {
            if (tr->recs[i].src_kind[k] == SRC_NODE) tr->uses[tr->recs[i].src_ref[k]]++;
        }
    }
    for (int32_t i = 1; i < n; i++) {
        struct node_rec * r = &tr->recs[i];
        r->flags &= ~NODE_FUSED;
        if ((r->flags & NODE_FUSABLE) && tr->uses[i - 1] == 1) r->flags |= NODE_FUSED;
    }
}

// the tokens this computation took: a decode call split into ubatches computes a graph per
// ubatch, whose first node gets the token embeddings (GET_ROWS, [n_embd, n_tokens])
static int32_t graph_tokens(const struct llt_tracer * tr) {
    const struct node_rec * r = &tr->recs[0];
    return r->op == GGML_OP_GET_ROWS && r->ne[1] > 0 ? (int32_t) r->ne[1] : tr->cur_n_tokens;
}

// A decode call split into ubatches: the step of a graph that computed some of its tokens
// (their positions and sequences read from the graph: experts.c) gets those tokens, its
// first position, its sequences and its phase; the outputs it computed are its own.
static void ubatch_tokens(struct llt_tracer * tr, struct step_rows * ps) {
    const struct llt_batch * b = tr->batch;
    bool prompt = false;
    int64_t mask = 0;
    for (int32_t r = 0; r < tr->n_graph_pos; r++) {
        const int32_t pos = tr->graph_pos[r], seq = tr->graph_seq[r];
        if (seq < 0) continue;
        mask |= (int64_t) ((uint64_t) 1 << (seq < 63 ? seq : 63));
        for (int32_t k = tr->before.n_tokens; b && k < b->n_tokens; k++) {
            struct token_rows * t = &b->tokens[k];
            if (!t->is_prompt || t->pos != pos || t->seq_id != seq) continue;
            t->step = ps->step;
            prompt = true;
            break;
        }
        struct seq_state * s = seq < tr->cap_seqs ? &tr->seqs[seq] : NULL;
        if (s && s->pending && s->out_decode == tr->n_decodes && s->out_pos == pos) s->out_step = ps->step;
    }
    ps->pos0 = tr->graph_pos[0];
    ps->is_prompt = prompt;
    if (mask) ps->seq_mask = mask;
}

// Statistics read at stamps hold only where the stamps are the computed nodes, one each.
// Checked once on a computation without stamp reads, where every node with statistics ended
// a compute range (so no norm was fused: each computed node has its stamp); then on every
// computation that read at stamps. A mismatch there drops the reads of the computation (they
// may have read other nodes than planned) and plans reads at posts from then on.
static void check_stamps(struct llt_tracer * tr) {
    const bool read_on_plan = tr->n_read_map > 0 && tr->same_so_far && tr->n_nodes == tr->n_prev;
    if (tr->aborted) {
        tr->aborted = false; // the application stopped the computation: fewer stamps, reads made hold
    } else if (read_on_plan && tr->n_read_stamps != tr->n_read_map) {
        for (int32_t i = 0; i < tr->n_nodes; i++) {
            if (!tr->by_stamp[i]) continue;
            llt_capture_unread(tr, i, &tr->n_stats_stamped);
            llt_capture_unread(tr, tr->derive_of[i], &tr->n_stats_derived); // a norm derived at the same stamp
        }
        tr->stamps_ok = false;
        tr->n_plan = 0; // planned again, at posts
    } else if (!tr->stamps_checked && tr->n_plan == 0) {
        int32_t n_computed = 0;
        for (int32_t i = 0; i < tr->n_nodes; i++) {
            n_computed += llt_capture_computed(tr, i);
        }
        tr->stamps_ok = tr->n_read_stamps == n_computed;
        tr->stamps_checked = true;
    }
    tr->n_read_stamps = 0;
}

void llt_capture_finish_graph(struct llt_tracer * tr) {
    if (!tr->active || tr->n_nodes == 0) return;
    if (!tr->same_so_far || tr->n_nodes != tr->n_prev) {
        mark_fused(tr);
        llt_capture_plan_asks(tr);
    }
    if (tr->stamped) {
        // times only from stamps that match; a computation the application stopped has none
        memset(tr->times, 0, (size_t) tr->n_nodes * sizeof(struct node_span));
        tr->n_observed = 0;
        if (!tr->aborted && !times_from_stamps(tr)) {
            tr->stamped = false; // from the next computation on, timed nodes are observed
            tr->observed_from = tr->n_steps + 1;
        }
        tr->n_stamps = 0;
        tr->n_asked_true = 0;
        tr->aborted = false;
    }
    struct graph * g = match_graph(tr);
    struct llt_batch * b = llt_capture_batch(tr);
    if (!g || !b || !llt_grow((void **) &b->steps, &b->cap_steps, b->n_steps + 1, sizeof(struct step_rows))) {
        llt_capture_fail(tr, "out of memory");
        return;
    }
    struct step_rows * ps = &b->steps[b->n_steps++];
    *ps = (struct step_rows) {
        .step = tr->n_steps, .decode = tr->n_decodes, .graph_id = g->id,
        .pos0 = tr->cur_pos0, .n_tokens = graph_tokens(tr), .is_prompt = tr->cur_prompt, .seq_mask = tr->cur_seq_mask,
        .compute_begin_ns = tr->compute_begin_ns,
        .compute_end_ns = timed(tr) && tr->n_observed > 0 ? tr->compute_end_ns : 0,
        // the start of the next graph, for a ubatch (the decode call's end, for the last)
        .t_end_ns = tr->in_decode ? llt_now_ns() - tr->t0_ns : 0,
    };
    if (tr->in_decode && tr->n_graph_pos > 0 && ps->n_tokens < tr->cur_n_tokens) ubatch_tokens(tr, ps);
    tr->n_graph_pos = 0;
    if (timed(tr) && tr->n_observed > 0) { // a profile step that sampled nothing has no times
        if (!step_times(tr, ps)) { llt_capture_fail(tr, "out of memory"); return; }
    }
    if (tr->n_split_times > 0 && !step_split_times(tr, ps)) { llt_capture_fail(tr, "out of memory"); return; }
    if (tr->stamp_reads && tr->node_stats) check_stamps(tr);
    // room for every node's at once: one allocation, not one per doubling
    if (tr->node_stats && !llt_reserve((void **) &b->stats, &b->cap_stats, b->n_stats + tr->n_nodes, sizeof(struct stat_rows))) {
        llt_capture_fail(tr, "out of memory");
        return;
    }
    for (int32_t i = 0; tr->node_stats && i < tr->n_nodes; i++) {
        if (tr->node_stats[i].has) b->stats[b->n_stats++] = (struct stat_rows) { tr->n_steps, i, tr->node_stats[i].st };
        tr->node_stats[i].has = false; // the fast path does not clear a node's (record.c)
    }
    // a new plan when the graph changed (or there was none)
    if (tr->node_stats && (tr->off_plan || tr->n_plan != tr->n_nodes || !tr->same_so_far)) llt_capture_build_plan(tr);
    tr->off_plan = false;
    tr->scan_next = 0;
    tr->n_observed = 0;
    g->last_used = tr->n_steps;
    tr->prev_graph = g;
    tr->n_steps++;
    tr->n_prev = tr->n_nodes;
    tr->n_nodes = 0;
    tr->same_so_far = true;
}

// hands the current batch to the writer, then stops tracing if the writer failed: the batch
// goes to the step log still, so the step before the one tracing stopped at is not lost
void llt_capture_submit(struct llt_tracer * tr) {
    if (tr->batch && tr->active) {
        llt_writer_submit(tr->writer, tr->batch);
        tr->batch = NULL;
    }
    const char * werr = llt_writer_error(tr->writer);
    if (werr && !tr->writer_failed) llt_capture_writer_fail(tr, werr);
}

// the row of the run's token number seq into the batch; false when out of memory (tracing stops)
static bool put_token(struct llt_tracer * tr, int64_t seq, llama_token tok, int32_t pos, int64_t step, bool is_prompt,
                      int32_t seq_id, int output) {
    struct llt_batch * b = llt_capture_batch(tr);
    if (!b || !llt_grow((void **) &b->tokens, &b->cap_tokens, b->n_tokens + 1, sizeof(struct token_rows))) {
        llt_capture_fail(tr, "out of memory");
        return false;
    }
    struct token_rows * t = &b->tokens[b->n_tokens++];
    *t = (struct token_rows) { .seq = seq, .step = step, .pos = pos, .seq_id = seq_id, .token = tok,
                               .is_prompt = is_prompt, .output = (int8_t) output };
    int n = llama_token_to_piece(tr->vocab, tok, t->piece, (int32_t) sizeof(t->piece) - 1, 0, true);
    t->piece[n > 0 ? n : 0] = '\0';
    if (tr->values && llt_grow((void **) &tr->all_tokens, &tr->cap_all_tokens, seq + 1, sizeof(llama_token))) {
        tr->all_tokens[seq] = tok;
    }
    return true;
}

void llt_capture_push_token(struct llt_tracer * tr, llama_token tok, int32_t pos, int64_t step, bool is_prompt,
                            int32_t seq_id, int output) {
    if (!put_token(tr, tr->n_prompt + tr->n_gen, tok, pos, step, is_prompt, seq_id, output)) return;
    if (is_prompt) tr->n_prompt++; else tr->n_gen++;
}

void llt_capture_replace_token(struct llt_tracer * tr, int64_t seq, llama_token tok, int32_t pos, int64_t step,
                               int32_t seq_id) {
    put_token(tr, seq, tok, pos, step, false, seq_id, -1);
}

