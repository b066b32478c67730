/*
 * tapfwd: minimal TAP-to-TAP forwarder, the reference for lime's benchmark.
 *
 *   tapfwd TAP_A TAP_B
 *
 * Creates two TAP devices (IFF_TAP | IFF_NO_PI), brings nothing up (the harness does
 * that after moving them into host namespaces), then poll()s both descriptors and
 * forwards every frame read from one to the other: one frame per read() and one per
 * write() system call. This is the per-syscall limit of any TAP-based user-space
 * bridge on this machine. Prints nothing per packet; exits 0 on SIGTERM/SIGINT and
 * prints a one-line summary (frames forwarded, write errors) to stderr.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

static volatile sig_atomic_t stop;
static void on_signal(int sig) { (void)sig; stop = 1; }

static int tap_open(const char *name) {
  int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
  if (fd < 0) { fprintf(stderr, "tapfwd: open /dev/net/tun: %s\n", strerror(errno)); exit(1); }
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
  strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
    fprintf(stderr, "tapfwd: TUNSETIFF %s: %s\n", name, strerror(errno));
    exit(1);
  }
  int fl = fcntl(fd, F_GETFL);
  fcntl(fd, F_SETFL, fl | O_NONBLOCK);
  return fd;
}

int main(int argc, char **argv) {
  if (argc != 3) { fprintf(stderr, "usage: tapfwd TAP_A TAP_B\n"); return 2; }
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;          /* no SA_RESTART: poll() returns EINTR */
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);

  int fd[2] = { tap_open(argv[1]), tap_open(argv[2]) };
  unsigned long long fwd = 0, werr = 0;
  static unsigned char buf[65536];
  struct pollfd pfd[2] = { { fd[0], POLLIN, 0 }, { fd[1], POLLIN, 0 } };

  while (!stop) {
    int n = poll(pfd, 2, -1);
    if (n < 0) { if (errno == EINTR) continue; perror("tapfwd: poll"); return 1; }
    for (int i = 0; i < 2; i++) {
      if (!(pfd[i].revents & POLLIN)) continue;
      /* Drain what is ready, one frame per read() and one per write(). */
      for (;;) {
        ssize_t r = read(fd[i], buf, sizeof buf);
        if (r <= 0) break;           /* EAGAIN (or device gone) */
        if (write(fd[1 - i], buf, (size_t)r) == r) fwd++; else werr++;
        if (stop) break;
      }
    }
  }
  fprintf(stderr, "tapfwd: forwarded %llu frames, %llu write errors\n", fwd, werr);
  close(fd[0]);
  close(fd[1]);
  return 0;
}
