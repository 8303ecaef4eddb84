// lltrace parity: compare two greedy decodes step by step, the chosen tokens and the top-k
// logits, from parity files or traces, or by running two models or settings.
//
// Steps are compared while both sides were fed the same tokens: up to and including the first
// step whose chosen tokens differ (docs/trace-format.md, "Parity").
#include "cli.h"
#include "lltrace.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char * usage_text =
    "usage: lltrace parity A B [options]\n"
    "       lltrace parity --model A.gguf [--model B.gguf] [options]\n"
    "\n"
    "Compares two greedy decodes step by step: the chosen tokens and the top-k logits.\n"
    "A and B are parity files (JSON Lines from 'lltrace run --parity', or the same shape from\n"
    "another engine) or traces recorded with --parity. With --model, lltrace runs both sides.\n"
    "\n"
    "options:\n"
    "  --top-k K           compare the K largest logits (default 10, at most 64)\n"
    "  --format FMT        table (default) or json\n"
    "  --run ID            the run of a trace (default: the last); --run-a ID, --run-b ID: one side\n"
    "\n"
    "running both sides:\n"
    "  --model FILE        side A's model; a second --model is side B's (default: the same)\n"
    "  -p, --prompt TEXT   prompt (default: \"Hello, my name is\")\n"
    "  -n, --n-predict N   tokens to generate (default 32)\n"
    "  -t, --threads N     threads (default: all cores)\n"
    "  -fa, --flash-attn on|off|auto   both sides (default auto); --fa-a, --fa-b: one side\n"
    "  -ctk, --cache-type-k TYPE       both sides (default f16); --ctk-a, --ctk-b: one side\n"
    "  -ctv, --cache-type-v TYPE       both sides (default f16); --ctv-a, --ctv-b: one side\n"
    "  -v, --verbose       show llama.cpp's log\n"
    "\n"
    "  -o DIR              also write both sides as parity files, DIR/a.jsonl and DIR/b.jsonl\n"
    "\n"
    "exit status: 0 the greedy sequences match, 1 they diverge, 2 an error, or sides of\n"
    "different lengths that do not differ in their common steps.\n";

// ---- options -----------------------------------------------------------------------------

#define UNSET INT32_MIN

enum parity_format { FORMAT_TABLE, FORMAT_JSON };

// one side: a file or trace to read, or a model to run with its settings
struct side {
    const char * path;
    int64_t      run;        // 0: the last run of a trace
    int32_t      flash_attn; // UNSET: the setting for both sides
    int32_t      type_k, type_v;
    char         desc[256];  // what the side is, for the report
    struct llt_parity_step * steps;
    int32_t      n_steps;
};

struct parity_opts {
    struct side        side[2];
    struct side        both;         // -fa, -ctk, -ctv and --run for both sides
    int                n_models;
    struct llt_gen_params gen;
    int64_t            top_k;
    const char *       out_dir;
    enum parity_format format;
    bool               run_flags;    // an option that only --model uses was given
    bool               verbose;
};

// the side a per-side flag names: "--fa-b" -> 1; -1 when the flag is not one
static int flag_side(const char * a, const char * base) {
    size_t n = strlen(base);
    if (strncmp(a, base, n) != 0) return -1;
    return strcmp(a + n, "-a") == 0 ? 0 : strcmp(a + n, "-b") == 0 ? 1 : -1;
}

