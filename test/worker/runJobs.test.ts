/** Run jobs end to end: API -> local Queue -> consumer -> local sandbox host -> R2 -> API. */
import { describe, expect, it } from "vitest";
import { JobPageView } from "../../schemas/job";
import { api, getJob, runJob, sha256Hex, submit, toBase64, uniqueSandbox } from "./client";

const ALL_BYTES = Uint8Array.from({ length: 256 }, (_, i) => i);

describe("run jobs", () => {
  it("answers 202 at once with a queued job and its Location", async () => {
    const sandbox = uniqueSandbox("submit");
    const response = await api(`/v1/sandboxes/${sandbox}/jobs`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ type: "run", command: "true" }),
    });
    expect(response.status).toBe(202);
    const job = await response.json<{ id: string; status: string }>();
    expect(job.status).toBe("queued");
    expect(job.id).toMatch(/^[0-9A-Z]{26}$/);
    expect(response.headers.get("location")).toBe(`/v1/jobs/${job.id}`);
  });

  it("builds files and collects them as artifacts, binary bytes intact", async () => {
    const sandbox = uniqueSandbox("build");
    // Every byte value 0..255, produced inside the sandbox by printf.
    const octal = [...ALL_BYTES].map((b) => `\\${b.toString(8).padStart(3, "0")}`).join("");
    const job = await runJob(sandbox, {
      type: "run",
      command: `mkdir -p dist/nested && printf '${octal}' > dist/all-bytes.bin && echo '{"ok":true}' > dist/nested/report.json && echo built && echo warn >&2`,
      artifacts: ["dist/**"],
    });
    expect(job.status).toBe("succeeded");
    expect(job.exitCode).toBe(0);
    expect(job.durationMs).toBeGreaterThanOrEqual(0);
    expect(job.attempts).toBe(1);
    expect(job.artifacts.map((a) => a.path).sort()).toEqual(["dist/all-bytes.bin", "dist/nested/report.json"]);

    const binary = job.artifacts.find((a) => a.path === "dist/all-bytes.bin");
    expect(binary).toMatchObject({ size: 256, contentType: "application/octet-stream", sha256: await sha256Hex(ALL_BYTES) });
    const download = await api(new URL(binary?.url ?? "").pathname);
    expect(download.status).toBe(200);
    expect(new Uint8Array(await download.arrayBuffer())).toEqual(ALL_BYTES);
    expect(download.headers.get("content-length")).toBe("256");
    expect(download.headers.get("etag")).toBeTruthy();
    expect(download.headers.get("content-disposition")).toContain('filename="all-bytes.bin"');

    const report = job.artifacts.find((a) => a.path === "dist/nested/report.json");
    expect(report?.contentType).toContain("application/json");

    expect(await (await api(`/v1/jobs/${job.id}/stdout`)).text()).toBe("built\n");
    expect(await (await api(`/v1/jobs/${job.id}/stderr`)).text()).toBe("warn\n");
    expect(job.stdout).toMatchObject({ size: 6, truncated: false });
  });

  it("streams an artifact larger than the SDK's 32 MiB read limit into R2, hash intact", async () => {
    const job = await runJob(uniqueSandbox("huge"), {
      type: "run",
      command: "head -c 41943040 /dev/urandom > huge.bin && sha256sum huge.bin | cut -d' ' -f1",
      artifacts: ["huge.bin"],
      timeoutMs: 60_000,
    });
    expect(job.status).toBe("succeeded");
    const hashInSandbox = (await (await api(`/v1/jobs/${job.id}/stdout`)).text()).trim();
    expect(job.artifacts).toEqual([expect.objectContaining({ path: "huge.bin", size: 41943040, sha256: hashInSandbox })]);
    const head = await api(`/v1/jobs/${job.id}/artifacts/huge.bin`, { headers: { range: "bytes=41943000-" } });
    expect(head.status).toBe(206);
    expect((await head.arrayBuffer()).byteLength).toBe(40);
  });

  it("serves Range requests and honours If-None-Match", async () => {
    const job = await runJob(uniqueSandbox("range"), { type: "run", command: "printf 0123456789 > digits.txt", artifacts: ["digits.txt"] });
    const path = `/v1/jobs/${job.id}/artifacts/digits.txt`;
    const partial = await api(path, { headers: { range: "bytes=2-5" } });
    expect(partial.status).toBe(206);
    expect(await partial.text()).toBe("2345");
    expect(partial.headers.get("content-range")).toBe("bytes 2-5/10");
    const suffix = await api(path, { headers: { range: "bytes=-3" } });
    expect(await suffix.text()).toBe("789");
    const etag = (await api(path)).headers.get("etag") ?? "";
    const cached = await api(path, { headers: { "if-none-match": etag } });
    expect(cached.status).toBe(304);
  });

  it("passes cwd, env and stdin, and keeps env values out of the record", async () => {
    const sandbox = uniqueSandbox("env");
    const job = await runJob(sandbox, {
      type: "run",
      command: 'pwd; echo "$GREETING"; cat',
      cwd: "/workspace/sub/dir",
      env: { GREETING: "hello-secret-value" },
      stdin: "from stdin",
    });
    expect(job.status).toBe("succeeded");
    expect(await (await api(`/v1/jobs/${job.id}/stdout`)).text()).toBe("/workspace/sub/dir\nhello-secret-value\nfrom stdin");
    expect(job.request).toMatchObject({ envKeys: ["GREETING"], stdinBytes: 10 });
    expect(JSON.stringify(job)).not.toContain("hello-secret-value");
  });

  it("keeps files in a sandbox between jobs", async () => {
    const sandbox = uniqueSandbox("persist");
    await runJob(sandbox, { type: "run", command: "echo first > state.txt" });
    const second = await runJob(sandbox, { type: "run", command: "cat state.txt" });
    expect(await (await api(`/v1/jobs/${second.id}/stdout`)).text()).toBe("first\n");
  });

  it("reports a failing command as failed with its exit code, output and artifacts", async () => {
    const job = await runJob(uniqueSandbox("fail"), {
      type: "run",
      command: "echo 'test report' > report.xml; echo boom >&2; exit 3",
      artifacts: ["report.xml"],
    });
    expect(job.status).toBe("failed");
    expect(job.exitCode).toBe(3);
    expect(job.error).toEqual({ code: "NONZERO_EXIT", message: "Command exited with code 3" });
    expect(job.artifacts.map((a) => a.path)).toEqual(["report.xml"]);
    expect(await (await api(`/v1/jobs/${job.id}/stderr`)).text()).toBe("boom\n");
  });

  it("times a command out, kills it and says so", async () => {
    const job = await runJob(uniqueSandbox("slow"), { type: "run", command: "echo started; sleep 30", timeoutMs: 500 });
    expect(job.status).toBe("timed_out");
    expect(job.exitCode).toBeNull();
    expect(job.error?.code).toBe("TIMEOUT");
    expect(job.durationMs).toBeLessThan(10_000);
  });

  it("reports artifacts it skipped and why", async () => {
    const job = await runJob(uniqueSandbox("skip"), {
      type: "run",
      command: "echo a > a.txt",
      artifacts: ["a.txt", "missing/**"],
    });
    expect(job.artifacts.map((a) => a.path)).toEqual(["a.txt"]);
    expect(job.skippedArtifacts).toEqual([{ path: "missing/**", reason: "pattern matched no files" }]);
  });

  it("skips a symlink or a FIFO a pattern matches, saying it is no regular file", async () => {
    const job = await runJob(uniqueSandbox("not-regular"), {
      type: "run",
      command: "mkdir dist && echo v1 > dist/v1.js && ln -s v1.js dist/latest.js && mkfifo dist/pipe",
      artifacts: ["dist/**"],
    });
    expect(job.artifacts.map((a) => a.path)).toEqual(["dist/v1.js"]);
    expect(job.skippedArtifacts.map((skipped) => skipped.path)).toEqual(["dist/latest.js", "dist/pipe"]);
    expect(job.skippedArtifacts[0]?.reason).toBe("a symlink, not a regular file: artifacts are regular files (name the file it points to)");
    expect(job.skippedArtifacts[1]?.reason).toContain("not a regular file");
  });

  it("collects a whole directory named plainly, minus what a !pattern excludes", async () => {
    const job = await runJob(uniqueSandbox("dirs"), {
      type: "run",
      command: "mkdir -p out/sub node_modules/x && touch out/a.js out/a.js.map out/sub/b.js node_modules/x/index.js",
      artifacts: ["out", "!**/*.map"],
    });
    expect(job.artifacts.map((artifact) => artifact.path)).toEqual(["out/a.js", "out/sub/b.js"]);
    expect(job.skippedArtifacts).toEqual([]);
  });

  it("caps the number of artifacts per job and reports every file left out", { timeout: 120_000 }, async () => {
    // ARTIFACT_MAX_FILES is 10,000 in wrangler.jsonc.
    const job = await runJob(uniqueSandbox("many"), {
      type: "run",
      command: "mkdir -p many && for i in $(seq -w 1 10205); do : > many/$i.txt; done",
      artifacts: ["many/*.txt"],
      timeoutMs: 60_000,
    });
    expect(job.status).toBe("succeeded");
    expect(job.artifactIndex).toMatchObject({ files: 10_000, bytes: 0 });
    // The record lists the first 200; GET /v1/jobs/{id}/artifacts has them all.
    expect(job.artifacts).toHaveLength(200);
    // 205 left out: the record names 199 and counts the rest.
    expect(job.skippedArtifacts).toHaveLength(200);
    expect(job.skippedArtifacts[0]).toEqual({ path: "many/10001.txt", reason: "artifact count limit reached (10000 files per job)" });
    expect(job.skippedArtifacts[199]).toEqual({ path: "(6 more)", reason: "6 more files were left out; the record lists the first 199" });
  });

  it("keeps the head and the tail of output over the cap, and says how much was dropped", async () => {
    // The tests keep 64 KiB of each stream (OUTPUT_MAX_BYTES).
    const job = await runJob(uniqueSandbox("big-out"), {
      type: "run",
      command: "echo first-line; head -c 100000 /dev/zero | tr '\\0' 'y'; echo; echo last-line",
    });
    const dropped = 11 + 100_000 + 1 + 10 - 65536;
    expect(job.stdout).toMatchObject({ truncated: true, droppedBytes: dropped });
    const text = await (await api(`/v1/jobs/${job.id}/stdout`)).text();
    expect(text.startsWith("first-line\nyyy")).toBe(true);
    expect(text.endsWith("yyy\nlast-line\n")).toBe(true);
    expect(text).toContain(`[... ${dropped} bytes of output dropped here ...]`);
    expect(job.stdout?.size).toBe(new TextEncoder().encode(text).byteLength);
  });

  it("runs a sandbox's jobs in submission order", async () => {
    const sandbox = uniqueSandbox("order");
    const submitted = [];
    for (let i = 1; i <= 6; i++) submitted.push(await submit(sandbox, { type: "run", command: `echo ${i} >> order.txt` }));
    for (const job of submitted) expect((await getJob(job.id, 20)).status).toBe("succeeded");
    const read = await runJob(sandbox, { type: "run", command: "cat order.txt" });
    expect(await (await api(`/v1/jobs/${read.id}/stdout`)).text()).toBe("1\n2\n3\n4\n5\n6\n");
  });

  it("says why a queued job waits: the earlier jobs of its sandbox, the first one running", async () => {
    const sandbox = uniqueSandbox("waiting");
    const first = await submit(sandbox, { type: "run", command: "sleep 4" });
    const second = await submit(sandbox, { type: "run", command: "true" });
    const third = await submit(sandbox, { type: "run", command: "true" });
    await expect.poll(async () => (await getJob(first.id)).status, { timeout: 20_000 }).toBe("running");
    const waiting = await getJob(third.id);
    expect(waiting.status).toBe("queued");
    expect(waiting.waitingReason).toBe(
      `Behind 2 earlier jobs of sandbox ${sandbox} (${first.id} is running): a sandbox runs its jobs one at a time, in the order they came`,
    );
    // The sandbox's list says the same; a job that runs, or has run, waits for nothing.
    const listed = JobPageView.parse(await (await api(`/v1/sandboxes/${sandbox}/jobs`)).json());
    expect(listed.jobs.find((job) => job.id === second.id)?.waitingReason).toContain("Behind 1 earlier job of sandbox");
    expect(listed.jobs.find((job) => job.id === first.id)?.waitingReason).toBeNull();
    expect((await getJob(third.id, 20)).waitingReason).toBeNull();
  });

  it("long-polls: ?wait returns as soon as the job finishes", async () => {
    const job = await submit(uniqueSandbox("wait"), { type: "run", command: "sleep 1; echo done" });
    const askedAt = Date.now();
    const finished = await getJob(job.id, 20);
    const answeredAt = Date.now();
    expect(finished.status).toBe("succeeded");
    // Not before the job ended (it sleeps a second), and woken by its end: long before the wait's
    // 20 s were up (a bound on the machine's speed would flake under load).
    expect(answeredAt - askedAt).toBeGreaterThanOrEqual(900);
    expect(answeredAt - Date.parse(finished.finishedAt ?? "")).toBeLessThan(10_000);
  });

  it("round-trips a base64-written binary through a run job", async () => {
    const sandbox = uniqueSandbox("copy");
    const write = await runJob(sandbox, {
      type: "file",
      op: "write",
      path: "/workspace/in.bin",
      content: toBase64(ALL_BYTES),
      encoding: "base64",
    });
    expect(write.status).toBe("succeeded");
    const copy = await runJob(sandbox, { type: "run", command: "mkdir -p out && cp in.bin out/copy.bin", artifacts: ["out/*.bin"] });
    const artifact = await api(new URL(copy.artifacts[0]?.url ?? "").pathname);
    expect(new Uint8Array(await artifact.arrayBuffer())).toEqual(ALL_BYTES);
  });
});
