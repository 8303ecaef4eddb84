// A program with its own llama_decode, as one with llama.cpp linked in statically has: exported
// (-rdynamic), so the dynamic linker sees it before the preload library's, and calls to it
// never reach lltrace. For lltrace exec's test of that case: it must be said at start, the
// program must run as it does alone, and exec must say nothing was traced (exit 1).
#include <stdint.h>
#include <stdio.h>

struct llama_context;
struct llama_batch;

__attribute__((visibility("default"), noinline)) int32_t llama_decode(struct llama_context * ctx, const struct llama_batch * batch);
int32_t llama_decode(struct llama_context * ctx, const struct llama_batch * batch) {
    (void) ctx;
    (void) batch;
    return 0;
}

int main(void) {
    printf("own llama_decode: %d\n", (int) llama_decode(NULL, NULL));
    return 0;
}
