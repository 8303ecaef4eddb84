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

static int test_result(const char * name) {
    if (test_failures) {
        fprintf(stderr, "%s: %d check(s) failed\n", name, test_failures);
        return 1;
    }
    printf("%s: ok\n", name);
    return 0;
}
