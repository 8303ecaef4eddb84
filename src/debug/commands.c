// The debugger's commands: one line each, parsed, run and answered with one reply (the syntax
// is in docs/debugging.md, "Breakpoints and step-through"). Runs with the debugger's lock held.
#include "debug/debug.h"

#include <ctype.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_WORDS 16

// ---- words -------------------------------------------------------------------------------

// Splits line into words at spaces: '...' and "..." quote a word with spaces (a node named
// "Kcur-0 (view)"), [...] is one word (a slice). Returns the count, -1 on a bad line.
static int split_words(char * line, char ** w) {
    int n = 0;
    char * p = line;
    for (;;) {
        while (isspace((unsigned char) *p)) *p++ = '\0';
        if (!*p || *p == '#') return n;
        if (n == MAX_WORDS) return -1;
        char close = *p == '\'' || *p == '"' ? *p : *p == '[' ? ']' : '\0';
        if (close == '\'' || close == '"') {
            w[n++] = ++p;
            p = strchr(p, close);
            if (!p) return -1;
            *p++ = '\0';
        } else {
            w[n++] = p;
            if (close) p = strchr(p, close);
            if (!p) return -1;
            while (*p && !isspace((unsigned char) *p)) p++;
        }
    }
}

// ---- break and watch ---------------------------------------------------------------------

static bool known_op(const char * name) {
    for (int i = 0; i < GGML_OP_COUNT; i++) if (strcasecmp(name, ggml_op_name((enum ggml_op) i)) == 0) return true;
    for (int i = 0; i < GGML_UNARY_OP_COUNT; i++) if (strcasecmp(name, ggml_unary_op_name((enum ggml_unary_op) i)) == 0) return true;
    for (int i = 0; i < GGML_GLU_OP_COUNT; i++) if (strcasecmp(name, ggml_glu_op_name((enum ggml_glu_op) i)) == 0) return true;
    return false;
}

static bool parse_int(const char * s, int64_t lo, int64_t * out) {
    char * end;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end || v < lo) return false;
    *out = v;
    return true;
}

// "[GLOB] [op:OP] [layer:L] [step:S] [seq:N] [if nan | if absmax>X]" into bp
static int parse_spec(char ** w, int n, bool watch, struct breakpoint * bp) {
    *bp = (struct breakpoint) { .watch = watch, .layer = -1, .seq = -1, .step = -1 };
    int64_t v;
    for (int i = 0; i < n; i++) {
        const char * a = w[i];
        if (strcmp(a, "if") == 0 && !watch) {
            const char * c = i + 1 < n ? w[++i] : "";
            if (strcmp(c, "nan") == 0) { bp->cond = COND_NAN; continue; }
            char joined[64];
            snprintf(joined, sizeof(joined), "%s%s%s", c, i + 1 < n && w[i + 1][0] == '>' ? w[i + 1] : "",
                     i + 2 < n && strcmp(w[i + 1], ">") == 0 ? w[i + 2] : "");
            if (i + 1 < n && w[i + 1][0] == '>') i += strcmp(w[i + 1], ">") == 0 && i + 2 < n ? 2 : 1;
            char * end;
            if (strncmp(joined, "absmax>", 7) == 0 && (bp->absmax = strtod(joined + 7, &end), end > joined + 7 && !*end)) {
                bp->cond = COND_ABSMAX;
                continue;
            }
            return llt_set_error(LLT_EINVAL, "unknown condition 'if %s' (if nan, if absmax>X)", c);
        }
        if (strncmp(a, "op:", 3) == 0) {
            if (!known_op(a + 3)) return llt_set_error(LLT_EINVAL, "unknown op '%s' (ggml's names: MUL_MAT, SOFT_MAX, ...)", a + 3);
            snprintf(bp->op, sizeof(bp->op), "%s", a + 3);
        } else if (strncmp(a, "layer:", 6) == 0) {
            if (!parse_int(a + 6, 0, &v) || v > INT32_MAX) return llt_set_error(LLT_EINVAL, "bad layer '%s'", a + 6);
            bp->layer = (int32_t) v;
        } else if (strncmp(a, "step:", 5) == 0) {
            if (!parse_int(a + 5, 0, &v)) return llt_set_error(LLT_EINVAL, "bad step '%s'", a + 5);
            bp->step = v;
        } else if (strncmp(a, "seq:", 4) == 0) {
            if (!parse_int(a + 4, 0, &v) || v > INT32_MAX) return llt_set_error(LLT_EINVAL, "bad sequence '%s'", a + 4);
            bp->seq = (int32_t) v;
        } else if (!bp->glob) {
            if (!(bp->glob = strdup(a))) return llt_set_error(LLT_ENOMEM, "out of memory");
        } else {
            return llt_set_error(LLT_EINVAL, "'%s': one node pattern per breakpoint, then conditions (op:, layer:, step:, "
                                 "seq:, if ...)", a);
        }
    }
    if (!bp->glob && !bp->op[0] && bp->layer < 0 && bp->step < 0 && bp->seq < 0 && bp->cond == COND_NONE) {
        return llt_set_error(LLT_EINVAL, "%s what? a node pattern and/or op:OP layer:L step:S seq:N%s", watch ? "watch" : "break",
                             watch ? "" : " if nan | if absmax>X");
    }
    size_t len = 0;
    for (int i = 0; i < n && len < sizeof(bp->text); i++) {
        len += (size_t) snprintf(bp->text + len, sizeof(bp->text) - len, "%s%s", i ? " " : "", w[i]);
    }
    return LLT_OK;
}

