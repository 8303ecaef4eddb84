// Recovery: the runs whose process died while tracing. Their step logs (steplog.c) hold the
// batches the writer had not committed; they go into the trace through the rows writer
// (rows.c), rows already there kept, and the run is marked killed (runs.c).
#include "trace/batch.h"
#include "trace/runs.h"

static int replay(int64_t run_id, const struct llt_batch * batches, void * user_data) {
    struct llt_store * st = user_data;
    char ** names = NULL;
    int32_t n_names = 0;
    struct llt_rows * rows = NULL;
    int rc = llt_trace_weight_names(st, run_id, &names, &n_names);
    if (rc == LLT_OK) rc = llt_rows_init(st, run_id, (const char * const *) names, n_names, &rows);
    if (rc == LLT_OK && batches) rc = llt_rows_write(rows, batches);
    llt_rows_free(rows);
    llt_trace_names_free(names, n_names);
    return rc == LLT_OK ? llt_trace_run_killed(st, run_id) : rc;
}

int llt_trace_recover(struct llt_store * st) {
    return llt_steplog_replay_dead(llt_store_path(st), replay, st);
}
