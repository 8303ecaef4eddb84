// Fuzzes the tensor-set readers: safetensors, .npy, a folder of .npy files and GGUF (lltrace's
// use of ggml's parser: tensor table, dump metadata). The first byte picks the reader (for a
// folder, the second byte where the input is cut into its two files, one with an escaped
// name); every tensor is then read as floats, which is what `lltrace diff` and `inspect` do.
#include "fuzz.h"
#include "lltrace.h"

static const char * const suffixes[] = { ".safetensors", ".npy", ".gguf" };

int LLVMFuzzerTestOneInput(const uint8_t * data, size_t size) {
    if (size < 1) return 0;
    const char * path;
    if (data[0] % 4 < 3) {
        path = fuzz_file(suffixes[data[0] % 4], data + 1, size - 1);
    } else {
        if (size < 2) return 0;
        const size_t n = size - 2, cut = n * data[1] / 256;
        static char dir[512];
        snprintf(dir, sizeof(dir), "%s", fuzz_dir("npy"));
        fuzz_named_file("npy/blk.0%2Fq#1.npy", data + 2, cut);
        fuzz_named_file("npy/x.npy", data + 2 + cut, n - cut);
        path = dir;
    }
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
