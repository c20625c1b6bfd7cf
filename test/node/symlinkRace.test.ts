/**
 * File operations happen inside the sandbox's namespace, so a symlink that a job swaps in
 * between a check and a use can only ever point into the sandbox's own view: while a command
 * keeps flipping a link between a workspace file and host secrets, hundreds of reads and writes
 * through it never return a host secret nor change a host file.
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { type RunningHost, startHost } from "../../container/local/host";

const token = randomBytes(16).toString("hex");
const secret = `host-secret-${randomBytes(8).toString("hex")}`;
// Root-only files on the host: one under /etc (not in the sandbox's view of /etc at all), one
// under /usr (mounted read-only into every sandbox, readable only by the host's root).
const HIDDEN_SECRET = "/etc/artifact-sandbox-race-secret";
const VISIBLE_SECRET = "/usr/local/share/artifact-sandbox-race-secret";

const ReadAnswer = z.object({ content: z.string() });

describe("a job racing symlinks against file operations", () => {
  let host: RunningHost;
  let root: string;

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), "symlink-race-"));
    for (const path of [HIDDEN_SECRET, VISIBLE_SECRET]) await writeFile(path, secret, { mode: 0o600 });
    host = await startHost({ root, token, port: 0 });
  });
  afterAll(async () => {
    await host.close();
    for (const path of [HIDDEN_SECRET, VISIBLE_SECRET]) await rm(path, { force: true });
    await rm(root, { recursive: true, force: true });
  });

  function call(key: string, route: string, body: unknown, signal?: AbortSignal): Promise<Response> {
    return fetch(`${host.url}/v1/containers/${key}/ports/3000/api/${route}`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify(body),
      signal,
    });
  }

  it("never reads a host secret or writes a host file through a link swapped mid-operation", async () => {
    const key = "racer";
    const started = await fetch(`${host.url}/v1/containers/${key}/start`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: "{}",
    });
    expect(started.status).toBe(200);
    await call(key, "write", { path: "/workspace/plain.txt", content: "workspace file", sessionId: "race" });

    // The swapper runs as a streamed command, which keeps running while file calls arrive.
    const swapper = new AbortController();
    const stream = await call(
      key,
      "execute/stream",
      {
        command: `while true; do ln -sfn ${HIDDEN_SECRET} /workspace/link; ln -sfn plain.txt /workspace/link; ln -sfn ${VISIBLE_SECRET} /workspace/link; ln -sfn / /workspace/dir; ln -sfn /workspace /workspace/dir; done`,
        sessionId: "race",
      },
      swapper.signal,
    );
    expect(stream.status).toBe(200);

    const seen = new Set<string>();
    for (let round = 0; round < 150; round++) {
      const [read, throughDir, write] = await Promise.all([
        call(key, "read", { path: "/workspace/link", sessionId: "race" }),
        call(key, "read", { path: `/workspace/dir${HIDDEN_SECRET}`, sessionId: "race" }),
        call(key, "write", { path: "/workspace/link", content: "overwritten", sessionId: "race" }),
      ]);
      for (const answer of [read, throughDir]) {
        const text = await answer.text();
        expect(text).not.toContain(secret);
        if (answer.ok) seen.add(ReadAnswer.parse(JSON.parse(text)).content);
      }
      await write.body?.cancel();
    }
    swapper.abort();
    await fetch(`${host.url}/v1/containers/${key}/ports/3000/api/process/kill-all`, {
      method: "DELETE",
      headers: { authorization: `Bearer ${token}` },
    });

    // The race did happen: reads through the link found the workspace file.
    expect([...seen].some((content) => content === "workspace file" || content === "overwritten")).toBe(true);
    for (const path of [HIDDEN_SECRET, VISIBLE_SECRET]) expect(await readFile(path, "utf8")).toBe(secret);
  }, 60_000);
});
