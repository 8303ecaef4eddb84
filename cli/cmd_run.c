// lltrace run: generate text with llama.cpp and trace every graph node into a trace file.
#include "cli.h"
#include "lltrace.h"

#include <signal.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char * usage_text =
    "usage: lltrace run [options]\n"
    "\n"
    "Generates text with llama.cpp and records every graph node that runs into a trace.\n"
    "\n"
    "  -m, --model FILE     GGUF model (default: the built-in 'sorter', a llama lltrace trains to sort\n"
    "                       letters, made on first use: about a minute once)\n"
    "  -p, --prompt TEXT    prompt (default: \"sort: d a c b =\" on the sorter, else \"Hello, my name is\")\n"
    "  -f, --file FILE      read the prompt from FILE (less the newline that ends it)\n"
    "  -n, --n-predict N    tokens to generate (default 32)\n"
    "  -t, --threads N      threads (default: all cores)\n"
    "  -c, --ctx-size N     context size (default: prompt + n, rounded up to 256)\n"
    "  -b, --batch-size N   batch size; also the ubatch, so a decode is one graph (default 512)\n"
    "  -fa, --flash-attn on|off|auto   flash attention (default auto)\n"
    "  -ctk, --cache-type-k TYPE       K cache type (default f16)\n"
    "  -ctv, --cache-type-v TYPE       V cache type (default f16)\n"
    "  --seed S             sampling seed (default 42)\n"
    "  --temp T             temperature; 0 = greedy (default 0)\n"
    "  --top-k K            top-k sampling (default 40); with --parity also the logits kept per step\n"
    "  --top-p P            top-p (default 0.95)\n"
    "  --level LEVEL        graph (default): every node; timing: and its time; profile: times of\n"
    "                       every l_out, the nodes outside the layers and one layer per step,\n"
    "                       rotating; values: statistics of every computing node's output (min,\n"
    "                       max, mean, std, NaN, Inf, zeros)\n"
    "  -o, --output TRACE   trace file; runs are appended (default lltrace.db)\n"
    "  -v, --verbose        show llama.cpp's log\n"
    "\n"
    "Where the model runs (llama.cpp's options, same meaning):\n"
    "  --rpc SERVERS        RPC servers HOST:PORT,... (ggml-rpc-server) as devices\n"
    "  -ngl, --gpu-layers N layers stored on the devices: a number, 'auto' or 'all' (default all)\n"
    "  -dev, --device LIST  devices to offload to, RPC0,CUDA0,... or 'none' (default: every device)\n"
    "  -sm, --split-mode M  none, layer (default), row or tensor\n"
    "  --time-nodes         levels timing/profile off the CPU: time every node (a compute call and a\n"
    "                       round trip to the device each) instead of each split (its last node)\n"
    "\n"
    "Tensor values (any level):\n"
    "  --dump PATTERN       dump nodes whose name matches (glob, or regex after 're:'; names are\n"
    "                       case-sensitive); repeatable; one that matches no node is a warning\n"
    "  --dump-layer N       only nodes of layer N\n"
    "  --dump-step N|A-B    only these steps\n"
    "  --dump-sources       also dump each dumped node's src0..src2\n"
    "  --dump-type T        native (default), f32 or f16\n"
    "  --dump-file FILE     the dump GGUF (default TRACE.run<ID>.gguf)\n"
    "  --checkpoints        dump the named checkpoints: the embedding, attention norm, Q/K/V\n"
    "                       (projected and after RoPE), K/V cache of the positions so far,\n"
    "                       attention probabilities, attention and FFN outputs, layer outputs,\n"
    "                       final norm, logits; under each architecture's node names, with\n"
    "                       its own extras (docs/architectures.md)\n"
    "                       (turns flash attention off: probabilities do not exist under it)\n"
    "  --layer N            checkpoints of layer N only\n"
    "  --break-on-nan       stop at the first node that produces a NaN or Inf and report it\n"
    "  --reference DUMP     compare every node the dump holds as it is computed (metrics in the trace,\n"
    "                       a summary at the end; beyond tolerance exits 1)\n"
    "  --tolerance-abs X    live comparison tolerances (default 1e-6, 1e-4)\n"
    "  --tolerance-rel Y\n"
    "\n"
    "Parity:\n"
    "  --parity FILE        write each generated step's token and top-k logits as JSON Lines\n"
    "                       (also kept in the trace); LLTRACE_PARITY=FILE does the same\n"
    "                       (10 logits per step, or --top-k K, at most 64)\n"
    "\n"
    "Exit status: 0 done; 1 --break-on-nan stopped the run, --reference went beyond tolerance, or\n"
    "the trace could not be written whole (tracing stopped: a full disk, a write error);\n"
    "2 bad usage, an unreadable model, trace or reference, or llama.cpp refused the model or\n"
    "context; 130 after Ctrl-C.\n";

