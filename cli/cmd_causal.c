// lltrace causal: causal tracing (activation patching) of a clean and a corrupted prompt: for
// each layer and position, how much of the clean answer comes back when that position of the
// layer's output is patched from the clean run into the corrupted one (lltrace/causal.h).
#include "cli.h"
#include "lltrace.h"
#include "output.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char * usage_text =
    "usage: lltrace causal [-m MODEL] --clean TEXT --corrupt TEXT [options]\n"
    "\n"
    "Causal tracing: runs the clean and the corrupted prompt (the same number of tokens), takes\n"
    "the clean run's top-1 token as the answer, then for each layer L and position P runs the\n"
    "corrupted prompt with node NODE-L at position P patched from the clean run, and prints the\n"
    "answer's probability there (p) and its logit minus the corrupted top-1's (logit_diff).\n"
    "\n"
    "  -m, --model FILE   GGUF model (default: the built-in 'sorter')\n"
    "  --clean TEXT       the clean prompt\n"
    "  --corrupt TEXT     the corrupted prompt\n"
    "  --node NAME        the node patched per layer: l_out (default, the residual stream),\n"
    "                     attn_out (attention's output), ffn_out (the FFN's)\n"
    "  -t, --threads N    threads (default: all cores)\n"
    "  -o, --output TRACE also store it: the clean and the corrupted run traced (level graph),\n"
    "                     the result in tables causal and causal_cells; 'lltrace report TRACE'\n"
    "                     draws it (appended to an existing trace)\n"
    "  --format F         table (default: a layer x position grid of p), csv or json:\n"
    "                     {\"clean_p\", \"corrupt_p\", ..., \"cells\": [{\"layer\", \"pos\", \"p\", ...}]}\n"
    "  -v, --verbose      show llama.cpp's log\n"
    "\n"
    "Exit status: 0 done; 1 a check failed (nothing patched did not give the corrupted logits, or,\n"
    "with l_out, the last layer patched whole did not give the clean ones), or the trace could\n"
    "not be written; 2 bad usage, an unreadable model, prompts of different token lengths, a\n"
    "TRACE that is not a trace.\n";

static const struct out_col head_cols[] = {
    { "answer", OUT_TEXT, OUT_ALL }, { "answer_token", OUT_INT, OUT_NOT_TABLE },
    { "corrupt_top", OUT_TEXT, OUT_ALL }, { "corrupt_top_token", OUT_INT, OUT_NOT_TABLE },
    { "clean_p", OUT_PRECISE, OUT_ALL }, { "corrupt_p", OUT_PRECISE, OUT_ALL },
    { "clean_logit_diff", OUT_REAL, OUT_ALL }, { "corrupt_logit_diff", OUT_REAL, OUT_ALL },
    { "node", OUT_TEXT, OUT_ALL }, { "n_layer", OUT_INT, OUT_NOT_TABLE }, { "n_pos", OUT_INT, OUT_NOT_TABLE },
    { "none_is_corrupt", OUT_TEXT, OUT_NOT_TABLE }, { "last_is_clean", OUT_TEXT, OUT_NOT_TABLE },
    // with -o: where it is in the trace (null without)
    { "causal_id", OUT_INT, OUT_NOT_TABLE }, { "clean_run", OUT_INT, OUT_NOT_TABLE }, { "corrupt_run", OUT_INT, OUT_NOT_TABLE },
};

static const struct out_col cell_cols[] = {
    { "layer", OUT_INT, OUT_ALL }, { "pos", OUT_INT, OUT_ALL }, { "token", OUT_TEXT, OUT_ALL },
    { "p", OUT_PRECISE, OUT_ALL }, { "logit_diff", OUT_REAL, OUT_ALL }, { "n_changed", OUT_INT, OUT_ALL },
};

// the table: a grid, a row per layer and a column per position (its corrupted token)
static void grid(const struct llt_causal_result * r) {
    printf("%-8s", "layer");
    for (int32_t p = 0; p < r->n_pos; p++) printf(" %8.8s", r->pieces[p]);
    printf("\n");
    for (int32_t l = r->n_layer - 1; l >= 0; l--) {
        printf("%-8d", l);
        for (int32_t p = 0; p < r->n_pos; p++) {
            const struct llt_causal_cell * c = &r->cells[(size_t) l * (size_t) r->n_pos + (size_t) p];
            if (c->n_changed == 0) printf(" %8s", "-");
            else printf(" %8.4f", c->p);
        }
        printf("\n");
    }
}

