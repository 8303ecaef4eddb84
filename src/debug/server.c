// The debugger over a Unix socket (lltrace exec --debug): a thread in the traced program that
// listens at the socket, one controller (lltrace debug --attach) at a time. The socket is made
// 0600 beside the trace: only its owner can drive the program.
//
// Each line the controller sends is a command (llt_debug_command); replies, and the pauses and
// watches the inference thread reports, go back as lines under the debugger's lock, so lines
// never mix. After a command that resumes the program the thread reads nothing more until the
// program pauses again, so a script's lines run in order (unless the controller said `wait
// off`: then it reads on at once, as serve's page needs); it still notices a controller that
// hangs up, which detaches: breakpoints go and a paused program goes on.
#define _GNU_SOURCE // accept4, POLLRDHUP
#include "debug/debug.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define WAIT_STEP_MS 100 // how often a wait for a pause looks for a hang-up or the end

struct llt_debug_server {
    struct llt_debug * dbg;
    char *             path;
    int                listen_fd;
    int                client_fd;  // -1 none; written under the debugger's lock
    int                wake[2];    // written to by llt_debug_serve_stop()
    pthread_t          thread;
    bool               running;
};

// ---- replies -----------------------------------------------------------------------------

static void send_all(int fd, const char * p, size_t n) {
    while (n > 0) {
        const ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return; // a controller gone: the read side notices and detaches
        p += k;
        n -= (size_t) k;
    }
}

static void reply(const char * line, void * user_data) {
    struct llt_debug_server * s = user_data;
    if (s->client_fd < 0) return;
    send_all(s->client_fd, line, strlen(line));
    send_all(s->client_fd, "\n", 1);
}

// ---- one controller ------------------------------------------------------------------------

// whether fd's peer hung up or stop was asked, without reading what it sent
static bool gone(const struct llt_debug_server * s, int fd) {
    struct pollfd p[2] = { { .fd = fd, .events = POLLRDHUP }, { .fd = s->wake[0], .events = POLLIN } };
    return poll(p, 2, 0) > 0 && ((p[0].revents & (POLLRDHUP | POLLHUP | POLLERR)) || p[1].revents);
}

static void set_client(struct llt_debug_server * s, int fd) {
    pthread_mutex_lock(&s->dbg->lock);
    s->client_fd = fd;
    pthread_mutex_unlock(&s->dbg->lock);
}

// serves one controller until it hangs up or quits; false when the server stops
static bool serve(struct llt_debug_server * s, int fd) {
    char buf[4096];
    size_t len = 0;
    bool stop = false, open = true;
    set_client(s, fd);
    while (open && !stop) {
        struct pollfd p[2] = { { .fd = fd, .events = POLLIN }, { .fd = s->wake[0], .events = POLLIN } };
        if (poll(p, 2, -1) < 0 && errno != EINTR) break;
        if (p[1].revents) { stop = true; break; }
        if (!p[0].revents) continue;
        const ssize_t n = read(fd, buf + len, sizeof(buf) - 1 - len);
        if (n <= 0) break;
        len += (size_t) n;
        char * nl;
        while (open && (nl = memchr(buf, '\n', len))) {
            *nl = '\0';
            const enum llt_debug_after after = llt_debug_command(s->dbg, buf);
            len -= (size_t) (nl + 1 - buf);
            memmove(buf, nl + 1, len);
            if (after == LLT_DEBUG_QUIT) {
                open = false;
                kill(getpid(), SIGINT); // the program ends as on Ctrl-C, cleanly, its runs complete
            }
            // (`wait off`: the next command is read at once; set and read on this thread alone)
            while (after == LLT_DEBUG_RESUMED && !s->dbg->no_wait && !llt_debug_wait_stopped(s->dbg, WAIT_STEP_MS)) {
                if (gone(s, fd)) { open = false; break; }
            }
        }
        if (len == sizeof(buf) - 1) len = 0; // a line longer than any command: dropped
    }
    set_client(s, -1);
    llt_debug_detach(s->dbg);
    close(fd);
    return !stop;
}

