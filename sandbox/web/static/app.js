// The sandbox page. The server draws messages and modals as HTML (escaped there); this script
// fetches them for the chosen person, sends what they type and click, and redraws on each
// server-sent event, so the page follows the bot without a refresh.
"use strict";

const state = {
  user: null,
  view: "channel", // or "home": the bot's App Home tab
  channel: null,
  thread: null,
  people: [],
  known: null, // channel ids seen so far; a channel not in it is new
  fresh: new Set(),
  visited: new Set(),
  modal: { id: null, hash: null },
  servicesBuilt: false,
};
const $ = (id) => document.getElementById(id);

async function api(path, body) {
  const options = body === undefined ? {} : {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  };
  const response = await fetch(path, options);
  if (!response.ok) throw new Error(`${path}: ${response.status} ${await response.text()}`);
  return response.json();
}

const who = () => `user=${encodeURIComponent(state.user)}`;

function toast(text) {
  const el = $("toast");
  el.textContent = text;
  el.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { el.hidden = true; }, 4000);
}

// People

async function loadPeople() {
  const data = await api("/api/people");
  state.people = data.people;
  const saved = localStorage.getItem("sandbox.user");
  state.user = data.people.some((p) => p.id === saved) ? saved : data.people[0].id;
  state.channel = localStorage.getItem("sandbox.channel") || data.home;
  state.home = data.home;
  state.view = localStorage.getItem("sandbox.view") === "home" ? "home" : "channel";
  const select = $("user");
  for (const person of data.people) {
    const option = document.createElement("option");
    option.value = person.id;
    option.textContent = `${person.name} (${person.role})`;
    select.append(option);
  }
  select.value = state.user;
  showRole();
  select.addEventListener("change", () => {
    state.user = select.value;
    localStorage.setItem("sandbox.user", state.user);
    state.modal = { id: null, hash: null };
    showRole();
    // On the Home tab, the new person opens their own Home: Slack tells the bot.
    if (state.view === "home") openHome(); else refreshAll();
  });
}

function showRole() {
  const person = state.people.find((p) => p.id === state.user);
  $("role").textContent = person ? `${person.name} is the ${person.role}.` : "";
}

// Channels, messages, threads

async function loadChannels() {
  const data = await api(`/api/channels?${who()}`);
  if (!data.channels.some((c) => c.id === state.channel)) state.channel = state.home;
  const ids = data.channels.map((c) => c.id);
  if (state.known === null) state.known = new Set(ids); // what exists at load time is not new
  for (const id of ids) {
    if (!state.known.has(id)) state.fresh.add(id);
    state.known.add(id);
  }
  const nav = $("channels");
  nav.replaceChildren();
  for (const channel of data.channels) {
    const link = document.createElement("a");
    link.href = "#";
    link.dataset.channelId = channel.id;
    link.textContent = `${channel.private ? "🔒" : "#"} ${channel.name}`;
    const unseen = state.fresh.has(channel.id) && !state.visited.has(channel.id);
    const current = state.view === "channel" && channel.id === state.channel;
    if (unseen && !current) link.classList.add("new");
    if (current) link.classList.add("active");
    link.addEventListener("click", (event) => {
      event.preventDefault();
      openChannel(channel.id);
    });
    nav.append(link);
  }
}

function openChannel(id) {
  state.channel = id;
  state.thread = null;
  state.visited.add(id);
  localStorage.setItem("sandbox.channel", id);
  showView("channel");
  $("thread").hidden = true;
  refreshAll();
}

function showView(view) {
  state.view = view;
  localStorage.setItem("sandbox.view", view);
  const home = view === "home";
  $("home").hidden = !home;
  $("messages").hidden = home;
  $("composer").hidden = home;
  $("home-link").classList.toggle("active", home);
}

// The App Home: opening it sends Slack's app_home_opened to the bot, which publishes the tab.
async function openHome() {
  showView("home");
  state.thread = null;
  $("thread").hidden = true;
  $("home").innerHTML = '<p class="empty">Opening the Home tab…</p>';
  try {
    const result = await api("/api/home/open", { user: state.user });
    if (!result.ok) toast(result.error || `The app answered ${result.status}.`);
  } catch (error) {
    toast(String(error));
  }
  refreshAll();
}

async function loadHome() {
  const data = await api(`/api/home?${who()}`);
  $("channel-name").textContent = "🏠 ChatOps";
  $("channel-topic").textContent = "Home: what the bot is doing, and what waits for you";
  if (!data.home) return;
  if ($("home").innerHTML !== data.home.html) $("home").innerHTML = data.home.html;
}

