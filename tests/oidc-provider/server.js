// A certified OpenID Connect provider (the `oidc-provider` package) for the tests, with the claim
// shapes of the identity providers players-api runs behind:
//
//   --profile cognito   access token RS256 with token_use, client_id, scope, cognito:groups and
//                       no aud; userinfo without groups (Cognito's shape)
//   --profile okta      groups in userinfo under `groups`; access token with aud (Okta/Keycloak)
//
// Both profiles have one issuer with a browser client (authorization code, client secret) and a
// machine client (client credentials). Users: admin, editor, viewer, nogroups (any password, on
// the provider's own development login page).
//
//   node server.js --profile cognito [--port 0]
//
// Prints one JSON line {"issuer": ..., "port": ...} on stdout once it listens on 127.0.0.1.
// Environment: BROWSER_CLIENT_ID, BROWSER_CLIENT_SECRET, MACHINE_CLIENT_ID, MACHINE_CLIENT_SECRET.

import * as http from 'node:http';
import { parseArgs } from 'node:util';

import { Provider } from 'oidc-provider';

const { values: args } = parseArgs({
  options: {
    profile: { type: 'string', default: 'cognito' },
    port: { type: 'string', default: '0' },
  },
});
if (!['cognito', 'okta'].includes(args.profile)) {
  console.error(`unknown profile ${args.profile}: cognito or okta`);
  process.exit(2);
}
const cognito = args.profile === 'cognito';

const BROWSER_CLIENT_ID = process.env.BROWSER_CLIENT_ID ?? 'players-browser';
const BROWSER_CLIENT_SECRET = process.env.BROWSER_CLIENT_SECRET ?? 'browser-secret';
const MACHINE_CLIENT_ID = process.env.MACHINE_CLIENT_ID ?? 'players-machine';
const MACHINE_CLIENT_SECRET = process.env.MACHINE_CLIENT_SECRET ?? 'machine-secret';

// The API: a resource server whose scopes follow Cognito's `<identifier>/<scope>` form.
const RESOURCE = 'https://players.example/api';
const API_SCOPES = 'players/read players/write players/delete players/admin';
// Okta's default authorization server audience style.
const OKTA_AUDIENCE = 'api://players';

// The development login page takes the login name as the account id (the `sub`).
const USERS = {
  admin: { name: 'Ada Admin', groups: ['players-admin'] },
  editor: { name: 'Eddie Editor', groups: ['players-editor'] },
  viewer: { name: 'Vera Viewer', groups: ['players-viewer'] },
  nogroups: { name: 'Nora Nobody', groups: [] },
};

function account(username) {
  const user = USERS[username];
  if (!user) return undefined;
  return {
    accountId: username,
    async claims() {
      const claims = {
        sub: username,
        email: `${username}@players.test`,
        // Cognito answers the string "true"; Okta a boolean.
        email_verified: cognito ? 'true' : true,
        name: user.name,
      };
      if (cognito) {
        claims.username = username;
      } else {
        claims.preferred_username = username;
        claims.groups = user.groups;
      }
      return claims;
    },
  };
}

// Listen first: the issuer names the port.
const server = http.createServer();
await new Promise((resolve) => { server.listen(Number(args.port), '127.0.0.1', resolve); });
const { port } = server.address();
const issuer = `http://127.0.0.1:${port}`;

const browserClient = {
  client_id: BROWSER_CLIENT_ID,
  client_secret: BROWSER_CLIENT_SECRET,
  grant_types: ['authorization_code'],
  response_types: ['code'],
  // The local ALB's callback, on whatever loopback port it runs (see redirectUriAllowed below).
  redirect_uris: ['http://127.0.0.1/oauth2/idpresponse'],
  post_logout_redirect_uris: ['http://127.0.0.1/logged-out'],
  token_endpoint_auth_method: 'client_secret_basic',
};
const machineClient = {
  client_id: MACHINE_CLIENT_ID,
  client_secret: MACHINE_CLIENT_SECRET,
  grant_types: ['client_credentials'],
  response_types: [],
  redirect_uris: [],
  scope: 'players/read players/write',
  token_endpoint_auth_method: 'client_secret_basic',
};

