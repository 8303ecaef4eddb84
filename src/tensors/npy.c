// .npy files and directories of them: a reader (v1-v3 headers, the dtypes numpy and torch
// write) and an F32 writer. The layout: 1. "\x93NUMPY" 2. major, minor version bytes 3. header
// length (u16 in v1, u32 in v2/v3) 4. a Python dict literal {'descr': '<f4', 'fortran_order':
// False, 'shape': (3, 4), } padded with spaces and '\n' 5. the data.
#include "tensors/tensor_set.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// ---- .npy --------------------------------------------------------------------------------

static const struct { char kind; int size; int type; } npy_dtypes[] = {
    { 'f', 2, GGML_TYPE_F16 }, { 'f', 4, GGML_TYPE_F32 }, { 'f', 8, GGML_TYPE_F64 },
    { 'i', 1, GGML_TYPE_I8 },  { 'i', 2, GGML_TYPE_I16 }, { 'i', 4, GGML_TYPE_I32 }, { 'i', 8, GGML_TYPE_I64 },
    { 'u', 1, LLT_TYPE_U8 },   { 'u', 2, LLT_TYPE_U16 },  { 'u', 4, LLT_TYPE_U32 },  { 'u', 8, LLT_TYPE_U64 },
    { 'b', 1, LLT_TYPE_BOOL },
};

static const char * npy_kind_desc(char kind) {
    switch (kind) {
        case 'c': return "complex";
        case 'O': return "Python objects";
        case 'U': case 'S': case 'a': return "strings";
        case 'V': return "raw or structured records";
        case 'M': case 'm': return "datetimes";
        case 'f': return "a float of this size";
        default:  return "not a numeric type lltrace knows";
    }
}

// descr like '<f4' into a type
static int npy_descr(const char * d, const char * path, int * type) {
    const char order = d[0];
    const char kind = order ? d[1] : '\0';
    const int size = kind ? atoi(d + 2) : 0;
    for (size_t k = 0; k < sizeof(npy_dtypes)/sizeof(npy_dtypes[0]); k++) {
        if (npy_dtypes[k].kind != kind || npy_dtypes[k].size != size) continue;
        if (order == '>' && size > 1) {
            return llt_set_error(LLT_EFORMAT, "cannot open '%s': big-endian dtype '%s' is not supported "
                "(save it with .astype('<%c%d'))", path, d, kind, size);
        }
        if (order != '<' && order != '|' && order != '=' && order != '>') break;
        *type = npy_dtypes[k].type;
        return LLT_OK;
    }
    return llt_set_error(LLT_EFORMAT, "cannot open '%s': unsupported dtype '%s' (%s); lltrace reads "
        "f2 f4 f8 i1 i2 i4 i8 u1 u2 u4 u8 b1", path, d, npy_kind_desc(kind));
}

