// lltrace export: one run of a trace as an event log, or as a timeline.
//
// ndjson: one JSON object per line, each with an "event" member:
//   session_start                       the run: model, parameters, prompt, versions
//   step_begin {kind: decode}           per step (one graph computation)
//     token {role: prompt}              the prompt tokens the step fed
//     step_begin {kind: layer}          per run of consecutive nodes of one block
//       tensor                          per node: shape, type, bytes, sources, time
//     step_end {kind: layer}
//   step_end {kind: decode}
//   token {role: gen}                   the token sampled from the step's logits
//   session_end                         status, output, counts
// t_ns is nanoseconds since the run started; a time the trace does not hold (node times of a
// run traced at level graph) is left out, never guessed.
//
// chrome: the Trace Event Format of chrome://tracing and Perfetto (ui.perfetto.dev), one JSON
// object {"traceEvents": [...]}, an event a line. On one thread, nested complete ("X")
// events: each decode call, inside it the graph computation, inside that each layer (a run of
// consecutive nodes of one block whose computing nodes were all timed) and each timed node;
// the token sampled after each call; tokens as instant events. ts and dur in microseconds.
//
// The lines are built by SQLite's json_object(), so they are valid JSON by construction.
#include "cli.h"
#include "lltrace.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char * usage_text =
    "usage: lltrace export TRACE [options]\n"
    "\n"
    "Writes one run of a trace as an event log (one JSON object per line), or as a timeline\n"
    "for chrome://tracing and Perfetto.\n"
    "\n"
    "options:\n"
    "  --run ID            the run to export (default: the last one)\n"
    "  --format FMT        ndjson (default), or chrome: Trace Event Format JSON with the\n"
    "                      decode calls, graph computations, layers and timed nodes\n"
    "  --dump-format FMT   instead: convert the run's tensor dump (run --dump/--checkpoints)\n"
    "                      for PyTorch users: npy (-o is a directory, one NAME.npy per tensor)\n"
    "                      or safetensors (-o is the file); data as float32\n"
    "  -o, --output FILE   write to FILE instead of standard output; FILE is replaced\n"
    "                      only once the export is complete\n"
    "  -h, --help          this help\n";

// ---- queries -----------------------------------------------------------------------------

// Text from the model (prompt, output, token pieces) goes through utf8(): a token may end
// inside a character, and JSON must be UTF-8. json_patch() drops members whose value is
// null, so times the trace does not hold stay out of the line.

static const char session_start_sql[] =
    "SELECT json_object('event', 'session_start', 't_ns', 0, 'run_id', id, 'started_at', started_at,"
    " 'level', level,"
    " 'model', json_object('path', utf8(model_path), 'name', utf8(model_name), 'arch', model_arch,"
    "   'desc', utf8(model_desc), 'n_layer', n_layer, 'n_embd', n_embd, 'n_head', n_head,"
    "   'n_head_kv', n_head_kv, 'n_vocab', n_vocab, 'n_ctx_train', n_ctx_train,"
    "   'file_type', file_type, 'bytes', model_bytes, 'n_params', model_params),"
    " 'params', CASE WHEN json_valid(params) THEN json(params) END,"
    " 'prompt', utf8(prompt),"
    " 'versions', json_object('lltrace', lltrace_version, 'llama', llama_tag),"
    " 'system_info', utf8(system_info))"
    " FROM runs WHERE id = :run";

static const char session_end_sql[] =
    "SELECT json_object('event', 'session_end', 'run_id', id, 'ended_at', ended_at, 'status', status,"
    " 'error', utf8(error), 'output', utf8(output), 'n_prompt', n_prompt, 'n_gen', n_gen,"
    " 't_prompt_ns', t_prompt_ns, 't_gen_ns', t_gen_ns,"
    " 'n_steps', (SELECT count(*) FROM steps WHERE run_id = r.id),"
    " 'n_graphs', (SELECT count(*) FROM graphs WHERE run_id = r.id),"
    " 'n_tensors', (SELECT count(*) FROM steps s JOIN nodes n ON n.graph_id = s.graph_id"
    "   WHERE s.run_id = r.id))"
    " FROM runs r WHERE id = :run";

