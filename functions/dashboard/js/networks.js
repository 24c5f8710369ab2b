// The networks the user may see, and creating one.

import { call } from "./api.js";
import { errorBox, field, h, loading, run, show } from "./ui.js";

export function networksScreen({ screen, go }) {
  const list = h("div", {}, loading("Loading the networks…"));
  const name = h("input", {
    name: "network_name", required: true, maxlength: "64", pattern: "[a-z0-9](-?[a-z0-9])*",
    autocapitalize: "none", spellcheck: "false",
  });
  const submit = h("button", { type: "submit" }, "Create network");
  const messages = h("div", { class: "messages" });
  const form = h("form", { class: "inline-form", novalidate: true },
    field("New network", name), submit, messages);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (!name.checkValidity()) {
      show(messages, h("p", { class: "error", role: "alert" },
        "A name is 1 to 64 lowercase letters, digits or single dashes."));
      name.focus();
      return;
    }
    run(submit, messages, async () => {
      const answer = await call("POST", "/networks", { body: { network_name: name.value } });
      go(`#/networks/${answer.network_identifier}`);
    }, { 409: "A network of this name exists already." });
  });
  show(screen, h("h1", {}, "Networks"), list, h("section", { class: "card" }, form));

  call("GET", "/networks").then((networks) => {
    if (networks.length === 0) {
      show(list, h("p", { class: "empty" }, "No networks yet: create the first one below."));
      return;
    }
    networks.sort((a, b) => a.network_name.localeCompare(b.network_name));
    show(list, h("ul", { class: "links" }, networks.map((network) =>
      h("li", {}, h("a", { href: `#/networks/${network.network_identifier}` },
        network.network_name)))));
  }).catch((error) => show(list, errorBox(error)));
}
