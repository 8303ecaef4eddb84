// The trace store's connection, shared by the files of the trace layer that run SQL.
// Private to the library.
#pragma once

#include "core/internal.h"

#include <sqlite3.h>

struct llt_store {
    sqlite3 *      db;
    sqlite3_stmt * begin, * commit; // prepared once: a transaction per decode step
    char           path[1024];
    char           note[2048];      // what recovery found damaged when the trace was opened ("" if nothing)
};

// ---- statements (every SQL statement of lltrace runs in this layer) ----------------------

// executes one or more SQL statements; on failure sets the error and returns LLT_EIO
int  llt_store_exec(struct llt_store * st, const char * sql);
int  llt_store_begin(struct llt_store * st);
int  llt_store_commit(struct llt_store * st);
void llt_store_rollback(struct llt_store * st);
// prepares a statement; on failure sets the error and returns NULL. caller finalizes.
struct sqlite3_stmt * llt_store_prepare(struct llt_store * st, const char * sql);
// binds text as valid UTF-8 (invalid bytes become U+FFFD; NULL binds NULL); copies it
void llt_store_bind_text(struct sqlite3_stmt * stmt, int i, const char * text);
// steps a statement to completion and resets it; LLT_OK or LLT_EIO
int  llt_store_step_done(struct llt_store * st, struct sqlite3_stmt * stmt);