function keepScroll(el, html) {
  const atBottom = el.scrollHeight - el.scrollTop - el.clientHeight < 40;
  if (el.innerHTML === html) return;
  el.innerHTML = html;
  if (atBottom) el.scrollTop = el.scrollHeight;
}

async function loadChannel() {
  const data = await api(`/api/channel/${encodeURIComponent(state.channel)}?${who()}`);
  $("channel-name").textContent = `# ${data.name}`;
  $("channel-topic").textContent = data.topic || `${data.members} members`;
  $("composer-text").placeholder = `Message #${data.name}, or a command such as /deploy production all`;
  keepScroll($("messages"), data.html);
}

async function loadThread() {
  if (!state.thread) return;
  const path = `/api/thread/${encodeURIComponent(state.channel)}/${encodeURIComponent(state.thread)}`;
  const data = await api(`${path}?${who()}`);
  keepScroll($("thread-messages"), data.html);
}

// Modals

async function loadModal() {
  const data = await api(`/api/modal?${who()}`);
  const dialog = $("modal");
  if (!data.modal) {
    if (dialog.open) dialog.close();
    state.modal = { id: null, hash: null };
    return;
  }
  const shown = data.modal;
  if (shown.id === state.modal.id && shown.hash === state.modal.hash) return;
  state.modal = { id: shown.id, hash: shown.hash };
  $("modal-title").textContent = shown.title;
  $("modal-body").innerHTML = shown.html;
  $("modal-error").textContent = "";
  $("modal-submit").textContent = shown.submit || "Submit";
  $("modal-submit").hidden = !shown.submit;
  $("modal-close").textContent = shown.close || "Cancel";
  if (!dialog.open) dialog.showModal();
}

function modalValues() {
  const values = {};
  for (const field of $("modal-body").querySelectorAll("[data-block-id][data-type]")) {
    values[field.dataset.blockId] = field.dataset.type === "multi_static_select"
      ? Array.from(field.selectedOptions, (option) => option.value)
      : field.value;
  }
  return values;
}

async function submitModal(event) {
  event.preventDefault();
  const button = $("modal-submit");
  button.disabled = true;
  try {
    const result = await api("/api/submit", {
      user: state.user, view_id: state.modal.id, values: modalValues(),
    });
    if (result.html) $("modal-body").innerHTML = result.html;
    $("modal-error").textContent = result.error || "";
    if (result.closed) {
      $("modal").close();
      state.modal = { id: null, hash: null };
    }
  } catch (error) {
    $("modal-error").textContent = String(error);
  } finally {
    button.disabled = false;
  }
  refreshAll();
}

async function cancelModal() {
  const id = state.modal.id;
  $("modal").close();
  state.modal = { id: null, hash: null };
  if (id) await api("/api/close", { view_id: id });
}

// Buttons and the confirm dialog

function confirmFirst(spec) {
  return new Promise((resolve) => {
    const dialog = $("confirm");
    $("confirm-title").textContent = spec.title || "Are you sure?";
    $("confirm-text").textContent = spec.text || "";
    $("confirm-ok").textContent = spec.confirm || "OK";
    $("confirm-deny").textContent = spec.deny || "Cancel";
    $("confirm-ok").className = spec.style === "danger" ? "btn btn-danger" : "btn btn-primary";
    dialog.returnValue = "";
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
    dialog.showModal();
  });
}

async function onMessageClick(event) {
  const replies = event.target.closest("button.replies");
  if (replies) {
    state.thread = replies.dataset.thread;
    $("thread").hidden = false;
    $("thread-messages").innerHTML = "";
    await loadThread();
    return;
  }
  const button = event.target.closest("button[data-action-id]");
  if (!button) return;
  const message = button.closest(".msg");
  const where = message
    ? { channel: state.channel, ts: message.dataset.ts }
    : { surface: "home" }; // a button of the Home tab
  if (button.dataset.confirm && !(await confirmFirst(JSON.parse(button.dataset.confirm)))) return;
  button.disabled = true;
  try {
    const result = await api("/api/action", {
      user: state.user,
      ...where,
      block_id: button.dataset.blockId,
      action_id: button.dataset.actionId,
    });
    if (!result.ok) toast(result.error || `The app answered ${result.status}.`);
  } catch (error) {
    toast(String(error));
  } finally {
    button.disabled = false;
  }
}

// The composer

async function send(event) {
  event.preventDefault();
  const input = $("composer-text");
  const text = input.value.trim();
  if (!text) return;
  input.value = "";
  input.disabled = true;
  try {
    await api("/api/command", { user: state.user, channel: state.channel, text });
  } catch (error) {
    toast(String(error));
    input.value = text;
  } finally {
    input.disabled = false;
    input.focus();
  }
  refreshAll();
}

