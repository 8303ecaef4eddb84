// Replies: one line each, built field by field. JSON: one object whose "reply" names the kind
// (docs/debugging.md lists them); text: the kind, then "key value" pairs, for people.
#include "debug/debug.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

// values shown in text before "..."; JSON has them all
#define TEXT_VALUES 16

void reply_begin(struct reply * r, struct llt_debug * d, const char * kind) {
    *r = (struct reply) { .d = d, .json = d->json, .first = true };
    r->f = open_memstream(&r->buf, &r->size);
    if (!r->f) return; // out of memory: this reply is lost, the session goes on
    if (r->json) fprintf(r->f, "{\"reply\":\"%s\"", kind);
    else fputs(kind, r->f);
}

static void key(struct reply * r, const char * k) {
    if (r->json) {
        fprintf(r->f, ",\"%s\":", k);
    } else {
        fputs(r->first ? ": " : ", ", r->f);
        if (strcmp(k, "message") != 0 && strcmp(k, "how") != 0) fprintf(r->f, "%s ", k); // said by the value itself
    }
    r->first = false;
}

static void number(FILE * f, double v, bool json) {
    if (isfinite(v)) fprintf(f, "%.9g", v);
    else fputs(json ? "null" : isnan(v) ? "nan" : v > 0 ? "inf" : "-inf", f);
}

void reply_str(struct reply * r, const char * k, const char * v) {
    if (!r->f) return;
    key(r, k);
    if (r->json) llt_json_write_string(r->f, v ? v : "");
    else fputs(v ? v : "", r->f);
}

void reply_int(struct reply * r, const char * k, int64_t v) {
    if (!r->f) return;
    key(r, k);
    fprintf(r->f, "%lld", (long long) v);
}

void reply_num(struct reply * r, const char * k, double v) {
    if (!r->f) return;
    key(r, k);
    number(r->f, v, r->json);
}

void reply_bool(struct reply * r, const char * k, bool v) {
    if (!r->f) return;
    key(r, k);
    fputs(v ? "true" : "false", r->f);
}

// the shape, innermost first, trailing 1s dropped (at least one dimension)
void reply_ne(struct reply * r, const char * k, const int64_t * ne) {
    if (!r->f) return;
    key(r, k);
    int n = 4;
    while (n > 1 && ne[n - 1] == 1) n--;
    fputc('[', r->f);
    for (int i = 0; i < n; i++) fprintf(r->f, "%s%lld", i ? ", " : "", (long long) ne[i]);
    fputc(']', r->f);
}

void reply_stats(struct reply * r, const struct llt_stats * st) {
    if (!r->f) return;
    key(r, "stats");
    if (r->json) {
        fprintf(r->f, "{\"n\":%lld,\"nan\":%lld,\"inf\":%lld,\"zero\":%lld,\"min\":", (long long) st->n,
                (long long) st->n_nan, (long long) (st->n_pinf + st->n_ninf), (long long) st->n_zero);
        number(r->f, st->min, true);
        fputs(",\"max\":", r->f);
        number(r->f, st->max, true);
        fputs(",\"mean\":", r->f);
        number(r->f, st->mean, true);
        fputs(",\"std\":", r->f);
        number(r->f, st->std, true);
        fputs(",\"absmax\":", r->f);
        number(r->f, st->absmax, true);
        fputc('}', r->f);
    } else {
        fprintf(r->f, "n %lld min %.6g max %.6g mean %.6g std %.6g absmax %.6g nan %lld inf %lld zero %lld",
                (long long) st->n, st->min, st->max, st->mean, st->std, st->absmax, (long long) st->n_nan,
                (long long) (st->n_pinf + st->n_ninf), (long long) st->n_zero);
    }
}

void reply_floats(struct reply * r, const char * k, const float * v, int64_t n) {
    if (!r->f) return;
    key(r, k);
    const int64_t shown = r->json || n <= TEXT_VALUES ? n : TEXT_VALUES;
    fputc('[', r->f);
    for (int64_t i = 0; i < shown; i++) {
        if (i) fputs(r->json ? "," : ", ", r->f);
        number(r->f, v[i], r->json);
    }
    if (shown < n) fprintf(r->f, ", ... %lld more", (long long) (n - shown));
    fputc(']', r->f);
}

void reply_node(struct reply * r, const struct llt_node_view * v) {
    reply_int(r, "step", v->step);
    reply_str(r, "node", v->t->name);
    reply_int(r, "index", v->idx);
    reply_str(r, "op", v->op);
    reply_int(r, "layer", v->layer);
    reply_ne(r, "ne", v->t->ne);
    reply_str(r, "type", ggml_type_name(v->t->type));
    reply_str(r, "device", v->device);
    reply_int(r, "pos", v->pos0);
    reply_int(r, "n_tokens", v->n_tokens);
}

void reply_text(struct reply * r, const char * fmt, ...) {
    if (!r->f || r->json) return;
    va_list ap;
    va_start(ap, fmt);
    fputs(r->first ? ": " : ", ", r->f);
    vfprintf(r->f, fmt, ap);
    va_end(ap);
    r->first = false;
}

void reply_end(struct reply * r) {
    if (!r->f) return;
    if (r->json) fputc('}', r->f);
    const bool ok = fclose(r->f) == 0;
    if (ok && r->d->io.reply) r->d->io.reply(r->buf, r->d->io.user_data);
    free(r->buf);
    r->f = NULL;
}

void reply_error(struct llt_debug * d, const char * fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    struct reply r;
    reply_begin(&r, d, "error");
    reply_str(&r, "message", msg);
    reply_end(&r);
}
