// lltrace serve: the report page of a run, live, on 127.0.0.1 only, while the run is written.
//
// A server on a machine with a browser answers whatever that browser is made to ask:
// - Any web page can send requests here, and one whose name rebinds to 127.0.0.1 (DNS
//   rebinding) can read the answers: the run's prompt, output and paths. So only a request
//   whose Host header names this server (127.0.0.1:PORT, localhost:PORT, [::1]:PORT) is
//   answered; any other, or none, gets 403.
// - One client must not hold up another: every socket is non-blocking and one poll() loop
//   serves up to MAX_CONNS connections, each a small state machine (read the request into its
//   fixed buffer, then send the answer) with a deadline: a client that sends its request or
//   reads its answer too slowly is dropped when it passes. When every slot is taken, the
//   oldest connection still sending its request gives its place to the new one.
// - Memory must not grow with the run: the data keeps the last MAX_TOKENS tokens and
//   candidates (steps decimated and values cut, as in `lltrace report`) and says what it left
//   out; answers in flight share the data they were given (counted references), never a copy.
// The data (the JSON of `lltrace report`) is computed again only when the trace's files
// changed, on a thread of its own so that the loop goes on meanwhile; the page asks for it
// every two seconds. Ctrl-C ends the loop at once (the signal interrupts poll()).
#define _GNU_SOURCE // accept4, strncasecmp
#include "cli.h"
#include "lltrace.h"
#include "page.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

enum {
    MAX_CONNS   = 16,    // connections served at once
    REQ_MAX     = 8192,  // bytes of a request line and headers; a longer request gets 431
    MAX_TOKENS  = 2000,  // tokens and candidates in the data: the last ones
    MAX_BREAKS  = 32,    // --break options
};
#define REQUEST_NS (10 * 1000000000LL) // a request must arrive whole within this after the connection
#define ANSWER_NS  (30 * 1000000000LL) // and its answer be read within this

static const char * usage_text =
    "usage: lltrace serve TRACE [options]\n"
    "\n"
    "Serves the report page of a run (see 'lltrace report') on http://127.0.0.1:PORT/ and\n"
    "keeps it up to date while 'lltrace run -o TRACE' writes the run in another terminal.\n"
    "Only this machine can connect, and only by the name 127.0.0.1, localhost or [::1].\n"
    "Ctrl-C stops it.\n"
    "\n"
    "options:\n"
    "  --port N        the port (default 8177; 0: any free one, printed)\n"
    "  --run ID        the run (default: the last one, also one started after serve)\n"
    "  --lens-k K      logit lens candidates, 0 to 16 (default 5)\n"
    "  --max-tokens N  the tokens and candidates the page shows: the last N (default 2000)\n"
    "  --debug SOCKET  also drive the program that 'lltrace exec -o TRACE --debug' runs, through the\n"
    "                  socket it named: the page shows its pauses, with buttons to step it\n"
    "  --break SPEC    with --debug: a breakpoint to set at once, as the command 'break SPEC' (repeatable)\n"
    "  -h, --help      this help\n"
    "\n"
    "Exit status: 130 stopped by Ctrl-C; 2 bad usage, the port cannot be had or the debugger's\n"
    "socket cannot be reached.\n";

static volatile sig_atomic_t stop;
static void on_sigint(int sig) { (void) sig; stop = 1; }

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

// ---- bodies shared by the answers that send them -----------------------------------------

struct body {
    int    refs;
    size_t n;
    char * bytes; // from open_memstream
};

// takes bytes (freed with the body); NULL, and bytes freed, when out of memory
static struct body * body_new(char * bytes, size_t n) {
    struct body * b = malloc(sizeof(*b));
    if (!b) { free(bytes); return NULL; }
    *b = (struct body) { .refs = 1, .n = n, .bytes = bytes };
    return b;
}

static void body_unref(struct body * b) {
    if (b && --b->refs == 0) { free(b->bytes); free(b); }
}

// ---- the data, computed on a thread of its own --------------------------------------------
//
// Computing the data of a long run, or one with dumped values, takes from a fraction of a
// second to many: the loop goes on serving meanwhile, and the requests for the data wait for
// it (parked, not polled). One computation at a time; the thread says it is done by a byte on
// a pipe that the loop polls.

