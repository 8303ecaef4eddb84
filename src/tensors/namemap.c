// Name maps (docs/name-maps.md): lltrace's tensor names against another framework's, with
// the transforms that bring B's tensor into A's layout. The set diff (diff.c) asks them through
// namemap.h.
#include "core/internal.h"
#include "tensors/namemap.h"


#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// The format: a first line "lltrace-map 1", then lines "A_PATTERN B_PATTERN [OP...]".
// Patterns hold literal text, {L} (a layer number) and * (any text); a match's {L} and *
// values fill the other pattern. Ops turn B's tensor into A's layout before comparing.

#define MAP_MAX_OPS  8
#define MAP_MAX_CAPS 8
#define MAP_MAX_VARS 16

enum map_op_kind { OP_TRANSPOSE, OP_FLAT, OP_RESHAPE, OP_QK_PERMUTE, OP_LAST_ROWS, OP_SPLIT };

struct map_op {
    enum map_op_kind kind;
    int              axis;        // OP_QK_PERMUTE, OP_SPLIT
    int              part, n_parts; // OP_SPLIT: keep part of n_parts equal parts along axis
    int              n_dims;      // OP_RESHAPE
    char             dims[4][32]; // OP_RESHAPE: numbers, -1 or {var}
};

struct map_line {
    char *        a_pat;
    char *        b_pat;
    char *        ops_text; // as written, for reports
    struct map_op ops[MAP_MAX_OPS];
    int           n_ops;
    int           line_no;
};

struct llt_name_map {
    char *            path;
    struct map_line * lines;
    int               n;
    struct { char name[32]; int64_t value; } vars[MAP_MAX_VARS];
    int               n_vars;
};

struct caps {
    int          n;
    const char * at[MAP_MAX_CAPS];
    size_t       len[MAP_MAX_CAPS];
    bool         is_layer[MAP_MAX_CAPS];
};

// whole-string match of name against pat; captures {L} and * in order of appearance
static bool pat_match(const char * pat, const char * s, struct caps * c) {
    if (*pat == '\0') return *s == '\0';
    if (strncmp(pat, "{L}", 3) == 0) {
        size_t n = 0;
        while (isdigit((unsigned char) s[n])) n++;
        if (n == 0 || c->n == MAP_MAX_CAPS) return false;
        for (int k = 0; k < c->n; k++) { // every {L} of a pattern is the same layer
            if (c->is_layer[k] && (c->len[k] != n || memcmp(c->at[k], s, n) != 0)) return false;
        }
        c->at[c->n] = s; c->len[c->n] = n; c->is_layer[c->n] = true; c->n++;
        if (pat_match(pat + 3, s + n, c)) return true;
        c->n--;
        return false;
    }
    if (*pat == '*') {
        if (c->n == MAP_MAX_CAPS) return false;
        for (size_t n = 0;; n++) {
            c->at[c->n] = s; c->len[c->n] = n; c->is_layer[c->n] = false; c->n++;
            if (pat_match(pat + 1, s + n, c)) return true;
            c->n--;
            if (s[n] == '\0') return false;
        }
    }
    return *pat == *s && pat_match(pat + 1, s + 1, c);
}

// pat with {L} and * filled from c; false if out is too small
static bool pat_fill(const char * pat, const struct caps * c, char * out, size_t cap) {
    size_t o = 0;
    int star = 0;
    for (const char * p = pat; *p;) {
        const char * src = p;
        size_t n = 1;
        if (strncmp(p, "{L}", 3) == 0) {
            int k = 0;
            while (k < c->n && !c->is_layer[k]) k++;
            if (k == c->n) return false;
            src = c->at[k]; n = c->len[k]; p += 3;
        } else if (*p == '*') {
            int k = 0, seen = 0;
            for (; k < c->n; k++) if (!c->is_layer[k] && seen++ == star) break;
            if (k == c->n) return false;
            star++;
            src = c->at[k]; n = c->len[k]; p++;
        } else {
            p++;
        }
        if (o + n >= cap) return false;
        memcpy(out + o, src, n);
        o += n;
    }
    out[o] = '\0';
    return true;
}

static int count_str(const char * s, const char * what) {
    int n = 0;
    for (const char * p = s; (p = strstr(p, what)) != NULL; p += strlen(what)) n++;
    return n;
}

void llt_name_map_free(struct llt_name_map * map) {
    if (!map) return;
    for (int i = 0; i < map->n; i++) {
        free(map->lines[i].a_pat);
        free(map->lines[i].b_pat);
        free(map->lines[i].ops_text);
    }
    free(map->lines);
    free(map->path);
    free(map);
}

