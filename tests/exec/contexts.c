// A llama.cpp program for lltrace exec's tests, linked with libllama as any program is: it
// makes N contexts one after another (freed in between, so the next one may come at the same
// address), and in each generates greedily from one prompt, printing the tokens.
//   exec-contexts MODEL N_CONTEXTS N_PREDICT [--no-free] [--sleep-ms MS]
// --no-free: exits without freeing the last context (its run must end at exit);
// --sleep-ms: sleeps after every token (a test kills it mid-generation).
#include "llama.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void quiet(enum ggml_log_level level, const char * text, void * ud) { (void) level; (void) text; (void) ud; }

int main(int argc, char ** argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: exec-contexts MODEL N_CONTEXTS N_PREDICT [--no-free] [--sleep-ms MS]\n");
        return 2;
    }
    const int n_contexts = atoi(argv[2]), n_predict = atoi(argv[3]);
    int no_free = 0, sleep_ms = 0;
    for (int i = 4; i < argc; i++) {
        if (!strcmp(argv[i], "--no-free")) no_free = 1;
        else if (!strcmp(argv[i], "--sleep-ms") && i + 1 < argc) sleep_ms = atoi(argv[++i]);
    }
    llama_log_set(quiet, NULL);
    llama_backend_init();
    struct llama_model * model = llama_model_load_from_file(argv[1], llama_model_default_params());
    if (!model) { fprintf(stderr, "cannot load %s\n", argv[1]); return 1; }
    const struct llama_vocab * vocab = llama_model_get_vocab(model);
    const char * prompt = "Hello, my name is";
    llama_token toks[64];
    const int n_prompt = llama_tokenize(vocab, prompt, (int32_t) strlen(prompt), toks, 64, true, true);

    for (int c = 0; c < n_contexts; c++) {
        struct llama_context_params cp = llama_context_default_params();
        cp.n_ctx = 256;
        cp.n_batch = 64;
        cp.n_threads = cp.n_threads_batch = 2;
        struct llama_context * ctx = llama_init_from_model(model, cp);
        if (!ctx) { fprintf(stderr, "cannot make a context\n"); return 1; }
        printf("context %d at %p:", c, (void *) ctx);
        struct llama_sampler * smpl = llama_sampler_chain_init(llama_sampler_chain_default_params());
        llama_sampler_chain_add(smpl, llama_sampler_init_greedy());
        struct llama_batch batch = llama_batch_get_one(toks, n_prompt);
        llama_token next;
        for (int i = 0; i < n_predict; i++) {
            if (llama_decode(ctx, batch) != 0) { fprintf(stderr, "decode failed\n"); return 1; }
            next = llama_sampler_sample(smpl, ctx, -1);
            printf(" %d", next);
            fflush(stdout);
            if (sleep_ms) nanosleep(&(struct timespec) { sleep_ms / 1000, (sleep_ms % 1000) * 1000000L }, NULL);
            batch = llama_batch_get_one(&next, 1);
        }
        printf("\n");
        llama_sampler_free(smpl);
        if (!(no_free && c == n_contexts - 1)) llama_free(ctx);
    }
    if (!no_free) llama_model_free(model);
    return 0;
}
