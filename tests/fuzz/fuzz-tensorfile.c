// Fuzzes the tensor-set readers: safetensors, .npy and GGUF (lltrace's use of ggml's parser:
// tensor table, dump metadata). The first byte picks the reader; every tensor is then read
// as floats, which is what `lltrace diff` and `inspect` do with a file.
#include "fuzz.h"
#include "lltrace.h"

static const char * const suffixes[] = { ".safetensors", ".npy", ".gguf" };

int LLVMFuzzerTestOneInput(const uint8_t * data, size_t size) {
    if (size < 1) return 0;
    const char * path = fuzz_file(suffixes[data[0] % 3], data + 1, size - 1);
    struct llt_tensor_set * set = NULL;
    if (llt_tensor_set_open(path, &set) != LLT_OK) return 0;
    for (int i = 0; i < llt_tensor_set_count(set); i++) {
        const struct llt_tensor_info * t = llt_tensor_set_get(set, i);
        int64_t dummy;
        llt_tensor_set_meta_int(set, "lltrace.tensor.x.order", &dummy);
        if (t->n_elements <= 0 || t->n_elements > (1 << 20)) continue;
        float * buf = malloc((size_t) t->n_elements * sizeof(float));
        if (buf) llt_tensor_set_read_f32(set, i, buf);
        free(buf);
    }
    llt_tensor_set_close(set);
    return 0;
}
