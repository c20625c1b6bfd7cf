/**
 * A real headless browser for the dashboard's tests: the machine's Chromium (Debian's `chromium`)
 * driven by playwright-core, which downloads no browser of its own. Screenshots go to a fresh
 * directory under the OS tmpdir, printed so a person can look at them.
 */
import { existsSync } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Browser, chromium, type Page } from "playwright-core";

/** CHROMIUM_PATH, or where Debian and Ubuntu put the binary; undefined when there is none. */
export function findChromium(): string | undefined {
  return [process.env.CHROMIUM_PATH, "/usr/bin/chromium", "/usr/bin/chromium-browser"].find(
    (path): path is string => path !== undefined && path !== "" && existsSync(path),
  );
}

export function launchChromium(executablePath: string): Promise<Browser> {
  return chromium.launch({ executablePath, headless: true });
}

export class Screenshots {
  private constructor(readonly dir: string) {}

  static async create(prefix: string): Promise<Screenshots> {
    const dir = await mkdtemp(join(tmpdir(), prefix));
    console.log(`dashboard screenshots: ${dir}`);
    return new Screenshots(dir);
  }

  async take(page: Page, name: string): Promise<string> {
    const path = join(this.dir, `${name}.png`);
    await page.screenshot({ path, fullPage: true });
    return path;
  }
}
