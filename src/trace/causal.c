// A causal tracing result in the trace (tables causal and causal_cells, schema version 7):
// written once the grid is complete, in one transaction, and read back whole.
#include "trace/causal.h"
#include "trace/db.h"

#include <stdlib.h>
#include <string.h>

// ---- writing -----------------------------------------------------------------------------

int llt_trace_causal_write(struct llt_store * st, struct llt_causal_result * r) {
    int rc = llt_store_begin(st);
    sqlite3_stmt * s = rc == LLT_OK ? llt_store_prepare(st,
        "INSERT INTO causal(clean_run, corrupt_run, node, answer, answer_piece, corrupt_top, corrupt_top_piece,"
        " clean_p, corrupt_p, clean_logit_diff, corrupt_logit_diff, n_layer, n_pos, none_is_corrupt, last_is_clean)"
        " VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)") : NULL;
    if (s) {
        int i = 1;
        sqlite3_bind_int64(s, i++, r->clean_run);
        sqlite3_bind_int64(s, i++, r->corrupt_run);
        llt_store_bind_text(s, i++, r->node);
        sqlite3_bind_int(s, i++, r->answer);
        llt_store_bind_text(s, i++, r->answer_piece);
        sqlite3_bind_int(s, i++, r->corrupt_top);
        llt_store_bind_text(s, i++, r->corrupt_piece);
        sqlite3_bind_double(s, i++, r->clean_p);
        sqlite3_bind_double(s, i++, r->corrupt_p);
        sqlite3_bind_double(s, i++, r->clean_ld);
        sqlite3_bind_double(s, i++, r->corrupt_ld);
        sqlite3_bind_int(s, i++, r->n_layer);
        sqlite3_bind_int(s, i++, r->n_pos);
        sqlite3_bind_int(s, i++, r->none_is_corrupt);
        if (r->last_checked) sqlite3_bind_int(s, i++, r->last_is_clean); else sqlite3_bind_null(s, i++);
        rc = llt_store_step_done(st, s);
        sqlite3_finalize(s);
    } else if (rc == LLT_OK) {
        rc = LLT_EIO;
    }
    const int64_t id = rc == LLT_OK ? sqlite3_last_insert_rowid(st->db) : 0;
    s = rc == LLT_OK ? llt_store_prepare(st,
        "INSERT INTO causal_cells(causal_id, layer, pos, token, clean_token, p, logit_diff, n_changed) VALUES(?,?,?,?,?,?,?,?)") : NULL;
    if (rc == LLT_OK && !s) rc = LLT_EIO;
    for (int64_t k = 0; s && rc == LLT_OK && k < (int64_t) r->n_layer * r->n_pos; k++) {
        const struct llt_causal_cell * c = &r->cells[k];
        sqlite3_bind_int64(s, 1, id);
        sqlite3_bind_int(s, 2, c->layer);
        sqlite3_bind_int(s, 3, c->pos);
        llt_store_bind_text(s, 4, r->pieces[c->pos]);
        llt_store_bind_text(s, 5, r->clean_pieces[c->pos]);
        sqlite3_bind_double(s, 6, c->p);
        sqlite3_bind_double(s, 7, c->logit_diff);
        sqlite3_bind_int64(s, 8, c->n_changed);
        rc = llt_store_step_done(st, s);
    }
    sqlite3_finalize(s);
    if (rc == LLT_OK) rc = llt_store_commit(st);
    if (rc != LLT_OK) llt_store_rollback(st);
    else r->id = id;
    return rc;
}

// ---- reading -----------------------------------------------------------------------------

static const char * text_of(sqlite3_stmt * s, int col) {
    const unsigned char * t = sqlite3_column_text(s, col);
    return t ? (const char *) t : "";
}

// the result's id: the last of the trace (run 0), or the last whose clean or corrupted run is run
static int find(struct llt_store * st, int64_t run, int64_t * id) {
    sqlite3_stmt * s = llt_store_prepare(st,
        "SELECT max(id) FROM causal WHERE ?1 = 0 OR clean_run = ?1 OR corrupt_run = ?1");
    if (!s) return LLT_EIO;
    sqlite3_bind_int64(s, 1, run);
    int rc = sqlite3_step(s) == SQLITE_ROW ? LLT_OK
                                           : llt_set_error(LLT_EIO, "trace '%s': %s", st->path, sqlite3_errmsg(st->db));
    *id = rc == LLT_OK ? sqlite3_column_int64(s, 0) : 0; // NULL (none) reads 0
    sqlite3_finalize(s);
    if (rc == LLT_OK && *id == 0) {
        rc = run ? llt_set_error(LLT_ENOTFOUND, "trace '%s' has no causal tracing result of run %lld", st->path, (long long) run)
                 : llt_set_error(LLT_ENOTFOUND, "trace '%s' has no causal tracing result", st->path);
    }
    return rc;
}

