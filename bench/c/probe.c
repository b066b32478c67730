/*
 * probe: paced UDP probes with one-way delay, loss runs and gaps, for lime's migration
 * experiments (a host moves between sites; how long does each flow stall, what is lost).
 *
 *   probe --id N --bind IP --port P --rate PPS --seconds T --start-at UNIX_MS
 *         [--trace] [--bin-ms MS] [--grace-ms MS] --to ID@IP [--to ID@IP ...]
 *
 * One process per host namespace, bound to UDP IP:P (SO_RCVBUF 4 MB). From START_AT
 * (CLOCK_REALTIME, Unix ms; every prober of an experiment gets the same value) it sends,
 * at ticks START_AT + k/PPS for T seconds (round(PPS*T) ticks), one datagram to EACH
 * destination (ID@IP, port P). Pacing is absolute: the schedule is mapped once to
 * CLOCK_MONOTONIC and the process sleeps in ppoll() to the next tick (timer slack 1 ns).
 * When late it sends every tick that is due, but at most 100 ms worth; older ticks are
 * dropped from the schedule and counted in "skipped" (ticks: each one is a datagram per
 * destination, so sent[d] + skipped = round(PPS*T) for every d).
 * Datagram (64 bytes, all fields big-endian, rest zero):
 *   u32 magic 0x4c494d45 ("LIME"), u16 src id, u16 dst id, u32 seq (per destination,
 *   from 0, one per tick sent), u64 tx time (ns, CLOCK_REALTIME, read just before sendto)
 * All namespaces share the clock, so one-way delay = rx time - tx time. The rx time is the
 * kernel's receive timestamp (SO_TIMESTAMPNS; read time if it is missing or not within
 * the last second), so this process's own scheduling delay is not measured as network delay.
 * It receives meanwhile (same thread, recvmmsg batches) and counts datagrams that are short,
 * have another magic or another dst id as "bad". It stops --grace-ms (default 1.5 s) after its last send (or on
 * SIGTERM/SIGINT, with what it has) and prints ONE JSON line on stdout, exit 0:
 *   {"id":N,"rate":PPS,"seconds":T,"start_at_ms":MS,"bin_ms":B,
 *    "sent":{"<dst>":n,...},"send_errors":{"<dst>":n,...},"skipped":n,"bad":n,
 *    "rx":{"<src>":{"received":n,"dup":n,"reordered":n,"first_seq":s,"last_seq":s,"lost":n,
 *                   "max_gap_ms":x,"max_gap_at_ms":t,"lost_runs":[[seq_from,count],...]}},
 *    "bins":[{"t_ms":t,"n":n,"delay_sum_us":x,"delay_max_us":x},...],
 *    "trace":[[rx_ms,src,seq,delay_us],...]}
 *   sent         seq numbers used per destination (a datagram sendto() refused, e.g.
 *                EHOSTUNREACH/ENOBUFS, is also in send_errors: its seq is lost on the wire)
 *   rx           one entry per source seen, plus one per --to destination (first_seq,
 *                last_seq and max_gap_at_ms null when nothing came from it)
 *   received     distinct seqs received; dup: further copies; reordered: arrivals with a
 *                seq below the highest seen before (dups not counted)
 *   first_seq/last_seq  lowest/highest seq received; lost = seqs missing between them;
 *                lost_runs = the 64 longest runs of missing seqs (sorted by seq). Loss after
 *                last_seq is invisible here: compare last_seq with the sender's sent-1
 *   max_gap_ms   largest time between consecutive arrivals from that source (µs precision),
 *                max_gap_at_ms when that gap ended (ms after START_AT)
 *   bins         --bin-ms wide (default 1000) by arrival time after START_AT (earlier
 *                arrivals in bin 0), every arrival of every source, from the first to the
 *                last non-empty bin (empty ones between included); t_ms = bin start;
 *                delay_sum_us / n = mean one-way delay
 *   trace        (--trace) every arrival: ms after START_AT (3 decimals), src id, seq,
 *                one-way delay in µs
 * Prints READY on stderr once bound. Bad arguments: usage on stderr, exit 2; set-up
 * failures (bind, ...): exit 1.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAGIC 0x4c494d45u
#define DGRAM 64
#define HDR_LEN 20
#define MAX_DST 64
#define MAX_SRC 1024
#define SEQ_LIMIT (1u << 28)  /* bitmap bound (32 MB); larger seqs are "bad" */
#define MAX_RUNS 64
#define BATCH 64

