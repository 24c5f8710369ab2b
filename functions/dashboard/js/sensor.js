// A sensor: its status, charts of its measurements with the newest values, its logs,
// configurations and credentials, and exports of the chosen range.

import { call, download, networkName, sensorPath } from "./api.js";
import { drawCharts, loadSeries } from "./chart.js";
import {
  describe, errorBox, field, formatAgo, formatTime, h, loading, notice, onlineMark, run, show,
} from "./ui.js";

/** How often the status, the newest values, logs and configurations are read again. */
const REFRESH_MILLISECONDS = 5000;
const RANGES = [
  ["hour", "Last hour", 3600],
  ["day", "Last day", 86400],
  ["week", "Last week", 7 * 86400],
  ["28d", "Last 28 days", 28 * 86400],
  ["custom", "Custom…", null],
];
/** What the server accepts as a configuration (AWS IoT Core carries 128 KB a message). */
const CONFIGURATION_LIMIT = 100 * 1024;

export function sensorScreen({ screen, query }, network, sensor) {
  performance.clearMarks("sensor:start");
  performance.clearMeasures("sensor:render");
  performance.mark("sensor:start");
  const path = sensorPath(network, sensor);
  const networkHash = `#/networks/${network}`;
  const stops = [];
  let removeCharts = () => {};
  let lastStatus = null;

  const title = h("h1", {}, "Sensor");
  const networkLink = h("a", { href: networkHash }, "Network");
  networkName(network).then((name) => {
    if (name) networkLink.textContent = `Network ${name}`;
  }).catch(() => {
    // The status says what went wrong, in words.
  });
  const status = h("div", {}, loading("Loading the status…"));
  const latest = h("div", { class: "latest", "aria-live": "polite" }, loading("Loading the newest values…"));
  const charts = h("div", { class: "charts" });
  const chartMessages = h("div", { class: "messages" });
  const exportMessages = h("div", { class: "messages" });
  const logs = logsSection(path);
  const aggregates = h("div", {}, loading("Loading the log summary…"));
  const configurations = configurationsSection(path, () => refreshStatus());
  const credentials = credentialsSection(path, () => lastStatus, () => refreshStatus());

  // The range: from the address, so that a reload or a shared link keeps it.
  let range = RANGES.some(([key]) => key === query.get("range")) ? query.get("range") : "day";
  let custom = { from: Number(query.get("from")) || null, to: Number(query.get("to")) || null };
  const picker = h("select", { "aria-label": "Range" },
    RANGES.map(([key, label]) => h("option", { value: key, selected: key === range }, label)));
  const customFrom = h("input", { type: "datetime-local", "aria-label": "From" });
  const customTo = h("input", { type: "datetime-local", "aria-label": "To" });
  const apply = h("button", { type: "submit" }, "Show");
  const customForm = h("form", { class: "inline-form custom-range", hidden: range !== "custom" },
    field("From", customFrom), field("To", customTo), apply);

  function bounds() {
    const now = Math.ceil(Date.now() / 1000);
    if (range === "custom" && custom.from !== null && custom.to !== null) return custom;
    const seconds = (RANGES.find(([key]) => key === range) || RANGES[1])[2] || 86400;
    return { from: now - seconds, to: now };
  }

  function remember() {
    const search = new URLSearchParams({ range });
    if (range === "custom") {
      search.set("from", custom.from);
      search.set("to", custom.to);
    }
    history.replaceState(null, "", `#${path}?${search}`);
  }

  async function drawRange() {
    const { from, to } = bounds();
    removeCharts();
    removeCharts = () => {};
    show(chartMessages);
    show(charts, loading("Loading the measurements…"));
    try {
      const series = await loadSeries(path, from, to, charts.clientWidth || 600);
      show(charts);
      if (series.note) show(chartMessages, notice(series.note));
      if (Object.keys(series.attributes).length === 0) {
        show(charts, h("p", { class: "empty" }, "No measurements in this range."));
      } else {
        removeCharts = drawCharts(charts, series, (zoomFrom, zoomTo) => {
          range = "custom";
          custom = { from: zoomFrom, to: Math.max(zoomTo, zoomFrom + 60) };
          picker.value = "custom";
          setCustomInputs();
          customForm.hidden = false;
          remember();
          drawRange();
        });
        charts.dataset.mode = series.mode;
        charts.dataset.interval = series.interval ?? "";
      }
    } catch (error) {
      show(charts, errorBox(error));
    }
    // Drawn once the browser has laid the charts out: what the page's figure measures.
    await new Promise((resolve) => requestAnimationFrame(() => resolve()));
    performance.clearMeasures("sensor:render");
    performance.measure("sensor:render", "sensor:start");
    charts.dataset.rendered = "true";
  }

  function toLocalInput(timestamp) {
    const date = new Date(timestamp * 1000);
    date.setMinutes(date.getMinutes() - date.getTimezoneOffset());
    return date.toISOString().slice(0, 16);
  }

  function setCustomInputs() {
    const { from, to } = bounds();
    customFrom.value = toLocalInput(from);
    customTo.value = toLocalInput(to);
  }

  picker.addEventListener("change", () => {
    range = picker.value;
    customForm.hidden = range !== "custom";
    if (range === "custom") {
      if (custom.from === null) custom = bounds();
      setCustomInputs();
      customFrom.focus();
      return;
    }
    remember();
    performance.mark("sensor:start");
    drawRange();
  });
  customForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const from = Math.floor(new Date(customFrom.value).getTime() / 1000);
    const to = Math.floor(new Date(customTo.value).getTime() / 1000);
    if (!Number.isFinite(from) || !Number.isFinite(to) || from >= to) {
      show(chartMessages, h("p", { class: "error", role: "alert" },
        "Choose a start before the end."));
      return;
    }
    custom = { from, to };
    remember();
    performance.mark("sensor:start");
    drawRange();
  });
  if (range === "custom") setCustomInputs();

  const exportButtons = [
    ["measurements", "csv", "Measurements CSV"],
    ["measurements", "ndjson", "Measurements NDJSON"],
    ["logs", "csv", "Logs CSV"],
    ["logs", "ndjson", "Logs NDJSON"],
  ].map(([kind, format, label]) => {
    const button = h("button", { type: "button", class: "secondary" }, label);
    button.addEventListener("click", () => run(button, exportMessages, async () => {
      const { from, to } = bounds();
      const blob = await download(`${path}/${kind}/export`, { from, to, format });
      const link = h("a", {
        href: URL.createObjectURL(blob),
        download: `${lastStatus ? lastStatus.sensor_name : sensor}-${kind}-${from}-${to}.${format}`,
      });
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(link.href), 10000);
    }, { 404: "The sensor was not found: it may have been deleted." }));
    return button;
  });

  show(screen,
    h("p", { class: "crumbs" }, h("a", { href: "#/networks" }, "Networks"), " › ", networkLink),
    title,
    h("div", { class: "columns" },
      h("section", { class: "card" }, h("h2", {}, "Status"), status),
      h("section", { class: "card" }, h("h2", {}, "Newest values"), latest)),
    h("section", { class: "card", id: "measurements" },
      h("div", { class: "section-head" }, h("h2", {}, "Measurements"),
        h("div", { class: "tools" }, picker)),
      customForm,
      h("p", { class: "hint" }, "Drag across a chart to zoom into that stretch."),
      chartMessages, charts,
      h("div", { class: "exports" }, h("span", {}, "Export the range:"), exportButtons),
      exportMessages),
    h("section", { class: "card", id: "logs" }, h("h2", {}, "Logs"), logs.element),
    h("section", { class: "card" }, h("h2", {}, "Warnings and errors by subject"), aggregates),
    h("section", { class: "card", id: "configurations" }, h("h2", {}, "Configurations"),
      configurations.element),
    h("section", { class: "card", id: "credentials" }, h("h2", {}, "Broker credentials"),
      credentials.element));

  async function refreshStatus() {
    try {
      const answer = await call("GET", path);
      lastStatus = answer;
      title.textContent = `Sensor ${answer.sensor_name}`;
      document.title = `Sensor ${answer.sensor_name} · Sensorium`;
      show(status, statusList(answer));
      credentials.update(answer);
    } catch (error) {
      show(status, errorBox(error, {
        404: "There is no such sensor in this network.",
        403: "You have no permission on this network.",
      }));
    }
  }

  async function refreshLatest() {
    try {
      const page = await call("GET", `${path}/measurements`, { query: { direction: "previous" } });
      show(latest, newestValues(page));
    } catch (error) {
      show(latest, errorBox(error));
    }
  }

  async function refreshAggregates() {
    try {
      show(aggregates, aggregatesTable(await call("GET", `${path}/logs/aggregates`)));
    } catch (error) {
      show(aggregates, errorBox(error));
    }
  }

  let polling = false;
  async function poll() {
    if (polling) return;
    polling = true;
    try {
      await Promise.all([refreshStatus(), refreshLatest(), logs.refresh(),
        configurations.refresh(), refreshAggregates()]);
    } finally {
      polling = false;
    }
  }

  poll();
  drawRange();
  const timer = setInterval(poll, REFRESH_MILLISECONDS);
  stops.push(() => clearInterval(timer));
  return () => {
    stops.forEach((stop) => stop());
    removeCharts();
  };
}

