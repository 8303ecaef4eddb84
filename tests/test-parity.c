// Unit test: parity files (reading, writing, malformed lines), parity records of a trace, and
// the comparison of two sequences against figures computed here by hand.
#include "lltrace.h"
#include "testutil.h"

#include <math.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <unistd.h>

static char * write_file(const char * name, const char * text) {
    char * path = path_in(name);
    FILE * f = fopen(path, "wb");
    REQUIRE(f, "cannot write %s", path);
    fputs(text, f);
    REQUIRE(fclose(f) == 0, "cannot write %s", path);
    return path;
}

#define CHECK_NEAR(got, want, tol) do { \
    double g_ = (got), w_ = (want); \
    CHECK(fabs(g_ - w_) <= (tol), "got %.9g, want %.9g", g_, w_); \
} while (0)

// ---- a hand-made pair: A and B agree on tokens for steps 0-2 and differ at step 3 ----------
//
// top-3 lists, largest first; B's logits move a little at steps 1-2 and its choice at step 3.
static const char * seq_a =
    "{\"step\":0,\"token\":10,\"top_k\":[[10,5.0],[11,4.0],[12,3.0]],\"piece\":\"a\",\"pos\":7}\n"
    "{\"step\":1,\"token\":20,\"top_k\":[[20,2.0],[21,1.0],[22,0.0]],\"piece\":\"b\",\"pos\":8}\n"
    "{\"step\":2,\"token\":30,\"top_k\":[[30,1.5],[31,1.0],[32,0.5]],\"piece\":\"c\",\"pos\":9}\n"
    "{\"step\":3,\"token\":40,\"top_k\":[[40,3.0],[41,2.5],[42,1.0]],\"piece\":\"d\",\"pos\":10}\n"
    "{\"step\":4,\"token\":50,\"top_k\":[[50,3.0],[51,2.0],[52,1.0]],\"piece\":\"e\",\"pos\":11}\n";
// another engine's lines: no piece, no pos; top_k not sorted on one line; an extra key
static const char * seq_b =
    "{\"step\":0,\"token\":10,\"top_k\":[[10,5.0],[11,4.0],[12,3.0]]}\n"
    "{\"step\":1,\"token\":20,\"top_k\":[[20,2.0],[21,0.5],[23,0.2]]}\n"
    "\n"
    "{\"step\":2,\"token\":30,\"top_k\":[[31,1.25],[30,1.5],[32,0.5]],\"engine\":{\"name\":\"x\",\"v\":[1,2]}}\n"
    "{\"step\":3,\"token\":41,\"top_k\":[[41,3.0],[40,2.0],[43,1.0]]}\n"
    "{\"step\":4,\"token\":99,\"top_k\":[[99,9.0],[50,1.0],[51,0.0]]}\n";

// KL(P‖Q) of two distributions given as logits over the same ids, computed the plain way
static double kl_of_logits(const double * lp, const double * lq, int n) {
    double zp = 0, zq = 0, kl = 0;
    for (int i = 0; i < n; i++) {
        zp += exp(lp[i]);
        zq += exp(lq[i]);
    }
    for (int i = 0; i < n; i++) {
        const double p = exp(lp[i]) / zp, q = exp(lq[i]) / zq;
        kl += p * log(p / q);
    }
    return kl;
}

