// Shared pieces of the lltrace command: exit codes, error printing, number parsing.
#pragma once

#include <stdbool.h>
#include <stdint.h>

enum cli_exit {
    CLI_OK      = 0, // success
    CLI_FAIL    = 1, // the command ran and failed (or a threshold was exceeded)
    CLI_USAGE   = 2, // bad flags or arguments, or an error before any work
};

// prints "lltrace: <message>" as one line on stderr
void cli_error(const char * fmt, ...) __attribute__((format(printf, 1, 2)));

// parses a whole decimal integer / number in [lo, hi]; prints an error naming flag and returns false on failure
bool cli_parse_int  (const char * flag, const char * s, int64_t lo, int64_t hi, int64_t * out);
bool cli_parse_float(const char * flag, const char * s, double lo, double hi, double * out);

// the value after a flag: argv[++*i], or an error "option 'X' needs a value" and NULL
const char * cli_value(int argc, char ** argv, int * i);

// true if argv[i] is -h or --help
bool cli_is_help(const char * arg);

int cmd_run    (int argc, char ** argv);
int cmd_show   (int argc, char ** argv);
int cmd_export (int argc, char ** argv);
int cmd_mkmodel(int argc, char ** argv);
int cmd_bench  (int argc, char ** argv);
