// A controller of a program under `lltrace exec --debug` that never blocks (lltrace serve's
// debugger): the client side of the socket's line protocol (server.c), in JSON.
//
// The caller polls the socket and calls llt_debug_client_io() when it is ready; nothing here
// waits. The client keeps what a page shows of the session: the last pause (`stopped`), the
// paused node's statistics and values (asked for by itself at each pause, bounded), the
// breakpoints (asked for after every change and pause), the last error and the end.
//
// The protocol answers each command with exactly one reply, in order, so the replies are
// matched to a queue of what was sent; `stopped` and `exited` come by themselves. The client
// says `wait off` first, so the program's debugger reads its commands while the program runs
// too (a breakpoint set for the next request of an idle server holds at once).
#define _GNU_SOURCE // POLLRDHUP
#include "debug/debug.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define LINE_MAX_BYTES (8 << 20) // a reply longer than this is dropped (values are bounded far below)
#define QUEUE_MAX      64        // commands sent and not answered yet

enum sent { SENT_FORMAT, SENT_WAIT, SENT_BREAK, SENT_DELETE, SENT_INFO, SENT_STATS, SENT_VALUES, SENT_RESUME };

struct llt_debug_client {
    int           fd;               // -1 once the program is gone
    char          path[108];        // the socket's
    enum llt_debug_client_state state;
    int64_t       stops;            // pauses seen so far
    char          gone[256];        // why the connection ended
    // what the page shows: reply lines (JSON objects) as they came, NULL none
    char *        stopped, * stats, * values, * breakpoints, * error, * exited;
    char          slice[96];        // the slice of the values asked for at this pause ("" all)
    // bytes to send
    char *        out;
    size_t        out_n, out_cap;
    // the line being received
    char *        in;
    size_t        in_n, in_cap;
    bool          in_dropping;      // the rest of a line too long to keep
    // what was sent and waits for its reply, oldest first
    enum sent     queue[QUEUE_MAX];
    int           q_head, q_n;
};

// ---- sending -----------------------------------------------------------------------------

static int send_line(struct llt_debug_client * c, enum sent what, const char * line) {
    if (c->q_n == QUEUE_MAX) return llt_set_error(LLT_EINVAL, "debugger: too many commands waiting for their replies");
    const size_t n = strlen(line);
    if (c->out_n + n + 1 > c->out_cap) {
        const size_t cap = (c->out_n + n + 1) * 2;
        char * p = realloc(c->out, cap);
        if (!p) return llt_set_error(LLT_ENOMEM, "out of memory");
        c->out = p;
        c->out_cap = cap;
    }
    memcpy(c->out + c->out_n, line, n);
    c->out[c->out_n + n] = '\n';
    c->out_n += n + 1;
    c->queue[(c->q_head + c->q_n++) % QUEUE_MAX] = what;
    return LLT_OK;
}

static void set_line(char ** slot, const char * line) {
    free(*slot);
    *slot = line ? strdup(line) : NULL; // (out of memory: the page shows nothing there)
}

// the node's shape from a `stopped` reply: "ne":[a, b, ...] (trailing 1s dropped)
static void stopped_ne(const char * line, int64_t ne[4]) {
    for (int d = 0; d < 4; d++) ne[d] = 1;
    const char * p = strstr(line, "\"ne\":[");
    if (!p) return;
    p += 6;
    for (int d = 0; d < 4 && *p != ']'; d++) {
        char * end;
        const long long v = strtoll(p, &end, 10);
        if (end == p) return;
        ne[d] = v > 0 ? v : 1;
        p = end + strspn(end, ", ");
    }
}

// The slice of the paused node that the page gets: at most LLT_DEBUG_CLIENT_MAX_VALUES
// values, the first ones of the outer dimensions cut first (rows of the heatmap go before
// its columns). "" when the node is small enough to send whole.
static void bounded_slice(const int64_t ne_in[4], char * out, size_t size) {
    int64_t keep[4], total = 1;
    for (int d = 0; d < 4; d++) total *= keep[d] = ne_in[d];
    out[0] = '\0';
    if (total <= LLT_DEBUG_CLIENT_MAX_VALUES) return;
    for (int d = 3; d >= 0; d--) {
        int64_t rest = 1;
        for (int e = 0; e < 4; e++) if (e != d) rest *= keep[e];
        if (rest * keep[d] <= LLT_DEBUG_CLIENT_MAX_VALUES) break;
        keep[d] = rest >= LLT_DEBUG_CLIENT_MAX_VALUES ? 1 : LLT_DEBUG_CLIENT_MAX_VALUES / rest;
    }
    snprintf(out, size, "[0:%lld,0:%lld,0:%lld,0:%lld]", (long long) keep[0], (long long) keep[1], (long long) keep[2],
             (long long) keep[3]);
}

// ---- receiving ---------------------------------------------------------------------------

static bool is_reply(const char * line, const char * kind) {
    const size_t n = strlen(kind);
    return strncmp(line, "{\"reply\":\"", 10) == 0 && strncmp(line + 10, kind, n) == 0 && line[10 + n] == '"';
}

