// lltrace mkmodel: write a built-in deterministic llama model.
#include "cli.h"
#include "lltrace.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char * usage_text =
    "usage: lltrace mkmodel PRESET [TYPE] [-o FILE] [--vocab FILE]\n"
    "\n"
    "Writes a deterministic llama model: the same preset and type give the same bytes (the\n"
    "trained sorter: on the same machine and llama.cpp build).\n"
    "\n"
    "  PRESET        sorter (trained to sort letters: 'sort: d a c b =' -> ' a b c d'; n_embd 64,\n"
    "                2 layers; trained here, deterministically, in about 2 minutes),\n"
    "                tiny (n_embd 256, 2 layers) or small (n_embd 768, 12 layers, n_ff 2048)\n"
    "  TYPE          llama file type: F32 (default), F16, BF16, Q8_0, Q4_0, Q4_K_M, Q6_K, IQ4_NL, ...\n"
    "  -o FILE       output (default: <preset>-<type>.gguf; without -o and with --cache: the cache)\n"
    "  --cache       make it in the model cache (where 'lltrace run' finds it) and print the path\n"
    "  --vocab FILE  tokenizer GGUF (default: llama.cpp's models/ggml-vocab-llama-spm.gguf)\n"
    "  -v            show llama.cpp's log\n";

int cli_default_model(const char * preset, int ftype, char ** out_path) {
    if (!llt_default_model_cached(preset, ftype)) {
        const struct llt_preset * p = llt_preset_find(preset);
        fprintf(stderr, "lltrace: making the built-in '%s' %s model (once%s)\n", preset, llt_ftype_name(ftype),
                p && p->trained ? "; training it takes about 2 minutes" : "");
    }
    return llt_default_model(preset, ftype, out_path);
}

int cmd_mkmodel(int argc, char ** argv) {
    const char * preset = NULL, * type = "F32", * out = NULL, * vocab = NULL;
    bool cache = false, verbose = false;
    int n_pos = 0;
    for (int i = 1; i < argc; i++) {
        const char * a = argv[i];
        if (cli_is_help(a)) { fputs(usage_text, stdout); return CLI_OK; }
        if (strcmp(a, "-o") == 0 || strcmp(a, "--output") == 0) {
            if (!(out = cli_value(argc, argv, &i))) return CLI_USAGE;
        } else if (strcmp(a, "--vocab") == 0) {
            if (!(vocab = cli_value(argc, argv, &i))) return CLI_USAGE;
        } else if (strcmp(a, "--cache") == 0) {
            cache = true;
        } else if (strcmp(a, "-v") == 0) {
            verbose = true;
        } else if (a[0] == '-') {
            cli_error("mkmodel: unknown option '%s' (see 'lltrace mkmodel --help')", a);
            return CLI_USAGE;
        } else if (n_pos == 0) {
            preset = a; n_pos++;
        } else if (n_pos == 1) {
            type = a; n_pos++;
        } else {
            cli_error("mkmodel: unexpected argument '%s'", a);
            return CLI_USAGE;
        }
    }
    if (!preset) { fputs(usage_text, stderr); return CLI_USAGE; }
    if (!llt_preset_find(preset)) {
        cli_error("mkmodel: unknown preset '%s' (known: %s)", preset, llt_preset_names());
        return CLI_USAGE;
    }
    int ftype = llt_ftype_from_name(type);
    if (ftype < 0) {
        cli_error("mkmodel: unknown file type '%s' (F32, F16, BF16, Q8_0, Q4_0, Q4_K_M, ...)", type);
        return CLI_USAGE;
    }
    if (vocab && llt_input_check(vocab, NULL) != LLT_OK) { // an input that cannot be read, not a failure to make
        cli_error("mkmodel: cannot read vocabulary: %s", llt_last_error());
        return CLI_USAGE;
    }
    llt_log_init(verbose);

    if (cache && !out) {
        char * path = NULL;
        if (cli_default_model(preset, ftype, &path) != LLT_OK) { cli_error("%s", llt_last_error()); return CLI_FAIL; }
        printf("%s\n", path);
        free(path);
        return CLI_OK;
    }
    char def[256];
    if (!out) {
        snprintf(def, sizeof(def), "%s-%s.gguf", preset, llt_ftype_name(ftype));
        out = def;
    }
    if (llt_mkmodel(preset, ftype, vocab, out) != LLT_OK) {
        cli_error("%s", llt_last_error());
        return CLI_FAIL;
    }
    printf("%s\n", out);
    return CLI_OK;
}
