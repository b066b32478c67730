/**
 * Reading `ping -D -i INTERVAL` output (iputils): which echo requests were answered and
 * when, and from that the service downtime a client saw — the longest time between two
 * consecutive replies, and the requests never answered.
 */

export interface PingReply {
  seq: number;
  /** When the reply arrived (epoch ms, ping's -D timestamp). */
  at: number;
  rttMs: number;
}

export interface PingStats {
  /** Requests ping says it sent (its summary line), or the highest sequence number seen. */
  transmitted: number;
  received: number;
  /** Sequence numbers below the last answered one that were never answered. */
  lost: number;
  /** The longest run of consecutive unanswered sequence numbers. */
  lost_in_a_row: number;
  /** Longest time between two consecutive replies (ms), and when it began (epoch ms). */
  longest_gap_ms: number;
  gap_from: number;
  gap_to: number;
  /** Replies that arrived after `after` (epoch ms), when given. */
  received_after: number;
  duplicates: number;
  max_rtt_ms: number;
}

const REPLY_RE = /^\[(\d+\.\d+)\] \d+ bytes from [^:]+: icmp_seq=(\d+) ttl=\d+ time=([\d.]+) ms( \(DUP!\))?/;

export function parsePing(text: string): { replies: PingReply[]; duplicates: number; transmitted: number } {
  const replies: PingReply[] = [];
  let duplicates = 0;
  let transmitted = 0;
  for (const line of text.split('\n')) {
    const m = REPLY_RE.exec(line);
    if (m !== null) {
      if (m[4] !== undefined) {
        duplicates++;
        continue;
      }
      replies.push({ seq: Number(m[2]), at: Math.round(Number(m[1]) * 1000), rttMs: Number(m[3]) });
      continue;
    }
    const s = /^(\d+) packets transmitted/.exec(line);
    if (s !== null) transmitted = Number(s[1]);
  }
  return { replies, duplicates, transmitted };
}

export function pingStats(text: string, after = Number.POSITIVE_INFINITY): PingStats {
  const { replies, duplicates, transmitted } = parsePing(text);
  const seqs = new Set(replies.map((r) => r.seq));
  const firstSeq = replies.length > 0 ? Math.min(...replies.map((r) => r.seq)) : 1;
  const lastSeq = replies.length > 0 ? Math.max(...replies.map((r) => r.seq)) : 0;
  let lost = 0;
  let run = 0;
  let inARow = 0;
  for (let s = firstSeq; s <= lastSeq; s++) {
    if (seqs.has(s)) run = 0;
    else {
      lost++;
      run++;
      inARow = Math.max(inARow, run);
    }
  }
  const byTime = [...replies].sort((a, b) => a.at - b.at);
  let gap = 0;
  let from = 0;
  let to = 0;
  for (let i = 1; i < byTime.length; i++) {
    const d = byTime[i]!.at - byTime[i - 1]!.at;
    if (d > gap) {
      gap = d;
      from = byTime[i - 1]!.at;
      to = byTime[i]!.at;
    }
  }
  return {
    transmitted: Math.max(transmitted, lastSeq),
    received: replies.length,
    lost,
    lost_in_a_row: inARow,
    longest_gap_ms: gap,
    gap_from: from,
    gap_to: to,
    received_after: replies.filter((r) => r.at > after).length,
    duplicates,
    max_rtt_ms: replies.reduce((m, r) => Math.max(m, r.rttMs), 0),
  };
}
