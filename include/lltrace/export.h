// lltrace/export.h: a run as an event log (NDJSON) or a timeline (Trace Event Format).
// Part of lltrace.h.
//
// ndjson: one JSON object per line, each with an "event" member:
//   session_start                       the run: model, parameters, prompt, versions
//   step_begin {kind: decode}           per step (one graph computation)
//     token {role: prompt}              the prompt tokens the step fed
//     step_begin {kind: layer}          per run of consecutive nodes of one block
//       tensor                          per node: shape, type, bytes, sources, time
//     step_end {kind: layer}
//   step_end {kind: decode}
//   token {role: gen}                   the token sampled from the step's logits
//   session_end                         status, output, counts
// t_ns is nanoseconds since the run started; a time the trace does not hold (node times of a
// run traced at level graph) is left out, never guessed.
//
// chrome: the Trace Event Format of chrome://tracing and Perfetto (ui.perfetto.dev), one JSON
// object {"traceEvents": [...]}, an event a line. On one thread, nested complete ("X")
// events: each decode call, inside it the graph computation, inside that each layer (a run of
// consecutive nodes of one block whose computing nodes were all timed) and each timed node;
// the token sampled after each call; tokens as instant events. ts and dur in microseconds.
//
// Text is written as valid UTF-8 (a byte that is not part of a character becomes U+FFFD).
// The run is read in one pass over each table, so an export takes time linear in its size.
#pragma once

#include "lltrace/core.h"
#include "lltrace/store.h"

#ifdef __cplusplus
extern "C" {
#endif

enum llt_export_format { LLT_EXPORT_NDJSON, LLT_EXPORT_CHROME };

// Writes run (0: the last one) of st to f. LLT_EIO also when writing to f failed.
// seq >= 0: only the steps and tokens of that llama.cpp sequence
int llt_export(struct llt_store * st, int64_t run, int32_t seq, enum llt_export_format format, FILE * f);

#ifdef __cplusplus
}
#endif
