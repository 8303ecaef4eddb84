// The debugger's state, shared by the files of src/debug; private to the library.
//
// Files: debug.c (the node hook: which nodes to ask for, when to pause, the pause itself),
// commands.c (each command line: parsed, run, answered; the changes at a pause go through the
// interventions' own code, lltrace/intervene.h), values.c (a node's values read for
// `print` and `watch`: which earlier nodes still hold theirs, slices, statistics), reply.c
// (replies as text or JSON), server.c (the Unix socket of exec --debug), client.c (a controller
// of that socket that never waits: lltrace serve --debug).
#pragma once

#include "lltrace/debug.h"
#include "lltrace/tensors.h"
#include "core/internal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>

enum dbg_cond { COND_NONE, COND_NAN, COND_ABSMAX };

struct breakpoint {
    int32_t       id;
    bool          watch;        // a watch: statistics at every step, no pause
    char *        glob;         // node name pattern; NULL: any node
    char          op[32];       // "" any
    int32_t       layer, seq;   // -1 any
    int64_t       step;         // -1 any
    enum dbg_cond cond;
    double        absmax;       // COND_ABSMAX: pause when max |x| is above it
    int64_t       hits;
    char          text[256];    // the spec as given, for `info breakpoints`
};

// what the program does until the next pause
enum dbg_mode {
    MODE_RUN,   // until a breakpoint
    MODE_NEXT,  // until the next node that computes
    MODE_LAYER, // ... of another layer
    MODE_TOKEN, // ... of the next step (decode)
    MODE_QUIT,  // to its end, without pausing
};

struct llt_debug {
    struct llt_debug_io io;
    bool                json;
    pthread_mutex_t     lock;       // everything below; held by the hook while it decides
    pthread_cond_t      changed;    // paused, resumed or exited
    atomic_bool         armed;      // a breakpoint, watch or step exists: the hook asks for nodes

    struct breakpoint * bps;
    int32_t             n_bps, cap_bps, next_id;

    enum dbg_mode       mode;
    int64_t             from_step;  // where the step commands started
    int32_t             from_idx, from_layer;

    bool                started;    // the program runs (pull mode: after `run`)
    bool                paused;     // inference waits in the post call of cur
    bool                resumed;    // a command let the pause go
    int64_t             n_resumes;  // commands that resumed the program, so far
    bool                exited;     // the program ended
    bool                quit;       // `quit`: the program should end
    struct llt_node_view cur;       // the paused node (cur.t's data is valid while paused)
    int32_t             stop_bp;    // the breakpoint that paused it; 0 a step command
    struct llt_iv_set * ivs;        // the changes made at pauses (zero, scale, add, set), made on first use
    bool                flash_attn; // the run computes attention in one node: no kq, kq_soft_max, kqv
    bool                no_wait;    // `wait off`: the socket reads the next command at once after a
                                    // resume, not at the next pause (a live controller: serve)
};

// commands.c: runs one command line, the lock held; resumes a pause when the command does
void llt_dbg_run_line(struct llt_debug * d, const char * line);
// debug.c: arms the hook when something needs nodes
void llt_dbg_rearm(struct llt_debug * d);
// debug.c: lets a pause go on with mode (the lock held)
void llt_dbg_resume(struct llt_debug * d, enum dbg_mode mode);
// debug.c: whether a breakpoint matches a node by what is known in its ask call
bool llt_dbg_bp_matches(const struct breakpoint * bp, const struct llt_node_view * v);

// values.c: node values as floats
struct dbg_values {
    int64_t ne[4];       // of the selection, ggml order
    float * v;           // ne[0]*ne[1]*ne[2]*ne[3] values; caller frees
};
// the node named name, the paused one or one computed before it in this step that still holds
// its values, as a view in out; LLT_ENOTFOUND / LLT_EINVAL with the reason
int  llt_dbg_find_node(const struct llt_debug * d, const char * name, struct llt_node_view * out);
// reads t's values in the slice ("" all, or "[a:b, c, :]" per dim in ggml order)
int  llt_dbg_read(const struct ggml_tensor * t, const char * slice, struct dbg_values * out);

// reply.c: one reply, built as text or JSON by the session's format, sent on end
struct reply {
    struct llt_debug * d;
    FILE *             f;
    char *             buf;
    size_t             size;
    bool               json, first, text_sep;
};
void reply_begin(struct reply * r, struct llt_debug * d, const char * kind);
void reply_str(struct reply * r, const char * key, const char * v);
void reply_int(struct reply * r, const char * key, int64_t v);
void reply_num(struct reply * r, const char * key, double v);
void reply_bool(struct reply * r, const char * key, bool v);
void reply_ne(struct reply * r, const char * key, const int64_t * ne);
void reply_stats(struct reply * r, const struct llt_stats * st);
void reply_floats(struct reply * r, const char * key, const float * v, int64_t n);
void reply_node(struct reply * r, const struct llt_node_view * v); // where, stopped: the node and its step
void reply_text(struct reply * r, const char * fmt, ...) __attribute__((format(printf, 2, 3))); // text only
void reply_end(struct reply * r);
void reply_error(struct llt_debug * d, const char * fmt, ...) __attribute__((format(printf, 2, 3)));
