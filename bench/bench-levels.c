// Tracing overhead measured inside one process: untraced and traced generations alternate, so
// both see the same machine state (lltrace bench runs each in its own process, which adds the
// spread of process start-up to the figures). Prints a Markdown table.
//
//   bench-levels MODEL [REPS] [LEVELS]     LEVELS: comma-separated (graph,timing,profile,values,parity)
//
// One level alone removes the effect of the other levels' runs on the machine (their end-of-run
// writes) from its figures.
#include "lltrace.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int cmp(const void * a, const void * b) {
    double x = *(const double *) a, y = *(const double *) b;
    return (x > y) - (x < y);
}

// one generation: 32-token prompt, 64 tokens; traced at level (or untraced when level < 0)
static int generate(const char * model, int level, int parity_k, double * prompt_s, double * gen_s) {
    llama_token toks[32];
    toks[0] = 1;
    for (int i = 1; i < 32; i++) toks[i] = 1000 + (i * 37) % 20000;
    struct llt_gen_params p = llt_gen_default_params();
    p.model_path = model;
    p.prompt_tokens = toks;
    p.n_prompt_tokens = 32;
    p.n_predict = 64;
    p.level = level < 0 ? LLT_LEVEL_GRAPH : (enum llt_level) level;
    p.parity_top_k = parity_k;
    char trace[] = "/tmp/lltrace-bench-levels-XXXXXX";
    struct llt_store * st = NULL;
    if (level >= 0) {
        int fd = mkstemp(trace);
        if (fd < 0) return -1;
        close(fd);
        if (llt_store_open(trace, LLT_STORE_WRITE, &st) != LLT_OK) return -1;
    }
    struct llt_gen_result r;
    int rc = llt_generate(&p, st, &r);
    llt_store_close(st);
    if (level >= 0) unlink(trace);
    if (rc != LLT_OK) return rc;
    *prompt_s = r.t_prompt_ns / 1e9;
    *gen_s = r.t_gen_ns / 1e9;
    llt_gen_result_free(&r);
    return 0;
}

int main(int argc, char ** argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: bench-levels MODEL [REPS] [LEVELS]\n");
        return 2;
    }
    const int reps = argc > 2 ? atoi(argv[2]) : 10;
    if (reps < 1 || reps > 500) {
        fprintf(stderr, "bench-levels: REPS must be in [1, 500]\n");
        return 2;
    }
    llt_log_init(false);
    // a level of -2: untraced with parity logging (top-10)
    int levels[8] = { LLT_LEVEL_GRAPH, LLT_LEVEL_TIMING, LLT_LEVEL_PROFILE, LLT_LEVEL_VALUES, -2 };
    int n_levels = 5;
    if (argc > 3) {
        char list[256];
        snprintf(list, sizeof(list), "%s", argv[3]);
        n_levels = 0;
        for (char * save = NULL, * tok = strtok_r(list, ",", &save); tok && n_levels < 8; tok = strtok_r(NULL, ",", &save)) {
            int l = strcmp(tok, "parity") == 0 ? -2 : llt_level_from_name(tok);
            if (l == -1) {
                fprintf(stderr, "bench-levels: unknown level '%s'\n", tok);
                return 2;
            }
            levels[n_levels++] = l;
        }
    }
    double * gen = calloc((size_t) reps * n_levels, sizeof(double)), * prompt = calloc((size_t) reps * n_levels, sizeof(double));
    double off_p, off_g, p_s, g_s;
    if (!gen || !prompt || generate(argv[1], -1, 0, &off_p, &off_g) != 0) { // warm-up
        fprintf(stderr, "bench-levels: %s\n", llt_last_error());
        return 1;
    }
    for (int r = 0; r < reps; r++) {
        for (int l = 0; l < n_levels; l++) {
            // each traced run next to its own untraced run: after it, or before it on odd repetitions
            const int level = levels[l] == -2 ? -1 : levels[l], parity_k = levels[l] == -2 ? 10 : 0;
            const bool traced_first = r % 2 == 1;
            if ((traced_first && generate(argv[1], level, parity_k, &p_s, &g_s) != 0) ||
                generate(argv[1], -1, 0, &off_p, &off_g) != 0 ||
                (!traced_first && generate(argv[1], level, parity_k, &p_s, &g_s) != 0)) {
                fprintf(stderr, "bench-levels: %s\n", llt_last_error());
                return 1;
            }
            prompt[l * reps + r] = (p_s / off_p - 1) * 100;
            gen[l * reps + r] = (g_s / off_g - 1) * 100;
        }
    }
    printf("## In-process overhead, %d pairs per level\n\n", reps);
    printf("Each traced generation (32-token prompt, 64 tokens) next to an untraced one in the same\n"
           "process (after it, or before it in every other pair); median of the pair ratios.\n\n| level | prompt time vs off | generation time vs off |\n|---|---|---|\n");
    for (int l = 0; l < n_levels; l++) {
        qsort(prompt + l * reps, (size_t) reps, sizeof(double), cmp);
        qsort(gen + l * reps, (size_t) reps, sizeof(double), cmp);
        printf("| %s | %+.1f%% | %+.1f%% |\n", levels[l] == -2 ? "parity (untraced, top-10)" : llt_level_name((enum llt_level) levels[l]),
               prompt[l * reps + reps / 2], gen[l * reps + reps / 2]);
    }
    printf("\n");
    free(gen);
    free(prompt);
    return 0;
}