function statusList(status) {
  const row = (label, value) => [h("dt", {}, label), h("dd", {}, value)];
  const revision = (value) => (value === null ? "none" : String(value));
  return h("dl", { class: "status" },
    row("Name", status.sensor_name),
    row("Identifier", h("code", {}, status.sensor_identifier)),
    row("State", onlineMark(status.last_seen_timestamp)),
    row("Last seen", status.last_seen_timestamp === null ? "never"
      : `${formatAgo(status.last_seen_timestamp)} (${formatTime(status.last_seen_timestamp)})`),
    row("Created", formatTime(status.creation_timestamp)),
    row("Latest configuration", revision(status.latest_revision)),
    row("Acknowledged configuration", revision(status.acknowledged_revision)),
    row("Credentials issued", status.credentials_timestamp === null ? "none"
      : formatTime(status.credentials_timestamp)));
}

function newestValues(page) {
  const newest = page.at(-1);
  if (!newest) return h("p", { class: "empty" }, "No measurements yet.");
  return [
    h("p", { class: "hint" }, `At ${formatTime(newest.creation_timestamp)} ` +
      `(${formatAgo(newest.creation_timestamp)}), refreshed every ${REFRESH_MILLISECONDS / 1000} s`),
    h("dl", { class: "values" }, Object.entries(newest.value).sort().map(([name, value]) =>
      [h("dt", {}, name), h("dd", { title: String(value) }, formatValue(value))])),
  ];
}

