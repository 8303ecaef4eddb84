// A llama.cpp program for lltrace exec's tests, linked with libllama as any program is: it
// makes N contexts one after another (freed in between, so the next one may come at the same
// address), and in each generates greedily from one prompt, printing the tokens.
//   exec-contexts MODEL N_CONTEXTS N_PREDICT [--no-free] [--sleep-ms MS] [--threads] [--ubatch N]
//                 [--warmup|--read-clear]
// --no-free: exits without freeing the last context (its run must end at exit);
// --sleep-ms: sleeps after every token (a test kills it mid-generation);
// --threads: the contexts generate at once, each on a thread of its own;
// --ubatch N: llama.cpp computes a decode call in ubatches of N tokens (a graph each);
// --warmup: first decodes the prompt, reads nothing and clears the memory (as llama.cpp's
// warm-up does); --read-clear: the same, but reads the logits before clearing (as an
// embedding program reads each batch's output).
#include "llama.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void quiet(enum ggml_log_level level, const char * text, void * ud) { (void) level; (void) text; (void) ud; }

struct job {
    struct llama_model * model;
    const llama_token *  toks;
    int                  n_prompt, n_predict, sleep_ms, index, n_ubatch;
    bool                 keep;   // do not free the context
    char                 out[4096];
    int                  failed;
    int                  first;  // 1: a warm-up decode first, 2: a decode read, then cleared
};

// one context: the prompt, then n_predict greedy tokens; the line it prints into job->out
static void * generate(void * arg) {
    struct job * j = arg;
    struct llama_context_params cp = llama_context_default_params();
    cp.n_ctx = 256;
    cp.n_batch = 64;
    cp.n_threads = cp.n_threads_batch = 2;
    if (j->n_ubatch > 0) cp.n_ubatch = (uint32_t) j->n_ubatch;
    struct llama_context * ctx = llama_init_from_model(j->model, cp);
    if (!ctx) { j->failed = 1; return NULL; }
    int len = snprintf(j->out, sizeof(j->out), "context %d at %p:", j->index, (void *) ctx);
    struct llama_sampler * smpl = llama_sampler_chain_init(llama_sampler_chain_default_params());
    llama_sampler_chain_add(smpl, llama_sampler_init_greedy());
    struct llama_batch batch = llama_batch_get_one((llama_token *) j->toks, j->n_prompt);
    if (j->first) {
        if (llama_decode(ctx, batch) != 0) j->failed = 1;
        if (j->first == 2 && !llama_get_logits_ith(ctx, -1)) j->failed = 1;
        llama_memory_clear(llama_get_memory(ctx), true);
    }
    llama_token next;
    for (int i = 0; i < j->n_predict; i++) {
        if (llama_decode(ctx, batch) != 0) { j->failed = 1; break; }
        next = llama_sampler_sample(smpl, ctx, -1);
        if (len < (int) sizeof(j->out)) len += snprintf(j->out + len, sizeof(j->out) - (size_t) len, " %d", next);
        if (j->sleep_ms) {
            printf("%s\n", j->out); // the tokens so far, for a test that kills the program
            fflush(stdout);
            nanosleep(&(struct timespec) { j->sleep_ms / 1000, (j->sleep_ms % 1000) * 1000000L }, NULL);
        }
        batch = llama_batch_get_one(&next, 1);
    }
    llama_sampler_free(smpl);
    if (!j->keep) llama_free(ctx);
    return NULL;
}

int main(int argc, char ** argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: exec-contexts MODEL N_CONTEXTS N_PREDICT [--no-free] [--sleep-ms MS] [--threads] [--ubatch N] [--warmup|--read-clear]\n");
        return 2;
    }
    const int n_contexts = atoi(argv[2]), n_predict = atoi(argv[3]);
    int no_free = 0, sleep_ms = 0, threads = 0, n_ubatch = 0, first = 0;
    for (int i = 4; i < argc; i++) {
        if (!strcmp(argv[i], "--no-free")) no_free = 1;
        else if (!strcmp(argv[i], "--threads")) threads = 1;
        else if (!strcmp(argv[i], "--sleep-ms") && i + 1 < argc) sleep_ms = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--ubatch") && i + 1 < argc) n_ubatch = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--warmup")) first = 1;
        else if (!strcmp(argv[i], "--read-clear")) first = 2;
    }
    if (n_contexts < 1 || n_contexts > 16) { fprintf(stderr, "1 to 16 contexts\n"); return 2; }
    llama_log_set(quiet, NULL);
    llama_backend_init();
    struct llama_model * model = llama_model_load_from_file(argv[1], llama_model_default_params());
    if (!model) { fprintf(stderr, "cannot load %s\n", argv[1]); return 1; }
    const struct llama_vocab * vocab = llama_model_get_vocab(model);
    const char * prompt = "Hello, my name is";
    llama_token toks[64];
    const int n_prompt = llama_tokenize(vocab, prompt, (int32_t) strlen(prompt), toks, 64, true, true);

    static struct job jobs[16];
    pthread_t tid[16];
    for (int c = 0; c < n_contexts; c++) {
        jobs[c] = (struct job) { model, toks, n_prompt, n_predict, sleep_ms, c, n_ubatch, no_free && c == n_contexts - 1, "", 0, first };
        if (threads) {
            pthread_create(&tid[c], NULL, generate, &jobs[c]);
        } else {
            generate(&jobs[c]);
            if (!sleep_ms) printf("%s\n", jobs[c].out);
        }
    }
    for (int c = 0; threads && c < n_contexts; c++) {
        pthread_join(tid[c], NULL);
        printf("%s\n", jobs[c].out);
    }
    for (int c = 0; c < n_contexts; c++) {
        if (jobs[c].failed) { fprintf(stderr, "context %d failed\n", c); return 1; }
    }
    if (!no_free) llama_model_free(model);
    return 0;
}
