// The REST API, as the dashboard calls it: the access token kept in sessionStorage for
// this tab, JSON in and out, and every failure turned into an ApiError whose message
// is the server's own `details`.

const TOKEN_KEY = "sensorium.token";
const EXPIRATION_KEY = "sensorium.expiration";

export class ApiError extends Error {
  constructor(status, details) {
    super(details);
    this.status = status;
    this.details = details;
  }
}

let sessionEnded = () => {};

/** Called when the server refuses the token (expired, revoked): back to the login. */
export function onSessionEnded(handler) {
  sessionEnded = handler;
}

let expired = false;

export function token() {
  const expiration = Number(sessionStorage.getItem(EXPIRATION_KEY));
  if (expiration && expiration * 1000 <= Date.now()) {
    forgetToken();
    expired = true;
    return null;
  }
  return sessionStorage.getItem(TOKEN_KEY);
}

/** Whether a token was found expired (by its time) since the last call. */
export function takeExpired() {
  const was = expired;
  expired = false;
  return was;
}

export function keepToken(answer) {
  sessionStorage.setItem(TOKEN_KEY, answer.access_token);
  sessionStorage.setItem(EXPIRATION_KEY, String(answer.expiration_timestamp));
}

export function forgetToken() {
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(EXPIRATION_KEY);
}

function url(path, query) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(query || {})) {
    if (value !== undefined && value !== null) search.set(name, String(value));
  }
  const text = search.toString();
  return text ? `${path}?${text}` : path;
}

/** Sends a request; resolves to the Response when it succeeded, else throws ApiError. */
async function send(method, path, { query, body } = {}) {
  const headers = {};
  const current = token();
  if (current) headers.Authorization = `Bearer ${current}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(url(path, query), {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
    });
  } catch {
    throw new ApiError(0, "The server could not be reached");
  }
  if (response.ok) return response;
  let details = response.statusText || `Status ${response.status}`;
  try {
    const answer = await response.json();
    if (typeof answer.details === "string") details = answer.details;
  } catch {
    // Not the API's JSON (a proxy's page): the status text says enough.
  }
  // Once per session: the other requests refused with it find the token gone.
  if (response.status === 401 && current && sessionStorage.getItem(TOKEN_KEY) === current) {
    forgetToken();
    sessionEnded();
  }
  throw new ApiError(response.status, details);
}

/** The JSON answer of a request (null for 204). */
export async function call(method, path, options) {
  const response = await send(method, path, options);
  return response.status === 204 ? null : response.json();
}

/** The body of a request as a Blob, for downloads. */
export async function download(path, query) {
  const response = await send("GET", path, { query });
  return response.blob();
}

export const sensorPath = (network, sensor) =>
  `/networks/${encodeURIComponent(network)}/sensors/${encodeURIComponent(sensor)}`;

/** The name of one of the user's networks (null when it is none of theirs). */
export async function networkName(network) {
  const networks = await call("GET", "/networks");
  const found = networks.find((candidate) => candidate.network_identifier === network);
  return found ? found.network_name : null;
}
