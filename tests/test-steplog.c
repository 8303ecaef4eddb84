// The step log and recovery: a batch of every kind of row, logged by a process that then
// "dies" (its log is left behind unlocked), comes back into the trace when the trace is next
// opened, field by field; the run's two logs are both replayed; a damaged log replays its whole
// batches before the damage, never crashes, and is kept beside the trace, never deleted.
#include "trace/batch.h"
#include "testutil.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

static char trace[300], log_file[320];

// a batch with two graph nodes, a timed step, two tokens (one cut inside a character), a
// statistics row, a diff row, a parity record and two expert routing rows; the caller frees
// it with llt_batch_free()
static struct llt_batch * make_batch(void) {
    struct llt_batch * b = calloc(1, sizeof(*b));
    REQUIRE(b, "out of memory");
    b->graphs = calloc(1, sizeof(*b->graphs));
    b->n_graphs = b->cap_graphs = 1;
    struct graph_rows * g = &b->graphs[0];
    g->id = 1 * ((int64_t) 1 << 24) + 1;
    g->n_nodes = 2;
    g->recs = calloc(2, sizeof(struct node_rec));
    g->n_strings = 3;
    g->strings = calloc(3, sizeof(char *));
    g->string_data = malloc(32);
    memcpy(g->string_data, "CPU\0inp_pos\0RPC0\0", 17);
    g->strings[0] = g->string_data;
    g->strings[1] = g->string_data + 4;
    g->strings[2] = g->string_data + 12;
    g->recs[0] = (struct node_rec) { .name = "norm-0", .op = GGML_OP_RMS_NORM, .subop = -1, .type = GGML_TYPE_F32,
                                     .layer = 0, .ne = { 8, 2, 1, 1 }, .bytes = 64, .buffer = 0, .n_src = 1,
                                     .device = 0, .split = 0, .src_kind = { SRC_INPUT }, .src_ref = { 1 }, .src_bytes = { 16 } };
    g->recs[1] = (struct node_rec) { .name = "l_out-0", .op = GGML_OP_MUL, .subop = -1, .type = GGML_TYPE_F32,
                                     .layer = 0, .ne = { 8, 2, 1, 1 }, .bytes = 64, .flags = NODE_LOUT | NODE_FUSED,
                                     .buffer = 0, .n_src = 2, .device = 2, .split = 1, .copied = 1, // norm-0 copied to RPC0
                                     .src_kind = { SRC_NODE, SRC_WEIGHT }, .src_ref = { 0, 0 }, .src_bytes = { 64, 32 } };
    b->steps = calloc(1, sizeof(*b->steps));
    b->n_steps = b->cap_steps = 1;
    b->steps[0] = (struct step_rows) { .step = 0, .decode = 0, .graph_id = g->id, .pos0 = 0, .n_tokens = 2,
                                       .is_prompt = true, .t_begin_ns = 50, .t_end_ns = 900, .compute_begin_ns = 100,
                                       .compute_end_ns = 800, .t_sample_ns = 7, .n_times = 2, .time_shift = 1 };
    b->steps[0].times = calloc(2, sizeof(struct node_time));
    b->steps[0].times[0] = (struct node_time) { 0, 10, 150 }; // << 1: 20..300 after compute_begin_ns
    b->steps[0].times[1] = (struct node_time) { 1, 150, 150 };
    b->steps[0].n_split_times = 1;
    b->steps[0].split_times = calloc(1, sizeof(struct split_time));
    b->steps[0].split_times[0] = (struct split_time) { .split = 1, .idx = 1, .t_begin_ns = 300, .t_compute_ns = 350, .t_end_ns = 700 };
    b->tokens = calloc(2, sizeof(*b->tokens));
    b->n_tokens = b->cap_tokens = 2;
    b->tokens[0] = (struct token_rows) { .seq = 0, .step = 0, .pos = 0, .token = 243, .is_prompt = true, .piece = "\xF0" };
    b->tokens[1] = (struct token_rows) { .seq = 1, .step = 0, .pos = 1, .token = 3010, .is_prompt = false, .piece = "h\xC3\xA9" };
    b->stats = calloc(1, sizeof(*b->stats));
    b->n_stats = b->cap_stats = 1;
    b->stats[0] = (struct stat_rows) { 0, 1, { .n = 16, .n_nan = 1, .n_zero = 2, .min = -1.5, .max = 2.5, .mean = 0.25,
                                               .std = 0.5, .absmax = 2.5 } };
    b->diffs = calloc(1, sizeof(*b->diffs));
    b->n_diffs = b->cap_diffs = 1;
    b->diffs[0] = (struct diff_rows) { .step = 0, .idx = 1, .shape_ok = true, .name = "l_out-0",
                                       .d = { .n = 16, .n_finite = 15, .a_nan = 1, .b_inf = 2, .n_exceed = 3,
                                              .max_abs_index = 4, .max_abs = 0.5, .cosine = 0.99 } };
    b->parity = calloc(1, sizeof(*b->parity));
    b->n_parity = b->cap_parity = 1;
    b->parity[0] = (struct parity_rows) { .step = 0, .pos = 2, .token = 3010, .piece = "h\xC3", .top_k = strdup("[[3010,1.5]]") };
    b->routes = calloc(2, sizeof(*b->routes));
    b->n_routes = b->cap_routes = 2;
    b->routes[0] = (struct route_rows) { .step = 0, .layer = 1, .pos = 1, .rank = 0, .expert = 5, .weight = 0.75f };
    b->routes[1] = (struct route_rows) { .step = 0, .layer = 1, .pos = 1, .rank = 1, .expert = 2, .weight = 0.25f };
    return b;
}