int llt_name_map_set_var(struct llt_name_map * map, const char * name, int64_t value) {
    if (strlen(name) >= sizeof(map->vars[0].name)) return llt_set_error(LLT_EINVAL, "map variable name '%s' is too long", name);
    for (int i = 0; i < map->n_vars; i++) {
        if (strcmp(map->vars[i].name, name) == 0) { map->vars[i].value = value; return LLT_OK; }
    }
    if (map->n_vars == MAP_MAX_VARS) return llt_set_error(LLT_EINVAL, "too many map variables (%d)", MAP_MAX_VARS);
    snprintf(map->vars[map->n_vars].name, sizeof(map->vars[0].name), "%s", name);
    map->vars[map->n_vars++].value = value;
    return LLT_OK;
}

// one op word: transpose, reshape, reshape:D0,D1,..., qk-permute:AXIS, last-rows, split:AXIS,I,N
static bool parse_op(const char * w, struct map_op * op) {
    memset(op, 0, sizeof(*op));
    int len = 0;
    if (sscanf(w, "split:%d,%d,%d%n", &op->axis, &op->part, &op->n_parts, &len) == 3 && w[len] == '\0') {
        op->kind = OP_SPLIT;
        return op->axis >= 0 && op->axis < 4 && op->part >= 0 && op->part < op->n_parts;
    }
    if (strcmp(w, "transpose") == 0) { op->kind = OP_TRANSPOSE; return true; }
    if (strcmp(w, "reshape") == 0)   { op->kind = OP_FLAT; return true; }
    if (strcmp(w, "last-rows") == 0) { op->kind = OP_LAST_ROWS; return true; }
    if (strcmp(w, "qk-permute:0") == 0 || strcmp(w, "qk-permute:1") == 0) {
        op->kind = OP_QK_PERMUTE;
        op->axis = w[11] - '0';
        return true;
    }
    if (strncmp(w, "reshape:", 8) == 0) {
        op->kind = OP_RESHAPE;
        for (const char * p = w + 8;;) {
            const size_t n = strcspn(p, ",");
            if (n == 0 || n >= sizeof(op->dims[0]) || op->n_dims == 4) return false;
            memcpy(op->dims[op->n_dims], p, n);
            op->dims[op->n_dims++][n] = '\0';
            if (p[n] == '\0') return true;
            p += n + 1;
        }
    }
    return false;
}

#define MAP_ERR(...) do { rc = llt_set_error(LLT_EFORMAT, __VA_ARGS__); goto done; } while (0)

