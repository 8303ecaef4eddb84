// Export: a run as an NDJSON event log or a Trace Event Format timeline (lltrace/export.h).
//
// Linear in the run's size: the graphs (nodes and sources), steps and tokens are read once
// into memory, then the node times stream in step order and each step is written when its
// last time has passed: no per-step query.
#include "core/internal.h"

#include <stdlib.h>
#include <errno.h>
#include <string.h>

struct xnode {
    char    op[32], name[GGML_MAX_NAME], type[16], buffer[32], device[32];
    int32_t layer;
    int64_t ne[4], bytes;
    bool    is_view, is_noop;
    char *  sources; // a JSON array
    size_t  sources_len, sources_cap;
};

struct xgraph {
    int64_t id;
    int32_t first, n_nodes;
};

struct xtoken {
    struct llt_read_token t;
    char *                piece;
};

struct exporter {
    FILE *                  f;
    enum llt_export_format  format;
    int64_t                 n_lines;
    struct llt_table_rows * run;     // the run's row
    struct xgraph *         graphs;
    int32_t                 n_graphs, cap_graphs;
    struct xnode *          nodes;
    int32_t                 n_nodes, cap_nodes;
    struct llt_read_step *  steps;
    int32_t                 n_steps, cap_steps;
    struct xtoken *         tokens;
    int32_t                 n_tokens, cap_tokens;
    int32_t                 next_step;   // the first step not written yet
    int32_t                 next_token;  // ndjson: the first token not written yet
    int32_t                 timed_step;  // index of the step whose times are being gathered, -1: none
    int64_t *               tb, * te;    // its times by idx, -1 where not timed
    int32_t                 max_nodes;
    struct llt_table_rows * splits;      // chrome: the run's splits by step (LLT_TABLE_SPLITS)
    int64_t                 next_split;  // the first row of splits not written yet
    char                    (*devices)[32]; // chrome: the devices other than the CPU, a track each
    int32_t                 n_devices, cap_devices;
};

static int oom(void) {
    return llt_set_error(LLT_ENOMEM, "out of memory");
}

// ---- JSON --------------------------------------------------------------------------------

// begins an event: a line of NDJSON, or an element of the traceEvents array
static void event_begin(struct exporter * ex) {
    if (ex->format == LLT_EXPORT_CHROME) fputs(ex->n_lines ? ",\n" : "\n", ex->f);
    fputc('{', ex->f);
    ex->n_lines++;
}

static void event_end(struct exporter * ex) {
    fputs(ex->format == LLT_EXPORT_CHROME ? "}" : "}\n", ex->f);
}

// ,"key": (the first member of an object has no comma: key given with a leading '{' skip)
static void key(FILE * f, const char * k, bool first) {
    fprintf(f, first ? "\"%s\":" : ",\"%s\":", k);
}

static void put_int(FILE * f, const char * k, int64_t v) {
    key(f, k, false);
    fprintf(f, "%lld", (long long) v);
}

static void put_str(FILE * f, const char * k, const char * s) {
    key(f, k, false);
    if (s) llt_json_write_string(f, s);
    else   fputs("null", f);
}

// a microsecond value from nanoseconds, as the Trace Event Format wants it
static void put_us(FILE * f, const char * k, int64_t ns) {
    key(f, k, false);
    fprintf(f, "%lld.%03lld", (long long) (ns / 1000), (long long) (ns % 1000));
}

static const struct llt_value * run_value(const struct exporter * ex, const char * name) {
    for (int32_t c = 0; c < ex->run->n_cols; c++) {
        if (strcmp(ex->run->cols[c], name) == 0) return &ex->run->values[c];
    }
    return NULL;
}

// a column of the run's row as it is: number, string (valid UTF-8), raw JSON, or null
static void put_run(const struct exporter * ex, const char * k, const char * col, bool first) {
    const struct llt_value * v = run_value(ex, col);
    key(ex->f, k, first);
    if (!v || v->type == LLT_VALUE_NULL) fputs("null", ex->f);
    else if (v->type == LLT_VALUE_INT)   fprintf(ex->f, "%lld", (long long) v->i);
    else if (v->type == LLT_VALUE_REAL)  fprintf(ex->f, "%.17g", v->d);
    else if (strcmp(col, "params") == 0) fputs(v->s, ex->f); // valid JSON, the query checked
    else                                 llt_json_write_string(ex->f, v->s);
}