static void test_divergence(void) {
    struct llt_parity_step * a = NULL, * b = NULL;
    int32_t n_a = 0, n_b = 0;
    REQUIRE(llt_parity_read(write_file("a.jsonl", seq_a), &a, &n_a) == LLT_OK, "%s", llt_last_error());
    REQUIRE(llt_parity_read(write_file("b.jsonl", seq_b), &b, &n_b) == LLT_OK, "%s", llt_last_error());
    CHECK_INT(n_a, 5);
    CHECK_INT(n_b, 5);
    CHECK_INT(a[0].pos, 7);
    CHECK_STR(a[3].piece, "d");
    CHECK_INT(b[0].pos, -1);
    CHECK_STR(b[0].piece, "");
    CHECK(b[2].ids[0] == 30 && b[2].ids[1] == 31, "top_k sorted on reading: got ids %d, %d", b[2].ids[0], b[2].ids[1]);

    struct llt_parity_report r;
    REQUIRE(llt_parity_compare(a, n_a, b, n_b, 10, &r) == LLT_OK, "%s", llt_last_error());
    CHECK_INT(r.k, 3); // the files have 3 each
    CHECK_INT(r.first_diff, 3);
    CHECK_INT(r.n_compared, 4);
    CHECK_STR(llt_parity_verdict_name(r.verdict), "diverged");
    CHECK(!r.pos_differs, "pos_differs with positions on one side only");
    CHECK(!r.steps[4].compared, "step 4 follows the difference and must not be compared");
    CHECK(r.steps[3].compared, "step 3, the difference itself, must be compared");

    // top-1 ids: equal at steps 0, 1, 2; 40 vs 41 at step 3
    CHECK_INT(r.n_top1, 3);
    // overlap: 3, 2 ({20, 21}), 3, 2 ({40, 41})
    const int overlap[] = { 3, 2, 3, 2 };
    for (int i = 0; i < 4; i++) CHECK_INT(r.steps[i].overlap, overlap[i]);
    CHECK_NEAR(r.mean_overlap, (3 + 2 + 3 + 2) / 12.0, 1e-12);
    // max |diff| over shared ids: 0; |1.0-0.5| = 0.5; |1.0-1.25| = 0.25; |3.0-2.0| = 1.0
    const double diff[] = { 0.0, 0.5, 0.25, 1.0 };
    for (int i = 0; i < 4; i++) CHECK_NEAR(r.steps[i].max_diff, diff[i], 1e-6);
    CHECK_NEAR(r.max_diff, 1.0, 1e-6);
    CHECK_INT(r.max_diff_step, 3);
    // margins at step 3, the first difference: A 3.0 - 2.5, B 3.0 - 2.0
    CHECK_NEAR(r.margin_a, 0.5, 1e-6);
    CHECK_NEAR(r.margin_b, 1.0, 1e-6);

    // KL over the union of ids; an id missing from a side takes that side's 3rd logit
    // step 1: ids 20 21 22 23; A: 2 1 0 [0]; B: 2 0.5 [0.2] 0.2
    // step 2: ids 30 31 32;    A: 1.5 1 0.5; B: 1.5 1.25 0.5
    // step 3: ids 40 41 42 43; A: 3 2.5 1 [1]; B: 2 3 [1] 1
    const double a1[] = { 2, 1, 0, 0 },       b1[] = { 2, 0.5, 0.2, 0.2 };
    const double a2[] = { 1.5, 1, 0.5 },      b2[] = { 1.5, 1.25, 0.5 };
    const double a3[] = { 3, 2.5, 1, 1 },     b3[] = { 2, 3, 1, 1 };
    const double kl[] = { 0, kl_of_logits(a1, b1, 4), kl_of_logits(a2, b2, 3), kl_of_logits(a3, b3, 4) };
    for (int i = 0; i < 4; i++) CHECK_NEAR(r.steps[i].kl, kl[i], 1e-9);
    CHECK_NEAR(r.mean_kl, (kl[0] + kl[1] + kl[2] + kl[3]) / 4, 1e-9);
    CHECK_NEAR(r.max_kl, kl[3], 1e-9);
    CHECK_INT(r.max_kl_step, 3);
    llt_parity_report_free(&r);

    // k asked below what the files have: top-2 only
    REQUIRE(llt_parity_compare(a, n_a, b, n_b, 2, &r) == LLT_OK, "%s", llt_last_error());
    CHECK_INT(r.k, 2);
    CHECK_INT(r.steps[1].overlap, 2);
    CHECK_INT(r.steps[3].overlap, 2); // {40, 41}
    llt_parity_report_free(&r);

    // the same file on both sides
    REQUIRE(llt_parity_compare(a, n_a, a, n_a, 10, &r) == LLT_OK, "%s", llt_last_error());
    CHECK_STR(llt_parity_verdict_name(r.verdict), "identical");
    CHECK_INT(r.first_diff, -1);
    CHECK_INT(r.n_compared, 5);
    CHECK_INT(r.n_top1, 5);
    CHECK_NEAR(r.mean_overlap, 1.0, 0);
    CHECK_NEAR(r.max_kl, 0.0, 0);
    CHECK_NEAR(r.max_diff, 0.0, 0);
    llt_parity_report_free(&r);

    // different lengths: the common 4 steps match, the verdict says the lengths differ
    REQUIRE(llt_parity_compare(a, n_a, a, 4, 10, &r) == LLT_OK, "%s", llt_last_error());
    CHECK_STR(llt_parity_verdict_name(r.verdict), "length-mismatch");
    CHECK_INT(r.n_compared, 4);
    CHECK_INT(r.n_a, 5);
    CHECK_INT(r.n_b, 4);
    llt_parity_report_free(&r);

    // the same tokens with other logits
    b[2].token = 30;
    REQUIRE(llt_parity_compare(a, 3, b, 3, 10, &r) == LLT_OK, "%s", llt_last_error());
    CHECK_STR(llt_parity_verdict_name(r.verdict), "match");
    llt_parity_report_free(&r);

    // prompts of different lengths
    struct llt_parity_step shifted = a[0];
    shifted.pos = 3;
    REQUIRE(llt_parity_compare(a, 1, &shifted, 1, 10, &r) == LLT_OK, "%s", llt_last_error());
    CHECK(r.pos_differs, "positions 7 and 3 at step 0 must be reported");
    llt_parity_report_free(&r);
    free(a);
    free(b);
}

