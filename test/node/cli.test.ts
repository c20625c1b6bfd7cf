/**
 * The `artifact-sandbox` CLI as CI runs it: a subprocess against a real `npm run dev` stack (one
 * for the whole file), its output read from its pipes (not a terminal, as in CI), and what it
 * claims checked through the typed client.
 */
import { createHash } from "node:crypto";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ArtifactSandboxClient } from "../../client";
import { BatchView, JobView, MAX_REQUEST_BODY_BYTES } from "../../schemas/job";
import { type DevProcess, startDevProcess } from "../../scripts/devProcess";
import { ANSI_ESCAPE, finished, runCli, startCli as startCliAt } from "./cliProcess";
import { freePort, tempStateDir } from "./devStack";

let stack: DevProcess | undefined;
let stateDir: string | undefined;
let workDir = "";
let client: ArtifactSandboxClient;

const startCli = (args: string[], env: Record<string, string> = {}) => startCliAt(stack?.apiUrl ?? "", args, env);

const cli = (args: string[], env?: Record<string, string>) => finished(startCli(args, env));

const sha256 = async (path: string) =>
  createHash("sha256")
    .update(await readFile(path))
    .digest("hex");

beforeAll(async () => {
  stateDir = await tempStateDir("cli-");
  workDir = await mkdtemp(join(tmpdir(), "cli-work-"));
  stack = await startDevProcess({
    apiPort: await freePort(),
    hostPort: await freePort(),
    stateDir,
    env: { ARTIFACT_SANDBOX_LOG_LEVEL: "warn" },
  });
  client = new ArtifactSandboxClient({ baseUrl: stack.apiUrl });
}, 120_000);