static volatile sig_atomic_t stop_flag;
static int wake_fd = -1; // told of Ctrl-C too (lltrace debug, waiting for a command)

static void on_sigint(int sig) {
    (void) sig;
    stop_flag = 1;
    if (wake_fd >= 0) { const ssize_t n = write(wake_fd, "!", 1); (void) n; }
}

static const char * trace_path; // for on_ggml_abort

// llama.cpp gives up (an RPC server that went away, a failed allocation on a device): say so
// and where the trace stands, and leave with status 1 rather than abort(). The steps written
// so far are in the trace, the rest in its step log, which the next open replays (the run
// is then marked killed).
static void on_ggml_abort(const char * message) {
    fflush(stdout);
    fprintf(stderr, "\nlltrace: llama.cpp stopped the run: %s\n", message);
    fprintf(stderr, "lltrace: the trace %s keeps the steps written so far; its step log, replayed when the trace is "
                    "next opened, holds the rest (the run is then marked killed)\n", trace_path);
    _exit(CLI_FAIL);
}

// the prompt, echoed once llama.cpp took it (a refused one is not)
static void print_prompt(const char * prompt, void * user_data) {
    (void) user_data;
    fputs(prompt, stdout);
    fflush(stdout);
}

static void print_piece(const char * piece, void * user_data) {
    (void) user_data;
    fputs(piece, stdout);
    fflush(stdout);
}

// ---- options -----------------------------------------------------------------------------

#define MAX_DUMP_PATTERNS 64

struct run_opts {
    struct llt_gen_params gen;
    const char * dump[MAX_DUMP_PATTERNS + 1];
    int n_dump;
    const char * model;
    const char * prompt_file;
    bool prompt_flag;               // -p was given
    const char * output;
    const char * parity;
    bool top_k_given;
    bool prompt_given;
    bool fa_given;                  // -fa was given
    bool verbose;
    struct cli_iv_opts iv;
};

// "N" or "A-B" into [first, last]
static bool parse_range(const char * flag, const char * v, int32_t * first, int32_t * last) {
    char a[32], b[32];
    const char * dash = strchr(v, '-');
    int64_t x, y;
    if (!dash) {
        if (!cli_parse_int(flag, v, 0, INT32_MAX, &x)) return false;
        *first = *last = (int32_t) x;
        return true;
    }
    snprintf(a, sizeof(a), "%.*s", (int) (dash - v), v);
    snprintf(b, sizeof(b), "%s", dash + 1);
    if (!cli_parse_int(flag, a, 0, INT32_MAX, &x) || !cli_parse_int(flag, b, 0, INT32_MAX, &y)) return false;
    if (y < x) { cli_error("%s: '%s' is an empty range", flag, v); return false; }
    *first = (int32_t) x;
    *last = (int32_t) y;
    return true;
}

