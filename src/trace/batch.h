// The trace layer's private interface: what capture hands it (node records, steps, tokens,
// batched per decode call), the rows writer, the step log, the writer thread and recovery.
// Private to the library.
//
// Files of src/trace and whom they call (no file calls back up this list: no cycles):
//   store.c    (open, close)  ──► schema.c, recovery.c, steplog_replay.c (any logs left?), db.c
//   recovery.c (dead runs)    ──► steplog_replay.c (replay), rows.c, runs.c, db.c
//   writer.c   (the thread)   ──► steplog.c (append), rows.c, db.c
//   steplog.c, steplog_replay.c (the log files) ──► rows.c (llt_batch_free only)
//   rows.c, runs.c, schema.c  ──► db.c (statements, the connection) ──► SQLite
// From outside: capture ──► writer.c, runs.c; analysis/parity.c ──► runs.c; the CLI and
// analysis ──► store.c (the public lltrace/store.h).
//
// steplog.c only writes and reads its file (no SQL); rows.c turns batches into rows; runs.c
// holds a run's own rows (begin, end, killed, weight names, parity records); schema.c makes
// and upgrades the tables; db.c is the connection's statement helpers (trace/db.h).
#pragma once

#include "core/internal.h"

#include <stdbool.h>
#include <stdint.h>

enum src_kind { SRC_NONE, SRC_NODE, SRC_WEIGHT, SRC_INPUT };

enum node_flag {
    NODE_VIEW = 1,  // the output is a view of another tensor
    NODE_NOOP = 2,  // the op computes nothing
    NODE_DUMP = 4,  // matches the dump patterns or the checkpoints
    NODE_REF  = 8,  // the reference dump holds tensors of this name
    NODE_LOUT = 16, // a layer's output (l_out-N): the profile level times it every step
    NODE_FUSABLE = 32, // a MUL that meets ggml-cpu's conditions for fusing with the RMS_NORM before it
    NODE_FUSED = 64,   // and the norm has no other use: the CPU backend computes them in one pass
    NODE_ROUTE = 128,  // an MoE layer's mixing weights (ffn_moe_weights*-N): the expert routing is read at its post call
};

// One node as recorded in the ask call. Records are compared with memcmp, so they are zeroed
// before being filled (padding included).
struct node_rec {
    char     name[GGML_MAX_NAME];
    int32_t  op;                     // enum ggml_op
    int32_t  subop;                  // unary or glu op, -1 for others
    int32_t  type;                   // enum ggml_type
    int32_t  layer;
    int64_t  ne[4];
    uint64_t bytes;
    int32_t  flags;                  // enum node_flag
    int32_t  occ;                    // earlier nodes of the graph with the same name
    int32_t  buffer;                 // string id
    int32_t  n_src;
    int32_t  device;                 // string id: the backend device whose memory holds the output ("CPU", "RPC0", "CUDA0")
    int32_t  split;                  // the scheduler's split: runs of non-view nodes on one device, counted from 0
    int32_t  copied;                 // bit k: src k is the scheduler's copy of the source onto this node's device
    int32_t  src_kind[GGML_MAX_SRC]; // enum src_kind
    int32_t  src_ref [GGML_MAX_SRC]; // node idx, weight id or input name (string id)
    uint64_t src_bytes[GGML_MAX_SRC];
};

// a timed node: its begin and end after its step's compute_begin_ns, in units of
// 2^step_rows.time_shift ns (0, so ns, unless the step computed for more than 4.29 s)
struct node_time {
    int32_t  idx;
    uint32_t begin, end;
};

// a new graph structure, written once
// a split timed at level timing off the CPU: since the run began
struct split_time {
    int32_t split;
    int32_t idx;             // its last node, observed
    int64_t t_begin_ns;      // the end of the previous split (or the computation's begin): its input copies start
    int64_t t_compute_ns;    // its computation began (the ask of its last node)
    int64_t t_end_ns;        // its computation ended (the post of its last node, after the backend synchronised)
};

