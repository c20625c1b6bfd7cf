/**
 * Uploading a local directory into a sandbox: a .tar.gz of it (never `.git`, nor what the
 * exclude globs name) unpacked by an extract job. With `sync`, what the sandbox holds under the
 * target and the directory no longer has is removed first: a job lists the target (`find`), this
 * side compares that list with the directory, and a second job deletes the difference (the paths
 * go on its stdin). Excluded paths (node_modules, say) are left as they are on both sides.
 */
import { readdir, stat } from "node:fs/promises";
import { join, relative, sep } from "node:path";
import { buffer } from "node:stream/consumers";
import { gzipSync } from "node:zlib";
import { packTar } from "modern-tar/fs";
import picomatch from "picomatch";
import type { ArtifactSandboxClient, JobView } from "../client";
import { UsageError } from "./failure";

export interface UploadOptions {
  /** The directory inside the sandbox (default /workspace). */
  to: string;
  exclude: string[];
  /** Remove what the sandbox has under `to` that the directory does not (excluded paths are kept). */
  sync: boolean;
}

export interface UploadResult {
  job: JobView;
  /** With sync: the paths removed from the sandbox, relative to `to`. */
  removed: string[];
}

/** Whether a path relative to the directory (with `/`) is left out: `.git` always, and what the globs match. */
function excludedBy(exclude: string[]): (inside: string) => boolean {
  const matches = exclude.length > 0 ? picomatch(exclude, { dot: true }) : () => false;
  return (inside) => inside.split("/")[0] === ".git" || matches(inside);
}

export async function uploadDirectory(
  client: ArtifactSandboxClient,
  sandboxId: string,
  dir: string,
  options: UploadOptions,
): Promise<UploadResult> {
  if (!(await stat(dir).catch(() => undefined))?.isDirectory()) throw new UsageError(`${dir} is not a directory`);
  const excluded = excludedBy(options.exclude);
  const removed = options.sync ? await removeWhatIsGone(client, sandboxId, dir, options.to, excluded) : [];
  const filter = (path: string) => {
    const inside = relative(dir, path).split(sep).join("/");
    return inside === "" || !excluded(inside);
  };
  // Packed in memory: the API takes at most 100 MiB and needs the length before the body.
  const archive = new Uint8Array(gzipSync(await buffer(packTar(dir, { filter }))));
  const submitted = await client.uploadArchive(sandboxId, archive, { path: options.to });
  return { job: await client.waitForJob(submitted.id), removed };
}

type EntryKind = "file" | "dir";

/** The directory's entries (relative, with `/`), not descending into what is excluded. */
async function localEntries(dir: string, excluded: (inside: string) => boolean): Promise<Map<string, EntryKind>> {
  const entries = new Map<string, EntryKind>();
  const walk = async (inside: string) => {
    for (const entry of await readdir(join(dir, inside), { withFileTypes: true })) {
      const path = inside === "" ? entry.name : `${inside}/${entry.name}`;
      if (excluded(path)) continue;
      entries.set(path, entry.isDirectory() ? "dir" : "file");
      if (entry.isDirectory()) await walk(path);
    }
  };
  await walk("");
  return entries;
}

async function removeWhatIsGone(
  client: ArtifactSandboxClient,
  sandboxId: string,
  dir: string,
  to: string,
  excluded: (inside: string) => boolean,
): Promise<string[]> {
  // %y is the type (d for a directory), %P the path below the start; NUL ends each entry.
  const listing = await runToEnd(client, sandboxId, { cwd: to, command: "find . -mindepth 1 -printf '%y %P\\0'" });
  if (listing.stdout?.truncated) throw new Error(`Too many files under ${to} in sandbox ${sandboxId} to sync; remove it first`);
  const text = listing.stdout?.size ? await new Response(await client.download(listing.stdout.url)).text() : "";
  const local = await localEntries(dir, excluded);
  const gone = new Set<string>();
  for (const entry of text.split("\0")) {
    if (entry.length < 3) continue;
    const kind: EntryKind = entry[0] === "d" ? "dir" : "file";
    const path = entry.slice(2);
    // Below a removed directory, or below (or at) an excluded path: nothing more to decide.
    const ancestors = path.split("/").map((_, index, parts) => parts.slice(0, index + 1).join("/"));
    if (ancestors.some((ancestor) => excluded(ancestor) || gone.has(ancestor))) continue;
    if (local.get(path) !== kind) gone.add(path);
  }
  if (gone.size === 0) return [];
  await runToEnd(client, sandboxId, { cwd: to, command: "xargs -0 rm -rf --", stdin: [...gone].map((path) => `./${path}`).join("\0") });
  return [...gone];
}

async function runToEnd(
  client: ArtifactSandboxClient,
  sandboxId: string,
  job: { cwd: string; command: string; stdin?: string },
): Promise<JobView> {
  const submitted = await client.submit(sandboxId, { type: "run", ...job });
  const done = await client.waitForJob(submitted.id);
  if (done.status !== "succeeded") throw new Error(`${job.command} in sandbox ${sandboxId} ${done.status}: ${done.error?.message ?? ""}`);
  return done;
}
