// safetensors: a strict reader of the JSON header and a writer of F32 tensors. The layout:
//   1. u64 little-endian N  2. N bytes of JSON: {"name": {"dtype": "F32", "shape": [outermost,
//   ..., innermost], "data_offsets": [begin, end]}, ..., "__metadata__": {"k": "v"}}  3. the
//   data; offsets are relative to it.
#include "tensors/tensor_set.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// ---- safetensors: a strict JSON reader for the header ------------------------------------

struct json {
    const char * s;   // the header
    size_t       n;
    size_t       i;   // position
    const char * err; // first error
    size_t       err_at;
};

static bool json_fail(struct json * j, const char * what) {
    if (!j->err) { j->err = what; j->err_at = j->i; }
    return false;
}

static void json_ws(struct json * j) {
    while (j->i < j->n && (j->s[j->i] == ' ' || j->s[j->i] == '\t' || j->s[j->i] == '\n' || j->s[j->i] == '\r')) j->i++;
}

static bool json_char(struct json * j, char c) {
    json_ws(j);
    if (j->i < j->n && j->s[j->i] == c) { j->i++; return true; }
    return false;
}

// a JSON string as UTF-8 into out (at most cap-1 bytes, *len its length); out NULL: checked only
static bool json_string(struct json * j, char * out, size_t cap, size_t * len) {
    json_ws(j);
    if (j->i >= j->n || j->s[j->i] != '"') return json_fail(j, "expected a string");
    j->i++;
    size_t o = 0;
    for (;;) {
        if (j->i >= j->n) return json_fail(j, "unterminated string");
        const unsigned char c = (unsigned char) j->s[j->i++];
        unsigned char enc[4];
        int ne = 0;
        if (c == '"') break;
        if (c < 0x20) return json_fail(j, "control character in a string");
        if (c != '\\') {
            enc[ne++] = c; // UTF-8 bytes are copied as they are
        } else {
            if (j->i >= j->n) return json_fail(j, "unterminated string");
            uint32_t cp;
            switch (j->s[j->i++]) {
                case '"': cp = '"'; break;   case '\\': cp = '\\'; break; case '/': cp = '/'; break;
                case 'b': cp = '\b'; break;  case 'f': cp = '\f'; break;  case 'n': cp = '\n'; break;
                case 'r': cp = '\r'; break;  case 't': cp = '\t'; break;
                case 'u': {
                    const int h = j->i + 4 <= j->n ? llt_tf_hex_n(j->s + j->i, 4) : -1;
                    if (h < 0) return json_fail(j, "bad \\u escape");
                    j->i += 4;
                    cp = (uint32_t) h;
                    if (cp >= 0xDC00 && cp <= 0xDFFF) return json_fail(j, "unpaired surrogate in \\u escape");
                    if (cp >= 0xD800 && cp <= 0xDBFF) {
                        const int lo = j->i + 6 <= j->n && j->s[j->i] == '\\' && j->s[j->i + 1] == 'u'
                                     ? llt_tf_hex_n(j->s + j->i + 2, 4) : -1;
                        if (lo < 0xDC00 || lo > 0xDFFF) return json_fail(j, "unpaired surrogate in \\u escape");
                        j->i += 6;
                        cp = 0x10000 + ((cp - 0xD800) << 10) + ((uint32_t) lo - 0xDC00);
                    }
                    break;
                }
                default: return json_fail(j, "bad escape in a string");
            }
            if (cp < 0x80) {
                enc[ne++] = (unsigned char) cp;
            } else if (cp < 0x800) {
                enc[ne++] = (unsigned char) (0xC0 | (cp >> 6));
                enc[ne++] = (unsigned char) (0x80 | (cp & 0x3F));
            } else if (cp < 0x10000) {
                enc[ne++] = (unsigned char) (0xE0 | (cp >> 12));
                enc[ne++] = (unsigned char) (0x80 | ((cp >> 6) & 0x3F));
                enc[ne++] = (unsigned char) (0x80 | (cp & 0x3F));
            } else {
                enc[ne++] = (unsigned char) (0xF0 | (cp >> 18));
                enc[ne++] = (unsigned char) (0x80 | ((cp >> 12) & 0x3F));
                enc[ne++] = (unsigned char) (0x80 | ((cp >> 6) & 0x3F));
                enc[ne++] = (unsigned char) (0x80 | (cp & 0x3F));
            }
        }
        if (!out) continue;
        if (o + (size_t) ne >= cap) return json_fail(j, "string too long");
        memcpy(out + o, enc, (size_t) ne);
        o += (size_t) ne;
    }
    if (out) {
        out[o] = '\0';
        *len = o;
    }
    return true;
}

