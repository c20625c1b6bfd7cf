/** Unit tests of how run messages are packed into sendBatch calls within Queues' limits. */
import { describe, expect, it } from "vitest";
import { MAX_MESSAGE_BYTES, messageBytes, packIntoBatches } from "../../api/queueSender";
import type { RunMessage } from "../../schemas/queueMessages";

function message(index: number, commandBytes: number): RunMessage {
  return {
    kind: "run",
    jobId: `01ARZ3NDEKTSV4RRFFQ69G${String(index).padStart(4, "0")}`,
    sandboxKey: "local.s",
    request: {
      type: "run",
      command: "x".repeat(commandBytes),
      cwd: "/workspace",
      secrets: [],
      cache: [],
      env: {},
      timeoutMs: 1000,
      retries: 0,
      inputs: [],
      artifacts: [],
    },
  };
}

describe("packing run messages into sendBatch calls", () => {
  it("keeps every call at 100 messages or fewer, in order", () => {
    const batches = packIntoBatches(Array.from({ length: 250 }, (_, i) => message(i, 10)));
    expect(batches.map((batch) => batch.length)).toEqual([100, 100, 50]);
    expect(batches.flat().map((m) => m.jobId)).toEqual(Array.from({ length: 250 }, (_, i) => message(i, 10).jobId));
  });

  it("keeps every call at 256 KB or less", () => {
    const batches = packIntoBatches(Array.from({ length: 10 }, (_, i) => message(i, 60 * 1024)));
    for (const batch of batches) expect(batch.reduce((sum, m) => sum + messageBytes(m), 0)).toBeLessThanOrEqual(256 * 1024);
    expect(batches.flat()).toHaveLength(10);
  });

  it("refuses a single message over 128 KB instead of letting the queue reject it", () => {
    expect(() => packIntoBatches([message(0, MAX_MESSAGE_BYTES)])).toThrow(/128 KB/);
  });
});
