// Interventions as text: the command line's syntax (llt_iv_parse), the spec file (JSON; its
// schema in docs/debugging.md) and the JSON form the trace stores.
#include "capture/intervene_internal.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static const char * const kind_names[] = {
    [LLT_IV_ABLATE] = "ablate", [LLT_IV_SCALE] = "scale", [LLT_IV_ADD] = "add", [LLT_IV_PATCH] = "patch", [LLT_IV_SET] = "set",
};
_Static_assert(sizeof(kind_names) / sizeof(kind_names[0]) == LLT_IV_KIND_COUNT, "a name per intervention kind");

const char * llt_iv_kind_name(enum llt_iv_kind kind) {
    return (unsigned) kind < LLT_IV_KIND_COUNT ? kind_names[kind] : "?";
}

int llt_iv_kind_from_name(const char * name) {
    for (int k = 0; k < LLT_IV_KIND_COUNT; k++) if (strcmp(name, kind_names[k]) == 0) return k;
    if (strcmp(name, "steer") == 0) return LLT_IV_ADD;
    if (strcmp(name, "zero") == 0) return LLT_IV_ABLATE;
    return -1;
}

struct llt_intervention llt_iv_default(enum llt_iv_kind kind, const char * node) {
    struct llt_intervention iv = {
        .kind = kind, .head = LLT_IV_ANY, .pos_first = LLT_IV_ANY, .pos_last = LLT_IV_ANY,
        .step_first = LLT_IV_ANY, .step_last = LLT_IV_ANY, .layer = LLT_IV_ANY, .seq = LLT_IV_ANY,
        .value = kind == LLT_IV_SCALE || kind == LLT_IV_ADD ? 1.0f : 0.0f,
    };
    if (node) snprintf(iv.node, sizeof(iv.node), "%s", node);
    return iv;
}

// ---- the command line --------------------------------------------------------------------

static bool parse_i32(const char * s, int32_t lo, int32_t * out) {
    char * end;
    errno = 0;
    const long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > INT32_MAX) return false;
    *out = (int32_t) v;
    return true;
}

// "N" or "A-B"
static bool parse_range(const char * s, int32_t * first, int32_t * last) {
    const char * dash = strchr(s, '-');
    if (!dash) return parse_i32(s, 0, first) && (*last = *first, true);
    char a[32];
    if ((size_t) (dash - s) >= sizeof(a)) return false;
    snprintf(a, sizeof(a), "%.*s", (int) (dash - s), s);
    return parse_i32(a, 0, first) && parse_i32(dash + 1, 0, last) && *last >= *first;
}

static bool parse_float(const char * s, float * out) {
    char * end;
    errno = 0;
    const double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || fabs(v) > 3.0e38) return false;
    *out = (float) v;
    return true;
}

// a trailing ":key=value" into iv; false if tail is no selector (then it belongs to the node or file)
static int selector(struct llt_intervention * iv, const char * tail, bool * taken) {
    static const char * const keys[] = { "head", "pos", "step", "layer", "seq", "op" };
    const char * eq = strchr(tail, '=');
    *taken = false;
    if (!eq) return LLT_OK;
    int k = -1;
    for (int i = 0; i < 6; i++) if ((size_t) (eq - tail) == strlen(keys[i]) && strncmp(tail, keys[i], strlen(keys[i])) == 0) k = i;
    if (k < 0) return LLT_OK;
    const char * v = eq + 1;
    bool ok;
    switch (k) {
        case 0:  ok = parse_i32(v, 0, &iv->head); break;
        case 1:  ok = parse_range(v, &iv->pos_first, &iv->pos_last); break;
        case 2:  ok = parse_range(v, &iv->step_first, &iv->step_last); break;
        case 3:  ok = parse_i32(v, 0, &iv->layer); break;
        case 4:  ok = parse_i32(v, 0, &iv->seq); break;
        default: ok = *v && strlen(v) < sizeof(iv->op) && (snprintf(iv->op, sizeof(iv->op), "%s", v), true); break;
    }
    if (!ok) {
        return llt_set_error(LLT_EINVAL, "%s: '%s=%s' is not %s", llt_iv_kind_name(iv->kind), keys[k], v,
                             k == 1 || k == 2 ? "N or A-B (A <= B)" : k == 5 ? "a ggml op name (ROPE, MUL_MAT)" : "a whole number >= 0");
    }
    *taken = true;
    return LLT_OK;
}