// returns CLI_OK, or the exit code to leave with (-1: help was printed)
static int parse_opts(int argc, char ** argv, struct run_opts * o) {
    o->gen = llt_gen_default_params();
    o->output = "lltrace.db";
    for (int i = 1; i < argc; i++) {
        const char * a = argv[i];
        const char * v = NULL;
        int64_t iv;
        double fv;
#define VALUE() do { if (!(v = cli_value(argc, argv, &i))) return CLI_USAGE; } while (0)
#define IS(s, l) (strcmp(a, s) == 0 || strcmp(a, l) == 0)
        if (cli_is_help(a)) { fputs(usage_text, stdout); fputs("\n", stdout); fputs(cli_iv_usage, stdout); return -1; }
        else if (IS("-m", "--model"))     { VALUE(); o->model = v; }
        else if (IS("-p", "--prompt"))    { VALUE(); o->gen.prompt = v; o->prompt_given = o->prompt_flag = true; }
        else if (IS("-f", "--file"))      { VALUE(); o->prompt_file = v; o->prompt_given = true; }
        else if (IS("-o", "--output"))    { VALUE(); o->output = v; }
        else if (IS("-v", "--verbose"))   { o->verbose = true; }
        else if (IS("-n", "--n-predict")) { VALUE(); if (!cli_parse_int(a, v, 0, 1 << 20, &iv)) return CLI_USAGE; o->gen.n_predict = (int32_t) iv; }
        else if (IS("-t", "--threads"))   { VALUE(); if (!cli_parse_int(a, v, 1, 1024, &iv)) return CLI_USAGE; o->gen.n_threads = (int32_t) iv; }
        else if (IS("-c", "--ctx-size"))  { VALUE(); if (!cli_parse_int(a, v, 0, 1 << 24, &iv)) return CLI_USAGE; o->gen.n_ctx = (int32_t) iv; }
        else if (IS("-b", "--batch-size")){ VALUE(); if (!cli_parse_int(a, v, 1, 1 << 20, &iv)) return CLI_USAGE; o->gen.n_batch = (int32_t) iv; }
        else if (IS("-fa", "--flash-attn"))    { VALUE(); if (!cli_parse_flash_attn(a, v, &o->gen.flash_attn)) return CLI_USAGE; o->fa_given = true; }
        else if (IS("-ctk", "--cache-type-k")) { VALUE(); if (!cli_parse_cache_type(a, v, &o->gen.type_k)) return CLI_USAGE; }
        else if (IS("-ctv", "--cache-type-v")) { VALUE(); if (!cli_parse_cache_type(a, v, &o->gen.type_v)) return CLI_USAGE; }
        else if (strcmp(a, "--seed") == 0)  { VALUE(); if (!cli_parse_int(a, v, 0, UINT32_MAX, &iv)) return CLI_USAGE; o->gen.seed = (uint32_t) iv; }
        else if (strcmp(a, "--temp") == 0)  { VALUE(); if (!cli_parse_float(a, v, 0, 100, &fv)) return CLI_USAGE; o->gen.temp = (float) fv; }
        else if (strcmp(a, "--top-k") == 0) { VALUE(); if (!cli_parse_int(a, v, 0, 1 << 20, &iv)) return CLI_USAGE; o->gen.top_k = (int32_t) iv; o->top_k_given = true; }
        else if (strcmp(a, "--top-p") == 0) { VALUE(); if (!cli_parse_float(a, v, 0, 1, &fv)) return CLI_USAGE; o->gen.top_p = (float) fv; }
        else if (strcmp(a, "--rpc") == 0) { VALUE(); o->gen.rpc = v; }
        else if (IS("-dev", "--device"))  { VALUE(); o->gen.devices = v; }
        else if (IS("-ngl", "--gpu-layers") || strcmp(a, "--n-gpu-layers") == 0) {
            VALUE();
            if (strcmp(v, "auto") == 0 || strcmp(v, "all") == 0) o->gen.n_gpu_layers = -1;
            else if (!cli_parse_int(a, v, 0, 1 << 20, &iv)) return CLI_USAGE;
            else o->gen.n_gpu_layers = (int32_t) iv;
        }
        else if (IS("-sm", "--split-mode")) {
            static const char * const modes[] = { "none", "layer", "row", "tensor" }; // enum llama_split_mode
            int k;
            VALUE();
            if (!cli_parse_choice(a, v, modes, 4, &k)) return CLI_USAGE;
            o->gen.split_mode = k;
        }
        else if (strcmp(a, "--time-nodes") == 0) { o->gen.time_nodes = true; }
        else if (strcmp(a, "--dump") == 0) {
            VALUE();
            if (o->n_dump == MAX_DUMP_PATTERNS) { cli_error("--dump: at most %d patterns", MAX_DUMP_PATTERNS); return CLI_USAGE; }
            if (llt_pattern_check(v) != LLT_OK) { cli_error("%s", llt_last_error()); return CLI_USAGE; }
            o->dump[o->n_dump++] = v;
            o->gen.values.dump = o->dump;
        }
        else if (strcmp(a, "--dump-layer") == 0) { VALUE(); if (!cli_parse_int(a, v, 0, 100000, &iv)) return CLI_USAGE; o->gen.values.dump_layer = (int32_t) iv; }
        else if (strcmp(a, "--layer") == 0)      { VALUE(); if (!cli_parse_int(a, v, 0, 100000, &iv)) return CLI_USAGE; o->gen.values.checkpoint_layer = (int32_t) iv; }
        else if (strcmp(a, "--dump-step") == 0) {
            VALUE();
            if (!parse_range(a, v, &o->gen.values.dump_step_first, &o->gen.values.dump_step_last)) return CLI_USAGE;
        }
        else if (strcmp(a, "--dump-sources") == 0) { o->gen.values.dump_sources = true; }
        else if (strcmp(a, "--dump-type") == 0) {
            static const char * const types[] = { [LLT_DUMP_NATIVE] = "native", [LLT_DUMP_F32] = "f32", [LLT_DUMP_F16] = "f16" };
            int k;
            VALUE();
            if (!cli_parse_choice(a, v, types, 3, &k)) return CLI_USAGE;
            o->gen.values.dump_type = k;
        }
        else if (strcmp(a, "--dump-file") == 0)    { VALUE(); o->gen.values.dump_path = v; }
        else if (strcmp(a, "--checkpoints") == 0)  { o->gen.values.checkpoints = true; }
        else if (strcmp(a, "--parity") == 0)       { VALUE(); o->parity = v; }
        else if (strcmp(a, "--break-on-nan") == 0) { o->gen.values.break_on_nan = true; }
        else if (strcmp(a, "--reference") == 0)    { VALUE(); o->gen.values.reference = v; }
        else if (strcmp(a, "--tolerance-abs") == 0) { VALUE(); if (!cli_parse_float(a, v, 0, 1e30, &fv)) return CLI_USAGE; o->gen.values.tol_abs = fv; }
        else if (strcmp(a, "--tolerance-rel") == 0) { VALUE(); if (!cli_parse_float(a, v, 0, 1e30, &fv)) return CLI_USAGE; o->gen.values.tol_rel = fv; }
        else if (strcmp(a, "--level") == 0) {
            VALUE();
            int l = llt_level_from_name(v);
            if (l < 0) { cli_error("--level: unknown level '%s' (graph, timing, profile, values)", v); return CLI_USAGE; }
            o->gen.level = (enum llt_level) l;
        }
        else {
            const int taken = cli_iv_option(argc, argv, &i, &o->iv);
            if (taken < 0) return CLI_USAGE;
            if (!taken) { cli_error("run: unknown option '%s' (see 'lltrace run --help')", a); return CLI_USAGE; }
        }
#undef VALUE
#undef IS
    }
    if (!o->parity) o->parity = getenv("LLTRACE_PARITY");
    if (o->parity && *o->parity) {
        o->gen.parity_top_k = o->top_k_given ? o->gen.top_k : 10;
        if (o->gen.parity_top_k < 1 || o->gen.parity_top_k > LLT_PARITY_MAX_K) {
            cli_error("--parity: top-k %d is out of range [1, %d]", o->gen.parity_top_k, LLT_PARITY_MAX_K);
            return CLI_USAGE;
        }
    } else {
        o->parity = NULL;
    }
    return CLI_OK;
}

