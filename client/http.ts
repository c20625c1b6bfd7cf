/**
 * One HTTP exchange with the API: the base URL and key applied, transport failures turned into
 * ConnectionError, error answers into ApiError, and JSON answers parsed with the API's schemas.
 * Only fetch and web streams: it runs in Node 20 and in a Worker alike.
 */
import type { z } from "zod";
import { ApiError, ConnectionError, UnexpectedResponseError } from "./errors";

export interface ClientOptions {
  /** The service, e.g. http://localhost:8787. */
  baseUrl: string;
  /** Sent as `Authorization: Bearer {apiKey}`; a local `npm run dev` needs none. */
  apiKey?: string;
  /** Another fetch (a Worker's service binding, a test's). */
  fetch?: typeof fetch;
}

export class Http {
  readonly baseUrl: string;
  private readonly apiKey: string | undefined;
  private readonly fetcher: typeof fetch;

  constructor(options: ClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, "");
    this.apiKey = options.apiKey || undefined;
    this.fetcher = options.fetch ?? ((input, init) => fetch(input, init));
  }

  /** An absolute URL for an API path; absolute URLs (signed download links) pass through. */
  url(pathOrUrl: string): string {
    return /^https?:\/\//.test(pathOrUrl) ? pathOrUrl : `${this.baseUrl}${pathOrUrl}`;
  }

  /** The raw answer of a request, thrown as ApiError unless it is a success. */
  async send(pathOrUrl: string, init: RequestInit = {}, what = `${init.method ?? "GET"} ${pathOrUrl}`): Promise<Response> {
    const url = this.url(pathOrUrl);
    const headers = new Headers(init.headers);
    // The key goes only to this service, never to a presigned R2 URL on another origin.
    if (this.apiKey && url.startsWith(this.baseUrl) && !headers.has("authorization")) headers.set("authorization", `Bearer ${this.apiKey}`);
    let response: Response;
    try {
      response = await this.fetcher(url, { ...init, headers });
    } catch (error) {
      if (init.signal?.aborted) throw error;
      throw new ConnectionError(url, error);
    }
    if (!response.ok) throw await ApiError.fromResponse(response, what);
    return response;
  }

  /** A JSON answer parsed with `schema`: an API change the client does not know fails loudly here. */
  async json<T extends z.ZodType>(schema: T, pathOrUrl: string, init: RequestInit = {}): Promise<z.output<T>> {
    const what = `${init.method ?? "GET"} ${pathOrUrl}`;
    const response = await this.send(pathOrUrl, init, what);
    const text = await response.text();
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      throw new UnexpectedResponseError(what, `not JSON: ${text.slice(0, 200)}`);
    }
    const parsed = schema.safeParse(body);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new UnexpectedResponseError(what, issue ? `${issue.path.join(".")}: ${issue.message}` : "invalid");
    }
    return parsed.data;
  }
}
