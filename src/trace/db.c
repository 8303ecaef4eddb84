// Statements on a trace: the few helpers every SQL-running file of the trace layer uses, so
// each failure becomes one libgit2-style message naming the trace.
#include "trace/db.h"

#include <stdlib.h>
#include <string.h>

int llt_store_exec(struct llt_store * st, const char * sql) {
    char * msg = NULL;
    if (sqlite3_exec(st->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        llt_set_error(LLT_EIO, "trace '%s': %s", st->path, msg ? msg : sqlite3_errmsg(st->db));
        sqlite3_free(msg);
        return LLT_EIO;
    }
    return LLT_OK;
}

static int run_cached(struct llt_store * st, sqlite3_stmt ** stmt, const char * sql) {
    if (!*stmt && !(*stmt = llt_store_prepare(st, sql))) return LLT_EIO;
    return llt_store_step_done(st, *stmt);
}

int llt_store_begin (struct llt_store * st) { return run_cached(st, &st->begin, "BEGIN"); }
int llt_store_commit(struct llt_store * st) { return run_cached(st, &st->commit, "COMMIT"); }

void llt_store_rollback(struct llt_store * st) {
    if (!sqlite3_get_autocommit(st->db)) {
        sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
    }
}

sqlite3_stmt * llt_store_prepare(struct llt_store * st, const char * sql) {
    sqlite3_stmt * stmt = NULL;
    if (sqlite3_prepare_v2(st->db, sql, -1, &stmt, NULL) != SQLITE_OK) {
        llt_set_error(LLT_EIO, "trace '%s': %s", st->path, sqlite3_errmsg(st->db));
        return NULL;
    }
    return stmt;
}

void llt_store_bind_text(sqlite3_stmt * stmt, int i, const char * text) {
    const size_t n = text ? strlen(text) : 0;
    if (!text || llt_utf8_valid(text, n)) {
        sqlite3_bind_text(stmt, i, text, (int) n, SQLITE_TRANSIENT); // sqlite binds a NULL string as NULL
        return;
    }
    char * valid = malloc(n * 3 + 1);
    if (!valid) {
        sqlite3_bind_null(stmt, i); // out of memory: no text rather than invalid text
        return;
    }
    const size_t len = llt_utf8_copy(valid, n * 3 + 1, text, n);
    sqlite3_bind_text(stmt, i, valid, (int) len, free);
}

int llt_store_step_done(struct llt_store * st, sqlite3_stmt * stmt) {
    int rc = sqlite3_step(stmt);
    sqlite3_reset(stmt);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
        return llt_set_error(LLT_EIO, "trace '%s': %s", st->path, sqlite3_errmsg(st->db));
    }
    return LLT_OK;
}

const char * llt_store_path(const struct llt_store * st) {
    return st->path;
}

struct sqlite3 * llt_store_db(struct llt_store * st) {
    return st->db;
}
