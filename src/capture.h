// What capture hands to the writer: node records, steps, tokens, batched per decode call.
// Private to the library.
#pragma once

#include "internal.h"

#include <stdbool.h>
#include <stdint.h>

enum src_kind { SRC_NONE, SRC_NODE, SRC_WEIGHT, SRC_INPUT };

enum node_flag { NODE_VIEW = 1, NODE_NOOP = 2 };

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
    int32_t  buffer;                 // string id
    int32_t  n_src;
    int32_t  src_kind[GGML_MAX_SRC]; // enum src_kind
    int32_t  src_ref [GGML_MAX_SRC]; // node idx, weight id or input name (string id)
    uint64_t src_bytes[GGML_MAX_SRC];
};

struct node_time {
    int64_t begin_ns, end_ns; // since run start; end 0 when the node was not observed
};

// a new graph structure, written once
struct graph_rows {
    int64_t           id;
    int32_t           n_nodes;
    struct node_rec * recs;    // owned
    const char **     strings; // owned array; the strings themselves live as long as the tracer
};

struct step_rows {
    int64_t step, decode, graph_id;
    int32_t pos0, n_tokens;
    bool    is_prompt;
    int64_t t_begin_ns, t_end_ns;             // the decode call; 0 if unknown
    int64_t compute_begin_ns, compute_end_ns; // end 0 if unknown (level graph)
    int32_t n_times;
    struct node_time * times;                 // owned, level timing only
};

struct token_rows {
    int64_t     seq, step;
    int32_t     pos;
    llama_token token;
    bool        is_prompt;
    char        piece[128];
};

// everything one decode call produced: written in one transaction
struct llt_batch {
    struct graph_rows * graphs; int32_t n_graphs, cap_graphs;
    struct step_rows *  steps;  int32_t n_steps,  cap_steps;
    struct token_rows * tokens; int32_t n_tokens, cap_tokens;
    struct llt_batch *  next;
};

void llt_batch_free(struct llt_batch * b);

// ---- the writer: a thread that commits batches to the store, in order --------------------

struct llt_writer;

// starts the thread; the store and registry must outlive it. caller stops with llt_writer_stop()
int  llt_writer_start(struct llt_store * st, const struct llt_registry * reg, int64_t run_id, struct llt_writer ** out);
// queues a batch (the writer frees it)
void llt_writer_submit(struct llt_writer * w, struct llt_batch * b);
// waits until every submitted batch is committed: LLT_OK, or the writer's first error
int  llt_writer_sync(struct llt_writer * w);
// the writer's first error, or NULL; cheap enough to call per step
const char * llt_writer_error(struct llt_writer * w);
// syncs, ends the thread and frees the writer; NULL is fine
void llt_writer_stop(struct llt_writer * w);
