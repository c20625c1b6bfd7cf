/** Durations as people write them in a pipeline file: `90s`, `5m`, `1h30m`, `1500ms`, or a number of milliseconds. */

const UNIT_MS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 } as const;
const DURATION = /^(?:\d+(?:\.\d+)?(?:ms|s|m|h))+$/;
const PART = /(\d+(?:\.\d+)?)(ms|s|m|h)/g;

/** Milliseconds, or undefined when the text is not a duration. */
export function parseDuration(text: string): number | undefined {
  const compact = text.trim();
  if (!DURATION.test(compact)) return undefined;
  let total = 0;
  for (const [, amount, unit] of compact.matchAll(PART)) {
    if (amount === undefined || (unit !== "ms" && unit !== "s" && unit !== "m" && unit !== "h")) return undefined;
    total += Number(amount) * UNIT_MS[unit];
  }
  return Math.round(total);
}
