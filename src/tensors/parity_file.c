// The parity JSON Lines format (docs/trace-format.md, "Parity files"): a step's record (its
// top-k logits, which capture keeps as a run goes), formatting a step, writing a file, and a
// strict reader. It sits with the other tensor-side file formats, below capture, the trace and
// the analysis, so that each of them can make, read or write it without calling up into the
// comparison (src/analysis/parity.c) or the driver (src/generate).
//
// The reader is a small strict JSON parser for exactly one shape of object; it needs no JSON
// library and names the line and column of the first thing it does not accept.
#include "core/internal.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// ---- a step's record --------------------------------------------------------------------

// inserts logit v of token id into the sorted top-k list
static void top_k_insert(struct llt_parity_step * out, int32_t k, llama_token id, float v) {
    int32_t j = out->k < k ? out->k++ : k - 1;
    while (j > 0 && out->logits[j - 1] < v) {
        out->logits[j] = out->logits[j - 1];
        out->ids[j] = out->ids[j - 1];
        j--;
    }
    out->logits[j] = v;
    out->ids[j] = id;
}

// One pass over blocks of 16: a block whose maximum does not beat the k-th best is skipped
// (the compiler vectorizes the maximum).
void llt_parity_top_k(const float * logits, int32_t n_vocab, int32_t k, struct llt_parity_step * out) {
    out->k = 0;
    int32_t id = 0;
    for (; id + 16 <= n_vocab; id += 16) {
        float m = logits[id];
        for (int j = 1; j < 16; j++) m = logits[id + j] > m ? logits[id + j] : m;
        if (out->k == k && !(m > out->logits[k - 1])) continue;
        for (int j = 0; j < 16; j++) {
            if (out->k < k || logits[id + j] > out->logits[k - 1]) top_k_insert(out, k, id + j, logits[id + j]);
        }
    }
    for (; id < n_vocab; id++) {
        if (out->k < k || logits[id] > out->logits[k - 1]) top_k_insert(out, k, id, logits[id]);
    }
}

// ---- writing -----------------------------------------------------------------------------

// appends to a buffer like snprintf: counts what does not fit
struct out {
    char * buf;
    size_t size, len;
};

static void out_bytes(struct out * o, const char * s, size_t n) {
    if (o->len < o->size) {
        size_t room = o->size - o->len - 1;
        memcpy(o->buf + o->len, s, n < room ? n : room);
        o->buf[o->len + (n < room ? n : room)] = '\0';
    }
    o->len += n;
}