// the node names of attention's scores and probabilities glob could match (in any of the first
// 1024 layers), which exist only without flash attention; NULL if none
static const char * attention_node(const char * glob) {
    static const char * const names[] = { "kq", "kq_soft_max", "kqv" };
    static char name[GGML_MAX_NAME];
    for (int k = 0; k < 3; k++) {
        for (int l = 0; l < 1024; l++) {
            snprintf(name, sizeof(name), "%s-%d", names[k], l);
            if (fnmatch(glob, name, 0) == 0) return name;
        }
    }
    return NULL;
}

static void cmd_break(struct llt_debug * d, char ** w, int n, bool watch) {
    struct breakpoint bp;
    if (parse_spec(w, n, watch, &bp) != LLT_OK) {
        free(bp.glob);
        reply_error(d, "%s", llt_last_error());
        return;
    }
    const char * attn = d->flash_attn && bp.glob ? attention_node(bp.glob) : NULL;
    if (attn) {
        reply_error(d, "%s: this run computes attention with flash attention, where %s does not exist (-fa off)", bp.glob, attn);
        free(bp.glob);
        return;
    }
    if (!llt_grow((void **) &d->bps, &d->cap_bps, d->n_bps + 1, sizeof(*d->bps))) {
        free(bp.glob);
        reply_error(d, "out of memory");
        return;
    }
    bp.id = d->next_id++;
    d->bps[d->n_bps++] = bp;
    llt_dbg_rearm(d);
    struct reply r;
    reply_begin(&r, d, watch ? "watch" : "break");
    reply_int(&r, "id", bp.id);
    reply_str(&r, "spec", bp.text);
    reply_end(&r);
}

static void cmd_delete(struct llt_debug * d, char ** w, int n) {
    int64_t ids[MAX_WORDS];
    for (int i = 0; i < n; i++) {
        if (!parse_int(w[i], 1, &ids[i])) { reply_error(d, "delete: '%s' is not a breakpoint number", w[i]); return; }
        bool found = false;
        for (int32_t k = 0; k < d->n_bps; k++) found |= d->bps[k].id == ids[i];
        if (!found) { reply_error(d, "delete: no breakpoint %lld", (long long) ids[i]); return; }
    }
    int32_t kept = 0, gone = 0;
    for (int32_t k = 0; k < d->n_bps; k++) {
        bool del = n == 0;
        for (int i = 0; i < n; i++) del |= d->bps[k].id == ids[i];
        if (del) { free(d->bps[k].glob); gone++; } else d->bps[kept++] = d->bps[k];
    }
    d->n_bps = kept;
    llt_dbg_rearm(d);
    struct reply r;
    reply_begin(&r, d, "delete");
    reply_int(&r, "deleted", gone);
    reply_end(&r);
}