/** A value with at most 6 significant digits, as a reading is shown. */
function formatValue(value) {
  return Math.abs(value) >= 1e6 || (value !== 0 && Math.abs(value) < 1e-3)
    ? value.toPrecision(6)
    : String(Number(value.toPrecision(6)));
}

function aggregatesTable(rows) {
  if (rows.length === 0) return h("p", { class: "empty" }, "No warnings or errors.");
  return h("div", { class: "scroll" }, h("table", {},
    h("thead", {}, h("tr", {}, ["Severity", "Subject", "Count", "Revisions", "First", "Last"]
      .map((label) => h("th", {}, label)))),
    h("tbody", {}, rows.slice().reverse().map((row) => h("tr", {},
      h("td", {}, h("span", { class: `severity ${row.severity}` }, row.severity)),
      h("td", {}, row.subject),
      h("td", { class: "number" }, String(row.count)),
      h("td", {}, row.min_revision === row.max_revision ? String(row.min_revision ?? "–")
        : `${row.min_revision ?? "–"} to ${row.max_revision ?? "–"}`),
      h("td", {}, formatTime(row.min_creation_timestamp)),
      h("td", {}, formatTime(row.max_creation_timestamp)))))));
}

/** The logs, a page at a time (newest first on screen), with a severity filter. */
function logsSection(path) {
  const body = h("div", {}, loading("Loading the logs…"));
  const messages = h("div", { class: "messages" });
  const severity = h("select", { "aria-label": "Severity" },
    [["all", "All severities"], ["info", "Info"], ["warning", "Warning"], ["error", "Error"]]
      .map(([value, label]) => h("option", { value }, label)));
  const older = h("button", { type: "button", class: "secondary" }, "Older");
  const newer = h("button", { type: "button", class: "secondary" }, "Newer");
  const newest = h("button", { type: "button", class: "secondary" }, "Newest");
  // The query of the page shown; the newest page is refreshed with the others.
  let page = [];
  let shownQuery = { direction: "previous" };
  let shownText = null;

  function render() {
    const chosen = severity.value;
    const rows = page.filter((log) => chosen === "all" || log.severity === chosen).reverse();
    older.disabled = page.length === 0;
    newer.disabled = page.length === 0 || shownQuery.creation_timestamp === undefined;
    if (page.length === 0) {
      show(body, h("p", { class: "empty" }, "No logs."));
      return;
    }
    show(body,
      h("p", { class: "hint" }, `${page.length} logs from ${formatTime(page[0].creation_timestamp)} ` +
        `to ${formatTime(page.at(-1).creation_timestamp)}` +
        (chosen === "all" ? "" : `, ${rows.length} of them ${chosen}`)),
      rows.length === 0 ? h("p", { class: "empty" }, `No ${chosen} logs on this page.`)
        : h("div", { class: "scroll" }, h("table", { class: "logs" },
          h("thead", {}, h("tr", {}, ["Time", "Severity", "Subject", "Details", "Revision"]
            .map((label) => h("th", {}, label)))),
          h("tbody", {}, rows.map((log) => h("tr", {},
            h("td", { class: "time" }, formatTime(log.creation_timestamp)),
            h("td", {}, h("span", { class: `severity ${log.severity}` }, log.severity)),
            h("td", {}, log.subject),
            h("td", { class: "details" }, log.details ?? ""),
            h("td", { class: "number" }, log.revision ?? "")))))));
  }

  async function load(query, button) {
    const answer = await call("GET", `${path}/logs`, { query });
    if (answer.length === 0 && query.creation_timestamp !== undefined) {
      show(messages, notice(query.direction === "next" ? "No newer logs." : "No older logs."));
      return;
    }
    show(messages);
    page = answer;
    shownQuery = query;
    const text = JSON.stringify(answer);
    if (text !== shownText || button) {
      shownText = text;
      render();
    }
  }

  const go = (button, query) => run(button, messages, () => load(query, button));
  older.addEventListener("click", () =>
    go(older, { direction: "previous", creation_timestamp: page[0].creation_timestamp }));
  newer.addEventListener("click", () =>
    go(newer, { direction: "next", creation_timestamp: page.at(-1).creation_timestamp }));
  newest.addEventListener("click", () => go(newest, { direction: "previous" }));
  severity.addEventListener("change", render);

  return {
    element: h("div", {},
      h("div", { class: "tools" }, field("Severity", severity), older, newer, newest),
      messages, body),
    async refresh() {
      if (shownQuery.creation_timestamp !== undefined) return;
      try {
        await load({ direction: "previous" });
      } catch (error) {
        show(body, errorBox(error));
      }
    },
  };
}

