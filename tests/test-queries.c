// Counts the SQL statements each reader of a trace runs (sqlite3_trace_v2), so that a test can
// check that reading a run costs a fixed number of queries, whatever its number of steps: no
// per-step re-query. Prints one line per reader: "NAME COUNT".
//   test-queries TRACE
#include "lltrace.h"
#include "testutil.h"

#include <sqlite3.h>

static int n_statements;

static int on_trace(unsigned type, void * ctx, void * p, void * x) {
    const char * sql = x;
    if (type == SQLITE_TRACE_STMT && strncmp(sql, "--", 2) != 0) n_statements++; // "--": a trigger's
    return 0;
}

int main(int argc, char ** argv) {
    REQUIRE(argc == 2, "usage: test-queries TRACE");
    struct llt_store * st = NULL;
    REQUIRE(llt_store_open(argv[1], LLT_STORE_READ, &st) == LLT_OK, "%s", llt_last_error());
    sqlite3_trace_v2(llt_store_db(st), SQLITE_TRACE_STMT, on_trace, NULL);
    FILE * null = fopen("/dev/null", "w");
    REQUIRE(null, "cannot open /dev/null");

    struct llt_analysis_params params = llt_analysis_default_params();
    struct llt_analysis * a = NULL;
    n_statements = 0;
    CHECK(llt_analysis_load(st, &params, &a) == LLT_OK, "%s", llt_last_error());
    struct llt_analysis_groups gs;
    for (int by = LLT_ANALYSIS_BY_OP; by <= LLT_ANALYSIS_BY_NODE; by++) {
        CHECK(llt_analysis_group(a, (enum llt_analysis_by) by, true, &gs) == LLT_OK, "%s", llt_last_error());
        llt_analysis_groups_free(&gs);
    }
    printf("analysis %d\n", n_statements);
    llt_analysis_free(a);

    static const struct { const char * name; enum llt_export_format format; } exports[] = {
        { "ndjson", LLT_EXPORT_NDJSON }, { "chrome", LLT_EXPORT_CHROME },
    };
    for (size_t i = 0; i < sizeof(exports) / sizeof(exports[0]); i++) {
        n_statements = 0;
        CHECK(llt_export(st, 0, -1, exports[i].format, null) == LLT_OK, "%s", llt_last_error());
        printf("%s %d\n", exports[i].name, n_statements);
    }

    // the tables of show --stats besides the analysis
    n_statements = 0;
    struct llt_table_filter filter = llt_table_default_filter();
    static const enum llt_table tables[] = { LLT_TABLE_RUN, LLT_TABLE_GRAPHS, LLT_TABLE_UNREAD };
    for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]); i++) {
        struct llt_table_rows * rows = NULL;
        CHECK(llt_read_table(st, tables[i], &filter, &rows) == LLT_OK, "%s", llt_last_error());
        llt_table_rows_free(rows);
    }
    printf("tables %d\n", n_statements);
    fclose(null);
    llt_store_close(st);
    return test_failures ? 1 : 0;
}
