// The networks the user may see, and creating one.

import { call } from "./api.js";
import { createForm, errorBox, h, loading, show } from "./ui.js";

export function networksScreen({ screen, go }) {
  const list = h("div", {}, loading("Loading the networks…"));
  const form = createForm("New network", "Create network", "network_name", async (name) => {
    const answer = await call("POST", "/networks", { body: { network_name: name } });
    go(`#/networks/${answer.network_identifier}`);
  }, { 409: "A network of this name exists already." });
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
