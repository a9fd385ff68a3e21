// Contacts view (/app/contacts): find people and send contact requests, answer incoming ones,
// withdraw outgoing ones, see contacts' presence live (from the events socket), call, remove,
// block and unblock.

import * as api from '../api.js';
import { $, busy, h, toast } from '../dom.js';

export const nav = 'contacts';

const PRESENCE_TEXT = { offline: 'Offline', online: 'Online', in_meeting: 'In a meeting' };
const SEARCH_DELAY_MS = 250;

export async function render(root, ctx) {
  ctx.setTitle('Contacts');
  const searchInput = h('input', { id: 'user-search', type: 'search', placeholder: 'Find people: their exact email, or the name of someone you know', 'aria-label': 'Find people by email or name', autocomplete: 'off' });
  const results = h('ul', { id: 'search-results', class: 'item-list' });
  const lists = h('div', { class: 'contact-lists' });
  root.append(
    h('header', { class: 'view-head' }, h('h1', {}, 'Contacts')),
    h('section', { class: 'card' }, h('h2', {}, 'Add people'), searchInput, results),
    lists);

  // What we know, for the search results' buttons: user id -> "contact" | "outgoing" | "incoming" | "blocked".
  let relation = new Map();

  async function load() {
    const [contacts, requests, blocked] = await Promise.all([api.listContacts(), api.contactRequests(), api.listBlocks()]);
    if (!ctx.alive) return;
    relation = new Map([
      ...contacts.map((u) => [u.id, 'contact']),
      ...requests.outgoing.map((u) => [u.id, 'outgoing']),
      ...requests.incoming.map((u) => [u.id, 'incoming']),
      ...blocked.map((u) => [u.id, 'blocked']),
    ]);
    lists.replaceChildren(
      listSection('incoming-requests', 'Requests to you', requests.incoming, incomingRow, null),
      listSection('outgoing-requests', 'Waiting for an answer', requests.outgoing, outgoingRow, null),
      listSection('contact-list', 'Your contacts', contacts, contactRow, 'No contacts yet: search for people above.'),
      listSection('blocked-list', 'Blocked', blocked, blockedRow, null));
    renderResults(lastResults);
  }

  // Reload after anything changes; several changes in a row cause one reload.
  let reloadTimer = 0;
  const reload = () => {
    clearTimeout(reloadTimer);
    reloadTimer = setTimeout(() => load().catch((err) => toast(err.message, 'error')), 100);
  };
  ctx.onCleanup(() => clearTimeout(reloadTimer));
  const act = (button, fn, done) => busy(button, async () => {
    await fn();
    if (done) toast(done);
    reload();
  });

  // ---- rows

  const person = (u, ...extra) => [
    h('div', { class: 'item-main' }, h('span', { class: 'item-title' }, u.display_name), h('span', { class: 'item-sub' }, u.email)),
    ...extra,
  ];
  const button = (cls, text, onclick) => h('button', { class: `button ${cls}`, type: 'button', onclick: (e) => onclick(e.currentTarget) }, text);

  function incomingRow(u) {
    return h('li', { class: 'request', 'data-user-id': u.id }, person(u,
      h('div', { class: 'actions' },
        button('accept primary', 'Accept', (b) => act(b, () => api.acceptRequest(u.id), `${u.display_name} is now a contact`)),
        button('decline', 'Decline', (b) => act(b, () => api.declineRequest(u.id))))));
  }
  function outgoingRow(u) {
    return h('li', { class: 'request', 'data-user-id': u.id }, person(u,
      h('div', { class: 'actions' }, button('withdraw', 'Withdraw', (b) => act(b, () => api.withdrawRequest(u.id))))));
  }
  function contactRow(u) {
    // The list's answer is newer than any event received before it.
    const presence = u.presence || ctx.events.presence.get(u.id) || 'offline';
    return h('li', { class: 'contact', 'data-user-id': u.id, 'data-presence': presence }, person(u,
      h('span', { class: 'presence' }, h('span', { class: 'dot', 'aria-hidden': 'true' }), h('span', { class: 'presence-label' }, PRESENCE_TEXT[presence] || presence)),
      h('div', { class: 'actions' },
        button('call primary', 'Call', (b) => busy(b, async () => {
          const m = await api.callContact(u.id);
          location.assign(`${m.url}?autojoin=1`); // the caller goes straight in; the contact's app rings
        })),
        button('remove', 'Remove', (b) => {
          if (window.confirm(`Remove ${u.display_name} from your contacts?`)) act(b, () => api.removeContact(u.id));
        }),
        button('block danger', 'Block', (b) => {
          if (window.confirm(`Block ${u.display_name}? They cannot find you, ask to be a contact or call you.`)) act(b, () => api.block(u.id), `${u.display_name} is blocked`);
        }))));
  }
  function blockedRow(u) {
    return h('li', { class: 'blocked', 'data-user-id': u.id }, person(u,
      h('div', { class: 'actions' }, button('unblock', 'Unblock', (b) => act(b, () => api.unblock(u.id))))));
  }

  // ---- search

  let lastResults = [];
  function renderResults(users) {
    lastResults = users;
    const label = { contact: 'Contact', outgoing: 'Requested', incoming: 'Asked you', blocked: 'Blocked' };
    results.replaceChildren(...users.map((u) => h('li', { class: 'user-result', 'data-user-id': u.id }, person(u,
      relation.has(u.id)
        ? h('span', { class: 'tag' }, label[relation.get(u.id)])
        : button('add primary', 'Add', (b) => busy(b, async () => {
          const status = await api.requestContact(u.id);
          toast(status === 'accepted' ? `${u.display_name} is now a contact` : `Contact request sent to ${u.display_name}`);
          await load();
        }))))));
  }

  let searchTimer = 0;
  let searchSeq = 0;
  searchInput.addEventListener('input', () => {
    clearTimeout(searchTimer);
    const q = searchInput.value.trim();
    const seq = ++searchSeq;
    if (q.length < 2) return renderResults([]);
    searchTimer = setTimeout(async () => {
      try {
        const users = await api.searchUsers(q);
        if (seq === searchSeq && ctx.alive) renderResults(users);
      } catch (err) {
        toast(err.message, 'error');
      }
    }, SEARCH_DELAY_MS);
  });
  ctx.onCleanup(() => clearTimeout(searchTimer));

  // ---- live updates

  ctx.onCleanup(ctx.events.on('presence', ({ user_id: id, presence }) => {
    const row = lists.querySelector(`.contact[data-user-id="${CSS.escape(id)}"]`);
    if (!row) return;
    row.dataset.presence = presence;
    $('.presence-label', row).textContent = PRESENCE_TEXT[presence] || presence;
  }));
  ctx.onCleanup(ctx.events.on('contacts_changed', reload));
  ctx.onCleanup(ctx.events.on('open', reload)); // changes may have been missed while disconnected

  await load();
}

function listSection(id, title, users, row, empty) {
  if (!users.length && !empty) return h('section', { class: 'card', hidden: true }, h('ul', { id }));
  return h('section', { class: 'card' },
    h('h2', {}, title, h('span', { class: 'count' }, String(users.length))),
    users.length ? h('ul', { id, class: 'item-list' }, users.map(row)) : h('p', { id, class: 'empty' }, empty));
}
