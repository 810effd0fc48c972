// bittide web UI: a client of the daemon's documented API (docs/api.md).
// Pages by the URL's fragment: #/ (list), #/add, #/t/<hash> (one torrent),
// #/stats, #/settings. Live updates come from GET /api/v1/events; the
// page asks the API again only when the events say something changed.
// Every element is built with the DOM (textContent, never innerHTML), so a
// torrent's name or a tracker's message can never become markup.

const CSRF = { "X-Bittide-Csrf": "1" };
const STATES = ["metadata", "checking", "queued", "downloading", "seeding", "paused", "moving", "missing_files", "error"];
const MEDIA = /\.(mp4|m4v|mkv|webm|mov|avi|mp3|m4a|flac|ogg|opus|wav)$/i;
const HISTORY_SECONDS = 300;

const store = {
  torrents: new Map(), // info_hash -> list row
  selected: new Set(),
  history: [], // {t, down, up}, newest last
  settings: null,
  sort: { key: "queue_position", dir: 1 },
  filter: { state: "", category: "", text: "" },
  loginRequired: false,
};

// ---------------------------------------------------------------- the API

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function api(method, path, { json, body, headers } = {}) {
  const init = { method, headers: { ...CSRF, ...headers }, credentials: "same-origin" };
  if (json !== undefined) {
    init.body = JSON.stringify(json);
    init.headers["Content-Type"] = "application/json";
  } else if (body !== undefined) {
    init.body = body;
  }
  const r = await fetch(path, init);
  if (r.status === 401 && path !== "/api/v1/login") {
    await login();
    return api(method, path, { json, body, headers });
  }
  const text = await r.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = text;
    }
  }
  if (!r.ok) {
    throw new ApiError(r.status, (data && data.error) || `HTTP ${r.status}`);
  }
  return data;
}

// ------------------------------------------------------------------ login

let loginWaiters = null;

/** Shows the login form; resolves once a login succeeded. */
function login() {
  if (loginWaiters) return new Promise((ok) => loginWaiters.push(ok));
  loginWaiters = [];
  store.loginRequired = true;
  const dialog = document.getElementById("login-dialog");
  const form = document.getElementById("login-form");
  const error = document.getElementById("login-error");
  return new Promise((resolve) => {
    loginWaiters.push(resolve);
    form.onsubmit = async (ev) => {
      ev.preventDefault();
      error.textContent = "";
      const data = Object.fromEntries(new FormData(form));
      try {
        await api("POST", "/api/v1/login", { json: data });
      } catch (e) {
        error.textContent = e.message;
        return;
      }
      form.reset();
      dialog.close();
      document.getElementById("logout").hidden = false;
      const waiters = loginWaiters;
      loginWaiters = null;
      waiters.forEach((w) => w());
      if (events) connectEvents();
    };
    dialog.addEventListener("cancel", (ev) => ev.preventDefault());
    if (!dialog.open) dialog.showModal();
  });
}

async function logout() {
  await api("POST", "/api/v1/logout");
  location.reload();
}

// ---------------------------------------------------------------- helpers

/** An element: h("a", {href: "#"}, "text", child…). */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (v === true) el.setAttribute(k, "");
    else el.setAttribute(k, v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];

