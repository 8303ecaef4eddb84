// The trace store: one SQLite database per trace file, schema in docs/trace-format.md.
//
// Opening never modifies a file that is not an lltrace trace: the application id and schema
// version are checked with read-only queries before anything is written.
#include "trace/batch.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct llt_store {
    sqlite3 *      db;
    sqlite3_stmt * begin, * commit; // prepared once: a transaction per decode step
    char           path[1024];
};

// ---- schema ------------------------------------------------------------------------------

static const char * schema_sql =
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT);\n"
    "CREATE TABLE runs(\n"
    "  id INTEGER PRIMARY KEY, started_at TEXT, ended_at TEXT, status TEXT, error TEXT,\n"
    "  level TEXT, lltrace_version TEXT, llama_tag TEXT, system_info TEXT,\n"
    "  model_path TEXT, model_name TEXT, model_arch TEXT, model_desc TEXT,\n"
    "  n_layer INTEGER, n_embd INTEGER, n_head INTEGER, n_head_kv INTEGER, n_vocab INTEGER,\n"
    "  n_ctx_train INTEGER, file_type TEXT, model_bytes INTEGER, model_params INTEGER,\n"
    "  params TEXT, prompt TEXT, output TEXT, n_prompt INTEGER, n_gen INTEGER,\n"
    "  t_prompt_ns INTEGER, t_gen_ns INTEGER, dump_path TEXT, nan_report TEXT, t_tokenize_ns INTEGER);\n"
    "CREATE TABLE weights(\n"
    "  run_id INTEGER, id INTEGER, name TEXT, type TEXT, n_dims INTEGER,\n"
    "  ne0 INTEGER, ne1 INTEGER, ne2 INTEGER, ne3 INTEGER, bytes INTEGER, bpw REAL,\n"
    "  layer INTEGER, file_offset INTEGER, buffer TEXT,\n"
    "  PRIMARY KEY(run_id, id)) WITHOUT ROWID;\n"
    "CREATE TABLE graphs(id INTEGER PRIMARY KEY, run_id INTEGER, n_nodes INTEGER);\n"
    "CREATE TABLE nodes(\n"
    "  graph_id INTEGER, idx INTEGER, op TEXT, name TEXT, layer INTEGER, type TEXT,\n"
    "  ne0 INTEGER, ne1 INTEGER, ne2 INTEGER, ne3 INTEGER, bytes INTEGER,\n"
    "  is_view INTEGER, is_noop INTEGER, buffer TEXT,\n"
    "  PRIMARY KEY(graph_id, idx)) WITHOUT ROWID;\n"
    "CREATE TABLE node_srcs(\n"
    "  graph_id INTEGER, idx INTEGER, slot INTEGER, kind TEXT, src_idx INTEGER,\n"
    "  weight_id INTEGER, name TEXT, bytes INTEGER,\n"
    "  PRIMARY KEY(graph_id, idx, slot)) WITHOUT ROWID;\n"
    "CREATE TABLE steps(\n"
    "  run_id INTEGER, step INTEGER, decode INTEGER, phase TEXT, pos0 INTEGER,\n"
    "  n_tokens INTEGER, graph_id INTEGER, t_begin_ns INTEGER, t_end_ns INTEGER,\n"
    "  compute_begin_ns INTEGER, compute_end_ns INTEGER, t_sample_ns INTEGER,\n"
    "  PRIMARY KEY(run_id, step)) WITHOUT ROWID;\n"
    "CREATE TABLE tokens(\n"
    "  run_id INTEGER, seq INTEGER, role TEXT, step INTEGER, pos INTEGER, token INTEGER,\n"
    "  piece TEXT, PRIMARY KEY(run_id, seq)) WITHOUT ROWID;\n"
    "CREATE TABLE parity(\n"
    "  run_id INTEGER, step INTEGER, pos INTEGER, token INTEGER, piece TEXT, top_k TEXT,\n"
    "  PRIMARY KEY(run_id, step)) WITHOUT ROWID;\n"
    "CREATE TABLE step_times(\n"
    "  run_id INTEGER, step INTEGER, times TEXT,\n"
    "  PRIMARY KEY(run_id, step)) WITHOUT ROWID;\n"
    "CREATE VIEW node_times AS\n"
    "  SELECT st.run_id AS run_id, st.step AS step, j.value->>0 AS idx,\n"
    "         j.value->>1 AS t_begin_ns, j.value->>2 AS t_end_ns\n"
    "  FROM step_times st, json_each(st.times) j;\n"
    "CREATE TABLE node_stats(\n"
    "  run_id INTEGER, step INTEGER, idx INTEGER, n INTEGER, n_nan INTEGER, n_pinf INTEGER,\n"
    "  n_ninf INTEGER, n_zero INTEGER, min REAL, max REAL, mean REAL, std REAL, absmax REAL,\n"
    "  PRIMARY KEY(run_id, step, idx)) WITHOUT ROWID;\n"
    "CREATE TABLE node_diffs(\n"
    "  run_id INTEGER, step INTEGER, idx INTEGER, name TEXT, shape_ok INTEGER, n INTEGER,\n"
    "  max_abs REAL, mean_abs REAL, max_rel REAL, mean_rel REAL, rmse REAL, nmse REAL, cosine REAL,\n"
    "  ref_nonfinite INTEGER, nonfinite INTEGER, n_exceed INTEGER, max_abs_index INTEGER,\n"
    "  within INTEGER, n_finite INTEGER, n_nonfinite_pairs INTEGER,\n"
    "  PRIMARY KEY(run_id, step, idx)) WITHOUT ROWID;\n"
    "CREATE VIEW step_nodes AS\n"
    "  SELECT s.run_id AS run_id, s.step AS step, s.phase AS phase, n.*\n"
    "  FROM steps s JOIN nodes n ON n.graph_id = s.graph_id;\n"
    "INSERT INTO meta VALUES('format', 'lltrace-trace');\n";

