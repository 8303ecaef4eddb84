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

// ---- a strict JSON reader for one parity object ------------------------------------------

struct parser {
    const char * s, * p;
    char         err[160];
};

static bool fail(struct parser * ps, const char * fmt, ...) __attribute__((format(printf, 2, 3)));
static bool fail(struct parser * ps, const char * fmt, ...) {
    if (ps->err[0]) return false; // the first failure is the one to report
    char msg[128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(ps->err, sizeof(ps->err), "column %d: %s", (int) (ps->p - ps->s) + 1, msg);
    return false;
}

static void skip_ws(struct parser * ps) {
    while (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\r' || *ps->p == '\n') ps->p++;
}

// skips whitespace, then takes ch if it is next
static bool take(struct parser * ps, char ch) {
    skip_ws(ps);
    if (*ps->p != ch) return false;
    ps->p++;
    return true;
}

static bool expect(struct parser * ps, char ch) {
    return take(ps, ch) || fail(ps, "expected '%c'", ch);
}

static bool at_end(struct parser * ps) {
    skip_ws(ps);
    return *ps->p == '\0' || fail(ps, "unexpected text after the value");
}

static bool is_digit(char c) { return c >= '0' && c <= '9'; }

// a JSON number; *integer: it has no fraction and no exponent
static bool parse_number(struct parser * ps, double * out, bool * integer) {
    skip_ws(ps);
    const char * start = ps->p, * q = ps->p;
    if (*q == '-') q++;
    if (*q == '0') q++;
    else if (is_digit(*q)) while (is_digit(*q)) q++;
    else return fail(ps, "expected a number");
    *integer = true;
    if (*q == '.') {
        *integer = false;
        if (!is_digit(*++q)) { ps->p = q; return fail(ps, "expected a digit after '.'"); }
        while (is_digit(*q)) q++;
    }
    if (*q == 'e' || *q == 'E') {
        *integer = false;
        q++;
        if (*q == '+' || *q == '-') q++;
        if (!is_digit(*q)) { ps->p = q; return fail(ps, "expected a digit in the exponent"); }
        while (is_digit(*q)) q++;
    }
    char tmp[64];
    size_t n = (size_t) (q - start);
    if (n >= sizeof(tmp)) return fail(ps, "number too long");
    memcpy(tmp, start, n);
    tmp[n] = '\0';
    *out = strtod(tmp, NULL);
    if (!isfinite(*out)) return fail(ps, "number out of range");
    ps->p = q;
    return true;
}

static bool parse_int32(struct parser * ps, const char * what, int32_t * out) {
    double v;
    bool integer;
    const char * at = ps->p;
    if (!parse_number(ps, &v, &integer)) return false;
    if (!integer || v < INT32_MIN || v > INT32_MAX) {
        ps->p = at;
        skip_ws(ps);
        return fail(ps, "%s must be a whole number", what);
    }
    *out = (int32_t) v;
    return true;
}

static int hex4(const char * p) {
    int v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0) return -1;
        v = v * 16 + d;
    }
    return v;
}

// appends code point cp as UTF-8 if all of it fits in buf (size bytes with the NUL)
static void put_utf8(char * buf, size_t size, size_t * len, uint32_t cp) {
    char u[4];
    size_t n = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
    if (n == 1) u[0] = (char) cp;
    else if (n == 2) { u[0] = (char) (0xC0 | cp >> 6); u[1] = (char) (0x80 | (cp & 0x3F)); }
    else if (n == 3) { u[0] = (char) (0xE0 | cp >> 12); u[1] = (char) (0x80 | (cp >> 6 & 0x3F)); u[2] = (char) (0x80 | (cp & 0x3F)); }
    else { u[0] = (char) (0xF0 | cp >> 18); u[1] = (char) (0x80 | (cp >> 12 & 0x3F)); u[2] = (char) (0x80 | (cp >> 6 & 0x3F)); u[3] = (char) (0x80 | (cp & 0x3F)); }
    if (*len + n >= size) return;
    memcpy(buf + *len, u, n);
    *len += n;
    buf[*len] = '\0';
}

// a JSON string into buf; what does not fit is cut at a character boundary (buf may be NULL)
static bool parse_string(struct parser * ps, char * buf, size_t size) {
    size_t len = 0;
    if (buf && size) buf[0] = '\0';
    if (!expect(ps, '"')) return false;
    for (;;) {
        unsigned char c = (unsigned char) *ps->p;
        if (c == '"') { ps->p++; return true; }
        if (c == '\0') return fail(ps, "unterminated string");
        if (c < 0x20) return fail(ps, "control character in a string");
        uint32_t cp = c;
        if (c == '\\') {
            char e = *++ps->p;
            const char * simple = strchr("\"\\/bfnrt", e);
            if (e != '\0' && simple) {
                cp = (uint32_t) "\"\\/\b\f\n\r\t"[simple - "\"\\/bfnrt"];
                ps->p++;
            } else if (e == 'u') {
                int h = hex4(ps->p + 1);
                if (h < 0) return fail(ps, "bad \\u escape");
                ps->p += 5;
                cp = (uint32_t) h;
                if (h >= 0xD800 && h < 0xDC00 && ps->p[0] == '\\' && ps->p[1] == 'u') {
                    int lo = hex4(ps->p + 2);
                    if (lo >= 0xDC00 && lo < 0xE000) {
                        cp = 0x10000 + ((uint32_t) (h - 0xD800) << 10) + (uint32_t) (lo - 0xDC00);
                        ps->p += 6;
                    }
                }
                if (cp >= 0xD800 && cp < 0xE000) cp = 0xFFFD; // a lone surrogate
            } else {
                return fail(ps, "bad escape '\\%c'", e ? e : '0');
            }
            if (buf) put_utf8(buf, size, &len, cp);
            continue;
        }
        // raw bytes go through as they are; a multi-byte character is kept whole or not at all
        const unsigned char * p = (const unsigned char *) ps->p;
        int n = llt_utf8_len(p);
        if (n == 0) n = 1;
        if (buf && len + (size_t) n < size) {
            memcpy(buf + len, p, (size_t) n);
            len += (size_t) n;
            buf[len] = '\0';
        }
        ps->p += n;
    }
}