// ---- loading -----------------------------------------------------------------------------

static int on_node(const struct llt_read_node * r, void * user_data) {
    struct exporter * ex = user_data;
    struct xgraph * g = ex->n_graphs ? &ex->graphs[ex->n_graphs - 1] : NULL;
    if (!g || g->id != r->graph_id) {
        if (!llt_grow((void **) &ex->graphs, &ex->cap_graphs, ex->n_graphs + 1, sizeof(*ex->graphs))) return oom();
        g = &ex->graphs[ex->n_graphs++];
        *g = (struct xgraph) { .id = r->graph_id, .first = ex->n_nodes };
    }
    if (!llt_grow((void **) &ex->nodes, &ex->cap_nodes, ex->n_nodes + 1, sizeof(*ex->nodes))) return oom();
    struct xnode * n = &ex->nodes[ex->n_nodes++];
    g->n_nodes++;
    if (g->n_nodes > ex->max_nodes) ex->max_nodes = g->n_nodes;
    snprintf(n->op, sizeof(n->op), "%s", r->op);
    snprintf(n->name, sizeof(n->name), "%s", r->name);
    snprintf(n->type, sizeof(n->type), "%s", r->type);
    snprintf(n->buffer, sizeof(n->buffer), "%s", r->buffer);
    snprintf(n->device, sizeof(n->device), "%s", r->device);
    n->layer = r->layer;
    memcpy(n->ne, r->ne, sizeof(n->ne));
    n->bytes = r->bytes;
    n->is_view = r->is_view;
    n->is_noop = r->is_noop;
    return LLT_OK;
}

static struct xgraph * find_graph(const struct exporter * ex, int64_t id) {
    const int32_t i = llt_find_i64(ex->graphs, ex->n_graphs, sizeof(*ex->graphs), offsetof(struct xgraph, id), id);
    return i < 0 ? NULL : &ex->graphs[i];
}

// appends the source to its node's JSON array of sources
static int on_src(const struct llt_read_src * r, void * user_data) {
    struct exporter * ex = user_data;
    const struct xgraph * g = find_graph(ex, r->graph_id);
    if (!g || r->idx < 0 || r->idx >= g->n_nodes) return LLT_OK;
    struct xnode * n = &ex->nodes[g->first + r->idx];
    static const char * const kinds[] = { "node", "weight", "input" };
    char * text = NULL;
    size_t len = 0;
    FILE * m = open_memstream(&text, &len);
    if (!m) return oom();
    fprintf(m, "{\"slot\":%d,\"kind\":\"%s\",\"name\":", r->slot, kinds[r->kind]);
    llt_json_write_string(m, r->name);
    if (r->kind == LLT_SRC_NODE) fprintf(m, ",\"idx\":%d,\"weight_id\":null", r->src_idx);
    else if (r->kind == LLT_SRC_WEIGHT) fprintf(m, ",\"idx\":null,\"weight_id\":%lld", (long long) r->weight_id);
    else fputs(",\"idx\":null,\"weight_id\":null", m);
    fprintf(m, ",\"bytes\":%lld}", (long long) r->bytes);
    if (fclose(m) != 0 || !text) {
        free(text);
        return oom();
    }
    const size_t need = n->sources_len + len + 3;
    if (need > n->sources_cap) {
        char * ns = realloc(n->sources, need * 2);
        if (!ns) {
            free(text);
            return oom();
        }
        n->sources = ns;
        n->sources_cap = need * 2;
    }
    n->sources[n->sources_len] = n->sources_len == 0 ? '[' : ',';
    n->sources_len++;
    memcpy(n->sources + n->sources_len, text, len + 1);
    n->sources_len += len;
    free(text);
    return LLT_OK;
}

