// Tensor files: .npy and safetensors round trips, hand-made files of every .npy dtype and
// order, and bad input (bad headers, unsupported dtypes, truncated files), each with a clear
// LLT_EFORMAT message. The hand-made files are written byte by byte here, not by lltrace.
#include "testutil.h"

#include "lltrace.h"
#include "../src/tensors/gguf_writer.h" // private to the library; its symbols are visible
#include "gguf.h"

#include <math.h>
#include <stdint.h>
#include <sys/stat.h>

static char tmp_dir[] = "/tmp/lltrace-test-tensorfile-XXXXXX";

static void path_in_tmp(char * out, size_t cap, const char * name) {
    snprintf(out, cap, "%s/%s", tmp_dir, name);
}

static void write_bytes(const char * path, const void * data, size_t n) {
    FILE * f = fopen(path, "wb");
    REQUIRE(f, "cannot write %s", path);
    REQUIRE(fwrite(data, 1, n, f) == n, "short write %s", path);
    fclose(f);
}

// an .npy file: version, header dict (padded to 64 with spaces and '\n'), then data
static void write_npy(const char * path, int major, const char * dict, const void * data, size_t n) {
    unsigned char buf[4096];
    const size_t pre = major == 1 ? 10 : 12, dl = strlen(dict);
    const size_t total = (pre + dl + 1 + 63) / 64 * 64, hlen = total - pre;
    memcpy(buf, "\x93NUMPY", 6);
    buf[6] = (unsigned char) major;
    buf[7] = 0;
    buf[8] = (unsigned char) (hlen & 0xff);
    buf[9] = (unsigned char) (hlen >> 8);
    if (major > 1) { buf[10] = 0; buf[11] = 0; }
    memcpy(buf + pre, dict, dl);
    memset(buf + pre + dl, ' ', hlen - dl - 1);
    buf[total - 1] = '\n';
    REQUIRE(total + n <= sizeof(buf), "npy too large");
    memcpy(buf + total, data, n);
    write_bytes(path, buf, total + n);
}

// a safetensors file: u64 header length, the header as given, then data
static void write_st(const char * path, const char * header, uint64_t claimed_len, const void * data, size_t n) {
    unsigned char buf[4096];
    const size_t hl = strlen(header);
    REQUIRE(8 + hl + n <= sizeof(buf), "safetensors too large");
    memcpy(buf, &claimed_len, 8);
    memcpy(buf + 8, header, hl);
    memcpy(buf + 8 + hl, data, n);
    write_bytes(path, buf, 8 + hl + n);
}

static struct llt_tensor_set * open_ok(const char * path) {
    struct llt_tensor_set * set = NULL;
    const int rc = llt_tensor_set_open(path, &set);
    CHECK(rc == LLT_OK, "open %s: %s", path, llt_last_error());
    return set;
}

static void open_fails(const char * label, const char * path, int want_rc, const char * want_msg) {
    struct llt_tensor_set * set = NULL;
    const int rc = llt_tensor_set_open(path, &set);
    CHECK(rc == want_rc && set == NULL, "%s: rc %d, want %d", label, rc, want_rc);
    CHECK(strstr(llt_last_error(), want_msg) != NULL, "%s: message '%s' lacks '%s'", label, llt_last_error(), want_msg);
    CHECK(strchr(llt_last_error(), '\n') == NULL, "%s: message is not one line", label);
    llt_tensor_set_close(set);
}

// ---- round trips -------------------------------------------------------------------------

