/*
 * soaktraffic: the soak test's traffic generator and checker (test/soak/soak.mjs).
 *
 *   soaktraffic --port P [--rate FRAMES_PER_S] [--len PAYLOAD] [--report-ms MS] [--grace-ms MS]
 *               [--mislabel-every N] ID:NETNS:IP:MAC ...
 *
 * One process, one thread, for every host: for each ID:NETNS:IP:MAC it enters the host's
 * network namespace (setns on /run/netns/NETNS) just long enough to open two sockets there,
 * which stay in that namespace whatever the thread does afterwards:
 *   - a UDP socket bound to 0.0.0.0:P: it sends this host's datagrams to every other host
 *     (sendmmsg, unpaced unless --rate), and, never read, it swallows the datagrams
 *     addressed to this host (a full receive buffer drops silently: no ICMP port
 *     unreachable flows back through the switch under test);
 *   - an AF_PACKET socket for IPv4 (not bound to an interface: the host's NIC leaves and
 *     comes back as another device on every move, the socket keeps receiving whatever
 *     device is there; a protocol-specific packet socket sees received frames only, not the
 *     host's own sends). It sees every frame the switch delivers to the host's NIC, whatever
 *     its destination MAC, before the IP layer could drop a frame meant for another host.
 *
 * Payload (--len bytes, at least 32): magic "LSK1", source id (u16), destination id (u16),
 * sequence number of the (source, destination) pair (u64), the source's send generation
 * (u32), the payload length (u32), then bytes derived from all of these. A receiver counts
 * a frame with our magic as
 *   misdelivered  its destination id is not the receiving host's (the frame reached the
 *                 wrong host) — split by whether its destination MAC was this host's;
 *   corrupt       addressed to this host but its IP destination, length or pattern is wrong;
 *   received      otherwise (per pair; reordered: a sequence number not above the last one).
 * Loss is expected (moves, link cuts, a full-rate generator): it is reported, not judged.
 *
 * --mislabel-every N (self-test of the checker): every Nth datagram of host 1 carries the
 * destination id of another host than the one it is sent to: those frames are misdelivered
 * by construction.
 *
 * Output on stdout, one JSON object per line: every --report-ms a progress line
 * {"t_ms":…,"sent":…,"received":…,"misdelivered":…,"corrupt":…,"send_errors":…,"rx":[[…]]}
 * (rx[i][j]: frames host i received from host j, in argument order), and after SIGTERM or
 * SIGINT (sending stops, receiving goes on for --grace-ms, default 1000) a final line with
 * "final":true and per-host details. Exit 0 unless set-up failed.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if_arp.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAXH 64
#define BATCH 32
#define RBATCH 64
#define FRAME 2048
#define MAGIC 0x4c534b31u /* "LSK1" */

struct host {
  int id;
  char ns[64];
  struct in_addr ip;
  unsigned char mac[6];
  int udp, pkt;
  /* sending */
  uint64_t sent, send_errors, last_errno;
  uint64_t seq[MAXH]; /* next sequence number towards host index j */
  /* receiving */
  uint64_t rx[MAXH], last_seq[MAXH], reordered[MAXH];
  uint64_t misdelivered, misdelivered_my_mac, corrupt, foreign, rx_drops;
};

static struct host hosts[MAXH];
static int nh;
static volatile sig_atomic_t stopping;

static void on_signal(int sig) { (void)sig; stopping = 1; }

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void usage(void) {
  fprintf(stderr, "usage: soaktraffic --port P [--rate FPS] [--len N] [--report-ms MS] [--grace-ms MS] [--mislabel-every N] ID:NETNS:IP:MAC ...\n");
  exit(2);
}

static int index_of(int id) {
  for (int i = 0; i < nh; i++)
    if (hosts[i].id == id) return i;
  return -1;
}

static unsigned char pattern_byte(uint32_t src, uint32_t dst, uint64_t seq, size_t i) {
  return (unsigned char)((src * 131u + dst * 31u + (uint32_t)seq * 7u + (uint32_t)i * 13u) & 0xff);
}

static void put32(unsigned char *p, uint32_t v) { v = htonl(v); memcpy(p, &v, 4); }
static uint32_t get32(const unsigned char *p) { uint32_t v; memcpy(&v, p, 4); return ntohl(v); }
static void put16(unsigned char *p, uint16_t v) { v = htons(v); memcpy(p, &v, 2); }
static uint16_t get16(const unsigned char *p) { uint16_t v; memcpy(&v, p, 2); return ntohs(v); }
static void put64(unsigned char *p, uint64_t v) { put32(p, (uint32_t)(v >> 32)); put32(p + 4, (uint32_t)v); }
static uint64_t get64(const unsigned char *p) { return ((uint64_t)get32(p) << 32) | get32(p + 4); }