int llt_iv_parse(enum llt_iv_kind kind, const char * text, const char * from, struct llt_intervention * out) {
    if ((unsigned) kind >= LLT_IV_KIND_COUNT) return llt_set_error(LLT_EINVAL, "unknown intervention kind %d", kind);
    *out = llt_iv_default(kind, NULL);
    const char * what = llt_iv_kind_name(kind);
    char buf[2048];
    if (strlen(text) >= sizeof(buf)) return llt_set_error(LLT_EINVAL, "%s: the argument is too long", what);
    snprintf(buf, sizeof(buf), "%s", text);
    // selectors, from the end: a node pattern or a file may hold ':' too
    for (char * colon; (colon = strrchr(buf, ':')) != NULL;) {
        bool taken;
        int rc = selector(out, colon + 1, &taken);
        if (rc != LLT_OK) return rc;
        if (!taken) break;
        *colon = '\0';
    }
    char * node = buf, * value = NULL;
    if (kind == LLT_IV_SCALE || kind == LLT_IV_SET || kind == LLT_IV_ADD) {
        // a regex may hold '=' itself: its value follows the last one
        char * eq = strncmp(buf, "re:", 3) == 0 ? strrchr(buf, '=') : strchr(buf, '=');
        if (!eq) {
            static const char * const want[] = { [LLT_IV_SCALE] = "NODE=FACTOR", [LLT_IV_SET] = "NODE=VALUE",
                                                 [LLT_IV_ADD] = "NODE=FILE.npy[*ALPHA]" };
            return llt_set_error(LLT_EINVAL, "%s: '%s' is not %s[:head=H][:pos=P]", kind == LLT_IV_ADD ? "steer" : what, text, want[kind]);
        }
        *eq = '\0';
        value = eq + 1;
    }
    if (!*node) return llt_set_error(LLT_EINVAL, "%s: '%s' names no node", what, text);
    if (strlen(node) >= sizeof(out->node)) return llt_set_error(LLT_EINVAL, "%s: the node pattern '%s' is too long", what, node);
    snprintf(out->node, sizeof(out->node), "%s", node);
    if ((kind == LLT_IV_SCALE || kind == LLT_IV_SET) && !parse_float(value, &out->value)) {
        return llt_set_error(LLT_EINVAL, "%s %s: '%s' is not a number", what, node, value);
    }
    if (kind == LLT_IV_ADD) {
        char * star = strrchr(value, '*');
        if (star && star > value) {
            if (!parse_float(star + 1, &out->value)) return llt_set_error(LLT_EINVAL, "steer %s: '%s' is not a number", node, star + 1);
            *star = '\0';
        }
        if (!*value) return llt_set_error(LLT_EINVAL, "steer %s: no vector file", node);
        if (strlen(value) >= sizeof(out->file)) return llt_set_error(LLT_EINVAL, "steer %s: the file name is too long", node);
        snprintf(out->file, sizeof(out->file), "%s", value);
    }
    if (kind == LLT_IV_PATCH) {
        if (!from || !*from) return llt_set_error(LLT_EINVAL, "patch %s: no dump to patch from (--from DUMP.gguf)", node);
        if (strlen(from) >= sizeof(out->file)) return llt_set_error(LLT_EINVAL, "patch %s: the file name is too long", node);
        snprintf(out->file, sizeof(out->file), "%s", from);
    }
    return LLT_OK;
}

// ---- JSON out ----------------------------------------------------------------------------

struct out { char * buf; size_t size, len; };

static void put(struct out * o, const char * fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct out * o, const char * fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    const int n = vsnprintf(o->len < o->size ? o->buf + o->len : NULL, o->len < o->size ? o->size - o->len : 0, fmt, ap);
    va_end(ap);
    if (n > 0) o->len += (size_t) n;
}

static void put_string(struct out * o, const char * s) {
    put(o, "\"");
    for (; *s; s++) {
        const unsigned char ch = (unsigned char) *s;
        if (ch == '"' || ch == '\\') put(o, "\\%c", ch);
        else if (ch < 0x20) put(o, "\\u%04x", ch);
        else put(o, "%c", ch);
    }
    put(o, "\"");
}

static void put_range(struct out * o, const char * key, int32_t first, int32_t last) {
    if (first == LLT_IV_ANY) return;
    if (first == last) put(o, ",\"%s\":%d", key, first);
    else put(o, ",\"%s\":[%d,%d]", key, first, last);
}

