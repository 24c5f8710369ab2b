// The dashboard's entry: routes of the form #/path?query to their screens, the header,
// and what happens when a session ends.

import { call, forgetToken, onSessionEnded, takeExpired, token } from "./api.js";
import { authScreen } from "./auth.js";
import { networksScreen } from "./networks.js";
import { networkScreen } from "./sensors.js";
import { sensorScreen } from "./sensor.js";
import { errorBox, h, show } from "./ui.js";

const SESSION_ENDED = "Your session has ended (expired or logged out). Log in again.";
const main = document.getElementById("main");
const nav = document.getElementById("nav");
let message = null;
// What the current screen must stop when it is left (timers, charts).
let leave = () => {};

export function go(hash, withMessage = null) {
  message = withMessage;
  if (location.hash === hash) render();
  else location.hash = hash;
}

function parse(hash) {
  const [path, query] = hash.replace(/^#/, "").split("?");
  return { parts: path.split("/").filter(Boolean), query: new URLSearchParams(query || "") };
}

async function render() {
  leave();
  leave = () => {};
  const { parts, query } = parse(location.hash);
  const signedIn = Boolean(token());
  nav.hidden = !signedIn;
  const pending = message || (takeExpired() ? SESSION_ENDED : null);
  message = null;
  if (!signedIn && parts[0] !== "login" && parts[0] !== "signup") {
    go("#/login", pending);
    return;
  }
  const screen = h("div", { class: "screen" });
  show(main, screen);
  const context = { screen, query, message: pending, go };
  try {
    if (parts[0] === "login" || parts[0] === "signup") {
      if (signedIn) return go("#/networks");
      leave = authScreen(context, parts[0]) || leave;
    } else if (parts[0] === "networks" && parts.length === 1) {
      leave = networksScreen(context) || leave;
    } else if (parts[0] === "networks" && parts.length === 2) {
      leave = networkScreen(context, parts[1]) || leave;
    } else if (parts[0] === "networks" && parts[2] === "sensors" && parts.length === 4) {
      leave = sensorScreen(context, parts[1], parts[3]) || leave;
    } else if (parts.length === 0) {
      go("#/networks");
    } else {
      show(screen, h("h1", {}, "Not found"), h("p", {}, "This page does not exist. "),
        h("a", { href: "#/networks" }, "Back to the networks"));
    }
  } catch (error) {
    show(screen, errorBox(error));
  }
  document.title = `${main.querySelector("h1")?.textContent || "Dashboard"} · Sensorium`;
}

onSessionEnded(() => go("#/login", SESSION_ENDED));

const logout = document.getElementById("logout");
logout.addEventListener("click", async () => {
  logout.disabled = true;
  try {
    await call("DELETE", "/authentication");
  } catch {
    // The token may have ended already; either way this tab forgets it.
  } finally {
    logout.disabled = false;
  }
  forgetToken();
  go("#/login", "You are logged out.");
});

window.addEventListener("hashchange", render);
window.addEventListener("unhandledrejection", (event) => {
  // Every action catches its own errors; whatever escapes is shown, not lost.
  event.preventDefault();
  main.prepend(errorBox(event.reason));
});
render();
