// Minimal test helpers: a failed check prints what it got and what it wanted, and the test
// exits non-zero at the end.
#pragma once

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static int test_result(const char * name) {
    if (test_failures) {
        fprintf(stderr, "%s: %d check(s) failed\n", name, test_failures);
        return 1;
    }
    printf("%s: ok\n", name);
    return 0;
}
