/**
 * Live logs: a running job's output reaches an event-stream client before the job ends, a
 * reconnect with Last-Event-ID resumes exactly, and a finished job's stored output is served the
 * same way, ending with its status.
 */
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { LiveLog } from "../../coordinator/liveLog";
import { api, expectError, getJob, submit, uniqueSandbox, waitForJob } from "./client";
import { readEvents, textOf } from "./support/logEvents";

const encode = (text: string) => new TextEncoder().encode(text);

describe("live logs", () => {
  it("streams a line before the job ends, resumes from Last-Event-ID, and ends with the status", async () => {
    const sandboxId = uniqueSandbox("live");
    const job = await submit(sandboxId, { type: "run", command: "echo first; echo warn >&2; sleep 3; echo second" });

    const early = await readEvents(await api(`/v1/jobs/${job.id}/logs`), (events) => textOf(events, "stdout").includes("first"));
    expect(textOf(early, "stdout")).toBe("first\n");
    // The line arrived while the command was still running.
    expect((await getJob(job.id)).status).toBe("running");
    // Plain GET of a running job's stdout: what is there so far.
    const soFar = await api(`/v1/jobs/${job.id}/stdout`);
    expect(soFar.status).toBe(200);
    expect(await soFar.text()).toBe("first\n");

    const lastId = early.at(-1)?.id ?? "";
    expect(lastId).toBe("6.0");
    const resumed = await readEvents(await api(`/v1/jobs/${job.id}/logs`, { headers: { "last-event-id": lastId } }));
    expect(textOf(resumed, "stdout")).toBe("second\n");
    expect(textOf(resumed, "stderr")).toBe("warn\n");
    expect(resumed.at(-1)).toMatchObject({ event: "status", data: { status: "succeeded", exitCode: 0 } });
  });

  it("serves a finished job's stored output as events, from an offset too, and refuses an offset that does not read", async () => {
    const job = await submit(uniqueSandbox("stored-logs"), { type: "run", command: "printf 'abcdef'; printf 'err' >&2; exit 4" });
    await waitForJob(job.id);
    const all = await readEvents(await api(`/v1/jobs/${job.id}/logs`));
    expect(textOf(all, "stdout")).toBe("abcdef");
    expect(textOf(all, "stderr")).toBe("err");
    expect(all.at(-1)).toMatchObject({ event: "status", data: { status: "failed", exitCode: 4 } });
    const tail = await readEvents(await api(`/v1/jobs/${job.id}/logs?from=4.3`));
    expect(textOf(tail, "stdout")).toBe("ef");
    expect(textOf(tail, "stderr")).toBe("");
    // A mistyped offset is said, not read as "from the start".
    const typo = await expectError(await api(`/v1/jobs/${job.id}/logs?from=abc`), 400, "INVALID_REQUEST");
    expect(typo).toContain("from must be where to resume as <stdout bytes>.<stderr bytes>");
  });

  it("tells a live follower where output past the cap was skipped, and never sends the tail twice", async () => {
    const job = await submit(uniqueSandbox("live-capped"), { type: "run", command: "sleep 1; seq 1 100000" });
    const events = await readEvents(await api(`/v1/jobs/${job.id}/logs`));
    expect(events.at(-1)).toMatchObject({ event: "status", data: { status: "succeeded" } });
    const finished = await getJob(job.id);
    const dropped = finished.stdout?.droppedBytes ?? 0;
    expect(dropped).toBeGreaterThan(0);
    const stored = await (await api(`/v1/jobs/${job.id}/stdout`)).text();
    const marker = `\n[... ${dropped} bytes of output dropped here ...]\n`;
    const [head = "", tail = ""] = stored.split(marker);
    const live = textOf(events, "stdout");
    // The follower got the kept head and the kept tail, the last line once, no marker in between.
    expect(live.startsWith(head)).toBe(true);
    expect(live.endsWith(tail)).toBe(true);
    expect(live.split("\n100000\n")).toHaveLength(2);
    // Every byte the command wrote reached it as text or was announced as a gap.
    const gaps = events
      .filter((event) => event.event === "gap")
      .map((event) => z.object({ stream: z.string(), droppedBytes: z.number() }).parse(event.data));
    expect(gaps.length).toBeGreaterThan(0);
    const written = stored.length - marker.length + dropped;
    expect(live.length + gaps.reduce((sum, gap) => sum + gap.droppedBytes, 0)).toBe(written);
    // Reconnecting where it stood sends nothing more; from inside the dropped middle, the marker and the tail.
    const lastId = events.filter((event) => event.event === "stdout").at(-1)?.id ?? "";
    const again = await readEvents(await api(`/v1/jobs/${job.id}/logs`, { headers: { "last-event-id": lastId } }));
    expect(textOf(again, "stdout")).toBe("");
    const fromMiddle = await readEvents(await api(`/v1/jobs/${job.id}/logs?from=${head.length + 10}.0`));
    expect(textOf(fromMiddle, "stdout")).toBe(`${marker}${tail}`);
  });

  it("numbers every try's output in one sequence, so a reconnect after a retry resumes exactly", async () => {
    const job = await submit(uniqueSandbox("live-retries"), {
      type: "run",
      retries: 1,
      command: "if [ -e tried ]; then sleep 1; printf 'second try\\n'; else : > tried; printf 'first try\\n'; exit 3; fi",
    });
    const live = await readEvents(await api(`/v1/jobs/${job.id}/logs`));
    expect(live.at(-1)).toMatchObject({ event: "status", data: { status: "succeeded", exitCode: 0 } });
    // A live follower sees each try's output in turn; the ids go on across the tries.
    expect(textOf(live, "stdout")).toBe("first try\nsecond try\n");
    expect(live.filter((event) => event.event === "stdout").map((event) => event.id)).toEqual(["10.0", "21.0"]);
    expect((await getJob(job.id)).tries.map((tried) => tried.exitCode)).toEqual([3, 0]);
    // Where the stored try begins is the log route's own business: not in the job as the API answers it.
    expect(await (await api(`/v1/jobs/${job.id}`)).json()).not.toHaveProperty("storedOutputAt");
    // Only the last try's output is stored; reconnecting after the end from the end of the first try gets all of it.
    expect(await (await api(`/v1/jobs/${job.id}/stdout`)).text()).toBe("second try\n");
    const fromSecond = await readEvents(await api(`/v1/jobs/${job.id}/logs`, { headers: { "last-event-id": "10.0" } }));
    expect(textOf(fromSecond, "stdout")).toBe("second try\n");
    expect(fromSecond.filter((event) => event.event === "gap")).toEqual([]);
    expect(fromSecond.filter((event) => event.event === "stdout").at(-1)?.id).toBe("21.0");
    // From inside the first try: a gap for the rest of it (not stored), then the second try whole.
    const fromFirst = await readEvents(await api(`/v1/jobs/${job.id}/logs?from=4.0`));
    expect(fromFirst.filter((event) => event.event === "gap").map((event) => [event.id, event.data])).toEqual([
      ["10.0", { stream: "stdout", droppedBytes: 6 }],
    ]);
    expect(textOf(fromFirst, "stdout")).toBe("second try\n");
    // Where a live follower ended: nothing more but the status.
    const again = await readEvents(await api(`/v1/jobs/${job.id}/logs?from=21.0`));
    expect(again.map((event) => event.event)).toEqual(["status"]);
  });

  it("counts a byte a late follower missed once, as a gap, never again from the stored output", async () => {
    // 9 MB of stdout after 9 MB of stderr (each with its middle skipped) leaves none of stderr in
    // the 4 MiB kept for followers.
    const job = await submit(uniqueSandbox("live-late"), {
      type: "run",
      command: "head -c 9000000 /dev/zero | tr '\\0' x >&2; echo hi; head -c 9000000 /dev/zero | tr '\\0' y; sleep 4",
    });
    await expect.poll(async () => (await getJob(job.id)).status, { timeout: 20_000 }).toBe("running");
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    const events = await readEvents(await api(`/v1/jobs/${job.id}/logs`));
    expect(events.at(-1)).toMatchObject({ event: "status", data: { status: "succeeded" } });
    const gapBytes = (stream: string) =>
      events
        .filter((event) => event.event === "gap")
        .map((event) => z.object({ stream: z.string(), droppedBytes: z.number() }).parse(event.data))
        .filter((gap) => gap.stream === stream)
        .reduce((sum, gap) => sum + gap.droppedBytes, 0);
    expect(textOf(events, "stdout").length + gapBytes("stdout")).toBe(9_000_003);
    expect(textOf(events, "stderr").length + gapBytes("stderr")).toBe(9_000_000);
    expect(gapBytes("stderr")).toBeGreaterThan(4_000_000);
    // Every gap says where the follower stands after it.
    expect(events.filter((event) => event.event === "gap").every((event) => /^\d+\.\d+$/.test(event.id ?? ""))).toBe(true);
  });

  it("gives the gap a follower gets for output no longer kept the id where the follower then stands", async () => {
    const log = new LiveLog();
    log.append("stderr", encode("e".repeat(10)), 90);
    // More stdout than the 4 MiB kept for followers: the stderr entry is dropped.
    const stdoutBytes = 5 * 1024 * 1024;
    log.append("stdout", encode("x".repeat(stdoutBytes)));
    log.close();
    const stream = log.follow({ stdout: 0, stderr: 0 }, 5_000);
    const events = await readEvents(new Response(stream, { headers: { "content-type": "text/event-stream" } }));
    expect(events.map((event) => [event.event, event.id])).toEqual([
      ["stdout", `${stdoutBytes}.0`],
      ["gap", `${stdoutBytes}.100`],
    ]);
    expect(events.at(-1)?.data).toEqual({ stream: "stderr", droppedBytes: 100 });
  });

  it("numbers events by the bytes the command wrote, so a reconnect after invalid UTF-8 resumes exactly", async () => {
    const job = await submit(uniqueSandbox("live-bytes"), { type: "run", command: "printf 'a\\377b'; sleep 2; printf 'tail'" });
    const early = await readEvents(await api(`/v1/jobs/${job.id}/logs`), (events) => textOf(events, "stdout").includes("b"));
    expect(textOf(early, "stdout")).toBe("a\uFFFDb");
    // Three bytes written, whatever their text: the id is where the stored output resumes.
    expect(early.at(-1)?.id).toBe("3.0");
    await waitForJob(job.id);
    const resumed = await readEvents(await api(`/v1/jobs/${job.id}/logs`, { headers: { "last-event-id": "3.0" } }));
    expect(textOf(resumed, "stdout")).toBe("tail");
  });

  it("shows a character split between output pieces whole, in the later piece's event", async () => {
    const log = new LiveLog();
    const bytes = encode("né 🙂!");
    // Cut inside "é", then twice inside the emoji, which its fourth byte completes.
    for (const [from, to] of [
      [0, 2],
      [2, 5],
      [5, 6],
      [6, 8],
      [8, bytes.byteLength],
    ] as const)
      log.append("stdout", bytes.subarray(from, to));
    log.close();
    const events = await readEvents(
      new Response(log.follow({ stdout: 0, stderr: 0 }, 5_000), { headers: { "content-type": "text/event-stream" } }),
    );
    expect(events.map((event) => [event.id, textOf([event], "stdout")])).toEqual([
      ["2.0", "n"],
      ["5.0", "é "],
      ["6.0", ""],
      ["8.0", "🙂"],
      [`${bytes.byteLength}.0`, "!"],
    ]);
  });

  it("keeps a byte order mark that starts the output, live and stored", async () => {
    const job = await submit(uniqueSandbox("live-bom"), { type: "run", command: "sleep 1; printf '\\357\\273\\277bom\\n'" });
    const live = await readEvents(await api(`/v1/jobs/${job.id}/logs`));
    expect(live.at(-1)).toMatchObject({ event: "status", data: { status: "succeeded" } });
    expect(textOf(live, "stdout")).toBe("\uFEFFbom\n");
    const stored = await readEvents(await api(`/v1/jobs/${job.id}/logs`));
    expect(textOf(stored, "stdout")).toBe("\uFEFFbom\n");
  });

  it("answers 409 for the stdout of a job still queued behind another", async () => {
    const sandboxId = uniqueSandbox("queued-out");
    await submit(sandboxId, { type: "run", command: "sleep 3" });
    const queued = await submit(sandboxId, { type: "run", command: "true" });
    await expectError(await api(`/v1/jobs/${queued.id}/stdout`), 409, "OUTPUT_NOT_READY");
  });
});