// returns CLI_OK, or the exit code to leave with (-1: help was printed)
static int parse_opts(int argc, char ** argv, struct parity_opts * o) {
    o->gen = llt_gen_default_params();
    o->top_k = 10;
    for (int s = 0; s < 2; s++) {
        o->side[s].flash_attn = o->side[s].type_k = o->side[s].type_v = UNSET;
    }
    o->both.flash_attn = o->gen.flash_attn;
    o->both.type_k = o->gen.type_k;
    o->both.type_v = o->gen.type_v;
    int n_paths = 0;
    for (int i = 1; i < argc; i++) {
        const char * a = argv[i];
        const char * v = NULL;
        int64_t iv;
        int s; // the side of a per-side flag, -1 for both
#define VALUE() do { if (!(v = cli_value(argc, argv, &i))) return CLI_USAGE; } while (0)
#define IS(x, y) (strcmp(a, x) == 0 || strcmp(a, y) == 0)
        // a setting of one side (--fa-b) or of both (-fa, --flash-attn); t: where it goes
#define SIDE_OR_BOTH(side_base, shrt, lng) ((s = flag_side(a, side_base)) >= 0 || IS(shrt, lng))
#define TARGET (s >= 0 ? &o->side[s] : &o->both)
        if (cli_is_help(a)) { fputs(usage_text, stdout); return -1; }
        else if (strcmp(a, "--top-k") == 0) { VALUE(); if (!cli_parse_int(a, v, 1, LLT_PARITY_MAX_K, &o->top_k)) return CLI_USAGE; }
        else if (strcmp(a, "--format") == 0) {
            static const char * const formats[] = { [FORMAT_TABLE] = "table", [FORMAT_JSON] = "json" };
            int k;
            VALUE();
            if (!cli_parse_choice(a, v, formats, 2, &k)) return CLI_USAGE;
            o->format = k;
        }
        else if (IS("-o", "--output"))  { VALUE(); o->out_dir = v; }
        else if (IS("-v", "--verbose")) { o->verbose = true; }
        else if (SIDE_OR_BOTH("--run", "--run", "--run")) { VALUE(); if (!cli_parse_int(a, v, 1, INT32_MAX, &TARGET->run)) return CLI_USAGE; }
        else if (IS("-m", "--model")) {
            VALUE();
            if (o->n_models == 2) { cli_error("parity: --model at most twice (sides A and B)"); return CLI_USAGE; }
            o->side[o->n_models++].path = v;
        }
        else if (a[0] != '-' || a[1] == '\0') {
            if (n_paths == 2) { cli_error("parity: unexpected argument '%s' (two sides, A and B)", a); return CLI_USAGE; }
            o->side[n_paths++].path = a;
        }
        else {
            o->run_flags = true; // the options of the runs
            if (IS("-p", "--prompt")) { VALUE(); o->gen.prompt = v; }
            else if (IS("-n", "--n-predict")) { VALUE(); if (!cli_parse_int(a, v, 1, 1 << 20, &iv)) return CLI_USAGE; o->gen.n_predict = (int32_t) iv; }
            else if (IS("-t", "--threads"))   { VALUE(); if (!cli_parse_int(a, v, 1, 1024, &iv)) return CLI_USAGE; o->gen.n_threads = (int32_t) iv; }
            else if (SIDE_OR_BOTH("--fa", "-fa", "--flash-attn"))     { VALUE(); if (!cli_parse_flash_attn(a, v, &TARGET->flash_attn)) return CLI_USAGE; }
            else if (SIDE_OR_BOTH("--ctk", "-ctk", "--cache-type-k")) { VALUE(); if (!cli_parse_cache_type(a, v, &TARGET->type_k)) return CLI_USAGE; }
            else if (SIDE_OR_BOTH("--ctv", "-ctv", "--cache-type-v")) { VALUE(); if (!cli_parse_cache_type(a, v, &TARGET->type_v)) return CLI_USAGE; }
            else { cli_error("parity: unknown option '%s' (see 'lltrace parity --help')", a); return CLI_USAGE; }
        }
#undef VALUE
#undef IS
#undef SIDE_OR_BOTH
#undef TARGET
    }
    if (o->n_models > 0 && n_paths > 0) {
        cli_error("parity: give two files or traces, or --model; not both");
        return CLI_USAGE;
    }
    if (o->n_models == 0 && n_paths != 2) {
        cli_error("parity: two files or traces to compare, or --model (see 'lltrace parity --help')");
        return CLI_USAGE;
    }
    if (o->n_models == 0 && o->run_flags) {
        cli_error("parity: -p, -n, -t, -fa, -ctk and -ctv set up --model runs; files and traces are compared as they are");
        return CLI_USAGE;
    }
    if (o->n_models == 1) o->side[1].path = o->side[0].path;
    return CLI_OK;
}

// ---- the sides ---------------------------------------------------------------------------

// a trace is an SQLite database: its file starts with this
static bool is_sqlite(const char * path) {
    static const char magic[16] = "SQLite format 3";
    char head[16];
    FILE * f = fopen(path, "rb");
    if (!f) return false;
    bool yes = fread(head, 1, sizeof(head), f) == sizeof(head) && memcmp(head, magic, sizeof(head)) == 0;
    fclose(f);
    return yes;
}

