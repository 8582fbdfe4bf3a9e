/* A stand-in for a program such as systemctl: appends its argv, one element
 * per line, to "<argv[0]>.argv", prints "recorded N args" and exits with the
 * number found in "<argv[0]>.exit" (0 when that file does not exist). Plain
 * C, no libvigil; the suites copy it to a temporary directory. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    char path[4096];
    if (argc < 1 || strlen(argv[0]) > sizeof(path) - 8)
        return 100;
    snprintf(path, sizeof(path), "%s.argv", argv[0]);
    FILE *f = fopen(path, "a");
    if (!f)
        return 101;
    for (int i = 0; i < argc; i++)
        fprintf(f, "%s\n", argv[i]);
    if (fclose(f) != 0)
        return 102;
    printf("recorded %d args\n", argc);
    snprintf(path, sizeof(path), "%s.exit", argv[0]);
    int code = 0;
    f = fopen(path, "r");
    if (f) {
        if (fscanf(f, "%d", &code) != 1)
            code = 103;
        fclose(f);
    }
    return code;
}
