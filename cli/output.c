// The output engine: sections of typed values as a table, CSV or JSON (output.h).
#include "output.h"
#include "cli.h"
#include "lltrace.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static const char * const format_names[] = { [OUT_TABLE] = "table", [OUT_CSV] = "csv", [OUT_JSON] = "json" };

bool out_parse_format(const char * flag, const char * s, enum out_format * out) {
    int k;
    if (!cli_parse_choice(flag, s, format_names, OUT_FORMAT_COUNT, &k)) return false;
    *out = (enum out_format) k;
    return true;
}

struct out_val out_null(void)           { return (struct out_val) { .type = OV_NULL }; }
struct out_val out_int(int64_t v)       { return (struct out_val) { .type = OV_INT, .i = v, .d = (double) v }; }
struct out_val out_real(double v)       { return (struct out_val) { .type = OV_REAL, .d = v }; }
struct out_val out_text(const char * s) { return s ? (struct out_val) { .type = OV_TEXT, .s = s } : out_null(); }
struct out_val out_bool(bool v)         { return (struct out_val) { .type = OV_BOOL, .i = v }; }
struct out_val out_floats(const float * v, int64_t n) { return (struct out_val) { .type = OV_FLOATS, .f = v, .i = n }; }
struct out_val out_shape(const int64_t ne[4]) {
    struct out_val v = { .type = OV_SHAPE };
    memcpy(v.ne, ne, sizeof(v.ne));
    return v;
}

struct out {
    FILE *                 f;
    enum out_format        format;
    int                    n_sections;  // begun so far
    int                    n_lists;     // csv: lists begun so far
    bool                   failed;      // out of memory
    // the open section
    const char *           title;
    const struct out_col * cols;
    int                    n_cols;
    unsigned               flags;
    int64_t                n_rows;
    bool                   after_record; // table: the last section was a record
    char **                cells;        // table: n_rows * n_cols texts
    int64_t                cap;
};

struct out * out_open(FILE * f, enum out_format format) {
    struct out * o = calloc(1, sizeof(*o));
    if (!o) return NULL;
    o->f = f;
    o->format = format;
    if (format == OUT_JSON) fputc('{', f);
    return o;
}

void out_note(struct out * o, const char * fmt, ...) {
    if (o->format != OUT_TABLE) return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(o->f, fmt, ap);
    va_end(ap);
    fputc('\n', o->f);
}

static bool shown(const struct out * o, const struct out_col * c) {
    return !(c->where & (1 << o->format));
}

// ---- values as text ----------------------------------------------------------------------

static void scaled(double v, double base, const char * const * units, int n_units, const char * fmt0, char * buf, size_t size) {
    int u = 0;
    while (fabs(v) >= base && u < n_units - 1) {
        v /= base;
        u++;
    }
    if (u == 0) snprintf(buf, size, fmt0, v, units[0]);
    else        snprintf(buf, size, "%.1f %s", v, units[u]);
}

// free text on one short line: control characters escaped, cut at max_width columns
static void one_line(const char * s, size_t max_width, char * buf, size_t size) {
    size_t n = 0, width = 0;
    buf[n++] = '"';
    for (; *s && n + 8 < size; s++) {
        unsigned char ch = (unsigned char) *s;
        if ((ch & 0xC0) != 0x80 && width++ == max_width) {
            n += (size_t) snprintf(buf + n, size - n, "…");
            break;
        }
        if (ch == '\n' || ch == '\t' || ch == '\r') {
            buf[n++] = '\\';
            buf[n++] = ch == '\n' ? 'n' : ch == '\t' ? 't' : 'r';
        } else {
            buf[n++] = ch < 0x20 ? '?' : (char) ch;
        }
    }
    buf[n++] = '"';
    buf[n] = '\0';
}

static void shape_text(const int64_t ne[4], bool json, char * buf, size_t size) {
    int n = 4;
    while (n > 1 && ne[n - 1] == 1) n--;
    size_t len = (size_t) snprintf(buf, size, "[");
    for (int d = 0; d < n && len < size; d++) {
        len += (size_t) snprintf(buf + len, size - len, "%s%lld", d ? (json ? "," : ", ") : "", (long long) ne[d]);
    }
    if (len < size) snprintf(buf + len, size - len, "]");
}

static const char * number_text(const struct out_col * c, bool table, const struct out_val * v, char * buf, size_t size);

