/**
 * The local sandbox host through its real HTTP API and real bubblewrap: what a job can and
 * cannot reach.
 */
import { execSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningHost, startHost } from "../../container/local/host";
import { HostExecResult } from "../../schemas/sandboxHost";

const token = randomBytes(16).toString("hex");

/** Host processes whose command line is exactly `commandLine` (seen from outside every sandbox). */
function processesRunning(commandLine: string): string[] {
  return execSync("ps -eo args=")
    .toString()
    .split("\n")
    .filter((line) => line.trim() === commandLine);
}

describe.each(["session", "spawn"] as const)("local sandbox host, one %s per exec", (execMode) => {
  let host: RunningHost;
  let root: string;

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), "host-test-"));
    host = await startHost({
      root,
      token,
      port: 0,
      maxOutputBytes: 1024,
      execMode,
      resourceLimits: { memoryBytes: 256 * 1024 ** 2, maxProcesses: 128 },
    });
  });
  afterAll(async () => {
    await host.close();
    await rm(root, { recursive: true, force: true });
  });

  async function exec(sandboxId: string, command: string, extra: { timeoutMs?: number; network?: boolean } = {}) {
    const response = await fetch(`${host.url}/v1/sandboxes/${sandboxId}/exec`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({ command, cwd: "/workspace", timeoutMs: extra.timeoutMs ?? 10_000, network: extra.network ?? false }),
    });
    expect(response.status).toBe(200);
    const result = HostExecResult.parse(await response.json());
    return {
      ...result,
      stdout: Buffer.from(result.stdoutBase64, "base64").toString(),
      stderr: Buffer.from(result.stderrBase64, "base64").toString(),
    };
  }

  function hostCall(method: string, path: string, body?: string) {
    return fetch(`${host.url}${path}`, { method, headers: { authorization: `Bearer ${token}` }, body });
  }

  describe("isolation", () => {
    it("runs isolation with bubblewrap", () => {
      expect(host.isolation).toBe("bubblewrap");
    });

    it("refuses requests without the bearer token", async () => {
      const response = await fetch(`${host.url}/v1/sandboxes/a/list?path=/workspace`);
      expect(response.status).toBe(401);
      expect(await response.json()).toMatchObject({ error: { code: "UNAUTHORIZED" } });
    });

    it("lets a job write its workspace and nothing else on the host", async () => {
      const result = await exec(
        "writer",
        "echo ok > /workspace/inside.txt; echo x > /usr/evil 2>&1; echo x > /etc/evil 2>&1; echo x > /outside 2>&1; true",
      );
      expect(result.exitCode).toBe(0);
      expect(await readFile(join(root, "writer", "inside.txt"), "utf8")).toBe("ok\n");
      expect(result.stderr + result.stdout).toMatch(/Read-only file system|Permission denied/);
      await expect(readFile("/usr/evil")).rejects.toThrow();
      await expect(readFile("/etc/evil")).rejects.toThrow();
    });

    it("keeps /tmp private to each exec", async () => {
      await exec("tmp-a", "echo secret > /tmp/note");
      const other = await exec("tmp-b", "cat /tmp/note");
      expect(other.exitCode).not.toBe(0);
    });

    it("does not let one sandbox read another sandbox's files", async () => {
      await exec("tenant-a", "echo private > secret.txt");
      const snoop = await exec("tenant-b", `cat /workspace/../tenant-a/secret.txt; ls ${root} 2>&1; find / -name secret.txt 2>/dev/null`);
      expect(snoop.stdout).not.toContain("private");
      expect(snoop.stdout).not.toContain("secret.txt");
      const viaApi = await hostCall("GET", "/v1/sandboxes/tenant-b/files?path=/workspace/../tenant-a/secret.txt");
      expect(viaApi.status).toBe(400);
    });

    it("hides host secrets such as /etc/shadow", async () => {
      const result = await exec("shadow", "cat /etc/shadow | wc -c");
      expect(result.stdout.trim()).toBe("0");
    });

    it("has no network unless the job asks for it", async () => {
      // A listener on the host's loopback: reachable from the host, and from a sandbox only with network.
      const server = createServer((socket) => socket.end("hello from host\n"));
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      try {
        const script = `import socket\ntry:\n    s = socket.create_connection(("127.0.0.1", ${port}), timeout=2)\n    print("CONNECTED", s.recv(100))\nexcept OSError as e:\n    print("BLOCKED", e)\n`;
        await writeFile(join(await ensureWorkspace("net"), "probe.py"), script);
        const isolated = await exec("net", "python3 probe.py");
        expect(isolated.stdout).toContain("BLOCKED");
        const networked = await exec("net", "python3 probe.py", { network: true });
        expect(networked.stdout).toContain("CONNECTED");
      } finally {
        server.close();
      }
    });

    it("kills the whole process tree on timeout, daemons included", async () => {
      const marker = `sleep ${31_000 + Math.floor(Math.random() * 1000)}`;
      const result = await exec("killer", `${marker} & (setsid ${marker} &) ; nohup ${marker} >/dev/null 2>&1 & ${marker}`, {
        timeoutMs: 500,
      });
      expect(result.timedOut).toBe(true);
      expect(result.exitCode).toBeNull();
      expect(processesRunning(marker)).toEqual([]);
    });

    it("ends the command when the client abandons the exec (a cancelled job)", async () => {
      const marker = `sleep ${33_000 + Math.floor(Math.random() * 1000)}`;
      const abandoned = new AbortController();
      const request = fetch(`${host.url}/v1/sandboxes/quitter/exec`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: JSON.stringify({ command: marker, cwd: "/workspace", timeoutMs: 60_000 }),
        signal: abandoned.signal,
      });
      await new Promise((resolve) => setTimeout(resolve, 300));
      abandoned.abort();
      await expect(request).rejects.toThrow();
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(processesRunning(marker)).toEqual([]);
      expect(await exec("quitter", "echo next")).toMatchObject({ exitCode: 0, stdout: "next\n" });
    });

    it("caps stdout and says so", async () => {
      const result = await exec("chatty", "head -c 5000 /dev/zero | tr '\\0' 'x'");
      expect(result.stdout.length).toBe(1024);
      expect(result.stdoutTruncated).toBe(true);
    });

    it("refuses a path that escapes the workspace through a symlink", async () => {
      const workspace = await ensureWorkspace("linker");
      await symlink("/etc", join(workspace, "etc-link"));
      const read = await hostCall("GET", "/v1/sandboxes/linker/files?path=/workspace/etc-link/hostname");
      expect(read.status).toBe(400);
      expect(await read.json()).toMatchObject({ error: { code: "PATH_REFUSED" } });
      const write = await hostCall("PUT", "/v1/sandboxes/linker/files?path=/workspace/etc-link/evil", "x");
      expect(write.status).toBe(400);
      await expect(readFile("/etc/evil")).rejects.toThrow();
      // A job can make the same link itself; the host still refuses to follow it.
      await exec("linker", "ln -s / rootlink");
      const viaJobLink = await hostCall("GET", "/v1/sandboxes/linker/files?path=/workspace/rootlink/etc/passwd");
      expect(viaJobLink.status).toBe(400);
    });

    it("refuses invalid sandbox IDs", async () => {
      const response = await hostCall("GET", "/v1/sandboxes/..%2Fetc/list?path=/workspace");
      expect(response.status).toBe(400);
    });

    it("kills a command that uses more memory than its sandbox may, and carries on", async () => {
      const hog = await exec("hog", "python3 -c 'x = bytearray(600 * 1024 * 1024); print(len(x))'");
      expect(hog.stdout).not.toContain("629145600");
      expect(hog.exitCode).not.toBe(0);
      expect(await exec("hog", "echo alive")).toMatchObject({ exitCode: 0, stdout: "alive\n" });
    });

    it("caps how many processes a sandbox may run", async () => {
      const bomb = await exec("forker", "for i in $(seq 1 300); do sleep 2 & done; wait; echo finished", { timeoutMs: 20_000 });
      expect(bomb.stderr).toMatch(/fork|Resource temporarily unavailable/i);
      expect(await exec("forker", "echo alive")).toMatchObject({ exitCode: 0, stdout: "alive\n" });
    });

    it("ends what a command started in the background when the command ends", async () => {
      const marker = `sleep ${32_000 + Math.floor(Math.random() * 1000)}`;
      const result = await exec("daemon", `(setsid ${marker} > /dev/null 2>&1 &); echo started`);
      expect(result.stdout).toBe("started\n");
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(processesRunning(marker)).toEqual([]);
    });

    it("survives a command that kills every process it can, and runs the next one", async () => {
      // With a session this kills the session's agent too; the host must notice and start afresh.
      await exec("kill-all", "kill -9 -1; sleep 1");
      const next = await exec("kill-all", "echo still here");
      expect(next).toMatchObject({ exitCode: 0, stdout: "still here\n" });
    });
  });

  async function ensureWorkspace(sandboxId: string): Promise<string> {
    await exec(sandboxId, "true");
    return join(root, sandboxId);
  }
});
