/* TCP over loopback. The parent (server) binds 127.0.0.1:0 and listens, then
 * forks the client, which connects and sends "hello" (sendto, no address)
 * and "world" (sendmsg). The server accepts (accept), receives them with
 * recvfrom and recvmsg, writes "helloworld" to server.txt and answers
 * "reply" with sendmmsg; the client receives it with recvmmsg and writes it
 * to client.txt. Prints "server=PORT client=PORT" on stdout. */
#include "tomo_net.h"

int main(int argc, char **argv) {
    init(argc, argv);
    int ls = xsocket(AF_INET, SOCK_STREAM);
    struct sockaddr_in a = loopback(0);
    CHECK(syscall(SYS_bind, ls, &a, sizeof a) == 0);
    CHECK(syscall(SYS_listen, ls, 4) == 0);
    int port = local_port(ls);
    long pid = syscall(SYS_fork);
    CHECK(pid >= 0);
    if (pid == 0) {
        xclose(ls);
        int c = xsocket(AF_INET, SOCK_STREAM);
        a = loopback(port);
        CHECK(syscall(SYS_connect, c, &a, sizeof a) == 0);
        printf("server=%d client=%d\n", port, local_port(c));
        fflush(stdout);
        CHECK(syscall(SYS_sendto, c, "hello", 5, 0, NULL, 0) == 5);
        struct iovec iov;
        struct msghdr m = msg1(&iov, "world", 5);
        CHECK(syscall(SYS_sendmsg, c, &m, 0) == 5);
        char buf[16] = "";
        struct mmsghdr mm;
        memset(&mm, 0, sizeof mm);
        mm.msg_hdr = msg1(&iov, buf, 5);
        CHECK(syscall(SYS_recvmmsg, c, &mm, 1, MSG_WAITALL, NULL) == 1);
        CHECK(mm.msg_len == 5);
        write_file(P("client.txt"), buf);
        syscall(SYS_exit_group, 0);
    }
    struct sockaddr_in peer;
    socklen_t pl = sizeof peer;
    long s = syscall(SYS_accept, ls, &peer, &pl);
    CHECK(s >= 0);
    char buf[16] = "";
    CHECK(syscall(SYS_recvfrom, s, buf, 5, MSG_WAITALL, NULL, NULL) == 5);
    struct iovec iov;
    struct msghdr m = msg1(&iov, buf + 5, 5);
    CHECK(syscall(SYS_recvmsg, s, &m, MSG_WAITALL) == 5);
    write_file(P("server.txt"), buf);
    struct mmsghdr mm;
    memset(&mm, 0, sizeof mm);
    mm.msg_hdr = msg1(&iov, "reply", 5);
    CHECK(syscall(SYS_sendmmsg, s, &mm, 1, 0) == 1);
    wait_exit(pid, 0);
    return 0;
}
