/*
 * delayline: user-space WAN delay element between two interfaces (this kernel has no netem).
 *
 *   delayline --a IFA --b IFB --delay-ms D [--queue N]
 *
 * Runs in a namespace holding two unaddressed, up interfaces (veth ends whose peers are in
 * two "site" namespaces) and forwards every Ethernet frame received on IFA out of IFB, and
 * every frame received on IFB out of IFA, D milliseconds (one-way; fractional, 0 = at once)
 * after it arrived; order is kept per direction. Ping RTT through it is the path's RTT + 2D.
 *
 * How: one AF_PACKET/SOCK_RAW/ETH_P_ALL socket bound to each interface, with
 *   PACKET_IGNORE_OUTGOING  the socket never sees what it (or anyone) sends out of its own
 *                           interface (required: the kernel must have it, >= 4.20); frames
 *                           whose sll_pkttype is OUTGOING or LOOPBACK are skipped anyway
 *   PACKET_VNET_HDR         each frame comes with a virtio_net header that is sent along with
 *                           it: a site's stack leaves checksums to "hardware" (veth: CHECKSUM_
 *                           PARTIAL, the frame as read has no valid L4 checksum) and sends TSO/
 *                           UDP-GSO super-frames up to 64 KB; the header keeps both intact, so
 *                           the site interfaces need no `ethtool -K … tx off tso off`
 *   PACKET_AUXDATA          the receive path strips VLAN tags into metadata (even for in-band
 *                           tagged frames); the tag is put back into the frame before it is sent
 *   PACKET_MR_PROMISC       membership (reverted by the kernel when the socket closes). veth
 *                           delivers frames for other MACs (PACKET_OTHERHOST) to packet sockets
 *                           with promiscuity off too; promisc is set so other interface types
 *                           (which may filter by MAC) behave the same.
 * A per-direction FIFO of --queue frames (default 65536) holds (due time CLOCK_MONOTONIC,
 * frame); storage is a pool of MTU-sized slots (MTU read with SIOCGIFMTU, the larger of the
 * two) handed out LIFO, so memory touched ~ frames in flight; a GSO super-frame larger than
 * a slot gets its own malloc(). A full queue drops the frame (dropped_queue_full); a frame
 * larger than 64 KB is dropped (too_long). Arrival time is the kernel's receive timestamp
 * (SO_TIMESTAMPNS) when sane, so time this process spends descheduled is not added to D.
 * One thread: recvmmsg() batches, ppoll() with a nanosecond timeout to the next due frame
 * (timer slack 1 ns; 0.5 ms is honoured to ~0.1 ms), all due frames sent per wake-up with
 * sendmmsg(). A send error (veth peer backlog full: ENOBUFS) loses the frame (send_failed).
 *
 * Prints READY on stderr once both sockets are bound. On SIGTERM/SIGINT prints one line to
 * stdout and exits 0:
 *   {"delay_ms":D,"a_to_b":{"frames":N,"bytes":N,"dropped_queue_full":N,"too_long":N,
 *    "send_failed":N,"queued_at_exit":N},"b_to_a":{…}}
 * frames/bytes = frames sent (a GSO super-frame counts once, its bytes are the super-frame's).
 * Exit 2 on bad arguments (usage), 1 on a missing interface or another set-up failure.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <linux/virtio_net.h>
#include <math.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef PACKET_IGNORE_OUTGOING
#define PACKET_IGNORE_OUTGOING 23
#endif

#define BATCH 32
#define VNET_LEN ((uint32_t)sizeof(struct virtio_net_hdr))
#define FRAME_MAX 65536u                               /* largest frame (GSO super-frame) kept */
#define RXBUF (VNET_LEN + FRAME_MAX + 4 + 64)          /* + room to put a VLAN tag back */
#define NO_SLOT UINT32_MAX

static volatile sig_atomic_t stop;
static void on_signal(int sig) { (void)sig; stop = 1; }

