// The output engine of the commands: one document of sections (records and lists), written
// as a table, CSV or JSON with one set of rules (docs/commands/README.md, "Output formats"):
//   - numbers exact in csv and json; in a table bytes in binary units (KiB, MiB, GiB), big
//     counts (FLOPs) in decimal ones (k, M, G), times in microseconds
//   - a missing value is "-" in a table, empty in csv, null in json; a number that is not
//     finite is nan, inf or -inf in a table and csv, null in json
//   - a shape is [ne0, ne1, ne2, ne3], innermost first, trailing 1s dropped ([4096, 7]); an
//     array in json
//   - a list of numbers (a tensor's first values) is space-separated in a table and csv, an
//     array in json; a table cell holds its first OUT_CELL_MAX bytes
//   - a boolean is true or false
// Lists stream in csv and json; a table holds one list at a time to align its columns.
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

enum out_format { OUT_TABLE, OUT_CSV, OUT_JSON, OUT_FORMAT_COUNT };

// --format's value: table, csv or json; prints an error naming flag and returns false otherwise
bool out_parse_format(const char * flag, const char * s, enum out_format * out);

enum out_kind {
    OUT_TEXT,
    OUT_LONG,  // free text (prompt, output): one short quoted line in a table
    OUT_INT,
    OUT_REAL,
    OUT_PRECISE, // a real whose digits all count (a cosine near 1): 10 significant in a table
    OUT_BYTES, // binary units in a table
    OUT_COUNT, // FLOPs and such: k, M, G in a table
    OUT_TIME,  // nanoseconds, printed as microseconds
    OUT_PCT,
    OUT_RATE,  // GB/s, GFLOP/s
    OUT_SHAPE,
    OUT_LIST,  // numbers (out_floats): left-aligned in a table
    OUT_RAW_JSON, // JSON text made elsewhere: as is in json
};

// The formats a column is left out of. A table shows what a reader needs; csv and json carry
// every figure (OUT_NOT_TABLE), and a table may show a figure its own way (OUT_ONLY_TABLE).
enum out_where {
    OUT_ALL        = 0,
    OUT_NOT_TABLE  = 1 << OUT_TABLE,
    OUT_NOT_JSON   = 1 << OUT_JSON,
    OUT_ONLY_JSON  = 1 << OUT_TABLE | 1 << OUT_CSV,
    OUT_ONLY_TABLE = 1 << OUT_CSV | 1 << OUT_JSON,
};

struct out_col {
    const char *   name;
    enum out_kind  kind;
    enum out_where where;
};

enum out_val_type { OV_NULL, OV_INT, OV_REAL, OV_TEXT, OV_SHAPE, OV_BOOL, OV_FLOATS };

struct out_val {
    enum out_val_type type;
    int64_t           i;     // OV_FLOATS: the count
    double            d;
    const char *      s;     // borrowed until out_row returns
    const float *     f;     // OV_FLOATS, borrowed until out_row returns
    int64_t           ne[4];
};

struct out_val out_null(void);
struct out_val out_int(int64_t v);
struct out_val out_real(double v);
struct out_val out_text(const char * s);   // NULL: no value
struct out_val out_shape(const int64_t ne[4]);
struct out_val out_bool(bool v);
struct out_val out_floats(const float * v, int64_t n); // a list of numbers

#define OUT_CELL_MAX 4096

// section flags
enum {
    OUT_RECORD      = 1, // one row: "name value, ..." on a line in a table, an object in json, not in csv
    OUT_SPLIT_FIRST = 2, // table: a sub-list per value of the first column, titled with it
    OUT_INLINE      = 4, // with OUT_RECORD: in json its members are the document's own, not an object of its name
};

// a static column array and its length, for out_begin
#define OUT_COLS(cols) cols, (int) (sizeof(cols) / sizeof((cols)[0]))

struct out;

// A document on f. caller ends it with out_close()
struct out * out_open(FILE * f, enum out_format format);
// Starts a section: name is its member in json, title its heading in a table (NULL: none).
// cols must live until out_end.
int  out_begin(struct out * o, const char * name, const char * title, const struct out_col * cols, int n_cols, unsigned flags);
int  out_row(struct out * o, const struct out_val * vals); // one value per column
int  out_end(struct out * o);
// a section of one record, begun, written and ended
int  out_record(struct out * o, const char * name, const struct out_col * cols, int n_cols, const struct out_val * vals);
// a line of text, in a table only (a header, a note)
void out_note(struct out * o, const char * fmt, ...) __attribute__((format(printf, 2, 3)));
// A value as a table shows it (kind OUT_BYTES: "1.5 MiB", a shape "[4096, 7]"), for text the
// engine does not lay out (a sentence, a Markdown receipt); returns buf
const char * out_table_text(enum out_kind kind, struct out_val v, char * buf, size_t size);
// Ends the document and frees o; CLI_OK, or CLI_FAIL after printing why the output failed.
int  out_close(struct out * o);