// the result's own row; the grid's arrays allocated for its size
static int read_head(struct llt_store * st, int64_t id, struct llt_causal_result * r) {
    sqlite3_stmt * s = llt_store_prepare(st,
        "SELECT node, answer, answer_piece, corrupt_top, corrupt_top_piece, clean_p, corrupt_p, clean_logit_diff,"
        " corrupt_logit_diff, n_layer, n_pos, none_is_corrupt, last_is_clean, clean_run, corrupt_run FROM causal WHERE id = ?");
    if (!s) return LLT_EIO;
    sqlite3_bind_int64(s, 1, id);
    int rc = sqlite3_step(s) == SQLITE_ROW ? LLT_OK : llt_set_error(LLT_EIO, "trace '%s': %s", st->path, sqlite3_errmsg(st->db));
    if (rc == LLT_OK) {
        r->id = id;
        snprintf(r->node, sizeof(r->node), "%s", text_of(s, 0));
        r->answer = sqlite3_column_int(s, 1);
        snprintf(r->answer_piece, sizeof(r->answer_piece), "%s", text_of(s, 2));
        r->corrupt_top = sqlite3_column_int(s, 3);
        snprintf(r->corrupt_piece, sizeof(r->corrupt_piece), "%s", text_of(s, 4));
        r->clean_p = sqlite3_column_double(s, 5);
        r->corrupt_p = sqlite3_column_double(s, 6);
        r->clean_ld = sqlite3_column_double(s, 7);
        r->corrupt_ld = sqlite3_column_double(s, 8);
        const int64_t n_layer = sqlite3_column_int64(s, 9), n_pos = sqlite3_column_int64(s, 10);
        r->none_is_corrupt = sqlite3_column_int(s, 11) != 0;
        r->last_checked = sqlite3_column_type(s, 12) != SQLITE_NULL;
        r->last_is_clean = sqlite3_column_int(s, 12) != 0;
        r->clean_run = sqlite3_column_int64(s, 13);
        r->corrupt_run = sqlite3_column_int64(s, 14);
        // a trace is untrusted input: the grid's size is checked before it is allocated
        if (n_layer < 1 || n_pos < 1 || n_layer > 100000 || n_pos > 1000000 || n_layer * n_pos > 100000000) {
            rc = llt_set_error(LLT_EFORMAT, "trace '%s': causal result %lld has a grid of %lld x %lld", st->path,
                               (long long) id, (long long) n_layer, (long long) n_pos);
        } else {
            r->n_layer = (int32_t) n_layer;
            r->n_pos = (int32_t) n_pos;
        }
    }
    sqlite3_finalize(s);
    if (rc != LLT_OK) return rc;
    r->cells = calloc((size_t) r->n_layer * (size_t) r->n_pos, sizeof(*r->cells));
    r->pieces = calloc((size_t) r->n_pos, sizeof(char *));
    r->clean_pieces = calloc((size_t) r->n_pos, sizeof(char *));
    if (!r->cells || !r->pieces || !r->clean_pieces) return llt_set_error(LLT_ENOMEM, "out of memory");
    for (int32_t l = 0; l < r->n_layer; l++) {
        for (int32_t p = 0; p < r->n_pos; p++) {
            struct llt_causal_cell * c = &r->cells[(size_t) l * (size_t) r->n_pos + (size_t) p];
            c->layer = l;
            c->pos = p;
        }
    }
    return LLT_OK;
}

// the cells; one the trace lacks stays as it was (p 0, n_changed 0), one outside the grid is an error
static int read_cells(struct llt_store * st, struct llt_causal_result * r) {
    sqlite3_stmt * s = llt_store_prepare(st,
        "SELECT layer, pos, token, clean_token, p, logit_diff, n_changed FROM causal_cells WHERE causal_id = ? ORDER BY layer, pos");
    if (!s) return LLT_EIO;
    sqlite3_bind_int64(s, 1, r->id);
    int rc = LLT_OK, step_rc;
    while (rc == LLT_OK && (step_rc = sqlite3_step(s)) == SQLITE_ROW) {
        const int64_t l = sqlite3_column_int64(s, 0), p = sqlite3_column_int64(s, 1);
        if (l < 0 || l >= r->n_layer || p < 0 || p >= r->n_pos) {
            rc = llt_set_error(LLT_EFORMAT, "trace '%s': causal result %lld has a cell at layer %lld, position %lld, outside its"
                               " %d x %d grid", st->path, (long long) r->id, (long long) l, (long long) p, r->n_layer, r->n_pos);
            break;
        }
        struct llt_causal_cell * c = &r->cells[l * r->n_pos + p];
        c->p = sqlite3_column_double(s, 4);
        c->logit_diff = sqlite3_column_double(s, 5);
        c->n_changed = sqlite3_column_int64(s, 6);
        if (!r->pieces[p] && !(r->pieces[p] = strdup(text_of(s, 2)))) rc = llt_set_error(LLT_ENOMEM, "out of memory");
        if (!r->clean_pieces[p] && !(r->clean_pieces[p] = strdup(text_of(s, 3)))) rc = llt_set_error(LLT_ENOMEM, "out of memory");
    }
    if (rc == LLT_OK && step_rc != SQLITE_DONE) rc = llt_set_error(LLT_EIO, "trace '%s': %s", st->path, sqlite3_errmsg(st->db));
    sqlite3_finalize(s);
    for (int32_t p = 0; rc == LLT_OK && p < r->n_pos; p++) { // a position without cells: no text
        if (!r->pieces[p] && !(r->pieces[p] = strdup(""))) rc = llt_set_error(LLT_ENOMEM, "out of memory");
        if (!r->clean_pieces[p] && !(r->clean_pieces[p] = strdup(""))) rc = llt_set_error(LLT_ENOMEM, "out of memory");
    }
    return rc;
}

int llt_read_causal(struct llt_store * st, int64_t run, struct llt_causal_result * out) {
    memset(out, 0, sizeof(*out));
    int64_t id = 0;
    int rc = find(st, run, &id);
    if (rc == LLT_OK) rc = read_head(st, id, out);
    if (rc == LLT_OK) rc = read_cells(st, out);
    if (rc != LLT_OK) {
        char why[512];
        snprintf(why, sizeof(why), "%s", llt_last_error());
        llt_causal_result_free(out);
        llt_set_error(rc, "%s", why);
    }
    return rc;
}
