// Names: file types, ggml types, levels, statuses, layers; versions, clock, cache folder, log.
#include "core/internal.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#ifndef LLT_LLAMA_TAG
#define LLT_LLAMA_TAG "unknown"
#endif

// ---- llama file types (the names llama-quantize accepts) ---------------------------------

static const struct { int ftype; const char * name; } ftypes[] = {
    { LLAMA_FTYPE_ALL_F32,        "F32"     }, { LLAMA_FTYPE_MOSTLY_F16,     "F16"     },
    { LLAMA_FTYPE_MOSTLY_BF16,    "BF16"    }, { LLAMA_FTYPE_MOSTLY_Q4_0,    "Q4_0"    },
    { LLAMA_FTYPE_MOSTLY_Q4_1,    "Q4_1"    }, { LLAMA_FTYPE_MOSTLY_Q5_0,    "Q5_0"    },
    { LLAMA_FTYPE_MOSTLY_Q5_1,    "Q5_1"    }, { LLAMA_FTYPE_MOSTLY_Q8_0,    "Q8_0"    },
    { LLAMA_FTYPE_MOSTLY_Q2_K,    "Q2_K"    }, { LLAMA_FTYPE_MOSTLY_Q2_K_S,  "Q2_K_S"  },
    { LLAMA_FTYPE_MOSTLY_Q3_K_S,  "Q3_K_S"  }, { LLAMA_FTYPE_MOSTLY_Q3_K_M,  "Q3_K_M"  },
    { LLAMA_FTYPE_MOSTLY_Q3_K_L,  "Q3_K_L"  }, { LLAMA_FTYPE_MOSTLY_Q4_K_S,  "Q4_K_S"  },
    { LLAMA_FTYPE_MOSTLY_Q4_K_M,  "Q4_K_M"  }, { LLAMA_FTYPE_MOSTLY_Q5_K_S,  "Q5_K_S"  },
    { LLAMA_FTYPE_MOSTLY_Q5_K_M,  "Q5_K_M"  }, { LLAMA_FTYPE_MOSTLY_Q6_K,    "Q6_K"    },
    { LLAMA_FTYPE_MOSTLY_IQ2_XXS, "IQ2_XXS" }, { LLAMA_FTYPE_MOSTLY_IQ2_XS,  "IQ2_XS"  },
    { LLAMA_FTYPE_MOSTLY_IQ2_S,   "IQ2_S"   }, { LLAMA_FTYPE_MOSTLY_IQ2_M,   "IQ2_M"   },
    { LLAMA_FTYPE_MOSTLY_IQ3_XXS, "IQ3_XXS" }, { LLAMA_FTYPE_MOSTLY_IQ3_XS,  "IQ3_XS"  },
    { LLAMA_FTYPE_MOSTLY_IQ3_S,   "IQ3_S"   }, { LLAMA_FTYPE_MOSTLY_IQ3_M,   "IQ3_M"   },
    { LLAMA_FTYPE_MOSTLY_IQ1_S,   "IQ1_S"   }, { LLAMA_FTYPE_MOSTLY_IQ1_M,   "IQ1_M"   },
    { LLAMA_FTYPE_MOSTLY_IQ4_NL,  "IQ4_NL"  }, { LLAMA_FTYPE_MOSTLY_IQ4_XS,  "IQ4_XS"  },
    { LLAMA_FTYPE_MOSTLY_TQ1_0,   "TQ1_0"   }, { LLAMA_FTYPE_MOSTLY_TQ2_0,   "TQ2_0"   },
    { LLAMA_FTYPE_MOSTLY_MXFP4_MOE, "MXFP4_MOE" }, { LLAMA_FTYPE_MOSTLY_NVFP4, "NVFP4" },
    { LLAMA_FTYPE_MOSTLY_Q1_0,    "Q1_0"    }, { LLAMA_FTYPE_MOSTLY_Q2_0,    "Q2_0"    },
};

int llt_ftype_from_name(const char * name) {
    for (size_t i = 0; i < sizeof(ftypes)/sizeof(ftypes[0]); i++) {
        if (strcasecmp(name, ftypes[i].name) == 0) return ftypes[i].ftype;
    }
    return -1;
}

const char * llt_ftype_name(int ftype) {
    ftype &= ~LLAMA_FTYPE_GUESSED;
    for (size_t i = 0; i < sizeof(ftypes)/sizeof(ftypes[0]); i++) {
        if (ftypes[i].ftype == ftype) return ftypes[i].name;
    }
    return "?";
}

