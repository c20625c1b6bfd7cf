/**
 * The original synchronous API, replayed as its Python client's test suite runs it, plus the
 * FIX list from the reference: same shapes, none of the flaws.
 */
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { api, uniqueSandbox } from "./client";

const LegacyError = z.object({ error: z.string(), code: z.string() });

function call(method: string, path: string, sandboxId: string | undefined, body?: unknown): Promise<Response> {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (sandboxId) headers["x-sandbox-id"] = sandboxId;
  return api(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
}

async function legacyError(response: Response, status: number): Promise<string> {
  expect(response.status, await response.clone().text()).toBe(status);
  return LegacyError.parse(await response.json()).error;
}

describe.each(["a", "b"])("the original Python client's suite against sandbox %s", (sandboxId) => {
  it("writes, reads, overwrites, downloads, runs, deletes and gets the 404s it expects", async () => {
    const write = await call("PUT", "/file", sandboxId, { path: "/workspace/demo.txt", content: "hello sandbox" });
    expect(write.status).toBe(200);
    expect(await write.json()).toEqual({ path: "/workspace/demo.txt", length: 13 });

    const read = await call("GET", "/file?path=/workspace/demo.txt", sandboxId);
    expect(await read.json()).toEqual({ path: "/workspace/demo.txt", content: "hello sandbox" });

    const overwrite = await call("PUT", "/file", sandboxId, { path: "/workspace/demo.txt", content: "v2" });
    expect(await overwrite.json()).toEqual({ path: "/workspace/demo.txt", length: 2 });
    expect(await (await call("GET", "/file?path=/workspace/demo.txt", sandboxId)).json()).toEqual({
      path: "/workspace/demo.txt",
      content: "v2",
    });

    const download = await call("GET", "/file?path=/workspace/demo.txt&mode=download", sandboxId);
    expect(download.status).toBe(200);
    expect(download.headers.get("content-disposition")).toContain('attachment; filename="demo.txt"');
    expect(download.headers.get("content-type")).toContain("text/plain");
    expect(await download.text()).toBe("v2");

    const run = await call("POST", "/run", sandboxId, { command: "ls -la /workspace" });
    expect(run.status).toBe(200);
    const result = z.object({ output: z.string(), error: z.string(), exitCode: z.number(), success: z.boolean() }).parse(await run.json());
    expect(result).toMatchObject({ exitCode: 0, success: true, error: "" });
    expect(result.output).toContain("demo.txt");

    const remove = await call("DELETE", "/file?path=/workspace/demo.txt", sandboxId);
    expect(await remove.json()).toEqual({ path: "/workspace/demo.txt", deleted: true });
    expect(await legacyError(await call("DELETE", "/file?path=/workspace/demo.txt", sandboxId), 404)).toBe(
      "File not found: /workspace/demo.txt",
    );
    expect(await legacyError(await call("GET", "/file?path=/workspace/missing.txt", sandboxId), 404)).toBe(
      "File not found: /workspace/missing.txt",
    );
  });
});

describe("original routes: shapes kept, flaws fixed", () => {
  it("requires a sandbox ID, from the header or ?sandbox_id=", async () => {
    expect(await legacyError(await call("POST", "/run", undefined, { command: "ls" }), 400)).toBe(
      "Missing sandbox id. Provide x-sandbox-id header or ?sandbox_id=",
    );
    const viaQuery = await call("POST", "/run?sandbox_id=q", undefined, { command: "echo via-query" });
    expect(await viaQuery.json()).toMatchObject({ output: "via-query\n", success: true });
    expect(await legacyError(await call("POST", "/run", "Bad_ID", { command: "ls" }), 400)).toMatch(/Invalid sandbox id/);
  });

  it("keeps a failing command a 200 with success false", async () => {
    const response = await call("POST", "/run", "c", { command: "echo out; echo err >&2; exit 7" });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ output: "out\n", error: "err\n", exitCode: 7, success: false });
  });

  it("rejects a blank command, a missing path, a missing content and bad JSON with 400", async () => {
    await legacyError(await call("POST", "/run", "c", { command: "  " }), 400);
    await legacyError(await call("PUT", "/file", "c", { content: "x" }), 400);
    expect(await legacyError(await call("PUT", "/file", "c", { path: "/workspace/empty.txt" }), 400)).toMatch(/Missing content/);
    await legacyError(await call("GET", "/file", "c"), 400);
    await legacyError(await call("DELETE", "/file", "c"), 400);
    const badJson = await api("/run", { method: "POST", headers: { "x-sandbox-id": "c" }, body: "{" });
    await legacyError(badJson, 400);
  });

  it("normalizes paths like the original and refuses those that leave the workspace", async () => {
    const write = await call("PUT", "/file", "d", { path: "  workspace//sub//n.txt ", content: "x" });
    expect(await write.json()).toEqual({ path: "/workspace/sub/n.txt", length: 1 });
    expect(await legacyError(await call("PUT", "/file", "d", { path: "/workspace/../etc/passwd", content: "x" }), 400)).toMatch(/'\.\.'/);
    expect(await legacyError(await call("GET", "/file?path=/etc/passwd", "d"), 400)).toMatch(/inside \/workspace/);
  });

  it("counts length in bytes and downloads real bytes", async () => {
    const write = await call("PUT", "/file", "e", { path: "/workspace/u.txt", content: "héllo" });
    expect(await write.json()).toEqual({ path: "/workspace/u.txt", length: 6 });
    const download = await call("GET", "/file?path=/workspace/u.txt&mode=download", "e");
    expect(new Uint8Array(await download.arrayBuffer())).toEqual(new TextEncoder().encode("héllo"));
  });

  it("has no side effects on GET and answers other methods with 405", async () => {
    expect(await legacyError(await call("GET", "/run", "f"), 405)).toMatch(/POST/);
    expect(await legacyError(await call("POST", "/file", "f", { path: "/workspace/x", content: "y" }), 405)).toMatch(/PUT, GET or DELETE/);
    await legacyError(await call("GET", "/file?path=/workspace/x", "f"), 404);
  });

  it("answers a read of a directory with a JSON 400, not a 500", async () => {
    await call("POST", "/run", "g", { command: "mkdir -p adir" });
    expect(await legacyError(await call("GET", "/file?path=/workspace/adir", "g"), 400)).toMatch(/is a directory/);
  });

  // `&mode=download` sends R2's stream as it is; the JSON answer is the one built on the way.
  it("streams a 64 MiB file as JSON, byte for byte", async () => {
    const sandboxId = uniqueSandbox("bigfile");
    // 64 bytes that JSON must escape (quote, backslash, tab) with multi-byte characters, which
    // also straddle the stream's pieces once repeated: doubled 20 times, 64 MiB.
    const line = 'a "quoted" \\ path\ttab ü€ and 😀 then padding..............\n';
    expect(new TextEncoder().encode(line).byteLength).toBe(64);
    expect((await call("PUT", "/file", sandboxId, { path: "/workspace/big.txt", content: line })).status).toBe(200);
    const grown = await call("POST", "/run", sandboxId, {
      command: "for i in $(seq 20); do cat big.txt big.txt > t && mv t big.txt; done",
    });
    expect(await grown.json()).toMatchObject({ exitCode: 0 });

    const copies = 2 ** 20;
    const expected = async (prefix: string, piece: string, suffix: string) => {
      const digest = new crypto.DigestStream("SHA-256");
      const writer = digest.getWriter();
      const encoder = new TextEncoder();
      await writer.write(encoder.encode(prefix));
      const block = encoder.encode(piece.repeat(1024));
      for (let i = 0; i < copies / 1024; i++) await writer.write(block);
      await writer.write(encoder.encode(suffix));
      await writer.close();
      return hexOf(await digest.digest);
    };
    const received = async (response: Response) => {
      expect(response.status).toBe(200);
      const digest = new crypto.DigestStream("SHA-256");
      await response.body?.pipeTo(digest);
      return hexOf(await digest.digest);
    };

    const asJson = await call("GET", "/file?path=/workspace/big.txt", sandboxId);
    expect(asJson.headers.get("content-type")).toContain("application/json");
    expect(await received(asJson)).toBe(
      await expected('{"path":"/workspace/big.txt","content":"', JSON.stringify(line).slice(1, -1), '"}'),
    );
  }, 180_000);
});

function hexOf(bytes: ArrayBuffer): string {
  return [...new Uint8Array(bytes)].map((byte) => byte.toString(16).padStart(2, "0")).join("");
}
