// What llama.cpp's callbacks cost by themselves, with no tracer behind them: generation with no
// callback, with an eval callback that declines every node (what level graph asks of the
// scheduler), with one that observes every computing node and does nothing else (what level
// values asks, and timing where the CPU backend's stamps are not available), and declining
// every node with an abort callback that stamps the time after each node (how levels timing
// and profile time nodes). Interleaved in one process; prints a Markdown section.
//
//   bench-floor MODEL [REPS]
//   bench-floor MODEL --once MODE N   one generation of N tokens, 1 thread, nothing printed: for
//                                     bench/instructions.sh's floor (MODE: none, decline, observe, stamp)
#include "lltrace.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum mode { NO_CALLBACK, DECLINE_ALL, OBSERVE_COMPUTING, STAMP_ALL, N_MODES };
static const char * mode_names[] = { "no callback", "declines every node", "observes every computing node",
                                     "declines every node, abort callback stamps every computed node" };
_Static_assert(sizeof(mode_names)/sizeof(mode_names[0]) == N_MODES, "mode names");

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static bool decline(struct ggml_tensor * t, bool ask, void * ud) { return !ask; }

static bool observe(struct ggml_tensor * t, bool ask, void * ud) {
    if (!ask) return true;
    return !(t->op == GGML_OP_NONE || t->op == GGML_OP_VIEW || t->op == GGML_OP_RESHAPE ||
             t->op == GGML_OP_PERMUTE || t->op == GGML_OP_TRANSPOSE);
}

static int64_t stamps[4096];
static int n_stamps;

static bool stamp(void * ud) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    stamps[n_stamps++ & 4095] = (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
    return false;
}

// seconds for n_gen generated tokens after a 32-token prompt, on n_threads (0: all cores)
static double generate(struct llama_model * model, enum mode m, int n_gen, int n_threads) {
    struct llama_context_params cp = llama_context_default_params();
    cp.n_ctx = 256;
    cp.n_batch = cp.n_ubatch = 512;
    cp.no_perf = true;
    cp.n_threads = cp.n_threads_batch = n_threads > 0 ? n_threads : (int32_t) sysconf(_SC_NPROCESSORS_ONLN); // as lltrace run and bench
    cp.cb_eval = m == DECLINE_ALL || m == STAMP_ALL ? decline : m == OBSERVE_COMPUTING ? observe : NULL;
    if (m == STAMP_ALL) cp.abort_callback = stamp;
    struct llama_context * ctx = llama_init_from_model(model, cp);
    llama_token toks[32];
    toks[0] = 1;
    for (int i = 1; i < 32; i++) toks[i] = 1000 + (i * 37) % 20000;
    llama_decode(ctx, llama_batch_get_one(toks, 32));
    struct llama_sampler * s = llama_sampler_chain_init(llama_sampler_chain_default_params());
    llama_sampler_chain_add(s, llama_sampler_init_greedy());
    const double t0 = now_s();
    for (int i = 0; i < n_gen; i++) {
        llama_token tok = llama_sampler_sample(s, ctx, -1);
        llama_decode(ctx, llama_batch_get_one(&tok, 1));
    }
    const double t = now_s() - t0;
    llama_sampler_free(s);
    llama_free(ctx);
    return t;
}

static int cmp(const void * a, const void * b) {
    double x = *(const double *) a, y = *(const double *) b;
    return (x > y) - (x < y);
}

int main(int argc, char ** argv) {
    static const char * once_modes[] = { "none", "decline", "observe", "stamp" };
    _Static_assert(sizeof(once_modes)/sizeof(once_modes[0]) == N_MODES, "mode names for --once");
    int once = -1;
    if (argc == 5 && strcmp(argv[2], "--once") == 0) {
        for (int m = 0; m < N_MODES; m++) if (strcmp(argv[3], once_modes[m]) == 0) once = m;
    }
    if (argc < 2 || (argc > 3 && (once < 0 || atoi(argv[4]) < 1))) {
        fprintf(stderr, "usage: bench-floor MODEL [REPS] | MODEL --once none|decline|observe|stamp N\n");
        return 2;
    }
    const int reps = argc == 3 ? atoi(argv[2]) : 10;
    if (reps < 1 || reps > 1000) {
        fprintf(stderr, "bench-floor: REPS must be in [1, 1000]\n");
        return 2;
    }
    llt_log_init(false);
    llama_backend_init();
    struct llama_model * model = llama_model_load_from_file(argv[1], llama_model_default_params());
    if (!model) {
        fprintf(stderr, "bench-floor: cannot load '%s'\n", argv[1]);
        return 1;
    }
    if (once >= 0) {
        generate(model, (enum mode) once, atoi(argv[4]), 1);
        llama_model_free(model);
        return 0;
    }
    double * t = malloc(sizeof(double) * (size_t) reps * N_MODES), ratio[N_MODES][1000];
    generate(model, NO_CALLBACK, 64, 0); // warm-up
    for (int r = 0; r < reps; r++) {
        for (int m = 0; m < N_MODES; m++) t[r * N_MODES + m] = generate(model, (enum mode) m, 64, 0);
        for (int m = 0; m < N_MODES; m++) ratio[m][r] = (t[r * N_MODES + m] / t[r * N_MODES] - 1) * 100;
    }
    printf("## llama.cpp's callbacks alone, %d repetitions\n\n", reps);
    printf("The floor under every trace level: generation time of 64 tokens against no callback\n"
           "(median of the per-repetition ratios), with callbacks that record nothing.\n\n");
    printf("| callback | generation time vs no callback |\n|---|---|\n");
    for (int m = 1; m < N_MODES; m++) {
        qsort(ratio[m], (size_t) reps, sizeof(double), cmp);
        printf("| %s | %+.1f%% |\n", mode_names[m], ratio[m][reps / 2]);
    }
    printf("\n");
    free(t);
    llama_model_free(model);
    return 0;
}