static uint64_t ts_ns(clockid_t c) {
  struct timespec ts;
  clock_gettime(c, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void usage(void) {
  fprintf(stderr, "usage: delayline --a IFA --b IFB --delay-ms D [--queue N]\n"
                  "  forwards frames IFA<->IFB, each D ms (>= 0, fractional) after it arrived;\n"
                  "  --queue: frames held per direction (default 65536)\n");
  exit(2);
}

struct entry { uint64_t due; uint32_t len; uint32_t slot; unsigned char *p; }; /* len incl. vnet hdr */

struct dir {
  const char *name;
  int rx, tx;                       /* sockets: read from rx (bound to the source interface) */
  struct entry *q;                  /* FIFO ring of cap entries */
  uint32_t cap, head, count;
  unsigned char *pool;              /* cap slots of slot_size bytes */
  uint32_t *free_stack, free_top;   /* LIFO of free slot indices */
  uint64_t last_due;
  unsigned long long frames, bytes, dropped, too_long, send_failed;
};

static size_t slot_size;

static int open_packet(const char *ifname, int *mtu) {
  unsigned idx = if_nametoindex(ifname);
  if (idx == 0) {
    fprintf(stderr, "delayline: interface %s: %s\n", ifname, errno == ENODEV ? "no such interface" : strerror(errno));
    exit(1);
  }
  int fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));
  if (fd < 0) { fprintf(stderr, "delayline: socket(AF_PACKET) for %s: %s\n", ifname, strerror(errno)); exit(1); }
  int one = 1;
  if (setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof one) < 0) {
    fprintf(stderr, "delayline: %s: setsockopt(PACKET_IGNORE_OUTGOING) refused (%s); the kernel is too old "
                    "(needs >= 4.20), it would re-read the frames it sends\n", ifname, strerror(errno));
    exit(1);
  }
  if (setsockopt(fd, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof one) < 0) {
    fprintf(stderr, "delayline: %s: setsockopt(PACKET_VNET_HDR): %s\n", ifname, strerror(errno));
    exit(1);
  }
  if (setsockopt(fd, SOL_PACKET, PACKET_AUXDATA, &one, sizeof one) < 0) {
    fprintf(stderr, "delayline: %s: setsockopt(PACKET_AUXDATA): %s\n", ifname, strerror(errno));
    exit(1);
  }
  setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one); /* optional: else arrival = read time */
  int buf = 8 << 20;
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &buf, sizeof buf) < 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
  if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &buf, sizeof buf) < 0)
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
  struct sockaddr_ll sll;
  memset(&sll, 0, sizeof sll);
  sll.sll_family = AF_PACKET;
  sll.sll_protocol = htons(ETH_P_ALL);
  sll.sll_ifindex = (int)idx;
  if (bind(fd, (struct sockaddr *)&sll, sizeof sll) < 0) {
    fprintf(stderr, "delayline: bind to %s: %s\n", ifname, strerror(errno));
    exit(1);
  }
  struct packet_mreq mr;
  memset(&mr, 0, sizeof mr);
  mr.mr_ifindex = (int)idx;
  mr.mr_type = PACKET_MR_PROMISC;
  if (setsockopt(fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof mr) < 0)
    fprintf(stderr, "delayline: %s: promiscuous membership: %s (continuing)\n", ifname, strerror(errno));
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", ifname);
  *mtu = ioctl(fd, SIOCGIFMTU, &ifr) == 0 ? ifr.ifr_mtu : 1500;
  return fd;
}

