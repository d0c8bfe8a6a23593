/* UNIX stream sockets. The parent (server) binds D/sock and listens, then
 * forks the client, which connects and sends "hello" (sendmsg) and "world"
 * (write). The server accepts with accept4(SOCK_CLOEXEC), receives them with
 * recvmsg and read, writes "helloworld" to server.txt and answers "reply"
 * with sendto (no address); the client receives it with recvfrom and writes
 * it to client.txt. */
#include "tomo_net.h"

static struct sockaddr_un unix_addr(void) {
    struct sockaddr_un u;
    memset(&u, 0, sizeof u);
    u.sun_family = AF_UNIX;
    snprintf(u.sun_path, sizeof u.sun_path, "%s", P("sock"));
    return u;
}

int main(int argc, char **argv) {
    init(argc, argv);
    int ls = xsocket(AF_UNIX, SOCK_STREAM);
    struct sockaddr_un u = unix_addr();
    CHECK(syscall(SYS_bind, ls, &u, sizeof u) == 0);
    CHECK(syscall(SYS_listen, ls, 4) == 0);
    long pid = syscall(SYS_fork);
    CHECK(pid >= 0);
    if (pid == 0) {
        xclose(ls);
        int c = xsocket(AF_UNIX, SOCK_STREAM);
        CHECK(syscall(SYS_connect, c, &u, sizeof u) == 0);
        struct iovec iov;
        struct msghdr m = msg1(&iov, "hello", 5);
        CHECK(syscall(SYS_sendmsg, c, &m, 0) == 5);
        xwrite(c, "world", 5);
        char buf[16] = "";
        CHECK(syscall(SYS_recvfrom, c, buf, 5, MSG_WAITALL, NULL, NULL) == 5);
        write_file(P("client.txt"), buf);
        syscall(SYS_exit_group, 0);
    }
    long s = syscall(SYS_accept4, ls, NULL, NULL, SOCK_CLOEXEC);
    CHECK(s >= 0);
    char buf[16] = "";
    struct iovec iov;
    struct msghdr m = msg1(&iov, buf, 5);
    CHECK(syscall(SYS_recvmsg, s, &m, MSG_WAITALL) == 5);
    xread_exact((int)s, buf + 5, 5);
    write_file(P("server.txt"), buf);
    CHECK(syscall(SYS_sendto, s, "reply", 5, 0, NULL, 0) == 5);
    wait_exit(pid, 0);
    return 0;
}
