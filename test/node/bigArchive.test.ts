/**
 * A 200 MiB artifact downloaded as the job's .tar.gz through the whole local stack, unpacked by
 * GNU tar as it arrives: the file comes out whole (the record's SHA-256) beside an executable
 * script, and the stack's resident memory, sampled every 250 ms during the download, grows by
 * well under the file's size (the archive is built as it streams, never held whole).
 */
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { once } from "node:events";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { type DevProcess, startDevProcess } from "../../scripts/devProcess";
import { awaitJob, freePort, stackRssKiB, submitJob, tempStateDir } from "./devStack";

const SIZE = 200 * 1024 * 1024;
const SAMPLE_EVERY_MS = 250;
const SANDBOX = "big-archive";

/** Streams the archive at `url` into `tar -xz` in `dir`. */
async function untar(url: string, dir: string): Promise<void> {
  const response = await fetch(url);
  if (!response.ok || !response.body) throw new Error(`GET ${url}: HTTP ${response.status}`);
  const tar = spawn("tar", ["-xzf", "-", "-C", dir], { stdio: ["pipe", "ignore", "inherit"] });
  const exited = new Promise<number | null>((resolve) => tar.on("close", resolve));
  const reader = response.body.getReader();
  for (let next = await reader.read(); !next.done; next = await reader.read()) {
    if (!tar.stdin.write(next.value)) await once(tar.stdin, "drain");
  }
  tar.stdin.end();
  expect(await exited).toBe(0);
}

describe("a 200 MiB artifact as a .tar.gz through the local stack", () => {
  let stack: DevProcess | undefined;
  const dirs: string[] = [];

  afterAll(async () => {
    await stack?.kill();
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });

  it("unpacks with GNU tar, whole and with its modes, while the stack's memory stays flat", { timeout: 300_000 }, async () => {
    const stateDir = await tempStateDir("big-archive-");
    const outDir = await mkdtemp(join(tmpdir(), "big-archive-out-"));
    dirs.push(stateDir, outDir);
    stack = await startDevProcess({ apiPort: await freePort(), hostPort: await freePort(), stateDir });
    const { apiUrl } = stack;
    const rootPid = stack.child.pid;
    if (rootPid === undefined) throw new Error("the dev process has no pid");

    // A small archive first: the container is started and every code path loaded, so the
    // baseline below holds what a serving stack holds, not a cold start.
    const warmUp = await awaitJob(
      apiUrl,
      (await submitJob(apiUrl, SANDBOX, { type: "run", command: "head -c 1048576 /dev/urandom > warm.bin", artifacts: ["warm.bin"] })).id,
      120_000,
    );
    await untar(warmUp.archiveUrl, outDir);
    const job = await awaitJob(
      apiUrl,
      (
        await submitJob(apiUrl, SANDBOX, {
          type: "run",
          command: `head -c ${SIZE} /dev/urandom > big.bin && printf '#!/bin/sh\\necho hi\\n' > run.sh && chmod 755 run.sh`,
          artifacts: ["big.bin", "run.sh"],
          timeoutMs: 240_000,
        })
      ).id,
      270_000,
    );
    expect({ status: job.status, skipped: job.skippedArtifacts }).toEqual({ status: "succeeded", skipped: [] });
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    const baselineKiB = stackRssKiB(rootPid);
    let peakKiB = baselineKiB;
    const sampler = setInterval(() => {
      peakKiB = Math.max(peakKiB, stackRssKiB(rootPid));
    }, SAMPLE_EVERY_MS);
    try {
      await untar(job.archiveUrl, outDir);
    } finally {
      clearInterval(sampler);
    }
    const growthBytes = (peakKiB - baselineKiB) * 1024;
    console.log(`200 MiB archive download: stack RSS growth ${(growthBytes / 1e6).toFixed(1)} MB`);

    const big = job.artifacts.find((artifact) => artifact.path === "big.bin");
    const extracted = await readFile(join(outDir, "big.bin"));
    expect(extracted.byteLength).toBe(SIZE);
    expect(createHash("sha256").update(extracted).digest("hex")).toBe(big?.sha256);
    expect((await stat(join(outDir, "run.sh"))).mode & 0o777).toBe(0o755);
    // Measured: about 40 MB on the first large download, nothing on the next; the file is 210 MB.
    expect(growthBytes).toBeLessThan(SIZE / 2);
  });
});