// ---- summary -----------------------------------------------------------------------------

// a run whose trace could not be written whole: why, and where the rest waits
static void trace_failed(const struct run_opts * o, const struct llt_gen_result * r) {
    char log[1100];
    snprintf(log, sizeof(log), "%s-log-%d", o->output, r->run_id); // docs/trace-format.md, "The step log"
    cli_error("the trace %s (run %d) is incomplete: %s", o->output, r->run_id, r->trace_error);
    if (access(log, F_OK) == 0) {
        cli_error("its step log %s keeps the rows not written (with %s.1); they go into the trace when it is next opened with"
                  " room to write", log, log);
    }
}

// the live comparison with --reference: what was compared, what was not and why
static void print_reference(const struct run_opts * o, const struct llt_ref_summary * s) {
    fprintf(stderr, "lltrace: reference: %lld compared, %lld within tolerance", (long long) s->n_compared, (long long) s->n_within);
    if (s->first_beyond[0]) fprintf(stderr, ", first beyond: %s (max |d| %.3g)", s->first_beyond, s->first_beyond_max_abs);
    fputc('\n', stderr);
    if (s->n_shape_differs > 0) {
        fprintf(stderr, "lltrace: reference: %lld skipped, shapes differ (%s)", (long long) s->n_shape_differs, s->shape_example);
        if (s->n_token_count_differs > 0) {
            fprintf(stderr, "; %lld in the token count alone: the prompt differs from the reference's", (long long) s->n_token_count_differs);
        }
        fputc('\n', stderr);
    }
    if (s->n_not_contiguous > 0) fprintf(stderr, "lltrace: reference: %lld skipped, views not contiguous\n", (long long) s->n_not_contiguous);
    if (s->n_ref_cache > 0) {
        fprintf(stderr, "lltrace: reference: its %d K/V cache checkpoints are not compared live ('lltrace diff' compares dumps)\n",
                s->n_ref_cache);
    }
    if (s->n_ref_unseen > 0) {
        fprintf(stderr, "lltrace: reference: %d of its nodes never computed here%s\n", s->n_ref_unseen,
                s->ref_has_probs && !s->run_has_probs ? " (flash attention is on here and was off in the reference: "
                "attention probabilities exist only without it; -fa off)" : "");
    }
    // the cache types of both sides: a cache that is not f32 explains small differences
    struct llt_tensor_set * ref = NULL;
    char rk[16], rv[16], note[400];
    if (s->n_compared > s->n_within && llt_tensor_set_open(o->gen.values.reference, &ref) == LLT_OK &&
        llt_dump_cache_types(ref, rk, rv, sizeof(rk)) &&
        llt_diff_kv_note(rk, rv, ggml_type_name((enum ggml_type) o->gen.type_k), ggml_type_name((enum ggml_type) o->gen.type_v),
                         s->max_abs, note, sizeof(note))) {
        fprintf(stderr, "lltrace: note: A is the reference, B this run: %s (-ctk f32 -ctv f32)\n", note);
    }
    llt_tensor_set_close(ref);
}