// a pause: the client asks for the node's statistics, its values and the breakpoints' hits
static void on_stopped(struct llt_debug_client * c, const char * line) {
    c->state = LLT_DEBUG_CLIENT_PAUSED;
    c->stops++;
    set_line(&c->stopped, line);
    set_line(&c->stats, NULL);
    set_line(&c->values, NULL);
    int64_t ne[4];
    stopped_ne(line, ne);
    bounded_slice(ne, c->slice, sizeof(c->slice));
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "print %s", c->slice);
    // (a full queue or no memory: the page shows no values for this pause)
    if (send_line(c, SENT_STATS, "print stats") == LLT_OK) send_line(c, SENT_VALUES, cmd);
    send_line(c, SENT_INFO, "info breakpoints");
}

static void on_line(struct llt_debug_client * c, const char * line) {
    if (is_reply(line, "stopped")) { on_stopped(c, line); return; }
    if (is_reply(line, "exited")) {
        set_line(&c->exited, line);
        c->state = LLT_DEBUG_CLIENT_EXITED;
        return;
    }
    if (c->q_n == 0) return; // a reply nobody here asked for (a watch's): not shown
    const enum sent what = c->queue[c->q_head];
    c->q_head = (c->q_head + 1) % QUEUE_MAX;
    c->q_n--;
    const bool error = is_reply(line, "error");
    switch (what) {
    case SENT_FORMAT: case SENT_WAIT: break; // (format's reply may still be text)
    case SENT_STATS:  set_line(&c->stats, line); break;
    case SENT_VALUES: set_line(&c->values, line); break;
    case SENT_INFO:   if (!error) set_line(&c->breakpoints, line); break;
    case SENT_BREAK: case SENT_DELETE: case SENT_RESUME: break;
    }
    if (error && what != SENT_STATS && what != SENT_VALUES) set_line(&c->error, line);
}

static void ended(struct llt_debug_client * c, const char * why) {
    if (c->fd < 0) return;
    close(c->fd);
    c->fd = -1;
    if (c->state != LLT_DEBUG_CLIENT_EXITED) c->state = LLT_DEBUG_CLIENT_GONE;
    snprintf(c->gone, sizeof(c->gone), "%s", why);
}

static void receive(struct llt_debug_client * c) {
    for (;;) {
        if (c->in_cap - c->in_n < 65536) {
            const size_t cap = c->in_cap ? c->in_cap * 2 : 131072;
            char * p = cap <= LINE_MAX_BYTES + 65536 ? realloc(c->in, cap) : NULL;
            if (!p) { c->in_n = 0; c->in_dropping = true; } // too long: dropped up to its newline
            else { c->in = p; c->in_cap = cap; }
            if (!c->in) { ended(c, "out of memory"); return; }
        }
        const ssize_t n = recv(c->fd, c->in + c->in_n, c->in_cap - c->in_n - 1, MSG_DONTWAIT);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
        if (n <= 0) { ended(c, n == 0 ? "the program ended the session" : strerror(errno)); return; }
        size_t start = 0, scan = c->in_n;
        c->in_n += (size_t) n;
        for (char * nl; (nl = memchr(c->in + scan, '\n', c->in_n - scan)); scan = start) {
            *nl = '\0';
            if (!c->in_dropping) on_line(c, c->in + start);
            c->in_dropping = false;
            start = (size_t) (nl + 1 - c->in);
        }
        memmove(c->in, c->in + start, c->in_n - start);
        c->in_n -= start;
    }
}

static void transmit(struct llt_debug_client * c) {
    while (c->out_n > 0) {
        const ssize_t n = send(c->fd, c->out, c->out_n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
        if (n <= 0) { ended(c, strerror(errno)); return; }
        memmove(c->out, c->out + n, c->out_n - (size_t) n);
        c->out_n -= (size_t) n;
    }
}

// ---- the API -----------------------------------------------------------------------------

// (re)connects: a new session, in JSON, its breakpoints asked for
static int connect_to(struct llt_debug_client * c) {
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    strcpy(sa.sun_path, c->path);
    // a local socket's connect() does not wait for the program to accept (its backlog takes it)
    const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *) &sa, sizeof(sa)) != 0) {
        const int rc = llt_set_error(LLT_EIO, "cannot reach the debugger at '%s': %s (is the program running under 'lltrace exec --debug'?)",
                                     c->path, strerror(errno));
        if (fd >= 0) close(fd);
        return rc;
    }
    if (c->fd >= 0) close(c->fd);
    c->fd = fd;
    c->state = LLT_DEBUG_CLIENT_RUNNING;
    c->out_n = c->in_n = 0;
    c->in_dropping = false;
    c->q_n = 0;
    int rc = send_line(c, SENT_FORMAT, "format json");
    if (rc == LLT_OK) rc = send_line(c, SENT_WAIT, "wait off");
    return rc != LLT_OK ? rc : send_line(c, SENT_INFO, "info breakpoints");
}