struct graph_rows {
    int64_t           id;
    int32_t           n_nodes;
    int32_t           n_strings;
    struct node_rec * recs;        // owned
    const char **     strings;     // owned array; the strings live as long as the tracer,
    char *            string_data; // or, for a graph read back from a step log, here (owned)
};

struct step_rows {
    int64_t step, decode, graph_id;
    int64_t t_sample_ns;                      // choosing the token from its logits; 0 if none
    int32_t pos0, n_tokens;
    bool    is_prompt;
    bool    is_warmup;                        // a warm-up decode (llt_tracer_memory_cleared): no prompt of the run
    int64_t t_begin_ns, t_end_ns;             // the decode call; 0 if unknown
    int64_t compute_begin_ns, compute_end_ns; // end 0 if unknown (level graph)
    int64_t seq_mask;                         // bit s: the decode took tokens of sequence s (bit 63: of one >= 63)
    int32_t n_times;                          // timed nodes (levels timing and profile)
    int32_t time_shift;
    struct node_time * times;                 // owned
    int32_t n_split_times;                    // timed splits (timing off the CPU, per split)
    struct split_time * split_times;          // owned
};

struct stat_rows {
    int64_t          step;
    int32_t          idx;
    struct llt_stats st;
};

struct diff_rows {
    int64_t         step;
    int32_t         idx;
    bool            shape_ok;
    char            name[GGML_MAX_NAME]; // the reference tensor
    struct llt_diff d;
};

// a parity record: the top-k list comes formatted (the parity JSON text), the writer stores it
struct parity_rows {
    int32_t     seq_id;  // the llama.cpp sequence the token continues
    int32_t     step, pos;
    llama_token token;
    char        piece[64];
    char *      top_k; // owned
};

// one expert a token chose in an MoE layer (table expert_routing)
struct route_rows {
    int64_t step;
    int32_t layer;
    int32_t row;              // the token's row in the step's ubatch
    int32_t pos, seq_id;      // its position and sequence (-1: not known)
    int32_t rank;             // 0 for the highest-scoring of the token's experts
    int32_t expert;
    float   weight;           // its weight in the mix (after normalising or scaling, where the model does)
};

// an intervention applied to a node in a step (view interventions; the run's list of
// interventions is written when it begins: llt_run_begin)
struct iv_rows {
    int64_t step;
    int64_t n_changed;           // elements written
    int32_t idx;                 // the node
    int32_t iv;                  // the intervention: its index in the run's list
    char    node[GGML_MAX_NAME]; // the node's name
};

struct token_rows {
    int64_t     seq, step;
    int32_t     pos;
    int32_t     seq_id;    // llama.cpp's sequence id (the lowest, for a token in several)
    llama_token token;
    bool        is_prompt;
    int8_t      output;    // its logits were asked for: 1, 0, -1 not known
    char        piece[128];
};

// everything one decode call produced: written in one transaction
struct llt_batch {
    struct graph_rows * graphs; int32_t n_graphs, cap_graphs;
    struct step_rows *  steps;  int32_t n_steps,  cap_steps;
    struct token_rows * tokens; int32_t n_tokens, cap_tokens;
    struct stat_rows *  stats;  int32_t n_stats,  cap_stats;
    struct diff_rows *  diffs;  int32_t n_diffs,  cap_diffs;
    struct parity_rows * parity; int32_t n_parity, cap_parity;
    struct route_rows * routes; int32_t n_routes, cap_routes;
    struct iv_rows *    ivs;    int32_t n_ivs,    cap_ivs;
    struct llt_batch *  next;
};

void llt_batch_free(struct llt_batch * b);

// ---- rows: batches into trace rows (writer.c) ---------------------------------------------

struct llt_rows;

// prepared inserts for one run; weight_names[id] names the weights (borrowed, must outlive rows)
// caller frees with llt_rows_free()
int  llt_rows_init(struct llt_store * st, int64_t run_id, const char * const * weight_names, int32_t n_weights,
                   struct llt_rows ** out);
