// Fuzzes the tensor-set readers: safetensors, .npy, a folder of .npy files and GGUF (lltrace's
// own header reader, src/tensors/gguf_reader.c: keys, tensor table, a dump's arrays). The first
// byte picks the reader (for a folder, the second byte where the input is cut into its two
// files, one with an escaped name); every key is then read through each getter and every
// tensor as floats, which is what `lltrace inspect` and `diff` do.
#include "fuzz.h"
#include "lltrace.h"

static const char * const suffixes[] = { ".safetensors", ".npy", ".gguf" };

// every key through every getter, as inspect prints them: a pointer handed out must be readable
static void read_metadata(const struct llt_gguf * g) {
    if (!g) return;
    volatile size_t sink = llt_gguf_alignment(g) + llt_gguf_data_offset(g) + llt_gguf_version(g);
    for (int64_t k = 0; k < llt_gguf_n_kv(g); k++) {
        sink += strlen(llt_gguf_key(g, k));
        sink += (size_t) llt_gguf_find_key(g, llt_gguf_key(g, k));
        const int t = llt_gguf_kv_type(g, k);
        if (t == LLT_GGUF_STRING) sink += strlen(llt_gguf_val_str(g, k));
        const void * v = llt_gguf_val_data(g, k);
        if (v) sink += ((const unsigned char *) v)[llt_gguf_type_size(t) - 1];
        const size_t n = llt_gguf_arr_n(g, k);
        const int at = llt_gguf_arr_type(g, k);
        for (size_t i = 0; i < n; i++) {
            if (at == LLT_GGUF_STRING) sink += strlen(llt_gguf_arr_str(g, k, i));
            else sink += ((const unsigned char *) llt_gguf_arr_data(g, k))[(i + 1) * llt_gguf_type_size(at) - 1];
        }
    }
    (void) sink;
}

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
    read_metadata(llt_tensor_set_gguf(set));
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
