// lltrace/store.h: the trace database (docs/trace-format.md). Part of lltrace.h.
#pragma once

#include "lltrace/core.h"

#ifdef __cplusplus
extern "C" {
#endif

#define LLT_STORE_SCHEMA_VERSION 8 // the one place the version is set (docs/trace-format.md)
#define LLT_STORE_APPLICATION_ID 0x4C4C5452 // "LLTR"

enum llt_store_mode {
    LLT_STORE_READ,   // an existing trace, read only
    LLT_STORE_WRITE,  // create the file, or append runs to an existing trace
};

struct llt_store;
struct sqlite3;

// Opens a trace. Never modifies a file that is not an lltrace trace, or one of a newer schema
// (LLT_EVERSION). A trace of schema version 1 is upgraded in place when opened for writing;
// opened for reading it is not written, and the connection sees it as the current version
// through TEMP views (docs/trace-format.md, "Version 1 traces").
// caller frees with llt_store_close()
int  llt_store_open(const char * path, enum llt_store_mode mode, struct llt_store ** out);
void llt_store_close(struct llt_store * st);
// the underlying database, for queries; borrowed, lives with st
struct sqlite3 * llt_store_db(struct llt_store * st);
// the path the store was opened with (borrowed, lives with st)
const char * llt_store_path(const struct llt_store * st);
// What opening the trace found that a user should know, in one line, or NULL: a killed run's
// step log that was damaged (its whole batches before the damage replayed, the file kept
// beside the trace as <log>.damaged). Borrowed, lives with st.
const char * llt_store_recovery_note(const struct llt_store * st);
// id of the last run in the trace, or LLT_ENOTFOUND
int  llt_store_last_run(struct llt_store * st);

#ifdef __cplusplus
}
#endif
