// The players list: filters and sort as in the API, keyset paging with `next_cursor` (and back,
// with the cursors seen so far kept in the history entry), all state in the URL.

import { get, query } from './api.js';
import { h, replace, uid } from './dom.js';
import { problemBox, urlFor } from './ui.js';

export const POSITIONS = ['goalkeeper', 'defender', 'midfielder', 'forward'];
const SORTS = [
  ['', 'Oldest entries first'],
  ['-created_at', 'Newest entries first'],
  ['name', 'Name A–Z'],
  ['-name', 'Name Z–A'],
  ['date_of_birth', 'Date of birth, oldest first'],
  ['-date_of_birth', 'Date of birth, youngest first'],
];
const FILTERS = ['name', 'team', 'country', 'position', 'sort', 'limit'];
const DEFAULT_LIMIT = 20;

function field(label, control, hint) {
  const id = control.id;
  return h('div', { class: 'field' },
    h('label', { for: id }, label),
    control,
    hint ? h('p', { class: 'hint', id: `${id}-hint` }, hint) : null,
  );
}

function select(id, name, value, options) {
  return h('select', { id, name },
    options.map(([v, text]) => h('option', { value: v, selected: v === value }, text)));
}

export function showList(ctx, q) {
  const filters = {};
  for (const k of FILTERS) filters[k] = q.get(k) || '';
  const cursor = q.get('cursor') || '';
  const stack = (window.history.state && Array.isArray(window.history.state.cursors))
    ? window.history.state.cursors : [];

  const form = h('form', { class: 'filters', role: 'search', 'aria-label': 'Filter players', id: 'filters' },
    field('Name contains', h('input', { id: 'f-name', name: 'name', type: 'search', value: filters.name, maxlength: 100 })),
    field('Team', h('input', { id: 'f-team', name: 'team', type: 'text', value: filters.team, maxlength: 100 }), 'Exact club name'),
    field('Country', select('f-country', 'country', filters.country.toUpperCase(),
      [['', 'Any country'], ...ctx.countries.map((c) => [c.code, `${c.name} (${c.code})`])])),
    field('Position', select('f-position', 'position', filters.position,
      [['', 'Any position'], ...POSITIONS.map((p) => [p, p])])),
    field('Sort by', select('f-sort', 'sort', filters.sort, SORTS)),
    h('div', { class: 'actions' },
      h('button', { type: 'submit', class: 'primary', id: 'apply-filters' }, 'Apply filters'),
      h('a', { href: urlFor({}), id: 'clear-filters', onclick: (ev) => { ev.preventDefault(); ctx.navigate({}); } }, 'Clear'),
    ),
  );
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const data = new FormData(form);
    const next = { limit: filters.limit };
    for (const k of ['name', 'team', 'country', 'position', 'sort']) next[k] = (data.get(k) || '').trim();
    ctx.navigate(next);
  });

  const results = h('section', { class: 'results', 'aria-labelledby': 'results-heading', 'aria-busy': 'true' },
    h('h2', { id: 'results-heading', class: 'visually-hidden' }, 'Players'),
    h('p', { class: 'loading', role: 'status', id: 'list-loading' }, 'Loading players…'),
  );
  const flash = ctx.takeFlash();
  replace(ctx.main,
    h('div', { class: 'title-row' },
      h('h1', {}, 'Players'),
      ctx.can('players:write')
        ? h('a', { class: 'button primary', href: urlFor({ view: 'new' }), id: 'new-player',
          onclick: (ev) => { ev.preventDefault(); ctx.navigate({ view: 'new' }); } }, 'New player')
        : null,
    ),
    flash ? h('p', { class: 'flash', role: 'status', id: 'flash' }, flash) : null,
    form,
    results,
  );

  const params = {
    limit: filters.limit || DEFAULT_LIMIT,
    name: filters.name,
    team: filters.team,
    country: filters.country,
    position: filters.position,
    sort: filters.sort,
    cursor,
  };
  get(`/v1/players${query(params)}`).then(({ data }) => {
    results.setAttribute('aria-busy', 'false');
    replace(results, h('h2', { id: 'results-heading', class: 'visually-hidden' }, 'Players'),
      ...renderPage(ctx, data, filters, cursor, stack));
  }, (err) => {
    results.setAttribute('aria-busy', 'false');
    const box = problemBox(err, 'The players could not be loaded');
    if (box && err.fieldErrors && err.fieldErrors.length) {
      box.insertBefore(h('ul', {}, err.fieldErrors.map((fe) => h('li', {}, `${fe.field}: ${fe.message}`))),
        box.querySelector('.request-id-line'));
    }
    replace(results, box);
  });
}

function renderPage(ctx, page, filters, cursor, stack) {
  const pageNo = stack.length + 1;
  const filtered = ['name', 'team', 'country', 'position'].some((k) => filters[k]);
  if (page.items.length === 0) {
    return [h('p', { class: 'empty', id: 'list-empty' },
      filtered ? 'No players match these filters.' : 'No players yet.',
      ctx.can('players:write') && !filtered ? ' Use “New player” to add the first one.' : '')];
  }
  const caption = `Players, page ${pageNo}`;
  const table = h('div', { class: 'table-wrap', tabindex: '0', role: 'region', 'aria-label': caption },
    h('table', { id: 'players' },
      h('caption', { class: 'visually-hidden' }, caption),
      h('thead', {}, h('tr', {},
        ['Name', 'Team', 'Position', 'Country', 'Date of birth', 'Club no.', 'National no.']
          .map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, page.items.map((p) => h('tr', { dataset: { id: p.id } },
        h('th', { scope: 'row' }, h('a', {
          href: urlFor({ view: 'player', id: p.id }),
          class: 'player-link',
          onclick: (ev) => { ev.preventDefault(); ctx.navigate({ view: 'player', id: p.id }); },
        }, p.name)),
        h('td', {}, p.team),
        h('td', {}, p.position),
        h('td', {}, h('abbr', { title: ctx.countryName.get(p.country) || p.country }, p.country)),
        h('td', { class: 'num' }, p.date_of_birth),
        h('td', { class: 'num' }, p.club_number ?? '–'),
        h('td', { class: 'num' }, p.national_team_number ?? '–'),
      ))),
    ),
  );
  const base = { ...filters };
  const prev = h('button', {
    type: 'button', id: 'prev-page', disabled: pageNo === 1 && !cursor,
    onclick: () => {
      const cursors = stack.slice(0, -1);
      const back = stack.length ? stack[stack.length - 1] : '';
      ctx.navigate({ ...base, cursor: back }, { state: { cursors } });
    },
  }, '← Previous');
  const next = h('button', {
    type: 'button', id: 'next-page', disabled: !page.next_cursor,
    onclick: () => ctx.navigate({ ...base, cursor: page.next_cursor }, { state: { cursors: [...stack, cursor] } }),
  }, 'Next →');
  return [
    table,
    h('nav', { class: 'pager', 'aria-label': 'Pages' }, prev,
      h('span', { class: 'page-no', id: 'page-no' }, cursor && !stack.length ? 'A later page' : `Page ${pageNo}`), next),
  ];
}