// Demo services

function cell(text, className) {
  const td = document.createElement("td");
  if (text) td.textContent = text;
  if (className) td.className = className;
  return td;
}

function buildServices(data) {
  const table = $("services");
  const head = document.createElement("tr");
  for (const title of ["Service", ...data.environments, "Break a version"]) {
    const th = document.createElement("th");
    th.textContent = title;
    head.append(th);
  }
  table.replaceChildren(head);
  for (const row of data.rows) {
    const tr = document.createElement("tr");
    tr.dataset.service = row.service;
    tr.append(cell(row.service, "svc"));
    for (const env of data.environments) {
      const td = cell("", "where");
      td.dataset.environment = env;
      tr.append(td);
    }
    const control = cell("", "control");
    const version = document.createElement("select");
    version.name = "version";
    version.setAttribute("aria-label", `${row.service} version`);
    for (const v of data.versions) version.append(new Option(v, v));
    version.value = data.versions[data.versions.length - 1];
    const mode = document.createElement("select");
    mode.name = "mode";
    mode.setAttribute("aria-label", `${row.service} mode`);
    for (const m of data.modes) mode.append(new Option(m.mode, m.mode));
    version.addEventListener("change", () => { mode.value = tr.faults[version.value] || "healthy"; });
    mode.addEventListener("change", async () => {
      try {
        await api("/api/services/fault", {
          service: row.service, version: version.value, mode: mode.value,
        });
        toast(`${row.service} ${version.value} is now ${mode.value}.`);
      } catch (error) {
        toast(String(error));
      }
      loadServices();
    });
    control.append(version, mode);
    tr.append(control);
    table.append(tr);
  }
  const modes = $("modes");
  modes.replaceChildren();
  for (const m of data.modes) {
    const dt = document.createElement("dt");
    dt.textContent = `${m.mode}:`;
    const dd = document.createElement("dd");
    dd.textContent = m.note;
    modes.append(dt, dd);
  }
  state.servicesBuilt = true;
}

async function loadServices() {
  const data = await api("/api/services");
  if (!state.servicesBuilt) buildServices(data);
  for (const row of data.rows) {
    const tr = $("services").querySelector(`tr[data-service="${CSS.escape(row.service)}"]`);
    if (!tr) continue;
    tr.faults = row.faults;
    for (const td of tr.querySelectorAll("td.where")) {
      const where = row.running[td.dataset.environment];
      td.replaceChildren();
      const version = document.createElement("span");
      version.className = "ver";
      version.textContent = where.version || "–";
      td.append(version);
      if (where.last) {
        const answer = document.createElement("span");
        const ok = where.last.status === 200;
        answer.className = `answer ${ok ? "ok" : "bad"}`;
        answer.textContent = String(where.last.status);
        answer.title = `last health answer: ${where.last.status} on ${where.last.path} (${where.last.version})`;
        td.append(answer);
      }
      if (where.mode !== "healthy") {
        const broken = document.createElement("span");
        broken.className = "broken";
        broken.textContent = where.mode;
        td.append(broken);
      }
      if (where.colours) {
        const colours = document.createElement("div");
        colours.className = "colours";
        colours.textContent = Object.entries(where.colours)
          .map(([colour, c]) => `${colour} ${c.version || "–"} ${c.weight}%`)
          .join(" · ");
        colours.title = "canary: each colour's version and share of the traffic";
        td.append(colours);
      }
    }
    const version = tr.querySelector("select[name=version]");
    const mode = tr.querySelector("select[name=mode]");
    if (document.activeElement !== mode) mode.value = row.faults[version.value] || "healthy";
  }
  const records = $("records");
  records.replaceChildren(...data.records.map((key) => {
    const li = document.createElement("li");
    li.textContent = key;
    return li;
  }));
  $("records-none").hidden = data.records.length > 0;
}

// Replicas (`--replicas N`): each one's state with Kill / Start, and who owns each run

function row(cells, header) {
  const tr = document.createElement("tr");
  for (const content of cells) {
    const td = document.createElement(header ? "th" : "td");
    if (content instanceof Node) td.append(content);
    else td.textContent = content;
    tr.append(td);
  }
  return tr;
}

function badge(text, className) {
  const span = document.createElement("span");
  span.className = className;
  span.textContent = text;
  return span;
}

function leaseLeft(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  return seconds >= 0 ? `${seconds.toFixed(1)} s left` : `lapsed ${(-seconds).toFixed(1)} s ago`;
}

