// lltrace parity: compare two greedy decodes step by step, the chosen tokens and the top-k
// logits, from parity files or traces, or by running two models or settings.
//
// Steps are compared while both sides were fed the same tokens: up to and including the first
// step whose chosen tokens differ (docs/trace-format.md, "Parity").
#include "cli.h"
#include "output.h"
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
    "  --format FMT        table (default), csv or json (docs/commands/README.md)\n"
    "  --run ID            the run of a trace (default: the last); --run-a ID, --run-b ID: one side\n"
    "\n"
    "running both sides:\n"
    "  -m, --model FILE    side A's model; a second --model is side B's (default: the same)\n"
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
    enum out_format    format;
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
        else if (strcmp(a, "--format") == 0) { VALUE(); if (!out_parse_format(a, v, &o->format)) return CLI_USAGE; }
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
    int rc = llt_input_check(s->path, NULL); // a FIFO would block the sniffing
    if (rc == LLT_OK && is_sqlite(s->path)) {
        struct llt_store * st = NULL;
        rc = cli_open_trace(s->path, LLT_STORE_READ, &st);
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
    } else if (rc == LLT_OK) {
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


static const struct out_col side_cols[] = { { "source", OUT_TEXT, OUT_ONLY_JSON }, { "steps", OUT_INT, OUT_ONLY_JSON } };

static const struct out_col step_cols[] = {
    { "step", OUT_INT, OUT_ALL }, { "token_a", OUT_INT, OUT_ALL }, { "piece_a", OUT_LONG, OUT_ALL },
    { "token_b", OUT_INT, OUT_ALL }, { "piece_b", OUT_LONG, OUT_ALL }, { "compared", OUT_TEXT, OUT_NOT_TABLE },
    { "same_top1", OUT_TEXT, OUT_NOT_TABLE }, { "top1", OUT_TEXT, OUT_ONLY_TABLE }, { "overlap", OUT_INT, OUT_ALL },
    { "max_logit_diff", OUT_REAL, OUT_ALL }, { "kl", OUT_REAL, OUT_ALL }, { "note", OUT_TEXT, OUT_ONLY_TABLE },
};

static const struct out_col summary_cols[] = {
    { "k", OUT_INT, OUT_ONLY_JSON }, { "compared", OUT_INT, OUT_ONLY_JSON }, { "first_diff", OUT_INT, OUT_ONLY_JSON },
    { "top1_agreement", OUT_REAL, OUT_ONLY_JSON }, { "mean_overlap", OUT_REAL, OUT_ONLY_JSON },
    { "max_logit_diff", OUT_REAL, OUT_ONLY_JSON }, { "max_logit_diff_step", OUT_INT, OUT_ONLY_JSON },
    { "mean_kl", OUT_REAL, OUT_ONLY_JSON }, { "max_kl", OUT_REAL, OUT_ONLY_JSON }, { "max_kl_step", OUT_INT, OUT_ONLY_JSON },
    { "margin_a", OUT_REAL, OUT_ONLY_JSON }, { "margin_b", OUT_REAL, OUT_ONLY_JSON },
    { "pos_differs", OUT_TEXT, OUT_ONLY_JSON }, { "verdict", OUT_TEXT, OUT_ONLY_JSON },
};

// a step index that is -1 when there is none
static struct out_val step_or_null(int32_t step) {
    return step >= 0 ? out_int(step) : out_null();
}

static int report_side(struct out * o, const char * name, const struct side * s, int32_t n) {
    out_note(o, "%c: %s (%d steps)", name[0] - 'a' + 'A', s->desc, n);
    const struct out_val v[] = { out_text(s->desc), out_int(n) };
    return out_record(o, name, OUT_COLS(side_cols), v);
}

static int write_steps(struct out * o, const struct parity_opts * opts, const struct llt_parity_report * r) {
    const int32_t n = r->n_a < r->n_b ? r->n_a : r->n_b;
    int rc = out_begin(o, "steps", NULL, OUT_COLS(step_cols), 0);
    for (int32_t i = 0; i < n && rc == CLI_OK; i++) {
        const struct llt_parity_cmp * c = &r->steps[i];
        const bool cmp = c->compared;
        const struct out_val v[] = {
            out_int(c->step), out_int(c->token_a), out_text(opts->side[0].steps[i].piece), out_int(c->token_b),
            out_text(opts->side[1].steps[i].piece), out_bool(cmp), cmp ? out_bool(c->same_top1) : out_null(),
            cmp ? out_text(c->same_top1 ? "=" : "x") : out_null(), cmp ? out_int(c->overlap) : out_null(),
            cmp ? out_real(c->max_diff) : out_null(), cmp ? out_real(c->kl) : out_null(),
            out_text(!cmp ? "not compared: the sides were fed different tokens" : i == r->first_diff ? "<- first difference" : ""),
        };
        rc = out_row(o, v);
    }
    return rc == CLI_OK ? out_end(o) : rc;
}

// the summary and the verdict: sentences in a table, a record in json
static int write_summary(struct out * o, const struct parity_opts * opts, const struct llt_parity_report * r) {
    const int32_t n = r->n_a < r->n_b ? r->n_a : r->n_b;
    char t1[32], t2[32];
    out_note(o, "\ncompared %d of %d common steps, top-%d", r->n_compared, n, r->k);
    out_note(o, "top-1 agreement  %s (%d/%d)", out_table_text(OUT_PCT, out_real(100.0 * r->n_top1 / r->n_compared), t1, sizeof(t1)),
             r->n_top1, r->n_compared);
    out_note(o, "top-k overlap    %s mean", out_table_text(OUT_PCT, out_real(100.0 * r->mean_overlap), t1, sizeof(t1)));
    if (isnan(r->max_diff)) out_note(o, "max |dlogit|     - (no shared ids)");
    else out_note(o, "max |dlogit|     %s (step %d)", out_table_text(OUT_REAL, out_real(r->max_diff), t1, sizeof(t1)), r->max_diff_step);
    out_note(o, "KL(A||B)         %s mean, %s max (step %d)", out_table_text(OUT_REAL, out_real(r->mean_kl), t1, sizeof(t1)),
             out_table_text(OUT_REAL, out_real(r->max_kl), t2, sizeof(t2)), r->max_kl_step);
    if (r->pos_differs) {
        out_note(o, "warning: step 0 is at position %d in A and %d in B: the prompts differ",
                 opts->side[0].steps[0].pos, opts->side[1].steps[0].pos);
    }
    switch (r->verdict) {
        case LLT_PARITY_IDENTICAL:
            out_note(o, "verdict: identical: same tokens, same top-%d logits", r->k);
            break;
        case LLT_PARITY_MATCH:
            out_note(o, "verdict: match: same greedy tokens; logits differ by up to %s",
                     out_table_text(OUT_REAL, out_real(r->max_diff), t1, sizeof(t1)));
            break;
        case LLT_PARITY_DIVERGED:
            out_note(o, "verdict: diverged at step %d: A chose %d, B chose %d", r->first_diff,
                     r->steps[r->first_diff].token_a, r->steps[r->first_diff].token_b);
            // a missing margin reads "-", as every missing value in a table
            out_note(o, "top-1 - top-2 logit at step %d: A %s, B %s (a small margin is a near tie that small numeric "
                     "differences flip)", r->first_diff,
                     out_table_text(OUT_REAL, isnan(r->margin_a) ? out_null() : out_real(r->margin_a), t1, sizeof(t1)),
                     out_table_text(OUT_REAL, isnan(r->margin_b) ? out_null() : out_real(r->margin_b), t2, sizeof(t2)));
            break;
        case LLT_PARITY_LENGTH:
        case LLT_PARITY_VERDICT_COUNT:
            out_note(o, "verdict: length mismatch: the common %d steps match, but A has %d steps and B %d", n, r->n_a, r->n_b);
            break;
    }
    const struct out_val v[] = {
        out_int(r->k), out_int(r->n_compared), step_or_null(r->first_diff),
        out_real((double) r->n_top1 / r->n_compared), out_real(r->mean_overlap), out_real(r->max_diff),
        step_or_null(r->max_diff_step), out_real(r->mean_kl), out_real(r->max_kl), step_or_null(r->max_kl_step),
        out_real(r->margin_a), out_real(r->margin_b), out_bool(r->pos_differs),
        out_text(llt_parity_verdict_name(r->verdict)),
    };
    return out_record(o, "summary", OUT_COLS(summary_cols), v);
}

static int write_report(enum out_format format, const struct parity_opts * opts, const struct llt_parity_report * r) {
    struct out * o = out_open(stdout, format);
    if (!o) {
        cli_error("out of memory");
        return CLI_FAIL;
    }
    int rc = report_side(o, "a", &opts->side[0], r->n_a);
    if (rc == CLI_OK) rc = report_side(o, "b", &opts->side[1], r->n_b);
    if (rc == CLI_OK) rc = write_steps(o, opts, r);
    if (rc == CLI_OK) rc = write_summary(o, opts, r);
    const int close_rc = out_close(o);
    return rc == CLI_OK ? close_rc : rc;
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
    if (write_report(o.format, &o, &report) != CLI_OK) {
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
