/* libFuzzer target: the agent spool's reader (lib/agent/spool.h). The input
 * is written as segment files in a directory made once per process (a second
 * "VIGSPOOL" header in the input starts a second, newer segment), the spool
 * is opened over them (recovery), every pending record is read and removed,
 * one record is appended, and the directory is emptied again. */
#include "agent/spool.h"

#include <dirent.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FUZZ_MAX_LEN 4096

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64];

static void remove_dir(void);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof(dir), "%.40s/vigil-fuzz-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir))
        abort();
    atexit(remove_dir);
    return 0;
}

static void empty_dir(void);

/* At exit: the directory goes too. */
static void remove_dir(void)
{
    empty_dir();
    rmdir(dir);
}

static void write_file(const char *name, const uint8_t *p, size_t n)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        abort();
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w <= 0)
            abort();
        p += w;
        n -= (size_t)w;
    }
    close(fd);
}

static void empty_dir(void)
{
    DIR *d = opendir(dir);
    if (!d)
        abort();
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char path[384];
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        unlink(path);
    }
    closedir(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t first = size;
    for (size_t i = 1; i + 8 <= size; i++)
        if (memcmp(data + i, "VIGSPOOL", 8) == 0) {
            first = i;
            break;
        }
    write_file("0000000000000001.seg", data, first);
    if (first < size)
        write_file("0000000000000002.seg", data + first, size - first);

    vigil_logger quiet = {NULL, NULL, VIGIL_LOG_OFF};
    vigil__spool_options o = {dir, 64 * 1024, 1, &quiet};
    vigil__spool *sp = NULL;
    if (vigil__spool_open(&sp, &o) == VIGIL_OK) {
        vigil_buf rec = VIGIL_BUF_INIT;
        for (int i = 0; i < 1000 && vigil__spool_peek(sp, &rec) == VIGIL_OK; i++)
            if (vigil__spool_pop(sp) != VIGIL_OK)
                break;
        vigil_buf_dispose(&rec);
        (void)vigil__spool_append(sp, "fuzz", 4);
        vigil__spool_stats st;
        vigil__spool_stats_get(sp, &st);
        vigil__spool_close(sp);
    }
    empty_dir();
    return 0;
}
