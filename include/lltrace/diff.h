// lltrace/diff.h: set diffs and name maps. Part of lltrace.h.
#pragma once

#include "lltrace/tensors.h"

#ifdef __cplusplus
extern "C" {
#endif

// ---- the K/V cache: a source of differences of its own -----------------------------------

// The K and V cache types ("f16", "q8_0") of the run that wrote a dump, from its
// LLT_DUMP_KEY_PARAMS; false if the set does not say (not an lltrace dump, or an older one).
bool llt_dump_cache_types(const struct llt_tensor_set * set, char * type_k, char * type_v, size_t size);

// When a K or V cache that is not f32 on either side can alone explain the differences seen
// (max_abs up to LLT_DIFF_KV_MAX_ABS: f16 keeps 11 significant bits, so about 1e-3 after
// attention; quantized types fewer), one line into buf that says which side keeps which type,
// and returns true; false (buf "") when both sides keep f32, a side is unknown (NULL or ""),
// or the differences are larger than a cache explains. a_* and b_* are ggml type names.
#define LLT_DIFF_KV_MAX_ABS 1e-2
bool llt_diff_kv_note(const char * a_k, const char * a_v, const char * b_k, const char * b_v, double max_abs,
                      char * buf, size_t size);

struct llt_name_map;

// Reads a name map (docs/name-maps.md). caller frees with llt_name_map_free()
int  llt_name_map_load(const char * path, struct llt_name_map ** out);
void llt_name_map_free(struct llt_name_map * map);
// sets a variable of the map's transforms ({head_dim}), over what the files say
int  llt_name_map_set_var(struct llt_name_map * map, const char * name, int64_t value);

struct llt_diff_params {
    double       tol_abs;
    double       tol_rel;
    int32_t      layer;     // only this layer; -1: all
    const char * name_glob; // only tensors whose A or B name matches (fnmatch); NULL: all
    const struct llt_name_map * map; // NULL: tensors match by equal names
};

struct llt_diff_params llt_diff_default_params(void);

enum llt_diff_status {
    LLT_DIFF_WITHIN,         // compared, every element within tolerance
    LLT_DIFF_EXCEEDS,        // compared, some element outside tolerance
    LLT_DIFF_SHAPE_MISMATCH, // not compared
    LLT_DIFF_ONLY_A,
    LLT_DIFF_ONLY_B,
    LLT_DIFF_STATUS_COUNT,
};
const char * llt_diff_status_name(enum llt_diff_status status);

struct llt_diff_entry {
    enum llt_diff_status status;
    int32_t         a, b;       // tensor indices in A and B; -1 on the missing side
    int32_t         layer;
    int64_t         order;      // graph order (A's, else B's), else A's or B's file order
    int64_t         ne_a[4], ne_b[4]; // ne_b after the map's transforms
    int32_t         type_a, type_b;
    const char *    transform;  // the map's transforms, "" if none (borrowed, lives with the map)
    struct llt_diff d;          // when compared
};

struct llt_set_diff {
    struct llt_diff_entry * entries; // A's tensors in A's order, then the ones only in B
    int32_t n_entries;
    int32_t n_compared, n_within, n_exceed, n_shape_mismatch, n_type_mismatch, n_only_a, n_only_b;
    int32_t n_unmapped;      // tensors no map line names (ignored)
    double  max_abs, max_rel, mean_cosine; // over the compared tensors
    int32_t first_exceed;    // entry of the first tensor in order that exceeds tolerance, -1 if none
    bool    graph_order;     // order is the dump's execution order (else file order)
};

// Compares the tensors of B with those of A, matched by name (or through the map), after
// dequantization. Holds two tensors as floats at a time. caller frees with llt_set_diff_free()
int  llt_set_diff(struct llt_tensor_set * a, struct llt_tensor_set * b, const struct llt_diff_params * p,
                  struct llt_set_diff ** out);
void llt_set_diff_free(struct llt_set_diff * sd);

#ifdef __cplusplus
}
#endif
