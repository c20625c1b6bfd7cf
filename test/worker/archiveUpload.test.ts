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
      // As `tar czf src.tar.gz -C dir .` makes it: the directory itself, listed as no path of its own.
      { header: { name: "./", size: 0, type: "directory" } },
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
    expect(done.extracted?.entries).toBe(9);

    expect(await stdoutOf(sandboxId, "cd src && ./build.sh && cat latest && readlink latest")).toBe("built ok\ndata\nlib/data.txt\n");
    expect(await stdoutOf(sandboxId, "ls -A /workspace; ls -A /workspace/src | sort | tr '\\n' ' '")).toBe("src\nbuild.sh latest lib ");
  });

  it("refuses a path through one of the archive's own symlinks, and a path the archive names twice", async () => {
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
    expect(done.extracted?.written.sort()).toEqual(["a"]);
    expect(done.extracted?.refused.map((entry) => `${entry.path}: ${entry.reason}`).sort()).toEqual([
      "a/b: goes through a symlink in the archive",
      "a/c: goes through a symlink in the archive",
      "foo: appears more than once in the archive",
      "foo: appears more than once in the archive",
      "pipe: unsupported entry type fifo",
    ]);
    expect(await stdoutOf(sandboxId, "ls -A /workspace | sort | tr '\\n' ' '; readlink a")).toBe("a .\n");
  });

  it("refuses a path through a symlink the archive makes with '..' in its target (tar makes those last), not failing the upload", async () => {
    const sandboxId = uniqueSandbox("upload-late-link");
    const job = await upload(sandboxId, "/workspace", [
      { header: { name: "sub/", size: 0, type: "directory" } },
      { header: { name: "d/", size: 0, type: "directory" } },
      { header: { name: "d/s", size: 0, type: "symlink", linkname: "../sub" } },
      { header: { name: "d/s/deeper", size: 3, type: "file" }, body: "no\n" },
      { header: { name: "ok.txt", size: 3, type: "file" }, body: "ok\n" },
    ]);
    const done = await waitForJob(job.id);
    expect(done.status, JSON.stringify(done.error)).toBe("succeeded");
    expect(done.extracted?.written).toEqual(["sub/", "d/", "d/s", "ok.txt"]);
    expect(done.extracted?.refused).toEqual([{ path: "d/s/deeper", reason: "goes through a symlink in the archive" }]);
    expect(await stdoutOf(sandboxId, "readlink d/s; ls -A sub; cat ok.txt")).toBe("../sub\nok\n");
  });

  it("refuses entries through what the sandbox already holds: symlinks out of the directory, a file where a directory goes", async () => {
    const sandboxId = uniqueSandbox("upload-existing");
    await stdoutOf(
      sandboxId,
      "mkdir -p src/real private && echo s > private/secret && ln -s /tmp src/out && ln -s real src/in && ln -s /workspace/private src/priv && ln -s . src/self && echo x > src/afile",
    );
    const job = await upload(sandboxId, "/workspace/src", [
      { header: { name: "out/", size: 0, type: "directory" } },
      { header: { name: "out/planted", size: 4, type: "file" }, body: "bad\n" },
      { header: { name: "in/inside.txt", size: 3, type: "file" }, body: "in\n" },
      { header: { name: "afile/y", size: 2, type: "file" }, body: "y\n" },
      { header: { name: "good.txt", size: 5, type: "file" }, body: "good\n" },
      // A link of the archive to a link of the sandbox, and a file through it.
      { header: { name: "c", size: 0, type: "symlink", linkname: "out" } },
      { header: { name: "c/planted2", size: 4, type: "file" }, body: "bad\n" },
      // A second name for a file outside the directory.
      { header: { name: "h", size: 0, type: "link", linkname: "priv/secret" } },
      // Two levels up from where `self/self` really is (the directory itself), not from `src/self/self`.
      { header: { name: "self/self/l", size: 0, type: "symlink", linkname: "../../x" } },
      // A hard link to an entry the sandbox refused.
      { header: { name: "hl", size: 0, type: "link", linkname: "out/planted" } },
    ]);
    const done = await waitForJob(job.id);
    expect(done.status, JSON.stringify(done.error)).toBe("succeeded");
    expect(done.extracted?.written).toEqual(["good.txt"]);
    // The sandbox's links are never gone through, wherever they lead: the archive could re-point them.
    const throughLink = "goes through a symlink already in the sandbox";
    expect(done.extracted?.refused).toEqual([
      { path: "c/planted2", reason: "goes through a symlink in the archive" },
      { path: "h", reason: "hard link to an entry not unpacked before it" },
      { path: "out/", reason: throughLink },
      { path: "out/planted", reason: throughLink },
      { path: "in/inside.txt", reason: throughLink },
      { path: "afile/y", reason: "something in the sandbox that is not a directory stands where it needs one" },
      { path: "c", reason: throughLink },
      { path: "self/self/l", reason: throughLink },
      { path: "hl", reason: "hard link to an entry that was not unpacked" },
    ]);
    expect(
      await stdoutOf(
        sandboxId,
        "ls -A /tmp | grep -c planted || true; cat src/good.txt src/afile; stat -c %h private/secret; ls src | sort | tr '\\n' ' '",
      ),
    ).toBe("0\ngood\nx\n1\nafile good.txt in out priv real self ");
  });

  it("never goes through a link the archive re-points, nor makes a hard link to a symlink; setuid bits are dropped", async () => {
    const sandboxId = uniqueSandbox("upload-repoint");
    // At check time p leads to src/w/x/../.. (src itself); once z is re-pointed to ".", to /.
    await stdoutOf(sandboxId, "mkdir -p src/w/x && ln -s w/x src/z && ln -s z/../.. src/p");
    const job = await upload(sandboxId, "/workspace/src", [
      { header: { name: "z", size: 0, type: "symlink", linkname: "." } },
      { header: { name: "p/tmp/pwned", size: 4, type: "file" }, body: "bad\n" },
      { header: { name: "d/", size: 0, type: "directory" } },
      { header: { name: "d/s", size: 0, type: "symlink", linkname: "../w" } },
      { header: { name: "h", size: 0, type: "link", linkname: "d/s" } },
      { header: { name: "tool", size: 3, mode: 0o4755, type: "file" }, body: "ok\n" },
    ]);
    const done = await waitForJob(job.id);
    expect(done.status, JSON.stringify(done.error)).toBe("succeeded");
    expect(done.extracted?.written).toEqual(["z", "d/", "d/s", "tool"]);
    expect(done.extracted?.refused).toEqual([
      { path: "h", reason: "hard link to a symlink" },
      { path: "p/tmp/pwned", reason: "goes through a symlink already in the sandbox" },
    ]);
    expect(await stdoutOf(sandboxId, "ls -A /tmp | grep -c pwned || true; readlink src/z; stat -c %a src/tool")).toBe("0\n.\n755\n");
  });

  it("writes nothing when every entry is refused (tar given an empty list would unpack them all)", async () => {
    const sandboxId = uniqueSandbox("upload-all-refused");
    const job = await upload(sandboxId, "/workspace/up", [
      { header: { name: "etc", size: 0, type: "symlink", linkname: "/etc" } },
      { header: { name: "/abs.txt", size: 4, type: "file" }, body: "bad\n" },
    ]);
    const done = await waitForJob(job.id);
    expect(done.status, JSON.stringify(done.error)).toBe("succeeded");
    expect(done.extracted).toMatchObject({ entries: 2, written: [] });
    expect(await stdoutOf(sandboxId, "ls -A /workspace/up | wc -l")).toBe("0\n");
  });

  it("fails an upload whose directory leads out of the workspace through a symlink, or through a file, unpacking nothing", async () => {
    const sandboxId = uniqueSandbox("upload-target-link");
    await stdoutOf(sandboxId, "ln -s /tmp /workspace/elsewhere");
    const job = await upload(sandboxId, "/workspace/elsewhere/deep", [{ header: { name: "x.txt", size: 2, type: "file" }, body: "x\n" }]);
    const done = await waitForJob(job.id);
    expect(done.status).toBe("failed");
    expect(done.error).toMatchObject({ code: "PATH_REFUSED" });
    expect(done.error?.message).toContain("leads outside /workspace through a symlink");
    expect(await stdoutOf(sandboxId, "ls -A /tmp | grep -c -e '^deep$' -e '^x.txt$' || true")).toBe("0\n");

    await stdoutOf(sandboxId, "echo plain > /workspace/plain");
    const onFile = await waitForJob(
      (await upload(sandboxId, "/workspace/plain/sub", [{ header: { name: "x.txt", size: 2, type: "file" }, body: "x\n" }])).id,
    );
    expect(onFile.status).toBe("failed");
    expect(onFile.error).toMatchObject({ code: "PATH_REFUSED" });
    expect(onFile.error?.message).toContain("is not, or could not be made, a directory in the sandbox");
  });

  it("refuses a bad path, a missing body, and the extract op in JSON", async () => {
    const sandboxId = uniqueSandbox("upload-bad");
    await expectError(await api(`/v1/sandboxes/${sandboxId}/archive?path=/etc`, { method: "PUT", body: "x" }), 400, "INVALID_PATH");
    await expectError(await api(`/v1/sandboxes/${sandboxId}/archive`, { method: "PUT" }), 411, "LENGTH_REQUIRED");
    const empty = await expectError(await api(`/v1/sandboxes/${sandboxId}/archive`, { method: "PUT", body: "" }), 400, "INVALID_REQUEST");
    expect(empty).toContain("The body is empty");
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

  it("fails a job whose archive has a header that does not add up (its checksum), unpacking nothing", async () => {
    const sandboxId = uniqueSandbox("upload-checksum");
    const tar = await packTar([{ header: { name: "x.txt", size: 2, type: "file" }, body: "x\n" }]);
    // The first header's checksum field starts at byte 148: one digit changed.
    tar[149] = tar[149] === 0x31 ? 0x32 : 0x31;
    const response = await api(`/v1/sandboxes/${sandboxId}/archive`, { method: "PUT", body: await gzip(tar) });
    expect(response.status).toBe(202);
    const done = await waitForJob(JobView.parse(await response.json()).id);
    expect(done.error?.code).toBe("INVALID_ARCHIVE");
    expect(await stdoutOf(sandboxId, "ls -A /workspace | wc -l")).toBe("0\n");
  });

  it("refuses an archive of more than 100,000 entries, or of names over 8 MiB, unpacking nothing, and lists at most 1,000 refused entries", async () => {
    // One empty file's header 100,001 times: a small .tar.gz that would hold the coordinator's memory.
    const header = (await packTar([{ header: { name: "x", size: 0, type: "file" } }])).subarray(0, 512);
    const many = new Uint8Array(512 * 100_001 + 1024);
    for (let at = 0; at < 512 * 100_001; at += 512) many.set(header, at);
    const sandboxId = uniqueSandbox("upload-huge");
    const tooMany = await api(`/v1/sandboxes/${sandboxId}/archive`, { method: "PUT", body: await gzip(many) });
    expect(tooMany.status).toBe(202);
    const manyDone = await waitForJob(JobView.parse(await tooMany.json()).id);
    expect(manyDone.status).toBe("failed");
    expect(manyDone.error?.code).toBe("INVALID_ARCHIVE");
    expect(manyDone.error?.message).toContain("more than 100,000 entries; leave out what the sandbox can make");

    const longNames = Array.from({ length: 2_100 }, (_, i) => ({
      header: { name: `${String(i).padStart(4, "0")}${"n".repeat(3_996)}`, size: 0, type: "file" as const },
    }));
    const namesDone = await waitForJob((await upload(sandboxId, "/workspace", longNames)).id);
    expect(namesDone.error?.code).toBe("INVALID_ARCHIVE");
    expect(namesDone.error?.message).toContain("entry names add up to more than 8 MiB");
    expect(await stdoutOf(sandboxId, "ls -A /workspace | wc -l")).toBe("0\n");

    const outside = Array.from({ length: 1_200 }, (_, i) => ({ header: { name: `../x${i}`, size: 0, type: "file" as const } }));
    const refusedDone = await waitForJob(
      (await upload(sandboxId, "/workspace", [...outside, { header: { name: "ok", size: 0, type: "file" } }])).id,
    );
    expect(refusedDone.status).toBe("succeeded");
    expect(refusedDone.extracted).toMatchObject({ entries: 1_201, written: ["ok"], refusedCount: 1_200 });
    expect(refusedDone.extracted?.refused).toHaveLength(1_000);
    expect(refusedDone.extracted?.refused[999]).toEqual({ path: "../x999", reason: "path contains '..'" });
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