// per step: its number, its step_begin line, its step_end line
static const char steps_sql[] =
    "SELECT step,"
    " json_patch(json_object('event', 'step_begin', 'kind', 'decode', 'step', step, 'decode', decode,"
    "   'phase', phase, 'pos0', pos0, 'n_tokens', n_tokens, 'graph_id', graph_id),"
    "   json_object('t_ns', t_begin_ns)),"
    " json_patch(json_object('event', 'step_end', 'kind', 'decode', 'step', step, 'decode', decode,"
    "   'phase', phase),"
    "   json_object('t_ns', t_end_ns, 'duration_ns', t_end_ns - t_begin_ns,"
    "     'compute_begin_ns', compute_begin_ns, 'compute_end_ns', compute_end_ns))"
    " FROM steps WHERE run_id = :run ORDER BY step";

// a prompt token is fed when its step begins, a generated one is known when its step ends
static const char tokens_sql[] =
    "SELECT json_patch(json_object('event', 'token', 'step', t.step, 'seq', t.seq, 'role', t.role,"
    "   'pos', t.pos, 'token', t.token, 'piece', utf8(t.piece)),"
    "   json_object('t_ns', CASE t.role WHEN 'prompt' THEN s.t_begin_ns ELSE s.t_end_ns END))"
    " FROM tokens t JOIN steps s ON s.run_id = t.run_id AND s.step = t.step"
    " WHERE t.run_id = :run AND t.step = :step AND t.role = :role ORDER BY t.seq";

// Per node: a layer's step_begin before its first node, the tensor, the layer's step_end
// after its last node. A layer is a run of consecutive nodes with the same layer number;
// its time spans the first node's start to the last node's end.
static const char nodes_sql[] =
    "WITH sn AS ("
    "  SELECT n.*, t.t_begin_ns AS tb, t.t_end_ns AS te,"
    "   n.layer IS NOT lag(n.layer) OVER (ORDER BY n.idx) AS starts"
    "  FROM steps s JOIN nodes n ON n.graph_id = s.graph_id"
    "  LEFT JOIN node_times t ON t.run_id = s.run_id AND t.step = s.step AND t.idx = n.idx"
    "  WHERE s.run_id = :run AND s.step = :step),"
    " seg AS (SELECT *, sum(starts) OVER (ORDER BY idx) AS seg FROM sn),"
    " span AS (SELECT *, idx = min(idx) OVER w AS first, idx = max(idx) OVER w AS last,"
    "   min(tb) OVER w AS seg_tb, max(te) OVER w AS seg_te, count(*) OVER w AS seg_nodes"
    "   FROM seg WINDOW w AS (PARTITION BY seg))"
    " SELECT"
    "  CASE WHEN first AND layer >= 0 THEN json_patch(json_object('event', 'step_begin',"
    "    'kind', 'layer', 'step', :step, 'layer_id', layer), json_object('t_ns', seg_tb)) END,"
    "  json_patch(json_object('event', 'tensor', 'step', :step, 'idx', idx, 'name', name, 'op', op,"
    "    'layer', layer,"
    "    'shape', CASE WHEN ne3 > 1 THEN json_array(ne0, ne1, ne2, ne3)"
    "     WHEN ne2 > 1 THEN json_array(ne0, ne1, ne2) WHEN ne1 > 1 THEN json_array(ne0, ne1)"
    "     ELSE json_array(ne0) END,"
    "    'dtype', type, 'bytes', bytes, 'elements', ne0 * ne1 * ne2 * ne3,"
    "    'is_view', is_view, 'is_noop', is_noop, 'buffer', buffer,"
    "    'sources', (SELECT json_group_array(json_object('slot', slot, 'kind', kind, 'name', name,"
    "       'idx', src_idx, 'weight_id', weight_id, 'bytes', bytes)) FROM ("
    "      SELECT * FROM node_srcs ns WHERE ns.graph_id = span.graph_id AND ns.idx = span.idx"
    "      ORDER BY ns.slot))),"
    "   json_object('t_ns', tb, 'duration_ns', te - tb)),"
    "  CASE WHEN last AND layer >= 0 THEN json_patch(json_object('event', 'step_end',"
    "    'kind', 'layer', 'step', :step, 'layer_id', layer, 'nodes', seg_nodes),"
    "    json_object('t_ns', seg_te, 'duration_ns', seg_te - seg_tb)) END"
    " FROM span ORDER BY idx";

// ---- utf8(): text made valid UTF-8 -------------------------------------------------------