static volatile sig_atomic_t stop;
static void on_signal(int sig) { (void)sig; stop = 1; }

static uint64_t ts_ns(clockid_t c) {
  struct timespec ts;
  clock_gettime(c, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void usage(void) {
  fprintf(stderr, "usage: probe --id N --bind IP --port P --rate PPS --seconds T --start-at UNIX_MS\n"
                  "             [--trace] [--bin-ms MS] [--grace-ms MS] --to ID@IP [--to ID@IP ...]\n");
  exit(2);
}

static void *xrealloc(void *p, size_t n) {
  void *q = realloc(p, n);
  if (!q) { fprintf(stderr, "probe: out of memory\n"); exit(1); }
  return q;
}

static void put32(unsigned char *b, uint32_t v) { for (int i = 0; i < 4; i++) b[i] = (unsigned char)(v >> (24 - 8 * i)); }
static void put16(unsigned char *b, uint16_t v) { b[0] = (unsigned char)(v >> 8); b[1] = (unsigned char)v; }
static void put64(unsigned char *b, uint64_t v) { for (int i = 0; i < 8; i++) b[i] = (unsigned char)(v >> (56 - 8 * i)); }
static uint32_t get32(const unsigned char *b) { return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3]; }
static uint16_t get16(const unsigned char *b) { return (uint16_t)(b[0] << 8 | b[1]); }
static uint64_t get64(const unsigned char *b) { return (uint64_t)get32(b) << 32 | get32(b + 4); }

struct dst { uint16_t id; struct sockaddr_in addr; uint32_t seq; unsigned long long errors; };

struct src {
  uint16_t id;
  unsigned long long received, dup, reordered;
  int64_t min_seq, max_seq;         /* -1: none yet */
  uint64_t last_rx;                 /* ns CLOCK_REALTIME of the previous arrival, 0: none */
  int64_t max_gap_ns, max_gap_at_ns;
  uint8_t *seen;                    /* bitmap of received seqs */
  size_t seen_bytes;
};

struct bin { unsigned long long n; int64_t delay_sum_ns, delay_max_ns; };
struct tr { int64_t rx_rel_ns; uint32_t seq; uint16_t src; int64_t delay_ns; };

static struct dst dsts[MAX_DST];
static int ndst;
static struct src srcs[MAX_SRC];
static int nsrc;
static struct bin *bins;
static size_t nbins, bins_cap;
static long first_bin = -1, last_bin = -1;
static struct tr *trace;
static size_t ntrace, trace_cap;
static int do_trace;
static unsigned long long bad, skipped;
static uint64_t start_ns;           /* START_AT, CLOCK_REALTIME */
static double bin_ms = 1000;
/* How long to keep receiving after the last send (--grace-ms, default 1500). */
static double grace_ms = 1500;

static struct src *src_get(uint16_t id) {
  for (int i = 0; i < nsrc; i++) if (srcs[i].id == id) return &srcs[i];
  if (nsrc == MAX_SRC) return NULL;
  struct src *s = &srcs[nsrc++];
  memset(s, 0, sizeof *s);
  s->id = id;
  s->min_seq = s->max_seq = -1;
  return s;
}

static void on_probe(const unsigned char *b, size_t len, uint16_t my_id, uint64_t rx) {
  if (len < HDR_LEN || get32(b) != MAGIC || get16(b + 6) != my_id) { bad++; return; }
  uint32_t seq = get32(b + 8);
  if (seq >= SEQ_LIMIT) { bad++; return; }
  struct src *s = src_get(get16(b + 4));
  if (!s) { bad++; return; }
  int64_t delay = (int64_t)(rx - get64(b + 12));
  int64_t rel = (int64_t)(rx - start_ns);

  size_t byte = seq / 8;
  if (byte >= s->seen_bytes) {
    size_t nb = s->seen_bytes ? s->seen_bytes : 4096;
    while (nb <= byte) nb *= 2;
    s->seen = xrealloc(s->seen, nb);
    memset(s->seen + s->seen_bytes, 0, nb - s->seen_bytes);
    s->seen_bytes = nb;
  }
  uint8_t bit = (uint8_t)(1u << (seq % 8));
  if (s->seen[byte] & bit) s->dup++;
  else {
    s->seen[byte] |= bit;
    s->received++;
    if ((int64_t)seq < s->max_seq) s->reordered++;
    if (s->min_seq < 0 || (int64_t)seq < s->min_seq) s->min_seq = seq;
    if ((int64_t)seq > s->max_seq) s->max_seq = seq;
  }
  if (s->last_rx) {
    int64_t gap = (int64_t)(rx - s->last_rx);
    if (gap > s->max_gap_ns) { s->max_gap_ns = gap; s->max_gap_at_ns = rel; }
  }
  s->last_rx = rx;

  double bi = rel < 0 ? 0 : (double)rel / (bin_ms * 1e6);
  size_t idx = bi >= 1e7 ? 10000000 : (size_t)bi; /* truncation = floor (bi >= 0) */
  if (idx >= bins_cap) {
    size_t nc = bins_cap ? bins_cap : 64;
    while (nc <= idx) nc *= 2;
    bins = xrealloc(bins, nc * sizeof *bins);
    memset(bins + bins_cap, 0, (nc - bins_cap) * sizeof *bins);
    bins_cap = nc;
  }
  if (idx >= nbins) nbins = idx + 1;
  struct bin *bn = &bins[idx];
  if (bn->n == 0 || delay > bn->delay_max_ns) bn->delay_max_ns = delay;
  bn->n++;
  bn->delay_sum_ns += delay;
  if (first_bin < 0 || (long)idx < first_bin) first_bin = (long)idx;
  if ((long)idx > last_bin) last_bin = (long)idx;

  if (do_trace) {
    if (ntrace == trace_cap) {
      trace_cap = trace_cap ? trace_cap * 2 : 65536;
      trace = xrealloc(trace, trace_cap * sizeof *trace);
    }
    trace[ntrace++] = (struct tr){ rel, seq, s->id, delay };
  }
}

static unsigned char rxbuf[BATCH][256];
static union { struct cmsghdr align; char buf[CMSG_SPACE(sizeof(struct timespec)) + 64]; } rxctl[BATCH];

static void drain(int fd, uint16_t my_id) {
  struct mmsghdr msgs[BATCH];
  struct iovec iov[BATCH];
  for (int round = 0; round < 16; round++) {
    for (int i = 0; i < BATCH; i++) {
      iov[i].iov_base = rxbuf[i];
      iov[i].iov_len = sizeof rxbuf[i];
      memset(&msgs[i], 0, sizeof msgs[i]);
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
      msgs[i].msg_hdr.msg_control = rxctl[i].buf;
      msgs[i].msg_hdr.msg_controllen = sizeof rxctl[i].buf;
    }
    int r = recvmmsg(fd, msgs, BATCH, MSG_DONTWAIT, NULL);
    if (r < 0) {
      /* EAGAIN: drained. Anything else (an ICMP error queued on the socket) is read and forgotten. */
      return;
    }
    uint64_t now = ts_ns(CLOCK_REALTIME);
    for (int i = 0; i < r; i++) {
      uint64_t rx = now;
      struct msghdr *h = &msgs[i].msg_hdr;
      for (struct cmsghdr *c = CMSG_FIRSTHDR(h); c; c = CMSG_NXTHDR(h, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_TIMESTAMPNS) {
          struct timespec ts;
          memcpy(&ts, CMSG_DATA(c), sizeof ts);
          uint64_t k = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
          if (k <= now && now - k < 1000000000ull) rx = k;
        }
      }
      on_probe(rxbuf[i], msgs[i].msg_len, my_id, rx);
    }
    if (r < BATCH) return;
  }
}

static void send_tick(int fd, uint16_t my_id) {
  unsigned char b[DGRAM];
  memset(b, 0, sizeof b);
  put32(b, MAGIC);
  put16(b + 4, my_id);
  for (int i = 0; i < ndst; i++) {
    struct dst *d = &dsts[i];
    put16(b + 6, d->id);
    put32(b + 8, d->seq++);
    put64(b + 12, ts_ns(CLOCK_REALTIME));
    if (sendto(fd, b, sizeof b, MSG_DONTWAIT, (struct sockaddr *)&d->addr, sizeof d->addr) < 0) d->errors++;
  }
}

static int cmp_run_len(const void *x, const void *y) {
  const int64_t *a = x, *b = y;
  if (a[1] != b[1]) return a[1] > b[1] ? -1 : 1;
  return a[0] < b[0] ? -1 : a[0] > b[0];
}
static int cmp_run_seq(const void *x, const void *y) {
  const int64_t *a = x, *b = y;
  return a[0] < b[0] ? -1 : a[0] > b[0];
}

static void print_src(const struct src *s) {
  printf("\"%u\":{\"received\":%llu,\"dup\":%llu,\"reordered\":%llu,", s->id, s->received, s->dup, s->reordered);
  if (s->min_seq < 0) {
    printf("\"first_seq\":null,\"last_seq\":null,\"lost\":0,\"max_gap_ms\":0,\"max_gap_at_ms\":null,\"lost_runs\":[]}");
    return;
  }
  /* Runs of missing seqs between first and last; keep the MAX_RUNS longest. */
  int64_t (*runs)[2] = NULL;
  size_t nruns = 0, cap = 0;
  unsigned long long lost = 0;
  for (int64_t q = s->min_seq; q <= s->max_seq; q++) {
    if (s->seen[q / 8] & (1u << (q % 8))) continue;
    int64_t from = q;
    while (q <= s->max_seq && !(s->seen[q / 8] & (1u << (q % 8)))) q++;
    if (nruns == cap) { cap = cap ? cap * 2 : 64; runs = xrealloc(runs, cap * sizeof *runs); }
    runs[nruns][0] = from;
    runs[nruns][1] = q - from;
    lost += (unsigned long long)(q - from);
    nruns++;
  }
  if (nruns > MAX_RUNS) { qsort(runs, nruns, sizeof *runs, cmp_run_len); nruns = MAX_RUNS; }
  if (nruns) qsort(runs, nruns, sizeof *runs, cmp_run_seq);
  printf("\"first_seq\":%lld,\"last_seq\":%lld,\"lost\":%llu,\"max_gap_ms\":%.3f,\"max_gap_at_ms\":",
         (long long)s->min_seq, (long long)s->max_seq, lost, (double)s->max_gap_ns / 1e6);
  if (s->last_rx && s->max_gap_ns > 0) printf("%.3f", (double)s->max_gap_at_ns / 1e6);
  else printf("null");
  printf(",\"lost_runs\":[");
  for (size_t i = 0; i < nruns; i++) printf("%s[%lld,%lld]", i ? "," : "", (long long)runs[i][0], (long long)runs[i][1]);
  printf("]}");
  free(runs);
}

static long long us(int64_t ns) { return (long long)(ns >= 0 ? (ns + 500) / 1000 : -((-ns + 500) / 1000)); }

static void report(uint16_t id, double rate, double seconds, unsigned long long start_ms) {
  printf("{\"id\":%u,\"rate\":%.10g,\"seconds\":%.10g,\"start_at_ms\":%llu,\"bin_ms\":%.10g,\"sent\":{", id, rate, seconds, start_ms, bin_ms);
  for (int i = 0; i < ndst; i++) printf("%s\"%u\":%u", i ? "," : "", dsts[i].id, dsts[i].seq);
  printf("},\"send_errors\":{");
  for (int i = 0; i < ndst; i++) printf("%s\"%u\":%llu", i ? "," : "", dsts[i].id, dsts[i].errors);
  printf("},\"skipped\":%llu,\"bad\":%llu,\"rx\":{", skipped, bad);
  for (int i = 0; i < ndst; i++) src_get(dsts[i].id); /* an entry for every peer, even a silent one */
  for (int i = 0; i < nsrc; i++) {
    if (i) printf(",");
    print_src(&srcs[i]);
  }
  printf("},\"bins\":[");
  if (first_bin >= 0)
    for (long i = first_bin; i <= last_bin; i++) {
      const struct bin *b = &bins[i];
      printf("%s{\"t_ms\":%.10g,\"n\":%llu,\"delay_sum_us\":%lld,\"delay_max_us\":%lld}", i > first_bin ? "," : "",
             (double)i * bin_ms, b->n, us(b->delay_sum_ns), b->n ? us(b->delay_max_ns) : 0);
    }
  printf("]");
  if (do_trace) {
    printf(",\"trace\":[");
    for (size_t i = 0; i < ntrace; i++)
      printf("%s[%.3f,%u,%u,%lld]", i ? "," : "", (double)trace[i].rx_rel_ns / 1e6, trace[i].src, trace[i].seq, us(trace[i].delay_ns));
    printf("]");
  }
  printf("}\n");
  fflush(stdout);
}

static int parse_num(const char *v, double *out) {
  char *end;
  errno = 0;
  double x = strtod(v, &end);
  if (end == v || *end || errno || !isfinite(x)) return -1;
  *out = x;
  return 0;
}

static int parse_id(const char *v, size_t n, uint16_t *out) {
  if (n == 0 || n > 5) return -1;
  unsigned long x = 0;
  for (size_t i = 0; i < n; i++) {
    if (v[i] < '0' || v[i] > '9') return -1;
    x = x * 10 + (unsigned long)(v[i] - '0');
  }
  if (x > 65535) return -1;
  *out = (uint16_t)x;
  return 0;
}

int main(int argc, char **argv) {
  const char *bind_ip = NULL;
  double rate = 0, seconds = 0, port = 0, start_d = -1;
  int have_id = 0;
  uint16_t id = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--trace")) { do_trace = 1; continue; }
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!v) usage();
    if (!strcmp(a, "--id")) { if (parse_id(v, strlen(v), &id)) usage(); have_id = 1; }
    else if (!strcmp(a, "--bind")) bind_ip = v;
    else if (!strcmp(a, "--port")) { if (parse_num(v, &port) || port < 1 || port > 65535 || port != (double)(long)port) usage(); }
    else if (!strcmp(a, "--rate")) { if (parse_num(v, &rate) || rate <= 0 || rate > 1e6) usage(); }
    else if (!strcmp(a, "--seconds")) { if (parse_num(v, &seconds) || seconds <= 0 || seconds > 86400) usage(); }
    else if (!strcmp(a, "--start-at")) { if (parse_num(v, &start_d) || start_d < 0 || start_d != (double)(long long)start_d || start_d > 1e15) usage(); }
    else if (!strcmp(a, "--bin-ms")) { if (parse_num(v, &bin_ms) || bin_ms < 0.001 || bin_ms > 86400e3) usage(); }
    else if (!strcmp(a, "--grace-ms")) { if (parse_num(v, &grace_ms) || grace_ms < 0 || grace_ms > 600e3) usage(); }
    else if (!strcmp(a, "--to")) {
      const char *at = strchr(v, '@');
      if (!at || ndst == MAX_DST) usage();
      struct dst *d = &dsts[ndst];
      memset(d, 0, sizeof *d);
      if (parse_id(v, (size_t)(at - v), &d->id)) usage();
      d->addr.sin_family = AF_INET;
      if (inet_pton(AF_INET, at + 1, &d->addr.sin_addr) != 1) usage();
      for (int k = 0; k < ndst; k++) if (dsts[k].id == d->id) usage();
      ndst++;
    } else usage();
    i++;
  }
  struct in_addr bip;
  if (!have_id || !bind_ip || port == 0 || rate == 0 || seconds == 0 || start_d < 0 || ndst == 0) usage();
  if (inet_pton(AF_INET, bind_ip, &bip) != 1) usage();
  for (int k = 0; k < ndst; k++) dsts[k].addr.sin_port = htons((uint16_t)port);
  const unsigned long long start_ms = (unsigned long long)start_d;
  start_ns = start_ms * 1000000ull;

  prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
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

  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) { perror("probe: socket"); return 1; }
  int buf = 4 << 20, one = 1;
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &buf, sizeof buf) < 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
  setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one);
  struct sockaddr_in me = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr = bip };
  if (bind(fd, (struct sockaddr *)&me, sizeof me) < 0) {
    fprintf(stderr, "probe: bind %s:%.0f: %s\n", bind_ip, port, strerror(errno));
    return 1;
  }
  fprintf(stderr, "READY\n");
  fflush(stderr);

  /* The schedule on CLOCK_MONOTONIC: tick k at start_mono + k * period. */
  const uint64_t mono0 = ts_ns(CLOCK_MONOTONIC), real0 = ts_ns(CLOCK_REALTIME);
  const int64_t start_mono = (int64_t)mono0 + (int64_t)(start_ns - real0);
  const double period = 1e9 / rate;
  const uint64_t total = (uint64_t)(rate * seconds + 0.5);
  uint64_t max_backlog = (uint64_t)(rate * 0.1);
  if (max_backlog < 1) max_backlog = 1;