function bytes(n) {
  if (!Number.isFinite(n)) return "–";
  let i = 0;
  while (n >= 1024 && i < UNITS.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i === 0 ? n : n.toFixed(n < 10 ? 2 : n < 100 ? 1 : 0)} ${UNITS[i]}`;
}

const rate = (n) => (n > 0 ? `${bytes(n)}/s` : "–");
const percent = (p) => `${(Math.floor(p * 1000) / 10).toFixed(1)} %`;

function duration(s) {
  if (s === null || s === undefined) return "∞";
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
}

function when(unix) {
  return unix ? new Date(unix * 1000).toLocaleString() : "–";
}

function bar(progress, state) {
  const el = h("div", { class: "bar", role: "progressbar", "aria-valuemin": "0", "aria-valuemax": "100" },
    h("span"), h("b"));
  setBar(el, progress, state);
  return el;
}

/** Sets a bar to `progress`; the fill is sized through the CSSOM (the
 * page's CSP refuses style attributes). */
function setBar(el, progress, state) {
  el.className = state === "error" ? "bar error" : progress >= 1 ? "bar done" : "bar";
  el.setAttribute("aria-valuenow", String(Math.floor(progress * 100)));
  el.firstChild.style.width = `${(progress * 100).toFixed(2)}%`;
  el.lastChild.textContent = percent(progress);
}

/** The nodes that are there (a list may hold nulls for "nothing"). */
const present = (...nodes) => nodes.filter((n) => n !== null && n !== undefined && n !== false);

const stateBadge = (s) => h("span", { class: `state ${s}` }, s);

function toast(message, bad = false) {
  const t = h("div", { class: bad ? "toast bad" : "toast" }, message);
  document.getElementById("toasts").append(t);
  setTimeout(() => t.remove(), bad ? 8000 : 4000);
}

/** Runs an action, telling the user when it failed. */
async function act(what, fn) {
  try {
    await fn();
  } catch (e) {
    toast(`${what}: ${e.message}`, true);
  }
}

const torrentPath = (hash) => `/api/v1/torrents/${hash}`;
const streamUrl = (hash, index) => `${torrentPath(hash)}/files/${index}/stream`;

// ----------------------------------------------------------------- events

let events = null;
let renderQueued = false;

/** The list and the graph follow the daemon's event stream. */
function connectEvents() {
  if (events) events.close();
  const link = document.getElementById("link");
  events = new EventSource("/api/v1/events");
  events.onopen = () => {
    link.classList.add("live");
    link.title = "Live updates: connected";
    refreshList();
  };
  events.onerror = () => {
    link.classList.remove("live");
    link.title = "Live updates: reconnecting";
    // A stream refused for want of a login does not come back by itself.
    if (events.readyState === EventSource.CLOSED) setTimeout(checkLogin, 2000);
  };
  events.onmessage = (m) => {
    let ev;
    try {
      ev = JSON.parse(m.data);
    } catch {
      return;
    }
    onEvent(ev);
  };
}

async function checkLogin() {
  await act("Connecting", async () => {
    await api("GET", "/api/v1/stats");
    connectEvents();
  });
}

function onEvent(ev) {
  const row = store.torrents.get(ev.info_hash);
  switch (ev.type) {
    case "stats":
      store.history.push({ t: Date.now(), down: ev.download_rate, up: ev.upload_rate });
      while (store.history.length > HISTORY_SECONDS) store.history.shift();
      document.getElementById("rate-down").textContent = rate(ev.download_rate);
      document.getElementById("rate-up").textContent = rate(ev.upload_rate);
      for (const t of ev.torrents || []) store.torrents.set(t.info_hash, t);
      page.onBeat?.(ev);
      break;
    case "added":
      refreshList();
      break;
    case "removed":
      store.torrents.delete(ev.info_hash);
      store.selected.delete(ev.info_hash);
      break;
    case "state_changed":
      if (row) row.state = ev.state;
      break;
    case "metadata_received":
      if (row) row.name = ev.name;
      break;
    case "finished":
      toast(`Finished: ${row ? row.name : ev.info_hash}`);
      break;
    case "error":
      toast(`${row ? row.name : ev.info_hash}: ${ev.message}`, true);
      break;
  }
  page.onChange?.(ev);
  scheduleRender();
}

function scheduleRender() {
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => {
    renderQueued = false;
    page.render?.();
  });
}

async function refreshList() {
  await act("Loading the list", async () => {
    const list = await api("GET", "/api/v1/torrents");
    store.torrents = new Map(list.map((t) => [t.info_hash, t]));
    for (const h of [...store.selected]) if (!store.torrents.has(h)) store.selected.delete(h);
    scheduleRender();
  });
}

// ----------------------------------------------------------------- pages

/** The page shown: {render, onBeat, onChange, leave}. */
let page = {};

function route() {
  page.leave?.();
  const hash = location.hash || "#/";
  const main = document.getElementById("main");
  main.replaceChildren();
  const [, name, arg] = hash.match(/^#\/([^/]*)\/?(.*)$/) || [];
  const pages = { "": listPage, add: addPage, t: detailsPage, stats: statsPage, settings: settingsPage };
  const make = pages[name] || listPage;
  for (const a of document.querySelectorAll("nav a")) {
    const current = a.dataset.page === (make === detailsPage ? "list" : make.pageName);
    if (current) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  page = make(main, decodeURIComponent(arg || ""));
  page.render?.();
}

// ------------------------------------------------------------------ list

const COLUMNS = [
  { key: "name", label: "Name", cls: "name" },
  { key: "size", label: "Size", cls: "num col-size" },
  { key: "progress", label: "Progress", cls: "col-progress" },
  { key: "state", label: "State", cls: "" },
  { key: "download_rate", label: "Down", cls: "num" },
  { key: "upload_rate", label: "Up", cls: "num col-up" },
  { key: "eta", label: "ETA", cls: "num col-eta" },
  { key: "peers", label: "Peers", cls: "num col-peers" },
  { key: "ratio", label: "Ratio", cls: "num col-ratio" },
];

function listPage(main) {
  const f = store.filter;
  const search = h("input", {
    type: "search", placeholder: "Filter by name or hash", "aria-label": "Filter by name or hash",
    value: f.text, oninput: (e) => { f.text = e.target.value; render(); },
  });
  const stateSel = h("select", { "aria-label": "State", onchange: (e) => { f.state = e.target.value; render(); } },
    h("option", { value: "" }, "All states"),
    STATES.map((s) => h("option", { value: s, selected: f.state === s }, s)));
  const catSel = h("select", { "aria-label": "Category", onchange: (e) => { f.category = e.target.value; render(); } });
  const pauseBtn = h("button", { type: "button", id: "pause-selected", onclick: () => bulk("pause") }, "Pause");
  const resumeBtn = h("button", { type: "button", id: "resume-selected", onclick: () => bulk("resume") }, "Resume");
  const removeBtn = h("button", { type: "button", id: "remove-selected", class: "danger",
    onclick: () => confirmRemove([...store.selected]) }, "Remove…");
  const allBox = h("input", { type: "checkbox", "aria-label": "Select all shown",
    onchange: (e) => { for (const t of shown()) e.target.checked ? store.selected.add(t.info_hash) : store.selected.delete(t.info_hash); render(); } });
  const headRow = h("tr", {}, h("th", {}, allBox), COLUMNS.map((c) => {
    const th = h("th", { class: c.cls, scope: "col" },
      h("button", { type: "button", onclick: () => sortBy(c.key) }, c.label));
    th.dataset.key = c.key;
    return th;
  }));
  const tbody = h("tbody", { id: "torrent-rows" });
  const count = h("span", { class: "muted", id: "count" });
  main.append(
    h("div", { class: "toolbar" }, search, stateSel, catSel, h("span", { class: "spacer" }), count, pauseBtn, resumeBtn, removeBtn),
    h("div", { class: "table-wrap" }, h("table", { id: "torrents" }, h("thead", {}, headRow), tbody)),
  );

  function sortBy(key) {
    const s = store.sort;
    s.dir = s.key === key ? -s.dir : key === "name" || key === "queue_position" ? 1 : -1;
    s.key = key;
    render();
  }

  function shown() {
    const text = f.text.trim().toLowerCase();
    const rows = [...store.torrents.values()].filter((t) =>
      (!f.state || t.state === f.state) &&
      (!f.category || (t.category || "") === f.category) &&
      (!text || t.name.toLowerCase().includes(text) || t.info_hash.startsWith(text)));
    const { key, dir } = store.sort;
    const val = (t) => (key === "eta" ? (t.eta ?? Infinity) : t[key]);
    rows.sort((a, b) => {
      const x = val(a), y = val(b);
      const c = typeof x === "string" ? x.localeCompare(y) : x - y;
      return (c || a.queue_position - b.queue_position) * dir;
    });
    return rows;
  }

  async function bulk(action) {
    const hashes = [...store.selected];
    if (!hashes.length) return toast("Select torrents first");
    await act(action, () => api("POST", `/api/v1/torrents/${action}`, { json: { hashes } }));
  }

  // Rows are kept and updated in place (moved only when the order
  // changes), so a focused checkbox or link keeps its focus while the list
  // follows the events.
  const rowEls = new Map(); // info_hash -> {tr, cells}

  function makeRow(hash) {
    const box = h("input", { type: "checkbox",
      onchange: (e) => { e.target.checked ? store.selected.add(hash) : store.selected.delete(hash); render(); } });
    const link = h("a", { href: `#/t/${hash}` });
    const error = h("div", { class: "error" });
    const cells = {
      box, link, error,
      size: h("td", { class: "num col-size" }),
      bar: bar(0, ""),
      state: h("td", {}),
      down: h("td", { class: "num" }),
      up: h("td", { class: "num col-up" }),
      eta: h("td", { class: "num col-eta" }),
      peers: h("td", { class: "num col-peers" }),
      ratio: h("td", { class: "num col-ratio" }),
    };
    const tr = h("tr", { dataset: { hash } },
      h("td", {}, box), h("td", { class: "name" }, link, error), cells.size,
      h("td", { class: "col-progress" }, cells.bar), cells.state, cells.down, cells.up, cells.eta, cells.peers, cells.ratio);
    return { tr, cells };
  }

  function updateRow({ tr, cells: c }, t) {
    const selected = store.selected.has(t.info_hash);
    tr.className = selected ? "selected" : "";
    c.box.checked = selected;
    c.box.setAttribute("aria-label", `Select ${t.name}`);
    c.link.textContent = t.name;
    c.error.textContent = t.error || "";
    c.error.hidden = !t.error;
    c.size.textContent = bytes(t.wanted);
    setBar(c.bar, t.progress, t.state);
    if (c.state.textContent !== t.state) c.state.replaceChildren(stateBadge(t.state));
    c.down.textContent = rate(t.download_rate);
    c.up.textContent = rate(t.upload_rate);
    c.eta.textContent = t.state === "downloading" ? duration(t.eta) : "–";
    c.peers.textContent = t.peers;
    c.ratio.textContent = t.ratio.toFixed(2);
  }

  function render() {
    const cats = [...new Set([...store.torrents.values()].map((t) => t.category || ""))].filter(Boolean).sort();
    if (catSel.options.length !== cats.length + 1 || cats.some((c, i) => catSel.options[i + 1].value !== c)) {
      catSel.replaceChildren(h("option", { value: "" }, "All categories"),
        cats.map((c) => h("option", { value: c, selected: f.category === c }, c)));
    }
    for (const th of headRow.querySelectorAll("th[data-key]")) {
      if (th.dataset.key === store.sort.key) th.setAttribute("aria-sort", store.sort.dir > 0 ? "ascending" : "descending");
      else th.removeAttribute("aria-sort");
    }
    const rows = shown();
    allBox.checked = rows.length > 0 && rows.every((t) => store.selected.has(t.info_hash));
    const keep = new Set(rows.map((t) => t.info_hash));
    for (const [hash, r] of rowEls) {
      if (!keep.has(hash)) {
        r.tr.remove();
        rowEls.delete(hash);
      }
    }
    for (const el of tbody.querySelectorAll("tr.empty-row")) el.remove();
    rows.forEach((t, i) => {
      let r = rowEls.get(t.info_hash);
      if (!r) {
        r = makeRow(t.info_hash);
        rowEls.set(t.info_hash, r);
      }
      updateRow(r, t);
      if (tbody.children[i] !== r.tr) tbody.insertBefore(r.tr, tbody.children[i] || null);
    });
    if (!rows.length) {
      tbody.append(h("tr", { class: "empty-row" }, h("td", { colspan: String(COLUMNS.length + 1), class: "empty" },
        store.torrents.size ? "No torrent matches the filter." : "No torrents yet. ",
        store.torrents.size ? null : h("a", { href: "#/add" }, "Add one"))));
    }
    count.textContent = `${rows.length} of ${store.torrents.size}`;
    for (const b of [pauseBtn, resumeBtn, removeBtn]) b.disabled = store.selected.size === 0;
  }
  return { render };
}
listPage.pageName = "list";

