// Recovery: the runs whose process died while tracing. Their step logs (steplog_replay.c) hold
// the batches the writer had not committed; they go into the trace through the rows writer
// (rows.c) a chunk at a time, rows already there kept, and the run is marked killed (runs.c).
#include "trace/batch.h"
#include "trace/runs.h"

#include <stdio.h>
#include <stdlib.h>

struct recovery {
    struct llt_store * st;
    struct llt_rows *  rows;     // of the run being replayed
    char **            names;    // its weight names
    int32_t            n_names;
    int64_t            run_id;
    char *             note;     // the accounts of damaged logs, for the caller
    size_t             note_size;
};

static void end_run(struct recovery * rc) {
    llt_rows_free(rc->rows);
    llt_trace_names_free(rc->names, rc->n_names);
    rc->rows = NULL;
    rc->names = NULL;
    rc->n_names = 0;
    rc->run_id = 0;
}

static int replay(const struct llt_replay * r, void * user_data) {
    struct recovery * rec = user_data;
    int rc = LLT_OK;
    if (rec->run_id != r->run_id) {
        end_run(rec);
        rec->run_id = r->run_id;
        rc = llt_trace_weight_names(rec->st, r->run_id, &rec->names, &rec->n_names);
        if (rc == LLT_OK) rc = llt_rows_init(rec->st, r->run_id, (const char * const *) rec->names, rec->n_names, &rec->rows);
    }
    if (rc == LLT_OK && r->batches) rc = llt_rows_write(rec->rows, r->batches);
    if (rc == LLT_OK && r->last) {
        rc = llt_trace_run_killed(rec->st, r->run_id, r->damage);
        if (r->damage && rec->note) snprintf(rec->note, rec->note_size, "%s", r->damage);
    }
    if (rc != LLT_OK || r->last) end_run(rec);
    return rc;
}

int llt_trace_recover(struct llt_store * st, char * note, size_t size) {
    struct recovery rec = { .st = st, .note = note, .note_size = size };
    const int n = llt_steplog_replay_dead(llt_store_path(st), replay, &rec);
    end_run(&rec);
    return n;
}
