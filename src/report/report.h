// The report layer's private interface: a JSON writer on a FILE and the sections computed
// from the run's dump (values.c), used by the page's data (data.c).
#pragma once

#include "core/internal.h"

#include <stdio.h>

// ---- JSON --------------------------------------------------------------------------------

// a number; JSON's null when it is not finite
static inline void llt_rj_num(FILE * f, double v) {
    if (v != v || v > 1e300 || v < -1e300) fputs("null", f);
    else fprintf(f, "%.7g", v);
}

// a table's value: number, string, null; raw when the column holds JSON text
static inline void llt_rj_value(FILE * f, const struct llt_value * v, bool raw_json) {
    switch (v->type) {
    case LLT_VALUE_NULL: fputs("null", f); break;
    case LLT_VALUE_INT:  fprintf(f, "%lld", (long long) v->i); break;
    case LLT_VALUE_REAL: llt_rj_num(f, v->d); break;
    case LLT_VALUE_TEXT: if (raw_json) fputs(v->s, f); else llt_json_write_string(f, v->s); break;
    }
}

// marks id in want, a bitmap of n_vocab bits: the ids whose pieces the data names
static inline void llt_report_mark(uint8_t * want, int32_t n_vocab, int32_t id) {
    if (want && id >= 0 && id < n_vocab) want[id / 8] |= (uint8_t) (1u << (id % 8));
}

// ---- sections from the dump (values.c) ---------------------------------------------------

struct llt_tensor_set;

// "attention": the attention probabilities of every layer and step, steps kept while the
// cells written stay under max_values; "residual": per layer and position the RMS, absmax
// and non-finite count of the layer outputs (and of the embedding, layer -1). Each writes
// `"name":{...}` or `"name":null`.
int llt_report_attention(FILE * f, struct llt_tensor_set * dump, int64_t max_values);
int llt_report_residual(FILE * f, struct llt_tensor_set * dump, int64_t max_values);
// "lens": the logit lens rows; marks the ids it shows in want
int llt_report_lens(FILE * f, const char * model_path, const char * dump_path, int32_t k,
                    uint8_t * want, int32_t n_vocab);

// ---- the comparison of two runs (compare.c) ----------------------------------------------

// "comparison": run A (its LLT_TABLE_RUN row) against run b_run of b (may be A's store):
// token by token from the parity records, tensor by tensor from the dumps; a side without
// them leaves that part null and says why. Marks the tokens it names in want.
struct llt_table_rows;
int llt_report_compare(FILE * f, struct llt_store * a, const struct llt_table_rows * run_a,
                       struct llt_store * b, int64_t b_run, uint8_t * want, int32_t n_vocab);
// "comparison" from the run's own live diffs (run --reference, table node_diffs), in the shape
// of llt_report_compare's tensors; null when the run has none.
struct llt_analysis;
int llt_report_live_diffs(FILE * f, struct llt_store * st, const struct llt_table_rows * run, const struct llt_analysis * a);

// ---- causal tracing (causal.c) -----------------------------------------------------------

// "causal": the causal tracing result of run run_id (its clean or corrupted run), as stored by
// lltrace causal -o: the answer, the plain runs' figures, and per layer then position the
// arrays p, logit_diff and n_changed; null when there is none, missing saying why.
int llt_report_causal(FILE * f, struct llt_store * st, int64_t run_id, char * missing, size_t size);