// numbers space-separated as a table shows them (csv and json write them whole: floats_write)
static void floats_text(const struct out_val * v, char * buf, size_t size) {
    size_t n = 0;
    buf[0] = '\0';
    for (int64_t k = 0; k < v->i && n < size; k++) n += (size_t) snprintf(buf + n, size - n, "%s%.6g", k ? " " : "", v->f[k]);
    if (n >= size && size > 4) snprintf(buf + size - 4, 4, "…"); // cut: the table's cell is full
}

// A value as text for a table (human units) or exactly (csv, json). Returns the value's own
// text or buf.
static const char * val_text(const struct out * o, const struct out_col * c, const struct out_val * v, char * buf, size_t size) {
    const bool table = o->format == OUT_TABLE;
    switch (v->type) {
        case OV_NULL:  return table ? "-" : "";
        case OV_BOOL:  return v->i ? "true" : "false";
        case OV_FLOATS: floats_text(v, buf, size); return buf;
        case OV_SHAPE: shape_text(v->ne, o->format == OUT_JSON, buf, size); return buf;
        case OV_TEXT:
            if (c->kind == OUT_LONG && table) {
                one_line(v->s, 60, buf, size);
                return buf;
            }
            return v->s;
        case OV_INT:
        case OV_REAL:
            break;
    }
    return number_text(c, table, v, buf, size);
}

static const char * number_text(const struct out_col * c, bool table, const struct out_val * v, char * buf, size_t size) {
    const double d = v->d;
    if (isnan(d)) return "nan";
    if (isinf(d)) return d > 0 ? "inf" : "-inf";
    static const char * const bin[] = { "B", "KiB", "MiB", "GiB", "TiB" };
    static const char * const dec[] = { "", "k", "M", "G", "T", "P" };
    switch (c->kind) {
        case OUT_BYTES:
            if (table) scaled(d, 1024, bin, 5, "%.0f %s", buf, size);
            else       snprintf(buf, size, "%.0f", d);
            return buf;
        case OUT_COUNT:
            if (table) scaled(d, 1000, dec, 6, "%.0f%s", buf, size);
            else       snprintf(buf, size, "%.0f", d);
            return buf;
        case OUT_TIME:
            snprintf(buf, size, table ? "%.1f" : "%.3f", d / 1e3);
            return buf;
        case OUT_PCT:
            snprintf(buf, size, table ? "%.1f%%" : "%.17g", d);
            return buf;
        case OUT_RATE:
            snprintf(buf, size, table ? "%.2f" : "%.17g", d);
            return buf;
        case OUT_REAL:
            if (v->type == OV_INT) snprintf(buf, size, "%lld", (long long) v->i);
            else snprintf(buf, size, table ? "%.4g" : "%.17g", d);
            return buf;
        case OUT_PRECISE:
            snprintf(buf, size, table ? "%.10g" : "%.17g", d);
            return buf;
        default:
            if (v->type == OV_INT) snprintf(buf, size, "%lld", (long long) v->i);
            else snprintf(buf, size, "%.17g", d);
            return buf;
    }
}

