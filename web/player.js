// One player: read, edit (merge patch with If-Match), delete (with confirmation), create (with
// an Idempotency-Key per submission) and, for admins, the audit history. The service is the
// only validator: its `errors[]` are shown at the fields they name.

import { ApiError, SessionEnded, get, query, request } from './api.js';
import { h, isoDateTime, replace } from './dom.js';
import { POSITIONS } from './list.js';
import { problemBox, urlFor } from './ui.js';

const FIELDS = [
  { name: 'name', label: 'Name', type: 'text', required: true, attrs: { maxlength: 100, autocomplete: 'off' },
    hint: 'Required. 1–100 characters.' },
  { name: 'date_of_birth', label: 'Date of birth', type: 'text', required: true,
    attrs: { placeholder: 'YYYY-MM-DD', inputmode: 'numeric', pattern: '\\d{4}-\\d{2}-\\d{2}', autocomplete: 'off' },
    hint: 'Required. ISO date (YYYY-MM-DD), from 1900-01-01 to today.' },
  { name: 'country', label: 'Country', type: 'country', required: true, hint: 'Required. A FIFA member association.' },
  { name: 'team', label: 'Team', type: 'text', required: true, attrs: { maxlength: 100 },
    hint: 'Required. 1–100 characters.' },
  { name: 'position', label: 'Position', type: 'position', required: true, hint: 'Required.' },
  { name: 'club_number', label: 'Club number', type: 'number', attrs: { min: 1, max: 99, step: 1, inputmode: 'numeric' },
    hint: 'Optional, 1–99. Unique within the team.' },
  { name: 'national_team_number', label: 'National team number', type: 'number', attrs: { min: 1, max: 99, step: 1, inputmode: 'numeric' },
    hint: 'Optional, 1–99.' },
];
const NUMBERS = ['club_number', 'national_team_number'];

function control(ctx, f, value) {
  const id = `p-${f.name}`;
  const common = {
    id, name: f.name, 'aria-describedby': `${id}-hint`, required: f.required || false, 'aria-required': f.required ? 'true' : null,
  };
  if (f.type === 'country') {
    return h('select', common,
      h('option', { value: '', selected: !value }, 'Choose a country'),
      ctx.countries.map((c) => h('option', { value: c.code, selected: c.code === value }, `${c.name} (${c.code})`)));
  }
  if (f.type === 'position') {
    return h('select', common,
      h('option', { value: '', selected: !value }, 'Choose a position'),
      POSITIONS.map((p) => h('option', { value: p, selected: p === value }, p)));
  }
  return h('input', { ...common, ...(f.attrs || {}), type: f.type, value: value ?? '' });
}

/** The form of a player (empty for a new one); `onSubmit(values, form)`. */
function playerForm(ctx, player, submitLabel, onSubmit, extraActions = []) {
  const form = h('form', { class: 'player-form', id: 'player-form', novalidate: true },
    h('div', { class: 'form-problem', id: 'form-problem' }),
    FIELDS.map((f) => h('div', { class: 'field', dataset: { field: f.name } },
      h('label', { for: `p-${f.name}` }, f.label, f.required ? h('span', { class: 'req', 'aria-hidden': 'true' }, ' *') : null),
      control(ctx, f, player ? player[f.name] : ''),
      h('p', { class: 'hint', id: `p-${f.name}-hint` }, f.hint),
      h('p', { class: 'field-error', id: `p-${f.name}-error`, hidden: true }),
    )),
    h('div', { class: 'actions' },
      h('button', { type: 'submit', class: 'primary', id: 'save' }, submitLabel),
      ...extraActions),
  );
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    onSubmit(values(form), form);
  });
  return form;
}

function values(form) {
  const data = new FormData(form);
  const out = {};
  for (const f of FIELDS) {
    const raw = String(data.get(f.name) ?? '');
    if (NUMBERS.includes(f.name)) {
      const t = raw.trim();
      out[f.name] = t === '' ? null : Number(t);
    } else {
      out[f.name] = f.name === 'name' || f.name === 'team' ? raw : raw.trim();
    }
  }
  return out;
}

