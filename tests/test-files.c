// The file policy of lltrace/core.h: which inputs are refused and why, and how an output is
// written (replaced once complete, never half-made, a FIFO or device written in place).
#define _DEFAULT_SOURCE // mknod, symlink
#include "lltrace.h"
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

// the whole content of a file, at most 255 bytes; "" when it cannot be read
static const char * slurp(const char * path) {
    static char buf[256];
    buf[0] = '\0';
    FILE * f = fopen(path, "rb");
    if (!f) return buf;
    buf[fread(buf, 1, sizeof(buf) - 1, f)] = '\0';
    fclose(f);
    return buf;
}

static void put(const char * path, const char * text) {
    FILE * f = fopen(path, "w");
    REQUIRE(f && fputs(text, f) >= 0 && fclose(f) == 0, "cannot write %s", path);
}

// the number of entries in the scratch folder, . and .. left out
static int n_entries(void) {
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "exit $(ls -A '%s' | wc -l)", test_dir);
    const int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_inputs(void) {
    put(path_in("file"), "x");
    CHECK_INT(llt_input_check(path_in("file"), "trace"), LLT_OK);
    CHECK_INT(llt_input_check(path_in("absent"), "trace"), LLT_EIO);
    CHECK(strstr(llt_last_error(), "cannot open trace '") && strstr(llt_last_error(), "No such file"), "got '%s'", llt_last_error());
    CHECK_INT(llt_input_check(test_dir, NULL), LLT_EIO);
    CHECK(strstr(llt_last_error(), "is a directory") && strncmp(llt_last_error(), "cannot open '", 13) == 0, "got '%s'", llt_last_error());
    REQUIRE(mkfifo(path_in("fifo"), 0600) == 0, "mkfifo: %s", strerror(errno));
    CHECK_INT(llt_input_check(path_in("fifo"), "map"), LLT_EIO); // returns at once: nothing opens it
    CHECK(strstr(llt_last_error(), "map '") && strstr(llt_last_error(), "is a FIFO"), "got '%s'", llt_last_error());
    REQUIRE(symlink("file", path_in("link")) == 0, "symlink: %s", strerror(errno));
    CHECK_INT(llt_input_check(path_in("link"), NULL), LLT_OK); // a link to a file is that file
}

static void test_regular(void) {
    // a new file appears only at commit, with the content written
    struct llt_outfile * of = NULL;
    REQUIRE(llt_outfile_open(path_in("new"), &of) == LLT_OK, "%s", llt_last_error());
    fputs("hello", llt_outfile_file(of));
    CHECK(access(path_in("new"), F_OK) != 0, "the output exists before commit");
    CHECK(llt_outfile_temp(of) != NULL, "a new file is written through a temporary file");
    CHECK_INT(llt_outfile_commit(of), LLT_OK);
    CHECK_STR(slurp(path_in("new")), "hello");

    // an existing file keeps its content until commit, its mode after; abort leaves it as it was
    put(path_in("old"), "before");
    REQUIRE(chmod(path_in("old"), 0640) == 0, "chmod");
    REQUIRE(llt_outfile_open(path_in("old"), &of) == LLT_OK, "%s", llt_last_error());
    fputs("after", llt_outfile_file(of));
    fflush(llt_outfile_file(of));
    CHECK_STR(slurp(path_in("old")), "before");
    llt_outfile_abort(of);
    CHECK_STR(slurp(path_in("old")), "before");
    REQUIRE(llt_outfile_open(path_in("old"), &of) == LLT_OK, "%s", llt_last_error());
    fputs("after", llt_outfile_file(of));
    CHECK_INT(llt_outfile_commit(of), LLT_OK);
    CHECK_STR(slurp(path_in("old")), "after");
    struct stat sb;
    CHECK(stat(path_in("old"), &sb) == 0 && (sb.st_mode & 0777) == 0640, "mode %o, want 640", (unsigned) (sb.st_mode & 0777));

    // a link stays a link; the file it names is replaced
    put(path_in("named"), "named");
    REQUIRE(symlink("named", path_in("to-named")) == 0, "symlink: %s", strerror(errno));
    REQUIRE(llt_outfile_open(path_in("to-named"), &of) == LLT_OK, "%s", llt_last_error());
    fputs("through", llt_outfile_file(of));
    CHECK_INT(llt_outfile_commit(of), LLT_OK);
    CHECK(lstat(path_in("to-named"), &sb) == 0 && S_ISLNK(sb.st_mode), "the link was replaced");
    CHECK_STR(slurp(path_in("named")), "through");

    // refused: a directory; a folder that does not exist
    CHECK_INT(llt_outfile_open(test_dir, &of), LLT_EIO);
    CHECK(of == NULL && strstr(llt_last_error(), "is a directory"), "got '%s'", llt_last_error());
    CHECK_INT(llt_outfile_open(path_in("missing/x"), &of), LLT_EIO);
    CHECK(strstr(llt_last_error(), "No such file"), "got '%s'", llt_last_error());
}

// a FIFO is written in place, with a reader in a child process; it stays a FIFO
static void test_fifo(void) {
    const char * fifo = path_in("out-fifo");
    REQUIRE(mkfifo(fifo, 0600) == 0, "mkfifo: %s", strerror(errno));
    const pid_t pid = fork();
    REQUIRE(pid >= 0, "fork");
    if (pid == 0) {
        alarm(20); // never outlive a broken test
        const char * got = slurp(fifo);
        _exit(strcmp(got, "piped") == 0 ? 0 : 1);
    }
    struct llt_outfile * of = NULL;
    REQUIRE(llt_outfile_open(fifo, &of) == LLT_OK, "%s", llt_last_error());
    CHECK(llt_outfile_temp(of) == NULL, "a FIFO is written directly");
    fputs("piped", llt_outfile_file(of));
    CHECK_INT(llt_outfile_commit(of), LLT_OK);
    int st = 0;
    waitpid(pid, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the reader did not get 'piped' (status %d)", st);
    struct stat sb;
    CHECK(stat(fifo, &sb) == 0 && S_ISFIFO(sb.st_mode), "the FIFO was replaced");
}

// a character device: a copy of /dev/full made here (root only), written in place; the cause
// of the failure is in the message and the node stays
static void test_device(void) {
    const char * full = path_in("full");
    if (mknod(full, S_IFCHR | 0600, makedev(1, 7)) != 0) {
        printf("skip: device nodes (mknod: %s)\n", strerror(errno));
        return;
    }
    struct llt_outfile * of = NULL;
    REQUIRE(llt_outfile_open(full, &of) == LLT_OK, "%s", llt_last_error());
    fputs("no room", llt_outfile_file(of));
    CHECK_INT(llt_outfile_commit(of), LLT_EIO);
    CHECK(strstr(llt_last_error(), "No space left on device"), "got '%s'", llt_last_error());
    struct stat sb;
    CHECK(stat(full, &sb) == 0 && S_ISCHR(sb.st_mode), "the device node was replaced");
}

int main(void) {
    test_dir_make("test-files");
    test_inputs();
    const int before = n_entries();
    test_regular();
    test_fifo();
    test_device();
    // no temporary file stays: the entries made by the tests above, and nothing else
    const bool root_nodes = access(path_in("full"), F_OK) == 0;
    CHECK_INT(n_entries(), before + 5 + (root_nodes ? 1 : 0)); // new, old, named, to-named, out-fifo (+ full)
    test_dir_remove();
    return test_result("test-files");
}