// the header dict: {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }
static int npy_header(const char * h, size_t n, const char * path, int * type, bool * fortran,
                      uint64_t * shape, int * n_dims) {
    size_t i = 0;
    bool have_descr = false, have_order = false, have_shape = false;
#define NPY_WS() while (i < n && (h[i] == ' ' || h[i] == '\n' || h[i] == '\t')) i++
#define NPY_BAD(what) return llt_set_error(LLT_EFORMAT, "cannot open '%s': bad .npy header: %s", path, what)
    NPY_WS();
    if (i >= n || h[i++] != '{') NPY_BAD("expected '{'");
    for (;;) {
        NPY_WS();
        if (i < n && h[i] == '}') { i++; break; }
        if (i >= n || (h[i] != '\'' && h[i] != '"')) NPY_BAD("expected a quoted key");
        const char q = h[i++];
        const size_t k0 = i;
        while (i < n && h[i] != q) i++;
        if (i >= n) NPY_BAD("unterminated key");
        const size_t klen = i++ - k0;
        NPY_WS();
        if (i >= n || h[i++] != ':') NPY_BAD("expected ':'");
        NPY_WS();
        if (klen == 5 && memcmp(h + k0, "descr", 5) == 0) {
            if (i < n && h[i] == '[') {
                return llt_set_error(LLT_EFORMAT, "cannot open '%s': unsupported dtype (structured records)", path);
            }
            if (i >= n || (h[i] != '\'' && h[i] != '"')) NPY_BAD("descr must be a string");
            const char dq = h[i++];
            char d[16];
            size_t dl = 0;
            while (i < n && h[i] != dq && dl < sizeof(d) - 1) d[dl++] = h[i++];
            if (i >= n || h[i] != dq) NPY_BAD("bad descr");
            i++;
            d[dl] = '\0';
            int rc = npy_descr(d, path, type);
            if (rc != LLT_OK) return rc;
            have_descr = true;
        } else if (klen == 13 && memcmp(h + k0, "fortran_order", 13) == 0) {
            if (n - i >= 4 && memcmp(h + i, "True", 4) == 0) { *fortran = true; i += 4; }
            else if (n - i >= 5 && memcmp(h + i, "False", 5) == 0) { *fortran = false; i += 5; }
            else NPY_BAD("fortran_order must be True or False");
            have_order = true;
        } else if (klen == 5 && memcmp(h + k0, "shape", 5) == 0) {
            if (i >= n || h[i++] != '(') NPY_BAD("shape must be a tuple");
            *n_dims = 0;
            for (;;) {
                NPY_WS();
                if (i < n && h[i] == ')') { i++; break; }
                if (i >= n || !isdigit((unsigned char) h[i])) NPY_BAD("shape must hold non-negative integers");
                if (*n_dims == 8) NPY_BAD("too many dimensions");
                uint64_t v = 0;
                while (i < n && isdigit((unsigned char) h[i])) {
                    if (v > UINT64_MAX / 10 - 9) NPY_BAD("dimension too large");
                    v = v * 10 + (uint64_t) (h[i++] - '0');
                }
                if (i < n && h[i] == 'L') i++; // Python 2 long
                shape[(*n_dims)++] = v;
                NPY_WS();
                if (i < n && h[i] == ',') i++;
                else if (i >= n || h[i] != ')') NPY_BAD("expected ',' or ')' in shape");
            }
            have_shape = true;
        } else {
            NPY_BAD("unknown key");
        }
        NPY_WS();
        if (i < n && h[i] == ',') { i++; continue; }
        if (i < n && h[i] == '}') { i++; break; }
        NPY_BAD("expected ',' or '}'");
    }
    NPY_WS();
    if (i != n) NPY_BAD("trailing bytes after the dict");
    if (!have_descr || !have_order || !have_shape) NPY_BAD("needs descr, fortran_order and shape");
#undef NPY_WS
#undef NPY_BAD
    return LLT_OK;
}

// tensor name from a file name: "Qcur-0%23.npy" -> "Qcur-0#"
static void npy_name(const char * file, char * out, size_t cap) {
    const size_t n = strlen(file) - 4;
    size_t o = 0;
    for (size_t i = 0; i < n && o + 1 < cap; i++) {
        const int h = file[i] == '%' && i + 2 < n ? llt_tf_hex_n(file + i + 1, 2) : -1;
        if (h > 0) { out[o++] = (char) h; i += 2; }
        else out[o++] = file[i];
    }
    out[o] = '\0';
}

int llt_tf_open_npy_file(struct llt_tensor_set * set, const char * path, const char * file_name) {
    struct tf_file * f = NULL;
    int rc = llt_tf_map_file(set, path, &f);
    if (rc != LLT_OK) return rc;
    const unsigned char * p = f->map;
    if (f->size < 10 || memcmp(p, "\x93NUMPY", 6) != 0) {
        return llt_set_error(LLT_EFORMAT, "cannot open '%s': not a .npy file (bad magic)", path);
    }
    const int major = p[6];
    if (major < 1 || major > 3) {
        return llt_set_error(LLT_EVERSION, "cannot open '%s': .npy format version %d.%d (lltrace knows 1, 2 and 3)",
            path, major, p[7]);
    }
    const size_t pre = major == 1 ? 10 : 12;
    if (f->size < pre) return llt_set_error(LLT_EFORMAT, "cannot open '%s': truncated .npy header", path);
    const uint64_t hlen = major == 1 ? (uint64_t) (p[8] | p[9] << 8)
                        : (uint64_t) p[8] | (uint64_t) p[9] << 8 | (uint64_t) p[10] << 16 | (uint64_t) p[11] << 24;
    if (pre + hlen > f->size) return llt_set_error(LLT_EFORMAT, "cannot open '%s': truncated .npy header", path);

    char name[1024];
    npy_name(file_name, name, sizeof(name));
    struct llt_tensor_info * t = NULL;
    if ((rc = llt_tf_add_tensor(set, name, strlen(name), set->n_files - 1, &t)) != LLT_OK) return rc;
    uint64_t shape[8];
    int n_dims = 0;
    rc = npy_header((const char *) p + pre, (size_t) hlen, path, &t->type, &t->fortran, shape, &n_dims);
    if (rc != LLT_OK) return rc;
    if ((rc = llt_tf_set_shape(t, shape, n_dims, path)) != LLT_OK) return rc;
    t->offset = pre + hlen;
    if (t->offset + t->bytes > f->size) {
        return llt_set_error(LLT_EFORMAT, "cannot open '%s': truncated (the data needs %llu bytes, the file has %llu)",
            path, (unsigned long long) (t->offset + t->bytes), (unsigned long long) f->size);
    }
    t->layer = llt_tf_layer_from_name(t->name);
    return LLT_OK;
}

