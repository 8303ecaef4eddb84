// The step log's file format, shared by its writer (steplog.c) and its reader (steplog_replay.c).
// Private to the trace layer.
//
// The step log: the batches of a running trace that the writer has not committed yet.
//
// Two files a run, <trace>-log-<run id> and <trace>-log-<run id>.1, the same format: capture
// appends to one while the writer commits the batches of the other, then empties that one and
// the two swap (writer.c). So a log holds only what is not yet committed, and its size stays
// bounded whatever the run's length (LOG_SOFT_MAX, LOG_HARD_MAX).
//
// Each file, native byte order (it is read back on the same machine):
//   1. header (struct log_header): magic "LLTL", u32 version (7), i64 run id, i64 pid of the
//      writing process
//   2. records, each: u32 kind, u32 payload size, the payload, then zero bytes up to a multiple
//      of 8 (so every record, and the word that publishes a batch, is aligned)
//      LOG_GRAPH  struct log_graph, struct node_rec[n_nodes], then n_strings strings, each
//                 u32 length + bytes (no NUL)
//      LOG_STEP   struct log_step, then struct node_time[n_times] (the timed nodes), then
//                 struct split_time[n_split_times] (the timed splits)
//      LOG_TOKENS struct log_token[n]  (n from the size)
//      LOG_STATS  struct log_stat[n]
//      LOG_DIFFS  struct log_diff[n]
//      LOG_PARITY struct log_parity, then top_k_len bytes of top-k text (one record per row)
//      LOG_ROUTES struct log_route[n]  (version 4: the experts of MoE layers; 5: row, sequence)
//      LOG_IVS    struct log_iv[n]     (version 6: the interventions applied)
//      LOG_END    (empty) closes a batch
//   3. a record of kind 0 ends the log; the file may hold stale bytes after it
// Every record struct has fixed-width fields and a size asserted below; the rows of a batch
// are converted to and from them, so no struct of the public API is ever written raw. The
// reader copies each record out (memcpy, no pointer into the file) and checks every count,
// index and enum against what it can hold before anything uses it.
// The file is mapped shared: a batch is copied in with memcpy (no system call per step) and
// published by storing its first kind last, over the old end mark, so a process killed at
// any instant leaves whole batches only: the log of a killed process ends at a kind 0 (or a
// header never written, all zeros). Anything else is damage: recovery replays the whole
// batches before it and keeps the file beside the trace as <log>.damaged, never deleted.
// Emptying the log moves the end mark back to the header; the pages stay and are reused. The
// running process holds an exclusive flock() on both files: a log nobody holds belongs to a
// process that died, and llt_steplog_replay_dead() hands its batches to recovery (recovery.c).
#pragma once

#include "trace/batch.h"

#include <stdint.h>

// A log past LOG_SOFT_MAX bytes wakes the writer to commit it early; one past LOG_HARD_MAX
// makes the next decode call wait until the writer has swapped the logs. A log file grows by
// doubling from 512 KiB up to 4 MiB, then by 1 MiB: each stays at 4 MiB, the two at 8 MiB a
// run, whatever its length, as long as one decode call's batch is under 1 MiB (it is a graph
// structure, its times and statistics: about 250 bytes a node).
#define LOG_SOFT_MAX ((size_t) 512 << 10)
#define LOG_HARD_MAX ((size_t) 3 << 20)

#define LOG_MAGIC   "LLTL"
#define LOG_VERSION 7 // 4: tokens' sequences, node_rec.device, split, copied; split times; routing
                      // 5: a route's row and sequence
                      // 6: interventions
                      // 7: a step's phase (log_step.phase, 2 warmup; 5 and 6 had is_prompt 0/1, the
                      //    same values for gen and prompt): versions 5 and 6 are read too
#define LOG_VERSION_OLDEST 5

enum log_kind { LOG_GRAPH = 1, LOG_STEP = 2, LOG_TOKENS = 3, LOG_END = 4, LOG_STATS = 5, LOG_DIFFS = 6, LOG_PARITY = 7,
                LOG_ROUTES = 8, LOG_IVS = 9 };

struct log_header {
    char     magic[4];
    uint32_t version;
    int64_t  run_id;
    int64_t  pid;
};
_Static_assert(sizeof(struct log_header) == 24, "log header layout");

struct log_record {
    uint32_t kind;
    uint32_t size; // of the payload, without the padding
};
_Static_assert(sizeof(struct log_record) == 8, "log record layout");

struct log_graph {
    int64_t id;
    int32_t n_nodes, n_strings;
};
_Static_assert(sizeof(struct log_graph) == 16, "log graph layout");
// written as they are: the library's own fixed-width records (batch.h)
_Static_assert(sizeof(struct node_rec) == 64 + 4 * 4 + 4 * 8 + 8 + 7 * 4 + GGML_MAX_SRC * (4 + 4 + 8) + 4 /* padding before src_bytes */,
               "node_rec layout");
_Static_assert(sizeof(struct split_time) == 32, "split_time layout");
_Static_assert(sizeof(struct node_time) == 12, "node_time layout");

enum log_phase { LOG_PHASE_GEN = 0, LOG_PHASE_PROMPT = 1, LOG_PHASE_WARMUP = 2 };

struct log_step {
    int64_t step, decode, graph_id;
    int64_t t_begin_ns, t_end_ns, compute_begin_ns, compute_end_ns, t_sample_ns;
    int32_t pos0, n_tokens, phase, n_times /* phase: enum log_phase */, time_shift, n_split_times;
    int64_t seq_mask;
};
_Static_assert(sizeof(struct log_step) == 96, "log step layout");

struct log_token {
    int64_t seq, step;
    int32_t pos, token, is_prompt, piece_len;
    char    piece[128];
    int32_t seq_id, output;
};
_Static_assert(sizeof(struct log_token) == 168, "log token layout");

struct log_stat {
    int64_t step;
    int32_t idx, unused;
    int64_t n, n_nan, n_pinf, n_ninf, n_zero;
    double  min, max, mean, std, absmax;
};
_Static_assert(sizeof(struct log_stat) == 96, "log stat layout");

struct log_diff {
    int64_t step;
    int32_t idx, shape_ok;
    char    name[64];
    int64_t n, n_finite, a_nonfinite, b_nonfinite, n_exceed, max_abs_index;
    double  max_abs, mean_abs, max_rel, mean_rel, rmse, nmse, cosine;
};
_Static_assert(sizeof(struct log_diff) == 184, "log diff layout");
_Static_assert(GGML_MAX_NAME <= 64, "a node name fits a log diff");

struct log_parity {
    int32_t step, pos, token, top_k_len;
    char    piece[64];
    int32_t seq_id, unused;
};
_Static_assert(sizeof(struct log_parity) == 88, "log parity layout");

struct log_route {
    int64_t step;
    int32_t layer, pos, rank, expert;
    float   weight;
    int32_t row, seq_id, unused;
};
_Static_assert(sizeof(struct log_route) == 40, "log route layout");

struct log_iv {
    int64_t step, n_changed;
    int32_t idx, iv;
    char    node[64];
};
_Static_assert(sizeof(struct log_iv) == 88, "log iv layout");


// the file of one of a run's two logs: <trace>-log-<run id> (which 0) or <trace>-log-<run id>.1
void llt_steplog_path(char * out, size_t size, const char * trace_path, int64_t run_id, int which);
