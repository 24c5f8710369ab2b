// Sign up and log in: both answer a token, kept for this tab only.

import { call, keepToken } from "./api.js";
import { field, h, nameInput, notice, run, show } from "./ui.js";

export function authScreen({ screen, message, go }, mode) {
  const signup = mode === "signup";
  const name = nameInput({ name: "user_name", autocomplete: "username" });
  const password = h("input", {
    name: "password", type: "password", required: true, minlength: "8", maxlength: "256",
    autocomplete: signup ? "new-password" : "current-password",
  });
  const submit = h("button", { type: "submit" }, signup ? "Sign up" : "Log in");
  const messages = h("div", { class: "messages" });
  const form = h("form", { class: "card narrow", novalidate: true },
    h("h1", {}, signup ? "Create an account" : "Log in"),
    message && notice(message),
    field("User name", name),
    h("p", { class: "hint" }, "Lowercase letters, digits and single dashes."),
    field("Password", password),
    signup && h("p", { class: "hint" }, "8 to 256 characters."),
    submit,
    messages,
    h("p", {}, signup
      ? ["Have an account? ", h("a", { href: "#/login" }, "Log in")]
      : ["New here? ", h("a", { href: "#/signup" }, "Create an account")]),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (!form.checkValidity()) {
      const bad = [name, password].find((input) => !input.validity.valid);
      show(messages, h("p", { class: "error", role: "alert" },
        bad === name
          ? "The user name must be 1 to 64 lowercase letters, digits or single dashes."
          : "The password must be 8 to 256 characters."));
      bad.focus();
      return;
    }
    run(submit, messages, async () => {
      const answer = await call("POST", signup ? "/users" : "/authentication", {
        body: { user_name: name.value, password: password.value },
      });
      keepToken(answer);
      go("#/networks");
    }, signup
      ? { 409: "This user name is taken.", 400: "The server refused the name or password." }
      : {
        401: "Wrong password.",
        404: "There is no user of that name.",
        429: "Too many failed attempts; wait a few minutes and try again.",
      });
  });
  show(screen, form);
  name.focus();
}
