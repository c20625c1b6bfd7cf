/**
 * Source upload: a .tar.gz PUT to a sandbox is unpacked into it by a job, modes and in-tree
 * symlinks kept, hostile entries refused and listed. File writes take a mode too.
 */
import { packTar, type TarEntry } from "modern-tar";
import { describe, expect, it } from "vitest";
import { JobView } from "../../schemas/job";
import { api, expectError, postJson, runJob, uniqueSandbox, waitForJob } from "./client";

async function gzip(bytes: Uint8Array): Promise<Uint8Array> {
  const compressed = new Response(new Blob([bytes]).stream().pipeThrough(new CompressionStream("gzip")));
  return new Uint8Array(await compressed.arrayBuffer());
}

async function upload(sandboxId: string, path: string, entries: TarEntry[]): Promise<JobView> {
  const body = await gzip(await packTar(entries));
  const response = await api(`/v1/sandboxes/${sandboxId}/archive?path=${path}`, {
    method: "PUT",
    body,
    headers: { "content-type": "application/gzip" },
  });
  expect(response.status, await response.clone().text()).toBe(202);
  return JobView.parse(await response.json());
}

async function stdoutOf(sandboxId: string, command: string): Promise<string> {
  const job = await runJob(sandboxId, { type: "run", command });
  expect(job.status, command).toBe("succeeded");
  return (await api(`/v1/jobs/${job.id}/stdout`)).text();
}

describe("source upload", () => {
  it("unpacks a tree with an executable script and a symlink, and refuses entries that would land outside", async () => {
    const sandboxId = uniqueSandbox("upload");
    const job = await upload(sandboxId, "/workspace/src", [
      { header: { name: "build.sh", size: 24, mode: 0o755, type: "file" }, body: "#!/bin/sh\necho built ok\n" },
      { header: { name: "lib/", size: 0, type: "directory" } },
      { header: { name: "lib/data.txt", size: 5, type: "file" }, body: "data\n" },
      { header: { name: "latest", size: 0, type: "symlink", linkname: "lib/data.txt" } },
      { header: { name: "../escape.txt", size: 4, type: "file" }, body: "bad\n" },
      { header: { name: "/abs.txt", size: 4, type: "file" }, body: "bad\n" },
      { header: { name: "passwd", size: 0, type: "symlink", linkname: "/etc/passwd" } },
      { header: { name: "lib/up", size: 0, type: "symlink", linkname: "../../.." } },
    ]);
    const done = await waitForJob(job.id);
    expect(done.status, JSON.stringify(done.error)).toBe("succeeded");
    expect(done.extracted?.written.sort()).toEqual(["build.sh", "latest", "lib/", "lib/data.txt"]);
    expect(done.extracted?.refused.map((entry) => entry.path).sort()).toEqual(["../escape.txt", "/abs.txt", "lib/up", "passwd"]);
    expect(done.extracted?.entries).toBe(8);

    expect(await stdoutOf(sandboxId, "cd src && ./build.sh && cat latest && readlink latest")).toBe("built ok\ndata\nlib/data.txt\n");
    expect(await stdoutOf(sandboxId, "ls -A /workspace; ls -A /workspace/src | sort | tr '\\n' ' '")).toBe("src\nbuild.sh latest lib ");
  });

  it("judges links by where they land, and refuses a path the archive names twice", async () => {
    const sandboxId = uniqueSandbox("upload-tricky");
    const job = await upload(sandboxId, "/workspace", [
      { header: { name: "foo", size: 3, type: "file" }, body: "ok\n" },
      { header: { name: "foo", size: 0, type: "symlink", linkname: "/etc" } },
      { header: { name: "a", size: 0, type: "symlink", linkname: "." } },
      { header: { name: "a/b", size: 0, type: "symlink", linkname: ".." } },
      { header: { name: "a/c", size: 0, type: "symlink", linkname: "foo" } },
      { header: { name: "pipe", size: 0, type: "fifo" } },
    ]);
    const done = await waitForJob(job.id);
    expect(done.status, JSON.stringify(done.error)).toBe("succeeded");
    expect(done.extracted?.written.sort()).toEqual(["a", "a/c"]);
    expect(done.extracted?.refused.map((entry) => `${entry.path}: ${entry.reason}`).sort()).toEqual([
      "a/b: symlink points outside the directory",
      "foo: appears more than once in the archive",
      "foo: appears more than once in the archive",
      "pipe: unsupported entry type fifo",
    ]);
    expect(await stdoutOf(sandboxId, "ls -A /workspace | sort | tr '\\n' ' '; readlink c")).toBe("a c foo\n");
  });

  it("refuses a bad path, a missing body, and the extract op in JSON", async () => {
    const sandboxId = uniqueSandbox("upload-bad");
    await expectError(await api(`/v1/sandboxes/${sandboxId}/archive?path=/etc`, { method: "PUT", body: "x" }), 400, "INVALID_PATH");
    await expectError(await api(`/v1/sandboxes/${sandboxId}/archive`, { method: "PUT" }), 411, "LENGTH_REQUIRED");
    const json = await postJson(`/v1/sandboxes/${sandboxId}/jobs`, { type: "file", op: "extract", path: "/workspace", archiveBytes: 1 });
    await expectError(json, 400, "INVALID_REQUEST");
  });

  it("fails a job whose upload is not a .tar.gz, saying so", async () => {
    const sandboxId = uniqueSandbox("upload-junk");
    const response = await api(`/v1/sandboxes/${sandboxId}/archive`, { method: "PUT", body: "definitely not gzip" });
    expect(response.status).toBe(202);
    const done = await waitForJob(JobView.parse(await response.json()).id);
    expect(done.error?.code).toBe("INVALID_ARCHIVE");
  });

  it("writes a file with the mode asked for", async () => {
    const sandboxId = uniqueSandbox("mode");
    const write = await runJob(sandboxId, {
      type: "file",
      op: "write",
      path: "/workspace/run.sh",
      content: "#!/bin/sh\necho ran\n",
      mode: "755",
    });
    expect(write.status).toBe("succeeded");
    expect(await stdoutOf(sandboxId, "./run.sh && stat -c %a run.sh")).toBe("ran\n755\n");
  });
});
