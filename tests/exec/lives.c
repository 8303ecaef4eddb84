// A llama.cpp program for lltrace exec's tests of process lives, linked with libllama as any
// program is. Every context uses one thread (a forked child computes without OpenMP's pool).
//   exec-lives MODEL exit N     N threads decode, each in its own context, without end; once
//                               each has chosen 4 tokens the main thread calls exit(0); the
//                               program's own exit handler, which runs after lltrace's, waits
//                               for each thread to choose 2 more (a program's exit work while
//                               its threads still decode: a Python interpreter's, node's), then
//                               stops them (llama.cpp's own exit work cannot run beside a decode)
//   exec-lives MODEL fork       the parent decodes the prompt and 3 tokens, forks; the child
//                               decodes 3 tokens in the same context and 3 in one of its own,
//                               then exits; the parent, once it has, 3 more and exits
//   exec-lives MODEL forkwait    the parent decodes the prompt and 3 tokens, forks a child that
//                               sleeps 60 s, prints "forked PID" and waits to be killed
//   exec-lives MODEL refuse     more tokens than the KV cache holds, in batches: llama_decode
//                               refuses one that does not fit (1), and the program halves it
//                               and retries, as llama-server does, until the cache is full
// Each prints the tokens it chose ("parent: 1 2 3", "decoded N" ...).
#define _DEFAULT_SOURCE // usleep
#include "llama.h"
#include "ggml-backend.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void quiet(enum ggml_log_level level, const char * text, void * ud) { (void) level; (void) text; (void) ud; }

static struct llama_model * model;
static llama_token prompt[64];
static int n_prompt;

static struct llama_context * context(int n_ctx) {
    struct llama_context_params cp = llama_context_default_params();
    cp.n_ctx = (uint32_t) n_ctx;
    cp.n_batch = cp.n_ubatch = 512;
    cp.n_threads = cp.n_threads_batch = 1;
    struct llama_context * ctx = llama_init_from_model(model, cp);
    if (!ctx) { fprintf(stderr, "no context\n"); exit(1); }
    return ctx;
}

// n greedy tokens after *next (the prompt when first); prints them after label
static void generate(struct llama_context * ctx, llama_token * next, bool first, int n, const char * label) {
    struct llama_sampler * smpl = llama_sampler_chain_init(llama_sampler_chain_default_params());
    llama_sampler_chain_add(smpl, llama_sampler_init_greedy());
    printf("%s:", label);
    for (int i = 0; i < n; i++) {
        struct llama_batch b = first && i == 0 ? llama_batch_get_one(prompt, n_prompt) : llama_batch_get_one(next, 1);
        if (llama_decode(ctx, b) != 0) { fprintf(stderr, "%s: decode failed\n", label); exit(1); }
        *next = llama_sampler_sample(smpl, ctx, -1);
        printf(" %d", *next);
    }
    printf("\n");
    fflush(stdout);
    llama_sampler_free(smpl);
}

// ---- exit: exit() while other threads decode -----------------------------------------------

static atomic_int chosen[16];
static atomic_bool park;     // the threads stop decoding (before llama.cpp's own exit work)
static atomic_int  n_parked;

static void * endless(void * arg) {
    const int k = (int) (intptr_t) arg;
    struct llama_context * ctx = context(512);
    struct llama_sampler * smpl = llama_sampler_chain_init(llama_sampler_chain_default_params());
    llama_sampler_chain_add(smpl, llama_sampler_init_greedy());
    llama_token next;
    struct llama_batch b = llama_batch_get_one(prompt, n_prompt);
    for (int pos = n_prompt;; pos++) {
        if (atomic_load(&park)) {
            atomic_fetch_add(&n_parked, 1);
            for (;;) pause();
        }
        if (pos >= 500) { llama_memory_clear(llama_get_memory(ctx), true); pos = n_prompt; b = llama_batch_get_one(prompt, n_prompt); }
        if (llama_decode(ctx, b) != 0) { fprintf(stderr, "decode failed\n"); exit(1); }
        next = llama_sampler_sample(smpl, ctx, -1);
        atomic_fetch_add(&chosen[k], 1);
        b = llama_batch_get_one(&next, 1);
    }
    return NULL;
}

static int n_threads;
static int at_exit_had[16];

// the program's exit work, after lltrace's (registered before lltrace loaded): the threads go
// on decoding meanwhile (at most 10 s, in case they are stuck: the test then sees too few tokens)
static void more_tokens(void) {
    for (int k = 0; k < n_threads; k++) at_exit_had[k] = atomic_load(&chosen[k]);
    for (int k = 0, waited = 0; k < n_threads && waited < 10000; k++) {
        while (atomic_load(&chosen[k]) < at_exit_had[k] + 2 && waited++ < 10000) usleep(1000);
    }
    printf("after exit: %s\n", n_threads > 0 && atomic_load(&chosen[0]) >= at_exit_had[0] + 2 ? "more tokens" : "stuck");
    fflush(stdout);
    // llama.cpp's own exit work frees what a decode uses: the threads stop first
    atomic_store(&park, true);
    for (int waited = 0; atomic_load(&n_parked) < n_threads && waited < 10000; waited++) usleep(1000);
}