const provider = new Provider(issuer, {
  clients: [browserClient, machineClient],
  async findAccount(ctx, id) {
    return Object.hasOwn(USERS, id) ? account(id) : undefined;
  },
  claims: cognito
    ? { openid: ['sub', 'username'], email: ['email', 'email_verified'], profile: ['name'] }
    : {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name', 'preferred_username'],
      groups: ['groups'],
    },
  scopes: ['openid', 'offline_access', ...API_SCOPES.split(' ')],
  features: {
    devInteractions: { enabled: true },
    clientCredentials: { enabled: true },
    rpInitiatedLogout: { enabled: true },
    userinfo: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: async () => RESOURCE,
      useGrantedResource: async () => true,
      getResourceServerInfo: async (ctx, resourceIndicator) => {
        if (resourceIndicator !== RESOURCE) throw new Error('unknown resource');
        return {
          scope: `openid email profile groups ${API_SCOPES}`,
          audience: RESOURCE,
          accessTokenFormat: 'jwt',
          accessTokenTTL: 3600,
          jwt: { sign: { alg: 'RS256' } },
        };
      },
    },
  },
  async extraTokenClaims(ctx, token) {
    if (!cognito) return undefined;
    const claims = { token_use: 'access' };
    const user = token.accountId && Object.hasOwn(USERS, token.accountId)
      ? USERS[token.accountId] : undefined;
    if (user) {
      claims.username = token.accountId;
      // Cognito omits the claim for a user in no group.
      if (user.groups.length) claims['cognito:groups'] = user.groups;
    }
    return claims;
  },
  formats: {
    customizers: {
      async jwt(ctx, token, jwt) {
        if (cognito) {
          // Cognito access tokens have no `aud` and no `typ`. oidc-provider insists on an
          // audience, so it gets one it does not serialise.
          Object.defineProperty(jwt.payload, 'aud', {
            value: 'none', enumerable: false, writable: true, configurable: true,
          });
          jwt.header = { typ: undefined };
        } else {
          jwt.payload.aud = OKTA_AUDIENCE;
        }
      },
    },
  },
  // First-party clients: no consent screen (as with Cognito and an Okta app with consent off).
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId
      || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) {
      const grant = await ctx.oidc.provider.Grant.find(grantId);
      if (grant) return grant;
    }
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope('openid email profile groups');
    grant.addOIDCClaims(['sub', 'email', 'email_verified', 'name', 'username', 'preferred_username', 'groups']);
    grant.addResourceScope(RESOURCE, `openid email profile groups ${API_SCOPES}`);
    await grant.save();
    return grant;
  },
  ttl: {
    AccessToken: 3600,
    ClientCredentials: 3600,
    IdToken: 3600,
    Interaction: 600,
    Session: 3600,
    Grant: 3600,
  },
  cookies: { keys: ['players-api tests only'] },
  // Cognito's paths (the JWKS where the service looks for it by default).
  routes: cognito ? {
    authorization: '/oauth2/authorize',
    token: '/oauth2/token',
    userinfo: '/oauth2/userInfo',
    jwks: '/.well-known/jwks.json',
    end_session: '/logout',
  } : undefined,
  jwks: undefined,
});

// The local ALB runs on a free loopback port chosen at test time: accept its callback and
// logout landing on any loopback port (exact paths).
function loopbackUri(value, path) {
  try {
    const url = new URL(value);
    return url.protocol === 'http:'
      && (url.hostname === '127.0.0.1' || url.hostname === 'localhost')
      && url.pathname === path && !url.search && !url.hash;
  } catch {
    return false;
  }
}
const { Client, AccessToken } = provider;
// Cognito's and Okta's userinfo endpoints accept the access token the login issued for the API;
// oidc-provider's accepts only access tokens without an audience. So a user's access token keeps
// no audience on the provider's side, and the JWT's `aud` is set (okta) or left out (cognito) by
// the customizer above.
AccessToken.prototype.setAudience = function setAudience() {};
// And the userinfo endpoint finds an access token by its stored record. oidc-provider stores no
// record for JWT access tokens; Cognito and Okta accept theirs at userinfo. So a JWT access
// token is also stored under its `jti`, and looked up by it.
{
  const impls = [];
  for (let p = AccessToken.prototype; p; p = Object.getPrototypeOf(p)) {
    if (Object.hasOwn(p, 'getValueAndPayload')) impls.push(p.getValueAndPayload);
  }
  const [formatted, opaque] = impls; // the token's format first, then the stored-record one
  AccessToken.prototype.getValueAndPayload = async function getValueAndPayload() {
    const result = await formatted.call(this);
    if (this.format !== 'jwt') return result;
    const { payload } = await opaque.call(this);
    return { value: result.value, payload };
  };
  const find = AccessToken.find.bind(AccessToken);
  AccessToken.find = async (value, opts) => {
    if (typeof value === 'string' && value.split('.').length === 3) {
      try {
        const { jti } = JSON.parse(Buffer.from(value.split('.')[1], 'base64url'));
        return await find(jti, opts);
      } catch {
        return undefined;
      }
    }
    return find(value, opts);
  };
}
const baseRedirectAllowed = Client.prototype.redirectUriAllowed;
Client.prototype.redirectUriAllowed = function redirectUriAllowed(value) {
  if (this.clientId === BROWSER_CLIENT_ID) return loopbackUri(value, '/oauth2/idpresponse');
  return baseRedirectAllowed.call(this, value);
};
Client.prototype.postLogoutRedirectUriAllowed = function postLogoutRedirectUriAllowed(value) {
  return this.clientId === BROWSER_CLIENT_ID && loopbackUri(value, '/logged-out');
};

provider.on('server_error', (ctx, err) => { console.error('oidc-provider server_error', err); });

server.on('request', provider.callback());
process.on('SIGTERM', () => { server.close(); process.exit(0); });
console.log(JSON.stringify({ issuer, port, profile: args.profile }));
