// lltrace exec: run an unmodified llama.cpp program with the preload library, tracing every
// context it decodes with (lltrace/exec.h: the preload library and its LLTRACE_* variables).
#define _GNU_SOURCE // execvp's environment, setenv
#include "cli.h"
#include "lltrace.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static const char * usage_text =
    "usage: lltrace exec [options] -- PROGRAM [ARGS...]\n"
    "\n"
    "Runs PROGRAM, a llama.cpp program as it is (llama-cli, llama-completion, llama-server, a\n"
    "node-llama-cpp script ...), and traces every llama.cpp context it decodes with into a run:\n"
    "every graph node of every step, the tokens of every sequence, as `lltrace run` does. PROGRAM\n"
    "must load llama.cpp as a shared library (libllama.so) of the version lltrace was built for.\n"
    "\n"
    "  -o, --output TRACE   trace file; runs are appended (default lltrace.db)\n"
    "  --level LEVEL        graph (default), timing, profile or values (as in `lltrace run`)\n"
    "  --dump PATTERN       dump nodes whose name matches (glob, or regex after 're:'); repeatable;\n"
    "                       each run's dump goes to TRACE.run<ID>.gguf\n"
    "  --dump-layer N       only nodes of layer N\n"
    "  --dump-step N|A-B    only these steps\n"
    "  --dump-sources       also dump each dumped node's src0..src2\n"
    "  --dump-type T        native (default), f32 or f16\n"
    "  --checkpoints        dump the named checkpoints (turns flash attention off)\n"
    "  --layer N            checkpoints of layer N only\n"
    "  --break-on-nan       record the first node that produces a NaN or Inf (the program goes on)\n"
    "  --stop-on-nan        ... and then end the program (exit status 1)\n"
    "  --reference DUMP     compare every node the dump holds as it is computed\n"
    "  --tolerance-abs X    live comparison tolerances (default 1e-6, 1e-4)\n"
    "  --tolerance-rel Y\n"
    "  --parity PREFIX      each sequence's generated tokens and top-k logits, read from the\n"
    "                       program's own logits, into PREFIX-run<R>-seq<S>.jsonl (and the trace)\n"
    "  --top-k K            logits kept per generated token with --parity (default 10, at most 64)\n"
    "  -q, --quiet          no summary of the runs on stderr\n"
    "  --debug              listen for a debugger at TRACE-debug.sock (0600): breakpoints and\n"
    "                       step-through with 'lltrace debug --attach TRACE-debug.sock'; only the\n"
    "                       inference waits at a pause (docs/debugging.md)\n"
    "\n"
    "The options travel to PROGRAM as LLTRACE_* environment variables (docs/commands/exec.md);\n"
    "LD_PRELOAD=<lltrace's folder>/liblltrace-preload.so PROGRAM with them set works the same.\n"
    "\n"
    "SIGINT, SIGTERM, SIGHUP and SIGQUIT sent to lltrace go on to PROGRAM; lltrace waits for it.\n"
    "Runs PROGRAM ends after such a signal (or the terminal's Ctrl-C) end 'interrupted'.\n"
    "\n"
    "Exit status: PROGRAM's own (128 + N when signal N ended it, or when PROGRAM exited 0 after\n"
    "it got signal N: 130 for an interrupt); 1 when PROGRAM succeeded but\n"
    "nothing was traced or tracing stopped on a failure; 2 bad usage, PROGRAM cannot be run, or an\n"
    "unusable trace.\n";

// ---- options into the environment ----------------------------------------------------------

// a flag and the variable it sets; value NULL: the flag takes a value
struct flag { const char * flag; const char * var; const char * value; };