static void cmd_info(struct llt_debug * d, char ** w, int n) {
    if (n != 1 || (strcmp(w[0], "breakpoints") != 0 && strcmp(w[0], "b") != 0)) {
        reply_error(d, "info what? info breakpoints");
        return;
    }
    struct reply r;
    reply_begin(&r, d, "breakpoints");
    if (r.f && r.json) {
        fputs(",\"breakpoints\":[", r.f);
        for (int32_t k = 0; k < d->n_bps; k++) {
            fprintf(r.f, "%s{\"id\":%d,\"kind\":\"%s\",\"spec\":", k ? "," : "", d->bps[k].id, d->bps[k].watch ? "watch" : "break");
            llt_json_write_string(r.f, d->bps[k].text);
            fprintf(r.f, ",\"hits\":%lld}", (long long) d->bps[k].hits);
        }
        fputc(']', r.f);
    }
    if (d->n_bps == 0) reply_text(&r, "none");
    for (int32_t k = 0; k < d->n_bps; k++) {
        reply_text(&r, "%d %s %s (hit %lld)", d->bps[k].id, d->bps[k].watch ? "watch" : "break", d->bps[k].text,
                   (long long) d->bps[k].hits);
    }
    reply_end(&r);
}

// ---- running -----------------------------------------------------------------------------

static void running(struct llt_debug * d, const char * how, enum dbg_mode mode) {
    if (d->exited) { reply_error(d, "the program has exited"); return; }
    struct reply r;
    reply_begin(&r, d, "running");
    reply_str(&r, "how", how);
    reply_end(&r);
    d->started = true;
    llt_dbg_resume(d, mode);
}

static void cmd_step(struct llt_debug * d, char ** w, int n) {
    if (n == 1 && strcmp(w[0], "layer") == 0) running(d, "step layer", MODE_LAYER);
    else if (n == 1 && strcmp(w[0], "token") == 0) running(d, "step token", MODE_TOKEN);
    else reply_error(d, "step what? step layer (the next layer's first node), step token (the next decode's first node)");
}

// ---- looking -----------------------------------------------------------------------------

static bool need_pause(struct llt_debug * d, const char * what) {
    if (d->paused && !d->resumed) return true;
    reply_error(d, "%s: the program is %s", what, d->exited ? "over" : d->started ? "running, not paused" : "not running yet");
    return false;
}

static void cmd_where(struct llt_debug * d) {
    if (!need_pause(d, "where")) return;
    struct reply r;
    reply_begin(&r, d, "where");
    if (d->stop_bp > 0) reply_int(&r, "breakpoint", d->stop_bp);
    reply_node(&r, &d->cur);
    reply_end(&r);
}

// print [NODE] [SLICE] [stats]
static void cmd_print(struct llt_debug * d, char ** w, int n) {
    if (!need_pause(d, "print")) return;
    const char * name = NULL, * slice = "";
    bool stats = false;
    for (int i = 0; i < n; i++) {
        if (w[i][0] == '[') slice = w[i];
        else if (strcmp(w[i], "stats") == 0 && i == n - 1) stats = true; // (a node named so: quote it, "'stats'")
        else if (!name) name = w[i];
        else { reply_error(d, "print: '%s'? print [NODE] [SLICE] [stats]", w[i]); return; }
    }
    struct llt_node_view v;
    struct dbg_values vals = {0};
    if (llt_dbg_find_node(d, name, &v) != LLT_OK || llt_dbg_read(v.t, slice, &vals) != LLT_OK) {
        reply_error(d, "print: %s", llt_last_error());
        return;
    }
    const int64_t count = vals.ne[0] * vals.ne[1] * vals.ne[2] * vals.ne[3];
    struct reply r;
    reply_begin(&r, d, "print");
    reply_str(&r, "node", v.t->name);
    reply_int(&r, "step", v.step);
    reply_int(&r, "index", v.idx);
    reply_ne(&r, "ne", vals.ne);
    if (*slice) reply_str(&r, "slice", slice);
    struct llt_stats st;
    if (stats && llt_stats_compute(vals.v, GGML_TYPE_F32, count, &st) == LLT_OK) reply_stats(&r, &st);
    else reply_floats(&r, "values", vals.v, count);
    reply_end(&r);
    free(vals.v);
}

// ---- changing the paused node ------------------------------------------------------------

