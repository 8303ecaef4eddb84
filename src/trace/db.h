// The trace store's connection, shared by the files of the trace layer that run SQL.
// Private to the library.
#pragma once

#include "core/internal.h"

#include <sqlite3.h>

struct llt_store {
    sqlite3 *      db;
    sqlite3_stmt * begin, * commit; // prepared once: a transaction per decode step
    char           path[1024];
};
