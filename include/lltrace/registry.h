// lltrace/registry.h: the weight registry: model weights <-> GGUF file offsets. Part of lltrace.h.
#pragma once

#include "lltrace/core.h"

#ifdef __cplusplus
extern "C" {
#endif

struct llt_weight {
    char     name[GGML_MAX_NAME];
    int32_t  type;        // enum ggml_type
    int32_t  n_dims;
    int64_t  ne[4];       // elements per dim, ne[0] innermost
    uint64_t bytes;       // size of the data
    double   bpw;         // bits per weight
    int32_t  layer;       // from blk.N., else -1
    uint64_t file_offset; // absolute offset of the data in its file (a split model: in its split)
};

struct llt_registry;

// Reads the tensor table of a GGUF file and checks the file holds all tensor data.
// caller frees with llt_registry_free()
int  llt_registry_load(const char * path, struct llt_registry ** out);
void llt_registry_free(struct llt_registry * reg);

int                       llt_registry_count(const struct llt_registry * reg);
const struct llt_weight * llt_registry_get  (const struct llt_registry * reg, int id); // borrowed, lives with reg
int                       llt_registry_find (const struct llt_registry * reg, const char * name); // id or -1
uint64_t                  llt_registry_file_size(const struct llt_registry * reg); // bytes of the model's files, all its splits
// metadata value of key (general.*, llama.* ...) as text into buf of size bytes (cut to fit,
// always terminated; arrays read "[array of N]"); 0, or LLT_ENOTFOUND if the file lacks the key
int                       llt_registry_meta(const struct llt_registry * reg, const char * key, char * buf, size_t size);

#ifdef __cplusplus
}
#endif