// a parity file, or the parity records of a trace; false after printing why not
static bool read_side(struct side * s) {
    int rc = LLT_OK;
    if (is_sqlite(s->path)) {
        struct llt_store * st = NULL;
        rc = llt_store_open(s->path, LLT_STORE_READ, &st);
        if (rc == LLT_OK && s->run == 0 && (rc = llt_store_last_run(st)) > 0) {
            s->run = rc;
            rc = LLT_OK;
        }
        if (rc == LLT_OK) rc = llt_parity_read_trace(st, (int) s->run, &s->steps, &s->n_steps);
        if (rc == LLT_ENOTFOUND && s->run > 0) {
            cli_error("%s (record them with 'lltrace run --parity')", llt_last_error());
            llt_store_close(st);
            return false;
        }
        llt_store_close(st);
        snprintf(s->desc, sizeof(s->desc), "%s, run %lld", s->path, (long long) s->run);
    } else {
        rc = llt_parity_read(s->path, &s->steps, &s->n_steps);
        snprintf(s->desc, sizeof(s->desc), "%s", s->path);
    }
    if (rc != LLT_OK) cli_error("%s", llt_last_error());
    return rc == LLT_OK;
}

static const char * fa_name(int32_t fa) {
    return fa == LLAMA_FLASH_ATTN_TYPE_ENABLED ? "on" : fa == LLAMA_FLASH_ATTN_TYPE_DISABLED ? "off" : "auto";
}

// generates with the side's model and settings; false after printing why not
static bool run_side(const struct parity_opts * o, struct side * s, const char * name) {
    struct llt_gen_params p = o->gen;
    struct llt_gen_result res = { 0 };
    p.model_path = s->path;
    p.flash_attn = s->flash_attn;
    p.type_k = s->type_k;
    p.type_v = s->type_v;
    p.parity_top_k = (int32_t) o->top_k;
    snprintf(s->desc, sizeof(s->desc), "%s, -fa %s, -ctk %s, -ctv %s", s->path, fa_name(s->flash_attn),
             ggml_type_name((enum ggml_type) s->type_k), ggml_type_name((enum ggml_type) s->type_v));
    fprintf(stderr, "lltrace: parity: running %s: %s\n", name, s->desc);
    bool ok = false;
    if (llt_generate(&p, NULL, &res) != LLT_OK) {
        cli_error("%s", llt_last_error());
    } else if (res.n_gen == 0) {
        cli_error("parity: %s generated no tokens", name);
    } else {
        s->steps = res.parity;
        s->n_steps = res.n_gen;
        res.parity = NULL;
        ok = true;
    }
    llt_gen_result_free(&res);
    return ok;
}

static bool write_side(const char * dir, const struct side * s, const char * file) {
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, file);
    if (llt_parity_write(path, s->steps, s->n_steps) != LLT_OK) {
        cli_error("%s", llt_last_error());
        return false;
    }
    fprintf(stderr, "lltrace: parity: wrote %s\n", path);
    return true;
}

// ---- the report --------------------------------------------------------------------------

// display columns of UTF-8 text: continuation bytes take none
static int text_width(const char * s) {
    int w = 0;
    for (; *s; s++) w += ((unsigned char) *s & 0xC0) != 0x80;
    return w;
}

// a token and its piece as one short cell: 1234 "Hello"
static void token_cell(llama_token token, const char * piece, char * buf, size_t size) {
    size_t n = (size_t) snprintf(buf, size, "%d", token);
    if (!piece[0]) return;
    n += (size_t) snprintf(buf + n, size - n, " \"");
    for (const char * p = piece; *p && n + 8 < size; p++) {
        unsigned char ch = (unsigned char) *p;
        if (ch == '\n')      n += (size_t) snprintf(buf + n, size - n, "\\n");
        else if (ch < 0x20)  buf[n++] = '?';
        else                 buf[n++] = (char) ch;
    }
    snprintf(buf + n, size - n, "\"");
}

static void print_cell(const char * text, int width) {
    int pad = width - text_width(text);
    fputs(text, stdout);
    printf("%*s", pad > 0 ? pad : 0, "");
}

