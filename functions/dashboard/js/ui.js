// Small DOM helpers, and how times and errors are put into words.

/** An element: h("a", {href: "#/", class: "x", onclick: f}, "text", child, ...). */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (name === "class") element.className = value;
    else if (name === "text") element.textContent = value;
    else if (value === true) element.setAttribute(name, "");
    else element.setAttribute(name, value);
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : String(child));
  }
}

/** Replaces what `element` holds. */
export function show(element, ...children) {
  element.replaceChildren();
  append(element, children);
  return element;
}

export function loading(text = "Loading…") {
  return h("p", { class: "loading", role: "status", "aria-busy": "true" }, text);
}

/** An error in words: the server's reason, and what it means for this action. */
export function describe(error, meanings = {}) {
  if (error && error.status === 0) {
    return "The server could not be reached. Check the connection and try again.";
  }
  if (error && typeof error.status === "number") {
    const meaning = meanings[error.status];
    return meaning
      ? `${meaning} (${error.details})`
      : `The server answered ${error.status}: ${error.details}.`;
  }
  return `Something went wrong: ${error && error.message ? error.message : error}`;
}

export function errorBox(error, meanings) {
  return h("p", { class: "error", role: "alert" }, describe(error, meanings));
}

export function notice(text) {
  return h("p", { class: "notice", role: "status" }, text);
}

/**
 * Runs `action` with `button` disabled and `messages` showing progress, then an error
 * in words if it failed. Never rejects.
 */
export async function run(button, messages, action, meanings) {
  button.disabled = true;
  const progress = loading("Working…");
  show(messages, progress);
  try {
    await action();
    // What the action said itself stays; only the progress goes.
    if (messages.contains(progress)) show(messages);
  } catch (error) {
    show(messages, errorBox(error, meanings));
  } finally {
    button.disabled = false;
  }
}

const dateTime = new Intl.DateTimeFormat(undefined, {
  year: "numeric",
  month: "short",
  day: "numeric",
  hour: "2-digit",
  minute: "2-digit",
  second: "2-digit",
});

export function formatTime(timestamp) {
  return timestamp === null || timestamp === undefined
    ? "never"
    : dateTime.format(new Date(timestamp * 1000));
}

export function formatAgo(timestamp, now = Date.now() / 1000) {
  if (timestamp === null || timestamp === undefined) return "never";
  const seconds = Math.max(0, Math.round(now - timestamp));
  if (seconds < 60) return `${seconds} s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ago`;
  return `${Math.floor(seconds / 86400)} d ago`;
}

/** A sensor heard from within this many seconds counts as online. */
export const ONLINE_WITHIN = 10 * 60;

export function onlineMark(lastSeen, now = Date.now() / 1000) {
  const online = lastSeen !== null && lastSeen !== undefined && now - lastSeen <= ONLINE_WITHIN;
  return h(
    "span",
    { class: online ? "mark online" : "mark offline" },
    online ? "online" : "offline",
  );
}

/** `<label>` with its control, for forms. */
export function field(label, control) {
  return h("label", { class: "field" }, h("span", {}, label), control);
}

/** An input for a user, network or sensor name, with the API's rule. */
export function nameInput(attributes = {}) {
  return h("input", {
    required: true, maxlength: "64", pattern: "[a-z0-9](-?[a-z0-9])*",
    autocapitalize: "none", spellcheck: "false", ...attributes,
  });
}

export function nameError() {
  return h("p", { class: "error", role: "alert" },
    "A name is 1 to 64 lowercase letters, digits or single dashes.");
}

/**
 * A form that creates something from a name: `create(name)` runs when the name is
 * valid; its errors are shown in words with `meanings`.
 */
export function createForm(label, buttonLabel, inputName, create, meanings) {
  const name = nameInput({ name: inputName });
  const submit = h("button", { type: "submit" }, buttonLabel);
  const messages = h("div", { class: "messages" });
  const form = h("form", { class: "inline-form", novalidate: true },
    field(label, name), submit, messages);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (!name.checkValidity()) {
      show(messages, nameError());
      name.focus();
      return;
    }
    run(submit, messages, () => create(name.value), meanings);
  });
  return form;
}