function clearErrors(form) {
  replace(form.querySelector('#form-problem'));
  for (const f of FIELDS) {
    const input = form.querySelector(`#p-${f.name}`);
    const err = form.querySelector(`#p-${f.name}-error`);
    input.removeAttribute('aria-invalid');
    input.setAttribute('aria-describedby', `p-${f.name}-hint`);
    err.hidden = true;
    err.textContent = '';
  }
}

/** Shows a failed save: field errors at their fields (focus on the first), the rest on top. */
function showErrors(form, err, intro) {
  clearErrors(form);
  if (err instanceof SessionEnded) return;
  const fieldErrors = err instanceof ApiError ? [...err.fieldErrors] : [];
  if (err instanceof ApiError && err.code === 'club_number_taken') {
    fieldErrors.push({ field: 'club_number', code: err.code, message: 'Another player of this team already wears this club number.' });
  }
  const atFields = [];
  const elsewhere = [];
  for (const fe of fieldErrors) {
    if (FIELDS.some((f) => f.name === fe.field)) atFields.push(fe);
    else elsewhere.push(fe);
  }
  for (const fe of atFields) {
    const input = form.querySelector(`#p-${fe.field}`);
    const el = form.querySelector(`#p-${fe.field}-error`);
    const label = FIELDS.find((f) => f.name === fe.field).label;
    // The service's messages are phrases ("must be between 1 and 99"): name the field.
    const text = /^[a-z]/.test(fe.message) ? `${label} ${fe.message}.` : fe.message;
    el.textContent = el.textContent ? `${el.textContent} ${text}` : text;
    el.hidden = false;
    el.dataset.code = fe.code;
    input.setAttribute('aria-invalid', 'true');
    input.setAttribute('aria-describedby', `p-${fe.field}-error p-${fe.field}-hint`);
  }
  const box = problemBox(err, atFields.length ? 'Please correct the marked fields' : intro);
  if (box && elsewhere.length) {
    box.appendChild(h('ul', {}, elsewhere.map((fe) => h('li', {}, fe.field ? `${fe.field}: ${fe.message}` : fe.message))));
  }
  replace(form.querySelector('#form-problem'), box);
  const first = FIELDS.find((f) => atFields.some((fe) => fe.field === f.name));
  if (first) form.querySelector(`#p-${first.name}`).focus();
  else if (box) {
    box.setAttribute('tabindex', '-1');
    box.focus();
  }
}

function backLink(ctx) {
  return h('a', { href: urlFor({}), class: 'back', id: 'back-to-list',
    onclick: (ev) => { ev.preventDefault(); ctx.navigate({}); } },
  '← All players');
}

export function showNew(ctx) {
  if (!ctx.can('players:write')) {
    replace(ctx.main, backLink(ctx), h('h1', {}, 'New player'),
      h('p', { class: 'problem', role: 'alert' }, 'You are not allowed to add players (needs players:write).'));
    return;
  }
  // One Idempotency-Key per submission of the same content: a double click or a retry after a
  // lost answer replays the first response instead of creating a second player.
  let attempt = null;
  let done = false;
  const form = playerForm(ctx, null, 'Create player', async (vals, f) => {
    if (done) return;
    const body = { ...vals };
    for (const k of NUMBERS) if (body[k] === null) delete body[k];
    const json = JSON.stringify(body);
    if (!attempt || attempt.json !== json) attempt = { json, key: crypto.randomUUID() };
    f.setAttribute('aria-busy', 'true');
    try {
      const res = await request('POST', '/v1/players', { body, headers: { 'Idempotency-Key': attempt.key } });
      if (done) return;
      done = true;
      ctx.flash = `Created ${res.data.name}.`;
      ctx.navigate({ view: 'player', id: res.data.id });
    } catch (err) {
      if (!done) showErrors(f, err, 'The player could not be created');
    } finally {
      f.removeAttribute('aria-busy');
    }
  }, [h('a', { href: urlFor({}), onclick: (ev) => { ev.preventDefault(); ctx.navigate({}); } }, 'Cancel')]);
  replace(ctx.main, backLink(ctx), h('h1', { id: 'page-title' }, 'New player'), form);
  form.querySelector('#p-name').focus();
}