static void print_summary(const struct run_opts * o, const struct llt_gen_result * r) {
    // the speeds every command prints for this run (docs/trace-format.md, "Speed")
    const double prompt_tps = llt_speed(r->n_prompt, r->t_prompt_ns), gen_tps = llt_speed(r->n_gen, r->t_gen_ns);
    fprintf(stderr, "\n\nlltrace: %d prompt tokens in %.3f s (%.1f tok/s), %d generated in %.3f s (%.1f tok/s)%s\n",
            r->n_prompt, r->t_prompt_ns / 1e9, isnan(prompt_tps) ? 0.0 : prompt_tps,
            r->n_gen, r->t_gen_ns / 1e9, isnan(gen_tps) ? 0.0 : gen_tps, r->interrupted ? ", interrupted" : "");
    fprintf(stderr, "lltrace: level %s: %lld steps, %lld nodes per step, %lld distinct graphs, weights read %lld/%lld\n",
            llt_level_name(o->gen.level), (long long) r->stats.n_steps, (long long) r->stats.n_nodes_last,
            (long long) r->stats.n_graphs, (long long) r->stats.n_weights_read, (long long) r->stats.n_weights);
    if (r->flash_attn_off) {
        fprintf(stderr, "lltrace: flash attention was turned off: %s\n", o->gen.values.checkpoints ?
                "--checkpoints reads attention probabilities" : "an intervention changes attention scores or probabilities");
    }
    const int n_ivs = llt_iv_set_count(o->gen.interventions);
    if (n_ivs > 0) fprintf(stderr, "lltrace: %d intervention%s made (table interventions; 'lltrace show --runs')\n", n_ivs, n_ivs == 1 ? "" : "s");
    if (r->iv_unmatched[0]) fprintf(stderr, "lltrace: warning: %s changed no node (names are case-sensitive)\n", r->iv_unmatched);
    if (r->dump_unmatched[0]) fprintf(stderr, "lltrace: warning: --dump %s matched no node (names are case-sensitive)\n", r->dump_unmatched);
    if (r->dump_path[0]) fprintf(stderr, "lltrace: %lld tensors dumped to %s\n", (long long) r->stats.n_dumped, r->dump_path);
    if (r->stats.timing_observed_from >= 0 && r->stats.timing_splits) {
        fprintf(stderr, "lltrace: nodes ran off the CPU, where the backend gives no per-node stamps: each split was timed"
                        " by observing its last node from step %lld on ('lltrace profile --by device'; --time-nodes times"
                        " every node, at a round trip each)\n", (long long) r->stats.timing_observed_from);
    } else if (r->stats.timing_observed_from >= 0) {
        fprintf(stderr, "lltrace: the backend gave no per-node stamps that match the graph; nodes were timed by"
                        " observing them from step %lld on (slower)\n", (long long) r->stats.timing_observed_from);
    }
    if (r->has_reference) print_reference(o, &r->reference);
    if (r->stopped_on_nan) fprintf(stderr, "lltrace: stopped at the first NaN/Inf: %s\n", r->nan_report);
    if (r->trace_error[0]) {
        trace_failed(o, r);
        return;
    }
    fprintf(stderr, "lltrace: trace written to %s (run %d); see 'lltrace show %s --stats', or 'lltrace report %s'"
            " for a page to open in a browser\n", o->output, r->run_id, o->output, o->output);
}

