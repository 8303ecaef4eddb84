// Fuzzes the name-map reader (docs/name-maps.md): patterns, captures, transforms, variables.
#include "fuzz.h"
#include "lltrace.h"

int LLVMFuzzerTestOneInput(const uint8_t * data, size_t size) {
    struct llt_name_map * map = NULL;
    if (llt_name_map_load(fuzz_file(".map", data, size), &map) == LLT_OK) {
        llt_name_map_set_var(map, "head_dim", 4);
        llt_name_map_free(map);
    }
    return 0;
}