// ---- malformed lines ---------------------------------------------------------------------

// a file whose line `bad_line` is `line`: the error names the file and the line number
static void check_malformed(const char * line, int bad_line, const char * why) {
    char text[1024];
    snprintf(text, sizeof(text), "%s%s\n",
             bad_line == 2 ? "{\"step\":0,\"token\":1,\"top_k\":[[1,0.5]]}\n" : "", line);
    struct llt_parity_step * steps = NULL;
    int32_t n = 0;
    int rc = llt_parity_read(write_file("bad.jsonl", text), &steps, &n);
    CHECK(rc == LLT_EFORMAT, "%s: got %d (%s), want LLT_EFORMAT", why, rc, llt_last_error());
    char want[64];
    snprintf(want, sizeof(want), "line %d", bad_line);
    CHECK(strstr(llt_last_error(), want) && strstr(llt_last_error(), "bad.jsonl"),
          "%s: message '%s' does not name the file and '%s'", why, llt_last_error(), want);
    CHECK(strchr(llt_last_error(), '\n') == NULL, "%s: message is not one line", why);
    CHECK(steps == NULL && n == 0, "%s: steps returned after an error", why);
}

static void test_malformed(void) {
    check_malformed("{\"step\":1,\"token\":2,\"top_k\":[[2,0.5]]", 2, "no closing brace");
    check_malformed("{\"step\":1 \"token\":2,\"top_k\":[[2,0.5]]}", 2, "no comma");
    check_malformed("{\"step\":1,\"token\":2,\"top_k\":[[2,0.5]]} x", 2, "text after the object");
    check_malformed("{\"step\":1,\"token\":2.5,\"top_k\":[[2,0.5]]}", 2, "a fractional token");
    check_malformed("{\"step\":1,\"token\":2,\"top_k\":[[2,NaN]]}", 2, "NaN");
    check_malformed("{\"step\":1,\"token\":2,\"top_k\":[[2,1e999]]}", 2, "an infinite logit");
    check_malformed("{\"step\":1,\"token\":2,\"top_k\":[]}", 2, "an empty top_k");
    check_malformed("{\"step\":1,\"token\":2,\"top_k\":[[2,0.5],[2,0.4]]}", 2, "an id twice");
    check_malformed("{\"step\":1,\"token\":2}", 2, "no top_k");
    check_malformed("{\"step\":1,\"step\":1,\"token\":2,\"top_k\":[[2,0.5]]}", 2, "a key twice");
    check_malformed("{\"step\":5,\"token\":2,\"top_k\":[[2,0.5]]}", 2, "a step out of order");
    check_malformed("{\"step\":1,\"token\":2,\"top_k\":[[2,0.5]],\"piece\":\"a\\q\"}", 2, "a bad escape");
    check_malformed("{'step':0}", 1, "single quotes");
    check_malformed("[1,2]", 1, "an array");

    struct llt_parity_step * steps = NULL;
    int32_t n = 0;
    CHECK(llt_parity_read(write_file("empty.jsonl", "\n\n"), &steps, &n) == LLT_EFORMAT, "an empty file: %s", llt_last_error());
    CHECK(llt_parity_read(path_in("missing.jsonl"), &steps, &n) == LLT_EIO, "a missing file: %s", llt_last_error());
}

// ---- writing and reading back ------------------------------------------------------------

