// Entry point: who am I, the country list, and a tiny router over the query string
// (`?view=player&id=…`, `?view=new`, otherwise the list with its filters), so every view
// has a URL that can be bookmarked and shared.

import { get, setSessionProblemHandler } from './api.js';
import { h, replace } from './dom.js';
import { showList } from './list.js';
import { showPlayer, showNew } from './player.js';
import { base, problemBox, urlFor } from './ui.js';

const main = document.getElementById('main');
const banner = document.getElementById('banner');

/** What every view needs: the caller, their permissions, the countries, navigation. */
const ctx = {
  me: null,
  perms: new Set(),
  countries: [],
  countryName: new Map(),
  can(p) {
    return this.perms.has(p);
  },
  navigate,
  main,
  flash: null,
  takeFlash() {
    const f = this.flash;
    this.flash = null;
    return f;
  },
};

function navigate(params, { replace: rep = false, state = null } = {}) {
  const url = urlFor(params);
  if (rep) window.history.replaceState(state, '', url);
  else window.history.pushState(state, '', url);
  route();
}

function renderWhoAmI(me) {
  const who = document.getElementById('whoami');
  const name = me.name || me.email || me.subject;
  replace(who,
    h('details', { class: 'me' },
      h('summary', {}, h('span', { class: 'me-name' }, name)),
      h('dl', { class: 'me-details' },
        h('dt', {}, 'Signed in as'), h('dd', {}, name, me.email && me.email !== name ? ` (${me.email})` : ''),
        h('dt', {}, 'Groups'), h('dd', { id: 'me-groups' }, me.groups.length ? me.groups.join(', ') : 'none'),
        h('dt', {}, 'Permissions'), h('dd', { id: 'me-permissions' }, me.permissions.length ? me.permissions.join(', ') : 'none'),
      ),
    ),
    h('a', { class: 'logout', href: '/logout', id: 'logout' }, 'Log out'),
  );
}

function showBanner(...content) {
  replace(banner, ...content);
  banner.hidden = false;
}

function route() {
  const q = new URLSearchParams(window.location.search);
  const view = q.get('view');
  window.scrollTo(0, 0);
  if (view === 'player' && q.get('id')) return showPlayer(ctx, q.get('id'));
  if (view === 'new') return showNew(ctx);
  return showList(ctx, q);
}

async function boot() {
  const home = document.getElementById('home');
  home.setAttribute('href', base);
  home.addEventListener('click', (ev) => {
    ev.preventDefault();
    navigate({});
  });
  setSessionProblemHandler(() => showBanner(
    h('p', {}, 'Your session has ended or is not accepted by the service. '),
    h('p', {}, h('a', { href: window.location.href }, 'Log in again'), ' or ', h('a', { href: '/logout' }, 'log out'), '.'),
  ));
  window.addEventListener('popstate', route);
  try {
    const [me, countries] = await Promise.all([get('/v1/me'), get('/v1/countries')]);
    ctx.me = me.data;
    ctx.perms = new Set(me.data.permissions);
    ctx.countries = countries.data;
    ctx.countryName = new Map(countries.data.map((c) => [c.code, c.name]));
  } catch (err) {
    const box = problemBox(err, 'The app could not start');
    if (box) replace(main, box);
    return;
  }
  renderWhoAmI(ctx.me);
  document.body.dataset.ready = 'true';
  route();
}

boot();
