// What lltrace exec traces, from the LLTRACE_* variables of the environment (lltrace/exec.h
// lists them): read once by the engine in the traced program, and by `lltrace exec` itself
// to refuse a bad option before the program starts.
#include "lltrace/exec.h"
#include "core/internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

// a set variable, or NULL when unset or empty
static const char * var(const char * name) {
    const char * v = getenv(name);
    return v && *v ? v : NULL;
}

static int bad(const char * name, const char * v, const char * why) {
    return llt_set_error(LLT_EINVAL, "%s='%s': %s", name, v, why);
}

static int int_var(const char * name, int64_t lo, int64_t hi, int32_t * out) {
    const char * v = var(name);
    if (!v) return LLT_OK;
    char * end;
    errno = 0;
    const long long x = strtoll(v, &end, 10);
    if (errno || *end || end == v || x < lo || x > hi) return bad(name, v, "not a whole number in range");
    *out = (int32_t) x;
    return LLT_OK;
}

static int real_var(const char * name, double * out) {
    const char * v = var(name);
    if (!v) return LLT_OK;
    char * end;
    const double x = strtod(v, &end);
    if (*end || end == v || !(x >= 0) || x > 1e30) return bad(name, v, "not a number >= 0");
    *out = x;
    return LLT_OK;
}

static int bool_var(const char * name, bool * out) {
    const char * v = var(name);
    if (!v) return LLT_OK;
    if (strcmp(v, "1") != 0 && strcmp(v, "0") != 0) return bad(name, v, "not 0 or 1");
    *out = v[0] == '1';
    return LLT_OK;
}

// N or A-B
static int range_var(const char * name, int32_t * first, int32_t * last) {
    const char * v = var(name);
    if (!v) return LLT_OK;
    char * end;
    errno = 0;
    const long a = strtol(v, &end, 10);
    long b = a;
    if (*end == '-') b = strtol(end + 1, &end, 10);
    if (errno || *end || end == v || a < 0 || b < a || b > INT32_MAX) return bad(name, v, "not N or A-B with A <= B");
    *first = (int32_t) a;
    *last = (int32_t) b;
    return LLT_OK;
}

// one of names[n], by index
static int choice_var(const char * name, const char * const * names, int n, int * out) {
    const char * v = var(name);
    if (!v) return LLT_OK;
    for (int i = 0; i < n; i++) {
        if (strcmp(v, names[i]) == 0) { *out = i; return LLT_OK; }
    }
    return bad(name, v, "not a known value");
}

static int dump_patterns(struct llt_exec_config * c) {
    const char * v = var("LLTRACE_DUMP");
    if (!v) return LLT_OK;
    int n = 0;
    for (const char * p = v; *p;) {
        while (*p == ' ' || *p == '\t' || *p == '\n') p++;
        if (!*p) break;
        size_t len = strcspn(p, " \t\n");
        if (n == LLT_EXEC_MAX_DUMP) return bad("LLTRACE_DUMP", v, "more than 64 patterns");
        if (!(c->dump_patterns[n] = strndup(p, len))) return llt_set_error(LLT_ENOMEM, "out of memory");
        if (llt_pattern_check(c->dump_patterns[n]) != LLT_OK) {
            char why[300];
            snprintf(why, sizeof(why), "%s", llt_last_error());
            return llt_set_error(LLT_EINVAL, "LLTRACE_DUMP: %s", why);
        }
        n++;
        p += len;
    }
    c->tracer.values.dump = n > 0 ? (const char * const *) c->dump_patterns : NULL;
    return LLT_OK;
}

