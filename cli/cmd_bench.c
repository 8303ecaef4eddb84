// lltrace bench: what tracing costs. Interleaved repetitions of the same generation, untraced
// and at each trace level, each in its own process (so peak memory is per run), summarised as a
// Markdown receipt.
// wait4() reports the peak memory of one child
#define _DEFAULT_SOURCE
#include "cli.h"
#include "output.h"
#include "lltrace.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char * usage_text =
    "usage: lltrace bench [options]\n"
    "\n"
    "Measures tracing overhead: the same generation untraced and at each level, interleaved\n"
    "(each repetition starts at the next level), each run in its own process. Writes a Markdown\n"
    "receipt.\n"
    "\n"
    "  -m, --model FILE   GGUF model (default: the built-in 'small' Q4_K_M model)\n"
    "  -p N               prompt tokens (default 32)\n"
    "  -n N               generated tokens (default 64)\n"
    "  -r N               repetitions of each level (default 5)\n"
    "  -t N               threads (default: all cores)\n"
    "  --rpc SERVERS      run the model on llama.cpp RPC servers HOST:PORT,... (as 'lltrace run --rpc')\n"
    "  --levels LIST      comma-separated: off, parity (untraced, top-10 logits kept per step)\n"
    "                     and trace levels graph, timing, profile, values (default off,graph,timing)\n"
    "  -o FILE            write the receipt to FILE too (it always goes to stdout)\n"
    "  --save-samples FILE  write every run's measures to FILE (tab-separated)\n"
    "  --samples FILE     make the receipt from measures saved with --save-samples; runs nothing\n"
    "\n"
    "An overhead smaller than the spread (max - min) of the untraced runs is flagged: it is noise,\n"
    "not a measured cost.\n"
    "Exit status: 0 receipt written, 1 a run failed or the receipt could not be written, 2 bad\n"
    "usage or an unreadable model or samples file, 130 after Ctrl-C.\n";

#define MAX_LEVELS 8
#define MAX_REPS 1000

struct sample {
    double t_prompt_s, t_gen_s;
    int    n_prompt, n_gen;
    long   maxrss_kib;
    long long trace_bytes;
    int    ok;
};

struct bench {
    const char * model;
    int n_prompt, n_gen, reps, threads;
    const char * rpc; // RPC servers, or NULL
    int n_levels;
    int levels[MAX_LEVELS]; // -1 = off
    struct sample * samples; // [rep][level]
    char machine[400];       // where the runs ran
};

// levels: the trace levels, plus two untraced runs
enum { LEVEL_OFF = -1, LEVEL_PARITY = -2 }; // parity: untraced, top-10 logits kept per step

static const char * level_label(int level) {
    return level == LEVEL_OFF ? "off" : level == LEVEL_PARITY ? "parity" : llt_level_name((enum llt_level) level);
}

// ---- one run, in a child process ---------------------------------------------------------

static volatile sig_atomic_t interrupted;
static void on_sigint(int sig) { (void) sig; interrupted = 1; }