int llt_debug_client_open(const char * path, struct llt_debug_client ** out) {
    *out = NULL;
    struct llt_debug_client * c = calloc(1, sizeof(*c));
    if (!c) return llt_set_error(LLT_ENOMEM, "out of memory");
    c->fd = -1;
    int rc = LLT_OK;
    if (strlen(path) >= sizeof(c->path)) rc = llt_set_error(LLT_EINVAL, "debugger socket '%s': the path is too long", path);
    else rc = (strcpy(c->path, path), connect_to(c));
    if (rc != LLT_OK) { llt_debug_client_free(c); return rc; }
    *out = c;
    return LLT_OK;
}

void llt_debug_client_free(struct llt_debug_client * c) {
    if (!c) return;
    if (c->fd >= 0) close(c->fd); // the program's debugger detaches: breakpoints go, a pause goes on
    free(c->stopped);
    free(c->stats);
    free(c->values);
    free(c->breakpoints);
    free(c->error);
    free(c->exited);
    free(c->out);
    free(c->in);
    free(c);
}

int llt_debug_client_fd(const struct llt_debug_client * c) { return c->fd; }

short llt_debug_client_events(const struct llt_debug_client * c) {
    return c->fd < 0 ? 0 : (short) (POLLIN | POLLRDHUP | (c->out_n > 0 ? POLLOUT : 0));
}

void llt_debug_client_io(struct llt_debug_client * c, short revents) {
    if (c->fd >= 0 && (revents & (POLLIN | POLLHUP | POLLERR | POLLRDHUP))) receive(c);
    if (c->fd >= 0 && (revents & POLLOUT)) transmit(c);
    if (c->fd >= 0 && c->out_n > 0) transmit(c); // what the replies asked for goes at once, if it can
}

enum llt_debug_client_state llt_debug_client_state(const struct llt_debug_client * c) { return c->state; }

int llt_debug_client_command(struct llt_debug_client * c, enum llt_debug_request req, const char * arg) {
    static const char * const resume[] = {
        [LLT_DEBUG_CONTINUE] = "continue", [LLT_DEBUG_NEXT] = "next",
        [LLT_DEBUG_STEP_LAYER] = "step layer", [LLT_DEBUG_STEP_TOKEN] = "step token",
    };
    if (c->fd < 0) return llt_set_error(LLT_EINVAL, "the program is gone: %s", c->gone);
    set_line(&c->error, NULL);
    if (req == LLT_DEBUG_BREAK || req == LLT_DEBUG_DELETE) {
        arg = arg ? arg : "";
        if (req == LLT_DEBUG_BREAK && !*arg) return llt_set_error(LLT_EINVAL, "break: no breakpoint given");
        for (const char * p = arg; *p; p++) {
            if ((unsigned char) *p < 0x20 || *p == 0x7f) return llt_set_error(LLT_EINVAL, "break: a control character in the breakpoint");
        }
        if (strlen(arg) > 240) return llt_set_error(LLT_EINVAL, "break: the breakpoint is longer than 240 bytes");
        char line[256];
        snprintf(line, sizeof(line), "%s %s", req == LLT_DEBUG_BREAK ? "break" : "delete", arg);
        const int rc = send_line(c, req == LLT_DEBUG_BREAK ? SENT_BREAK : SENT_DELETE, line);
        return rc != LLT_OK ? rc : send_line(c, SENT_INFO, "info breakpoints");
    }
    if ((unsigned) req > LLT_DEBUG_STEP_TOKEN) return llt_set_error(LLT_EINVAL, "debugger: unknown request %d", (int) req);
    if (c->state != LLT_DEBUG_CLIENT_PAUSED) return llt_set_error(LLT_EINVAL, "the program is not paused");
    const int rc = send_line(c, SENT_RESUME, resume[req]);
    if (rc != LLT_OK) return rc;
    c->state = LLT_DEBUG_CLIENT_RUNNING;
    set_line(&c->stats, NULL);
    set_line(&c->values, NULL);
    return LLT_OK;
}

void llt_debug_client_write_state(const struct llt_debug_client * c, FILE * f) {
    static const char * const names[] = { "running", "paused", "exited", "gone" };
    fprintf(f, "{\"state\":\"%s\",\"stops\":%lld,\"max_values\":%d,\"slice\":", names[c->state],
            (long long) c->stops, LLT_DEBUG_CLIENT_MAX_VALUES);
    llt_json_write_string(f, c->slice);
    fputs(",\"gone\":", f);
    if (c->fd < 0) llt_json_write_string(f, c->gone);
    else fputs("null", f);
    const struct { const char * key; const char * line; } parts[] = {
        { "stopped", c->stopped }, { "stats", c->stats }, { "values", c->values },
        { "breakpoints", c->breakpoints }, { "error", c->error }, { "exited", c->exited },
    };
    for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
        // each a reply object as the program sent it (JSON, one line)
        fprintf(f, ",\"%s\":%s", parts[i].key, parts[i].line && parts[i].line[0] == '{' ? parts[i].line : "null");
    }
    fputc('}', f);
}
