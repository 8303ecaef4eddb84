// What a dump says about the run that wrote it, and what that means for a comparison: a K/V
// cache kept in f16 (llama.cpp's default) rounds every key and value to 11 significant bits,
// so two runs that differ only there differ by about 1e-3 downstream of attention. A user who
// sees such differences should learn that they come from the cache, not from the model.
#include "core/internal.h"

#include <stdio.h>
#include <string.h>

// the string value of "key":"value" in a flat JSON object written by lltrace; false if absent
static bool json_field(const char * json, const char * key, char * out, size_t size) {
    char pat[48];
    snprintf(pat, sizeof(pat), "\"%s\":\"", key);
    const char * p = strstr(json, pat);
    if (!p) return false;
    p += strlen(pat);
    const size_t n = strcspn(p, "\"");
    if (p[n] != '"' || n == 0) return false;
    snprintf(out, size, "%.*s", (int) n, p);
    return true;
}

bool llt_dump_cache_types(const struct llt_tensor_set * set, char * type_k, char * type_v, size_t size) {
    const struct llt_gguf * g = llt_tensor_set_gguf(set);
    const char * json = g ? llt_gguf_val_str(g, llt_gguf_find_key(g, LLT_DUMP_KEY_PARAMS)) : NULL;
    if (!json) return false;
    return json_field(json, "type_k", type_k, size) && json_field(json, "type_v", type_v, size);
}

static bool known(const char * t) { return t && *t; }
static bool exact(const char * t) { return strcmp(t, "f32") == 0; }

bool llt_diff_kv_note(const char * a_k, const char * a_v, const char * b_k, const char * b_v, double max_abs,
                      char * buf, size_t size) {
    buf[0] = '\0';
    if (!known(a_k) || !known(a_v) || !known(b_k) || !known(b_v) || !(max_abs > 0 && max_abs <= LLT_DIFF_KV_MAX_ABS)) return false;
    if (exact(a_k) && exact(a_v) && exact(b_k) && exact(b_v)) return false;
    snprintf(buf, size, "the K/V cache is %s/%s in A and %s/%s in B: a cache that is not f32 alone explains "
             "differences of about 1e-3 after attention (%.2g here); keep it f32 on both sides for an exact comparison",
             a_k, a_v, b_k, b_v, max_abs);
    return true;
}