static void print_table(const struct parity_opts * o, const struct llt_parity_report * r) {
    const struct side * a = &o->side[0], * b = &o->side[1];
    printf("A: %s (%d steps)\nB: %s (%d steps)\n\n", a->desc, r->n_a, b->desc, r->n_b);
    printf("%5s  %-20s  %-20s  %4s  %7s  %11s  %10s\n", "step", "token A", "token B", "top1", "overlap", "max|dlogit|", "KL");
    const int32_t n = r->n_a < r->n_b ? r->n_a : r->n_b;
    for (int32_t i = 0; i < n; i++) {
        const struct llt_parity_cmp * c = &r->steps[i];
        char ta[128], tb[128];
        token_cell(c->token_a, a->steps[i].piece, ta, sizeof(ta));
        token_cell(c->token_b, b->steps[i].piece, tb, sizeof(tb));
        printf("%5d  ", c->step);
        print_cell(ta, 20);
        fputs("  ", stdout);
        print_cell(tb, 20);
        if (!c->compared) {
            printf("  not compared: the sides were fed different tokens\n");
            continue;
        }
        char overlap[32], diff[32];
        snprintf(overlap, sizeof(overlap), "%d/%d", c->overlap, r->k);
        if (isnan(c->max_diff)) snprintf(diff, sizeof(diff), "-");
        else                    snprintf(diff, sizeof(diff), "%.6f", c->max_diff);
        printf("  %4s  %7s  %11s  %10.3g%s\n", c->same_top1 ? "=" : "x", overlap, diff, c->kl,
               i == r->first_diff ? "  <- first difference" : "");
    }
    printf("\ncompared %d of %d common steps, top-%d\n", r->n_compared, n, r->k);
    printf("top-1 agreement  %.1f%% (%d/%d)\n", 100.0 * r->n_top1 / r->n_compared, r->n_top1, r->n_compared);
    printf("top-k overlap    %.1f%% mean\n", 100.0 * r->mean_overlap);
    if (isnan(r->max_diff)) printf("max |dlogit|     - (no shared ids)\n");
    else                    printf("max |dlogit|     %.6f (step %d)\n", r->max_diff, r->max_diff_step);
    printf("KL(A||B)         %.3g mean, %.3g max (step %d)\n", r->mean_kl, r->max_kl, r->max_kl_step);
    if (r->pos_differs) {
        printf("warning: step 0 is at position %d in A and %d in B: the prompts differ\n",
               a->steps[0].pos, b->steps[0].pos);
    }
    switch (r->verdict) {
        case LLT_PARITY_IDENTICAL:
            printf("verdict: identical: same tokens, same top-%d logits\n", r->k);
            break;
        case LLT_PARITY_MATCH:
            printf("verdict: match: same greedy tokens; logits differ by up to %.6f\n", r->max_diff);
            break;
        case LLT_PARITY_DIVERGED:
            printf("verdict: diverged at step %d: A chose %d, B chose %d\n", r->first_diff,
                   r->steps[r->first_diff].token_a, r->steps[r->first_diff].token_b);
            printf("top-1 - top-2 logit at step %d: A ", r->first_diff);
            if (isnan(r->margin_a)) fputs("-", stdout); else printf("%.6f", r->margin_a);
            fputs(", B ", stdout);
            if (isnan(r->margin_b)) fputs("-", stdout); else printf("%.6f", r->margin_b);
            fputs(" (a small margin is a near tie that small numeric differences flip)\n", stdout);
            break;
        case LLT_PARITY_LENGTH:
        case LLT_PARITY_VERDICT_COUNT:
            printf("verdict: length mismatch: the common %d steps match, but A has %d steps and B %d\n",
                   n, r->n_a, r->n_b);
            break;
    }
}

static void json_number(double v) {
    if (isnan(v)) fputs("null", stdout);
    else          printf("%.9g", v);
}

static void json_side(const char * name, const struct side * s, int32_t n) {
    printf("  \"%s\": {\"source\": ", name);
    llt_json_write_string(stdout, s->desc);
    printf(", \"steps\": %d},\n", n);
}