// a trace with run 1 running and its one weight, and log `which` of run 1 holding one batch
// (the other log empty), left behind as a dead process leaves them
static void make_dead_run_in(int which) {
    unlink(trace);
    struct llt_store * st = NULL;
    REQUIRE(llt_store_open(trace, LLT_STORE_WRITE, &st) == LLT_OK, "%s", llt_last_error());
    REQUIRE(sqlite3_exec(llt_store_db(st), "INSERT INTO runs(id, status) VALUES (1, 'running');"
                         "INSERT INTO weights(run_id, id, name) VALUES (1, 0, 'blk.0.attn_norm.weight')",
                         NULL, NULL, NULL) == SQLITE_OK, "%s", sqlite3_errmsg(llt_store_db(st)));
    struct llt_steplog * logs[2] = { NULL, NULL };
    for (int k = 0; k < 2; k++) REQUIRE(llt_steplog_create(trace, 1, k, &logs[k]) == LLT_OK, "%s", llt_last_error());
    struct llt_batch * b = make_batch();
    REQUIRE(llt_steplog_append(logs[which], b) == LLT_OK, "%s", llt_last_error());
    llt_batch_free(b);
    for (int k = 0; k < 2; k++) llt_steplog_close(logs[k], true);
    llt_store_close(st);
}

static void make_dead_run(void) { make_dead_run_in(0); }

static char * q(sqlite3 * db, const char * sql) {
    static char out[512];
    sqlite3_stmt * s = NULL;
    out[0] = '\0';
    if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK) {
        snprintf(out, sizeof(out), "error: %s", sqlite3_errmsg(db));
    } else if (sqlite3_step(s) == SQLITE_ROW) {
        snprintf(out, sizeof(out), "%s", sqlite3_column_text(s, 0) ? (const char *) sqlite3_column_text(s, 0) : "NULL");
    }
    sqlite3_finalize(s);
    return out;
}