static int on_step(const struct llt_read_step * r, void * user_data) {
    struct exporter * ex = user_data;
    if (!llt_grow((void **) &ex->steps, &ex->cap_steps, ex->n_steps + 1, sizeof(*ex->steps))) return oom();
    ex->steps[ex->n_steps++] = *r;
    return LLT_OK;
}

static int on_token(const struct llt_read_token * r, void * user_data) {
    struct exporter * ex = user_data;
    if (!llt_grow((void **) &ex->tokens, &ex->cap_tokens, ex->n_tokens + 1, sizeof(*ex->tokens))) return oom();
    struct xtoken * t = &ex->tokens[ex->n_tokens];
    if (!(t->piece = strdup(r->piece))) return oom();
    t->t = *r;
    t->t.piece = t->piece;
    ex->n_tokens++;
    return LLT_OK;
}

static struct llt_read_step * find_step(const struct exporter * ex, int64_t step) {
    const int32_t i = llt_find_i64(ex->steps, ex->n_steps, sizeof(*ex->steps), offsetof(struct llt_read_step, step), step);
    return i < 0 ? NULL : &ex->steps[i];
}

// ---- ndjson ------------------------------------------------------------------------------

static void nd_token(struct exporter * ex, const struct xtoken * tok, const struct llt_read_step * s) {
    const struct llt_read_token * t = &tok->t;
    FILE * f = ex->f;
    event_begin(ex);
    fputs("\"event\":\"token\"", f);
    put_int(f, "step", t->step);
    put_int(f, "seq", t->seq);
    put_int(f, "seq_id", t->seq_id);
    put_str(f, "role", t->prompt ? "prompt" : "gen");
    put_int(f, "pos", t->pos);
    put_int(f, "token", t->token);
    put_str(f, "piece", t->piece);
    // a prompt token is fed when its step begins, a generated one is known when its step ends
    const int64_t at = t->prompt ? s->t_begin_ns : s->t_end_ns;
    if (at >= 0) put_int(f, "t_ns", at);
    event_end(ex);
}

static void nd_tensor(struct exporter * ex, const struct llt_read_step * s, const struct xnode * n, int32_t idx) {
    FILE * f = ex->f;
    int nd = 4;
    while (nd > 1 && n->ne[nd - 1] == 1) nd--;
    event_begin(ex);
    fputs("\"event\":\"tensor\"", f);
    put_int(f, "step", s->step);
    put_int(f, "idx", idx);
    put_str(f, "name", n->name);
    put_str(f, "op", n->op);
    put_int(f, "layer", n->layer);
    key(f, "shape", false);
    for (int d = 0; d < nd; d++) fprintf(f, "%s%lld", d ? "," : "[", (long long) n->ne[d]);
    fputc(']', f);
    put_str(f, "dtype", n->type);
    put_int(f, "bytes", n->bytes);
    // unsigned: a damaged trace's shapes may overflow, which is defined there
    put_int(f, "elements", (int64_t) ((uint64_t) n->ne[0] * (uint64_t) n->ne[1] * (uint64_t) n->ne[2] * (uint64_t) n->ne[3]));
    put_int(f, "is_view", n->is_view);
    put_int(f, "is_noop", n->is_noop);
    put_str(f, "buffer", n->buffer);
    if (n->device[0]) put_str(f, "device", n->device); // unknown in traces before version 3
    key(f, "sources", false);
    fputs(n->sources ? n->sources : "[", f);
    fputc(']', f);
    if (ex->tb[idx] >= 0) {
        put_int(f, "t_ns", ex->tb[idx]);
        put_int(f, "duration_ns", ex->te[idx] - ex->tb[idx]);
    }
    event_end(ex);
}

// a layer: a run of consecutive nodes with the same layer number; its time spans its first
// timed node's start to its last one's end
static void nd_layer(struct exporter * ex, const struct llt_read_step * s, int32_t layer, bool begin,
                     int64_t tb, int64_t te, int32_t n_nodes) {
    FILE * f = ex->f;
    event_begin(ex);
    fprintf(f, "\"event\":\"%s\",\"kind\":\"layer\"", begin ? "step_begin" : "step_end");
    put_int(f, "step", s->step);
    put_int(f, "layer_id", layer);
    if (!begin) put_int(f, "nodes", n_nodes);
    if (begin && tb >= 0) put_int(f, "t_ns", tb);
    if (!begin && te >= 0) put_int(f, "t_ns", te);
    if (!begin && tb >= 0 && te >= 0) put_int(f, "duration_ns", te - tb);
    event_end(ex);
}