static void print_json(const struct parity_opts * o, const struct llt_parity_report * r) {
    printf("{\n");
    json_side("a", &o->side[0], r->n_a);
    json_side("b", &o->side[1], r->n_b);
    printf("  \"k\": %d, \"compared\": %d, \"first_diff\": %d,\n", r->k, r->n_compared, r->first_diff);
    printf("  \"top1_agreement\": %.9g, \"mean_overlap\": %.9g, \"max_logit_diff\": ",
           (double) r->n_top1 / r->n_compared, r->mean_overlap);
    json_number(r->max_diff);
    printf(", \"max_logit_diff_step\": %d,\n  \"mean_kl\": %.9g, \"max_kl\": %.9g, \"max_kl_step\": %d,\n",
           r->max_diff_step, r->mean_kl, r->max_kl, r->max_kl_step);
    fputs("  \"margin_a\": ", stdout);
    json_number(r->margin_a);
    fputs(", \"margin_b\": ", stdout);
    json_number(r->margin_b);
    fputs(",\n", stdout);
    printf("  \"pos_differs\": %s, \"verdict\": \"%s\",\n  \"steps\": [", r->pos_differs ? "true" : "false",
           llt_parity_verdict_name(r->verdict));
    const int32_t n = r->n_a < r->n_b ? r->n_a : r->n_b;
    for (int32_t i = 0; i < n; i++) {
        const struct llt_parity_cmp * c = &r->steps[i];
        printf("%s\n    {\"step\": %d, \"token_a\": %d, \"token_b\": %d, \"piece_a\": ", i ? "," : "", c->step,
               c->token_a, c->token_b);
        llt_json_write_string(stdout, o->side[0].steps[i].piece);
        fputs(", \"piece_b\": ", stdout);
        llt_json_write_string(stdout, o->side[1].steps[i].piece);
        printf(", \"compared\": %s", c->compared ? "true" : "false");
        if (c->compared) {
            printf(", \"same_top1\": %s, \"overlap\": %d, \"max_logit_diff\": ", c->same_top1 ? "true" : "false", c->overlap);
            json_number(c->max_diff);
            printf(", \"kl\": %.9g", c->kl);
        }
        fputc('}', stdout);
    }
    printf("\n  ]\n}\n");
}

// ---- the command -------------------------------------------------------------------------

int cmd_parity(int argc, char ** argv) {
    struct parity_opts o = { 0 };
    int rc = parse_opts(argc, argv, &o);
    if (rc != CLI_OK) return rc < 0 ? CLI_OK : rc;
    llt_log_init(o.verbose);

    static const char * names[2] = { "A", "B" };
    static const char * files[2] = { "a.jsonl", "b.jsonl" };
    struct llt_parity_report report = { 0 };
    int exit_code = CLI_USAGE;
    if (o.out_dir && mkdir(o.out_dir, 0777) != 0 && errno != EEXIST) {
        cli_error("cannot make folder '%s': %s", o.out_dir, strerror(errno));
        exit_code = CLI_FAIL; // the output, not the input, failed
        goto done;
    }
    for (int i = 0; i < 2; i++) {
        struct side * s = &o.side[i];
        if (s->run == 0) s->run = o.both.run;
        if (s->flash_attn == UNSET) s->flash_attn = o.both.flash_attn;
        if (s->type_k == UNSET) s->type_k = o.both.type_k;
        if (s->type_v == UNSET) s->type_v = o.both.type_v;
        if (!(o.n_models ? run_side(&o, s, names[i]) : read_side(s))) goto done;
        if (o.out_dir && !write_side(o.out_dir, s, files[i])) { exit_code = CLI_FAIL; goto done; }
    }
    if (llt_parity_compare(o.side[0].steps, o.side[0].n_steps, o.side[1].steps, o.side[1].n_steps,
                           (int32_t) o.top_k, &report) != LLT_OK) {
        cli_error("%s", llt_last_error());
        goto done;
    }
    if (o.format == FORMAT_JSON) print_json(&o, &report);
    else                         print_table(&o, &report);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        cli_error("cannot write the output: %s", strerror(errno));
        exit_code = CLI_FAIL;
        goto done;
    }
    switch (report.verdict) {
        case LLT_PARITY_IDENTICAL:
        case LLT_PARITY_MATCH:
            exit_code = CLI_OK;
            break;
        case LLT_PARITY_DIVERGED:
            exit_code = CLI_FAIL;
            break;
        case LLT_PARITY_LENGTH:
        case LLT_PARITY_VERDICT_COUNT:
            cli_error("parity: A has %d steps and B %d: only the common steps were compared", report.n_a, report.n_b);
            break;
    }
done:
    llt_parity_report_free(&report);
    for (int i = 0; i < 2; i++) free(o.side[i].steps);
    return exit_code;
}