static void csv_field(FILE * f, const char * s) {
    if (!strpbrk(s, ",\"\n\r")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"') fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

const char * out_table_text(enum out_kind kind, struct out_val v, char * buf, size_t size) {
    const struct out table = { .format = OUT_TABLE };
    const struct out_col c = { "", kind, OUT_ALL };
    const char * t = val_text(&table, &c, &v, buf, size);
    if (t != buf) snprintf(buf, size, "%s", t);
    return buf;
}

// a list of numbers whole (a table's cell cuts it): exact, space-separated in csv; a json array
static void floats_write(FILE * f, const struct out_val * v, bool json) {
    if (json) fputc('[', f);
    for (int64_t k = 0; k < v->i; k++) {
        if (k) fputs(json ? ", " : " ", f);
        if (json && !isfinite(v->f[k])) fputs("null", f);
        else                            fprintf(f, "%.9g", v->f[k]);
    }
    if (json) fputc(']', f);
}

static void json_val(const struct out * o, const struct out_col * c, const struct out_val * v) {
    char buf[OUT_CELL_MAX];
    if (v->type == OV_NULL || ((v->type == OV_REAL) && !isfinite(v->d))) {
        fputs("null", o->f);
    } else if (v->type == OV_FLOATS) {
        floats_write(o->f, v, true);
    } else if (v->type == OV_TEXT) {
        if (c->kind == OUT_RAW_JSON) fputs(v->s, o->f);
        else                     llt_json_write_string(o->f, v->s);
    } else {
        fputs(val_text(o, c, v, buf, sizeof(buf)), o->f);
    }
}

// ---- sections ----------------------------------------------------------------------------

int out_begin(struct out * o, const char * name, const char * title, const struct out_col * cols, int n_cols, unsigned flags) {
    o->title = title;
    o->cols = cols;
    o->n_cols = n_cols;
    o->flags = flags;
    o->n_rows = 0;
    if (o->format == OUT_JSON && (flags & OUT_INLINE) && (flags & OUT_RECORD)) {
        if (o->n_sections) fputc(',', o->f); // its members follow in out_row
    } else if (o->format == OUT_JSON) {
        fprintf(o->f, "%s\n  ", o->n_sections ? "," : "");
        llt_json_write_string(o->f, name);
        fputs(flags & OUT_RECORD ? ": " : ": [", o->f);
    } else if (o->format == OUT_CSV && !(flags & OUT_RECORD)) {
        if (o->n_lists++) fputc('\n', o->f); // lists apart by an empty line
        const char * sep = "";
        for (int c = 0; c < n_cols; c++) {
            if (!shown(o, &cols[c])) continue;
            fputs(sep, o->f);
            csv_field(o->f, cols[c].name);
            sep = ",";
        }
        fputc('\n', o->f);
    }
    o->n_sections++;
    return CLI_OK;
}

static int table_keep(struct out * o, const struct out_val * vals) {
    if (o->n_rows == o->cap) {
        const int64_t cap = o->cap ? 2 * o->cap : 64;
        char ** nc = realloc(o->cells, (size_t) (cap * o->n_cols) * sizeof(*nc));
        if (!nc) {
            o->failed = true;
            cli_error("out of memory");
            return CLI_FAIL;
        }
        o->cells = nc;
        o->cap = cap;
    }
    char buf[OUT_CELL_MAX];
    char ** row = o->cells + o->n_rows * o->n_cols;
    for (int c = 0; c < o->n_cols; c++) {
        row[c] = shown(o, &o->cols[c]) ? strdup(val_text(o, &o->cols[c], &vals[c], buf, sizeof(buf))) : NULL;
        if (shown(o, &o->cols[c]) && !row[c]) {
            o->failed = true;
            cli_error("out of memory");
            return CLI_FAIL;
        }
    }
    return CLI_OK;
}

int out_row(struct out * o, const struct out_val * vals) {
    char buf[OUT_CELL_MAX];
    const bool record = o->flags & OUT_RECORD;
    if (o->format == OUT_JSON) {
        const bool inline_ = record && (o->flags & OUT_INLINE);
        fputs(inline_ ? "" : record ? "{" : o->n_rows ? ",\n    {" : "\n    {", o->f);
        const char * sep = inline_ ? "\n  " : "";
        for (int c = 0; c < o->n_cols; c++) {
            if (!shown(o, &o->cols[c])) continue;
            fprintf(o->f, "%s\"%s\": ", sep, o->cols[c].name);
            json_val(o, &o->cols[c], &vals[c]);
            sep = inline_ ? ",\n  " : ", ";
        }
        if (!inline_) fputc('}', o->f);
    } else if (o->format == OUT_CSV) {
        if (record) return CLI_OK;
        const char * sep = "";
        for (int c = 0; c < o->n_cols; c++) {
            if (!shown(o, &o->cols[c])) continue;
            fputs(sep, o->f);
            if (vals[c].type == OV_FLOATS) floats_write(o->f, &vals[c], false); // no comma or quote to escape
            else csv_field(o->f, val_text(o, &o->cols[c], &vals[c], buf, sizeof(buf)));
            sep = ",";
        }
        fputc('\n', o->f);
    } else if (record) {
        // a line: "run 1, model tiny, ..."; missing values left out
        const char * sep = "";
        for (int c = 0; c < o->n_cols; c++) {
            if (!shown(o, &o->cols[c]) || vals[c].type == OV_NULL) continue;
            fprintf(o->f, "%s%s %s", sep, o->cols[c].name, val_text(o, &o->cols[c], &vals[c], buf, sizeof(buf)));
            sep = ", ";
        }
        if (*sep) fputc('\n', o->f); // nothing when no column is for a table
    } else if (table_keep(o, vals) != CLI_OK) {
        return CLI_FAIL;
    }
    o->n_rows++;
    return CLI_OK;
}

// display columns of UTF-8 text: continuation bytes take none
static size_t text_width(const char * s) {
    size_t w = 0;
    for (; *s; s++) w += ((unsigned char) *s & 0xC0) != 0x80;
    return w;
}

static bool right_aligned(const struct out_col * c) {
    return c->kind != OUT_TEXT && c->kind != OUT_LONG && c->kind != OUT_RAW_JSON && c->kind != OUT_SHAPE &&
           c->kind != OUT_LIST;
}

static void table_cell(FILE * f, const char * text, size_t width, bool right, bool last) {
    const size_t pad = width - text_width(text);
    if (right) fprintf(f, "%*s", (int) pad, "");
    fputs(text, f);
    if (!right && !last) fprintf(f, "%*s", (int) pad, "");
    if (!last) fputs("  ", f);
}

// the kept rows whose first column is key (all when key is NULL), from column first on
static void table_print(struct out * o, const char * key, int first) {
    size_t width[64] = { 0 };
    int last = -1;
    for (int c = first; c < o->n_cols && c < 64; c++) {
        if (!shown(o, &o->cols[c])) continue;
        width[c] = text_width(o->cols[c].name);
        last = c;
        for (int64_t r = 0; r < o->n_rows; r++) {
            char ** row = o->cells + r * o->n_cols;
            if (key && strcmp(row[0], key) != 0) continue;
            const size_t w = text_width(row[c]);
            if (w > width[c]) width[c] = w;
        }
    }
    for (int64_t r = -1; r < o->n_rows; r++) { // row -1: the header
        char ** row = r >= 0 ? o->cells + r * o->n_cols : NULL;
        if (row && key && strcmp(row[0], key) != 0) continue;
        for (int c = first; c <= last; c++) {
            if (!shown(o, &o->cols[c])) continue;
            table_cell(o->f, row ? row[c] : o->cols[c].name, width[c], right_aligned(&o->cols[c]), c == last);
        }
        fputc('\n', o->f);
    }
}

static void table_end(struct out * o) {
    if (o->flags & OUT_RECORD) {
        o->after_record = true;
        return;
    }
    if (o->after_record || o->title) fputc('\n', o->f);
    o->after_record = false;
    if (o->title) fprintf(o->f, "%s\n", o->title);
    if (o->n_rows == 0) {
        fputs("(none)\n", o->f);
    } else if (o->flags & OUT_SPLIT_FIRST) {
        for (int64_t r = 0; r < o->n_rows; r++) {
            const char * key = o->cells[r * o->n_cols];
            bool seen = false;
            for (int64_t q = 0; q < r && !seen; q++) seen = strcmp(o->cells[q * o->n_cols], key) == 0;
            if (seen) continue;
            fprintf(o->f, "%s%s\n", r ? "\n" : "", key);
            table_print(o, key, 1);
        }
    } else {
        table_print(o, NULL, 0);
    }
    for (int64_t i = 0; i < o->n_rows * o->n_cols; i++) free(o->cells[i]);
}

int out_end(struct out * o) {
    if (o->format == OUT_JSON) {
        if (!(o->flags & OUT_RECORD)) fputs(o->n_rows ? "\n  ]" : "]", o->f);
        else if (o->n_rows == 0 && !(o->flags & OUT_INLINE)) fputs("null", o->f);
    } else if (o->format == OUT_TABLE) {
        table_end(o);
    }
    o->n_rows = 0;
    return o->failed ? CLI_FAIL : CLI_OK;
}

int out_record(struct out * o, const char * name, const struct out_col * cols, int n_cols, const struct out_val * vals) {
    int rc = out_begin(o, name, NULL, cols, n_cols, OUT_RECORD);
    if (rc == CLI_OK) rc = out_row(o, vals);
    return rc == CLI_OK ? out_end(o) : rc;
}

int out_close(struct out * o) {
    if (!o) return CLI_FAIL;
    if (o->format == OUT_JSON) fputs("\n}\n", o->f);
    int rc = o->failed ? CLI_FAIL : CLI_OK;
    if (fflush(o->f) != 0 || ferror(o->f)) {
        cli_error("cannot write the output: %s", strerror(errno));
        rc = CLI_FAIL;
    }
    free(o->cells);
    free(o);
    return rc;
}