// SQL utf8(x): text with every byte that is not part of a UTF-8 character replaced by U+FFFD;
// NULL and numbers pass unchanged
static void sql_utf8(sqlite3_context * ctx, int argc, sqlite3_value ** argv) {
    int type = sqlite3_value_type(argv[0]);
    if (type != SQLITE_TEXT && type != SQLITE_BLOB) {
        sqlite3_result_value(ctx, argv[0]);
        return;
    }
    const unsigned char * s = sqlite3_value_text(argv[0]);
    size_t n = (size_t) sqlite3_value_bytes(argv[0]);
    if (!s) {
        sqlite3_result_error_nomem(ctx);
        return;
    }
    unsigned char * out = malloc(3 * n + 1); // each byte becomes at most U+FFFD, 3 bytes
    if (!out) {
        sqlite3_result_error_nomem(ctx);
        return;
    }
    size_t o = 0;
    for (size_t i = 0; i < n; ) {
        int len = s[i] ? llt_utf8_len(s + i) : 1;
        if (len == 0) {
            memcpy(out + o, "\xEF\xBF\xBD", 3);
            o += 3;
            i++;
        } else {
            memcpy(out + o, s + i, (size_t) len);
            o += (size_t) len;
            i += (size_t) len;
        }
    }
    sqlite3_result_text(ctx, (const char *) out, (int) o, free);
}

// ---- ndjson ------------------------------------------------------------------------------

struct exporter {
    sqlite3 *    db;
    const char * trace;
    int64_t      run;
    FILE *       out;
    bool         list;    // lines are the elements of a JSON array (chrome), not NDJSON
    int64_t      n_lines; // written so far
};

static int db_error(const struct exporter * ex) {
    cli_error("trace '%s': %s", ex->trace, sqlite3_errmsg(ex->db));
    return CLI_FAIL;
}

// Prepares sql with :run bound. caller finalizes; NULL after printing the error.
static sqlite3_stmt * prepare(const struct exporter * ex, const char * sql) {
    sqlite3_stmt * stmt = NULL;
    if (sqlite3_prepare_v2(ex->db, sql, -1, &stmt, NULL) != SQLITE_OK ||
        sqlite3_bind_int64(stmt, sqlite3_bind_parameter_index(stmt, ":run"), ex->run) != SQLITE_OK) {
        db_error(ex);
        sqlite3_finalize(stmt);
        return NULL;
    }
    return stmt;
}

// Writes column col of the current row as a line, if it is not NULL: a line of NDJSON, or an
// element of the JSON array being written.
static int write_line(struct exporter * ex, sqlite3_stmt * stmt, int col) {
    if (sqlite3_column_type(stmt, col) == SQLITE_NULL) return CLI_OK;
    const unsigned char * line = sqlite3_column_text(stmt, col);
    if (!line) return db_error(ex); // out of memory
    if (ex->list) fputs(ex->n_lines ? ",\n" : "\n", ex->out);
    fputs((const char *) line, ex->out);
    if (!ex->list) fputc('\n', ex->out);
    ex->n_lines++;
    return CLI_OK;
}