static void run_child(const struct bench * b, int level, const char * trace, int fd) {
    signal(SIGINT, SIG_DFL); // Ctrl-C ends the run at once; the parent stops the benchmark
    struct sample s = {0};
    llt_log_init(false);
    llama_token * toks = malloc((size_t) b->n_prompt * sizeof(llama_token));
    // a fixed prompt of ordinary tokens: BOS, then ids cycling through a common range
    toks[0] = 1;
    for (int i = 1; i < b->n_prompt; i++) toks[i] = 1000 + (i * 37) % 20000;
    struct llt_gen_params p = llt_gen_default_params();
    p.model_path = b->model;
    p.prompt_tokens = toks;
    p.n_prompt_tokens = b->n_prompt;
    p.n_predict = b->n_gen;
    p.n_threads = b->threads;
    p.rpc = b->rpc;
    p.level = level < 0 ? LLT_LEVEL_GRAPH : (enum llt_level) level;
    p.parity_top_k = level == LEVEL_PARITY ? 10 : 0;
    struct llt_store * st = NULL;
    struct llt_gen_result r = {0};
    if (level >= 0 && cli_open_trace(trace, LLT_STORE_WRITE, &st) != LLT_OK) goto done;
    if (llt_generate(&p, st, &r) != LLT_OK) goto done;
    llt_store_close(st);
    st = NULL;
    s.t_prompt_s = r.t_prompt_ns / 1e9;
    s.t_gen_s = r.t_gen_ns / 1e9;
    s.n_prompt = r.n_prompt;
    s.n_gen = r.n_gen;
    struct stat sb;
    s.trace_bytes = level >= 0 && stat(trace, &sb) == 0 ? (long long) sb.st_size : 0;
    s.ok = r.trace_error[0] == '\0';
done:
    if (!s.ok) fprintf(stderr, "lltrace: bench run failed: %s\n", r.trace_error[0] ? r.trace_error : llt_last_error());
    llt_store_close(st);
    llt_gen_result_free(&r);
    free(toks);
    (void) !write(fd, &s, sizeof(s));
    _exit(s.ok ? 0 : 1);
}

static int run_one(const struct bench * b, int level, const char * tmpdir, struct sample * out) {
    char trace[600];
    snprintf(trace, sizeof(trace), "%s/bench.db", tmpdir);
    unlink(trace);
    int fds[2];
    if (pipe(fds) != 0) return -1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        close(fds[0]);
        run_child(b, level, trace, fds[1]);
    }
    close(fds[1]);
    struct sample s = {0};
    ssize_t n = read(fds[0], &s, sizeof(s));
    close(fds[0]);
    int status = 0;
    struct rusage ru;
    if (wait4(pid, &status, 0, &ru) < 0) return -1;
    unlink(trace);
    if (n != (ssize_t) sizeof(s) || !WIFEXITED(status) || WEXITSTATUS(status) != 0 || !s.ok) return -1;
    s.maxrss_kib = ru.ru_maxrss;
    *out = s;
    return 0;
}

// ---- statistics and the receipt ----------------------------------------------------------

static int cmp_double(const void * a, const void * b) {
    double x = *(const double *) a, y = *(const double *) b;
    return (x > y) - (x < y);
}

struct summary { double med, min, max; };

static struct summary summarise(double * v, int n) {
    qsort(v, (size_t) n, sizeof(double), cmp_double);
    struct summary s = { n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2, v[0], v[n - 1] };
    return s;
}

enum measure { PROMPT_TPS, GEN_TPS, PROMPT_S, GEN_S, RSS_BYTES, TRACE_BYTES };

static double value(const struct sample * s, enum measure what) {
    switch (what) {
        case PROMPT_TPS: return s->n_prompt / s->t_prompt_s;
        case GEN_TPS:    return s->n_gen / s->t_gen_s;
        case PROMPT_S:   return s->t_prompt_s;
        case GEN_S:      return s->t_gen_s;
        case RSS_BYTES:   return s->maxrss_kib * 1024.0;
        case TRACE_BYTES: return (double) s->trace_bytes;
    }
    return 0;
}

// the per-level summary of one measure over the repetitions
static struct summary measure(const struct bench * b, int li, enum measure what) {
    double v[MAX_REPS];
    for (int r = 0; r < b->reps; r++) v[r] = value(&b->samples[r * b->n_levels + li], what);
    return summarise(v, b->reps);
}

// Overhead of level li against level off as the median of the per-repetition ratios: the runs
// of one repetition follow each other, so drift of the machine's speed cancels out.
static struct summary overhead(const struct bench * b, int li, int off, enum measure what) {
    double v[MAX_REPS];
    for (int r = 0; r < b->reps; r++) {
        v[r] = (value(&b->samples[r * b->n_levels + li], what) / value(&b->samples[r * b->n_levels + off], what) - 1) * 100;
    }
    return summarise(v, b->reps);
}