/** Asks, then removes `hashes` (with their data if ticked). */
function confirmRemove(hashes, after) {
  if (!hashes.length) return;
  const dialog = document.getElementById("remove-dialog");
  const form = document.getElementById("remove-form");
  const names = hashes.map((x) => store.torrents.get(x)?.name || x);
  document.getElementById("remove-what").textContent =
    names.length === 1 ? `Remove “${names[0]}”?` : `Remove ${names.length} torrents?`;
  form.reset();
  document.getElementById("remove-cancel").onclick = () => dialog.close();
  form.onsubmit = async (ev) => {
    ev.preventDefault();
    const deleteData = form.elements.delete_data.checked;
    dialog.close();
    for (const x of hashes) {
      await act("Remove", () => api("DELETE", `${torrentPath(x)}?delete_data=${deleteData}`));
      store.selected.delete(x);
    }
    after?.();
  };
  dialog.showModal();
}

// ------------------------------------------------------------------- add

/** A bencoded value (BEP 3) from bytes; strings stay bytes. */
function bdecode(buf) {
  let i = 0;
  const fail = () => { throw new Error("not a valid .torrent file"); };
  function num(end) {
    const s = new TextDecoder().decode(buf.subarray(i, end));
    if (!/^-?\d+$/.test(s)) fail();
    i = end + 1;
    return Number(s);
  }
  function value(depth) {
    if (depth > 64 || i >= buf.length) fail();
    const c = buf[i];
    if (c === 0x69) { // i…e
      i++;
      const end = buf.indexOf(0x65, i);
      if (end < 0) fail();
      return num(end);
    }
    if (c === 0x6c || c === 0x64) { // l…e, d…e
      i++;
      const list = [];
      while (buf[i] !== 0x65) {
        if (i >= buf.length) fail();
        list.push(value(depth + 1));
      }
      i++;
      if (c === 0x6c) return list;
      const dict = new Map();
      for (let k = 0; k + 1 < list.length; k += 2) dict.set(new TextDecoder().decode(list[k]), list[k + 1]);
      return dict;
    }
    const colon = buf.indexOf(0x3a, i);
    if (colon < 0) fail();
    const len = num(colon);
    if (len < 0 || i + len > buf.length) fail();
    const s = buf.subarray(i, i + len);
    i += len;
    return s;
  }
  return value(0);
}

