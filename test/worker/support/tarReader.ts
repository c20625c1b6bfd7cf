/**
 * Reads a .tar.gz the way `tar -x` would, independently of the library that wrote it:
 * DecompressionStream, then the 512-byte ustar headers, with the ustar name prefix and PAX
 * `path` records for long names. Test archives are small, so it reads the whole of one.
 */
import { sha256Hex } from "../client";

export interface TarEntry {
  name: string;
  /** The header's type flag: "0" for a regular file. */
  type: string;
  size: number;
  mode: number;
  mtime: number;
  sha256: string;
}

const BLOCK = 512;

function field(block: Uint8Array, offset: number, length: number): string {
  const bytes = block.subarray(offset, offset + length);
  const end = bytes.indexOf(0);
  return new TextDecoder().decode(end === -1 ? bytes : bytes.subarray(0, end));
}

function octal(block: Uint8Array, offset: number, length: number): number {
  return Number.parseInt(field(block, offset, length).trim() || "0", 8);
}

/** PAX records are `<length> <key>=<value>\n`; only `path` matters for these archives. */
function paxPath(body: Uint8Array): string | undefined {
  for (const record of new TextDecoder().decode(body).split("\n")) {
    const match = /^\d+ path=(.*)$/.exec(record);
    if (match) return match[1];
  }
  return undefined;
}

function checksumOk(block: Uint8Array): boolean {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : (block[i] ?? 0);
  return sum === octal(block, 148, 8);
}

export async function readTarGz(body: ReadableStream<Uint8Array>): Promise<{ entries: TarEntry[]; tarBytes: number }> {
  const tar = new Uint8Array(await new Response(body.pipeThrough(new DecompressionStream("gzip"))).arrayBuffer());
  const entries: TarEntry[] = [];
  let offset = 0;
  let pendingPath: string | undefined;
  for (;;) {
    const header = tar.subarray(offset, offset + BLOCK);
    if (header.length < BLOCK) throw new Error("the archive ends without its two zero blocks");
    if (header.every((byte) => byte === 0)) break;
    if (!checksumOk(header)) throw new Error(`bad header checksum at byte ${offset}`);
    if (field(header, 257, 6) !== "ustar") throw new Error(`not a ustar header at byte ${offset}`);
    const size = octal(header, 124, 12);
    const type = field(header, 156, 1) || "0";
    const data = tar.subarray(offset + BLOCK, offset + BLOCK + size);
    offset += BLOCK + Math.ceil(size / BLOCK) * BLOCK;
    if (type === "x") {
      pendingPath = paxPath(data);
      continue;
    }
    const prefix = field(header, 345, 155);
    const name = field(header, 0, 100);
    entries.push({
      name: pendingPath ?? (prefix ? `${prefix}/${name}` : name),
      type,
      size,
      mode: octal(header, 100, 8),
      mtime: octal(header, 136, 12),
      sha256: await sha256Hex(data),
    });
    pendingPath = undefined;
  }
  if (!tar.subarray(offset, offset + 2 * BLOCK).every((byte) => byte === 0) || tar.length < offset + 2 * BLOCK) {
    throw new Error("the archive does not end with two zero blocks");
  }
  return { entries, tarBytes: tar.length };
}
