// Interventions: the set's insides, shared by intervene.c (matching, applying) and
// intervene_spec.c (the CLI syntax and the spec file). Private to the library.
#pragma once

#include "core/internal.h"

#include <regex.h>

struct iv_entry {
    struct llt_intervention iv;
    bool                    is_regex;
    regex_t                 re;
    float *                 vec;   // add: the vector
    int64_t                 n_vec;
    struct llt_tensor_set * dump;  // patch: the dump
};

struct llt_iv_set {
    struct iv_entry * e;
    int32_t           n, cap;
    void *            scratch;     // a device tensor's bytes, changed in host memory
    size_t            cap_scratch;
    float *           src;         // a patch's values
    int64_t           cap_src;
};

// whether an intervention names this node (its pattern and layer), at some step
bool llt_iv_set_wants_node(const struct llt_iv_set * set, const char * name, int32_t layer);
