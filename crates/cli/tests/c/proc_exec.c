/* argv[2] selects: execve | execveat (dirfd + relative name) |
 * execveat_empty (O_PATH fd + AT_EMPTY_PATH). Runs exec_target DIR a1 "a 2". */
#include "tomo_test.h"

extern char **environ;

int main(int argc, char **argv) {
    init(argc, argv);
    CHECK(argc >= 3);
    char *av[] = {"exec_target", argv[1], "a1", "a 2", NULL};
    if (strcmp(argv[2], "execve") == 0) {
        syscall(SYS_execve, P("exec_target"), av, environ);
    } else if (strcmp(argv[2], "execveat") == 0) {
        int dfd = xopen(D, O_RDONLY | O_DIRECTORY, 0);
        syscall(SYS_execveat, dfd, "exec_target", av, environ, 0);
    } else if (strcmp(argv[2], "execveat_empty") == 0) {
        int fd = xopen(P("exec_target"), O_PATH, 0);
        syscall(SYS_execveat, fd, "", av, environ, AT_EMPTY_PATH);
    }
    CHECK(!"exec failed");
    return 99;
}