static int cmp_str(const void * a, const void * b) {
    return strcmp(*(char * const *) a, *(char * const *) b);
}

bool llt_tf_has_npy_suffix(const char * s) {
    const size_t n = strlen(s);
    return n > 4 && strcmp(s + n - 4, ".npy") == 0;
}

// every *.npy of a directory, in name order
int llt_tf_open_npy_dir(struct llt_tensor_set * set, const char * dir) {
    DIR * d = opendir(dir);
    if (!d) return llt_set_error(LLT_EIO, "cannot open '%s': %s", dir, strerror(errno));
    char ** names = NULL;
    size_t n = 0, cap = 0;
    int rc = LLT_OK;
    char * path = NULL;
    for (struct dirent * e; (e = readdir(d)) != NULL;) {
        if (!llt_tf_has_npy_suffix(e->d_name)) continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            char ** nn = realloc(names, cap * sizeof(*nn));
            if (!nn) { rc = llt_set_error(LLT_ENOMEM, "out of memory"); goto done; }
            names = nn;
        }
        if (!(names[n] = strdup(e->d_name))) { rc = llt_set_error(LLT_ENOMEM, "out of memory"); goto done; }
        n++;
    }
    if (n == 0) {
        rc = llt_set_error(LLT_EFORMAT, "cannot open '%s': a directory without .npy files", dir);
        goto done;
    }
    qsort(names, n, sizeof(*names), cmp_str);
    if (!(path = malloc(strlen(dir) + 1 + 256 + 1))) { rc = llt_set_error(LLT_ENOMEM, "out of memory"); goto done; }
    for (size_t i = 0; i < n && rc == LLT_OK; i++) {
        sprintf(path, "%s/%s", dir, names[i]);
        rc = llt_tf_open_npy_file(set, path, names[i]);
    }
done:
    closedir(d);
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
    free(path);
    return rc;
}

// ---- writing -----------------------------------------------------------------------------

int llt_npy_write(const char * dir, const char * name, const float * data, const int64_t ne[4], int n_dims) {
    int64_t n = 0;
    int rc = llt_tf_check_shape(name, ne, n_dims, &n);
    if (rc != LLT_OK) return rc;
    char * path = malloc(strlen(dir) + 1 + 3 * strlen(name) + 5);
    if (!path) return llt_set_error(LLT_ENOMEM, "out of memory");
    char * p = path + sprintf(path, "%s/", dir);
    for (const unsigned char * s = (const unsigned char *) name; *s; s++) {
        p += isalnum(*s) || strchr("._+#=-", *s) ? sprintf(p, "%c", *s) : sprintf(p, "%%%02X", *s);
    }
    strcpy(p, ".npy");

    // header: the dict, padded with spaces so that the data starts at a multiple of 64
    char hdr[256];
    int h = snprintf(hdr, sizeof(hdr), "{'descr': '<f4', 'fortran_order': False, 'shape': (");
    for (int d = n_dims - 1; d >= 0; d--) {
        h += snprintf(hdr + h, sizeof(hdr) - (size_t) h, "%lld%s", (long long) ne[d],
            d > 0 ? ", " : n_dims == 1 ? "," : ""); // (3, 4) but (3,)
    }
    h += snprintf(hdr + h, sizeof(hdr) - (size_t) h, "), }");
    const int total = (10 + h + 1 + 63) / 64 * 64;
    const unsigned char pre[10] = { 0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0,
                                    (unsigned char) ((total - 10) & 0xff), (unsigned char) ((total - 10) >> 8) };

    char * tmp = NULL;
    FILE * f = NULL;
    if ((rc = llt_tf_open_temp(path, &tmp, &f)) != LLT_OK) goto done;
    fwrite(pre, 1, sizeof(pre), f);
    fwrite(hdr, 1, (size_t) h, f);
    for (int i = 10 + h; i < total - 1; i++) fputc(' ', f);
    fputc('\n', f);
    fwrite(data, sizeof(float), (size_t) n, f);
    rc = llt_tf_commit_temp(f, tmp, path, LLT_OK);
done:
    free(path);
    return rc;
}