/** Whether `text` is a configuration the server takes; null when it is, else why not. */
export function configurationProblem(text) {
  if (new TextEncoder().encode(text).length > CONFIGURATION_LIMIT) {
    return "A configuration may have at most 100 KiB.";
  }
  let value;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return `This is not JSON: ${error.message}`;
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    return "A configuration is a JSON object, { … }.";
  }
  if (/\\u0000|\u0000/.test(text)) return "A configuration may not hold the character U+0000.";
  return null;
}

function configurationsSection(path, changed) {
  const list = h("div", {}, loading("Loading the configurations…"));
  const editor = h("textarea", {
    rows: "8", spellcheck: "false", "aria-label": "New configuration (JSON)",
    "aria-describedby": "configuration-check",
  }, "{}");
  const check = h("p", { id: "configuration-check", class: "hint", "aria-live": "polite" });
  const send = h("button", { type: "submit" }, "Send configuration");
  const messages = h("div", { class: "messages" });
  const form = h("form", { class: "editor" },
    h("h3", {}, "New configuration"), editor, check, send, messages);
  let shownText = null;
  let edited = false;

  function validate() {
    const problem = configurationProblem(editor.value);
    check.className = problem ? "hint error" : "hint ok";
    check.textContent = problem || "A valid JSON object.";
    send.disabled = problem !== null;
    return problem;
  }
  editor.addEventListener("input", () => {
    edited = true;
    validate();
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (validate()) {
      editor.focus();
      return;
    }
    run(send, messages, async () => {
      const answer = await call("POST", `${path}/configurations`, {
        body: JSON.parse(editor.value),
      });
      await refresh(true);
      show(messages, notice(`Sent as revision ${answer.revision}; it is published to the ` +
        "sensor and acknowledged by its next heartbeat."));
      changed();
    }, { 413: "The configuration is too large." });
  });
  validate();

  async function refresh(force = false) {
    try {
      const page = await call("GET", `${path}/configurations`, { query: { direction: "previous" } });
      const text = JSON.stringify(page);
      if (text === shownText && !force) return;
      shownText = text;
      if (!edited && page.length > 0) {
        editor.value = JSON.stringify(page.at(-1).value, null, 2);
        validate();
      }
      show(list, configurationsTable(page));
    } catch (error) {
      show(list, errorBox(error));
    }
  }

  return { element: h("div", {}, list, form), refresh: () => refresh() };
}

