// Fuzzes the weight registry: a GGUF header through ggml's parser, then lltrace's reading of
// its tensor table and metadata.
#include "fuzz.h"
#include "lltrace.h"

int LLVMFuzzerTestOneInput(const uint8_t * data, size_t size) {
    struct llt_registry * reg = NULL;
    if (llt_registry_load(fuzz_file(".gguf", data, size), &reg) != LLT_OK) return 0;
    for (int i = 0; i < llt_registry_count(reg); i++) {
        const struct llt_weight * w = llt_registry_get(reg, i);
        llt_registry_find(reg, w->name);
    }
    char buf[64];
    llt_registry_meta(reg, "general.architecture", buf, sizeof(buf));
    llt_registry_meta(reg, "general.name", buf, 1);
    llt_registry_free(reg);
    return 0;
}
