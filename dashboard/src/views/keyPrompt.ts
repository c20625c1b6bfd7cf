/** Asks for an API key when the API requires one (deployed); the key is kept for this tab only. */
import { el, show } from "../dom";
import { type Access, signIn } from "../session";

export function renderKeyPrompt(root: HTMLElement, rejected: boolean, onSignedIn: (access: Access & { kind: "ok" }) => void): void {
  const input = el("input", {
    type: "password",
    name: "apiKey",
    placeholder: "as_live_…",
    autocomplete: "off",
    required: true,
    "aria-label": "API key",
  });
  const message = el("p", { class: rejected ? "error" : "muted" }, rejected ? "That key was not accepted (mistyped, or revoked)." : "");
  const form = el(
    "form",
    { class: "key-prompt" },
    el("h1", {}, "Sign in with an API key"),
    el("p", {}, "This service requires an API key. It is kept in this tab's session storage only, and sent only to this service."),
    el("label", {}, el("span", {}, "API key"), input),
    el("button", { type: "submit" }, "Open dashboard"),
    message,
    el("p", { class: "muted" }, "Create one with ", el("code", {}, "npm run keys -- create <tenant>"), "."),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    show(message, "Checking…");
    message.className = "muted";
    void signIn(input.value).then(
      (access) => {
        if (access.kind === "ok") onSignedIn(access);
        else {
          message.className = "error";
          show(message, "That key was not accepted (mistyped, or revoked).");
        }
      },
      (error: unknown) => {
        message.className = "error";
        show(message, error instanceof Error ? error.message : String(error));
      },
    );
  });
  show(root, form);
  input.focus();
}