static void nd_step(struct exporter * ex, const struct llt_read_step * s, const struct xgraph * g) {
    FILE * f = ex->f;
    const char * phase = llt_read_step_phase(s);
    event_begin(ex);
    fputs("\"event\":\"step_begin\",\"kind\":\"decode\"", f);
    put_int(f, "step", s->step);
    put_int(f, "decode", s->decode);
    put_str(f, "phase", phase);
    put_int(f, "pos0", s->pos0);
    put_int(f, "n_tokens", s->n_tokens);
    put_int(f, "graph_id", s->graph_id);
    if (s->t_begin_ns >= 0) put_int(f, "t_ns", s->t_begin_ns);
    event_end(ex);
    // the step's tokens follow each other in seq order: the prompt ones now, the chosen one after
    while (ex->next_token < ex->n_tokens && ex->tokens[ex->next_token].t.step < s->step) ex->next_token++;
    int32_t tok_end = ex->next_token;
    while (tok_end < ex->n_tokens && ex->tokens[tok_end].t.step == s->step) tok_end++;
    for (int32_t t = ex->next_token; t < tok_end; t++) {
        if (ex->tokens[t].t.prompt) nd_token(ex, &ex->tokens[t], s);
    }
    const struct xnode * nodes = g ? ex->nodes + g->first : NULL;
    const int32_t n = g ? g->n_nodes : 0;
    for (int32_t i = 0, seg = 0; i < n; i++) {
        if (i == seg) { // a new segment: find its end and its time span
            int32_t end = i;
            int64_t tb = -1, te = -1;
            while (end < n && nodes[end].layer == nodes[i].layer) {
                if (ex->tb[end] >= 0 && (tb < 0 || ex->tb[end] < tb)) tb = ex->tb[end];
                if (ex->te[end] > te) te = ex->te[end];
                end++;
            }
            if (nodes[i].layer >= 0) nd_layer(ex, s, nodes[i].layer, true, tb, te, end - i);
            for (int32_t k = i; k < end; k++) nd_tensor(ex, s, &nodes[k], k);
            if (nodes[i].layer >= 0) nd_layer(ex, s, nodes[i].layer, false, tb, te, end - i);
            seg = end;
            i = end - 1;
        }
    }
    event_begin(ex);
    fputs("\"event\":\"step_end\",\"kind\":\"decode\"", f);
    put_int(f, "step", s->step);
    put_int(f, "decode", s->decode);
    put_str(f, "phase", phase);
    if (s->t_end_ns >= 0) put_int(f, "t_ns", s->t_end_ns);
    if (s->t_end_ns >= 0 && s->t_begin_ns >= 0) put_int(f, "duration_ns", s->t_end_ns - s->t_begin_ns);
    if (s->compute_begin_ns >= 0) put_int(f, "compute_begin_ns", s->compute_begin_ns);
    if (s->compute_end_ns >= 0) put_int(f, "compute_end_ns", s->compute_end_ns);
    event_end(ex);
    for (int32_t t = ex->next_token; t < tok_end; t++) {
        if (!ex->tokens[t].t.prompt) nd_token(ex, &ex->tokens[t], s);
    }
    ex->next_token = tok_end;
}