static void test_npy_roundtrip(void) {
    char dir[256];
    path_in_tmp(dir, sizeof(dir), "npy");
    REQUIRE(mkdir(dir, 0755) == 0, "mkdir %s", dir);
    float x[6] = { 1.5f, -2.0f, 3.25f, NAN, INFINITY, -0.0f };
    const int64_t ne2[4] = { 3, 2, 1, 1 }, ne1[4] = { 6, 1, 1, 1 };
    const char * odd = "cache_k_l0 (view)#3/x%";
    CHECK_INT(llt_npy_write(dir, odd, x, ne2, 2), LLT_OK);
    CHECK_INT(llt_npy_write(dir, "vec", x, ne1, 1), LLT_OK);

    // the file is a real .npy: numpy's shape is ne reversed, data at a multiple of 64
    char path[512];
    snprintf(path, sizeof(path), "%s/cache_k_l0%%20%%28view%%29#3%%2Fx%%25.npy", dir);
    FILE * f = fopen(path, "rb");
    CHECK(f != NULL, "expected file %s", path);
    if (f) {
        char head[128] = {0};
        const size_t got = fread(head, 1, sizeof(head) - 1, f);
        fclose(f);
        CHECK(got > 64 && memcmp(head, "\x93NUMPY\x01\x00", 8) == 0, "npy magic");
        const unsigned hlen = (unsigned char) head[8] | (unsigned char) head[9] << 8;
        CHECK((10 + hlen) % 64 == 0, "header ends at %u", 10 + hlen);
        CHECK(strstr(head + 10, "'shape': (2, 3)") != NULL, "header: %s", head + 10);
        CHECK(strstr(head + 10, "'descr': '<f4'") != NULL, "header: %s", head + 10);
    }
    snprintf(path, sizeof(path), "%s/vec.npy", dir);
    f = fopen(path, "rb");
    if (f) {
        char head[128] = {0};
        CHECK(fread(head, 1, sizeof(head) - 1, f) > 64, "short vec.npy");
        fclose(f);
        CHECK(strstr(head + 10, "'shape': (6,)") != NULL, "1-d header: %s", head + 10);
    }

    struct llt_tensor_set * set = open_ok(dir);
    if (!set) return;
    CHECK_INT(llt_tensor_set_kind(set), LLT_TENSOR_SET_NPY);
    CHECK_INT(llt_tensor_set_count(set), 2);
    const int i = llt_tensor_set_find(set, odd);
    CHECK(i >= 0, "name '%s' not decoded back", odd);
    if (i >= 0) {
        const struct llt_tensor_info * t = llt_tensor_set_get(set, i);
        CHECK(t->type == GGML_TYPE_F32 && t->n_dims == 2 && t->ne[0] == 3 && t->ne[1] == 2,
            "type %d n_dims %d ne %lld %lld", t->type, t->n_dims, (long long) t->ne[0], (long long) t->ne[1]);
        CHECK_INT(t->layer, 0);
        float y[6];
        CHECK_INT(llt_tensor_set_read_f32(set, i, y), LLT_OK);
        CHECK(memcmp(x, y, sizeof(x)) == 0, "npy values differ");
    }
    llt_tensor_set_close(set);
}

static int get_floats(int i, float * dst, void * user_data) {
    const float * src = user_data;
    for (int k = 0; k < 12; k++) dst[k] = src[k] + (float) i;
    return LLT_OK;
}

static void test_safetensors_roundtrip(void) {
    char path[256];
    path_in_tmp(path, sizeof(path), "rt.safetensors");
    const float x[12] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11 };
    const struct llt_tensor_desc t[] = {
        { "model.layers.3.mlp", 2, { 4, 3, 1, 1 } },
        { "with \"quotes\" \\ and \xc3\xa9", 3, { 2, 3, 2, 1 } },
    };
    CHECK_INT(llt_safetensors_write(path, t, 2, get_floats, (void *) x), LLT_OK);
    // the header is JSON with the numpy (outermost-first) shape, 8-aligned
    FILE * f = fopen(path, "rb");
    REQUIRE(f, "no file");
    uint64_t hlen = 0;
    char header[512] = {0};
    REQUIRE(fread(&hlen, 8, 1, f) == 1 && hlen < sizeof(header), "header length");
    REQUIRE(fread(header, 1, (size_t) hlen, f) == hlen, "header");
    fclose(f);
    CHECK(hlen % 8 == 0, "header length %llu", (unsigned long long) hlen);
    CHECK(strstr(header, "\"model.layers.3.mlp\":{\"dtype\":\"F32\",\"shape\":[3,4],\"data_offsets\":[0,48]}") != NULL,
        "header: %s", header);

    struct llt_tensor_set * set = open_ok(path);
    if (!set) return;
    CHECK_INT(llt_tensor_set_kind(set), LLT_TENSOR_SET_SAFETENSORS);
    CHECK_INT(llt_tensor_set_count(set), 2);
    CHECK_INT(llt_tensor_set_find(set, t[1].name), 1);
    const struct llt_tensor_info * a = llt_tensor_set_get(set, 0), * b = llt_tensor_set_get(set, 1);
    CHECK(a->ne[0] == 4 && a->ne[1] == 3 && a->n_dims == 2 && a->layer == 3, "ne %lld %lld layer %d",
        (long long) a->ne[0], (long long) a->ne[1], a->layer);
    CHECK(b->ne[0] == 2 && b->ne[1] == 3 && b->ne[2] == 2 && b->n_dims == 3, "3-d ne");
    float y[12];
    CHECK_INT(llt_tensor_set_read_f32(set, 1, y), LLT_OK);
    CHECK(y[0] == 1 && y[11] == 12, "values %g %g", y[0], y[11]);
    llt_tensor_set_close(set);
}

// ---- hand-made files ---------------------------------------------------------------------

