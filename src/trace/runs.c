// A run's own rows: its row in `runs`, its weight registry, its end, its death, and its parity
// records read back. Capture and recovery hand plain structs here; this is their SQL.
#include "trace/runs.h"
#include "trace/db.h"

#include <stdlib.h>
#include <string.h>

// a run's interventions, numbered from base on (table intervention_specs)
static int insert_ivs(struct llt_store * st, int64_t run_id, int32_t base, const struct llt_run_iv * ivs, int32_t n) {
    if (n <= 0) return LLT_OK;
    sqlite3_stmt * s = llt_store_prepare(st, "INSERT INTO intervention_specs(run_id, iv, kind, node, params) VALUES(?,?,?,?,?)");
    int rc = s ? LLT_OK : LLT_EIO;
    for (int32_t i = 0; s && rc == LLT_OK && i < n; i++) {
        sqlite3_bind_int64(s, 1, run_id);
        sqlite3_bind_int(s, 2, base + i);
        llt_store_bind_text(s, 3, ivs[i].kind);
        llt_store_bind_text(s, 4, ivs[i].node);
        llt_store_bind_text(s, 5, ivs[i].params);
        rc = llt_store_step_done(st, s);
    }
    sqlite3_finalize(s);
    return rc;
}

int llt_trace_run_begin(struct llt_store * st, const struct llt_run_begin * r, const struct llt_registry * reg,
                        int64_t * run_id) {
    int rc = llt_store_begin(st);
    sqlite3_stmt * s = rc == LLT_OK ? llt_store_prepare(st,
        "INSERT INTO runs(started_at, status, level, lltrace_version, llama_tag, system_info,"
        " model_path, model_name, model_arch, model_desc, n_layer, n_embd, n_head, n_head_kv,"
        " n_vocab, n_ctx_train, file_type, model_bytes, model_params, params, prompt, name)"
        " VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)") : NULL;
    if (s) {
        int i = 1;
        llt_store_bind_text(s, i++, r->started_at);
        llt_store_bind_text(s, i++, llt_run_status_name(LLT_RUN_RUNNING));
        llt_store_bind_text(s, i++, r->level);
        llt_store_bind_text(s, i++, llt_version());
        llt_store_bind_text(s, i++, llt_llama_tag());
        llt_store_bind_text(s, i++, r->system_info);
        llt_store_bind_text(s, i++, r->model_path);
        llt_store_bind_text(s, i++, r->model_name);
        llt_store_bind_text(s, i++, r->model_arch);
        llt_store_bind_text(s, i++, r->model_desc);
        sqlite3_bind_int(s, i++, r->n_layer);
        sqlite3_bind_int(s, i++, r->n_embd);
        sqlite3_bind_int(s, i++, r->n_head);
        sqlite3_bind_int(s, i++, r->n_head_kv);
        sqlite3_bind_int(s, i++, r->n_vocab);
        sqlite3_bind_int(s, i++, r->n_ctx_train);
        llt_store_bind_text(s, i++, r->file_type);
        sqlite3_bind_int64(s, i++, r->model_bytes);
        sqlite3_bind_int64(s, i++, r->model_params);
        llt_store_bind_text(s, i++, r->params);
        llt_store_bind_text(s, i++, r->prompt);
        llt_store_bind_text(s, i++, r->name ? r->name : "");
        rc = llt_store_step_done(st, s);
        sqlite3_finalize(s);
    } else if (rc == LLT_OK) {
        rc = LLT_EIO;
    }
    *run_id = rc == LLT_OK ? sqlite3_last_insert_rowid(st->db) : 0;

    s = rc == LLT_OK ? llt_store_prepare(st,
        "INSERT INTO weights(run_id, id, name, type, n_dims, ne0, ne1, ne2, ne3, bytes, bpw, layer, file_offset)"
        " VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?)") : NULL;
    if (rc == LLT_OK && !s) rc = LLT_EIO;
    for (int w = 0; s && rc == LLT_OK && w < llt_registry_count(reg); w++) {
        const struct llt_weight * wt = llt_registry_get(reg, w);
        sqlite3_bind_int64(s, 1, *run_id);
        sqlite3_bind_int(s, 2, w);
        llt_store_bind_text(s, 3, wt->name);
        llt_store_bind_text(s, 4, ggml_type_name((enum ggml_type) wt->type));
        sqlite3_bind_int(s, 5, wt->n_dims);
        for (int d = 0; d < 4; d++) sqlite3_bind_int64(s, 6 + d, wt->ne[d]);
        sqlite3_bind_int64(s, 10, (int64_t) wt->bytes);
        sqlite3_bind_double(s, 11, wt->bpw);
        sqlite3_bind_int(s, 12, wt->layer);
        sqlite3_bind_int64(s, 13, (int64_t) wt->file_offset);
        rc = llt_store_step_done(st, s);
    }
    sqlite3_finalize(s);
    if (rc == LLT_OK) rc = insert_ivs(st, *run_id, 0, r->ivs, r->n_ivs);
    if (rc == LLT_OK) rc = llt_store_commit(st);
    if (rc != LLT_OK) llt_store_rollback(st);
    return rc;
}