static void test_round_trip(void) {
    struct llt_parity_step s = { .step = 4, .pos = 12, .token = 7, .k = 3,
                                 .ids = { 7, 9, 3 }, .logits = { 12.5f, -3.0e-5f, -0.125f } };
    // a quote, a backslash, a newline, a tab, and a character cut after its first byte
    snprintf(s.piece, sizeof(s.piece), "\"q\\\n\t\xC3");
    char line[LLT_PARITY_LINE_MAX];
    int len = llt_parity_format(&s, line, sizeof(line));
    CHECK(len > 0 && (size_t) len < sizeof(line), "format returned %d", len);
    CHECK_STR(line, "{\"step\":4,\"token\":7,\"top_k\":[[7,12.5],[9,-2.99999992e-05],[3,-0.125]],"
                    "\"piece\":\"\\\"q\\\\\\n\\u0009\\ufffd\",\"pos\":12}");
    char small[8];
    CHECK_INT(llt_parity_format(&s, small, sizeof(small)), len);
    CHECK_INT(strlen(small), sizeof(small) - 1);

    struct llt_parity_step back;
    REQUIRE(llt_parity_parse(line, &back) == LLT_OK, "%s", llt_last_error());
    CHECK_INT(back.step, 4);
    CHECK_INT(back.pos, 12);
    CHECK_INT(back.k, 3);
    CHECK(memcmp(back.logits, s.logits, 3 * sizeof(float)) == 0 && memcmp(back.ids, s.ids, 3 * sizeof(int32_t)) == 0,
          "top_k read back differs: logit %.9g read back as %.9g", s.logits[1], back.logits[1]);
    CHECK_STR(back.piece, "\"q\\\n\t\xEF\xBF\xBD");

    REQUIRE(llt_parity_write(path_in("w.jsonl"), &s, 1) == LLT_OK, "%s", llt_last_error());
    struct llt_parity_step * steps = NULL;
    int32_t n = 0;
    REQUIRE(llt_parity_read(path_in("w.jsonl"), &steps, &n) == LLT_OK, "%s", llt_last_error());
    CHECK_INT(n, 1);
    CHECK(n == 1 && memcmp(&steps[0], &back, sizeof(back)) == 0, "the file read back differs from the line");
    free(steps);

    // \u escapes and surrogate pairs decode to UTF-8
    REQUIRE(llt_parity_parse("{\"step\":0,\"token\":1,\"top_k\":[[1,0]],\"piece\":\"\\u00e9\\ud83d\\ude00\"}", &back) == LLT_OK,
            "%s", llt_last_error());
    CHECK_STR(back.piece, "\xC3\xA9\xF0\x9F\x98\x80");

    // more than LLT_PARITY_MAX_K entries: the largest, sorted
    char big[LLT_PARITY_LINE_MAX];
    int m = snprintf(big, sizeof(big), "{\"step\":0,\"token\":0,\"top_k\":[");
    for (int i = 0; i < 100; i++) {
        m += snprintf(big + m, sizeof(big) - (size_t) m, "%s[%d,%d]", i ? "," : "", i, (i * 37) % 100);
    }
    snprintf(big + m, sizeof(big) - (size_t) m, "]}");
    REQUIRE(llt_parity_parse(big, &back) == LLT_OK, "%s", llt_last_error());
    CHECK_INT(back.k, LLT_PARITY_MAX_K);
    CHECK(back.logits[0] == 99 && back.logits[LLT_PARITY_MAX_K - 1] == 100 - LLT_PARITY_MAX_K,
          "kept logits %g .. %g, want 99 .. %d", back.logits[0], back.logits[LLT_PARITY_MAX_K - 1], 100 - LLT_PARITY_MAX_K);
}

// ---- parity records in a trace -----------------------------------------------------------

