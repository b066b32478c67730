/*
 * udpgen: paced IPv4/UDP sender for lime's flow-table benchmark.
 *
 *   udpgen --src IP --dst IP --rate FRAMES_PER_S --seconds T [--vary]
 *          [--sport N] [--dport N] [--len PAYLOAD] [--tick-us US] [--max-burst-us US]
 *
 * Sends RATE frames/s for T seconds from a raw IPv4 socket (IPPROTO_RAW, so the IP and UDP
 * headers are ours; the kernel routes the packet and resolves the next hop by ARP as for
 * any socket), in sendmmsg() batches of the frames due since the last batch. Pacing:
 * absolute clock_nanosleep() to the next tick (default 100 µs, timer slack 1 ns), then
 * everything due by then. After a stall (the sender was descheduled) it catches up by at
 * most --max-burst-us of frames (default 5000 µs: 500 frames at 100k/s, the TAP queue's
 * length); a larger backlog is dropped from the schedule ("skipped") rather than sent as one
 * burst, so a starved sender shows up as "sent < offered" (sender-limited).
 *
 *   default   every frame has the same 5-tuple (SRC:sport → DST:dport, UDP): one flow
 *   --vary    every frame a different 5-tuple: source port cycles over 10000..59999 and
 *             the destination port steps over 20000..29999 each time the source port wraps
 *             (500 M distinct tuples before one repeats), all to DST (same IP and MAC)
 *
 * Payload LEN bytes (default 64: 64 + 8 + 20 + 14 = 106-byte Ethernet frames, as iperf3
 * -l 64). UDP checksum 0 (none, valid for IPv4). Prints one JSON line at the end:
 *   {"offered_rate":R,"seconds":S,"sent":N,"accepted":A,"refused":E,"skipped":K,"sent_pps":N/S}
 * sent = frames handed to the kernel (accepted + refused with ENOBUFS/EAGAIN); both count
 * as offered load, so a refusal is loss.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAXB 64
#define FRAME_MAX 1500

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void sleep_until(uint64_t t) {
  struct timespec ts = { (time_t)(t / 1000000000ull), (long)(t % 1000000000ull) };
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {}
}

static void usage(void) {
  fprintf(stderr, "usage: udpgen --src IP --dst IP --rate FRAMES_PER_S --seconds T [--vary] [--sport N] [--dport N] [--len PAYLOAD] [--tick-us US] [--max-burst-us US]\n");
  exit(2);
}

int main(int argc, char **argv) {
  const char *src = NULL, *dst = NULL;
  double rate = 0, seconds = 0, tick_us = 100, burst_us = 5000;
  int vary = 0, len = 64;
  unsigned sport0 = 10000, dport0 = 20000;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--vary")) { vary = 1; continue; }
    if (!v) usage();
    if (!strcmp(a, "--src")) src = v;
    else if (!strcmp(a, "--dst")) dst = v;
    else if (!strcmp(a, "--rate")) rate = atof(v);
    else if (!strcmp(a, "--seconds")) seconds = atof(v);
    else if (!strcmp(a, "--sport")) sport0 = (unsigned)atoi(v);
    else if (!strcmp(a, "--dport")) dport0 = (unsigned)atoi(v);
    else if (!strcmp(a, "--len")) len = atoi(v);
    else if (!strcmp(a, "--tick-us")) tick_us = atof(v);
    else if (!strcmp(a, "--max-burst-us")) burst_us = atof(v);
    else usage();
    i++;
  }
  if (!src || !dst || rate < 1 || seconds <= 0 || len < 0 || len > FRAME_MAX - 28 || tick_us <= 0 || burst_us < 0) usage();

  struct in_addr s_ip, d_ip;
  if (inet_pton(AF_INET, src, &s_ip) != 1 || inet_pton(AF_INET, dst, &d_ip) != 1) usage();

  int fd = socket(AF_INET, SOCK_RAW, IPPROTO_RAW); /* implies IP_HDRINCL */
  if (fd < 0) { perror("udpgen: socket(AF_INET, SOCK_RAW)"); return 1; }
  int sb = 4 << 20;
  if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sb, sizeof sb) < 0)
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sb, sizeof sb);
  prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);

  /* MAXB frame buffers; headers rewritten per frame (only the ports change). */
  static unsigned char frames[MAXB][FRAME_MAX];
  struct mmsghdr msgs[MAXB];
  struct iovec iov[MAXB];
  struct sockaddr_in to = { .sin_family = AF_INET, .sin_addr = d_ip };
  size_t flen = 20 + 8 + (size_t)len;
  for (int b = 0; b < MAXB; b++) {
    unsigned char *f = frames[b];
    memset(f, 0, FRAME_MAX);
    struct iphdr *ip = (struct iphdr *)f;
    ip->version = 4;
    ip->ihl = 5;
    ip->ttl = 64;
    ip->protocol = IPPROTO_UDP;
    ip->frag_off = htons(IP_DF);
    ip->tot_len = htons((uint16_t)flen); /* the kernel fills tot_len, id and the checksum */
    ip->saddr = s_ip.s_addr;
    ip->daddr = d_ip.s_addr;
    struct udphdr *u = (struct udphdr *)(f + 20);
    u->source = htons((uint16_t)sport0);
    u->dest = htons((uint16_t)dport0);
    u->len = htons((uint16_t)(8 + len));
    u->check = 0;
    iov[b].iov_base = f;
    iov[b].iov_len = flen;
    memset(&msgs[b], 0, sizeof msgs[b]);
    msgs[b].msg_hdr.msg_name = &to;
    msgs[b].msg_hdr.msg_namelen = sizeof to;
    msgs[b].msg_hdr.msg_iov = &iov[b];
    msgs[b].msg_hdr.msg_iovlen = 1;
  }

  const uint64_t tick = (uint64_t)(tick_us * 1000);
  const double ns_per_frame = 1e9 / rate;
  const uint64_t burst = (uint64_t)(rate * burst_us / 1e6);
  const uint64_t max_backlog = burst > MAXB ? burst : MAXB;
  const uint64_t total = (uint64_t)(rate * seconds + 0.5);
  uint64_t scheduled = 0; /* frames the schedule has made due (sent or skipped) */
  uint64_t accepted = 0, refused = 0, skipped = 0, seq = 0;
  uint64_t t0 = now_ns();
  const uint64_t t_end = t0 + (uint64_t)(seconds * 1e9);
  uint64_t next = t0;

  while (scheduled < total) {
    uint64_t now = now_ns();
    if (now < next) { sleep_until(next); now = now_ns(); }
    if (now >= t_end + tick) break;
    uint64_t due = (uint64_t)((double)(now - t0) / ns_per_frame) + 1;
    if (due > total) due = total;
    if (due > scheduled + max_backlog) { skipped += due - max_backlog - scheduled; scheduled = due - max_backlog; }
    while (scheduled < due) {
      unsigned n = (unsigned)(due - scheduled > MAXB ? MAXB : due - scheduled);
      for (unsigned b = 0; b < n; b++) {
        if (vary) {
          uint64_t i = seq + b;
          struct udphdr *u = (struct udphdr *)(frames[b] + 20);
          u->source = htons((uint16_t)(10000 + i % 50000));
          u->dest = htons((uint16_t)(20000 + (i / 50000) % 10000));
        }
      }
      unsigned off = 0;
      while (off < n) {
        int r = sendmmsg(fd, msgs + off, n - off, 0);
        if (r > 0) { accepted += (uint64_t)r; off += (unsigned)r; }
        else if (r < 0 && (errno == ENOBUFS || errno == EAGAIN || errno == EINTR)) {
          if (errno != EINTR) { refused++; off++; }
        } else { perror("udpgen: sendmmsg"); return 1; }
      }
      seq += n;
      scheduled += n;
    }
    next = now + tick;
  }
  double el = (double)(now_ns() - t0) / 1e9;
  if (el < seconds) el = seconds;
  uint64_t sent = accepted + refused;
  printf("{\"offered_rate\":%.0f,\"seconds\":%.6f,\"sent\":%llu,\"accepted\":%llu,\"refused\":%llu,\"skipped\":%llu,\"sent_pps\":%.1f}\n",
         rate, el, (unsigned long long)sent, (unsigned long long)accepted, (unsigned long long)refused,
         (unsigned long long)skipped, (double)sent / el);
  close(fd);
  return 0;
}
