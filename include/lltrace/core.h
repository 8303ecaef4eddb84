// lltrace/core.h: errors, names, versions: what every module of lltrace shares. Part of lltrace.h.
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <signal.h>

#include "llama.h"

#ifdef __cplusplus
extern "C" {
#endif

#define LLT_VERSION "0.1.0"

enum llt_error {
    LLT_OK        =  0,
    LLT_EIO       = -1, // a file could not be read or written
    LLT_EFORMAT   = -2, // a file is not what it should be (bad magic, corrupt, truncated)
    LLT_EVERSION  = -3, // a file has a version this lltrace does not know
    LLT_EINVAL    = -4, // a bad argument
    LLT_ENOMEM    = -5,
    LLT_ENOTFOUND = -6, // a name, run or step that does not exist
    LLT_ELLAMA    = -7, // llama.cpp refused (model load, context, decode)
};

// the message of the last failure on this thread; valid until the next lltrace call
const char * llt_last_error(void);

// ---- names -------------------------------------------------------------------------------

// llama file type by name ("F32", "F16", "Q8_0", "Q4_K_M", case-insensitive); -1 if unknown
int          llt_ftype_from_name(const char * name);
const char * llt_ftype_name(int ftype); // "?" if unknown
// ggml type by name ("f16", "q8_0", "q4_K", case-insensitive); -1 if unknown
int          llt_type_from_name(const char * name);
// layer number from a tensor name: "Qcur-3", "cache_k_l3 (view)", "blk.3.attn_q.weight" -> 3; else -1
int          llt_layer_from_name(const char * name);


// ---- files -------------------------------------------------------------------------------

// 0 when path names a regular file (links followed); else LLT_EIO with a one-line message,
// "cannot open WHAT 'path': it is a directory" (what may be NULL). Every reader checks its
// path with it first: a FIFO would block the open, a directory reads as nonsense.
int llt_input_check(const char * path, const char * what);
// The whole file as a NUL-terminated string; NULL and LLT_EIO or LLT_ENOMEM, "cannot read WHAT
// 'path': ...", if it cannot be read. caller frees with free()
char * llt_read_text(const char * path, const char * what);
// 0 when the folder an output file goes into exists and is a folder; else LLT_EIO with a
// one-line message, "cannot write WHAT 'nodir/t.db': no folder 'nodir'". Checked before
// anything is written, so a bad path leaves nothing behind.
int llt_output_dir_check(const char * path, const char * what);

// An output file replaced only once complete (a temporary file next to it, renamed over it at
// commit). A FIFO or a character device is written directly and stays what it is; a
// directory, block device or socket is refused.
struct llt_outfile;
// caller ends it with llt_outfile_commit() or llt_outfile_abort()
int          llt_outfile_open(const char * path, struct llt_outfile ** out);
// the stream to write (borrowed: lives until commit or abort)
FILE *       llt_outfile_file(struct llt_outfile * of);
// the temporary file being written, NULL when writing directly (borrowed, as above): what a
// signal handler removes
const char * llt_outfile_temp(const struct llt_outfile * of);
// checks every write, closes and renames into place; on failure removes the temporary file
// and says why (ENOSPC, EFBIG). Frees of either way.
int          llt_outfile_commit(struct llt_outfile * of);
// closes and removes the temporary file; frees of. Accepts NULL.
void         llt_outfile_abort(struct llt_outfile * of);

// ---- versions ----------------------------------------------------------------------------

const char * llt_version(void);    // lltrace version
const char * llt_llama_tag(void);  // tag of the llama.cpp lltrace was built against

// Installs lltrace's llama.cpp log callback: llama.cpp's error lines are kept, so that a
// refused model or context says why in llt_last_error(); with verbose the whole log also goes
// to stderr (the only output the library ever makes, and only when asked).
void llt_log_init(bool verbose);

#ifdef __cplusplus
}
#endif
