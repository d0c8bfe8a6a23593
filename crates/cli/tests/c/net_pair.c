/* socketpair(AF_UNIX, SOCK_STREAM): the parent writes "pair" into sv[0],
 * the forked child reads it from sv[1] and writes it to pair.txt. */
#include "tomo_net.h"

int main(int argc, char **argv) {
    init(argc, argv);
    int sv[2];
    CHECK(syscall(SYS_socketpair, AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    long pid = syscall(SYS_fork);
    CHECK(pid >= 0);
    if (pid == 0) {
        xclose(sv[0]);
        char buf[8] = "";
        xread_exact(sv[1], buf, 4);
        write_file(P("pair.txt"), buf);
        syscall(SYS_exit_group, 0);
    }
    xclose(sv[1]);
    xwrite(sv[0], "pair", 4);
    wait_exit(pid, 0);
    return 0;
}