static void machine(char * buf, size_t size) {
    char model[256] = "unknown CPU";
    FILE * f = fopen("/proc/cpuinfo", "r");
    char line[512];
    while (f && fgets(line, sizeof(line), f)) {
        if (strncmp(line, "model name", 10) == 0) {
            char * c = strchr(line, ':');
            if (c) { snprintf(model, sizeof(model), "%s", c + 2); model[strcspn(model, "\n")] = '\0'; }
            break;
        }
    }
    if (f) fclose(f);
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
    char ram[32];
    snprintf(buf, size, "%s, %ld cores, %s RAM", model, sysconf(_SC_NPROCESSORS_ONLN),
             out_table_text(OUT_BYTES, out_real((double) pages * (double) page), ram, sizeof(ram)));
}

// The untraced runs' own spread, (max - min) / median in percent, for time measure what: an
// overhead smaller than it cannot be told from noise.
static double noise_pct(const struct bench * b, int off, enum measure what) {
    const struct summary s = measure(b, off, what);
    return s.med > 0 ? (s.max - s.min) / s.med * 100 : INFINITY;
}

// an overhead cell: "+3.1%", or "+0.4% ⚠" when the noise of the untraced runs is larger
static bool overhead_cell(const struct bench * b, int li, int off, enum measure what, char * buf, size_t size) {
    const double o = overhead(b, li, off, what).med, noise = noise_pct(b, off, what);
    const bool noisy = noise > fabs(o);
    snprintf(buf, size, "%+.1f%%%s", o, noisy ? " ⚠" : "");
    return noisy;
}

static void write_receipt(FILE * f, const struct bench * b) {
    char date[32];
    time_t now = time(NULL);
    strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    fprintf(f, "## lltrace bench, %s\n\n", date);
    fprintf(f, "- machine: %s\n", b->machine);
    fprintf(f, "- model: `%s`\n", b->model);
    if (b->rpc) fprintf(f, "- on the RPC servers %s\n", b->rpc);
    fprintf(f, "- lltrace %s, llama.cpp %s\n", llt_version(), llt_llama_tag());
    fprintf(f, "- %d-token prompt, %d generated tokens, %d threads, %d interleaved repetitions per level, "
               "each in its own process, in rotating order; median (min–max); time vs off: median of the per-repetition ratios\n\n",
               b->n_prompt, b->n_gen, b->threads, b->reps);
    fprintf(f, "| level | prompt tok/s | generation tok/s | prompt time vs off | generation time vs off | peak RSS | trace |\n");
    fprintf(f, "|---|---|---|---|---|---|---|\n");
    int off = -1;
    for (int li = 0; li < b->n_levels; li++) if (b->levels[li] == LEVEL_OFF) off = li;
    bool noisy = false;
    for (int li = 0; li < b->n_levels; li++) {
        struct summary pt = measure(b, li, PROMPT_TPS), gt = measure(b, li, GEN_TPS);
        char pr[32] = "–", gr[32] = "–";
        if (off >= 0 && li != off) {
            noisy |= overhead_cell(b, li, off, PROMPT_S, pr, sizeof(pr));
            noisy |= overhead_cell(b, li, off, GEN_S, gr, sizeof(gr));
        }
        char rate[6][32], rss[32], trace[32]; // numbers and bytes as the output engine writes them
        const double rates[6] = { pt.med, pt.min, pt.max, gt.med, gt.min, gt.max };
        for (int k = 0; k < 6; k++) out_table_text(OUT_RATE, out_real(rates[k]), rate[k], sizeof(rate[k]));
        fprintf(f, "| %s | %s (%s–%s) | %s (%s–%s) | %s | %s | %s | %s |\n", level_label(b->levels[li]), rate[0], rate[1],
                rate[2], rate[3], rate[4], rate[5], pr, gr,
                out_table_text(OUT_BYTES, out_real(measure(b, li, RSS_BYTES).med), rss, sizeof(rss)),
                out_table_text(OUT_BYTES, out_real(measure(b, li, TRACE_BYTES).med), trace, sizeof(trace)));
    }
    if (noisy) {
        fprintf(f, "\n⚠ smaller than the spread (max − min) of the untraced runs — prompt %.1f%%, generation %.1f%% of "
                   "their median: noise, not a measured overhead; more repetitions (-r) or a quieter machine tell it apart.\n",
                noise_pct(b, off, PROMPT_S), noise_pct(b, off, GEN_S));
    }
    fprintf(f, "\n");
}