function configurationsTable(page) {
  if (page.length === 0) return h("p", { class: "empty" }, "No configurations yet.");
  const acknowledgement = (row) => {
    if (row.receipt_timestamp === null) return h("span", { class: "state waiting" }, "not yet");
    return h("span", { class: row.success ? "state good" : "state bad" },
      `${row.success ? "acknowledged" : "failed"} at ${formatTime(row.acknowledgement_timestamp)}`);
  };
  return h("div", { class: "scroll" }, h("table", { class: "configurations" },
    h("thead", {}, h("tr", {}, ["Revision", "Created", "Published", "Acknowledgement", "Value"]
      .map((label) => h("th", {}, label)))),
    h("tbody", {}, page.slice().reverse().map((row) => h("tr", { "data-revision": row.revision },
      h("td", { class: "number" }, String(row.revision)),
      h("td", {}, formatTime(row.creation_timestamp)),
      h("td", {}, row.publication_timestamp === null
        ? h("span", { class: "state waiting" }, "waiting") : formatTime(row.publication_timestamp)),
      h("td", {}, acknowledgement(row)),
      h("td", {}, h("details", {}, h("summary", {}, "JSON"),
        h("pre", {}, JSON.stringify(row.value, null, 2)))))))));
}

/** Shell quoting: the value inside single quotes. */
const quote = (value) => `'${String(value).replaceAll("'", "'\\''")}'`;