export async function showPlayer(ctx, id) {
  replace(ctx.main, backLink(ctx), h('p', { class: 'loading', role: 'status' }, 'Loading player…'));
  let res;
  try {
    res = await get(`/v1/players/${encodeURIComponent(id)}`);
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) {
      replace(ctx.main, backLink(ctx), h('h1', {}, 'Player not found'),
        h('p', { class: 'empty', id: 'not-found' }, 'This player does not exist, or was deleted.'));
    } else {
      replace(ctx.main, backLink(ctx), problemBox(err, 'The player could not be loaded'));
    }
    return;
  }
  renderPlayer(ctx, res.data, res.etag);
}

function renderPlayer(ctx, player, etag) {
  const flash = ctx.takeFlash();
  const canWrite = ctx.can('players:write');
  const canDelete = ctx.can('players:delete');
  const status = h('div', { class: 'status-line', role: 'status', id: 'save-status' }, flash || '');
  let current = { player, etag };
  let busy = false;

  const conflictBox = () => h('div', { class: 'problem conflict', role: 'alert', id: 'conflict', tabindex: '-1' },
    h('p', { class: 'problem-title' }, 'Someone else changed this player'),
    h('p', {}, 'It was changed after you opened it, so your changes were not saved. Reload to see the latest version, then make your changes again.'),
    h('button', { type: 'button', id: 'reload-player', onclick: () => showPlayer(ctx, player.id) }, 'Reload the latest version'),
  );

  const deleteButton = canDelete
    ? h('button', { type: 'button', class: 'danger', id: 'delete', onclick: () => dialog.showModal() }, 'Delete…')
    : null;

  let form = null;
  if (canWrite) {
    form = playerForm(ctx, player, 'Save changes', async (vals, f) => {
      if (busy) return;
      const patch = {};
      for (const k of Object.keys(vals)) {
        const before = current.player[k] ?? null;
        if (vals[k] !== before) patch[k] = vals[k];
      }
      clearErrors(f);
      if (Object.keys(patch).length === 0) {
        status.textContent = 'Nothing to save: no field was changed.';
        return;
      }
      busy = true;
      f.setAttribute('aria-busy', 'true');
      status.textContent = 'Saving…';
      try {
        const res = await request('PATCH', `/v1/players/${player.id}`, {
          body: patch, contentType: 'application/merge-patch+json', headers: { 'If-Match': current.etag },
        });
        ctx.flash = 'Saved.';
        renderPlayer(ctx, res.data, res.etag);
      } catch (err) {
        status.textContent = '';
        if (err instanceof ApiError && err.status === 412) {
          const box = conflictBox();
          replace(f.querySelector('#form-problem'), box);
          box.focus();
        } else {
          showErrors(f, err, 'The changes could not be saved');
        }
      } finally {
        busy = false;
        f.removeAttribute('aria-busy');
      }
    }, deleteButton ? [deleteButton] : []);
  }

  const dialogProblem = h('div', { id: 'delete-problem' });
  const dialog = h('dialog', { id: 'confirm-delete', 'aria-labelledby': 'confirm-delete-title' },
    h('h2', { id: 'confirm-delete-title' }, `Delete ${player.name}?`),
    h('p', {}, 'The player is removed for everyone. This cannot be undone.'),
    dialogProblem,
    h('div', { class: 'actions' },
      h('button', { type: 'button', class: 'danger', id: 'confirm-delete-yes', onclick: async () => {
        if (busy) return;
        busy = true;
        try {
          await request('DELETE', `/v1/players/${player.id}`, { headers: { 'If-Match': current.etag } });
          dialog.close();
          ctx.flash = `Deleted ${player.name}.`;
          ctx.navigate({});
        } catch (err) {
          if (err instanceof ApiError && err.status === 412) {
            replace(dialogProblem, conflictBox());
          } else {
            replace(dialogProblem, problemBox(err, 'The player could not be deleted'));
          }
        } finally {
          busy = false;
        }
      } }, 'Delete player'),
      h('button', { type: 'button', id: 'confirm-delete-no', autofocus: true, onclick: () => dialog.close() }, 'Cancel'),
    ),
  );

  const readOnly = h('dl', { class: 'player-facts', id: 'player-facts' },
    FIELDS.map((f) => [
      h('dt', {}, f.label),
      h('dd', { dataset: { field: f.name } }, f.name === 'country'
        ? `${ctx.countryName.get(player.country) || player.country} (${player.country})`
        : (player[f.name] ?? '–')),
    ]));

  const meta = h('dl', { class: 'meta', id: 'player-meta' },
    h('dt', {}, 'Version'), h('dd', {}, String(player.version)),
    h('dt', {}, 'Created'), h('dd', {}, `${isoDateTime(player.created_at)} by ${actor(ctx, player.created_by)}`),
    h('dt', {}, 'Last changed'), h('dd', {}, `${isoDateTime(player.updated_at)} by ${actor(ctx, player.updated_by)}`),
  );

  const history = ctx.can('admin') ? h('section', { class: 'history', id: 'history', 'aria-labelledby': 'history-heading' },
    h('h2', { id: 'history-heading' }, 'History'),
    h('p', { class: 'loading', role: 'status' }, 'Loading history…')) : null;

  replace(ctx.main,
    backLink(ctx),
    h('h1', { id: 'page-title' }, player.name),
    status,
    form || readOnly,
    form ? null : (deleteButton ? h('div', { class: 'actions' }, deleteButton) : null),
    h('h2', {}, 'Record'),
    meta,
    history,
    dialog,
  );
  if (history) loadHistory(ctx, history, player.id, null);
}