int cmd_causal(int argc, char ** argv) {
    struct llt_causal_params cp = llt_causal_default_params();
    enum out_format format = OUT_TABLE;
    const char * model = NULL, * output = NULL, * v;
    bool verbose = false;
    int64_t iv;
    for (int i = 1; i < argc; i++) {
        const char * a = argv[i];
        if (cli_is_help(a)) { fputs(usage_text, stdout); return CLI_OK; }
        if (!strcmp(a, "-m") || !strcmp(a, "--model"))        { if (!(model = cli_value(argc, argv, &i))) return CLI_USAGE; }
        else if (!strcmp(a, "--clean"))                       { if (!(cp.clean = cli_value(argc, argv, &i))) return CLI_USAGE; }
        else if (!strcmp(a, "--corrupt"))                     { if (!(cp.corrupt = cli_value(argc, argv, &i))) return CLI_USAGE; }
        else if (!strcmp(a, "--node"))                        { if (!(cp.node = cli_value(argc, argv, &i))) return CLI_USAGE; }
        else if (!strcmp(a, "-o") || !strcmp(a, "--output"))  { if (!(output = cli_value(argc, argv, &i))) return CLI_USAGE; }
        else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) { verbose = true; }
        else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            if (!(v = cli_value(argc, argv, &i)) || !cli_parse_int(a, v, 1, 1024, &iv)) return CLI_USAGE;
            cp.n_threads = (int32_t) iv;
        } else if (!strcmp(a, "--format")) {
            if (!(v = cli_value(argc, argv, &i)) || !out_parse_format(a, v, &format)) return CLI_USAGE;
        } else {
            cli_error("causal: unknown option '%s' (see 'lltrace causal --help')", a);
            return CLI_USAGE;
        }
    }
    if (!cp.clean || !cp.corrupt) { cli_error("causal: give --clean TEXT and --corrupt TEXT"); return CLI_USAGE; }
    if (strspn(cp.node, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_0123456789") != strlen(cp.node) || !*cp.node) {
        cli_error("causal: --node '%s': a node name without its layer (l_out, attn_out, ffn_out, Vcur)", cp.node);
        return CLI_USAGE;
    }
    if (output && llt_output_dir_check(output, "trace") != LLT_OK) { cli_error("%s", llt_last_error()); return CLI_USAGE; }
    llt_log_init(verbose);
    char * model_path = NULL;
    if (model) model_path = strdup(model);
    else if (cli_default_model("sorter", LLAMA_FTYPE_ALL_F32, &model_path) != LLT_OK) { cli_error("%s", llt_last_error()); return CLI_FAIL; }
    cp.model_path = model_path;
    // a trace made here and left without a run (the prompts refused) is removed; an existing one is never touched
    const bool made_trace = output && access(output, F_OK) != 0;
    struct llt_store * st = NULL;
    if (output && cli_open_trace(output, LLT_STORE_WRITE, &st) != LLT_OK) {
        cli_error("%s", llt_last_error());
        free(model_path);
        return CLI_USAGE;
    }
    cp.st = st;
    struct llt_causal_result r;
    int rc = llt_causal(&cp, &r);
    free(model_path);
    if (rc != LLT_OK) {
        cli_error("%s", llt_last_error());
        if (st && made_trace && llt_store_last_run(st) < 0) {
            llt_store_close(st);
            st = NULL;
            unlink(output);
        }
        llt_store_close(st);
        return rc == LLT_ENOMEM || rc == LLT_EIO ? CLI_FAIL : CLI_USAGE;
    }
    llt_store_close(st);
    struct out * o = out_open(stdout, format);
    int exit_code = CLI_OK;
    if (!o) { llt_causal_result_free(&r); return CLI_FAIL; }
    const bool whole = r.last_checked;
    const struct out_val head[] = {
        out_text(r.answer_piece), out_int(r.answer), out_text(r.corrupt_piece), out_int(r.corrupt_top),
        out_real(r.clean_p), out_real(r.corrupt_p), out_real(r.clean_ld), out_real(r.corrupt_ld), out_text(cp.node),
        out_int(r.n_layer), out_int(r.n_pos), out_bool(r.none_is_corrupt), whole ? out_bool(r.last_is_clean) : out_null(),
        r.id ? out_int(r.id) : out_null(), r.id ? out_int(r.clean_run) : out_null(), r.id ? out_int(r.corrupt_run) : out_null(),
    };
    // in json the document's own members: {"clean_p": ..., "corrupt_p": ..., "cells": [...]}
    out_begin(o, "causal", NULL, OUT_COLS(head_cols), OUT_RECORD | OUT_INLINE);
    out_row(o, head);
    out_end(o);
    if (format == OUT_TABLE) {
        fflush(stdout);
        printf("\np of '%s' with %s-L at one position patched from the clean run (- : no row there)\n", r.answer_piece, cp.node);
        grid(&r);
    } else {
        out_begin(o, "cells", NULL, OUT_COLS(cell_cols), 0);
        for (int64_t k = 0; k < (int64_t) r.n_layer * r.n_pos; k++) {
            const struct llt_causal_cell * c = &r.cells[k];
            const struct out_val row[] = { out_int(c->layer), out_int(c->pos), out_text(r.pieces[c->pos]), out_real(c->p),
                                           out_real(c->logit_diff), out_int(c->n_changed) };
            out_row(o, row);
        }
        out_end(o);
    }
    if (r.id) {
        fflush(stdout);
        fprintf(stderr, "lltrace: causal result %lld written to %s (clean run %lld, corrupted run %lld); see 'lltrace report %s'\n",
                (long long) r.id, output, (long long) r.clean_run, (long long) r.corrupt_run, output);
    }
    // the last layer's output is the whole state the logits are computed from: only l_out has
    // the second invariant (a patched V or K of the last layer leaves its Q corrupted)
    if (!r.none_is_corrupt || (whole && !r.last_is_clean)) {
        cli_error("causal: a check failed: %s", !r.none_is_corrupt ? "patching nothing changed the corrupted run's logits"
                                                                    : "patching the last layer whole did not give the clean logits");
        exit_code = CLI_FAIL;
    }
    rc = out_close(o);
    llt_causal_result_free(&r);
    return rc != CLI_OK ? rc : exit_code;
}
