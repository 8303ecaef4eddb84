// lltrace debug: breakpoints and step-through on a run (every option of lltrace run), or on a
// program under `lltrace exec --debug` through its socket (--attach).
#define _GNU_SOURCE // pipe2
#include "cli.h"
#include "lltrace.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static const char * usage_text =
    "usage: lltrace debug [--batch FILE] [--format text|json] [run options]\n"
    "       lltrace debug --attach SOCKET [--batch FILE] [--format text|json]\n"
    "\n"
    "Runs the model as 'lltrace run' does (same options, same trace), stopping where you ask:\n"
    "commands come from FILE, or standard input, one per line; each gets one reply line.\n"
    "Flash attention is off unless -fa says (attention probabilities exist only without it).\n"
    "Ctrl-C at a pause lets the run end after its step, interrupted.\n"
    "\n"
    "  --batch FILE         read the commands from FILE instead of standard input\n"
    "  --format text|json   replies for people (default) or one JSON object per line\n"
    "  --attach SOCKET      drive a program started with 'lltrace exec --debug' (the socket it named)\n"
    "\n"
    "Commands (docs/debugging.md, \"Breakpoints and step-through\"):\n"
    "  break [GLOB] [op:OP] [layer:L] [step:S] [seq:N] [if nan | if absmax>X]\n"
    "  watch GLOB [op:OP] [layer:L] [step:S] [seq:N]   a node's statistics each time it is computed\n"
    "  delete [ID...]   info breakpoints\n"
    "  run, continue    until a breakpoint        next         the next node that computes\n"
    "  step layer       the next layer's first node   step token   the next decode's first node\n"
    "  where            step, positions, layer, node, op, shape, device of the paused node\n"
    "  print [NODE] [SLICE] [stats]   the paused node, or one before it in its step while its memory\n"
    "                   holds it; SLICE [i0, i1, ...] in ggml order, each N, A:B or :\n"
    "  format text|json quit (ends the run after this step; the trace is complete)\n"
    "\n"
    "Exit status: as 'lltrace run'; with --attach 0, or 2 when the socket cannot be reached.\n";

// ---- replies and commands ----------------------------------------------------------------

// the commands, read by lines from fd with poll(), so that Ctrl-C (a byte in sigint[0]) ends
// the wait for one: at a pause the program then goes on and ends interrupted
struct session {
    int    fd;
    int    sigint[2];
    bool   prompt; // a person at a terminal: show a prompt
    bool   eof;
    size_t len;
    char   buf[4096]; // a longer line is read as several
};

static bool read_line(char * out, size_t size, void * user_data) {
    struct session * s = user_data;
    if (s->prompt) { fputs("(lltrace) ", stderr); fflush(stderr); }
    for (;;) {
        const char * nl = memchr(s->buf, '\n', s->len);
        if (nl || (s->eof && s->len > 0) || s->len == sizeof(s->buf)) {
            const size_t n = nl ? (size_t) (nl - s->buf) : s->len;
            snprintf(out, size, "%.*s", (int) n, s->buf);
            out[strcspn(out, "\r")] = '\0';
            s->len -= n + (nl ? 1 : 0);
            memmove(s->buf, s->buf + n + (nl ? 1 : 0), s->len);
            return true;
        }
        if (s->eof) return false;
        struct pollfd p[2] = { { .fd = s->fd, .events = POLLIN }, { .fd = s->sigint[0], .events = POLLIN } };
        if (poll(p, 2, -1) < 0) { if (errno == EINTR) continue; return false; }
        if (p[1].revents) return false; // Ctrl-C
        const ssize_t n = read(s->fd, s->buf + s->len, sizeof(s->buf) - s->len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) s->eof = true;
        else s->len += (size_t) n;
    }
}

static void put_reply(const char * line, void * user_data) {
    (void) user_data;
    puts(line);
    fflush(stdout);
}

// ---- --attach: the commands to the program's socket, its replies to standard output ------