static void test_npy_dtypes(void) {
    char p[256];
    // f8, version 2, shape (2, 2)
    const double d[4] = { 1.5, -2.5, 1e10, 0.125 };
    path_in_tmp(p, sizeof(p), "f8.npy");
    write_npy(p, 2, "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2), }", d, sizeof(d));
    struct llt_tensor_set * set = open_ok(p);
    if (set) {
        float y[4];
        const struct llt_tensor_info * t = llt_tensor_set_get(set, 0);
        CHECK_STR(t->name, "f8");
        CHECK_INT(t->type, GGML_TYPE_F64);
        CHECK_INT(llt_tensor_set_read_f32(set, 0, y), LLT_OK);
        CHECK(y[0] == 1.5f && y[1] == -2.5f && y[2] == 1e10f && y[3] == 0.125f, "f8 values %g %g %g %g", y[0], y[1], y[2], y[3]);
        llt_tensor_set_close(set);
    }
    // Fortran order, version 3: numpy shape (2, 3) stored column-major
    const float fo[6] = { 0, 3, 1, 4, 2, 5 }; // a[i][j] = 3*i + j, stored a[0][0], a[1][0], a[0][1], ...
    path_in_tmp(p, sizeof(p), "fortran.npy");
    write_npy(p, 3, "{\"descr\": \"<f4\", \"fortran_order\": True, \"shape\": (2, 3)}", fo, sizeof(fo));
    if ((set = open_ok(p))) {
        float y[6];
        CHECK(llt_tensor_set_get(set, 0)->fortran, "fortran flag");
        CHECK_INT(llt_tensor_set_read_f32(set, 0, y), LLT_OK);
        for (int k = 0; k < 6; k++) CHECK(y[k] == (float) k, "fortran element %d: %g", k, y[k]);
        llt_tensor_set_close(set);
    }
    // the integer kinds and bool, and a 0-d scalar
    const struct { const char * descr; int type; size_t size; } kinds[] = {
        { "|i1", GGML_TYPE_I8, 1 }, { "<i2", GGML_TYPE_I16, 2 }, { "<i4", GGML_TYPE_I32, 4 }, { "<i8", GGML_TYPE_I64, 8 },
        { "|u1", LLT_TYPE_U8, 1 },  { "<u2", LLT_TYPE_U16, 2 },  { "<u4", LLT_TYPE_U32, 4 },  { "<u8", LLT_TYPE_U64, 8 },
        { "|b1", LLT_TYPE_BOOL, 1 }, { "<f2", GGML_TYPE_F16, 2 },
    };
    for (size_t k = 0; k < sizeof(kinds)/sizeof(kinds[0]); k++) {
        unsigned char raw[3 * 8] = {0};
        for (int e = 0; e < 3; e++) raw[e * kinds[k].size] = (unsigned char) (e == 2 ? 1 : e * 5); // little-endian 0, 5, 1
        if (kinds[k].type == GGML_TYPE_F16) { // 0, 5, 1 as halves
            const uint16_t h[3] = { 0x0000, 0x4500, 0x3c00 };
            memcpy(raw, h, sizeof(h));
        }
        char dict[128];
        snprintf(dict, sizeof(dict), "{'descr': '%s', 'fortran_order': False, 'shape': (3,), }", kinds[k].descr);
        path_in_tmp(p, sizeof(p), "kind.npy");
        write_npy(p, 1, dict, raw, 3 * kinds[k].size);
        if (!(set = open_ok(p))) continue;
        float y[3];
        CHECK_INT(llt_tensor_set_get(set, 0)->type, kinds[k].type);
        CHECK_INT(llt_tensor_set_read_f32(set, 0, y), LLT_OK);
        const float want1 = kinds[k].type == LLT_TYPE_BOOL ? 1.0f : 5.0f; // any non-zero byte is true
        CHECK(y[0] == 0 && y[1] == want1 && y[2] == 1, "%s values %g %g %g", kinds[k].descr, y[0], y[1], y[2]);
        llt_tensor_set_close(set);
    }
    const float one = 7.0f;
    path_in_tmp(p, sizeof(p), "scalar.npy");
    write_npy(p, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (), }", &one, 4);
    if ((set = open_ok(p))) {
        CHECK_INT(llt_tensor_set_get(set, 0)->n_elements, 1);
        llt_tensor_set_close(set);
    }
}

