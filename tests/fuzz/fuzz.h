// Shared by the libFuzzer harnesses: the input as a file, because lltrace's readers open paths.
#pragma once

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

// The scratch folder of this process, made once under $TMPDIR or /tmp.
static const char * fuzz_scratch(void) {
    static char dir[256];
    if (!dir[0]) {
        const char * tmp = getenv("TMPDIR");
        snprintf(dir, sizeof(dir), "%s/lltrace-fuzz-XXXXXX", tmp ? tmp : "/tmp");
        if (!mkdtemp(dir)) abort();
    }
    return dir;
}

// Writes data to <scratch>/<name> and returns that path (static storage, until the next call).
static const char * fuzz_named_file(const char * name, const uint8_t * data, size_t size) {
    static char path[512];
    snprintf(path, sizeof(path), "%s/%s", fuzz_scratch(), name);
    FILE * f = fopen(path, "wb");
    if (!f) abort();
    if (size && fwrite(data, 1, size, f) != size) abort();
    if (fclose(f) != 0) abort();
    return path;
}

// Writes data to <scratch>/input<suffix> (the same path every call of this process) and
// returns the path (static storage).
static const char * fuzz_file(const char * suffix, const uint8_t * data, size_t size) {
    char name[64];
    snprintf(name, sizeof(name), "input%s", suffix);
    return fuzz_named_file(name, data, size);
}

// A folder <scratch>/<name> (made once; the same path every call), for readers of folders.
static const char * fuzz_dir(const char * name) {
    static char path[512];
    snprintf(path, sizeof(path), "%s/%s", fuzz_scratch(), name);
    if (mkdir(path, 0700) != 0 && access(path, F_OK) != 0) abort();
    return path;
}
