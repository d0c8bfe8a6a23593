/* UDP over loopback. The parent (server) binds 127.0.0.1:0 and forks the
 * client, whose socket is never bound explicitly: it sends "hello" with
 * sendto (autobind: the socket becomes bound to 0.0.0.0:PORT), connects to the server, sends "world" with sendmsg and
 * "ab" + "cd" with one sendmmsg. The server receives them with recvfrom,
 * recvmsg and recvmmsg (2 messages), always asking for the sender's
 * address, writes "helloworldabcd" to server.txt
 * and answers "reply" with sendto to the sender's address; the client
 * receives it with recvfrom and writes it to client.txt.
 * Prints "server=PORT client=PORT" on stdout. */
#include "tomo_net.h"

int main(int argc, char **argv) {
    init(argc, argv);
    int s = xsocket(AF_INET, SOCK_DGRAM);
    struct sockaddr_in a = loopback(0);
    CHECK(syscall(SYS_bind, s, &a, sizeof a) == 0);
    int port = local_port(s);
    long pid = syscall(SYS_fork);
    CHECK(pid >= 0);
    if (pid == 0) {
        int c = xsocket(AF_INET, SOCK_DGRAM);
        a = loopback(port);
        CHECK(syscall(SYS_sendto, c, "hello", 5, 0, &a, sizeof a) == 5);
        printf("server=%d client=%d\n", port, local_port(c));
        fflush(stdout);
        CHECK(syscall(SYS_connect, c, &a, sizeof a) == 0);
        struct iovec iov;
        struct msghdr m = msg1(&iov, "world", 5);
        CHECK(syscall(SYS_sendmsg, c, &m, 0) == 5);
        struct iovec iovs[2];
        struct mmsghdr mm[2];
        memset(mm, 0, sizeof mm);
        mm[0].msg_hdr = msg1(&iovs[0], "ab", 2);
        mm[1].msg_hdr = msg1(&iovs[1], "cd", 2);
        CHECK(syscall(SYS_sendmmsg, c, mm, 2, 0) == 2);
        char buf[16] = "";
        CHECK(syscall(SYS_recvfrom, c, buf, sizeof buf - 1, 0, NULL, NULL) == 5);
        write_file(P("client.txt"), buf);
        syscall(SYS_exit_group, 0);
    }
    char buf[32] = "";
    struct sockaddr_in from;
    socklen_t fl = sizeof from;
    CHECK(syscall(SYS_recvfrom, s, buf, 16, 0, &from, &fl) == 5);
    struct sockaddr_in names[3];
    struct iovec iov;
    struct msghdr m = msg1(&iov, buf + 5, 16);
    m.msg_name = &names[0];
    m.msg_namelen = sizeof names[0];
    CHECK(syscall(SYS_recvmsg, s, &m, 0) == 5);
    struct iovec iovs[2];
    struct mmsghdr mm[2];
    memset(mm, 0, sizeof mm);
    mm[0].msg_hdr = msg1(&iovs[0], buf + 10, 2);
    mm[1].msg_hdr = msg1(&iovs[1], buf + 12, 2);
    for (int i = 0; i < 2; i++) {
        mm[i].msg_hdr.msg_name = &names[1 + i];
        mm[i].msg_hdr.msg_namelen = sizeof names[0];
    }
    CHECK(syscall(SYS_recvmmsg, s, mm, 2, MSG_WAITFORONE, NULL) >= 1);
    if (mm[1].msg_len == 0) /* the second datagram had not arrived yet */
        CHECK(syscall(SYS_recvmmsg, s, &mm[1], 1, 0, NULL) == 1);
    write_file(P("server.txt"), buf);
    CHECK(syscall(SYS_sendto, s, "reply", 5, 0, &from, fl) == 5);
    wait_exit(pid, 0);
    return 0;
}