int llt_trace_run_end(struct llt_store * st, int64_t run_id, const struct llt_run_end * e) {
    int rc = llt_store_begin(st);
    sqlite3_stmt * s = rc == LLT_OK ? llt_store_prepare(st,
        "UPDATE runs SET ended_at=?, status=?, error=?, output=?, n_prompt=?, n_gen=?,"
        " t_prompt_ns=?, t_gen_ns=?, dump_path=?, nan_report=?, t_tokenize_ns=? WHERE id=?") : NULL;
    if (s) {
        llt_store_bind_text(s, 1, e->ended_at);
        llt_store_bind_text(s, 2, e->status);
        llt_store_bind_text(s, 3, e->error);
        llt_store_bind_text(s, 4, e->output);
        sqlite3_bind_int(s, 5, e->n_prompt);
        sqlite3_bind_int(s, 6, e->n_gen);
        sqlite3_bind_int64(s, 7, e->t_prompt_ns);
        sqlite3_bind_int64(s, 8, e->t_gen_ns);
        llt_store_bind_text(s, 9, e->dump_path);
        llt_store_bind_text(s, 10, e->nan_report);
        sqlite3_bind_int64(s, 11, e->t_tokenize_ns);
        sqlite3_bind_int64(s, 12, run_id);
        rc = llt_store_step_done(st, s);
        sqlite3_finalize(s);
    } else if (rc == LLT_OK) {
        rc = LLT_EIO;
    }
    rc = rc == LLT_OK ? insert_ivs(st, run_id, e->iv_base, e->ivs_added, e->n_ivs_added) : rc;
    s = rc == LLT_OK ? llt_store_prepare(st, "UPDATE weights SET buffer=? WHERE run_id=? AND id=?") : NULL;
    if (rc == LLT_OK && !s) rc = LLT_EIO;
    for (int32_t w = 0; s && rc == LLT_OK && w < e->n_weights; w++) {
        if (!e->weight_buffers[w]) continue;
        llt_store_bind_text(s, 1, e->weight_buffers[w]);
        sqlite3_bind_int64(s, 2, run_id);
        sqlite3_bind_int(s, 3, w);
        rc = llt_store_step_done(st, s);
    }
    sqlite3_finalize(s);
    if (rc == LLT_OK) rc = llt_store_commit(st);
    if (rc != LLT_OK) llt_store_rollback(st);
    return rc;
}