// ---- saved samples -----------------------------------------------------------------------
//
// One line per run: level, repetition, prompt seconds, generation seconds, prompt tokens,
// generated tokens, peak RSS KiB, trace bytes; tab-separated, after a header line that names
// the model, the run's shape (prompt and generated tokens, threads) and the machine.

static bool save_samples(const char * path, const struct bench * b) {
    FILE * f = fopen(path, "w");
    if (!f) return false;
    fprintf(f, "# lltrace-bench-samples 1\t%s\t%d\t%d\t%d\t%s\n", b->model, b->n_prompt, b->n_gen, b->threads, b->machine);
    for (int r = 0; r < b->reps; r++) {
        for (int li = 0; li < b->n_levels; li++) {
            const struct sample * s = &b->samples[r * b->n_levels + li];
            fprintf(f, "%s\t%d\t%.9f\t%.9f\t%d\t%d\t%ld\t%lld\n", level_label(b->levels[li]), r, s->t_prompt_s,
                    s->t_gen_s, s->n_prompt, s->n_gen, s->maxrss_kib, s->trace_bytes);
        }
    }
    return fclose(f) == 0;
}

static int level_of(const char * name) {
    return strcmp(name, "off") == 0 ? LEVEL_OFF : strcmp(name, "parity") == 0 ? LEVEL_PARITY : llt_level_from_name(name);
}

// reads samples saved by save_samples into b: lines in the order save_samples writes them
// (repetition by repetition, levels in one order); false with a message naming the line
static bool load_samples(const char * path, struct bench * b, char * model, size_t model_size) {
    if (llt_input_check(path, "samples") != LLT_OK) { cli_error("bench: %s", llt_last_error()); return false; }
    FILE * f = fopen(path, "r");
    if (!f) { cli_error("bench: cannot read samples '%s': %s", path, strerror(errno)); return false; }
    char line[1200], level[32], fmt[96];
    snprintf(fmt, sizeof(fmt), "# lltrace-bench-samples 1\t%%%zu[^\t]\t%%d\t%%d\t%%d\t%%399[^\n]", model_size - 1);
    int lineno = 1, n = 0;
    bool ok = fgets(line, sizeof(line), f) && sscanf(line, fmt, model, &b->n_prompt, &b->n_gen, &b->threads, b->machine) == 5;
    b->n_levels = b->reps = 0;
    while (ok && fgets(line, sizeof(line), f)) {
        lineno++;
        struct sample s = { .ok = 1 };
        int rep, l;
        ok = sscanf(line, "%31s %d %lf %lf %d %d %ld %lld", level, &rep, &s.t_prompt_s, &s.t_gen_s, &s.n_prompt,
                    &s.n_gen, &s.maxrss_kib, &s.trace_bytes) == 8 && s.t_prompt_s > 0 && s.t_gen_s > 0 &&
             ((l = level_of(level)) != -1 || strcmp(level, "off") == 0);
        if (ok && rep == 0 && b->reps <= 1) { // repetition 0 names the levels
            ok = b->n_levels < MAX_LEVELS;
            if (ok) b->levels[b->n_levels++] = l;
        } else if (ok) {
            ok = b->n_levels > 0 && rep == n / b->n_levels && rep < MAX_REPS && b->levels[n % b->n_levels] == l;
        }
        struct sample * grown = ok ? realloc(b->samples, (size_t) (n + 1) * sizeof(*grown)) : NULL;
        if (!grown) { ok = false; break; }
        b->samples = grown;
        b->samples[n++] = s;
        b->reps = rep + 1;
    }
    fclose(f);
    if (ok && (n == 0 || n != b->reps * b->n_levels)) { lineno++; ok = false; }
    if (!ok) cli_error("bench: samples '%s', line %d: not what --save-samples writes", path, lineno);
    return ok;
}

