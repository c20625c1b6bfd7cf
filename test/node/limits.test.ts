/**
 * Which cgroup version the host's resource limits use, from /proc/self/cgroup and
 * /proc/self/mountinfo as a v1, hybrid, v2-only or cgroup-less machine shows them; and what the
 * cgroup v2 limiter writes, on a directory shaped like a delegated v2 subtree (these machines
 * run cgroup v1, so the kernel's own v2 files cannot be used here).
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { CgroupLimiter, cgroupLayout } from "../../container/local/limits";

const V1_MOUNTS = [
  "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755",
  "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory",
  "39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids",
  "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct",
];
const UNIFIED_BESIDE_V1 = "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate";
const V2_ONLY = "29 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot";

describe("choosing the cgroup version for resource limits", () => {
  it("uses cgroup v1 where its memory and pids controllers are mounted, even beside a v2 hierarchy (hybrid)", () => {
    const procSelfCgroup = ["9:name=systemd:/", "8:pids:/jobs", "4:memory:/process_api/abc", "1:cpu,cpuacct:/", "0::/"].join("\n");
    expect(cgroupLayout(procSelfCgroup, [...V1_MOUNTS, UNIFIED_BESIDE_V1].join("\n"))).toEqual({
      version: "v1",
      memoryDir: "/sys/fs/cgroup/memory/process_api/abc",
      pidsDir: "/sys/fs/cgroup/pids/jobs",
    });
  });

  it("uses cgroup v2 on a v2-only machine, in this process's own cgroup", () => {
    expect(cgroupLayout("0::/user.slice/user-1000.slice/session-2.scope\n", V2_ONLY)).toEqual({
      version: "v2",
      dir: "/sys/fs/cgroup/user.slice/user-1000.slice/session-2.scope",
    });
  });

  it("uses cgroup v2 when v1 lacks a controller the limits need", () => {
    const memoryOnly = V1_MOUNTS.filter((line) => !line.includes("pids"));
    const procSelfCgroup = ["4:memory:/a", "0::/service.slice"].join("\n");
    expect(cgroupLayout(procSelfCgroup, [...memoryOnly, UNIFIED_BESIDE_V1].join("\n"))).toEqual({
      version: "v2",
      dir: "/sys/fs/cgroup/unified/service.slice",
    });
  });

  it("maps a path through a mount whose root is not / (a container's cgroup namespace bind)", () => {
    const mount = "50 40 0:26 /docker/abc /sys/fs/cgroup rw,relatime - cgroup2 cgroup2 rw";
    expect(cgroupLayout("0::/docker/abc/inner\n", mount)).toEqual({ version: "v2", dir: "/sys/fs/cgroup/inner" });
    expect(cgroupLayout("0::/elsewhere\n", mount).version).toBe("none");
  });

  it("turns limits off, saying why, where neither version is mounted", () => {
    const layout = cgroupLayout("0::/\n", "23 1 0:21 / / rw - ext4 /dev/vda rw");
    expect(layout.version).toBe("none");
    if (layout.version === "none") expect(layout.reason).toMatch(/neither cgroup v1 .* nor a cgroup v2/);
  });
});

describe("the cgroup v2 limiter, on a directory shaped like a delegated subtree", () => {
  let dir = "";
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  async function delegatedSubtree(controllers: string): Promise<string> {
    dir = await mkdtemp(join(tmpdir(), "cgroup-v2-"));
    await writeFile(join(dir, "cgroup.controllers"), `${controllers}\n`);
    await writeFile(join(dir, "cgroup.subtree_control"), "");
    return dir;
  }

  it("enables memory and pids for its children and writes memory.max and pids.max per sandbox", async () => {
    const subtree = await delegatedSubtree("cpuset cpu io memory pids");
    const limiter = await CgroupLimiter.create({ memoryBytes: 256 * 1024 ** 2, maxProcesses: 64 }, `${process.pid}-test`, {
      version: "v2",
      dir: subtree,
    });
    if (typeof limiter === "string") throw new Error(limiter);
    expect(limiter.version).toBe("v2");
    expect(await readFile(join(subtree, "cgroup.subtree_control"), "utf8")).toBe("+memory +pids");
    const base = join(subtree, `artifact-sandbox-${process.pid}-test`);
    expect(await readFile(join(base, "cgroup.subtree_control"), "utf8")).toBe("+memory +pids");
    expect(limiter.prepare("acme.build")).toEqual([join(base, "acme.build", "cgroup.procs")]);
    expect(await readFile(join(base, "acme.build", "memory.max"), "utf8")).toBe(String(256 * 1024 ** 2));
    expect(await readFile(join(base, "acme.build", "pids.max"), "utf8")).toBe("64");
  });

  it("says why limits are off when the subtree does not offer the pids controller", async () => {
    const subtree = await delegatedSubtree("cpu io memory");
    const outcome = await CgroupLimiter.create({ memoryBytes: 1024 ** 3, maxProcesses: 64 }, `${process.pid}-test`, {
      version: "v2",
      dir: subtree,
    });
    expect(outcome).toMatch(/does not offer the pids controller/);
  });

  it("leaves controllers already enabled as they are", async () => {
    const subtree = await delegatedSubtree("memory pids");
    await writeFile(join(subtree, "cgroup.subtree_control"), "memory pids\n");
    const limiter = await CgroupLimiter.create({ memoryBytes: 1024 ** 3, maxProcesses: 64 }, `${process.pid}-test`, {
      version: "v2",
      dir: subtree,
    });
    expect(typeof limiter).not.toBe("string");
    expect(await readFile(join(subtree, "cgroup.subtree_control"), "utf8")).toBe("memory pids\n");
  });
});
