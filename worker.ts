export { Sandbox } from "@cloudflare/sandbox";
export default {
  async fetch() { return new Response("ok"); },
  async queue() {},
} satisfies ExportedHandler<Env>;
