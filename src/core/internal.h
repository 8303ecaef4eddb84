// Internal helpers shared by the library's files; not part of the public API.
#pragma once

#include "lltrace.h"

#include <stdint.h>
#include <time.h>

// records a one-line message for llt_last_error() and returns code
int llt_set_error(int code, const char * fmt, ...) __attribute__((format(printf, 2, 3)));

static inline int64_t llt_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

// current UTC time as ISO 8601 into buf (at least 32 bytes)
void llt_utc_now(char * buf, size_t size);

// the folder a path is in: "." for a bare name, "/" for one at the root
void llt_path_dir(const char * path, char * out, size_t size);

// grows *p (an array of *cap elements of elem bytes) to hold need, zeroing the new part;
// false when out of memory (*p is then unchanged)
bool llt_grow(void ** p, int32_t * cap, int32_t need, size_t elem);
// the same without zeroing, for an array written before it is read: a zeroed batch of node
// statistics cost level values a memset of ~40 KB per step
bool llt_reserve(void ** p, int32_t * cap, int32_t need, size_t elem);

// whether n bytes at s are valid UTF-8 (RFC 3629)
bool llt_utf8_valid(const char * s, size_t n);
// copies n bytes of src into dst (size bytes, size >= 3n+1 holds any input), each byte that
// does not start a valid UTF-8 sequence replaced by U+FFFD; NUL-terminates; returns the length
size_t llt_utf8_copy(char * dst, size_t size, const char * src, size_t n);

// path made absolute against the current folder (not resolved: the file may not exist yet);
// NULL when out of memory or the folder is unknown. caller frees with free()
char * llt_abs_path(const char * path);

// llama.cpp's last error log line since llt_llama_error_clear() (its function name cut), ""
// if none; set once llt_log_init() installed the log callback. Lives until the next clear.
const char * llt_llama_error(void);
void         llt_llama_error_clear(void);

// index of the element of an array sorted by an int64_t key (at key_offset in each elem-byte
// element) whose key is key; -1 if none
int32_t llt_find_i64(const void * base, int32_t n, size_t elem, size_t key_offset, int64_t key);

// a 32-bit hash of a string, for open-addressing tables
uint32_t llt_str_hash(const char * s);

// ---- shared between layers ---------------------------------------------------------------

struct gguf_context;
// copies a model's general.architecture, general.name and <arch>.* scalars into dst (models)
void llt_registry_copy_meta(const struct llt_registry * reg, struct gguf_context * dst);

// ---- reading JSON (json_read.c): a cursor over a NUL-terminated text -----------------------

struct llt_json_in {
    const char * s, * p; // the text, and where the reader is
    size_t       at;     // the byte offset of the first failure
    char         err[256]; // the first failure ("" none)
};
// records the failure (the first one only); returns false
bool llt_json_fail(struct llt_json_in * in, const char * fmt, ...) __attribute__((format(printf, 2, 3)));
void llt_json_ws(struct llt_json_in * in);                 // skips whitespace
bool llt_json_take(struct llt_json_in * in, char ch);      // ch next (after whitespace): taken
bool llt_json_expect(struct llt_json_in * in, char ch);    // the same, or a failure
bool llt_json_at_end(struct llt_json_in * in);             // nothing but whitespace left
// a number; *integer: it has no fraction and no exponent
bool llt_json_number(struct llt_json_in * in, double * out, bool * integer);
// a string into buf (may be NULL), cut at a character boundary where it does not fit; *full (may
// be NULL) its whole length in bytes
bool llt_json_string(struct llt_json_in * in, char * buf, size_t size, size_t * full);