int llt_type_from_name(const char * name) {
    for (int t = 0; t < GGML_TYPE_COUNT; t++) {
        if (ggml_get_type_traits((enum ggml_type) t)->blck_size == 0) continue; // removed type
        const char * tn = ggml_type_name((enum ggml_type) t);
        if (tn && strcasecmp(tn, name) == 0) return t;
    }
    return -1;
}

// ---- layers ------------------------------------------------------------------------------

// trailing decimal number of s[0..n), or -1
static int trailing_number(const char * s, size_t n, size_t * start) {
    size_t i = n;
    while (i > 0 && isdigit((unsigned char) s[i - 1])) i--;
    if (i == n || n - i > 6) return -1;
    *start = i;
    return atoi(s + i);
}

int llt_layer_from_name(const char * name) {
    if (strncmp(name, "blk.", 4) == 0 && isdigit((unsigned char) name[4])) {
        return atoi(name + 4);
    }
    // strip view suffixes: "Kcur-0 (view)", "cache_k_l0 (view) (permuted)"
    size_t n = strlen(name);
    const char * paren = strstr(name, " (");
    if (paren) n = (size_t) (paren - name);
    size_t start = 0;
    int num = trailing_number(name, n, &start);
    if (num < 0 || start == 0) return -1;
    if (name[start - 1] == '-') return num;                                   // "Qcur-3"
    if (start >= 2 && name[start - 1] == 'l' && name[start - 2] == '_') return num; // "cache_k_l3"
    return -1;
}

// ---- levels and statuses -----------------------------------------------------------------

static const char * level_names[] = { "graph", "timing", "profile", "values" };
_Static_assert(sizeof(level_names)/sizeof(level_names[0]) == LLT_LEVEL_COUNT, "level names");

const char * llt_level_name(enum llt_level level) {
    return (unsigned) level < LLT_LEVEL_COUNT ? level_names[level] : "?";
}

int llt_level_from_name(const char * name) {
    for (int i = 0; i < LLT_LEVEL_COUNT; i++) {
        if (strcmp(name, level_names[i]) == 0) return i;
    }
    return -1;
}

static const char * status_names[] = { "running", "ok", "interrupted", "error", "killed" };
_Static_assert(sizeof(status_names)/sizeof(status_names[0]) == LLT_RUN_STATUS_COUNT, "status names");

const char * llt_run_status_name(enum llt_run_status status) {
    return (unsigned) status < LLT_RUN_STATUS_COUNT ? status_names[status] : "?";
}

// ---- versions, clock, cache --------------------------------------------------------------

const char * llt_version(void)   { return LLT_VERSION; }
const char * llt_llama_tag(void) { return LLT_LLAMA_TAG; }

void llt_utc_now(char * buf, size_t size) {
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

char * llt_cache_dir(void) {
    const char * env = getenv("LLTRACE_CACHE");
    char buf[4096];
    if (env && *env) {
        snprintf(buf, sizeof(buf), "%s", env);
    } else {
        const char * home = getenv("HOME");
        snprintf(buf, sizeof(buf), "%s/.cache/lltrace", home && *home ? home : "/tmp");
    }
    return strdup(buf);
}

// ---- llama.cpp's log ---------------------------------------------------------------------

static bool log_verbose;
// llama.cpp's last error line: why it refused a model or a context, for our own message
static _Thread_local char llama_error[256];
static _Thread_local bool llama_error_open; // the line goes on in GGML_LOG_LEVEL_CONT pieces

static void log_cb(enum ggml_log_level level, const char * text, void * user_data) {
    (void) user_data;
    if (level == GGML_LOG_LEVEL_ERROR) {
        // "llama_init_from_model: V cache quantization requires flash_attn": the function name goes
        const char * colon = strstr(text, ": ");
        size_t k = 0;
        while (text[k] == '_' || isalnum((unsigned char) text[k])) k++;
        snprintf(llama_error, sizeof(llama_error), "%s", colon && colon == text + k && k > 0 ? colon + 2 : text);
        llama_error_open = true;
    } else if (level == GGML_LOG_LEVEL_CONT && llama_error_open) {
        const size_t n = strlen(llama_error);
        snprintf(llama_error + n, sizeof(llama_error) - n, "%s", text);
    } else {
        llama_error_open = false;
    }
    for (size_t n = strlen(llama_error); n > 0 && isspace((unsigned char) llama_error[n - 1]); n--) llama_error[n - 1] = '\0';
    if (log_verbose) fputs(text, stderr); // the caller asked for llama.cpp's log
}

const char * llt_llama_error(void) { return llama_error; }
void llt_llama_error_clear(void) { llama_error[0] = '\0'; llama_error_open = false; }

void llt_log_init(bool verbose) {
    log_verbose = verbose;
    llama_log_set(log_cb, NULL);
}