async function replicaButton(replica, verb) {
  try {
    const result = await api(`/api/replicas/${verb}`, { replica });
    if (!result.ok) toast(result.error || `could not ${verb} ${replica}`);
  } catch (error) {
    toast(String(error));
  }
  loadReplicas();
}

async function loadReplicas() {
  const data = await api("/api/replicas");
  const pane = $("replicas-pane");
  pane.hidden = !data.replicas;
  if (!data.replicas) return false;
  const table = $("replicas");
  table.replaceChildren(row(["Replica", "State", "Presence", ""], true));
  for (const replica of data.replicas) {
    const button = document.createElement("button");
    button.type = "button";
    const killed = replica.state === "killed" || replica.state === "exited";
    button.className = killed ? "btn btn-primary" : "btn btn-danger";
    button.textContent = killed ? "Start" : "Kill";
    button.disabled = replica.state === "starting";
    button.dataset.replica = replica.name;
    button.addEventListener("click", () => {
      button.disabled = true;
      replicaButton(replica.name, killed ? "start" : "kill");
    });
    const tr = row([replica.name, badge(replica.state, `state ${replica.state}`),
      leaseLeft(replica.presence_s), button]);
    tr.dataset.replica = replica.name;
    table.append(tr);
  }
  const leases = $("leases");
  leases.replaceChildren(row(["Run", "State", "Owner", "Lease"], true));
  for (const run of data.runs) {
    const what = document.createElement("div");
    what.append(badge(run.id, "ver"));
    const services = run.services.split(", ").filter(Boolean);
    const where = services.length > 2 ? `${services.length} services` : services.join(", ");
    what.append(badge(`${run.environment}: ${where}`, "run-where"));
    what.title = `${run.environment}: ${run.services}`;
    const owner = run.owner ? `${run.owner} · gen ${run.generation}` : "none";
    const lapsed = run.lease_s !== null && run.lease_s < 0;
    const lease = badge(run.owner ? leaseLeft(run.lease_s) : "released", lapsed ? "lapsed" : "");
    const tr = row([what, run.state, owner, lease]);
    tr.dataset.run = run.id;
    leases.append(tr);
  }
  if (!data.runs.length) leases.append(row(["No run yet: type /deploy production all.", "", "", ""]));
  return true;
}

// Live updates

let soon = null;
let servicesSoon = null;

async function refreshAll() {
  try {
    await loadChannels();
    const main = state.view === "home" ? loadHome() : loadChannel();
    await Promise.all([main, loadThread(), loadModal(), loadServices()]);
  } catch (error) {
    toast(String(error));
  }
}

function refreshSoon(event) {
  if (event && event.kind === "replicas") {
    loadReplicas().catch(() => {});
    return;
  }
  if (event && event.kind === "services") {
    if (!servicesSoon) {
      servicesSoon = setTimeout(() => { servicesSoon = null; loadServices().catch(() => {}); }, 300);
    }
    return;
  }
  if (!soon) soon = setTimeout(() => { soon = null; refreshAll(); }, 60);
}

function listen() {
  const events = new EventSource("/api/events");
  const live = $("live");
  events.onopen = () => { live.textContent = "live"; live.className = "live on"; refreshSoon(); };
  events.onerror = () => { live.textContent = "reconnecting…"; live.className = "live off"; };
  events.onmessage = (message) => refreshSoon(JSON.parse(message.data));
}

async function start() {
  $("composer").addEventListener("submit", send);
  $("messages").addEventListener("click", onMessageClick);
  $("thread-messages").addEventListener("click", onMessageClick);
  $("home").addEventListener("click", onMessageClick);
  $("home-link").addEventListener("click", (event) => { event.preventDefault(); openHome(); });
  $("thread-close").addEventListener("click", () => { state.thread = null; $("thread").hidden = true; });
  $("modal-form").addEventListener("submit", submitModal);
  $("modal-close").addEventListener("click", cancelModal);
  $("modal").addEventListener("cancel", (event) => { event.preventDefault(); cancelModal(); });
  await loadPeople();
  state.visited.add(state.channel);
  if (state.view === "home") await openHome();
  else await refreshAll();
  listen();
  // What AWS holds (ECS versions, weights, the S3 records) also changes without a Slack
  // event, as when a run writes its records after its last message: look every 2 s too.
  setInterval(() => { if (!document.hidden) loadServices().catch(() => {}); }, 2000);
  // The leases change in the database, with no event: with replicas, look every second.
  if (await loadReplicas().catch(() => false)) {
    setInterval(() => { if (!document.hidden) loadReplicas().catch(() => {}); }, 1000);
  }
  $("composer-text").focus();
}

start();
