// lltrace export: one run of a trace as an event log (NDJSON), as a timeline for
// chrome://tracing and Perfetto (lltrace/export.h describes both), or its tensor dump as
// .npy files or safetensors.
#include "cli.h"
#include "lltrace.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

static const char * usage_text =
    "usage: lltrace export TRACE [options]\n"
    "\n"
    "Writes one run of a trace as an event log (one JSON object per line), or as a timeline\n"
    "for chrome://tracing and Perfetto.\n"
    "\n"
    "options:\n"
    "  --run ID            the run to export (default: the last one)\n"
    "  --seq N             only the steps and tokens of llama.cpp sequence N (lltrace exec)\n"
    "  --format FMT        ndjson (default), or chrome: Trace Event Format JSON with the\n"
    "                      decode calls, graph computations, layers and timed nodes\n"
    "  --dump-format FMT   instead: convert the run's tensor dump (run --dump/--checkpoints)\n"
    "                      for PyTorch users: npy (-o is a directory, one NAME.npy per tensor)\n"
    "                      or safetensors (-o is the file); data as float32\n"
    "  -o, --output FILE   write to FILE instead of standard output; FILE is replaced\n"
    "                      only once the export is complete (a FIFO or device: written\n"
    "                      directly)\n"
    "  -h, --help          this help\n";

// ---- a run's dump as .npy files or safetensors -------------------------------------------

static int read_tensor(int i, float * dst, void * user_data) {
    return llt_tensor_set_read_f32(user_data, i, dst);
}

// the run's dump_path, or NULL with an error printed; caller frees with free()
static char * dump_path_of(struct llt_store * st, const char * trace, int64_t run) {
    struct llt_table_filter filter = llt_table_default_filter();
    filter.run = run;
    struct llt_table_rows * rows = NULL;
    if (llt_read_table(st, LLT_TABLE_RUN, &filter, &rows) != LLT_OK) {
        cli_error("%s", llt_last_error());
        return NULL;
    }
    char * path = NULL;
    for (int32_t c = 0; c < rows->n_cols && rows->n_rows; c++) {
        if (strcmp(rows->cols[c], "dump_path") == 0 && rows->values[c].s) path = strdup(rows->values[c].s);
    }
    if (!path) cli_error("run %lld of '%s' has no tensor dump (run with --dump or --checkpoints)", (long long) run, trace);
    llt_table_rows_free(rows);
    return path;
}

// a folder this export made, with the files it wrote into it: a failed export leaves nothing
static void remove_dir(const char * path) {
    DIR * d = opendir(path);
    for (struct dirent * e; d && (e = readdir(d));) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        char file[8192];
        if (snprintf(file, sizeof(file), "%s/%s", path, e->d_name) < (int) sizeof(file)) unlink(file);
    }
    if (d) closedir(d);
    rmdir(path);
}

static int export_dump(struct llt_store * st, const char * trace, int64_t run, const char * format, const char * dest) {
    char * path = dump_path_of(st, trace, run);
    if (!path) return CLI_FAIL;
    struct llt_tensor_set * set = NULL;
    struct llt_tensor_desc * descs = NULL;
    float * buf = NULL;
    int rc = CLI_FAIL;
    bool made_dir = false;
    if (llt_tensor_set_open(path, &set) != LLT_OK) { cli_error("%s", llt_last_error()); goto done; }
    const int n = llt_tensor_set_count(set);
    if (!(descs = calloc((size_t) n + 1, sizeof(*descs)))) { cli_error("out of memory"); goto done; }
    for (int i = 0; i < n; i++) {
        const struct llt_tensor_info * ti = llt_tensor_set_get(set, i);
        descs[i] = (struct llt_tensor_desc) { ti->name, ti->n_dims, { ti->ne[0], ti->ne[1], ti->ne[2], ti->ne[3] } };
    }
    if (strcmp(format, "safetensors") == 0) {
        if (llt_safetensors_write(dest, descs, n, read_tensor, set) != LLT_OK) { cli_error("%s", llt_last_error()); goto done; }
    } else {
        struct stat sb;
        made_dir = mkdir(dest, 0777) == 0;
        if (!made_dir && errno != EEXIST) { cli_error("cannot create '%s': %s", dest, strerror(errno)); goto done; }
        if (!made_dir && (stat(dest, &sb) != 0 || !S_ISDIR(sb.st_mode))) { cli_error("cannot write into '%s': not a directory", dest); goto done; }
        for (int i = 0; i < n; i++) {
            const struct llt_tensor_info * ti = llt_tensor_set_get(set, i);
            float * nb = realloc(buf, (size_t) ti->n_elements * sizeof(float) + 1);
            if (!nb) { cli_error("out of memory"); goto done; }
            buf = nb;
            if (llt_tensor_set_read_f32(set, i, buf) != LLT_OK ||
                llt_npy_write(dest, ti->name, buf, ti->ne, ti->n_dims) != LLT_OK) {
                cli_error("%s", llt_last_error());
                goto done;
            }
        }
    }
    fprintf(stderr, "lltrace: %d tensors of '%s' written to %s\n", n, path, dest);
    rc = CLI_OK;
done:
    if (rc != CLI_OK && made_dir) remove_dir(dest);
    free(buf);
    free(descs);
    llt_tensor_set_close(set);
    free(path);
    return rc;
}