struct computer {
    pthread_t       thread;
    pthread_mutex_t mu;
    pthread_cond_t  cv;
    int             wake[2];  // pipe: [1] written by the thread when a result is ready
    bool            asked;    // a computation to start
    bool            quit;     // the thread is to end
    struct body *   result;   // the last one's, until the loop takes it (NULL: out of memory)
    const char *    trace;
    struct llt_report_params rp;
};

static void file_key(const char * path, int64_t * size, int64_t * mtime) {
    struct stat sb;
    if (stat(path, &sb) != 0) { *size = -1; *mtime = -1; return; }
    *size = (int64_t) sb.st_size;
    *mtime = (int64_t) sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec;
}

// what says the trace changed: its and its WAL's size and mtime
static void trace_key(const char * trace, int64_t key[4]) {
    char wal[4200];
    snprintf(wal, sizeof(wal), "%s-wal", trace);
    file_key(trace, &key[0], &key[1]);
    file_key(wal, &key[2], &key[3]);
}

// the data of the trace now, or a "waiting" object; NULL when out of memory
static struct body * compute_data(const char * trace, const struct llt_report_params * rp) {
    char * bytes = NULL;
    size_t n = 0;
    FILE * mem = open_memstream(&bytes, &n);
    if (!mem) return NULL;
    struct llt_store * st = NULL;
    int rc = cli_open_trace(trace, LLT_STORE_READ, &st);
    if (rc == LLT_OK) rc = llt_report_write_data(st, rp, mem);
    llt_store_close(st);
    if (rc != LLT_OK) {
        // the trace is not there yet, or has no run yet: the page says so and asks again
        rewind(mem);
        fputs("{\"waiting\":", mem);
        llt_json_write_string(mem, llt_last_error());
        fputs("}", mem);
        fflush(mem);
        n = (size_t) ftell(mem);
    }
    const bool ok = !ferror(mem);
    fclose(mem);
    if (!ok) { free(bytes); return NULL; }
    return body_new(bytes, n);
}

static void * computer_main(void * arg) {
    struct computer * k = arg;
    pthread_mutex_lock(&k->mu);
    for (;;) {
        while (!k->asked && !k->quit) pthread_cond_wait(&k->cv, &k->mu);
        if (k->quit) break;
        k->asked = false;
        pthread_mutex_unlock(&k->mu);
        struct body * b = compute_data(k->trace, &k->rp);
        pthread_mutex_lock(&k->mu);
        k->result = b;
        if (write(k->wake[1], "", 1) != 1) {} // the pipe holds it: the loop reads one byte per result
    }
    pthread_mutex_unlock(&k->mu);
    return NULL;
}

static void computer_ask(struct computer * k) {
    pthread_mutex_lock(&k->mu);
    k->asked = true;
    pthread_cond_signal(&k->cv);
    pthread_mutex_unlock(&k->mu);
}

// the result, once the wake pipe was readable
static struct body * computer_take(struct computer * k) {
    char byte;
    if (read(k->wake[0], &byte, 1) != 1) return NULL;
    pthread_mutex_lock(&k->mu);
    struct body * b = k->result;
    k->result = NULL;
    pthread_mutex_unlock(&k->mu);
    return b;
}

// ---- the request -------------------------------------------------------------------------

// The value of the request's header name (NUL-terminated request, its headers ended by an
// empty line) into out: 1 when it is there once, 0 when absent, -1 when repeated, too long or
// malformed.
static int header_value(const char * req, const char * name, char * out, size_t size) {
    const size_t name_n = strlen(name);
    int found = 0;
    out[0] = '\0';
    for (const char * line = strstr(req, "\r\n"); line && strncmp(line, "\r\n\r\n", 4) != 0;) {
        line += 2;
        const char * end = strstr(line, "\r\n");
        if (!end) return -1;
        if (strncasecmp(line, name, name_n) == 0 && line[name_n] == ':') {
            const char * v = line + name_n + 1, * e = end;
            while (v < e && (*v == ' ' || *v == '\t')) v++;
            while (e > v && (e[-1] == ' ' || e[-1] == '\t')) e--;
            if (++found > 1 || (size_t) (e - v) >= size) return -1;
            memcpy(out, v, (size_t) (e - v));
            out[e - v] = '\0';
        }
        line = end;
    }
    return found;
}