int llt_name_map_load(const char * path, struct llt_name_map ** out) {
    *out = NULL;
    if (llt_input_check(path, "map") != LLT_OK) return LLT_EIO;
    FILE * f = fopen(path, "r");
    if (!f) return llt_set_error(LLT_EIO, "cannot open map '%s': %s", path, strerror(errno));
    int rc = LLT_OK;
    char line[4096];
    struct llt_name_map * map = calloc(1, sizeof(*map));
    if (!map || !(map->path = strdup(path))) {
        rc = llt_set_error(LLT_ENOMEM, "out of memory");
        goto done;
    }
    int version = 0;
    if (!fgets(line, sizeof(line), f) || sscanf(line, "lltrace-map %d", &version) != 1) {
        MAP_ERR("cannot read map '%s': the first line must be 'lltrace-map 1'", path);
    }
    if (version != 1) MAP_ERR("cannot read map '%s': map version %d (lltrace knows 1)", path, version);
    int cap = 0;
    for (int line_no = 2; fgets(line, sizeof(line), f); line_no++) {
        if (!strchr(line, '\n') && !feof(f)) MAP_ERR("cannot read map '%s': line %d is too long", path, line_no);
        for (char * c = line; *c; c++) { // a comment: '#' at the start of a line or after a blank
            if (*c == '#' && (c == line || c[-1] == ' ' || c[-1] == '\t')) { *c = '\0'; break; }
        }
        char * words[2 + MAP_MAX_OPS]; // two patterns and at most MAP_MAX_OPS transforms
        int nw = 0;
        for (char * save = NULL, * w = strtok_r(line, " \t\r\n", &save); w; w = strtok_r(NULL, " \t\r\n", &save)) {
            if (nw == (int) (sizeof(words)/sizeof(words[0]))) MAP_ERR("cannot read map '%s': line %d has too many words", path, line_no);
            words[nw++] = w;
        }
        if (nw == 0) continue;
        if (nw < 2) MAP_ERR("cannot read map '%s': line %d needs an lltrace pattern and a pattern for B", path, line_no);
        if (count_str(words[1], "{L}") > 0 && count_str(words[0], "{L}") == 0) {
            MAP_ERR("cannot read map '%s': line %d: B pattern uses {L}, the lltrace pattern has none", path, line_no);
        }
        if (count_str(words[0], "*") != count_str(words[1], "*")) {
            MAP_ERR("cannot read map '%s': line %d: both patterns need the same number of '*'", path, line_no);
        }
        if (map->n == cap) {
            cap = cap ? cap * 2 : 32;
            struct map_line * nl = realloc(map->lines, (size_t) cap * sizeof(*nl));
            if (!nl) { rc = llt_set_error(LLT_ENOMEM, "out of memory"); goto done; }
            map->lines = nl;
        }
        struct map_line * ml = &map->lines[map->n];
        memset(ml, 0, sizeof(*ml));
        ml->line_no = line_no;
        map->n++;
        char ops_text[1024] = "";
        for (int k = 2; k < nw; k++) {
            if (!parse_op(words[k], &ml->ops[ml->n_ops++])) {
                MAP_ERR("cannot read map '%s': line %d: unknown transform '%s' (transpose, reshape, "
                    "reshape:D0,D1,..., qk-permute:0|1, last-rows, split:AXIS,I,N)", path, line_no, words[k]);
            }
            snprintf(ops_text + strlen(ops_text), sizeof(ops_text) - strlen(ops_text), "%s%s", k > 2 ? " " : "", words[k]);
        }
        if (!(ml->a_pat = strdup(words[0])) || !(ml->b_pat = strdup(words[1])) || !(ml->ops_text = strdup(ops_text))) {
            rc = llt_set_error(LLT_ENOMEM, "out of memory");
            goto done;
        }
    }
    if (ferror(f)) MAP_ERR("cannot read map '%s': %s", path, strerror(errno));
    if (map->n == 0) MAP_ERR("cannot read map '%s': no mapping lines", path);
done:
    fclose(f);
    if (rc != LLT_OK) {
        llt_name_map_free(map);
        return rc;
    }
    *out = map;
    return LLT_OK;
}

// the line mapping an A name, the B name and the layer it names; NULL if none. The step of
// a dump's tensor name ("Qcur-0#3", "Qcur-0#3.2") is left out unless the pattern holds a '#':
// "Qcur-0" and "Qcur-0.2" are matched.
const struct map_line * llt_map_a(const struct llt_name_map * map, const char * name, char * b_name,
                                  size_t cap, int32_t * layer) {
    char base[512];
    snprintf(base, sizeof(base), "%s", name);
    char * hash = strchr(base, '#');
    if (hash) {
        size_t n = 1;
        while (isdigit((unsigned char) hash[n])) n++;
        memmove(hash, hash + n, strlen(hash + n) + 1);
    }
    for (int i = 0; i < map->n; i++) {
        const struct map_line * ml = &map->lines[i];
        struct caps c = {0};
        const char * s = hash && !strchr(ml->a_pat, '#') ? base : name;
        if (!pat_match(ml->a_pat, s, &c) || !pat_fill(ml->b_pat, &c, b_name, cap)) continue;
        for (int k = 0; k < c.n; k++) {
            if (c.is_layer[k]) { *layer = (int32_t) atoi(c.at[k]); break; }
        }
        return ml;
    }
    return NULL;
}

bool llt_map_names_b(const struct llt_name_map * map, const char * name) {
    for (int i = 0; i < map->n; i++) {
        struct caps c = {0};
        if (pat_match(map->lines[i].b_pat, name, &c)) return true;
    }
    return false;
}

// ---- map variables: set by the user, else from the GGUF metadata of A or B ---------------

static bool meta_arch_int(const struct llt_tensor_set * set, const char * suffix, int64_t * out) {
    const struct llt_gguf * g = llt_tensor_set_gguf(set);
    const char * arch = g ? llt_gguf_val_str(g, llt_gguf_find_key(g, "general.architecture")) : NULL;
    if (!arch) return false;
    char key[256];
    snprintf(key, sizeof(key), "%s.%s", arch, suffix);
    return llt_tensor_set_meta_int(set, key, out);
}