// ---- the command -------------------------------------------------------------------------

static bool parse_levels(const char * list, struct bench * b) {
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", list);
    b->n_levels = 0;
    for (char * save = NULL, * tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        int l = strcmp(tok, "off") == 0 ? LEVEL_OFF : strcmp(tok, "parity") == 0 ? LEVEL_PARITY : llt_level_from_name(tok);
        if (l == -1 && strcmp(tok, "off") != 0) {
            cli_error("--levels: unknown level '%s' (off, parity, graph, timing, profile, values)", tok);
            return false;
        }
        if (b->n_levels == MAX_LEVELS) { cli_error("--levels: at most %d levels", MAX_LEVELS); return false; }
        b->levels[b->n_levels++] = l;
    }
    if (b->n_levels == 0) { cli_error("--levels: no level given"); return false; }
    return true;
}

// the receipt on stdout and, with -o, appended to a file
static int write_receipts(const struct bench * b, const char * out) {
    write_receipt(stdout, b);
    if (!out) return CLI_OK;
    FILE * rf = fopen(out, "a");
    if (rf) write_receipt(rf, b);
    if (!rf || fclose(rf) != 0) {
        cli_error("bench: cannot write receipt '%s': %s", out, strerror(errno));
        return CLI_FAIL;
    }
    return CLI_OK;
}

