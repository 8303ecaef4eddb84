// Small helpers shared by the library's files.
#include "core/internal.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static bool grow(void ** p, int32_t * cap, int32_t need, size_t elem, bool zero) {
    if (need <= *cap) return true;
    int32_t ncap = *cap ? *cap : 4; // small: a batch of one decode call holds a row or two of each kind
    while (ncap < need) ncap *= 2;
    void * np = realloc(*p, (size_t) ncap * elem);
    if (!np) return false;
    if (zero) memset((char *) np + (size_t) *cap * elem, 0, (size_t) (ncap - *cap) * elem);
    *p = np;
    *cap = ncap;
    return true;
}

bool llt_grow(void ** p, int32_t * cap, int32_t need, size_t elem) { return grow(p, cap, need, elem, true); }

bool llt_reserve(void ** p, int32_t * cap, int32_t need, size_t elem) { return grow(p, cap, need, elem, false); }

int llt_utf8_len(const unsigned char * s) {
    int n = s[0] < 0x80 ? 1 : s[0] < 0xC2 ? 0 : s[0] < 0xE0 ? 2 : s[0] < 0xF0 ? 3 : s[0] < 0xF5 ? 4 : 0;
    for (int k = 1; k < n; k++) {
        if ((s[k] & 0xC0) != 0x80) return 0;
    }
    if (n == 3 && ((s[0] == 0xE0 && s[1] < 0xA0) || (s[0] == 0xED && s[1] >= 0xA0))) return 0; // overlong, surrogates
    if (n == 4 && ((s[0] == 0xF0 && s[1] < 0x90) || (s[0] == 0xF4 && s[1] >= 0x90))) return 0; // overlong, > U+10FFFF
    return n;
}

// length of the valid sequence at s[0..n), 0 if none: llt_utf8_len on a bounded copy
static int utf8_len_n(const char * s, size_t n) {
    unsigned char buf[5] = {0};
    memcpy(buf, s, n < 4 ? n : 4);
    return llt_utf8_len(buf);
}

bool llt_utf8_valid(const char * s, size_t n) {
    for (size_t i = 0; i < n;) {
        const int len = utf8_len_n(s + i, n - i);
        if (len == 0 || (size_t) len > n - i) return false;
        i += (size_t) len;
    }
    return true;
}

size_t llt_utf8_copy(char * dst, size_t size, const char * src, size_t n) {
    size_t out = 0;
    for (size_t i = 0; i < n && size > 0;) {
        int len = utf8_len_n(src + i, n - i);
        // a NUL inside the bytes is valid UTF-8 but would end the text early
        if (len == 1 && src[i] == '\0') len = 0;
        const char * put = len ? src + i : "\xEF\xBF\xBD";
        const size_t put_len = len ? (size_t) len : 3;
        if (out + put_len + 1 > size) break;
        memcpy(dst + out, put, put_len);
        out += put_len;
        i += len ? (size_t) len : 1;
    }
    if (size > 0) dst[out] = '\0';
    return out;
}

uint32_t llt_str_hash(const char * s) {
    uint32_t h = 2166136261u; // FNV-1a
    for (; *s; s++) h = (h ^ (uint8_t) *s) * 16777619u;
    return h;
}

char * llt_read_text(const char * path, const char * what) {
    FILE * f = fopen(path, "rb");
    if (!f) {
        llt_set_error(LLT_EIO, "cannot read %s '%s': %s", what ? what : "file", path, strerror(errno));
        return NULL;
    }
    char * text = NULL;
    size_t len = 0, cap = 0;
    bool ok = true;
    for (;;) {
        if (len + 4096 + 1 > cap) {
            char * t = realloc(text, cap = cap ? cap * 2 : 8192);
            if (!t) { ok = false; break; }
            text = t;
        }
        const size_t n = fread(text + len, 1, 4096, f);
        len += n;
        if (n < 4096) break;
    }
    const bool read_error = ferror(f) != 0;
    fclose(f);
    if (!ok || read_error) {
        free(text);
        if (!ok) llt_set_error(LLT_ENOMEM, "out of memory reading %s '%s'", what ? what : "file", path);
        else llt_set_error(LLT_EIO, "cannot read %s '%s'", what ? what : "file", path);
        return NULL;
    }
    text[len] = '\0';
    return text;
}

char * llt_abs_path(const char * path) {
    if (path[0] == '/') return strdup(path);
    char cwd[4096];
    if (!getcwd(cwd, sizeof(cwd))) return NULL;
    const size_t n = strlen(cwd) + 1 + strlen(path) + 1;
    char * out = malloc(n);
    if (out) snprintf(out, n, "%s/%s", strcmp(cwd, "/") == 0 ? "" : cwd, path[0] == '.' && path[1] == '/' ? path + 2 : path);
    return out;
}

static int64_t key_at(const void * base, int32_t i, size_t elem, size_t key_offset) {
    int64_t k;
    memcpy(&k, (const char *) base + (size_t) i * elem + key_offset, sizeof(k));
    return k;
}

int32_t llt_find_i64(const void * base, int32_t n, size_t elem, size_t key_offset, int64_t key) {
    int32_t lo = 0, hi = n;
    while (lo < hi) {
        const int32_t mid = lo + (hi - lo) / 2;
        if (key_at(base, mid, elem, key_offset) < key) lo = mid + 1;
        else hi = mid;
    }
    return lo < n && key_at(base, lo, elem, key_offset) == key ? lo : -1;
}
