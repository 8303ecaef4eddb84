// A causal tracing result's rows (causal.c): written by lltrace causal (src/generate/causal.c);
// read through llt_read_causal() (lltrace/read.h). Private to the library.
#pragma once

#include "core/internal.h"

// Inserts the result (its runs r->clean_run and r->corrupt_run already in the trace) and its
// cells in one transaction; sets r->id.
int llt_trace_causal_write(struct llt_store * st, struct llt_causal_result * r);
