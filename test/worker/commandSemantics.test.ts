/**
 * How a job's command runs, as the README promises it: `bash -c` in a child process of its own,
 * so `exit`, `$$`, `cd` and `export` touch only that job, and its stdout and stderr are stored
 * byte for byte. Cloudflare's own container server runs what it is given in one long-lived
 * shell, which is exactly what these cases would break; CI runs this file against both it and
 * our local agent (SANDBOX_CONTAINER=reference and agent).
 */
import { describe, expect, it } from "vitest";
import { api, runJob, submit, toBase64, uniqueSandbox, waitForJob } from "./client";

async function stdoutBytes(jobId: string, stream: "stdout" | "stderr" = "stdout"): Promise<Uint8Array> {
  const response = await api(`/v1/jobs/${jobId}/${stream}`);
  if (response.status === 404) return new Uint8Array();
  expect(response.status).toBe(200);
  return new Uint8Array(await response.arrayBuffer());
}

async function stdoutText(jobId: string, stream: "stdout" | "stderr" = "stdout"): Promise<string> {
  return new TextDecoder().decode(await stdoutBytes(jobId, stream));
}

describe("a job's command", () => {
  it("exits with its own code, and the sandbox's next job runs as usual", async () => {
    const sandbox = uniqueSandbox("exit-n");
    const job = await runJob(sandbox, { type: "run", command: "echo x; exit 3" });
    expect(job).toMatchObject({ status: "failed", exitCode: 3, signal: null, error: { code: "NONZERO_EXIT" } });
    expect(job.tries).toHaveLength(1);
    expect(await stdoutText(job.id)).toBe("x\n");
    expect((await runJob(sandbox, { type: "run", command: "echo next" })).status).toBe("succeeded");
  });

  it("reports `kill -SEGV $$` and a child's signal as the command's own", async () => {
    const sandbox = uniqueSandbox("kill-self");
    const self = await runJob(sandbox, { type: "run", command: "kill -SEGV $$" });
    expect(self).toMatchObject({ status: "failed", exitCode: 139, signal: "SIGSEGV", error: { code: "KILLED_BY_SIGNAL" } });
    expect(self.tries).toHaveLength(1);
    const child = await runJob(sandbox, { type: "run", command: "bash -c 'kill -TERM $$'; echo after $?" });
    expect(child.status).toBe("succeeded");
    expect(await stdoutText(child.id)).toBe("after 143\n");
    const next = await runJob(sandbox, { type: "run", command: "echo fine" });
    expect(next.status).toBe("succeeded");
    expect(next.attempts).toBe(1);
  });

  it("leaves nothing running after it, a process it started in a session of its own neither", async () => {
    const sandbox = uniqueSandbox("daemon");
    const ticker = "while :; do echo tick >> /workspace/ticker; sleep 0.1; done";
    const first = await runJob(sandbox, {
      type: "run",
      command: `setsid -f bash -c '${ticker}' < /dev/null > /dev/null 2>&1; sleep 0.5; echo $ARTIFACT_SANDBOX_RUN`,
    });
    expect(first.status).toBe("succeeded");
    // The marker that finds what it left: a run's own id.
    expect(await stdoutText(first.id)).toMatch(/^[0-9a-f-]{36}\n$/);
    const second = await runJob(sandbox, { type: "run", command: "a=$(wc -l < ticker); sleep 1; b=$(wc -l < ticker); echo $a $b" });
    const [before, after] = (await stdoutText(second.id)).trim().split(" ").map(Number);
    expect(before).toBeGreaterThan(0);
    expect(after).toBe(before);
  });

  it("has root's way with its own files whatever their modes, as a container's root does", async () => {
    const sandbox = uniqueSandbox("modes");
    const locked = await runJob(sandbox, {
      type: "run",
      command: "mkdir -p d0 ro/sub && echo hi > d0/f && echo x > ro/sub/x && chmod 000 d0 && chmod -R a-w ro",
      artifacts: ["d0/**"],
    });
    expect(locked.status, JSON.stringify(locked.error)).toBe("succeeded");
    expect(locked.artifacts.map((artifact) => artifact.path)).toEqual(["d0/f"]);
    expect(await (await api(`/v1/jobs/${locked.id}/artifacts/d0/f`)).text()).toBe("hi\n");
    const read = await runJob(sandbox, { type: "run", command: "cat d0/f && rm -rf ro && echo removed" });
    expect(await stdoutText(read.id)).toBe("hi\nremoved\n");
    // A read-only tree (Go's module cache) does not stop the sandbox's deletion.
    await runJob(sandbox, { type: "run", command: "mkdir -p cache/mod && touch cache/mod/f && chmod -R a-w cache" });
    expect((await api(`/v1/sandboxes/${sandbox}`, { method: "DELETE" })).status).toBe(200);
  });

  it("keeps cd and export inside the job", async () => {
    const sandbox = uniqueSandbox("no-leak");
    expect((await runJob(sandbox, { type: "run", command: "cd /tmp; export LEAK=1; myfn() { :; }" })).status).toBe("succeeded");
    const next = await runJob(sandbox, { type: "run", command: 'pwd; echo "$LEAK"; type myfn >/dev/null 2>&1 || echo no-fn' });
    expect(await stdoutText(next.id)).toBe("/workspace\n\nno-fn\n");
  });

  it("stores stdout and stderr byte for byte: NUL, invalid UTF-8, \\r, no added newline", async () => {
    const job = await runJob(uniqueSandbox("bytes"), {
      type: "run",
      command: "printf 'a\\0b\\377'; printf '10%%\\r20%%\\rdone' >&2",
    });
    expect(job.status).toBe("succeeded");
    expect([...(await stdoutBytes(job.id))]).toEqual([0x61, 0x00, 0x62, 0xff]);
    expect(await stdoutText(job.id, "stderr")).toBe("10%\r20%\rdone");
    const plain = await runJob(uniqueSandbox("bytes"), { type: "run", command: "printf abc" });
    expect(await stdoutText(plain.id)).toBe("abc");
  });

  it("stores output too large for one poll's answer byte for byte, every byte value in it", async () => {
    // 48 KiB: within the tests' 64 KiB cap, over what a poll carries inline, so it is streamed.
    const blob = new Uint8Array(48 * 1024).map((_, i) => (i * 2654435761) >>> 24);
    const sandbox = uniqueSandbox("big-bytes");
    const write = await runJob(sandbox, {
      type: "file",
      op: "write",
      path: "/workspace/blob.bin",
      content: toBase64(blob),
      encoding: "base64",
    });
    expect(write.status).toBe("succeeded");
    const job = await runJob(sandbox, { type: "run", command: "cat blob.bin; cat blob.bin >&2" });
    expect(job.status).toBe("succeeded");
    expect(job.stdout).toMatchObject({ size: blob.byteLength, truncated: false });
    expect(await stdoutBytes(job.id)).toEqual(blob);
    expect(await stdoutBytes(job.id, "stderr")).toEqual(blob);
  });

  it("feeds stdin exactly, and a command that reads none is not held up by it", async () => {
    const sandbox = uniqueSandbox("stdin");
    const job = await runJob(sandbox, { type: "run", command: "cat; echo; wc -c < /dev/null", stdin: "line1\nline2" });
    expect(await stdoutText(job.id)).toBe("line1\nline2\n0\n");
    const ignoring = await runJob(sandbox, { type: "run", command: "echo ignored", stdin: "x".repeat(100_000) });
    expect(ignoring.status).toBe("succeeded");
    expect(ignoring.exitCode).toBe(0);
  });

  it("keeps the whole tail of fast output, and the head and tail of one huge line", async () => {
    const sandbox = uniqueSandbox("fast-output");
    const seq = await runJob(sandbox, { type: "run", command: "seq 1 200000" });
    expect(seq.status).toBe("succeeded");
    const text = await stdoutText(seq.id);
    expect(text.startsWith("1\n2\n3\n")).toBe(true);
    expect(text.endsWith("199999\n200000\n")).toBe(true);
    // Every byte is accounted for: `seq 1 200000 | wc -c` is 1,288,895.
    const marker = /\n\[\.\.\. (\d+) bytes of output dropped here \.\.\.\]\n/.exec(text);
    expect(Number(marker?.[1])).toBe(seq.stdout?.droppedBytes);
    expect((seq.stdout?.size ?? 0) - (marker?.[0].length ?? 0) + (seq.stdout?.droppedBytes ?? 0)).toBe(1_288_895);

    const line = await runJob(sandbox, { type: "run", command: "head -c 6000000 /dev/zero | tr '\\0' x; echo; echo tail-marker" });
    const kept = await stdoutText(line.id);
    expect(kept.startsWith("xxxx")).toBe(true);
    expect(kept.endsWith("xxxx\ntail-marker\n")).toBe(true);
    expect(line.stdout?.truncated).toBe(true);
  });

  it("ends a cancelled command without a word from the shell in its stderr", async () => {
    const sandbox = uniqueSandbox("cancel-quiet");
    const job = await submit(sandbox, { type: "run", command: "echo started; echo oops >&2; sleep 30", timeoutMs: 60_000 });
    // Running, and its first line written (a queued job's output is a 409 until it starts).
    for (;;) {
      const output = await api(`/v1/jobs/${job.id}/stdout`);
      if (output.status === 200 && (await output.text()) === "started\n") break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect((await api(`/v1/jobs/${job.id}/cancel`, { method: "POST" })).status).toBe(202);
    const ended = await waitForJob(job.id);
    expect(ended.error?.code).toBe("CANCELLED");
    expect(await stdoutText(job.id, "stderr")).toBe("oops\n");
  });

  it("copies a 40 MiB input into another sandbox in pieces, byte for byte", async () => {
    const big = await runJob(uniqueSandbox("big-input"), {
      type: "run",
      command: "head -c 41943040 /dev/urandom > big.bin",
      artifacts: ["big.bin"],
      timeoutMs: 120_000,
    });
    expect(big.status).toBe("succeeded");
    const use = await runJob(uniqueSandbox("big-input-use"), {
      type: "run",
      command: "sha256sum big.bin | cut -d' ' -f1",
      inputs: [{ from: big.id }],
      timeoutMs: 120_000,
    });
    expect(use.status, JSON.stringify(use.error)).toBe("succeeded");
    expect((await stdoutText(use.id)).trim()).toBe(big.artifacts[0]?.sha256);
  }, 120_000);
});
