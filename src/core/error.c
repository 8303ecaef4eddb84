// Errors: one retrievable line per thread, like libgit2's git_error_last().
#include "core/internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char last_error[512];

const char * llt_last_error(void) {
    return last_error[0] ? last_error : "no error";
}

int llt_set_error(int code, const char * fmt, ...) {
    // formatted aside first: callers wrap the last message in a new one (llt_last_error() as
    // an argument), and vsnprintf must not write over what it reads
    char msg[sizeof(last_error)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    memcpy(last_error, msg, sizeof(msg));
    return code;
}
