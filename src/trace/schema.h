// The trace schema (schema.c): made in a new trace, version 1 upgraded or seen through.
// Private to the library.
#pragma once

#include "trace/db.h"

struct sqlite3;

// registers the SQL function llt_utf8(x) (x with invalid UTF-8 replaced) on a connection
int llt_schema_register(struct sqlite3 * db);
// creates the tables and views of the current version in an empty database (the caller holds
// a write transaction)
int llt_schema_create(struct llt_store * st);
// Brings a trace of an older known version to the current one: opened for writing, upgraded
// in place in one transaction; read only, seen through TEMP views and tables. Nothing to do
// for a trace of the current version.
int llt_schema_check(struct llt_store * st, enum llt_store_mode mode);
