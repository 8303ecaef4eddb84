// A streaming GGUF writer, private to the library: lltrace's dumps hold thousands of tensors
// with several keys each, and gguf_context's setters search every key and tensor already
// added, so building a dump through them costs the square of its size. This writer costs
// what it writes.
//
// The file it writes is GGUF version 3 (gguf.h), little-endian:
//   1. "GGUF", u32 version 3, i64 tensor count, i64 key count
//   2. the keys: the global ones of a gguf_context first, then those added one by one
//      (string key, i32 value type, value)
//   3. the tensor infos: name, u32 n_dims, i64 ne[n_dims], i32 ggml type, u64 data offset
//   4. zeros up to the alignment, then each tensor's data padded to the alignment
// Call order: begin, kv_* (exactly n_kv), tensor (exactly n_tensors), pad, then per tensor
// in the order of the infos its data (written by the caller to w->f) and pad, then end.
#pragma once

#include "gguf.h"

#include <stdint.h>
#include <stdio.h>

struct llt_gguf_writer {
    FILE *   f;
    size_t   alignment;
    uint64_t offset;       // next tensor's data offset, relative to the data section
    int64_t  n_kv_left, n_tensors_left;
};

// Writes the header and global's keys to f (global may be NULL). n_kv and n_tensors count
// what follows. 0 or an LLT_E* code.
int llt_gguf_writer_begin(struct llt_gguf_writer * w, FILE * f, const struct gguf_context * global,
                          int64_t n_kv, int64_t n_tensors);
void llt_gguf_writer_kv_str(struct llt_gguf_writer * w, const char * key, const char * value);
void llt_gguf_writer_kv_i64(struct llt_gguf_writer * w, const char * key, int64_t value);
// a tensor's info; its data of size bytes (ggml_row_size of its shape) comes later
void llt_gguf_writer_tensor(struct llt_gguf_writer * w, const char * name, int type, int n_dims,
                            const int64_t ne[4], uint64_t size);
// zeros up to the alignment: before the data section and after each tensor's data
void llt_gguf_writer_pad(struct llt_gguf_writer * w);
// 0 if every count was met and every write went through, else an LLT_E* code
int  llt_gguf_writer_end(struct llt_gguf_writer * w);
