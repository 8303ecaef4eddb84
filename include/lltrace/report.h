// lltrace/report.h: what the HTML report of a run shows, computed by the library: the logit
// lens and the page's data as one JSON object. Part of lltrace.h.
//
//   struct llt_report_params p = llt_report_default_params();
//   p.run = 2;
//   llt_report_write_data(store, &p, stdout);   // the JSON the page renders
//
// The figures are the analysis layer's (lltrace/analysis.h), so the report says what `show`
// and `profile` say; the values (attention, residual stream, logit lens) come from the run's
// dump (docs/dump-format.md) and the model file. docs/report.md describes the JSON.
#pragma once

#include "lltrace/core.h"
#include "lltrace/store.h"

#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

// ---- the logit lens ----------------------------------------------------------------------
//
// What the model would predict if it stopped after layer L: the layer's output (the dumped
// `l_out-L` checkpoint) through the model's final norm (`output_norm`, RMS or layer norm as
// the model's metadata says) and output head (`output.weight`, or the tied `token_embd.weight`),
// every weight type dequantized with ggml's type traits. The last layer's lens is the model's
// own logits.

#define LLT_LENS_MAX_K 16

struct llt_lens_params {
    const char * model_path; // the model the run used (runs.model_path)
    const char * dump_path;  // the run's dump with its l_out-N tensors (runs.dump_path)
    int32_t      top_k;      // candidates kept per row, 1..LLT_LENS_MAX_K
};

struct llt_lens_params llt_lens_default_params(void);

// one (step, layer, position): the k most likely tokens, most likely first
struct llt_lens_row {
    int64_t step, pos;
    int32_t layer;
    int32_t k;
    int32_t ids[LLT_LENS_MAX_K];
    float   logits[LLT_LENS_MAX_K];
    float   probs[LLT_LENS_MAX_K];  // softmax over the whole vocabulary
    float   entropy;                // of that softmax, nats
};

struct llt_lens {
    int32_t               n_layer;  // the model's
    int32_t               n_vocab;
    int64_t               n_rows;
    struct llt_lens_row * rows;     // by step, layer, position
};

// LLT_ENOTFOUND when the dump holds no layer output (a run without --checkpoints).
// caller frees with llt_lens_free()
int  llt_lens_compute(const struct llt_lens_params * p, struct llt_lens ** out);
void llt_lens_free(struct llt_lens * lens);

// ---- the report's data -------------------------------------------------------------------

struct llt_report_params {
    int64_t run;          // 0: the last run
    int64_t graph_step;   // the step whose graph is drawn; -1: the first generated step
    int32_t lens_k;       // logit lens candidates, 0: no lens
    int64_t max_steps;    // per-step series longer than this are decimated (every n-th step)
    int64_t max_values;   // attention and residual cells kept at most; steps beyond are left out
    int64_t max_tokens;   // tokens and candidates kept at most: the last ones; 0: all
    struct llt_store * vs; // compare with a run of this trace (may be st itself); NULL: no comparison
    int64_t vs_run;       // that run; 0: its last one
    double  bandwidth_gbs; // this machine's memory bandwidth, the roofline's limit; 0: not measured
};

// This machine's memory bandwidth in GB/s (10^9 bytes read and written per second): the best
// of a few copies of 64 MiB, larger than any cache. About 0.1 s.
double llt_report_measure_bandwidth(void);

struct llt_report_params llt_report_default_params(void);

// Writes the data of the report of a run as one JSON object (docs/report.md) to f: the run,
// its tokens and top-k candidates, one step's graph, time, attention, residual stream, logit
// lens, memory and the comparison with p->vs; a section without data says which `lltrace run`
// option gives it.
// LLT_EIO also when writing to f failed.
int llt_report_write_data(struct llt_store * st, const struct llt_report_params * p, FILE * f);

#ifdef __cplusplus
}
#endif