static void fill_payload(unsigned char *p, size_t len, uint32_t src, uint32_t dst, uint64_t seq) {
  put32(p, MAGIC);
  put16(p + 4, (uint16_t)src);
  put16(p + 6, (uint16_t)dst);
  put64(p + 8, seq);
  put32(p + 16, 0);
  put32(p + 20, (uint32_t)len);
  for (size_t i = 24; i < len; i++) p[i] = pattern_byte(src, dst, seq, i);
}

/* One frame seen by host h's packet socket. */
static void check_frame(struct host *h, const unsigned char *f, size_t n, int port) {
  if (n < 14 + 20 + 8) return;
  if (get16(f + 12) != 0x0800) return;
  const unsigned char *ip = f + 14;
  size_t ihl = (size_t)(ip[0] & 0x0f) * 4;
  if ((ip[0] >> 4) != 4 || ihl < 20 || n < 14 + ihl + 8 || ip[9] != IPPROTO_UDP) return;
  if ((get16(ip + 6) & 0x3fff) != 0) return; /* a fragment: not ours */
  const unsigned char *udp = ip + ihl;
  if (get16(udp + 2) != (uint16_t)port) return;
  const unsigned char *p = udp + 8;
  size_t plen = n - 14 - ihl - 8;
  if (plen < 24 || get32(p) != MAGIC) { h->foreign++; return; }
  uint32_t src = get16(p + 4), dst = get16(p + 6);
  uint64_t seq = get64(p + 8);
  if ((int)dst != h->id) {
    h->misdelivered++;
    if (memcmp(f, h->mac, 6) == 0) h->misdelivered_my_mac++;
    return;
  }
  int si = index_of((int)src);
  uint32_t len = get32(p + 20);
  int bad = si < 0 || len != plen || memcmp(ip + 16, &h->ip, 4) != 0;
  for (size_t i = 24; !bad && i < plen; i++)
    if (p[i] != pattern_byte(src, dst, seq, i)) bad = 1;
  if (bad) { h->corrupt++; return; }
  if (h->rx[si] > 0 && seq <= h->last_seq[si]) h->reordered[si]++;
  else h->last_seq[si] = seq;
  h->rx[si]++;
}

static void print_report(uint64_t t0, int final) {
  uint64_t sent = 0, received = 0, mis = 0, mis_mac = 0, corrupt = 0, errs = 0, reord = 0, drops = 0;
  for (int i = 0; i < nh; i++) {
    struct host *h = &hosts[i];
    sent += h->sent;
    errs += h->send_errors;
    mis += h->misdelivered;
    mis_mac += h->misdelivered_my_mac;
    corrupt += h->corrupt;
    drops += h->rx_drops;
    for (int j = 0; j < nh; j++) { received += h->rx[j]; reord += h->reordered[j]; }
  }
  printf("{\"t_ms\":%llu,%s\"sent\":%llu,\"received\":%llu,\"misdelivered\":%llu,\"misdelivered_my_mac\":%llu,\"corrupt\":%llu,"
         "\"reordered\":%llu,\"send_errors\":%llu,\"socket_drops\":%llu,\"rx\":[",
         (unsigned long long)((now_ns() - t0) / 1000000ull), final ? "\"final\":true," : "", (unsigned long long)sent,
         (unsigned long long)received, (unsigned long long)mis, (unsigned long long)mis_mac, (unsigned long long)corrupt,
         (unsigned long long)reord, (unsigned long long)errs, (unsigned long long)drops);
  for (int i = 0; i < nh; i++) {
    printf("%s[", i ? "," : "");
    for (int j = 0; j < nh; j++) printf("%s%llu", j ? "," : "", (unsigned long long)hosts[i].rx[j]);
    printf("]");
  }
  printf("]");
  if (final) {
    printf(",\"hosts\":[");
    for (int i = 0; i < nh; i++) {
      struct host *h = &hosts[i];
      uint64_t r = 0, ro = 0;
      for (int j = 0; j < nh; j++) { r += h->rx[j]; ro += h->reordered[j]; }
      printf("%s{\"id\":%d,\"sent\":%llu,\"send_errors\":%llu,\"last_send_errno\":%llu,\"received\":%llu,\"reordered\":%llu,"
             "\"misdelivered\":%llu,\"misdelivered_my_mac\":%llu,\"corrupt\":%llu,\"foreign\":%llu,\"socket_drops\":%llu}",
             i ? "," : "", h->id, (unsigned long long)h->sent, (unsigned long long)h->send_errors,
             (unsigned long long)h->last_errno, (unsigned long long)r, (unsigned long long)ro,
             (unsigned long long)h->misdelivered, (unsigned long long)h->misdelivered_my_mac, (unsigned long long)h->corrupt,
             (unsigned long long)h->foreign, (unsigned long long)h->rx_drops);
    }
    printf("]");
  }
  printf("}\n");
  fflush(stdout);
}

