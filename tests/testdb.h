// Test helpers for reading a trace: one-value queries built with printf-style arguments on the
// test's database `db`. A query that does not prepare ends the test.
#pragma once

#include "testutil.h"

#include <math.h>
#include <sqlite3.h>
#include <stdarg.h>

static sqlite3 * db;

// the statement of a formatted query, stepped once; caller finalizes
static sqlite3_stmt * q_step(const char * fmt, va_list ap) {
    char sql[2048];
    vsnprintf(sql, sizeof(sql), fmt, ap);
    sqlite3_stmt * s = NULL;
    REQUIRE(sqlite3_prepare_v2(db, sql, -1, &s, NULL) == SQLITE_OK, "%s: %s", sql, sqlite3_errmsg(db));
    return s;
}

// the first column of the first row as an integer, -1 if there is no row
static long long qi(const char * fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    sqlite3_stmt * s = q_step(fmt, ap);
    va_end(ap);
    long long v = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int64(s, 0) : -1;
    sqlite3_finalize(s);
    return v;
}

// the first column of the first row as a double, NAN if there is no row
static double qd(const char * fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    sqlite3_stmt * s = q_step(fmt, ap);
    va_end(ap);
    double v = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_double(s, 0) : NAN;
    sqlite3_finalize(s);
    return v;
}

// the first column of the first row as text ("" for NULL), "(no row)" if there is none; valid
// until the next call
static const char * qs(const char * fmt, ...) {
    static char text[1024];
    va_list ap;
    va_start(ap, fmt);
    sqlite3_stmt * s = q_step(fmt, ap);
    va_end(ap);
    if (sqlite3_step(s) == SQLITE_ROW) {
        const unsigned char * t = sqlite3_column_text(s, 0);
        snprintf(text, sizeof(text), "%s", t ? (const char *) t : "");
    } else {
        snprintf(text, sizeof(text), "(no row)");
    }
    sqlite3_finalize(s);
    return text;
}