// Whether the request has exactly one Host header, naming this server at port: what a
// browser sends for a page it loaded from http://127.0.0.1:PORT/ (or localhost, [::1]);
// without the port when it is 80. The host goes into host.
static bool host_allowed(const char * req, int port, char host[64]) {
    static const char * const names[] = { "127.0.0.1", "localhost", "[::1]" };
    if (header_value(req, "host", host, 64) != 1) return false;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char want[64];
        snprintf(want, sizeof(want), "%s:%d", names[i], port);
        if (strcasecmp(host, want) == 0 || (port == 80 && strcasecmp(host, names[i]) == 0)) return true;
    }
    return false;
}

// Whether a request that changes something comes from this server's own page: any web page
// can make the browser send a POST here (it cannot read the answer, but the POST acts), and
// the browser then says whose page it was in Origin (and, today's browsers, Sec-Fetch-Site).
// Neither: not a browser's request from a page (curl, a script of this machine's user).
static bool same_origin(const char * req, const char * host) {
    char origin[128], want[80], site[32];
    const int n = header_value(req, "origin", origin, sizeof(origin));
    const int ns = header_value(req, "sec-fetch-site", site, sizeof(site));
    snprintf(want, sizeof(want), "http://%s", host);
    return (n == 0 || (n == 1 && strcasecmp(origin, want) == 0)) &&
           (ns == 0 || (ns == 1 && (strcmp(site, "same-origin") == 0 || strcmp(site, "none") == 0)));
}

// ---- connections -------------------------------------------------------------------------

enum conn_state { CONN_FREE, CONN_READING, CONN_WAITING, CONN_WRITING }; // WAITING: for the data

struct conn {
    enum conn_state state;
    int             fd;
    int64_t         deadline_ns; // dropped when it passes
    char            req[REQ_MAX + 1];
    size_t          got;
    char            head[256];
    size_t          head_n;
    struct body *   hold;        // the body's reference; NULL for a fixed text
    const char *    body;
    size_t          body_n;
    size_t          sent;        // bytes of head, then body
};

struct server {
    int             port;
    const char *    trace;
    struct body *   page;
    struct body *   data;              // the last data computed; NULL before the first
    int64_t         data_key[4];       // the trace's key when it was asked for
    bool            computing;
    int64_t         computing_key[4];
    struct computer computer;
    struct conn     conns[MAX_CONNS];
    struct llt_debug_client * debug;   // --debug: the program's debugger; NULL without
};

static void conn_close(struct conn * c) {
    close(c->fd);
    body_unref(c->hold);
    c->hold = NULL;
    c->state = CONN_FREE;
}

static const char * status_text(int status) {
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 431: return "Request Header Fields Too Large";
    default:  return "Internal Server Error";
    }
}

