// lltrace: see what an LLM does while it runs under llama.cpp.
//
// liblltrace attaches to llama.cpp through the scheduler's eval callback
// (llama_context_params.cb_eval), records every graph node that runs into an SQLite trace
// (docs/trace-format.md) and reads traces back. It never patches llama.cpp.
//
// Errors: functions returning int give 0 or a negative LLT_E* code; llt_last_error() then
// holds a one-line message (per thread). Nothing here exits or aborts on bad input.
#pragma once

#include "lltrace/core.h"
#include "lltrace/registry.h"
#include "lltrace/store.h"
#include "lltrace/parity.h"
#include "lltrace/tracer.h"
#include "lltrace/exec.h"
#include "lltrace/tokenize.h"
#include "lltrace/debug.h"
#include "lltrace/generate.h"
#include "lltrace/cost.h"
#include "lltrace/read.h"
#include "lltrace/analysis.h"
#include "lltrace/experts.h"
#include "lltrace/export.h"
#include "lltrace/models.h"
#include "lltrace/tensors.h"
#include "lltrace/diff.h"
#include "lltrace/report.h"
#include "lltrace/intervene.h"
#include "lltrace/causal.h"