int llt_trace_run_killed(struct llt_store * st, int64_t run_id, const char * note) {
    char ended[32];
    llt_utc_now(ended, sizeof(ended));
    sqlite3_stmt * s = llt_store_prepare(st,
        "UPDATE runs SET status='killed', ended_at=?1,"
        " n_prompt=(SELECT count(*) FROM tokens WHERE run_id=?2 AND role='prompt'),"
        " n_gen=(SELECT count(*) FROM tokens WHERE run_id=?2 AND role='gen'),"
        " error=coalesce(?3, error)"
        " WHERE id=?2 AND status='running'");
    if (!s) return LLT_EIO;
    llt_store_bind_text(s, 1, ended);
    sqlite3_bind_int64(s, 2, run_id);
    llt_store_bind_text(s, 3, note);
    int rc = llt_store_step_done(st, s);
    sqlite3_finalize(s);
    return rc;
}

int llt_trace_weight_names(struct llt_store * st, int64_t run_id, char *** out, int32_t * n_out) {
    *out = NULL;
    *n_out = 0;
    sqlite3_stmt * s = llt_store_prepare(st, "SELECT id, name FROM weights WHERE run_id=? AND id >= 0 ORDER BY id");
    if (!s) return LLT_EIO;
    sqlite3_bind_int64(s, 1, run_id);
    char ** names = NULL;
    int32_t cap = 0, n = 0;
    int rc = LLT_OK, step;
    while (rc == LLT_OK && (step = sqlite3_step(s)) == SQLITE_ROW) {
        const int64_t id = sqlite3_column_int64(s, 0);
        const char * name = (const char *) sqlite3_column_text(s, 1);
        if (id >= INT32_MAX || !llt_grow((void **) &names, &cap, (int32_t) id + 1, sizeof(char *)) ||
            (name && !(names[id] = strdup(name)))) {
            rc = llt_set_error(LLT_ENOMEM, "out of memory");
        } else if (id + 1 > n) {
            n = (int32_t) id + 1;
        }
    }
    if (rc == LLT_OK && step != SQLITE_DONE) rc = llt_set_error(LLT_EIO, "trace '%s': %s", st->path, sqlite3_errmsg(st->db));
    sqlite3_finalize(s);
    if (rc != LLT_OK) {
        llt_trace_names_free(names, cap);
        return rc;
    }
    *out = names;
    *n_out = n;
    return LLT_OK;
}

void llt_trace_names_free(char ** names, int32_t n) {
    for (int32_t i = 0; names && i < n; i++) free(names[i]);
    free(names);
}

int llt_trace_parity_each(struct llt_store * st, int64_t run_id,
                          int (*fn)(const struct llt_trace_parity_row * row, void * user_data), void * user_data) {
    sqlite3_stmt * s = llt_store_prepare(st, "SELECT step, pos, token, piece, top_k, seq_id FROM parity WHERE run_id = ? ORDER BY step");
    if (!s) return LLT_EIO;
    sqlite3_bind_int64(s, 1, run_id);
    int rc = LLT_OK, step, n = 0;
    while (rc == LLT_OK && (step = sqlite3_step(s)) == SQLITE_ROW) {
        const char * piece = (const char *) sqlite3_column_text(s, 3);
        const char * top_k = (const char *) sqlite3_column_text(s, 4);
        const struct llt_trace_parity_row row = {
            .step = sqlite3_column_int(s, 0),
            .pos = sqlite3_column_type(s, 1) == SQLITE_NULL ? -1 : sqlite3_column_int(s, 1),
            .token = sqlite3_column_int(s, 2),
            .piece = piece ? piece : "",
            .top_k = top_k ? top_k : "",
            .seq_id = sqlite3_column_int(s, 5),
        };
        rc = fn(&row, user_data);
        n++;
    }
    if (rc == LLT_OK && step != SQLITE_DONE) rc = llt_set_error(LLT_EIO, "trace '%s': %s", st->path, sqlite3_errmsg(st->db));
    sqlite3_finalize(s);
    if (rc == LLT_OK && n == 0) {
        rc = llt_set_error(LLT_ENOTFOUND, "trace '%s', run %lld has no parity records",
                           st->path, (long long) run_id);
    }
    return rc;
}