// zero [SEL...], scale F [SEL...], set V [SEL...], add FILE.npy[*ALPHA] [SEL...]: an intervention
// (lltrace/intervene.h) on the paused node, made once, now; SEL as in --ablate (head=H, pos=P)
static void cmd_change(struct llt_debug * d, enum llt_iv_kind kind, const char * cmd, char ** w, int n) {
    if (!need_pause(d, cmd)) return;
    const bool valued = kind != LLT_IV_ABLATE;
    if (valued && n < 1) { reply_error(d, "%s what? %s %s [head=H] [pos=P]", cmd, cmd, kind == LLT_IV_ADD ? "FILE.npy[*ALPHA]" : "X"); return; }
    char text[1400];
    size_t len = (size_t) snprintf(text, sizeof(text), "%s%s%s", d->cur.t->name, valued ? "=" : "", valued ? w[0] : "");
    for (int i = valued ? 1 : 0; i < n && len < sizeof(text); i++) len += (size_t) snprintf(text + len, sizeof(text) - len, ":%s", w[i]);
    struct llt_intervention iv;
    int64_t changed = -1;
    if ((d->ivs || llt_iv_set_init(&d->ivs) == LLT_OK) && llt_iv_parse(kind, text, NULL, &iv) == LLT_OK) {
        // this node exactly, this step: its name is no pattern here
        iv.step_first = iv.step_last = (int32_t) d->cur.step;
        if (llt_iv_set_add(d->ivs, &iv) == LLT_OK) {
            changed = llt_tracer_apply_now(d->cur.tracer, d->ivs, llt_iv_set_count(d->ivs) - 1, d->cur.t);
        }
    }
    if (changed < 0) { reply_error(d, "%s: %s", cmd, llt_last_error()); return; }
    struct reply r;
    reply_begin(&r, d, "changed");
    reply_str(&r, "kind", cmd);
    reply_str(&r, "node", d->cur.t->name);
    reply_int(&r, "step", d->cur.step);
    reply_int(&r, "elements", changed);
    reply_end(&r);
}

// ---- the table ---------------------------------------------------------------------------

void llt_dbg_run_line(struct llt_debug * d, const char * line) {
    char buf[1024];
    char * w[MAX_WORDS];
    snprintf(buf, sizeof(buf), "%s", line);
    const int n = split_words(buf, w);
    if (n < 0) { reply_error(d, "cannot read '%s': an unclosed quote or bracket, or more than %d words", line, MAX_WORDS); return; }
    if (n == 0) return; // an empty line or a comment
    const char * c = w[0];
    char ** args = w + 1;
    const int na = n - 1;
#define IS(a, b) (strcmp(c, a) == 0 || strcmp(c, b) == 0)
    if (IS("break", "b"))              cmd_break(d, args, na, false);
    else if (strcmp(c, "watch") == 0)  cmd_break(d, args, na, true);
    else if (IS("delete", "d"))        cmd_delete(d, args, na);
    else if (strcmp(c, "info") == 0)   cmd_info(d, args, na);
    else if (IS("run", "r") || IS("continue", "c")) running(d, "continue", MODE_RUN);
    else if (IS("next", "n"))          running(d, "next", MODE_NEXT);
    else if (IS("step", "s"))          cmd_step(d, args, na);
    else if (strcmp(c, "where") == 0)  cmd_where(d);
    else if (IS("print", "p"))         cmd_print(d, args, na);
    else if (strcmp(c, "zero") == 0)   cmd_change(d, LLT_IV_ABLATE, c, args, na);
    else if (strcmp(c, "scale") == 0)  cmd_change(d, LLT_IV_SCALE, c, args, na);
    else if (strcmp(c, "add") == 0)    cmd_change(d, LLT_IV_ADD, c, args, na);
    else if (strcmp(c, "set") == 0)    cmd_change(d, LLT_IV_SET, c, args, na);
    else if (strcmp(c, "format") == 0 && na == 1 && (strcmp(args[0], "json") == 0 || strcmp(args[0], "text") == 0)) {
        d->json = strcmp(args[0], "json") == 0;
        struct reply r;
        reply_begin(&r, d, "format");
        reply_str(&r, "format", args[0]);
        reply_end(&r);
    }
    else if (strcmp(c, "wait") == 0 && na == 1 && (strcmp(args[0], "on") == 0 || strcmp(args[0], "off") == 0)) {
        d->no_wait = strcmp(args[0], "off") == 0;
        struct reply r;
        reply_begin(&r, d, "wait");
        reply_str(&r, "wait", args[0]);
        reply_end(&r);
    }
    else if (IS("quit", "q")) {
        struct reply r;
        reply_begin(&r, d, "quit");
        reply_end(&r);
        d->quit = true;
        llt_dbg_resume(d, MODE_QUIT);
    }
    else reply_error(d, "unknown command '%s' (break, watch, delete, info breakpoints, run, continue, next, step layer, "
                     "step token, where, print, zero, scale, add, set, format, quit)", c);
#undef IS
}
