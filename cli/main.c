// lltrace: the command line. One subcommand per cmd_<name>.c.
#include "cli.h"
#include "lltrace.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// ---- shared helpers ----------------------------------------------------------------------

int cli_open_trace(const char * path, int mode, struct llt_store ** out) {
    const int rc = llt_store_open(path, (enum llt_store_mode) mode, out);
    if (rc == LLT_OK && llt_store_recovery_note(*out)) fprintf(stderr, "lltrace: warning: %s\n", llt_store_recovery_note(*out));
    return rc;
}

void cli_error(const char * fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("lltrace: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

int cli_check_stdout(void) {
    errno = 0;
    if (fflush(stdout) == 0 && !ferror(stdout)) return CLI_OK;
    cli_error("cannot write standard output: %s", errno ? strerror(errno) : "write error");
    return CLI_FAIL;
}

bool cli_parse_int(const char * flag, const char * s, int64_t lo, int64_t hi, int64_t * out) {
    char * end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0') {
        cli_error("%s: '%s' is not a whole number", flag, s);
        return false;
    }
    if (v < lo || v > hi) {
        cli_error("%s: %lld is out of range [%lld, %lld]", flag, v, (long long) lo, (long long) hi);
        return false;
    }
    *out = v;
    return true;
}

bool cli_parse_float(const char * flag, const char * s, double lo, double hi, double * out) {
    char * end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || !isfinite(v)) {
        cli_error("%s: '%s' is not a number", flag, s);
        return false;
    }
    if (v < lo || v > hi) {
        cli_error("%s: %g is out of range [%g, %g]", flag, v, lo, hi);
        return false;
    }
    *out = v;
    return true;
}

const char * cli_value(int argc, char ** argv, int * i) {
    if (*i + 1 >= argc) {
        cli_error("option '%s' needs a value", argv[*i]);
        return NULL;
    }
    return argv[++*i];
}

bool cli_is_help(const char * arg) {
    return strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0;
}

bool cli_parse_choice(const char * flag, const char * s, const char * const * names, int n, int * out) {
    for (int i = 0; i < n; i++) {
        if (strcmp(s, names[i]) == 0) {
            *out = i;
            return true;
        }
    }
    char list[256] = "";
    for (int i = 0; i < n; i++) {
        size_t len = strlen(list);
        snprintf(list + len, sizeof(list) - len, "%s%s", i ? ", " : "", names[i]);
    }
    cli_error("%s: unknown value '%s' (%s)", flag, s, list);
    return false;
}

bool cli_parse_flash_attn(const char * flag, const char * s, int32_t * out) {
    if      (strcmp(s, "on") == 0)   *out = LLAMA_FLASH_ATTN_TYPE_ENABLED;
    else if (strcmp(s, "off") == 0)  *out = LLAMA_FLASH_ATTN_TYPE_DISABLED;
    else if (strcmp(s, "auto") == 0) *out = LLAMA_FLASH_ATTN_TYPE_AUTO;
    else {
        cli_error("%s: '%s' is not on, off or auto", flag, s);
        return false;
    }
    return true;
}

bool cli_parse_cache_type(const char * flag, const char * s, int32_t * out) {
    int t = llt_type_from_name(s);
    if (t < 0) {
        cli_error("%s: unknown cache type '%s' (f32, f16, bf16, q8_0, q4_0, q4_1, iq4_nl, q5_0, q5_1)", flag, s);
        return false;
    }
    *out = t;
    return true;
}

// ---- the command table -------------------------------------------------------------------

struct cli_cmd {
    const char * name;
    int (*fn)(int argc, char ** argv);
    const char * desc;
};

static const struct cli_cmd commands[] = {
    { "run",     cmd_run,     "generate text with llama.cpp and trace every graph node" },
    { "exec",    cmd_exec,    "run a llama.cpp program as it is (llama-cli, llama-server, ...) and trace it" },
    { "debug",   cmd_debug,   "run with breakpoints and step-through: stop at a node, look, go on (or drive exec --debug)" },
    { "show",    cmd_show,    "print the nodes, steps and statistics of a trace" },
    { "export",  cmd_export,  "write a trace as an NDJSON event log, a Perfetto timeline (chrome), or its dump as npy/safetensors" },
    { "mkmodel", cmd_mkmodel, "write a built-in deterministic model: llama, gpt2, qwen3, gemma3, qwen3moe, bitnet" },
    { "bench",   cmd_bench,   "measure what tracing costs, as a Markdown receipt" },
    { "parity",  cmd_parity,  "compare two greedy decodes token by token, with top-k logits" },
    { "profile", cmd_profile, "time per op, layer, phase and node, with bytes and FLOPs" },
    { "inspect", cmd_inspect, "print the metadata, tensors, values and quant blocks of a GGUF" },
    { "diff",    cmd_diff,    "compare two tensor sets (dumps, safetensors, .npy, model weights)" },
    { "report",  cmd_report,  "write a run as one HTML page that explains what happened" },
    { "serve",   cmd_serve,   "show a run's page live on 127.0.0.1 while it is written" },
    { "causal",  cmd_causal,  "causal tracing: which layer and position of a clean run carry its answer" },
};

static void usage(FILE * f) {
    fprintf(f, "usage: lltrace <command> [options]\n       lltrace --version\n\ncommands:\n");
    for (size_t i = 0; i < sizeof(commands)/sizeof(commands[0]); i++) {
        fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].desc);
    }
    fprintf(f, "\n'lltrace <command> --help' tells more.\n");
}

// the command's status, or CLI_FAIL when it succeeded but its output was not all written (a
// command that failed has said why, and a truncated output does not change its status)
static int finish(int rc) {
    return rc == CLI_OK ? cli_check_stdout() : rc;
}

int main(int argc, char ** argv) {
    // over a file size limit (ulimit -f), write() fails with EFBIG and the command says so and
    // removes its temporary files, instead of dying by SIGXFSZ halfway through a file
    signal(SIGXFSZ, SIG_IGN);
    if (argc < 2) {
        usage(stderr);
        return CLI_USAGE;
    }
    const char * name = argv[1];
    if (cli_is_help(name)) {
        usage(stdout);
        return finish(CLI_OK);
    }
    if (strcmp(name, "--version") == 0 || strcmp(name, "version") == 0) {
        printf("lltrace %s (llama.cpp %s)\n", llt_version(), llt_llama_tag());
        return finish(CLI_OK);
    }
    for (size_t i = 0; i < sizeof(commands)/sizeof(commands[0]); i++) {
        if (strcmp(name, commands[i].name) == 0) {
            return finish(commands[i].fn(argc - 1, argv + 1));
        }
    }
    cli_error("unknown command '%s' (see 'lltrace --help')", name);
    return CLI_USAGE;
}
