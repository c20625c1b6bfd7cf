/**
 * The API reference at `/docs`: public even where keys are required, built from the OpenAPI
 * document. (The pool's SELF calls the Worker's fetch handler directly, without the static assets
 * in front, so the dashboard's page and the asset routing are tested on a real `npm run dev`
 * stack, in test/node/dashboard.test.ts.)
 */
import { describe, expect, it } from "vitest";
import { deployed } from "./access/tenants";
import { api } from "./client";

describe("the API reference at /docs", () => {
  it("serves Swagger UI at /docs, without a key where keys are required, reading /v1/openapi.json with its scripts from this origin", async () => {
    const response = await deployed("/docs");
    expect(response.status).toBe(200);
    const page = await response.text();
    expect(page).toContain("url: '/v1/openapi.json'");
    expect(page).toContain('<script src="/generated/swagger-ui-dist/swagger-ui-bundle.js"');
    expect(page).toContain('<link rel="stylesheet" href="/generated/swagger-ui-dist/swagger-ui.css" />');
  });

  it("declares bearer API keys in the OpenAPI document, so the reference can send one", async () => {
    const doc = await (await api("/v1/openapi.json")).json<{ components: { securitySchemes: unknown }; security: unknown }>();
    expect(doc.components.securitySchemes).toEqual({ apiKey: expect.objectContaining({ type: "http", scheme: "bearer" }) });
    expect(doc.security).toEqual([{ apiKey: [] }]);
  });
});
