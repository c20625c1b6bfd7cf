/**
 * `POST /api/list-files`: the real container runs
 * `find <dir> [-maxdepth 1] [-not -name ".*"] -not -path <dir> -printf '%p\t%y\t%s\t%T…\t%m\n'`;
 * this walks the tree the same way (pre-order, directory order, symlinks not followed) and
 * returns the same FileInfo shape.
 */
import { lstat, opendir, stat } from "node:fs/promises";
import { AgentError, ErrorCode, fileErrorFromErrno } from "./errors.ts";

export type FileInfo = {
  name: string;
  absolutePath: string;
  relativePath: string;
  type: "file" | "directory" | "symlink" | "other";
  size: number;
  modifiedAt: string;
  mode: string;
  permissions: { readable: boolean; writable: boolean; executable: boolean };
};

export type ListOptions = { recursive?: boolean; includeHidden?: boolean };

const PERMISSION_TRIPLETS = ["---", "--x", "-w-", "-wx", "r--", "r-x", "rw-", "rwx"];

function modeString(mode: number): string {
  return [(mode >> 6) & 7, (mode >> 3) & 7, mode & 7].map((bits) => PERMISSION_TRIPLETS[bits]).join("");
}

/** find's `%TY-%Tm-%TdT%TH:%TM:%TS`: no zone suffix, seconds with ten fractional digits (UTC here). */
function findTimestamp(mtimeNs: bigint): string {
  const seconds = mtimeNs / 1_000_000_000n;
  const fraction = (mtimeNs % 1_000_000_000n).toString().padStart(9, "0");
  const whole = new Date(Number(seconds) * 1000).toISOString().slice(0, 19);
  return `${whole}.${fraction}0`;
}

async function describe(absolutePath: string, name: string, relativePath: string): Promise<FileInfo> {
  const info = await lstat(absolutePath, { bigint: true });
  const mode = Number(info.mode & 0o777n);
  const owner = (mode >> 6) & 7;
  return {
    name,
    absolutePath,
    relativePath,
    type: info.isFile() ? "file" : info.isDirectory() ? "directory" : info.isSymbolicLink() ? "symlink" : "other",
    size: Number(info.size),
    modifiedAt: findTimestamp(info.mtimeNs),
    mode: modeString(mode),
    permissions: { readable: (owner & 4) !== 0, writable: (owner & 2) !== 0, executable: (owner & 1) !== 0 },
  };
}

export async function listSandboxFiles(directory: string, displayPath: string, options: ListOptions): Promise<FileInfo[]> {
  const info = await stat(directory).catch(() => null);
  if (!info) {
    throw new AgentError(ErrorCode.FILE_NOT_FOUND, `Directory not found: ${displayPath}`, { path: displayPath, operation: "list" });
  }
  if (!info.isDirectory()) {
    throw new AgentError(ErrorCode.NOT_DIRECTORY, `Path is not a directory: ${displayPath}`, { path: displayPath, operation: "list" });
  }
  const base = directory.length > 1 ? directory.replace(/\/+$/, "") : "";
  const files: FileInfo[] = [];
  const walk = async (dir: string, relativeDir: string): Promise<void> => {
    const handle = await opendir(dir);
    for await (const entry of handle) {
      const absolutePath = `${dir === "/" ? "" : dir}/${entry.name}`;
      const relativePath = relativeDir ? `${relativeDir}/${entry.name}` : entry.name;
      // `-not -name ".*"` hides the entry itself; find still descends into hidden directories.
      if (options.includeHidden || !entry.name.startsWith(".")) {
        // An entry removed between readdir and lstat is simply no longer there.
        const described = await describe(absolutePath, entry.name, relativePath).catch((error: unknown) => {
          if (error instanceof Error && "code" in error && error.code === "ENOENT") return null;
          throw error;
        });
        if (described) files.push(described);
      }
      if (options.recursive && entry.isDirectory()) await walk(absolutePath, relativePath);
    }
  };
  try {
    await walk(base || "/", "");
  } catch (error) {
    if (error instanceof AgentError) throw error;
    throw fileErrorFromErrno(error, displayPath, "list");
  }
  return files;
}
