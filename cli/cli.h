// Shared pieces of the lltrace command: exit codes, error printing, number parsing.
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

// exit codes, the same in every command (docs/commands/README.md)
enum cli_exit {
    CLI_OK          = 0,   // success
    CLI_FAIL        = 1,   // the result is a failure: a threshold exceeded, a divergence, a write error
    CLI_USAGE       = 2,   // bad flags or arguments, or an input that cannot be read
    CLI_INTERRUPTED = 130, // stopped by Ctrl-C (128 + SIGINT, as shells report it)
};

// flushes standard output: CLI_OK, or CLI_FAIL after one line saying why it could not be
// written (a full disk). main() calls it after every command that succeeded; a command that
// writes much calls it itself to fail as soon as it knows.
int cli_check_stdout(void);

// prints "lltrace: <message>" as one line on stderr
void cli_error(const char * fmt, ...) __attribute__((format(printf, 1, 2)));

// parses a whole decimal integer / number in [lo, hi]; prints an error naming flag and returns false on failure
bool cli_parse_int  (const char * flag, const char * s, int64_t lo, int64_t hi, int64_t * out);
bool cli_parse_float(const char * flag, const char * s, double lo, double hi, double * out);

// the value after a flag: argv[++*i], or an error "option 'X' needs a value" and NULL
const char * cli_value(int argc, char ** argv, int * i);

// true if argv[i] is -h or --help
bool cli_is_help(const char * arg);

// -fa on|off|auto into enum llama_flash_attn_type; a cache type name (f16, q8_0) into enum
// ggml_type; each prints an error naming flag and returns false on failure
bool cli_parse_flash_attn(const char * flag, const char * s, int32_t * out);
// s as the index of one of n names; prints "FLAG: unknown value 'S' (a, b, c)" otherwise
bool cli_parse_choice(const char * flag, const char * s, const char * const * names, int n, int * out);
bool cli_parse_cache_type(const char * flag, const char * s, int32_t * out);

// llt_store_open() that tells the user on stderr what opening found (a damaged step log kept
// beside the trace), as one warning line; every command opens traces through it
struct llt_store;
int cli_open_trace(const char * path, int mode, struct llt_store ** out);

// llt_default_model() that tells the user on stderr when it makes the model (cmd_mkmodel.c)
int cli_default_model(const char * preset, int ftype, char ** out_path);

// the intervention flags of run and exec (iv_opts.c), as given; made into a set at the end
#define CLI_IV_MAX 64
struct cli_iv_opts {
    const char * text[CLI_IV_MAX]; // each flag's value
    int          kind[CLI_IV_MAX]; // enum llt_iv_kind, or -1 for --intervene (a spec file)
    int          n;
    const char * from;             // --from: the dump --patch copies from
};
struct llt_iv_set;
extern const char * const cli_iv_usage; // their lines of --help
// 1 if argv[*i] was an intervention flag (taken, *i past its value), 0 if not, -1 on a usage error (printed)
int cli_iv_option(int argc, char ** argv, int * i, struct cli_iv_opts * o);
// the set they make, or NULL without any: CLI_OK, or the exit code after an error printed.
// caller frees with llt_iv_set_free()
int cli_iv_build(const struct cli_iv_opts * o, struct llt_iv_set ** out);

int cmd_run    (int argc, char ** argv);
int cmd_exec   (int argc, char ** argv);
int cmd_debug  (int argc, char ** argv);
// lltrace run's options and run, with a debugger on its tracer when dbg is set (cmd_run.c);
// Ctrl-C during the run also writes a byte to sigint_fd (-1: none)
struct llt_debug;
int cli_run_main(int argc, char ** argv, struct llt_debug * dbg, int sigint_fd);
int cmd_show   (int argc, char ** argv);
int cmd_export (int argc, char ** argv);
int cmd_mkmodel(int argc, char ** argv);
int cmd_bench  (int argc, char ** argv);
int cmd_parity (int argc, char ** argv);
int cmd_profile(int argc, char ** argv);
int cmd_inspect(int argc, char ** argv);
int cmd_diff   (int argc, char ** argv);
int cmd_report (int argc, char ** argv);
int cmd_serve  (int argc, char ** argv);
int cmd_causal (int argc, char ** argv);
