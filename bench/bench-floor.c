// What llama.cpp's callbacks cost by themselves, with no tracer behind them: generation with no
// callback, with an eval callback that declines every node (what level graph asks of the
// scheduler), with one that observes every computing node and does nothing else (what level
// values asks, and timing where the CPU backend's stamps are not available), and declining
// every node with an abort callback that stamps the time after each node (how levels timing
// and profile time nodes), and observing only the nodes level values still observes on a
// llama graph when it reads statistics at stamps: the nodes the next computed node writes over
// (attn_out and ffn_out, which the residual ADD overwrites, the last l_out; the norms are
// derived from their inputs) and the output. Interleaved in one process, each context with its own threadpool as in `lltrace
// run`; prints a Markdown section.
//
//   bench-floor MODEL [REPS]
//   bench-floor MODEL --once MODE N   one generation of N tokens, 1 thread, nothing printed: for
//                                     bench/instructions.sh's floor (MODE: none, decline, observe,
//                                     stamp, values-splits)
#include "lltrace.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum mode { NO_CALLBACK, DECLINE_ALL, OBSERVE_COMPUTING, STAMP_ALL, VALUES_SPLITS, N_MODES };
static const char * mode_names[] = { "no callback", "declines every node", "observes every computing node",
                                     "declines every node, abort callback stamps every computed node",
                                     "observes the nodes level values splits at (attn_out, ffn_out, the last l_out, the output)" };
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

// what level values observes on a llama graph when it reads at stamps (record.c, plan_stamps)
static bool values_splits(struct ggml_tensor * t, bool ask, void * ud) {
    const int32_t n_layer = *(const int32_t *) ud;
    if (!ask) return true;
    char last_l_out[32];
    snprintf(last_l_out, sizeof(last_l_out), "l_out-%d", n_layer - 1);
    return strncmp(t->name, "attn_out-", 9) == 0 || strncmp(t->name, "ffn_out-", 8) == 0 ||
           strcmp(t->name, last_l_out) == 0 || strcmp(t->name, "result_output") == 0;
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
    cp.cb_eval = m == DECLINE_ALL || m == STAMP_ALL ? decline : m == OBSERVE_COMPUTING ? observe
               : m == VALUES_SPLITS ? values_splits : NULL;
    int32_t n_layer = llama_model_n_layer(model);
    cp.cb_eval_user_data = &n_layer;
    if (m == STAMP_ALL) cp.abort_callback = stamp;
    struct llama_context * ctx = llama_init_from_model(model, cp);
    // a threadpool of its own, as `lltrace run` and llama.cpp's programs have: without one, ggml
    // makes one for every compute call, which is every split of the graph
    ggml_backend_dev_t dev = ggml_backend_dev_by_type(GGML_BACKEND_DEVICE_TYPE_CPU);
    ggml_backend_reg_t reg = dev ? ggml_backend_dev_backend_reg(dev) : NULL;
    void * new_sym = reg ? ggml_backend_reg_get_proc_address(reg, "ggml_threadpool_new") : NULL;
    void * free_sym = reg ? ggml_backend_reg_get_proc_address(reg, "ggml_threadpool_free") : NULL;
    struct ggml_threadpool * pool = NULL;
    void (*free_fn)(struct ggml_threadpool *) = NULL;
    if (new_sym && free_sym) {
        struct ggml_threadpool * (*new_fn)(struct ggml_threadpool_params *);
        memcpy(&new_fn, &new_sym, sizeof(new_fn));
        memcpy(&free_fn, &free_sym, sizeof(free_fn));
        struct ggml_threadpool_params tpp = ggml_threadpool_params_default(cp.n_threads);
        if ((pool = new_fn(&tpp))) llama_attach_threadpool(ctx, pool, NULL);
    }
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
    if (pool) free_fn(pool);
    return t;
}

static int cmp(const void * a, const void * b) {
    double x = *(const double *) a, y = *(const double *) b;
    return (x > y) - (x < y);
}

int main(int argc, char ** argv) {
    static const char * once_modes[] = { "none", "decline", "observe", "stamp", "values-splits" };
    _Static_assert(sizeof(once_modes)/sizeof(once_modes[0]) == N_MODES, "mode names for --once");
    int once = -1;
    if (argc == 5 && strcmp(argv[2], "--once") == 0) {
        for (int m = 0; m < N_MODES; m++) if (strcmp(argv[3], once_modes[m]) == 0) once = m;
    }
    if (argc < 2 || (argc > 3 && (once < 0 || atoi(argv[4]) < 1))) {
        fprintf(stderr, "usage: bench-floor MODEL [REPS] | MODEL --once none|decline|observe|stamp|values-splits N\n");
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
