/**
 * Host directories a container uses: its workspace (`<root>/<key>`, bound at /workspace and kept
 * across container restarts) and its runtime directory (where the agent's socket appears). Both
 * belong to the sandbox's own uid with mode 0700, so no other sandbox uid can enter them.
 */
import { chmod, chown, lchown, lstat, mkdir, readdir, stat } from "node:fs/promises";
import { dirname, join } from "node:path";

/**
 * Makes `root` usable as the parent of per-sandbox directories: created if missing and
 * traversable (0711) but not listable by sandbox uids, whose bubblewrap must reach their own
 * directory below it. Returns a problem to report, or undefined.
 */
export async function prepareSharedParent(root: string): Promise<string | undefined> {
  await mkdir(root, { recursive: true });
  await chmod(root, 0o711);
  const closed = await untraversableAncestor(root);
  return closed && `${closed} is not traversable by other users; sandboxes run as their own uid and need to reach ${root}`;
}

/** The first existing ancestor of `path` that other users may not pass through, if any. */
export async function untraversableAncestor(path: string): Promise<string | undefined> {
  for (let dir = dirname(path); ; dir = dirname(dir)) {
    const mode = await stat(dir).then(
      (info) => info.mode,
      () => undefined,
    );
    if (mode !== undefined && (mode & 0o001) === 0) return dir;
    if (dir === dirname(dir)) return undefined;
  }
}

/** Gives a directory tree to `uid` (without following symlinks a job may have planted). */
async function chownTree(dir: string, uid: number): Promise<void> {
  await lchown(dir, uid, uid);
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) await chownTree(path, uid);
    else await lchown(path, uid, uid);
  }
}

/**
 * Creates (or re-owns) a directory for one sandbox uid with mode 0700. A tree that belongs to
 * another uid (made by an older host, or the key's uid moved after a collision) is re-owned
 * whole, so the sandbox can keep writing its files.
 */
export async function prepareOwnedDir(dir: string, uid: number | undefined): Promise<string> {
  await mkdir(dir, { recursive: true });
  // A host that is not root runs every sandbox as its own uid and cannot hand directories out.
  if (uid === undefined) return dir;
  const info = await lstat(dir);
  if (info.uid !== uid || info.gid !== uid) await chownTree(dir, uid);
  await chown(dir, uid, uid);
  await chmod(dir, 0o700);
  return dir;
}

/**
 * Takes a directory back from the sandbox (root-owned, 0711): its processes may still use what
 * is in it, such as the agent's listening socket, but can no longer create files there.
 */
export async function sealDir(dir: string, uid: number | undefined): Promise<void> {
  if (uid === undefined) return;
  await chown(dir, 0, 0);
  await chmod(dir, 0o711);
}
