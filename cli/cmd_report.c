// lltrace report: one run as one self-contained HTML page (no network when it is opened):
// the data computed by the library (lltrace/report.h) inline, with the page's styles and
// scripts (report/, compiled in).
#define _DEFAULT_SOURCE // realpath
#include "cli.h"
#include "lltrace.h"
#include "page.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char * usage_text =
    "usage: lltrace report TRACE [options]\n"
    "\n"
    "Writes one run of a trace as one HTML page that opens from disk in a browser, with no\n"
    "network: the run, its text and top-k candidates, one step's graph, where the time went,\n"
    "attention, the residual stream, the logit lens and memory, each explained. Sections\n"
    "whose data the trace lacks say which 'lltrace run' option gives it (--level timing,\n"
    "--checkpoints, --parity FILE).\n"
    "\n"
    "options:\n"
    "  --run ID           the run (default: the last one)\n"
    "  -o, --output FILE  the page (default: TRACE.run<ID>.html); replaced once complete\n"
    "  --step N           the step whose graph is drawn (default: the first generated one)\n"
    "  --lens-k K         logit lens candidates per layer and position, 0 to 16 (default 5;\n"
    "                     0: no lens)\n"
    "  --vs B.db          compare with the last run of trace B (section 8): token by token\n"
    "                     (both runs with --parity) and tensor by tensor (both with --checkpoints)\n"
    "  --vs-run ID        compare with that run (of B, or of TRACE without --vs)\n"
    "  --data             write the page's data (JSON, docs/report.md) instead of the page\n"
    "  -h, --help         this help\n"
    "\n"
    "Exit status: 0 written; 1 the page could not be written; 2 bad usage or an unreadable trace.\n";

static bool same_file(const char * a, const char * b) {
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

int cmd_report(int argc, char ** argv) {
    const char * trace = NULL, * path = NULL, * vs = NULL, * v;
    bool vs_run_given = false;
    struct llt_report_params rp = llt_report_default_params();
    bool data_only = false;
    int64_t iv;
    for (int i = 1; i < argc; i++) {
        const char * a = argv[i];
        if (cli_is_help(a)) { fputs(usage_text, stdout); return CLI_OK; }
        if (strcmp(a, "--run") == 0) {
            if (!(v = cli_value(argc, argv, &i)) || !cli_parse_int(a, v, 1, INT64_MAX, &rp.run)) return CLI_USAGE;
        } else if (strcmp(a, "--step") == 0) {
            if (!(v = cli_value(argc, argv, &i)) || !cli_parse_int(a, v, 0, INT64_MAX, &rp.graph_step)) return CLI_USAGE;
        } else if (strcmp(a, "--lens-k") == 0) {
            if (!(v = cli_value(argc, argv, &i)) || !cli_parse_int(a, v, 0, LLT_LENS_MAX_K, &iv)) return CLI_USAGE;
            rp.lens_k = (int32_t) iv;
        } else if (strcmp(a, "--vs") == 0) {
            if (!(vs = cli_value(argc, argv, &i))) return CLI_USAGE;
        } else if (strcmp(a, "--vs-run") == 0) {
            if (!(v = cli_value(argc, argv, &i)) || !cli_parse_int(a, v, 1, INT64_MAX, &rp.vs_run)) return CLI_USAGE;
            vs_run_given = true;
        } else if (strcmp(a, "--data") == 0) {
            data_only = true;
        } else if (strcmp(a, "-o") == 0 || strcmp(a, "--output") == 0) {
            if (!(path = cli_value(argc, argv, &i))) return CLI_USAGE;
        } else if (a[0] == '-' && a[1] != '\0') {
            cli_error("report: unknown option '%s' (see 'lltrace report --help')", a);
            return CLI_USAGE;
        } else if (trace) {
            cli_error("report: unexpected argument '%s' (one TRACE only)", a);
            return CLI_USAGE;
        } else {
            trace = a;
        }
    }
    if (!trace) {
        cli_error("report: missing TRACE (see 'lltrace report --help')");
        return CLI_USAGE;
    }
    struct llt_store * st = NULL;
    struct llt_read_run r;
    if (cli_open_trace(trace, LLT_STORE_READ, &st) != LLT_OK || llt_read_run(st, rp.run, &r) != LLT_OK) {
        cli_error("%s", llt_last_error());
        llt_store_close(st);
        return CLI_USAGE;
    }
    rp.run = r.id;
    if (rp.graph_step >= 0 && llt_read_check_sel(st, r.id, rp.graph_step, -1) != LLT_OK) {
        cli_error("report: --step: %s", llt_last_error());
        llt_store_close(st);
        return CLI_USAGE;
    }
    // the other side: a run of trace B, or another run of this trace
    struct llt_store * other = NULL;
    struct llt_read_run rb;
    if (vs && (cli_open_trace(vs, LLT_STORE_READ, &other) != LLT_OK || llt_read_run(other, rp.vs_run, &rb) != LLT_OK)) {
        cli_error("%s", llt_last_error());
        llt_store_close(other);
        llt_store_close(st);
        return CLI_USAGE;
    }
    if (!vs && vs_run_given && llt_read_run(st, rp.vs_run, &rb) != LLT_OK) {
        cli_error("%s", llt_last_error());
        llt_store_close(st);
        return CLI_USAGE;
    }
    rp.vs = other ? other : vs_run_given ? st : NULL;
    rp.bandwidth_gbs = llt_report_measure_bandwidth(); // the roofline's limit, on this machine
    char def[4096];
    if (!path) {
        snprintf(def, sizeof(def), "%s.run%lld.%s", trace, (long long) r.id, data_only ? "json" : "html");
        path = def;
    }
    if (same_file(path, trace) || (vs && same_file(path, vs))) {
        cli_error("report: the output '%s' is a trace", path);
        llt_store_close(other);
        llt_store_close(st);
        return CLI_USAGE;
    }
    // the data first, in memory: a failure leaves the output as it was
    char * data = NULL;
    size_t n = 0;
    FILE * mem = open_memstream(&data, &n);
    int rc = mem ? llt_report_write_data(st, &rp, mem) : LLT_ENOMEM;
    if (mem) fclose(mem);
    llt_store_close(other);
    llt_store_close(st);
    if (rc != LLT_OK) {
        cli_error("%s", rc == LLT_ENOMEM && !mem ? "report: out of memory" : llt_last_error());
        free(data);
        return rc == LLT_EIO || rc == LLT_ENOMEM ? CLI_FAIL : CLI_USAGE;
    }
    struct llt_outfile * of = NULL;
    if (llt_outfile_open(path, &of) != LLT_OK) {
        cli_error("%s", llt_last_error());
        free(data);
        return CLI_FAIL;
    }
    FILE * f = llt_outfile_file(of);
    if (data_only) fwrite(data, 1, n, f);
    else cli_page_write(f, data, n);
    free(data);
    if (llt_outfile_commit(of) != LLT_OK) {
        cli_error("%s", llt_last_error());
        return CLI_FAIL;
    }
    char * abs = realpath(path, NULL);
    fprintf(stderr, "lltrace: report of run %lld written to %s; open file://%s in a browser\n",
            (long long) r.id, path, abs ? abs : path);
    free(abs);
    return CLI_OK;
}
