/* pipe(a): parent writes "hello", child reads it and writes child.txt;
 * pipe2(b, O_CLOEXEC): child writes "world", parent reads it and writes
 * parent.txt. */
#include "tomo_test.h"

int main(int argc, char **argv) {
    init(argc, argv);
    int a[2], b[2];
    CHECK(syscall(SYS_pipe, a) == 0);
    CHECK(syscall(SYS_pipe2, b, O_CLOEXEC) == 0);
    long pid = syscall(SYS_fork);
    CHECK(pid >= 0);
    char buf[16] = "";
    if (pid == 0) {
        xclose(a[1]);
        xclose(b[0]);
        xread_exact(a[0], buf, 5);
        write_file(P("child.txt"), buf);
        xwrite(b[1], "world", 5);
        syscall(SYS_exit_group, 0);
    }
    xclose(a[0]);
    xclose(b[1]);
    xwrite(a[1], "hello", 5);
    xread_exact(b[0], buf, 5);
    write_file(P("parent.txt"), buf);
    wait_exit(pid, 0);
    return 0;
}
