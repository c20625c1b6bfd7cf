/**
 * Maps a sandbox's `/workspace/...` paths onto its own directory on the host, refusing any
 * path that would leave that directory, whether through `..` or through a symlink.
 */
import { lstat, mkdir, realpath } from "node:fs/promises";
import { join, sep } from "node:path";
import { relativeTo, SandboxId, WORKSPACE_ROOT, WorkspaceDirPath, WorkspaceFilePath } from "../../schemas/ids";

export class PathRefusedError extends Error {
  override readonly name = "PathRefusedError";
}

export class Workspaces {
  constructor(readonly root: string) {}

  /** The sandbox's workspace directory, created on first use. */
  async dirFor(sandboxId: string): Promise<string> {
    const id = SandboxId.safeParse(sandboxId);
    if (!id.success) throw new PathRefusedError(`Invalid sandbox ID: ${id.error.issues[0]?.message}`);
    const dir = join(this.root, id.data);
    await mkdir(dir, { recursive: true });
    return realpath(dir);
  }

  /**
   * Host path for a sandbox path. Every existing ancestor is resolved and must stay inside the
   * workspace; with `createParents`, missing directories are made one at a time so that a
   * symlinked component can never redirect the creation.
   */
  async resolve(sandboxId: string, sandboxPath: string, options: { kind: "file" | "dir"; createParents?: boolean }): Promise<string> {
    const parsed = (options.kind === "file" ? WorkspaceFilePath : WorkspaceDirPath).safeParse(sandboxPath);
    if (!parsed.success) throw new PathRefusedError(parsed.error.issues[0]?.message ?? "Invalid path");
    const workspace = await this.dirFor(sandboxId);
    const relative = parsed.data === WORKSPACE_ROOT ? "" : (relativeTo(WORKSPACE_ROOT, parsed.data) ?? "");
    const segments = relative === "" ? [] : relative.split("/");
    const dirSegments = options.kind === "file" ? segments.slice(0, -1) : segments;

    let current = workspace;
    for (const [index, segment] of dirSegments.entries()) {
      const next = join(current, segment);
      const stat = await lstat(next).catch(() => undefined);
      if (!stat) {
        // Nothing below a missing directory exists, so nothing there can be a symlink.
        if (!options.createParents) return join(next, ...segments.slice(index + 1));
        await mkdir(next);
        current = next;
        continue;
      }
      current = await this.insideOrRefuse(workspace, next, sandboxPath);
    }
    if (options.kind === "dir") return current;
    const target = join(current, segments[segments.length - 1] ?? "");
    const stat = await lstat(target).catch(() => undefined);
    if (stat?.isSymbolicLink()) return this.insideOrRefuse(workspace, target, sandboxPath);
    return target;
  }

  private async insideOrRefuse(workspace: string, hostPath: string, sandboxPath: string): Promise<string> {
    const real = await realpath(hostPath).catch(() => undefined);
    if (!real || (real !== workspace && !real.startsWith(workspace + sep))) {
      throw new PathRefusedError(`Path ${sandboxPath} resolves outside ${WORKSPACE_ROOT} (through a symlink) and is refused`);
    }
    return real;
  }
}