static const struct flag flags[] = {
    { "--level", "LLTRACE_LEVEL", NULL },           { "--dump-layer", "LLTRACE_DUMP_LAYER", NULL },
    { "--dump-step", "LLTRACE_DUMP_STEP", NULL },   { "--dump-sources", "LLTRACE_DUMP_SOURCES", "1" },
    { "--dump-type", "LLTRACE_DUMP_TYPE", NULL },   { "--checkpoints", "LLTRACE_CHECKPOINTS", "1" },
    { "--layer", "LLTRACE_LAYER", NULL },           { "--break-on-nan", "LLTRACE_BREAK_ON_NAN", "report" },
    { "--stop-on-nan", "LLTRACE_BREAK_ON_NAN", "stop" }, { "--reference", "LLTRACE_REFERENCE", NULL },
    { "--tolerance-abs", "LLTRACE_TOLERANCE_ABS", NULL }, { "--tolerance-rel", "LLTRACE_TOLERANCE_REL", NULL },
    { "--top-k", "LLTRACE_PARITY_TOP_K", NULL },
};

static bool flag_set[sizeof(flags) / sizeof(flags[0])]; // by this command's options
static bool dump_set;

struct exec_opts {
    char         output[PATH_MAX]; // absolute: the program may change its working directory
    const char * parity;  // file prefix
    bool         quiet;
    char         dump[8192];
    char **      argv;    // PROGRAM and its arguments
    char         debug[PATH_MAX + 16]; // --debug: the debugger's socket, beside the trace; "" none
    struct cli_iv_opts iv;
};

static bool set(const char * var, const char * value) {
    if (setenv(var, value, 1) == 0) return true;
    cli_error("cannot set %s: %s", var, strerror(errno));
    return false;
}

// path made absolute against our working directory, into buf: the program reads every path
// it is given in its own, which it may change (sh -c 'cd sub && ...')
static bool absolute(const char * what, const char * path, char * buf, size_t size) {
    char cwd[PATH_MAX];
    if (path[0] == '/') {
        if ((size_t) snprintf(buf, size, "%s", path) < size) return true;
    } else if (!getcwd(cwd, sizeof(cwd))) {
        cli_error("exec: %s '%s': cannot tell the working directory: %s", what, path, strerror(errno));
        return false;
    } else if ((size_t) snprintf(buf, size, "%s/%s", cwd, path) < size) {
        return true;
    }
    cli_error("exec: %s '%s': the path is too long", what, path);
    return false;
}

// a path variable made absolute, when set
static bool absolute_var(const char * var) {
    const char * v = getenv(var);
    char abs[PATH_MAX];
    if (!v || !*v || v[0] == '/') return true;
    return absolute(var, v, abs, sizeof(abs)) && set(var, abs);
}

// the intervention flags, handed to the program as LLTRACE_INTERVENE (a spec's JSON text) with
// their files made absolute
static int set_interventions(const struct cli_iv_opts * iv) {
    struct llt_iv_set * ivs = NULL;
    int rc = cli_iv_build(iv, &ivs);
    if (rc != CLI_OK || !ivs) return rc;
    const int n = llt_iv_set_count(ivs);
    const size_t cap = (size_t) n * 2400 + 3;
    char * text = malloc(cap);
    size_t len = 0;
    if (!text) { llt_iv_set_free(ivs); cli_error("out of memory"); return CLI_FAIL; }
    text[len++] = '[';
    for (int i = 0; i < n && rc == CLI_OK; i++) {
        struct llt_intervention v = *llt_iv_set_get(ivs, i);
        char abs[PATH_MAX];
        if (v.file[0] && !absolute("intervention file", v.file, abs, sizeof(abs))) rc = CLI_USAGE;
        else if (v.file[0] && strlen(abs) >= sizeof(v.file)) { cli_error("exec: '%s': the path is too long", abs); rc = CLI_USAGE; }
        else if (v.file[0]) snprintf(v.file, sizeof(v.file), "%s", abs);
        if (i) text[len++] = ',';
        len += (size_t) llt_iv_format_json(&v, text + len, cap - len - 2);
    }
    text[len++] = ']';
    text[len] = '\0';
    if (rc == CLI_OK && !set("LLTRACE_INTERVENE", text)) rc = CLI_FAIL;
    free(text);
    llt_iv_set_free(ivs);
    return rc;
}

