// Shared by the trace harnesses (fuzz-trace, fuzz-steplog): everything a reader of a trace
// does with it — the run, every stream of its rows, every table of `lltrace show`, the
// analysis and its groups, both exports — so that whatever a damaged trace holds reaches
// every piece of code that reads one. Errors are fine; a crash, a leak or a hang is not.
#pragma once

#include "lltrace.h"

#include <stdio.h>

// the row callbacks: each reads its row's texts, as a printer would
static int read_trace_text(const char * s) { return s && s[0] == '\x01'; } // 0: go on
static int read_trace_node(const struct llt_read_node * r, void * u) { (void) u; return read_trace_text(r->name) & read_trace_text(r->op); }
static int read_trace_src(const struct llt_read_src * r, void * u) { (void) u; return read_trace_text(r->name) & read_trace_text(r->type); }
static int read_trace_step(const struct llt_read_step * r, void * u) { (void) r; (void) u; return 0; }
static int read_trace_time(const struct llt_read_time * r, void * u) { (void) r; (void) u; return 0; }
static int read_trace_token(const struct llt_read_token * r, void * u) { (void) u; return read_trace_text(r->piece); }
static int read_trace_route(const struct llt_read_route * r, void * u) { (void) r; (void) u; return 0; }

static void read_trace_run(struct llt_store * st, int64_t run) {
    struct llt_read_run r;
    if (llt_read_run(st, run, &r) != LLT_OK) return;
    const struct llt_read_sel sel = { run, -1 };
    llt_read_nodes(st, &sel, read_trace_node, NULL);
    llt_read_srcs(st, &sel, read_trace_src, NULL);
    llt_read_steps(st, &sel, read_trace_step, NULL);
    llt_read_times(st, &sel, read_trace_time, NULL);
    llt_read_tokens(st, &sel, read_trace_token, NULL);
    llt_read_routes(st, &sel, read_trace_route, NULL);
    struct llt_experts * e = NULL;
    if (llt_experts_load(st, run, -1, -1, &e) == LLT_OK) {
        for (int64_t i = 0; i < llt_experts_n_tokens(e); i++) read_trace_text(llt_experts_token(e, i)->piece);
        llt_experts_free(e);
    }

    struct llt_table_filter filter = llt_table_default_filter();
    filter.run = run;
    for (int step = -1; step <= 0; step++) { // every step, and one (the views of `show --step`)
        filter.step = step;
        for (int t = LLT_TABLE_RUNS; t <= LLT_TABLE_PLACEMENT; t++) {
            struct llt_table_rows * rows = NULL;
            if (llt_read_table(st, (enum llt_table) t, &filter, &rows) == LLT_OK) llt_table_rows_free(rows);
        }
    }

    struct llt_analysis_params p = llt_analysis_default_params();
    p.run = run;
    struct llt_analysis * a = NULL;
    if (llt_analysis_load(st, &p, &a) == LLT_OK) {
        for (int64_t i = 0; i < llt_analysis_n_steps(a); i++) llt_analysis_step(a, i);
        struct llt_analysis_part parts[LLT_PART_COUNT];
        llt_analysis_parts(a, LLT_PHASE_PROMPT, parts);
        llt_analysis_parts(a, LLT_PHASE_GEN, parts);
        for (int32_t i = 0; i < llt_analysis_n_experts(a); i++) llt_analysis_expert(a, i);
        for (int by = LLT_ANALYSIS_BY_OP; by <= LLT_ANALYSIS_BY_NODE; by++) {
            for (int by_phase = 0; by_phase <= 1; by_phase++) {
                struct llt_analysis_groups g = {0};
                if (llt_analysis_group(a, (enum llt_analysis_by) by, by_phase, &g) == LLT_OK) llt_analysis_groups_free(&g);
            }
        }
        llt_analysis_free(a);
    }

    FILE * sink = fopen("/dev/null", "w");
    if (sink) {
        llt_export(st, run, -1, LLT_EXPORT_NDJSON, sink);
        llt_export(st, run, -1, LLT_EXPORT_CHROME, sink);
        fclose(sink);
    }
}

// opens path read only and reads its last run
static void read_trace(const char * path) {
    struct llt_store * st = NULL;
    if (llt_store_open(path, LLT_STORE_READ, &st) != LLT_OK) return;
    read_trace_run(st, 0);
    llt_store_close(st);
}