static int attach(const char * path, int in, bool json) {
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof(sa.sun_path)) { cli_error("--attach: socket path '%s' is too long", path); return CLI_USAGE; }
    strcpy(sa.sun_path, path);
    const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *) &sa, sizeof(sa)) != 0) {
        cli_error("cannot reach the debugger at '%s': %s (is the program running under 'lltrace exec --debug'?)", path,
                  strerror(errno));
        if (fd >= 0) close(fd);
        return CLI_USAGE;
    }
    // the format first; its own reply is not the user's
    const char * fmt = json ? "format json\n" : "format text\n";
    bool skip_first = true, in_open = true, last_nl = true;
    if (write(fd, fmt, strlen(fmt)) < 0) { close(fd); cli_error("--attach: %s", strerror(errno)); return CLI_FAIL; }
    char rbuf[65536];
    size_t rlen = 0;
    for (;;) {
        struct pollfd p[2] = { { .fd = fd, .events = POLLIN }, { .fd = in_open ? in : -1, .events = POLLIN } };
        if (poll(p, 2, -1) < 0) { if (errno == EINTR) continue; break; }
        if (p[1].revents) {
            // the bytes as they come (stdio would keep lines poll() no longer sees); the program splits the lines
            char chunk[4096];
            const ssize_t n = read(in, chunk, sizeof(chunk));
            if (n > 0) {
                if (write(fd, chunk, (size_t) n) < 0) break;
                last_nl = chunk[n - 1] == '\n';
            } else if (n == 0 || errno != EINTR) {
                if (!last_nl && write(fd, "\n", 1) < 0) break; // a last line without its newline
                in_open = false;
                shutdown(fd, SHUT_WR); // no more commands: the program goes on by itself
            }
        }
        if (p[0].revents) {
            ssize_t n = read(fd, rbuf + rlen, sizeof(rbuf) - rlen);
            if (n <= 0) break; // the program ended the session
            rlen += (size_t) n;
            char * nl;
            while ((nl = memchr(rbuf, '\n', rlen))) {
                *nl = '\0';
                if (!skip_first) put_reply(rbuf, NULL);
                skip_first = false;
                rlen -= (size_t) (nl + 1 - rbuf);
                memmove(rbuf, nl + 1, rlen);
            }
            if (rlen == sizeof(rbuf)) rlen = 0; // a reply longer than the buffer is cut
        }
    }
    close(fd);
    return CLI_OK;
}

// ---- the command -------------------------------------------------------------------------

int cmd_debug(int argc, char ** argv) {
    const char * batch = NULL, * sock = NULL;
    bool json = false;
    struct session s = { .fd = STDIN_FILENO, .sigint = { -1, -1 } };
    // our options out, the rest to lltrace run's parser
    char ** rest = calloc((size_t) argc + 1, sizeof(char *));
    if (!rest) { cli_error("out of memory"); return CLI_FAIL; }
    int nrest = 0;
    rest[nrest++] = argv[0];
    int exit_code = CLI_USAGE;
    for (int i = 1; i < argc; i++) {
        const char * a = argv[i], * v;
        if (cli_is_help(a)) { fputs(usage_text, stdout); exit_code = CLI_OK; goto done; }
        else if (strcmp(a, "--batch") == 0)  { if (!(v = cli_value(argc, argv, &i))) goto done; batch = v; }
        else if (strcmp(a, "--attach") == 0) { if (!(v = cli_value(argc, argv, &i))) goto done; sock = v; }
        else if (strcmp(a, "--format") == 0) {
            static const char * const formats[] = { "text", "json" };
            int k;
            if (!(v = cli_value(argc, argv, &i)) || !cli_parse_choice(a, v, formats, 2, &k)) goto done;
            json = k == 1;
        }
        else rest[nrest++] = argv[i];
    }
    if (batch) {
        if (llt_input_check(batch, "batch file") != LLT_OK) { cli_error("%s", llt_last_error()); goto done; }
        if ((s.fd = open(batch, O_RDONLY | O_CLOEXEC)) < 0) { cli_error("cannot read batch file '%s': %s", batch, strerror(errno)); goto done; }
    }
    s.prompt = !batch && isatty(STDIN_FILENO);
    if (sock) {
        if (nrest > 1) { cli_error("--attach: '%s' is an option of the run, which the program under exec has", rest[1]); goto done; }
        exit_code = attach(sock, s.fd, json);
        goto done;
    }
    if (pipe2(s.sigint, O_CLOEXEC | O_NONBLOCK) != 0) { cli_error("pipe: %s", strerror(errno)); exit_code = CLI_FAIL; goto done; }
    struct llt_debug * dbg = NULL;
    if (llt_debug_init((struct llt_debug_io) { read_line, put_reply, &s }, json, &dbg) != LLT_OK) {
        cli_error("%s", llt_last_error());
        exit_code = CLI_FAIL;
        goto done;
    }
    exit_code = cli_run_main(nrest, rest, dbg, s.sigint[1]);
    llt_debug_free(dbg);
done:
    if (s.fd > STDIN_FILENO) close(s.fd);
    for (int k = 0; k < 2; k++) if (s.sigint[k] >= 0) close(s.sigint[k]);
    free(rest);
    return exit_code;
}
