// The trace store: one SQLite database per trace file, schema in docs/trace-format.md.
//
// Opening never modifies a file that is not an lltrace trace: the application id and schema
// version are checked with read-only queries before anything is written.
#include "trace/batch.h"
#include "trace/db.h"
#include "trace/schema.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

// How long a connection waits for another's write lock before giving up. Several processes
// trace into one file at once (lltrace exec -- sh -c 'a & b'), and one's commit may be long (a
// run's end writes its graphs, node times and statistics): a writer that gave up would stop
// its tracing, so the wait is generous.
#define BUSY_TIMEOUT_MS 120000

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
        return llt_set_error(LLT_EVERSION, "trace '%s' has schema version %lld; this lltrace reads versions 1 to %d",
                             st->path, (long long) version, LLT_STORE_SCHEMA_VERSION);
    }
    return LLT_OK;
}

// Creates the schema of an empty database. Under a write lock taken first: two processes that
// create one trace at once make it once (the second finds the tables and checks them).
static int create_schema(struct llt_store * st) {
    int rc = llt_store_exec(st, "BEGIN IMMEDIATE");
    int64_t n_tables = 0;
    if (rc == LLT_OK && query_int(st->db, "SELECT count(*) FROM sqlite_master", &n_tables) != SQLITE_OK) {
        rc = llt_set_error(LLT_EIO, "trace '%s': %s", st->path, sqlite3_errmsg(st->db));
    }
    const bool create = rc == LLT_OK && n_tables == 0;
    if (create) rc = llt_schema_create(st);
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
    if (llt_output_dir_check(path, "trace") != LLT_OK) return LLT_EIO;
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

// Opens st's connection (closing one it has). A reader of a WAL trace shares its wal-index
// with the other connections through the -shm file, which SQLite makes and sizes at the first
// read; on a full disk it cannot. private_index then keeps the index in the connection's own
// memory (exclusive locking mode, set before the first read), which takes a connection that
// could write: it is told to write nothing (query_only, no checkpoint when it closes). Only
// as a fallback: it locks writers out while it reads, and there is none then (a writer's
// -shm is already there).
//
// A read-only connection to a WAL trace makes its -wal and -shm files and cannot remove them
// when it closes. So where the trace has none (it was closed cleanly) and its folder may be
// written, a reader takes a connection that could write, told to write nothing (query_only):
// as the last connection it removes the empty files it made; with other connections open it
// leaves them, as SQLite does. Where the files are there (a live run, a killed one), it is
// read-only and leaves them as they are.
static bool reader_may_tidy(const char * path) {
    char side[1100], dir[1100];
    snprintf(side, sizeof(side), "%s-wal", path);
    if (access(side, F_OK) == 0 || access(path, W_OK) != 0) return false;
    llt_path_dir(path, dir, sizeof(dir));
    return access(dir, W_OK) == 0;
}

static int connect(struct llt_store * st, enum llt_store_mode mode, bool private_index) {
    if (st->db) sqlite3_close_v2(st->db);
    st->db = NULL;
    const bool tidy = mode == LLT_STORE_READ && !private_index && reader_may_tidy(st->path);
    const int flags = mode == LLT_STORE_READ && !private_index && !tidy ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE;
    if (sqlite3_open_v2(st->path, &st->db, flags, NULL) != SQLITE_OK) {
        return llt_set_error(LLT_EIO, "cannot open trace '%s': %s", st->path, st->db ? sqlite3_errmsg(st->db) : "out of memory");
    }
    sqlite3_busy_timeout(st->db, BUSY_TIMEOUT_MS);
    if (llt_schema_register(st->db) != LLT_OK) {
        return llt_set_error(LLT_EIO, "cannot open trace '%s': %s", st->path, sqlite3_errmsg(st->db));
    }
    if (!private_index) return LLT_OK; // a tidy reader is told to write nothing once its views are made (store_open)
    sqlite3_db_config(st->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
    return llt_store_exec(st, "PRAGMA locking_mode=EXCLUSIVE; PRAGMA query_only=1");
}

static int store_open(const char * path, enum llt_store_mode mode, bool recover, struct llt_store ** out) {
    *out = NULL;
    struct stat sb;
    bool exists = stat(path, &sb) == 0;
    if (!exists && mode == LLT_STORE_READ) {
        return llt_set_error(LLT_EIO, "cannot open trace '%s': %s", path, strerror(errno));
    }
    if (exists && llt_input_check(path, "trace") != LLT_OK) return LLT_EIO; // a FIFO, a device, a directory
    if (!exists) {
        int rc = create_trace(path);
        if (rc != LLT_OK) return rc;
    }

    struct llt_store * st = calloc(1, sizeof(*st));
    if (!st) return llt_set_error(LLT_ENOMEM, "out of memory");
    snprintf(st->path, sizeof(st->path), "%s", path);

    int rc = connect(st, mode, false);
    bool is_empty = false;
    if (rc == LLT_OK) rc = check_trace(st, &is_empty);
    if (rc == LLT_EIO && mode == LLT_STORE_READ && (sqlite3_extended_errcode(st->db) & 0xff) == SQLITE_IOERR &&
        access(path, W_OK) == 0) {
        rc = connect(st, mode, true); // the wal-index could not be made (a full disk): keep it in memory
        if (rc == LLT_OK) rc = check_trace(st, &is_empty);
    }
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
        if (rc == LLT_OK && !is_empty) rc = llt_schema_check(st, mode);
        if (rc == LLT_OK && !is_empty && llt_trace_recover(st, st->note, sizeof(st->note)) < 0) rc = LLT_EIO;
        if (rc != LLT_OK) goto done;
    }
    if (mode == LLT_STORE_READ && recover && llt_steplog_any(path) && access(path, W_OK) == 0) {
        // a killed run left rows behind: a writer puts them in, then reading starts over.
        // Reading never needs to write: when the writer cannot (a full disk, a read-only
        // mount), the log stays for a later open and the committed rows are read as they are
        llt_store_close(st);
        struct llt_store * w = NULL;
        char note[sizeof(w->note)] = "";
        if (store_open(path, LLT_STORE_WRITE, true, &w) == LLT_OK) {
            snprintf(note, sizeof(note), "%s", w->note);
            llt_store_close(w);
        }
        rc = store_open(path, LLT_STORE_READ, false, out);
        if (rc == LLT_OK) snprintf((*out)->note, sizeof((*out)->note), "%s", note);
        return rc;
    }
    if (mode == LLT_STORE_READ) rc = llt_schema_check(st, mode);
    // a reader writes nothing to the trace, once its TEMP views (an older schema's) are made
    if (mode == LLT_STORE_READ && rc == LLT_OK) rc = llt_store_exec(st, "PRAGMA query_only=1");
done:
    if (rc != LLT_OK) {
        // an open that failed (a full disk) leaves the files as they were: no checkpoint
        if (st->db) sqlite3_db_config(st->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
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

const char * llt_store_recovery_note(const struct llt_store * st) {
    return st->note[0] ? st->note : NULL;
}

int llt_store_last_run(struct llt_store * st) {
    int64_t id = 0;
    if (query_int(st->db, "SELECT coalesce(max(id), 0) FROM runs", &id) != SQLITE_OK) {
        return llt_set_error(LLT_EIO, "trace '%s': %s", st->path, sqlite3_errmsg(st->db));
    }
    if (id == 0) return llt_set_error(LLT_ENOTFOUND, "trace '%s' holds no runs", st->path);
    return (int) id;
}