static int run_exit(int n) {
    pthread_t t;
    n_threads = n;
    for (int k = 0; k < n; k++) pthread_create(&t, NULL, endless, (void *) (intptr_t) k);
    for (int k = 0; k < n; k++) while (atomic_load(&chosen[k]) < 4) usleep(1000);
    printf("exiting\n");
    fflush(stdout);
    exit(0);
}

// ---- fork: a child that decodes, then exits; forkwait: a parent killed while its child lives -

// the parent's context, its prompt and 3 tokens decoded, then fork(): the child's pid (0 in it)
static pid_t fork_after_prompt(struct llama_context ** ctx, llama_token * next) {
    *ctx = context(256);
    generate(*ctx, next, true, 4, "parent");
    return fork();
}

static int run_fork(void) {
    struct llama_context * ctx;
    llama_token next;
    const pid_t pid = fork_after_prompt(&ctx, &next);
    if (pid == 0) {
        llama_token mine = next;
        generate(ctx, &mine, false, 3, "child");
        struct llama_context * own = context(256);
        generate(own, &mine, true, 3, "child's own");
        exit(0);
    }
    int status;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "the child failed\n");
        return 1;
    }
    generate(ctx, &next, false, 3, "parent");
    llama_free(ctx);
    llama_model_free(model);
    return 0;
}

static int run_forkwait(void) {
    struct llama_context * ctx;
    llama_token next;
    const pid_t pid = fork_after_prompt(&ctx, &next);
    if (pid == 0) {
        sleep(60);
        _exit(0);
    }
    printf("forked %d\n", (int) pid);
    fflush(stdout);
    for (;;) pause();
}

// ---- refuse: a batch the KV cache cannot hold, retried in halves ---------------------------

static int run_refuse(void) {
    struct llama_context * ctx = context(256);
    const int n_cells = (int) llama_n_ctx(ctx), n = n_cells + n_cells / 2;

    llama_token * toks = malloc((size_t) n * sizeof(*toks));
    for (int i = 0; i < n; i++) toks[i] = prompt[i % n_prompt];
    int done = 0, n_batch = n_cells * 3 / 4, refused = 0;
    while (done < n && n_batch > 0) {
        const int m = n - done < n_batch ? n - done : n_batch;
        const int ret = llama_decode(ctx, llama_batch_get_one(toks + done, m));
        if (ret == 1) { refused++; n_batch /= 2; continue; }
        if (ret != 0) { fprintf(stderr, "decode: %d\n", ret); return 1; }
        done += m;
    }
    printf("decoded %d of %d tokens, %d calls refused\n", done, n, refused);
    free(toks);
    llama_free(ctx);
    llama_model_free(model);
    return 0;
}

int main(int argc, char ** argv) {
    if (argc < 3) { fprintf(stderr, "usage: exec-lives MODEL exit N | fork | refuse\n"); return 2; }
    llama_log_set(quiet, NULL);
    llama_backend_init();
    if (!strcmp(argv[2], "exit")) {
        // ggml's CPU backend destroys its extra buffer types at exit, made on first use: made
        // now, they go after the handler; the handler goes after lltrace's, loaded with the model
        ggml_backend_dev_t cpu = ggml_backend_dev_by_type(GGML_BACKEND_DEVICE_TYPE_CPU);
        ggml_backend_dev_get_extra_bufts_t extra = (ggml_backend_dev_get_extra_bufts_t)
            ggml_backend_reg_get_proc_address(ggml_backend_dev_backend_reg(cpu), "ggml_backend_dev_get_extra_bufts");
        if (extra) extra(cpu);
        atexit(more_tokens);
    }
    model = llama_model_load_from_file(argv[1], llama_model_default_params());
    if (!model) { fprintf(stderr, "cannot load %s\n", argv[1]); return 1; }
    const char * text = "Hello, my name is";
    n_prompt = llama_tokenize(llama_model_get_vocab(model), text, (int32_t) strlen(text), prompt, 64, true, true);
    if (!strcmp(argv[2], "exit") && argc > 3) return run_exit(atoi(argv[3]) < 1 ? 1 : atoi(argv[3]) > 16 ? 16 : atoi(argv[3]));
    if (!strcmp(argv[2], "fork")) return run_fork();
    if (!strcmp(argv[2], "forkwait")) return run_forkwait();
    if (!strcmp(argv[2], "refuse")) return run_refuse();
    fprintf(stderr, "unknown mode %s\n", argv[2]);
    return 2;
}
