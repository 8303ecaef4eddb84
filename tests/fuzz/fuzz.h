// Shared by the libFuzzer harnesses: the input as a file, because lltrace's readers open paths.
#pragma once

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

// Writes data to <scratch>/input<suffix> (the same path every call of this process) and
// returns the path (static storage). The scratch folder is made once, under $TMPDIR or /tmp.
static const char * fuzz_file(const char * suffix, const uint8_t * data, size_t size) {
    static char dir[256], path[512];
    if (!dir[0]) {
        const char * tmp = getenv("TMPDIR");
        snprintf(dir, sizeof(dir), "%s/lltrace-fuzz-XXXXXX", tmp ? tmp : "/tmp");
        if (!mkdtemp(dir)) abort();
    }
    snprintf(path, sizeof(path), "%s/input%s", dir, suffix);
    FILE * f = fopen(path, "wb");
    if (!f) abort();
    if (size && fwrite(data, 1, size, f) != size) abort();
    if (fclose(f) != 0) abort();
    return path;
}