static void * listen_thread(void * arg) {
    struct llt_debug_server * s = arg;
    for (;;) {
        struct pollfd p[2] = { { .fd = s->listen_fd, .events = POLLIN }, { .fd = s->wake[0], .events = POLLIN } };
        if (poll(p, 2, -1) < 0 && errno != EINTR) break;
        if (p[1].revents) break;
        if (!p[0].revents) continue;
        const int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd >= 0 && !serve(s, fd)) break;
    }
    return NULL;
}

// ---- start and stop ------------------------------------------------------------------------

// a socket left at path by a program that died: nobody answers there
static bool stale(const char * path, const struct sockaddr_un * sa) {
    struct stat st;
    if (lstat(path, &st) != 0) return errno == ENOENT;
    if (!S_ISSOCK(st.st_mode)) return false;
    const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const bool answers = fd >= 0 && connect(fd, (const struct sockaddr *) sa, sizeof(*sa)) == 0;
    if (fd >= 0) close(fd);
    return !answers && unlink(path) == 0;
}

int llt_debug_serve_start(const char * path, struct llt_debug_server ** out) {
    *out = NULL;
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof(sa.sun_path)) return llt_set_error(LLT_EINVAL, "debugger socket '%s': the path is too long", path);
    strcpy(sa.sun_path, path);
    struct llt_debug_server * s = calloc(1, sizeof(*s));
    if (!s) return llt_set_error(LLT_ENOMEM, "out of memory");
    s->listen_fd = s->client_fd = s->wake[0] = s->wake[1] = -1;
    int rc = LLT_OK;
    if (!(s->path = strdup(path)) || llt_debug_init((struct llt_debug_io) { NULL, reply, s }, false, &s->dbg) != LLT_OK) {
        rc = llt_set_error(LLT_ENOMEM, "out of memory");
    } else if (!stale(path, &sa)) {
        rc = llt_set_error(LLT_EIO, "debugger socket '%s': something else is there (another program being debugged?)", path);
    } else if (pipe2(s->wake, O_CLOEXEC) != 0 || (s->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
               bind(s->listen_fd, (struct sockaddr *) &sa, sizeof(sa)) != 0) {
        rc = llt_set_error(LLT_EIO, "debugger socket '%s': %s", path, strerror(errno));
    } else if (chmod(path, 0600) != 0 || listen(s->listen_fd, 4) != 0) {
        // (made with the umask's mode, which lets no one else write to it, i.e. connect, by default)
        rc = llt_set_error(LLT_EIO, "debugger socket '%s': %s", path, strerror(errno));
        unlink(path);
    }
    if (rc == LLT_OK) {
        // the program's signals are not ours to take: none is delivered on this thread
        sigset_t all, had;
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, &had);
        const int err = pthread_create(&s->thread, NULL, listen_thread, s);
        pthread_sigmask(SIG_SETMASK, &had, NULL);
        if (err != 0) {
            rc = llt_set_error(LLT_EIO, "debugger: cannot start its thread: %s", strerror(err));
            unlink(path);
        }
        s->running = err == 0;
    }
    if (rc != LLT_OK) {
        llt_debug_serve_free(s);
        return rc;
    }
    *out = s;
    return LLT_OK;
}

struct llt_debug * llt_debug_server_debugger(struct llt_debug_server * s) { return s->dbg; }

void llt_debug_serve_stop(struct llt_debug_server * s) {
    if (!s || !s->running) return;
    if (write(s->wake[1], "x", 1) < 0) {} // (a full pipe has woken it already)
    pthread_join(s->thread, NULL);
    s->running = false;
    unlink(s->path);
    llt_debug_detach(s->dbg); // nothing pauses any more
}

void llt_debug_serve_free(struct llt_debug_server * s) {
    if (!s) return;
    llt_debug_serve_stop(s);
    if (s->listen_fd >= 0) close(s->listen_fd);
    if (s->wake[0] >= 0) close(s->wake[0]);
    if (s->wake[1] >= 0) close(s->wake[1]);
    llt_debug_free(s->dbg);
    free(s->path);
    free(s);
}