// a non-negative integer (no sign, fraction or exponent)
static bool json_uint(struct json * j, uint64_t * out) {
    json_ws(j);
    const size_t start = j->i;
    uint64_t v = 0;
    while (j->i < j->n && isdigit((unsigned char) j->s[j->i])) {
        const uint64_t d = (uint64_t) (j->s[j->i] - '0');
        if (v > (UINT64_MAX - d) / 10) return json_fail(j, "integer too large");
        v = v * 10 + d;
        j->i++;
    }
    if (j->i == start) return json_fail(j, "expected a non-negative integer");
    if (j->s[start] == '0' && j->i - start > 1) return json_fail(j, "leading zero in a number");
    if (j->i < j->n && (j->s[j->i] == '.' || j->s[j->i] == 'e' || j->s[j->i] == 'E')) {
        return json_fail(j, "expected an integer");
    }
    *out = v;
    return true;
}

// [u, u, ...] with at most cap values
static bool json_uint_array(struct json * j, uint64_t * out, int cap, int * n) {
    if (!json_char(j, '[')) return json_fail(j, "expected '['");
    *n = 0;
    if (json_char(j, ']')) return true;
    do {
        if (*n == cap) return json_fail(j, "array too long");
        if (!json_uint(j, &out[(*n)++])) return false;
    } while (json_char(j, ','));
    return json_char(j, ']') || json_fail(j, "expected ',' or ']'");
}

static const struct { const char * name; int type; } st_dtypes[] = {
    { "F64", GGML_TYPE_F64 }, { "F32", GGML_TYPE_F32 }, { "F16", GGML_TYPE_F16 }, { "BF16", GGML_TYPE_BF16 },
    { "I64", GGML_TYPE_I64 }, { "I32", GGML_TYPE_I32 }, { "I16", GGML_TYPE_I16 }, { "I8", GGML_TYPE_I8 },
    { "U64", LLT_TYPE_U64 },  { "U32", LLT_TYPE_U32 },  { "U16", LLT_TYPE_U16 },  { "U8", LLT_TYPE_U8 },
    { "BOOL", LLT_TYPE_BOOL },
};
// known to safetensors, not read here
static const char * st_unsupported[] = { "F8_E4M3", "F8_E5M2", "F8_E8M0", "F6_E2M3", "F6_E3M2", "F4", "C64" };

