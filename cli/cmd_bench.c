// lltrace bench: what tracing costs. Interleaved repetitions of the same generation, untraced
// and at each trace level, each in its own process (so peak memory is per run), summarised as a
// Markdown receipt.
// wait4() reports the peak memory of one child
#define _DEFAULT_SOURCE
#include "cli.h"
#include "lltrace.h"

#include <errno.h>
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
    "  --levels LIST      comma-separated: off, parity (untraced, top-10 logits kept per step)\n"
    "                     and trace levels graph, timing, profile, values (default off,graph,timing)\n"
    "  -o FILE            write the receipt to FILE too (it always goes to stdout)\n";

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
    int n_levels;
    int levels[MAX_LEVELS]; // -1 = off
    struct sample * samples; // [rep][level]
};

// levels: the trace levels, plus two untraced runs
enum { LEVEL_OFF = -1, LEVEL_PARITY = -2 }; // parity: untraced, top-10 logits kept per step

static const char * level_label(int level) {
    return level == LEVEL_OFF ? "off" : level == LEVEL_PARITY ? "parity" : llt_level_name((enum llt_level) level);
}

// ---- one run, in a child process ---------------------------------------------------------

static void run_child(const struct bench * b, int level, const char * trace, int fd) {
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
    p.level = level < 0 ? LLT_LEVEL_GRAPH : (enum llt_level) level;
    p.parity_top_k = level == LEVEL_PARITY ? 10 : 0;
    struct llt_store * st = NULL;
    struct llt_gen_result r = {0};
    if (level >= 0 && llt_store_open(trace, LLT_STORE_WRITE, &st) != LLT_OK) goto done;
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

enum measure { PROMPT_TPS, GEN_TPS, PROMPT_S, GEN_S, RSS_MIB, TRACE_MIB };

static double value(const struct sample * s, enum measure what) {
    switch (what) {
        case PROMPT_TPS: return s->n_prompt / s->t_prompt_s;
        case GEN_TPS:    return s->n_gen / s->t_gen_s;
        case PROMPT_S:   return s->t_prompt_s;
        case GEN_S:      return s->t_gen_s;
        case RSS_MIB:    return s->maxrss_kib / 1024.0;
        case TRACE_MIB:  return s->trace_bytes / (1024.0 * 1024.0);
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
    snprintf(buf, size, "%s, %ld cores, %.0f GiB RAM", model, sysconf(_SC_NPROCESSORS_ONLN),
             (double) pages * (double) page / (1024.0 * 1024.0 * 1024.0));
}

static void write_receipt(FILE * f, const struct bench * b) {
    char date[32], mach[400];
    time_t now = time(NULL);
    strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    machine(mach, sizeof(mach));
    fprintf(f, "## lltrace bench, %s\n\n", date);
    fprintf(f, "- machine: %s\n", mach);
    fprintf(f, "- model: `%s`\n", b->model);
    fprintf(f, "- lltrace %s, llama.cpp %s\n", llt_version(), llt_llama_tag());
    fprintf(f, "- %d-token prompt, %d generated tokens, %d threads, %d interleaved repetitions per level, "
               "each in its own process, in rotating order; median (min–max); time vs off: median of the per-repetition ratios\n\n",
               b->n_prompt, b->n_gen, b->threads, b->reps);
    fprintf(f, "| level | prompt tok/s | generation tok/s | prompt time vs off | generation time vs off | peak RSS MiB | trace MiB |\n");
    fprintf(f, "|---|---|---|---|---|---|---|\n");
    int off = -1;
    for (int li = 0; li < b->n_levels; li++) if (b->levels[li] == LEVEL_OFF) off = li;
    for (int li = 0; li < b->n_levels; li++) {
        struct summary pt = measure(b, li, PROMPT_TPS), gt = measure(b, li, GEN_TPS);
        char pr[32] = "–", gr[32] = "–";
        if (off >= 0 && li != off) {
            snprintf(pr, sizeof(pr), "%+.1f%%", overhead(b, li, off, PROMPT_S).med);
            snprintf(gr, sizeof(gr), "%+.1f%%", overhead(b, li, off, GEN_S).med);
        }
        fprintf(f, "| %s | %.1f (%.1f–%.1f) | %.1f (%.1f–%.1f) | %s | %s | %.0f | %.2f |\n",
                level_label(b->levels[li]), pt.med, pt.min, pt.max, gt.med, gt.min, gt.max, pr, gr,
                measure(b, li, RSS_MIB).med, measure(b, li, TRACE_MIB).med);
    }
    fprintf(f, "\n");
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

int cmd_bench(int argc, char ** argv) {
    struct bench b = { .n_prompt = 32, .n_gen = 64, .reps = 5 };
    const char * out = NULL;
    char * model = NULL;
    if (!parse_levels("off,graph,timing", &b)) return CLI_USAGE;
    for (int i = 1; i < argc; i++) {
        const char * a = argv[i], * v;
        int64_t iv;
        if (cli_is_help(a)) { fputs(usage_text, stdout); return CLI_OK; }
        if (strcmp(a, "-m") == 0 || strcmp(a, "--model") == 0) { if (!(v = cli_value(argc, argv, &i))) return CLI_USAGE; b.model = v; }
        else if (strcmp(a, "-o") == 0) { if (!(out = cli_value(argc, argv, &i))) return CLI_USAGE; }
        else if (strcmp(a, "--levels") == 0) { if (!(v = cli_value(argc, argv, &i)) || !parse_levels(v, &b)) return CLI_USAGE; }
        else if (strcmp(a, "-p") == 0) { if (!(v = cli_value(argc, argv, &i)) || !cli_parse_int(a, v, 2, 1 << 16, &iv)) return CLI_USAGE; b.n_prompt = (int) iv; }
        else if (strcmp(a, "-n") == 0) { if (!(v = cli_value(argc, argv, &i)) || !cli_parse_int(a, v, 1, 1 << 16, &iv)) return CLI_USAGE; b.n_gen = (int) iv; }
        else if (strcmp(a, "-r") == 0) { if (!(v = cli_value(argc, argv, &i)) || !cli_parse_int(a, v, 1, MAX_REPS, &iv)) return CLI_USAGE; b.reps = (int) iv; }
        else if (strcmp(a, "-t") == 0) { if (!(v = cli_value(argc, argv, &i)) || !cli_parse_int(a, v, 1, 1024, &iv)) return CLI_USAGE; b.threads = (int) iv; }
        else { cli_error("bench: unknown option '%s' (see 'lltrace bench --help')", a); return CLI_USAGE; }
    }
    if (b.threads == 0) b.threads = (int) sysconf(_SC_NPROCESSORS_ONLN);
    llt_log_init(false);
    if (!b.model) {
        if (cli_default_model("small", LLAMA_FTYPE_MOSTLY_Q4_K_M, &model) != LLT_OK) {
            cli_error("%s", llt_last_error());
            return CLI_FAIL;
        }
        b.model = model;
    } else {
        struct llt_registry * reg = NULL;
        if (llt_registry_load(b.model, &reg) != LLT_OK) { cli_error("%s", llt_last_error()); return CLI_FAIL; }
        llt_registry_free(reg);
    }
    FILE * rf = NULL;
    if (out && !(rf = fopen(out, "a"))) {
        cli_error("cannot write receipt '%s': %s", out, strerror(errno));
        free(model);
        return CLI_FAIL;
    }

    char tmpdir[] = "/tmp/lltrace-bench-XXXXXX";
    int rc = CLI_FAIL;
    b.samples = calloc((size_t) b.reps * (size_t) b.n_levels, sizeof(struct sample));
    if (!b.samples || !mkdtemp(tmpdir)) { cli_error("cannot set up the benchmark"); goto done; }
    // a warm-up run pages the model in, so the first measured run is not the slow one
    struct sample warm;
    if (run_one(&b, -1, tmpdir, &warm) != 0) { cli_error("the warm-up run failed"); goto done; }
    for (int r = 0; r < b.reps; r++) {
        // each repetition starts at the next level: no level always runs right after another
        for (int k = 0; k < b.n_levels; k++) {
            const int li = (k + r) % b.n_levels;
            struct sample * s = &b.samples[r * b.n_levels + li];
            if (run_one(&b, b.levels[li], tmpdir, s) != 0) {
                cli_error("run %d at level %s failed", r + 1, level_label(b.levels[li]));
                goto done;
            }
            fprintf(stderr, "bench: rep %d/%d %-7s prompt %7.1f tok/s  gen %7.1f tok/s\n", r + 1, b.reps,
                    level_label(b.levels[li]), s->n_prompt / s->t_prompt_s, s->n_gen / s->t_gen_s);
        }
    }
    write_receipt(stdout, &b);
    if (rf) write_receipt(rf, &b);
    rc = CLI_OK;
done:
    if (rf) fclose(rf);
    rmdir(tmpdir);
    free(b.samples);
    free(model);
    return rc;
}
