/** The webhook SSRF guard as deployed (no private destinations): what the URL itself shows is checked. */
import { describe, expect, it } from "vitest";
import { checkDestination } from "../../webhooks/destination";

const refused = (url: string) => checkDestination(url, false).ok === false;

describe("webhook destinations", () => {
  it("takes https URLs to public hosts", () => {
    expect(checkDestination("https://hooks.example.com/ci?team=1", false)).toMatchObject({ ok: true });
    expect(checkDestination("https://203.0.113.7:8443/hook", false)).toMatchObject({ ok: true });
  });

  it("refuses http, credentials and non-URLs deployed", () => {
    for (const url of [
      "http://hooks.example.com/",
      "ftp://example.com/",
      "https://user:pw@example.com/",
      "not a url",
      "https://example.com/#x",
    ]) {
      expect(refused(url), url).toBe(true);
    }
  });

  it("refuses loopback, private, link-local, CGNAT, metadata and internal names, in any spelling", () => {
    const internal = [
      "https://127.0.0.1/",
      "https://2130706433/",
      "https://0x7f.1/",
      "https://0.0.0.0/",
      "https://10.1.2.3/",
      "https://172.20.0.1/",
      "https://192.168.1.1/",
      "https://169.254.169.254/latest/meta-data/",
      "https://100.100.100.200/",
      "https://[::1]/",
      "https://[::ffff:127.0.0.1]/",
      "https://[::ffff:169.254.169.254]/",
      "https://[fd00:ec2::254]/",
      "https://[fe80::1]/",
      "https://localhost/",
      "https://api.localhost/",
      "https://metadata.google.internal/",
      "https://printer.local/",
      "https://intranet/",
    ];
    for (const url of internal) expect(refused(url), url).toBe(true);
  });

  it("lets local receivers through when private destinations are allowed (npm run dev, tests)", () => {
    expect(checkDestination("http://127.0.0.1:9000/hook", true)).toMatchObject({ ok: true });
    expect(checkDestination("ftp://127.0.0.1/", true)).toMatchObject({ ok: false });
  });
});