int main(int argc, char **argv) {
  int port = 0, len = 64;
  double rate = 0, report_ms = 1000, grace_ms = 1000;
  uint64_t mislabel_every = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (a[0] != '-') {
      if (nh == MAXH) usage();
      struct host *h = &hosts[nh];
      char ipbuf[64], macbuf[64];
      if (sscanf(a, "%d:%63[^:]:%63[^:]:%63s", &h->id, h->ns, ipbuf, macbuf) != 4) usage();
      if (h->id < 1 || h->id > 65535 || inet_pton(AF_INET, ipbuf, &h->ip) != 1) usage();
      unsigned m[6];
      if (sscanf(macbuf, "%x-%x-%x-%x-%x-%x", &m[0], &m[1], &m[2], &m[3], &m[4], &m[5]) != 6) usage();
      for (int k = 0; k < 6; k++) h->mac[k] = (unsigned char)m[k];
      nh++;
      continue;
    }
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!v) usage();
    if (!strcmp(a, "--port")) port = atoi(v);
    else if (!strcmp(a, "--rate")) rate = atof(v);
    else if (!strcmp(a, "--len")) len = atoi(v);
    else if (!strcmp(a, "--report-ms")) report_ms = atof(v);
    else if (!strcmp(a, "--grace-ms")) grace_ms = atof(v);
    else if (!strcmp(a, "--mislabel-every")) mislabel_every = (uint64_t)atoll(v);
    else usage();
    i++;
  }
  if (port < 1 || port > 65535 || nh < 2 || len < 32 || len > 1400 || rate < 0 || report_ms < 10) usage();

  int self_ns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  if (self_ns < 0) { perror("soaktraffic: /proc/self/ns/net"); return 1; }
  for (int i = 0; i < nh; i++) {
    struct host *h = &hosts[i];
    char path[128];
    snprintf(path, sizeof path, "/run/netns/%s", h->ns);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || setns(fd, CLONE_NEWNET) < 0) { fprintf(stderr, "soaktraffic: enter %s: %s\n", path, strerror(errno)); return 1; }
    close(fd);
    h->udp = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_in any = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    int small = 4096, big = 8 << 20, one = 1;
    setsockopt(h->udp, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (h->udp < 0 || bind(h->udp, (struct sockaddr *)&any, sizeof any) < 0) { fprintf(stderr, "soaktraffic: udp socket in %s: %s\n", h->ns, strerror(errno)); return 1; }
    setsockopt(h->udp, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    if (setsockopt(h->udp, SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof big) < 0) setsockopt(h->udp, SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
    h->pkt = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, htons(ETH_P_IP));
    if (h->pkt < 0) { fprintf(stderr, "soaktraffic: packet socket in %s: %s\n", h->ns, strerror(errno)); return 1; }
    if (setsockopt(h->pkt, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof big) < 0) setsockopt(h->pkt, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    if (setsockopt(h->pkt, SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof one) < 0) { /* drop counts unavailable: fine */ }
    if (setns(self_ns, CLONE_NEWNET) < 0) { perror("soaktraffic: setns back"); return 1; }
  }
  close(self_ns);

  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);

  static unsigned char tx[BATCH][FRAME];
  static struct sockaddr_in to[BATCH];
  struct mmsghdr msgs[BATCH];
  struct iovec iov[BATCH];
  static unsigned char rxbuf[RBATCH][FRAME];
  struct mmsghdr rmsgs[RBATCH];
  struct iovec riov[RBATCH];
  struct sockaddr_ll from[RBATCH];
  char cbuf[RBATCH][CMSG_SPACE(sizeof(uint32_t))];
  uint64_t cursor[MAXH] = { 0 }, budget[MAXH] = { 0 };
  uint64_t lastdrops[MAXH] = { 0 };

  fprintf(stderr, "READY\n");
  uint64_t t0 = now_ns(), next_report = t0 + (uint64_t)(report_ms * 1e6), stop_at = 0;
  double ns_per_host = rate > 0 ? 1e9 * nh / rate : 0; /* --rate is the total over every host */
  for (;;) {
    uint64_t now = now_ns();
    if (stopping && stop_at == 0) stop_at = now + (uint64_t)(grace_ms * 1e6);
    if (stop_at != 0 && now >= stop_at) break;
    int progress = 0;
    /* Send: one batch per host, round-robin over its destinations. */
    if (stop_at == 0) {
      for (int i = 0; i < nh; i++) {
        struct host *h = &hosts[i];
        unsigned n = BATCH;
        if (ns_per_host > 0) { /* paced: what is due for this host, no catch-up bursts */
          uint64_t due = (uint64_t)((double)(now - t0) / ns_per_host);
          if (due > budget[i] + 4 * BATCH) budget[i] = due - 4 * BATCH;
          n = due > budget[i] ? (unsigned)(due - budget[i] > BATCH ? BATCH : due - budget[i]) : 0;
          if (n == 0) continue;
        }
        for (unsigned b = 0; b < n; b++) {
          int j = (int)((cursor[i] + b) % (uint64_t)(nh - 1));
          if (j >= i) j++; /* every host but this one */
          uint32_t label = (uint32_t)hosts[j].id;
          if (mislabel_every && i == 0 && h->seq[j] % mislabel_every == mislabel_every - 1) label = (uint32_t)hosts[(j + 1) % nh].id;
          fill_payload(tx[b], (size_t)len, (uint32_t)h->id, label, h->seq[j]++); /* unsent ones: a gap, like loss */
          to[b] = (struct sockaddr_in){ .sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr = hosts[j].ip };
          iov[b] = (struct iovec){ tx[b], (size_t)len };
          memset(&msgs[b], 0, sizeof msgs[b]);
          msgs[b].msg_hdr.msg_name = &to[b];
          msgs[b].msg_hdr.msg_namelen = sizeof to[b];
          msgs[b].msg_hdr.msg_iov = &iov[b];
          msgs[b].msg_hdr.msg_iovlen = 1;
        }
        int r = sendmmsg(h->udp, msgs, n, MSG_DONTWAIT);
        if (r > 0) {
          h->sent += (uint64_t)r;
          cursor[i] += (uint64_t)r;
          budget[i] += (uint64_t)r;
          progress = 1;
        } else if (r < 0 && errno != EAGAIN && errno != EINTR) {
          /* The NIC is away (a move: no route), or the like: counted, tried again next round. */
          h->send_errors++;
          h->last_errno = (uint64_t)errno;
          if (ns_per_host > 0) budget[i] += n;
        }
      }
    }
    /* Receive: drain every host's packet socket (a bounded number of batches each). */
    for (int i = 0; i < nh; i++) {
      struct host *h = &hosts[i];
      for (int rounds = 0; rounds < 8; rounds++) {
        for (int b = 0; b < RBATCH; b++) {
          riov[b] = (struct iovec){ rxbuf[b], FRAME };
          memset(&rmsgs[b], 0, sizeof rmsgs[b]);
          rmsgs[b].msg_hdr.msg_name = &from[b];
          rmsgs[b].msg_hdr.msg_namelen = sizeof from[b];
          rmsgs[b].msg_hdr.msg_iov = &riov[b];
          rmsgs[b].msg_hdr.msg_iovlen = 1;
          rmsgs[b].msg_hdr.msg_control = cbuf[b];
          rmsgs[b].msg_hdr.msg_controllen = sizeof cbuf[b];
        }
        int r = recvmmsg(h->pkt, rmsgs, RBATCH, MSG_DONTWAIT, NULL);
        if (r <= 0) break;
        progress = 1;
        for (int b = 0; b < r; b++) {
          if (from[b].sll_hatype == ARPHRD_LOOPBACK || from[b].sll_pkttype == PACKET_OUTGOING) continue;
          check_frame(h, rxbuf[b], rmsgs[b].msg_len, port);
          for (struct cmsghdr *c = CMSG_FIRSTHDR(&rmsgs[b].msg_hdr); c; c = CMSG_NXTHDR(&rmsgs[b].msg_hdr, c)) {
            if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL) {
              uint32_t d;
              memcpy(&d, CMSG_DATA(c), sizeof d);
              if (d > lastdrops[i]) { h->rx_drops += d - lastdrops[i]; lastdrops[i] = d; }
            }
          }
        }
        if (r < RBATCH) break;
      }
    }
    if (now >= next_report) {
      print_report(t0, 0);
      next_report = now + (uint64_t)(report_ms * 1e6);
    }
    if (!progress) {
      struct timespec ts = { 0, 200000 }; /* nothing to do (paced, or every NIC away): 0.2 ms */
      nanosleep(&ts, NULL);
    }
  }
  print_report(t0, 1);
  return 0;
}
