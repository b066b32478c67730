// Small statistics helpers.
export function sorted(xs) { return [...xs].filter((x) => Number.isFinite(x)).sort((a, b) => a - b); }

/** Nearest-rank percentile (p in 0..100) of a list of numbers. */
export function percentile(xs, p) {
  const s = sorted(xs);
  if (!s.length) return null;
  const rank = Math.ceil((p / 100) * s.length);
  return s[Math.min(s.length - 1, Math.max(0, rank - 1))];
}

export function median(xs) {
  const s = sorted(xs);
  if (!s.length) return null;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export function summary(xs) {
  const s = sorted(xs);
  if (!s.length) return { median: null, min: null, max: null, n: 0 };
  return { median: median(s), min: s[0], max: s[s.length - 1], n: s.length };
}
