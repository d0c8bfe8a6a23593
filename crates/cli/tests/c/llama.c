/* Content capture test program (tomo grep).
 *   llama write FILE   writes "Llamas are" and " lame\n" in two calls
 *   llama read FILE    reads FILE 7 bytes at a time (the string spans calls)
 *   llama readv FILE   reads FILE with readv into three small buffers
 *   llama send         sends the string through a socketpair to a child
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    if (!strcmp(argv[1], "write") && argc == 3) {
        int fd = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0) return 1;
        if (write(fd, "Llamas are", 10) != 10) return 1;
        if (write(fd, " lame\n", 6) != 6) return 1;
        return close(fd);
    }
    if (!strcmp(argv[1], "read") && argc == 3) {
        char buf[7];
        int fd = open(argv[2], O_RDONLY);
        if (fd < 0) return 1;
        while (read(fd, buf, sizeof buf) > 0) {}
        return close(fd);
    }
    if (!strcmp(argv[1], "readv") && argc == 3) {
        char a[3], b[5], c[64];
        struct iovec iov[3] = {{a, sizeof a}, {b, sizeof b}, {c, sizeof c}};
        int fd = open(argv[2], O_RDONLY);
        if (fd < 0) return 1;
        if (readv(fd, iov, 3) <= 0) return 1;
        return close(fd);
    }
    if (!strcmp(argv[1], "send")) {
        int sv[2];
        char buf[64];
        if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv)) return 1;
        pid_t p = fork();
        if (p == 0) {
            close(sv[0]);
            ssize_t n = recv(sv[1], buf, sizeof buf, 0);
            return n == 16 ? 0 : 1;
        }
        close(sv[1]);
        if (send(sv[0], "Llamas are lame\n", 16, 0) != 16) return 1;
        int st;
        waitpid(p, &st, 0);
        return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
    }
    return 2;
}