static void out_fmt(struct out * o, const char * fmt, ...) __attribute__((format(printf, 2, 3)));
static void out_fmt(struct out * o, const char * fmt, ...) {
    char tmp[64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    out_bytes(o, tmp, n > 0 ? (size_t) n : 0);
}

static void out_json_string(struct out * o, const char * s) {
    const unsigned char * p = (const unsigned char *) s;
    out_bytes(o, "\"", 1);
    while (*p) {
        int n = llt_utf8_len(p);
        if (n == 0) {
            out_bytes(o, "\\ufffd", 6); // a token cut inside a character
            p++;
        } else if (*p == '"' || *p == '\\') {
            out_fmt(o, "\\%c", *p++);
        } else if (*p == '\n') {
            out_bytes(o, "\\n", 2);
            p++;
        } else if (*p < 0x20) {
            out_fmt(o, "\\u%04x", *p++);
        } else {
            out_bytes(o, (const char *) p, (size_t) n);
            p += n;
        }
    }
    out_bytes(o, "\"", 1);
}

static void out_top_k(struct out * o, const struct llt_parity_step * s) {
    out_bytes(o, "[", 1);
    for (int32_t i = 0; i < s->k; i++) {
        out_fmt(o, "%s[%d,%.9g]", i ? "," : "", s->ids[i], s->logits[i]);
    }
    out_bytes(o, "]", 1);
}

static int out_end(const struct out * o) {
    return o->len > INT32_MAX ? INT32_MAX : (int) o->len;
}

int llt_parity_format_top_k(const struct llt_parity_step * s, char * buf, size_t size) {
    struct out o = { buf, size, 0 };
    if (size) buf[0] = '\0';
    out_top_k(&o, s);
    return out_end(&o);
}

int llt_parity_format(const struct llt_parity_step * s, char * buf, size_t size) {
    struct out o = { buf, size, 0 };
    if (size) buf[0] = '\0';
    out_fmt(&o, "{\"step\":%d,\"token\":%d,\"top_k\":", s->step, s->token);
    out_top_k(&o, s);
    out_bytes(&o, ",\"piece\":", 9);
    out_json_string(&o, s->piece);
    out_fmt(&o, ",\"pos\":%d}", s->pos);
    return out_end(&o);
}

void llt_json_write_string(FILE * f, const char * s) {
    char stack[512];
    struct out o = { stack, sizeof(stack), 0 };
    out_json_string(&o, s);
    if (o.len < sizeof(stack)) {
        fputs(stack, f);
        return;
    }
    char * heap = malloc(o.len + 1);
    if (!heap) {
        fputs("\"\"", f); // out of memory: still valid JSON
        return;
    }
    o = (struct out) { heap, o.len + 1, 0 };
    out_json_string(&o, s);
    fputs(heap, f);
    free(heap);
}

int llt_parity_write(const char * path, const struct llt_parity_step * steps, int32_t n) {
    struct llt_outfile * of = NULL;
    int rc = llt_outfile_open(path, &of);
    if (rc != LLT_OK) return rc;
    FILE * f = llt_outfile_file(of);
    char line[LLT_PARITY_LINE_MAX];
    for (int32_t i = 0; i < n; i++) {
        llt_parity_format(&steps[i], line, sizeof(line));
        fputs(line, f);
        fputc('\n', f);
    }
    return llt_outfile_commit(of);
}

// ---- one parity object, read with core's strict JSON reader (llt_json_*) ----------------

static bool parse_int32(struct llt_json_in * ps, const char * what, int32_t * out) {
    double v;
    bool integer;
    const char * at = ps->p;
    if (!llt_json_number(ps, &v, &integer)) return false;
    if (!integer || v < INT32_MIN || v > INT32_MAX) {
        ps->p = at;
        llt_json_ws(ps);
        return llt_json_fail(ps, "%s must be a whole number", what);
    }
    *out = (int32_t) v;
    return true;
}

static bool skip_value(struct llt_json_in * ps, int depth);

static bool skip_items(struct llt_json_in * ps, char close, bool keys, int depth) {
    if (llt_json_take(ps, close)) return true;
    do {
        if (keys && !(llt_json_string(ps, NULL, 0, NULL) && llt_json_expect(ps, ':'))) return false;
        if (!skip_value(ps, depth + 1)) return false;
    } while (llt_json_take(ps, ','));
    return llt_json_expect(ps, close);
}

// any JSON value, for keys other engines add
static bool skip_value(struct llt_json_in * ps, int depth) {
    if (depth > 32) return llt_json_fail(ps, "nested too deep");
    llt_json_ws(ps);
    double d;
    bool integer;
    switch (*ps->p) {
        case '{': ps->p++; return skip_items(ps, '}', true, depth);
        case '[': ps->p++; return skip_items(ps, ']', false, depth);
        case '"': return llt_json_string(ps, NULL, 0, NULL);
        default: break;
    }
    static const char * words[] = { "true", "false", "null" };
    for (size_t i = 0; i < 3; i++) {
        size_t n = strlen(words[i]);
        if (strncmp(ps->p, words[i], n) == 0) { ps->p += n; return true; }
    }
    return llt_json_number(ps, &d, &integer);
}

// [[ID,LOGIT],...] into s: the LLT_PARITY_MAX_K largest logits, largest first
static bool parse_top_k(struct llt_json_in * ps, struct llt_parity_step * s) {
    s->k = 0;
    if (!llt_json_expect(ps, '[')) return false;
    if (llt_json_take(ps, ']')) return llt_json_fail(ps, "top_k is empty");
    do {
        int32_t id = 0;
        double logit;
        bool integer;
        if (!llt_json_expect(ps, '[') || !parse_int32(ps, "a token id", &id) || !llt_json_expect(ps, ',')) return false;
        if (!llt_json_number(ps, &logit, &integer) || !llt_json_expect(ps, ']')) return false;
        for (int32_t i = 0; i < s->k; i++) {
            if (s->ids[i] == id) return llt_json_fail(ps, "token %d is twice in top_k", id);
        }
        const float v = (float) logit;
        if (s->k == LLT_PARITY_MAX_K && !(v > s->logits[s->k - 1])) continue;
        top_k_insert(s, LLT_PARITY_MAX_K, id, v);
    } while (llt_json_take(ps, ','));
    return llt_json_expect(ps, ']');
}

static bool parse_object(struct llt_json_in * ps, struct llt_parity_step * s) {
    enum { HAVE_STEP = 1, HAVE_TOKEN = 2, HAVE_TOP_K = 4, HAVE_PIECE = 8, HAVE_POS = 16 };
    unsigned have = 0;
    memset(s, 0, sizeof(*s));
    s->pos = -1;
    if (!llt_json_expect(ps, '{')) return false;
    if (!llt_json_take(ps, '}')) {
        do {
            char key[32];
            llt_json_ws(ps);
            const char * at = ps->p;
            if (!llt_json_string(ps, key, sizeof(key), NULL) || !llt_json_expect(ps, ':')) return false;
            unsigned bit = strcmp(key, "step") == 0 ? HAVE_STEP : strcmp(key, "token") == 0 ? HAVE_TOKEN
                         : strcmp(key, "top_k") == 0 ? HAVE_TOP_K : strcmp(key, "piece") == 0 ? HAVE_PIECE
                         : strcmp(key, "pos") == 0 ? HAVE_POS : 0;
            if (bit & have) {
                ps->p = at;
                return llt_json_fail(ps, "key \"%s\" appears twice", key);
            }
            have |= bit;
            bool ok = bit == HAVE_STEP  ? parse_int32(ps, "step", &s->step)
                    : bit == HAVE_TOKEN ? parse_int32(ps, "token", &s->token)
                    : bit == HAVE_TOP_K ? parse_top_k(ps, s)
                    : bit == HAVE_PIECE ? llt_json_string(ps, s->piece, sizeof(s->piece), NULL)
                    : bit == HAVE_POS   ? parse_int32(ps, "pos", &s->pos)
                    : skip_value(ps, 1);
            if (!ok) return false;
        } while (llt_json_take(ps, ','));
        if (!llt_json_expect(ps, '}')) return false;
    }
    if (!llt_json_at_end(ps)) return false;
    const char * missing = !(have & HAVE_STEP) ? "step" : !(have & HAVE_TOKEN) ? "token"
                         : !(have & HAVE_TOP_K) ? "top_k" : NULL;
    if (missing) return llt_json_fail(ps, "no \"%s\"", missing);
    if (s->step < 0) return llt_json_fail(ps, "step %d is negative", s->step);
    return true;
}

// a failure of the reader, with its column
static int failure(const struct llt_json_in * ps) {
    return llt_set_error(LLT_EFORMAT, "column %d: %s", (int) ps->at + 1, ps->err);
}

int llt_parity_parse_top_k(const char * text, struct llt_parity_step * out) {
    struct llt_json_in ps = { .s = text, .p = text };
    if (!parse_top_k(&ps, out) || !llt_json_at_end(&ps)) return failure(&ps);
    return LLT_OK;
}

int llt_parity_parse(const char * line, struct llt_parity_step * out) {
    struct llt_json_in ps = { .s = line, .p = line };
    if (!parse_object(&ps, out)) return failure(&ps);
    return LLT_OK;
}

// ---- reading files ---------------------------------------------------------------------

static bool blank(const char * s) {
    return s[strspn(s, " \t\r\n")] == '\0';
}

int llt_parity_read(const char * path, struct llt_parity_step ** out, int32_t * n_out) {
    *out = NULL;
    *n_out = 0;
    struct llt_parity_step * steps = NULL;
    int32_t n = 0, cap = 0;
    char * line = NULL;
    size_t line_cap = 0;
    int rc = LLT_OK;
    if (llt_input_check(path, "parity file") != LLT_OK) return LLT_EIO;
    FILE * f = fopen(path, "r");
    if (!f) return llt_set_error(LLT_EIO, "cannot open parity file '%s': %s", path, strerror(errno));
    ssize_t len;
    for (int64_t lineno = 1; (len = getline(&line, &line_cap, f)) >= 0; lineno++) {
        if (strlen(line) != (size_t) len) {
            rc = llt_set_error(LLT_EFORMAT, "parity file '%s', line %lld: a NUL byte in the line", path, (long long) lineno);
            goto done;
        }
        if (blank(line)) continue;
        if (!llt_grow((void **) &steps, &cap, n + 1, sizeof(*steps))) {
            rc = llt_set_error(LLT_ENOMEM, "out of memory");
            goto done;
        }
        struct llt_parity_step * s = &steps[n];
        if (llt_parity_parse(line, s) != LLT_OK) {
            rc = llt_set_error(LLT_EFORMAT, "parity file '%s', line %lld, %s", path, (long long) lineno, llt_last_error());
            goto done;
        }
        if (n > 0 && s->step != steps[n - 1].step + 1) {
            rc = llt_set_error(LLT_EFORMAT, "parity file '%s', line %lld: step %d follows step %d (steps count up by one)",
                               path, (long long) lineno, s->step, steps[n - 1].step);
            goto done;
        }
        n++;
    }
    if (ferror(f)) {
        rc = llt_set_error(LLT_EIO, "cannot read parity file '%s': %s", path, strerror(errno));
    } else if (n == 0) {
        rc = llt_set_error(LLT_EFORMAT, "parity file '%s' has no steps", path);
    }
done:
    fclose(f);
    free(line);
    if (rc != LLT_OK) {
        free(steps);
        return rc;
    }
    *out = steps;
    *n_out = n;
    return LLT_OK;
}