static void dir_init(struct dir *d, const char *name, int rx, int tx, uint32_t cap) {
  memset(d, 0, sizeof *d);
  d->name = name;
  d->rx = rx;
  d->tx = tx;
  d->cap = cap;
  d->q = calloc(cap, sizeof *d->q);
  d->free_stack = malloc((size_t)cap * sizeof *d->free_stack);
  /* Reserved, not committed: pages are touched only as slots are first used (LIFO reuse). */
  d->pool = mmap(NULL, (size_t)cap * slot_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (!d->q || !d->free_stack || d->pool == MAP_FAILED) {
    fprintf(stderr, "delayline: cannot allocate a queue of %u frames x %zu bytes\n", cap, slot_size);
    exit(1);
  }
  for (uint32_t i = 0; i < cap; i++) d->free_stack[i] = cap - 1 - i; /* slot 0 on top */
  d->free_top = cap;
}

static void entry_free(struct dir *d, struct entry *e) {
  if (e->slot == NO_SLOT) free(e->p);
  else d->free_stack[d->free_top++] = e->slot;
  e->p = NULL;
}

/* Queue one received frame (buf: vnet header + frame, len bytes). */
static void enqueue(struct dir *d, const unsigned char *buf, uint32_t len, uint64_t due) {
  if (d->count == d->cap) { d->dropped++; return; }
  struct entry *e = &d->q[(d->head + d->count) % d->cap];
  if (len <= slot_size) {
    e->slot = d->free_stack[--d->free_top];
    e->p = d->pool + (size_t)e->slot * slot_size;
  } else {
    e->slot = NO_SLOT;
    e->p = malloc(len);
    if (!e->p) { d->dropped++; return; }
  }
  memcpy(e->p, buf, len);
  e->len = len;
  if (due < d->last_due) due = d->last_due; /* FIFO: due times never go backwards */
  e->due = d->last_due = due;
  d->count++;
}

/* Send every frame due by `now`. */
static void flush_due(struct dir *d, uint64_t now) {
  struct mmsghdr msgs[BATCH];
  struct iovec iov[BATCH];
  while (d->count > 0 && d->q[d->head].due <= now) {
    unsigned n = 0;
    while (n < BATCH && n < d->count) {
      struct entry *e = &d->q[(d->head + n) % d->cap];
      if (e->due > now) break;
      iov[n].iov_base = e->p;
      iov[n].iov_len = e->len;
      memset(&msgs[n], 0, sizeof msgs[n]);
      msgs[n].msg_hdr.msg_iov = &iov[n];
      msgs[n].msg_hdr.msg_iovlen = 1;
      n++;
    }
    unsigned off = 0;
    while (off < n) {
      int r = sendmmsg(d->tx, msgs + off, n - off, 0);
      if (r > 0) {
        for (int i = 0; i < r; i++) { d->frames++; d->bytes += iov[off + (unsigned)i].iov_len - VNET_LEN; }
        off += (unsigned)r;
      } else if (r < 0 && errno == EINTR) {
        continue;
      } else {
        /* The first frame of the rest failed: it is lost (ENOBUFS: the peer's backlog was full). */
        if (d->send_failed++ == 0) fprintf(stderr, "delayline: send %s: %s (counted as send_failed)\n", d->name, strerror(errno));
        off++;
      }
    }
    for (unsigned i = 0; i < n; i++) {
      entry_free(d, &d->q[d->head]);
      d->head = (d->head + 1) % d->cap;
      d->count--;
    }
  }
}

static unsigned char rxbuf[BATCH][RXBUF];
static union { struct cmsghdr align; char buf[CMSG_SPACE(sizeof(struct tpacket_auxdata)) + CMSG_SPACE(sizeof(struct timespec)) + 64]; } rxctl[BATCH];

/* Read what is waiting on d->rx (a few batches at most) and queue it. */
static void drain(struct dir *d, uint64_t delay_ns) {
  struct mmsghdr msgs[BATCH];
  struct iovec iov[BATCH];
  struct sockaddr_ll from[BATCH];
  static int rx_err_logged;
  for (int round = 0; round < 8; round++) {
    for (unsigned i = 0; i < BATCH; i++) {
      iov[i].iov_base = rxbuf[i];
      iov[i].iov_len = RXBUF - 4; /* the 4 bytes at the end: room for a VLAN tag */
      memset(&msgs[i], 0, sizeof msgs[i]);
      msgs[i].msg_hdr.msg_name = &from[i];
      msgs[i].msg_hdr.msg_namelen = sizeof from[i];
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
      msgs[i].msg_hdr.msg_control = rxctl[i].buf;
      msgs[i].msg_hdr.msg_controllen = sizeof rxctl[i].buf;
    }
    int r = recvmmsg(d->rx, msgs, BATCH, MSG_DONTWAIT, NULL);
    if (r < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && !rx_err_logged++)
        fprintf(stderr, "delayline: receive for %s: %s\n", d->name, strerror(errno));
      return;
    }
    uint64_t mono = ts_ns(CLOCK_MONOTONIC), real = ts_ns(CLOCK_REALTIME);
    for (int i = 0; i < r; i++) {
      struct msghdr *h = &msgs[i].msg_hdr;
      uint8_t pt = from[i].sll_pkttype;
      if (pt == PACKET_OUTGOING || pt == PACKET_LOOPBACK) continue; /* ours or the local stack's */
      uint32_t len = msgs[i].msg_len;
      if ((h->msg_flags & MSG_TRUNC) || len > VNET_LEN + FRAME_MAX) { d->too_long++; continue; }
      if (len < VNET_LEN + 14) continue;
      unsigned char *b = rxbuf[i];
      uint64_t arrived = mono;
      for (struct cmsghdr *c = CMSG_FIRSTHDR(h); c; c = CMSG_NXTHDR(h, c)) {
        if (c->cmsg_level == SOL_PACKET && c->cmsg_type == PACKET_AUXDATA) {
          struct tpacket_auxdata aux;
          memcpy(&aux, CMSG_DATA(c), sizeof aux);
          if (aux.tp_status & TP_STATUS_VLAN_VALID) {
            /* Put the tag the receive path took out back between the MACs and the EtherType. */
            uint16_t tpid = (aux.tp_status & TP_STATUS_VLAN_TPID_VALID) ? aux.tp_vlan_tpid : ETH_P_8021Q;
            unsigned char *f = b + VNET_LEN;
            memmove(f + 16, f + 12, len - VNET_LEN - 12);
            f[12] = (unsigned char)(tpid >> 8); f[13] = (unsigned char)tpid;
            f[14] = (unsigned char)(aux.tp_vlan_tci >> 8); f[15] = (unsigned char)aux.tp_vlan_tci;
            len += 4;
            struct virtio_net_hdr vh;
            memcpy(&vh, b, sizeof vh);
            if (vh.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) vh.csum_start = (uint16_t)(vh.csum_start + 4);
            if (vh.hdr_len) vh.hdr_len = (uint16_t)(vh.hdr_len + 4);
            memcpy(b, &vh, sizeof vh);
          }
        } else if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_TIMESTAMPNS) {
          struct timespec ts;
          memcpy(&ts, CMSG_DATA(c), sizeof ts);
          uint64_t k = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
          /* Kernel receive time (CLOCK_REALTIME) mapped to MONOTONIC; ignored unless within the last second. */
          if (k <= real && real - k < 1000000000ull) arrived = mono - (real - k);
        }
      }
      enqueue(d, b, len, arrived + delay_ns);
    }
    if (r < BATCH) return;
  }
}

