// The admin API, with the session cookie: changes carry the session's CSRF token.

let csrfToken = null;

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export function setCsrf(token) {
  csrfToken = token;
}

const inFlight = new Set();

// Settles when every request sent so far has been answered.
export async function settled() {
  await Promise.allSettled([...inFlight]);
}

export async function api(method, path, body, extraHeaders = {}) {
  const request = send(method, path, body, extraHeaders);
  inFlight.add(request);
  try {
    return await request;
  } finally {
    inFlight.delete(request);
  }
}

async function send(method, path, body, extraHeaders) {
  const headers = { "X-Cargohold-UI": "1", Accept: "application/json", ...extraHeaders };
  if (method !== "GET" && csrfToken) headers["X-CSRF-Token"] = csrfToken;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(`/api${path}`, {
    method,
    headers,
    credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 204) return null;
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok) {
    const error = data && data.errors && data.errors[0];
    throw new ApiError(
      response.status,
      error ? error.code : "ERROR",
      error ? error.message : `${response.status} ${response.statusText}`,
    );
  }
  return data;
}

// Repository names contain slashes, which the API's paths keep; each component is encoded.
export function repoPath(name) {
  return name.split("/").map(encodeURIComponent).join("/");
}

export function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== null && value !== undefined && value !== "") search.set(key, value);
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

// HTTP basic credentials, UTF-8 encoded: for signing in (POST /v1/session) only.
export function basicAuth(username, password) {
  const bytes = new TextEncoder().encode(`${username}:${password}`);
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return { Authorization: `Basic ${btoa(binary)}` };
}