int llt_iv_format_json(const struct llt_intervention * iv, char * buf, size_t size) {
    struct out o = { buf, size, 0 };
    if (size > 0) buf[0] = '\0';
    put(&o, "{\"kind\":\"%s\",\"node\":", llt_iv_kind_name(iv->kind));
    put_string(&o, iv->node);
    if (iv->head != LLT_IV_ANY) put(&o, ",\"head\":%d", iv->head);
    put_range(&o, "pos", iv->pos_first, iv->pos_last);
    put_range(&o, "step", iv->step_first, iv->step_last);
    if (iv->layer != LLT_IV_ANY) put(&o, ",\"layer\":%d", iv->layer);
    if (iv->seq != LLT_IV_ANY) put(&o, ",\"seq\":%d", iv->seq);
    if (iv->op[0]) {
        put(&o, ",\"op\":");
        put_string(&o, iv->op);
    }
    if (iv->kind == LLT_IV_SCALE) put(&o, ",\"factor\":%.9g", iv->value);
    if (iv->kind == LLT_IV_SET) put(&o, ",\"value\":%.9g", iv->value);
    if (iv->kind == LLT_IV_ADD) {
        put(&o, ",\"vector\":");
        put_string(&o, iv->file);
        put(&o, ",\"alpha\":%.9g", iv->value);
    }
    if (iv->kind == LLT_IV_PATCH) {
        put(&o, ",\"from\":");
        put_string(&o, iv->file);
    }
    put(&o, "}");
    return (int) o.len;
}

int llt_iv_set_format_json(const struct llt_iv_set * set, char * buf, size_t size) {
    struct out o = { buf, size, 0 };
    if (size > 0) buf[0] = '\0';
    put(&o, "[");
    for (int i = 0; i < llt_iv_set_count(set); i++) {
        if (i) put(&o, ",");
        const int n = llt_iv_format_json(llt_iv_set_get(set, i), o.len < size ? buf + o.len : NULL, o.len < size ? size - o.len : 0);
        if (n > 0) o.len += (size_t) n;
    }
    put(&o, "]");
    return (int) o.len;
}

// ---- the spec file -----------------------------------------------------------------------
//
// {"interventions": [ {"kind": "ablate", "node": "kqv_out-0", "head": 1, "pos": [2, 5], ...}, ... ]}
// or the array alone. Keys: kind, node; head, pos, step, layer, seq (a number, pos and step
// also [first, last]), op; factor (scale), value (set), vector and alpha (add), from (patch).

struct parser {
    struct llt_json_in in; // core's JSON reader
    const char *       dir; // relative file names are taken from here; NULL: as they are
};

// a name or a path: one that does not fit is refused, never cut
static bool string(struct parser * ps, char * buf, size_t size) {
    size_t full;
    if (!llt_json_string(&ps->in, buf, size, &full)) return false;
    return full < size || llt_json_fail(&ps->in, "a string longer than %zu bytes", size - 1);
}

static bool number(struct parser * ps, double * out) {
    bool integer;
    return llt_json_number(&ps->in, out, &integer);
}

static bool whole(struct parser * ps, const char * key, int32_t * out) {
    double v;
    if (!number(ps, &v)) return false;
    if (v < 0 || v > INT32_MAX || v != floor(v)) return llt_json_fail(&ps->in, "\"%s\": want a whole number >= 0", key);
    *out = (int32_t) v;
    return true;
}

// N or [A, B]
static bool range(struct parser * ps, const char * key, int32_t * first, int32_t * last) {
    if (!llt_json_take(&ps->in, '[')) return whole(ps, key, first) && (*last = *first, true);
    if (!whole(ps, key, first) || !llt_json_expect(&ps->in, ',') || !whole(ps, key, last) || !llt_json_expect(&ps->in, ']')) return false;
    return *last >= *first || llt_json_fail(&ps->in, "\"%s\": [%d, %d] is an empty range", key, *first, *last);
}

// a file named in the spec: relative to the spec's folder
static bool file(struct parser * ps, char * out, size_t size) {
    char name[1024];
    if (!string(ps, name, sizeof(name))) return false;
    if (name[0] == '/' || !ps->dir || strcmp(ps->dir, ".") == 0) {
        snprintf(out, size, "%s", name);
    } else if ((size_t) snprintf(out, size, "%s/%s", ps->dir, name) >= size) {
        return llt_json_fail(&ps->in, "the file name '%s' is too long", name);
    }
    return true;
}

