/** File jobs (write, read, delete) end to end, and inputs bigger than a queue message. */
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { r2Keys } from "../../storage/layout";
import { api, runJob, sha256Hex, toBase64, uniqueSandbox } from "./client";
import { TEST_TENANT } from "./support/jobs";

describe("file jobs", () => {
  it("writes, reads back as an artifact, and deletes a file", async () => {
    const sandbox = uniqueSandbox("files");
    const write = await runJob(sandbox, { type: "file", op: "write", path: "/workspace/notes/hello.txt", content: "héllo\n" });
    expect(write.status).toBe("succeeded");
    expect(write.request).toMatchObject({ op: "write", path: "/workspace/notes/hello.txt", contentBytes: 7 });

    const read = await runJob(sandbox, { type: "file", op: "read", path: "/workspace/notes/hello.txt" });
    expect(read.status).toBe("succeeded");
    expect(read.artifacts).toEqual([
      expect.objectContaining({
        path: "notes/hello.txt",
        size: 7,
        contentType: expect.stringContaining("text/plain"),
        sha256: await sha256Hex(new TextEncoder().encode("héllo\n")),
      }),
    ]);
    const download = await api(new URL(read.artifacts[0]?.url ?? "").pathname);
    expect(await download.text()).toBe("héllo\n");

    const remove = await runJob(sandbox, { type: "file", op: "delete", path: "/workspace/notes/hello.txt" });
    expect(remove.status).toBe("succeeded");
    const again = await runJob(sandbox, { type: "file", op: "read", path: "/workspace/notes/hello.txt" });
    expect(again.status).toBe("failed");
    expect(again.error).toEqual({ code: "FILE_NOT_FOUND", message: "File not found: /workspace/notes/hello.txt" });
  });

  it("reads a file named as text whose bytes are not UTF-8 back byte for byte", async () => {
    const sandbox = uniqueSandbox("latin1");
    // Latin-1 text, a NUL and an invalid byte, in a file whose name says text.
    const bytes = new Uint8Array([0x63, 0x61, 0x66, 0xe9, 0x0a, 0x00, 0xff, 0x0a]);
    expect((await runJob(sandbox, { type: "run", command: "printf 'caf\\351\\n\\000\\377\\n' > latin1.txt" })).status).toBe("succeeded");
    const read = await runJob(sandbox, { type: "file", op: "read", path: "/workspace/latin1.txt" });
    expect(read.artifacts[0]).toMatchObject({ size: bytes.length, sha256: await sha256Hex(bytes) });
    const download = await api(new URL(read.artifacts[0]?.url ?? "").pathname);
    expect(new Uint8Array(await download.arrayBuffer())).toEqual(bytes);
  });

  it("fails a delete of a missing file with FILE_NOT_FOUND", async () => {
    const job = await runJob(uniqueSandbox("del"), { type: "file", op: "delete", path: "/workspace/nope.txt" });
    expect(job.status).toBe("failed");
    expect(job.error?.code).toBe("FILE_NOT_FOUND");
  });

  it("fails a read of a directory with IS_DIRECTORY", async () => {
    const sandbox = uniqueSandbox("dir");
    await runJob(sandbox, { type: "run", command: "mkdir -p somedir" });
    const job = await runJob(sandbox, { type: "file", op: "read", path: "/workspace/somedir" });
    expect(job.error?.code).toBe("IS_DIRECTORY");
  });

  it("refuses a read of a symbolic link or a FIFO at once, as artifact collection skips them", async () => {
    const sandbox = uniqueSandbox("read-links");
    const made = await runJob(sandbox, {
      type: "run",
      command: "echo x > real.txt && mkdir d && ln -s real.txt to-file && ln -s d to-dir && mkfifo fifo",
    });
    expect(made.status).toBe("succeeded");
    for (const [name, what] of [
      ["to-file", "a symbolic link"],
      ["to-dir", "a symbolic link"],
      ["fifo", "not a regular file"],
    ] as const) {
      const job = await runJob(sandbox, { type: "file", op: "read", path: `/workspace/${name}` });
      expect(job).toMatchObject({ status: "failed", attempts: 1 });
      expect(job.error?.code).toBe("PATH_REFUSED");
      expect(job.error?.message).toContain(`/workspace/${name} is ${what}`);
    }
  });

  it("takes a 2 MiB binary file through the pipeline although queue messages are capped at 128 KB", async () => {
    const bytes = new Uint8Array(2 * 1024 * 1024);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7919) % 251;
    const sandbox = uniqueSandbox("large");
    const write = await runJob(sandbox, {
      type: "file",
      op: "write",
      path: "/workspace/big.bin",
      content: toBase64(bytes),
      encoding: "base64",
    });
    expect(write.status).toBe("succeeded");
    // Too large for its queue message, the request waited in R2, and is not kept once the job
    // ended (as soon as R2's one write per second to its key allows).
    const stored = r2Keys.request(TEST_TENANT, write.id);
    for (let i = 0; i < 50 && (await env.JOB_OUTPUT.head(stored)); i++) await new Promise((resolve) => setTimeout(resolve, 100));
    expect(await env.JOB_OUTPUT.head(stored)).toBeNull();
    const read = await runJob(sandbox, { type: "file", op: "read", path: "/workspace/big.bin" });
    expect(read.artifacts[0]).toMatchObject({ size: bytes.length, sha256: await sha256Hex(bytes) });
    const download = await api(new URL(read.artifacts[0]?.url ?? "").pathname);
    expect(new Uint8Array(await download.arrayBuffer())).toEqual(bytes);
  });
});