static void nd_session_start(struct exporter * ex) {
    FILE * f = ex->f;
    event_begin(ex);
    fputs("\"event\":\"session_start\",\"t_ns\":0", f);
    put_run(ex, "run_id", "run", false);
    put_run(ex, "started_at", "started_at", false);
    put_run(ex, "level", "level", false);
    key(f, "model", false);
    static const char * const model[][2] = {
        { "path", "model_path" }, { "name", "model" }, { "arch", "arch" }, { "desc", "model_desc" },
        { "n_layer", "n_layer" }, { "n_embd", "n_embd" }, { "n_head", "n_head" }, { "n_head_kv", "n_head_kv" },
        { "n_vocab", "n_vocab" }, { "n_ctx_train", "n_ctx_train" }, { "file_type", "file_type" },
        { "bytes", "model_bytes" }, { "n_params", "model_params" },
    };
    fputc('{', f);
    for (size_t i = 0; i < sizeof(model) / sizeof(model[0]); i++) put_run(ex, model[i][0], model[i][1], i == 0);
    fputc('}', f);
    put_run(ex, "params", "params", false);
    put_run(ex, "prompt", "prompt", false);
    key(f, "versions", false);
    fputc('{', f);
    put_run(ex, "lltrace", "lltrace_version", true);
    put_run(ex, "llama", "llama_tag", false);
    fputc('}', f);
    put_run(ex, "system_info", "system_info", false);
    event_end(ex);
}

static void nd_session_end(struct exporter * ex) {
    FILE * f = ex->f;
    int64_t n_tensors = 0;
    for (int32_t i = 0; i < ex->n_steps; i++) {
        const struct xgraph * g = find_graph(ex, ex->steps[i].graph_id);
        n_tensors += g ? g->n_nodes : 0;
    }
    event_begin(ex);
    fputs("\"event\":\"session_end\"", f);
    static const char * const cols[][2] = {
        { "run_id", "run" }, { "ended_at", "ended_at" }, { "status", "status" }, { "error", "error" },
        { "output", "output" }, { "n_prompt", "n_prompt" }, { "n_gen", "n_gen" }, { "t_prompt_ns", "t_prompt_ns" },
        { "t_gen_ns", "t_gen_ns" }, { "n_steps", "steps" }, { "n_graphs", "graphs" },
    };
    for (size_t i = 0; i < sizeof(cols) / sizeof(cols[0]); i++) put_run(ex, cols[i][0], cols[i][1], false);
    put_int(f, "n_tensors", n_tensors);
    event_end(ex);
}

// ---- chrome ------------------------------------------------------------------------------

// One track per device: the CPU computes on the thread that called llama_decode (track 1,
// with the decode calls), every other device (an RPC server, a GPU) gets a track of its own.
static int track(struct exporter * ex, const char * device) {
    if (!device[0] || strcmp(device, "CPU") == 0) return 1;
    for (int32_t i = 0; i < ex->n_devices; i++) if (strcmp(ex->devices[i], device) == 0) return 2 + i;
    if (!llt_grow((void **) &ex->devices, &ex->cap_devices, ex->n_devices + 1, sizeof(*ex->devices))) return 1;
    snprintf(ex->devices[ex->n_devices], sizeof(ex->devices[0]), "%s", device);
    return 2 + ex->n_devices++;
}

static void ch_complete_on(struct exporter * ex, int tid, const char * name, const char * cat, int64_t ts, int64_t dur) {
    FILE * f = ex->f;
    event_begin(ex);
    key(f, "name", true);
    llt_json_write_string(f, name);
    put_str(f, "cat", cat);
    fprintf(f, ",\"ph\":\"X\",\"pid\":1,\"tid\":%d", tid);
    put_us(f, "ts", ts);
    put_us(f, "dur", dur);
}

static void ch_complete(struct exporter * ex, const char * name, const char * cat, int64_t ts, int64_t dur) {
    ch_complete_on(ex, 1, name, cat, ts, dur);
}

// column col of a row of t (a column the query names)
static const struct llt_value * split_val(const struct llt_table_rows * t, const struct llt_value * row, const char * col) {
    static const struct llt_value null = { .type = LLT_VALUE_NULL };
    for (int32_t c = 0; c < t->n_cols; c++) if (strcmp(t->cols[c], col) == 0) return &row[c];
    return &null;
}

static int64_t split_int(const struct llt_table_rows * t, const struct llt_value * row, const char * col) {
    return split_val(t, row, col)->i;
}

static const char * split_text(const struct llt_table_rows * t, const struct llt_value * row, const char * col) {
    const char * v = split_val(t, row, col)->s;
    return v ? v : "";
}

