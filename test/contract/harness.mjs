// Shared pieces of the contract tests: the server process, its admin API, the SDK with
// in-memory storage, and a fetch guard that keeps every request on loopback.
//
// Nothing here prints a token or a client secret: tests print lengths and short hashes.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes, webcrypto } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

// serverBin is the built cmd/tidal-server; run.sh builds it and sets TIDAL_SERVER_BIN.
export const serverBin = process.env.TIDAL_SERVER_BIN || join(repoRoot, 'bin', 'tidal-server');

/** fingerprint names a secret value in output without revealing it. */
export function fingerprint(value) {
  if (typeof value !== 'string' || value === '') return '(none)';
  const hash = createHash('sha256').update(value).digest('hex').slice(0, 12);
  return `len=${value.length} sha256:${hash}`;
}

// Assertions on tokens fail with fingerprints: assert.equal would print the values.

/** assertSameToken fails unless actual is the token expected. */
export function assertSameToken(actual, expected, message) {
  if (!actual || actual !== expected) {
    assert.fail(`${message}: got ${fingerprint(actual)}, want ${fingerprint(expected)}`);
  }
}

/** assertNewToken fails unless actual is a token and none of the earlier ones. */
export function assertNewToken(actual, earlier, message) {
  if (!actual || earlier.includes(actual)) {
    assert.fail(`${message}: got ${fingerprint(actual)}, an earlier token or none`);
  }
}

/** newClientSecret is a random secret for a --client flag; it is never printed. */
export function newClientSecret() {
  return randomBytes(24).toString('base64url');
}

/**
 * startServer runs the server binary with args on loopback ports and waits for its URLs.
 * The server's log is kept and shown only when the server fails; it carries no tokens.
 */
export async function startServer(args) {
  assert.ok(existsSync(serverBin),
    `${serverBin} does not exist: build it (test/contract/run.sh does) or set TIDAL_SERVER_BIN`);
  const dir = await mkdtemp(join(tmpdir(), 'tidal-contract-'));
  const addrFile = join(dir, 'addr.json');
  const child = spawn(serverBin, [
    '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0', '--addr-file', addrFile, ...args,
  ], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr.on('data', (chunk) => { log += chunk; });
  // A spawn error carries the arguments, client secret included: keep only its code.
  let spawnError;
  const exited = new Promise((done) => {
    child.once('exit', (code, signal) => done({ code, signal }));
    child.once('error', (err) => { spawnError = err.code ?? 'error'; done({ code: -1 }); });
  });

  const deadline = Date.now() + 10_000;
  let urls;
  try {
    while (!urls) {
      if (spawnError) throw new Error(`could not start ${serverBin}: ${spawnError}`);
      if (child.exitCode !== null) {
        throw new Error(`tidal-server exited with ${child.exitCode} before it listened:\n${log}`);
      }
      assert.ok(Date.now() < deadline, 'tidal-server did not write its address file within 10s');
      // The file appears through a rename: when it exists it is whole.
      if (existsSync(addrFile)) urls = JSON.parse(await readFile(addrFile, 'utf8'));
      else await sleep(20);
    }
  } catch (err) {
    if (child.exitCode === null) child.kill('SIGTERM');
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  for (const key of ['base_url', 'auth_base_url', 'api_base_url', 'admin_url']) {
    assert.ok(isLoopback(new URL(urls[key])), `${key} is not a loopback URL`);
  }

  return {
    urls,
    admin: (path, body) => adminCall(urls.admin_url, path, body),
    stats: () => adminCall(urls.admin_url, 'stats'),
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      const { code, signal } = await exited;
      await rm(dir, { recursive: true, force: true });
      assert.ok(code === 0 || signal === 'SIGTERM', `tidal-server stopped badly:\n${log}`);
    },
  };
}

/** adminCall calls the server's admin API: GET without a body, POST with a JSON one. */
async function adminCall(adminURL, path, body) {
  const init = body === undefined ? {} : {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body),
  };
  const res = await realFetch(new URL(path, adminURL), init);
  const json = await res.json();
  assert.ok(res.ok, `admin ${path} answered ${res.status}: ${json.error ?? ''}`);
  return json;
}

function isLoopback(url) {
  const host = url.hostname.replace(/^\[|\]$/g, '');
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

const realFetch = globalThis.fetch;

/**
 * guardFetch replaces globalThis.fetch so that the SDK reaches nothing but loopback. The SDK's
 * clock module fetches TIDAL's fixed GET {api}/ping URL, on import and in init, to read the
 * Date header; that request goes to our server's ping instead, which serves the same header.
 * Any other request off loopback fails and is recorded in `refused`.
 */
export function guardFetch(apiBaseURL) {
  const guard = { redirectedPings: 0, refused: [] };
  globalThis.fetch = (input, init) => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    if (isLoopback(url)) return realFetch(input, init);
    if (url.pathname === '/v1/ping') {
      guard.redirectedPings++;
      return realFetch(new URL('ping', apiBaseURL), init);
    }
    guard.refused.push(url.origin + url.pathname);
    return Promise.reject(new TypeError('contract test: request off loopback refused'));
  };
  return guard;
}

/**
 * memoryStorage is the SDK's StorageAdapter (load, save, remove) over a Map, in place of the
 * browser's localStorage. `peek` lets a test read what the SDK stored.
 */
export function memoryStorage() {
  const items = new Map();
  return {
    items,
    load: async (key) => items.get(key) ?? null,
    save: async (key, value) => { items.set(key, value); },
    remove: async (key) => { items.delete(key); },
    peek: (key) => (items.has(key) ? JSON.parse(items.get(key)) : undefined),
  };
}

/** cryptoAdapter is the SDK's CryptoAdapter over Node's Web Crypto. */
export const cryptoAdapter = {
  digest: (algorithm, data) => webcrypto.subtle.digest(algorithm, data),
  getRandomValues: (array) => webcrypto.getRandomValues(array),
};

/**
 * loadSdk imports @tidal-music/auth with the fetch guard in place: the SDK's clock module
 * fetches on import, so the guard must come first.
 */
export async function loadSdk(apiBaseURL) {
  const guard = guardFetch(apiBaseURL);
  const sdk = await import('@tidal-music/auth');
  return { sdk, guard };
}

/** getSession calls GET {api}sessions with a bearer token and returns status and body. */
export async function getSession(apiBaseURL, token) {
  const res = await realFetch(new URL('sessions', apiBaseURL), {
    headers: { Authorization: `Bearer ${token}` },
  });
  return { status: res.status, body: await res.json() };
}

/** waitFor polls check until it returns a truthy value or timeoutMs passes. */
export async function waitFor(what, check, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
    await sleep(50);
  }
}

/**
 * deviceLogin runs the SDK's device flow against the server and approves it for user through
 * the admin API once the SDK has polled and been told authorization_pending, as a user would
 * enter the code at the verification URI while the device polls.
 */
export async function deviceLogin({ sdk, server, user }) {
  const before = (await server.stats()).outcomes['device_code/authorization_pending'] ?? 0;
  const device = await sdk.initializeDeviceLogin();
  const polling = sdk.finalizeDeviceLogin();
  try {
    await waitFor('a pending poll', async () =>
      ((await server.stats()).outcomes['device_code/authorization_pending'] ?? 0) > before);
    await server.admin('device/approve', {
      user_code: device.userCode, user_id: user.id, country_code: user.countryCode,
      username: user.username, email: user.email,
    });
  } catch (err) {
    // The SDK polls on until the device code expires or the server stops; its failure then
    // is not the one to report.
    polling.catch(() => {});
    throw err;
  }
  await polling;
  return device;
}
