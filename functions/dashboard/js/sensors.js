// A network: its overview (measurements per 4-hour bucket over 28 days, one row per
// sensor, so that a silent sensor stands out) and its sensors (create, rename).

import { call, networkName } from "./api.js";
import {
  createForm, errorBox, formatAgo, formatTime, h, loading, nameError, nameInput, onlineMark, run,
  show,
} from "./ui.js";

const BUCKET = 4 * 3600;
const DAYS = 28;
/** How often the sensor list is read again. */
const REFRESH_MILLISECONDS = 15000;

export function networkScreen({ screen, go }, network) {
  const base = `/networks/${encodeURIComponent(network)}`;
  const title = h("h1", {}, "Network");
  const overview = h("div", {}, loading("Loading the overview…"));
  const sensors = h("div", {}, loading("Loading the sensors…"));
  const form = createForm("New sensor", "Create sensor", "sensor_name", async (name) => {
    const answer = await call("POST", `${base}/sensors`, { body: { sensor_name: name } });
    go(`#${base}/sensors/${answer.sensor_identifier}`);
  }, { 409: "This network has a sensor of this name already." });
  show(screen,
    h("p", { class: "crumbs" }, h("a", { href: "#/networks" }, "Networks")),
    title,
    h("section", { class: "card" }, h("h2", {}, "Measurements per 4 hours, last 28 days"), overview),
    h("section", { class: "card" }, h("h2", {}, "Sensors"), sensors, form));

  networkName(network).then((name) => {
    if (name) title.textContent = `Network ${name}`;
  }).catch(() => {
    // The overview and the list report the error in words.
  });
  call("GET", base).then((rows) => show(overview, heatMap(base, rows)))
    .catch((error) => show(overview, errorBox(error, {
      404: "There is no such network.", 403: "You have no permission on this network.",
    })));
  const loadSensors = () => call("GET", `${base}/sensors`)
    .then((rows) => show(sensors, sensorTable(base, rows, loadSensors)))
    .catch((error) => show(sensors, errorBox(error)));
  loadSensors();
  // "Last seen" and online or offline stay current; not while a sensor is being renamed.
  const timer = setInterval(() => {
    if (!sensors.querySelector("form.rename")) loadSensors();
  }, REFRESH_MILLISECONDS);
  return () => clearInterval(timer);
}

function heatMap(base, rows) {
  if (rows.length === 0) return h("p", { class: "empty" }, "No sensors yet.");
  const now = Date.now() / 1000;
  const start = Math.floor((now - DAYS * 86400) / BUCKET) * BUCKET;
  const columns = Math.ceil((now - start) / BUCKET);
  const maximum = Math.max(1, ...rows.flatMap((row) => row.measurement_counts));
  rows.sort((a, b) => a.sensor_name.localeCompare(b.sensor_name));
  const table = h("div", { class: "heatmap" },
    rows.map((row) => {
      const canvas = h("canvas", { width: columns, height: 1, "aria-hidden": "true" });
      const context = canvas.getContext("2d");
      context.fillStyle = "#e5e7eb";
      context.fillRect(0, 0, columns, 1);
      let total = 0;
      row.bucket_timestamps.forEach((bucket, index) => {
        const column = Math.floor((bucket - start) / BUCKET);
        const count = row.measurement_counts[index];
        total += count;
        if (column < 0 || column >= columns) return;
        // Logarithmic: one message in four hours is visible beside thousands.
        const level = Math.log1p(count) / Math.log1p(maximum);
        context.fillStyle = `hsl(205 80% ${Math.round(82 - level * 52)}%)`;
        context.fillRect(column, 0, 1, 1);
      });
      const last = row.bucket_timestamps.at(-1);
      const summary = total === 0
        ? "silent for 28 days"
        : `${total} measurements, newest bucket ${formatTime(last)}`;
      return h("a", {
        class: total === 0 ? "heatrow silent" : "heatrow",
        href: `#${base}/sensors/${row.sensor_identifier}`,
        title: `${row.sensor_name}: ${summary}`,
      }, h("span", { class: "heatname" }, row.sensor_name), canvas,
      h("span", { class: "visually-hidden" }, summary));
    }),
    h("div", { class: "heataxis", "aria-hidden": "true" },
      h("span", {}), h("span", {}, h("span", {}, "28 days ago"), h("span", {}, "now"))),
    h("p", { class: "hint" }, "Darker: more measurements. Grey: none."));
  return table;
}

function sensorTable(base, rows, reload) {
  if (rows.length === 0) return h("p", { class: "empty" }, "No sensors yet: create one below.");
  rows.sort((a, b) => a.sensor_name.localeCompare(b.sensor_name));
  return h("table", { class: "sensors" },
    h("thead", {}, h("tr", {}, h("th", {}, "Name"), h("th", {}, "Last seen"),
      h("th", {}, "State"), h("th", {}, h("span", { class: "visually-hidden" }, "Actions")))),
    h("tbody", {}, rows.map((row) => sensorRow(base, row, reload))));
}

function sensorRow(base, row, reload) {
  const nameCell = h("td", {},
    h("a", { href: `#${base}/sensors/${row.sensor_identifier}` }, row.sensor_name));
  const actions = h("td", {});
  const rename = h("button", { type: "button", class: "secondary" }, "Rename");
  rename.addEventListener("click", () => {
    const input = nameInput({
      value: row.sensor_name, "aria-label": `New name for ${row.sensor_name}`,
    });
    const save = h("button", { type: "submit" }, "Save");
    const cancel = h("button", { type: "button", class: "secondary" }, "Cancel");
    const messages = h("div", { class: "messages" });
    const form = h("form", { class: "rename", novalidate: true }, input, save, cancel, messages);
    cancel.addEventListener("click", () => {
      show(actions, rename);
      rename.focus();
    });
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      if (!input.checkValidity()) {
        show(messages, nameError());
        return;
      }
      run(save, messages, async () => {
        await call("PUT", `${base}/sensors/${row.sensor_identifier}`, {
          body: { sensor_name: input.value },
        });
        await reload();
      }, { 409: "This network has a sensor of this name already." });
    });
    show(actions, form);
    input.focus();
    input.select();
  });
  actions.append(rename);
  return h("tr", {}, nameCell,
    h("td", { title: formatTime(row.last_seen_timestamp) }, formatAgo(row.last_seen_timestamp)),
    h("td", {}, onlineMark(row.last_seen_timestamp)), actions);
}
