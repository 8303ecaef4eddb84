// Unit test: opening traces; refusing (and never touching) files that are not traces.
#include "lltrace.h"
#include "testutil.h"

#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

static void write_file(const char * path, const char * text) {
    FILE * f = fopen(path, "wb");
    REQUIRE(f, "cannot write %s", path);
    fputs(text, f);
    fclose(f);
}

static char * read_all(const char * path, long * size) {
    struct stat sb;
    if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode)) return NULL; // absent, or a directory
    FILE * f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    *size = ftell(f);
    fseek(f, 0, SEEK_SET);
    char * buf = malloc((size_t) *size + 1);
    *size = (long) fread(buf, 1, (size_t) *size, f);
    fclose(f);
    return buf;
}

static void sql(const char * path, const char * stmt) {
    sqlite3 * db = NULL;
    REQUIRE(sqlite3_open(path, &db) == SQLITE_OK, "open %s", path);
    REQUIRE(sqlite3_exec(db, stmt, NULL, NULL, NULL) == SQLITE_OK, "%s: %s", stmt, sqlite3_errmsg(db));
    sqlite3_close(db);
}

// opening `path` in `mode` fails with `want` and leaves the file's bytes as they were
static void check_refused(const char * path, enum llt_store_mode mode, int want) {
    long before_size = -1, after_size = -2;
    char * before = read_all(path, &before_size);
    struct llt_store * st = NULL;
    int rc = llt_store_open(path, mode, &st);
    CHECK(rc == want, "%s: got %d (%s), want %d", path, rc, llt_last_error(), want);
    CHECK(st == NULL, "%s: a store was returned", path);
    CHECK(strchr(llt_last_error(), '\n') == NULL, "message is not one line: %s", llt_last_error());
    char * after = read_all(path, &after_size);
    CHECK((before == NULL) == (after == NULL), "%s: existence changed", path);
    if (before && after) {
        CHECK(before_size == after_size && memcmp(before, after, (size_t) before_size) == 0, "%s was modified", path);
    }
    free(before);
    free(after);
    llt_store_close(st);
}

int main(void) {
    test_dir_make("test-store");

    // a new trace: created with the magic and version, readable afterwards
    struct llt_store * st = NULL;
    const char * trace = path_in("new.db");
    CHECK_INT(llt_store_open(trace, LLT_STORE_WRITE, &st), LLT_OK);
    llt_store_close(st);
    st = NULL;
    CHECK_INT(llt_store_open(trace, LLT_STORE_READ, &st), LLT_OK);
    if (st) {
        sqlite3_stmt * s = NULL;
        sqlite3_prepare_v2(llt_store_db(st), "PRAGMA application_id", -1, &s, NULL);
        CHECK(sqlite3_step(s) == SQLITE_ROW && sqlite3_column_int(s, 0) == LLT_STORE_APPLICATION_ID, "application id");
        sqlite3_finalize(s);
        sqlite3_prepare_v2(llt_store_db(st), "PRAGMA user_version", -1, &s, NULL);
        CHECK(sqlite3_step(s) == SQLITE_ROW && sqlite3_column_int(s, 0) == LLT_STORE_SCHEMA_VERSION, "user version");
        sqlite3_finalize(s);
        CHECK_INT(llt_store_last_run(st), LLT_ENOTFOUND);
    }
    llt_store_close(st);
    st = NULL;
    // appending to an existing trace works
    CHECK_INT(llt_store_open(trace, LLT_STORE_WRITE, &st), LLT_OK);
    llt_store_close(st);

    // files that are not traces: refused, untouched
    const char * text = path_in("notes.txt");
    write_file(text, "these are my notes, not a database\n");
    check_refused(text, LLT_STORE_WRITE, LLT_EFORMAT);
    check_refused(text, LLT_STORE_READ, LLT_EFORMAT);

    const char * other = path_in("other.sqlite");
    sql(other, "CREATE TABLE t(x); INSERT INTO t VALUES(1);");
    check_refused(other, LLT_STORE_WRITE, LLT_EFORMAT);

    const char * newer = path_in("newer.db");
    CHECK_INT(llt_store_open(newer, LLT_STORE_WRITE, &st), LLT_OK);
    llt_store_close(st);
    sql(newer, "PRAGMA journal_mode=DELETE; PRAGMA user_version=99;");
    check_refused(newer, LLT_STORE_READ, LLT_EVERSION);
    check_refused(newer, LLT_STORE_WRITE, LLT_EVERSION);
    CHECK(strstr(llt_last_error(), "99") != NULL, "message names the version: %s", llt_last_error());

    // paths that cannot be written: nothing is created
    check_refused(path_in("missing-dir/x.db"), LLT_STORE_WRITE, LLT_EIO);
    check_refused(path_in("notes.txt/x.db"), LLT_STORE_WRITE, LLT_EIO);
    check_refused("/proc/lltrace-test.db", LLT_STORE_WRITE, LLT_EIO);
    check_refused(path_in("absent.db"), LLT_STORE_READ, LLT_EIO);
    check_refused(test_dir, LLT_STORE_WRITE, LLT_EIO);

    // an empty file becomes a trace when written, but is not one to read
    const char * empty = path_in("empty.db");
    write_file(empty, "");
    check_refused(empty, LLT_STORE_READ, LLT_EFORMAT);
    CHECK_INT(llt_store_open(empty, LLT_STORE_WRITE, &st), LLT_OK);
    llt_store_close(st);

    test_dir_remove();
    return test_result("test-store");
}
