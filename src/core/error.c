// Errors: one retrievable line per thread, like libgit2's git_error_last().
#include "core/internal.h"

#include <stdarg.h>
#include <stdio.h>

static _Thread_local char last_error[512];

const char * llt_last_error(void) {
    return last_error[0] ? last_error : "no error";
}

int llt_set_error(int code, const char * fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof(last_error), fmt, ap);
    va_end(ap);
    return code;
}
