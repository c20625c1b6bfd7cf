/**
 * Host user IDs for sandboxes: every sandbox key runs its jobs as its own unprivileged host uid
 * (never 0), so that even outside its mount namespace one sandbox cannot read another's
 * workspace or signal its processes. The uid comes from a stable hash of the key into a high
 * range no real account uses; a collision within this host's lifetime moves to the next free uid
 * (the workspace is then re-owned, see workspace.ts).
 */
import { createHash } from "node:crypto";

export const SANDBOX_UID_MIN = 200_000;
export const SANDBOX_UID_MAX = 899_999;
const RANGE = SANDBOX_UID_MAX - SANDBOX_UID_MIN + 1;

/** The uid a key prefers: the same on every host start. */
export function preferredUid(key: string): number {
  const digest = createHash("sha256").update(key).digest();
  return SANDBOX_UID_MIN + (digest.readUInt32BE(0) % RANGE);
}

/** Hands out one distinct uid per key for as long as the host runs. */
export class SandboxUids {
  private readonly byKey = new Map<string, number>();
  private readonly taken = new Set<number>();

  uidFor(key: string): number {
    const known = this.byKey.get(key);
    if (known !== undefined) return known;
    let uid = preferredUid(key);
    while (this.taken.has(uid)) uid = uid === SANDBOX_UID_MAX ? SANDBOX_UID_MIN : uid + 1;
    this.byKey.set(key, uid);
    this.taken.add(uid);
    return uid;
  }
}