// returns CLI_OK, or the exit code to leave with (-1: help was printed)
static int parse_opts(int argc, char ** argv, struct exec_opts * o) {
    const char * output = "lltrace.db";
    // a variable the caller set is the default: only this command's flags set them
    int i = 1;
    for (; i < argc && strcmp(argv[i], "--") != 0; i++) {
        const char * a = argv[i];
        const char * v = NULL;
#define VALUE() do { if (!(v = cli_value(argc, argv, &i))) return CLI_USAGE; } while (0)
        if (cli_is_help(a)) { fputs(usage_text, stdout); fputs("\n", stdout); fputs(cli_iv_usage, stdout); return -1; }
        else if (!strcmp(a, "-o") || !strcmp(a, "--output")) { VALUE(); output = v; }
        else if (!strcmp(a, "-q") || !strcmp(a, "--quiet"))  { o->quiet = true; }
        else if (!strcmp(a, "--debug")) { o->debug[0] = '+'; } // named once the trace's path is known
        else if (!strcmp(a, "--parity")) { VALUE(); o->parity = v; }
        else if (!strcmp(a, "--dump")) {
            VALUE();
            if (strpbrk(v, " \t\n")) { cli_error("--dump: '%s': a pattern holds no white space", v); return CLI_USAGE; }
            const size_t len = strlen(o->dump);
            if (len + strlen(v) + 2 > sizeof(o->dump)) { cli_error("--dump: too many patterns"); return CLI_USAGE; }
            snprintf(o->dump + len, sizeof(o->dump) - len, "%s%s", len ? " " : "", v);
        } else {
            const struct flag * f = NULL;
            for (size_t k = 0; k < sizeof(flags) / sizeof(flags[0]) && !f; k++) if (!strcmp(a, flags[k].flag)) f = &flags[k];
            if (!f) {
                const int taken = cli_iv_option(argc, argv, &i, &o->iv);
                if (taken < 0) return CLI_USAGE;
                if (taken) continue;
                cli_error("exec: unknown option '%s' (see 'lltrace exec --help')", a);
                return CLI_USAGE;
            }
            if (!f->value) VALUE();
            flag_set[f - flags] = true;
            if (!set(f->var, f->value ? f->value : v)) return CLI_FAIL;
        }
#undef VALUE
    }
    if (i + 1 >= argc) {
        cli_error("exec: no program to run (lltrace exec [options] -- PROGRAM [ARGS...])");
        return CLI_USAGE;
    }
    o->argv = argv + i + 1;
    dump_set = o->dump[0] != '\0';
    if (dump_set && !set("LLTRACE_DUMP", o->dump)) return CLI_FAIL;
    if (o->parity && !getenv("LLTRACE_PARITY_TOP_K") && !set("LLTRACE_PARITY_TOP_K", "10")) return CLI_FAIL;
    if (!o->parity && getenv("LLTRACE_PARITY_TOP_K") && !set("LLTRACE_PARITY_TOP_K", "0")) return CLI_FAIL;
    const int iv_rc = set_interventions(&o->iv);
    if (iv_rc != CLI_OK) return iv_rc;
    if (!absolute("--output", output, o->output, sizeof(o->output))) return CLI_USAGE;
    if (o->debug[0]) {
        snprintf(o->debug, sizeof(o->debug), "%s-debug.sock", o->output);
        if (strlen(o->debug) >= sizeof(((struct sockaddr_un *) 0)->sun_path)) {
            cli_error("exec: --debug: the socket path '%s' is too long for a Unix socket: a shorter -o", o->debug);
            return CLI_USAGE;
        }
        if (!set("LLTRACE_DEBUG", o->debug)) return CLI_FAIL;
    }
    if (!absolute_var("LLTRACE_REFERENCE") || !absolute_var("LLTRACE_ENGINE")) return CLI_USAGE;
    return set("LLTRACE_OUTPUT", o->output) ? CLI_OK : CLI_FAIL;
}

// The engine's refusal of a variable ("LLTRACE_LEVEL='x': ..."), said of the flag that set it
// (a variable the caller set stays named)
static void say_config_error(const char * msg) {
    for (size_t k = 0; k < sizeof(flags) / sizeof(flags[0]); k++) {
        const size_t n = strlen(flags[k].var);
        if (!flag_set[k] || strncmp(msg, flags[k].var, n) != 0 || msg[n] != '=') continue;
        cli_error("exec: %s %s", flags[k].flag, msg + n + 1);
        return;
    }
    if (dump_set && (!strncmp(msg, "LLTRACE_DUMP: ", 14) || !strncmp(msg, "LLTRACE_DUMP=", 13))) {
        cli_error("exec: --dump %s", msg + 13 + (msg[12] == ':'));
        return;
    }
    cli_error("exec: %s", msg);
}

