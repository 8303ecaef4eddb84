// Fuzzes recovery from a step log: the input is the log a killed run left next to its trace
// (<trace>-log-1); the trace, holding run 1 still 'running' and a weight registry, is opened
// for writing, so recovery parses the log and writes its batches, and is then read back the
// way every reader reads one (read-trace.h). Seeds (corpus/fuzz-steplog/): logs of the tiny
// model made by the tool, cut after a few whole batches:
//   LLTRACE_COMMIT_MS=600000 lltrace run -n 20000 --level L -o t.db & sleep 1; kill -9 $!
//   (L: timing, values; one with --parity P; one at timing with --rpc over two local servers;
//   moe.log: timing on tiny-qwen3moe, with routing records), then t.db-log-1 up to its 2nd,
//   3rd or 4th batch end. Version 5 changed only the routing records, so the seeds made as
//   version 4 had their version field set to 5.
// Regressions (regress/fuzz-steplog/): split-input-none.log, found by this harness;
// shape-overflow.log, timing.log with every node of its first graph given the shape
// [2^40, 2^30, 3, 5], whose element count overflows int64 (the cost model once multiplied
// shapes signed: UBSan); it replaces the version-3 input that found that, which the reader
// now refuses at its header.
#include "fuzz.h"
#include "read-trace.h"

#include <sqlite3.h>

// a trace with run 1 running and 32 weights, made once; its bytes, copied over the trace
// before each input
static char * template_bytes;
static size_t template_size;

static void make_template(const char * dir) {
    char path[600];
    snprintf(path, sizeof(path), "%s/template", dir);
    struct llt_store * st = NULL;
    if (llt_store_open(path, LLT_STORE_WRITE, &st) != LLT_OK) abort();
    if (sqlite3_exec(llt_store_db(st),
            "INSERT INTO runs(id, started_at, status, level, n_layer, model_name, file_type)"
            " VALUES (1, '2026-01-01T00:00:00Z', 'running', 'timing', 2, 'lltrace-tiny', 'F32');"
            "WITH RECURSIVE c(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM c WHERE i < 31)"
            " INSERT INTO weights(run_id, id, name, type, n_dims, ne0, ne1, ne2, ne3, bytes, bpw, layer, file_offset)"
            " SELECT 1, i, 'blk.' || (i / 16) || '.w' || i, 'f32', 2, 64, 64, 1, 1, 16384, 32, i / 16, i * 16384 FROM c;"
            "PRAGMA journal_mode=DELETE;", NULL, NULL, NULL) != SQLITE_OK) abort();
    llt_store_close(st);
    FILE * f = fopen(path, "rb");
    if (!f || fseek(f, 0, SEEK_END) != 0) abort();
    template_size = (size_t) ftell(f);
    rewind(f);
    if (!(template_bytes = malloc(template_size)) || fread(template_bytes, 1, template_size, f) != template_size) abort();
    fclose(f);
}

int LLVMFuzzerTestOneInput(const uint8_t * data, size_t size) {
    const char * log = fuzz_file("-log-1", data, size);
    char trace[600], dir[600], side[700];
    snprintf(trace, sizeof(trace), "%.*s", (int) (strlen(log) - strlen("-log-1")), log);
    snprintf(dir, sizeof(dir), "%.*s", (int) (strrchr(log, '/') - log), log);
    if (!template_bytes) make_template(dir);
    snprintf(side, sizeof(side), "%s-wal", trace);
    unlink(side);
    snprintf(side, sizeof(side), "%s-shm", trace);
    unlink(side);
    FILE * f = fopen(trace, "wb");
    if (!f || fwrite(template_bytes, 1, template_size, f) != template_size || fclose(f) != 0) abort();

    struct llt_store * st = NULL;
    if (llt_store_open(trace, LLT_STORE_WRITE, &st) == LLT_OK) llt_store_close(st);
    unlink(log); // a log set aside or refused must not stay for the next input
    snprintf(side, sizeof(side), "%s.damaged", log);
    unlink(side); // nor one kept as damaged
    read_trace(trace);
    return 0;
}
