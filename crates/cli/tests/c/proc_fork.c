/* fork, vfork (+ execve of itself), clone and clone3 without CLONE_THREAD:
 * four child processes, each writing its own file; the fork child exits 3. */
#include "tomo_test.h"
#include <linux/sched.h>

extern char **environ;

int main(int argc, char **argv) {
    init(argc, argv);
    if (argc >= 3 && strcmp(argv[2], "vchild") == 0) {
        write_file(P("vfork_child.txt"), "v");
        return 0;
    }
    long pid = syscall(SYS_fork);
    CHECK(pid >= 0);
    if (pid == 0) {
        write_file(P("fork_child.txt"), "f");
        syscall(SYS_exit_group, 3);
    }
    wait_exit(pid, 3);

    pid = vfork();
    CHECK(pid >= 0);
    if (pid == 0) {
        char *av[] = {argv[0], argv[1], "vchild", NULL};
        execve(argv[0], av, environ);
        _exit(98);
    }
    wait_exit(pid, 0);

    pid = syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0);
    CHECK(pid >= 0);
    if (pid == 0) {
        write_file(P("clone_child.txt"), "c");
        syscall(SYS_exit_group, 0);
    }
    wait_exit(pid, 0);

    struct clone_args ca;
    memset(&ca, 0, sizeof ca);
    ca.exit_signal = SIGCHLD;
    pid = syscall(SYS_clone3, &ca, sizeof ca);
    CHECK(pid >= 0);
    if (pid == 0) {
        write_file(P("clone3_child.txt"), "3");
        syscall(SYS_exit_group, 0);
    }
    wait_exit(pid, 0);

    write_file(P("parent.txt"), "p");
    return 0;
}