// the timed splits of step s on their devices' tracks: the input copies into a split, then its computation
static void ch_splits(struct exporter * ex, const struct llt_read_step * s) {
    const struct llt_table_rows * t = ex->splits;
    for (; t && ex->next_split < t->n_rows; ex->next_split++) {
        const struct llt_value * row = t->values + ex->next_split * t->n_cols;
        const int64_t step = split_int(t, row, "step");
        if (step > s->step) break;
        if (step < s->step || split_val(t, row, "t_end_ns")->type == LLT_VALUE_NULL) continue; // untimed
        const char * device = split_text(t, row, "device");
        const int tid = track(ex, device);
        const int64_t begin = split_int(t, row, "t_begin_ns"), compute = split_int(t, row, "t_compute_ns");
        const int64_t end = split_int(t, row, "t_end_ns"), split = split_int(t, row, "split");
        char name[64];
        if (split_int(t, row, "inputs") > 0) {
            snprintf(name, sizeof(name), "inputs of split %lld", (long long) split);
            ch_complete_on(ex, tid, name, "copy", begin, compute - begin);
            fprintf(ex->f, ",\"args\":{\"step\":%lld,\"split\":%lld,\"inputs\":%lld,\"bytes\":%lld}", (long long) step,
                    (long long) split, (long long) split_int(t, row, "inputs"), (long long) split_int(t, row, "input_bytes"));
            event_end(ex);
        }
        snprintf(name, sizeof(name), "split %lld", (long long) split);
        ch_complete_on(ex, tid, name, "split", compute, end - compute);
        fprintf(ex->f, ",\"args\":{\"step\":%lld,\"split\":%lld,\"nodes\":%lld", (long long) step, (long long) split,
                (long long) split_int(t, row, "nodes"));
        put_str(ex->f, "device", device);
        fputc('}', ex->f);
        event_end(ex);
    }
}

static void ch_step(struct exporter * ex, const struct llt_read_step * s, const struct xgraph * g) {
    FILE * f = ex->f;
    char name[64];
    if (s->t_end_ns >= 0) {
        snprintf(name, sizeof(name), "decode %s %lld", llt_read_step_phase(s), (long long) s->step);
        ch_complete(ex, name, "decode", s->t_begin_ns, s->t_end_ns - s->t_begin_ns);
        fprintf(f, ",\"args\":{\"step\":%lld,\"phase\":\"%s\",\"pos0\":%lld,\"n_tokens\":%lld,\"graph_id\":%lld}",
                (long long) s->step, llt_read_step_phase(s), (long long) s->pos0, (long long) s->n_tokens,
                (long long) s->graph_id);
        event_end(ex);
    }
    if (s->compute_end_ns >= 0) {
        ch_complete(ex, "compute", "compute", s->compute_begin_ns, s->compute_end_ns - s->compute_begin_ns);
        fprintf(f, ",\"args\":{\"step\":%lld}", (long long) s->step);
        event_end(ex);
    }
    if (s->t_sample_ns >= 0 && s->t_end_ns >= 0) {
        ch_complete(ex, "sample", "sample", s->t_end_ns, s->t_sample_ns);
        fprintf(f, ",\"args\":{\"step\":%lld}", (long long) s->step);
        event_end(ex);
    }
    ch_splits(ex, s);
    if (!g || ex->timed_step != ex->next_step) return; // nodes: only those of a step with times
    const struct xnode * nodes = ex->nodes + g->first;
    for (int32_t i = 0; i < g->n_nodes; ) {
        int32_t end = i, timed = 0, computing = 0;
        int64_t tb = -1, te = -1;
        while (end < g->n_nodes && nodes[end].layer == nodes[i].layer) {
            if (ex->tb[end] >= 0) {
                timed++;
                if (tb < 0 || ex->tb[end] < tb) tb = ex->tb[end];
                if (ex->te[end] > te) te = ex->te[end];
            }
            computing += !nodes[end].is_noop;
            end++;
        }
        // a layer whose computing nodes were all timed
        if (nodes[i].layer >= 0 && timed > 0 && timed == computing) {
            snprintf(name, sizeof(name), "layer %d", nodes[i].layer);
            ch_complete_on(ex, track(ex, nodes[i].device), name, "layer", tb, te - tb);
            fprintf(f, ",\"args\":{\"step\":%lld,\"layer\":%d,\"nodes\":%d}", (long long) s->step, nodes[i].layer, end - i);
            event_end(ex);
        }
        for (int32_t k = i; k < end; k++) {
            const struct xnode * n = &nodes[k];
            if (ex->tb[k] < 0) continue;
            ch_complete_on(ex, track(ex, n->device), n->name[0] ? n->name : n->op, n->op, ex->tb[k], ex->te[k] - ex->tb[k]);
            fprintf(f, ",\"args\":{\"step\":%lld,\"idx\":%d", (long long) s->step, k);
            put_str(f, "op", n->op);
            put_int(f, "layer", n->layer);
            put_str(f, "dtype", n->type);
            fprintf(f, ",\"shape\":[%lld,%lld,%lld,%lld]", (long long) n->ne[0], (long long) n->ne[1],
                    (long long) n->ne[2], (long long) n->ne[3]);
            put_int(f, "bytes", n->bytes);
            put_str(f, "buffer", n->buffer);
            fputc('}', f);
            event_end(ex);
        }
        i = end;
    }
}