static void test_replay(int which) {
    make_dead_run_in(which);
    char log1[340];
    snprintf(log1, sizeof(log1), "%s.1", log_file);
    REQUIRE(access(log_file, F_OK) == 0 && access(log1, F_OK) == 0, "no logs at %s and %s", log_file, log1);
    struct llt_store * st = NULL;
    REQUIRE(llt_store_open(trace, LLT_STORE_READ, &st) == LLT_OK, "%s", llt_last_error()); // recovers first
    CHECK(access(log_file, F_OK) != 0 && access(log1, F_OK) != 0, "a log is still there after recovery");
    CHECK(llt_store_recovery_note(st) == NULL, "an intact log gave a note: %s", llt_store_recovery_note(st));
    sqlite3 * db = llt_store_db(st);
    CHECK_STR(q(db, "SELECT status || ' ' || n_prompt || ' ' || n_gen FROM runs WHERE id=1"), "killed 1 1");
    CHECK_STR(q(db, "SELECT group_concat(idx || ':' || name || ':' || op || ':' || layer_out || fused, ' ') FROM nodes"),
              "0:norm-0:RMS_NORM:00 1:l_out-0:MUL:11");
    CHECK_STR(q(db, "SELECT group_concat(slot || ':' || kind || ':' || coalesce(src_idx, weight_id) || ':' || name, ' ')"
                    " FROM node_srcs WHERE idx=1"), "0:node:0:norm-0 1:weight:0:blk.0.attn_norm.weight");
    CHECK_STR(q(db, "SELECT t_sample_ns || ' ' || n_timed || ' ' || compute_end_ns FROM steps"), "7 2 800");
    // begin/end are compute_begin_ns + (value << time_shift)
    CHECK_STR(q(db, "SELECT group_concat(idx || ':' || t_begin_ns || '-' || t_end_ns, ' ') FROM node_times"),
              "0:120-400 1:400-400");
    // where the nodes ran: the splits, the copy of norm-0 from the CPU to RPC0, the split's time
    CHECK_STR(q(db, "SELECT group_concat(idx || ':' || device, ' ') FROM nodes"), "0:CPU 1:RPC0");
    CHECK_STR(q(db, "SELECT group_concat(split || ':' || device || ':' || idx_first || '-' || idx_last || ':' || n_inputs || ':'"
                    " || input_bytes, ' ') FROM splits"), "0:CPU:0-0:0:0 1:RPC0:1-1:1:64");
    CHECK_STR(q(db, "SELECT group_concat(split || ':' || kind || ':' || src_idx || ':' || name || ':' || from_device || '>'"
                    " || to_device || ':' || bytes, ' ') FROM split_inputs"), "1:node:0:norm-0:CPU>RPC0:64");
    CHECK_STR(q(db, "SELECT group_concat(split || ':' || t_begin_ns || '-' || t_compute_ns || '-' || t_end_ns, ' ') FROM split_times"),
              "1:300-350-700");
    CHECK_STR(q(db, "SELECT group_concat(role || ':' || piece || ':' || hex(piece_bytes), ' ') FROM tokens"),
              "prompt:\xEF\xBF\xBD:F0 gen:h\xC3\xA9:68C3A9");
    CHECK_STR(q(db, "SELECT n || ' ' || n_nan || ' ' || n_zero || ' ' || min || ' ' || max || ' ' || mean || ' ' || std"
                    " FROM node_stats"), "16 1 2 -1.5 2.5 0.25 0.5");
    CHECK_STR(q(db, "SELECT name || ' ' || n || ' ' || ref_nonfinite || ' ' || nonfinite || ' ' || n_exceed || ' ' ||"
                    " max_abs_index || ' ' || max_abs || ' ' || within || ' ' || n_nonfinite_pairs FROM node_diffs"),
              "l_out-0 16 1 2 3 4 0.5 0 1");
    CHECK_STR(q(db, "SELECT pos || ' ' || token || ' ' || piece || ' ' || hex(piece_bytes) || ' ' || top_k FROM parity"),
              "2 3010 h\xEF\xBF\xBD 68C3 [[3010,1.5]]");
    CHECK_STR(q(db, "SELECT group_concat(step || ':' || layer || ':' || pos || ':' || rank || ':' || expert || ':' || weight, ' ')"
                    " FROM expert_routing"), "0:1:1:0:5:0.75 0:1:1:1:2:0.25");
    llt_store_close(st);
}

static int count_batches(const struct llt_replay * r, void * user_data) {
    for (const struct llt_batch * b = r->batches; b; b = b->next) (*(int *) user_data)++;
    return LLT_OK;
}

// a log whose first record is damaged: the run is killed with the reason, the note says where
// the file went, and the file is there, byte for byte
static void test_damaged_kept(void) {
    make_dead_run();
    FILE * f = fopen(log_file, "r+b");
    REQUIRE(f, "cannot open %s", log_file);
    static char before[1 << 16];
    const size_t n = fread(before, 1, sizeof(before), f);
    const uint32_t bad_kind = 77; // the first record's kind, after the 24-byte header
    REQUIRE(fseek(f, 24, SEEK_SET) == 0 && fwrite(&bad_kind, 4, 1, f) == 1, "cannot damage %s", log_file);
    fclose(f);
    memcpy(before + 24, &bad_kind, 4);
    struct llt_store * st = NULL;
    REQUIRE(llt_store_open(trace, LLT_STORE_READ, &st) == LLT_OK, "%s", llt_last_error());
    const char * note = llt_store_recovery_note(st);
    CHECK(note && strstr(note, "damaged at byte 24") && strstr(note, ".damaged'"), "note: %s", note ? note : "(none)");
    CHECK(!note || !strchr(note, '\n'), "the note is more than one line: %s", note);
    CHECK_STR(q(llt_store_db(st), "SELECT status || ' ' || (error LIKE '%damaged at byte 24%') FROM runs WHERE id=1"), "killed 1");
    llt_store_close(st);
    char kept[400];
    snprintf(kept, sizeof(kept), "%s.damaged", log_file);
    CHECK(access(log_file, F_OK) != 0, "the damaged log is still under its name");
    f = fopen(kept, "rb");
    CHECK(f != NULL, "the damaged log was not kept as %s", kept);
    if (f) {
        static char after[1 << 16];
        CHECK(fread(after, 1, sizeof(after), f) == n && memcmp(before, after, n) == 0, "%s differs from the log", kept);
        fclose(f);
    }
    // a second open neither replays it again nor removes it
    REQUIRE(llt_store_open(trace, LLT_STORE_READ, &st) == LLT_OK, "%s", llt_last_error());
    CHECK(llt_store_recovery_note(st) == NULL, "the kept log was read again");
    llt_store_close(st);
    CHECK(access(kept, F_OK) == 0, "the kept log went away");
    unlink(kept);
}

