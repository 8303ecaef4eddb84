// Files lltrace reads and writes by a user's path: what kind of file a path may name.
//
// Inputs must be regular files: opening a FIFO blocks until someone writes into it, and a
// directory or a device reads as nonsense, so every reader checks its path first and says
// what the path is instead.
//
// Outputs are replaced only once complete: written into a temporary file next to the target
// and renamed over it at commit, so a failure or Ctrl-C leaves the old file (or none). That
// is right for a regular file and wrong for anything else: renaming over /dev/null as root
// turns the device into a regular file, and over a FIFO removes the pipe its reader waits on.
// So a FIFO or a character device (/dev/null, a terminal, /dev/stdout that is a pipe) is
// written directly, as a shell redirection would; a directory, a block device or a socket is
// refused. A symbolic link to a regular file keeps being a link: the file it names is replaced.
#define _DEFAULT_SOURCE // realpath, fchmod
#include "core/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

// what a file that is not a regular file is, for messages
static const char * kind_of(mode_t m) {
    return S_ISDIR(m)  ? "is a directory"
         : S_ISFIFO(m) ? "is a FIFO, not a regular file"
         : S_ISCHR(m)  ? "is a character device, not a regular file"
         : S_ISBLK(m)  ? "is a block device, not a regular file"
         : S_ISSOCK(m) ? "is a socket, not a regular file"
         :               "is not a regular file";
}

int llt_input_check(const char * path, const char * what) {
    struct stat sb;
    const char * sep = what ? " " : "";
    if (!what) what = "";
    if (stat(path, &sb) != 0) return llt_set_error(LLT_EIO, "cannot open %s%s'%s': %s", what, sep, path, strerror(errno));
    if (!S_ISREG(sb.st_mode)) return llt_set_error(LLT_EIO, "cannot open %s%s'%s': it %s", what, sep, path, kind_of(sb.st_mode));
    return LLT_OK;
}

void llt_path_dir(const char * path, char * out, size_t size) {
    const char * slash = strrchr(path, '/');
    if (!slash) snprintf(out, size, ".");
    else if (slash == path) snprintf(out, size, "/");
    else snprintf(out, size, "%.*s", (int) (slash - path), path);
}

int llt_output_dir_check(const char * path, const char * what) {
    char dir[4096];
    llt_path_dir(path, dir, sizeof(dir));
    struct stat sb;
    if (stat(dir, &sb) != 0) return llt_set_error(LLT_EIO, "cannot write %s '%s': no folder '%s'", what, path, dir);
    if (!S_ISDIR(sb.st_mode)) return llt_set_error(LLT_EIO, "cannot write %s '%s': '%s' is not a folder", what, path, dir);
    return LLT_OK;
}

// ---- output files ------------------------------------------------------------------------

struct llt_outfile {
    char * path; // the file replaced at commit (a link's target), or the node written directly
    char * tmp;  // the temporary file renamed over path at commit; NULL when writing directly
    FILE * f;
};

void llt_outfile_abort(struct llt_outfile * of) {
    if (!of) return;
    if (of->f) fclose(of->f);
    if (of->tmp) unlink(of->tmp);
    free(of->tmp);
    free(of->path);
    free(of);
}

int llt_outfile_open(const char * path, struct llt_outfile ** out) {
    *out = NULL;
    struct llt_outfile * of = calloc(1, sizeof(*of));
    if (!of) return llt_set_error(LLT_ENOMEM, "out of memory");
    int rc = LLT_OK;
    struct stat sb;
    const bool exists = stat(path, &sb) == 0;
    if (exists && (S_ISFIFO(sb.st_mode) || S_ISCHR(sb.st_mode))) {
        // no O_CREAT, no O_TRUNC: the node stays what it is
        const int fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0 || !(of->f = fdopen(fd, "wb"))) {
            rc = llt_set_error(LLT_EIO, "cannot write '%s': %s", path, strerror(errno));
            if (fd >= 0) close(fd);
            goto done;
        }
        if (!(of->path = strdup(path))) rc = llt_set_error(LLT_ENOMEM, "out of memory");
        goto done;
    }
    if (exists && !S_ISREG(sb.st_mode)) {
        rc = llt_set_error(LLT_EIO, "cannot write '%s': it %s", path, kind_of(sb.st_mode));
        goto done;
    }
    // a link is followed to the file it names, so that the rename replaces that file
    of->path = exists ? realpath(path, NULL) : strdup(path);
    if (!of->path || !(of->tmp = malloc(strlen(of->path) + 8))) {
        rc = llt_set_error(LLT_ENOMEM, "out of memory");
        goto done;
    }
    sprintf(of->tmp, "%s.XXXXXX", of->path);
    const int fd = mkstemp(of->tmp);
    if (fd < 0) {
        rc = llt_set_error(LLT_EIO, "cannot write '%s': %s", path, strerror(errno));
        free(of->tmp);
        of->tmp = NULL;
        goto done;
    }
    // mkstemp makes it 0600; an output is as readable as any new file of the user's
    const mode_t mask = umask(0);
    umask(mask);
    if (fchmod(fd, exists ? (sb.st_mode & 07777) : (0666 & ~mask)) != 0 || !(of->f = fdopen(fd, "wb"))) {
        rc = llt_set_error(LLT_EIO, "cannot write '%s': %s", path, strerror(errno));
        close(fd);
    }
done:
    if (rc != LLT_OK) {
        llt_outfile_abort(of);
        return rc;
    }
    *out = of;
    return LLT_OK;
}

FILE * llt_outfile_file(struct llt_outfile * of) { return of->f; }

const char * llt_outfile_temp(const struct llt_outfile * of) { return of->tmp; }

int llt_outfile_commit(struct llt_outfile * of) {
    int rc = LLT_OK;
    // fflush first: its errno is the cause (ENOSPC, EFBIG), which fclose would not keep
    if ((fflush(of->f) != 0 || ferror(of->f)) && rc == LLT_OK) rc = llt_set_error(LLT_EIO, "cannot write '%s': %s", of->path, strerror(errno));
    const int closed = fclose(of->f);
    of->f = NULL;
    if (closed != 0 && rc == LLT_OK) rc = llt_set_error(LLT_EIO, "cannot write '%s': %s", of->path, strerror(errno));
    if (rc == LLT_OK && of->tmp && rename(of->tmp, of->path) != 0) {
        rc = llt_set_error(LLT_EIO, "cannot write '%s': %s", of->path, strerror(errno));
    } else if (rc == LLT_OK && of->tmp) {
        free(of->tmp);
        of->tmp = NULL; // renamed: nothing to remove
    }
    llt_outfile_abort(of);
    return rc;
}