// Writes every non-NULL column of every row of stmt as a line, then resets stmt.
static int write_rows(struct exporter * ex, sqlite3_stmt * stmt) {
    int rc = CLI_OK, step_rc = SQLITE_DONE;
    while (rc == CLI_OK && (step_rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        for (int c = 0; c < sqlite3_column_count(stmt) && rc == CLI_OK; c++) {
            rc = write_line(ex, stmt, c);
        }
    }
    if (rc == CLI_OK && step_rc != SQLITE_DONE) rc = db_error(ex);
    sqlite3_reset(stmt);
    return rc;
}

static int write_query(struct exporter * ex, const char * sql) {
    sqlite3_stmt * stmt = prepare(ex, sql);
    if (!stmt) return CLI_FAIL;
    int rc = write_rows(ex, stmt);
    sqlite3_finalize(stmt);
    return rc;
}

static int bind_step(const struct exporter * ex, sqlite3_stmt * stmt, int64_t step, const char * role) {
    int i_role = sqlite3_bind_parameter_index(stmt, ":role");
    if (sqlite3_bind_int64(stmt, sqlite3_bind_parameter_index(stmt, ":step"), step) != SQLITE_OK ||
        (i_role && sqlite3_bind_text(stmt, i_role, role, -1, SQLITE_STATIC) != SQLITE_OK)) {
        return db_error(ex);
    }
    return CLI_OK;
}

static int export_ndjson(struct exporter * ex) {
    sqlite3_stmt * steps = NULL, * tokens = NULL, * nodes = NULL;
    int rc = write_query(ex, session_start_sql);
    if (rc != CLI_OK) goto done;
    if (!(steps = prepare(ex, steps_sql)) || !(tokens = prepare(ex, tokens_sql)) ||
        !(nodes = prepare(ex, nodes_sql))) {
        rc = CLI_FAIL;
        goto done;
    }
    int step_rc;
    while ((step_rc = sqlite3_step(steps)) == SQLITE_ROW) {
        int64_t step = sqlite3_column_int64(steps, 0);
        rc = write_line(ex, steps, 1);
        if (rc == CLI_OK) rc = bind_step(ex, tokens, step, "prompt");
        if (rc == CLI_OK) rc = write_rows(ex, tokens);
        if (rc == CLI_OK) rc = bind_step(ex, nodes, step, NULL);
        if (rc == CLI_OK) rc = write_rows(ex, nodes);
        if (rc == CLI_OK) rc = write_line(ex, steps, 2);
        if (rc == CLI_OK) rc = bind_step(ex, tokens, step, "gen");
        if (rc == CLI_OK) rc = write_rows(ex, tokens);
        if (rc != CLI_OK) goto done;
    }
    rc = step_rc == SQLITE_DONE ? write_query(ex, session_end_sql) : db_error(ex);
done:
    sqlite3_finalize(steps);
    sqlite3_finalize(tokens);
    sqlite3_finalize(nodes);
    return rc;
}

// ---- chrome: the Trace Event Format -------------------------------------------------------

// µs from ns, as the format wants them
#define US(x) "((" x ") / 1000.0)"

static const char chrome_meta_sql[] =
    "SELECT json_object('name', 'process_name', 'ph', 'M', 'pid', 1, 'tid', 0,"
    "  'args', json_object('name', 'lltrace run ' || id || ': ' || utf8(coalesce(model_name, model_path)) || ' (' || level || ')')),"
    " json_object('name', 'thread_name', 'ph', 'M', 'pid', 1, 'tid', 1, 'args', json_object('name', 'llama_decode'))"
    " FROM runs WHERE id = :run";

// per step: the decode call, its graph computation, choosing the token
static const char chrome_steps_sql[] =
    "SELECT"
    " CASE WHEN t_end_ns IS NOT NULL THEN json_object('name', 'decode ' || phase || ' ' || step, 'cat', 'decode',"
    "   'ph', 'X', 'pid', 1, 'tid', 1, 'ts', " US("t_begin_ns") ", 'dur', " US("t_end_ns - t_begin_ns") ","
    "   'args', json_object('step', step, 'phase', phase, 'pos0', pos0, 'n_tokens', n_tokens, 'graph_id', graph_id)) END,"
    " CASE WHEN compute_end_ns IS NOT NULL THEN json_object('name', 'compute', 'cat', 'compute', 'ph', 'X',"
    "   'pid', 1, 'tid', 1, 'ts', " US("compute_begin_ns") ", 'dur', " US("compute_end_ns - compute_begin_ns") ","
    "   'args', json_object('step', step)) END,"
    " CASE WHEN t_sample_ns IS NOT NULL AND t_end_ns IS NOT NULL THEN json_object('name', 'sample', 'cat', 'sample',"
    "   'ph', 'X', 'pid', 1, 'tid', 1, 'ts', " US("t_end_ns") ", 'dur', " US("t_sample_ns") ","
    "   'args', json_object('step', step)) END"
    " FROM steps WHERE run_id = :run ORDER BY step";

static const char chrome_tokens_sql[] =
    "SELECT json_object('name', 'token ' || t.role, 'cat', 'token', 'ph', 'i', 's', 't', 'pid', 1, 'tid', 1,"
    "  'ts', " US("CASE t.role WHEN 'prompt' THEN s.t_begin_ns ELSE s.t_end_ns + coalesce(s.t_sample_ns, 0) END") ","
    "  'args', json_object('seq', t.seq, 'step', t.step, 'pos', t.pos, 'token', t.token, 'piece', utf8(t.piece)))"
    " FROM tokens t JOIN steps s ON s.run_id = t.run_id AND s.step = t.step"
    " WHERE t.run_id = :run AND s.t_begin_ns IS NOT NULL ORDER BY t.seq";

// per step with node times: each layer whose computing nodes were all timed, each timed node
static const char chrome_nodes_sql[] =
    "WITH sn AS ("
    "  SELECT s.step, n.*, t.t_begin_ns AS tb, t.t_end_ns AS te,"
    "   n.layer IS NOT lag(n.layer) OVER (PARTITION BY s.step ORDER BY n.idx) AS starts"
    "  FROM steps s JOIN nodes n ON n.graph_id = s.graph_id"
    "  LEFT JOIN node_times t ON t.run_id = s.run_id AND t.step = s.step AND t.idx = n.idx"
    "  WHERE s.run_id = :run AND s.step IN (SELECT step FROM step_times WHERE run_id = :run)),"
    " seg AS (SELECT *, sum(starts) OVER (PARTITION BY step ORDER BY idx) AS seg FROM sn),"
    " span AS (SELECT *, idx = min(idx) OVER w AS first, min(tb) OVER w AS seg_tb, max(te) OVER w AS seg_te,"
    "   count(te) OVER w AS seg_timed, sum(is_noop = 0) OVER w AS seg_computing, count(*) OVER w AS seg_nodes"
    "   FROM seg WINDOW w AS (PARTITION BY step, seg))"
    " SELECT"
    "  CASE WHEN first AND layer >= 0 AND seg_timed > 0 AND seg_timed = seg_computing THEN"
    "   json_object('name', 'layer ' || layer, 'cat', 'layer', 'ph', 'X', 'pid', 1, 'tid', 1,"
    "    'ts', " US("seg_tb") ", 'dur', " US("seg_te - seg_tb") ","
    "    'args', json_object('step', step, 'layer', layer, 'nodes', seg_nodes)) END,"
    "  CASE WHEN te IS NOT NULL THEN"
    "   json_object('name', CASE WHEN name = '' THEN op ELSE name END, 'cat', op, 'ph', 'X', 'pid', 1, 'tid', 1,"
    "    'ts', " US("tb") ", 'dur', " US("te - tb") ","
    "    'args', json_object('step', step, 'idx', idx, 'op', op, 'layer', layer, 'dtype', type,"
    "     'shape', json_array(ne0, ne1, ne2, ne3), 'bytes', bytes, 'buffer', buffer)) END"
    " FROM span ORDER BY step, idx";

static int export_chrome(struct exporter * ex) {
    ex->list = true;
    fputs("{\"displayTimeUnit\": \"ns\", \"traceEvents\": [", ex->out);
    int rc = write_query(ex, chrome_meta_sql);
    if (rc == CLI_OK) rc = write_query(ex, chrome_steps_sql);
    if (rc == CLI_OK) rc = write_query(ex, chrome_nodes_sql);
    if (rc == CLI_OK) rc = write_query(ex, chrome_tokens_sql);
    fputs("\n]}\n", ex->out);
    return rc;
}

struct export_format {
    const char * name;
    int (*fn)(struct exporter * ex);
};

static const struct export_format formats[] = {
    { "ndjson", export_ndjson },
    { "chrome", export_chrome },
};

// ---- a run's dump as .npy files or safetensors -------------------------------------------

static int read_tensor(int i, float * dst, void * user_data) {
    return llt_tensor_set_read_f32(user_data, i, dst);
}

// the run's dump_path, or NULL with an error printed; caller frees with free()
static char * dump_path_of(const struct exporter * ex) {
    sqlite3_stmt * stmt = prepare(ex, "SELECT dump_path FROM runs WHERE id = :run");
    if (!stmt) return NULL;
    char * path = NULL;
    if (sqlite3_step(stmt) == SQLITE_ROW && sqlite3_column_text(stmt, 0)) {
        path = strdup((const char *) sqlite3_column_text(stmt, 0));
    } else {
        cli_error("run %lld of '%s' has no tensor dump (run with --dump or --checkpoints)", (long long) ex->run, ex->trace);
    }
    sqlite3_finalize(stmt);
    return path;
}

static int export_dump(const struct exporter * ex, const char * format, const char * dest) {
    char * path = dump_path_of(ex);
    if (!path) return CLI_FAIL;
    struct llt_tensor_set * set = NULL;
    struct llt_tensor_desc * descs = NULL;
    float * buf = NULL;
    int rc = CLI_FAIL;
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
        if (mkdir(dest, 0755) != 0 && errno != EEXIST) { cli_error("cannot create '%s': %s", dest, strerror(errno)); goto done; }
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
    free(buf);
    free(descs);
    llt_tensor_set_close(set);
    free(path);
    return rc;
}

// ---- the command -------------------------------------------------------------------------

static int check_run(const struct exporter * ex) {
    sqlite3_stmt * stmt = prepare(ex, "SELECT 1 FROM runs WHERE id = :run");
    if (!stmt) return CLI_FAIL;
    int rc = CLI_OK;
    int step_rc = sqlite3_step(stmt);
    if (step_rc == SQLITE_DONE) {
        cli_error("trace '%s' has no run %lld", ex->trace, (long long) ex->run);
        rc = CLI_USAGE;
    } else if (step_rc != SQLITE_ROW) {
        rc = db_error(ex);
    }
    sqlite3_finalize(stmt);
    return rc;
}

static bool same_file(const char * a, const char * b) {
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

// Runs the export into ex->out: stdout, or path.tmp renamed to path once complete.
static int export_to(struct exporter * ex, const struct export_format * fmt, const char * path) {
    char * tmp = NULL;
    int rc = CLI_OK;
    if (!path) {
        ex->out = stdout;
        rc = fmt->fn(ex);
        if (rc == CLI_OK && (fflush(stdout) != 0 || ferror(stdout))) {
            cli_error("cannot write the export: %s", strerror(errno));
            rc = CLI_FAIL;
        }
        return rc;
    }
    size_t n = strlen(path) + 5;
    tmp = malloc(n);
    if (!tmp) {
        cli_error("out of memory");
        return CLI_FAIL;
    }
    snprintf(tmp, n, "%s.tmp", path);
    ex->out = fopen(tmp, "w");
    if (!ex->out) {
        cli_error("cannot write '%s': %s", tmp, strerror(errno));
        rc = CLI_FAIL;
        goto done;
    }
    rc = fmt->fn(ex);
    bool write_failed = ferror(ex->out) != 0;
    if (fclose(ex->out) != 0) write_failed = true;
    if (rc == CLI_OK && write_failed) {
        cli_error("cannot write '%s': %s", tmp, strerror(errno));
        rc = CLI_FAIL;
    }
    if (rc == CLI_OK && rename(tmp, path) != 0) {
        cli_error("cannot rename '%s' to '%s': %s", tmp, path, strerror(errno));
        rc = CLI_FAIL;
    }
    if (rc != CLI_OK) remove(tmp);
done:
    free(tmp);
    return rc;
}

int cmd_export(int argc, char ** argv) {
    const char * trace = NULL, * path = NULL, * format = "ndjson", * dump_format = NULL;
    int64_t run = 0;
    for (int i = 1; i < argc; i++) {
        const char * a = argv[i];
        if (cli_is_help(a)) {
            fputs(usage_text, stdout);
            return CLI_OK;
        } else if (strcmp(a, "--run") == 0) {
            const char * v = cli_value(argc, argv, &i);
            if (!v || !cli_parse_int(a, v, 1, INT32_MAX, &run)) return CLI_USAGE;
        } else if (strcmp(a, "--format") == 0) {
            if (!(format = cli_value(argc, argv, &i))) return CLI_USAGE;
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
    const struct export_format * fmt = NULL;
    for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++) {
        if (strcmp(format, formats[i].name) == 0) fmt = &formats[i];
    }
    if (!fmt) {
        cli_error("export: unknown format '%s' (ndjson, chrome)", format);
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
    struct exporter ex = { .trace = trace, .run = run };
    int rc = CLI_OK;
    if (llt_store_open(trace, LLT_STORE_READ, &st) != LLT_OK) {
        cli_error("%s", llt_last_error());
        rc = CLI_USAGE;
        goto done;
    }
    ex.db = llt_store_db(st);
    if (ex.run == 0) {
        int last = llt_store_last_run(st);
        if (last < 0) {
            cli_error("%s", llt_last_error());
            rc = CLI_FAIL;
            goto done;
        }
        ex.run = last;
    }
    if (sqlite3_create_function_v2(ex.db, "utf8", 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL,
                                   sql_utf8, NULL, NULL, NULL) != SQLITE_OK) {
        rc = db_error(&ex);
        goto done;
    }
    rc = check_run(&ex);
    if (rc == CLI_OK) rc = dump_format ? export_dump(&ex, dump_format, path) : export_to(&ex, fmt, path);
done:
    llt_store_close(st);
    return rc;
}