/** The files of a .torrent, in its order (the indices `only` names). */
function torrentFiles(bytesArr) {
  const meta = bdecode(bytesArr);
  const info = meta instanceof Map && meta.get("info");
  if (!(info instanceof Map)) throw new Error("not a valid .torrent file: no info");
  const text = (b) => new TextDecoder().decode(b);
  const name = text(info.get("name.utf-8") || info.get("name") || new Uint8Array());
  const files = info.get("files");
  if (!Array.isArray(files)) return { name, files: [{ index: 0, path: name, size: info.get("length") || 0, pad: false }] };
  return {
    name,
    files: files.map((f, index) => ({
      index,
      path: (f.get("path.utf-8") || f.get("path") || []).map(text).join("/"),
      size: f.get("length") || 0,
      pad: f.get("attr") ? text(f.get("attr")).includes("p") : false,
    })),
  };
}

function addPage(main) {
  let file = null; // {name, bytes, files}
  const fileInput = h("input", { type: "file", id: "torrent-file", accept: ".torrent,application/x-bittorrent",
    onchange: (e) => pick(e.target.files[0]) });
  const drop = h("div", { class: "drop", id: "drop" },
    h("p", {}, "Drop a .torrent file here, or "), h("label", {}, "choose one: ", fileInput));
  const fileList = h("div", { id: "file-choice" });
  const links = h("textarea", { name: "links", id: "links", placeholder: "magnet:?xt=urn:btih:…  or  https://…/file.torrent (one per line)" });
  const savePath = h("input", { name: "save_path", id: "save-path", value: store.settings?.download_dir || "" });
  const category = h("input", { name: "category", id: "category" });
  const tags = h("input", { name: "tags", id: "tags", placeholder: "comma-separated" });
  const paused = h("input", { type: "checkbox", name: "paused", id: "paused" });
  const sequential = h("input", { type: "checkbox", name: "sequential", id: "sequential" });
  const firstLast = h("input", { type: "checkbox", name: "first_last_piece" });
  const submit = h("button", { type: "submit", class: "primary", id: "add-submit" }, "Add");
  const form = h("form", { class: "panel", id: "add-form", onsubmit: send },
    h("h1", {}, "Add torrents"),
    drop, fileList,
    h("label", {}, "Magnet links or .torrent URLs", links),
    h("div", { class: "grid2" },
      h("label", {}, "Save to", savePath),
      h("label", {}, "Category", category)),
    h("label", {}, "Tags", tags),
    h("label", { class: "check" }, paused, "Add paused"),
    h("label", { class: "check" }, sequential, "Download in order (for watching while it downloads)"),
    h("label", { class: "check" }, firstLast, "First and last pieces of each file first"),
    h("p", { class: "muted" }, "A magnet link's files can be chosen once its metadata is in: add it paused, then pick files on its page."),
    h("div", { class: "buttons" }, submit));
  main.append(form);

  for (const t of ["dragenter", "dragover"]) drop.addEventListener(t, (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => { e.preventDefault(); drop.classList.remove("over"); pick(e.dataTransfer.files[0]); });

  if (!store.settings) {
    api("GET", "/api/v1/settings").then((s) => {
      store.settings = s;
      if (!savePath.value) savePath.value = s.download_dir;
    }).catch(() => {});
  }

  async function pick(f) {
    file = null;
    fileList.replaceChildren();
    if (!f) return;
    const buf = new Uint8Array(await f.arrayBuffer());
    try {
      const parsed = torrentFiles(buf);
      file = { name: f.name, bytes: buf, files: parsed.files };
      const real = parsed.files.filter((x) => !x.pad);
      fileList.append(h("p", {}, h("b", {}, parsed.name), ` — ${real.length} file${real.length === 1 ? "" : "s"}, ${bytes(real.reduce((a, x) => a + x.size, 0))}`));
      if (real.length > 1) {
        fileList.append(h("div", { class: "filelist", id: "add-files" }, real.map((x) =>
          h("label", { class: "check" }, h("input", { type: "checkbox", checked: true, dataset: { index: String(x.index) } }),
            `${x.path} (${bytes(x.size)})`))));
      }
    } catch (e) {
      fileList.append(h("p", { class: "error" }, `${f.name}: ${e.message}`));
      fileInput.value = "";
    }
  }

  function options() {
    const o = { paused: paused.checked, sequential: sequential.checked, first_last_piece: firstLast.checked };
    if (savePath.value.trim()) o.save_path = savePath.value.trim();
    if (category.value.trim()) o.category = category.value.trim();
    const t = tags.value.split(",").map((x) => x.trim()).filter(Boolean);
    if (t.length) o.tags = t;
    return o;
  }

  async function send(ev) {
    ev.preventDefault();
    const lines = links.value.split(/\s+/).map((x) => x.trim()).filter(Boolean);
    if (!file && !lines.length) return toast("Choose a .torrent file or paste a link", true);
    submit.disabled = true;
    let added = 0;
    const o = options();
    if (file) {
      const q = new URLSearchParams();
      for (const [k, v] of Object.entries(o)) q.set(k, Array.isArray(v) ? v.join(",") : String(v));
      const boxes = [...fileList.querySelectorAll("input[data-index]")];
      if (boxes.length && boxes.some((b) => !b.checked)) {
        q.set("only", boxes.filter((b) => b.checked).map((b) => b.dataset.index).join(","));
      }
      await act(`Adding ${file.name}`, async () => {
        await api("POST", `/api/v1/torrents?${q}`, { body: file.bytes, headers: { "Content-Type": "application/x-bittorrent" } });
        added++;
      });
    }
    for (const link of lines) {
      const src = link.startsWith("magnet:") ? { magnet: link } : { url: link };
      await act(`Adding ${link.slice(0, 60)}`, async () => {
        await api("POST", "/api/v1/torrents", { json: { ...src, ...o } });
        added++;
      });
    }
    submit.disabled = false;
    if (added) {
      toast(`Added ${added} torrent${added === 1 ? "" : "s"}`);
      location.hash = "#/";
    }
  }
  return {};
}
addPage.pageName = "add";

// --------------------------------------------------------------- details

function detailsPage(main, hash) {
  let d = null;
  let loading = false;
  let last = 0;
  const title = h("h1", { id: "details-name" }, store.torrents.get(hash)?.name || hash);
  const actions = h("div", { class: "toolbar", id: "details-actions" });
  const facts = h("dl", { class: "facts", id: "details-facts" });
  const pieces = h("canvas", { class: "pieces", id: "pieces", height: "48", "aria-label": "Pieces map" });
  const files = h("tbody", { id: "file-rows" });
  const peers = h("tbody", { id: "peer-rows" });
  const trackers = h("tbody", { id: "tracker-rows" });
  const table = (head, body) => h("div", { class: "table-wrap" }, h("table", {}, h("thead", {}, h("tr", {}, head.map((x) =>
    h("th", { class: /^(Size|Down|Up|Seeds|Leechers|Peers|Progress %)$/.test(x) ? "num" : "", scope: "col" }, x)))), body));
  const limitDown = h("input", { id: "limit-down", inputmode: "numeric", "aria-label": "Download limit, KiB/s", placeholder: "none" });
  const limitUp = h("input", { id: "limit-up", inputmode: "numeric", "aria-label": "Upload limit, KiB/s", placeholder: "none" });
  const limits = h("form", { class: "toolbar", id: "limits-form", onsubmit: (e) => {
    e.preventDefault();
    const kib = (el) => Math.round((Number(el.value.trim()) || 0) * 1024);
    if ([limitDown, limitUp].some((el) => el.value.trim() && !(Number(el.value) >= 0))) return toast("Limits: not a number", true);
    act("Limits", async () => {
      await api("POST", `${torrentPath(hash)}/limits`, { json: { download: kib(limitDown), upload: kib(limitUp) } });
      toast("Limits set");
      load();
    });
  } },
  h("label", {}, "Down KiB/s ", limitDown), h("label", {}, "Up KiB/s ", limitUp),
  h("button", { type: "submit", id: "limits-save" }, "Set limits"));
  main.append(
    h("p", {}, h("a", { href: "#/" }, "← All torrents")),
    title, actions, facts, limits,
    h("h2", {}, "Pieces"), pieces,
    h("h2", {}, "Files"), table(["File", "Size", "Progress", "Priority", ""], files),
    h("h2", {}, "Peers"), table(["Address", "Client", "Down", "Up", "Progress %", "Flags"], peers),
    h("h2", {}, "Trackers"), table(["URL", "Tier", "Status", "Seeds", "Leechers", "Peers", "Last announce", "Next announce"], trackers));

  async function load() {
    if (loading) return;
    loading = true;
    last = Date.now();
    try {
      d = await api("GET", torrentPath(hash));
      draw();
    } catch (e) {
      if (e.status === 404) {
        main.replaceChildren(h("p", {}, "This torrent is not in the session (any more). ", h("a", { href: "#/" }, "All torrents")));
        page = {};
      } else toast(e.message, true);
    } finally {
      loading = false;
    }
  }

  const button = (label, id, fn, cls) => h("button", { type: "button", id, class: cls, onclick: () => act(label, fn) }, label);

  function draw() {
    const t = d;
    title.textContent = t.name;
    const running = !["paused", "error", "missing_files"].includes(t.state);
    actions.replaceChildren(...present(
      running ? button("Pause", "details-pause", () => api("POST", `${torrentPath(hash)}/pause`))
        : button("Resume", "details-resume", () => api("POST", `${torrentPath(hash)}/resume`)),
      button("Recheck", "details-recheck", () => api("POST", `${torrentPath(hash)}/recheck`)),
      button("Reannounce", "details-reannounce", () => api("POST", `${torrentPath(hash)}/reannounce`)),
      h("label", { class: "check" }, h("input", { type: "checkbox", id: "details-sequential", checked: t.sequential,
        onchange: (e) => act("Sequential", () => api("POST", `${torrentPath(hash)}/options`, { json: { sequential: e.target.checked } })) }),
      "In order"),
      t.files.some((f) => MEDIA.test(f.path)) ? h("a", { class: "button", href: `${torrentPath(hash)}/playlist.m3u`, download: `${t.name}.m3u` }, "Playlist (M3U)") : null,
      h("span", { class: "spacer" }),
      h("button", { type: "button", class: "danger", id: "details-remove", onclick: () => confirmRemove([hash], () => { location.hash = "#/"; }) }, "Remove…")));
    const fact = (k, v) => h("div", {}, h("dt", {}, k), h("dd", {}, v));
    facts.replaceChildren(...present(
      fact("State", stateBadge(t.state)), fact("Progress", percent(t.progress)),
      fact("Size", `${bytes(t.wanted)} of ${bytes(t.size)}`),
      fact("Down", rate(t.download_rate)), fact("Up", rate(t.upload_rate)),
      fact("ETA", t.state === "downloading" ? duration(t.eta) : "–"),
      fact("Downloaded", bytes(t.downloaded)), fact("Uploaded", bytes(t.uploaded)),
      fact("Ratio", t.ratio.toFixed(2)), fact("Peers", t.peers),
      fact("Save path", t.save_path), fact("Category", t.category || "–"),
      fact("Tags", t.tags.join(", ") || "–"), fact("Added", when(t.added_at)),
      fact("Completed", when(t.completed_at)), fact("Info-hash", t.info_hash),
      t.error ? fact("Error", t.error) : null));
    if (!limits.contains(document.activeElement)) {
      limitDown.value = t.download_limit ? String(Math.round(t.download_limit / 1024)) : "";
      limitUp.value = t.upload_limit ? String(Math.round(t.upload_limit / 1024)) : "";
    }
    drawPieces();
    // A priority menu the user is in is not pulled from under them.
    if (!files.contains(document.activeElement)) drawFiles(t);
    peers.replaceChildren(...t.peer_list.map((p) => h("tr", {},
      h("td", {}, p.addr), h("td", {}, p.client || "–"), h("td", { class: "num" }, rate(p.download_rate)),
      h("td", { class: "num" }, rate(p.upload_rate)), h("td", { class: "num" }, (p.progress * 100).toFixed(1)), h("td", {}, p.flags))));
    if (!t.peer_list.length) peers.append(h("tr", {}, h("td", { colspan: "6", class: "empty" }, "No peers connected.")));
    trackers.replaceChildren(...t.trackers.map((r) => h("tr", {},
      h("td", { class: "name" }, r.url), h("td", {}, r.tier),
      h("td", {}, r.error ? h("span", { class: "error" }, r.error) : r.last_announce_ago === null ? "not contacted yet" : "working"),
      h("td", { class: "num" }, r.seeders ?? "–"), h("td", { class: "num" }, r.leechers ?? "–"), h("td", { class: "num" }, r.peers),
      h("td", {}, r.last_announce_ago === null ? "–" : `${duration(r.last_announce_ago)} ago`),
      h("td", {}, r.next_announce_in === null ? "–" : `in ${duration(r.next_announce_in)}`))));
    if (!t.trackers.length) trackers.append(h("tr", {}, h("td", { colspan: "8", class: "empty" }, "No trackers (DHT and peers only).")));
  }

  function drawFiles(t) {
    files.replaceChildren(...t.files.map((f) => h("tr", { dataset: { index: String(f.index) } },
      h("td", { class: "name" }, f.path),
      h("td", { class: "num" }, bytes(f.size)),
      h("td", {}, bar(f.progress, t.state)),
      h("td", {}, h("select", { "aria-label": `Priority of ${f.path}`, class: "priority",
        onchange: (e) => act("Priority", async () => {
          await api("POST", `${torrentPath(hash)}/files`, { json: { priorities: [{ index: f.index, priority: e.target.value }] } });
          load();
        }) },
      ["skip", "low", "normal", "high"].map((p) => h("option", { value: p, selected: p === f.priority }, p)))),
      h("td", {}, MEDIA.test(f.path) && f.priority !== "skip"
        ? h("a", { href: streamUrl(hash, f.index), target: "_blank", rel: "noopener", class: "play" }, "▶ Play") : null))));
    if (!t.files.length) files.append(h("tr", {}, h("td", { colspan: "5", class: "empty" }, "Waiting for the metadata from peers…")));
  }

  function drawPieces() {
    const width = pieces.clientWidth || 600;
    const ratio = window.devicePixelRatio || 1;
    pieces.width = Math.floor(width * ratio);
    pieces.height = Math.floor(48 * ratio);
    const g = pieces.getContext("2d");
    const styles = getComputedStyle(document.documentElement);
    g.fillStyle = styles.getPropertyValue("--bar");
    g.fillRect(0, 0, pieces.width, pieces.height);
    const n = d.piece_count;
    if (!n) return;
    const bits = Uint8Array.from(atob(d.pieces), (c) => c.charCodeAt(0));
    g.fillStyle = styles.getPropertyValue("--good");
    const w = pieces.width / n;
    for (let i = 0; i < n; i++) {
      if (bits[i >> 3] & (0x80 >> (i & 7))) g.fillRect(Math.floor(i * w), 0, Math.ceil(w), pieces.height);
    }
  }

  load();
  return {
    onBeat(ev) {
      // Asked again at most once a second, and only when its row changed.
      if ((ev.torrents || []).some((t) => t.info_hash === hash) && Date.now() - last > 900) load();
    },
    onChange(ev) {
      if (ev.info_hash !== hash) return;
      if (ev.type === "removed") {
        main.replaceChildren(h("p", {}, "This torrent was removed. ", h("a", { href: "#/" }, "All torrents")));
        page = {};
      } else if (ev.type !== "stats") load();
    },
  };
}

// ----------------------------------------------------------------- stats

function statsPage(main) {
  const facts = h("dl", { class: "facts", id: "stats-facts" });
  const graph = h("canvas", { class: "graph", id: "rate-graph", "aria-label": "Download and upload rates, last five minutes" });
  main.append(h("h1", {}, "Session"), facts,
    h("h2", {}, "Rates, last five minutes"),
    h("div", { class: "legend" }, h("span", { class: "down" }, "Download"), h("span", { class: "up" }, "Upload")),
    h("div", { class: "panel" }, graph));
  let s = null;
  let last = 0;
  async function load() {
    last = Date.now();
    await act("Stats", async () => {
      s = await api("GET", "/api/v1/stats");
      drawFacts();
    });
  }
  function drawFacts() {
    const fact = (k, v) => h("div", {}, h("dt", {}, k), h("dd", {}, v));
    facts.replaceChildren(
      fact("Down", rate(s.download_rate)), fact("Up", rate(s.upload_rate)),
      fact("Downloaded (this run)", bytes(s.downloaded)), fact("Uploaded (this run)", bytes(s.uploaded)),
      fact("Torrents", s.torrents), fact("Downloading", s.downloading), fact("Seeding", s.seeding),
      fact("Paused", s.paused), fact("Queued", s.queued), fact("Connections", s.connections),
      fact("DHT nodes", s.dht_nodes ?? "off"), fact("Disk read", bytes(s.disk_read)),
      fact("Disk written", bytes(s.disk_written)), fact("Uptime", duration(s.uptime)), fact("Listening on", s.listen));
  }
  function drawGraph() {
    const ratio = window.devicePixelRatio || 1;
    const W = Math.floor((graph.clientWidth || 600) * ratio);
    const H = Math.floor(220 * ratio);
    graph.width = W;
    graph.height = H;
    const g = graph.getContext("2d");
    const css = getComputedStyle(document.documentElement);
    const pad = 8 * ratio;
    const top = Math.max(1024, ...store.history.map((p) => Math.max(p.down, p.up)));
    g.clearRect(0, 0, W, H);
    g.strokeStyle = css.getPropertyValue("--line");
    g.fillStyle = css.getPropertyValue("--muted");
    g.font = `${11 * ratio}px system-ui, sans-serif`;
    for (let k = 0; k <= 4; k++) {
      const y = pad + ((H - 2 * pad) * k) / 4;
      g.beginPath(); g.moveTo(0, y); g.lineTo(W, y); g.stroke();
      g.fillText(rate((top * (4 - k)) / 4) || "0", 4 * ratio, y - 2 * ratio);
    }
    const now = Date.now();
    for (const [key, color] of [["down", "--down"], ["up", "--up"]]) {
      g.strokeStyle = css.getPropertyValue(color);
      g.lineWidth = 2 * ratio;
      g.beginPath();
      store.history.forEach((p, i) => {
        const x = W - ((now - p.t) / 1000 / HISTORY_SECONDS) * W;
        const y = H - pad - (p[key] / top) * (H - 2 * pad);
        if (i === 0) g.moveTo(x, y); else g.lineTo(x, y);
      });
      g.stroke();
    }
  }
  load();
  return {
    render: drawGraph,
    onBeat() {
      if (Date.now() - last > 2000) load();
    },
  };
}
statsPage.pageName = "stats";

// -------------------------------------------------------------- settings

function settingsPage(main) {
  const form = h("form", { class: "panel", id: "settings-form" }, h("p", { class: "muted" }, "Loading…"));
  main.append(h("h1", {}, "Settings"), form);
  const KiB = 1024;
  const fields = [
    // [name, label, kind: rate | count | ratio | minutes | path | bool]
    ["download_rate", "Download limit (KiB/s, empty: none)", "rate"],
    ["upload_rate", "Upload limit (KiB/s, empty: none)", "rate"],
    ["max_connections", "Peer connections, all torrents", "count"],
    ["active_downloads", "Torrents downloading at once (empty: no limit)", "optcount"],
    ["active_seeds", "Torrents seeding at once (empty: no limit)", "optcount"],
    ["seed_ratio", "Stop seeding at ratio (empty: never)", "ratio"],
    ["seed_time", "Stop seeding after minutes (empty: never)", "minutes"],
    ["seed_goal_remove", "Remove a torrent (keeping its data) when it reaches its goal, instead of pausing it", "bool"],
    ["download_dir", "Default download folder", "path"],
  ];
  api("GET", "/api/v1/settings").then(draw, (e) => toast(e.message, true));

  function draw(s) {
    store.settings = s;
    const inputs = fields.map(([name, label, kind]) => {
      const v = s[name];
      if (kind === "bool") return h("label", { class: "check" }, h("input", { type: "checkbox", name, checked: v }), label);
      const value = kind === "rate" ? (v ? Math.round(v / KiB) : "") : kind === "minutes" ? (v ? Math.round(v / 60) : "") : v ?? "";
      return h("label", {}, label, h("input", { name, value: String(value), inputmode: kind === "path" ? undefined : "decimal" }));
    });
    form.replaceChildren(...inputs, h("div", { class: "buttons" }, h("button", { type: "submit", class: "primary", id: "settings-save" }, "Save")));
    form.onsubmit = save;
  }

  async function save(ev) {
    ev.preventDefault();
    const patch = {};
    for (const [name, label, kind] of fields) {
      const el = form.elements[name];
      if (kind === "bool") { patch[name] = el.checked; continue; }
      const raw = el.value.trim();
      if (kind === "path") { if (raw) patch[name] = raw; continue; }
      const n = Number(raw);
      if (raw && !(Number.isFinite(n) && n >= 0)) return toast(`${label}: not a number`, true);
      if (kind === "rate") patch[name] = raw ? Math.round(n * KiB) : 0;
      else if (kind === "count") { if (raw) patch[name] = Math.round(n); }
      else if (kind === "optcount") patch[name] = raw ? Math.round(n) : null;
      else if (kind === "ratio") patch[name] = raw ? n : null;
      else if (kind === "minutes") patch[name] = raw ? Math.round(n * 60) : null;
    }
    await act("Saving settings", async () => {
      draw(await api("PATCH", "/api/v1/settings", { json: patch }));
      toast("Settings saved");
    });
  }
  return {};
}
settingsPage.pageName = "settings";

// ------------------------------------------------------------------ start

async function start() {
  document.getElementById("logout").addEventListener("click", () => act("Log out", logout));
  window.addEventListener("hashchange", route);
  window.addEventListener("resize", scheduleRender);
  route();
  const who = await api("GET", "/api/v1/login");
  if (who.login_required && !who.logged_in) await login();
  document.getElementById("logout").hidden = !who.login_required;
  connectEvents();
}

start();
