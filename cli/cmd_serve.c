// lltrace serve: the report page of a run, live, on 127.0.0.1 only, while the run is written.
//
// One connection at a time, each request read into a fixed buffer: memory stays at that
// buffer and the last data computed, whatever the browser does. The data (the same JSON as
// `lltrace report`) is computed again only when the trace's files changed; the page asks for
// it every two seconds. Ctrl-C ends the loop at once (the signal interrupts poll()).
#include "cli.h"
#include "lltrace.h"
#include "page.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static const char * usage_text =
    "usage: lltrace serve TRACE [options]\n"
    "\n"
    "Serves the report page of a run (see 'lltrace report') on http://127.0.0.1:PORT/ and\n"
    "keeps it up to date while 'lltrace run -o TRACE' writes the run in another terminal.\n"
    "Only this machine can connect. Ctrl-C stops it.\n"
    "\n"
    "options:\n"
    "  --port N     the port (default 8177; 0: any free one, printed)\n"
    "  --run ID     the run (default: the last one, also one started after serve)\n"
    "  --lens-k K   logit lens candidates, 0 to 16 (default 5)\n"
    "  -h, --help   this help\n"
    "\n"
    "Exit status: 130 stopped by Ctrl-C; 2 bad usage or the port cannot be had.\n";

static volatile sig_atomic_t stop;
static void on_sigint(int sig) { (void) sig; stop = 1; }

// ---- the data, computed again when the trace changed -------------------------------------

struct cache {
    char *  data;      // the last JSON, or an error object
    size_t  n;
    int     status;    // its HTTP status: 200, or 500 when out of memory
    int64_t key[4];    // the trace's and its WAL's size and mtime when it was computed
};

static void file_key(const char * path, int64_t * size, int64_t * mtime) {
    struct stat sb;
    if (stat(path, &sb) != 0) { *size = -1; *mtime = -1; return; }
    *size = (int64_t) sb.st_size;
    *mtime = (int64_t) sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec;
}

static void refresh(struct cache * c, const char * trace, const struct llt_report_params * rp) {
    char wal[4200];
    int64_t key[4];
    snprintf(wal, sizeof(wal), "%s-wal", trace);
    file_key(trace, &key[0], &key[1]);
    file_key(wal, &key[2], &key[3]);
    if (c->data && memcmp(key, c->key, sizeof(key)) == 0) return;
    free(c->data);
    c->data = NULL;
    FILE * mem = open_memstream(&c->data, &c->n);
    if (!mem) { c->status = 500; return; }
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
        c->n = (size_t) ftell(mem);
    }
    fclose(mem);
    c->status = 200;
    memcpy(c->key, key, sizeof(key));
}

// ---- HTTP --------------------------------------------------------------------------------

static void send_all(int fd, const char * p, size_t n) {
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0) { if (w < 0 && errno == EINTR && !stop) continue; return; }
        p += w;
        n -= (size_t) w;
    }
}

static void respond(int fd, int status, const char * type, const char * body, size_t n) {
    char head[256];
    int hn = snprintf(head, sizeof(head),
                      "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                      "Cache-Control: no-store\r\nConnection: close\r\n\r\n",
                      status, status == 200 ? "OK" : status == 404 ? "Not Found" : status == 503 ? "Service Unavailable" : "Error",
                      type, n);
    send_all(fd, head, (size_t) hn);
    send_all(fd, body, n);
}

static void handle(int fd, const char * trace, const struct llt_report_params * rp, struct cache * c) {
    char req[8192];
    size_t got = 0;
    req[0] = '\0';
    // the request line and headers, up to the buffer's size; the body (none for GET) unread
    while (got < sizeof(req) - 1 && !strstr(req, "\r\n\r\n")) {
        struct pollfd pf = { fd, POLLIN, 0 };
        if (poll(&pf, 1, 2000) <= 0) break;
        ssize_t r = recv(fd, req + got, sizeof(req) - 1 - got, 0);
        if (r <= 0) break;
        got += (size_t) r;
        req[got] = '\0';
    }
    req[got] = '\0';
    char method[8], target[256];
    if (sscanf(req, "%7s %255s", method, target) != 2) return;
    if (strcmp(method, "GET") != 0) { respond(fd, 405, "text/plain", "GET only\n", 9); return; }
    char * q = strchr(target, '?');
    if (q) *q = '\0';
    if (strcmp(target, "/") == 0 || strcmp(target, "/index.html") == 0) {
        char * page = NULL;
        size_t n = 0;
        FILE * mem = open_memstream(&page, &n);
        if (!mem) return;
        cli_page_write(mem, NULL, 0);
        fclose(mem);
        respond(fd, 200, "text/html; charset=utf-8", page, n);
        free(page);
    } else if (strcmp(target, "/data.json") == 0) {
        refresh(c, trace, rp);
        if (c->data) respond(fd, c->status, "application/json", c->data, c->n);
        else respond(fd, 500, "text/plain", "out of memory\n", 14);
    } else {
        respond(fd, 404, "text/plain", "not found\n", 10);
    }
}

int cmd_serve(int argc, char ** argv) {
    const char * trace = NULL, * v;
    struct llt_report_params rp = llt_report_default_params();
    int64_t port = 8177, iv;
    for (int i = 1; i < argc; i++) {
        const char * a = argv[i];
        if (cli_is_help(a)) { fputs(usage_text, stdout); return CLI_OK; }
        if (strcmp(a, "--port") == 0) {
            if (!(v = cli_value(argc, argv, &i)) || !cli_parse_int(a, v, 0, 65535, &port)) return CLI_USAGE;
        } else if (strcmp(a, "--run") == 0) {
            if (!(v = cli_value(argc, argv, &i)) || !cli_parse_int(a, v, 1, INT64_MAX, &rp.run)) return CLI_USAGE;
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
    int ls = socket(AF_INET, SOCK_STREAM, 0);
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
    struct cache c = {0};
    while (!stop) {
        struct pollfd pf = { ls, POLLIN, 0 };
        if (poll(&pf, 1, -1) <= 0) continue; // EINTR: stop is set
        int fd = accept(ls, NULL, NULL);
        if (fd < 0) continue;
        handle(fd, trace, &rp, &c);
        close(fd);
    }
    close(ls);
    free(c.data);
    fprintf(stderr, "lltrace: serve stopped\n");
    return CLI_INTERRUPTED;
}
