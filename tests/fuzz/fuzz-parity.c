// Fuzzes the parity JSON Lines reader: one line through the parser, and the bytes as a file
// through the file reader (line splitting, blank lines, line numbers in errors).
#include "fuzz.h"
#include "lltrace.h"

int LLVMFuzzerTestOneInput(const uint8_t * data, size_t size) {
    char * line = malloc(size + 1);
    if (!line) return 0;
    memcpy(line, data, size);
    line[size] = '\0';
    struct llt_parity_step s;
    llt_parity_parse(line, &s);
    free(line);

    struct llt_parity_step * steps = NULL;
    int32_t n = 0;
    if (llt_parity_read(fuzz_file(".jsonl", data, size), &steps, &n) == LLT_OK) {
        struct llt_parity_report r;
        if (llt_parity_compare(steps, n, steps, n, 0, &r) == LLT_OK) llt_parity_report_free(&r);
    }
    free(steps);
    return 0;
}
