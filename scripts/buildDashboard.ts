/**
 * Builds the generated part of the dashboard's static assets (dashboard/public, served by the
 * Worker: wrangler.jsonc `assets`): the browser bundle of dashboard/src, and Swagger UI's files
 * for /docs, served from this origin so the docs need no CDN. Wrangler runs it (`build.command`)
 * before `wrangler dev`, `npm run dev`, `wrangler deploy` and `wrangler types`.
 */
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { build } from "esbuild";

/** Generated, never committed; the path /generated/... in the browser. */
const GENERATED_DIR = "dashboard/public/generated";
const SWAGGER_UI_FILES = ["swagger-ui-bundle.js", "swagger-ui.css"];

/** Written whole, then renamed into place: stacks starting side by side (the tests) never serve half a file. */
async function writeAtomically(path: string, contents: Uint8Array): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const partial = `${path}.${process.pid}.partial`;
  await writeFile(partial, contents);
  await rename(partial, path);
}

async function main(): Promise<void> {
  const bundle = await build({
    entryPoints: ["dashboard/src/main.ts"],
    bundle: true,
    format: "esm",
    target: "es2022",
    minify: true,
    sourcemap: "linked",
    outfile: join(GENERATED_DIR, "dashboard.js"),
    write: false,
    logLevel: "warning",
  });
  for (const file of bundle.outputFiles) await writeAtomically(file.path, file.contents);
  // @hono/swagger-ui asks for {baseUrl}/swagger-ui-dist/{file} (api/app.ts sets baseUrl).
  const swaggerDir = dirname(createRequire(import.meta.url).resolve("swagger-ui-dist/package.json"));
  for (const file of SWAGGER_UI_FILES) {
    await writeAtomically(join(GENERATED_DIR, "swagger-ui-dist", file), await readFile(join(swaggerDir, file)));
  }
}

await main();