#define TICK(k) (start_mono + (int64_t)((double)(k) * period))
  uint64_t next = 0;                 /* next tick to send or skip */
  int64_t end = INT64_MAX;           /* stop receiving at (mono) */
  if (total == 0) end = start_mono + (int64_t)(grace_ms * 1e6);

  struct pollfd pfd = { fd, POLLIN, 0 };
  while (!stop) {
    int64_t now = (int64_t)ts_ns(CLOCK_MONOTONIC);
    if (next < total && now >= TICK(next)) {
      uint64_t due = now < start_mono ? 0 : (uint64_t)((double)(now - start_mono) / period) + 1;
      if (due > total) due = total;
      while (due > 0 && TICK(due - 1) > now) due--;
      while (due < total && TICK(due) <= now) due++;
      if (due - next > max_backlog) { skipped += due - max_backlog - next; next = due - max_backlog; }
      while (next < due) { send_tick(fd, id); next++; }
      if (next == total) end = (int64_t)ts_ns(CLOCK_MONOTONIC) + (int64_t)(grace_ms * 1e6);
    }
    now = (int64_t)ts_ns(CLOCK_MONOTONIC);
    int64_t wake = next < total ? TICK(next) : end;
    if (next >= total && now >= end) break;
    int64_t w = wake > now ? wake - now : 0;
    struct timespec to = { (time_t)(w / 1000000000), (long)(w % 1000000000) };
    int n = ppoll(&pfd, 1, &to, &waitmask);
    if (n < 0) {
      if (errno == EINTR) continue;
      perror("probe: ppoll");
      return 1;
    }
    if (n > 0) drain(fd, id);
  }
  drain(fd, id);
  report(id, rate, seconds, start_ms);
  return 0;
}