// a log of 600 batches comes back a bounded chunk at a time (recovery's memory does not grow
// with the log), every batch once, then one last call
struct chunks { int calls, batches, largest, lasts; };
static int count_chunks(const struct llt_replay * r, void * user_data) {
    struct chunks * c = user_data;
    int n = 0;
    for (const struct llt_batch * b = r->batches; b; b = b->next) n++;
    c->calls++;
    c->batches += n;
    if (n > c->largest) c->largest = n;
    c->lasts += r->last;
    return LLT_OK;
}

static void test_chunks(void) {
    make_dead_run();
    struct llt_steplog * log = NULL;
    unlink(log_file);
    REQUIRE(llt_steplog_create(trace, 1, 0, &log) == LLT_OK, "%s", llt_last_error());
    struct llt_batch * b = make_batch();
    for (int i = 0; i < 600; i++) REQUIRE(llt_steplog_append(log, b) == LLT_OK, "%s", llt_last_error());
    llt_batch_free(b);
    llt_steplog_close(log, true);
    struct chunks c = { 0 };
    CHECK_INT(llt_steplog_replay_dead(trace, count_chunks, &c), 1);
    CHECK_INT(c.batches, 600);
    CHECK(c.largest <= 256, "a chunk of %d batches", c.largest);
    CHECK_INT(c.calls, 4); // 256 + 256 + 88, then the last call
    CHECK_INT(c.lasts, 1);
}

// every byte of the log set to 0xFF in turn, then the file cut at every length: never a
// crash, never more batches than were written
static void test_damage(void) {
    make_dead_run();
    FILE * f = fopen(log_file, "rb");
    REQUIRE(f, "cannot read %s", log_file);
    static char data[1 << 16];
    size_t n = fread(data, 1, sizeof(data), f);
    fclose(f);
    // the batch and the end mark after it lie in the first n bytes; the rest is zeros
    size_t used = n;
    while (used > 0 && data[used - 1] == 0) used--;
    REQUIRE(used > 100 && used < n, "log of %zu bytes, %zu used", n, used);
    int max_batches = 0, full = 0;
    for (size_t i = 0; i < used + 16; i++) {
        for (int cut = 0; cut < 2; cut++) {
            int fd = open(log_file, O_WRONLY | O_CREAT | O_TRUNC, 0644);
            REQUIRE(fd >= 0, "cannot write %s", log_file);
            const char saved = data[i];
            if (!cut) data[i] = (char) 0xFF;
            REQUIRE(write(fd, data, cut ? i : n) == (ssize_t) (cut ? i : n), "short write");
            data[i] = saved;
            close(fd);
            int batches = 0;
            int rc = llt_steplog_replay_dead(trace, count_batches, &batches);
            char kept[400];
            snprintf(kept, sizeof(kept), "%s.damaged", log_file);
            unlink(kept);
            CHECK(rc == 1, "offset %zu%s: replayed %d logs", i, cut ? " (cut)" : "", rc);
            if (batches > max_batches) max_batches = batches;
            full += batches == 1;
        }
    }
    CHECK_INT(max_batches, 1);
    CHECK(full > 0, "no damaged log gave its batch"); // bytes past the end mark do not matter
}

int main(void) {
    test_dir_make("test-steplog");
    snprintf(trace, sizeof(trace), "%s", path_in("t.db"));
    snprintf(log_file, sizeof(log_file), "%s-log-1", trace);
    test_replay(0);
    test_replay(1);
    test_damaged_kept();
    test_chunks();
    test_damage();
    test_dir_remove();
    if (test_failures) {
        fprintf(stderr, "test-steplog: %d check(s) failed\n", test_failures);
        return 1;
    }
    return 0;
}
