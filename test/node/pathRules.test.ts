/** Unit tests of the shared ID and path rules that the API and the local host both apply. */
import { describe, expect, it } from "vitest";
import { normalizeSlashes, relativeTo, SandboxId, WorkspaceDirPath, WorkspaceFilePath } from "../../schemas/ids";

describe("sandbox IDs", () => {
  it.each(["a", "build-42", "x".repeat(63), "0abc"])("accepts %s", (id) => {
    expect(SandboxId.safeParse(id).success).toBe(true);
  });
  it.each(["", "-a", "a-", "A", "a_b", "a.b", "x".repeat(64), "api", "../x"])("rejects %j", (id) => {
    expect(SandboxId.safeParse(id).success).toBe(false);
  });
});

describe("workspace paths", () => {
  it("normalizes repeated and trailing slashes", () => {
    expect(normalizeSlashes("/workspace//a///b/")).toBe("/workspace/a/b");
    expect(WorkspaceFilePath.parse("/workspace//dist//app.js")).toBe("/workspace/dist/app.js");
  });
  it.each([
    "/workspace/../etc/passwd",
    "/workspace/./a",
    "workspace/a",
    "/etc/passwd",
    "/workspaces/a",
    "/workspace",
    "/workspace/a\u0000",
  ])("refuses the file path %j", (path) => {
    expect(WorkspaceFilePath.safeParse(path).success).toBe(false);
  });
  it("accepts the workspace itself as a directory but not as a file", () => {
    expect(WorkspaceDirPath.parse("/workspace")).toBe("/workspace");
    expect(WorkspaceFilePath.safeParse("/workspace").success).toBe(false);
  });
  it("gives paths relative to a directory only when they are inside it", () => {
    expect(relativeTo("/workspace/app", "/workspace/app/dist/a.js")).toBe("dist/a.js");
    expect(relativeTo("/workspace/app", "/workspace/application/a.js")).toBeUndefined();
  });
});
