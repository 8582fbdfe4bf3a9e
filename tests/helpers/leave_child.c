/* Leaves a process behind: forks a child that runs /bin/sleep 1000 (in the
 * same process group, with the same stdout), prints that child's pid, then
 * exits 0 ("exit", the default) or waits for a signal ("stay"). Plain C, no
 * libvigil; test_proc runs it to see the runner kill the whole group. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    pid_t p = fork();
    if (p < 0)
        return 2;
    if (p == 0) {
        execl("/bin/sleep", "sleep", "1000", (char *)NULL);
        _exit(127);
    }
    printf("%d\n", (int)p);
    fflush(stdout);
    if (argc > 1 && strcmp(argv[1], "stay") == 0)
        for (;;)
            pause();
    return 0;
}
