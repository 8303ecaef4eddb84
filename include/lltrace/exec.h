// lltrace/exec.h: tracing unmodified llama.cpp programs (lltrace exec): what to trace, from the
// environment. Part of lltrace.h.
//
// `lltrace exec -- PROGRAM` runs PROGRAM with the preload library liblltrace-preload.so
// (LD_PRELOAD), which interposes llama.cpp's public API in the program's own libllama and
// traces every context that decodes into a run. The options travel in the environment, so
// `LD_PRELOAD=/path/liblltrace-preload.so PROGRAM` with these variables works by hand:
//
//   LLTRACE_OUTPUT        the trace file; runs are appended (default lltrace.db)
//   LLTRACE_LEVEL         graph (default), timing, profile or values
//   LLTRACE_DUMP          node name patterns to dump (globs, or regexes after "re:"), separated
//                         by white space
//   LLTRACE_DUMP_LAYER    only nodes of this layer
//   LLTRACE_DUMP_STEP     only these steps: N or A-B
//   LLTRACE_DUMP_SOURCES  1: also dump each dumped node's sources
//   LLTRACE_DUMP_TYPE     native (default), f32 or f16
//   LLTRACE_CHECKPOINTS   1: dump the named checkpoints (turns flash attention off)
//   LLTRACE_LAYER         checkpoints of this layer only
//   LLTRACE_BREAK_ON_NAN  report: record the first node that makes a NaN or Inf; stop: and then
//                         end the program (exit status 1)
//   LLTRACE_REFERENCE     a dump to compare every node it holds with, as computed
//   LLTRACE_TOLERANCE_ABS, LLTRACE_TOLERANCE_REL   the comparison's tolerances (1e-6, 1e-4)
//   LLTRACE_PARITY_TOP_K  K > 0: each generated token's K largest logits, read from the
//                         program's own logits, go to table parity (at most 64)
//   LLTRACE_DEBUG         a Unix socket to make (0600) and listen at for a debugger
//                         (lltrace debug --attach SOCKET; lltrace/debug.h)
//   LLTRACE_INTERVENE     interventions to make, as a spec's JSON text (docs/debugging.md,
//                         "Spec file"); one that cannot be made ends the program (exit status 1)
//   LLTRACE_ENGINE        the engine library (default: liblltrace-exec.so beside the preload library)
//   LLTRACE_STATUS        a file that exists: the engine appends a line per kind of event and
//                         process ("engine PID": llama.cpp was called, "context PID", "decode
//                         PID"), so that lltrace exec can say what a program did when no run came
//
// Paths are read in the traced program's working directory: lltrace exec makes them absolute.
#pragma once

#include "lltrace/tracer.h"

#ifdef __cplusplus
extern "C" {
#endif

#define LLT_EXEC_MAX_DUMP 64

struct llt_exec_config {
    char *                   output;     // absolute path of the trace
    struct llt_tracer_params tracer;     // level, values, parity_top_k (model_path, name: per context)
    bool                     stop_on_nan; // LLTRACE_BREAK_ON_NAN=stop
    char *                   dump_patterns[LLT_EXEC_MAX_DUMP + 1]; // tracer.values.dump points here
    char *                   reference;  // tracer.values.reference points here
    char *                   debug_socket; // LLTRACE_DEBUG, absolute; NULL: no debugger
    struct llt_iv_set *      interventions; // LLTRACE_INTERVENE; tracer.interventions points here
};

// Reads the LLTRACE_* variables above. A bad value fails naming the variable and the value.
// caller frees with llt_exec_config_free()
int  llt_exec_config_from_env(struct llt_exec_config ** out);
void llt_exec_config_free(struct llt_exec_config * cfg);

#ifdef __cplusplus
}
#endif