static void ch_begin(struct exporter * ex) {
    FILE * f = ex->f;
    fputs("{\"displayTimeUnit\": \"ns\", \"traceEvents\": [", f);
    const struct llt_value * model = run_value(ex, "model"), * path = run_value(ex, "model_path");
    const struct llt_value * level = run_value(ex, "level"), * id = run_value(ex, "run");
    char name[512];
    snprintf(name, sizeof(name), "lltrace run %lld: %s (%s)", (long long) id->i,
             model->s ? model->s : path->s ? path->s : "", level->s ? level->s : "");
    event_begin(ex);
    fputs("\"name\":\"process_name\",\"ph\":\"M\",\"pid\":1,\"tid\":0,\"args\":{\"name\":", f);
    llt_json_write_string(f, name);
    fputc('}', f);
    event_end(ex);
    event_begin(ex);
    fputs("\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":1,\"tid\":1,\"args\":{\"name\":\"llama_decode\"}", f);
    event_end(ex);
}

static void ch_end(struct exporter * ex) {
    FILE * f = ex->f;
    for (int32_t i = 0; i < ex->n_tokens; i++) {
        const struct llt_read_token * t = &ex->tokens[i].t;
        const struct llt_read_step * s = find_step(ex, t->step);
        if (!s || s->t_begin_ns < 0) continue;
        event_begin(ex);
        fprintf(f, "\"name\":\"token %s\",\"cat\":\"token\",\"ph\":\"i\",\"s\":\"t\",\"pid\":1,\"tid\":1",
                t->prompt ? "prompt" : "gen");
        put_us(f, "ts", t->prompt ? s->t_begin_ns : s->t_end_ns + (s->t_sample_ns > 0 ? s->t_sample_ns : 0));
        fprintf(f, ",\"args\":{\"seq\":%lld,\"step\":%lld,\"pos\":%lld,\"token\":%lld", (long long) t->seq,
                (long long) t->step, (long long) t->pos, (long long) t->token);
        put_str(f, "piece", t->piece);
        fputc('}', f);
        event_end(ex);
    }
    for (int32_t i = 0; i < ex->n_devices; i++) {
        event_begin(ex);
        fprintf(f, "\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":1,\"tid\":%d,\"args\":{\"name\":", 2 + i);
        llt_json_write_string(f, ex->devices[i]);
        fputc('}', f);
        event_end(ex);
    }
    fputs("\n]}\n", f);
}

// ---- the stream of node times ------------------------------------------------------------

// writes steps up to (not including) index until; the gathered times belong to timed_step
static void write_steps_until(struct exporter * ex, int32_t until) {
    for (; ex->next_step < until; ex->next_step++) {
        const struct llt_read_step * s = &ex->steps[ex->next_step];
        const struct xgraph * g = find_graph(ex, s->graph_id);
        const bool timed = ex->timed_step == ex->next_step;
        if (!timed) {
            for (int32_t i = 0; i < ex->max_nodes; i++) ex->tb[i] = ex->te[i] = -1;
        }
        if (ex->format == LLT_EXPORT_CHROME) ch_step(ex, s, g);
        else                                 nd_step(ex, s, g);
        if (timed) ex->timed_step = -1;
    }
}