static bool item(struct parser * ps, struct llt_intervention * iv) {
    char key[32], kind[32] = "";
    bool has_node = false;
    *iv = llt_iv_default(LLT_IV_ABLATE, NULL);
    bool value_given = false;
    double v;
    if (!llt_json_expect(&ps->in, '{')) return false;
    if (llt_json_take(&ps->in, '}')) return llt_json_fail(&ps->in, "an intervention without \"kind\" and \"node\"");
    do {
        if (!string(ps, key, sizeof(key)) || !llt_json_expect(&ps->in, ':')) return false;
        if (strcmp(key, "kind") == 0)        { if (!string(ps, kind, sizeof(kind))) return false; }
        else if (strcmp(key, "node") == 0)   { if (!string(ps, iv->node, sizeof(iv->node))) return false; has_node = true; }
        else if (strcmp(key, "head") == 0)   { if (!whole(ps, key, &iv->head)) return false; }
        else if (strcmp(key, "layer") == 0)  { if (!whole(ps, key, &iv->layer)) return false; }
        else if (strcmp(key, "seq") == 0)    { if (!whole(ps, key, &iv->seq)) return false; }
        else if (strcmp(key, "pos") == 0)    { if (!range(ps, key, &iv->pos_first, &iv->pos_last)) return false; }
        else if (strcmp(key, "step") == 0)   { if (!range(ps, key, &iv->step_first, &iv->step_last)) return false; }
        else if (strcmp(key, "factor") == 0 || strcmp(key, "value") == 0 || strcmp(key, "alpha") == 0) {
            if (!number(ps, &v)) return false;
            if (fabs(v) > 3.0e38) return llt_json_fail(&ps->in, "\"%s\": out of range", key);
            iv->value = (float) v;
            value_given = true;
        }
        else if (strcmp(key, "vector") == 0 || strcmp(key, "from") == 0) { if (!file(ps, iv->file, sizeof(iv->file))) return false; }
        else if (strcmp(key, "op") == 0)     { if (!string(ps, iv->op, sizeof(iv->op))) return false; }
        else return llt_json_fail(&ps->in, "unknown key \"%s\"", key);
    } while (llt_json_take(&ps->in, ','));
    if (!llt_json_expect(&ps->in, '}')) return false;
    const int k = llt_iv_kind_from_name(kind);
    if (k < 0) return llt_json_fail(&ps->in, "\"kind\": '%s' is not ablate, scale, steer (add), patch or set", kind);
    if (!has_node) return llt_json_fail(&ps->in, "a %s without \"node\"", kind);
    iv->kind = (enum llt_iv_kind) k;
    if (!value_given && k == LLT_IV_ADD) iv->value = 1.0f;
    if (!value_given && (k == LLT_IV_SCALE || k == LLT_IV_SET)) return llt_json_fail(&ps->in, "%s %s: no \"%s\"", kind, iv->node, k == LLT_IV_SCALE ? "factor" : "value");
    return true;
}

int llt_iv_set_add_json_text(struct llt_iv_set * set, const char * text, const char * dir, const char * what) {
    struct parser ps = { .in = { .s = text, .p = text }, .dir = dir };
    int rc = LLT_OK;
    bool ok = true, wrapped = false;
    if (llt_json_take(&ps.in, '{')) {
        char key[32];
        wrapped = true;
        ok = string(&ps, key, sizeof(key)) && (strcmp(key, "interventions") == 0 || llt_json_fail(&ps.in, "unknown key \"%s\"", key)) &&
             llt_json_expect(&ps.in, ':');
    }
    ok = ok && llt_json_expect(&ps.in, '[');
    int32_t n_added = 0;
    if (ok && !llt_json_take(&ps.in, ']')) {
        do {
            struct llt_intervention iv;
            ok = item(&ps, &iv);
            if (ok && (rc = llt_iv_set_add(set, &iv)) != LLT_OK) break;
            n_added += ok;
        } while (ok && llt_json_take(&ps.in, ','));
        ok = ok && rc == LLT_OK && llt_json_expect(&ps.in, ']');
    }
    if (ok && wrapped) ok = llt_json_expect(&ps.in, '}');
    ok = ok && llt_json_at_end(&ps.in);
    if (rc != LLT_OK) {
        char why[300];
        snprintf(why, sizeof(why), "%s", llt_last_error());
        return llt_set_error(rc, "%s: %s", what, why);
    }
    if (!ok) return llt_set_error(LLT_EINVAL, "%s: %s (at byte %zu)", what, ps.in.err, ps.in.at);
    if (n_added == 0) return llt_set_error(LLT_EINVAL, "%s: no interventions", what);
    return LLT_OK;
}

int llt_iv_set_add_json(struct llt_iv_set * set, const char * path) {
    int rc = llt_input_check(path, "intervention spec");
    if (rc != LLT_OK) return rc;
    char * text = llt_read_text(path, "intervention spec");
    if (!text) return LLT_EIO;
    char dir[1024], what[1100];
    llt_path_dir(path, dir, sizeof(dir));
    snprintf(what, sizeof(what), "intervention spec '%s'", path);
    rc = llt_iv_set_add_json_text(set, text, dir, what);
    free(text);
    return rc;
}