// one tensor entry: {"dtype": ..., "shape": [...], "data_offsets": [b, e]}
static int st_entry(struct llt_tensor_set * set, struct json * j, const char * name, size_t name_len,
                    uint64_t data_base, uint64_t data_size, const char * path) {
    char key[32], dtype[32] = "";
    size_t len = 0;
    uint64_t shape[8], offs[2];
    int n_dims = -1, n_offs = -1;
    if (!json_char(j, '{')) return json_fail(j, "expected '{' for a tensor"), LLT_EFORMAT;
    if (!json_char(j, '}')) {
        do {
            if (!json_string(j, key, sizeof(key), &len) || !json_char(j, ':')) {
                return json_fail(j, "expected a key"), LLT_EFORMAT;
            }
            bool ok;
            if (strcmp(key, "dtype") == 0 && !dtype[0]) {
                ok = json_string(j, dtype, sizeof(dtype), &len);
            } else if (strcmp(key, "shape") == 0 && n_dims < 0) {
                ok = json_uint_array(j, shape, 8, &n_dims);
            } else if (strcmp(key, "data_offsets") == 0 && n_offs < 0) {
                ok = json_uint_array(j, offs, 2, &n_offs);
            } else {
                return json_fail(j, "unknown or repeated key in a tensor entry"), LLT_EFORMAT;
            }
            if (!ok) return LLT_EFORMAT;
        } while (json_char(j, ','));
        if (!json_char(j, '}')) return json_fail(j, "expected ',' or '}'"), LLT_EFORMAT;
    }
    if (!dtype[0] || n_dims < 0 || n_offs != 2) {
        return llt_set_error(LLT_EFORMAT, "cannot open '%s': bad safetensors header: tensor '%s' needs "
            "dtype, shape and data_offsets [begin, end]", path, name);
    }
    int type = -1;
    for (size_t k = 0; k < sizeof(st_dtypes)/sizeof(st_dtypes[0]); k++) {
        if (strcmp(dtype, st_dtypes[k].name) == 0) type = st_dtypes[k].type;
    }
    if (type < 0) {
        bool known = false;
        for (size_t k = 0; k < sizeof(st_unsupported)/sizeof(st_unsupported[0]); k++) {
            known |= strcmp(dtype, st_unsupported[k]) == 0;
        }
        return llt_set_error(LLT_EFORMAT, "cannot open '%s': tensor '%s' has %s dtype '%s' "
            "(lltrace reads F64 F32 F16 BF16 I64 I32 I16 I8 U64 U32 U16 U8 BOOL)",
            path, name, known ? "unsupported" : "unknown", dtype);
    }
    struct llt_tensor_info * t = NULL;
    int rc = llt_tf_add_tensor(set, name, name_len, 0, &t);
    if (rc != LLT_OK) return rc;
    t->type = type;
    if ((rc = llt_tf_set_shape(t, shape, n_dims, path)) != LLT_OK) return rc;
    if (offs[0] > offs[1] || offs[1] > data_size) {
        return llt_set_error(LLT_EFORMAT, "cannot open '%s': tensor '%s': data_offsets [%llu, %llu] "
            "outside the data (%llu bytes)", path, t->name, (unsigned long long) offs[0],
            (unsigned long long) offs[1], (unsigned long long) data_size);
    }
    if (offs[1] - offs[0] != t->bytes) {
        return llt_set_error(LLT_EFORMAT, "cannot open '%s': tensor '%s': data_offsets hold %llu bytes, "
            "its shape and dtype need %llu", path, t->name, (unsigned long long) (offs[1] - offs[0]),
            (unsigned long long) t->bytes);
    }
    t->offset = data_base + offs[0];
    t->layer = llt_tf_layer_from_name(t->name);
    return LLT_OK;
}

// "__metadata__": an object of strings; checked and skipped
static bool st_metadata(struct json * j) {
    if (!json_char(j, '{')) return json_fail(j, "__metadata__ must be an object");
    if (json_char(j, '}')) return true;
    do {
        if (!json_string(j, NULL, 0, NULL) || !json_char(j, ':')) return false;
        json_ws(j);
        if (j->i >= j->n || j->s[j->i] != '"' || !json_string(j, NULL, 0, NULL)) {
            return json_fail(j, "__metadata__ values must be strings");
        }
    } while (json_char(j, ','));
    return json_char(j, '}') || json_fail(j, "expected ',' or '}'");
}

#define ST_MAX_HEADER (100u << 20) // safetensors' own limit

int llt_tf_open_safetensors(struct llt_tensor_set * set, const char * path) {
    struct tf_file * f = NULL;
    int rc = llt_tf_map_file(set, path, &f);
    if (rc != LLT_OK) return rc;
    if (f->size < 8) {
        return llt_set_error(LLT_EFORMAT, "cannot open '%s': bad safetensors header: the file has %llu bytes, "
            "too short for the header length", path, (unsigned long long) f->size);
    }
    uint64_t hlen;
    memcpy(&hlen, f->map, sizeof(hlen));
    if (hlen < 2 || hlen > f->size - 8 || hlen > ST_MAX_HEADER) {
        return llt_set_error(LLT_EFORMAT, "cannot open '%s': bad safetensors header: header length %llu "
            "does not fit the file (%llu bytes)", path, (unsigned long long) hlen, (unsigned long long) f->size);
    }
    struct json j = { .s = (const char *) f->map + 8, .n = (size_t) hlen };
    const uint64_t data_base = 8 + hlen, data_size = f->size - data_base;
    char name[1024];
    size_t len = 0;
    if (!json_char(&j, '{')) {
        json_fail(&j, "expected '{'");
    } else if (!json_char(&j, '}')) {
        do {
            if (!json_string(&j, name, sizeof(name), &len) || !json_char(&j, ':')) {
                json_fail(&j, "expected a tensor name and ':'");
                break;
            }
            if (strcmp(name, "__metadata__") == 0) {
                if (!st_metadata(&j)) break;
            } else if ((rc = st_entry(set, &j, name, len, data_base, data_size, path)) != LLT_OK) {
                if (!j.err) return rc; // a semantic error, already set
                break;
            }
        } while (json_char(&j, ','));
        if (!j.err && !json_char(&j, '}')) json_fail(&j, "expected ',' or '}'");
    }
    if (!j.err) {
        json_ws(&j);
        if (j.i != j.n) json_fail(&j, "trailing bytes after the JSON object");
    }
    if (j.err) {
        return llt_set_error(LLT_EFORMAT, "cannot open '%s': bad safetensors header: %s at byte %zu",
            path, j.err, (size_t) 8 + j.err_at);
    }
    return LLT_OK;
}

