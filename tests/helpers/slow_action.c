/* A slow action for the suites: appends its first argument as one line to
 * "<argv[0]>.runs" when it starts (one line per run), sleeps the number of
 * milliseconds of its second argument (default 1500), prints "done" and
 * exits 0. Plain C, no libvigil; the suites copy it to a temporary
 * directory. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int main(int argc, char **argv)
{
    char path[4096];
    if (argc < 1 || strlen(argv[0]) > sizeof(path) - 8)
        return 100;
    snprintf(path, sizeof(path), "%s.runs", argv[0]);
    FILE *f = fopen(path, "a");
    if (!f)
        return 101;
    fprintf(f, "%s\n", argc > 1 ? argv[1] : "");
    if (fclose(f) != 0)
        return 102;
    long ms = argc > 2 ? strtol(argv[2], NULL, 10) : 1500;
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
    printf("done\n");
    return 0;
}