static bool skip_value(struct parser * ps, int depth);

static bool skip_items(struct parser * ps, char close, bool keys, int depth) {
    if (take(ps, close)) return true;
    do {
        if (keys && !(parse_string(ps, NULL, 0) && expect(ps, ':'))) return false;
        if (!skip_value(ps, depth + 1)) return false;
    } while (take(ps, ','));
    return expect(ps, close);
}

// any JSON value, for keys other engines add
static bool skip_value(struct parser * ps, int depth) {
    if (depth > 32) return fail(ps, "nested too deep");
    skip_ws(ps);
    double d;
    bool integer;
    switch (*ps->p) {
        case '{': ps->p++; return skip_items(ps, '}', true, depth);
        case '[': ps->p++; return skip_items(ps, ']', false, depth);
        case '"': return parse_string(ps, NULL, 0);
        default: break;
    }
    static const char * words[] = { "true", "false", "null" };
    for (size_t i = 0; i < 3; i++) {
        size_t n = strlen(words[i]);
        if (strncmp(ps->p, words[i], n) == 0) { ps->p += n; return true; }
    }
    return parse_number(ps, &d, &integer);
}

// [[ID,LOGIT],...] into s: the LLT_PARITY_MAX_K largest logits, largest first
static bool parse_top_k(struct parser * ps, struct llt_parity_step * s) {
    s->k = 0;
    if (!expect(ps, '[')) return false;
    if (take(ps, ']')) return fail(ps, "top_k is empty");
    do {
        int32_t id;
        double logit;
        bool integer;
        if (!expect(ps, '[') || !parse_int32(ps, "a token id", &id) || !expect(ps, ',')) return false;
        if (!parse_number(ps, &logit, &integer) || !expect(ps, ']')) return false;
        for (int32_t i = 0; i < s->k; i++) {
            if (s->ids[i] == id) return fail(ps, "token %d is twice in top_k", id);
        }
        const float v = (float) logit;
        if (s->k == LLT_PARITY_MAX_K && !(v > s->logits[s->k - 1])) continue;
        top_k_insert(s, LLT_PARITY_MAX_K, id, v);
    } while (take(ps, ','));
    return expect(ps, ']');
}

static bool parse_object(struct parser * ps, struct llt_parity_step * s) {
    enum { HAVE_STEP = 1, HAVE_TOKEN = 2, HAVE_TOP_K = 4, HAVE_PIECE = 8, HAVE_POS = 16 };
    unsigned have = 0;
    memset(s, 0, sizeof(*s));
    s->pos = -1;
    if (!expect(ps, '{')) return false;
    if (!take(ps, '}')) {
        do {
            char key[32];
            skip_ws(ps);
            const char * at = ps->p;
            if (!parse_string(ps, key, sizeof(key)) || !expect(ps, ':')) return false;
            unsigned bit = strcmp(key, "step") == 0 ? HAVE_STEP : strcmp(key, "token") == 0 ? HAVE_TOKEN
                         : strcmp(key, "top_k") == 0 ? HAVE_TOP_K : strcmp(key, "piece") == 0 ? HAVE_PIECE
                         : strcmp(key, "pos") == 0 ? HAVE_POS : 0;
            if (bit & have) {
                ps->p = at;
                return fail(ps, "key \"%s\" appears twice", key);
            }
            have |= bit;
            bool ok = bit == HAVE_STEP  ? parse_int32(ps, "step", &s->step)
                    : bit == HAVE_TOKEN ? parse_int32(ps, "token", &s->token)
                    : bit == HAVE_TOP_K ? parse_top_k(ps, s)
                    : bit == HAVE_PIECE ? parse_string(ps, s->piece, sizeof(s->piece))
                    : bit == HAVE_POS   ? parse_int32(ps, "pos", &s->pos)
                    : skip_value(ps, 1);
            if (!ok) return false;
        } while (take(ps, ','));
        if (!expect(ps, '}')) return false;
    }
    if (!at_end(ps)) return false;
    const char * missing = !(have & HAVE_STEP) ? "step" : !(have & HAVE_TOKEN) ? "token"
                         : !(have & HAVE_TOP_K) ? "top_k" : NULL;
    if (missing) return fail(ps, "no \"%s\"", missing);
    if (s->step < 0) return fail(ps, "step %d is negative", s->step);
    return true;
}

int llt_parity_parse_top_k(const char * text, struct llt_parity_step * out) {
    struct parser ps = { text, text, "" };
    if (!parse_top_k(&ps, out) || !at_end(&ps)) return llt_set_error(LLT_EFORMAT, "%s", ps.err);
    return LLT_OK;
}

int llt_parity_parse(const char * line, struct llt_parity_step * out) {
    struct parser ps = { line, line, "" };
    if (!parse_object(&ps, out)) return llt_set_error(LLT_EFORMAT, "%s", ps.err);
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