static bool auto_var(const struct llt_tensor_set * set, const char * name, int64_t * out) {
    int64_t e = 0, h = 0;
    if (strcmp(name, "n_embd") == 0)    return meta_arch_int(set, "embedding_length", out);
    if (strcmp(name, "n_head") == 0)    return meta_arch_int(set, "attention.head_count", out);
    if (strcmp(name, "n_head_kv") == 0) return meta_arch_int(set, "attention.head_count_kv", out);
    if (strcmp(name, "head_dim") == 0) {
        if (meta_arch_int(set, "rope.dimension_count", out) || meta_arch_int(set, "attention.key_length", out)) return true;
        if (meta_arch_int(set, "embedding_length", &e) && meta_arch_int(set, "attention.head_count", &h) && h > 0) {
            *out = e / h;
            return true;
        }
    }
    return false;
}

struct map_ctx {
    const struct llt_name_map *   map;
    const struct map_line *       line;
    const struct llt_tensor_set * a, * b;
};

static int map_var(const struct map_ctx * mc, const char * name, int64_t * out) {
    for (int i = 0; i < mc->map->n_vars; i++) {
        if (strcmp(mc->map->vars[i].name, name) == 0) { *out = mc->map->vars[i].value; return LLT_OK; }
    }
    if (auto_var(mc->a, name, out) || auto_var(mc->b, name, out)) return LLT_OK;
    return llt_set_error(LLT_ENOTFOUND, "map '%s' line %d: the map variable {%s} is not known from the files' "
        "metadata: give its value", mc->map->path, mc->line->line_no, name);
}

// a reshape dimension: a number, -1, or {var}
static int map_dim(const struct map_ctx * mc, const char * s, int64_t * out) {
    const size_t n = strlen(s);
    if (n > 2 && s[0] == '{' && s[n - 1] == '}') {
        char name[32];
        snprintf(name, sizeof(name), "%.*s", (int) (n - 2), s + 1);
        return map_var(mc, name, out);
    }
    char * end = NULL;
    errno = 0;
    const long long v = strtoll(s, &end, 10);
    if (errno || *end || v < -1 || v == 0) {
        return llt_set_error(LLT_EINVAL, "map '%s' line %d: bad reshape dimension '%s'", mc->map->path, mc->line->line_no, s);
    }
    *out = v;
    return LLT_OK;
}

// ---- transforms: B's data into A's layout ------------------------------------------------

int llt_map_bufs_reserve(struct llt_map_bufs * bf, int64_t n) {
    if (n <= bf->cap) return LLT_OK;
    float * p[3];
    for (int k = 0; k < 3; k++) {
        p[k] = malloc((size_t) n * sizeof(float));
        if (!p[k]) {
            while (k-- > 0) free(p[k]);
            return llt_set_error(LLT_ENOMEM, "out of memory for %lld floats", (long long) n);
        }
    }
    free(bf->a); free(bf->b); free(bf->t);
    bf->a = p[0]; bf->b = p[1]; bf->t = p[2];
    bf->cap = n;
    return LLT_OK;
}

static void swap_bt(struct llt_map_bufs * bf) { float * x = bf->b; bf->b = bf->t; bf->t = x; }

