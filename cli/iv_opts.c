// The intervention flags shared by `run` and `exec` (docs/debugging.md, "Interventions"):
// --ablate, --scale, --steer, --patch with --from, --intervene. Collected while the options
// are parsed, made into a set (files loaded, patterns checked) once they all are.
#include "cli.h"
#include "lltrace.h"

#include <string.h>

const char * const cli_iv_usage =
    "Interventions (change a node's output as the model runs; docs/debugging.md):\n"
    "  --ablate NODE[:head=H][:pos=P]     zero the node (or one attention head, one position)\n"
    "  --scale NODE=F[:head=H][:pos=P]    multiply by F\n"
    "  --steer NODE=FILE.npy[*ALPHA][:pos=P]  add ALPHA (default 1) times the vector to each row\n"
    "  --patch NODE[:pos=P] --from DUMP   replace by another run's dumped values (same step)\n"
    "  --intervene SPEC.json              any of these, with steps, layers, sequences\n"
    "                       NODE is a glob or re:REGEX as --dump; more selectors: step=S or A-B,\n"
    "                       layer=L, seq=N, pos=A-B; each flag is repeatable. An intervention\n"
    "                       on kq/kq_soft_max/kqv turns flash attention off; one that cannot\n"
    "                       be made stops the run with the reason (exit 2)\n";

// returns 1 if argv[*i] was an intervention flag (taken), 0 if not, -1 on a usage error (printed)
int cli_iv_option(int argc, char ** argv, int * i, struct cli_iv_opts * o) {
    static const struct { const char * flag; int kind; } flags[] = {
        { "--ablate", LLT_IV_ABLATE }, { "--scale", LLT_IV_SCALE }, { "--steer", LLT_IV_ADD }, { "--patch", LLT_IV_PATCH },
        { "--intervene", -1 },
    };
    const char * a = argv[*i];
    if (strcmp(a, "--from") == 0) {
        if (!(o->from = cli_value(argc, argv, i))) return -1;
        return 1;
    }
    for (size_t k = 0; k < sizeof(flags) / sizeof(flags[0]); k++) {
        if (strcmp(a, flags[k].flag) != 0) continue;
        const char * v = cli_value(argc, argv, i);
        if (!v) return -1;
        if (o->n == CLI_IV_MAX) {
            cli_error("%s: at most %d interventions on the command line (use --intervene SPEC.json)", a, CLI_IV_MAX);
            return -1;
        }
        o->kind[o->n] = flags[k].kind;
        o->text[o->n++] = v;
        return 1;
    }
    return 0;
}

int cli_iv_build(const struct cli_iv_opts * o, struct llt_iv_set ** out) {
    *out = NULL;
    if (o->n == 0) {
        if (o->from) { cli_error("--from: give it with --patch"); return CLI_USAGE; }
        return CLI_OK;
    }
    struct llt_iv_set * set = NULL;
    if (llt_iv_set_init(&set) != LLT_OK) { cli_error("%s", llt_last_error()); return CLI_FAIL; }
    bool patched = false;
    for (int i = 0; i < o->n; i++) {
        const int rc = o->kind[i] < 0 ? llt_iv_set_add_json(set, o->text[i])
                                      : llt_iv_set_add_text(set, (enum llt_iv_kind) o->kind[i], o->text[i], o->from);
        patched |= o->kind[i] == LLT_IV_PATCH;
        if (rc != LLT_OK) {
            cli_error("%s", llt_last_error());
            llt_iv_set_free(set);
            return CLI_USAGE;
        }
    }
    if (o->from && !patched) {
        cli_error("--from: give it with --patch");
        llt_iv_set_free(set);
        return CLI_USAGE;
    }
    *out = set;
    return CLI_OK;
}