static void test_npy_errors(void) {
    char p[256];
    const float x[4] = {0};
    const struct { const char * dict; const char * want; } bad[] = {
        { "{'descr': '<c8', 'fortran_order': False, 'shape': (2,), }", "unsupported dtype '<c8' (complex)" },
        { "{'descr': '|O', 'fortran_order': False, 'shape': (2,), }",  "unsupported dtype '|O' (Python objects)" },
        { "{'descr': '<U4', 'fortran_order': False, 'shape': (1,), }", "unsupported dtype '<U4' (strings)" },
        { "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }", "structured" },
        { "{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", "big-endian" },
        { "{'descr': '<f4', 'fortran_order': False, 'shape': (9,), }", "truncated" },
        { "{'descr': '<f4', 'fortran_order': Maybe, 'shape': (2,), }", "fortran_order" },
        { "{'descr': '<f4', 'shape': (2,), }",                         "needs descr" },
        { "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}", "unknown key" },
    };
    for (size_t k = 0; k < sizeof(bad)/sizeof(bad[0]); k++) {
        path_in_tmp(p, sizeof(p), "bad.npy");
        write_npy(p, 1, bad[k].dict, x, sizeof(x));
        char label[32];
        snprintf(label, sizeof(label), "bad npy %zu", k);
        open_fails(label, p, LLT_EFORMAT, bad[k].want);
    }
    path_in_tmp(p, sizeof(p), "v9.npy");
    write_npy(p, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", x, 4);
    FILE * f = fopen(p, "r+b");
    REQUIRE(f, "reopen");
    fseek(f, 6, SEEK_SET);
    fputc(9, f);
    fclose(f);
    open_fails("npy version 9", p, LLT_EVERSION, "version 9");
    // a directory with one bad file fails as a whole, naming the file
    char dir[256];
    path_in_tmp(dir, sizeof(dir), "baddir");
    REQUIRE(mkdir(dir, 0755) == 0, "mkdir");
    snprintf(p, sizeof(p), "%s/a.npy", dir);
    write_npy(p, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", x, 4);
    snprintf(p, sizeof(p), "%s/b.npy", dir);
    write_npy(p, 1, "{'descr': '<c16', 'fortran_order': False, 'shape': (1,), }", x, 16);
    open_fails("bad file in a directory", dir, LLT_EFORMAT, "b.npy");
    path_in_tmp(dir, sizeof(dir), "emptydir");
    REQUIRE(mkdir(dir, 0755) == 0, "mkdir");
    open_fails("empty directory", dir, LLT_EFORMAT, "without .npy");
}

static void test_safetensors_errors(void) {
    char p[256];
    const float x[4] = { 1, 2, 3, 4 };
    const char * good = "{\"t\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}";
    path_in_tmp(p, sizeof(p), "good.safetensors");
    write_st(p, good, strlen(good), x, sizeof(x));
    struct llt_tensor_set * set = open_ok(p);
    llt_tensor_set_close(set);

    const struct { const char * header; int64_t len_delta; const char * want; } bad[] = {
        { good, 1000,  "header length" },                       // claims more than the file has
        { "{}", -2,    "header length" },                       // zero
        { "{\"t\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}", 0, "expected ',' or '}'" },
        { "{\"t\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,32]}}", 0, "outside the data" },
        { "{\"t\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[8,4]}}", 0, "outside the data" },
        { "{\"t\":{\"dtype\":\"F32\",\"shape\":[3,2],\"data_offsets\":[0,16]}}", 0, "need 24" },
        { "{\"t\":{\"dtype\":\"F7\",\"shape\":[2,2],\"data_offsets\":[0,16]}}", 0, "unknown dtype 'F7'" },
        { "{\"t\":{\"dtype\":\"F8_E4M3\",\"shape\":[4],\"data_offsets\":[0,4]}}", 0, "unsupported dtype 'F8_E4M3'" },
        { "{\"t\":{\"dtype\":\"F32\",\"shape\":[2,2]}}", 0, "needs dtype, shape and data_offsets" },
        { "{\"t\":{\"dtype\":\"F32\",\"shape\":[2,-2],\"data_offsets\":[0,16]}}", 0, "non-negative integer" },
        { "{\"t\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16],\"x\":1}}", 0, "unknown or repeated key" },
        { "{\"t\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,4],\"data_offsets\":[0,16]}}", 0, "5 dimensions" },
        { "{\"t\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
          "\"t\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 0, "appears twice" },
        { "{\"__metadata__\":{\"a\":1},\"t\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 0, "strings" },
        { "{\"t\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}} x", 0, "trailing bytes" },
        { "{\"t\\q\":{}}", 0, "bad escape" },
        { "[1, 2]", 0, "expected '{'" },
    };
    for (size_t k = 0; k < sizeof(bad)/sizeof(bad[0]); k++) {
        path_in_tmp(p, sizeof(p), "bad.safetensors");
        write_st(p, bad[k].header, (uint64_t) ((int64_t) strlen(bad[k].header) + bad[k].len_delta), x, sizeof(x));
        char label[32];
        snprintf(label, sizeof(label), "bad safetensors %zu", k);
        open_fails(label, p, LLT_EFORMAT, bad[k].want);
    }
    // metadata, escapes and a padded header are fine
    const char * fancy = "{\"__metadata__\":{\"format\":\"pt\"},\"caf\\u00e9 \\\"x\\\"\":"
                         "{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[0,4]}}    ";
    const uint16_t bf[2] = { 0x3f80, 0xc000 }; // 1.0, -2.0
    path_in_tmp(p, sizeof(p), "fancy.safetensors");
    write_st(p, fancy, strlen(fancy), bf, sizeof(bf));
    if ((set = open_ok(p))) {
        float y[2];
        CHECK_STR(llt_tensor_set_get(set, 0)->name, "caf\xc3\xa9 \"x\"");
        CHECK_INT(llt_tensor_set_read_f32(set, 0, y), LLT_OK);
        CHECK(y[0] == 1.0f && y[1] == -2.0f, "bf16 values %g %g", y[0], y[1]);
        llt_tensor_set_close(set);
    }
    // shorter than the header length field
    path_in_tmp(p, sizeof(p), "short.safetensors");
    write_bytes(p, "\x05\x00\x00", 3);
    open_fails("short safetensors", p, LLT_EFORMAT, "too short");
}

static void test_other_errors(void) {
    char p[256];
    path_in_tmp(p, sizeof(p), "missing.gguf");
    open_fails("missing file", p, LLT_EIO, "No such file");
    path_in_tmp(p, sizeof(p), "text.bin");
    write_bytes(p, "hello, this is text", 19);
    open_fails("text file", p, LLT_EFORMAT, "not a GGUF, safetensors or .npy file");
    // a GGUF magic followed by garbage, and a GGUF cut short
    path_in_tmp(p, sizeof(p), "corrupt.gguf");
    write_bytes(p, "GGUF\x03\x00\x00\x00\xff\xff\xff\xff\xff\xff\xff\xff", 16);
    open_fails("corrupt gguf", p, LLT_EFORMAT, "corrupt or truncated GGUF header");
}

// ---- the streaming GGUF writer -----------------------------------------------------------

static bool same_file(const char * a, const char * b) {
    FILE * fa = fopen(a, "rb"), * fb = fopen(b, "rb");
    bool same = fa && fb;
    for (int ca = 0, cb = 0; same && ca != EOF; ) {
        ca = fgetc(fa); cb = fgetc(fb);
        same = ca == cb;
    }
    if (fa) fclose(fa);
    if (fb) fclose(fb);
    return same;
}

// n tensors of shape [1 + i%5, 1 + i%3], values k + i, two keys each, written by the streaming writer
static void write_stream(const char * path, const struct gguf_context * global, int n) {
    FILE * f = fopen(path, "wb");
    REQUIRE(f, "write %s", path);
    struct llt_gguf_writer w;
    REQUIRE(llt_gguf_writer_begin(&w, f, global, 2 * (int64_t) n, n) == LLT_OK, "%s", llt_last_error());
    char key[96], name[64];
    for (int i = 0; i < n; i++) {
        snprintf(name, sizeof(name), "t%d", i);
        snprintf(key, sizeof(key), "x.%s.s", name); llt_gguf_writer_kv_str(&w, key, name);
        snprintf(key, sizeof(key), "x.%s.i", name); llt_gguf_writer_kv_i64(&w, key, -i);
    }
    for (int i = 0; i < n; i++) {
        const int64_t ne[4] = { 1 + i % 5, 1 + i % 3, 1, 1 };
        snprintf(name, sizeof(name), "t%d", i);
        const int n_dims = ne[1] > 1 ? 2 : 1; // as ggml_n_dims counts
        llt_gguf_writer_tensor(&w, name, GGML_TYPE_F32, n_dims, ne, (uint64_t) (ne[0] * ne[1]) * sizeof(float));
    }
    llt_gguf_writer_pad(&w);
    for (int i = 0; i < n; i++) {
        const int64_t m = (1 + i % 5) * (1 + i % 3);
        for (int64_t k = 0; k < m; k++) { const float x = (float) (k + i); fwrite(&x, sizeof(x), 1, f); }
        llt_gguf_writer_pad(&w);
    }
    CHECK_INT(llt_gguf_writer_end(&w), LLT_OK);
    fclose(f);
}

static void test_gguf_writer(void) {
    struct gguf_context * global = gguf_init_empty();
    const char * words[] = { "a", "bc", "" };
    const int32_t ints[] = { 3, -1, 7 };
    gguf_set_val_str(global, "general.type", "test");
    gguf_set_val_u32(global, "x.u32", 42);
    gguf_set_val_bool(global, "x.bool", true);
    gguf_set_arr_str(global, "x.words", words, 3);
    gguf_set_arr_data(global, "x.ints", GGUF_TYPE_INT32, ints, 3);

    // a few tensors: the same bytes as gguf's own writer
    enum { FEW = 7 };
    char ps[256], pg[256];
    path_in_tmp(ps, sizeof(ps), "stream.gguf");
    path_in_tmp(pg, sizeof(pg), "ggml.gguf");
    write_stream(ps, global, FEW);
    struct ggml_init_params ip = { .mem_size = 1 << 20, .mem_buffer = NULL, .no_alloc = false };
    struct ggml_context * ctx = ggml_init(ip);
    struct gguf_context * g = gguf_init_empty();
    gguf_set_kv(g, global);
    char key[96], name[64];
    for (int i = 0; i < FEW; i++) {
        snprintf(name, sizeof(name), "t%d", i);
        snprintf(key, sizeof(key), "x.%s.s", name); gguf_set_val_str(g, key, name);
        snprintf(key, sizeof(key), "x.%s.i", name); gguf_set_val_i64(g, key, -i);
    }
    for (int i = 0; i < FEW; i++) {
        struct ggml_tensor * t = ggml_new_tensor_2d(ctx, GGML_TYPE_F32, 1 + i % 5, 1 + i % 3);
        snprintf(name, sizeof(name), "t%d", i);
        ggml_set_name(t, name);
        for (int64_t k = 0; k < ggml_nelements(t); k++) ((float *) t->data)[k] = (float) (k + i);
        gguf_add_tensor(g, t);
    }
    REQUIRE(gguf_write_to_file(g, pg, false), "gguf write");
    CHECK(same_file(ps, pg), "the streaming writer's file differs from gguf_write_to_file's");
    gguf_free(g);
    ggml_free(ctx);

    // many tensors: every one reads back with its shape, values and keys
    enum { MANY = 3000 };
    write_stream(ps, global, MANY);
    struct llt_tensor_set * set = NULL;
    REQUIRE(llt_tensor_set_open(ps, &set) == LLT_OK, "open: %s", llt_last_error());
    CHECK_INT(llt_tensor_set_count(set), MANY);
    const struct llt_gguf * rg = llt_tensor_set_gguf(set);
    int bad = 0;
    for (int i = 0; i < MANY && set; i++) {
        snprintf(name, sizeof(name), "t%d", i);
        const int j = llt_tensor_set_find(set, name);
        const struct llt_tensor_info * t = j >= 0 ? llt_tensor_set_get(set, j) : NULL;
        if (!t || t->ne[0] != 1 + i % 5 || t->ne[1] != 1 + i % 3) { bad++; continue; }
        float x[15];
        if (llt_tensor_set_read_f32(set, j, x) != LLT_OK) { bad++; continue; }
        for (int64_t k = 0; k < t->n_elements; k++) if (x[k] != (float) (k + i)) { bad++; break; }
        snprintf(key, sizeof(key), "x.%s.i", name);
        const int64_t ki = llt_gguf_find_key(rg, key);
        if (llt_gguf_kv_type(rg, ki) != LLT_GGUF_I64 || *(const int64_t *) llt_gguf_val_data(rg, ki) != -i) bad++;
    }
    CHECK(bad == 0, "%d of %d tensors read back wrong, want 0", bad, MANY);
    const int64_t kw = llt_gguf_find_key(rg, "x.words");
    CHECK(kw >= 0 && llt_gguf_arr_n(rg, kw) == 3 && strcmp(llt_gguf_arr_str(rg, kw, 1), "bc") == 0, "x.words lost");
    llt_tensor_set_close(set);
    gguf_free(global);
}

// ---- a dump's per-tensor facts: version 2's arrays, version 1's keys --------------------

// n one-element tensors t0..t<n-1>, order n-1-i, layer i, step 10+i: as one key per tensor and
// field (version 1) or as an array per field (version 2, src -1: no source)
static void write_dump(const char * path, int n, bool v1) {
    struct gguf_context * global = gguf_init_empty();
    gguf_set_val_str(global, "general.type", "lltrace-dump");
    gguf_set_val_u32(global, "lltrace.dump.version", v1 ? 1 : 2);
    int64_t order[8], layer[8], step[8], src[8];
    for (int i = 0; i < n; i++) { order[i] = n - 1 - i; layer[i] = i; step[i] = 10 + i; src[i] = -1; }
    if (!v1) {
        gguf_set_arr_data(global, "lltrace.tensors.order", GGUF_TYPE_INT64, order, (size_t) n);
        gguf_set_arr_data(global, "lltrace.tensors.layer", GGUF_TYPE_INT64, layer, (size_t) n);
        gguf_set_arr_data(global, "lltrace.tensors.step", GGUF_TYPE_INT64, step, (size_t) n);
        gguf_set_arr_data(global, "lltrace.tensors.src", GGUF_TYPE_INT64, src, (size_t) n);
    }
    FILE * f = fopen(path, "wb");
    REQUIRE(f, "write %s", path);
    struct llt_gguf_writer w;
    REQUIRE(llt_gguf_writer_begin(&w, f, global, v1 ? 3 * (int64_t) n : 0, n) == LLT_OK, "%s", llt_last_error());
    char key[96], name[64];
    for (int i = 0; v1 && i < n; i++) {
        snprintf(key, sizeof(key), "lltrace.tensor.t%d.order", i); llt_gguf_writer_kv_i64(&w, key, order[i]);
        snprintf(key, sizeof(key), "lltrace.tensor.t%d.layer", i); llt_gguf_writer_kv_i64(&w, key, layer[i]);
        snprintf(key, sizeof(key), "lltrace.tensor.t%d.step", i);  llt_gguf_writer_kv_i64(&w, key, step[i]);
    }
    const int64_t ne[4] = { 1, 1, 1, 1 };
    for (int i = 0; i < n; i++) {
        snprintf(name, sizeof(name), "t%d", i);
        llt_gguf_writer_tensor(&w, name, GGML_TYPE_F32, 1, ne, sizeof(float));
    }
    llt_gguf_writer_pad(&w);
    for (int i = 0; i < n; i++) {
        const float x = (float) i;
        fwrite(&x, sizeof(x), 1, f);
        llt_gguf_writer_pad(&w);
    }
    CHECK_INT(llt_gguf_writer_end(&w), LLT_OK);
    fclose(f);
    gguf_free(global);
}

static void test_dump_facts(void) {
    for (int v1 = 0; v1 <= 1; v1++) {
        char p[256];
        path_in_tmp(p, sizeof(p), v1 ? "dump-v1.gguf" : "dump-v2.gguf");
        write_dump(p, 4, v1);
        struct llt_tensor_set * set = NULL;
        REQUIRE(llt_tensor_set_open(p, &set) == LLT_OK, "open %s: %s", p, llt_last_error());
        CHECK_INT(llt_tensor_set_count(set), 4);
        for (int i = 0; i < 4; i++) {
            const struct llt_tensor_info * t = llt_tensor_set_get(set, i);
            CHECK(t->order == 3 - i && t->layer == i, "dump v%d: %s order %lld layer %d, want %d %d", 2 - v1, t->name,
                  (long long) t->order, t->layer, 3 - i, i);
        }
        int64_t v = -99;
        CHECK(llt_tensor_set_meta_int(set, "lltrace.tensor.t2.step", &v) && v == 12,
              "dump v%d: lltrace.tensor.t2.step: %lld, want 12", 2 - v1, (long long) v);
        CHECK(!llt_tensor_set_meta_int(set, "lltrace.tensor.t2.src", &v), "dump v%d: t2 has a src", 2 - v1);
        CHECK(!llt_tensor_set_meta_int(set, "lltrace.tensor.t9.step", &v), "dump v%d: no tensor t9, yet a step", 2 - v1);
        CHECK(!llt_tensor_set_meta_int(set, "lltrace.tensor.t2.nothing", &v), "dump v%d: a field that is not there", 2 - v1);
        llt_tensor_set_close(set);
        remove(p);
    }
}

// ---- lltrace's GGUF reader on headers written byte by byte ---------------------------------

struct gbuf { unsigned char b[1024]; size_t n; };
static void gput(struct gbuf * g, const void * p, size_t n) { memcpy(g->b + g->n, p, n); g->n += n; }
static void gu32(struct gbuf * g, uint32_t v) { gput(g, &v, 4); }
static void gu64(struct gbuf * g, uint64_t v) { gput(g, &v, 8); }
static void gstr(struct gbuf * g, const char * s) { gu64(g, strlen(s)); gput(g, s, strlen(s)); }
static void ghead(struct gbuf * g, uint32_t version, int64_t n_tensors, int64_t n_kv) {
    g->n = 0;
    gput(g, "GGUF", 4);
    gu32(g, version);
    gu64(g, (uint64_t) n_tensors);
    gu64(g, (uint64_t) n_kv);
}
static void gkv_u32(struct gbuf * g, const char * key, uint32_t v) { gstr(g, key); gu32(g, 4 /* u32 */); gu32(g, v); }
// a tensor of ndims dims of 4 elements each
static void gtensor(struct gbuf * g, const char * name, uint32_t n_dims, int32_t type, uint64_t offset) {
    gstr(g, name);
    gu32(g, n_dims);
    for (uint32_t d = 0; d < n_dims; d++) gu64(g, 4);
    gu32(g, (uint32_t) type);
    gu64(g, offset);
}

static void gguf_fails(const char * label, struct gbuf * g, const char * want) {
    char p[256];
    path_in_tmp(p, sizeof(p), "bad.gguf");
    while (g->n % 32) g->b[g->n++] = 0;
    memset(g->b + g->n, 0, 128); // room for the data
    write_bytes(p, g->b, g->n + 128);
    open_fails(label, p, LLT_EFORMAT, want);
}

static void test_gguf_reader_errors(void) {
    struct gbuf g;
    ghead(&g, 1, 0, 0);
    gguf_fails("gguf v1", &g, "GGUF version 1 (this reader knows 2 to 3)");
    ghead(&g, 3, 0, 2);
    gkv_u32(&g, "a", 1);
    gkv_u32(&g, "a", 2);
    gguf_fails("duplicate key", &g, "key 'a' appears twice");
    ghead(&g, 3, 0, 1);
    gkv_u32(&g, "general.alignment", 48);
    gguf_fails("alignment 48", &g, "alignment 48 is not a power of 2");
    ghead(&g, 3, 0, 1);
    gstr(&g, "general.alignment"); gu32(&g, 8 /* string */); gstr(&g, "32");
    gguf_fails("alignment as a string", &g, "general.alignment is not a u32");
    ghead(&g, 3, 0, 1);
    gstr(&g, "nested"); gu32(&g, 9 /* array */); gu32(&g, 9 /* of arrays */); gu64(&g, 1);
    gguf_fails("array of arrays", &g, "key 'nested' has invalid GGUF type 9");
    ghead(&g, 3, 0, 1000000000);
    gguf_fails("a billion keys", &g, "more keys than the file holds");
    ghead(&g, 3, 1, 0);
    gtensor(&g, "t", 1, 0 /* f32 */, 4);
    gguf_fails("unaligned tensor", &g, "tensor 't' has an unaligned offset");
    ghead(&g, 3, 1, 0);
    gtensor(&g, "t", 5, 0, 0);
    gguf_fails("5 dimensions", &g, "tensor 't' has more than 4 dimensions");
    ghead(&g, 3, 1, 0);
    gtensor(&g, "t", 1, 4 /* q4_2: removed */, 0);
    gguf_fails("removed type", &g, "tensor 't' has invalid ggml type 4");
    ghead(&g, 3, 1, 0);
    gtensor(&g, "t", 2, 0, 4096);
    gguf_fails("past the end", &g, "truncated (tensor 't' ends at byte");
    ghead(&g, 3, 2, 0);
    gtensor(&g, "t", 1, 0, 0);
    gtensor(&g, "t", 1, 0, 32);
    gguf_fails("duplicate tensor", &g, "tensor name 't' appears twice");
}

// values come back NUL-terminated and aligned wherever the file put them
static void test_gguf_reader_values(void) {
    struct gbuf g;
    ghead(&g, 2, 0, 3);
    gstr(&g, "s"); gu32(&g, 8); gstr(&g, "abc");
    gstr(&g, "strs"); gu32(&g, 9); gu32(&g, 8); gu64(&g, 2); gstr(&g, "x"); gstr(&g, "yz");
    gstr(&g, "i64s"); gu32(&g, 9); gu32(&g, 11); gu64(&g, 2); gu64(&g, (uint64_t) -5); gu64(&g, 7); // at an odd offset
    char p[256];
    path_in_tmp(p, sizeof(p), "values.gguf");
    write_bytes(p, g.b, g.n);
    struct llt_tensor_set * set = open_ok(p);
    const struct llt_gguf * r = set ? llt_tensor_set_gguf(set) : NULL;
    if (!r) { llt_tensor_set_close(set); return; }
    CHECK_INT(llt_gguf_version(r), 2);
    CHECK_INT(llt_gguf_n_kv(r), 3);
    CHECK(strcmp(llt_gguf_val_str(r, llt_gguf_find_key(r, "s")), "abc") == 0, "s is '%s', want 'abc'", llt_gguf_val_str(r, 0));
    const int64_t ks = llt_gguf_find_key(r, "strs");
    CHECK(llt_gguf_arr_n(r, ks) == 2 && strcmp(llt_gguf_arr_str(r, ks, 1), "yz") == 0, "strs[1] lost");
    CHECK(llt_gguf_arr_str(r, ks, 2) == NULL, "strs[2] should be NULL");
    const int64_t ki = llt_gguf_find_key(r, "i64s");
    const int64_t * v = llt_gguf_arr_data(r, ki);
    CHECK(v && ((uintptr_t) v & 7) == 0, "the i64 array is not aligned");
    CHECK(v && v[0] == -5 && v[1] == 7, "i64s lost");
    CHECK(llt_gguf_find_key(r, "i64") == -1 && llt_gguf_find_key(r, "s2") == -1, "found a key that is not there");
    CHECK(llt_gguf_val_str(r, ki) == NULL && llt_gguf_arr_data(r, ks) == NULL, "a getter of the wrong type answered");
    llt_tensor_set_close(set);
}

int main(void) {
    llt_log_init(false);
    REQUIRE(mkdtemp(tmp_dir), "mkdtemp");
    test_npy_roundtrip();
    test_gguf_writer();
    test_dump_facts();
    test_safetensors_roundtrip();
    test_npy_dtypes();
    test_npy_errors();
    test_safetensors_errors();
    test_other_errors();
    test_gguf_reader_errors();
    test_gguf_reader_values();
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", tmp_dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmp_dir);
    return test_result("test-tensorfile");
}