// sends what the socket takes now; closes the connection when all is sent or it failed
static void conn_write(struct conn * c) {
    while (c->sent < c->head_n + c->body_n) {
        struct iovec iov[2];
        int n = 0;
        if (c->sent < c->head_n) iov[n++] = (struct iovec) { c->head + c->sent, c->head_n - c->sent };
        const size_t in_body = c->sent > c->head_n ? c->sent - c->head_n : 0;
        iov[n++] = (struct iovec) { (char *) c->body + in_body, c->body_n - in_body };
        struct msghdr m = { .msg_iov = iov, .msg_iovlen = (size_t) n };
        ssize_t w = sendmsg(c->fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return; // poll() says when it takes more
        if (w <= 0) break;
        c->sent += (size_t) w;
    }
    conn_close(c);
}

// the answer: hold (a reference the connection takes over) or a fixed text
static void conn_answer(struct conn * c, int status, const char * type, struct body * hold, const char * text) {
    c->hold = hold;
    c->body = hold ? hold->bytes : text ? text : "";
    c->body_n = hold ? hold->n : strlen(c->body);
    int hn = snprintf(c->head, sizeof(c->head),
                      "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                      "Cache-Control: no-store\r\nConnection: close\r\n\r\n",
                      status, status_text(status), type, c->body_n);
    c->head_n = (size_t) hn < sizeof(c->head) ? (size_t) hn : sizeof(c->head) - 1;
    c->sent = 0;
    c->state = CONN_WRITING;
    c->deadline_ns = now_ns() + ANSWER_NS;
    conn_write(c);
}

// ---- the debugger (--debug) ---------------------------------------------------------------

// the answer of GET /debug.json: the debugger's state now
static void debug_state(struct server * s, struct conn * c) {
    char * bytes = NULL;
    size_t n = 0;
    FILE * mem = open_memstream(&bytes, &n);
    if (!mem) { conn_answer(c, 500, "text/plain", NULL, "out of memory\n"); return; }
    llt_debug_client_write_state(s->debug, mem);
    const bool ok = fclose(mem) == 0;
    struct body * b = ok ? body_new(bytes, n) : (free(bytes), NULL);
    if (b) conn_answer(c, 200, "application/json", b, NULL);
    else conn_answer(c, 500, "text/plain", NULL, "out of memory\n");
}

// the value of name in a query string (a=b&c=d, %XX and + decoded) into out; false when it
// is absent, too long or badly encoded
static bool query_param(const char * query, const char * name, char * out, size_t size) {
    const size_t name_n = strlen(name);
    for (const char * p = query; p && *p; p = strchr(p, '&') ? strchr(p, '&') + 1 : NULL) {
        if (strncmp(p, name, name_n) != 0 || p[name_n] != '=') continue;
        size_t o = 0;
        for (p += name_n + 1; *p && *p != '&'; p++) {
            unsigned hex;
            if (o + 1 >= size) return false;
            if (*p == '+') out[o++] = ' ';
            else if (*p != '%') out[o++] = *p;
            else if (sscanf(p + 1, "%2x", &hex) == 1 && isxdigit((unsigned char) p[1]) && isxdigit((unsigned char) p[2])) { out[o++] = (char) hex; p += 2; }
            else return false;
        }
        out[o] = '\0';
        return true;
    }
    return false;
}

// POST /debug/ACTION: a command to the program. Only from this server's own page (or no page
// at all): see same_origin().
static void debug_post(struct server * s, struct conn * c, const char * method, const char * action,
                       const char * query, const char * host) {
    static const struct { const char * name; enum llt_debug_request req; const char * param; } actions[] = {
        { "continue", LLT_DEBUG_CONTINUE, NULL },     { "next", LLT_DEBUG_NEXT, NULL },
        { "step-layer", LLT_DEBUG_STEP_LAYER, NULL }, { "step-token", LLT_DEBUG_STEP_TOKEN, NULL },
        { "break", LLT_DEBUG_BREAK, "spec" },         { "delete", LLT_DEBUG_DELETE, "ids" },
    };
    size_t i = 0;
    while (i < sizeof(actions) / sizeof(actions[0]) && strcmp(action, actions[i].name) != 0) i++;
    if (i == sizeof(actions) / sizeof(actions[0])) { conn_answer(c, 404, "text/plain", NULL, "not found\n"); return; }
    if (strcmp(method, "POST") != 0) { conn_answer(c, 405, "text/plain", NULL, "POST only\n"); return; }
    if (!same_origin(c->req, host)) {
        conn_answer(c, 403, "text/plain", NULL, "forbidden: a request from another site's page\n");
        return;
    }
    char arg[256] = "";
    if (actions[i].param && !query_param(query, actions[i].param, arg, sizeof(arg)) && actions[i].req == LLT_DEBUG_BREAK) {
        conn_answer(c, 400, "text/plain", NULL, "break: give the breakpoint as ?spec=SPEC (URL-encoded)\n");
        return;
    }
    if (llt_debug_client_command(s->debug, actions[i].req, arg) != LLT_OK) {
        // why not now (not paused, the program gone, a bad breakpoint): the page shows it
        char * text = NULL;
        struct body * b = asprintf(&text, "%s\n", llt_last_error()) >= 0 ? body_new(text, strlen(text)) : NULL;
        if (b) conn_answer(c, 409, "text/plain", b, NULL);
        else conn_answer(c, 500, "text/plain", NULL, "out of memory\n");
        return;
    }
    conn_answer(c, 200, "text/plain", NULL, "ok\n");
}

static void conn_route(struct server * s, struct conn * c) {
    char method[8], target[1024], host[64];
    if (sscanf(c->req, "%7s %1023s", method, target) != 2) { conn_answer(c, 400, "text/plain", NULL, "bad request\n"); return; }
    if (!host_allowed(c->req, s->port, host)) {
        conn_answer(c, 403, "text/plain", NULL, "forbidden: this server answers only to Host 127.0.0.1, localhost or [::1] with its port\n");
        return;
    }
    char * q = strchr(target, '?');
    const char * query = "";
    if (q) { *q = '\0'; query = q + 1; }
    if (s->debug && strncmp(target, "/debug/", 7) == 0) { debug_post(s, c, method, target + 7, query, host); return; }
    if (strcmp(method, "GET") != 0) { conn_answer(c, 405, "text/plain", NULL, "GET only\n"); return; }
    if (strcmp(target, "/") == 0 || strcmp(target, "/index.html") == 0) {
        s->page->refs++;
        conn_answer(c, 200, "text/html; charset=utf-8", s->page, NULL);
    } else if (strcmp(target, "/debug.json") == 0) {
        // (without --debug too: a 404 would be an error in the browser's console)
        if (s->debug) debug_state(s, c);
        else conn_answer(c, 200, "application/json", NULL, "{\"state\":\"none\"}");
    } else if (strcmp(target, "/data.json") == 0) {
        int64_t key[4];
        trace_key(s->trace, key);
        if (s->data && memcmp(key, s->data_key, sizeof(key)) == 0) {
            s->data->refs++;
            conn_answer(c, 200, "application/json", s->data, NULL);
            return;
        }
        c->state = CONN_WAITING; // answered by data_arrived()
        if (!s->computing) {
            memcpy(s->computing_key, key, sizeof(key));
            s->computing = true;
            computer_ask(&s->computer);
        }
    } else {
        conn_answer(c, 404, "text/plain", NULL, "not found\n");
    }
}

// reads what has arrived; answers once the headers are whole (a GET's body, if any, unread)
static void conn_read(struct server * s, struct conn * c) {
    for (;;) {
        ssize_t r = recv(c->fd, c->req + c->got, REQ_MAX - c->got, MSG_DONTWAIT);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
        if (r <= 0) { conn_close(c); return; }
        c->got += (size_t) r;
        c->req[c->got] = '\0';
        if (strstr(c->req, "\r\n\r\n")) { conn_route(s, c); return; }
        if (c->got == REQ_MAX) { conn_answer(c, 431, "text/plain", NULL, "request too large\n"); return; }
    }
}

// the computation ended: its data answers every request waiting for it (out of memory: the
// data before, if any; asked again by the next request)
static void data_arrived(struct server * s) {
    struct body * b = computer_take(&s->computer);
    s->computing = false;
    if (b) {
        body_unref(s->data); // answers still sending the old data keep it until they are done
        s->data = b;
        memcpy(s->data_key, s->computing_key, sizeof(s->data_key));
    }
    for (int i = 0; i < MAX_CONNS; i++) {
        struct conn * c = &s->conns[i];
        if (c->state != CONN_WAITING) continue;
        if (s->data) s->data->refs++;
        if (s->data) conn_answer(c, 200, "application/json", s->data, NULL);
        else conn_answer(c, 500, "text/plain", NULL, "out of memory\n");
    }
}

// takes the connections waiting; when every slot is taken, the oldest still sending its
// request makes room, else they wait in the listen queue
static void accept_all(struct server * s, int ls) {
    for (;;) {
        struct conn * slot = NULL, * oldest_reading = NULL;
        for (int i = 0; i < MAX_CONNS && !slot; i++) {
            struct conn * c = &s->conns[i];
            if (c->state == CONN_FREE) slot = c;
            else if (c->state == CONN_READING && (!oldest_reading || c->deadline_ns < oldest_reading->deadline_ns)) oldest_reading = c;
        }
        if (!slot && !oldest_reading) return;
        int fd = accept4(ls, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) return; // EAGAIN: none left; anything else: the next poll() tells
        if (!slot) { conn_close(oldest_reading); slot = oldest_reading; }
        slot->fd = fd;
        slot->got = 0;
        slot->req[0] = '\0';
        slot->hold = NULL;
        slot->state = CONN_READING;
        slot->deadline_ns = now_ns() + REQUEST_NS;
    }
}

// serves until stop: one poll() over the computer's pipe, the debugger's socket, the
// listening socket and every connection reading or writing
static void serve_loop(struct server * s, int ls) {
    struct pollfd pfd[3 + MAX_CONNS];
    struct conn * of[3 + MAX_CONNS];
    while (!stop) {
        const int64_t now = now_ns();
        int64_t next = INT64_MAX;
        int n = 0;
        bool room = false;
        pfd[n] = (struct pollfd) { s->computer.wake[0], POLLIN, 0 };
        of[n++] = NULL;
        const short debug_events = s->debug ? llt_debug_client_events(s->debug) : 0;
        if (debug_events) { // (always at 1)
            pfd[n] = (struct pollfd) { llt_debug_client_fd(s->debug), debug_events, 0 };
            of[n++] = NULL;
        }
        for (int i = 0; i < MAX_CONNS; i++) {
            struct conn * c = &s->conns[i];
            if ((c->state == CONN_READING || c->state == CONN_WRITING) && now >= c->deadline_ns) conn_close(c); // too slow: dropped
            if (c->state == CONN_FREE || c->state == CONN_READING) room = true; // a reading one may give its place
            if (c->state == CONN_FREE || c->state == CONN_WAITING) continue;
            if (c->deadline_ns < next) next = c->deadline_ns;
            pfd[n] = (struct pollfd) { c->fd, c->state == CONN_READING ? POLLIN : POLLOUT, 0 };
            of[n++] = c;
        }
        if (room) {
            pfd[n] = (struct pollfd) { ls, POLLIN, 0 };
            of[n++] = NULL;
        }
        const int timeout_ms = next == INT64_MAX ? -1 : (int) ((next - now) / 1000000 + 1);
        if (poll(pfd, (nfds_t) n, timeout_ms) <= 0) continue; // EINTR: stop is set; 0: a deadline passed
        for (int i = 0; i < n; i++) {
            if (!pfd[i].revents) continue;
            struct conn * c = of[i];
            if (i == 0) data_arrived(s);
            else if (i == 1 && debug_events) llt_debug_client_io(s->debug, pfd[i].revents);
            else if (!c) accept_all(s, ls);
            else if (c->state == CONN_READING) conn_read(s, c);
            else if (c->state == CONN_WRITING) conn_write(c);
        }
    }
}

// the server's state with the page made and the computer's thread started; NULL when out of
// memory or threads. Free with server_free().
static struct server * server_new(const char * trace, const struct llt_report_params * rp, int port) {
    struct server * s = calloc(1, sizeof(*s));
    char * page = NULL;
    size_t n = 0;
    FILE * mem = s ? open_memstream(&page, &n) : NULL;
    if (!mem) goto fail;
    const bool made = cli_page_write(mem, NULL, 0);
    fclose(mem);
    if (!made) { free(page); goto fail; }
    if (!(s->page = body_new(page, n))) goto fail; // (page freed)
    s->port = port;
    s->trace = trace;
    struct computer * k = &s->computer;
    k->trace = trace;
    k->rp = *rp;
    if (pipe2(k->wake, O_CLOEXEC) != 0) goto fail;
    pthread_mutex_init(&k->mu, NULL);
    pthread_cond_init(&k->cv, NULL);
    // the thread blocks Ctrl-C, so that the signal interrupts the loop's poll()
    sigset_t stops, before;
    sigemptyset(&stops);
    sigaddset(&stops, SIGINT);
    sigaddset(&stops, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stops, &before);
    const int started = pthread_create(&k->thread, NULL, computer_main, k);
    pthread_sigmask(SIG_SETMASK, &before, NULL);
    if (started == 0) return s;
    close(k->wake[0]);
    close(k->wake[1]);
fail:
    if (s) body_unref(s->page);
    free(s);
    return NULL;
}

// Closes every connection and ends the computer. One still computing when Ctrl-C came is not
// waited for, so that the command ends at once: it ends with the process, and what it uses
// (s) is left to it.
static void server_free(struct server * s) {
    for (int i = 0; i < MAX_CONNS; i++) {
        if (s->conns[i].state != CONN_FREE) conn_close(&s->conns[i]);
    }
    llt_debug_client_free(s->debug); // the program's debugger detaches: a pause goes on
    s->debug = NULL;
    if (s->computing) return;
    struct computer * k = &s->computer;
    pthread_mutex_lock(&k->mu);
    k->quit = true;
    pthread_cond_signal(&k->cv);
    pthread_mutex_unlock(&k->mu);
    pthread_join(k->thread, NULL);
    close(k->wake[0]);
    close(k->wake[1]);
    pthread_mutex_destroy(&k->mu);
    pthread_cond_destroy(&k->cv);
    body_unref(s->data);
    body_unref(s->page);
    free(s);
}

int cmd_serve(int argc, char ** argv) {
    const char * trace = NULL, * debug = NULL, * v;
    const char * breaks[MAX_BREAKS]; // --break SPEC, in order
    int n_breaks = 0;
    struct llt_report_params rp = llt_report_default_params();
    rp.max_tokens = MAX_TOKENS;
    int64_t port = 8177, iv;
    for (int i = 1; i < argc; i++) {
        const char * a = argv[i];
        if (cli_is_help(a)) { fputs(usage_text, stdout); return CLI_OK; }
        if (strcmp(a, "--port") == 0) {
            if (!(v = cli_value(argc, argv, &i)) || !cli_parse_int(a, v, 0, 65535, &port)) return CLI_USAGE;
        } else if (strcmp(a, "--run") == 0) {
            if (!(v = cli_value(argc, argv, &i)) || !cli_parse_int(a, v, 1, INT64_MAX, &rp.run)) return CLI_USAGE;
        } else if (strcmp(a, "--max-tokens") == 0) {
            if (!(v = cli_value(argc, argv, &i)) || !cli_parse_int(a, v, 1, 1000000, &rp.max_tokens)) return CLI_USAGE;
        } else if (strcmp(a, "--lens-k") == 0) {
            if (!(v = cli_value(argc, argv, &i)) || !cli_parse_int(a, v, 0, LLT_LENS_MAX_K, &iv)) return CLI_USAGE;
            rp.lens_k = (int32_t) iv;
        } else if (strcmp(a, "--debug") == 0) {
            if (!(debug = cli_value(argc, argv, &i))) return CLI_USAGE;
        } else if (strcmp(a, "--break") == 0) {
            if (!(v = cli_value(argc, argv, &i))) return CLI_USAGE;
            if (n_breaks == MAX_BREAKS) { cli_error("serve: more than %d --break options", MAX_BREAKS); return CLI_USAGE; }
            breaks[n_breaks++] = v;
        } else if (a[0] == '-' && a[1] != '\0') {
            cli_error("serve: unknown option '%s' (see 'lltrace serve --help')", a);
            return CLI_USAGE;
        } else if (trace) {
            cli_error("serve: unexpected argument '%s' (one TRACE only)", a);
            return CLI_USAGE;
        } else {
            trace = a;
        }
    }
    if (!trace) {
        cli_error("serve: missing TRACE (see 'lltrace serve --help')");
        return CLI_USAGE;
    }
    if (n_breaks > 0 && !debug) {
        cli_error("serve: --break needs --debug SOCKET (the program's debugger)");
        return CLI_USAGE;
    }
    struct llt_debug_client * dc = NULL;
    if (debug && llt_debug_client_open(debug, &dc) != LLT_OK) {
        cli_error("serve: %s", llt_last_error());
        return CLI_USAGE;
    }
    for (int i = 0; i < n_breaks; i++) {
        // sent as the program reads them; one it refuses shows as the page's error
        if (llt_debug_client_command(dc, LLT_DEBUG_BREAK, breaks[i]) != LLT_OK) {
            cli_error("serve: --break '%s': %s", breaks[i], llt_last_error());
            llt_debug_client_free(dc);
            return CLI_USAGE;
        }
    }
    if (dc) llt_debug_client_io(dc, POLLOUT); // sent now, not after the bandwidth is measured: they hold from their replies on
    int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons((uint16_t) port) };
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK); // this machine only
    socklen_t alen = sizeof(addr);
    if (ls < 0 || setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(ls, (struct sockaddr *) &addr, sizeof(addr)) != 0 || listen(ls, 16) != 0 ||
        getsockname(ls, (struct sockaddr *) &addr, &alen) != 0) {
        cli_error("serve: cannot listen on 127.0.0.1:%lld: %s", (long long) port, strerror(errno));
        if (ls >= 0) close(ls);
        llt_debug_client_free(dc);
        return CLI_USAGE;
    }
    struct sigaction sa = { .sa_handler = on_sigint }; // no SA_RESTART: poll() returns at once
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    fprintf(stderr, "lltrace: serving %s on http://127.0.0.1:%d/ (Ctrl-C stops)\n", trace, ntohs(addr.sin_port));
    rp.bandwidth_gbs = llt_report_measure_bandwidth(); // once: the roofline's limit
    struct server * s = server_new(trace, &rp, ntohs(addr.sin_port));
    if (!s) {
        cli_error("serve: cannot start (out of memory, or no thread)");
        close(ls);
        llt_debug_client_free(dc);
        return CLI_FAIL;
    }
    s->debug = dc;
    if (dc) fprintf(stderr, "lltrace: the page drives the program's debugger at %s\n", debug);
    serve_loop(s, ls);
    close(ls);
    server_free(s);
    fprintf(stderr, "lltrace: serve stopped\n");
    return CLI_INTERRUPTED;
}
