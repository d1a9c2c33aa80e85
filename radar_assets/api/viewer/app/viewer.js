/* radar-assets map viewer.
 *
 * Everything is read from this API (relative URLs, so the page works behind a path prefix too) and drawn with
 * libraries served by the same server from the npm install: MapLibre GL (map), topojson-client + us-atlas
 * (offline state and county lines), uPlot (charts). No request leaves the server that served the page.
 *
 * - Overlay: a MapLibre image source placed by the sweep's catalog corners ([[W,N],[E,N],[E,S],[W,S]], the
 *   order MapLibre expects); the PNG is in Web Mercator, so placing it by its corners is exact.
 * - Frames: /sweeps/latest?scans=N gives one sweep per scan at the chosen elevation (split cuts resolved);
 *   every frame's PNG is decoded before it is shown, so stepping and playing never flicker.
 * - Live: /events (EventSource; it resumes with Last-Event-ID by itself) re-reads the frames when a
 *   publication adds sweeps of the shown site; /live/stream (or /echoes/scans polling) feeds the echo panel.
 * - Boundaries and series appear only when the API has /boundaries and /timeseries.
 *
 * window.radarViewer exposes the state for the browser tests.
 */
(function () {
  "use strict";

  const FRAMES = 12;
  const PLAY_MS = 600;
  const ECHO_POLL_MS = 10000;
  const $ = (id) => document.getElementById(id);
  const state = {
    site: null, moment: "REF", elevation: null, frames: [], index: 0, playing: false, timer: null,
    loaded: 0, version: null, events: 0, echoSource: null, boundaries: false, series: null, selected: null,
  };
  const viewer = { state, map: null, ready: false };
  window.radarViewer = viewer;

  function showError(message) {
    const el = $("error");
    el.textContent = message;
    el.hidden = false;
  }

  async function getJSON(url) {
    const r = await fetch(url, { headers: { Accept: "application/json" } });
    if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
    return r.json();
  }

  // Optional panels depend on routers other parts of the API add: asking the OpenAPI document which paths
  // exist avoids probing with requests that fail (and would show as console errors).
  let apiPaths = null;
  async function hasPath(path) {
    if (apiPaths === null) apiPaths = (await getJSON("openapi.json")).paths || {};
    return Object.prototype.hasOwnProperty.call(apiPaths, path);
  }

  async function answers(url) {
    try {
      return (await fetch(url, { headers: { Accept: "application/json" } })).ok;
    } catch (e) {
      return false;
    }
  }

  function preload(url) {
    const img = new Image();
    img.src = url;
    return img.decode().then(() => img, () => img);
  }

  // ---------------------------------------------------------------------------------------------- map
  function baseStyle() {
    return {
      version: 8,
      sources: {},
      layers: [{ id: "background", type: "background", paint: { "background-color": "#eef0ea" } }],
    };
  }

  async function addBaseLayers(map) {
    const topo = await getJSON("vendor/us-atlas/counties-10m.json");
    const states = topojson.mesh(topo, topo.objects.states, (a, b) => a !== b);
    const nation = topojson.mesh(topo, topo.objects.nation);
    const counties = topojson.mesh(topo, topo.objects.counties, (a, b) => a !== b && (a.id / 1000 | 0) === (b.id / 1000 | 0));
    map.addSource("counties", { type: "geojson", data: counties });
    map.addSource("states", { type: "geojson", data: { type: "FeatureCollection", features: [
      { type: "Feature", properties: {}, geometry: states }, { type: "Feature", properties: {}, geometry: nation },
    ] } });
    map.addLayer({ id: "counties", type: "line", source: "counties", paint: { "line-color": "#8a8f99", "line-width": 0.5 } });
    map.addLayer({ id: "states", type: "line", source: "states", paint: { "line-color": "#2d3440", "line-width": 1.3 } });
  }

  function showFrame(i) {
    const frames = state.frames;
    if (!frames.length) return;
    state.index = Math.max(0, Math.min(frames.length - 1, i));
    const f = frames[state.index];
    const src = viewer.map.getSource("radar");
    if (src) {
      src.updateImage({ url: f.png_url, coordinates: f.corners });
    } else {
      viewer.map.addSource("radar", { type: "image", url: f.png_url, coordinates: f.corners });
      viewer.map.addLayer(
        { id: "radar", type: "raster", source: "radar", paint: { "raster-opacity": 0.85, "raster-fade-duration": 0 } },
        "counties",
      );
    }
    const slider = $("slider");
    slider.value = String(state.index);
    const when = f.sweep_time.replace("T", " ").replace(/(\.\d+)?Z$/, " UTC");
    const label = `${when} · ${f.moment} ${f.elevation.toFixed(1)}°`;
    slider.setAttribute("aria-valuetext", label);
    $("time").textContent = label;
  }

  async function loadFrames({ keepNewest = true } = {}) {
    if (!state.site) return;
    const atNewest = state.index >= state.frames.length - 1;
    const p = new URLSearchParams({ site: state.site, moment: state.moment, scans: String(FRAMES) });
    if (state.elevation !== null) p.set("elevation", String(state.elevation));
    const body = await getJSON(`sweeps/latest?${p}`);
    const frames = body.items.filter((s) => s.png_url && s.corners).reverse(); // oldest first
    await Promise.all(frames.map((f) => preload(f.png_url)));
    const shownId = state.frames.length ? state.frames[state.index].sweep_id : null;
    state.frames = frames;
    state.version = body.snapshot;
    state.loaded += 1;
    const slider = $("slider");
    slider.max = String(Math.max(0, frames.length - 1));
    slider.disabled = frames.length < 2;
    if (!frames.length) {
      $("time").textContent = `no ${state.moment} sweeps for ${state.site}`;
      return;
    }
    let index = frames.length - 1;
    if (!(keepNewest && atNewest) && shownId) {
      const same = frames.findIndex((f) => f.sweep_id === shownId);
      if (same >= 0) index = same;
    }
    showFrame(index);
  }

  function fitToFrame() {
    const f = state.frames[state.frames.length - 1];
    if (!f) return;
    const lons = f.corners.map((c) => c[0]);
    const lats = f.corners.map((c) => c[1]);
    viewer.map.fitBounds([[Math.min(...lons), Math.min(...lats)], [Math.max(...lons), Math.max(...lats)]], { padding: 20, duration: 0 });
  }

  // ----------------------------------------------------------------------------------------- controls
  function setPlaying(on) {
    state.playing = on && state.frames.length > 1;
    const button = $("play");
    button.setAttribute("aria-pressed", String(state.playing));
    button.innerHTML = state.playing ? "&#10074;&#10074; Pause" : "&#9654; Play";
    clearInterval(state.timer);
    if (state.playing) {
      state.timer = setInterval(() => showFrame((state.index + 1) % state.frames.length), PLAY_MS);
    }
  }

  function fillSelect(select, values, current, label = (v) => v) {
    select.innerHTML = "";
    for (const v of values) {
      const o = document.createElement("option");
      o.value = String(v);
      o.textContent = label(v);
      select.appendChild(o);
    }
    if (current !== null && values.map(String).includes(String(current))) select.value = String(current);
  }

  async function loadChoices() {
    // Moments and elevations of the site's newest volume.
    const newest = await getJSON(`sweeps/latest?${new URLSearchParams({ site: state.site, moment: state.moment })}`);
    let scanId = newest.items.length ? newest.items[0].scan_id : null;
    const moments = new Set([state.moment]);
    if (scanId) {
      const all = await getJSON(`sweeps?${new URLSearchParams({ scan_id: scanId, limit: "1000" })}`);
      all.items.forEach((s) => moments.add(s.moment));
    }
    fillSelect($("moment"), [...moments].sort(), state.moment);
    const elevations = [...new Set(newest.items.map((s) => Math.round(s.elevation * 10) / 10))].sort((a, b) => a - b);
    if (state.elevation === null || !elevations.includes(state.elevation)) state.elevation = elevations.length ? elevations[0] : null;
    fillSelect($("elevation"), elevations, state.elevation, (v) => `${v.toFixed(1)}°`);
  }

  async function loadLegend() {
    const legend = await getJSON(`legend/${encodeURIComponent(state.moment)}`);
    const bar = $("legend-bar");
    bar.src = `legend/${encodeURIComponent(state.moment)}?format=png&width=256&height=14`;
    bar.alt = legend.text;
    $("legend-text").textContent = legend.text;
    $("legend-title").textContent = `Legend: ${legend.moment} (${legend.units})`;
    const labels = $("legend-labels");
    labels.innerHTML = "";
    const stops = legend.stops;
    const n = stops.length;
    const step = Math.max(1, Math.ceil(n / 6));
    stops.forEach((s, i) => {
      if (i % step !== 0 && i !== n - 1) return;
      const span = document.createElement("span");
      const lo = stops[0].value;
      const hi = legend.kind === "steps" ? stops[n - 1].value + (stops[n - 1].value - stops[n - 2].value) : stops[n - 1].value;
      const x = legend.kind === "categorical" ? (i + 0.5) / n : (s.value - lo) / (hi - lo);
      span.style.left = `${(100 * x).toFixed(1)}%`;
      span.textContent = legend.kind === "categorical" ? s.label.split(":")[0] : String(s.value);
      labels.appendChild(span);
    });
  }

  async function selectSite(site) {
    state.site = site;
    setPlaying(false);
    await loadChoices();
    await Promise.all([loadFrames({ keepNewest: true }), loadLegend()]);
    fitToFrame();
  }

  function wireControls() {
    $("site").addEventListener("change", (e) => selectSite(e.target.value).catch((err) => showError(err.message)));
    $("moment").addEventListener("change", async (e) => {
      state.moment = e.target.value;
      try {
        await loadChoices();
        await Promise.all([loadFrames(), loadLegend()]);
      } catch (err) { showError(err.message); }
    });
    $("elevation").addEventListener("change", (e) => {
      state.elevation = Number(e.target.value);
      loadFrames().catch((err) => showError(err.message));
    });
    $("slider").addEventListener("input", (e) => { setPlaying(false); showFrame(Number(e.target.value)); });
    $("play").addEventListener("click", () => setPlaying(!state.playing));
    document.addEventListener("keydown", (e) => {
      const tag = (e.target.tagName || "").toLowerCase();
      if (tag === "select" || (tag === "input" && e.target.type !== "range")) return;
      if (e.key === " " && tag !== "button") {
        e.preventDefault();
        setPlaying(!state.playing);
      } else if (tag !== "input" && (e.key === "ArrowLeft" || e.key === "ArrowRight")) {
        e.preventDefault();
        setPlaying(false);
        showFrame(state.index + (e.key === "ArrowRight" ? 1 : -1));
      }
    });
  }

  // ---------------------------------------------------------------------------------------------- live
  function watchCatalog() {
    const status = $("live-status");
    const events = new EventSource("events");
    events.addEventListener("open", () => { status.textContent = "live"; });
    events.addEventListener("error", () => { status.textContent = "reconnecting…"; });
    events.addEventListener("catalog", (e) => {
      state.events += 1;
      const data = JSON.parse(e.data);
      if (data.version === state.version) return;
      const prefix = `${state.site}-`;
      const relevant = data.new_sweeps === null || data.new_sweeps.some((id) => id.startsWith(prefix));
      status.textContent = `live · catalog ${new Date().toLocaleTimeString()}`;
      if (relevant && state.site) loadFrames({ keepNewest: true }).catch((err) => showError(err.message));
    });
    viewer.events = events;
  }

  // ---------------------------------------------------------------------------------------- echo panel
  function echoPanel() {
    // Per station: its location (from the catalog rows) and echoes per completed scan, keyed by scan start
    // (seconds), so a scan seen both on the live stream and later in the catalog counts once.
    const where = new Map(); // station -> [lat, lon]
    const scans = new Map(); // station -> Map(t -> echoes)
    let chart = null;

    function render() {
      const stations = [...scans.keys()].sort();
      $("echo-panel").hidden = stations.length === 0; // nothing to chart: no panel
      const body = $("echo-table").querySelector("tbody");
      body.innerHTML = "";
      for (const station of stations) {
        const byTime = scans.get(station);
        const times = [...byTime.keys()].sort((a, b) => a - b);
        const latest = byTime.get(times[times.length - 1]);
        const total = [...byTime.values()].reduce((a, b) => a + b, 0);
        const loc = where.get(station);
        const tr = document.createElement("tr");
        for (const text of [station, loc ? `${loc[0].toFixed(2)}, ${loc[1].toFixed(2)}` : "unknown", String(latest), String(total)]) {
          const td = document.createElement("td");
          td.textContent = text;
          tr.appendChild(td);
        }
        body.appendChild(tr);
      }
      const times = [...new Set(stations.flatMap((s) => [...scans.get(s).keys()]))].sort((a, b) => a - b).slice(-500);
      if (!times.length) return;
      const series = stations.map((s) => times.map((t) => (scans.get(s).has(t) ? scans.get(s).get(t) : null)));
      const palette = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"];
      const opts = {
        width: 340, height: 160, title: "echoes per scan",
        series: [{}, ...stations.map((s, i) => ({ label: s, stroke: palette[i % palette.length], spanGaps: true }))],
        axes: [{}, { size: 40 }],
      };
      if (chart && chart.series.length !== stations.length + 1) { chart.destroy(); chart = null; }
      if (!chart) chart = new uPlot(opts, [times, ...series], $("echo-chart"));
      else chart.setData([times, ...series]);
      viewer.echoChart = chart;
    }

    function addScan(station, t, echoes, lat, lon) {
      if (lat !== undefined && lat !== null) where.set(station, [lat, lon]);
      if (!scans.has(station)) scans.set(station, new Map());
      scans.get(station).set(t, echoes || 0);
    }

    async function poll() {
      const since = new Date(Date.now() - 24 * 3600 * 1000).toISOString(); // the last day of scans
      const params = { start: since, limit: "1000" };
      let url = `echoes/scans?${new URLSearchParams(params)}`;
      for (let page = 0; page < 5 && url; page++) {
        const body = await getJSON(url);
        for (const s of body.items) addScan(s.station, Date.parse(s.scan_start) / 1000, s.echoes, s.station_lat, s.station_lon);
        url = body.next_cursor ? `echoes/scans?${new URLSearchParams({ ...params, cursor: body.next_cursor })}` : null;
      }
      render();
    }

    async function start() {
      if (!(await hasPath("/echoes/scans"))) return;
      await poll(); // the catalog's last day first, then live scans (or a refresh every 10 s) on top
      if ((await hasPath("/live/stream")) && (await hasPath("/live/status")) && (await answers("live/status"))) {
        state.echoSource = "live";
        $("echo-source").textContent = "(catalog + live stream)";
        const stream = new EventSource("live/stream?arrays=false");
        stream.addEventListener("records", (e) => {
          const data = JSON.parse(e.data);
          if (!(data.scans || []).length) return;
          for (const s of data.scans) addScan(s.station, s.scan_start_us / 1e6, s.echoes);
          render();
        });
        viewer.liveStream = stream;
        return;
      }
      state.echoSource = "echoes";
      $("echo-source").textContent = "(catalog, refreshed every 10 s)";
      setInterval(() => poll().catch((err) => showError(err.message)), ECHO_POLL_MS);
    }
    return start();
  }

  // ------------------------------------------------------------------------------ boundaries + series
  function seriesPoints(body) {
    // GET /timeseries answers columns (time[], value[], ...), as SKOPE does; rows ({time, value}) are read too.
    if (Array.isArray(body.time) && Array.isArray(body.value)) {
      return { times: body.time.map((t) => Date.parse(t) / 1000), values: body.value };
    }
    const rows = Array.isArray(body) ? body : body.points || body.items || [];
    return { times: rows.map((r) => Date.parse(r.time) / 1000), values: rows.map((r) => (r.value === undefined ? null : r.value)) };
  }

  async function boundariesPanel() {
    if (!(await hasPath("/boundaries")) || !(await hasPath("/timeseries"))) return;
    state.boundaries = true;
    state.series = { statistic: "mean", zscore: false, smooth: false };
    const features = [];
    let url = "boundaries?limit=1000";
    for (let page = 0; page < 20 && url; page++) {
      const body = await getJSON(url);
      features.push(...(body.features || []));
      url = body.next_cursor ? `boundaries?${new URLSearchParams({ limit: "1000", cursor: body.next_cursor })}` : null;
    }
    const map = viewer.map;
    map.addSource("boundaries", { type: "geojson", data: { type: "FeatureCollection", features }, promoteId: "id" });
    map.addLayer({ id: "boundaries-fill", type: "fill", source: "boundaries", paint: { "fill-color": "#ffb000", "fill-opacity": ["case", ["boolean", ["feature-state", "selected"], false], 0.35, 0.02] } });
    map.addLayer({ id: "boundaries-line", type: "line", source: "boundaries", paint: { "line-color": "#6b4e00", "line-width": 0.8 } });
    $("series-panel").hidden = false;
    let chart = null;

    async function draw() {
      const f = state.selected;
      if (!f) return;
      const s = state.series;
      const p = new URLSearchParams({ boundary: String(f.id), site: state.site, statistic: s.statistic });
      if (s.zscore) p.set("transform", "zscore_selected");
      if (s.smooth) { p.set("smoother", "trailing"); p.set("width", "5"); }
      const body = await getJSON(`timeseries?${p}`);
      const points = seriesPoints(body);
      state.series.points = points;
      const name = (f.properties && (f.properties.name || f.properties.NAME)) || f.id;
      $("series-hint").textContent = `${name}: ${points.values.length} scans`;
      const csv = new URLSearchParams(p);
      csv.set("format", "csv");
      const link = $("series-csv");
      link.href = `timeseries?${csv}`;
      link.hidden = false;
      const opts = { width: 340, height: 180, title: `${name} · ${s.statistic}${s.zscore ? " z-score" : ""}${s.smooth ? " smoothed" : ""}`,
        series: [{}, { label: s.statistic, stroke: "#b05000", spanGaps: false }], axes: [{}, { size: 44 }] };
      if (chart) chart.destroy();
      chart = new uPlot(opts, [points.times, points.values], $("series-chart"));
      viewer.seriesChart = chart;
    }

    map.on("click", "boundaries-fill", (e) => {
      const f = e.features[0];
      if (state.selected) map.setFeatureState({ source: "boundaries", id: state.selected.id }, { selected: false });
      state.selected = f;
      map.setFeatureState({ source: "boundaries", id: f.id }, { selected: true });
      draw().catch((err) => showError(err.message));
    });
    $("statistic").addEventListener("change", (e) => { state.series.statistic = e.target.value; draw().catch((err) => showError(err.message)); });
    $("zscore").addEventListener("change", (e) => { state.series.zscore = e.target.checked; draw().catch((err) => showError(err.message)); });
    $("smooth").addEventListener("change", (e) => { state.series.smooth = e.target.checked; draw().catch((err) => showError(err.message)); });
    viewer.drawSeries = draw;
  }

  // ---------------------------------------------------------------------------------------------- start
  async function start() {
    if (typeof maplibregl === "undefined" || typeof uPlot === "undefined" || typeof topojson === "undefined") {
      showError("The viewer's JavaScript libraries are not installed: run `make install` (npm ci).");
      return;
    }
    wireControls();
    const map = new maplibregl.Map({ container: "map", style: baseStyle(), center: [-95, 38], zoom: 3.5, attributionControl: false, fadeDuration: 0 });
    map.addControl(new maplibregl.NavigationControl({ showCompass: false }));
    map.addControl(new maplibregl.AttributionControl({ compact: true, customAttribution: "US Census (us-atlas) · NOAA NEXRAD" }));
    viewer.map = map;
    await new Promise((resolve) => map.on("load", resolve));
    await addBaseLayers(map);
    const sites = (await getJSON("sites?level=2")).items.filter((s) => s.latest_scan_id);
    fillSelect($("site"), sites.map((s) => s.site), null);
    if (sites.length) await selectSite(sites[0].site);
    else $("time").textContent = "no sites in the catalog yet";
    watchCatalog();
    await Promise.all([echoPanel(), boundariesPanel()].map((p) => p.catch((err) => showError(err.message))));
    viewer.ready = true;
    document.body.dataset.ready = "true";
  }

  start().catch((err) => showError(err.message));
})();
