/* Oracle workload: forks 4 workers; worker i reads in.txt and writes
 * out_i.txt (its copy of in.txt followed by its number); the parent waits
 * for all of them and writes done.txt. Ordinary libc calls on purpose. */
#include "tomo_test.h"

int main(int argc, char **argv) {
    init(argc, argv);
    for (int i = 0; i < 4; i++) {
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
            char buf[256];
            int in = open(P("in.txt"), O_RDONLY);
            CHECK(in >= 0);
            ssize_t n = read(in, buf, sizeof buf - 8);
            CHECK(n >= 0);
            close(in);
            char name[32];
            snprintf(name, sizeof name, "out_%d.txt", i);
            int out = open(P(name), O_WRONLY | O_CREAT | O_TRUNC, 0644);
            CHECK(out >= 0);
            n += snprintf(buf + n, 8, "%d\n", i);
            CHECK(write(out, buf, (size_t)n) == n);
            close(out);
            _exit(0);
        }
    }
    for (int i = 0; i < 4; i++) {
        int st;
        CHECK(wait(&st) > 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    FILE *f = fopen(P("done.txt"), "w");
    CHECK(f != NULL);
    fputs("done\n", f);
    CHECK(fclose(f) == 0);
    return 0;
}
