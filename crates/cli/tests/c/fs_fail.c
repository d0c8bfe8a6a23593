/* Failed calls: each must be recorded with ret = -errno and produce no edge
 * and no node. ro.txt and wo.txt exist (made by the test); missing* do not.
 *   openat missing.txt O_RDONLY           -> -ENOENT
 *   openat ro.txt O_CREAT|O_EXCL          -> -EEXIST
 *   read on wo.txt's O_WRONLY fd          -> -EBADF
 *   write on ro.txt's O_RDONLY fd         -> -EBADF
 *   rename missing.txt -> missing2.txt    -> -ENOENT
 *   unlink missing.txt                    -> -ENOENT
 *   mkdir ro.txt                          -> -EEXIST
 *   truncate missing.txt                  -> -ENOENT
 *   chmod missing.txt                     -> -ENOENT
 *   execve missing_prog                   -> -ENOENT
 *   connect TCP 127.0.0.1:1 (closed)      -> -ECONNREFUSED */
#include "tomo_test.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

extern char **environ;

static void expect(long r, int err) {
    if (r != -1 || errno != err) {
        fprintf(stderr, "expected -1/%s, got %ld/%s\n", strerror(err), r, strerror(errno));
        exit(99);
    }
}

int main(int argc, char **argv) {
    init(argc, argv);
    char buf[16];
    expect(syscall(SYS_openat, AT_FDCWD, P("missing.txt"), O_RDONLY, 0), ENOENT);
    expect(syscall(SYS_openat, AT_FDCWD, P("ro.txt"), O_WRONLY | O_CREAT | O_EXCL, 0644), EEXIST);
    int wo = xopen(P("wo.txt"), O_WRONLY, 0);
    int ro = xopen(P("ro.txt"), O_RDONLY, 0);
    expect(syscall(SYS_read, wo, buf, sizeof buf), EBADF);
    expect(syscall(SYS_write, ro, "x", 1), EBADF);
    expect(syscall(SYS_rename, P("missing.txt"), P("missing2.txt")), ENOENT);
    expect(syscall(SYS_unlink, P("missing.txt")), ENOENT);
    expect(syscall(SYS_mkdir, P("ro.txt"), 0755), EEXIST);
    expect(syscall(SYS_truncate, P("missing.txt"), 0), ENOENT);
    expect(syscall(SYS_chmod, P("missing.txt"), 0600), ENOENT);
    char *av[] = {"missing_prog", NULL};
    expect(syscall(SYS_execve, P("missing_prog"), av, environ), ENOENT);
    int s = (int)syscall(SYS_socket, AF_INET, SOCK_STREAM, 0);
    CHECK(s >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(1)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    expect(syscall(SYS_connect, s, &a, sizeof a), ECONNREFUSED);
    return 0;
}