int llt_exec_config_from_env(struct llt_exec_config ** out) {
    *out = NULL;
    struct llt_exec_config * c = calloc(1, sizeof(*c));
    if (!c) return llt_set_error(LLT_ENOMEM, "out of memory");
    c->tracer = llt_tracer_default_params();
    struct llt_values_params * vp = &c->tracer.values;

    const char * output = var("LLTRACE_OUTPUT") ? var("LLTRACE_OUTPUT") : "lltrace.db";
    int rc = (c->output = llt_abs_path(output)) ? LLT_OK : llt_set_error(LLT_ENOMEM, "out of memory");

    const char * const levels[] = { "graph", "timing", "profile", "values" };
    const char * const types[] = { [LLT_DUMP_NATIVE] = "native", [LLT_DUMP_F32] = "f32", [LLT_DUMP_F16] = "f16" };
    const char * const nan[] = { "report", "stop" };
    int level = LLT_LEVEL_GRAPH, type = LLT_DUMP_NATIVE, on_nan = -1;
    if (rc == LLT_OK) rc = choice_var("LLTRACE_LEVEL", levels, 4, &level);
    if (rc == LLT_OK) rc = dump_patterns(c);
    if (rc == LLT_OK) rc = int_var("LLTRACE_DUMP_LAYER", 0, 100000, &vp->dump_layer);
    if (rc == LLT_OK) rc = range_var("LLTRACE_DUMP_STEP", &vp->dump_step_first, &vp->dump_step_last);
    if (rc == LLT_OK) rc = bool_var("LLTRACE_DUMP_SOURCES", &vp->dump_sources);
    if (rc == LLT_OK) rc = choice_var("LLTRACE_DUMP_TYPE", types, 3, &type);
    if (rc == LLT_OK) rc = bool_var("LLTRACE_CHECKPOINTS", &vp->checkpoints);
    if (rc == LLT_OK) rc = int_var("LLTRACE_LAYER", 0, 100000, &vp->checkpoint_layer);
    if (rc == LLT_OK) rc = choice_var("LLTRACE_BREAK_ON_NAN", nan, 2, &on_nan);
    if (rc == LLT_OK) rc = real_var("LLTRACE_TOLERANCE_ABS", &vp->tol_abs);
    if (rc == LLT_OK) rc = real_var("LLTRACE_TOLERANCE_REL", &vp->tol_rel);
    if (rc == LLT_OK) rc = int_var("LLTRACE_PARITY_TOP_K", 0, LLT_PARITY_MAX_K, &c->tracer.parity_top_k);
    if (rc == LLT_OK && var("LLTRACE_REFERENCE")) {
        if (!(c->reference = llt_abs_path(var("LLTRACE_REFERENCE")))) {
            rc = llt_set_error(LLT_ENOMEM, "out of memory");
        } else {
            rc = llt_input_check(c->reference, "LLTRACE_REFERENCE");
            vp->reference = c->reference;
        }
    }
    if (rc == LLT_OK && var("LLTRACE_DEBUG") && !(c->debug_socket = llt_abs_path(var("LLTRACE_DEBUG")))) {
        rc = llt_set_error(LLT_ENOMEM, "out of memory");
    }
    if (rc == LLT_OK && var("LLTRACE_INTERVENE")) {
        rc = llt_iv_set_init(&c->interventions);
        if (rc == LLT_OK) rc = llt_iv_set_add_json_text(c->interventions, var("LLTRACE_INTERVENE"), NULL, "LLTRACE_INTERVENE");
        c->tracer.interventions = c->interventions;
    }
    if (rc != LLT_OK) {
        llt_exec_config_free(c);
        return rc;
    }
    c->tracer.level = (enum llt_level) level;
    vp->dump_type = type;
    vp->break_on_nan = on_nan >= 0;
    vp->nan_report_only = on_nan == 0;
    c->stop_on_nan = on_nan == 1;
    *out = c;
    return LLT_OK;
}

void llt_exec_config_free(struct llt_exec_config * c) {
    if (!c) return;
    for (int i = 0; i < LLT_EXEC_MAX_DUMP; i++) free(c->dump_patterns[i]);
    free(c->reference);
    free(c->debug_socket);
    llt_iv_set_free(c->interventions);
    free(c->output);
    free(c);
}
