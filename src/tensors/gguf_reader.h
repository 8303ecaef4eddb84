// lltrace's GGUF header reader, private to src/tensors: see gguf_reader.c. The metadata
// getters are public (lltrace/tensors.h, llt_gguf_*); the tensor table is read here.
#pragma once

#include "core/internal.h"

struct llt_gguf_tensor {
    const char * name;     // in the file's map, name_len bytes, not NUL-terminated
    uint32_t     name_len; // < GGML_MAX_NAME
    int32_t      type;     // enum ggml_type
    int32_t      n_dims;   // 1..4 as written
    int64_t      ne[4];    // ne[0] innermost; 1 past n_dims
    uint64_t     offset;   // from the start of the data section, a multiple of the alignment
    uint64_t     bytes;
};

// Parses the header of a GGUF file mapped at data (size bytes); path names it in errors.
// Nothing past the header is touched. caller frees with llt_gguf_free()
int  llt_gguf_read(const void * data, uint64_t size, const char * path, struct llt_gguf ** out);
void llt_gguf_free(struct llt_gguf * g);

int64_t                        llt_gguf_n_tensors(const struct llt_gguf * g);
const struct llt_gguf_tensor * llt_gguf_tensor(const struct llt_gguf * g, int64_t i); // borrowed, lives with g
