// Runs a libFuzzer harness over files without libFuzzer, so any build (gcc, sanitizers)
// replays the seed corpus and the regression inputs: replay-<harness> DIR|FILE ...
// Exits non-zero if an input crashes it (the sanitizers abort) or a path cannot be read.
#define _DEFAULT_SOURCE
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t * data, size_t size);

static int replay_file(const char * path) {
    FILE * f = fopen(path, "rb");
    if (!f) { fprintf(stderr, "replay: cannot open '%s'\n", path); return 1; }
    uint8_t * buf = NULL;
    size_t n = 0, cap = 0, got;
    do {
        if (n == cap && !(buf = realloc(buf, cap = cap ? 2 * cap : 65536))) abort();
        got = fread(buf + n, 1, cap - n, f);
        n += got;
    } while (got > 0);
    fclose(f);
    LLVMFuzzerTestOneInput(buf, n);
    free(buf);
    return 0;
}

int main(int argc, char ** argv) {
    int bad = 0, count = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) continue; // an empty regress folder is not in git
        if (!S_ISDIR(st.st_mode)) { bad |= replay_file(argv[i]); count++; continue; }
        DIR * d = opendir(argv[i]);
        if (!d) { fprintf(stderr, "replay: cannot open '%s'\n", argv[i]); bad = 1; continue; }
        for (struct dirent * e; (e = readdir(d)); ) {
            if (e->d_name[0] == '.') continue;
            char path[4096];
            snprintf(path, sizeof(path), "%s/%s", argv[i], e->d_name);
            bad |= replay_file(path);
            count++;
        }
        closedir(d);
    }
    printf("replay: %d inputs\n", count);
    return bad || count == 0;
}