// Applies the line's ops to B's floats in bf->b with shape ne (updated). *flat: compare in
// memory order whatever the shapes.
static int apply_ops(const struct map_ctx * mc, const int64_t ne_a[4], struct llt_map_bufs * bf, int64_t ne[4], bool * flat) {
    for (int k = 0; k < mc->line->n_ops; k++) {
        const struct map_op * op = &mc->line->ops[k];
        const int64_t n = ne[0] * ne[1] * ne[2] * ne[3]; // per op: last-rows shrinks it
        int rc;
        switch (op->kind) {
            case OP_FLAT:
                *flat = true;
                break;
            case OP_TRANSPOSE: { // swap ne[0] and ne[1]
                const int64_t n0 = ne[0], n1 = ne[1], nr = ne[2] * ne[3];
                for (int64_t r = 0; r < nr; r++) {
                    const float * src = bf->b + r * n0 * n1;
                    float * dst = bf->t + r * n0 * n1;
                    for (int64_t i1 = 0; i1 < n1; i1++) {
                        for (int64_t i0 = 0; i0 < n0; i0++) dst[i0 * n1 + i1] = src[i1 * n0 + i0];
                    }
                }
                ne[0] = n1; ne[1] = n0;
                swap_bt(bf);
                break;
            }
            case OP_RESHAPE: {
                int64_t d[4] = { 1, 1, 1, 1 }, prod = 1;
                int infer = -1;
                for (int i = 0; i < op->n_dims; i++) {
                    if ((rc = map_dim(mc, op->dims[i], &d[i])) != LLT_OK) return rc;
                    if (d[i] == -1) {
                        if (infer >= 0) return llt_set_error(LLT_EINVAL, "map '%s' line %d: reshape with two -1",
                                                             mc->map->path, mc->line->line_no);
                        infer = i;
                    } else {
                        prod *= d[i];
                    }
                }
                if (infer >= 0 && prod > 0 && n % prod == 0) d[infer] = n / prod;
                if (d[0] * d[1] * d[2] * d[3] != n) {
                    return llt_set_error(LLT_EINVAL, "map '%s' line %d: cannot reshape %lld elements into %s",
                        mc->map->path, mc->line->line_no, (long long) n, mc->line->ops_text);
                }
                memcpy(ne, d, sizeof(d));
                break;
            }
            case OP_QK_PERMUTE: { // rows h*hd + j*hd/2 + i (rotate_half halves) -> h*hd + 2*i + j (pairs)
                int64_t hd = 0;
                if ((rc = map_var(mc, "head_dim", &hd)) != LLT_OK) return rc;
                const int ax = op->axis;
                if (hd <= 0 || hd % 2 != 0 || ne[ax] % hd != 0) {
                    return llt_set_error(LLT_EINVAL, "map '%s' line %d: qk-permute: dimension %d (%lld) is not "
                        "a multiple of head_dim %lld", mc->map->path, mc->line->line_no, ax, (long long) ne[ax], (long long) hd);
                }
                const int64_t inner = ax == 0 ? 1 : ne[0];          // elements per index along the axis
                const int64_t outer = n / (ne[ax] * inner);
                const int64_t len = ne[ax], half = hd / 2;
                for (int64_t o = 0; o < outer; o++) {
                    const float * src = bf->b + o * len * inner;
                    float * dst = bf->t + o * len * inner;
                    for (int64_t r = 0; r < len; r++) {
                        const int64_t h = r / hd, w = r % hd, from = h * hd + (w % 2) * half + w / 2;
                        memcpy(dst + r * inner, src + from * inner, (size_t) inner * sizeof(float));
                    }
                }
                swap_bt(bf);
                break;
            }
            case OP_SPLIT: { // the part-th of n_parts equal slices along the axis (a fused tensor's piece)
                const int ax = op->axis;
                if (ne[ax] % op->n_parts != 0) {
                    return llt_set_error(LLT_EINVAL, "map '%s' line %d: split: dimension %d (%lld) is not a multiple of %d",
                        mc->map->path, mc->line->line_no, ax, (long long) ne[ax], op->n_parts);
                }
                int64_t inner = 1;
                for (int d = 0; d < ax; d++) inner *= ne[d];
                const int64_t len = ne[ax], piece = len / op->n_parts, outer = n / (len * inner);
                for (int64_t o = 0; o < outer; o++) {
                    memcpy(bf->t + o * piece * inner, bf->b + (o * len + op->part * piece) * inner,
                           (size_t) (piece * inner) * sizeof(float));
                }
                ne[ax] = piece;
                swap_bt(bf);
                break;
            }
            case OP_LAST_ROWS: { // keep the last ne_a[1] rows (tokens) of every ne[2..3] slice
                const int64_t keep = ne_a[1];
                if (keep >= ne[1] || keep <= 0) break;
                const int64_t nr = ne[2] * ne[3], row = ne[0];
                for (int64_t r = 0; r < nr; r++) {
                    memmove(bf->b + r * keep * row, bf->b + (r * ne[1] + ne[1] - keep) * row,
                            (size_t) (keep * row) * sizeof(float));
                }
                ne[1] = keep;
                break;
            }
        }
    }
    return LLT_OK;
}

void llt_map_bufs_free(struct llt_map_bufs * bf) {
    free(bf->a);
    free(bf->b);
    free(bf->t);
    *bf = (struct llt_map_bufs) {0};
}

const char * llt_map_line_ops(const struct map_line * line) {
    return line ? line->ops_text : NULL;
}

int llt_map_transform(const struct llt_name_map * map, const struct map_line * line, const struct llt_tensor_set * a,
                      const struct llt_tensor_set * b, const int64_t ne_a[4], struct llt_map_bufs * bf, int64_t ne[4],
                      bool * flat) {
    const struct map_ctx mc = { .map = map, .line = line, .a = a, .b = b };
    return apply_ops(&mc, ne_a, bf, ne, flat);
}
