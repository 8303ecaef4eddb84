// src/tensors/namemap.h: what the set diff (diff.c) asks of a name map (namemap.c); the map
// itself is public (lltrace/diff.h: llt_name_map_load). Private to src/tensors.
#pragma once

#include "lltrace/diff.h"
#include "tensors/tensor_set.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct map_line; // one line of a map: A's pattern, B's pattern, the transforms

// the first line of map that names A's tensor `name` (a "#step" in it matched or not, as the
// line's pattern asks): B's name into b_name, the layer its {L} names into *layer; NULL if none
const struct map_line * llt_map_a(const struct llt_name_map * map, const char * name, char * b_name, size_t cap,
                                  int32_t * layer);
// whether a line of map names B's tensor `name`
bool llt_map_names_b(const struct llt_name_map * map, const char * name);
// the line's transforms as written ("" when it has none)
const char * llt_map_line_ops(const struct map_line * line);

// the floats of one comparison: A's, B's, scratch (cap elements each)
struct llt_map_bufs {
    float * a, * b, * t;
    int64_t cap;
};
int  llt_map_bufs_reserve(struct llt_map_bufs * bf, int64_t n);
void llt_map_bufs_free(struct llt_map_bufs * bf);

// B's floats in bf->b, of shape ne (updated), brought into A's layout (shape ne_a) by the line's
// transforms; map variables from the map, else from A's or B's metadata. *flat: compare in
// memory order whatever the shapes.
int llt_map_transform(const struct llt_name_map * map, const struct map_line * line, const struct llt_tensor_set * a,
                      const struct llt_tensor_set * b, const int64_t ne_a[4], struct llt_map_bufs * bf, int64_t ne[4],
                      bool * flat);