void llt_rows_free(struct llt_rows * rows);
// writes a list of batches (linked by next) in one transaction; rows already there are kept
int  llt_rows_write(struct llt_rows * rows, const struct llt_batch * batches);

// ---- the step log: crash insurance for batches not yet committed (steplog.c) -------------
//
// Every batch is appended to one of the run's two logs, <trace>-log-<run id>[.1] (one copy
// into a shared mapping per decode call) before the writer commits it; the writer swaps the
// logs when it takes the queued batches and empties the other once they are committed. A
// process that dies leaves its logs behind, and the next llt_store_open() of the trace replays
// them (steplog_replay.c). The format and the size bounds: steplog.h.

struct llt_steplog;

// creates log `which` (0 or 1) of a run and locks it (the lock says the run is alive)
// caller closes with llt_steplog_close()
int    llt_steplog_create(const char * trace_path, int64_t run_id, int which, struct llt_steplog ** out);
int    llt_steplog_append(struct llt_steplog * log, const struct llt_batch * b);
// forgets everything appended so far (all of it is committed)
int    llt_steplog_reset(struct llt_steplog * log);
// bytes the log holds now (its header included)
size_t llt_steplog_used(const struct llt_steplog * log);
// closes the log; removes it when keep is false
void   llt_steplog_close(struct llt_steplog * log, bool keep);
// in a forked child: unmaps and closes the child's copy of the file, so that the lock (shared
// with the parent through the open file, which a mapping holds too) is held by the parent
// alone and goes when the parent dies; the file itself is the parent's and stays
void   llt_steplog_disown(struct llt_steplog * log);

// one call of a replay: a dead run's batches a chunk at a time, in order, then a last call
struct llt_replay {
    int64_t                  run_id;
    const struct llt_batch * batches; // linked by next; freed after the call; NULL in the last call
    bool                     last;    // the logs are read: what remains is to mark the run
    const char *             damage;  // in the last call: the one-line account of a damaged log
                                      // (where, why, the file it was kept as), or NULL
};
// Hands the batches of each dead run's logs (ones no process holds) to fn, in chunks of
// bounded size, and removes the logs when every call returned LLT_OK; a damaged log gives its
// whole batches up to the damage and is kept as <log>.damaged. Returns the runs replayed, or
// fn's error.
int  llt_steplog_replay_dead(const char * trace_path, int (*fn)(const struct llt_replay * r, void * user_data),
                             void * user_data);
// whether a trace has step logs (of live or dead runs)
bool llt_steplog_any(const char * trace_path);

// ---- recovery (recovery.c) ----------------------------------------------------------------

// replays the step logs of dead runs into a trace opened for writing and marks those runs
// killed; returns the runs recovered. A damaged log's account goes into its run's error and
// into *note (size bytes; left as it is when no log was damaged)
int  llt_trace_recover(struct llt_store * st, char * note, size_t size);

// ---- the writer: a thread that commits batches to the store, in order --------------------

struct llt_writer;

// starts the thread; the store and weight names must outlive it. caller stops with llt_writer_stop()
int  llt_writer_start(struct llt_store * st, int64_t run_id, const char * const * weight_names, int32_t n_weights,
                      struct llt_writer ** out);
// logs and queues a batch (the writer frees it)
void llt_writer_submit(struct llt_writer * w, struct llt_batch * b);
// waits until every submitted batch is committed: LLT_OK, or the writer's first error
int  llt_writer_sync(struct llt_writer * w);
// the writer's first error, or NULL; cheap enough to call per step
const char * llt_writer_error(struct llt_writer * w);
// in a forked child, where the thread does not exist: lets go of the parent's step logs
// (llt_steplog_disown) and touches nothing else of the writer, which is the parent's
void llt_writer_disown(struct llt_writer * w);
// syncs (the late rows too), ends the thread and frees the writer: LLT_OK, or the writer's
// first error, saying from which step the trace lacks rows (its log then stays, for the next
// open that can write to replay); NULL is fine
int  llt_writer_stop(struct llt_writer * w);
