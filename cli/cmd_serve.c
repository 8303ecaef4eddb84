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
    "  -h, --help      this help\n"
    "\n"
    "Exit status: 130 stopped by Ctrl-C; 2 bad usage or the port cannot be had.\n";

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

// Whether the request (NUL-terminated, its headers ended by an empty line) has exactly one
// Host header, naming this server at port: what a browser sends for a page it loaded from
// http://127.0.0.1:PORT/ (or localhost, [::1]); without the port when it is 80.
static bool host_allowed(const char * req, int port) {
    static const char * const names[] = { "127.0.0.1", "localhost", "[::1]" };
    char host[64] = "";
    int found = 0;
    for (const char * line = strstr(req, "\r\n"); line && strncmp(line, "\r\n\r\n", 4) != 0;) {
        line += 2;
        const char * end = strstr(line, "\r\n");
        if (!end) return false;
        if (strncasecmp(line, "host:", 5) == 0) {
            const char * v = line + 5, * e = end;
            while (v < e && (*v == ' ' || *v == '\t')) v++;
            while (e > v && (e[-1] == ' ' || e[-1] == '\t')) e--;
            if (++found > 1 || (size_t) (e - v) >= sizeof(host)) return false;
            memcpy(host, v, (size_t) (e - v));
            host[e - v] = '\0';
        }
        line = end;
    }
    if (found != 1) return false;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char want[64];
        snprintf(want, sizeof(want), "%s:%d", names[i], port);
        if (strcasecmp(host, want) == 0 || (port == 80 && strcasecmp(host, names[i]) == 0)) return true;
    }
    return false;
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

static void conn_route(struct server * s, struct conn * c) {
    char method[8], target[256];
    if (sscanf(c->req, "%7s %255s", method, target) != 2) { conn_answer(c, 400, "text/plain", NULL, "bad request\n"); return; }
    if (!host_allowed(c->req, s->port)) {
        conn_answer(c, 403, "text/plain", NULL, "forbidden: this server answers only to Host 127.0.0.1, localhost or [::1] with its port\n");
        return;
    }
    if (strcmp(method, "GET") != 0) { conn_answer(c, 405, "text/plain", NULL, "GET only\n"); return; }
    char * q = strchr(target, '?');
    if (q) *q = '\0';
    if (strcmp(target, "/") == 0 || strcmp(target, "/index.html") == 0) {
        s->page->refs++;
        conn_answer(c, 200, "text/html; charset=utf-8", s->page, NULL);
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

// serves until stop: one poll() over the computer's pipe, the listening socket and every
// connection reading or writing
static void serve_loop(struct server * s, int ls) {
    struct pollfd pfd[2 + MAX_CONNS];
    struct conn * of[2 + MAX_CONNS];
    while (!stop) {
        const int64_t now = now_ns();
        int64_t next = INT64_MAX;
        int n = 0;
        bool room = false;
        pfd[n] = (struct pollfd) { s->computer.wake[0], POLLIN, 0 };
        of[n++] = NULL;
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
            if (pfd[i].fd == s->computer.wake[0]) data_arrived(s);
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
    const char * trace = NULL, * v;
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
        return CLI_FAIL;
    }
    serve_loop(s, ls);
    close(ls);
    server_free(s);
    fprintf(stderr, "lltrace: serve stopped\n");
    return CLI_INTERRUPTED;
}