// ---- writing -----------------------------------------------------------------------------

static void json_put_string(FILE * f, const char * s) {
    fputc('"', f);
    for (const unsigned char * p = (const unsigned char *) s; *p; p++) {
        if (*p == '"' || *p == '\\') fprintf(f, "\\%c", *p);
        else if (*p < 0x20) fprintf(f, "\\u%04x", *p);
        else fputc(*p, f);
    }
    fputc('"', f);
}

static int64_t desc_elements(const struct llt_tensor_desc * t) {
    int64_t n = 1;
    for (int d = 0; d < t->n_dims; d++) n *= t->ne[d];
    return n;
}

int llt_safetensors_write(const char * path, const struct llt_tensor_desc * tensors, int n,
                          int (*get)(int i, float * dst, void * user_data), void * user_data) {
    int64_t max_n = 1;
    for (int i = 0; i < n; i++) {
        int64_t ne = 0;
        int rc = llt_tf_check_shape(tensors[i].name, tensors[i].ne, tensors[i].n_dims, &ne);
        if (rc != LLT_OK) return rc;
        max_n = ne > max_n ? ne : max_n;
    }
    // the header, measured by writing it to a memory stream first
    char * hdr = NULL;
    size_t hlen = 0;
    FILE * m = open_memstream(&hdr, &hlen);
    if (!m) return llt_set_error(LLT_ENOMEM, "out of memory");
    fputc('{', m);
    uint64_t off = 0;
    for (int i = 0; i < n; i++) {
        const struct llt_tensor_desc * t = &tensors[i];
        const int64_t ne = desc_elements(t);
        if (i) fputc(',', m);
        json_put_string(m, t->name);
        fputs(":{\"dtype\":\"F32\",\"shape\":[", m);
        for (int d = t->n_dims - 1; d >= 0; d--) fprintf(m, "%lld%s", (long long) t->ne[d], d ? "," : "");
        fprintf(m, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long) off,
            (unsigned long long) (off + (uint64_t) ne * sizeof(float)));
        off += (uint64_t) ne * sizeof(float);
    }
    fputc('}', m);
    while ((ftell(m) & 7) != 0) fputc(' ', m); // the data starts 8-aligned
    if (fclose(m) != 0) {
        free(hdr);
        return llt_set_error(LLT_ENOMEM, "out of memory");
    }

    struct llt_outfile * of = NULL;
    float * buf = NULL;
    int rc = llt_outfile_open(path, &of);
    if (rc != LLT_OK) goto done;
    FILE * f = llt_outfile_file(of);
    if (!(buf = malloc((size_t) max_n * sizeof(float)))) {
        rc = llt_set_error(LLT_ENOMEM, "out of memory");
        goto done;
    }
    const uint64_t len64 = hlen;
    fwrite(&len64, sizeof(len64), 1, f);
    fwrite(hdr, 1, hlen, f);
    for (int i = 0; i < n && rc == LLT_OK; i++) {
        if ((rc = get(i, buf, user_data)) == LLT_OK) fwrite(buf, sizeof(float), (size_t) desc_elements(&tensors[i]), f);
    }
    if (rc == LLT_OK) {
        rc = llt_outfile_commit(of);
        of = NULL;
    }
done:
    llt_outfile_abort(of);
    free(buf);
    free(hdr);
    return rc;
}
