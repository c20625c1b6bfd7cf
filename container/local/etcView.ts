/**
 * The sandbox's /etc: a container's view, not the host's. Only configuration that programs need
 * to run (the dynamic linker, alternatives, certificates, name-service and locale files, language
 * runtimes' defaults) is bound read-only from the host; passwd, group, hosts and hostname are
 * generated, and resolv.conf comes with the sandbox's network (network.ts). Host secrets (shadow, ssh host keys, ssl/private) and host-specific files
 * (machine-id, fstab, npmrc, gitconfig, apt sources) are simply absent.
 */
import { existsSync, readdirSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";

/** Host /etc entries bound into every sandbox when they exist (files or whole directories). */
export const HOST_ETC_ENTRIES = [
  "alternatives",
  "bash.bashrc",
  "bindresvport.blacklist",
  "ca-certificates",
  "ca-certificates.conf",
  "debian_version",
  "ethertypes",
  "fonts",
  "gai.conf",
  "host.conf",
  "inputrc",
  "ld.so.cache",
  "ld.so.conf",
  "ld.so.conf.d",
  "locale.alias",
  "localtime",
  "magic",
  "magic.mime",
  "mime.types",
  "netconfig",
  "networks",
  "nsswitch.conf",
  "os-release",
  "perl",
  "profile",
  "profile.d",
  "protocols",
  "rpc",
  "services",
  "sgml",
  "shells",
  "ssl/certs",
  "ssl/openssl.cnf",
  "terminfo",
  "timezone",
  "xml",
] as const;

/** Language runtimes' configuration directories, whose names carry a version. */
const VERSIONED_ETC_ENTRIES = [/^python3(\.\d+)?$/, /^java-\d+-openjdk$/];

/** The one unprivileged account a sandbox's programs may look up besides root. */
export const SANDBOX_USER = { name: "sandbox", uid: 1000 } as const;

const GENERATED_FILES: Record<string, string> = {
  passwd: [
    "root:x:0:0:root:/root:/bin/sh",
    `${SANDBOX_USER.name}:x:${SANDBOX_USER.uid}:${SANDBOX_USER.uid}:sandbox:/workspace:/bin/sh`,
    "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin",
    "",
  ].join("\n"),
  group: ["root:x:0:", `${SANDBOX_USER.name}:x:${SANDBOX_USER.uid}:`, "nogroup:x:65534:", ""].join("\n"),
  hosts: ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback", "127.0.1.1\tsandbox", ""].join("\n"),
  hostname: "sandbox\n",
};

/** Writes the generated /etc files into `dir` (once per host; they are the same for every sandbox). */
export async function writeGeneratedEtc(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o755 });
  for (const [name, content] of Object.entries(GENERATED_FILES)) {
    await writeFile(join(dir, name), content, { mode: 0o644 });
  }
}

/** bubblewrap arguments that build the sandbox's /etc from the allow-list and the generated files. */
export function etcArgs(generatedDir: string, hostEtc = "/etc"): string[] {
  const args = ["--dir", "/etc", "--dir", "/etc/ssl"];
  const versioned = readdirSync(hostEtc).filter((name) => VERSIONED_ETC_ENTRIES.some((pattern) => pattern.test(name)));
  for (const entry of [...HOST_ETC_ENTRIES, ...versioned]) {
    const source = join(hostEtc, entry);
    if (existsSync(source)) args.push("--ro-bind", source, `/etc/${entry}`);
  }
  for (const name of Object.keys(GENERATED_FILES)) args.push("--ro-bind", join(generatedDir, name), `/etc/${name}`);
  args.push("--symlink", "/proc/self/mounts", "/etc/mtab");
  return args;
}