int cmd_bench(int argc, char ** argv) {
    struct bench b = { .n_prompt = 32, .n_gen = 64, .reps = 5 };
    const char * out = NULL, * samples = NULL, * save = NULL;
    char * model = NULL;
    if (!parse_levels("off,graph,timing", &b)) return CLI_USAGE;
    for (int i = 1; i < argc; i++) {
        const char * a = argv[i], * v;
        int64_t iv;
        if (cli_is_help(a)) { fputs(usage_text, stdout); return CLI_OK; }
        if (strcmp(a, "-m") == 0 || strcmp(a, "--model") == 0) { if (!(v = cli_value(argc, argv, &i))) return CLI_USAGE; b.model = v; }
        else if (strcmp(a, "-o") == 0) { if (!(out = cli_value(argc, argv, &i))) return CLI_USAGE; }
        else if (strcmp(a, "--samples") == 0) { if (!(samples = cli_value(argc, argv, &i))) return CLI_USAGE; }
        else if (strcmp(a, "--save-samples") == 0) { if (!(save = cli_value(argc, argv, &i))) return CLI_USAGE; }
        else if (strcmp(a, "--levels") == 0) { if (!(v = cli_value(argc, argv, &i)) || !parse_levels(v, &b)) return CLI_USAGE; }
        else if (strcmp(a, "-p") == 0) { if (!(v = cli_value(argc, argv, &i)) || !cli_parse_int(a, v, 2, 1 << 16, &iv)) return CLI_USAGE; b.n_prompt = (int) iv; }
        else if (strcmp(a, "-n") == 0) { if (!(v = cli_value(argc, argv, &i)) || !cli_parse_int(a, v, 1, 1 << 16, &iv)) return CLI_USAGE; b.n_gen = (int) iv; }
        else if (strcmp(a, "-r") == 0) { if (!(v = cli_value(argc, argv, &i)) || !cli_parse_int(a, v, 1, MAX_REPS, &iv)) return CLI_USAGE; b.reps = (int) iv; }
        else if (strcmp(a, "--rpc") == 0) { if (!(b.rpc = cli_value(argc, argv, &i))) return CLI_USAGE; }
        else if (strcmp(a, "-t") == 0) { if (!(v = cli_value(argc, argv, &i)) || !cli_parse_int(a, v, 1, 1024, &iv)) return CLI_USAGE; b.threads = (int) iv; }
        else { cli_error("bench: unknown option '%s' (see 'lltrace bench --help')", a); return CLI_USAGE; }
    }
    if (samples) { // a receipt from saved measures: nothing runs
        char saved_model[1024];
        int rc = load_samples(samples, &b, saved_model, sizeof(saved_model)) ? CLI_OK : CLI_USAGE;
        b.model = saved_model;
        if (rc == CLI_OK) rc = write_receipts(&b, out);
        free(b.samples);
        return rc;
    }
    if (b.threads == 0) b.threads = (int) sysconf(_SC_NPROCESSORS_ONLN);
    machine(b.machine, sizeof(b.machine));
    llt_log_init(false);
    if (!b.model) {
        if (cli_default_model("small", LLAMA_FTYPE_MOSTLY_Q4_K_M, &model) != LLT_OK) {
            cli_error("%s", llt_last_error());
            return CLI_FAIL;
        }
        b.model = model;
    } else {
        struct llt_registry * reg = NULL;
        if (llt_registry_load(b.model, &reg) != LLT_OK) { cli_error("%s", llt_last_error()); return CLI_USAGE; }
        llt_registry_free(reg);
    }

    // the receipt's file is tried now, not after minutes of runs
    FILE * rf = out ? fopen(out, "a") : NULL;
    if (out && (!rf || fclose(rf) != 0)) {
        cli_error("bench: cannot write receipt '%s': %s", out, strerror(errno));
        free(model);
        return CLI_FAIL;
    }

    char tmpdir[] = "/tmp/lltrace-bench-XXXXXX";
    int rc = CLI_FAIL;
    b.samples = calloc((size_t) b.reps * (size_t) b.n_levels, sizeof(struct sample));
    if (!b.samples || !mkdtemp(tmpdir)) { cli_error("cannot set up the benchmark"); goto done; }
    signal(SIGINT, on_sigint);
    // a warm-up run pages the model in, so the first measured run is not the slow one
    struct sample warm;
    if (run_one(&b, -1, tmpdir, &warm) != 0) {
        if (interrupted) rc = CLI_INTERRUPTED; else cli_error("the warm-up run failed");
        goto done;
    }
    for (int r = 0; r < b.reps; r++) {
        // each repetition starts at the next level: no level always runs right after another
        for (int k = 0; k < b.n_levels; k++) {
            const int li = (k + r) % b.n_levels;
            struct sample * s = &b.samples[r * b.n_levels + li];
            if (run_one(&b, b.levels[li], tmpdir, s) != 0 || interrupted) {
                if (interrupted) rc = CLI_INTERRUPTED;
                else cli_error("run %d at level %s failed", r + 1, level_label(b.levels[li]));
                goto done;
            }
            fprintf(stderr, "bench: rep %d/%d %-7s prompt %7.1f tok/s  gen %7.1f tok/s\n", r + 1, b.reps,
                    level_label(b.levels[li]), s->n_prompt / s->t_prompt_s, s->n_gen / s->t_gen_s);
        }
    }
    if (save && !save_samples(save, &b)) {
        cli_error("bench: cannot write samples '%s': %s", save, strerror(errno));
        goto done;
    }
    rc = write_receipts(&b, out);
done:
    signal(SIGINT, SIG_DFL);
    rmdir(tmpdir);
    free(b.samples);
    free(model);
    return rc;
}
