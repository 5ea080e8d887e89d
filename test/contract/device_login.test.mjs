// Contract: TIDAL's web SDK (@tidal-music/auth) logs in through the device flow against
// cmd/tidal-server, then refreshes its access token, as it would against TIDAL.
//
// Access tokens live 62 s here: the SDK refreshes a token that expires within a minute, so
// the login token is good for about 2 s and then due.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import {
  assertNewToken, assertSameToken, cryptoAdapter, deviceLogin, fingerprint, getSession, loadSdk,
  memoryStorage, newClientSecret, startServer,
} from './harness.mjs';

const clientId = 'sdkDeviceClient';
const clientSecret = newClientSecret();
const scopes = ['r_usr', 'w_usr', 'w_sub'];
const storageKey = 'contractDeviceLogin';
const user = { id: 424242, countryCode: 'NO', username: 'sdk.contract', email: 'sdk@example.test' };

let server;
let sdk;
let guard;
const storage = memoryStorage();
// Tokens the SDK held, by step; compared, never printed.
const seen = {};

before(async () => {
  server = await startServer([
    '--client', `${clientId}:${clientSecret}:SDK contract`,
    '--access-token-lifetime', '62s',
    '--device-poll-interval', '1s',
    '--device-code-lifetime', '60s',
  ]);
  ({ sdk, guard } = await loadSdk(server.urls.api_base_url));
  await sdk.init({
    clientId,
    clientSecret,
    // Sent as client_unique_key with every token request; TIDAL's server must ignore it.
    clientUniqueKey: 'contract-device-1',
    credentialsStorageKey: storageKey,
    crypto: cryptoAdapter,
    scopes,
    storage,
    tidalAuthServiceBaseUri: new URL('../', server.urls.auth_base_url).href,
    tidalLoginServiceBaseUri: new URL('login/', server.urls.base_url).href,
  });
});

after(async () => {
  await server?.stop();
});

test('device login gives the SDK credentials of the approved user', async (t) => {
  const device = await deviceLogin({ sdk, server, user });
  assert.match(device.userCode, /^[A-Z0-9]{4,}$/);
  assert.ok(device.verificationUri && !device.verificationUri.includes('://'),
    'verificationUri comes without a scheme, as TIDAL sends it');
  assert.ok(device.verificationUriComplete.endsWith(device.userCode));
  assert.ok(device.expiresIn > 0 && device.interval > 0);

  const stored = storage.peek(storageKey);
  assert.equal(stored.accessToken.userId, String(user.id));
  assert.deepEqual(stored.accessToken.grantedScopes, scopes);
  assertNewToken(stored.accessToken.token, [], 'the SDK stored an access token');
  assertNewToken(stored.refreshToken, [], 'the SDK stored a refresh token');
  seen.login = stored.accessToken.token;
  seen.refresh = stored.refreshToken;
  t.diagnostic(`access token ${fingerprint(seen.login)}`);
  t.diagnostic(`refresh token ${fingerprint(seen.refresh)}`);

  // Not yet within a minute of expiry: the SDK answers from storage without a refresh.
  const creds = await sdk.credentialsProvider.getCredentials();
  assertSameToken(creds.token, seen.login, 'getCredentials answers the stored token');
  assert.equal(creds.userId, String(user.id));
  assert.ok(creds.expires > Date.now() + 60_000, 'expires is about expires_in from now');

  const session = await getSession(server.urls.api_base_url, creds.token);
  assert.equal(session.status, 200);
  assert.equal(session.body.userId, user.id);
  assert.equal(session.body.countryCode, user.countryCode);
  assert.equal((await server.stats()).outcomes['refresh_token/ok'], undefined,
    'no refresh before the token is due');
});

test('a token due within a minute is refreshed and the new one is accepted', async (t) => {
  assert.ok(seen.login, 'needs the login of the test before');
  await sleep(3_000);

  const creds = await sdk.credentialsProvider.getCredentials();
  assertNewToken(creds.token, [seen.login], 'the refresh gave a new access token');
  assert.equal(creds.userId, String(user.id));
  t.diagnostic(`refreshed access token ${fingerprint(creds.token)}`);
  seen.proactive = creds.token;

  // TIDAL answers a refresh without a refresh token; the SDK must keep the one it has.
  assertSameToken(storage.peek(storageKey).refreshToken, seen.refresh,
    'the SDK kept its refresh token');

  const session = await getSession(server.urls.api_base_url, creds.token);
  assert.equal(session.status, 200);
  assert.equal(session.body.userId, user.id);
});

test('an API answer of subStatus 11003 makes the SDK refresh at once', async () => {
  assert.ok(seen.proactive, 'needs the refresh of the test before');

  // The token is still valid, but an API host said 11003: the SDK refreshes regardless.
  const creds = await sdk.credentialsProvider.getCredentials('11003');
  assertNewToken(creds.token, [seen.login, seen.proactive], 'the forced refresh gave a new token');
  assertSameToken(storage.peek(storageKey).refreshToken, seen.refresh,
    'the SDK kept its refresh token');

  const session = await getSession(server.urls.api_base_url, creds.token);
  assert.equal(session.status, 200);
  assert.equal(session.body.userId, user.id);
});

test('the server counted the SDK\'s requests', async (t) => {
  const stats = await server.stats();
  const pending = stats.outcomes['device_code/authorization_pending'] ?? 0;
  t.diagnostic(`token endpoint: ${stats.endpoints.token} requests, ${pending} pending polls`);

  assert.equal(stats.outcomes['device_authorization/ok'], 1);
  assert.ok(pending >= 1, 'the SDK polled before the approval');
  assert.equal(stats.outcomes['device_code/ok'], 1);
  assert.equal(stats.outcomes['refresh_token/ok'], 2);
  assert.equal(stats.endpoints.token, pending + 1 + 2, 'no other token requests');
  assert.equal(stats.outcomes['sessions/ok'], 3);
  assert.equal(stats.clients[clientId], stats.endpoints.token + 1 + 3,
    'every token, device and session request is the client\'s');
  assert.equal(stats.outcomes['device_code/slow_down'], undefined, 'the SDK polled at interval');

  // The SDK read its clock from our ping, and reached nothing else off loopback.
  assert.ok(guard.redirectedPings >= 1);
  assert.ok(stats.outcomes['ping/ok'] >= 1);
  assert.deepEqual(guard.refused, []);
});
