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

// ---- sections from the dump (values.c) ---------------------------------------------------

struct llt_tensor_set;

// "attention": the attention probabilities of every layer and step, steps kept while the
// cells written stay under max_values; "residual": per layer and position the RMS, absmax
// and non-finite count of the layer outputs (and of the embedding, layer -1). Each writes
// `"name":{...}` or `"name":null`, and adds the ids it names to want (a bitmap of n_vocab bits).
int llt_report_attention(FILE * f, struct llt_tensor_set * dump, int64_t max_values);
int llt_report_residual(FILE * f, struct llt_tensor_set * dump, int64_t max_values);
// "lens": the logit lens rows; marks the ids it shows in want (n_vocab bits)
int llt_report_lens(FILE * f, const char * model_path, const char * dump_path, int32_t k,
                    uint8_t * want, int32_t n_vocab);
