/* Socket helpers of the network coverage programs. */
#ifndef TOMO_NET_H
#define TOMO_NET_H
#include "tomo_test.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

static UNUSED struct sockaddr_in loopback(int port) {
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

static UNUSED int local_port(int s) {
    struct sockaddr_in a;
    socklen_t l = sizeof a;
    CHECK(getsockname(s, (struct sockaddr *)&a, &l) == 0);
    return ntohs(a.sin_port);
}

static UNUSED int xsocket(int domain, int type) {
    long s = syscall(SYS_socket, domain, type, 0);
    CHECK(s >= 0);
    return (int)s;
}

/* A one-buffer msghdr. */
static UNUSED struct msghdr msg1(struct iovec *iov, void *buf, size_t n) {
    struct msghdr m;
    memset(&m, 0, sizeof m);
    iov->iov_base = buf;
    iov->iov_len = n;
    m.msg_iov = iov;
    m.msg_iovlen = 1;
    return m;
}
#endif
