// Minimal test helpers: a failed check prints what it got and what it wanted, and the test
// exits non-zero at the end.
#pragma once

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int test_failures;

#define CHECK(cond, ...) do { \
    if (!(cond)) { \
        test_failures++; \
        fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
        fprintf(stderr, __VA_ARGS__); \
        fputc('\n', stderr); \
    } \
} while (0)

#define CHECK_INT(got, want) do { \
    long long g_ = (long long) (got), w_ = (long long) (want); \
    CHECK(g_ == w_, "got %lld, want %lld", g_, w_); \
} while (0)

#define CHECK_STR(got, want) do { \
    const char * g_ = (got), * w_ = (want); \
    CHECK(g_ && w_ && strcmp(g_, w_) == 0, "got '%s', want '%s'", g_ ? g_ : "(null)", w_ ? w_ : "(null)"); \
} while (0)

// aborts the test: a precondition for everything after it failed
#define REQUIRE(cond, ...) do { \
    if (!(cond)) { \
        fprintf(stderr, "FATAL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
        fprintf(stderr, __VA_ARGS__); \
        fputc('\n', stderr); \
        exit(1); \
    } \
} while (0)

// A scratch folder for a test's files: test_dir_make("test-x") makes /tmp/lltrace-test-x-XXXXXX,
// test_dir_remove() removes it with what is in it.
static char test_dir[256];

static void test_dir_make(const char * name) {
    snprintf(test_dir, sizeof(test_dir), "/tmp/lltrace-%s-XXXXXX", name);
    REQUIRE(mkdtemp(test_dir), "cannot make a temporary folder");
}

static void test_dir_remove(void) {
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", test_dir);
    if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", test_dir);
}

// a path in the scratch folder; from a ring of buffers, so that a few can be used at once
static char * path_in(const char * name) {
    static char buf[8][512];
    static int k;
    char * p = buf[k++ & 7];
    snprintf(p, sizeof(buf[0]), "%s/%s", test_dir, name);
    return p;
}

// whether two files hold the same bytes (false if either cannot be read)
static bool same_bytes(const char * a, const char * b) {
    FILE * fa = fopen(a, "rb"), * fb = fopen(b, "rb");
    bool same = fa && fb;
    while (same) {
        static char ba[65536], bb[65536];
        size_t na = fread(ba, 1, sizeof(ba), fa), nb = fread(bb, 1, sizeof(bb), fb);
        if (na != nb || memcmp(ba, bb, na) != 0) same = false;
        if (na == 0) break;
    }
    if (fa) fclose(fa);
    if (fb) fclose(fb);
    return same;
}

// removes a trace and the files SQLite keeps beside it
static void remove_trace(const char * path) {
    char side[600];
    unlink(path);
    snprintf(side, sizeof(side), "%s-wal", path);
    unlink(side);
    snprintf(side, sizeof(side), "%s-shm", path);
    unlink(side);
}

static int test_result(const char * name) {
    if (test_failures) {
        fprintf(stderr, "%s: %d check(s) failed\n", name, test_failures);
        return 1;
    }
    printf("%s: ok\n", name);
    return 0;
}