// ---- the command -------------------------------------------------------------------------
// ---- the command -------------------------------------------------------------------------

static bool same_file(const char * a, const char * b) {
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

// the temporary file being written: Ctrl-C removes it and exits 130
static char tmp_path[4096];

static void on_sigint(int sig) {
    (void) sig;
    if (tmp_path[0]) unlink(tmp_path);
    _exit(CLI_INTERRUPTED);
}

// Writes the export to stdout, or to path through llt_outfile (replaced once complete; a
// FIFO or device written directly).
static int export_to(struct llt_store * st, int64_t run, int32_t seq, enum llt_export_format format, const char * path) {
    if (!path) {
        if (llt_export(st, run, seq, format, stdout) != LLT_OK) {
            cli_error("%s", llt_last_error());
            return CLI_FAIL;
        }
        return cli_check_stdout();
    }
    struct llt_outfile * of = NULL;
    if (llt_outfile_open(path, &of) != LLT_OK) {
        cli_error("%s", llt_last_error());
        return CLI_FAIL;
    }
    const char * tmp = llt_outfile_temp(of);
    snprintf(tmp_path, sizeof(tmp_path), "%s", tmp ? tmp : "");
    signal(SIGINT, on_sigint);
    int rc = llt_export(st, run, seq, format, llt_outfile_file(of));
    if (rc == LLT_OK) {
        rc = llt_outfile_commit(of);
    } else {
        llt_outfile_abort(of);
    }
    signal(SIGINT, SIG_DFL);
    tmp_path[0] = '\0';
    if (rc != LLT_OK) cli_error("%s", llt_last_error());
    return rc == LLT_OK ? CLI_OK : CLI_FAIL;
}

int cmd_export(int argc, char ** argv) {
    static const char * const format_names[] = { [LLT_EXPORT_NDJSON] = "ndjson", [LLT_EXPORT_CHROME] = "chrome" };
    const char * trace = NULL, * path = NULL, * dump_format = NULL;
    int format = LLT_EXPORT_NDJSON;
    int64_t run = 0, seq = -1;
    for (int i = 1; i < argc; i++) {
        const char * a = argv[i];
        const char * v = NULL;
        if (cli_is_help(a)) {
            fputs(usage_text, stdout);
            return CLI_OK;
        } else if (strcmp(a, "--run") == 0) {
            if (!(v = cli_value(argc, argv, &i)) || !cli_parse_int(a, v, 1, INT32_MAX, &run)) return CLI_USAGE;
        } else if (strcmp(a, "--seq") == 0) {
            if (!(v = cli_value(argc, argv, &i)) || !cli_parse_int(a, v, 0, INT32_MAX, &seq)) return CLI_USAGE;
        } else if (strcmp(a, "--format") == 0) {
            if (!(v = cli_value(argc, argv, &i)) || !cli_parse_choice(a, v, format_names, 2, &format)) return CLI_USAGE;
        } else if (strcmp(a, "--dump-format") == 0) {
            if (!(dump_format = cli_value(argc, argv, &i))) return CLI_USAGE;
            if (strcmp(dump_format, "npy") != 0 && strcmp(dump_format, "safetensors") != 0) {
                cli_error("export: unknown dump format '%s' (npy, safetensors)", dump_format);
                return CLI_USAGE;
            }
        } else if (strcmp(a, "-o") == 0 || strcmp(a, "--output") == 0) {
            if (!(path = cli_value(argc, argv, &i))) return CLI_USAGE;
        } else if (a[0] == '-' && a[1] != '\0') {
            cli_error("export: unknown option '%s' (see 'lltrace export --help')", a);
            return CLI_USAGE;
        } else if (trace) {
            cli_error("export: unexpected argument '%s' (one TRACE only)", a);
            return CLI_USAGE;
        } else {
            trace = a;
        }
    }
    if (!trace) {
        cli_error("export: missing TRACE (see 'lltrace export --help')");
        return CLI_USAGE;
    }
    if (dump_format && !path) {
        cli_error("export: --dump-format needs -o (a directory for npy, a file for safetensors)");
        return CLI_USAGE;
    }
    if (path && same_file(path, trace)) {
        cli_error("export: the output '%s' is the trace itself", path);
        return CLI_USAGE;
    }

    struct llt_store * st = NULL;
    struct llt_read_run r;
    if (cli_open_trace(trace, LLT_STORE_READ, &st) != LLT_OK || llt_read_run(st, run, &r) != LLT_OK) {
        cli_error("%s", llt_last_error());
        llt_store_close(st);
        return CLI_USAGE; // an input that cannot be read, or a run it does not hold
    }
    if (seq >= 0 && llt_read_check_sel(st, r.id, -1, (int32_t) seq) != LLT_OK) {
        cli_error("export: %s", llt_last_error());
        llt_store_close(st);
        return CLI_USAGE;
    }
    const int rc = dump_format ? export_dump(st, trace, r.id, dump_format, path)
                               : export_to(st, r.id, (int32_t) seq, (enum llt_export_format) format, path);
    llt_store_close(st);
    return rc;
}