// ---- the command -------------------------------------------------------------------------

int cmd_run(int argc, char ** argv) {
    return cli_run_main(argc, argv, NULL, -1);
}

// lltrace run, or lltrace debug with dbg: its replies own standard output, so the text goes
// into its last reply instead
int cli_run_main(int argc, char ** argv, struct llt_debug * dbg, int sigint_fd) {
    struct run_opts o = {0};
    int rc = parse_opts(argc, argv, &o);
    if (rc != CLI_OK) return rc < 0 ? CLI_OK : rc;
    if (dbg) {
        // attention's scores and probabilities, what one most often stops at, exist only
        // without flash attention: off unless asked for; on, the debugger refuses them
        if (!o.fa_given) o.gen.flash_attn = LLAMA_FLASH_ATTN_TYPE_DISABLED;
        llt_debug_set_flash_attn(dbg, o.gen.flash_attn != LLAMA_FLASH_ATTN_TYPE_DISABLED);
        if (!llt_debug_prompt(dbg)) return CLI_OK; // quit before `run`: nothing runs, nothing is made
    }

    llt_log_init(o.verbose);
    char * prompt_buf = NULL;
    char * model_path = NULL;
    struct llt_store * st = NULL;
    struct llt_gen_result res = {0};
    int exit_code = CLI_FAIL;

    if (o.prompt_file && o.prompt_flag) {
        cli_error("-p and -f both give the prompt: choose one");
        exit_code = CLI_USAGE;
        goto done;
    }
    // outputs whose folder is missing fail before anything is made (no trace, no run)
    if (llt_output_dir_check(o.output, "trace") != LLT_OK ||
        (o.gen.values.dump_path && llt_output_dir_check(o.gen.values.dump_path, "dump") != LLT_OK) ||
        (o.parity && llt_output_dir_check(o.parity, "parity file") != LLT_OK)) {
        cli_error("%s", llt_last_error());
        exit_code = CLI_USAGE;
        goto done;
    }
    if (o.prompt_file) {
        if (llt_input_check(o.prompt_file, "prompt file") != LLT_OK) { cli_error("%s", llt_last_error()); exit_code = CLI_USAGE; goto done; }
        prompt_buf = llt_read_text(o.prompt_file, "prompt file");
        if (!prompt_buf) { cli_error("%s", llt_last_error()); exit_code = CLI_USAGE; goto done; }
        // the newline that ends a file's last line is not part of the prompt (as llama.cpp's -f)
        const size_t len = strlen(prompt_buf);
        if (len > 0 && prompt_buf[len - 1] == '\n') prompt_buf[len - 1] = '\0';
        o.gen.prompt = prompt_buf;
    }
    // a bad model or output path fails before anything is loaded or made
    exit_code = CLI_USAGE;
    if (o.model) {
        struct llt_registry * reg = NULL;
        if (llt_registry_load(o.model, &reg) != LLT_OK) {
            cli_error("%s", llt_last_error());
            goto done;
        }
        llt_registry_free(reg);
    }
    if (o.model) {
        model_path = strdup(o.model);
    } else if (cli_default_model("sorter", LLAMA_FTYPE_ALL_F32, &model_path) != LLT_OK) {
        cli_error("%s", llt_last_error());
        exit_code = CLI_FAIL;
        goto done;
    } else if (!o.prompt_given) {
        o.gen.prompt = "sort: d a c b ="; // the task it was trained on (docs/commands/mkmodel.md, "The demo model")
    }
    // bad interventions (syntax, files) fail before anything is made
    if ((exit_code = cli_iv_build(&o.iv, &o.gen.interventions)) != CLI_OK) goto done;
    exit_code = CLI_USAGE;
    // a trace made here and left without a run (llama.cpp refused the model or the context) is
    // removed; an existing one is never touched
    const bool made_trace = access(o.output, F_OK) != 0;
    if (cli_open_trace(o.output, LLT_STORE_WRITE, &st) != LLT_OK) {
        cli_error("%s", llt_last_error());
        goto done;
    }
    exit_code = CLI_FAIL;
    o.gen.model_path = model_path;
    o.gen.stop = &stop_flag;
    o.gen.on_prompt = dbg ? NULL : print_prompt;
    o.gen.on_piece = dbg ? NULL : print_piece;
    o.gen.debug = dbg;
    wake_fd = sigint_fd;
    signal(SIGINT, on_sigint);
    trace_path = o.output;
    ggml_set_abort_callback(on_ggml_abort);
    // the RPC backend writes to its sockets without MSG_NOSIGNAL: a server gone would kill the
    // process with SIGPIPE; ignored, the write fails and llama.cpp aborts, which is reported
    if (o.gen.rpc) signal(SIGPIPE, SIG_IGN);

    rc = llt_generate(&o.gen, st, &res);
    if (dbg) {
        const bool interrupted = res.interrupted || stop_flag;
        llt_debug_exited(dbg, rc != LLT_OK ? "error" : interrupted ? "interrupted" : "ok", res.run_id, res.text);
    }
    if (res.n_ctx_train > 0 && res.n_prompt > res.n_ctx_train) {
        if (res.n_prompt > 0) fputc('\n', stdout);
        cli_error("warning: the prompt has %d tokens, more than the %d the model was trained with: positions past them are"
                  " unreliable", res.n_prompt, res.n_ctx_train);
    }
    signal(SIGINT, SIG_DFL);
    ggml_set_abort_callback(NULL);
    if (rc != LLT_OK) {
        if (res.n_prompt > 0) fputc('\n', stdout); // after the prompt and what came of it
        cli_error("%s", llt_last_error());
        if (res.trace_error[0]) trace_failed(&o, &res);
        // refused while loading: the model or the flags, not the run, are at fault; so is an
        // intervention that cannot be made on the nodes it names
        if (res.t_load_ns == 0 || res.iv_error[0]) exit_code = CLI_USAGE;
        if (made_trace && res.run_id == 0) {
            llt_store_close(st);
            st = NULL;
            unlink(o.output);
        }
        goto done;
    }
    if (o.parity) {
        if (llt_parity_write(o.parity, res.parity, res.n_gen) != LLT_OK) {
            cli_error("%s", llt_last_error());
            goto done;
        }
        fprintf(stderr, "\nlltrace: parity of %d steps (top-%d) written to %s", res.n_gen, o.gen.parity_top_k, o.parity);
    }
    print_summary(&o, &res);
    // the trace holds what ran either way; the status says whether it ran to the end, and
    // whether its trace could be written whole
    const bool beyond = res.has_reference && res.reference.n_within < res.reference.n_compared;
    exit_code = stop_flag ? CLI_INTERRUPTED : res.stopped_on_nan || beyond || res.trace_error[0] ? CLI_FAIL : CLI_OK;
done:
    llt_gen_result_free(&res);
    llt_iv_set_free(o.gen.interventions);
    llt_store_close(st);
    free(model_path);
    free(prompt_buf);
    return exit_code;
}