function credentialsSection(path, currentStatus, changed) {
  const state = h("p", {}, loading("Loading…"));
  const actions = h("div", { class: "tools" });
  const messages = h("div", { class: "messages" });
  const secret = h("div", {});
  let issued = null;

  function confirmThen(label, question, action) {
    const button = h("button", { type: "button", class: label === "Revoke" ? "danger" : "" }, label);
    button.addEventListener("click", () => {
      const yes = h("button", { type: "button", class: "danger" }, `Yes, ${label.toLowerCase()}`);
      const no = h("button", { type: "button", class: "secondary" }, "Cancel");
      no.addEventListener("click", () => {
        update(currentStatus(), true);
      });
      yes.addEventListener("click", () => run(yes, messages, action, {
        501: "This deployment's broker does not manage credentials.",
      }));
      show(actions, h("span", {}, question), yes, no);
      no.focus();
    });
    return button;
  }

  async function issue() {
    issued = await call("POST", `${path}/credentials`);
    showSecret();
    changed();
  }

  async function revoke() {
    await call("DELETE", `${path}/credentials`);
    issued = null;
    show(secret, notice("The credentials are revoked; the sensor's connection is closed."));
    changed();
  }

  // Re-drawn only when the credentials changed, so a refresh never closes a question.
  let shownTimestamp;
  function update(status, force = false) {
    if (!status || (!force && status.credentials_timestamp === shownTimestamp)) return;
    shownTimestamp = status.credentials_timestamp;
    const has = status.credentials_timestamp !== null;
    show(state, has ? `Issued ${formatTime(status.credentials_timestamp)}.` : "None issued.");
    if (!has) {
      const button = h("button", { type: "button" }, "Issue credentials");
      button.addEventListener("click", () => run(button, messages, issue, {
        501: "This deployment's broker does not manage credentials.",
      }));
      show(actions, button);
    } else {
      show(actions,
        confirmThen("Replace", "The current credentials stop working at once. Replace them?", issue),
        confirmThen("Revoke", "The sensor will be disconnected. Revoke its credentials?", revoke));
    }
  }

  function showSecret() {
    const host = h("input", { value: localStorage.getItem("sensorium.broker-host") || location.hostname });
    const port = h("input", {
      type: "number", min: "1", max: "65535", class: "port",
      value: localStorage.getItem("sensorium.broker-port") || (issued.kind === "password" ? "1883" : "8883"),
    });
    const line = h("pre", { class: "command" });
    const render = () => {
      localStorage.setItem("sensorium.broker-host", host.value);
      localStorage.setItem("sensorium.broker-port", port.value);
      line.textContent = publishLine(issued, host.value, port.value);
    };
    host.addEventListener("input", render);
    port.addEventListener("input", render);
    render();
    const fields = issued.kind === "password"
      ? [["Client identifier", issued.client_identifier], ["User name", issued.user_name],
        ["Password", issued.password]]
      : [["Client identifier", issued.client_identifier],
        ["Certificate identifier", issued.certificate_identifier],
        ["Certificate (PEM)", issued.certificate_pem], ["Private key (PEM)", issued.private_key_pem]];
    show(secret, h("div", { class: "secret" },
      h("p", { class: "warning", role: "alert" },
        "Shown once: the server keeps no copy. Copy it now."),
      h("dl", { class: "status" }, fields.map(([label, value]) => [
        h("dt", {}, label), h("dd", {}, h("pre", { class: "value" }, value), copyButton(label, value)),
      ])),
      h("h3", {}, "Publish a test measurement"),
      h("div", { class: "inline-form" }, field("Broker host", host), field("Port", port)),
      line, copyButton("command", () => line.textContent),
      issued.kind === "certificate" && h("p", { class: "hint" },
        "Save the certificate as sensor.pem.crt and the key as sensor.pem.key, with Amazon's root CA as AmazonRootCA1.pem.")));
  }

  return {
    element: h("div", {}, state, actions, messages, secret),
    update,
  };
}

function copyButton(label, value) {
  const button = h("button", { type: "button", class: "secondary copy" }, "Copy");
  button.setAttribute("aria-label", `Copy the ${label.toLowerCase()}`);
  button.addEventListener("click", async () => {
    const text = typeof value === "function" ? value() : value;
    try {
      await navigator.clipboard.writeText(text);
      button.textContent = "Copied";
    } catch (error) {
      button.textContent = "Copy failed: select and copy by hand";
      button.title = describe(error);
    }
    setTimeout(() => {
      button.textContent = "Copy";
    }, 3000);
  });
  return button;
}

function publishLine(credentials, host, port) {
  const sensor = credentials.client_identifier;
  const message = '"{\\"measurements\\": [{\\"timestamp\\": $(date +%s), \\"value\\": {\\"temperature\\": 21.5}}]}"';
  const common = `-h ${quote(host)} -p ${quote(port)} -i ${quote(sensor)}`;
  if (credentials.kind === "password") {
    return `mosquitto_pub ${common} -u ${quote(credentials.user_name)} ` +
      `-P ${quote(credentials.password)} -q 1 -t ${quote(`measurements/${sensor}`)} -m ${message}`;
  }
  return `mosquitto_pub ${common} --cafile AmazonRootCA1.pem --cert sensor.pem.crt ` +
    `--key sensor.pem.key -q 1 -t ${quote(`measurements/${sensor}`)} -m ${message}`;
}