static void test_trace(void) {
    struct llt_store * st = NULL;
    REQUIRE(llt_store_open(path_in("t.db"), LLT_STORE_WRITE, &st) == LLT_OK, "%s", llt_last_error());
    sqlite3 * db = llt_store_db(st);
    REQUIRE(sqlite3_exec(db,
        "INSERT INTO runs(id, status) VALUES (1, 'ok'), (2, 'ok');"
        "INSERT INTO parity(run_id, step, pos, token, piece, top_k) VALUES (1, 0, 7, 10, 'a', '[[10,5.0],[11,4.0]]'), (1, 1, 8, 20, 'b', '[[21,1],[20,2]]');",
        NULL, NULL, NULL) == SQLITE_OK, "%s", sqlite3_errmsg(db));

    struct llt_parity_step * steps = NULL;
    int32_t n = 0;
    REQUIRE(llt_parity_read_trace(st, 1, &steps, &n) == LLT_OK, "%s", llt_last_error());
    CHECK_INT(n, 2);
    CHECK_INT(steps[1].pos, 8);
    CHECK_INT(steps[1].ids[0], 20);
    CHECK_STR(steps[0].piece, "a");
    free(steps);

    // run 2 (the last one) has no records
    CHECK(llt_parity_read_trace(st, 0, &steps, &n) == LLT_ENOTFOUND, "got '%s'", llt_last_error());
    CHECK(strstr(llt_last_error(), "run 2 has no parity records") != NULL && !strstr(llt_last_error(), "--"),
          "message '%s' does not name the run, or names a flag (the CLI adds the hint)", llt_last_error());

    REQUIRE(sqlite3_exec(db, "INSERT INTO parity(run_id, step, pos, token, piece, top_k) VALUES (2, 0, 0, 1, '', '[[1,2] x')", NULL, NULL, NULL) == SQLITE_OK,
            "%s", sqlite3_errmsg(db));
    CHECK(llt_parity_read_trace(st, 2, &steps, &n) == LLT_EFORMAT, "a bad top_k: '%s'", llt_last_error());
    llt_store_close(st);
}

// the top-k of random logits (with ties) against a full sort by (logit desc, id asc)
static const float * sort_logits;
static int cmp_desc(const void * a, const void * b) {
    const int32_t x = *(const int32_t *) a, y = *(const int32_t *) b;
    if (sort_logits[x] != sort_logits[y]) return sort_logits[x] > sort_logits[y] ? -1 : 1;
    return (x > y) - (x < y);
}

static void test_top_k(void) {
    const int32_t sizes[] = { 32000, 1007, 15, 1 };
    for (size_t si = 0; si < sizeof(sizes) / sizeof(sizes[0]); si++) {
        const int32_t n = sizes[si];
        float * logits = malloc((size_t) n * sizeof(float));
        int32_t * order = malloc((size_t) n * sizeof(int32_t));
        uint32_t x = 12345u + (uint32_t) n;
        for (int32_t i = 0; i < n; i++) {
            x = x * 1664525u + 1013904223u;
            logits[i] = (float) (x >> 20) / 64.0f - 2000.0f; // coarse: many ties
            order[i] = i;
        }
        sort_logits = logits;
        qsort(order, (size_t) n, sizeof(int32_t), cmp_desc);
        const int32_t ks[] = { 1, 10, LLT_PARITY_MAX_K };
        for (size_t ki = 0; ki < 3; ki++) {
            struct llt_parity_step got;
            llt_parity_top_k(logits, n, ks[ki], &got);
            const int32_t want_k = ks[ki] < n ? ks[ki] : n;
            CHECK(got.k == want_k, "n %d k %d: got %d entries", n, ks[ki], got.k);
            for (int32_t j = 0; j < got.k && j < want_k; j++) {
                if (got.ids[j] != order[j] || got.logits[j] != logits[order[j]]) {
                    CHECK(0, "n %d k %d entry %d: id %d (%g), want %d (%g)", n, ks[ki], j, got.ids[j], got.logits[j],
                          order[j], logits[order[j]]);
                    break;
                }
            }
        }
        free(logits);
        free(order);
    }
}

// the top_k column alone: sorted on reading, duplicates refused
static void test_parse_top_k(void) {
    struct llt_parity_step s;
    memset(&s, 0, sizeof(s));
    CHECK_INT(llt_parity_parse_top_k("[[3,1.5],[7,2.5],[9,-1]]", &s), LLT_OK);
    CHECK(s.k == 3 && s.ids[0] == 7 && s.ids[1] == 3 && s.ids[2] == 9 && s.logits[0] == 2.5f,
          "top_k: k %d ids %d %d %d, want 3 ids 7 3 9", s.k, s.ids[0], s.ids[1], s.ids[2]);
    CHECK_INT(llt_parity_parse_top_k("[[3,1],[3,2]]", &s), LLT_EFORMAT);
    CHECK(strstr(llt_last_error(), "twice") != NULL, "message: %s", llt_last_error());
    CHECK_INT(llt_parity_parse_top_k("[[3,1]] x", &s), LLT_EFORMAT);
}

int main(void) {
    test_dir_make("test-parity");
    test_top_k();
    test_parse_top_k();
    test_divergence();
    test_malformed();
    test_round_trip();
    test_trace();
    test_dir_remove();
    return test_result("test-parity");
}
