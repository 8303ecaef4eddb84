// Small helpers shared by the library's files.
#include "internal.h"

#include <stdlib.h>
#include <string.h>

bool llt_grow(void ** p, int32_t * cap, int32_t need, size_t elem) {
    if (need <= *cap) return true;
    int32_t ncap = *cap ? *cap : 64;
    while (ncap < need) ncap *= 2;
    void * np = realloc(*p, (size_t) ncap * elem);
    if (!np) return false;
    memset((char *) np + (size_t) *cap * elem, 0, (size_t) (ncap - *cap) * elem);
    *p = np;
    *cap = ncap;
    return true;
}
