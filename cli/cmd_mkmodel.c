// lltrace mkmodel: write a built-in deterministic model of one of several architectures.
#include "cli.h"
#include "lltrace.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char * usage_text =
    "usage: lltrace mkmodel PRESET [TYPE] [-o FILE] [--vocab FILE]\n"
    "\n"
    "Writes a deterministic model: the same preset and type give the same bytes (the trained\n"
    "sorter: on the same machine and llama.cpp build). It holds only the tensors a real\n"
    "checkpoint of its architecture has, and its family's tokenizer.\n"
    "\n"
    "  PRESET        architecture and size:\n"
    "                  sorter          llama trained here to sort letters ('sort: d a c b =' ->\n"
    "                                  ' a b c d'), n_embd 64, 1 layer, 1 head; its own 17-token\n"
    "                                  vocab; trained deterministically in a minute or two\n"
    "                  tiny            llama, n_embd 256, 2 layers (vocab llama-spm)\n"
    "                  small           llama, n_embd 768, 12 layers, n_ff 2048 (vocab llama-spm)\n"
    "                  tiny-gpt2       gpt2: LayerNorm with biases, learned positions, GELU (vocab gpt-2)\n"
    "                  tiny-qwen3      qwen3: Q/K norms, head_dim 32 x 4 heads > n_embd 64 (vocab qwen2)\n"
    "                  tiny-gemma3     gemma3: sliding-window layer 0, global layer 1 (vocab gemma-4)\n"
    "                  tiny-qwen3moe   qwen3moe: 8 experts, 2 used per token (vocab qwen2)\n"
    "                  tiny-bitnet     bitnet b1.58: ternary projections, for TQ1_0/TQ2_0 (vocab llama-spm)\n"
    "  TYPE          llama file type: F32 (default), F16, BF16, Q8_0, Q4_0, Q4_K_M, Q6_K, IQ4_NL,\n"
    "                TQ1_0, TQ2_0, ...\n"
    "  -o FILE       output (default: <preset>-<type>.gguf; without -o and with --cache: the cache)\n"
    "  --cache       make it in the model cache (where 'lltrace run' finds it) and print the path\n"
    "  --vocab FILE  tokenizer GGUF (default: the family's models/ggml-vocab-*.gguf of llama.cpp,\n"
    "                from $LLTRACE_VOCAB_DIR; llama-spm from $LLTRACE_VOCAB)\n"
    "  -v            show llama.cpp's log\n";

int cli_default_model(const char * preset, int ftype, char ** out_path) {
    if (!llt_default_model_cached(preset, ftype)) {
        // a trained preset is trained once, in F32; its other types quantize that
        const struct llt_preset * p = llt_preset_find(preset);
        const bool trains = p && p->trained && !llt_default_model_cached(preset, LLAMA_FTYPE_ALL_F32);
        fprintf(stderr, "lltrace: making the built-in '%s' %s model (once%s)\n", preset, llt_ftype_name(ftype),
                trains ? "; training it takes about a minute" : "");
    }
    return llt_default_model(preset, ftype, out_path);
}

// what was written, read back from the file: llama.cpp counts no parameters on a model it
// built in memory (llama_model_n_params is 0 there). Nothing for a FIFO or device.
static void print_size(const char * path) {
    struct llt_registry * reg = NULL;
    if (llt_registry_load(path, &reg) != LLT_OK) return;
    int64_t params = 0;
    for (int i = 0; i < llt_registry_count(reg); i++) {
        const struct llt_weight * w = llt_registry_get(reg, i);
        params += w->ne[0] * w->ne[1] * w->ne[2] * w->ne[3];
    }
    char arch[32] = "";
    llt_registry_meta(reg, "general.architecture", arch, sizeof(arch));
    fprintf(stderr, "lltrace: %s: %s, %d tensors, %lld parameters, %.1f MiB\n", path, arch, llt_registry_count(reg),
            (long long) params, (double) llt_registry_file_size(reg) / (1024.0 * 1024.0));
    llt_registry_free(reg);
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
    int rc = cli_check_stdout(); // the path first: when it cannot be written, that is the one error
    if (rc == CLI_OK) print_size(out);
    return rc;
}