static int on_time(const struct llt_read_time * r, void * user_data) {
    struct exporter * ex = user_data;
    if (ex->timed_step < 0 || ex->steps[ex->timed_step].step != r->step) {
        const struct llt_read_step * s = find_step(ex, r->step);
        if (!s) return LLT_OK;
        const int32_t si = (int32_t) (s - ex->steps);
        if (si < ex->next_step) return LLT_OK;
        write_steps_until(ex, si); // every step before it, the one gathered included
        ex->timed_step = si;
        for (int32_t i = 0; i < ex->max_nodes; i++) ex->tb[i] = ex->te[i] = -1;
    }
    if (r->idx >= 0 && r->idx < ex->max_nodes) {
        ex->tb[r->idx] = r->t_begin_ns;
        ex->te[r->idx] = r->t_end_ns;
    }
    return LLT_OK;
}

// ---- the export --------------------------------------------------------------------------

int llt_export(struct llt_store * st, int64_t run, int32_t seq, enum llt_export_format format, FILE * f) {
    struct exporter ex = { .f = f, .format = format, .timed_step = -1 };
    struct llt_table_filter filter = llt_table_default_filter();
    filter.run = run;
    int rc = llt_read_table(st, LLT_TABLE_RUN, &filter, &ex.run);
    if (rc == LLT_OK && ex.run->n_rows == 0) {
        rc = llt_set_error(LLT_ENOTFOUND, "trace '%s' has no run %lld", llt_store_path(st), (long long) run);
    }
    const struct llt_read_sel sel = { .run = rc == LLT_OK ? run_value(&ex, "run")->i : 0, .step = -1,
                                      .by_seq = seq >= 0, .seq = seq };
    if (rc == LLT_OK) rc = llt_read_nodes(st, &sel, on_node, &ex);
    if (rc == LLT_OK) rc = llt_read_srcs(st, &sel, on_src, &ex);
    if (rc == LLT_OK) rc = llt_read_steps(st, &sel, on_step, &ex);
    if (rc == LLT_OK) rc = llt_read_tokens(st, &sel, on_token, &ex);
    if (rc == LLT_OK && format == LLT_EXPORT_CHROME) {
        filter.run = sel.run;
        rc = llt_read_table(st, LLT_TABLE_SPLITS, &filter, &ex.splits);
    }
    if (rc == LLT_OK) {
        ex.tb = malloc(((size_t) ex.max_nodes + 1) * sizeof(*ex.tb));
        ex.te = malloc(((size_t) ex.max_nodes + 1) * sizeof(*ex.te));
        if (!ex.tb || !ex.te) rc = oom();
    }
    if (rc == LLT_OK) {
        if (format == LLT_EXPORT_CHROME) ch_begin(&ex);
        else                             nd_session_start(&ex);
        rc = llt_read_times(st, &sel, on_time, &ex);
    }
    if (rc == LLT_OK) {
        if (ex.timed_step >= 0) write_steps_until(&ex, ex.timed_step + 1);
        write_steps_until(&ex, ex.n_steps);
        if (format == LLT_EXPORT_CHROME) ch_end(&ex);
        else                             nd_session_end(&ex);
        // flushed here, so that the cause (a full disk) is known while errno holds it
        if (fflush(f) != 0 || ferror(f)) rc = llt_set_error(LLT_EIO, "cannot write the export: %s", strerror(errno));
    }
    for (int32_t i = 0; i < ex.n_nodes; i++) free(ex.nodes[i].sources);
    for (int32_t i = 0; i < ex.n_tokens; i++) free(ex.tokens[i].piece);
    free(ex.nodes);
    free(ex.graphs);
    free(ex.steps);
    free(ex.tokens);
    free(ex.tb);
    free(ex.te);
    llt_table_rows_free(ex.run);
    llt_table_rows_free(ex.splits);
    free(ex.devices);
    return rc;
}