// the preload library beside this program (or LLTRACE_PRELOAD), into buf
static bool find_preload(char * buf, size_t size) {
    const char * env = getenv("LLTRACE_PRELOAD");
    if (env && *env) {
        snprintf(buf, size, "%s", env);
    } else {
        char self[PATH_MAX];
        const ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
        if (n <= 0) { cli_error("exec: cannot tell where lltrace is: %s", strerror(errno)); return false; }
        self[n] = '\0';
        char * slash = strrchr(self, '/');
        if (slash) *slash = '\0';
        if ((size_t) snprintf(buf, size, "%s/liblltrace-preload.so", self) >= size) {
            cli_error("exec: the path of lltrace is too long");
            return false;
        }
    }
    if (access(buf, R_OK) != 0) {
        cli_error("exec: no preload library '%s' (%s): build lltrace whole, or set LLTRACE_PRELOAD", buf, strerror(errno));
        return false;
    }
    char rel[PATH_MAX];
    snprintf(rel, sizeof(rel), "%s", buf);
    return absolute("LLTRACE_PRELOAD", rel, buf, size);
}

// ---- what the program did with llama.cpp (the engine's notes) ------------------------------

// the file the engine notes events in (LLTRACE_STATUS), made empty; false if it cannot be
static bool status_file(char * path, size_t size) {
    const char * tmp = getenv("TMPDIR");
    snprintf(path, size, "%s/lltrace-exec-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    const int fd = mkstemp(path);
    if (fd < 0) {
        cli_error("exec: cannot make a file in %s: %s", tmp && *tmp ? tmp : "/tmp", strerror(errno));
        return false;
    }
    close(fd);
    return set("LLTRACE_STATUS", path);
}

// events of the program and its children: llama.cpp called (the engine loaded), a context
// made, a context that decoded
struct program_notes { bool engine, context, decode; };

static struct program_notes read_notes(const char * path) {
    struct program_notes n = {0};
    FILE * f = fopen(path, "r");
    char line[64];
    while (f && fgets(line, sizeof(line), f)) {
        if (!strncmp(line, "engine ", 7)) n.engine = true;
        else if (!strncmp(line, "context ", 8)) n.context = true;
        else if (!strncmp(line, "decode ", 7)) n.decode = true;
    }
    if (f) fclose(f);
    return n;
}

// why the trace holds no new run, as far as the notes tell
static void say_no_run(const struct exec_opts * o, const struct program_notes * n) {
    const char * prog = o->argv[0];
    if (n->decode) {
        cli_error("%s decoded, but its runs could not be traced (said above): %s holds no new run", prog, o->output);
    } else if (n->context) {
        cli_error("%s made a llama.cpp context but decoded with none: %s holds no new run", prog, o->output);
    } else if (n->engine) {
        cli_error("%s called llama.cpp but made no context: %s holds no new run", prog, o->output);
    } else {
        cli_error("no llama.cpp context was created (%s never called a shared libllama): %s holds no new run", prog,
                  o->output);
    }
}

// ---- after the program ---------------------------------------------------------------------

// each sequence's parity records of run into PREFIX-run<R>-seq<S>.jsonl; false on a write error
static bool write_parity(struct llt_store * st, int64_t run, const char * prefix) {
    struct llt_parity_step * steps = NULL;
    int32_t n = 0;
    if (llt_parity_read_trace(st, (int) run, &steps, &n) != LLT_OK) return true; // none
    bool ok = true;
    struct llt_parity_step * one = malloc((size_t) n * sizeof(*one));
    for (int32_t i = 0; one && i < n; i++) {
        if (steps[i].seq_id < 0) continue;
        // this sequence's steps, numbered from 0, marked done
        const int32_t seq = steps[i].seq_id;
        int32_t m = 0;
        for (int32_t k = i; k < n; k++) {
            if (steps[k].seq_id != seq) continue;
            one[m] = steps[k];
            one[m].step = m;
            m++;
            if (k > i) steps[k].seq_id = -1;
        }
        char path[PATH_MAX];
        snprintf(path, sizeof(path), "%s-run%lld-seq%d.jsonl", prefix, (long long) run, seq);
        if (llt_parity_write(path, one, m) != LLT_OK) {
            cli_error("%s", llt_last_error());
            ok = false;
        }
    }
    if (!one && n > 0) ok = false;
    free(one);
    free(steps);
    return ok;
}

// one line per run the program made; false if none was made or one's tracing failed
static bool summarize(const struct exec_opts * o, int64_t first_run, const struct program_notes * notes) {
    struct llt_store * st = NULL;
    // opened to write: a program killed mid-run leaves step logs, brought in here
    if (cli_open_trace(o->output, LLT_STORE_WRITE, &st) != LLT_OK) {
        cli_error("%s", llt_last_error());
        return false;
    }
    const int last = llt_store_last_run(st);
    bool ok = last >= first_run;
    if (!ok) say_no_run(o, notes);
    for (int64_t id = first_run; id <= last && last > 0; id++) {
        struct llt_read_run r;
        if (llt_read_run(st, id, &r) != LLT_OK) continue;
        if (r.error[0]) ok = false;
        if (!o->quiet) {
            fprintf(stderr, "lltrace: run %lld (%s): %s, %lld steps, %lld prompt + %lld generated tokens, %d sequence%s%s%s\n",
                    (long long) id, r.name[0] ? r.name : r.model_name, r.status, (long long) r.n_steps,
                    (long long) r.n_prompt, (long long) r.n_gen, r.n_seqs, r.n_seqs == 1 ? "" : "s",
                    r.error[0] ? ": " : "", r.error);
        }
        if (o->parity && !write_parity(st, id, o->parity)) ok = false;
    }
    if (!o->quiet && last >= first_run) fprintf(stderr, "lltrace: trace in %s ('lltrace show %s --runs')\n", o->output, o->output);
    llt_store_close(st);
    return ok;
}

// ---- signals: the program's to handle ------------------------------------------------------

// Signals sent to lltrace go on to the program, which decides what to do (llama-server stops
// cleanly, ending its runs); lltrace waits for it and exits with its status. The terminal's
// Ctrl-C and Ctrl-\ reach the program already (same process group): those are not sent twice,
// since a second SIGINT makes llama-server stop at once. Either way the engine's notes get a
// line "signal N" first: a run the program ends after it ends interrupted (engine.c).
static const int forwarded_signals[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT };
static volatile pid_t forward_to;
static volatile sig_atomic_t forwarded; // the last signal the program got, 0 none
static int notes_fd = -1;               // LLTRACE_STATUS, to append to

static void note_signal(int sig) {
    char line[16] = "signal ";
    size_t n = 7;
    if (sig >= 10) line[n++] = (char) ('0' + sig / 10);
    line[n++] = (char) ('0' + sig % 10);
    line[n++] = '\n';
    if (notes_fd >= 0 && write(notes_fd, line, n) != (ssize_t) n) {} // lost: the run reads ok
}

static void forward(int sig, siginfo_t * info, void * uctx) {
    (void) uctx;
    if (info && info->si_pid == forward_to) return;
    if (forward_to <= 0) return;
    note_signal(sig);
    const bool from_terminal = info && info->si_code == SI_KERNEL && (sig == SIGINT || sig == SIGQUIT);
    if (from_terminal || kill(forward_to, sig) == 0) forwarded = sig;
}

static void forward_signals(pid_t pid) {
    forward_to = pid;
    struct sigaction sa = { .sa_sigaction = forward, .sa_flags = SA_SIGINFO | SA_RESTART };
    sigemptyset(&sa.sa_mask);
    for (size_t k = 0; k < sizeof(forwarded_signals) / sizeof(forwarded_signals[0]); k++) sigaction(forwarded_signals[k], &sa, NULL);
}

// ---- the command ---------------------------------------------------------------------------

int cmd_exec(int argc, char ** argv) {
    struct exec_opts o = {0};
    int rc = parse_opts(argc, argv, &o);
    if (rc != CLI_OK) return rc < 0 ? CLI_OK : rc;
    char preload[PATH_MAX], status_path[PATH_MAX];
    if (!find_preload(preload, sizeof(preload))) return CLI_USAGE;

    // the options as the program will read them: refused here rather than there
    struct llt_exec_config * cfg = NULL;
    if (llt_exec_config_from_env(&cfg) != LLT_OK) {
        say_config_error(llt_last_error());
        return CLI_USAGE;
    }
    llt_exec_config_free(cfg);
    // the trace: made or checked now, so that an unusable one stops us before the program runs
    struct llt_store * st = NULL;
    if (cli_open_trace(o.output, LLT_STORE_WRITE, &st) != LLT_OK) {
        cli_error("%s", llt_last_error());
        return CLI_USAGE;
    }
    const int before = llt_store_last_run(st);
    llt_store_close(st);
    if (!status_file(status_path, sizeof(status_path))) return CLI_FAIL;
    notes_fd = open(status_path, O_WRONLY | O_APPEND | O_CLOEXEC);

    // the program's own LD_PRELOAD stays, after ours
    char ld[2 * PATH_MAX];
    const char * had = getenv("LD_PRELOAD");
    snprintf(ld, sizeof(ld), "%s%s%s", preload, had && *had ? ":" : "", had ? had : "");
    fflush(NULL);
    // held until the handlers know the program: a signal between fork and then is not lost
    sigset_t stop, had_mask;
    sigemptyset(&stop);
    for (size_t k = 0; k < sizeof(forwarded_signals) / sizeof(forwarded_signals[0]); k++) sigaddset(&stop, forwarded_signals[k]);
    sigprocmask(SIG_BLOCK, &stop, &had_mask);
    const pid_t pid = fork();
    if (pid < 0) {
        sigprocmask(SIG_SETMASK, &had_mask, NULL);
        cli_error("exec: cannot start %s: %s", o.argv[0], strerror(errno));
        unlink(status_path);
        return CLI_USAGE;
    }
    if (pid == 0) {
        sigprocmask(SIG_SETMASK, &had_mask, NULL);
        setenv("LD_PRELOAD", ld, 1);
        execvp(o.argv[0], o.argv);
        cli_error("exec: cannot run %s: %s", o.argv[0], strerror(errno));
        _exit(127);
    }
    forward_signals(pid);
    sigprocmask(SIG_SETMASK, &had_mask, NULL);
    if (o.debug[0]) fprintf(stderr, "lltrace: debugger at %s: lltrace debug --attach %s\n", o.debug, o.debug);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
    for (size_t k = 0; k < sizeof(forwarded_signals) / sizeof(forwarded_signals[0]); k++) signal(forwarded_signals[k], SIG_DFL);
    if (notes_fd >= 0) close(notes_fd);
    struct stat sst;
    if (o.debug[0] && lstat(o.debug, &sst) == 0 && S_ISSOCK(sst.st_mode)) unlink(o.debug); // left by a program killed
    const struct program_notes notes = read_notes(status_path);
    unlink(status_path);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 127) {
        // execvp failed (said so) or the program's own 127: no trace to speak of either way
        return CLI_USAGE;
    }
    // (the trace is opened to write: the step logs of runs a dead program left are replayed,
    // and those runs end killed)
    const bool traced = summarize(&o, before > 0 ? before + 1 : 1, &notes);
    if (WIFSIGNALED(status)) {
        // said even with -q: the program failed
        cli_error("%s failed: ended by signal %d (%s)", o.argv[0], WTERMSIG(status), strsignal(WTERMSIG(status)));
        return 128 + WTERMSIG(status);
    }
    const int code = WEXITSTATUS(status);
    // stopped on request (it may exit 0 when it stops cleanly): the status says it was stopped
    if (code == 0 && forwarded) return 128 + forwarded;
    return code == 0 && !traced ? CLI_FAIL : code;
}