afterAll(async () => {
  await stack?.kill();
  if (stateDir) await rm(stateDir, { recursive: true, force: true });
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

describe("artifact-sandbox run", () => {
  it("exits with the command's own code: 0, the command's non-zero code (up to 255), 124 on timeout", { timeout: 60_000 }, async () => {
    const [ok, three, high, timedOut] = await Promise.all([
      cli(["run", "exit-ok", "--", "echo fine"]),
      cli(["run", "exit-three", "--", "echo failing >&2; exit 3"]),
      cli(["run", "exit-high", "--", "exit 200"]),
      cli(["run", "exit-timeout", "--timeout", "1000", "--", "sleep 20"]),
    ]);
    expect(high.code).toBe(200);
    expect(ok).toMatchObject({ code: 0, stdout: "fine\n" });
    expect(three.code).toBe(3);
    expect(three.stderr).toContain("failing\n");
    expect(three.stderr).toContain("NONZERO_EXIT");
    expect(timedOut.code).toBe(124);
    expect(timedOut.stderr).toContain("TIMEOUT");
  });

  it("`logs <job>` prints the stored output byte for byte: NUL, invalid UTF-8, no added newline", { timeout: 60_000 }, async () => {
    const job = await client.submit("logs-bytes", { type: "run", command: "printf 'a\\0b\\377'; printf 'e\\376' >&2" });
    await client.waitForJob(job.id);
    const child = startCli(["logs", job.id]);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout?.on("data", (chunk: Buffer) => out.push(chunk));
    child.stderr?.on("data", (chunk: Buffer) => err.push(chunk));
    expect((await finished(child)).code).toBe(0);
    expect([...Buffer.concat(out)]).toEqual([0x61, 0, 0x62, 0xff]);
    expect([...Buffer.concat(err)]).toEqual([0x65, 0xfe]);
  });

  it("prints the command's output while the job is still running", { timeout: 60_000 }, async () => {
    const child = startCli(["run", "live", "--", "echo first; sleep 3; echo second"]);
    const result = finished(child);
    await new Promise<void>((resolve, reject) => {
      let seen = "";
      child.stdout?.on("data", (chunk: Buffer) => {
        seen += chunk.toString();
        if (seen.includes("first")) resolve();
      });
      child.once("close", () => reject(new Error(`the CLI ended before printing "first": ${seen}`)));
    });
    // "first" has arrived: the service must still be running the job, and "second" not printed yet.
    const [job] = (await client.listJobs("live", { limit: 1 })).jobs;
    expect(job?.status).toBe("running");
    const { code, stdout } = await result;
    expect(code).toBe(0);
    expect(stdout).toBe("first\nsecond\n");
  });

  it("saves the artifacts byte for byte at their relative paths, and --json prints the record", { timeout: 60_000 }, async () => {
    const out = join(workDir, "run-out");
    const command = "mkdir -p out/nested && head -c 300000 /dev/urandom > out/random.bin && printf 'x' > out/nested/x.txt";
    const { code, stdout, stderr } = await cli(["run", "artifacts", "--artifacts", "out/**", "--out", out, "--json", "--", command]);
    expect(stderr).not.toMatch(ANSI_ESCAPE);
    expect(code).toBe(0);
    const job = JobView.parse(JSON.parse(stdout));
    expect(job.artifacts.map((artifact) => artifact.path).sort()).toEqual(["out/nested/x.txt", "out/random.bin"]);
    for (const artifact of job.artifacts) expect(await sha256(join(out, artifact.path))).toBe(artifact.sha256);

    // `download` with a glob takes only what matches, from the same record.
    const only = join(workDir, "download-out");
    const downloaded = await cli(["download", job.id, "out/nested/**", "--out", only]);
    expect(downloaded.code).toBe(0);
    expect(await readFile(join(only, "out/nested/x.txt"), "utf8")).toBe("x");
    await expect(readFile(join(only, "out/random.bin"))).rejects.toThrow();

    const status = await cli(["status", job.id, "--json"]);
    expect(JobView.parse(JSON.parse(status.stdout)).status).toBe("succeeded");
    expect(status.code).toBe(0);
  });

  it("`status <job>` exits 3 while the job runs, then 1 once it has failed or timed out", { timeout: 60_000 }, async () => {
    const slow = await client.submit("status-codes", { type: "run", command: "sleep 3; exit 4" });
    const timing = await client.submit("status-timeout", { type: "run", command: "sleep 20", timeoutMs: 1000 });
    const running = await cli(["status", slow.id]);
    expect(running.code).toBe(3);
    expect(running.stdout).toContain(slow.id);
    expect((await client.waitForJob(slow.id)).status).toBe("failed");
    expect((await client.waitForJob(timing.id)).status).toBe("timed_out");
    const failed = await cli(["status", slow.id]);
    expect(failed.code).toBe(1);
    expect(failed.stdout).toContain("failed");
    const timedOut = await cli(["status", timing.id]);
    expect(timedOut.code).toBe(1);
    expect(timedOut.stdout).toContain("timed_out");
  });

  it("--stdin <file> gives the command the file's bytes as its stdin", { timeout: 60_000 }, async () => {
    const input = 'naïve café ✓ 𝄞\n"quoted" back\\slash\ttab\0nul\nno newline at the end';
    const file = join(workDir, "stdin.txt");
    await writeFile(file, input);
    const { code, stdout, stderr } = await cli(["run", "stdin-file", "--stdin", file, "--", "cat > in && wc -c < in && cat in"]);
    expect(code, stderr).toBe(0);
    expect(stdout).toBe(`${Buffer.byteLength(input)}\n${input}`);
  });

  it("--stdin - gives the command what the CLI's own stdin holds, read to its end", { timeout: 60_000 }, async () => {
    // A byte order mark first (kept, as any other bytes), and more than one pipe's worth and one queue message's.
    const input = `\u{feff}${Array.from({ length: 4000 }, (_, line) => `line ${line}: ünïcödé ✓\n`).join("")}`;
    const { code, stdout, stderr } = await runCli(
      stack?.apiUrl ?? "",
      ["run", "stdin-pipe", "--stdin", "-", "--", "cat > in && wc -c < in && sha256sum < in"],
      input,
    );
    expect(code, stderr).toBe(0);
    const bytes = Buffer.from(input);
    expect(bytes.byteLength).toBeGreaterThan(100_000);
    expect(stdout).toBe(`${bytes.byteLength}\n${createHash("sha256").update(bytes).digest("hex")}  -\n`);
  });

  it("--stdin with a file that does not exist exits 2 naming it, and submits nothing", { timeout: 60_000 }, async () => {
    const missing = join(workDir, "no-such-input.txt");
    const { code, stdout, stderr } = await cli(["run", "stdin-missing", "--stdin", missing, "--", "cat"]);
    expect(code).toBe(2);
    expect(stdout).toBe("");
    expect(stderr).toBe(`artifact-sandbox: Cannot read --stdin file ${missing}: ENOENT: no such file or directory, open '${missing}'\n`);
    expect((await client.listJobs("stdin-missing")).jobs).toEqual([]);
  });

  it("--stdin refuses, with exit 2 and before submitting, what the API could not take as it is", { timeout: 60_000 }, async () => {
    const notText = join(workDir, "not-utf8.bin");
    const tooLarge = join(workDir, "too-large.txt");
    // Half the limit in bytes, but each newline takes 2 in the request's JSON.
    const tooLargeEscaped = join(workDir, "newlines.txt");
    await writeFile(notText, Buffer.from([0x61, 0xff, 0x62]));
    await writeFile(tooLarge, Buffer.alloc(MAX_REQUEST_BODY_BYTES + 1, "a"));
    await writeFile(tooLargeEscaped, Buffer.alloc(MAX_REQUEST_BODY_BYTES / 2 + 1, "\n"));
    const refused = (file: string) => cli(["run", "stdin-refused", "--stdin", file, "--", "cat"]);
    const [binary, large, escaped] = await Promise.all([refused(notText), refused(tooLarge), refused(tooLargeEscaped)]);
    expect(binary.code).toBe(2);
    expect(binary.stderr).toContain(`--stdin file ${notText} is not UTF-8 text`);
    expect(large.code).toBe(2);
    expect(large.stderr).toContain(`--stdin file ${tooLarge} is over ${MAX_REQUEST_BODY_BYTES} bytes`);
    expect(escaped.code).toBe(2);
    expect(escaped.stderr).toContain(`over the ${MAX_REQUEST_BODY_BYTES} the API takes`);
    expect((await client.listJobs("stdin-refused")).jobs).toEqual([]);
  });
});

describe("artifact-sandbox pipeline run", () => {
  it("exits 2 for a pipeline file the service refuses (a cycle), saying why", async () => {
    const file = join(workDir, "cycle.yaml");
    await writeFile(
      file,
      [
        "jobs:",
        "  - { name: a, sandbox: pipe-cycle, needs: [b], command: 'true' }",
        "  - { name: b, sandbox: pipe-cycle, needs: [a], command: 'true' }",
        "",
      ].join("\n"),
    );
    const { code, stderr } = await cli(["pipeline", "run", file]);
    expect(code).toBe(2);
    expect(stderr).toContain("cycle");
  });

  it("fails when a step fails, names it in the summary with its output, skips what needs it, in plain lines", {
    timeout: 60_000,
  }, async () => {
    const file = join(workDir, "pipeline.yaml");
    await writeFile(
      file,
      [
        "jobs:",
        "  - name: build",
        "    sandbox: pipe-app",
        "    command: mkdir -p dist && echo built > dist/app.txt",
        "    artifacts: [dist/**]",
        "  - name: unit-tests",
        "    sandbox: pipe-app",
        "    needs: [build]",
        "    command: echo 'expected 1 to be 2' >&2; exit 4",
        "  - name: publish",
        "    sandbox: pipe-pub",
        "    needs: [unit-tests]",
        "    command: echo never",
        "",
      ].join("\n"),
    );
    const out = join(workDir, "pipeline-out");
    const { code, stdout } = await cli(["pipeline", "run", file, "--out", out]);
    expect(code).toBe(1);
    expect(stdout).not.toMatch(ANSI_ESCAPE);
    // One line per change, as a CI log wants it.
    expect(stdout).toContain("build: succeeded");
    expect(stdout).toContain("unit-tests: failed");
    expect(stdout).toContain("publish: skipped");
    const summary = stdout.slice(stdout.indexOf("Pipeline failed"));
    expect(summary).toMatch(/FAILED \S+ {2}unit-tests \(pipe-app\) {2}failed {2}exit 4/);
    expect(summary).toContain("expected 1 to be 2");
    expect(await readFile(join(out, "build/dist/app.txt"), "utf8")).toBe("built\n");

    // --json: the batch record, parsed with the API's schema.
    const json = await cli(["pipeline", "run", file, "--json"]);
    expect(json.code).toBe(1);
    const batch = BatchView.parse(JSON.parse(json.stdout));
    expect(Object.fromEntries(batch.jobs.map((job) => [job.name, job.status]))).toEqual({
      build: "succeeded",
      "unit-tests": "failed",
      publish: "skipped",
    });
  });
});

describe("the client", () => {
  it("waitForJob rides out a service that refuses connections, then answers 503, for a while", { timeout: 30_000 }, async () => {
    const job = await client.submit("restart", { type: "run", command: "sleep 1" });
    // Only the transport is replaced: the first polls meet a stack that is down, then one coming back up.
    let polls = 0;
    const flaky = new ArtifactSandboxClient({
      baseUrl: stack?.apiUrl ?? "",
      fetch: async (input, init) => {
        polls += 1;
        if (polls <= 2) throw new TypeError("fetch failed", { cause: new Error("connect ECONNREFUSED") });
        if (polls === 3) return new Response("starting", { status: 503 });
        return fetch(input, init);
      },
    });
    const done = await flaky.waitForJob(job.id, { retry: { toleranceMs: 10_000, initialDelayMs: 50, maxDelayMs: 200 } });
    expect(done.status).toBe("succeeded");
    expect(polls).toBeGreaterThan(3);

    const refusing = new ArtifactSandboxClient({
      baseUrl: stack?.apiUrl ?? "",
      fetch: async () => {
        throw new TypeError("fetch failed");
      },
    });
    await expect(refusing.waitForJob(job.id, { retry: { toleranceMs: 300, initialDelayMs: 50, maxDelayMs: 100 } })).rejects.toThrow(
      /Could not reach/,
    );
  });

  it("throws ApiError with the API's status, code and message", async () => {
    await expect(client.getJob("01KB7Z0Q6X2V4X1T2B9S9YQ0QK")).rejects.toMatchObject({ status: 404, code: "JOB_NOT_FOUND" });
  });
});

describe("errors", () => {
  it("exits 125 and says what to set when nothing listens at ARTIFACT_SANDBOX_URL", async () => {
    const { code, stderr } = await cli(["sandboxes", "--json"], { ARTIFACT_SANDBOX_URL: `http://127.0.0.1:${await freePort()}` });
    expect(code).toBe(125);
    expect(stderr).toContain("npm run dev");
    expect(stderr).toContain("ARTIFACT_SANDBOX_URL");
  });

  it("uploads a directory without .git and what --exclude names, keeping an executable script", async () => {
    const tree = join(workDir, "tree");
    await mkdir(join(tree, ".git"), { recursive: true });
    await mkdir(join(tree, "node_modules", "dep"), { recursive: true });
    await writeFile(join(tree, ".git", "config"), "[core]\n");
    await writeFile(join(tree, "node_modules", "dep", "index.js"), "big\n");
    await writeFile(join(tree, "build.sh"), "#!/bin/sh\necho built\n", { mode: 0o755 });
    const upload = await cli(["upload", "up", tree, "--to", "/workspace/src", "--exclude", "node_modules"]);
    expect(upload.code, upload.stderr).toBe(0);
    const listed = await cli(["run", "up", "--", "cd src && ls -A && ./build.sh"]);
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stdout).toBe("build.sh\nbuilt\n");
  });

  it("lists sandboxes as JSON", async () => {
    const { code, stdout } = await cli(["sandboxes", "--json"]);
    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toEqual(expect.arrayContaining([expect.objectContaining({ sandboxId: "artifacts" })]));
  });
});
