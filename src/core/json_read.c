// A strict JSON reader for the small documents lltrace reads (a parity line, an intervention
// spec): a cursor over a NUL-terminated text, and the values one at a time. The first failure
// is kept with where it happened; every function returns false once there is one.
#include "core/internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool llt_json_fail(struct llt_json_in * in, const char * fmt, ...) {
    if (in->err[0]) return false; // the first failure is the one to report
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(in->err, sizeof(in->err), fmt, ap);
    va_end(ap);
    in->at = (size_t) (in->p - in->s);
    return false;
}

void llt_json_ws(struct llt_json_in * in) {
    while (*in->p == ' ' || *in->p == '\t' || *in->p == '\r' || *in->p == '\n') in->p++;
}

bool llt_json_take(struct llt_json_in * in, char ch) {
    llt_json_ws(in);
    if (*in->p != ch) return false;
    in->p++;
    return true;
}

bool llt_json_expect(struct llt_json_in * in, char ch) {
    return llt_json_take(in, ch) || llt_json_fail(in, "expected '%c'", ch);
}

bool llt_json_at_end(struct llt_json_in * in) {
    llt_json_ws(in);
    return *in->p == '\0' || llt_json_fail(in, "unexpected text after the value");
}

static bool is_digit(char c) { return c >= '0' && c <= '9'; }

bool llt_json_number(struct llt_json_in * in, double * out, bool * integer) {
    llt_json_ws(in);
    const char * start = in->p, * q = in->p;
    if (*q == '-') q++;
    if (*q == '0') q++;
    else if (is_digit(*q)) while (is_digit(*q)) q++;
    else return llt_json_fail(in, "expected a number");
    *integer = true;
    if (*q == '.') {
        *integer = false;
        if (!is_digit(*++q)) { in->p = q; return llt_json_fail(in, "expected a digit after '.'"); }
        while (is_digit(*q)) q++;
    }
    if (*q == 'e' || *q == 'E') {
        *integer = false;
        q++;
        if (*q == '+' || *q == '-') q++;
        if (!is_digit(*q)) { in->p = q; return llt_json_fail(in, "expected a digit in the exponent"); }
        while (is_digit(*q)) q++;
    }
    char tmp[64];
    const size_t n = (size_t) (q - start);
    if (n >= sizeof(tmp)) return llt_json_fail(in, "number too long");
    memcpy(tmp, start, n);
    tmp[n] = '\0';
    *out = strtod(tmp, NULL);
    if (!isfinite(*out)) return llt_json_fail(in, "number out of range");
    in->p = q;
    return true;
}

static int hex4(const char * p) {
    int v = 0;
    for (int i = 0; i < 4; i++) {
        const char c = p[i];
        const int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0) return -1;
        v = v * 16 + d;
    }
    return v;
}

// appends n bytes if all of them fit in buf (size bytes with the NUL); *len counts them anyway
static void put_bytes(char * buf, size_t size, size_t * len, const char * b, size_t n) {
    if (buf && *len + n < size) {
        memcpy(buf + *len, b, n);
        buf[*len + n] = '\0';
    }
    *len += n;
}

static void put_utf8(char * buf, size_t size, size_t * len, uint32_t cp) {
    char u[4];
    const size_t n = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
    if (n == 1) u[0] = (char) cp;
    else if (n == 2) { u[0] = (char) (0xC0 | cp >> 6); u[1] = (char) (0x80 | (cp & 0x3F)); }
    else if (n == 3) { u[0] = (char) (0xE0 | cp >> 12); u[1] = (char) (0x80 | (cp >> 6 & 0x3F)); u[2] = (char) (0x80 | (cp & 0x3F)); }
    else { u[0] = (char) (0xF0 | cp >> 18); u[1] = (char) (0x80 | (cp >> 12 & 0x3F)); u[2] = (char) (0x80 | (cp >> 6 & 0x3F)); u[3] = (char) (0x80 | (cp & 0x3F)); }
    put_bytes(buf, size, len, u, n);
}

bool llt_json_string(struct llt_json_in * in, char * buf, size_t size, size_t * full) {
    size_t len = 0;
    if (buf && size) buf[0] = '\0';
    if (!llt_json_expect(in, '"')) return false;
    for (;;) {
        const unsigned char c = (unsigned char) *in->p;
        if (c == '"') {
            in->p++;
            if (full) *full = len;
            return true;
        }
        if (c == '\0') return llt_json_fail(in, "unterminated string");
        if (c < 0x20) return llt_json_fail(in, "control character in a string");
        if (c == '\\') {
            const char e = *++in->p;
            const char * simple = e ? strchr("\"\\/bfnrt", e) : NULL;
            uint32_t cp;
            if (simple) {
                cp = (uint32_t) "\"\\/\b\f\n\r\t"[simple - "\"\\/bfnrt"];
                in->p++;
            } else if (e == 'u') {
                const int h = hex4(in->p + 1);
                if (h < 0) return llt_json_fail(in, "bad \\u escape");
                in->p += 5;
                cp = (uint32_t) h;
                if (h >= 0xD800 && h < 0xDC00 && in->p[0] == '\\' && in->p[1] == 'u') {
                    const int lo = hex4(in->p + 2);
                    if (lo >= 0xDC00 && lo < 0xE000) {
                        cp = 0x10000 + ((uint32_t) (h - 0xD800) << 10) + (uint32_t) (lo - 0xDC00);
                        in->p += 6;
                    }
                }
                if (cp >= 0xD800 && cp < 0xE000) cp = 0xFFFD; // a lone surrogate
            } else {
                return llt_json_fail(in, "bad escape '\\%c'", e ? e : '0');
            }
            put_utf8(buf, size, &len, cp);
            continue;
        }
        // raw bytes go through as they are; a multi-byte character is kept whole or not at all
        int n = llt_utf8_len((const unsigned char *) in->p);
        if (n == 0) n = 1;
        put_bytes(buf, size, &len, in->p, (size_t) n);
        in->p += n;
    }
}