// ---- helpers -----------------------------------------------------------------------------

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

int llt_store_step_done(struct llt_store * st, sqlite3_stmt * stmt) {
    int rc = sqlite3_step(stmt);
    sqlite3_reset(stmt);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
        return llt_set_error(LLT_EIO, "trace '%s': %s", st->path, sqlite3_errmsg(st->db));
    }
    return LLT_OK;
}

static int query_int(sqlite3 * db, const char * sql, int64_t * out) {
    sqlite3_stmt * stmt = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &stmt, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(stmt);
        if (rc == SQLITE_ROW) {
            *out = sqlite3_column_int64(stmt, 0);
            rc = SQLITE_OK;
        }
    }
    sqlite3_finalize(stmt);
    return rc;
}

// Checks that db is an lltrace trace of a known version. *is_empty: a new, empty database.
static int check_trace(struct llt_store * st, bool * is_empty) {
    int64_t app_id = 0, version = 0, n_tables = 0;
    int rc = query_int(st->db, "PRAGMA application_id", &app_id);
    if (rc == SQLITE_OK) rc = query_int(st->db, "PRAGMA user_version", &version);
    if (rc == SQLITE_OK) rc = query_int(st->db, "SELECT count(*) FROM sqlite_master", &n_tables);
    if (rc == SQLITE_NOTADB || rc == SQLITE_CORRUPT) {
        return llt_set_error(LLT_EFORMAT, "'%s' is not an lltrace trace (not an SQLite database)", st->path);
    }
    if (rc != SQLITE_OK) {
        return llt_set_error(LLT_EIO, "cannot read trace '%s': %s", st->path, sqlite3_errmsg(st->db));
    }
    *is_empty = app_id == 0 && version == 0 && n_tables == 0;
    if (*is_empty) {
        return LLT_OK;
    }
    if (app_id != LLT_STORE_APPLICATION_ID) {
        return llt_set_error(LLT_EFORMAT, "'%s' is not an lltrace trace (an SQLite database of another application)", st->path);
    }
    if (version > LLT_STORE_SCHEMA_VERSION || version < 1) {
        return llt_set_error(LLT_EVERSION, "trace '%s' has schema version %lld; this lltrace knows version %d",
                             st->path, (long long) version, LLT_STORE_SCHEMA_VERSION);
    }
    return LLT_OK;
}

// Creates the schema of an empty database. Under a write lock taken first: two processes that
// create one trace at once make it once (the second finds the tables and checks them).
static int create_schema(struct llt_store * st) {
    char pragmas[128];
    snprintf(pragmas, sizeof(pragmas), "PRAGMA application_id=%d; PRAGMA user_version=%d;",
             LLT_STORE_APPLICATION_ID, LLT_STORE_SCHEMA_VERSION);
    char version_row[128];
    snprintf(version_row, sizeof(version_row), "INSERT INTO meta VALUES('schema_version', '%d');",
             LLT_STORE_SCHEMA_VERSION);
    int rc = llt_store_exec(st, "BEGIN IMMEDIATE");
    int64_t n_tables = 0;
    if (rc == LLT_OK && query_int(st->db, "SELECT count(*) FROM sqlite_master", &n_tables) != SQLITE_OK) {
        rc = llt_set_error(LLT_EIO, "trace '%s': %s", st->path, sqlite3_errmsg(st->db));
    }
    const bool create = rc == LLT_OK && n_tables == 0;
    if (create) rc = llt_store_exec(st, schema_sql);
    if (create && rc == LLT_OK) rc = llt_store_exec(st, version_row);
    if (create && rc == LLT_OK) rc = llt_store_exec(st, pragmas);
    if (rc == LLT_OK) rc = llt_store_commit(st);
    if (rc != LLT_OK) {
        llt_store_rollback(st);
        return rc;
    }
    bool is_empty = false;
    return create ? LLT_OK : check_trace(st, &is_empty); // made by another process meanwhile
}

// ---- open / close ------------------------------------------------------------------------

