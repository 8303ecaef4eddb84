// lltrace/debug.h: the debugger: breakpoints and step-through on a running model (lltrace
// debug, lltrace exec --debug). Part of lltrace.h.
//
// The debugger hangs on the tracer's node hook (llt_tracer_set_node_hook): in the ask call it
// answers true only for the nodes a breakpoint, a step or a watch needs, so with none of them
// the scheduler computes as at the same level without a debugger. A pause happens in the post
// call of such a node, on the thread that called llama_decode(): only inference waits, while
// the node's output is what the rest of the graph will read.
//
// Commands are lines of text (docs/debugging.md, "Breakpoints and step-through"); each reply
// is one line, for people or (after `format json`) one JSON object. Two ways to feed them:
//   - pull (lltrace debug): io.read_line is set; the debugger reads commands itself, before
//     the program runs (llt_debug_prompt) and whenever it pauses, until one resumes it.
//   - push (lltrace exec --debug): io.read_line is NULL; another thread hands each command to
//     llt_debug_command(), and a paused inference thread waits until one resumes it.
#pragma once

#include "lltrace/tracer.h"

#ifdef __cplusplus
extern "C" {
#endif

struct llt_debug_io {
    // the next command line into buf (without its newline); false at the end of the input
    bool (*read_line)(char * buf, size_t size, void * user_data);
    // one reply line (without its newline), text or JSON as the session's format says
    void (*reply)(const char * line, void * user_data);
    void * user_data;
};

struct llt_debug;

// caller frees with llt_debug_free(); json: replies as JSON from the start
int  llt_debug_init(struct llt_debug_io io, bool json, struct llt_debug ** out);
void llt_debug_free(struct llt_debug * dbg);

// Pull mode, before the program runs: reads and runs commands until `run` (true) or `quit`
// or the end of the input (false: do not run the program).
bool llt_debug_prompt(struct llt_debug * dbg);

// what a command left the program doing
enum llt_debug_after {
    LLT_DEBUG_IDLE,    // as it was (paused, or running)
    LLT_DEBUG_RESUMED, // running until it pauses again (continue, next, step): llt_debug_wait_stopped()
    LLT_DEBUG_QUIT,    // running to its end: `quit`
};

// Push mode: runs one command line. Thread-safe; while inference is paused, a command that
// resumes it (continue, next, step, quit) lets it go.
enum llt_debug_after llt_debug_command(struct llt_debug * dbg, const char * line);

// Push mode: after a command that resumed the program, waits until it pauses again or ends,
// or wait_ms passes (false then: still running).
bool llt_debug_wait_stopped(struct llt_debug * dbg, int wait_ms);

// Push mode over a Unix socket (lltrace exec --debug): a debugger and a thread that listens at
// path (made 0600; a stale socket there is replaced), one controller at a time. Each line it
// reads is a command; replies go back as lines; after a command that resumes the program it
// reads nothing until the program pauses again or ends (`wait off`: it reads on); `quit` sends the process SIGINT (the
// program ends as on Ctrl-C); a controller that goes away detaches. The thread runs with every
// signal blocked. caller frees with llt_debug_serve_free()
struct llt_debug_server;
int  llt_debug_serve_start(const char * path, struct llt_debug_server ** out);
struct llt_debug * llt_debug_server_debugger(struct llt_debug_server * srv); // borrowed, lives with srv
// stops listening, removes the socket and lets a paused program go; nothing pauses after it.
// The debugger stays: tracers may still call its hook (a program's exit stops, never frees)
void llt_debug_serve_stop(struct llt_debug_server * srv);
// stops, then frees the debugger too: only once no tracer has it as its hook; NULL does nothing
void llt_debug_serve_free(struct llt_debug_server * srv);

// Push mode: the controller went away: breakpoints, watches and steps are dropped and a
// paused program goes on.
void llt_debug_detach(struct llt_debug * dbg);

// Connects the debugger to a tracer's node hook (one debugger may serve several tracers: the
// contexts of lltrace exec).
void llt_debug_attach(struct llt_debug * dbg, struct llt_tracer * tr);

// The run computes attention with flash attention (one node): `break`, `watch` and `print` of
// kq-N, kq_soft_max-N, kqv-N, which exist only without it, are refused with the reason.
void llt_debug_set_flash_attn(struct llt_debug * dbg, bool on);

// Whether `quit` asked the program to end (the driver ends the generation after this step).
bool llt_debug_quit_requested(const struct llt_debug * dbg);

// The program ended: one reply says so with the run's status and its generated text (may be
// NULL); in pull mode the commands left are then read and answered (none resumes anything)
// until `quit` or the end of the input.
void llt_debug_exited(struct llt_debug * dbg, const char * status, int run_id, const char * text);

// ---- a controller that never waits (lltrace serve --debug) ----------------------------------
//
// The client side of the socket above, for a program that polls: connect, then poll
// llt_debug_client_fd() for llt_debug_client_events() and call llt_debug_client_io() with
// what poll() returned. It speaks JSON and keeps what a page shows: the last pause, the paused
// node's statistics and its first LLT_DEBUG_CLIENT_MAX_VALUES values (asked for at each
// pause), the breakpoints, the last error, the end.
#define LLT_DEBUG_CLIENT_MAX_VALUES 16384

enum llt_debug_client_state {
    LLT_DEBUG_CLIENT_RUNNING, // the program runs (also before its first pause)
    LLT_DEBUG_CLIENT_PAUSED,  // it waits at a node
    LLT_DEBUG_CLIENT_EXITED,  // it said it ended
    LLT_DEBUG_CLIENT_GONE,    // the connection ended (the program exited, or another controller quit it)
};

// what a client may ask for; the first four resume the program and need a pause
enum llt_debug_request {
    LLT_DEBUG_CONTINUE, LLT_DEBUG_NEXT, LLT_DEBUG_STEP_LAYER, LLT_DEBUG_STEP_TOKEN,
    LLT_DEBUG_BREAK,  // arg: the breakpoint, as after `break` (no control characters)
    LLT_DEBUG_DELETE, // arg: the ids, as after `delete` ("" all)
};

struct llt_debug_client;
// connects to a program's debugger socket (path); caller frees with llt_debug_client_free(),
// which closes the connection (the program's debugger detaches)
int   llt_debug_client_open(const char * path, struct llt_debug_client ** out);
void  llt_debug_client_free(struct llt_debug_client * c);
int   llt_debug_client_fd(const struct llt_debug_client * c);      // -1 once gone
short llt_debug_client_events(const struct llt_debug_client * c);  // for poll(); 0 once gone
void  llt_debug_client_io(struct llt_debug_client * c, short revents);
enum llt_debug_client_state llt_debug_client_state(const struct llt_debug_client * c);
// Sends a request (the client said `wait off`: the program's debugger takes it while the
// program runs too). LLT_EINVAL with the reason when it cannot be done: a resume while not
// paused, a bad arg, the program gone.
int   llt_debug_client_command(struct llt_debug_client * c, enum llt_debug_request req, const char * arg);
// the state as one JSON object (docs/commands/serve.md, "/debug.json")
void  llt_debug_client_write_state(const struct llt_debug_client * c, FILE * f);

#ifdef __cplusplus
}
#endif
