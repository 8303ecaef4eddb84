// Fuzzes opening a damaged trace read only, then everything a reader does with it
// (read-trace.h): the read functions, the tables of `lltrace show`, the analysis and both
// exports. Seeds (corpus/fuzz-trace/*.trace, not .db, which git ignores): small traces of the
// tiny model, made by the tool and shrunk to small pages:
//   lltrace run -n 2 --level L -o t.db   (L: timing, values; one with --parity P)
//   lltrace run -m tiny-qwen3moe-F32.gguf -n 2 --level timing -o t.db   (moe.trace: expert routing)
//   sqlite3 t.db 'PRAGMA journal_mode=DELETE; PRAGMA page_size=1024; VACUUM'
#include "fuzz.h"
#include "read-trace.h"

int LLVMFuzzerTestOneInput(const uint8_t * data, size_t size) {
    const char * path = fuzz_file(".db", data, size);
    char side[600];
    // a WAL trace's side files from the input before must not be read as this one's
    snprintf(side, sizeof(side), "%s-wal", path);
    unlink(side);
    snprintf(side, sizeof(side), "%s-shm", path);
    unlink(side);
    read_trace(path);
    return 0;
}