function actor(ctx, qualified) {
  if (!qualified) return 'unknown';
  const [kind, ...rest] = qualified.split(':');
  const id = rest.join(':');
  if (kind === 'user' && ctx.me && id === ctx.me.subject) return 'you';
  return kind === 'service' ? `service ${id}` : `user ${id}`;
}

function fmt(v) {
  if (v === null || v === undefined) return '–';
  return typeof v === 'object' ? JSON.stringify(v) : String(v);
}

async function loadHistory(ctx, section, playerId, cursor) {
  let res;
  try {
    res = await get(`/v1/admin/audit${query({ player_id: playerId, limit: 20, cursor })}`);
  } catch (err) {
    replace(section, h('h2', { id: 'history-heading' }, 'History'), problemBox(err, 'The history could not be loaded'));
    return;
  }
  const rows = res.data.items.map((r) => h('tr', { dataset: { action: r.action } },
    h('td', { class: 'num' }, isoDateTime(r.occurred_at)),
    h('td', {}, actor(ctx, `${r.actor_kind}:${r.actor_id}`)),
    h('td', {}, r.action),
    h('td', {}, h('ul', { class: 'changes' }, Object.entries(r.changes || {}).map(([field, c]) => h('li', {},
      h('span', { class: 'change-field' }, field), ': ', fmt(c && c.before), ' → ', fmt(c && c.after))))),
    h('td', {}, h('code', { class: 'request-id' }, r.request_id)),
  ));
  const old = section.querySelector('tbody');
  if (cursor && old) {
    for (const r of rows) old.appendChild(r);
  } else {
    replace(section, h('h2', { id: 'history-heading' }, 'History'),
      rows.length === 0 ? h('p', { class: 'empty' }, 'No recorded changes.') : h('div', { class: 'table-wrap', tabindex: '0', role: 'region', 'aria-label': 'History' },
        h('table', { id: 'history-table' },
          h('caption', { class: 'visually-hidden' }, 'Changes to this player, newest first'),
          h('thead', {}, h('tr', {}, ['When', 'Who', 'What', 'Changes', 'Request id'].map((t) => h('th', { scope: 'col' }, t)))),
          h('tbody', {}, rows))));
  }
  const more = section.querySelector('#history-more');
  if (more) more.remove();
  if (res.data.next_cursor) {
    section.appendChild(h('button', { type: 'button', id: 'history-more',
      onclick: () => loadHistory(ctx, section, playerId, res.data.next_cursor) }, 'Older changes'));
  }
}
