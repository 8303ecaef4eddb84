// A node's values for `print` and `watch`: which node a name means, whether its memory still
// holds its output, and its values (or a slice of them) as floats.
//
// A node's output lives in memory the scheduler's allocator hands to later nodes once nothing
// reads it any more: a node computed before the paused one holds its values only while no
// node computed since wrote over that memory. Nothing is copied ahead of time (that would cost
// every run); a node no longer intact is refused, saying which node took its place.
#include "debug/debug.h"

#include <stdlib.h>
#include <string.h>

// ---- which node --------------------------------------------------------------------------

static ggml_backend_buffer_t buffer_of(const struct ggml_tensor * t) {
    return t->view_src ? t->view_src->buffer : t->buffer;
}

static bool overlaps(const struct ggml_tensor * a, const struct ggml_tensor * b) {
    const char * pa = a->data, * pb = b->data;
    return buffer_of(a) == buffer_of(b) && pa && pb && pa < pb + ggml_nbytes(b) && pb < pa + ggml_nbytes(a);
}

int llt_dbg_find_node(const struct llt_debug * d, const char * name, struct llt_node_view * out) {
    const struct llt_node_view * cur = &d->cur;
    if (!name || strcmp(name, cur->t->name) == 0) {
        *out = *cur;
        return LLT_OK;
    }
    struct llt_node_view v;
    int32_t i = cur->idx - 1;
    for (; i >= 0; i--) {
        if (llt_tracer_graph_node(cur->tracer, i, &v) && strcmp(v.t->name, name) == 0) break;
    }
    if (i < 0) {
        return llt_set_error(LLT_ENOTFOUND, "no node '%s' was computed before '%s' in step %lld (print reads the paused node "
                             "or one before it in its step)", name, cur->t->name, (long long) cur->step);
    }
    if (v.fused_next) {
        return llt_set_error(LLT_EINVAL, "'%s' (node %d) may never have been written: the CPU computes it together with "
                             "the MUL after it; break at it to see its values", name, i);
    }
    for (int32_t k = i + 1; k <= cur->idx; k++) {
        struct llt_node_view w;
        if (llt_tracer_graph_node(cur->tracer, k, &w) && !w.noop && overlaps(v.t, w.t)) {
            return llt_set_error(LLT_EINVAL, "'%s' (node %d) no longer holds its values: node %d '%s' was written over its "
                                 "memory since; break at it to see them", name, i, k, w.t->name);
        }
    }
    *out = v;
    return LLT_OK;
}

// ---- slices ------------------------------------------------------------------------------

// "[a:b, c, :]" into [lo, hi) per dimension, ggml order; dimensions not named are whole
static int parse_slice(const char * s, const int64_t * ne, int64_t * lo, int64_t * hi) {
    for (int d = 0; d < 4; d++) { lo[d] = 0; hi[d] = ne[d]; }
    if (!s || !*s) return LLT_OK;
    const char * p = s;
    if (*p++ != '[') return llt_set_error(LLT_EINVAL, "bad slice '%s': it is [i0, i1, ...] in ggml order, each N, A:B or :", s);
    for (int d = 0;; d++) {
        while (*p == ' ') p++;
        if (*p == ']' && d == 0) break;
        if (d == 4) return llt_set_error(LLT_EINVAL, "bad slice '%s': more than 4 dimensions", s);
        char * end;
        const bool has_a = *p != ':' && *p != ',' && *p != ']';
        long long a = has_a ? strtoll(p, &end, 10) : 0;
        if (has_a && end == p) return llt_set_error(LLT_EINVAL, "bad slice '%s': '%c' is not a number", s, *p);
        if (has_a) p = end;
        while (*p == ' ') p++;
        long long b = a + 1;
        if (*p == ':') {
            p++;
            while (*p == ' ') p++;
            const bool has_b = *p != ',' && *p != ']';
            b = has_b ? strtoll(p, &end, 10) : ne[d];
            if (has_b && end == p) return llt_set_error(LLT_EINVAL, "bad slice '%s': '%c' is not a number", s, *p);
            if (has_b) p = end;
        }
        if (a < 0) a += ne[d]; // from the end, as in Python
        if (b < 0) b += ne[d];
        if (a < 0 || b > ne[d] || a >= b) {
            return llt_set_error(LLT_EINVAL, "slice '%s': dimension %d is %lld..%lld, out of [0, %lld)", s, d, a, b - 1,
                                 (long long) ne[d]);
        }
        lo[d] = a;
        hi[d] = b;
        while (*p == ' ') p++;
        if (*p == ']') break;
        if (*p++ != ',') return llt_set_error(LLT_EINVAL, "bad slice '%s': dimensions are separated by ','", s);
    }
    while (*++p == ' ') {}
    if (*p) return llt_set_error(LLT_EINVAL, "bad slice '%s': text after ']'", s);
    return LLT_OK;
}

// ---- values ------------------------------------------------------------------------------

int llt_dbg_read(const struct ggml_tensor * t, const char * slice, struct dbg_values * out) {
    memset(out, 0, sizeof(*out));
    int64_t lo[4], hi[4];
    int rc = parse_slice(slice, t->ne, lo, hi);
    if (rc != LLT_OK) return rc;
    if (t->nb[0] != ggml_type_size(t->type) || !t->data) {
        return llt_set_error(LLT_EINVAL, "cannot read '%s': its rows are not contiguous", t->name);
    }
    int64_t n = 1;
    for (int d = 0; d < 4; d++) n *= out->ne[d] = hi[d] - lo[d];
    ggml_backend_buffer_t buf = buffer_of(t);
    const bool host = !buf || ggml_backend_buffer_is_host(buf);
    char * bytes = host ? NULL : malloc(ggml_nbytes(t));
    float * rowf = malloc((size_t) t->ne[0] * sizeof(float));
    out->v = malloc((size_t) (n > 0 ? n : 1) * sizeof(float));
    if ((!host && !bytes) || !rowf || !out->v) {
        rc = llt_set_error(LLT_ENOMEM, "out of memory");
        goto done;
    }
    if (!host) ggml_backend_tensor_get(t, bytes, 0, ggml_nbytes(t)); // on a device: one copy
    const char * base = host ? t->data : bytes;
    float * o = out->v;
    for (int64_t i3 = lo[3]; i3 < hi[3] && rc == LLT_OK; i3++) {
        for (int64_t i2 = lo[2]; i2 < hi[2] && rc == LLT_OK; i2++) {
            for (int64_t i1 = lo[1]; i1 < hi[1] && rc == LLT_OK; i1++) {
                const char * r = base + i1 * t->nb[1] + i2 * t->nb[2] + i3 * t->nb[3];
                rc = llt_to_float(r, t->type, t->ne[0], rowf);
                memcpy(o, rowf + lo[0], (size_t) (hi[0] - lo[0]) * sizeof(float));
                o += hi[0] - lo[0];
            }
        }
    }
done:
    free(bytes);
    free(rowf);
    if (rc != LLT_OK) {
        free(out->v);
        out->v = NULL;
    }
    return rc;
}
