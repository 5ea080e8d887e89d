// Contract: what TIDAL's web SDK (@tidal-music/auth) does when cmd/tidal-server expires an
// access token, revokes a grant, or revokes the client: a refresh after expiry works; after
// a revocation the refresh fails for good and the SDK logs the user out.
//
// Access tokens live 3 s here, so the server expires them while the test watches.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import {
  assertNewToken, cryptoAdapter, deviceLogin, fingerprint, getSession, loadSdk,
  memoryStorage, newClientSecret, startServer,
} from './harness.mjs';

const clientId = 'sdkRevokeClient';
const clientSecret = newClientSecret();
const storageKey = 'contractExpiryRevoke';
const user = {
  id: 515151, countryCode: 'DE', username: 'sdk.revoke', email: 'revoke@example.test',
};

let server;
let sdk;
let guard;
const storage = memoryStorage();

before(async () => {
  server = await startServer([
    '--client', `${clientId}:${clientSecret}:SDK contract`,
    '--access-token-lifetime', '3s',
    '--device-poll-interval', '1s',
    '--device-code-lifetime', '60s',
  ]);
  ({ sdk, guard } = await loadSdk(server.urls.api_base_url));
});

after(async () => {
  await server?.stop();
});

/** initSdk (re)initialises the SDK, as an app does on start or after a logout. */
function initSdk() {
  return sdk.init({
    clientId,
    clientSecret,
    credentialsStorageKey: storageKey,
    crypto: cryptoAdapter,
    scopes: ['r_usr', 'w_usr', 'w_sub'],
    storage,
    tidalAuthServiceBaseUri: new URL('../', server.urls.auth_base_url).href,
    tidalLoginServiceBaseUri: new URL('login/', server.urls.base_url).href,
  });
}

/** assertLoggedOut checks the SDK's answer to a terminal token error: logout and throw. */
async function assertLoggedOut(refresh) {
  await assert.rejects(refresh, (err) => {
    assert.equal(err.name, 'UnexpectedError');
    assert.equal(err.errorCode, sdk.authErrorCodeMap.unexpectedError);
    return true;
  });
  // Not assert.equal: its message would print the stored tokens.
  assert.ok(storage.peek(storageKey) === undefined, 'the SDK deleted its stored credentials');
  await assert.rejects(sdk.credentialsProvider.getCredentials(), (err) => {
    assert.equal(err.errorCode, sdk.authErrorCodeMap.initError);
    return true;
  });
}

test('an expired access token is refused with 11003 and the SDK refreshes it', async (t) => {
  await initSdk();
  await deviceLogin({ sdk, server, user });
  const first = storage.peek(storageKey).accessToken.token;
  t.diagnostic(`login access token ${fingerprint(first)}`);
  assert.equal((await getSession(server.urls.api_base_url, first)).status, 200);

  await sleep(3_500);
  const expired = await getSession(server.urls.api_base_url, first);
  assert.equal(expired.status, 401);
  assert.equal(expired.body.subStatus, 11003);
  assert.match(expired.body.userMessage, /expired/i);

  const creds = await sdk.credentialsProvider.getCredentials(String(expired.body.subStatus));
  assertNewToken(creds.token, [first], 'the refresh gave a new access token');
  assert.equal(creds.userId, String(user.id));
  const session = await getSession(server.urls.api_base_url, creds.token);
  assert.equal(session.status, 200);
  assert.equal(session.body.userId, user.id);
});

test('a revoked grant fails the SDK\'s refresh for good and logs the user out', async () => {
  const stored = storage.peek(storageKey);
  assert.ok(stored?.refreshToken, 'needs the login of the test before');
  const token = stored.accessToken.token;

  // What a password change or "log out everywhere" does on TIDAL's side.
  await server.admin('grants/revoke', { refresh_token: stored.refreshToken });
  const refused = await getSession(server.urls.api_base_url, token);
  assert.equal(refused.status, 401);
  assert.equal(refused.body.subStatus, 11003);

  await assertLoggedOut(sdk.credentialsProvider.getCredentials(String(refused.body.subStatus)));
  const stats = await server.stats();
  assert.equal(stats.outcomes['refresh_token/invalid_grant'], 1);
  assert.equal(stats.outcomes['refresh_token/ok'], 1);
});

test('a revoked client fails the SDK\'s refresh for good and logs the user out', async () => {
  await initSdk();
  await deviceLogin({ sdk, server, user: { ...user, id: user.id + 1 } });
  assert.equal(storage.peek(storageKey).accessToken.userId, String(user.id + 1));

  // What TIDAL does with a leaked or retired client id.
  await server.admin('clients/revoke', { client_id: clientId });
  await assertLoggedOut(sdk.credentialsProvider.getCredentials());

  const stats = await server.stats();
  assert.equal(stats.outcomes['refresh_token/invalid_client'], 1);
  assert.equal(stats.outcomes['device_code/ok'], 2);
  assert.deepEqual(guard.refused, [], 'the SDK reached nothing off loopback');
});