int main(int argc, char **argv) {
  const char *ifa = NULL, *ifb = NULL;
  double delay_ms = NAN;
  unsigned long queue = 65536;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!v) usage();
    char *end;
    if (!strcmp(a, "--a")) ifa = v;
    else if (!strcmp(a, "--b")) ifb = v;
    else if (!strcmp(a, "--delay-ms")) {
      delay_ms = strtod(v, &end);
      if (end == v || *end || !isfinite(delay_ms) || delay_ms < 0 || delay_ms > 3600e3) usage();
    } else if (!strcmp(a, "--queue")) {
      queue = strtoul(v, &end, 10);
      if (end == v || *end || v[0] == '-' || queue < 1 || queue > (1ul << 24)) usage();
    } else usage();
    i++;
  }
  if (!ifa || !ifb || isnan(delay_ms)) usage();
  if (!strcmp(ifa, ifb)) { fprintf(stderr, "delayline: --a and --b are the same interface (%s)\n", ifa); return 2; }

  prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
  /* SIGTERM/SIGINT stay blocked except inside ppoll(): no lost wake-up. */
  sigset_t block, waitmask;
  sigemptyset(&block);
  sigaddset(&block, SIGTERM);
  sigaddset(&block, SIGINT);
  sigprocmask(SIG_BLOCK, &block, &waitmask);
  sigdelset(&waitmask, SIGTERM);
  sigdelset(&waitmask, SIGINT);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);

  int mtu_a, mtu_b;
  int fa = open_packet(ifa, &mtu_a), fb = open_packet(ifb, &mtu_b);
  int mtu = mtu_a > mtu_b ? mtu_a : mtu_b;
  if (mtu < 1500) mtu = 1500;
  slot_size = ((size_t)VNET_LEN + (size_t)mtu + 14 + 4 + 63) & ~(size_t)63;

  struct dir d[2];
  dir_init(&d[0], "a_to_b", fa, fb, (uint32_t)queue);
  dir_init(&d[1], "b_to_a", fb, fa, (uint32_t)queue);
  const uint64_t delay_ns = (uint64_t)(delay_ms * 1e6 + 0.5);
  fprintf(stderr, "READY\n");
  fflush(stderr);

  struct pollfd pfd[2] = { { fa, POLLIN, 0 }, { fb, POLLIN, 0 } };
  while (!stop) {
    uint64_t now = ts_ns(CLOCK_MONOTONIC);
    flush_due(&d[0], now);
    flush_due(&d[1], now);
    uint64_t next = UINT64_MAX;
    for (int k = 0; k < 2; k++)
      if (d[k].count > 0 && d[k].q[d[k].head].due < next) next = d[k].q[d[k].head].due;
    struct timespec to, *top = NULL;
    if (next != UINT64_MAX) {
      now = ts_ns(CLOCK_MONOTONIC);
      uint64_t w = next > now ? next - now : 0;
      to.tv_sec = (time_t)(w / 1000000000ull);
      to.tv_nsec = (long)(w % 1000000000ull);
      top = &to;
    }
    int n = ppoll(pfd, 2, top, &waitmask);
    if (n < 0) {
      if (errno == EINTR) continue;
      perror("delayline: ppoll");
      return 1;
    }
    for (int k = 0; k < 2; k++)
      if (pfd[k].revents) drain(&d[k], delay_ns);
  }

  printf("{\"delay_ms\":%.6g", delay_ms);
  for (int k = 0; k < 2; k++)
    printf(",\"%s\":{\"frames\":%llu,\"bytes\":%llu,\"dropped_queue_full\":%llu,\"too_long\":%llu,\"send_failed\":%llu,\"queued_at_exit\":%u}",
           d[k].name, d[k].frames, d[k].bytes, d[k].dropped, d[k].too_long, d[k].send_failed, d[k].count);
  printf("}\n");
  fflush(stdout);
  return 0;
}
