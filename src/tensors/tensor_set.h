// Tensor sets, private to src/tensors: the set every reader fills, and what the readers and
// writers of each format share. The formats are listed in tensor_set.c.
#pragma once

#include "core/internal.h"

#include <stdio.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "tensor files are little-endian; this reader assumes a little-endian host"
#endif

struct tf_file {
    char *   path;
    void *   map;  // the whole file, read only
    uint64_t size;
};

struct llt_tensor_set {
    enum llt_tensor_set_kind kind;
    struct llt_gguf *        gguf;    // GGUF sets: the header
    struct tf_file *         files;
    int                      n_files;
    struct llt_tensor_info * tensors;
    int32_t *                file_of; // tensor -> files[]
    int                      n;
    int                      cap;
    int32_t *                slots;   // name hash table: tensor index + 1, 0 empty
    uint32_t                 n_slots; // a power of two
};

// maps a whole file into set->files; an empty file maps to NULL
int llt_tf_map_file(struct llt_tensor_set * set, const char * path, struct tf_file ** out);
// appends a tensor (name copied) read from file index fi
int llt_tf_add_tensor(struct llt_tensor_set * set, const char * name, size_t name_len, int fi, struct llt_tensor_info ** out);
// shape given outermost first (numpy, torch) into ne; counts elements and bytes
int llt_tf_set_shape(struct llt_tensor_info * t, const uint64_t * shape, int n_dims, const char * path);
// layer from a llama.cpp, lltrace dump or Hugging Face name; -1 if none
int32_t llt_tf_layer_from_name(const char * name);

// n hex digits at p as a number, or -1
int llt_tf_hex_n(const char * p, int n);

// the readers of each format, called by llt_tensor_set_open()
int  llt_tf_open_safetensors(struct llt_tensor_set * set, const char * path);
int  llt_tf_open_npy_file(struct llt_tensor_set * set, const char * path, const char * file_name);
int  llt_tf_open_npy_dir(struct llt_tensor_set * set, const char * dir);
bool llt_tf_has_npy_suffix(const char * s);

// writers (through llt_outfile): a shape checked and its element count
int llt_tf_check_shape(const char * name, const int64_t ne[4], int n_dims, int64_t * n_elements);
