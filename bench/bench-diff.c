// bench-diff: throughput of lltrace's tensor diff on two large F32 tensor sets, next to the
// memcpy bandwidth of the same machine in the same run, as one Markdown line.
//   bench-diff [MiB per side (default 512)] [tensors per side (default 64)]
// GB/s counts the compared data, both sides (2 x MiB per side); memcpy counts the bytes copied.
// Each figure is the best of 3 runs; the end-to-end run reads safetensors files that are in the
// page cache (written just before), through llt_tensor_set_open() and llt_set_diff().
#include "lltrace.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define REPS 3

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec * 1e-9;
}

struct sets {
    const float * a, * b;
    int64_t per_tensor;
    bool    second; // the B side
};

static int get_tensor(int i, float * dst, void * user_data) {
    const struct sets * s = user_data;
    memcpy(dst, (s->second ? s->b : s->a) + (int64_t) i * s->per_tensor, (size_t) s->per_tensor * sizeof(float));
    return LLT_OK;
}

static int parse_arg(const char * s, long lo, long hi, long * out) {
    char * end = NULL;
    const long v = strtol(s, &end, 10);
    if (end == s || *end || v < lo || v > hi) return 0;
    *out = v;
    return 1;
}

int main(int argc, char ** argv) {
    long mib = 512, n_tensors = 64;
    if ((argc > 1 && !parse_arg(argv[1], 1, 1 << 16, &mib)) || (argc > 2 && !parse_arg(argv[2], 1, 1 << 20, &n_tensors))) {
        fprintf(stderr, "usage: bench-diff [MiB per side] [tensors per side]\n");
        return 2;
    }
    llt_log_init(false);
    const int64_t n = (int64_t) mib * 1024 * 1024 / 4 / n_tensors * n_tensors; // floats per side
    const double bytes = (double) n * sizeof(float);
    float * a = malloc((size_t) n * sizeof(float)), * b = malloc((size_t) n * sizeof(float));
    float * c = malloc((size_t) n * sizeof(float));
    char dir[] = "/tmp/lltrace-bench-diff-XXXXXX";
    char pa[64] = "", pb[64] = "";
    struct llt_tensor_desc * desc = calloc((size_t) n_tensors, sizeof(*desc));
    char (*names)[32] = calloc((size_t) n_tensors, sizeof(*names));
    struct llt_tensor_set * sa = NULL, * sb = NULL;
    int rc = 1;
    if (!a || !b || !c || !desc || !names || !mkdtemp(dir)) {
        fprintf(stderr, "bench-diff: out of memory or no temp dir\n");
        goto done;
    }
    for (int64_t i = 0; i < n; i++) {
        a[i] = (float) sin(0.001 * (double) (i % 100003));
        b[i] = a[i] * (1.0f + 1e-6f) + ((i % 1000) == 0 ? 1e-3f : 0.0f);
    }
    memset(c, 0, (size_t) n * sizeof(float));

    double t_copy = 1e30, t_kernel = 1e30, t_set = 1e30;
    for (int r = 0; r < REPS; r++) {
        double t0 = now_s();
        memcpy(c, a, (size_t) n * sizeof(float));
        t_copy = fmin(t_copy, now_s() - t0);
    }
    struct llt_diff d;
    for (int r = 0; r < REPS; r++) {
        double t0 = now_s();
        if (llt_diff_compute(a, b, n, LLT_DIFF_DEFAULT_ABS, LLT_DIFF_DEFAULT_REL, &d) != LLT_OK) {
            fprintf(stderr, "bench-diff: %s\n", llt_last_error());
            goto done;
        }
        t_kernel = fmin(t_kernel, now_s() - t0);
    }
    if (d.n_exceed == 0 || d.max_abs < 1e-3) { // the data was made to differ: a wrong kernel shows here
        fprintf(stderr, "bench-diff: unexpected result (exceed %lld, max abs %g)\n", (long long) d.n_exceed, d.max_abs);
        goto done;
    }

    // the same data as two safetensors files, compared through the tensor-set reader
    const int64_t per = n / n_tensors;
    for (long i = 0; i < n_tensors; i++) {
        snprintf(names[i], sizeof(names[i]), "blk.%ld.t", i);
        desc[i] = (struct llt_tensor_desc) { .name = names[i], .n_dims = 1, .ne = { per, 1, 1, 1 } };
    }
    struct sets sets = { a, b, per, false };
    snprintf(pa, sizeof(pa), "%s/a.safetensors", dir);
    snprintf(pb, sizeof(pb), "%s/b.safetensors", dir);
    if (llt_safetensors_write(pa, desc, (int) n_tensors, get_tensor, &sets) != LLT_OK) goto fail;
    sets.second = true;
    if (llt_safetensors_write(pb, desc, (int) n_tensors, get_tensor, &sets) != LLT_OK) goto fail;
    const struct llt_diff_params p = llt_diff_default_params();
    for (int r = 0; r <= REPS; r++) { // the first run brings the files into the page cache
        double t0 = now_s();
        struct llt_set_diff * sd = NULL;
        if (llt_tensor_set_open(pa, &sa) != LLT_OK || llt_tensor_set_open(pb, &sb) != LLT_OK ||
            llt_set_diff(sa, sb, &p, &sd) != LLT_OK) goto fail;
        const int compared = sd->n_compared;
        llt_set_diff_free(sd);
        llt_tensor_set_close(sa);
        llt_tensor_set_close(sb);
        sa = sb = NULL;
        if (r > 0) t_set = fmin(t_set, now_s() - t0);
        if (compared != n_tensors) {
            fprintf(stderr, "bench-diff: compared %d tensors, want %ld\n", compared, n_tensors);
            goto done;
        }
    }
    printf("- `lltrace diff` of two F32 tensor sets (2 x %ld MiB, %ld tensors each): %.2f GB/s end to end "
           "(safetensors files in the page cache), %.2f GB/s in the diff kernel alone; memcpy in the same run: "
           "%.2f GB/s copied (target: >= 1 GB/s of compared data)\n",
           mib, n_tensors, 2 * bytes / t_set / 1e9, 2 * bytes / t_kernel / 1e9, bytes / t_copy / 1e9);
    rc = 0;
    goto done;
fail:
    fprintf(stderr, "bench-diff: %s\n", llt_last_error());
done:
    llt_tensor_set_close(sa);
    llt_tensor_set_close(sb);
    if (pa[0]) unlink(pa);
    if (pb[0]) unlink(pb);
    rmdir(dir);
    free(a); free(b); free(c); free(desc); free(names);
    return rc;
}