// Makes a new, empty trace at path without ever showing a half-made one: the schema is
// created in a file of its own, which is then linked into place. When another process got
// there first, its trace is kept (link() does not replace).
static int create_trace(const char * path) {
    char tmp[1100];
    snprintf(tmp, sizeof(tmp), "%s.new.%d", path, (int) getpid());
    struct llt_store st = {0};
    snprintf(st.path, sizeof(st.path), "%s", path);
    int rc = LLT_OK;
    if (sqlite3_open_v2(tmp, &st.db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK) {
        rc = llt_set_error(LLT_EIO, "cannot create trace '%s': %s", path, st.db ? sqlite3_errmsg(st.db) : "out of memory");
    }
    // WAL + synchronous=NORMAL: commits cost no fsync, and a killed process leaves every
    // committed transaction in the file; step logs of killed runs hold the rest
    if (rc == LLT_OK) rc = llt_store_exec(&st, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;");
    if (rc == LLT_OK) rc = create_schema(&st);
    sqlite3_finalize(st.begin);
    sqlite3_finalize(st.commit);
    if (st.db) sqlite3_close_v2(st.db);
    if (rc == LLT_OK && link(tmp, path) != 0 && errno != EEXIST) {
        rc = llt_set_error(LLT_EIO, "cannot create trace '%s': %s", path, strerror(errno));
    }
    unlink(tmp);
    return rc;
}

static int store_open(const char * path, enum llt_store_mode mode, bool recover, struct llt_store ** out) {
    *out = NULL;
    struct stat sb;
    bool exists = stat(path, &sb) == 0;
    if (!exists && mode == LLT_STORE_READ) {
        return llt_set_error(LLT_EIO, "cannot open trace '%s': %s", path, strerror(errno));
    }
    if (exists && S_ISDIR(sb.st_mode)) {
        return llt_set_error(LLT_EIO, "cannot open trace '%s': it is a directory", path);
    }
    if (!exists) {
        int rc = create_trace(path);
        if (rc != LLT_OK) return rc;
    }

    struct llt_store * st = calloc(1, sizeof(*st));
    if (!st) return llt_set_error(LLT_ENOMEM, "out of memory");
    snprintf(st->path, sizeof(st->path), "%s", path);

    int rc = LLT_OK;
    if (sqlite3_open_v2(path, &st->db, mode == LLT_STORE_READ ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
        rc = llt_set_error(LLT_EIO, "cannot open trace '%s': %s", path,
                           st->db ? sqlite3_errmsg(st->db) : "out of memory");
        goto done;
    }
    sqlite3_busy_timeout(st->db, 5000);

    bool is_empty = false;
    rc = check_trace(st, &is_empty);
    if (rc != LLT_OK) goto done;
    if (is_empty && mode == LLT_STORE_READ) {
        rc = llt_set_error(LLT_EFORMAT, "'%s' is not an lltrace trace (empty)", path);
        goto done;
    }
    if (mode == LLT_STORE_WRITE) {
        // an existing empty file becomes a trace in place; a trace is switched to WAL if
        // something else switched it back
        rc = llt_store_exec(st, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;");
        if (rc == LLT_OK && is_empty) rc = create_schema(st);
        if (rc == LLT_OK && !is_empty && llt_steplog_recover(st, path) < 0) rc = LLT_EIO;
        if (rc != LLT_OK) goto done;
    }
    if (mode == LLT_STORE_READ && recover && llt_steplog_any(path) && access(path, W_OK) == 0) {
        // a killed run left rows behind: a writer puts them in, then reading starts over
        llt_store_close(st);
        struct llt_store * w = NULL;
        rc = store_open(path, LLT_STORE_WRITE, true, &w);
        llt_store_close(w);
        return rc == LLT_OK ? store_open(path, LLT_STORE_READ, false, out) : rc;
    }
done:
    if (rc != LLT_OK) {
        llt_store_close(st);
        return rc;
    }
    *out = st;
    return LLT_OK;
}

// Opens a trace; replays the step logs that killed runs left behind (docs/trace-format.md).
int llt_store_open(const char * path, enum llt_store_mode mode, struct llt_store ** out) {
    return store_open(path, mode, true, out);
}

void llt_store_close(struct llt_store * st) {
    if (!st) return;
    sqlite3_finalize(st->begin);
    sqlite3_finalize(st->commit);
    if (st->db) sqlite3_close_v2(st->db);
    free(st);
}

const char * llt_store_path(const struct llt_store * st) {
    return st->path;
}

struct sqlite3 * llt_store_db(struct llt_store * st) {
    return st->db;
}

int llt_store_last_run(struct llt_store * st) {
    int64_t id = 0;
    if (query_int(st->db, "SELECT coalesce(max(id), 0) FROM runs", &id) != SQLITE_OK) {
        return llt_set_error(LLT_EIO, "trace '%s': %s", st->path, sqlite3_errmsg(st->db));
    }
    if (id == 0) return llt_set_error(LLT_ENOTFOUND, "trace '%s' holds no runs", st->path);
    return (int) id;
}
